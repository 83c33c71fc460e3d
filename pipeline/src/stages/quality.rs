//! `gopher_quality`, `gopher_repetition` and `fineweb`: drop documents that fail the published
//! quality heuristics ([`filters::quality`]), each with the rule, the measured value and the
//! threshold. Defaults are the published thresholds; as in datatrove, a threshold of 0 switches
//! its rule off.

use filters::Verdict;
use filters::quality::fineweb::FineWeb;
use filters::quality::gopher_quality::{GopherQuality, STOP_WORDS};
use filters::quality::gopher_repetition::GopherRepetition;
use serde::{Deserialize, Serialize};

use super::{off, on, verdict_stage};
use crate::stage::{Stage, StageError, StageOutput};
use arrow::record_batch::RecordBatch;

/// A per-document rule as a stage.
pub struct RuleStage<F> {
    name: String,
    check: F,
}

impl<F: Fn(&str) -> Option<Verdict> + Send + Sync> Stage for RuleStage<F> {
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&self, batch: &RecordBatch) -> Result<StageOutput, StageError> {
        verdict_stage(batch, &self.name, &self.check)
    }
}

/// Config of `gopher_quality` (see [`GopherQuality`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GopherQualityConfig {
    /// Stage name. Default `gopher_quality`.
    pub name: Option<String>,
    /// Fewest words that are not only punctuation. Default 50.
    pub min_doc_words: usize,
    /// Most such words. Default 100,000.
    pub max_doc_words: usize,
    /// Lowest mean word length in characters. Default 3.
    pub min_avg_word_length: f64,
    /// Highest mean word length. Default 10.
    pub max_avg_word_length: f64,
    /// Most `#` and most ellipses per word. Default 0.1.
    pub max_symbol_word_ratio: f64,
    /// Most lines starting with a bullet. Default 0.9.
    pub max_bullet_lines_ratio: f64,
    /// Most lines ending with an ellipsis. Default 0.3.
    pub max_ellipsis_lines_ratio: f64,
    /// Fewest words with a letter, as a fraction. Default 0.8.
    pub min_alpha_words_ratio: f64,
    /// Fewest distinct stop words. Default 2.
    pub min_stop_words: usize,
    /// The stop words (case-sensitive). Default: the, be, to, of, and, that, have, with.
    pub stop_words: Vec<String>,
}

impl Default for GopherQualityConfig {
    fn default() -> Self {
        let d = GopherQuality::default();
        Self {
            name: None,
            min_doc_words: off(d.min_doc_words),
            max_doc_words: off(d.max_doc_words),
            min_avg_word_length: off(d.min_avg_word_length),
            max_avg_word_length: off(d.max_avg_word_length),
            max_symbol_word_ratio: off(d.max_symbol_word_ratio),
            max_bullet_lines_ratio: off(d.max_bullet_lines_ratio),
            max_ellipsis_lines_ratio: off(d.max_ellipsis_lines_ratio),
            min_alpha_words_ratio: off(d.min_alpha_words_ratio),
            min_stop_words: off(d.min_stop_words),
            stop_words: STOP_WORDS.map(String::from).to_vec(),
        }
    }
}

impl GopherQualityConfig {
    /// Problems with the thresholds (see [`threshold_problems`]), and a lower bound above its
    /// upper one.
    pub fn check(&self) -> Vec<String> {
        let mut problems = threshold_problems(
            [
                ("max_bullet_lines_ratio", self.max_bullet_lines_ratio),
                ("max_ellipsis_lines_ratio", self.max_ellipsis_lines_ratio),
                ("min_alpha_words_ratio", self.min_alpha_words_ratio),
            ],
            [
                ("min_avg_word_length", self.min_avg_word_length),
                ("max_avg_word_length", self.max_avg_word_length),
                ("max_symbol_word_ratio", self.max_symbol_word_ratio),
            ],
        );
        let words = (self.min_doc_words as f64, self.max_doc_words as f64);
        let lengths = (self.min_avg_word_length, self.max_avg_word_length);
        for (unit, (lo, hi)) in [("doc_words", words), ("avg_word_length", lengths)] {
            if lo > hi && hi > 0.0 {
                problems.push(format!(
                    "min_{unit} ({lo}) is greater than max_{unit} ({hi})"
                ));
            }
        }
        problems
    }

