//! The local socket transport (Unix domain sockets).
//!
//! The socket file is created owner-only (mode 0600, through the umask, so
//! there is no moment when others could connect). A socket file left by a
//! daemon that died is replaced; one a live daemon answers on is not, and
//! a path that is not a socket is never removed.

use crate::daemon::Daemon;
use goru_protocol::{ErrorObject, Message, Response, codes, framing};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another goru-daemon is already listening on {0}")]
    InUse(PathBuf),
    #[error("{0} exists and is not a socket; not replacing it")]
    NotASocket(PathBuf),
    #[error("cannot listen on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("local sockets need a Unix system here; use --stdio")]
    Unsupported,
}

/// A bound socket, not yet accepting. Removes its file when dropped.
pub struct Listener {
    #[cfg(unix)]
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
    /// The socket file's inode, to remove only our own file.
    inode: Option<u64>,
}

#[cfg(unix)]
pub fn bind(path: &Path) -> Result<Listener, BindError> {
    use std::os::unix::fs::FileTypeExt;
    use std::os::unix::net::{UnixListener, UnixStream};
    let io_error = |source| BindError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => return Err(BindError::InUse(path.to_path_buf())),
            // Nobody listens: a dead daemon's file.
            Err(_) => std::fs::remove_file(path).map_err(io_error)?,
        },
        Ok(_) => return Err(BindError::NotASocket(path.to_path_buf())),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(io_error(err)),
    }
    // Owner-only from the start: the umask applies when bind creates the file.
    let previous = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(path);
    rustix::process::umask(previous);
    let listener = bound.map_err(io_error)?;
    listener.set_nonblocking(true).map_err(io_error)?;
    Ok(Listener {
        listener,
        path: path.to_path_buf(),
        inode: inode(path),
    })
}

#[cfg(unix)]
fn inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|meta| meta.ino())
}

#[cfg(not(unix))]
pub fn bind(_path: &Path) -> Result<Listener, BindError> {
    Err(BindError::Unsupported)
}

impl Listener {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts connections and serves each on its own task, at most
    /// `max_connections` at once (more are told so and closed). Runs until
    /// accepting fails.
    #[cfg(unix)]
    pub async fn serve(self, daemon: Daemon) -> io::Result<()> {
        let listener = tokio::net::UnixListener::from_std(self.listener.try_clone()?)?;
        let slots = Arc::new(Semaphore::new(daemon.config().max_connections));
        loop {
            let (stream, _) = listener.accept().await?;
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                tokio::spawn(refuse(stream, daemon.config().max_connections));
                continue;
            };
            let daemon = daemon.clone();
            tokio::spawn(async move {
                let (reader, writer) = stream.into_split();
                daemon.serve_connection(reader, writer).await;
                drop(permit);
            });
        }
    }

    #[cfg(not(unix))]
    pub async fn serve(self, _daemon: Daemon) -> io::Result<()> {
        Err(io::Error::other(BindError::Unsupported))
    }
}

#[cfg(unix)]
async fn refuse(mut stream: tokio::net::UnixStream, max: usize) {
    let error = ErrorObject::new(
        codes::LIMIT_EXCEEDED,
        format!("too many connections (the limit is {max}); try again later"),
    )
    .with_data(serde_json::json!({"limit": "maxConnections", "max": max}));
    let body = Message::Response(Response {
        id: None,
        result: Err(error),
    })
    .to_json();
    let _ = framing::write_frame(&mut stream, &body).await;
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Only our own file: another daemon may have replaced it since.
        #[cfg(unix)]
        if self.inode.is_some() && inode(&self.path) == self.inode {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
