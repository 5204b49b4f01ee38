//! Robustness of the real `goru-daemon` binary: malformed input, oversize
//! frames, clients that do not read, many clients at once, the caps on
//! sessions and connections, clients that vanish in the middle of things,
//! and the socket file's life cycle.

use crate::DAEMON;
use goru_tests::daemon::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// An error response to a message whose id could not be read.
fn assert_null_id_error(message: &Value, code: i64) -> Value {
    assert_eq!(message["jsonrpc"], "2.0", "{message}");
    assert!(
        message.get("id").is_some_and(Value::is_null),
        "the id is null: {message}"
    );
    let error = response_error(message, "a malformed message");
    assert_eq!(error["code"], code, "{message}");
    error
}

/// A message's start, for failure messages about huge ones.
fn clip(message: &Value) -> String {
    message.to_string().chars().take(300).collect()
}

/// A request padded with JSON whitespace to exactly `size` bytes.
fn padded_request(id: &Value, method: &str, size: usize) -> Vec<u8> {
    let head = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}""#);
    let mut body = head.into_bytes();
    assert!(size > body.len() + 1);
    body.resize(size - 1, b' ');
    body.push(b'}');
    body
}

// ---- malformed input ---------------------------------------------------

#[test]
fn a_malformed_header_closes_only_that_connection() {
    let daemon = Daemon::socket(DAEMON, &[]);
    let mut good = daemon.connect();
    good.initialize(&unique_client_id("good"));
    let session = good.create_session(PYTHON);
    good.run(&session, "x = 1");
    let long_line = format!("{}\r\n\r\n", "a".repeat(2000));
    let bad_headers: [&[u8]; 7] = [
        b"Content-Length: abc\r\n\r\n",
        b"Content-Length: -1\r\n\r\n",
        b"Content-Length: 1e3\r\n\r\n",
        b"hello\r\n\r\n",
        b"Content-Type: application/json\r\n\r\n{}",
        b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
        long_line.as_bytes(),
    ];
    for header in bad_headers {
        let mut bad = daemon.connect();
        // Initialized or not, a bad header ends the connection.
        bad.initialize(&unique_client_id("bad"));
        // The daemon may hang up before reading all of it.
        let _ = bad.try_send_raw(header);
        let seen = bad.expect_closed();
        assert_eq!(
            seen.len(),
            1,
            "{:?}: one error, then the end: {seen:?}",
            String::from_utf8_lossy(&header[..header.len().min(40)])
        );
        assert_null_id_error(&seen[0], code::INVALID_REQUEST);
    }
    // Everyone else is still served.
    assert_eq!(good.run(&session, "print(x)")["stdout"], "1\n");
    let mut late = daemon.connect();
    late.initialize(&unique_client_id("late"));
    assert_eq!(
        late.call("run", json!({"language": "python", "code": "print(2)"}))["stdout"],
        "2\n"
    );
}

#[test]
fn a_malformed_header_on_stdio_ends_the_daemon_with_an_error() {
    let (mut daemon, mut client) = Daemon::stdio(DAEMON, &[]);
    client.initialize(&unique_client_id("stdio"));
    let _ = client.try_send_raw(b"Content-Length: abc\r\n\r\n");
    let seen = client.expect_closed();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_null_id_error(&seen[0], code::INVALID_REQUEST);
    let status = daemon.wait_exit(WAIT).expect("the daemon exits");
    assert_eq!(status.code(), Some(1), "{}", daemon.log_text());
}

#[test]
fn bad_bodies_are_answered_and_the_connection_goes_on() {
    let daemon = Daemon::socket(DAEMON, &[]);
    let mut client = daemon.connect();
    client.initialize(&unique_client_id("bodies"));
    // (body, expected code, expected id)
    let cases: Vec<(Vec<u8>, i64, Value)> = vec![
        (b"{not json".to_vec(), code::PARSE_ERROR, Value::Null),
        (b"".to_vec(), code::PARSE_ERROR, Value::Null),
        (vec![0xff, 0xfe, b'{'], code::PARSE_ERROR, Value::Null),
        (
            br#"{"jsonrpc":"2.0","id":1,"method":"session/list""#.to_vec(),
            code::PARSE_ERROR,
            Value::Null,
        ),
        (b"[]".to_vec(), code::INVALID_REQUEST, Value::Null),
        (
            br#"[{"jsonrpc":"2.0","id":2,"method":"session/list"}]"#.to_vec(),
            code::INVALID_REQUEST,
            Value::Null,
        ),
        (b"3".to_vec(), code::INVALID_REQUEST, Value::Null),
        (b"\"text\"".to_vec(), code::INVALID_REQUEST, Value::Null),
        (
            br#"{"id":3,"method":"session/list"}"#.to_vec(),
            code::INVALID_REQUEST,
            json!(3),
        ),
        (
            br#"{"jsonrpc":"1.0","id":"four","method":"session/list"}"#.to_vec(),
            code::INVALID_REQUEST,
            json!("four"),
        ),
        (
            br#"{"jsonrpc":"2.0","id":1.5,"method":"session/list"}"#.to_vec(),
            code::INVALID_REQUEST,
            Value::Null,
        ),
        (
            br#"{"jsonrpc":"2.0","id":{"a":1},"method":"session/list"}"#.to_vec(),
            code::INVALID_REQUEST,
            Value::Null,
        ),
        (
            br#"{"jsonrpc":"2.0","id":5,"method":7}"#.to_vec(),
            code::INVALID_REQUEST,
            json!(5),
        ),
        (
            br#"{"jsonrpc":"2.0","id":6,"method":"session/list","extra":true}"#.to_vec(),
            code::INVALID_REQUEST,
            json!(6),
        ),
        (
            br#"{"jsonrpc":"2.0","id":7,"method":"session/list","params":[1]}"#.to_vec(),
            code::INVALID_PARAMS,
            json!(7),
        ),
        (
            br#"{"jsonrpc":"2.0","id":8,"method":"session/create","params":"python"}"#.to_vec(),
            code::INVALID_PARAMS,
            json!(8),
        ),
        (
            br#"{"jsonrpc":"2.0","id":9}"#.to_vec(),
            code::INVALID_REQUEST,
            json!(9),
        ),
    ];
    for (body, code, id) in cases {
        client.send_raw(&frame(&body));
        let message = client.recv();
        let what = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(message["id"], id, "{what}: {message}");
        let error = response_error(&message, &what);
        assert_eq!(error["code"], code, "{what}: {message}");
        // The connection still works.
        let list = client.call("session/list", Value::Null);
        assert_eq!(list["sessions"], json!([]), "after {what}");
    }
    // A response to a request the daemon never sent is ignored.
    client.send(&json!({"jsonrpc": "2.0", "id": "goru-999", "result": 1}));
    client.send(&json!({"jsonrpc": "2.0", "id": 12, "error": {"code": 1, "message": "x"}}));
    let id = client.start("session/list", Value::Null);
    let next = client.recv();
    assert_eq!(next["id"], id, "nothing answers a stray response: {next}");
}

