//! The package directory: what is installed there, installing into it and
//! removing from it. Every change happens under a lock file, so two goru
//! processes never write the same directory at once.

use crate::progress::{Event, Progress};
use crate::resolve::Resolved;
use crate::wheel::{UnpackedFile, record_hash};
use crate::{Error, Limits, request::package_name};
use pep508_rs::PackageName;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

const LOCK_FILE: &str = ".goru-lock";
const STAGING_PREFIX: &str = ".goru-staging-";
const MAX_RECORD_BYTES: u64 = 16 << 20;

/// A directory of installed packages (`.goru/packages` by default in the
/// CLI): the layout of a `site-packages`, one `NAME-VERSION.dist-info` per
/// package with a RECORD of its files.
#[derive(Clone, Debug)]
pub struct PackageDir {
    root: PathBuf,
}

/// A package found in the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// The normalized name (PEP 503), e.g. `python-dateutil`.
    pub name: String,
    pub version: String,
    dist_info: PathBuf,
}

impl PackageDir {
    /// An existing directory.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let root = std::path::absolute(path).map_err(Error::io(path))?;
        let metadata = std::fs::metadata(&root).map_err(Error::io(&root))?;
        if !metadata.is_dir() {
            return Err(Error::Io {
                path: root,
                source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        Ok(PackageDir { root })
    }

    /// The directory, created (with its parents) when missing.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        std::fs::create_dir_all(path).map_err(Error::io(path))?;
        PackageDir::open(path)
    }

    /// The directory's absolute path.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The installed packages, sorted by name.
    pub fn list(&self) -> Result<Vec<Installed>, Error> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(Error::io(&self.root))? {
            let entry = entry.map_err(Error::io(&self.root))?;
            let file_name = entry.file_name();
            let Some(dir_name) = file_name.to_str() else {
                continue;
            };
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if !is_dir || !dir_name.ends_with(".dist-info") {
                continue;
            }
            let dist_info = entry.path();
            let Ok(text) = read_bounded(&dist_info.join("METADATA")) else {
                continue;
            };
            let metadata = crate::wheel::parse_metadata(&text);
            let Ok(name) = package_name(&metadata.name) else {
                continue;
            };
            found.push(Installed {
                name: name.to_string(),
                version: metadata.version,
                dist_info,
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
    fn lock(&self) -> Result<File, Error> {
        let path = self.root.join(LOCK_FILE);
        let file = File::create(&path).map_err(Error::io(&path))?;
        file.lock().map_err(Error::io(&path))?;
        for entry in std::fs::read_dir(&self.root).map_err(Error::io(&self.root))? {
            let Ok(entry) = entry else { continue };
            let stale = entry
                .file_name()
                .to_string_lossy()
                .starts_with(STAGING_PREFIX)
                && entry.file_type().is_ok_and(|t| t.is_dir());
            if stale {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(file)
    }

    /// The files `installed` owns, relative to the root, from its RECORD.
    fn owned_files(&self, installed: &Installed) -> Result<Vec<PathBuf>, Error> {
        let record = installed.dist_info.join("RECORD");
        let text = match read_bounded(&record) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(Error::Io {
                    path: record,
                    source: e,
                });
            }
        };
        Ok(text
            .lines()
            .filter_map(crate::wheel::record_path)
            .filter_map(|path| safe_relative(&path))
            .collect())
    }

    fn remove_installed(&self, installed: &Installed) -> Result<(), Error> {
        let mut parents = HashSet::new();
        for relative in self.owned_files(installed)? {
            if !self.reachable_without_links(&relative) {
                continue;
            }
            let path = self.root.join(&relative);
            match std::fs::symlink_metadata(&path) {
                Ok(metadata) if !metadata.is_dir() => {
                    std::fs::remove_file(&path).map_err(Error::io(&path))?;
                }
                _ => {}
            }
            let mut parent = relative.parent();
            while let Some(dir) = parent.filter(|p| !p.as_os_str().is_empty()) {
                parents.insert(dir.to_path_buf());
                parent = dir.parent();
            }
        }
        if self.reachable_without_links(
            installed
                .dist_info
                .strip_prefix(&self.root)
                .unwrap_or(Path::new("")),
        ) {
            match std::fs::remove_dir_all(&installed.dist_info) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Io {
                        path: installed.dist_info.clone(),
                        source: e,
                    });
                }
            }
        }
        // Deepest first; a directory other packages still use stays.
        let mut parents: Vec<PathBuf> = parents.into_iter().collect();
        parents.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for dir in parents {
            let path = self.root.join(&dir);
            // Bytecode a Python on the host may have left; regenerated on demand.
            let cache = path.join("__pycache__");
            if std::fs::symlink_metadata(&cache).is_ok_and(|m| m.is_dir()) {
                let _ = std::fs::remove_dir_all(&cache);
            }
            let _ = std::fs::remove_dir(&path);
        }
        Ok(())
    }

    /// Whether every directory on the way to `relative` is a real directory
    /// inside the root (not a link that leads elsewhere).
    fn reachable_without_links(&self, relative: &Path) -> bool {
        let mut path = self.root.clone();
        let mut components = relative.components().peekable();
        while let Some(component) = components.next() {
            let Component::Normal(part) = component else {
                return false;
            };
            path.push(part);
            if components.peek().is_none() {
                break;
            }
            match std::fs::symlink_metadata(&path) {
                Ok(metadata) if metadata.is_dir() => {}
                Ok(_) => return false,
                Err(_) => return true,
            }
        }
        true
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
        let staging = tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .tempdir_in(&self.root)
            .map_err(Error::io(&self.root))?;
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
            let stage = staging.path().join(index.to_string());
            std::fs::create_dir(&stage).map_err(Error::io(&stage))?;
            let mut files = package.wheel.unpack(&stage, limits)?;
            files.extend(write_installer_files(
                &stage,
                &package.wheel.dist_info,
                &files,
            )?);
            plans.push(Plan {
                name: package.name,
                version,
                stage,
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
                let from = plan.stage.join(&file.path);
                let to = self.root.join(&file.path);
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
                }
                std::fs::rename(&from, &to).map_err(Error::io(&to))?;
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
                if let Ok(dist_info) = previous.dist_info.strip_prefix(&self.root) {
                    replaced.insert(dist_info.to_path_buf());
                }
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
                if !self.reachable_without_links(relative) {
                    return Err(conflict());
                }
                let replaced_here = replaced.contains(relative)
                    || relative.ancestors().any(|a| {
                        replaced.contains(a) && a.extension().is_some_and(|e| e == "dist-info")
                    });
                if std::fs::symlink_metadata(self.root.join(relative)).is_ok() && !replaced_here {
                    return Err(conflict());
                }
            }
        }
        Ok(())
    }
}

