//! Opening stores and expanding input specs.
//!
//! An input spec is one of:
//! - a local file or folder path (`data/wiki.jsonl.zst`, `data/texts/`),
//! - a local glob (`data/**/*.jsonl.gz`),
//! - an S3 object, prefix or glob (`s3://bucket/corpus/`, `s3://bucket/corpus/*.jsonl.zst`).
//!
//! Folders and prefixes expand to every object below them, except names starting with `.` or
//! `_` (temporaries, manifests). The expansion is sorted by path, so every run sees the same order.

use std::path::Path as FsPath;
use std::sync::Arc;

use futures::TryStreamExt;
use globset::GlobBuilder;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, RetryConfig};

use crate::StoreError;

/// One object to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Where it lives, as a URL (`file:///abs/path` or `s3://bucket/key`): stable provenance.
    pub uri: String,
    /// Its path inside the store.
    pub path: Path,
    /// Its size in bytes.
    pub size: u64,
}

/// The objects an input spec expands to, with the store that holds them.
#[derive(Debug, Clone)]
pub struct InputSet {
    /// The store holding every file of the set.
    pub store: Arc<dyn ObjectStore>,
    /// The files, sorted by path.
    pub files: Vec<InputFile>,
    /// The URL prefix that `path`s are relative to (`file:///` or `s3://bucket/`).
    pub root: String,
}

/// Whether a spec is a URL (`s3://…`, `file://…`) rather than a plain path. Outputs that are
/// written only to local files refuse URLs, which would otherwise make a folder named `s3:`.
pub fn is_url(spec: &str) -> bool {
    spec.contains("://")
}

/// The local path a spec names: a plain path, or the path of a `file://` URL (the form Refinery
/// records); `None` for any other URL.
pub fn local_path(spec: &str) -> Option<&str> {
    let path = spec.strip_prefix("file://").unwrap_or(spec);
    (!is_url(path)).then_some(path)
}

/// Opens the store for a spec and returns it with its URL root and the path inside it.
pub fn open_store(spec: &str) -> Result<(Arc<dyn ObjectStore>, String, Path), StoreError> {
    let invalid = |reason: String| StoreError::InvalidSpec {
        spec: spec.to_string(),
        reason,
    };
    if let Some(rest) = spec.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid("an s3:// URL needs a bucket name".into()));
        }
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(retry_policy())
            .build()
            .map_err(|source| StoreError::Backend {
                spec: spec.to_string(),
                source,
            })?;
        let path = Path::parse(key.trim_end_matches('/')).map_err(|e| invalid(e.to_string()))?;
        return Ok((Arc::new(store), format!("s3://{bucket}/"), path));
    }
    let Some(spec) = local_path(spec) else {
        return Err(invalid(
            "only local paths, file:// and s3:// URLs are supported".into(),
        ));
    };
    // Canonical when it exists (no `..`, symlinks resolved: stable URIs); else just absolute.
    let abs = std::fs::canonicalize(spec)
        .or_else(|_| std::path::absolute(spec))
        .map_err(|e| invalid(e.to_string()))?;
    let path = Path::from_absolute_path(&abs).map_err(|e| invalid(e.to_string()))?;
    Ok((
        Arc::new(LocalFileSystem::new()),
        "file:///".to_string(),
        path,
    ))
}

/// How S3 requests are retried: transient failures (refused connections, timeouts, 5xx, throttling)
/// up to 5 times with exponential backoff from 100 ms (doubling, at most 15 s between tries),
/// giving up 60 s after the first try. A single request's timeout is `AWS_TIMEOUT` (default 30s).
pub fn retry_policy() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 5,
        retry_timeout: std::time::Duration::from_secs(60),
    }
}

/// Expands an input spec into the sorted list of objects it names.
///
/// Fails with [`StoreError::NotFound`] when it names nothing, and [`StoreError::Backend`] when the
/// store cannot be reached (a bucket that does not exist, a refused connection).
pub async fn list_inputs(spec: &str) -> Result<InputSet, StoreError> {
    let (literal, pattern) = split_glob(spec);
    let (store, root, base) = open_store(literal)?;
    let backend = |source| StoreError::Backend {
        spec: spec.to_string(),
        source,
    };
    let files = if let Some(pattern) = pattern {
        // Match the raw pattern against listed paths: object_store would percent-encode `{` and `[`.
        let full = if base.as_ref().is_empty() {
            pattern.to_string()
        } else {
            format!("{base}/{pattern}")
        };
        let invalid = |e: globset::Error| StoreError::InvalidSpec {
            spec: spec.to_string(),
            reason: e.to_string(),
        };
        let matcher = GlobBuilder::new(&full)
            .literal_separator(true)
            .build()
            .map_err(invalid)?
            .compile_matcher();
        let all = list_below(store.as_ref(), &base, &root)
            .await
            .map_err(backend)?;
        all.into_iter()
            .filter(|f| matcher.is_match(f.path.as_ref()))
            .collect()
    } else if is_local_dir(spec) {
        list_below(store.as_ref(), &base, &root)
            .await
            .map_err(backend)?
    } else {
        match store.head(&base).await {
            Ok(meta) => vec![input_file(&root, meta)],
            Err(object_store::Error::NotFound { .. }) => list_below(store.as_ref(), &base, &root)
                .await
                .map_err(backend)?,
            Err(e) => return Err(backend(e)),
        }
    };
    if files.is_empty() {
        return Err(StoreError::NotFound {
            spec: spec.to_string(),
        });
    }
    Ok(InputSet { store, files, root })
}

