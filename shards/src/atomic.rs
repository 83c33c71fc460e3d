//! Atomic local writes: write under a temporary name beside the target, sync, then rename.
//! A reader sees either no file or the whole file, never a part of one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::StoreError;

/// The suffix of files being written; stale ones are removed by [`remove_stale_temps`]. Distinct
/// enough that the sweep never takes a user's file: an output folder may hold other files (it
/// may even be the folder of the inputs).
pub const TEMP_SUFFIX: &str = ".refinery-tmp";

/// The temporary name used while `target` is being written.
pub fn temp_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(TEMP_SUFFIX);
    target.with_file_name(name)
}

/// Creates the temporary file for `target` (creating parent folders).
pub fn create_temp(target: &Path) -> Result<(File, PathBuf), StoreError> {
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(|source| StoreError::Io {
            op: "create folder",
            path: parent.into(),
            source,
        })?;
    }
    let tmp = temp_path(target);
    let file = File::create(&tmp).map_err(|source| StoreError::Io {
        op: "create",
        path: tmp.clone(),
        source,
    })?;
    Ok((file, tmp))
}

/// Syncs `file` and renames `tmp` over `target`.
pub fn commit(file: File, tmp: &Path, target: &Path) -> Result<(), StoreError> {
    file.sync_all().map_err(|source| StoreError::Io {
        op: "sync",
        path: tmp.into(),
        source,
    })?;
    drop(file);
    fs::rename(tmp, target).map_err(|source| StoreError::Io {
        op: "rename",
        path: target.into(),
        source,
    })
}

/// Writes `bytes` to `target` atomically.
pub fn write_file(target: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let (mut file, tmp) = create_temp(target)?;
    file.write_all(bytes).map_err(|source| StoreError::Io {
        op: "write",
        path: tmp.clone(),
        source,
    })?;
    commit(file, &tmp, target)
}

/// Removes temporary files left under `dir` by an interrupted run. Returns how many were removed.
pub fn remove_stale_temps(dir: &Path) -> Result<usize, StoreError> {
    remove_files(dir, true, &|e| name_of(e).ends_with(TEMP_SUFFIX))
}

/// Removes the staging files that the `object_store` crate's local file system leaves under
/// `dir` when a write is interrupted: it writes an object to `NAME#N` (`N` a number) and then
/// renames it. Only in `dir` itself unless `below`, then in every folder under it too. Returns
/// how many were removed.
pub fn remove_staged_uploads(dir: &Path, below: bool) -> Result<usize, StoreError> {
    remove_files(dir, below, &|e| is_staged_upload(&name_of(e)))
}

/// Whether a file name is a staging name of the `object_store` crate's local file system.
fn is_staged_upload(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A directory entry's file name, as text.
pub(crate) fn name_of(entry: &fs::DirEntry) -> String {
    entry.file_name().to_string_lossy().into_owned()
}

/// Removes the files in `dir` (and, if `below`, under it) that pass `stale`; how many. A file
/// another process removed first is no error.
pub(crate) fn remove_files(
    dir: &Path,
    below: bool,
    stale: &dyn Fn(&fs::DirEntry) -> bool,
) -> Result<usize, StoreError> {
    let mut removed = 0;
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(0);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if below {
                removed += remove_files(&path, below, stale)?;
            }
        } else if stale(&entry) {
            match fs::remove_file(&path) {
                Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
                    return Err(StoreError::Io {
                        op: "remove",
                        path,
                        source,
                    });
                }
                _ => removed += 1,
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_file_leaves_no_temp_and_stale_temps_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b/out.json");
        write_file(&target, b"{}").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"{}");
        assert!(!temp_path(&target).exists());
        let (_f, tmp) = create_temp(&dir.path().join("a/half.parquet")).unwrap();
        assert!(tmp.exists());
        let theirs = dir.path().join("a/notes.tmp");
        fs::write(&theirs, b"a user's file").unwrap();
        assert_eq!(remove_stale_temps(dir.path()).unwrap(), 1);
        assert!(!tmp.exists() && target.exists());
        assert!(theirs.exists(), "only Refinery's temporary files are swept");
    }

    #[test]
    fn only_staging_names_count_as_staged_uploads() {
        for name in ["000001.bin#1", "manifest.json#12"] {
            assert!(is_staged_upload(name), "{name}");
        }
        for name in ["000001.bin", "a#b", "a#", "a#1x", "#x"] {
            assert!(!is_staged_upload(name), "{name}");
        }
        let dir = tempfile::tempdir().unwrap();
        let keep = dir.path().join("v/train/a/000000.bin");
        let staged = dir.path().join("v/train/a/000001.bin#2");
        for f in [&keep, &staged] {
            fs::create_dir_all(f.parent().unwrap()).unwrap();
            fs::write(f, b"x").unwrap();
        }
        assert_eq!(remove_staged_uploads(dir.path(), false).unwrap(), 0);
        assert_eq!(remove_staged_uploads(dir.path(), true).unwrap(), 1);
        assert!(keep.exists() && !staged.exists());
    }
}
