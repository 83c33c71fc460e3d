//! The scratch files of a dedup stage, under `<out>/_work/<stage>/` while it runs: bucket-key
//! rows (Parquet, sorted later by DataFusion within the memory budget), fixed-size MinHash
//! signatures and, for `verify`, shingle sets. Memory held here is one buffered batch of key rows.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, UInt32Array, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// Key rows buffered before a batch is written.
const KEY_BATCH: usize = 64 * 1024;
/// Key rows per scratch file.
const KEYS_PER_FILE: usize = 4 << 20;

/// An I/O failure in the scratch folder, as a message.
pub(crate) type WorkResult<T> = Result<T, String>;

fn io(what: &str, path: &Path) -> impl Fn(std::io::Error) -> String {
    let msg = format!("{what} {}", path.display());
    move |e| format!("{msg}: {e}")
}

/// Schema of key rows: a bucket key (two words), the document id (two words) and its ordinal.
pub(crate) fn key_schema() -> SchemaRef {
    let u64f = |n: &str| Field::new(n, DataType::UInt64, false);
    Arc::new(Schema::new(vec![
        u64f("key_hi"),
        u64f("key_lo"),
        u64f("id_hi"),
        u64f("id_lo"),
        Field::new("ord", DataType::UInt32, false),
    ]))
}

/// Appends key rows to uncompressed Parquet files in the scratch folder.
pub(crate) struct KeyRows {
    dir: PathBuf,
    buf: [Vec<u64>; 4],
    ords: Vec<u32>,
    writer: Option<ArrowWriter<File>>,
    in_file: usize,
    files: usize,
}

impl KeyRows {
    /// Writes into `dir` (created).
    pub(crate) fn new(dir: PathBuf) -> WorkResult<Self> {
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        Ok(Self {
            dir,
            buf: Default::default(),
            ords: Vec::new(),
            writer: None,
            in_file: 0,
            files: 0,
        })
    }

