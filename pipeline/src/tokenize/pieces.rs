//! Encoding a text piece by piece, with each piece's ids cached.
//!
//! A byte-level BPE tokenizer splits a text at its added tokens (see [`super::added`]),
//! normalizes the parts between them, splits those with a regex and encodes each match on its
//! own. Where the regex is one whose cut rules are known (see [`super::cuts`]: GPT-2's, as
//! GPT-2, GPT-NeoX, OLMo and the tokenizers `refinery tokenizer train` writes use it, and Llama
//! 3's or Qwen2's), the parts can be cut further and each piece encoded alone to the same ids:
//! by the regex and the model (see [`super::byte_level`]), or by the tokenizer itself where its
//! normalizer would change the piece. A SentencePiece-style tokenizer (Llama 2, Mistral) spells each part
//! with a metaspace for spaces and encodes it with its model; its parts are cut before the
//! metaspace as [`super::metaspace`] explains, and each piece is encoded by the model alone.
//!
//! The shapes taken: no normalizer or NFC; the `ByteLevel` pre-tokenizer with its regex and no
//! prefix space, a `Split` by a known regex (`Isolated`) followed by `ByteLevel` without a regex
//! or prefix space, or a `Metaspace` pre-tokenizer; or, with no pre-tokenizer, the normalizers
//! `Prepend` a metaspace then `Replace` spaces with it; a `BPE` model without dropout; no added
//! token with `lstrip`, `rstrip` or `single_word`; special tokens not encoded as text.
//!
//! Pieces are short and repeat (mostly a word with its leading space), so the ids of each are
//! cached per thread (see [`super::piece_cache`]), and most of a text costs a lookup instead of
//! the tokenizer's normalizing, splitting and merging. Under NFC each part is composed first (by
//! the tokenizer's own normalizer, when Unicode's quick check does not pass) and cut in NFC; NFC
//! leaves the ASCII characters cuts fall before as they are, composing them with nothing before
//! them. Should composing make a special token's text appear (a Kelvin sign composing to `K`),
//! which the tokenizer would take as text but a piece encoded alone by a byte-level tokenizer as
//! the token, the text is encoded whole. Tokenizers of other shapes encode every text whole.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use filters::normalize::is_nfc;
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::split::SplitPattern;
use tokenizers::{
    ModelWrapper, NormalizedString, Normalizer, NormalizerWrapper, PreTokenizerWrapper,
    SplitDelimiterBehavior, Tokenizer,
};
use unicode_normalization_alignments::UnicodeNormalization;

use super::added::{AddedTokens, Part};
use super::byte_level::ByteLevelModel;
use super::cuts::{Cuts, Pieces};
use super::metaspace::{Metaspace, Speller};
use super::piece_cache::{Key, PieceCache};

/// Gives each encoder an identity, so that a thread's cache never serves another's pieces.
static NEXT_ENCODER: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static CACHE: RefCell<PieceCache> = RefCell::new(PieceCache::default());
}

/// Encodes texts piece by piece for a tokenizer of a shape the module describes.
#[derive(Debug)]
pub struct PieceEncoder {
    id: u64,
    form: Form,
    /// The normalizer is NFC: parts are cut in NFC.
    nfc: bool,
    /// The added tokens matched as written.
    raw: AddedTokens,
    /// The added tokens matched in normalized text, in their normalized form.
    normalized: AddedTokens,
}

/// How parts are cut and pieces encoded.
#[derive(Debug)]
enum Form {
    /// Byte-level: cut by a regex's rules, each piece encoded by the regex and the model (see
    /// [`super::byte_level`]), or by the tokenizer where its NFC would change the piece.
    Bytes(Cuts, Box<ByteLevelModel>),
    /// SentencePiece style: spelled with a metaspace, cut before it, each piece encoded by the
    /// model.
    Metaspace(Box<Metaspace>),
}

