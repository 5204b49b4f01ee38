//! `fs`: files on the host directories mounted into the session.
//!
//! A guest path is normalized lexically (`.`, `//`, `..` as `os.path.normpath`
//! does; never above `/`), matched to the mount with the longest prefix *in
//! whole components* (`/data-secret` never matches `/data`), and the rest is
//! opened relative to the mount's directory with cap-std, which refuses any
//! `..` or symbolic link that would leave it, dangling or not. Each function
//! checks the mount's mode first. Errors name guest paths only: the guest
//! never learns where a mount lives on the host.

mod wasi;

pub(crate) use super::open_files::OpenFiles;
pub(crate) use wasi::{PlainFiles, PlainFilesView, add_to_linker};

use super::open_files::Slot;

use super::{Module, ModuleError, Setup, SetupResult, string_arg};
use crate::{Capabilities, CapabilityError, FsLimits, Mount, MountError, MountMode};
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use serde_json::{Value, json};
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// The open mounts of one session.
pub(crate) struct FsMounts {
    mounts: Vec<OpenMount>,
    limits: FsLimits,
    /// Shared with the session's plain file calls: each call here holds a
    /// slot while it runs.
    open_files: Arc<OpenFiles>,
}

struct OpenMount {
    guest: String,
    /// `guest` split into components, for prefix matching.
    components: Vec<String>,
    mode: MountMode,
    /// Opened once, when the session starts: everything else is relative
    /// to this handle, so renaming the host path later changes nothing.
    dir: Arc<Dir>,
}

/// A guest path resolved to a mount: what to open, relative to its root.
struct Target {
    /// The normalized guest path, for messages.
    guest: String,
    mount: usize,
    /// Relative to the mount root; empty for the root itself.
    relative: PathBuf,
}

impl Target {
    fn is_root(&self) -> bool {
        self.relative.as_os_str().is_empty()
    }

    /// The path to hand to cap-std (`.` for the root).
    fn path(&self) -> PathBuf {
        if self.is_root() {
            PathBuf::from(".")
        } else {
            self.relative.clone()
        }
    }
}

/// The JSON size of `bytes` bytes of text in the worst case: a guest's
/// `json.dumps` escapes a control character as `\u00XX`, six bytes for one.
fn worst_case_json(bytes: u64) -> u64 {
    bytes.saturating_mul(6).saturating_add(4096)
}

/// The module's state, when the capabilities mount a directory.
pub(crate) fn setup(capabilities: &Capabilities, setup: &Setup) -> SetupResult {
    let mounts = FsMounts::open(
        &capabilities.mounts,
        capabilities.fs_limits.clone(),
        setup.open_files.clone(),
    )?;
    Ok(mounts.map(|mounts| Box::new(mounts) as Box<dyn Module>))
}

#[async_trait::async_trait]
impl Module for FsMounts {
    async fn call(&self, function: &str, args: Value) -> Result<Value, ModuleError> {
        FsMounts::call(self, function, args).await
    }

    fn max_payload_bytes(&self, function: &str) -> u64 {
        FsMounts::max_payload_bytes(self, function)
    }
}

/// The host side of checking mounts (their guest paths are checked by
/// [`Capabilities::validate`]): each host path is an existing directory.
pub(crate) fn check_host(capabilities: &Capabilities) -> Result<(), CapabilityError> {
    for (index, mount) in capabilities.mounts.iter().enumerate() {
        let host_error = |message: String| CapabilityError::Mount {
            index,
            error: host_error(mount, message),
        };
        let metadata = std::fs::metadata(&mount.host).map_err(|e| host_error(e.to_string()))?;
        if !metadata.is_dir() {
            return Err(host_error("not a directory".into()));
        }
    }
    Ok(())
}

fn host_error(mount: &Mount, message: String) -> MountError {
    MountError::Host {
        guest: mount.guest.clone(),
        host: mount.host.clone(),
        message,
    }
}

