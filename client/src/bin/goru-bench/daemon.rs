//! Round trips through goru-daemon: a trivial `session/run` in an existing
//! session, over stdio and over the socket, measured from the client's side
//! (frame written to result read).

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A blocking, one-request-at-a-time client: all a latency bench needs.
struct Wire<R: BufRead, W: Write> {
    reader: R,
    writer: W,
    next_id: u64,
}

impl<R: BufRead, W: Write> Wire<R, W> {
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let body = serde_json::to_vec(
            &json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}),
        )
        .unwrap();
        write!(self.writer, "Content-Length: {}\r\n\r\n", body.len()).unwrap();
        self.writer.write_all(&body).unwrap();
        self.writer.flush().unwrap();
        loop {
            let message = self.read();
            if message["id"] == json!(self.next_id) {
                if let Some(error) = message.get("error") {
                    panic!("{method} failed: {error}");
                }
                return message["result"].clone();
            }
        }
    }

    fn read(&mut self) -> Value {
        let mut length = None;
        loop {
            let mut line = String::new();
            assert!(
                self.reader.read_line(&mut line).unwrap() > 0,
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
        self.reader.read_exact(&mut body).unwrap();
        serde_json::from_slice(&body).unwrap()
    }
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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
    let deadline = Instant::now() + Duration::from_secs(60);
    let stream = loop {
        match std::os::unix::net::UnixStream::connect(&path) {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("the daemon did not listen on {}: {e}", path.display()),
        }
    };
    let mut wire = Wire {
        reader: BufReader::new(stream.try_clone().unwrap()),
        writer: stream,
        next_id: 0,
    };
    let socket = measure(&mut wire, runs);
    vec![("stdio", stdio), ("socket", socket)]
}
