//! The host side of checking capabilities: what
//! [`Capabilities::validate`] cannot see without opening the host's
//! directories. The config types themselves are goru-protocol's.

use crate::modules::registry::MODULES;
use crate::{Capabilities, CapabilityError, Language, MountError, PackagesConfigError};

// `http.timeoutMs` is bounded by the protocol as the engine bounds a run.
const _: () = assert!(
    goru_protocol::capabilities::MAX_HTTP_TIMEOUT.as_secs() == crate::MAX_TIMEOUT.as_secs()
);

/// Checks capabilities for a session in `language`, as
/// [`crate::SessionBuilder::start`] does before it makes an instance:
/// everything [`Capabilities::validate`] checks (mount points, `http`
/// entries, packages for Python only), then each module's host checks:
/// mounted host paths are existing directories; the packages directory
/// opens with no link on its path, its allow-list holds package names and
/// its index URL is one the installer takes.
pub fn check_capabilities(
    capabilities: &Capabilities,
    language: Language,
) -> Result<(), CapabilityError> {
    capabilities.validate(language)?;
    for module in MODULES {
        (module.check_host)(capabilities)?;
    }
    Ok(())
}

/// The error for `preopens()[index]` failing to open: a mount's, or the
/// packages directory's (which comes after the mounts).
pub(crate) fn preopen_error(
    capabilities: &Capabilities,
    index: usize,
    error: MountError,
) -> CapabilityError {
    match (&capabilities.packages, error) {
        (Some(packages), MountError::Host { message, .. })
            if index >= capabilities.mounts.len() =>
        {
            PackagesConfigError::Dir {
                dir: packages.dir.clone(),
                message,
            }
            .into()
        }
        (_, error) => CapabilityError::Mount { index, error },
    }
}
