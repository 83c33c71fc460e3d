//! DataFusion sessions for `query`, `stats`, `report` and `lineage`, bounded by a memory budget.
//!
//! Every session runs under a fair memory pool of `--memory-budget` bytes (default
//! [`DEFAULT_MEMORY_BUDGET`]). Sorts and aggregations spill to the system's temporary folder when
//! their state outgrows it, so a query over a corpus many times the budget still finishes. Hash
//! joins cannot spill in DataFusion 55: a join whose build side does not fit fails with the
//! message [`with_budget_hint`] adds. The lineage report's queries therefore never join on
//! document ids; they group instead (see `lineage::report::sections`).
//!
//! Each query runs in one partition. DataFusion 55 has two faults that need several partitions
//! spilling at once: a `RepartitionExec` that spills can wait forever for a batch held in another
//! spill file (apache/datafusion#24883: the report over eight copies of the corpus at 32 MiB hung
//! so, all threads idle), and a spilling sort briefly frees its merge reservation for another
//! partition to take (apache/datafusion#24739). One partition has no repartitioning and no second
//! sorter; it costs the parallelism of scans and groupings.

use std::sync::Arc;

use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

/// The budget of a SQL command without `--memory-budget`.
pub const DEFAULT_MEMORY_BUDGET: &str = "512MiB";

/// The smallest budget accepted: below it, the fair shares of a query's many buffers are
/// smaller than one batch of their state.
pub const MIN_MEMORY_BUDGET: usize = 32 << 20;

/// Memory consumers named when the pool refuses an allocation.
const TOP_CONSUMERS: std::num::NonZeroUsize = std::num::NonZeroUsize::new(5).unwrap();

/// Parses `--memory-budget` (`"512MiB"`, `"2GiB"`), at least [`MIN_MEMORY_BUDGET`].
pub fn parse_memory_budget(text: &str) -> Result<usize, String> {
    let bytes = crate::stages::memory_budget::parse_bytes(text)?;
    if bytes < MIN_MEMORY_BUDGET {
        return Err(format!(
            "memory budget `{text}`: at least {}MiB for SQL",
            MIN_MEMORY_BUDGET >> 20
        ));
    }
    Ok(bytes)
}

/// A session with at most `memory_budget` bytes of query state, that lists tables recursively
/// (shard indexes sit in `<split>/<source>/` folders), with the stages' rules as SQL functions
/// ([`super::functions`]).
pub fn session(memory_budget: usize) -> SessionContext {
    let config = SessionConfig::new().with_target_partitions(1).set_bool(
        "datafusion.execution.listing_table_ignore_subdirectory",
        false,
    );
    let pool = TrackConsumersPool::new(FairSpillPool::new(memory_budget), TOP_CONSUMERS);
    let ctx = match RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .build_arc()
    {
        Ok(runtime) => SessionContext::new_with_config_rt(config, runtime),
        // Only a spill folder that cannot be made fails here; such a session still runs,
        // without a bound.
        Err(e) => {
            tracing::warn!("SQL session without a memory budget: {e}");
            SessionContext::new_with_config(config)
        }
    };
    super::functions::register(&ctx);
    ctx
}

/// `e`, with the setting to raise when the query ran out of its budget.
pub fn with_budget_hint(e: DataFusionError) -> DataFusionError {
    match e.find_root() {
        DataFusionError::ResourcesExhausted(message) => {
            DataFusionError::ResourcesExhausted(format!(
                "{message} (the query needed more than its memory budget: raise --memory-budget)"
            ))
        }
        _ => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_below_the_minimum_are_refused_with_the_minimum() {
        assert_eq!(parse_memory_budget("512MiB"), Ok(512 << 20));
        assert_eq!(parse_memory_budget("32MiB"), Ok(32 << 20));
        assert!(
            parse_memory_budget("8MiB")
                .unwrap_err()
                .contains("at least 32MiB")
        );
        assert!(parse_memory_budget("lots").is_err());
    }
}
