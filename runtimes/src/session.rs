//! Sessions: one live guest instance with its own store, limits and output,
//! running code many times with its state kept between runs.

use crate::engine::Engine;
use crate::host_calls::HostCalls;
use crate::host_functions::HostFunctions;
use crate::instance::{Instance, Mode, Setup, StartError, default_argv};
use crate::modules::Modules;
use crate::outcome::{Outcome, Status};
use crate::output::OutputSink;
use crate::{Capabilities, Error, Language, Limits};
use std::sync::Arc;

/// Where the guest's stdin comes from.
#[derive(Clone, Debug, Default)]
pub enum Stdin {
    /// Empty: reads see end-of-file at once.
    #[default]
    Empty,
    /// These bytes, then end-of-file (consumed across the session's runs).
    Bytes(Vec<u8>),
    /// The host process's own stdin (what the CLI gives a script).
    Inherit,
}

/// Configures a [`Session`]. Defaults, all denying:
/// - no capabilities ([`Capabilities::none`]): no filesystem, network, `kv`
///   (mounts given are checked by `start`, which fails with [`Error::Mount`]);
/// - no environment variables;
/// - only the engine's host functions (none unless the embedder registered some);
/// - stdin empty; output captured into each [`Outcome`];
/// - [`Limits::default`] (30 s, 256 MiB, 1 MiB of output per stream);
/// - argv `["-c"]`.
///
/// The guest always gets a real wall clock, a monotonic clock and random
/// numbers from the host's CSPRNG.
///
/// When the engine keeps a warm pool ([`crate::EngineBuilder::warm_pool`]),
/// `start` takes a ready instance from it for every configuration that
/// [`SessionBuilder::can_use_warm_pool`] accepts.
#[derive(Clone)]
pub struct SessionBuilder {
    language: Language,
    limits: Limits,
    argv: Vec<String>,
    stdin: Stdin,
    sink: Option<Arc<dyn OutputSink>>,
    host_functions: HostFunctions,
    capabilities: Capabilities,
}

impl SessionBuilder {
    pub fn new(language: Language) -> Self {
        SessionBuilder {
            language,
            limits: Limits::default(),
            argv: default_argv(),
            stdin: Stdin::Empty,
            sink: None,
            host_functions: HostFunctions::new(),
            capabilities: Capabilities::none(),
        }
    }

    /// What the session may reach beyond computing (default: nothing).
    pub fn capabilities(&mut self, capabilities: Capabilities) -> &mut Self {
        self.capabilities = capabilities;
        self
    }

    /// Host functions for this session, added to the engine's (a name in
    /// both: this session's wins).
    pub fn host_functions(&mut self, functions: HostFunctions) -> &mut Self {
        self.host_functions = functions;
        self
    }

    pub fn limits(&mut self, limits: Limits) -> &mut Self {
        self.limits = limits;
        self
    }

    /// The script name and its arguments (`sys.argv` / `scriptArgs`).
    pub fn argv(&mut self, argv: Vec<String>) -> &mut Self {
        self.argv = argv;
        self
    }

    pub fn stdin(&mut self, stdin: Stdin) -> &mut Self {
        self.stdin = stdin;
        self
    }

    /// Streams output to `sink` as it is written instead of capturing it.
    pub fn output_sink(&mut self, sink: Arc<dyn OutputSink>) -> &mut Self {
        self.sink = Some(sink);
        self
    }

    /// Whether a session of this configuration can start from an instance
    /// of the engine's warm pool, which was created and initialised (`init`)
    /// before anyone asked for it, with the defaults of
    /// [`SessionBuilder::new`].
    ///
    /// What lives on the host side is set when the instance is taken: the
    /// limits (the memory limit counts what the instance already holds), the
    /// output sink, host functions, `kv` and `http`, and stdin bytes. What is
    /// fixed when the instance's WASI context is built, or by `init`, cannot
    /// be: mounts (preopened directories), deterministic clocks and random
    /// numbers (JavaScript seeds `Math.random` in `init`), the host's own
    /// stdin, and an argv other than `["-c"]`. Those start cold, as without
    /// a pool.
    pub fn can_use_warm_pool(&self) -> bool {
        self.argv == default_argv()
            && !matches!(self.stdin, Stdin::Inherit)
            && self.capabilities.deterministic.is_none()
            && self.capabilities.mounts.is_empty()
            && self.capabilities.packages.is_none()
    }

    /// Creates the sandbox: takes an instance from the engine's warm pool
    /// when it has one for this configuration, else instantiates one. Fails
    /// with [`StartError::Limit`] when the guest could not even start within
    /// the limits (too little memory, time), and with
    /// [`Error::PoolExhausted`] when the engine has no room for another
    /// instance.
    pub async fn start(&self, engine: &Engine) -> Result<Session, StartError> {
        self.limits.validate().map_err(Error::from)?;
        if self.capabilities.packages.is_some() && self.language != Language::Python {
            return Err(Error::from(crate::PackagesConfigError::PythonOnly).into());
        }
        self.capabilities
            .packages_mount_point_is_free()
            .map_err(Error::from)?;
        // Validates the mounts, `http` and packages before any instance is
        // made or taken.
        let modules = Modules::new(&self.capabilities, &self.limits)?;
        let calls = HostCalls::new(
            engine.host_functions().merged_with(&self.host_functions),
            modules,
            self.limits.clone(),
        );
        let warm = if self.can_use_warm_pool() {
            engine.take_warm(self.language, self.limits.memory_bytes)
        } else {
            None
        };
        let from_warm_pool = warm.is_some();
        let fresh = match warm {
            Some(fresh) => fresh,
            None => self.instantiate(engine, calls.clone()).await?,
        };
        Ok(self.session(engine, fresh, calls, from_warm_pool))
    }

