//! Exact and MinHash-LSH near-duplicate detection, as pure functions over text and Arrow arrays.
//!
//! - [`exact`]: the 128-bit key of a text; equal keys are exact duplicates.
//! - [`shingle`]: a text's word or character n-grams, hashed with xxh3.
//! - [`datatrove`]: datatrove's MinHash shingles and hash functions, for identical decisions.
//! - [`minhash`]: MinHash signatures of shingle sets, their band keys for LSH, and the Jaccard
//!   estimate between two signatures.
//! - [`params`]: the LSH S-curve, and bands × rows chosen for a Jaccard threshold.
//! - [`jaccard`]: true Jaccard similarity of two shingle sets.
//! - [`union_find`]: the clustering of candidate pairs.
//! - [`arrays`]: the same functions over Arrow string arrays, in parallel.
//!
//! The crate knows nothing of stages or files: `pipeline` runs the passes and keeps the index.

pub mod arrays;
pub mod datatrove;
pub mod exact;
pub mod jaccard;
pub mod minhash;
mod minima;
pub mod params;
pub mod shingle;
pub mod union_find;
