//! MinHash signatures and their LSH band keys.
//!
//! A signature holds `bands × rows` minima, one per hash function `h_i(x) = (a_i·x + b_i) >> 32`
//! over 64-bit shingle hashes (`a_i` odd; `a_i`, `b_i` drawn from the seed). Two sets agree on
//! each minimum with probability equal to their Jaccard similarity, so the fraction of equal
//! positions estimates it. A band is `rows` consecutive minima, hashed to one 64-bit key: two
//! documents are candidates when any band key is equal.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Signature and band-key computation for one `bands × rows` setting and seed.
#[derive(Debug, Clone)]
pub struct MinHasher {
    bands: usize,
    rows: usize,
    a: Vec<u64>,
    b: Vec<u64>,
}

impl MinHasher {
    /// Hash functions for `bands × rows` minima, drawn from `seed`.
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
        Self { bands, rows, a, b }
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
        let mut sig = vec![u32::MAX; self.a.len()];
        for &x in shingles {
            for ((s, &a), &b) in sig.iter_mut().zip(&self.a).zip(&self.b) {
                *s = (*s).min((a.wrapping_mul(x).wrapping_add(b) >> 32) as u32);
            }
        }
        Some(sig)
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

    proptest! {
        #[test]
        fn the_estimate_is_within_four_standard_errors(
            shared in 0u64..400, only in 0u64..400, salt in any::<u64>(), seed in any::<u64>(),
        ) {
            prop_assume!(shared + only > 0);
            let (a, b) = pair(shared, only, salt);
            let truth = jaccard(&a, &b);
            let h = MinHasher::new(16, 16, seed);
            let est = estimate_jaccard(&h.signature(&a).unwrap(), &h.signature(&b).unwrap());
            let se = (truth * (1.0 - truth) / 256.0).sqrt().max(1.0 / 256.0);
            prop_assert!((est - truth).abs() <= 4.0 * se, "truth {truth} estimate {est}");
        }

        #[test]
        fn identical_sets_always_collide(set in proptest::collection::vec(any::<u64>(), 1..50), seed in any::<u64>()) {
            let h = MinHasher::new(14, 8, seed);
            let mut shuffled = set.clone();
            shuffled.reverse();
            shuffled.extend_from_slice(&set);
            let (a, b) = (h.signature(&set).unwrap(), h.signature(&shuffled).unwrap());
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(h.band_keys(&a), h.band_keys(&b));
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
