//! Capabilities: what a session may do beyond computing, as plain data.
//!
//! Everything is off by default. The daemon receives these as JSON (unknown
//! fields are rejected, so a misspelt capability is an error rather than a
//! silently missing permission); the CLI builds them from its flags; the
//! engine (goru-runtimes) takes them as they are. What can be checked
//! without the host is checked by [`Capabilities::validate`], the one place
//! that knows the rules; the engine adds the checks that open what they
//! look at (mounted directories, the packages directory).

mod deterministic;
mod error;
mod fs;
mod http;
mod kv;
mod packages;

pub use deterministic::{DEFAULT_START_TIME_MS, Deterministic};
pub use error::{Capability, CapabilityError};
pub use fs::{FsLimits, Mount, MountError, MountMode};
pub use http::{
    AllowEntry, BadEntry, Entry, HostPattern, HttpCapability, HttpConfigError, MAX_HTTP_TIMEOUT,
    Scheme, normalize_domain,
};
pub use kv::KvLimits;
pub use packages::{GUEST_PATH as PACKAGES_GUEST_PATH, PackagesCapability, PackagesConfigError};

use crate::Language;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a session may reach. `Capabilities::default()` grants nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Capabilities {
    /// The `kv` module: a key-value store private to the session, with these
    /// limits (`{}` for the defaults). `None`: the module is off.
    #[serde(default)]
    pub kv: Option<KvLimits>,
    /// Deterministic mode: fixed start time and random seed. `None`: the
    /// guest sees the real clock and the host's CSPRNG.
    #[serde(default)]
    pub deterministic: Option<Deterministic>,
    /// Host directories the guest sees (plain `open()` and the `fs`
    /// module). Empty: no files at all, and the `fs` module is off.
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// Per-call size limits of the `fs` module.
    #[serde(default)]
    pub fs_limits: FsLimits,
    /// The `http` module: the hosts the guest may reach and the limits of
    /// each request. `None`, or no hosts: the module is off.
    #[serde(default)]
    pub http: Option<HttpCapability>,
    /// Python packages: a directory of installed packages (made by `goru
    /// deps install`), mounted read-only at `/packages` and appended to
    /// `sys.path`, and the names `install_pkg` may install into it from
    /// `indexUrl` (default PyPI). `None`: the standard library only.
    #[serde(default)]
    pub packages: Option<PackagesCapability>,
}

impl Capabilities {
    /// No capabilities at all (the default).
    pub fn none() -> Self {
        Self::default()
    }

    /// Checks everything that needs no host access, for a session in
    /// `language`: mount points absolute, normalized, not `/`, distinct
    /// and not `/packages` when packages are given; every `http` entry and
    /// its timeout; packages only for Python. The engine checks the rest
    /// when it opens the host's directories (goru-runtimes'
    /// `check_capabilities`, which calls this first).
    pub fn validate(&self, language: Language) -> Result<(), CapabilityError> {
        fs::check_guest_paths(&self.mounts)
            .map_err(|(index, error)| CapabilityError::Mount { index, error })?;
        if self.packages.is_some() {
            if language != Language::Python {
                return Err(PackagesConfigError::PythonOnly.into());
            }
            if let Some(index) = self
                .mounts
                .iter()
                .position(|m| m.guest == PACKAGES_GUEST_PATH)
            {
                return Err(CapabilityError::Mount {
                    index,
                    error: MountError::BadGuestPath {
                        guest: PACKAGES_GUEST_PATH.to_string(),
                        reason: "it is where the packages directory is mounted",
                    },
                });
            }
        }
        if let Some(http) = &self.http {
            http.validate()?;
        }
        Ok(())
    }

    /// Refuses host paths that are relative: a daemon's working directory
    /// means nothing to its clients.
    pub fn require_absolute_paths(&self) -> Result<(), CapabilityError> {
        if let Some(index) = self.mounts.iter().position(|m| !m.host.is_absolute()) {
            let error = MountError::RelativeHost(self.mounts[index].host.clone());
            return Err(CapabilityError::Mount { index, error });
        }
        match &self.packages {
            Some(packages) if !packages.dir.is_absolute() => {
                Err(PackagesConfigError::RelativeDir(packages.dir.clone()).into())
            }
            _ => Ok(()),
        }
    }

    /// Every directory the guest sees through WASI: the mounts and, when
    /// given, the packages directory (read-only) at `/packages`.
    pub fn preopens(&self) -> Vec<Mount> {
        let mut preopens = self.mounts.clone();
        if let Some(packages) = &self.packages {
            preopens.push(Mount::new(
                PACKAGES_GUEST_PATH,
                packages.dir.clone(),
                MountMode::Ro,
            ));
        }
        preopens
    }
}

#[cfg(test)]
mod tests;
