//! The `http` module from Python, against a local server the tests start.
//! Only 127.0.0.1 is ever connected to; other addresses must be refused
//! before any connection is made.

use crate::outcomes;

use goru_runtimes::{
    Capabilities, CapabilityError, Engine, Error, HttpCapability, Language, Limits, Outcome,
    SessionBuilder, StartError,
};
use goru_tests::http_server::TestServer;
use outcomes::{exception, stdout};
use std::time::{Duration, Instant};

fn engine() -> Engine {
    Engine::new().expect("engine")
}

fn builder(http: HttpCapability) -> SessionBuilder {
    let mut builder = SessionBuilder::new(Language::Python);
    builder.capabilities(Capabilities {
        http: Some(http),
        ..Capabilities::none()
    });
    builder
}

fn allowing(hosts: &[&str]) -> SessionBuilder {
    builder(HttpCapability::allowing(hosts.iter().copied()))
}

async fn run(engine: &Engine, builder: &SessionBuilder, code: &str) -> Outcome {
    engine.run_once(builder, code, "<test>").await.expect("run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_text_json_and_bytes() {
    let server = TestServer::start();
    let base = server.origin();
    let engine = engine();
    let code = format!(
        r#"
r = http.get("{base}/text")
print(r.status_code, r.ok, r.text, r.headers["Content-Type"], r.url == "{base}/text")
print(http.get("{base}/json").json())
r = http.get("{base}/bytes")
print(r.content == bytes(range(256)), type(r.content).__name__, len(r.text) > 0)
print(http.get("{base}/echo", params={{"q": "a b"}}).headers["x-method"], repr(r))
"#
    );
    let out = stdout(&run(&engine, &allowing(&[&base]), &code).await);
    assert_eq!(
        out,
        "200 True hello, wörld text/plain; charset=utf-8 True\n\
         {'n': 1, 'list': [1, 2], 's': 'é'}\n\
         True bytes True\n\
         GET <Response [200]>\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_json_and_bytes_both_ways() {
    let server = TestServer::start();
    let base = server.origin();
    let engine = engine();
    let code = format!(
        r#"
r = http.post("{base}/echo", json={{"a": [1, 2], "b": "ü"}})
print(r.json(), r.headers["content-type"], r.headers["x-method"])
payload = bytes(range(256)) * 4
r = http.post("{base}/echo", data=payload, headers={{"X-Test": "yes"}})
print(r.content == payload, r.headers.get("x-test-echo"))
for method in (http.put, http.patch, http.delete):
    r = method("{base}/echo", data="body")
    print(r.headers["x-method"], r.text)
r = http.request("post", "{base}/echo", data={{"k": "v w"}})
print(r.text, r.headers["content-type"])
"#
    );
    let out = stdout(&run(&engine, &allowing(&[&base]), &code).await);
    assert_eq!(
        out,
        "{'a': [1, 2], 'b': 'ü'} application/json POST\n\
         True yes\n\
         PUT body\n\
         PATCH body\n\
         DELETE body\n\
         k=v+w application/x-www-form-urlencoded\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_headers_and_error_statuses() {
    let server = TestServer::start();
    let base = server.origin();
    let engine = engine();
    let code = format!(
        r#"
h = http.get("{base}/headers").headers
print(h.get("set-cookie"), h.get_all("Set-Cookie"), h.get_all("X-MULTI"), h.get_all("nope"))
print([pair for pair in h.items() if pair[0] in ("set-cookie", "x-multi")])
print("SET-COOKIE" in h, h.get("missing", "dflt"), len(h.get_all("x-multi")))
r = http.get("{base}/status/404")
print(r.status_code, r.ok, r.text)
try:
    r.raise_for_status()
except http.HTTPError as e:
    print("HTTPError", e.response.status_code)
print(http.get("{base}/status/500").ok, http.get("{base}/status/204").ok)
"#
    );
    let out = stdout(&run(&engine, &allowing(&[&base]), &code).await);
    assert_eq!(
        out,
        "a=1 ['a=1', 'b=2'] ['one', 'two'] []\n\
         [('set-cookie', 'a=1'), ('set-cookie', 'b=2'), ('x-multi', 'one'), ('x-multi', 'two')]\n\
         True dflt 2\n\
         404 False status page\n\
         HTTPError 404\n\
         False True\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_unless_hosts_are_allowed() {
    let engine = engine();
    for builder in [SessionBuilder::new(Language::Python), allowing(&[])] {
        let outcome = run(&engine, &builder, "http.get('http://127.0.0.1:9/')").await;
        let (kind, message) = exception(&outcome);
        assert_eq!(kind, "PermissionError");
        assert!(message.contains("`--allow-host HOST`"), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_entries_stop_the_session_from_starting() {
    let engine = engine();
    let builder = allowing(&["ftp://api.example.com"]);
    match builder.start(&engine).await {
        Err(StartError::Engine(Error::Capability(err @ CapabilityError::Http(_)))) => {
            assert!(err.to_string().contains("`ftp://api.example.com`"), "{err}");
        }
        Err(other) => panic!("expected a bad-entry error, got {other:?}"),
        Ok(_) => panic!("a bad entry must stop the session from starting"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_allowed_port_and_address_are_reached() {
    let server = TestServer::start();
    let other = TestServer::silent();
    let base = server.origin();
    let engine = engine();
    let builder = allowing(&[&base]);
    for url in [
        format!("http://127.0.0.1:{}/text", other.port),
        format!("http://localhost:{}/text", server.port),
        "http://10.0.0.1/".to_string(),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://[::1]/".to_string(),
        format!("https://127.0.0.1:{}/text", server.port),
    ] {
        let outcome = run(&engine, &builder, &format!("http.get({url:?})")).await;
        let (kind, message) = exception(&outcome);
        assert_eq!(kind, "PermissionError", "{url}: {message}");
        assert!(message.contains("--allow-host"), "{url}: {message}");
    }
    let outcome = run(
        &engine,
        &builder,
        "http.get('http://169.254.169.254/latest/meta-data/')",
    )
    .await;
    assert!(exception(&outcome).1.contains("cloud metadata"));
    assert_eq!(
        other.connection_count(),
        0,
        "nothing may reach the other port"
    );

    // A listed name that resolves to a loopback address is refused at the
    // resolver: only an address listed literally may be connected to.
    let before = server.connection_count();
    let by_name = allowing(&[&format!("http://localhost:{}", server.port)]);
    let outcome = run(
        &engine,
        &by_name,
        &format!("http.get('http://localhost:{}/text')", server.port),
    )
    .await;
    let (kind, message) = exception(&outcome);
    assert_eq!(kind, "PermissionError", "{message}");
    assert!(
        message.contains("`localhost` resolves to 127.0.0.1, a loopback address")
            && message.contains(&format!("`--allow-host http://127.0.0.1:{}`", server.port)),
        "{message}"
    );
    assert_eq!(
        server.connection_count(),
        before,
        "refused before connecting"
    );

    // With the address listed literally as well, the name may reach it.
    let both = allowing(&[&format!("http://localhost:{}", server.port), &base]);
    let outcome = run(
        &engine,
        &both,
        &format!(
            "print(http.get('http://localhost:{}/text').text)",
            server.port
        ),
    )
    .await;
    assert_eq!(stdout(&outcome), "hello, wörld\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_failures_are_connection_errors() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let engine = engine();
    let outcome = run(
        &engine,
        &allowing(&[&base]),
        &format!("http.get('{base}/')"),
    )
    .await;
    let (kind, message) = exception(&outcome);
    assert_eq!(kind, "ConnectionError", "{message}");
    assert!(
        message.starts_with(&format!("http: could not connect to `{base}/`: ")),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_redirect_is_checked() {
    let server = TestServer::start();
    let other = TestServer::silent();
    let base = server.origin();
    let engine = engine();
    let builder = allowing(&[&base]);

    let code = format!(
        r#"
r = http.get("{base}/redirect?to=/text")
print(r.status_code, r.url, r.text)
r = http.post("{base}/redirect?to=%2Fecho", data="x")
print(r.headers["x-method"])
"#
    );
    assert_eq!(
        stdout(&run(&engine, &builder, &code).await),
        format!("200 {base}/text hello, wörld\nGET\n")
    );

    for target in [
        format!("http://127.0.0.1:{}/text", other.port),
        "http://10.0.0.1/".to_string(),
        "http://evil.example/".to_string(),
    ] {
        let code = format!(
            "from urllib.parse import quote\nhttp.get('{base}/redirect?to=' + quote({target:?}, safe=''))"
        );
        let outcome = run(&engine, &builder, &code).await;
        let (kind, message) = exception(&outcome);
        assert_eq!(kind, "PermissionError", "{target}: {message}");
        assert!(message.contains("redirected from"), "{target}: {message}");
    }
    assert_eq!(
        other.connection_count(),
        0,
        "a refused redirect never connects"
    );

    // A Location that is not an http(s) URL is not followed at all.
    let code = format!(
        "r = http.get('{base}/redirect?to=file%3A%2F%2F%2Fetc%2Fpasswd')\n\
         print(r.status_code, r.headers['location'], r.content)"
    );
    assert_eq!(
        stdout(&run(&engine, &builder, &code).await),
        "302 file:///etc/passwd b''\n"
    );

    let outcome = run(&engine, &builder, &format!("http.get('{base}/loop')")).await;
    let (kind, message) = exception(&outcome);
    assert_eq!(kind, "ValueError", "{message}");
    assert!(message.contains("more than 5 redirects"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_capped_with_clear_errors() {
    let server = TestServer::start();
    let base = server.origin();
    let engine = engine();
    let builder = builder(HttpCapability {
        max_request_bytes: 100,
        max_response_bytes: 1000,
        ..HttpCapability::allowing([base.clone()])
    });
    let code = format!(
        r#"
print(len(http.get("{base}/big?n=1000").content), len(http.get("{base}/chunked?n=1000").content))
print(len(http.post("{base}/echo", data=b"z" * 100).content))
for url in ("{base}/big?n=1001", "{base}/chunked?n=5000"):
    try:
        http.get(url)
    except ValueError as e:
        print("ValueError", e)
try:
    http.post("{base}/echo", data=b"z" * 101)
except ValueError as e:
    print("ValueError", e)
"#
    );
    let out = stdout(&run(&engine, &builder, &code).await);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["1000 1000", "100"], "{out}");
    assert!(
        lines[2].starts_with("ValueError") && lines[2].contains("larger than 1000 bytes"),
        "{out}"
    );
    assert!(
        lines[3].contains("/chunked?n=5000` is larger than 1000 bytes"),
        "{out}"
    );
    assert!(
        lines[4].contains("request body of 101 bytes is larger than the limit of 100"),
        "{out}"
    );

    // With the default limits a body must also fit one host call's result.
    let default = allowing(&[&base]);
    let code = format!(
        "try:\n    http.get('{base}/big?n=900000')\nexcept ValueError as e:\n    print(e)\n\
         try:\n    http.post('{base}/echo', data=b'z' * 900000)\nexcept ValueError as e:\n    print(e)\n\
         print(len(http.get('{base}/big?n=700000').content))"
    );
    let out = stdout(&run(&engine, &default, &code).await);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains("host-call payload limit is 1048576"),
        "{out}"
    );
    assert!(
        lines[1].contains("arguments of `goru:http.request`")
            && lines[1].contains("more than the limit of 1048576"),
        "{out}"
    );
    assert_eq!(lines[2], "700000", "{out}");

    // Raising the payload limit lets the http limit decide.
    let mut large = allowing(&[&base]);
    large.limits(Limits {
        max_host_payload_bytes: 16 << 20,
        ..Limits::default()
    });
    let code = format!("print(len(http.get('{base}/big?n=3000000').content))");
    assert_eq!(stdout(&run(&engine, &large, &code).await), "3000000\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_time_out() {
    let server = TestServer::start();
    let base = server.origin();
    let engine = engine();
    let builder = builder(HttpCapability {
        timeout: Duration::from_millis(600),
        ..HttpCapability::allowing([base.clone()])
    });
    let code = format!(
        r#"
import time
for timeout in (0.3, None, 100):
    start = time.monotonic()
    try:
        http.get("{base}/hang", timeout=timeout)
    except TimeoutError as e:
        print(type(e).__name__, "did not answer" in str(e), time.monotonic() - start)
"#
    );
    let started = Instant::now();
    let out = stdout(&run(&engine, &builder, &code).await);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    // `timeout=0.3`; then the capability's 600 ms, which `timeout=100`
    // cannot lengthen.
    for (line, expected) in lines.iter().zip([0.3, 0.6, 0.6]) {
        let (what, elapsed) = line.rsplit_once(' ').unwrap();
        assert_eq!(what, "TimeoutError True", "{out}");
        let elapsed: f64 = elapsed.parse().unwrap();
        assert!(
            (expected..expected + 0.25).contains(&elapsed),
            "a {expected} s timeout took {elapsed} s"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gathered_requests_run_concurrently() {
    let server = TestServer::start();
    let base = server.origin();
    let engine = engine();
    let code = format!(
        r#"
import asyncio, time
async def main():
    return await asyncio.gather(*(http.async_get("{base}/slow?ms=200") for _ in range(3)))
start = time.monotonic()
responses = asyncio.run(main())
elapsed = time.monotonic() - start
print([r.text for r in responses], elapsed)
"#
    );
    let out = stdout(&run(&engine, &allowing(&[&base]), &code).await);
    let (texts, elapsed) = out.trim().rsplit_once(' ').unwrap();
    assert_eq!(texts, "['slow', 'slow', 'slow']");

    // Errors reach the awaiting task with their own types.
    let code = format!(
        r#"
import asyncio
async def main():
    return await asyncio.gather(
        http.async_post("{base}/echo", json=[1]),
        http.async_get("http://10.0.0.1/"),
        http.async_request("CONNECT", "{base}/"),
        return_exceptions=True,
    )
print([type(r).__name__ for r in asyncio.run(main())])
"#
    );
    let out_errors = stdout(&run(&engine, &allowing(&[&base]), &code).await);
    assert_eq!(
        out_errors,
        "['Response', 'PermissionError', 'ValueError']\n"
    );
    let elapsed: f64 = elapsed.parse().unwrap();
    assert!(
        // One after another they would take 0.6 s.
        (0.2..0.5).contains(&elapsed),
        "three 200 ms requests took {elapsed} s"
    );
}
