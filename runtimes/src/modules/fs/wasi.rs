//! The guest's plain file calls (`open()`, `os.listdir`, `os.remove`, ...):
//! goru's own host side of `wasi:filesystem/types` and
//! `wasi:filesystem/preopens`, in front of wasmtime-wasi's.
//!
//! wasmtime-wasi knows two permission levels per preopen (read-only, or
//! everything) and opens whatever a path names, blocking on a FIFO with no
//! writer for ever. Here, every call the guest makes on a mounted directory
//! passes goru's checks first, in one place:
//! - the mount's mode, exactly as the `fs` module reads it: `ro` reads;
//!   `rw` also writes, truncates, removes and renames what exists; `rwc`
//!   also creates files, directories and links;
//! - only regular files and directories are opened, and never in a way that
//!   waits (FIFOs, sockets and devices are refused; see [`open_checked`]);
//! - the session's budget of open files ([`OpenFiles`]).
//!
//! Opening is done here (with cap-std's `openat`-style resolution, as
//! wasmtime-wasi does: no `..` or symbolic link leaves the mount); every
//! other call is wasmtime-wasi's own once the checks pass.

use crate::modules::open_files::{OpenFiles, Slot};
use crate::{Mount, MountError, MountMode};
use cap_primitives::fs::{FileTypeExt, FollowSymlinks, OpenOptions, OpenOptionsExt};
use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, Dir, File, WasiFilesystemCtxView};
use wasmtime_wasi::p2::bindings::filesystem::preopens;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, DescriptorFlags, ErrorCode, HostDescriptor, HostDirectoryEntryStream, OpenFlags,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};
use wasmtime_wasi::p2::{FsError, FsResult};
use wasmtime_wasi::{FsPerms, OpenMode};

/// The error a guest sees when its session holds its limit of open files.
/// WASI has no "too many open files" (`EMFILE`); "quota exceeded"
/// (`EDQUOT`) is the nearest: the session's quota of descriptors.
const TOO_MANY_OPEN_FILES: ErrorCode = ErrorCode::Quota;

/// The error for a mode that does not allow a call: `EACCES`, which
/// Python raises as `PermissionError`, as for a file without write access.
const MODE_REFUSES: ErrorCode = ErrorCode::Access;

/// The plain-file state of one session: its mounts as preopened
/// directories, the mode of each descriptor the guest holds, and its
/// open-file budget.
pub(crate) struct PlainFiles {
    preopens: Vec<Preopen>,
    /// The mode of the mount each live descriptor came from, by resource
    /// id. Missing means `ro`: deny by default.
    modes: HashMap<u32, MountMode>,
    open_files: Arc<OpenFiles>,
}

struct Preopen {
    guest: String,
    mode: MountMode,
    /// Opened once, when the session starts: everything the guest opens is
    /// relative to this handle.
    dir: Dir,
}

fn perms(mode: MountMode) -> FsPerms {
    match mode {
        MountMode::Ro => FsPerms::ReadOnly,
        MountMode::Rw | MountMode::Rwc => FsPerms::ReadWrite,
    }
}

impl PlainFiles {
    /// Opens each mount's host directory (`mounts` were validated); the
    /// error comes with the index of the mount that failed.
    pub(crate) fn open(
        mounts: &[Mount],
        open_files: Arc<OpenFiles>,
    ) -> Result<Self, (usize, MountError)> {
        let mut preopens = Vec::with_capacity(mounts.len());
        for (index, mount) in mounts.iter().enumerate() {
            let dir = cap_std::fs::Dir::open_ambient_dir(&mount.host, cap_std::ambient_authority())
                .map_err(|e| {
                    let error = MountError::Host {
                        guest: mount.guest.clone(),
                        host: mount.host.clone(),
                        message: e.to_string(),
                    };
                    (index, error)
                })?;
            let open_mode = match mount.mode {
                MountMode::Ro => OpenMode::READ,
                MountMode::Rw | MountMode::Rwc => OpenMode::READ | OpenMode::WRITE,
            };
            preopens.push(Preopen {
                guest: mount.guest.clone(),
                mode: mount.mode,
                dir: Dir::new(dir.into_std_file(), perms(mount.mode), open_mode, false),
            });
        }
        Ok(PlainFiles {
            preopens,
            modes: HashMap::new(),
            open_files,
        })
    }

    /// Counts against `open_files` from now on (a pooled instance taken by
    /// a session; it has no mounts).
    pub(crate) fn set_open_files(&mut self, open_files: Arc<OpenFiles>) {
        self.open_files = open_files;
    }

