//! Training end to end on real text: the tiny model learns, a resumed run equals a straight one,
//! and a changed config (or one too large for the machine's memory) is refused.

use std::path::Path;

use serde_json::Value;
use tests::{run, scratch, texts};

use crate::tokenize::{run_ok, write_config, write_inputs};

const SOURCES: [(&str, &str); 3] = [
    ("wiki", "wiki_en.jsonl.zst"),
    ("code", "code_go.jsonl.zst"),
    ("news", "news_bbc.jsonl.zst"),
];

/// A training config over `<dir>/tokens` writing to `<dir>/<out>`.
fn train_config(dir: &Path, out: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{out}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"[data]
root = "tokens"
seq_len = 128
[model]
layers = 2
heads = 4
width = 128
context = 128
[optim]
lr = 2e-3
min_lr = 2e-4
warmup_steps = 10
[train]
steps = 80
batch_size = 8
eval_every = 40
eval_windows = 8
out = "{out}"
device = "cpu"
"#
        ),
    )
    .unwrap();
    path
}

fn records(metrics: &Path, event: &str) -> Vec<Value> {
    std::fs::read_to_string(metrics)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["event"] == event)
        .collect()
}

#[test]
fn the_tiny_model_learns_real_text_and_resumes_exactly() {
    let dir = scratch("train-real");
    let d = dir.path();
    write_inputs(d, &SOURCES, 300);
    let config = write_config(
        d,
        &SOURCES,
        "",
        "train_vocab_size = 2048\nvalidation_fraction = 0.05\nshard_tokens = 65536",
    );
    run_ok(&["run", config.to_str().unwrap(), "--quiet"]);

    let straight = train_config(d, "a");
    let stdout = run_ok(&["train", straight.to_str().unwrap(), "--quiet"]);
    assert!(
        stdout.contains("Checkpoint:") && stdout.contains("val loss after"),
        "{stdout}"
    );
    let evals = records(&d.join("a/metrics.jsonl"), "eval");
    let (first, last) = (&evals[0], &evals[evals.len() - 1]);
    assert_eq!(last["step"], 80);
    // The summary's last column is the tokens the final evaluation scored.
    for (source, _) in SOURCES {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {source} ")))
            .unwrap_or_else(|| panic!("no row for {source}: {stdout}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let tokens = last["sources"][source]["tokens"].as_u64().unwrap();
        assert_eq!(cells[cells.len() - 2], tokens.to_string(), "{row}");
    }
    // Stated margin: within 80 steps of 1,024 tokens, every source's validation loss falls by
    // at least 1 nat from the untrained model's (about ln 2048 ≈ 7.6; measured: 1.2 to 2.5).
    let fell: Vec<(&str, f64, f64)> = SOURCES
        .iter()
        .map(|(source, _)| {
            let loss = |e: &Value| e["sources"][source]["loss"].as_f64().unwrap();
            (*source, loss(first), loss(last))
        })
        .collect();
    assert!(
        fell.iter().all(|(_, before, after)| *after < before - 1.0),
        "{fell:?}"
    );
    let steps = records(&d.join("a/metrics.jsonl"), "train");
    assert_eq!(steps.len(), 80);
    for s in &steps {
        assert!(s["grad_norm"].as_f64().unwrap() > 0.0 && s["lr"].as_f64().unwrap() > 0.0);
        assert!(s["source_loss"].as_object().unwrap().len() >= 2, "{s}");
        assert!(s["mfu"].is_null(), "no MFU on the CPU");
    }

    // The same run in two halves: stopped at step 30, resumed by running the same command.
    let halves = train_config(d, "b");
    let first_half = run_ok(&["train", halves.to_str().unwrap(), "--max-steps", "30", "-q"]);
    assert!(first_half.contains("step-000030"), "{first_half}");
    let second = run_ok(&["train", halves.to_str().unwrap(), "-q"]);
    assert!(
        second.contains("Resuming from") && second.contains("step-000030"),
        "{second}"
    );
    let losses = |out: &str| -> Vec<(u64, f64)> {
        records(&d.join(out).join("metrics.jsonl"), "train")
            .iter()
            .map(|r| (r["step"].as_u64().unwrap(), r["loss"].as_f64().unwrap()))
            .collect()
    };
    assert_eq!(losses("a"), losses("b"));
    let weights = |out: &str| {
        std::fs::read(
            d.join(out)
                .join("checkpoints/step-000080/model.safetensors"),
        )
        .unwrap()
    };
    assert!(
        weights("a") == weights("b"),
        "identical weights after 80 and 30 + resume + 50"
    );
    let lineage = |out: &str| -> Value {
        let bytes =
            std::fs::read(d.join(out).join("checkpoints/step-000080/lineage.json")).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    assert_eq!(lineage("a")["sources"], lineage("b")["sources"]);
    let manifest_bytes = {
        let id = crate::tokenize::latest(&d.join("tokens"));
        std::fs::read(d.join("tokens/versions").join(id).join("manifest.json")).unwrap()
    };
    assert_eq!(
        lineage("a")["manifest_checksum"].as_str().unwrap(),
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&manifest_bytes))
    );

    // A different learning rate in the same folder is refused, naming --restart.
    let text = std::fs::read_to_string(&halves)
        .unwrap()
        .replace("lr = 2e-3", "lr = 1e-3");
    std::fs::write(&halves, text).unwrap();
    let refused = run(&["train", halves.to_str().unwrap(), "-q"]);
    assert!(!refused.status.success());
    assert!(
        texts(&refused).1.contains("--restart"),
        "{}",
        texts(&refused).1
    );

    // A weight on a source the version does not have is a config error (exit 2) that lists the
    // sources it has.
    let unknown = train_config(d, "c");
    let text = std::fs::read_to_string(&unknown)
        .unwrap()
        .replace("seq_len = 128", "seq_len = 128\nweights = { nope = 1.0 }");
    std::fs::write(&unknown, text).unwrap();
    let refused = run(&["train", unknown.to_str().unwrap(), "-q"]);
    let stderr = texts(&refused).1;
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`nope`"), "{stderr}");
    for (source, _) in SOURCES {
        assert!(stderr.contains(source), "{stderr}");
    }

    // A model far beyond the machine's memory is refused (exit 2) before anything is built,
    // naming the settings to lower, instead of being killed once it has started.
    let huge = train_config(d, "huge");
    let text = std::fs::read_to_string(&huge)
        .unwrap()
        .replace("width = 128", "width = 65536")
        .replace("layers = 2", "layers = 1024");
    std::fs::write(&huge, text).unwrap();
    let refused = run(&["train", huge.to_str().unwrap(), "-q"]);
    let stderr = texts(&refused).1;
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    for named in [
        "needs about",
        "is available",
        "batch_size 8",
        "memory_check = false",
    ] {
        assert!(stderr.contains(named), "{named}: {stderr}");
    }
    assert!(!d.join("huge/checkpoints").exists(), "{stderr}");
}
