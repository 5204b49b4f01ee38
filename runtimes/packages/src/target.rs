//! The package directory: what is installed there, installing into it and
//! removing from it. Every change happens under a lock file, so two goru
//! processes never write the same directory at once.

use crate::nofollow::{self, write_new};
use crate::progress::{Event, Progress};
use crate::reserved::is_reserved;
use crate::resolve::Resolved;
use crate::wheel::{UnpackedFile, record_hash};
use crate::{Error, Limits, request::package_name};
use pep508_rs::PackageName;
use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const LOCK_FILE: &str = ".goru-lock";
const STAGING_PREFIX: &str = ".goru-staging-";
const MAX_RECORD_BYTES: u64 = 16 << 20;
/// Attempts at a fresh staging name before giving up.
const STAGING_ATTEMPTS: u32 = 100;

/// A directory of installed packages (`.goru/packages` by default in the
/// CLI): the layout of a `site-packages`, one `NAME-VERSION.dist-info` per
/// package with a RECORD of its files.
///
/// The directory is opened once, without following a link anywhere on its
/// path, and everything inside it is reached relative to that handle
/// without following links either (see `nofollow`).
#[derive(Clone, Debug)]
pub struct PackageDir {
    root: PathBuf,
    fd: Arc<OwnedFd>,
}

/// A package found in the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// The normalized name (PEP 503), e.g. `python-dateutil`.
    pub name: String,
    pub version: String,
    /// The `.dist-info` directory's name in the package directory.
    dist_info: String,
}

