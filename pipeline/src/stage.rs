//! The stage contract: what every step of the DAG implements.
//!
//! A stage gets one Arrow batch of documents (see [`crate::schema::documents`]) and returns the
//! documents it keeps, possibly edited, and a [`Rejection`] for each one it drops, naming the
//! rule, the measured value and the threshold. It never drops a document silently: the executor
//! checks that rows in = rows kept + rows rejected for every batch.
//!
//! Stages are pure over their input batch, so they run on any thread and in any number of
//! partitions (task i of N over input files) with the same result. Stages that need a global view
//! of the corpus first (deduplication) report [`Passes::Two`]: the executor then gives them every
//! batch through [`Stage::observe`] before the first [`Stage::process`] call, or, in a task of a
//! partitioned run, let it [`Stage::restore`] what an earlier preparation decided. Their first
//! pass has a partitioned form too: tasks [`Stage::summarize`] their units' batches, and the
//! preparing process observes those summaries.

use std::path::Path;

use arrow::array::BooleanArray;
use arrow::compute::filter_record_batch;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use filters::Verdict;
use tokio::runtime::Handle;

use crate::output::part::PartInfo;

/// A dropped document: its row in the input batch and the verdict that dropped it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Row index in the batch given to [`Stage::process`].
    pub row: usize,
    /// The failed check.
    pub verdict: Verdict,
    /// For a duplicate: the document kept in its place.
    pub duplicate: Option<DuplicateOf>,
}

/// Why a duplicate was dropped: the survivor of its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateOf {
    /// Id of the document kept.
    pub survivor: String,
    /// Id of the cluster (its smallest member id).
    pub cluster: String,
}

/// A change a stage made to the text of a document it kept, for the `edits` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    /// Row index in the batch given to [`Stage::process`].
    pub row: usize,
    /// What was changed: a stable name such as `c4.lines_removed` or `pii.redacted`.
    pub rule: &'static str,
    /// Text size before the change, in bytes.
    pub bytes_before: u64,
    /// Text size after it.
    pub bytes_after: u64,
    /// The change's measurements as a JSON object (`{"lines":12,"lines_removed":3}`); never
    /// the removed text itself.
    pub detail: String,
}

/// What a stage returns for one batch.
#[derive(Debug, Clone)]
pub struct StageOutput {
    /// The documents kept, in input order.
    pub kept: RecordBatch,
    /// The documents dropped, by ascending row of the input batch.
    pub rejected: Vec<Rejection>,
    /// Changes to kept documents, by ascending row of the input batch.
    pub edits: Vec<Edit>,
    /// Rows for a stage's own lineage tables (by table name, such as `contamination`), written
    /// as `<out>/<table>/<unit>.parquet`.
    pub tables: Vec<(&'static str, RecordBatch)>,
}

impl StageOutput {
    /// Every document kept unchanged.
    pub fn keep_all(batch: &RecordBatch) -> Self {
        Self {
            kept: batch.clone(),
            rejected: Vec::new(),
            edits: Vec::new(),
            tables: Vec::new(),
        }
    }

    /// Splits `batch` by one optional failed verdict per row (`None` keeps the row).
    pub fn from_verdicts(
        batch: &RecordBatch,
        verdicts: Vec<Option<Verdict>>,
    ) -> Result<Self, StageError> {
        let mask: BooleanArray = verdicts.iter().map(|v| Some(v.is_none())).collect();
        let kept = filter_record_batch(batch, &mask)?;
        let rejected = verdicts
            .into_iter()
            .enumerate()
            .filter_map(|(row, v)| {
                v.map(|verdict| Rejection {
                    row,
                    verdict,
                    duplicate: None,
                })
            })
            .collect();
        Ok(Self {
            kept,
            rejected,
            edits: Vec::new(),
            tables: Vec::new(),
        })
    }
}

/// How many passes over the whole dataset a stage needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passes {
    /// Decides each batch on its own.
    One,
    /// Observes every batch first (building an index), then decides.
    Two,
}

/// One step of the DAG. See the module docs.
pub trait Stage: Send + Sync {
    /// The stage's name, as configured; used in rejects and reports.
    fn name(&self) -> &str;

    /// How many passes the stage needs; one unless it overrides this.
    fn passes(&self) -> Passes {
        Passes::One
    }

    /// First pass of a two-pass stage: sees every batch of the dataset, in unit order.
    fn observe(&self, _batch: &RecordBatch, _ctx: &PassContext) -> Result<(), StageError> {
        Ok(())
    }

    /// The partitioned form of [`Stage::observe`]: what it takes from a batch, as a batch of its
    /// own without the texts (for dedup: ids, provenance and fingerprints). Each task of a
    /// partitioned run summarizes its units, so the process preparing the stage observes the
    /// summaries ([`Stage::observe_summary`]) instead of computing every fingerprint itself.
    /// `None` (the default): the stage only observes texts.
    fn summarize(&self, _batch: &RecordBatch) -> Result<Option<RecordBatch>, StageError> {
        Ok(None)
    }

    /// Observes a batch [`Stage::summarize`] made, as [`Stage::observe`] observes the batch it was
    /// made from.
    fn observe_summary(
        &self,
        _summary: &RecordBatch,
        _ctx: &PassContext,
    ) -> Result<(), StageError> {
        Err(StageError::Internal {
            stage: self.name().to_string(),
            message: "observe_summary called on a stage that does not summarize".into(),
        })
    }

    /// Between the passes of a two-pass stage: builds the decisions from what was observed and
    /// writes any tables of its own under `ctx.out`, returning them for the manifest.
    fn prepare(&self, _ctx: &PassContext) -> Result<Vec<PartInfo>, StageError> {
        Ok(Vec::new())
    }

    /// Instead of `observe` and `prepare`: takes up the decisions an earlier [`Stage::prepare`]
    /// of the same stage over the same documents wrote under `ctx.out` (a task of a partitioned
    /// run does this). Returns false when the stage cannot (the default): it is then observed
    /// and prepared again.
    fn restore(&self, _ctx: &PassContext) -> Result<bool, StageError> {
        Ok(false)
    }

    /// Decides one batch.
    fn process(&self, batch: &RecordBatch) -> Result<StageOutput, StageError>;
}

/// What [`Stage::observe`] and [`Stage::prepare`] may use.
pub struct PassContext<'a> {
    /// The run's output folder.
    pub out: &'a Path,
    /// Drives async work (DataFusion plans).
    pub handle: &'a Handle,
}

/// A stage failure: a bug or an Arrow error, never a document's fault (bad documents are
/// rejected, not errors).
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// Arrow failed on a batch.
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    /// The stage could not do its work (an index it needs, a file it writes).
    #[error("stage `{stage}`: {message}")]
    Failed {
        /// The stage.
        stage: String,
        /// What went wrong.
        message: String,
    },
    /// The stage broke its contract (e.g. lost rows); a bug to report.
    #[error("internal error in stage `{stage}` (please report): {message}")]
    Internal {
        /// The stage.
        stage: String,
        /// What went wrong.
        message: String,
    },
}
