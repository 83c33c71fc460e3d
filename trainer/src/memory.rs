//! What a training run on the CPU will need of the machine's memory, checked before the model is
//! built: a run that cannot fit is refused with the settings that decide its size, instead of
//! being killed by the kernel (or aborting on a failed allocation) once it has started.
//!
//! The estimate is a fit of the peak resident memory of `refinery train` (two steps and the final
//! checkpoint) over 17 shapes: 1–12 layers, 4–16 heads, width 128–768, sequences of 128–1024,
//! batches of 1–16, vocabularies of 50k and 100k. Each term is one kind of tensor a step holds:
//!
//! - **weights**: 21 bytes a parameter: the f32 parameter, its gradient and AdamW's two moments
//!   (16 bytes), and the copies a checkpoint serialises;
//! - **logits**: 4 bytes per token and vocabulary entry, the head's one `[B·T, vocab]` tensor
//!   (`cross_entropy::LossGradient`);
//! - **activations**: 112 bytes per token, layer and unit of width (about 28 f32 values the
//!   backward pass needs from each block), plus 24 bytes per attention score of one layer
//!   (`batch × heads × T²`: scores, weights and their gradients, which the attention node
//!   recomputes layer by layer instead of keeping);
//! - **shards**: what the shard reader holds in memory: nothing for a local root or with a
//!   cache folder, else the version's shards up to the reader's budget (1 GiB);
//! - 104 MiB for the program, the shard reader's buffers and the validation windows.
//!
//! With these rounded constants the estimate is 0.88–1.15 of every measured peak (1.14 for
//! `gpt2-124m` at 1,024 tokens, the largest shape measured). The check applies to the CPU only:
//! on CUDA the compute dtype, kernels and allocator differ, and the GPU's memory is its own.

use crate::config::ModelDims;
use crate::error::{Result, TrainError};

/// The parts of a run's estimated peak memory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Parameters, gradients, optimizer moments and checkpoint copies.
    pub weights: u64,
    /// The output head's logits (then their gradient).
    pub logits: u64,
    /// What the blocks keep for the backward pass.
    pub activations: u64,
    /// Token shards the reader holds in memory (an `s3://` root without a cache folder).
    pub shards: u64,
    /// The program, reader and validation windows.
    pub fixed: u64,
}

/// Bytes per parameter (see the module docs).
const PER_PARAMETER: u64 = 21;
/// Bytes per logit.
const PER_LOGIT: u64 = 4;
/// Bytes per token, layer and unit of width.
const PER_ACTIVATION: u64 = 112;
/// Bytes per attention score.
const PER_SCORE: u64 = 24;
/// The rest.
const FIXED: u64 = 104 << 20;

impl MemoryEstimate {
    /// The estimate for a model of `dims` trained on micro-batches of `batch` windows of
    /// `seq_len` tokens (gradient accumulation runs them one after another, so it adds nothing),
    /// reading shards that hold `shards` bytes in memory.
    pub fn new(dims: &ModelDims, batch: usize, seq_len: usize, shards: u64) -> Self {
        let [layers, heads, width, vocab, batch, t] = [
            dims.layers,
            dims.heads,
            dims.width,
            dims.vocab,
            batch,
            seq_len,
        ]
        .map(|v| v as u64);
        let tokens = batch.saturating_mul(t);
        let scores = batch
            .saturating_mul(heads)
            .saturating_mul(t)
            .saturating_mul(t);
        Self {
            weights: dims.parameters().saturating_mul(PER_PARAMETER),
            logits: tokens.saturating_mul(vocab).saturating_mul(PER_LOGIT),
            activations: layers
                .saturating_mul(tokens)
                .saturating_mul(width)
                .saturating_mul(PER_ACTIVATION)
                .saturating_add(scores.saturating_mul(PER_SCORE)),
            shards,
            fixed: FIXED,
        }
    }

    /// The whole estimate.
    pub fn total(&self) -> u64 {
        [
            self.weights,
            self.logits,
            self.activations,
            self.shards,
            self.fixed,
        ]
        .into_iter()
        .fold(0, u64::saturating_add)
    }
}

/// Refuses a CPU run whose estimated peak memory exceeds what the machine has available, naming
/// the settings that decide it. `shards`: bytes of shards the reader holds in memory.
pub fn check(dims: &ModelDims, batch_size: usize, seq_len: usize, shards: u64) -> Result<()> {
    let need = MemoryEstimate::new(dims, batch_size, seq_len, shards);
    let Some(available) = available() else {
        return Ok(());
    };
    tracing::info!(
        estimate_bytes = need.total(),
        shard_bytes = need.shards,
        available_bytes = available,
        "peak memory estimate {} of {} available",
        human(need.total()),
        human(available),
    );
    if need.total() <= available {
        return Ok(());
    }
    let held = if shards > 0 {
        format!(
            ", {} for shards held in memory (set cache_dir under [data] to keep them on disk)",
            human(shards)
        )
    } else {
        String::new()
    };
    Err(TrainError::Config {
        path: "[train]".into(),
        message: format!(
            "this run needs about {} of memory and {} is available: {} for {} parameters \
             (with gradients and AdamW's moments), {} for the logits of batch_size {batch_size} \
             × seq_len {seq_len} × vocabulary {}, {} for the activations of {} layers of width \
             {}{held}; lower batch_size (raise grad_accum to keep the tokens per update), seq_len \
             or the model's size, or set memory_check = false to start anyway",
            human(need.total()),
            human(available),
            human(need.weights),
            count(dims.parameters()),
            human(need.logits),
            dims.vocab,
            human(need.activations),
            dims.layers,
            dims.width,
        ),
    })
}

