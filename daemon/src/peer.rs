//! The sending side of one connection: frames queue in a bounded outbox that
//! a writer task drains, and requests the daemon sends to the client
//! (`host/call`) wait here for their responses.

use crate::outbox::Outbox;
use goru_protocol::method::{Method, Notification as NotificationMethod};
use goru_protocol::{ErrorObject, Id, Message, Notification, Request};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Result<Value, ErrorObject>>>>>;

/// A handle to a connection for sending. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Peer {
    outbox: Outbox,
    pending: Pending,
    next_id: Arc<AtomicU64>,
}

/// Why a request to the client got no result.
#[derive(Debug)]
pub(crate) enum PeerError {
    /// The connection closed before the answer came.
    Closed,
    /// The client answered with an error.
    Rpc(ErrorObject),
    /// The client's result is not of the method's result type.
    BadResult(serde_json::Error),
}

impl Peer {
    pub(crate) fn new(outbox: Outbox) -> Self {
        Peer {
            outbox,
            pending: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Queues a message; waits while the outbox is full (the client reads
    /// slowly). `false`: the connection is gone.
    pub(crate) async fn send(&self, message: &Message) -> bool {
        self.outbox.send(message.to_json()).await
    }

    /// Sends notification `N`. `false`: the connection is gone.
    pub(crate) async fn notify<N: NotificationMethod>(&self, params: N::Params) -> bool {
        let params = serde_json::to_value(params).expect("protocol types serialize to JSON");
        self.send(&Message::Notification(Notification {
            method: N::NAME.into(),
            params: Some(params),
        }))
        .await
    }

    /// Sends request `M` to the client and waits for its response.
    pub(crate) async fn request<M: Method>(
        &self,
        params: M::Params,
    ) -> Result<M::Result, PeerError> {
        let params = serde_json::to_value(params).expect("protocol types serialize to JSON");
        let value = self.request_value(M::NAME, params).await?;
        serde_json::from_value(value).map_err(PeerError::BadResult)
    }

    async fn request_value(&self, method: &str, params: Value) -> Result<Value, PeerError> {
        let id = format!("goru-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id.clone(), tx);
        // Forget the request if this future is dropped (the run timed out or
        // was cancelled), so a client that never answers leaks nothing.
        let _forget = Forget {
            pending: &self.pending,
            id: &id,
        };
        let request = Message::Request(Request {
            id: Id::String(id.clone()),
            method: method.into(),
            params: Some(params),
        });
        if !self.send(&request).await {
            return Err(PeerError::Closed);
        }
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(PeerError::Rpc(error)),
            Err(_) => Err(PeerError::Closed),
        }
    }

    /// Hands a response from the client to the request waiting for it.
    /// Responses to unknown ids (late, or never asked) are dropped.
    pub(crate) fn resolve(&self, id: &Id, result: Result<Value, ErrorObject>) {
        let Id::String(id) = id else { return };
        if let Some(waiter) = lock(&self.pending).remove(id) {
            let _ = waiter.send(result);
        }
    }

    /// Fails every request still waiting: the connection closed.
    pub(crate) fn fail_pending(&self) {
        lock(&self.pending).clear();
    }

    /// Requests waiting for the client's answer (for tests and leak checks).
    #[cfg(test)]
    pub(crate) fn pending_len(&self) -> usize {
        lock(&self.pending).len()
    }
}

struct Forget<'a> {
    pending: &'a Pending,
    id: &'a str,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(self.id);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::outbox;
    use goru_protocol::method::HostCall;
    use goru_protocol::types::{HostCallParams, HostCallResult};

    fn call() -> HostCallParams {
        HostCallParams {
            session_id: None,
            request_id: Id::Number(1),
            name: "f".into(),
            args: Value::Null,
        }
    }

    #[tokio::test]
    async fn a_dropped_request_leaves_nothing_pending() {
        let (tx, mut rx) = outbox();
        let peer = Peer::new(tx);
        let request = peer.request::<HostCall>(call());
        let timed = tokio::time::timeout(std::time::Duration::from_millis(20), request).await;
        assert!(timed.is_err(), "nobody answered");
        assert!(rx.recv().await.is_some(), "the request was sent");
        assert_eq!(peer.pending_len(), 0);
    }

    #[tokio::test]
    async fn a_response_reaches_its_request() {
        let (tx, mut rx) = outbox();
        let peer = Peer::new(tx);
        let answering = peer.clone();
        let answer = tokio::spawn(async move {
            let frame = rx.recv().await.unwrap();
            let Message::Request(request) = Message::parse(&frame.body).unwrap() else {
                panic!("not a request")
            };
            answering.resolve(&request.id, Ok(Value::from(5)));
        });
        assert_eq!(
            peer.request::<HostCall>(call()).await.unwrap(),
            HostCallResult(Value::from(5))
        );
        answer.await.unwrap();
    }
}
