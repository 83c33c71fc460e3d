//! The lineage rows one stage call produces: `rejects`, `edits`, `decisions`, and the
//! `documents` row of every ingested document.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, StringArray, UInt32Array, UInt64Array};
use arrow::compute::take_record_batch;
use arrow::record_batch::RecordBatch;

use crate::schema::{self, col};
use crate::stage::{DuplicateOf, Edit, Rejection, StageError, StageOutput};
use crate::stages::{string_array, string_column};

/// The dropped rows of `batch`, with the decision that dropped each.
pub(super) fn rejects_batch(
    stage: &str,
    batch: &RecordBatch,
    rejected: &[Rejection],
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let rows = UInt32Array::from_iter_values(rejected.iter().map(|r| r.row as u32));
    let docs = take_record_batch(batch, &rows)?;
    let mut columns = docs.columns().to_vec();
    columns.push(Arc::new(StringArray::from_iter_values(
        rejected.iter().map(|_| stage),
    )) as ArrayRef);
    columns.push(Arc::new(StringArray::from_iter_values(
        rejected.iter().map(|r| r.verdict.rule),
    )));
    columns.push(Arc::new(Float64Array::from_iter_values(
        rejected.iter().map(|r| r.verdict.value),
    )));
    columns.push(Arc::new(Float64Array::from_iter_values(
        rejected.iter().map(|r| r.verdict.threshold),
    )));
    let duplicate = |f: fn(&DuplicateOf) -> &str| {
        let values = rejected.iter().map(|r| r.duplicate.as_ref().map(f));
        Arc::new(values.collect::<StringArray>()) as ArrayRef
    };
    columns.push(duplicate(|d| &d.survivor));
    columns.push(duplicate(|d| &d.cluster));
    RecordBatch::try_new(schema::rejects(), columns)
}

/// The `edits` rows of one batch: which documents of `batch` a stage changed, and how.
pub(super) fn edits_batch(
    stage: &str,
    batch: &RecordBatch,
    edits: &[Edit],
) -> Result<RecordBatch, StageError> {
    let ids = string_column(batch, col::ID, stage)?;
    let sources = string_column(batch, col::SOURCE, stage)?;
    let columns = vec![
        string_array(edits, |e| ids.value(e.row)),
        string_array(edits, |e| sources.value(e.row)),
        string_array(edits, |_| stage),
        string_array(edits, |e| e.rule),
        Arc::new(UInt64Array::from_iter_values(
            edits.iter().map(|e| e.bytes_before),
        )),
        Arc::new(UInt64Array::from_iter_values(
            edits.iter().map(|e| e.bytes_after),
        )),
        string_array(edits, |e| &e.detail),
    ];
    Ok(RecordBatch::try_new(schema::edits(), columns)?)
}

/// The `documents` rows of freshly ingested documents: their columns without the text, and the
/// text's size.
pub(super) fn documents_batch(batch: &RecordBatch) -> Result<RecordBatch, StageError> {
    let texts = string_column(batch, col::TEXT, "ingest")?;
    let target = schema::lineage_documents();
    let mut columns = Vec::with_capacity(target.fields().len());
    for field in target.fields().iter().take(target.fields().len() - 1) {
        columns.push(batch.column_by_name(field.name()).cloned().ok_or_else(|| {
            StageError::Internal {
                stage: "ingest".into(),
                message: format!("batch has no `{}` column", field.name()),
            }
        })?);
    }
    columns.push(Arc::new(UInt64Array::from_iter_values(
        (0..texts.len()).map(|i| texts.value(i).len() as u64),
    )));
    Ok(RecordBatch::try_new(target, columns)?)
}

/// The `decisions` rows of one stage call: a row for every document of `input`, kept (with its
/// edit, if any) or dropped (with the verdict), and its text size before and after.
pub(super) fn decisions_batch(
    stage: &str,
    stage_index: usize,
    input: &RecordBatch,
    out: &StageOutput,
) -> Result<RecordBatch, StageError> {
    let ids = string_column(input, col::ID, stage)?;
    let sources = string_column(input, col::SOURCE, stage)?;
    let texts_in = string_column(input, col::TEXT, stage)?;
    let texts_out = string_column(&out.kept, col::TEXT, stage)?;
    let n = input.num_rows();
    let mut rejected = out.rejected.iter().peekable();
    let mut edits = out.edits.iter().peekable();
    let mut kept_row = 0;
    let (mut decision, mut rule, mut value, mut threshold) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut duplicate_of, mut cluster, mut after) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for row in 0..n {
        let mut edit_rule = None;
        while let Some(e) = edits.next_if(|e| e.row <= row) {
            edit_rule = (e.row == row).then_some(e.rule).or(edit_rule);
        }
        if let Some(r) = rejected.next_if(|r| r.row == row) {
            decision.push("dropped");
            rule.push(Some(r.verdict.rule));
            value.push(Some(r.verdict.value));
            threshold.push(Some(r.verdict.threshold));
            duplicate_of.push(r.duplicate.as_ref().map(|d| d.survivor.as_str()));
            cluster.push(r.duplicate.as_ref().map(|d| d.cluster.as_str()));
            after.push(0);
        } else {
            decision.push("kept");
            rule.push(edit_rule);
            value.push(None);
            threshold.push(None);
            duplicate_of.push(None);
            cluster.push(None);
            after.push(texts_out.value(kept_row).len() as u64);
            kept_row += 1;
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(ids.clone()),
        Arc::new(sources.clone()),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(stage, n))),
        Arc::new(UInt32Array::from_iter_values(std::iter::repeat_n(
            stage_index as u32,
            n,
        ))),
        Arc::new(StringArray::from_iter_values(decision)),
        Arc::new(StringArray::from(rule)),
        Arc::new(Float64Array::from(value)),
        Arc::new(Float64Array::from(threshold)),
        Arc::new(StringArray::from(duplicate_of)),
        Arc::new(StringArray::from(cluster)),
        Arc::new(UInt64Array::from_iter_values(
            (0..n).map(|i| texts_in.value(i).len() as u64),
        )),
        Arc::new(UInt64Array::from(after)),
    ];
    Ok(RecordBatch::try_new(schema::decisions(), columns)?)
}
