//! Lineage end to end, on the demo and on real text: a traced record names the rule and value
//! that dropped it, a kept record's token range decodes back to its text (read by numpy and
//! decoded by Python `tokenizers`), the report's totals equal the runs' accounting, its JSON
//! validates against `docs/report.schema.json`, and the OpenLineage events are well formed.

use std::path::Path;

use serde_json::Value;
use tests::{
    manifest, own_file, python, report_query_args, report_section, run, scratch, shared_data, texts,
};

use crate::tokenize::{latest, run_ok, write_config, write_inputs};

/// `refinery query --format json` over a run folder.
fn query_json(out: &Path, sql: &str) -> Vec<Value> {
    let stdout = run_ok(&[
        "query",
        "--format",
        "json",
        "--dir",
        out.to_str().unwrap(),
        sql,
    ]);
    serde_json::from_str(&stdout).unwrap()
}

fn trace(id: &str, from: &Path) -> Value {
    let stdout = run_ok(&[
        "lineage",
        "trace",
        id,
        "--from",
        from.to_str().unwrap(),
        "--format",
        "json",
    ]);
    serde_json::from_str(&stdout).unwrap()
}

fn check_py(args: &[&str]) -> Value {
    let out = python()
        .arg(own_file("../tests/py/check_lineage.py"))
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "check_lineage.py {args:?}: {stderr}");
    serde_json::from_str(stdout.trim()).unwrap()
}

