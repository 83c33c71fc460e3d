//! Benchmark contamination: which benchmark passages (a question, an answer, a prompt) a
//! document contains, by hashed word n-grams.
//!
//! Text is compared as words: maximal runs of letters and digits, lower-cased, so case and
//! punctuation never hide a match. A passage of at least `n` words is indexed by its distinct
//! n-grams (default 13, as GPT-3's decontamination); its overlap with a document is the fraction
//! of those n-grams the document contains. A shorter passage (but at least `min_words` words,
//! so that "is the sky blue" cannot flag half the web) matches only as a whole, overlap 1.
//!
//! Memory: one 8-byte hash and a 4-byte passage id per distinct benchmark n-gram (about 20 MB for
//! a million n-grams), independent of the corpus.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use xxhash_rust::xxh3::xxh3_64;

/// One indexed benchmark passage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    /// The benchmark's name.
    pub benchmark: String,
    /// The item's id in the benchmark.
    pub item: String,
    /// The field the text came from (`question`, `answer`, ...).
    pub field: String,
    /// Distinct n-grams of the passage (1 for a short passage matched whole).
    pub ngrams: u32,
}

/// A passage found in a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Index of the passage in [`NgramIndex::passages`].
    pub passage: usize,
    /// Distinct passage n-grams found in the document.
    pub matched: u32,
    /// `matched` over the passage's n-grams.
    pub overlap: f64,
    /// Byte ranges of the document covered by the matching n-grams, merged and sorted.
    pub spans: Vec<(usize, usize)>,
}

/// What a scan found of one passage: its distinct n-grams seen and the byte ranges covered.
type Found = (BTreeSet<u64>, Vec<(usize, usize)>);

/// The n-grams of a set of benchmark passages.
#[derive(Debug, Clone)]
pub struct NgramIndex {
    n: usize,
    min_words: usize,
    passages: Vec<Passage>,
    /// Hash of an n-gram, or of a whole short passage, to the passages holding it.
    grams: HashMap<u64, Vec<u32>>,
    /// Word counts of the short passages.
    short_lengths: BTreeSet<usize>,
}

/// A text's words: the hash of each lower-cased word and its byte range.
fn words(text: &str) -> (Vec<u64>, Vec<(usize, usize)>) {
    let (mut hashes, mut spans) = (Vec::new(), Vec::new());
    let mut lower = String::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        if c.is_alphanumeric() {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            lower.clear();
            lower.extend(text[s..i].chars().flat_map(char::to_lowercase));
            hashes.push(xxh3_64(lower.as_bytes()));
            spans.push((s, i));
        }
    }
    (hashes, spans)
}

/// The hash of consecutive word hashes.
fn gram_hash(words: &[u64]) -> u64 {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    xxh3_64(&bytes)
}

impl NgramIndex {
    /// An empty index of `n`-grams that matches passages shorter than `n` words whole when they
    /// have at least `min_words` words.
    pub fn new(n: usize, min_words: usize) -> Self {
        Self {
            n: n.max(1),
            min_words: min_words.max(1),
            passages: Vec::new(),
            grams: HashMap::new(),
            short_lengths: BTreeSet::new(),
        }
    }

    /// Indexes one passage; returns false (and indexes nothing) when it has fewer than
    /// `min_words` words.
    pub fn add(&mut self, benchmark: &str, item: &str, field: &str, text: &str) -> bool {
        let (hashes, _) = words(text);
        if hashes.len() < self.min_words {
            return false;
        }
        let id = self.passages.len() as u32;
        let keys: BTreeSet<u64> = if hashes.len() < self.n {
            self.short_lengths.insert(hashes.len());
            BTreeSet::from([gram_hash(&hashes)])
        } else {
            hashes.windows(self.n).map(gram_hash).collect()
        };
        for &key in &keys {
            let holders = self.grams.entry(key).or_default();
            if holders.last() != Some(&id) {
                holders.push(id);
            }
        }
        self.passages.push(Passage {
            benchmark: benchmark.to_string(),
            item: item.to_string(),
            field: field.to_string(),
            ngrams: keys.len() as u32,
        });
        true
    }

    /// The indexed passages.
    pub fn passages(&self) -> &[Passage] {
        &self.passages
    }

