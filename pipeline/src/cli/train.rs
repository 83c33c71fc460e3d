//! `refinery train`, `refinery eval` and `refinery generate`: the trainer's command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use trainer::config::DeviceChoice;
use trainer::eval::SourceEval;
use trainer::generate::{Sampling, generate as sample};
use trainer::{Checkpoint, Event, Start, TrainConfig, TrainError, Trainer};

use super::Failure;
use crate::sql::{OutputFormat, text_table};
use crate::tokenize::TextTokenizer;

/// Where to run a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// CUDA if built in and present, else the CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// The first CUDA GPU.
    Cuda,
}

impl From<DeviceArg> for DeviceChoice {
    fn from(d: DeviceArg) -> Self {
        match d {
            DeviceArg::Auto => DeviceChoice::Auto,
            DeviceArg::Cpu => DeviceChoice::Cpu,
            DeviceArg::Cuda => DeviceChoice::Cuda,
        }
    }
}

/// What `refinery train` is asked to do.
pub struct TrainArgs<'a> {
    /// The training config.
    pub config: &'a Path,
    /// Stop after this many updates in all.
    pub max_steps: Option<u64>,
    /// Metrics log path instead of `<out>/metrics.jsonl`.
    pub metrics: Option<PathBuf>,
    /// Start over instead of resuming.
    pub restart: bool,
    /// Device instead of the config's.
    pub device: Option<DeviceArg>,
    /// No progress bar.
    pub quiet: bool,
}

/// Exit code 2 for a config that does not fit its data (an unknown source, a bad mixture
/// schedule), as for any invalid config; 1 for everything else.
fn failure(e: TrainError) -> Failure {
    use shards::dataset::windows::WindowError;
    use shards::mixture::MixtureError;
    let code = match &e {
        TrainError::Config { .. }
        | TrainError::Windows(WindowError::Mixture(MixtureError::Schedule(_))) => 2,
        _ => 1,
    };
    Failure {
        error: e.into(),
        code,
    }
}

/// Trains (or resumes) the run of a config and prints where the results are.
pub fn train(args: TrainArgs) -> Result<(), Failure> {
    let mut config = TrainConfig::load(args.config).map_err(|e| Failure {
        error: e.into(),
        code: 2,
    })?;
    if let Some(d) = args.device {
        config.train.device = d.into();
    }
    if let Some(m) = &args.metrics {
        super::local_file("--metrics", m)?;
    }
    let _lock = crate::output::lock::lock(&config.train.out, crate::output::lock::Hold::Alone)
        .map_err(anyhow::Error::msg)?;
    let steps = config.train.steps;
    let start = if args.restart {
        Start::Restart
    } else {
        Start::Resume
    };
    let mut trainer = Trainer::new(config, start, args.metrics).map_err(failure)?;
    if let Some(from) = trainer.resumed_from() {
        outln!("Resuming from {}", from.display());
    }
    let bar = progress_bar(args.max_steps.unwrap_or(steps).min(steps), args.quiet);
    bar.set_position(trainer.state().step);
    let summary = trainer.run(args.max_steps, |event| match event {
        Event::Step(r) => {
            bar.set_position(r.step);
            let skipped = if r.skipped { " (spike: skipped)" } else { "" };
            bar.set_message(format!(
                "loss {:.3} | {:.0} tok/s{skipped}",
                r.loss, r.tokens_per_s
            ));
        }
        Event::Eval(step, result) => bar.println(format!("step {step}: {}", brief(result))),
        Event::Checkpoint(path) => bar.println(format!("checkpoint {}", path.display())),
    })?;
    bar.finish_and_clear();
    if let Some(out) = summary.checkpoint.parent().and_then(Path::parent) {
        crate::lineage::training::record(out, &summary.metrics)?;
    }
    if let (Some(a), Some(b)) = (summary.first_loss, summary.last_loss) {
        outln!(
            "Trained to step {} (training loss {a:.3} -> {b:.3}, {} spike(s) skipped)",
            summary.step,
            summary.skipped
        );
    }
    print_comparison(&summary.first_eval, &summary.last_eval);
    print_unvalidated(&summary.unvalidated);
    outln!("Checkpoint: {}", summary.checkpoint.display());
    outln!("Metrics:    {}", summary.metrics.display());
    Ok(())
}

