//! Encoding a piece of a byte-level tokenizer's text by its pre-tokenizer's regex and its model
//! alone.
//!
//! On a piece the piece cache does not hold, the tokenizer's own `encode` spends most of its time
//! on bookkeeping the ids do not need: alignments of every byte through its normalizer and
//! pre-tokenizer, a scan for added tokens, and an `Encoding` with offsets and token strings. A
//! piece has no added token in it (texts are split at them first), and where the normalizer
//! leaves it as it is, the ids come from three steps only, taken here: the regex splits the
//! piece into words (matches and what lies between them, as `SplitDelimiterBehavior::Isolated`
//! does, by the same `SysRegex`), each word's bytes are spelled as GPT-2's byte-level
//! characters, and the BPE model encodes each spelled word (most words by its merges applied
//! here, [`super::merges`]).

use tokenizers::Model;
use tokenizers::models::bpe::BPE;
use tokenizers::utils::SysRegex;

use super::cuts::Cuts;
use super::merges::ByteMerges;

/// A byte-level tokenizer's regex, byte spelling and model.
#[derive(Debug)]
pub struct ByteLevelModel {
    regex: SysRegex,
    /// The character each byte is spelled as.
    chars: [char; 256],
    model: BPE,
    /// The model's merges, when they can be applied here.
    merges: Option<ByteMerges>,
    /// Whether the regex takes a plain word (see [`is_plain_word`]) whole: so do the regexes
    /// with known cut rules, by their letter rule (` ?\p{L}+` in GPT-2's,
    /// `[^\r\n\p{L}\p{N}]?\p{L}+` in Llama 3's and Qwen2's).
    takes_plain_words_whole: bool,
}

impl ByteLevelModel {
    /// The steps of a tokenizer whose pre-tokenizer splits by `regex` and spells bytes at the
    /// byte level, and whose model is `model`.
    pub fn new(regex: &str, model: &BPE) -> Result<Self, String> {
        let takes_plain_words_whole = Cuts::of_regex(regex).is_some();
        let regex = SysRegex::new(regex).map_err(|e| format!("its regex does not compile: {e}"))?;
        let chars = byte_chars();
        Ok(Self {
            regex,
            merges: ByteMerges::new(model, &chars),
            chars,
            model: model.clone(),
            takes_plain_words_whole,
        })
    }

    /// Whether the model's merges are applied here.
    #[cfg(test)]
    pub fn merges_taken(&self) -> bool {
        self.merges.is_some()
    }

    /// The ids of `piece`, a text without added tokens that the normalizer leaves as it is.
    pub fn encode(&self, piece: &str) -> tokenizers::Result<Vec<u32>> {
        let mut ids = Vec::new();
        let mut spelled = String::new();
        let mut word = |word: &str| -> tokenizers::Result<()> {
            // A word that is a token is that token, merges or not (Llama 3's models).
            let ignore_merges = self.model.ignore_merges;
            if ignore_merges {
                spell(&self.chars, word, &mut spelled);
                if let Some(id) = self.model.token_to_id(&spelled) {
                    ids.push(id);
                    return Ok(());
                }
            }
            let merged = self.merges.as_ref();
            if merged.is_some_and(|m| m.encode(word.as_bytes(), &mut ids)) {
                return Ok(());
            }
            if !ignore_merges {
                spell(&self.chars, word, &mut spelled);
            }
            ids.extend(self.model.tokenize(&spelled)?.into_iter().map(|t| t.id));
            Ok(())
        };
        if self.takes_plain_words_whole && is_plain_word(piece) {
            word(piece)?;
            return Ok(ids);
        }
        let mut end = 0;
        for (start, stop) in self.regex.find_iter(piece) {
            if end < start {
                word(&piece[end..start])?;
            }
            if start < stop {
                word(&piece[start..stop])?;
            }
            end = stop;
        }
        if end < piece.len() {
            word(&piece[end..])?;
        }
        Ok(ids)
    }
}

/// Spells `word`'s bytes into `spelled` as `chars` spells each.
fn spell(chars: &[char; 256], word: &str, spelled: &mut String) {
    spelled.clear();
    spelled.extend(word.bytes().map(|b| chars[usize::from(b)]));
}

/// Whether `piece` is ASCII letters, after one space or none: most pieces the cache misses.
fn is_plain_word(piece: &str) -> bool {
    let letters = piece.strip_prefix(' ').unwrap_or(piece);
    !letters.is_empty() && letters.bytes().all(|b| b.is_ascii_alphabetic())
}

/// GPT-2's spelling of bytes as characters: printable Latin-1 bytes as themselves, the other 68
/// as the characters from U+0100 on, in byte order.
pub(super) fn byte_chars() -> [char; 256] {
    let mut chars = ['\0'; 256];
    let mut next = 0x100;
    for (b, c) in chars.iter_mut().enumerate() {
        let printable = matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
        let code = if printable {
            b as u32
        } else {
            next += 1;
            next - 1
        };
        *c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
    }
    chars
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

    #[test]
    fn bytes_are_spelled_as_the_byte_level_pre_tokenizer_spells_them() {
        // Every byte valid UTF-8 holds: one- and two-byte characters, and three- and four-byte
        // ones with each lead byte and each continuation byte.
        let mut text: String = ('\0'..='\u{7FF}').collect();
        let leads = (0xE0..=0xEF).map(|lead: u32| ((lead - 0xE0) << 12).max(0x800));
        let fours = [0x10000, 0x40000, 0x80000, 0xC0000, 0x100000];
        text.extend(leads.chain(fours).map(|c| char::from_u32(c).unwrap()));
        let bytes: std::collections::BTreeSet<u8> = text.bytes().collect();
        assert_eq!(bytes.len(), 256 - 13, "all but 0xC0, 0xC1 and 0xF5 to 0xFF");

        let pre = ByteLevel::new(false, false, false);
        let mut pretokenized = PreTokenizedString::from(text.as_str());
        pre.pre_tokenize(&mut pretokenized).unwrap();
        let splits = pretokenized.get_splits(OffsetReferential::Original, OffsetType::Byte);
        let theirs: String = splits.iter().map(|(s, _, _)| *s).collect();
        let chars = byte_chars();
        let ours: String = text.bytes().map(|b| chars[usize::from(b)]).collect();
        assert_eq!(ours, theirs);
        let distinct: std::collections::BTreeSet<char> = chars.into_iter().collect();
        assert_eq!(distinct, ByteLevel::alphabet().into_iter().collect());
    }

    proptest! {
        #[test]
        fn regexes_with_cut_rules_take_plain_words_whole(word in " ?[A-Za-z]{1,20}") {
            prop_assert!(is_plain_word(&word));
            for regex in [Cuts::GPT2, Cuts::LLAMA3, Cuts::QWEN2] {
                let matches: Vec<_> = SysRegex::new(regex).unwrap().find_iter(&word).collect();
                prop_assert_eq!(matches, vec![(0, word.len())], "{}", regex);
            }
        }
    }

    #[test]
    fn plain_words_are_letters_after_one_space_or_none() {
        for word in ["a", " the", "Zebra"] {
            assert!(is_plain_word(word), "{word:?}");
        }
        for other in ["", " ", "  two", "don't", "x1", "é", " the\n"] {
            assert!(!is_plain_word(other), "{other:?}");
        }
    }
}
