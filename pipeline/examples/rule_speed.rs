//! The speed of the per-text rules by themselves: `normalize`, the word splitter the word-based
//! filters share, the quality filters, and the `minhash_dedup` stage's work per text (shingles,
//! signature, band keys) in both its schemes, each with its stage's default settings over the
//! texts of JSONL files held in memory, on one thread, with no Arrow, Parquet or executor around
//! it. Each rule's speed is the best of `--rounds` passes. `normalize` also gets a row per path
//! it takes (text unchanged, sliced, rewritten) and its speed over the texts it rewrites (its
//! slow path). The word splitter's row comes with a digest of where every word lies, and each
//! MinHash row with a digest of every band key, to check that a change keeps the words and
//! signatures. `bench/rules.sh` runs it over the corpus.
//!
//! ```sh
//! cargo run --release -p pipeline --example rule_speed -- [--rounds N] [--only RULE,...] FILE.jsonl.zst...
//! ```

use std::borrow::Cow;
use std::cell::RefCell;
use std::fs::File;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use dedup::minhash::MinHasher;
use dedup::shingle::{Shingling, shingle_hashes};
use filters::normalize::{NormalizeOptions, normalize};
use filters::quality::c4::C4;
use filters::quality::fineweb::FineWeb;
use filters::quality::gopher_quality::GopherQuality;
use filters::quality::gopher_repetition::GopherRepetition;
use filters::words::for_each_word;
use pipeline::ingest::decode::decoded;
use pipeline::ingest::record::parse_record;
use pipeline::stages::minhash_dedup::DATATROVE_WORDS;
use xxhash_rust::xxh3::Xxh3;

