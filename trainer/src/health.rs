//! Training health: a loss far above its running average (or not finite) marks a spike, and the
//! update of that step is skipped instead of applied.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// The running average of recent accepted losses, and the rule. Saved with checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpikeGuard {
    factor: f64,
    window: usize,
    recent: VecDeque<f64>,
}

/// What the guard made of one loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The running average the loss was compared with (`None` until the window is full).
    pub average: Option<f64>,
    /// Whether to skip the update.
    pub spike: bool,
}

impl SpikeGuard {
    /// A guard that skips losses above `factor` × the mean of the last `window` accepted losses
    /// (`factor` 0 never skips finite losses).
    pub fn new(factor: f64, window: usize) -> Self {
        Self {
            factor,
            window: window.max(1),
            recent: VecDeque::new(),
        }
    }

    /// Judges `loss`; accepted losses enter the average.
    pub fn check(&mut self, loss: f64) -> Verdict {
        let average = (self.recent.len() == self.window)
            .then(|| self.recent.iter().sum::<f64>() / self.window as f64);
        let spike = !loss.is_finite()
            || (self.factor > 0.0 && average.is_some_and(|a| loss > self.factor * a));
        if !spike {
            if self.recent.len() == self.window {
                self.recent.pop_front();
            }
            self.recent.push_back(loss);
        }
        Verdict { average, spike }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_only_spikes_after_the_window_fills() {
        let mut g = SpikeGuard::new(2.0, 3);
        assert!(!g.check(1.0).spike);
        assert!(!g.check(100.0).spike, "no average yet");
        assert!(!g.check(1.0).spike);
        let v = g.check(500.0);
        assert!(v.spike);
        assert!((v.average.unwrap() - 34.0).abs() < 1e-9);
        assert!(!g.check(60.0).spike, "the spike did not enter the average");
        assert!(g.check(f64::NAN).spike);
        let mut off = SpikeGuard::new(0.0, 1);
        off.check(1.0);
        assert!(!off.check(1e9).spike, "factor 0 never skips a finite loss");
    }
}
