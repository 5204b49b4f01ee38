//! Sessions: one live guest instance with its own store, limits and output,
//! running code many times with its state kept between runs.

use crate::bindings::{self, goru::sandbox::host};
use crate::engine::Engine;
use crate::host_calls::HostCalls;
use crate::host_functions::HostFunctions;
use crate::limiter::MemoryLimiter;
use crate::modules::Modules;
use crate::modules::fs::{PlainFiles, PlainFilesView};
use crate::outcome::{GuestException, Outcome, Status, Stream};
use crate::output::{self, OutputRouter, OutputSink};
use crate::stdin::RunInput;
use crate::{Capabilities, Error, Language, Limits};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Slack on top of the deadline for the host-side timer that stops a guest
/// blocked outside wasm code (sleeping, reading stdin), where epoch checks do
/// not run. Busy guests are stopped by the epoch check at the deadline itself.
const HOST_DEADLINE_SLACK: Duration = Duration::from_millis(2);

/// How a run treats its code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Run the code as a script.
    #[default]
    Exec,
    /// Run it as a REPL entry: a trailing expression's value is returned in
    /// [`Status::Ok`] and kept as `_`.
    Repl,
    /// Only check whether the code is a complete entry.
    CheckComplete,
}

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

/// The host side of one instance.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The mounts as the guest's plain file calls see them, and the checks
    /// those calls pass (`modules/fs/wasi.rs`).
    files: PlainFiles,
    limiter: MemoryLimiter,
    deadline: Instant,
    calls: HostCalls,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HostState {
    /// What goru's `wasi:filesystem` host works on.
    pub(crate) fn plain_files(&mut self) -> PlainFilesView<'_> {
        PlainFilesView {
            wasi: wasmtime_wasi::filesystem::WasiFilesystemCtxView {
                ctx: self.wasi.filesystem(),
                table: &mut self.table,
            },
            files: &mut self.files,
        }
    }
}

impl host::Host for HostState {
    async fn call(
        &mut self,
        name: String,
        args_json: String,
    ) -> wasmtime::Result<Result<String, String>> {
        if let Some(code) = crate::host_calls::exit_request(&name, &args_json) {
            // A trap ends the instance here, as `_exit` ends a process:
            // nothing of the guest runs after it.
            return Err(wasmtime::Error::new(wasmtime_wasi::I32Exit(code)));
        }
        Ok(self.calls.call(name, args_json).await)
    }

    async fn call_batch(
        &mut self,
        calls: Vec<(String, String)>,
    ) -> wasmtime::Result<Vec<Result<String, String>>> {
        Ok(self.calls.call_batch(calls).await)
    }
}

