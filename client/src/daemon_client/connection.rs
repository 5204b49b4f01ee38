//! The client's side of one connection: outgoing frames, and the requests
//! waiting for their answers. The reader ([`super::reader`]) resolves them;
//! closing the connection fails every one of them.

use super::error::ClientError;
use super::lock;
use goru_protocol::method::{self, Notification as _};
use goru_protocol::types::CancelParams;
use goru_protocol::{Id, Message, Notification, Request, Response, framing};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

type Reply = Result<Value, ClientError>;

pub(crate) struct Connection {
    /// Frame bodies for the writer task; `None` once closed.
    outgoing: Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>,
    /// Requests waiting for an answer, by id; `None` once closed.
    pending: Mutex<Option<HashMap<i64, oneshot::Sender<Reply>>>>,
    next_id: AtomicI64,
}

impl Connection {
    /// A connection, and the frames its writer task must send.
    pub(crate) fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<Vec<u8>>) {
        let (sender, frames) = mpsc::unbounded_channel();
        let connection = Connection {
            outgoing: Mutex::new(Some(sender)),
            pending: Mutex::new(Some(HashMap::new())),
            next_id: AtomicI64::new(1),
        };
        (Arc::new(connection), frames)
    }

    /// Queues a message for the writer.
    pub(crate) fn send(&self, message: &Message) -> Result<(), ClientError> {
        let outgoing = lock(&self.outgoing);
        let sender = outgoing.as_ref().ok_or(ClientError::Disconnected)?;
        sender
            .send(message.to_json())
            .map_err(|_| ClientError::Disconnected)
    }

    pub(crate) fn notify(&self, method: &str, params: Option<Value>) -> Result<(), ClientError> {
        self.send(&Message::Notification(Notification {
            method: method.into(),
            params,
        }))
    }

    /// Sends a request; the returned future resolves with its answer.
    pub(crate) fn request<T>(
        self: &Arc<Self>,
        method: &'static str,
        params: Option<Value>,
    ) -> Result<PendingRequest<T>, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, reply) = oneshot::channel();
        lock(&self.pending)
            .as_mut()
            .ok_or(ClientError::Disconnected)?
            .insert(id, sender);
        let request = Message::Request(Request {
            id: Id::Number(id),
            method: method.into(),
            params,
        });
        if let Err(err) = self.send(&request) {
            self.forget(id);
            return Err(err);
        }
        Ok(PendingRequest {
            id,
            method,
            reply,
            connection: Arc::clone(self),
            answered: false,
            result: PhantomData,
        })
    }

    /// Hands an answer from the daemon to the request waiting for it.
    pub(crate) fn resolve(&self, response: Response) {
        match (response.id, response.result) {
            (Some(Id::Number(id)), result) => {
                self.settle(id, result.map_err(ClientError::Rpc));
            }
            // An error without an id is about the connection as a whole
            // (too many connections, a frame the daemon could not read):
            // every request waiting is answered by it.
            (None, Err(error)) => {
                let waiting = lock(&self.pending)
                    .as_mut()
                    .map(std::mem::take)
                    .unwrap_or_default();
                for (_, sender) in waiting {
                    let _ = sender.send(Err(ClientError::Rpc(error.clone())));
                }
            }
            // Only numeric ids are ours; anything else answers nothing we sent.
            _ => {}
        }
    }

    /// Resolves request `id` with `reply`, if it is still waiting.
    pub(crate) fn settle(&self, id: i64, reply: Reply) {
        let sender = lock(&self.pending).as_mut().and_then(|p| p.remove(&id));
        if let Some(sender) = sender {
            // The caller may have stopped waiting; that is its business.
            let _ = sender.send(reply);
        }
    }

    /// Stops waiting for request `id`; true if it was still waiting.
    fn forget(&self, id: i64) -> bool {
        lock(&self.pending)
            .as_mut()
            .is_some_and(|p| p.remove(&id).is_some())
    }

    /// Closes the connection: nothing more is sent (frames already queued
    /// still are), and every waiting request fails with `Disconnected`.
    pub(crate) fn close(&self) {
        lock(&self.outgoing).take();
        // Dropping the senders wakes each waiter with `Disconnected`.
        lock(&self.pending).take();
    }
}

/// Sends queued frames in order until the connection is closed, then shuts
/// the stream's write side. A failed write closes the connection.
pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut frames: mpsc::UnboundedReceiver<Vec<u8>>,
    connection: Arc<Connection>,
) {
    while let Some(body) = frames.recv().await {
        if framing::write_frame(&mut writer, &body).await.is_err() {
            connection.close();
            return;
        }
    }
    let _ = writer.shutdown().await;
}

/// A request sent to the daemon; await it for the result. Its [`id`]
/// is what [`crate::Client::cancel`] takes. Dropping it before the answer
/// arrives cancels the request (`$/cancelRequest`).
///
/// [`id`]: PendingRequest::id
#[must_use = "a request is cancelled when its PendingRequest is dropped"]
pub struct PendingRequest<T> {
    id: i64,
    method: &'static str,
    reply: oneshot::Receiver<Reply>,
    connection: Arc<Connection>,
    answered: bool,
    result: PhantomData<fn() -> T>,
}

impl<T> PendingRequest<T> {
    /// The request's JSON-RPC id (also `requestId` in the `host/call` and
    /// `run/output` messages it causes).
    pub fn id(&self) -> Id {
        Id::Number(self.id)
    }
}

impl<T: DeserializeOwned> Future for PendingRequest<T> {
    type Output = Result<T, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let reply = ready!(Pin::new(&mut self.reply).poll(cx));
        self.answered = true;
        let value = match reply {
            Ok(Ok(value)) => value,
            Ok(Err(err)) => return Poll::Ready(Err(err)),
            Err(_) => return Poll::Ready(Err(ClientError::Disconnected)),
        };
        let method = self.method;
        Poll::Ready(serde_json::from_value(value).map_err(|err| {
            ClientError::Protocol(format!(
                "the result of `{method}` is not what it should be: {err}"
            ))
        }))
    }
}

impl<T> Drop for PendingRequest<T> {
    fn drop(&mut self) {
        if !self.answered && self.connection.forget(self.id) {
            let params = CancelParams {
                id: Id::Number(self.id),
            };
            let params = serde_json::to_value(params).expect("protocol types serialize to JSON");
            let _ = self
                .connection
                .notify(method::CancelRequest::NAME, Some(params));
        }
    }
}

impl<T> std::fmt::Debug for PendingRequest<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRequest")
            .field("id", &self.id)
            .field("method", &self.method)
            .finish()
    }
}
