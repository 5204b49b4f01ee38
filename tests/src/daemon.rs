//! Helpers shared by the tests that drive the real `goru-daemon` binary:
//! starting it (on stdio or on a socket in a temporary directory, killed on
//! drop), a small blocking client (LSP framing over std::io, a reader
//! thread per connection so every wait has a timeout), and request helpers.
//! Every start takes the daemon's executable (`env!("CARGO_BIN_EXE_goru-daemon")`
//! in the daemon's own tests), so this crate does not depend on the daemon.

use serde_json::{Value, json};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How long any single wait may take before the test fails. Generous: the
/// machine may be loaded; no test asserts that something is fast.
pub const WAIT: Duration = Duration::from_secs(30);
/// How long the daemon may take to listen (the first start may compile the guests).
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

pub const PYTHON: &str = "python";
pub const JAVASCRIPT: &str = "javascript";

/// The error codes of goru-protocol, as the tests expect them on the wire.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const UNKNOWN_SESSION: i64 = -32001;
    pub const NOT_INITIALIZED: i64 = -32002;
    pub const SESSION_BUSY: i64 = -32003;
    pub const LIMIT_EXCEEDED: i64 = -32004;
    pub const CLIENT_ID_IN_USE: i64 = -32005;
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32006;
    pub const ALREADY_INITIALIZED: i64 = -32007;
    pub const CAPABILITY_DENIED: i64 = -32009;
}

/// The codes in the tests must be goru-protocol's (a renumbering there
/// would otherwise go unnoticed here).
pub fn check_codes_match_the_protocol() {
    use goru_protocol::codes as p;
    assert_eq!(code::PARSE_ERROR, p::PARSE_ERROR);
    assert_eq!(code::INVALID_REQUEST, p::INVALID_REQUEST);
    assert_eq!(code::METHOD_NOT_FOUND, p::METHOD_NOT_FOUND);
    assert_eq!(code::INVALID_PARAMS, p::INVALID_PARAMS);
    assert_eq!(code::UNKNOWN_SESSION, p::UNKNOWN_SESSION);
    assert_eq!(code::NOT_INITIALIZED, p::NOT_INITIALIZED);
    assert_eq!(code::SESSION_BUSY, p::SESSION_BUSY);
    assert_eq!(code::LIMIT_EXCEEDED, p::LIMIT_EXCEEDED);
    assert_eq!(code::CLIENT_ID_IN_USE, p::CLIENT_ID_IN_USE);
    assert_eq!(
        code::UNSUPPORTED_PROTOCOL_VERSION,
        p::UNSUPPORTED_PROTOCOL_VERSION
    );
    assert_eq!(code::ALREADY_INITIALIZED, p::ALREADY_INITIALIZED);
    assert_eq!(code::CAPABILITY_DENIED, p::CAPABILITY_DENIED);
}

/// How a test talks to the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Stdio,
    Socket,
}

/// Starts a daemon with `args` and connects one client to it.
pub fn start(exe: impl AsRef<Path>, transport: Transport, args: &[&str]) -> (Daemon, Client) {
    match transport {
        Transport::Stdio => Daemon::stdio(exe, args),
        Transport::Socket => {
            let daemon = Daemon::socket(exe, args);
            let client = daemon.connect();
            (daemon, client)
        }
    }
}

/// A `goru-daemon` process, killed (SIGKILL) and reaped on drop.
pub struct Daemon {
    child: Child,
    /// The temporary directory holding the socket, when the daemon owns it.
    dir: Option<tempfile::TempDir>,
    /// The socket path; `None` on stdio.
    pub socket: Option<PathBuf>,
    log: Arc<Mutex<String>>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Collects a child's stderr into `log`; sends on `ready` when the daemon
/// says it listens.
fn collect_stderr(
    stderr: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    ready: Option<mpsc::Sender<()>>,
) {
    thread::spawn(move || {
        let mut lines = BufReader::new(stderr);
        let mut line = String::new();
        loop {
            line.clear();
            match lines.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            log.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_str(&line);
            if line.contains("goru-daemon: listening on")
                && let Some(ready) = &ready
            {
                let _ = ready.send(());
            }
        }
    });
}

impl Daemon {
    /// A daemon listening on `goru.sock` in a new temporary directory.
    pub fn socket(exe: impl AsRef<Path>, args: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("goru.sock");
        let mut daemon = Daemon::socket_at(exe, &path, args);
        daemon.dir = Some(dir);
        daemon
    }

