//! A dataset root: the folder or S3 prefix holding a dataset's versions and its `latest` ref.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use super::manifest::Manifest;
use crate::StoreError;
use crate::checksum::to_hex;

/// The ref naming the newest complete version.
pub const LATEST: &str = "latest";
/// The folder of versions.
pub const VERSIONS: &str = "versions";
/// A version's manifest file name.
pub const MANIFEST: &str = "manifest.json";
/// Objects at least this large are uploaded in parts.
pub const MULTIPART_THRESHOLD: usize = 16 << 20;
/// Part size of multipart uploads.
pub const PART_BYTES: usize = 8 << 20;

/// A dataset root in any store.
#[derive(Debug, Clone)]
pub struct DatasetRoot {
    store: Arc<dyn ObjectStore>,
    /// The store's URL root (`file:///` or `s3://bucket/`).
    store_root: String,
    base: Path,
    uri: String,
}

impl DatasetRoot {
    /// Opens the root at a local path or `s3://bucket/prefix` (nothing is created yet).
    pub fn open(spec: &str) -> Result<Self, StoreError> {
        let (store, store_root, base) = crate::open_store(spec)?;
        if crate::local_path(spec).is_some_and(|p| std::path::Path::new(p).is_file()) {
            return Err(StoreError::InvalidSpec {
                spec: spec.to_string(),
                reason: format!(
                    "a file, not a dataset root (a folder of `{VERSIONS}/` and `{LATEST}`)"
                ),
            });
        }
        let uri = format!("{store_root}{base}");
        Ok(Self {
            store,
            store_root,
            base,
            uri,
        })
    }

    /// The root as a URL (`file:///abs/path` or `s3://bucket/prefix`).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The store holding the root.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The store path of `rel` inside version `id`.
    pub fn version_path(&self, id: &str, rel: &str) -> Path {
        self.child(&format!("{VERSIONS}/{id}/{rel}"))
    }

    /// The store path of `rel` inside the root.
    pub fn child(&self, rel: &str) -> Path {
        rel.split('/')
            .fold(self.base.clone(), |p, part| p.clone().join(part))
    }

    /// The URL of an object of the store (`s3://bucket/prefix/versions/...`).
    pub fn object_uri(&self, path: &Path) -> String {
        format!("{}{}", self.store_root, path.as_ref())
    }

    fn backend(&self, path: &Path) -> impl Fn(object_store::Error) -> StoreError {
        let spec = self.object_uri(path);
        move |source| StoreError::Backend {
            spec: spec.clone(),
            source,
        }
    }

    /// Reads a whole object.
    pub async fn get(&self, path: &Path) -> Result<Bytes, StoreError> {
        let result = self.store.get(path).await.map_err(self.backend(path))?;
        result.bytes().await.map_err(self.backend(path))
    }

    /// Writes a whole object: one request when small, a multipart upload (aborted on failure,
    /// so nothing partial becomes visible) when large. The store's client retries failed
    /// requests with backoff.
    pub async fn put(&self, path: &Path, bytes: Bytes) -> Result<(), StoreError> {
        let err = self.backend(path);
        if bytes.len() < MULTIPART_THRESHOLD {
            self.store
                .put(path, PutPayload::from_bytes(bytes))
                .await
                .map_err(err)?;
            return Ok(());
        }
        let upload = self.store.put_multipart(path).await.map_err(&err)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        for chunk in bytes.chunks(PART_BYTES) {
            writer.wait_for_capacity(4).await.map_err(&err)?;
            writer.put(bytes.slice_ref(chunk));
        }
        writer.finish().await.map_err(err)?;
        Ok(())
    }

    /// Removes what an interrupted write of version `id` left, before it is written again: on a
    /// local root, the staging files (`NAME#N`) of the objects it did not finish, in the
    /// version's folder and beside `latest`; returns how many. On S3 an unfinished upload is
    /// never an object (the parts of a killed multipart upload stay invisible until the
    /// bucket's lifecycle rule expires them).
    pub fn remove_staged(&self, id: &str) -> Result<usize, StoreError> {
        if self.store_root != "file:///" {
            return Ok(0);
        }
        let dir = object_store::local::LocalFileSystem::new()
            .path_to_filesystem(&self.base)
            .map_err(self.backend(&self.base))?;
        let version = dir.join(VERSIONS).join(id);
        Ok(crate::atomic::remove_staged_uploads(&dir, false)?
            + crate::atomic::remove_staged_uploads(&version, true)?)
    }

