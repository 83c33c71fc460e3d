//! Exact duplicates: two texts are duplicates when their 128-bit xxh3 keys are equal.

use xxhash_rust::xxh3::xxh3_128;

/// The xxh3-128 of the text's UTF-8 bytes. Run normalisation first so that texts differing only
/// in Unicode form or whitespace share a key.
pub fn text_key(text: &str) -> u128 {
    xxh3_128(text.as_bytes())
}
