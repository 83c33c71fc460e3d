//! The Arrow schemas Refinery writes, each defined once.
//!
//! **Documents** (every stage's input and output):
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `id` | Utf8 | stable id: xxh3-128 (hex) of source name, uri and key, see [`doc_id`] |
//! | `source` | Utf8 | the source's configured name |
//! | `uri` | Utf8 | the file it came from (`file:///...` or `s3://bucket/key`) |
//! | `locator` | Utf8 | where in the file: 1-based line (JSONL), 0-based row (Parquet), path (text files) |
//! | `text` | Utf8 | the text, as the last stage left it |
//! | `content_hash` | Utf8 | xxh3-64 (hex) of the text as ingested, before any stage changed it |
//! | `meta` | Utf8 | the record's other fields as a JSON object (keys sorted) |
//! | `language` | Utf8, nullable | ISO 639-3 code set by a `language` stage, else null |
//! | `language_score` | Float64, nullable | that stage's confidence in 0..1, else null |
//!
//! **Rejects**: the document columns of each dropped document plus `stage`, `rule`, `value`
//! (the measured value) and `threshold`.
//!
//! **Edits**: changes stages made to documents they kept, see [`edits`].
//!
//! **Lineage documents** (`documents` table, one row per ingested document): `id`, `source`,
//! `uri`, `locator`, `content_hash` and `bytes` (of the text as ingested), see [`lineage_documents`].
//!
//! **Decisions** (one row per document and stage it reached), see [`decisions`].
//!
//! **Quarantine**: records (and whole files) ingest could not turn into documents: `source`,
//! `uri`, `locator`, `scope` (`record` or `file`), `reason` (a stable name such as
//! `ingest.malformed_json`), `detail` (a readable message) and `raw` (the record's bytes, up to
//! [`RAW_CAP`]).

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

/// Most bytes of a quarantined record kept in its `raw` column.
pub const RAW_CAP: usize = 1 << 20;

/// Column names of the document schema, in order.
pub mod col {
    /// Stable document id.
    pub const ID: &str = "id";
    /// Source name.
    pub const SOURCE: &str = "source";
    /// File URI.
    pub const URI: &str = "uri";
    /// Position inside the file.
    pub const LOCATOR: &str = "locator";
    /// Document text.
    pub const TEXT: &str = "text";
    /// Hash of the ingested text.
    pub const CONTENT_HASH: &str = "content_hash";
    /// Other fields as JSON.
    pub const META: &str = "meta";
    /// Detected language (nullable).
    pub const LANGUAGE: &str = "language";
    /// Confidence of the detected language (nullable).
    pub const LANGUAGE_SCORE: &str = "language_score";
}

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
}

/// The document schema.
pub fn documents() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields = [
            col::ID,
            col::SOURCE,
            col::URI,
            col::LOCATOR,
            col::TEXT,
            col::CONTENT_HASH,
            col::META,
        ]
        .map(utf8)
        .to_vec();
        fields.extend([
            Field::new(col::LANGUAGE, DataType::Utf8, true),
            Field::new(col::LANGUAGE_SCORE, DataType::Float64, true),
        ]);
        Arc::new(Schema::new(fields))
    });
    SCHEMA.clone()
}

/// The rejects schema: documents plus the decision that dropped them: `stage`, `rule`, the
/// measured `value` and the `threshold` it failed; for a duplicate also `duplicate_of` (the id of
/// the document kept in its place) and `cluster` (the duplicate cluster's id, see the `clusters`
/// table), null otherwise.
pub fn rejects() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields: Vec<Field> = documents()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.extend([
            utf8("stage"),
            utf8("rule"),
            Field::new("value", DataType::Float64, false),
            Field::new("threshold", DataType::Float64, false),
            Field::new("duplicate_of", DataType::Utf8, true),
            Field::new("cluster", DataType::Utf8, true),
        ]);
        Arc::new(Schema::new(fields))
    });
    SCHEMA.clone()
}

