//! Reading from a real S3-compatible server (moto on 127.0.0.1, started here).

use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use arrow::record_batch::RecordBatch;
use tests::{S3Server, corpus, manifest, read_parquet, refinery, scratch, strings, texts};

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
    server.put("corpus", "tables/part-0.parquet", &parquet_bytes(&docs));

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
    let input = &m["inputs"][0];
    assert_eq!(
        input["xxh3"].as_str().unwrap(),
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&news)),
        "fingerprint of the raw object"
    );
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