#[test]
fn bad_params_are_refused_naming_the_field() {
    let daemon = Daemon::socket(DAEMON, &[]);
    let mut client = daemon.connect();
    let mut unnamed = Vec::new();
    // initialize's own params first.
    for (params, field) in [
        (json!({"protocolVersion": 1}), "clientId"),
        (json!({"clientId": "abc"}), "protocolVersion"),
        (
            json!({"clientId": "abc", "protocolVersion": 1, "color": "red"}),
            "color",
        ),
        (
            json!({"clientId": "abc", "protocolVersion": "1"}),
            "protocolVersion",
        ),
        (json!({"clientId": 7, "protocolVersion": 1}), "clientId"),
        (
            json!({"clientId": "abc", "protocolVersion": 1, "hostFunctions": "add"}),
            "hostFunctions",
        ),
    ] {
        let error = client.expect_error("initialize", params.clone(), code::INVALID_PARAMS);
        let message = error["message"].as_str().unwrap();
        if !message.contains(field) {
            unnamed.push(format!("initialize {params}: {message}"));
        }
    }
    client.initialize(&unique_client_id("params"));
    let session = client.create_session(PYTHON);
    let cases = [
        // Missing fields.
        ("session/create", json!({}), "language"),
        ("session/run", json!({"code": "1"}), "sessionId"),
        ("session/run", json!({"sessionId": session}), "code"),
        ("session/close", json!({}), "sessionId"),
        ("run", json!({"language": "python"}), "code"),
        // Unknown fields.
        (
            "session/create",
            json!({"language": "python", "lang": "x"}),
            "lang",
        ),
        (
            "session/run",
            json!({"sessionId": session, "code": "1", "timeout": 5}),
            "timeout",
        ),
        (
            "run",
            json!({"language": "python", "code": "1", "sessionId": session}),
            "sessionId",
        ),
        ("shutdown", json!({"now": true}), "now"),
        // Wrong types.
        ("session/create", json!({"language": 5}), "language"),
        ("session/create", json!({"language": "cobol"}), "cobol"),
        (
            "session/create",
            json!({"language": "python", "limits": {"timeoutMs": "5"}}),
            "timeoutMs",
        ),
        (
            "session/create",
            json!({"language": "python", "limits": {"timeoutMs": -5}}),
            "timeoutMs",
        ),
        (
            "session/create",
            json!({"language": "python", "argv": "x"}),
            "argv",
        ),
        (
            "session/run",
            json!({"sessionId": 5, "code": "1"}),
            "sessionId",
        ),
        (
            "session/run",
            json!({"sessionId": session, "code": ["1"]}),
            "code",
        ),
        (
            "session/run",
            json!({"sessionId": session, "code": "1", "stream": "yes"}),
            "stream",
        ),
        (
            "session/run",
            json!({"sessionId": session, "code": "1", "mode": 3}),
            "mode",
        ),
        ("session/close", json!({"sessionId": null}), "sessionId"),
    ];
    for (method, params, field) in cases {
        let error = client.expect_error(method, params.clone(), code::INVALID_PARAMS);
        let message = error["message"].as_str().unwrap();
        if !message.contains(field) {
            unnamed.push(format!("{method} {params}: {message}"));
        }
    }
    // Nothing was created by any of them, and the session is untouched.
    assert_eq!(
        client.call("session/list", Value::Null)["sessions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(client.run(&session, "print(1)")["stdout"], "1\n");
    assert!(
        unnamed.is_empty(),
        "InvalidParams messages that do not name the field:\n{}",
        unnamed.join("\n")
    );
}

#[test]
fn an_oversize_frame_is_refused_and_skipped() {
    let daemon = Daemon::socket(DAEMON, &["--max-frame", "64KiB"]);
    let mut client = daemon.connect();
    let init = client.initialize(&unique_client_id("big"));
    assert_eq!(init["limits"]["maxFrameBytes"], 64 * 1024);
    client.send_raw(&frame(&padded_request(&json!(99), "session/list", 1 << 20)));
    let message = client.recv();
    let error = assert_null_id_error(&message, code::INVALID_REQUEST);
    assert_eq!(error["data"]["limit"], "maxFrameBytes", "{error}");
    assert_eq!(error["data"]["max"], 64 * 1024, "{error}");
    // The stream is still in sync: a request just under the limit works...
    client.send_raw(&frame(&padded_request(
        &json!(100),
        "session/list",
        64 * 1024,
    )));
    let response = client.recv();
    assert_eq!(response["id"], 100, "{response}");
    assert_eq!(response["result"]["sessions"], json!([]), "{response}");
    // ...and so does an ordinary one; request 99 was never run.
    let session = client.create_session(PYTHON);
    assert_eq!(
        client.run(&session, "print('in sync')")["stdout"],
        "in sync\n"
    );
    assert!(client.take_backlog().is_empty());
}

#[test]
fn a_duplicate_request_id_in_progress_is_refused() {
    let daemon = Daemon::socket(DAEMON, &[]);
    let mut client = daemon.connect();
    client.initialize(&unique_client_id("dup"));
    let session = client.create_session(PYTHON);
    let id = json!(77);
    client.send(&request_value(
        &id,
        "session/run",
        json!({"sessionId": session, "code": "print(call('slow', i=1))"}),
    ));
    let call = client.incoming_request("host/call");
    client.send(&request_value(&id, "session/list", Value::Null));
    let refused = client.response(&id);
    assert_eq!(
        response_error(&refused, "a duplicate id")["code"],
        code::INVALID_REQUEST
    );
    client.respond(&call["id"], json!("first"));
    let first = client.response(&id);
    assert_eq!(first["result"]["stdout"], "first\n", "{first}");
    // Once answered, the id may be used again.
    client.send(&request_value(&id, "session/list", Value::Null));
    assert!(client.response(&id).get("result").is_some());
}

// ---- clients that do not read -----------------------------------------

/// Waits (up to `WAIT`) for a thread to finish; whether it did.
fn finished_within(handle: &thread::JoinHandle<()>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while !handle.is_finished() {
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
    true
}

const MIB_KIB: u64 = 1024;

/// A string request id of 4,000 characters that encodes `n`.
fn long_id(n: i64) -> String {
    format!("{n:0>4000}")
}

#[test]
fn a_client_that_sends_without_reading_is_throttled() {
    let daemon = Daemon::socket(DAEMON, &["--max-in-flight", "4"]);
    let mut conn = RawConn::connect(daemon.socket_path());
    conn.send(&request_value(
        &json!(0),
        "initialize",
        init_params(&unique_client_id("flood")),
    ));
    assert!(conn.recv().get("result").is_some());
    // 2,000 requests whose ids (echoed in each response) make every frame
    // 4 KiB: 8 MiB each way, far more than the socket buffers hold.
    const COUNT: i64 = 2000;
    let mut writer = conn.stream.try_clone().expect("clone");
    let sender = thread::spawn(move || {
        for n in 1..=COUNT {
            let request = request_value(&json!(long_id(n)), "session/list", Value::Null);
            let body = serde_json::to_vec(&request).unwrap();
            writer.write_all(&frame(&body)).expect("write a request");
        }
    });
    // Read nothing for a while: the daemon must stop reading, not buffer.
    thread::sleep(Duration::from_secs(2));
    assert!(
        !sender.is_finished(),
        "the daemon read 8 MiB of requests from a client that reads nothing"
    );
    let stalled = daemon.rss_kib();
    assert!(stalled < 1024 * MIB_KIB, "RSS {stalled} KiB while stalled");
    let mut answered: HashMap<i64, usize> = HashMap::new();
    for _ in 0..COUNT {
        let message = conn.recv();
        assert_eq!(
            message["result"]["sessions"],
            json!([]),
            "{}",
            clip(&message)
        );
        let id = message["id"].as_str().expect("the string id");
        assert_eq!(id.len(), 4000);
        let n: i64 = id.trim_start_matches('0').parse().expect("the id's number");
        *answered.entry(n).or_default() += 1;
    }
    assert!(finished_within(&sender, WAIT), "the writer finished");
    sender.join().expect("the writer");
    assert_eq!(answered.len(), COUNT as usize);
    assert!(
        answered
            .iter()
            .all(|(n, count)| (1..=COUNT).contains(n) && *count == 1)
    );
    // Nothing more comes, and the connection still works.
    conn.send(&request_value(&json!("last"), "session/list", Value::Null));
    assert_eq!(conn.recv()["id"], "last");
    assert!(daemon.rss_kib() < 1024 * MIB_KIB);
}

#[test]
fn large_results_for_a_client_that_does_not_read_stay_bounded() {
    let daemon = Daemon::socket(DAEMON, &["--max-in-flight", "4", "--max-output", "2MiB"]);
    let mut conn = RawConn::connect(daemon.socket_path());
    conn.send(&request_value(
        &json!(0),
        "initialize",
        init_params(&unique_client_id("bigout")),
    ));
    assert!(conn.recv().get("result").is_some());
    let before = daemon.rss_kib();
    // 600 runs printing 1 MiB each: 600 MiB of results, which the daemon
    // must not hold at once while the client reads nothing.
    const COUNT: i64 = 600;
    let mut writer = conn.stream.try_clone().expect("clone");
    let sender = thread::spawn(move || {
        for id in 1..=COUNT {
            let request = request_value(
                &json!(id),
                "run",
                json!({"language": "python", "code": "print('x' * (1 << 20))"}),
            );
            let body = serde_json::to_vec(&request).unwrap();
            writer.write_all(&frame(&body)).expect("write a request");
        }
    });
    thread::sleep(Duration::from_secs(2));
    let stalled = daemon.rss_kib();
    assert!(
        stalled < 512 * MIB_KIB,
        "RSS {stalled} KiB (from {before} KiB) while the client did not read"
    );
    let mut answered: HashMap<i64, usize> = HashMap::new();
    let mut peak = stalled;
    for n in 0..COUNT {
        let message = conn.recv();
        let result = &message["result"];
        assert_eq!(result["outcome"], "ok", "{}", clip(&message));
        assert_eq!(result["stdout"].as_str().map(str::len), Some((1 << 20) + 1));
        *answered
            .entry(message["id"].as_i64().expect("an integer id"))
            .or_default() += 1;
        if n % 100 == 0 {
            peak = peak.max(daemon.rss_kib());
        }
    }
    assert!(finished_within(&sender, WAIT));
    sender.join().expect("the writer");
    assert_eq!(answered.len(), COUNT as usize);
    assert!(answered.values().all(|&n| n == 1));
    assert!(peak < 512 * MIB_KIB, "peak RSS {peak} KiB");
}

// ---- many clients ------------------------------------------------------

#[test]
fn a_hundred_concurrent_clients_each_get_their_own_results() {
    const CLIENTS: usize = 100;
    let daemon = Arc::new(Daemon::socket(
        DAEMON,
        &["--max-sessions", "100", "--max-sessions-per-client", "100"],
    ));
    // Every client holds its session at the same time as all the others.
    let holding = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let daemon = daemon.clone();
            let holding = holding.clone();
            thread::spawn(move || {
                let mut client = daemon.connect();
                client.initialize(&unique_client_id(&format!("many{n}")));
                let session = client.create_session(PYTHON);
                holding.fetch_add(1, Ordering::SeqCst);
                poll(WAIT, "all clients holding a session", || {
                    (holding.load(Ordering::SeqCst) >= CLIENTS).then_some(())
                });
                let value = 1000 + n;
                client.run(&session, &format!("n = {value}"));
                let result = client.run(&session, "print(n)");
                assert_eq!(result["stdout"], format!("{value}\n"), "client {n}");
                let listed = client.call("session/list", Value::Null);
                assert_eq!(listed["sessions"].as_array().unwrap().len(), 1, "{listed}");
                assert_eq!(
                    client.call("session/close", json!({"sessionId": session})),
                    Value::Null
                );
                client.shutdown_and_exit();
                client.expect_closed();
            })
        })
        .collect();
    let mut failures = Vec::new();
    for (n, handle) in handles.into_iter().enumerate() {
        if let Err(panic) = handle.join() {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("client {n}: {text}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing leaked: one client can now have all 100 sessions, and no more.
    let mut last = daemon.connect();
    let init = last.initialize(&unique_client_id("after-many"));
    assert_eq!(init["limits"]["maxSessions"], 100);
    let mut sessions = Vec::new();
    for _ in 0..CLIENTS {
        sessions.push(last.create_session(PYTHON));
    }
    let error = last.expect_error(
        "session/create",
        json!({"language": "python"}),
        code::LIMIT_EXCEEDED,
    );
    assert_eq!(error["data"]["limit"], "maxSessions", "{error}");
    assert_eq!(last.run(&sessions[99], "print('last')")["stdout"], "last\n");
}

#[test]
fn the_per_client_session_cap() {
    let daemon = Daemon::socket(DAEMON, &["--max-sessions-per-client", "2"]);
    let mut client = daemon.connect();
    client.initialize(&unique_client_id("cap"));
    let first = client.create_session(PYTHON);
    client.create_session(JAVASCRIPT);
    let error = client.expect_error(
        "session/create",
        json!({"language": "python"}),
        code::LIMIT_EXCEEDED,
    );
    assert_eq!(error["data"]["limit"], "maxSessionsPerClient", "{error}");
    assert_eq!(error["data"]["max"], 2, "{error}");
    // A one-shot run needs a sandbox too, and counts while it runs.
    let error = client.expect_error(
        "run",
        json!({"language": "python", "code": "print(1)"}),
        code::LIMIT_EXCEEDED,
    );
    assert_eq!(error["data"]["limit"], "maxSessionsPerClient", "{error}");
    client.call("session/close", json!({"sessionId": first}));
    let third = client.create_session(PYTHON);
    assert_eq!(client.run(&third, "print(3)")["stdout"], "3\n");
    // Another client has its own allowance.
    let mut other = daemon.connect();
    other.initialize(&unique_client_id("cap-other"));
    other.create_session(PYTHON);
    other.create_session(PYTHON);
}

#[test]
fn the_daemon_session_cap_across_clients() {
    let daemon = Daemon::socket(DAEMON, &["--max-sessions", "3"]);
    let mut a = daemon.connect();
    let mut b = daemon.connect();
    a.initialize(&unique_client_id("cap-a"));
    b.initialize(&unique_client_id("cap-b"));
    let a1 = a.create_session(PYTHON);
    a.create_session(PYTHON);
    b.create_session(JAVASCRIPT);
    for client in [&mut a, &mut b] {
        let error = client.expect_error(
            "session/create",
            json!({"language": "python"}),
            code::LIMIT_EXCEEDED,
        );
        assert_eq!(error["data"]["limit"], "maxSessions", "{error}");
        assert_eq!(error["data"]["max"], 3, "{error}");
    }
    a.call("session/close", json!({"sessionId": a1}));
    let b2 = b.create_session(PYTHON);
    assert_eq!(b.run(&b2, "print('b2')")["stdout"], "b2\n");
    let error = a.expect_error(
        "session/create",
        json!({"language": "python"}),
        code::LIMIT_EXCEEDED,
    );
    assert_eq!(error["data"]["limit"], "maxSessions", "{error}");
}

#[test]
fn the_connection_cap() {
    let daemon = Daemon::socket(DAEMON, &["--max-connections", "2"]);
    let mut a = daemon.connect();
    let mut b = daemon.connect();
    a.initialize(&unique_client_id("conn-a"));
    b.initialize(&unique_client_id("conn-b"));
    let mut third = daemon.connect();
    let seen = third.expect_closed();
    assert_eq!(seen.len(), 1, "one error, then the end: {seen:?}");
    let error = assert_null_id_error(&seen[0], code::LIMIT_EXCEEDED);
    assert_eq!(error["data"]["limit"], "maxConnections", "{error}");
    assert_eq!(error["data"]["max"], 2, "{error}");
    // The two connections are unaffected.
    a.call("session/list", Value::Null);
    b.call("session/list", Value::Null);
    // When one leaves, a new connection gets its place.
    a.shutdown_and_exit();
    a.expect_closed();
    let mut fourth = poll(WAIT, "a connection slot to free up", || {
        let mut client = daemon.connect();
        let id = json!("init");
        let init = request_value(&id, "initialize", init_params(&unique_client_id("conn-d")));
        // A refused connection may be closed before this is written.
        let _ = client.try_send_raw(&frame(&serde_json::to_vec(&init).unwrap()));
        let Next::Message(first) = client.next(WAIT) else {
            panic!("neither an answer nor a refusal");
        };
        if first["id"].is_null() {
            let error = assert_null_id_error(&first, code::LIMIT_EXCEEDED);
            assert_eq!(error["data"]["limit"], "maxConnections", "{error}");
            return None;
        }
        assert_eq!(first["id"], id, "{first}");
        assert!(first.get("result").is_some(), "{first}");
        Some(client)
    });
    fourth.call("session/list", Value::Null);
}

// ---- clients that vanish -----------------------------------------------

#[test]
fn a_client_that_disconnects_mid_run_frees_its_session() {
    let daemon = Daemon::socket(
        DAEMON,
        &["--max-sessions", "1", "--reconnect-grace", "200ms"],
    );
    let mut a = daemon.connect();
    a.initialize(&unique_client_id("vanish"));
    let session = a.create_session(PYTHON);
    a.start(
        "session/run",
        json!({"sessionId": session, "code": "while True: pass"}),
    );
    thread::sleep(Duration::from_millis(300));
    drop(a);
    let mut b = daemon.connect();
    b.initialize(&unique_client_id("next"));
    // Well before the run's own 30 s limit.
    let session = poll(Duration::from_secs(15), "the cap freeing up", || {
        let response = b.request("session/create", json!({"language": "python"}));
        match response.get("result") {
            Some(result) => Some(result["sessionId"].as_str().unwrap().to_string()),
            None => {
                assert_eq!(
                    response["error"]["code"],
                    code::LIMIT_EXCEEDED,
                    "{response}"
                );
                None
            }
        }
    });
    assert_eq!(b.run(&session, "print('free')")["stdout"], "free\n");
    // The abandoned loop no longer spins: the daemon is nearly idle.
    let start = daemon.cpu_ticks();
    thread::sleep(Duration::from_secs(2));
    let used = daemon.cpu_ticks() - start;
    assert!(
        used < 100,
        "the daemon used {used} ticks of CPU in 2 s: is the loop still running?"
    );
}

#[test]
fn an_unanswered_host_call_ends_in_a_timeout() {
    let daemon = Daemon::socket(DAEMON, &[]);
    let mut client = daemon.connect();
    client.initialize(&unique_client_id("silent"));
    let session =
        client.create_session_with(json!({"language": "python", "limits": {"timeoutMs": 500}}));
    let run_id = client.start(
        "session/run",
        json!({"sessionId": session, "code": "print(call('slow', i=1))"}),
    );
    let call = client.incoming_request("host/call");
    // Never answered.
    let response = client.response(&run_id);
    let result = &response["result"];
    assert_eq!(result["outcome"], "timeout", "{response}");
    assert_eq!(result["exitCode"], 124);
    assert_eq!(result["sessionAlive"], false);
    // A late answer is ignored.
    client.respond(&call["id"], json!(1));
    let id = client.start("session/list", Value::Null);
    let next = client.recv();
    assert_eq!(next["id"], id, "{next}");
    // Same for a one-shot JavaScript run.
    let run_id = client.start(
        "run",
        json!({
            "language": "javascript",
            "code": "console.log(call('slow', {i: 2}))",
            "limits": {"timeoutMs": 500}
        }),
    );
    client.incoming_request("host/call");
    let response = client.response(&run_id);
    assert_eq!(response["result"]["outcome"], "timeout", "{response}");
}

#[test]
fn a_client_that_disconnects_with_a_host_call_pending() {
    let mut daemon = Daemon::socket(DAEMON, &[]);
    for round in 0..3 {
        let mut a = daemon.connect();
        a.initialize(&unique_client_id(&format!("pending{round}")));
        let session = a.create_session(PYTHON);
        a.start(
            "session/run",
            json!({"sessionId": session, "code": "print(call('add', a=1, b=2))"}),
        );
        a.incoming_request("host/call");
        drop(a);
    }
    thread::sleep(Duration::from_millis(200));
    assert!(daemon.is_running(), "{}", daemon.log_text());
    let mut b = daemon.connect();
    b.initialize(&unique_client_id("after-pending"));
    let session = b.create_session(PYTHON);
    let run_id = b.start(
        "session/run",
        json!({"sessionId": session, "code": "print(call('add', a=2, b=3))"}),
    );
    let call = b.incoming_request("host/call");
    b.respond(&call["id"], json!(5));
    assert_eq!(b.response(&run_id)["result"]["stdout"], "5\n");
}

// ---- the socket file ---------------------------------------------------

#[test]
fn the_socket_file_is_owner_only() {
    let daemon = Daemon::socket(DAEMON, &[]);
    let meta = std::fs::symlink_metadata(daemon.socket_path()).expect("the socket file");
    assert!(meta.file_type().is_socket());
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "mode {:o}",
        meta.permissions().mode()
    );
}

#[test]
fn a_second_daemon_on_the_same_path_is_refused() {
    let daemon = Daemon::socket(DAEMON, &[]);
    let path = daemon.socket_path();
    let (status, stderr) = run_daemon_to_exit(DAEMON, &["--socket".as_ref(), path.as_os_str()]);
    assert!(!status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("another goru-daemon is already listening"),
        "{stderr}"
    );
    // The first daemon and its socket are untouched.
    assert!(path.exists());
    let mut client = daemon.connect();
    client.initialize(&unique_client_id("first"));
}

#[test]
fn a_dead_daemons_socket_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("goru.sock");
    let mut first = Daemon::socket_at(DAEMON, &path, &[]);
    let mut client = first.connect();
    client.initialize(&unique_client_id("dead"));
    first.kill(); // SIGKILL: no chance to remove the file
    client.expect_closed();
    assert!(
        std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_socket()),
        "the dead daemon's socket file is left"
    );
    let second = Daemon::socket_at(DAEMON, &path, &[]);
    let mut client = second.connect();
    client.initialize(&unique_client_id("second"));
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[test]
fn a_path_that_is_not_a_socket_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("precious.txt");
    std::fs::write(&path, "do not delete me").unwrap();
    let (status, stderr) = run_daemon_to_exit(DAEMON, &["--socket".as_ref(), path.as_os_str()]);
    assert!(!status.success(), "{status}: {stderr}");
    assert!(stderr.contains("not a socket"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "do not delete me");
    let subdir = dir.path().join("a-directory");
    std::fs::create_dir(&subdir).unwrap();
    let (status, stderr) = run_daemon_to_exit(DAEMON, &["--socket".as_ref(), subdir.as_os_str()]);
    assert!(!status.success(), "{status}: {stderr}");
    assert!(subdir.is_dir());
}

#[test]
fn sigterm_stops_the_daemon_and_removes_its_socket() {
    let mut daemon = Daemon::socket(DAEMON, &[]);
    let mut client = daemon.connect();
    client.initialize(&unique_client_id("term"));
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(daemon.pid().to_string())
        .status()
        .expect("run kill");
    assert!(status.success());
    let status = daemon.wait_exit(WAIT).expect("the daemon stops on SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", daemon.log_text());
    assert!(
        !daemon.socket_path().exists(),
        "the socket file is removed on a clean stop"
    );
}

// ---- memory per connection ---------------------------------------------

#[test]
fn an_oversize_content_length_is_answered_before_its_body_arrives() {
    let daemon = Daemon::socket(DAEMON, &["--max-frame", "64KiB"]);
    let mut client = daemon.connect();
    client.initialize(&unique_client_id("early"));
    // Only the header: the answer must not wait for a megabyte that may
    // never come.
    client.send_raw(b"Content-Length: 1048576\r\n\r\n");
    let error = assert_null_id_error(&client.recv(), code::INVALID_REQUEST);
    assert_eq!(error["data"]["limit"], "maxFrameBytes", "{error}");
    // The body, when it comes, is skipped: the stream is still in sync.
    client.send_raw(&vec![b' '; 1 << 20]);
    assert_eq!(
        client.call("session/list", Value::Null)["sessions"],
        json!([])
    );
}

/// Whether `message` quotes `long` only as a clip: its first 100
/// characters, then `…`.
fn quotes_a_clip(message: &str, long: &str) -> bool {
    let head: String = long.chars().take(100).collect();
    message.contains(&format!("{head}…")) && !message.contains(&format!("{head}{}", &long[..1]))
}

#[test]
fn errors_quote_only_a_clip_of_what_the_client_sent() {
    let daemon = Daemon::socket(DAEMON, &[]);
    let mut client = daemon.connect();
    client.initialize(&unique_client_id("clip"));
    let long = "x".repeat(2_000_000);
    let mut unknown_field = json!({"language": "python"});
    unknown_field[&long] = json!(1);
    for (method, params) in [
        ("session/create", json!({"language": long})),
        ("session/create", unknown_field),
        (
            "session/create",
            json!({"language": "python", "limits": {"timeoutMs": long}}),
        ),
        ("session/run", json!({"sessionId": long, "code": "1"})),
        ("session/close", json!({"sessionId": long})),
        (long.as_str(), json!({})),
    ] {
        let error = client.call_err(method, params);
        let message = error["message"].as_str().expect("a message");
        assert!(
            message.chars().count() <= 1100,
            "`{}`: a message of {} characters",
            &method[..method.len().min(20)],
            message.len()
        );
        assert!(quotes_a_clip(message, &long), "{message}");
    }
    // A member the envelope does not know.
    let mut request = request_value(&json!("env"), "session/list", Value::Null);
    request[&long] = json!(1);
    client.send(&request);
    let error = response_error(&client.response(&json!("env")), "envelope");
    assert!(
        quotes_a_clip(error["message"].as_str().unwrap(), &long),
        "{error}"
    );
}

#[test]
fn a_client_that_never_reads_cannot_grow_the_daemon_with_errors() {
    let daemon = Daemon::socket(DAEMON, &[]);
    let baseline = daemon.rss_kib();
    let mut after_each = Vec::new();
    let mut peak = baseline;
    // Three clients one after the other: memory must come back between them.
    for round in 0..3 {
        let mut conn = RawConn::connect(daemon.socket_path());
        conn.send(&request_value(
            &json!(0),
            "initialize",
            init_params(&unique_client_id("noread")),
        ));
        assert!(conn.recv().get("result").is_some());
        // 100 `session/create` with a 2 M-character `language`: 200 MB of
        // requests, whose errors once quoted the whole value (12 MiB of
        // JSON each) and waited for a client that reads nothing.
        const COUNT: i64 = 100;
        let mut writer = conn.stream.try_clone().expect("clone");
        let sender = thread::spawn(move || {
            let language = "y".repeat(2_000_000);
            for id in 1..=COUNT {
                let request =
                    request_value(&json!(id), "session/create", json!({"language": language}));
                let body = serde_json::to_vec(&request).unwrap();
                writer.write_all(&frame(&body)).expect("write a request");
            }
        });
        // The daemon reads everything although nothing is read: its
        // answers are small enough to wait in the socket.
        assert!(
            finished_within(&sender, WAIT),
            "round {round}: the daemon stopped reading"
        );
        sender.join().expect("the writer");
        peak = peak.max(daemon.rss_kib());
        for _ in 1..=COUNT {
            let message = conn.recv();
            let error = response_error(&message, "session/create");
            assert_eq!(error["code"], code::INVALID_PARAMS, "{}", clip(&message));
            assert!(
                error["message"].as_str().unwrap().len() < 2048,
                "{}",
                clip(&message)
            );
        }
        drop(conn);
        // Its connection is gone once a new one is served.
        let mut probe = daemon.connect();
        probe.initialize(&unique_client_id("probe"));
        after_each.push(daemon.rss_kib());
    }
    // Margins: 128 MiB for the requests being parsed at once (up to 32 in
    // flight, each body and its parsed value 2 MB apiece, in allocator
    // arenas); 32 MiB between the first client's end and the last's.
    eprintln!("RSS KiB: baseline {baseline}, peak {peak}, after each client {after_each:?}");
    assert!(
        peak < baseline + 128 * MIB_KIB,
        "peak RSS {peak} KiB from {baseline} KiB"
    );
    assert!(
        after_each[2] < after_each[0] + 32 * MIB_KIB,
        "RSS after each client: {after_each:?} KiB"
    );
}

#[test]
fn headers_promising_large_bodies_cost_only_the_bytes_that_arrive() {
    let daemon = Daemon::socket(DAEMON, &[]);
    let mut client = daemon.connect();
    client.initialize(&unique_client_id("promise"));
    // One frame of the largest size first, as a busy daemon has seen:
    // glibc's allocator then serves blocks up to that size from its heap,
    // where a promised body's zeroed allocation is touched (and counted)
    // at once.
    client.send_raw(&frame(&padded_request(
        &json!("large"),
        "session/list",
        16 << 20,
    )));
    assert!(client.response(&json!("large")).get("result").is_some());
    let before = daemon.rss_kib();
    // 50 connections promising 16 MB each, sending 1 KiB of it.
    let promises: Vec<std::os::unix::net::UnixStream> = (0..50)
        .map(|_| {
            let mut stream =
                std::os::unix::net::UnixStream::connect(daemon.socket_path()).expect("connect");
            stream
                .write_all(b"Content-Length: 16000000\r\n\r\n")
                .expect("a header");
            stream.write_all(&[b' '; 1024]).expect("a little body");
            stream
        })
        .collect();
    // Once the daemon has read all that was sent (a header it acts on, and
    // the body's first bytes), and then one more byte of each body: that
    // read comes after whatever the daemon did with the header.
    let all_read = |promises: &[std::os::unix::net::UnixStream]| {
        poll(WAIT, "the daemon to read what was sent", || {
            promises
                .iter()
                .all(|stream| unread_by_peer(stream) == 0)
                .then_some(())
        })
    };
    all_read(&promises);
    for mut stream in &promises {
        stream.write_all(b" ").expect("one more byte");
    }
    all_read(&promises);
    client.call("session/list", Value::Null);
    let after = daemon.rss_kib();
    eprintln!("RSS KiB: before {before}, with 50 promised bodies {after}");
    // Margin 32 MiB: 50 bodies of 64 KiB each are 3 MiB; 50 of 16 MB 800.
    assert!(
        after < before + 32 * MIB_KIB,
        "RSS {after} KiB from {before} KiB"
    );
    drop(promises);
}

// ---- connections before `initialize` -----------------------------------

#[test]
fn a_connection_that_never_initializes_is_closed_after_the_initialize_timeout() {
    let daemon = Daemon::socket(DAEMON, &["--initialize-timeout", "300ms"]);
    let mut client = daemon.connect();
    client.initialize(&unique_client_id("in-time"));
    let mut idle = daemon.connect();
    // Requests other than `initialize` do not count.
    idle.expect_error("session/list", Value::Null, code::NOT_INITIALIZED);
    let seen = idle.expect_closed();
    assert_eq!(seen.len(), 1, "one error, then the end: {seen:?}");
    let error = assert_null_id_error(&seen[0], code::NOT_INITIALIZED);
    assert_eq!(error["data"]["limit"], "initializeTimeoutMs", "{error}");
    assert_eq!(error["data"]["max"], 300, "{error}");
    // The client that initialized in time stays, past the same deadline.
    assert_eq!(
        client.call("session/list", Value::Null)["sessions"],
        json!([])
    );
}

#[test]
fn connections_that_never_initialize_cannot_keep_clients_out() {
    let daemon = Daemon::socket(
        DAEMON,
        &[
            "--max-connections",
            "4",
            "--max-uninitialized",
            "2",
            "--initialize-timeout",
            "10m",
        ],
    );
    let mut first = daemon.connect();
    first.initialize(&unique_client_id("first"));
    // Idle connections, many more than there are places: each new one
    // closes the oldest idle one, so at most two wait at any time.
    let mut idle: Vec<Client> = Vec::new();
    for _ in 0..6 {
        let mut connection = daemon.connect();
        connection.expect_error("session/list", Value::Null, code::NOT_INITIALIZED);
        idle.push(connection);
    }
    for connection in &mut idle[..4] {
        let seen = connection.expect_closed();
        let error = assert_null_id_error(&seen[seen.len() - 1], code::NOT_INITIALIZED);
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("a newer connection needs the place"),
            "{error}"
        );
    }
    // Clients still get in, up to the connection cap, and those in stay.
    let mut second = daemon.connect();
    second.initialize(&unique_client_id("second"));
    // Four connections now: two clients, two idle. A fifth takes an idle
    // one's place.
    let mut third = daemon.connect();
    third.initialize(&unique_client_id("third"));
    for client in [&mut first, &mut second, &mut third] {
        assert_eq!(
            client.call("session/list", Value::Null)["sessions"],
            json!([])
        );
    }
}

// ---- descriptors -------------------------------------------------------

/// Sets the open-file limits of the daemon about to start.
fn limit_open_files(command: &mut std::process::Command, soft: u64, hard: u64) {
    use rustix::process::{Resource, Rlimit, setrlimit};
    use std::os::unix::process::CommandExt;
    #[allow(unsafe_code)]
    // SAFETY: the closure runs between fork and exec; it only calls
    // setrlimit, which is async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(soft),
                    maximum: Some(hard),
                },
            )
            .map_err(std::io::Error::from)
        });
    }
}

