//! Runs on the real corpora: accounting against the data's own manifest, byte-identical outputs
//! for any thread count, and exact resume after the process is killed mid-run.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use parquet::basic::Compression;
use parquet::file::reader::{FileReader, SerializedFileReader};
use tests::{
    corpus, manifest, query_csv, read_parquet, refinery, run, scratch, shared_data, strings, texts,
    tree_bytes,
};

/// A config over real corpus files with normalize and a length filter.
fn real_config(dir: &Path, files: &[&str], threads: usize) -> std::path::PathBuf {
    let mut text = format!("[run]\nthreads = {threads}\nbatch_size = 500\n\n");
    for f in files {
        let name = f.split('.').next().unwrap();
        text += &format!(
            "[[sources]]\nname = \"{name}\"\npaths = [\"{}\"]\nid_field = \"id\"\n\n",
            corpus(f).display()
        );
    }
    text += "[[stages]]\ntype = \"normalize\"\n\n[[stages]]\ntype = \"length\"\nmin_words = 50\n\n";
    text += &format!("[output]\npath = \"{}\"\n", dir.join("out").display());
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn real_corpus_accounting_matches_the_data_manifest_and_reads_back() {
    let dir = scratch("real");
    let config = real_config(dir.path(), &["wiki_en.jsonl.zst", "news_bbc.jsonl.zst"], 2);
    let out = run(&["run", "--quiet", config.to_str().unwrap()]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("Run complete"), "{stdout}");

    let data: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shared_data().join("MANIFEST.json")).unwrap())
            .unwrap();
    let expected = |file: &str| -> u64 {
        let name = file.split('.').next().unwrap();
        data["corpus"][name]["records"]
            .as_u64()
            .unwrap_or_else(|| panic!("no record count for {name} in MANIFEST.json"))
    };
    let m = manifest(&dir.path().join("out"));
    let sources = m["accounting"]["sources"].as_array().unwrap();
    for (src, file) in sources
        .iter()
        .zip(["wiki_en.jsonl.zst", "news_bbc.jsonl.zst"])
    {
        assert_eq!(src["records"].as_u64(), Some(expected(file)), "{file}");
        assert_eq!(
            src["documents"].as_u64(),
            Some(expected(file)),
            "{file}: the real corpus has no bad records"
        );
    }
    let stages = m["accounting"]["stages"].as_array().unwrap();
    let length = &stages[1];
    let kept = read_parquet(&dir.path().join("out/length"));
    let rejects = read_parquet(&dir.path().join("out/rejects"));
    assert_eq!(
        kept.iter().map(|b| b.num_rows() as u64).sum::<u64>(),
        length["kept"].as_u64().unwrap()
    );
    assert_eq!(
        rejects.iter().map(|b| b.num_rows() as u64).sum::<u64>(),
        length["dropped"].as_u64().unwrap()
    );
    assert!(length["dropped"].as_u64().unwrap() > 0 && length["kept"].as_u64().unwrap() > 0);
    assert!(
        strings(&rejects, "rule")
            .iter()
            .all(|r| r == "length.min_words")
    );
    let ids = strings(&kept, "id");
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "document ids are unique");
    assert!(
        strings(&kept, "text")
            .iter()
            .all(|t| !t.contains('\r') && !t.ends_with('\n')),
        "normalized"
    );
    assert!(
        strings(&kept, "meta")
            .iter()
            .all(|m| m.contains("\"url\":\"pkg:")),
        "meta keeps the other fields"
    );
}

#[test]
fn outputs_are_byte_identical_for_any_thread_count() {
    let files = [
        "wiki_en.jsonl.zst",
        "manpages_en.jsonl.zst",
        "docs_python.jsonl.zst",
    ];
    let (a, b) = (scratch("threads-1"), scratch("threads-2"));
    for (dir, threads) in [(&a, 1), (&b, 2)] {
        let out = run(&[
            "run",
            "--quiet",
            real_config(dir.path(), &files, threads).to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", texts(&out).1);
    }
    let documents: u64 = manifest(&a.path().join("out"))["accounting"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["documents"].as_u64().unwrap())
        .sum();
    assert_eq!(
        documents,
        10_033 + 1_113 + 499,
        "every document of the three files"
    );
    assert_same_outputs(
        &a.path().join("out"),
        &b.path().join("out"),
        "1 and 2 threads",
    );
}

/// Asserts that two output folders hold the same files with the same bytes (`runs/` aside).
fn assert_same_outputs(a: &Path, b: &Path, what: &str) {
    let (ta, tb) = (tree_bytes(a), tree_bytes(b));
    assert_eq!(
        ta.iter().map(|f| &f.0).collect::<Vec<_>>(),
        tb.iter().map(|f| &f.0).collect::<Vec<_>>(),
        "files of {what}"
    );
    for ((name, x), (_, y)) in ta.iter().zip(&tb) {
        assert!(x == y, "{name} differs between {what}");
    }
}

/// The codec of every column chunk of every part in `dir`.
fn codecs(dir: &Path) -> Vec<Compression> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let reader =
            SerializedFileReader::new(std::fs::File::open(entry.unwrap().path()).unwrap()).unwrap();
        for group in reader.metadata().row_groups() {
            found.extend(group.columns().iter().map(|c| c.compression()));
        }
    }
    found
}

