//! Tokenizing into versioned token shards: token ids equal the Python `tokenizers` package's,
//! numpy reads the shards, versions are content-addressed, and outputs do not depend on the
//! thread count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use tests::{
    corpus_records, own_file, python, read_parquet, run, scratch, shared_data, strings, texts,
    write_jsonl,
};

/// Writes `per_source` real documents of each corpus file as `<dir>/input/<name>.jsonl`.
pub(crate) fn write_inputs(dir: &Path, sources: &[(&str, &str)], per_source: usize) {
    std::fs::create_dir_all(dir.join("input")).unwrap();
    for (name, file) in sources {
        write_jsonl(
            &dir.join(format!("input/{name}.jsonl")),
            &corpus_records(file, per_source),
        );
    }
}

/// A config over those inputs with `stages` and a `[tokenize]` section holding `tokenize`.
pub(crate) fn write_config(
    dir: &Path,
    sources: &[(&str, &str)],
    stages: &str,
    tokenize: &str,
) -> PathBuf {
    let sources: String = sources
        .iter()
        .map(|(name, _)| {
            format!("[[sources]]\nname = \"{name}\"\npaths = [\"input/{name}.jsonl\"]\n\n")
        })
        .collect();
    let config = format!(
        "{sources}[[stages]]\ntype = \"normalize\"\n\n{stages}\n[output]\npath = \"out\"\n\n[tokenize]\nroot = \"tokens\"\n{tokenize}\n"
    );
    let path = dir.join("refinery.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// OLMo's tokenizer file, from the shared data.
pub(crate) fn olmo() -> PathBuf {
    shared_data().join("tokenizers/gpt-neox-olmo.json")
}

pub(crate) fn latest(root: &Path) -> String {
    std::fs::read_to_string(root.join("latest"))
        .unwrap()
        .trim()
        .to_string()
}

fn version_manifest(root: &Path, id: &str) -> Value {
    let path = root.join("versions").join(id).join("manifest.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

pub(crate) fn run_ok(args: &[&str]) -> String {
    let out = run(args);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "refinery {args:?} failed:\n{stderr}");
    stdout
}

#[test]
fn tokens_equal_python_tokenizers_and_numpy_reads_every_shard() {
    let sources = [
        ("wiki", "wiki_en.jsonl.zst"),
        ("code", "code_go.jsonl.zst"),
        ("news", "news_bbc.jsonl.zst"),
        ("mail", "email_spam.jsonl.zst"),
    ];
    let dir = scratch("tokenize-parity");
    write_inputs(dir.path(), &sources, 300);
    let tokenize = format!(
        "tokenizer = \"{}\"\nshard_tokens = 40000\nvalidation_fraction = 0.1\n",
        olmo().display()
    );
    let config = write_config(dir.path(), &sources, "", &tokenize);
    let stdout = run_ok(&["run", config.to_str().unwrap()]);
    assert!(stdout.contains("Tokenized 1200 documents"), "{stdout}");

    let root = dir.path().join("tokens");
    let id = latest(&root);
    let m = version_manifest(&root, &id);
    assert_eq!(m["format"], "refinery.shards");
    assert_eq!(m["version"], id.as_str());
    assert_eq!(m["parents"][0]["kind"], "run");
    assert_eq!(
        m["token_bytes"], 2,
        "OLMo's 50k vocabulary fits 16-bit tokens"
    );
    let tokenizer_hash = xxhash_rust::xxh3::xxh3_64(&std::fs::read(olmo()).unwrap());
    assert_eq!(
        m["tokenizer"]["hash"],
        format!("{tokenizer_hash:016x}").as_str()
    );
    assert_eq!(m["tokenizer"]["eod"], "<|endoftext|>");
    let shards = m["shards"].as_array().unwrap();
    assert!(
        shards.len() > 8,
        "several shards per stream: {}",
        shards.len()
    );
    for shard in shards {
        let bytes = std::fs::read(
            root.join("versions")
                .join(&id)
                .join(shard["path"].as_str().unwrap()),
        )
        .unwrap();
        assert_eq!(bytes.len() as u64, shard["bytes"].as_u64().unwrap());
        let sum = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
        assert_eq!(shard["checksum"], sum.as_str());
    }
    for (name, _) in sources {
        let held = m["sources"][name]["validation"]["documents"]
            .as_u64()
            .unwrap();
        let train = m["sources"][name]["train"]["documents"].as_u64().unwrap();
        assert_eq!(held + train, 300, "{name}");
        assert!(
            (10..=55).contains(&held),
            "{name}: {held} of 300 held out at 10%"
        );
    }

    let report = python_check(dir.path(), &olmo());
    assert_eq!(report["documents"], 1200, "{report}");
    assert_eq!(report["mismatches"], 0, "{report}");

    let verified = run_ok(&["versions", "verify", root.to_str().unwrap()]);
    assert!(verified.contains("is intact"), "{verified}");
}

/// `tests/py/check_shards.py`'s report on the latest version under `dir/tokens` of the
/// documents in `dir/out/normalize`: numpy reads every shard, and each document's tokens are
/// compared with the Python `tokenizers` package's for `tokenizer`.
fn python_check(dir: &Path, tokenizer: &Path) -> Value {
    let root = dir.join("tokens");
    let check = python()
        .arg(own_file("py/check_shards.py"))
        .arg(root.join("versions").join(latest(&root)))
        .arg(dir.join("out/normalize"))
        .arg(tokenizer)
        .output()
        .expect("python3 with numpy, pyarrow and tokenizers (scripts/test installs them)");
    let (py_out, py_err) = texts(&check);
    assert!(
        check.status.success(),
        "python check failed:\n{py_out}\n{py_err}"
    );
    serde_json::from_str(py_out.trim()).unwrap()
}

/// Llama 3's pre-tokenizer regex (Qwen2's has `\p{N}` for `\p{N}{1,3}`).
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Tokenizers shaped as Llama 3's and Qwen2's (a `Split` by their regex, then bytes; no
/// normalizer for Llama 3, NFC for Qwen2) are encoded piece by piece under their own cut rules;
/// built on OLMo's vocabulary and added tokens, their ids must equal the Python package's.
#[test]
fn llama3_and_qwen2_shaped_tokens_equal_python_tokenizers() {
    let sources = PIECE_SOURCES;
    for (shape, regex, normalizer) in [
        ("llama3", LLAMA3_REGEX.to_string(), Value::Null),
        (
            "qwen2",
            LLAMA3_REGEX.replace(r"\p{N}{1,3}", r"\p{N}"),
            serde_json::json!({"type": "NFC"}),
        ),
    ] {
        let dir = scratch(&format!("tokenize-{shape}"));
        write_inputs(dir.path(), &sources, 200);
        let mut json: Value = serde_json::from_slice(&std::fs::read(olmo()).unwrap()).unwrap();
        json["normalizer"] = normalizer;
        json["pre_tokenizer"] = serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
        ]});
        let tokenizer = dir.path().join(format!("{shape}.json"));
        std::fs::write(&tokenizer, serde_json::to_vec(&json).unwrap()).unwrap();
        let rules = "cut by the rules of Llama 3's or Qwen2's regex";
        run_piece_by_piece(dir.path(), &sources, &tokenizer, "", rules);
    }
}

/// Prose, code and documentation: the sources the piece-by-piece tests tokenize.
const PIECE_SOURCES: [(&str, &str); 3] = [
    ("wiki", "wiki_en.jsonl.zst"),
    ("code", "code_go.jsonl.zst"),
    ("docs", "docs_python.jsonl.zst"),
];

/// Runs the config over `sources` (200 documents each) tokenizing with `tokenizer` (and the
/// `[tokenize]` lines `settings`), checks that the logs of `validate` and `run` say its texts are
/// encoded piece by piece, `rules` naming the cuts, and that every token equals the Python
/// package's.
fn run_piece_by_piece(
    dir: &Path,
    sources: &[(&str, &str)],
    tokenizer: &Path,
    settings: &str,
    rules: &str,
) {
    let tokenize = format!("tokenizer = \"{}\"\n{settings}", tokenizer.display());
    let config = write_config(dir, sources, "", &tokenize);
    let said = format!("texts are encoded piece by piece, {rules}");
    let shape = tokenizer.display();
    let validated = run(&["validate", config.to_str().unwrap()]);
    let stderr = texts(&validated).1;
    assert!(validated.status.success(), "{shape}: {stderr}");
    assert!(stderr.contains(&said), "{shape}: {stderr}");
    let out = run(&["run", config.to_str().unwrap()]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{shape}: {stderr}");
    assert!(
        stdout.contains("Tokenized 600 documents"),
        "{shape}: {stdout}"
    );
    assert!(stderr.contains(&said), "{shape}: {stderr}");
    let report = python_check(dir, tokenizer);
    assert_eq!(report["documents"], 600, "{shape}: {report}");
    assert_eq!(report["mismatches"], 0, "{shape}: {report}");
}

/// SentencePiece-style tokenizers, trained by the Python package on the inputs and written with
/// Mistral's spelling (a `Metaspace` pre-tokenizer) and with Llama 2's older one (`Prepend` and
/// `Replace` normalizers), are encoded piece by piece; their ids must equal the Python package's.
#[test]
fn sentencepiece_style_tokens_equal_python_tokenizers() {
    let sources = PIECE_SOURCES;
    let dir = scratch("tokenize-sentencepiece");
    write_inputs(dir.path(), &sources, 200);
    let trained = python()
        .arg(own_file("py/train_sentencepiece.py"))
        .arg(dir.path())
        .args(sources.map(|(name, _)| dir.path().join(format!("input/{name}.jsonl"))))
        .output()
        .expect("python3 with tokenizers (scripts/test installs it)");
    assert!(trained.status.success(), "{}", texts(&trained).1);
    for shape in ["mistral", "llama2"] {
        for written in ["out", "tokens"] {
            let _ = std::fs::remove_dir_all(dir.path().join(written));
        }
        let tokenizer = dir.path().join(format!("{shape}.json"));
        let rules = "cut before each `▁` that follows another character";
        run_piece_by_piece(dir.path(), &sources, &tokenizer, "eod = \"</s>\"\n", rules);
    }
}

#[test]
fn the_same_job_names_the_same_version_and_a_changed_job_diffs_against_it() {
    let sources = [
        ("wiki", "wiki_en.jsonl.zst"),
        ("books", "books_gutenberg.jsonl.zst"),
    ];
    let tokenize = "train_vocab_size = 1500\nshard_tokens = 30000\n";
    let dir = scratch("tokenize-versions");
    write_inputs(dir.path(), &sources, 150);
    write_config(dir.path(), &sources, "", tokenize);
    let config = dir.path().join("refinery.toml");
    let config = config.to_str().unwrap();
    run_ok(&["run", config]);
    let root = dir.path().join("tokens");
    let first = latest(&root);
    let tokenizer = dir.path().join("out/tokenizer.json");
    let trained = std::fs::read(&tokenizer).unwrap();

    // `refinery tokenizer train` on the same output with the same settings writes the same file.
    let standalone = dir.path().join("standalone.json");
    let out_dir = dir.path().join("out");
    run_ok(&[
        "tokenizer",
        "train",
        "--vocab-size",
        "1500",
        "--out",
        standalone.to_str().unwrap(),
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&standalone).unwrap(), trained);

    // Same job again: same id, nothing written.
    let before = tests::tree_bytes(&root);
    let again = run_ok(&["run", config]);
    assert!(again.contains("already exists"), "{again}");
    assert_eq!(tests::tree_bytes(&root), before);

    // From scratch with one thread instead of two: the same tokenizer and version, byte for byte.
    let shards = |r: &Path| version_manifest(r, &first)["shards"].clone();
    let two_threads = shards(&root);
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::remove_file(&tokenizer).unwrap();
    run_ok(&["run", "--threads", "1", config]);
    assert_eq!(std::fs::read(&tokenizer).unwrap(), trained);
    assert_eq!(latest(&root), first);
    assert_eq!(shards(&root), two_threads);

    // A stricter job: a new version whose parent is the first, and a diff that shows the cut.
    write_config(
        dir.path(),
        &sources,
        "[[stages]]\ntype = \"length\"\nmin_words = 2000\n",
        tokenize,
    );
    run_ok(&["run", config]);
    let second = latest(&root);
    assert_ne!(second, first);
    let m = version_manifest(&root, &second);
    let parents: Vec<&str> = m["parents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(parents.contains(&first.as_str()), "{parents:?}");

    let list = run_ok(&[
        "versions",
        "list",
        root.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[1]["version"], second.as_str());
    assert_eq!(list[1]["latest"], true);

    let diff = run_ok(&[
        "versions",
        "diff",
        root.to_str().unwrap(),
        &first,
        "--format",
        "json",
    ]);
    let rows: Value = serde_json::from_str(&diff).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{diff}");
    let old = version_manifest(&root, &first);
    let docs = |m: &Value, source: &str| {
        m["sources"][source]["train"]["documents"]
            .as_u64()
            .unwrap_or(0)
            + m["sources"][source]["validation"]["documents"]
                .as_u64()
                .unwrap_or(0)
    };
    for row in rows {
        let source = row["source"].as_str().unwrap();
        let (before, kept) = (docs(&old, source), docs(&m, source));
        assert_eq!(row["docs_from"].as_u64().unwrap(), before, "{row}");
        assert_eq!(row["docs_to"].as_u64().unwrap(), kept, "{row}");
        assert_eq!(row["docs_added"], 0, "{row}");
        assert_eq!(
            row["docs_removed"].as_u64().unwrap(),
            before - kept,
            "{row}"
        );
        let (from, to) = (
            row["tokens_from"].as_i64().unwrap(),
            row["tokens_to"].as_i64().unwrap(),
        );
        assert_eq!(row["tokens_delta"].as_i64().unwrap(), to - from, "{row}");
    }
    assert!(
        rows.iter().any(|r| r["docs_removed"].as_u64().unwrap() > 0),
        "{diff}"
    );
    let show = run_ok(&["versions", "show", root.to_str().unwrap()]);
    assert!(show.contains(&second) && show.contains(&first), "{show}");
}

#[test]
fn a_cut_short_tokenize_step_resumes_to_the_same_bytes_under_source_date_epoch() {
    let sources = [
        ("wiki", "wiki_en.jsonl.zst"),
        ("news", "news_bbc.jsonl.zst"),
    ];
    let dir = scratch("tokenize-resume");
    let d = dir.path();
    write_inputs(d, &sources, 150);
    let tokenize = format!(
        "tokenizer = {:?}\nshard_tokens = 4000\n",
        olmo().display().to_string()
    );
    let config = write_config(d, &sources, "", &tokenize);
    let config = config.to_str().unwrap();
    let plan = run_ok(&["validate", config]);
    let root = d.join("tokens");
    assert!(
        plan.contains(&format!(
            "then tokenizes [normalize] into {}",
            root.display()
        )),
        "{plan}"
    );
    let pinned = |epoch: &str| {
        tests::refinery(&["run", "--quiet", config])
            .env("SOURCE_DATE_EPOCH", epoch)
            .output()
            .unwrap()
    };
    let out = pinned("1800000000");
    assert!(out.status.success(), "{}", texts(&out).1);
    let id = latest(&root);
    assert_eq!(
        version_manifest(&root, &id)["created"],
        "2027-01-15T08:00:00Z"
    );
    let whole = tests::tree_bytes(&root);

    // What a run killed while writing shards leaves: no manifest and no `latest`, a shard not
    // written, one half-written under the local store's staging name, and so is `latest`.
    let version = root.join("versions").join(&id);
    let wiki = version.join("train/wiki");
    std::fs::remove_file(version.join("manifest.json")).unwrap();
    std::fs::remove_file(root.join("latest")).unwrap();
    std::fs::remove_file(wiki.join("000001.bin")).unwrap();
    let half = std::fs::read(wiki.join("000002.bin")).unwrap();
    std::fs::write(wiki.join("000002.bin#1"), &half[..half.len() / 2]).unwrap();
    std::fs::remove_file(wiki.join("000002.bin")).unwrap();
    std::fs::write(root.join("latest#1"), &id[..3]).unwrap();
    let out = pinned("1800000000");
    assert!(out.status.success(), "{}", texts(&out).1);
    let resumed = tests::tree_bytes(&root);
    let names = |t: &[(String, Vec<u8>)]| t.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&resumed), names(&whole));
    assert!(
        resumed == whole,
        "a resumed tokenize step wrote other bytes"
    );

    // A malformed value is refused before anything runs.
    std::fs::remove_dir_all(&root).unwrap();
    let out = pinned("tomorrow");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        texts(&out).1.contains("SOURCE_DATE_EPOCH=\"tomorrow\""),
        "{}",
        texts(&out).1
    );
    assert!(!root.exists());
}

/// The ids of a version's documents per (split, source), read back from its index files.
fn split_ids(version: &Path) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut ids: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for split in ["train", "validation"] {
        let Ok(sources) = std::fs::read_dir(version.join(split)) else {
            continue;
        };
        for source in sources {
            let folder = source.unwrap().path();
            let name = folder.file_name().unwrap().to_str().unwrap().to_string();
            for file in std::fs::read_dir(&folder).unwrap() {
                let file = file.unwrap().path();
                if file.to_str().unwrap().ends_with(".index.parquet") {
                    let batches = read_parquet(&file);
                    let entry = ids.entry((split.to_string(), name.clone())).or_default();
                    entry.extend(strings(&batches, "id"));
                }
            }
        }
    }
    ids
}

