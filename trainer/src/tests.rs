//! Training on a small synthetic shard version: gradients, exact resume, spike skipping,
//! mixture and lineage.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use shards::dataset::{DatasetRoot, Split, TokenizerInfo, VersionInfo, VersionWriter};

use crate::config::TrainConfig;
use crate::metrics::{Record, read};
use crate::model::Gpt;
use crate::rng::Rng;
use crate::{Start, Summary, Trainer};

const VOCAB: u64 = 60;

/// Writes a version with two learnable sources: `count` (runs of consecutive ids) and `pairs`
/// (each id followed by its double, mod 50), 5% held out by document.
fn write_version(root: &Path) {
    write_streams(root, |w| {
        let mut rng = Rng::new(1, "docs");
        for d in 0..600u64 {
            let split = if d % 20 == 0 {
                Split::Validation
            } else {
                Split::Train
            };
            let start = 1 + rng.next_u64() % 49;
            let count: Vec<u32> = (0..40)
                .map(|i| (1 + (start + i) % 49) as u32)
                .chain([0])
                .collect();
            w.push(split, "count", &format!("c{d}"), &count).unwrap();
            let pairs: Vec<u32> = (0..20)
                .flat_map(|_| {
                    let x = 1 + rng.next_u64() % 49;
                    [x as u32, (1 + (2 * x) % 49) as u32]
                })
                .chain([0])
                .collect();
            w.push(split, "pairs", &format!("p{d}"), &pairs).unwrap();
        }
    });
}

/// Writes version `v1` under `root` with the documents `push` writes.
fn write_streams(root: &Path, push: impl FnOnce(&mut VersionWriter)) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let info = VersionInfo {
        version: "v1".into(),
        parents: vec![],
        config_hash: "c".into(),
        tokenizer: TokenizerInfo {
            hash: "t".into(),
            vocab_size: VOCAB,
            eod: "<eod>".into(),
            eod_id: 0,
            file: None,
        },
        validation_fraction: 0.05,
        validation_min_docs: 0,
        tokenizer_json: Some(bytes::Bytes::from_static(b"{}")),
    };
    let dataset = DatasetRoot::open(root.to_str().unwrap()).unwrap();
    let mut w = VersionWriter::new(dataset, info, 4096, rt.handle().clone());
    push(&mut w);
    w.finish().unwrap();
}

/// A temporary folder holding the version of [`write_version`] under `tokens/`.
fn version_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tokens");
    write_version(&root);
    (dir, root)
}

/// Trains 8 steps into `out` on `count` and `pairs` weighted 3 : 1.
fn run_mixed(root: &Path, out: &Path) -> Summary {
    let c = config(root, out, "weights = { count = 3, pairs = 1 }");
    Trainer::new(c, Start::Resume, None)
        .unwrap()
        .run(Some(8), |_| {})
        .unwrap()
}

fn config(root: &Path, out: &Path, extra: &str) -> TrainConfig {
    let text = format!(
        r#"
[data]
root = "{}"
seq_len = 16
{extra}
[model]
layers = 2
heads = 2
width = 32
context = 32
[optim]
lr = 0.01
min_lr = 0.001
warmup_steps = 3
[train]
steps = 20
batch_size = 4
eval_windows = 4
out = "{}"
device = "cpu"
"#,
        root.display(),
        out.display()
    );
    TrainConfig::parse(&text, "test").unwrap()
}

fn train_losses(metrics: &Path) -> Vec<(u64, f64)> {
    read(metrics)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            Record::Train(s) => Some((s.step, s.loss)),
            _ => None,
        })
        .collect()
}