#[test]
fn output_codec_applies_to_datasets_only_and_changes_no_value() {
    let (zstd, lz4) = (scratch("codec-zstd"), scratch("codec-lz4"));
    for (dir, codec) in [(&zstd, None), (&lz4, Some("lz4_raw"))] {
        let config = real_config(dir.path(), &["news_bbc.jsonl.zst"], 2);
        if let Some(codec) = codec {
            let text = std::fs::read_to_string(&config).unwrap();
            std::fs::write(&config, format!("{text}compression = \"{codec}\"\n")).unwrap();
        }
        let out = run(&["run", "--quiet", config.to_str().unwrap()]);
        assert!(out.status.success(), "{}", texts(&out).1);
    }
    let (a, b) = (zstd.path().join("out"), lz4.path().join("out"));
    assert!(
        codecs(&a.join("length"))
            .iter()
            .all(|c| matches!(c, Compression::ZSTD(_)))
    );
    let dataset = codecs(&b.join("length"));
    assert!(!dataset.is_empty() && dataset.iter().all(|c| *c == Compression::LZ4_RAW));
    assert!(
        codecs(&b.join("decisions"))
            .iter()
            .all(|c| matches!(c, Compression::ZSTD(_)))
    );
    assert_eq!(
        read_parquet(&a.join("length")),
        read_parquet(&b.join("length"))
    );
    assert_eq!(
        tree_bytes(&a.join("decisions")),
        tree_bytes(&b.join("decisions"))
    );
    assert_ne!(manifest(&a)["config_hash"], manifest(&b)["config_hash"]);
    let count = "SELECT count(*) AS n FROM length";
    assert_eq!(
        query_csv(&a, count),
        query_csv(&b, count),
        "DataFusion reads both"
    );
}

