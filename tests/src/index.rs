//! Test support for `goru-packages`: wheels built in memory and a local
//! package index on 127.0.0.1, so no test needs the network.
//!
//! - [`Wheel`] builds `.whl` archives, including broken or hostile ones
//!   (a tampered RECORD, entries outside the install root, symlinks).
//! - [`Index`] serves a PEP 691 (JSON) or PEP 503 (HTML) simple index and the
//!   files it links to, and records every request path it sees.

use std::io::{Cursor, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

// ---------------------------------------------------------------------------
// Names and hashes
// ---------------------------------------------------------------------------

/// PEP 503 normalization: lowercase, each run of `-`, `_` and `.` becomes one `-`.
pub fn normalize(name: &str) -> String {
    replace_separator_runs(name, '-')
}

/// Lowercase `name` and replace each run of `-`, `_` and `.` with `sep`.
fn replace_separator_runs(name: &str, sep: char) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push(sep);
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

/// Lowercase hex SHA-256 of `bytes`, as an index advertises it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The digest as a wheel's RECORD spells it: `sha256=` and the URL-safe
/// base64 of the digest without `=` padding (PEP 376 / PEP 427).
pub fn record_hash(bytes: &[u8]) -> String {
    format!(
        "sha256={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(bytes))
    )
}

// ---------------------------------------------------------------------------
// Wheels
// ---------------------------------------------------------------------------

/// A wheel to build in memory. Start from [`Wheel::new`] and adjust it with
/// the builder methods (or the public fields), then call [`Wheel::build`].
#[derive(Clone, Debug)]
pub struct Wheel {
    /// Distribution name as written in METADATA, e.g. `Demo_Pkg`.
    pub name: String,
    /// Version as written in METADATA and the file name, e.g. `1.2.0`.
    pub version: String,
    /// Compatibility tag, e.g. `py3-none-any` or `cp314-cp314-manylinux_2_17_x86_64`.
    pub tag: String,
    /// METADATA `Requires-Dist:` values, one line each.
    pub requires_dist: Vec<String>,
    /// METADATA `Requires-Python:` value.
    pub requires_python: Option<String>,
    /// Archive path and content of each file listed in RECORD. A file at
    /// `<dist_info>/METADATA` or `<dist_info>/WHEEL` replaces the generated
    /// one; a file at `<dist_info>/RECORD` replaces the generated RECORD.
    pub files: Vec<(String, Vec<u8>)>,
    /// WHEEL `Root-Is-Purelib:`.
    pub root_is_purelib: bool,
    /// Entries written verbatim but not listed in RECORD (e.g. `../evil.py`).
    pub unrecorded: Vec<(String, Vec<u8>)>,
    /// Symlink entries (path, target), not listed in RECORD.
    pub symlinks: Vec<(String, String)>,
    /// RECORD lists a wrong sha256 for the first file of `files` (the
    /// generated METADATA when `files` is empty).
    pub tamper_record: bool,
}

impl Wheel {
    /// A pure-Python `py3-none-any` wheel holding one module,
    /// `<module>/__init__.py` with `__version__ = "<version>"`, where
    /// `<module>` is the name lowercased with `-` and `.` turned into `_`.
    pub fn new(name: &str, version: &str) -> Wheel {
        let module = name.to_lowercase().replace(['-', '.'], "_");
        Wheel {
            name: name.to_string(),
            version: version.to_string(),
            tag: "py3-none-any".to_string(),
            requires_dist: Vec::new(),
            requires_python: None,
            files: vec![(
                format!("{module}/__init__.py"),
                format!("__version__ = \"{version}\"\n").into_bytes(),
            )],
            root_is_purelib: true,
            unrecorded: Vec::new(),
            symlinks: Vec::new(),
            tamper_record: false,
        }
    }

    /// Add a `Requires-Dist:` line, e.g. `other>=2,<3`.
    pub fn requires(mut self, dep: &str) -> Self {
        self.requires_dist.push(dep.to_string());
        self
    }

    /// Set `Requires-Python:`, e.g. `>=3.8`.
    pub fn requires_python(mut self, spec: &str) -> Self {
        self.requires_python = Some(spec.to_string());
        self
    }

    /// Set the compatibility tag (used in the file name and WHEEL).
    pub fn tag(mut self, tag: &str) -> Self {
        self.tag = tag.to_string();
        self
    }

    /// Add a recorded file, or replace the content of the file already at `path`
    /// (a zip archive cannot hold two entries of the same name anyway).
    pub fn file(mut self, path: &str, content: impl AsRef<[u8]>) -> Self {
        let content = content.as_ref().to_vec();
        match self.files.iter_mut().find(|(p, _)| p == path) {
            Some(entry) => entry.1 = content,
            None => self.files.push((path.to_string(), content)),
        }
        self
    }

    /// Set WHEEL `Root-Is-Purelib:`.
    pub fn root_is_purelib(mut self, purelib: bool) -> Self {
        self.root_is_purelib = purelib;
        self
    }

    /// Add an entry that is written verbatim but not listed in RECORD.
    pub fn unrecorded(mut self, path: &str, content: impl AsRef<[u8]>) -> Self {
        self.unrecorded
            .push((path.to_string(), content.as_ref().to_vec()));
        self
    }

    /// Add a symlink entry at `path` pointing to `target`, not listed in RECORD.
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.symlinks.push((path.to_string(), target.to_string()));
        self
    }

    /// Make RECORD list a wrong sha256 for the first file.
    pub fn tamper_record(mut self) -> Self {
        self.tamper_record = true;
        self
    }

    /// The distribution part of file names: lowercase, each run of `-`, `_`
    /// and `.` replaced with `_` (wheel file-name escaping).
    fn escaped_name(&self) -> String {
        replace_separator_runs(&self.name, '_')
    }

    /// `{dist}-{version}-{tag}.whl`, e.g. `demo_pkg-1.2.0-py3-none-any.whl`.
    pub fn filename(&self) -> String {
        format!("{}-{}-{}.whl", self.escaped_name(), self.version, self.tag)
    }

    /// `{dist}-{version}.dist-info`, e.g. `demo_pkg-1.2.0.dist-info`.
    pub fn dist_info(&self) -> String {
        format!("{}-{}.dist-info", self.escaped_name(), self.version)
    }

    fn metadata(&self) -> String {
        let mut out = format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
            self.name, self.version
        );
        if let Some(spec) = &self.requires_python {
            out.push_str(&format!("Requires-Python: {spec}\n"));
        }
        for dep in &self.requires_dist {
            out.push_str(&format!("Requires-Dist: {dep}\n"));
        }
        out
    }

    fn wheel_file(&self) -> String {
        let mut out = format!(
            "Wheel-Version: 1.0\nGenerator: goru-test\nRoot-Is-Purelib: {}\n",
            self.root_is_purelib
        );
        for tag in expand_tag(&self.tag) {
            out.push_str(&format!("Tag: {tag}\n"));
        }
        out
    }

    /// The `.whl` bytes. Building the same wheel twice gives the same bytes
    /// (entries carry the fixed 1980-01-01 timestamp), so hashes are stable.
    ///
    /// Panics if the archive cannot be written, e.g. on two entries of the
    /// same name.
    pub fn build(&self) -> Vec<u8> {
        let dist_info = self.dist_info();
        let metadata_path = format!("{dist_info}/METADATA");
        let wheel_path = format!("{dist_info}/WHEEL");
        let record_path = format!("{dist_info}/RECORD");

        let mut recorded = self.files.clone();
        let has = |files: &[(String, Vec<u8>)], path: &str| files.iter().any(|(p, _)| p == path);
        if !has(&recorded, &metadata_path) {
            recorded.push((metadata_path, self.metadata().into_bytes()));
        }
        if !has(&recorded, &wheel_path) {
            recorded.push((wheel_path, self.wheel_file().into_bytes()));
        }
        let custom_record = has(&recorded, &record_path);

        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .last_modified_time(DateTime::default())
            .unix_permissions(0o644);
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        let mut record = String::new();
        for (i, (path, content)) in recorded.iter().enumerate() {
            write_entry(&mut zip, path, content, options);
            if *path == record_path {
                continue;
            }
            let hash = if i == 0 && self.tamper_record {
                // A valid-looking digest of different bytes.
                let mut other = content.clone();
                other.extend_from_slice(b"tampered");
                record_hash(&other)
            } else {
                record_hash(content)
            };
            record.push_str(&format!("{},{hash},{}\n", csv_field(path), content.len()));
        }
        for (path, content) in &self.unrecorded {
            write_entry(&mut zip, path, content, options);
        }
        for (path, target) in &self.symlinks {
            zip.add_symlink(
                path.as_str(),
                target.as_str(),
                SimpleFileOptions::default().last_modified_time(DateTime::default()),
            )
            .unwrap_or_else(|e| panic!("wheel symlink {path:?}: {e}"));
        }
        if !custom_record {
            record.push_str(&format!("{},,\n", csv_field(&record_path)));
            write_entry(&mut zip, &record_path, record.as_bytes(), options);
        }
        zip.finish().expect("finish wheel archive").into_inner()
    }
}

