//! Character classes of the tokenizer and of datatrove's punctuation rules.

use super::tables::{ICONS, PUNCTUATION, TERMINAL_PUNCTUATION};

fn in_ranges(c: char, ranges: &[(u32, u32)]) -> bool {
    let c = c as u32;
    ranges
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Python's `str.isspace` for one character: Unicode whitespace plus the ASCII separators
/// U+001C..U+001F, which Rust does not count as whitespace.
#[inline]
pub(crate) fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// spaCy's `LIST_ICONS`: a symbol split off as its own token.
pub(super) fn is_icon(c: char) -> bool {
    c as u32 >= 0xA6 && in_ranges(c, ICONS)
}

/// One of datatrove's `TERMINAL_PUNCTUATION` characters (`.`, `!`, `?`, `。` and ~150 more).
pub fn is_terminal_punctuation(c: char) -> bool {
    match c {
        '.' | '!' | '?' => true,
        _ if c.is_ascii() => false,
        _ => in_ranges(c, TERMINAL_PUNCTUATION),
    }
}

/// One of datatrove's `PUNCTUATION_SET` characters (ASCII punctuation, control characters and
/// the terminal punctuation of many scripts).
pub fn is_datatrove_punctuation(c: char) -> bool {
    in_ranges(c, PUNCTUATION)
}

/// spaCy's `is_punct` for a token: every character is in a Unicode punctuation category (P*).
/// Exact for ASCII and the common punctuation blocks.
pub(crate) fn is_punct_token(token: &str) -> bool {
    !token.is_empty() && token.chars().all(is_unicode_punctuation)
}

fn is_unicode_punctuation(c: char) -> bool {
    match c {
        '!'..='#' | '%'..='*' | ','..='/' | ':' | ';' | '?' | '@' | '['..=']' | '_' | '{' | '}' => {
            true
        }
        _ if c.is_ascii() => false,
        _ => in_ranges(c, UNICODE_PUNCTUATION),
    }
}

/// Non-ASCII characters of Unicode general category P* in the Latin, General Punctuation,
/// CJK, Arabic, Devanagari and full-width blocks.
const UNICODE_PUNCTUATION: &[(u32, u32)] = &[
    (0xA1, 0xA1),
    (0xA7, 0xA7),
    (0xAB, 0xAB),
    (0xB6, 0xB7),
    (0xBB, 0xBB),
    (0xBF, 0xBF),
    (0x37E, 0x37E),
    (0x387, 0x387),
    (0x55A, 0x55F),
    (0x589, 0x58A),
    (0x60C, 0x60D),
    (0x61B, 0x61B),
    (0x61D, 0x61F),
    (0x66A, 0x66D),
    (0x6D4, 0x6D4),
    (0x964, 0x965),
    (0x970, 0x970),
    (0x2010, 0x2027),
    (0x2030, 0x2043),
    (0x2045, 0x2051),
    (0x2053, 0x205E),
    (0x207D, 0x207E),
    (0x208D, 0x208E),
    (0x2308, 0x230B),
    (0x2329, 0x232A),
    (0x2768, 0x2775),
    (0x27C5, 0x27C6),
    (0x27E6, 0x27EF),
    (0x2E00, 0x2E2E),
    (0x2E30, 0x2E4F),
    (0x3001, 0x3003),
    (0x3008, 0x3011),
    (0x3014, 0x301F),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x30A0, 0x30A0),
    (0x30FB, 0x30FB),
    (0xFE10, 0xFE19),
    (0xFE30, 0xFE52),
    (0xFE54, 0xFE61),
    (0xFE63, 0xFE63),
    (0xFE68, 0xFE68),
    (0xFE6A, 0xFE6B),
    (0xFF01, 0xFF03),
    (0xFF05, 0xFF0A),
    (0xFF0C, 0xFF0F),
    (0xFF1A, 0xFF1B),
    (0xFF1F, 0xFF20),
    (0xFF3B, 0xFF3D),
    (0xFF3F, 0xFF3F),
    (0xFF5B, 0xFF5B),
    (0xFF5D, 0xFF5D),
    (0xFF5F, 0xFF65),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_agree_with_python() {
        // Python: '$+<=>^`|~' are symbols (S*), not punctuation.
        assert!(
            "!\"#%&'()*,-./:;?@[\\]_{}"
                .chars()
                .all(is_unicode_punctuation)
        );
        assert!(!"$+<=>^`|~a1 ".chars().any(is_unicode_punctuation));
        assert!(is_punct_token("...") && is_punct_token("—") && !is_punct_token("a."));
        assert!(py_isspace('\u{1c}') && py_isspace('\u{a0}') && !py_isspace('\u{200b}'));
        assert!(is_terminal_punctuation('。') && !is_terminal_punctuation(','));
        assert!(is_datatrove_punctuation('\u{7}') && is_datatrove_punctuation('»'));
        assert!(!is_datatrove_punctuation('a') && !is_datatrove_punctuation('\t'));
        assert!(is_icon('©') && is_icon('°') && !is_icon('a'));
    }
}
