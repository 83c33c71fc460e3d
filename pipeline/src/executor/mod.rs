//! The executor: runs a config's stages over its sources, unit by unit, and writes the outputs.
//!
//! Units (see [`crate::ingest::plan`]) run on `threads` workers; each unit streams through its
//! own chain of threads and bounded channels (`unit`), with rayon inside a stage. Memory is
//! bounded by workers × stages × `channel_depth` × batch size, plus one row group per open part,
//! whatever the corpus size. Every unit's outputs depend only on its input and the config, so
//! outputs are byte-identical for any thread count, and a rerun after an interruption skips the
//! units whose records are intact and redoes the rest. [`execute_task`] runs one share of the
//! units ([`Task`]) through the stages before the first two-pass stage, and on through the
//! two-pass stages [`execute_prepare`] prepared (`prepared`), for runs spread over processes or
//! machines; a whole run afterwards skips what the tasks did.

mod accounting;
mod prepared;
mod records;
mod summaries;
mod task;
mod unit;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use crate::config::{Config, INGEST};
use crate::ingest::batch::quarantine_batch;
use crate::ingest::{Quarantined, Unit, plan_units};
use crate::output::INPUTS_PART;
use crate::output::manifest::{Manifest, UnitRecord};
use crate::output::part::{PartError, PartInfo, PartWriter, read_part};
use crate::progress::Progress;
use crate::schema;
use crate::stage::{PassContext, Passes, Stage, StageError};
use accounting::build_manifest;
pub use task::{Mode, PrepareSummary, Task, TaskSummary};
use unit::{UnitContext, run_unit};

/// Why a run failed. [`RunError::exit_code`] maps each to the CLI's exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `--strict` and a record or input was bad.
    #[error("strict mode: {0}")]
    Strict(String),
    /// A stage failed.
    #[error(transparent)]
    Stage(#[from] StageError),
    /// Writing an output failed.
    #[error(transparent)]
    Part(#[from] PartError),
    /// A file operation failed.
    #[error(transparent)]
    Store(#[from] shards::StoreError),
    /// Arrow failed building a batch.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Counts did not add up: a bug to report.
    #[error("accounting check failed (please report): {0}")]
    Accounting(String),
    /// A worker thread panicked: a bug to report.
    #[error("the {0} thread panicked (please report)")]
    Panic(&'static str),
}

impl RunError {
    /// 3 for bad data under `--strict`, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        if matches!(self, RunError::Strict(_)) {
            3
        } else {
            1
        }
    }
}

/// What a finished run reports.
#[derive(Debug)]
pub struct RunSummary {
    /// The manifest written.
    pub manifest: Manifest,
    /// Units in the run.
    pub units: usize,
    /// Units skipped because an earlier run had finished them.
    pub resumed: usize,
    /// Bytes of input.
    pub input_bytes: u64,
    /// Of those, bytes of the resumed units (not read again).
    pub resumed_bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// The output folder.
    pub out: PathBuf,
}

/// Runs `config`, reporting progress to `progress`; `handle` drives the object stores.
pub fn execute(
    config: &Config,
    handle: &Handle,
    progress: &Progress,
) -> Result<RunSummary, RunError> {
    execute_stages(config, &build_stages(config)?, handle, progress)
}

/// The config's `[[stages]]`, built.
fn build_stages(config: &Config) -> Result<Vec<Arc<dyn Stage>>, RunError> {
    let stages = config.stages.iter().map(|s| s.get_ref().build());
    Ok(stages.collect::<Result<_, _>>()?)
}

/// Runs `config`'s sources and outputs through the given stages (built from its `[[stages]]`).
///
/// The chain is cut into segments before each two-pass stage. A segment streams its units
/// through its stages; the documents reaching the cut are written as a dataset, the two-pass
/// stage observes all of them, and the next segment reads that dataset back.
pub fn execute_stages(
    config: &Config,
    stages: &[Arc<dyn Stage>],
    handle: &Handle,
    progress: &Progress,
) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let done = run_units_of(config, stages, Mode::Whole, handle, progress)?;
    let mut inputs_part = PartWriter::create(&done.out, INPUTS_PART, schema::quarantine())?;
    if !done.input_problems.is_empty() {
        inputs_part.write(&quarantine_batch(&done.input_problems)?)?;
    }
    // Files beside the units' parts: the input-level quarantine and the stages' own tables.
    let mut run_files = vec![inputs_part.finish()?];
    run_files.extend(done.tables);
    let manifest = build_manifest(
        config,
        &done.names,
        &done.datasets,
        &done.records,
        run_files,
        done.input_problems.len() as u64,
        config.output_hash(),
    )?;
    manifest.save(&done.out)?;
    progress.finish();
    Ok(RunSummary {
        manifest,
        units: done.units,
        resumed: done.resumed,
        input_bytes: done.input_bytes,
        resumed_bytes: done.resumed_bytes,
        elapsed: started.elapsed(),
        out: done.out,
    })
}

