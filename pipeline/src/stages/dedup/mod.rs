//! The dedup stages' shared engine: `exact_dedup` and `minhash_dedup` differ only in the
//! fingerprint they take of a text and the bucket keys it yields ([`Method`]).
//!
//! First pass ([`Stage::observe`]): each document gets an ordinal and a fingerprint (the 128-bit
//! text key, or the MinHash signature), computed in parallel; its bucket keys (one, or one per
//! band) go to scratch Parquet files, its fingerprint to a fixed-size scratch file, and with
//! `verify` its shingle set to a third. It is two steps: [`Stage::summarize`] computes a batch's
//! fingerprints (`summary`; a task of a partitioned run writes them for its units) and
//! [`Stage::observe_summary`] numbers the documents and writes the scratch files.
//!
//! Between the passes ([`Stage::prepare`]): DataFusion sorts the key rows by bucket under the
//! `memory_budget`, spilling to disk (`buckets`); the candidate pairs (optionally verified by
//! true Jaccard) are clustered by union-find; each cluster keeps one survivor (`clusters`); the
//! `clusters` table and the index for later runs (`index`) are written.
//!
//! Second pass ([`Stage::process`]): a document is dropped when it is a non-survivor.
//!
//! Memory held for the whole corpus: 32 bytes per document (`docs`), 4 of union-find, 12 more
//! with `verify`, and for each document in a duplicate cluster about 200 more (its candidate
//! pairs, cluster row and decision; measured: 3 copies of the corpus instead of 1 add 222 bytes
//! per added document, every one a duplicate). Key rows, fingerprints and shingle sets live on
//! disk; the sort is bounded by `memory_budget`.

pub(crate) mod buckets;
mod clusters;
mod docs;
mod index;
mod summary;
pub(crate) mod work;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};

use arrow::array::{Array, RecordBatch, StringArray};
use dedup::minhash::{MinHasher, estimate_jaccard};
use dedup::shingle::Shingling;
use filters::Verdict;
use rayon::prelude::*;

use super::memory_budget::parse_bytes;
use super::{string_column, text_column};
use crate::output::part::PartInfo;
use crate::schema::col;
use crate::stage::{DuplicateOf, PassContext, Passes, Rejection, Stage, StageError, StageOutput};
use docs::{Docs, Origin};
use summary::Summary;
use work::{KeyRows, Sets, Slots};

/// Default memory budget for sorting bucket keys.
pub const DEFAULT_MEMORY_BUDGET: usize = 512 << 20;

/// How documents are compared.
pub enum Method {
    /// Equal xxh3-128 of the text.
    Exact,
    /// MinHash-LSH over shingles.
    MinHash(MinHashMethod),
}

/// The MinHash settings of a stage.
pub struct MinHashMethod {
    /// Shingle kind and size.
    pub shingling: Shingling,
    /// Signature functions and banding.
    pub hasher: MinHasher,
    /// The seed `hasher` was drawn from.
    pub seed: u64,
    /// Keep only candidate pairs whose true Jaccard reaches `threshold`.
    pub verify: bool,
    /// The similarity reported as the threshold, and the bar for `verify`.
    pub threshold: f64,
}

impl Method {
    fn rule(&self) -> &'static str {
        match self {
            Method::Exact => "exact_duplicate",
            Method::MinHash(_) => "near_duplicate",
        }
    }

    /// Values per fingerprint.
    fn width(&self) -> usize {
        match self {
            Method::Exact => 4,
            Method::MinHash(m) => m.hasher.bands() * m.hasher.rows(),
        }
    }

    /// Describes the settings a fingerprint depends on; an index is only usable by a stage
    /// with the same description.
    fn describe(&self) -> String {
        match self {
            Method::Exact => "exact xxh3-128".into(),
            Method::MinHash(m) => format!(
                "minhash bands={} rows={} seed={} shingling={:?}",
                m.hasher.bands(),
                m.hasher.rows(),
                m.seed,
                m.shingling
            ),
        }
    }

    /// The bucket keys of a fingerprint.
    fn keys(&self, fingerprint: &[u32]) -> Vec<u128> {
        match self {
            Method::Exact => vec![from_words(fingerprint)],
            Method::MinHash(m) => m
                .hasher
                .band_keys(fingerprint)
                .into_iter()
                .enumerate()
                .map(|(band, key)| ((band as u128) << 64) | u128::from(key))
                .collect(),
        }
    }

    fn threshold(&self) -> f64 {
        match self {
            Method::Exact => 1.0,
            Method::MinHash(m) => m.threshold,
        }
    }
}

