//! The local socket transport (Unix domain sockets).
//!
//! The socket file is created owner-only (mode 0600, through the umask, so
//! there is no moment when others could connect). A socket file left by a
//! daemon that died is replaced; one a live daemon answers on is not, and
//! a path that is not a socket is never removed.

use crate::admission::{Admission, WaitingList};
use crate::daemon::Daemon;
use goru_protocol::{ErrorObject, Message, Response, codes, framing};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
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
    /// `max_connections` at once (more are told so and closed), of which
    /// at most `max_uninitialized_connections` before their `initialize`
    /// (a newcomer closes the oldest of those, see [`crate::admission`]).
    /// Returns only when it cannot start accepting: once it has, a failed
    /// `accept` is logged and retried, never the end.
    #[cfg(unix)]
    pub async fn serve(self, daemon: Daemon) -> io::Result<()> {
        let listener = tokio::net::UnixListener::from_std(self.listener.try_clone()?)?;
        let config = daemon.config();
        let slots = Arc::new(Semaphore::new(config.max_connections));
        let waiting = WaitingList::new(
            config
                .max_uninitialized_connections
                .min(config.max_connections),
        );
        let mut backoff = AcceptBackoff::default();
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => {
                    backoff.reset();
                    stream
                }
                Err(err) => {
                    // Out of descriptors (EMFILE, ENFILE) or memory, or a
                    // connection aborted before it was accepted: each
                    // passes, and the listener is still good. Ending here
                    // would end the daemon for every client.
                    let pause = backoff.next();
                    eprintln!(
                        "goru-daemon: accepting a connection failed: {err}; retrying in {} ms",
                        pause.as_millis()
                    );
                    tokio::time::sleep(pause).await;
                    continue;
                }
            };
            tokio::spawn(admit(
                daemon.clone(),
                stream,
                slots.clone(),
                waiting.clone(),
            ));
        }
    }

    #[cfg(not(unix))]
    pub async fn serve(self, _daemon: Daemon) -> io::Result<()> {
        Err(io::Error::other(BindError::Unsupported))
    }
}

/// Serves a new connection if it can have a place: a free one, or one a
/// connection still waiting to initialize gives up for it.
#[cfg(unix)]
async fn admit(
    daemon: Daemon,
    stream: tokio::net::UnixStream,
    slots: Arc<Semaphore>,
    waiting: WaitingList,
) {
    let max = daemon.config().max_connections;
    let slot = match slots.clone().try_acquire_owned() {
        Ok(slot) => Some(slot),
        Err(_) if waiting.evict_oldest() => {
            // The evicted connection closes at once; its place is ours
            // unless another newcomer is quicker.
            tokio::time::timeout(EVICTION_WAIT, slots.acquire_owned())
                .await
                .ok()
                .and_then(Result::ok)
        }
        Err(_) => None,
    };
    let Some(slot) = slot else {
        return refuse(stream, max).await;
    };
    let admission = Admission {
        place: waiting.admit(),
        timeout: daemon.config().initialize_timeout,
    };
    let (reader, writer) = stream.into_split();
    daemon.serve_admitted(reader, writer, Some(admission)).await;
    drop(slot);
}

/// How long a newcomer waits for the place of a connection it evicted.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// The pause after a failed `accept`: 10 ms, doubling to 1 s while
/// failures go on (a tight retry loop would spin a core while descriptors
/// are exhausted), back to 10 ms after a success.
#[derive(Default)]
struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    fn next(&mut self) -> Duration {
        let pause = Self::FIRST.saturating_mul(1 << self.failures.min(16));
        self.failures = self.failures.saturating_add(1);
        pause.min(Self::MAX)
    }

    fn reset(&mut self) {
        self.failures = 0;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_retries_back_off_to_a_second_and_start_over_after_a_success() {
        let mut backoff = AcceptBackoff::default();
        let pauses: Vec<_> = (0..9).map(|_| backoff.next().as_millis()).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        for _ in 0..100 {
            assert_eq!(backoff.next(), AcceptBackoff::MAX);
        }
        backoff.reset();
        assert_eq!(backoff.next(), AcceptBackoff::FIRST);
    }
}