/// Configures a [`Session`]. Defaults, all denying:
/// - no capabilities ([`Capabilities::none`]): no filesystem, network, `kv`
///   (capabilities given are checked by `start`, which fails with
///   [`Error::Capability`]);
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
            && crate::modules::registry::warm_pool_allows(&self.capabilities)
    }

    /// Creates the sandbox: takes an instance from the engine's warm pool
    /// when it has one for this configuration, else instantiates one. Fails
    /// with [`StartError::Limit`] when the guest could not even start within
    /// the limits (too little memory, time), and with
    /// [`Error::PoolExhausted`] when the engine has no room for another
    /// instance.
    pub async fn start(&self, engine: &Engine) -> Result<Session, StartError> {
        self.limits.validate().map_err(Error::from)?;
        // Every check of the capabilities, before any instance is made or
        // taken; then the modules open what was checked.
        crate::check_capabilities(&self.capabilities, self.language).map_err(Error::from)?;
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
        fresh: Fresh,
        calls: HostCalls,
        from_warm_pool: bool,
    ) -> Session {
        let Fresh {
            mut store,
            guest,
            output,
            input,
        } = fresh;
        let state = store.data_mut();
        state.files.set_open_files(calls.open_files());
        state.calls = calls;
        state.limiter.set_limit(self.limits.memory_bytes);
        state.limiter.refused = false;
        state.deadline = Instant::now() + self.limits.timeout;
        if let (Some(input), Stdin::Bytes(bytes)) = (&input, &self.stdin) {
            input.replace(bytes.clone());
        }
        Session {
            engine: engine.clone(),
            language: self.language,
            limits: self.limits.clone(),
            store,
            guest,
            output,
            sink: self.sink.clone(),
            input,
            dead: None,
            from_warm_pool,
        }
    }

    /// What the guest appends to `sys.path`: where its packages are mounted.
    fn module_paths(&self) -> Vec<String> {
        match &self.capabilities.packages {
            Some(_) => vec![crate::PACKAGES_GUEST_PATH.to_string()],
            None => Vec::new(),
        }
    }

    /// Creates and initialises an instance of this configuration: the cold
    /// path of `start`, and how the warm pool is filled.
    pub(crate) async fn instantiate(
        &self,
        engine: &Engine,
        calls: HostCalls,
    ) -> Result<Fresh, StartError> {
        let pre = engine.guest(self.language)?;
        let output = OutputRouter::new();
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(output.stream(Stream::Stdout))
            .stderr(output.stream(Stream::Stderr))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if let Some(deterministic) = &self.capabilities.deterministic {
            crate::deterministic::apply(deterministic, &mut wasi);
        }
        // Stdin bytes are given when the session is made (`session`), so
        // that a pooled instance can take them too.
        let input = match &self.stdin {
            Stdin::Empty | Stdin::Bytes(_) => Some(RunInput::default()),
            Stdin::Inherit => {
                wasi.stdin(wasmtime_wasi::cli::stdin());
                None
            }
        };
        if let Some(input) = &input {
            wasi.stdin(input.clone());
        }
        // The mounts (checked by `start`) reach the guest both
        // through the `fs` module and as preopened directories (plain
        // `open()`), served by goru's own `wasi:filesystem` host.
        let files = PlainFiles::open(&self.capabilities.preopens(), calls.open_files()).map_err(
            |(index, error)| {
                Error::from(crate::capabilities::preopen_error(
                    &self.capabilities,
                    index,
                    error,
                ))
            },
        )?;
        let state = HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            files,
            limiter: MemoryLimiter::new(self.limits.memory_bytes),
            deadline: Instant::now() + self.limits.timeout,
            calls,
        };
        let mut store = Store::new(&engine.inner().wasmtime, state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                // Yield so other sandboxes on this thread get their turn.
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store.set_epoch_deadline(1);

        let _ticking = engine.inner().ticker.run_guard();
        output.begin(self.limits.max_output_bytes, self.sink.clone());
        let deadline = store.data().deadline;
        let started = async {
            let guest = pre.instantiate_async(&mut store).await?;
            let options = bindings::Options {
                argv: self.argv.clone(),
                module_paths: self.module_paths(),
            };
            guest.call_init(&mut store, &options).await?;
            wasmtime::Result::Ok(guest)
        };
        let result =
            tokio::time::timeout_at((deadline + HOST_DEADLINE_SLACK).into(), started).await;
        let (_, _, output_hit) = output.finish();
        match result {
            Ok(Ok(guest)) => Ok(Fresh {
                store,
                guest,
                output,
                input,
            }),
            Ok(Err(err)) if crate::allocator::is_pool_exhausted(&err) => {
                Err(StartError::Engine(Error::PoolExhausted {
                    language: self.language,
                    message: err.to_string(),
                }))
            }
            Ok(Err(err)) => {
                let status = classify_trap(&err, store.data(), &self.limits, output_hit, false);
                match status {
                    Status::Crashed { message } => Err(StartError::Engine(Error::Instantiate {
                        language: self.language,
                        message,
                    })),
                    status => Err(StartError::Limit(status)),
                }
            }
            Err(_elapsed) => Err(StartError::Limit(Status::Timeout {
                limit: self.limits.timeout,
            })),
        }
    }
}

