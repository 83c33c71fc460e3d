//! Executor tests that need a stage of their own: two-pass execution across units.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, AsArray, RecordBatch};
use filters::Verdict;

use super::execute_stages;
use crate::config::Config;
use crate::progress::Progress;
use crate::stage::{PassContext, Passes, Stage, StageError, StageOutput};

/// Drops every document whose text occurs more than once in the whole dataset: it can only
/// decide after seeing every unit.
#[derive(Default)]
struct DropRepeated {
    counts: Mutex<HashMap<String, usize>>,
    observed: AtomicUsize,
}

impl Stage for DropRepeated {
    fn name(&self) -> &str {
        "drop_repeated"
    }

    fn passes(&self) -> Passes {
        Passes::Two
    }

    fn observe(&self, batch: &RecordBatch, _ctx: &PassContext) -> Result<(), StageError> {
        let texts = batch
            .column_by_name("text")
            .map(|c| c.as_string::<i32>().clone());
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for t in texts
            .iter()
            .flat_map(|c| c.iter().flatten().map(String::from).collect::<Vec<_>>())
        {
            *counts.entry(t).or_default() += 1;
        }
        self.observed.fetch_add(batch.num_rows(), Ordering::Relaxed);
        Ok(())
    }

    fn process(&self, batch: &RecordBatch) -> Result<StageOutput, StageError> {
        let texts = batch
            .column_by_name("text")
            .map(|c| c.as_string::<i32>().clone())
            .ok_or_else(|| StageError::Internal {
                stage: "drop_repeated".into(),
                message: "no text".into(),
            })?;
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let verdicts = (0..texts.len())
            .map(|i| {
                let n = counts.get(texts.value(i)).copied().unwrap_or(0);
                (n > 1).then_some(Verdict {
                    rule: "test.repeated",
                    passed: false,
                    value: n as f64,
                    threshold: 1.0,
                })
            })
            .collect();
        StageOutput::from_verdicts(batch, verdicts)
    }
}

/// `(stage, in, kept, dropped)` of every stage in a run's manifest.
fn stage_counts(summary: &super::RunSummary) -> Vec<(&str, u64, u64, u64)> {
    summary
        .manifest
        .accounting
        .stages
        .iter()
        .map(|s| (s.name.as_str(), s.input, s.kept, s.dropped))
        .collect()
}

#[test]
fn a_two_pass_stage_sees_every_unit_before_deciding_and_resumes_unless_an_input_changed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.jsonl"),
        "{\"text\":\"alpha\"}\n{\"text\":\"shared  \"}\n{\"text\":\"gamma\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.jsonl"),
        "{\"text\":\"shared\"}\n{\"text\":\"delta\"}\n",
    )
    .unwrap();
    let toml = format!(
        "[[sources]]\nname = \"s\"\npaths = [\"{0}/a.jsonl\", \"{0}/b.jsonl\"]\n[[stages]]\ntype = \"normalize\"\n[output]\npath = \"{0}/out\"\nstages = [\"drop_repeated\"]\n",
        dir.path().display()
    );
    let config = Config::parse(&toml).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let run = |stage: Arc<DropRepeated>| {
        let stages: Vec<Arc<dyn Stage>> = vec![config.stages[0].get_ref().build().unwrap(), stage];
        execute_stages(&config, &stages, rt.handle(), &Progress::new(false)).unwrap()
    };

    let stage = Arc::new(DropRepeated::default());
    let summary = run(stage.clone());
    assert_eq!(
        stage.observed.load(Ordering::Relaxed),
        5,
        "observed every document of both units"
    );
    assert_eq!(
        summary.manifest.datasets,
        ["normalize", "drop_repeated"],
        "the two-pass stage's input is written"
    );
    assert_eq!(
        stage_counts(&summary),
        [("normalize", 5, 5, 0), ("drop_repeated", 5, 3, 2)]
    );
    let out = dir.path().join("out");
    let rejects: Vec<RecordBatch> = ["rejects/s-00000.s1.parquet", "rejects/s-00001.s1.parquet"]
        .iter()
        .flat_map(|p| {
            crate::output::part::read_part(&out.join(p), 100)
                .unwrap()
                .map(|b| b.unwrap())
        })
        .collect();
    let dropped: Vec<String> = rejects
        .iter()
        .flat_map(|b| {
            b.column_by_name("uri")
                .unwrap()
                .as_string::<i32>()
                .iter()
                .map(|u| u.unwrap().rsplit('/').next().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        dropped,
        ["a.jsonl", "b.jsonl"],
        "the duplicate across units is dropped in both"
    );

    let before = std::fs::read(out.join("_manifest.json")).unwrap();
    let again = Arc::new(DropRepeated::default());
    let summary = run(again.clone());
    assert_eq!(summary.resumed, 2);
    assert_eq!(
        again.observed.load(Ordering::Relaxed),
        5,
        "nothing to redo, but the stage observes again to rebuild its own tables"
    );
    assert_eq!(std::fs::read(out.join("_manifest.json")).unwrap(), before);

    // An input that changed since its unit was written is read again, and the two-pass stage
    // decides over the new data: "alpha" now occurs in both files.
    let mut b = std::fs::read_to_string(dir.path().join("b.jsonl")).unwrap();
    b.push_str("{\"text\":\"alpha\"}\n");
    std::fs::write(dir.path().join("b.jsonl"), b).unwrap();
    let changed = Arc::new(DropRepeated::default());
    let summary = run(changed.clone());
    assert_eq!(
        summary.resumed, 1,
        "only the unchanged file's unit is reused"
    );
    assert_eq!(
        stage_counts(&summary),
        [("normalize", 6, 6, 0), ("drop_repeated", 6, 2, 4)]
    );
    assert_ne!(std::fs::read(out.join("_manifest.json")).unwrap(), before);
}
