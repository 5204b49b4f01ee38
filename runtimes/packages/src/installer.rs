//! The installer: resolve against the index, download and check, install.

use crate::index::IndexClient;
use crate::report::{Package, Report};
use crate::resolve::Resolver;
use crate::{Error, Limits, PackageDir, Progress, Request};
use std::sync::Arc;

/// Installs pure-Python wheels from one index. Cheap to clone.
#[derive(Clone)]
pub struct Installer {
    client: IndexClient,
    limits: Limits,
}

impl Installer {
    /// An installer for the simple index at `index_url` (PEP 691 JSON or
    /// PEP 503 HTML; [`crate::DEFAULT_INDEX_URL`] is PyPI's) with the
    /// default [`Limits`].
    pub fn new(index_url: &str) -> Result<Self, Error> {
        Installer::with_limits(index_url, Limits::default())
    }

    pub fn with_limits(index_url: &str, limits: Limits) -> Result<Self, Error> {
        Ok(Installer {
            client: IndexClient::new(index_url, limits.clone())?,
            limits,
        })
    }

    /// The index URL (with a trailing `/`), credentials included: pass it
    /// through [`crate::redact_url`] before showing it.
    pub fn index_url(&self) -> &str {
        self.client.base().as_str()
    }

    /// Resolves `requests` with their dependencies for the guest, downloads
    /// and checks every wheel, and installs them into `dir`. Nothing is
    /// written unless everything resolved and checked. When every request
    /// is already satisfied by what `dir` holds, nothing is fetched.
    pub async fn install(
        &self,
        dir: &PackageDir,
        requests: &[Request],
        progress: Arc<dyn Progress>,
    ) -> Result<Report, Error> {
        if let Some(report) = already_satisfied(dir, requests)? {
            return Ok(report);
        }
        let resolved = Resolver::new(&self.client, &self.limits, &progress)
            .resolve(requests)
            .await?;
        let dir = dir.clone();
        let limits = self.limits.clone();
        // Unpacking and moving files is blocking work.
        tokio::task::spawn_blocking(move || dir.install(resolved, &limits, progress.as_ref()))
            .await
            .map_err(|e| Error::Io {
                path: Default::default(),
                source: std::io::Error::other(format!("the install task failed: {e}")),
            })?
    }
}

/// `Some` when each request (without extras) names a package `dir` holds
/// at a version its specifiers allow.
fn already_satisfied(dir: &PackageDir, requests: &[Request]) -> Result<Option<Report>, Error> {
    let present = dir.list()?;
    let mut report = Report::default();
    for request in requests {
        if !request.extras.is_empty() {
            return Ok(None);
        }
        let Some(installed) = present.iter().find(|p| p.name == request.name.as_ref()) else {
            return Ok(None);
        };
        let Ok(version) = installed.version.parse() else {
            return Ok(None);
        };
        if !request.specifiers.contains(&version) {
            return Ok(None);
        }
        report
            .unchanged
            .push(Package::new(&installed.name, &installed.version));
    }
    Ok(Some(report))
}
