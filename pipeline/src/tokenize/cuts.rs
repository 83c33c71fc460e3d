//! Where a text can be cut without changing how a pre-tokenizer's regex splits it.
//!
//! A byte-level tokenizer splits a text with a regex and encodes each match on its own, so a
//! text cut where one match ends and the next begins encodes, piece by piece, to the same ids.
//! Two regexes are known here. Both look ahead but never behind, and some alternative matches
//! at every character, so the matches cover the text: a place that no match can span is where
//! one match ends and the next begins, the regex then matches from it as from a text's start,
//! and the piece before it matches alike alone provided it does not end in whitespace (whose
//! `\s+(?!\S)` would see the piece's end instead of the next character). [`Pieces`] cuts only
//! before an ASCII character that follows one other than whitespace, and only where:
//!
//! - [`Cuts::Gpt2`], GPT-2's `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
//!   (the `ByteLevel` pre-tokenizer's own): before ASCII whitespace, as the word patterns take
//!   no whitespace after their first character; and between ASCII letters, digits and other
//!   characters (a change of class), unless the first is an apostrophe, which may begin a
//!   contraction (`'s`).
//! - [`Cuts::Llama3`], Llama 3's (and cl100k's)
//!   `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
//!   and Qwen2's, the same with `\p{N}` for `\p{N}{1,3}`: before ASCII whitespace other than
//!   `\r` and `\n`; before `\r` or `\n` after an ASCII letter or digit (other characters take
//!   line breaks after them: `.\n` is one match); between ASCII letters, digits and other
//!   characters, except from another character to a letter (`[^\r\n\p{L}\p{N}]?\p{L}+` makes
//!   `(bar` and `'s` one match). Digit runs are never cut, so their threes count from the same
//!   first digit.

/// The cut rules of a pre-tokenizer regex (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cuts {
    /// GPT-2's regex.
    Gpt2,
    /// Llama 3's regex, or Qwen2's.
    Llama3,
}

impl Cuts {
    /// GPT-2's regex, as the `ByteLevel` pre-tokenizer and `Split` pre-tokenizers write it.
    pub const GPT2: &str =
        r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    /// Llama 3's regex.
    pub const LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    /// Qwen2's regex: Llama 3's with single digits.
    pub const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// The rules for a `Split` pre-tokenizer's regex, when it is one of those known.
    pub fn of_regex(regex: &str) -> Option<Self> {
        match regex {
            Self::GPT2 => Some(Self::Gpt2),
            Self::LLAMA3 | Self::QWEN2 => Some(Self::Llama3),
            _ => None,
        }
    }

    /// The regex the rules are for, for messages.
    pub fn regex_name(self) -> &'static str {
        match self {
            Self::Gpt2 => "GPT-2's regex",
            Self::Llama3 => "Llama 3's or Qwen2's regex",
        }
    }

    /// Whether a text may be cut before the ASCII character `b`, given what precedes it.
    fn before(self, before: Before, b: u8) -> bool {
        let space = is_ascii_white_space(b);
        match (self, before) {
            (_, Before::Whitespace) => false,
            (Self::Gpt2, Before::Other) => space,
            (Self::Gpt2, Before::Ascii(p)) => space || (class(p) != class(b) && p != b'\''),
            (Self::Llama3, Before::Other) => space && !is_line_break(b),
            (Self::Llama3, Before::Ascii(p)) if space => !is_line_break(b) || class(p) != OTHER,
            (Self::Llama3, Before::Ascii(p)) => {
                class(p) != class(b) && !(class(p) == OTHER && class(b) == LETTER)
            }
        }
    }
}

/// What came before the current character, as far as cutting goes.
#[derive(Clone, Copy)]
enum Before {
    /// Whitespace, or the start of the text: no cut.
    Whitespace,
    /// An ASCII character other than whitespace.
    Ascii(u8),
    /// Another character that is not whitespace.
    Other,
}

/// The pieces of a text, cut as the module docs say; together they are the text.
pub struct Pieces<'a> {
    text: &'a str,
    cuts: Cuts,
    /// Where the current piece starts.
    start: usize,
    /// The next byte to look at.
    at: usize,
    before: Before,
}

