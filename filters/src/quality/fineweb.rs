//! FineWeb's quality rules (Penedo et al. 2024), as datatrove's `FineWebQualityFilter`.

use crate::Verdict;
use crate::pytext::{char_len, find_duplicates, strip};
use crate::words::{is_terminal_punctuation, split_words};

use super::{at_least, at_most};

/// Thresholds of the FineWeb rules; `None` switches a rule off. Defaults are the published ones.
#[derive(Debug, Clone, PartialEq)]
pub struct FineWeb {
    /// Fewest non-blank lines ending in terminal punctuation, as a fraction (0.12).
    pub min_line_punct_ratio: Option<f64>,
    /// Most lines of at most `short_line_length` characters, as a fraction (0.67).
    pub max_short_line_ratio: Option<f64>,
    /// What counts as a short line, in characters (30).
    pub short_line_length: usize,
    /// Most characters in lines that repeat an earlier line, as a fraction of the
    /// characters outside newlines (0.01).
    pub max_char_dup_ratio: Option<f64>,
    /// Most newlines per word (0.3).
    pub max_newline_ratio: Option<f64>,
}

impl Default for FineWeb {
    fn default() -> Self {
        Self {
            min_line_punct_ratio: Some(0.12),
            max_short_line_ratio: Some(0.67),
            short_line_length: 30,
            max_char_dup_ratio: Some(0.01),
            max_newline_ratio: Some(0.3),
        }
    }
}

impl FineWeb {
    /// The first rule `text` fails, in datatrove's order, or `None`.
    pub fn check(&self, text: &str) -> Option<Verdict> {
        self.measure(text).err()
    }

    fn measure(&self, text: &str) -> Result<(), Verdict> {
        let lines: Vec<&str> = text.split('\n').filter(|l| !strip(l).is_empty()).collect();
        if lines.is_empty() {
            return Err(super::failed("fineweb.empty", 0.0, 1.0));
        }
        let n_lines = lines.len() as f64;
        let punct = lines
            .iter()
            .filter(|l| l.chars().next_back().is_some_and(is_terminal_punctuation))
            .count() as f64;
        at_least(
            "fineweb.line_punct_ratio",
            punct / n_lines,
            self.min_line_punct_ratio,
        )?;
        let short = lines
            .iter()
            .filter(|l| char_len(l) <= self.short_line_length)
            .count() as f64;
        at_most(
            "fineweb.short_line_ratio",
            short / n_lines,
            self.max_short_line_ratio,
        )?;
        if self.max_char_dup_ratio.is_some() {
            let (_, dup_chars) = find_duplicates(lines.iter().copied());
            let chars = char_len(text) - text.matches('\n').count();
            let ratio = dup_chars as f64 / chars as f64;
            at_most("fineweb.char_dup_ratio", ratio, self.max_char_dup_ratio)?;
        }
        if self.max_newline_ratio.is_some() {
            let words = split_words(text).len().max(1) as f64;
            let ratio = text.matches('\n').count() as f64 / words;
            at_most("fineweb.list_ratio", ratio, self.max_newline_ratio)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Option<&'static str> {
        FineWeb::default().check(text).map(|v| v.rule)
    }

    #[test]
    fn each_rule_has_a_trigger() {
        let good = "This line is long enough and it ends properly with a stop.\n";
        let varied: String = (0..6).map(|i| format!("{i} {good}")).collect();
        assert_eq!(rule(&varied), None);
        assert_eq!(rule(" \n\n"), Some("fineweb.empty"));
        let no_punct: String = (0..6)
            .map(|i| format!("line {i} without any final mark at all here\n"))
            .collect();
        assert_eq!(rule(&no_punct), Some("fineweb.line_punct_ratio"));
        let short: String = (0..6).map(|i| format!("Short {i}.\n")).collect();
        assert_eq!(rule(&short), Some("fineweb.short_line_ratio"));
        assert_eq!(rule(&good.repeat(3)), Some("fineweb.char_dup_ratio"));
        let listy: String = (0..6)
            .map(|i| format!("{i} A fairly long line that ends here.\n\n\n\n"))
            .collect();
        assert_eq!(rule(&listy), Some("fineweb.list_ratio"));
    }
}
