//! Reading from a real S3-compatible server (moto on 127.0.0.1, started here).

use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use arrow::record_batch::RecordBatch;
use tests::{
    S3Server, corpus, manifest, read_parquet, refinery, report_query_args, report_section, scratch,
    strings, texts,
};

fn parquet_bytes(texts: &[String]) -> Vec<u8> {
    let titles: Vec<String> = (0..texts.len()).map(|i| format!("t{i}")).collect();
    let batch = RecordBatch::try_from_iter([
        (
            "text",
            Arc::new(StringArray::from(texts.to_vec())) as ArrayRef,
        ),
        ("title", Arc::new(StringArray::from(titles)) as ArrayRef),
    ])
    .unwrap();
    let mut out = Vec::new();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(100))
        .build();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

fn run_with(server: &S3Server, config: &std::path::Path, strict: bool) -> std::process::Output {
    let mut args = vec!["run", config.to_str().unwrap()];
    if strict {
        args.insert(1, "--strict");
    }
    refinery(&args).envs(server.env()).output().unwrap()
}

#[test]
fn reads_jsonl_zst_and_parquet_from_s3_by_prefix_and_glob() {
    let server = S3Server::start();
    server.create_bucket("corpus");
    let news = std::fs::read(corpus("news_bbc.jsonl.zst")).unwrap();
    server.put("corpus", "raw/news.jsonl.zst", &news);
    let docs: Vec<String> = (0..1000)
        .map(|i| format!("parquet document {i} read from a bucket"))
        .collect();
    let table = parquet_bytes(&docs);
    server.put("corpus", "tables/part-0.parquet", &table);

    let dir = scratch("s3-read");
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[[sources]]\nname = \"news\"\npaths = [\"s3://corpus/raw/\"]\n\n[[sources]]\nname = \"tables\"\npaths = [\"s3://corpus/tables/*.parquet\"]\n\n[output]\npath = \"out\"\n").unwrap();
    let out = run_with(&server, &config, false);
    assert!(out.status.success(), "{}", texts(&out).1);

    let m = manifest(&dir.path().join("out"));
    let sources = m["accounting"]["sources"].as_array().unwrap();
    assert_eq!(
        sources[0]["documents"].as_u64(),
        Some(2225),
        "every BBC article read from S3"
    );
    assert_eq!(sources[1]["documents"].as_u64(), Some(1000));
    let kept = read_parquet(&dir.path().join("out/ingest"));
    let uris = strings(&kept, "uri");
    assert!(
        uris.iter().any(|u| u == "s3://corpus/raw/news.jsonl.zst")
            && uris
                .iter()
                .any(|u| u == "s3://corpus/tables/part-0.parquet")
    );
    let parquet_texts: Vec<String> = strings(&kept, "text")
        .into_iter()
        .filter(|t| t.starts_with("parquet document"))
        .collect();
    assert_eq!(
        parquet_texts, docs,
        "Parquet rows in order, across row groups"
    );
    for (input, bytes) in m["inputs"].as_array().unwrap().iter().zip([&news, &table]) {
        assert_eq!(
            input["xxh3"].as_str(),
            Some(format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes)).as_str()),
            "fingerprint of the raw object {input}"
        );
    }
}

#[test]
fn a_bucket_that_does_not_exist_is_quarantined_and_strict_stops() {
    let server = S3Server::start();
    let dir = scratch("s3-missing");
    std::fs::write(
        dir.path().join("good.jsonl"),
        "{\"text\":\"one good document\"}\n",
    )
    .unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[[sources]]\nname = \"s\"\npaths = [\"s3://no-such-bucket/corpus/\", \"good.jsonl\"]\n\n[output]\npath = \"out\"\n").unwrap();
    let out = run_with(&server, &config, false);
    let (_, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("s3://no-such-bucket/corpus/")
            && stderr.contains("ingest.unreachable_input"),
        "{stderr}"
    );
    let q = read_parquet(&dir.path().join("out/quarantine/inputs.parquet"));
    assert_eq!(strings(&q, "reason"), ["ingest.unreachable_input"]);
    assert!(
        strings(&q, "detail")[0].contains("NoSuchBucket")
            || strings(&q, "detail")[0].contains("bucket"),
        "{:?}",
        strings(&q, "detail")
    );
    assert_eq!(
        manifest(&dir.path().join("out"))["accounting"]["sources"][0]["documents"].as_u64(),
        Some(1)
    );

    let strict = run_with(&server, &config, true);
    assert_eq!(strict.status.code(), Some(3), "{}", texts(&strict).1);
    assert!(texts(&strict).1.contains("no-such-bucket"));
}

