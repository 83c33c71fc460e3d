//! English word splitting that reproduces spaCy's blank English tokenizer, the splitter
//! datatrove's quality filters count words with, so that word-based rules decide like the
//! reference implementation.
//!
//! The algorithm is spaCy's (`spacy/tokenizer.pyx`): split on whitespace, then peel prefixes and
//! suffixes off each chunk until a special case (`don't` is `do`, `n't`) or nothing is left to
//! peel, keep URLs whole, and split what remains on infixes (`well-known` is `well`, `-`,
//! `known`). The rules (`affixes`) and special cases (`en_special_cases.tsv`) are spaCy 3.8's
//! English ones. Known differences, all rare in text: letter classes use Unicode properties
//! rather than spaCy's script lists, and special cases that span several chunks (spaCy's
//! special-case matcher) are not applied.
//!
//! ```
//! use filters::words::split_words;
//! assert_eq!(split_words("I don't know (yet)."), ["I", "do", "n't", "know", "(", "yet", ")", "."]);
//! ```

mod affixes;
mod chars;
mod specials;
mod tables;
mod url;

pub use chars::{is_datatrove_punctuation, is_terminal_punctuation};
pub(crate) use chars::{is_punct_token, py_isspace};

/// The words (spaCy tokens, whitespace dropped) of `text`, in order.
pub fn split_words(text: &str) -> Vec<&str> {
    let mut words = Vec::with_capacity(text.len() / 5);
    for_each_word(text, |w| words.push(w));
    words
}

/// Calls `f` with each word of `text` (see [`split_words`]), without collecting them.
pub fn for_each_word<'a>(text: &'a str, f: impl FnMut(&'a str)) {
    for_each_token(text, false, f);
}

/// Calls `f` with each spaCy token of `text`. With `with_space`, that includes the tokens spaCy
/// makes of whitespace: every run of whitespace except a single space after a word (datatrove
/// strips them from word lists, but spaCy's sentencizer sees them).
pub(crate) fn for_each_token<'a>(text: &'a str, with_space: bool, mut f: impl FnMut(&'a str)) {
    let mut tokens = Vec::new();
    let mut emit = |run: &'a str, space: bool| {
        if space {
            if with_space {
                f(run);
            }
            return;
        }
        tokens.clear();
        tokenize_chunk(run, true, &mut tokens);
        if tokens.len() > 1 {
            specials::merge_split_specials(run, &mut tokens);
        }
        tokens.iter().for_each(|t| f(t));
    };
    // As spaCy's `Tokenizer.__call__`: alternate runs; a run of whitespace loses its first
    // character when that is a plain space.
    let (mut start, mut in_space) = (0, false);
    for (i, c) in text.char_indices() {
        let space = py_isspace(c);
        if space == in_space {
            continue;
        }
        if start < i {
            emit(&text[start..i], in_space);
        }
        start = if c == ' ' { i + 1 } else { i };
        in_space = space;
    }
    if start < text.len() {
        emit(&text[start..], in_space);
    }
}

/// Tokenizes one whitespace-free chunk, as spaCy's `_split_affixes` then `_attach_tokens`;
/// `with_specials` off gives the tokens spaCy's special-case matcher looks for.
fn tokenize_chunk<'a>(chunk: &'a str, with_specials: bool, out: &mut Vec<&'a str>) {
    // Tokens are non-empty pieces of the chunk: none for an empty one, one for one character.
    let mut chars = chunk.chars();
    if chars.next().is_none() {
        return;
    }
    if chars.next().is_none() {
        out.push(chunk);
        return;
    }
    if with_specials && specials::emit(chunk, out) {
        return;
    }
    // Most chunks are plain words, some with a comma or full stop after them: shortcuts to
    // what `peel_chunk` finds for them.
    match plain_word_len(chunk) {
        Some(len) if len == chunk.len() => out.push(chunk),
        Some(len) => {
            let (word, punct) = chunk.split_at(len);
            if !(with_specials && specials::emit(word, out)) {
                out.push(word);
            }
            out.push(punct);
        }
        None => peel_chunk(chunk, with_specials, out),
    }
}

/// For a chunk of ASCII letters, the chunk's length; for ASCII letters and then one of `,;:!?`
/// or a full stop that spaCy splits off (after a lower-case letter or two upper-case ones), the
/// letters' length; otherwise `None`.
///
/// ASCII letters start no prefix, end no suffix (units follow digits; the other suffixes are
/// punctuation), hold no infix and no URL (that needs a dot), so they are one token unless they
/// are a special case. The one suffix rule that matches such letters plus `,;:!?` is the single
/// punctuation character; a full stop after a lower-case letter or two upper-case ones is the
/// one suffix rule for `.` (`Mr.`-like special cases are whole chunks, looked up first).
fn plain_word_len(chunk: &str) -> Option<usize> {
    let bytes = chunk.as_bytes();
    let len = bytes.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    if len == bytes.len() {
        return Some(len);
    }
    if len == 0 || len + 1 != bytes.len() {
        return None;
    }
    let splits = match bytes[len] {
        b',' | b';' | b':' | b'!' | b'?' => true,
        b'.' => {
            let upper = |i: usize| bytes[i].is_ascii_uppercase();
            bytes[len - 1].is_ascii_lowercase() || (len >= 2 && upper(len - 1) && upper(len - 2))
        }
        _ => false,
    };
    splits.then_some(len)
}