    /// The folder holding the key files.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adds one row.
    pub(crate) fn push(&mut self, key: u128, id: u128, ord: u32) -> WorkResult<()> {
        let [kh, kl, ih, il] = &mut self.buf;
        kh.push((key >> 64) as u64);
        kl.push(key as u64);
        ih.push((id >> 64) as u64);
        il.push(id as u64);
        self.ords.push(ord);
        if self.ords.len() >= KEY_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> WorkResult<()> {
        if self.ords.is_empty() {
            return Ok(());
        }
        if self.writer.is_none() || self.in_file >= KEYS_PER_FILE {
            self.close_file()?;
            let path = self.dir.join(format!("keys-{:05}.parquet", self.files));
            let file = File::create(&path).map_err(io("create", &path))?;
            let props = WriterProperties::builder()
                .set_compression(Compression::UNCOMPRESSED)
                .set_dictionary_enabled(false)
                .build();
            let writer =
                ArrowWriter::try_new(file, key_schema(), Some(props)).map_err(|e| e.to_string())?;
            self.writer = Some(writer);
            self.files += 1;
            self.in_file = 0;
        }
        let mut columns: Vec<ArrayRef> = self
            .buf
            .iter_mut()
            .map(|b| Arc::new(UInt64Array::from(std::mem::take(b))) as ArrayRef)
            .collect();
        columns.push(Arc::new(UInt32Array::from(std::mem::take(&mut self.ords))));
        let batch = RecordBatch::try_new(key_schema(), columns).map_err(|e| e.to_string())?;
        self.in_file += batch.num_rows();
        if let Some(w) = self.writer.as_mut() {
            w.write(&batch).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn close_file(&mut self) -> WorkResult<()> {
        if let Some(w) = self.writer.take() {
            w.close().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Writes what is buffered and closes the current file.
    pub(crate) fn finish(&mut self) -> WorkResult<()> {
        self.flush()?;
        self.close_file()
    }

    /// True when no row was ever written.
    pub(crate) fn is_empty(&self) -> bool {
        self.files == 0 && self.ords.is_empty()
    }
}

/// A scratch file written from start to end, then sealed and read at random offsets.
struct AppendFile {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    reader: Option<File>,
}

impl AppendFile {
    fn create(path: PathBuf) -> WorkResult<Self> {
        let file = File::create(&path).map_err(io("create", &path))?;
        Ok(Self {
            path,
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
            reader: None,
        })
    }

    /// Appends `bytes`.
    fn write(&mut self, bytes: &[u8]) -> WorkResult<()> {
        let w = self.writer.as_mut().ok_or("scratch file already sealed")?;
        w.write_all(bytes).map_err(io("write", &self.path))
    }

    /// Ends appending; reads can start.
    fn seal(&mut self) -> WorkResult<()> {
        if let Some(w) = self.writer.take() {
            w.into_inner()
                .map_err(|e| format!("flush {}: {e}", self.path.display()))?;
        }
        self.reader = Some(File::open(&self.path).map_err(io("open", &self.path))?);
        Ok(())
    }

    /// Fills `buf` from `offset`.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> WorkResult<()> {
        let file = self.reader.as_ref().ok_or("scratch file not sealed")?;
        file.read_exact_at(buf, offset)
            .map_err(io("read", &self.path))
    }
}

/// Fixed-size records of `u32`s, one per ordinal, appended in order and read back at random.
pub(crate) struct Slots {
    file: AppendFile,
    width: usize,
}

impl Slots {
    /// A new file of `width` values per record.
    pub(crate) fn create(path: PathBuf, width: usize) -> WorkResult<Self> {
        Ok(Self {
            file: AppendFile::create(path)?,
            width,
        })
    }

    /// Appends the next record (all zeros for `None`).
    pub(crate) fn push(&mut self, values: Option<&[u32]>) -> WorkResult<()> {
        let bytes: Vec<u8> = (0..self.width)
            .flat_map(|i| values.map_or(0, |v| v[i]).to_le_bytes())
            .collect();
        self.file.write(&bytes)
    }

    /// Ends appending; records can be read from now on.
    pub(crate) fn seal(&mut self) -> WorkResult<()> {
        self.file.seal()
    }

    /// Record `ord`.
    pub(crate) fn get(&self, ord: u32) -> WorkResult<Vec<u32>> {
        let mut bytes = vec![0u8; 4 * self.width];
        let offset = ord as u64 * bytes.len() as u64;
        self.file.read_at(&mut bytes, offset)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

/// Variable-length records of `u64`s (shingle sets), appended in ordinal order; 12 bytes of
/// memory per record for its offset and length.
pub(crate) struct Sets {
    file: AppendFile,
    at: Vec<(u64, u32)>,
    end: u64,
}

impl Sets {
    /// A new file.
    pub(crate) fn create(path: PathBuf) -> WorkResult<Self> {
        Ok(Self {
            file: AppendFile::create(path)?,
            at: Vec::new(),
            end: 0,
        })
    }

    /// Appends the next record.
    pub(crate) fn push(&mut self, set: &[u64]) -> WorkResult<()> {
        let bytes: Vec<u8> = set.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.file.write(&bytes)?;
        self.at.push((self.end, set.len() as u32));
        self.end += bytes.len() as u64;
        Ok(())
    }

    /// Ends appending.
    pub(crate) fn seal(&mut self) -> WorkResult<()> {
        self.file.seal()
    }

    /// Record `ord`, or `None` past the records written (documents of a previous run).
    pub(crate) fn get(&self, ord: u32) -> WorkResult<Option<Vec<u64>>> {
        let Some(&(offset, len)) = self.at.get(ord as usize) else {
            return Ok(None);
        };
        let mut bytes = vec![0u8; 8 * len as usize];
        self.file.read_at(&mut bytes, offset)?;
        Ok(Some(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ))
    }
}
