//! The report's queries: one per figure, and the invariants it checks.
//!
//! No query joins on document ids: a hash join holds its whole build side in memory, and
//! DataFusion 55 cannot spill it, so such a join would grow with the corpus past any
//! `--memory-budget`. Queries that match documents across tables group the tables' union by id
//! instead, a grouping that spills (see [`crate::sql::session`]).

use serde::Serialize;

use crate::lineage::trace::quote;

/// How a section is drawn.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Chart {
    /// A table only.
    None,
    /// Horizontal bars: one bar group per row, labelled by `label`, one bar per `values` column.
    Bars {
        /// The label column.
        label: String,
        /// The value columns.
        values: Vec<String>,
    },
    /// Lines of `y` over `x`, one per distinct `series`.
    Lines {
        /// The series column.
        series: String,
        /// The x column.
        x: String,
        /// The y column.
        y: String,
    },
}

/// A figure's definition.
#[derive(Debug, Clone)]
pub struct SectionSpec {
    /// Stable id.
    pub id: &'static str,
    /// Heading.
    pub title: &'static str,
    /// What it shows.
    pub description: &'static str,
    /// Tables it reads.
    pub needs: &'static [&'static str],
    /// Its SQL.
    pub sql: String,
    /// Its columns, in order.
    pub columns: &'static [&'static str],
    /// Its chart.
    pub chart: Chart,
}

/// An invariant's definition: its SQL returns the rows that break it.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    /// Stable id.
    pub id: &'static str,
    /// What must hold.
    pub description: &'static str,
    /// Tables it reads.
    pub needs: &'static [&'static str],
    /// Its SQL.
    pub sql: String,
}

/// What the queries depend on.
#[derive(Debug, Clone, Default)]
pub struct Params {
    /// The checkpoint's folder name (mixture and losses are read at it).
    pub checkpoint: Option<String>,
    /// Its step.
    pub step: Option<u64>,
    /// Token counts exist for every document (`shard_docs` and `dropped_tokens`): the funnel
    /// gets token columns.
    pub tokens: bool,
}

