//! The `refinery` binary: a thin shell over the `pipeline` library. See `pipeline::cli`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    pipeline::arenas::limit();
    pipeline::cli::run(pipeline::cli::Cli::parse())
}
