//! Training batches and validation windows from a shard version.
//!
//! Training windows come from [`WindowLoader`]: the mixture sampler picks the source and the
//! window, so every batch is a reproducible function of the seed and the sampler state.
//! Validation windows are the first `eval_windows` consecutive windows of each source's
//! held-out stream, read once at start-up.

use std::collections::{BTreeMap, BTreeSet};

use candle_core::{Device, Tensor};
use shards::dataset::{ReaderOptions, ShardReader, Split, WindowLoader};
use shards::mixture::Phase;

use crate::config::{DataConfig, TrainConfig};
use crate::error::{Result, TrainError};

/// One micro-batch.
pub struct Batch {
    /// Token ids `[B, T]` (u32).
    pub inputs: Tensor,
    /// The next token of each input `[B, T]` (u32).
    pub targets: Tensor,
    /// The source index of each row.
    pub sources: Vec<usize>,
}

/// Opens the version named by `data` (or `version`, which pins a resumed run to the version it
/// started on).
pub fn open_reader(data: &DataConfig, version: Option<&str>) -> Result<ShardReader> {
    let options = ReaderOptions {
        cache_dir: data.cache_dir.clone(),
        ..ReaderOptions::default()
    };
    Ok(ShardReader::open(
        &data.root,
        version.or(data.version.as_deref()),
        options,
    )?)
}

/// The sources trained on and the phase schedule, from the config and the version.
pub fn schedule(config: &TrainConfig, reader: &ShardReader) -> Result<(Vec<String>, Vec<Phase>)> {
    let data = &config.data;
    let available = reader.sources(Split::Train);
    let unknown = |name: &str| TrainError::Config {
        path: "[data]".into(),
        message: format!(
            "source `{name}` is not in version {} (it has: {})",
            reader.version(),
            available.join(", ")
        ),
    };
    let phases: Vec<(Option<u64>, &BTreeMap<String, f64>)> = if !data.phases.is_empty() {
        data.phases
            .iter()
            .map(|p| (p.until_tokens, &p.weights))
            .collect()
    } else if let Some(w) = &data.weights {
        vec![(None, w)]
    } else {
        let sources = available.clone();
        let weights = sources
            .iter()
            .map(|s| reader.stream_tokens(Split::Train, s) as f64)
            .collect();
        return Ok((
            sources,
            vec![Phase {
                until_tokens: None,
                weights,
            }],
        ));
    };
    let mut sources: Vec<String> = Vec::new();
    for (_, weights) in &phases {
        for name in weights.keys() {
            if !available.contains(name) {
                return Err(unknown(name));
            }
            if !sources.contains(name) {
                sources.push(name.clone());
            }
        }
    }
    sources.sort();
    let phases = phases
        .into_iter()
        .map(|(until_tokens, w)| Phase {
            until_tokens,
            weights: sources
                .iter()
                .map(|s| w.get(s).copied().unwrap_or(0.0))
                .collect(),
        })
        .collect();
    Ok((sources, phases))
}

/// The next micro-batch of `batch` windows of `seq_len + 1` tokens.
pub fn next_batch(loader: &mut WindowLoader, batch: usize, device: &Device) -> Result<Batch> {
    let mut windows = Vec::with_capacity(batch);
    let mut sources = Vec::with_capacity(batch);
    for _ in 0..batch {
        let w = loader.next_window()?;
        sources.push(w.draw.source);
        windows.push(w.tokens);
    }
    let (inputs, targets) = to_tensors(&windows, device)?;
    Ok(Batch {
        inputs,
        targets,
        sources,
    })
}

/// Inputs and targets `[B, T]` from windows of `T + 1` tokens.
pub fn to_tensors(windows: &[Vec<u32>], device: &Device) -> Result<(Tensor, Tensor)> {
    let t = windows.first().map_or(0, |w| w.len().saturating_sub(1));
    let mut inputs = Vec::with_capacity(windows.len() * t);
    let mut targets = Vec::with_capacity(windows.len() * t);
    for w in windows {
        inputs.extend_from_slice(&w[..t]);
        targets.extend_from_slice(&w[1..=t]);
    }
    Ok((
        Tensor::from_vec(inputs, (windows.len(), t), device)?,
        Tensor::from_vec(targets, (windows.len(), t), device)?,
    ))
}

/// The held-out windows of each source, read once.
pub struct ValidationSet {
    /// Per source: its windows of `seq_len + 1` tokens (sources too short for one are absent).
    pub sources: BTreeMap<String, Vec<Vec<u32>>>,
    /// The sources with no window (too few or no documents held out), with their held-out
    /// tokens (often 0): no validation loss is reported for them.
    pub unvalidated: BTreeMap<String, u64>,
}

impl ValidationSet {
    /// Up to `per_source` consecutive windows from the start of each source's held-out stream.
    pub fn read(reader: &ShardReader, seq_len: usize, per_source: usize) -> Result<Self> {
        let (mut sources, mut unvalidated) = (BTreeMap::new(), BTreeMap::new());
        let t = seq_len as u64;
        let names: BTreeSet<String> = [Split::Train, Split::Validation]
            .into_iter()
            .flat_map(|split| reader.sources(split))
            .collect();
        for source in names {
            let tokens = reader.stream_tokens(Split::Validation, &source);
            let n = (tokens.saturating_sub(1) / t).min(per_source as u64);
            if n == 0 {
                tracing::warn!(
                    source,
                    tokens,
                    "held-out stream is shorter than one window: no validation loss for it"
                );
                unvalidated.insert(source, tokens);
                continue;
            }
            let all = reader.read(Split::Validation, &source, 0..n * t + 1)?;
            let windows = (0..n as usize)
                .map(|w| all[w * seq_len..(w + 1) * seq_len + 1].to_vec())
                .collect();
            sources.insert(source, windows);
        }
        Ok(Self {
            sources,
            unvalidated,
        })
    }
}