/// The default argv: code given inline.
fn default_argv() -> Vec<String> {
    vec!["-c".to_string()]
}

/// An instance that has been created and initialised and has run no code
/// (at most an empty `check-complete`, see [`Fresh::touch_run_path`]): what
/// `start` makes a [`Session`] of, and what the warm pool holds.
pub(crate) struct Fresh {
    store: Store<HostState>,
    guest: bindings::Guest,
    output: OutputRouter,
    input: Option<RunInput>,
}

impl Fresh {
    /// Linear memory the instance holds, which a session's memory limit
    /// counts.
    pub(crate) fn memory_used(&self) -> u64 {
        self.store.data().limiter.used()
    }

    /// Asks the guest whether an empty entry is complete (`check-complete`
    /// of ""): it compiles an empty string, runs nothing and keeps nothing,
    /// but touches the compiler's pages, which a first run would otherwise
    /// fault in (copy-on-write) on the request path. `false` when the guest
    /// did not answer as expected: the instance is not to be used.
    pub(crate) async fn touch_run_path(&mut self, engine: &Engine) -> bool {
        let _ticking = engine.inner().ticker.run_guard();
        let deadline = Instant::now() + Limits::default().timeout;
        self.store.data_mut().deadline = deadline;
        self.store.set_epoch_deadline(1);
        // No output allowed: a write would trap.
        self.output.begin(0, None);
        let call = self.guest.call_run(
            &mut self.store,
            "",
            bindings::Mode::CheckComplete,
            "<warm-up>",
        );
        let answer = tokio::time::timeout_at((deadline + HOST_DEADLINE_SLACK).into(), call).await;
        let (stdout, stderr, output_hit) = self.output.finish();
        matches!(answer, Ok(Ok(bindings::Outcome::Ok(None))))
            && stdout.is_empty()
            && stderr.is_empty()
            && output_hit.is_none()
            && !self.store.data().limiter.refused
    }
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The guest hit a limit while starting (the status says which).
    #[error("the sandbox could not start within its limits: {0:?}")]
    Limit(Status),
    #[error(transparent)]
    Engine(#[from] Error),
}

/// A live sandbox. State persists across [`Session::run`] calls until a run
/// traps (timeout, memory, output limit, crash), after which the session is
/// dead and every further run fails with [`Error::SessionDead`].
pub struct Session {
    engine: Engine,
    language: Language,
    limits: Limits,
    store: Store<HostState>,
    guest: bindings::Guest,
    output: OutputRouter,
    sink: Option<Arc<dyn OutputSink>>,
    /// The guest's stdin, unless it is the host's own.
    input: Option<RunInput>,
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
        if let Some(input) = &self.input {
            input.replace(bytes);
        }
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
        let started = Instant::now();
        let deadline = started + self.limits.timeout;
        self.store.data_mut().deadline = deadline;
        self.store.data_mut().limiter.refused = false;
        self.store.data().calls.begin_run();
        self.store.set_epoch_deadline(1);
        self.output
            .begin(self.limits.max_output_bytes, self.sink.clone());
        let _ticking = self.engine.inner().ticker.run_guard();
        let mode = match mode {
            Mode::Exec => bindings::Mode::Exec,
            Mode::Repl => bindings::Mode::Repl,
            Mode::CheckComplete => bindings::Mode::CheckComplete,
        };
        let call = self.guest.call_run(&mut self.store, code, mode, filename);
        let timed = tokio::time::timeout_at((deadline + HOST_DEADLINE_SLACK).into(), call);
        // Dropping the call future is how the host timer already stops a
        // guest blocked outside wasm; cancelling does the same, at once.
        let result = tokio::select! {
            biased;
            result = timed => Some(result),
            () = cancel => None,
        };
        // A trap (a limit, a crash, `os._exit`) or a cancellation leaves the
        // instance unusable, whatever the status says.
        let trapped = !matches!(result, Some(Ok(Ok(_))));
        let rooms = (
            self.output.room(Stream::Stdout),
            self.output.room(Stream::Stderr),
        );
        let (stdout, stderr, output_hit) = self.output.finish();
        let mut clipped = false;
        let status = match result {
            None => Status::Cancelled,
            Some(Ok(Ok(outcome))) => {
                let (status, cut) = guest_status(outcome, rooms);
                clipped = cut;
                status
            }
            Some(Ok(Err(err))) => {
                classify_trap(&err, self.store.data(), &self.limits, output_hit, false)
            }
            Some(Err(_elapsed)) => classify_trap(
                &wasmtime::Error::msg("deadline"),
                self.store.data(),
                &self.limits,
                output_hit,
                true,
            ),
        };
        if trapped || !status.instance_survives() {
            self.dead = Some(describe(&status));
        }
        Ok(Outcome {
            status,
            stdout,
            stderr,
            duration: started.elapsed(),
            clipped,
        })
    }
}

