//! `refinery stats DIR`: counts and bytes per source and per stage, computed with DataFusion SQL
//! over the run's Parquet outputs and checked against the manifest's accounting.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::anyhow;
use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use serde::Serialize;
use tokio::runtime::Handle;

use super::query::run_tables;
use super::{Failure, SqlMemory};
use crate::output::manifest::Manifest;
use crate::sql::{self, OutputFormat, text_table};

/// The SQL behind each figure; listed in `--format json` output so they can be rerun.
const KEPT: &str = "SELECT source, count(*) AS docs, sum(octet_length(text)) AS bytes FROM {final} GROUP BY source";
const DROPPED: &str = "SELECT source, stage, count(*) AS docs, sum(octet_length(text)) AS bytes FROM rejects GROUP BY source, stage";
const QUARANTINED: &str = "SELECT source, count(*) AS docs, 0 AS bytes FROM quarantine WHERE scope = 'record' GROUP BY source";
const RULES: &str = "SELECT stage, rule, count(*) AS docs, sum(octet_length(text)) AS bytes FROM rejects GROUP BY stage, rule ORDER BY stage, docs DESC, rule";

/// Documents and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
struct Tally {
    docs: i64,
    bytes: i64,
}

#[derive(Debug, Serialize)]
struct Stats {
    /// source -> (quarantined, dropped, kept).
    sources: BTreeMap<String, SourceStats>,
    stages: Vec<StageStats>,
    rules: Vec<RuleStats>,
    queries: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
struct SourceStats {
    quarantined: Tally,
    dropped: Tally,
    kept: Tally,
}

#[derive(Debug, Serialize)]
struct StageStats {
    stage: String,
    input: Tally,
    kept: Tally,
    dropped: Tally,
}

#[derive(Debug, Serialize)]
struct RuleStats {
    stage: String,
    rule: String,
    dropped: Tally,
}

/// Prints the statistics of the run in `dir`; fails if they disagree with its manifest.
pub fn stats(
    dir: &Path,
    format: OutputFormat,
    memory: SqlMemory,
    handle: &Handle,
) -> Result<(), Failure> {
    let manifest = Manifest::load(dir).map_err(anyhow::Error::msg)?;
    let tables = run_tables(dir)?;
    let final_name = manifest.datasets.last().cloned().unwrap_or_default();
    let kept_sql = KEPT.replace("{final}", &final_name);
    let (kept, dropped, quarantined, rules) = handle.block_on(async {
        let ctx = sql::context(&tables, memory.bytes).await?;
        let run = |q: String| {
            let ctx = ctx.clone();
            async move { sql::query(&ctx, &q).await }
        };
        Ok::<_, datafusion::error::DataFusionError>((
            run(kept_sql.clone()).await?,
            run(DROPPED.into()).await?,
            run(QUARANTINED.into()).await?,
            run(RULES.into()).await?,
        ))
    })?;
    let mut stats = Stats {
        sources: BTreeMap::new(),
        stages: Vec::new(),
        rules: Vec::new(),
        queries: vec![kept_sql, DROPPED.into(), QUARANTINED.into(), RULES.into()],
    };
    let mut dropped_by_stage: BTreeMap<String, Tally> = BTreeMap::new();
    for (keys, tally) in rows(&kept, 1) {
        stats.sources.entry(keys[0].clone()).or_default().kept = tally;
    }
    for (keys, tally) in rows(&quarantined, 1) {
        stats
            .sources
            .entry(keys[0].clone())
            .or_default()
            .quarantined = tally;
    }
    for (keys, tally) in rows(&dropped, 2) {
        add(
            &mut stats.sources.entry(keys[0].clone()).or_default().dropped,
            tally,
        );
        add(dropped_by_stage.entry(keys[1].clone()).or_default(), tally);
    }
    for (keys, tally) in rows(&rules, 2) {
        stats.rules.push(RuleStats {
            stage: keys[0].clone(),
            rule: keys[1].clone(),
            dropped: tally,
        });
    }
    let final_is_last = manifest
        .stages
        .last()
        .map_or(final_name == crate::config::INGEST, |s| *s == final_name);
    if final_is_last {
        let mut flowing = stats.sources.values().fold(Tally::default(), |mut t, s| {
            add(&mut t, s.kept);
            t
        });
        for name in manifest.stages.iter().rev() {
            let dropped = dropped_by_stage.get(name).copied().unwrap_or_default();
            let kept = flowing;
            add(&mut flowing, dropped);
            stats.stages.push(StageStats {
                stage: name.clone(),
                input: flowing,
                kept,
                dropped,
            });
        }
        stats.stages.reverse();
        check_against_manifest(&stats, &manifest)?;
    }
    match format {
        OutputFormat::Json => outln!("{}", serde_json::to_string_pretty(&stats)?),
        _ => print_tables(&stats, final_is_last),
    }
    Ok(())
}

fn add(total: &mut Tally, t: Tally) {
    total.docs += t.docs;
    total.bytes += t.bytes;
}

/// Rows of a grouped result: the first `keys` columns as strings, then docs and bytes.
fn rows(batches: &[arrow::record_batch::RecordBatch], keys: usize) -> Vec<(Vec<String>, Tally)> {
    let mut out = Vec::new();
    for b in batches {
        let int = |i: usize, row: usize| {
            let c = b.column(i);
            let c = arrow::compute::cast(c, &arrow::datatypes::DataType::Int64).ok();
            c.filter(|c| !c.is_null(row))
                .map_or(0, |c| c.as_primitive::<Int64Type>().value(row))
        };
        for row in 0..b.num_rows() {
            let k = (0..keys)
                .map(|i| {
                    arrow::util::display::array_value_to_string(b.column(i), row)
                        .unwrap_or_default()
                })
                .collect();
            out.push((
                k,
                Tally {
                    docs: int(keys, row),
                    bytes: int(keys + 1, row),
                },
            ));
        }
    }
    out
}

fn check_against_manifest(stats: &Stats, manifest: &Manifest) -> Result<(), Failure> {
    for (sql_stage, counted) in stats.stages.iter().zip(&manifest.accounting.stages) {
        let got = (
            sql_stage.input.docs as u64,
            sql_stage.kept.docs as u64,
            sql_stage.dropped.docs as u64,
        );
        if got != (counted.input, counted.kept, counted.dropped) {
            return Err(anyhow!("stage {}: the outputs hold in/kept/dropped = {got:?}, the manifest says ({}, {}, {})", counted.name, counted.input, counted.kept, counted.dropped).into());
        }
    }
    for s in &manifest.accounting.sources {
        let got = stats
            .sources
            .get(&s.source)
            .map_or(0, |t| t.quarantined.docs) as u64;
        if got != s.counts.quarantined_records {
            return Err(anyhow!(
                "source {}: {got} quarantined records in the outputs, the manifest says {}",
                s.source,
                s.counts.quarantined_records
            )
            .into());
        }
    }
    Ok(())
}

fn print_tables(stats: &Stats, with_stages: bool) {
    let mb = |t: Tally| format!("{:.2}", t.bytes as f64 / 1e6);
    let rows: Vec<Vec<String>> = stats
        .sources
        .iter()
        .map(|(name, s)| {
            vec![
                name.clone(),
                s.quarantined.docs.to_string(),
                s.dropped.docs.to_string(),
                mb(s.dropped),
                s.kept.docs.to_string(),
                mb(s.kept),
            ]
        })
        .collect();
    outln!(
        "Per source\n{}",
        text_table(
            &[
                "source",
                "quarantined",
                "dropped",
                "dropped MB",
                "kept",
                "kept MB"
            ],
            &rows
        )
    );
    if with_stages {
        let rows: Vec<Vec<String>> = stats
            .stages
            .iter()
            .map(|s| {
                vec![
                    s.stage.clone(),
                    s.input.docs.to_string(),
                    mb(s.input),
                    s.kept.docs.to_string(),
                    s.dropped.docs.to_string(),
                    mb(s.dropped),
                ]
            })
            .collect();
        outln!(
            "Per stage\n{}",
            text_table(
                &["stage", "in", "in MB", "kept", "dropped", "dropped MB"],
                &rows
            )
        );
    }
    let rows: Vec<Vec<String>> = stats
        .rules
        .iter()
        .map(|r| {
            vec![
                r.stage.clone(),
                r.rule.clone(),
                r.dropped.docs.to_string(),
                mb(r.dropped),
            ]
        })
        .collect();
    if !rows.is_empty() {
        outln!(
            "Rules by documents dropped\n{}",
            text_table(&["stage", "rule", "dropped", "dropped MB"], &rows)
        );
    }
}
