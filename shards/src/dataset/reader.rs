//! [`ShardReader`]: token windows from one version, local or on S3.
//!
//! A version is read through its manifest. Each (split, source) pair is one token stream, the
//! concatenation of its shards; [`ShardReader::read`] returns any range of a stream. Shards are
//! fetched whole, by parallel range requests, checked against the manifest's checksum and
//! header, and kept in memory (least recently used first out, past `memory_bytes`). Opening a
//! shard starts background fetches of the next `prefetch` shards of its stream. With a cache
//! folder, fetched shards are also kept on local disk (capped), so a restart does not download
//! them again.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;

use super::cache::DiskCache;
use super::manifest::{Manifest, ShardEntry, Split};
use super::root::{DatasetRoot, verify};
use crate::StoreError;
use crate::token_shard::{self, HEADER_BYTES, TokenWidth};

/// Range size of shard fetches.
pub const FETCH_CHUNK: u64 = 8 << 20;

/// How a reader fetches and keeps shards.
#[derive(Debug, Clone)]
pub struct ReaderOptions {
    /// Shards fetched ahead of the one being read, per stream. Default 2.
    pub prefetch: usize,
    /// Most bytes of shards held in memory. Default 1 GiB.
    pub memory_bytes: u64,
    /// A local folder keeping fetched shards across runs (meant for S3). Default none.
    pub cache_dir: Option<PathBuf>,
    /// Most bytes the cache folder holds. Default 16 GiB.
    pub cache_bytes: u64,
    /// Check every shard's checksum and header when it is fetched. Default true.
    pub verify: bool,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        Self {
            prefetch: 2,
            memory_bytes: 1 << 30,
            cache_dir: None,
            cache_bytes: 16 << 30,
            verify: true,
        }
    }
}

type Loaded = Result<Bytes, StoreError>;

/// One shard's place in memory: filled by a fetch, waited on by readers.
#[derive(Default)]
struct Slot {
    state: Mutex<Option<Loaded>>,
    ready: Condvar,
}

struct Stream {
    /// Indexes into the manifest's shards, in order.
    shards: Vec<usize>,
    /// Token offset of each shard in the stream, plus the total at the end.
    starts: Vec<u64>,
}

struct Shared {
    root: DatasetRoot,
    version: String,
    manifest: Manifest,
    options: ReaderOptions,
    cache: Option<DiskCache>,
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    by_shard: HashMap<usize, Arc<Slot>>,
    last_use: HashMap<usize, u64>,
    tick: u64,
}

/// Reads one version. See the module docs.
pub struct ShardReader {
    shared: Arc<Shared>,
    streams: BTreeMap<(Split, String), Stream>,
    width: TokenWidth,
    runtime: tokio::runtime::Runtime,
}

