//! End-to-end tests: the real `refinery` binary on real files, a real S3 server and the real
//! corpora in `../shared/data`. One test binary for the whole suite.

mod bad_input;
mod cli;
mod pipeline_run;
mod s3;
