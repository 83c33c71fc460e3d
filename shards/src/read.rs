//! Streaming reads of one object through ranged gets.
//!
//! [`ObjectReader`] turns an object in any store into a blocking [`Read`], fetching `chunk`-sized
//! ranges and always keeping the next range in flight, so memory stays at two chunks whatever the
//! object's size, and network latency overlaps with decoding. It is meant for plain threads (the
//! ingest readers), with the async store driven by a tokio runtime handle.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use object_store::ObjectStore;
use object_store::path::Path;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// Default range size: large enough to amortise request overhead, small enough to bound memory.
pub const DEFAULT_CHUNK: u64 = 4 << 20;

type Fetch = JoinHandle<object_store::Result<Bytes>>;

/// A blocking reader over one object, with one range of read-ahead.
pub struct ObjectReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
    chunk: u64,
    handle: Handle,
    next_start: u64,
    pending: Option<Fetch>,
    current: Bytes,
    bytes_read: Option<Arc<AtomicU64>>,
}

impl ObjectReader {
    /// A reader over the `size` bytes of `path` in `store`, using `handle` to run requests.
    pub fn new(store: Arc<dyn ObjectStore>, path: Path, size: u64, handle: Handle) -> Self {
        Self {
            store,
            path,
            size,
            chunk: DEFAULT_CHUNK,
            handle,
            next_start: 0,
            pending: None,
            current: Bytes::new(),
            bytes_read: None,
        }
    }

    /// Sets the range size (at least 1 byte).
    pub fn with_chunk(mut self, chunk: u64) -> Self {
        self.chunk = chunk.max(1);
        self
    }

    /// Adds every byte fetched to `counter` (for progress reporting).
    pub fn with_counter(mut self, counter: Arc<AtomicU64>) -> Self {
        self.bytes_read = Some(counter);
        self
    }

    fn start_fetch(&mut self) {
        if self.next_start >= self.size {
            return;
        }
        let end = (self.next_start + self.chunk).min(self.size);
        let (store, path, range) = (self.store.clone(), self.path.clone(), self.next_start..end);
        // `get_ranges` is an `ObjectStore` method (a `Send` future); `get_range` is not.
        self.pending = Some(self.handle.spawn(async move {
            let mut parts = store.get_ranges(&path, &[range]).await?;
            Ok(parts.pop().unwrap_or_default())
        }));
        self.next_start = end;
    }

    fn refill(&mut self) -> io::Result<()> {
        if self.pending.is_none() {
            self.start_fetch();
        }
        let Some(fetch) = self.pending.take() else {
            return Ok(());
        };
        let bytes = self
            .handle
            .block_on(fetch)
            .map_err(io::Error::other)?
            .map_err(|e| io::Error::other(format!("reading {}: {e}", self.path)))?;
        if let Some(counter) = &self.bytes_read {
            counter.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        self.current = bytes;
        self.start_fetch();
        Ok(())
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.current.is_empty() {
            self.refill()?;
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    #[test]
    fn reads_whole_object_in_small_chunks_and_counts_bytes() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let data: Vec<u8> = (0..100_003u32).map(|i| (i * 7 % 256) as u8).collect();
        let path = Path::from("x/y.bin");
        rt.block_on(store.put(&path, PutPayload::from(data.clone())))
            .unwrap();
        let counter = Arc::new(AtomicU64::new(0));
        let mut reader = ObjectReader::new(store, path, data.len() as u64, rt.handle().clone())
            .with_chunk(4096)
            .with_counter(counter.clone());
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        assert_eq!(counter.load(Ordering::Relaxed), data.len() as u64);
    }
}