    /// Turns a fresh instance into this configuration's session: sets
    /// everything that lives on the host side.
    fn session(
        &self,
        engine: &Engine,
        mut fresh: Instance,
        calls: HostCalls,
        from_warm_pool: bool,
    ) -> Session {
        fresh.adopt(calls, self.limits.clone(), self.sink.clone());
        if let Stdin::Bytes(bytes) = &self.stdin {
            fresh.set_stdin(bytes.clone());
        }
        Session {
            engine: engine.clone(),
            language: self.language,
            instance: fresh,
            dead: None,
            from_warm_pool,
        }
    }

    /// What the guest appends to `sys.path`: where its packages are mounted.
    fn module_paths(&self) -> Vec<String> {
        match &self.capabilities.packages {
            Some(_) => vec![crate::modules::packages::GUEST_PATH.to_string()],
            None => Vec::new(),
        }
    }

    /// Creates and initialises an instance of this configuration: the cold
    /// path of `start`.
    async fn instantiate(&self, engine: &Engine, calls: HostCalls) -> Result<Instance, StartError> {
        let setup = Setup {
            language: self.language,
            limits: &self.limits,
            argv: self.argv.clone(),
            module_paths: self.module_paths(),
            // Stdin bytes are given when the session is made (`session`), so
            // that a pooled instance can take them too.
            inherit_stdin: matches!(self.stdin, Stdin::Inherit),
            capabilities: &self.capabilities,
            sink: self.sink.clone(),
        };
        engine.guests().instantiate(&setup, calls).await
    }
}

/// A live sandbox. State persists across [`Session::run`] calls until a run
/// traps (timeout, memory, output limit, crash), after which the session is
/// dead and every further run fails with [`Error::SessionDead`].
pub struct Session {
    engine: Engine,
    language: Language,
    instance: Instance,
    dead: Option<String>,
    from_warm_pool: bool,
}

impl Session {
    pub fn language(&self) -> Language {
        self.language
    }

    /// Whether this session's instance came from the engine's warm pool
    /// (created and initialised ahead of time, never used before) rather
    /// than being instantiated by `start`.
    pub fn from_warm_pool(&self) -> bool {
        self.from_warm_pool
    }

    /// Whether the session can still run code.
    pub fn is_alive(&self) -> bool {
        self.dead.is_none()
    }

    /// Replaces what is left of the guest's stdin with `bytes`, for the
    /// next runs (an online judge's input, a `session/run`'s `stdin`). A
    /// session reading the host's own stdin ([`Stdin::Inherit`]) is left as is.
    pub fn set_stdin(&mut self, bytes: Vec<u8>) {
        self.instance.set_stdin(bytes);
    }

    /// Runs `code` as a script; tracebacks name it `filename`.
    pub async fn run(&mut self, code: &str, filename: &str) -> Result<Outcome, Error> {
        self.run_mode(code, filename, Mode::Exec).await
    }

    /// Runs `code` in the given mode; tracebacks name it `filename`.
    pub async fn run_mode(
        &mut self,
        code: &str,
        filename: &str,
        mode: Mode,
    ) -> Result<Outcome, Error> {
        self.run_until(code, filename, mode, std::future::pending())
            .await
    }

    /// Like [`Session::run_mode`], but stops the run when `cancel` completes
    /// first: the outcome is [`Status::Cancelled`] with the output written so
    /// far, and the session is dead afterwards (a guest stopped at an
    /// arbitrary point cannot be trusted to run again).
    pub async fn run_until(
        &mut self,
        code: &str,
        filename: &str,
        mode: Mode,
        cancel: impl Future<Output = ()>,
    ) -> Result<Outcome, Error> {
        if let Some(reason) = &self.dead {
            return Err(Error::SessionDead(reason.clone()));
        }
        let ticker = self.engine.guests().ticker();
        let (outcome, reusable) = self
            .instance
            .run(ticker, code, filename, mode, cancel)
            .await;
        if !reusable {
            self.dead = Some(describe(&outcome.status));
        }
        Ok(outcome)
    }
}

fn describe(status: &Status) -> String {
    match status {
        Status::Timeout { .. } => "a timeout".into(),
        Status::MemoryLimit { .. } => "the memory limit".into(),
        Status::OutputLimit { .. } => "the output limit".into(),
        Status::Crashed { message } => format!("a crash ({message})"),
        Status::Cancelled => "a cancellation".into(),
        Status::Exit(code) => format!("an exit with code {code} that ended the instance"),
        other => format!("{other:?}"),
    }
}
