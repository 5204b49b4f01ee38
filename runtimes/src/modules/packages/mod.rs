//! `packages`: Python packages for the guest. A host directory of installed
//! pure-Python packages (see the goru-packages crate) is mounted read-only
//! at [`crate::PACKAGES_GUEST_PATH`] and put at the end of `sys.path`; and, when the
//! session allows it, `install_pkg(name, spec)` installs more into it, only
//! names on the session's allow-list, through the host-side installer.
//!
//! The guest names a package and a PEP 440 specifier, nothing else: no URL,
//! index, option or file, so it cannot make the host fetch or run anything
//! the embedder did not allow.

use super::{Module, ModuleError, Setup, SetupResult, string_arg};
use crate::{Capabilities, CapabilityError, PackagesCapability, PackagesConfigError};
use goru_packages::{Error as InstallError, Installer, NoProgress, PackageDir, Request};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

/// The module's state, when the capabilities give a packages directory.
pub(crate) fn setup(capabilities: &Capabilities, _: &Setup) -> SetupResult {
    let Some(capability) = &capabilities.packages else {
        return Ok(None);
    };
    let packages = Packages::new(capability).map_err(CapabilityError::from)?;
    Ok(Some(Box::new(packages)))
}

#[async_trait::async_trait]
impl Module for Packages {
    async fn call(&self, function: &str, args: Value) -> Result<Value, ModuleError> {
        Packages::call(self, function, args).await
    }
}

/// The host side of checking the capability: the directory, the
/// allow-list's names and the index URL.
pub(crate) fn check_host(capabilities: &Capabilities) -> Result<(), CapabilityError> {
    match &capabilities.packages {
        Some(packages) => checked(packages).map(drop).map_err(CapabilityError::from),
        None => Ok(()),
    }
}

/// Every check of [`check_host`]: the allow-list, normalized (PEP 503),
/// and the directory, opened.
fn checked(
    capability: &PackagesCapability,
) -> Result<(BTreeSet<String>, PackageDir), PackagesConfigError> {
    let allowed = allowed(capability)?;
    let dir = open_dir(capability)?;
    if let Some(url) = &capability.index_url {
        goru_packages::check_index_url(url)
            .map_err(|e| PackagesConfigError::Index(e.to_string()))?;
    }
    Ok((allowed, dir))
}

/// The directory, opened with no link anywhere on its path.
fn open_dir(capability: &PackagesCapability) -> Result<PackageDir, PackagesConfigError> {
    PackageDir::open(&capability.dir).map_err(|e| PackagesConfigError::Dir {
        dir: capability.dir.clone(),
        message: match e {
            InstallError::Io { source, .. } => source.to_string(),
            InstallError::UnsafePath { reason, .. } => reason,
            e => e.to_string(),
        },
    })
}

fn allowed(capability: &PackagesCapability) -> Result<BTreeSet<String>, PackagesConfigError> {
    capability
        .allow_install
        .iter()
        .enumerate()
        .map(|(index, name)| {
            goru_packages::package_name(name)
                .map(|n| n.to_string())
                .map_err(|e| PackagesConfigError::AllowList {
                    index,
                    message: e.to_string(),
                })
        })
        .collect()
}

/// The module's state in one session.
pub(crate) struct Packages {
    /// Opened once at session start: installs go to this directory, the
    /// one the session validated, whatever its path leads to later.
    dir: PackageDir,
    allowed: BTreeSet<String>,
    index_url: String,
}

impl Packages {
    pub(crate) fn new(capability: &PackagesCapability) -> Result<Self, PackagesConfigError> {
        let (allowed, dir) = checked(capability)?;
        Ok(Packages {
            allowed,
            dir,
            index_url: capability
                .index_url
                .clone()
                .unwrap_or_else(|| goru_packages::DEFAULT_INDEX_URL.to_string()),
        })
    }

    pub(crate) async fn call(&self, function: &str, args: Value) -> Result<Value, ModuleError> {
        match function {
            "install" => self.install(&args).await,
            _ => Err(ModuleError::new(
                "RuntimeError",
                format!("no function `packages.{function}`"),
            )),
        }
    }

    async fn install(&self, args: &Value) -> Result<Value, ModuleError> {
        let name = string_arg(args, "name")?;
        let spec = string_arg(args, "spec")?;
        let request = Request::from_parts(name, spec)
            .map_err(|e| ModuleError::new("ValueError", e.to_string()))?;
        if self.allowed.is_empty() {
            return Err(ModuleError::new(
                "PermissionError",
                "installing packages is not enabled in this sandbox (allow names with \
                 `--allow-install NAME` next to `--packages DIR` on the command line, or the \
                 `packages` capability's `allowInstall`)",
            ));
        }
        if !self.allowed.contains(request.name.as_ref()) {
            let allowed: Vec<&str> = self.allowed.iter().map(String::as_str).collect();
            return Err(ModuleError::new(
                "PermissionError",
                format!(
                    "`{}` is not on this sandbox's install allow-list (allowed: {})",
                    request.name,
                    allowed.join(", ")
                ),
            ));
        }
        let install_error = |e| self.install_error(e);
        let installer = installer(&self.index_url).map_err(install_error)?;
        self.dir.check_path_unchanged().map_err(install_error)?;
        let report = installer
            .install(
                &self.dir,
                std::slice::from_ref(&request),
                Arc::new(NoProgress),
            )
            .await
            .map_err(install_error)?;
        let version = report
            .installed
            .iter()
            .chain(&report.unchanged)
            .find(|p| p.name == request.name.as_ref())
            .map(|p| p.version.clone())
            .unwrap_or_default();
        let installed: Vec<Value> = report
            .installed
            .iter()
            .map(|p| json!([p.name, p.version]))
            .collect();
        Ok(json!({"version": version, "installed": installed}))
    }
}

/// One installer per index URL for the whole process: its HTTP client
/// (connections, TLS roots) is shared by every session.
fn installer(index_url: &str) -> Result<Installer, InstallError> {
    static INSTALLERS: OnceLock<Mutex<HashMap<String, Installer>>> = OnceLock::new();
    let installers = INSTALLERS.get_or_init(Default::default);
    let mut installers = installers.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(installer) = installers.get(index_url) {
        return Ok(installer.clone());
    }
    let installer = Installer::new(index_url)?;
    installers.insert(index_url.to_string(), installer.clone());
    Ok(installer)
}

impl Packages {
    /// The exception an install failure raises in the guest. Its message
    /// names the directory as the guest sees it ([`crate::PACKAGES_GUEST_PATH`]), never the
    /// host path; URLs in it are already without credentials.
    fn install_error(&self, error: InstallError) -> ModuleError {
        let kind = match &error {
            InstallError::InvalidName { .. } | InstallError::InvalidRequirement { .. } => {
                "ValueError"
            }
            InstallError::Index { .. } => "ConnectionError",
            _ => "RuntimeError",
        };
        let host = self.dir.path().display().to_string();
        let message =
            format!("install_pkg failed: {error}").replace(&host, crate::PACKAGES_GUEST_PATH);
        ModuleError::new(kind, message)
    }
}
