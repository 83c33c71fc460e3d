//! Writing one version: shards as they fill, then the manifest, then `latest`.
//!
//! Each (split, source) pair is a stream of documents cut into shards of exactly
//! `shard_tokens` tokens (the last one shorter). A full shard is uploaded in the background
//! (at most [`MAX_UPLOADS`] at once) while the next one fills; memory is bounded by one open
//! shard per stream (held at its on-disk width) plus the uploads in flight. The manifest is
//! written only after every upload has succeeded, and `latest` only after the manifest: a
//! reader never sees a version that is not whole, and an interrupted write leaves no manifest
//! (a rerun writes the same objects again).

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::index::{IndexRows, ShardPlace};
use super::manifest::{
    FORMAT, FORMAT_VERSION, IndexEntry, Manifest, Parent, ShardEntry, Split, TokenizerInfo, Totals,
    output_time_rfc3339,
};
use super::root::{DatasetRoot, MANIFEST};
use crate::StoreError;
use crate::checksum::to_hex;
use crate::token_shard::{self, TokenWidth};

/// Most shard uploads in flight at once.
pub const MAX_UPLOADS: usize = 3;

/// What the manifest says besides the shards.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    /// The version id.
    pub version: String,
    /// What it was made from.
    pub parents: Vec<Parent>,
    /// Hash of the tokenize settings.
    pub config_hash: String,
    /// The tokenizer.
    pub tokenizer: TokenizerInfo,
    /// Held-out fraction.
    pub validation_fraction: f64,
    /// Fewest held-out documents per source (0: the fraction alone).
    pub validation_min_docs: usize,
    /// The `tokenizer.json` bytes, stored in the version as [`TOKENIZER_FILE`] so that a trained
    /// model can be read back as text without looking elsewhere.
    pub tokenizer_json: Option<Bytes>,
}

/// Name of the stored tokenizer in a version folder.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

struct OpenShard {
    number: usize,
    /// The tokens so far, encoded at the shard's width (header added on close).
    body: Vec<u8>,
    tokens: u64,
    rows: IndexRows,
}

/// Writes one version of a dataset. See the module docs.
pub struct VersionWriter {
    root: DatasetRoot,
    info: VersionInfo,
    width: TokenWidth,
    shard_tokens: u64,
    handle: Handle,
    open: BTreeMap<(Split, String), OpenShard>,
    next_number: BTreeMap<(Split, String), usize>,
    shards: Vec<ShardEntry>,
    files: Vec<IndexEntry>,
    totals: BTreeMap<String, BTreeMap<Split, Totals>>,
    uploads: VecDeque<JoinHandle<Result<(), StoreError>>>,
}

impl VersionWriter {
    /// A writer for `info.version` under `root`, cutting shards of `shard_tokens` tokens, running
    /// uploads on `handle` (call it from outside the runtime).
    pub fn new(root: DatasetRoot, info: VersionInfo, shard_tokens: u64, handle: Handle) -> Self {
        let width = TokenWidth::for_vocab(info.tokenizer.vocab_size);
        Self {
            root,
            info,
            width,
            shard_tokens: shard_tokens.max(1),
            handle,
            open: BTreeMap::new(),
            next_number: BTreeMap::new(),
            shards: Vec::new(),
            files: Vec::new(),
            totals: BTreeMap::new(),
            uploads: VecDeque::new(),
        }
    }

    /// Appends one document's tokens (its end-of-document token included) to its stream.
    pub fn push(
        &mut self,
        split: Split,
        source: &str,
        id: &str,
        tokens: &[u32],
    ) -> Result<(), StoreError> {
        let totals = self
            .totals
            .entry(source.to_string())
            .or_default()
            .entry(split)
            .or_default();
        totals.documents += 1;
        totals.tokens += tokens.len() as u64;
        let key = (split, source.to_string());
        let mut rest = tokens;
        let mut continued = false;
        while !rest.is_empty() {
            let shard = match self.open.get_mut(&key) {
                Some(s) => s,
                None => {
                    let number = self.next_number.entry(key.clone()).or_insert(0);
                    let shard = OpenShard {
                        number: *number,
                        body: Vec::new(),
                        tokens: 0,
                        rows: IndexRows::default(),
                    };
                    *number += 1;
                    self.open.entry(key.clone()).or_insert(shard)
                }
            };
            let room = (self.shard_tokens - shard.tokens) as usize;
            let (piece, tail) = rest.split_at(room.min(rest.len()));
            shard
                .rows
                .push(id, shard.tokens, piece.len() as u64, continued);
            token_shard::append_body(piece, self.width, &mut shard.body).map_err(|e| {
                StoreError::Corrupt {
                    path: format!("{}/{source}", split.name()),
                    reason: e.to_string(),
                }
            })?;
            shard.tokens += piece.len() as u64;
            if shard.tokens == self.shard_tokens {
                self.close(&key)?;
            }
            rest = tail;
            continued = true;
        }
        Ok(())
    }

