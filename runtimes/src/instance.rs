//! One guest instance and its host state: how it is created and
//! initialised, how code runs in it, and how the guest's answer or trap
//! becomes a [`Status`]. Sessions and the warm pool are made of these.

use crate::bindings::{self, GuestPre, goru::sandbox::host};
use crate::epoch::EpochTicker;
use crate::host_calls::HostCalls;
use crate::limiter::MemoryLimiter;
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

/// What an instance is made with: what is fixed when its WASI context is
/// built or by the guest's `init`. The rest of a session's configuration
/// lives on the host side and is set when a session takes the instance
/// ([`Instance::adopt`]), which is what lets a warm pool make instances
/// before anyone asks for them.
pub(crate) struct Setup<'a> {
    pub(crate) language: Language,
    /// The limits while the guest starts.
    pub(crate) limits: &'a Limits,
    /// The script name and its arguments (`sys.argv` / `scriptArgs`).
    pub(crate) argv: Vec<String>,
    /// What the guest appends to `sys.path`.
    pub(crate) module_paths: Vec<String>,
    /// Whether the guest reads the host process's own stdin; else it reads
    /// bytes the session gives it ([`Instance::set_stdin`]).
    pub(crate) inherit_stdin: bool,
    /// What is fixed when the WASI context is built: the directories the
    /// guest sees and deterministic clocks and randomness (`None`: none).
    pub(crate) capabilities: Option<&'a Capabilities>,
    /// Where output written while the guest starts goes (captured if none).
    pub(crate) sink: Option<Arc<dyn OutputSink>>,
}

impl<'a> Setup<'a> {
    /// The defaults of [`crate::SessionBuilder::new`]: argv `["-c"]`, no
    /// packages, stdin given later, real clocks and randomness, no files,
    /// output captured.
    pub(crate) fn new(language: Language, limits: &'a Limits) -> Self {
        Setup {
            language,
            limits,
            argv: default_argv(),
            module_paths: Vec::new(),
            inherit_stdin: false,
            capabilities: None,
            sink: None,
        }
    }
}

