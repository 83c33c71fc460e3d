//! The published quality heuristics, each reproducing datatrove 0.10's filter of the same name
//! with its default thresholds:
//!
//! - [`gopher_quality`]: word counts, word length, symbols, bullets, stop words.
//! - [`gopher_repetition`]: repeated lines, paragraphs and n-grams.
//! - [`c4`]: C4's line removal and document rules; edits the text.
//! - [`fineweb`]: FineWeb's line punctuation, short lines, duplicate lines, newlines per word.
//!
//! Every rule returns a [`Verdict`] naming the rule (`gopher_quality.short_doc`, ...), the
//! measured value and the threshold. A rule whose threshold is `None` is off.

pub mod c4;
pub mod fineweb;
pub mod gopher_quality;
pub mod gopher_repetition;
mod sentences;

use crate::Verdict;

fn failed(rule: &'static str, value: f64, threshold: f64) -> Verdict {
    Verdict {
        rule,
        passed: false,
        value,
        threshold,
    }
}

/// Fails when `value` is below `min` (a rule that is off never fails).
fn at_least(rule: &'static str, value: f64, min: Option<f64>) -> Result<(), Verdict> {
    match min {
        Some(m) if value < m => Err(failed(rule, value, m)),
        _ => Ok(()),
    }
}

/// Fails when `value` is above `max`.
fn at_most(rule: &'static str, value: f64, max: Option<f64>) -> Result<(), Verdict> {
    match max {
        Some(m) if value > m => Err(failed(rule, value, m)),
        _ => Ok(()),
    }
}
