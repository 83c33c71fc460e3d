//! Progress reporting: shared counters that workers bump, drawn as a bar on a terminal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Mutex;

/// Counters of a run in progress, and the bar that shows them (hidden when quiet or not a
/// terminal).
pub struct Progress {
    /// Input bytes fetched.
    pub bytes: Arc<AtomicU64>,
    /// Documents through the chain.
    pub docs: Arc<AtomicU64>,
    bar: ProgressBar,
    stop: Arc<AtomicBool>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

impl Progress {
    /// A reporter; `visible = false` draws nothing.
    pub fn new(visible: bool) -> Self {
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        let style = ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        Self {
            bytes: Arc::default(),
            docs: Arc::default(),
            bar,
            stop: Arc::default(),
            ticker: Mutex::new(None),
        }
    }

    /// Starts drawing, with `total` input bytes expected.
    pub fn start(&self, total: u64) {
        self.bar.set_length(total);
        let (bar, bytes, docs, stop) = (
            self.bar.clone(),
            self.bytes.clone(),
            self.docs.clone(),
            self.stop.clone(),
        );
        let started = Instant::now();
        let handle = std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let d = docs.load(Ordering::Relaxed);
                let rate = d as f64 / started.elapsed().as_secs_f64().max(1e-3);
                bar.set_position(bytes.load(Ordering::Relaxed));
                bar.set_message(format!("{d} docs ({rate:.0} docs/s)"));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        *self.ticker.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
    }

    /// Stops drawing and clears the bar.
    pub fn finish(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.ticker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = h.join();
        }
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
