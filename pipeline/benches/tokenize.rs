//! Encoding throughput of the tokenize step against the `tokenizers` crate's own
//! `encode_batch`, on the same texts in the same process (texts are loaded first, so neither
//! side pays for reading). Each side runs twice, alternating; the best run counts.
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
    let ours = TextTokenizer::from_json(&json, "<|endoftext|>", tokenizer).unwrap();
    let threads = rayon::current_num_threads();
    println!(
        "{} documents, {:.1} MB of text, {threads} threads",
        texts.len(),
        bytes as f64 / 1e6
    );

    let (mut best_raw, mut best_ours) = (f64::MAX, f64::MAX);
    let (mut raw_tokens, mut our_tokens) = (0, 0);
    for _ in 0..2 {
        let started = Instant::now();
        raw_tokens = 0;
        for batch in texts.chunks(BATCH) {
            let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
            let encoded = raw.encode_batch(refs, false).unwrap();
            raw_tokens += encoded.iter().map(|e| e.len()).sum::<usize>();
        }
        best_raw = best_raw.min(started.elapsed().as_secs_f64());

        let started = Instant::now();
        our_tokens = 0;
        for batch in texts.chunks(BATCH) {
            let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
            let encoded = ours.encode_documents(&refs).unwrap();
            // Minus the end-of-document token each document gains.
            our_tokens += encoded.iter().map(|e| e.len() - 1).sum::<usize>();
        }
        best_ours = best_ours.min(started.elapsed().as_secs_f64());
    }
    assert_eq!(
        raw_tokens, our_tokens,
        "both sides must produce the same tokens"
    );
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