impl PackageDir {
    /// An existing directory. Refused when any component of `path` is a
    /// symbolic link (give the directory's real path).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        PackageDir::opened(path.as_ref(), false)
    }

    /// The directory, created (with its parents, `0755`) when missing.
    /// Refused, like [`PackageDir::open`], when a component is a link.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, Error> {
        PackageDir::opened(path.as_ref(), true)
    }

    fn opened(path: &Path, create: bool) -> Result<Self, Error> {
        let root = std::path::absolute(path).map_err(Error::io(path))?;
        let fd = nofollow::open_dir_path(path, create)?;
        Ok(PackageDir {
            root,
            fd: Arc::new(fd),
        })
    }

    /// The directory's absolute path.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Checks that the directory's path still leads, without links, to the
    /// directory this value opened: refused when a parent was moved or
    /// replaced since (say by a guest with a writable mount over it).
    pub fn check_path_unchanged(&self) -> Result<(), Error> {
        let now = nofollow::open_dir_path(&self.root, false)?;
        let same = nofollow::same_file(now.as_fd(), self.fd()).map_err(Error::io(&self.root))?;
        if !same {
            return Err(Error::UnsafePath {
                path: self.root.clone(),
                reason: "it no longer leads to the directory opened before (a parent was \
                         moved or replaced)"
                    .into(),
            });
        }
        Ok(())
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The installed packages, sorted by name.
    pub fn list(&self) -> Result<Vec<Installed>, Error> {
        let mut found = Vec::new();
        for file_name in nofollow::names(self.fd()).map_err(Error::io(&self.root))? {
            let Some(dir_name) = file_name.to_str() else {
                continue;
            };
            if !dir_name.ends_with(".dist-info") {
                continue;
            }
            // A link or a file of that name is not a package.
            let Ok(dist_info) =
                nofollow::open_dir_beneath(self.fd(), &self.root, Path::new(dir_name), false)
            else {
                continue;
            };
            let Ok(text) = read_bounded(dist_info.as_fd(), "METADATA", &self.root) else {
                continue;
            };
            let metadata = crate::wheel::parse_metadata(&text);
            let Ok(name) = package_name(&metadata.name) else {
                continue;
            };
            found.push(Installed {
                name: name.to_string(),
                version: metadata.version,
                dist_info: dir_name.to_string(),
            });
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    /// The installed package called `name` (any spelling of it).
    pub fn find(&self, name: &str) -> Result<Option<Installed>, Error> {
        let name = package_name(name)?;
        Ok(self.list()?.into_iter().find(|p| p.name == name.as_ref()))
    }

    /// Removes the package called `name`: the files its RECORD lists (only
    /// inside this directory, never through a link) and its `.dist-info`.
    pub fn remove(&self, name: &str) -> Result<Installed, Error> {
        let _lock = self.lock()?;
        let installed = self.find(name)?.ok_or_else(|| Error::NotInstalled {
            name: name.to_string(),
            dir: self.root.clone(),
        })?;
        self.remove_installed(&installed)?;
        Ok(installed)
    }

    /// Takes the directory's lock (waiting for another goru process to
    /// finish), then clears staging directories a killed install left.
    /// The lock file is never truncated or written: only locked.
    fn lock(&self) -> Result<File, Error> {
        let path = self.root.join(LOCK_FILE);
        let file = nofollow::open_regular(self.fd(), OsStr::new(LOCK_FILE), true, path.clone())?;
        file.lock().map_err(Error::io(&path))?;
        for name in nofollow::names(self.fd()).map_err(Error::io(&self.root))? {
            if name.to_string_lossy().starts_with(STAGING_PREFIX) {
                let _ = nofollow::remove_tree(self.fd(), &name);
            }
        }
        Ok(file)
    }

    /// The files `installed` owns, relative to the root, from its RECORD.
    fn owned_files(&self, installed: &Installed) -> Result<Vec<PathBuf>, Error> {
        let dist_info = match nofollow::open_dir_beneath(
            self.fd(),
            &self.root,
            Path::new(&installed.dist_info),
            false,
        ) {
            Ok(fd) => fd,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let shown = self.root.join(&installed.dist_info);
        let text = match read_bounded(dist_info.as_fd(), "RECORD", &shown) {
            Ok(text) => text,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                String::new()
            }
            Err(e) => return Err(e),
        };
        Ok(text
            .lines()
            .filter_map(crate::wheel::record_path)
            .filter(|path| !is_reserved(path))
            .filter_map(|path| safe_relative(&path))
            .collect())
    }

    fn remove_installed(&self, installed: &Installed) -> Result<(), Error> {
        let mut parents = HashSet::new();
        for relative in self.owned_files(installed)? {
            let Some((parent, name)) = nofollow::split(&relative) else {
                continue;
            };
            // A parent that is a link, a file or missing: nothing of ours there.
            let Ok(dir) = nofollow::open_dir_beneath(self.fd(), &self.root, parent, false) else {
                continue;
            };
            nofollow::remove_file(dir.as_fd(), name)
                .map_err(Error::io(self.root.join(&relative)))?;
            let mut parent = relative.parent();
            while let Some(dir) = parent.filter(|p| !p.as_os_str().is_empty()) {
                parents.insert(dir.to_path_buf());
                parent = dir.parent();
            }
        }
        let dist_info = OsStr::new(&installed.dist_info);
        nofollow::remove_tree(self.fd(), dist_info)
            .map_err(Error::io(self.root.join(&installed.dist_info)))?;
        // Deepest first; a directory other packages still use stays.
        let mut parents: Vec<PathBuf> = parents.into_iter().collect();
        parents.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for dir in parents {
            let Some((above, name)) = nofollow::split(&dir) else {
                continue;
            };
            let Ok(above) = nofollow::open_dir_beneath(self.fd(), &self.root, above, false) else {
                continue;
            };
            // Bytecode a Python on the host may have left; regenerated on demand.
            if let Ok(inner) =
                nofollow::open_dir_beneath(above.as_fd(), &self.root, Path::new(name), false)
            {
                let _ = nofollow::remove_tree(inner.as_fd(), OsStr::new("__pycache__"));
            }
            nofollow::remove_empty_dir(above.as_fd(), name);
        }
        Ok(())
    }

    /// Makes a fresh staging directory in the root (`0700`), removed
    /// again when the guard is dropped.
    fn staging(&self) -> Result<(Staging<'_>, OwnedFd), Error> {
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        for attempt in 0..STAGING_ATTEMPTS {
            let name = format!(
                "{STAGING_PREFIX}{}-{unique:x}-{attempt}",
                std::process::id()
            );
            let shown = self.root.join(&name);
            let mode = rustix::fs::Mode::from_raw_mode(0o700);
            match rustix::fs::mkdirat(self.fd(), name.as_str(), mode) {
                Ok(()) => {}
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => return Err(Error::io(shown)(e.into())),
            }
            let guard = Staging { dir: self, name };
            let fd =
                nofollow::open_dir_beneath(self.fd(), &self.root, Path::new(&guard.name), false)?;
            return Ok((guard, fd));
        }
        Err(Error::UnsafePath {
            path: self.root.clone(),
            reason: format!("no fresh staging directory name after {STAGING_ATTEMPTS} attempts"),
        })
    }

    /// Puts resolved wheels in place: unpacks each into a staging directory
    /// inside the root (so a failure leaves nothing half installed), checks
    /// that no file would overwrite another package's, then removes the
    /// versions being replaced and moves the new files in.
    pub(crate) fn install(
        &self,
        resolved: Vec<Resolved>,
        limits: &Limits,
        progress: &dyn Progress,
    ) -> Result<crate::Report, Error> {
        let _lock = self.lock()?;
        let present: BTreeMap<String, Installed> = self
            .list()?
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect();
        let (staging, staging_fd) = self.staging()?;
        let staging_shown = staging.path();
        let mut report = crate::Report::default();
        let mut plans = Vec::new();
        for (index, package) in resolved.into_iter().enumerate() {
            let version = package.version.to_string();
            let previous = present.get(package.name.as_ref()).cloned();
            let same_version = previous.as_ref().is_some_and(|previous| {
                previous.version.parse::<pep440_rs::Version>().ok().as_ref()
                    == Some(&package.version)
            });
            if same_version {
                progress.event(Event::AlreadyInstalled {
                    name: package.name.as_ref(),
                    version: &version,
                });
                report
                    .unchanged
                    .push(crate::Package::new(&package.name, &version));
                continue;
            }
            let stage_name = PathBuf::from(index.to_string());
            let stage_shown = staging_shown.join(&stage_name);
            let stage =
                nofollow::open_dir_beneath(staging_fd.as_fd(), &staging_shown, &stage_name, true)?;
            let mut files = package.wheel.unpack(stage.as_fd(), &stage_shown, limits)?;
            write_installer_files(
                stage.as_fd(),
                &stage_shown,
                &package.wheel.dist_info,
                &mut files,
            )?;
            plans.push(Plan {
                name: package.name,
                version,
                stage,
                stage_shown,
                files,
                previous,
            });
        }
        self.check_conflicts(&plans)?;
        for plan in &plans {
            if let Some(previous) = &plan.previous {
                self.remove_installed(previous)?;
                report
                    .replaced
                    .push(crate::Package::new(&plan.name, &previous.version));
            }
            for file in &plan.files {
                let relative = Path::new(&file.path);
                let Some((parent, name)) = nofollow::split(relative) else {
                    continue;
                };
                let from = nofollow::open_dir_beneath(
                    plan.stage.as_fd(),
                    &plan.stage_shown,
                    parent,
                    false,
                )?;
                let to = nofollow::open_dir_beneath(self.fd(), &self.root, parent, true)?;
                let to_path = self.root.join(relative);
                nofollow::rename_new(from.as_fd(), name, to.as_fd(), name).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        Error::FileConflict {
                            package: format!("{} {}", plan.name, plan.version),
                            path: file.path.clone(),
                        }
                    } else {
                        Error::io(&to_path)(e)
                    }
                })?;
            }
            progress.event(Event::Installed {
                name: plan.name.as_ref(),
                version: &plan.version,
            });
            report
                .installed
                .push(crate::Package::new(&plan.name, &plan.version));
        }
        Ok(report)
    }

    fn check_conflicts(&self, plans: &[Plan]) -> Result<(), Error> {
        let mut replaced: HashSet<PathBuf> = HashSet::new();
        for plan in plans {
            if let Some(previous) = &plan.previous {
                replaced.extend(self.owned_files(previous)?);
                replaced.insert(PathBuf::from(&previous.dist_info));
            }
        }
        let mut claimed: HashSet<&str> = HashSet::new();
        for plan in plans {
            for file in &plan.files {
                let conflict = || Error::FileConflict {
                    package: format!("{} {}", plan.name, plan.version),
                    path: file.path.clone(),
                };
                if !claimed.insert(&file.path) {
                    return Err(conflict());
                }
                let relative = Path::new(&file.path);
                let replaced_here = replaced.contains(relative)
                    || relative.ancestors().any(|a| {
                        replaced.contains(a) && a.extension().is_some_and(|e| e == "dist-info")
                    });
                if self.occupied(relative)? && !replaced_here {
                    return Err(conflict());
                }
            }
        }
        Ok(())
    }

    /// Whether something is at `relative`, or a link or file stands where
    /// one of its directories should be (which no install may go through).
    fn occupied(&self, relative: &Path) -> Result<bool, Error> {
        let Some((parent, name)) = nofollow::split(relative) else {
            return Ok(true);
        };
        match nofollow::open_dir_beneath(self.fd(), &self.root, parent, false) {
            Ok(dir) => Ok(nofollow::kind(dir.as_fd(), name)
                .map_err(Error::io(self.root.join(relative)))?
                .is_some()),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(false)
            }
            Err(Error::UnsafePath { .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }
}

/// A staging directory inside the package directory, removed on drop.
struct Staging<'a> {
    dir: &'a PackageDir,
    name: String,
}

