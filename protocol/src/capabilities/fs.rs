//! Mounts as data: which host directories a session sees, where, and with
//! what rights; and the `fs` module's limits.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// What a guest may do on a mount. Each mode includes the ones before it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum MountMode {
    /// Read files, list directories, stat.
    Ro,
    /// Also overwrite existing files and remove files and empty directories.
    /// Plain `open()` in the guest stays read-only on these mounts (WASI
    /// cannot allow writes without also allowing creation): writes and
    /// removals go through the `fs` module.
    Rw,
    /// Also create files and directories, through `fs` or plain `open()`.
    Rwc,
}

impl MountMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MountMode::Ro => "ro",
            MountMode::Rw => "rw",
            MountMode::Rwc => "rwc",
        }
    }
}

impl fmt::Display for MountMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MountMode {
    type Err = MountError;

    fn from_str(text: &str) -> Result<Self, MountError> {
        match text {
            "ro" => Ok(MountMode::Ro),
            "rw" => Ok(MountMode::Rw),
            "rwc" => Ok(MountMode::Rwc),
            other => Err(MountError::BadMode(other.to_string())),
        }
    }
}

/// A host directory seen by the guest at `guest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mount {
    /// Where the guest sees it: an absolute, normalized path other than `/`
    /// (`/data`, `/work/out`).
    pub guest: String,
    /// The host directory. Relative paths are taken against the host
    /// process's current directory when the session starts (the daemon
    /// refuses them).
    pub host: PathBuf,
    pub mode: MountMode,
}

impl Mount {
    pub fn new(guest: impl Into<String>, host: impl Into<PathBuf>, mode: MountMode) -> Self {
        Mount {
            guest: guest.into(),
            host: host.into(),
            mode,
        }
    }
}

/// Parses the command-line form `GUEST:HOST:MODE` (`/data:./data:ro`). The
/// host path may itself contain `:`; the guest path may not.
impl FromStr for Mount {
    type Err = MountError;

    fn from_str(spec: &str) -> Result<Self, MountError> {
        let bad = || MountError::BadSpec(spec.to_string());
        let (guest, rest) = spec.split_once(':').ok_or_else(bad)?;
        let (host, mode) = rest.rsplit_once(':').ok_or_else(bad)?;
        if guest.is_empty() || host.is_empty() {
            return Err(bad());
        }
        Ok(Mount::new(guest, host, mode.parse()?))
    }
}

/// Limits of the `fs` module, per call. Defaults: 16 MiB read, 16 MiB
/// written. They bound what one call makes the host hold in memory (the
/// file's bytes, then their JSON for the guest); plain `open()` reads and
/// writes in chunks and is not counted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct FsLimits {
    /// Bytes one `read_text` / `read_json` may return.
    pub max_read_bytes: u64,
    /// Bytes (UTF-8) one `write_text` / `write_json` may write.
    pub max_write_bytes: u64,
}

impl Default for FsLimits {
    fn default() -> Self {
        FsLimits {
            max_read_bytes: 16 << 20,
            max_write_bytes: 16 << 20,
        }
    }
}

/// A mount that cannot be used. Messages name host paths: they are for the
/// embedder or the CLI user, never the guest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    #[error("invalid mount `{0}` (expected `GUEST:HOST:MODE`, e.g. `/data:./data:ro`)")]
    BadSpec(String),
    #[error("invalid mount mode `{0}` (expected `ro`, `rw` or `rwc`)")]
    BadMode(String),
    #[error("mount point `{guest}` is not usable: {reason}")]
    BadGuestPath { guest: String, reason: &'static str },
    #[error("mount point `{0}` is given twice")]
    Duplicate(String),
    /// Relative to the daemon's working directory would mean nothing to a
    /// client; see [`crate::capabilities::Capabilities::require_absolute_paths`].
    #[error("mount host path `{}` must be absolute", .0.display())]
    RelativeHost(PathBuf),
    #[error("cannot mount `{host}` at `{guest}`: {message}")]
    Host {
        guest: String,
        host: PathBuf,
        message: String,
    },
}

