//! The dedup index a run leaves for later runs (`against`): every document kept by the stage,
//! plus the documents of the index it was itself run against, with their fingerprints.
//! `dedup_index/<stage>.parquet` holds `id`, `source`, `method` (the settings the fingerprints
//! depend on; a stage only accepts an index made with its own) and `fingerprint`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, ListBuilder, RecordBatch, StringArray, UInt32Builder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt32Type};

use super::{Decision, Method, Observed, Origin};
use crate::output::DEDUP_INDEX;
use crate::output::part::{PartInfo, PartWriter, read_part};

fn index_schema() -> SchemaRef {
    let utf8 = |n: &str| Field::new(n, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        utf8("id"),
        utf8("source"),
        utf8("method"),
        Field::new(
            "fingerprint",
            DataType::List(Arc::new(Field::new("item", DataType::UInt32, true))),
            false,
        ),
    ]))
}

/// Writes `dedup_index/<stage>.parquet`: every document not dropped that has a fingerprint.
pub(super) fn write(
    out: &Path,
    stage: &str,
    method: &Method,
    st: &Observed,
    decisions: &HashMap<u128, Decision>,
) -> Result<PartInfo, String> {
    let mut part = PartWriter::create(
        out,
        &format!("{DEDUP_INDEX}/{stage}.parquet"),
        index_schema(),
    )
    .map_err(|e| e.to_string())?;
    let describe = method.describe();
    let docs = &st.docs;
    let ords: Vec<u32> = (0..docs.len() as u32)
        .filter(|&o| !decisions.contains_key(&docs.id(o)))
        .collect();
    for chunk in ords.chunks(16 * 1024) {
        let mut ids = Vec::with_capacity(chunk.len());
        let mut sources = Vec::with_capacity(chunk.len());
        let mut fingerprints = ListBuilder::new(UInt32Builder::new());
        for &o in chunk {
            let fp = st.fingerprints.get(o)?;
            if fp.iter().all(|&v| v == 0) {
                continue; // no fingerprint: a text without shingles
            }
            ids.push(format!("{:032x}", docs.id(o)));
            sources.push(docs.source(o));
            fingerprints.values().append_slice(&fp);
            fingerprints.append(true);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(sources.clone())),
            Arc::new(StringArray::from_iter_values(
                sources.iter().map(|_| describe.as_str()),
            )),
            Arc::new(fingerprints.finish()),
        ];
        let batch = RecordBatch::try_new(index_schema(), columns).map_err(|e| e.to_string())?;
        part.write(&batch).map_err(|e| e.to_string())?;
    }
    part.finish().map_err(|e| e.to_string())
}

/// Adds the documents of `earlier`'s index for `stage` to `st`, after this run's documents.
pub(super) fn load(
    earlier: &Path,
    stage: &str,
    method: &Method,
    st: &mut Observed,
) -> Result<(), String> {
    let path = earlier.join(DEDUP_INDEX).join(format!("{stage}.parquet"));
    if !path.is_file() {
        let found: Vec<String> = std::fs::read_dir(earlier.join(DEDUP_INDEX))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        return Err(format!(
            "`against`: no index for stage `{stage}` at {} (indexes there: {})",
            path.display(),
            if found.is_empty() {
                "none".to_string()
            } else {
                found.join(", ")
            }
        ));
    }
    let describe = method.describe();
    let reader = read_part(&path, 8192).map_err(|e| e.to_string())?;
    for batch in reader {
        let batch = batch.map_err(|e| format!("reading {}: {e}", path.display()))?;
        let bad = || format!("{} is not a dedup index", path.display());
        let ids = batch
            .column_by_name("id")
            .ok_or_else(bad)?
            .as_string::<i32>();
        let sources = batch
            .column_by_name("source")
            .ok_or_else(bad)?
            .as_string::<i32>();
        let methods = batch
            .column_by_name("method")
            .ok_or_else(bad)?
            .as_string::<i32>();
        let fps = batch
            .column_by_name("fingerprint")
            .ok_or_else(bad)?
            .as_list::<i32>();
        for i in 0..batch.num_rows() {
            if methods.value(i) != describe {
                return Err(format!(
                    "`against`: {} was built with `{}`, this stage uses `{describe}`",
                    path.display(),
                    methods.value(i)
                ));
            }
            let id = u128::from_str_radix(ids.value(i), 16).map_err(|_| bad())?;
            let fp = fps.value(i);
            let fp: Vec<u32> = fp.as_primitive::<UInt32Type>().values().to_vec();
            let origin = Origin {
                id,
                source: sources.value(i),
                uri: "",
                position: 0,
            };
            st.add(&origin, Some(&fp), method)?;
        }
    }
    Ok(())
}
