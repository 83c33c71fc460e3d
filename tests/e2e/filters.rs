//! Filter stages on real data: benchmark items from `../shared/data/benchmarks` planted in real
//! documents are caught however they are planted, clean documents are not flagged, and the
//! quality, language and PII stages explain every decision and edit.

use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::{Value, json};
use tests::{
    corpus, corpus_records, query_csv, query_row, run, scratch, shared_data, texts, write_jsonl,
};

/// Field `field` of record `line` (0-based) of a benchmark file (`.jsonl` or `.jsonl.gz`).
fn benchmark_item(file: &str, line: usize, field: &str) -> String {
    let path = shared_data().join("benchmarks").join(file);
    let raw = std::fs::File::open(&path).unwrap();
    let reader: Box<dyn std::io::Read> = if file.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let line = BufReader::new(reader).lines().nth(line).unwrap().unwrap();
    let record: Value = serde_json::from_str(&line).unwrap();
    record[field].as_str().unwrap().to_string()
}

fn decontaminate_config(dir: &Path, out: &str, mode: &str) -> String {
    let bench = shared_data().join("benchmarks");
    let b = |name: &str, file: &str, fields: &str, id: &str| {
        format!(
            "[[stages.benchmarks]]\nname = \"{name}\"\npath = \"{}\"\nfields = {fields}\n{id}\n",
            bench.join(file).display()
        )
    };
    let config = format!(
        "[[sources]]\nname = \"planted\"\npaths = [\"{}\"]\n\n\
         [[stages]]\ntype = \"decontaminate\"\nmode = \"{mode}\"\n\n{}{}{}{}\
         [output]\npath = \"{}\"\n",
        dir.join("planted.jsonl").display(),
        b("gsm8k", "gsm8k.jsonl", "[\"question\", \"answer\"]", ""),
        b("mmlu", "mmlu_test.jsonl.gz", "[\"question\"]", ""),
        b(
            "humaneval",
            "humaneval.jsonl",
            "[\"prompt\"]",
            "id_field = \"task_id\""
        ),
        b(
            "arc_challenge",
            "arc_challenge.jsonl",
            "[\"question\", \"choices.text\"]",
            "id_field = \"id\""
        ),
        dir.join(out).display()
    );
    let path = dir.join(format!("{out}.toml"));
    std::fs::write(&path, config).unwrap();
    path.display().to_string()
}

#[test]
fn planted_benchmark_items_are_caught_and_clean_documents_are_not() {
    let dir = scratch("decontaminate");
    let mut records: Vec<Value> = corpus_records("wiki_en.jsonl.zst", 150);
    records.extend(corpus_records("news_bbc.jsonl.zst", 150));
    let clean = records.len();
    let text_of = |i: usize| records[i]["text"].as_str().unwrap().to_string();

    let gsm = benchmark_item("gsm8k.jsonl", 4, "question");
    let mmlu = benchmark_item("mmlu_test.jsonl.gz", 120, "question");
    let shouted: String = mmlu
        .to_uppercase()
        .chars()
        .map(|c| if c.is_ascii_punctuation() { ' ' } else { c })
        .collect();
    let prompt = benchmark_item("humaneval.jsonl", 2, "prompt");
    let host = text_of(0);
    let middle = host.char_indices().nth(host.chars().count() / 2).unwrap().0;
    let embedded = format!("{}\n\n{prompt}\n\n{}", &host[..middle], &host[middle..]);
    let arc = benchmark_item("arc_challenge.jsonl", 7, "question").to_lowercase();
    let in_news = format!("{}\n\nQuiz: {arc}\n", text_of(clean - 1));
    records.extend([
        json!({"id": "verbatim-gsm8k", "text": gsm}),
        json!({"id": "shouted-mmlu", "text": format!("Question of the day. {shouted} Answer below.")}),
        json!({"id": "embedded-humaneval", "text": embedded}),
        json!({"id": "lowercase-arc", "text": in_news}),
    ]);
    write_jsonl(&dir.path().join("planted.jsonl"), &records);

    let cfg = decontaminate_config(dir.path(), "drop", "drop");
    let o = run(&["run", "--quiet", &cfg]);
    assert!(o.status.success(), "{}", texts(&o).1);
    let out = dir.path().join("drop");
    let dropped = query_csv(&out, "SELECT rule, meta FROM rejects ORDER BY meta");
    let ids: Vec<String> = dropped
        .lines()
        .skip(1)
        .map(|l| {
            assert!(l.starts_with("decontaminate.contaminated,"), "{l}");
            let id_at = l.find("\"\"id\"\":\"\"").unwrap() + 9;
            l[id_at..].split("\"\"").next().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        ids,
        [
            "embedded-humaneval",
            "lowercase-arc",
            "shouted-mmlu",
            "verbatim-gsm8k"
        ],
        "exactly the planted documents, none of the {clean} clean ones"
    );

    // The report names each benchmark item and the source it appeared in.
    let o = run(&[
        "report",
        "contamination",
        out.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    let (report, stderr) = texts(&o);
    assert!(o.status.success(), "{stderr}");
    let rows: Vec<(&str, &str, &str, &str)> = report
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0], f[1], f[2], f[3])
        })
        .collect();
    assert!(
        rows.contains(&("gsm8k", "5", "question", "planted")),
        "{report}"
    );
    assert!(
        rows.contains(&("mmlu", "121", "question", "planted")),
        "{report}"
    );
    assert!(
        rows.contains(&("humaneval", "HumanEval/2", "prompt", "planted")),
        "{report}"
    );
    assert!(
        rows.iter()
            .any(|r| r.0 == "arc_challenge" && r.2 == "question"),
        "{report}"
    );

    // Cut mode keeps the host document without the passage and records the edit.
    let cfg = decontaminate_config(dir.path(), "cut", "cut");
    let o = run(&["run", "--quiet", &cfg]);
    assert!(o.status.success(), "{}", texts(&o).1);
    let out = dir.path().join("cut");
    let kept = query_csv(
        &out,
        "SELECT count(*) FROM decontaminate WHERE meta LIKE '%embedded-humaneval%' \
         AND text NOT LIKE '%def %' AND length(text) > 100",
    );
    assert_eq!(kept.lines().nth(1), Some("1"), "host kept, passage cut");
    let edits = query_csv(
        &out,
        "SELECT e.rule, e.bytes_before > e.bytes_after FROM edits e \
         JOIN decontaminate d ON d.id = e.id WHERE d.meta LIKE '%embedded-humaneval%'",
    );
    assert_eq!(edits.lines().nth(1), Some("decontaminate.cut,true"));
    let gone = query_csv(
        &out,
        "SELECT rule FROM rejects WHERE meta LIKE '%verbatim-gsm8k%'",
    );
    assert_eq!(gone.lines().nth(1), Some("decontaminate.nothing_left"));
}

