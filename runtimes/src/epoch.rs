//! The epoch ticker behind wall-clock timeouts.
//!
//! Compiled guest code checks the engine's epoch counter at loop back-edges
//! and function entries; this thread advances it every [`TICK`] while at
//! least one run is in progress, and sleeps otherwise, so an idle engine
//! costs no wake-ups. Each store's deadline callback then compares the real
//! clock with the run's deadline.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the epoch advances during runs: the granularity of timeouts.
pub const TICK: Duration = Duration::from_millis(1);

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
    while !shared.stop.load(Ordering::SeqCst) {
        if shared.active_runs.load(Ordering::SeqCst) == 0 {
            let lock = shared.wake.0.lock().unwrap_or_else(|p| p.into_inner());
            // Re-check under the lock: a run may have started meanwhile.
            if shared.active_runs.load(Ordering::SeqCst) == 0 && !shared.stop.load(Ordering::SeqCst)
            {
                drop(shared.wake.1.wait(lock));
            }
            continue;
        }
        std::thread::sleep(TICK);
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