/// Add one file entry. The name goes to `start_file` as given: the zip crate
/// writes it verbatim, so `../evil.py` and `/abs.py` reach the archive
/// unchanged.
fn write_entry(
    zip: &mut ZipWriter<Cursor<Vec<u8>>>,
    path: &str,
    content: &[u8],
    options: SimpleFileOptions,
) {
    zip.start_file(path, options)
        .unwrap_or_else(|e| panic!("wheel entry {path:?}: {e}"));
    zip.write_all(content)
        .unwrap_or_else(|e| panic!("wheel entry {path:?}: {e}"));
}

/// The tags a (possibly compressed) tag set stands for:
/// `py2.py3-none-any` gives `py2-none-any` and `py3-none-any`. Anything that
/// is not three `-`-separated parts is returned as it is.
fn expand_tag(tag: &str) -> Vec<String> {
    let parts: Vec<&str> = tag.split('-').collect();
    let [python, abi, platform] = parts.as_slice() else {
        return vec![tag.to_string()];
    };
    let mut out = Vec::new();
    for p in python.split('.') {
        for a in abi.split('.') {
            for pl in platform.split('.') {
                out.push(format!("{p}-{a}-{pl}"));
            }
        }
    }
    out
}

/// Quote a RECORD (CSV) field when it needs it.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

