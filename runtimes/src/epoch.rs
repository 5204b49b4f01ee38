//! The epoch ticker behind wall-clock timeouts.
//!
//! Compiled guest code checks the engine's epoch counter at loop back-edges
//! and function entries; this thread advances it every [`TICK`] while at
//! least one run is in progress, and sleeps otherwise, so an idle engine
//! costs no wake-ups. Each store's deadline callback then compares the real
//! clock with the run's deadline, and yields to the executor if it has not
//! passed: a tick is the time slice of a busy guest.
//!
//! A busy guest whose deadline passes while other busy guests share its
//! thread is stopped only when its turn comes round again, so with many runs
//! at once the tick shortens to keep a round of slices within [`ROUND`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the epoch advances while few runs are active: the time slice
/// of a busy guest, and the granularity of timeouts.
pub const TICK: Duration = Duration::from_millis(1);

/// The shortest tick, however many runs are active (each tick wakes this
/// thread and makes every busy guest yield once).
const MIN_TICK: Duration = Duration::from_micros(250);

/// The longest a round of time slices should take: the runs on one thread
/// each get a slice before a guest past its deadline is resumed and stopped.
const ROUND: Duration = Duration::from_millis(4);

/// The tick for `active` runs spread over `threads` threads: [`TICK`], or
/// shorter so that a round of slices fits in [`ROUND`], down to [`MIN_TICK`].
fn tick_for(active: usize, threads: usize) -> Duration {
    let per_thread = active.div_ceil(threads.max(1)).max(1);
    let per_thread = u32::try_from(per_thread).unwrap_or(u32::MAX);
    (ROUND / per_thread).clamp(MIN_TICK, TICK)
}

pub(crate) struct EpochTicker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    active_runs: AtomicUsize,
    stop: AtomicBool,
    wake: (Mutex<()>, Condvar),
}

impl EpochTicker {
    pub(crate) fn start(engine: wasmtime::Engine) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            active_runs: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            wake: (Mutex::new(()), Condvar::new()),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("goru-epoch".into())
            .spawn(move || tick_loop(&thread_shared, &engine))?;
        Ok(EpochTicker {
            shared,
            thread: Some(thread),
        })
    }

    /// Marks a run as in progress until the guard is dropped.
    pub(crate) fn run_guard(&self) -> RunGuard {
        if self.shared.active_runs.fetch_add(1, Ordering::SeqCst) == 0 {
            let _lock = self.shared.wake.0.lock();
            self.shared.wake.1.notify_one();
        }
        RunGuard {
            shared: self.shared.clone(),
        }
    }
}

fn tick_loop(shared: &Shared, engine: &wasmtime::Engine) {
    // How many threads the runs are likely spread over (a Tokio runtime's default).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    while !shared.stop.load(Ordering::SeqCst) {
        let active = shared.active_runs.load(Ordering::SeqCst);
        if active == 0 {
            let lock = shared.wake.0.lock().unwrap_or_else(|p| p.into_inner());
            // Re-check under the lock: a run may have started meanwhile.
            if shared.active_runs.load(Ordering::SeqCst) == 0 && !shared.stop.load(Ordering::SeqCst)
            {
                drop(shared.wake.1.wait(lock));
            }
            continue;
        }
        std::thread::sleep(tick_for(active, threads));
        engine.increment_epoch();
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        {
            let _lock = self.shared.wake.0.lock();
            self.shared.wake.1.notify_one();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Keeps the ticker running while a run is in progress.
pub(crate) struct RunGuard {
    shared: Arc<Shared>,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.shared.active_runs.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tick_shortens_with_many_runs_per_thread() {
        assert_eq!(tick_for(0, 2), TICK);
        assert_eq!(tick_for(1, 1), TICK);
        assert_eq!(tick_for(8, 2), TICK, "4 runs a thread fit a round at 1 ms");
        assert_eq!(tick_for(16, 2), Duration::from_micros(500));
        assert_eq!(tick_for(32, 2), MIN_TICK);
        assert_eq!(tick_for(10_000, 2), MIN_TICK);
        assert_eq!(tick_for(3, 0), TICK, "no threads counts as one");
    }
}