/// A 128-bit value as four `u32` words, most significant first.
fn to_words(v: u128) -> Vec<u32> {
    (0..4).map(|i| (v >> (96 - 32 * i)) as u32).collect()
}

fn from_words(w: &[u32]) -> u128 {
    w.iter().fold(0u128, |acc, &x| (acc << 32) | u128::from(x))
}

/// Parses a hex document id.
fn parse_id(id: &str, stage: &str) -> Result<u128, StageError> {
    u128::from_str_radix(id, 16).map_err(|_| StageError::Internal {
        stage: stage.to_string(),
        message: format!("document id `{id}` is not 32 hex digits"),
    })
}

/// Why a document is dropped.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Decision {
    survivor: u128,
    cluster: u128,
    jaccard: f64,
}

/// Everything observed so far.
struct Observed {
    dir: PathBuf,
    docs: Docs,
    keys: KeyRows,
    fingerprints: Slots,
    sets: Option<Sets>,
}

impl Observed {
    fn start(dir: PathBuf, method: &Method) -> Result<Self, String> {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| format!("clear {}: {e}", dir.display()))?;
        }
        let keys = KeyRows::new(dir.join("keys"))?;
        let verify = matches!(method, Method::MinHash(m) if m.verify);
        Ok(Self {
            fingerprints: Slots::create(dir.join("fingerprints.bin"), method.width())?,
            sets: verify
                .then(|| Sets::create(dir.join("sets.bin")))
                .transpose()?,
            dir,
            docs: Docs::default(),
            keys,
        })
    }

    /// Registers a document; returns its ordinal.
    fn add(
        &mut self,
        origin: &Origin,
        fingerprint: Option<&[u32]>,
        method: &Method,
    ) -> Result<u32, String> {
        let ord = self.docs.push(origin);
        self.fingerprints.push(fingerprint)?;
        for key in fingerprint.map(|f| method.keys(f)).unwrap_or_default() {
            self.keys.push(key, origin.id, ord)?;
        }
        Ok(ord)
    }
}

/// A running dedup stage.
pub struct Dedup {
    name: String,
    method: Method,
    priority: Vec<String>,
    against: Option<PathBuf>,
    memory_budget: usize,
    observed: Mutex<Option<Observed>>,
    decisions: RwLock<HashMap<u128, Decision>>,
}

impl Dedup {
    /// A stage named `name`. Survivors come first from the sources in `priority` (in order),
    /// then earliest in the input (file URI, then line or row), then smallest id; `against` names an earlier run's output folder whose index wins
    /// over every new document.
    pub fn new(
        name: String,
        method: Method,
        priority: Vec<String>,
        against: Option<PathBuf>,
        memory_budget: Option<&str>,
    ) -> Self {
        // `check` reported a bad budget already; the default stands in for it.
        let memory_budget = memory_budget
            .and_then(|b| parse_bytes(b).ok())
            .unwrap_or(DEFAULT_MEMORY_BUDGET);
        Self {
            name,
            method,
            priority,
            against,
            memory_budget,
            observed: Mutex::new(None),
            decisions: RwLock::new(HashMap::new()),
        }
    }

    fn failed(&self, message: String) -> StageError {
        StageError::Failed {
            stage: self.name.clone(),
            message,
        }
    }

