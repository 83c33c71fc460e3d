//! Control characters and whitespace: the rules other than NFC, with a scan that decides
//! whether a text needs them (most texts do not) and one pass that applies them.

use std::borrow::Cow;

use super::NormalizeOptions;
use super::scan::{CHUNK, gather_flags};

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

pub(super) fn clean<'a>(text: &'a str, opts: &NormalizeOptions) -> Cow<'a, str> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;
    use crate::normalize::tests::{NFC_ONLY, all};
    use proptest::prelude::*;
    use unicode_normalization::UnicodeNormalization;

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(
            normalize("Plain text.\n\nTwo paragraphs.", &all()),
            Cow::Borrowed(_)
        ));
    }

    /// The rules written as plainly as possible, one character at a time: the oracle the fast
    /// `clean` must match.
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

        /// Every byte value at every offset of a chunk, and chunks shorter than [`CHUNK`].
        #[test]
        fn stop_masks_mark_the_stop_bytes(chunk in proptest::collection::vec(any::<u8>(), 0..=CHUNK)) {
            let want = (0..chunk.len())
                .filter(|&i| is_stop_byte(chunk[i]))
                .fold(0u32, |mask, i| mask | 1 << i);
            prop_assert_eq!(stop_mask(&chunk), want);
        }
    }
}