impl PieceEncoder {
    /// The encoder for `tokenizer`, or why its shape does not allow cutting texts.
    pub fn new(tokenizer: &Tokenizer) -> Result<Self, String> {
        let bpe = match tokenizer.get_model() {
            ModelWrapper::BPE(bpe) if bpe.dropout.is_none_or(|p| p == 0.0) => bpe,
            ModelWrapper::BPE(_) => return Err("its BPE model has dropout".into()),
            other => return Err(format!("its model, {}", type_name(other))),
        };
        let (nfc, form) = match (tokenizer.get_normalizer(), tokenizer.get_pre_tokenizer()) {
            (Some(NormalizerWrapper::Sequence(sequence)), None) => (
                false,
                Form::Metaspace(Box::new(Metaspace::of_normalizers(
                    spelling(sequence)?,
                    bpe,
                )?)),
            ),
            (_, None) => return Err("it has no pre-tokenizer".into()),
            (normalizer, Some(pre_tokenizer)) => {
                let nfc = match normalizer {
                    None => false,
                    Some(NormalizerWrapper::NFC(_)) => true,
                    Some(other) => return Err(format!("its normalizer, {}", type_name(other))),
                };
                let form = match pre_tokenizer {
                    PreTokenizerWrapper::Metaspace(pre) => {
                        Form::Metaspace(Box::new(Metaspace::of_pre_tokenizer(pre, bpe)?))
                    }
                    other => {
                        let (cuts, regex) = cuts_of(other)?;
                        Form::Bytes(cuts, Box::new(ByteLevelModel::new(regex, bpe)?))
                    }
                };
                (nfc, form)
            }
        };
        let tokens = tokenizer.get_added_tokens_decoder();
        if tokenizer.get_encode_special_tokens() {
            return Err("it encodes special tokens as text".into());
        }
        if let Some(t) = tokens
            .values()
            .find(|t| t.lstrip || t.rstrip || t.single_word)
        {
            return Err(format!(
                "its added token `{}` strips spaces or matches single words only",
                t.content
            ));
        }
        let (mut raw, mut normalized) = (Vec::new(), Vec::new());
        for (&id, token) in &tokens {
            match (token.normalized, tokenizer.get_normalizer()) {
                (false, _) => raw.push((token.content.clone(), id)),
                (true, None) => normalized.push((token.content.clone(), id)),
                (true, Some(normalizer)) => normalized.push((
                    normalized_by(normalizer, &token.content)
                        .ok_or("its normalizer fails on an added token")?,
                    id,
                )),
            }
        }
        let twins = || "two of its added tokens have the same text, or one is empty".to_string();
        Ok(Self {
            id: NEXT_ENCODER.fetch_add(1, Ordering::Relaxed),
            form,
            nfc,
            raw: AddedTokens::new(raw).ok_or_else(twins)?,
            normalized: AddedTokens::new(normalized).ok_or_else(twins)?,
        })
    }

    /// Where the encoder cuts texts, for the log.
    pub fn rules(&self) -> String {
        match &self.form {
            Form::Bytes(cuts, _) => format!("cut by the rules of {}", cuts.regex_name()),
            Form::Metaspace(metaspace) => metaspace.rules(),
        }
    }