/// The edits schema: one row per change a stage made to a document it kept: `id`, `source`,
/// `stage`, `rule` (what changed, such as `c4.lines_removed`), `bytes_before`, `bytes_after` and
/// `detail` (the change's counts as a JSON object).
pub fn edits() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            utf8(col::ID),
            utf8(col::SOURCE),
            utf8("stage"),
            utf8("rule"),
            Field::new("bytes_before", DataType::UInt64, false),
            Field::new("bytes_after", DataType::UInt64, false),
            utf8("detail"),
        ]))
    });
    SCHEMA.clone()
}

/// The `documents` lineage table: every ingested document without its text.
pub fn lineage_documents() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields = [
            col::ID,
            col::SOURCE,
            col::URI,
            col::LOCATOR,
            col::CONTENT_HASH,
        ]
        .map(utf8)
        .to_vec();
        fields.push(Field::new("bytes", DataType::UInt64, false));
        Arc::new(Schema::new(fields))
    });
    SCHEMA.clone()
}

/// The `decisions` lineage table: one row per document and stage it reached: `id`, `source`,
/// `stage`, `stage_index` (0-based position in the config), `decision` (`kept` or `dropped`),
/// `rule` (the failed rule of a dropped document, or the edit of a changed one; null when kept
/// unchanged), `value` and `threshold` (of a dropped document), `duplicate_of` and `cluster` (of
/// a dropped duplicate), `bytes_before` and `bytes_after` (text size going in and coming out; 0
/// after for a dropped document).
pub fn decisions() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let nullable = |name: &str, t: DataType| Field::new(name, t, true);
        Arc::new(Schema::new(vec![
            utf8(col::ID),
            utf8(col::SOURCE),
            utf8("stage"),
            Field::new("stage_index", DataType::UInt32, false),
            utf8("decision"),
            nullable("rule", DataType::Utf8),
            nullable("value", DataType::Float64),
            nullable("threshold", DataType::Float64),
            nullable("duplicate_of", DataType::Utf8),
            nullable("cluster", DataType::Utf8),
            Field::new("bytes_before", DataType::UInt64, false),
            Field::new("bytes_after", DataType::UInt64, false),
        ]))
    });
    SCHEMA.clone()
}

/// The quarantine schema.
pub fn quarantine() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            utf8("source"),
            utf8("uri"),
            Field::new("locator", DataType::Utf8, true),
            utf8("scope"),
            utf8("reason"),
            utf8("detail"),
            Field::new("raw", DataType::Binary, true),
        ]))
    });
    SCHEMA.clone()
}

/// The stable id of a document: xxh3-128 of `source`, `uri` and `key` (the record's configured id
/// field when there is one, else its locator), separated by NUL bytes, as 32 hex digits.
pub fn doc_id(source: &str, uri: &str, key: &str) -> String {
    let mut bytes = Vec::with_capacity(source.len() + uri.len() + key.len() + 2);
    for (i, part) in [source, uri, key].iter().enumerate() {
        if i > 0 {
            bytes.push(0);
        }
        bytes.extend_from_slice(part.as_bytes());
    }
    format!("{:032x}", xxh3_128(&bytes))
}

/// The content hash of a text: xxh3-64 as 16 hex digits.
pub fn content_hash(text: &str) -> String {
    format!("{:016x}", xxh3_64(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_separate_their_parts() {
        let id = doc_id("wiki", "file:///a.jsonl", "7");
        assert_eq!(id.len(), 32);
        assert_eq!(id, doc_id("wiki", "file:///a.jsonl", "7"));
        assert_ne!(doc_id("ab", "c", "1"), doc_id("a", "bc", "1"));
        assert_eq!(content_hash("hello"), format!("{:016x}", xxh3_64(b"hello")));
    }

    #[test]
    fn rejects_extend_documents() {
        let (d, r) = (documents(), rejects());
        assert_eq!(&r.fields()[..d.fields().len()], &d.fields()[..]);
        assert_eq!(r.field(r.fields().len() - 1).name(), "cluster");
    }
}
