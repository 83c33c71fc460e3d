//! spaCy 3.8's English prefix, suffix and infix rules (`spacy/lang/punctuation.py`,
//! `spacy/lang/en/punctuation.py`), written as character tests instead of regular expressions.
//! Lengths and positions are in bytes of the UTF-8 string.

use super::chars::is_icon;
use super::tables::UNITS;

/// spaCy's `LIST_PUNCT` (single characters; `……` is matched separately).
fn is_punct(c: char) -> bool {
    matches!(
        c,
        '…' | ','
            | ':'
            | ';'
            | '!'
            | '?'
            | '¿'
            | '؟'
            | '¡'
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '<'
            | '>'
            | '_'
            | '#'
            | '*'
            | '&'
            | '。'
            | '？'
            | '！'
            | '，'
            | '、'
            | '；'
            | '：'
            | '～'
            | '·'
            | '।'
            | '،'
            | '۔'
            | '؛'
            | '٪'
    )
}

/// spaCy's `LIST_QUOTES` / `CONCAT_QUOTES`.
fn is_quote(c: char) -> bool {
    matches!(
        c,
        '\'' | '"'
            | '”'
            | '“'
            | '`'
            | '‘'
            | '´'
            | '’'
            | '‚'
            | ','
            | '„'
            | '»'
            | '«'
            | '「'
            | '」'
            | '『'
            | '』'
            | '（'
            | '）'
            | '〔'
            | '〕'
            | '【'
            | '】'
            | '《'
            | '》'
            | '〈'
            | '〉'
            | '⟦'
            | '⟧'
    )
}

/// spaCy's single-character `LIST_CURRENCY` entries.
fn is_currency(c: char) -> bool {
    matches!(c, '$' | '£' | '¥' | '฿' | '﷼' | '\u{20A0}'..='\u{20BF}')
}

/// Length of the currency sign `s` starts with (`US$`, `C$`, `A$` or one sign), or 0.
fn currency_len(s: &str) -> usize {
    for multi in ["US$", "C$", "A$"] {
        if s.starts_with(multi) {
            return multi.len();
        }
    }
    s.chars()
        .next()
        .filter(|&c| is_currency(c))
        .map_or(0, char::len_utf8)
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}

/// spaCy's `ALPHA`: letters, plus the CJK symbol blocks its CJK class includes.
fn is_alpha(c: char) -> bool {
    c.is_alphabetic()
        || matches!(c as u32, 0x2E80..=0x2FFF | 0x3000..=0x303F | 0x31C0..=0x33FF | 0xFE30..=0xFE4F | 0x1F200..=0x1F2FF)
}

/// spaCy's `ALPHA_LOWER`: lower-case letters and letters of scripts without case (CJK, Arabic).
fn is_lower(c: char) -> bool {
    c.is_lowercase() || (is_alpha(c) && !c.is_uppercase())
}

/// spaCy's `ALPHA_UPPER`: upper-case letters and letters of scripts without case.
fn is_upper(c: char) -> bool {
    c.is_uppercase() || (is_alpha(c) && !c.is_lowercase())
}

fn dot_run(s: &str) -> usize {
    s.bytes().take_while(|&b| b == b'.').count()
}

/// Length of the prefix spaCy splits off the start of `s`, or 0.
pub(super) fn prefix_len(s: &str) -> usize {
    let mut chars = s.chars();
    let Some(c) = chars.next() else { return 0 };
    let one = c.len_utf8();
    match c {
        '§' | '%' | '=' | '—' | '–' => one,
        '+' if !chars.next().is_some_and(is_digit) => one,
        _ if is_punct(c) => one,
        '.' => match dot_run(s) {
            n if n >= 2 => n,
            _ => 0,
        },
        _ if is_quote(c) => one,
        _ if is_icon(c) => one,
        _ => currency_len(s),
    }
}

/// Characters after which spaCy splits a final `.` off: digits, lower-case letters, `%²-+`,
/// `LIST_PUNCT`, quotes and the characters `|(?:)` that its pattern puts in the class.
fn splits_dot_after(c: char) -> bool {
    is_digit(c)
        || is_lower(c)
        || matches!(c, '%' | '²' | '-' | '+' | '|' | '(' | '?' | ':' | ')')
        || is_punct(c)
        || is_quote(c)
}

/// Bytes of the longest unit or currency sign ([`UNITS`], `US$`).
const MAX_UNIT_BYTES: usize = 16;

/// Length of the suffix spaCy splits off the end of `s`, or 0: the longest of the matching
/// suffix rules, as `re.search` of the alternation finds the leftmost start.
pub(super) fn suffix_len(s: &str) -> usize {
    let mut best = 0;
    let mut consider = |len: usize| best = best.max(len);
    let before = |len: usize| s[..s.len() - len].chars().next_back();
    let dots = s.bytes().rev().take_while(|&b| b == b'.').count();
    if dots >= 2 {
        consider(dots);
    }
    for fixed in ["……", "'s", "'S", "’s", "’S"] {
        if s.ends_with(fixed) {
            consider(fixed.len());
        }
    }
    // A unit or a currency after a number: what follows the last digit, when it is one. Only
    // the last few bytes are searched (no unit is longer), so peeling a long run of suffixes
    // stays linear.
    let from = s.len().saturating_sub(MAX_UNIT_BYTES + 1);
    if let Some(d) = s.as_bytes()[from..].iter().rposition(u8::is_ascii_digit) {
        let tail = &s[from + d + 1..];
        if !tail.is_empty() && (["US$", "C$", "A$"].contains(&tail) || UNITS.contains(&tail)) {
            consider(tail.len());
        }
    }
    let Some(last) = s.chars().next_back() else {
        return 0;
    };
    let one = last.len_utf8();
    let prev = before(one);
    let single = match last {
        '—' | '–' => true,
        '+' => prev.is_some_and(is_digit),
        '.' => {
            let mut back = s[..s.len() - 1].chars().rev();
            let (p1, p2) = (back.next(), back.next());
            p1.is_some_and(splits_dot_after)
                || (p1.is_some_and(is_upper) && p2.is_some_and(is_upper))
                || (p1.is_some_and(|c| "FfCcKk".contains(c)) && p2 == Some('°'))
        }
        _ if is_currency(last) => prev.is_some_and(is_digit),
        _ => is_punct(last) || is_quote(last) || is_icon(last),
    };
    if single {
        consider(one);
    }
    best
}

