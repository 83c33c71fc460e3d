//! The Candle transformer trainer: reads shard versions through `shards`, never `pipeline`.
//!
//! - [`config`]: the training config (TOML): data and mixture, model shape, optimizer, run.
//! - [`model`]: a GPT-2-style decoder with tied embeddings; [`ops`]: its numerics, built from
//!   ops that all record a backward pass; [`nodes`]: attention, linear layers and the
//!   embedding lookup as single graph nodes with hand-written backward passes
//!   ([`token_groups`]: the embedding gradient's summation order); [`cross_entropy`]: the fused
//!   loss;
//!   `cuda_ops` (with the `cuda` feature): fused CUDA kernels (attention softmax, layer norm,
//!   bias, GELU, loss, gradient norm, AdamW).
//! - [`optimizer`]: AdamW (f32 moments, decay on matrices only, global-norm clipping);
//!   [`schedule`]: warm-up and cosine decay; [`health`]: loss-spike guard.
//! - [`data`]: batches from the mixture sampler, held-out validation windows; [`eval`]:
//!   per-source validation loss.
//! - [`train`]: the loop; [`checkpoint`]: exact-resume checkpoints with a lineage record;
//!   [`metrics`]: the JSONL log; [`replay`]: the windows a checkpoint's run consumed, step by
//!   step, reconstructed from its seed and sampler state.
//! - [`memory`]: a CPU run's peak memory, estimated and checked before it starts.
//! - [`generate`]: sampling with temperature and top-k, keeping keys and values between tokens;
//!   [`device`]: CPU or CUDA, precision;
//!   [`rng`]: the seeded generator.

pub mod checkpoint;
pub mod config;
pub mod cross_entropy;
#[cfg(feature = "cuda")]
pub mod cuda_ops;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod generate;
pub mod health;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod nodes;
pub mod ops;
pub mod optimizer;
pub mod replay;
pub mod rng;
pub mod schedule;
pub mod token_groups;
pub mod train;

pub use checkpoint::Checkpoint;
pub use config::TrainConfig;
pub use error::{Result, TrainError};
pub use model::Gpt;
pub use train::{Event, Start, Summary, Trainer};

#[cfg(test)]
mod tests;
