//! The run's manifest from its unit records, with the accounting checks: every stage's input is
//! the previous stage's kept documents (or the ingested ones), and every source's records are its
//! documents plus its quarantined records.

use super::RunError;
use crate::config::Config;
use crate::output::manifest::{
    Accounting, FORMAT, FORMAT_VERSION, Manifest, SourceCounts, StageCounts, UnitRecord,
};
use crate::output::part::PartInfo;

/// Sums unit records into the manifest and checks that the stage counts chain up.
pub(super) fn build_manifest(
    config: &Config,
    names: &[String],
    datasets: &[(String, usize)],
    records: &[UnitRecord],
    run_files: Vec<PartInfo>,
    quarantined_inputs: u64,
    config_hash: String,
) -> Result<Manifest, RunError> {
    let mut sources: Vec<SourceCounts> = config
        .sources
        .iter()
        .map(|s| SourceCounts {
            source: s.get_ref().name.clone(),
            counts: Default::default(),
        })
        .collect();
    let mut stages: Vec<StageCounts> = names
        .iter()
        .map(|n| StageCounts {
            name: n.clone(),
            ..Default::default()
        })
        .collect();
    for r in records {
        if let Some(s) = sources.iter_mut().find(|s| s.source == r.source) {
            let c = &mut s.counts;
            c.records += r.ingest.records;
            c.documents += r.ingest.documents;
            c.quarantined_records += r.ingest.quarantined_records;
            c.file_errors += r.ingest.file_errors;
        }
        for (total, unit) in stages.iter_mut().skip(r.first_stage).zip(&r.stages) {
            total.add(unit);
        }
    }
    let documents: u64 = sources.iter().map(|s| s.counts.documents).sum();
    let mut expected_in = documents;
    for s in &stages {
        if s.input != expected_in || s.input != s.kept + s.dropped {
            return Err(RunError::Accounting(format!(
                "stage {}: {} in, {} kept, {} dropped, {expected_in} expected in",
                s.name, s.input, s.kept, s.dropped
            )));
        }
        expected_in = s.kept;
    }
    for s in &sources {
        let c = &s.counts;
        if c.records != c.documents + c.quarantined_records {
            return Err(RunError::Accounting(format!(
                "source {}: {} records read, {} documents + {} quarantined",
                s.source, c.records, c.documents, c.quarantined_records
            )));
        }
    }
    let mut files: Vec<_> = records
        .iter()
        .flat_map(|r| r.parts.iter().cloned())
        .collect();
    files.extend(run_files);
    Ok(Manifest {
        format: FORMAT.to_string(),
        format_version: FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        config_hash,
        stages: names.to_vec(),
        datasets: datasets.iter().map(|(d, _)| d.clone()).collect(),
        inputs: records
            .iter()
            .filter(|r| r.segment == 0)
            .flat_map(|r| r.inputs.iter().cloned())
            .collect(),
        files,
        accounting: Accounting {
            sources,
            stages,
            quarantined_inputs,
        },
    })
}
