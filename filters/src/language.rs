//! Language identification with [`whatlang`] (pure Rust, trigram profiles of 69 languages).
//!
//! Languages are named by ISO 639-3 codes (`eng`, `deu`, `fra`, ...), whatlang's own; the score
//! is whatlang's confidence in 0..1. Only the first `max_chars` characters are read, which keeps
//! the cost per document bounded.

use crate::Verdict;

/// A document's detected language.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detected {
    /// ISO 639-3 code, or `und` when nothing could be detected (no letters).
    pub language: &'static str,
    /// Confidence in 0..1 (0 for `und`).
    pub score: f64,
}

/// Keeps documents in one of the configured languages with a score at least `min_score`.
#[derive(Debug, Clone, PartialEq)]
pub struct LanguageRule {
    /// Accepted ISO 639-3 codes; empty accepts every language (detection only).
    pub languages: Vec<String>,
    /// Lowest accepted score (0.65, FineWeb's threshold for its fastText model).
    pub min_score: f64,
    /// Characters read from the start of the document (4,096).
    pub max_chars: usize,
}

impl Default for LanguageRule {
    fn default() -> Self {
        Self {
            languages: vec!["eng".into()],
            min_score: 0.65,
            max_chars: 4096,
        }
    }
}

/// Whether whatlang knows the ISO 639-3 `code`.
pub fn is_known_code(code: &str) -> bool {
    whatlang::Lang::from_code(code).is_some()
}

impl LanguageRule {
    /// Detects the language of `text`.
    pub fn detect(&self, text: &str) -> Detected {
        let end = text
            .char_indices()
            .nth(self.max_chars)
            .map_or(text.len(), |(i, _)| i);
        match whatlang::detect(&text[..end]) {
            Some(info) => Detected {
                language: info.lang().code(),
                score: info.confidence(),
            },
            None => Detected {
                language: "und",
                score: 0.0,
            },
        }
    }

    /// The detection and, when the document is not accepted, the verdict that drops it:
    /// `language.other` (value: the score, threshold: `min_score`) for a language outside the
    /// list, `language.low_score` for a listed language below `min_score`.
    pub fn check(&self, text: &str) -> (Detected, Option<Verdict>) {
        let detected = self.detect(text);
        let listed =
            self.languages.is_empty() || self.languages.iter().any(|l| l == detected.language);
        let rule = if !listed {
            Some("language.other")
        } else if detected.score < self.min_score {
            Some("language.low_score")
        } else {
            None
        };
        let verdict = rule.map(|rule| Verdict {
            rule,
            passed: false,
            value: detected.score,
            threshold: self.min_score,
        });
        (detected, verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_english_and_names_the_others() {
        let rule = LanguageRule::default();
        let en =
            "The quick brown fox jumps over the lazy dog while the farmer watches from the porch.";
        let (d, v) = rule.check(en);
        assert_eq!((d.language, v), ("eng", None));
        assert!(d.score >= 0.65);
        let de =
            "Der schnelle braune Fuchs springt über den faulen Hund, während der Bauer zuschaut.";
        let (d, v) = rule.check(de);
        assert_eq!(d.language, "deu");
        assert_eq!(v.map(|v| v.rule), Some("language.other"));
        let (d, v) = rule.check("1234 5678 !!!");
        assert_eq!((d.language, d.score), ("und", 0.0));
        assert_eq!(v.map(|v| v.rule), Some("language.other"));
        assert!(is_known_code("fra") && !is_known_code("xx"));
    }
}
