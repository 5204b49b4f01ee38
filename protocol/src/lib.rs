//! The goru daemon's wire protocol, shared by the daemon and its Rust client.
//!
//! JSON-RPC 2.0, framed as the Language Server Protocol frames it
//! (`Content-Length: N\r\n\r\n` then N bytes of JSON), the same over stdio
//! and over a local socket. The method names, their params and results, and
//! the error codes here are the contract other clients build against; the
//! full spec with an example session is docs/protocol.md, and
//! docs/protocol.schema.json is generated from these types ([`schema`]).

pub mod capabilities;
pub mod codes;
pub mod echo;
pub mod framing;
mod language;
pub mod message;
pub mod schema;
pub mod types;

pub use capabilities::Capabilities;
pub use language::{Language, UnknownLanguage};
pub use message::{ErrorObject, Id, Message, Notification, Request, Response};

/// The protocol version this crate speaks. A client sends the version it
/// speaks in `initialize`; the daemon refuses any other.
pub const PROTOCOL_VERSION: u32 = 1;

/// The method names.
pub mod methods {
    pub const INITIALIZE: &str = "initialize";
    pub const SESSION_CREATE: &str = "session/create";
    pub const SESSION_RUN: &str = "session/run";
    pub const SESSION_CLOSE: &str = "session/close";
    pub const SESSION_LIST: &str = "session/list";
    pub const RUN: &str = "run";
    pub const CANCEL_REQUEST: &str = "$/cancelRequest";
    pub const SHUTDOWN: &str = "shutdown";
    pub const EXIT: &str = "exit";
    /// Daemon to client: call a host function the client serves.
    pub const HOST_CALL: &str = "host/call";
    /// Daemon to client: output of a streaming run.
    pub const RUN_OUTPUT: &str = "run/output";
}