/// A dropped record: its trace ends with the decision `rejects` recorded for it.
fn assert_dropped_trace(out: &Path, from: &Path, stage: &str) {
    let rejected = query_json(
        out,
        &format!(
            "SELECT id, rule, value, threshold FROM rejects WHERE stage = '{stage}' ORDER BY id LIMIT 1"
        ),
    );
    let r = &rejected[0];
    let t = trace(r["id"].as_str().unwrap(), from);
    assert_eq!(t["outcome"], "dropped");
    let decisions = t["decisions"].as_array().unwrap();
    let last = decisions.last().unwrap();
    assert_eq!(last["stage"], stage);
    assert_eq!(last["decision"], "dropped");
    assert_eq!(last["rule"], r["rule"], "the rule that dropped it");
    assert_eq!(
        last["value"].as_f64(),
        r["value"].as_f64(),
        "its measured value"
    );
    assert_eq!(last["threshold"].as_f64(), r["threshold"].as_f64());
    assert!(
        decisions[..decisions.len() - 1]
            .iter()
            .all(|d| d["decision"] == "kept"),
        "kept by every stage before"
    );
    assert!(t["tokens"].is_null() && t["shards"].as_array().unwrap().is_empty());
    assert!(
        t["queries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q.as_str().unwrap().starts_with("SELECT")),
        "every fact comes with its SQL"
    );
}

/// A kept record of the train split: its token range, read by numpy and decoded by Python, is
/// its output text. Which records are held out depends on their ids, so on where the input lives:
/// held-out records met on the way must say that no training step reads them.
fn assert_kept_trace(out: &Path, from: &Path, dataset: &str, version_dir: &Path) -> Value {
    let kept = query_json(
        out,
        &format!("SELECT id, text FROM \"{dataset}\" ORDER BY id LIMIT 20"),
    );
    let (t, text) = kept
        .iter()
        .find_map(|row| {
            let t = trace(row["id"].as_str().unwrap(), from);
            assert_eq!(t["outcome"], "kept");
            if t["tokens"]["split"] == "train" {
                return Some((t, row["text"].as_str().unwrap()));
            }
            assert_eq!(t["tokens"]["split"], "validation");
            assert!(t["training"].as_array().is_none_or(|u| u.is_empty()), "{t}");
            None
        })
        .expect("one of 20 kept records is in the train split");
    assert_eq!(t["tokens"]["decodes_to_text"], true);
    let file = from.parent().unwrap().join("trace.json");
    std::fs::write(&file, t.to_string()).unwrap();
    let decoded = check_py(&[
        "decode",
        version_dir.to_str().unwrap(),
        version_dir.join("tokenizer.json").to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(
        decoded["text"], text,
        "the token range decodes back to the text"
    );
    let range = &t["tokens"];
    assert_eq!(
        decoded["tokens"].as_u64(),
        Some(range["end"].as_u64().unwrap() - range["start"].as_u64().unwrap())
    );
    t
}

/// Writes the report of `from` and checks it: schema, totals against the run manifest and the
/// version manifest, checks, HTML and OpenLineage. Returns the JSON report.
fn assert_report(from: &Path, run_out: &Path, version_dir: &Path) -> Value {
    let dir = from.parent().unwrap();
    let (html, json, ol) = (dir.join("r.html"), dir.join("r.json"), dir.join("ol.jsonl"));
    run_ok(&[
        "lineage",
        "report",
        from.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--openlineage",
        ol.to_str().unwrap(),
    ]);
    let valid = check_py(&[
        "schema",
        json.to_str().unwrap(),
        own_file("../docs/report.schema.json").to_str().unwrap(),
    ]);
    assert_eq!(valid["valid"], true);
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let section = |id: &str| -> Vec<Value> {
        let s = report_section(&report, id);
        assert_eq!(s["available"], true, "{id}");
        s["rows"].as_array().unwrap().clone()
    };
    // Totals equal the run's own accounting, stage by stage.
    let m = manifest(run_out);
    let stages = section("stages");
    let accounting = m["accounting"]["stages"].as_array().unwrap();
    assert_eq!(stages.len(), accounting.len());
    for (row, acc) in stages.iter().zip(accounting) {
        assert_eq!(row["stage"], acc["name"]);
        assert_eq!(row["documents_in"], acc["input"]);
        assert_eq!(row["kept"], acc["kept"]);
        assert_eq!(row["dropped"], acc["dropped"]);
        assert_eq!(
            row["documents_in"].as_u64(),
            Some(row["kept"].as_u64().unwrap() + row["dropped"].as_u64().unwrap())
        );
    }
    let ingested: u64 = section("ingest")
        .iter()
        .map(|r| r["documents"].as_u64().unwrap())
        .sum();
    let read: u64 = m["accounting"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["documents"].as_u64().unwrap())
        .sum();
    assert_eq!(ingested, read);
    // Every figure reruns with `refinery query` from the tables the report names.
    let args = report_query_args(&report);
    for s in report["sections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["available"] == true)
    {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        a.push(s["sql"].as_str().unwrap());
        let rows: Value = serde_json::from_str(&run_ok(&a)).unwrap();
        assert_eq!(
            rows, s["rows"],
            "section {} reruns to the same rows",
            s["id"]
        );
    }
    // Tokens at every stage: all documents' tokens go in, the version's tokens come out.
    let last = stages.last().unwrap();
    let version_tokens: u64 = section("tokens")
        .iter()
        .map(|r| r["tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(last["tokens_out"].as_u64(), Some(version_tokens));
    for pair in stages.windows(2) {
        assert_eq!(pair[0]["tokens_out"], pair[1]["tokens_in"]);
    }
    assert!(
        stages[0]["tokens_in"].as_u64().unwrap() > version_tokens,
        "dropped documents had tokens"
    );
    // Tokens equal the version's manifest.
    let version: Value =
        serde_json::from_slice(&std::fs::read(version_dir.join("manifest.json")).unwrap()).unwrap();
    for row in section("tokens") {
        let totals =
            &version["sources"][row["source"].as_str().unwrap()][row["split"].as_str().unwrap()];
        assert_eq!(row["tokens"], totals["tokens"]);
        assert_eq!(row["documents"], totals["documents"]);
    }
    for check in report["checks"].as_array().unwrap() {
        assert!(check["holds"] == true, "check failed: {check}");
    }
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "manifest_accounting" && c["available"] == true)
    );
    // One self-contained HTML file.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"));
    assert!(page.matches("<svg").count() >= 4, "charts are inline SVG");
    for outside in ["<script", "<link", "src=", "@import", "url("] {
        assert!(!page.contains(outside), "no external resource ({outside})");
    }
    // OpenLineage: one COMPLETE event per job, datasets with schema facets.
    let events: Vec<Value> = std::fs::read_to_string(&ol)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.len() >= 2);
    for e in &events {
        assert_eq!(e["eventType"], "COMPLETE");
        let id = e["run"]["runId"].as_str().unwrap();
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "a UUID: {id}");
        assert_eq!(e["job"]["namespace"], "refinery");
        for o in e["outputs"].as_array().unwrap() {
            assert!(
                o["facets"]["schema"]["fields"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty())
            );
            assert!(
                o["facets"]["schema"]["_schemaURL"]
                    .as_str()
                    .unwrap()
                    .contains("SchemaDatasetFacet")
            );
        }
    }
    let curation = &events[0];
    assert!(
        curation["job"]["name"]
            .as_str()
            .unwrap()
            .starts_with("run:")
    );
    let rows: u64 = curation["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i["inputFacets"]["dataQualityMetrics"]["rowCount"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(rows, read, "input row counts add up to the documents read");
    report
}

#[test]
fn demo_lineage_traces_records_to_training_steps_and_reports() {
    let dir = scratch("lineage-demo");
    let demo = dir.path().join("demo");
    run_ok(&["demo", "--dir", demo.to_str().unwrap(), "--quiet"]);
    let (out, train) = (demo.join("out"), demo.join("train"));
    let version_dir = demo
        .join("tokens/versions")
        .join(latest(&demo.join("tokens")));

    assert_dropped_trace(&out, &train, "length");
    // A duplicate names its survivor.
    let dup = query_json(
        &out,
        "SELECT id, duplicate_of FROM rejects WHERE duplicate_of IS NOT NULL ORDER BY id LIMIT 1",
    );
    let t = trace(dup[0]["id"].as_str().unwrap(), &train);
    assert_eq!(t["survivor"]["id"], dup[0]["duplicate_of"]);

    // A kept record: its tokens, and the training steps that read them.
    let t = assert_kept_trace(&out, &train, "pii", &version_dir);
    let uses = t["training"].as_array().unwrap();
    assert_eq!(uses.len(), 2, "both checkpoints (steps 30 and 60)");
    assert_eq!(t["tokens"]["split"], "train", "a record of the train split");
    let source = t["tokens"]["source"].as_str().unwrap();
    let metrics = std::fs::read_to_string(train.join("metrics.jsonl")).unwrap();
    let step_sources: Vec<Value> = metrics
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["event"] == "train")
        .collect();
    for u in uses {
        assert_eq!(u["replay_verified"], true);
        let steps: Vec<u64> = u["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_u64().unwrap())
            .collect();
        assert!(steps.windows(2).all(|w| w[0] < w[1]));
        assert!(
            steps
                .iter()
                .all(|&s| s >= 1 && s <= u["step"].as_u64().unwrap())
        );
        assert!(u["windows"].as_u64().unwrap() >= steps.len() as u64);
        for s in &steps {
            // The trainer's own log: that step's batch held windows of the record's source.
            let logged = &step_sources[*s as usize - 1];
            assert_eq!(logged["step"].as_u64(), Some(*s));
            assert!(
                logged["source_loss"].get(source).is_some(),
                "step {s} read {source}"
            );
        }
    }
    assert!(
        !uses[1]["steps"].as_array().unwrap().is_empty(),
        "60 steps × 8 windows cover the demo's training tokens several times"
    );
    // The run's invocation, and the version it tokenized into.
    let runs = query_json(&out, "SELECT run_id, version, config_hash FROM runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0]["version"].as_str(),
        version_dir.file_name().unwrap().to_str()
    );
    assert_eq!(runs[0]["config_hash"], manifest(&out)["config_hash"]);

    // `file:line` finds the record the source file holds at that line.
    let t = trace("news.jsonl:3", &out);
    assert!(
        t["document"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("/input/news.jsonl")
    );
    assert_eq!(t["document"]["locator"], "3");
    let missing = run(&[
        "lineage",
        "trace",
        "nope.jsonl:1",
        "--from",
        out.to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    assert!(
        texts(&missing).1.contains("no document"),
        "{}",
        texts(&missing).1
    );

    let report = assert_report(&train, &out, &version_dir);
    assert_eq!(report["subject"]["kind"], "checkpoint");
    assert_eq!(report["subject"]["step"], 60);
    // Realised mixture weights: each source's share of the checkpoint's training tokens.
    let lineage: Value = serde_json::from_slice(
        &std::fs::read(train.join("checkpoints/step-000060/lineage.json")).unwrap(),
    )
    .unwrap();
    let mixture = report_section(&report, "mixture");
    let total = lineage["tokens"].as_f64().unwrap();
    for row in mixture["rows"].as_array().unwrap() {
        let source = &lineage["sources"][row["source"].as_str().unwrap()];
        assert_eq!(row["source_tokens"], source["tokens"]);
        let share = source["tokens"].as_f64().unwrap() / total;
        assert!((row["realised_weight"].as_f64().unwrap() - share).abs() < 1e-12);
    }
    let validation = report_section(&report, "validation_loss");
    // One row per source scored at each evaluation (steps 0, 20, 40, 60) of the metrics log.
    let evaluations: Vec<Value> = metrics
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["event"] == "eval")
        .collect();
    assert_eq!(evaluations.len(), 4);
    let scored: Vec<(u64, String, f64)> = evaluations
        .iter()
        .flat_map(|e| {
            e["sources"].as_object().unwrap().iter().map(|(s, v)| {
                (
                    e["step"].as_u64().unwrap(),
                    s.clone(),
                    v["loss"].as_f64().unwrap(),
                )
            })
        })
        .collect();
    let mut rows: Vec<(u64, String, f64)> = validation["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = r["source"].as_str().unwrap().to_string();
            (r["step"].as_u64().unwrap(), s, r["loss"].as_f64().unwrap())
        })
        .collect();
    rows.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mut scored = scored;
    scored.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert!(!scored.is_empty());
    assert_eq!(rows, scored, "validation losses of the metrics log");

    // The dropped documents' token counts are part of the version: checksummed, verified.
    let dropped = version_dir.join("dropped_tokens.parquet");
    let mut bytes = std::fs::read(&dropped).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&dropped, bytes).unwrap();
    let verify = run(&["versions", "verify", demo.join("tokens").to_str().unwrap()]);
    assert!(!verify.status.success());
    assert!(
        texts(&verify).1.contains("dropped_tokens.parquet"),
        "{}",
        texts(&verify).1
    );
}

#[test]
fn lineage_of_real_text_names_rules_and_decodes_tokens() {
    let sources = [("wiki", "wiki_en.jsonl.zst"), ("code", "code_go.jsonl.zst")];
    let dir = scratch("lineage-real");
    let d = dir.path();
    write_inputs(d, &sources, 400);
    // Two GSM8K questions planted in the wiki source, for the contamination figures.
    let gsm8k = shared_data().join("benchmarks/gsm8k.jsonl");
    let questions: Vec<Value> = std::fs::read_to_string(&gsm8k)
        .unwrap()
        .lines()
        .take(2)
        .map(|l| {
            let q = serde_json::from_str::<Value>(l).unwrap()["question"].clone();
            serde_json::json!({"text": format!("Homework help. {}", q.as_str().unwrap())})
        })
        .collect();
    let wiki = d.join("input/wiki.jsonl");
    let mut text = std::fs::read_to_string(&wiki).unwrap();
    for q in &questions {
        text.push_str(&format!("{q}\n"));
    }
    std::fs::write(&wiki, text).unwrap();
    let stages = format!(
        "[[stages]]\ntype = \"decontaminate\"\nmode = \"drop\"\n\n[[stages.benchmarks]]\nname = \"gsm8k\"\npath = \"{}\"\nfields = [\"question\"]\n\n\
         [[stages]]\ntype = \"gopher_quality\"\n\n[[stages]]\ntype = \"exact_dedup\"\n",
        gsm8k.display()
    );
    let config = write_config(
        d,
        &sources,
        &stages,
        "train_vocab_size = 1024\nvalidation_fraction = 0.05\nshard_tokens = 65536",
    );
    let stdout = run_ok(&["run", config.to_str().unwrap()]);
    let out = d.join("out");
    let tokens = d.join("tokens");
    let version_dir = tokens.join("versions").join(latest(&tokens));
    // The summary names the second encoding pass, over the dropped documents.
    let rejected = query_json(&out, "SELECT count(*) AS n FROM rejects")[0]["n"].clone();
    let counted = format!("counted the tokens of {rejected} dropped documents");
    assert!(stdout.contains(&counted), "{stdout}");

    assert_dropped_trace(&out, &out, "gopher_quality");
    assert_dropped_trace(&out, &out, "decontaminate");
    let dataset = manifest(&out)["datasets"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    assert_kept_trace(&out, &tokens, &dataset, &version_dir);
    // The same record by its source file and line.
    let first = query_json(
        &out,
        "SELECT id, uri, locator FROM documents ORDER BY id LIMIT 1",
    );
    let file = first[0]["uri"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let t = trace(
        &format!("{file}:{}", first[0]["locator"].as_str().unwrap()),
        &out,
    );
    assert_eq!(t["document"]["id"], first[0]["id"]);

    let report = assert_report(&tokens, &out, &version_dir);
    assert_eq!(report["subject"]["kind"], "version");
    let contamination = report_section(&report, "contamination");
    assert_eq!(contamination["available"], true);
    let rows = contamination["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["benchmark"], "gsm8k");
    assert_eq!(rows[0]["documents"], 2, "both planted questions");
    assert_eq!(rows[0]["items"], 2);
    let rules = report_section(&report, "rules");
    let dropped: u64 = rules["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["documents"].as_u64().unwrap())
        .sum();
    let rejects = query_json(&out, "SELECT count(*) AS n FROM rejects");
    assert_eq!(
        Some(dropped),
        rejects[0]["n"].as_u64(),
        "every removed document is under a rule"
    );
}