    /// Whether version `id` is complete (its manifest exists).
    pub async fn has_version(&self, id: &str) -> Result<bool, StoreError> {
        let path = self.version_path(id, MANIFEST);
        match self.store.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.backend(&path)(e)),
        }
    }

    /// The manifest of version `id`.
    pub async fn manifest(&self, id: &str) -> Result<Manifest, StoreError> {
        Ok(self.manifest_with_checksum(id).await?.0)
    }

    /// The manifest of version `id` and the xxh3-64 of its bytes (what a model's lineage pins).
    pub async fn manifest_with_checksum(&self, id: &str) -> Result<(Manifest, String), StoreError> {
        let path = self.version_path(id, MANIFEST);
        let bytes = match self.store.get(&path).await {
            Ok(r) => r.bytes().await.map_err(self.backend(&path))?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StoreError::NoVersion {
                    root: self.uri.clone(),
                    version: id.to_string(),
                });
            }
            Err(e) => return Err(self.backend(&path)(e)),
        };
        let manifest = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path: self.object_uri(&path),
            reason: e.to_string(),
        })?;
        Ok((manifest, to_hex(xxhash_rust::xxh3::xxh3_64(&bytes))))
    }

    /// The id `latest` points at, if any version was completed.
    pub async fn latest(&self) -> Result<Option<String>, StoreError> {
        let path = self.child(LATEST);
        match self.store.get(&path).await {
            Ok(r) => {
                let bytes = r.bytes().await.map_err(self.backend(&path))?;
                Ok(Some(String::from_utf8_lossy(&bytes).trim().to_string()))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.backend(&path)(e)),
        }
    }

    /// Resolves a version name: `None` or `latest` means the `latest` ref.
    pub async fn resolve(&self, version: Option<&str>) -> Result<String, StoreError> {
        match version {
            Some(id) if id != LATEST => Ok(id.to_string()),
            _ => self.latest().await?.ok_or_else(|| StoreError::NoVersion {
                root: self.uri.clone(),
                version: LATEST.to_string(),
            }),
        }
    }

    /// Points `latest` at `id` (a single-object put: readers see the old or the new id).
    pub async fn set_latest(&self, id: &str) -> Result<(), StoreError> {
        self.put(&self.child(LATEST), Bytes::from(format!("{id}\n")))
            .await
    }

    /// The manifests of every complete version, oldest first (by creation time, then id).
    pub async fn versions(&self) -> Result<Vec<Manifest>, StoreError> {
        let prefix = self.child(VERSIONS);
        let listed: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(self.backend(&prefix))?;
        let mut ids: Vec<String> = listed
            .iter()
            .filter(|m| m.location.filename() == Some(MANIFEST))
            .filter_map(|m| {
                let parts: Vec<_> = m.location.parts().collect();
                (parts.len() >= 2).then(|| parts[parts.len() - 2].as_ref().to_string())
            })
            .collect();
        ids.sort();
        let mut manifests = Vec::with_capacity(ids.len());
        for id in ids {
            manifests.push(self.manifest(&id).await?);
        }
        manifests.sort_by(|a, b| (&a.created, &a.version).cmp(&(&b.created, &b.version)));
        Ok(manifests)
    }
}

/// Checks `bytes` against a manifest checksum, naming the object on mismatch.
pub fn verify(path: &str, bytes: &[u8], expected: &str) -> Result<(), StoreError> {
    let actual = to_hex(xxhash_rust::xxh3::xxh3_64(bytes));
    if actual == expected {
        Ok(())
    } else {
        Err(StoreError::Checksum {
            path: path.to_string(),
            expected: expected.to_string(),
            actual,
        })
    }
}
