//! The training config (TOML). Every key has a default except `data.root`:
//!
//! ```toml
//! [data]
//! root = "out/tokens"        # a dataset root: path or s3:// URL
//! version = "latest"         # or a version id
//! seq_len = 128              # tokens per training window (default: the model's context)
//! weights = { wiki = 2, code = 1 }   # per-source mixture weights (default: by tokens)
//! # or phases: weights that hold until a number of tokens has been drawn
//! # [[data.phases]]
//! # until_tokens = 1_000_000
//! # weights = { wiki = 1 }
//!
//! [model]
//! preset = "tiny"            # or "gpt2-124m"; layers, heads, width, context, vocab_size override
//!
//! [optim]
//! lr = 1e-3                  # peak learning rate, after `warmup_steps`
//!
//! [train]
//! steps = 200
//! batch_size = 8             # windows per micro-batch
//! grad_accum = 1             # micro-batches per update
//! out = "train"              # checkpoints and metrics.jsonl
//! ```
//!
//! Relative local paths are resolved against the config file's folder.

mod sections;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// A training config. See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// What to train on.
    pub data: DataConfig,
    /// The model's shape.
    #[serde(default)]
    pub model: ModelConfig,
    /// The optimizer and learning-rate schedule.
    #[serde(default)]
    pub optim: OptimConfig,
    /// Steps, batch, checkpoints, evaluation, device.
    #[serde(default)]
    pub train: RunConfig,
}

/// `[data]`: the shard version and the mixture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// The dataset root (a path or `s3://` URL).
    pub root: String,
    /// A version id, or `latest` (the default).
    #[serde(default)]
    pub version: Option<String>,
    /// Tokens per training window (default: the model's context).
    #[serde(default)]
    pub seq_len: Option<usize>,
    /// Per-source weights (sources left out are not trained on). Default: proportional to each
    /// source's training tokens.
    #[serde(default)]
    pub weights: Option<BTreeMap<String, f64>>,
    /// A phase schedule instead of `weights`.
    #[serde(default)]
    pub phases: Vec<PhaseConfig>,
    /// Folder caching shards fetched from S3 (default: none; shards are held in memory).
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
}

/// One phase of a mixture schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseConfig {
    /// Total training tokens drawn when the phase ends (omit on the last phase).
    #[serde(default)]
    pub until_tokens: Option<u64>,
    /// Per-source weights in this phase.
    pub weights: BTreeMap<String, f64>,
}

/// A named model size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Preset {
    /// 4 layers, 4 heads, 128 wide, 256 context: trains on a CPU in minutes.
    #[default]
    #[serde(rename = "tiny")]
    Tiny,
    /// GPT-2 small: 12 layers, 12 heads, 768 wide, 1024 context.
    #[serde(rename = "gpt2-124m")]
    Gpt2_124m,
}

/// Most transformer blocks a config may ask for. This and the other bounds lie far above what
/// one machine trains, so that only a typo meets them, and is refused instead of exhausting memory.
const MAX_LAYERS: usize = 1 << 10;
/// Most model width (and attention heads).
const MAX_WIDTH: usize = 1 << 16;
/// Longest context (and `data.seq_len`).
const MAX_CONTEXT: usize = 1 << 20;
/// Most embedding rows.
const MAX_VOCAB: usize = 1 << 24;
/// Most windows in a micro-batch, and most micro-batches in a step.
const MAX_BATCH: usize = 1 << 16;

/// `[model]`: a preset and overrides.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The base shape.
    #[serde(default)]
    pub preset: Preset,
    /// Transformer blocks.
    #[serde(default)]
    pub layers: Option<usize>,
    /// Attention heads (must divide `width`).
    #[serde(default)]
    pub heads: Option<usize>,
    /// Model width.
    #[serde(default)]
    pub width: Option<usize>,
    /// Longest sequence (learned positions).
    #[serde(default)]
    pub context: Option<usize>,
    /// Embedding rows (default: the tokenizer's vocabulary rounded up to a multiple of 64).
    #[serde(default)]
    pub vocab_size: Option<usize>,
}

/// The resolved shape of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelDims {
    /// Transformer blocks.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Model width.
    pub width: usize,
    /// Longest sequence.
    pub context: usize,
    /// Embedding rows.
    pub vocab: usize,
}

impl ModelDims {
    /// Parameter values of a model of this shape: the tied embedding, positions, and per block
    /// two LayerNorms, the attention's `qkv` and projection, and the MLP, with biases.
    pub fn parameters(&self) -> u64 {
        let [layers, width, context, vocab] =
            [self.layers, self.width, self.context, self.vocab].map(|v| v as u64);
        let block = 12 * width * width + 13 * width;
        (vocab + context) * width + layers * block + 2 * width
    }
}

