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
use std::sync::OnceLock;

use unicode_normalization::char::canonical_combining_class;
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

/// Every character below this one is a starter (combining class 0) that NFC keeps as it is.
const FIRST_NFC_SUSPECT: char = '\u{300}';

/// The UTF-8 lead byte of [`FIRST_NFC_SUSPECT`]: lead bytes from here on start characters at or
/// above it.
const FIRST_NFC_SUSPECT_BYTE: u8 = 0xCC;

/// True when `text` is certainly in NFC. Unicode's quick check carries no state past a plain
/// starter, so it only runs over the runs between them.
fn is_nfc(text: &str) -> bool {
    SuspectRuns::new(text).all(|run| passes_quick_check(&text[run]))
}

/// `text` in NFC. Only the runs that fail the quick check are composed, each together with the
/// plain starter before it (which such a run may compose with); the text splits before any plain
/// starter without changing the result, and the rest is copied as it is.
fn to_nfc(text: &str) -> String {
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

/// The first position in `bytes` where `pred` holds, tested [`CHUNK`] bytes at a time without an
/// early exit inside a chunk, so that the test vectorises.
fn find_byte(bytes: &[u8], pred: impl Fn(u8) -> bool + Copy) -> Option<usize> {
    let chunk = bytes
        .chunks(CHUNK)
        .position(|c| c.iter().fold(false, |any, &b| any | pred(b)))?;
    let start = chunk * CHUNK;
    bytes[start..]
        .iter()
        .position(|&b| pred(b))
        .map(|i| start + i)
}

fn is_dropped_control(c: char, opts: &NormalizeOptions) -> bool {
    opts.strip_control && (c == '\u{FEFF}' || (c.is_control() && !matches!(c, '\t' | '\n' | '\r')))
}

fn is_odd_space(c: char) -> bool {
    !c.is_ascii() && c.is_whitespace()
}

/// True when `c` is changed by the per-character rules (dropped or mapped to a space).
fn is_changed_char(c: char, opts: &NormalizeOptions) -> bool {
    is_dropped_control(c, opts) || (opts.whitespace && is_odd_space(c))
}

/// Bytes looked at together by the chunked scans ([`plain_chunk`], [`find_byte`], [`stop_mask`]).
const CHUNK: usize = 32;

/// Lead bytes of the only non-ASCII characters the rules can change: C1 controls, U+0085 and
/// U+00A0 (0xC2), the Unicode spaces (0xE1-0xE3) and the byte-order mark (0xEF).
fn is_rule_lead_byte(c: u8) -> bool {
    (c == 0xC2) | (0xE1..=0xE3).contains(&c) | (c == 0xEF)
}

/// Where the rules first change a byte of `text` ([`changed_at`]), or `None`; spaces at the
/// text's end, which [`clean`] checks itself, are not seen here. One pass over the bytes, without
/// allocating: chunks of [`CHUNK`] bytes that hold nothing the rules might touch are passed in a
/// few vector instructions ([`plain_chunk`]); the rest are looked at byte by byte
/// ([`changed_at`]).
fn first_change(text: &str, opts: &NormalizeOptions) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let end = (i + CHUNK).min(b.len());
        let fast = i >= 2 && <&[u8; CHUNK + 2]>::try_from(&b[i - 2..end]).is_ok_and(plain_chunk);
        if !fast && let Some(at) = (i..end).find(|&j| changed_at(text, j, opts)) {
            return Some(at);
        }
        i = end;
    }
    None
}

/// True when no byte of `window[2..]` can be changed under any options: printable ASCII, tab,
/// non-ASCII bytes other than the lead bytes [`changed_at`] looks behind, and line breaks that
/// follow neither a space, a tab nor a blank line (`window[..2]` are the two bytes before the
/// chunk). No early exit, so the loop vectorises.
fn plain_chunk(window: &[u8; CHUNK + 2]) -> bool {
    let mut plain = true;
    for i in 2..CHUNK + 2 {
        let (c, p1, p2) = (window[i], window[i - 1], window[i - 2]);
        let printable = (0x20..0x7f).contains(&c) | (c == b'\t');
        let line_break =
            (c == b'\n') & (p1 != b' ') & (p1 != b'\t') & !((p1 == b'\n') & (p2 == b'\n'));
        let other = (c >= 0x80) & !is_rule_lead_byte(c);
        plain &= printable | line_break | other;
    }
    plain
}

/// True when the rules change the text at byte `i` of `text`.
fn changed_at(text: &str, i: usize, opts: &NormalizeOptions) -> bool {
    let b = text.as_bytes();
    match b[i] {
        0x20..=0x7e | b'\t' => false,
        b'\n' => {
            let before = |k: usize| i.checked_sub(k).map(|j| b[j]);
            opts.whitespace
                && (matches!(before(1), Some(b' ' | b'\t'))
                    || (before(1) == Some(b'\n') && before(2) == Some(b'\n')))
        }
        b'\r' => opts.whitespace,
        c if is_rule_lead_byte(c) => text[i..]
            .chars()
            .next()
            .is_some_and(|ch| is_changed_char(ch, opts)),
        0x80.. => false,
        _ => opts.strip_control,
    }
}

