//! The installer's errors: typed, so that callers can tell a package that
//! cannot work in the guest from a network failure or a tampered file.

use std::path::PathBuf;

/// Everything that can stop an install, a listing or a removal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not a valid package name (PEP 508: letters, digits, `-`, `_`, `.`).
    #[error(
        "`{name}` is not a valid package name (letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit)"
    )]
    InvalidName { name: String },

    /// A requirement or version specifier that cannot be used.
    #[error("invalid requirement `{input}`: {reason}")]
    InvalidRequirement { input: String, reason: String },

    /// The index URL is not an http(s) URL (shown without credentials).
    #[error("invalid index URL `{url}`: {reason}")]
    InvalidIndexUrl { url: String, reason: String },

    /// The index has no project of that name (the index URL is shown
    /// without credentials).
    #[error("`{name}` was not found on the package index {index}")]
    NotFound { name: String, index: String },

    /// Talking to the index failed (connection, TLS, a status other than
    /// success or 404). The URL is without credentials.
    #[error("package index: {url}: {message}")]
    Index { url: String, message: String },

    /// The index answered with a project page that is not a simple API
    /// page: the index is wrong, not the network. The URL is without
    /// credentials.
    #[error("the package index sent a page that cannot be read: {url}: {reason}")]
    InvalidIndexPage { url: String, reason: String },

    /// The project exists but no version fits every constraint.
    #[error("no version of `{name}` fits: {reason}")]
    NoMatchingVersion { name: String, reason: String },

    /// The versions that fit ship only compiled wheels or source archives.
    #[error(
        "`{name}` {version}{needed_by} is not a pure-Python package: it has no py3-none-any wheel \
         (found {found}). goru's Python is CPython 3.14 on WebAssembly (WASI): it cannot load \
         compiled extension modules, and goru never builds a package from source on the host. \
         Use a pure-Python alternative, or a version of `{name}` that ships a py3-none-any wheel"
    )]
    NotPure {
        name: String,
        version: String,
        /// ` (needed by jinja2 3.1.6)` when a dependency, else empty.
        needed_by: String,
        found: String,
    },

    /// The downloaded file is not what the index said it is.
    #[error("sha256 of {file} is {actual}, but the index says {expected}: refusing it")]
    HashMismatch {
        file: String,
        expected: String,
        actual: String,
    },

    /// The index gave no sha256 for a file: nothing to check it against.
    #[error("the package index gives no sha256 for {file}: refusing a file that cannot be checked")]
    MissingHash { file: String },

    /// An archive entry that would land outside the package directory, a
    /// link, or a special file.
    #[error("refusing {file}: {reason}")]
    UnsafeArchive { file: String, reason: String },

    /// A wheel that breaks the wheel format (missing or inconsistent
    /// metadata, a RECORD that does not match the files).
    #[error("invalid wheel {file}: {reason}")]
    InvalidWheel { file: String, reason: String },

    /// A download, page or archive past one of the installer's limits.
    #[error("{what} is larger than the limit of {limit}")]
    TooLarge { what: String, limit: String },

    /// Resolution needs more packages than the limit allows.
    #[error("resolving needs more than {limit} packages (the installer's `max_packages` limit)")]
    TooManyPackages { limit: usize },

    /// A file the package would install is already there and belongs to
    /// another package (or to none).
    #[error(
        "cannot install {package}: `{path}` already exists in the package directory and belongs to another package"
    )]
    FileConflict { package: String, path: String },

    /// `remove` of a package that is not there.
    #[error("`{name}` is not installed in {dir}")]
    NotInstalled { name: String, dir: PathBuf },

    /// A path the installer would have to follow a link through, or a
    /// name of the package directory that is not what goru made there (a
    /// lock file that is a FIFO, a directory that is a file).
    #[error("refusing {}: {reason}", path.display())]
    UnsafePath { path: PathBuf, reason: String },

    /// A file-system operation on the package directory failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
