//! `exact_dedup`: drops documents whose text (after the stages before it, so put `normalize`
//! first) is byte-identical to another's, across all sources; one survivor per group.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::dedup::{Dedup, Method};
use super::memory_budget::parse_bytes;

/// Config of the `exact_dedup` stage.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExactDedupConfig {
    /// Stage name. Default `exact_dedup`.
    pub name: Option<String>,
    /// Sources whose documents survive first, in order; then the smallest id wins.
    pub priority: Vec<String>,
    /// Output folder of an earlier run: documents it kept win over this run's duplicates.
    pub against: Option<PathBuf>,
    /// Memory for sorting bucket keys before spilling to disk, e.g. `"512MiB"`.
    pub memory_budget: Option<String>,
}

impl ExactDedupConfig {
    /// Problems with the values.
    pub fn check(&self) -> Vec<String> {
        self.memory_budget
            .as_deref()
            .and_then(|b| parse_bytes(b).err())
            .into_iter()
            .collect()
    }

    /// Builds the stage.
    pub fn build(&self, name: String) -> Dedup {
        Dedup::new(
            name,
            Method::Exact,
            self.priority.clone(),
            self.against.clone(),
            self.memory_budget.as_deref(),
        )
    }
}
