//! One Parquet part: compressed (zstd level 1 unless the caller names a [`Codec`]), written under
//! a temporary name, checksummed while written, renamed into place on [`PartWriter::finish`].

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};
use shards::checksum::{HashingWriter, to_hex};

use super::codec::Codec;

/// Rows per row group at most.
const ROW_GROUP_ROWS: usize = 64 * 1024;
/// Bytes buffered per row group at most: bounds a writer's memory.
const ROW_GROUP_BYTES: usize = 32 << 20;

/// A finished part, as listed in manifests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartInfo {
    /// Path relative to the output folder, `/`-separated.
    pub path: String,
    /// Rows in the part.
    pub rows: u64,
    /// File size.
    pub bytes: u64,
    /// xxh3-64 of the file, hex.
    pub xxh3: String,
}

impl PartInfo {
    /// Whether the part is in `out` with the size and checksum recorded.
    pub fn is_intact(&self, out: &Path) -> bool {
        let path = out.join(&self.path);
        std::fs::metadata(&path).is_ok_and(|m| m.len() == self.bytes)
            && shards::checksum::checksum_file(&path).is_ok_and(|sum| to_hex(sum) == self.xxh3)
    }
}

/// Errors writing or reading a part.
#[derive(Debug, thiserror::Error)]
pub enum PartError {
    /// Parquet encoding failed.
    #[error("writing {path}: {source}")]
    Parquet {
        /// The part.
        path: PathBuf,
        /// The cause.
        source: parquet::errors::ParquetError,
    },
    /// The file is not readable Parquet.
    #[error("reading {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: parquet::errors::ParquetError,
    },
    /// A file operation failed.
    #[error(transparent)]
    Store(#[from] shards::StoreError),
}

/// Writes one part.
pub struct PartWriter {
    writer: ArrowWriter<HashingWriter<BufWriter<File>>>,
    tmp: PathBuf,
    target: PathBuf,
    relative: String,
    rows: u64,
}

fn properties(codec: Codec) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(codec.parquet())
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
        .set_dictionary_enabled(false)
        .set_created_by(format!("refinery {}", env!("CARGO_PKG_VERSION")));
    for low_cardinality in ["source", "uri", "stage", "rule", "scope", "reason"] {
        b = b.set_column_dictionary_enabled(ColumnPath::from(low_cardinality), true);
    }
    for bulky in ["text", "meta", "raw", "detail"] {
        b = b.set_column_statistics_enabled(ColumnPath::from(bulky), EnabledStatistics::None);
    }
    b.build()
}

impl PartWriter {
    /// Starts `<out>/<relative>` with `schema`, zstd-compressed.
    pub fn create(out: &Path, relative: &str, schema: SchemaRef) -> Result<Self, PartError> {
        Self::create_with(out, relative, schema, Codec::default())
    }

    /// Starts `<out>/<relative>` with `schema`, compressed with `codec`.
    pub fn create_with(
        out: &Path,
        relative: &str,
        schema: SchemaRef,
        codec: Codec,
    ) -> Result<Self, PartError> {
        let target = out.join(relative);
        let (file, tmp) = shards::atomic::create_temp(&target)?;
        let sink = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
        let writer =
            ArrowWriter::try_new(sink, schema, Some(properties(codec))).map_err(|source| {
                PartError::Parquet {
                    path: target.clone(),
                    source,
                }
            })?;
        Ok(Self {
            writer,
            tmp,
            target,
            relative: relative.to_string(),
            rows: 0,
        })
    }

    /// Appends a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), PartError> {
        self.rows += batch.num_rows() as u64;
        self.writer
            .write(batch)
            .map_err(|source| PartError::Parquet {
                path: self.target.clone(),
                source,
            })
    }

    /// Closes the file, syncs it and renames it into place.
    pub fn finish(self) -> Result<PartInfo, PartError> {
        let parquet_err = |source| PartError::Parquet {
            path: self.target.clone(),
            source,
        };
        let sink = self.writer.into_inner().map_err(parquet_err)?;
        let (buffered, sum, bytes) = sink.finish();
        let file = buffered.into_inner().map_err(|e| shards::StoreError::Io {
            op: "flush",
            path: self.tmp.clone(),
            source: e.into_error(),
        })?;
        shards::atomic::commit(file, &self.tmp, &self.target)?;
        Ok(PartInfo {
            path: self.relative,
            rows: self.rows,
            bytes,
            xxh3: to_hex(sum),
        })
    }
}

/// Reads a part back batch by batch (the input of a segment after a two-pass stage).
pub fn read_part(path: &Path, batch_size: usize) -> Result<ParquetRecordBatchReader, PartError> {
    read_part_columns(path, batch_size, None)
}

/// Reads a part back batch by batch, only the top-level `columns` when named (a column the
/// part lacks is left out: the caller's column lookup reports it).
pub fn read_part_columns(
    path: &Path,
    batch_size: usize,
    columns: Option<&[&str]>,
) -> Result<ParquetRecordBatchReader, PartError> {
    let file = File::open(path).map_err(|source| shards::StoreError::Io {
        op: "open",
        path: path.to_path_buf(),
        source,
    })?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| {
            let b = match columns {
                Some(names) => {
                    let mask = ProjectionMask::columns(b.parquet_schema(), names.iter().copied());
                    b.with_projection(mask)
                }
                None => b,
            };
            b.with_batch_size(batch_size).build()
        })
        .map_err(|source| PartError::Unreadable {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::tests::docs;

    #[test]
    fn parts_round_trip_with_correct_checksum_and_identical_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let batch = docs(&["one", "two", "three"]);
        let mut infos = Vec::new();
        for name in ["a/p1.parquet", "a/p2.parquet"] {
            let mut w = PartWriter::create(dir.path(), name, batch.schema()).unwrap();
            w.write(&batch).unwrap();
            infos.push(w.finish().unwrap());
        }
        let path = dir.path().join("a/p1.parquet");
        assert_eq!(
            infos[0].xxh3,
            to_hex(shards::checksum::checksum_file(&path).unwrap())
        );
        assert_eq!(
            infos[0].xxh3, infos[1].xxh3,
            "same batches must give the same bytes"
        );
        assert_eq!(infos[0].rows, 3);
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let back: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
        assert_eq!(back, vec![batch]);
        assert!(!shards::atomic::temp_path(&path).exists());
    }

    #[test]
    fn every_accepted_codec_writes_parts_that_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let batch = docs(&["one", "two", "three"]);
        for (i, name) in ["zstd(3)", "lz4_raw", "snappy", "uncompressed"]
            .iter()
            .enumerate()
        {
            let codec: Codec = name.parse().unwrap();
            let relative = format!("c/p{i}.parquet");
            let mut w =
                PartWriter::create_with(dir.path(), &relative, batch.schema(), codec).unwrap();
            w.write(&batch).unwrap();
            w.finish().unwrap();
            let file = File::open(dir.path().join(&relative)).unwrap();
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
            let column = builder.metadata().row_group(0).column(0).compression();
            // Files do not record a zstd level: compare codecs, not levels.
            let same = std::mem::discriminant(&column) == std::mem::discriminant(&codec.parquet());
            assert!(same, "{name}: {column:?}");
            let back: Vec<RecordBatch> =
                builder.build().unwrap().collect::<Result<_, _>>().unwrap();
            assert_eq!(back, vec![batch.clone()], "{name}");
        }
    }
}
