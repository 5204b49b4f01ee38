//! One connection: a reader loop that parses frames and starts a task per
//! request, and a writer task that drains the outbox. Memory stays bounded:
//! frames are capped (and a body is held only as its bytes arrive),
//! requests in progress are capped (the reader waits for one to finish
//! before reading more), and the outbox is bounded in frames and bytes (a
//! client that does not read makes the daemon stop reading it).
//!
//! This module owns only the transport; what the daemon knows of the client
//! is [`ClientState`], and the methods are served by [`crate::handlers`].

use crate::admission::{Admission, WaitingPlace};
use crate::client_state::ClientState;
use crate::daemon::Daemon;
use crate::handlers::{self, Handler};
use crate::outbox::{Inbox, outbox};
use crate::peer::Peer;
use crate::registry::lock;
use goru_protocol::framing::{FrameError, read_body, read_header, skip_body, write_frame};
use goru_protocol::method;
use goru_protocol::{ErrorObject, Id, Message, Response, codes};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long the end of a connection waits for its last frames to be written.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionEnd {
    /// `shutdown` then `exit`, as a client should end.
    Clean,
    /// The stream closed or broke, or `exit` came without `shutdown`.
    Abrupt,
}

/// One connection's transport: its frames out, its requests in progress,
/// and the client state its handlers work on.
struct Connection {
    daemon: Daemon,
    peer: Peer,
    client: Arc<ClientState>,
    /// The place among connections waiting to initialize; left on `initialize`.
    waiting_place: Mutex<Option<WaitingPlace>>,
    in_flight: Mutex<HashMap<Id, CancellationToken>>,
}

impl Daemon {
    /// Serves one client over `reader`/`writer` until it disconnects or
    /// sends `exit`. Its runs in progress are cancelled; its sessions wait
    /// for it to reconnect, unless it ended with `shutdown` + `exit`.
    pub async fn serve_connection<R, W>(&self, reader: R, writer: W) -> ConnectionEnd
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        self.serve_admitted(reader, writer, None).await
    }

    /// As [`Daemon::serve_connection`], for a connection that must
    /// initialize as `admission` says.
    pub(crate) async fn serve_admitted<R, W>(
        &self,
        reader: R,
        writer: W,
        admission: Option<Admission>,
    ) -> ConnectionEnd
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        self.ensure_reaper();
        let (outbox, inbox) = outbox();
        let writer_task = tokio::spawn(write_loop(inbox, writer));
        let (place, admission) = match admission {
            Some(Admission { place, timeout }) => {
                let evicted = place.eviction();
                (Some(place), Some((Instant::now() + timeout, evicted)))
            }
            None => (None, None),
        };
        let peer = Peer::new(outbox);
        let client = ClientState::new(self.clone(), self.next_connection(), peer.clone());
        let connection = Arc::new(Connection {
            daemon: self.clone(),
            peer,
            client: Arc::new(client),
            waiting_place: Mutex::new(place),
            in_flight: Mutex::new(HashMap::new()),
        });
        let end = tokio::select! {
            end = read_loop(&connection, reader) => end,
            refusal = admission_refused(&connection, admission) => {
                // A client that does not read must not keep its place by
                // leaving no room for this answer.
                let answer = respond(&connection, None, Err(refusal));
                let _ = tokio::time::timeout(DRAIN_TIMEOUT, answer).await;
                ConnectionEnd::Abrupt
            }
        };

        // Tear down: stop the runs, free the client id, fail our requests to it.
        let tokens: Vec<_> = lock(&connection.in_flight)
            .drain()
            .map(|(_, t)| t)
            .collect();
        for token in tokens {
            token.cancel();
        }
        connection.client.detach(end == ConnectionEnd::Clean);
        connection.peer.fail_pending();
        drop(connection);
        // The writer ends once every handler has sent its last frame.
        let mut writer_task = writer_task;
        if tokio::time::timeout(DRAIN_TIMEOUT, &mut writer_task)
            .await
            .is_err()
        {
            writer_task.abort();
        }
        end
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(mut inbox: Inbox, mut writer: W) {
    while let Some(frame) = inbox.recv().await {
        if write_frame(&mut writer, &frame.body).await.is_err() {
            break;
        }
    }
}

/// Ends, with the error to close the connection with, when a connection
/// that must initialize has not by its deadline, or a newer connection took
/// its place; never for a connection without these conditions or once it
/// initialized.
async fn admission_refused(
    connection: &Connection,
    admission: Option<(Instant, CancellationToken)>,
) -> ErrorObject {
    let Some((deadline, evicted)) = admission else {
        return std::future::pending().await;
    };
    let started = deadline - connection.daemon.config().initialize_timeout;
    tokio::select! {
        () = tokio::time::sleep_until(deadline) => {}
        () = evicted.cancelled() => {}
    }
    if connection.client.is_initialized() {
        return std::future::pending().await;
    }
    let timeout = connection.daemon.config().initialize_timeout.as_millis() as u64;
    let waited = started.elapsed().as_millis();
    let message = if Instant::now() >= deadline {
        format!("no successful `initialize` within {timeout} ms; closing the connection")
    } else {
        format!(
            "no successful `initialize` after {waited} ms, and a newer connection needs the place; closing the connection"
        )
    };
    ErrorObject::new(codes::NOT_INITIALIZED, message)
        .with_data(json!({"limit": "initializeTimeoutMs", "max": timeout}))
}

