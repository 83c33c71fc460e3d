//! MinHash signatures and their LSH band keys.
//!
//! A signature holds `bands × rows` minima, one per hash function `h_i` over 64-bit shingle
//! hashes. Two sets agree on each minimum with probability equal to their Jaccard similarity, so
//! the fraction of equal positions estimates it. Two families of functions ([`Family`]): Refinery's
//! multiply-shift `h_i(x) = (a_i·x + b_i) >> 32` (`a_i` odd; `a_i`, `b_i` drawn from the seed by
//! SplitMix64), and datatrove's `h_i(x) = (a_i·x + b_i) mod (2⁶¹ − 1)` with NumPy's parameters
//! ([`crate::datatrove`]), whose 61-bit minima are folded to 32 bits after the minimum is taken
//! (equal minima stay equal; unequal ones collide with probability 2⁻³²). A band is `rows` consecutive minima, hashed to one 64-bit key: two
//! documents are candidates when any band key is equal.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::datatrove::hash_parameters;
use crate::minima::minima;

/// A family of hash functions `h(x)` built from parameters `a` and `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `(a·x + b) >> 32`, parameters from SplitMix64.
    MultiplyShift,
    /// Datatrove's `(a·x + b) mod (2⁶¹ − 1)`, parameters from NumPy's `RandomState`.
    MersennePrime,
}

/// Signature and band-key computation for one `bands × rows` setting and seed.
#[derive(Debug, Clone)]
pub struct MinHasher {
    bands: usize,
    rows: usize,
    family: Family,
    a: Vec<u64>,
    b: Vec<u64>,
}

impl MinHasher {
    /// Datatrove's hash functions for `bands × rows` minima and its `seed` (default 1).
    pub fn datatrove(bands: usize, rows: usize, seed: u32) -> Self {
        let (a, b) = hash_parameters(seed, bands * rows);
        Self {
            bands,
            rows,
            family: Family::MersennePrime,
            a,
            b,
        }
    }

