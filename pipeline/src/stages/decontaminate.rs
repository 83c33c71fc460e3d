//! `decontaminate`: finds benchmark passages inside documents ([`filters::contamination`]) and
//! drops those documents or cuts the matching spans out of them.
//!
//! Each benchmark is a JSONL file (optionally gzipped) and the fields holding its text
//! (`question`, `answer`, `choices.text`, ...); every field of every item is one passage. A
//! document is contaminated by a passage when it contains at least `threshold` of the passage's
//! n-grams. Every hit is a row of the `contamination` table (document, benchmark, item, field,
//! matched n-grams, overlap, action), which `refinery report contamination` summarises by
//! benchmark item and source.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use filters::contamination::{Hit, NgramIndex, cut, merge_spans};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{string_array, string_column, text_column, with_texts};
use crate::schema::col;
use crate::stage::{Edit, Stage, StageError, StageOutput};
use filters::Verdict;

/// Name of the table of hits.
pub const CONTAMINATION: &str = "contamination";

/// What to do with a contaminated document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Drop it (rule `decontaminate.contaminated`).
    Drop,
    /// Cut the matching spans out and keep the rest (an `edits` row, `decontaminate.cut`);
    /// a document with no letters or digits left is dropped (`decontaminate.nothing_left`).
    Cut,
}

/// One benchmark to look for.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkConfig {
    /// Its name in the contamination table.
    pub name: String,
    /// JSONL or JSONL.gz file, relative to the config.
    pub path: PathBuf,
    /// Fields holding text; dotted paths reach into objects (`choices.text`); a list of strings
    /// counts as one passage.
    pub fields: Vec<String>,
    /// Field holding the item id. Default: the 1-based line number.
    pub id_field: Option<String>,
}

/// Config of the `decontaminate` stage.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecontaminateConfig {
    /// Stage name. Default `decontaminate`.
    pub name: Option<String>,
    /// The benchmarks.
    pub benchmarks: Vec<BenchmarkConfig>,
    /// Words per n-gram. Default 13.
    pub ngram: usize,
    /// Passages with fewer words are ignored; passages shorter than `ngram` but at least this
    /// long match only as a whole. Default 6.
    pub min_words: usize,
    /// Fraction of a passage's n-grams a document must contain to be contaminated. Default 0.5.
    pub threshold: f64,
    /// `drop` (default) or `cut`.
    pub mode: Mode,
}

impl Default for DecontaminateConfig {
    fn default() -> Self {
        Self {
            name: None,
            benchmarks: Vec::new(),
            ngram: 13,
            min_words: 6,
            threshold: 0.5,
            mode: Mode::Drop,
        }
    }
}

impl DecontaminateConfig {
    /// Problems with the values.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.benchmarks.is_empty() {
            problems.push("no `[[stages.benchmarks]]` given".to_string());
        }
        if self.ngram == 0 || self.min_words == 0 {
            problems.push("`ngram` and `min_words` must be at least 1".to_string());
        }
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            problems.push(format!(
                "threshold ({}) must be within (0, 1]",
                self.threshold
            ));
        }
        for b in &self.benchmarks {
            if b.fields.is_empty() {
                problems.push(format!("benchmark `{}` has no `fields`", b.name));
            }
        }
        problems
    }

    /// The benchmark files (for validation).
    pub fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.benchmarks.iter().map(|b| &b.path)
    }

    /// Mutable benchmark paths, to resolve them against the config's folder.
    pub fn files_mut(&mut self) -> impl Iterator<Item = &mut PathBuf> {
        self.benchmarks.iter_mut().map(|b| &mut b.path)
    }

    /// Loads the benchmarks and builds the stage.
    pub fn build(&self, name: String) -> Result<Decontaminate, StageError> {
        let failed = |message: String| StageError::Failed {
            stage: name.clone(),
            message,
        };
        let mut index = NgramIndex::new(self.ngram, self.min_words);
        for b in &self.benchmarks {
            let (added, short) = load(b, &mut index).map_err(failed)?;
            tracing::info!(stage = %name, benchmark = %b.name, passages = added, too_short = short, "Benchmark indexed");
        }
        Ok(Decontaminate {
            name,
            index,
            threshold: self.threshold,
            mode: self.mode,
        })
    }
}

