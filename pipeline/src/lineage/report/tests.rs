//! The report's queries over synthetic lineage tables written as Parquet: their figures, the
//! violations their checks find, and the memory they need.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::error::DataFusionError;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use parquet::arrow::ArrowWriter;
use serde_json::Value;

use super::sections::{self, Params};
use crate::lineage::trace::rows;
use crate::sql::session::{MIN_MEMORY_BUDGET, session};

/// The two stages every synthetic document meets.
const STAGES: [&str; 2] = ["length", "pii"];

/// One synthetic document: where it left the pipeline, and what it holds.
#[derive(Debug, Clone)]
struct Doc {
    id: String,
    source: &'static str,
    /// The stage that dropped it, or `None` if kept by both.
    dropped_at: Option<u32>,
    tokens: u64,
    bytes: u64,
}

/// `n` documents from two sources: a third dropped by `length`, a third by `pii`, a third kept.
fn corpus(n: u64) -> Vec<Doc> {
    (0..n)
        .map(|i| Doc {
            // Scattered like the xxh3 ids of real documents.
            id: format!(
                "{:032x}",
                u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
            ),
            source: ["web", "books"][(i % 2) as usize],
            dropped_at: [Some(0), Some(1), None][(i % 3) as usize],
            tokens: i % 97 + 1,
            bytes: 100 + i % 50,
        })
        .collect()
}

/// One column of strings or numbers.
fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn numbers(values: impl Iterator<Item = u64>) -> ArrayRef {
    Arc::new(UInt64Array::from_iter_values(values))
}

/// Writes `rows` as the Parquet file `path` in batches of 64k rows; `batch` builds a batch's
/// columns from its rows.
fn write<T>(path: &Path, schema: SchemaRef, rows: &[T], batch: impl Fn(&[T]) -> Vec<ArrayRef>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, schema.clone(), None).unwrap();
    for chunk in rows.chunks(1 << 16) {
        let columns = batch(chunk);
        writer
            .write(&RecordBatch::try_new(schema.clone(), columns).unwrap())
            .unwrap();
    }
    writer.close().unwrap();
}

/// A decision row: (document, stage index, dropped).
type Decision<'a> = (&'a Doc, u32, bool);

/// The lineage tables of a synthetic run, as rows.
struct Tables<'a> {
    decisions: Vec<Decision<'a>>,
    /// `shard_docs`: (document, tokens of one piece).
    pieces: Vec<(&'a Doc, u64)>,
    /// `dropped_tokens`.
    dropped: Vec<&'a Doc>,
}

impl<'a> Tables<'a> {
    /// What a correct run writes: a decision per stage reached, the kept documents in the
    /// shards (those with an even id in two pieces), the dropped ones' tokens.
    fn of(docs: &'a [Doc]) -> Self {
        let mut decisions = Vec::new();
        for d in docs {
            let last = d.dropped_at.unwrap_or(STAGES.len() as u32 - 1);
            decisions.extend((0..=last).map(|s| (d, s, d.dropped_at == Some(s))));
        }
        let pieces = docs
            .iter()
            .filter(|d| d.dropped_at.is_none())
            .flat_map(|d| {
                let split = d.id.ends_with(['0', '2', '4', '6', '8']) && d.tokens > 1;
                let first = if split { d.tokens / 2 } else { d.tokens };
                let rest = (d.tokens > first).then_some((d, d.tokens - first));
                std::iter::once((d, first)).chain(rest)
            })
            .collect();
        let dropped = docs.iter().filter(|d| d.dropped_at.is_some()).collect();
        Self {
            decisions,
            pieces,
            dropped,
        }
    }

    /// Writes the tables as Parquet under `dir` and registers them in `ctx`.
    async fn register(&self, ctx: &SessionContext, dir: &Path) -> Result<(), DataFusionError> {
        let decisions = dir.join("decisions/part-0.parquet");
        write(
            &decisions,
            crate::schema::decisions(),
            &self.decisions,
            |rows| {
                let nulls = |t: DataType| arrow::array::new_null_array(&t, rows.len());
                vec![
                    strings(rows.iter().map(|r| r.0.id.as_str())),
                    strings(rows.iter().map(|r| r.0.source)),
                    strings(rows.iter().map(|r| STAGES[r.1 as usize])),
                    Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.1))),
                    strings(rows.iter().map(|r| if r.2 { "dropped" } else { "kept" })),
                    nulls(DataType::Utf8),
                    nulls(DataType::Float64),
                    nulls(DataType::Float64),
                    nulls(DataType::Utf8),
                    nulls(DataType::Utf8),
                    numbers(rows.iter().map(|r| r.0.bytes)),
                    numbers(rows.iter().map(|r| if r.2 { 0 } else { r.0.bytes })),
                ]
            },
        );
        let index = dir.join("shard_docs/train/all/000000.index.parquet");
        write(
            &index,
            shards::dataset::index::schema(),
            &self.pieces,
            |rows| {
                vec![
                    strings(rows.iter().map(|r| r.0.id.as_str())),
                    strings(rows.iter().map(|r| r.0.source)),
                    numbers(rows.iter().map(|_| 0)),
                    numbers(rows.iter().map(|r| r.1)),
                    Arc::new(BooleanArray::from(vec![false; rows.len()])),
                    strings(rows.iter().map(|_| "v1")),
                    strings(rows.iter().map(|_| "train")),
                    strings(rows.iter().map(|_| "train/all/000000.bin")),
                    numbers(rows.iter().map(|_| 0)),
                ]
            },
        );
        let dropped = dir.join("dropped_tokens.parquet");
        write(
            &dropped,
            crate::tokenize::dropped::schema(),
            &self.dropped,
            |rows| {
                vec![
                    strings(rows.iter().map(|d| d.id.as_str())),
                    strings(rows.iter().map(|d| d.source)),
                    numbers(rows.iter().map(|d| d.tokens)),
                ]
            },
        );
        let plain = ParquetReadOptions::default();
        ctx.register_parquet(
            "decisions",
            dir.join("decisions").to_str().unwrap(),
            plain.clone(),
        )
        .await?;
        ctx.register_parquet("dropped_tokens", dropped.to_str().unwrap(), plain)
            .await?;
        let index = ParquetReadOptions {
            file_extension: ".index.parquet",
            ..ParquetReadOptions::default()
        };
        let shard_docs = format!("{}/", dir.join("shard_docs").display());
        ctx.register_parquet("shard_docs", &shard_docs, index).await
    }
}