/// Checks what the guest side of every mount needs, without looking at the
/// host: guest paths absolute, normalized, not `/`, distinct. The index of
/// the first mount at fault comes with the error.
pub(crate) fn check_guest_paths(mounts: &[Mount]) -> Result<(), (usize, MountError)> {
    let mut seen = std::collections::BTreeSet::new();
    for (index, mount) in mounts.iter().enumerate() {
        validate_guest(&mount.guest).map_err(|err| (index, err))?;
        if !seen.insert(mount.guest.as_str()) {
            return Err((index, MountError::Duplicate(mount.guest.clone())));
        }
    }
    Ok(())
}

fn validate_guest(guest: &str) -> Result<(), MountError> {
    let bad = |reason| MountError::BadGuestPath {
        guest: guest.to_string(),
        reason,
    };
    if !guest.starts_with('/') {
        return Err(bad("it must be an absolute path such as `/data`"));
    }
    if guest == "/" {
        return Err(bad("the root `/` cannot be a mount point"));
    }
    if guest.contains('\0') {
        return Err(bad("it contains a NUL byte"));
    }
    if guest[1..]
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(bad(
            "it must be normalized: no `.`, `..`, `//` or trailing `/`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_command_line_form() {
        type Expected = Option<(&'static str, &'static str, MountMode)>;
        let cases: &[(&str, Expected)] = &[
            ("/data:./dir:ro", Some(("/data", "./dir", MountMode::Ro))),
            ("/data:/srv/x:rw", Some(("/data", "/srv/x", MountMode::Rw))),
            ("/out:a:b:rwc", Some(("/out", "a:b", MountMode::Rwc))),
            ("/data:./dir", None),
            ("/data:./dir:RW", None),
            ("/data::ro", None),
            (":dir:ro", None),
            ("/data", None),
        ];
        for (spec, expected) in cases {
            let parsed = spec.parse::<Mount>();
            match expected {
                Some((guest, host, mode)) => {
                    assert_eq!(parsed, Ok(Mount::new(*guest, *host, *mode)), "{spec}")
                }
                None => assert!(parsed.is_err(), "{spec} parsed as {parsed:?}"),
            }
        }
    }

    #[test]
    fn guest_paths_must_be_absolute_normalized_and_not_root() {
        for good in ["/data", "/a/b", "/data-secret", "/.hidden"] {
            assert_eq!(validate_guest(good), Ok(()), "{good}");
        }
        for bad in [
            "", "data", "/", "/data/", "//data", "/a//b", "/a/./b", "/a/..", "/..", "/a\0",
        ] {
            assert!(validate_guest(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn guest_paths_are_checked_in_order_and_given_once() {
        let ok = Mount::new("/data", "/srv", MountMode::Ro);
        assert_eq!(check_guest_paths(std::slice::from_ref(&ok)), Ok(()));
        assert_eq!(
            check_guest_paths(&[ok.clone(), Mount::new("/data", "/other", MountMode::Rw)]),
            Err((1, MountError::Duplicate("/data".into())))
        );
        let err = check_guest_paths(&[ok, Mount::new("data", "/srv", MountMode::Ro)]).unwrap_err();
        assert!(
            matches!(err, (1, MountError::BadGuestPath { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn serde_form() {
        let mount: Mount =
            serde_json::from_str(r#"{"guest": "/data", "host": "/srv", "mode": "rwc"}"#).unwrap();
        assert_eq!(mount, Mount::new("/data", "/srv", MountMode::Rwc));
        assert!(
            serde_json::from_str::<Mount>(r#"{"guest": "/d", "host": "/s", "mode": "x"}"#).is_err()
        );
        let limits: FsLimits = serde_json::from_str(r#"{"maxReadBytes": 10}"#).unwrap();
        assert_eq!(limits.max_read_bytes, 10);
        assert_eq!(limits.max_write_bytes, FsLimits::default().max_write_bytes);
    }
}
