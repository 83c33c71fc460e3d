//! `refinery lineage trace|report`: where a record went, and what trained a model.

use std::path::PathBuf;

use serde_json::Value;
use tokio::runtime::Handle;

use super::{Failure, SqlMemory};
use crate::lineage::report::svg::short;
use crate::lineage::trace::{Trace, trace};
use crate::lineage::{Lineage, report};
use crate::sql::{OutputFormat, text_table};

/// What to do.
#[derive(Debug, clap::Subcommand)]
pub enum LineageCommand {
    /// Every stage decision about one record, its duplicate survivor, its shard and token range,
    /// and the training steps that could have read it.
    Trace {
        /// A document id, or `FILE:LINE` (JSONL line, Parquet row or text-file path as the
        /// locator; FILE matched against the end of the source uri).
        id: String,
        /// Where to start: a checkpoint, a training folder, a run output folder or a dataset
        /// root (links are followed from there to the version and the run).
        #[arg(long, default_value = ".")]
        from: String,
        /// The version, when --from is a dataset root (default: latest).
        #[arg(long)]
        version: Option<String>,
        /// Output format (`json` prints the whole trace with its SQL).
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// The queries' memory budget.
        #[command(flatten)]
        memory: SqlMemory,
    },
    /// The audit report of a checkpoint or a version: funnel, rules, dedup clusters,
    /// contamination, mixture, losses, configs and inputs; every figure from SQL.
    Report {
        /// A checkpoint, a training folder (its latest checkpoint), a dataset root or a run
        /// output folder.
        from: String,
        /// The version, when FROM is a dataset root (default: latest).
        #[arg(long)]
        version: Option<String>,
        /// Write the report as one self-contained HTML file.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Write the report as JSON (schema: docs/report.schema.json).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write OpenLineage run events (one JSON object a line).
        #[arg(long)]
        openlineage: Option<PathBuf>,
        /// The queries' memory budget.
        #[command(flatten)]
        memory: SqlMemory,
    },
}

/// Runs a lineage command.
pub fn lineage(command: LineageCommand, handle: &Handle) -> Result<(), Failure> {
    match command {
        LineageCommand::Trace {
            id,
            from,
            version,
            format,
            memory,
        } => {
            let lineage = Lineage::locate(&from, version.as_deref(), handle)?;
            let t = trace(&id, &lineage, memory.bytes, handle)?;
            match format {
                OutputFormat::Json => outln!("{}", serde_json::to_string_pretty(&t)?),
                _ => print_trace(&t),
            }
            Ok(())
        }
        LineageCommand::Report {
            from,
            version,
            html,
            json,
            openlineage,
            memory,
        } => {
            if html.is_none() && json.is_none() && openlineage.is_none() {
                return Err(Failure {
                    error: anyhow::anyhow!(
                        "say where to write the report: --html FILE, --json FILE and/or --openlineage FILE"
                    ),
                    code: 2,
                });
            }
            for (option, path) in [
                ("--html", &html),
                ("--json", &json),
                ("--openlineage", &openlineage),
            ] {
                path.as_deref()
                    .map_or(Ok(()), |p| super::local_file(option, p))?;
            }
            let lineage = Lineage::locate(&from, version.as_deref(), handle)?;
            let r = report::build(&lineage, memory.bytes, handle)?;
            if let Some(path) = &json {
                report::write_json(&r, path)?;
                outln!("JSON report: {}", path.display());
            }
            if let Some(path) = &html {
                report::html::write(&r, path)?;
                outln!("HTML report: {}", path.display());
            }
            if let Some(path) = &openlineage {
                report::openlineage::write(&lineage, &r, path, memory.bytes, handle)?;
                outln!("OpenLineage events: {}", path.display());
            }
            Ok(())
        }
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_f64().map_or(n.to_string(), short),
        other => other.to_string(),
    }
}

fn print_trace(t: &Trace) {
    let d = &t.document;
    outln!(
        "Document {}: source {}, {} at locator {}, {} bytes, content hash {}",
        cell(&d["id"]),
        cell(&d["source"]),
        cell(&d["uri"]),
        cell(&d["locator"]),
        cell(&d["bytes"]),
        cell(&d["content_hash"])
    );
    let columns = [
        "stage",
        "decision",
        "rule",
        "value",
        "threshold",
        "bytes_before",
        "bytes_after",
    ];
    let rows: Vec<Vec<String>> = t
        .decisions
        .iter()
        .map(|r| columns.iter().map(|c| cell(&r[*c])).collect())
        .collect();
    outln!("{}", text_table(&columns, &rows));
    for e in &t.edits {
        outln!(
            "Edit by {}: {} {}",
            cell(&e["stage"]),
            cell(&e["rule"]),
            cell(&e["detail"])
        );
    }
    match t.decisions.iter().find(|r| r["decision"] == "dropped") {
        Some(r) => outln!(
            "Outcome: dropped by {} ({} = {}, threshold {})",
            cell(&r["stage"]),
            cell(&r["rule"]),
            cell(&r["value"]),
            cell(&r["threshold"])
        ),
        None => outln!("Outcome: kept by every stage"),
    }
    if let Some(s) = &t.survivor {
        outln!(
            "Duplicate of {} ({} {} at {})",
            cell(&s["id"]),
            cell(&s["source"]),
            cell(&s["uri"]),
            cell(&s["locator"])
        );
    }
    if let Some(r) = &t.tokens {
        let check = match r.decodes_to_text {
            Some(true) => "decodes back to its text",
            Some(false) => "DOES NOT decode back to its text",
            None => "text not checked",
        };
        outln!(
            "Tokens: version {}, {}/{} tokens {}..{} ({} tokens) in {}; {check}",
            r.version,
            r.split,
            r.source,
            r.start,
            r.end,
            r.end - r.start,
            t.shards
                .iter()
                .map(|s| cell(&s["shard"]))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if r.split == "validation" {
            outln!("Held out for validation: no training step reads it");
        }
    } else if t.outcome == "kept" {
        match &t.version {
            Some(v) => outln!("Tokens: not in version {v}"),
            None => outln!("Tokens: none (no token version was made from this run)"),
        }
    }
    for u in &t.training {
        let steps: Vec<String> = u.steps.iter().take(20).map(u64::to_string).collect();
        let more = if u.steps.len() > 20 { ", ..." } else { "" };
        outln!(
            "Checkpoint {} (step {}): {} window(s) read it, at steps [{}{more}]{}",
            u.checkpoint,
            u.step,
            u.windows,
            steps.join(", "),
            if u.replay_verified {
                ""
            } else {
                " (replay did NOT reach the saved sampler state)"
            }
        );
    }
}
