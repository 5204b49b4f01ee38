//! What the installer reports while it works, for a progress display.

/// One step of an install.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Fetching the project page of `name`.
    Resolving { name: &'a str },
    /// `done` bytes of `file` so far (`total` when the server says).
    Download {
        file: &'a str,
        done: u64,
        total: Option<u64>,
    },
    /// `file` is complete and matches its sha256.
    Downloaded { file: &'a str, bytes: u64 },
    /// `name` `version` is now in the package directory.
    Installed { name: &'a str, version: &'a str },
    /// `name` `version` was there already; nothing was written.
    AlreadyInstalled { name: &'a str, version: &'a str },
}

/// Receives the installer's events. Every method has a default that does
/// nothing.
pub trait Progress: Send + Sync {
    fn event(&self, event: Event<'_>) {
        let _ = event;
    }
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
