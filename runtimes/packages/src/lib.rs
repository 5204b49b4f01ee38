//! goru's package installer: pure-Python wheels from a package index into a
//! directory that a sandbox mounts read-only and puts on `sys.path`.
//!
//! Safe by construction: nothing from a package runs on the host (wheels
//! are unpacked, never built; no setup script, build backend or `pip`),
//! every download is checked against the index's sha256 and every file
//! against the wheel's RECORD, and no archive entry may leave the package
//! directory (absolute paths, `..`, links and special files are refused).
//! Only wheels tagged for any platform and ABI (`py3-none-any`,
//! `py2.py3-none-any`) are taken, resolved with their dependencies for the
//! guest, CPython 3.14 on WASI (see [`environment`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), goru_packages::Error> {
//! use goru_packages::{Installer, PackageDir, Request, NoProgress};
//! let dir = PackageDir::create(".goru/packages")?;
//! let installer = Installer::new(goru_packages::DEFAULT_INDEX_URL)?;
//! let report = installer
//!     .install(&dir, &[Request::parse("attrs>=23")?], std::sync::Arc::new(NoProgress))
//!     .await?;
//! println!("{:?}", report.installed);
//! # Ok(()) }
//! ```

pub mod environment;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod index;
mod installer;
mod nofollow;
mod progress;
mod redact;
mod report;
mod request;
mod reserved;
mod resolve;
mod target;
mod wheel;

pub use error::Error;
pub use index::{DEFAULT_INDEX_URL, check_index_url};
pub use installer::Installer;
pub use progress::{Event, NoProgress, Progress};
pub use redact::redact_url;
pub use report::{Package, Report};
pub use request::{Request, package_name, version_specifiers};
pub use target::{Installed, PackageDir};

use std::time::Duration;

/// The installer's limits. Each has a default safe for a shared host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest file downloaded. Default 64 MiB.
    pub max_download_bytes: u64,
    /// Most bytes downloaded by one install, all files together (they are
    /// held in memory until installed). Default 256 MiB.
    pub max_total_download_bytes: u64,
    /// Largest project page read from the index. Default 32 MiB.
    pub max_index_page_bytes: u64,
    /// Most bytes a wheel may unpack to (a zip bomb stops here). Default
    /// 256 MiB.
    pub max_unpacked_bytes: u64,
    /// Most entries in one wheel. Default 20,000.
    pub max_archive_entries: usize,
    /// Most packages one install may resolve to. Default 100.
    pub max_packages: usize,
    /// Time to connect to the index. Default 15 s.
    pub connect_timeout: Duration,
    /// Time for one whole request (page or download). Default 120 s.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_download_bytes: 64 << 20,
            max_total_download_bytes: 256 << 20,
            max_index_page_bytes: 32 << 20,
            max_unpacked_bytes: 256 << 20,
            max_archive_entries: 20_000,
            max_packages: 100,
            connect_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(120),
        }
    }
}
