//! `refinery run CONFIG`.

use std::path::Path;

use anyhow::anyhow;
use tokio::runtime::Handle;

use super::Failure;
use crate::config::{self, Config};
use crate::executor::{self, PrepareSummary, RunError, RunSummary, Task, TaskSummary};
use crate::lineage::runs::{Outcome, RunRow};
use crate::output::lock::{Hold, lock};
use crate::progress::Progress;
use crate::sql::text_table;
use crate::tokenize::{TextTokenizer, TokenizeSummary};
use shards::dataset::manifest::now_rfc3339;

/// How `refinery run` was asked to run, beyond its config.
pub struct RunArgs<'a> {
    /// The config file.
    pub config: &'a Path,
    /// `--threads`, overriding the config's.
    pub threads: Option<usize>,
    /// `--strict`.
    pub strict: bool,
    /// `--task I/N`: only this share of the units, and only the stages before the first
    /// two-pass stage that is not prepared.
    pub task: Option<Task>,
    /// `--prepare`: prepare the next two-pass stage for the tasks.
    pub prepare: bool,
    /// `--quiet`.
    pub quiet: bool,
}

/// Loads, checks and runs a config (or one task of it), then prints the summary.
pub fn run(args: RunArgs, handle: &Handle) -> Result<(), Failure> {
    let mut config = load_checked(args.config)?;
    let hold = match args.task {
        Some(_) => Hold::Shared,
        None => Hold::Alone,
    };
    let _lock = lock(&config.output_dir(), hold).map_err(anyhow::Error::msg)?;
    if let Some(t) = args.threads {
        config.run.threads = t;
    }
    config.run.strict |= args.strict;
    match (args.task, args.prepare) {
        (Some(task), _) => {
            let progress = start(&config, args.quiet);
            let summary =
                executor::execute_task(&config, task, handle, &progress).map_err(failure)?;
            let started = std::time::Instant::now();
            let encoded = match summary.stopped_before {
                Some(_) => 0,
                None => encode_ahead(&config, &summary.unit_ids, args.quiet, handle)?,
            };
            print_task_summary(&summary);
            if encoded > 0 {
                outln!(
                    "Encoded {encoded} parts of its units for the tokenize step in {:.1} s.",
                    started.elapsed().as_secs_f64()
                );
            }
            print_task_next(&summary, args.config);
            Ok(())
        }
        (None, true) => {
            let progress = start(&config, args.quiet);
            let summary = executor::execute_prepare(&config, handle, &progress).map_err(failure)?;
            print_prepare_summary(&summary, args.config);
            Ok(())
        }
        (None, false) => run_recorded(&config, args.config, args.quiet, handle).map(drop),
    }
}

/// `12.3 MB in (45.6 MB/s)`; when units were resumed, the rate is of the bytes read now.
fn input_read(input: u64, resumed: u64, secs: f64) -> String {
    let mb = |b: u64| b as f64 / 1e6;
    match input - resumed.min(input) {
        0 if input > 0 => format!("{:.1} MB in (all resumed)", mb(input)),
        read if read == input => format!("{:.1} MB in ({:.1} MB/s)", mb(input), mb(read) / secs),
        read => format!(
            "{:.1} MB in, {:.1} MB read now ({:.1} MB/s)",
            mb(input),
            mb(read),
            mb(read) / secs
        ),
    }
}

/// Encodes the parts of a task's `units` for the tokenize step, with a progress bar (unless
/// `quiet`); returns how many.
fn encode_ahead(
    config: &Config,
    units: &[String],
    quiet: bool,
    handle: &Handle,
) -> Result<usize, Failure> {
    let progress = Progress::new(!quiet);
    crate::tokenize::encode_ahead(config, units, &progress, handle).map_err(|e| Failure {
        error: anyhow!("tokenize: {e}"),
        code: 1,
    })
}

