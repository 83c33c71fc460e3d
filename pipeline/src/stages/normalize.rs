//! `normalize`: rewrites each document's text with [`filters::normalize`]. Drops nothing.

use std::borrow::Cow;

use arrow::array::Array;
use arrow::record_batch::RecordBatch;
use filters::normalize::{NormalizeOptions, normalize};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{text_column, with_texts};
use crate::stage::{Stage, StageError, StageOutput};

/// Config of the `normalize` stage. Every step is on by default.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NormalizeConfig {
    /// Stage name. Default `normalize`.
    pub name: Option<String>,
    /// Compose to Unicode NFC. Default true.
    pub nfc: bool,
    /// Drop control characters other than tab and line breaks. Default true.
    pub strip_control: bool,
    /// Normalise line breaks, odd spaces, line-end spaces and blank-line runs. Default true.
    pub whitespace: bool,
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        let o = NormalizeOptions::default();
        Self {
            name: None,
            nfc: o.nfc,
            strip_control: o.strip_control,
            whitespace: o.whitespace,
        }
    }
}

impl NormalizeConfig {
    /// Builds the stage.
    pub fn build(&self, name: String) -> Normalize {
        Normalize {
            name,
            options: self.options(),
        }
    }

    /// The steps as configured.
    pub fn options(&self) -> NormalizeOptions {
        NormalizeOptions {
            nfc: self.nfc,
            strip_control: self.strip_control,
            whitespace: self.whitespace,
        }
    }
}

/// The running `normalize` stage.
pub struct Normalize {
    name: String,
    options: NormalizeOptions,
}

impl Stage for Normalize {
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&self, batch: &RecordBatch) -> Result<StageOutput, StageError> {
        let texts = text_column(batch, &self.name)?;
        let out: Vec<Cow<str>> = (0..texts.len())
            .into_par_iter()
            .map(|i| normalize(texts.value(i), &self.options))
            .collect();
        let unchanged = |(i, t): (usize, &Cow<str>)| {
            matches!(t, Cow::Borrowed(_)) && t.len() == texts.value(i).len()
        };
        if out.iter().enumerate().all(unchanged) {
            return Ok(StageOutput::keep_all(batch));
        }
        let kept = with_texts(batch, out.iter().map(|t| t.as_ref()))?;
        Ok(StageOutput::keep_all(&kept))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::tests::docs;

    #[test]
    fn rewrites_text_and_keeps_every_row_and_column() {
        let batch = docs(&["a\r\nb  ", "clean", "e\u{301}", "\n\ncode\n"]);
        let out = NormalizeConfig::default()
            .build("normalize".into())
            .process(&batch)
            .unwrap();
        assert!(out.rejected.is_empty());
        let texts = text_column(&out.kept, "t").unwrap();
        assert_eq!(
            texts.iter().flatten().collect::<Vec<_>>(),
            ["a\nb", "clean", "\u{e9}", "code"]
        );
        assert_eq!(out.kept.column(0), batch.column(0));
    }
}
