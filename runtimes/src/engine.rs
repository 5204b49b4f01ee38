//! The engine: one wasmtime engine configured for guests, its compiled
//! guests, its warm pool and the host functions every session sees. What
//! sessions start from ([`crate::SessionBuilder::start`]); one-shot runs are
//! in `one_shot.rs`.

use crate::allocator::DEFAULT_MAX_INSTANCES;
use crate::guests::{Guests, Progress};
use crate::host_functions::HostFunctions;
use crate::instance::Instance;
use crate::pool::WarmPool;
use crate::{Error, Language};
use std::path::PathBuf;
use std::sync::Arc;

/// Native stack a guest may use. Deep recursion in the interpreters (a JS
/// function 10,000 calls deep, Python with a raised recursion limit, the
/// parsers on deeply nested input) needs far more than wasmtime's 512 KiB
/// default; each guest's own limits turn overflow into RangeError /
/// RecursionError well before this is reached.
pub const MAX_WASM_STACK: usize = 64 << 20;

/// Configures an [`Engine`]. Defaults:
/// - compiled guests are cached in [`crate::default_cache_dir`] (`$GORU_CACHE_DIR`,
///   else the user's cache folder);
/// - no progress reporting;
/// - no host functions;
/// - the pooling instance allocator, with room for
///   [`DEFAULT_MAX_INSTANCES`] live instances (see [`EngineBuilder::pooling`]);
/// - no warm pool (see [`EngineBuilder::warm_pool`]).
pub struct EngineBuilder {
    cache_dir: Option<PathBuf>,
    progress: Option<Progress>,
    host_functions: HostFunctions,
    pooling: bool,
    max_instances: u32,
    warm_pool: [usize; 2],
}

impl Default for EngineBuilder {
    fn default() -> Self {
        EngineBuilder {
            cache_dir: crate::cache::default_cache_dir(),
            progress: None,
            host_functions: HostFunctions::new(),
            pooling: true,
            max_instances: DEFAULT_MAX_INSTANCES,
            warm_pool: [0, 0],
        }
    }
}

impl EngineBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Where compiled guests are cached; `None` disables the cache.
    pub fn cache_dir(&mut self, dir: Option<PathBuf>) -> &mut Self {
        self.cache_dir = dir;
        self
    }

    /// Called with a line of text before a slow step (compiling a guest).
    pub fn on_progress(&mut self, progress: impl Fn(&str) + Send + Sync + 'static) -> &mut Self {
        self.progress = Some(Arc::new(progress));
        self
    }

    /// Host functions every session of this engine can call.
    pub fn host_functions(&mut self, functions: HostFunctions) -> &mut Self {
        self.host_functions = functions;
        self
    }

    /// Whether instances are allocated from wasmtime's pooling allocator
    /// (default: yes): slots for every instance's memory, tables and stack
    /// are reserved when the engine is built, and a slot keeps its guest's
    /// memory image mapped copy-on-write for the next instance. Starting a
    /// sandbox is then faster (JavaScript about 30%, Python about 10%); the
    /// costs are address space (about 4.2 GiB per instance, reserved, not
    /// committed) and about 5 us per instance to build the engine and 1.5 us
    /// to drop it (10 ms for the default size), which a process that starts
    /// one sandbox and exits (the CLI) should not pay. When the reservation
    /// fails (a limited address space), `build` falls back to allocating on
    /// demand and says so through [`EngineBuilder::on_progress`].
    pub fn pooling(&mut self, enabled: bool) -> &mut Self {
        self.pooling = enabled;
        self
    }

    /// Live instances the pooling allocator has room for, both languages
    /// together: sessions, one-shot runs in progress and warm-pool
    /// instances (default [`DEFAULT_MAX_INSTANCES`]). One more fails to
    /// start with [`Error::PoolExhausted`].
    pub fn max_instances(&mut self, instances: u32) -> &mut Self {
        self.max_instances = instances;
        self
    }

    /// Keeps `size` instances of `language` created and initialised ahead
    /// of time (default 0: none), refilled by a background thread after each
    /// is taken. [`crate::SessionBuilder::start`] takes one when the
    /// session's configuration allows it (see
    /// [`crate::SessionBuilder::can_use_warm_pool`]).
    pub fn warm_pool(&mut self, language: Language, size: usize) -> &mut Self {
        self.warm_pool[language as usize] = size;
        self
    }

    pub fn build(&self) -> Result<Engine, Error> {
        let mut config = wasmtime::Config::new();
        config
            .epoch_interruption(true)
            .max_wasm_stack(MAX_WASM_STACK)
            // The fiber a guest runs on must hold the whole wasm stack plus
            // the host frames below it.
            .async_stack_size(MAX_WASM_STACK + (2 << 20));
        let (wasmtime, pooling) = crate::allocator::new_engine(
            &mut config,
            self.pooling.then_some(self.max_instances),
            self.progress.as_deref(),
        )?;
        let guests = Arc::new(Guests::new(
            wasmtime,
            self.cache_dir.clone(),
            self.progress.clone(),
        )?);
        let warm = WarmPool::new(self.warm_pool);
        warm.start(Arc::downgrade(&guests))
            .map_err(|e| Error::EngineSetup(e.to_string()))?;
        Ok(Engine {
            inner: Arc::new(Inner {
                guests,
                host_functions: self.host_functions.clone(),
                pooling,
                warm,
            }),
        })
    }
}

/// Compiles the guests once and creates sandboxes from them. Cheap to clone
/// and shared across threads.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    guests: Arc<Guests>,
    host_functions: HostFunctions,
    pooling: bool,
    warm: WarmPool,
}

impl Engine {
    /// An engine with the default configuration (see [`EngineBuilder`]).
    pub fn new() -> Result<Engine, Error> {
        EngineBuilder::new().build()
    }

    pub fn builder() -> EngineBuilder {
        EngineBuilder::new()
    }

    /// The host functions every session of this engine sees.
    pub fn host_functions(&self) -> &HostFunctions {
        &self.inner.host_functions
    }

    /// The compiled guests sessions are started from.
    pub(crate) fn guests(&self) -> &Guests {
        &self.inner.guests
    }

    /// Whether this engine allocates instances from the pooling allocator
    /// (see [`EngineBuilder::pooling`]).
    pub fn uses_pooling(&self) -> bool {
        self.inner.pooling
    }

    /// Instances of `language` ready in the warm pool now.
    pub fn warm_ready(&self, language: Language) -> usize {
        self.inner.warm.ready(language)
    }

    /// How many instances of `language` the warm pool keeps ready (see
    /// [`EngineBuilder::warm_pool`]).
    pub fn warm_target(&self, language: Language) -> usize {
        self.inner.warm.target(language)
    }

    /// A ready instance of `language` that fits `memory_limit`, if the warm
    /// pool has one.
    pub(crate) fn take_warm(&self, language: Language, memory_limit: u64) -> Option<Instance> {
        self.inner.warm.take(language, memory_limit)
    }

    /// Compiles (or loads from the cache) the guest for `language` now rather
    /// than on its first use. Blocks for seconds on a cold cache.
    pub fn prepare(&self, language: Language) -> Result<(), Error> {
        self.inner.guests.get(language).map(|_| ())
    }
}