    /// A daemon listening on `path` (in a directory the caller owns).
    pub fn socket_at(exe: impl AsRef<Path>, path: &Path, args: &[&str]) -> Daemon {
        Daemon::socket_at_with(exe, path, args, |_| {})
    }

    /// A daemon listening on `goru.sock` in a new temporary directory,
    /// its command set up by `configure` before it starts.
    pub fn socket_with(
        exe: impl AsRef<Path>,
        args: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Daemon {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("goru.sock");
        let mut daemon = Daemon::socket_at_with(exe, &path, args, configure);
        daemon.dir = Some(dir);
        daemon
    }

    fn socket_at_with(
        exe: impl AsRef<Path>,
        path: &Path,
        args: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Daemon {
        let mut command = Command::new(exe.as_ref());
        command
            .arg("--socket")
            .arg(path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        configure(&mut command);
        let mut child = command.spawn().expect("start goru-daemon");
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready) = mpsc::channel();
        collect_stderr(
            child.stderr.take().expect("piped stderr"),
            log.clone(),
            Some(ready_tx),
        );
        let mut daemon = Daemon {
            child,
            dir: None,
            socket: Some(path.to_path_buf()),
            log,
        };
        let started = Instant::now();
        loop {
            match ready.recv_timeout(Duration::from_millis(50)) {
                Ok(()) => return daemon,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    let status = daemon.wait_exit(WAIT);
                    panic!(
                        "goru-daemon ended ({status:?}) before listening:\n{}",
                        daemon.log_text()
                    );
                }
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!(
                    "goru-daemon exited ({status}) before listening:\n{}",
                    daemon.log_text()
                );
            }
            if started.elapsed() > START_TIMEOUT {
                panic!(
                    "goru-daemon did not listen within {START_TIMEOUT:?}:\n{}",
                    daemon.log_text()
                );
            }
        }
    }

    /// A daemon serving one client on its stdin and stdout.
    pub fn stdio(exe: impl AsRef<Path>, args: &[&str]) -> (Daemon, Client) {
        let mut child = Command::new(exe.as_ref())
            .arg("--stdio")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start goru-daemon");
        let log = Arc::new(Mutex::new(String::new()));
        collect_stderr(
            child.stderr.take().expect("piped stderr"),
            log.clone(),
            None,
        );
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let client = Client::new(Box::new(stdin), Box::new(stdout), None, "stdio");
        let daemon = Daemon {
            child,
            dir: None,
            socket: None,
            log,
        };
        (daemon, client)
    }

    pub fn socket_path(&self) -> &Path {
        self.socket.as_deref().expect("a socket daemon")
    }

    /// A new connection to the socket.
    pub fn connect(&self) -> Client {
        Client::unix(self.socket_path())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the daemon wrote to stderr so far.
    pub fn log_text(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits for the process to exit; `None` if it did not within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The daemon's resident memory in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/PID/status of the daemon");
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .expect("a VmRSS line");
        line.split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("VmRSS in kB")
    }

    /// Descriptors the daemon has open.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("/proc/PID/fd of the daemon")
            .count()
    }

    /// The daemon's soft and hard limits on open files, from /proc.
    pub fn open_file_limits(&self) -> (String, String) {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", self.pid()))
            .expect("/proc/PID/limits of the daemon");
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .expect("a Max open files line");
        let fields: Vec<&str> = line["Max open files".len()..].split_whitespace().collect();
        (fields[0].to_string(), fields[1].to_string())
    }

    /// Waits (up to `WAIT`) until the daemon's stderr holds `text`.
    pub fn wait_for_log(&self, text: &str) {
        poll(WAIT, &format!("`{text}` in the daemon's log"), || {
            self.log_text().contains(text).then_some(())
        });
    }

    /// CPU time the daemon used so far (user + system), in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .expect("/proc/PID/stat of the daemon");
        // Fields after the command name (which may contain spaces): the
        // first is field 3 (state); utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')').expect("a command name") + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields[11].parse().expect("utime");
        let stime: u64 = fields[12].parse().expect("stime");
        utime + stime
    }
}

/// Runs the daemon binary with `args` to its end (it must end within
/// `WAIT`): its exit status and stderr.
pub fn run_daemon_to_exit(
    exe: impl AsRef<Path>,
    args: &[&std::ffi::OsStr],
) -> (ExitStatus, String) {
    let mut child = Command::new(exe.as_ref())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start goru-daemon");
    let log = Arc::new(Mutex::new(String::new()));
    collect_stderr(
        child.stderr.take().expect("piped stderr"),
        log.clone(),
        None,
    );
    let deadline = Instant::now() + START_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "goru-daemon {args:?} did not exit within {START_TIMEOUT:?}:\n{}",
                log.lock().unwrap_or_else(PoisonError::into_inner)
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    // Let the stderr thread reach the end of the pipe.
    let settle = Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&log) > 1 && Instant::now() < settle {
        thread::sleep(Duration::from_millis(10));
    }
    let text = log.lock().unwrap_or_else(PoisonError::into_inner).clone();
    (status, text)
}