    /// The ids of `text`, as the tokenizer would give them: its added tokens' ids, and those of
    /// the pieces of the parts between them, from the thread's cache or encoded (by `whole`,
    /// which encodes a text with the whole tokenizer, or by the model); or `whole(text)` when it
    /// cannot be cut (see the module docs).
    pub fn encode(
        &self,
        text: &str,
        mut whole: impl FnMut(&str) -> tokenizers::Result<Vec<u32>>,
    ) -> tokenizers::Result<Vec<u32>> {
        let mut ids = Vec::with_capacity(text.len() / 3);
        let cut = CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            cache.serve(self.id);
            self.raw.split(text, |part| {
                let part = match part {
                    Part::Token(id) => {
                        ids.push(id);
                        return Ok(());
                    }
                    Part::Text(part) => part,
                };
                let at_start = part.as_ptr() == text.as_ptr();
                let normalized = self.normalize(part).ok_or(Halt::Whole)?;
                let composed = matches!(normalized, Cow::Owned(_));
                self.normalized.split(&normalized, |sub| match sub {
                    Part::Token(id) => {
                        ids.push(id);
                        Ok(())
                    }
                    Part::Text(sub) => match &self.form {
                        Form::Bytes(..) if composed && self.raw.occur_in(sub) => Err(Halt::Whole),
                        Form::Bytes(cuts, model) => {
                            let encode = |p: &str| {
                                if self.nfc && !in_tokenizers_nfc(p) {
                                    whole(p)
                                } else {
                                    model.encode(p)
                                }
                            };
                            let pieces = Pieces::new(sub, *cuts);
                            encode_pieces(pieces, &mut cache, &mut ids, encode)
                                .map_err(Halt::Failed)
                        }
                        Form::Metaspace(metaspace) => {
                            let at_start = at_start && sub.as_ptr() == normalized.as_ptr();
                            let spelled = metaspace.spell(sub, at_start);
                            let pieces = metaspace.pieces(&spelled);
                            encode_pieces(pieces, &mut cache, &mut ids, |p| metaspace.encode(p))
                                .map_err(Halt::Failed)
                        }
                    },
                })
            })
        });
        match cut {
            Ok(()) => Ok(ids),
            Err(Halt::Whole) => whole(text),
            Err(Halt::Failed(e)) => Err(e),
        }
    }

    /// A part as the tokenizer's normalizer leaves it: as it is, its NFC under NFC, or spelled
    /// by Llama 2's normalizers; `None` if the normalizer fails.
    fn normalize<'a>(&self, part: &'a str) -> Option<Cow<'a, str>> {
        match &self.form {
            Form::Metaspace(m) if m.speller() == Speller::Normalizer => {
                Some(Cow::Owned(m.normalize(part)))
            }
            _ if self.nfc && !is_nfc(part) => tokenizers_nfc(part).map(Cow::Owned),
            _ => Some(Cow::Borrowed(part)),
        }
    }
}

/// Appends the ids of `pieces`, those of each from `cache` or from `encode`.
fn encode_pieces<'p>(
    pieces: impl Iterator<Item = &'p str>,
    cache: &mut PieceCache,
    ids: &mut Vec<u32>,
    mut encode: impl FnMut(&str) -> tokenizers::Result<Vec<u32>>,
) -> tokenizers::Result<()> {
    for piece in pieces {
        let key = Key::of(piece);
        if cache.get_into(&key, piece, ids) {
            continue;
        }
        let piece_ids = encode(piece)?;
        ids.extend_from_slice(&piece_ids);
        cache.insert(&key, piece, &piece_ids);
    }
    Ok(())
}

/// Why cutting a text stopped.
enum Halt {
    /// It must be encoded whole.
    Whole,
    /// Encoding a piece failed.
    Failed(tokenizers::Error),
}

/// The cut rules and the regex of a pre-tokenizer of a shape the module docs name, or why it is
/// not one.
fn cuts_of(pre_tokenizer: &PreTokenizerWrapper) -> Result<(Cuts, &str), String> {
    match pre_tokenizer {
        PreTokenizerWrapper::ByteLevel(b) if b.use_regex && !b.add_prefix_space => {
            Ok((Cuts::Gpt2, Cuts::GPT2))
        }
        PreTokenizerWrapper::ByteLevel(_) => {
            Err("its ByteLevel pre-tokenizer adds a prefix space or has no regex".into())
        }
        PreTokenizerWrapper::Sequence(sequence) => match sequence.as_ref() {
            [
                PreTokenizerWrapper::Split(split),
                PreTokenizerWrapper::ByteLevel(b),
            ] if !b.use_regex
                && !b.add_prefix_space
                && !split.invert
                && split.behavior == SplitDelimiterBehavior::Isolated =>
            {
                match &split.pattern {
                    SplitPattern::Regex(regex) => match Cuts::of_regex(regex) {
                        Some(cuts) => Ok((cuts, regex)),
                        None => Err("its Split regex is not GPT-2's, Llama 3's or Qwen2's".into()),
                    },
                    SplitPattern::String(_) => Err("its Split pattern is a string".into()),
                }
            }
            _ => Err("its pre-tokenizer sequence is not a Split then ByteLevel".into()),
        },
        other => Err(format!("its pre-tokenizer, {}", type_name(other))),
    }
}

