//! The TOML run config: sources, an ordered list of stages, and the output.
//!
//! ```toml
//! [run]
//! batch_size = 1024          # documents per Arrow batch (default 1024)
//!
//! [[sources]]
//! name = "wiki"
//! paths = ["data/wiki.jsonl.zst", "s3://bucket/wiki/"]
//!
//! [[stages]]
//! type = "normalize"
//!
//! [[stages]]
//! type = "length"
//! min_words = 5
//!
//! [output]
//! path = "out"
//!
//! [tokenize]                 # optional: see crate::tokenize
//! root = "tokens"
//! tokenizer = "tokenizer.json"
//! ```
//!
//! Relative local paths are resolved against the config file's folder. Every struct rejects
//! unknown keys; defaults live in `Default` impls, once. [`validate`] checks values and inputs and
//! reports every problem with its line.

pub(crate) mod sections;
mod validate;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;

use crate::output::codec::Codec;
use crate::stages::StageConfig;
use crate::tokenize::TokenizeConfig;
pub use validate::{ConfigError, folder_problems, validate, validate_inputs};

/// A whole run config.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Execution settings.
    #[serde(default)]
    pub run: RunConfig,
    /// The inputs, each with a name used everywhere downstream.
    pub sources: Vec<Spanned<SourceConfig>>,
    /// The stages, run in this order.
    #[serde(default)]
    pub stages: Vec<Spanned<StageConfig>>,
    /// Where results go.
    pub output: Spanned<OutputConfig>,
    /// Tokenize the output into a versioned token dataset after the stages (optional).
    #[serde(default)]
    pub tokenize: Option<Spanned<TokenizeConfig>>,
}

/// Most worker threads (`run.threads`, `--threads`).
pub const MAX_THREADS: usize = 1024;

/// Most batches in flight between two steps (`run.channel_depth`): each channel reserves room
/// for this many.
pub const MAX_CHANNEL_DEPTH: usize = 1024;

/// Execution settings. None of them changes what a document's fate is.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Most documents in one Arrow batch. Default 1024.
    pub batch_size: usize,
    /// Most text bytes in one Arrow batch; a batch closes at whichever limit comes first.
    /// Default 16 MiB.
    pub batch_bytes: u64,
    /// Batches in flight between two steps (backpressure). Default 4.
    pub channel_depth: usize,
    /// Worker threads; 0 means one per core. Outputs do not depend on it. Default 0.
    pub threads: usize,
    /// Documents larger than this many bytes are quarantined. Default 10 MiB.
    pub max_doc_bytes: u64,
    /// Stop at the first bad record or file instead of quarantining it. Default false.
    pub strict: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            batch_size: 1024,
            batch_bytes: 16 << 20,
            channel_depth: 4,
            threads: 0,
            max_doc_bytes: 10 << 20,
            strict: false,
        }
    }
}

/// The format of a source's files.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One JSON object a line; `.gz` and `.zst` compression is detected from the file name.
    Jsonl,
    /// Parquet files with a text column.
    Parquet,
    /// Plain-text files, one document each.
    Text,
}

impl Format {
    /// The format a file name implies, if any.
    pub fn infer(name: &str) -> Option<Format> {
        let name = name
            .trim_end_matches(".gz")
            .trim_end_matches(".zst")
            .trim_end_matches(".zstd");
        if name.ends_with(".jsonl") || name.ends_with(".ndjson") || name.ends_with(".json") {
            Some(Format::Jsonl)
        } else if name.ends_with(".parquet") {
            Some(Format::Parquet)
        } else if name.ends_with(".txt") {
            Some(Format::Text)
        } else {
            None
        }
    }
}

/// One named input.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Name used in ids, outputs and reports; letters, digits, `_` and `-`.
    pub name: String,
    /// Paths, globs or `s3://bucket/prefix` URLs.
    pub paths: Vec<Spanned<String>>,
    /// File format; inferred from each file name when absent (`.jsonl[.gz|.zst]`, `.parquet`,
    /// `.txt`). Required for folders of text files with other extensions.
    #[serde(default)]
    pub format: Option<Format>,
    /// The field (JSONL) or column (Parquet) holding the text. Default `text`.
    #[serde(default = "default_text_field")]
    pub text_field: String,
    /// A field holding the record's own id. When set, document ids derive from it instead of
    /// the record's position, so they survive reordering. Default: none.
    #[serde(default)]
    pub id_field: Option<String>,
}

