//! Length rules: a document must have between a minimum and a maximum number of characters
//! (Unicode scalar values) and of words (runs of non-whitespace).

/// Rule name: fewer characters than `min_chars`.
pub const MIN_CHARS: &str = "length.min_chars";
/// Rule name: more characters than `max_chars`.
pub const MAX_CHARS: &str = "length.max_chars";
/// Rule name: fewer words than `min_words`.
pub const MIN_WORDS: &str = "length.min_words";
/// Rule name: more words than `max_words`.
pub const MAX_WORDS: &str = "length.max_words";

use crate::Verdict;

/// Inclusive length limits; `None` switches a limit off (0 is a real limit, not "off").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LengthLimits {
    /// Minimum characters.
    pub min_chars: Option<u64>,
    /// Maximum characters.
    pub max_chars: Option<u64>,
    /// Minimum words.
    pub min_words: Option<u64>,
    /// Maximum words.
    pub max_words: Option<u64>,
}

impl LengthLimits {
    /// The first limit `text` breaks, checked in the order min/max chars, min/max words.
    pub fn first_failure(&self, text: &str) -> Option<Verdict> {
        if self.min_chars.is_some() || self.max_chars.is_some() {
            let chars = text.chars().count() as u64;
            if let Some(v) =
                below(MIN_CHARS, chars, self.min_chars).or(above(MAX_CHARS, chars, self.max_chars))
            {
                return Some(v);
            }
        }
        if self.min_words.is_some() || self.max_words.is_some() {
            let words = text.split_whitespace().count() as u64;
            return below(MIN_WORDS, words, self.min_words).or(above(
                MAX_WORDS,
                words,
                self.max_words,
            ));
        }
        None
    }
}

fn failure(rule: &'static str, value: u64, threshold: u64) -> Verdict {
    Verdict {
        rule,
        passed: false,
        value: value as f64,
        threshold: threshold as f64,
    }
}

fn below(rule: &'static str, value: u64, min: Option<u64>) -> Option<Verdict> {
    min.filter(|&m| value < m).map(|m| failure(rule, value, m))
}

fn above(rule: &'static str, value: u64, max: Option<u64>) -> Option<Verdict> {
    max.filter(|&m| value > m).map(|m| failure(rule, value, m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_length_rule_has_a_trigger() {
        let limits = LengthLimits {
            min_chars: Some(5),
            max_chars: Some(40),
            min_words: Some(2),
            max_words: Some(5),
        };
        let cases = [
            ("abc", MIN_CHARS, 3.0),
            (&"x".repeat(41)[..], MAX_CHARS, 41.0),
            ("abcdefg", MIN_WORDS, 1.0),
            ("a b c d e f", MAX_WORDS, 6.0),
        ];
        for (text, rule, value) in cases {
            let v = limits.first_failure(text).unwrap();
            assert_eq!((v.rule, v.value), (rule, value), "{text:?}");
        }
        assert_eq!(limits.first_failure("two words"), None);
    }

    #[test]
    fn characters_are_counted_not_bytes_and_zero_is_a_real_limit() {
        let limits = LengthLimits {
            max_chars: Some(3),
            ..Default::default()
        };
        assert_eq!(limits.first_failure("ééé"), None);
        let zero = LengthLimits {
            max_words: Some(0),
            ..Default::default()
        };
        assert_eq!(zero.first_failure("a").map(|v| v.rule), Some(MAX_WORDS));
    }

    proptest! {
        #[test]
        fn passes_exactly_when_within_limits(text in "\\PC{0,60}", lo in 0u64..30, span in 0u64..30) {
            let limits = LengthLimits { min_chars: Some(lo), max_chars: Some(lo + span), ..Default::default() };
            let n = text.chars().count() as u64;
            prop_assert_eq!(limits.first_failure(&text).is_none(), lo <= n && n <= lo + span);
        }
    }
}
