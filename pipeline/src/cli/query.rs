//! `refinery query "SQL"`.

use std::path::Path;

use tokio::runtime::Handle;

use super::Failure;
use crate::sql::{self, OutputFormat};

/// The tables of a run's output folder (see [`crate::lineage::catalog::run_tables`]).
pub fn run_tables(dir: &Path) -> Result<Vec<(String, String)>, Failure> {
    Ok(crate::lineage::catalog::run_tables(dir)?)
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
    outln!("{}", sql::render(&batches, format)?);
    Ok(())
}
