//! Recorded preparations of two-pass stages, which let tasks run the segments after them.
//!
//! A two-pass stage decides from every document that reached it: the parts that the segment
//! before it wrote for every unit. After preparing such a stage, a run writes
//! `_units/prepared.s<segment>.json`: the stage's name and a key of its input, the xxh3 of every
//! unit's record of the segment before (records list each part with its checksum). A task runs
//! segment `k` only when that file names the same stage and key as the records in the folder
//! now and the tables the preparation wrote are intact; it then restores the stage's decisions
//! from them ([`crate::stage::Stage::restore`]) instead of observing every document itself. A
//! whole run does the same, so the run that finishes a partitioned one does not observe again.

use std::path::Path;

use shards::checksum::to_hex;
use xxhash_rust::xxh3::Xxh3;

use crate::ingest::Unit;
use crate::output::manifest::{Preparation, UnitRecord};
use crate::output::part::PartInfo;

/// The key of the documents reaching segment `segment` (> 0): the xxh3 of every unit's record
/// of the segment before, in plan order. `None` while a unit has no such record from this
/// config.
pub(super) fn input_key(
    out: &Path,
    units: &[Unit],
    segment: usize,
    config_hash: &str,
) -> Option<String> {
    let mut hasher = Xxh3::new();
    for unit in units {
        let bytes = std::fs::read(UnitRecord::path(out, &unit.id, segment - 1)).ok()?;
        let record: UnitRecord = serde_json::from_slice(&bytes).ok()?;
        if record.config_hash != config_hash {
            return None;
        }
        hasher.update(&bytes);
    }
    Some(to_hex(hasher.digest()))
}

/// Records that `stage`, which starts `segment`, was prepared from the input with `key` and
/// wrote `tables`.
pub(super) fn record(
    out: &Path,
    segment: usize,
    stage: &str,
    key: &str,
    tables: &[PartInfo],
) -> Result<(), shards::StoreError> {
    Preparation {
        segment,
        stage: stage.to_string(),
        input: key.to_string(),
        tables: tables.to_vec(),
    }
    .save(out)
}

/// The tables of the preparation of `stage`, which starts `segment`, when one is recorded for
/// the documents the folder holds now and its tables are intact. A record that exists but does
/// not fit is not used, with a warning saying why.
pub(super) fn recorded(
    out: &Path,
    units: &[Unit],
    segment: usize,
    stage: &str,
    config_hash: &str,
) -> Option<Vec<PartInfo>> {
    let path = Preparation::path(out, segment);
    if !path.exists() {
        return None;
    }
    let why = match Preparation::load(out, segment) {
        None => "it cannot be read",
        Some(p) if p.stage != stage => "it is of another stage",
        Some(p) if Some(&p.input) != input_key(out, units, segment, config_hash).as_ref() => {
            "the documents reaching the stage are not those it saw"
        }
        Some(p) if !p.tables.iter().all(|t| t.is_intact(out)) => "its tables have changed",
        Some(p) => return Some(p.tables),
    };
    tracing::warn!(
        stage,
        "Not using the preparation recorded in {}: {why}",
        path.display()
    );
    None
}
