//! JSONL reader: one JSON object a line (`\n` or `\r\n`), streamed through the decompressor, lines
//! capped so one giant line cannot exhaust memory. A byte-order mark opening the file is skipped.

use std::io::{self, BufRead};

use super::decode::{self, RawReader};
use super::emit::{Emitter, Stop};
use super::reason;
use super::record::parse_record;
use crate::schema::RAW_CAP;

/// Reads one JSONL file from `raw` into `em`. `text_field` and `id_field` name the record's fields.
pub fn read(
    raw: &mut RawReader,
    uri: &str,
    name: &str,
    text_field: &str,
    id_field: Option<&str>,
    em: &mut Emitter,
) -> Result<(), Stop> {
    let mut lines = match decode::decoded(raw, name) {
        Ok(r) => r,
        Err(e) => return em.file_error(uri, None, reason::READ_ERROR, e.to_string(), None),
    };
    // JSON escapes at most 6 bytes per text byte: longer lines cannot hold an acceptable text.
    let cap = (em.max_doc_bytes() as usize)
        .saturating_mul(6)
        .saturating_add(64 << 10);
    let (mut line, mut lineno, mut records) = (Vec::new(), 0u64, 0u64);
    // Escaped texts are decoded here, one after another, instead of into a new string each.
    let mut text_buffer = String::new();
    loop {
        line.clear();
        let len = match read_line_capped(&mut lines, &mut line, cap) {
            Ok(Some(len)) => len,
            Ok(None) => break,
            Err(e) => {
                let (why, at) = (
                    if decode::is_truncation(&e) {
                        reason::TRUNCATED_INPUT
                    } else {
                        reason::READ_ERROR
                    },
                    lineno + 1,
                );
                let detail = format!("{e} (at line {at}; earlier lines were read)");
                let raw = (!line.is_empty()).then(|| line.clone());
                return em.file_error(uri, Some(at.to_string()), why, detail, raw);
            }
        };
        lineno += 1;
        let locator = lineno.to_string();
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        if lineno == 1 {
            decode::drop_bom(&mut line);
        }
        if len > cap {
            let detail = format!(
                "record is {len} bytes, over the line cap of {cap} bytes (6 × max_doc_bytes)"
            );
            em.reject_record(
                uri,
                &locator,
                reason::OVERSIZE_DOCUMENT,
                detail,
                Some(line[..RAW_CAP.min(line.len())].to_vec()),
            )?;
            records += 1;
            continue;
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            let at = std::str::from_utf8(&line)
                .err()
                .map_or(0, |e| e.valid_up_to());
            em.reject_record(
                uri,
                &locator,
                reason::INVALID_UTF8,
                format!("invalid UTF-8 at byte {at} of the line"),
                Some(line.clone()),
            )?;
            records += 1;
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        if records == 0 && text.trim_start().starts_with('[') {
            let detail = "the file is one JSON array, not JSON Lines (one object a line); \
                          convert it with `jq -c '.[]'`";
            return em.file_error(
                uri,
                Some(locator),
                reason::NOT_JSON_LINES,
                detail.into(),
                None,
            );
        }
        records += 1;
        match parse_record(text, text_field, id_field, &mut text_buffer) {
            Ok(doc) => em.document(uri, &locator, doc.key.as_deref(), doc.text, &doc.meta)?,
            Err((why, detail)) => {
                em.reject_record(uri, &locator, why, detail, Some(line.clone()))?
            }
        }
    }
    if records == 0 {
        return em.file_error(
            uri,
            None,
            reason::EMPTY_FILE,
            "the file holds no records".into(),
            None,
        );
    }
    Ok(())
}

/// Reads one line (with its `\n`) into `out`, keeping at most `cap` bytes of it. Returns the
/// line's full length, or `None` at end of input.
fn read_line_capped(
    r: &mut dyn BufRead,
    out: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Option<usize>> {
    let mut total = 0;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok((total > 0).then_some(total));
        }
        let (n, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let keep = n.min(cap.saturating_sub(out.len()));
        out.extend_from_slice(&buf[..keep]);
        r.consume(n);
        total += n;
        if done {
            return Ok(Some(total));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_capped_but_measured() {
        let data = format!("{}\nshort\nlast-no-newline", "x".repeat(100));
        let mut r = io::BufReader::with_capacity(16, data.as_bytes());
        let mut out = Vec::new();
        assert_eq!(read_line_capped(&mut r, &mut out, 10).unwrap(), Some(101));
        assert_eq!(out.len(), 10);
        out.clear();
        assert_eq!(read_line_capped(&mut r, &mut out, 10).unwrap(), Some(6));
        out.clear();
        assert_eq!(read_line_capped(&mut r, &mut out, 100).unwrap(), Some(15));
        out.clear();
        assert_eq!(read_line_capped(&mut r, &mut out, 100).unwrap(), None);
    }
}
