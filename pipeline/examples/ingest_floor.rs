//! The floor under the ingest benchmark: Refinery's own building blocks (the decompressing
//! reader, the record parser, the document batch builder, optionally the `normalize` stage, and the
//! Parquet part writer) called in one plain loop on one thread. There is no executor: no
//! pipelining threads or channels, no lineage tables, quarantine, manifest or progress, and a bad
//! record stops the run. `bench/ingest.sh` times it beside `refinery run` on the same files, so
//! that what the executor adds and what the blocks cost by themselves can be told apart.
//!
//! ```sh
//! cargo run --release -p pipeline --example ingest_floor -- OUT_DIR [--normalize] FILE.jsonl.zst...
//! ```
//! Writes `OUT_DIR/NNNN.parquet` per input file (in the document schema, with the codec `refinery
//! run` uses by default) and prints the documents and bytes read.

use std::fs::File;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use pipeline::ingest::batch::DocBatchBuilder;
use pipeline::ingest::decode::decoded;
use pipeline::ingest::record::parse_record;
use pipeline::output::part::PartWriter;
use pipeline::schema;
use pipeline::stage::Stage;
use pipeline::stages::normalize::NormalizeConfig;

/// Documents per batch: `[run] batch_size`'s default.
const BATCH: usize = 1024;

/// Refinery's ingest blocks in one plain loop on one thread.
#[derive(Parser)]
struct Args {
    /// Folder for the Parquet parts (`NNNN.parquet`, one per input file).
    out: PathBuf,
    /// Run the `normalize` stage (default options) over each batch.
    #[arg(long)]
    normalize: bool,
    /// JSONL files (`.jsonl`, `.jsonl.gz`, `.jsonl.zst`) with a `text` field.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    // One thread, as `refinery run --threads 1` has: `normalize` splits its batch over rayon's
    // pool, whose idle workers would otherwise spin on the other core.
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()?;
    let stage = args
        .normalize
        .then(|| NormalizeConfig::default().build("normalize".into()));
    let (mut docs, mut bytes) = (0u64, 0u64);
    for (i, file) in args.files.iter().enumerate() {
        let (d, b) = ingest_file(
            file,
            &args.out,
            &format!("{i:04}.parquet"),
            stage.as_ref().map(|s| s as &dyn Stage),
        )
        .with_context(|| format!("reading {}", file.display()))?;
        docs += d;
        bytes += b;
    }
    println!("{docs} documents, {bytes} bytes of JSONL");
    Ok(())
}

/// Reads one JSONL file into `out/relative`; returns the documents and the bytes of JSONL read.
fn ingest_file(
    path: &Path,
    out: &Path,
    relative: &str,
    stage: Option<&dyn Stage>,
) -> Result<(u64, u64)> {
    let uri = path.display().to_string();
    let mut lines = decoded(File::open(path)?, &uri)?;
    let mut writer = PartWriter::create(out, relative, schema::documents())?;
    let mut builder = DocBatchBuilder::default();
    let (mut line, mut text_buffer) = (Vec::new(), String::new());
    let (mut lineno, mut bytes) = (0u64, 0u64);
    let mut flush = |builder: &mut DocBatchBuilder| -> Result<()> {
        let batch = builder.finish()?;
        let batch = match stage {
            Some(stage) => stage.process(&batch)?.kept,
            None => batch,
        };
        Ok(writer.write(&batch)?)
    };
    loop {
        line.clear();
        let n = lines
            .read_until(b'\n', &mut line)
            .with_context(|| format!("line {}", lineno + 1))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        lineno += 1;
        let text = std::str::from_utf8(&line)
            .with_context(|| format!("line {lineno}"))?
            .trim_end();
        let record = parse_record(text, "text", None, &mut text_buffer)
            .map_err(|(why, detail)| anyhow::anyhow!("line {lineno}: {why}: {detail}"))?;
        let locator = lineno.to_string();
        builder.push("floor", &uri, &locator, None, record.text, &record.meta);
        if builder.rows() == BATCH {
            flush(&mut builder)?;
        }
    }
    if builder.rows() > 0 {
        flush(&mut builder)?;
    }
    writer.finish()?;
    Ok((lineno, bytes))
}