#[test]
fn quality_language_and_pii_stages_explain_every_decision_and_edit() {
    let dir = scratch("quality");
    let mut config = String::new();
    for name in ["news_bbc", "docs_python"] {
        config += &format!(
            "[[sources]]\nname = \"{name}\"\npaths = [\"{}\"]\n\n",
            corpus(&format!("{name}.jsonl.zst")).display()
        );
    }
    for stage in [
        "gopher_repetition",
        "gopher_quality",
        "c4",
        "fineweb",
        "language",
        "pii",
    ] {
        config += &format!("[[stages]]\ntype = \"{stage}\"\n\n");
    }
    let out = dir.path().join("out");
    config += &format!("[output]\npath = \"{}\"\n", out.display());
    let cfg = dir.path().join("quality.toml");
    std::fs::write(&cfg, config).unwrap();
    let o = run(&["run", "--quiet", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", texts(&o).1);

    // Every drop names its own stage's rule, with a value on the failing side of its threshold
    // for the ratio rules.
    let bad = query_csv(
        &out,
        "SELECT count(*) FROM rejects WHERE NOT starts_with(rule, \
         CASE stage WHEN 'gopher_repetition' THEN 'gopher_repetition.' \
         WHEN 'gopher_quality' THEN 'gopher_quality.' WHEN 'c4' THEN 'c4.' \
         WHEN 'fineweb' THEN 'fineweb.' WHEN 'language' THEN 'language.' ELSE '?' END)",
    );
    assert_eq!(bad.lines().nth(1), Some("0"), "{bad}");
    let per_stage = query_csv(
        &out,
        "SELECT stage, count(*) FROM rejects GROUP BY stage ORDER BY stage",
    );
    for stage in ["c4", "gopher_quality", "gopher_repetition"] {
        assert!(
            per_stage.contains(stage),
            "{stage} dropped nothing: {per_stage}"
        );
    }
    // News prose survives; the final documents carry their language.
    let kept = query_csv(
        &out,
        "SELECT source, count(*), min(language), max(language), min(language_score) FROM pii GROUP BY source ORDER BY source",
    );
    let news = kept
        .lines()
        .find(|l| l.starts_with("news_bbc,"))
        .unwrap_or_else(|| panic!("{kept}"));
    let f: Vec<&str> = news.split(',').collect();
    assert!(f[1].parse::<u32>().unwrap() > 100, "{kept}");
    assert_eq!((f[2], f[3]), ("eng", "eng"));
    assert!(f[4].parse::<f64>().unwrap() >= 0.65);

    // C4 line removal is recorded for the documents it shortened, and the kept text is the
    // shortened one.
    let f: Vec<u64> = query_row(
        &out,
        "SELECT count(*), sum(CASE WHEN e.bytes_after < e.bytes_before THEN 1 ELSE 0 END), \
         sum(CASE WHEN octet_length(p.text) = e.bytes_after THEN 1 ELSE 0 END) \
         FROM edits e JOIN pii p ON p.id = e.id WHERE e.rule = 'c4.lines_removed' \
         AND e.id NOT IN (SELECT id FROM edits WHERE rule = 'pii.redacted')",
    );
    assert!(f[0] > 10 && f[1] == f[0] && f[2] == f[0], "{f:?}");
    // PII edits carry counts only.
    let pii = query_csv(&out, "SELECT detail FROM edits WHERE rule = 'pii.redacted'");
    assert!(
        pii.lines()
            .skip(1)
            .all(|l| l.contains("\"\"email\"\":") && !l.contains('@')),
        "{pii}"
    );
}

/// The stages' SQL functions, given the options a run's stages had, repeat what those stages did
/// on real documents: each rule function names exactly the documents its stage dropped, by the
/// same rule, `normalize` and `redact_pii` give the texts those stages wrote, and `language` and
/// `language_score` the columns the language stage wrote; with the defaults instead, each gives
/// something else (the options are not ignored).
#[test]
fn sql_functions_with_a_stages_options_repeat_its_decisions() {
    let dir = scratch("sql-options");
    let stages = [
        ("normalize", "whitespace = false"),
        (
            "gopher_quality",
            r#"min_doc_words = 80, stop_words = ["the", "and", "of"]"#,
        ),
        (
            "fineweb",
            "max_short_line_ratio = 0.5, short_line_length = 40",
        ),
        ("c4", "min_num_sentences = 3, filter_curly_bracket = false"),
        (
            "language",
            r#"languages = ["eng"], min_score = 0.5, max_chars = 100"#,
        ),
        (
            "pii",
            r#"kinds = ["email", "ipv4"], placeholders = { email = "[mail]" }"#,
        ),
    ];
    let mut config = String::from("stages = [\n");
    for (ty, options) in stages {
        config += &format!("  {{ type = \"{ty}\", {options} }},\n");
    }
    config += "]\n\n";
    for name in ["news_bbc", "docs_linux", "manpages_en"] {
        config += &format!(
            "[[sources]]\nname = \"{name}\"\npaths = [\"{}\"]\n\n",
            corpus(&format!("{name}.jsonl.zst")).display()
        );
    }
    let out = dir.path().join("out");
    config += &format!(
        "[output]\npath = \"{}\"\nstages = [\"ingest\", \"normalize\", \"gopher_quality\", \
         \"fineweb\", \"c4\", \"language\", \"pii\"]\n",
        out.display()
    );
    let cfg = dir.path().join("options.toml");
    std::fs::write(&cfg, config).unwrap();
    let o = run(&["run", "--quiet", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", texts(&o).1);

    // Texts: [differ with the stage's options, differ with the defaults, edited by the stage].
    let rewritten = |input: &str, stage: &str, function: &str, options: &str| -> Vec<u64> {
        query_row(
            &out,
            &format!(
                "SELECT count(*) FILTER (WHERE {function}(a.text, '{options}') <> b.text), \
                 count(*) FILTER (WHERE {function}(a.text) <> b.text), \
                 count(*) FILTER (WHERE a.text <> b.text) \
                 FROM {input} a JOIN {stage} b ON a.id = b.id"
            ),
        )
    };
    let normalize = rewritten("ingest", "normalize", "normalize", stages[0].1);
    assert!(normalize[0] == 0 && normalize[1] > 0, "{normalize:?}");
    let pii = rewritten("language", "pii", "redact_pii", stages[5].1);
    assert!(pii[0] == 0 && pii[1] > 0 && pii[2] > 0, "{pii:?}");

    // Rules: [documents where the function with the stage's options and the stage's drop
    // disagree, documents dropped, disagreements with the defaults].
    let inputs = ["normalize", "gopher_quality", "fineweb", "c4"];
    let functions = ["gopher_quality", "fineweb", "c4", "language_rule"];
    for (((stage, options), input), function) in stages[1..5].iter().zip(inputs).zip(functions) {
        let f: Vec<u64> = query_row(
            &out,
            &format!(
                "SELECT count(*) FILTER (WHERE {function}(a.text, '{options}') \
                 IS DISTINCT FROM r.rule), count(r.rule), \
                 count(*) FILTER (WHERE {function}(a.text) IS DISTINCT FROM r.rule) \
                 FROM {input} a LEFT JOIN rejects r ON r.id = a.id AND r.stage = '{stage}'"
            ),
        );
        assert!(f[0] == 0 && f[1] > 0 && f[2] > 0, "{stage}: {f:?}");
    }

    // Detection: [kept documents whose language or score the functions with the stage's
    // options do not repeat, kept documents, disagreements with the defaults].
    let options = stages[4].1;
    let f: Vec<u64> = query_row(
        &out,
        &format!(
            "SELECT count(*) FILTER (WHERE language(a.text, '{options}') <> b.language \
             OR language_score(a.text, '{options}') <> b.language_score), count(*), \
             count(*) FILTER (WHERE language(a.text) <> b.language \
             OR language_score(a.text) <> b.language_score) \
             FROM c4 a JOIN language b ON a.id = b.id"
        ),
    );
    assert!(f[0] == 0 && f[1] > 100 && f[2] > 0, "language: {f:?}");
}