/// Splits a spec at the folder holding its first glob character: (literal folder, pattern).
fn split_glob(spec: &str) -> (&str, Option<&str>) {
    match spec.find(['*', '?', '[', '{']) {
        None => (spec, None),
        Some(first) => match spec[..first].rfind('/') {
            Some(slash) => (&spec[..slash], Some(&spec[slash + 1..])),
            None => (".", Some(spec)),
        },
    }
}

fn is_local_dir(spec: &str) -> bool {
    !spec.starts_with("s3://") && FsPath::new(spec).is_dir()
}

fn input_file(root: &str, meta: object_store::ObjectMeta) -> InputFile {
    InputFile {
        uri: format!("{root}{}", meta.location),
        size: meta.size,
        path: meta.location,
    }
}

/// Lists every visible object below `prefix`, sorted by path.
async fn list_below(
    store: &dyn ObjectStore,
    prefix: &Path,
    root: &str,
) -> Result<Vec<InputFile>, object_store::Error> {
    let metas: Vec<_> = store.list(Some(prefix)).try_collect().await?;
    let mut files: Vec<InputFile> = metas
        .into_iter()
        .filter(|m| !is_hidden(m.location.as_ref(), prefix.as_ref()))
        .map(|m| input_file(root, m))
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// True when any path segment below `prefix` starts with `.` or `_`.
fn is_hidden(location: &str, prefix: &str) -> bool {
    let below = location.strip_prefix(prefix).unwrap_or(location);
    below
        .split('/')
        .any(|seg| seg.starts_with('.') || seg.starts_with('_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn expands_files_folders_and_globs_in_sorted_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b.jsonl",
            "a.jsonl",
            "sub/c.jsonl.gz",
            "sub/d.txt",
            "_manifest.json",
            ".x.tmp",
        ] {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, name).unwrap();
        }
        let root = dir.path().to_str().unwrap();
        let names = |spec: String| -> Vec<String> {
            let set = rt().block_on(list_inputs(&spec)).unwrap();
            set.files
                .iter()
                .map(|f| f.path.filename().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            names(root.to_string()),
            ["a.jsonl", "b.jsonl", "c.jsonl.gz", "d.txt"]
        );
        assert_eq!(names(format!("{root}/*.jsonl")), ["a.jsonl", "b.jsonl"]);
        assert_eq!(
            names(format!("{root}/**/*.jsonl*")),
            ["a.jsonl", "b.jsonl", "c.jsonl.gz"]
        );
        assert_eq!(names(format!("{root}/b.jsonl")), ["b.jsonl"]);
        let one = rt()
            .block_on(list_inputs(&format!("{root}/a.jsonl")))
            .unwrap();
        assert!(one.files[0].uri.starts_with("file:///") && one.files[0].uri.ends_with("/a.jsonl"));
        assert_eq!(one.files[0].size, 7);
    }

    #[test]
    fn missing_inputs_and_bad_specs_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = format!("{}/nope.jsonl", dir.path().display());
        assert!(matches!(
            rt().block_on(list_inputs(&missing)),
            Err(StoreError::NotFound { .. })
        ));
        let glob = format!("{}/*.parquet", dir.path().display());
        assert!(matches!(
            rt().block_on(list_inputs(&glob)),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            open_store("gs://b/k"),
            Err(StoreError::InvalidSpec { .. })
        ));
        assert!(matches!(
            open_store("s3:///k"),
            Err(StoreError::InvalidSpec { .. })
        ));
        assert_eq!(
            split_glob("s3://b/raw/*.zst"),
            ("s3://b/raw", Some("*.zst"))
        );
        assert_eq!(split_glob("*.jsonl"), (".", Some("*.jsonl")));
        assert_eq!(split_glob("/a/b.jsonl"), ("/a/b.jsonl", None));
    }
}