/// A run over `n` real news articles that tokenizes into `s3://tokens/ds` with `tokenizer`
/// (a path or URL).
fn tokens_to_s3_config(
    dir: &std::path::Path,
    n: usize,
    shard_tokens: u64,
    tokenizer: &str,
) -> std::path::PathBuf {
    tests::write_jsonl(
        &dir.join("news.jsonl"),
        &tests::corpus_records("news_bbc.jsonl.zst", n),
    );
    let config = dir.join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\nname = \"news\"\npaths = [\"news.jsonl\"]\n\n[output]\npath = \"out\"\n\n\
             [tokenize]\nroot = \"s3://tokens/ds\"\ntokenizer = \"{tokenizer}\"\nshard_tokens = {shard_tokens}\n"
        ),
    )
    .unwrap();
    config
}

/// How many shards the manifest of version `id` in `s3://tokens/ds` lists.
fn m_shards(server: &S3Server, id: &str) -> usize {
    let manifest = server.get("tokens", &format!("ds/versions/{id}/manifest.json"));
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    m["shards"].as_array().unwrap().len()
}

#[test]
fn a_token_version_round_trips_through_s3_and_a_corrupted_shard_is_named() {
    let server = S3Server::start();
    server.create_bucket("tokens");
    let dir = scratch("s3-tokens");
    // The tokenizer is read from the bucket too.
    server.put(
        "tokens",
        "olmo/tokenizer.json",
        &std::fs::read(crate::tokenize::olmo()).unwrap(),
    );
    let config = tokens_to_s3_config(dir.path(), 300, 20_000, "s3://tokens/olmo/tokenizer.json");
    let out = run_with(&server, &config, false);
    assert!(out.status.success(), "{}", texts(&out).1);
    let id = String::from_utf8(server.get("tokens", "ds/latest")).unwrap();
    let id = id.trim();
    let keys = server.keys("tokens", &format!("ds/versions/{id}/"));
    assert!(
        keys.iter().any(|k| k.ends_with("manifest.json")),
        "{keys:?}"
    );
    let secret = "testing";
    let manifest =
        String::from_utf8(server.get("tokens", &format!("ds/versions/{id}/manifest.json")))
            .unwrap();
    assert!(
        !manifest.contains(secret),
        "credentials never reach a manifest"
    );

    let cache = dir.path().join("cache");
    let verify = |cached: bool| {
        let mut args = vec!["versions", "verify", "s3://tokens/ds"];
        if cached {
            args.extend(["--cache-dir", cache.to_str().unwrap()]);
        }
        refinery(&args).envs(server.env()).output().unwrap()
    };
    let ok = verify(false);
    assert!(ok.status.success(), "{}", texts(&ok).1);
    assert!(texts(&ok).0.contains("is intact"));
    let filled = verify(true);
    assert!(filled.status.success(), "{}", texts(&filled).1);
    let cached = std::fs::read_dir(&cache).unwrap().count();
    assert_eq!(
        cached,
        m_shards(&server, id),
        "every shard kept in the cache folder"
    );
    let list = refinery(&["versions", "list", "s3://tokens/ds"])
        .envs(server.env())
        .output()
        .unwrap();
    assert!(texts(&list).0.contains(id), "{}", texts(&list).0);

    // Flip one byte of the second shard in the bucket.
    let key = format!("ds/versions/{id}/train/news/000001.bin");
    let mut bytes = server.get("tokens", &key);
    bytes[2000] ^= 0x55;
    server.put("tokens", &key, &bytes);
    // The cache holds the intact copy, checked against the manifest: it is served, not refetched.
    let from_cache = verify(true);
    assert!(from_cache.status.success(), "{}", texts(&from_cache).1);
    let bad = verify(false);
    let (_, stderr) = texts(&bad);
    assert!(!bad.status.success());
    let m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let expected = m["shards"][1]["checksum"].as_str().unwrap();
    let actual = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
    assert!(
        stderr.contains(&format!(
            "s3://tokens/ds/versions/{id}/train/news/000001.bin"
        )) && stderr.contains(expected)
            && stderr.contains(&actual),
        "{stderr}"
    );
}

