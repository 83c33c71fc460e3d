//! Document rules as pure functions: each sees one document's text and nothing else, does no IO,
//! and explains itself.
//!
//! - [`verdict`]: [`Verdict`], the outcome of one measured check (rule name, value, threshold).
//! - [`normalize`]: Unicode NFC, control characters and whitespace clean-up.
//! - [`length`]: minimum and maximum length in characters and words.
//! - [`words`]: spaCy-compatible English word splitting, shared by the quality rules.
//! - [`simplify`]: datatrove's text simplification, and the words its MinHash shingles.
//! - [`quality`]: Gopher quality and repetition, C4 and FineWeb rules.
//! - [`language`]: language identification.
//! - [`pii`]: redaction of e-mail addresses, IP addresses and phone numbers.
//! - [`contamination`]: benchmark n-gram overlap.
//!
//! Rule names (`length.min_chars`, ...) are stable keys stored in lineage tables: never reword
//! one, add a new one instead.

pub mod contamination;
pub mod language;
pub mod length;
pub mod normalize;
pub mod pii;
pub mod pytext;
pub mod quality;
pub mod simplify;
pub mod verdict;
pub mod words;

pub use verdict::Verdict;