impl Staging<'_> {
    fn path(&self) -> PathBuf {
        self.dir.root.join(&self.name)
    }
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        let _ = nofollow::remove_tree(self.dir.fd(), OsStr::new(&self.name));
    }
}

struct Plan {
    name: PackageName,
    version: String,
    stage: OwnedFd,
    stage_shown: PathBuf,
    files: Vec<UnpackedFile>,
    previous: Option<Installed>,
}

/// Writes INSTALLER and a RECORD of what was unpacked into the staged
/// `.dist-info` and adds them to `files` (an INSTALLER the wheel brought
/// is replaced: the file says who installed it).
fn write_installer_files(
    stage: BorrowedFd<'_>,
    shown: &Path,
    dist_info: &str,
    files: &mut Vec<UnpackedFile>,
) -> Result<(), Error> {
    let installer_path = format!("{dist_info}/INSTALLER");
    let installer = b"goru\n";
    if let Some(at) = files.iter().position(|f| f.path == installer_path) {
        files.remove(at);
        let dir = nofollow::open_dir_beneath(stage, shown, Path::new(dist_info), false)?;
        nofollow::remove_file(dir.as_fd(), OsStr::new("INSTALLER"))
            .map_err(Error::io(shown.join(&installer_path)))?;
    }
    write_new(stage, shown, &installer_path, installer)?;
    files.push(UnpackedFile {
        path: installer_path,
        hash: record_hash(installer),
        size: installer.len() as u64,
    });
    let mut record = String::new();
    for file in files.iter() {
        record.push_str(&format!(
            "{},{},{}\n",
            csv_quote(&file.path),
            file.hash,
            file.size
        ));
    }
    let record_path = format!("{dist_info}/RECORD");
    record.push_str(&format!("{},,\n", csv_quote(&record_path)));
    write_new(stage, shown, &record_path, record.as_bytes())?;
    files.push(UnpackedFile {
        hash: record_hash(record.as_bytes()),
        size: record.len() as u64,
        path: record_path,
    });
    Ok(())
}

fn csv_quote(field: &str) -> String {
    if field.contains([',', '"', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// A RECORD path as a relative path that stays inside the root.
fn safe_relative(path: &str) -> Option<PathBuf> {
    if path.is_empty() || path.starts_with('/') || path.contains('\\') {
        return None;
    }
    let mut out = PathBuf::new();
    for part in path.split('/') {
        match part {
            "" | "." | ".." => return None,
            part => out.push(part),
        }
    }
    Some(out)
}

/// A small text file of the directory (METADATA, RECORD), read through no
/// link, only when it is a regular file.
fn read_bounded(dir: BorrowedFd<'_>, name: &str, shown: &Path) -> Result<String, Error> {
    let path = shown.join(name);
    let file = nofollow::open_regular(dir, OsStr::new(name), false, path.clone())?;
    let mut text = String::new();
    file.take(MAX_RECORD_BYTES)
        .read_to_string(&mut text)
        .map_err(Error::io(&path))?;
    Ok(text)
}
