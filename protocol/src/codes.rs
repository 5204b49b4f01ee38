//! JSON-RPC error codes. The first five are JSON-RPC 2.0's own; the rest are
//! goru's, in the range JSON-RPC reserves for implementations.

/// The frame's body is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON, but not a JSON-RPC 2.0 request; also: a bad frame header, a frame
/// over the size limit, a request after `shutdown`.
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The params do not match the method's (missing or unknown fields, wrong types, bad values).
pub const INVALID_PARAMS: i64 = -32602;
/// A fault of the daemon itself.
pub const INTERNAL_ERROR: i64 = -32603;

/// No session with this id belongs to this client (never created, closed,
/// reaped, ended by a limit, or another client's).
pub const UNKNOWN_SESSION: i64 = -32001;
/// A request other than `initialize` before `initialize` (as LSP's -32002).
pub const NOT_INITIALIZED: i64 = -32002;
/// The session is running another request's code.
pub const SESSION_BUSY: i64 = -32003;
/// A daemon limit refused the request: too many sessions, a limit above the
/// daemon's ceiling, too many requests in flight. `data` names the limit.
pub const LIMIT_EXCEEDED: i64 = -32004;
/// Another live connection is using this client id.
pub const CLIENT_ID_IN_USE: i64 = -32005;
/// The client speaks a protocol version this daemon does not.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32006;
/// `initialize` was sent twice on one connection.
pub const ALREADY_INITIALIZED: i64 = -32007;
/// The sandbox could not be created with what was asked (a mount that does
/// not exist, an http host that is not valid, too little memory to start).
pub const SANDBOX_START_FAILED: i64 = -32008;
/// The daemon's operator policy refuses a capability the client asked for
/// (a mount outside the allowed roots, an http host not allowed, ...).
/// `data: {"policy": rule, ...}` names the rule and what it refused.
pub const CAPABILITY_DENIED: i64 = -32009;
/// The request was cancelled by `$/cancelRequest` before it produced a
/// result (runs that were cancelled answer with outcome `cancelled` instead).
pub const REQUEST_CANCELLED: i64 = -32800;

/// Every code with its name, for docs and tests.
pub const ALL: &[(i64, &str)] = &[
    (PARSE_ERROR, "ParseError"),
    (INVALID_REQUEST, "InvalidRequest"),
    (METHOD_NOT_FOUND, "MethodNotFound"),
    (INVALID_PARAMS, "InvalidParams"),
    (INTERNAL_ERROR, "InternalError"),
    (UNKNOWN_SESSION, "UnknownSession"),
    (NOT_INITIALIZED, "NotInitialized"),
    (SESSION_BUSY, "SessionBusy"),
    (LIMIT_EXCEEDED, "LimitExceeded"),
    (CLIENT_ID_IN_USE, "ClientIdInUse"),
    (UNSUPPORTED_PROTOCOL_VERSION, "UnsupportedProtocolVersion"),
    (ALREADY_INITIALIZED, "AlreadyInitialized"),
    (SANDBOX_START_FAILED, "SandboxStartFailed"),
    (CAPABILITY_DENIED, "CapabilityDenied"),
    (REQUEST_CANCELLED, "RequestCancelled"),
];
