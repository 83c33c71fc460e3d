//! The documents a dedup stage has seen, by ordinal: what survivor choice and the tables need.
//! 16 bytes of id, 4 of source, 4 of file and 8 of position per document, plus each distinct
//! source name and file URI once.

use std::collections::HashMap;

/// Where a document came from.
pub(super) struct Origin<'a> {
    /// Document id.
    pub id: u128,
    /// Source name.
    pub source: &'a str,
    /// File URI.
    pub uri: &'a str,
    /// Line or row in the file (0 when the locator is not a number).
    pub position: u64,
}

/// Distinct strings, each stored once.
#[derive(Default)]
struct Names {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Names {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        i
    }
}

/// The documents seen, by ordinal.
#[derive(Default)]
pub(super) struct Docs {
    ids: Vec<u128>,
    sources: Vec<u32>,
    uris: Vec<u32>,
    positions: Vec<u64>,
    source_names: Names,
    uri_names: Names,
    /// Documents of this run; ordinals from here on are documents of a previous run's index.
    pub new_docs: usize,
}

impl Docs {
    /// Adds a document; returns its ordinal.
    pub fn push(&mut self, origin: &Origin) -> u32 {
        let ord = self.ids.len() as u32;
        self.ids.push(origin.id);
        self.sources.push(self.source_names.intern(origin.source));
        self.uris.push(self.uri_names.intern(origin.uri));
        self.positions.push(origin.position);
        ord
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Id of `ord`.
    pub fn id(&self, ord: u32) -> u128 {
        self.ids[ord as usize]
    }

    /// Source name of `ord`.
    pub fn source(&self, ord: u32) -> &str {
        &self.source_names.names[self.sources[ord as usize] as usize]
    }

    /// True for a document of this run (not of a previous run's index).
    pub fn is_new(&self, ord: u32) -> bool {
        (ord as usize) < self.new_docs
    }

    /// Input order of `ord`: file URI, then line or row.
    pub fn position(&self, ord: u32) -> (&str, u64) {
        let uri = &self.uri_names.names[self.uris[ord as usize] as usize];
        (uri, self.positions[ord as usize])
    }
}
