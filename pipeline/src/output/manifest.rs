//! Unit records (`_units/<unit>.json`) and the run manifest (`_manifest.json`).
//!
//! A unit record is written after all of its parts are in place; the manifest after all unit
//! records. On a rerun, a unit whose record matches the config hash and whose parts still have
//! their recorded checksums is skipped. Neither file holds a timestamp, so an interrupted and
//! resumed run writes the same bytes as an uninterrupted one.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::part::PartInfo;
use super::{MANIFEST, UNITS};
use crate::ingest::{IngestCounts, InputFingerprint};

/// File format name written in the manifest.
pub const FORMAT: &str = "refinery.run";
/// Version of the manifest layout.
pub const FORMAT_VERSION: u32 = 1;

/// Documents in, kept and dropped by one stage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageCounts {
    /// Stage name.
    pub name: String,
    /// Documents given to the stage.
    pub input: u64,
    /// Documents it kept.
    pub kept: u64,
    /// Documents it dropped.
    pub dropped: u64,
}

impl StageCounts {
    /// Adds `other`'s numbers.
    pub fn add(&mut self, other: &StageCounts) {
        self.input += other.input;
        self.kept += other.kept;
        self.dropped += other.dropped;
    }
}

/// The record of one finished unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitRecord {
    /// Unit id.
    pub unit: String,
    /// Source name.
    pub source: String,
    /// The segment of the stage chain it covers (segments split before two-pass stages).
    pub segment: usize,
    /// Index of the segment's first stage.
    pub first_stage: usize,
    /// Hash of the config that produced it.
    pub config_hash: String,
    /// Files read.
    pub inputs: Vec<InputFingerprint>,
    /// Ingest accounting (segment 0 only; zero for later segments, which read parts).
    pub ingest: IngestCounts,
    /// Per-stage accounting of the segment's stages, in order.
    pub stages: Vec<StageCounts>,
    /// Parts written.
    pub parts: Vec<PartInfo>,
}

impl UnitRecord {
    /// Where the record of `unit` in `segment` lives.
    pub fn path(out: &Path, unit: &str, segment: usize) -> std::path::PathBuf {
        out.join(UNITS).join(format!("{unit}.s{segment}.json"))
    }

    /// Loads the record of `unit` in `segment` if it exists, matches `config_hash` and every part
    /// it lists is present with its recorded checksum: then the unit need not run again.
    pub fn load_valid(
        out: &Path,
        unit: &str,
        segment: usize,
        config_hash: &str,
    ) -> Option<UnitRecord> {
        let text = std::fs::read(Self::path(out, unit, segment)).ok()?;
        let record: UnitRecord = serde_json::from_slice(&text).ok()?;
        let intact = record.parts.iter().all(|p| p.is_intact(out));
        (record.config_hash == config_hash && intact).then_some(record)
    }

    /// Writes the record atomically.
    pub fn save(&self, out: &Path) -> Result<(), shards::StoreError> {
        shards::atomic::write_file(&Self::path(out, &self.unit, self.segment), &to_json(self))
    }
}

/// Per-source ingest totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCounts {
    /// Source name.
    pub source: String,
    /// Its ingest totals.
    #[serde(flatten)]
    pub counts: IngestCounts,
}

/// The accounting of a whole run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounting {
    /// Per source, in config order.
    pub sources: Vec<SourceCounts>,
    /// Per stage, in stage order.
    pub stages: Vec<StageCounts>,
    /// Input specs quarantined before reading (missing, unreachable).
    pub quarantined_inputs: u64,
}

/// The run manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Refinery's version.
    pub tool_version: String,
    /// Hash of the decisive config.
    pub config_hash: String,
    /// Stage names, in order.
    pub stages: Vec<String>,
    /// Datasets whose documents were written; the last is the run's result.
    pub datasets: Vec<String>,
    /// Every file read.
    pub inputs: Vec<InputFingerprint>,
    /// Every part written, unit by unit.
    pub files: Vec<PartInfo>,
    /// Counts that must add up.
    pub accounting: Accounting,
}

