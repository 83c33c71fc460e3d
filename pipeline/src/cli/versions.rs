//! `refinery versions list|show|diff ROOT`: the versions of a token dataset.

use anyhow::anyhow;
use shards::dataset::{DatasetRoot, Manifest, ReaderOptions, ShardReader, Split};
use tokio::runtime::Handle;

use super::{Failure, SqlMemory};
use crate::lineage::catalog::register_version_index;
use crate::sql::session::session;
use crate::sql::{OutputFormat, query, render, text_table};

/// What to show.
#[derive(Debug, clap::Subcommand)]
pub enum VersionsCommand {
    /// Every complete version, oldest first; `*` marks `latest`.
    List {
        /// The dataset root (a folder or s3://bucket/prefix).
        root: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// One version: provenance, tokenizer, per-source documents and tokens.
    Show {
        /// The dataset root.
        root: String,
        /// The version (default: latest).
        version: Option<String>,
        /// Output format (`json` prints the whole manifest).
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Read every shard and index of a version and check them against the manifest (checksums,
    /// headers, sizes); prints the read throughput.
    Verify {
        /// The dataset root.
        root: String,
        /// The version (default: latest).
        version: Option<String>,
        /// Keep fetched shards in this folder (for S3 roots), capped at --cache-bytes.
        #[arg(long)]
        cache_dir: Option<std::path::PathBuf>,
        /// Most bytes the cache folder holds.
        #[arg(long, default_value_t = 16 << 30)]
        cache_bytes: u64,
    },
    /// Per-source documents and tokens added, removed and changed from one version to another
    /// (a SQL join of their document indexes).
    Diff {
        /// The dataset root.
        root: String,
        /// The older version.
        from: String,
        /// The newer version (default: latest).
        to: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// The queries' memory budget.
        #[command(flatten)]
        memory: SqlMemory,
    },
}

/// Runs a `versions` subcommand.
pub fn versions(command: VersionsCommand, handle: &Handle) -> Result<(), Failure> {
    match command {
        VersionsCommand::List { root, format } => list(&root, format, handle),
        VersionsCommand::Show {
            root,
            version,
            format,
        } => show(&root, version.as_deref(), format, handle),
        VersionsCommand::Verify {
            root,
            version,
            cache_dir,
            cache_bytes,
        } => verify(&root, version.as_deref(), cache_dir, cache_bytes, handle),
        VersionsCommand::Diff {
            root,
            from,
            to,
            format,
            memory,
        } => diff(&root, &from, to.as_deref(), format, memory, handle),
    }
}

fn list(spec: &str, format: OutputFormat, handle: &Handle) -> Result<(), Failure> {
    let root = DatasetRoot::open(spec)?;
    let (manifests, latest) = handle.block_on(async {
        Ok::<_, shards::StoreError>((root.versions().await?, root.latest().await?))
    })?;
    if manifests.is_empty() {
        return Err(anyhow!("no versions under {}", root.uri()).into());
    }
    if format == OutputFormat::Json {
        let rows: Vec<_> = manifests
            .iter()
            .map(|m| {
                serde_json::json!({
                    "version": m.version,
                    "latest": latest.as_deref() == Some(m.version.as_str()),
                    "created": m.created,
                    "train": m.split_totals(Split::Train),
                    "validation": m.split_totals(Split::Validation),
                    "shards": m.shards.len(),
                    "parents": m.parents,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = manifests
        .iter()
        .map(|m| {
            let (train, val) = (
                m.split_totals(Split::Train),
                m.split_totals(Split::Validation),
            );
            let mark = if latest.as_deref() == Some(m.version.as_str()) {
                "*"
            } else {
                ""
            };
            vec![
                format!("{}{mark}", m.version),
                m.created.clone(),
                train.documents.to_string(),
                train.tokens.to_string(),
                val.documents.to_string(),
                val.tokens.to_string(),
                m.shards.len().to_string(),
                m.parents
                    .iter()
                    .map(|p| format!("{}:{}", p.kind, p.id))
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    let headers = [
        "version",
        "created",
        "train docs",
        "train tokens",
        "val docs",
        "val tokens",
        "shards",
        "parents",
    ];
    outln!("{}", text_table(&headers, &rows));
    Ok(())
}

fn show(
    spec: &str,
    version: Option<&str>,
    format: OutputFormat,
    handle: &Handle,
) -> Result<(), Failure> {
    let root = DatasetRoot::open(spec)?;
    let manifest = handle.block_on(async {
        let id = root.resolve(version).await?;
        root.manifest(&id).await
    })?;
    if format == OutputFormat::Json {
        outln!("{}", serde_json::to_string_pretty(&manifest)?);
        return Ok(());
    }
    outln!("version      {}", manifest.version);
    outln!(
        "created      {} by refinery {}",
        manifest.created,
        manifest.tool_version
    );
    for p in &manifest.parents {
        outln!("parent       {} {} ({})", p.kind, p.id, p.uri);
    }
    let t = &manifest.tokenizer;
    outln!(
        "tokenizer    {} ({} ids, {}-byte tokens, end of document {} = {})",
        t.hash,
        t.vocab_size,
        manifest.token_bytes,
        t.eod,
        t.eod_id
    );
    outln!("config hash  {}", manifest.config_hash);
    match manifest.validation_min_docs {
        0 => outln!("held out     {}", manifest.validation_fraction),
        n => outln!(
            "held out     {}, at least {n} documents per source",
            manifest.validation_fraction
        ),
    }
    outln!("{}", source_table(&manifest));
    Ok(())
}

fn source_table(m: &Manifest) -> String {
    let rows: Vec<Vec<String>> = m
        .sources
        .iter()
        .map(|(source, splits)| {
            let get = |s| splits.get(&s).copied().unwrap_or_default();
            let (train, val) = (get(Split::Train), get(Split::Validation));
            let shards = m.shards.iter().filter(|s| &s.source == source).count();
            vec![
                source.clone(),
                train.documents.to_string(),
                train.tokens.to_string(),
                val.documents.to_string(),
                val.tokens.to_string(),
                shards.to_string(),
            ]
        })
        .collect();
    text_table(
        &[
            "source",
            "train docs",
            "train tokens",
            "val docs",
            "val tokens",
            "shards",
        ],
        &rows,
    )
}

/// Per-source document and token changes, from the two versions' document indexes. The indexes
/// are matched by grouping their union on (source, id), not by a join: a grouping spills to disk
/// when it outgrows the memory budget, a hash join cannot.
const DIFF_SQL: &str = "
WITH u AS (SELECT source, id, tokens, 0 AS side FROM va UNION ALL SELECT source, id, tokens, 1 AS side FROM vb),
     d AS (SELECT source, id,
                  sum(CASE WHEN side = 0 THEN tokens END) AS tokens_a,
                  sum(CASE WHEN side = 1 THEN tokens END) AS tokens_b
           FROM u GROUP BY source, id)
SELECT source,
       count(tokens_a) AS docs_from,
       count(tokens_b) AS docs_to,
       sum(CASE WHEN tokens_a IS NULL THEN 1 ELSE 0 END) AS docs_added,
       sum(CASE WHEN tokens_b IS NULL THEN 1 ELSE 0 END) AS docs_removed,
       sum(CASE WHEN tokens_a <> tokens_b THEN 1 ELSE 0 END) AS docs_changed,
       coalesce(sum(tokens_a), 0) AS tokens_from,
       coalesce(sum(tokens_b), 0) AS tokens_to,
       CAST(coalesce(sum(tokens_b), 0) AS BIGINT) - CAST(coalesce(sum(tokens_a), 0) AS BIGINT) AS tokens_delta
FROM d
GROUP BY source
ORDER BY source";

fn diff(
    spec: &str,
    from: &str,
    to: Option<&str>,
    format: OutputFormat,
    memory: SqlMemory,
    handle: &Handle,
) -> Result<(), Failure> {
    let root = DatasetRoot::open(spec)?;
    let batches = handle.block_on(async {
        let to = root.resolve(to).await?;
        let from = root.resolve(Some(from)).await?;
        // Both must be complete versions.
        root.manifest(&from).await?;
        root.manifest(&to).await?;
        let ctx = session(memory.bytes);
        for (table, id) in [("va", &from), ("vb", &to)] {
            register_version_index(&ctx, &root, id, table).await?;
        }
        if format == OutputFormat::Table {
            outln!("From {from} to {to}:");
        }
        Ok::<_, anyhow::Error>(query(&ctx, DIFF_SQL).await?)
    })?;
    outln!("{}", render(&batches, format)?);
    Ok(())
}

/// Tokens read per request while verifying.
const VERIFY_CHUNK: u64 = 1 << 22;

fn verify(
    spec: &str,
    version: Option<&str>,
    cache_dir: Option<std::path::PathBuf>,
    cache_bytes: u64,
    handle: &Handle,
) -> Result<(), Failure> {
    let started = std::time::Instant::now();
    let options = ReaderOptions {
        cache_dir,
        cache_bytes,
        ..ReaderOptions::default()
    };
    let reader = ShardReader::open(spec, version, options)?;
    let root = DatasetRoot::open(spec)?;
    let manifest = reader.manifest();
    handle.block_on(async {
        let files = manifest
            .shards
            .iter()
            .map(|s| &s.index)
            .chain(&manifest.files);
        for file in files {
            let path = root.version_path(&manifest.version, &file.path);
            let bytes = root.get(&path).await?;
            shards::dataset::root::verify(&root.object_uri(&path), &bytes, &file.checksum)?;
        }
        Ok::<_, shards::StoreError>(())
    })?;
    let mut tokens = 0u64;
    for split in Split::ALL {
        for source in reader.sources(split) {
            let n = reader.stream_tokens(split, &source);
            let mut at = 0;
            while at < n {
                let end = (at + VERIFY_CHUNK).min(n);
                tokens += reader.read(split, &source, at..end)?.len() as u64;
                at = end;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    outln!(
        "Version {} is intact: {} shards, their indexes and {} other file(s) match the manifest; {tokens} tokens read in {secs:.2} s ({:.1} M tokens/s)",
        manifest.version,
        manifest.shards.len(),
        manifest.files.len(),
        tokens as f64 / secs / 1e6
    );
    Ok(())
}