/// Runs one task of a partitioned run: the units `task` owns, through the stages before the
/// first two-pass stage, and on through each two-pass stage whose preparation (by
/// [`execute_prepare`]) is recorded for the documents now reaching it. Writes their parts and
/// unit records and nothing else, so tasks can run at the same time (on machines that share the
/// output folder); a whole run of the config afterwards skips those units and does the rest.
pub fn execute_task(
    config: &Config,
    task: Task,
    handle: &Handle,
    progress: &Progress,
) -> Result<TaskSummary, RunError> {
    let started = Instant::now();
    let stages = build_stages(config)?;
    let done = run_units_of(config, &stages, Mode::Task(task), handle, progress)?;
    progress.finish();
    let documents = done.records.iter().map(|r| r.ingest.documents).sum();
    Ok(TaskSummary {
        task,
        units: done.units,
        resumed: done.resumed,
        documents,
        input_bytes: done.input_bytes,
        resumed_bytes: done.resumed_bytes,
        elapsed: started.elapsed(),
        stages: done.stages_run,
        total_stages: stages.len(),
        summarized: done.summarized,
        unit_ids: done.unit_ids,
        stopped_before: stages.get(done.stages_run).map(|s| s.name().to_string()),
    })
}

/// Prepares the next two-pass stage for the tasks of a partitioned run: runs every unit (skipping
/// those the tasks finished) up to the first two-pass stage without a recorded preparation,
/// which observes every document, prepares and is recorded. Writes no manifest.
pub fn execute_prepare(
    config: &Config,
    handle: &Handle,
    progress: &Progress,
) -> Result<PrepareSummary, RunError> {
    let started = Instant::now();
    let stages = build_stages(config)?;
    let done = run_units_of(config, &stages, Mode::Prepare, handle, progress)?;
    progress.finish();
    let prepared = done.prepared.map(|i| stages[i].name().to_string());
    let next = done.prepared.and_then(|i| {
        (i + 1..stages.len())
            .find(|&j| stages[j].passes() == Passes::Two)
            .map(|j| stages[j].name().to_string())
    });
    Ok(PrepareSummary {
        prepared,
        next,
        any_two_pass: stages.iter().any(|s| s.passes() == Passes::Two),
        units: done.units,
        elapsed: started.elapsed(),
    })
}

/// What the units of a run (or of one task) produced.
struct UnitsDone {
    out: PathBuf,
    units: usize,
    resumed: usize,
    input_bytes: u64,
    resumed_bytes: u64,
    input_problems: Vec<Quarantined>,
    names: Vec<String>,
    datasets: Vec<(String, usize)>,
    records: Vec<UnitRecord>,
    tables: Vec<PartInfo>,
    /// Stages every unit went through: all but those after a stop (see [`Mode`]).
    stages_run: usize,
    /// The index of the two-pass stage a `--prepare` invocation prepared.
    prepared: Option<usize>,
    /// In a task: its units whose first pass of the stage it stopped before is summarized.
    summarized: usize,
    /// The ids of the units run (in a task, those it owns).
    unit_ids: Vec<String>,
}

