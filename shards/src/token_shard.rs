//! Token shards in llm.c's layout, so llm.c-style loaders and `numpy.memmap(offset=1024)` read
//! them: a header of 256 little-endian `i32` (magic, version, token count, then zeros) followed
//! by the tokens, little-endian. Tokens are `u16` (magic 20240520, version 1, llm.c's GPT-2
//! files) when every id fits, else `u32` (magic 20240801, version 7, llm.c's Llama-3 files).

/// Header size in `i32` values.
pub const HEADER_INTS: usize = 256;
/// Header size in bytes.
pub const HEADER_BYTES: usize = HEADER_INTS * 4;

/// How wide each token is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenWidth {
    /// 2 bytes: vocabularies of at most 65,536 ids.
    U16,
    /// 4 bytes.
    U32,
}

impl TokenWidth {
    /// The narrowest width holding every id of a vocabulary of `vocab_size` ids.
    pub fn for_vocab(vocab_size: u64) -> Self {
        if vocab_size <= 1 << 16 {
            Self::U16
        } else {
            Self::U32
        }
    }

    /// Bytes per token.
    pub fn bytes(self) -> usize {
        match self {
            Self::U16 => 2,
            Self::U32 => 4,
        }
    }

    fn magic_version(self) -> (i32, i32) {
        match self {
            Self::U16 => (20240520, 1),
            Self::U32 => (20240801, 7),
        }
    }
}

/// Why bytes are not a token shard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardFormatError {
    /// Shorter than the header.
    #[error("not a token shard: {0} bytes, shorter than the 1024-byte header")]
    NoHeader(usize),
    /// Unknown magic number or version.
    #[error("not a token shard: magic {magic}, version {version}")]
    UnknownFormat {
        /// The magic found.
        magic: i32,
        /// The version found.
        version: i32,
    },
    /// The body does not hold the header's token count.
    #[error(
        "token shard is truncated or padded: header says {expected} tokens, body holds {actual} bytes"
    )]
    WrongLength {
        /// Tokens the header announces.
        expected: u64,
        /// Bytes after the header.
        actual: u64,
    },
    /// A token id does not fit the width.
    #[error("token id {0} does not fit in 16 bits")]
    TokenTooLarge(u32),
    /// More tokens than the header's `i32` count can say.
    #[error("{0} tokens do not fit one shard (at most 2^31 - 1)")]
    TooManyTokens(usize),
}

