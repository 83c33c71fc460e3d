//! Versioned token datasets: what a trainer reads and what an auditor pins a model to.
//!
//! ```text
//! <root>/latest                                       id of the newest complete version
//! <root>/versions/<id>/manifest.json                  written last (see [`manifest`])
//! <root>/versions/<id>/<split>/<source>/000000.bin    token shards (llm.c layout)
//! <root>/versions/<id>/<split>/<source>/000000.index.parquet   their document indexes
//! ```
//!
//! `<split>` is `train` or `validation`. A version id is derived from content (tokenize
//! settings, tokenizer, inputs), so writing the same job twice names the same version.
//!
//! - [`root`]: a dataset root in any store: versions, manifests, the `latest` ref, uploads.
//! - [`manifest`]: the manifest's structure.
//! - [`index`]: the Parquet document index beside each shard.
//! - [`writer`]: writing a version (shards, then manifest, then `latest`).
//! - [`reader`]: reading token ranges of a version, with prefetch, checksums and a cache.
//! - [`windows`]: training windows drawn by the mixture sampler and read by the reader.
//! - [`cache`]: the local disk cache of fetched shards.

pub mod cache;
pub mod index;
pub mod manifest;
pub mod reader;
pub mod root;
pub mod windows;
pub mod writer;

pub use manifest::{Manifest, Parent, ShardEntry, Split, TokenizerInfo, Totals};
pub use reader::{ReaderOptions, ShardReader};
pub use root::DatasetRoot;
pub use windows::{Window, WindowLoader};
pub use writer::{VersionInfo, VersionWriter};
#[cfg(test)]
mod tests;
