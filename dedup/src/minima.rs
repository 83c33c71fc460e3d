//! The loops that take a signature's minima: for every hash function `(a, b)`, the minimum of
//! `h(x)` over the shingle hashes `x`. They are most of a signature's time, and the baseline
//! x86-64 target (SSE2) has neither 4-lane 64-bit products nor unsigned 32-bit minima, so on
//! x86-64 the same loops are compiled a second time with AVX2 and chosen at run time when the CPU
//! has it (the check is made once, then read from an atomic). Both give the same minima.

use crate::datatrove::MERSENNE_PRIME;
use crate::minhash::Family;

/// The minimum of each hash function `(a[i], b[i])` of `family` over `shingles`, folded to 32
/// bits (see [`crate::minhash`]).
pub(crate) fn minima(family: Family, a: &[u64], b: &[u64], shingles: &[u64]) -> Vec<u32> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: AVX2, the one CPU feature `minima_avx2` is compiled for, is present.
        return unsafe { minima_avx2(family, a, b, shingles) };
    }
    minima_portable(family, a, b, shingles)
}

/// [`minima_portable`] compiled for CPUs with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn minima_avx2(family: Family, a: &[u64], b: &[u64], shingles: &[u64]) -> Vec<u32> {
    minima_portable(family, a, b, shingles)
}

/// The loops themselves, inlined into each caller so that each compiles them for its target.
#[inline(always)]
fn minima_portable(family: Family, a: &[u64], b: &[u64], shingles: &[u64]) -> Vec<u32> {
    let params = a.iter().zip(b);
    match family {
        Family::MultiplyShift => {
            let mut minima = vec![u32::MAX; a.len()];
            for &x in shingles {
                for (m, (&a, &b)) in minima.iter_mut().zip(params.clone()) {
                    *m = (*m).min((a.wrapping_mul(x).wrapping_add(b) >> 32) as u32);
                }
            }
            minima
        }
        Family::MersennePrime => {
            let mut minima = vec![u64::MAX; a.len()];
            for &x in shingles {
                for (m, (&a, &b)) in minima.iter_mut().zip(params.clone()) {
                    *m = (*m).min(mod_mersenne(a.wrapping_mul(x).wrapping_add(b)));
                }
            }
            minima.iter().map(|&m| (m ^ (m >> 32)) as u32).collect()
        }
    }
}

/// `x mod (2⁶¹ − 1)` without a division: `x = hi·2⁶¹ + lo` and `2⁶¹ ≡ 1`, so `x ≡ hi + lo`,
/// which is below `2 · (2⁶¹ − 1)`.
#[inline(always)]
fn mod_mersenne(x: u64) -> u64 {
    let r = (x & MERSENNE_PRIME) + (x >> 61);
    if r >= MERSENNE_PRIME {
        r - MERSENNE_PRIME
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The AVX2 compilation gives the portable one's minima (where the CPU has AVX2, as the
        /// development and CI machines do).
        #[test]
        fn avx2_minima_are_the_portable_ones(
            params in proptest::collection::vec(any::<(u64, u64)>(), 1..130),
            shingles in proptest::collection::vec(any::<u64>(), 1..300),
        ) {
            let (a, b): (Vec<u64>, Vec<u64>) = params.into_iter().unzip();
            for family in [Family::MultiplyShift, Family::MersennePrime] {
                let portable = minima_portable(family, &a, &b, &shingles);
                prop_assert_eq!(minima(family, &a, &b, &shingles), portable.clone());
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx2") {
                    #[allow(unsafe_code)]
                    // SAFETY: the CPU has AVX2.
                    let avx2 = unsafe { minima_avx2(family, &a, &b, &shingles) };
                    prop_assert_eq!(avx2, portable);
                }
            }
        }

        #[test]
        fn the_mersenne_reduction_is_the_remainder(x in any::<u64>()) {
            prop_assert_eq!(mod_mersenne(x), x % MERSENNE_PRIME);
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

    /// Both families' minima by definition, for a few hand-made values.
    #[test]
    fn minima_by_definition() {
        let (a, b, x) = ([3, 1 << 40], [5, 7], [2, 1 << 30]);
        let shift = |a: u64, b: u64, x: u64| (a.wrapping_mul(x).wrapping_add(b) >> 32) as u32;
        let want: Vec<u32> = (0..2)
            .map(|i| shift(a[i], b[i], x[0]).min(shift(a[i], b[i], x[1])))
            .collect();
        assert_eq!(minima(Family::MultiplyShift, &a, &b, &x), want);
        let prime = |a: u64, b: u64, x: u64| a.wrapping_mul(x).wrapping_add(b) % MERSENNE_PRIME;
        let want: Vec<u32> = (0..2)
            .map(|i| prime(a[i], b[i], x[0]).min(prime(a[i], b[i], x[1])))
            .map(|m| (m ^ (m >> 32)) as u32)
            .collect();
        assert_eq!(minima(Family::MersennePrime, &a, &b, &x), want);
    }
}