    /// The first-pass summary of a batch: its documents' provenance and fingerprints.
    fn summary(&self, batch: &RecordBatch) -> Result<RecordBatch, StageError> {
        let (fingerprints, sets) = self.fingerprints(text_column(batch, &self.name)?);
        let verify = matches!(&self.method, Method::MinHash(m) if m.verify);
        let sets = verify.then_some(sets.as_slice());
        summary::build(batch, &fingerprints, sets, self.method.width())
    }

    /// Fingerprints (and shingle sets under `verify`) of a batch's texts, in row order.
    fn fingerprints(&self, texts: &StringArray) -> (Vec<Option<Vec<u32>>>, Vec<Vec<u64>>) {
        match &self.method {
            Method::Exact => {
                let keys = dedup::arrays::text_keys(texts);
                (
                    keys.into_iter().map(|k| Some(to_words(k))).collect(),
                    Vec::new(),
                )
            }
            Method::MinHash(m) => {
                let sigs = dedup::arrays::signatures(texts, m.shingling, &m.hasher);
                let sets = if m.verify {
                    dedup::arrays::shingle_sets(texts, m.shingling)
                } else {
                    Vec::new()
                };
                (sigs, sets)
            }
        }
    }
}

/// The similarity of two ordinals: true Jaccard when both shingle sets are at hand, else the
/// signature estimate (1 for exact duplicates).
fn similarity(
    method: &Method,
    fingerprints: &Slots,
    sets: Option<&Sets>,
    a: u32,
    b: u32,
) -> Result<f64, String> {
    if matches!(method, Method::Exact) {
        return Ok(1.0);
    }
    if let Some(sets) = sets
        && let (Some(x), Some(y)) = (sets.get(a)?, sets.get(b)?)
    {
        return Ok(dedup::jaccard::jaccard(&x, &y));
    }
    Ok(estimate_jaccard(
        &fingerprints.get(a)?,
        &fingerprints.get(b)?,
    ))
}

impl Stage for Dedup {
    fn name(&self) -> &str {
        &self.name
    }

    fn passes(&self) -> Passes {
        Passes::Two
    }

    fn observe(&self, batch: &RecordBatch, ctx: &PassContext) -> Result<(), StageError> {
        self.observe_summary(&self.summary(batch)?, ctx)
    }

    fn summarize(&self, batch: &RecordBatch) -> Result<Option<RecordBatch>, StageError> {
        self.summary(batch).map(Some)
    }

