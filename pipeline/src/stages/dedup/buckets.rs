//! Candidate pairs from bucket keys, as a DataFusion plan: the key rows are sorted by
//! (key, document id) under a memory pool of `memory_budget` bytes, spilling sorted runs to the
//! scratch folder and merging them when the rows do not fit. Each document in a bucket is paired
//! with the bucket's smallest id, so the pairs do not depend on input order or thread count.
//!
//! How the budget is shared ([`SortSettings`]): before a sorter spills, it merges its buffered
//! batches, and that merge holds the sort keys of every buffered row again (in DataFusion's row
//! format, about 1.1 times the buffered bytes for these five columns). So 60 % of the budget stays
//! reserved for that merge, and a fair pool ([`FairSpillPool`]) lets the buffers grow only into
//! the other 40 %. The sort runs in several partitions (one per thread) only when the rows fit in
//! memory with room to spare: a partition that spills lets go of its reservation for a moment,
//! and another partition's buffer can take it (apache/datafusion#24739, fixed after 55). Before
//! this, a greedy pool and a fixed 10 MiB reservation failed with "Resources exhausted" whenever
//! the rows did not fit (the corpus at `memory_budget = "64MiB"`, eight times the corpus at the
//! default 512 MiB).

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{UInt32Type, UInt64Type};
use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
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
    let df_err = |e| sort_error(e, memory_budget);
    std::fs::create_dir_all(spill).map_err(|e| format!("create {}: {e}", spill.display()))?;
    let key_bytes = folder_bytes(keys).map_err(|e| format!("list {}: {e}", keys.display()))?;
    let settings = SortSettings::new(memory_budget, rayon::current_num_threads(), key_bytes);
    let pool = TrackConsumersPool::new(FairSpillPool::new(memory_budget), TOP_CONSUMERS);
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .with_disk_manager_builder(
            DiskManagerBuilder::default()
                .with_mode(DiskManagerMode::Directories(vec![spill.to_path_buf()])),
        )
        .build_arc()
        .map_err(df_err)?;
    let mut config = SessionConfig::new()
        .with_target_partitions(settings.partitions)
        .with_batch_size(settings.batch_size);
    let options = config.options_mut();
    options.execution.sort_spill_reservation_bytes = settings.merge_reservation;
    options.execution.sort_in_place_threshold_bytes = settings.in_place_threshold;
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

/// Memory consumers named when the pool refuses an allocation.
const TOP_CONSUMERS: NonZeroUsize = NonZeroUsize::new(5).unwrap();

/// How the sort uses its budget (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SortSettings {
    /// Sort partitions: one per thread (and per 32 MiB of budget) when the rows fit in memory,
    /// else one.
    partitions: usize,
    /// Rows per batch: smaller for a small budget.
    batch_size: usize,
    /// Bytes each partition keeps reserved for merging its buffer before a spill.
    merge_reservation: usize,
    /// Buffers below this many bytes are sorted in one piece instead of merged.
    in_place_threshold: usize,
}

impl SortSettings {
    /// Settings for sorting `key_bytes` of key rows (uncompressed Parquet, about their size in
    /// memory) within `memory_budget` bytes on `threads` threads.
    fn new(memory_budget: usize, threads: usize, key_bytes: u64) -> Self {
        let buffers = memory_budget / 10 * 4;
        let fits = key_bytes.saturating_mul(2) <= buffers as u64;
        let partitions = if fits {
            (memory_budget / (32 << 20)).clamp(1, threads.max(1))
        } else {
            1
        };
        Self {
            partitions,
            batch_size: (memory_budget / (4 << 10)).clamp(1024, 8192),
            merge_reservation: (memory_budget - buffers) / partitions,
            in_place_threshold: (memory_budget / 8).min(1 << 20),
        }
    }
}

/// The message of a failed sort; one that ran out of memory says which setting to raise.
fn sort_error(e: DataFusionError, memory_budget: usize) -> String {
    let hint = match e.find_root() {
        DataFusionError::ResourcesExhausted(_) => format!(
            " (the sort needed more than memory_budget = {} MiB: raise the stage's memory_budget)",
            memory_budget >> 20
        ),
        _ => String::new(),
    };
    format!("sorting bucket keys: {e}{hint}")
}

