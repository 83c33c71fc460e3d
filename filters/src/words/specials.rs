//! spaCy's English tokenizer special cases: strings tokenized by a fixed rule (`don't` is `do`,
//! `n't`; `U.S.` stays whole). Generated from `spacy.blank("en").tokenizer.rules`.
//!
//! Like spaCy, special cases apply twice: to whole chunks while affixes are peeled, and then
//! (spaCy's special-case matcher) to runs of adjacent tokens that spell a special case, such as
//! `t` `.` in `t.Fatal(err)`, which become `t.`.

use std::sync::LazyLock;

use xxhash_rust::xxh3::xxh3_64;

/// Strings with token lengths, looked up by hash. Nearly every lookup misses (most words are
/// not special cases), so two 64-Kibit bitmaps answer most of them: one of the strings' lengths
/// and end bytes, tested before hashing, and one of hash bits; the rest search the sorted
/// hashes.
struct Table {
    /// (xxh3 of the string, the string, its tokens' byte lengths), sorted.
    entries: Vec<(u64, String, Vec<usize>)>,
    /// The entries' hashes, in the same order.
    hashes: Vec<u64>,
    /// Bit [`screen_bit`] of every entry's string is set.
    screen: Vec<u64>,
    /// Bit `h % 65536` is set for every entry's hash `h`.
    bitmap: Vec<u64>,
    /// The longest string, in bytes: longer ones are not looked up.
    longest: usize,
}

const BITMAP_BITS: u64 = 1 << 16;

/// A 16-bit digest of a non-empty string that costs less than hashing it: its length (mod 16)
/// and the low six bits of its first and last bytes (which tell ASCII letters apart).
fn screen_bit(s: &[u8]) -> usize {
    let (first, last) = (usize::from(s[0]), usize::from(s[s.len() - 1]));
    ((s.len() & 15) << 12) | ((first & 63) << 6) | (last & 63)
}

fn set(bitmap: &mut [u64], bit: usize) {
    bitmap[bit / 64] |= 1 << (bit % 64);
}

fn is_set(bitmap: &[u64], bit: usize) -> bool {
    bitmap[bit / 64] & (1 << (bit % 64)) != 0
}

impl Table {
    fn new(entries: impl IntoIterator<Item = (String, Vec<usize>)>) -> Self {
        let mut entries: Vec<(u64, String, Vec<usize>)> = entries
            .into_iter()
            .map(|(k, v)| (xxh3_64(k.as_bytes()), k, v))
            .collect();
        entries.sort();
        let longest = entries.iter().map(|e| e.1.len()).max().unwrap_or(0);
        let hashes: Vec<u64> = entries.iter().map(|e| e.0).collect();
        let mut screen = vec![0u64; (BITMAP_BITS / 64) as usize];
        let mut bitmap = screen.clone();
        for (h, key, _) in &entries {
            set(&mut screen, screen_bit(key.as_bytes()));
            set(&mut bitmap, (h % BITMAP_BITS) as usize);
        }
        Self {
            entries,
            hashes,
            screen,
            bitmap,
            longest,
        }
    }

    fn get(&self, s: &str) -> Option<&[usize]> {
        if s.is_empty() || s.len() > self.longest || !is_set(&self.screen, screen_bit(s.as_bytes()))
        {
            return None;
        }
        let h = xxh3_64(s.as_bytes());
        if !is_set(&self.bitmap, (h % BITMAP_BITS) as usize) {
            return None;
        }
        let first = self.hashes.partition_point(|&e| e < h);
        self.entries[first..]
            .iter()
            .take_while(|e| e.0 == h)
            .find(|e| e.1 == s)
            .map(|e| e.2.as_slice())
    }
}

