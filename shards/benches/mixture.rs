//! Draws per second of the mixture sampler: the cost of replaying a long training run's data
//! order (`refinery lineage trace` replays every window the latest checkpoint drew; see
//! `trainer::replay`). Each case is a two-phase schedule over sources of a million windows or so,
//! drawn from the start as a replay does; each runs twice and the faster run counts.
//!
//! Usage: `cargo bench -p shards --bench mixture [-- DRAWS]` (default 10,000,000 draws a case).

use std::time::Instant;

use shards::mixture::{MixtureSampler, Phase};

const WINDOW_TOKENS: u64 = 1024;

fn main() {
    let draws: u64 = std::env::args()
        .skip(1)
        .find(|a| a != "--bench")
        .map_or(10_000_000, |a| {
            a.parse().ok().filter(|&n| n > 0).unwrap_or_else(|| {
                eprintln!("usage: mixture [DRAWS] (a positive number, not {a:?})");
                std::process::exit(2);
            })
        });
    println!("{draws} draws a case, windows of {WINDOW_TOKENS} tokens");
    println!("{:>8} {:>10} {:>14}", "sources", "seconds", "M draws/s");
    for sources in [1, 3, 8, 20] {
        let best = (0..2)
            .map(|_| time_draws(sources, draws))
            .fold(f64::INFINITY, f64::min);
        println!(
            "{sources:>8} {best:>10.2} {:>14.1}",
            draws as f64 / best / 1e6
        );
    }
}

/// Seconds to draw `draws` windows from a fresh sampler over `sources` sources whose weights
/// change halfway.
fn time_draws(sources: usize, draws: u64) -> f64 {
    let windows = (0..sources as u64).map(|i| 1_000_000 + 7_919 * i).collect();
    let ramp = |up: bool| -> Vec<f64> {
        (0..sources)
            .map(|i| (if up { i + 1 } else { sources - i }) as f64)
            .collect()
    };
    let phases = vec![
        Phase {
            until_tokens: Some(draws / 2 * WINDOW_TOKENS),
            weights: ramp(true),
        },
        Phase {
            until_tokens: None,
            weights: ramp(false),
        },
    ];
    let mut sampler =
        MixtureSampler::new(windows, phases, WINDOW_TOKENS, 7).expect("a valid schedule");
    let start = Instant::now();
    let mut checksum = 0u64;
    for _ in 0..draws {
        checksum ^= sampler.next_draw().window;
    }
    let seconds = start.elapsed().as_secs_f64();
    std::hint::black_box(checksum);
    seconds
}
