//! `refinery lineage trace ID`: everything that happened to one record, from its source bytes
//! to the training steps that could have read it.
//!
//! Every fact but the training steps comes from a SQL query over the lineage tables (listed in
//! [`Trace::queries`], rerunnable with `refinery query`); the steps come from replaying the
//! mixture sampler of each checkpoint (see [`trainer::replay`]), checked against its saved state.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use shards::dataset::{ReaderOptions, ShardReader, Split};
use tokio::runtime::Handle;

use super::catalog::{Lineage, SHARD_DOCS};
use super::{LineageError, training};
use crate::output::manifest::Manifest as RunManifest;
use crate::sql::{self, OutputFormat};
use crate::tokenize::TextTokenizer;

/// What happened to one record.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// Its `documents` row: id, source, uri, locator, content hash, bytes.
    pub document: Value,
    /// Its `decisions` rows, stage by stage.
    pub decisions: Vec<Value>,
    /// Its `edits` rows (what modifying stages changed).
    pub edits: Vec<Value>,
    /// `kept` when it reached the run's output, else `dropped`.
    pub outcome: String,
    /// For a dropped duplicate: the `documents` row of the document kept in its place.
    pub survivor: Option<Value>,
    /// The token version searched, if the lineage has one.
    pub version: Option<String>,
    /// Its pieces in the token version (`shard_docs` rows).
    pub shards: Vec<Value>,
    /// Its tokens as a range of its source's stream, when tokenized.
    pub tokens: Option<TokenRange>,
    /// Per checkpoint: the training steps that read any of its tokens.
    pub training: Vec<CheckpointUse>,
    /// The SQL behind every fact above.
    pub queries: Vec<String>,
}

/// A document's tokens in its source's stream.
#[derive(Debug, Clone, Serialize)]
pub struct TokenRange {
    /// The version.
    pub version: String,
    /// `train` or `validation`.
    pub split: String,
    /// The stream (the source).
    pub source: String,
    /// First token.
    pub start: u64,
    /// One past the last (its end-of-document token included).
    pub end: u64,
    /// The range decoded with the version's tokenizer equals the document's output text.
    pub decodes_to_text: Option<bool>,
}

/// How one checkpoint's training used a document.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointUse {
    /// The checkpoint folder.
    pub checkpoint: String,
    /// Its step.
    pub step: u64,
    /// Steps (up to this checkpoint) whose windows overlap the document's tokens.
    pub steps: Vec<u64>,
    /// Windows that overlap it.
    pub windows: u64,
    /// The replay reached the saved sampler state of the latest checkpoint.
    pub replay_verified: bool,
}

/// Traces `id` (a document id, or `file:line` / `file:row` matched against the end of the
/// source uri and the locator) through `lineage`.
pub fn trace(
    id: &str,
    lineage: &Lineage,
    memory_budget: usize,
    handle: &Handle,
) -> Result<Trace, LineageError> {
    let run = lineage.run.as_ref().ok_or_else(|| {
        LineageError::NotFound(
            "no run output folder found for this lineage (the version's parent run is gone?)"
                .into(),
        )
    })?;
    let manifest = RunManifest::load(run).map_err(LineageError::NotFound)?;
    let ctx = handle.block_on(lineage.context(memory_budget))?;
    let tables: Vec<String> = lineage
        .tables()?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let mut queries = Vec::new();
    // Asks `sql` when its table exists (a run without stages has no `decisions`).
    let mut ask = |table: &str, sql: String| -> Result<Vec<Value>, LineageError> {
        if !tables.iter().any(|t| t == table) {
            return Ok(Vec::new());
        }
        let rows = handle.block_on(rows(&ctx, &sql))?;
        queries.push(sql);
        Ok(rows)
    };
    let documents = ask("documents", document_sql(id))?;
    let document = match documents.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(LineageError::NotFound(format!(
                "no document `{id}` in {} (give a document id, 32 hex digits, or FILE:LINE such as `wiki.jsonl:12`; FILE is matched against the end of the input's path)",
                run.display()
            )));
        }
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|d| format!("{} ({} {})", d["id"], d["uri"], d["locator"]))
                .collect();
            return Err(LineageError::NotFound(format!(
                "`{id}` matches {} documents: {}",
                many.len(),
                list.join(", ")
            )));
        }
    };
    let doc_id = document["id"].as_str().unwrap_or_default().to_string();
    let q = quote(&doc_id);
    let decisions = ask(
        "decisions",
        format!(
            "SELECT stage, stage_index, decision, rule, value, threshold, duplicate_of, \"cluster\", bytes_before, bytes_after FROM decisions WHERE id = {q} ORDER BY stage_index"
        ),
    )?;
    let edits = ask(
        "edits",
        format!(
            "SELECT stage, rule, bytes_before, bytes_after, detail FROM edits WHERE id = {q} ORDER BY stage, rule"
        ),
    )?;
    let dropped = decisions.iter().any(|d| d["decision"] == "dropped");
    let survivor = match decisions.iter().find_map(|d| d["duplicate_of"].as_str()) {
        Some(s) => ask(
            "documents",
            format!(
                "SELECT id, source, uri, locator FROM documents WHERE id = {}",
                quote(s)
            ),
        )?
        .into_iter()
        .next(),
        None => None,
    };
    let shards = ask(
        SHARD_DOCS,
        format!(
            "SELECT version, split, source, shard, \"offset\", tokens, stream_offset, continued FROM {SHARD_DOCS} WHERE id = {q} ORDER BY split, stream_offset"
        ),
    )?;
    let mut tokens = token_range(&shards);
    if let (Some(range), Some(version), Some(last)) =
        (&mut tokens, &lineage.version, manifest.datasets.last())
    {
        let text = ask(last, format!("SELECT text FROM \"{last}\" WHERE id = {q}"))?;
        if let Some(text) = text.first().and_then(|t| t["text"].as_str()) {
            range.decodes_to_text = Some(decode(version, range)? == text);
        }
    }
    let training = match (&tokens, &lineage.train) {
        (Some(range), Some(train)) if range.split == "train" => uses(train, range)?,
        _ => Vec::new(),
    };
    Ok(Trace {
        document,
        decisions,
        edits,
        outcome: if dropped { "dropped" } else { "kept" }.into(),
        survivor,
        version: lineage.version.as_ref().map(|v| v.id.clone()),
        shards,
        tokens,
        training,
        queries,
    })
}

