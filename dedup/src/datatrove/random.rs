//! NumPy's legacy `RandomState`: Mersenne Twister draws turned into bounded integers the way
//! `RandomState.randint(low, high, dtype=np.uint64)` does (masked rejection sampling).

use rand_mt::Mt;

/// A `numpy.random.RandomState(seed)`.
pub struct RandomState {
    mt: Mt,
}

impl RandomState {
    /// The state `RandomState(seed)` starts in.
    pub fn new(seed: u32) -> Self {
        Self { mt: Mt::new(seed) }
    }

    /// One `randint(low, high, dtype=np.uint64)`: uniform in `low..high`.
    ///
    /// # Panics
    /// If `high <= low`.
    pub fn randint(&mut self, low: u64, high: u64) -> u64 {
        assert!(high > low, "randint needs low < high");
        let range = high - 1 - low;
        if range == 0 {
            return low;
        }
        // The smallest all-ones mask covering the range; draws above the range are rejected.
        let mask = u64::MAX >> range.leading_zeros();
        if range <= u64::from(u32::MAX) {
            loop {
                let value = u64::from(self.mt.next_u32()) & mask;
                if value <= range {
                    return low + value;
                }
            }
        }
        loop {
            let value = self.mt.next_u64() & mask;
            if value <= range {
                return low + value;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `numpy.random.RandomState(7).randint(0, 10, dtype=np.uint64, size=8)` and
    /// `RandomState(7).randint(5, 1 << 40, dtype=np.uint64, size=3)`.
    #[test]
    fn draws_match_numpy() {
        let mut small = RandomState::new(7);
        let drawn: Vec<u64> = (0..8).map(|_| small.randint(0, 10)).collect();
        assert_eq!(drawn, SMALL);
        let mut wide = RandomState::new(7);
        let drawn: Vec<u64> = (0..3).map(|_| wide.randint(5, 1 << 40)).collect();
        assert_eq!(drawn, WIDE);
        assert_eq!(RandomState::new(3).randint(4, 5), 4);
    }

    const SMALL: [u64; 8] = [4, 9, 6, 3, 3, 7, 7, 9];
    const WIDE: [u64; 3] = [752_595_690_697, 108_744_157_691, 291_964_244_184];
}