    /// The rules as configured.
    pub fn rules(&self) -> GopherQuality {
        GopherQuality {
            min_doc_words: on(self.min_doc_words),
            max_doc_words: on(self.max_doc_words),
            min_avg_word_length: on(self.min_avg_word_length),
            max_avg_word_length: on(self.max_avg_word_length),
            max_symbol_word_ratio: on(self.max_symbol_word_ratio),
            max_bullet_lines_ratio: on(self.max_bullet_lines_ratio),
            max_ellipsis_lines_ratio: on(self.max_ellipsis_lines_ratio),
            min_alpha_words_ratio: on(self.min_alpha_words_ratio),
            min_stop_words: on(self.min_stop_words),
            stop_words: self.stop_words.clone(),
        }
    }

    /// Builds the stage.
    pub fn build(&self, name: String) -> impl Stage + use<> {
        let rules = self.rules();
        RuleStage {
            name,
            check: move |t: &str| rules.check(t),
        }
    }
}

/// Config of `gopher_repetition` (see [`GopherRepetition`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GopherRepetitionConfig {
    /// Stage name. Default `gopher_repetition`.
    pub name: Option<String>,
    /// Most repeated paragraphs, as a fraction. Default 0.3.
    pub dup_para_frac: f64,
    /// Most characters in repeated paragraphs. Default 0.2.
    pub dup_para_char_frac: f64,
    /// Most repeated lines. Default 0.3.
    pub dup_line_frac: f64,
    /// Most characters in repeated lines. Default 0.2.
    pub dup_line_char_frac: f64,
    /// `[n, max]` pairs for the most frequent n-gram. Default `[[2, 0.2], [3, 0.18], [4, 0.16]]`.
    pub top_n_grams: Vec<(usize, f64)>,
    /// `[n, max]` pairs for repeated n-grams. Default n = 5..10 with 0.15 down to 0.10.
    pub dup_n_grams: Vec<(usize, f64)>,
}

impl Default for GopherRepetitionConfig {
    fn default() -> Self {
        let d = GopherRepetition::default();
        Self {
            name: None,
            dup_para_frac: off(d.dup_para_frac),
            dup_para_char_frac: off(d.dup_para_char_frac),
            dup_line_frac: off(d.dup_line_frac),
            dup_line_char_frac: off(d.dup_line_char_frac),
            top_n_grams: d.top_n_grams,
            dup_n_grams: d.dup_n_grams,
        }
    }
}

impl GopherRepetitionConfig {
    /// Problems with the n-gram sizes and the thresholds (see [`threshold_problems`]).
    pub fn check(&self) -> Vec<String> {
        let pairs = self.top_n_grams.iter().chain(&self.dup_n_grams);
        let mut problems: Vec<String> = pairs
            .filter(|(n, _)| *n == 0)
            .map(|_| "n-gram sizes must be at least 1".to_string())
            .take(1)
            .collect();
        let n_grams: Vec<(String, f64)> = [
            ("top_n_grams", &self.top_n_grams),
            ("dup_n_grams", &self.dup_n_grams),
        ]
        .into_iter()
        .flat_map(|(key, pairs)| {
            pairs
                .iter()
                .map(move |&(n, f)| (format!("{key} for {n}-grams"), f))
        })
        .collect();
        problems.extend(threshold_problems(
            [
                ("dup_para_frac", self.dup_para_frac),
                ("dup_para_char_frac", self.dup_para_char_frac),
                ("dup_line_frac", self.dup_line_frac),
                ("dup_line_char_frac", self.dup_line_char_frac),
            ]
            .into_iter()
            .chain(n_grams.iter().map(|(key, f)| (key.as_str(), *f))),
            [],
        ));
        problems
    }

