//! Byte scans over text, [`CHUNK`] bytes at a time without branches inside a chunk, so that the
//! compiler vectorises them.

/// Bytes looked at together by the chunked scans (here and in the rules' scans of `clean`).
pub(super) const CHUNK: usize = 32;

/// The first position in `bytes` where `pred` holds, tested [`CHUNK`] bytes at a time without an
/// early exit inside a chunk, so that the test vectorises.
pub(super) fn find_byte(bytes: &[u8], pred: impl Fn(u8) -> bool + Copy) -> Option<usize> {
    let chunk = bytes
        .chunks(CHUNK)
        .position(|c| c.iter().fold(false, |any, &b| any | pred(b)))?;
    let start = chunk * CHUNK;
    bytes[start..]
        .iter()
        .position(|&b| pred(b))
        .map(|i| start + i)
}

/// The low bits of 8 flag bytes (each 0 or 1) as one byte, flag `k` in bit `k`: the
/// multiplication moves flag `k` (bit `8k`) to bit `56 + k`, and every other product lands
/// below bit 56 (without carrying into it) or above bit 63.
pub(super) fn gather_flags(eight: [u8; 8]) -> u32 {
    let shifted = u64::from_le_bytes(eight).wrapping_mul(0x0102_0408_1020_4080) >> 56;
    u32::try_from(shifted).expect("8 bits")
}