impl FsMounts {
    /// Opens each host directory of `mounts` (checked by
    /// [`crate::check_capabilities`]). `None` when there are no mounts: the
    /// module is off.
    pub(crate) fn open(
        mounts: &[Mount],
        limits: FsLimits,
        open_files: Arc<OpenFiles>,
    ) -> Result<Option<Self>, CapabilityError> {
        if mounts.is_empty() {
            return Ok(None);
        }
        let mut open = Vec::with_capacity(mounts.len());
        for (index, mount) in mounts.iter().enumerate() {
            let dir =
                Dir::open_ambient_dir(&mount.host, cap_std::ambient_authority()).map_err(|e| {
                    CapabilityError::Mount {
                        index,
                        error: host_error(mount, e.to_string()),
                    }
                })?;
            open.push(OpenMount {
                guest: mount.guest.clone(),
                components: mount.guest[1..].split('/').map(str::to_owned).collect(),
                mode: mount.mode,
                dir: Arc::new(dir),
            });
        }
        Ok(Some(FsMounts {
            mounts: open,
            limits,
            open_files,
        }))
    }

    /// The largest JSON a call of `function` may carry in its arguments or
    /// result: contents within the size limits must not be refused by the
    /// generic host-call payload limit, which is smaller by default.
    pub(crate) fn max_payload_bytes(&self, function: &str) -> u64 {
        match function {
            "read_text" => worst_case_json(self.limits.max_read_bytes),
            "write_text" => worst_case_json(self.limits.max_write_bytes),
            _ => 0,
        }
    }

    pub(crate) async fn call(&self, function: &str, args: Value) -> Result<Value, ModuleError> {
        let path = string_arg(&args, "path")?;
        if function == "exists" {
            // Like `os.path.exists`: anything unreachable does not exist.
            let Ok(target) = self.resolve(path) else {
                return Ok(Value::Bool(false));
            };
            let dir = self.mounts[target.mount].dir.clone();
            let slot = self.slot(&target)?;
            return blocking(slot, move || {
                Ok(Value::Bool(dir.try_exists(target.path()).unwrap_or(false)))
            })
            .await;
        }
        let target = self.resolve(path)?;
        let slot = self.slot(&target)?;
        let mount = &self.mounts[target.mount];
        let dir = mount.dir.clone();
        let limits = self.limits.clone();
        match function {
            "read_text" => {
                blocking(slot, move || {
                    read_text(&dir, &target, limits.max_read_bytes)
                })
                .await
            }
            "write_text" => {
                let text = string_arg(&args, "text")?.to_owned();
                let create = self.require(mount, &target, MountMode::Rw)? == MountMode::Rwc;
                if text.len() as u64 > limits.max_write_bytes {
                    return Err(ModuleError::new(
                        "ValueError",
                        format!(
                            "writing {} bytes to `{}` is more than the limit of {} bytes per write",
                            text.len(),
                            target.guest,
                            limits.max_write_bytes
                        ),
                    ));
                }
                blocking(slot, move || write_text(&dir, &target, &text, create)).await
            }
            "listdir" => blocking(slot, move || listdir(&dir, &target)).await,
            "stat" => blocking(slot, move || stat(&dir, &target)).await,
            "mkdir" => {
                self.require(mount, &target, MountMode::Rwc)?;
                let parents = args
                    .get("parents")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                blocking(slot, move || mkdir(&dir, &target, parents)).await
            }
            "remove" => {
                self.require(mount, &target, MountMode::Rw)?;
                blocking(slot, move || remove(&dir, &target)).await
            }
            _ => Err(ModuleError::new(
                "AttributeError",
                format!("fs has no function `{function}`"),
            )),
        }
    }

    /// A slot of the session's open-file budget for one call on `target`.
    fn slot(&self, target: &Target) -> Result<Slot, ModuleError> {
        self.open_files.reserve().map_err(|full| {
            ModuleError::new(
                "OSError",
                format!(
                    "too many open files: `{}` cannot be opened while the session holds its \
                     limit of {} open files (close some first)",
                    target.guest, full.limit
                ),
            )
        })
    }

    /// Refuses unless the target's mount allows `needed`; returns its mode.
    fn require(
        &self,
        mount: &OpenMount,
        target: &Target,
        needed: MountMode,
    ) -> Result<MountMode, ModuleError> {
        if mount.mode >= needed {
            return Ok(mount.mode);
        }
        let what = match needed {
            MountMode::Rwc => "creating files and directories needs `rwc`",
            _ => "changing files needs `rw` or `rwc`",
        };
        Err(ModuleError::new(
            "PermissionError",
            format!(
                "`{}` is on the `{}` mount `{}`: {what}",
                target.guest, mount.mode, mount.guest
            ),
        ))
    }