    fn mode(&self, fd: &Resource<Descriptor>) -> MountMode {
        self.modes.get(&fd.rep()).copied().unwrap_or(MountMode::Ro)
    }

    fn require(&self, fd: &Resource<Descriptor>, needed: MountMode) -> FsResult<()> {
        if self.mode(fd) >= needed {
            Ok(())
        } else {
            Err(MODE_REFUSES.into())
        }
    }
}

/// What the linker hands each call: wasmtime-wasi's view, and goru's state.
pub(crate) struct PlainFilesView<'a> {
    pub(crate) wasi: WasiFilesystemCtxView<'a>,
    pub(crate) files: &'a mut PlainFiles,
}

/// The [`HasData`] of goru's filesystem host.
pub(crate) struct GuardedFilesystem;

impl HasData for GuardedFilesystem {
    type Data<'a> = PlainFilesView<'a>;
}

/// Puts goru's `wasi:filesystem/types` and `wasi:filesystem/preopens` in
/// place of wasmtime-wasi's, which `linker` already has
/// (`wasmtime_wasi::p2::add_to_linker_async`): each function is replaced.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> PlainFilesView<'_>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let added = types::add_to_linker::<T, GuardedFilesystem>(linker, view)
        .and_then(|()| preopens::add_to_linker::<T, GuardedFilesystem>(linker, view));
    linker.allow_shadowing(false);
    added
}

impl preopens::Host for PlainFilesView<'_> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        let mut directories = Vec::with_capacity(self.files.preopens.len());
        for preopen in &self.files.preopens {
            // A clone of the handle, not a new descriptor.
            let fd = self.wasi.table.push(Descriptor::Dir(preopen.dir.clone()))?;
            self.files.modes.insert(fd.rep(), preopen.mode);
            directories.push((fd, preopen.guest.clone()));
        }
        Ok(directories)
    }
}

impl types::Host for PlainFilesView<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.wasi, err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        types::Host::filesystem_error_code(&mut self.wasi, err)
    }
}

/// What an `open-at` asks for.
#[derive(Clone, Copy)]
struct Request {
    read: bool,
    write: bool,
    create: bool,
    exclusive: bool,
    truncate: bool,
    directory: bool,
    follow: bool,
}

impl Request {
    fn new(path_flags: types::PathFlags, oflags: OpenFlags, flags: DescriptorFlags) -> Self {
        let create = oflags.contains(OpenFlags::CREATE);
        let truncate = oflags.contains(OpenFlags::TRUNCATE);
        let write_flag = flags.contains(DescriptorFlags::WRITE);
        Request {
            // Opened for reading unless only for writing, as wasmtime-wasi does.
            read: flags.contains(DescriptorFlags::READ) || !write_flag,
            write: write_flag || create || truncate,
            create,
            exclusive: oflags.contains(OpenFlags::EXCLUSIVE),
            truncate,
            directory: oflags.contains(OpenFlags::DIRECTORY),
            follow: path_flags.contains(types::PathFlags::SYMLINK_FOLLOW),
        }
    }
}