/// Prints what a task did.
fn print_task_summary(s: &TaskSummary) {
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    outln!(
        "Task {} complete in {secs:.1} s: {} units ({} resumed), {}, {} documents, through {} of {} stages",
        s.task,
        s.units,
        s.resumed,
        input_read(s.input_bytes, s.resumed_bytes, secs),
        s.documents,
        s.stages,
        s.total_stages,
    );
    if let (Some(stage), 1..) = (&s.stopped_before, s.summarized) {
        outln!(
            "Summarized the first pass of `{stage}` over {} of its units (fingerprints), for the run that prepares it.",
            s.summarized
        );
    }
}

/// Prints how a partitioned run goes on after a task.
fn print_task_next(s: &TaskSummary, config: &Path) {
    let config = config.display();
    let count = s.task.count;
    match &s.stopped_before {
        Some(stage) => outln!(
            "When all {count} tasks are complete: `refinery run {config} --prepare` prepares `{stage}` for another round of tasks, or `refinery run {config}` finishes the run here (it skips their units, runs the rest of the stages and writes the manifest)."
        ),
        None => outln!(
            "When all {count} tasks are complete, `refinery run {config}` finishes the run: it skips their units and writes the manifest."
        ),
    }
}

/// Prints what `--prepare` did and what comes next.
fn print_prepare_summary(s: &PrepareSummary, config: &Path) {
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let config = config.display();
    let Some(stage) = &s.prepared else {
        let why = if s.any_two_pass {
            "Every two-pass stage is prepared"
        } else {
            "The config has no two-pass stage to prepare"
        };
        outln!(
            "{why}: tasks (`--task I/N`) run every stage, and `refinery run {config}` finishes the run."
        );
        return;
    };
    let then = match &s.next {
        Some(next) => {
            format!("up to `{next}`; then `refinery run {config} --prepare` prepares `{next}`")
        }
        None => format!("to the end; then `refinery run {config}` finishes the run"),
    };
    outln!(
        "Prepared `{stage}` over {} units in {secs:.1} s. Next, the tasks again (`refinery run {config} --task I/N`): they run the stages from `{stage}` {then}.",
        s.units
    );
}

/// Runs a checked config, prints its summary and tokenizes its output when the config has a
/// `[tokenize]` section; the invocation goes into the `runs` lineage table whether it completes
/// or fails.
pub fn run_recorded(
    config: &Config,
    config_path: &Path,
    quiet: bool,
    handle: &Handle,
) -> Result<(RunSummary, Option<TokenizeSummary>), Failure> {
    let started = now_rfc3339();
    let result = crate::tokenize::load_configured(config, handle)
        .map_err(Failure::from)
        .and_then(|tokenizer| {
            let summary = execute(config, quiet, handle)?;
            print_summary(&summary);
            let tokens = tokenize(config, tokenizer, quiet, handle)?;
            Ok((summary, tokens))
        });
    let outcome = match &result {
        Ok((summary, tokens)) => Outcome::Complete {
            summary,
            version: tokens
                .as_ref()
                .map(|t| (t.root.as_str(), t.manifest.version.as_str())),
        },
        Err(failure) => Outcome::Failed {
            error: format!("{:#}", failure.error),
            config_hash: config.output_hash(),
        },
    };
    let config_text = std::fs::read_to_string(config_path).unwrap_or_default();
    let recorded = crate::lineage::runs::record(&RunRow {
        started,
        ended: now_rfc3339(),
        out: &config.output_dir(),
        config_path: &std::path::absolute(config_path).unwrap_or(config_path.to_path_buf()),
        config_text: &config_text,
        outcome,
    });
    match (result, recorded) {
        (Ok(done), Ok(_)) => Ok(done),
        (Ok(_), Err(e)) => Err(anyhow::Error::from(e).into()),
        (Err(failure), Ok(_)) => Err(failure),
        (Err(failure), Err(e)) => {
            tracing::warn!("could not record the failed run in the runs table: {e}");
            Err(failure)
        }
    }
}