fn weights(model: &Gpt) -> Vec<(String, Vec<f32>)> {
    model
        .params()
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.var.flatten_all().unwrap().to_vec1().unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_parameter_gets_a_nonzero_gradient() {
    let dims = crate::model::tests::small_dims();
    let model = Gpt::new(dims, 3, &Device::Cpu, DType::F32).unwrap();
    let ids: Vec<u32> = (0..16).map(|i| (i * 7 % 64) as u32).collect();
    let inputs = Tensor::from_vec(ids[..14].to_vec(), (2, 7), &Device::Cpu).unwrap();
    let targets = Tensor::from_vec(ids[2..].to_vec(), (2, 7), &Device::Cpu).unwrap();
    let loss = model
        .window_losses(&inputs, &targets)
        .unwrap()
        .mean_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    assert_eq!(model.params().len(), 4 + 12 * 2);
    assert_eq!(model.parameter_count() as u64, dims.parameters());
    for p in model.params() {
        let g = grads
            .get(p.var.as_tensor())
            .unwrap_or_else(|| panic!("{} has no gradient", p.name));
        let norm = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(norm > 0.0, "{} has a zero gradient", p.name);
    }
}

#[test]
fn resume_is_exact_and_loss_falls() {
    let (dir, root) = version_dir();

    let straight = config(&root, &dir.path().join("a"), "");
    let mut a = Trainer::new(straight.clone(), Start::Resume, None).unwrap();
    let summary = a.run(None, |_| {}).unwrap();
    assert_eq!(summary.step, 20);

    let split = config(&root, &dir.path().join("b"), "");
    let mut b = Trainer::new(split.clone(), Start::Resume, None).unwrap();
    assert_eq!(b.run(Some(10), |_| {}).unwrap().step, 10);
    drop(b);
    let mut b = Trainer::new(split, Start::Resume, None).unwrap();
    assert!(b.resumed_from().unwrap().ends_with("step-000010"));
    assert_eq!(b.run(None, |_| {}).unwrap().step, 20);

    let (la, lb) = (
        train_losses(&dir.path().join("a/metrics.jsonl")),
        train_losses(&dir.path().join("b/metrics.jsonl")),
    );
    assert_eq!(la.len(), 20);
    assert_eq!(
        la, lb,
        "losses of 20 straight steps and of 10 + resume + 10"
    );
    assert_eq!(weights(a.model()), weights(b.model()));
    assert_eq!(a.lineage(), b.lineage());

    // The validation loss fell from the uniform guess (ln 64 ≈ 4.16) in 20 steps: by 0.3 nats
    // on `pairs` (half its tokens are random) and by 0.8 on `count`.
    let (first, last) = (&summary.first_eval, &summary.last_eval);
    for (source, margin) in [("count", 0.8), ("pairs", 0.3)] {
        assert!(
            last[source].loss < first[source].loss - margin,
            "{source}: {first:?} → {last:?}"
        );
    }
}

#[test]
fn lineage_follows_the_mixture_weights() {
    let (dir, root) = version_dir();
    let summary = run_mixed(&root, &dir.path().join("a"));
    let lineage = crate::Checkpoint::load(&summary.checkpoint)
        .unwrap()
        .lineage;
    assert_eq!(lineage.version, "v1");
    assert_eq!(lineage.tokens, 8 * 4 * 16);
    let (count, pairs) = (&lineage.sources["count"], &lineage.sources["pairs"]);
    assert_eq!((count.windows, pairs.windows), (24, 8));
    assert_eq!(count.tokens + pairs.tokens, lineage.tokens);
    assert!((count.target_weight - 0.75).abs() < 1e-12);
    assert_eq!(count.repeated_windows, 0);
    assert!(summary.checkpoint.join("tokenizer.json").is_file());
}

#[test]
fn a_spike_skips_the_update() {
    let (dir, root) = version_dir();
    // Any loss above 0.1 × the average of the last 2 counts as a spike: from step 3 on, every
    // update is skipped and the weights stay as they were after step 2.
    let mut c = config(&root, &dir.path().join("a"), "");
    c.train.spike_factor = 0.1;
    c.train.spike_window = 2;
    let mut t = Trainer::new(c, Start::Resume, None).unwrap();
    for _ in 0..2 {
        assert!(!t.step().unwrap().skipped);
    }
    let after_two = weights(t.model());
    for _ in 0..3 {
        let r = t.step().unwrap();
        assert!(r.skipped && r.loss_average.is_some());
    }
    assert_eq!(weights(t.model()), after_two);
    assert_eq!(t.state().skipped, 3);
    assert_eq!(t.state().step, 5);
}

#[test]
fn a_run_too_large_for_the_machine_is_refused_before_it_starts() {
    let (_dir, root) = version_dir();
    let out = root.join("run");
    let mut c = config(&root, &out, "");
    c.model.width = Some(1 << 16);
    c.model.heads = Some(1 << 10);
    c.model.layers = Some(1 << 10);
    let Err(e) = Trainer::new(c.clone(), Start::Resume, None) else {
        panic!("a petabyte model was accepted");
    };
    let message = e.to_string();
    for named in [
        "[train]",
        "batch_size 4",
        "seq_len 16",
        "grad_accum",
        "memory_check = false",
    ] {
        assert!(message.contains(named), "{named} not in: {message}");
    }
    assert!(!out.join("checkpoints").exists(), "nothing was written");
    // The estimate does not refuse the ordinary runs of these tests.
    c.model = config(&root, &out, "").model;
    assert!(Trainer::new(c, Start::Resume, None).is_ok());
}

#[test]
fn a_changed_config_does_not_resume_silently() {
    let (dir, root) = version_dir();
    let mut c = config(&root, &dir.path().join("a"), "");
    c.train.checkpoint_every = 2;
    Trainer::new(c.clone(), Start::Resume, None)
        .unwrap()
        .run(Some(4), |_| {})
        .unwrap();
    let mut other = c.clone();
    other.optim.lr = 0.02;
    let e = Trainer::new(other.clone(), Start::Resume, None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("different config") && e.contains("--restart"),
        "{e}"
    );
    let checkpoints = || {
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join("a/checkpoints"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    assert_eq!(checkpoints(), ["latest", "step-000002", "step-000004"]);
    // A restart whose new run cannot be set up removes nothing.
    let mut broken = other.clone();
    broken.data.seq_len = Some(1000);
    assert!(Trainer::new(broken, Start::Restart, None).is_err());
    assert_eq!(checkpoints().len(), 3);
    let t = Trainer::new(other.clone(), Start::Restart, None).unwrap();
    assert_eq!(t.state().step, 0);
    assert!(
        checkpoints().is_empty(),
        "the old run's checkpoints are gone"
    );
    drop(t);
    // The restart forgot the old run: it now resumes nothing, whatever its config ...
    let mut t = Trainer::new(c, Start::Resume, None).unwrap();
    assert_eq!(t.state().step, 0);
    // ... and its checkpoints are its own: the old run's step 4 is not left to be read as
    // this run's.
    t.run(Some(2), |_| {}).unwrap();
    assert_eq!(checkpoints(), ["latest", "step-000002"]);
}

#[test]
fn accumulating_two_half_batches_equals_one_full_batch() {
    let (dir, root) = version_dir();
    let mut full = config(&root, &dir.path().join("a"), "");
    full.optim.clip = 0.0;
    let mut halves = full.clone();
    halves.train.batch_size = 2;
    halves.train.grad_accum = 2;
    halves.train.out = dir.path().join("b");
    // The sampler draws the same four windows in the same order either way.
    let (mut a, mut b) = (
        Trainer::new(full, Start::Resume, None).unwrap(),
        Trainer::new(halves, Start::Resume, None).unwrap(),
    );
    let (ra, rb) = (a.step().unwrap(), b.step().unwrap());
    assert!((ra.loss - rb.loss).abs() < 1e-6 && (ra.grad_norm - rb.grad_norm).abs() < 1e-5);
    assert_eq!((ra.tokens, rb.tokens), (64, 64));
    for ((name, x), (_, y)) in weights(a.model()).iter().zip(weights(b.model())) {
        let worst = x
            .iter()
            .zip(&y)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-5, "{name} differs by {worst}");
    }
}

#[test]
fn phases_switch_sources_at_their_token_counts() {
    let (dir, root) = version_dir();
    let phases = "[[data.phases]]\nuntil_tokens = 256\nweights = { count = 1 }\n\
                  [[data.phases]]\nweights = { pairs = 1 }\n";
    let c = config(&root, &dir.path().join("a"), phases);
    let mut t = Trainer::new(c.clone(), Start::Resume, None).unwrap();
    let sources: Vec<Vec<String>> = (0..8)
        .map(|_| t.step().unwrap().source_loss.into_keys().collect())
        .collect();
    // 64 tokens a step: steps 1-4 are all `count`, then all `pairs`.
    assert!(sources[..4].iter().all(|s| s == &["count"]), "{sources:?}");
    assert!(sources[4..].iter().all(|s| s == &["pairs"]), "{sources:?}");
    let lineage = t.lineage();
    assert_eq!(
        (
            lineage.sources["count"].tokens,
            lineage.sources["pairs"].tokens
        ),
        (256, 256)
    );
    assert_eq!(lineage.sources["pairs"].target_weight, 1.0);

    let bad = config(
        &root,
        &dir.path().join("b"),
        "weights = { count = 1, typo = 1 }",
    );
    let e = Trainer::new(bad, Start::Resume, None)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("`typo`") && e.contains("count, pairs"), "{e}");
}

#[test]
fn evaluation_cadence_may_change_across_a_resume() {
    let (dir, root) = version_dir();
    let c = config(&root, &dir.path().join("a"), "");
    Trainer::new(c.clone(), Start::Resume, None)
        .unwrap()
        .run(Some(2), |_| {})
        .unwrap();
    let mut cadence = c;
    cadence.train.eval_every = 5;
    cadence.train.checkpoint_every = 4;
    let resumed = Trainer::new(cadence, Start::Resume, None).unwrap();
    assert_eq!(resumed.state().step, 2);
}

#[test]
fn a_run_killed_after_a_checkpoint_replays_the_lost_steps_exactly() {
    let (dir, root) = version_dir();
    let mut c = config(&root, &dir.path().join("a"), "");
    c.train.checkpoint_every = 5;
    let mut t = Trainer::new(c.clone(), Start::Resume, None).unwrap();
    t.run(Some(8), |_| {}).unwrap();
    let straight = train_losses(&dir.path().join("a/metrics.jsonl"));
    let straight_log = timeless_records(&dir.path().join("a/metrics.jsonl"));
    drop(t);
    // As if killed after logging step 8 but before its checkpoint: `latest` still names step 5.
    std::fs::write(dir.path().join("a/checkpoints/latest"), "step-000005\n").unwrap();
    // ... or while writing a checkpoint, whose hidden folder it leaves.
    let unfinished = dir.path().join("a/checkpoints/.step-000010.tmp-4242");
    std::fs::create_dir_all(&unfinished).unwrap();
    std::fs::write(unfinished.join(crate::checkpoint::MODEL), b"half").unwrap();
    let mut t = Trainer::new(c, Start::Resume, None).unwrap();
    assert!(!unfinished.exists(), "a half-written checkpoint is removed");
    assert_eq!(t.state().step, 5);
    assert_eq!(
        train_losses(&dir.path().join("a/metrics.jsonl")).len(),
        5,
        "log cut back"
    );
    t.run(Some(8), |_| {}).unwrap();
    assert_eq!(train_losses(&dir.path().join("a/metrics.jsonl")), straight);
    // The whole log reads as the straight run's: no evaluation logged where the resumed run
    // started, nothing twice.
    assert_eq!(
        timeless_records(&dir.path().join("a/metrics.jsonl")),
        straight_log
    );
}

/// Every record of a log, with the steps' speeds (which depend on the machine's load) zeroed.
fn timeless_records(metrics: &Path) -> Vec<Record> {
    let mut records = read(metrics).unwrap();
    for r in &mut records {
        if let Record::Train(step) = r {
            step.tokens_per_s = 0.0;
            step.mfu = None;
        }
    }
    records
}

#[test]
fn a_replay_reconstructs_every_window_the_run_drew() {
    let (dir, root) = version_dir();
    let summary = run_mixed(&root, &dir.path().join("a"));
    let checkpoint = crate::Checkpoint::load(&summary.checkpoint).unwrap();
    let reader = || crate::data::open_reader(&checkpoint.config.data, Some("v1")).unwrap();
    let replay = crate::replay::Replay::new(&checkpoint, reader()).unwrap();
    let sources = replay.sources().to_vec();
    let windows: Vec<_> = replay.collect();
    assert_eq!(windows.len(), 8 * 4, "batch 4, 8 steps");
    assert!(windows.windows(2).all(|w| w[0].step <= w[1].step));
    assert_eq!((windows[0].step, windows[31].step), (1, 8));
    for (i, name) in sources.iter().enumerate() {
        let drawn = windows.iter().filter(|w| w.source == i).count() as u64;
        assert_eq!(drawn, checkpoint.lineage.sources[name].windows, "{name}");
    }
    assert!(
        windows
            .iter()
            .all(|w| w.end - w.start == 17 && w.start % 16 == 0)
    );
    assert!(
        crate::replay::Replay::new(&checkpoint, reader())
            .unwrap()
            .finish()
    );
    let mut tampered = crate::Checkpoint::load(&summary.checkpoint).unwrap();
    tampered.state.sampler.drawn[0] += 1;
    assert!(
        !crate::replay::Replay::new(&tampered, reader())
            .unwrap()
            .finish(),
        "a state the replay does not reach is reported"
    );
}

/// A source whose held-out stream is shorter than one window, or that has none, is named with
/// its held-out tokens instead of scored; the others get their windows.
#[test]
fn sources_without_a_held_out_window_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tokens");
    write_streams(&root, |w| {
        let doc = |n: u32| (1..=n).collect::<Vec<u32>>();
        w.push(Split::Train, "long", "l0", &doc(100)).unwrap();
        w.push(Split::Validation, "long", "l1", &doc(40)).unwrap();
        w.push(Split::Train, "short", "s0", &doc(100)).unwrap();
        w.push(Split::Validation, "short", "s1", &doc(16)).unwrap();
        w.push(Split::Train, "none", "n0", &doc(100)).unwrap();
    });
    let c = config(&root, &dir.path().join("out"), "");
    let reader = crate::data::open_reader(&c.data, None).unwrap();
    let set = crate::data::ValidationSet::read(&reader, 16, 4).unwrap();
    assert_eq!(set.sources.keys().collect::<Vec<_>>(), ["long"]);
    assert_eq!(
        set.sources["long"].len(),
        2,
        "39 tokens after the first: two windows of 16"
    );
    let unvalidated: Vec<(&str, u64)> = set
        .unvalidated
        .iter()
        .map(|(s, t)| (s.as_str(), *t))
        .collect();
    assert_eq!(unvalidated, [("none", 0), ("short", 16)]);
}

#[test]
fn a_training_folder_without_a_checkpoint_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(crate::train::METRICS), "").unwrap();
    let e = crate::Checkpoint::load(dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("with no checkpoint yet"), "{e}");
}
