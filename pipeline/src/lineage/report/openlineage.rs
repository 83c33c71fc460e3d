//! OpenLineage run events (spec 2-0-2): one `COMPLETE` event per job that made the report's
//! subject (the curation run, the tokenize step into the version, and the training up to the
//! checkpoint), one JSON object a line, so the lineage loads into existing lineage services
//! (Marquez, DataHub, ...).
//!
//! Datasets carry a `schema` facet; inputs of the curation run carry `dataQualityMetrics`
//! (rows and bytes read from each file); outputs carry `outputStatistics` and
//! `dataQualityAssertions` (the report's checks).

use std::path::Path;

use serde_json::{Value, json};
use tokio::runtime::Handle;

use super::{Report, Section};
use crate::lineage::LineageError;
use crate::lineage::catalog::Lineage;
use crate::lineage::trace::rows;
use crate::output::manifest::Manifest as RunManifest;

const PRODUCER: &str = concat!(
    "https://github.com/refinery-data/refinery/tree/v",
    env!("CARGO_PKG_VERSION")
);
const EVENT_SCHEMA: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const SPEC: &str = "https://openlineage.io/spec/facets";
const CUSTOM_SCHEMA: &str =
    "https://github.com/refinery-data/refinery/blob/main/README.md#openlineage-events";

/// The job namespace of every event.
pub const NAMESPACE: &str = "refinery";

/// A standard facet, with the OpenLineage schema of `name` at `version`.
fn facet(name: &str, version: &str, mut body: Value) -> Value {
    body["_producer"] = json!(PRODUCER);
    body["_schemaURL"] = json!(format!("{SPEC}/{version}/{name}.json#/$defs/{name}"));
    body
}

/// A Refinery facet (`refinery_*`), documented in the README's lineage section.
fn custom(mut body: Value) -> Value {
    body["_producer"] = json!(PRODUCER);
    body["_schemaURL"] = json!(CUSTOM_SCHEMA);
    body
}

/// A UUID-shaped run id derived from `key` (stable: the same job gives the same id).
fn run_id(key: &str) -> String {
    let h = xxhash_rust::xxh3::xxh3_128(key.as_bytes());
    let mut b = h.to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x80; // version 8: custom
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Namespace and name of a dataset at `uri` (`file:///a/b` → `file`, `/a/b`).
fn dataset_name(uri: &str) -> (String, String) {
    if let Some(rest) = uri.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        return (format!("s3://{bucket}"), key.to_string());
    }
    ("file".into(), uri.trim_start_matches("file://").to_string())
}

fn schema_facet(fields: &[(&str, &str)]) -> Value {
    let fields: Vec<Value> = fields
        .iter()
        .map(|(n, t)| json!({"name": n, "type": t}))
        .collect();
    facet("SchemaDatasetFacet", "1-1-1", json!({ "fields": fields }))
}

fn arrow_fields(schema: &arrow::datatypes::Schema) -> Vec<(String, String)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().to_string()))
        .collect()
}

fn event(
    job: &str,
    key: &str,
    time: &str,
    inputs: Vec<Value>,
    outputs: Vec<Value>,
    run_facets: Value,
) -> Value {
    json!({
        "eventType": "COMPLETE",
        "eventTime": time,
        "producer": PRODUCER,
        "schemaURL": EVENT_SCHEMA,
        "run": { "runId": run_id(key), "facets": run_facets },
        "job": { "namespace": NAMESPACE, "name": job, "facets": {} },
        "inputs": inputs,
        "outputs": outputs,
    })
}

fn section<'a>(report: &'a Report, id: &str) -> Option<&'a Section> {
    report.sections.iter().find(|s| s.id == id && s.available)
}

fn assertions(report: &Report) -> Value {
    let list: Vec<Value> = report
        .checks
        .iter()
        .filter(|c| c.available)
        .map(|c| json!({"assertion": c.id, "success": c.holds}))
        .collect();
    facet(
        "DataQualityAssertionsDatasetFacet",
        "1-0-1",
        json!({ "assertions": list }),
    )
}

