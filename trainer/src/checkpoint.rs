//! Checkpoints: everything needed to continue a run exactly, and to say what data made it.
//!
//! ```text
//! <out>/checkpoints/latest                  name of the newest complete checkpoint
//! <out>/checkpoints/step-000100/
//!     model.safetensors                     f32 weights by name
//!     optimizer.safetensors                 AdamW moments (m.<name>, v.<name>)
//!     state.json                            step, tokens, model shape, sampler, RNG, spike guard
//!     config.toml                           the training config
//!     lineage.json                          shard version, manifest checksum, per-source use
//!     tokenizer.json                        the version's tokenizer, when it stores one
//! ```
//!
//! A checkpoint is written into a hidden temporary folder and renamed into place, then
//! `latest` is replaced atomically: a killed run leaves the previous checkpoint intact.

use std::collections::{BTreeMap, HashMap};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shards::mixture::MixtureState;

use crate::config::{ModelDims, TrainConfig};
use crate::error::{Result, TrainError, io};
use crate::health::SpikeGuard;
use crate::rng::Rng;

/// Folder of checkpoints inside a run's output folder.
pub const DIR: &str = "checkpoints";
/// The file naming the newest complete checkpoint.
pub const LATEST: &str = "latest";
/// Weights.
pub const MODEL: &str = "model.safetensors";
/// Optimizer moments.
pub const OPTIMIZER: &str = "optimizer.safetensors";
/// Counters and states.
pub const STATE: &str = "state.json";
/// The training config.
pub const CONFIG: &str = "config.toml";
/// What data made the model.
pub const LINEAGE: &str = "lineage.json";
/// The tokenizer of the shard version.
pub const TOKENIZER: &str = "tokenizer.json";

/// The run's counters and the states of everything stochastic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Updates done (skipped ones included).
    pub step: u64,
    /// Training tokens consumed.
    pub tokens: u64,
    /// Updates the optimizer applied (for bias correction).
    pub optimizer_updates: u64,
    /// Updates skipped as loss spikes.
    pub skipped: u64,
    /// The model's shape.
    pub dims: ModelDims,
    /// The mixture sampler's counters.
    pub sampler: MixtureState,
    /// The trainer's random generator (initialisation drew from the seed; kept for any draw).
    pub rng: Rng,
    /// The loss-spike guard's running window.
    pub spike: SpikeGuard,
}

/// How one source fed the model so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceUse {
    /// Training tokens drawn from it.
    pub tokens: u64,
    /// Windows drawn.
    pub windows: u64,
    /// Windows it holds.
    pub windows_available: u64,
    /// Complete passes over it.
    pub epochs: u64,
    /// Draws of windows already seen (`windows − windows_available`, when positive).
    pub repeated_windows: u64,
    /// Its weight in the current phase of the schedule.
    pub target_weight: f64,
}

/// The lineage record: which data, exactly, trained the model up to this checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    /// The dataset root.
    pub root: String,
    /// The shard version id.
    pub version: String,
    /// xxh3-64 of the version's `manifest.json`.
    pub manifest_checksum: String,
    /// Hash of the training config.
    pub config_hash: String,
    /// Updates done.
    pub step: u64,
    /// Training tokens consumed.
    pub tokens: u64,
    /// The sampler's seed (with the saved sampler states, every draw is reconstructable).
    pub seed: u64,
    /// Tokens per window.
    pub seq_len: usize,
    /// The tokenizer that produced the tokens.
    pub tokenizer: shards::dataset::TokenizerInfo,
    /// Per-source use.
    pub sources: BTreeMap<String, SourceUse>,
}

/// What a checkpoint holds besides tensors.
pub struct Checkpoint {
    /// Its folder.
    pub path: PathBuf,
    /// The config it was trained with.
    pub config: TrainConfig,
    /// Counters and states.
    pub state: TrainState,
    /// Its lineage.
    pub lineage: Lineage,
}

/// The tensors and records to write.
pub struct Contents<'a> {
    /// Weights by name.
    pub model: std::collections::HashMap<String, candle_core::Tensor>,
    /// Optimizer moments by name.
    pub optimizer: std::collections::HashMap<String, candle_core::Tensor>,
    /// Counters and states.
    pub state: &'a TrainState,
    /// The config.
    pub config: &'a TrainConfig,
    /// The lineage.
    pub lineage: &'a Lineage,
    /// The tokenizer bytes, if the version stores one.
    pub tokenizer: Option<&'a [u8]>,
}

/// Writes a checkpoint for `contents.state.step` under `<out>/checkpoints` and points `latest`
/// at it; returns its folder.
pub fn write(out: &Path, contents: &Contents) -> Result<PathBuf> {
    let dir = out.join(DIR);
    std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    let name = format!("step-{:06}", contents.state.step);
    let target = dir.join(&name);
    let tmp = dir.join(unfinished_name(&name));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io("remove", &tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io("create", &tmp))?;
    candle_core::safetensors::save(&contents.model, tmp.join(MODEL))?;
    candle_core::safetensors::save(&contents.optimizer, tmp.join(OPTIMIZER))?;
    let files: [(&str, Vec<u8>); 3] = [
        (STATE, pretty(contents.state)),
        (CONFIG, contents.config.to_toml().into_bytes()),
        (LINEAGE, pretty(contents.lineage)),
    ];
    for (file, bytes) in files {
        std::fs::write(tmp.join(file), bytes).map_err(io("write", tmp.join(file)))?;
    }
    if let Some(t) = contents.tokenizer {
        std::fs::write(tmp.join(TOKENIZER), t).map_err(io("write", tmp.join(TOKENIZER)))?;
    }
    for entry in std::fs::read_dir(&tmp).map_err(io("list", &tmp))? {
        let path = entry.map_err(io("list", &tmp))?.path();
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(io("sync", &path))?;
    }
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(io("remove", &target))?;
    }
    std::fs::rename(&tmp, &target).map_err(io("rename", &tmp))?;
    shards::atomic::write_file(&dir.join(LATEST), format!("{name}\n").as_bytes())?;
    Ok(target)
}

