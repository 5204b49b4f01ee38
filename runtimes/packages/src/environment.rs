//! The environment packages are resolved for: goru's Python guest, CPython
//! 3.14 on WASI, never the host's Python. A test in goru-runtimes compares
//! these values with what the guest itself reports.

use pep440_rs::Version;
use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder};
use std::sync::OnceLock;

/// `python_full_version` in the guest.
pub const PYTHON_FULL_VERSION: &str = "3.14.0";
/// `python_version` in the guest.
pub const PYTHON_VERSION: &str = "3.14";
/// `sys.platform` in the guest.
pub const SYS_PLATFORM: &str = "wasi";
/// `platform.system()` in the guest.
pub const PLATFORM_SYSTEM: &str = "wasi";
/// `platform.machine()` in the guest.
pub const PLATFORM_MACHINE: &str = "wasm32";
/// `os.name` in the guest.
pub const OS_NAME: &str = "posix";
/// `platform.release()` and `platform.version()` in the guest.
pub const PLATFORM_RELEASE: &str = "0.0.0";

/// The guest's environment markers (PEP 508), as `Requires-Dist` lines are
/// evaluated against them.
pub fn guest_markers() -> &'static MarkerEnvironment {
    static MARKERS: OnceLock<MarkerEnvironment> = OnceLock::new();
    MARKERS.get_or_init(|| {
        MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: PYTHON_FULL_VERSION,
            os_name: OS_NAME,
            platform_machine: PLATFORM_MACHINE,
            platform_python_implementation: "CPython",
            platform_release: PLATFORM_RELEASE,
            platform_system: PLATFORM_SYSTEM,
            platform_version: PLATFORM_RELEASE,
            python_full_version: PYTHON_FULL_VERSION,
            python_version: PYTHON_VERSION,
            sys_platform: SYS_PLATFORM,
        })
        .expect("the guest's marker values are valid versions")
    })
}

/// The guest's Python version, for `Requires-Python`.
pub fn python_version() -> &'static Version {
    static VERSION: OnceLock<Version> = OnceLock::new();
    VERSION.get_or_init(|| {
        PYTHON_FULL_VERSION
            .parse()
            .expect("the guest's Python version parses")
    })
}

/// The minor version of Python 3 the guest runs (`14`), for wheel tags
/// such as `py312`.
pub(crate) const PYTHON3_MINOR: u64 = 14;

#[cfg(test)]
mod tests {
    use super::*;
    use pep508_rs::Requirement;
    use std::str::FromStr;

    fn applies(line: &str) -> bool {
        Requirement::<pep508_rs::VerbatimUrl>::from_str(line)
            .unwrap()
            .evaluate_markers(guest_markers(), &[])
    }

    #[test]
    fn markers_are_evaluated_for_the_guest_not_the_host() {
        assert!(applies("a; python_version >= '3.10'"));
        assert!(!applies("a; python_version < '3.8'"));
        assert!(applies("a; sys_platform == 'wasi'"));
        assert!(!applies("a; sys_platform == 'win32'"));
        assert!(!applies("a; platform_system == 'Linux'"));
        assert!(applies("a; platform_python_implementation == 'CPython'"));
        assert!(!applies("a; implementation_name == 'pypy'"));
        assert!(!applies("a; extra == 'tests'"));
    }
}
