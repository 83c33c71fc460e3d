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
    #[error("storage request for `{spec}` failed: {source}{}", credentials_hint(.source))]
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

/// The instance-metadata address the S3 client asks for credentials when the environment has
/// none.
const INSTANCE_METADATA: &str = "169.254.169.254";

/// A hint for a failure of the S3 client's last way to find credentials: asking the cloud
/// machine's metadata service, which off a cloud machine is unreachable or refused.
fn credentials_hint(e: &object_store::Error) -> &'static str {
    if e.to_string().contains(INSTANCE_METADATA) {
        " (no AWS credentials were found in the environment, so the S3 client asked the \
         instance-metadata service at 169.254.169.254; set AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY, and AWS_ENDPOINT for an S3-compatible server)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credentials_failure_says_what_to_set() {
        let failed = |text: &str| StoreError::Backend {
            spec: "s3://bucket/x".into(),
            source: object_store::Error::Generic {
                store: "S3",
                source: text.into(),
            },
        };
        let imds =
            failed("Error performing PUT http://169.254.169.254/latest/api/token").to_string();
        assert!(
            imds.contains("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
            "{imds}"
        );
        let other = failed("connection refused").to_string();
        assert!(other.ends_with("connection refused"), "{other}");
    }
}
