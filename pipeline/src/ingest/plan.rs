//! Expanding sources into units of work.

use std::collections::HashSet;
use std::sync::Arc;

use object_store::ObjectStore;
use shards::{InputFile, StoreError};

use super::batch::{Quarantined, Scope};
use super::reason;
use crate::config::{Config, Format, SourceConfig};

/// Text files are grouped into units of at most this many files...
const TEXT_UNIT_FILES: usize = 512;
/// ...and at most this many bytes.
const TEXT_UNIT_BYTES: u64 = 64 << 20;

/// One unit of work: files of one source read in order into one set of output parts.
#[derive(Debug, Clone)]
pub struct Unit {
    /// Stable name, `<source>-<nnnnn>`, used for part file names.
    pub id: String,
    /// The source's config.
    pub source: Arc<SourceConfig>,
    /// The files' format.
    pub format: Format,
    /// The store holding the files.
    pub store: Arc<dyn ObjectStore>,
    /// The files, in order.
    pub files: Vec<InputFile>,
}

impl Unit {
    /// Total bytes of the unit's files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Expands every source into units, in config order then path order. Inputs that cannot be
/// listed, and files whose format is unknown, come back as file-scope quarantine rows.
pub async fn plan_units(config: &Config) -> (Vec<Unit>, Vec<Quarantined>) {
    let (mut units, mut problems) = (Vec::new(), Vec::new());
    for source in &config.sources {
        let source = Arc::new(source.get_ref().clone());
        let mut seen = HashSet::new();
        let mut groups: Vec<(Format, Arc<dyn ObjectStore>, Vec<InputFile>)> = Vec::new();
        for spec in &source.paths {
            let set = match shards::list_inputs(spec.get_ref()).await {
                Ok(set) => set,
                Err(e) => {
                    problems.push(input_problem(&source.name, spec.get_ref(), e));
                    continue;
                }
            };
            for file in set.files {
                if !seen.insert(file.uri.clone()) {
                    continue;
                }
                let Some(format) = source.format.or_else(|| Format::infer(file.path.as_ref()))
                else {
                    problems.push(unknown_format(&source.name, &file));
                    continue;
                };
                let joins_last = matches!(groups.last(), Some((Format::Text, store, files))
                    if format == Format::Text && Arc::ptr_eq(store, &set.store)
                        && files.len() < TEXT_UNIT_FILES
                        && files.iter().map(|f| f.size).sum::<u64>() + file.size <= TEXT_UNIT_BYTES);
                match groups.last_mut() {
                    Some((_, _, files)) if joins_last => files.push(file),
                    _ => groups.push((format, set.store.clone(), vec![file])),
                }
            }
        }
        for (i, (format, store, files)) in groups.into_iter().enumerate() {
            units.push(Unit {
                id: format!("{}-{i:05}", source.name),
                source: source.clone(),
                format,
                store,
                files,
            });
        }
    }
    (units, problems)
}

fn input_problem(source: &str, spec: &str, e: StoreError) -> Quarantined {
    let reason = match e {
        StoreError::NotFound { .. } | StoreError::InvalidSpec { .. } => reason::MISSING_INPUT,
        _ => reason::UNREACHABLE_INPUT,
    };
    let detail = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    Quarantined {
        source: source.into(),
        uri: spec.into(),
        locator: None,
        scope: Scope::File,
        reason,
        detail,
        raw: None,
    }
}

fn unknown_format(source: &str, file: &InputFile) -> Quarantined {
    Quarantined {
        source: source.into(),
        uri: file.uri.clone(),
        locator: None,
        scope: Scope::File,
        reason: reason::UNKNOWN_FORMAT,
        detail: "cannot infer the format from the file name; set the source's `format`".into(),
        raw: None,
    }
}
