//! Which documents a tokenize step holds out for validation.
//!
//! A document is held out when the hash of its id falls in the first `validation_fraction` of
//! the hash range ([`held_out`]), so the choice is the same in every version that holds the
//! document. A small source can get none that way (5 % of 12 documents is most often none). With
//! `validation_min_docs = N`, each source also holds out its documents with the smallest id
//! hashes until it holds out N, but never more than half of its documents: the hash order is
//! the same one, so the documents the fraction holds out come first and stay held out, and a
//! document held out by a smaller minimum is held out by a larger one. Finding them reads the
//! ids and sources of the dataset once before tokenizing (two columns of Parquet); the memory
//! is N ids per source, and `refinery validate` refuses N above [`MAX_MIN_DOCS`].

use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::path::PathBuf;

use super::TokenizeError;
use super::documents::for_each_id;

/// The largest `validation_min_docs`: up to that many ids per source are held in memory while
/// the minimum is found.
pub const MAX_MIN_DOCS: usize = 1_000_000;

/// Whether a document is held out by the fraction alone: its id's hash falls in the first
/// `fraction` of the range.
pub fn held_out(id: &str, fraction: f64) -> bool {
    (id_hash(id) as f64) < fraction * 2f64.powi(64)
}

/// The hash that orders documents for holding out.
fn id_hash(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// The documents a tokenize step holds out.
#[derive(Debug)]
pub struct HeldOut {
    fraction: f64,
    /// Documents held out by the per-source minimum and not by the fraction.
    added: HashSet<String>,
}

impl HeldOut {
    /// The held-out set for the documents of `parts`: those the `fraction` holds out and, per
    /// source, enough more to hold out `min_docs` (at most half the source's documents). With
    /// `min_docs` 0 nothing is read.
    pub fn new(
        parts: &[PathBuf],
        fraction: f64,
        min_docs: usize,
        batch_size: usize,
    ) -> Result<Self, TokenizeError> {
        let mut sources: BTreeMap<String, Smallest> = BTreeMap::new();
        if min_docs > 0 {
            for_each_id(parts, batch_size, |ids, sources_column| {
                for (id, source) in ids.iter().flatten().zip(sources_column.iter().flatten()) {
                    let smallest = match sources.get_mut(source) {
                        Some(s) => s,
                        None => sources.entry(source.to_string()).or_default(),
                    };
                    smallest.offer(id, min_docs);
                }
                Ok(())
            })?;
        }
        Ok(Self::from_sources(
            sources.into_values(),
            fraction,
            min_docs,
        ))
    }

    /// The held-out set from every source's smallest hashes.
    fn from_sources(
        sources: impl IntoIterator<Item = Smallest>,
        fraction: f64,
        min_docs: usize,
    ) -> Self {
        let added = sources
            .into_iter()
            .flat_map(|s| s.held_out(min_docs))
            .filter(|id| !held_out(id, fraction))
            .collect();
        Self { fraction, added }
    }

    /// Whether the document `id` is held out.
    pub fn contains(&self, id: &str) -> bool {
        held_out(id, self.fraction) || self.added.contains(id)
    }
}

/// One source's documents seen so far: their count, and the ids with the smallest hashes.
#[derive(Debug, Default)]
struct Smallest {
    docs: usize,
    /// At most `min_docs` (hash, id) pairs, the largest on top.
    heap: BinaryHeap<(u64, String)>,
}

impl Smallest {
    fn offer(&mut self, id: &str, keep: usize) {
        self.docs += 1;
        let key = id_hash(id);
        if self.heap.len() < keep {
            self.heap.push((key, id.to_string()));
        } else if let Some(mut top) = self.heap.peek_mut()
            && (key, id) < (top.0, top.1.as_str())
        {
            *top = (key, id.to_string());
        }
    }

    /// The ids the minimum holds out: the smallest hashes, `min_docs` of them but at most half
    /// the documents.
    fn held_out(self, min_docs: usize) -> impl Iterator<Item = String> {
        let n = min_docs.min(self.docs / 2);
        self.heap
            .into_sorted_vec()
            .into_iter()
            .take(n)
            .map(|(_, id)| id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The held-out set a minimum gives, computed the slow way: per source, sort every id by
    /// (hash, id) and take the first `min(min_docs, docs / 2)`, plus every id the fraction holds.
    fn by_sorting(docs: &[(String, String)], fraction: f64, min_docs: usize) -> HashSet<String> {
        let mut per_source: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (id, source) in docs {
            per_source.entry(source).or_default().push(id);
        }
        let mut held: HashSet<String> = docs
            .iter()
            .filter(|(id, _)| held_out(id, fraction))
            .map(|(id, _)| id.clone())
            .collect();
        for ids in per_source.values_mut() {
            ids.sort_by_key(|id| (id_hash(id), *id));
            let n = min_docs.min(ids.len() / 2);
            held.extend(ids[..n].iter().map(|id| id.to_string()));
        }
        held
    }

    fn offer_all(docs: &[(String, String)], fraction: f64, min_docs: usize) -> HashSet<String> {
        let mut sources: BTreeMap<String, Smallest> = BTreeMap::new();
        for (id, source) in docs {
            sources
                .entry(source.clone())
                .or_default()
                .offer(id, min_docs);
        }
        let set = HeldOut::from_sources(sources.into_values(), fraction, min_docs);
        docs.iter()
            .filter(|(id, _)| set.contains(id))
            .map(|(id, _)| id.clone())
            .collect()
    }

    proptest! {
        /// The streaming top-N per source holds out exactly what sorting each source gives,
        /// every source holds out at least `min(min_docs, docs / 2)`, and everything the
        /// fraction holds out stays held out.
        #[test]
        fn streaming_minimum_equals_sorting(
            docs in proptest::collection::vec(("[a-z0-9]{1,6}", 0..4u8), 0..120),
            fraction in prop_oneof![Just(0.0), 0.0..0.3],
            min_docs in 0..12usize,
        ) {
            let mut seen = HashSet::new();
            let docs: Vec<(String, String)> = docs
                .into_iter()
                .filter(|(id, _)| seen.insert(id.clone()))
                .map(|(id, s)| (id, format!("s{s}")))
                .collect();
            let held = offer_all(&docs, fraction, min_docs);
            prop_assert_eq!(&held, &by_sorting(&docs, fraction, min_docs));
            for source in ["s0", "s1", "s2", "s3"] {
                let total = docs.iter().filter(|(_, s)| s == source).count();
                let kept = docs.iter().filter(|(i, s)| s == source && held.contains(i)).count();
                prop_assert!(kept >= min_docs.min(total / 2));
            }
            for (id, _) in &docs {
                prop_assert!(!held_out(id, fraction) || held.contains(id));
            }
        }
    }
}
