//! The warm pool: instances of each guest created and initialised ahead of
//! time, so that starting a session is taking one rather than instantiating.
//!
//! One background thread per engine (`goru-warm-pool`) tops the pool up
//! after every checkout. It only ever instantiates a guest and calls its
//! `init` with the defaults of [`crate::SessionBuilder::new`]
//! ([`Setup::new`]); the instance that fills the pool is also asked whether
//! an empty entry is complete, which runs nothing but moves a first run's
//! page faults off the request path ([`Instance::touch_run_path`]). No request's code runs there. The question
//! costs more CPU than it saves, so while requests keep the pool below full
//! the thread makes plain instances, as fast as it can.
//!
//! Instances are single-use: a checked-out instance becomes one session and
//! is dropped with it, and nothing is ever returned to the pool. The thread
//! holds the guests weakly and ends when the pool is dropped.

use crate::guests::Guests;
use crate::host_calls::HostCalls;
use crate::instance::{Instance, Setup};
use crate::modules::Modules;
use crate::{Capabilities, Language, Limits};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the refill thread waits before trying again after it could not
/// create an instance (the engine's instance pool was full, say).
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// How long the refill thread lets a full pool's first checkout run alone.
/// Instances of one process fault pages in one address space: a refill on
/// the other core while the request's first run faults in its own pages
/// makes each side's faults interrupt the other (TLB shootdowns), which took
/// a pooled Python sandbox's first result from 0.36 ms to 0.8 ms on a
/// 2-core VM. Only the start of a refill waits: a pool kept below full by
/// steady requests is refilled without pause.
const AFTER_CHECKOUT: Duration = Duration::from_millis(1);

/// The ready instances of an engine, and the thread that refills them.
pub(crate) struct WarmPool {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    /// How many ready instances to keep, per language.
    targets: [usize; 2],
    state: Mutex<State>,
    /// Signalled on every checkout and when the pool stops.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    ready: [Vec<Ready>; 2],
    stopped: bool,
    /// Whether the refill thread is making an instance (and holds the
    /// guests while it does).
    making: bool,
}

/// An instance in the pool.
struct Ready {
    fresh: Instance,
    /// Whether its run path was touched (taken first).
    touched: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a list and a flag: nothing a panic could leave torn.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The language furthest below its target, if any.
    fn most_needed(&self, state: &State) -> Option<Language> {
        Language::ALL
            .into_iter()
            .map(|language| {
                let i = language as usize;
                (
                    self.targets[i].saturating_sub(state.ready[i].len()),
                    language,
                )
            })
            .filter(|&(missing, _)| missing > 0)
            .max_by_key(|&(missing, language)| (missing, std::cmp::Reverse(language as usize)))
            .map(|(_, language)| language)
    }
}

impl WarmPool {
    /// A pool keeping `targets[language as usize]` instances ready. Does
    /// nothing until [`WarmPool::start`].
    pub(crate) fn new(targets: [usize; 2]) -> Self {
        WarmPool {
            shared: Arc::new(Shared {
                targets,
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
            }),
            thread: Mutex::new(None),
        }
    }

    /// Starts the refill thread, unless every target is 0.
    pub(crate) fn start(&self, guests: Weak<Guests>) -> std::io::Result<()> {
        if self.shared.targets.iter().all(|&n| n == 0) {
            return Ok(());
        }
        let shared = self.shared.clone();
        let thread = std::thread::Builder::new()
            .name("goru-warm-pool".into())
            .spawn(move || refill(&shared, &guests))?;
        *self.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
        Ok(())
    }

    /// Takes a ready instance of `language` that holds at most `memory_limit`
    /// bytes of linear memory (one holding more could not start under that
    /// limit; the caller's cold start then reports it as it would without a
    /// pool), and wakes the refill thread.
    pub(crate) fn take(&self, language: Language, memory_limit: u64) -> Option<Instance> {
        let mut state = self.shared.lock();
        let ready = &mut state.ready[language as usize];
        let fits = |r: &Ready| r.fresh.memory_used() <= memory_limit;
        let index = (ready.iter().rposition(|r| r.touched && fits(r)))
            .or_else(|| ready.iter().rposition(fits))?;
        let taken = ready.swap_remove(index);
        drop(state);
        self.shared.changed.notify_all();
        Some(taken.fresh)
    }

