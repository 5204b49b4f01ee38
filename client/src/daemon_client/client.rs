//! [`Client`]: typed calls to a goru daemon over one connection.

use super::connection::{Connection, PendingRequest, write_loop};
use super::error::ClientError;
use super::host_calls::HostCalls;
use super::options::{ClientOptions, default_client_info, random_client_id};
use super::reader::read_loop;
use goru_protocol::method::{self, Method, Notification};
use goru_protocol::types::{
    CancelParams, InitializeParams, InitializeResult, NoParams, RunParams, RunResult,
    SessionCloseParams, SessionCreateParams, SessionInfo, SessionRunParams,
};
use goru_protocol::{Id, PROTOCOL_VERSION};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// How long [`Client::shutdown`] waits for the last frames to go out and
/// for a spawned daemon to exit before killing it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A connection to a goru daemon, initialized. Every method takes `&self`,
/// so one client can run code in several sessions at once (share it in an
/// `Arc`). Dropping it closes the connection (the daemon then cancels its
/// runs) and kills a daemon it spawned.
///
/// It must be created and used inside a tokio runtime: it runs a reader and
/// a writer task, and a task per host call.
pub struct Client {
    connection: Arc<Connection>,
    background: Background,
    /// The daemon, when this client started it.
    child: Option<Child>,
    client_id: String,
    initialized: InitializeResult,
}