/// Bytes written to `stream` that its peer has not read yet (Linux's
/// SIOCOUTQ): 0 once the daemon has read everything sent.
pub fn unread_by_peer(stream: &UnixStream) -> usize {
    use rustix::ioctl::{Getter, Opcode, ioctl};
    const SIOCOUTQ: Opcode = 0x5411;
    #[allow(unsafe_code)]
    // SAFETY: SIOCOUTQ on a socket writes one C int, the Getter's output type.
    let queued = unsafe { ioctl(stream, Getter::<SIOCOUTQ, std::ffi::c_int>::new()) };
    usize::try_from(queued.expect("SIOCOUTQ on a socket")).expect("a count")
}

/// The bytes of one LSP frame.
pub fn frame(body: &[u8]) -> Vec<u8> {
    goru_protocol::framing::encode_frame(body)
}

/// Reads one frame's body (blocking) with goru-protocol's reader.
/// `Ok(None)`: the stream ended between frames. A frame the protocol's
/// reader refuses fails the test: the daemon sent it.
pub fn read_frame(reader: &mut impl BufRead) -> std::io::Result<Option<Vec<u8>>> {
    use goru_protocol::framing::{FrameError, blocking};
    match blocking::read_frame(reader, MAX_FRAME_FROM_DAEMON) {
        Ok(body) => Ok(body),
        Err(FrameError::Io(err)) => Err(err),
        Err(FrameError::UnexpectedEof) => Err(std::io::ErrorKind::UnexpectedEof.into()),
        Err(err) => panic!("the daemon sent a bad frame: {err}"),
    }
}

/// The largest frame the tests take from a daemon.
const MAX_FRAME_FROM_DAEMON: usize = 1 << 30;

/// A connection without a reader thread, for tests that control exactly
/// when the daemon's answers are read. Reads time out after `WAIT`.
pub struct RawConn {
    pub stream: UnixStream,
    reader: BufReader<UnixStream>,
}

impl RawConn {
    pub fn connect(path: &Path) -> RawConn {
        let stream = UnixStream::connect(path)
            .unwrap_or_else(|err| panic!("connect to {}: {err}", path.display()));
        stream.set_read_timeout(Some(WAIT)).expect("a read timeout");
        let reader = BufReader::with_capacity(1 << 16, stream.try_clone().expect("clone"));
        RawConn { stream, reader }
    }

    pub fn send(&mut self, message: &Value) {
        let body = serde_json::to_vec(message).expect("JSON");
        self.stream.write_all(&frame(&body)).expect("write a frame");
    }

    /// The next message; fails the test on a timeout or the end of the stream.
    pub fn recv(&mut self) -> Value {
        let body = read_frame(&mut self.reader)
            .unwrap_or_else(|err| panic!("reading from the daemon: {err}"))
            .expect("the daemon closed the connection");
        serde_json::from_slice(&body).expect("the daemon sends JSON")
    }
}

/// What the reader thread hands over.
enum Incoming {
    Message(Value),
    Garbage(String),
}

/// The outcome of waiting for a message.
#[derive(Debug)]
pub enum Next {
    Message(Value),
    Timeout,
    Closed,
}

