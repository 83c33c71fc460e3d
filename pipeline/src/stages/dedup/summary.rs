//! A batch's first-pass summary: what a dedup stage's `observe` keeps of each document (its id
//! and provenance, its fingerprint and, under `verify`, its shingle set), without the text. Tasks
//! of a partitioned run write these for their units; the preparing process observes them in unit
//! order, as it would the texts, without computing a fingerprint again.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, FixedSizeBinaryArray, ListArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, UInt64Type};
use arrow::error::ArrowError;

use super::super::string_column;
use crate::schema::col;
use crate::stage::StageError;

/// The fingerprint column: `4 × width` bytes (little-endian words), null for a text without one.
const FINGERPRINT: &str = "fingerprint";
/// The shingle-set column, present under `verify`.
const SHINGLES: &str = "shingles";
/// The provenance columns carried over from the documents.
const CARRIED: [&str; 4] = [col::ID, col::SOURCE, col::URI, col::LOCATOR];

/// The summary of `batch`, given its documents' fingerprints (each `width` words) and, under
/// `verify`, their shingle sets.
pub(super) fn build(
    batch: &RecordBatch,
    fingerprints: &[Option<Vec<u32>>],
    sets: Option<&[Vec<u64>]>,
    width: usize,
) -> Result<RecordBatch, StageError> {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for name in CARRIED {
        let column = string_column(batch, name, "dedup summary")?;
        fields.push(Field::new(name, DataType::Utf8, false));
        columns.push(Arc::new(column.clone()));
    }
    let bytes = |f: &Vec<u32>| f.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>();
    let size = i32::try_from(4 * width)
        .map_err(|_| ArrowError::InvalidArgumentError(width.to_string()))?;
    let prints = FixedSizeBinaryArray::try_from_sparse_iter_with_size(
        fingerprints.iter().map(|f| f.as_ref().map(bytes)),
        size,
    )?;
    fields.push(Field::new(
        FINGERPRINT,
        DataType::FixedSizeBinary(size),
        true,
    ));
    columns.push(Arc::new(prints));
    if let Some(sets) = sets {
        let list = ListArray::from_iter_primitive::<UInt64Type, _, _>(
            sets.iter().map(|s| Some(s.iter().copied().map(Some))),
        );
        fields.push(Field::new(SHINGLES, list.data_type().clone(), true));
        columns.push(Arc::new(list));
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// A summary batch's columns, for reading it back.
pub(super) struct Summary<'a> {
    /// Document ids (hex).
    pub ids: &'a StringArray,
    /// Source names.
    pub sources: &'a StringArray,
    /// File URIs.
    pub uris: &'a StringArray,
    /// Lines, rows or paths.
    pub locators: &'a StringArray,
    fingerprints: &'a FixedSizeBinaryArray,
    sets: Option<&'a ListArray>,
}

impl<'a> Summary<'a> {
    /// The columns of `batch`, which [`build`] made for a stage fingerprinting `width` words
    /// (and keeping shingle sets when `verify`); an error names what does not fit.
    pub fn of(
        batch: &'a RecordBatch,
        width: usize,
        verify: bool,
        stage: &str,
    ) -> Result<Self, StageError> {
        let bad = |what: &str| StageError::Failed {
            stage: stage.to_string(),
            message: format!("a first-pass summary {what}"),
        };
        let fingerprints = batch
            .column_by_name(FINGERPRINT)
            .and_then(|c| c.as_any().downcast_ref::<FixedSizeBinaryArray>())
            .filter(|c| c.value_length() as usize == 4 * width)
            .ok_or_else(|| bad(&format!("has no fingerprint column of {width} words")))?;
        let sets = batch
            .column_by_name(SHINGLES)
            .and_then(|c| c.as_any().downcast_ref::<ListArray>());
        if sets.is_some() != verify {
            return Err(bad("was made with another `verify` setting"));
        }
        Ok(Self {
            ids: string_column(batch, col::ID, stage)?,
            sources: string_column(batch, col::SOURCE, stage)?,
            uris: string_column(batch, col::URI, stage)?,
            locators: string_column(batch, col::LOCATOR, stage)?,
            fingerprints,
            sets,
        })
    }

    /// Documents summarized.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// The fingerprint of row `i`, if its text had one.
    pub fn fingerprint(&self, i: usize) -> Option<Vec<u32>> {
        self.fingerprints.is_valid(i).then(|| {
            let bytes = self.fingerprints.value(i);
            let words = bytes.chunks_exact(4);
            words
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                .collect()
        })
    }

    /// The shingle set of row `i`, under `verify`.
    pub fn set(&self, i: usize) -> Option<Vec<u64>> {
        let sets = self.sets?;
        let values = sets.value(i);
        let values = values
            .as_any()
            .downcast_ref::<arrow::array::UInt64Array>()?;
        Some(values.values().to_vec())
    }
}
