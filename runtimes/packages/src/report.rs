//! What an install reports: the packages it wrote, kept and replaced.

/// A package by name and version, as the installer reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// The normalized name (PEP 503).
    pub name: String,
    pub version: String,
}

impl Package {
    pub(crate) fn new(name: impl ToString, version: &str) -> Self {
        Package {
            name: name.to_string(),
            version: version.to_string(),
        }
    }
}

/// What an install did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Written by this install, in name order.
    pub installed: Vec<Package>,
    /// Needed and already there at the same version.
    pub unchanged: Vec<Package>,
    /// Older (or other) versions removed for the ones installed.
    pub replaced: Vec<Package>,
}