impl Manifest {
    /// Reads `<out>/_manifest.json`.
    pub fn load(out: &Path) -> Result<Manifest, String> {
        let path = out.join(MANIFEST);
        let text = std::fs::read(&path).map_err(|e| {
            let why = match unfinished(out) {
                Some(done) => format!(
                    "the run has not finished; so far, {done}. `refinery run CONFIG` finishes it"
                ),
                None => "is this a finished run's output folder?".into(),
            };
            format!("cannot read {}: {e} ({why})", path.display())
        })?;
        let manifest: Manifest = serde_json::from_slice(&text)
            .map_err(|e| format!("{} is not a run manifest: {e}", path.display()))?;
        if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
            return Err(format!(
                "{} has format {} v{}; this Refinery reads {FORMAT} v{FORMAT_VERSION}",
                path.display(),
                manifest.format,
                manifest.format_version
            ));
        }
        Ok(manifest)
    }

    /// Writes the manifest atomically, last.
    pub fn save(&self, out: &Path) -> Result<(), shards::StoreError> {
        shards::atomic::write_file(&out.join(MANIFEST), &to_json(self))
    }
}

/// The record of a two-pass stage's preparation, which lets tasks run the segment it starts
/// (see `executor::prepared`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preparation {
    /// The segment the stage starts.
    pub segment: usize,
    /// The two-pass stage.
    pub stage: String,
    /// The key of the documents it observed: the unit records of the segment before.
    pub input: String,
    /// The tables the preparation wrote, which hold its decisions.
    pub tables: Vec<PartInfo>,
}

impl Preparation {
    /// Where the preparation of the stage starting `segment` is recorded.
    pub fn path(out: &Path, segment: usize) -> std::path::PathBuf {
        out.join(UNITS).join(format!("prepared.s{segment}.json"))
    }

    /// The recorded preparation of the stage starting `segment`, if one can be read.
    pub fn load(out: &Path, segment: usize) -> Option<Preparation> {
        let bytes = std::fs::read(Self::path(out, segment)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes the record atomically.
    pub fn save(&self, out: &Path) -> Result<(), shards::StoreError> {
        shards::atomic::write_file(&Self::path(out, self.segment), &to_json(self))
    }
}

/// What an unfinished run left in `out/_units`: unit records by segment and the two-pass stages
/// prepared, e.g. `unit records: 10 of segment 0, 4 of segment 1; prepared: exact_dedup` (a
/// segment is the stages up to the next two-pass stage).
/// `None` when there is no such folder.
fn unfinished(out: &Path) -> Option<String> {
    let entries = std::fs::read_dir(out.join(UNITS)).ok()?;
    let mut records: std::collections::BTreeMap<usize, usize> = Default::default();
    let mut prepared = Vec::new();
    for name in entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
    {
        let Some((stem, segment)) = name
            .strip_suffix(".json")
            .and_then(|n| n.rsplit_once(".s"))
            .and_then(|(stem, k)| Some((stem, k.parse::<usize>().ok()?)))
        else {
            continue;
        };
        if stem == "prepared" {
            let stage = Preparation::load(out, segment).map_or_else(|| "?".into(), |p| p.stage);
            prepared.push((segment, stage));
        } else {
            *records.entry(segment).or_default() += 1;
        }
    }
    let counts: Vec<String> = records
        .iter()
        .map(|(segment, n)| format!("{n} of segment {segment}"))
        .collect();
    let mut done = format!("unit records: {}", counts.join(", "));
    if !prepared.is_empty() {
        prepared.sort();
        let names: Vec<String> = prepared.into_iter().map(|(_, s)| s).collect();
        done += &format!("; prepared: {}", names.join(", "));
    }
    Some(done)
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use shards::checksum::{checksum_file, to_hex};

    #[test]
    fn a_unit_record_is_valid_only_while_its_parts_are_intact() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        std::fs::create_dir_all(out.join("ingest")).unwrap();
        std::fs::write(out.join("ingest/u.parquet"), b"part bytes").unwrap();
        let sum = to_hex(checksum_file(&out.join("ingest/u.parquet")).unwrap());
        let record = UnitRecord {
            unit: "u".into(),
            source: "s".into(),
            segment: 0,
            first_stage: 0,
            config_hash: "h1".into(),
            inputs: vec![],
            ingest: IngestCounts::default(),
            stages: vec![],
            parts: vec![PartInfo {
                path: "ingest/u.parquet".into(),
                rows: 1,
                bytes: 10,
                xxh3: sum,
            }],
        };
        record.save(out).unwrap();
        assert_eq!(
            UnitRecord::load_valid(out, "u", 1, "h1"),
            None,
            "another segment"
        );
        assert_eq!(UnitRecord::load_valid(out, "u", 0, "h1"), Some(record));
        assert_eq!(
            UnitRecord::load_valid(out, "u", 0, "h2"),
            None,
            "another config"
        );
        std::fs::write(out.join("ingest/u.parquet"), b"corrupted!").unwrap();
        assert_eq!(
            UnitRecord::load_valid(out, "u", 0, "h1"),
            None,
            "a changed part"
        );
    }
}
