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
/// listed, and files whose format is unknown, come back as file-scope quarantine rows. Files
/// under the run's own output folder or token root are left out (with a warning): a source
/// folder that holds them would otherwise read a run's outputs as the next run's inputs.
pub async fn plan_units(config: &Config) -> (Vec<Unit>, Vec<Quarantined>) {
    let (mut units, mut problems) = (Vec::new(), Vec::new());
    let owned = owned_prefixes(config);
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
            let listed = set.files.len();
            let files: Vec<InputFile> = set
                .files
                .into_iter()
                .filter(|f| !owned.iter().any(|(prefix, _)| f.uri.starts_with(prefix)))
                .collect();
            if files.len() < listed {
                let folders: Vec<&str> = owned.iter().map(|(_, shown)| shown.as_str()).collect();
                tracing::warn!(
                    source = %source.name,
                    "{} of the files `{spec}` names are left out: they are under {}, which this \
                     run writes",
                    listed - files.len(),
                    folders.join(" or "),
                    spec = spec.get_ref(),
                );
            }
            for file in files {
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

/// The URL prefixes (`file:///abs/out/`, `s3://bucket/tokens/`) of the folders a run writes,
/// the output folder and the token root, each with the path as the config gives it.
fn owned_prefixes(config: &Config) -> Vec<(String, String)> {
    let output = config.output.get_ref().path.clone();
    let tokens = config.tokenize.as_ref().map(|t| t.get_ref().root.clone());
    [Some(output), tokens]
        .into_iter()
        .flatten()
        .filter_map(|path| {
            let (_, root, base) = shards::open_store(&path).ok()?;
            Some((format!("{root}{base}/"), path))
        })
        .collect()
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