/// Tokenizes the run's output when the config has a `[tokenize]` section (with its tokenizer
/// file when already loaded), and prints what happened.
pub fn tokenize(
    config: &Config,
    tokenizer: Option<TextTokenizer>,
    quiet: bool,
    handle: &Handle,
) -> Result<Option<TokenizeSummary>, Failure> {
    if config.tokenize.is_none() {
        return Ok(None);
    }
    let progress = Progress::new(!quiet);
    let summary = crate::tokenize::run(config, tokenizer, &progress, handle)?;
    super::tokenizer::print_summary(&summary);
    Ok(Some(summary))
}

/// Loads a config and runs the no-IO checks and the checks of the folders it writes; any
/// problem is a usage failure (exit 2).
pub fn load_checked(path: &Path) -> Result<Config, Failure> {
    let invalid = |problems: Vec<config::ConfigError>| {
        let list: Vec<String> = problems
            .iter()
            .map(|p| format!("  {}: {p}", path.display()))
            .collect();
        Failure {
            error: anyhow!("invalid config:\n{}", list.join("\n")),
            code: 2,
        }
    };
    let (config, text) = Config::load(path).map_err(invalid)?;
    let mut problems = config::validate(&config, &text);
    problems.extend(config::folder_problems(&config, &text));
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    Ok(config)
}

/// Runs a checked config with a progress bar (unless quiet).
pub fn execute(config: &Config, quiet: bool, handle: &Handle) -> Result<RunSummary, Failure> {
    let progress = start(config, quiet);
    executor::execute(config, handle, &progress).map_err(failure)
}

/// Sizes rayon's global pool by the config's `run.threads` (0: one per core), and returns the
/// progress bar (hidden when `quiet`).
fn start(config: &Config, quiet: bool) -> Progress {
    let threads = if config.run.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        config.run.threads
    };
    // The global pool can be set once per process; a second run in the same process keeps it.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
    Progress::new(!quiet)
}

fn failure(e: RunError) -> Failure {
    Failure {
        code: e.exit_code(),
        error: e.into(),
    }
}

/// Prints what a run did: throughput, per-source and per-stage accounting, where outputs are.
pub fn print_summary(s: &RunSummary) {
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let acc = &s.manifest.accounting;
    let docs: u64 = acc.sources.iter().map(|c| c.counts.documents).sum();
    let rate = if s.resumed == 0 {
        format!(" ({:.0} docs/s)", docs as f64 / secs)
    } else {
        String::new()
    };
    outln!(
        "Run complete in {secs:.1} s: {} units ({} resumed), {}, {docs} documents{rate}",
        s.units,
        s.resumed,
        input_read(s.input_bytes, s.resumed_bytes, secs),
    );
    let rows: Vec<Vec<String>> = acc
        .sources
        .iter()
        .map(|c| {
            let n = &c.counts;
            vec![
                c.source.clone(),
                n.records.to_string(),
                n.documents.to_string(),
                n.quarantined_records.to_string(),
                n.file_errors.to_string(),
            ]
        })
        .collect();
    outln!(
        "{}",
        text_table(
            &[
                "source",
                "records read",
                "documents",
                "quarantined",
                "file errors"
            ],
            &rows
        )
    );
    if !acc.stages.is_empty() {
        let rows: Vec<Vec<String>> = acc
            .stages
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    c.input.to_string(),
                    c.kept.to_string(),
                    c.dropped.to_string(),
                ]
            })
            .collect();
        outln!("{}", text_table(&["stage", "in", "kept", "dropped"], &rows));
    }
    if acc.quarantined_inputs > 0 {
        outln!(
            "{} input path(s) could not be read: see quarantine/inputs.parquet",
            acc.quarantined_inputs
        );
    }
    outln!(
        "Outputs in {} (manifest: {})",
        s.out.display(),
        s.out.join(crate::output::MANIFEST).display()
    );
}
