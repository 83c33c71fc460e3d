//! `refinery tokenizer train`, and the summary `refinery run` prints after tokenizing.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use shards::dataset::Split;

use super::Failure;
use crate::output::manifest::Manifest;
use crate::sql::text_table;
use crate::tokenize::tokenizer::trained_vocab_problem;
use crate::tokenize::{TokenizeSummary, documents, train_on_parts};

/// Tokenizer commands.
#[derive(Debug, clap::Subcommand)]
pub enum TokenizerCommand {
    /// Train a byte-level BPE on a dataset and write its tokenizer.json.
    Train {
        /// A run's output folder (its last dataset is used), a folder of Parquet documents or
        /// one Parquet file.
        dataset: PathBuf,
        /// Vocabulary size, special token included.
        #[arg(long)]
        vocab_size: usize,
        /// Where to write the tokenizer.
        #[arg(long, default_value = "tokenizer.json")]
        out: PathBuf,
        /// The end-of-document special token.
        #[arg(long, default_value = "<|endoftext|>")]
        eod: String,
        /// Train on at most this many bytes of text (default: all of it).
        #[arg(long)]
        max_bytes: Option<u64>,
    },
}

/// Runs a tokenizer command.
pub fn tokenizer(command: TokenizerCommand) -> Result<(), Failure> {
    let TokenizerCommand::Train {
        dataset,
        vocab_size,
        out,
        eod,
        max_bytes,
    } = command;
    let usage = trained_vocab_problem(vocab_size)
        .map(|why| format!("--vocab-size {why}"))
        .or_else(|| {
            eod.is_empty()
                .then(|| "--eod must name a token, not be empty".into())
        });
    if let Some(usage) = usage {
        return Err(Failure {
            error: anyhow!(usage),
            code: 2,
        });
    }
    super::local_file("--out", &out)?;
    let parts = dataset_parts(&dataset)?;
    let started = std::time::Instant::now();
    let json = train_on_parts(&parts, vocab_size, &eod, max_bytes)?;
    shards::atomic::write_file(&out, json.as_bytes())?;
    outln!(
        "Trained a {vocab_size}-id byte-level BPE on {} part(s) in {:.1} s: {}",
        parts.len(),
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

/// The Parquet parts a dataset argument names.
fn dataset_parts(path: &Path) -> Result<Vec<PathBuf>, Failure> {
    if path.join(crate::output::MANIFEST).is_file() {
        let manifest = Manifest::load(path).map_err(|e| anyhow!(e))?;
        let dataset = manifest
            .datasets
            .last()
            .ok_or_else(|| anyhow!("{} wrote no dataset", path.display()))?;
        return Ok(documents::parts(path, dataset)?);
    }
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let parts = documents::parts(
        path.parent().unwrap_or(Path::new(".")),
        &path.file_name().unwrap_or_default().to_string_lossy(),
    )?;
    if parts.is_empty() {
        return Err(anyhow!("no Parquet files in {}", path.display()).into());
    }
    Ok(parts)
}

/// Prints what a tokenize step did.
pub fn print_summary(s: &TokenizeSummary) {
    let m = &s.manifest;
    let (train, val) = (
        m.split_totals(Split::Train),
        m.split_totals(Split::Validation),
    );
    if s.reused {
        outln!(
            "Tokens: version {} already exists under {} (nothing written); latest -> {}",
            m.version,
            s.root,
            m.version
        );
    } else {
        let secs = s.elapsed.as_secs_f64().max(1e-9);
        let (mut bytes, mut tokens) = (s.text_bytes, train.tokens + val.tokens);
        let mut what = format!(
            "Tokenized {} documents ({:.1} MB, {tokens} tokens)",
            train.documents + val.documents,
            s.text_bytes as f64 / 1e6
        );
        if let Some(d) = s.dropped {
            what += &format!(
                " and counted the tokens of {} dropped documents ({:.1} MB, {} tokens; `count_dropped_tokens = false` skips this)",
                d.documents,
                d.text_bytes as f64 / 1e6,
                d.tokens
            );
            (bytes, tokens) = (bytes + d.text_bytes, tokens + d.tokens);
        }
        outln!(
            "{what} in {secs:.1} s ({:.1} MB/s, {:.0} tokens/s) into version {} under {}",
            bytes as f64 / 1e6 / secs,
            tokens as f64 / secs,
            m.version,
            s.root
        );
    }
    let rows: Vec<Vec<String>> = [("train", train), ("validation", val)]
        .iter()
        .map(|(name, t)| {
            let shards = m.shards.iter().filter(|s| s.split.name() == *name).count();
            vec![
                name.to_string(),
                t.documents.to_string(),
                t.tokens.to_string(),
                shards.to_string(),
            ]
        })
        .collect();
    outln!(
        "{}",
        text_table(&["split", "documents", "tokens", "shards"], &rows)
    );
}
