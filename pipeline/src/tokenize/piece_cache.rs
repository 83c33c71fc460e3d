//! A thread's cache of the ids of text pieces, in two generations.
//!
//! Pieces follow a long-tailed distribution: a few thousand (common words with their leading
//! space) make most of a corpus, and a long tail of rare ones would fill any cache. When the
//! current generation reaches half the budget it becomes the previous one and the one before is
//! emptied; a piece found in the previous generation is copied to the current one. Frequent
//! pieces so stay cached across turns, rare ones leave, and memory stays near [`CACHE_BYTES`]
//! whatever the texts. (Clearing everything when full instead made encoding the corpus about
//! 15 % slower at the same budget: BENCHMARKS.md, session 28.)
//!
//! A generation allocates nothing per piece: its table's entries hold a piece's [`Key`] (up to
//! 16 bytes of it, which for most pieces is all of it) and up to two ids; longer pieces' bytes
//! and longer id lists go to two arenas, and emptying a generation keeps every allocation for
//! the next. A lookup hashes the key once and compares integers, except for pieces over 16
//! bytes, whose bytes are compared too. (With a map of boxed pieces to boxed ids, the lookups,
//! their string compares, moving pieces between generations and the allocator took 40 % of
//! the tokenize step: BENCHMARKS.md, session 32.)

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// Bytes a thread's cache counts at most: [`ENTRY_BYTES`] a piece, plus the bytes of pieces and
/// id lists too long for an entry.
pub const CACHE_BYTES: usize = 16 << 20;

/// Pieces longer than this are not cached: long ones seldom repeat (a paragraph of a script
/// without spaces, say) and would crowd out the rest.
pub const LONGEST_CACHED: usize = 256;

// An entry counts a piece's bytes and ids in `u16`s.
const _: () = assert!(LONGEST_CACHED <= u16::MAX as usize);

/// What a piece costs in a generation's table: its entry, its control byte and the table's
/// spare room.
const ENTRY_BYTES: usize = 40;

/// Ids an entry holds itself; longer lists go to the generation's arena.
const INLINE_IDS: usize = 2;

/// Pieces up to this long are held whole by their [`Key`].
const WHOLE_IN_KEY: usize = 16;

/// A piece's bytes packed into integers, with its hash: for pieces of up to 16 bytes, equal keys
/// mean equal pieces (the two words overlap and cover every byte); longer pieces share a key
/// only if their first and last 8 bytes and their lengths are the same.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Key {
    first: u64,
    last: u64,
    len: u32,
    hash: u64,
}

impl Key {
    /// The key of `piece`.
    pub fn of(piece: &str) -> Key {
        let b = piece.as_bytes();
        let n = b.len();
        let (first, last) = if n >= 8 {
            (word8(&b[..8]), word8(&b[n - 8..]))
        } else if n >= 4 {
            (word4(&b[..4]), word4(&b[n - 4..]))
        } else if n > 0 {
            // The first, middle and last bytes are every byte of a piece this short.
            let (a, m, z) = (b[0] as u64, b[n / 2] as u64, b[n - 1] as u64);
            (a | m << 8 | z << 16, 0)
        } else {
            (0, 0)
        };
        Key {
            first,
            last,
            len: n as u32,
            hash: hash(first, last, n, || b),
        }
    }
}

/// The hash of a piece of `len` bytes whose key holds `first` and `last`: of those words for a
/// piece the key holds whole, of all its bytes (`bytes()`) for a longer one, so that long pieces
/// with the same ends and length (URLs, say) spread over the table.
fn hash<'a>(first: u64, last: u64, len: usize, bytes: impl FnOnce() -> &'a [u8]) -> u64 {
    let state = foldhash::fast::FixedState::default();
    if len <= WHOLE_IN_KEY {
        state.hash_one((first, last, len))
    } else {
        state.hash_one(bytes())
    }
}

fn word8(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().expect("8 bytes"))
}

fn word4(b: &[u8]) -> u64 {
    u32::from_le_bytes(b.try_into().expect("4 bytes")) as u64
}

