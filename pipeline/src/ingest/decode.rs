//! Opening a file for streaming: ranged reads, input fingerprint, decompression by file name.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use object_store::ObjectStore;
use shards::checksum::HashingReader;
use shards::{InputFile, ObjectReader};
use tokio::runtime::Handle;

/// How a file's bytes are compressed, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain bytes.
    None,
    /// gzip (`.gz`), including multi-member files.
    Gzip,
    /// zstd (`.zst`, `.zstd`).
    Zstd,
}

impl Compression {
    /// The compression a file name implies.
    pub fn of(name: &str) -> Self {
        if name.ends_with(".gz") {
            Compression::Gzip
        } else if name.ends_with(".zst") || name.ends_with(".zstd") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// The raw bytes of one file, hashed as they are read (the input fingerprint).
pub type RawReader = HashingReader<ObjectReader>;

/// Opens `file` as raw bytes, counting fetched bytes into `progress`.
pub fn open_raw(
    store: &Arc<dyn ObjectStore>,
    file: &InputFile,
    handle: &Handle,
    progress: &Arc<AtomicU64>,
) -> RawReader {
    let reader = ObjectReader::new(store.clone(), file.path.clone(), file.size, handle.clone())
        .with_counter(progress.clone());
    HashingReader::new(reader)
}

/// Wraps raw bytes in the decompressor the file name asks for, buffered for line reading.
pub fn decoded<'a, R: Read + 'a>(raw: R, name: &str) -> io::Result<Box<dyn BufRead + 'a>> {
    const BUF: usize = 1 << 20;
    Ok(match Compression::of(name) {
        Compression::None => Box::new(BufReader::with_capacity(BUF, raw)),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            BUF,
            flate2::read::MultiGzDecoder::new(raw),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            BUF,
            zstd::stream::read::Decoder::new(raw)?,
        )),
    })
}

/// Drops a UTF-8 byte-order mark from the start of a file's first bytes: it marks the encoding
/// (editors on Windows write one) and is not part of the first record or document.
pub fn drop_bom(bytes: &mut Vec<u8>) {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    if bytes.starts_with(BOM) {
        bytes.drain(..BOM.len());
    }
}

/// Whether an IO error means the data stopped in the middle (truncated compressed input).
pub fn is_truncation(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::UnexpectedEof || e.to_string().contains("incomplete frame")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn decompresses_by_name_and_detects_truncation() {
        let data = b"line one\nline two\n".repeat(1000);
        for (name, packed) in [
            ("a.jsonl.gz", gzip(&data)),
            ("a.jsonl.zst", zstd::encode_all(&data[..], 3).unwrap()),
            ("a.jsonl", data.clone()),
        ] {
            let mut out = Vec::new();
            decoded(&packed[..], name)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data, "{name}");
            if name != "a.jsonl" {
                let cut = &packed[..packed.len() / 2];
                let err = decoded(cut, name)
                    .unwrap()
                    .read_to_end(&mut Vec::new())
                    .unwrap_err();
                assert!(is_truncation(&err), "{name}: {err}");
            }
        }
    }
}