/// Each special case's token lengths in bytes, by the whole string (the tokens concatenated).
static SPECIALS: LazyLock<Table> = LazyLock::new(|| {
    Table::new(
        include_str!("en_special_cases.tsv")
            .lines()
            .filter(|l| !l.is_empty())
            .map(|line| {
                let lens = line.split('\t').map(str::len).collect();
                (line.replace('\t', ""), lens)
            }),
    )
});

/// Special cases that tokenize into several tokens without the special-case rules, with the
/// byte lengths of those tokens: what the matcher looks for.
static SPLIT_SPECIALS: LazyLock<(Table, usize)> = LazyLock::new(|| {
    let mut longest = 0;
    let mut patterns = Vec::new();
    for (_, key, _) in &SPECIALS.entries {
        let mut tokens = Vec::new();
        super::tokenize_chunk(key, false, &mut tokens);
        if tokens.len() > 1 {
            longest = longest.max(tokens.len());
            patterns.push((key.clone(), tokens.iter().map(|t| t.len()).collect()));
        }
    }
    (Table::new(patterns), longest)
});

/// Whether `s` is a special case.
pub(super) fn is_special(s: &str) -> bool {
    SPECIALS.get(s).is_some()
}

/// Pushes `s`'s special-case tokens and returns true, or returns false if it is not one.
pub(super) fn emit<'a>(s: &'a str, out: &mut Vec<&'a str>) -> bool {
    let Some(lens) = SPECIALS.get(s) else {
        return false;
    };
    let mut at = 0;
    for &len in lens {
        out.push(&s[at..at + len]);
        at += len;
    }
    true
}

/// Replaces runs of `tokens` (consecutive pieces of `chunk`) that spell a special case by that
/// special case's tokens. Longer runs win, as in spaCy's `_filter_special_spans`.
pub(super) fn merge_split_specials<'a>(chunk: &'a str, tokens: &mut Vec<&'a str>) {
    let (patterns, longest) = &*SPLIT_SPECIALS;
    let offset = |t: &str| t.as_ptr() as usize - chunk.as_ptr() as usize;
    let mut matches: Vec<(usize, usize)> = Vec::new();
    for i in 0..tokens.len() {
        for len in 2..=(*longest).min(tokens.len() - i) {
            let run = &tokens[i..i + len];
            let (start, end) = (offset(run[0]), offset(run[len - 1]) + run[len - 1].len());
            if end - start > patterns.longest {
                break;
            }
            if let Some(lens) = patterns.get(&chunk[start..end])
                && lens.iter().copied().eq(run.iter().map(|t| t.len()))
            {
                matches.push((i, i + len));
            }
        }
    }
    if matches.is_empty() {
        return;
    }
    // Longest first, earlier start first among equals; keep runs whose ends are not taken.
    matches.sort_by_key(|&(s, e)| (e - s, std::cmp::Reverse(s)));
    let mut taken = vec![false; tokens.len()];
    let mut kept: Vec<(usize, usize)> = Vec::new();
    for &(s, e) in matches.iter().rev() {
        if !taken[s] && !taken[e - 1] {
            kept.push((s, e));
        }
        taken[s..e].iter_mut().for_each(|t| *t = true);
    }
    kept.sort_unstable();
    let old = std::mem::take(tokens);
    let mut i = 0;
    for (s, e) in kept {
        tokens.extend_from_slice(&old[i..s]);
        let (start, end) = (offset(old[s]), offset(old[e - 1]) + old[e - 1].len());
        emit(&chunk[start..end], tokens);
        i = e;
    }
    tokens.extend_from_slice(&old[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_special_case_and_split_pattern_is_found() {
        for table in [&*SPECIALS, &SPLIT_SPECIALS.0] {
            assert!(table.entries.len() > 100);
            for (_, key, lens) in &table.entries {
                assert_eq!(table.get(key), Some(lens.as_slice()), "{key:?}");
                assert_eq!(table.get(&format!("{key}x")), None, "{key:?}x");
            }
        }
        assert_eq!(SPECIALS.get(""), None);
    }
}
