//! A byte-level BPE model's merges applied to a word's bytes, giving ids only.
//!
//! The `tokenizers` crate's BPE model tokenizes a word into `Token`s (each with its string and
//! offsets, so an allocation a token), through a thread-local cache and a heap of candidate
//! merges. For the ids alone, a short word is merged here instead: its bytes are mapped to their
//! tokens' ids, and the adjacent pair of lowest rank (the leftmost of equal ones) is merged until
//! no pair has a merge. That is the order the model's heap gives, so the ids are the same.
//! Long words, and models with options this does not follow (dropout, a subword prefix or suffix,
//! bytes missing from the vocabulary), are left to the model. SentencePiece-style models
//! ([`CharMerges`]) start from one token a character instead, falling back to bytes as the model
//! does; a character without a token and without byte fallback leaves the word to the model,
//! whose unknown token this does not follow.

use std::collections::HashMap;

use tokenizers::models::bpe::BPE;

/// Words of more bytes than this are left to the model, whose heap scales better than scanning
/// every pair after each merge.
pub const LONGEST_MERGED: usize = 64;

/// A byte without a token, in [`ByteMerges::byte_ids`].
const NO_ID: u32 = u32::MAX;

/// A pair's rank and the id of the token it merges into.
type Merge = (u32, u32);

/// A BPE model's vocabulary and merges.
struct ModelParts {
    vocab: HashMap<String, u32, foldhash::fast::FixedState>,
    /// In rank order, each pair once.
    merges: Vec<(String, String)>,
}

/// The merges of a BPE model's serialized form (the crate keeps them private).
#[derive(serde::Deserialize)]
struct Serialized {
    merges: Vec<(String, String)>,
}

impl ModelParts {
    /// The parts of `model`; `None` if its serialized form is not the one expected. The
    /// vocabulary is the model's own rather than its serialized form, which keeps one token an
    /// id.
    fn of(model: &BPE) -> Option<Self> {
        let Serialized { merges } =
            serde_json::from_slice(&serde_json::to_vec(model).ok()?).ok()?;
        let vocab = model.get_vocab().into_iter().collect();
        Some(Self { vocab, merges })
    }
}

/// A BPE model's merges, by the ids of the pair.
#[derive(Debug)]
struct Pairs(HashMap<(u32, u32), Merge, foldhash::fast::FixedState>);

impl Pairs {
    /// The parts of `model` and its merges; `None` when the model has an option the merging
    /// here does not follow.
    fn of(model: &BPE) -> Option<(ModelParts, Self)> {
        let plain = model.dropout.is_none_or(|d| d == 0.0)
            && model.continuing_subword_prefix.is_none()
            && model.end_of_word_suffix.is_none();
        if !plain {
            return None;
        }
        let parts = ModelParts::of(model)?;
        let pairs = Self::of_parts(&parts)?;
        Some((parts, pairs))
    }

    fn of_parts(parts: &ModelParts) -> Option<Self> {
        let vocab = &parts.vocab;
        let mut merges = HashMap::with_capacity_and_hasher(parts.merges.len(), Default::default());
        let mut joined = String::new();
        for (rank, (a, b)) in parts.merges.iter().enumerate() {
            joined.clear();
            joined.push_str(a);
            joined.push_str(b);
            let merge = (rank as u32, *vocab.get(&joined)?);
            merges.insert((*vocab.get(a)?, *vocab.get(b)?), merge);
        }
        Some(Self(merges))
    }

    /// Merges `symbols[..n]` in place, the adjacent pair of lowest rank first (the leftmost of
    /// equal ones), until no pair has a merge; appends the result to `ids`.
    fn merge_into(&self, symbols: &mut [u32; LONGEST_MERGED], mut n: usize, ids: &mut Vec<u32>) {
        let merge_of = |a: u32, b: u32| self.0.get(&(a, b)).copied();
        let mut ranks = [None::<Merge>; LONGEST_MERGED];
        for i in 0..n.saturating_sub(1) {
            ranks[i] = merge_of(symbols[i], symbols[i + 1]);
        }
        loop {
            let best = ranks[..n.saturating_sub(1)]
                .iter()
                .enumerate()
                .filter_map(|(i, m)| m.map(|(rank, id)| (rank, i, id)))
                .min();
            let Some((_, i, id)) = best else { break };
            symbols[i] = id;
            symbols.copy_within(i + 2..n, i + 1);
            ranks.copy_within(i + 2..n, i + 1);
            n -= 1;
            if i > 0 {
                ranks[i - 1] = merge_of(symbols[i - 1], symbols[i]);
            }
            if i + 1 < n {
                ranks[i] = merge_of(symbols[i], symbols[i + 1]);
            }
        }
        ids.extend_from_slice(&symbols[..n]);
    }
}

