//! Every kind of bad input from the foundation issue: a clear message naming file and line, the
//! record quarantined with a reason, the run going on (exit 3 under `--strict`), and the
//! accounting still exact. Also odd input that is not bad: byte-order marks and `\r\n` lines.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, DictionaryArray, LargeStringArray, RecordBatch, StringViewArray,
};
use arrow::datatypes::Int32Type;

use tests::{manifest, read_parquet, run, scratch, strings, texts};

const GOOD: &str = "{\"text\":\"a perfectly good document with several words\"}\n";

/// One bad-input scenario.
struct Case<'a> {
    name: &'a str,
    files: Vec<(&'a str, Vec<u8>)>,
    /// Paths of the source, relative to the config.
    paths: &'a [&'a str],
    run_toml: &'a str,
    reason: &'a str,
    /// Where the message must point: `file:locator` (or the file alone for file-level problems).
    at: &'a str,
    documents: u64,
}

fn write_config(dir: &Path, paths: &[&str], run_toml: &str) -> std::path::PathBuf {
    let paths: Vec<String> = paths.iter().map(|p| format!("\"{p}\"")).collect();
    let config = format!(
        "[run]\n{run_toml}\n[[sources]]\nname = \"s\"\npaths = [{}]\n\n[[stages]]\ntype = \"normalize\"\n\n[output]\npath = \"out\"\n",
        paths.join(", ")
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn check(case: Case) {
    let dir = scratch(case.name);
    for (name, bytes) in &case.files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let config = write_config(dir.path(), case.paths, case.run_toml);
    let out = run(&["run", config.to_str().unwrap()]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{}: run failed\n{stderr}", case.name);
    assert!(
        stderr.contains(case.at) && stderr.contains(case.reason),
        "{}: stderr must name {} and {}:\n{stderr}",
        case.name,
        case.at,
        case.reason
    );

    let outdir = dir.path().join("out");
    let q = read_parquet(&outdir.join("quarantine"));
    let reasons = strings(&q, "reason");
    assert!(
        reasons.iter().any(|r| r == case.reason),
        "{}: quarantine reasons {reasons:?}",
        case.name
    );
    let m = manifest(&outdir);
    let src = &m["accounting"]["sources"][0];
    let (records, docs, quarantined) = (
        src["records"].as_u64().unwrap(),
        src["documents"].as_u64().unwrap(),
        src["quarantined_records"].as_u64().unwrap(),
    );
    assert_eq!(docs, case.documents, "{}: documents\n{stdout}", case.name);
    assert_eq!(
        records,
        docs + quarantined,
        "{}: records = documents + quarantined",
        case.name
    );
    let kept = read_parquet(&outdir.join("normalize"));
    assert_eq!(
        kept.iter().map(|b| b.num_rows() as u64).sum::<u64>(),
        docs,
        "{}: documents written",
        case.name
    );
    let record_rows = strings(&q, "scope")
        .iter()
        .filter(|s| *s == "record")
        .count() as u64;
    assert_eq!(
        record_rows, quarantined,
        "{}: quarantined record rows",
        case.name
    );

    let strict = run(&["run", "--strict", config.to_str().unwrap()]);
    let (_, stderr) = texts(&strict);
    let runs = read_parquet(&outdir.join("runs"));
    std::fs::remove_dir_all(&outdir).ok();
    assert_eq!(
        strings(&runs, "status"),
        ["complete", "failed"],
        "{}: both invocations are in the runs table",
        case.name
    );
    let errors = strings(&runs, "error");
    assert!(
        errors[1].contains(case.at) && errors[1].contains("strict mode"),
        "{}: the failed run's error: {errors:?}",
        case.name
    );
    assert_eq!(
        strict.status.code(),
        Some(3),
        "{}: --strict must exit 3\n{stderr}",
        case.name
    );
    assert!(
        stderr.contains(case.at) && stderr.contains("strict mode"),
        "{}: strict error must name {}:\n{stderr}",
        case.name,
        case.at
    );
}

fn lines(middle: &[u8]) -> Vec<u8> {
    [GOOD.as_bytes(), middle, b"\n", GOOD.as_bytes()].concat()
}

#[test]
fn malformed_json_line() {
    let files = vec![("a.jsonl", lines(b"{\"text\": \"unterminated"))];
    check(Case {
        name: "malformed",
        files,
        paths: &["a.jsonl"],
        run_toml: "",
        reason: "ingest.malformed_json",
        at: "a.jsonl:2",
        documents: 2,
    });
}

#[test]
fn invalid_utf8_line() {
    let files = vec![("a.jsonl", lines(b"{\"text\": \"caf\xff\xfe\"}"))];
    check(Case {
        name: "utf8",
        files,
        paths: &["a.jsonl"],
        run_toml: "",
        reason: "ingest.invalid_utf8",
        at: "a.jsonl:2",
        documents: 2,
    });
}

#[test]
fn missing_text_field() {
    let files = vec![("a.jsonl", lines(b"{\"body\": \"no text here\"}"))];
    check(Case {
        name: "missing-text",
        files,
        paths: &["a.jsonl"],
        run_toml: "",
        reason: "ingest.missing_text_field",
        at: "a.jsonl:2",
        documents: 2,
    });
}

#[test]
fn non_string_text() {
    let files = vec![("a.jsonl", lines(b"{\"text\": [1, 2, 3]}"))];
    check(Case {
        name: "non-string",
        files,
        paths: &["a.jsonl"],
        run_toml: "",
        reason: "ingest.text_not_string",
        at: "a.jsonl:2",
        documents: 2,
    });
}

#[test]
fn oversize_document() {
    let big = format!("{{\"text\": \"{}\"}}", "x".repeat(500));
    let files = vec![("a.jsonl", lines(big.as_bytes()))];
    check(Case {
        name: "oversize",
        files,
        paths: &["a.jsonl"],
        run_toml: "max_doc_bytes = 100",
        reason: "ingest.oversize_document",
        at: "a.jsonl:2",
        documents: 2,
    });
}

fn many_lines() -> Vec<u8> {
    (0..30_000)
        .map(|i| format!("{{\"text\":\"document number {i} with some words in it\"}}\n"))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn truncated_gzip() {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&many_lines()).unwrap();
    let packed = e.finish().unwrap();
    let cut = packed[..packed.len() * 6 / 10].to_vec();
    let readable = count_readable_lines(&cut, true);
    check(Case {
        name: "truncated-gz",
        files: vec![("a.jsonl.gz", cut)],
        paths: &["a.jsonl.gz"],
        run_toml: "",
        reason: "ingest.truncated_input",
        at: &format!("a.jsonl.gz:{}", readable + 1),
        documents: readable,
    });
}

#[test]
fn truncated_zstd() {
    let packed = zstd::encode_all(&many_lines()[..], 3).unwrap();
    let cut = packed[..packed.len() * 6 / 10].to_vec();
    let readable = count_readable_lines(&cut, false);
    check(Case {
        name: "truncated-zst",
        files: vec![("a.jsonl.zst", cut)],
        paths: &["a.jsonl.zst"],
        run_toml: "",
        reason: "ingest.truncated_input",
        at: &format!("a.jsonl.zst:{}", readable + 1),
        documents: readable,
    });
}

/// Complete lines a decoder yields from truncated data before it fails.
fn count_readable_lines(packed: &[u8], gzip: bool) -> u64 {
    use std::io::Read;
    let mut out = Vec::new();
    let _ = if gzip {
        flate2::read::MultiGzDecoder::new(packed).read_to_end(&mut out)
    } else {
        zstd::stream::read::Decoder::new(packed)
            .unwrap()
            .read_to_end(&mut out)
    };
    let complete = out.iter().filter(|&&b| b == b'\n').count() as u64;
    assert!(
        complete > 100 && complete < 30_000,
        "truncation should fall mid-file: {complete}"
    );
    complete
}

#[test]
fn empty_file() {
    let files = vec![
        ("empty.jsonl", Vec::new()),
        ("b.jsonl", GOOD.as_bytes().to_vec()),
    ];
    check(Case {
        name: "empty",
        files,
        paths: &["empty.jsonl", "b.jsonl"],
        run_toml: "",
        reason: "ingest.empty_file",
        at: "empty.jsonl",
        documents: 1,
    });
}

#[test]
fn json_array_file() {
    let files = vec![
        (
            "arr.json",
            b"[\n  {\"text\": \"a\"},\n  {\"text\": \"b\"}\n]\n".to_vec(),
        ),
        ("b.jsonl", GOOD.as_bytes().to_vec()),
    ];
    check(Case {
        name: "json-array",
        files,
        paths: &["arr.json", "b.jsonl"],
        run_toml: "",
        reason: "ingest.not_json_lines",
        at: "arr.json:1",
        documents: 1,
    });
}

#[test]
fn missing_path() {
    let files = vec![("b.jsonl", GOOD.as_bytes().to_vec())];
    check(Case {
        name: "missing-path",
        files,
        paths: &["nope/missing.jsonl", "b.jsonl"],
        run_toml: "",
        reason: "ingest.missing_input",
        at: "missing.jsonl",
        documents: 1,
    });
}

#[test]
fn byte_order_marks_and_crlf_lines_are_read_not_quarantined() {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let dir = scratch("bom");
    let jsonl = [
        BOM,
        b"{\"text\":\"first line\"}\r\n{\"text\":\"second line\"}\r\n",
    ]
    .concat();
    std::fs::write(dir.path().join("a.jsonl"), jsonl).unwrap();
    std::fs::write(
        dir.path().join("b.txt"),
        [BOM, b"a text file".as_slice()].concat(),
    )
    .unwrap();
    // No stages: no normalize to strip a U+FEFF the readers let through.
    let got = ingested_texts(dir.path(), r#"["a.jsonl", "b.txt"]"#);
    assert_eq!(got, ["a text file", "first line", "second line"]);
}

/// Runs one source over `paths` (a TOML array) in `dir` with no stages under `--strict`, so that
/// any quarantined record fails it, and returns the ingested texts, sorted.
fn ingested_texts(dir: &Path, paths: &str) -> Vec<String> {
    let config = dir.join("config.toml");
    let toml = format!("[[sources]]\nname = \"s\"\npaths = {paths}\n\n[output]\npath = \"out\"\n");
    std::fs::write(&config, toml).unwrap();
    let out = run(&["run", "--strict", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", texts(&out).1);
    let mut got = strings(&read_parquet(&dir.join("out/ingest")), "text");
    got.sort();
    got
}

/// A Parquet file with `text` as its one column.
fn parquet_file(text: ArrayRef) -> Vec<u8> {
    let batch = RecordBatch::try_from_iter([("text", text)]).unwrap();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

#[test]
fn parquet_binary_text_that_is_not_utf8() {
    let rows: [&[u8]; 3] = [b"good bytes", b"bad \xff byte", b"more good bytes"];
    let files = vec![(
        "bin.parquet",
        parquet_file(Arc::new(BinaryArray::from_iter_values(rows))),
    )];
    check(Case {
        name: "parquet-binary",
        files,
        paths: &["bin.parquet"],
        run_toml: "",
        reason: "ingest.invalid_utf8",
        at: "bin.parquet:1",
        documents: 2,
    });
}

#[test]
fn parquet_text_may_be_any_string_type_a_dictionary_or_binary() {
    let dir = scratch("parquet-kinds");
    let columns: [(&str, ArrayRef); 4] = [
        (
            "large",
            Arc::new(LargeStringArray::from(vec!["large a", "large b"])),
        ),
        (
            "view",
            Arc::new(StringViewArray::from(vec!["view a", "view b"])),
        ),
        (
            "dict",
            Arc::new(DictionaryArray::<Int32Type>::from_iter(["cat a", "cat a"])),
        ),
        (
            "bin",
            Arc::new(BinaryArray::from_iter_values([b"bin a", b"bin b"])),
        ),
    ];
    for (name, column) in columns {
        std::fs::write(
            dir.path().join(format!("{name}.parquet")),
            parquet_file(column),
        )
        .unwrap();
    }
    let got = ingested_texts(dir.path(), r#"["*.parquet"]"#);
    let want = [
        "bin a", "bin b", "cat a", "cat a", "large a", "large b", "view a", "view b",
    ];
    assert_eq!(got, want);
}