/// A blocking JSON-RPC client over one connection. A reader thread parses
/// the daemon's frames into a channel; messages that arrive while the
/// test waits for something else are kept in a backlog, in order.
pub struct Client {
    writer: Box<dyn Write + Send>,
    incoming: Receiver<Incoming>,
    backlog: VecDeque<Value>,
    next_id: i64,
    /// To close the connection for good on drop (the reader holds a clone).
    socket: Option<UnixStream>,
    name: String,
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(socket) = &self.socket {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

impl Client {
    fn new(
        writer: Box<dyn Write + Send>,
        reader: Box<dyn Read + Send>,
        socket: Option<UnixStream>,
        name: &str,
    ) -> Client {
        let (tx, incoming) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::with_capacity(1 << 16, reader);
            // Ends at the end of the stream or on an error (a reset is an end too).
            while let Ok(Some(body)) = read_frame(&mut reader) {
                let item = match serde_json::from_slice::<Value>(&body) {
                    Ok(value) => Incoming::Message(value),
                    Err(err) => Incoming::Garbage(format!(
                        "{err}: {}",
                        String::from_utf8_lossy(&body[..body.len().min(200)])
                    )),
                };
                if tx.send(item).is_err() {
                    return;
                }
            }
        });
        Client {
            writer,
            incoming,
            backlog: VecDeque::new(),
            next_id: 1,
            socket,
            name: name.to_string(),
        }
    }

    /// Connects to a daemon's socket.
    pub fn unix(path: &Path) -> Client {
        let stream = UnixStream::connect(path)
            .unwrap_or_else(|err| panic!("connect to {}: {err}", path.display()));
        Client::from_stream(stream)
    }

    pub fn from_stream(stream: UnixStream) -> Client {
        let reader = stream.try_clone().expect("clone the socket");
        let writer = stream.try_clone().expect("clone the socket");
        Client::new(Box::new(writer), Box::new(reader), Some(stream), "socket")
    }

    /// Writes raw bytes (for malformed frames).
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)?;
        self.writer.flush()
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.try_send_raw(bytes)
            .unwrap_or_else(|err| panic!("{}: writing to the daemon: {err}", self.name));
    }

    /// Sends one JSON value as a frame.
    pub fn send(&mut self, message: &Value) {
        let body = serde_json::to_vec(message).expect("JSON");
        self.send_raw(&frame(&body));
    }

    /// A fresh request id.
    pub fn fresh_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Sends a request; returns its id.
    pub fn start(&mut self, method: &str, params: Value) -> Value {
        let id = json!(self.fresh_id());
        self.send(&request_value(&id, method, params));
        id
    }

    /// Sends a notification.
    pub fn notify(&mut self, method: &str, params: Value) {
        let mut message = json!({"jsonrpc": "2.0", "method": method});
        if !params.is_null() {
            message["params"] = params;
        }
        self.send(&message);
    }

    /// The next message from the daemon (the backlog's first, if any).
    pub fn next(&mut self, timeout: Duration) -> Next {
        if let Some(message) = self.backlog.pop_front() {
            return Next::Message(message);
        }
        self.next_from_wire(timeout)
    }

    fn next_from_wire(&mut self, timeout: Duration) -> Next {
        match self.incoming.recv_timeout(timeout) {
            Ok(Incoming::Message(message)) => Next::Message(message),
            Ok(Incoming::Garbage(text)) => {
                panic!("{}: the daemon sent non-JSON: {text}", self.name)
            }
            Err(RecvTimeoutError::Timeout) => Next::Timeout,
            Err(RecvTimeoutError::Disconnected) => Next::Closed,
        }
    }

    /// The next message; fails the test on a timeout or a closed connection.
    pub fn recv(&mut self) -> Value {
        match self.next(WAIT) {
            Next::Message(message) => message,
            Next::Timeout => panic!("{}: no message from the daemon within {WAIT:?}", self.name),
            Next::Closed => panic!("{}: the daemon closed the connection", self.name),
        }
    }

    /// Waits for the first message matching `wanted`, keeping the others
    /// in the backlog (in order).
    pub fn wait_for(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(at) = self.backlog.iter().position(&wanted) {
            return self.backlog.remove(at).expect("in the backlog");
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_from_wire(left) {
                Next::Message(message) if wanted(&message) => return message,
                Next::Message(message) => self.backlog.push_back(message),
                Next::Timeout => panic!(
                    "{}: no {what} within {WAIT:?}; got meanwhile: {:?}",
                    self.name, self.backlog
                ),
                Next::Closed => panic!(
                    "{}: the connection closed while waiting for {what}; got meanwhile: {:?}",
                    self.name, self.backlog
                ),
            }
        }
    }

    /// Waits for the response to request `id`.
    pub fn response(&mut self, id: &Value) -> Value {
        let id = id.clone();
        self.wait_for(&format!("response to request {id}"), move |m| {
            is_response(m) && m["id"] == id
        })
    }

    /// Waits for a request the daemon sends (such as `host/call`).
    pub fn incoming_request(&mut self, method: &str) -> Value {
        self.wait_for(&format!("a `{method}` request"), |m| {
            m["method"] == method && m.get("id").is_some()
        })
    }

    /// Messages the backlog holds (arrived while waiting for something else).
    pub fn take_backlog(&mut self) -> Vec<Value> {
        self.backlog.drain(..).collect()
    }

    /// Waits until the daemon closes the connection; returns what came before.
    pub fn expect_closed(&mut self) -> Vec<Value> {
        let mut seen: Vec<Value> = self.backlog.drain(..).collect();
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_from_wire(left) {
                Next::Message(message) => seen.push(message),
                Next::Closed => return seen,
                Next::Timeout => panic!(
                    "{}: the daemon did not close the connection within {WAIT:?}; got: {seen:?}",
                    self.name
                ),
            }
        }
    }

    /// Sends a request and waits for its response (the whole message).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.start(method, params);
        self.response(&id)
    }

    /// A request that must succeed: its result.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let response = self.request(method, params.clone());
        match response.get("result") {
            Some(result) if response.get("error").is_none() => result.clone(),
            _ => panic!("{}: `{method}` {params} failed: {response}", self.name),
        }
    }

    /// A request that must fail: its error object.
    pub fn call_err(&mut self, method: &str, params: Value) -> Value {
        let response = self.request(method, params.clone());
        response_error(&response, method)
    }

    /// A request that must fail with `code`: its error object.
    pub fn expect_error(&mut self, method: &str, params: Value, code: i64) -> Value {
        let error = self.call_err(method, params.clone());
        assert_eq!(
            error["code"], code,
            "{}: `{method}` {params}: expected code {code}, got {error}",
            self.name
        );
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "an error has a message: {error}"
        );
        error
    }

    /// Answers a request of the daemon's with a result.
    pub fn respond(&mut self, id: &Value, result: Value) {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "result": result}));
    }

    /// Answers a request of the daemon's with an error.
    pub fn respond_error(&mut self, id: &Value, code: i64, message: &str) {
        self.send(&json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": code, "message": message}
        }));
    }

    /// `initialize` with `client_id`, serving the host functions `add` and `slow`.
    pub fn initialize(&mut self, client_id: &str) -> Value {
        self.call("initialize", init_params(client_id))
    }

    pub fn create_session(&mut self, language: &str) -> String {
        self.create_session_with(json!({"language": language}))
    }

    pub fn create_session_with(&mut self, params: Value) -> String {
        let result = self.call("session/create", params);
        result["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {result}"))
            .to_string()
    }

    /// `session/run` in exec mode: the result.
    pub fn run(&mut self, session_id: &str, code: &str) -> Value {
        self.call(
            "session/run",
            json!({"sessionId": session_id, "code": code}),
        )
    }

    /// `shutdown` then `exit`.
    pub fn shutdown_and_exit(&mut self) {
        let result = self.call("shutdown", Value::Null);
        assert_eq!(result, Value::Null, "shutdown's result is null");
        self.notify("exit", Value::Null);
    }
}

