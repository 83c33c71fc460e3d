//! `manifest.json`: what one version of a token dataset holds and where it came from.
//!
//! Written last, after every shard and index it lists is durable, so a version without a
//! manifest does not exist for readers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// File format name written in the manifest.
pub const FORMAT: &str = "refinery.shards";
/// Version of the manifest layout.
pub const FORMAT_VERSION: u32 = 1;

/// The two splits of a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Training tokens.
    Train,
    /// The held-out documents of each source.
    Validation,
}

impl Split {
    /// Both splits, in the order they are listed.
    pub const ALL: [Split; 2] = [Split::Train, Split::Validation];

    /// The folder name (`train`, `validation`).
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
        }
    }
}

/// What a version was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parent {
    /// `run` (a pipeline output folder) or `shards` (an earlier version of this dataset).
    pub kind: String,
    /// Where it lives.
    pub uri: String,
    /// Its identity: the run manifest's checksum, or the version id.
    pub id: String,
}

/// The tokenizer that produced the tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenizerInfo {
    /// xxh3-64 of the `tokenizer.json` bytes.
    pub hash: String,
    /// Vocabulary size, special tokens included.
    pub vocab_size: u64,
    /// The end-of-document token written after every document.
    pub eod: String,
    /// Its id.
    pub eod_id: u32,
    /// The `tokenizer.json` stored in the version, relative to its folder (absent in versions
    /// written before it was stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// Documents and tokens, per split, of one source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Documents.
    pub documents: u64,
    /// Tokens (end-of-document tokens included).
    pub tokens: u64,
}

/// A Parquet document index beside a shard: one row per document piece in the shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Path relative to the version folder.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// xxh3-64 of its bytes (16 hex digits).
    pub checksum: String,
}

/// One token shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// Path relative to the version folder.
    pub path: String,
    /// Which split it belongs to.
    pub split: Split,
    /// The source whose tokens it holds (a shard holds one source).
    pub source: String,
    /// Size in bytes, header included.
    pub bytes: u64,
    /// Tokens.
    pub tokens: u64,
    /// xxh3-64 of its bytes (16 hex digits).
    pub checksum: String,
    /// Documents that start in this shard.
    pub documents: u64,
    /// Tokens per source (one entry: shards hold one source each).
    pub source_tokens: BTreeMap<String, u64>,
    /// Its document index.
    pub index: IndexEntry,
}

/// A version's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The version id (derived from config, tokenizer and inputs).
    pub version: String,
    /// What it was made from.
    pub parents: Vec<Parent>,
    /// Hash of the tokenize settings.
    pub config_hash: String,
    /// The tokenizer.
    pub tokenizer: TokenizerInfo,
    /// Bytes per token on disk (2 or 4).
    pub token_bytes: u8,
    /// Fraction of each source's documents held out for validation.
    pub validation_fraction: f64,
    /// Fewest documents each source holds out (at most half of its documents); 0, and absent
    /// from the file, when the fraction alone decides.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub validation_min_docs: usize,
    /// Refinery's version.
    pub tool_version: String,
    /// When it was written (UTC, RFC 3339).
    pub created: String,
    /// Per source, per split (`train`, `validation`): documents and tokens.
    pub sources: BTreeMap<String, BTreeMap<Split, Totals>>,
    /// Every shard, by split, source and position.
    pub shards: Vec<ShardEntry>,
    /// Other files of the version (lineage tables such as `dropped_tokens.parquet`), with
    /// their sizes and checksums.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<IndexEntry>,
}

impl Manifest {
    /// The shards of one split and source, in stream order.
    pub fn shards_of(&self, split: Split, source: &str) -> impl Iterator<Item = &ShardEntry> {
        self.shards
            .iter()
            .filter(move |s| s.split == split && s.source == source)
    }

    /// Totals of a split summed over sources.
    pub fn split_totals(&self, split: Split) -> Totals {
        self.sources
            .values()
            .filter_map(|m| m.get(&split))
            .fold(Totals::default(), |a, t| Totals {
                documents: a.documents + t.documents,
                tokens: a.tokens + t.tokens,
            })
    }
}

/// Now as RFC 3339 UTC with seconds (`2026-11-23T18:37:10Z`).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// The environment variable that fixes the time written into outputs, in seconds since the
/// Unix epoch: the reproducible-builds convention, honoured so that a rerun of a job, or a
/// killed run resumed, gives byte-identical files.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

/// The latest instant RFC 3339 can write (9999-12-31T23:59:59Z), in seconds since 1970.
const LAST_RFC3339_SECOND: u64 = 253_402_300_799;

/// The value of [`SOURCE_DATE_EPOCH`]: `None` when it is unset or empty, an error naming the
/// value when it is not a whole number of seconds up to the year 9999.
pub fn source_date_epoch() -> Result<Option<u64>, String> {
    parse_epoch(std::env::var_os(SOURCE_DATE_EPOCH))
}

/// [`source_date_epoch`] of a value read from the environment.
fn parse_epoch(value: Option<std::ffi::OsString>) -> Result<Option<u64>, String> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    value
        .to_str()
        .and_then(|v| v.parse().ok())
        .filter(|&secs| secs <= LAST_RFC3339_SECOND)
        .map(Some)
        .ok_or_else(|| {
            format!(
                "{SOURCE_DATE_EPOCH}={value:?} is not a whole number of seconds since 1970 \
                 (up to {LAST_RFC3339_SECOND}, the end of the year 9999)"
            )
        })
}

/// The time written into an output (a version's `created`, a report's `generated`), as RFC
/// 3339: [`SOURCE_DATE_EPOCH`] when set, otherwise now. (The command line refuses a malformed
/// value before any work; here one reads as unset.)
pub fn output_time_rfc3339() -> String {
    match source_date_epoch() {
        Ok(Some(secs)) => rfc3339(secs),
        _ => now_rfc3339(),
    }
}

/// Seconds since the Unix epoch as RFC 3339 UTC (civil-from-days, proleptic Gregorian).
fn rfc3339(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Whether a count is 0 (left out of the file).
fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_459_030), "2026-11-23T18:37:10Z");
    }

    #[test]
    fn source_date_epoch_is_whole_seconds_or_unset() {
        let parse = |v: Option<&str>| parse_epoch(v.map(Into::into));
        assert_eq!(parse(Some("951782400")), Ok(Some(951_782_400)));
        assert_eq!(parse(Some("")), Ok(None));
        assert_eq!(parse(None), Ok(None));
        let last = LAST_RFC3339_SECOND.to_string();
        assert_eq!(parse(Some(&last)), Ok(Some(LAST_RFC3339_SECOND)));
        assert_eq!(rfc3339(LAST_RFC3339_SECOND), "9999-12-31T23:59:59Z");
        for bad in [
            "yesterday",
            "-1",
            "1.5",
            " 1",
            "253402300800",
            "18446744073709551615",
        ] {
            let err = parse(Some(bad)).unwrap_err();
            assert!(err.contains("is not a whole number of seconds"), "{err}");
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
