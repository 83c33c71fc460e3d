//! Config checks, in two phases: [`validate`] needs no IO (values, names, references);
//! [`validate_inputs`] lists every input. Both report every problem at once, each with its line.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;

use super::{Config, Format, INGEST, MAX_CHANNEL_DEPTH, MAX_THREADS};
use crate::tokenize::tokenizer::trained_vocab_problem;

/// One problem in a config, with the line it is on when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line in the config file.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// An error with no position.
    pub fn plain(message: String) -> Self {
        Self {
            line: None,
            message,
        }
    }

    fn at(text: &str, span: Range<usize>, message: String) -> Self {
        Self {
            line: Some(line_of(text, span.start)),
            message,
        }
    }

    /// Converts a TOML parse or type error.
    pub fn from_toml(e: &toml::de::Error, text: &str) -> Self {
        let line = e.span().map(|s| line_of(text, s.start));
        Self {
            line,
            message: e.message().trim().to_string(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The 1-based line of a byte offset in `text`.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Whether a path spec names files by extension (folders and prefixes are inferred per file).
fn looks_like_file(spec: &str) -> bool {
    spec.rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Checks values and references; needs no IO.
pub fn validate(config: &Config, text: &str) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut err =
        |span: Range<usize>, message: String| errors.push(ConfigError::at(text, span, message));
    let run = &config.run;
    for (key, value) in [
        ("batch_size", run.batch_size as u64),
        ("channel_depth", run.channel_depth as u64),
        ("batch_bytes", run.batch_bytes),
        ("max_doc_bytes", run.max_doc_bytes),
    ] {
        if value == 0 {
            let at = key_offset(text, key);
            err(at..at, format!("run.{key} must be at least 1"));
        }
    }
    for (key, value, max) in [
        ("channel_depth", run.channel_depth, MAX_CHANNEL_DEPTH),
        ("threads", run.threads, MAX_THREADS),
    ] {
        if value > max {
            let at = key_offset(text, key);
            err(at..at, format!("run.{key} ({value}) must be at most {max}"));
        }
    }
    if config.sources.is_empty() {
        err(
            config.output.span(),
            "no [[sources]] given: nothing to read".into(),
        );
    }
    let mut names = HashSet::new();
    for source in &config.sources {
        let s = source.get_ref();
        if !valid_name(&s.name) {
            err(
                source.span(),
                format!(
                    "source name `{}` must be letters, digits, `_` or `-`",
                    s.name
                ),
            );
        }
        if !names.insert(s.name.as_str()) {
            err(
                source.span(),
                format!("source name `{}` is used twice", s.name),
            );
        }
        if s.paths.is_empty() {
            err(source.span(), format!("source `{}` has no paths", s.name));
        }
        for p in &s.paths {
            if s.format.is_none()
                && looks_like_file(p.get_ref())
                && Format::infer(p.get_ref()).is_none()
            {
                err(
                    p.span(),
                    format!(
                        "cannot infer the format of `{}`: set `format` to jsonl, parquet or text",
                        p.get_ref()
                    ),
                );
            }
        }
    }
    let mut stage_names = HashSet::from([INGEST.to_string()]);
    for stage in &config.stages {
        let name = stage.get_ref().name();
        if !valid_name(name) {
            err(
                stage.span(),
                format!("stage name `{name}` must be letters, digits, `_` or `-`"),
            );
        }
        if !stage_names.insert(name.to_string()) {
            err(
                stage.span(),
                format!("stage name `{name}` is used twice (or is reserved): give one a `name`"),
            );
        }
        for problem in stage.get_ref().check() {
            err(stage.span(), format!("stage `{name}`: {problem}"));
        }
        for source in stage.get_ref().priority() {
            if !names.contains(source.as_str()) {
                err(
                    stage.span(),
                    format!("stage `{name}`: priority names `{source}`, which is not a source"),
                );
            }
        }
    }
    if let Some(t) = &config.tokenize {
        let span = t.span();
        let t = t.get_ref();
        if t.tokenizer.is_some() == t.train_vocab_size.is_some() {
            err(
                span.clone(),
                "[tokenize] needs exactly one of `tokenizer` (a tokenizer.json) and `train_vocab_size`"
                    .into(),
            );
        }
        if let Some(why) = t.train_vocab_size.and_then(trained_vocab_problem) {
            err(span.clone(), format!("tokenize.train_vocab_size {why}"));
        }
        if t.eod.is_empty() {
            err(
                span.clone(),
                "tokenize.eod must name a token, not be empty".into(),
            );
        }
        if t.dataset.is_none() && config.persisted_stages().is_empty() {
            err(
                span.clone(),
                "[tokenize] has nothing to tokenize: output.stages writes no dataset".into(),
            );
        }
        if t.shard_tokens == 0 || t.shard_tokens >= 1 << 31 {
            err(
                span.clone(),
                "tokenize.shard_tokens must be between 1 and 2^31 - 1 (llm.c's header count)"
                    .into(),
            );
        }
        if !(0.0..1.0).contains(&t.validation_fraction) {
            err(
                span.clone(),
                "tokenize.validation_fraction must be at least 0 and below 1".into(),
            );
        }
        if t.validation_min_docs > crate::tokenize::split::MAX_MIN_DOCS {
            err(
                span.clone(),
                format!(
                    "tokenize.validation_min_docs must be at most {} (the ids it holds out \
                     are kept in memory while tokenizing)",
                    crate::tokenize::split::MAX_MIN_DOCS
                ),
            );
        }
        if let Some(d) = &t.dataset
            && !config.persisted_stages().contains(d)
        {
            err(
                span.clone(),
                format!(
                    "tokenize.dataset `{d}` is not a dataset the run writes (see output.stages)"
                ),
            );
        }
    }
    if shards::is_url(&config.output.get_ref().path) {
        err(
            config.output.span(),
            format!(
                "output.path must be a local folder, not `{}` (the token dataset, \
                 `[tokenize] root`, may be on S3)",
                config.output.get_ref().path
            ),
        );
    }
    if let Some(persisted) = &config.output.get_ref().stages {
        for p in persisted {
            if !stage_names.contains(p.get_ref()) {
                err(
                    p.span(),
                    format!(
                        "output.stages names `{}`, which is not a stage",
                        p.get_ref()
                    ),
                );
            }
        }
    }
    errors
}

/// Where `key = ...` is written ([run] keys are unique in the file), or the start.
fn key_offset(text: &str, key: &str) -> usize {
    text.find(&format!("{key} ="))
        .or_else(|| text.find(&format!("{key}=")))
        .unwrap_or(0)
}

/// Lists every input path and reports the ones that name nothing or cannot be reached, reads
/// the `[tokenize]` tokenizer file (logging how it encodes texts, see
/// [`crate::tokenize::report`]), and checks the folders it writes ([`folder_problems`]).
pub async fn validate_inputs(config: &Config, text: &str) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for source in &config.sources {
        for p in &source.get_ref().paths {
            if let Err(e) = shards::list_inputs(p.get_ref()).await {
                errors.push(ConfigError::at(
                    text,
                    p.span(),
                    format!("source `{}`: {e}", source.get_ref().name),
                ));
            }
        }
    }
    if let Some(t) = &config.tokenize
        && let Some(file) = &t.get_ref().tokenizer
    {
        let problem = match !file.starts_with("s3://") && !std::path::Path::new(file).is_file() {
            true => Some(format!("{file} does not exist")),
            false => match crate::tokenize::read(file, &t.get_ref().eod).await {
                Ok(tokenizer) => {
                    crate::tokenize::report(file, &tokenizer);
                    None
                }
                Err(e) => Some(e.to_string()),
            },
        };
        if let Some(problem) = problem {
            let message = format!("tokenize.tokenizer: {problem}");
            errors.push(ConfigError::at(text, t.span(), message));
        }
    }
    for stage in &config.stages {
        for file in stage.get_ref().files() {
            if !file.is_file() {
                let name = stage.get_ref().name();
                let message = format!("stage `{name}`: {} does not exist", file.display());
                errors.push(ConfigError::at(text, stage.span(), message));
            }
        }
        let Some(earlier) = stage.get_ref().against() else {
            continue;
        };
        let name = stage.get_ref().name();
        let index = earlier
            .join(crate::output::DEDUP_INDEX)
            .join(format!("{name}.parquet"));
        if !index.is_file() {
            errors.push(ConfigError::at(
                text,
                stage.span(),
                format!(
                    "stage `{name}`: `against` has no index for this stage ({} is missing)",
                    index.display()
                ),
            ));
        }
    }
    errors.extend(folder_problems(config, text));
    errors
}

/// Checks that the output folder and a local token root are folders or can be made.
pub fn folder_problems(config: &Config, text: &str) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    if let Err(e) = crate::output::check_folder(&config.output_dir()) {
        let message = format!("output.path: {e}");
        errors.push(ConfigError::at(text, config.output.span(), message));
    }
    if let Some(t) = &config.tokenize
        && let Some(root) = shards::local_path(&t.get_ref().root)
        && let Err(e) = crate::output::check_folder(std::path::Path::new(root))
    {
        let message = format!("tokenize.root: {e}");
        errors.push(ConfigError::at(text, t.span(), message));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether one of `problems` is on `line` and names `word`.
    fn reports(problems: &[String], line: usize, word: &str) -> bool {
        problems
            .iter()
            .any(|e| e.starts_with(&format!("line {line}:")) && e.contains(word))
    }

    fn problems(text: &str) -> Vec<String> {
        match Config::parse(text) {
            Ok(c) => validate(&c, text).iter().map(ToString::to_string).collect(),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn unknown_keys_are_reported_with_their_line() {
        let text = "[[sources]]\nname = 'a'\npaths = ['x.jsonl']\ntxt_field = 'body'\n[output]\npath = 'o'\n";
        let p = problems(text);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("line 4:") && p[0].contains("txt_field"),
            "{p:?}"
        );
    }

    #[test]
    fn type_errors_in_different_sections_are_reported_at_once() {
        let text = "[run]\nbatch_size = -5\n\n[[sources]]\nname = 'a'\npaths = ['x.jsonl']\ntext_feild = 't'\n\n[[sources]]\nname = 'b'\npaths = ['y.jsonl']\n\n[[stages]]\ntype = 'lenght'\n\n[[stages]]\ntype = 'length'\nmin_words = 'five'\n\n[output]\npath = 'o'\ncompression = 'brotli'\n";
        let p = problems(text);
        let lines: Vec<&str> = p.iter().map(|e| e.split(':').next().unwrap()).collect();
        assert_eq!(
            lines,
            ["line 2", "line 7", "line 14", "line 18", "line 22"],
            "{p:#?}"
        );
        for (problem, word) in p
            .iter()
            .zip(["-5", "text_feild", "lenght", "five", "brotli"])
        {
            assert!(problem.contains(word), "{problem} should name {word}");
        }
    }

    #[test]
    fn a_stage_error_is_reported_once_and_a_top_level_one_too() {
        let text = "[[sources]]\nname = 'a'\npaths = ['x.jsonl']\n\n[[stages]]\ntype = 'length'\nmin_words = 'five'\n\n[output]\npath = 'o'\n\n[extra]\n";
        let p = problems(text);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(reports(&p, 7, "`min_words`: invalid type"), "{p:#?}");
        assert!(p.iter().any(|e| e.contains("extra")));
        // An unknown section ahead of a section with a type error is reported too.
        let p =
            problems("[rnu]\n[[sources]]\nname = 'a'\npaths = ['x.jsonl']\n[output]\npath = 3\n");
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(reports(&p, 1, "rnu") && reports(&p, 6, "3"), "{p:#?}");
    }

    #[test]
    fn errors_inside_a_stage_point_at_their_key() {
        let text = "[[sources]]\nname = 'a'\npaths = ['x.jsonl']\n\n[[stages]]\ntype = 'length'\nmin_words = 3\nmax_chars = 'lots'\n\n[[stages]]\ntype = 'normalize'\nnfc = true\nnfcx = true\n\n[output]\npath = 'o'\n";
        let p = problems(text);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(reports(&p, 8, "`max_chars`: invalid type"), "{p:#?}");
        assert!(reports(&p, 13, "unknown field `nfcx`"), "{p:#?}");
    }

    #[test]
    fn every_syntax_error_is_reported() {
        let p = problems("[run\nbatch_size = 1\n[output]\npath = = 'o'\n");
        assert!(p.len() >= 2, "{p:#?}");
        assert!(p[0].starts_with("line 1:") && p.iter().any(|e| e.starts_with("line 4:")));
    }

    #[test]
    fn every_bad_value_is_reported_at_once() {
        let text = "[run]\nbatch_size = 0\n\n[[sources]]\nname = 'a b'\npaths = ['x.csv']\n\n[[stages]]\ntype = 'length'\nmin_words = 9\nmax_words = 2\n\n[output]\npath = 'o'\nstages = ['nope']\n";
        let p = problems(text);
        assert_eq!(p.len(), 5, "{p:#?}");
        assert!(reports(&p, 2, "batch_size"), "{p:#?}");
        assert!(reports(&p, 4, "`a b`"), "{p:#?}");
        assert!(reports(&p, 6, "cannot infer"), "{p:#?}");
        assert!(reports(&p, 8, "min_words"), "{p:#?}");
        assert!(reports(&p, 15, "nope"), "{p:#?}");
    }

    #[test]
    fn a_codec_this_build_cannot_write_is_reported_with_its_line() {
        let base = "[[sources]]\nname='a'\npaths=['x.jsonl']\n[output]\npath='o'\n";
        let p = problems(&format!("{base}compression = 'gzip(6)'\n"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("line 6:") && p[0].contains("gzip(6)"),
            "{p:?}"
        );
        assert!(problems(&format!("{base}compression = 'lz4_raw'\n")).is_empty());
    }

    #[test]
    fn tokenize_settings_are_checked_with_their_line() {
        let base = "[[sources]]\nname='a'\npaths=['x.jsonl']\n[output]\npath='o'\n";
        let p = problems(&format!(
            "{base}[tokenize]\nroot='t'\nshard_tokens=0\nvalidation_fraction=1.5\ndataset='nope'\n"
        ));
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p.iter().all(|m| m.starts_with("line 6:")), "{p:?}");
        assert!(p[0].contains("exactly one of `tokenizer`"), "{p:?}");
        assert!(p[3].contains("`nope` is not a dataset"), "{p:?}");
        let minimum = |n: usize| {
            problems(&format!(
                "{base}[tokenize]\nroot='t'\ntokenizer='t.json'\nvalidation_min_docs={n}\n"
            ))
        };
        assert!(minimum(crate::tokenize::split::MAX_MIN_DOCS).is_empty());
        let p = minimum(crate::tokenize::split::MAX_MIN_DOCS + 1);
        assert!(
            p.len() == 1 && p[0].contains("validation_min_docs must be at most 1000000"),
            "{p:?}"
        );
        let both = problems(&format!(
            "{base}[tokenize]\nroot='t'\ntokenizer='t.json'\ntrain_vocab_size=100\n"
        ));
        assert_eq!(
            both.len(),
            2,
            "both sources of a tokenizer, and too small a vocabulary"
        );
        assert!(
            problems(&format!(
                "{base}[tokenize]\nroot='t'\ntrain_vocab_size=4096\n"
            ))
            .is_empty()
        );
    }

    #[test]
    fn values_that_would_exhaust_memory_or_name_nothing_are_refused() {
        let text = |run: &str, stage: &str, tokenize: &str| {
            format!(
                "[run]\n{run}\n[[sources]]\nname='a'\npaths=['x.jsonl']\n[[stages]]\n{stage}\n\
                 [output]\npath='o'\n[tokenize]\nroot='t'\n{tokenize}\n"
            )
        };
        let at_most = problems(&text(
            "threads = 1024\nchannel_depth = 1024",
            "type = 'minhash_dedup'\nbands = 128\nrows = 128\npriority = ['a']",
            "train_vocab_size = 4194304",
        ));
        assert!(at_most.is_empty(), "{at_most:#?}");
        let p = problems(&text(
            "threads = 1025\nchannel_depth = 4294967296",
            "type = 'minhash_dedup'\nbands = 4294967296\nrows = 4294967296\nmax_hashes = 16385\n\
             priority = ['a', 'b']",
            "train_vocab_size = 4194305\neod = ''",
        ));
        assert_eq!(p.len(), 7, "{p:#?}");
        assert!(
            reports(&p, 2, "run.threads (1025) must be at most 1024"),
            "{p:#?}"
        );
        assert!(reports(
            &p,
            3,
            "run.channel_depth (4294967296) must be at most 1024"
        ));
        assert!(reports(
            &p,
            7,
            "bands × rows (4294967296 × 4294967296) must be at most 16384"
        ));
        assert!(reports(&p, 7, "max_hashes (16385) must be at most 16384"));
        assert!(reports(&p, 7, "priority names `b`, which is not a source"));
        assert!(reports(
            &p,
            15,
            "train_vocab_size (4194305) must be at most 4194304"
        ));
        assert!(reports(&p, 15, "tokenize.eod must name a token"));
        let nothing_written = format!(
            "{}stages = []\n[tokenize]\nroot='t'\ntrain_vocab_size=512\n",
            "[[sources]]\nname='a'\npaths=['x.jsonl']\n[output]\npath='o'\n"
        );
        let p = problems(&nothing_written);
        assert!(
            p.len() == 1
                && reports(
                    &p,
                    7,
                    "nothing to tokenize: output.stages writes no dataset"
                ),
            "{p:#?}"
        );
    }

    #[test]
    fn an_output_folder_on_s3_is_refused_not_made_locally() {
        let text = "[[sources]]\nname='a'\npaths=['x.jsonl']\n[output]\npath='s3://bucket/out'\n";
        let p = problems(text);
        assert!(
            p.len() == 1
                && reports(
                    &p,
                    4,
                    "output.path must be a local folder, not `s3://bucket/out`"
                ),
            "{p:#?}"
        );
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let text = "[[sources]]\nname='a'\npaths=['x.jsonl']\n[[sources]]\nname='a'\npaths=['y.jsonl']\n[[stages]]\ntype='normalize'\n[[stages]]\ntype='normalize'\n[output]\npath='o'\n";
        let p = problems(text);
        assert!(reports(&p, 4, "used twice"), "{p:#?}");
        assert!(reports(&p, 9, "used twice"), "{p:#?}");
    }
}
