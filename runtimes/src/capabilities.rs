//! Capabilities: what a session may do beyond computing, as plain data.
//!
//! Everything is off by default. The daemon receives these as JSON (unknown
//! fields are rejected, so a misspelt capability is an error rather than a
//! silently missing permission); the CLI builds them from its flags.

use crate::deterministic::Deterministic;
use crate::modules::fs::{FsLimits, Mount, MountError};
use crate::modules::http::HttpCapability;
use crate::modules::kv::KvLimits;
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
}

impl Capabilities {
    /// No capabilities at all (the default).
    pub fn none() -> Self {
        Self::default()
    }

    /// Checks what can be checked before a session starts (also done by
    /// [`crate::SessionBuilder::start`]): mount points absolute, normalized,
    /// not `/` and distinct; mounted host paths existing directories.
    pub fn validate(&self) -> Result<(), MountError> {
        crate::modules::fs::validate(&self.mounts)
    }
}
