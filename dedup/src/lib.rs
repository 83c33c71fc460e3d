//! Exact and MinHash-LSH near-duplicate detection, as pure functions over text and Arrow arrays.
//!
//! Filled in by the dedup issue; the orchestrator (`pipeline`) adapts these functions into
//! two-pass stages.
