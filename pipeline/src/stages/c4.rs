//! `c4`: C4's line removal and document rules ([`filters::quality::c4`]). Kept documents whose
//! lines were removed get the shortened text and an `edits` row (`c4.lines_removed`, with the
//! line counts and the bytes before and after).

use std::path::PathBuf;

use arrow::array::Array;
use arrow::record_batch::RecordBatch;
use filters::quality::c4::{BadWords, C4, C4Outcome};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{off, on, text_column, with_edited_texts};
use crate::stage::{Edit, Stage, StageError, StageOutput};

/// Config of the `c4` stage. Every rule is on by default, as published; no bad-words list.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct C4Config {
    /// Stage name. Default `c4`.
    pub name: Option<String>,
    /// Cut `[1]`, `[edit]`, `[citation needed]` markers. Default true.
    pub remove_citations: bool,
    /// Remove lines without terminal punctuation. Default true.
    pub filter_no_terminal_punct: bool,
    /// Fewest sentences in the kept lines (0: off). Default 5.
    pub min_num_sentences: usize,
    /// Fewest words in a kept line (0: off). Default 3.
    pub min_words_per_line: usize,
    /// Remove lines with a longer word, in characters (0: off). Default 1,000.
    pub max_word_length: usize,
    /// Drop documents containing "lorem ipsum". Default true.
    pub filter_lorem_ipsum: bool,
    /// Remove lines mentioning "javascript". Default true.
    pub filter_javascript: bool,
    /// Drop documents with a curly bracket in a kept line. Default true.
    pub filter_curly_bracket: bool,
    /// Remove cookie and terms-of-use lines. Default true.
    pub filter_policy: bool,
    /// A file of bad words, one a line: documents containing one (as a whole word, any case)
    /// are dropped. Relative to the config. Default: none.
    pub bad_words: Option<PathBuf>,
}

impl Default for C4Config {
    fn default() -> Self {
        let d = C4::default();
        Self {
            name: None,
            remove_citations: d.remove_citations,
            filter_no_terminal_punct: d.filter_no_terminal_punct,
            min_num_sentences: off(d.min_num_sentences),
            min_words_per_line: off(d.min_words_per_line),
            max_word_length: off(d.max_word_length),
            filter_lorem_ipsum: d.filter_lorem_ipsum,
            filter_javascript: d.filter_javascript,
            filter_curly_bracket: d.filter_curly_bracket,
            filter_policy: d.filter_policy,
            bad_words: None,
        }
    }
}

impl C4Config {
    /// Builds the stage, reading the bad-words file if one is configured.
    pub fn build(&self, name: String) -> Result<C4Stage, StageError> {
        match self.rules() {
            Ok(rules) => Ok(C4Stage { name, rules }),
            Err(message) => Err(StageError::Failed {
                stage: name,
                message,
            }),
        }
    }

    /// The rules as configured, with the bad-words file read if one is configured.
    pub fn rules(&self) -> Result<C4, String> {
        let bad_words = match &self.bad_words {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read bad words {}: {e}", path.display()))?;
                BadWords::new(text.lines())
            }
        };
        Ok(C4 {
            remove_citations: self.remove_citations,
            filter_no_terminal_punct: self.filter_no_terminal_punct,
            min_num_sentences: on(self.min_num_sentences),
            min_words_per_line: on(self.min_words_per_line),
            max_word_length: on(self.max_word_length),
            filter_lorem_ipsum: self.filter_lorem_ipsum,
            filter_javascript: self.filter_javascript,
            filter_curly_bracket: self.filter_curly_bracket,
            filter_policy: self.filter_policy,
            bad_words,
        })
    }
}

/// The running `c4` stage.
pub struct C4Stage {
    name: String,
    rules: C4,
}

impl Stage for C4Stage {
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&self, batch: &RecordBatch) -> Result<StageOutput, StageError> {
        let texts = text_column(batch, &self.name)?;
        let outcomes: Vec<C4Outcome> = (0..texts.len())
            .into_par_iter()
            .map(|i| self.rules.apply(texts.value(i)))
            .collect();
        let mut edits = Vec::new();
        for (row, o) in outcomes.iter().enumerate() {
            if let Some(after) = &o.edited {
                edits.push(Edit {
                    row,
                    rule: "c4.lines_removed",
                    bytes_before: texts.value(row).len() as u64,
                    bytes_after: after.len() as u64,
                    detail: format!(
                        r#"{{"lines":{},"lines_removed":{}}}"#,
                        o.lines, o.lines_removed
                    ),
                });
            }
        }
        let edited = with_edited_texts(batch, texts, |i| outcomes[i].edited.as_deref())?;
        let verdicts = outcomes.into_iter().map(|o| o.verdict).collect();
        Ok(StageOutput {
            edits,
            ..StageOutput::from_verdicts(&edited, verdicts)?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::tests::docs;

    #[test]
    fn edits_kept_documents_and_records_the_edit() {
        let good = "This is a fine sentence. It has words.\nAnother line is here too. Yes it is.\nThe third line ends well.";
        let menu = format!("Home | About\n{good}");
        let batch = docs(&[good, &menu, "Nothing to keep here"]);
        let out = C4Config::default()
            .build("c4".into())
            .unwrap()
            .process(&batch)
            .unwrap();
        let texts = text_column(&out.kept, "c4").unwrap();
        assert_eq!(texts.iter().flatten().collect::<Vec<_>>(), [good, good]);
        assert_eq!(out.rejected.len(), 1);
        assert_eq!(out.rejected[0].verdict.rule, "c4.too_few_sentences");
        assert_eq!(out.edits.len(), 1);
        let e = &out.edits[0];
        assert_eq!(
            (e.row, e.bytes_before, e.bytes_after),
            (1, menu.len() as u64, good.len() as u64)
        );
        assert_eq!(e.detail, r#"{"lines":4,"lines_removed":1}"#);
    }

    #[test]
    fn a_missing_bad_words_file_is_an_error() {
        let cfg = C4Config {
            bad_words: Some("/nonexistent/bad.txt".into()),
            ..Default::default()
        };
        assert!(
            cfg.build("c4".into())
                .err()
                .unwrap()
                .to_string()
                .contains("bad words")
        );
    }
}