// ---------------------------------------------------------------------------
// Index
// ---------------------------------------------------------------------------

/// Which simple-repository API an [`Index`] speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// PEP 691 JSON, `application/vnd.pypi.simple.v1+json`.
    Json,
    /// PEP 503 HTML, `text/html`.
    Html,
    /// A page that says it is PEP 691 JSON and is not (a broken index).
    MalformedJson,
}

const JSON_CONTENT_TYPE: &str = "application/vnd.pypi.simple.v1+json";

/// One file an [`Index`] offers.
#[derive(Clone, Debug)]
pub struct IndexFile {
    pub filename: String,
    pub bytes: Vec<u8>,
    /// `None`: advertise the true hex digest. `Some(x)`: advertise `x`
    /// instead (a lying index). `Some("")`: advertise no hash at all.
    pub sha256: Option<String>,
    pub requires_python: Option<String>,
    pub yanked: bool,
}

impl IndexFile {
    /// The built wheel under its file name, with its `Requires-Python`.
    pub fn wheel(w: &Wheel) -> IndexFile {
        IndexFile {
            filename: w.filename(),
            bytes: w.build(),
            sha256: None,
            requires_python: w.requires_python.clone(),
            yanked: false,
        }
    }

    /// Any bytes under any file name (an sdist, a corrupt wheel, ...).
    pub fn raw(filename: &str, bytes: impl Into<Vec<u8>>) -> IndexFile {
        IndexFile {
            filename: filename.to_string(),
            bytes: bytes.into(),
            sha256: None,
            requires_python: None,
            yanked: false,
        }
    }

    /// Advertise `s` as the sha256 (`""`: advertise no hash).
    pub fn with_sha256(mut self, s: &str) -> Self {
        self.sha256 = Some(s.to_string());
        self
    }

    /// Mark the file yanked.
    pub fn yanked(mut self) -> Self {
        self.yanked = true;
        self
    }

    /// Advertise a `requires-python` for the file.
    pub fn requires_python(mut self, s: &str) -> Self {
        self.requires_python = Some(s.to_string());
        self
    }

    /// The hex digest to advertise, if any.
    fn advertised_sha256(&self) -> Option<String> {
        match self.sha256.as_deref() {
            None => Some(sha256_hex(&self.bytes)),
            Some("") => None,
            Some(s) => Some(s.to_string()),
        }
    }

