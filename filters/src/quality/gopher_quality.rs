//! Gopher quality rules (Rae et al. 2021, table A1), as datatrove's `GopherQualityFilter`
//! applies them: word counts and ratios over spaCy-style words ([`crate::words`]).

use crate::Verdict;
use crate::pytext::{char_len, splitlines};
use crate::words::{is_datatrove_punctuation, py_isspace, split_words};

use super::{at_least, at_most};

/// Thresholds of the Gopher quality rules; `None` switches a rule off. Defaults are the
/// published ones.
#[derive(Debug, Clone, PartialEq)]
pub struct GopherQuality {
    /// Fewest words that are not only punctuation (50).
    pub min_doc_words: Option<usize>,
    /// Most such words (100,000).
    pub max_doc_words: Option<usize>,
    /// Lowest mean length of those words, in characters (3).
    pub min_avg_word_length: Option<f64>,
    /// Highest mean word length (10).
    pub max_avg_word_length: Option<f64>,
    /// Most `#`, and most ellipses (`...` or `…`), per word (0.1).
    pub max_symbol_word_ratio: Option<f64>,
    /// Most lines starting with a bullet (`•` or `-`), as a fraction of lines (0.9).
    pub max_bullet_lines_ratio: Option<f64>,
    /// Most lines ending with an ellipsis (0.3).
    pub max_ellipsis_lines_ratio: Option<f64>,
    /// Fewest words containing a letter, as a fraction of words (0.8).
    pub min_alpha_words_ratio: Option<f64>,
    /// Fewest distinct stop words present (2).
    pub min_stop_words: Option<usize>,
    /// The stop words (case-sensitive): the, be, to, of, and, that, have, with.
    pub stop_words: Vec<String>,
}

/// Gopher's English stop words.
pub const STOP_WORDS: [&str; 8] = ["the", "be", "to", "of", "and", "that", "have", "with"];

impl Default for GopherQuality {
    fn default() -> Self {
        Self {
            min_doc_words: Some(50),
            max_doc_words: Some(100_000),
            min_avg_word_length: Some(3.0),
            max_avg_word_length: Some(10.0),
            max_symbol_word_ratio: Some(0.1),
            max_bullet_lines_ratio: Some(0.9),
            max_ellipsis_lines_ratio: Some(0.3),
            min_alpha_words_ratio: Some(0.8),
            min_stop_words: Some(2),
            stop_words: STOP_WORDS.map(String::from).to_vec(),
        }
    }
}

impl GopherQuality {
    /// The first rule `text` fails, in datatrove's order, or `None` when it passes them all.
    pub fn check(&self, text: &str) -> Option<Verdict> {
        self.measure(text).err()
    }

    fn measure(&self, text: &str) -> Result<(), Verdict> {
        let words = split_words(text);
        let (mut content_words, mut content_chars) = (0usize, 0usize);
        for w in &words {
            if w.chars().any(|c| !is_datatrove_punctuation(c)) {
                content_words += 1;
                content_chars += char_len(w);
            }
        }
        let n = content_words as f64;
        at_least(
            "gopher_quality.short_doc",
            n,
            self.min_doc_words.map(|m| m as f64),
        )?;
        at_most(
            "gopher_quality.long_doc",
            n,
            self.max_doc_words.map(|m| m as f64),
        )?;
        if content_words > 0 {
            let mean = content_chars as f64 / n;
            at_least(
                "gopher_quality.below_avg_word_length",
                mean,
                self.min_avg_word_length,
            )?;
            at_most(
                "gopher_quality.above_avg_word_length",
                mean,
                self.max_avg_word_length,
            )?;
        }
        if words.is_empty() {
            return Ok(());
        }
        let n_words = words.len() as f64;
        let hashes = text.matches('#').count() as f64 / n_words;
        at_most(
            "gopher_quality.too_many_hashes",
            hashes,
            self.max_symbol_word_ratio,
        )?;
        let ellipses = (text.matches("...").count() + text.matches('…').count()) as f64 / n_words;
        at_most(
            "gopher_quality.too_many_ellipsis",
            ellipses,
            self.max_symbol_word_ratio,
        )?;
        let lines = splitlines(text);
        if !lines.is_empty() {
            let n_lines = lines.len() as f64;
            let fraction = |pred: &dyn Fn(&str) -> bool| {
                lines.iter().filter(|l| pred(l)).count() as f64 / n_lines
            };
            let bullets = fraction(&|l| {
                let l = l.trim_start_matches(py_isspace);
                l.starts_with('•') || l.starts_with('-')
            });
            at_most(
                "gopher_quality.too_many_bullets",
                bullets,
                self.max_bullet_lines_ratio,
            )?;
            let trailing = fraction(&|l| {
                let l = l.trim_end_matches(py_isspace);
                l.ends_with("...") || l.ends_with('…')
            });
            let max = self.max_ellipsis_lines_ratio;
            at_most("gopher_quality.too_many_end_ellipsis", trailing, max)?;
        }
        let alpha = words
            .iter()
            .filter(|w| w.chars().any(char::is_alphabetic))
            .count() as f64;
        let min = self.min_alpha_words_ratio;
        at_least("gopher_quality.below_alpha_threshold", alpha / n_words, min)?;
        let present = self
            .stop_words
            .iter()
            .filter(|s| words.contains(&s.as_str()))
            .count();
        let min = self.min_stop_words.map(|m| m as f64);
        at_least("gopher_quality.few_stop_words", present as f64, min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Option<&'static str> {
        GopherQuality::default().check(text).map(|v| v.rule)
    }

    #[test]
    fn each_rule_has_a_trigger() {
        let prose = "The cat sat on the mat and looked at the birds with great interest. ";
        assert_eq!(rule(&prose.repeat(5)), None);
        assert_eq!(rule(prose), Some("gopher_quality.short_doc"));
        assert_eq!(
            rule(&"a b c ".repeat(40)),
            Some("gopher_quality.below_avg_word_length")
        );
        let long = "extraordinarily incomprehensibilities ".repeat(60);
        assert_eq!(rule(&long), Some("gopher_quality.above_avg_word_length"));
        let hashes = format!("{}{}", prose.repeat(5), "#".repeat(20));
        assert_eq!(rule(&hashes), Some("gopher_quality.too_many_hashes"));
        let bullets = "- the cat and the dog went home\n".repeat(10);
        assert_eq!(rule(&bullets), Some("gopher_quality.too_many_bullets"));
        let trailing = "the cat and the dog went home to sleep...\n".repeat(8);
        assert_eq!(
            rule(&trailing),
            Some("gopher_quality.too_many_end_ellipsis")
        );
        let numbers = format!("{} {}", prose.repeat(5), "1234 5678 ".repeat(40));
        assert_eq!(rule(&numbers), Some("gopher_quality.below_alpha_threshold"));
        let no_stop = "cats dogs birds fish running quickly everywhere today. ".repeat(10);
        assert_eq!(rule(&no_stop), Some("gopher_quality.few_stop_words"));
    }

    #[test]
    fn stop_words_are_case_sensitive_like_datatrove() {
        let upper = "The cat And THE dog Of mice slept near houses quietly. ".repeat(6);
        assert_eq!(rule(&upper), Some("gopher_quality.few_stop_words"));
    }
}
