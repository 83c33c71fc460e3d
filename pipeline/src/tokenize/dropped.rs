//! Token counts of the documents the stages dropped, stored in the version as
//! `dropped_tokens.parquet` (`id`, `source`, `tokens`: the text as the dropping stage saw it,
//! encoded with the version's tokenizer, end-of-document token included). With the kept
//! documents' counts in the shard indexes, they give the lineage report's funnel in tokens at
//! every stage. Costs one more encoding pass over the dropped text; `count_dropped_tokens =
//! false` skips it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::ahead::{self, Kind};
use super::documents::{file_size, for_each_batch, parts};
use super::{TextTokenizer, TokenizeError};
use crate::progress::Progress;

/// The file's name inside the version.
pub const FILE: &str = "dropped_tokens.parquet";

/// The table's schema.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("tokens", DataType::UInt64, false),
    ]))
}

/// What counting the dropped documents' tokens took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DroppedCount {
    /// Documents encoded.
    pub documents: u64,
    /// Their text bytes.
    pub text_bytes: u64,
    /// Their tokens, end-of-document tokens included.
    pub tokens: u64,
    /// Parts whose counts the tasks of a partitioned run encoded ahead (see [`super::ahead`]).
    pub encoded_ahead: usize,
}

/// The rejected documents' parts in the run's output `out`, in reading order.
pub fn rejects(out: &Path) -> Result<Vec<PathBuf>, TokenizeError> {
    parts(out, crate::output::REJECTS)
}

/// Encodes every rejected document of the run in `out` and returns the table as Parquet bytes,
/// with what it encoded. Adds each part's size to `progress` when the part is done.
pub fn count(
    out: &Path,
    tokenizer: &TextTokenizer,
    batch_size: usize,
    progress: &Progress,
) -> Result<(Bytes, DroppedCount), TokenizeError> {
    let failed = |e: parquet::errors::ParquetError| TokenizeError::Input(format!("{FILE}: {e}"));
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut writer = ArrowWriter::try_new(Vec::new(), schema(), Some(props)).map_err(failed)?;
    let mut total = DroppedCount::default();
    let mut add = |ids: &StringArray, sources: &StringArray, tokens: UInt64Array| {
        total.documents += ids.len() as u64;
        total.tokens += tokens.values().iter().sum::<u64>();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(ids.clone()),
            Arc::new(sources.clone()),
            Arc::new(tokens),
        ];
        let batch = RecordBatch::try_new(schema(), columns)
            .map_err(|e| TokenizeError::Input(format!("{FILE}: {e}")))?;
        writer.write(&batch).map_err(failed)?;
        progress.docs.fetch_add(ids.len() as u64, Ordering::Relaxed);
        Ok::<_, TokenizeError>(())
    };
    let (mut text_bytes, mut encoded_ahead) = (0, 0);
    for part in rejects(out)? {
        let one = std::slice::from_ref(&part);
        if let Some(encoded) = ahead::read(out, &part, tokenizer, Kind::Counts)? {
            // The same batches as encoding here would make, so the table's bytes are the same.
            encoded_ahead += 1;
            text_bytes += encoded.text_bytes;
            let counts = encoded.counts.iter().map(|&c| u64::from(c));
            ahead::walk(&part, batch_size, counts, |ids, sources, tokens| {
                add(ids, sources, UInt64Array::from(tokens))
            })?;
        } else {
            for_each_batch(one, batch_size, |docs| {
                let texts: Vec<&str> = docs.texts.iter().flatten().collect();
                let counts = tokenizer.encode_documents(&texts)?;
                text_bytes += texts.iter().map(|t| t.len() as u64).sum::<u64>();
                let tokens = counts.iter().map(|t| t.len() as u64);
                add(
                    docs.ids,
                    docs.sources,
                    UInt64Array::from_iter_values(tokens),
                )
            })?;
        }
        progress
            .bytes
            .fetch_add(file_size(&part), Ordering::Relaxed);
    }
    total.text_bytes = text_bytes;
    total.encoded_ahead = encoded_ahead;
    Ok((Bytes::from(writer.into_inner().map_err(failed)?), total))
}
