//! Gopher repetition rules (Rae et al. 2021, table A1), as datatrove's
//! `GopherRepetitionFilter`: repeated paragraphs and lines, the most frequent 2- to 4-gram, and
//! the characters covered by repeated 5- to 10-grams, each as a fraction of the text.

use crate::Verdict;
use crate::pytext::{FastMap, FastSet, char_len, find_duplicates, strip};
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
        // Paragraphs (blank-line separated, of the stripped text), then lines: the fraction of
        // pieces repeating an earlier one, and of the text's characters in them.
        let pieces = [
            (
                split_runs(strip(text), 2),
                "gopher_repetition.dup_para_frac",
                self.dup_para_frac,
                "gopher_repetition.dup_para_char_frac",
                self.dup_para_char_frac,
            ),
            (
                split_runs(text, 1),
                "gopher_repetition.dup_line_frac",
                self.dup_line_frac,
                "gopher_repetition.dup_line_char_frac",
                self.dup_line_char_frac,
            ),
        ];
        for (parts, frac_rule, max_frac, chars_rule, max_chars) in pieces {
            let (dups, dup_chars) = find_duplicates(parts.iter().copied());
            at_most(frac_rule, dups as f64 / parts.len() as f64, max_frac)?;
            at_most(chars_rule, dup_chars as f64 / chars, max_chars)?;
        }
        if self.top_n_grams.is_empty() && self.dup_n_grams.is_empty() {
            return Ok(());
        }
        let words = Words::new(text);
        for &(n, max) in &self.top_n_grams {
            if let Some(top) = words.top_n_gram_chars(n) {
                at_most(top_rule(n), top as f64 / chars, Some(max))?;
            }
        }
        // One table for every n: cleared, it keeps its capacity.
        let mut seen = FastSet::with_capacity_and_hasher(words.ids.len(), Default::default());
        for &(n, max) in &self.dup_n_grams {
            let repeated = words.repeated_n_gram_chars(n, &mut seen);
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

/// A document's words as small integers (equal words, equal ids), with their lengths and the
/// polynomial hashes of the prefixes of their concatenation (for comparing concatenations of
/// words).
struct Words {
    ids: Vec<u32>,
    lens: Vec<usize>,
    /// For each `k` in `0..=words`: the hash, mod [`PRIME`], and the byte length of the first `k`
    /// words concatenated.
    prefix: Vec<(u64, u64)>,
}

/// The Mersenne prime 2^61 - 1: the modulus of the polynomial hashes.
const PRIME: u64 = (1 << 61) - 1;
/// The polynomial hashes' base.
const BASE: u64 = 0x1F3D_5B79_A3C5_E7F1 % PRIME;
/// The most powers of [`BASE`] tabulated for one document; spans of n-grams longer than this (in
/// bytes) get their power by repeated squaring.
const MAX_POWERS: usize = 1 << 12;

/// `a + b mod PRIME` for `a, b < PRIME`.
fn add_mod(a: u64, b: u64) -> u64 {
    let r = a + b;
    if r >= PRIME { r - PRIME } else { r }
}

/// `a - b mod PRIME` for `a, b < PRIME`.
fn sub_mod(a: u64, b: u64) -> u64 {
    if a >= b { a - b } else { a + PRIME - b }
}

/// `a * b mod PRIME` for `a, b < PRIME`, by the Mersenne reduction.
fn mul_mod(a: u64, b: u64) -> u64 {
    let x = u128::from(a) * u128::from(b);
    let r = (x as u64 & PRIME) + (x >> 61) as u64;
    if r >= PRIME { r - PRIME } else { r }
}

/// `BASE^exp mod PRIME`, by repeated squaring.
fn pow_mod(mut exp: u64) -> u64 {
    let (mut result, mut base) = (1, BASE);
    while exp > 0 {
        if exp & 1 == 1 {
            result = mul_mod(result, base);
        }
        base = mul_mod(base, base);
        exp >>= 1;
    }
    result
}

/// Polynomial hash of `bytes` and `BASE^len`, mod [`PRIME`]; the hash of a concatenation
/// `a b` is `hash(a) * BASE^len(b) + hash(b)`.
fn poly_hash(bytes: &[u8]) -> (u64, u64) {
    bytes.iter().fold((0, 1), |(h, p), &b| {
        (
            add_mod(mul_mod(h, BASE), u64::from(b) + 1),
            mul_mod(p, BASE),
        )
    })
}

impl Words {
    fn new(text: &str) -> Self {
        let mut interned: FastMap<&str, u32> = FastMap::default();
        // Per distinct word, by id: its character length and its hash, `BASE^bytes` and bytes.
        let mut distinct: Vec<(usize, (u64, u64, u64))> = Vec::new();
        let (mut ids, mut lens, mut prefix) = (Vec::new(), Vec::new(), vec![(0, 0)]);
        for w in split_words(text) {
            let id = *interned.entry(w).or_insert_with(|| {
                let (h, p) = poly_hash(w.as_bytes());
                distinct.push((char_len(w), (h, p, w.len() as u64)));
                (distinct.len() - 1) as u32
            });
            let (len, (h, p, bytes)) = distinct[id as usize];
            let (before, before_bytes) = prefix[prefix.len() - 1];
            ids.push(id);
            lens.push(len);
            prefix.push((add_mod(mul_mod(before, p), h), before_bytes + bytes));
        }
        Self { ids, lens, prefix }
    }

    /// Characters of the most frequent n-gram (words joined by spaces) times its count; ties go
    /// to the n-gram seen first, as `Counter.most_common(1)`. `None` without any n-gram.
    fn top_n_gram_chars(&self, n: usize) -> Option<usize> {
        if n == 0 || self.ids.len() < n {
            return None;
        }
        // Up to four 32-bit ids fit one `u128` key, cheaper to hash and compare than a slice.
        let (count, first) = if n <= 4 {
            self.most_frequent(n, |gram| {
                gram.iter()
                    .fold(0u128, |key, &id| (key << 32) | u128::from(id))
            })
        } else {
            self.most_frequent(n, |gram| gram)
        }?;
        let chars: usize = self.lens[first..first + n].iter().sum::<usize>() + n - 1;
        Some(chars * count)
    }

    /// The count and first position of the most frequent n-gram, n-grams compared by `key`;
    /// ties go to the one seen first.
    fn most_frequent<'a, K: std::hash::Hash + Eq>(
        &'a self,
        n: usize,
        key: impl Fn(&'a [u32]) -> K,
    ) -> Option<(usize, usize)> {
        let mut counts: FastMap<K, (usize, usize)> =
            FastMap::with_capacity_and_hasher(self.ids.len(), Default::default());
        for (i, gram) in self.ids.windows(n).enumerate() {
            counts.entry(key(gram)).or_insert((0, i)).0 += 1;
        }
        counts
            .into_values()
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
    }

    /// Characters in n-grams that repeat an earlier one, skipping past each repeat, as
    /// datatrove's `find_all_duplicate`, which compares n-grams as their words concatenated
    /// without separators (so `ab c` repeats `a bc`): compared here by polynomial hash and byte
    /// length of that concatenation.
    /// `seen` is scratch space, cleared first.
    fn repeated_n_gram_chars(&self, n: usize, seen: &mut FastSet<(u64, u64)>) -> usize {
        let words = self.ids.len();
        if n == 0 || words < n {
            return 0;
        }
        // The hash of words `i..j` concatenated is `prefix(j) - prefix(i) * BASE^bytes(i..j)`:
        // one multiplication per n-gram, with the powers tabulated up to the longest span.
        let span = |i: usize| self.prefix[i + n].1 - self.prefix[i].1;
        let longest = (0..=words - n).map(span).max().unwrap_or(0);
        let tabulated = usize::try_from(longest).map_or(MAX_POWERS, |l| l.min(MAX_POWERS));
        let powers: Vec<u64> = std::iter::successors(Some(1), |&p| Some(mul_mod(p, BASE)))
            .take(tabulated + 1)
            .collect();
        let gram = |i: usize| {
            let bytes = span(i);
            let power = usize::try_from(bytes)
                .ok()
                .and_then(|b| powers.get(b).copied())
                .unwrap_or_else(|| pow_mod(bytes));
            let (start, end) = (self.prefix[i].0, self.prefix[i + n].0);
            (sub_mod(end, mul_mod(start, power)), bytes)
        };
        seen.clear();
        let (mut repeated, mut i) = (0, 0);
        while i + n <= words {
            if seen.insert(gram(i)) {
                i += 1;
            } else {
                repeated += self.lens[i..i + n].iter().sum::<usize>();
                i += n;
            }
        }
        repeated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Characters in repeated n-grams found by comparing the concatenated words themselves, as
    /// datatrove's `find_all_duplicate` does: the oracle for the hashed comparison.
    fn reference_repeated(text: &str, n: usize) -> usize {
        let words = split_words(text);
        let mut seen = std::collections::HashSet::new();
        let (mut repeated, mut i) = (0, 0);
        while n > 0 && i + n <= words.len() {
            if seen.insert(words[i..i + n].concat()) {
                i += 1;
            } else {
                repeated += words[i..i + n].iter().map(|w| char_len(w)).sum::<usize>();
                i += n;
            }
        }
        repeated
    }

    /// The most frequent n-gram's characters times its count, by counting the n-grams joined by
    /// spaces, as datatrove's `find_top_duplicate` does: the oracle for counting word ids.
    fn reference_top(text: &str, n: usize) -> Option<usize> {
        let words = split_words(text);
        if n == 0 || words.len() < n {
            return None;
        }
        let grams: Vec<String> = words.windows(n).map(|g| g.join(" ")).collect();
        let count = |g: &String| grams.iter().filter(|h| *h == g).count();
        // Counter.most_common(1): the highest count, the first seen among equals.
        let most = grams.iter().map(count).max()?;
        let first = grams.iter().find(|g| count(g) == most)?;
        Some(char_len(first) * most)
    }

    proptest! {
        /// Few distinct words, so n-grams repeat, and concatenations that repeat across word
        /// boundaries (`ab a` and `a ba`).
        #[test]
        fn hashed_n_grams_repeat_exactly_where_their_concatenations_do(
            text in "((a|b|ab|ba|é|aé) ){0,40}",
            n in 1usize..7,
        ) {
            prop_assert_eq!(Words::new(&text).repeated_n_gram_chars(n, &mut FastSet::default()), reference_repeated(&text, n));
        }

        /// Counting word ids counts as the joined n-grams do, ties included.
        #[test]
        fn top_n_grams_count_as_joined_strings_do(
            text in "((a|b|ab|ba|é) ){0,30}",
            n in 0usize..7,
        ) {
            prop_assert_eq!(Words::new(&text).top_n_gram_chars(n), reference_top(&text, n));
        }
    }

    #[test]
    fn spans_longer_than_the_power_table_compare_the_same() {
        let long = "x".repeat(MAX_POWERS + 7);
        let text = format!("{long} y {long} y z {long} y");
        for n in 1..5 {
            assert_eq!(
                Words::new(&text).repeated_n_gram_chars(n, &mut FastSet::default()),
                reference_repeated(&text, n),
                "{n}"
            );
        }
        assert!(reference_repeated(&text, 2) > 2 * MAX_POWERS);
    }

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
        // One scratch set for every call, as `check` uses it.
        let mut seen = FastSet::default();
        // 3-grams: "a b a" then "b a b", then "a b a" repeats at 2 (skip 3), "c" left.
        assert_eq!(w.repeated_n_gram_chars(3, &mut seen), 3);
        // Concatenations compare, not word tuples: "ab c" repeats "a bc" (3 characters).
        assert_eq!(
            Words::new("a bc x ab c").repeated_n_gram_chars(2, &mut seen),
            3
        );
        assert_eq!(
            Words::new("a bc x ab d").repeated_n_gram_chars(2, &mut seen),
            0
        );
        assert_eq!(
            Words::new("a bc x ab d").repeated_n_gram_chars(1, &mut seen),
            0
        );
        assert_eq!(split_runs("a\n\nb\n\n\nc\nd", 2), ["a", "b", "c\nd"]);
        assert_eq!(split_runs("\na\n", 1), ["", "a", ""]);
    }
}
