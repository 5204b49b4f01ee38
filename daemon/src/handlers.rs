//! One typed function per method of the table ([`goru_protocol::method`]):
//! each takes its method's `Params` and returns its `Result`, so a
//! handler cannot disagree with the schema.

use crate::client_state::ClientState;
use crate::convert;
use crate::host_calls::{self, MAX_HOST_FUNCTIONS};
use crate::output::{RunOutput, Streamed};
use crate::peer::Peer;
use crate::registry::{RunContext, SessionSlot};
use goru_protocol::method::{self, Kind, Method, Notification as _};
use goru_protocol::types::*;
use goru_protocol::{ErrorObject, Id, PROTOCOL_VERSION, Request, codes};
use goru_runtimes::{Error, Language, Session, SessionBuilder, StartError, Stdin};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The longest client id accepted.
const MAX_CLIENT_ID: usize = 128;

/// The methods a client may send, each with its handler. The dispatch
/// matches on this exhaustively; a test checks that every client-to-daemon
/// method of the table has a handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Handler {
    Initialize,
    Shutdown,
    SessionCreate,
    SessionRun,
    SessionClose,
    SessionList,
    Run,
    /// A notification: the transport ends the connection.
    Exit,
    /// A notification: the transport cancels the request it names.
    CancelRequest,
}

impl Handler {
    pub(crate) fn of(name: &str) -> Option<Handler> {
        Some(match name {
            method::Initialize::NAME => Handler::Initialize,
            method::Shutdown::NAME => Handler::Shutdown,
            method::SessionCreate::NAME => Handler::SessionCreate,
            method::SessionRun::NAME => Handler::SessionRun,
            method::SessionClose::NAME => Handler::SessionClose,
            method::SessionList::NAME => Handler::SessionList,
            method::Run::NAME => Handler::Run,
            method::Exit::NAME => Handler::Exit,
            method::CancelRequest::NAME => Handler::CancelRequest,
            _ => return None,
        })
    }

    /// Whether the method is a request or a notification.
    pub(crate) fn kind(self) -> Kind {
        match self {
            Handler::Exit | Handler::CancelRequest => Kind::Notification,
            _ => Kind::Request,
        }
    }
}

fn unknown_method(method: &str) -> ErrorObject {
    ErrorObject::new(
        codes::METHOD_NOT_FOUND,
        format!("unknown method `{method}`"),
    )
}

/// Serves a request that runs in a task of its own (every request but
/// `initialize` and `shutdown`).
pub(crate) async fn handle(
    state: &Arc<ClientState>,
    request: Request,
    cancel: CancellationToken,
) -> Result<Value, ErrorObject> {
    let Request { id, method, params } = request;
    // Checked before the method and its params, so a client learns the order first.
    state.client_id()?;
    let Some(handler) = Handler::of(&method).filter(|h| h.kind() == Kind::Request) else {
        return Err(unknown_method(&method));
    };
    match handler {
        // The reader answers these two itself ([`lifecycle`]); served the
        // same way should one come here.
        Handler::Initialize => serve::<method::Initialize>(params, |p| initialize(state, p)),
        Handler::Shutdown => shutdown(state, params),
        Handler::SessionCreate => {
            serve_async::<method::SessionCreate, _>(params, |p| session_create(state, p)).await
        }
        Handler::SessionRun => {
            serve_async::<method::SessionRun, _>(params, |p| session_run(state, id, p, cancel))
                .await
        }
        Handler::SessionClose => serve::<method::SessionClose>(params, |p| session_close(state, p)),
        Handler::SessionList => serve::<method::SessionList>(params, |NoParams {}| {
            Ok(SessionListResult {
                sessions: state.sessions()?.list(),
            })
        }),
        Handler::Run => serve_async::<method::Run, _>(params, |p| run(state, id, p, cancel)).await,
        Handler::Exit | Handler::CancelRequest => Err(unknown_method(&method)),
    }
}

/// `initialize` and `shutdown`, which change the connection's state: the
/// reader answers them itself (they are quick and run no guest code)
/// before it reads the next message, so that what was sent after them
/// finds them done: a pipelined request after `initialize` is served, an
/// `exit` right behind `shutdown` ends cleanly, and of pipelined
/// `initialize` requests the first binds. `None`: another method.
pub(crate) fn lifecycle(
    state: &ClientState,
    request: &mut Request,
) -> Option<Result<Value, ErrorObject>> {
    match Handler::of(&request.method)? {
        Handler::Initialize => Some(serve::<method::Initialize>(
            request.params.take(),
            |params| initialize(state, params),
        )),
        Handler::Shutdown => Some(shutdown(state, request.params.take())),
        _ => None,
    }
}