pub fn request_value(id: &Value, method: &str, params: Value) -> Value {
    let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
    if !params.is_null() {
        message["params"] = params;
    }
    message
}

/// Whether a message is a response (no `method`).
pub fn is_response(message: &Value) -> bool {
    message.get("method").is_none()
        && (message.get("result").is_some() || message.get("error").is_some())
}

/// The error object of a response that must be an error.
pub fn response_error(response: &Value, what: &str) -> Value {
    assert_eq!(response["jsonrpc"], "2.0", "{response}");
    assert!(
        response.get("result").is_none(),
        "`{what}` should have failed: {response}"
    );
    let error = response
        .get("error")
        .unwrap_or_else(|| panic!("`{what}`: not an error response: {response}"))
        .clone();
    assert!(error["code"].is_i64(), "{error}");
    error
}

/// `initialize` params for `client_id`, serving `add` and `slow`.
pub fn init_params(client_id: &str) -> Value {
    json!({
        "clientId": client_id,
        "protocolVersion": 1,
        "hostFunctions": ["add", "slow"],
        "clientInfo": {"name": "goru-daemon tests"}
    })
}

/// A client id no other test uses.
pub fn unique_client_id(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "test-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `f` until it returns `Some`, for up to `timeout`.
pub fn poll<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = f() {
            return value;
        }
        if Instant::now() > deadline {
            panic!("{what}: not within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}
