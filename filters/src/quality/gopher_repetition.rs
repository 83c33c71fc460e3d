//! Gopher repetition rules (Rae et al. 2021, table A1), as datatrove's
//! `GopherRepetitionFilter`: repeated paragraphs and lines, the most frequent 2- to 4-gram, and
//! the characters covered by repeated 5- to 10-grams, each as a fraction of the text.

use std::collections::{HashMap, HashSet};

use crate::Verdict;
use crate::pytext::{char_len, find_duplicates, strip};
use crate::words::split_words;

use super::at_most;

/// Thresholds of the repetition rules; `None` switches a rule off. Defaults are the published
/// ones.
#[derive(Debug, Clone, PartialEq)]
pub struct GopherRepetition {
    /// Most paragraphs (split on blank lines) repeating an earlier one, as a fraction (0.3).
    pub dup_para_frac: Option<f64>,
    /// Most characters in repeated paragraphs, as a fraction of the text (0.2).
    pub dup_para_char_frac: Option<f64>,
    /// Most lines repeating an earlier one, as a fraction (0.3).
    pub dup_line_frac: Option<f64>,
    /// Most characters in repeated lines (0.2).
    pub dup_line_char_frac: Option<f64>,
    /// For n = 2, 3, 4: most characters of the most frequent n-gram times its count
    /// (0.20, 0.18, 0.16).
    pub top_n_grams: Vec<(usize, f64)>,
    /// For n = 5..10: most characters in n-grams repeating an earlier one
    /// (0.15 down to 0.10).
    pub dup_n_grams: Vec<(usize, f64)>,
}

impl Default for GopherRepetition {
    fn default() -> Self {
        Self {
            dup_para_frac: Some(0.3),
            dup_para_char_frac: Some(0.2),
            dup_line_frac: Some(0.3),
            dup_line_char_frac: Some(0.2),
            top_n_grams: vec![(2, 0.20), (3, 0.18), (4, 0.16)],
            dup_n_grams: vec![
                (5, 0.15),
                (6, 0.14),
                (7, 0.13),
                (8, 0.12),
                (9, 0.11),
                (10, 0.10),
            ],
        }
    }
}

/// Rule names of the n-gram rules, by n.
fn top_rule(n: usize) -> &'static str {
    match n {
        2 => "gopher_repetition.top_2_gram",
        3 => "gopher_repetition.top_3_gram",
        4 => "gopher_repetition.top_4_gram",
        _ => "gopher_repetition.top_n_gram",
    }
}

fn dup_rule(n: usize) -> &'static str {
    const RULES: [&str; 6] = [
        "gopher_repetition.duplicated_5_n_grams",
        "gopher_repetition.duplicated_6_n_grams",
        "gopher_repetition.duplicated_7_n_grams",
        "gopher_repetition.duplicated_8_n_grams",
        "gopher_repetition.duplicated_9_n_grams",
        "gopher_repetition.duplicated_10_n_grams",
    ];
    n.checked_sub(5)
        .and_then(|i| RULES.get(i))
        .copied()
        .unwrap_or("gopher_repetition.duplicated_n_grams")
}

impl GopherRepetition {
    /// The first rule `text` fails, in datatrove's order, or `None`.
    pub fn check(&self, text: &str) -> Option<Verdict> {
        self.measure(text).err()
    }

    fn measure(&self, text: &str) -> Result<(), Verdict> {
        if text.is_empty() {
            return Err(super::failed("gopher_repetition.empty", 0.0, 1.0));
        }
        let chars = char_len(text) as f64;
        let paragraphs = split_runs(strip(text), 2);
        let (dups, dup_chars) = find_duplicates(paragraphs.iter().copied());
        let frac = dups as f64 / paragraphs.len() as f64;
        at_most("gopher_repetition.dup_para_frac", frac, self.dup_para_frac)?;
        let frac = dup_chars as f64 / chars;
        at_most(
            "gopher_repetition.dup_para_char_frac",
            frac,
            self.dup_para_char_frac,
        )?;
        let lines = split_runs(text, 1);
        let (dups, dup_chars) = find_duplicates(lines.iter().copied());
        let frac = dups as f64 / lines.len() as f64;
        at_most("gopher_repetition.dup_line_frac", frac, self.dup_line_frac)?;
        let frac = dup_chars as f64 / chars;
        at_most(
            "gopher_repetition.dup_line_char_frac",
            frac,
            self.dup_line_char_frac,
        )?;
        if self.top_n_grams.is_empty() && self.dup_n_grams.is_empty() {
            return Ok(());
        }
        let words = Words::new(text);
        for &(n, max) in &self.top_n_grams {
            if let Some(top) = words.top_n_gram_chars(n) {
                at_most(top_rule(n), top as f64 / chars, Some(max))?;
            }
        }
        for &(n, max) in &self.dup_n_grams {
            let repeated = words.repeated_n_gram_chars(n);
            at_most(dup_rule(n), repeated as f64 / chars, Some(max))?;
        }
        Ok(())
    }
}

