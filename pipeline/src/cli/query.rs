//! `refinery query "SQL"`.

use std::path::Path;

use tokio::runtime::Handle;

use super::Failure;
use crate::output::manifest::Manifest;
use crate::output::{CLUSTERS, QUARANTINE, REJECTS};
use crate::sql::{self, OutputFormat};

/// The tables of a run's output folder: its datasets, `rejects`, `quarantine` and, after a
/// dedup stage, `clusters`.
pub fn run_tables(dir: &Path) -> Result<Vec<(String, String)>, Failure> {
    let manifest = Manifest::load(dir).map_err(anyhow::Error::msg)?;
    let mut names = manifest.datasets.clone();
    names.extend([REJECTS.to_string(), QUARANTINE.to_string()]);
    if manifest
        .files
        .iter()
        .any(|f| f.path.starts_with(&format!("{CLUSTERS}/")))
    {
        names.push(CLUSTERS.to_string());
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
