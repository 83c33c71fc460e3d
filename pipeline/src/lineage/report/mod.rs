//! The audit report of a checkpoint or a version: every figure is a DataFusion SQL query over
//! the lineage tables, and the JSON lists each query with its rows so an auditor can rerun it
//! with `refinery query` (the `tables` object gives each table's location).
//!
//! - [`sections`]: the queries, one per figure; [`checks`](sections::checks): queries that must return no rows.
//! - [`html`]: one self-contained HTML file with inline SVG charts ([`svg`]).
//! - [`openlineage`]: OpenLineage run events for existing lineage services.
//!
//! The JSON layout is documented by `docs/report.schema.json` (JSON Schema).

pub mod html;
pub mod openlineage;
pub mod sections;
pub mod svg;

use std::path::Path;

use serde::Serialize;
use serde_json::Value;
use tokio::runtime::Handle;

use super::LineageError;
use super::catalog::{DROPPED_TOKENS, Lineage, SHARD_DOCS};
use super::trace::rows;
use crate::output::manifest::Manifest as RunManifest;
pub use sections::{Chart, SectionSpec};

/// The report's format name.
pub const FORMAT: &str = "refinery.lineage.report";
/// Version of its layout.
pub const FORMAT_VERSION: u32 = 1;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Refinery's version.
    pub tool_version: String,
    /// When it was made (RFC 3339).
    pub generated: String,
    /// What it is about.
    pub subject: Subject,
    /// Every registered table and its location.
    pub tables: std::collections::BTreeMap<String, String>,
    /// The figures, in order.
    pub sections: Vec<Section>,
    /// Invariants checked on the tables.
    pub checks: Vec<Check>,
}

/// What a report is about.
#[derive(Debug, Clone, Serialize)]
pub struct Subject {
    /// `checkpoint`, `version` or `run`.
    pub kind: String,
    /// The checkpoint folder.
    pub checkpoint: Option<String>,
    /// Its step.
    pub step: Option<u64>,
    /// The dataset root.
    pub root: Option<String>,
    /// The version id.
    pub version: Option<String>,
    /// The run output folder.
    pub run: Option<String>,
}

/// One figure: its query and result.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// Stable id (`funnel`, `rules`, ...).
    pub id: String,
    /// Heading.
    pub title: String,
    /// What it shows.
    pub description: String,
    /// The SQL (rerun it with `refinery query`).
    pub sql: String,
    /// False when a table it needs is absent (no dedup stage, no training, ...).
    pub available: bool,
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Result rows as objects.
    pub rows: Vec<Value>,
    /// How the HTML draws it.
    pub chart: Chart,
}

/// An invariant: a query that returns the rows breaking it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable id.
    pub id: String,
    /// What must hold.
    pub description: String,
    /// The SQL (empty result = holds).
    pub sql: String,
    /// Whether it was checked (its tables exist).
    pub available: bool,
    /// Whether it holds.
    pub holds: bool,
    /// Offending rows (the first [`MAX_VIOLATIONS`]).
    pub violations: Vec<Value>,
}

/// Most offending rows a check keeps.
pub const MAX_VIOLATIONS: usize = 20;