/// Plans the units and runs the segments over them, as `mode` says (see [`Mode`]).
fn run_units_of(
    config: &Config,
    stages: &[Arc<dyn Stage>],
    mode: Mode,
    handle: &Handle,
    progress: &Progress,
) -> Result<UnitsDone, RunError> {
    let out = config.output_dir();
    std::fs::create_dir_all(&out).map_err(|source| shards::StoreError::Io {
        op: "create folder",
        path: out.clone(),
        source,
    })?;
    // Tasks may run beside each other: the whole run clears what an interrupted one left.
    if mode == Mode::Whole {
        let stale = shards::atomic::remove_stale_temps(&out)?;
        if stale > 0 {
            tracing::info!(stale, "Removed temporary files of an interrupted run");
        }
    }
    let (mut units, input_problems) = handle.block_on(plan_units(config));
    if let (true, Some(q)) = (config.run.strict, input_problems.first()) {
        return Err(RunError::Strict(q.describe()));
    }
    for q in &input_problems {
        tracing::warn!(source = %q.source, reason = q.reason, "Quarantined input {}", q.describe());
    }
    // Every unit: a two-pass stage observes them all, and its preparation is keyed by them all.
    let all_units = units.clone();
    if let Mode::Task(task) = mode {
        let sizes: Vec<u64> = units.iter().map(Unit::bytes).collect();
        let owned = task.owned(&sizes);
        units = units
            .into_iter()
            .zip(owned)
            .filter_map(|(u, mine)| mine.then_some(u))
            .collect();
    }
    let config_hash = config.output_hash();
    let names: Vec<String> = stages.iter().map(|s| s.name().to_string()).collect();
    let segments = segments(stages);
    let datasets = datasets(config, &names, &segments);
    let input_bytes = units.iter().map(Unit::bytes).sum();
    progress.start(input_bytes);

    let mut records = Vec::new();
    let mut tables = Vec::new();
    let (mut resumed, mut resumed_bytes) = (0, 0);
    // Once a segment ran a unit again, later segments' records may describe other inputs.
    let mut earlier_ran = false;
    let (mut stages_run, mut prepared, mut summarized) = (0, None, 0);
    for (segment, range) in segments.iter().enumerate() {
        let input = (segment > 0).then(|| snapshot_name(&names, range.start));
        let written: Vec<(String, usize)> = datasets
            .iter()
            .filter(|(_, snap)| {
                (range.start < *snap && *snap <= range.end) || (segment == 0 && *snap == 0)
            })
            .cloned()
            .collect();
        let ctx = UnitContext {
            out: &out,
            segment,
            first_stage: range.start,
            stages: &stages[range.clone()],
            input: input.as_deref(),
            datasets: &written,
            codec: config.output.get_ref().compression,
            run: &config.run,
            config_hash: &config_hash,
            handle,
            progress,
        };
        if let (Some(dataset), Some(stage)) = (ctx.input, ctx.stages.first()) {
            let pass = PassContext { out: &out, handle };
            let recorded =
                prepared::recorded(&out, &all_units, segment, stage.name(), &config_hash);
            // Prepared for these very documents: the decisions are in the stage's tables.
            let restored = match recorded {
                Some(recorded) if stage.restore(&pass)? => Some(recorded),
                _ => None,
            };
            match (mode, restored) {
                (_, Some(recorded)) => {
                    // Summaries a task wrote before it saw this preparation are of no use now.
                    summaries::clear(&out, stage.name())?;
                    tables.extend(recorded);
                }
                (Mode::Whole, None) => {
                    tables.extend(prepare(stage.as_ref(), &units, &ctx, dataset)?);
                }
                (Mode::Task(_), None) => {
                    summarized = summaries::write(stage.as_ref(), &units, &ctx, dataset)?;
                    break;
                }
                (Mode::Prepare, None) => {
                    prepare(stage.as_ref(), &units, &ctx, dataset)?;
                    prepared = Some(range.start);
                    break;
                }
            }
        }
        let run = run_segment(&units, &ctx, config, earlier_ran)?;
        if segment == 0 {
            (resumed, resumed_bytes) = (run.skipped, run.skipped_bytes);
        }
        earlier_ran |= run.skipped < units.len();
        records.extend(run.records);
        stages_run = range.end;
    }
    Ok(UnitsDone {
        out,
        units: units.len(),
        resumed,
        input_bytes,
        resumed_bytes,
        input_problems,
        names,
        datasets,
        records,
        tables,
        stages_run,
        prepared,
        summarized,
        unit_ids: units.iter().map(|u| u.id.clone()).collect(),
    })
}

