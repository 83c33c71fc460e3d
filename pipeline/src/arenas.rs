//! How many malloc arenas the process may use.
//!
//! glibc's allocator gives each new thread an arena of its own, up to eight per core, and an arena
//! keeps the memory its threads freed for their next allocations instead of returning it. A run
//! starts a thread per stage for each worker, and dedup, tokenizing and the Parquet writers
//! allocate on many threads: on 2 cores, a run with `normalize` and `exact_dedup` held 370 MiB
//! resident for a heap whose peak was 118 MiB, and the whole corpus through 11 stages and
//! tokenize held 670 MiB. [`limit`] caps the arenas at twice the number of cores, which cut the
//! latter to 400 MiB at the same CPU time; one arena a core saved a little more memory but cost
//! 5 % more CPU, as running threads then often share one (`bench/memory.sh`, `BENCHMARKS.md`).
//!
//! A user's own setting wins: with `MALLOC_ARENA_MAX` or a `glibc.malloc.arena_max` tunable in
//! the environment, nothing is changed. Other C libraries and allocators are left alone.

/// Caps the C allocator's arenas at twice the number of cores (see the module docs). Call it
/// first in `main`, before any thread starts; returns the cap set, or `None` where nothing was
/// changed.
pub fn limit() -> Option<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cap = cap_for(
        |name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()),
        cores,
    )?;
    set_arena_max(cap).then_some(cap)
}

/// The cap for `cores` cores, or `None` where the environment (read by `var`) already sets one.
fn cap_for(var: impl Fn(&str) -> Option<String>, cores: usize) -> Option<usize> {
    let tunables = var("GLIBC_TUNABLES").unwrap_or_default();
    let tuned = tunables
        .split(':')
        .any(|t| t.trim().starts_with("glibc.malloc.arena_max="));
    (var("MALLOC_ARENA_MAX").is_none() && !tuned).then_some(2 * cores.max(1))
}

/// Sets glibc's `M_ARENA_MAX`; whether it took.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set_arena_max(cap: usize) -> bool {
    let cap = libc::c_int::try_from(cap).unwrap_or(libc::c_int::MAX);
    // SAFETY: `mallopt` only changes a setting of the allocator, under the allocator's own lock;
    // it takes no pointers, and arenas already created are kept.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, cap) == 1 }
}

/// Other C libraries have no such setting.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_cap: usize) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn caps_at_the_core_count_unless_the_environment_sets_it() {
        assert_eq!(cap_for(env(&[]), 2), Some(4));
        assert_eq!(cap_for(env(&[]), 16), Some(32));
        assert_eq!(cap_for(env(&[]), 0), Some(2));
        assert_eq!(cap_for(env(&[("MALLOC_ARENA_MAX", "8")]), 2), None);
        let tuned = [(
            "GLIBC_TUNABLES",
            "glibc.malloc.trim_threshold=1:glibc.malloc.arena_max=4",
        )];
        assert_eq!(cap_for(env(&tuned), 2), None);
        let other = [("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1")];
        assert_eq!(cap_for(env(&other), 2), Some(4));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_takes_the_setting() {
        // Setting the cap the process would get anyway changes nothing for the other tests.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!(set_arena_max(2 * cores));
    }
}
