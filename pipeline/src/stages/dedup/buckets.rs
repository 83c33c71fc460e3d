//! Candidate pairs from bucket keys, as a DataFusion plan: the key rows are sorted by
//! (key, document id) under a memory pool of `memory_budget` bytes, spilling sorted runs to the
//! scratch folder and merging them when the rows do not fit. Each document in a bucket is paired
//! with the bucket's smallest id, so the pairs do not depend on input order or thread count.

use std::path::Path;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{UInt32Type, UInt64Type};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use futures::StreamExt;
use tokio::runtime::Handle;

/// A pair of document ordinals sharing a bucket: (the bucket's first, another member).
pub(crate) type Pair = (u32, u32);

/// The candidate pairs, and how much the sort spilled.
pub(crate) struct Candidates {
    /// Every pair, sorted, without repeats.
    pub pairs: Vec<Pair>,
    /// Peak bytes of spill files seen while reading the sorted rows (0: the sort fitted).
    pub spilled_bytes: u64,
}

/// Sorts the key rows in `keys` (Parquet files) and pairs them up. Spill files go to `spill`.
pub(crate) fn candidate_pairs(
    handle: &Handle,
    keys: &Path,
    spill: &Path,
    memory_budget: usize,
) -> Result<Candidates, String> {
    let df_err = |e: datafusion::error::DataFusionError| format!("sorting bucket keys: {e}");
    std::fs::create_dir_all(spill).map_err(|e| format!("create {}: {e}", spill.display()))?;
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(memory_budget, 1.0)
        .with_disk_manager_builder(
            DiskManagerBuilder::default()
                .with_mode(DiskManagerMode::Directories(vec![spill.to_path_buf()])),
        )
        .build_arc()
        .map_err(df_err)?;
    // Each partition sorts and merges in its own share of the budget: give each at least
    // 32 MiB, and smaller batches to a small budget.
    let partitions = (memory_budget / (32 << 20)).clamp(1, rayon::current_num_threads());
    let batch_size = (memory_budget / (4 << 10)).clamp(1024, 8192);
    let mut config = SessionConfig::new()
        .with_target_partitions(partitions)
        .with_batch_size(batch_size);
    let options = config.options_mut();
    // The merge reservation must fit well inside a small budget.
    options.execution.sort_spill_reservation_bytes = (memory_budget / 8).min(10 << 20);
    options.execution.sort_in_place_threshold_bytes = (memory_budget / 8).min(1 << 20);
    let disk = runtime.disk_manager.clone();
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    let keys_url = format!("{}/", keys.display());
    handle.block_on(async {
        ctx.register_parquet("keys", &keys_url, ParquetReadOptions::default())
            .await
            .map_err(df_err)?;
        let df = ctx
            .sql("SELECT key_hi, key_lo, ord FROM keys ORDER BY key_hi, key_lo, id_hi, id_lo, ord")
            .await
            .map_err(df_err)?;
        let mut stream = df.execute_stream().await.map_err(df_err)?;
        let mut pairs = Vec::new();
        let mut bucket: Option<(u64, u64, u32)> = None;
        let mut spilled_bytes = 0;
        while let Some(batch) = stream.next().await {
            spilled_bytes = spilled_bytes.max(disk.used_disk_space());
            pair_up(&batch.map_err(df_err)?, &mut bucket, &mut pairs);
        }
        pairs.sort_unstable();
        pairs.dedup();
        Ok(Candidates {
            pairs,
            spilled_bytes,
        })
    })
}

/// Walks sorted rows, pairing each row with the first row of its bucket.
fn pair_up(batch: &RecordBatch, bucket: &mut Option<(u64, u64, u32)>, pairs: &mut Vec<Pair>) {
    let hi = batch.column(0).as_primitive::<UInt64Type>();
    let lo = batch.column(1).as_primitive::<UInt64Type>();
    let ord = batch.column(2).as_primitive::<UInt32Type>();
    for i in 0..batch.num_rows() {
        let (h, l, o) = (hi.value(i), lo.value(i), ord.value(i));
        match *bucket {
            Some((bh, bl, first)) if bh == h && bl == l => {
                if first != o {
                    pairs.push((first, o));
                }
            }
            _ => *bucket = Some((h, l, o)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::dedup::work::KeyRows;

    fn pairs_with_budget(rows: &[(u128, u128, u32)], budget: usize) -> Candidates {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = KeyRows::new(dir.path().join("keys")).unwrap();
        for &(k, id, o) in rows {
            keys.push(k, id, o).unwrap();
        }
        keys.finish().unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        candidate_pairs(rt.handle(), keys.dir(), &dir.path().join("spill"), budget).unwrap()
    }

    #[test]
    fn buckets_pair_with_their_smallest_id_and_spilling_changes_nothing() {
        let small = [
            (7, 30, 0),
            (7, 10, 1),
            (9, 5, 2),
            (7, 20, 3),
            (1 << 70, 1, 4),
            (1 << 70, 2, 5),
        ];
        assert_eq!(
            pairs_with_budget(&small, 64 << 20).pairs,
            vec![(1, 0), (1, 3), (4, 5)]
        );

        // 300k rows in 1,000 buckets: about 10 MB of rows against a 2 MiB budget.
        let rows: Vec<(u128, u128, u32)> = (0..300_000u32)
            .map(|o| {
                (
                    u128::from(o.wrapping_mul(2_654_435_761) % 1000),
                    u128::from(o),
                    o,
                )
            })
            .collect();
        let in_memory = pairs_with_budget(&rows, 1 << 30);
        assert_eq!(in_memory.spilled_bytes, 0);
        assert_eq!(in_memory.pairs.len(), 299_000);
        let spilled = pairs_with_budget(&rows, 2 << 20);
        assert!(
            spilled.spilled_bytes > 0,
            "the small budget made the sort spill"
        );
        assert_eq!(spilled.pairs, in_memory.pairs);
    }
}
