//! The training loop: batches from the mixture, forward and backward with gradient
//! accumulation, health checks, clipping, AdamW, validation, checkpoints and the metrics log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Tensor;
use shards::dataset::{Split, WindowLoader};
use shards::mixture::Phase;

use crate::checkpoint::{self, Checkpoint, Contents, Lineage, SourceUse, TrainState};
use crate::config::TrainConfig;
use crate::data::{ValidationSet, next_batch, open_reader, schedule};
use crate::error::{Result, TrainError};
use crate::eval::{SourceEval, evaluate};
use crate::health::SpikeGuard;
use crate::memory;
use crate::metrics::{MetricsLog, Record, StepReport};
use crate::model::Gpt;
use crate::optimizer::{AdamW, clip_scale, global_norm};
use crate::rng::Rng;
use crate::schedule::learning_rate;

/// Name of the metrics log in the output folder.
pub const METRICS: &str = "metrics.jsonl";

/// Whether to continue from the output folder's latest checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Continue from the latest checkpoint when there is one (the config must match).
    Resume,
    /// Start from step 0, removing the folder's checkpoints (once the new run is set up).
    Restart,
}

/// Something the loop did, for progress displays.
#[derive(Debug)]
pub enum Event<'a> {
    /// A step finished.
    Step(&'a StepReport),
    /// A validation pass finished.
    Eval(u64, &'a BTreeMap<String, SourceEval>),
    /// A checkpoint was written.
    Checkpoint(&'a Path),
}

/// What a call to [`Trainer::run`] did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Updates done in all (the run's total so far).
    pub step: u64,
    /// Loss of the first and last step of this call.
    pub first_loss: Option<f64>,
    /// See `first_loss`.
    pub last_loss: Option<f64>,
    /// Validation before the first step of this call and after its last.
    pub first_eval: BTreeMap<String, SourceEval>,
    /// See `first_eval`.
    pub last_eval: BTreeMap<String, SourceEval>,
    /// Sources with no held-out window, so absent from the evaluations, with their held-out
    /// tokens.
    pub unvalidated: BTreeMap<String, u64>,
    /// The last checkpoint written.
    pub checkpoint: PathBuf,
    /// The metrics log.
    pub metrics: PathBuf,
    /// Updates skipped as loss spikes in this call.
    pub skipped: u64,
}

/// A training run in progress. See the module docs.
pub struct Trainer {
    config: TrainConfig,
    seq_len: usize,
    model: Gpt,
    optimizer: AdamW,
    loader: WindowLoader,
    phases: Vec<Phase>,
    validation: ValidationSet,
    state: TrainState,
    metrics: MetricsLog,
    tokenizer: Option<Vec<u8>>,
    peak_flops: Option<f64>,
    resumed_from: Option<PathBuf>,
}

impl Trainer {
    /// Sets up a run from `config`: opens the shard version, builds or restores the model,
    /// optimizer, sampler and metrics log (`metrics` overrides `<out>/metrics.jsonl`).
    pub fn new(config: TrainConfig, start: Start, metrics: Option<PathBuf>) -> Result<Self> {
        let out = config.train.out.clone();
        let resume = match start {
            Start::Resume => checkpoint::latest(&out)?
                .map(|p| Checkpoint::load(&p))
                .transpose()?,
            Start::Restart => None,
        };
        if let Some(c) = &resume
            && resume_key(&c.config) != resume_key(&config)
        {
            return Err(TrainError::Checkpoint {
                path: c.path.clone(),
                message: format!(
                    "was trained with a different config; use another train.out than {} or \
                     pass --restart to start over",
                    out.display()
                ),
            });
        }
        let pinned = resume.as_ref().map(|c| c.lineage.version.clone());
        let reader = open_reader(&config.data, pinned.as_deref())?;
        let (device, dtype) = crate::device::select(config.train.device)?;
        let tokenizer_vocab = reader.manifest().tokenizer.vocab_size as usize;
        let dims = match &resume {
            Some(c) => c.state.dims,
            None => config.model.dims(tokenizer_vocab),
        };
        if dims.vocab < tokenizer_vocab {
            return Err(TrainError::Config {
                path: "[model]".into(),
                message: format!(
                    "vocab_size {} is smaller than the tokenizer's {tokenizer_vocab} ids",
                    dims.vocab
                ),
            });
        }
        let seq_len = config.data.seq_len.unwrap_or(dims.context);
        if seq_len == 0 || seq_len > dims.context {
            return Err(TrainError::Config {
                path: "[data]".into(),
                message: format!("seq_len {seq_len} must be in 1..={}", dims.context),
            });
        }
        if config.train.memory_check && device.is_cpu() {
            let shards = reader.memory_bound();
            memory::check(&dims, config.train.batch_size, seq_len, shards)?;
        }
        let (sources, phases) = schedule(&config, &reader)?;
        let validation = ValidationSet::read(&reader, seq_len, config.train.eval_windows)?;
        let tokenizer = reader.tokenizer_json()?.map(|b| b.to_vec());
        let peak_flops = crate::device::peak_flops(&device, config.train.peak_flops);
        tracing::info!(
            device = crate::device::describe(&device, dtype),
            version = reader.version(),
            "training"
        );
        let mut loader = WindowLoader::new(
            reader,
            Split::Train,
            sources,
            phases.clone(),
            seq_len as u64,
            config.train.seed,
        )?;
        let model = Gpt::new(dims, config.train.seed, &device, dtype)?;
        let mut optimizer = AdamW::new(config.optim.clone(), model.params())?;
        let mut state = TrainState {
            step: 0,
            tokens: 0,
            optimizer_updates: 0,
            skipped: 0,
            dims,
            sampler: loader.sampler().state().clone(),
            rng: Rng::new(config.train.seed, "train"),
            spike: SpikeGuard::new(config.train.spike_factor, config.train.spike_window),
        };
        if let Some(c) = &resume {
            model.load(&c.path.join(checkpoint::MODEL))?;
            optimizer.load(
                model.params(),
                &c.path.join(checkpoint::OPTIMIZER),
                c.state.optimizer_updates,
            )?;
            loader.restore(c.state.sampler.clone());
            state = c.state.clone();
            tracing::info!(checkpoint = %c.path.display(), step = state.step, "resuming");
        }
        // Only now, with the new run set up: a mistake in its config costs no checkpoint.
        match start {
            Start::Restart => checkpoint::remove_all(&out)?,
            Start::Resume => {
                let unfinished = checkpoint::remove_unfinished(&out)?;
                if unfinished > 0 {
                    tracing::info!(
                        unfinished,
                        "removed checkpoints a killed run left half-written"
                    );
                }
            }
        }
        let metrics_path = metrics.unwrap_or_else(|| out.join(METRICS));
        let metrics = MetricsLog::open(&metrics_path, resume.as_ref().map(|c| c.state.step))?;
        Ok(Self {
            config,
            seq_len,
            model,
            optimizer,
            loader,
            phases,
            validation,
            state,
            metrics,
            tokenizer,
            peak_flops,
            resumed_from: resume.map(|c| c.path),
        })
    }

    /// The model.
    pub fn model(&self) -> &Gpt {
        &self.model
    }

    /// Counters and states.
    pub fn state(&self) -> &TrainState {
        &self.state
    }

    /// The checkpoint this run continued from, if any.
    pub fn resumed_from(&self) -> Option<&Path> {
        self.resumed_from.as_deref()
    }

    /// Tokens per window.
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// One update: `grad_accum` micro-batches, then (unless the loss spiked) clipping and AdamW.
    pub fn step(&mut self) -> Result<StepReport> {
        let started = Instant::now();
        let t = &self.config.train;
        let accum = t.grad_accum;
        let lr = learning_rate(&self.config.optim, self.state.step, t.steps);
        let params = self.model.params();
        let mut grads: Vec<Option<Tensor>> = vec![None; params.len()];
        let n_sources = self.loader.sources().len();
        let mut by_source = vec![(0f64, 0usize); n_sources];
        let mut loss_sum = 0f64;
        for _ in 0..accum {
            let batch = next_batch(&mut self.loader, t.batch_size, self.model.device())?;
            let per_window = self.model.window_losses(&batch.inputs, &batch.targets)?;
            let store = (per_window.mean_all()? / accum as f64)?.backward()?;
            for (slot, p) in grads.iter_mut().zip(params) {
                let g = store
                    .get(p.var.as_tensor())
                    .ok_or_else(|| TrainError::NoGradient(p.name.clone()))?;
                *slot = Some(match slot.take() {
                    Some(sum) => (sum + g)?,
                    None => g.clone(),
                });
            }
            for (loss, source) in per_window
                .detach()
                .to_vec1::<f32>()?
                .into_iter()
                .zip(batch.sources)
            {
                by_source[source].0 += f64::from(loss);
                by_source[source].1 += 1;
                loss_sum += f64::from(loss);
            }
        }
        let loss = loss_sum / (accum * t.batch_size) as f64;
        let grads: Vec<Tensor> = grads.into_iter().flatten().collect();
        let grad_norm = global_norm(&grads)?;
        let verdict = self.state.spike.check(loss);
        if verdict.spike {
            self.state.skipped += 1;
            tracing::warn!(
                step = self.state.step + 1,
                loss,
                average = verdict.average,
                "loss spike: update skipped"
            );
        } else {
            let scale = clip_scale(grad_norm, self.config.optim.clip);
            self.optimizer.step(params, &grads, lr, scale)?;
        }
        self.model.device().synchronize()?;
        let tokens = (accum * t.batch_size * self.seq_len) as u64;
        self.state.step += 1;
        self.state.tokens += tokens;
        self.state.optimizer_updates = self.optimizer.updates;
        self.state.sampler = self.loader.sampler().state().clone();
        let tokens_per_s = tokens as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let source_loss = self
            .loader
            .sources()
            .iter()
            .zip(&by_source)
            .filter(|(_, (_, n))| *n > 0)
            .map(|(s, (sum, n))| (s.clone(), sum / *n as f64))
            .collect();
        let report = StepReport {
            step: self.state.step,
            loss,
            lr,
            grad_norm,
            tokens: self.state.tokens,
            tokens_per_s,
            mfu: self
                .peak_flops
                .map(|peak| tokens_per_s * self.model.flops_per_token(self.seq_len) / peak),
            source_loss,
            skipped: verdict.spike,
            loss_average: verdict.average,
        };
        self.metrics.write(&Record::Train(report.clone()))?;
        Ok(report)
    }

    /// Per-source validation loss now; logged.
    pub fn evaluate(&mut self) -> Result<BTreeMap<String, SourceEval>> {
        let result = evaluate(&self.model, &self.validation, self.config.train.batch_size)?;
        self.metrics.write(&Record::Eval {
            step: self.state.step,
            tokens: self.state.tokens,
            sources: result.clone(),
        })?;
        Ok(result)
    }

    /// Writes a checkpoint of the current step; logged.
    pub fn checkpoint(&mut self) -> Result<PathBuf> {
        let lineage = self.lineage();
        let path = checkpoint::write(
            &self.config.train.out,
            &Contents {
                model: self.model.named_tensors(),
                optimizer: self.optimizer.named_tensors(self.model.params()),
                state: &self.state,
                config: &self.config,
                lineage: &lineage,
                tokenizer: self.tokenizer.as_deref(),
            },
        )?;
        self.metrics.write(&Record::Checkpoint {
            step: self.state.step,
            path: path.clone(),
        })?;
        Ok(path)
    }

    /// The lineage record of the current step.
    pub fn lineage(&self) -> Lineage {
        let reader = self.loader.reader();
        let sampler = self.loader.sampler();
        let phase = &self.phases[sampler.state().phase.min(self.phases.len() - 1)];
        let weight_sum: f64 = phase.weights.iter().sum();
        let (tokens, epochs) = (sampler.tokens_consumed(), sampler.epochs());
        let sources = self
            .loader
            .sources()
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let windows = sampler.state().drawn[i];
                let available = reader.stream_tokens(Split::Train, name).saturating_sub(1)
                    / self.seq_len as u64;
                let use_ = SourceUse {
                    tokens: tokens[i],
                    windows,
                    windows_available: available,
                    epochs: epochs[i],
                    repeated_windows: windows.saturating_sub(available),
                    target_weight: phase.weights[i] / weight_sum.max(f64::MIN_POSITIVE),
                };
                (name.clone(), use_)
            })
            .collect();
        Lineage {
            root: reader.root_uri().to_string(),
            version: reader.version().to_string(),
            manifest_checksum: reader.manifest_checksum().to_string(),
            config_hash: resume_key(&self.config),
            step: self.state.step,
            tokens: self.state.tokens,
            seed: self.config.train.seed,
            seq_len: self.seq_len,
            tokenizer: reader.manifest().tokenizer.clone(),
            sources,
        }
    }

    /// Trains to `train.steps` (or to `max_steps` updates in all, if lower), validating and
    /// checkpointing on schedule, and always checkpointing where it stops.
    pub fn run(&mut self, max_steps: Option<u64>, mut on: impl FnMut(Event)) -> Result<Summary> {
        let t = self.config.train.clone();
        let end = max_steps.map_or(t.steps, |m| m.min(t.steps));
        // A resumed run scores its starting point for the summary without logging it: an
        // uninterrupted run has no evaluation there, and the log must read as that run's.
        let first_eval = if self.state.step == 0 {
            self.evaluate()?
        } else {
            evaluate(&self.model, &self.validation, t.batch_size)?
        };
        on(Event::Eval(self.state.step, &first_eval));
        let (mut first_loss, mut last_loss, mut skipped) = (None, None, 0);
        let mut last_eval = first_eval.clone();
        let mut checkpoint = None;
        while self.state.step < end {
            let report = self.step()?;
            first_loss.get_or_insert(report.loss);
            last_loss = Some(report.loss);
            skipped += u64::from(report.skipped);
            on(Event::Step(&report));
            let step = self.state.step;
            let due = |every: u64| every > 0 && step.is_multiple_of(every);
            if due(t.eval_every) || step == end {
                last_eval = self.evaluate()?;
                on(Event::Eval(step, &last_eval));
            }
            if due(t.checkpoint_every) || step == end {
                let path = self.checkpoint()?;
                on(Event::Checkpoint(&path));
                checkpoint = Some(path);
            }
        }
        let checkpoint = match (checkpoint, &self.resumed_from) {
            (Some(p), _) => p,
            // Nothing left to train: the checkpoint it resumed from is the result.
            (None, Some(from)) if from.ends_with(format!("step-{:06}", self.state.step)) => {
                from.clone()
            }
            (None, _) => self.checkpoint()?,
        };
        Ok(Summary {
            step: self.state.step,
            first_loss,
            last_loss,
            first_eval,
            last_eval,
            unvalidated: self.validation.unvalidated.clone(),
            checkpoint,
            metrics: self.metrics.path().to_path_buf(),
            skipped,
        })
    }
}

/// Hash of the settings a resumed run must share with its checkpoint (evaluation, checkpoint
/// cadence, device, MFU peak, memory check, cache and output folder may change), also the config
/// hash in lineage records.
fn resume_key(config: &TrainConfig) -> String {
    let mut c = config.clone();
    let d = crate::config::RunConfig::default();
    c.train.eval_every = d.eval_every;
    c.train.eval_windows = d.eval_windows;
    c.train.checkpoint_every = d.checkpoint_every;
    c.train.device = d.device;
    c.train.peak_flops = d.peak_flops;
    c.train.memory_check = d.memory_check;
    c.train.out = d.out;
    c.data.cache_dir = None;
    c.hash()
}