/// Flags every open adds: never wait (a FIFO without a writer, a device)
/// and never take a terminal as the host process's controlling one.
pub(super) fn no_wait_flags() -> i32 {
    #[cfg(unix)]
    {
        (rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32
    }
    #[cfg(not(unix))]
    {
        0
    }
}

/// Whether opening a file of this type could wait or reach a device:
/// FIFOs, sockets, character and block devices.
fn is_special(file_type: &cap_primitives::fs::FileType) -> bool {
    file_type.is_fifo()
        || file_type.is_socket()
        || file_type.is_char_device()
        || file_type.is_block_device()
}

/// Opens `path` under `base` as `request` asks within `mode`, on a blocking
/// thread. Only regular files and directories are opened: the type is
/// checked before opening (so a device is never opened at all) and again on
/// the opened descriptor (so a FIFO put in place meanwhile is refused too),
/// and the open itself never waits. Returns the file and whether it is a
/// directory.
fn open_checked(
    base: &std::fs::File,
    path: &Path,
    request: Request,
    mode: MountMode,
) -> Result<(std::fs::File, bool), ErrorCode> {
    let follow = if request.follow {
        FollowSymlinks::Yes
    } else {
        FollowSymlinks::No
    };
    let create = match cap_primitives::fs::stat(base, path, follow) {
        Ok(metadata) if is_special(&metadata.file_type()) => {
            return Err(if request.directory {
                ErrorCode::NotDirectory
            } else {
                ErrorCode::Unsupported
            });
        }
        Ok(_) if request.create && request.exclusive => return Err(ErrorCode::Exist),
        // It exists: opened as it is, on `rw` too.
        Ok(_) => false,
        Err(err) if err.kind() == io::ErrorKind::NotFound && request.create => {
            if mode < MountMode::Rwc {
                return Err(MODE_REFUSES);
            }
            true
        }
        Err(err) => return Err(ErrorCode::from(&err)),
    };
    let mut options = OpenOptions::new();
    options
        .read(request.read)
        .write(request.write)
        .truncate(request.truncate)
        ._cap_fs_ext_follow(follow)
        .custom_flags(no_wait_flags());
    // Created only where the check above allowed it: on `rw`, a file that
    // disappeared meanwhile is not found rather than created.
    if create {
        if request.exclusive {
            options.create_new(true);
        } else {
            options.create(true);
        }
    }
    let file = cap_primitives::fs::open(base, path, &options).map_err(|e| ErrorCode::from(&e))?;
    let metadata = file.metadata().map_err(|e| ErrorCode::from(&e))?;
    if metadata.is_dir() {
        return Ok((file, true));
    }
    if request.directory {
        return Err(ErrorCode::NotDirectory);
    }
    if !metadata.is_file() {
        return Err(ErrorCode::Unsupported);
    }
    blocking_again(&file).map_err(|e| ErrorCode::from(&e))?;
    Ok((file, false))
}

/// Clears the `O_NONBLOCK` the open used: on a regular file it changes
/// nothing on Linux, but the guest's descriptor should be an ordinary one.
fn blocking_again(file: &std::fs::File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
        let flags = fcntl_getfl(file)?;
        fcntl_setfl(file, flags - OFlags::NONBLOCK)?;
    }
    let _ = file;
    Ok(())
}

impl PlainFilesView<'_> {
    fn dir(&self, fd: &Resource<Descriptor>) -> FsResult<Dir> {
        match self.wasi.table.get(fd)? {
            Descriptor::Dir(dir) => Ok(dir.clone()),
            Descriptor::File(_) => Err(ErrorCode::NotDirectory.into()),
        }
    }

    /// Keeps a descriptor just opened: in the guest's table, under the
    /// mode it was opened with, counted in the budget by `slot`.
    fn keep(
        &mut self,
        descriptor: Descriptor,
        mode: MountMode,
        slot: Slot,
    ) -> FsResult<Resource<Descriptor>> {
        let file = match &descriptor {
            Descriptor::Dir(dir) => dir.dir.clone(),
            Descriptor::File(file) => file.file.clone(),
        };
        let fd = self.wasi.table.push(descriptor)?;
        slot.keep(&file);
        self.files.modes.insert(fd.rep(), mode);
        Ok(fd)
    }
}