fn default_text_field() -> String {
    "text".to_string()
}

/// Where the run's results go.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Output folder (local).
    pub path: String,
    /// Stages whose kept documents are written, by name; `ingest` names the documents as read.
    /// Default: the last stage only (or `ingest` when there are no stages).
    #[serde(default)]
    pub stages: Option<Vec<Spanned<String>>>,
    /// Codec of those datasets (see [`Codec`]); lineage tables are always zstd.
    #[serde(default)]
    pub compression: Codec,
}

impl Config {
    /// Parses a config from TOML text; errors carry their line. Mistakes in different sections
    /// are all reported, section by section.
    pub fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
        toml::from_str(text).map_err(|e| {
            let first = ConfigError::from_toml(&e, text);
            let mut all = sections::section_errors(text);
            // The document's first error is one of the sections' (which may lead it with its
            // key) unless it is about the top level (an unknown or missing section).
            if !all.iter().any(|e| e.message.ends_with(&first.message)) {
                all.insert(0, first);
            }
            all
        })
    }

    /// Reads and parses a config file, resolving relative local paths against its folder.
    pub fn load(path: &Path) -> Result<(Config, String), Vec<ConfigError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError::plain(format!(
                "cannot read config {}: {e}",
                path.display()
            ))]
        })?;
        let mut config = Config::parse(&text)?;
        config.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        Ok((config, text))
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &str| -> String {
            if shards::is_url(p) || Path::new(p).is_absolute() {
                p.to_string()
            } else {
                base.join(p).to_string_lossy().into_owned()
            }
        };
        for source in &mut self.sources {
            for p in &mut source.get_mut().paths {
                *p.get_mut() = resolve(p.get_ref());
            }
        }
        for stage in &mut self.stages {
            if let Some(against) = stage.get_mut().against_mut() {
                *against = base.join(&*against);
            }
            for file in stage.get_mut().files_mut() {
                *file = base.join(&*file);
            }
        }
        let out = self.output.get_mut();
        out.path = resolve(&out.path);
        if let Some(t) = &mut self.tokenize {
            let t = t.get_mut();
            t.root = resolve(&t.root);
            t.tokenizer = t.tokenizer.as_deref().map(resolve);
        }
    }

    /// The output folder.
    pub fn output_dir(&self) -> PathBuf {
        PathBuf::from(&self.output.get_ref().path)
    }

    /// Stage names in order (a stage's `name`, or its type).
    pub fn stage_names(&self) -> Vec<String> {
        self.stages
            .iter()
            .map(|s| s.get_ref().name().to_string())
            .collect()
    }

    /// Names of the datasets whose documents are written (see [`OutputConfig::stages`]).
    pub fn persisted_stages(&self) -> Vec<String> {
        match &self.output.get_ref().stages {
            Some(names) => names.iter().map(|n| n.get_ref().clone()).collect(),
            None => vec![
                self.stage_names()
                    .pop()
                    .unwrap_or_else(|| INGEST.to_string()),
            ],
        }
    }

    /// Hash of everything that decides the outputs' bytes (not threads, depth or strictness),
    /// including the contents of the files stages read (benchmarks, bad-words lists) and the
    /// manifest of each dedup stage's `against` run (which lists its index's checksum), so that
    /// a changed file or earlier run is not mixed with decisions made from the old one on resume.
    pub fn output_hash(&self) -> String {
        let earlier_runs: Vec<PathBuf> = self
            .stages
            .iter()
            .filter_map(|s| s.get_ref().against())
            .map(|a| a.join(crate::output::MANIFEST))
            .collect();
        let files: Vec<String> = self
            .stages
            .iter()
            .flat_map(|s| s.get_ref().files())
            .chain(earlier_runs.iter().map(PathBuf::as_path))
            .map(|f| match std::fs::read(f) {
                Ok(bytes) => format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes)),
                Err(_) => "unreadable".to_string(),
            })
            .collect();
        let decisive = serde_json::json!({
            "stage_files": files,
            "batch_size": self.run.batch_size,
            "batch_bytes": self.run.batch_bytes,
            "max_doc_bytes": self.run.max_doc_bytes,
            "sources": self.sources,
            "stages": self.stages,
            "persisted": self.persisted_stages(),
            "compression": self.output.get_ref().compression,
            "tool_version": env!("CARGO_PKG_VERSION"),
        });
        format!(
            "{:016x}",
            xxhash_rust::xxh3::xxh3_64(decisive.to_string().as_bytes())
        )
    }
}

