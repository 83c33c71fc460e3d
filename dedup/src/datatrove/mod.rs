//! Datatrove's MinHash shingles and hash functions, reproduced so that a corpus deduplicated by
//! datatrove's `MinhashDedupSignature` (English, default `MinhashConfig`) can be deduplicated by
//! Refinery with the same candidate pairs.
//!
//! Datatrove simplifies the text and splits it into words with spaCy's blank English tokenizer
//! (a [`WordSplitter`] the caller supplies: `filters::simplify` has one), hashes every n-gram of
//! words joined by single spaces with xxh64, and takes 112 minima of `(a·x + b) mod (2⁶¹ − 1)`
//! (products wrapping at 2⁶⁴, as NumPy's `uint64` arithmetic does) with `a` and `b` drawn by
//! NumPy's legacy `RandomState(seed)` ([`random`]). A text with fewer words than the n-gram size
//! has no shingles.

pub mod random;

use std::fmt;

use xxhash_rust::xxh64::xxh64;

/// A function that calls its second argument with every word of a text, in order.
pub type SplitFn = fn(&str, &mut dyn FnMut(&str));

/// A named word-splitting function.
#[derive(Clone, Copy)]
pub struct WordSplitter {
    /// Stable name, part of a stage's settings (an index is only reused with the same one).
    pub name: &'static str,
    /// The splitting function.
    pub split: SplitFn,
}

impl fmt::Debug for WordSplitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for WordSplitter {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for WordSplitter {}

/// The Mersenne prime 2⁶¹ − 1 the hash functions reduce by.
pub const MERSENNE_PRIME: u64 = (1 << 61) - 1;

/// Appends the xxh64 of every `n`-gram of `text`'s words, joined by single spaces, to `out`.
pub fn shingle_hashes(text: &str, n: usize, words: WordSplitter, out: &mut Vec<u64>) {
    // Every word, one space after each; `ends[i]` is where word i's space is.
    let mut joined = String::new();
    let mut ends = Vec::new();
    (words.split)(text, &mut |w| {
        joined.push_str(w);
        ends.push(joined.len());
        joined.push(' ');
    });
    if ends.len() < n {
        return;
    }
    for last in n - 1..ends.len() {
        let start = if last + 1 == n { 0 } else { ends[last - n] + 1 };
        out.push(xxh64(&joined.as_bytes()[start..ends[last]], 0));
    }
}

/// The `a` and `b` of datatrove's `count` hash functions for `seed`: `randint(1, p)` then
/// `randint(0, p)`, `count` draws each, from one `RandomState(seed)`.
pub fn hash_parameters(seed: u32, count: usize) -> (Vec<u64>, Vec<u64>) {
    let mut state = random::RandomState::new(seed);
    let a = (0..count)
        .map(|_| state.randint(1, MERSENNE_PRIME))
        .collect();
    let b = (0..count)
        .map(|_| state.randint(0, MERSENNE_PRIME))
        .collect();
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Printed by `numpy.random.RandomState(1).randint(1, (1 << 61) - 1, dtype=np.uint64,
    /// size=(1, 112))` and the `randint(0, …)` after it, as datatrove draws them.
    #[test]
    fn parameters_are_numpys() {
        let (a, b) = hash_parameters(1, 112);
        assert_eq!(&a[..3], &NUMPY_A);
        assert_eq!(&b[..3], &NUMPY_B);
        assert!(a.iter().all(|&x| (1..MERSENNE_PRIME).contains(&x)));
    }

    const NUMPY_A: [u64; 3] = [
        775_169_054_918_279_404,
        1_758_426_461_858_698_313,
        2_109_959_069_025_162,
    ];
    const NUMPY_B: [u64; 3] = [
        1_062_448_801_025_099_917,
        1_324_811_268_927_594_100,
        1_217_488_311_597_731_462,
    ];

    fn by_space(text: &str, each: &mut dyn FnMut(&str)) {
        text.split_whitespace().for_each(each);
    }

    const BY_SPACE: WordSplitter = WordSplitter {
        name: "space",
        split: by_space,
    };

    #[test]
    fn shingles_are_xxh64_of_space_joined_ngrams() {
        let mut out = Vec::new();
        shingle_hashes("the cat  the\nhat", 2, BY_SPACE, &mut out);
        let expect: Vec<u64> = ["the cat", "cat the", "the hat"]
            .iter()
            .map(|g| xxh64(g.as_bytes(), 0))
            .collect();
        assert_eq!(out, expect);
        // Python: xxhash.xxh64_intdigest("the cat")
        assert_eq!(expect[0], 1_433_186_131_558_453_578);
        out.clear();
        shingle_hashes("too short", 3, BY_SPACE, &mut out);
        assert!(out.is_empty(), "fewer words than n: no shingles");
    }
}