/// The `type` a `tokenizer.json` gives a component (`Lowercase`, `Metaspace`, ...).
fn type_name(component: &impl serde::Serialize) -> String {
    serde_json::to_value(component)
        .ok()
        .and_then(|v| v.get("type")?.as_str().map(str::to_string))
        .unwrap_or_else(|| "of another kind".into())
}

/// `text` in NFC as the tokenizer's own normalizer composes it (its Unicode tables may be older
/// than those of the `normalize` stage, and the ids must be the tokenizer's).
fn tokenizers_nfc(text: &str) -> Option<String> {
    normalized_by(&NFC, text)
}

/// Whether the tokenizer's NFC leaves `text` as it is (ASCII always is).
fn in_tokenizers_nfc(text: &str) -> bool {
    text.is_ascii() || text.nfc().map(|(c, _)| c).eq(text.chars())
}

/// `text` as `normalizer` leaves it; `None` if it fails.
fn normalized_by(normalizer: &impl Normalizer, text: &str) -> Option<String> {
    let mut normalized = NormalizedString::from(text);
    normalizer.normalize(&mut normalized).ok()?;
    Some(normalized.get().to_string())
}

/// The metaspace of Llama 2's normalizers (`Prepend` it, then `Replace` each space with it),
/// or why `sequence` is not those.
fn spelling(sequence: &tokenizers::normalizers::Sequence) -> Result<char, String> {
    let not = || "its normalizer, a Sequence other than Prepend then Replace".to_string();
    let [
        NormalizerWrapper::Prepend(prepend),
        NormalizerWrapper::Replace(replace),
    ] = sequence.as_ref()
    else {
        return Err(not());
    };
    let mut chars = prepend.prepend.chars();
    let (Some(meta), None) = (chars.next(), chars.next()) else {
        return Err(not());
    };
    let pattern = serde_json::to_value(replace).map_err(|_| not())?;
    match pattern["pattern"]["String"] == " " && replace.content == meta.to_string() {
        true => Ok(meta),
        false => Err(not()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use proptest::prelude::*;
    use tokenizers::models::bpe::{BPE, BpeTrainer, BpeTrainerBuilder};
    use tokenizers::normalizers::unicode::NFC;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::pre_tokenizers::sequence::Sequence;
    use tokenizers::pre_tokenizers::split::Split;
    use tokenizers::{
        AddedToken, DecoderWrapper, PostProcessorWrapper, Tokenizer, TokenizerBuilder,
    };

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
            // Matched in NFC, as `|||éIP|||`.
            AddedToken::from("|||e\u{301}IP|||", false),
        ])
        .unwrap();
        // A special token (matched as written) that composing a Kelvin sign can make.
        tok.add_special_tokens([AddedToken::from("QK", true)])
            .unwrap();
        tok
    }

    /// Splitting by `regex` then mapping bytes, as Llama 3's and Qwen2's files do.
    fn split_by_then_bytes(regex: &str) -> PreTokenizerWrapper {
        let split = Split::new(
            SplitPattern::Regex(regex.into()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .unwrap();
        Sequence::new(vec![
            split.into(),
            ByteLevel::new(false, true, false).into(),
        ])
        .into()
    }

    /// `tok` pre-tokenizing with [`split_by_then_bytes`].
    fn split_by(mut tok: Tokenizer, regex: &str) -> Tokenizer {
        tok.with_pre_tokenizer(Some(split_by_then_bytes(regex)));
        tok
    }

    /// The `tokenizer.json` of `model` trained by `trainer` on `texts` split by `pre_tokenizer`.
    fn train(
        model: BPE,
        pre_tokenizer: PreTokenizerWrapper,
        mut trainer: BpeTrainer,
        texts: impl Iterator<Item = String> + Send,
    ) -> String {
        let mut tok = TokenizerBuilder::<
            BPE,
            NormalizerWrapper,
            PreTokenizerWrapper,
            PostProcessorWrapper,
            DecoderWrapper,
        >::new()
        .with_model(model)
        .with_pre_tokenizer(Some(pre_tokenizer))
        .build()
        .unwrap();
        tok.train(&mut trainer, texts).unwrap();
        tok.to_string(false).unwrap()
    }

    /// A byte-level BPE trained here with Llama 3's regex, on texts where its matches cross the
    /// places other regexes could be cut (`(bar`, `.\n`, `。\n`), so its merges do too.
    fn trained_llama3() -> Tokenizer {
        static TRAINED: LazyLock<Tokenizer> = LazyLock::new(train_llama3);
        TRAINED.clone()
    }

    fn train_llama3() -> Tokenizer {
        let texts = (0..300).map(|i| {
            format!("It's f(bar) f(bin) f(box) f(bud) {i}12345 done.\n\tfoo(x);\n中文。\n'S Q:\r\n({i}) again.\n\n")
        });
        let trainer = BpeTrainerBuilder::new()
            .vocab_size(600)
            .min_frequency(2)
            .show_progress(false)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        let json = train(
            BPE::default(),
            split_by_then_bytes(Cuts::LLAMA3),
            trainer,
            texts,
        );
        let tok = Tokenizer::from_bytes(json.as_bytes()).unwrap();
        for (a, b) in [("(", "bar"), (".", "\n"), ("。", "\n")] {
            let apart = [whole(&tok, a).unwrap(), whole(&tok, b).unwrap()].concat();
            assert_ne!(
                whole(&tok, &format!("{a}{b}")).unwrap(),
                apart,
                "{a:?} {b:?} merged"
            );
        }
        tok
    }

    /// How SentencePiece-style files spell texts: Mistral's (a `Metaspace` pre-tokenizer
    /// prepending to the text's first part, not splitting), Llama 2's older files (`Prepend` and
    /// `Replace` normalizers), and two other settings of the pre-tokenizer.
    const MISTRAL: &str = r#"{"normalizer": null, "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}}"#;
    const LLAMA2: &str = r#"{"normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}, "pre_tokenizer": null}"#;
    const SPLIT_NFC: &str = r#"{"normalizer": {"type": "NFC"}, "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}}"#;
    const NEVER: &str = r#"{"normalizer": null, "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": false}}"#;

    /// A SentencePiece-style BPE trained here (each `▁` beginning a word, as SentencePiece
    /// trains), spelling texts as `spelling` says (see [`MISTRAL`]), with runs of `▁` as tokens
    /// (as Llama 2's vocabulary has them), byte fallback or not (unknown characters then fuse
    /// into one `<unk>`), and added tokens of both kinds.
    fn sentencepiece(spelling: &str, byte_fallback: bool) -> Tokenizer {
        static TRAINED: LazyLock<String> = LazyLock::new(train_sentencepiece);
        let mut json: serde_json::Value = serde_json::from_str(&TRAINED).unwrap();
        let spelling: serde_json::Value = serde_json::from_str(spelling).unwrap();
        json["normalizer"] = spelling["normalizer"].clone();
        json["pre_tokenizer"] = spelling["pre_tokenizer"].clone();
        json["model"]["byte_fallback"] = byte_fallback.into();
        let mut tok = Tokenizer::from_bytes(json.to_string().as_bytes()).unwrap();
        tok.add_tokens([
            AddedToken::from("|||IP|||", false),
            AddedToken::from("a b", false),
        ])
        .unwrap();
        tok.add_special_tokens([AddedToken::from("QK", true)])
            .unwrap();
        tok
    }

    fn train_sentencepiece() -> String {
        use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
        let texts = (0..200).map(|i| {
            format!("The café's {i} rivers don't   flow, again.\n\tfoo(x); 中文。 a▁b  \n")
        });
        let trainer = BpeTrainerBuilder::new()
            .vocab_size(400)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(vec![
                AddedToken::from("<unk>", true),
                AddedToken::from("<s>", true),
                AddedToken::from("</s>", true),
            ])
            .build();
        let model = BPE::builder()
            .unk_token("<unk>".into())
            .fuse_unk(true)
            .build()
            .unwrap();
        let split = Metaspace::new('▁', PrependScheme::Always, true).into();
        let mut json: serde_json::Value =
            serde_json::from_str(&train(model, split, trainer, texts)).unwrap();
        let model = &mut json["model"];
        let vocab = model["vocab"].as_object_mut().unwrap();
        for b in 0..=255u8 {
            let id = vocab.len();
            vocab.insert(format!("<0x{b:02X}>"), id.into());
        }
        let mut runs = Vec::new();
        for (run, half) in [("▁▁", "▁"), ("▁▁▁▁", "▁▁")] {
            assert!(!vocab.contains_key(run), "split training made no runs");
            let id = vocab.len();
            vocab.insert(run.into(), id.into());
            runs.push(serde_json::json!([half, half]));
        }
        model["merges"].as_array_mut().unwrap().extend(runs);
        json.to_string()
    }

    /// OLMo's tokenizer with every third merge left out and `ignore_merges` on, as Llama 3's
    /// model has it: many of its tokens are then found only as whole words.
    fn olmo_ignoring_merges() -> Tokenizer {
        let mut json: serde_json::Value = serde_json::to_value(olmo()).unwrap();
        json["model"]["ignore_merges"] = true.into();
        let merges = json["model"]["merges"].as_array_mut().unwrap();
        let mut i = 0;
        merges.retain(|_| {
            i += 1;
            i % 3 != 0
        });
        serde_json::from_value(json).unwrap()
    }

    /// Every shape taken: GPT-2's regex in `ByteLevel` (OLMo's; a trained one with NFC and added
    /// tokens) and in a `Split` (the trained one), Llama 3's without a normalizer (OLMo's
    /// vocabulary and added tokens, with and without `ignore_merges`; one trained with it),
    /// Qwen2's with NFC (the trained one), and SentencePiece's spellings (see [`MISTRAL`]).
    fn shapes() -> Vec<(&'static str, Tokenizer)> {
        static SHAPES: LazyLock<Vec<(&'static str, Tokenizer)>> = LazyLock::new(|| {
            let llama3 = |tok| {
                let mut tok = split_by(tok, Cuts::LLAMA3);
                tok.with_normalizer(None::<NFC>).unwrap();
                tok
            };
            vec![
                ("olmo", olmo()),
                ("trained", trained_with_nfc_and_added_tokens()),
                (
                    "trained, GPT-2 split",
                    split_by(trained_with_nfc_and_added_tokens(), Cuts::GPT2),
                ),
                ("olmo, Llama 3", llama3(olmo())),
                (
                    "olmo, Llama 3, ignore_merges",
                    llama3(olmo_ignoring_merges()),
                ),
                ("trained, Llama 3", trained_llama3()),
                (
                    "trained, Qwen2",
                    split_by(trained_with_nfc_and_added_tokens(), Cuts::QWEN2),
                ),
                ("sentencepiece, Mistral", sentencepiece(MISTRAL, true)),
                ("sentencepiece, Llama 2", sentencepiece(LLAMA2, false)),
                ("sentencepiece, split, NFC", sentencepiece(SPLIT_NFC, true)),
                ("sentencepiece, never", sentencepiece(NEVER, true)),
            ]
        });
        SHAPES.clone()
    }

    fn whole(tok: &Tokenizer, text: &str) -> tokenizers::Result<Vec<u32>> {
        Ok(tok.encode_fast(text, false)?.get_ids().to_vec())
    }

    /// The ids `encoder` gives `text`, and whether it encoded the text whole.
    fn encoded(encoder: &PieceEncoder, tok: &Tokenizer, text: &str) -> (Vec<u32>, bool) {
        let mut was_whole = false;
        let ids = encoder
            .encode(text, |t| {
                was_whole |= t == text;
                whole(tok, t)
            })
            .unwrap();
        (ids, was_whole)
    }

    #[test]
    fn tokenizers_of_the_shapes_are_taken_and_others_named_why_not() {
        let gpt2 = "cut by the rules of GPT-2's regex";
        let llama3 = "cut by the rules of Llama 3's or Qwen2's regex";
        let metaspace = "cut before each `▁` that follows another character (SentencePiece style)";
        let split = "cut before each `▁`, as its pre-tokenizer splits";
        let expected = [
            gpt2, gpt2, gpt2, llama3, llama3, llama3, llama3, metaspace, metaspace, split,
            metaspace,
        ];
        let shapes = shapes();
        assert_eq!(shapes.len(), expected.len());
        for ((name, tok), rules) in shapes.into_iter().zip(expected) {
            assert_eq!(
                PieceEncoder::new(&tok).map(|e| e.rules()).as_deref(),
                Ok(rules),
                "{name}"
            );
        }
        let why = |tok: &Tokenizer| PieceEncoder::new(tok).err().unwrap();
        let mut prefixed = olmo();
        prefixed.with_pre_tokenizer(Some(ByteLevel::new(true, true, true)));
        assert_eq!(
            why(&prefixed),
            "its ByteLevel pre-tokenizer adds a prefix space or has no regex"
        );
        let mut metaspace = olmo();
        metaspace.with_pre_tokenizer(Some(tokenizers::pre_tokenizers::metaspace::Metaspace::new(
            '▁',
            tokenizers::pre_tokenizers::metaspace::PrependScheme::First,
            false,
        )));
        assert_eq!(why(&metaspace), "`▁` alone is not in its vocabulary");
        let mut unspelled = olmo();
        unspelled.with_pre_tokenizer(None::<ByteLevel>);
        assert_eq!(why(&unspelled), "it has no pre-tokenizer");
        let mut prepend_only = sentencepiece(LLAMA2, true);
        prepend_only
            .with_normalizer(Some(tokenizers::normalizers::Sequence::new(vec![
                tokenizers::normalizers::Prepend::new("▁".into()).into(),
            ])))
            .unwrap();
        assert_eq!(
            why(&prepend_only),
            "its normalizer, a Sequence other than Prepend then Replace"
        );
        let mut lowercased = olmo();
        lowercased
            .with_normalizer(Some(tokenizers::normalizers::utils::Lowercase))
            .unwrap();
        assert_eq!(why(&lowercased), "its normalizer, Lowercase");
        let other_regex = split_by(olmo(), r"\p{N}{1,3}|\s+");
        assert_eq!(
            why(&other_regex),
            "its Split regex is not GPT-2's, Llama 3's or Qwen2's"
        );
        let mut special_as_text = olmo();
        special_as_text.set_encode_special_tokens(true);
        assert_eq!(why(&special_as_text), "it encodes special tokens as text");
        let mut stripping = olmo();
        stripping
            .add_special_tokens([AddedToken::from("<mask>", true).lstrip(true)])
            .unwrap();
        assert_eq!(
            why(&stripping),
            "its added token `<mask>` strips spaces or matches single words only"
        );
    }

    #[test]
    fn every_shapes_merges_are_applied_by_refinery() {
        for (name, tok) in shapes() {
            let encoder = PieceEncoder::new(&tok).unwrap();
            let taken = match &encoder.form {
                Form::Bytes(_, model) => model.merges_taken(),
                Form::Metaspace(metaspace) => metaspace.merges_taken(),
            };
            assert!(taken, "{name}");
        }
    }

    #[test]
    fn texts_are_cut_at_added_tokens_in_nfc_too() {
        let tok = trained_with_nfc_and_added_tokens();
        let encoder = PieceEncoder::new(&tok).unwrap();
        // The Kelvin sign is `K` in NFC: the normalized text holds the added token `|||OK|||`.
        let text = "a |||O\u{212a}||| b<|endoftext|>c";
        let (ids, was_whole) = encoded(&encoder, &tok, text);
        assert_eq!(ids, whole(&tok, text).unwrap());
        assert!(!was_whole);
        assert!(ids.contains(&tok.token_to_id("|||OK|||").unwrap()));
        assert!(ids.contains(&tok.token_to_id("<|endoftext|>").unwrap()));
    }

    #[test]
    fn a_special_tokens_text_made_by_composing_makes_the_text_encoded_whole() {
        let tok = trained_with_nfc_and_added_tokens();
        let encoder = PieceEncoder::new(&tok).unwrap();
        // `Q\u{212a}` composes to `QK`, which the tokenizer takes as text, not as the token.
        let text = "a Q\u{212a} b";
        let (ids, was_whole) = encoded(&encoder, &tok, text);
        assert!(was_whole);
        assert_eq!(ids, whole(&tok, text).unwrap());
        assert!(!ids.contains(&tok.token_to_id("QK").unwrap()));
        let (ids, was_whole) = encoded(&encoder, &tok, "a QK b");
        assert!(!was_whole && ids.contains(&tok.token_to_id("QK").unwrap()));
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

    #[test]
    fn long_pieces_are_encoded_but_not_cached() {
        let tok = olmo();
        let encoder = PieceEncoder::new(&tok).unwrap();
        let long = "中".repeat(super::super::piece_cache::LONGEST_CACHED);
        let text = format!(" {long} {long} short short");
        let ids = encoder.encode(&text, |p| whole(&tok, p)).unwrap();
        assert_eq!(ids, whole(&tok, &text).unwrap());
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            let long = format!(" {long}");
            let mut ids = Vec::new();
            assert!(
                !cache.get_into(&Key::of(&long), &long, &mut ids),
                "not cached"
            );
            assert!(
                cache.get_into(&Key::of(" short"), " short", &mut ids),
                "cached"
            );
        });
    }

    #[test]
    fn pieces_in_the_tokenizers_nfc_are_told_from_others() {
        assert!(in_tokenizers_nfc(" plain ASCII, 42"));
        assert!(in_tokenizers_nfc(" \u{e9}t\u{e9} \u{4e2d}"));
        assert!(!in_tokenizers_nfc(" e\u{301}t\u{e9}"), "decomposed");
        assert!(!in_tokenizers_nfc("\u{212a}"), "the Kelvin sign becomes K");
    }

    /// Texts made of the fragments cutting, NFC, added tokens and the regexes care about.
    fn tricky_text() -> impl Strategy<Value = String> {
        let cut = [
            "a",
            "Z",
            "Q",
            "the",
            " the",
            // Words whose tokens the merges of `olmo_ignoring_merges` do not reach.
            " quick",
            " brown",
            " information",
            " technology",
            "Hello",
            "don",
            "'",
            "'s",
            "'ll",
            "'T",
            "'S",
            "'ſ",
            "3",
            "42",
            "12345",
            "٣",
            "é",
            "中文",
            "。",
            "Ω",
            "ﬁ",
            "😀",
            " ",
            "  ",
            "     ",
            "\n",
            "\n\n",
            "\t",
            "\r",
            "\r\n",
            "\x0b",
            "\x0c",
            "\u{a0}",
            "\u{3000}",
            "\u{85}",
            "\u{1c}",
            ",",
            ".",
            ".\n",
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
            "▁",
            "▁▁",
            " ▁",
            "<0x41>",
            "☃",
            "☃☃",
        ];
        let added = [
            "<|endoftext|>",
            "|||IP|||",
            "|||IP_ADDRESS|||",
            "|||OK|||",
            "|||éIP|||",
            "QK",
            "<s>",
            "</s>",
            "a b",
        ];
        let fragment = prop_oneof![
            20 => proptest::sample::select(cut.to_vec()),
            1 => proptest::sample::select(added.to_vec()),
        ];
        proptest::collection::vec(fragment, 0..40).prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn pieces_encode_to_the_tokenizers_ids(text in tricky_text()) {
            // Made once: each case's texts still meet an empty cache, since a thread's cache is
            // emptied when it serves another encoder.
            static ENCODERS: LazyLock<Vec<(&str, Tokenizer, PieceEncoder)>> =
                LazyLock::new(|| {
                    let with_encoder = |(name, tok): (&'static str, Tokenizer)| {
                        let encoder = PieceEncoder::new(&tok).unwrap();
                        (name, tok, encoder)
                    };
                    shapes().into_iter().map(with_encoder).collect()
                });
            for (name, tok, encoder) in ENCODERS.iter() {
                let ids = encoder.encode(&text, |p| whole(tok, p)).unwrap();
                prop_assert_eq!(ids, whole(tok, &text).unwrap(), "{}: {:?}", name, text);
            }
        }
    }
}
