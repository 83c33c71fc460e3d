//! The speed of `normalize` by itself: [`filters::normalize::normalize`] with the stage's default
//! options over the texts of JSONL files held in memory, on one thread, with no Arrow, Parquet or
//! executor around it. It times every text, then only the texts it rewrites (its slow path), each
//! the best of `--rounds` passes, and prints how many texts each path took. `bench/normalize.sh`
//! runs it over the corpus.
//!
//! ```sh
//! cargo run --release -p pipeline --example normalize_speed -- [--rounds N] FILE.jsonl.zst...
//! ```

use std::borrow::Cow;
use std::fs::File;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use filters::normalize::{NormalizeOptions, normalize};
use pipeline::ingest::decode::decoded;
use pipeline::ingest::record::parse_record;

/// `normalize` alone over the texts of JSONL files.
#[derive(Parser)]
struct Args {
    /// Passes over the texts; the fastest counts.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// JSONL files (`.jsonl`, `.jsonl.gz`, `.jsonl.zst`) with a `text` field.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let texts = read_texts(&args.files)?;
    let options = NormalizeOptions::default();
    let path = |text: &String| match normalize(text, &options) {
        Cow::Borrowed(out) if out.len() == text.len() => "unchanged",
        Cow::Borrowed(_) => "slice",
        Cow::Owned(_) => "rewritten",
    };
    println!("{:<10} {:>9} {:>9} {:>9}", "texts", "count", "MB", "MB/s");
    for kind in ["unchanged", "slice", "rewritten"] {
        let some: Vec<&String> = texts.iter().filter(|t| path(t) == kind).collect();
        let speed = (kind == "rewritten").then(|| best_speed(&some, &options, args.rounds));
        row(kind, &some, speed);
    }
    let all: Vec<&String> = texts.iter().collect();
    row("all", &all, Some(best_speed(&all, &options, args.rounds)));
    Ok(())
}

/// Prints a row: how many texts, their MB, and the speed when timed.
fn row(name: &str, texts: &[&String], speed: Option<f64>) {
    let mb = texts.iter().map(|t| t.len()).sum::<usize>() as f64 / 1e6;
    let speed = speed.map_or(String::new(), |s| format!("{s:.0}"));
    println!("{name:<10} {:>9} {mb:>9.1} {speed:>9}", texts.len());
}

/// MB of text per second normalised, the best of `rounds` passes.
fn best_speed(texts: &[&String], options: &NormalizeOptions, rounds: usize) -> f64 {
    let bytes = texts.iter().map(|t| t.len()).sum::<usize>() as f64;
    let best = (0..rounds.max(1))
        .map(|_| {
            let start = Instant::now();
            for text in texts {
                std::hint::black_box(normalize(std::hint::black_box(text), options));
            }
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    bytes / best / 1e6
}

/// The `text` field of every record of `files`, read with the ingest path's own reader and parser.
fn read_texts(files: &[PathBuf]) -> Result<Vec<String>> {
    let mut texts = Vec::new();
    let (mut line, mut buffer) = (Vec::new(), String::new());
    for path in files {
        let uri = path.display().to_string();
        let mut lines = decoded(File::open(path)?, &uri)?;
        for lineno in 1.. {
            line.clear();
            if lines.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            let text = std::str::from_utf8(&line)
                .with_context(|| format!("{uri}: line {lineno}"))?
                .trim_end();
            let record =
                parse_record(text, "text", None, &mut buffer).map_err(|(why, detail)| {
                    anyhow::anyhow!("{uri}: line {lineno}: {why}: {detail}")
                })?;
            texts.push(record.text.to_string());
        }
    }
    Ok(texts)
}
