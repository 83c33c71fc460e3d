//! Storage for Refinery: everything that touches bytes at rest goes through here.
//!
//! - [`store`]: open local paths and `s3://` URLs as [`object_store`] stores and expand an input
//!   spec (a path, a glob or an `s3://bucket/prefix`) into a sorted list of objects.
//! - [`read`]: stream one object as a [`std::io::Read`] through ranged gets with read-ahead, so a
//!   file of any size is read in bounded memory.
//! - [`checksum`]: xxh3-64 checksums of streams and files, as written in manifests.
//! - [`parquet`]: Parquet files read by range from any store.
//! - [`atomic`]: write-to-temp-then-rename for local outputs.
//! - [`token_shard`]: the llm.c token shard layout (header, u16/u32 tokens).
//! - [`dataset`]: versioned token datasets: manifests, writer, reader with prefetch and cache.
//! - [`mixture`]: the mixture sampler (per-source weights, phases, exact resume).
//! - [`error`]: the crate's error type.
//!
//! S3 is configured with the usual AWS environment variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT` for a custom endpoint and
//! `AWS_ALLOW_HTTP=true` for a plain-http local server).

pub mod atomic;
pub mod checksum;
pub mod dataset;
pub mod error;
pub mod mixture;
pub mod parquet;
pub mod read;
pub mod store;
pub mod token_shard;

pub use error::StoreError;
pub use read::ObjectReader;
pub use store::{InputFile, InputSet, is_url, list_inputs, local_path, open_store};
