//! `refinery query "SQL"`.

use std::fs::File;
use std::path::Path;

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
            DataFusionError::ParquetError(_) => match unreadable_part(&tables, handle) {
                Some(why) => Failure::from(anyhow::anyhow!("{e}; {why}")),
                None => e.into(),
            },
            _ => e.into(),
        })?;
    outln!("{}", sql::render(&batches, format)?);
    Ok(())
}

/// The first local Parquet file of `tables` (each spec expanded as inputs are: a file, a folder
/// and below, or a glob) whose footer cannot be read, and why.
fn unreadable_part(tables: &[(String, String)], handle: &Handle) -> Option<String> {
    let mut local = tables.iter().filter(|(_, spec)| !shards::is_url(spec));
    local.find_map(|(_, spec)| {
        let set = handle.block_on(shards::list_inputs(spec)).ok()?;
        let mut files = set.files.into_iter().filter_map(|f| {
            let path = f.uri.strip_prefix("file://")?.to_string();
            path.ends_with(".parquet").then_some(path)
        });
        files.find_map(|path| {
            let footer = File::open(&path).map_err(|e| e.to_string()).and_then(|f| {
                ParquetMetaDataReader::new()
                    .parse_and_finish(&f)
                    .map_err(|e| e.to_string())
            });
            footer
                .err()
                .map(|e| format!("{path} is not readable Parquet: {e}"))
        })
    })
}

/// The registered table names, for an error that names a table that is not one of them.
fn known_tables(tables: &[(String, String)]) -> String {
    if tables.is_empty() {
        return "no tables are registered (give a run folder with `--dir` or tables with `--table NAME=PATH`)".to_string();
    }
    let names: Vec<&str> = tables.iter().map(|(name, _)| name.as_str()).collect();
    format!("tables: {}", names.join(", "))
}
