//! Lineage: from any checkpoint back to source bytes, as Parquet tables and SQL.
//!
//! | table | written by | where | one row per |
//! |---|---|---|---|
//! | `runs` | `refinery run` | `<out>/runs/` | invocation of a run, complete or failed ([`runs`]) |
//! | `documents` | `refinery run` | `<out>/documents/` | ingested document (provenance, bytes) |
//! | `decisions` | `refinery run` | `<out>/decisions/` | document × stage it reached: kept or dropped, rule, value, threshold, bytes before/after |
//! | `rejects`, `edits`, `quarantine` | `refinery run` | `<out>/…/` | dropped document (with text), text change, unreadable record |
//! | `clusters` | dedup stages | `<out>/clusters/` | member of a duplicate cluster |
//! | `contamination` | `decontaminate` | `<out>/contamination/` | benchmark hit |
//! | `shard_docs` | tokenize | `<root>/versions/<id>/*/*/*.index.parquet` | document piece in a shard (version, shard, token range) |
//! | `dropped_tokens` | tokenize | `<root>/versions/<id>/dropped_tokens.parquet` | dropped document's token count |
//! | `training` | `refinery train` | `<train>/lineage/training.parquet` | checkpoint × source ([`training`]) |
//! | `losses` | `refinery train` | `<train>/lineage/losses.parquet` | logged training or validation loss |
//!
//! [`Lineage`] finds the tables of a checkpoint, a version or a run by following the links each
//! output records (checkpoint → version → run) and registers them in a DataFusion session.

pub mod catalog;
pub mod report;
pub mod runs;
pub mod trace;
pub mod training;

pub use catalog::Lineage;

/// Why lineage could not be found, read or written.
#[derive(Debug, thiserror::Error)]
pub enum LineageError {
    /// A path names no checkpoint, training folder, run or version, or a record is missing.
    #[error("{0}")]
    NotFound(String),
    /// A checkpoint could not be read or replayed.
    #[error(transparent)]
    Train(#[from] trainer::TrainError),
    /// A dataset root or version could not be read.
    #[error(transparent)]
    Store(#[from] shards::StoreError),
    /// A query failed (the message, without DataFusion's repeated cause chain).
    #[error("query: {0}")]
    Query(String),
    /// Building rows failed.
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    /// Writing a table failed.
    #[error(transparent)]
    Part(#[from] crate::output::part::PartError),
    /// Writing a report file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl From<datafusion::error::DataFusionError> for LineageError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        LineageError::Query(e.find_root().to_string())
    }
}
