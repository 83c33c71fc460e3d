//! Encoding a text piece by piece, with each piece's ids cached.
//!
//! A byte-level BPE tokenizer (GPT-2's pre-tokenizer: `ByteLevel` with its regex and no prefix
//! space; a `BPE` model without dropout; no normalizer, or NFC) never makes a token across
//! certain places in a text, so the text can be cut there and each piece encoded on its own to
//! the same ids. The pre-tokenizer's regex is
//! `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, and it looks
//! ahead but never behind, so a piece encodes alone as it does in the text when a match ends
//! right before it and the piece before it does not end in whitespace (whose lookahead would see
//! the piece's end instead of the next character). [`Pieces`] cuts
//! - before an ASCII whitespace character that follows a character other than whitespace: the
//!   word patterns (a letter, digit or other run after an optional space, and the contractions)
//!   take no whitespace after their first character;
//! - between two ASCII characters other than whitespace of different classes (letter, digit,
//!   other), unless the first is an apostrophe, which may begin a contraction (`'s`).
//!
//! Pieces are short and repeat (mostly a word with its leading space), so the ids of each are
//! cached per thread, and most of a text costs a lookup instead of the tokenizer's normalizing,
//! splitting and merging. Cuts must not split an added token either, nor change what a
//! normalizer does: a text holding the content of an added token that is not all whitespace is
//! encoded whole (one of whitespace only, such as GPT-NeoX's runs of spaces, matches inside a
//! run of whitespace, which no cut splits). With the NFC normalizer, a text's NFC is cut
//! instead: the tokenizer composes before it splits, so the two encode alike, and NFC leaves the
//! ASCII characters cuts fall before as they are, composing them with nothing before them.
//! Tokenizers of another shape encode every text whole.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use aho_corasick::AhoCorasick;
use filters::normalize::is_nfc;
use tokenizers::normalizers::unicode::NFC;
use tokenizers::{
    ModelWrapper, NormalizedString, Normalizer, NormalizerWrapper, PreTokenizerWrapper, Tokenizer,
};

/// Pieces a thread's cache holds before it starts again: bounds its memory to roughly
/// 100 bytes a piece, about 13 MB.
const CACHE_PIECES: usize = 1 << 17;

/// Gives each encoder an identity, so that a thread's cache never serves another's pieces.
static NEXT_ENCODER: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// A thread's cached ids of pieces, for one encoder at a time.
#[derive(Default)]
struct Cache {
    encoder: Option<u64>,
    ids: HashMap<Box<str>, Box<[u32]>, foldhash::fast::FixedState>,
}

/// Encodes texts piece by piece for a tokenizer of the shape the module describes.
#[derive(Debug)]
pub struct PieceEncoder {
    id: u64,
    /// The normalizer is NFC: texts are cut in NFC.
    nfc: bool,
    /// The added tokens with a character other than whitespace (as written and in NFC): texts
    /// holding one are encoded whole.
    added: Option<AhoCorasick>,
}

impl PieceEncoder {
    /// The encoder for `tokenizer`, or `None` when its shape does not allow cutting texts.
    pub fn new(tokenizer: &Tokenizer) -> Option<Self> {
        let nfc = match tokenizer.get_normalizer() {
            None => false,
            Some(NormalizerWrapper::NFC(_)) => true,
            Some(_) => return None,
        };
        match tokenizer.get_pre_tokenizer() {
            Some(PreTokenizerWrapper::ByteLevel(b)) if b.use_regex && !b.add_prefix_space => {}
            _ => return None,
        }
        match tokenizer.get_model() {
            ModelWrapper::BPE(bpe) if bpe.dropout.is_none_or(|p| p == 0.0) => {}
            _ => return None,
        }
        let tokens = tokenizer.get_added_tokens_decoder();
        if tokens
            .values()
            .any(|t| t.lstrip || t.rstrip || t.single_word)
        {
            return None;
        }
        let patterns: Vec<String> = tokens
            .values()
            .filter(|t| !t.content.chars().all(char::is_whitespace))
            .flat_map(|t| std::iter::once(t.content.clone()).chain(tokenizers_nfc(&t.content)))
            .collect();
        let added = match patterns.is_empty() {
            true => None,
            false => Some(AhoCorasick::new(&patterns).ok()?),
        };
        Some(Self {
            id: NEXT_ENCODER.fetch_add(1, Ordering::Relaxed),
            nfc,
            added,
        })
    }