fn clean<'a>(text: &'a str, opts: &NormalizeOptions) -> Cow<'a, str> {
    if !opts.whitespace {
        return match first_change(text, opts) {
            None => Cow::Borrowed(text),
            Some(_) => Cow::Owned(rewrite(text, opts)),
        };
    }
    // Most texts that need work only have blank lines around them (a file's final line break):
    // the clean text is then a slice of the input. The text after its leading blank lines is
    // scanned first, and its end looked at only after the scan has brought it into the cache.
    let body = without_leading_blank_lines(text);
    let unchanged = first_change(body, opts).unwrap_or(body.len());
    let inner = body.trim_end_matches([' ', '\t', '\r', '\n']);
    if unchanged >= inner.len() && inner.trim_end().len() == inner.len() {
        return Cow::Borrowed(inner);
    }
    Cow::Owned(rewrite(text, opts))
}

/// `text` from the start of its first line that is not blank (or from its end).
fn without_leading_blank_lines(text: &str) -> &str {
    let lead = text.len() - text.trim_start_matches([' ', '\t', '\r', '\n']).len();
    let start = text[..lead].rfind(['\n', '\r']).map_or(0, |i| i + 1);
    &text[start..]
}

/// `text` with every rule applied, in one pass: runs of bytes no rule touches are copied whole,
/// and the bytes between them ([`is_stop_byte`]), found [`CHUNK`] bytes at a time
/// ([`stop_mask`]), are dropped, replaced, or end a line.
fn rewrite(text: &str, opts: &NormalizeOptions) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut line = LineEnds::default();
    // Bytes of `text` before this one are written (or dropped).
    let mut copied = 0;
    for chunk in (0..b.len()).step_by(CHUNK) {
        let mut stops = stop_mask(&b[chunk..(chunk + CHUNK).min(b.len())]);
        while stops != 0 {
            let at = chunk + stops.trailing_zeros() as usize;
            stops &= stops - 1;
            if at < copied {
                continue; // the `\n` of a `\r\n` already read
            }
            out.push_str(&text[copied..at]);
            copied = match b[at] {
                b'\r' | b'\n' if opts.whitespace => {
                    line.end(&mut out);
                    at + if b[at..].starts_with(b"\r\n") { 2 } else { 1 }
                }
                _ => {
                    let c = text[at..]
                        .chars()
                        .next()
                        .expect("a stop byte starts a character");
                    if !is_dropped_control(c, opts) {
                        out.push(if opts.whitespace && is_odd_space(c) {
                            ' '
                        } else {
                            c
                        });
                    }
                    at + c.len_utf8()
                }
            };
        }
    }
    out.push_str(&text[copied..]);
    if opts.whitespace {
        line.end(&mut out);
        out.truncate(out.trim_end().len());
    }
    out
}

/// Where the line being written began, for [`rewrite`]'s whitespace rules: spaces and tabs at a
/// line's end are dropped, and a line left empty is dropped with its break, so that at most one
/// blank line stays in a row.
#[derive(Default)]
struct LineEnds {
    /// Length of the output before this line's break was written.
    mark: usize,
    /// Where this line's content starts in the output.
    start: usize,
    /// Line breaks since the last line with content; at most two are written.
    breaks: usize,
}

impl LineEnds {
    /// Ends the line being written and begins the next.
    fn end(&mut self, out: &mut String) {
        let kept = out.as_bytes()[self.start..]
            .iter()
            .rposition(|&c| c != b' ' && c != b'\t')
            .map_or(0, |i| i + 1);
        if kept == 0 {
            out.truncate(self.mark);
        } else {
            out.truncate(self.start + kept);
            self.breaks = 0;
        }
        self.breaks += 1;
        self.mark = out.len();
        if !out.is_empty() {
            out.push_str(&"\n\n"[..self.breaks.min(2)]);
        }
        self.start = out.len();
    }
}

/// Bytes where [`rewrite`] stops copying: C0 controls but tab (line breaks among them), DEL, and
/// the lead bytes of the non-ASCII characters the rules change.
fn is_stop_byte(c: u8) -> bool {
    (c < 0x20) & (c != b'\t') | (c == 0x7f) | is_rule_lead_byte(c)
}

/// Bit `i` set when byte `i` of `chunk` (at most [`CHUNK`] bytes) is a stop byte. The bytes are
/// tested without branches (which vectorises) into one flag byte each, and each 8 flags are
/// gathered into 8 bits by one multiplication ([`gather_flags`]).
fn stop_mask(chunk: &[u8]) -> u32 {
    let mut flags = [0u8; CHUNK];
    for (flag, &c) in flags.iter_mut().zip(chunk) {
        *flag = u8::from(is_stop_byte(c));
    }
    flags
        .chunks_exact(8)
        .enumerate()
        .fold(0, |mask, (k, eight)| {
            mask | gather_flags(eight.try_into().expect("8 bytes")) << (8 * k)
        })
}