    /// Instances of `language` ready now.
    pub(crate) fn ready(&self, language: Language) -> usize {
        self.shared.lock().ready[language as usize].len()
    }

    /// The number of instances of `language` the pool keeps ready.
    pub(crate) fn target(&self, language: Language) -> usize {
        self.shared.targets[language as usize]
    }
}

impl Drop for WarmPool {
    fn drop(&mut self) {
        let (ready, making) = {
            let mut state = self.shared.lock();
            state.stopped = true;
            (std::mem::take(&mut state.ready), state.making)
        };
        self.shared.changed.notify_all();
        drop(ready);
        let thread = self.thread.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(thread) = thread.take() {
            // A refill thread making an instance (which can mean compiling a
            // guest, for seconds) finishes it, drops the guests if it held
            // the last reference, sees `stopped` and ends on its own: the
            // engine's drop does not wait for it. Any other time it ends at
            // once.
            if !making {
                let _ = thread.join();
            }
        }
    }
}

/// The refill thread: waits for a language below its target, makes one
/// instance of it, adds it to the pool; until the pool stops or the guests
/// are gone.
fn refill(shared: &Shared, guests: &Weak<Guests>) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        return;
    };
    loop {
        let Some(waited) = wait_for_work(shared) else {
            return;
        };
        if waited {
            // A checkout just woke us: let that request's first run fault in
            // its pages before competing with it for the other core.
            std::thread::sleep(AFTER_CHECKOUT);
        }
        let (language, touch) = {
            let mut state = shared.lock();
            if state.stopped {
                return;
            }
            let Some(language) = shared.most_needed(&state) else {
                continue;
            };
            state.making = true;
            let i = language as usize;
            (language, state.ready[i].len() + 1 == shared.targets[i])
        };
        let Some(guests_ref) = guests.upgrade() else {
            return;
        };
        let made = runtime.block_on(make(&guests_ref, language, touch));
        // Possibly the last reference: the guests are then dropped here.
        drop(guests_ref);
        let mut state = shared.lock();
        state.making = false;
        if state.stopped {
            return;
        }
        match made {
            Some(fresh) => state.ready[language as usize].push(Ready {
                fresh,
                touched: touch,
            }),
            None => {
                drop(
                    shared
                        .changed
                        .wait_timeout(state, RETRY_AFTER)
                        .unwrap_or_else(|p| p.into_inner()),
                );
            }
        }
    }
}

/// Waits until some language is below its target: `Some(whether it had to
/// wait)`, or `None` once the pool has stopped.
fn wait_for_work(shared: &Shared) -> Option<bool> {
    let mut state = shared.lock();
    let mut waited = false;
    loop {
        if state.stopped {
            return None;
        }
        if shared.most_needed(&state).is_some() {
            return Some(waited);
        }
        waited = true;
        state = shared
            .changed
            .wait(state)
            .unwrap_or_else(|p| p.into_inner());
    }
}

/// One instance of `language` with the defaults of
/// [`crate::SessionBuilder::new`] and no host calls (each session sets its
/// own when it takes it); with its run path touched if `touch` (see
/// [`Instance::touch_run_path`]).
async fn make(guests: &Guests, language: Language, touch: bool) -> Option<Instance> {
    let limits = Limits::default();
    let capabilities = Capabilities::none();
    let modules = Modules::new(&capabilities, &limits).ok()?;
    let calls = HostCalls::new(crate::HostFunctions::new(), modules, limits.clone());
    let setup = Setup::new(language, &limits, &capabilities);
    let mut fresh = guests.instantiate(&setup, calls).await.ok()?;
    if touch && !fresh.touch_run_path(guests.ticker()).await {
        return None;
    }
    Some(fresh)
}