#[test]
fn a_server_stopped_mid_upload_leaves_no_manifest_and_a_rerun_completes() {
    let server = S3Server::start();
    server.create_bucket("tokens");
    let dir = scratch("s3-stopped");
    let config = tokens_to_s3_config(
        dir.path(),
        1500,
        1_000,
        crate::tokenize::olmo().to_str().unwrap(),
    );
    let mut child = refinery(&["run", config.to_str().unwrap()])
        .envs(server.env())
        .env("AWS_TIMEOUT", "1s")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !server
        .keys("tokens", "ds/versions/")
        .iter()
        .any(|k| k.ends_with(".bin"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no shard was ever uploaded"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before the server stopped"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    server.pause();
    let out = child.wait_with_output().unwrap();
    server.resume();
    let (_, stderr) = texts(&out);
    assert!(
        !out.status.success(),
        "the upload cannot succeed against a stopped server"
    );
    assert!(
        stderr.contains("s3://tokens/ds"),
        "the failed request is named: {stderr}"
    );
    let keys = server.keys("tokens", "ds/");
    assert!(
        keys.iter().any(|k| k.ends_with(".bin")),
        "shards were being written"
    );
    assert!(
        !keys
            .iter()
            .any(|k| k.ends_with("manifest.json") || k == "ds/latest"),
        "no manifest and no latest ref after a failed write: {keys:?}"
    );

    let rerun = run_with(&server, &config, false);
    assert!(rerun.status.success(), "{}", texts(&rerun).1);
    let verify = refinery(&["versions", "verify", "s3://tokens/ds"])
        .envs(server.env())
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", texts(&verify).1);
}

/// The sum of one field over the shards of a version's manifest.
fn shard_total(manifest: &serde_json::Value, field: &str) -> u64 {
    let shards = manifest["shards"].as_array().unwrap();
    shards.iter().map(|s| s[field].as_u64().unwrap()).sum()
}

/// The shard bytes in the memory estimate a `train --log-format json` run logged.
fn shard_bytes_estimated(trained: &std::process::Output) -> u64 {
    let stderr = texts(trained).1;
    let line = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| {
            let message = l["fields"]["message"].as_str().unwrap_or("");
            message.starts_with("peak memory estimate")
        })
        .unwrap_or_else(|| panic!("no memory estimate logged: {stderr}"));
    line["fields"]["shard_bytes"].as_u64().unwrap()
}

#[test]
fn training_reads_its_version_from_s3_and_pins_it_in_the_checkpoint() {
    let server = S3Server::start();
    server.create_bucket("tokens");
    let dir = scratch("s3-train");
    let config = tokens_to_s3_config(
        dir.path(),
        60,
        20_000,
        crate::tokenize::olmo().to_str().unwrap(),
    );
    let out = run_with(&server, &config, false);
    assert!(out.status.success(), "{}", texts(&out).1);
    let id = String::from_utf8(server.get("tokens", "ds/latest")).unwrap();
    let id = id.trim();

    let train = dir.path().join("train.toml");
    std::fs::write(
        &train,
        "[data]\nroot = \"s3://tokens/ds\"\nseq_len = 32\ncache_dir = \"cache\"\n\
         [model]\nlayers = 1\nheads = 2\nwidth = 32\ncontext = 32\n\
         [train]\nsteps = 3\nbatch_size = 2\neval_windows = 2\nout = \"train\"\ndevice = \"cpu\"\n",
    )
    .unwrap();
    let trained = refinery(&["train", train.to_str().unwrap(), "--log-format", "json"])
        .envs(server.env())
        .output()
        .unwrap();
    assert!(trained.status.success(), "{}", texts(&trained).1);
    assert_eq!(shard_bytes_estimated(&trained), 0, "shards go to the cache");
    let checkpoint = dir.path().join("train/checkpoints/step-000003");
    let lineage: serde_json::Value =
        serde_json::from_slice(&std::fs::read(checkpoint.join("lineage.json")).unwrap()).unwrap();
    assert_eq!(lineage["root"], "s3://tokens/ds");
    assert_eq!(lineage["version"].as_str(), Some(id));
    let manifest_bytes = server.get("tokens", &format!("ds/versions/{id}/manifest.json"));
    assert_eq!(
        lineage["manifest_checksum"].as_str().unwrap(),
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&manifest_bytes))
    );
    assert_eq!(lineage["sources"]["news"]["tokens"], 3 * 2 * 32);
    // The tokenizer travels from the bucket into the checkpoint; fetched shards into the cache.
    assert_eq!(
        std::fs::read(checkpoint.join("tokenizer.json")).unwrap(),
        std::fs::read(crate::tokenize::olmo()).unwrap()
    );
    assert!(std::fs::read_dir(dir.path().join("cache")).unwrap().count() > 0);
    // Without a cache folder the shards are held in memory, and the memory check counts them.
    let uncached = dir.path().join("uncached.toml");
    let text = std::fs::read_to_string(&train).unwrap();
    let text = text
        .replace("cache_dir = \"cache\"\n", "")
        .replace("\"train\"", "\"uncached\"");
    std::fs::write(&uncached, text).unwrap();
    let trained = refinery(&["train", uncached.to_str().unwrap(), "--log-format", "json"])
        .envs(server.env())
        .output()
        .unwrap();
    assert!(trained.status.success(), "{}", texts(&trained).1);
    let m: serde_json::Value = serde_json::from_slice(&manifest_bytes).unwrap();
    let version_bytes = shard_total(&m, "bytes");
    assert!(version_bytes > 0);
    assert_eq!(shard_bytes_estimated(&trained), version_bytes);

    // Lineage follows the checkpoint into the bucket (shard indexes read by DataFusion from S3)
    // and back to the local run folder.
    let out = dir.path().join("out");
    let dataset = manifest(&out)["datasets"][0].as_str().unwrap().to_string();
    let ids = refinery(&[
        "query",
        "--format",
        "json",
        "--dir",
        out.to_str().unwrap(),
        &format!("SELECT id, text FROM \"{dataset}\" ORDER BY id LIMIT 20"),
    ])
    .output()
    .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&ids.stdout).unwrap();
    // The first record of the train split (which records are held out depends on their ids).
    let t = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let traced = refinery(&[
                "lineage",
                "trace",
                row["id"].as_str().unwrap(),
                "--from",
                dir.path().join("train").to_str().unwrap(),
                "--format",
                "json",
            ])
            .envs(server.env())
            .output()
            .unwrap();
            assert!(traced.status.success(), "{}", texts(&traced).1);
            serde_json::from_slice::<serde_json::Value>(&traced.stdout).unwrap()
        })
        .find(|t| t["tokens"]["split"] == "train")
        .expect("one of 20 kept records is in the train split");
    assert_eq!(t["tokens"]["version"].as_str(), Some(id));
    assert_eq!(
        t["tokens"]["decodes_to_text"], true,
        "tokens fetched from the bucket decode to the text"
    );
    assert_eq!(t["training"][0]["replay_verified"], true);
    let report = dir.path().join("r.json");
    let reported = refinery(&[
        "lineage",
        "report",
        "s3://tokens/ds",
        "--json",
        report.to_str().unwrap(),
    ])
    .envs(server.env())
    .output()
    .unwrap();
    assert!(reported.status.success(), "{}", texts(&reported).1);
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let tokens = report_section(&r, "tokens");
    let total: u64 = tokens["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["tokens"].as_u64().unwrap())
        .sum();
    let expected = shard_total(&m, "tokens");
    assert_eq!(
        total, expected,
        "shard_docs read from S3 account for every token"
    );
    // The report's tables include `s3://` locations, and `refinery query` reads them too.
    let mut args = report_query_args(&r);
    assert!(
        args.iter().any(|a| a.starts_with("shard_docs=s3://")),
        "{args:?}"
    );
    args.push(tokens["sql"].as_str().unwrap().into());
    let rerun = refinery(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .envs(server.env())
        .output()
        .unwrap();
    assert!(rerun.status.success(), "{}", texts(&rerun).1);
    let rows: serde_json::Value = serde_json::from_slice(&rerun.stdout).unwrap();
    assert_eq!(
        rows, tokens["rows"],
        "the tokens section reruns from the bucket"
    );
}
