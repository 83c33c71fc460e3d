//! Parquet reader: a named text column becomes the text, the other columns the `meta` JSON.
//! Reads row group by row group through the object store, never the whole file.
//!
//! The text column may be any Arrow string type, a dictionary of strings (pandas categoricals), or
//! binary (writers that leave out the UTF-8 annotation, such as older Spark): binary values are
//! checked row by row, and a row that is not UTF-8 is quarantined.

use std::ops::Range;
use std::str::Utf8Error;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use futures::StreamExt;
use object_store::ObjectStore;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use shards::InputFile;
use shards::parquet::StoreFileReader;
use tokio::runtime::Handle;

use super::emit::{Emitter, Stop};
use super::reason;
use crate::schema::RAW_CAP;

/// Reads one Parquet file into `em`; the row number (from 0) is each record's locator.
pub fn read(
    store: &Arc<dyn ObjectStore>,
    file: &InputFile,
    text_field: &str,
    id_field: Option<&str>,
    handle: &Handle,
    em: &mut Emitter,
) -> Result<(), Stop> {
    let uri = file.uri.as_str();
    let reader = StoreFileReader::new(store.clone(), file.path.clone(), file.size);
    let stream = handle
        .block_on(ParquetRecordBatchStreamBuilder::new(reader))
        .and_then(|b| b.with_batch_size(em.batch_size()).build());
    let mut stream = match stream {
        Ok(s) => s,
        Err(e) => {
            return em.file_error(
                uri,
                None,
                reason::READ_ERROR,
                format!("not a readable Parquet file: {e}"),
                None,
            );
        }
    };
    let mut row = 0u64;
    while let Some(batch) = handle.block_on(stream.next()) {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                return em.file_error(
                    uri,
                    Some(row.to_string()),
                    reason::READ_ERROR,
                    e.to_string(),
                    None,
                );
            }
        };
        let columns = match Columns::of(&batch, text_field, id_field) {
            Ok(c) => c,
            Err((why, detail)) => return em.file_error(uri, None, why, detail, None),
        };
        for i in 0..batch.num_rows() {
            let locator = (row + i as u64).to_string();
            let meta = columns.meta(i);
            let (why, detail, raw) = match columns.text.value(i) {
                Ok(None) => (
                    reason::MISSING_TEXT_FIELD,
                    format!("column `{text_field}` is null"),
                    meta.as_bytes(),
                ),
                Err(e) => (
                    reason::INVALID_UTF8,
                    format!(
                        "column `{text_field}`: invalid UTF-8 at byte {}",
                        e.valid_up_to()
                    ),
                    columns.text.bytes(i),
                ),
                Ok(Some(_)) if columns.id.as_ref().is_some_and(|id| id.is_null(i)) => (
                    reason::MISSING_ID_FIELD,
                    "the id column is null".into(),
                    meta.as_bytes(),
                ),
                Ok(Some(text)) => {
                    let key = columns.id.as_ref().map(|id| id.as_string::<i32>().value(i));
                    em.document(uri, &locator, key, text, meta)?;
                    continue;
                }
            };
            let raw = raw[..RAW_CAP.min(raw.len())].to_vec();
            em.reject_record(uri, &locator, why, detail, Some(raw))?;
        }
        row += batch.num_rows() as u64;
    }
    if row == 0 {
        return em.file_error(
            uri,
            None,
            reason::EMPTY_FILE,
            "the file holds no rows".into(),
            None,
        );
    }
    Ok(())
}

/// A batch's text column: strings, or bytes still to be checked for UTF-8.
enum TextColumn {
    Strings(StringArray),
    Bytes(BinaryArray),
}

impl TextColumn {
    /// The column as strings or bytes, or why it cannot hold text.
    fn of(column: &ArrayRef) -> Result<Self, DataType> {
        let kind = column.data_type();
        let converted = match kind {
            k if is_string(k) => {
                cast(column, &DataType::Utf8).map(|a| Self::Strings(a.as_string().clone()))
            }
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
                cast(column, &DataType::Binary).map(|a| Self::Bytes(a.as_binary().clone()))
            }
            _ => return Err(kind.clone()),
        };
        converted.map_err(|_| kind.clone())
    }

    /// Row `i`'s text: `None` when null, an error when its bytes are not UTF-8.
    fn value(&self, i: usize) -> Result<Option<&str>, Utf8Error> {
        match self {
            Self::Strings(a) => Ok(a.is_valid(i).then(|| a.value(i))),
            Self::Bytes(a) => a
                .is_valid(i)
                .then(|| std::str::from_utf8(a.value(i)))
                .transpose(),
        }
    }

    /// Row `i`'s bytes, as stored.
    fn bytes(&self, i: usize) -> &[u8] {
        match self {
            Self::Strings(a) => a.value(i).as_bytes(),
            Self::Bytes(a) => a.value(i),
        }
    }
}

/// Whether `kind` holds strings: an Arrow string type, or a dictionary of one.
fn is_string(kind: &DataType) -> bool {
    match kind {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => is_string(values),
        _ => false,
    }
}

/// One batch's text, id and meta columns, ready for row access.
struct Columns {
    text: TextColumn,
    id: Option<Arc<dyn Array>>,
    /// The other columns of every row as JSON objects, one a line.
    meta_json: String,
    /// Where each row's object sits in `meta_json`.
    meta_lines: Vec<Range<usize>>,
}

impl Columns {
    fn of(
        batch: &RecordBatch,
        text_field: &str,
        id_field: Option<&str>,
    ) -> Result<Self, (&'static str, String)> {
        let text = batch.column_by_name(text_field).ok_or_else(|| {
            (
                reason::MISSING_TEXT_FIELD,
                format!("no column `{text_field}`"),
            )
        })?;
        let text = TextColumn::of(text).map_err(|kind| {
            (
                reason::TEXT_NOT_STRING,
                format!("column `{text_field}` is {kind}, not a string"),
            )
        })?;
        let id = match id_field {
            None => None,
            Some(f) => {
                let c = batch
                    .column_by_name(f)
                    .ok_or_else(|| (reason::MISSING_ID_FIELD, format!("no column `{f}`")))?;
                Some(cast(c, &DataType::Utf8).map_err(|e| (reason::READ_ERROR, e.to_string()))?)
            }
        };
        let meta_json =
            meta_json(batch, text_field).map_err(|e| (reason::READ_ERROR, e.to_string()))?;
        let mut meta_lines = Vec::with_capacity(batch.num_rows());
        let mut start = 0;
        for line in meta_json.split_inclusive('\n') {
            meta_lines.push(start..start + line.trim_end().len());
            start += line.len();
        }
        Ok(Self {
            text,
            id,
            meta_json,
            meta_lines,
        })
    }

    fn meta(&self, row: usize) -> &str {
        self.meta_lines
            .get(row)
            .map_or("{}", |r| &self.meta_json[r.clone()])
    }
}

/// Every column but `text_field`, in name order, as one JSON object per row and line.
fn meta_json(batch: &RecordBatch, text_field: &str) -> Result<String, arrow::error::ArrowError> {
    let schema = batch.schema();
    let mut order: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| schema.field(i).name() != text_field)
        .collect();
    order.sort_by(|&a, &b| schema.field(a).name().cmp(schema.field(b).name()));
    if order.is_empty() {
        return Ok("{}\n".repeat(batch.num_rows()));
    }
    let projected = batch.project(&order)?;
    let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
    writer.write(&projected)?;
    writer.finish()?;
    String::from_utf8(writer.into_inner())
        .map_err(|e| arrow::error::ArrowError::JsonError(e.to_string()))
}