#[test]
fn the_daemon_raises_its_open_file_limit_to_the_hard_limit() {
    let daemon = Daemon::socket_with(DAEMON, &[], |command| limit_open_files(command, 512, 4096));
    assert_eq!(
        daemon.open_file_limits(),
        ("4096".to_string(), "4096".to_string())
    );
}

#[test]
fn a_daemon_out_of_descriptors_keeps_serving_once_they_free_up() {
    const LIMIT: u64 = 128;
    let mut daemon = Daemon::socket_with(
        DAEMON,
        &[
            "--max-connections",
            "1000",
            "--max-uninitialized",
            "1000",
            "--initialize-timeout",
            "10m",
        ],
        |command| limit_open_files(command, LIMIT, LIMIT),
    );
    let limit = LIMIT.to_string();
    assert_eq!(daemon.open_file_limits(), (limit.clone(), limit));
    // Connections until the daemon has no descriptor left to accept one.
    let mut held = Vec::new();
    poll(WAIT, "`accept` to run out of descriptors", || {
        for _ in 0..16 {
            held.push(
                std::os::unix::net::UnixStream::connect(daemon.socket_path())
                    .expect("connect (the kernel queues it)"),
            );
        }
        daemon
            .log_text()
            .contains("accepting a connection failed")
            .then_some(())
    });
    assert!(
        daemon.open_fds() as u64 >= LIMIT - 8,
        "{} open",
        daemon.open_fds()
    );
    assert!(daemon.is_running(), "{}", daemon.log_text());
    // Once they free up, clients are served again.
    drop(held);
    let mut client = daemon.connect();
    client.initialize(&unique_client_id("after-emfile"));
    let result = client.call(
        "run",
        json!({"language": "python", "code": "print('served')"}),
    );
    assert_eq!(result["stdout"], "served\n", "{result}");
    assert!(daemon.is_running());
}
