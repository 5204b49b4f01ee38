//! The error a module raises in the guest, and the argument check every
//! module shares.

use serde::Serialize;
use serde_json::Value;

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

    /// A module that is off in this session; `message` says how to turn it
    /// on (the registry words it).
    pub(crate) fn disabled(message: String) -> Self {
        ModuleError::new("PermissionError", message)
    }

    /// The JSON the guest wrappers decode into an exception.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| self.message.clone())
    }
}

/// Reads a required string argument.
pub(crate) fn string_arg<'a>(args: &'a Value, name: &str) -> Result<&'a str, ModuleError> {
    args.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ModuleError::new("TypeError", format!("`{name}` must be a string")))
}
