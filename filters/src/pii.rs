//! PII redaction: e-mail addresses, IPv4 and IPv6 addresses and phone numbers are replaced by
//! typed placeholders (`<EMAIL>`, `<IPV4>`, `<IPV6>`, `<PHONE>` by default) and counted.
//! Matched values are never returned or logged; only counts leave this module.
//!
//! Candidates are found by regular expressions and then checked: IP addresses must parse as
//! such (`std::net`), an IPv6 address needs three or more hex groups (so `a::b` in code is left
//! alone), a phone number 7 to 15 digits in groups separated by a space, `-` or `.`. Matches
//! may not touch a letter or digit on either side. Overlapping matches keep the earliest, then
//! the longest.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;

/// The kinds of PII found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiKind {
    /// An e-mail address.
    Email,
    /// An IPv4 address.
    Ipv4,
    /// An IPv6 address.
    Ipv6,
    /// A phone number.
    Phone,
}

impl PiiKind {
    /// Every kind, in the order of [`PiiCounts`].
    pub const ALL: [PiiKind; 4] = [Self::Email, Self::Ipv4, Self::Ipv6, Self::Phone];

    /// The kind's config name: `email`, `ipv4`, `ipv6`, `phone`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
            Self::Phone => "phone",
        }
    }

    /// The default placeholder: `<EMAIL>`, `<IPV4>`, `<IPV6>`, `<PHONE>`.
    pub fn default_placeholder(self) -> &'static str {
        match self {
            Self::Email => "<EMAIL>",
            Self::Ipv4 => "<IPV4>",
            Self::Ipv6 => "<IPV6>",
            Self::Phone => "<PHONE>",
        }
    }
}

/// Replacements made in one document, by kind (indexed like [`PiiKind::ALL`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PiiCounts(pub [u32; 4]);

impl PiiCounts {
    /// Replacements of `kind`.
    pub fn get(&self, kind: PiiKind) -> u32 {
        self.0[kind as usize]
    }

    /// All replacements.
    pub fn total(&self) -> u32 {
        self.0.iter().sum()
    }
}

/// Redacts the configured kinds, each with its placeholder.
#[derive(Debug, Clone, PartialEq)]
pub struct Redactor {
    /// Placeholder per kind (indexed like [`PiiKind::ALL`]); `None` leaves that kind alone.
    pub placeholders: [Option<String>; 4],
}

impl Default for Redactor {
    fn default() -> Self {
        Self {
            placeholders: PiiKind::ALL.map(|k| Some(k.default_placeholder().to_string())),
        }
    }
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"[A-Za-z0-9._%+\-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}")
});
static IPV4: LazyLock<Regex> = LazyLock::new(|| regex(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"));
static IPV6: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?:[0-9A-Fa-f]{1,4})?(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}"));
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?:\+\d{1,3}[ .\-]?)?(?:\(\d{1,4}\)|\d{1,4})(?:[ .\-]\d{2,4}){1,4}"));

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("PII patterns are valid")
}

impl Redactor {
    /// The redacted text (`None` when nothing was found) and the replacements made.
    pub fn redact(&self, text: &str) -> (Option<String>, PiiCounts) {
        let mut found: Vec<(usize, usize, PiiKind)> = Vec::new();
        for kind in PiiKind::ALL {
            if self.placeholders[kind as usize].is_some() {
                find(kind, text, &mut found);
            }
        }
        if found.is_empty() {
            return (None, PiiCounts::default());
        }
        found.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut counts = PiiCounts::default();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end, kind) in found {
            if start < at {
                continue;
            }
            out.push_str(&text[at..start]);
            out.push_str(
                self.placeholders[kind as usize]
                    .as_deref()
                    .unwrap_or_default(),
            );
            counts.0[kind as usize] += 1;
            at = end;
        }
        out.push_str(&text[at..]);
        (Some(out), counts)
    }
}

