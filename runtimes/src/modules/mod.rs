//! goru's built-in guest modules (`kv`, `fs`, `http`, and `packages`'
//! `install_pkg`).
//!
//! Each module is host code plus a thin wrapper in each guest language, side
//! by side in its folder (`kv/mod.rs`, `kv/kv.py`, `kv/kv.js`). The wrappers
//! reach the host through the ordinary `host.call` import with reserved names
//! (`goru:kv.get`); embedders cannot register names with a `:`, so nothing
//! can stand in for a module. Whether a module is enabled is checked here,
//! once, at the boundary.

pub mod fs;
pub mod http;
pub mod kv;
pub mod packages;

use crate::{Capabilities, Limits};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

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
    fs: Option<fs::FsMounts>,
    http: Option<http::Http>,
    packages: Option<packages::Packages>,
    /// The session's budget of open files, shared by `fs` and the guest's
    /// plain file calls.
    open_files: Arc<fs::OpenFiles>,
}

impl Modules {
    /// Fails when a mount cannot be used (see [`Capabilities::validate`]) or
    /// an allowed `http` host is not valid.
    pub(crate) fn new(capabilities: &Capabilities, limits: &Limits) -> Result<Self, crate::Error> {
        let open_files = fs::OpenFiles::new(limits.max_open_files);
        Ok(Modules {
            kv: capabilities.kv.clone().map(kv::KvStore::new),
            fs: fs::FsMounts::open(
                &capabilities.mounts,
                capabilities.fs_limits.clone(),
                open_files.clone(),
            )?,
            http: match &capabilities.http {
                Some(http) => http::Http::new(http, limits.max_host_payload_bytes)?,
                None => None,
            },
            packages: capabilities
                .packages
                .as_ref()
                .map(packages::Packages::new)
                .transpose()?,
            open_files,
        })
    }

    /// The session's budget of open files.
    pub(crate) fn open_files(&self) -> Arc<fs::OpenFiles> {
        self.open_files.clone()
    }

    /// The largest JSON the call `name` (without the prefix) may carry in its
    /// arguments or result: `default` (the host-call payload limit), or more
    /// where a module's own limits allow more (file contents).
    pub(crate) fn max_payload_bytes(&self, name: &str, default: u64) -> u64 {
        let module_limit = match (name.split_once('.'), &self.fs) {
            (Some(("fs", function)), Some(fs)) => fs.max_payload_bytes(function),
            _ => 0,
        };
        default.max(module_limit)
    }

    /// Calls the module function `name` (without the prefix, e.g. `kv.get`).
    pub(crate) async fn call(&self, name: &str, args: Value) -> Result<Value, ModuleError> {
        let (module, function) = name.split_once('.').unwrap_or((name, ""));
        match module {
            "kv" => match &self.kv {
                Some(store) => store.call(function, args),
                None => Err(ModuleError::disabled("kv", "--kv")),
            },
            "fs" => match &self.fs {
                Some(mounts) => mounts.call(function, args).await,
                None => Err(ModuleError::new(
                    "PermissionError",
                    "the `fs` module is not enabled in this sandbox: no directory is mounted \
                     (mount one with `--mount GUEST:HOST:ro` on the command line, \
                     or the `mounts` capability)",
                )),
            },
            "http" => match &self.http {
                Some(http) => http.call(function, args).await,
                None => Err(ModuleError::disabled("http", "--allow-host HOST")),
            },
            "packages" => match &self.packages {
                Some(packages) => packages.call(function, args).await,
                None => Err(ModuleError::new(
                    "PermissionError",
                    "installing packages is not enabled in this sandbox: it has no packages \
                     directory (give one with `--packages DIR` and allow names with \
                     `--allow-install NAME` on the command line, or the `packages` capability)",
                )),
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
