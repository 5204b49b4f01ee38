//! Why capabilities cannot be used, said in terms of what the user wrote:
//! each error knows its capability, the `goru` flag that sets it and its
//! option path on the wire (`mounts[1].guest`, `http.allow[0]`).

use super::{HttpConfigError, MountError, PackagesConfigError};

/// A capability, by the name its option has on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    Kv,
    Deterministic,
    Mounts,
    Http,
    Packages,
}

impl Capability {
    /// Every capability, in the order of [`super::Capabilities`]' fields.
    pub const ALL: [Capability; 5] = [
        Capability::Kv,
        Capability::Deterministic,
        Capability::Mounts,
        Capability::Http,
        Capability::Packages,
    ];

    /// Its option in `capabilities` on the wire.
    pub fn option(self) -> &'static str {
        match self {
            Capability::Kv => "kv",
            Capability::Deterministic => "deterministic",
            Capability::Mounts => "mounts",
            Capability::Http => "http",
            Capability::Packages => "packages",
        }
    }

    /// The `goru` flag that turns it on, as it is written with its value
    /// (`--mount GUEST:HOST:ro`), for messages that say how.
    pub fn flag_usage(self) -> &'static str {
        match self {
            Capability::Kv => "--kv",
            Capability::Deterministic => "--deterministic",
            Capability::Mounts => "--mount GUEST:HOST:ro",
            Capability::Http => "--allow-host HOST",
            Capability::Packages => "--packages DIR",
        }
    }
}

/// Capabilities that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    /// `mounts[index]` cannot be used.
    #[error("{error}")]
    Mount { index: usize, error: MountError },
    #[error(transparent)]
    Http(#[from] HttpConfigError),
    #[error(transparent)]
    Packages(#[from] PackagesConfigError),
}

impl CapabilityError {
    /// The capability at fault.
    pub fn capability(&self) -> Capability {
        match self {
            CapabilityError::Mount { .. } => Capability::Mounts,
            CapabilityError::Http(_) => Capability::Http,
            CapabilityError::Packages(_) => Capability::Packages,
        }
    }

    /// The `goru` flag that gave the value at fault; `None` for an option
    /// the command line does not set (`http.timeoutMs`).
    pub fn flag(&self) -> Option<&'static str> {
        match self {
            CapabilityError::Mount { .. } => Some("--mount"),
            CapabilityError::Http(HttpConfigError::BadEntry { .. }) => Some("--allow-host"),
            CapabilityError::Http(HttpConfigError::Timeout(_)) => None,
            CapabilityError::Packages(error) => Some(match error {
                PackagesConfigError::Dir { .. }
                | PackagesConfigError::RelativeDir(_)
                | PackagesConfigError::PythonOnly => "--packages",
                PackagesConfigError::AllowList { .. } => "--allow-install",
                PackagesConfigError::Index(_) => "--index-url",
            }),
        }
    }

    /// The path of the option at fault inside `capabilities` on the wire:
    /// `mounts[1].guest`, `http.allow[0]`, `packages.indexUrl`.
    pub fn option(&self) -> String {
        match self {
            CapabilityError::Mount { index, error } => {
                let field = match error {
                    MountError::BadSpec(_) => "",
                    MountError::BadMode(_) => ".mode",
                    MountError::BadGuestPath { .. } | MountError::Duplicate(_) => ".guest",
                    MountError::RelativeHost(_) | MountError::Host { .. } => ".host",
                };
                format!("mounts[{index}]{field}")
            }
            CapabilityError::Http(HttpConfigError::BadEntry { index, .. }) => {
                format!("http.allow[{index}]")
            }
            CapabilityError::Http(HttpConfigError::Timeout(_)) => "http.timeoutMs".into(),
            CapabilityError::Packages(error) => match error {
                PackagesConfigError::Dir { .. } | PackagesConfigError::RelativeDir(_) => {
                    "packages.dir".into()
                }
                PackagesConfigError::AllowList { index, .. } => {
                    format!("packages.allowInstall[{index}]")
                }
                PackagesConfigError::Index(_) => "packages.indexUrl".into(),
                PackagesConfigError::PythonOnly => "packages".into(),
            },
        }
    }
}
