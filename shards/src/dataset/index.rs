//! The Parquet document index beside each shard: which documents a shard holds and where.
//!
//! | column | meaning |
//! |---|---|
//! | `id` | the document id |
//! | `source` | its source |
//! | `offset` | its first token in this shard (0 = the first token after the header) |
//! | `tokens` | its tokens in this shard (end-of-document token included) |
//! | `continued` | true when the document began in the previous shard of the same stream |
//! | `version` | the version id |
//! | `split` | `train` or `validation` |
//! | `shard` | the shard's path inside the version (`train/news/000001.bin`) |
//! | `stream_offset` | its first token in this shard, counted from the start of the source's stream |
//!
//! The last four make every index self-describing, so the indexes of a version read together
//! are its `shard_docs` lineage table (doc id → version, shard, token range).
//!
//! A document longer than the room left in a shard continues in the next one, so a stream's
//! shards all hold exactly the target token count except its last.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

/// The index schema.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("offset", DataType::UInt64, false),
        Field::new("tokens", DataType::UInt64, false),
        Field::new("continued", DataType::Boolean, false),
        Field::new("version", DataType::Utf8, false),
        Field::new("split", DataType::Utf8, false),
        Field::new("shard", DataType::Utf8, false),
        Field::new("stream_offset", DataType::UInt64, false),
    ]))
}

/// Where a shard sits: the columns every row of its index repeats.
#[derive(Debug, Clone, Copy)]
pub struct ShardPlace<'a> {
    /// The source.
    pub source: &'a str,
    /// The version id.
    pub version: &'a str,
    /// `train` or `validation`.
    pub split: &'a str,
    /// The shard's path inside the version.
    pub shard: &'a str,
    /// The stream offset of the shard's first token.
    pub stream_start: u64,
}

/// The rows of one shard's index, gathered while the shard fills.
#[derive(Debug, Default, Clone)]
pub struct IndexRows {
    ids: Vec<String>,
    offsets: Vec<u64>,
    tokens: Vec<u64>,
    continued: Vec<bool>,
}

impl IndexRows {
    /// Adds one document piece.
    pub fn push(&mut self, id: &str, offset: u64, tokens: u64, continued: bool) {
        self.ids.push(id.to_string());
        self.offsets.push(offset);
        self.tokens.push(tokens);
        self.continued.push(continued);
    }

    /// Documents that start in the shard.
    pub fn starts(&self) -> u64 {
        self.continued.iter().filter(|c| !**c).count() as u64
    }

    /// The index as Parquet bytes (zstd).
    pub fn to_parquet(&self, place: ShardPlace) -> Result<Vec<u8>, parquet::errors::ParquetError> {
        let n = self.ids.len();
        let repeat = |value: &str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(value, n)))
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(&self.ids)),
            repeat(place.source),
            Arc::new(UInt64Array::from(self.offsets.clone())),
            Arc::new(UInt64Array::from(self.tokens.clone())),
            Arc::new(BooleanArray::from(self.continued.clone())),
            repeat(place.version),
            repeat(place.split),
            repeat(place.shard),
            Arc::new(UInt64Array::from_iter_values(
                self.offsets.iter().map(|o| place.stream_start + o),
            )),
        ];
        let batch = RecordBatch::try_new(schema(), columns)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, schema(), Some(props))?;
        writer.write(&batch)?;
        writer.close()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[test]
    fn index_round_trips_through_parquet() {
        let mut rows = IndexRows::default();
        rows.push("a", 0, 10, true);
        rows.push("b", 10, 5, false);
        assert_eq!(rows.starts(), 1);
        let place = ShardPlace {
            source: "web",
            version: "v1",
            split: "train",
            shard: "train/web/000002.bin",
            stream_start: 200,
        };
        let bytes = rows.to_parquet(place).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .unwrap()
            .build()
            .unwrap();
        let batch = reader.into_iter().next().unwrap().unwrap();
        assert_eq!(batch.schema(), schema());
        let offsets = batch
            .column(2)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap();
        assert_eq!(offsets.values(), &[0, 10]);
        let sources = batch
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(sources.value(1), "web");
        let stream = batch
            .column(8)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap();
        assert_eq!(stream.values(), &[200, 210]);
        let shard = batch
            .column(7)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(shard.value(0), "train/web/000002.bin");
    }
}
