//! Union-find over document ordinals, for clustering candidate pairs.
//!
//! The root of a set is always its smallest ordinal, so the result does not depend on the order
//! in which pairs are merged.

/// Disjoint sets of `0..n`, 4 bytes per element.
#[derive(Debug, Clone)]
pub struct UnionFind {
    parent: Vec<u32>,
}

impl UnionFind {
    /// `n` singleton sets.
    pub fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
        }
    }

    /// Adds `extra` singleton sets after the existing ones.
    pub fn grow(&mut self, extra: usize) {
        let n = self.parent.len() as u32;
        self.parent.extend(n..n + extra as u32);
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// The smallest ordinal of `x`'s set (path halving on the way).
    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grand = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grand;
            x = grand;
        }
        x
    }

    /// Merges the sets of `a` and `b`; returns true when they were apart.
    pub fn union(&mut self, a: u32, b: u32) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        let (lo, hi) = (ra.min(rb), ra.max(rb));
        self.parent[hi as usize] = lo;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sets_are_connected_components_rooted_at_their_minimum(
            pairs in proptest::collection::vec((0u32..30, 0u32..30), 0..40),
        ) {
            let mut uf = UnionFind::new(30);
            let mut reversed = UnionFind::new(30);
            for &(a, b) in &pairs {
                uf.union(a, b);
            }
            for &(a, b) in pairs.iter().rev() {
                reversed.union(b, a);
            }
            // Reference: label propagation to a fixed point.
            let mut label: Vec<u32> = (0..30).collect();
            loop {
                let mut changed = false;
                for &(a, b) in &pairs {
                    let m = label[a as usize].min(label[b as usize]);
                    for x in [a, b] {
                        if label[x as usize] != m {
                            label[x as usize] = m;
                            changed = true;
                        }
                    }
                }
                if !changed {
                    break;
                }
            }
            for x in 0..30u32 {
                prop_assert_eq!(uf.find(x), label[x as usize]);
                prop_assert_eq!(reversed.find(x), label[x as usize]);
            }
        }
    }
}
