//! Builders for document and quarantine batches.

use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryBuilder, StringBuilder, new_null_array};
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::schema::{self, RAW_CAP, content_hash, doc_id};

/// Accumulates documents into a batch of the document schema.
#[derive(Default)]
pub struct DocBatchBuilder {
    columns: [StringBuilder; 7],
    rows: usize,
    text_bytes: u64,
}

impl DocBatchBuilder {
    /// Adds one document. `key` is its id key (see [`doc_id`]); `None` uses the locator.
    pub fn push(
        &mut self,
        source: &str,
        uri: &str,
        locator: &str,
        key: Option<&str>,
        text: &str,
        meta: &str,
    ) {
        let id = doc_id(source, uri, key.unwrap_or(locator));
        let hash = content_hash(text);
        for (builder, value) in self.columns.iter_mut().zip([
            id.as_str(),
            source,
            uri,
            locator,
            text,
            hash.as_str(),
            meta,
        ]) {
            builder.append_value(value);
        }
        self.rows += 1;
        self.text_bytes += text.len() as u64;
    }

    /// Documents added since the last [`finish`](Self::finish).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Text bytes added since the last [`finish`](Self::finish).
    pub fn text_bytes(&self) -> u64 {
        self.text_bytes
    }

    /// Returns the batch and starts a new one.
    /// `language` and `language_score` are null: only a `language` stage sets them.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        // Each next builder starts with this batch's sizes, so it does not grow by doubling
        // (copying its bytes again) on the way to a similar batch.
        let mut columns: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|b| {
                let sized = StringBuilder::with_capacity(self.rows, b.values_slice().len());
                Arc::new(std::mem::replace(b, sized).finish()) as ArrayRef
            })
            .collect();
        columns.push(new_null_array(&DataType::Utf8, self.rows));
        columns.push(new_null_array(&DataType::Float64, self.rows));
        self.rows = 0;
        self.text_bytes = 0;
        RecordBatch::try_new(schema::documents(), columns)
    }
}

/// Whether a quarantine row is about one record or a whole file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One record could not become a document.
    Record,
    /// A file (or input spec) could not be read, wholly or from some point on.
    File,
}

/// One quarantined record or file.
#[derive(Debug, Clone, PartialEq)]
pub struct Quarantined {
    /// Source name.
    pub source: String,
    /// File or input spec.
    pub uri: String,
    /// Line, row or path inside the file, when known.
    pub locator: Option<String>,
    /// Record or file.
    pub scope: Scope,
    /// Stable reason name (`ingest.malformed_json`, ...).
    pub reason: &'static str,
    /// Readable explanation.
    pub detail: String,
    /// The record's bytes (at most [`RAW_CAP`]).
    pub raw: Option<Vec<u8>>,
}

impl Quarantined {
    /// `uri:locator: reason: detail`, the form printed in warnings and errors; a locator that
    /// is the file's path (text files) is not repeated after the uri.
    pub fn describe(&self) -> String {
        let at = match &self.locator {
            Some(l) if !is_path_of(l, &self.uri) => format!("{}:{l}", self.uri),
            _ => self.uri.clone(),
        };
        format!("{at}: {}: {}", self.reason, self.detail)
    }
}

/// Whether `locator` is the path at the end of `uri` rather than a line or row number.
fn is_path_of(locator: &str, uri: &str) -> bool {
    !locator.bytes().all(|b| b.is_ascii_digit())
        && uri.strip_suffix(locator).is_some_and(|u| u.ends_with('/'))
}

/// Builds a quarantine batch from rows.
pub fn quarantine_batch(rows: &[Quarantined]) -> Result<RecordBatch, ArrowError> {
    let mut strings: [StringBuilder; 5] = Default::default();
    let mut locator = StringBuilder::new();
    let mut raw = BinaryBuilder::new();
    for q in rows {
        let scope = match q.scope {
            Scope::Record => "record",
            Scope::File => "file",
        };
        for (b, v) in strings.iter_mut().zip([
            q.source.as_str(),
            q.uri.as_str(),
            scope,
            q.reason,
            q.detail.as_str(),
        ]) {
            b.append_value(v);
        }
        locator.append_option(q.locator.as_deref());
        raw.append_option(q.raw.as_deref().map(|r| &r[..r.len().min(RAW_CAP)]));
    }
    let [source, uri, scope, reason, detail] =
        strings.map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let columns = vec![
        source,
        uri,
        Arc::new(locator.finish()),
        scope,
        reason,
        detail,
        Arc::new(raw.finish()) as ArrayRef,
    ];
    RecordBatch::try_new(schema::quarantine(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};

    #[test]
    fn quarantine_rows_round_trip_and_raw_is_capped() {
        let q = Quarantined {
            source: "s".into(),
            uri: "file:///a.jsonl".into(),
            locator: Some("3".into()),
            scope: Scope::Record,
            reason: "ingest.malformed_json",
            detail: "expected value".into(),
            raw: Some(vec![b'x'; RAW_CAP + 10]),
        };
        assert_eq!(
            q.describe(),
            "file:///a.jsonl:3: ingest.malformed_json: expected value"
        );
        // A text file's locator is its path: not repeated; a line number of a file named `3` is.
        let text_file = Quarantined {
            uri: "file:///data/docs/a.txt".into(),
            locator: Some("data/docs/a.txt".into()),
            ..q.clone()
        };
        assert!(
            text_file
                .describe()
                .starts_with("file:///data/docs/a.txt: ingest.")
        );
        let digits = Quarantined {
            uri: "file:///data/3".into(),
            ..q.clone()
        };
        assert!(digits.describe().starts_with("file:///data/3:3: ingest."));
        let batch = quarantine_batch(&[q]).unwrap();
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.column(6).as_binary::<i32>().value(0).len(), RAW_CAP);
        assert_eq!(batch.column(3).as_string::<i32>().value(0), "record");
        assert!(!batch.column(2).is_null(0));
    }

    #[test]
    fn doc_batches_close_and_restart() {
        let mut b = DocBatchBuilder::default();
        b.push("s", "u", "1", None, "hello", "{}");
        assert_eq!((b.rows(), b.text_bytes()), (1, 5));
        let batch = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(
            batch.column(0).as_string::<i32>().value(0),
            doc_id("s", "u", "1")
        );
        assert_eq!(b.rows(), 0);
    }
}
