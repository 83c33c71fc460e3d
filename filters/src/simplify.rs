//! Datatrove's `simplify_text` with its default `TextNormConfig` (lowercase, every number
//! written as `0`, punctuation as spaces, runs of whitespace as one space, diacritics removed by
//! NFD without nonspacing marks, trimmed), and the words datatrove's MinHash takes from it.

use std::sync::LazyLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

use crate::words::{for_each_word, py_isspace};

/// Digits, with one decimal part after `.`, `,` or an Arabic or other decimal separator.
static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\p{Nd}+(?:[.,،٫⎖⎗⎘]\p{Nd}+)?").expect("valid pattern"));

/// Nonspacing marks (general category Mn), the diacritics NFD splits off.
static NONSPACING_MARKS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\p{Mn}+").expect("valid pattern"));

/// The non-ASCII part of datatrove's `PUNCTUATION`: each becomes a space.
const PUNCTUATION: &str = "«´»–—’“”„…∶━►、。〈〉《》「」【】！％（），．１：；？～";

/// Whether datatrove's `simplify_text` turns `c` into a space: every ASCII punctuation
/// character, the control characters U+0000–U+0008, U+000B–U+001F and U+007F–U+009F (tab and
/// line feed are whitespace instead), and a few dozen others. Narrower than
/// [`crate::words::is_datatrove_punctuation`], which adds terminal punctuation.
pub fn is_simplified_away(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_punctuation() || (c.is_ascii_control() && !matches!(c, '\t' | '\n'));
    }
    matches!(c, '\u{80}'..='\u{9f}') || PUNCTUATION.contains(c)
}

/// `text` simplified as datatrove's `simplify_text` does by default.
pub fn simplify_text(text: &str) -> String {
    let lower = text.to_lowercase();
    let numbered = NUMBER.replace_all(&lower, "0");
    let mut spaced = String::with_capacity(numbered.len());
    for word in numbered
        .split(|c: char| py_isspace(c) || is_simplified_away(c))
        .filter(|w| !w.is_empty())
    {
        if !spaced.is_empty() {
            spaced.push(' ');
        }
        spaced.push_str(word);
    }
    if spaced.is_ascii() {
        return spaced;
    }
    let decomposed: String = spaced.nfd().collect();
    NONSPACING_MARKS
        .replace_all(&decomposed, "")
        .trim_matches(py_isspace)
        .to_string()
}

/// Calls `each` with every word datatrove's MinHash shingles `text` into: the spaCy words
/// ([`crate::words`]) of the simplified text.
pub fn for_each_simplified_word(text: &str, each: &mut dyn FnMut(&str)) {
    for_each_word(&simplify_text(text), each);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values printed by `datatrove.utils.text.simplify_text`.
    #[test]
    fn matches_datatrove() {
        for (text, expect) in [
            (
                "  Hello, World!\n\tIt's 3.14 or 2,5 (1999-2024)  ",
                "hello world it s 0 or 0 0 0",
            ),
            (
                "Café Ünïcode — naïve… «quoted»",
                "cafe unicode naive quoted",
            ),
            ("£5bn §12 ‘tis ©2024 ¿qué?", "£0bn §0 ‘tis ©0 ¿que"),
            ("a\u{1}b\u{85}c\u{a0}d\u{1c}e", "a b c d e"),
            ("ΣΊΣΥΦΟΣ", "σισυφος"),
            ("", ""),
        ] {
            assert_eq!(simplify_text(text), expect, "{text:?}");
        }
    }

    #[test]
    fn what_goes() {
        assert!(is_simplified_away('\u{0}') && is_simplified_away('\u{1f}'));
        assert!(is_simplified_away('…') && is_simplified_away('_'));
        assert!(!is_simplified_away('\t') && !is_simplified_away('\n'));
        assert!(!is_simplified_away('§') && !is_simplified_away('£') && !is_simplified_away('‘'));
    }

    /// Expected words printed by `spacy.blank("en")` (3.8), as datatrove splits the simplified
    /// text: contractions written without an apostrophe, units after numbers, kept symbols.
    #[test]
    fn words_match_spacy() {
        for (text, expect) in [
            ("I don't think I'd go", "i don t think i d go"),
            ("i dont think id go", "i do nt think i d go"),
            ("we cannot say wed gonna", "we can not say we d gon na"),
            (
                "it is 0m long and 0km wide 0kmh",
                "it is 0 m long and 0 km wide 0 kmh",
            ),
            ("£0bn and ‘quoted‘ §0", "£ 0bn and ‘ quoted ‘ § 0"),
            ("a©b ©c d© 0£", "a © b © c d © 0 £"),
            ("‘s theres m0m", "‘s there s m0 m"),
        ] {
            let mut words = Vec::new();
            for_each_simplified_word(text, &mut |w| words.push(w.to_string()));
            assert_eq!(words.join(" "), expect, "{text:?}");
        }
    }
}