    /// Closes the open shard of a stream: encodes it and its index, starts their upload.
    fn close(&mut self, key: &(Split, String)) -> Result<(), StoreError> {
        let Some(shard) = self.open.remove(key) else {
            return Ok(());
        };
        let (split, source) = key;
        let stem = format!("{}/{}/{:06}", split.name(), source, shard.number);
        let path = format!("{stem}.bin");
        let header = token_shard::header(self.width, shard.tokens as usize).map_err(|e| {
            StoreError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
        let mut bytes = Vec::with_capacity(header.len() + shard.body.len());
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&shard.body);
        drop(shard.body);
        let index_path = format!("{stem}.index.parquet");
        let index = shard
            .rows
            .to_parquet(ShardPlace {
                source,
                version: &self.info.version,
                split: split.name(),
                shard: &path,
                stream_start: shard.number as u64 * self.shard_tokens,
            })
            .map_err(|e| StoreError::Corrupt {
                path: index_path.clone(),
                reason: e.to_string(),
            })?;
        self.shards.push(ShardEntry {
            path: path.clone(),
            split: *split,
            source: source.clone(),
            bytes: bytes.len() as u64,
            tokens: shard.tokens,
            checksum: to_hex(xxhash_rust::xxh3::xxh3_64(&bytes)),
            documents: shard.rows.starts(),
            source_tokens: BTreeMap::from([(source.clone(), shard.tokens)]),
            index: IndexEntry {
                path: index_path.clone(),
                bytes: index.len() as u64,
                checksum: to_hex(xxhash_rust::xxh3::xxh3_64(&index)),
            },
        });
        while self.uploads.len() >= MAX_UPLOADS {
            self.wait_oldest()?;
        }
        let root = self.root.clone();
        let version = self.info.version.clone();
        self.uploads.push_back(self.handle.spawn(async move {
            root.put(&root.version_path(&version, &path), Bytes::from(bytes))
                .await?;
            root.put(
                &root.version_path(&version, &index_path),
                Bytes::from(index),
            )
            .await
        }));
        Ok(())
    }

    /// Adds a file to the version (a lineage table), uploaded before the manifest, which lists
    /// it with its checksum.
    pub fn attach(&mut self, path: &str, bytes: Bytes) -> Result<(), StoreError> {
        self.files.push(IndexEntry {
            path: path.to_string(),
            bytes: bytes.len() as u64,
            checksum: to_hex(xxhash_rust::xxh3::xxh3_64(&bytes)),
        });
        while self.uploads.len() >= MAX_UPLOADS {
            self.wait_oldest()?;
        }
        let root = self.root.clone();
        let target = root.version_path(&self.info.version, path);
        self.uploads.push_back(
            self.handle
                .spawn(async move { root.put(&target, bytes).await }),
        );
        Ok(())
    }

    fn wait_oldest(&mut self) -> Result<(), StoreError> {
        if let Some(task) = self.uploads.pop_front() {
            self.handle
                .block_on(task)
                .map_err(|e| StoreError::Corrupt {
                    path: self.root.uri().to_string(),
                    reason: format!("upload task failed: {e}"),
                })??;
        }
        Ok(())
    }

    /// Closes every stream, waits for every upload, then writes the manifest and moves `latest`.
    pub fn finish(mut self) -> Result<Manifest, StoreError> {
        let keys: Vec<_> = self.open.keys().cloned().collect();
        for key in keys {
            self.close(&key)?;
        }
        while !self.uploads.is_empty() {
            self.wait_oldest()?;
        }
        self.shards
            .sort_by(|a, b| (a.split, &a.source, &a.path).cmp(&(b.split, &b.source, &b.path)));
        let mut tokenizer = self.info.tokenizer;
        if let Some(json) = self.info.tokenizer_json.take() {
            let root = &self.root;
            let path = root.version_path(&self.info.version, TOKENIZER_FILE);
            self.handle.block_on(root.put(&path, json))?;
            tokenizer.file = Some(TOKENIZER_FILE.to_string());
        }
        let manifest = Manifest {
            format: FORMAT.to_string(),
            format_version: FORMAT_VERSION,
            version: self.info.version.clone(),
            parents: self.info.parents,
            config_hash: self.info.config_hash,
            tokenizer,
            token_bytes: self.width.bytes() as u8,
            validation_fraction: self.info.validation_fraction,
            validation_min_docs: self.info.validation_min_docs,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            created: output_time_rfc3339(),
            sources: self.totals,
            shards: self.shards,
            files: self.files,
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| StoreError::Corrupt {
            path: MANIFEST.to_string(),
            reason: e.to_string(),
        })?;
        let root = &self.root;
        self.handle.block_on(async {
            root.put(&root.version_path(&manifest.version, MANIFEST), json.into())
                .await?;
            root.set_latest(&manifest.version).await
        })?;
        Ok(manifest)
    }
}