/// Total size of the files in `dir`.
fn folder_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
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

    /// The candidate pairs of `rows` (key, id, ordinal), sorted within `budget` bytes on a pool
    /// of `threads` threads.
    fn pairs_with_budget(rows: &[(u128, u128, u32)], budget: usize, threads: usize) -> Candidates {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = KeyRows::new(dir.path().join("keys")).unwrap();
        for &(k, id, o) in rows {
            keys.push(k, id, o).unwrap();
        }
        keys.finish().unwrap();
        let keys = keys.dir().to_path_buf();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            candidate_pairs(rt.handle(), &keys, &dir.path().join("spill"), budget).unwrap()
        })
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
            pairs_with_budget(&small, 64 << 20, 2).pairs,
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
        let in_memory = pairs_with_budget(&rows, 1 << 30, 2);
        assert_eq!(in_memory.spilled_bytes, 0);
        assert_eq!(in_memory.pairs.len(), 299_000);
        let spilled = pairs_with_budget(&rows, 2 << 20, 2);
        assert!(
            spilled.spilled_bytes > 0,
            "the small budget made the sort spill"
        );
        assert_eq!(spilled.pairs, in_memory.pairs);
    }

    #[test]
    fn keys_many_times_the_budget_sort_within_it_on_one_or_two_threads() {
        // 1.2M rows in buckets of three, keys spread over 128 bits: 43 MB of rows against 4 and
        // 16 MiB. A greedy pool with a small fixed merge reservation failed here ("Resources
        // exhausted") when the merge before a spill asked for the buffered rows' sort keys.
        const SPREAD: u128 = 0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835;
        let rows: Vec<(u128, u128, u32)> = (0..1_200_000u32)
            .map(|o| {
                let key = u128::from(o / 3).wrapping_mul(SPREAD);
                (key, u128::from(o.wrapping_mul(2_654_435_761)), o)
            })
            .collect();
        let in_memory = pairs_with_budget(&rows, 1 << 30, 2);
        assert_eq!(in_memory.spilled_bytes, 0);
        assert_eq!(in_memory.pairs.len(), 800_000);
        for (budget, threads) in [(4 << 20, 1), (16 << 20, 2)] {
            let spilled = pairs_with_budget(&rows, budget, threads);
            assert!(
                spilled.spilled_bytes > 0,
                "{budget} bytes made the sort spill"
            );
            assert_eq!(
                spilled.pairs, in_memory.pairs,
                "{budget} bytes, {threads} threads"
            );
        }
    }

    #[test]
    fn running_out_of_memory_names_the_setting_to_raise() {
        let exhausted = DataFusionError::ResourcesExhausted("Failed to allocate".into());
        let wrapped = DataFusionError::Context("merging".into(), Box::new(exhausted));
        let message = sort_error(wrapped, 64 << 20);
        assert!(message.starts_with("sorting bucket keys: "), "{message}");
        assert!(message.ends_with("memory_budget = 64 MiB: raise the stage's memory_budget)"));
        let other = sort_error(DataFusionError::Plan("no such column".into()), 64 << 20);
        assert!(!other.contains("raise"), "{other}");
    }

    #[test]
    fn rows_that_may_not_fit_sort_in_one_partition_with_room_for_its_merge() {
        let budget = 512 << 20;
        let fits = SortSettings::new(budget, 4, 50 << 20);
        assert_eq!(fits.partitions, 4);
        let spills = SortSettings::new(budget, 4, 300 << 20);
        assert_eq!(spills.partitions, 1);
        for s in [fits, spills] {
            // What a partition may buffer, and the merge of that buffer (1.1 times its size).
            let buffer = (budget - s.partitions * s.merge_reservation) / s.partitions;
            assert!(s.merge_reservation * 10 >= buffer * 11, "{s:?}");
        }
    }
}