impl<'a> Pieces<'a> {
    /// The pieces of `text` under `cuts`.
    pub fn new(text: &'a str, cuts: Cuts) -> Self {
        Self {
            text,
            cuts,
            start: 0,
            at: 0,
            before: Before::Whitespace,
        }
    }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        while let Some(&b) = bytes.get(self.at) {
            let (cut, now, width) = if b.is_ascii() {
                let now = match is_ascii_white_space(b) {
                    true => Before::Whitespace,
                    false => Before::Ascii(b),
                };
                (self.cuts.before(self.before, b), now, 1)
            } else {
                let c = self.text[self.at..].chars().next().unwrap_or_default();
                let now = match c.is_whitespace() {
                    true => Before::Whitespace,
                    false => Before::Other,
                };
                (false, now, c.len_utf8())
            };
            let at = self.at;
            self.before = now;
            self.at += width;
            if cut && at > self.start {
                let piece = &self.text[self.start..at];
                self.start = at;
                return Some(piece);
            }
        }
        (self.start < bytes.len()).then(|| {
            let piece = &self.text[self.start..];
            self.start = bytes.len();
            piece
        })
    }
}

/// Unicode's `White_Space` among ASCII characters (what the regexes' `\s` matches there).
fn is_ascii_white_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

fn is_line_break(b: u8) -> bool {
    matches!(b, b'\n' | b'\r')
}

const LETTER: u8 = 0;
const DIGIT: u8 = 1;
const OTHER: u8 = 2;

/// An ASCII character's class in the regexes: letter, digit or other.
fn class(b: u8) -> u8 {
    match b {
        b'a'..=b'z' | b'A'..=b'Z' => LETTER,
        b'0'..=b'9' => DIGIT,
        _ => OTHER,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pieces(text: &str, cuts: Cuts) -> Vec<&str> {
        Pieces::new(text, cuts).collect()
    }

    #[test]
    fn gpt2_cuts_fall_where_the_docs_say() {
        assert_eq!(
            pieces("It's 3rd-rate:  x\n\tfoo(bar) l'été", Cuts::Gpt2),
            [
                "It", "'s", " 3", "rd", "-", "rate", ":", "  x", "\n\tfoo", "(", "bar", ")", " l",
                "'été"
            ]
        );
        assert_eq!(
            pieces("  lead", Cuts::Gpt2),
            ["  lead"],
            "no cut after whitespace"
        );
        assert_eq!(pieces("día 中文 x", Cuts::Gpt2), ["día", " 中文", " x"]);
        assert!(pieces("", Cuts::Gpt2).is_empty());
    }

    #[test]
    fn llama3_cuts_fall_where_the_docs_say() {
        assert_eq!(
            pieces("It's 3rd-rate:\n12345 x\nfoo(bar)\r\n", Cuts::Llama3),
            [
                "It", "'s", " 3", "rd", "-rate", ":\n12345", " x", "\nfoo", "(bar", ")\r\n"
            ]
        );
        assert_eq!(pieces("día。\n中文 x", Cuts::Llama3), ["día。\n中文", " x"]);
    }

    #[test]
    fn known_regexes_are_recognised_and_others_not() {
        assert_eq!(Cuts::of_regex(Cuts::GPT2), Some(Cuts::Gpt2));
        assert_eq!(Cuts::of_regex(Cuts::LLAMA3), Some(Cuts::Llama3));
        assert_eq!(Cuts::of_regex(Cuts::QWEN2), Some(Cuts::Llama3));
        assert_eq!(Cuts::of_regex(r"\p{N}{1,3}|\s+"), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn pieces_make_up_the_text(text in "\\PC*") {
            for cuts in [Cuts::Gpt2, Cuts::Llama3] {
                prop_assert_eq!(Pieces::new(&text, cuts).collect::<String>(), text.clone());
                prop_assert!(Pieces::new(&text, cuts).all(|p| !p.is_empty()));
            }
        }
    }
}
