//! The Parquet document index beside each shard: which documents a shard holds and where.
//!
//! | column | meaning |
//! |---|---|
//! | `id` | the document id |
//! | `source` | its source |
//! | `offset` | its first token in this shard (0 = the first token after the header) |
//! | `tokens` | its tokens in this shard (end-of-document token included) |
//! | `continued` | true when the document began in the previous shard of the same stream |
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
    ]))
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
    pub fn to_parquet(&self, source: &str) -> Result<Vec<u8>, parquet::errors::ParquetError> {
        let n = self.ids.len();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(&self.ids)),
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                source, n,
            ))),
            Arc::new(UInt64Array::from(self.offsets.clone())),
            Arc::new(UInt64Array::from(self.tokens.clone())),
            Arc::new(BooleanArray::from(self.continued.clone())),
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
        let bytes = rows.to_parquet("web").unwrap();
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
    }
}