/// The next frame's body; `Err(end)` when the connection is over.
/// Frames over the size limit are answered as soon as their header is
/// read, then skipped.
async fn next_frame<R: AsyncRead + Unpin>(
    connection: &Connection,
    reader: &mut BufReader<R>,
) -> Result<Vec<u8>, ConnectionEnd> {
    let limit = connection.daemon.config().max_frame_bytes;
    loop {
        let error = match read_header(reader).await {
            Ok(Some(length)) if length <= limit as u64 => {
                match read_body(reader, length as usize).await {
                    Ok(body) => return Ok(body),
                    Err(_) => return Err(ConnectionEnd::Abrupt),
                }
            }
            Ok(Some(length)) => {
                let error = ErrorObject::new(
                    codes::INVALID_REQUEST,
                    format!(
                        "a frame of {length} bytes is over this daemon's limit of {limit} bytes"
                    ),
                )
                .with_data(json!({"limit": "maxFrameBytes", "max": limit}));
                respond(connection, None, Err(error)).await;
                if skip_body(reader, length).await.is_err() {
                    return Err(ConnectionEnd::Abrupt);
                }
                continue;
            }
            Ok(None) => return Err(ConnectionEnd::Abrupt),
            Err(err @ FrameError::BadHeader(_)) => err,
            Err(_) => return Err(ConnectionEnd::Abrupt),
        };
        // No way to find the next frame: say why, then hang up.
        let error = ErrorObject::new(
            codes::INVALID_REQUEST,
            format!("{error}; closing the connection"),
        );
        respond(connection, None, Err(error)).await;
        return Err(ConnectionEnd::Abrupt);
    }
}

async fn read_loop<R: AsyncRead + Unpin>(connection: &Arc<Connection>, reader: R) -> ConnectionEnd {
    let daemon = &connection.daemon;
    let mut reader = BufReader::new(reader);
    let slots = Arc::new(Semaphore::new(daemon.config().max_in_flight_requests));
    loop {
        let body = match next_frame(connection, &mut reader).await {
            Ok(body) => body,
            Err(end) => return end,
        };
        let message = match Message::parse(&body) {
            Ok(message) => message,
            Err(invalid) => {
                respond(connection, invalid.id, Err(invalid.error)).await;
                continue;
            }
        };
        drop(body);
        match message {
            Message::Request(mut request) => {
                // In the order read: a request read after `shutdown` is
                // refused, and `initialize` and `shutdown` take effect
                // before the next message is read.
                if connection.client.is_shut_down() {
                    let error = ErrorObject::new(
                        codes::INVALID_REQUEST,
                        "`shutdown` was received: only the `exit` notification may follow",
                    );
                    respond(connection, Some(request.id), Err(error)).await;
                    continue;
                }
                if let Some(result) = handlers::lifecycle(&connection.client, &mut request) {
                    if connection.client.is_initialized() {
                        // A client now: its place among connections waiting
                        // to initialize is free.
                        lock(&connection.waiting_place).take();
                    }
                    respond(connection, Some(request.id), result).await;
                    continue;
                }
                let token = CancellationToken::new();
                let duplicate = {
                    let mut in_flight = lock(&connection.in_flight);
                    let duplicate = in_flight.contains_key(&request.id);
                    if !duplicate {
                        in_flight.insert(request.id.clone(), token.clone());
                    }
                    duplicate
                };
                if duplicate {
                    let error = ErrorObject::new(
                        codes::INVALID_REQUEST,
                        format!("request id {} is already in progress", request.id),
                    );
                    respond(connection, Some(request.id), Err(error)).await;
                    continue;
                }
                // Back-pressure: with every slot taken, stop reading.
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return ConnectionEnd::Abrupt;
                };
                let connection = connection.clone();
                tokio::spawn(async move {
                    let id = request.id.clone();
                    let result = handlers::handle(&connection.client, request, token).await;
                    lock(&connection.in_flight).remove(&id);
                    respond(&connection, Some(id), result).await;
                    drop(permit);
                });
            }
            Message::Notification(notification) => match Handler::of(&notification.method) {
                Some(Handler::Exit) => {
                    return if connection.client.is_shut_down() {
                        ConnectionEnd::Clean
                    } else {
                        ConnectionEnd::Abrupt
                    };
                }
                Some(Handler::CancelRequest) => {
                    let params = notification.params;
                    if let Some(cancel) =
                        handlers::notification_params::<method::CancelRequest>(params)
                        && let Some(token) = lock(&connection.in_flight).get(&cancel.id)
                    {
                        token.cancel();
                    }
                }
                // JSON-RPC: notifications get no answer, unknown ones (and
                // requests sent as notifications) included.
                _ => {}
            },
            Message::Response(response) => {
                if let Some(id) = &response.id {
                    connection.peer.resolve(id, response.result);
                }
            }
        }
    }
}

async fn respond(
    connection: &Connection,
    id: Option<Id>,
    result: Result<serde_json::Value, ErrorObject>,
) {
    // A closed connection cannot be answered; nothing else to do.
    let _ = connection
        .peer
        .send(&Message::Response(Response { id, result }))
        .await;
}
