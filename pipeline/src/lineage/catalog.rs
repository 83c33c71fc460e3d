//! Finding the lineage tables of a checkpoint, a training folder, a version or a run, and
//! registering them in a DataFusion session.

use std::path::{Path, PathBuf};

use arrow::array::{Array, StringArray};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use shards::dataset::{DatasetRoot, Manifest};
use tokio::runtime::Handle;
use trainer::Checkpoint;

use super::LineageError;
use super::training::{DIR, LOSSES, TRAINING};
use crate::output::manifest::Manifest as RunManifest;
use crate::output::part::read_part;
use crate::output::{CLUSTERS, DECISIONS, DOCUMENTS, EDITS, MANIFEST, QUARANTINE, REJECTS, RUNS};
use crate::stages::decontaminate::CONTAMINATION;
use crate::tokenize::dropped;

/// The table of a version's shard indexes.
pub const SHARD_DOCS: &str = "shard_docs";
/// The table of the token counts of dropped documents.
pub const DROPPED_TOKENS: &str = "dropped_tokens";

/// A token version: its root, id and manifest.
#[derive(Debug, Clone)]
pub struct VersionRef {
    /// The dataset root.
    pub root: DatasetRoot,
    /// The version id.
    pub id: String,
    /// Its manifest.
    pub manifest: Manifest,
}

/// Everything known about where one model's or dataset's data came from.
#[derive(Default)]
pub struct Lineage {
    /// The checkpoint, when the lineage starts from one.
    pub checkpoint: Option<Checkpoint>,
    /// Its training output folder.
    pub train: Option<PathBuf>,
    /// The token version.
    pub version: Option<VersionRef>,
    /// The run output folder that made the version.
    pub run: Option<PathBuf>,
}

impl Lineage {
    /// Follows the links from `spec`: a checkpoint folder, a training output folder (its latest
    /// checkpoint), a run output folder (the version its last invocation tokenized into), or a
    /// dataset root (local or `s3://`, version `version` or `latest`).
    pub fn locate(
        spec: &str,
        version: Option<&str>,
        handle: &Handle,
    ) -> Result<Self, LineageError> {
        let path = Path::new(spec);
        let mut lineage = Lineage::default();
        if path.join(trainer::checkpoint::LINEAGE).is_file()
            || path.join(trainer::checkpoint::DIR).is_dir()
            || path.join(trainer::train::METRICS).is_file()
        {
            let folder = trainer::checkpoint::latest(path)?.unwrap_or_else(|| path.to_path_buf());
            let checkpoint = Checkpoint::load(&folder)?;
            lineage.train = folder
                .parent()
                .and_then(Path::parent)
                .map(Path::to_path_buf);
            let (root, id) = (&checkpoint.lineage.root, &checkpoint.lineage.version);
            lineage.version = Some(open_version(root, Some(id), handle)?);
            lineage.checkpoint = Some(checkpoint);
        } else if path.join(MANIFEST).is_file() {
            lineage.run = Some(absolute(path));
            if let Some((root, id)) = last_version(path)? {
                lineage.version = Some(open_version(&root, Some(&id), handle)?);
            }
            return Ok(lineage);
        } else if path.join(crate::output::UNITS).is_dir() {
            // A run output folder whose run has not finished: the manifest's error says so.
            let why = RunManifest::load(path).err().unwrap_or_default();
            return Err(LineageError::NotFound(why));
        } else {
            let v = open_version(spec, version, handle).map_err(|e| {
                LineageError::NotFound(format!(
                    "{spec} is not a checkpoint, a training folder, a run output folder or a dataset root ({e})"
                ))
            })?;
            lineage.version = Some(v);
        }
        lineage.run = lineage.version.as_ref().and_then(run_of);
        Ok(lineage)
    }

    /// The names and locations of the tables this lineage has (`shard_docs`: the version folder,
    /// read as its `*.index.parquet` files).
    pub fn tables(&self) -> Result<Vec<(String, String)>, LineageError> {
        let mut tables = Vec::new();
        if let Some(run) = &self.run {
            tables.extend(run_tables(run)?);
        }
        if let Some(v) = &self.version {
            // Local roots as plain paths: `refinery query --table` takes them as they are.
            let root = v.root.uri().trim_end_matches('/');
            let dir = format!(
                "{}/versions/{}/",
                root.strip_prefix("file://").unwrap_or(root),
                v.id
            );
            tables.push((SHARD_DOCS.to_string(), dir.clone()));
            if v.manifest.files.iter().any(|f| f.path == dropped::FILE) {
                tables.push((
                    DROPPED_TOKENS.to_string(),
                    format!("{dir}{}", dropped::FILE),
                ));
            }
        }
        if let Some(train) = &self.train {
            for (name, file) in [("training", TRAINING), ("losses", LOSSES)] {
                let path = train.join(DIR).join(file);
                if path.is_file() {
                    tables.push((name.to_string(), path.display().to_string()));
                }
            }
        }
        Ok(tables)
    }

