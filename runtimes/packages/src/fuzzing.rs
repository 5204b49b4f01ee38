//! Entry points for the fuzz targets in `fuzz/` (docs/fuzzing.md): the
//! crate-private parsers of wheels and their RECORD and METADATA files,
//! reached without a package index. Not part of the API.

use crate::wheel::{self, Wheel, WheelName};
use crate::{Error, Limits};
use std::os::fd::AsFd;
use std::path::Path;

/// Parses a wheel file name; `Some((pure, fits_guest))` when it is one.
pub fn wheel_name(filename: &str) -> Option<(bool, bool)> {
    WheelName::parse(filename).map(|name| (name.is_pure(), name.fits_guest()))
}

/// Opens `bytes` as the wheel `filename` (which must parse as a wheel name)
/// and unpacks it into `into`, as an install does: the installed files'
/// paths, relative to `into`.
pub fn unpack_wheel(
    filename: &str,
    bytes: Vec<u8>,
    into: &Path,
    limits: &Limits,
) -> Result<Vec<String>, Error> {
    let expected = WheelName::parse(filename).ok_or_else(|| Error::InvalidWheel {
        file: filename.to_string(),
        reason: "not a wheel file name".into(),
    })?;
    let wheel = Wheel::open(filename, bytes, &expected, limits)?;
    let dir = crate::nofollow::open_dir_path(into, false)?;
    Ok(wheel
        .unpack(dir.as_fd(), into, limits)?
        .into_iter()
        .map(|file| file.path)
        .collect())
}

/// The METADATA headers the installer reads: name, version, Requires-Dist
/// entries and Requires-Python.
pub fn metadata(text: &str) -> (String, String, Vec<String>, Option<String>) {
    let metadata = wheel::parse_metadata(text);
    (
        metadata.name,
        metadata.version,
        metadata.requires_dist,
        metadata.requires_python,
    )
}

/// Parses a RECORD file: the listed paths, or why it is malformed.
pub fn record(text: &str) -> Result<Vec<String>, String> {
    wheel::parse_record(text).map(|record| record.into_keys().collect())
}

/// The path field of one RECORD line, as `goru deps remove` reads it.
pub fn record_path(line: &str) -> Option<String> {
    wheel::record_path(line)
}

/// Parses a `Requires-Dist` line as the resolver does (markers allowed):
/// the requirement as text, or why it is refused.
pub fn requires_dist(line: &str) -> Result<String, String> {
    crate::request::requirement(line).map(|requirement| requirement.to_string())
}