/// Indexes every passage of benchmark `b`; returns (passages indexed, passages too short).
fn load(b: &BenchmarkConfig, index: &mut NgramIndex) -> Result<(usize, usize), String> {
    let where_ = b.path.display();
    let file = std::fs::File::open(&b.path)
        .map_err(|e| format!("benchmark `{}`: cannot open {where_}: {e}", b.name))?;
    let reader: Box<dyn Read> = if b.path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let (mut added, mut short) = (0, 0);
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let at =
            |e: &dyn std::fmt::Display| format!("benchmark `{}`: {where_}:{}: {e}", b.name, i + 1);
        let line = line.map_err(|e| at(&e))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: serde_json::Value = serde_json::from_str(&line).map_err(|e| at(&e))?;
        let item = match &b.id_field {
            Some(f) => text_of(lookup(&record, f)).ok_or_else(|| at(&format!("no `{f}` field")))?,
            None => (i + 1).to_string(),
        };
        for field in &b.fields {
            let Some(text) = text_of(lookup(&record, field)) else {
                continue;
            };
            if index.add(&b.name, &item, field, &text) {
                added += 1;
            } else {
                short += 1;
            }
        }
    }
    Ok((added, short))
}

/// The value at a dotted path.
fn lookup<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.').try_fold(v, |v, key| v.get(key))
}

/// A value as passage text: strings as they are, numbers and booleans printed, lists of them
/// joined by newlines.
fn text_of(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(|i| text_of(Some(i))).collect();
            (!parts.is_empty()).then(|| parts.join("\n"))
        }
        serde_json::Value::Null | serde_json::Value::Object(_) => None,
        other => Some(other.to_string()),
    }
}

/// The running `decontaminate` stage.
pub struct Decontaminate {
    name: String,
    index: NgramIndex,
    threshold: f64,
    mode: Mode,
}

/// The `contamination` table's schema.
pub fn contamination_schema() -> SchemaRef {
    let utf8 = |n: &str| Field::new(n, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        utf8(col::ID),
        utf8(col::SOURCE),
        utf8("stage"),
        utf8("benchmark"),
        utf8("item"),
        utf8("field"),
        Field::new("matched_ngrams", DataType::UInt32, false),
        Field::new("passage_ngrams", DataType::UInt32, false),
        Field::new("overlap", DataType::Float64, false),
        utf8("action"),
    ]))
}

impl Decontaminate {
    /// The table rows for the hits of each row.
    fn table(&self, batch: &RecordBatch, hits: &[Vec<Hit>]) -> Result<RecordBatch, StageError> {
        let ids = string_column(batch, col::ID, &self.name)?;
        let sources = string_column(batch, col::SOURCE, &self.name)?;
        let rows: Vec<(usize, &Hit)> = hits
            .iter()
            .enumerate()
            .flat_map(|(row, hs)| hs.iter().map(move |h| (row, h)))
            .collect();
        let passages = self.index.passages();
        let action = match self.mode {
            Mode::Drop => "dropped",
            Mode::Cut => "cut",
        };
        let columns: Vec<ArrayRef> = vec![
            string_array(&rows, |(r, _)| ids.value(*r)),
            string_array(&rows, |(r, _)| sources.value(*r)),
            string_array(&rows, |_| &self.name),
            string_array(&rows, |(_, h)| &passages[h.passage].benchmark),
            string_array(&rows, |(_, h)| &passages[h.passage].item),
            string_array(&rows, |(_, h)| &passages[h.passage].field),
            Arc::new(UInt32Array::from_iter_values(
                rows.iter().map(|(_, h)| h.matched),
            )),
            Arc::new(UInt32Array::from_iter_values(
                rows.iter().map(|(_, h)| passages[h.passage].ngrams),
            )),
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|(_, h)| h.overlap),
            )),
            string_array(&rows, |_| action),
        ];
        Ok(RecordBatch::try_new(contamination_schema(), columns)?)
    }
}

