//! The Candle transformer trainer: reads shard versions through `shards`, never `pipeline`.
//!
//! Filled in by the trainer issue.
