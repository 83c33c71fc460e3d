//! End-to-end tests: the real `refinery` binary on real files, a real S3 server and the real
//! corpora in `../shared/data`. One test binary for the whole suite.

// A test that cannot unwrap has failed: panicking with the value is the clearest report.
#![allow(clippy::unwrap_used)]

mod bad_input;
mod cli;
mod dedup;
mod filters;
mod lineage;
mod pipeline_run;
mod s3;
mod tokenize;
mod train;