struct Plan {
    name: PackageName,
    version: String,
    stage: PathBuf,
    files: Vec<UnpackedFile>,
    previous: Option<Installed>,
}

/// Writes INSTALLER and a RECORD of what was unpacked into the staged
/// `.dist-info`; returns them as files to move too.
fn write_installer_files(
    stage: &Path,
    dist_info: &str,
    files: &[UnpackedFile],
) -> Result<Vec<UnpackedFile>, Error> {
    let installer_path = format!("{dist_info}/INSTALLER");
    let installer = b"goru\n";
    let path = stage.join(&installer_path);
    std::fs::write(&path, installer).map_err(Error::io(&path))?;
    let mut record = String::new();
    let installer_file = UnpackedFile {
        path: installer_path,
        hash: record_hash(installer),
        size: installer.len() as u64,
    };
    for file in files.iter().chain(std::iter::once(&installer_file)) {
        record.push_str(&format!(
            "{},{},{}\n",
            csv_quote(&file.path),
            file.hash,
            file.size
        ));
    }
    let record_path = format!("{dist_info}/RECORD");
    record.push_str(&format!("{},,\n", csv_quote(&record_path)));
    let path = stage.join(&record_path);
    std::fs::write(&path, record.as_bytes()).map_err(Error::io(&path))?;
    Ok(vec![
        installer_file,
        UnpackedFile {
            hash: record_hash(record.as_bytes()),
            size: record.len() as u64,
            path: record_path,
        },
    ])
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

fn read_bounded(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    File::open(path)?
        .take(MAX_RECORD_BYTES)
        .read_to_string(&mut text)?;
    Ok(text)
}
