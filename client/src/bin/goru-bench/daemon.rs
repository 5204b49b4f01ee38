//! Round trips through goru-daemon: a trivial `session/run` in an existing
//! session, over stdio and over the socket, measured from the client's side
//! (frame written to result read).

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A blocking, one-request-at-a-time client: all a latency bench needs.
pub(crate) struct Wire<R: BufRead, W: Write> {
    reader: R,
    writer: W,
    next_id: u64,
}

impl Wire<BufReader<UnixStream>, UnixStream> {
    /// A client on a connected socket.
    pub(crate) fn on(stream: UnixStream) -> Self {
        Wire {
            reader: BufReader::new(stream.try_clone().expect("clone the socket")),
            writer: stream,
            next_id: 0,
        }
    }
}

impl<R: BufRead, W: Write> Wire<R, W> {
    pub(crate) fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        self.writer
            .write_all(&encode_request(self.next_id, method, &params))
            .unwrap();
        self.writer.flush().unwrap();
        loop {
            let message = read_message(&mut self.reader);
            if message["id"] == json!(self.next_id) {
                if let Some(error) = message.get("error") {
                    panic!("{method} failed: {error}");
                }
                return message["result"].clone();
            }
        }
    }
}

/// One request as a frame: header and JSON body.
pub(crate) fn encode_request(id: u64, method: &str, params: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(
        &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
    )
    .unwrap();
    let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    frame.extend_from_slice(&body);
    frame
}

/// Reads one frame's JSON body; panics when the daemon closed the stream.
pub(crate) fn read_message(reader: &mut impl BufRead) -> Value {
    let mut length = None;
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the daemon closed the stream"
        );
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = Some(value.trim().parse::<usize>().unwrap());
        }
    }
    let mut body = vec![0; length.expect("a Content-Length header")];
    reader.read_exact(&mut body).unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// A daemon process the bench started; killed when dropped.
pub(crate) struct Daemon(pub(crate) Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Connects to a daemon that was just started, waiting up to 60 s for it
/// to listen (its first start may compile the guests).
pub(crate) fn connect_when_listening(path: &Path) -> UnixStream {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match UnixStream::connect(path) {
            Ok(stream) => return stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("the daemon did not listen on {}: {e}", path.display()),
        }
    }
}

/// p50 and p99 of `session/run` `x = 1` in an existing session, per language.
fn measure<R: BufRead, W: Write>(wire: &mut Wire<R, W>, runs: usize) -> Vec<(Duration, Duration)> {
    wire.request(
        "initialize",
        json!({"clientId": "goru-bench", "protocolVersion": 1}),
    );
    let mut results = Vec::new();
    for language in ["python", "javascript"] {
        let session = wire.request("session/create", json!({"language": language}));
        let session_id = session["sessionId"].clone();
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs + 10 {
            let started = Instant::now();
            let result = wire.request(
                "session/run",
                json!({"sessionId": session_id, "code": "x = 1"}),
            );
            samples.push(started.elapsed());
            assert_eq!(result["outcome"], "ok", "{result}");
        }
        // The first runs warm the connection and the session.
        let mut samples = samples.split_off(10);
        results.push(super::percentiles(&mut samples));
    }
    results
}

pub(crate) fn round_trips(
    daemon: &str,
    runs: usize,
) -> Vec<(&'static str, Vec<(Duration, Duration)>)> {
    let mut child = Command::new(daemon)
        .arg("--stdio")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {daemon}: {e}"));
    let mut wire = Wire {
        reader: BufReader::new(child.stdout.take().unwrap()),
        writer: child.stdin.take().unwrap(),
        next_id: 0,
    };
    let _stdio = Daemon(child);
    let stdio = measure(&mut wire, runs);

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("goru.sock");
    let _socket_daemon = Daemon(
        Command::new(daemon)
            .arg("--socket")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {daemon}: {e}")),
    );
    let mut wire = Wire::on(connect_when_listening(&path));
    let socket = measure(&mut wire, runs);
    vec![("stdio", stdio), ("socket", socket)]
}
