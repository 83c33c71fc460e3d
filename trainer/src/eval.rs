//! Per-source validation loss and perplexity on the held-out windows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::data::{ValidationSet, to_tensors};
use crate::error::Result;
use crate::model::Gpt;

/// Validation result of one source.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SourceEval {
    /// Mean cross-entropy per token (nats).
    pub loss: f64,
    /// `exp(loss)`.
    pub perplexity: f64,
    /// Tokens scored.
    pub tokens: u64,
}

/// A checkpoint's validation: the scored sources, and those with no held-out window.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Per source with held-out windows, its result.
    pub sources: BTreeMap<String, SourceEval>,
    /// Sources with no held-out window, with their held-out tokens (often 0).
    pub unvalidated: BTreeMap<String, u64>,
}

/// Scores every source of `set` in batches of `batch` windows.
pub fn evaluate(
    model: &Gpt,
    set: &ValidationSet,
    batch: usize,
) -> Result<BTreeMap<String, SourceEval>> {
    let mut out = BTreeMap::new();
    for (source, windows) in &set.sources {
        let mut sum = 0f64;
        for chunk in windows.chunks(batch.max(1)) {
            let (inputs, targets) = to_tensors(chunk, model.device())?;
            let losses = model.window_losses(&inputs, &targets)?.detach();
            sum += losses
                .to_vec1::<f32>()?
                .iter()
                .map(|&l| f64::from(l))
                .sum::<f64>();
        }
        let loss = sum / windows.len() as f64;
        let per_window = windows.first().map_or(0, |w| w.len() as u64 - 1);
        out.insert(
            source.clone(),
            SourceEval {
                loss,
                perplexity: loss.exp(),
                tokens: per_window * windows.len() as u64,
            },
        );
    }
    Ok(out)
}
