//! One writer at a time in a folder Refinery writes: a whole run, a `--prepare` or a training
//! run holds its folder alone; the tasks of a partitioned run share theirs. The lock is the
//! operating system's advisory lock on `<folder>/_lock`, so it is released when the process
//! ends, however it ends, and a killed run never leaves a stale lock behind.

use std::fs::{File, TryLockError};
use std::path::Path;

/// The lock file's name.
pub const LOCK: &str = "_lock";

/// How a command uses the folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// No other process may write it.
    Alone,
    /// Other holders of a shared lock may write it too.
    Shared,
}

/// Locks `dir` (creating it) for as long as the returned file is open.
pub fn lock(dir: &Path, hold: Hold) -> Result<File, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create folder `{}`: {e}", dir.display()))?;
    let path = dir.join(LOCK);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("open `{}`: {e}", path.display()))?;
    let taken = match hold {
        Hold::Alone => file.try_lock(),
        Hold::Shared => file.try_lock_shared(),
    };
    match taken {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(format!(
            "`{}` is being written by another Refinery process (a run, a `--prepare` or a \
             training run needs its folder alone; the tasks of a partitioned run may share \
             theirs): wait for it to end",
            dir.display()
        )),
        // A file system without locks (some network ones): go on unguarded, as before locks.
        Err(TryLockError::Error(e)) => {
            tracing::warn!(
                "cannot lock `{}` ({e}); going on without it",
                path.display()
            );
            Ok(file)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_held_alone_refuses_every_other_holder() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let alone = lock(&out, Hold::Alone).unwrap();
        for hold in [Hold::Alone, Hold::Shared] {
            let e = lock(&out, hold).unwrap_err();
            assert!(
                e.contains("is being written by another Refinery process"),
                "{e}"
            );
        }
        drop(alone);
        let a = lock(&out, Hold::Shared).unwrap();
        let b = lock(&out, Hold::Shared).unwrap();
        assert!(
            lock(&out, Hold::Alone).is_err(),
            "tasks keep a whole run out"
        );
        drop((a, b));
        lock(&out, Hold::Alone).unwrap();
    }
}
