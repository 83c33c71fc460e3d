//! The CLI's user paths: validate, stats, query and demo.

use std::path::Path;
use std::process::Stdio;

use tests::{read_parquet, refinery, run, scratch, strings, texts};

#[test]
fn validate_reports_every_problem_with_its_line_and_exits_2() {
    let dir = scratch("validate");
    let config = dir.path().join("bad.toml");
    let text = "[run]\nbatch_size = 0\n\n[[sources]]\nname = \"a\"\npaths = [\"missing/*.jsonl\"]\n\n[[stages]]\ntype = \"length\"\nmin_words = 10\nmax_words = 5\n\n[output]\npath = \"out\"\n";
    std::fs::write(&config, text).unwrap();
    let out = run(&["validate", config.to_str().unwrap()]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("line 2: run.batch_size must be at least 1"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 8: stage `length`: min_words (10) is greater than max_words (5)"),
        "{stderr}"
    );

    std::fs::write(
        &config,
        text.replace("batch_size = 0", "batch_size = 8")
            .replace("max_words = 5", "max_words = 50"),
    )
    .unwrap();
    let out = run(&["validate", config.to_str().unwrap()]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("line 6:")
            && stderr.contains("no input found at")
            && stderr.contains("missing/*.jsonl"),
        "{stderr}"
    );
    let out = run(&["validate", "--no-io", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", texts(&out).1);

    // A dedup stage `against` a folder (relative to the config) without its index.
    std::fs::write(dir.path().join("in.jsonl"), "{\"text\":\"x\"}\n").unwrap();
    std::fs::write(
        &config,
        text.replace("batch_size = 0", "batch_size = 8")
            .replace("missing/*.jsonl", "in.jsonl")
            .replace(
                "type = \"length\"\nmin_words = 10\nmax_words = 5",
                "type = \"minhash_dedup\"\nagainst = \"old-run\"",
            ),
    )
    .unwrap();
    let out = run(&["validate", config.to_str().unwrap()]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let index = dir.path().join("old-run/dedup_index/minhash_dedup.parquet");
    assert!(
        stderr.contains("line 8: stage `minhash_dedup`: `against` has no index")
            && stderr.contains(index.to_str().unwrap()),
        "{stderr}"
    );

    // An output path that is a file: `validate` names its line, `run` stops before writing.
    std::fs::write(dir.path().join("out"), "not a folder").unwrap();
    let out = run(&["validate", config.to_str().unwrap()]);
    let (_, stderr) = texts(&out);
    assert!(
        stderr.contains("line 12: output.path:") && stderr.contains("exists and is not a folder"),
        "{stderr}"
    );
    let out = run(&["run", config.to_str().unwrap()]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("exists and is not a folder") && !stderr.contains("WARN"),
        "{stderr}"
    );
    std::fs::remove_file(dir.path().join("out")).unwrap();

    // A token root that is a file, likewise: refused before any stage runs.
    std::fs::write(dir.path().join("tokens"), "not a folder").unwrap();
    let good = std::fs::read_to_string(&config).unwrap();
    let tokenize = "\n[tokenize]\nroot = \"tokens\"\ntrain_vocab_size = 300\n";
    std::fs::write(&config, format!("{good}{tokenize}")).unwrap();
    let out = run(&["run", config.to_str().unwrap()]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tokenize.root:") && stderr.contains("exists and is not a folder"),
        "{stderr}"
    );
    assert!(!dir.path().join("out").exists(), "nothing ran");
    std::fs::write(&config, good).unwrap();

    // Thread counts no machine has are refused before anything starts, in the config and on
    // the command line.
    let out = run(&["run", "--threads", "4294967296", config.to_str().unwrap()]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("at most 1024"), "{stderr}");
    std::fs::write(
        &config,
        text.replace("batch_size = 0", "batch_size = 8\nthreads = 100000")
            .replace("max_words = 5", "max_words = 50"),
    )
    .unwrap();
    let out = run(&["run", config.to_str().unwrap()]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("line 3: run.threads (100000) must be at most 1024"),
        "{stderr}"
    );
    assert!(!dir.path().join("out").exists(), "nothing written");

    std::fs::write(&config, "[[sources]]\nname = \"a\"\npaths = [\"x.jsonl\"]\ntext_feild = \"body\"\n[output]\npath = \"o\"\n").unwrap();
    let out = run(&["validate", config.to_str().unwrap()]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("line 4:") && stderr.contains("text_feild"),
        "{stderr}"
    );
}

#[test]
fn demo_runs_and_its_outputs_answer_queries() {
    let dir = scratch("demo");
    let demo_dir = dir.path().join("demo");
    let out = run(&["demo", "--quiet", "--dir", demo_dir.to_str().unwrap()]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("Per stage") && stdout.contains("length.min_words"),
        "{stdout}"
    );
    let outdir = demo_dir.join("out");

    // The junk posts are dropped by the length rule, the unreadable ones quarantined.
    let rejects = read_parquet(&outdir.join("rejects"));
    let locators: Vec<String> = strings(&rejects, "meta");
    assert!(
        locators.iter().any(|m| m.contains("\"id\":\"forum-2\"")),
        "'lol' must be rejected"
    );
    // The planted duplicates: every exact copy and most near copies (one sentence of an
    // article rewritten) are dropped, and nothing else.
    let rule_of = |rule: &str| -> Vec<String> {
        let metas = strings(&rejects, "meta");
        let rules = strings(&rejects, "rule");
        let mut ids: Vec<String> = metas
            .iter()
            .zip(&rules)
            .filter(|(_, r)| r.as_str() == rule)
            .map(|(m, _)| serde_json::from_str::<serde_json::Value>(m).unwrap()["id"].to_string())
            .collect();
        ids.sort();
        ids
    };
    let exact = rule_of("exact_duplicate");
    assert_eq!(exact.len(), 10);
    assert!(
        exact.iter().all(|id| id.contains("news-copy-")),
        "{exact:?}"
    );
    let near = rule_of("near_duplicate");
    assert!(near.len() >= 5, "{near:?}");
    assert!(near.iter().all(|id| id.contains("news-near-")), "{near:?}");

    let q = read_parquet(&outdir.join("quarantine"));
    let mut reasons = strings(&q, "reason");
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "ingest.malformed_json",
            "ingest.missing_text_field",
            "ingest.text_not_string"
        ]
    );
    // Normalize fixed the notes' CRLF, control characters and blank-line runs.
    let notes = read_parquet(&outdir.join("normalize"));
    let texts_: Vec<String> = strings(&notes, "text")
        .into_iter()
        .filter(|t| t.starts_with("Note "))
        .collect();
    assert_eq!(texts_.len(), 12);
    assert!(
        texts_
            .iter()
            .all(|t| !t.contains('\r') && !t.contains('\u{7}') && !t.contains("\n\n\n"))
    );

    // The forum posts' e-mail addresses, phone numbers and IP addresses are redacted, and the
    // edits say so.
    let final_texts = strings(&read_parquet(&outdir.join("pii")), "text");
    assert!(final_texts.iter().all(|t| !t.contains("@example.com")));
    let redacted = final_texts
        .iter()
        .filter(|t| t.contains("<EMAIL> or call <PHONE>.") || t.contains("at <IPV4> if"))
        .count();
    let edits = read_parquet(&outdir.join("edits"));
    let edit_rules = strings(&edits, "rule");
    assert!(redacted > 0, "no redaction in the final texts");
    assert_eq!(
        edit_rules
            .iter()
            .filter(|r| r.as_str() == "pii.redacted")
            .count(),
        redacted
    );
    // Every kept document carries its detected language.
    assert!(
        strings(&read_parquet(&outdir.join("pii")), "language")
            .iter()
            .all(|l| l == "eng")
    );

    // The kept documents are tokenized with the tokenizer the demo trained: every one is in a
    // train or validation stream, and the shards hold exactly the manifest's tokens.
    assert!(outdir.join("tokenizer.json").is_file());
    let tokens = demo_dir.join("tokens");
    let id = std::fs::read_to_string(tokens.join("latest")).unwrap();
    let version = tokens.join("versions").join(id.trim());
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(version.join("manifest.json")).unwrap()).unwrap();
    let docs: u64 = m["sources"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|splits| splits.as_object().unwrap().values())
        .map(|t| t["documents"].as_u64().unwrap())
        .sum();
    assert_eq!(docs as usize, final_texts.len());
    for shard in m["shards"].as_array().unwrap() {
        let bytes = std::fs::read(version.join(shard["path"].as_str().unwrap())).unwrap();
        let width = m["token_bytes"].as_u64().unwrap();
        assert_eq!(
            bytes.len() as u64,
            1024 + width * shard["tokens"].as_u64().unwrap()
        );
    }
    assert!(stdout.contains("Tokenized") && stdout.contains("refinery versions show"));
    assert_eq!(m["tokenizer"]["file"], "tokenizer.json");
    assert!(version.join("tokenizer.json").is_file());

    // The demo trained a small model on those shards: the validation loss of every source with
    // held-out windows fell by more than 2 nats in 60 steps, and the checkpoint names the version.
    assert!(
        stdout.contains("Checkpoint:") && stdout.contains("Metrics:"),
        "{stdout}"
    );
    let train = demo_dir.join("train");
    let evals: Vec<serde_json::Value> = std::fs::read_to_string(train.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"] == "eval")
        .collect();
    let (first, last) = (&evals[0], &evals[evals.len() - 1]);
    assert_eq!(
        (first["step"].as_u64(), last["step"].as_u64()),
        (Some(0), Some(60))
    );
    let last_sources = last["sources"].as_object().unwrap();
    assert!(!last_sources.is_empty());
    for (source, e) in last_sources {
        let before = first["sources"][source]["loss"].as_f64().unwrap();
        assert!(
            e["loss"].as_f64().unwrap() < before - 2.0,
            "{source}: {first} -> {last}"
        );
    }
    let checkpoint = train.join("checkpoints/step-000060");
    let lineage: serde_json::Value =
        serde_json::from_slice(&std::fs::read(checkpoint.join("lineage.json")).unwrap()).unwrap();
    assert_eq!(lineage["version"].as_str(), Some(id.trim()));
    assert_eq!(lineage["tokens"], 60 * 8 * 64);

    // `eval` on the same windows reproduces the last logged validation exactly.
    let demo_stdout = stdout;
    let train_arg = train.to_str().unwrap();
    let e = run(&[
        "eval",
        train_arg,
        "--windows",
        "4",
        "--format",
        "json",
        "--device",
        "cpu",
    ]);
    let (stdout, stderr) = texts(&e);
    assert!(e.status.success(), "{stderr}");
    let e: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(e["step"], 60);
    assert_eq!(e["sources"], last["sources"]);
    // The demo holds out at least two documents of every source (`validation_min_docs`), so
    // every source has a validation loss and none is named as unvalidated.
    for (source, splits) in m["sources"].as_object().unwrap() {
        let held_out = splits["validation"]["documents"].as_u64().unwrap_or(0);
        assert!(held_out >= 2, "{source}: {held_out} held-out documents");
        assert!(last_sources.contains_key(source), "{source}: {e}");
    }
    assert_eq!(e["unvalidated"], serde_json::json!({}), "{e}");
    assert!(
        !demo_stdout.contains("No validation loss for"),
        "{demo_stdout}"
    );

    // Greedy generation is deterministic and continues the prompt.
    let generate = || {
        let g = run(&[
            "generate",
            train_arg,
            "--prompt",
            "The council",
            "--temperature",
            "0",
        ]);
        assert!(g.status.success(), "{}", texts(&g).1);
        texts(&g).0
    };
    let text = generate();
    assert!(text.starts_with("The council") && text.trim().len() > "The council".len());
    assert_eq!(text, generate());
    for temperature in ["nan", "inf", "-0.5"] {
        let g = run(&[
            "generate",
            train_arg,
            &format!("--temperature={temperature}"),
        ]);
        let (_, stderr) = texts(&g);
        assert_eq!(g.status.code(), Some(2), "{temperature}: {stderr}");
        assert!(stderr.contains("a finite number of at least 0"), "{stderr}");
    }
    // Outputs written only locally refuse URLs instead of making a folder named `s3:`.
    let here = outdir.parent().unwrap();
    let out_arg = outdir.to_str().unwrap();
    let report: &[&str] = &["lineage", "report", out_arg, "--html", "s3://bucket/r.html"];
    let tokenizer: &[&str] = &[
        "tokenizer",
        "train",
        "--vocab-size=300",
        out_arg,
        "--out",
        "s3://bucket/t.json",
    ];
    for args in [report, tokenizer] {
        let out = refinery(args).current_dir(here).output().unwrap();
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("writes a local file, not `s3://bucket/"),
            "{stderr}"
        );
    }
    assert!(!here.join("s3:").exists());
    let no_eod = run(&["tokenizer", "train", "--vocab-size=300", out_arg, "--eod="]);
    let (_, stderr) = texts(&no_eod);
    assert_eq!(no_eod.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--eod must name a token"), "{stderr}");
    // A file that is not Parquet is named as read, not written.
    let garbage = here.join("garbage.parquet");
    std::fs::write(&garbage, b"not parquet at all").unwrap();
    let t = run(&[
        "tokenizer",
        "train",
        "--vocab-size",
        "300",
        garbage.to_str().unwrap(),
    ]);
    let (_, stderr) = texts(&t);
    assert_eq!(t.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("reading {}", garbage.display())),
        "{stderr}"
    );
    // A query over a folder holding it names it (DataFusion's own error does not).
    let folder = here.join("some-parts");
    std::fs::create_dir_all(folder.join("deeper")).unwrap();
    let good = std::fs::read_dir(outdir.join("documents"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    std::fs::copy(good.path(), folder.join("a.parquet")).unwrap();
    std::fs::copy(&garbage, folder.join("deeper/b.parquet")).unwrap();
    let table = format!("t={}", folder.display());
    let q = run(&["query", "SELECT count(*) FROM t", "--table", &table]);
    let (_, stderr) = texts(&q);
    assert_eq!(q.status.code(), Some(1), "{stderr}");
    let named = format!(
        "{} is not readable Parquet",
        folder.join("deeper/b.parquet").display()
    );
    assert!(stderr.contains(&named), "{stderr}");
    // Parts of two different tables in one folder are read, with a warning naming both.
    let mixed = here.join("mixed-parts");
    std::fs::create_dir_all(&mixed).unwrap();
    std::fs::copy(good.path(), mixed.join("a.parquet")).unwrap();
    let rejects = std::fs::read_dir(outdir.join("rejects"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    std::fs::copy(rejects.path(), mixed.join("b.parquet")).unwrap();
    let table = format!("t={}", mixed.display());
    let q = run(&["query", "SELECT count(*) FROM t", "--table", &table]);
    let (_, stderr) = texts(&q);
    assert!(q.status.success(), "{stderr}");
    for part in ["a.parquet", "b.parquet"] {
        let has = format!("{} has [", mixed.join(part).display());
        assert!(stderr.contains(&has), "{stderr}");
    }
    assert!(stderr.contains("different columns"), "{stderr}");

    // A damaged weights file is named; a path that is a file is no training folder.
    let damaged = outdir.parent().unwrap().join("damaged-checkpoint");
    let latest = std::fs::read_to_string(Path::new(train_arg).join("checkpoints/latest")).unwrap();
    let source = Path::new(train_arg).join("checkpoints").join(latest.trim());
    std::fs::create_dir_all(&damaged).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), damaged.join(entry.file_name())).unwrap();
    }
    let weights = damaged.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let g = run(&["generate", damaged.to_str().unwrap(), "--prompt", "The"]);
    let (_, stderr) = texts(&g);
    assert_eq!(g.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(weights.to_str().unwrap()), "{stderr}");
    let e = run(&["eval", weights.to_str().unwrap()]);
    let (_, stderr) = texts(&e);
    assert!(
        stderr.contains("no such folder (give a checkpoint folder or a training output folder)"),
        "{stderr}"
    );
    // An empty prompt starts a document; where the model ends it at once, stderr says so.
    for seed in 0..8 {
        let g = run(&[
            "generate",
            train_arg,
            "--prompt",
            "",
            "--seed",
            &seed.to_string(),
        ]);
        let (stdout, stderr) = texts(&g);
        assert!(g.status.success(), "{stderr}");
        let warned = stderr.contains("the model ended the document at once");
        assert_eq!(
            stdout.trim().is_empty(),
            warned,
            "seed {seed}: {stdout:?} {stderr}"
        );
    }

    let dir_arg = outdir.to_str().unwrap();
    let q = run(&[
        "query",
        "--dir",
        dir_arg,
        "--format",
        "json",
        "SELECT source, count(*) AS n FROM quarantine WHERE scope = 'record' GROUP BY source",
    ]);
    let (stdout, stderr) = texts(&q);
    assert!(q.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), r#"[{"source":"forum","n":3}]"#);
    let q = run(&[
        "query",
        "--table",
        &format!("kept={dir_arg}/length"),
        "--format",
        "csv",
        "SELECT count(*) AS n FROM kept WHERE source = 'wiki'",
    ]);
    assert_eq!(texts(&q).0.trim(), "n\n40");
    // The stages' rules as SQL functions agree with what the stages wrote: `language` and `pii`
    // ran after `minhash_dedup` (whose dataset is the text they saw), `normalize` first.
    let q = run(&[
        "query",
        "--dir",
        dir_arg,
        "--format",
        "csv",
        "SELECT count(*) FILTER (WHERE redact_pii(m.text) <> p.text) AS pii, \
         count(*) FILTER (WHERE language(m.text) <> p.language) AS language, \
         count(*) FILTER (WHERE normalize(m.text) <> m.text) AS normalize, \
         count(*) FILTER (WHERE redact_pii(m.text) <> m.text) AS redacted \
         FROM minhash_dedup m JOIN pii p ON m.id = p.id",
    ]);
    let (stdout, stderr) = texts(&q);
    assert!(q.status.success(), "{stderr}");
    let counts: Vec<&str> = stdout.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(&counts[..3], ["0", "0", "0"], "{stdout}");
    assert_ne!(counts[3], "0", "the demo plants PII: {stdout}");
    // A table that is not there: the error lists those that are.
    let q = run(&["query", "--dir", dir_arg, "SELECT * FROM reject"]);
    let (_, stderr) = texts(&q);
    assert_eq!(q.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("'datafusion.public.reject' not found; tables: ")
            && stderr.contains(" rejects, "),
        "{stderr}"
    );

    let stats = run(&["stats", "--format", "json", dir_arg]);
    let (stdout, stderr) = texts(&stats);
    assert!(stats.status.success(), "{stderr}");
    let s: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let stages = s["stages"].as_array().unwrap();
    assert_eq!(
        stages[0]["input"]["docs"], stages[0]["kept"]["docs"],
        "normalize drops nothing"
    );
    assert_eq!(
        stages[1]["input"]["docs"].as_i64().unwrap(),
        stages[1]["kept"]["docs"].as_i64().unwrap()
            + stages[1]["dropped"]["docs"].as_i64().unwrap()
    );
    assert_eq!(s["sources"]["wiki"]["kept"]["docs"], 40);
    assert!(
        s["queries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q.as_str().unwrap().starts_with("SELECT"))
    );
}

#[test]
fn stats_and_query_fail_clearly_on_a_folder_that_is_not_a_run() {
    let dir = scratch("not-a-run");
    let out = run(&["stats", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        texts(&out).1.contains("_manifest.json"),
        "{}",
        texts(&out).1
    );
    // Mistakes in the SQL are usage errors (exit 2), each reported once.
    let out = run(&["query", "SELECT * FROM nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        texts(&out)
            .1
            .contains("nope' not found; no tables are registered"),
        "{}",
        texts(&out).1
    );
    let out = run(&["query", "SELEC 1"]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.matches("found: SELEC").count(), 1, "{stderr}");
    // A budget too small to run anything is refused; a query that outgrows its budget and cannot
    // spill (a hash join of a million distinct rows) says which setting to raise.
    let out = run(&["query", "--memory-budget", "8MiB", "SELECT 1"]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("at least 32MiB"), "{stderr}");
    let join = "WITH a AS (SELECT value AS k, repeat('x', 40) AS pad FROM generate_series(1, 1000000)) \
                SELECT count(*) FROM a JOIN a b ON a.k = b.k AND a.pad = b.pad";
    let out = run(&["query", "--memory-budget", "32MiB", join]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("raise --memory-budget"), "{stderr}");
    let out = run(&["query", "--format", "csv", join]);
    assert_eq!(texts(&out).0.trim(), "count(*)\n1000000");
}

#[test]
fn output_into_a_pipe_closed_early_ends_quietly_like_a_unix_tool() {
    // A million rows of CSV overflow any pipe buffer, so the write hits the closed pipe
    // whenever the reader goes.
    let mut child = refinery(&[
        "query",
        "SELECT value FROM generate_series(1, 1000000)",
        "--format",
        "csv",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn json_logs_are_one_object_a_line_and_name_the_bad_record() {
    let dir = scratch("json-logs");
    std::fs::write(dir.path().join("a.jsonl"), "{\"text\":\"fine\"}\n{broken\n").unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[[sources]]\nname = \"s\"\npaths = [\"a.jsonl\"]\n[output]\npath = \"out\"\n",
    )
    .unwrap();
    let out = run(&["run", "--log-format", "json", config.to_str().unwrap()]);
    let (_, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let warning = lines
        .iter()
        .find(|l| l["level"] == "WARN")
        .expect("a warning for the bad line");
    assert_eq!(warning["fields"]["reason"], "ingest.malformed_json");
    assert!(
        warning["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("a.jsonl:2"),
        "{warning}"
    );
}
