//! The JSONL metrics log: one object per line, `"event"` naming its kind.
//!
//! - `train`: step, loss, lr, grad_norm, tokens, tokens_per_s, mfu (GPU only), per-source loss,
//!   whether the update was skipped as a loss spike and the running average it was judged by.
//! - `eval`: step, tokens, and per source the validation loss, perplexity and tokens scored.
//! - `checkpoint`: step and folder.
//!
//! On resume, lines after the checkpoint's step are dropped first, so the log of an interrupted
//! and resumed run reads like the log of an uninterrupted one.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, io};
use crate::eval::SourceEval;

/// One training step's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// Updates done, this one included.
    pub step: u64,
    /// Mean training loss of the step's windows.
    pub loss: f64,
    /// Learning rate of the update.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Training tokens consumed so far.
    pub tokens: u64,
    /// Tokens per second of this step.
    pub tokens_per_s: f64,
    /// Model FLOPs utilisation (on a GPU).
    pub mfu: Option<f64>,
    /// Mean loss of each source's windows in this step.
    pub source_loss: BTreeMap<String, f64>,
    /// The update was skipped as a loss spike.
    pub skipped: bool,
    /// The running loss average the step was judged against.
    pub loss_average: Option<f64>,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Record {
    /// A training step.
    Train(StepReport),
    /// A validation pass.
    Eval {
        /// Updates done.
        step: u64,
        /// Training tokens consumed.
        tokens: u64,
        /// Per-source results.
        sources: BTreeMap<String, SourceEval>,
    },
    /// A checkpoint written.
    Checkpoint {
        /// Updates done.
        step: u64,
        /// Its folder.
        path: PathBuf,
    },
}

impl Record {
    fn step(&self) -> u64 {
        match self {
            Record::Train(r) => r.step,
            Record::Eval { step, .. } | Record::Checkpoint { step, .. } => *step,
        }
    }
}

/// An open metrics log.
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    /// Opens `path`: emptied for a fresh run, or cut back to `resume_step` for a resumed one.
    pub fn open(path: &Path, resume_step: Option<u64>) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        // Kept lines are copied as they were: a record parsed and written again could differ
        // in a float's last digit, and the log would no longer read as one run's.
        let mut text = String::new();
        if let Some(step) = resume_step {
            for (line, record) in parsed_lines(path)? {
                if record.step() <= step {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
        }
        shards::atomic::write_file(path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io("open", path))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one record (written through, so a killed run keeps every finished line).
    pub fn write(&mut self, record: &Record) -> Result<()> {
        let mut line = serde_json::to_string(record).unwrap_or_default();
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .map_err(io("write", &self.path))
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Every record of a log (a missing file has none; unreadable lines are skipped).
pub fn read(path: &Path) -> Result<Vec<Record>> {
    Ok(parsed_lines(path)?.into_iter().map(|(_, r)| r).collect())
}

/// Every line of a log that parses, with its record.
fn parsed_lines(path: &Path) -> Result<Vec<(String, Record)>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("open", path)(e)),
    };
    let mut out = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(io("read", path))?;
        if let Ok(r) = serde_json::from_str(&line) {
            out.push((line, r));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_log_keeps_its_earlier_lines_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        // serde_json reads this perplexity one unit in the last place off, so a line parsed
        // and written again would change.
        let eval = r#"{"event":"eval","step":0,"tokens":0,"sources":{"a":{"loss":6.924014091491699,"perplexity":1016.3917062562779,"tokens":256}}}"#;
        let checkpoint = r#"{"event":"checkpoint","step":0,"path":"/out/step-000000"}"#;
        let later = r#"{"event":"checkpoint","step":1,"path":"/out/step-000001"}"#;
        let text = format!("{eval}\nnot a record\n{checkpoint}\n{later}\n");
        std::fs::write(&path, text).unwrap();
        let log = MetricsLog::open(&path, Some(0)).unwrap();
        drop(log);
        let kept = std::fs::read_to_string(&path).unwrap();
        assert_eq!(kept, format!("{eval}\n{checkpoint}\n"));
        assert_eq!(read(&path).unwrap().len(), 2);

        MetricsLog::open(&path, None).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "",
            "a fresh run starts empty"
        );
    }
}