/// Parses `M`'s params, runs its handler, and gives its result as JSON.
fn serve<M: Method>(
    params: Option<Value>,
    handler: impl FnOnce(M::Params) -> Result<M::Result, ErrorObject>,
) -> Result<Value, ErrorObject> {
    to_value(handler(parse(params)?)?)
}

/// As [`serve`], for a handler that waits.
async fn serve_async<M: Method, F>(
    params: Option<Value>,
    handler: impl FnOnce(M::Params) -> F,
) -> Result<Value, ErrorObject>
where
    F: Future<Output = Result<M::Result, ErrorObject>>,
{
    to_value(handler(parse(params)?).await?)
}

/// A notification's params, typed by the table; `None` when they do not
/// parse (a notification has nobody to tell).
pub(crate) fn notification_params<N: method::Notification>(
    params: Option<Value>,
) -> Option<N::Params> {
    parse(params).ok()
}

fn shutdown(state: &ClientState, params: Option<Value>) -> Result<Value, ErrorObject> {
    state.client_id()?;
    serve::<method::Shutdown>(params, |NoParams {}| {
        state.shut_down();
        Ok(())
    })
}

/// The params as `T`; errors name the field at fault (`limits.timeoutMs:
/// invalid type...`), which serde alone does not for wrong types.
fn parse<T: DeserializeOwned>(params: Option<Value>) -> Result<T, ErrorObject> {
    let params = params.unwrap_or_else(|| json!({}));
    serde_path_to_error::deserialize(params).map_err(|err| {
        let path = err.path().to_string();
        let message = if path == "." {
            format!("invalid params: {}", err.inner())
        } else {
            format!("invalid params: `{path}`: {}", err.inner())
        };
        ErrorObject::new(codes::INVALID_PARAMS, message)
    })
}

fn to_value(value: impl Serialize) -> Result<Value, ErrorObject> {
    serde_json::to_value(value)
        .map_err(|err| ErrorObject::new(codes::INTERNAL_ERROR, err.to_string()))
}

