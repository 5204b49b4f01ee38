//! goru's built-in guest modules (`kv`, `fs`, `http`, and `packages`'
//! `install_pkg`).
//!
//! Each module is host code plus a thin wrapper in each guest language, side
//! by side in its folder (`kv/mod.rs`, `kv/kv.py`, `kv/kv.js`), and one line
//! in [`registry::MODULES`]; its config is a capability type of
//! goru-protocol. The wrappers reach the host through the ordinary
//! `host.call` import with reserved names (`goru:kv.get`); embedders cannot
//! register names with a `:`, so nothing can stand in for a module. Whether
//! a module is enabled is checked here, once, at the boundary.

mod contract;
mod error;
pub mod fs;
pub mod http;
pub mod kv;
pub(crate) mod open_files;
pub mod packages;
pub(crate) mod registry;

pub(crate) use contract::{Module, Setup, SetupResult};
pub(crate) use error::{ModuleError, string_arg};

use crate::{Capabilities, Limits};
use registry::{MODULES, ModuleSpec};
use serde_json::Value;
use std::sync::Arc;

/// The prefix of the names of built-in module functions.
pub(crate) const PREFIX: &str = "goru:";

/// The state of every module for one session.
pub(crate) struct Modules {
    /// Each module of the registry, in its order; `None` when it is off.
    enabled: Vec<(&'static ModuleSpec, Option<Box<dyn Module>>)>,
    /// The session's budget of open files, shared by `fs` and the guest's
    /// plain file calls.
    open_files: Arc<open_files::OpenFiles>,
}

impl Modules {
    /// Sets up each module its capability turns on; fails when a mount or
    /// the packages directory cannot be opened (after
    /// [`crate::check_capabilities`], only when the host changed since).
    pub(crate) fn new(capabilities: &Capabilities, limits: &Limits) -> Result<Self, crate::Error> {
        let open_files = open_files::OpenFiles::new(limits.max_open_files);
        let setup = Setup {
            limits,
            open_files: &open_files,
        };
        let enabled = MODULES
            .iter()
            .map(|spec| Ok((spec, (spec.setup)(capabilities, &setup)?)))
            .collect::<Result<_, crate::Error>>()?;
        Ok(Modules {
            enabled,
            open_files,
        })
    }

    /// The session's budget of open files.
    pub(crate) fn open_files(&self) -> Arc<open_files::OpenFiles> {
        self.open_files.clone()
    }

    /// The largest JSON the call `name` (without the prefix) may carry in its
    /// arguments or result: `default` (the host-call payload limit), or more
    /// where a module's own limits allow more (file contents).
    pub(crate) fn max_payload_bytes(&self, name: &str, default: u64) -> u64 {
        let module_limit = match name.split_once('.') {
            Some((module, function)) => match self.find(module) {
                Some((_, Some(state))) => state.max_payload_bytes(function),
                _ => 0,
            },
            None => 0,
        };
        default.max(module_limit)
    }

    /// Calls the module function `name` (without the prefix, e.g. `kv.get`).
    pub(crate) async fn call(&self, name: &str, args: Value) -> Result<Value, ModuleError> {
        let (module, function) = name.split_once('.').unwrap_or((name, ""));
        match self.find(module) {
            Some((_, Some(state))) => state.call(function, args).await,
            Some((spec, None)) => Err(ModuleError::disabled(spec.disabled_message())),
            None => Err(ModuleError::new(
                "RuntimeError",
                format!("no built-in module function `{PREFIX}{name}`"),
            )),
        }
    }

    fn find(&self, module: &str) -> Option<(&'static ModuleSpec, Option<&dyn Module>)> {
        self.enabled
            .iter()
            .find(|(spec, _)| spec.name == module)
            .map(|(spec, state)| (*spec, state.as_deref()))
    }
}
