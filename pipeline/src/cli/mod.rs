//! The `refinery` command line: argument parsing and dispatch. Only this module and `main.rs`
//! use `anyhow`; the library returns typed errors.
//!
//! Exit codes: 0 success; 1 failure; 2 bad usage or an invalid config; 3 bad input data under
//! `--strict`; 141 standard output closed by its reader (`refinery query … | head`).

#[macro_use]
mod out;

mod demo;
mod lineage;
mod query;
mod report;
mod run;
mod stats;
mod tokenizer;
mod train;
mod validate;
mod versions;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::MAX_THREADS;
use crate::sql::{self, OutputFormat};

/// Refinery: curate raw text into versioned token shards, train a model on them, and trace every
/// document from input to training step.
///
/// New here? `refinery demo` runs the whole job on a sample corpus it writes itself.
#[derive(Debug, Parser)]
#[command(name = "refinery", version)]
pub struct Cli {
    /// Print only warnings and errors, and no progress bar.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a config: ingest, stages, outputs, then tokenize when configured. Resumes an
    /// interrupted run in the same folder.
    Run {
        /// The TOML config.
        config: PathBuf,
        /// Worker threads (default: the config's `run.threads`, else one per core).
        #[arg(long, value_parser = threads)]
        threads: Option<usize>,
        /// Stop with exit code 3 at the first bad record or input instead of quarantining it.
        #[arg(long)]
        strict: bool,
        /// Run only task I of N (I from 0): a share of the input files holding about 1/N of the
        /// bytes (the same shares in every task), through the stages before the first two-pass
        /// stage (dedup) and on through each two-pass stage that `--prepare` prepared. Tasks may
        /// run at once, on machines sharing the output folder (e.g. a Slurm array); then a plain
        /// `refinery run CONFIG` skips their files and finishes the run.
        #[arg(long, value_name = "I/N")]
        task: Option<crate::executor::Task>,
        /// Between rounds of tasks: prepare the next two-pass stage (dedup) over every document
        /// the tasks brought to it, so that the next round of tasks runs it and the stages after
        /// it, up to the next two-pass stage.
        #[arg(long, conflicts_with = "task")]
        prepare: bool,
    },
    /// Check a config: unknown keys, bad values, missing inputs, each with its line.
    Validate {
        /// The TOML config.
        config: PathBuf,
        /// Skip listing the inputs (no file-system or network access).
        #[arg(long)]
        no_io: bool,
    },
    /// Documents and bytes per source and per stage of a finished run, computed with SQL.
    Stats {
        /// The run's output folder.
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// The queries' memory budget.
        #[command(flatten)]
        memory: SqlMemory,
    },
    /// Run SQL over Parquet outputs.
    ///
    /// Besides DataFusion's own functions, each stage's rule is a function of a text:
    /// `normalize(text)` and `redact_pii(text)` (the text as the stage writes it),
    /// `gopher_quality`, `gopher_repetition`, `c4`, `fineweb` and `language_rule` (the rule that
    /// drops the text, or NULL), `language(text)`, `language_score(text)` and
    /// `content_hash(text)`. All but the last take the stage's options as a second argument, as
    /// in a TOML inline table:
    /// `fineweb(text, 'short_line_length = 40')`.
    Query {
        /// The SQL statement.
        sql: String,
        /// A table to register, as NAME=PATH (a Parquet file or folder); repeatable.
        #[arg(long = "table", value_parser = parse_table)]
        tables: Vec<(String, String)>,
        /// A run's output folder: registers its datasets and lineage tables (`documents`,
        /// `decisions`, `runs`, `rejects`, `edits`, `quarantine`, `clusters`, `contamination`).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// The queries' memory budget.
        #[command(flatten)]
        memory: SqlMemory,
    },
    /// A fixed report over a finished run's lineage tables.
    Report {
        /// Which report.
        #[arg(value_enum)]
        kind: report::ReportKind,
        /// The run's output folder.
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// The queries' memory budget.
        #[command(flatten)]
        memory: SqlMemory,
    },
    /// Lineage: trace a record, or write the audit report of a checkpoint or version.
    Lineage {
        /// What to do.
        #[command(subcommand)]
        command: lineage::LineageCommand,
    },
    /// Train a tokenizer.
    Tokenizer {
        /// What to do.
        #[command(subcommand)]
        command: tokenizer::TokenizerCommand,
    },
    /// The versions of a token dataset: list, show, diff.
    Versions {
        /// What to show.
        #[command(subcommand)]
        command: versions::VersionsCommand,
    },
    /// Train a language model on a shard version; resumes from the latest checkpoint in the
    /// config's `train.out`.
    Train {
        /// The training config (TOML).
        config: PathBuf,
        /// Stop after this many updates in all (a checkpoint is written there).
        #[arg(long)]
        max_steps: Option<u64>,
        /// Write the metrics log here instead of `<out>/metrics.jsonl`.
        #[arg(long)]
        metrics: Option<PathBuf>,
        /// Start from step 0, removing the output folder's checkpoints (once the new run is set up).
        #[arg(long)]
        restart: bool,
        /// Train on this device instead of the config's `train.device`.
        #[arg(long, value_enum)]
        device: Option<train::DeviceArg>,
    },
    /// Per-source validation loss and perplexity of a checkpoint (or a training folder's latest).
    Eval {
        /// A checkpoint folder or a training output folder.
        checkpoint: PathBuf,
        /// Held-out windows per source.
        #[arg(long, default_value_t = 32)]
        windows: usize,
        /// Where to run.
        #[arg(long, value_enum, default_value_t = train::DeviceArg::Auto)]
        device: train::DeviceArg,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Sample a continuation of a prompt from a checkpoint (or a training folder's latest).
    Generate {
        /// A checkpoint folder or a training output folder.
        checkpoint: PathBuf,
        /// The text to continue (empty: the start of a new document).
        #[arg(long, default_value = "")]
        prompt: String,
        /// Most new tokens (stops early at the end-of-document token).
        #[arg(long, default_value_t = 64)]
        max_tokens: usize,
        /// Softmax temperature (0: greedy).
        #[arg(long, default_value_t = 0.8, value_parser = temperature)]
        temperature: f64,
        /// Sample among the k most likely tokens (0: all).
        #[arg(long, default_value_t = 40)]
        top_k: usize,
        /// Seed of the draws.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Where to run.
        #[arg(long, value_enum, default_value_t = train::DeviceArg::Auto)]
        device: train::DeviceArg,
    },
    /// Generate a sample corpus and run the main job on it.
    Demo {
        /// Folder for the sample inputs, config and outputs.
        #[arg(long, default_value = "refinery-demo")]
        dir: PathBuf,
        /// Worker threads (default: one per core).
        #[arg(long, value_parser = threads)]
        threads: Option<usize>,
    },
}

/// `--memory-budget SIZE` of the commands that run SQL.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct SqlMemory {
    /// Most memory the queries hold, such as 256MiB or 2GiB (at least 32MiB); sorts and
    /// groupings spill to the temporary folder beyond it.
    #[arg(
        long = "memory-budget",
        value_name = "SIZE",
        default_value = sql::session::DEFAULT_MEMORY_BUDGET,
        value_parser = sql::session::parse_memory_budget
    )]
    pub bytes: usize,
}

