//! Run outputs: Parquet parts and the manifests that make them verifiable and resumable.
//!
//! Layout of an output folder:
//!
//! ```text
//! <out>/<dataset>/<unit>.parquet   documents kept by a stage (dataset = stage name, or `ingest`)
//! <out>/rejects/<unit>.parquet     documents dropped, with stage, rule, value and threshold
//! <out>/edits/<unit>.parquet       changes stages made to kept documents (lines removed, PII)
//! <out>/contamination/<unit>.parquet benchmark passages found by a decontaminate stage
//! <out>/documents/<unit>.parquet   lineage: every ingested document (id, provenance, bytes), no text
//! <out>/decisions/<unit>.parquet   lineage: every document × stage it reached, kept or dropped, why
//! <out>/runs/<started>-<n>.parquet lineage: one row per invocation, failed ones too (config, times, inputs)
//! <out>/quarantine/<unit>.parquet  records ingest could not read, with the reason
//! <out>/quarantine/inputs.parquet  input specs that named nothing or could not be reached
//! <out>/clusters/<stage>.parquet   duplicate clusters found by a dedup stage, one row a member
//! <out>/dedup_index/<stage>.parquet documents a dedup stage kept, for later runs' `against`
//! <out>/_units/<unit>.s<k>.json    one unit through segment k: counts, inputs, parts with checksums
//! <out>/_units/prepared.s<k>.json  the preparation of the two-pass stage starting segment k
//! <out>/_manifest.json             the run: written last, only when every unit is done
//! <out>/_lock                      held while a process writes the folder (see [`lock`])
//! ```
//!
//! - [`part`]: writing one Parquet part atomically with its checksum.
//! - [`codec`]: the codec of the document datasets.
//! - [`lock`]: one writer at a time (`<out>/_lock`).
//! - [`manifest`]: unit records and the run manifest.

pub mod codec;
pub mod lock;
pub mod manifest;
pub mod part;

use std::io::ErrorKind;
use std::path::Path;

/// Folder of rejected documents.
pub const REJECTS: &str = "rejects";
/// Folder of edits: changes stages made to documents they kept.
pub const EDITS: &str = "edits";
/// Folder of the `documents` lineage table.
pub const DOCUMENTS: &str = "documents";
/// Folder of the `decisions` lineage table.
pub const DECISIONS: &str = "decisions";
/// Folder of the `runs` lineage table.
pub const RUNS: &str = "runs";
/// Folder of quarantined records.
pub const QUARANTINE: &str = "quarantine";
/// Folder of the `clusters` tables, one part per dedup stage.
pub const CLUSTERS: &str = "clusters";
/// Folder of dedup indexes, one part per dedup stage.
pub const DEDUP_INDEX: &str = "dedup_index";
/// Folder of finished-unit records.
pub const UNITS: &str = "_units";
/// The run manifest's file name.
pub const MANIFEST: &str = "_manifest.json";
/// Part holding input-level quarantine rows.
pub const INPUTS_PART: &str = "quarantine/inputs.parquet";

/// Checks that `out` is a folder or can be made one: the closest of it and its ancestors that
/// exists must be a folder. Otherwise says which path is in the way.
pub fn check_folder(out: &Path) -> Result<(), String> {
    let mut path = out;
    loop {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) if path == out => {
                return Err(format!("`{}` exists and is not a folder", out.display()));
            }
            Ok(_) => {
                return Err(format!(
                    "`{}` cannot be created: `{}` is a file",
                    out.display(),
                    path.display()
                ));
            }
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                match path.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => path = parent,
                    _ => return Ok(()),
                }
            }
            Err(e) => return Err(format!("`{}`: {e}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_folder;

    #[test]
    fn a_file_in_the_way_of_the_output_folder_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert_eq!(check_folder(dir.path()), Ok(()));
        assert_eq!(check_folder(&dir.path().join("new/deeper")), Ok(()));
        assert!(
            check_folder(&file)
                .unwrap_err()
                .ends_with("exists and is not a folder")
        );
        let below = check_folder(&file.join("a/b")).unwrap_err();
        assert!(
            below.ends_with(&format!("`{}` is a file", file.display())),
            "{below}"
        );
        assert_eq!(check_folder(std::path::Path::new("relative-new")), Ok(()));
    }
}