    fn resolve(&self, path: &str) -> Result<Target, ModuleError> {
        let mount_components: Vec<&[String]> = self
            .mounts
            .iter()
            .map(|m| m.components.as_slice())
            .collect();
        let (guest, found) = resolve(&mount_components, path)?;
        match found {
            Some((mount, relative)) => Ok(Target {
                guest,
                mount,
                relative,
            }),
            None => {
                let mounts: Vec<&str> = self.mounts.iter().map(|m| m.guest.as_str()).collect();
                Err(ModuleError::new(
                    "PermissionError",
                    format!(
                        "`{guest}` is not on a mount (mounted: {})",
                        mounts.join(", ")
                    ),
                ))
            }
        }
    }
}

/// Normalizes the absolute guest path `path` and finds the mount (by index
/// into `mounts`, each given as its components) whose path is its longest
/// prefix in whole components, with the rest of the path.
fn resolve(
    mounts: &[&[String]],
    path: &str,
) -> Result<(String, Option<(usize, PathBuf)>), ModuleError> {
    if !path.starts_with('/') {
        return Err(ModuleError::new(
            "ValueError",
            format!("fs paths must be absolute, not `{}`", path.escape_debug()),
        ));
    }
    if path.contains('\0') {
        return Err(ModuleError::new(
            "ValueError",
            "fs paths cannot contain NUL",
        ));
    }
    let mut components: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                components.pop();
            }
            part => components.push(part),
        }
    }
    let guest = format!("/{}", components.join("/"));
    let best = mounts
        .iter()
        .enumerate()
        .filter(|(_, mount)| {
            mount.len() <= components.len() && mount.iter().zip(&components).all(|(a, b)| a == b)
        })
        .max_by_key(|(_, mount)| mount.len())
        .map(|(index, mount)| (index, components[mount.len()..].iter().collect()));
    Ok((guest, best))
}

/// Runs blocking file I/O off the async threads, holding `slot` of the
/// open-file budget until the work is done (even if the guest stops
/// waiting for it).
async fn blocking(
    slot: Slot,
    work: impl FnOnce() -> Result<Value, ModuleError> + Send + 'static,
) -> Result<Value, ModuleError> {
    let work = move || {
        let _slot = slot;
        work()
    };
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|_| {
        Err(ModuleError::new(
            "RuntimeError",
            "the file operation failed (it panicked)",
        ))
    })
}

/// Maps an I/O error to the Python exception a local call would raise. The
/// message names the guest path and never repeats the error's own text
/// beyond its kind, so no host detail reaches the guest.
fn io_error(target: &Target, err: io::Error) -> ModuleError {
    let path = &target.guest;
    use io::ErrorKind as K;
    let (kind, what) = match err.kind() {
        K::NotFound => ("FileNotFoundError", "no such file or directory"),
        // cap-std's refusal of a path that leaves the mount has no OS errno.
        K::PermissionDenied if err.raw_os_error().is_none() => {
            return ModuleError::new(
                "PermissionError",
                format!("`{path}` leads outside its mount (through `..` or a symbolic link)"),
            );
        }
        K::PermissionDenied => ("PermissionError", "permission denied"),
        K::AlreadyExists => ("FileExistsError", "file exists"),
        K::IsADirectory => ("IsADirectoryError", "is a directory"),
        K::NotADirectory => ("NotADirectoryError", "not a directory"),
        K::DirectoryNotEmpty => ("OSError", "directory not empty"),
        K::ReadOnlyFilesystem => ("PermissionError", "read-only file system"),
        K::StorageFull | K::QuotaExceeded => ("OSError", "no space left on the device"),
        K::InvalidFilename => ("OSError", "file name too long or invalid"),
        _ => ("OSError", "input/output error"),
    };
    ModuleError::new(kind, format!("{what}: `{path}`"))
}