impl Default for SqlMemory {
    fn default() -> Self {
        let bytes = sql::session::parse_memory_budget(sql::session::DEFAULT_MEMORY_BUDGET);
        Self {
            bytes: bytes.expect("the default memory budget parses"),
        }
    }
}

/// `--threads N`: 0 (one per core) to [`MAX_THREADS`], as `run.threads`.
fn threads(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{e}"))?;
    match n <= MAX_THREADS {
        true => Ok(n),
        false => Err(format!("at most {MAX_THREADS} (0: one per core)")),
    }
}

/// Refuses a URL for an option that writes a local file (`--html s3://…` would make a folder
/// named `s3:`).
pub(crate) fn local_file(option: &str, path: &std::path::Path) -> Result<(), Failure> {
    match shards::is_url(&path.to_string_lossy()) {
        true => Err(Failure {
            error: anyhow::anyhow!("{option} writes a local file, not `{}`", path.display()),
            code: 2,
        }),
        false => Ok(()),
    }
}

/// `--temperature T`: a finite number of at least 0.
fn temperature(s: &str) -> Result<f64, String> {
    let t: f64 = s.parse().map_err(|e| format!("{e}"))?;
    match t.is_finite() && t >= 0.0 {
        true => Ok(t),
        false => Err("a finite number of at least 0 (0: greedy)".into()),
    }
}