/// Rules by themselves over the texts of JSONL files.
#[derive(Parser)]
struct Args {
    /// Passes over the texts; the fastest counts.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// The rules to time, of normalize, words, gopher_repetition, gopher_quality, c4, fineweb,
    /// minhash, minhash_datatrove (default: all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// JSONL files (`.jsonl`, `.jsonl.gz`, `.jsonl.zst`) with a `text` field.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// A rule as timed: what it counts (per text: 1 if it changes or drops the text; words for the
/// splitter), and the name of that count.
struct Rule {
    name: &'static str,
    counts: &'static str,
    apply: Box<dyn Fn(&str) -> usize>,
}

fn rules() -> Vec<Rule> {
    let options = NormalizeOptions::default();
    let (repetition, quality) = (GopherRepetition::default(), GopherQuality::default());
    let (c4, fineweb) = (C4::default(), FineWeb::default());
    let rule = |name, counts, apply: Box<dyn Fn(&str) -> usize>| Rule {
        name,
        counts,
        apply,
    };
    vec![
        rule(
            "normalize",
            "changed",
            Box::new(move |t| match normalize(t, &options) {
                Cow::Borrowed(out) => usize::from(out.len() != t.len()),
                Cow::Owned(_) => 1,
            }),
        ),
        rule(
            "words",
            "words",
            Box::new(|t| {
                let mut words = 0;
                for_each_word(t, |_| words += 1);
                words
            }),
        ),
        rule(
            "gopher_repetition",
            "dropped",
            Box::new(move |t| usize::from(repetition.check(t).is_some())),
        ),
        rule(
            "gopher_quality",
            "dropped",
            Box::new(move |t| usize::from(quality.check(t).is_some())),
        ),
        rule(
            "c4",
            "dropped",
            Box::new(move |t| usize::from(c4.apply(t).verdict.is_some())),
        ),
        rule(
            "fineweb",
            "dropped",
            Box::new(move |t| usize::from(fineweb.check(t).is_some())),
        ),
        minhash_rule("minhash"),
        minhash_rule("minhash_datatrove"),
    ]
}

/// The `minhash_dedup` stage's defaults (5-word shingles, 14 bands × 8 rows, seed 1) in the
/// scheme the row `name` times: Refinery's, or datatrove's for `minhash_datatrove`.
fn minhash_scheme(name: &str) -> (Shingling, MinHasher) {
    match name {
        "minhash_datatrove" => (
            Shingling::JoinedWords(5, DATATROVE_WORDS),
            MinHasher::datatrove(14, 8, 1),
        ),
        _ => (Shingling::Words(5), MinHasher::new(14, 8, 1)),
    }
}

/// The row `name` of [`minhash_scheme`]: counts the texts with a signature.
fn minhash_rule(name: &'static str) -> Rule {
    let (shingling, hasher) = minhash_scheme(name);
    let shingles = RefCell::new(Vec::new());
    Rule {
        name,
        counts: "signed",
        apply: Box::new(move |t| {
            let keys = band_keys(t, shingling, &hasher, &mut shingles.borrow_mut());
            usize::from(std::hint::black_box(keys).is_some())
        }),
    }
}

/// The `minhash_dedup` stage's first pass over one text: shingle hashes (into `shingles`),
/// signature, band keys; `None` for a text without shingles.
fn band_keys(
    text: &str,
    shingling: Shingling,
    hasher: &MinHasher,
    shingles: &mut Vec<u64>,
) -> Option<Vec<u64>> {
    shingles.clear();
    shingle_hashes(text, shingling, shingles);
    hasher.signature(shingles).map(|s| hasher.band_keys(&s))
}

/// A hash of every band key of every text, in the scheme of the row `name`: equal digests
/// before and after a change to shingling or signatures mean the same candidate pairs.
fn band_key_digest(texts: &[&str], name: &str) -> u64 {
    let (shingling, hasher) = minhash_scheme(name);
    let (mut digest, mut shingles) = (Xxh3::new(), Vec::new());
    for text in texts {
        for key in band_keys(text, shingling, &hasher, &mut shingles).unwrap_or_default() {
            digest.update(&key.to_le_bytes());
        }
        digest.update(&u64::MAX.to_le_bytes());
    }
    digest.digest()
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rules: Vec<Rule> = rules()
        .into_iter()
        .filter(|r| args.only.is_empty() || args.only.iter().any(|o| o == r.name))
        .collect();
    if let Some(unknown) = args
        .only
        .iter()
        .find(|o| !rules.iter().any(|r| r.name == *o))
    {
        bail!("unknown rule {unknown:?}: see --help for the rules");
    }
    let texts = read_texts(&args.files)?;
    let all: Vec<&str> = texts.iter().map(String::as_str).collect();
    println!(
        "{:<20} {:>9} {:>9} {:>9}   count",
        "rule", "texts", "MB", "MB/s"
    );
    for rule in &rules {
        if rule.name == "normalize" {
            normalize_paths(&all, rule, args.rounds);
        }
        let (speed, count) = best_speed(&all, rule, args.rounds);
        row(rule.name, &all, speed, &format!("{count} {}", rule.counts));
        if rule.name == "words" {
            println!("{:<20} digest {:016x}", "", word_digest(&all));
        }
        if rule.name.starts_with("minhash") {
            println!(
                "{:<20} digest {:016x}",
                "",
                band_key_digest(&all, rule.name)
            );
        }
    }
    Ok(())
}

/// A hash of every word's position (byte offset and length in its text), text by text: equal
/// digests before and after a change to the splitter mean it splits the corpus the same way.
fn word_digest(texts: &[&str]) -> u64 {
    let mut hasher = Xxh3::new();
    for text in texts {
        for_each_word(text, |w| {
            let offset = w.as_ptr() as usize - text.as_ptr() as usize;
            hasher.update(&(offset as u64).to_le_bytes());
            hasher.update(&(w.len() as u64).to_le_bytes());
        });
        hasher.update(&u64::MAX.to_le_bytes());
    }
    hasher.digest()
}

/// A row per path `normalize` takes, timing the texts it rewrites.
fn normalize_paths(texts: &[&str], rule: &Rule, rounds: usize) {
    let options = NormalizeOptions::default();
    let path = |text: &str| match normalize(text, &options) {
        Cow::Borrowed(out) if out.len() == text.len() => "unchanged",
        Cow::Borrowed(_) => "slice",
        Cow::Owned(_) => "rewritten",
    };
    for kind in ["unchanged", "slice", "rewritten"] {
        let some: Vec<&str> = texts.iter().copied().filter(|t| path(t) == kind).collect();
        let speed = (kind == "rewritten").then(|| best_speed(&some, rule, rounds).0);
        let name = format!("normalize: {kind}");
        row(&name, &some, speed.unwrap_or(f64::NAN), "");
    }
}

/// Prints a row: how many texts, their MB, the speed (blank when not timed) and the count.
fn row(name: &str, texts: &[&str], speed: f64, count: &str) {
    let mb = texts.iter().map(|t| t.len()).sum::<usize>() as f64 / 1e6;
    let speed = if speed.is_nan() {
        String::new()
    } else {
        format!("{speed:.1}")
    };
    println!(
        "{name:<20} {:>9} {mb:>9.1} {speed:>9}   {count}",
        texts.len()
    );
}

/// MB of text per second through `rule`, the best of `rounds` passes, and its count over them.
fn best_speed(texts: &[&str], rule: &Rule, rounds: usize) -> (f64, usize) {
    let bytes = texts.iter().map(|t| t.len()).sum::<usize>() as f64;
    let mut count = 0;
    let best = (0..rounds.max(1))
        .map(|_| {
            let start = Instant::now();
            count = texts
                .iter()
                .map(|t| (rule.apply)(std::hint::black_box(t)))
                .sum();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    (bytes / best / 1e6, count)
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