#[test]
fn killed_run_resumes_to_byte_identical_outputs() {
    let files = [
        "wiki_en.jsonl.zst",
        "news_bbc.jsonl.zst",
        "manpages_en.jsonl.zst",
        "docs_python.jsonl.zst",
        "books_gutenberg.jsonl.zst",
    ];
    let (straight, resumed) = (scratch("straight"), scratch("resumed"));
    let out = run(&[
        "run",
        "--quiet",
        real_config(straight.path(), &files, 1).to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", texts(&out).1);

    let config = real_config(resumed.path(), &files, 1);
    let mut child = refinery(&["run", "--quiet", config.to_str().unwrap()])
        .spawn()
        .unwrap();
    let units = resumed.path().join("out/_units");
    let deadline = Instant::now() + Duration::from_secs(300);
    while std::fs::read_dir(&units).map_or(0, |d| d.count()) < 2 {
        assert!(Instant::now() < deadline, "no unit finished in time");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !resumed.path().join("out/_manifest.json").exists(),
        "killed before the manifest"
    );
    let done = std::fs::read_dir(&units).unwrap().count();
    assert!(
        done < files.len(),
        "killed mid-run: {done} of {} units done",
        files.len()
    );
    // Asked for its lineage, the folder says its run has not finished.
    let out_dir = resumed.path().join("out");
    let json = resumed.path().join("report.json");
    let early = run(&[
        "lineage",
        "report",
        out_dir.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let (_, stderr) = texts(&early);
    assert!(!early.status.success() && !json.exists());
    assert!(stderr.contains("the run has not finished"), "{stderr}");

    let again = refinery(&["run", config.to_str().unwrap()])
        .output()
        .unwrap();
    let (_, stderr) = texts(&again);
    assert!(again.status.success(), "{stderr}");
    assert!(
        stderr.contains("Resuming: "),
        "completed units must be skipped:\n{stderr}"
    );
    assert_same_outputs(
        &straight.path().join("out"),
        &resumed.path().join("out"),
        "a straight and a resumed run",
    );
}

/// Starts tasks `0/count` … of `config` at once; returns their standard outputs, in task order,
/// once each has succeeded.
fn run_tasks(config: &str, count: usize) -> Vec<String> {
    let children: Vec<_> = (0..count)
        .map(|i| {
            refinery(&["run", "--quiet", "--task", &format!("{i}/{count}"), config])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs = children.into_iter().map(|c| c.wait_with_output().unwrap());
    outputs
        .enumerate()
        .map(|(i, out)| {
            let (stdout, stderr) = texts(&out);
            assert!(out.status.success(), "task {i}/{count}: {stderr}");
            stdout
        })
        .collect()
}

#[test]
fn tasks_run_at_once_then_a_whole_run_equal_one_whole_run() {
    let files = [
        "wiki_en.jsonl.zst",
        "news_bbc.jsonl.zst",
        "manpages_en.jsonl.zst",
    ];
    let (whole, split) = (scratch("whole"), scratch("split"));
    // A two-pass stage too: the tasks stop before it and the finishing run does it.
    let config = |dir: &Path| {
        let path = real_config(dir, &files, 1);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text + "\n[[stages]]\ntype = \"exact_dedup\"\n").unwrap();
        path
    };
    let out = run(&["run", "--quiet", config(whole.path()).to_str().unwrap()]);
    assert!(out.status.success(), "{}", texts(&out).1);

    let config = config(split.path());
    let config = config.to_str().unwrap();
    let bad = run(&["run", "--task", "2/2", config]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a task outside 0..N is a usage error"
    );
    assert!(texts(&bad).1.contains("0 <= I < N"), "{}", texts(&bad).1);
    let tasks = run_tasks(config, 2);
    // Shared by size, largest first: manpages (1,463,246 bytes) to task 0, wiki (1,461,575) to
    // task 1, news (1,336,776) to task 1, which then holds fewer bytes.
    for (task, units, stdout) in [("0/2", 1, &tasks[0]), ("1/2", 2, &tasks[1])] {
        assert!(
            stdout.contains(&format!("Task {task} complete"))
                && stdout.contains(&format!(": {units} units (0 resumed)")),
            "{stdout}"
        );
        assert!(stdout.contains("through 2 of 3 stages"), "{stdout}");
    }
    let outdir = split.path().join("out");
    assert!(
        !outdir.join("_manifest.json").exists() && !outdir.join("exact_dedup").exists(),
        "tasks write no manifest and leave the two-pass stage to the finishing run"
    );
    assert_eq!(
        std::fs::read_dir(outdir.join("_units")).unwrap().count(),
        files.len(),
        "the tasks did every unit between them"
    );

    let stats = run(&["stats", outdir.to_str().unwrap()]);
    assert!(
        !stats.status.success() && texts(&stats).1.contains("the run has not finished"),
        "{}",
        texts(&stats).1
    );

    let finish = run(&["run", "--quiet", config]);
    let (stdout, stderr) = texts(&finish);
    assert!(finish.status.success(), "{stderr}");
    assert!(stdout.contains("3 units (3 resumed)"), "{stdout}");
    assert_same_outputs(
        &whole.path().join("out"),
        &outdir,
        "a whole run and two tasks plus a finishing run",
    );
}

#[test]
fn rounds_of_tasks_between_preparations_run_every_stage_and_equal_one_whole_run() {
    let files = [
        "wiki_en.jsonl.zst",
        "news_bbc.jsonl.zst",
        "manpages_en.jsonl.zst",
    ];
    let (whole, split) = (scratch("whole-rounds"), scratch("rounds"));
    // Three segments: [normalize, length], [exact_dedup, gopher_repetition],
    // [minhash_dedup, gopher_quality]; then the tokenize step, dropped documents counted.
    let config = |dir: &Path| {
        let path = real_config(dir, &files, 1);
        let mut text = std::fs::read_to_string(&path).unwrap();
        for stage in [
            "exact_dedup",
            "gopher_repetition",
            "minhash_dedup",
            "gopher_quality",
        ] {
            text += &format!("\n[[stages]]\ntype = \"{stage}\"\n");
        }
        text += &format!(
            "\n[tokenize]\nroot = \"{}\"\ntokenizer = \"{}\"\ncount_dropped_tokens = true\n",
            dir.join("tokens").display(),
            crate::tokenize::olmo().display()
        );
        std::fs::write(&path, text).unwrap();
        path
    };
    let out = run(&["run", "--quiet", config(whole.path()).to_str().unwrap()]);
    assert!(out.status.success(), "{}", texts(&out).1);

    let config = config(split.path());
    let config = config.to_str().unwrap();
    let both = run(&["run", "--prepare", "--task", "0/2", config]);
    assert_eq!(both.status.code(), Some(2), "--prepare is not for tasks");
    // Returns the log.
    let prepare = |expect: &str| {
        let out = run(&["run", "--prepare", config]);
        let (stdout, stderr) = texts(&out);
        assert!(out.status.success(), "{stderr}");
        assert!(stdout.contains(expect), "{stdout}");
        stderr
    };
    // Returns how many parts the tasks encoded for the tokenize step.
    let round = |through: &str| -> usize {
        let encoded = run_tasks(config, 2).into_iter().map(|stdout| {
            assert!(stdout.contains(through), "{stdout}");
            let line = stdout.lines().find(|l| l.starts_with("Encoded "));
            line.map_or(0, |l| l.split(' ').nth(1).unwrap().parse().unwrap())
        });
        encoded.sum()
    };
    let outdir = split.path().join("out");
    let summaries = |stage: &str| -> Vec<PathBuf> {
        let dir = outdir.join("_summaries").join(stage);
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries.map(|e| e.unwrap().path()).collect()
    };
    assert_eq!(round("through 2 of 6 stages"), 0);
    let again = run_tasks(config, 2);
    assert!(again[0].contains("prepares `exact_dedup`"));
    assert!(
        again[0].contains("Summarized the first pass of `exact_dedup` over 1 of its units"),
        "{}",
        again[0]
    );
    assert_eq!(
        summaries("exact_dedup").len(),
        3,
        "each task summarized the first pass over its units"
    );
    let log = prepare("Prepared `exact_dedup` over 3 units");
    assert!(
        log.contains("Observed 3 of 3 units from the tasks' summaries"),
        "--prepare observes the tasks' fingerprints instead of the texts: {log}"
    );
    assert!(
        !outdir.join("_summaries").exists(),
        "summaries are removed once their stage is prepared"
    );
    let stats = run(&["stats", outdir.to_str().unwrap()]);
    let (_, stderr) = texts(&stats);
    assert!(
        stderr.contains("the run has not finished; so far, unit records: 3 of segment 0")
            && stderr.contains("; prepared: exact_dedup"),
        "stats says how far a partitioned run got: {stderr}"
    );

    // A task runs a prepared stage only over the documents it was prepared from: with another
    // task's unit record gone, task 0 stops before it again.
    let units = split.path().join("out/_units");
    let news = units.join(
        std::fs::read_dir(&units)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .find(|n| n.starts_with("news_bbc") && n.ends_with(".s0.json"))
            .unwrap(),
    );
    let hidden = units.with_file_name("hidden.json");
    std::fs::rename(&news, &hidden).unwrap();
    let alone = run(&["run", "--quiet", "--task", "0/2", config]);
    let (stdout, stderr) = texts(&alone);
    assert!(stdout.contains("through 2 of 6 stages"), "{stdout}");
    assert!(
        stderr.contains("Not using the preparation") && stderr.contains("not those it saw"),
        "a task says why it stops before a prepared stage: {stderr}"
    );
    std::fs::rename(&hidden, &news).unwrap();

    assert_eq!(round("through 4 of 6 stages"), 0);
    // A unit without a summary is observed from its texts, with the same result.
    let minhash = summaries("minhash_dedup");
    assert_eq!(minhash.len(), 3);
    std::fs::remove_file(&minhash[0]).unwrap();
    let log = prepare("Prepared `minhash_dedup` over 3 units");
    assert!(
        log.contains("Observed 2 of 3 units from the tasks' summaries"),
        "{log}"
    );
    // Tasks that ran every stage encode their units' parts for the tokenize step: the kept
    // documents' tokens and the rejects' counts.
    let encoded = round("through 6 of 6 stages");
    let ahead: Vec<PathBuf> = std::fs::read_dir(outdir.join("_tokens"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(ahead.len(), encoded, "one file a part");
    assert!(
        encoded >= 6,
        "a kept and a rejects part per unit at least: {encoded}"
    );
    prepare("Every two-pass stage is prepared");
    assert!(!outdir.join("_manifest.json").exists());

    // A damaged encoding, and two swapped for each other (each well formed, under the other
    // part's name), are made again by the tokenize step, with the same result.
    let mut by_size = ahead.clone();
    by_size.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let (damaged, swapped) = (&by_size[by_size.len() - 1], &by_size[..2]);
    let bytes = std::fs::read(damaged).unwrap();
    std::fs::write(damaged, &bytes[..bytes.len() - 2]).unwrap();
    let first = std::fs::read(&swapped[0]).unwrap();
    std::fs::copy(&swapped[1], &swapped[0]).unwrap();
    std::fs::write(&swapped[1], first).unwrap();
    let finish = run(&["run", config]);
    let (stdout, stderr) = texts(&finish);
    assert!(finish.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{} parts were encoded ahead", encoded - 3))
            && stderr.matches("is damaged").count() == 3,
        "the tokenize step reads the tasks' encodings, except the damaged ones: {stderr}"
    );
    assert!(
        stdout.contains("3 units (3 resumed)") && stdout.contains("MB in (all resumed)"),
        "{stdout}"
    );
    assert!(
        !stderr.contains("First pass and preparation done"),
        "the finishing run restores both preparations instead of observing again: {stderr}"
    );
    assert_same_outputs(
        &whole.path().join("out"),
        &outdir,
        "a whole run and three rounds of tasks with preparations between them",
    );
    assert_same_tokens(&whole.path().join("tokens"), &split.path().join("tokens"));
}

/// Asserts that two token roots hold the same version with the same files, byte for byte, but
/// for its manifest's record of when and from where it was written.
fn assert_same_tokens(a: &Path, b: &Path) {
    let (ta, tb) = (tree_bytes(a), tree_bytes(b));
    let names = |t: &[(String, Vec<u8>)]| t.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ta), names(&tb));
    assert!(
        ta.iter().any(|(name, _)| name.ends_with(".bin")),
        "{:?}",
        names(&ta)
    );
    for ((name, x), (_, y)) in ta.iter().zip(&tb) {
        if !name.ends_with("manifest.json") {
            assert!(x == y, "{name} differs between the token roots");
        }
    }
}

#[test]
fn a_source_folder_holding_the_outputs_never_reads_them_back() {
    let dir = scratch("self-read");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    tests::write_jsonl(
        &data.join("a.jsonl"),
        &tests::corpus_records("news_bbc.jsonl.zst", 40),
    );
    // The outputs and the token root live inside the source's folder.
    let config = dir.path().join("refinery.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\nname = \"a\"\npaths = [\"{d}\"]\nformat = \"jsonl\"\n\n\
             [[stages]]\ntype = \"normalize\"\n\n\
             [output]\npath = \"{d}/out\"\n\n\
             [tokenize]\nroot = \"{d}/tokens\"\ntokenizer = {t:?}\nshard_tokens = 4000\n",
            d = data.display(),
            t = shared_data()
                .join("tokenizers/gpt-neox-olmo.json")
                .display()
                .to_string(),
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let first = run(&["run", "--quiet", config]);
    assert!(first.status.success(), "{}", texts(&first).1);
    let before = manifest(&data.join("out"));
    let again = run(&["run", config]);
    let (stdout, stderr) = texts(&again);
    assert!(again.status.success(), "{stderr}");
    assert!(
        stderr.contains("are left out: they are under") && stderr.contains("which this run writes"),
        "{stderr}"
    );
    assert!(stdout.contains("1 units (1 resumed)"), "{stdout}");
    assert_eq!(
        manifest(&data.join("out")),
        before,
        "the second run reads what the first read"
    );
}

#[test]
fn a_folder_being_written_is_refused_to_a_second_writer() {
    let dir = scratch("locked");
    let config = real_config(dir.path(), &["news_bbc.jsonl.zst"], 1);
    let config = config.to_str().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // Another process's lock, as a run holds it (two runs at once made each other fail with a
    // torn part or a vanished temporary file).
    let held = std::fs::File::create(out.join("_lock")).unwrap();
    let refused = |args: &[&str]| {
        let second = run(args);
        let (_, stderr) = texts(&second);
        assert_eq!(second.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("is being written by another Refinery process"),
            "{stderr}"
        );
    };
    held.try_lock().unwrap();
    refused(&["run", config]);
    refused(&["run", "--task", "0/2", config]);
    held.unlock().unwrap();
    // Tasks of a partitioned run share the folder; a whole run waits for them.
    held.try_lock_shared().unwrap();
    refused(&["run", config]);
    let task = run(&["run", "--quiet", "--task", "0/2", config]);
    assert!(task.status.success(), "{}", texts(&task).1);
    held.unlock().unwrap();
    let whole = run(&["run", "--quiet", config]);
    assert!(whole.status.success(), "{}", texts(&whole).1);
    // The lock went with the process that held it.
    held.try_lock().unwrap();
}
