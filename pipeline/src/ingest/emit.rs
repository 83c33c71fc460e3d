//! The [`Emitter`]: where readers put documents and quarantined records.

use std::sync::mpsc::SyncSender;

use arrow::record_batch::RecordBatch;

use super::batch::{DocBatchBuilder, Quarantined, Scope};
use super::reason;
use crate::config::RunConfig;

/// Warnings printed per unit before the rest are only counted.
const WARN_LIMIT: usize = 10;

/// One message from a reader: a batch of documents and the records quarantined while reading it.
pub struct Ingested {
    /// Documents, in file order.
    pub docs: RecordBatch,
    /// Quarantined records and files, in file order.
    pub quarantine: Vec<Quarantined>,
}

/// What a unit's reading produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IngestCounts {
    /// Records read (lines with content, rows, text files).
    pub records: u64,
    /// Records that became documents.
    pub documents: u64,
    /// Records quarantined.
    pub quarantined_records: u64,
    /// Files (or inputs) quarantined wholly or from some point on.
    pub file_errors: u64,
}

/// Why a reader stopped early.
#[derive(Debug)]
pub enum Stop {
    /// `--strict` and this record or file was bad.
    Strict(Box<Quarantined>),
    /// The consumer went away (it failed; its error is reported instead).
    Closed,
}

/// Collects one unit's documents into batches and sends them downstream with backpressure.
pub struct Emitter {
    source: String,
    tx: SyncSender<Ingested>,
    docs: DocBatchBuilder,
    quarantine: Vec<Quarantined>,
    counts: IngestCounts,
    limits: RunConfig,
    warned: usize,
}

impl Emitter {
    /// An emitter for `source`, sending to `tx`, with the run's batch and size limits.
    pub fn new(source: &str, tx: SyncSender<Ingested>, limits: &RunConfig) -> Self {
        Self {
            source: source.to_string(),
            tx,
            docs: DocBatchBuilder::default(),
            quarantine: Vec::new(),
            counts: IngestCounts::default(),
            limits: limits.clone(),
            warned: 0,
        }
    }

    /// The largest document accepted, in bytes.
    pub fn max_doc_bytes(&self) -> u64 {
        self.limits.max_doc_bytes
    }

    /// Preferred rows per batch (for readers that batch themselves).
    pub fn batch_size(&self) -> usize {
        self.limits.batch_size
    }

    /// Adds one record's document; quarantines it instead when over `max_doc_bytes`.
    pub fn document(
        &mut self,
        uri: &str,
        locator: &str,
        key: Option<&str>,
        text: &str,
        meta: &str,
    ) -> Result<(), Stop> {
        if text.len() as u64 > self.limits.max_doc_bytes {
            let detail = format!(
                "text is {} bytes, over max_doc_bytes = {}",
                text.len(),
                self.limits.max_doc_bytes
            );
            return self.reject_record(uri, locator, reason::OVERSIZE_DOCUMENT, detail, None);
        }
        self.counts.records += 1;
        self.counts.documents += 1;
        self.docs.push(&self.source, uri, locator, key, text, meta);
        if self.docs.rows() >= self.limits.batch_size
            || self.docs.text_bytes() >= self.limits.batch_bytes
        {
            self.flush()?;
        }
        Ok(())
    }

    /// Quarantines one record.
    pub fn reject_record(
        &mut self,
        uri: &str,
        locator: &str,
        reason: &'static str,
        detail: String,
        raw: Option<Vec<u8>>,
    ) -> Result<(), Stop> {
        self.counts.records += 1;
        self.counts.quarantined_records += 1;
        self.quarantine(
            Scope::Record,
            uri,
            Some(locator.to_string()),
            reason,
            detail,
            raw,
        )
    }

    /// Quarantines a whole file, or the rest of it from `locator` on.
    pub fn file_error(
        &mut self,
        uri: &str,
        locator: Option<String>,
        reason: &'static str,
        detail: String,
        raw: Option<Vec<u8>>,
    ) -> Result<(), Stop> {
        self.counts.file_errors += 1;
        self.quarantine(Scope::File, uri, locator, reason, detail, raw)
    }

    fn quarantine(
        &mut self,
        scope: Scope,
        uri: &str,
        locator: Option<String>,
        reason: &'static str,
        detail: String,
        raw: Option<Vec<u8>>,
    ) -> Result<(), Stop> {
        let q = Quarantined {
            source: self.source.clone(),
            uri: uri.to_string(),
            locator,
            scope,
            reason,
            detail,
            raw,
        };
        if self.limits.strict {
            return Err(Stop::Strict(Box::new(q)));
        }
        if self.warned < WARN_LIMIT {
            tracing::warn!(source = %q.source, reason = q.reason, "Quarantined {}", q.describe());
            self.warned += 1;
        }
        self.quarantine.push(q);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Stop> {
        let docs = self.docs.finish().map_err(|_| Stop::Closed)?;
        let quarantine = std::mem::take(&mut self.quarantine);
        self.tx
            .send(Ingested { docs, quarantine })
            .map_err(|_| Stop::Closed)
    }

    /// Sends what is left and returns the unit's counts.
    pub fn finish(mut self) -> Result<IngestCounts, Stop> {
        if self.docs.rows() > 0 || !self.quarantine.is_empty() {
            self.flush()?;
        }
        let hidden =
            (self.counts.quarantined_records + self.counts.file_errors) as usize - self.warned;
        if hidden > 0 {
            tracing::warn!(source = %self.source, "{hidden} more quarantined records not shown; see the quarantine table");
        }
        Ok(self.counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_close_at_the_row_limit_and_accounting_adds_up() {
        let (tx, rx) = std::sync::mpsc::sync_channel(100);
        let limits = RunConfig {
            batch_size: 2,
            max_doc_bytes: 5,
            ..RunConfig::default()
        };
        let mut e = Emitter::new("s", tx, &limits);
        for (i, text) in ["a", "b", "too long", "c"].iter().enumerate() {
            e.document("u", &i.to_string(), None, text, "{}").unwrap();
        }
        e.reject_record(
            "u",
            "9",
            reason::MALFORMED_JSON,
            "bad".into(),
            Some(b"{".to_vec()),
        )
        .unwrap();
        let counts = e.finish().unwrap();
        assert_eq!(
            counts,
            IngestCounts {
                records: 5,
                documents: 3,
                quarantined_records: 2,
                file_errors: 0
            }
        );
        let got: Vec<Ingested> = rx.iter().collect();
        assert_eq!(
            got.iter().map(|m| m.docs.num_rows()).collect::<Vec<_>>(),
            [2, 1]
        );
        let reasons: Vec<_> = got
            .iter()
            .flat_map(|m| m.quarantine.iter().map(|q| q.reason))
            .collect();
        assert_eq!(reasons, [reason::OVERSIZE_DOCUMENT, reason::MALFORMED_JSON]);
    }

    #[test]
    fn strict_mode_stops_at_the_first_bad_record() {
        let (tx, _rx) = std::sync::mpsc::sync_channel(100);
        let mut e = Emitter::new(
            "s",
            tx,
            &RunConfig {
                strict: true,
                ..RunConfig::default()
            },
        );
        match e.reject_record(
            "file:///x.jsonl",
            "4",
            reason::INVALID_UTF8,
            "byte 3".into(),
            None,
        ) {
            Err(Stop::Strict(q)) => assert_eq!(
                q.describe(),
                "file:///x.jsonl:4: ingest.invalid_utf8: byte 3"
            ),
            other => panic!("{other:?}"),
        }
    }
}
