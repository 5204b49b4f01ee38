//! The compiled guests: each language's component, embedded in the binary,
//! compiled once per engine (or loaded from the disk cache) and pre-linked
//! against the host's imports; with the wasmtime engine they run on and its
//! epoch ticker. Instances are started from here.

use crate::bindings::GuestPre;
use crate::epoch::EpochTicker;
use crate::host_calls::HostCalls;
use crate::instance::{HostState, Instance, Setup, StartError};
use crate::{Error, Language};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use wasmtime::component::{HasSelf, Linker};

/// The guest components, embedded at build time (see `build.rs`).
const PYTHON_WASM: &[u8] = include_bytes!(env!("GORU_PYTHON_WASM"));
const PYTHON_SHA256: &str = env!("GORU_PYTHON_SHA256");
const JS_WASM: &[u8] = include_bytes!(env!("GORU_JS_WASM"));
const JS_SHA256: &str = env!("GORU_JS_SHA256");

/// Called with a line of text before a slow step (compiling a guest).
pub(crate) type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// The guests of one wasmtime engine, compiled on first use.
pub(crate) struct Guests {
    wasmtime: wasmtime::Engine,
    ticker: EpochTicker,
    linker: Linker<HostState>,
    cache_dir: Option<PathBuf>,
    progress: Option<Progress>,
    compiled: [OnceLock<GuestPre<HostState>>; 2],
    compile_lock: Mutex<()>,
}

impl Guests {
    /// Guests for `wasmtime`, cached in `cache_dir` once compiled; starts
    /// the engine's epoch ticker and links the host's imports. Compiles
    /// nothing yet.
    pub(crate) fn new(
        wasmtime: wasmtime::Engine,
        cache_dir: Option<PathBuf>,
        progress: Option<Progress>,
    ) -> Result<Guests, Error> {
        let ticker =
            EpochTicker::start(wasmtime.clone()).map_err(|e| Error::EngineSetup(e.to_string()))?;
        let mut linker = Linker::new(&wasmtime);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| Error::EngineSetup(e.to_string()))?;
        // The guest's file calls go through goru's checks first.
        crate::modules::fs::add_to_linker(&mut linker, HostState::plain_files)
            .map_err(|e| Error::EngineSetup(e.to_string()))?;
        crate::bindings::Guest::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|e| Error::EngineSetup(e.to_string()))?;
        Ok(Guests {
            wasmtime,
            ticker,
            linker,
            cache_dir,
            progress,
            compiled: [OnceLock::new(), OnceLock::new()],
            compile_lock: Mutex::new(()),
        })
    }

    /// The ticker every run of these guests' instances keeps going.
    pub(crate) fn ticker(&self) -> &EpochTicker {
        &self.ticker
    }

    /// Creates and initialises an instance of `setup.language` (compiling
    /// the guest first if needed), calling the host through `calls`.
    pub(crate) async fn instantiate(
        &self,
        setup: &Setup<'_>,
        calls: HostCalls,
    ) -> Result<Instance, StartError> {
        let pre = self.get(setup.language)?;
        Instance::start(pre, &self.ticker, setup, calls).await
    }

    /// The pre-linked guest for `language`, compiled (or loaded from the
    /// cache) on first use. Blocks for seconds on a cold cache.
    pub(crate) fn get(&self, language: Language) -> Result<&GuestPre<HostState>, Error> {
        let slot = &self.compiled[language as usize];
        if let Some(pre) = slot.get() {
            return Ok(pre);
        }
        // One compile per language even when many threads ask at once.
        let _lock = self.compile_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pre) = slot.get() {
            return Ok(pre);
        }
        let (wasm, sha256) = match language {
            Language::Python => (PYTHON_WASM, PYTHON_SHA256),
            Language::JavaScript => (JS_WASM, JS_SHA256),
        };
        let progress = |line: &str| {
            if let Some(progress) = &self.progress {
                progress(line)
            }
        };
        let component = crate::cache::load_or_compile(
            &self.wasmtime,
            self.cache_dir.as_deref(),
            language,
            sha256,
            wasm,
            &progress,
        )?;
        let load_err = |e: wasmtime::Error| Error::GuestLoad {
            language,
            message: e.to_string(),
        };
        let instance_pre = self.linker.instantiate_pre(&component).map_err(load_err)?;
        let pre = GuestPre::new(instance_pre).map_err(load_err)?;
        Ok(slot.get_or_init(|| pre))
    }
}