/// `validation_min_docs` tops up each source's held-out documents to the minimum (at most half
/// the source) with the smallest id hashes, on top of what the fraction holds out; without it,
/// the fraction alone decides, and the manifest and version ids are as before the setting.
#[test]
fn a_per_source_minimum_holds_out_the_smallest_id_hashes() {
    let sources = [
        ("news", "news_bbc.jsonl.zst", 150),
        ("wiki", "wiki_en.jsonl.zst", 9),
        ("code", "code_go.jsonl.zst", 3),
    ];
    let names: Vec<(&str, &str)> = sources.iter().map(|(n, f, _)| (*n, *f)).collect();
    let fraction = 0.03;
    let dir = scratch("tokenize-min-docs");
    std::fs::create_dir_all(dir.path().join("input")).unwrap();
    for (name, file, n) in sources {
        let path = dir.path().join(format!("input/{name}.jsonl"));
        write_jsonl(&path, &corpus_records(file, n));
    }
    // The same run, tokenized with the fraction alone, then with a minimum.
    let mut versions = Vec::new();
    for min_docs in [0, 4] {
        let tokenize = format!(
            "tokenizer = \"{}\"\nvalidation_fraction = {fraction}\nvalidation_min_docs = {min_docs}\n",
            olmo().display()
        );
        let config = write_config(dir.path(), &names, "", &tokenize);
        run_ok(&["run", "--quiet", config.to_str().unwrap()]);
        let root = dir.path().join("tokens");
        let id = latest(&root);
        let ids = split_ids(&root.join("versions").join(&id));
        versions.push((version_manifest(&root, &id), ids));
    }
    let [(fraction_only, by_fraction), (with_minimum, by_minimum)] = &versions[..] else {
        unreachable!()
    };
    assert!(fraction_only.get("validation_min_docs").is_none());
    assert_eq!(with_minimum["validation_min_docs"], 4);
    assert_ne!(fraction_only["version"], with_minimum["version"]);

    let hash = |id: &String| xxhash_rust::xxh3::xxh3_64(id.as_bytes());
    for (name, _, n) in sources {
        let get = |ids: &BTreeMap<(String, String), BTreeSet<String>>, split: &str| {
            ids.get(&(split.to_string(), name.to_string()))
                .cloned()
                .unwrap_or_default()
        };
        let all: BTreeSet<String> = get(by_minimum, "train")
            .union(&get(by_minimum, "validation"))
            .cloned()
            .collect();
        assert_eq!(all.len(), n, "{name}: every document is in one split");
        // The fraction alone: ids whose hash falls in its share of the range.
        let hashed: BTreeSet<String> = all
            .iter()
            .filter(|id| (hash(id) as f64) < fraction * 2f64.powi(64))
            .cloned()
            .collect();
        assert_eq!(get(by_fraction, "validation"), hashed, "{name}");
        // With the minimum: the smallest hashes, at least min(4, n / 2) of them.
        let mut sorted: Vec<&String> = all.iter().collect();
        sorted.sort_by_key(|id| hash(id));
        let want: BTreeSet<String> = sorted[..hashed.len().max(4.min(n / 2))]
            .iter()
            .map(|id| id.to_string())
            .collect();
        assert_eq!(get(by_minimum, "validation"), want, "{name}");
        assert_eq!(
            with_minimum["sources"][name]["validation"]["documents"],
            want.len(),
            "{name}: the manifest counts them"
        );
    }
}

