//! One unit through the stage chain: a reader thread, one thread per stage, and the writer,
//! joined by bounded channels so a slow step holds the others back instead of buffering.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

use arrow::record_batch::RecordBatch;
use tokio::runtime::Handle;

use super::RunError;
use super::records::{decisions_batch, documents_batch, edits_batch, rejects_batch};
use crate::config::RunConfig;
use crate::ingest::batch::quarantine_batch;
use crate::ingest::emit::Ingested;
use crate::ingest::{
    self, Emitter, IngestCounts, InputFingerprint, Quarantined, Scope, Stop, Unit,
};
use crate::output::codec::Codec;
use crate::output::manifest::{StageCounts, UnitRecord};
use crate::output::part::{PartWriter, read_part};
use crate::output::{DECISIONS, DOCUMENTS, EDITS, QUARANTINE, REJECTS};
use crate::progress::Progress;
use crate::schema;
use crate::stage::{Stage, StageError};

/// What every unit of one segment shares.
pub(super) struct UnitContext<'a> {
    pub out: &'a Path,
    /// The segment: its index, the index of its first stage, and its stages.
    pub segment: usize,
    pub first_stage: usize,
    pub stages: &'a [Arc<dyn Stage>],
    /// Where the segment's documents come from: the sources, or the parts of a dataset.
    pub input: Option<&'a str>,
    /// Dataset names to write, and the snapshot each is (0 = as ingested, k = after stage k).
    pub datasets: &'a [(String, usize)],
    /// Codec of the datasets' parts.
    pub codec: Codec,
    pub run: &'a RunConfig,
    pub config_hash: &'a str,
    pub handle: &'a Handle,
    pub progress: &'a Progress,
}