/// The status the guest reported, its texts held to the room their streams
/// have left (`rooms`: stdout, stderr); whether any was cut.
fn guest_status(
    outcome: bindings::Outcome,
    (stdout_room, stderr_room): (u64, u64),
) -> (Status, bool) {
    match outcome {
        bindings::Outcome::Ok(mut value) => {
            let clipped = value
                .as_mut()
                .is_some_and(|value| output::clip(value, stdout_room));
            (Status::Ok { value }, clipped)
        }
        bindings::Outcome::Incomplete => (Status::Incomplete, false),
        bindings::Outcome::Exit(code) => (Status::Exit(code), false),
        bindings::Outcome::Exception(mut e) => {
            // Each is shown on stderr (the traceback holds the other two).
            let clipped = [&mut e.type_name, &mut e.message, &mut e.traceback]
                .into_iter()
                .fold(false, |cut, text| output::clip(text, stderr_room) | cut);
            let exception = GuestException {
                type_name: e.type_name,
                message: e.message,
                traceback: e.traceback,
            };
            (Status::Exception(exception), clipped)
        }
    }
}

/// Names the limit or fault behind a trap. The order matters: an output or
/// time limit can surface as any trap, and a refused allocation explains a
/// trap that follows it.
fn classify_trap(
    err: &wasmtime::Error,
    state: &HostState,
    limits: &Limits,
    output_hit: Option<Stream>,
    host_timer_fired: bool,
) -> Status {
    if let Some(stream) = output_hit {
        return Status::OutputLimit {
            stream,
            limit: limits.max_output_bytes,
        };
    }
    if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        // `os._exit(n)`, or libc's `exit` reached some other way.
        return Status::Exit(exit.0);
    }
    let trap = err.downcast_ref::<Trap>();
    if host_timer_fired || trap == Some(&Trap::Interrupt) || Instant::now() >= state.deadline {
        return Status::Timeout {
            limit: limits.timeout,
        };
    }
    if state.limiter.refused {
        return Status::MemoryLimit {
            limit: limits.memory_bytes,
        };
    }
    let message = match trap {
        Some(trap) => trap.to_string(),
        None => err.to_string(),
    };
    Status::Crashed { message }
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

impl Engine {
    /// Runs `code` once in a fresh sandbox configured by `builder`, and
    /// throws the sandbox away. Limits hit while the sandbox starts are
    /// reported in the outcome like limits hit while the code runs.
    pub async fn run_once(
        &self,
        builder: &SessionBuilder,
        code: &str,
        filename: &str,
    ) -> Result<Outcome, Error> {
        let started = Instant::now();
        match builder.start(self).await {
            Ok(mut session) => {
                let mut outcome = session.run(code, filename).await?;
                outcome.duration = started.elapsed();
                Ok(outcome)
            }
            Err(StartError::Limit(status)) => Ok(Outcome {
                status,
                stdout: Vec::new(),
                stderr: Vec::new(),
                duration: started.elapsed(),
                clipped: false,
            }),
            Err(StartError::Engine(err)) => Err(err),
        }
    }
}
