//! The goru daemon's wire protocol, shared by the daemon and its Rust client.
//!
//! JSON-RPC 2.0, framed as the Language Server Protocol frames it
//! (`Content-Length: N\r\n\r\n` then N bytes of JSON), the same over stdio
//! and over a local socket. The methods ([`method`]: each one's name,
//! direction, params and result) and the error codes here are the contract
//! other clients build against; the full spec with an example session is
//! docs/protocol.md, and docs/protocol.schema.json is generated from the
//! method table ([`schema`]).

pub mod capabilities;
pub mod codes;
pub mod echo;
pub mod framing;
mod language;
pub mod message;
pub mod method;
pub mod schema;
pub mod types;

pub use capabilities::Capabilities;
pub use language::{Language, UnknownLanguage};
pub use message::{ErrorObject, Id, Message, Notification, Request, Response};

/// The protocol version this crate speaks. A client sends the version it
/// speaks in `initialize`; the daemon refuses any other.
pub const PROTOCOL_VERSION: u32 = 1;

/// The method names, as constants (each is its [`method`] type's `NAME`).
pub mod methods {
    use crate::method::{self, Method, Notification};

    pub const INITIALIZE: &str = method::Initialize::NAME;
    pub const SESSION_CREATE: &str = method::SessionCreate::NAME;
    pub const SESSION_RUN: &str = method::SessionRun::NAME;
    pub const SESSION_CLOSE: &str = method::SessionClose::NAME;
    pub const SESSION_LIST: &str = method::SessionList::NAME;
    pub const RUN: &str = method::Run::NAME;
    pub const CANCEL_REQUEST: &str = method::CancelRequest::NAME;
    pub const SHUTDOWN: &str = method::Shutdown::NAME;
    pub const EXIT: &str = method::Exit::NAME;
    /// Daemon to client: call a host function the client serves.
    pub const HOST_CALL: &str = method::HostCall::NAME;
    /// Daemon to client: output of a streaming run.
    pub const RUN_OUTPUT: &str = method::RunOutput::NAME;
}
