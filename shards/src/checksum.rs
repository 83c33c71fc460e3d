//! xxh3-64 checksums, written as 16 lowercase hex digits in manifests.

use std::io::{self, Read, Write};
use std::path::Path;

use xxhash_rust::xxh3::Xxh3;

use crate::StoreError;

/// Formats a 64-bit checksum as manifests store it: 16 lowercase hex digits.
pub fn to_hex(sum: u64) -> String {
    format!("{sum:016x}")
}

/// A writer that forwards to `inner` and hashes every byte written, counting them too.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Xxh3,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Xxh3::new(),
            bytes: 0,
        }
    }

    /// Returns the inner writer, the checksum and the byte count of everything written.
    pub fn finish(self) -> (W, u64, u64) {
        (self.inner, self.hasher.digest(), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that forwards from `inner` and hashes every byte read (an input's fingerprint, taken
/// while it is read anyway).
pub struct HashingReader<R> {
    inner: R,
    hasher: Xxh3,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Xxh3::new(),
        }
    }

    /// The checksum of everything read so far.
    pub fn digest(&self) -> u64 {
        self.hasher.digest()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Checksums a local file by streaming it.
pub fn checksum_file(path: &Path) -> Result<u64, StoreError> {
    let io_err = |source| StoreError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io_err)?;
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io_err)?;
        if n == 0 {
            return Ok(hasher.digest());
        }
        hasher.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_writer_matches_one_shot_hash_and_counts_bytes() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (inner, sum, n) = w.finish();
        assert_eq!(inner, b"hello world");
        assert_eq!(n, 11);
        assert_eq!(sum, xxhash_rust::xxh3::xxh3_64(b"hello world"));
        assert_eq!(to_hex(1), "0000000000000001");
    }

    #[test]
    fn hashing_reader_hashes_what_passes_through() {
        let mut r = HashingReader::new(&b"some input bytes"[..]);
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(r.digest(), xxhash_rust::xxh3::xxh3_64(b"some input bytes"));
    }

    #[test]
    fn checksum_file_equals_hash_of_contents() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        assert_eq!(
            checksum_file(&p).unwrap(),
            xxhash_rust::xxh3::xxh3_64(&data)
        );
    }
}
