//! The dedup functions over Arrow string arrays, one document per row, in parallel with rayon.
//! Results are in row order, whatever the thread count.

use arrow::array::{Array, StringArray};
use rayon::prelude::*;

use crate::exact::text_key;
use crate::minhash::MinHasher;
use crate::shingle::{Shingling, shingle_hashes, shingle_set};

/// The exact-duplicate key of every row.
pub fn text_keys(texts: &StringArray) -> Vec<u128> {
    (0..texts.len())
        .into_par_iter()
        .map(|i| text_key(texts.value(i)))
        .collect()
}

/// The MinHash signature of every row (`None` for a row without shingles).
pub fn signatures(
    texts: &StringArray,
    shingling: Shingling,
    hasher: &MinHasher,
) -> Vec<Option<Vec<u32>>> {
    (0..texts.len())
        .into_par_iter()
        .map_init(Vec::new, |buf, i| {
            buf.clear();
            shingle_hashes(texts.value(i), shingling, buf);
            hasher.signature(buf)
        })
        .collect()
}

/// The shingle set (sorted, distinct hashes) of every row.
pub fn shingle_sets(texts: &StringArray, shingling: Shingling) -> Vec<Vec<u64>> {
    (0..texts.len())
        .into_par_iter()
        .map(|i| shingle_set(texts.value(i), shingling))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_order_for_any_thread_count() {
        let texts: Vec<String> = (0..500)
            .map(|i| format!("doc {i} says {}", i % 7))
            .collect();
        let arr = StringArray::from(texts.clone());
        let h = MinHasher::new(14, 8, 3);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let serial = one.install(|| signatures(&arr, Shingling::Words(2), &h));
        assert_eq!(serial, signatures(&arr, Shingling::Words(2), &h));
        let direct: Vec<_> = texts
            .iter()
            .map(|t| h.signature(&shingle_set(t, Shingling::Words(2))))
            .collect();
        assert_eq!(serial, direct);
        assert_eq!(text_keys(&arr)[3], text_key("doc 3 says 3"));
    }
}
