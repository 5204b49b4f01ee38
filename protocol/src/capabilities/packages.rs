//! The `packages` capability: a host directory of installed pure-Python
//! packages, mounted read-only at [`GUEST_PATH`], and what `install_pkg`
//! may add to it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where the guest sees the packages directory.
pub const GUEST_PATH: &str = "/packages";

/// The `packages` capability.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PackagesCapability {
    /// The host directory of installed packages (made by `goru deps
    /// install` or goru-packages' `Installer`). Mounted read-only at
    /// `/packages` and appended to `sys.path`.
    pub dir: PathBuf,
    /// Names the guest may install with `install_pkg` (any spelling;
    /// compared after PEP 503 normalization). Empty (the default):
    /// `install_pkg` is refused. The dependencies of an allowed package are
    /// installed with it.
    #[serde(default)]
    pub allow_install: Vec<String>,
    /// The package index `install_pkg` uses (PEP 691 or PEP 503 simple
    /// API). `None` (the default): PyPI.
    #[serde(default)]
    pub index_url: Option<String>,
}

impl PackagesCapability {
    /// Packages from `dir`, without installs.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        PackagesCapability {
            dir: dir.into(),
            allow_install: Vec::new(),
            index_url: None,
        }
    }
}

/// A `packages` capability that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackagesConfigError {
    #[error("packages directory {}: {message}", dir.display())]
    Dir { dir: PathBuf, message: String },
    /// Relative to the daemon's working directory would mean nothing to a
    /// client.
    #[error("packages dir `{}` must be absolute", .0.display())]
    RelativeDir(PathBuf),
    /// `allowInstall[index]` is not a package name.
    #[error("install allow-list: {message}")]
    AllowList { index: usize, message: String },
    #[error("{0}")]
    Index(String),
    #[error("packages are for Python sessions only")]
    PythonOnly,
}