    /// The PEP 503-normalized project the file belongs to.
    fn project(&self) -> String {
        normalize(split_filename(&self.filename).0)
    }

    fn version(&self) -> Option<&str> {
        split_filename(&self.filename).1
    }
}

/// Split a distribution file name into its distribution and version parts:
/// a wheel's name is `dist-version-...`, an sdist's `dist-version.tar.gz`
/// (where `dist` may itself contain `-`). Other names give everything before
/// the first `-` and no version.
fn split_filename(filename: &str) -> (&str, Option<&str>) {
    if let Some(stem) = filename.strip_suffix(".whl") {
        let mut parts = stem.splitn(3, '-');
        let dist = parts.next().unwrap_or(stem);
        return (dist, parts.next());
    }
    let sdist_stem = [".tar.gz", ".zip"]
        .iter()
        .find_map(|ext| filename.strip_suffix(ext));
    if let Some(stem) = sdist_stem
        && let Some((dist, version)) = stem.rsplit_once('-')
    {
        return (dist, Some(version));
    }
    (filename.split('-').next().unwrap_or(filename), None)
}

/// Largest request head the server reads.
const MAX_HEAD: usize = 64 * 1024;

/// What the connection tasks share.
struct State {
    api: Api,
    /// `http://127.0.0.1:PORT`, for the absolute URLs of the JSON API.
    origin: String,
    files: Vec<IndexFile>,
    requests: Arc<Mutex<Vec<String>>>,
}

/// A package index on 127.0.0.1, serving until dropped.
///
/// It runs on the runtime `start` is awaited on. On a current-thread runtime
/// (plain `#[tokio::test]`) it only makes progress while the test awaits, so
/// code under test that blocks the thread on a download needs
/// `#[tokio::test(flavor = "multi_thread")]`.
pub struct Index {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    accept: JoinHandle<()>,
}

impl Index {
    /// Bind 127.0.0.1 on a free port and serve `files` with `api`.
    pub async fn start(api: Api, files: Vec<IndexFile>) -> Index {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(State {
            api,
            origin: format!("http://{addr}"),
            files,
            requests: Arc::clone(&requests),
        });
        let accept = tokio::spawn(async move {
            // Connection tasks live in this set, so aborting the accept task
            // (on drop) also aborts every connection still open.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                // Reap finished connections so the set does not grow.
                while connections.try_join_next().is_some() {}
                connections.spawn(serve(stream, Arc::clone(&state)));
            }
        });
        Index {
            addr,
            requests,
            accept,
        }
    }

    /// The simple index root, `http://127.0.0.1:PORT/simple` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}/simple", self.addr)
    }

    /// The request paths (with any query) seen so far, in order.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.requests).clone()
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Lock, ignoring poisoning: a panicking test thread must not hide the log.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An HTTP response, always sent with `Connection: close`.
struct Response {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Response {
    fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            body: body.into(),
        }
    }

    fn text(status: u16, body: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", format!("{body}\n"))
    }

    fn not_found() -> Response {
        Response::text(404, "not found")
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Unknown",
    }
}

/// Serve one request on `stream`, then close it.
async fn serve(mut stream: TcpStream, state: Arc<State>) {
    let (response, head_only) = match read_head(&mut stream).await {
        Ok(Some(head)) => handle(&state, &head),
        // The client went away before finishing its request.
        Ok(None) => return,
        Err(response) => (response, false),
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(&response.body);
    }
    if stream.write_all(&out).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    // Drain what the client still sends until it closes its side (bounded):
    // closing a socket with unread input makes the kernel send a reset,
    // which can destroy the response before the client has read it.
    let drain = async {
        let mut sink = [0u8; 4096];
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
}

/// Read up to and including the blank line ending the request head.
/// `Ok(None)` when the peer closed first; `Err` with the response to send
/// when the head is too large.
async fn read_head(stream: &mut TcpStream) -> Result<Option<String>, Response> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => n,
        };
        // Only the new bytes and the three before them can complete "\r\n\r\n".
        let search_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find(&buf[search_from..], b"\r\n\r\n") {
            buf.truncate(search_from + end);
            return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
        }
        if buf.len() > MAX_HEAD {
            return Err(Response::text(431, "request head too large"));
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Route a request head; the flag says to send no body (HEAD).
fn handle(state: &State, head: &str) -> (Response, bool) {
    // Only the request line matters: nothing here depends on a header.
    let request_line = head.lines().next().unwrap_or("");
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return (Response::text(400, "malformed request line"), false);
    };
    if !version.starts_with("HTTP/1.") {
        return (Response::text(400, "unsupported HTTP version"), false);
    }
    // Absolute form (`GET http://host/path`), as sent to a proxy.
    let path = match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    lock(&state.requests).push(path.to_string());

    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return (Response::text(405, "only GET and HEAD"), false);
    }
    (route(state, path), head_only)
}

