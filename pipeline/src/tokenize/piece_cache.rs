//! A thread's cache of the ids of text pieces, in two generations.
//!
//! Pieces follow a long-tailed distribution: a few thousand (common words with their leading
//! space) make most of a corpus, and a long tail of rare ones would fill any cache. When the
//! current generation reaches half the budget it becomes the previous one and the one before is
//! dropped; a piece found in the previous generation moves to the current one. Frequent pieces
//! so stay cached across turns, rare ones leave, and memory stays under [`CACHE_BYTES`] whatever
//! the texts. (Clearing everything when full instead made encoding the corpus about 15 %
//! slower at the same budget: BENCHMARKS.md, session 28.)

use std::collections::HashMap;

/// Bytes of pieces and ids a thread's cache holds at most, counting 48 bytes a piece for the
/// map's own keeping.
pub const CACHE_BYTES: usize = 16 << 20;

/// Pieces longer than this are not cached: long ones seldom repeat (a paragraph of a script
/// without spaces, say) and would crowd out the rest.
pub const LONGEST_CACHED: usize = 256;

type Map = HashMap<Box<str>, Box<[u32]>, foldhash::fast::FixedState>;

/// One thread's cached ids, for one encoder at a time.
#[derive(Default)]
pub struct PieceCache {
    encoder: Option<u64>,
    /// The current generation.
    new: Map,
    /// The generation before.
    old: Map,
    /// What [`CACHE_BYTES`] counts, of the current generation.
    bytes: usize,
}

impl PieceCache {
    /// Makes the cache serve `encoder`, emptying it when it served another.
    pub fn serve(&mut self, encoder: u64) {
        if self.encoder != Some(encoder) {
            self.new.clear();
            self.old.clear();
            self.bytes = 0;
            self.encoder = Some(encoder);
        }
    }

    /// The ids of `piece`, when the current generation holds them.
    pub fn get(&self, piece: &str) -> Option<&[u32]> {
        self.new.get(piece).map(|ids| &ids[..])
    }

    /// The ids of `piece`, when the generation before holds them: they move to the current one.
    pub fn revive(&mut self, piece: &str) -> Option<&[u32]> {
        let (piece, ids) = self.old.remove_entry(piece)?;
        Some(self.keep(piece, ids))
    }

    /// Caches the ids of `piece`, unless it is longer than [`LONGEST_CACHED`].
    pub fn insert(&mut self, piece: &str, ids: Vec<u32>) {
        if piece.len() <= LONGEST_CACHED {
            self.keep(piece.into(), ids.into());
        }
    }

    fn keep(&mut self, piece: Box<str>, ids: Box<[u32]>) -> &[u32] {
        let cost = piece.len() + 4 * ids.len() + 48;
        if self.bytes + cost > CACHE_BYTES / 2 {
            std::mem::swap(&mut self.new, &mut self.old);
            self.new.clear();
            self.bytes = 0;
        }
        self.bytes += cost;
        self.new.entry(piece).or_insert(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequent_pieces_survive_turns_and_rare_ones_leave() {
        let mut cache = PieceCache::default();
        cache.serve(1);
        cache.insert(" the", vec![1]);
        // Enough rare pieces to turn the generations over several times.
        let cost = 6 + 4 + 48;
        for i in 0..(CACHE_BYTES / cost) * 2 {
            let rare = format!("{i:06}");
            cache.insert(&rare, vec![2]);
            if cache.get(" the").is_none() {
                assert_eq!(
                    cache.revive(" the"),
                    Some(&[1][..]),
                    "after {i} rare pieces"
                );
            }
        }
        assert!(cache.get(" the").is_some());
        assert!(cache.get("000000").is_none() && cache.revive("000000").is_none());
        let held = cache.new.len() + cache.old.len();
        assert!(held * cost <= CACHE_BYTES, "{held} pieces held");
    }

    #[test]
    fn long_pieces_are_not_kept_and_another_encoder_empties_it() {
        let mut cache = PieceCache::default();
        cache.serve(1);
        let long = "x".repeat(LONGEST_CACHED + 1);
        cache.insert(&long, vec![7]);
        cache.insert("short", vec![8]);
        assert!(cache.get(&long).is_none());
        assert_eq!(cache.get("short"), Some(&[8][..]));
        cache.serve(1);
        assert_eq!(
            cache.get("short"),
            Some(&[8][..]),
            "the same encoder keeps it"
        );
        cache.serve(2);
        assert!(cache.get("short").is_none() && cache.revive("short").is_none());
    }
}