/// Appends the spans of `kind` in `text`.
fn find(kind: PiiKind, text: &str, found: &mut Vec<(usize, usize, PiiKind)>) {
    // Cheap pre-checks: a byte every match of the kind contains (no '@', no e-mail address;
    // a phone number's groups are separated by a space, '-' or '.').
    let bytes = text.as_bytes();
    let has = |b| memchr::memchr(b, bytes).is_some();
    let (re, present) = match kind {
        PiiKind::Email => (&*EMAIL, has(b'@')),
        PiiKind::Ipv4 => (&*IPV4, has(b'.')),
        PiiKind::Ipv6 => (&*IPV6, has(b':')),
        PiiKind::Phone => (&*PHONE, memchr::memchr3(b' ', b'-', b'.', bytes).is_some()),
    };
    if !present {
        return;
    }
    for m in re.find_iter(text) {
        let s = m.as_str();
        let isolated = isolated(text, m.start(), m.end(), kind);
        let valid = match kind {
            PiiKind::Email => true,
            PiiKind::Ipv4 => s.parse::<Ipv4Addr>().is_ok(),
            PiiKind::Ipv6 => {
                s.parse::<Ipv6Addr>().is_ok()
                    && s.split([':', '.']).filter(|g| !g.is_empty()).count() >= 3
            }
            PiiKind::Phone => {
                let digits = s.bytes().filter(u8::is_ascii_digit).count();
                (7..=15).contains(&digits) && s.bytes().any(|b| matches!(b, b' ' | b'-' | b'.'))
            }
        };
        if isolated && valid {
            found.push((m.start(), m.end(), kind));
        }
    }
}

/// Whether the match does not run on into its neighbours: a letter, digit or `_` on either
/// side, a `.`, `+` or `:` before it, a `.` and a digit after it, or an `@` after an e-mail
/// address make it part of something longer.
fn isolated(text: &str, start: usize, end: usize, kind: PiiKind) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let before = text[..start].chars().next_back();
    let after = &text[end..];
    let joins_before = before.is_some_and(|c| word(c) || matches!(c, '.' | '+' | ':'));
    let mut next = after.chars();
    let joins_after = match next.next() {
        None => false,
        Some('@') => kind == PiiKind::Email,
        Some('.') => next.next().is_some_and(|c| c.is_ascii_digit()),
        Some(c) => word(c),
    };
    !joins_before && !joins_after
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(text: &str) -> (String, [u32; 4]) {
        let (out, counts) = Redactor::default().redact(text);
        (out.unwrap_or_else(|| text.to_string()), counts.0)
    }

    #[test]
    fn redacts_each_kind_with_its_placeholder() {
        let (out, counts) = redact(
            "Mail jane.doe+x@example.co.uk or call +1 (555) 123-4567; host 192.168.1.20, v6 2001:db8::8a2e:370:7334.",
        );
        assert_eq!(out, "Mail <EMAIL> or call <PHONE>; host <IPV4>, v6 <IPV6>.");
        assert_eq!(counts, [1, 1, 1, 1]);
    }

    #[test]
    fn leaves_look_alikes_alone() {
        for text in [
            "std::vec::Vec and a::b::c",
            "version 1.2.3.4.5 of the tool",
            "the year 2021 and 12:30:45",
            "999.1.1.1 is not an address",
            "call me at 12",
            "release 10.0.19041",
        ] {
            assert_eq!(redact(text), (text.to_string(), [0; 4]), "{text}");
        }
    }

    #[test]
    fn kinds_can_be_switched_off_and_renamed() {
        let mut r = Redactor::default();
        r.placeholders[PiiKind::Email as usize] = None;
        r.placeholders[PiiKind::Phone as usize] = Some("[tel]".into());
        let (out, counts) = r.redact("a@b.org 555-123-4567");
        assert_eq!(out.as_deref(), Some("a@b.org [tel]"));
        assert_eq!((counts.get(PiiKind::Phone), counts.total()), (1, 1));
    }
}
