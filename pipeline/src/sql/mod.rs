//! DataFusion over Parquet outputs: registering tables, running SQL, rendering results; the
//! stages' rules as SQL functions ([`functions`]).

pub mod functions;
pub mod session;

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use datafusion::error::DataFusionError;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

/// How query results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum OutputFormat {
    /// An aligned text table.
    #[default]
    Table,
    /// A JSON array of row objects.
    Json,
    /// CSV with a header line.
    Csv,
}

/// A session of at most `memory_budget` bytes ([`session`]) with each `(name, path)` registered
/// as a Parquet table (a file, a folder of parts, or a glob such as
/// `tokens/versions/<id>/*/*/*.index.parquet`).
/// An `s3://` path reads its bucket with the usual AWS environment variables.
pub async fn context(
    tables: &[(String, String)],
    memory_budget: usize,
) -> Result<SessionContext, DataFusionError> {
    let ctx = session::session(memory_budget);
    for (name, path) in tables {
        register_bucket(&ctx, path)?;
        match url_glob(path) {
            Some((prefix, glob)) => register_url_glob(&ctx, name, prefix, glob).await?,
            None => {
                ctx.register_parquet(name.as_str(), path.as_str(), ParquetReadOptions::default())
                    .await?
            }
        }
    }
    Ok(ctx)
}

/// Splits a URL whose path holds a glob (`s3://b/v/*/*.parquet`) into the folder before the
/// first glob segment and the rest. DataFusion expands globs in local paths only.
fn url_glob(path: &str) -> Option<(&str, &str)> {
    if !path.contains("://") {
        return None;
    }
    let first = path.find(['*', '?', '['])?;
    let cut = path[..first].rfind('/')? + 1;
    Some(path.split_at(cut))
}

/// Registers the Parquet files under `prefix` whose path below it matches `glob`.
async fn register_url_glob(
    ctx: &SessionContext,
    name: &str,
    prefix: &str,
    glob: &str,
) -> Result<(), DataFusionError> {
    use datafusion::datasource::file_format::options::ReadOptions;
    use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
    let url = ListingTableUrl::parse(prefix)?.with_glob(glob)?;
    let options = ParquetReadOptions::default()
        .to_listing_options(&ctx.copied_config(), ctx.copied_table_options());
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .infer_schema(&ctx.state())
        .await?;
    ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
    Ok(())
}

/// Lets `ctx` read the bucket of an `s3://` location, with the usual AWS environment variables
/// (endpoint, credentials, region); other locations need nothing.
pub fn register_bucket(ctx: &SessionContext, location: &str) -> Result<(), DataFusionError> {
    if location.starts_with("s3://") {
        let external = |e: Box<dyn std::error::Error + Send + Sync>| DataFusionError::External(e);
        let (store, root, _) = shards::open_store(location).map_err(|e| external(e.into()))?;
        let url = url::Url::parse(&root).map_err(|e| external(e.into()))?;
        ctx.register_object_store(&url, store);
    }
    Ok(())
}

/// Runs one SQL statement and collects its result: at least one batch, so that an empty result
/// still has its columns (a table's header, a CSV header line).
pub async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, DataFusionError> {
    let frame = ctx.sql(sql).await?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await.map_err(session::with_budget_hint)?;
    Ok(if batches.is_empty() {
        vec![RecordBatch::new_empty(schema)]
    } else {
        batches
    })
}

/// Renders batches in `format`.
pub fn render(
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<String, arrow::error::ArrowError> {
    match format {
        OutputFormat::Table => Ok(pretty_format_batches(batches)?.to_string()),
        OutputFormat::Json => {
            let mut w = arrow::json::ArrayWriter::new(Vec::new());
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
            let bytes = w.into_inner();
            Ok(if bytes.is_empty() {
                "[]".to_string()
            } else {
                String::from_utf8_lossy(&bytes).into_owned()
            })
        }
        OutputFormat::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(Vec::new());
            for b in batches {
                w.write(b)?;
            }
            Ok(String::from_utf8_lossy(&w.into_inner()).into_owned())
        }
    }
}

/// A text table of string cells, through Arrow's pretty printer.
pub fn text_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    use arrow::array::{ArrayRef, StringArray};
    let columns: Vec<(&str, ArrayRef)> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            (
                *h,
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r[i].as_str()),
                )) as ArrayRef,
            )
        })
        .collect();
    RecordBatch::try_from_iter(columns)
        .and_then(|b| pretty_format_batches(&[b]).map(|t| t.to_string()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_in_urls_split_at_the_folder_before_the_first_glob_segment() {
        assert_eq!(
            url_glob("s3://b/ds/versions/v1/*/*/*.index.parquet"),
            Some(("s3://b/ds/versions/v1/", "*/*/*.index.parquet"))
        );
        assert_eq!(
            url_glob("s3://b/part-[0-9].parquet"),
            Some(("s3://b/", "part-[0-9].parquet"))
        );
        assert_eq!(url_glob("s3://b/ds/rejects/"), None);
        assert_eq!(
            url_glob("out/*/x.parquet"),
            None,
            "DataFusion expands local globs"
        );
    }

    #[test]
    fn sql_over_a_written_part_renders_in_every_format() {
        let dir = tempfile::tempdir().unwrap();
        let batch = crate::stages::tests::docs(&["a b", "c"]);
        let mut w =
            crate::output::part::PartWriter::create(dir.path(), "docs/p.parquet", batch.schema())
                .unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let tables = [(
            "docs".to_string(),
            dir.path().join("docs").display().to_string(),
        )];
        let (out, none) = rt.block_on(async {
            let ctx = context(&tables, 512 << 20).await.unwrap();
            let sql = "SELECT locator, octet_length(text) AS n FROM docs";
            let all = query(&ctx, &format!("{sql} ORDER BY locator")).await;
            let none = query(&ctx, &format!("{sql} WHERE text = 'zz'")).await;
            (all.unwrap(), none.unwrap())
        });
        assert_eq!(
            render(&out, OutputFormat::Json).unwrap(),
            r#"[{"locator":"1","n":3},{"locator":"2","n":1}]"#
        );
        assert_eq!(
            render(&out, OutputFormat::Csv).unwrap(),
            "locator,n\n1,3\n2,1\n"
        );
        assert!(
            render(&out, OutputFormat::Table)
                .unwrap()
                .contains("| locator | n |")
        );
        // An empty result keeps its columns.
        assert_eq!(render(&none, OutputFormat::Csv).unwrap(), "locator,n\n");
        assert!(
            render(&none, OutputFormat::Table)
                .unwrap()
                .contains("| locator | n |")
        );
        assert_eq!(render(&none, OutputFormat::Json).unwrap(), "[]");
        assert!(text_table(&["a"], &[vec!["x".into()]]).contains("| x |"));
    }
}
