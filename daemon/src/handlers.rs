//! One function per method.

use crate::connection::Connection;
use crate::convert;
use crate::host_calls::{self, MAX_HOST_FUNCTIONS};
use crate::output::{RunOutput, Streamed};
use crate::peer::Peer;
use crate::registry::{RunContext, SessionSlot, lock};
use goru_protocol::types::*;
use goru_protocol::{ErrorObject, Id, PROTOCOL_VERSION, Request, codes, methods};
use goru_runtimes::{Error, Language, Session, SessionBuilder, StartError, Stdin, Stream};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The longest client id accepted.
const MAX_CLIENT_ID: usize = 128;

pub(crate) async fn handle(
    connection: &Arc<Connection>,
    request: Request,
    cancel: CancellationToken,
) -> Result<Value, ErrorObject> {
    let mut request = request;
    if let Some(result) = lifecycle(connection, &mut request) {
        return result;
    }
    let Request { id, method, params } = request;
    if lock(&connection.client_id).is_none() {
        // Checked before the params, so a client learns the order first.
        connection.client_id()?;
    }
    match method.as_str() {
        methods::SESSION_CREATE => session_create(connection, parse(params)?).await,
        methods::SESSION_RUN => session_run(connection, id, parse(params)?, cancel).await,
        methods::SESSION_CLOSE => session_close(connection, parse(params)?),
        methods::SESSION_LIST => {
            let NoParams {} = parse(params)?;
            let sessions = connection
                .daemon
                .inner
                .registry
                .list(&connection.client_id()?);
            to_value(SessionListResult { sessions })
        }
        methods::RUN => run(connection, id, parse(params)?, cancel).await,
        _ => Err(ErrorObject::new(
            codes::METHOD_NOT_FOUND,
            format!("unknown method `{method}`"),
        )),
    }
}

/// `initialize` and `shutdown`, which change the connection's state: the
/// reader answers them itself (they are quick and run no guest code)
/// before it reads the next message, so that what was sent after them
/// finds them done: a pipelined request after `initialize` is served, an
/// `exit` right behind `shutdown` ends cleanly, and of pipelined
/// `initialize` requests the first binds. `None`: another method.
pub(crate) fn lifecycle(
    connection: &Arc<Connection>,
    request: &mut Request,
) -> Option<Result<Value, ErrorObject>> {
    match request.method.as_str() {
        methods::INITIALIZE => {
            Some(parse(request.params.take()).and_then(|params| initialize(connection, params)))
        }
        methods::SHUTDOWN => Some(shutdown(connection, request.params.take())),
        _ => None,
    }
}

