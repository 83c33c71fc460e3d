//! Shingles: the overlapping n-grams of a text, each hashed to 64 bits with xxh3.
//!
//! Word shingles see a text as its words: maximal runs of alphanumeric characters, lowercased,
//! with diacritics removed and every number (digits, with an optional `.` or `,` decimal part)
//! written as `0`, so punctuation, case, spacing, accents and changed numbers (dates, counters,
//! prices) do not hide a duplicate. These are the text simplifications of datatrove and FineWeb. Character shingles see the
//! lowercased text as a sequence of characters. A text with fewer than `n` units has one shingle
//! of all of them; a text with none (empty, or only punctuation) has no shingles.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use crate::datatrove::WordSplitter;

/// What a shingle is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shingling {
    /// `n` consecutive words.
    Words(usize),
    /// `n` consecutive characters.
    Chars(usize),
    /// `n` consecutive words of a given splitter, joined by spaces and hashed with xxh64, as
    /// datatrove's MinHash shingles ([`crate::datatrove`]).
    JoinedWords(usize, WordSplitter),
}

/// Appends the hashes of `text`'s shingles to `out` (unsorted, possibly repeated).
pub fn shingle_hashes(text: &str, shingling: Shingling, out: &mut Vec<u64>) {
    match shingling {
        Shingling::Words(n) => word_shingles(text, n.max(1), out),
        Shingling::Chars(n) => char_shingles(text, n.max(1), out),
        Shingling::JoinedWords(n, words) => {
            crate::datatrove::shingle_hashes(text, n.max(1), words, out)
        }
    }
}

/// The sorted, distinct shingle hashes of `text`: its shingle set.
pub fn shingle_set(text: &str, shingling: Shingling) -> Vec<u64> {
    let mut set = Vec::new();
    shingle_hashes(text, shingling, &mut set);
    set.sort_unstable();
    set.dedup();
    set
}

fn word_shingles(text: &str, n: usize, out: &mut Vec<u64>) {
    let mut words: Vec<u64> = Vec::new();
    let mut word = String::new();
    let mut rest = text;
    // A number continues across one `.` or `,` into more digits: "3.14" is one number.
    let mut previous_was_number = false;
    while let Some(start) = rest.find(char::is_alphanumeric) {
        let separator = &rest[..start];
        let end = rest[start..]
            .find(|c: char| !c.is_alphanumeric())
            .map_or(rest.len(), |e| start + e);
        let token = &rest[start..end];
        rest = &rest[end..];
        let is_number = token.chars().all(|c| c.is_numeric());
        if is_number && previous_was_number && matches!(separator, "." | ",") {
            continue;
        }
        previous_was_number = is_number;
        simplify_word(token, &mut word);
        words.push(xxh3_64(word.as_bytes()));
    }
    window_hashes(&words, n, out);
}

/// `token` lowercased, without diacritics, each run of digits written as `0`.
fn simplify_word(token: &str, out: &mut String) {
    out.clear();
    let mut in_number = false;
    for c in token.chars() {
        if c.is_numeric() {
            if !in_number {
                out.push('0');
            }
            in_number = true;
            continue;
        }
        in_number = false;
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            out.extend(
                std::iter::once(c)
                    .nfd()
                    .filter(|d| !is_combining_mark(*d))
                    .flat_map(char::to_lowercase),
            );
        }
    }
}

fn char_shingles(text: &str, n: usize, out: &mut Vec<u64>) {
    let chars: Vec<u64> = text
        .chars()
        .flat_map(char::to_lowercase)
        .map(u64::from)
        .collect();
    window_hashes(&chars, n, out);
}

/// One hash per window of `n` units (one window of all units when there are fewer than `n`).
fn window_hashes(units: &[u64], n: usize, out: &mut Vec<u64>) {
    if units.is_empty() {
        return;
    }
    let mut bytes = Vec::with_capacity(8 * n);
    for window in units.windows(n.min(units.len())) {
        bytes.clear();
        window
            .iter()
            .for_each(|u| bytes.extend_from_slice(&u.to_le_bytes()));
        out.push(xxh3_64_with_seed(&bytes, n as u64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_ignore_case_punctuation_and_spacing() {
        let a = shingle_set("The quick, brown fox jumps!", Shingling::Words(2));
        let b = shingle_set("the  QUICK brown\nfox -- jumps", Shingling::Words(2));
        assert_eq!(a, b);
        assert_eq!(a.len(), 4);
        assert_ne!(
            a,
            shingle_set("the quick brown fox leaps", Shingling::Words(2))
        );
    }

    #[test]
    fn numbers_and_accents_are_simplified() {
        let w = Shingling::Words(2);
        assert_eq!(
            shingle_set("Paid 3.50 EUR on 2024-05-01 at Café", w),
            shingle_set("paid 12,99 eur on 1999-12-31 at cafe", w)
        );
        assert_ne!(
            shingle_set("paid 3 50 eur", w),
            shingle_set("paid 350 eur", w)
        );
        let mut word = String::new();
        simplify_word("Ünïcode42x7", &mut word);
        assert_eq!(word, "unicode0x0");
    }

    #[test]
    fn short_and_empty_texts() {
        assert_eq!(shingle_set("one two", Shingling::Words(5)).len(), 1);
        assert!(shingle_set(" ,.; ", Shingling::Words(5)).is_empty());
        assert_eq!(shingle_set("abcab", Shingling::Chars(2)).len(), 3);
        assert_eq!(
            shingle_set("Ab", Shingling::Chars(2)),
            shingle_set("aB", Shingling::Chars(2))
        );
    }
}
