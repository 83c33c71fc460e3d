//! `refinery query "SQL"`.

use std::fs::File;
use std::path::Path;

use datafusion::error::DataFusionError;
use parquet::file::metadata::ParquetMetaDataReader;
use tokio::runtime::Handle;

use super::{Failure, SqlMemory};
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
    memory: SqlMemory,
    handle: &Handle,
) -> Result<(), Failure> {
    for (name, spec) in &tables {
        if let Some(why) = mixed_columns(spec, handle) {
            // Not refused: a table's files may have gained a column over time.
            tracing::warn!(
                "table `{name}` is read as one table although {why}; if they are different \
                 tables, name the files of one with a glob (for a token version, \
                 `{name}=VERSION/**/*.index.parquet`)"
            );
        }
    }
    if let Some(dir) = dir {
        tables.extend(run_tables(dir)?);
    }
    let batches = handle
        .block_on(async {
            let ctx = sql::context(&tables, memory.bytes).await?;
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
    tables.iter().find_map(|(_, spec)| {
        local_parquet(spec, handle).into_iter().find_map(|path| {
            footer_columns(&path)
                .err()
                .map(|e| format!("{path} is not readable Parquet: {e}"))
        })
    })
}

/// Two Parquet files of a local table spec whose columns differ, named with their columns:
/// DataFusion would read them as one table (a token version's folder holds its shards' indexes
/// and its dropped documents' tokens, and a sum over it would add both).
fn mixed_columns(spec: &str, handle: &Handle) -> Option<String> {
    let mut files = local_parquet(spec, handle)
        .into_iter()
        .filter_map(|path| Some((footer_columns(&path).ok()?, path)));
    let (first, first_path) = files.next()?;
    let (other, other_path) = files.find(|(columns, _)| *columns != first)?;
    Some(format!(
        "its files have different columns: {first_path} has [{}], {other_path} has [{}]",
        first.join(", "),
        other.join(", ")
    ))
}

/// The local `*.parquet` files a table spec names, in path order (none for a URL).
fn local_parquet(spec: &str, handle: &Handle) -> Vec<String> {
    if shards::is_url(spec) {
        return Vec::new();
    }
    let Ok(set) = handle.block_on(shards::list_inputs(spec)) else {
        return Vec::new();
    };
    set.files
        .into_iter()
        .filter_map(|f| Some(f.uri.strip_prefix("file://")?.to_string()))
        .filter(|path| path.ends_with(".parquet"))
        .collect()
}

/// The top-level column names in a Parquet file's footer.
fn footer_columns(path: &str) -> Result<Vec<String>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let footer = ParquetMetaDataReader::new()
        .parse_and_finish(&file)
        .map_err(|e| e.to_string())?;
    let schema = footer.file_metadata().schema_descr().root_schema();
    Ok(schema
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect())
}

/// The registered table names, for an error that names a table that is not one of them.
fn known_tables(tables: &[(String, String)]) -> String {
    if tables.is_empty() {
        return "no tables are registered (give a run folder with `--dir` or tables with `--table NAME=PATH`)".to_string();
    }
    let names: Vec<&str> = tables.iter().map(|(name, _)| name.as_str()).collect();
    format!("tables: {}", names.join(", "))
}