fn progress_bar(len: u64, quiet: bool) -> ProgressBar {
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    let style = ProgressStyle::with_template(
        "{spinner} {elapsed_precise} [{bar:30}] step {pos}/{len} {msg} (eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

fn brief(result: &BTreeMap<String, SourceEval>) -> String {
    let parts: Vec<String> = result
        .iter()
        .map(|(s, e)| format!("{s} {:.3}", e.loss))
        .collect();
    format!("validation loss {}", parts.join(", "))
}

fn print_comparison(before: &BTreeMap<String, SourceEval>, after: &BTreeMap<String, SourceEval>) {
    if after.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = after
        .iter()
        .map(|(s, e)| {
            let first = before
                .get(s)
                .map_or("-".into(), |b| format!("{:.3}", b.loss));
            vec![
                s.clone(),
                first,
                format!("{:.3}", e.loss),
                format!("{:.1}", e.perplexity),
                e.tokens.to_string(),
            ]
        })
        .collect();
    // The tokens scored (the config's `eval_windows` windows per source, or fewer) tell these
    // losses from `refinery eval`'s, which reads `--windows` windows.
    outln!(
        "{}",
        text_table(
            &[
                "source",
                "val loss before",
                "val loss after",
                "perplexity",
                "tokens"
            ],
            &rows
        )
    );
}

/// Names the sources without a validation loss, with their held-out tokens.
fn print_unvalidated(unvalidated: &BTreeMap<String, u64>) {
    if unvalidated.is_empty() {
        return;
    }
    let list: Vec<String> = unvalidated
        .iter()
        .map(|(source, tokens)| format!("{source} ({tokens} held-out tokens)"))
        .collect();
    outln!(
        "No validation loss for {}: too little held out for one window (raise the tokenize \
         config's validation_fraction or validation_min_docs)",
        list.join(", ")
    );
}

/// A checkpoint folder, or a training output folder (its latest checkpoint).
fn open_checkpoint(path: &Path) -> Result<Checkpoint, Failure> {
    let folder = trainer::checkpoint::latest(path)?.unwrap_or_else(|| path.to_path_buf());
    Ok(Checkpoint::load(&folder)?)
}

/// Prints per-source validation loss and perplexity of a checkpoint.
pub fn eval(
    path: &Path,
    windows: usize,
    device: DeviceArg,
    format: OutputFormat,
) -> Result<(), Failure> {
    let checkpoint = open_checkpoint(path)?;
    let batch = checkpoint.config.train.batch_size;
    let evaluation = checkpoint.evaluate(device.into(), windows, batch)?;
    let result = &evaluation.sources;
    match format {
        OutputFormat::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "checkpoint": checkpoint.path,
                "step": checkpoint.state.step,
                "version": checkpoint.lineage.version,
                "sources": result,
                "unvalidated": evaluation.unvalidated,
            }))?
        ),
        OutputFormat::Table | OutputFormat::Csv => {
            let rows: Vec<Vec<String>> = result
                .iter()
                .map(|(s, e)| {
                    vec![
                        s.clone(),
                        format!("{:.4}", e.loss),
                        format!("{:.2}", e.perplexity),
                        e.tokens.to_string(),
                    ]
                })
                .collect();
            let headers = ["source", "loss", "perplexity", "tokens"];
            if format == OutputFormat::Csv {
                outln!("{}", headers.join(","));
                rows.iter().for_each(|r| outln!("{}", r.join(",")));
            } else {
                outln!(
                    "Checkpoint {} (step {}, version {})",
                    checkpoint.path.display(),
                    checkpoint.state.step,
                    checkpoint.lineage.version
                );
                outln!("{}", text_table(&headers, &rows));
                print_unvalidated(&evaluation.unvalidated);
            }
        }
    }
    Ok(())
}

/// What `refinery generate` is asked to do.
pub struct GenerateArgs<'a> {
    /// Checkpoint or training output folder.
    pub checkpoint: &'a Path,
    /// Text to continue.
    pub prompt: &'a str,
    /// How to sample.
    pub sampling: Sampling,
    /// Where to run.
    pub device: DeviceArg,
}

/// Prints the prompt's continuation sampled from a checkpoint.
pub fn generate(args: GenerateArgs) -> Result<(), Failure> {
    let checkpoint = open_checkpoint(args.checkpoint)?;
    let json = checkpoint.tokenizer().ok_or_else(|| {
        anyhow::anyhow!(
            "{} holds no tokenizer.json (its shard version was written before versions stored \
             their tokenizer)",
            checkpoint.path.display()
        )
    })?;
    let info = &checkpoint.lineage.tokenizer;
    let tokenizer = TextTokenizer::from_json(&json, &info.eod, "checkpoint tokenizer.json")?;
    let prompt = tokenizer.encode(args.prompt)?;
    let prompt = if prompt.is_empty() {
        vec![info.eod_id]
    } else {
        prompt
    };
    let model = checkpoint.model(args.device.into())?;
    let sampling = Sampling {
        stop: Some(info.eod_id),
        ..args.sampling
    };
    let ids = sample(&model, &prompt, &sampling)?;
    let continuation = &ids[prompt.len()..];
    if continuation == [info.eod_id] {
        tracing::warn!(
            "the model ended the document at once (it sampled the end-of-document token first): \
             no text follows the prompt; try another --seed"
        );
    }
    outln!("{}{}", args.prompt, tokenizer.decode(continuation)?);
    Ok(())
}