    /// Passages of which `text` contains at least `min_overlap` of the n-grams, by passage.
    pub fn scan(&self, text: &str, min_overlap: f64) -> Vec<Hit> {
        let (hashes, spans) = words(text);
        let mut found: BTreeMap<u32, Found> = BTreeMap::new();
        let lengths = std::iter::once(self.n).chain(self.short_lengths.iter().copied());
        for len in lengths {
            for (i, window) in hashes.windows(len).enumerate() {
                let key = gram_hash(window);
                let Some(holders) = self.grams.get(&key) else {
                    continue;
                };
                for &p in holders {
                    let whole = self.passages[p as usize].ngrams == 1 && len < self.n;
                    if len == self.n || whole {
                        let entry = found.entry(p).or_default();
                        entry.0.insert(key);
                        entry.1.push((spans[i].0, spans[i + len - 1].1));
                    }
                }
            }
        }
        found
            .into_iter()
            .filter_map(|(p, (grams, mut covered))| {
                let passage = &self.passages[p as usize];
                let matched = grams.len() as u32;
                let overlap = f64::from(matched) / f64::from(passage.ngrams.max(1));
                (overlap >= min_overlap).then(|| {
                    covered.sort_unstable();
                    Hit {
                        passage: p as usize,
                        matched,
                        overlap,
                        spans: merge_spans(covered),
                    }
                })
            })
            .collect()
    }
}

/// Merges sorted, possibly overlapping byte ranges.
pub fn merge_spans(sorted: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(sorted.len());
    for (s, e) in sorted {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// `text` without the byte ranges `spans` (sorted, disjoint).
pub fn cut(text: &str, spans: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for &(s, e) in spans {
        out.push_str(&text[at..s]);
        at = e;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUESTION: &str = "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her friends every day with four.";

    fn index() -> NgramIndex {
        let mut index = NgramIndex::new(13, 6);
        assert!(index.add("gsm8k", "0", "question", QUESTION));
        assert!(index.add(
            "boolq",
            "7",
            "question",
            "is the capital of france paris today"
        ));
        assert!(!index.add("boolq", "8", "question", "is the sky blue"));
        index
    }

    #[test]
    fn finds_passages_whatever_the_case_and_punctuation() {
        let index = index();
        let shouted = QUESTION.to_uppercase().replace(['.', '\''], " ; ");
        let long = format!("Intro text here. {shouted} And then more unrelated words follow.");
        let hits = index.scan(&long, 0.5);
        assert_eq!(hits.len(), 1);
        assert_eq!((hits[0].passage, hits[0].overlap), (0, 1.0));
        let cut_text = cut(&long, &hits[0].spans);
        assert!(cut_text.starts_with("Intro text here. ") && cut_text.contains("And then more"));
        assert!(!cut_text.to_lowercase().contains("ducks"));
        let short = index.scan("Q: Is the capital of France Paris today? A: yes.", 0.5);
        assert_eq!(short.iter().map(|h| h.passage).collect::<Vec<_>>(), [1]);
    }

    proptest::proptest! {
        /// A passage planted anywhere in any text, in any case, is found whole.
        #[test]
        fn planted_passages_are_always_found(
            before in "[a-z ,.]{0,60}",
            after in "[a-z ,.]{0,60}",
            upper in proptest::bool::ANY,
        ) {
            let planted = if upper { QUESTION.to_uppercase() } else { QUESTION.to_string() };
            let text = format!("{before} {planted} {after}");
            let hits = index().scan(&text, 1.0);
            proptest::prop_assert!(hits.iter().any(|h| h.passage == 0 && h.overlap == 1.0));
        }
    }

    #[test]
    fn partial_overlap_is_measured_and_thresholded() {
        let index = index();
        let half: String = QUESTION.split(' ').take(14).collect::<Vec<_>>().join(" ");
        let hits = index.scan(&half, 0.0);
        // "Janet's" is two words: 15 words, 3 of the passage's 13-grams.
        assert_eq!(hits[0].matched, 3);
        assert!(index.scan(&half, 0.5).is_empty());
        assert!(
            index
                .scan("The sky is blue and the capital of France is Paris.", 0.1)
                .is_empty()
        );
    }
}