/// One cached piece.
struct Entry {
    first: u64,
    last: u64,
    /// The piece's length.
    len: u16,
    /// How many ids it has.
    n_ids: u16,
    /// Where the piece's bytes start in the generation's `text` (pieces over 16 bytes).
    text: u32,
    /// The ids themselves, or where they start in the generation's `ids` when there are more
    /// than [`INLINE_IDS`].
    ids: [u32; INLINE_IDS],
}

/// One generation of cached pieces.
#[derive(Default)]
struct Generation {
    table: HashTable<Entry>,
    /// Bytes of the pieces over 16 bytes, one after another.
    text: Vec<u8>,
    /// Id lists too long for an entry, one after another.
    ids: Vec<u32>,
    /// What [`CACHE_BYTES`] counts.
    bytes: usize,
}

impl Generation {
    fn find(&self, key: &Key, piece: &str) -> Option<&Entry> {
        self.table.find(key.hash, |e| {
            e.first == key.first
                && e.last == key.last
                && e.len as u32 == key.len
                && (piece.len() <= WHOLE_IN_KEY
                    || &self.text[e.text as usize..][..piece.len()] == piece.as_bytes())
        })
    }

    fn ids_of<'a>(&'a self, e: &'a Entry) -> &'a [u32] {
        let n = e.n_ids as usize;
        if n <= INLINE_IDS {
            &e.ids[..n]
        } else {
            &self.ids[e.ids[0] as usize..][..n]
        }
    }

    /// What keeping `piece` with `ids` costs.
    fn cost(piece: &str, ids: &[u32]) -> usize {
        let text = if piece.len() > WHOLE_IN_KEY {
            piece.len()
        } else {
            0
        };
        let ids = if ids.len() > INLINE_IDS {
            4 * ids.len()
        } else {
            0
        };
        ENTRY_BYTES + text + ids
    }

    /// Adds a piece known to be absent.
    fn add(&mut self, key: &Key, piece: &str, ids: &[u32]) {
        self.bytes += Self::cost(piece, ids);
        let mut entry = Entry {
            first: key.first,
            last: key.last,
            len: piece.len() as u16,
            n_ids: ids.len() as u16,
            text: 0,
            ids: [0; INLINE_IDS],
        };
        if piece.len() > WHOLE_IN_KEY {
            entry.text = self.text.len() as u32;
            self.text.extend_from_slice(piece.as_bytes());
        }
        let text = &self.text;
        if ids.len() > INLINE_IDS {
            entry.ids[0] = self.ids.len() as u32;
            self.ids.extend_from_slice(ids);
        } else {
            entry.ids[..ids.len()].copy_from_slice(ids);
        }
        self.table.insert_unique(key.hash, entry, |e| {
            let len = e.len as usize;
            hash(e.first, e.last, len, || &text[e.text as usize..][..len])
        });
    }

    /// Whether keeping `piece` with `ids` would take it over its half of [`CACHE_BYTES`].
    fn is_full_for(&self, piece: &str, ids: &[u32]) -> bool {
        self.bytes + Self::cost(piece, ids) > CACHE_BYTES / 2
    }

    fn clear(&mut self) {
        self.table.clear();
        self.text.clear();
        self.ids.clear();
        self.bytes = 0;
    }
}

/// One thread's cached ids, for one encoder at a time.
#[derive(Default)]
pub struct PieceCache {
    encoder: Option<u64>,
    /// The current generation.
    new: Generation,
    /// The generation before.
    old: Generation,
}

impl PieceCache {
    /// Makes the cache serve `encoder`, emptying it when it served another.
    pub fn serve(&mut self, encoder: u64) {
        if self.encoder != Some(encoder) {
            self.new.clear();
            self.old.clear();
            self.encoder = Some(encoder);
        }
    }

    /// Appends the ids of `piece` (whose key is `key`) to `out` when the cache holds them;
    /// whether it did. Ids found in the generation before are copied to the current one.
    pub fn get_into(&mut self, key: &Key, piece: &str, out: &mut Vec<u32>) -> bool {
        if let Some(e) = self.new.find(key, piece) {
            out.extend_from_slice(self.new.ids_of(e));
            return true;
        }
        let Some(e) = self.old.find(key, piece) else {
            return false;
        };
        let ids = self.old.ids_of(e);
        out.extend_from_slice(ids);
        if self.new.is_full_for(piece, ids) {
            // The turn empties the generation the ids are in.
            let ids = ids.to_vec();
            self.turn();
            self.new.add(key, piece, &ids);
        } else {
            self.new.add(key, piece, ids);
        }
        true
    }