impl ModelConfig {
    /// The shape for a tokenizer with `tokenizer_vocab` ids.
    pub fn dims(&self, tokenizer_vocab: usize) -> ModelDims {
        let (layers, heads, width, context) = match self.preset {
            Preset::Tiny => (4, 4, 128, 256),
            Preset::Gpt2_124m => (12, 12, 768, 1024),
        };
        ModelDims {
            layers: self.layers.unwrap_or(layers),
            heads: self.heads.unwrap_or(heads),
            width: self.width.unwrap_or(width),
            context: self.context.unwrap_or(context),
            vocab: self.vocab_size.unwrap_or(tokenizer_vocab.div_ceil(64) * 64),
        }
    }
}

/// `[optim]`: AdamW and the learning-rate schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// Learning rate at the end of the cosine decay.
    pub min_lr: f64,
    /// Steps of linear warm-up from 0 to `lr`.
    pub warmup_steps: u64,
    /// Decoupled weight decay, applied to matrices only.
    pub weight_decay: f64,
    /// AdamW β₁.
    pub beta1: f64,
    /// AdamW β₂.
    pub beta2: f64,
    /// AdamW ε.
    pub eps: f64,
    /// Clip gradients to this global norm (0 turns clipping off).
    pub clip: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            min_lr: 1e-4,
            warmup_steps: 10,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            clip: 1.0,
        }
    }
}

/// Which device to train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// CUDA when built with the `cuda` feature and a GPU is present, else the CPU.
    #[default]
    Auto,
    /// The CPU (f32).
    Cpu,
    /// The first CUDA GPU (bf16 compute, f32 master weights).
    Cuda,
}

/// `[train]`: the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Optimizer updates in the whole run.
    pub steps: u64,
    /// Windows per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per update.
    pub grad_accum: usize,
    /// Seeds initialisation and the mixture order.
    pub seed: u64,
    /// Output folder: `checkpoints/`, `metrics.jsonl`.
    pub out: PathBuf,
    /// Validation every this many steps (0: only at the end).
    pub eval_every: u64,
    /// Validation windows per source.
    pub eval_windows: usize,
    /// Checkpoint every this many steps (0: only at the end).
    pub checkpoint_every: u64,
    /// A loss above this multiple of its running average skips the update (0 turns it off).
    pub spike_factor: f64,
    /// Steps in the running average of the loss; no step is skipped before it is full.
    pub spike_window: usize,
    /// Where to train.
    pub device: DeviceChoice,
    /// Peak dense bf16 FLOP/s of the GPU for MFU (default: by GPU name, H100/H200 989e12).
    pub peak_flops: Option<f64>,
    /// Refuse a CPU run whose estimated peak memory exceeds what the machine has available
    /// ([`crate::memory`]).
    pub memory_check: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            steps: 100,
            batch_size: 8,
            grad_accum: 1,
            seed: 0,
            out: PathBuf::from("train"),
            eval_every: 0,
            eval_windows: 8,
            checkpoint_every: 0,
            spike_factor: 3.0,
            spike_window: 20,
            device: DeviceChoice::Auto,
            peak_flops: None,
            memory_check: true,
        }
    }
}

