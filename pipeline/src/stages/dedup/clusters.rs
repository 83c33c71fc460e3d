//! From candidate pairs to clusters, survivors and decisions, and the `clusters` table.
//!
//! The survivor of a cluster is, in order: a document of the previous run's index (`against`),
//! then the document whose source comes first in `priority` (unlisted sources after all listed
//! ones), then the oldest: first in input order (file URI, then line or row), then the smallest
//! id. The cluster id is its smallest member id. None of these depend
//! on input order or thread count.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use dedup::union_find::UnionFind;
use rayon::prelude::*;

use super::buckets::Pair;
use super::{Decision, Docs, parse_id};
use crate::output::CLUSTERS;
use crate::output::part::{PartInfo, PartWriter, read_part};
use crate::stage::StageError;
use crate::stages::string_column;

/// A cluster member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Kept,
    Previous,
    Dropped,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Kept => "kept",
            Role::Previous => "previous",
            Role::Dropped => "dropped",
        }
    }
}

/// One member of one cluster.
struct Member {
    cluster: u128,
    size: u64,
    ord: u32,
    role: Role,
    jaccard: Option<f64>,
}

/// The clusters found and the decisions they imply.
pub(super) struct Found {
    members: Vec<Member>,
    /// Dropped documents of this run, by id.
    pub decisions: HashMap<u128, Decision>,
}

/// Clusters the documents linked by `pairs`; `similarity(a, b)` measures a member against its
/// survivor.
pub(super) fn cluster(
    st: &Docs,
    pairs: &[Pair],
    priority: &[String],
    similarity: impl Fn(u32, u32) -> Result<f64, String> + Sync,
) -> Result<Found, String> {
    let mut uf = UnionFind::new(st.len());
    for &(a, b) in pairs {
        uf.union(a, b);
    }
    let mut groups: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for &(a, b) in pairs {
        for x in [a, b] {
            groups.entry(uf.find(x)).or_default().push(x);
        }
    }
    let rank = |ord: u32| {
        let listed = priority.iter().position(|p| p == st.source(ord));
        let (uri, position) = st.position(ord);
        let rank = listed.unwrap_or(priority.len());
        (st.is_new(ord), rank, uri, position, st.id(ord))
    };
    let clusters: Vec<Vec<u32>> = groups
        .into_values()
        .map(|mut m| {
            m.sort_unstable();
            m.dedup();
            m
        })
        .filter(|m| m.iter().any(|&o| st.is_new(o)))
        .collect();
    let members: Result<Vec<Vec<Member>>, String> = clusters
        .par_iter()
        .map(|m| {
            let survivor = *m.iter().min_by_key(|&&o| rank(o)).ok_or("empty cluster")?;
            let cluster = m.iter().map(|&o| st.id(o)).min().unwrap_or_default();
            let mut out = Vec::with_capacity(m.len());
            for &ord in m {
                let (role, jaccard) = if ord == survivor {
                    (Role::Kept, None)
                } else if !st.is_new(ord) {
                    (Role::Previous, None)
                } else {
                    (Role::Dropped, Some(similarity(ord, survivor)?))
                };
                out.push(Member {
                    cluster,
                    size: m.len() as u64,
                    ord,
                    role,
                    jaccard,
                });
            }
            out.sort_by_key(|x| (x.role, st.id(x.ord)));
            Ok(out)
        })
        .collect();
    let mut members: Vec<Member> = members?.into_iter().flatten().collect();
    members.sort_by_key(|x| x.cluster);
    let survivors: HashMap<u128, u32> = members
        .iter()
        .filter(|x| x.role == Role::Kept)
        .map(|x| (x.cluster, x.ord))
        .collect();
    let decisions = members
        .iter()
        .filter(|x| x.role == Role::Dropped)
        .map(|x| {
            let survivor = survivors.get(&x.cluster).map_or(0, |&o| st.id(o));
            let decision = Decision {
                survivor,
                cluster: x.cluster,
                jaccard: x.jaccard.unwrap_or(1.0),
            };
            (st.id(x.ord), decision)
        })
        .collect();
    Ok(Found { members, decisions })
}

/// Schema of the `clusters` table: one row per member of every cluster with a document of
/// this run, named by the dedup `stage` that found it; `role` is `kept`, `dropped` or `previous` (a document of the `against` index),
/// `jaccard` the similarity of a dropped member to the kept one.
pub fn clusters_schema() -> SchemaRef {
    let utf8 = |n: &str| Field::new(n, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        utf8("stage"),
        utf8("cluster"),
        Field::new("size", DataType::UInt64, false),
        utf8("id"),
        utf8("source"),
        utf8("role"),
        Field::new("jaccard", DataType::Float64, true),
    ]))
}

/// Writes `clusters/<stage>.parquet`.
pub(super) fn write(out: &Path, stage: &str, st: &Docs, found: &Found) -> Result<PartInfo, String> {
    let mut part = PartWriter::create(
        out,
        &format!("{CLUSTERS}/{stage}.parquet"),
        clusters_schema(),
    )
    .map_err(|e| e.to_string())?;
    for chunk in found.members.chunks(64 * 1024) {
        let hex = |v: u128| format!("{v:032x}");
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(chunk.iter().map(|_| stage))),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|m| hex(m.cluster)),
            )),
            Arc::new(UInt64Array::from_iter_values(chunk.iter().map(|m| m.size))),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|m| hex(st.id(m.ord))),
            )),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|m| st.source(m.ord)),
            )),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|m| m.role.as_str()),
            )),
            Arc::new(chunk.iter().map(|m| m.jaccard).collect::<Float64Array>()),
        ];
        let batch = RecordBatch::try_new(clusters_schema(), columns).map_err(|e| e.to_string())?;
        part.write(&batch).map_err(|e| e.to_string())?;
    }
    part.finish().map_err(|e| e.to_string())
}

/// The decisions a `clusters/<stage>.parquet` written by [`write`] implies: every `dropped`
/// member, with its cluster's `kept` member as survivor. The same map [`cluster`] returned.
pub(super) fn read_decisions(
    out: &Path,
    stage: &str,
) -> Result<HashMap<u128, Decision>, StageError> {
    let path = out.join(CLUSTERS).join(format!("{stage}.parquet"));
    let failed = |message: String| StageError::Failed {
        stage: stage.to_string(),
        message: format!("{}: {message}", path.display()),
    };
    let reader = read_part(&path, 64 * 1024).map_err(|e| failed(e.to_string()))?;
    let mut survivors: HashMap<u128, u128> = HashMap::new();
    let mut dropped: Vec<(u128, u128, f64)> = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| failed(e.to_string()))?;
        let column = |name| string_column(&batch, name, stage);
        let (clusters, ids, roles) = (column("cluster")?, column("id")?, column("role")?);
        let jaccard = batch
            .column_by_name("jaccard")
            .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
            .ok_or_else(|| failed("no column `jaccard`".into()))?;
        for row in 0..batch.num_rows() {
            let cluster = parse_id(clusters.value(row), stage)?;
            let id = parse_id(ids.value(row), stage)?;
            let role = roles.value(row);
            if role == Role::Kept.as_str() {
                survivors.insert(cluster, id);
            } else if role == Role::Dropped.as_str() {
                dropped.push((id, cluster, jaccard.value(row)));
            }
        }
    }
    Ok(dropped
        .into_iter()
        .map(|(id, cluster, jaccard)| {
            let survivor = survivors.get(&cluster).copied().unwrap_or_default();
            (
                id,
                Decision {
                    survivor,
                    cluster,
                    jaccard,
                },
            )
        })
        .collect())
}