/// The low bits of 8 flag bytes (each 0 or 1) as one byte, flag `k` in bit `k`: the
/// multiplication moves flag `k` (bit `8k`) to bit `56 + k`, and every other product lands
/// below bit 56 (without carrying into it) or above bit 63.
fn gather_flags(eight: [u8; 8]) -> u32 {
    let shifted = u64::from_le_bytes(eight).wrapping_mul(0x0102_0408_1020_4080) >> 56;
    u32::try_from(shifted).expect("8 bits")
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
        assert_eq!(normalize(text, &NFC_ONLY), "\u{e9}\u{7}\r\n\n\n\n ");
        let keep_cr = NormalizeOptions {
            whitespace: false,
            ..all()
        };
        assert_eq!(normalize("a\r\nb\u{7}", &keep_cr), "a\r\nb");
    }

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

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(
            normalize("Plain text.\n\nTwo paragraphs.", &all()),
            Cow::Borrowed(_)
        ));
    }

    /// The rules written as plainly as possible, one character at a time: the oracle the fast
    /// line-wise `clean` must match.
    fn reference_clean(text: &str, opts: &NormalizeOptions) -> String {
        let mut out = String::new();
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
            out.truncate(out.trim_end().len());
        }
        out
    }

    /// NFC and nothing else.
    const NFC_ONLY: NormalizeOptions = NormalizeOptions {
        nfc: true,
        strip_control: false,
        whitespace: false,
    };

    /// `text` without its leading blank lines and its trailing spaces, tabs and line breaks: the
    /// slice `clean` returns when its rules remove nothing else.
    fn without_outer_blank_lines(text: &str) -> &str {
        let blank = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
        let end = text.trim_end_matches(blank).len();
        let lead = end - text[..end].trim_start_matches(blank).len();
        let start = text[..lead].rfind(['\n', '\r']).map_or(0, |i| i + 1);
        &text[start..end]
    }

    /// `clean` agrees with [`reference_clean`], and borrows exactly when the result is the text
    /// (without its outer blank lines under `whitespace`).
    fn check_clean(text: &str, opts: &NormalizeOptions) -> Result<(), TestCaseError> {
        let fast = clean(text, opts);
        let want = reference_clean(text, opts);
        prop_assert_eq!(fast.as_ref(), want.as_str());
        let slice = if opts.whitespace {
            without_outer_blank_lines(text)
        } else {
            text
        };
        prop_assert_eq!(matches!(fast, Cow::Borrowed(_)), want == slice);
        Ok(())
    }

    fn options() -> impl Strategy<Value = NormalizeOptions> {
        (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(nfc, strip_control, whitespace)| NormalizeOptions {
                nfc,
                strip_control,
                whitespace,
            },
        )
    }

    proptest! {
        #[test]
        fn clean_matches_the_reference(
            text in "[a \t\r\n\u{7}\u{b}\u{7f}\u{85}\u{a0}\u{301}\u{2028}\u{3000}\u{feff}é€]{0,100}",
            opts in options(),
        ) {
            check_clean(&text, &opts)?;
        }

        /// Long plain runs with rare special characters, so that whole chunks take the fast
        /// paths and specials land at every offset within and across chunks.
        #[test]
        fn fast_paths_match_the_reference_on_mostly_plain_text(
            text in "([a-z .]{0,45}(\n|\n\n|\n\n\n| \n|\t\n|\r\n|\u{7}|\u{85}|\u{a0}|\u{3000}|\u{feff}|é|€|\u{301}|ж|\u{1100}\u{1161}|\u{1d400}\u{301}|日本)){0,8}[a-z ]{0,45}",
            opts in options(),
        ) {
            check_clean(&text, &opts)?;
            prop_assert_eq!(normalize(&text, &NFC_ONLY), text.nfc().collect::<String>());
        }

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

        /// Every byte value at every offset of a chunk, and chunks shorter than [`CHUNK`].
        #[test]
        fn stop_masks_mark_the_stop_bytes(chunk in proptest::collection::vec(any::<u8>(), 0..=CHUNK)) {
            let want = (0..chunk.len())
                .filter(|&i| is_stop_byte(chunk[i]))
                .fold(0u32, |mask, i| mask | 1 << i);
            prop_assert_eq!(stop_mask(&chunk), want);
        }

        #[test]
        fn normalisation_is_idempotent(text in "[a-c \\t\\r\\n\u{301}\u{7}\u{A0}é]{0,40}") {
            let once = normalize(&text, &all()).into_owned();
            let twice = normalize(&once, &all()).into_owned();
            prop_assert_eq!(&once, &twice);
            prop_assert!(!once.contains('\r') && !once.contains("\n\n\n") && !once.contains(" \n"));
        }
    }
}
