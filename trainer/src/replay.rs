//! Replaying a checkpoint's data order: which window of which source every step consumed,
//! reconstructed from the seed, the schedule and the version (no token is read).
//!
//! The mixture sampler is counter-based, so replaying it from its initial state for as many
//! draws as the checkpoint's saved sampler state records gives exactly the windows the run
//! drew; [`Replay::finish`] checks that the replay ends in the saved state.

use shards::dataset::{ShardReader, Split, WindowLoader};
use shards::mixture::MixtureSampler;

use crate::checkpoint::Checkpoint;
use crate::data::schedule;
use crate::error::{Result, TrainError};

/// One consumed window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayedWindow {
    /// The update that consumed it (1-based).
    pub step: u64,
    /// Index of the source in [`Replay::sources`].
    pub source: usize,
    /// First token of the window in the source's training stream.
    pub start: u64,
    /// One past its last token (the last target included).
    pub end: u64,
}

/// The windows a checkpoint's run consumed, in order.
pub struct Replay {
    sources: Vec<String>,
    sampler: MixtureSampler,
    seq_len: u64,
    per_step: u64,
    drawn: u64,
    total: u64,
    expected: shards::mixture::MixtureState,
}

impl Replay {
    /// Starts the replay of `checkpoint`'s run over `reader` (its version).
    pub fn new(checkpoint: &Checkpoint, reader: ShardReader) -> Result<Self> {
        if reader.version() != checkpoint.lineage.version {
            return Err(TrainError::Checkpoint {
                path: checkpoint.path.clone(),
                message: format!(
                    "trained on version {}, not {}",
                    checkpoint.lineage.version,
                    reader.version()
                ),
            });
        }
        let (sources, phases) = schedule(&checkpoint.config, &reader)?;
        let seq_len = checkpoint.lineage.seq_len as u64;
        let loader = WindowLoader::new(
            reader,
            Split::Train,
            sources.clone(),
            phases,
            seq_len,
            checkpoint.config.train.seed,
        )?;
        let train = &checkpoint.config.train;
        Ok(Self {
            sources,
            sampler: loader.sampler().clone(),
            seq_len,
            per_step: (train.batch_size * train.grad_accum).max(1) as u64,
            drawn: 0,
            total: checkpoint.state.sampler.drawn.iter().sum(),
            expected: checkpoint.state.sampler.clone(),
        })
    }

    /// The sources, in the order [`ReplayedWindow::source`] indexes.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// Whether the replay, run to its end, reached the checkpoint's saved sampler state.
    pub fn finish(mut self) -> bool {
        for _ in self.by_ref() {}
        self.sampler.state() == &self.expected
    }
}

impl Iterator for Replay {
    type Item = ReplayedWindow;

    fn next(&mut self) -> Option<ReplayedWindow> {
        if self.drawn >= self.total {
            return None;
        }
        let draw = self.sampler.next_draw();
        let step = self.drawn / self.per_step + 1;
        self.drawn += 1;
        let start = draw.window * self.seq_len;
        Some(ReplayedWindow {
            step,
            source: draw.source,
            start,
            end: start + self.seq_len + 1,
        })
    }
}
