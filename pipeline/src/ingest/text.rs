//! Plain-text reader: each file is one document, located by its path; a byte-order mark opening
//! the file is not part of the text.

use std::io::Read;

use shards::InputFile;

use super::decode::{self, RawReader};
use super::emit::{Emitter, Stop};
use super::reason;
use crate::schema::RAW_CAP;

/// Reads one text file into `em` (one record). Files over `max_doc_bytes` are quarantined
/// without being read.
pub fn read<'r>(
    open: impl FnOnce() -> &'r mut RawReader,
    file: &InputFile,
    em: &mut Emitter,
) -> Result<(), Stop> {
    let (uri, locator) = (file.uri.as_str(), file.path.as_ref());
    let limit = em.max_doc_bytes();
    if decode::Compression::of(locator) == decode::Compression::None && file.size > limit {
        let detail = format!("file is {} bytes, over max_doc_bytes = {limit}", file.size);
        return em.reject_record(uri, locator, reason::OVERSIZE_DOCUMENT, detail, None);
    }
    if file.size == 0 {
        return em.file_error(
            uri,
            None,
            reason::EMPTY_FILE,
            "the file is empty".into(),
            None,
        );
    }
    let raw = open();
    let mut bytes = Vec::new();
    let read =
        decode::decoded(raw, locator).and_then(|r| r.take(limit + 1).read_to_end(&mut bytes));
    if let Err(e) = read {
        let why = if decode::is_truncation(&e) {
            reason::TRUNCATED_INPUT
        } else {
            reason::READ_ERROR
        };
        return em.file_error(uri, None, why, e.to_string(), None);
    }
    decode::drop_bom(&mut bytes);
    match String::from_utf8(bytes) {
        Ok(text) => em.document(uri, locator, None, &text, "{}"),
        Err(e) => {
            let detail = format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to());
            let mut raw = e.into_bytes();
            raw.truncate(RAW_CAP);
            em.reject_record(uri, locator, reason::INVALID_UTF8, detail, Some(raw))
        }
    }
}