/// Runs `sql` and returns its rows as JSON objects.
pub async fn rows(
    ctx: &datafusion::prelude::SessionContext,
    sql: &str,
) -> Result<Vec<Value>, LineageError> {
    let batches = sql::query(ctx, sql).await?;
    let json = sql::render(&batches, OutputFormat::Json)?;
    Ok(serde_json::from_str(&json).unwrap_or_default())
}

/// A SQL string literal.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn document_sql(id: &str) -> String {
    let columns = "SELECT id, source, uri, locator, content_hash, bytes FROM documents";
    let is_id = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    match id.rsplit_once(':') {
        Some((file, locator)) if !is_id && !file.is_empty() => {
            let file = file.trim_start_matches("file://");
            format!(
                "{columns} WHERE locator = {} AND (uri = {} OR uri = {} OR uri LIKE {}) ORDER BY id",
                quote(locator),
                quote(file),
                quote(&format!("file://{file}")),
                quote(&format!("%/{}", file.trim_start_matches('/')))
            )
        }
        _ => format!("{columns} WHERE id = {}", quote(id)),
    }
}

fn token_range(shards: &[Value]) -> Option<TokenRange> {
    let first = shards.first()?;
    let split = first["split"].as_str()?.to_string();
    let start = first["stream_offset"].as_u64()?;
    let tokens: u64 = shards
        .iter()
        .filter(|s| s["split"].as_str() == Some(&split))
        .filter_map(|s| s["tokens"].as_u64())
        .sum();
    Some(TokenRange {
        version: first["version"].as_str()?.to_string(),
        split,
        source: first["source"].as_str()?.to_string(),
        start,
        end: start + tokens,
        decodes_to_text: None,
    })
}

/// The text of a token range (its end-of-document token dropped).
fn decode(
    version: &super::catalog::VersionRef,
    range: &TokenRange,
) -> Result<String, LineageError> {
    let reader = ShardReader::open(
        version.root.uri(),
        Some(&version.id),
        ReaderOptions::default(),
    )?;
    let split = if range.split == "train" {
        Split::Train
    } else {
        Split::Validation
    };
    let ids = reader.read(split, &range.source, range.start..range.end)?;
    let json = reader.tokenizer_json()?.ok_or_else(|| {
        LineageError::NotFound(format!(
            "version {} does not store its tokenizer",
            version.id
        ))
    })?;
    let info = &version.manifest.tokenizer;
    let tokenizer = TextTokenizer::from_json(&json, &info.eod, "the version's tokenizer.json")
        .map_err(|e| LineageError::NotFound(e.to_string()))?;
    let body: Vec<u32> = ids.into_iter().filter(|&t| t != info.eod_id).collect();
    tokenizer
        .decode(&body)
        .map_err(|e| LineageError::NotFound(e.to_string()))
}

/// Replays the training of `train`'s latest checkpoint and finds the steps whose windows overlap
/// `range`, reported for every checkpoint.
fn uses(train: &std::path::Path, range: &TokenRange) -> Result<Vec<CheckpointUse>, LineageError> {
    let checkpoints = training::checkpoints(train)?;
    let Some(latest) = checkpoints.last() else {
        return Ok(Vec::new());
    };
    if latest.lineage.version != range.version {
        return Ok(Vec::new());
    }
    let reader = trainer::data::open_reader(&latest.config.data, Some(&latest.lineage.version))?;
    let mut replay = trainer::replay::Replay::new(latest, reader)?;
    let source = replay.sources().iter().position(|s| *s == range.source);
    let mut hits: BTreeMap<u64, u64> = BTreeMap::new();
    for w in replay.by_ref() {
        if Some(w.source) == source && w.start < range.end && range.start < w.end {
            *hits.entry(w.step).or_default() += 1;
        }
    }
    let verified = replay.finish();
    Ok(checkpoints
        .iter()
        .map(|c| {
            let steps: Vec<u64> = hits
                .keys()
                .copied()
                .filter(|s| *s <= c.state.step)
                .collect();
            CheckpointUse {
                checkpoint: c.path.display().to_string(),
                step: c.state.step,
                windows: hits.range(..=c.state.step).map(|(_, n)| n).sum(),
                steps,
                replay_verified: verified,
            }
        })
        .collect())
}