fn bars(label: &str, values: &[&str]) -> Chart {
    Chart::Bars {
        label: label.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

fn lines(series: &str, x: &str, y: &str) -> Chart {
    Chart::Lines {
        series: series.into(),
        x: x.into(),
        y: y.into(),
    }
}

/// Counts of kept and dropped decisions.
const KEPT: &str = "sum(CASE WHEN decision = 'kept' THEN 1 ELSE 0 END)";
const DROPPED: &str = "sum(CASE WHEN decision = 'dropped' THEN 1 ELSE 0 END)";

/// Where documents left the pipeline, with their tokens: `exits` sums tokens per source, last
/// stage reached (`last`) and whether that stage dropped the document (`dropped`). A document goes
/// into every stage up to its last, and out of every stage before its last, and out of its last
/// too unless dropped there. Kept documents reached the last stage and are in the shard indexes,
/// with their source; a dropped document's stage is matched to its `dropped_tokens` row by
/// grouping both on the id (`dropped`).
const EXITS: &str = "WITH dropped AS (SELECT max(source) AS source, max(stage_index) AS last, sum(tokens) AS tokens FROM (SELECT id, source, stage_index, CAST(NULL AS BIGINT UNSIGNED) AS tokens FROM decisions WHERE decision = 'dropped' UNION ALL SELECT id, NULL, NULL, tokens FROM dropped_tokens) GROUP BY id), \
exits AS (SELECT source, (SELECT max(stage_index) FROM decisions) AS last, 0 AS dropped, sum(tokens) AS tokens FROM shard_docs GROUP BY source UNION ALL SELECT source, last, 1, sum(tokens) FROM dropped WHERE source IS NOT NULL GROUP BY source, last)";

/// Every column a funnel section can have, in order (see [`funnel_section`]).
static FUNNEL_COLUMNS: [&str; 10] = [
    "source",
    "stage_index",
    "stage",
    "documents_in",
    "kept",
    "dropped",
    "bytes_in",
    "bytes_out",
    "tokens_in",
    "tokens_out",
];

/// The funnel, all sources together (`stages`) or per source (`funnel`), with token columns
/// when every document's tokens are known.
fn funnel_section(tokens: bool, per_source: bool) -> SectionSpec {
    let (id, title, group, order) = if per_source {
        (
            "funnel",
            "Funnel per source",
            "source, stage_index, stage",
            "source, stage_index",
        )
    } else {
        (
            "stages",
            "Funnel: documents after each stage",
            "stage_index, stage",
            "stage_index",
        )
    };
    // `source` only per source, the token columns only with tokens.
    let first = usize::from(!per_source);
    let columns = &FUNNEL_COLUMNS[first..if tokens { 10 } else { 8 }];
    let counts = format!(
        "SELECT {group}, count(*) AS documents_in, {KEPT} AS kept, {DROPPED} AS dropped, sum(bytes_before) AS bytes_in, sum(bytes_after) AS bytes_out FROM decisions GROUP BY {group}"
    );
    let (sql, needs): (_, &'static [&'static str]) = if tokens {
        // Each stage's counts `c`, with the tokens of the documents whose exit is at or after it.
        let counted: Vec<String> = FUNNEL_COLUMNS[first..8]
            .iter()
            .map(|c| format!("c.{c}"))
            .collect();
        let counted = counted.join(", ");
        let same_source = if per_source {
            " AND e.source = c.source"
        } else {
            ""
        };
        (
            format!(
                "{EXITS}, c AS ({counts}) SELECT {counted}, sum(e.tokens) AS tokens_in, sum(CASE WHEN e.last > c.stage_index OR e.dropped = 0 THEN e.tokens ELSE 0 END) AS tokens_out FROM c LEFT JOIN exits e ON e.last >= c.stage_index{same_source} GROUP BY {counted} ORDER BY {order}"
            ),
            &["decisions", "shard_docs", "dropped_tokens"],
        )
    } else {
        (format!("{counts} ORDER BY {order}"), &["decisions"])
    };
    let description = if per_source {
        "Per source and stage: documents, bytes and tokens in, kept, dropped. Tokens count each document as it left the pipeline: its output text if kept, the text the dropping stage saw if dropped."
    } else {
        "All sources together: documents, bytes and tokens going into each stage, kept and dropped."
    };
    SectionSpec {
        id,
        title,
        description,
        needs,
        sql,
        columns,
        chart: if per_source {
            lines("source", "stage_index", "kept")
        } else {
            bars("stage", &["documents_in", "kept"])
        },
    }
}

/// The figures, in report order.
pub fn sections(p: &Params) -> Vec<SectionSpec> {
    let checkpoint = p.checkpoint.as_deref().map_or("''".into(), quote);
    let step = p.step.unwrap_or(u64::MAX);
    vec![
        SectionSpec {
            id: "ingest",
            title: "Documents read, per source",
            description: "Every document ingest produced (records it could not read are in quarantine).",
            needs: &["documents"],
            sql: "SELECT source, count(*) AS documents, sum(bytes) AS bytes FROM documents GROUP BY source ORDER BY source".into(),
            columns: &["source", "documents", "bytes"],
            chart: bars("source", &["documents"]),
        },
        funnel_section(p.tokens, false),
        funnel_section(p.tokens, true),
        SectionSpec {
            id: "tokens",
            title: "Tokens per source",
            description: "Documents and tokens in the token version, per source and split (end-of-document tokens included).",
            needs: &["shard_docs"],
            sql: "SELECT source || '/' || split AS stream, source, split, count(DISTINCT id) AS documents, sum(tokens) AS tokens FROM shard_docs GROUP BY source, split ORDER BY source, split".into(),
            columns: &["stream", "source", "split", "documents", "tokens"],
            chart: bars("stream", &["tokens"]),
        },
        SectionSpec {
            id: "rules",
            title: "Top rules by documents removed",
            description: "The rules that dropped the most documents, with the bytes they removed.",
            needs: &["decisions"],
            sql: "SELECT stage, rule, count(*) AS documents, sum(bytes_before) AS bytes FROM decisions WHERE decision = 'dropped' GROUP BY stage, rule ORDER BY documents DESC, stage, rule LIMIT 25".into(),
            columns: &["stage", "rule", "documents", "bytes"],
            chart: bars("rule", &["documents"]),
        },
        SectionSpec {
            id: "edits",
            title: "Edits to kept documents",
            description: "Documents a stage changed but kept (lines removed, PII redacted, passages cut), with bytes before and after.",
            needs: &["edits"],
            sql: "SELECT stage, rule, count(*) AS documents, sum(bytes_before) AS bytes_before, sum(bytes_after) AS bytes_after FROM edits GROUP BY stage, rule ORDER BY stage, rule".into(),
            columns: &["stage", "rule", "documents", "bytes_before", "bytes_after"],
            chart: bars("rule", &["documents"]),
        },
        SectionSpec {
            id: "clusters",
            title: "Duplicate clusters by size",
            description: "How many duplicate clusters each dedup stage found, by cluster size (members, survivor included).",
            needs: &["clusters"],
            sql: "SELECT stage || ' size ' || CAST(size AS VARCHAR) AS bucket, stage, size, count(DISTINCT \"cluster\") AS clusters, count(*) AS documents FROM clusters GROUP BY stage, size ORDER BY stage, size".into(),
            columns: &["bucket", "stage", "size", "clusters", "documents"],
            chart: bars("bucket", &["clusters"]),
        },
        SectionSpec {
            id: "contamination",
            title: "Contamination hits by benchmark",
            description: "Benchmark passages found in the corpus: hits, documents and distinct benchmark items.",
            needs: &["contamination"],
            sql: "SELECT benchmark, count(*) AS hits, count(DISTINCT id) AS documents, count(DISTINCT item) AS items FROM contamination GROUP BY benchmark ORDER BY benchmark".into(),
            columns: &["benchmark", "hits", "documents", "items"],
            chart: bars("benchmark", &["documents"]),
        },
        SectionSpec {
            id: "quarantine",
            title: "Quarantined records",
            description: "Records and files ingest could not read, by reason.",
            needs: &["quarantine"],
            sql: "SELECT source, reason, scope, count(*) AS records FROM quarantine GROUP BY source, reason, scope ORDER BY source, reason, scope".into(),
            columns: &["source", "reason", "scope", "records"],
            chart: Chart::None,
        },
        SectionSpec {
            id: "mixture",
            title: "Mixture: realised vs target weights",
            description: "Share of training tokens each source supplied up to the checkpoint, against its target weight, with repetition.",
            needs: &["training"],
            sql: format!("SELECT source, source_tokens, CAST(source_tokens AS DOUBLE) / CAST(sum(source_tokens) OVER () AS DOUBLE) AS realised_weight, target_weight, windows, windows_available, epochs, repeated_windows FROM training WHERE checkpoint = {checkpoint} ORDER BY source"),
            columns: &["source", "source_tokens", "realised_weight", "target_weight", "windows", "windows_available", "epochs", "repeated_windows"],
            chart: bars("source", &["realised_weight", "target_weight"]),
        },
        SectionSpec {
            id: "train_loss",
            title: "Training loss per source",
            description: "Mean training loss of each source's windows at every step up to the checkpoint (`all`: the step's mean).",
            needs: &["losses"],
            sql: format!("SELECT source, step, loss FROM losses WHERE split = 'train' AND step <= {step} ORDER BY source, step"),
            columns: &["source", "step", "loss"],
            chart: lines("source", "step", "loss"),
        },
        SectionSpec {
            id: "validation_loss",
            title: "Validation loss per source",
            description: "Loss on each source's held-out windows at every evaluation up to the checkpoint.",
            needs: &["losses"],
            sql: format!("SELECT source, step, loss FROM losses WHERE split = 'validation' AND step <= {step} ORDER BY source, step"),
            columns: &["source", "step", "loss"],
            chart: lines("source", "step", "loss"),
        },
        SectionSpec {
            id: "training",
            title: "Training configuration",
            description: "The checkpoint's version, manifest checksum, seed and config.",
            needs: &["training"],
            sql: format!("SELECT DISTINCT checkpoint, step, tokens, root, version, manifest_checksum, config_hash, seed, seq_len, windows_per_step, config FROM training WHERE checkpoint = {checkpoint}"),
            columns: &["checkpoint", "step", "tokens", "root", "version", "manifest_checksum", "config_hash", "seed", "seq_len", "windows_per_step", "config"],
            chart: Chart::None,
        },
        SectionSpec {
            id: "runs",
            title: "Curation runs: configs and inputs",
            description: "Every invocation of the run, failed ones included: when, how it ended and why, the config and its hash, the tool version, and the input files with their sizes and checksums (JSON).",
            needs: &["runs"],
            sql: "SELECT run_id, started, ended, status, error, config_hash, tool_version, units, units_resumed, version, config_path, config, inputs FROM runs ORDER BY started".into(),
            columns: &["run_id", "started", "ended", "status", "error", "config_hash", "tool_version", "units", "units_resumed", "version", "config_path", "config", "inputs"],
            chart: Chart::None,
        },
    ]
}

/// The invariants.
pub fn checks() -> Vec<CheckSpec> {
    vec![
        CheckSpec {
            id: "one_decision_per_stage",
            description: "Every document has at most one decision per stage",
            needs: &["decisions"],
            sql: "SELECT id, stage_index, count(*) AS decisions FROM decisions GROUP BY id, stage_index HAVING count(*) > 1".into(),
        },
        CheckSpec {
            id: "ingest_reaches_first_stage",
            description: "Per source, every ingested document reaches the first stage",
            needs: &["documents", "decisions"],
            sql: "SELECT d.source, d.documents, coalesce(s.documents, 0) AS first_stage_in FROM (SELECT source, count(*) AS documents FROM documents GROUP BY source) d LEFT JOIN (SELECT source, count(*) AS documents FROM decisions WHERE stage_index = 0 GROUP BY source) s ON d.source = s.source WHERE d.documents <> coalesce(s.documents, 0)".into(),
        },
        CheckSpec {
            id: "stage_chain",
            description: "Per source, documents in = kept + dropped at every stage, and what one stage keeps the next receives",
            needs: &["decisions"],
            sql: format!("WITH f AS (SELECT source, stage_index, count(*) AS documents_in, {KEPT} AS kept, {DROPPED} AS dropped FROM decisions GROUP BY source, stage_index) SELECT a.source, a.stage_index, a.documents_in, a.kept, a.dropped, coalesce(b.documents_in, 0) AS next_in FROM f a LEFT JOIN f b ON a.source = b.source AND b.stage_index = a.stage_index + 1 WHERE a.documents_in <> a.kept + a.dropped OR (a.stage_index < (SELECT max(stage_index) FROM decisions) AND a.kept <> coalesce(b.documents_in, 0)) ORDER BY a.source, a.stage_index"),
        },
        CheckSpec {
            id: "tokenized_were_kept",
            description: "Every document in the token version was kept by every stage",
            needs: &["shard_docs", "decisions"],
            sql: "SELECT id FROM (SELECT id, 1 AS tokenized, 0 AS dropped FROM shard_docs UNION ALL SELECT id, 0, 1 FROM decisions WHERE decision = 'dropped') GROUP BY id HAVING max(tokenized) = 1 AND max(dropped) = 1".into(),
        },
        CheckSpec {
            id: "kept_were_tokenized",
            description: "Every document the last stage kept is in the token version",
            needs: &["shard_docs", "decisions"],
            sql: "SELECT id, max(source) AS source FROM (SELECT id, source, 0 AS tokenized FROM decisions WHERE stage_index = (SELECT max(stage_index) FROM decisions) AND decision = 'kept' UNION ALL SELECT id, NULL, 1 FROM shard_docs) GROUP BY id HAVING max(tokenized) = 0".into(),
        },
    ]
}
