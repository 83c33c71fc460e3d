//! The tokenizer: a Hugging Face `tokenizer.json` loaded (from a path or `s3://`) or trained
//! (byte-level BPE), and parallel encoding of documents with an end-of-document token after each.

use rayon::prelude::*;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer, TokenizerBuilder};

use super::TokenizeError;
use super::pieces::PieceEncoder;

/// A loaded tokenizer with its end-of-document token.
pub struct TextTokenizer {
    inner: Tokenizer,
    eod: String,
    eod_id: u32,
    hash: String,
    vocab_size: u64,
    json: Vec<u8>,
    ignored: Vec<String>,
    /// The piece encoder when the tokenizer's shape lets texts be encoded piece by piece, else
    /// why not.
    pieces: Result<PieceEncoder, String>,
}

impl TextTokenizer {
    /// Parses `tokenizer.json` bytes; `eod` must be a token of its vocabulary. `origin` names the
    /// file in errors. A file's `truncation` and `padding` (settings for a model's inputs, which
    /// would cut every document short or fill shards with padding) are switched off: documents are
    /// encoded whole. [`Self::ignored_settings`] names what was switched off.
    pub fn from_json(json: &[u8], eod: &str, origin: &str) -> Result<Self, TokenizeError> {
        let failed = |e: tokenizers::Error| TokenizeError::Tokenizer {
            origin: origin.to_string(),
            reason: e.to_string(),
        };
        let mut inner = Tokenizer::from_bytes(json).map_err(failed)?;
        let mut ignored = Vec::new();
        if let Some(t) = inner.get_truncation() {
            ignored.push(format!("truncation (max_length {})", t.max_length));
        }
        if let Some(p) = inner.get_padding() {
            ignored.push(format!("padding ({:?})", p.strategy));
        }
        inner.with_padding(None);
        inner.with_truncation(None).map_err(failed)?;
        let eod_id = inner
            .token_to_id(eod)
            .ok_or_else(|| TokenizeError::Tokenizer {
                origin: origin.to_string(),
                reason: format!(
                    "the end-of-document token `{eod}` is not in its vocabulary{}",
                    eod_hint(&inner)
                ),
            })?;
        // Added tokens may sit above the model's vocabulary: the width must hold the largest id.
        let vocab_size = inner
            .get_vocab(true)
            .values()
            .max()
            .map_or(0, |&m| u64::from(m) + 1);
        Ok(Self {
            eod: eod.to_string(),
            eod_id,
            hash: shards::checksum::to_hex(xxhash_rust::xxh3::xxh3_64(json)),
            vocab_size,
            json: json.to_vec(),
            ignored,
            pieces: PieceEncoder::new(&inner),
            inner,
        })
    }

    /// The file's settings for a model's inputs that encoding ignores (`truncation`, `padding`),
    /// described; empty for most files.
    pub fn ignored_settings(&self) -> &[String] {
        &self.ignored
    }

    /// How texts are encoded, for the log: piece by piece, saying where texts are cut, or whole
    /// by `tokenizers`, saying why.
    pub fn encoding(&self) -> String {
        match &self.pieces {
            Ok(pieces) => format!("piece by piece, {}", pieces.rules()),
            Err(why) => format!(
                "whole by `tokenizers` (several times slower than piece by piece), as {why}"
            ),
        }
    }

    /// The `tokenizer.json` bytes it was parsed from.
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// The text of token ids (special tokens skipped).
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizeError> {
        self.inner
            .decode(ids, true)
            .map_err(|e| TokenizeError::Encode(e.to_string()))
    }

    /// The end-of-document token.
    pub fn eod(&self) -> (&str, u32) {
        (&self.eod, self.eod_id)
    }

    /// xxh3-64 of the `tokenizer.json` bytes, hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// One more than the largest token id.
    pub fn vocab_size(&self) -> u64 {
        self.vocab_size
    }

    /// Token ids of one text, without special tokens added by a post-processor. Piece by piece
    /// where the tokenizer allows it (see [`super::pieces`]): the same ids, several times faster.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizeError> {
        let whole = |text: &str| {
            let encoding = self.inner.encode_fast(text, false)?;
            Ok(encoding.get_ids().to_vec())
        };
        match &self.pieces {
            Ok(pieces) => pieces.encode(text, whole),
            Err(_) => whole(text),
        }
        .map_err(|e| TokenizeError::Encode(e.to_string()))
    }

    /// Token ids of each text followed by the end-of-document token, in parallel (rayon);
    /// the result is in input order whatever the thread count.
    pub fn encode_documents(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, TokenizeError> {
        texts
            .par_iter()
            .map(|t| {
                let mut ids = self.encode(t)?;
                ids.push(self.eod_id);
                Ok(ids)
            })
            .collect()
    }
}

