//! The trainer's error type.

use std::path::PathBuf;

/// Why training, evaluation or generation failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The training config is invalid (names the file and the problem).
    #[error("{path}: {message}")]
    Config {
        /// The config file (or `<config>` for one built in code).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A tensor operation failed.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// Reading the shard version failed.
    #[error(transparent)]
    Store(#[from] shards::StoreError),
    /// The mixture schedule does not fit the version.
    #[error(transparent)]
    Windows(#[from] shards::dataset::windows::WindowError),
    /// A local file could not be read or written.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A checkpoint is missing a part, or does not match the run it should continue.
    #[error("checkpoint {}: {message}", path.display())]
    Checkpoint {
        /// The checkpoint folder.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A parameter got no gradient: some op on its path records no backward pass.
    #[error("parameter `{0}` received no gradient (an op on its path records no backward pass)")]
    NoGradient(String),
    /// The requested device is not available in this build or on this machine.
    #[error("device: {0}")]
    Device(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// An I/O error on `path` while doing `op`.
pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.into();
    move |source| TrainError::Io { op, path, source }
}