/// The tokens of each source in a version, both splits together.
fn source_tokens(root: &Path) -> BTreeMap<String, u64> {
    let m = version_manifest(root, &latest(root));
    m["sources"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, s)| {
            let tokens = ["train", "validation"]
                .iter()
                .filter_map(|split| s.get(split).map(|s| s["tokens"].as_u64().unwrap()))
                .sum();
            (name.clone(), tokens)
        })
        .collect()
}

#[test]
fn a_tokenizer_files_truncation_and_padding_are_ignored_with_a_warning() {
    let sources = [("news", "news_bbc.jsonl.zst")];
    let mut tokens = Vec::new();
    for (name, settings) in [
        ("plain", serde_json::json!({})),
        (
            "for-a-model",
            serde_json::json!({
                "truncation": {"direction": "Right", "max_length": 8,
                    "strategy": "LongestFirst", "stride": 0},
                "padding": {"strategy": {"Fixed": 4096}, "direction": "Right",
                    "pad_to_multiple_of": null, "pad_id": 1, "pad_type_id": 0,
                    "pad_token": "<|padding|>"}
            }),
        ),
    ] {
        let dir = scratch(&format!("tokenize-{name}"));
        write_inputs(dir.path(), &sources, 20);
        let mut json: Value = serde_json::from_slice(&std::fs::read(olmo()).unwrap()).unwrap();
        for (key, value) in settings.as_object().unwrap() {
            json[key] = value.clone();
        }
        let file = dir.path().join("tokenizer.json");
        std::fs::write(&file, json.to_string()).unwrap();
        let config = write_config(
            dir.path(),
            &sources,
            "",
            &format!("tokenizer = \"{}\"\n", file.display()),
        );
        let out = run(&["run", config.to_str().unwrap()]);
        let (_, stderr) = texts(&out);
        assert!(out.status.success(), "{stderr}");
        let warned = [
            "sets truncation (max_length 8): ignored, documents are tokenized whole",
            "sets padding (Fixed(4096)): ignored",
        ]
        .map(|w| stderr.contains(w));
        assert_eq!(warned, [name != "plain"; 2], "{name}: {stderr}");
        tokens.push(source_tokens(&dir.path().join("tokens")));
    }
    // Longer than the file's truncation (8 tokens and the end-of-document one) allows.
    assert!(tokens[0]["news"] > 20 * 9, "{tokens:?}");
    assert_eq!(
        tokens[0], tokens[1],
        "documents are tokenized whole either way"
    );
}

