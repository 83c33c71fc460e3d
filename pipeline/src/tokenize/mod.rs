//! The `tokenize` step: a run's kept documents into a versioned token dataset.
//!
//! ```toml
//! [tokenize]
//! root = "tokens"                 # dataset root: a folder or s3://bucket/prefix
//! tokenizer = "tokenizer.json"    # a Hugging Face tokenizer.json (path or s3://) ...
//! # train_vocab_size = 8192       # ... or train a byte-level BPE on the run's output first
//! # dataset = "pii"               # which written dataset to tokenize (default: the last one)
//! # eod = "<|endoftext|>"         # end-of-document token, written after every document
//! # shard_tokens = 16777216       # tokens per shard (the last of each stream is shorter)
//! # validation_fraction = 0.01    # share of each source held out, chosen by hashing the doc id
//! # validation_min_docs = 0       # and at least this many per source (at most half of it)
//! # count_dropped_tokens = true   # also count the tokens of dropped documents (lineage funnel)
//! ```
//!
//! It runs after the stages, over the run's output in a fixed order (parts by name, rows in
//! order), encoding each batch in parallel. The version id is derived from the settings, the
//! tokenizer's bytes and the run manifest, so rerunning the same job finds its version and
//! writes nothing. Memory: one open shard per (split, source) stream plus
//! [`shards::dataset::writer::MAX_UPLOADS`] shards uploading, and `validation_min_docs` ids
//! per source when that is set (see [`split`]).
//!
//! - [`tokenizer`]: loading, training and parallel encoding.
//! - [`documents`]: a run's documents in a fixed order.
//! - [`dropped`]: token counts of the documents the stages dropped.
//! - [`split`]: which documents are held out for validation.
//! - [`pieces`]: encoding texts piece by piece, cut by [`cuts`] and at [`added`] tokens; a
//!   byte-level tokenizer's pieces by its regex and model alone ([`byte_level`]).
//! - [`ahead`]: parts the tasks of a partitioned run encoded for this step.

pub mod added;
pub mod ahead;
pub mod byte_level;
pub mod cuts;
pub mod documents;
pub mod dropped;
pub mod merges;
pub mod metaspace;
pub mod piece_cache;
pub mod pieces;
pub mod split;
pub mod tokenizer;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use arrow::array::Array;
use serde::{Deserialize, Serialize};
use shards::dataset::{
    DatasetRoot, Manifest, Parent, Split, TokenizerInfo, VersionInfo, VersionWriter,
};
use tokio::runtime::Handle;

use crate::config::Config;
use crate::progress::Progress;
use documents::file_size;
pub use tokenizer::{TextTokenizer, train_bpe};

/// Where a trained tokenizer is written in the run's output folder.
pub const TRAINED_TOKENIZER: &str = "tokenizer.json";

/// The `[tokenize]` section. See the module docs.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenizeConfig {
    /// Dataset root: a local folder or `s3://bucket/prefix`.
    pub root: String,
    /// A `tokenizer.json` to load (path or `s3://`).
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// Train a byte-level BPE of this many ids on the output instead of loading one.
    #[serde(default)]
    pub train_vocab_size: Option<usize>,
    /// The written dataset to tokenize. Default: the last one the run writes.
    #[serde(default)]
    pub dataset: Option<String>,
    /// The end-of-document token. Default `<|endoftext|>`.
    #[serde(default = "default_eod")]
    pub eod: String,
    /// Tokens per shard. Default 16 Mi.
    #[serde(default = "default_shard_tokens")]
    pub shard_tokens: u64,
    /// Share of each source's documents held out for validation. Default 0.01.
    #[serde(default = "default_validation_fraction")]
    pub validation_fraction: f64,
    /// Fewest documents each source holds out (at most half of its documents): where the
    /// fraction holds out fewer, those with the next smallest id hashes are added (see
    /// [`split`]). Default 0.
    #[serde(default)]
    pub validation_min_docs: usize,
    /// Also count the tokens of the documents the stages dropped (see [`dropped`]). Default true.
    #[serde(default = "default_true")]
    pub count_dropped_tokens: bool,
}

fn default_true() -> bool {
    true
}

fn default_eod() -> String {
    "<|endoftext|>".to_string()
}

fn default_shard_tokens() -> u64 {
    16 << 20
}

fn default_validation_fraction() -> f64 {
    0.01
}