/// The funnel the report must show: per (source, stage), documents in, kept, dropped and tokens
/// in and out.
fn expected_funnel(docs: &[Doc]) -> BTreeMap<(String, u32), [u64; 5]> {
    let mut funnel: BTreeMap<(String, u32), [u64; 5]> = BTreeMap::new();
    for d in docs {
        let last = d.dropped_at.unwrap_or(STAGES.len() as u32 - 1);
        for stage in 0..=last {
            let f = funnel.entry((d.source.to_string(), stage)).or_default();
            let kept = d.dropped_at != Some(stage);
            f[0] += 1;
            f[1] += u64::from(kept);
            f[2] += u64::from(!kept);
            f[3] += d.tokens;
            f[4] += if kept { d.tokens } else { 0 };
        }
    }
    funnel
}

/// A runtime like the command line's.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn funnel_sql() -> String {
    let params = Params {
        tokens: true,
        ..Params::default()
    };
    let funnel = sections::sections(&params)
        .into_iter()
        .find(|s| s.id == "funnel");
    funnel.unwrap().sql
}

#[test]
fn the_funnel_and_checks_over_tables_many_times_the_budget_finish_within_it() {
    // 600k documents, 1M decision rows: their ids alone are about 3 times the 32 MiB budget.
    let docs = corpus(600_000);
    let dir = tempfile::tempdir().unwrap();
    let ctx = session(MIN_MEMORY_BUDGET);
    let rt = runtime();
    let run = |sql: &str| rt.block_on(rows(&ctx, sql));
    let tables = Tables::of(&docs);
    rt.block_on(tables.register(&ctx, dir.path())).unwrap();
    // The tables are too large for a join on document ids within the budget.
    let join = "SELECT count(*) FROM decisions a JOIN decisions b ON a.id = b.id AND a.stage_index = b.stage_index";
    match run(join) {
        Err(e) => assert!(e.to_string().contains("raise --memory-budget"), "{e}"),
        Ok(rows) => panic!("a join on ids fitted in the budget: {rows:?}"),
    }
    let found = run(&funnel_sql()).unwrap();
    let expected = expected_funnel(&docs);
    assert_eq!(found.len(), expected.len());
    for row in &found {
        let key = (
            row["source"].as_str().unwrap().to_string(),
            row["stage_index"].as_u64().unwrap() as u32,
        );
        let got = ["documents_in", "kept", "dropped", "tokens_in", "tokens_out"]
            .map(|c| row[c].as_u64().unwrap_or_else(|| panic!("{c} in {row}")));
        assert_eq!(got, expected[&key], "{key:?}");
    }
    let registered = ["decisions", "shard_docs", "dropped_tokens"];
    let checks = sections::checks().into_iter();
    for check in checks.filter(|c| c.needs.iter().all(|t| registered.contains(t))) {
        let violations = run(&check.sql).unwrap();
        assert!(violations.is_empty(), "{}: {violations:?}", check.id);
    }
}

#[test]
fn checks_name_the_documents_that_break_them() {
    let docs = corpus(60);
    // docs[i] is dropped at stage 0 when i % 3 == 0, and kept by both stages when i % 3 == 2.
    let (twice, tokenized, untokenized) = (&docs[0], &docs[3], &docs[2]);
    let mut tables = Tables::of(&docs);
    tables.decisions.push((twice, 0, true));
    tables.pieces.push((tokenized, tokenized.tokens));
    tables.pieces.retain(|p| p.0.id != untokenized.id);
    let dir = tempfile::tempdir().unwrap();
    let ctx = session(512 << 20);
    let rt = runtime();
    rt.block_on(tables.register(&ctx, dir.path())).unwrap();
    let found = |id: &str| -> Vec<Value> {
        let check = sections::checks().into_iter().find(|c| c.id == id).unwrap();
        rt.block_on(rows(&ctx, &check.sql)).unwrap()
    };
    let ids = |rows: &[Value]| -> Vec<String> {
        rows.iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    let repeated = found("one_decision_per_stage");
    assert_eq!(ids(&repeated), [twice.id.as_str()]);
    assert_eq!(
        (&repeated[0]["stage_index"], &repeated[0]["decisions"]),
        (&0.into(), &2.into())
    );
    assert_eq!(ids(&found("tokenized_were_kept")), [tokenized.id.as_str()]);
    let missing = found("kept_were_tokenized");
    assert_eq!(ids(&missing), [untokenized.id.as_str()]);
    assert_eq!(missing[0]["source"], untokenized.source);
}