/// A tokenizer file the run cannot use fails `refinery validate` with the config line, and
/// `refinery run` before any stage, naming the token to set.
#[test]
fn a_tokenizer_without_the_end_of_document_token_fails_before_the_stages() {
    let sources = [("wiki", "wiki_en.jsonl.zst")];
    let dir = scratch("tokenize-no-eod");
    write_inputs(dir.path(), &sources, 20);
    let tokenize = format!("tokenizer = \"{}\"\neod = \"</s>\"\n", olmo().display());
    let config = write_config(dir.path(), &sources, "", &tokenize);
    let expected = "the end-of-document token `</s>` is not in its vocabulary; set `eod` in \
                    [tokenize] to one of its special tokens: `<|endoftext|>`";

    let validate = run(&["validate", config.to_str().unwrap()]);
    let (_, stderr) = texts(&validate);
    assert_eq!(validate.status.code(), Some(2), "{stderr}");
    let line = std::fs::read_to_string(&config)
        .unwrap()
        .lines()
        .position(|l| l == "[tokenize]")
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!("line {line}: tokenize.tokenizer: ")),
        "{stderr}"
    );
    assert!(stderr.contains(expected), "{stderr}");

    let out = run(&["run", config.to_str().unwrap()]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    // Besides the lock every run takes on its folder.
    let mut written: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(
        written,
        ["_lock", "runs"],
        "only the failed run is recorded"
    );
}
