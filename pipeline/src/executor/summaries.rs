//! Partitioned first passes of two-pass stages.
//!
//! A task of a partitioned run stops before a two-pass stage that is not prepared yet. Before it
//! stops, it summarizes the first pass over its own units ([`crate::stage::Stage::summarize`]:
//! for dedup, every document's fingerprint), into
//! `_summaries/<stage>/<unit>.<key>.parquet`, where the key is the xxh3 of the unit's record of
//! the segment before (which lists its parts with their checksums, and the config hash). The
//! process preparing the stage then observes each unit from its summary when one exists for
//! these very documents, and from the texts otherwise, in unit order either way, so the
//! preparation is the same; the fingerprinting is spread over the tasks. The summaries of a
//! stage are removed once it is prepared, or by any run that finds it prepared.

use std::path::{Path, PathBuf};

use arrow::record_batch::{RecordBatch, RecordBatchReader};
use shards::checksum::to_hex;

use super::RunError;
use super::unit::{UnitContext, part_path};
use crate::ingest::Unit;
use crate::output::manifest::UnitRecord;
use crate::output::part::{PartWriter, read_part};
use crate::stage::{PassContext, Stage, StageError};

/// The folder of the summaries, under the output folder.
const SUMMARIES: &str = "_summaries";

/// The key of `unit`'s documents reaching `segment` (> 0): the xxh3 of its record of the
/// segment before. `None` while it has none.
fn unit_key(out: &Path, unit: &Unit, segment: usize) -> Option<String> {
    let bytes = std::fs::read(UnitRecord::path(out, &unit.id, segment - 1)).ok()?;
    Some(to_hex(xxhash_rust::xxh3::xxh3_64(&bytes)))
}

/// Where the summary of `unit`'s documents with `key` for `stage` goes, relative to the output
/// folder.
fn relative(stage: &str, unit: &Unit, key: &str) -> String {
    format!("{SUMMARIES}/{stage}/{}.{key}.parquet", unit.id)
}

/// The summary of `unit` for `stage`, if one was written for the documents reaching the stage
/// now.
fn current(stage: &str, unit: &Unit, ctx: &UnitContext) -> Option<PathBuf> {
    let key = unit_key(ctx.out, unit, ctx.segment)?;
    let path = ctx.out.join(relative(stage, unit, &key));
    path.exists().then_some(path)
}

/// In a task: summarizes the first pass of `stage`, which starts the segment of `ctx`, over each
/// of `units` (reading their parts of `dataset`), unless a summary of the same documents is
/// there already. Returns how many units have one now (0 for a stage that does not summarize).
pub(super) fn write(
    stage: &dyn Stage,
    units: &[Unit],
    ctx: &UnitContext,
    dataset: &str,
) -> Result<usize, RunError> {
    let mut summarized = 0;
    for unit in units {
        let Some(key) = unit_key(ctx.out, unit, ctx.segment) else {
            continue;
        };
        let relative = relative(stage.name(), unit, &key);
        if ctx.out.join(&relative).exists() {
            summarized += 1;
            continue;
        }
        let reader = read_part(&part_path(ctx.out, dataset, unit), ctx.run.batch_size)?;
        // The summary's schema, from an empty batch: a unit may have no documents.
        let Some(empty) = stage.summarize(&RecordBatch::new_empty(reader.schema()))? else {
            return Ok(0);
        };
        let mut writer = PartWriter::create(ctx.out, &relative, empty.schema())?;
        for batch in reader {
            if let Some(summary) = stage.summarize(&batch?)? {
                writer.write(&summary)?;
            }
        }
        writer.finish()?;
        summarized += 1;
    }
    Ok(summarized)
}

/// Observes `unit`'s documents reaching `stage` from the summary a task wrote of them; false
/// when there is none (the caller then observes the texts).
pub(super) fn observe(
    stage: &dyn Stage,
    unit: &Unit,
    ctx: &UnitContext,
    pass: &PassContext,
) -> Result<bool, RunError> {
    let Some(path) = current(stage.name(), unit, ctx) else {
        return Ok(false);
    };
    let reader = match read_part(&path, ctx.run.batch_size) {
        Ok(reader) => reader,
        Err(e) => {
            tracing::warn!(stage = stage.name(), unit = %unit.id, "Observing the texts instead of an unreadable summary: {e}");
            return Ok(false);
        }
    };
    for batch in reader {
        let batch = batch.map_err(|e| StageError::Failed {
            stage: stage.name().to_string(),
            message: format!(
                "first-pass summary {}: {e} (remove it and run again: the texts are observed instead)",
                path.display()
            ),
        })?;
        stage.observe_summary(&batch, pass)?;
    }
    Ok(true)
}

/// Removes the summaries of `stage` (and the folder of summaries, once empty).
pub(super) fn clear(out: &Path, stage: &str) -> Result<(), RunError> {
    let dir = out.join(SUMMARIES).join(stage);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|source| shards::StoreError::Io {
            op: "remove",
            path: dir.clone(),
            source,
        })?;
    }
    // Succeeds only when no other stage's summaries are left.
    let _ = std::fs::remove_dir(out.join(SUMMARIES));
    Ok(())
}