/// Memory this process may still take: the kernel's `MemAvailable`, lowered to what the limits of
/// its cgroups leave (v2's `memory.max`, v1's `memory.limit_in_bytes`). `None` where none can be
/// read (not Linux).
pub fn available() -> Option<u64> {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_available(&text));
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let cgroups = cgroup_limits(&own)
        .into_iter()
        .filter_map(|(dir, files)| cgroup_headroom(&dir, files));
    machine.into_iter().chain(cgroups).min()
}

/// The names of a cgroup version's memory files: limit, usage, and the `memory.stat` key of the
/// reclaimable page cache.
type CgroupFiles = (&'static str, &'static str, &'static str);

/// cgroup v2.
const V2: CgroupFiles = ("memory.max", "memory.current", "inactive_file");
/// cgroup v1's memory controller.
const V1: CgroupFiles = (
    "memory.limit_in_bytes",
    "memory.usage_in_bytes",
    "total_inactive_file",
);

/// The folders holding this process's memory limits, with their files, from the text of
/// `/proc/self/cgroup`: its v2 group and v1 memory group, and the roots a container mounts its
/// own group at.
fn cgroup_limits(own: &str) -> Vec<(String, CgroupFiles)> {
    let mut found = vec![
        ("/sys/fs/cgroup".to_string(), V2),
        ("/sys/fs/cgroup/memory".to_string(), V1),
    ];
    for line in own.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            continue;
        }
        if controllers.is_empty() {
            found.push((format!("/sys/fs/cgroup{path}"), V2));
        } else if controllers.split(',').any(|c| c == "memory") {
            found.push((format!("/sys/fs/cgroup/memory{path}"), V1));
        }
    }
    found
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// What a cgroup folder's limit leaves: the limit less the usage, the usage without the inactive
/// page cache (which the kernel reclaims before it kills; the "working set" of container
/// runtimes). `None` without a limit (v2 writes `max`) or without the files.
fn cgroup_headroom(dir: &str, (limit, usage, inactive): CgroupFiles) -> Option<u64> {
    let read = |name: &str| std::fs::read_to_string(format!("{dir}/{name}")).ok();
    let max: u64 = read(limit)?.trim().parse().ok()?;
    let current: u64 = read(usage)?.trim().parse().ok()?;
    let stat = read("memory.stat").unwrap_or_default();
    let cache = stat
        .lines()
        .filter_map(|l| {
            l.strip_prefix(inactive)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .next()
        .unwrap_or(0u64);
    Some(max.saturating_sub(current.saturating_sub(cache)))
}

/// `bytes` in MiB, GiB or TiB, for messages.
fn human(bytes: u64) -> String {
    let units = [(40, "TiB"), (30, "GiB")];
    let scaled = |shift: u32| bytes as f64 / (1u64 << shift) as f64;
    match units.iter().find(|(shift, _)| bytes >= 1 << shift) {
        Some(&(shift, unit)) => format!("{:.1} {unit}", scaled(shift)),
        None => format!("{:.0} MiB", scaled(20)),
    }
}

/// A count with a metric suffix (`7.3M`, `124.4M`, `52.8T`), for messages.
fn count(n: u64) -> String {
    let suffixes = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")];
    let v = n as f64;
    match suffixes.iter().find(|(scale, _)| v >= *scale) {
        Some((scale, suffix)) => format!("{:.1}{suffix}", v / scale),
        None => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(layers: usize, heads: usize, width: usize, context: usize, vocab: usize) -> ModelDims {
        ModelDims {
            layers,
            heads,
            width,
            context,
            vocab,
        }
    }

    #[test]
    fn the_estimate_is_within_15_percent_of_measured_peaks() {
        // Peak RSS of `refinery train --max-steps 2` (dev build, session 37) for shapes the fit
        // used: (layers, heads, width, seq, batch, vocab) → MiB.
        let measured = [
            ((4, 4, 128, 256, 1, 50_304), 320),
            ((4, 4, 128, 256, 16, 50_304), 1312),
            ((4, 4, 256, 256, 4, 50_304), 664),
            ((4, 4, 512, 256, 1, 50_304), 1121),
            ((4, 4, 512, 256, 8, 50_304), 1775),
            ((12, 12, 768, 256, 1, 50_304), 2902),
            ((12, 12, 768, 1024, 1, 50_304), 3582),
            ((4, 4, 128, 256, 4, 100_032), 794),
            ((1, 16, 128, 512, 4, 50_304), 1054),
            ((8, 16, 128, 512, 4, 50_304), 1225),
            ((2, 16, 128, 1024, 2, 50_304), 1436),
        ];
        for ((l, h, w, t, b, v), mib) in measured {
            let got = MemoryEstimate::new(&dims(l, h, w, t, v), b, t, 0).total() >> 20;
            let ratio = got as f64 / mib as f64;
            assert!(
                (0.85..1.15).contains(&ratio),
                "{l} {h} {w} {t} {b} {v}: {got} vs {mib} MiB"
            );
        }
    }

    #[test]
    fn each_term_grows_with_its_setting() {
        let base = MemoryEstimate::new(&dims(4, 4, 128, 256, 50_304), 8, 256, 0);
        let batch = MemoryEstimate::new(&dims(4, 4, 128, 256, 50_304), 16, 256, 0);
        assert_eq!(batch.logits, 2 * base.logits);
        assert_eq!(batch.activations, 2 * base.activations);
        assert_eq!(
            batch.weights, base.weights,
            "micro-batches share the weights"
        );
        let wide = MemoryEstimate::new(&dims(4, 4, 256, 256, 50_304), 8, 256, 0);
        let remote = MemoryEstimate::new(&dims(4, 4, 128, 256, 50_304), 8, 256, 1 << 30);
        assert_eq!(
            remote.total(),
            base.total() + (1 << 30),
            "shards held in memory add up"
        );
        assert!(wide.weights > base.weights && wide.activations > base.activations);
        let huge = MemoryEstimate::new(
            &dims(1 << 10, 1 << 16, 1 << 16, 1 << 20, 1 << 24),
            1 << 16,
            1 << 20,
            0,
        );
        assert_eq!(huge.total(), u64::MAX, "saturates instead of wrapping");
    }

    #[test]
    fn sizes_and_counts_read_in_their_units() {
        assert_eq!(human(300 << 20), "300 MiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
        assert_eq!(human(5 << 40), "5.0 TiB");
        assert_eq!(count(950), "950");
        assert_eq!(count(7_300_000), "7.3M");
        assert_eq!(count(52_777_573_285_888), "52.8T");
    }

    #[test]
    fn reads_mem_available_and_a_cgroup_limit() {
        let meminfo = "MemTotal:       24683612 kB\nMemFree:        18307140 kB\nMemAvailable:   24011444 kB\n";
        assert_eq!(mem_available(meminfo), Some(24_011_444 * 1024));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
        let dir = std::env::temp_dir().join(format!("refinery-cgroup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.to_str().unwrap();
        let v2 = |d| cgroup_headroom(d, V2);
        std::fs::write(dir.join("memory.current"), "1073741824\n").unwrap();
        std::fs::write(dir.join("memory.max"), "max\n").unwrap();
        assert_eq!(v2(d), None, "no limit");
        std::fs::write(dir.join("memory.max"), "4294967296\n").unwrap();
        assert_eq!(v2(d), Some(3 << 30));
        std::fs::write(dir.join("memory.usage_in_bytes"), "1073741824\n").unwrap();
        std::fs::write(dir.join("memory.limit_in_bytes"), "2147483648\n").unwrap();
        assert_eq!(cgroup_headroom(d, V1), Some(1 << 30));
        // Inactive page cache counts as free: the kernel reclaims it before it kills.
        let stat = "inactive_file 536870912\ntotal_inactive_file 268435456\n";
        std::fs::write(dir.join("memory.stat"), stat).unwrap();
        assert_eq!(v2(d), Some((3 << 30) + (1 << 29)));
        assert_eq!(cgroup_headroom(d, V1), Some((1 << 30) + (1 << 28)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn finds_the_cgroups_of_v2_and_v1_lines() {
        let folders = |text| {
            let limits = cgroup_limits(text);
            limits
                .into_iter()
                .map(|(d, (l, _, _))| format!("{d}/{l}"))
                .collect::<Vec<_>>()
        };
        let roots = [
            "/sys/fs/cgroup/memory.max",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        ];
        assert_eq!(
            folders("0::/\n"),
            roots,
            "a container's own group is the root"
        );
        let v2 = folders("0::/user.slice/user-0.slice/session-1.scope\n");
        assert_eq!(
            v2[2],
            "/sys/fs/cgroup/user.slice/user-0.slice/session-1.scope/memory.max"
        );
        let v1 = folders("12:cpu,cpuacct:/docker/ab\n9:memory:/docker/ab\n1:name=systemd:/x\n");
        assert_eq!(v1.len(), 3);
        assert_eq!(
            v1[2],
            "/sys/fs/cgroup/memory/docker/ab/memory.limit_in_bytes"
        );
    }
}
