//! A small HTTP/1.1 server on 127.0.0.1 for the `http` tests (engine and
//! CLI): plain threads and std sockets, one request per connection.
//!
//! Routes:
//! - `/text`, `/json`, `/bytes` (every byte value 0..=255);
//! - `/echo`: the request body back, with its method in `x-method` and its
//!   content type as the content type;
//! - `/headers`: `set-cookie` and `x-multi` each sent twice;
//! - `/status/N`: status N;
//! - `/redirect?to=URL` (302), `/loop` (302 to itself);
//! - `/big?n=N` (N bytes with a Content-Length), `/chunked?n=N` (without);
//! - `/slow?ms=N`: answers after N ms; `/hang`: never answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A running server; it lives until the test process ends.
pub struct TestServer {
    pub port: u16,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
}

impl TestServer {
    /// Starts the server with the routes above.
    pub fn start() -> Self {
        Self::spawn(true)
    }

    /// Starts a listener that accepts and counts connections but never
    /// answers: for checking that a refused request never connected.
    pub fn silent() -> Self {
        Self::spawn(false)
    }

    fn spawn(answer: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                if answer {
                    std::thread::spawn(move || {
                        let _ = serve(stream, port);
                    });
                } else {
                    // Hold the socket open without a word.
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_secs(60));
                        drop(stream);
                    });
                }
            }
        });
        TestServer { port, connections }
    }

    /// `http://127.0.0.1:PORT`: the allow-list entry and the URL prefix.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    Ok(Request {
        method,
        path: path.to_string(),
        query,
        headers,
        body,
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(
    mut stream: &TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} X\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn serve(stream: TcpStream, port: u16) -> std::io::Result<()> {
    let request = read_request(&stream)?;
    let text = |s: &str| ("Content-Type", s.to_string());
    match request.path.as_str() {
        "/text" => respond(
            &stream,
            200,
            &[text("text/plain; charset=utf-8")],
            "hello, wörld".as_bytes(),
        ),
        "/json" => respond(
            &stream,
            200,
            &[text("application/json")],
            br#"{"n": 1, "list": [1, 2], "s": "\u00e9"}"#,
        ),
        "/bytes" => respond(
            &stream,
            200,
            &[text("application/octet-stream")],
            &(0..=255u8).collect::<Vec<_>>(),
        ),
        "/echo" => {
            let content_type = request
                .header("content-type")
                .unwrap_or("application/octet-stream")
                .to_string();
            let mut headers = vec![
                ("Content-Type", content_type),
                ("X-Method", request.method.clone()),
            ];
            if let Some(value) = request.header("x-test") {
                headers.push(("X-Test-Echo", value.to_string()));
            }
            respond(&stream, 200, &headers, &request.body)
        }
        "/headers" => respond(
            &stream,
            200,
            &[
                ("Set-Cookie", "a=1".into()),
                ("X-Multi", "one".into()),
                ("Set-Cookie", "b=2".into()),
                ("X-Multi", "two".into()),
            ],
            b"",
        ),
        path if path.starts_with("/status/") => {
            let status = path["/status/".len()..].parse().unwrap_or(500);
            respond(&stream, status, &[text("text/plain")], b"status page")
        }
        "/redirect" => {
            let to = request.param("to").unwrap_or("/text").to_string();
            respond(&stream, 302, &[("Location", to)], b"")
        }
        "/loop" => respond(
            &stream,
            302,
            &[("Location", format!("http://127.0.0.1:{port}/loop"))],
            b"",
        ),
        "/big" => {
            let n = request.param("n").and_then(|n| n.parse().ok()).unwrap_or(0);
            respond(&stream, 200, &[text("text/plain")], &vec![b'x'; n])
        }
        "/chunked" => {
            let n: usize = request.param("n").and_then(|n| n.parse().ok()).unwrap_or(0);
            let mut out = &stream;
            out.write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            )?;
            let mut left = n;
            while left > 0 {
                let size = left.min(1000);
                out.write_all(format!("{size:x}\r\n").as_bytes())?;
                out.write_all(&vec![b'y'; size])?;
                out.write_all(b"\r\n")?;
                left -= size;
            }
            out.write_all(b"0\r\n\r\n")?;
            out.flush()
        }
        "/slow" => {
            let ms = request
                .param("ms")
                .and_then(|n| n.parse().ok())
                .unwrap_or(200);
            std::thread::sleep(Duration::from_millis(ms));
            respond(&stream, 200, &[text("text/plain")], b"slow")
        }
        "/hang" => {
            std::thread::sleep(Duration::from_secs(60));
            Ok(())
        }
        _ => respond(&stream, 404, &[text("text/plain")], b"no such route"),
    }
}
