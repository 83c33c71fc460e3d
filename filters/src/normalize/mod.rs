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

mod clean;
mod nfc;
mod scan;

use std::borrow::Cow;

use clean::clean;
pub use nfc::is_nfc;
use nfc::to_nfc;

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

/// Normalises `text`. Borrows when nothing changes, and also when the result is a slice of
/// `text` (only outer blank lines removed): compare lengths to tell the two apart.
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
    if !opts.nfc || is_nfc(&cleaned) {
        return cleaned;
    }
    Cow::Owned(to_nfc(&cleaned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every step on.
    pub(super) fn all() -> NormalizeOptions {
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
        assert_eq!(normalize(text, &NFC_ONLY), "\u{e9}\u{7}\r\n\n\n\n ");
        let keep_cr = NormalizeOptions {
            whitespace: false,
            ..all()
        };
        assert_eq!(normalize("a\r\nb\u{7}", &keep_cr), "a\r\nb");
    }

    /// NFC and nothing else.
    pub(super) const NFC_ONLY: NormalizeOptions = NormalizeOptions {
        nfc: true,
        strip_control: false,
        whitespace: false,
    };

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