    /// The rules as configured.
    pub fn rules(&self) -> GopherRepetition {
        GopherRepetition {
            dup_para_frac: on(self.dup_para_frac),
            dup_para_char_frac: on(self.dup_para_char_frac),
            dup_line_frac: on(self.dup_line_frac),
            dup_line_char_frac: on(self.dup_line_char_frac),
            top_n_grams: self.top_n_grams.clone(),
            dup_n_grams: self.dup_n_grams.clone(),
        }
    }

    /// Builds the stage.
    pub fn build(&self, name: String) -> impl Stage + use<> {
        let rules = self.rules();
        RuleStage {
            name,
            check: move |t: &str| rules.check(t),
        }
    }
}

/// Config of `fineweb` (see [`FineWeb`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FineWebConfig {
    /// Stage name. Default `fineweb`.
    pub name: Option<String>,
    /// Fewest lines ending in terminal punctuation, as a fraction. Default 0.12.
    pub min_line_punct_ratio: f64,
    /// Most short lines, as a fraction. Default 0.67.
    pub max_short_line_ratio: f64,
    /// Short line length in characters. Default 30.
    pub short_line_length: usize,
    /// Most characters in repeated lines. Default 0.01.
    pub max_char_dup_ratio: f64,
    /// Most newlines per word. Default 0.3.
    pub max_newline_ratio: f64,
}

impl Default for FineWebConfig {
    fn default() -> Self {
        let d = FineWeb::default();
        Self {
            name: None,
            min_line_punct_ratio: off(d.min_line_punct_ratio),
            max_short_line_ratio: off(d.max_short_line_ratio),
            short_line_length: d.short_line_length,
            max_char_dup_ratio: off(d.max_char_dup_ratio),
            max_newline_ratio: off(d.max_newline_ratio),
        }
    }
}

impl FineWebConfig {
    /// Problems with the thresholds (see [`threshold_problems`]).
    pub fn check(&self) -> Vec<String> {
        threshold_problems(
            [
                ("min_line_punct_ratio", self.min_line_punct_ratio),
                ("max_short_line_ratio", self.max_short_line_ratio),
                ("max_char_dup_ratio", self.max_char_dup_ratio),
            ],
            [("max_newline_ratio", self.max_newline_ratio)],
        )
    }

    /// The rules as configured.
    pub fn rules(&self) -> FineWeb {
        FineWeb {
            min_line_punct_ratio: on(self.min_line_punct_ratio),
            max_short_line_ratio: on(self.max_short_line_ratio),
            short_line_length: self.short_line_length,
            max_char_dup_ratio: on(self.max_char_dup_ratio),
            max_newline_ratio: on(self.max_newline_ratio),
        }
    }

    /// Builds the stage.
    pub fn build(&self, name: String) -> impl Stage + use<> {
        let rules = self.rules();
        RuleStage {
            name,
            check: move |t: &str| rules.check(t),
        }
    }
}

