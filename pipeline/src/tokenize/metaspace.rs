//! SentencePiece-style tokenizers (Llama 2, Mistral and their kin): spaces spelled as a
//! metaspace (`▁`), and where their texts can be cut.
//!
//! Such a tokenizer spells each part of a text between added tokens with `▁` for every space
//! and, by its prepend scheme, one `▁` in front; its BPE model then encodes what it spelled. The
//! spelling is done by a `Metaspace` pre-tokenizer, or by the pair of normalizers Llama 2's older
//! files have (`Prepend` a `▁`, `Replace` spaces with `▁`), which prepend to every non-empty part.
//!
//! With the pre-tokenizer's `split`, each `▁` begins a word the model encodes alone: cutting
//! before each `▁` changes nothing. Without it (Mistral's files; the normalizer pair) a part is
//! one word, whose merges could in principle join anything. But a merge makes one token of the
//! two it joins, so when no token of the vocabulary holds `▁` after another character, no merge
//! ever joins a symbol ending in another character to one starting with `▁`; and each merge takes
//! the best-ranked pair, so those on one side of such a place never depend on the other side.
//! A part cut before each `▁` that follows another character then encodes, piece by piece, to
//! the same ids. Two settings of the model could still tell the difference, so the shapes taken
//! exclude them: unknown characters fused into one `<unk>` (which cannot run across the cut when
//! `▁` is itself a token), and `ignore_merges`, which looks a whole word up in the vocabulary
//! before merging.

use std::borrow::Cow;

use tokenizers::Model;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::metaspace::{Metaspace as MetaspacePreTokenizer, PrependScheme};

use super::merges::CharMerges;

/// How a SentencePiece-style tokenizer spells and cuts a part, and its model.
#[derive(Debug)]
pub struct Metaspace {
    /// The character spaces become (`▁`).
    meta: char,
    /// Who spells parts: the normalizers (before the normalized added tokens are matched) or
    /// the pre-tokenizer (after), with its prepend scheme.
    speller: Speller,
    /// Cut before every `▁` (the pre-tokenizer's `split`), not only before those following
    /// another character.
    every: bool,
    model: BPE,
    /// The model's merges, when they can be applied here.
    merges: Option<CharMerges>,
}

/// Who spells the parts of a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speller {
    /// The normalizers `Prepend` and `Replace`: see [`Metaspace::normalize`].
    Normalizer,
    /// The `Metaspace` pre-tokenizer, with its prepend scheme: see [`Metaspace::spell`].
    PreTokenizer(PrependScheme),
}

impl Metaspace {
    /// The rules of a `Metaspace` pre-tokenizer over `model`, or why texts cannot be cut.
    pub fn of_pre_tokenizer(pre: &MetaspacePreTokenizer, model: &BPE) -> Result<Self, String> {
        let speller = Speller::PreTokenizer(pre.get_prepend_scheme());
        Self::new(pre.get_replacement(), speller, pre.get_split(), model)
    }

    /// The rules of Llama 2's normalizers, prepending and replacing spaces with `meta`, over
    /// `model` (no pre-tokenizer), or why texts cannot be cut.
    pub fn of_normalizers(meta: char, model: &BPE) -> Result<Self, String> {
        Self::new(meta, Speller::Normalizer, false, model)
    }

    fn new(meta: char, speller: Speller, every: bool, model: &BPE) -> Result<Self, String> {
        if model.continuing_subword_prefix.is_some() || model.end_of_word_suffix.is_some() {
            return Err("its BPE model marks subwords with a prefix or suffix".into());
        }
        if !every {
            if model.ignore_merges {
                return Err("its BPE model looks whole words up before merging".into());
            }
            if model.token_to_id(&meta.to_string()).is_none() {
                return Err(format!("`{meta}` alone is not in its vocabulary"));
            }
            let vocab = model.get_vocab();
            if let Some(token) = vocab.keys().find(|t| meta_after_other(t, meta)) {
                return Err(format!(
                    "its vocabulary holds `{meta}` after another character (`{token}`)"
                ));
            }
        }
        Ok(Self {
            meta,
            speller,
            every,
            model: model.clone(),
            merges: CharMerges::new(model),
        })
    }

    /// Who spells parts.
    pub fn speller(&self) -> Speller {
        self.speller
    }

    /// What the cuts are, for the log.
    pub fn rules(&self) -> String {
        match self.every {
            true => format!(
                "cut before each `{}`, as its pre-tokenizer splits",
                self.meta
            ),
            false => format!(
                "cut before each `{}` that follows another character (SentencePiece style)",
                self.meta
            ),
        }
    }

    /// A part (never empty) as the normalizers spell it: `▁` in front, spaces as `▁`.
    pub fn normalize(&self, part: &str) -> String {
        let mut spelled = String::from(self.meta);
        spelled.push_str(&self.spaces_spelled(part));
        spelled
    }

