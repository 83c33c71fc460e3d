//! Ingest: turn input files into document batches, quarantining what cannot be read.
//!
//! - [`plan`]: expand sources into [`Unit`]s of work (one per JSONL or Parquet file; text files
//!   grouped), the partitioned form of ingest: any subset of units can run anywhere.
//! - [`batch`]: document and quarantine batch builders.
//! - [`decode`]: streaming decompression (`.gz`, `.zst`) over an object reader.
//! - [`jsonl`], [`parquet`], [`text`]: the format readers.
//! - [`emit`]: the [`Emitter`] every reader writes to; it enforces size limits, strictness and
//!   the accounting `records read = documents + quarantined records`.

pub mod batch;
pub mod decode;
pub mod emit;
pub mod jsonl;
pub mod parquet;
pub mod plan;
pub mod record;
pub mod text;

pub use batch::{Quarantined, Scope};
pub use emit::{Emitter, IngestCounts, Stop};
pub use plan::{Unit, plan_units};

/// Stable names of quarantine reasons.
pub mod reason {
    /// A line that is not a JSON object.
    pub const MALFORMED_JSON: &str = "ingest.malformed_json";
    /// Bytes that are not UTF-8.
    pub const INVALID_UTF8: &str = "ingest.invalid_utf8";
    /// A record without the configured text field (or a null one).
    pub const MISSING_TEXT_FIELD: &str = "ingest.missing_text_field";
    /// A text field that is not a string.
    pub const TEXT_NOT_STRING: &str = "ingest.text_not_string";
    /// A record without the configured id field.
    pub const MISSING_ID_FIELD: &str = "ingest.missing_id_field";
    /// A document over `max_doc_bytes`.
    pub const OVERSIZE_DOCUMENT: &str = "ingest.oversize_document";
    /// A file that ends in the middle of compressed data.
    pub const TRUNCATED_INPUT: &str = "ingest.truncated_input";
    /// A file that could not be read (IO or format error).
    pub const READ_ERROR: &str = "ingest.read_error";
    /// A `.json` file holding one JSON array instead of one object a line.
    pub const NOT_JSON_LINES: &str = "ingest.not_json_lines";
    /// A file with no records.
    pub const EMPTY_FILE: &str = "ingest.empty_file";
    /// An input spec that names nothing.
    pub const MISSING_INPUT: &str = "ingest.missing_input";
    /// An input spec whose store cannot be reached (missing bucket, refused connection).
    pub const UNREACHABLE_INPUT: &str = "ingest.unreachable_input";
    /// A file whose format cannot be inferred from its name.
    pub const UNKNOWN_FORMAT: &str = "ingest.unknown_format";
}

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use object_store::ObjectStore;
use serde::{Deserialize, Serialize};
use shards::InputFile;
use shards::checksum::to_hex;
use tokio::runtime::Handle;

use crate::config::Format;

/// One input file as read, for manifests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFingerprint {
    /// The file.
    pub uri: String,
    /// Its size.
    pub bytes: u64,
    /// xxh3-64 of its raw bytes; absent when the file was not read (a text file over
    /// `max_doc_bytes`) or a Parquet file could not be read again for it (see [`read_unit`]).
    pub xxh3: Option<String>,
}

/// The xxh3-64 of a Parquet file, from one more streamed read: the reader fetches it by range,
/// in no fixed order. A failed read leaves the fingerprint without a checksum, with a warning;
/// the documents were read already.
fn parquet_checksum(
    store: &Arc<dyn ObjectStore>,
    file: &InputFile,
    handle: &Handle,
    progress: &Arc<AtomicU64>,
) -> Option<String> {
    let mut raw = decode::open_raw(store, file, handle, progress);
    match std::io::copy(&mut raw, &mut std::io::sink()) {
        Ok(_) => Some(to_hex(raw.digest())),
        Err(e) => {
            tracing::warn!(uri = %file.uri, "no checksum for {}: {e}", file.uri);
            None
        }
    }
}

/// Reads every file of `unit` into `em`, counting fetched bytes into `progress`.
pub fn read_unit(
    unit: &Unit,
    em: &mut Emitter,
    handle: &Handle,
    progress: &Arc<AtomicU64>,
) -> Result<Vec<InputFingerprint>, Stop> {
    let source = &unit.source;
    let mut fingerprints = Vec::with_capacity(unit.files.len());
    for file in &unit.files {
        let xxh3 = match unit.format {
            Format::Jsonl => {
                let mut raw = decode::open_raw(&unit.store, file, handle, progress);
                jsonl::read(
                    &mut raw,
                    &file.uri,
                    file.path.as_ref(),
                    &source.text_field,
                    source.id_field.as_deref(),
                    em,
                )?;
                Some(to_hex(raw.digest()))
            }
            Format::Text => {
                let mut opened = None;
                text::read(
                    || opened.insert(decode::open_raw(&unit.store, file, handle, progress)),
                    file,
                    em,
                )?;
                opened.map(|raw| to_hex(raw.digest()))
            }
            Format::Parquet => {
                parquet::read(
                    &unit.store,
                    file,
                    &source.text_field,
                    source.id_field.as_deref(),
                    handle,
                    em,
                )?;
                parquet_checksum(&unit.store, file, handle, progress)
            }
        };
        fingerprints.push(InputFingerprint {
            uri: file.uri.clone(),
            bytes: file.size,
            xxh3,
        });
    }
    Ok(fingerprints)
}
