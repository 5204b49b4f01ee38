//! What can go wrong talking to the daemon.

use goru_protocol::ErrorObject;
use std::path::PathBuf;

/// An error of a [`crate::Client`] call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon's socket could not be connected to.
    #[error("cannot connect to the goru daemon at `{}`: {source}", path.display())]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The daemon executable could not be started.
    #[error("cannot start the goru daemon `{}`: {source}", exe.display())]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The daemon answered the request with an error; `code` is one of
    /// [`goru_protocol::codes`].
    #[error("the daemon refused the request: {0}")]
    Rpc(ErrorObject),
    /// The daemon sent something the protocol does not allow (a result of
    /// the wrong shape, a malformed answer).
    #[error("the daemon broke the protocol: {0}")]
    Protocol(String),
    /// The connection closed before the answer came: the daemon exited or
    /// dropped the connection, or the client was dropped or shut down.
    #[error("the connection to the goru daemon was closed")]
    Disconnected,
}

impl ClientError {
    /// The JSON-RPC error code, when the daemon answered with an error.
    pub fn rpc_code(&self) -> Option<i64> {
        match self {
            ClientError::Rpc(error) => Some(error.code),
            _ => None,
        }
    }
}
