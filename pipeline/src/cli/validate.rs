//! `refinery validate CONFIG`.

use std::path::Path;

use anyhow::anyhow;
use tokio::runtime::Handle;

use super::Failure;
use super::run::load_checked;
use crate::config::{self, Config};

/// Checks a config; with IO, also that every input path names something reachable.
pub fn validate(path: &Path, no_io: bool, handle: &Handle) -> Result<(), Failure> {
    let config = load_checked(path)?;
    if !no_io {
        let text = std::fs::read_to_string(path)?;
        let problems = handle.block_on(config::validate_inputs(&config, &text));
        if !problems.is_empty() {
            let list: Vec<String> = problems
                .iter()
                .map(|p| format!("  {}: {p}", path.display()))
                .collect();
            return Err(Failure {
                error: anyhow!("invalid config:\n{}", list.join("\n")),
                code: 2,
            });
        }
    }
    describe(&config);
    Ok(())
}

fn describe(config: &Config) {
    let paths: usize = config.sources.iter().map(|s| s.get_ref().paths.len()).sum();
    let tokenize = config.tokenize.as_ref().map_or(String::new(), |t| {
        let dataset = crate::tokenize::dataset_of(config, t.get_ref());
        format!(", then tokenizes [{dataset}] into {}", t.get_ref().root)
    });
    outln!(
        "Config is valid: {} sources ({paths} paths), stages [{}], writes [{}] to {}{tokenize}",
        config.sources.len(),
        config.stage_names().join(", "),
        config.persisted_stages().join(", "),
        config.output_dir().display()
    );
}