/// Writes the events of `lineage` (with `report`'s figures) to `path`, one a line.
pub fn write(
    lineage: &Lineage,
    report: &Report,
    path: &Path,
    memory_budget: usize,
    handle: &Handle,
) -> Result<(), LineageError> {
    let mut events = Vec::new();
    let time = &report.generated;
    let docs = arrow_fields(&crate::schema::documents());
    let doc_fields: Vec<(&str, &str)> =
        docs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut run_output = None;
    if let Some(run) = &lineage.run {
        let manifest = RunManifest::load(run).map_err(LineageError::NotFound)?;
        let ctx = handle.block_on(lineage.context(memory_budget))?;
        let per_file = handle.block_on(rows(
            &ctx,
            "SELECT uri, count(*) AS documents FROM documents GROUP BY uri",
        ))?;
        let inputs: Vec<Value> = manifest
            .inputs
            .iter()
            .map(|i| {
                let (ns, name) = dataset_name(&i.uri);
                let rows = per_file
                    .iter()
                    .find(|r| r["uri"] == i.uri.as_str())
                    .and_then(|r| r["documents"].as_u64())
                    .unwrap_or(0);
                json!({
                    "namespace": ns, "name": name,
                    "facets": { "refinery_checksum": custom(json!({"xxh3": i.xxh3, "bytes": i.bytes})) },
                    "inputFacets": { "dataQualityMetrics": facet("DataQualityMetricsInputDatasetFacet", "1-0-2", json!({"rowCount": rows, "bytes": i.bytes, "columnMetrics": {}})) },
                })
            })
            .collect();
        let last = manifest.datasets.last().cloned().unwrap_or_default();
        let kept = manifest.accounting.stages.last().map_or(0, |s| s.kept);
        let (ns, name) = dataset_name(&format!("file://{}", run.join(&last).display()));
        let output = json!({
            "namespace": ns, "name": name,
            "facets": { "schema": schema_facet(&doc_fields), "dataQualityAssertions": assertions(report) },
            "outputFacets": { "outputStatistics": facet("OutputStatisticsOutputDatasetFacet", "1-0-2", json!({"rowCount": kept})) },
        });
        run_output = Some(json!({"namespace": ns, "name": name}));
        let run_facets = json!({
            "refinery_run": custom(json!({"config_hash": manifest.config_hash, "tool_version": manifest.tool_version, "stages": manifest.stages})),
        });
        events.push(event(
            &format!("run:{}", run.display()),
            &format!("run:{}:{}", run.display(), manifest.config_hash),
            time,
            inputs,
            vec![output],
            run_facets,
        ));
    }
    let mut version_dataset = None;
    if let Some(v) = &lineage.version {
        let (ns, name) = dataset_name(&format!(
            "{}/versions/{}",
            v.root.uri().trim_end_matches('/'),
            v.id
        ));
        let tokens: u64 = section(report, "tokens").map_or(0, |s| {
            s.rows.iter().filter_map(|r| r["tokens"].as_u64()).sum()
        });
        let documents: u64 = section(report, "tokens").map_or(0, |s| {
            s.rows.iter().filter_map(|r| r["documents"].as_u64()).sum()
        });
        let token_type = if v.manifest.token_bytes == 2 {
            "uint16"
        } else {
            "uint32"
        };
        let output = json!({
            "namespace": ns, "name": name,
            "facets": {
                "schema": schema_facet(&[("tokens", token_type)]),
                "version": facet("DatasetVersionDatasetFacet", "1-0-1", json!({"datasetVersion": v.id})),
                "dataQualityAssertions": assertions(report),
            },
            "outputFacets": { "outputStatistics": facet("OutputStatisticsOutputDatasetFacet", "1-0-2", json!({"rowCount": documents, "size": tokens * v.manifest.token_bytes as u64})) },
        });
        let inputs: Vec<Value> = run_output.clone().into_iter().collect();
        events.push(event(
            &format!("tokenize:{}", v.root.uri()),
            &format!("tokenize:{}", v.id),
            time,
            inputs,
            vec![output],
            json!({}),
        ));
        version_dataset = Some(json!({"namespace": ns, "name": name}));
    }
    if let Some(c) = &lineage.checkpoint {
        let path = std::path::absolute(&c.path).unwrap_or(c.path.clone());
        let (ns, name) = dataset_name(&format!("file://{}", path.display()));
        let mut input =
            version_dataset.unwrap_or(json!({"namespace": "file", "name": c.lineage.root}));
        input["inputFacets"] = json!({
            "dataQualityMetrics": facet("DataQualityMetricsInputDatasetFacet", "1-0-2", json!({"rowCount": c.state.tokens, "columnMetrics": {}})),
        });
        let output = json!({
            "namespace": ns, "name": name,
            "facets": { "schema": schema_facet(&[("model.safetensors", "safetensors"), ("optimizer.safetensors", "safetensors")]) },
        });
        let run_facets = json!({
            "refinery_training": custom(json!({
                "step": c.state.step, "tokens": c.state.tokens, "seed": c.lineage.seed,
                "config_hash": c.lineage.config_hash, "manifest_checksum": c.lineage.manifest_checksum,
                "sources": c.lineage.sources,
            })),
        });
        let job = path
            .parent()
            .and_then(Path::parent)
            .unwrap_or(&path)
            .display()
            .to_string();
        events.push(event(
            &format!("train:{job}"),
            &format!("train:{job}:{}", c.state.step),
            time,
            vec![input],
            vec![output],
            run_facets,
        ));
    }
    let mut text = String::new();
    for e in &events {
        text.push_str(&serde_json::to_string(e).unwrap_or_default());
        text.push('\n');
    }
    super::write_file(path, text.as_bytes())
}
