//! The connection's one reader: routes answers to the requests waiting for
//! them, hands `host/call` requests to [`HostCalls`] and streamed output to
//! the output callback.

use super::connection::Connection;
use super::error::ClientError;
use super::host_calls::HostCalls;
use super::options::OutputCallback;
use goru_protocol::method::{self, Notification as _};
use goru_protocol::{Id, Message, Notification, framing};
use std::sync::Arc;
use tokio::io::{AsyncRead, BufReader};

/// The largest frame read from the daemon. Generous: a run's whole output
/// comes back in one result, and the daemon is trusted not to flood us.
pub const MAX_FRAME_BYTES: usize = 256 << 20;

/// Reads frames until the stream ends or breaks, then closes the
/// connection, which fails every request still waiting.
pub(crate) async fn read_loop<R: AsyncRead + Unpin>(
    reader: R,
    connection: Arc<Connection>,
    host_calls: Arc<HostCalls>,
    on_output: Option<OutputCallback>,
) {
    // Also when this task is aborted or a callback panics: no request may
    // wait forever for an answer that can no longer come.
    let _close = CloseOnDrop {
        connection: Arc::clone(&connection),
        host_calls: Arc::clone(&host_calls),
    };
    let mut reader = BufReader::new(reader);
    // Any frame error ends the connection, an oversize frame too: it may
    // have been an answer, and its request would otherwise never finish.
    while let Ok(Some(body)) = framing::read_frame(&mut reader, MAX_FRAME_BYTES).await {
        match Message::parse(&body) {
            Ok(Message::Response(response)) => connection.resolve(response),
            Ok(Message::Request(request)) => host_calls.handle(request),
            Ok(Message::Notification(notification)) => {
                notify(notification, &host_calls, on_output.as_ref())
            }
            Err(invalid) => {
                // A malformed answer to one of our requests fails that
                // request; other garbage has nobody to tell.
                if let Some(Id::Number(id)) = invalid.id {
                    let error = ClientError::Protocol(invalid.error.message);
                    connection.settle(id, Err(error));
                }
            }
        }
    }
}

fn notify(notification: Notification, host_calls: &HostCalls, on_output: Option<&OutputCallback>) {
    match notification.method.as_str() {
        method::RunOutput::NAME => {
            if let (Some(on_output), Some(output)) =
                (on_output, params::<method::RunOutput>(notification))
            {
                on_output(output);
            }
        }
        method::CancelRequest::NAME => {
            if let Some(cancel) = params::<method::CancelRequest>(notification) {
                host_calls.cancel(&cancel.id);
            }
        }
        // Notifications are fire-and-forget: one this client does not know
        // (from a newer daemon) is ignored.
        _ => {}
    }
}

/// A notification's params as the table types them; `None` when they do not parse.
fn params<N: method::Notification>(notification: Notification) -> Option<N::Params> {
    serde_json::from_value(notification.params?).ok()
}

struct CloseOnDrop {
    connection: Arc<Connection>,
    host_calls: Arc<HostCalls>,
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.connection.close();
        self.host_calls.abort_all();
    }
}