impl Client {
    /// Connects to a daemon listening on the Unix socket at `path`.
    pub async fn connect(
        path: impl AsRef<Path>,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| ClientError::Connect {
                path: path.to_owned(),
                source,
            })?;
        let (reader, writer) = stream.into_split();
        Client::new(reader, writer, options).await
    }

    /// Starts `daemon_exe --stdio` and talks to it over its stdin and
    /// stdout (its stderr is this process's). It is killed when the client
    /// is dropped.
    pub async fn spawn(
        daemon_exe: impl AsRef<Path>,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let mut command = Command::new(daemon_exe.as_ref());
        command.arg("--stdio");
        Client::spawn_command(command, options).await
    }

    /// [`spawn`](Self::spawn) with a command of the caller's making (other
    /// arguments, environment); its stdin and stdout are replaced by pipes.
    pub async fn spawn_command(
        mut command: Command,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| ClientError::Spawn {
            exe: command.as_std().get_program().into(),
            source,
        })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            unreachable!("both pipes were asked for");
        };
        // On failure the child is dropped, and so killed.
        let mut client = Client::new(stdout, stdin, options).await?;
        client.child = Some(child);
        Ok(client)
    }

    /// A client over any byte stream pair, `reader` from the daemon and
    /// `writer` to it. Sends `initialize` and waits for its answer.
    pub async fn new<R, W>(
        reader: R,
        writer: W,
        options: ClientOptions,
    ) -> Result<Client, ClientError>
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let (connection, frames) = Connection::new();
        let host_function_names = options.host_functions.names().map(String::from).collect();
        let host_calls = HostCalls::new(options.host_functions, Arc::clone(&connection));
        let background = Background {
            connection: Arc::clone(&connection),
            writer: tokio::spawn(write_loop(writer, frames, Arc::clone(&connection))),
            reader: tokio::spawn(read_loop(
                reader,
                Arc::clone(&connection),
                host_calls,
                options.on_output,
            )),
        };
        let client_id = options.client_id.unwrap_or_else(random_client_id);
        let params = InitializeParams {
            client_id: client_id.clone(),
            protocol_version: PROTOCOL_VERSION,
            host_functions: host_function_names,
            client_info: Some(options.client_info.unwrap_or_else(default_client_info)),
        };
        let initialized = request::<method::Initialize>(&connection, params)?.await?;
        if initialized.protocol_version != PROTOCOL_VERSION {
            return Err(ClientError::Protocol(format!(
                "the daemon speaks protocol version {}, this client {PROTOCOL_VERSION}",
                initialized.protocol_version
            )));
        }
        Ok(Client {
            connection,
            background,
            child: None,
            client_id,
            initialized,
        })
    }

    /// What the daemon said to `initialize`: its limits, languages, and the
    /// sessions of this client id still alive from an earlier connection.
    pub fn initialize_result(&self) -> &InitializeResult {
        &self.initialized
    }

    /// The id this client gave the daemon (to reconnect to its sessions).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Creates a session; returns its id.
    pub async fn create_session(&self, params: SessionCreateParams) -> Result<String, ClientError> {
        let created = self.request::<method::SessionCreate>(params)?.await?;
        Ok(created.session_id)
    }

    /// Runs code in a session and waits for the result.
    pub async fn run_in(&self, params: SessionRunParams) -> Result<RunResult, ClientError> {
        self.start_run_in(params)?.await
    }

    /// Starts a run in a session: the returned request's
    /// [`id`](PendingRequest::id) can be [`cancel`](Self::cancel)led while
    /// it is awaited.
    pub fn start_run_in(
        &self,
        params: SessionRunParams,
    ) -> Result<PendingRequest<RunResult>, ClientError> {
        self.request::<method::SessionRun>(params)
    }

    /// Runs code once in a fresh sandbox and waits for the result.
    pub async fn run(&self, params: RunParams) -> Result<RunResult, ClientError> {
        self.start_run(params)?.await
    }

    /// Starts a one-shot run (see [`start_run_in`](Self::start_run_in)).
    pub fn start_run(&self, params: RunParams) -> Result<PendingRequest<RunResult>, ClientError> {
        self.request::<method::Run>(params)
    }

    pub async fn close_session(&self, session_id: &str) -> Result<(), ClientError> {
        let params = SessionCloseParams {
            session_id: session_id.into(),
        };
        self.request::<method::SessionClose>(params)?.await?;
        Ok(())
    }

    /// This client's live sessions.
    pub async fn list_sessions(&self) -> Result<Vec<SessionInfo>, ClientError> {
        let list = self.request::<method::SessionList>(NoParams {})?.await?;
        Ok(list.sessions)
    }

    /// Asks the daemon to cancel a request in progress. A cancelled run
    /// still answers, with outcome `cancelled`.
    pub fn cancel(&self, id: &Id) -> Result<(), ClientError> {
        notify::<method::CancelRequest>(&self.connection, CancelParams { id: id.clone() })
    }

    /// Ends the conversation politely: `shutdown`, then `exit`, then waits
    /// (briefly) for a spawned daemon to exit.
    pub async fn shutdown(mut self) -> Result<(), ClientError> {
        request::<method::Shutdown>(&self.connection, NoParams {})?.await?;
        notify::<method::Exit>(&self.connection, NoParams {})?;
        // The writer sends what is queued (`exit`), then closes its side.
        self.connection.close();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, &mut self.background.writer).await;
        if let Some(child) = &mut self.child
            && tokio::time::timeout(SHUTDOWN_GRACE, child.wait())
                .await
                .is_err()
        {
            let _ = child.kill().await;
        }
        Ok(())
    }

    fn request<M: Method>(
        &self,
        params: M::Params,
    ) -> Result<PendingRequest<M::Result>, ClientError> {
        request::<M>(&self.connection, params)
    }
}

/// Sends request `M` of the table; its answer is read as `M::Result`.
fn request<M: Method>(
    connection: &Arc<Connection>,
    params: M::Params,
) -> Result<PendingRequest<M::Result>, ClientError> {
    connection.request(M::NAME, wire_params(params))
}

/// Sends notification `N` of the table.
fn notify<N: Notification>(connection: &Connection, params: N::Params) -> Result<(), ClientError> {
    connection.notify(N::NAME, wire_params(params))
}

/// Params as JSON; `null` params are left out.
fn wire_params(params: impl serde::Serialize) -> Option<serde_json::Value> {
    let params = serde_json::to_value(params).expect("protocol types serialize to JSON");
    Some(params).filter(|p| !p.is_null())
}

/// The reader and writer tasks, stopped with the client.
struct Background {
    connection: Arc<Connection>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for Background {
    fn drop(&mut self) {
        self.connection.close();
        self.reader.abort();
        self.writer.abort();
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server_info", &self.initialized.server_info)
            .field("spawned", &self.child.is_some())
            .finish_non_exhaustive()
    }
}
