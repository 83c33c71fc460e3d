//! `refinery query "SQL"`.

use std::path::{Path, PathBuf};

use datafusion::error::DataFusionError;
use parquet::file::metadata::ParquetMetaDataReader;
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
    let batches = handle
        .block_on(async {
            let ctx = sql::context(&tables).await?;
            sql::query(&ctx, sql_text).await
        })
        .map_err(|e| match e.find_root() {
            // The parser's own message, once, as a usage error.
            DataFusionError::SQL(parser, _) => Failure {
                error: anyhow::anyhow!("{parser}"),
                code: 2,
            },
            // A table that is not there: say which are.
            DataFusionError::Plan(message) if message.starts_with("table '") => Failure {
                error: anyhow::anyhow!("{message}; {}", known_tables(&tables)),
                code: 2,
            },
            // A column that is not there (DataFusion lists the valid ones): the query's fault too.
            DataFusionError::SchemaError(..) | DataFusionError::Plan(_) => Failure {
                error: e.into(),
                code: 2,
            },
            // DataFusion does not say which file it could not read: find it.
            DataFusionError::ParquetError(_) => match unreadable_part(&tables) {
                Some(why) => Failure::from(anyhow::anyhow!("{e}; {why}")),
                None => e.into(),
            },
            _ => e.into(),
        })?;
    outln!("{}", sql::render(&batches, format)?);
    Ok(())
}

/// The first local Parquet file of `tables` (a file, or `*.parquet` in a folder and below) whose
/// footer cannot be read, and why.
fn unreadable_part(tables: &[(String, String)]) -> Option<String> {
    let mut pending: Vec<PathBuf> = tables
        .iter()
        .filter(|(_, path)| !shards::is_url(path))
        .map(|(_, path)| PathBuf::from(path))
        .collect();
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&path)
                .into_iter()
                .flatten()
                .flatten()
                .map(|entry| entry.path())
                .filter(|p| p.is_dir() || p.extension().is_some_and(|x| x == "parquet"))
                .collect();
            entries.sort_unstable_by(|a, b| b.cmp(a));
            pending.extend(entries);
        } else if path.is_file() {
            let footer = std::fs::File::open(&path)
                .map_err(|e| e.to_string())
                .and_then(|f| {
                    ParquetMetaDataReader::new()
                        .parse_and_finish(&f)
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = footer {
                return Some(format!("{} is not readable Parquet: {e}", path.display()));
            }
        }
    }
    None
}

/// The registered table names, for an error that names a table that is not one of them.
fn known_tables(tables: &[(String, String)]) -> String {
    if tables.is_empty() {
        return "no tables are registered (give a run folder with `--dir` or tables with `--table NAME=PATH`)".to_string();
    }
    let names: Vec<&str> = tables.iter().map(|(name, _)| name.as_str()).collect();
    format!("tables: {}", names.join(", "))
}