impl TrainConfig {
    /// Reads and checks a config file; relative local paths are resolved against its folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(crate::error::io("read", path))?;
        let mut config = Self::parse(&text, &path.display().to_string())?;
        config.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        Ok(config)
    }

    /// Parses and checks config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let config: Self = toml::from_str(text).map_err(|e| {
            let mut all = sections::section_errors(text);
            // The document's first error is one of the sections' unless it is about the top
            // level (an unknown or missing section).
            let first = sections::describe_error(&e, text);
            if !all.contains(&first) {
                all.insert(0, first);
            }
            TrainError::Config {
                path: origin.to_string(),
                message: all.join("\n  "),
            }
        })?;
        config.check(origin)?;
        Ok(config)
    }

    /// Checks values across sections; every problem is reported, one a line.
    fn check(&self, origin: &str) -> Result<()> {
        let mut problems = Vec::new();
        let t = &self.train;
        if t.steps == 0 {
            problems.push("train.steps must be positive".to_string());
        }
        if self.data.weights.is_some() && !self.data.phases.is_empty() {
            problems.push("give either data.weights or data.phases, not both".into());
        }
        let o = &self.optim;
        if !(o.lr > 0.0 && o.min_lr >= 0.0 && o.min_lr <= o.lr) {
            problems.push(format!(
                "optim: need 0 <= min_lr <= lr and lr > 0 (lr {}, min_lr {})",
                o.lr, o.min_lr
            ));
        }
        if !(0.0..1.0).contains(&o.beta1) || !(0.0..1.0).contains(&o.beta2) {
            problems.push("optim.beta1 and optim.beta2 must be in [0, 1)".into());
        }
        let numbers = [
            ("optim.lr", o.lr, o.lr.is_finite(), "a finite number"),
            (
                "optim.weight_decay",
                o.weight_decay,
                o.weight_decay >= 0.0,
                "a number of at least 0",
            ),
            ("optim.eps", o.eps, o.eps > 0.0, "a positive number"),
            (
                "optim.clip",
                o.clip,
                o.clip >= 0.0,
                "a number of at least 0 (0: off)",
            ),
            (
                "train.spike_factor",
                t.spike_factor,
                t.spike_factor == 0.0 || t.spike_factor > 1.0,
                "0 (off) or a number above 1",
            ),
        ];
        for (name, value, ok, what) in numbers {
            if !(ok && value.is_finite()) {
                problems.push(format!("{name} must be {what}, not {value}"));
            }
        }
        let local = [Some(&t.out), self.data.cache_dir.as_ref()];
        for (name, path) in ["train.out", "data.cache_dir"].into_iter().zip(local) {
            if let Some(p) = path.filter(|p| shards::is_url(&p.to_string_lossy())) {
                problems.push(format!(
                    "{name} must be a local folder, not `{}`",
                    p.display()
                ));
            }
        }
        if let Some(flops) = t.peak_flops.filter(|f| !(f.is_finite() && *f > 0.0)) {
            problems.push(format!(
                "train.peak_flops must be a positive number, not {flops}"
            ));
        }
        let m = &self.model;
        let sizes = [
            ("model.layers", m.layers, MAX_LAYERS),
            ("model.heads", m.heads, MAX_WIDTH),
            ("model.width", m.width, MAX_WIDTH),
            ("model.context", m.context, MAX_CONTEXT),
            ("model.vocab_size", m.vocab_size, MAX_VOCAB),
            ("data.seq_len", self.data.seq_len, MAX_CONTEXT),
            ("train.batch_size", Some(t.batch_size), MAX_BATCH),
            ("train.grad_accum", Some(t.grad_accum), MAX_BATCH),
        ];
        for (name, value, max) in sizes {
            match value {
                Some(0) => problems.push(format!("{name} must be positive")),
                Some(v) if v > max => problems.push(format!("{name} ({v}) must be at most {max}")),
                _ => {}
            }
        }
        if let (Some(w), Some(h)) = (m.width, m.heads)
            && h != 0
            && w % h != 0
        {
            problems.push(format!("model.heads ({h}) must divide model.width ({w})"));
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(TrainError::Config {
            path: origin.to_string(),
            message: problems.join("\n  "),
        })
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &Path| {
            let joined = if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            };
            std::path::absolute(&joined).unwrap_or(joined)
        };
        if !shards::is_url(&self.data.root) {
            self.data.root = resolve(Path::new(&self.data.root)).display().to_string();
        }
        if let Some(c) = &self.data.cache_dir {
            self.data.cache_dir = Some(resolve(c));
        }
        self.train.out = resolve(&self.train.out);
    }

    /// The config as TOML (saved in checkpoints).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// xxh3-64 of the settings that must not change across a resume (everything in the file).
    pub fn hash(&self) -> String {
        format!(
            "{:016x}",
            xxhash_rust::xxh3::xxh3_64(self.to_toml().as_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_everything_but_the_root() {
        let c = TrainConfig::parse("[data]\nroot = \"t\"\n", "x").unwrap();
        assert_eq!(c.model.dims(1000).vocab, 1024);
        assert_eq!(c.model.dims(1000).layers, 4);
        assert_eq!(c.train.steps, 100);
        let back = TrainConfig::parse(&c.to_toml(), "y").unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn presets_and_overrides() {
        let c = TrainConfig::parse(
            "[data]\nroot = \"t\"\n[model]\npreset = \"gpt2-124m\"\ncontext = 512\n",
            "x",
        )
        .unwrap();
        let d = c.model.dims(50_280);
        assert_eq!(
            (d.layers, d.heads, d.width, d.context, d.vocab),
            (12, 12, 768, 512, 50_304)
        );
    }

    #[test]
    fn bad_configs_name_the_problem() {
        for (text, needle) in [
            ("[data]\nroot = \"t\"\nbogus = 1\n", "unknown field `bogus`"),
            (
                "[data]\nroot = \"t\"\n[train]\nbatch_size = 0\n",
                "must be positive",
            ),
            (
                "[data]\nroot = \"t\"\n[model]\nwidth = 100\nheads = 3\n",
                "must divide",
            ),
            (
                "[data]\nroot = \"t\"\n[model]\nwidth = 0\n",
                "model.width must be positive",
            ),
            (
                "[data]\nroot = \"t\"\nseq_len = 0\n",
                "data.seq_len must be positive",
            ),
            (
                "[data]\nroot = \"t\"\nweights = { a = 1 }\n[[data.phases]]\nweights = { a = 1 }\n",
                "not both",
            ),
            (
                "[data]\nroot = \"t\"\n[optim]\nlr = 0.1\nmin_lr = 0.2\n",
                "min_lr",
            ),
            (
                "[data]\nroot = \"s3://b/t\"\ncache_dir = \"s3://b/c\"\n[train]\nout = \"s3://b/train\"\n",
                "train.out must be a local folder, not `s3://b/train`\n  data.cache_dir must be",
            ),
        ] {
            let e = TrainConfig::parse(text, "cfg.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle) && e.starts_with("cfg.toml"), "{e}");
        }
    }

    #[test]
    fn values_that_are_not_numbers_or_would_exhaust_memory_are_refused() {
        let problems = |body: &str| {
            TrainConfig::parse(&format!("[data]\nroot = \"t\"\n{body}"), "cfg.toml")
                .err()
                .map(|e| e.to_string())
        };
        let at_most = "[model]\nlayers = 1024\nwidth = 65536\nheads = 65536\ncontext = 1048576\n\
                       vocab_size = 16777216\n[train]\nbatch_size = 65536\ngrad_accum = 65536\n\
                       spike_factor = 0\npeak_flops = 1e15\n[optim]\nweight_decay = 0\nclip = 0\n";
        assert_eq!(problems(at_most), None);
        let e = problems(
            "[model]\nlayers = 1025\nwidth = 4294967296\ncontext = 1048577\nvocab_size = 16777217\n\
             [train]\nbatch_size = 65537\ngrad_accum = 9223372036854775807\nspike_factor = 0.5\n\
             peak_flops = 0\n[optim]\nlr = inf\nweight_decay = -0.1\neps = 0\nclip = nan\n",
        )
        .unwrap();
        for needle in [
            "model.layers (1025) must be at most 1024",
            "model.width (4294967296) must be at most 65536",
            "model.context (1048577) must be at most 1048576",
            "model.vocab_size (16777217) must be at most 16777216",
            "train.batch_size (65537) must be at most 65536",
            "train.grad_accum (9223372036854775807) must be at most 65536",
            "train.spike_factor must be 0 (off) or a number above 1, not 0.5",
            "train.peak_flops must be a positive number, not 0",
            "optim.lr must be a finite number, not inf",
            "optim.weight_decay must be a number of at least 0, not -0.1",
            "optim.eps must be a positive number, not 0",
            "optim.clip must be a number of at least 0 (0: off), not NaN",
        ] {
            assert!(e.contains(needle), "{needle} missing from: {e}");
        }
        assert_eq!(e.lines().count(), 12, "{e}");
    }

    #[test]
    fn every_bad_value_is_reported_at_once() {
        let text = "[data]\nroot = \"t\"\n[train]\nsteps = 0\n[model]\nwidth = 100\nheads = 3\n[optim]\nlr = 0.1\nmin_lr = 0.2\n";
        let e = TrainConfig::parse(text, "cfg.toml")
            .unwrap_err()
            .to_string();
        for needle in ["must be positive", "must divide", "min_lr"] {
            assert!(e.contains(needle), "{needle} missing from: {e}");
        }
    }

    #[test]
    fn type_errors_in_every_section_and_unknown_sections_are_reported_at_once() {
        let text = "[data]\nroot = \"t\"\nseq_len = \"long\"\n[trian]\nsteps = 1\n[optim]\nlr = \"fast\"\n[train]\nstepz = 3\n";
        let e = TrainConfig::parse(text, "cfg.toml")
            .unwrap_err()
            .to_string();
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 4, "{e}");
        for (line, (at, word)) in lines.iter().zip([
            ("line 3:", "\"long\""),
            ("line 4:", "`trian`"),
            ("line 7:", "\"fast\""),
            ("line 9:", "`stepz`"),
        ]) {
            assert!(line.contains(at) && line.contains(word), "{line}");
        }
        // One error alone is reported once.
        let e = TrainConfig::parse("[data]\nroot = \"t\"\n[trian]\n", "cfg.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(e.matches("trian").count(), 1, "{e}");
    }
}
