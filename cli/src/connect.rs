//! `goru --connect SOCKET`: the same run, in a goru daemon's sandbox. The
//! flags, the output and the report are the in-process run's; only where
//! the code runs differs, and that the guest's stdin is read up front.

use crate::fatal::Fatal;
use crate::outcome::{Clipped, print_traceback, report_clipped, report_status};
use crate::output::ProcessOutput;
use crate::runtime::async_runtime;
use crate::settings::{RunSettings, read_stdin_utf8};
use crate::verdict::Verdict;
use clap::ArgMatches;
use clap::parser::ValueSource;
use goru_client::protocol::types::{self as wire, OutcomeKind, OutputStream, RunResult};
use goru_client::protocol::{ErrorObject, codes};
use goru_client::{Client, ClientError, ClientOptions};
use goru_runtimes::{Language, Limits, OutputSink, Status, Stdin, Stream, exit_code};
use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

/// Which limit flags were given, as opposed to left at their defaults: a
/// default is lowered to what the daemon allows, a given value is not.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GivenLimits {
    timeout: bool,
    memory: bool,
    max_output: bool,
}

impl GivenLimits {
    /// From the matches of the command that holds the run flags.
    pub(crate) fn of(matches: Option<&ArgMatches>) -> Self {
        let given = |id: &str| {
            matches
                .and_then(|m| m.value_source(id))
                .is_some_and(|source| source != ValueSource::DefaultValue)
        };
        GivenLimits {
            timeout: given("timeout"),
            memory: given("memory"),
            max_output: given("max_output"),
        }
    }
}

pub(crate) fn run(socket: &Path, settings: RunSettings, given: GivenLimits) -> Result<i32, Fatal> {
    let RunSettings {
        limits,
        capabilities,
        report: report_file,
        program,
    } = settings;
    // The wire's capabilities are the engine's type: sent as the flags
    // built and checked them.
    let language = program.language;
    let stdin = guest_stdin(&program.stdin)?;
    async_runtime()?.block_on(async {
        let options = ClientOptions::new().on_output(|output| {
            let stream = match output.stream {
                OutputStream::Stdout => Stream::Stdout,
                OutputStream::Stderr => Stream::Stderr,
            };
            ProcessOutput.write(stream, output.data.as_bytes());
        });
        let client = Client::connect(socket, options)
            .await
            .map_err(|err| failure(err, socket))?;
        let limits = wire_limits(&limits, given, &client.initialize_result().limits.session);
        let params = wire::RunParams {
            language: program.language,
            code: program.code,
            capabilities,
            limits: limits.clone(),
            stream: true,
            filename: Some(program.filename),
            argv: Some(program.argv),
            stdin,
        };
        let result = client
            .run(params)
            .await
            .map_err(|err| failure(err, socket))?;
        // The result is in; a failure to say goodbye changes nothing.
        let _ = client.shutdown().await;
        report(&result, &limits, language);
        if let Some(file) = report_file {
            file.write(&Verdict {
                status: result.outcome,
                exit_code: result.exit_code,
                duration_ms: result.duration_ms,
            })?;
        }
        Ok(result.exit_code)
    })
}

/// The daemon takes the guest's stdin up front: this process's stdin read
/// to its end, unless it is a terminal (the guest would wait for input
/// nobody knows to type) or the code itself came from it.
fn guest_stdin(stdin: &Stdin) -> Result<Option<String>, Fatal> {
    if !matches!(stdin, Stdin::Inherit) || std::io::stdin().is_terminal() {
        return Ok(None);
    }
    read_stdin_utf8(
        "stdin",
        "with `--connect`, the guest's stdin must be UTF-8 text",
    )
    .map(Some)
}

