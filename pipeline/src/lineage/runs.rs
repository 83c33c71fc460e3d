//! The `runs` table: one row per invocation of a run over an output folder.
//!
//! Columns: `run_id` (xxh3-64 of the run's `_manifest.json`, the id token versions name as their
//! parent), `started`, `ended` (RFC 3339 UTC), `config_path`, `config` (the TOML text),
//! `config_hash`, `tool_version`, `units`, `units_resumed` (finished by an earlier invocation),
//! `inputs` (a JSON array of `{uri, bytes, xxh3}`), `version_root` and `version` (the token
//! dataset root and the version written or reused, when the config tokenizes), `status`
//! (`complete` or `failed`; null in parts written before it existed, all complete) and `error`
//! (why a failed invocation stopped). A failed invocation
//! has no manifest, so its `run_id`, `units`, `units_resumed` and `inputs` are null; what it
//! finished is kept and shows as `units_resumed` of the invocation that completes the run.
//!
//! Each invocation writes its own part, `runs/<started>-<n>.parquet` (`n` counts invocations
//! that started in the same second), so an interrupted and resumed run shows both attempts.
//! This is the one table that records when: it is left out of the run manifest and of the
//! byte-identity of outputs.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::executor::RunSummary;
use crate::output::RUNS;
use crate::output::part::{PartError, PartInfo, PartWriter};

/// How an invocation ended.
#[derive(Debug, Clone)]
pub enum Outcome<'a> {
    /// It finished: what the executor did, and the token dataset root and the version written
    /// or reused, if the config tokenizes.
    Complete {
        /// What the executor did.
        summary: &'a RunSummary,
        /// Token dataset root and version.
        version: Option<(&'a str, &'a str)>,
    },
    /// It stopped with `error`.
    Failed {
        /// The error with its causes.
        error: String,
        /// The config's hash (see [`crate::config::Config::output_hash`]).
        config_hash: String,
    },
}

/// One invocation of a run.
#[derive(Debug, Clone)]
pub struct RunRow<'a> {
    /// When it started (RFC 3339).
    pub started: String,
    /// When it ended.
    pub ended: String,
    /// The output folder.
    pub out: &'a Path,
    /// The config file.
    pub config_path: &'a Path,
    /// Its text.
    pub config_text: &'a str,
    /// How it ended.
    pub outcome: Outcome<'a>,
}

/// The `runs` schema.
pub fn schema() -> SchemaRef {
    let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("run_id", true),
        text("started", false),
        text("ended", false),
        text("config_path", false),
        text("config", false),
        text("config_hash", false),
        text("tool_version", false),
        Field::new("units", DataType::UInt64, true),
        Field::new("units_resumed", DataType::UInt64, true),
        text("inputs", true),
        text("version_root", true),
        text("version", true),
        text("status", true),
        text("error", true),
    ]))
}

/// What a row says about how the invocation ended, column by column.
struct Ending {
    run_id: Option<String>,
    config_hash: String,
    units: Option<u64>,
    resumed: Option<u64>,
    inputs: Option<String>,
    version: Option<(String, String)>,
    status: &'static str,
    error: Option<String>,
}

impl Ending {
    fn of(out: &Path, outcome: &Outcome) -> Ending {
        match outcome {
            Outcome::Complete { summary, version } => {
                let manifest = std::fs::read(out.join(crate::output::MANIFEST)).unwrap_or_default();
                let m = &summary.manifest;
                Ending {
                    run_id: Some(shards::checksum::to_hex(xxhash_rust::xxh3::xxh3_64(
                        &manifest,
                    ))),
                    config_hash: m.config_hash.clone(),
                    units: Some(summary.units as u64),
                    resumed: Some(summary.resumed as u64),
                    inputs: Some(serde_json::to_string(&m.inputs).unwrap_or_else(|_| "[]".into())),
                    version: version.map(|(root, v)| (root.to_string(), v.to_string())),
                    status: "complete",
                    error: None,
                }
            }
            Outcome::Failed { error, config_hash } => Ending {
                run_id: None,
                config_hash: config_hash.clone(),
                units: None,
                resumed: None,
                inputs: None,
                version: None,
                status: "failed",
                error: Some(error.clone()),
            },
        }
    }
}

/// Writes `row` as `<out>/runs/<started>-<n>.parquet`, `n` the first number not taken.
pub fn record(row: &RunRow) -> Result<PartInfo, PartError> {
    let e = Ending::of(row.out, &row.outcome);
    let text = |v: &str| Arc::new(StringArray::from(vec![v])) as ArrayRef;
    let maybe = |v: Option<&str>| Arc::new(StringArray::from(vec![v])) as ArrayRef;
    let version = e.version.as_ref();
    let columns = vec![
        maybe(e.run_id.as_deref()),
        text(&row.started),
        text(&row.ended),
        text(&row.config_path.display().to_string()),
        text(row.config_text),
        text(&e.config_hash),
        text(env!("CARGO_PKG_VERSION")),
        Arc::new(UInt64Array::from(vec![e.units])),
        Arc::new(UInt64Array::from(vec![e.resumed])),
        maybe(e.inputs.as_deref()),
        maybe(version.map(|v| v.0.as_str())),
        maybe(version.map(|v| v.1.as_str())),
        text(e.status),
        maybe(e.error.as_deref()),
    ];
    let batch = RecordBatch::try_new(schema(), columns).map_err(|e| PartError::Parquet {
        path: row.out.join(RUNS),
        source: e.into(),
    })?;
    let stem = row.started.replace(':', "");
    let name = (0..)
        .map(|n| format!("{RUNS}/{stem}-{n:03}.parquet"))
        .find(|name| !row.out.join(name).exists())
        .expect("a free part name");
    let mut writer = PartWriter::create(row.out, &name, schema())?;
    writer.write(&batch)?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[test]
    fn invocations_in_the_same_second_keep_a_row_each() {
        let dir = tempfile::tempdir().unwrap();
        for error in ["first", "second"] {
            let row = RunRow {
                started: "2026-11-24T10:00:00Z".into(),
                ended: "2026-11-24T10:00:00Z".into(),
                out: dir.path(),
                config_path: Path::new("c.toml"),
                config_text: "",
                outcome: Outcome::Failed {
                    error: error.into(),
                    config_hash: "0123456789abcdef".into(),
                },
            };
            record(&row).unwrap();
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join(RUNS))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "2026-11-24T100000Z-000.parquet",
                "2026-11-24T100000Z-001.parquet"
            ]
        );
        let mut seen = Vec::new();
        for name in &names {
            let file = std::fs::File::open(dir.path().join(RUNS).join(name)).unwrap();
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                let column = |n: &str| batch.column_by_name(n).unwrap().as_string::<i32>().clone();
                assert_eq!(column("status").value(0), "failed");
                assert!(column("run_id").is_null(0));
                seen.push(column("error").value(0).to_string());
            }
        }
        assert_eq!(seen, ["first", "second"]);
    }
}