/// A batch on its way down the chain, with everything decided about it so far.
struct Flow {
    docs: RecordBatch,
    quarantine: Vec<Quarantined>,
    rejects: Vec<RecordBatch>,
    edits: Vec<RecordBatch>,
    /// `documents` rows (only of freshly ingested batches) and `decisions` rows.
    documents: Option<RecordBatch>,
    decisions: Vec<RecordBatch>,
    /// Rows of stages' own tables, by table name.
    tables: Vec<(&'static str, RecordBatch)>,
    snapshots: Vec<(usize, RecordBatch)>,
}

impl From<Ingested> for Flow {
    fn from(i: Ingested) -> Self {
        Flow {
            docs: i.docs,
            quarantine: i.quarantine,
            rejects: Vec::new(),
            edits: Vec::new(),
            documents: None,
            decisions: Vec::new(),
            tables: Vec::new(),
            snapshots: Vec::new(),
        }
    }
}

/// Runs `unit` and returns its record once its parts are in place.
pub(super) fn run_unit(unit: &Unit, ctx: &UnitContext) -> Result<UnitRecord, RunError> {
    let depth = ctx.run.channel_depth;
    let (tx, rx) = sync_channel::<Ingested>(depth);
    thread::scope(|s| {
        let reader = s.spawn(move || match ctx.input {
            None => {
                let mut em = Emitter::new(&unit.source.name, tx, ctx.run);
                let fingerprints =
                    ingest::read_unit(unit, &mut em, ctx.handle, &ctx.progress.bytes)?;
                Ok::<_, Stop>((em.finish()?, fingerprints))
            }
            Some(dataset) => read_parts(dataset, unit, ctx, tx),
        });
        let captures_ingest =
            ctx.input.is_none() && ctx.datasets.iter().any(|(_, snap)| *snap == 0);
        let (mut stage_threads, written) = match ctx.stages.split_first() {
            None => (Vec::new(), write_unit(unit, ctx, rx, captures_ingest)),
            Some((first, rest)) => {
                let (tx1, mut next_rx) = sync_channel::<Flow>(depth);
                let first_out = ctx.first_stage + 1;
                let mut handles = vec![s.spawn(move || {
                    stage_loop(first.as_ref(), first_out, captures_ingest, ctx, rx, tx1)
                })];
                for (i, stage) in rest.iter().enumerate() {
                    let (tx_i, rx_i) = sync_channel::<Flow>(depth);
                    let input = std::mem::replace(&mut next_rx, rx_i);
                    handles.push(s.spawn(move || {
                        stage_loop(stage.as_ref(), first_out + i + 1, false, ctx, input, tx_i)
                    }));
                }
                (handles, write_unit(unit, ctx, next_rx, false))
            }
        };
        let read = reader.join().map_err(|_| RunError::Panic("reader"))?;
        let mut stages = Vec::new();
        for handle in stage_threads.drain(..) {
            stages.push(handle.join().map_err(|_| RunError::Panic("stage"))?);
        }
        finish_unit(unit, ctx, read, stages, written)
    })
}

/// Joins the results of a unit's threads into its record, checking the accounting.
fn finish_unit(
    unit: &Unit,
    ctx: &UnitContext,
    read: Result<(IngestCounts, Vec<InputFingerprint>), Stop>,
    stages: Vec<Result<StageCounts, RunError>>,
    written: Result<Written, RunError>,
) -> Result<UnitRecord, RunError> {
    let (ingest, inputs) = match read {
        Err(Stop::Strict(q)) => return Err(RunError::Strict(q.describe())),
        Err(Stop::Closed) => {
            // The consumer failed first; its error explains why.
            stages.into_iter().collect::<Result<Vec<_>, _>>()?;
            written?;
            return Err(RunError::Accounting(format!(
                "unit {}: its input stopped early (see the error above)",
                unit.id
            )));
        }
        Ok(r) => r,
    };
    let stages: Vec<StageCounts> = stages.into_iter().collect::<Result<_, _>>()?;
    let written = written?;
    let docs_in = stages.first().map_or(written.final_docs, |s| s.input);
    if docs_in != ingest.documents || written.quarantined_records != ingest.quarantined_records {
        return Err(RunError::Accounting(format!(
            "unit {}: ingest counted {} documents and {} quarantined records, downstream saw {docs_in} and {}",
            unit.id, ingest.documents, ingest.quarantined_records, written.quarantined_records
        )));
    }
    for pair in stages.windows(2) {
        if pair[0].kept != pair[1].input {
            return Err(RunError::Accounting(format!(
                "unit {}: stage {} kept {} but stage {} got {}",
                unit.id, pair[0].name, pair[0].kept, pair[1].name, pair[1].input
            )));
        }
    }
    // Later segments re-read documents ingest already counted: keep the counts of segment 0 only.
    let ingest = if ctx.input.is_none() {
        ingest
    } else {
        IngestCounts::default()
    };
    let record = UnitRecord {
        unit: unit.id.clone(),
        source: unit.source.name.clone(),
        segment: ctx.segment,
        first_stage: ctx.first_stage,
        config_hash: ctx.config_hash.to_string(),
        inputs,
        ingest,
        stages,
        parts: written.parts,
    };
    record.save(ctx.out)?;
    Ok(record)
}

/// The one naming rule for parts, relative to the output folder: `<dir>/<unit>.parquet`.
/// Datasets hold one part per unit (`segment = None`); rejects and quarantine one per unit and
/// segment, suffixed `.s<segment>` after the first.
fn part_name(dir: &str, unit: &Unit, segment: Option<usize>) -> String {
    match segment {
        Some(s) if s > 0 => format!("{dir}/{}.s{s}.parquet", unit.id),
        _ => format!("{dir}/{}.parquet", unit.id),
    }
}

/// The path of `unit`'s part of `dataset`.
pub(super) fn part_path(out: &Path, dataset: &str, unit: &Unit) -> std::path::PathBuf {
    out.join(part_name(dataset, unit, None))
}

/// Reads the unit's part of `dataset` (written by the previous segment) into the chain.
fn read_parts(
    dataset: &str,
    unit: &Unit,
    ctx: &UnitContext,
    tx: SyncSender<Ingested>,
) -> Result<(IngestCounts, Vec<InputFingerprint>), Stop> {
    let path = part_path(ctx.out, dataset, unit);
    let mut counts = IngestCounts::default();
    // The part was verified against its unit record; failing to read it now stops the unit,
    // and the downstream accounting check reports the shortfall.
    let failed = |e: &dyn std::fmt::Display| {
        tracing::error!(part = %path.display(), "Cannot read a part written by the previous segment: {e}");
        Stop::Closed
    };
    let reader = read_part(&path, ctx.run.batch_size).map_err(|e| failed(&e))?;
    for batch in reader {
        let docs = batch.map_err(|e| failed(&e))?;
        counts.records += docs.num_rows() as u64;
        counts.documents += docs.num_rows() as u64;
        tx.send(Ingested {
            docs,
            quarantine: Vec::new(),
        })
        .map_err(|_| Stop::Closed)?;
    }
    let uri = format!("{dataset}/{}.parquet", unit.id);
    Ok((
        counts,
        vec![InputFingerprint {
            uri,
            bytes: 0,
            xxh3: None,
        }],
    ))
}

/// Runs one stage over every batch from `rx`; `snapshot` is the index of its output.
fn stage_loop<I: Into<Flow>>(
    stage: &dyn Stage,
    snapshot: usize,
    capture_input: bool,
    ctx: &UnitContext,
    rx: Receiver<I>,
    tx: SyncSender<Flow>,
) -> Result<StageCounts, RunError> {
    let capture_output = ctx.datasets.iter().any(|(_, snap)| *snap == snapshot);
    // The segment's first stage sees freshly ingested documents only in the first segment.
    let ingested = ctx.input.is_none() && snapshot == ctx.first_stage + 1;
    let mut counts = StageCounts {
        name: stage.name().to_string(),
        ..StageCounts::default()
    };
    let _span = tracing::info_span!("stage", stage = stage.name()).entered();
    for item in rx {
        let mut flow: Flow = item.into();
        if capture_input {
            flow.snapshots.push((0, flow.docs.clone()));
        }
        if ingested && flow.documents.is_none() {
            flow.documents = Some(documents_batch(&flow.docs)?);
        }
        let out = stage.process(&flow.docs)?;
        let (rows_in, kept, dropped) = (
            flow.docs.num_rows() as u64,
            out.kept.num_rows() as u64,
            out.rejected.len() as u64,
        );
        if rows_in != kept + dropped {
            let message = format!("{rows_in} documents in, {kept} kept + {dropped} dropped");
            return Err(StageError::Internal {
                stage: stage.name().to_string(),
                message,
            }
            .into());
        }
        counts.add(&StageCounts {
            name: String::new(),
            input: rows_in,
            kept,
            dropped,
        });
        flow.decisions.push(decisions_batch(
            stage.name(),
            snapshot - 1,
            &flow.docs,
            &out,
        )?);
        if !out.rejected.is_empty() {
            flow.rejects
                .push(rejects_batch(stage.name(), &flow.docs, &out.rejected)?);
        }
        if !out.edits.is_empty() {
            flow.edits
                .push(edits_batch(stage.name(), &flow.docs, &out.edits)?);
        }
        flow.tables.extend(out.tables);
        if capture_output {
            flow.snapshots.push((snapshot, out.kept.clone()));
        }
        flow.docs = out.kept;
        if tx.send(flow).is_err() {
            break;
        }
    }
    Ok(counts)
}

/// What the writer saw.
struct Written {
    parts: Vec<crate::output::part::PartInfo>,
    final_docs: u64,
    quarantined_records: u64,
}

/// Writes every flow of the unit into its parts.
fn write_unit<I: Into<Flow>>(
    unit: &Unit,
    ctx: &UnitContext,
    rx: Receiver<I>,
    capture_input: bool,
) -> Result<Written, RunError> {
    let part = |dir: &str, segment, schema| {
        PartWriter::create(ctx.out, &part_name(dir, unit, segment), schema)
    };
    let mut datasets = ctx
        .datasets
        .iter()
        .map(|(name, _)| {
            let relative = part_name(name, unit, None);
            PartWriter::create_with(ctx.out, &relative, schema::documents(), ctx.codec)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut rejects = part(REJECTS, Some(ctx.segment), schema::rejects())?;
    let mut edits = part(EDITS, Some(ctx.segment), schema::edits())?;
    let mut decisions = part(DECISIONS, Some(ctx.segment), schema::decisions())?;
    let mut documents = match ctx.input {
        None => Some(part(DOCUMENTS, None, schema::lineage_documents())?),
        Some(_) => None,
    };
    // Stages' own tables get a part when they first have rows.
    let mut tables: BTreeMap<&'static str, PartWriter> = BTreeMap::new();
    let mut quarantine = part(QUARANTINE, Some(ctx.segment), schema::quarantine())?;
    let (mut final_docs, mut quarantined_records) = (0u64, 0u64);
    for item in rx {
        let mut flow: Flow = item.into();
        if capture_input {
            flow.snapshots.push((0, flow.docs.clone()));
        }
        final_docs += flow.docs.num_rows() as u64;
        if let Some(writer) = documents.as_mut() {
            // Without stages, the writer sees the ingested batches themselves.
            match &flow.documents {
                Some(batch) => writer.write(batch)?,
                None => writer.write(&documents_batch(&flow.docs)?)?,
            }
        }
        for batch in &flow.decisions {
            decisions.write(batch)?;
        }
        let dropped: usize = flow.rejects.iter().map(RecordBatch::num_rows).sum();
        ctx.progress
            .docs
            .fetch_add((flow.docs.num_rows() + dropped) as u64, Ordering::Relaxed);
        quarantined_records += flow
            .quarantine
            .iter()
            .filter(|q| q.scope == Scope::Record)
            .count() as u64;
        if !flow.quarantine.is_empty() {
            quarantine.write(&quarantine_batch(&flow.quarantine)?)?;
        }
        for batch in &flow.rejects {
            rejects.write(batch)?;
        }
        for batch in &flow.edits {
            edits.write(batch)?;
        }
        for (name, batch) in &flow.tables {
            let writer = match tables.entry(name) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(part(name, Some(ctx.segment), batch.schema())?),
            };
            writer.write(batch)?;
        }
        for (snapshot, batch) in &flow.snapshots {
            for (writer, (_, snap)) in datasets.iter_mut().zip(ctx.datasets) {
                if snap == snapshot {
                    writer.write(batch)?;
                }
            }
        }
    }
    let mut parts = Vec::new();
    let all = datasets
        .into_iter()
        .chain([rejects, edits, decisions, quarantine])
        .chain(documents);
    for writer in all.chain(tables.into_values()) {
        parts.push(writer.finish()?);
    }
    Ok(Written {
        parts,
        final_docs,
        quarantined_records,
    })
}
