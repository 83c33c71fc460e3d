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

use crate::datatrove::{MERSENNE_PRIME, hash_parameters};

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
        let params = self.a.iter().zip(&self.b);
        match self.family {
            Family::MultiplyShift => {
                let mut sig = vec![u32::MAX; self.a.len()];
                for &x in shingles {
                    for (s, (&a, &b)) in sig.iter_mut().zip(params.clone()) {
                        *s = (*s).min((a.wrapping_mul(x).wrapping_add(b) >> 32) as u32);
                    }
                }
                Some(sig)
            }
            Family::MersennePrime => {
                let mut minima = vec![u64::MAX; self.a.len()];
                for &x in shingles {
                    for (m, (&a, &b)) in minima.iter_mut().zip(params.clone()) {
                        *m = (*m).min(mod_mersenne(a.wrapping_mul(x).wrapping_add(b)));
                    }
                }
                Some(minima.iter().map(|&m| (m ^ (m >> 32)) as u32).collect())
            }
        }
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

/// `x mod (2⁶¹ − 1)` without a division: `x = hi·2⁶¹ + lo` and `2⁶¹ ≡ 1`, so `x ≡ hi + lo`,
/// which is below `2 · (2⁶¹ − 1)`.
fn mod_mersenne(x: u64) -> u64 {
    let r = (x & MERSENNE_PRIME) + (x >> 61);
    if r >= MERSENNE_PRIME {
        r - MERSENNE_PRIME
    } else {
        r
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

    proptest! {
        #[test]
        fn the_estimate_is_within_four_standard_errors(
            shared in 0u64..400, only in 0u64..400, salt in any::<u64>(), seed in any::<u64>(),
        ) {
            prop_assume!(shared + only > 0);
            let (a, b) = pair(shared, only, salt);
            let truth = jaccard(&a, &b);
            let se = (truth * (1.0 - truth) / 256.0).sqrt().max(1.0 / 256.0);
            for h in [MinHasher::new(16, 16, seed), MinHasher::datatrove(16, 16, seed as u32)] {
                let est = estimate_jaccard(&h.signature(&a).unwrap(), &h.signature(&b).unwrap());
                prop_assert!((est - truth).abs() <= 4.0 * se, "{:?}: truth {truth} estimate {est}", h.family());
            }
        }

        #[test]
        fn the_mersenne_reduction_is_the_remainder(x in any::<u64>()) {
            prop_assert_eq!(mod_mersenne(x), x % MERSENNE_PRIME);
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
    fn the_reduction_at_its_edges() {
        for x in [
            0,
            1,
            MERSENNE_PRIME - 1,
            MERSENNE_PRIME,
            MERSENNE_PRIME + 1,
            u64::MAX,
        ] {
            assert_eq!(mod_mersenne(x), x % MERSENNE_PRIME, "{x}");
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
