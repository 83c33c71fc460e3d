//! Encoding throughput of the tokenize step against the `tokenizers` crate's own
//! `encode_batch`, on the same texts in the same process (texts are loaded first, so neither
//! side pays for reading), batch by batch alternately, twice over; the faster pass of each
//! counts (Refinery's encoder is made anew for each pass, so that its piece caches start
//! empty). The first pass checks that both give the same ids to every document.
//!
//! Usage: `cargo bench -p pipeline --bench tokenize -- OUT_DIR DATASET TOKENIZER_JSON`
//! (a finished run's output folder and the dataset in it to read). `bench/tokenize.sh` runs it.

#![allow(clippy::unwrap_used)]

use std::time::Instant;

use pipeline::tokenize::{TextTokenizer, documents};

const BATCH: usize = 1024;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [out, dataset, tokenizer] = &args[..] else {
        eprintln!("usage: tokenize OUT_DIR DATASET TOKENIZER_JSON");
        std::process::exit(2);
    };
    let parts = documents::parts(std::path::Path::new(out), dataset).unwrap();
    let mut texts: Vec<String> = Vec::new();
    documents::for_each_batch(&parts, BATCH, |docs| {
        texts.extend(docs.texts.iter().flatten().map(str::to_string));
        Ok(())
    })
    .unwrap();
    let bytes: usize = texts.iter().map(String::len).sum();
    let json = std::fs::read(tokenizer).unwrap();
    let raw = tokenizers::Tokenizer::from_bytes(&json).unwrap();
    let threads = rayon::current_num_threads();
    println!(
        "{} documents, {:.1} MB of text, {threads} threads",
        texts.len(),
        bytes as f64 / 1e6
    );

    let (mut best_raw, mut best_ours) = (f64::MAX, f64::MAX);
    let mut raw_tokens = 0;
    for round in 0..2 {
        // A new encoder each pass: its piece caches start empty, as in a run.
        let ours = TextTokenizer::from_json(&json, "<|endoftext|>", tokenizer).unwrap();
        let (mut raw_secs, mut our_secs) = (0.0, 0.0);
        raw_tokens = 0;
        for batch in texts.chunks(BATCH) {
            let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
            let started = Instant::now();
            let raw_ids = raw.encode_batch(refs.clone(), false).unwrap();
            raw_secs += started.elapsed().as_secs_f64();
            let started = Instant::now();
            let our_ids = ours.encode_documents(&refs).unwrap();
            our_secs += started.elapsed().as_secs_f64();
            raw_tokens += raw_ids.iter().map(|e| e.len()).sum::<usize>();
            if round == 0 {
                for (theirs, ours) in raw_ids.iter().zip(&our_ids) {
                    // Ours end with the end-of-document token.
                    assert_eq!(theirs.get_ids(), &ours[..ours.len() - 1], "same ids");
                }
            }
        }
        best_raw = best_raw.min(raw_secs);
        best_ours = best_ours.min(our_secs);
    }
    let row = |name: &str, secs: f64| {
        println!(
            "{name:<28} {secs:8.2} s {:8.2} MB/s {:10.0} tokens/s",
            bytes as f64 / secs / 1e6,
            raw_tokens as f64 / secs
        );
    };
    row("tokenizers encode_batch", best_raw);
    row("refinery encode_documents", best_ours);
    println!(
        "refinery / encode_batch throughput: {:.2}",
        best_raw / best_ours
    );
}
