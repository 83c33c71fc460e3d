//! `language`: detects each document's language ([`filters::language`]), writes it into the
//! `language` and `language_score` columns, and drops documents outside the configured
//! languages or below the score threshold (`language.other`, `language.low_score`).

use std::sync::Arc;

use arrow::array::{Array, Float64Array, StringArray};
use arrow::record_batch::RecordBatch;
use filters::language::{Detected, LanguageRule, is_known_code};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::text_column;
use crate::schema::col;
use crate::stage::{Stage, StageError, StageOutput};

/// Config of the `language` stage.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LanguageConfig {
    /// Stage name. Default `language`.
    pub name: Option<String>,
    /// Languages to keep, as ISO 639-3 codes (`eng`, `deu`, ...). Default `["eng"]`; an empty
    /// list keeps every language and only annotates.
    pub languages: Vec<String>,
    /// Lowest score kept. Default 0.65.
    pub min_score: f64,
    /// Characters read from the start of each document. Default 4,096.
    pub max_chars: usize,
}

impl Default for LanguageConfig {
    fn default() -> Self {
        let d = LanguageRule::default();
        Self {
            name: None,
            languages: d.languages,
            min_score: d.min_score,
            max_chars: d.max_chars,
        }
    }
}

impl LanguageConfig {
    /// Problems: unknown codes, a score outside 0..1.
    pub fn check(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .languages
            .iter()
            .filter(|l| !is_known_code(l))
            .map(|l| format!("unknown language `{l}` (use ISO 639-3 codes such as `eng`)"))
            .collect();
        if !(0.0..=1.0).contains(&self.min_score) {
            problems.push(format!(
                "min_score ({}) must be within 0..1",
                self.min_score
            ));
        }
        problems
    }

    /// Builds the stage.
    pub fn build(&self, name: String) -> Language {
        Language {
            name,
            rule: self.rule(),
        }
    }

    /// The rule as configured.
    pub fn rule(&self) -> LanguageRule {
        LanguageRule {
            languages: self.languages.clone(),
            min_score: self.min_score,
            max_chars: self.max_chars.max(1),
        }
    }
}

/// The running `language` stage.
pub struct Language {
    name: String,
    rule: LanguageRule,
}

impl Stage for Language {
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&self, batch: &RecordBatch) -> Result<StageOutput, StageError> {
        let texts = text_column(batch, &self.name)?;
        let checked: Vec<(Detected, Option<filters::Verdict>)> = (0..texts.len())
            .into_par_iter()
            .map(|i| self.rule.check(texts.value(i)))
            .collect();
        let schema = batch.schema();
        let mut columns = batch.columns().to_vec();
        let languages: StringArray = checked.iter().map(|(d, _)| Some(d.language)).collect();
        let scores: Float64Array = checked.iter().map(|(d, _)| Some(d.score)).collect();
        columns[schema.index_of(col::LANGUAGE)?] = Arc::new(languages);
        columns[schema.index_of(col::LANGUAGE_SCORE)?] = Arc::new(scores);
        let annotated = RecordBatch::try_new(schema, columns)?;
        StageOutput::from_verdicts(&annotated, checked.into_iter().map(|(_, v)| v).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::tests::docs;

    #[test]
    fn annotates_kept_documents_and_drops_the_others() {
        let batch = docs(&[
            "The committee met on Tuesday to discuss the budget for the coming year and agreed.",
            "Le comité s'est réuni mardi pour discuter du budget de l'année prochaine et a conclu.",
        ]);
        let out = LanguageConfig::default()
            .build("lang".into())
            .process(&batch)
            .unwrap();
        assert_eq!(out.kept.num_rows(), 1);
        let lang = out.kept.column_by_name(col::LANGUAGE).unwrap();
        let lang = lang.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(lang.value(0), "eng");
        let score = out.kept.column_by_name(col::LANGUAGE_SCORE).unwrap();
        assert!(
            score
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap()
                .value(0)
                >= 0.65
        );
        assert_eq!(out.rejected[0].verdict.rule, "language.other");
    }

    #[test]
    fn unknown_codes_are_config_errors() {
        let cfg = LanguageConfig {
            languages: vec!["en".into()],
            ..Default::default()
        };
        assert!(cfg.check()[0].contains("ISO 639-3"));
    }
}
