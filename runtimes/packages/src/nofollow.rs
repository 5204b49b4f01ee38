//! File operations on the package directory that never follow a symbolic
//! link. The directory is opened once, one component at a time, and
//! everything inside it is opened, created, renamed and removed relative to
//! a directory handle, with `O_NOFOLLOW` on every step.
//!
//! Why: a guest with a writable mount over the directory, or over a parent
//! such as the project's `.goru`, can plant a link at any name the installer
//! uses (the lock file, a staging directory, a file a RECORD lists). Through
//! these functions such a link is a name that is refused or removed, never a
//! way to a host file outside the directory.

use crate::Error;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// Opening a directory: never through a link, never a non-directory.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Deepest directory tree the installer walks when it removes one. Python
/// packages nest a few levels; a guest can build a tree deep enough to
/// exhaust descriptors or the stack of a recursive removal.
const MAX_DEPTH: usize = 64;

const LINK_REASON: &str =
    "it is a symbolic link, and goru never follows links in a packages directory";

fn refused(path: PathBuf, reason: &str) -> Error {
    Error::UnsafePath {
        path,
        reason: reason.to_string(),
    }
}

fn io_error(path: PathBuf, errno: Errno) -> Error {
    Error::Io {
        path,
        source: errno.into(),
    }
}

/// What `name` in `dir` is, without following a link; `None` when absent.
pub(crate) fn kind(dir: BorrowedFd<'_>, name: &OsStr) -> std::io::Result<Option<FileType>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(FileType::from_raw_mode(stat.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The error for an `open` of `name` that failed with `errno`: a link is
/// refused by name, anything else is an I/O error.
fn open_failure(dir: BorrowedFd<'_>, name: &OsStr, shown: PathBuf, errno: Errno) -> Error {
    match kind(dir, name) {
        Ok(Some(FileType::Symlink)) => refused(shown, LINK_REASON),
        Ok(Some(other)) if other != FileType::Directory && errno == Errno::NOTDIR => {
            refused(shown, "it is not a directory")
        }
        _ => io_error(shown, errno),
    }
}

/// Opens the directory `name` inside `dir` (creating it when `create` and
/// missing), never through a link.
fn step(dir: BorrowedFd<'_>, name: &OsStr, create: bool, shown: &Path) -> Result<OwnedFd, Error> {
    match rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(Errno::NOENT) if create => {
            match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(io_error(shown.to_path_buf(), e)),
            }
            rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty())
                .map_err(|e| open_failure(dir, name, shown.to_path_buf(), e))
        }
        Err(e) => Err(open_failure(dir, name, shown.to_path_buf(), e)),
    }
}

/// Opens the directory at `path` with no link on the way: every component
/// is opened relative to the one before (from `/`, or from the current
/// directory for a relative path) with `O_NOFOLLOW`. Missing components are
/// created (`0755`) when `create`.
pub(crate) fn open_dir_path(path: &Path, create: bool) -> Result<OwnedFd, Error> {
    let start = if path.has_root() { "/" } else { "." };
    let mut fd = rustix::fs::open(start, DIR_FLAGS, Mode::empty())
        .map_err(|e| io_error(PathBuf::from(start), e))?;
    let mut shown = PathBuf::new();
    for component in path.components() {
        match component {
            Component::RootDir => shown.push("/"),
            Component::CurDir => {}
            // `..` of a directory opened without links is its real parent.
            Component::ParentDir => {
                shown.push("..");
                fd = step(fd.as_fd(), OsStr::new(".."), false, &shown)?;
            }
            Component::Normal(name) => {
                shown.push(name);
                fd = step(fd.as_fd(), name, create, &shown)?;
            }
            Component::Prefix(_) => {
                return Err(refused(path.to_path_buf(), "it has a drive prefix"));
            }
        }
    }
    Ok(fd)
}

/// Opens the directory `relative` (plain names only) beneath `root`,
/// creating missing ones when `create`. `shown` is `root`'s path, for
/// messages.
pub(crate) fn open_dir_beneath(
    root: BorrowedFd<'_>,
    shown: &Path,
    relative: &Path,
    create: bool,
) -> Result<OwnedFd, Error> {
    let mut fd = rustix::io::fcntl_dupfd_cloexec(root, 0).map_err(|e| io_error(shown.into(), e))?;
    let mut at = shown.to_path_buf();
    for component in relative.components() {
        let Component::Normal(name) = component else {
            return Err(refused(
                shown.join(relative),
                "it is not a plain relative path",
            ));
        };
        at.push(name);
        fd = step(fd.as_fd(), name, create, &at)?;
    }
    Ok(fd)
}

/// Creates the file `name` in `dir`, which must not exist (not even as a
/// link: `O_EXCL` never follows one).
pub(crate) fn create_new_file(dir: BorrowedFd<'_>, name: &OsStr) -> std::io::Result<File> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o644))?.into())
}

/// Opens `name` in `dir` to read it, or to lock it when `create` (then it
/// is made when missing, never truncated). Only a regular file is taken:
/// a link is refused by `O_NOFOLLOW`, and a FIFO or device, opened
/// non-blocking so that the open itself cannot hang, is refused after.
pub(crate) fn open_regular(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    create: bool,
    shown: PathBuf,
) -> Result<File, Error> {
    let mut flags = OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    flags |= if create {
        OFlags::RDWR | OFlags::CREATE
    } else {
        OFlags::RDONLY
    };
    let fd = rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o644))
        .map_err(|e| open_failure(dir, name, shown.clone(), e))?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| io_error(shown.clone(), e))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(refused(shown, "it is not a regular file"));
    }
    Ok(fd.into())
}

