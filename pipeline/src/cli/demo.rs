//! `refinery demo`: writes the sample corpus, runs the main job on it and shows what happened.

use std::path::Path;

use tokio::runtime::Handle;

use super::Failure;
use super::run::{load_checked, run_recorded};
use crate::sql::OutputFormat;

/// Generates the sample under `dir`, runs it, and prints the stats and queries to try next.
pub fn demo(
    dir: &Path,
    threads: Option<usize>,
    quiet: bool,
    handle: &Handle,
) -> Result<(), Failure> {
    let config_path = crate::demo::write_sample(dir)?;
    outln!(
        "Sample corpus and config written to {}",
        config_path.display()
    );
    let mut config = load_checked(&config_path)?;
    if let Some(t) = threads {
        config.run.threads = t;
    }
    let (summary, _) = run_recorded(&config, &config_path, quiet, handle)?;
    super::stats::stats(
        &summary.out,
        OutputFormat::Table,
        super::SqlMemory::default(),
        handle,
    )?;
    let train_config = dir.join(crate::demo::TRAIN_CONFIG_FILE);
    outln!(
        "Training a small model on the shards ({})",
        train_config.display()
    );
    super::train::train(super::train::TrainArgs {
        config: &train_config,
        max_steps: None,
        metrics: None,
        restart: true,
        device: None,
        quiet,
    })?;
    let out = summary.out.display();
    outln!("Try next:");
    outln!("  refinery query --dir {out} \"SELECT rule, count(*) FROM rejects GROUP BY rule\"");
    outln!("  refinery query --dir {out} \"SELECT uri, locator, reason, detail FROM quarantine\"");
    outln!(
        "  refinery query --dir {out} \"SELECT id, rule, value, duplicate_of FROM rejects WHERE duplicate_of IS NOT NULL\""
    );
    outln!("  refinery query --dir {out} \"SELECT stage, rule, detail FROM edits\"");
    if let Some(t) = &config.tokenize {
        outln!("  refinery versions show {}", t.get_ref().root);
    }
    let trained = dir.join("train");
    outln!(
        "  refinery lineage trace news.jsonl:3 --from {}",
        trained.display()
    );
    outln!(
        "  refinery lineage report {} --html {}",
        trained.display(),
        dir.join("report.html").display()
    );
    outln!("  refinery eval {}", trained.display());
    outln!(
        "  refinery generate {} --prompt \"The council\"",
        trained.display()
    );
    Ok(())
}