fn route(state: &State, target: &str) -> Response {
    let path = target.split('?').next().unwrap_or(target);
    let Some(path) = percent_decode(path) else {
        return Response::not_found();
    };
    if let Some(rest) = path.strip_prefix("/simple/") {
        let name = rest.strip_suffix('/').unwrap_or(rest);
        if !name.is_empty() && !name.contains('/') {
            return project_page(state, &normalize(name));
        }
    } else if let Some(filename) = path.strip_prefix("/files/")
        && let Some(file) = state.files.iter().find(|f| f.filename == filename)
    {
        return Response::new(200, "application/octet-stream", file.bytes.clone());
    }
    Response::not_found()
}

fn project_page(state: &State, project: &str) -> Response {
    let files: Vec<&IndexFile> = state
        .files
        .iter()
        .filter(|f| f.project() == project)
        .collect();
    if files.is_empty() {
        return Response::not_found();
    }
    match state.api {
        Api::Json => Response::new(200, JSON_CONTENT_TYPE, json_page(state, project, &files)),
        Api::Html => Response::new(200, "text/html", html_page(project, &files)),
        Api::MalformedJson => Response::new(200, JSON_CONTENT_TYPE, "{\"files\": 42}"),
    }
}

/// A PEP 691 project page (api-version 1.1, so with PEP 700's `versions`
/// and `size`).
fn json_page(state: &State, project: &str, files: &[&IndexFile]) -> String {
    let mut versions: Vec<&str> = Vec::new();
    let entries: Vec<serde_json::Value> = files
        .iter()
        .map(|f| {
            if let Some(v) = f.version()
                && !versions.contains(&v)
            {
                versions.push(v);
            }
            let mut hashes = serde_json::Map::new();
            if let Some(h) = f.advertised_sha256() {
                hashes.insert("sha256".to_string(), h.into());
            }
            let mut entry = serde_json::json!({
                "filename": f.filename,
                "url": format!("{}/files/{}", state.origin, percent_encode(&f.filename)),
                "hashes": hashes,
                "yanked": f.yanked,
                "size": f.bytes.len(),
            });
            if let Some(rp) = &f.requires_python {
                entry["requires-python"] = rp.as_str().into();
            }
            entry
        })
        .collect();
    serde_json::json!({
        "meta": {"api-version": "1.1"},
        "name": project,
        "files": entries,
        "versions": versions,
    })
    .to_string()
}

/// A PEP 503 project page. Links are relative (`../../files/...`), so a
/// client has to resolve them against the page's URL.
fn html_page(project: &str, files: &[&IndexFile]) -> String {
    let title = html_escape(project);
    let mut out = format!(
        "<!DOCTYPE html>\n<html>\n<head><title>Links for {title}</title></head>\n<body>\n<h1>Links for {title}</h1>\n"
    );
    for f in files {
        let mut href = format!("../../files/{}", percent_encode(&f.filename));
        if let Some(h) = f.advertised_sha256() {
            href.push_str(&format!("#sha256={h}"));
        }
        out.push_str(&format!("<a href=\"{}\"", html_escape(&href)));
        if let Some(rp) = &f.requires_python {
            out.push_str(&format!(" data-requires-python=\"{}\"", html_escape(rp)));
        }
        if f.yanked {
            out.push_str(" data-yanked=\"\"");
        }
        out.push_str(&format!(">{}</a><br/>\n", html_escape(&f.filename)));
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// Percent-encode a path segment, keeping the unreserved characters and `+`
/// and `!` (common in versions and harmless in a path).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~+!".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decode `%XX` escapes; `None` on a bad escape or a non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
