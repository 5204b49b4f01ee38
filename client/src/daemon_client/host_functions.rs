//! The host functions a client serves: guest code calling `call(name, ...)`
//! in this client's sessions becomes a `host/call` request answered here.

use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a host function returns: the JSON value the guest's call returns,
/// or a message the guest sees raised (`RuntimeError` / `Error`).
pub type HostResult = Result<Value, String>;

type HostFuture = Pin<Box<dyn Future<Output = HostResult> + Send>>;

/// One registered function, type-erased so functions of different types
/// share the registry.
pub(crate) type HostFn = Arc<dyn Fn(Value) -> HostFuture + Send + Sync>;

/// A registry of async host functions by name.
#[derive(Clone, Default)]
pub struct HostFunctions {
    functions: BTreeMap<String, HostFn>,
}

impl HostFunctions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `function` under `name`, replacing any earlier one. It gets
    /// the guest's arguments (an object for keyword arguments) and runs in
    /// its own task, so calls of one gathered batch run concurrently.
    pub fn register<F, Fut>(&mut self, name: impl Into<String>, function: F) -> &mut Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HostResult> + Send + 'static,
    {
        let function: HostFn = Arc::new(move |args| Box::pin(function(args)));
        self.functions.insert(name.into(), function);
        self
    }

    /// [`register`](Self::register), by value, for building in one expression.
    pub fn with<F, Fut>(mut self, name: impl Into<String>, function: F) -> Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HostResult> + Send + 'static,
    {
        self.register(name, function);
        self
    }

    /// The registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.functions.keys().map(String::as_str)
    }

    pub(crate) fn get(&self, name: &str) -> Option<HostFn> {
        self.functions.get(name).cloned()
    }
}

impl std::fmt::Debug for HostFunctions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}
