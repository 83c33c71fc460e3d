//! `minhash_dedup`: drops near-duplicates found by MinHash-LSH ([`dedup::minhash`]), keeping one
//! survivor per cluster.

use std::path::PathBuf;

use dedup::datatrove::WordSplitter;
use dedup::minhash::MinHasher;
use dedup::params::{choose_bands_rows, collision_probability};
use dedup::shingle::Shingling;
use serde::{Deserialize, Serialize};

use super::dedup::{Dedup, Method, MinHashMethod};
use super::memory_budget::parse_bytes;

/// Shingle unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShingleUnit {
    /// Words: runs of letters and digits, lowercased.
    #[default]
    Words,
    /// Characters of the lowercased text.
    Chars,
}

/// Whose shingles and hash functions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// Refinery's: word or character shingles hashed with xxh3, multiply-shift hash functions.
    #[default]
    Refinery,
    /// Datatrove's ([`dedup::datatrove`]): its text simplification and spaCy's English word
    /// splitting, xxh64 of each n-gram, `(a·x + b) mod (2⁶¹ − 1)` with NumPy's parameters. With
    /// datatrove's defaults (5-grams, 14 × 8, seed 1) the candidate pairs are datatrove's.
    Datatrove,
}

/// Config of the `minhash_dedup` stage.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MinhashDedupConfig {
    /// Stage name. Default `minhash_dedup`.
    pub name: Option<String>,
    /// Shingles and hash functions: `refinery` (default) or `datatrove`.
    pub scheme: Scheme,
    /// Shingle unit. Default `words`.
    pub shingle: ShingleUnit,
    /// Units per shingle. Default 5.
    pub ngram: usize,
    /// LSH bands. Default 14 (with `rows`, the FineWeb setting), or chosen from `threshold`.
    pub bands: Option<usize>,
    /// Minima per band. Default 8, or chosen from `threshold`.
    pub rows: Option<usize>,
    /// Jaccard similarity at which documents count as duplicates: reported in rejects, the bar
    /// for `verify`, and, when `bands` and `rows` are not set, the point they are chosen for.
    /// Default 0.8.
    pub threshold: Option<f64>,
    /// Most hash functions when bands × rows are chosen from `threshold`. Default 112.
    pub max_hashes: usize,
    /// Check every candidate pair's true Jaccard on the shingle sets. Default false.
    pub verify: bool,
    /// Seed of the hash functions. Default 1.
    pub seed: u64,
    /// Sources whose documents survive first, in order; then the smallest id wins.
    pub priority: Vec<String>,
    /// Output folder of an earlier run: documents it kept win over this run's duplicates.
    pub against: Option<PathBuf>,
    /// Memory for sorting bucket keys before spilling to disk, e.g. `"512MiB"`.
    pub memory_budget: Option<String>,
}

impl Default for MinhashDedupConfig {
    fn default() -> Self {
        Self {
            name: None,
            scheme: Scheme::Refinery,
            shingle: ShingleUnit::Words,
            ngram: 5,
            bands: None,
            rows: None,
            threshold: None,
            max_hashes: 112,
            verify: false,
            seed: 1,
            priority: Vec::new(),
            against: None,
            memory_budget: None,
        }
    }
}

/// The words datatrove's English MinHash shingles: spaCy's, of its simplified text.
pub const DATATROVE_WORDS: WordSplitter = WordSplitter {
    name: "datatrove-en",
    split: filters::simplify::for_each_simplified_word,
};

/// Most hash functions (`bands × rows`, and `max_hashes`): 16,384, above the 9,000 of the
/// largest published setting (Lee et al., 2022), so that a typo fails validation instead of
/// exhausting memory. Choosing bands and rows for a threshold takes about a second at this bound.
pub const MAX_HASHES: usize = 1 << 14;

/// Default similarity threshold.
const DEFAULT_THRESHOLD: f64 = 0.8;

