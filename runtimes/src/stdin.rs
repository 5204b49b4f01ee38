//! The guest's stdin when it is not the host's: bytes the embedder can
//! replace between runs (the daemon gives each `session/run` its own input).

use bytes::Bytes;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdinStream};
use wasmtime_wasi::p2::{InputStream, Pollable, StreamError, StreamResult};

/// Unread input, shared by every handle the guest opens on stdin.
#[derive(Clone, Default)]
pub(crate) struct RunInput {
    unread: Arc<Mutex<Bytes>>,
}

impl RunInput {
    fn unread(&self) -> MutexGuard<'_, Bytes> {
        self.unread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces what is left unread.
    pub(crate) fn replace(&self, bytes: Vec<u8>) {
        *self.unread() = Bytes::from(bytes);
    }

    fn take(&self, max: usize) -> Bytes {
        let mut unread = self.unread();
        let n = max.min(unread.len());
        unread.split_to(n)
    }
}

impl IsTerminal for RunInput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdinStream for RunInput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncRead + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for RunInput {
    async fn ready(&mut self) {}
}

impl InputStream for RunInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        let bytes = self.take(size);
        if bytes.is_empty() && size > 0 {
            // End of this input; new input may come with the next run.
            return Err(StreamError::Closed);
        }
        Ok(bytes)
    }
}

impl tokio::io::AsyncRead for RunInput {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let bytes = self.take(buf.remaining());
        buf.put_slice(&bytes);
        Poll::Ready(Ok(()))
    }
}
