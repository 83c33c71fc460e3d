//! The stage registry: the only list of stage types. Adding a stage means one file, one variant
//! and one arm in each `match` below.
//!
//! - [`normalize`]: Unicode NFC, control characters and whitespace (edits text, drops nothing).
//! - [`length`]: drops documents outside character and word limits.
//! - [`exact_dedup`]: drops byte-identical texts, one survivor per group.
//! - [`minhash_dedup`]: drops near-duplicates found by MinHash-LSH.
//! - [`quality`]: `gopher_quality`, `gopher_repetition`, `fineweb` heuristics.
//! - [`c4`]: C4's line removal (edits text) and document rules.
//! - [`language`]: language identification (sets `language`, `language_score`).
//! - [`pii`]: redacts e-mail, IP addresses and phone numbers (edits text, drops nothing).
//! - [`decontaminate`]: drops documents containing benchmark passages, or cuts the passages.
//!
//! The two dedup stages share one engine, [`dedup`].

pub mod c4;
pub mod decontaminate;
pub mod dedup;
pub mod exact_dedup;
pub mod language;
pub mod length;
pub mod memory_budget;
pub mod minhash_dedup;
pub mod normalize;
pub mod pii;
pub mod quality;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray, StringBuilder};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Deserializer, Serialize};

use rayon::prelude::*;

use crate::schema::col;
use crate::stage::{Stage, StageError, StageOutput};

/// A stage as configured, tagged by `type`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StageConfig {
    /// See [`normalize::NormalizeConfig`].
    Normalize(normalize::NormalizeConfig),
    /// See [`length::LengthConfig`].
    Length(length::LengthConfig),
    /// See [`exact_dedup::ExactDedupConfig`].
    ExactDedup(exact_dedup::ExactDedupConfig),
    /// See [`minhash_dedup::MinhashDedupConfig`].
    MinhashDedup(minhash_dedup::MinhashDedupConfig),
    /// See [`quality::GopherQualityConfig`].
    GopherQuality(quality::GopherQualityConfig),
    /// See [`quality::GopherRepetitionConfig`].
    GopherRepetition(quality::GopherRepetitionConfig),
    /// See [`c4::C4Config`].
    C4(c4::C4Config),
    /// See [`quality::FineWebConfig`].
    Fineweb(quality::FineWebConfig),
    /// See [`language::LanguageConfig`].
    Language(language::LanguageConfig),
    /// See [`pii::PiiConfig`].
    Pii(pii::PiiConfig),
    /// See [`decontaminate::DecontaminateConfig`].
    Decontaminate(decontaminate::DecontaminateConfig),
}

impl StageConfig {
    /// The stage's name: its `name` key, or its type.
    pub fn name(&self) -> &str {
        match self {
            StageConfig::Normalize(c) => c.name.as_deref().unwrap_or("normalize"),
            StageConfig::Length(c) => c.name.as_deref().unwrap_or("length"),
            StageConfig::ExactDedup(c) => c.name.as_deref().unwrap_or("exact_dedup"),
            StageConfig::MinhashDedup(c) => c.name.as_deref().unwrap_or("minhash_dedup"),
            StageConfig::GopherQuality(c) => c.name.as_deref().unwrap_or("gopher_quality"),
            StageConfig::GopherRepetition(c) => c.name.as_deref().unwrap_or("gopher_repetition"),
            StageConfig::C4(c) => c.name.as_deref().unwrap_or("c4"),
            StageConfig::Fineweb(c) => c.name.as_deref().unwrap_or("fineweb"),
            StageConfig::Language(c) => c.name.as_deref().unwrap_or("language"),
            StageConfig::Pii(c) => c.name.as_deref().unwrap_or("pii"),
            StageConfig::Decontaminate(c) => c.name.as_deref().unwrap_or("decontaminate"),
        }
    }

    /// The config of a stage whose `type` is `ty`, read from its table without the `type` key;
    /// `None` for an unknown type. Serde reads the `type`-tagged enum from a buffered copy of the
    /// table, which loses where each key is; read this way, a TOML error points at its key.
    pub fn deserialize_as<'de, D: Deserializer<'de>>(
        ty: &str,
        table: D,
    ) -> Option<Result<Self, D::Error>> {
        Some(match ty {
            "normalize" => normalize::NormalizeConfig::deserialize(table).map(Self::Normalize),
            "length" => length::LengthConfig::deserialize(table).map(Self::Length),
            "exact_dedup" => {
                exact_dedup::ExactDedupConfig::deserialize(table).map(Self::ExactDedup)
            }
            "minhash_dedup" => {
                minhash_dedup::MinhashDedupConfig::deserialize(table).map(Self::MinhashDedup)
            }
            "gopher_quality" => {
                quality::GopherQualityConfig::deserialize(table).map(Self::GopherQuality)
            }
            "gopher_repetition" => {
                quality::GopherRepetitionConfig::deserialize(table).map(Self::GopherRepetition)
            }
            "c4" => c4::C4Config::deserialize(table).map(Self::C4),
            "fineweb" => quality::FineWebConfig::deserialize(table).map(Self::Fineweb),
            "language" => language::LanguageConfig::deserialize(table).map(Self::Language),
            "pii" => pii::PiiConfig::deserialize(table).map(Self::Pii),
            "decontaminate" => {
                decontaminate::DecontaminateConfig::deserialize(table).map(Self::Decontaminate)
            }
            _ => return None,
        })
    }

