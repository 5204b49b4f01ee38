//! goru's built-in guest modules (`kv`, and later `fs`, `http`).
//!
//! Each module is host code plus a thin wrapper in each guest language, side
//! by side in its folder (`kv/mod.rs`, `kv/kv.py`, `kv/kv.js`). The wrappers
//! reach the host through the ordinary `host.call` import with reserved names
//! (`goru:kv.get`); embedders cannot register names with a `:`, so nothing
//! can stand in for a module. Whether a module is enabled is checked here,
//! once, at the boundary.

pub mod kv;

use crate::Capabilities;
use serde::Serialize;
use serde_json::Value;

/// The prefix of the names of built-in module functions.
pub(crate) const PREFIX: &str = "goru:";

/// An error a module raises in the guest: `kind` names the exception class
/// the wrapper raises (`PermissionError`, `ValueError`, `KeyError`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ModuleError {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: String,
}

impl ModuleError {
    pub(crate) fn new(kind: &'static str, message: impl Into<String>) -> Self {
        ModuleError {
            kind,
            message: message.into(),
        }
    }

    /// The module is off in this session; the message says how to turn it on.
    pub(crate) fn disabled(module: &str, cli_flag: &str) -> Self {
        ModuleError::new(
            "PermissionError",
            format!(
                "the `{module}` module is not enabled in this sandbox \
                 (enable it with `{cli_flag}` on the command line, or the `{module}` capability)"
            ),
        )
    }

    /// The JSON the guest wrappers decode into an exception.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| self.message.clone())
    }
}

/// The state of every module for one session.
pub(crate) struct Modules {
    kv: Option<kv::KvStore>,
}

impl Modules {
    pub(crate) fn new(capabilities: &Capabilities) -> Self {
        Modules {
            kv: capabilities.kv.clone().map(kv::KvStore::new),
        }
    }

    /// Calls the module function `name` (without the prefix, e.g. `kv.get`).
    pub(crate) async fn call(&self, name: &str, args: Value) -> Result<Value, ModuleError> {
        let (module, function) = name.split_once('.').unwrap_or((name, ""));
        match module {
            "kv" => match &self.kv {
                Some(store) => store.call(function, args),
                None => Err(ModuleError::disabled("kv", "--kv")),
            },
            _ => Err(ModuleError::new(
                "RuntimeError",
                format!("no built-in module function `{PREFIX}{name}`"),
            )),
        }
    }
}

/// Reads a required string argument.
pub(crate) fn string_arg<'a>(args: &'a Value, name: &str) -> Result<&'a str, ModuleError> {
    args.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ModuleError::new("TypeError", format!("`{name}` must be a string")))
}
