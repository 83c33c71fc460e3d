//! The stage registry: the only list of stage types. Adding a stage means one file, one variant
//! and one arm in each `match` below.
//!
//! - [`normalize`]: Unicode NFC, control characters and whitespace (edits text, drops nothing).
//! - [`length`]: drops documents outside character and word limits.
//! - [`exact_dedup`]: drops byte-identical texts, one survivor per group.
//! - [`minhash_dedup`]: drops near-duplicates found by MinHash-LSH.
//!
//! The two dedup stages share one engine, [`dedup`].

pub mod dedup;
pub mod exact_dedup;
pub mod length;
pub mod memory_budget;
pub mod minhash_dedup;
pub mod normalize;

use std::sync::Arc;

use arrow::array::{Array, StringArray};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::schema::col;
use crate::stage::{Stage, StageError};

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
}

impl StageConfig {
    /// The stage's name: its `name` key, or its type.
    pub fn name(&self) -> &str {
        match self {
            StageConfig::Normalize(c) => c.name.as_deref().unwrap_or("normalize"),
            StageConfig::Length(c) => c.name.as_deref().unwrap_or("length"),
            StageConfig::ExactDedup(c) => c.name.as_deref().unwrap_or("exact_dedup"),
            StageConfig::MinhashDedup(c) => c.name.as_deref().unwrap_or("minhash_dedup"),
        }
    }

    /// Problems with the stage's values (empty when fine).
    pub fn check(&self) -> Vec<String> {
        match self {
            StageConfig::Normalize(_) => Vec::new(),
            StageConfig::Length(c) => c.check(),
            StageConfig::ExactDedup(c) => c.check(),
            StageConfig::MinhashDedup(c) => c.check(),
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

    /// Mutable [`StageConfig::against`], to resolve it against the config's folder.
    pub fn against_mut(&mut self) -> Option<&mut std::path::PathBuf> {
        match self {
            StageConfig::ExactDedup(c) => c.against.as_mut(),
            StageConfig::MinhashDedup(c) => c.against.as_mut(),
            _ => None,
        }
    }

    /// Builds the running stage.
    pub fn build(&self) -> Arc<dyn Stage> {
        let name = self.name().to_string();
        match self {
            StageConfig::Normalize(c) => Arc::new(c.build(name)),
            StageConfig::Length(c) => Arc::new(c.build(name)),
            StageConfig::ExactDedup(c) => Arc::new(c.build(name)),
            StageConfig::MinhashDedup(c) => Arc::new(c.build(name)),
        }
    }
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
        ];
        let mut names = std::collections::HashSet::new();
        for ex in examples {
            let cfg: StageConfig = toml::from_str(ex).unwrap();
            assert!(cfg.check().is_empty(), "{ex}");
            assert_eq!(cfg.build().name(), cfg.name());
            assert!(
                names.insert(cfg.name().to_string()),
                "duplicate stage name {}",
                cfg.name()
            );
        }
    }

    #[test]
    fn unknown_stage_types_and_keys_are_refused() {
        assert!(toml::from_str::<StageConfig>("type = 'nope'").is_err());
        assert!(toml::from_str::<StageConfig>("type = 'length'\nmin_wrds = 3").is_err());
    }
}