impl MinhashDedupConfig {
    /// Problems with the values.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.ngram == 0 {
            problems.push("ngram must be at least 1".to_string());
        }
        if let Some(t) = self.threshold
            && !(t > 0.0 && t <= 1.0)
        {
            problems.push(format!("threshold {t} must be in (0, 1]"));
        }
        if self.bands.is_some() != self.rows.is_some() {
            problems.push("set both bands and rows, or neither".to_string());
        }
        if self.bands == Some(0) || self.rows == Some(0) || self.max_hashes == 0 {
            problems.push("bands, rows and max_hashes must be at least 1".to_string());
        }
        if let (Some(b), Some(r)) = (self.bands, self.rows)
            && b.checked_mul(r).is_none_or(|n| n > MAX_HASHES)
        {
            problems.push(format!(
                "bands × rows ({b} × {r}) must be at most {MAX_HASHES} hash functions"
            ));
        }
        if self.max_hashes > MAX_HASHES {
            problems.push(format!(
                "max_hashes ({}) must be at most {MAX_HASHES}",
                self.max_hashes
            ));
        }
        if self.scheme == Scheme::Datatrove {
            if self.shingle == ShingleUnit::Chars {
                problems.push("scheme = \"datatrove\" shingles words, not chars".to_string());
            }
            if u32::try_from(self.seed).is_err() {
                problems.push(format!(
                    "seed {} must fit 32 bits with scheme = \"datatrove\" (NumPy's RandomState)",
                    self.seed
                ));
            }
        }
        if let Some(Err(e)) = self.memory_budget.as_deref().map(parse_bytes) {
            problems.push(e);
        }
        problems
    }

    /// Bands and rows: as set, else 14 × 8 when no threshold is set, else chosen for it.
    pub fn bands_rows(&self) -> (usize, usize) {
        match (self.bands, self.rows, self.threshold) {
            (Some(b), Some(r), _) => (b, r),
            (_, _, Some(t)) => choose_bands_rows(t, self.max_hashes),
            _ => (14, 8),
        }
    }

    /// Builds the stage, logging the S-curve point at the threshold.
    pub fn build(&self, name: String) -> Dedup {
        let (bands, rows) = self.bands_rows();
        let threshold = self.threshold.unwrap_or(DEFAULT_THRESHOLD);
        tracing::info!(
            stage = %name,
            "{bands} bands × {rows} rows: pairs at Jaccard {threshold} become candidates with probability {:.3}",
            collision_probability(threshold, bands, rows)
        );
        let (shingling, hasher) = match (self.scheme, self.shingle) {
            (Scheme::Datatrove, _) => (
                Shingling::JoinedWords(self.ngram, DATATROVE_WORDS),
                // `check` refuses seeds above 32 bits.
                MinHasher::datatrove(bands, rows, self.seed as u32),
            ),
            (Scheme::Refinery, ShingleUnit::Words) => (
                Shingling::Words(self.ngram),
                MinHasher::new(bands, rows, self.seed),
            ),
            (Scheme::Refinery, ShingleUnit::Chars) => (
                Shingling::Chars(self.ngram),
                MinHasher::new(bands, rows, self.seed),
            ),
        };
        let method = Method::MinHash(MinHashMethod {
            shingling,
            hasher,
            seed: self.seed,
            verify: self.verify,
            threshold,
        });
        Dedup::new(
            name,
            method,
            self.priority.clone(),
            self.against.clone(),
            self.memory_budget.as_deref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> MinhashDedupConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn bad_values_are_reported_and_bands_rows_follow_the_threshold() {
        let problems =
            config("ngram = 0\nthreshold = 1.5\nbands = 4\nmemory_budget = 'lots'").check();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("both bands and rows")));
        assert_eq!(config("").bands_rows(), (14, 8));
        assert_eq!(config("bands = 9\nrows = 13").bands_rows(), (9, 13));
        let (b, r) = config("threshold = 0.5").bands_rows();
        assert!(b * r <= 112 && (b, r) != (14, 8));
    }

    #[test]
    fn the_datatrove_scheme_needs_words_and_a_32_bit_seed() {
        assert!(
            config("scheme = 'datatrove'\nseed = 4294967295")
                .check()
                .is_empty()
        );
        let problems = config("scheme = 'datatrove'\nshingle = 'chars'\nseed = 4294967296").check();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("words") && problems[1].contains("32 bits"));
        assert!(
            config("shingle = 'chars'\nseed = 4294967296")
                .check()
                .is_empty()
        );
    }
}
