//! Document rules as pure functions: each sees one document's text and nothing else, does no IO,
//! and explains itself.
//!
//! - [`verdict`]: [`Verdict`], the outcome of one measured check (rule name, value, threshold).
//! - [`normalize`]: Unicode NFC, control characters and whitespace clean-up.
//! - [`length`]: minimum and maximum length in characters and words.
//!
//! Rule names (`length.min_chars`, ...) are stable keys stored in lineage tables: never reword
//! one, add a new one instead.

pub mod length;
pub mod normalize;
pub mod verdict;

pub use verdict::Verdict;
