//! goru's daemon: warm sandboxes behind JSON-RPC 2.0, over stdio or a local
//! socket, for clients in any language.
//!
//! A [`Daemon`] owns one engine and every client's sessions; each
//! connection is served by [`Daemon::serve_connection`]. Sessions belong to
//! the client id given in `initialize`; guest calls to the host functions a
//! client serves go back to that client as `host/call` requests. The wire
//! contract is the `goru-protocol` crate and docs/protocol.md.

mod admission;
mod config;
mod connection;
mod convert;
mod daemon;
mod handlers;
mod host_calls;
mod outbox;
mod output;
mod peer;
mod policy;
mod registry;
pub mod socket;

pub use config::{CapabilityLimits, Config};
pub use connection::ConnectionEnd;
pub use daemon::Daemon;
pub use policy::{Policy, PolicyError, Refusal};
