//! The warm pool: instances of each guest created and initialised ahead of
//! time, so that starting a session is taking one rather than instantiating.
//!
//! One background thread per engine (`goru-warm-pool`) tops the pool up
//! after every checkout. It only ever instantiates a guest and calls its
//! `init` with the defaults of [`SessionBuilder::new`]; the instance that
//! fills the pool is also asked whether an empty entry is complete, which
//! runs nothing but moves a first run's page faults off the request path
//! ([`Fresh::touch_run_path`]). No request's code runs there. The question
//! costs more CPU than it saves, so while requests keep the pool below full
//! the thread makes plain instances, as fast as it can.
//!
//! Instances are single-use: a checked-out instance becomes one session and
//! is dropped with it, and nothing is ever returned to the pool. The thread
//! holds the engine weakly and ends when the engine is dropped.

use crate::engine::{Engine, Inner};
use crate::host_calls::HostCalls;
use crate::modules::Modules;
use crate::session::{Fresh, SessionBuilder};
use crate::{Capabilities, Language, Limits};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::{JoinHandle, ThreadId};
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
}

/// An instance in the pool.
struct Ready {
    fresh: Fresh,
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
    pub(crate) fn start(&self, engine: Weak<Inner>) -> std::io::Result<()> {
        if self.shared.targets.iter().all(|&n| n == 0) {
            return Ok(());
        }
        let shared = self.shared.clone();
        let thread = std::thread::Builder::new()
            .name("goru-warm-pool".into())
            .spawn(move || refill(&shared, &engine))?;
        *self.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
        Ok(())
    }

    /// Takes a ready instance of `language` that holds at most `memory_limit`
    /// bytes of linear memory (one holding more could not start under that
    /// limit; the caller's cold start then reports it as it would without a
    /// pool), and wakes the refill thread.
    pub(crate) fn take(&self, language: Language, memory_limit: u64) -> Option<Fresh> {
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
        let ready = {
            let mut state = self.shared.lock();
            state.stopped = true;
            std::mem::take(&mut state.ready)
        };
        self.shared.changed.notify_all();
        drop(ready);
        let thread = self.thread.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(thread) = thread.take() {
            // The refill thread drops the engine itself when it held the last
            // reference; it sees `stopped` and ends on its own then. From
            // any other thread, the refill thread holds no reference (or the
            // engine would not be dropping) and ends at once.
            if thread.thread().id() != current_thread_id() {
                let _ = thread.join();
            }
        }
    }
}

fn current_thread_id() -> ThreadId {
    std::thread::current().id()
}

/// The refill thread: waits for a language below its target, makes one
/// instance of it, adds it to the pool; until the pool stops or the engine
/// is gone.
fn refill(shared: &Shared, engine: &Weak<Inner>) {
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
            let state = shared.lock();
            let Some(language) = shared.most_needed(&state) else {
                continue;
            };
            let i = language as usize;
            (language, state.ready[i].len() + 1 == shared.targets[i])
        };
        let Some(inner) = engine.upgrade() else {
            return;
        };
        let engine_ref = Engine::from_inner(inner);
        let made = runtime.block_on(make(&engine_ref, language, touch));
        // Possibly the last reference: the engine is then dropped here, which
        // stops the pool.
        drop(engine_ref);
        let mut state = shared.lock();
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

/// One instance of `language` with the defaults of [`SessionBuilder::new`]
/// and no host calls (each session sets its own when it takes it); with its
/// run path touched if `touch` (see [`Fresh::touch_run_path`]).
async fn make(engine: &Engine, language: Language, touch: bool) -> Option<Fresh> {
    let builder = SessionBuilder::new(language);
    let limits = Limits::default();
    let modules = Modules::new(&Capabilities::none(), &limits).ok()?;
    let calls = HostCalls::new(crate::HostFunctions::new(), modules, limits);
    let mut fresh = builder.instantiate(engine, calls).await.ok()?;
    if touch && !fresh.touch_run_path(engine).await {
        return None;
    }
    Some(fresh)
}
