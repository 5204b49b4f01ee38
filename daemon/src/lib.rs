//! goru's daemon: warm sandboxes behind JSON-RPC 2.0, over stdio or a local
//! socket, for clients in any language.
//!
//! A [`Daemon`] owns one engine and every client's sessions; each
//! connection is served by [`Daemon::serve_connection`]. Sessions belong to
//! the client id given in `initialize`; guest calls to the host functions a
//! client serves go back to that client as `host/call` requests. The wire
//! contract is the `goru-protocol` crate and docs/protocol.md.

mod admission;
mod client_state;
mod config;
mod connection;
mod convert;
mod daemon;
#[cfg(test)]
mod dispatch_tests;
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

/// Entry points for the fuzz targets in `fuzz/` (docs/fuzzing.md): how the
/// daemon turns a client's capabilities and limits into the engine's. Not
/// part of the API.
#[doc(hidden)]
pub mod fuzzing {
    use goru_protocol::{ErrorObject, codes, types};

    /// `session/create`'s `capabilities` for a Python session, read from
    /// their JSON and checked as a daemon with the default ceilings and no
    /// operator policy checks them.
    pub fn capabilities(
        asked: &serde_json::Value,
    ) -> Result<goru_runtimes::Capabilities, ErrorObject> {
        let asked: types::Capabilities = serde_json::from_value(asked.clone())
            .map_err(|err| ErrorObject::new(codes::INVALID_PARAMS, err.to_string()))?;
        crate::convert::capabilities(
            &asked,
            goru_runtimes::Language::Python,
            &crate::CapabilityLimits::default(),
            &crate::Policy::default(),
        )
    }

    /// `session/create`'s `limits` under the daemon's `ceiling`.
    pub fn limits(
        asked: &types::Limits,
        ceiling: &goru_runtimes::Limits,
    ) -> Result<goru_runtimes::Limits, ErrorObject> {
        crate::convert::limits(asked, ceiling)
    }
}