/// For a missing end-of-document token: the file's special tokens that look like one (their
/// text holds `end` or `eos`, or is `</s>`), else its first special tokens, as a hint to set
/// `eod`; empty when it has none.
fn eod_hint(tokenizer: &Tokenizer) -> String {
    let mut special: Vec<(u32, String)> = tokenizer
        .get_added_tokens_decoder()
        .into_iter()
        .filter(|(_, t)| t.special)
        .map(|(id, t)| (id, t.content))
        .collect();
    special.sort_unstable();
    let ends_like = |t: &str| {
        let t = t.to_lowercase();
        t.contains("end") || t.contains("eos") || t == "</s>"
    };
    let mut named: Vec<&str> = special
        .iter()
        .map(|(_, t)| t.as_str())
        .filter(|t| ends_like(t))
        .collect();
    if named.is_empty() {
        named = special.iter().map(|(_, t)| t.as_str()).collect();
    }
    match named.len() {
        0 => String::new(),
        n => {
            let shown: Vec<String> = named.iter().take(6).map(|t| format!("`{t}`")).collect();
            let more = if n > 6 {
                format!(" and {} more", n - 6)
            } else {
                String::new()
            };
            format!(
                "; set `eod` in [tokenize] to one of its special tokens: {}{more}",
                shown.join(", ")
            )
        }
    }
}

/// Fewest ids a trained vocabulary holds: the 256 bytes, a special token and one merge.
pub const MIN_TRAINED_VOCAB: usize = 258;

/// Most ids a trained vocabulary may hold (2^22, eight times the largest vocabularies in use):
/// the trainer reserves memory for every id it is asked for, so a typo would exhaust memory.
pub const MAX_TRAINED_VOCAB: usize = 1 << 22;

/// Why [`train_bpe`] cannot train a vocabulary of `n` ids, if it cannot (a phrase that follows
/// the setting's name).
pub fn trained_vocab_problem(n: usize) -> Option<String> {
    if n < MIN_TRAINED_VOCAB {
        Some(format!(
            "must be at least {MIN_TRAINED_VOCAB} (256 bytes and a special token)"
        ))
    } else if n > MAX_TRAINED_VOCAB {
        Some(format!("({n}) must be at most {MAX_TRAINED_VOCAB}"))
    } else {
        None
    }
}