impl HostDescriptor for PlainFilesView<'_> {
    async fn open_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        oflags: OpenFlags,
        flags: DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        let mode = self.files.mode(&fd);
        let dir = self.dir(&fd)?;
        let request = Request::new(path_flags, oflags, flags);
        if flags.intersects(
            DescriptorFlags::FILE_INTEGRITY_SYNC
                | DescriptorFlags::DATA_INTEGRITY_SYNC
                | DescriptorFlags::REQUESTED_WRITE_SYNC,
        ) {
            return Err(ErrorCode::Unsupported.into());
        }
        if request.directory && (request.create || request.exclusive || request.truncate) {
            return Err(ErrorCode::Invalid.into());
        }
        if request.write && mode < MountMode::Rw {
            return Err(MODE_REFUSES.into());
        }
        let slot = self
            .files
            .open_files
            .reserve()
            .map_err(|_| FsError::from(TOO_MANY_OPEN_FILES))?;
        let base = dir.dir.clone();
        let (file, is_dir) = tokio::task::spawn_blocking(move || {
            open_checked(&base, Path::new(&path), request, mode)
        })
        .await
        .map_err(|_| FsError::from(ErrorCode::Io))??;
        let mut open_mode = OpenMode::empty();
        if request.read {
            open_mode |= OpenMode::READ;
        }
        if request.write {
            open_mode |= OpenMode::WRITE;
        }
        let descriptor = if is_dir {
            Descriptor::Dir(Dir::new(file, perms(mode), open_mode, false))
        } else {
            Descriptor::File(File::new(file, perms(mode), open_mode, false))
        };
        self.keep(descriptor, mode, slot)
    }

    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        let rep = fd.rep();
        let dropped = HostDescriptor::drop(&mut self.wasi, fd);
        self.files.modes.remove(&rep);
        dropped
    }

    // Changes to what exists: `rw` and `rwc`.

    async fn write(
        &mut self,
        fd: Resource<Descriptor>,
        buf: Vec<u8>,
        offset: types::Filesize,
    ) -> FsResult<types::Filesize> {
        self.files.require(&fd, MountMode::Rw)?;
        self.wasi.write(fd, buf, offset).await
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        self.files.require(&fd, MountMode::Rw)?;
        self.wasi.write_via_stream(fd, offset)
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        self.files.require(&fd, MountMode::Rw)?;
        self.wasi.append_via_stream(fd)
    }

    async fn set_size(&mut self, fd: Resource<Descriptor>, size: types::Filesize) -> FsResult<()> {
        self.files.require(&fd, MountMode::Rw)?;
        self.wasi.set_size(fd, size).await
    }

    async fn set_times(
        &mut self,
        fd: Resource<Descriptor>,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        self.files.require(&fd, MountMode::Rw)?;
        self.wasi.set_times(fd, atim, mtim).await
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        self.files.require(&fd, MountMode::Rw)?;
        self.wasi
            .set_times_at(fd, path_flags, path, atim, mtim)
            .await
    }

    async fn unlink_file_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        self.files.require(&fd, MountMode::Rw)?;
        self.wasi.unlink_file_at(fd, path).await
    }

    async fn remove_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        self.files.require(&fd, MountMode::Rw)?;
        self.wasi.remove_directory_at(fd, path).await
    }

    /// Moves what exists: `rw` on both sides.
    async fn rename_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        self.files.require(&fd, MountMode::Rw)?;
        self.files.require(&new_fd, MountMode::Rw)?;
        self.wasi.rename_at(fd, old_path, new_fd, new_path).await
    }

    // Creation: `rwc` only.

    async fn create_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        self.files.require(&fd, MountMode::Rwc)?;
        self.wasi.create_directory_at(fd, path).await
    }

    async fn symlink_at(
        &mut self,
        fd: Resource<Descriptor>,
        src_path: String,
        dest_path: String,
    ) -> FsResult<()> {
        self.files.require(&fd, MountMode::Rwc)?;
        self.wasi.symlink_at(fd, src_path, dest_path).await
    }

    async fn link_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path_flags: types::PathFlags,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        self.files.require(&fd, MountMode::Rwc)?;
        self.files.require(&new_fd, MountMode::Rwc)?;
        self.wasi
            .link_at(fd, old_path_flags, old_path, new_fd, new_path)
            .await
    }

    // Reading: every mode; wasmtime-wasi's own.

    async fn advise(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
        len: types::Filesize,
        advice: types::Advice,
    ) -> FsResult<()> {
        self.wasi.advise(fd, offset, len, advice).await
    }

    async fn sync_data(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        self.wasi.sync_data(fd).await
    }

    async fn get_flags(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorFlags> {
        self.wasi.get_flags(fd).await
    }

    async fn get_type(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorType> {
        self.wasi.get_type(fd).await
    }

    async fn read(
        &mut self,
        fd: Resource<Descriptor>,
        len: types::Filesize,
        offset: types::Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        self.wasi.read(fd, len, offset).await
    }

    async fn read_directory(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<types::DirectoryEntryStream>> {
        self.wasi.read_directory(fd).await
    }

    async fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        self.wasi.sync(fd).await
    }

    async fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorStat> {
        self.wasi.stat(fd).await
    }

    async fn stat_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::DescriptorStat> {
        self.wasi.stat_at(fd, path_flags, path).await
    }

    async fn readlink_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<String> {
        self.wasi.readlink_at(fd, path).await
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynInputStream>> {
        self.wasi.read_via_stream(fd, offset)
    }

    async fn is_same_object(
        &mut self,
        a: Resource<Descriptor>,
        b: Resource<Descriptor>,
    ) -> wasmtime::Result<bool> {
        self.wasi.is_same_object(a, b).await
    }

    async fn metadata_hash(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<types::MetadataHashValue> {
        self.wasi.metadata_hash(fd).await
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::MetadataHashValue> {
        self.wasi.metadata_hash_at(fd, path_flags, path).await
    }
}

impl HostDirectoryEntryStream for PlainFilesView<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<types::DirectoryEntryStream>,
    ) -> FsResult<Option<types::DirectoryEntry>> {
        self.wasi.read_directory_entry(stream).await
    }

    fn drop(&mut self, stream: Resource<types::DirectoryEntryStream>) -> wasmtime::Result<()> {
        HostDirectoryEntryStream::drop(&mut self.wasi, stream)
    }
}
