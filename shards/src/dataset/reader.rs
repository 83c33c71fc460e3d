//! [`ShardReader`]: token windows from one version, local or on S3.
//!
//! A version is read through its manifest. Each (split, source) pair is one token stream, the
//! concatenation of its shards; [`ShardReader::read`] returns any range of a stream, so random
//! training windows cost one positioned read each.
//!
//! A shard is opened once: a local shard in place, a remote one fetched whole by parallel range
//! requests into the cache folder (capped, least recently used out) or, without one, into memory
//! (at most `memory_bytes`, least recently used out). Either way its size, header and (unless
//! `verify` is off) checksum are checked against the manifest before any token is returned.
//! Opening a shard starts background opens of the next `prefetch` shards of its stream.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::os::unix::fs::FileExt;
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
/// Most shards open at once (file handles or bytes).
pub const MAX_OPEN: usize = 256;

/// How a reader fetches and keeps shards.
#[derive(Debug, Clone)]
pub struct ReaderOptions {
    /// Shards fetched ahead of the one being read, per stream. Default 2.
    pub prefetch: usize,
    /// Most bytes of remote shards held in memory when there is no cache folder. Default 1 GiB.
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

/// An opened shard: a verified local file (in place or in the cache), or verified bytes.
#[derive(Clone)]
enum Opened {
    File(Arc<std::fs::File>),
    Memory(Bytes),
}

impl Opened {
    /// Bytes held in memory.
    fn memory(&self) -> u64 {
        match self {
            Opened::File(_) => 0,
            Opened::Memory(b) => b.len() as u64,
        }
    }
}

type Loaded = Result<Opened, StoreError>;

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
    manifest_checksum: String,
    options: ReaderOptions,
    cache: Option<DiskCache>,
    /// The root is on the local file system: shards are read in place.
    local: bool,
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
            let manifest = root.manifest_with_checksum(&id).await?;
            Ok::<_, StoreError>((id, manifest))
        })?;
        let (manifest, manifest_checksum) = manifest;
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
        let local = root.uri().starts_with("file://");
        Ok(Self {
            shared: Arc::new(Shared {
                root,
                version,
                manifest,
                manifest_checksum,
                options,
                cache,
                local,
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

    /// xxh3-64 of the version's `manifest.json` bytes.
    pub fn manifest_checksum(&self) -> &str {
        &self.shared.manifest_checksum
    }

    /// Most bytes of shards this reader holds in memory: none for a local root (read in place)
    /// or with a cache folder (fetched to disk), else the version's shards up to
    /// [`ReaderOptions::memory_bytes`].
    pub fn memory_bound(&self) -> u64 {
        let shared = &self.shared;
        if shared.local || shared.cache.is_some() {
            return 0;
        }
        let all: u64 = shared.manifest.shards.iter().map(|s| s.bytes).sum();
        all.min(shared.options.memory_bytes)
    }

    /// The dataset root's URI (`file://…` or `s3://…`).
    pub fn root_uri(&self) -> &str {
        self.shared.root.uri()
    }

    /// The `tokenizer.json` stored in the version, if it has one.
    pub fn tokenizer_json(&self) -> Result<Option<bytes::Bytes>, StoreError> {
        let Some(file) = &self.shared.manifest.tokenizer.file else {
            return Ok(None);
        };
        let root = &self.shared.root;
        let path = root.version_path(&self.shared.version, file);
        self.runtime.block_on(root.get(&path)).map(Some)
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
            let opened = self.shard(stream, k)?;
            let (lo, hi) = (at - stream.starts[k], range.end.min(stream.starts[k + 1]));
            let hi = hi - stream.starts[k];
            let w = self.width.bytes() as u64;
            let bytes_at = HEADER_BYTES as u64 + lo * w..HEADER_BYTES as u64 + hi * w;
            match &opened {
                Opened::Memory(b) => token_shard::decode_body(
                    &b[bytes_at.start as usize..bytes_at.end as usize],
                    self.width,
                    &mut out,
                ),
                Opened::File(f) => {
                    let mut buf = vec![0u8; (bytes_at.end - bytes_at.start) as usize];
                    f.read_exact_at(&mut buf, bytes_at.start)
                        .map_err(|source| StoreError::Io {
                            op: "read",
                            path: PathBuf::from(&self.manifest().shards[stream.shards[k]].path),
                            source,
                        })?;
                    token_shard::decode_body(&buf, self.width, &mut out);
                }
            }
            at = stream.starts[k] + hi;
        }
        Ok(out)
    }

    /// The bytes of shard `k` of a stream, waiting for its fetch; starts the prefetches.
    fn shard(&self, stream: &Stream, k: usize) -> Result<Opened, StoreError> {
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
                Some(Ok(opened)) => {
                    *state = Some(Ok(opened.clone()));
                    return Ok(opened);
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

    /// Drops the least recently used shards while more than `memory_bytes` are in memory or
    /// more than [`MAX_OPEN`] shards are open (never the newest one). Shards still being fetched
    /// count at their full size.
    fn evict(&self, slots: &mut Slots) {
        let shards = &self.shared.manifest.shards;
        let cost = |i: usize, slot: &Slot| match slot
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            Some(Ok(opened)) => opened.memory(),
            Some(Err(_)) => 0,
            None if self.shared.local => 0,
            None => shards[i].bytes,
        };
        let mut held: Vec<(u64, usize, u64)> = slots
            .by_shard
            .iter()
            .map(|(i, slot)| {
                (
                    slots.last_use.get(i).copied().unwrap_or(0),
                    *i,
                    cost(*i, slot),
                )
            })
            .collect();
        let mut bytes: u64 = held.iter().map(|h| h.2).sum();
        let mut open = held.len();
        held.sort_unstable();
        for (_, i, size) in held.iter().take(held.len().saturating_sub(1)) {
            if bytes <= self.shared.options.memory_bytes && open <= MAX_OPEN {
                break;
            }
            slots.by_shard.remove(i);
            slots.last_use.remove(i);
            bytes -= size;
            open -= 1;
        }
    }
}

/// Opens one shard: in place when local, else from the cache or by range requests; checks its
/// size and header, and its checksum when verifying.
async fn fetch(shared: &Shared, shard: &ShardEntry) -> Loaded {
    let path = shared.root.version_path(&shared.version, &shard.path);
    let name = shared.root.object_uri(&path);
    let local = if shared.local {
        Some(PathBuf::from(format!("/{}", path.as_ref())))
    } else {
        shared
            .cache
            .as_ref()
            .and_then(|c| c.get_path(&shard.checksum))
    };
    if let Some(file) = local {
        return open_file(shared, shard, &file, &name);
    }
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
    let bytes = if parts.len() == 1 {
        parts.into_iter().next().unwrap_or_default()
    } else {
        Bytes::from(parts.concat())
    };
    check(
        shard,
        &name,
        &bytes[..HEADER_BYTES.min(bytes.len())],
        bytes.len() as u64,
    )?;
    if shared.options.verify {
        verify(&name, &bytes, &shard.checksum)?;
    }
    match &shared.cache {
        Some(cache) => {
            let file = cache.put(&shard.checksum, &bytes)?;
            match file {
                Some(file) => open_file(shared, shard, &file, &name),
                None => Ok(Opened::Memory(bytes)),
            }
        }
        None => Ok(Opened::Memory(bytes)),
    }
}

/// Opens a local copy of a shard and checks it.
fn open_file(shared: &Shared, shard: &ShardEntry, file: &std::path::Path, name: &str) -> Loaded {
    let io = |source| StoreError::Io {
        op: "open",
        path: file.to_path_buf(),
        source,
    };
    let handle = std::fs::File::open(file).map_err(io)?;
    let size = handle.metadata().map_err(io)?.len();
    let mut header = vec![0u8; HEADER_BYTES.min(size as usize)];
    handle.read_exact_at(&mut header, 0).map_err(io)?;
    check(shard, name, &header, size)?;
    if shared.options.verify {
        let sum = crate::checksum::to_hex(crate::checksum::checksum_file(file)?);
        if sum != shard.checksum {
            return Err(StoreError::Checksum {
                path: name.to_string(),
                expected: shard.checksum.clone(),
                actual: sum,
            });
        }
    }
    Ok(Opened::File(Arc::new(handle)))
}

/// Checks a shard's size and header against the manifest.
fn check(shard: &ShardEntry, name: &str, header: &[u8], size: u64) -> Result<(), StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: name.to_string(),
        reason,
    };
    if size != shard.bytes {
        return Err(corrupt(format!(
            "{size} bytes; the manifest says {}",
            shard.bytes
        )));
    }
    let (width, tokens) = token_shard::read_header(header).map_err(|e| corrupt(e.to_string()))?;
    if tokens != shard.tokens || HEADER_BYTES as u64 + tokens * width.bytes() as u64 != size {
        return Err(corrupt(format!(
            "its header says {tokens} tokens of {} bytes; the manifest says {} tokens",
            width.bytes(),
            shard.tokens
        )));
    }
    Ok(())
}
