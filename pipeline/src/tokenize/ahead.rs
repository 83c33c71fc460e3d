//! Parts encoded ahead of the tokenize step, by the tasks of a partitioned run.
//!
//! The tokenize step runs once, after the run's manifest: alone, it would encode every document
//! of a partitioned run on one machine. So a task that ran every stage encodes the parts of its
//! own units with the configured tokenizer: the tokenized dataset's (every token) and, when
//! dropped documents are counted, the rejects' (token counts only). Each goes to
//! `<out>/_tokens/<dataset>.<part>.<key>.bin`, where the key hashes the tokenizer, the kind and
//! the part's checksum (read in blocks, as the manifest's are), so a file is only ever used for the
//! very part and tokenizer it was made from. The tokenize step reads those instead of encoding, in
//! the same order, so the version is the same byte for byte, and removes the folder when the
//! version is written.
//!
//! Format, little-endian: a seal (u64, the xxh3 of the file's name and the rest, so that a file
//! damaged, or moved to another part's name, is encoded again), the document count (u64) and
//! their text bytes (u64), each document's token count (u32), then with [`Kind::Tokens`] every
//! document's tokens (u32), end-of-document token included.

use std::path::{Path, PathBuf};

use arrow::array::{Array, StringArray};

use super::TokenizeError;
use super::documents::{for_each_batch, for_each_id};
use super::tokenizer::TextTokenizer;

/// The folder of the encoded parts, under the output folder.
pub const FOLDER: &str = "_tokens";

/// What is kept of a part's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every token: a part of the tokenized dataset.
    Tokens,
    /// Token counts only: a part of the rejects, for the dropped documents' counts.
    Counts,
}

/// A part's documents, encoded.
#[derive(Debug, Default, PartialEq)]
pub struct Encoded {
    /// Text bytes of the documents.
    pub text_bytes: u64,
    /// Tokens of each document, end-of-document token included.
    pub counts: Vec<u32>,
    /// Every document's tokens one after another ([`Kind::Tokens`]; empty otherwise).
    pub tokens: Vec<u32>,
}

impl Encoded {
    /// Each document's tokens, in order ([`Kind::Tokens`]).
    pub fn documents(&self) -> impl Iterator<Item = &[u32]> {
        let mut rest = self.tokens.as_slice();
        self.counts.iter().map(move |&n| {
            let (doc, after) = rest.split_at(n as usize);
            rest = after;
            doc
        })
    }

    fn to_bytes(&self) -> Vec<u8> {
        let words = self.counts.iter().chain(&self.tokens);
        let mut bytes = Vec::with_capacity(16 + 4 * (self.counts.len() + self.tokens.len()));
        bytes.extend((self.counts.len() as u64).to_le_bytes());
        bytes.extend(self.text_bytes.to_le_bytes());
        bytes.extend(words.flat_map(|w| w.to_le_bytes()));
        bytes
    }

    /// Parses what [`Encoded::to_bytes`] wrote for `kind`; `None` when the sizes do not add up.
    fn from_bytes(bytes: &[u8], kind: Kind) -> Option<Self> {
        let (head, body) = bytes.split_at_checked(16)?;
        let documents = usize::try_from(u64::from_le_bytes(head[..8].try_into().ok()?)).ok()?;
        let text_bytes = u64::from_le_bytes(head[8..].try_into().ok()?);
        let words: Vec<u32> = body
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        if body.len() % 4 != 0 || words.len() < documents {
            return None;
        }
        let (counts, tokens) = words.split_at(documents);
        let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
        let expected = if kind == Kind::Tokens { total } else { 0 };
        (tokens.len() as u64 == expected).then(|| Self {
            text_bytes,
            counts: counts.to_vec(),
            tokens: tokens.to_vec(),
        })
    }
}

/// Where the encoding of `part` of `kind` by `tokenizer` goes in `out`; the key hashes the
/// tokenizer, the end-of-document token, the kind and the part's checksum.
pub fn path(
    out: &Path,
    part: &Path,
    tokenizer: &TextTokenizer,
    kind: Kind,
) -> Result<PathBuf, TokenizeError> {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(tokenizer.hash().as_bytes());
    hasher.update(&tokenizer.eod().1.to_le_bytes());
    hasher.update(&[u8::from(kind == Kind::Tokens)]);
    hasher.update(&shards::checksum::checksum_file(part)?.to_le_bytes());
    let folder = part
        .parent()
        .and_then(Path::file_name)
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = part.file_stem().unwrap_or_default().to_string_lossy();
    let key = shards::checksum::to_hex(hasher.digest());
    Ok(out.join(FOLDER).join(format!("{folder}.{stem}.{key}.bin")))
}

/// Encodes the documents of `part`, keeping what `kind` says.
pub fn encode(
    part: &Path,
    tokenizer: &TextTokenizer,
    kind: Kind,
    batch_size: usize,
) -> Result<Encoded, TokenizeError> {
    let mut encoded = Encoded::default();
    for_each_batch(
        std::slice::from_ref(&part.to_path_buf()),
        batch_size,
        |docs| {
            let texts: Vec<&str> = docs.texts.iter().flatten().collect();
            encoded.text_bytes += texts.iter().map(|t| t.len() as u64).sum::<u64>();
            for tokens in tokenizer.encode_documents(&texts)? {
                encoded.counts.push(tokens.len() as u32);
                if kind == Kind::Tokens {
                    encoded.tokens.extend(tokens);
                }
            }
            Ok(())
        },
    )?;
    Ok(encoded)
}

