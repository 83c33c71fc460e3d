//! The storage error type. Variants name who must act: the user (a bad URL), the data (a missing
//! object) or the backend (a failed request).

use std::path::PathBuf;

/// An error from storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The spec is not a path or a URL Refinery can open (the user must fix it).
    #[error("invalid input spec `{spec}`: {reason}")]
    InvalidSpec {
        /// The spec as given.
        spec: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Nothing exists at the spec (no file, no object, no match for the glob).
    #[error("no input found at `{spec}`")]
    NotFound {
        /// The spec as given.
        spec: String,
    },
    /// The object store refused or failed a request (unreachable endpoint, missing bucket, ...).
    #[error("storage request for `{spec}` failed: {source}")]
    Backend {
        /// The spec or object the request was for.
        spec: String,
        /// The backend's error.
        #[source]
        source: object_store::Error,
    },
    /// A local file-system operation failed.
    #[error("{op} `{path}` failed: {source}")]
    Io {
        /// What was being done (`create`, `rename`, ...).
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Stored bytes are not what the manifest says (corrupted or replaced).
    #[error("checksum mismatch for `{path}`: manifest says {expected}, the bytes hash to {actual}")]
    Checksum {
        /// The object.
        path: String,
        /// The checksum in the manifest.
        expected: String,
        /// The checksum of the bytes read.
        actual: String,
    },
    /// Stored bytes cannot be what they claim to be (a bad manifest, a malformed shard).
    #[error("`{path}` is corrupt: {reason}")]
    Corrupt {
        /// The object.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A dataset root has no such version (or no versions at all).
    #[error("no version `{version}` under `{root}` ({})", version_hint(.version))]
    NoVersion {
        /// The dataset root.
        root: String,
        /// The version asked for (`latest` when none was named).
        version: String,
    },
}

/// What to try when a version is missing: for `latest`, that nothing was tokenized there.
fn version_hint(version: &str) -> &'static str {
    if version == crate::dataset::root::LATEST {
        "nothing was tokenized there: a dataset root is the `[tokenize] root` a run writes"
    } else {
        "`refinery versions list ROOT` lists the versions there are"
    }
}
