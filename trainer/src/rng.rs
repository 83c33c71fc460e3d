//! A small seeded generator (SplitMix64) whose whole state is one `u64`, so it is saved with a
//! checkpoint and restored exactly. Used for initialisation and sampling.

use serde::{Deserialize, Serialize};

/// SplitMix64 (Steele, Lea and Flood 2014): passes BigCrush, one add and three mixes per draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rng {
    /// The state: the next draw is a function of it alone.
    pub state: u64,
}

impl Rng {
    /// A generator for `seed` and a `stream` name (independent streams from one seed).
    pub fn new(seed: u64, stream: &str) -> Self {
        Self {
            state: xxhash_rust::xxh3::xxh3_64_with_seed(stream.as_bytes(), seed),
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `n` draws from a normal distribution with mean 0 and deviation `std` (Box–Muller).
    pub fn normal_vec(&mut self, n: usize, std: f64) -> Vec<f32> {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            let u1 = 1.0 - self.uniform(); // (0, 1]: ln is finite
            let u2 = self.uniform();
            let r = (-2.0 * u1.ln()).sqrt() * std;
            let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
            out.push((r * c) as f32);
            out.push((r * s) as f32);
        }
        out.truncate(n);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_draws_have_the_asked_moments() {
        let v = Rng::new(7, "test").normal_vec(200_000, 0.02);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 2e-4, "mean {mean}");
        assert!((var.sqrt() - 0.02).abs() < 2e-4, "std {}", var.sqrt());
    }

    #[test]
    fn streams_and_seeds_differ_and_repeat() {
        let a = Rng::new(1, "a").normal_vec(4, 1.0);
        assert_eq!(a, Rng::new(1, "a").normal_vec(4, 1.0));
        assert_ne!(a, Rng::new(2, "a").normal_vec(4, 1.0));
        assert_ne!(a, Rng::new(1, "b").normal_vec(4, 1.0));
    }
}