fn read_text(dir: &Dir, target: &Target, max: u64) -> Result<Value, ModuleError> {
    let err = |e| io_error(target, e);
    let too_big = || {
        ModuleError::new(
            "ValueError",
            format!(
                "`{}` is larger than the limit of {max} bytes per read",
                target.guest
            ),
        )
    };
    // Checked before opening: opening a FIFO or a device could block or
    // never end.
    let metadata = dir.metadata(target.path()).map_err(err)?;
    regular_file(target, &metadata)?;
    if metadata.len() > max {
        return Err(too_big());
    }
    // Never waiting, should a FIFO have been put in its place meanwhile; the
    // check below refuses it (and on a regular file the flag changes nothing).
    let mut options = OpenOptions::new();
    options.read(true).custom_flags(wasi::no_wait_flags());
    let file = dir.open_with(target.path(), &options).map_err(err)?;
    regular_file(target, &file.metadata().map_err(err)?)?;
    // The file may have grown since: never hold more than `max + 1` bytes.
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(err)?;
    if bytes.len() as u64 > max {
        return Err(too_big());
    }
    String::from_utf8(bytes).map(Value::String).map_err(|e| {
        ModuleError::new(
            "ValueError",
            format!(
                "`{}` is not UTF-8 text (invalid byte at {}); read it with `open(path, 'rb')`",
                target.guest,
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

fn regular_file(target: &Target, metadata: &cap_std::fs::Metadata) -> Result<(), ModuleError> {
    if metadata.is_dir() {
        Err(ModuleError::new(
            "IsADirectoryError",
            format!("is a directory: `{}`", target.guest),
        ))
    } else if !metadata.is_file() {
        Err(ModuleError::new(
            "OSError",
            format!("not a regular file: `{}`", target.guest),
        ))
    } else {
        Ok(())
    }
}

fn write_text(dir: &Dir, target: &Target, text: &str, create: bool) -> Result<Value, ModuleError> {
    let err = |e| io_error(target, e);
    if target.is_root() {
        return Err(io_error(target, io::ErrorKind::IsADirectory.into()));
    }
    match dir.metadata(target.path()) {
        // Checked before opening, which would already truncate it.
        Ok(metadata) => regular_file(target, &metadata)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !create => {
            return Err(ModuleError::new(
                "PermissionError",
                format!(
                    "`{}` does not exist and its mount is `rw`: creating files needs `rwc`",
                    target.guest
                ),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let mut options = OpenOptions::new();
    options
        .write(true)
        .truncate(true)
        .create(create)
        .custom_flags(wasi::no_wait_flags());
    let mut file = dir.open_with(target.path(), &options).map_err(err)?;
    regular_file(target, &file.metadata().map_err(err)?)?;
    file.write_all(text.as_bytes()).map_err(err)?;
    file.flush().map_err(err)?;
    Ok(Value::Null)
}

fn listdir(dir: &Dir, target: &Target) -> Result<Value, ModuleError> {
    let err = |e| io_error(target, e);
    let mut names = Vec::new();
    for entry in dir.read_dir(target.path()).map_err(err)? {
        names.push(
            entry
                .map_err(err)?
                .file_name()
                .to_string_lossy()
                .into_owned(),
        );
    }
    names.sort();
    Ok(json!(names))
}

fn stat(dir: &Dir, target: &Target) -> Result<Value, ModuleError> {
    let metadata = dir
        .metadata(target.path())
        .map_err(|e| io_error(target, e))?;
    let mtime = metadata
        .modified()
        .ok()
        .and_then(|t| t.into_std().duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64());
    Ok(json!({
        "size": metadata.len(),
        "isDir": metadata.is_dir(),
        "isFile": metadata.is_file(),
        "mtime": mtime,
    }))
}

fn mkdir(dir: &Dir, target: &Target, parents: bool) -> Result<Value, ModuleError> {
    let err = |e| io_error(target, e);
    if parents {
        // Like `mkdir -p`: an existing directory is fine.
        if target.is_root() {
            return Ok(Value::Null);
        }
        dir.create_dir_all(target.path()).map_err(err)?;
    } else {
        if target.is_root() {
            return Err(err(io::ErrorKind::AlreadyExists.into()));
        }
        dir.create_dir(target.path()).map_err(err)?;
    }
    Ok(Value::Null)
}

fn remove(dir: &Dir, target: &Target) -> Result<Value, ModuleError> {
    let err = |e| io_error(target, e);
    if target.is_root() {
        return Err(ModuleError::new(
            "PermissionError",
            format!(
                "`{}` is the root of a mount and cannot be removed",
                target.guest
            ),
        ));
    }
    // Not following a final symbolic link: removing one removes the link.
    let metadata = dir.symlink_metadata(target.path()).map_err(err)?;
    if metadata.is_dir() {
        dir.remove_dir(target.path()).map_err(err)?;
    } else {
        dir.remove_file(target.path()).map_err(err)?;
    }
    Ok(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn components(path: &str) -> Vec<String> {
        path[1..].split('/').map(str::to_owned).collect()
    }

    #[test]
    fn resolves_by_longest_prefix_in_whole_components() {
        let mounts = ["/data", "/data/out", "/work/a"];
        let owned: Vec<Vec<String>> = mounts.iter().map(|m| components(m)).collect();
        let slices: Vec<&[String]> = owned.iter().map(Vec::as_slice).collect();
        // (guest path, normalized, Some((mount, relative)) or None)
        /// The mount and the path relative to it, or None: on no mount.
        type Expected = Option<(&'static str, &'static str)>;
        let cases: &[(&str, &str, Expected)] = &[
            ("/data/x.txt", "/data/x.txt", Some(("/data", "x.txt"))),
            ("/data", "/data", Some(("/data", ""))),
            ("/data/", "/data", Some(("/data", ""))),
            ("/data//a/./b/", "/data/a/b", Some(("/data", "a/b"))),
            ("/data/out/f", "/data/out/f", Some(("/data/out", "f"))),
            ("/data/out", "/data/out", Some(("/data/out", ""))),
            ("/data/out/", "/data/out", Some(("/data/out", ""))),
            (
                "/data/outside/f",
                "/data/outside/f",
                Some(("/data", "outside/f")),
            ),
            ("/data/out/../x", "/data/x", Some(("/data", "x"))),
            ("/data/a/../../data/b", "/data/b", Some(("/data", "b"))),
            ("/../../data/x", "/data/x", Some(("/data", "x"))),
            ("/work/a/b", "/work/a/b", Some(("/work/a", "b"))),
            // Siblings sharing a prefix are other paths.
            ("/data-secret/x", "/data-secret/x", None),
            ("/data/../data-secret/x", "/data-secret/x", None),
            ("/dat", "/dat", None),
            ("/work/ab", "/work/ab", None),
            ("/work", "/work", None),
            // `..` out of a mount is a path outside it.
            ("/data/..", "/", None),
            ("/data/../etc/passwd", "/etc/passwd", None),
            ("/data/out/../../etc", "/etc", None),
            ("/", "/", None),
        ];
        for (path, normalized, expected) in cases {
            let (guest, found) = resolve(&slices, path).unwrap();
            assert_eq!(&guest, normalized, "{path}");
            let found = found.map(|(index, rel)| (mounts[index], rel));
            let expected = expected.map(|(mount, rel)| (mount, PathBuf::from(rel)));
            assert_eq!(found, expected, "{path}");
        }
        for bad in ["data/x", "", "x/../data", "/data/\0"] {
            assert!(resolve(&slices, bad).is_err(), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod host_check_tests {
    use super::*;

    fn mounting(mounts: Vec<Mount>) -> Capabilities {
        Capabilities {
            mounts,
            ..Capabilities::none()
        }
    }

    #[test]
    fn host_paths_must_be_existing_directories() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let ok = Mount::new("/data", dir.path(), MountMode::Ro);
        assert_eq!(check_host(&mounting(vec![ok.clone()])), Ok(()));
        let err = check_host(&mounting(vec![
            ok.clone(),
            Mount::new("/file", &file, MountMode::Ro),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
        assert_eq!(err.option(), "mounts[1].host");
        let err = check_host(&mounting(vec![Mount::new(
            "/data",
            dir.path().join("missing"),
            MountMode::Ro,
        )]))
        .unwrap_err();
        assert!(
            matches!(
                err,
                CapabilityError::Mount {
                    index: 0,
                    error: MountError::Host { .. }
                }
            ),
            "{err}"
        );
    }
}