/// The names in `dir` (without `.` and `..`).
pub(crate) fn names(dir: BorrowedFd<'_>) -> std::io::Result<Vec<OsString>> {
    let mut out = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(<OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name).to_os_string());
        }
    }
    Ok(out)
}

/// Removes `name` from `dir`: a file or link is unlinked (a link is never
/// followed), a directory emptied and removed, at most [`MAX_DEPTH`] deep.
pub(crate) fn remove_tree(dir: BorrowedFd<'_>, name: &OsStr) -> std::io::Result<()> {
    remove_tree_at(dir, name, 0)
}

fn remove_tree_at(dir: BorrowedFd<'_>, name: &OsStr, depth: usize) -> std::io::Result<()> {
    match kind(dir, name)? {
        None => return Ok(()),
        Some(FileType::Directory) => {}
        Some(_) => return Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?),
    }
    if depth >= MAX_DEPTH {
        return Err(std::io::Error::other(format!(
            "a directory tree deeper than {MAX_DEPTH} levels"
        )));
    }
    let inner = rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty())?;
    for entry in names(inner.as_fd())? {
        remove_tree_at(inner.as_fd(), &entry, depth + 1)?;
    }
    drop(inner);
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
}

/// Removes the empty directory `name` from `dir`; anything else stays.
pub(crate) fn remove_empty_dir(dir: BorrowedFd<'_>, name: &OsStr) {
    let _ = rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR);
}

/// Unlinks `name` from `dir` when it is not a directory (a link is removed,
/// never followed).
pub(crate) fn remove_file(dir: BorrowedFd<'_>, name: &OsStr) -> std::io::Result<()> {
    match kind(dir, name)? {
        None | Some(FileType::Directory) => Ok(()),
        Some(_) => Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?),
    }
}

/// Moves `from_name` in `from` to `to_name` in `to`, which must not exist:
/// whatever appeared there since the conflict check (a planted link, say)
/// is neither replaced nor followed.
pub(crate) fn rename_new(
    from: BorrowedFd<'_>,
    from_name: &OsStr,
    to: BorrowedFd<'_>,
    to_name: &OsStr,
) -> std::io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
    {
        Ok(rustix::fs::renameat_with(
            from,
            from_name,
            to,
            to_name,
            rustix::fs::RenameFlags::NOREPLACE,
        )?)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
    {
        if kind(to, to_name)?.is_some() {
            return Err(std::io::ErrorKind::AlreadyExists.into());
        }
        Ok(rustix::fs::renameat(from, from_name, to, to_name)?)
    }
}

/// Whether two handles are the same directory (device and inode).
pub(crate) fn same_file(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> std::io::Result<bool> {
    let (a, b) = (rustix::fs::fstat(a)?, rustix::fs::fstat(b)?);
    Ok(a.st_dev == b.st_dev && a.st_ino == b.st_ino)
}

/// Splits a relative path into its parent directory and its file name.
pub(crate) fn split(relative: &Path) -> Option<(&Path, &OsStr)> {
    Some((relative.parent()?, relative.file_name()?))
}

/// Creates `relative` (already checked) beneath `root` with its
/// directories, never through a link, never over an existing name, `0644`.
pub(crate) fn write_new(
    root: BorrowedFd<'_>,
    shown: &Path,
    relative: &str,
    content: &[u8],
) -> Result<(), Error> {
    let path = shown.join(relative);
    let Some((parent, name)) = split(Path::new(relative)) else {
        return Err(Error::UnsafePath {
            path,
            reason: "it has no file name".into(),
        });
    };
    let dir = open_dir_beneath(root, shown, parent, true)?;
    let mut file = create_new_file(dir.as_fd(), name).map_err(Error::io(&path))?;
    file.write_all(content).map_err(Error::io(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Staging lives inside a directory a guest may write to: a link it
    /// plants there between two writes must stop the write, not redirect it.
    #[test]
    fn writes_into_staging_never_go_through_a_planted_link() {
        let stage = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("mod.py"), "precious\n").unwrap();
        std::os::unix::fs::symlink(outside.path(), stage.path().join("pkg")).unwrap();
        std::fs::create_dir(stage.path().join("other")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("mod.py"),
            stage.path().join("other/mod.py"),
        )
        .unwrap();
        let fd = open_dir_path(stage.path(), false).unwrap();

        let error = write_new(fd.as_fd(), stage.path(), "pkg/new.py", b"x").unwrap_err();
        assert!(matches!(error, Error::UnsafePath { .. }), "{error:?}");
        let error = write_new(fd.as_fd(), stage.path(), "other/mod.py", b"x").unwrap_err();
        assert!(
            matches!(&error, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists),
            "{error:?}"
        );
        assert!(!outside.path().join("new.py").exists());
        assert_eq!(
            std::fs::read_to_string(outside.path().join("mod.py")).unwrap(),
            "precious\n"
        );
    }
}