    /// A part as the pre-tokenizer spells it: spaces as `▁`, and one in front unless the scheme
    /// says never, or says first and the part does not begin the text (`at_start`), or the part
    /// already begins with one. Left as it is when the normalizers spelled it.
    pub fn spell<'a>(&self, part: &'a str, at_start: bool) -> Cow<'a, str> {
        let Speller::PreTokenizer(scheme) = self.speller else {
            return Cow::Borrowed(part);
        };
        let mut spelled = self.spaces_spelled(part);
        let prepend = match scheme {
            PrependScheme::Always => true,
            PrependScheme::First => at_start,
            PrependScheme::Never => false,
        };
        if prepend && !spelled.starts_with(self.meta) {
            spelled.insert(0, self.meta);
        }
        Cow::Owned(spelled)
    }

    /// `text` with each space as `▁`.
    fn spaces_spelled(&self, text: &str) -> String {
        text.replace(' ', self.meta.encode_utf8(&mut [0; 4]))
    }

    /// The pieces of a spelled part (see the module docs).
    pub fn pieces<'a>(&self, spelled: &'a str) -> impl Iterator<Item = &'a str> + use<'a> {
        let (meta, every) = (self.meta, self.every);
        let mut rest = spelled;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let cut = rest
                .match_indices(meta)
                .map(|(i, _)| i)
                .find(|&i| i > 0 && (every || !rest[..i].ends_with(meta)));
            let (piece, after) = rest.split_at(cut.unwrap_or(rest.len()));
            rest = after;
            Some(piece)
        })
    }

    /// Whether the model's merges are applied here.
    #[cfg(test)]
    pub fn merges_taken(&self) -> bool {
        self.merges.is_some()
    }

    /// The ids of a piece, by the model's merges applied here ([`CharMerges`]) or by the model.
    pub fn encode(&self, piece: &str) -> tokenizers::Result<Vec<u32>> {
        if self.model.ignore_merges
            && let Some(id) = self.model.token_to_id(piece)
        {
            return Ok(vec![id]);
        }
        let mut ids = Vec::new();
        if self
            .merges
            .as_ref()
            .is_some_and(|m| m.encode(piece, &mut ids))
        {
            return Ok(ids);
        }
        Ok(self
            .model
            .tokenize(piece)?
            .into_iter()
            .map(|t| t.id)
            .collect())
    }
}

/// Whether `token` holds `meta` right after another character.
fn meta_after_other(token: &str, meta: char) -> bool {
    let mut chars = token.chars();
    let mut before = chars.next();
    for c in chars {
        if c == meta && before != Some(meta) {
            return true;
        }
        before = Some(c);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bpe(tokens: &[&str], merges: &[(&str, &str)]) -> BPE {
        let vocab: serde_json::Map<String, serde_json::Value> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_string(), i.into()))
            .collect();
        let json = serde_json::json!({"type": "BPE", "vocab": vocab, "merges": merges});
        serde_json::from_str(&json.to_string()).unwrap()
    }

    fn pieces(m: &Metaspace, text: &str) -> Vec<String> {
        m.pieces(text).map(str::to_string).collect()
    }

    #[test]
    fn cuts_fall_before_a_metaspace_after_another_character_or_before_every_one() {
        let model = bpe(&["▁", "a", "b", "▁a"], &[("▁", "a")]);
        let m = Metaspace::of_normalizers('▁', &model).unwrap();
        assert_eq!(pieces(&m, "▁ab▁▁▁a\n▁b▁"), ["▁ab", "▁▁▁a\n", "▁b", "▁"]);
        assert_eq!(pieces(&m, "ab▁a"), ["ab", "▁a"]);
        assert!(pieces(&m, "").is_empty());
        let split = MetaspacePreTokenizer::new('▁', PrependScheme::Always, true);
        let m = Metaspace::of_pre_tokenizer(&split, &model).unwrap();
        assert_eq!(pieces(&m, "▁ab▁▁a"), ["▁ab", "▁", "▁a"]);
    }

    #[test]
    fn parts_are_spelled_as_the_tokenizer_spells_them() {
        let model = bpe(&["▁", "a"], &[]);
        let normalizers = Metaspace::of_normalizers('▁', &model).unwrap();
        assert_eq!(normalizers.normalize(" a b"), "▁▁a▁b");
        assert_eq!(normalizers.spell("▁a", true), "▁a");
        let scheme = |s| MetaspacePreTokenizer::new('▁', s, false);
        let spelled = |s, text, at_start| {
            let m = Metaspace::of_pre_tokenizer(&scheme(s), &model).unwrap();
            m.spell(text, at_start).into_owned()
        };
        assert_eq!(spelled(PrependScheme::Always, "a b", false), "▁a▁b");
        assert_eq!(spelled(PrependScheme::Always, " a", false), "▁a");
        assert_eq!(spelled(PrependScheme::First, "a b", true), "▁a▁b");
        assert_eq!(spelled(PrependScheme::First, "a b", false), "a▁b");
        assert_eq!(spelled(PrependScheme::Never, "a b", true), "a▁b");
    }

    #[test]
    fn a_vocabulary_or_model_that_could_merge_across_a_cut_is_refused() {
        let crossing = bpe(&["▁", "a", "a▁"], &[("a", "▁")]);
        assert_eq!(
            Metaspace::of_normalizers('▁', &crossing).unwrap_err(),
            "its vocabulary holds `▁` after another character (`a▁`)"
        );
        // A split pre-tokenizer cuts there itself.
        let split = MetaspacePreTokenizer::new('▁', PrependScheme::Always, true);
        assert!(Metaspace::of_pre_tokenizer(&split, &crossing).is_ok());
        let no_meta = bpe(&["a"], &[]);
        assert_eq!(
            Metaspace::of_normalizers('▁', &no_meta).unwrap_err(),
            "`▁` alone is not in its vocabulary"
        );
        let mut looking_up = bpe(&["▁", "a"], &[]);
        looking_up.ignore_merges = true;
        assert_eq!(
            Metaspace::of_normalizers('▁', &looking_up).unwrap_err(),
            "its BPE model looks whole words up before merging"
        );
        assert!(meta_after_other("▁▁a▁", '▁') && !meta_after_other("▁▁ab", '▁'));
    }
}
