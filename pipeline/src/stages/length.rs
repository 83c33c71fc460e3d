//! `length`: drops documents outside character and word limits ([`filters::length`]).

use filters::length::LengthLimits;
use serde::{Deserialize, Serialize};

use super::verdict_stage;
use crate::stage::{Stage, StageError, StageOutput};
use arrow::record_batch::RecordBatch;

/// Config of the `length` stage. Limits are inclusive; an absent limit is off.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LengthConfig {
    /// Stage name. Default `length`.
    pub name: Option<String>,
    /// Fewest characters (Unicode scalar values). Default: off.
    pub min_chars: Option<u64>,
    /// Most characters. Default: off.
    pub max_chars: Option<u64>,
    /// Fewest words (runs of non-whitespace). Default: off.
    pub min_words: Option<u64>,
    /// Most words. Default: off.
    pub max_words: Option<u64>,
}

impl LengthConfig {
    /// Problems with the limits.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if [
            self.min_chars,
            self.max_chars,
            self.min_words,
            self.max_words,
        ]
        .iter()
        .all(Option::is_none)
        {
            problems
                .push("set at least one of min_chars, max_chars, min_words, max_words".to_string());
        }
        for (unit, min, max) in [
            ("chars", self.min_chars, self.max_chars),
            ("words", self.min_words, self.max_words),
        ] {
            if let (Some(lo), Some(hi)) = (min, max)
                && lo > hi
            {
                problems.push(format!(
                    "min_{unit} ({lo}) is greater than max_{unit} ({hi})"
                ));
            }
        }
        problems
    }

    /// Builds the stage.
    pub fn build(&self, name: String) -> Length {
        let limits = LengthLimits {
            min_chars: self.min_chars,
            max_chars: self.max_chars,
            min_words: self.min_words,
            max_words: self.max_words,
        };
        Length { name, limits }
    }
}

/// The running `length` stage.
pub struct Length {
    name: String,
    limits: LengthLimits,
}

impl Stage for Length {
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&self, batch: &RecordBatch) -> Result<StageOutput, StageError> {
        verdict_stage(batch, &self.name, |t| self.limits.first_failure(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::tests::docs;

    #[test]
    fn drops_out_of_range_documents_with_their_measurements() {
        let cfg = LengthConfig {
            min_words: Some(2),
            max_chars: Some(12),
            ..Default::default()
        };
        let out = cfg
            .build("len".into())
            .process(&docs(&["one", "two words", "far too many chars here"]))
            .unwrap();
        assert_eq!(out.kept.num_rows(), 1);
        let got: Vec<_> = out
            .rejected
            .iter()
            .map(|r| (r.row, r.verdict.rule, r.verdict.value, r.verdict.threshold))
            .collect();
        assert_eq!(
            got,
            [
                (0, "length.min_words", 1.0, 2.0),
                (2, "length.max_chars", 23.0, 12.0)
            ]
        );
    }

    #[test]
    fn inverted_or_missing_limits_are_config_errors() {
        assert_eq!(LengthConfig::default().check().len(), 1);
        let bad = LengthConfig {
            min_chars: Some(5),
            max_chars: Some(4),
            ..Default::default()
        };
        assert!(bad.check()[0].contains("min_chars (5)"));
    }
}
