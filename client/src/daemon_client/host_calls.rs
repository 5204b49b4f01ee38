//! Serving the daemon's `host/call` requests: each call runs in its own task
//! (the calls of one gathered batch arrive together and must overlap), and
//! a `$/cancelRequest` from the daemon stops the call it names.

use super::connection::Connection;
use super::host_functions::HostFunctions;
use super::lock;
use goru_protocol::method::{HostCall, Method};
use goru_protocol::types::HostCallResult;
use goru_protocol::{ErrorObject, Id, Message, Request, Response, codes};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::task::AbortHandle;

/// The error code a client answers a failed host call with. The daemon
/// passes only the message on to the guest; JSON-RPC leaves -32000 to
/// implementations and goru's protocol does not use it.
pub const HOST_FUNCTION_ERROR: i64 = -32000;

pub(crate) struct HostCalls {
    functions: HostFunctions,
    connection: Arc<Connection>,
    /// Calls in progress, by the daemon's request id.
    running: Mutex<HashMap<Id, AbortHandle>>,
}

impl HostCalls {
    pub(crate) fn new(functions: HostFunctions, connection: Arc<Connection>) -> Arc<Self> {
        Arc::new(HostCalls {
            functions,
            connection,
            running: Mutex::new(HashMap::new()),
        })
    }

    /// Answers a request from the daemon; `host/call` is the only method a
    /// client serves.
    pub(crate) fn handle(self: &Arc<Self>, request: Request) {
        if request.method != HostCall::NAME {
            let error = ErrorObject::new(
                codes::METHOD_NOT_FOUND,
                format!("a goru client does not serve `{}`", request.method),
            );
            self.answer(request.id, Err(error));
            return;
        }
        let params = request.params.unwrap_or(Value::Null);
        let call: <HostCall as Method>::Params = match serde_json::from_value(params) {
            Ok(call) => call,
            Err(err) => {
                let error = ErrorObject::new(
                    codes::INVALID_PARAMS,
                    format!("bad `host/call` params: {err}"),
                );
                self.answer(request.id, Err(error));
                return;
            }
        };
        let Some(function) = self.functions.get(&call.name) else {
            let error = ErrorObject::new(
                HOST_FUNCTION_ERROR,
                format!("this client has no host function `{}`", call.name),
            );
            self.answer(request.id, Err(error));
            return;
        };
        // The function runs in a task of its own so that a panic or an
        // abort surfaces here as a `JoinError` and still gets an answer.
        let task = tokio::spawn(function(call.args));
        lock(&self.running).insert(request.id.clone(), task.abort_handle());
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let result = match task.await {
                Ok(Ok(value)) => Ok(HostCallResult(value)),
                Ok(Err(message)) => Err(ErrorObject::new(HOST_FUNCTION_ERROR, message)),
                Err(err) if err.is_cancelled() => Err(ErrorObject::new(
                    codes::REQUEST_CANCELLED,
                    "the host call was cancelled",
                )),
                Err(_) => Err(ErrorObject::new(
                    HOST_FUNCTION_ERROR,
                    format!("host function `{}` failed", call.name),
                )),
            };
            lock(&this.running).remove(&request.id);
            this.answer(request.id, result);
        });
    }

    /// Stops the call with this request id, if it is still running; it is
    /// answered with `RequestCancelled`.
    pub(crate) fn cancel(&self, id: &Id) {
        if let Some(call) = lock(&self.running).get(id) {
            call.abort();
        }
    }

    /// Stops every call: the connection is gone, so nobody needs the answers.
    pub(crate) fn abort_all(&self) {
        for (_, call) in lock(&self.running).drain() {
            call.abort();
        }
    }

    /// Answers a `host/call` with its typed result or an error.
    fn answer(&self, id: Id, result: Result<<HostCall as Method>::Result, ErrorObject>) {
        let result = result
            .map(|answer| serde_json::to_value(answer).expect("protocol types serialize to JSON"));
        // A closed connection has nobody to answer.
        let _ = self.connection.send(&Message::Response(Response {
            id: Some(id),
            result,
        }));
    }
}
