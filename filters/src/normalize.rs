//! Text normalisation: Unicode NFC, control characters and whitespace.
//!
//! Each step is switched on by [`NormalizeOptions`]; all are on by default:
//! - `nfc`: compose to Unicode Normalization Form C.
//! - `strip_control`: drop C0/C1 control characters other than tab, `\n` and `\r`, and the
//!   byte-order mark U+FEFF.
//! - `whitespace`: turn `\r\n` and lone `\r` into `\n`; turn other Unicode space characters
//!   (no-break space, em space, ...) into a plain space; drop spaces and tabs at line ends; keep at
//!   most one blank line in a row; drop blank lines at the start and end. Indentation and runs of
//!   spaces inside a line are kept, so code survives.

use std::borrow::Cow;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// Which normalisation steps run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormalizeOptions {
    /// Compose to NFC.
    pub nfc: bool,
    /// Drop control characters other than `\t`, `\n` and `\r`, and the byte-order mark.
    pub strip_control: bool,
    /// Normalise line breaks, spaces and blank lines.
    pub whitespace: bool,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        Self {
            nfc: true,
            strip_control: true,
            whitespace: true,
        }
    }
}

/// Normalises `text`; borrows when nothing changes.
///
/// ```
/// use filters::normalize::{normalize, NormalizeOptions};
/// let text = "\u{FEFF}Cafe\u{301}  \r\n\r\n\r\nnext\u{0007} line\u{A0}end  \n";
/// assert_eq!(normalize(text, &NormalizeOptions::default()), "Café\n\nnext line end");
/// ```
pub fn normalize<'a>(text: &'a str, opts: &NormalizeOptions) -> Cow<'a, str> {
    let cleaned = if opts.strip_control || opts.whitespace {
        clean(text, opts)
    } else {
        Cow::Borrowed(text)
    };
    if !opts.nfc || cleaned.is_ascii() || is_nfc_quick(cleaned.chars()) == IsNormalized::Yes {
        return cleaned;
    }
    Cow::Owned(cleaned.nfc().collect())
}

fn is_dropped_control(c: char, opts: &NormalizeOptions) -> bool {
    opts.strip_control && (c == '\u{FEFF}' || (c.is_control() && !matches!(c, '\t' | '\n' | '\r')))
}

/// True when `clean` would change nothing (the common case, checked without allocating).
fn is_clean(text: &str, opts: &NormalizeOptions) -> bool {
    if opts.whitespace {
        let b = text.as_bytes();
        let ends_blank = matches!(b.last(), Some(b'\n' | b' ' | b'\t'));
        if b.first() == Some(&b'\n') || ends_blank || text.contains("\n\n\n") {
            return false;
        }
        if text.contains(" \n") || text.contains("\t\n") || text.contains('\r') {
            return false;
        }
    }
    if text.is_ascii() {
        // Byte scan (vectorises): ASCII has no odd spaces, and its controls are < 0x20 or 0x7f.
        let dropped = |b: u8| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f;
        return !opts.strip_control || !text.bytes().any(dropped);
    }
    !text
        .chars()
        .any(|c| is_dropped_control(c, opts) || (opts.whitespace && is_odd_space(c)))
}

fn is_odd_space(c: char) -> bool {
    !c.is_ascii() && c.is_whitespace()
}

fn clean<'a>(text: &'a str, opts: &NormalizeOptions) -> Cow<'a, str> {
    if is_clean(text, opts) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(mut c) = chars.next() {
        if is_dropped_control(c, opts) {
            continue;
        }
        if opts.whitespace {
            if c == '\r' {
                if chars.peek() == Some(&'\n') {
                    continue;
                }
                c = '\n';
            }
            if c == '\n' {
                out.truncate(out.trim_end_matches([' ', '\t']).len());
                // At most two line breaks in a row (one blank line), none at the start.
                let run = out.len() - out.trim_end_matches('\n').len();
                if run < 2 && !out.is_empty() {
                    out.push('\n');
                }
                continue;
            }
            if is_odd_space(c) {
                c = ' ';
            }
        }
        out.push(c);
    }
    if opts.whitespace {
        // Leading blank lines never reach `out` (a line break is only pushed after content).
        out.truncate(out.trim_end().len());
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all() -> NormalizeOptions {
        NormalizeOptions::default()
    }

    #[test]
    fn each_step_does_its_job() {
        assert_eq!(normalize("e\u{301}", &all()), "\u{e9}");
        assert_eq!(normalize("a\u{0}b\u{1b}[0mc\u{85}d", &all()), "ab[0mcd");
        assert_eq!(normalize("a\r\nb\rc", &all()), "a\nb\nc");
        assert_eq!(
            normalize("\n\n  x  \n\n\n\n\ty\t\n\n", &all()),
            "  x\n\n\ty"
        );
        assert_eq!(normalize("a\u{2003}b\u{3000}c", &all()), "a b c");
        assert_eq!(
            normalize("    indented  code", &all()),
            "    indented  code"
        );
    }

    #[test]
    fn steps_can_be_switched_off() {
        let none = NormalizeOptions {
            nfc: false,
            strip_control: false,
            whitespace: false,
        };
        let text = "e\u{301}\u{7}\r\n\n\n\n ";
        assert!(matches!(normalize(text, &none), Cow::Borrowed(_)));
        let nfc_only = NormalizeOptions { nfc: true, ..none };
        assert_eq!(normalize(text, &nfc_only), "\u{e9}\u{7}\r\n\n\n\n ");
        let keep_cr = NormalizeOptions {
            whitespace: false,
            ..all()
        };
        assert_eq!(normalize("a\r\nb\u{7}", &keep_cr), "a\r\nb");
    }

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(
            normalize("Plain text.\n\nTwo paragraphs.", &all()),
            Cow::Borrowed(_)
        ));
    }

    proptest! {
        #[test]
        fn normalisation_is_idempotent(text in "[a-c \\t\\r\\n\u{301}\u{7}\u{A0}é]{0,40}") {
            let once = normalize(&text, &all()).into_owned();
            let twice = normalize(&once, &all()).into_owned();
            prop_assert_eq!(&once, &twice);
            prop_assert!(!once.contains('\r') && !once.contains("\n\n\n") && !once.contains(" \n"));
        }
    }
}