/// The merges of a byte-level BPE model, whose words start as one token a byte.
#[derive(Debug)]
pub struct ByteMerges {
    pairs: Pairs,
    /// The id of each byte's token, or [`NO_ID`].
    byte_ids: [u32; 256],
}

impl ByteMerges {
    /// The merges of `model`, whose tokens spell byte `b` as `chars[b]`; `None` when the model
    /// has an option the merging here does not follow, or lacks a byte's token.
    pub fn new(model: &BPE, chars: &[char; 256]) -> Option<Self> {
        let (parts, pairs) = Pairs::of(model)?;
        Self::of_parts(&parts, pairs, chars)
    }

    fn of_parts(parts: &ModelParts, pairs: Pairs, chars: &[char; 256]) -> Option<Self> {
        let mut byte_ids = [NO_ID; 256];
        for (b, (slot, c)) in byte_ids.iter_mut().zip(chars).enumerate() {
            match parts.vocab.get(c.encode_utf8(&mut [0; 4]) as &str) {
                Some(&id) => *slot = id,
                // Bytes UTF-8 never holds may lack a token (OLMo's vocabulary has none for them).
                None if matches!(b, 0xC0 | 0xC1 | 0xF5..=0xFF) => {}
                None => return None,
            }
        }
        Some(Self { pairs, byte_ids })
    }

    /// Appends the ids of `word`'s bytes merged, or returns `false` (appending nothing) when it
    /// is longer than [`LONGEST_MERGED`] or holds a byte without a token.
    pub fn encode(&self, word: &[u8], ids: &mut Vec<u32>) -> bool {
        if word.len() > LONGEST_MERGED {
            return false;
        }
        let mut symbols = [0u32; LONGEST_MERGED];
        for (s, &b) in symbols.iter_mut().zip(word) {
            *s = self.byte_ids[usize::from(b)];
            if *s == NO_ID {
                return false;
            }
        }
        self.pairs.merge_into(&mut symbols, word.len(), ids);
        true
    }
}

/// The merges of a SentencePiece-style BPE model, whose words start as one token a character
/// (a character without one as one token a byte, `<0x41>`, with byte fallback).
#[derive(Debug)]
pub struct CharMerges {
    pairs: Pairs,
    /// The id of each character that is a token.
    char_ids: HashMap<char, u32, foldhash::fast::FixedState>,
    /// The id of each byte's fallback token, when the model falls back to bytes and has them all.
    byte_ids: Option<[u32; 256]>,
}