/// The header of a shard holding `count` tokens of `width`.
pub fn header(width: TokenWidth, count: usize) -> Result<[u8; HEADER_BYTES], ShardFormatError> {
    let n = i32::try_from(count).map_err(|_| ShardFormatError::TooManyTokens(count))?;
    let (magic, version) = width.magic_version();
    let mut out = [0u8; HEADER_BYTES];
    for (i, v) in [magic, version, n].into_iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

/// A whole shard: header and tokens.
pub fn encode(tokens: &[u32], width: TokenWidth) -> Result<Vec<u8>, ShardFormatError> {
    let mut out = Vec::with_capacity(HEADER_BYTES + tokens.len() * width.bytes());
    out.extend_from_slice(&header(width, tokens.len())?);
    append_body(tokens, width, &mut out)?;
    Ok(out)
}

/// Appends tokens to a shard body at `width`, little-endian.
pub fn append_body(
    tokens: &[u32],
    width: TokenWidth,
    out: &mut Vec<u8>,
) -> Result<(), ShardFormatError> {
    match width {
        TokenWidth::U16 => {
            for &t in tokens {
                let t = u16::try_from(t).map_err(|_| ShardFormatError::TokenTooLarge(t))?;
                out.extend_from_slice(&t.to_le_bytes());
            }
        }
        TokenWidth::U32 => tokens
            .iter()
            .for_each(|t| out.extend_from_slice(&t.to_le_bytes())),
    }
    Ok(())
}

/// Reads a header: the token width and count.
pub fn read_header(bytes: &[u8]) -> Result<(TokenWidth, u64), ShardFormatError> {
    if bytes.len() < HEADER_BYTES {
        return Err(ShardFormatError::NoHeader(bytes.len()));
    }
    let int = |i: usize| {
        i32::from_le_bytes([
            bytes[i * 4],
            bytes[i * 4 + 1],
            bytes[i * 4 + 2],
            bytes[i * 4 + 3],
        ])
    };
    let (magic, version, count) = (int(0), int(1), int(2));
    let width = [TokenWidth::U16, TokenWidth::U32]
        .into_iter()
        .find(|w| w.magic_version() == (magic, version))
        .ok_or(ShardFormatError::UnknownFormat { magic, version })?;
    let count =
        u64::try_from(count).map_err(|_| ShardFormatError::UnknownFormat { magic, version })?;
    Ok((width, count))
}

/// Decodes a whole shard, checking that the body holds exactly the announced tokens.
pub fn decode(bytes: &[u8]) -> Result<Vec<u32>, ShardFormatError> {
    let (width, count) = read_header(bytes)?;
    let body = &bytes[HEADER_BYTES..];
    if body.len() as u64 != count * width.bytes() as u64 {
        return Err(ShardFormatError::WrongLength {
            expected: count,
            actual: body.len() as u64,
        });
    }
    let mut out = Vec::with_capacity(count as usize);
    decode_body(body, width, &mut out);
    Ok(out)
}

/// Appends the little-endian tokens of `width` in `body` (shard bytes after the header, or a
/// slice of them) to `out`.
pub fn decode_body(body: &[u8], width: TokenWidth, out: &mut Vec<u32>) {
    match width {
        TokenWidth::U16 => out.extend(
            body.chunks_exact(2)
                .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]]))),
        ),
        TokenWidth::U32 => out.extend(
            body.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_is_llm_c_s() {
        let bytes = encode(&[50256, 1, 2], TokenWidth::U16).unwrap();
        assert_eq!(bytes.len(), 1024 + 6);
        assert_eq!(
            &bytes[..12],
            [20240520i32, 1, 3].map(i32::to_le_bytes).concat()
        );
        assert!(bytes[12..1024].iter().all(|&b| b == 0));
        assert_eq!(&bytes[1024..1026], 50256u16.to_le_bytes());
        let wide = encode(&[70_000], TokenWidth::U32).unwrap();
        assert_eq!(&wide[..8], [20240801i32, 7].map(i32::to_le_bytes).concat());
        assert_eq!(TokenWidth::for_vocab(50_304), TokenWidth::U16);
        assert_eq!(TokenWidth::for_vocab(128_256), TokenWidth::U32);
    }

    #[test]
    fn damaged_shards_are_refused() {
        assert_eq!(
            encode(&[70_000], TokenWidth::U16),
            Err(ShardFormatError::TokenTooLarge(70_000))
        );
        let mut bytes = encode(&[1, 2, 3], TokenWidth::U16).unwrap();
        bytes.pop();
        assert!(matches!(
            decode(&bytes),
            Err(ShardFormatError::WrongLength {
                expected: 3,
                actual: 5
            })
        ));
        assert_eq!(decode(&bytes[..10]), Err(ShardFormatError::NoHeader(10)));
        bytes[0] ^= 1;
        assert!(matches!(
            decode(&bytes),
            Err(ShardFormatError::UnknownFormat { .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trips(tokens in prop::collection::vec(any::<u32>(), 0..300), narrow in any::<bool>()) {
            let width = if narrow { TokenWidth::U16 } else { TokenWidth::U32 };
            let tokens: Vec<u32> = if narrow { tokens.iter().map(|t| t & 0xFFFF).collect() } else { tokens };
            let bytes = encode(&tokens, width).unwrap();
            prop_assert_eq!(read_header(&bytes).unwrap(), (width, tokens.len() as u64));
            prop_assert_eq!(decode(&bytes).unwrap(), tokens);
        }
    }
}