/// Splits `s` on spaCy's infixes (ellipses, icons, `-` between letters, `/:<>=` before a
/// letter, `,` between letters, `.` between a lower- and an upper-case letter, arithmetic
/// between digits), emitting the pieces and the infixes in order.
pub(super) fn split_infixes<'a>(s: &'a str, f: &mut impl FnMut(&'a str)) {
    let mut start = 0;
    let mut prev: Option<char> = None;
    let mut at = 0;
    while at < s.len() {
        let byte = s.as_bytes()[at];
        if !may_start_infix(byte) {
            prev = Some(char::from(byte));
            at += 1;
            continue;
        }
        let rest = &s[at..];
        let c = rest.chars().next().unwrap_or_default();
        let len = infix_at(prev, rest);
        if len == 0 {
            prev = Some(c);
            at += c.len_utf8();
            continue;
        }
        // spaCy skips an infix at the very start of the string (it stays in the next piece).
        if at != 0 {
            if at != start {
                f(&s[start..at]);
            }
            f(&s[at..at + len]);
            start = at + len;
        }
        prev = s[..at + len].chars().next_back();
        at += len;
    }
    if start < s.len() {
        f(&s[start..]);
    }
}

/// Whether an infix can start at the byte `b`: a non-ASCII byte (ellipses, icons, dashes) or one
/// of the ASCII characters [`infix_at`] tests (`.`, arithmetic signs, `,`, `-`, `~`, `:<>=/`).
fn may_start_infix(b: u8) -> bool {
    !b.is_ascii()
        || matches!(
            b,
            b'.' | b'+' | b'-' | b'*' | b'^' | b',' | b'~' | b':' | b'<' | b'>' | b'=' | b'/'
        )
}

/// Length of the infix that starts `rest` (after the character `prev`), or 0.
fn infix_at(prev: Option<char>, rest: &str) -> usize {
    let mut chars = rest.chars();
    let Some(c) = chars.next() else { return 0 };
    let next = chars.next();
    let dots = dot_run(rest);
    if dots >= 2 {
        return dots;
    }
    if c == '…' || is_icon(c) {
        return c.len_utf8();
    }
    let Some(p) = prev else { return 0 };
    let alpha = |x: Option<char>| x.is_some_and(is_alpha);
    match c {
        '+' | '-' | '*' | '^' if is_digit(p) && next.is_some_and(|n| is_digit(n) || n == '-') => {
            return 1;
        }
        '.' if (is_lower(p) || is_quote(p)) && next.is_some_and(|n| is_upper(n) || is_quote(n)) => {
            return 1;
        }
        ',' if is_alpha(p) && alpha(next) => return 1,
        _ => {}
    }
    if (is_alpha(p) || is_digit(p)) && matches!(c, '-' | '–' | '—' | '~') {
        for hyphen in ["-", "–", "—", "--", "---", "——", "~"] {
            if let Some(after) = rest.strip_prefix(hyphen)
                && alpha(after.chars().next())
            {
                return hyphen.len();
            }
        }
    }
    if (is_alpha(p) || is_digit(p)) && matches!(c, ':' | '<' | '>' | '=' | '/') && alpha(next) {
        return 1;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affix_lengths() {
        assert_eq!(prefix_len("(foo"), 1);
        assert_eq!(prefix_len("...x"), 3);
        assert_eq!(prefix_len("+1"), 0);
        assert_eq!(prefix_len("US$5"), 3);
        assert_eq!(suffix_len("foo)"), 1);
        assert_eq!(suffix_len("it's"), 2);
        assert_eq!(suffix_len("10km"), 2);
        assert_eq!(suffix_len("km"), 0);
        assert_eq!(suffix_len("end."), 1);
        assert_eq!(suffix_len("USA."), 1);
        assert_eq!(suffix_len("wait..."), 3);
        assert!(UNITS.iter().all(|u| u.len() <= MAX_UNIT_BYTES));
    }

    /// `split_infixes` skips bytes `may_start_infix` rules out without asking `infix_at`.
    #[test]
    fn no_infix_starts_where_the_screen_skips() {
        let around = ['a', 'Z', '5', '.', '-', '=', ' ', 'é', '"', '…', '©'];
        for b in (0..128u8).filter(|&b| !may_start_infix(b)) {
            for prev in around.iter().map(|&c| Some(c)).chain([None]) {
                for next in around {
                    let rest = format!("{}{next}{next}", char::from(b));
                    assert_eq!(infix_at(prev, &rest), 0, "{prev:?} {rest:?}");
                }
            }
        }
    }
}
