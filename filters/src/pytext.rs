//! Python string semantics the reference filters rely on (`str.splitlines`, `str.strip`,
//! `len` in characters), so that rules measure exactly what datatrove measures.

use std::collections::{HashMap, HashSet};

use crate::words::py_isspace;

/// A hash map with foldhash's fixed-seed hasher: fast on the small keys the rules count
/// (words, n-gram hashes), and the same in every run.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;
/// A hash set with the same hasher as [`FastMap`].
pub type FastSet<K> = HashSet<K, foldhash::fast::FixedState>;

/// Python's `len(s)`: the number of Unicode scalar values.
pub fn char_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

/// Python's `s.strip()`.
pub fn strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// Python's `s.splitlines()`: lines without their terminators (`\n`, `\r`, `\r\n`, `\v`, `\f`,
/// `\x1c`..`\x1e`, `\x85`, U+2028, U+2029); no trailing empty line.
pub fn splitlines(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\u{b}'
                | '\u{c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if !is_break {
            continue;
        }
        lines.push(&s[start..i]);
        start = i + c.len_utf8();
        if c == '\r' && chars.peek().is_some_and(|&(_, n)| n == '\n') {
            chars.next();
            start += 1;
        }
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

/// datatrove's `find_duplicates`: how many elements repeat an earlier one, and their total
/// length in characters.
pub fn find_duplicates<'a>(items: impl IntoIterator<Item = &'a str>) -> (usize, usize) {
    let mut seen = FastSet::default();
    let (mut elements, mut chars) = (0, 0);
    for item in items {
        if !seen.insert(item) {
            elements += 1;
            chars += char_len(item);
        }
    }
    (elements, chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_python() {
        assert_eq!(splitlines("a\r\nb\rc\n\nd\n"), ["a", "b", "c", "", "d"]);
        assert_eq!(splitlines(""), Vec::<&str>::new());
        assert_eq!(splitlines("x\u{2028}y"), ["x", "y"]);
        assert_eq!(strip(" \u{1f}x y\n"), "x y");
        assert_eq!(char_len("héllo"), 5);
        assert_eq!(find_duplicates(["a", "bb", "a", "bb", "bb"]), (3, 5));
    }
}