/// Whether `name` is a checkpoint folder's name (`step-` and the step's digits), not the hidden
/// folder of one being written.
pub fn is_checkpoint_name(name: &str) -> bool {
    name.strip_prefix("step-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The hidden folder a checkpoint named `name` is written in by this process.
fn unfinished_name(name: &str) -> String {
    format!(".{name}.tmp-{}", std::process::id())
}

/// Whether `name` is the hidden folder of a checkpoint being written (by any process).
fn is_unfinished_name(name: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|n| n.split_once(".tmp-"))
        .is_some_and(|(step, _)| is_checkpoint_name(step))
}

/// Removes the hidden folders of checkpoints whose writing a killed run cut short
/// (`.step-NNNNNN.tmp-PID`) from `out`'s checkpoints; returns how many.
pub fn remove_unfinished(out: &Path) -> Result<usize> {
    let dir = out.join(DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_unfinished_name(&name) {
            let path = entry.path();
            std::fs::remove_dir_all(&path).map_err(io("remove", &path))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes every checkpoint of `out` (for a restart): `latest` first, so that a restart killed
/// while removing the rest never resumes the old run.
pub fn remove_all(out: &Path) -> Result<()> {
    let gone = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    let dir = out.join(DIR);
    let latest = dir.join(LATEST);
    gone(std::fs::remove_file(&latest)).map_err(io("remove", &latest))?;
    gone(std::fs::remove_dir_all(&dir)).map_err(io("remove", &dir))
}

/// The newest complete checkpoint of a run's output folder, if any (none where `out` is missing
/// or a file).
pub fn latest(out: &Path) -> Result<Option<PathBuf>> {
    let file = out.join(DIR).join(LATEST);
    match std::fs::read_to_string(&file) {
        Ok(name) => Ok(Some(out.join(DIR).join(name.trim()))),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(None),
        Err(e) => Err(io("read", file)(e)),
    }
}

/// The tensors of a checkpoint's safetensors file on `device`; a damaged file's error names it.
pub(crate) fn read_tensors(
    path: &Path,
    device: &candle_core::Device,
) -> candle_core::Result<HashMap<String, candle_core::Tensor>> {
    candle_core::safetensors::load(path, device)
        .map_err(|e| candle_core::Error::Msg(format!("{}: {e}", path.display())))
}

impl Checkpoint {
    /// Reads a checkpoint folder's records (tensors are loaded by the model and optimizer).
    pub fn load(path: &Path) -> Result<Self> {
        let missing = |file: &str, e: String| TrainError::Checkpoint {
            path: path.to_path_buf(),
            message: format!("{file}: {e}"),
        };
        let read = |file: &str| {
            std::fs::read_to_string(path.join(file)).map_err(|e| missing(file, e.to_string()))
        };
        if !path.is_dir() {
            return Err(TrainError::Checkpoint {
                path: path.to_path_buf(),
                message: "no such folder (give a checkpoint folder or a training output folder)"
                    .into(),
            });
        }
        if !path.join(MODEL).is_file() && path.join(crate::train::METRICS).is_file() {
            return Err(TrainError::Checkpoint {
                path: path.to_path_buf(),
                message: "a training output folder with no checkpoint yet (its run stopped \
                          before the first; `refinery train CONFIG` starts it again)"
                    .into(),
            });
        }
        for file in [MODEL, OPTIMIZER] {
            if !path.join(file).is_file() {
                return Err(missing(file, "missing".into()));
            }
        }
        let config = TrainConfig::parse(&read(CONFIG)?, &path.join(CONFIG).display().to_string())?;
        let state =
            serde_json::from_str(&read(STATE)?).map_err(|e| missing(STATE, e.to_string()))?;
        let lineage =
            serde_json::from_str(&read(LINEAGE)?).map_err(|e| missing(LINEAGE, e.to_string()))?;
        Ok(Self {
            path: path.to_path_buf(),
            config,
            state,
            lineage,
        })
    }

    /// The model with this checkpoint's weights on `device`.
    pub fn model(&self, device: crate::config::DeviceChoice) -> Result<crate::Gpt> {
        let (device, dtype) = crate::device::select(device)?;
        let model = crate::Gpt::new(self.state.dims, self.config.train.seed, &device, dtype)?;
        model.load(&self.path.join(MODEL))?;
        Ok(model)
    }

    /// Per-source validation loss of the checkpoint's model on up to `windows` held-out
    /// windows per source of the version it was trained on.
    pub fn evaluate(
        &self,
        device: crate::config::DeviceChoice,
        windows: usize,
        batch: usize,
    ) -> Result<crate::eval::Evaluation> {
        let model = self.model(device)?;
        let reader = crate::data::open_reader(&self.config.data, Some(&self.lineage.version))?;
        let set = crate::data::ValidationSet::read(&reader, self.lineage.seq_len, windows)?;
        Ok(crate::eval::Evaluation {
            sources: crate::eval::evaluate(&model, &set, batch)?,
            unvalidated: set.unvalidated,
        })
    }

    /// The stored tokenizer, if any.
    pub fn tokenizer(&self) -> Option<Vec<u8>> {
        std::fs::read(self.path.join(TOKENIZER)).ok()
    }
}

fn pretty(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_default()
}