/// Stage ranges of the segments: a new segment starts at every two-pass stage.
fn segments(stages: &[Arc<dyn Stage>]) -> Vec<Range<usize>> {
    let mut starts = vec![0];
    starts.extend((0..stages.len()).filter(|&i| stages[i].passes() == Passes::Two));
    starts.push(stages.len());
    starts.windows(2).map(|w| w[0]..w[1]).collect()
}

/// The name of the documents after `snapshot` stages.
fn snapshot_name(names: &[String], snapshot: usize) -> String {
    if snapshot == 0 {
        INGEST.to_string()
    } else {
        names[snapshot - 1].clone()
    }
}

/// Datasets to write, by snapshot order: those the config asks for, plus each segment's input.
fn datasets(config: &Config, names: &[String], segments: &[Range<usize>]) -> Vec<(String, usize)> {
    let snapshot_of = |d: &str| {
        if d == INGEST {
            0
        } else {
            names.iter().position(|n| n == d).map_or(0, |i| i + 1)
        }
    };
    let mut snapshots: Vec<usize> = config
        .persisted_stages()
        .iter()
        .map(|d| snapshot_of(d))
        .collect();
    snapshots.extend(segments.iter().skip(1).map(|r| r.start));
    snapshots.sort_unstable();
    snapshots.dedup();
    snapshots
        .into_iter()
        .map(|s| (snapshot_name(names, s), s))
        .collect()
}

/// Whether a first-segment record was written from the unit's files as they are now: the same
/// files with the same sizes. A file added, removed, grown or shrunk makes the unit run again.
fn reads_the_same_files(record: &UnitRecord, unit: &Unit) -> bool {
    let same = record.inputs.len() == unit.files.len()
        && record
            .inputs
            .iter()
            .zip(&unit.files)
            .all(|(then, now)| then.uri == now.uri && then.bytes == now.size);
    if !same {
        tracing::warn!(
            unit = %unit.id,
            "Input files changed since this unit was written: running it again"
        );
    }
    same
}