/// Why tokenizing failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    /// The tokenizer cannot be loaded, trained or used.
    #[error("tokenizer {origin}: {reason}")]
    Tokenizer {
        /// The file (or `training`).
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// A text could not be encoded.
    #[error("encoding failed: {0}")]
    Encode(String),
    /// The run's output cannot be read.
    #[error("{0}")]
    Input(String),
    /// Reading or writing the dataset failed.
    #[error(transparent)]
    Store(#[from] shards::StoreError),
}

/// What a tokenize step did.
#[derive(Debug)]
pub struct TokenizeSummary {
    /// The version's manifest.
    pub manifest: Manifest,
    /// The dataset root as a URL.
    pub root: String,
    /// True when the version already existed and nothing was written.
    pub reused: bool,
    /// Text bytes of the kept documents, encoded into shards.
    pub text_bytes: u64,
    /// What counting the dropped documents' tokens encoded (`None`: not counted, or reused).
    pub dropped: Option<dropped::DroppedCount>,
    /// Wall time.
    pub elapsed: Duration,
}

/// Tokenizes the output of a finished run of `config` (which must have a `[tokenize]` section),
/// with `loaded`, the section's tokenizer file when [`load_configured`] has loaded it already.
pub fn run(
    config: &Config,
    loaded: Option<TextTokenizer>,
    progress: &Progress,
    handle: &Handle,
) -> Result<TokenizeSummary, TokenizeError> {
    let started = Instant::now();
    let settings = config
        .tokenize
        .as_ref()
        .map(|t| t.get_ref().clone())
        .ok_or_else(|| TokenizeError::Input("the config has no [tokenize] section".into()))?;
    let out = config.output_dir();
    let dataset = dataset_of(config, &settings);
    let parts = documents::parts(&out, &dataset)?;
    let run_manifest = std::fs::read(out.join(crate::output::MANIFEST))
        .map_err(|e| TokenizeError::Input(format!("{}: {e}", out.display())))?;
    let run_id = shards::checksum::to_hex(xxhash_rust::xxh3::xxh3_64(&run_manifest));
    let tokenizer = match (loaded, &settings.tokenizer, settings.train_vocab_size) {
        (Some(tokenizer), _, _) => tokenizer,
        (None, Some(spec), _) => load(spec, &settings.eod, handle)?,
        (None, None, Some(vocab)) => train_for_run(&out, &parts, vocab, &settings.eod, &run_id)?,
        (None, None, None) => {
            return Err(TokenizeError::Input(
                "[tokenize] needs `tokenizer` or `train_vocab_size`".into(),
            ));
        }
    };
    let mut hashed = serde_json::json!({
        "dataset": dataset,
        "eod": settings.eod,
        "shard_tokens": settings.shard_tokens,
        "validation_fraction": settings.validation_fraction,
        "count_dropped_tokens": settings.count_dropped_tokens,
    });
    if settings.validation_min_docs > 0 {
        // Only when set, so that versions made before the setting existed keep their ids.
        hashed["validation_min_docs"] = settings.validation_min_docs.into();
    }
    let config_hash = hash_json(&hashed);
    let version = hash_json(&serde_json::json!({
        "config": config_hash,
        "tokenizer": tokenizer.hash(),
        "run": run_id,
    }));
    let root = DatasetRoot::open(&settings.root)?;
    let previous = handle.block_on(root.latest())?;
    if handle.block_on(root.has_version(&version))? {
        handle.block_on(root.set_latest(&version))?;
        return Ok(TokenizeSummary {
            manifest: handle.block_on(root.manifest(&version))?,
            root: root.uri().to_string(),
            reused: true,
            text_bytes: 0,
            dropped: None,
            elapsed: started.elapsed(),
        });
    }
    let mut parents = vec![Parent {
        kind: "run".into(),
        uri: format!(
            "file://{}",
            std::path::absolute(&out).unwrap_or(out.clone()).display()
        ),
        id: run_id,
    }];
    parents.extend(previous.filter(|p| *p != version).map(|p| Parent {
        kind: "shards".into(),
        uri: root.uri().to_string(),
        id: p,
    }));
    let (eod, eod_id) = tokenizer.eod();
    let info = VersionInfo {
        version,
        parents,
        config_hash,
        tokenizer: TokenizerInfo {
            hash: tokenizer.hash().to_string(),
            vocab_size: tokenizer.vocab_size(),
            eod: eod.to_string(),
            eod_id,
            file: None,
        },
        tokenizer_json: Some(bytes::Bytes::copy_from_slice(tokenizer.json())),
        validation_fraction: settings.validation_fraction,
        validation_min_docs: settings.validation_min_docs,
    };
    let staged = root.remove_staged(&info.version)?;
    if staged > 0 {
        tracing::info!(
            staged,
            "Removed staging files of an interrupted tokenize step"
        );
    }
    let mut writer = VersionWriter::new(root.clone(), info, settings.shard_tokens, handle.clone());
    let mut input_bytes: u64 = parts.iter().map(|p| file_size(p)).sum();
    if settings.count_dropped_tokens {
        input_bytes += dropped::rejects(&out)?
            .iter()
            .map(|p| file_size(p))
            .sum::<u64>();
    }
    let held_out = split::HeldOut::new(
        &parts,
        settings.validation_fraction,
        settings.validation_min_docs,
        config.run.batch_size,
    )?;
    progress.start(input_bytes);
    let mut text_bytes = 0u64;
    let mut encoded_ahead = 0;
    let split_of = |id: &str| {
        if held_out.contains(id) {
            Split::Validation
        } else {
            Split::Train
        }
    };
    for part in &parts {
        let one = std::slice::from_ref(part);
        if let Some(encoded) = ahead::read(&out, part, &tokenizer, ahead::Kind::Tokens)? {
            encoded_ahead += 1;
            text_bytes += encoded.text_bytes;
            ahead::walk(
                part,
                config.run.batch_size,
                encoded.documents(),
                |ids, sources, docs| {
                    for (i, tokens) in docs.into_iter().enumerate() {
                        let id = ids.value(i);
                        writer.push(split_of(id), sources.value(i), id, tokens)?;
                    }
                    progress.docs.fetch_add(ids.len() as u64, Ordering::Relaxed);
                    Ok(())
                },
            )?;
        } else {
            documents::for_each_batch(one, config.run.batch_size, |docs| {
                let texts: Vec<&str> = docs.texts.iter().flatten().collect();
                text_bytes += texts.iter().map(|t| t.len() as u64).sum::<u64>();
                let encoded = tokenizer.encode_documents(&texts)?;
                for (i, tokens) in encoded.iter().enumerate() {
                    let id = docs.ids.value(i);
                    writer.push(split_of(id), docs.sources.value(i), id, tokens)?;
                }
                progress
                    .docs
                    .fetch_add(texts.len() as u64, Ordering::Relaxed);
                Ok(())
            })?;
        }
        progress.bytes.fetch_add(file_size(part), Ordering::Relaxed);
    }
    let dropped = if settings.count_dropped_tokens {
        let (table, counted) = dropped::count(&out, &tokenizer, config.run.batch_size, progress)?;
        encoded_ahead += counted.encoded_ahead;
        writer.attach(dropped::FILE, table)?;
        Some(counted)
    } else {
        None
    };
    let manifest = writer.finish()?;
    if encoded_ahead > 0 {
        tracing::info!(
            "{encoded_ahead} parts were encoded ahead by the tasks of a partitioned run"
        );
    }
    ahead::clear(&out)?;
    progress.finish();
    Ok(TokenizeSummary {
        manifest,
        root: root.uri().to_string(),
        reused: false,
        text_bytes,
        dropped,
        elapsed: started.elapsed(),
    })
}

/// The written dataset that `settings` tokenize: the named one, or the last the run writes.
pub fn dataset_of(config: &Config, settings: &TokenizeConfig) -> String {
    settings
        .dataset
        .clone()
        .or_else(|| config.persisted_stages().pop())
        .unwrap_or_else(|| crate::config::INGEST.to_string())
}

/// In a task of a partitioned run that ran every stage: encodes the parts of its `units` that
/// the tokenize step of `config` reads (see [`ahead`]), counting their bytes and documents in
/// `progress`. Returns how many parts were encoded; none without a `[tokenize]` section or when
/// it trains its tokenizer on the whole output.
pub fn encode_ahead(
    config: &Config,
    units: &[String],
    progress: &Progress,
    handle: &Handle,
) -> Result<usize, TokenizeError> {
    let (Some(settings), Some(tokenizer)) = (&config.tokenize, load_configured(config, handle)?)
    else {
        return Ok(0);
    };
    let settings = settings.get_ref();
    let out = config.output_dir();
    let owned = |part: &std::path::PathBuf| {
        let name = part.file_name().unwrap_or_default().to_string_lossy();
        units.iter().any(|u| name.starts_with(&format!("{u}.")))
    };
    let mut parts: Vec<_> = documents::parts(&out, &dataset_of(config, settings))?
        .into_iter()
        .filter(owned)
        .map(|p| (p, ahead::Kind::Tokens))
        .collect();
    if settings.count_dropped_tokens {
        let rejects = dropped::rejects(&out)?.into_iter().filter(owned);
        parts.extend(rejects.map(|p| (p, ahead::Kind::Counts)));
    }
    progress.start(parts.iter().map(|(p, _)| file_size(p)).sum());
    for (part, kind) in &parts {
        let documents = ahead::write(&out, part, &tokenizer, *kind, config.run.batch_size)?;
        progress.docs.fetch_add(documents, Ordering::Relaxed);
        progress.bytes.fetch_add(file_size(part), Ordering::Relaxed);
    }
    progress.finish();
    Ok(parts.len())
}

fn hash_json(value: &serde_json::Value) -> String {
    shards::checksum::to_hex(xxhash_rust::xxh3::xxh3_64(value.to_string().as_bytes()))
}

/// Reads a `tokenizer.json` from a path or `s3://` URL, and [`report`]s on it.
pub fn load(spec: &str, eod: &str, handle: &Handle) -> Result<TextTokenizer, TokenizeError> {
    let tokenizer = handle.block_on(read(spec, eod))?;
    report(spec, &tokenizer);
    Ok(tokenizer)
}

/// Logs the settings of the tokenizer read from `spec` that encoding ignores (warnings) and how
/// it encodes texts: piece by piece, or whole and why.
pub fn report(spec: &str, tokenizer: &TextTokenizer) {
    for setting in tokenizer.ignored_settings() {
        tracing::warn!("{spec} sets {setting}: ignored, documents are tokenized whole");
    }
    tracing::info!("{spec}: texts are encoded {}", tokenizer.encoding());
}

/// Reads and parses a `tokenizer.json` from a path or `s3://` URL.
pub async fn read(spec: &str, eod: &str) -> Result<TextTokenizer, TokenizeError> {
    use object_store::ObjectStoreExt;
    let (store, _, path) = shards::open_store(spec)?;
    let bytes = async { store.get(&path).await?.bytes().await }
        .await
        .map_err(|source| shards::StoreError::Backend {
            spec: spec.to_string(),
            source,
        })?;
    TextTokenizer::from_json(&bytes, eod, spec)
}

/// The `[tokenize]` section's `tokenizer` file, loaded; `None` when the config trains one or
/// does not tokenize. A run loads it before its stages, so that a file it cannot use (a missing
/// end-of-document token, say) fails the run at once rather than after the stages.
pub fn load_configured(
    config: &Config,
    handle: &Handle,
) -> Result<Option<TextTokenizer>, TokenizeError> {
    let Some(settings) = &config.tokenize else {
        return Ok(None);
    };
    let settings = settings.get_ref();
    settings
        .tokenizer
        .as_deref()
        .map(|spec| load(spec, &settings.eod, handle))
        .transpose()
}

/// Trains a tokenizer on the texts of `parts` (streamed; at most `max_bytes` of text when set)
/// and returns its JSON.
pub fn train_on_parts(
    parts: &[std::path::PathBuf],
    vocab_size: usize,
    eod: &str,
    max_bytes: Option<u64>,
) -> Result<String, TokenizeError> {
    let texts = documents::TextStream::new(parts.to_vec(), max_bytes);
    let error = texts.error.clone();
    let json = train_bpe(texts, vocab_size, eod)?;
    match error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        Some(e) => Err(e),
        None => Ok(json),
    }
}

/// The run's trained tokenizer: reused when `<out>/tokenizer.json` was trained with the same
/// settings on the same run output, else trained and written there.
fn train_for_run(
    out: &Path,
    parts: &[std::path::PathBuf],
    vocab_size: usize,
    eod: &str,
    run_id: &str,
) -> Result<TextTokenizer, TokenizeError> {
    let path = out.join(TRAINED_TOKENIZER);
    let key_path = out.join("_tokenizer.key");
    let key = format!("vocab_size={vocab_size} eod={eod} run={run_id}\n");
    if let (Ok(json), Ok(old)) = (std::fs::read(&path), std::fs::read_to_string(&key_path))
        && old == key
    {
        return TextTokenizer::from_json(&json, eod, &path.display().to_string());
    }
    let json = train_on_parts(parts, vocab_size, eod, None)?;
    shards::atomic::write_file(&path, json.as_bytes())?;
    shards::atomic::write_file(&key_path, key.as_bytes())?;
    TextTokenizer::from_json(json.as_bytes(), eod, &path.display().to_string())
}
