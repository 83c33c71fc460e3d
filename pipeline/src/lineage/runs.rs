//! The `runs` table: one row per invocation of a run over an output folder.
//!
//! Columns: `run_id` (xxh3-64 of the run's `_manifest.json`, the id token versions name as their
//! parent), `started`, `ended` (RFC 3339 UTC), `config_path`, `config` (the TOML text),
//! `config_hash`, `tool_version`, `units`, `units_resumed` (finished by an earlier invocation),
//! `inputs` (a JSON array of `{uri, bytes, xxh3}`), `version_root` and `version` (the token
//! dataset root and the version written or reused, when the config tokenizes).
//!
//! Each invocation writes its own part, `runs/<started>.parquet`, so an interrupted and resumed
//! run shows both attempts. This is the one table that records when: it is left out of the run
//! manifest and of the byte-identity of outputs.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::executor::RunSummary;
use crate::output::RUNS;
use crate::output::part::{PartError, PartInfo, PartWriter};

/// One invocation of a run.
#[derive(Debug, Clone)]
pub struct RunRow<'a> {
    /// When it started and ended (RFC 3339).
    pub started: String,
    /// When it ended.
    pub ended: String,
    /// The config file.
    pub config_path: &'a Path,
    /// Its text.
    pub config_text: &'a str,
    /// What the executor did.
    pub summary: &'a RunSummary,
    /// The token dataset root and the version written or reused, if the config tokenizes.
    pub version: Option<(&'a str, &'a str)>,
}

/// The `runs` schema.
pub fn schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        text("run_id"),
        text("started"),
        text("ended"),
        text("config_path"),
        text("config"),
        text("config_hash"),
        text("tool_version"),
        Field::new("units", DataType::UInt64, false),
        Field::new("units_resumed", DataType::UInt64, false),
        text("inputs"),
        Field::new("version_root", DataType::Utf8, true),
        Field::new("version", DataType::Utf8, true),
    ]))
}

/// Writes `row` as `<out>/runs/<started>.parquet`.
pub fn record(row: &RunRow) -> Result<PartInfo, PartError> {
    let out = &row.summary.out;
    let manifest = std::fs::read(out.join(crate::output::MANIFEST)).unwrap_or_default();
    let run_id = shards::checksum::to_hex(xxhash_rust::xxh3::xxh3_64(&manifest));
    let m = &row.summary.manifest;
    let inputs = serde_json::to_string(&m.inputs).unwrap_or_else(|_| "[]".into());
    let text = |v: &str| Arc::new(StringArray::from(vec![v])) as ArrayRef;
    let columns = vec![
        text(&run_id),
        text(&row.started),
        text(&row.ended),
        text(&row.config_path.display().to_string()),
        text(row.config_text),
        text(&m.config_hash),
        text(&m.tool_version),
        Arc::new(UInt64Array::from(vec![row.summary.units as u64])),
        Arc::new(UInt64Array::from(vec![row.summary.resumed as u64])),
        text(&inputs),
        Arc::new(StringArray::from(vec![row.version.map(|v| v.0)])),
        Arc::new(StringArray::from(vec![row.version.map(|v| v.1)])),
    ];
    let batch = RecordBatch::try_new(schema(), columns).map_err(|e| PartError::Parquet {
        path: out.join(RUNS),
        source: e.into(),
    })?;
    let name = format!("{RUNS}/{}.parquet", row.started.replace(':', ""));
    let mut writer = PartWriter::create(out, &name, schema())?;
    writer.write(&batch)?;
    writer.finish()
}
