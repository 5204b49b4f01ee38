//! goru's own names in a package directory (its lock file, its staging
//! directories), which no package may install or remove.

/// Names goru itself uses in a package directory. Every name starting with
/// this is goru's: no wheel may install one, and no RECORD may remove one.
pub(crate) const RESERVED_PREFIX: &str = ".goru-";

/// Whether `relative`'s first component is one of goru's own names.
pub(crate) fn is_reserved(relative: &str) -> bool {
    relative.starts_with(RESERVED_PREFIX)
}
