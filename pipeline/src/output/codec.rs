//! The codec of the document datasets (`[output] compression`).
//!
//! Written as in the config: `zstd` (level 1, the default), `zstd(N)` for a level from 1 to 22,
//! `lz4_raw`, `snappy` or `uncompressed`. Lineage and report tables are always zstd level 1:
//! they are small, and audits read them for years.

use std::fmt;
use std::str::FromStr;

use parquet::basic::{Compression, ZstdLevel};
use serde::{Deserialize, Serialize};

/// A Parquet codec this build can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Codec(Compression);

/// The codecs the config accepts, for messages.
const ACCEPTED: &str =
    "`zstd`, `zstd(N)` with N from 1 to 22, `lz4_raw`, `snappy` or `uncompressed`";

impl Codec {
    /// The `parquet` crate's value.
    pub fn parquet(self) -> Compression {
        self.0
    }
}

/// zstd at level 1, the codec of every other part.
impl Default for Codec {
    fn default() -> Self {
        Codec(Compression::ZSTD(ZstdLevel::default()))
    }
}

impl FromStr for Codec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("compression `{s}`: {why}; expected {ACCEPTED}");
        if s.eq_ignore_ascii_case("zstd") {
            return Ok(Codec::default());
        }
        // `parquet` parses `NAME(LEVEL)`, but slices the level without checking its brackets.
        if let Some((_, level)) = s.split_once('(')
            && (level.len() < 2 || !level.ends_with(')'))
        {
            return Err(bad("a level is written `(N)`"));
        }
        match Compression::from_str(s).map_err(|e| bad(&e.to_string()))? {
            c @ (Compression::ZSTD(_)
            | Compression::LZ4_RAW
            | Compression::SNAPPY
            | Compression::UNCOMPRESSED) => Ok(Codec(c)),
            _ => Err(bad("this build does not write that codec")),
        }
    }
}

impl TryFrom<String> for Codec {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Codec> for String {
    fn from(c: Codec) -> String {
        c.to_string()
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Compression::ZSTD(level) => write!(f, "zstd({})", level.compression_level()),
            Compression::LZ4_RAW => f.write_str("lz4_raw"),
            Compression::SNAPPY => f.write_str("snappy"),
            _ => f.write_str("uncompressed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_names_parse_and_print_back() {
        for (text, printed) in [
            ("zstd", "zstd(1)"),
            ("ZSTD", "zstd(1)"),
            ("zstd(1)", "zstd(1)"),
            ("zstd(19)", "zstd(19)"),
            ("lz4_raw", "lz4_raw"),
            ("SNAPPY", "snappy"),
            ("uncompressed", "uncompressed"),
        ] {
            let codec: Codec = text.parse().unwrap();
            assert_eq!(codec.to_string(), printed);
            assert_eq!(codec.to_string().parse::<Codec>().unwrap(), codec);
        }
        assert_eq!(Codec::default(), "zstd(1)".parse().unwrap());
    }

    #[test]
    fn other_codecs_and_bad_levels_are_refused_with_the_accepted_list() {
        for text in [
            "gzip(6)",
            "brotli(4)",
            "lz4",
            "lzo",
            "zstd(0)",
            "zstd(23)",
            "zstd(",
            "zstd()",
            "zstd(3",
            "zstd(x)",
            "snappy(2)",
            "zip",
            "",
        ] {
            let err = text.parse::<Codec>().unwrap_err();
            assert!(err.contains("zstd(N)"), "{text}: {err}");
        }
    }
}