/// Runs one segment over every unit not already done. After an earlier segment ran any unit
/// again (`earlier_ran`), every unit runs again: its input may have changed.
fn run_segment(
    units: &[Unit],
    ctx: &UnitContext,
    config: &Config,
    earlier_ran: bool,
) -> Result<SegmentRun, RunError> {
    // Under --strict a unit that quarantined anything is not done: rerunning it stops the run.
    let clean = |r: &UnitRecord| {
        !config.run.strict || r.ingest.quarantined_records + r.ingest.file_errors == 0
    };
    let mut records: Vec<Option<UnitRecord>> = units
        .iter()
        .map(|u| {
            if earlier_ran {
                return None;
            }
            UnitRecord::load_valid(ctx.out, &u.id, ctx.segment, ctx.config_hash)
                .filter(clean)
                .filter(|r| ctx.segment > 0 || reads_the_same_files(r, u))
        })
        .collect();
    let skipped = records.iter().filter(|r| r.is_some()).count();
    let todo: Vec<usize> = (0..units.len()).filter(|&i| records[i].is_none()).collect();
    if skipped > 0 {
        tracing::info!(
            segment = ctx.segment,
            "Resuming: {skipped} of {} units already complete",
            units.len()
        );
    }
    let skipped_bytes: u64 = units
        .iter()
        .zip(&records)
        .filter(|(_, r)| r.is_some())
        .map(|(u, _)| u.bytes())
        .sum();
    if ctx.segment == 0 {
        ctx.progress
            .bytes
            .fetch_add(skipped_bytes, Ordering::Relaxed);
    }
    for (i, record) in run_units(units, &todo, ctx, config.run.threads)? {
        records[i] = Some(record);
    }
    Ok(SegmentRun {
        records: records.into_iter().flatten().collect(),
        skipped,
        skipped_bytes,
    })
}

/// What one segment produced.
struct SegmentRun {
    /// Unit records, in unit order.
    records: Vec<UnitRecord>,
    /// Units skipped because an earlier run had finished them.
    skipped: usize,
    /// Their input bytes.
    skipped_bytes: u64,
}

/// Both passes' preparation of the two-pass stage starting the segment of `ctx`: it observes
/// every document of `dataset`, unit by unit, in order, then prepares; the preparation is
/// recorded for tasks. Returns the stage's own tables.
fn prepare(
    stage: &dyn Stage,
    units: &[Unit],
    ctx: &UnitContext,
    dataset: &str,
) -> Result<Vec<PartInfo>, RunError> {
    let pass = PassContext {
        out: ctx.out,
        handle: ctx.handle,
    };
    let started = Instant::now();
    let mut from_summaries = 0;
    {
        let _span = tracing::info_span!("observe", stage = stage.name()).entered();
        for unit in units {
            if summaries::observe(stage, unit, ctx, &pass)? {
                from_summaries += 1;
                continue;
            }
            let part = unit::part_path(ctx.out, dataset, unit);
            for batch in read_part(&part, ctx.run.batch_size)? {
                stage.observe(&batch.map_err(RunError::Arrow)?, &pass)?;
            }
        }
    }
    if from_summaries > 0 {
        tracing::info!(
            stage = stage.name(),
            "Observed {from_summaries} of {} units from the tasks' summaries of their first pass",
            units.len()
        );
    }
    let observed = started.elapsed();
    let _span = tracing::info_span!("prepare", stage = stage.name()).entered();
    let tables = stage.prepare(&pass)?;
    tracing::info!(
        stage = stage.name(),
        observe_s = observed.as_secs_f64(),
        prepare_s = (started.elapsed() - observed).as_secs_f64(),
        "First pass and preparation done"
    );
    if let Some(key) = prepared::input_key(ctx.out, units, ctx.segment, ctx.config_hash) {
        prepared::record(ctx.out, ctx.segment, stage.name(), &key, &tables)?;
    }
    summaries::clear(ctx.out, stage.name())?;
    Ok(tables)
}

/// Runs the units listed in `todo` on `threads` workers (0 = one per core); stops at the first error.
fn run_units(
    units: &[Unit],
    todo: &[usize],
    ctx: &UnitContext,
    threads: usize,
) -> Result<Vec<(usize, UnitRecord)>, RunError> {
    let workers = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results = Mutex::new(Vec::with_capacity(todo.len()));
    let first_error: Mutex<Option<RunError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers.min(todo.len()) {
            s.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let Some(&i) = todo.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    match run_unit(&units[i], ctx) {
                        Ok(record) => results
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((i, record)),
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            first_error
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    Ok(results.into_inner().unwrap_or_else(|e| e.into_inner()))
}

#[cfg(test)]
mod tests;
