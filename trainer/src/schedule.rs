//! The learning-rate schedule: linear warm-up from 0, then cosine decay to `min_lr` at the last
//! step.

use crate::config::OptimConfig;

/// The learning rate of update `step` (0-based) in a run of `total` updates.
pub fn learning_rate(config: &OptimConfig, step: u64, total: u64) -> f64 {
    if step < config.warmup_steps {
        return config.lr * (step + 1) as f64 / config.warmup_steps as f64;
    }
    let span = total.saturating_sub(config.warmup_steps).max(1);
    let progress = ((step - config.warmup_steps) as f64 / span as f64).min(1.0);
    let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    config.min_lr + (config.lr - config.min_lr) * cosine
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config() -> OptimConfig {
        OptimConfig {
            lr: 1.0,
            min_lr: 0.1,
            warmup_steps: 10,
            ..OptimConfig::default()
        }
    }

    #[test]
    fn warms_up_linearly_then_peaks_then_decays_to_min() {
        let c = config();
        assert!((learning_rate(&c, 0, 110) - 0.1).abs() < 1e-12);
        assert!((learning_rate(&c, 4, 110) - 0.5).abs() < 1e-12);
        assert!((learning_rate(&c, 10, 110) - 1.0).abs() < 1e-12);
        assert!((learning_rate(&c, 60, 110) - 0.55).abs() < 1e-12);
        assert!((learning_rate(&c, 110, 110) - 0.1).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn decay_never_rises_and_stays_in_bounds(total in 11u64..10_000, a in 0u64..10_000, b in 0u64..10_000) {
            let c = config();
            let (lo, hi) = (a.min(b).max(10), a.max(b).max(10));
            let (x, y) = (learning_rate(&c, lo, total), learning_rate(&c, hi, total));
            prop_assert!(y <= x + 1e-12);
            prop_assert!((0.1 - 1e-12..=1.0 + 1e-12).contains(&y));
        }
    }
}