/// [`tokenize_chunk`] for a chunk that is not itself a special case: peels affixes, keeps a
/// URL whole, splits the rest on infixes.
fn peel_chunk<'a>(chunk: &'a str, with_specials: bool, out: &mut Vec<&'a str>) {
    let special = |s: &str| with_specials && specials::is_special(s);
    let mut suffixes: Vec<&'a str> = Vec::new();
    let mut rest = chunk;
    let mut last_len = usize::MAX;
    while !rest.is_empty() && rest.len() != last_len {
        if special(rest) {
            break;
        }
        last_len = rest.len();
        let pre = affixes::prefix_len(rest);
        if pre != 0 && pre < rest.len() && special(&rest[pre..]) {
            out.push(&rest[..pre]);
            rest = &rest[pre..];
            break;
        }
        let suf = affixes::suffix_len(&rest[pre..]);
        let cut = rest.len() - suf;
        if suf != 0 && cut > 0 && special(&rest[..cut]) {
            suffixes.push(&rest[cut..]);
            rest = &rest[..cut];
            break;
        }
        if pre != 0 && suf != 0 && pre + suf <= rest.len() {
            out.push(&rest[..pre]);
            suffixes.push(&rest[cut..]);
            rest = &rest[pre..cut];
        } else if pre != 0 {
            out.push(&rest[..pre]);
            rest = &rest[pre..];
        } else if suf != 0 {
            suffixes.push(&rest[cut..]);
            rest = &rest[..cut];
        }
    }
    let done = rest.is_empty() || (with_specials && specials::emit(rest, out));
    if !done {
        if url::is_url(rest) {
            out.push(rest);
        } else {
            affixes::split_infixes(rest, &mut |t| out.push(t));
        }
    }
    out.extend(suffixes.into_iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Token lists produced by spaCy 3.8's `spacy.blank("en")` for the same inputs.
    #[test]
    fn matches_spacy_on_tricky_inputs() {
        let cases: &[(&str, &[&str])] = &[
            ("Hello, world!", &["Hello", ",", "world", "!"]),
            (
                "well-known U.S. policy",
                &["well", "-", "known", "U.S.", "policy"],
            ),
            (
                "It's 10km away...",
                &["It", "'s", "10", "km", "away", "..."],
            ),
            (
                "costs $5.00 (approx.)",
                &["costs", "$", "5.00", "(", "approx", ".", ")"],
            ),
            (
                "see https://example.com/a-b.",
                &["see", "https://example.com/a-b", "."],
            ),
            ("foo(bar);", &["foo(bar", ")", ";"]),
            ("a/b and x=y", &["a", "/", "b", "and", "x", "=", "y"]),
            ("\"Quoted\"", &["\"", "Quoted", "\""]),
            ("end.Next", &["end", ".", "Next"]),
            ("1+2", &["1", "+", "2"]),
            ("can't won't", &["ca", "n't", "wo", "n't"]),
            ("#include <stdio.h>", &["#", "include", "<", "stdio.h", ">"]),
            ("Mr. USA.", &["Mr.", "USA", "."]),
        ];
        for (text, want) in cases {
            assert_eq!(split_words(text), *want, "{text:?}");
        }
    }

    proptest::proptest! {
        /// Words are the text's non-whitespace characters, in order, cut into pieces: nothing
        /// is lost, added or reordered, whatever the input.
        #[test]
        fn words_partition_the_non_whitespace_text(text in "(\\PC|[ .,'\"()\\-:/\n]){0,80}") {
            let words = split_words(&text);
            let joined: String = words.concat();
            let expected: String = text.chars().filter(|c| !py_isspace(*c)).collect();
            proptest::prop_assert_eq!(joined, expected);
            proptest::prop_assert!(words.iter().all(|w| !w.is_empty()));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
        /// The shortcuts (no or one character; plain words, maybe with a comma or full stop) give
        /// what peeling the chunk gives, special cases (`cannot`, `gonna`, `Mr.`) included.
        #[test]
        fn shortcuts_give_the_tokens_peeling_gives(
            chunk in "\\PC?|(cannot|gonna|dont|Im|ll|Mr|[a-zA-Z]{1,3}){0,2}[a-zA-Z]{2}(\\.|[,;:!?'\"()a-zA-Z])?",
            with_specials: bool,
        ) {
            let (mut fast, mut peeled) = (Vec::new(), Vec::new());
            tokenize_chunk(&chunk, with_specials, &mut fast);
            if !(with_specials && specials::emit(&chunk, &mut peeled)) {
                peel_chunk(&chunk, with_specials, &mut peeled);
            }
            proptest::prop_assert_eq!(fast, peeled);
        }
    }

    #[test]
    fn whitespace_never_makes_a_word() {
        assert!(split_words(" \n\t\u{a0}\u{1c} ").is_empty());
        assert_eq!(split_words("a\u{1f}b"), ["a", "b"]);
    }
}