impl CharMerges {
    /// The merges of `model`; `None` when the model has an option the merging here does not
    /// follow.
    pub fn new(model: &BPE) -> Option<Self> {
        let (parts, pairs) = Pairs::of(model)?;
        let char_ids = parts
            .vocab
            .iter()
            .filter_map(|(token, &id)| {
                let mut chars = token.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Some((c, id)),
                    _ => None,
                }
            })
            .collect();
        let byte_ids = model
            .byte_fallback
            .then(|| {
                let mut ids = [0; 256];
                for (b, slot) in ids.iter_mut().enumerate() {
                    *slot = *parts.vocab.get(&format!("<0x{b:02X}>"))?;
                }
                Some(ids)
            })
            .flatten();
        Some(Self {
            pairs,
            char_ids,
            byte_ids,
        })
    }

    /// Appends the ids of `word`'s characters merged, or returns `false` (appending nothing)
    /// when it is longer than [`LONGEST_MERGED`] bytes or holds a character that is no token
    /// (and cannot fall back to bytes): the model's unknown token is left to the model.
    pub fn encode(&self, word: &str, ids: &mut Vec<u32>) -> bool {
        if word.len() > LONGEST_MERGED {
            return false;
        }
        let mut symbols = [0u32; LONGEST_MERGED];
        let mut n = 0;
        for c in word.chars() {
            if let Some(&id) = self.char_ids.get(&c) {
                symbols[n] = id;
                n += 1;
            } else if let Some(bytes) = &self.byte_ids {
                for b in c.encode_utf8(&mut [0; 4]).bytes() {
                    symbols[n] = bytes[usize::from(b)];
                    n += 1;
                }
            } else {
                return false;
            }
        }
        self.pairs.merge_into(&mut symbols, n, ids);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::byte_level::byte_chars;
    use super::*;
    use tokenizers::{Model, ModelWrapper, Tokenizer};

    fn olmo_model() -> BPE {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/tokenizers/gpt-neox-olmo.json"
        );
        let tok = Tokenizer::from_file(path).expect("../shared/data beside the project");
        match tok.get_model() {
            ModelWrapper::BPE(bpe) => bpe.clone(),
            _ => panic!("OLMo's model is BPE"),
        }
    }

    #[test]
    fn olmos_words_merge_as_its_model_merges_them() {
        let model = olmo_model();
        let merges = ByteMerges::new(&model, &byte_chars()).expect("OLMo's merges are taken");
        let words = [
            " the",
            "information",
            " Hello",
            "12345",
            "中文",
            "😀",
            "aaaa",
            " ",
            "x",
        ];
        let long = "y".repeat(LONGEST_MERGED + 1);
        for word in words.into_iter().chain([long.as_str()]) {
            let spelled: String = word.bytes().map(|b| byte_chars()[usize::from(b)]).collect();
            let theirs: Vec<u32> = model
                .tokenize(&spelled)
                .unwrap()
                .iter()
                .map(|t| t.id)
                .collect();
            let mut ours = Vec::new();
            if merges.encode(word.as_bytes(), &mut ours) {
                assert_eq!(ours, theirs, "{word:?}");
            } else {
                assert_eq!(word.len(), LONGEST_MERGED + 1, "only long words are left");
                assert!(ours.is_empty());
            }
        }
    }

    #[test]
    fn models_with_options_not_followed_are_left_to_the_model() {
        let mut model = olmo_model();
        model.dropout = Some(0.1);
        assert!(ByteMerges::new(&model, &byte_chars()).is_none());
        let mut model = olmo_model();
        model.continuing_subword_prefix = Some("##".into());
        assert!(ByteMerges::new(&model, &byte_chars()).is_none());
        let mut parts = ModelParts::of(&olmo_model()).unwrap();
        let pairs = Pairs::of_parts(&parts).unwrap();
        parts.vocab.remove("a");
        assert!(
            ByteMerges::of_parts(&parts, pairs, &byte_chars()).is_none(),
            "a byte without a token"
        );
    }

    #[test]
    fn characters_sharing_an_id_keep_it() {
        // The serialized vocabulary keeps one token an id: `a` or `c` would be lost from it, and
        // fall back to its byte's token. (Its merges are lossy too, so a model with merges and
        // shared ids is left to itself: no merges here.)
        let mut vocab: serde_json::Map<String, serde_json::Value> = (0..=255u32)
            .map(|b| (format!("<0x{b:02X}>"), b.into()))
            .collect();
        for (token, id) in [("a", 256), ("c", 256), ("b", 257)] {
            vocab.insert(token.into(), id.into());
        }
        let json = serde_json::json!({
            "type": "BPE",
            "vocab": vocab,
            "merges": [],
            "byte_fallback": true,
        });
        let model: BPE = serde_json::from_str(&json.to_string()).unwrap();
        let merged = CharMerges::new(&model).expect("its merges are taken");
        for word in ["c", "a", "cab", "x"] {
            let theirs: Vec<u32> = model.tokenize(word).unwrap().iter().map(|t| t.id).collect();
            let mut ours = Vec::new();
            assert!(merged.encode(word, &mut ours));
            assert_eq!(ours, theirs, "{word:?}");
        }
    }
}