    /// Caches the ids of `piece`, unless it is longer than [`LONGEST_CACHED`].
    pub fn insert(&mut self, key: &Key, piece: &str, ids: &[u32]) {
        if piece.len() <= LONGEST_CACHED {
            if self.new.is_full_for(piece, ids) {
                self.turn();
            }
            self.new.add(key, piece, ids);
        }
    }

    /// The current generation becomes the one before, and the one before is emptied to be the
    /// current one.
    fn turn(&mut self) {
        std::mem::swap(&mut self.new, &mut self.old);
        self.new.clear();
    }

    /// Pieces held, in both generations.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.new.table.len() + self.old.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn get(cache: &mut PieceCache, piece: &str) -> Option<Vec<u32>> {
        let mut ids = Vec::new();
        cache
            .get_into(&Key::of(piece), piece, &mut ids)
            .then_some(ids)
    }

    fn insert(cache: &mut PieceCache, piece: &str, ids: &[u32]) {
        cache.insert(&Key::of(piece), piece, ids);
    }

    #[test]
    fn frequent_pieces_survive_turns_and_rare_ones_leave() {
        let mut cache = PieceCache::default();
        cache.serve(1);
        // Over two ids and 16 bytes: both arenas are copied when it is revived.
        let frequent = " the frequent long piece";
        insert(&mut cache, frequent, &[1, 2, 3]);
        // Enough rare pieces to turn the generations over several times.
        let cost = ENTRY_BYTES;
        for i in 0..(CACHE_BYTES / cost) * 2 {
            let rare = format!("{i:06}");
            insert(&mut cache, &rare, &[2]);
            assert_eq!(
                get(&mut cache, frequent).as_deref(),
                Some(&[1, 2, 3][..]),
                "after {i} rare pieces"
            );
        }
        assert_eq!(get(&mut cache, "000000"), None);
        assert!(
            cache.held() * cost <= CACHE_BYTES,
            "{} pieces held",
            cache.held()
        );
    }

    #[test]
    fn long_pieces_are_not_kept_and_another_encoder_empties_it() {
        let mut cache = PieceCache::default();
        cache.serve(1);
        let long = "x".repeat(LONGEST_CACHED + 1);
        insert(&mut cache, &long, &[7]);
        insert(&mut cache, "short", &[8]);
        assert_eq!(get(&mut cache, &long), None);
        assert_eq!(get(&mut cache, "short").as_deref(), Some(&[8][..]));
        cache.serve(1);
        assert_eq!(
            get(&mut cache, "short").as_deref(),
            Some(&[8][..]),
            "the same encoder keeps it"
        );
        cache.serve(2);
        assert_eq!(get(&mut cache, "short"), None);
    }

    /// Pieces of few letters between a few heads and tails, so that many share their first and
    /// last bytes and their length, and differ only in between.
    fn piece() -> impl Strategy<Value = String> {
        let letters = prop::collection::vec(prop::sample::select(vec!['a', 'b', 'é', '\0']), 0..12);
        (
            prop::sample::select(vec!["", "", "aaaaaaaa", "abababab"]),
            letters,
            prop::sample::select(vec!["", "", "bbbbbbbb"]),
        )
            .prop_map(|(head, middle, tail)| {
                format!("{head}{}{tail}", middle.into_iter().collect::<String>())
            })
    }

    proptest! {
        #[test]
        fn each_piece_gets_its_own_ids(
            pieces in prop::collection::vec((piece(), prop::collection::vec(0u32..9, 0..5)), 1..60),
        ) {
            let mut cache = PieceCache::default();
            cache.serve(1);
            let mut expected = std::collections::HashMap::new();
            for (piece, ids) in &pieces {
                if !expected.contains_key(piece) {
                    prop_assert_eq!(get(&mut cache, piece), None, "{:?} is new", piece);
                    insert(&mut cache, piece, ids);
                    expected.insert(piece.clone(), ids.clone());
                }
            }
            for (piece, ids) in &expected {
                prop_assert_eq!(get(&mut cache, piece), Some(ids.clone()), "{:?}", piece);
            }
        }
    }
}