/// Splits on runs of at least `min` newlines, as `re.split("\n{min,}", text)`.
fn split_runs(text: &str, min: usize) -> Vec<&str> {
    let bytes = text.as_bytes();
    let (mut parts, mut start, mut i) = (Vec::new(), 0, 0);
    while i < bytes.len() {
        if bytes[i] != b'\n' {
            i += 1;
            continue;
        }
        let run = bytes[i..].iter().take_while(|&&b| b == b'\n').count();
        if run >= min {
            parts.push(&text[start..i]);
            start = i + run;
        }
        i += run;
    }
    parts.push(&text[start..]);
    parts
}

/// A document's words as small integers (equal words, equal ids) with their lengths.
struct Words {
    ids: Vec<u32>,
    lens: Vec<usize>,
}

impl Words {
    fn new(text: &str) -> Self {
        let mut interned: HashMap<&str, u32> = HashMap::new();
        let mut ids = Vec::new();
        let mut lens = Vec::new();
        for w in split_words(text) {
            let next = interned.len() as u32;
            ids.push(*interned.entry(w).or_insert(next));
            lens.push(char_len(w));
        }
        Self { ids, lens }
    }

    /// Characters of the most frequent n-gram (words joined by spaces) times its count; ties go
    /// to the n-gram seen first, as `Counter.most_common(1)`. `None` without any n-gram.
    fn top_n_gram_chars(&self, n: usize) -> Option<usize> {
        if n == 0 || self.ids.len() < n {
            return None;
        }
        let mut counts: HashMap<&[u32], (usize, usize)> = HashMap::new();
        for (i, gram) in self.ids.windows(n).enumerate() {
            counts.entry(gram).or_insert((0, i)).0 += 1;
        }
        let (count, first) = counts
            .into_values()
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))?;
        let chars: usize = self.lens[first..first + n].iter().sum::<usize>() + n - 1;
        Some(chars * count)
    }

    /// Characters (words concatenated) in n-grams that repeat an earlier one, skipping past each
    /// repeat, as datatrove's `find_all_duplicate`.
    fn repeated_n_gram_chars(&self, n: usize) -> usize {
        let mut seen: HashSet<&[u32]> = HashSet::new();
        let (mut repeated, mut i) = (0, 0);
        while n > 0 && i + n <= self.ids.len() {
            let gram = &self.ids[i..i + n];
            if seen.contains(gram) {
                repeated += self.lens[i..i + n].iter().sum::<usize>();
                i += n;
            } else {
                seen.insert(gram);
                i += 1;
            }
        }
        repeated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Option<&'static str> {
        GopherRepetition::default().check(text).map(|v| v.rule)
    }

    #[test]
    fn each_rule_has_a_trigger() {
        let varied: Vec<String> = (0..60).map(|i| format!("word{i}")).collect();
        let varied = varied.join(" ");
        assert_eq!(rule(&varied), None);
        assert_eq!(rule(""), Some("gopher_repetition.empty"));
        let para = "one two three\n\nfour five six\n\none two three";
        assert_eq!(rule(para), Some("gopher_repetition.dup_para_frac"));
        let p = "x y z ".repeat(20);
        let long_para = format!("{p}\n\nshort\n\n{p}\n\nother\n\nmore\n\nend");
        assert_eq!(
            rule(&long_para),
            Some("gopher_repetition.dup_para_char_frac")
        );
        let lines = "a b\nc d\na b\ne f\na b";
        assert_eq!(rule(lines), Some("gopher_repetition.dup_line_frac"));
        let bigram = format!("{varied} {}", "spam eggs ".repeat(16));
        assert_eq!(rule(&bigram), Some("gopher_repetition.top_2_gram"));
    }

    #[test]
    fn n_gram_helpers_follow_datatrove() {
        let w = Words::new("a b a b a b c");
        // "a b" occurs 3 times: 3 characters each.
        assert_eq!(w.top_n_gram_chars(2), Some(9));
        // 3-grams: "a b a" then "b a b", then "a b a" repeats at 2 (skip 3), "c" left.
        assert_eq!(w.repeated_n_gram_chars(3), 3);
        assert_eq!(split_runs("a\n\nb\n\n\nc\nd", 2), ["a", "b", "c\nd"]);
        assert_eq!(split_runs("\na\n", 1), ["", "a", ""]);
    }
}