/// The default argv: code given inline.
pub(crate) fn default_argv() -> Vec<String> {
    vec!["-c".to_string()]
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

/// A created and initialised guest instance. Fresh from [`Instance::start`]
/// it has run no code (at most an empty `check-complete`, see
/// [`Instance::touch_run_path`]): what a session is made of, and what the
/// warm pool holds.
pub(crate) struct Instance {
    store: Store<HostState>,
    guest: bindings::Guest,
    output: OutputRouter,
    /// The guest's stdin, unless it is the host's own.
    input: Option<RunInput>,
    /// The limits of each run.
    limits: Limits,
    /// Where each run's output goes (captured if none).
    sink: Option<Arc<dyn OutputSink>>,
}

impl Instance {
    /// Creates and initialises an instance of the pre-linked guest `pre`:
    /// the cold path of a session's start, and how the warm pool is filled.
    pub(crate) async fn start(
        pre: &GuestPre<HostState>,
        ticker: &EpochTicker,
        setup: &Setup<'_>,
        calls: HostCalls,
    ) -> Result<Instance, StartError> {
        let output = OutputRouter::new();
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(output.stream(Stream::Stdout))
            .stderr(output.stream(Stream::Stderr))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let deterministic = setup.capabilities.and_then(|c| c.deterministic.as_ref());
        if let Some(deterministic) = deterministic {
            crate::deterministic::apply(deterministic, &mut wasi);
        }
        // Stdin bytes are given when a session takes the instance, so that a
        // pooled instance can take them too.
        let input = if setup.inherit_stdin {
            wasi.stdin(wasmtime_wasi::cli::stdin());
            None
        } else {
            Some(RunInput::default())
        };
        if let Some(input) = &input {
            wasi.stdin(input.clone());
        }
        // The mounts (checked by `SessionBuilder::start`) reach the guest
        // both through the `fs` module and as preopened directories (plain
        // `open()`), served by goru's own `wasi:filesystem` host.
        let preopens = setup
            .capabilities
            .map(Capabilities::preopens)
            .unwrap_or_default();
        let files = PlainFiles::open(&preopens, calls.open_files()).map_err(|(index, error)| {
            let none = Capabilities::none();
            let capabilities = setup.capabilities.unwrap_or(&none);
            Error::from(crate::capabilities::preopen_error(
                capabilities,
                index,
                error,
            ))
        })?;
        let limits = setup.limits;
        let state = HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            files,
            limiter: MemoryLimiter::new(limits.memory_bytes),
            deadline: Instant::now() + limits.timeout,
            calls,
        };
        let mut store = Store::new(pre.engine(), state);
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

        let _ticking = ticker.run_guard();
        output.begin(limits.max_output_bytes, setup.sink.clone());
        let deadline = store.data().deadline;
        let started = async {
            let guest = pre.instantiate_async(&mut store).await?;
            let options = bindings::Options {
                argv: setup.argv.clone(),
                module_paths: setup.module_paths.clone(),
            };
            guest.call_init(&mut store, &options).await?;
            wasmtime::Result::Ok(guest)
        };
        let result =
            tokio::time::timeout_at((deadline + HOST_DEADLINE_SLACK).into(), started).await;
        let (_, _, output_hit) = output.finish();
        match result {
            Ok(Ok(guest)) => Ok(Instance {
                store,
                guest,
                output,
                input,
                limits: limits.clone(),
                sink: setup.sink.clone(),
            }),
            Ok(Err(err)) if crate::allocator::is_pool_exhausted(&err) => {
                Err(StartError::Engine(Error::PoolExhausted {
                    language: setup.language,
                    message: err.to_string(),
                }))
            }
            Ok(Err(err)) => {
                let status = classify_trap(&err, store.data(), limits, output_hit, false);
                match status {
                    Status::Crashed { message } => Err(StartError::Engine(Error::Instantiate {
                        language: setup.language,
                        message,
                    })),
                    status => Err(StartError::Limit(status)),
                }
            }
            Err(_elapsed) => Err(StartError::Limit(Status::Timeout {
                limit: limits.timeout,
            })),
        }
    }

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
    pub(crate) async fn touch_run_path(&mut self, ticker: &EpochTicker) -> bool {
        let _ticking = ticker.run_guard();
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

    /// Gives the instance a session's host side: its host calls (and their
    /// budget of open files), its limits (the memory limit counts what the
    /// instance already holds) and where its output goes.
    pub(crate) fn adopt(
        &mut self,
        calls: HostCalls,
        limits: Limits,
        sink: Option<Arc<dyn OutputSink>>,
    ) {
        let state = self.store.data_mut();
        state.files.set_open_files(calls.open_files());
        state.calls = calls;
        state.limiter.set_limit(limits.memory_bytes);
        state.limiter.refused = false;
        state.deadline = Instant::now() + limits.timeout;
        self.limits = limits;
        self.sink = sink;
    }

    /// Replaces what is left of the guest's stdin with `bytes`, unless the
    /// guest reads the host's own stdin.
    pub(crate) fn set_stdin(&self, bytes: Vec<u8>) {
        if let Some(input) = &self.input {
            input.replace(bytes);
        }
    }

    /// Runs `code` in `mode` until it ends or `cancel` completes; tracebacks
    /// name it `filename`. Returns the outcome and whether the instance can
    /// run again: not after a trap (a limit, a crash, `os._exit`) or a
    /// cancellation, whatever the status says.
    pub(crate) async fn run(
        &mut self,
        ticker: &EpochTicker,
        code: &str,
        filename: &str,
        mode: Mode,
        cancel: impl Future<Output = ()>,
    ) -> (Outcome, bool) {
        let limits = &self.limits;
        let started = Instant::now();
        let deadline = started + limits.timeout;
        self.store.data_mut().deadline = deadline;
        self.store.data_mut().limiter.refused = false;
        self.store.data().calls.begin_run();
        self.store.set_epoch_deadline(1);
        self.output
            .begin(limits.max_output_bytes, self.sink.clone());
        let _ticking = ticker.run_guard();
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
            Some(Ok(Err(err))) => classify_trap(&err, self.store.data(), limits, output_hit, false),
            Some(Err(_elapsed)) => classify_trap(
                &wasmtime::Error::msg("deadline"),
                self.store.data(),
                limits,
                output_hit,
                true,
            ),
        };
        let reusable = !trapped && status.instance_survives();
        let outcome = Outcome {
            status,
            stdout,
            stderr,
            duration: started.elapsed(),
            clipped,
        };
        (outcome, reusable)
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