/// Runs every query of the report over `lineage`'s tables, holding at most `memory_budget` bytes
/// of query state.
pub fn build(
    lineage: &Lineage,
    memory_budget: usize,
    handle: &Handle,
) -> Result<Report, LineageError> {
    let mut tables: std::collections::BTreeMap<String, String> =
        lineage.tables()?.into_iter().collect();
    if let Some(dir) = tables.get_mut(SHARD_DOCS) {
        // Rerunnable as `--table shard_docs=<glob>`.
        dir.push_str("*/*/*.index.parquet");
    }
    let checkpoint_name = lineage.checkpoint.as_ref().map(|c| {
        c.path
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned())
    });
    let step = lineage.checkpoint.as_ref().map(|c| c.state.step);
    let params = sections::Params {
        checkpoint: checkpoint_name.clone(),
        step,
        tokens: tables.contains_key(DROPPED_TOKENS),
    };
    let ctx = handle.block_on(lineage.context(memory_budget))?;
    let has = |needs: &[&str]| needs.iter().all(|t| tables.contains_key(*t));
    let mut sections = Vec::new();
    for spec in sections::sections(&params) {
        let available = has(spec.needs);
        let rows = if available {
            handle.block_on(rows(&ctx, &spec.sql))?
        } else {
            Vec::new()
        };
        sections.push(Section {
            id: spec.id.into(),
            title: spec.title.into(),
            description: spec.description.into(),
            columns: spec.columns.iter().map(|c| c.to_string()).collect(),
            sql: spec.sql,
            available,
            rows,
            chart: spec.chart,
        });
    }
    let mut checks = Vec::new();
    for spec in sections::checks() {
        let available = has(spec.needs);
        let violations = if available {
            // Only the rows kept are fetched: a check that fails on every document must not
            // gather them all.
            let first = format!("{} LIMIT {MAX_VIOLATIONS}", spec.sql);
            handle.block_on(rows(&ctx, &first))?
        } else {
            Vec::new()
        };
        checks.push(Check {
            id: spec.id.into(),
            description: spec.description.into(),
            sql: spec.sql,
            available,
            holds: violations.is_empty(),
            violations,
        });
    }
    if let Some(run) = &lineage.run {
        checks.push(manifest_check(run, &sections)?);
    }
    let subject = Subject {
        kind: if lineage.checkpoint.is_some() {
            "checkpoint"
        } else if lineage.version.is_some() {
            "version"
        } else {
            "run"
        }
        .into(),
        checkpoint: lineage
            .checkpoint
            .as_ref()
            .map(|c| c.path.display().to_string()),
        step,
        root: lineage.version.as_ref().map(|v| v.root.uri().to_string()),
        version: lineage.version.as_ref().map(|v| v.id.clone()),
        run: lineage.run.as_ref().map(|r| r.display().to_string()),
    };
    Ok(Report {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        generated: shards::dataset::manifest::output_time_rfc3339(),
        subject,
        tables,
        sections,
        checks,
    })
}

/// The `stages` section's totals against the run manifest's accounting, stage by stage.
fn manifest_check(run: &Path, sections: &[Section]) -> Result<Check, LineageError> {
    let manifest = RunManifest::load(run).map_err(LineageError::NotFound)?;
    let stages = sections.iter().find(|s| s.id == "stages");
    let mut violations = Vec::new();
    for (i, counts) in manifest.accounting.stages.iter().enumerate() {
        let row = stages.and_then(|s| s.rows.iter().find(|r| r["stage_index"] == i));
        let get = |k: &str| row.and_then(|r| r[k].as_u64()).unwrap_or(0);
        let found = (get("documents_in"), get("kept"), get("dropped"));
        if found != (counts.input, counts.kept, counts.dropped) {
            violations.push(serde_json::json!({
                "stage": counts.name,
                "manifest": [counts.input, counts.kept, counts.dropped],
                "decisions": [found.0, found.1, found.2],
            }));
        }
    }
    Ok(Check {
        id: "manifest_accounting".into(),
        description: "Per stage, documents in, kept and dropped in `decisions` equal the run manifest's accounting".into(),
        sql: stages.map_or(String::new(), |s| s.sql.clone()),
        available: stages.is_some_and(|s| s.available),
        holds: violations.is_empty(),
        violations,
    })
}

/// Writes the report as pretty JSON.
pub fn write_json(report: &Report, path: &Path) -> Result<(), LineageError> {
    let mut bytes = serde_json::to_vec_pretty(report).unwrap_or_default();
    bytes.push(b'\n');
    write_file(path, &bytes)
}

/// Writes a report file atomically.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), LineageError> {
    shards::atomic::write_file(path, bytes).map_err(|e| LineageError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })
}

#[cfg(test)]
mod tests;
