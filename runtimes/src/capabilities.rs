//! Capabilities: what a session may do beyond computing, as plain data.
//!
//! Everything is off by default. The daemon receives these as JSON (unknown
//! fields are rejected, so a misspelt capability is an error rather than a
//! silently missing permission); the CLI builds them from its flags.

use crate::deterministic::Deterministic;
use crate::modules::fs::{FsLimits, Mount, MountError};
use crate::modules::http::HttpCapability;
use crate::modules::kv::KvLimits;
use crate::modules::packages::PackagesCapability;
use serde::{Deserialize, Serialize};

/// What a session may reach. `Capabilities::default()` grants nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Capabilities {
    /// The `kv` module: a key-value store private to the session, with these
    /// limits. `None`: the module is off.
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
    /// Python packages: a directory of installed packages, mounted
    /// read-only at `/packages` and appended to `sys.path`, and the names
    /// `install_pkg` may install into it. `None`: the standard library only.
    #[serde(default)]
    pub packages: Option<PackagesCapability>,
}

impl Capabilities {
    /// No capabilities at all (the default).
    pub fn none() -> Self {
        Self::default()
    }

    /// Checks what can be checked before a session starts (also done by
    /// [`crate::SessionBuilder::start`]): mount points absolute, normalized,
    /// not `/`, distinct and not `/packages` when packages are given;
    /// mounted host paths existing directories; the packages capability's
    /// directory, allow-list and index URL.
    pub fn validate(&self) -> Result<(), crate::Error> {
        crate::modules::fs::validate(&self.mounts)?;
        if let Some(packages) = &self.packages {
            packages.validate()?;
        }
        self.packages_mount_point_is_free()?;
        Ok(())
    }

    /// With packages, no mount may take their mount point, `/packages`.
    pub(crate) fn packages_mount_point_is_free(&self) -> Result<(), MountError> {
        let guest = crate::modules::packages::GUEST_PATH;
        if self.packages.is_some() && self.mounts.iter().any(|m| m.guest == guest) {
            return Err(MountError::BadGuestPath {
                guest: guest.to_string(),
                reason: "it is where the packages directory is mounted",
            });
        }
        Ok(())
    }

    /// Every directory the guest sees through WASI: the mounts and, when
    /// given, the packages directory (read-only).
    pub(crate) fn preopens(&self) -> Vec<Mount> {
        let mut preopens = self.mounts.clone();
        if let Some(packages) = &self.packages {
            preopens.push(Mount::new(
                crate::modules::packages::GUEST_PATH,
                packages.dir.clone(),
                crate::MountMode::Ro,
            ));
        }
        preopens
    }
}