    /// Problems with the stage's values (empty when fine).
    pub fn check(&self) -> Vec<String> {
        match self {
            StageConfig::Normalize(_) | StageConfig::C4(_) => Vec::new(),
            StageConfig::GopherQuality(c) => c.check(),
            StageConfig::Fineweb(c) => c.check(),
            StageConfig::Length(c) => c.check(),
            StageConfig::ExactDedup(c) => c.check(),
            StageConfig::MinhashDedup(c) => c.check(),
            StageConfig::GopherRepetition(c) => c.check(),
            StageConfig::Language(c) => c.check(),
            StageConfig::Pii(c) => c.check(),
            StageConfig::Decontaminate(c) => c.check(),
        }
    }

    /// The earlier run a dedup stage deduplicates against, if any.
    pub fn against(&self) -> Option<&std::path::Path> {
        match self {
            StageConfig::ExactDedup(c) => c.against.as_deref(),
            StageConfig::MinhashDedup(c) => c.against.as_deref(),
            _ => None,
        }
    }

    /// The sources a dedup stage lets survive first, in order (none for other stages).
    pub fn priority(&self) -> &[String] {
        match self {
            StageConfig::ExactDedup(c) => &c.priority,
            StageConfig::MinhashDedup(c) => &c.priority,
            _ => &[],
        }
    }

    /// Mutable [`StageConfig::against`], to resolve it against the config's folder.
    pub fn against_mut(&mut self) -> Option<&mut std::path::PathBuf> {
        match self {
            StageConfig::ExactDedup(c) => c.against.as_mut(),
            StageConfig::MinhashDedup(c) => c.against.as_mut(),
            _ => None,
        }
    }

    /// Input files the stage reads besides the documents (bad-words lists, benchmarks).
    pub fn files(&self) -> Vec<&std::path::Path> {
        match self {
            StageConfig::C4(c) => c.bad_words.iter().map(|p| p.as_path()).collect(),
            StageConfig::Decontaminate(c) => c.files().map(|p| p.as_path()).collect(),
            _ => Vec::new(),
        }
    }

    /// Mutable [`StageConfig::files`], to resolve them against the config's folder.
    pub fn files_mut(&mut self) -> Vec<&mut std::path::PathBuf> {
        match self {
            StageConfig::C4(c) => c.bad_words.iter_mut().collect(),
            StageConfig::Decontaminate(c) => c.files_mut().collect(),
            _ => Vec::new(),
        }
    }

    /// Builds the running stage; fails when a file it needs cannot be read.
    pub fn build(&self) -> Result<Arc<dyn Stage>, StageError> {
        let name = self.name().to_string();
        Ok(match self {
            StageConfig::Normalize(c) => Arc::new(c.build(name)),
            StageConfig::Length(c) => Arc::new(c.build(name)),
            StageConfig::ExactDedup(c) => Arc::new(c.build(name)),
            StageConfig::MinhashDedup(c) => Arc::new(c.build(name)),
            StageConfig::GopherQuality(c) => Arc::new(c.build(name)),
            StageConfig::GopherRepetition(c) => Arc::new(c.build(name)),
            StageConfig::C4(c) => Arc::new(c.build(name)?),
            StageConfig::Fineweb(c) => Arc::new(c.build(name)),
            StageConfig::Language(c) => Arc::new(c.build(name)),
            StageConfig::Pii(c) => Arc::new(c.build(name)),
            StageConfig::Decontaminate(c) => Arc::new(c.build(name)?),
        })
    }
}

/// A threshold as the filters take it: `Some(v)`, or `None` (the rule is off) when the config
/// says 0, as datatrove does.
pub(crate) fn on<T: PartialEq + Default>(v: T) -> Option<T> {
    (v != T::default()).then_some(v)
}

/// A filter's default threshold as a config value (0 for a rule that is off).
pub(crate) fn off<T: Default>(v: Option<T>) -> T {
    v.unwrap_or_default()
}

/// Decides each row of `batch` with `check` (in parallel), dropping those it fails.
pub(crate) fn verdict_stage(
    batch: &RecordBatch,
    stage: &str,
    check: impl Fn(&str) -> Option<filters::Verdict> + Sync,
) -> Result<StageOutput, StageError> {
    let texts = text_column(batch, stage)?;
    let verdicts = (0..texts.len())
        .into_par_iter()
        .map(|i| check(texts.value(i)))
        .collect();
    StageOutput::from_verdicts(batch, verdicts)
}