impl ShardReader {
    /// Opens `version` (or the `latest` one) of the dataset at `spec` (a path or `s3://` URL).
    pub fn open(
        spec: &str,
        version: Option<&str>,
        options: ReaderOptions,
    ) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("shard-fetch")
            .enable_all()
            .build()
            .map_err(|source| StoreError::Io {
                op: "start runtime for",
                path: PathBuf::from(spec),
                source,
            })?;
        let root = DatasetRoot::open(spec)?;
        let (version, manifest) = runtime.block_on(async {
            let id = root.resolve(version).await?;
            let manifest = root.manifest(&id).await?;
            Ok::<_, StoreError>((id, manifest))
        })?;
        let mut streams: BTreeMap<(Split, String), Stream> = BTreeMap::new();
        for (i, shard) in manifest.shards.iter().enumerate() {
            let stream = streams
                .entry((shard.split, shard.source.clone()))
                .or_insert(Stream {
                    shards: Vec::new(),
                    starts: vec![0],
                });
            let end = stream.starts.last().copied().unwrap_or(0) + shard.tokens;
            stream.shards.push(i);
            stream.starts.push(end);
        }
        let width = match manifest.token_bytes {
            2 => TokenWidth::U16,
            _ => TokenWidth::U32,
        };
        let cache = options
            .cache_dir
            .clone()
            .map(|dir| DiskCache::new(dir, options.cache_bytes));
        Ok(Self {
            shared: Arc::new(Shared {
                root,
                version,
                manifest,
                options,
                cache,
                slots: Mutex::new(Slots::default()),
            }),
            streams,
            width,
            runtime,
        })
    }

    /// The version's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.shared.manifest
    }

    /// The version id read.
    pub fn version(&self) -> &str {
        &self.shared.version
    }

    /// Sources with tokens in `split`, sorted by name.
    pub fn sources(&self, split: Split) -> Vec<String> {
        self.streams
            .keys()
            .filter(|(s, _)| *s == split)
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// Tokens in the stream of `source` in `split` (0 when it has none).
    pub fn stream_tokens(&self, split: Split, source: &str) -> u64 {
        self.streams
            .get(&(split, source.to_string()))
            .and_then(|s| s.starts.last().copied())
            .unwrap_or(0)
    }

    /// Tokens `range` of a stream, crossing shard boundaries as needed.
    pub fn read(
        &self,
        split: Split,
        source: &str,
        range: Range<u64>,
    ) -> Result<Vec<u32>, StoreError> {
        let stream = self
            .streams
            .get(&(split, source.to_string()))
            .ok_or_else(|| StoreError::NoVersion {
                root: self.shared.root.uri().to_string(),
                version: format!("{}: no {} stream `{source}`", self.version(), split.name()),
            })?;
        let total = stream.starts.last().copied().unwrap_or(0);
        if range.end > total || range.start > range.end {
            return Err(StoreError::Corrupt {
                path: format!("{}/{source}", split.name()),
                reason: format!("range {range:?} is outside the stream's {total} tokens"),
            });
        }
        let mut out = Vec::with_capacity((range.end - range.start) as usize);
        let mut at = range.start;
        while at < range.end {
            let k = stream.starts.partition_point(|&s| s <= at) - 1;
            let bytes = self.shard(stream, k)?;
            let (lo, hi) = (at - stream.starts[k], range.end.min(stream.starts[k + 1]));
            let hi = hi - stream.starts[k];
            decode_into(&bytes, self.width, lo as usize..hi as usize, &mut out);
            at = stream.starts[k] + hi;
        }
        Ok(out)
    }

    /// The bytes of shard `k` of a stream, waiting for its fetch; starts the prefetches.
    fn shard(&self, stream: &Stream, k: usize) -> Result<Bytes, StoreError> {
        for &next in stream.shards[k + 1..]
            .iter()
            .take(self.shared.options.prefetch)
        {
            self.slot(next);
        }
        let index = stream.shards[k];
        let slot = self.slot(index);
        let mut state = slot.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match state.take() {
                Some(Ok(bytes)) => {
                    *state = Some(Ok(bytes.clone()));
                    return Ok(bytes);
                }
                Some(Err(e)) => {
                    drop(state);
                    self.lock_slots().by_shard.remove(&index);
                    return Err(e);
                }
                None => state = slot.ready.wait(state).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.shared.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The slot of a manifest shard, starting its fetch if it has none; evicts old slots.
    fn slot(&self, index: usize) -> Arc<Slot> {
        let mut slots = self.lock_slots();
        slots.tick += 1;
        let tick = slots.tick;
        slots.last_use.insert(index, tick);
        if let Some(slot) = slots.by_shard.get(&index) {
            return slot.clone();
        }
        let slot = Arc::new(Slot::default());
        slots.by_shard.insert(index, slot.clone());
        self.evict(&mut slots);
        let (shared, fill) = (self.shared.clone(), slot.clone());
        self.runtime.spawn(async move {
            let loaded = fetch(&shared, &shared.manifest.shards[index]).await;
            *fill.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(loaded);
            fill.ready.notify_all();
        });
        slot
    }

    /// Drops the least recently used shards beyond the memory budget (never the newest one).
    fn evict(&self, slots: &mut Slots) {
        let shards = &self.shared.manifest.shards;
        let mut held: Vec<(u64, usize)> = slots
            .by_shard
            .keys()
            .map(|i| (slots.last_use.get(i).copied().unwrap_or(0), *i))
            .collect();
        let mut bytes: u64 = held.iter().map(|(_, i)| shards[*i].bytes).sum();
        held.sort_unstable();
        for (_, i) in held.iter().take(held.len().saturating_sub(1)) {
            if bytes <= self.shared.options.memory_bytes {
                break;
            }
            slots.by_shard.remove(i);
            bytes -= shards[*i].bytes;
        }
    }
}

/// Fetches one shard (cache, else the store by ranges), checks its checksum (when verifying)
/// and always its header and size against the manifest, fills the cache.
async fn fetch(shared: &Shared, shard: &ShardEntry) -> Loaded {
    let path = shared.root.version_path(&shared.version, &shard.path);
    let name = shared.root.object_uri(&path);
    let cached = shared.cache.as_ref().and_then(|c| c.get(&shard.checksum));
    let from_cache = cached.is_some();
    let bytes = match cached {
        Some(b) => b,
        None => {
            let ranges: Vec<Range<u64>> = (0..shard.bytes)
                .step_by(FETCH_CHUNK as usize)
                .map(|s| s..(s + FETCH_CHUNK).min(shard.bytes))
                .collect();
            let parts = shared
                .root
                .store()
                .get_ranges(&path, &ranges)
                .await
                .map_err(|source| StoreError::Backend {
                    spec: name.clone(),
                    source,
                })?;
            if parts.len() == 1 {
                parts.into_iter().next().unwrap_or_default()
            } else {
                Bytes::from(parts.concat())
            }
        }
    };
    if shared.options.verify {
        verify(&name, &bytes, &shard.checksum)?;
    }
    {
        let (_, tokens) = token_shard::read_header(&bytes).map_err(|e| StoreError::Corrupt {
            path: name.clone(),
            reason: e.to_string(),
        })?;
        if tokens != shard.tokens || bytes.len() as u64 != shard.bytes {
            return Err(StoreError::Corrupt {
                path: name,
                reason: format!(
                    "{} bytes holding {tokens} tokens; the manifest says {} bytes, {} tokens",
                    bytes.len(),
                    shard.bytes,
                    shard.tokens
                ),
            });
        }
    }
    if let (Some(cache), false) = (&shared.cache, from_cache) {
        cache.put(&shard.checksum, &bytes)?;
    }
    Ok(bytes)
}

/// Appends tokens `range` of a shard's bytes to `out`.
fn decode_into(bytes: &[u8], width: TokenWidth, range: Range<usize>, out: &mut Vec<u32>) {
    let w = width.bytes();
    let body = &bytes[HEADER_BYTES + range.start * w..HEADER_BYTES + range.end * w];
    match width {
        TokenWidth::U16 => out.extend(
            body.chunks_exact(2)
                .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]]))),
        ),
        TokenWidth::U32 => out.extend(
            body.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
    }
}
