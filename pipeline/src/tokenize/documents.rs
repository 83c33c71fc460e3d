//! Reading a finished run's documents back in a fixed order: the parts of one dataset sorted by
//! name, rows in file order, so every reader of the same output sees the same sequence.

use std::path::{Path, PathBuf};

use arrow::array::{Array, StringArray};
use arrow::record_batch::RecordBatch;

use super::TokenizeError;
use crate::output::part::{read_part, read_part_columns};
use crate::schema::col;
use crate::stages::string_column;

/// The Parquet parts of `dataset` in the output folder `out`, sorted by name.
pub fn parts(out: &Path, dataset: &str) -> Result<Vec<PathBuf>, TokenizeError> {
    let dir = out.join(dataset);
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        TokenizeError::Input(format!(
            "cannot list {}: {e} (is `{dataset}` a dataset the run writes?)",
            dir.display()
        ))
    })?;
    let mut parts: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    parts.sort();
    Ok(parts)
}

/// A part's size in bytes (0 when it cannot be read: the progress bar is all it feeds).
pub fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// One batch of documents: ids, sources and texts.
pub struct DocColumns<'a> {
    /// Document ids.
    pub ids: &'a StringArray,
    /// Source names.
    pub sources: &'a StringArray,
    /// Texts.
    pub texts: &'a StringArray,
}

impl<'a> DocColumns<'a> {
    fn of(batch: &'a RecordBatch) -> Result<Self, TokenizeError> {
        let column = |name| {
            string_column(batch, name, "tokenize").map_err(|e| TokenizeError::Input(e.to_string()))
        };
        Ok(Self {
            ids: column(col::ID)?,
            sources: column(col::SOURCE)?,
            texts: column(col::TEXT)?,
        })
    }
}

/// Calls `f` with the ids and sources of every batch of `parts`, in order, reading only those
/// two columns.
pub fn for_each_id(
    parts: &[PathBuf],
    batch_size: usize,
    mut f: impl FnMut(&StringArray, &StringArray) -> Result<(), TokenizeError>,
) -> Result<(), TokenizeError> {
    let columns = [col::ID, col::SOURCE];
    for_each_part_batch(parts, batch_size, Some(&columns), |part, batch| {
        let column = |name| {
            string_column(batch, name, "tokenize")
                .map_err(|e| TokenizeError::Input(format!("{}: {e}", part.display())))
        };
        f(column(col::ID)?, column(col::SOURCE)?)
    })
}

/// Calls `f` with every batch of `parts`, in order.
pub fn for_each_batch(
    parts: &[PathBuf],
    batch_size: usize,
    mut f: impl FnMut(DocColumns<'_>) -> Result<(), TokenizeError>,
) -> Result<(), TokenizeError> {
    for_each_part_batch(parts, batch_size, None, |_, batch| {
        f(DocColumns::of(batch)?)
    })
}

/// Calls `f` with each part and each of its batches (only `columns` when named), in order; a
/// part that cannot be read is an error naming it.
fn for_each_part_batch(
    parts: &[PathBuf],
    batch_size: usize,
    columns: Option<&[&str]>,
    mut f: impl FnMut(&Path, &RecordBatch) -> Result<(), TokenizeError>,
) -> Result<(), TokenizeError> {
    for part in parts {
        let input =
            |e: &dyn std::fmt::Display| TokenizeError::Input(format!("{}: {e}", part.display()));
        for batch in read_part_columns(part, batch_size, columns).map_err(|e| input(&e))? {
            f(part, &batch.map_err(|e| input(&e))?)?;
        }
    }
    Ok(())
}

/// The texts of `parts` in order as one stream (what tokenizer training consumes), stopping
/// after `max_bytes` of text when set. A read error ends the stream and is kept in `error`.
pub struct TextStream {
    parts: std::vec::IntoIter<PathBuf>,
    reader: Option<parquet::arrow::arrow_reader::ParquetRecordBatchReader>,
    batch: Option<StringArray>,
    row: usize,
    bytes: u64,
    max_bytes: Option<u64>,
    /// The error that ended the stream early, if any.
    pub error: std::sync::Arc<std::sync::Mutex<Option<TokenizeError>>>,
}

impl TextStream {
    /// A stream over `parts`.
    pub fn new(parts: Vec<PathBuf>, max_bytes: Option<u64>) -> Self {
        Self {
            parts: parts.into_iter(),
            reader: None,
            batch: None,
            row: 0,
            bytes: 0,
            max_bytes,
            error: Default::default(),
        }
    }

    fn fail(&mut self, e: TokenizeError) -> Option<String> {
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        self.parts = Vec::new().into_iter();
        self.reader = None;
        self.batch = None;
        None
    }
}

impl Iterator for TextStream {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if self.max_bytes.is_some_and(|m| self.bytes >= m) {
            return None;
        }
        loop {
            if let Some(batch) = &self.batch
                && self.row < batch.len()
            {
                let text = batch.value(self.row).to_string();
                self.row += 1;
                self.bytes += text.len() as u64;
                return Some(text);
            }
            self.batch = None;
            if let Some(reader) = &mut self.reader {
                match reader.next() {
                    Some(Ok(batch)) => match DocColumns::of(&batch) {
                        Ok(cols) => {
                            self.batch = Some(cols.texts.clone());
                            self.row = 0;
                        }
                        Err(e) => return self.fail(e),
                    },
                    Some(Err(e)) => return self.fail(TokenizeError::Input(e.to_string())),
                    None => self.reader = None,
                }
                continue;
            }
            let part = self.parts.next()?;
            match read_part(&part, 1024) {
                Ok(reader) => self.reader = Some(reader),
                Err(e) => {
                    return self.fail(TokenizeError::Input(format!("{}: {e}", part.display())));
                }
            }
        }
    }
}
