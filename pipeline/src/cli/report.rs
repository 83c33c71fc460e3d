//! `refinery report KIND DIR`: fixed SQL reports over a run's lineage tables.
//!
//! - `contamination`: which benchmark items appeared in which sources, and in how many
//!   documents, from the `contamination` table of `decontaminate` stages.

use std::path::Path;

use clap::ValueEnum;
use tokio::runtime::Handle;

use super::query::{query, run_tables};
use super::{Failure, SqlMemory};
use crate::sql::OutputFormat;
use crate::stages::decontaminate::CONTAMINATION;

/// The reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportKind {
    /// Benchmark items found, by benchmark, item, field and source.
    Contamination,
}

/// The contamination report's SQL; `refinery query --dir OUT` runs it (or a variant) too.
pub const CONTAMINATION_SQL: &str = "SELECT benchmark, item, field, source, count(*) AS documents, \
     max(matched_ngrams) AS max_matched_ngrams, max(passage_ngrams) AS passage_ngrams, \
     max(overlap) AS max_overlap, min(action) AS action \
     FROM contamination GROUP BY benchmark, item, field, source \
     ORDER BY benchmark, item, field, source";

/// Prints report `kind` of the run in `dir`.
pub fn report(
    kind: ReportKind,
    dir: &Path,
    format: OutputFormat,
    memory: SqlMemory,
    handle: &Handle,
) -> Result<(), Failure> {
    match kind {
        ReportKind::Contamination => {
            let tables = run_tables(dir)?;
            if !tables.iter().any(|(name, _)| name == CONTAMINATION) {
                eprintln!(
                    "No contamination found in {}: no decontaminate stage flagged a document.",
                    dir.display()
                );
                if format == OutputFormat::Json {
                    outln!("[]");
                }
                return Ok(());
            }
            query(CONTAMINATION_SQL, tables, None, format, memory, handle)
        }
    }
}