    /// What to cut in place of `text`: `text` itself, or its NFC under the NFC normalizer (the
    /// tokenizer normalizes before it splits, so both encode alike; composed by the tokenizer's
    /// normalizer when Unicode's quick check does not pass); `None` when `text` must be encoded
    /// whole, because it or its NFC holds an added token.
    pub fn cuttable<'a>(&self, text: &'a str) -> Option<Cow<'a, str>> {
        let holds_added = |t: &str| self.added.as_ref().is_some_and(|a| a.is_match(t));
        if holds_added(text) {
            return None;
        }
        let text = match self.nfc && !is_nfc(text) {
            true => Cow::Owned(tokenizers_nfc(text)?),
            false => Cow::Borrowed(text),
        };
        match &text {
            Cow::Owned(nfc) if holds_added(nfc) => None,
            _ => Some(text),
        }
    }

    /// The ids of `text`: those of its pieces (see [`Self::cuttable`]), from the thread's cache
    /// or from `whole`, which encodes one piece; or `whole(text)` when it cannot be cut.
    pub fn encode<E>(
        &self,
        text: &str,
        mut whole: impl FnMut(&str) -> Result<Vec<u32>, E>,
    ) -> Result<Vec<u32>, E> {
        let Some(text) = self.cuttable(text) else {
            return whole(text);
        };
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            if cache.encoder != Some(self.id) {
                cache.ids.clear();
                cache.encoder = Some(self.id);
            }
            let mut ids = Vec::with_capacity(text.len() / 3);
            for piece in Pieces::new(&text) {
                if let Some(hit) = cache.ids.get(piece) {
                    ids.extend_from_slice(hit);
                    continue;
                }
                let piece_ids = whole(piece)?;
                ids.extend_from_slice(&piece_ids);
                if cache.ids.len() >= CACHE_PIECES {
                    cache.ids.clear();
                }
                cache.ids.insert(piece.into(), piece_ids.into());
            }
            Ok(ids)
        })
    }
}

/// `text` in NFC as the tokenizer's own normalizer composes it (its Unicode tables may be older
/// than those of the `normalize` stage, and the ids must be the tokenizer's).
fn tokenizers_nfc(text: &str) -> Option<String> {
    let mut normalized = NormalizedString::from(text);
    NFC.normalize(&mut normalized).ok()?;
    Some(normalized.get().to_string())
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
    /// Where the current piece starts.
    start: usize,
    /// The next byte to look at.
    at: usize,
    before: Before,
}