fn parse_table(s: &str) -> Result<(String, String), String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PATH, got `{s}`"))?;
    if name.is_empty() || path.is_empty() {
        return Err(format!("expected NAME=PATH, got `{s}`"));
    }
    Ok((name.to_string(), path.to_string()))
}

/// A failure with its exit code.
pub struct Failure {
    /// The error, printed with its cause chain.
    pub error: anyhow::Error,
    /// The exit code.
    pub code: u8,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            error: e.into(),
            code: 1,
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    init_logging(cli.quiet, cli.log_format);
    if let Err(e) = shards::dataset::manifest::source_date_epoch() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the IO runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let handle = runtime.handle();
    let result = match cli.command {
        Command::Run {
            config,
            threads,
            strict,
            task,
            prepare,
        } => run::run(
            run::RunArgs {
                config: &config,
                threads,
                strict,
                task,
                prepare,
                quiet: cli.quiet,
            },
            handle,
        ),
        Command::Validate { config, no_io } => validate::validate(&config, no_io, handle),
        Command::Stats {
            dir,
            format,
            memory,
        } => stats::stats(&dir, format, memory, handle),
        Command::Query {
            sql,
            tables,
            dir,
            format,
            memory,
        } => query::query(&sql, tables, dir.as_deref(), format, memory, handle),
        Command::Report {
            kind,
            dir,
            format,
            memory,
        } => report::report(kind, &dir, format, memory, handle),
        Command::Lineage { command } => lineage::lineage(command, handle),
        Command::Tokenizer { command } => tokenizer::tokenizer(command),
        Command::Versions { command } => versions::versions(command, handle),
        Command::Train {
            config,
            max_steps,
            metrics,
            restart,
            device,
        } => train::train(train::TrainArgs {
            config: &config,
            max_steps,
            metrics,
            restart,
            device,
            quiet: cli.quiet,
        }),
        Command::Eval {
            checkpoint,
            windows,
            device,
            format,
        } => train::eval(&checkpoint, windows, device, format),
        Command::Generate {
            checkpoint,
            prompt,
            max_tokens,
            temperature,
            top_k,
            seed,
            device,
        } => train::generate(train::GenerateArgs {
            checkpoint: &checkpoint,
            prompt: &prompt,
            sampling: trainer::generate::Sampling {
                max_tokens,
                temperature,
                top_k,
                seed,
                stop: None,
            },
            device,
        }),
        Command::Demo { dir, threads } => demo::demo(&dir, threads, cli.quiet, handle),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", describe(&f.error));
            ExitCode::from(f.code)
        }
    }
}

/// The error and its causes joined with `: `, leaving out a cause whose text an outer message
/// already quotes (many library errors print their source as part of their own message).
fn describe(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.is_empty() {
            message = text;
        } else if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
    }
    message
}

fn init_logging(quiet: bool, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let default = if quiet { "warn" } else { "info" };
    let filter =
        EnvFilter::try_from_env("REFINERY_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn describe_joins_causes_but_not_those_already_quoted() {
        let io = std::io::Error::other("disk full");
        let quoted = anyhow::Error::new(io)
            .context("write failed: disk full")
            .context("saving the run");
        assert_eq!(describe(&quoted), "saving the run: write failed: disk full");
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(describe(&plain), "outer: inner");
    }
}