    /// Whether the lineage has table `name`.
    pub fn has(&self, name: &str) -> Result<bool, LineageError> {
        Ok(self.tables()?.iter().any(|(n, _)| n == name))
    }

    /// A session of at most `memory_budget` bytes with every table registered.
    pub async fn context(&self, memory_budget: usize) -> Result<SessionContext, LineageError> {
        let ctx = crate::sql::session::session(memory_budget);
        if let Some(v) = &self.version {
            crate::sql::register_bucket(&ctx, v.root.uri())?;
        }
        for (name, path) in self.tables()? {
            match (name.as_str(), &self.version) {
                (SHARD_DOCS, Some(v)) => {
                    register_version_index(&ctx, &v.root, &v.id, SHARD_DOCS).await?
                }
                _ => {
                    ctx.register_parquet(
                        name.as_str(),
                        path.as_str(),
                        ParquetReadOptions::default(),
                    )
                    .await?
                }
            }
        }
        Ok(ctx)
    }
}

/// Registers the shard indexes of version `id` as `table` (the session must come from
/// [`crate::sql::session::session`]); S3 roots get their bucket's store registered.
pub async fn register_version_index(
    ctx: &SessionContext,
    root: &DatasetRoot,
    id: &str,
    table: &str,
) -> Result<(), LineageError> {
    crate::sql::register_bucket(ctx, root.uri())?;
    let options = ParquetReadOptions {
        file_extension: ".index.parquet",
        ..ParquetReadOptions::default()
    };
    let dir = format!("{}/versions/{id}/", root.uri().trim_end_matches('/'));
    ctx.register_parquet(table, dir.as_str(), options).await?;
    Ok(())
}

/// The tables of a run's output folder: its datasets, `rejects`, `edits`, `quarantine`, the
/// lineage tables `documents`, `decisions` and `runs`, and, when a stage wrote them, `clusters`
/// (dedup) and `contamination` (decontaminate).
pub fn run_tables(dir: &Path) -> Result<Vec<(String, String)>, LineageError> {
    let manifest = RunManifest::load(dir).map_err(LineageError::NotFound)?;
    let mut names = manifest.datasets.clone();
    names.extend([REJECTS, EDITS, QUARANTINE].map(String::from));
    for optional in [CLUSTERS, CONTAMINATION, DOCUMENTS, DECISIONS] {
        let folder = format!("{optional}/");
        if manifest.files.iter().any(|f| f.path.starts_with(&folder)) {
            names.push(optional.to_string());
        }
    }
    if dir.join(RUNS).is_dir() {
        names.push(RUNS.to_string());
    }
    Ok(names
        .into_iter()
        .map(|n| (n.clone(), dir.join(&n).display().to_string()))
        .collect())
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn open_version(spec: &str, id: Option<&str>, handle: &Handle) -> Result<VersionRef, LineageError> {
    let root = DatasetRoot::open(spec)?;
    let (id, manifest) = handle.block_on(async {
        let id = root.resolve(id).await?;
        let manifest = root.manifest(&id).await?;
        Ok::<_, shards::StoreError>((id, manifest))
    })?;
    Ok(VersionRef { root, id, manifest })
}

/// The local run folder a version was made from, if it is still there.
fn run_of(version: &VersionRef) -> Option<PathBuf> {
    let parent = version.manifest.parents.iter().find(|p| p.kind == "run")?;
    let path = PathBuf::from(parent.uri.strip_prefix("file://")?);
    path.join(MANIFEST).is_file().then_some(path)
}

/// The token version the latest invocation of a run wrote or reused (from its `runs` table).
fn last_version(run: &Path) -> Result<Option<(String, String)>, LineageError> {
    let dir = run.join(RUNS);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(None);
    };
    let mut parts: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    parts.sort();
    let Some(last) = parts.last() else {
        return Ok(None);
    };
    for batch in read_part(last, 16)? {
        let batch = batch?;
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
        };
        if let (Some(root), Some(id)) = (column("version_root"), column("version"))
            && root.len() > 0
            && root.is_valid(0)
            && id.is_valid(0)
        {
            return Ok(Some((root.value(0).to_string(), id.value(0).to_string())));
        }
    }
    Ok(None)
}