    /// Refinery's hash functions for `bands × rows` minima, drawn from `seed`.
    pub fn new(bands: usize, rows: usize, seed: u64) -> Self {
        let mut state = seed;
        let mut next = || {
            // splitmix64
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let n = bands * rows;
        let a = (0..n).map(|_| next() | 1).collect();
        let b = (0..n).map(|_| next()).collect();
        Self {
            bands,
            rows,
            family: Family::MultiplyShift,
            a,
            b,
        }
    }

    /// The family of the hash functions.
    pub fn family(&self) -> Family {
        self.family
    }

    /// Number of bands.
    pub fn bands(&self) -> usize {
        self.bands
    }

    /// Minima per band.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The signature of a shingle-hash multiset; `None` when it is empty (a text with no
    /// shingles is nobody's near-duplicate).
    pub fn signature(&self, shingles: &[u64]) -> Option<Vec<u32>> {
        if shingles.is_empty() {
            return None;
        }
        Some(minima(self.family, &self.a, &self.b, shingles))
    }

    /// The key of each band of `signature`.
    pub fn band_keys(&self, signature: &[u32]) -> Vec<u64> {
        signature
            .chunks_exact(self.rows)
            .enumerate()
            .map(|(band, rows)| {
                let bytes: Vec<u8> = rows.iter().flat_map(|r| r.to_le_bytes()).collect();
                xxh3_64_with_seed(&bytes, band as u64)
            })
            .collect()
    }
}

/// The fraction of positions where two signatures agree: an unbiased estimate of the Jaccard
/// similarity of their sets, with standard error √(J(1−J)/n) for n minima.
pub fn estimate_jaccard(a: &[u32], b: &[u32]) -> f64 {
    let equal = a.iter().zip(b).filter(|(x, y)| x == y).count();
    equal as f64 / a.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jaccard::jaccard;
    use proptest::prelude::*;

    /// Two sets with a chosen overlap: `shared` common elements, `only` in each alone.
    fn pair(shared: u64, only: u64, salt: u64) -> (Vec<u64>, Vec<u64>) {
        let h = |i: u64| xxh3_64_with_seed(&i.to_le_bytes(), salt);
        let common: Vec<u64> = (0..shared).map(h).collect();
        let mut a = common.clone();
        let mut b = common;
        a.extend((0..only).map(|i| h(1_000_000 + i)));
        b.extend((0..only).map(|i| h(2_000_000 + i)));
        a.sort_unstable();
        b.sort_unstable();
        (a, b)
    }

    /// How many minima of `a` and `b` agree under `h`.
    fn agreeing(h: &MinHasher, a: &[u64], b: &[u64]) -> usize {
        let (x, y) = (h.signature(a).unwrap(), h.signature(b).unwrap());
        x.iter().zip(&y).filter(|(p, q)| p == q).count()
    }

    /// The chance that a Binomial(`n`, `p`) draw lies at least as far out as `k`: twice its
    /// smaller tail, at most 1.
    fn binomial_tail(n: usize, p: f64, k: usize) -> f64 {
        let x_ln_y = |x: f64, y: f64| if x == 0.0 { 0.0 } else { x * y.ln() };
        let pmf: Vec<f64> = (0..=n)
            .map(|i| {
                let ln_choose: f64 = (0..i).map(|j| ((n - j) as f64 / (j + 1) as f64).ln()).sum();
                (ln_choose + x_ln_y(i as f64, p) + x_ln_y((n - i) as f64, 1.0 - p)).exp()
            })
            .collect();
        let lower: f64 = pmf[..=k].iter().sum();
        let upper: f64 = pmf[k..].iter().sum();
        (2.0 * lower.min(upper)).min(1.0)
    }

    #[test]
    fn the_tail_of_a_binomial() {
        assert!((binomial_tail(4, 0.5, 2) - 1.0).abs() < 1e-12);
        assert!((binomial_tail(4, 0.5, 0) - 2.0 / 16.0).abs() < 1e-12);
        assert!((binomial_tail(4, 0.5, 4) - 2.0 / 16.0).abs() < 1e-12);
        assert_eq!(binomial_tail(256, 0.0, 1), 0.0);
        assert_eq!(binomial_tail(256, 1.0, 256), 1.0);
    }

    /// Over many seeds the agreement count has the binomial's mean and variance: biased hash
    /// functions move the mean, and correlated ones (say, sharing `a`) inflate the variance.
    #[test]
    fn agreement_has_the_binomial_mean_and_variance() {
        let (trials, n, truth) = (1000, 256.0, 1.0 / 3.0);
        for family in [Family::MultiplyShift, Family::MersennePrime] {
            let counts: Vec<f64> = (0..trials)
                .map(|t| {
                    let (a, b) = pair(50, 50, t * 7919);
                    let h = match family {
                        Family::MultiplyShift => MinHasher::new(16, 16, t),
                        Family::MersennePrime => MinHasher::datatrove(16, 16, t as u32),
                    };
                    agreeing(&h, &a, &b) as f64
                })
                .collect();
            let mean = counts.iter().sum::<f64>() / trials as f64;
            let var = counts.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / trials as f64;
            let (want_mean, want_var) = (n * truth, n * truth * (1.0 - truth));
            // Six standard errors of the mean; the variance's relative error is √(2/trials).
            assert!(
                (mean - want_mean).abs() < 6.0 * (want_var / trials as f64).sqrt(),
                "{family:?}: mean {mean}, want {want_mean}"
            );
            assert!(
                (0.8..1.25).contains(&(var / want_var)),
                "{family:?}: variance {var}, want {want_var}"
            );
        }
    }

    proptest! {
        #[test]
        fn the_agreement_count_is_a_plausible_binomial_draw(
            shared in 0u64..400, only in 0u64..400, salt in any::<u64>(), seed in any::<u64>(),
        ) {
            prop_assume!(shared + only > 0);
            let (a, b) = pair(shared, only, salt);
            let truth = jaccard(&a, &b);
            for h in [MinHasher::new(16, 16, seed), MinHasher::datatrove(16, 16, seed as u32)] {
                let agree = agreeing(&h, &a, &b);
                // A two-sided binomial tail, not a normal one: at J near 0 or 1 the count is
                // Poisson-like, and a normal bound fails on ordinary draws.
                let tail = binomial_tail(256, truth, agree);
                prop_assert!(tail >= 1e-9, "{:?}: truth {truth}, {agree} of 256 agree (tail {tail:e})", h.family());
            }
        }

        #[test]
        fn identical_sets_always_collide(set in proptest::collection::vec(any::<u64>(), 1..50), seed in any::<u64>()) {
            let mut shuffled = set.clone();
            shuffled.reverse();
            shuffled.extend_from_slice(&set);
            for h in [MinHasher::new(14, 8, seed), MinHasher::datatrove(14, 8, seed as u32)] {
                let (a, b) = (h.signature(&set).unwrap(), h.signature(&shuffled).unwrap());
                prop_assert_eq!(&a, &b);
                prop_assert_eq!(h.band_keys(&a), h.band_keys(&b));
            }
        }
    }

    #[test]
    fn empty_sets_have_no_signature_and_bands_differ_by_position() {
        let h = MinHasher::new(2, 2, 1);
        assert!(h.signature(&[]).is_none());
        let keys = h.band_keys(&[7, 7, 7, 7]);
        assert_ne!(keys[0], keys[1], "band index is part of the key");
    }
}