/// Every limit the flags set, each given one as it is and each default
/// lowered to the daemon's maximum (`ceiling`), so that a daemon allowing
/// less than the CLI's defaults still runs code without flags.
fn wire_limits(limits: &Limits, given: GivenLimits, ceiling: &wire::Limits) -> wire::Limits {
    let pick = |given: bool, value: u64, max: Option<u64>| {
        Some(match max {
            Some(max) if !given => value.min(max),
            _ => value,
        })
    };
    let timeout_ms = u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX);
    wire::Limits {
        timeout_ms: pick(given.timeout, timeout_ms, ceiling.timeout_ms),
        memory_bytes: pick(given.memory, limits.memory_bytes, ceiling.memory_bytes),
        max_output_bytes: pick(
            given.max_output,
            limits.max_output_bytes,
            ceiling.max_output_bytes,
        ),
        ..wire::Limits::default()
    }
}

/// Tells the user why the run did not simply finish, in the words of the
/// in-process run (`limits`: what the run was given).
fn report(result: &RunResult, limits: &wire::Limits, language: Language) {
    let status = match result.outcome {
        OutcomeKind::Ok | OutcomeKind::Incomplete | OutcomeKind::Exit => return,
        OutcomeKind::Exception => {
            if let Some(exception) = &result.exception {
                print_traceback(&exception.traceback);
                if result.clipped {
                    report_clipped(
                        Clipped::Exception,
                        limits.max_output_bytes.unwrap_or_default(),
                    );
                }
            }
            return;
        }
        OutcomeKind::Timeout => Status::Timeout {
            limit: Duration::from_millis(limit_value(result, limits.timeout_ms)),
        },
        OutcomeKind::MemoryLimit => Status::MemoryLimit {
            limit: limit_value(result, limits.memory_bytes),
        },
        OutcomeKind::OutputLimit => Status::OutputLimit {
            stream: match result.limit.as_ref().and_then(|limit| limit.stream) {
                Some(OutputStream::Stderr) => Stream::Stderr,
                Some(OutputStream::Stdout) | None => Stream::Stdout,
            },
            limit: limit_value(result, limits.max_output_bytes),
        },
        OutcomeKind::Crashed => Status::Crashed {
            message: result
                .trap
                .clone()
                .or_else(|| result.message.clone())
                .unwrap_or_default(),
        },
        OutcomeKind::Cancelled => Status::Cancelled,
    };
    report_status(&status, language);
}

/// The value of the limit the run passed, as the result names it; what the
/// run was `given` for a daemon that does not say.
fn limit_value(result: &RunResult, given: Option<u64>) -> u64 {
    result
        .limit
        .as_ref()
        .map(|limit| limit.value)
        .or(given)
        .unwrap_or_default()
}

/// What to tell the user when talking to the daemon failed.
fn failure(err: ClientError, socket: &Path) -> Fatal {
    match err {
        ClientError::Connect { .. } => Fatal {
            message: err.to_string(),
            hint: Some(format!(
                "is goru-daemon running? start it with `goru-daemon --socket {}`",
                socket.display()
            )),
            code: exit_code::USAGE,
        },
        ClientError::Rpc(error) => refused(error),
        ClientError::Disconnected => Fatal {
            message: "the goru daemon closed the connection before the run finished".into(),
            hint: Some("the daemon's own output (its stderr) may say why".into()),
            code: exit_code::INTERNAL,
        },
        other => Fatal::internal(other.to_string()),
    }
}

/// The daemon refused the run: over one of its limits or bad capabilities
/// are the user's to fix; anything else is goru's.
fn refused(error: ErrorObject) -> Fatal {
    let message = format!("the goru daemon refused the run: {}", error.message);
    match error.code {
        codes::LIMIT_EXCEEDED => {
            let flag = error
                .data
                .as_ref()
                .and_then(|data| data["limit"].as_str())
                .and_then(|limit| match limit {
                    "timeoutMs" => Some("--timeout"),
                    "memoryBytes" => Some("--memory"),
                    "maxOutputBytes" => Some("--max-output"),
                    _ => None,
                });
            let hint = match flag {
                Some(flag) => format!(
                    "ask for less with `{flag}`, or start goru-daemon with a higher `{flag}`"
                ),
                None => "try again when the daemon is less busy".to_string(),
            };
            Fatal::usage(message, Some(hint))
        }
        codes::INVALID_PARAMS | codes::SANDBOX_START_FAILED => Fatal::usage(message, None),
        _ => Fatal::internal(message),
    }
}