/// Trains a byte-level BPE (GPT-2 style: byte alphabet, no prefix space) of `vocab_size` ids on
/// `texts`, with `eod` as its first special token; returns `tokenizer.json` text. Training is
/// deterministic: the same texts give the same file.
pub fn train_bpe(
    texts: impl Iterator<Item = String> + Send,
    vocab_size: usize,
    eod: &str,
) -> Result<String, TokenizeError> {
    let failed = |e: tokenizers::Error| TokenizeError::Tokenizer {
        origin: "training".to_string(),
        reason: e.to_string(),
    };
    let byte_level = ByteLevel::new(false, true, true);
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from(eod.to_string(), true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut tokenizer =
        TokenizerBuilder::<BPE, NormalizerWrapper, ByteLevel, ByteLevel, ByteLevel>::new()
            .with_model(BPE::default())
            .with_normalizer(None)
            .with_pre_tokenizer(Some(byte_level))
            .with_post_processor(Some(byte_level))
            .with_decoder(Some(byte_level))
            .build()
            .map_err(failed)?;
    tokenizer.train(&mut trainer, texts).map_err(failed)?;
    tokenizer.to_string(true).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<String> {
        (0..300)
            .map(|i| {
                format!("The river authority measured plan {i} of the harbour, again and again.")
            })
            .collect()
    }

    #[test]
    fn training_is_deterministic_and_round_trips() {
        let a = train_bpe(corpus().into_iter(), 400, "<|endoftext|>").unwrap();
        let b = train_bpe(corpus().into_iter(), 400, "<|endoftext|>").unwrap();
        assert_eq!(a, b);
        let tok = TextTokenizer::from_json(a.as_bytes(), "<|endoftext|>", "trained").unwrap();
        assert_eq!(tok.eod().1, 0, "the special token comes first");
        assert!(tok.vocab_size() <= 400 && tok.vocab_size() > 256);
        let text = "The harbour authority, again.";
        let ids = tok.encode(text).unwrap();
        assert!(ids.len() < text.len(), "merges were learned");
        assert_eq!(tok.inner.decode(&ids, false).unwrap(), text);
        let docs = tok.encode_documents(&[text, "again"]).unwrap();
        assert_eq!(docs[0][..ids.len()], ids[..]);
        assert_eq!(
            docs.iter().map(|d| *d.last().unwrap()).collect::<Vec<_>>(),
            [0, 0]
        );
    }

    #[test]
    fn truncation_and_padding_in_the_file_are_ignored() {
        let plain = train_bpe(corpus().into_iter(), 400, "<|endoftext|>").unwrap();
        let mut value: serde_json::Value = serde_json::from_str(&plain).unwrap();
        // As the Python package writes them after `enable_truncation(4)` and
        // `enable_padding(length=32)`.
        value["truncation"] = serde_json::json!(
            {"direction": "Right", "max_length": 4, "strategy": "LongestFirst", "stride": 0});
        value["padding"] = serde_json::json!({"strategy": {"Fixed": 32}, "direction": "Right",
            "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "<|endoftext|>"});
        let json = value.to_string();
        let raw = Tokenizer::from_bytes(json.as_bytes()).unwrap();
        let text = "The river authority measured plan 7 of the harbour, again and again.";
        assert_eq!(
            raw.encode_fast(text, false).unwrap().len(),
            32,
            "the file pads"
        );

        let tok = TextTokenizer::from_json(json.as_bytes(), "<|endoftext|>", "t.json").unwrap();
        let whole = TextTokenizer::from_json(plain.as_bytes(), "<|endoftext|>", "p").unwrap();
        assert_eq!(tok.encode(text).unwrap(), whole.encode(text).unwrap());
        assert!(tok.encode(text).unwrap().len() > 4);
        assert_eq!(
            tok.ignored_settings(),
            ["truncation (max_length 4)", "padding (Fixed(32))"]
        );
        assert!(whole.ignored_settings().is_empty());
    }

    #[test]
    fn a_missing_end_of_document_token_is_a_clear_error() {
        let json = train_bpe(corpus().into_iter(), 300, "<|endoftext|>").unwrap();
        let err = TextTokenizer::from_json(json.as_bytes(), "</s>", "t.json")
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("`</s>` is not in its vocabulary"),
            "{err}"
        );
        assert!(
            err.to_string()
                .ends_with("set `eod` in [tokenize] to one of its special tokens: `<|endoftext|>`"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_end_of_document_token_names_those_that_look_like_one() {
        let json = train_bpe(corpus().into_iter(), 300, "<|begin_of_text|>").unwrap();
        let mut tok = Tokenizer::from_bytes(json.as_bytes()).unwrap();
        let reserved = (0..8).map(|i| AddedToken::from(format!("<|reserved_{i}|>"), true));
        tok.add_special_tokens(
            [
                AddedToken::from("<|end_of_text|>", true),
                AddedToken::from("<|eot_id|>", true),
            ]
            .into_iter()
            .chain(reserved)
            .collect::<Vec<_>>(),
        )
        .unwrap();
        let json = tok.to_string(false).unwrap();
        let err = TextTokenizer::from_json(json.as_bytes(), "<|endoftext|>", "llama.json")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.ends_with("to one of its special tokens: `<|end_of_text|>`"),
            "only the one that looks like an end: {err}"
        );
        let bare = train_bpe(corpus().into_iter(), 300, "<|x|>").unwrap();
        let mut tok = Tokenizer::from_bytes(bare.as_bytes()).unwrap();
        tok.add_special_tokens(
            (0..8)
                .map(|i| AddedToken::from(format!("<|r{i}|>"), true))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let err = TextTokenizer::from_json(tok.to_string(false).unwrap().as_bytes(), "</s>", "r")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.ends_with("`<|x|>`, `<|r0|>`, `<|r1|>`, `<|r2|>`, `<|r3|>`, `<|r4|>` and 3 more"),
            "{err}"
        );
    }
}
