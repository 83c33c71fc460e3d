//! Training windows from a version: the mixture sampler decides which source and which window,
//! the shard reader fetches its tokens.
//!
//! A source's stream of `n` tokens holds `(n - 1) / window_tokens` windows; window `w` is tokens
//! `w * window_tokens .. (w + 1) * window_tokens + 1` (one extra token, the last target).

use super::manifest::Split;
use super::reader::ShardReader;
use crate::StoreError;
use crate::mixture::{Draw, MixtureSampler, MixtureState, Phase};

/// Why a window loader cannot be built or read.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// The schedule does not fit the version.
    #[error(transparent)]
    Mixture(#[from] crate::mixture::MixtureError),
    /// A weighted source has no stream in the split.
    #[error("source `{0}` has no tokens in this split")]
    UnknownSource(String),
    /// Reading failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One window and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The sampler's draw (source index, window index, epoch).
    pub draw: Draw,
    /// `window_tokens + 1` tokens.
    pub tokens: Vec<u32>,
}

/// Draws windows of one split by a mixture schedule.
pub struct WindowLoader {
    reader: ShardReader,
    split: Split,
    sources: Vec<String>,
    sampler: MixtureSampler,
    window_tokens: u64,
}

impl WindowLoader {
    /// A loader over `sources` (weights in `phases` follow this order) of `split`.
    pub fn new(
        reader: ShardReader,
        split: Split,
        sources: Vec<String>,
        phases: Vec<Phase>,
        window_tokens: u64,
        seed: u64,
    ) -> Result<Self, WindowError> {
        let window_tokens = window_tokens.max(1);
        let available = reader.sources(split);
        let mut windows = Vec::with_capacity(sources.len());
        for s in &sources {
            if !available.contains(s) {
                return Err(WindowError::UnknownSource(s.clone()));
            }
            windows.push(reader.stream_tokens(split, s).saturating_sub(1) / window_tokens);
        }
        let sampler = MixtureSampler::new(windows, phases, window_tokens, seed)?;
        Ok(Self {
            reader,
            split,
            sources,
            sampler,
            window_tokens,
        })
    }

    /// The next window.
    pub fn next_window(&mut self) -> Result<Window, WindowError> {
        let draw = self.sampler.next_draw();
        let start = draw.window * self.window_tokens;
        let tokens = self.reader.read(
            self.split,
            &self.sources[draw.source],
            start..start + self.window_tokens + 1,
        )?;
        Ok(Window { draw, tokens })
    }

    /// The reader (for the version's manifest and its other split).
    pub fn reader(&self) -> &ShardReader {
        &self.reader
    }

    /// The sources, in weight order.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// The sampler (tokens consumed and epochs per source, state to save).
    pub fn sampler(&self) -> &MixtureSampler {
        &self.sampler
    }

    /// Continues from a saved sampler state.
    pub fn restore(&mut self, state: MixtureState) {
        self.sampler.restore(state);
    }
}
