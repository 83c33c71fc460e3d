//! Shingles: the overlapping n-grams of a text, each hashed to 64 bits with xxh3.
//!
//! Word shingles see a text as its words: maximal runs of alphanumeric characters, lowercased,
//! with diacritics removed and every number (digits, with an optional `.` or `,` decimal part)
//! written as `0`, so punctuation, case, spacing, accents and changed numbers (dates, counters,
//! prices) do not hide a duplicate. These are the text simplifications of datatrove and FineWeb.
//! Words are found by a scan that classifies ASCII bytes without decoding them, and a word of
//! lower-case ASCII letters is hashed where it lies. Character shingles see the lowercased text
//! as a sequence of characters. A text with fewer than `n` units has one shingle of all of them;
//! a text with none (empty, or only punctuation) has no shingles.

use std::ops::Range;

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
    // A number continues across one `.` or `,` into more digits: "3.14" is one number.
    let mut previous_was_number = false;
    let mut end = 0;
    while let Some(token) = next_token(text, end) {
        let separator = &text[end..token.start];
        end = token.end;
        let letters = &text[token];
        let is_number = letters.chars().all(char::is_numeric);
        if is_number && previous_was_number && matches!(separator, "." | ",") {
            continue;
        }
        previous_was_number = is_number;
        // Lower-case ASCII letters are their own simplification.
        if letters.bytes().all(|b| b.is_ascii_lowercase()) {
            words.push(xxh3_64(letters.as_bytes()));
            continue;
        }
        simplify_word(letters, &mut word);
        words.push(xxh3_64(word.as_bytes()));
    }
    window_hashes(&words, n, out);
}

/// The byte range of the first token (maximal run of alphanumeric characters) of `text` at or
/// after byte `from` (a character boundary). ASCII bytes are classified without decoding; other
/// characters by `char::is_alphanumeric`.
fn next_token(text: &str, from: usize) -> Option<Range<usize>> {
    let mut start = from;
    loop {
        let (alphanumeric, len) = char_at(text, start)?;
        if alphanumeric {
            break;
        }
        start += len;
    }
    let mut end = start;
    while let Some((true, len)) = char_at(text, end) {
        end += len;
    }
    Some(start..end)
}

/// Whether the character at byte `i` of `text` (a character boundary) is alphanumeric, and its
/// length in bytes; `None` at the end.
#[inline(always)]
fn char_at(text: &str, i: usize) -> Option<(bool, usize)> {
    let b = *text.as_bytes().get(i)?;
    if b.is_ascii() {
        return Some((b.is_ascii_alphanumeric(), 1));
    }
    let c = text[i..].chars().next()?;
    Some((c.is_alphanumeric(), c.len_utf8()))
}

/// `token` lowercased, without diacritics, each run of digits written as `0`.
fn simplify_word(token: &str, out: &mut String) {
    out.clear();
    // ASCII needs no decoding.
    if token.is_ascii() {
        simplify_chars(token.bytes().map(char::from), out);
    } else {
        simplify_chars(token.chars(), out);
    }
}

/// [`simplify_word`] over a token's characters, appended to `out`.
#[inline(always)]
fn simplify_chars(chars: impl Iterator<Item = char>, out: &mut String) {
    let mut in_number = false;
    for c in chars {
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
    // Window i's bytes are bytes[8i..8(i + n)] of all the units' bytes, laid out once.
    let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_le_bytes()).collect();
    let width = 8 * n.min(units.len());
    for start in (0..=bytes.len() - width).step_by(8) {
        out.push(xxh3_64_with_seed(&bytes[start..start + width], n as u64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Word shingles as they were found before the ASCII scan: every token by
    /// `char::is_alphanumeric` over decoded characters.
    fn word_shingles_by_chars(text: &str, n: usize) -> Vec<u64> {
        let mut words: Vec<u64> = Vec::new();
        let mut word = String::new();
        let mut rest = text;
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
        windows_one_by_one(&words, n)
    }

    /// Window hashes as they were computed before the units' bytes were laid out once: each
    /// window's bytes copied out and hashed.
    fn windows_one_by_one(units: &[u64], n: usize) -> Vec<u64> {
        let mut out = Vec::new();
        for window in units.windows(n.min(units.len()).max(1)) {
            let bytes: Vec<u8> = window.iter().flat_map(|u| u.to_le_bytes()).collect();
            out.push(xxh3_64_with_seed(&bytes, n as u64));
        }
        out
    }

    proptest! {
        /// The byte scan finds the tokens, numbers and words that decoding every character
        /// finds, in ASCII, in mixed text (accents, other scripts, Unicode digits and letters
        /// whose lowercase is longer) and in any string.
        #[test]
        fn the_ascii_scan_finds_the_same_shingles(
            mixed in "[a-zA-Z0-9 .,;\\-\n\téÉßİ²½٣\u{301}\u{a0}日本]{0,80}",
            any_text in any::<String>(),
            n in 1usize..6,
        ) {
            for text in [&mixed, &any_text] {
                let mut got = Vec::new();
                word_shingles(text, n, &mut got);
                prop_assert_eq!(got, word_shingles_by_chars(text, n), "{:?}", text);
            }
        }

        /// Windows hashed from the bytes laid out once are the windows hashed one by one, for
        /// fewer units than `n` too.
        #[test]
        fn windows_are_hashed_as_copied_out(
            units in proptest::collection::vec(any::<u64>(), 0..40),
            n in 1usize..8,
        ) {
            let mut got = Vec::new();
            window_hashes(&units, n, &mut got);
            let want = if units.is_empty() { Vec::new() } else { windows_one_by_one(&units, n) };
            prop_assert_eq!(got, want);
        }
    }

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
