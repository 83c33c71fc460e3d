//! Dedup engine tests: survivors, explanations, accuracy on planted pairs, spilling, thread
//! independence and cross-version dedup, each through observe → prepare → process.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use dedup::jaccard::jaccard;
use dedup::shingle::{Shingling, shingle_set};

use crate::ingest::batch::DocBatchBuilder;
use crate::output::part::{PartInfo, read_part};
use crate::stage::{PassContext, Rejection, Stage, StageError};
use crate::stages::StageConfig;

/// A batch of (source, text) documents; locators are their positions.
fn batch(docs: &[(&str, String)]) -> RecordBatch {
    let mut b = DocBatchBuilder::default();
    for (i, (source, text)) in docs.iter().enumerate() {
        b.push(
            source,
            "file:///x.jsonl",
            &(i + 1).to_string(),
            None,
            text,
            "{}",
        );
    }
    b.finish().unwrap()
}

/// What one run of a stage decided.
struct Outcome {
    /// Dropped documents by id.
    dropped: HashMap<String, Rejection>,
    /// `clusters` table rows: (cluster, id, role).
    clusters: Vec<(String, String, String)>,
    /// Bytes of the clusters table.
    clusters_bytes: Vec<u8>,
}

/// Builds the stage of `toml`, observes `batches` and prepares; returns the stage and what
/// `prepare` returned.
fn observe_and_prepare(
    toml: &str,
    batches: &[RecordBatch],
    out: &Path,
) -> (Arc<dyn Stage>, Result<Vec<PartInfo>, StageError>) {
    observe_and_prepare_via(toml, batches, out, false)
}

/// The first pass's summary of `batch`, written to Parquet and read back, as a task writes it
/// and the preparing process reads it.
fn summary_through_parquet(stage: &dyn Stage, batch: &RecordBatch) -> Vec<RecordBatch> {
    let summary = stage.summarize(batch).unwrap().expect("dedup summarizes");
    let mut bytes = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut bytes, summary.schema(), None).unwrap();
    writer.write(&summary).unwrap();
    writer.close().unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(
        bytes::Bytes::from(bytes),
        100,
    )
    .unwrap();
    reader.map(Result::unwrap).collect()
}

/// [`observe_and_prepare`], observing the texts, or with `summaries` the batches' first-pass
/// summaries through Parquet.
fn observe_and_prepare_via(
    toml: &str,
    batches: &[RecordBatch],
    out: &Path,
    summaries: bool,
) -> (Arc<dyn Stage>, Result<Vec<PartInfo>, StageError>) {
    let cfg: StageConfig = toml::from_str(toml).unwrap();
    assert!(cfg.check().is_empty(), "{:?}", cfg.check());
    let stage = cfg.build().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ctx = PassContext {
        out,
        handle: rt.handle(),
    };
    for b in batches {
        if summaries {
            for summary in summary_through_parquet(stage.as_ref(), b) {
                stage.observe_summary(&summary, &ctx).unwrap();
            }
        } else {
            stage.observe(b, &ctx).unwrap();
        }
    }
    let prepared = stage.prepare(&ctx);
    (stage, prepared)
}

fn run(toml: &str, batches: &[RecordBatch], out: &Path) -> Outcome {
    run_via(toml, batches, out, false)
}

/// [`run`], observing the batches' first-pass summaries (through Parquet) with `summaries`.
fn run_via(toml: &str, batches: &[RecordBatch], out: &Path, summaries: bool) -> Outcome {
    let (stage, prepared) = observe_and_prepare_via(toml, batches, out, summaries);
    let tables = prepared.unwrap();
    assert!(
        !out.join("_work").join(stage.name()).exists(),
        "scratch removed"
    );
    let mut dropped = HashMap::new();
    for b in batches {
        let result = stage.process(b).unwrap();
        assert_eq!(result.kept.num_rows() + result.rejected.len(), b.num_rows());
        let ids = b.column_by_name("id").unwrap().as_string::<i32>();
        for r in result.rejected {
            dropped.insert(ids.value(r.row).to_string(), r);
        }
    }
    // The same stage built afresh, restoring the preparation from its tables (as a task of a
    // partitioned run does), decides every document the same way.
    let restored = toml::from_str::<StageConfig>(toml)
        .unwrap()
        .build()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ctx = PassContext {
        out,
        handle: rt.handle(),
    };
    assert!(restored.restore(&ctx).unwrap());
    for b in batches {
        let (again, first) = (restored.process(b).unwrap(), stage.process(b).unwrap());
        assert_eq!(again.rejected, first.rejected);
        assert_eq!(again.kept, first.kept);
    }
    let path = out.join(&tables[0].path);
    let mut clusters = Vec::new();
    for b in read_part(&path, 1024).unwrap() {
        let b = b.unwrap();
        let col = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
        let (c, i, r) = (col("cluster"), col("id"), col("role"));
        for k in 0..b.num_rows() {
            clusters.push((c.value(k).into(), i.value(k).into(), r.value(k).into()));
        }
    }
    Outcome {
        dropped,
        clusters,
        clusters_bytes: std::fs::read(path).unwrap(),
    }
}