    fn observe_summary(&self, summary: &RecordBatch, ctx: &PassContext) -> Result<(), StageError> {
        let verify = matches!(&self.method, Method::MinHash(m) if m.verify);
        let summary = Summary::of(summary, self.method.width(), verify, &self.name)?;
        let mut guard = self.observed.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            let dir = ctx.out.join("_work").join(&self.name);
            *guard = Some(Observed::start(dir, &self.method).map_err(|e| self.failed(e))?);
        }
        let Some(st) = guard.as_mut() else {
            unreachable!("initialised above")
        };
        for i in 0..summary.len() {
            let origin = Origin {
                id: parse_id(summary.ids.value(i), &self.name)?,
                source: summary.sources.value(i),
                uri: summary.uris.value(i),
                position: summary.locators.value(i).parse().unwrap_or(0),
            };
            let fingerprint = summary.fingerprint(i);
            st.add(&origin, fingerprint.as_deref(), &self.method)
                .map_err(|e| self.failed(e))?;
            if let (Some(out), Some(set)) = (st.sets.as_mut(), summary.set(i)) {
                out.push(&set).map_err(|e| self.failed(e))?;
            }
        }
        Ok(())
    }

    fn prepare(&self, ctx: &PassContext) -> Result<Vec<PartInfo>, StageError> {
        let taken = self
            .observed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let mut st = match taken {
            Some(st) => st,
            None => Observed::start(ctx.out.join("_work").join(&self.name), &self.method)
                .map_err(|e| self.failed(e))?,
        };
        st.docs.new_docs = st.docs.len();
        if let Some(earlier) = &self.against {
            index::load(earlier, &self.name, &self.method, &mut st).map_err(|e| self.failed(e))?;
        }
        let fail = |e: String| self.failed(e);
        st.keys.finish().map_err(fail)?;
        st.fingerprints.seal().map_err(fail)?;
        if let Some(sets) = st.sets.as_mut() {
            sets.seal().map_err(fail)?;
        }
        let mut pairs = Vec::new();
        if !st.keys.is_empty() {
            let spill = st.dir.join("spill");
            let found =
                buckets::candidate_pairs(ctx.handle, st.keys.dir(), &spill, self.memory_budget)
                    .map_err(fail)?;
            if found.spilled_bytes > 0 {
                tracing::info!(stage = %self.name, spilled_bytes = found.spilled_bytes, "Bucket sort spilled to disk (memory_budget {})", self.memory_budget);
            }
            pairs = found.pairs;
        }
        let (fingerprints, sets) = (&st.fingerprints, st.sets.as_ref());
        let measure = |a, b| similarity(&self.method, fingerprints, sets, a, b);
        if matches!(&self.method, Method::MinHash(m) if m.verify) {
            let threshold = self.method.threshold();
            let verified: Result<Vec<bool>, String> = pairs
                .par_iter()
                .map(|&(a, b)| Ok(measure(a, b)? >= threshold))
                .collect();
            let verified = verified.map_err(fail)?;
            let mut keep = verified.into_iter();
            pairs.retain(|_| keep.next().unwrap_or(false));
        }
        tracing::info!(stage = %self.name, pairs = pairs.len(), documents = st.docs.new_docs, "Clustering candidate pairs");
        let found = clusters::cluster(&st.docs, &pairs, &self.priority, measure).map_err(fail)?;
        let tables = vec![
            clusters::write(ctx.out, &self.name, &st.docs, &found).map_err(fail)?,
            index::write(ctx.out, &self.name, &self.method, &st, &found.decisions).map_err(fail)?,
        ];
        let dir = st.dir.clone();
        drop(st);
        std::fs::remove_dir_all(&dir)
            .map_err(|e| self.failed(format!("clear {}: {e}", dir.display())))?;
        if let Some(parent) = dir.parent() {
            // Succeeds only when no other stage's scratch is left.
            let _ = std::fs::remove_dir(parent);
        }
        *self.decisions.write().unwrap_or_else(|e| e.into_inner()) = found.decisions;
        Ok(tables)
    }

    fn restore(&self, ctx: &PassContext) -> Result<bool, StageError> {
        let decisions = clusters::read_decisions(ctx.out, &self.name)?;
        *self.decisions.write().unwrap_or_else(|e| e.into_inner()) = decisions;
        Ok(true)
    }

    fn process(&self, batch: &RecordBatch) -> Result<StageOutput, StageError> {
        let ids = string_column(batch, col::ID, &self.name)?;
        let decisions = self.decisions.read().unwrap_or_else(|e| e.into_inner());
        let mut keep = Vec::with_capacity(ids.len());
        let mut rejected = Vec::new();
        for row in 0..ids.len() {
            let id = parse_id(ids.value(row), &self.name)?;
            let decision = decisions.get(&id);
            keep.push(decision.is_none());
            if let Some(d) = decision {
                rejected.push(Rejection {
                    row,
                    verdict: Verdict {
                        rule: self.method.rule(),
                        passed: false,
                        value: d.jaccard,
                        threshold: self.method.threshold(),
                    },
                    duplicate: Some(DuplicateOf {
                        survivor: format!("{:032x}", d.survivor),
                        cluster: format!("{:032x}", d.cluster),
                    }),
                });
            }
        }
        let mask = arrow::array::BooleanArray::from(keep);
        Ok(StageOutput {
            rejected,
            ..StageOutput::keep_all(&arrow::compute::filter_record_batch(batch, &mask)?)
        })
    }
}

#[cfg(test)]
mod tests;
