//! Params and results of every method, camelCase on the wire. Unknown fields
//! in params are refused (`InvalidParams`), so a misspelt option is an error
//! rather than a silently ignored one.

use crate::Id;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::capabilities::Capabilities;
pub use crate::language::Language;

/// `initialize` params: the first request on every connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InitializeParams {
    /// Who the client is. Sessions belong to this id: a client that
    /// reconnects with it finds its sessions; no other id can see or touch
    /// them. Treat it as a secret (random, 16+ characters). 1 to 128
    /// characters of `A-Z a-z 0-9 _ . : -`.
    pub client_id: String,
    /// The protocol version the client speaks ([`crate::PROTOCOL_VERSION`]).
    pub protocol_version: u32,
    /// The host functions this client serves: guest code calling one of
    /// these names in this client's sessions becomes a `host/call` request
    /// to this client.
    #[serde(default)]
    pub host_functions: Vec<String>,
    /// For logs only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_info: Option<ClientInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InitializeResult {
    pub protocol_version: u32,
    pub server_info: ServerInfo,
    /// The languages sessions can be created in.
    pub languages: Vec<Language>,
    /// The daemon's limits.
    pub limits: DaemonLimits,
    /// This client's sessions still alive from an earlier connection.
    pub sessions: Vec<SessionInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    pub name: String,
    pub version: String,
}

/// What the daemon allows, as `initialize` reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DaemonLimits {
    /// Live sessions one client id may have.
    pub max_sessions_per_client: u64,
    /// Live sessions in the whole daemon.
    pub max_sessions: u64,
    /// A session unused for this long is closed.
    pub idle_timeout_ms: u64,
    /// How long a disconnected client's sessions wait for it to reconnect.
    pub reconnect_grace_ms: u64,
    /// The largest frame body the daemon reads.
    pub max_frame_bytes: u64,
    /// Requests one connection may have in progress; the daemon stops
    /// reading from a connection that has this many until one finishes.
    pub max_in_flight_requests: u64,
    /// The highest limits a session or run may ask for; also what it gets
    /// for every limit it leaves out.
    pub session: Limits,
}

/// Per-run limits of a session or a one-shot run. Every field is optional:
/// a missing one takes the daemon's value (`initialize` reports them);
/// one above the daemon's value is refused with `LimitExceeded`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock time of one run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Linear memory of the guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Bytes of stdout, and separately of stderr, per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<u64>,
    /// Host calls per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_host_calls: Option<u64>,
    /// Bytes of JSON in one host call's arguments, and in its result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_host_payload_bytes: Option<u64>,
    /// Calls in one gathered batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch_calls: Option<u64>,
    /// Calls of one batch in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_host_calls: Option<u64>,
    /// Bytes of JSON the results of one batch may hold together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch_result_bytes: Option<u64>,
    /// Host files and directories the guest may hold open at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_files: Option<u64>,
}

/// `session/create` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionCreateParams {
    pub language: Language,
    /// What the session may reach (all off when left out): `kv`,
    /// `deterministic`, `mounts`, `fsLimits`, `http`, `packages`, as in
    /// docs/sandbox-api.md.
    #[serde(default)]
    pub capabilities: Capabilities,
    #[serde(default)]
    pub limits: Limits,
    /// `sys.argv` / `scriptArgs` (default `["-c"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
}

impl SessionCreateParams {
    /// A session of `language` with nothing else asked for: no
    /// capabilities, the daemon's limits, the default argv.
    pub fn new(language: Language) -> Self {
        SessionCreateParams {
            language,
            capabilities: Capabilities::default(),
            limits: Limits::default(),
            argv: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionCreateResult {
    pub session_id: String,
}

/// How a run treats its code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// As a script.
    #[default]
    Exec,
    /// As a REPL entry: a trailing expression's value comes back in `value`.
    Repl,
    /// Only check whether the code is a complete entry (`ok` or `incomplete`).
    CheckComplete,
}

/// `session/run` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionRunParams {
    pub session_id: String,
    pub code: String,
    #[serde(default)]
    pub mode: Mode,
    /// Send output as `run/output` notifications while the code runs
    /// (the result's `stdout` and `stderr` are then empty).
    #[serde(default)]
    pub stream: bool,
    /// The file name tracebacks show (default `<session>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// What the guest reads from stdin during this run (default: nothing,
    /// end of input at once). Input a run leaves unread is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
}

impl SessionRunParams {
    /// `code` run as a script in `session_id`, its result in one answer.
    pub fn new(session_id: impl Into<String>, code: impl Into<String>) -> Self {
        SessionRunParams {
            session_id: session_id.into(),
            code: code.into(),
            mode: Mode::default(),
            stream: false,
            filename: None,
            stdin: None,
        }
    }
}

/// `run` params: one run in a fresh sandbox, thrown away afterwards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunParams {
    pub language: Language,
    pub code: String,
    #[serde(default)]
    pub capabilities: Capabilities,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub stream: bool,
    /// The file name tracebacks show (default `<string>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// What the guest reads from stdin (default: nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
}

