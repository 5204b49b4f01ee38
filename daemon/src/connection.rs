//! One connection: a reader loop that parses frames and starts a task per
//! request, and a writer task that drains the outbox. Memory stays bounded:
//! frames are capped, requests in progress are capped (the reader waits for
//! one to finish before reading more), and the outbox is bounded (a client
//! that does not read makes the daemon stop reading it).

use crate::daemon::Daemon;
use crate::handlers;
use crate::peer::Peer;
use crate::registry::lock;
use goru_protocol::framing::{FrameError, read_frame, write_frame};
use goru_protocol::types::CancelParams;
use goru_protocol::{ErrorObject, Id, Message, Response, codes, methods};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// Frames waiting for the writer.
const OUTBOX_FRAMES: usize = 64;
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

/// What the request handlers share about their connection.
pub(crate) struct Connection {
    pub(crate) daemon: Daemon,
    pub(crate) number: u64,
    pub(crate) peer: Peer,
    /// The client id, once `initialize` succeeded.
    pub(crate) client_id: Mutex<Option<String>>,
    pub(crate) shutdown: AtomicBool,
    in_flight: Mutex<HashMap<Id, CancellationToken>>,
}

impl Connection {
    pub(crate) fn client_id(&self) -> Result<String, ErrorObject> {
        lock(&self.client_id).clone().ok_or_else(|| {
            ErrorObject::new(
                codes::NOT_INITIALIZED,
                "send `initialize` before any other request",
            )
        })
    }
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
        self.ensure_reaper();
        let (outbox, mut frames) = mpsc::channel::<Vec<u8>>(OUTBOX_FRAMES);
        let writer_task = tokio::spawn(async move {
            let mut writer = writer;
            while let Some(frame) = frames.recv().await {
                if write_frame(&mut writer, &frame).await.is_err() {
                    break;
                }
            }
        });
        let connection = Arc::new(Connection {
            daemon: self.clone(),
            number: self.next_connection(),
            peer: Peer::new(outbox),
            client_id: Mutex::new(None),
            shutdown: AtomicBool::new(false),
            in_flight: Mutex::new(HashMap::new()),
        });
        let end = read_loop(&connection, reader).await;

        // Tear down: stop the runs, free the client id, fail our requests to it.
        let tokens: Vec<_> = lock(&connection.in_flight)
            .drain()
            .map(|(_, t)| t)
            .collect();
        for token in tokens {
            token.cancel();
        }
        if let Some(client_id) = lock(&connection.client_id).clone() {
            self.inner
                .registry
                .detach(&client_id, connection.number, end == ConnectionEnd::Clean);
        }
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

async fn read_loop<R: AsyncRead + Unpin>(connection: &Arc<Connection>, reader: R) -> ConnectionEnd {
    let daemon = &connection.daemon;
    let mut reader = BufReader::new(reader);
    let slots = Arc::new(Semaphore::new(daemon.config().max_in_flight_requests));
    loop {
        let body = match read_frame(&mut reader, daemon.config().max_frame_bytes).await {
            Ok(Some(body)) => body,
            Ok(None) => return ConnectionEnd::Abrupt,
            Err(FrameError::TooLarge { length, limit }) => {
                let error = ErrorObject::new(
                    codes::INVALID_REQUEST,
                    format!(
                        "a frame of {length} bytes is over this daemon's limit of {limit} bytes"
                    ),
                )
                .with_data(json!({"limit": "maxFrameBytes", "max": limit}));
                respond(connection, None, Err(error)).await;
                continue;
            }
            Err(FrameError::Io(_)) | Err(FrameError::UnexpectedEof) => {
                return ConnectionEnd::Abrupt;
            }
            Err(err @ FrameError::BadHeader(_)) => {
                // No way to find the next frame: say why, then hang up.
                let error = ErrorObject::new(
                    codes::INVALID_REQUEST,
                    format!("{err}; closing the connection"),
                );
                respond(connection, None, Err(error)).await;
                return ConnectionEnd::Abrupt;
            }
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
            Message::Request(request) => {
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
                    let result = handlers::handle(&connection, request, token).await;
                    lock(&connection.in_flight).remove(&id);
                    respond(&connection, Some(id), result).await;
                    drop(permit);
                });
            }
            Message::Notification(notification) => match notification.method.as_str() {
                methods::EXIT => {
                    return if connection.shutdown.load(Ordering::Acquire) {
                        ConnectionEnd::Clean
                    } else {
                        ConnectionEnd::Abrupt
                    };
                }
                methods::CANCEL_REQUEST => {
                    let params = notification.params.unwrap_or_default();
                    if let Ok(CancelParams { id }) = serde_json::from_value(params)
                        && let Some(token) = lock(&connection.in_flight).get(&id)
                    {
                        token.cancel();
                    }
                }
                // JSON-RPC: notifications get no answer, unknown ones included.
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