fn initialize(
    state: &ClientState,
    params: InitializeParams,
) -> Result<InitializeResult, ErrorObject> {
    let check = || {
        let invalid = |message: String| Err(ErrorObject::new(codes::INVALID_PARAMS, message));
        if params.protocol_version != PROTOCOL_VERSION {
            return Err(ErrorObject::new(
                codes::UNSUPPORTED_PROTOCOL_VERSION,
                format!(
                    "protocol version {} is not supported; this daemon speaks {PROTOCOL_VERSION}",
                    params.protocol_version
                ),
            )
            .with_data(json!({"supported": [PROTOCOL_VERSION]})));
        }
        let id = &params.client_id;
        if id.is_empty()
            || id.len() > MAX_CLIENT_ID
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
        {
            return invalid(format!(
                "`clientId` must be 1 to {MAX_CLIENT_ID} characters of A-Z a-z 0-9 _ . : -"
            ));
        }
        if params.host_functions.len() > MAX_HOST_FUNCTIONS {
            return invalid(format!("at most {MAX_HOST_FUNCTIONS} host functions"));
        }
        if let Err(err) = host_calls::validate(&params.host_functions) {
            return invalid(err.to_string());
        }
        Ok(())
    };
    let sessions = state.bind(&params.client_id, params.host_functions.clone(), check)?;
    let config = state.config();
    Ok(InitializeResult {
        protocol_version: PROTOCOL_VERSION,
        server_info: ServerInfo {
            name: "goru-daemon".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        languages: Language::ALL.to_vec(),
        limits: DaemonLimits {
            max_sessions_per_client: config.max_sessions_per_client as u64,
            max_sessions: config.max_sessions as u64,
            idle_timeout_ms: config.idle_timeout.as_millis() as u64,
            reconnect_grace_ms: config.reconnect_grace.as_millis() as u64,
            max_frame_bytes: config.max_frame_bytes as u64,
            max_in_flight_requests: config.max_in_flight_requests as u64,
            session: convert::wire_limits(&config.session_limits),
        },
        sessions,
    })
}

/// A session's configuration from the wire, checked.
struct Sandbox {
    builder: SessionBuilder,
    output: Arc<RunOutput>,
    context: Arc<RunContext>,
}

/// What a client asked a sandbox to be.
struct SandboxSpec {
    language: Language,
    capabilities: Capabilities,
    limits: Limits,
    argv: Option<Vec<String>>,
    stdin: Option<String>,
}

fn sandbox(
    state: &ClientState,
    host_functions: (&str, &[String]),
    session_id: Option<String>,
    spec: SandboxSpec,
) -> Result<Sandbox, ErrorObject> {
    let SandboxSpec {
        language,
        capabilities,
        limits,
        argv,
        stdin,
    } = spec;
    let config = state.config();
    let limits = convert::limits(&limits, &config.session_limits)?;
    let capabilities = convert::capabilities(
        &capabilities,
        language,
        &config.capability_limits,
        &config.policy,
    )?;
    let output = Arc::new(RunOutput::default());
    let context = Arc::new(RunContext {
        session_id,
        ..RunContext::default()
    });
    let (client_id, names) = host_functions;
    let functions = host_calls::forwarding(state.weak_daemon(), client_id, names, context.clone());
    let mut builder = SessionBuilder::new(language);
    if let Some(stdin) = stdin {
        builder.stdin(Stdin::Bytes(stdin.into_bytes()));
    }
    builder
        .limits(limits)
        .capabilities(capabilities)
        .host_functions(functions)
        .output_sink(output.clone());
    if let Some(argv) = argv {
        builder.argv(argv);
    }
    Ok(Sandbox {
        builder,
        output,
        context,
    })
}

fn start_error(err: StartError) -> ErrorObject {
    match err {
        StartError::Limit(status) => ErrorObject::new(
            codes::SANDBOX_START_FAILED,
            format!("the sandbox could not start within its limits ({status:?})"),
        ),
        StartError::Engine(Error::Capability(err)) => convert::invalid(&err),
        StartError::Engine(err @ Error::Limit(_)) => {
            ErrorObject::new(codes::INVALID_PARAMS, err.to_string())
        }
        StartError::Engine(err) => ErrorObject::new(codes::SANDBOX_START_FAILED, err.to_string()),
    }
}

fn new_session_id() -> String {
    format!("s-{:032x}", rand::random::<u128>())
}

async fn session_create(
    state: &ClientState,
    params: SessionCreateParams,
) -> Result<SessionCreateResult, ErrorObject> {
    let sessions = state.sessions()?;
    let language = params.language;
    let session_id = new_session_id();
    let spec = SandboxSpec {
        language,
        capabilities: params.capabilities,
        limits: params.limits,
        argv: params.argv,
        stdin: None,
    };
    let names = sessions.host_functions();
    let sandbox = sandbox(
        state,
        (sessions.client_id(), &names),
        Some(session_id.clone()),
        spec,
    )?;
    let reservation = sessions.reserve()?;
    let session = sandbox
        .builder
        .start(state.engine())
        .await
        .map_err(start_error)?;
    let slot = SessionSlot::new(
        session_id.clone(),
        language,
        session,
        sandbox.output,
        sandbox.context,
    );
    sessions.insert(reservation, Arc::new(slot));
    Ok(SessionCreateResult { session_id })
}

fn unknown_session(session_id: &str) -> ErrorObject {
    ErrorObject::new(
        codes::UNKNOWN_SESSION,
        format!("no session `{session_id}` for this client"),
    )
}

async fn session_run(
    state: &ClientState,
    request_id: Id,
    params: SessionRunParams,
    cancel: CancellationToken,
) -> Result<RunResult, ErrorObject> {
    let sessions = state.sessions()?;
    let slot = sessions
        .get(&params.session_id)
        .ok_or_else(|| unknown_session(&params.session_id))?;
    let Ok(mut session) = slot.session.try_lock() else {
        return Err(ErrorObject::new(
            codes::SESSION_BUSY,
            "the session is running other code; wait for it or use another session",
        ));
    };
    slot.set_run(Some(cancel.clone()));
    session.set_stdin(params.stdin.unwrap_or_default().into_bytes());
    let filename = params.filename.as_deref().unwrap_or("<session>");
    let result = run_in(
        &mut session,
        &slot.output,
        &slot.context,
        state.peer(),
        request_id,
        params.stream,
        (&params.code, filename, convert::mode(params.mode)),
        cancel,
    )
    .await;
    slot.set_run(None);
    let alive = session.is_alive();
    drop(session);
    if !alive {
        sessions.remove(&slot.id);
    }
    match result {
        Ok((outcome, stdout, stderr)) => {
            Ok(convert::run_result(&outcome, stdout, stderr, Some(alive)))
        }
        Err(Error::SessionDead(_)) => Err(unknown_session(&params.session_id)),
        Err(err) => Err(ErrorObject::new(codes::INTERNAL_ERROR, err.to_string())),
    }
}

/// Runs code in a session, streaming its output when asked; returns the
/// outcome with the captured output.
#[allow(clippy::too_many_arguments)]
async fn run_in(
    session: &mut Session,
    output: &RunOutput,
    context: &RunContext,
    peer: &Peer,
    request_id: Id,
    stream: bool,
    (code, filename, mode): (&str, &str, goru_runtimes::Mode),
    cancel: CancellationToken,
) -> Result<(goru_runtimes::Outcome, String, String), Error> {
    context.set_request(Some(request_id.clone()));
    let forwarder =
        stream.then(|| forward_output(peer.clone(), context.session_id.clone(), request_id));
    output.begin(forwarder.as_ref().map(|(streamed, _)| streamed.clone()));
    let outcome = session
        .run_until(code, filename, mode, cancel.cancelled())
        .await;
    let (stdout, stderr) = output.finish();
    if let Some((_, task)) = forwarder {
        // `finish` closed the stream: every notification goes out before the result.
        let _ = task.await;
    }
    context.set_request(None);
    Ok((outcome?, stdout, stderr))
}

/// Sends streamed output to the client as `run/output` notifications,
/// coalesced (see [`crate::output`]).
fn forward_output(
    peer: Peer,
    session_id: Option<String>,
    request_id: Id,
) -> (Arc<Streamed>, JoinHandle<()>) {
    let streamed = Arc::new(Streamed::default());
    let task = tokio::spawn({
        let streamed = streamed.clone();
        async move {
            while let Some(batch) = streamed.next_batch().await {
                for (stream, data) in batch {
                    let params = RunOutputParams {
                        session_id: session_id.clone(),
                        request_id: request_id.clone(),
                        stream: convert::wire_stream(stream),
                        data,
                    };
                    if !peer.notify::<method::RunOutput>(params).await {
                        return;
                    }
                }
            }
        }
    });
    (streamed, task)
}

fn session_close(state: &ClientState, params: SessionCloseParams) -> Result<(), ErrorObject> {
    let slot = state
        .sessions()?
        .remove(&params.session_id)
        .ok_or_else(|| unknown_session(&params.session_id))?;
    // A run in progress ends as `cancelled`; the session is freed when it does.
    slot.cancel_run();
    Ok(())
}

async fn run(
    state: &ClientState,
    request_id: Id,
    params: RunParams,
    cancel: CancellationToken,
) -> Result<RunResult, ErrorObject> {
    let sessions = state.sessions()?;
    let language = params.language;
    let spec = SandboxSpec {
        language,
        capabilities: params.capabilities,
        limits: params.limits,
        argv: params.argv,
        stdin: params.stdin,
    };
    let names = sessions.host_functions();
    let sandbox = sandbox(state, (sessions.client_id(), &names), None, spec)?;
    let _reservation = sessions.reserve()?;
    let started = std::time::Instant::now();
    let mut session = match sandbox.builder.start(state.engine()).await {
        Ok(session) => session,
        // A limit hit while starting is the run's outcome, as in the CLI.
        Err(StartError::Limit(status)) => {
            let outcome = goru_runtimes::Outcome {
                status,
                stdout: Vec::new(),
                stderr: Vec::new(),
                duration: started.elapsed(),
                clipped: false,
            };
            return Ok(convert::run_result(
                &outcome,
                String::new(),
                String::new(),
                None,
            ));
        }
        Err(err) => return Err(start_error(err)),
    };
    let filename = params.filename.as_deref().unwrap_or("<string>");
    let result = run_in(
        &mut session,
        &sandbox.output,
        &sandbox.context,
        state.peer(),
        request_id,
        params.stream,
        (&params.code, filename, goru_runtimes::Mode::Exec),
        cancel,
    )
    .await;
    match result {
        Ok((mut outcome, stdout, stderr)) => {
            outcome.duration = started.elapsed();
            Ok(convert::run_result(&outcome, stdout, stderr, None))
        }
        Err(err) => Err(ErrorObject::new(codes::INTERNAL_ERROR, err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use goru_protocol::method::{ALL, Direction};

    #[test]
    fn every_method_a_client_sends_has_a_handler_of_its_kind() {
        for method in ALL
            .iter()
            .filter(|m| m.direction == Direction::ClientToDaemon)
        {
            let handler = Handler::of(method.name)
                .unwrap_or_else(|| panic!("no handler for `{}`", method.name));
            assert_eq!(handler.kind(), method.kind, "`{}`", method.name);
        }
    }

    #[test]
    fn methods_the_daemon_sends_are_not_served() {
        for method in ALL
            .iter()
            .filter(|m| m.direction == Direction::DaemonToClient)
        {
            assert_eq!(Handler::of(method.name), None, "`{}`", method.name);
        }
    }
}