/// `batch` with its text column replaced by `texts` (one per row).
pub(crate) fn with_texts<'a>(
    batch: &RecordBatch,
    texts: impl Iterator<Item = &'a str> + Clone,
) -> Result<RecordBatch, StageError> {
    // Sized up front: growing by doubling would copy the column's bytes again.
    let bytes = texts.clone().map(str::len).sum();
    let mut column = StringBuilder::with_capacity(batch.num_rows(), bytes);
    texts.for_each(|t| column.append_value(t));
    let idx = batch.schema().index_of(col::TEXT)?;
    let mut columns = batch.columns().to_vec();
    columns[idx] = Arc::new(column.finish());
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// A Utf8 column with `f` of each item.
pub(crate) fn string_array<'a, T>(items: &'a [T], f: impl Fn(&'a T) -> &'a str) -> ArrayRef {
    Arc::new(items.iter().map(|i| Some(f(i))).collect::<StringArray>())
}

/// `batch` with the rows that have an edited text (`edited(row)` is `Some`) replaced, or
/// `batch` itself when no row changed.
pub(crate) fn with_edited_texts<'a>(
    batch: &RecordBatch,
    texts: &'a StringArray,
    edited: impl Fn(usize) -> Option<&'a str>,
) -> Result<RecordBatch, StageError> {
    if (0..texts.len()).all(|i| edited(i).is_none()) {
        return Ok(batch.clone());
    }
    with_texts(
        batch,
        (0..texts.len()).map(|i| edited(i).unwrap_or(texts.value(i))),
    )
}

/// The text column of a document batch.
pub(crate) fn text_column<'a>(
    batch: &'a RecordBatch,
    stage: &str,
) -> Result<&'a StringArray, StageError> {
    string_column(batch, col::TEXT, stage)
}

/// A non-null Utf8 column of a document batch.
pub(crate) fn string_column<'a>(
    batch: &'a RecordBatch,
    name: &str,
    stage: &str,
) -> Result<&'a StringArray, StageError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .filter(|c| c.null_count() == 0)
        .ok_or_else(|| StageError::Internal {
            stage: stage.to_string(),
            message: format!("batch has no non-null Utf8 `{name}` column"),
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ingest::batch::DocBatchBuilder;

    /// A document batch of the given texts.
    pub(crate) fn docs(texts: &[&str]) -> RecordBatch {
        let mut b = DocBatchBuilder::default();
        for (i, t) in texts.iter().enumerate() {
            b.push("s", "file:///x.jsonl", &(i + 1).to_string(), None, t, "{}");
        }
        b.finish().unwrap()
    }

    #[test]
    fn every_stage_type_parses_builds_and_has_a_unique_default_name() {
        let examples = [
            "type = 'normalize'\nnfc = false",
            "type = 'length'\nmin_words = 3",
            "type = 'exact_dedup'\npriority = ['wiki']",
            "type = 'minhash_dedup'\nthreshold = 0.7\nverify = true",
            "type = 'gopher_quality'\nmin_doc_words = 20",
            "type = 'gopher_repetition'\ntop_n_grams = [[2, 0.3]]",
            "type = 'c4'\nfilter_javascript = false",
            "type = 'fineweb'\nmax_newline_ratio = 0",
            "type = 'language'\nlanguages = ['eng', 'fra']",
            "type = 'pii'\nkinds = ['email']",
        ];
        let mut names = std::collections::HashSet::new();
        for ex in examples {
            let cfg: StageConfig = toml::from_str(ex).unwrap();
            assert!(cfg.check().is_empty(), "{ex}");
            assert_eq!(cfg.build().unwrap().name(), cfg.name());
            assert!(
                names.insert(cfg.name().to_string()),
                "duplicate stage name {}",
                cfg.name()
            );
        }
    }

    /// [`StageConfig::deserialize_as`] knows every type the tagged enum does, and reads each the
    /// same way.
    #[test]
    fn every_stage_type_reads_the_same_by_its_type_as_tagged() {
        let unknown = toml::from_str::<StageConfig>("type = 'nope'").unwrap_err();
        let listed = unknown.message().split("expected one of").nth(1).unwrap();
        let types: Vec<&str> = listed.split('`').skip(1).step_by(2).collect();
        assert_eq!(types.len(), 11, "{listed}");
        for ty in types {
            for table in ["name = 'x'", "name = 'x'\nnope = 1", "name = 2"] {
                let tagged = toml::from_str::<StageConfig>(&format!("type = '{ty}'\n{table}"));
                let table = toml::Value::Table(toml::from_str(table).unwrap());
                let direct = StageConfig::deserialize_as(ty, table).expect("a known type");
                match (tagged, direct) {
                    (Ok(a), Ok(b)) => assert_eq!(
                        serde_json::to_value(a).unwrap(),
                        serde_json::to_value(b).unwrap()
                    ),
                    (Err(a), Err(b)) => assert_eq!(a.message(), b.message(), "{ty}"),
                    (a, b) => panic!("{ty}: {a:?} tagged, {b:?} by type"),
                }
            }
        }
        assert!(StageConfig::deserialize_as("nope", toml::Value::from("x")).is_none());
    }

    #[test]
    fn unknown_stage_types_and_keys_are_refused() {
        assert!(toml::from_str::<StageConfig>("type = 'nope'").is_err());
        assert!(toml::from_str::<StageConfig>("type = 'length'\nmin_wrds = 3").is_err());
    }
}