impl Stage for Decontaminate {
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&self, batch: &RecordBatch) -> Result<StageOutput, StageError> {
        let texts = text_column(batch, &self.name)?;
        let hits: Vec<Vec<Hit>> = (0..texts.len())
            .into_par_iter()
            .map(|i| self.index.scan(texts.value(i), self.threshold))
            .collect();
        if hits.iter().all(Vec::is_empty) {
            return Ok(StageOutput::keep_all(batch));
        }
        let table = self.table(batch, &hits)?;
        let worst = |hs: &[Hit]| hs.iter().map(|h| h.overlap).fold(0.0, f64::max);
        let verdict = |rule, value| Verdict {
            rule,
            passed: false,
            value,
            threshold: self.threshold,
        };
        let mut out = match self.mode {
            Mode::Drop => {
                let verdicts = hits
                    .iter()
                    .map(|hs| {
                        (!hs.is_empty()).then(|| verdict("decontaminate.contaminated", worst(hs)))
                    })
                    .collect();
                StageOutput::from_verdicts(batch, verdicts)?
            }
            Mode::Cut => {
                let mut spans: Vec<Vec<(usize, usize)>> = Vec::with_capacity(hits.len());
                for hs in &hits {
                    let mut all: Vec<(usize, usize)> =
                        hs.iter().flat_map(|h| h.spans.iter().copied()).collect();
                    all.sort_unstable();
                    spans.push(merge_spans(all));
                }
                let new_texts: Vec<String> = (0..texts.len())
                    .map(|i| cut(texts.value(i), &spans[i]))
                    .collect();
                let mut edits = Vec::new();
                let mut verdicts = Vec::with_capacity(hits.len());
                for (row, hs) in hits.iter().enumerate() {
                    let emptied = !new_texts[row].chars().any(char::is_alphanumeric);
                    if hs.is_empty() {
                        verdicts.push(None);
                    } else if emptied {
                        verdicts.push(Some(verdict("decontaminate.nothing_left", worst(hs))));
                    } else {
                        verdicts.push(None);
                        edits.push(Edit {
                            row,
                            rule: "decontaminate.cut",
                            bytes_before: texts.value(row).len() as u64,
                            bytes_after: new_texts[row].len() as u64,
                            detail: format!(
                                r#"{{"passages":{},"spans":{}}}"#,
                                hs.len(),
                                spans[row].len()
                            ),
                        });
                    }
                }
                let edited = with_texts(batch, new_texts.iter().map(String::as_str))?;
                StageOutput {
                    edits,
                    ..StageOutput::from_verdicts(&edited, verdicts)?
                }
            }
        };
        out.tables.push((CONTAMINATION, table));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::tests::docs;

    fn config(dir: &std::path::Path, lines: &str, mode: Mode) -> DecontaminateConfig {
        let path = dir.join("bench.jsonl");
        std::fs::write(&path, lines).unwrap();
        DecontaminateConfig {
            benchmarks: vec![BenchmarkConfig {
                name: "quiz".into(),
                path,
                fields: vec!["q".into(), "choices.text".into()],
                id_field: Some("id".into()),
            }],
            mode,
            ..Default::default()
        }
    }

    #[test]
    fn bad_benchmark_files_are_reported_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(
            dir.path(),
            "{\"id\": \"a\", \"q\": \"x\"}\n{not json\n",
            Mode::Drop,
        );
        let err = cfg.build("d".into()).err().unwrap().to_string();
        assert!(err.contains("bench.jsonl:2"), "{err}");
        let cfg = config(dir.path(), "{\"q\": \"no id here at all\"}\n", Mode::Drop);
        let err = cfg.build("d".into()).err().unwrap().to_string();
        assert!(
            err.contains("bench.jsonl:1") && err.contains("no `id` field"),
            "{err}"
        );
    }

    #[test]
    fn nested_list_fields_are_passages_and_hits_are_tabled() {
        let dir = tempfile::tempdir().unwrap();
        let item = r#"{"id": "Q7", "q": "short", "choices": {"text": ["the mitochondria is the powerhouse", "of the cell in every living thing"]}}"#;
        let stage = config(dir.path(), item, Mode::Cut)
            .build("d".into())
            .unwrap();
        let text = "Intro. The mitochondria is the powerhouse of the cell in every living thing! End of story here.";
        let out = stage.process(&docs(&[text, "clean text"])).unwrap();
        assert_eq!(out.kept.num_rows(), 2);
        let (name, table) = &out.tables[0];
        assert_eq!((*name, table.num_rows()), (CONTAMINATION, 1));
        let items = string_column(table, "item", "d").unwrap();
        let fields = string_column(table, "field", "d").unwrap();
        assert_eq!((items.value(0), fields.value(0)), ("Q7", "choices.text"));
        let kept = text_column(&out.kept, "d").unwrap();
        assert_eq!(kept.value(0), "Intro. ! End of story here.");
        assert_eq!(out.edits[0].rule, "decontaminate.cut");
    }
}
