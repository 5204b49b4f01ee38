//! What a run produced.

use std::time::Duration;

/// One of the guest's two output streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// An exception that escaped the user's code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestException {
    /// The exception's type, e.g. `ZeroDivisionError`, `TypeError`.
    pub type_name: String,
    /// Its message, without the type.
    pub message: String,
    /// The formatted traceback with the user's file names and line numbers,
    /// ending in the `Type: message` line.
    pub traceback: String,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// The code ran to completion. In REPL mode, the representation of the
    /// value of a trailing expression, if there was one.
    Ok { value: Option<String> },
    /// Check-complete mode only: the entry needs more lines.
    Incomplete,
    /// An uncaught exception (a guest-level error: the sandbox is intact).
    Exception(GuestException),
    /// The code called `sys.exit(code)` / `std.exit(code)`.
    Exit(i32),
    /// The run passed its wall-clock limit and was stopped.
    Timeout { limit: Duration },
    /// The guest needed more memory than its limit and could not go on.
    /// (A guest that catches the failed allocation, as Python's `MemoryError`
    /// lets it, ends with [`Status::Exception`] instead.)
    MemoryLimit { limit: u64 },
    /// The guest wrote more than the output cap to one stream; what fitted
    /// was delivered, the rest dropped, and the run stopped.
    OutputLimit { stream: Stream, limit: u64 },
    /// The guest trapped for another reason (call stack exhausted, an
    /// interpreter bug); the message says which.
    Crashed { message: String },
    /// The embedder stopped the run (a client's `$/cancelRequest`, Ctrl-C).
    /// Like a timeout, this ends the instance.
    Cancelled,
}

impl Status {
    /// The CLI's exit code for this status (see the README's table).
    pub fn exit_code(&self) -> i32 {
        match self {
            Status::Ok { .. } | Status::Incomplete => 0,
            Status::Exception(_) => 1,
            Status::Exit(code) => *code,
            Status::Timeout { .. } => exit_code::TIMEOUT,
            Status::MemoryLimit { .. } => exit_code::MEMORY_LIMIT,
            Status::OutputLimit { .. } => exit_code::OUTPUT_LIMIT,
            Status::Crashed { .. } => exit_code::CRASHED,
            Status::Cancelled => exit_code::CANCELLED,
        }
    }

    /// Whether the instance that produced this status can run again. After a
    /// trap (timeout, memory, output, crash) it cannot: its state is lost.
    pub fn instance_survives(&self) -> bool {
        matches!(
            self,
            Status::Ok { .. } | Status::Incomplete | Status::Exception(_) | Status::Exit(_)
        )
    }
}

/// Process exit codes the CLI uses beside 0, 1 and the guest's own.
pub mod exit_code {
    /// Bad command line, missing or unreadable input (as Python does).
    pub const USAGE: i32 = 2;
    /// An internal error of goru itself (EX_SOFTWARE).
    pub const INTERNAL: i32 = 70;
    /// The wall-clock limit was hit (as coreutils `timeout`).
    pub const TIMEOUT: i32 = 124;
    /// The run was cancelled (128 + SIGINT, as a process stopped by Ctrl-C).
    pub const CANCELLED: i32 = 130;
    /// The guest trapped (128 + SIGABRT, as an aborted native process).
    pub const CRASHED: i32 = 134;
    /// The memory limit was hit (128 + SIGKILL, as a process the OOM killer ended).
    pub const MEMORY_LIMIT: i32 = 137;
    /// The output cap was hit (128 + SIGXFSZ, as a process past its file-size limit).
    pub const OUTPUT_LIMIT: i32 = 153;
}

/// The full result of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    /// What the guest wrote to stdout, when output was captured (empty when
    /// it was streamed to a sink).
    pub stdout: Vec<u8>,
    /// Likewise for stderr.
    pub stderr: Vec<u8>,
    /// Wall-clock time of the run.
    pub duration: Duration,
    /// Whether the exception (type, message, traceback) or the REPL value in
    /// [`Outcome::status`] was cut short: each is held to the room its
    /// stream had left under [`crate::Limits::max_output_bytes`] when the
    /// run ended (stderr for an exception, stdout for a value), since that
    /// is where it will be shown.
    pub clipped: bool,
}
