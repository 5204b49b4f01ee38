//! How a client presents itself to the daemon.

use super::host_functions::{HostFunctions, HostResult};
use goru_protocol::types::{ClientInfo, RunOutputParams};
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;

/// Called with each `run/output` notification of a streaming run, in order,
/// before the run's result is returned. It runs on the connection's reader,
/// so it must be quick: nothing else is read while it runs.
pub type OutputCallback = Arc<dyn Fn(RunOutputParams) + Send + Sync>;

/// What [`crate::Client`] constructors take.
#[derive(Clone, Default)]
pub struct ClientOptions {
    /// Who the client is: sessions belong to this id, and a client that
    /// reconnects with it finds them again. Keep it secret. `None`: a fresh
    /// random id (32 hex characters).
    pub client_id: Option<String>,
    /// The functions guest code may `call` in this client's runs.
    pub host_functions: HostFunctions,
    /// Where streamed output goes (runs with `stream: true`); without it,
    /// streamed output is dropped.
    pub on_output: Option<OutputCallback>,
    /// For the daemon's logs. `None`: `goru-client` and this crate's version.
    pub client_info: Option<ClientInfo>,
}

impl ClientOptions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// Registers a host function (see [`HostFunctions::register`]).
    pub fn host_function<F, Fut>(mut self, name: impl Into<String>, function: F) -> Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HostResult> + Send + 'static,
    {
        self.host_functions.register(name, function);
        self
    }

    pub fn on_output(mut self, callback: impl Fn(RunOutputParams) + Send + Sync + 'static) -> Self {
        self.on_output = Some(Arc::new(callback));
        self
    }
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("client_id", &self.client_id.as_ref().map(|_| "<secret>"))
            .field("host_functions", &self.host_functions)
            .field("on_output", &self.on_output.is_some())
            .field("client_info", &self.client_info)
            .finish()
    }
}

/// A fresh client id: 128 random bits as 32 hex characters, enough that
/// no other client can guess it.
pub(crate) fn random_client_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

pub(crate) fn default_client_info() -> ClientInfo {
    ClientInfo {
        name: "goru-client".into(),
        version: Some(env!("CARGO_PKG_VERSION").into()),
    }
}