impl RunParams {
    /// `code` once in a fresh sandbox of `language`, with nothing else
    /// asked for, its result in one answer.
    pub fn new(language: Language, code: impl Into<String>) -> Self {
        RunParams {
            language,
            code: code.into(),
            capabilities: Capabilities::default(),
            limits: Limits::default(),
            stream: false,
            filename: None,
            argv: None,
            stdin: None,
        }
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OutcomeKind {
    /// Ran to the end.
    Ok,
    /// `checkComplete` mode: the entry needs more lines.
    Incomplete,
    /// An uncaught exception: see `exception`.
    Exception,
    /// `sys.exit(n)` / `std.exit(n)`: see `exitCode`.
    Exit,
    /// The run passed `timeoutMs`.
    Timeout,
    /// The guest needed more than `memoryBytes`.
    MemoryLimit,
    /// A stream passed `maxOutputBytes`; what fitted is in the output.
    OutputLimit,
    /// The guest trapped for another reason; see `message`.
    Crashed,
    /// Stopped by `$/cancelRequest` or because the client disconnected.
    Cancelled,
}

/// The result of `session/run` and `run`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    pub outcome: OutcomeKind,
    /// What the guest wrote (invalid UTF-8 replaced by U+FFFD); empty when streamed.
    pub stdout: String,
    pub stderr: String,
    /// `repl` mode: the representation of a trailing expression's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<Exception>,
    /// Whether `exception` (each of its fields) or `value` was cut short: each
    /// is held to the room its stream (stderr, stdout) had left under
    /// `maxOutputBytes` when the run ended. Absent when nothing was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clipped: bool,
    /// The exit code the `goru` CLI would end with: 0, the guest's own, 1
    /// for an exception, 124 timeout, 130 cancelled, 134 crash, 137 memory,
    /// 153 output.
    pub exit_code: i32,
    /// For limits and crashes: what happened, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `timeout`, `memoryLimit`, `outputLimit`: the limit the run passed,
    /// so that no client need read `message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitPassed>,
    /// `crashed`: the trap, in the engine's words (`message` without its
    /// lead-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trap: Option<String>,
    pub duration_ms: f64,
    /// `session/run` only: whether the session can run again. After a
    /// limit, crash or cancellation it cannot, and it is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_alive: Option<bool>,
}

/// A limit a run passed, in the result of a run that ended at one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitPassed {
    /// Which limit, by its name in [`Limits`].
    pub name: LimitName,
    /// The limit's value in the run (milliseconds or bytes, as its name says).
    pub value: u64,
    /// `maxOutputBytes`: the stream that passed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<OutputStream>,
}

/// The limits a run can end at, named as in [`Limits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum LimitName {
    /// `timeout`.
    TimeoutMs,
    /// `memoryLimit`.
    MemoryBytes,
    /// `outputLimit`.
    MaxOutputBytes,
}

/// An exception that escaped the user's code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Exception {
    /// e.g. `ZeroDivisionError`, `TypeError`.
    #[serde(rename = "type")]
    pub type_name: String,
    pub message: String,
    /// With the user's line numbers, ending in the `Type: message` line.
    pub traceback: String,
}

/// `session/close` params (the result is `null`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionCloseParams {
    pub session_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionListResult {
    pub sessions: Vec<SessionInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub session_id: String,
    pub language: Language,
    /// Whether a run is in progress.
    pub busy: bool,
    /// Runs so far.
    pub runs: u64,
    /// Milliseconds since the session was last used.
    pub idle_ms: u64,
}

/// `$/cancelRequest` params (a notification).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelParams {
    /// The id of the request to cancel.
    pub id: Id,
}

/// `host/call` params (daemon to client). The client answers with any JSON
/// value as the result, or an error whose message the guest sees raised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostCallParams {
    /// The session whose guest called; `null` for a one-shot `run`.
    pub session_id: Option<String>,
    /// The id of the client's request that is running the code.
    pub request_id: Id,
    pub name: String,
    /// The arguments, as the guest passed them (an object for keyword
    /// arguments, otherwise what was given).
    pub args: Value,
}

/// An output stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// `run/output` params (a notification, daemon to client).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunOutputParams {
    /// `null` for a one-shot `run`.
    pub session_id: Option<String>,
    /// The id of the request whose run wrote this.
    pub request_id: Id,
    pub stream: OutputStream,
    /// The text written (never a split UTF-8 sequence; invalid bytes
    /// replaced by U+FFFD).
    pub data: String,
}

/// The params of a method that takes none (`session/list`, `shutdown`,
/// `exit`): sent as no params (`null`); an empty object is accepted too,
/// any member is refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

impl Serialize for NoParams {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}

impl JsonSchema for NoParams {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NoParams".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "null"})
    }
}

/// `host/call`'s result: any JSON value, what the guest's call returns.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HostCallResult(pub Value);

impl JsonSchema for HostCallResult {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HostCallResult".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"description": "any JSON value: what the guest's call returns"})
    }
}