/// Encodes `part` into its file under `out`, unless that file is there already; returns how many
/// documents it encoded.
pub fn write(
    out: &Path,
    part: &Path,
    tokenizer: &TextTokenizer,
    kind: Kind,
    batch_size: usize,
) -> Result<u64, TokenizeError> {
    let target = path(out, part, tokenizer, kind)?;
    if target.exists() {
        return Ok(0);
    }
    let encoded = encode(part, tokenizer, kind, batch_size)?;
    shards::atomic::write_file(&target, &seal(&target, encoded.to_bytes()))?;
    Ok(encoded.counts.len() as u64)
}

/// The hash that opens a file: of its name (which holds its key) and its contents.
fn seal_of(target: &Path, contents: &[u8]) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(target.file_name().unwrap_or_default().as_encoded_bytes());
    hasher.update(contents);
    hasher.digest()
}

/// `contents` as the file `target` holds them, behind their seal.
fn seal(target: &Path, contents: Vec<u8>) -> Vec<u8> {
    let mut bytes = seal_of(target, &contents).to_le_bytes().to_vec();
    bytes.extend(contents);
    bytes
}

/// The contents of the file `target` holds, if its seal matches them and its name.
fn unseal<'a>(target: &Path, bytes: &'a [u8]) -> Option<&'a [u8]> {
    let (seal, contents) = bytes.split_at_checked(8)?;
    (seal == seal_of(target, contents).to_le_bytes()).then_some(contents)
}

/// The encoding of `part` of `kind` by `tokenizer` that a task wrote, if there is a sound one.
pub fn read(
    out: &Path,
    part: &Path,
    tokenizer: &TextTokenizer,
    kind: Kind,
) -> Result<Option<Encoded>, TokenizeError> {
    if !out.join(FOLDER).is_dir() {
        return Ok(None);
    }
    let target = path(out, part, tokenizer, kind)?;
    let Ok(bytes) = std::fs::read(&target) else {
        return Ok(None);
    };
    let encoded = unseal(&target, &bytes).and_then(|contents| Encoded::from_bytes(contents, kind));
    if encoded.is_none() {
        tracing::warn!(
            "Encoding {} again: {} is damaged",
            part.display(),
            target.display()
        );
    }
    Ok(encoded)
}

/// Walks `part`'s documents in batches of `batch_size` beside `encoded`, one item a document in
/// the part's order, calling `f` with each batch's ids, sources and items: the batches encoding
/// the part here would make. A part with another number of documents than items is an error.
pub fn walk<T>(
    part: &Path,
    batch_size: usize,
    mut encoded: impl Iterator<Item = T>,
    mut f: impl FnMut(&StringArray, &StringArray, Vec<T>) -> Result<(), TokenizeError>,
) -> Result<(), TokenizeError> {
    let mismatch = || {
        TokenizeError::Input(format!(
            "{}: its encoding in {FOLDER}/ has another number of documents (remove {FOLDER}/ and run again)",
            part.display()
        ))
    };
    for_each_id(&[part.to_path_buf()], batch_size, |ids, sources| {
        let items: Option<Vec<T>> = (0..ids.len()).map(|_| encoded.next()).collect();
        f(ids, sources, items.ok_or_else(mismatch)?)
    })?;
    match encoded.next() {
        Some(_) => Err(mismatch()),
        None => Ok(()),
    }
}

/// Removes the encoded parts under `out`.
pub fn clear(out: &Path) -> Result<(), TokenizeError> {
    let dir = out.join(FOLDER);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(TokenizeError::Store(shards::StoreError::Io {
                op: "remove",
                path: dir,
                source: e,
            }))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_read_back_and_damaged_ones_are_refused() {
        let tokens = Encoded {
            text_bytes: 11,
            counts: vec![2, 0, 3],
            tokens: vec![5, 9, 1, 2, 3],
        };
        let bytes = tokens.to_bytes();
        assert_eq!(Encoded::from_bytes(&bytes, Kind::Tokens), Some(tokens));
        let read = Encoded::from_bytes(&bytes, Kind::Tokens).unwrap();
        let docs: Vec<&[u32]> = read.documents().collect();
        assert_eq!(docs, [&[5, 9][..], &[], &[1, 2, 3]]);
        assert_eq!(
            Encoded::from_bytes(&bytes[..bytes.len() - 4], Kind::Tokens),
            None
        );
        assert_eq!(Encoded::from_bytes(&bytes[..10], Kind::Tokens), None);
        assert_eq!(Encoded::from_bytes(&bytes, Kind::Counts), None);
        let counts = Encoded {
            text_bytes: 4,
            counts: vec![7, 1],
            tokens: Vec::new(),
        };
        assert_eq!(
            Encoded::from_bytes(&counts.to_bytes(), Kind::Counts),
            Some(counts)
        );
    }

    #[test]
    fn a_seal_holds_for_its_own_file_and_contents_only() {
        let (a, b) = (Path::new("_tokens/a.1.bin"), Path::new("_tokens/b.2.bin"));
        let sealed = seal(a, b"contents".to_vec());
        assert_eq!(unseal(a, &sealed), Some(&b"contents"[..]));
        assert_eq!(unseal(b, &sealed), None, "moved to another part's name");
        let mut flipped = sealed.clone();
        flipped[9] ^= 1;
        assert_eq!(unseal(a, &flipped), None, "damaged");
        assert_eq!(unseal(a, &sealed[..5]), None, "truncated");
    }
}