fn shutdown(connection: &Connection, params: Option<Value>) -> Result<Value, ErrorObject> {
    connection.client_id()?;
    let NoParams {} = parse(params)?;
    connection.shutdown.store(true, Ordering::Release);
    Ok(Value::Null)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

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
    connection: &Arc<Connection>,
    params: InitializeParams,
) -> Result<Value, ErrorObject> {
    let invalid = |message: String| Err(ErrorObject::new(codes::INVALID_PARAMS, message));
    // Held until the id is bound: pipelined `initialize` requests run
    // concurrently, and only one may bind an id.
    let mut bound = lock(&connection.client_id);
    if bound.is_some() {
        return Err(ErrorObject::new(
            codes::ALREADY_INITIALIZED,
            "this connection is already initialized",
        ));
    }
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
    let daemon = &connection.daemon;
    let sessions = daemon.inner.registry.attach(
        id,
        connection.number,
        connection.peer.clone(),
        params.host_functions,
    )?;
    *bound = Some(id.clone());
    drop(bound);
    // A client now: its place among connections waiting to initialize is free.
    lock(&connection.waiting_place).take();
    let config = daemon.config();
    to_value(InitializeResult {
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
    connection: &Arc<Connection>,
    client_id: &str,
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
    let daemon = &connection.daemon;
    let limits = convert::limits(&limits, &daemon.config().session_limits)?;
    let capabilities = convert::capabilities(
        &capabilities,
        language,
        &daemon.config().capability_limits,
        &daemon.config().policy,
    )?;
    let output = Arc::new(RunOutput::default());
    let context = Arc::new(RunContext {
        session_id,
        ..RunContext::default()
    });
    let names = daemon.inner.registry.host_functions(client_id);
    let functions = host_calls::forwarding(
        Arc::downgrade(&daemon.inner),
        client_id,
        &names,
        context.clone(),
    );
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
    connection: &Arc<Connection>,
    params: SessionCreateParams,
) -> Result<Value, ErrorObject> {
    let client_id = connection.client_id()?;
    let language = params.language;
    let session_id = new_session_id();
    let spec = SandboxSpec {
        language,
        capabilities: params.capabilities,
        limits: params.limits,
        argv: params.argv,
        stdin: None,
    };
    let sandbox = sandbox(connection, &client_id, Some(session_id.clone()), spec)?;
    let registry = &connection.daemon.inner.registry;
    let reservation = registry.reserve(&client_id)?;
    let session = sandbox
        .builder
        .start(&connection.daemon.inner.engine)
        .await
        .map_err(start_error)?;
    let slot = SessionSlot::new(
        session_id.clone(),
        language,
        session,
        sandbox.output,
        sandbox.context,
    );
    registry.insert(reservation, Arc::new(slot));
    to_value(SessionCreateResult { session_id })
}

fn unknown_session(session_id: &str) -> ErrorObject {
    ErrorObject::new(
        codes::UNKNOWN_SESSION,
        format!("no session `{session_id}` for this client"),
    )
}

async fn session_run(
    connection: &Arc<Connection>,
    request_id: Id,
    params: SessionRunParams,
    cancel: CancellationToken,
) -> Result<Value, ErrorObject> {
    let client_id = connection.client_id()?;
    let registry = &connection.daemon.inner.registry;
    let slot = registry
        .get(&client_id, &params.session_id)
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
        &connection.peer,
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
        registry.remove(&client_id, &slot.id);
    }
    match result {
        Ok((outcome, stdout, stderr)) => {
            to_value(convert::run_result(&outcome, stdout, stderr, Some(alive)))
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
                        stream: match stream {
                            Stream::Stdout => OutputStream::Stdout,
                            Stream::Stderr => OutputStream::Stderr,
                        },
                        data,
                    };
                    let params = serde_json::to_value(params).expect("output params serialize");
                    if !peer.notify(methods::RUN_OUTPUT, params).await {
                        return;
                    }
                }
            }
        }
    });
    (streamed, task)
}

fn session_close(
    connection: &Arc<Connection>,
    params: SessionCloseParams,
) -> Result<Value, ErrorObject> {
    let client_id = connection.client_id()?;
    let slot = connection
        .daemon
        .inner
        .registry
        .remove(&client_id, &params.session_id)
        .ok_or_else(|| unknown_session(&params.session_id))?;
    // A run in progress ends as `cancelled`; the session is freed when it does.
    slot.cancel_run();
    Ok(Value::Null)
}

async fn run(
    connection: &Arc<Connection>,
    request_id: Id,
    params: RunParams,
    cancel: CancellationToken,
) -> Result<Value, ErrorObject> {
    let client_id = connection.client_id()?;
    let language = params.language;
    let spec = SandboxSpec {
        language,
        capabilities: params.capabilities,
        limits: params.limits,
        argv: params.argv,
        stdin: params.stdin,
    };
    let sandbox = sandbox(connection, &client_id, None, spec)?;
    let _reservation = connection.daemon.inner.registry.reserve(&client_id)?;
    let started = std::time::Instant::now();
    let mut session = match sandbox.builder.start(&connection.daemon.inner.engine).await {
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
            return to_value(convert::run_result(
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
        &connection.peer,
        request_id,
        params.stream,
        (&params.code, filename, goru_runtimes::Mode::Exec),
        cancel,
    )
    .await;
    match result {
        Ok((mut outcome, stdout, stderr)) => {
            outcome.duration = started.elapsed();
            to_value(convert::run_result(&outcome, stdout, stderr, None))
        }
        Err(err) => Err(ErrorObject::new(codes::INTERNAL_ERROR, err.to_string())),
    }
}