/// The pseudo-stage name of documents as ingested, before any stage.
pub const INGEST: &str = "ingest";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_takes_defaults() {
        let c = Config::parse("[[sources]]\nname='a'\npaths=['x.jsonl']\n[output]\npath='o'\n")
            .unwrap();
        assert_eq!(c.run, RunConfig::default());
        assert_eq!(c.sources[0].get_ref().text_field, "text");
        assert_eq!(c.persisted_stages(), [INGEST]);
    }

    #[test]
    fn relative_paths_follow_the_config_and_urls_stay_as_written() {
        let mut c = Config::parse(
            "[[sources]]\nname='a'\npaths=['x.jsonl', '/abs/y.jsonl', 'file:///abs/z.jsonl', \
             's3://b/k']\n[output]\npath='o'\n[tokenize]\nroot='file:///abs/tokens'\n\
             train_vocab_size=300\n",
        )
        .unwrap();
        c.resolve_paths(Path::new("/conf"));
        let paths: Vec<&str> = c.sources[0]
            .get_ref()
            .paths
            .iter()
            .map(|p| p.get_ref().as_str())
            .collect();
        assert_eq!(
            paths,
            [
                "/conf/x.jsonl",
                "/abs/y.jsonl",
                "file:///abs/z.jsonl",
                "s3://b/k"
            ]
        );
        assert_eq!(c.output.get_ref().path, "/conf/o");
        assert_eq!(c.tokenize.unwrap().get_ref().root, "file:///abs/tokens");
    }

    #[test]
    fn hash_ignores_threads_but_not_stages_or_codec() {
        let base = "[[sources]]\nname='a'\npaths=['x.jsonl']\n[output]\npath='o'\n";
        let a = Config::parse(base).unwrap();
        let b = Config::parse(&format!("[run]\nthreads=7\n{base}")).unwrap();
        let c = Config::parse(&format!("{base}[[stages]]\ntype='normalize'\n")).unwrap();
        let d = Config::parse(&format!("{base}compression='snappy'\n")).unwrap();
        assert_eq!(a.output_hash(), b.output_hash());
        assert_ne!(a.output_hash(), c.output_hash());
        assert_ne!(a.output_hash(), d.output_hash());
    }

    #[test]
    fn hash_follows_the_contents_of_files_stages_read() {
        let dir = tempfile::tempdir().unwrap();
        let words = dir.path().join("bad.txt");
        std::fs::write(&words, "frobnicate\n").unwrap();
        let text = format!(
            "[[sources]]\nname='a'\npaths=['x.jsonl']\n[[stages]]\ntype='c4'\nbad_words='{}'\n[output]\npath='o'\n",
            words.display()
        );
        let config = Config::parse(&text).unwrap();
        let before = config.output_hash();
        assert_eq!(before, config.output_hash());
        std::fs::write(&words, "frobnicate\nwidget\n").unwrap();
        assert_ne!(before, config.output_hash());

        // A dedup stage's earlier run: its manifest changes when that run is redone.
        let earlier = dir.path().join("v1");
        std::fs::create_dir_all(&earlier).unwrap();
        std::fs::write(earlier.join(crate::output::MANIFEST), "{\"v\":1}").unwrap();
        let text = format!(
            "[[sources]]\nname='a'\npaths=['x.jsonl']\n[[stages]]\ntype='exact_dedup'\nagainst='{}'\n[output]\npath='o'\n",
            earlier.display()
        );
        let config = Config::parse(&text).unwrap();
        let before = config.output_hash();
        assert_eq!(before, config.output_hash());
        std::fs::write(earlier.join(crate::output::MANIFEST), "{\"v\":2}").unwrap();
        assert_ne!(before, config.output_hash());
    }

    #[test]
    fn formats_are_inferred_from_names() {
        assert_eq!(Format::infer("a.jsonl.zst"), Some(Format::Jsonl));
        assert_eq!(Format::infer("a.json.gz"), Some(Format::Jsonl));
        assert_eq!(Format::infer("a.parquet"), Some(Format::Parquet));
        assert_eq!(Format::infer("notes/a.txt"), Some(Format::Text));
        assert_eq!(Format::infer("a.csv"), None);
    }
}
