//! The `training` and `losses` tables of a training output folder, written by `refinery train`
//! as `<out>/lineage/training.parquet` and `<out>/lineage/losses.parquet`.
//!
//! `training`: one row per checkpoint and source: `checkpoint` (its folder name), `path`,
//! `step`, `tokens` (all sources), `root`, `version`, `manifest_checksum`, `config_hash`,
//! `config` (the checkpoint's `config.toml`), `seed`, `seq_len`, `windows_per_step`, `sampler_state` (the mixture sampler's counters as
//! JSON: with the seed they reconstruct every draw), `source`, `source_tokens`, `windows`,
//! `windows_available`, `epochs`, `repeated_windows`, `target_weight`.
//!
//! `losses`: one row per logged loss: `step`, `tokens`, `split` (`train` or `validation`),
//! `source` (`all` for a step's mean training loss), `loss`.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use trainer::Checkpoint;
use trainer::metrics::Record;

use super::LineageError;
use crate::output::part::{PartInfo, PartWriter};

/// Folder of a training run's lineage tables.
pub const DIR: &str = "lineage";
/// The `training` table's file.
pub const TRAINING: &str = "training.parquet";
/// The `losses` table's file.
pub const LOSSES: &str = "losses.parquet";

/// The `training` schema.
pub fn training_schema() -> SchemaRef {
    let text = |n: &str| Field::new(n, DataType::Utf8, false);
    let count = |n: &str| Field::new(n, DataType::UInt64, false);
    Arc::new(Schema::new(vec![
        text("checkpoint"),
        text("path"),
        count("step"),
        count("tokens"),
        text("root"),
        text("version"),
        text("manifest_checksum"),
        text("config_hash"),
        text("config"),
        count("seed"),
        count("seq_len"),
        count("windows_per_step"),
        text("sampler_state"),
        text("source"),
        count("source_tokens"),
        count("windows"),
        count("windows_available"),
        count("epochs"),
        count("repeated_windows"),
        Field::new("target_weight", DataType::Float64, false),
    ]))
}

/// The `losses` schema.
pub fn losses_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("step", DataType::UInt64, false),
        Field::new("tokens", DataType::UInt64, false),
        Field::new("split", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("loss", DataType::Float64, false),
    ]))
}

/// The checkpoints under a training output folder, by step.
pub fn checkpoints(out: &Path) -> Result<Vec<Checkpoint>, trainer::TrainError> {
    let dir = out.join(trainer::checkpoint::DIR);
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let named =
                trainer::checkpoint::is_checkpoint_name(&entry.file_name().to_string_lossy());
            if named && path.is_dir() && path.join(trainer::checkpoint::LINEAGE).is_file() {
                found.push(Checkpoint::load(&path)?);
            }
        }
    }
    found.sort_by_key(|c| c.state.step);
    Ok(found)
}

/// Rewrites both tables of the training output folder `out` from its checkpoints and its
/// metrics log.
pub fn record(out: &Path, metrics: &Path) -> Result<Vec<PartInfo>, LineageError> {
    let checkpoints = checkpoints(out)?;
    let records = trainer::metrics::read(metrics)?;
    let lineage = out.join(DIR);
    Ok(vec![
        write(&lineage, TRAINING, training_batch(&checkpoints)?)?,
        write(&lineage, LOSSES, losses_batch(&records)?)?,
    ])
}

fn write(dir: &Path, name: &str, batch: RecordBatch) -> Result<PartInfo, LineageError> {
    let mut writer = PartWriter::create(dir, name, batch.schema())?;
    writer.write(&batch)?;
    Ok(writer.finish()?)
}

fn training_batch(checkpoints: &[Checkpoint]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let rows: Vec<(&Checkpoint, &String, &trainer::checkpoint::SourceUse)> = checkpoints
        .iter()
        .flat_map(|c| c.lineage.sources.iter().map(move |(s, u)| (c, s, u)))
        .collect();
    let text = |f: &dyn Fn(&Checkpoint, &String) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(c, s, _)| f(c, s)),
        ))
    };
    let count = |f: &dyn Fn(&Checkpoint, &trainer::checkpoint::SourceUse) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|(c, _, u)| f(c, u)),
        ))
    };
    let name = |c: &Checkpoint| {
        c.path
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned())
    };
    let columns = vec![
        text(&|c, _| name(c)),
        text(&|c, _| {
            std::path::absolute(&c.path)
                .unwrap_or(c.path.clone())
                .display()
                .to_string()
        }),
        count(&|c, _| c.state.step),
        count(&|c, _| c.state.tokens),
        text(&|c, _| c.lineage.root.clone()),
        text(&|c, _| c.lineage.version.clone()),
        text(&|c, _| c.lineage.manifest_checksum.clone()),
        text(&|c, _| c.lineage.config_hash.clone()),
        text(&|c, _| {
            std::fs::read_to_string(c.path.join(trainer::checkpoint::CONFIG)).unwrap_or_default()
        }),
        count(&|c, _| c.lineage.seed),
        count(&|c, _| c.lineage.seq_len as u64),
        count(&|c, _| (c.config.train.batch_size * c.config.train.grad_accum) as u64),
        text(&|c, _| serde_json::to_string(&c.state.sampler).unwrap_or_default()),
        text(&|_, s| s.clone()),
        count(&|_, u| u.tokens),
        count(&|_, u| u.windows),
        count(&|_, u| u.windows_available),
        count(&|_, u| u.epochs),
        count(&|_, u| u.repeated_windows),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|(_, _, u)| u.target_weight),
        )),
    ];
    RecordBatch::try_new(training_schema(), columns)
}

fn losses_batch(records: &[Record]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let mut rows: Vec<(u64, u64, &str, &str, f64)> = Vec::new();
    for r in records {
        match r {
            Record::Train(s) => {
                rows.push((s.step, s.tokens, "train", "all", s.loss));
                for (source, loss) in &s.source_loss {
                    rows.push((s.step, s.tokens, "train", source, *loss));
                }
            }
            Record::Eval {
                step,
                tokens,
                sources,
            } => {
                for (source, e) in sources {
                    rows.push((*step, *tokens, "validation", source, e.loss));
                }
            }
            Record::Checkpoint { .. } => {}
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.3))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.4))),
    ];
    RecordBatch::try_new(losses_schema(), columns)
}