/// Problems with thresholds: each must be a finite number of at least 0 (0 turns its rule off),
/// and each of `fractions` (a share of lines, words or characters) at most 1, so that a
/// percentage written for a fraction (`12` for 0.12) is refused rather than dropping every
/// document or none.
fn threshold_problems<'a>(
    fractions: impl IntoIterator<Item = (&'a str, f64)>,
    others: impl IntoIterator<Item = (&'a str, f64)>,
) -> Vec<String> {
    let fractions = fractions
        .into_iter()
        .filter(|(_, v)| !(0.0..=1.0).contains(v))
        .map(|(key, v)| {
            format!("{key} ({v}) must be a fraction from 0 to 1 (0 turns its rule off)")
        });
    let others = others
        .into_iter()
        .filter(|(_, v)| !(v.is_finite() && *v >= 0.0))
        .map(|(key, v)| {
            format!("{key} ({v}) must be a number of at least 0 (0 turns its rule off)")
        });
    fractions.chain(others).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::tests::docs;

    #[test]
    fn defaults_are_the_published_thresholds_and_zero_is_off() {
        assert_eq!(
            GopherQualityConfig::default().rules(),
            GopherQuality::default()
        );
        let off = GopherQualityConfig {
            min_doc_words: 0,
            ..Default::default()
        };
        assert_eq!(off.rules().min_doc_words, None);
    }

    #[test]
    fn thresholds_must_be_numbers_and_fractions_at_most_one() {
        assert!(GopherQualityConfig::default().check().is_empty());
        assert!(GopherRepetitionConfig::default().check().is_empty());
        assert!(FineWebConfig::default().check().is_empty());
        let all_off = GopherQualityConfig {
            min_doc_words: 0,
            max_doc_words: 0,
            min_avg_word_length: 0.0,
            max_avg_word_length: 0.0,
            max_symbol_word_ratio: 0.0,
            max_bullet_lines_ratio: 0.0,
            max_ellipsis_lines_ratio: 0.0,
            min_alpha_words_ratio: 0.0,
            ..Default::default()
        };
        assert!(all_off.check().is_empty());
        // A ratio that is not a fraction of lines or words may exceed 1.
        let per_word = GopherQualityConfig {
            max_symbol_word_ratio: 2.5,
            ..Default::default()
        };
        assert!(per_word.check().is_empty());
        let bad = GopherQualityConfig {
            min_doc_words: 500,
            max_doc_words: 50,
            min_avg_word_length: f64::NAN,
            max_avg_word_length: 2.0,
            max_symbol_word_ratio: f64::INFINITY,
            max_bullet_lines_ratio: 90.0,
            max_ellipsis_lines_ratio: -0.3,
            min_alpha_words_ratio: 1.0,
            ..Default::default()
        };
        assert_eq!(
            bad.check(),
            [
                "max_bullet_lines_ratio (90) must be a fraction from 0 to 1 (0 turns its rule off)",
                "max_ellipsis_lines_ratio (-0.3) must be a fraction from 0 to 1 (0 turns its rule off)",
                "min_avg_word_length (NaN) must be a number of at least 0 (0 turns its rule off)",
                "max_symbol_word_ratio (inf) must be a number of at least 0 (0 turns its rule off)",
                "min_doc_words (500) is greater than max_doc_words (50)",
            ]
        );
        let lengths = GopherQualityConfig {
            min_avg_word_length: 12.0,
            ..Default::default()
        };
        assert_eq!(
            lengths.check(),
            ["min_avg_word_length (12) is greater than max_avg_word_length (10)"]
        );
        let repetition = GopherRepetitionConfig {
            dup_line_frac: 30.0,
            top_n_grams: vec![(2, 0.2), (3, f64::NAN)],
            dup_n_grams: vec![(0, 0.1), (5, 1.5)],
            ..Default::default()
        };
        assert_eq!(
            repetition.check(),
            [
                "n-gram sizes must be at least 1",
                "dup_line_frac (30) must be a fraction from 0 to 1 (0 turns its rule off)",
                "top_n_grams for 3-grams (NaN) must be a fraction from 0 to 1 (0 turns its rule off)",
                "dup_n_grams for 5-grams (1.5) must be a fraction from 0 to 1 (0 turns its rule off)",
            ]
        );
        let fineweb = FineWebConfig {
            min_line_punct_ratio: 12.0,
            max_newline_ratio: -1.0,
            ..Default::default()
        };
        assert_eq!(fineweb.check().len(), 2, "{:?}", fineweb.check());
        let newlines = FineWebConfig {
            max_newline_ratio: 3.0,
            ..Default::default()
        };
        assert!(
            newlines.check().is_empty(),
            "newlines per word may exceed 1"
        );
    }

    #[test]
    fn drops_with_rule_value_and_threshold() {
        let prose = "The cat sat on the mat and looked at the birds with great interest. ";
        let batch = docs(&[&prose.repeat(6), "too short"]);
        let out = GopherQualityConfig::default()
            .build("gq".into())
            .process(&batch)
            .unwrap();
        assert_eq!(out.kept.num_rows(), 1);
        let r = &out.rejected[0];
        assert_eq!(
            (r.row, r.verdict.rule, r.verdict.value, r.verdict.threshold),
            (1, "gopher_quality.short_doc", 2.0, 50.0)
        );
    }
}
