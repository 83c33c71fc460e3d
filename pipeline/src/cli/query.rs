//! `refinery query "SQL"`.

use std::path::Path;

use tokio::runtime::Handle;

use super::Failure;
use crate::output::manifest::Manifest;
use crate::output::{CLUSTERS, EDITS, QUARANTINE, REJECTS};
use crate::sql::{self, OutputFormat};
use crate::stages::decontaminate::CONTAMINATION;

/// The tables of a run's output folder: its datasets, `rejects`, `edits`, `quarantine` and,
/// when a stage wrote them, `clusters` (dedup) and `contamination` (decontaminate).
pub fn run_tables(dir: &Path) -> Result<Vec<(String, String)>, Failure> {
    let manifest = Manifest::load(dir).map_err(anyhow::Error::msg)?;
    let mut names = manifest.datasets.clone();
    names.extend([REJECTS, EDITS, QUARANTINE].map(String::from));
    for optional in [CLUSTERS, CONTAMINATION] {
        let folder = format!("{optional}/");
        if manifest.files.iter().any(|f| f.path.starts_with(&folder)) {
            names.push(optional.to_string());
        }
    }
    Ok(names
        .into_iter()
        .map(|n| (n.clone(), dir.join(&n).display().to_string()))
        .collect())
}

/// Runs SQL over the given tables (and a run folder's tables) and prints the result.
pub fn query(
    sql_text: &str,
    mut tables: Vec<(String, String)>,
    dir: Option<&Path>,
    format: OutputFormat,
    handle: &Handle,
) -> Result<(), Failure> {
    if let Some(dir) = dir {
        tables.extend(run_tables(dir)?);
    }
    let batches = handle.block_on(async {
        let ctx = sql::context(&tables).await?;
        sql::query(&ctx, sql_text).await
    })?;
    println!("{}", sql::render(&batches, format)?);
    Ok(())
}
