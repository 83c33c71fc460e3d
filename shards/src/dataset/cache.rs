//! A local disk cache of shards fetched from a remote store, keyed by checksum, with a size cap.
//!
//! Files are named `<checksum>.bin`, so one cached file serves every version that holds the same
//! shard. A file's modification time is its last use; when the cache grows past its cap the
//! least recently used files go first. Entries are written atomically (temp + rename), so a
//! killed process leaves no half-written entry under a real name; the temporary files it leaves
//! are removed by the next eviction once they are [`STALE_TEMP`] old (processes may share a
//! cache, so a younger one may be another process's fetch in progress).

use std::path::{Path, PathBuf};

use crate::StoreError;

/// How long a temporary file may go unmodified before it counts as left by a killed process: a
/// fetch writes its entry in one go, in well under this.
pub const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(600);

/// The cache.
#[derive(Debug, Clone)]
pub struct DiskCache {
    dir: PathBuf,
    cap_bytes: u64,
}

impl DiskCache {
    /// A cache in `dir` holding at most `cap_bytes` (created on first write).
    pub fn new(dir: PathBuf, cap_bytes: u64) -> Self {
        Self { dir, cap_bytes }
    }

    fn path(&self, checksum: &str) -> PathBuf {
        self.dir.join(format!("{checksum}.bin"))
    }

    /// The cached file for `checksum`, marked used; `None` if absent.
    pub fn get_path(&self, checksum: &str) -> Option<PathBuf> {
        let path = self.path(checksum);
        let file = std::fs::File::options().append(true).open(&path).ok()?;
        let _ = file.set_modified(std::time::SystemTime::now());
        Some(path)
    }

    /// Stores `bytes` under `checksum`, then evicts least recently used files over the cap;
    /// returns the cached file. Entries larger than the whole cap are not stored (`None`).
    pub fn put(&self, checksum: &str, bytes: &[u8]) -> Result<Option<PathBuf>, StoreError> {
        if bytes.len() as u64 > self.cap_bytes {
            return Ok(None);
        }
        // A unique temporary name: two fetches of the same shard may finish at once.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let target = self.path(checksum);
        let tmp = self.dir.join(format!(
            "{checksum}.{}-{n}{}",
            std::process::id(),
            crate::atomic::TEMP_SUFFIX
        ));
        crate::atomic::write_file(&tmp, bytes)?;
        std::fs::rename(&tmp, &target).map_err(|source| StoreError::Io {
            op: "rename",
            path: target.clone(),
            source,
        })?;
        self.evict()?;
        Ok(Some(target))
    }

    /// Bytes currently held.
    pub fn size(&self) -> u64 {
        entries(&self.dir).iter().map(|e| e.1).sum()
    }

    fn evict(&self) -> Result<(), StoreError> {
        remove_stale_temps(&self.dir)?;
        let mut files = entries(&self.dir);
        let mut total: u64 = files.iter().map(|e| e.1).sum();
        files.sort_by_key(|e| e.2);
        for (path, size, _) in files {
            if total <= self.cap_bytes {
                break;
            }
            std::fs::remove_file(&path).map_err(|source| StoreError::Io {
                op: "remove",
                path: path.clone(),
                source,
            })?;
            total -= size;
        }
        Ok(())
    }
}

/// Removes the temporary files in `dir` not modified for [`STALE_TEMP`] (another process may
/// remove one first: that is no error).
fn remove_stale_temps(dir: &Path) -> Result<(), StoreError> {
    let now = std::time::SystemTime::now();
    let stale = |e: &std::fs::DirEntry| {
        crate::atomic::name_of(e).ends_with(crate::atomic::TEMP_SUFFIX)
            && e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > STALE_TEMP))
    };
    crate::atomic::remove_files(dir, false, &stale).map(drop)
}

/// Cached files with their sizes and last use.
fn entries(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    read.flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "bin"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((e.path(), meta.len(), meta.modified().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keeps_recent_entries_under_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(dir.path().to_path_buf(), 250);
        cache.put("a", &[1; 100]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        cache.put("b", &[2; 100]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let a = cache.get_path("a").unwrap(); // `a` is now the most recent
        assert_eq!(std::fs::read(a).unwrap(), [1; 100]);
        std::thread::sleep(std::time::Duration::from_millis(20));
        cache.put("c", &[3; 100]).unwrap();
        assert!(
            cache.get_path("b").is_none(),
            "least recently used goes first"
        );
        assert!(cache.get_path("a").is_some() && cache.get_path("c").is_some());
        assert!(cache.size() <= 250);
        cache.put("huge", &[0; 1000]).unwrap();
        assert!(cache.get_path("huge").is_none());
    }

    #[test]
    fn temporary_files_of_killed_fetches_go_once_stale() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(dir.path().to_path_buf(), 1 << 20);
        let temp = |name: &str| {
            dir.path()
                .join(format!("{name}{}", crate::atomic::TEMP_SUFFIX))
        };
        let (old, fresh) = (temp("x.1-0"), temp("y.2-0"));
        for f in [&old, &fresh] {
            std::fs::write(f, [0; 100]).unwrap();
        }
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .append(true)
            .open(&old)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        cache.put("a", &[1; 10]).unwrap();
        assert!(!old.exists(), "a stale temporary file is removed");
        assert!(fresh.exists(), "a fetch in progress is left alone");
    }
}
