//! Unicode NFC, composing only the runs of a text that Unicode's quick check does not pass.

use std::sync::OnceLock;

use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

use super::scan::find_byte;

/// Every character below this one is a starter (combining class 0) that NFC keeps as it is.
const FIRST_NFC_SUSPECT: char = '\u{300}';

/// The UTF-8 lead byte of [`FIRST_NFC_SUSPECT`]: lead bytes from here on start characters at or
/// above it.
const FIRST_NFC_SUSPECT_BYTE: u8 = 0xCC;

/// True when `text` is certainly in NFC. Unicode's quick check carries no state past a plain
/// starter, so it only runs over the runs between them.
pub fn is_nfc(text: &str) -> bool {
    SuspectRuns::new(text).all(|run| passes_quick_check(&text[run]))
}

/// `text` in NFC. Only the runs that fail the quick check are composed, each together with the
/// plain starter before it (which such a run may compose with); the text splits before any plain
/// starter without changing the result, and the rest is copied as it is.
pub(super) fn to_nfc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for run in SuspectRuns::new(text) {
        if passes_quick_check(&text[run.clone()]) {
            continue;
        }
        let start = text[..run.start]
            .chars()
            .next_back()
            .map_or(run.start, |c| run.start - c.len_utf8());
        out.push_str(&text[copied..start]);
        out.extend(text[start..run.end].nfc());
        copied = run.end;
    }
    out.push_str(&text[copied..]);
    out
}

fn passes_quick_check(run: &str) -> bool {
    is_nfc_quick(run.chars()) == IsNormalized::Yes
}

/// The byte ranges of a text's maximal runs of characters that are not plain starters (see
/// [`is_plain_starter`]).
struct SuspectRuns<'a> {
    text: &'a str,
    /// Where the search for the next run starts.
    from: usize,
}

impl<'a> SuspectRuns<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, from: 0 }
    }
}

impl Iterator for SuspectRuns<'_> {
    type Item = std::ops::Range<usize>;

    fn next(&mut self) -> Option<Self::Item> {
        let text = self.text;
        loop {
            let from = self.from;
            let at = from + find_byte(&text.as_bytes()[from..], |b| b >= FIRST_NFC_SUSPECT_BYTE)?;
            // Non-Latin scripts are plain starters one after another: walk over them here rather
            // than search again from each one.
            let start = at + prefix_len(&text[at..], |c| !c.is_ascii() && is_plain_starter(c));
            let end = start + prefix_len(&text[start..], |c| !is_plain_starter(c));
            self.from = end;
            if end > start {
                return Some(start..end);
            }
        }
    }
}

/// The length in bytes of the longest prefix of `s` whose characters all satisfy `pred`.
fn prefix_len(s: &str, pred: impl Fn(char) -> bool) -> usize {
    s.char_indices()
        .find(|&(_, c)| !pred(c))
        .map_or(s.len(), |(i, _)| i)
}

/// True when `c` is a starter (combining class 0) that Unicode's NFC quick check passes: NFC
/// neither composes it with what comes before nor reorders across it, so a text splits before it
/// without changing its composition. All characters below U+0300 are; above, a table of the Basic
/// Multilingual Plane built once from `unicode_normalization` answers (Latin punctuation, Cyrillic,
/// CJK, ...), and the rest are treated as not plain.
fn is_plain_starter(c: char) -> bool {
    static TABLE: OnceLock<Vec<u64>> = OnceLock::new();
    if c < FIRST_NFC_SUSPECT {
        return true;
    }
    let Ok(c) = u16::try_from(u32::from(c)) else {
        return false;
    };
    let table = TABLE.get_or_init(|| {
        let mut bits = vec![0u64; 1 << 10];
        for code in 0..=u16::MAX {
            let Some(c) = char::from_u32(code.into()) else {
                continue;
            };
            if canonical_combining_class(c) == 0
                && is_nfc_quick(std::iter::once(c)) == IsNormalized::Yes
            {
                bits[usize::from(code >> 6)] |= 1 << (code & 63);
            }
        }
        bits
    });
    (table[usize::from(c >> 6)] >> (c & 63)) & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;
    use crate::normalize::tests::NFC_ONLY;
    use proptest::prelude::*;

    #[test]
    fn characters_below_the_first_nfc_suspect_are_plain_starters() {
        let first = FIRST_NFC_SUSPECT.to_string();
        assert_eq!(first.as_bytes()[0], FIRST_NFC_SUSPECT_BYTE);
        for c in '\0'..FIRST_NFC_SUSPECT {
            assert_eq!(canonical_combining_class(c), 0, "{c:?}");
            assert_eq!(is_nfc_quick(std::iter::once(c)), IsNormalized::Yes, "{c:?}");
            assert!(
                c.to_string().as_bytes()[0] < FIRST_NFC_SUSPECT_BYTE,
                "{c:?}"
            );
        }
    }

    #[test]
    fn plain_starters_above_u0300_come_from_the_table() {
        for c in [
            '\u{201C}', '\u{2014}', '\u{436}', '\u{65E5}', '\u{AC00}', '\u{FFFD}',
        ] {
            assert!(is_plain_starter(c), "{c:?}");
        }
        // Combining marks, jamo that compose with what precedes them, a singleton that NFC
        // replaces, and characters outside the Basic Multilingual Plane.
        for c in [
            '\u{301}',
            '\u{1161}',
            '\u{11A8}',
            '\u{212B}',
            '\u{1D15E}',
            '\u{1F600}',
        ] {
            assert!(!is_plain_starter(c), "{c:?}");
        }
    }

    proptest! {
        /// Composition across starters, reordering of marks, Hangul jamo, singletons and
        /// characters outside the Basic Multilingual Plane: composing only the runs that fail the
        /// quick check must give what composing the whole text gives.
        #[test]
        fn composing_runs_equals_composing_the_whole_text(
            text in "([a-z ]{0,6}(e|A|\u{c0}|\u{301}|\u{327}|\u{316}|\u{308}|\u{1e17}|\u{1100}|\u{1161}|\u{11a8}|\u{ac00}|\u{ac00}\u{11a8}|\u{1100}\u{1161}\u{11a8}|\u{212b}|\u{2126}|\u{1d15e}|\u{1d165}|\u{201c}|\u{65e5}|\u{436}|\u{915}|\u{93c})){0,12}",
        ) {
            let want = text.nfc().collect::<String>();
            prop_assert_eq!(normalize(&text, &NFC_ONLY), want.as_str());
            prop_assert_eq!(to_nfc(&text), want.as_str());
            // The quick check may answer "maybe" for text that is in NFC, never "yes" for text
            // that is not.
            prop_assert!(!is_nfc(&text) || want == text);
        }
    }
}
