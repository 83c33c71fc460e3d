//! A tokenizer's added tokens found in a text the way `tokenizers` finds them.
//!
//! Before it normalizes, the crate splits a text at the added tokens marked not `normalized`
//! (special tokens, mostly), matched as written; then it normalizes each part between them and
//! splits that at the `normalized` ones, matched in their normalized form. Both searches take
//! the leftmost match, the longest of those starting there, and go on after it. Each part left
//! is pre-tokenized and encoded on its own, and each match becomes its token's id.

use aho_corasick::{AhoCorasick, MatchKind};

/// Added tokens of one kind, searched as the crate searches them.
#[derive(Debug)]
pub struct AddedTokens {
    /// `None` when there are none.
    automaton: Option<AhoCorasick>,
    /// Each pattern's token id.
    ids: Vec<u32>,
}

/// A part of a text: text between added tokens, or an added token's id.
#[derive(Debug, PartialEq, Eq)]
pub enum Part<'a> {
    /// Text holding no added token.
    Text(&'a str),
    /// The id of an added token found in the text.
    Token(u32),
}

impl AddedTokens {
    /// The tokens of `(text to match, id)` pairs; `None` when two match the same text (the
    /// crate's own search then decides by an order of its own) or one is empty (the crate skips
    /// those; an empty pattern would match everywhere).
    pub fn new(pairs: Vec<(String, u32)>) -> Option<Self> {
        let mut patterns: Vec<&str> = pairs.iter().map(|(p, _)| p.as_str()).collect();
        patterns.sort_unstable();
        if patterns.windows(2).any(|w| w[0] == w[1]) || patterns.first() == Some(&"") {
            return None;
        }
        let automaton = match pairs.is_empty() {
            true => None,
            false => Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(pairs.iter().map(|(p, _)| p))
                    .ok()?,
            ),
        };
        Some(Self {
            automaton,
            ids: pairs.into_iter().map(|(_, id)| id).collect(),
        })
    }

    /// Whether `text` holds one of the tokens.
    pub fn occur_in(&self, text: &str) -> bool {
        self.automaton.as_ref().is_some_and(|a| a.is_match(text))
    }

    /// Calls `part` on each part of `text` in order: the texts between the tokens found (never
    /// empty) and the tokens' ids. Stops at `part`'s first error.
    pub fn split<'a, E>(
        &self,
        text: &'a str,
        mut part: impl FnMut(Part<'a>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut start = 0;
        if let Some(automaton) = &self.automaton {
            for found in automaton.find_iter(text) {
                if found.start() > start {
                    part(Part::Text(&text[start..found.start()]))?;
                }
                part(Part::Token(self.ids[found.pattern().as_usize()]))?;
                start = found.end();
            }
        }
        match start < text.len() {
            true => part(Part::Text(&text[start..])),
            false => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(tokens: &AddedTokens, text: &str) -> Vec<String> {
        let mut parts = Vec::new();
        tokens
            .split::<()>(text, |p| {
                parts.push(match p {
                    Part::Text(t) => t.to_string(),
                    Part::Token(id) => format!("#{id}"),
                });
                Ok(())
            })
            .unwrap();
        parts
    }

    #[test]
    fn splits_at_the_leftmost_longest_match() {
        let tokens = AddedTokens::new(vec![
            ("  ".into(), 1),
            ("   ".into(), 2),
            ("<|end|>".into(), 3),
            ("|>x".into(), 4),
        ])
        .unwrap();
        assert_eq!(
            parts(&tokens, "a     b<|end|>x<|end|>"),
            ["a", "#2", "#1", "b", "#3", "x", "#3"]
        );
        assert_eq!(parts(&tokens, "plain"), ["plain"]);
        assert!(parts(&tokens, "").is_empty());
        assert!(tokens.occur_in("x  y") && !tokens.occur_in("x y"));
    }

    #[test]
    fn no_tokens_leave_the_text_whole_and_twins_or_empty_ones_are_refused() {
        let none = AddedTokens::new(Vec::new()).unwrap();
        assert_eq!(parts(&none, "a  b"), ["a  b"]);
        assert!(!none.occur_in("a  b"));
        assert!(AddedTokens::new(vec![("x".into(), 1), ("x".into(), 2)]).is_none());
        assert!(AddedTokens::new(vec![("x".into(), 1), (String::new(), 2)]).is_none());
    }
}