impl<'a> Pieces<'a> {
    /// The pieces of `text`.
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
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
                let space = is_ascii_white_space(b);
                let cut = match self.before {
                    Before::Whitespace => false,
                    Before::Other => space,
                    Before::Ascii(p) => space || (class(p) != class(b) && p != b'\''),
                };
                let now = if space {
                    Before::Whitespace
                } else {
                    Before::Ascii(b)
                };
                (cut, now, 1)
            } else {
                let c = self.text[self.at..].chars().next().unwrap_or_default();
                let now = if c.is_whitespace() {
                    Before::Whitespace
                } else {
                    Before::Other
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

/// Unicode's `White_Space` among ASCII characters (what the regex's `\s` matches there).
fn is_ascii_white_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// An ASCII character's class in the regex: letter, digit or other.
fn class(b: u8) -> u8 {
    match b {
        b'a'..=b'z' | b'A'..=b'Z' => 0,
        b'0'..=b'9' => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use proptest::prelude::*;
    use tokenizers::normalizers::unicode::NFC;
    use tokenizers::{AddedToken, Tokenizer};

    use super::*;
    use crate::tokenize::tokenizer::train_bpe;

    /// OLMo's GPT-NeoX tokenizer from `../shared/data` (NFC, runs of spaces as added tokens).
    fn olmo() -> Tokenizer {
        static OLMO: LazyLock<Tokenizer> = LazyLock::new(read_olmo);
        OLMO.clone()
    }

    fn read_olmo() -> Tokenizer {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/tokenizers/gpt-neox-olmo.json"
        );
        Tokenizer::from_file(path).expect("../shared/data beside the project")
    }

    /// A byte-level BPE trained here, with NFC and added tokens of both kinds.
    fn trained_with_nfc_and_added_tokens() -> Tokenizer {
        static TRAINED: LazyLock<Tokenizer> = LazyLock::new(train_with_nfc_and_added_tokens);
        TRAINED.clone()
    }

    fn train_with_nfc_and_added_tokens() -> Tokenizer {
        let texts = (0..200).map(|i| format!("The café's {i} rivers don't   flow, again.\n"));
        let json = train_bpe(texts, 400, "<|endoftext|>").unwrap();
        let mut tok = Tokenizer::from_bytes(json.as_bytes()).unwrap();
        tok.with_normalizer(Some(NFC)).unwrap();
        tok.add_tokens([
            AddedToken::from("  ", false),
            AddedToken::from("\n\n", false),
            AddedToken::from("|||IP|||", false),
            AddedToken::from("|||OK|||", false),
        ])
        .unwrap();
        tok
    }

    fn whole(tok: &Tokenizer, text: &str) -> Result<Vec<u32>, String> {
        tok.encode_fast(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| e.to_string())
    }

    fn pieces(text: &str) -> Vec<&str> {
        Pieces::new(text).collect()
    }

    #[test]
    fn cuts_fall_where_the_docs_say() {
        assert_eq!(
            pieces("It's 3rd-rate:  x\n\tfoo(bar) l'été"),
            [
                "It", "'s", " 3", "rd", "-", "rate", ":", "  x", "\n\tfoo", "(", "bar", ")", " l",
                "'été"
            ]
        );
        assert_eq!(pieces("  lead"), ["  lead"], "no cut after whitespace");
        assert_eq!(pieces("día 中文 x"), ["día", " 中文", " x"]);
        assert!(pieces("").is_empty());
    }

    #[test]
    fn tokenizers_of_the_shape_are_taken_and_others_not() {
        let encoder = PieceEncoder::new(&olmo()).expect("OLMo's tokenizer has the shape");
        let plain = "Plain text,   with runs of spaces.";
        assert_eq!(encoder.cuttable(plain).as_deref(), Some(plain));
        assert_eq!(
            encoder.cuttable("cafe\u{301}").as_deref(),
            Some("café"),
            "cut in NFC"
        );
        assert!(
            encoder.cuttable("a document<|endoftext|>").is_none(),
            "an added token"
        );
        assert!(
            encoder.cuttable("a |||IP_ADDRESS||| b").is_none(),
            "an added token"
        );

        let mut prefixed = olmo();
        prefixed.with_pre_tokenizer(Some(
            tokenizers::pre_tokenizers::byte_level::ByteLevel::new(true, true, true),
        ));
        assert!(PieceEncoder::new(&prefixed).is_none(), "a prefix space");
        let mut lowercased = olmo();
        lowercased
            .with_normalizer(Some(tokenizers::normalizers::utils::Lowercase))
            .unwrap();
        assert!(
            PieceEncoder::new(&lowercased).is_none(),
            "another normalizer"
        );
    }

    #[test]
    fn a_text_that_holds_an_added_token_only_in_nfc_is_encoded_whole() {
        let tok = trained_with_nfc_and_added_tokens();
        let encoder = PieceEncoder::new(&tok).unwrap();
        // The Kelvin sign is `K` in NFC: the normalized text holds the added token `|||OK|||`.
        let text = "a |||O\u{212a}||| b";
        assert!(encoder.cuttable(text).is_none());
        let ok = tok.token_to_id("|||OK|||").unwrap();
        assert!(whole(&tok, text).unwrap().contains(&ok));
    }

    #[test]
    fn a_threads_cache_serves_one_encoder_only() {
        let (a, b) = (olmo(), trained_with_nfc_and_added_tokens());
        let (ea, eb) = (
            PieceEncoder::new(&a).unwrap(),
            PieceEncoder::new(&b).unwrap(),
        );
        let text = "The rivers flow again.";
        for _ in 0..2 {
            let ids_a = ea.encode(text, |p| whole(&a, p)).unwrap();
            let ids_b = eb.encode(text, |p| whole(&b, p)).unwrap();
            assert_eq!(ids_a, whole(&a, text).unwrap());
            assert_eq!(ids_b, whole(&b, text).unwrap());
            assert_ne!(ids_a, ids_b);
        }
    }

    /// Texts made of the fragments cutting, NFC and the regex care about; now and then an added
    /// token, which makes a text be encoded whole, so that most are cut.
    fn tricky_text() -> impl Strategy<Value = String> {
        let cut = [
            "a",
            "Z",
            "the",
            " the",
            "don",
            "'",
            "'s",
            "'ll",
            "'T",
            "3",
            "42",
            "٣",
            "é",
            "中文",
            "Ω",
            "ﬁ",
            "😀",
            " ",
            "  ",
            "     ",
            "\n",
            "\n\n",
            "\t",
            "\r\n",
            "\u{a0}",
            "\u{3000}",
            "\u{85}",
            "\u{1c}",
            ",",
            ".",
            "(",
            "-",
            "_",
            "|||",
            "<|",
            "\u{7f}",
            "e\u{301}",
            "q\u{301}",
            "\u{301}",
            "\u{2126}",
            "\u{212a}",
            "\u{1100}\u{1161}",
        ];
        let added = ["<|endoftext|>", "|||IP|||", "|||IP_ADDRESS|||", "|||OK|||"];
        let fragment = prop_oneof![
            40 => proptest::sample::select(cut.to_vec()),
            1 => proptest::sample::select(added.to_vec()),
        ];
        proptest::collection::vec(fragment, 0..40).prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn pieces_make_up_the_text(text in "\\PC*") {
            prop_assert_eq!(Pieces::new(&text).collect::<String>(), text.clone());
            prop_assert!(Pieces::new(&text).all(|p| !p.is_empty()));
        }

        #[test]
        fn pieces_encode_to_the_tokenizers_ids(text in tricky_text()) {
            for tok in [olmo(), trained_with_nfc_and_added_tokens()] {
                let encoder = PieceEncoder::new(&tok).unwrap();
                let ids = encoder.encode(&text, |p| whole(&tok, p)).unwrap();
                prop_assert_eq!(ids, whole(&tok, &text).unwrap(), "{:?}", text);
            }
        }
    }
}