fn ids(b: &RecordBatch) -> Vec<String> {
    let c = b.column_by_name("id").unwrap().as_string::<i32>();
    c.iter().map(|v| v.unwrap().to_string()).collect()
}

#[test]
fn exact_duplicates_keep_the_priority_source_and_explain_every_drop() {
    let text = "the same text".to_string();
    let b = batch(&[
        ("a", text.clone()),
        ("b", text.clone()),
        ("c", text.clone()),
        ("a", "something else".into()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        "type = 'exact_dedup'\npriority = ['c', 'b']",
        std::slice::from_ref(&b),
        dir.path(),
    );
    let id = ids(&b);
    assert_eq!(out.dropped.len(), 2);
    let cluster = id[..3].iter().min().unwrap();
    for dropped in [&id[0], &id[1]] {
        let r = &out.dropped[dropped];
        assert_eq!(r.verdict.rule, "exact_duplicate");
        let d = r.duplicate.as_ref().unwrap();
        assert_eq!(&d.survivor, &id[2], "source c is first in priority");
        assert_eq!(&d.cluster, cluster);
    }
    let roles: Vec<&str> = out.clusters.iter().map(|c| c.2.as_str()).collect();
    assert_eq!(roles, ["kept", "dropped", "dropped"]);
    assert_eq!(out.clusters[0].1, id[2]);

    // Without priority the oldest survives: the first line of the first file.
    let later = batch(&[
        ("z", "x y".into()),
        ("a", "other".into()),
        ("a", "x y".into()),
    ]);
    let out = run(
        "type = 'exact_dedup'",
        std::slice::from_ref(&later),
        &dir.path().join("2"),
    );
    let id = ids(&later);
    assert_eq!(
        out.dropped[&id[2]].duplicate.as_ref().unwrap().survivor,
        id[0]
    );
}

/// A deterministic pseudo-random word generator.
struct Words(u64);

impl Words {
    fn next(&mut self) -> String {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Letters only: shingling writes every number as 0.
        let mut n = (self.0 >> 33) % 50_000;
        let mut word = String::from("w");
        while n > 0 {
            word.push((b'a' + (n % 26) as u8) as char);
            n /= 26;
        }
        word
    }
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Base documents of 300 words and one variant each with a share of words replaced; returns
/// the batch and the pairs (base row, variant row, true Jaccard of their 5-gram sets).
fn planted(pairs: usize, seed: u64) -> (RecordBatch, Vec<(usize, usize, f64)>) {
    let mut w = Words(seed);
    let mut docs = Vec::new();
    let mut planted = Vec::new();
    for p in 0..pairs {
        let base: Vec<String> = (0..300).map(|_| w.next()).collect();
        let mut variant = base.clone();
        // Replace 0–20% of the words: Jaccard from 1 down to about 0.35.
        let changes = (p % 21) * 3;
        for _ in 0..changes {
            let at = w.below(variant.len());
            variant[at] = w.next();
        }
        let (a, b) = (base.join(" "), variant.join(" "));
        let j = jaccard(
            &shingle_set(&a, Shingling::Words(5)),
            &shingle_set(&b, Shingling::Words(5)),
        );
        planted.push((docs.len(), docs.len() + 1, j));
        docs.push(("s", a));
        docs.push(("s", b));
    }
    (batch(&docs), planted)
}

/// Whether each planted pair ended in one cluster.
fn merged(out: &Outcome, b: &RecordBatch, pairs: &[(usize, usize, f64)]) -> Vec<(f64, bool)> {
    let id = ids(b);
    let cluster_of: HashMap<&str, &str> = out
        .clusters
        .iter()
        .map(|(c, i, _)| (i.as_str(), c.as_str()))
        .collect();
    pairs
        .iter()
        .map(|&(x, y, j)| {
            let same = matches!((cluster_of.get(id[x].as_str()), cluster_of.get(id[y].as_str())),
                (Some(a), Some(b)) if a == b);
            (j, same)
        })
        .collect()
}

#[test]
fn planted_pairs_recall_and_precision_at_the_default_setting() {
    let (b, pairs) = planted(2100, 7);
    for scheme in ["refinery", "datatrove"] {
        let dir = tempfile::tempdir().unwrap();
        let config = format!("type = 'minhash_dedup'\nscheme = '{scheme}'");
        let out = run(&config, std::slice::from_ref(&b), dir.path());
        check_planted(&out, &b, &pairs);
    }
}

/// Recall ≥ 0.95 at Jaccard ≥ 0.9, ≤ 1 % merged at Jaccard ≤ 0.5, and every drop explained.
fn check_planted(out: &Outcome, b: &RecordBatch, pairs: &[(usize, usize, f64)]) {
    let result = merged(out, b, pairs);
    let share = |keep: &dyn Fn(f64) -> bool| {
        let sel: Vec<bool> = result
            .iter()
            .filter(|(j, _)| keep(*j))
            .map(|r| r.1)
            .collect();
        assert!(sel.len() >= 100, "enough pairs in the band: {}", sel.len());
        sel.iter().filter(|&&m| m).count() as f64 / sel.len() as f64
    };
    let recall = share(&|j| j >= 0.9);
    let false_merges = share(&|j| j <= 0.5);
    assert!(recall >= 0.95, "recall at J >= 0.9: {recall}");
    assert!(false_merges <= 0.01, "merged at J <= 0.5: {false_merges}");
    // Every drop names its survivor and an estimated Jaccard near the truth.
    for (x, y, j) in pairs {
        let id = ids(b);
        if let Some(r) = out.dropped.get(&id[*y]).or(out.dropped.get(&id[*x])) {
            assert_eq!(r.verdict.rule, "near_duplicate");
            assert!(
                (r.verdict.value - j).abs() < 0.2,
                "estimate {} for {j}",
                r.verdict.value
            );
        }
    }
}

#[test]
fn verify_merges_no_pair_below_the_threshold() {
    let (b, pairs) = planted(1000, 11);
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        "type = 'minhash_dedup'\nbands = 20\nrows = 4\nthreshold = 0.7\nverify = true",
        std::slice::from_ref(&b),
        dir.path(),
    );
    let result = merged(&out, &b, &pairs);
    assert!(
        result.iter().all(|&(j, m)| !m || j >= 0.7),
        "a pair below 0.7 was merged"
    );
    let high: Vec<bool> = result.iter().filter(|r| r.0 >= 0.9).map(|r| r.1).collect();
    assert!(
        high.len() > 50 && high.iter().all(|&m| m),
        "pairs at J >= 0.9 all merged"
    );
    for r in out.dropped.values() {
        assert!(
            r.verdict.value >= 0.7,
            "verified Jaccard {}",
            r.verdict.value
        );
    }
}

#[test]
fn observing_summaries_read_back_from_parquet_decides_as_observing_the_texts() {
    let (b, _) = planted(600, 17);
    let mut batches: Vec<RecordBatch> = (0..3).map(|i| b.slice(i * 400, 400)).collect();
    // Exact copies of every fifth text, for exact_dedup.
    let texts = b.column_by_name("text").unwrap().as_string::<i32>();
    let copies: Vec<(&str, String)> = (0..100)
        .map(|i| ("copies", texts.value(i * 5).to_string()))
        .collect();
    batches.push(batch(&copies));
    let dir = tempfile::tempdir().unwrap();
    for (name, toml) in [
        ("exact", "type = 'exact_dedup'"),
        ("minhash", "type = 'minhash_dedup'"),
        (
            "verify",
            "type = 'minhash_dedup'\nthreshold = 0.7\nverify = true",
        ),
        ("chars", "type = 'minhash_dedup'\nshingle = 'chars'"),
        ("datatrove", "type = 'minhash_dedup'\nscheme = 'datatrove'"),
    ] {
        let texts = run(toml, &batches, &dir.path().join(name));
        let summaries = run_via(toml, &batches, &dir.path().join(format!("{name}-s")), true);
        assert!(
            !texts.dropped.is_empty(),
            "{name}: no duplicates to compare"
        );
        assert_eq!(summaries.clusters_bytes, texts.clusters_bytes, "{name}");
        assert_eq!(summaries.dropped, texts.dropped, "{name}");
    }
}

#[test]
fn a_tiny_memory_budget_and_any_thread_count_give_the_same_result() {
    let (b, _) = planted(3000, 5);
    let batches: Vec<RecordBatch> = (0..6).map(|i| b.slice(i * 1000, 1000)).collect();
    let dir = tempfile::tempdir().unwrap();
    let reference = run("type = 'minhash_dedup'", &batches, &dir.path().join("a"));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let tiny = pool.install(|| {
        run(
            "type = 'minhash_dedup'\nmemory_budget = '1MiB'",
            &batches,
            &dir.path().join("b"),
        )
    });
    assert!(!reference.dropped.is_empty());
    assert_eq!(tiny.clusters_bytes, reference.clusters_bytes);
    let keys = |o: &Outcome| o.dropped.keys().cloned().collect::<HashSet<_>>();
    assert_eq!(keys(&tiny), keys(&reference));
}

#[test]
fn a_later_run_drops_duplicates_of_what_an_earlier_run_kept() {
    let mut w = Words(3);
    let texts: Vec<String> = (0..4)
        .map(|_| (0..200).map(|_| w.next()).collect::<Vec<_>>().join(" "))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let first = batch(&[("old", texts[0].clone()), ("old", texts[1].clone())]);
    run(
        "type = 'minhash_dedup'",
        std::slice::from_ref(&first),
        &dir.path().join("v1"),
    );
    // The new run holds a copy of an old text (with one word changed), a new text twice, and a
    // fresh one.
    let near = texts[1].replacen('w', "x", 1);
    let second = batch(&[
        ("new", near),
        ("new", texts[2].clone()),
        ("new", texts[2].clone()),
        ("new", texts[3].clone()),
    ]);
    let cfg = format!(
        "type = 'minhash_dedup'\nagainst = '{}'",
        dir.path().join("v1").display()
    );
    let out = run(&cfg, std::slice::from_ref(&second), &dir.path().join("v2"));
    let (old, new) = (ids(&first), ids(&second));
    assert_eq!(out.dropped.len(), 2);
    let d = out.dropped[&new[0]].duplicate.as_ref().unwrap();
    assert_eq!(d.survivor, old[1], "the earlier run's document wins");
    assert!(out.dropped.contains_key(&new[2]) || out.dropped.contains_key(&new[1]));
    assert!(out.clusters.iter().any(|c| c.1 == old[1] && c.2 == "kept"));

    // A third run against the second also knows the first run's documents.
    let third = batch(&[("newer", texts[0].clone())]);
    let cfg = format!(
        "type = 'minhash_dedup'\nagainst = '{}'",
        dir.path().join("v2").display()
    );
    let out = run(&cfg, std::slice::from_ref(&third), &dir.path().join("v3"));
    assert_eq!(
        out.dropped[&ids(&third)[0]]
            .duplicate
            .as_ref()
            .unwrap()
            .survivor,
        old[0]
    );

    // A folder without this stage's index is refused, naming what is there.
    let v1 = dir.path().join("v1");
    let refused = |toml: String, out: &str| -> String {
        let (_, prepared) =
            observe_and_prepare(&toml, std::slice::from_ref(&third), &dir.path().join(out));
        prepared.err().unwrap().to_string()
    };
    let err = refused(
        format!(
            "type = 'minhash_dedup'\nname = 'other'\nagainst = '{}'",
            v1.display()
        ),
        "v5",
    );
    assert!(
        err.contains("no index for stage `other`") && err.contains("minhash_dedup.parquet"),
        "{err}"
    );

    // An index from other settings is refused with a clear message.
    let err = refused(
        format!(
            "type = 'minhash_dedup'\nbands = 10\nrows = 10\nagainst = '{}'",
            v1.display()
        ),
        "v4",
    );
    assert!(
        err.contains("was built with") && err.contains("bands=14"),
        "{err}"
    );
}
