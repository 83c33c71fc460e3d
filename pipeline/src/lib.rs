//! The Refinery orchestrator: reads sources, runs the stage DAG and writes auditable outputs.
//!
//! - [`schema`]: the document, rejects and quarantine schemas, and document ids.
//! - [`config`]: the TOML run config and its validation.
//! - [`ingest`]: readers (JSONL, JSONL.gz/.zst, Parquet, text folders; local or S3) into batches.
//! - [`stage`]: the [`stage::Stage`] contract every step implements.
//! - [`stages`]: the stage registry and the stages themselves.
//! - [`executor`]: runs units of work through the stages with bounded memory; resumes.
//! - [`output`]: Parquet parts, unit records and the run manifest.
//! - [`tokenize`]: the run's output into a versioned token dataset.
//! - [`lineage`]: lineage tables, `trace` and the audit report.
//! - [`sql`]: DataFusion over outputs (stats, queries).
//! - [`progress`]: progress counters and bar.
//! - [`demo`]: the sample corpus behind `refinery demo`.
//! - [`cli`]: the `refinery` command line.
//! - [`arenas`]: caps the C allocator's arenas, so freed memory is reused across threads.

pub mod arenas;
pub mod cli;
pub mod config;
pub mod demo;
pub mod executor;
pub mod ingest;
pub mod lineage;
pub mod output;
pub mod progress;
pub mod schema;
pub mod sql;
pub mod stage;
pub mod stages;
pub mod tokenize;
