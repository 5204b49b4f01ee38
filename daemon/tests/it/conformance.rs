//! The protocol's conformance suite, against the real `goru-daemon` binary.
//! Every scenario that makes sense on both transports is written once and
//! run over stdio and over the socket (`<scenario>::stdio`,
//! `<scenario>::socket`); the multi-client scenarios run on the socket only.
//! The protocol's rules that need no process (initialize, unknown methods,
//! invalid params, session list and close, cancel) are checked in process
//! by the daemon's own tests (daemon/src/dispatch_tests.rs).

use crate::DAEMON;
use goru_tests::daemon::*;
use goru_tests::http_server::TestServer;
use serde_json::{Value, json};
use std::thread;
use std::time::Duration;

/// Runs each named scenario `fn(Transport)` once per transport.
macro_rules! over_both_transports {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn stdio() {
                    super::$name(super::Transport::Stdio)
                }
                #[test]
                fn socket() {
                    super::$name(super::Transport::Socket)
                }
            }
        )*
    };
}

over_both_transports!(
    initialize_reports_the_daemon,
    python_session_keeps_state,
    javascript_session_keeps_state,
    host_calls_are_forwarded,
    a_host_call_error_raises_in_the_guest,
    gathered_async_host_calls_arrive_together,
    repl_and_check_complete_modes,
    exceptions_and_exits,
    a_huge_exception_is_cut_to_the_output_limit_in_the_result,
    os_exit_ends_the_run_with_its_code_and_the_session,
    a_timeout_ends_the_session,
    limits_and_capabilities_are_checked,
    max_open_files_is_a_session_limit_capped_by_the_daemon,
    the_operator_policy_bounds_what_clients_may_grant,
    http_allow_entries_are_the_clis,
    packages_reach_python_sessions,
    streaming_sends_output_before_the_result,
    many_small_writes_stream_as_few_notifications,
    a_busy_session_refuses_a_second_run,
    one_shot_runs,
    shutdown_then_exit,
    exit_without_shutdown,
);

#[test]
fn the_tests_use_the_protocols_codes() {
    check_codes_match_the_protocol();
}

fn result_of(response: &Value) -> &Value {
    assert!(
        response.get("error").is_none(),
        "expected a result: {response}"
    );
    &response["result"]
}

fn session_ids(list: &Value) -> Vec<String> {
    list["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("`sessions` is not an array: {list}"))
        .iter()
        .map(|s| s["sessionId"].as_str().expect("a sessionId").to_string())
        .collect()
}

// ---- initialize -------------------------------------------------------

fn initialize_reports_the_daemon(transport: Transport) {
    let (_daemon, mut client) = start(
        DAEMON,
        transport,
        &[
            "--max-sessions",
            "7",
            "--max-sessions-per-client",
            "3",
            "--timeout",
            "5s",
            "--max-frame",
            "1MiB",
            "--max-in-flight",
            "9",
        ],
    );
    let result = client.initialize(&unique_client_id("init"));
    assert_eq!(result["protocolVersion"], 1, "{result}");
    assert_eq!(result["serverInfo"]["name"], "goru-daemon", "{result}");
    assert!(result["serverInfo"]["version"].is_string(), "{result}");
    assert_eq!(result["languages"], json!(["python", "javascript"]));
    assert_eq!(
        result["sessions"],
        json!([]),
        "a new client has no sessions"
    );
    let limits = &result["limits"];
    assert_eq!(limits["maxSessions"], 7, "{limits}");
    assert_eq!(limits["maxSessionsPerClient"], 3, "{limits}");
    assert_eq!(limits["maxFrameBytes"], 1 << 20, "{limits}");
    assert_eq!(limits["maxInFlightRequests"], 9, "{limits}");
    assert!(limits["idleTimeoutMs"].as_u64().is_some_and(|n| n > 0));
    assert!(limits["reconnectGraceMs"].as_u64().is_some_and(|n| n > 0));
    let session = &limits["session"];
    assert_eq!(session["timeoutMs"], 5000, "{limits}");
    for field in [
        "memoryBytes",
        "maxOutputBytes",
        "maxHostCalls",
        "maxHostPayloadBytes",
    ] {
        assert!(
            session[field].as_u64().is_some_and(|n| n > 0),
            "limits.session.{field}: {limits}"
        );
    }
}

// ---- sessions ---------------------------------------------------------

fn python_session_keeps_state(transport: Transport) {
    let (_daemon, mut client) = start(DAEMON, transport, &[]);
    client.initialize(&unique_client_id("py"));
    let session = client.create_session(PYTHON);
    assert!(!session.is_empty());
    let first = client.run(&session, "x = 41");
    assert_eq!(first["outcome"], "ok", "{first}");
    assert_eq!(first["stdout"], "");
    assert_eq!(first["exitCode"], 0);
    assert_eq!(first["sessionAlive"], true);
    assert!(first["durationMs"].as_f64().is_some_and(|d| d >= 0.0));
    let second = client.run(&session, "print(x + 1)");
    assert_eq!(second["outcome"], "ok", "{second}");
    assert_eq!(second["stdout"], "42\n");
    assert_eq!(second["stderr"], "");
    let third = client.run(&session, "import sys\nprint('err', file=sys.stderr)");
    assert_eq!(third["stderr"], "err\n", "{third}");
    assert_eq!(third["stdout"], "");
}

fn javascript_session_keeps_state(transport: Transport) {
    let (_daemon, mut client) = start(DAEMON, transport, &[]);
    client.initialize(&unique_client_id("js"));
    let session = client.create_session(JAVASCRIPT);
    let first = client.run(&session, "globalThis.x = 41");
    assert_eq!(first["outcome"], "ok", "{first}");
    let second = client.run(&session, "console.log(x + 1)");
    assert_eq!(second["outcome"], "ok", "{second}");
    assert_eq!(second["stdout"], "42\n");
}

// ---- host calls -------------------------------------------------------

/// Runs `code` in `session`, answers its one `add` host call with a+b, and
/// returns the run's result.
fn run_answering_add(client: &mut Client, session: &str, code: &str) -> Value {
    let run_id = client.start("session/run", json!({"sessionId": session, "code": code}));
    let call = client.incoming_request("host/call");
    assert!(
        call["id"].is_string(),
        "the daemon's ids are strings: {call}"
    );
    let params = &call["params"];
    assert_eq!(params["name"], "add", "{call}");
    assert_eq!(params["sessionId"], session, "{call}");
    assert_eq!(params["requestId"], run_id, "{call}");
    assert_eq!(params["args"], json!({"a": 2, "b": 3}), "{call}");
    let sum = params["args"]["a"].as_i64().unwrap() + params["args"]["b"].as_i64().unwrap();
    client.respond(&call["id"], json!(sum));
    result_of(&client.response(&run_id)).clone()
}

fn host_calls_are_forwarded(transport: Transport) {
    let (_daemon, mut client) = start(DAEMON, transport, &[]);
    client.initialize(&unique_client_id("host"));
    let python = client.create_session(PYTHON);
    let result = run_answering_add(&mut client, &python, "print(call(\"add\", a=2, b=3))");
    assert_eq!(result["outcome"], "ok", "{result}");
    assert_eq!(result["stdout"], "5\n");
    let javascript = client.create_session(JAVASCRIPT);
    let result = run_answering_add(
        &mut client,
        &javascript,
        "console.log(call(\"add\", {a: 2, b: 3}))",
    );
    assert_eq!(result["outcome"], "ok", "{result}");
    assert_eq!(result["stdout"], "5\n");
    // A name the client did not declare is not forwarded.
    let result = client.run(&python, "call(\"undeclared\", a=1)");
    assert_eq!(result["outcome"], "exception", "{result}");
    assert!(client.take_backlog().is_empty());
}

fn a_host_call_error_raises_in_the_guest(transport: Transport) {
    let (_daemon, mut client) = start(DAEMON, transport, &[]);
    client.initialize(&unique_client_id("hosterr"));
    for (language, code) in [
        (PYTHON, "call(\"add\", a=2, b=3)"),
        (JAVASCRIPT, "call(\"add\", {a: 2, b: 3})"),
    ] {
        let session = client.create_session(language);
        let run_id = client.start("session/run", json!({"sessionId": session, "code": code}));
        let call = client.incoming_request("host/call");
        client.respond_error(&call["id"], 1, "no adding today");
        let result = result_of(&client.response(&run_id)).clone();
        assert_eq!(result["outcome"], "exception", "{language}: {result}");
        assert_eq!(result["exitCode"], 1, "{result}");
        let message = result["exception"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("no adding today"),
            "{language}: the guest sees the client's message: {result}"
        );
        // The session survives its exception.
        assert_eq!(result["sessionAlive"], true, "{result}");
        let probe = if language == PYTHON {
            "print(7)"
        } else {
            "console.log(7)"
        };
        assert_eq!(client.run(&session, probe)["stdout"], "7\n");
    }
}

fn gathered_async_host_calls_arrive_together(transport: Transport) {
    let (_daemon, mut client) = start(DAEMON, transport, &[]);
    client.initialize(&unique_client_id("gather"));
    let session = client.create_session(PYTHON);
    let code = "import asyncio\n\
                async def main():\n    \
                    return await asyncio.gather(async_call(\"slow\", i=1), async_call(\"slow\", i=2))\n\
                print(asyncio.run(main()))";
    let run_id = client.start("session/run", json!({"sessionId": session, "code": code}));
    // Both requests arrive before either is answered.
    let first = client.incoming_request("host/call");
    let second = client.incoming_request("host/call");
    assert_ne!(first["id"], second["id"]);
    let mut seen = [
        first["params"]["args"]["i"].clone(),
        second["params"]["args"]["i"].clone(),
    ];
    seen.sort_by_key(|v| v.as_i64());
    assert_eq!(seen, [json!(1), json!(2)], "{first} {second}");
    for call in [&first, &second] {
        assert_eq!(call["params"]["name"], "slow");
        assert_eq!(call["params"]["requestId"], run_id);
    }
    // Answer in reverse order: each result reaches its own call.
    for call in [&second, &first] {
        let i = call["params"]["args"]["i"].as_i64().unwrap();
        client.respond(&call["id"], json!(i * 10));
    }
    let result = result_of(&client.response(&run_id)).clone();
    assert_eq!(result["outcome"], "ok", "{result}");
    assert_eq!(result["stdout"], "[10, 20]\n");
}

// ---- modes, exceptions, limits ----------------------------------------

fn repl_and_check_complete_modes(transport: Transport) {
    let (_daemon, mut client) = start(DAEMON, transport, &[]);
    client.initialize(&unique_client_id("modes"));
    let session = client.create_session(PYTHON);
    let repl = client.call(
        "session/run",
        json!({"sessionId": session, "code": "1 + 1", "mode": "repl"}),
    );
    assert_eq!(repl["outcome"], "ok", "{repl}");
    assert_eq!(repl["value"], "2", "{repl}");
    let exec = client.run(&session, "1 + 1");
    assert!(
        exec.get("value").is_none(),
        "exec mode has no value: {exec}"
    );
    let incomplete = client.call(
        "session/run",
        json!({"sessionId": session, "code": "def f():", "mode": "checkComplete"}),
    );
    assert_eq!(incomplete["outcome"], "incomplete", "{incomplete}");
    let complete = client.call(
        "session/run",
        json!({"sessionId": session, "code": "x = 1", "mode": "checkComplete"}),
    );
    assert_eq!(complete["outcome"], "ok", "{complete}");
    client.expect_error(
        "session/run",
        json!({"sessionId": session, "code": "1", "mode": "eval"}),
        code::INVALID_PARAMS,
    );
}

fn exceptions_and_exits(transport: Transport) {
    let (_daemon, mut client) = start(DAEMON, transport, &[]);
    client.initialize(&unique_client_id("exc"));
    let session = client.create_session(PYTHON);
    let result = client.run(&session, "1/0");
    assert_eq!(result["outcome"], "exception", "{result}");
    assert_eq!(result["exitCode"], 1);
    assert_eq!(result["sessionAlive"], true);
    let exception = &result["exception"];
    assert_eq!(exception["type"], "ZeroDivisionError", "{result}");
    assert!(exception["message"].is_string());
    let traceback = exception["traceback"].as_str().unwrap_or_default();
    assert!(traceback.contains("line 1"), "{traceback}");
    assert!(traceback.contains("ZeroDivisionError"), "{traceback}");

    let result = client.run(&session, "import sys; sys.exit(3)");
    assert_eq!(result["outcome"], "exit", "{result}");
    assert_eq!(result["exitCode"], 3);
    assert_eq!(result["sessionAlive"], true);
    // Still alive: it runs again, with its state.
    client.run(&session, "y = 5");
    assert_eq!(client.run(&session, "print(y)")["stdout"], "5\n");

    let javascript = client.create_session(JAVASCRIPT);
    let result = client.run(&javascript, "null.x");
    assert_eq!(result["outcome"], "exception", "{result}");
    assert_eq!(result["exception"]["type"], "TypeError", "{result}");
}

fn a_huge_exception_is_cut_to_the_output_limit_in_the_result(transport: Transport) {
    let (_daemon, mut client) = start(DAEMON, transport, &[]);
    client.initialize(&unique_client_id("clip"));
    let session = client
        .create_session_with(json!({"language": "python", "limits": {"maxOutputBytes": 1024}}));
    let result = client.run(&session, "raise Exception('A' * 30_000_000)");
    assert_eq!(result["outcome"], "exception", "{result}");
    assert_eq!(result["clipped"], true, "{result}");
    for field in ["type", "message", "traceback"] {
        let text = result["exception"][field].as_str().unwrap_or_default();
        assert!(text.len() <= 1024, "{field}: {} bytes", text.len());
    }
    // Was a 360 MB frame.
    assert!(result.to_string().len() < 8 << 10);
    assert_eq!(result["sessionAlive"], true);
    let result = client.run(&session, "1/0");
    assert!(result.get("clipped").is_none(), "{result}");
}

fn os_exit_ends_the_run_with_its_code_and_the_session(transport: Transport) {
    let (_daemon, mut client) = start(DAEMON, transport, &[]);
    client.initialize(&unique_client_id("os-exit"));
    let session = client.create_session(PYTHON);
    let result = client.run(&session, "import os; os._exit(4)");
    assert_eq!(result["outcome"], "exit", "{result}");
    assert_eq!(result["exitCode"], 4);
    assert_eq!(result["sessionAlive"], false);
}

fn a_timeout_ends_the_session(transport: Transport) {
    let (_daemon, mut client) = start(DAEMON, transport, &[]);
    client.initialize(&unique_client_id("timeout"));
    let session =
        client.create_session_with(json!({"language": "python", "limits": {"timeoutMs": 300}}));
    let result = client.run(&session, "while True: pass");
    assert_eq!(result["outcome"], "timeout", "{result}");
    assert_eq!(result["exitCode"], 124);
    assert_eq!(result["sessionAlive"], false);
    assert!(result["message"].is_string(), "{result}");
    client.expect_error(
        "session/run",
        json!({"sessionId": session, "code": "print(1)"}),
        code::UNKNOWN_SESSION,
    );
    assert!(!session_ids(&client.call("session/list", Value::Null)).contains(&session));
}

fn limits_and_capabilities_are_checked(transport: Transport) {
    let (_daemon, mut client) = start(DAEMON, transport, &[]);
    client.initialize(&unique_client_id("limits"));
    let error = client.expect_error(
        "session/create",
        json!({"language": "python", "limits": {"memoryBytes": 8u64 << 30}}),
        code::LIMIT_EXCEEDED,
    );
    assert_eq!(error["data"]["limit"], "memoryBytes", "{error}");
    let error = client.expect_error(
        "session/create",
        json!({"language": "python", "limits": {"timeoutMs": 3_600_000}}),
        code::LIMIT_EXCEEDED,
    );
    assert_eq!(error["data"]["limit"], "timeoutMs", "{error}");
    let error = client.expect_error(
        "run",
        json!({"language": "python", "code": "1", "limits": {"memoryBytes": 8u64 << 30}}),
        code::LIMIT_EXCEEDED,
    );
    assert_eq!(error["data"]["limit"], "memoryBytes", "{error}");
    // The limits inside capabilities have the daemon's ceiling too.
    for (capabilities, field) in [
        (
            json!({"fsLimits": {"maxReadBytes": 1u64 << 40}}),
            "fsLimits.maxReadBytes",
        ),
        (
            json!({"kv": {"maxValueBytes": 1u64 << 40}}),
            "kv.maxValueBytes",
        ),
        (
            json!({"http": {"allow": ["https://example.com"], "maxResponseBytes": 1u64 << 40}}),
            "http.maxResponseBytes",
        ),
    ] {
        for (method, mut params) in [
            ("session/create", json!({"language": "python"})),
            ("run", json!({"language": "python", "code": "1"})),
        ] {
            params["capabilities"] = capabilities.clone();
            let error = client.expect_error(method, params, code::LIMIT_EXCEEDED);
            assert_eq!(error["data"]["limit"], field, "{error}");
        }
    }
    // A zero timeout is told in the unit the client wrote.
    let error = client.expect_error(
        "session/create",
        json!({"language": "python", "limits": {"timeoutMs": 0}}),
        code::INVALID_PARAMS,
    );
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("`timeoutMs` 0 is out of range"),
        "{error}"
    );
    assert!(
        message.contains("(milliseconds)") && !message.contains("ns`"),
        "{error}"
    );
    let error = client.expect_error(
        "session/create",
        json!({"language": "python", "capabilities": {"network": true}}),
        code::INVALID_PARAMS,
    );
    assert!(
        error["message"].as_str().unwrap().contains("network"),
        "{error}"
    );
    let error = client.expect_error(
        "session/create",
        json!({"language": "python", "limits": {"cpuMs": 5}}),
        code::INVALID_PARAMS,
    );
    assert!(
        error["message"].as_str().unwrap().contains("cpuMs"),
        "{error}"
    );
    // None of the refusals left a session behind.
    assert_eq!(
        client.call("session/list", Value::Null)["sessions"],
        json!([])
    );
}

/// `maxOpenFiles` is asked for like the other limits: up to the daemon's
/// `--max-open-files`, which is also the default, and the guest meets it.
fn max_open_files_is_a_session_limit_capped_by_the_daemon(transport: Transport) {
    let (_daemon, mut client) = start(DAEMON, transport, &["--max-open-files", "8"]);
    let init = client.initialize(&unique_client_id("open-files"));
    assert_eq!(init["limits"]["session"]["maxOpenFiles"], 8, "{init}");
    for (method, mut params) in [
        ("session/create", json!({"language": "python"})),
        ("run", json!({"language": "python", "code": "1"})),
    ] {
        params["limits"] = json!({"maxOpenFiles": 9});
        let error = client.expect_error(method, params, code::LIMIT_EXCEEDED);
        assert_eq!(
            error["data"],
            json!({"limit": "maxOpenFiles", "max": 8}),
            "{error}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "x").unwrap();
    let host = dir.path().to_str().unwrap();
    let count_opens = "held = []\n\
        try:\n    while len(held) < 100:\n        held.append(open('/data/f'))\n\
        except OSError:\n    pass\nprint(len(held))";
    // (maxOpenFiles asked, files the guest can hold open)
    for (asked, expected) in [(Some(8), "8\n"), (Some(3), "3\n"), (None, "8\n")] {
        let mut params = json!({"language": "python", "capabilities":
            {"mounts": [{"guest": "/data", "host": host, "mode": "ro"}]}});
        if let Some(asked) = asked {
            params["limits"] = json!({"maxOpenFiles": asked});
        }
        let session = client.create_session_with(params);
        let result = client.run(&session, count_opens);
        assert_eq!(result["stdout"], expected, "{asked:?}: {result}");
    }
}

/// With policy flags, capabilities outside them are refused with
/// `CapabilityDenied` naming the rule, at `session/create` and `run`;
/// what they allow works.
fn the_operator_policy_bounds_what_clients_may_grant(transport: Transport) {
    let server = TestServer::start();
    let top = tempfile::tempdir().unwrap();
    let root = top.path().join("root");
    let outside = top.path().join("outside");
    let packages = top.path().join("packages");
    for dir in [&root, &outside, &packages, &root.join("inner")] {
        std::fs::create_dir(dir).unwrap();
    }
    std::fs::write(root.join("inner/greeting.txt"), "inside").unwrap();
    std::fs::write(outside.join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
    let allowed_host = format!("127.0.0.1:{}", server.port);
    let (_daemon, mut client) = start(
        DAEMON,
        transport,
        &[
            "--allow-mount-root",
            root.to_str().unwrap(),
            "--allow-http-host",
            &allowed_host,
            "--allow-packages-dir",
            packages.to_str().unwrap(),
            "--allow-install",
            "attrs",
        ],
    );
    client.initialize(&unique_client_id("policy"));
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let mount = |host: String| json!({"mounts": [{"guest": "/data", "host": host, "mode": "ro"}]});
    // What the policy allows works.
    let session = client.create_session_with(
        json!({"language": "python", "capabilities": mount(path(&root.join("inner")))}),
    );
    let result = client.run(&session, "print(open('/data/greeting.txt').read())");
    assert_eq!(result["stdout"], "inside\n", "{result}");
    let session = client.create_session_with(json!({"language": "python",
        "capabilities": {"http": {"allow": [server.origin()]}}}));
    let code = format!("print(http.get('{}/text').status_code)", server.origin());
    let result = client.run(&session, &code);
    assert_eq!(result["stdout"], "200\n", "{result}");
    client.create_session_with(json!({"language": "python", "capabilities":
        {"packages": {"dir": path(&packages), "allowInstall": ["Attrs"]}, "kv": {}}}));
    // (capabilities, data of the refusal)
    let escape = path(&root.join("escape"));
    let dotdot = format!("{}/../outside", path(&root));
    let rows = [
        (
            mount(path(&outside)),
            json!({"policy": "mountRoots", "path": path(&outside)}),
        ),
        (
            mount(escape.clone()),
            json!({"policy": "mountRoots", "path": escape}),
        ),
        (
            mount(dotdot.clone()),
            json!({"policy": "mountRoots", "path": dotdot}),
        ),
        (
            json!({"http": {"allow": ["api.example.com"]}}),
            json!({"policy": "httpHosts", "entry": "api.example.com"}),
        ),
        (
            json!({"http": {"allow": [format!("127.0.0.1:{}", server.port + 1)]}}),
            json!({"policy": "httpHosts", "entry": format!("127.0.0.1:{}", server.port + 1)}),
        ),
        (
            json!({"packages": {"dir": path(&outside)}}),
            json!({"policy": "packagesDirs", "path": path(&outside)}),
        ),
        (
            json!({"packages": {"dir": path(&packages), "allowInstall": ["attrs", "requests"]}}),
            json!({"policy": "allowInstall", "name": "requests"}),
        ),
        (
            json!({"packages": {"dir": path(&packages), "allowInstall": ["attrs"],
                "indexUrl": format!("{}/simple", server.origin())}}),
            json!({"policy": "indexUrls", "url": format!("{}/simple", server.origin())}),
        ),
    ];
    for (capabilities, data) in rows {
        for (method, mut params) in [
            ("session/create", json!({"language": "python"})),
            ("run", json!({"language": "python", "code": "1"})),
        ] {
            params["capabilities"] = capabilities.clone();
            let error = client.expect_error(method, params, code::CAPABILITY_DENIED);
            assert_eq!(error["data"], data, "{method} {capabilities}: {error}");
        }
    }
    assert_eq!(
        client.call("session/list", Value::Null)["sessions"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

/// A policy flag that cannot be used stops the daemon at start, naming it.
#[test]
fn a_policy_flag_that_cannot_be_used_is_a_usage_error() {
    for (flag, value, expected) in [
        ("--allow-mount-root", "/does/not/exist", "/does/not/exist"),
        (
            "--allow-http-host",
            "ftp://example.com",
            "ftp://example.com",
        ),
        ("--allow-install", "not a name!", "not a name!"),
    ] {
        let words = ["--stdio", flag, value];
        let args: Vec<&std::ffi::OsStr> = words.iter().map(std::ffi::OsStr::new).collect();
        let (status, stderr) = run_daemon_to_exit(DAEMON, &args);
        assert_eq!(status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(
            stderr.contains("error:") && stderr.contains(expected),
            "{flag} {value}: {stderr}"
        );
    }
}

/// The `http` capability's `allow` takes the entries `--allow-host` takes
/// (one parser): Deno's `host[:port]` forms as well as URLs.
fn http_allow_entries_are_the_clis(transport: Transport) {
    let server = TestServer::start();
    let (_daemon, mut client) = start(DAEMON, transport, &[]);
    client.initialize(&unique_client_id("http-allow"));
    let code = format!("print(http.get('{}/text').status_code)", server.origin());
    let with_allow =
        |allow: Value| json!({"language": "python", "capabilities": {"http": {"allow": allow}}});
    // (entries, whether they allow `http://127.0.0.1:PORT/text`)
    let rows = [
        (json!([format!("127.0.0.1:{}", server.port)]), true),
        (json!([server.origin()]), true),
        (
            json!(["api.example.com", format!("127.0.0.1:{}", server.port)]),
            true,
        ),
        (json!([format!("https://127.0.0.1:{}", server.port)]), false),
        (json!(["api.example.com"]), false),
    ];
    for (allow, allowed) in rows {
        let session = client.create_session_with(with_allow(allow.clone()));
        let result = client.run(&session, &code);
        if allowed {
            assert_eq!(result["outcome"], "ok", "{allow}: {result}");
            assert_eq!(result["stdout"], "200\n", "{allow}: {result}");
        } else {
            assert_eq!(result["outcome"], "exception", "{allow}: {result}");
            assert_eq!(result["exception"]["type"], "PermissionError", "{result}");
        }
    }
    let error = client.expect_error(
        "session/create",
        with_allow(json!(["ftp://api.example.com"])),
        code::INVALID_PARAMS,
    );
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("capabilities: invalid allowed host `ftp://api.example.com`")
            && message.contains("`http` or `https`"),
        "{error}"
    );
    assert_eq!(error["data"]["entry"], "ftp://api.example.com", "{error}");
}

fn packages_reach_python_sessions(transport: Transport) {
    let (_daemon, mut client) = start(DAEMON, transport, &[]);
    client.initialize(&unique_client_id("packages"));
    let packages = tempfile::tempdir().unwrap();
    std::fs::create_dir(packages.path().join("greeting")).unwrap();
    std::fs::write(
        packages.path().join("greeting/__init__.py"),
        "WORD = 'hello'\n",
    )
    .unwrap();
    let dir = packages.path().to_str().unwrap();
    let session = client.call(
        "session/create",
        json!({"language": "python", "capabilities": {"packages": {"dir": dir}}}),
    )["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let result = client.run(
        &session,
        "import greeting\nprint(greeting.WORD)\ntry:\n    install_pkg('attrs')\nexcept PermissionError as e:\n    print('refused')",
    );
    assert_eq!(result["stdout"], "hello\nrefused\n", "{result}");
    // Relative directories mean nothing to the daemon; JavaScript has no packages.
    let error = client.expect_error(
        "session/create",
        json!({"language": "python", "capabilities": {"packages": {"dir": "pkgs"}}}),
        code::INVALID_PARAMS,
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("must be absolute"),
        "{error}"
    );
    let error = client.expect_error(
        "session/create",
        json!({"language": "javascript", "capabilities": {"packages": {"dir": dir}}}),
        code::INVALID_PARAMS,
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Python sessions only"),
        "{error}"
    );
    let error = client.expect_error(
        "session/create",
        json!({"language": "python", "capabilities": {"packages": {"dir": dir, "allowInstall": ["../x"]}}}),
        code::INVALID_PARAMS,
    );
    assert!(
        error["message"].as_str().unwrap().contains("allow-list"),
        "{error}"
    );
}

// ---- streaming and cancellation ---------------------------------------

fn streaming_sends_output_before_the_result(transport: Transport) {
    let (_daemon, mut client) = start(DAEMON, transport, &[]);
    client.initialize(&unique_client_id("stream"));
    let session = client.create_session(PYTHON);
    let code =
        "import sys\nfor i in range(3):\n    print('line', i)\nprint('oops', file=sys.stderr)";
    let run_id = client.start(
        "session/run",
        json!({"sessionId": session, "code": code, "stream": true}),
    );
    let mut stdout = String::new();
    let mut stderr = String::new();
    let result = loop {
        let message = client.recv();
        if is_response(&message) {
            assert_eq!(message["id"], run_id, "{message}");
            break result_of(&message).clone();
        }
        assert_eq!(message["method"], "run/output", "{message}");
        assert!(message.get("id").is_none(), "a notification: {message}");
        let params = &message["params"];
        assert_eq!(params["sessionId"], session);
        assert_eq!(params["requestId"], run_id);
        let data = params["data"].as_str().expect("data");
        match params["stream"].as_str() {
            Some("stdout") => stdout.push_str(data),
            Some("stderr") => stderr.push_str(data),
            other => panic!("unknown stream {other:?}"),
        }
    };
    assert_eq!(stdout, "line 0\nline 1\nline 2\n");
    assert_eq!(stderr, "oops\n");
    assert_eq!(result["outcome"], "ok", "{result}");
    assert_eq!(result["stdout"], "", "streamed output is not repeated");
    assert_eq!(result["stderr"], "");
    // Without `stream`, output comes back in the result again.
    assert_eq!(client.run(&session, "print('back')")["stdout"], "back\n");
}

fn many_small_writes_stream_as_few_notifications(transport: Transport) {
    let (_daemon, mut client) = start(DAEMON, transport, &[]);
    client.initialize(&unique_client_id("coalesce"));
    let session = client.create_session(PYTHON);
    // 100,000 one-byte writes, each flushed, with a line on stderr between
    // each 10,000: one notification per write would be 100,010.
    let code = "import sys\n\
                for i in range(100_000):\n    \
                    sys.stdout.write(str(i % 10)); sys.stdout.flush()\n    \
                    if i % 10_000 == 9_999: print('mark', i, file=sys.stderr, flush=True)";
    let run_id = client.start(
        "session/run",
        json!({"sessionId": session, "code": code, "stream": true}),
    );
    let mut notifications = 0;
    let mut stdout = String::new();
    let mut stderr = String::new();
    // Where in stdout each stderr line came.
    let mut marks = Vec::new();
    let result = loop {
        let message = client.recv();
        if is_response(&message) {
            assert_eq!(message["id"], run_id, "{message}");
            break result_of(&message).clone();
        }
        notifications += 1;
        let params = &message["params"];
        let data = params["data"].as_str().expect("data");
        match params["stream"].as_str() {
            Some("stdout") => stdout.push_str(data),
            Some("stderr") => {
                stderr.push_str(data);
                if marks.last() != Some(&stdout.len()) {
                    marks.push(stdout.len());
                }
            }
            other => panic!("unknown stream {other:?}"),
        }
    };
    assert_eq!(result["outcome"], "ok", "{result}");
    let expected: String = (0..100_000)
        .map(|i| char::from(b'0' + (i % 10) as u8))
        .collect();
    assert!(stdout == expected, "stdout arrives whole and in order");
    let lines: Vec<String> = (1..=10)
        .map(|k| format!("mark {}\n", k * 10_000 - 1))
        .collect();
    assert_eq!(stderr, lines.concat());
    // Each stderr line arrived after the stdout written before it (order
    // between the streams is kept).
    assert_eq!(marks, (1..=10).map(|k| k * 10_000).collect::<Vec<_>>());
    assert!(
        notifications <= 200,
        "{notifications} notifications for 100,010 writes"
    );
}

fn a_busy_session_refuses_a_second_run(transport: Transport) {
    let (_daemon, mut client) = start(DAEMON, transport, &[]);
    client.initialize(&unique_client_id("busy"));
    let session = client.create_session(PYTHON);
    let slow = client.start(
        "session/run",
        json!({"sessionId": session, "code": "print(call('slow', i=0))"}),
    );
    let call = client.incoming_request("host/call");
    // The session is running (waiting for our answer): it is busy.
    let listed = client.call("session/list", Value::Null);
    assert_eq!(listed["sessions"][0]["busy"], true, "{listed}");
    client.expect_error(
        "session/run",
        json!({"sessionId": session, "code": "print(1)"}),
        code::SESSION_BUSY,
    );
    client.respond(&call["id"], json!("done"));
    let result = result_of(&client.response(&slow)).clone();
    assert_eq!(result["stdout"], "done\n", "{result}");
    assert_eq!(client.run(&session, "print(1)")["stdout"], "1\n");
}

// ---- run --------------------------------------------------------------

fn one_shot_runs(transport: Transport) {
    let (_daemon, mut client) = start(DAEMON, transport, &[]);
    client.initialize(&unique_client_id("oneshot"));
    let result = client.call(
        "run",
        json!({"language": "python", "code": "x = 20\nprint(x + 22)"}),
    );
    assert_eq!(result["outcome"], "ok", "{result}");
    assert_eq!(result["stdout"], "42\n");
    assert!(result.get("sessionAlive").is_none(), "{result}");
    let result = client.call(
        "run",
        json!({"language": "javascript", "code": "console.log(6 * 7)"}),
    );
    assert_eq!(result["outcome"], "ok", "{result}");
    assert_eq!(result["stdout"], "42\n");
    // Nothing persists between one-shot runs.
    let result = client.call("run", json!({"language": "python", "code": "print(x)"}));
    assert_eq!(result["outcome"], "exception", "{result}");
    assert_eq!(result["exception"]["type"], "NameError", "{result}");
    // Host calls from a one-shot run carry a null session id.
    let run_id = client.start(
        "run",
        json!({"language": "python", "code": "print(call('add', a=2, b=3))"}),
    );
    let call = client.incoming_request("host/call");
    assert_eq!(call["params"]["sessionId"], Value::Null, "{call}");
    assert_eq!(call["params"]["requestId"], run_id, "{call}");
    client.respond(&call["id"], json!(5));
    assert_eq!(result_of(&client.response(&run_id))["stdout"], "5\n");
    // A one-shot run is no session.
    assert_eq!(
        client.call("session/list", Value::Null)["sessions"],
        json!([])
    );
}

// ---- shutdown and exit ------------------------------------------------

fn shutdown_then_exit(transport: Transport) {
    let (mut daemon, mut client) = start(DAEMON, transport, &[]);
    client.initialize(&unique_client_id("shutdown"));
    let session = client.create_session(PYTHON);
    assert_eq!(client.call("shutdown", Value::Null), Value::Null);
    client.expect_error("session/list", Value::Null, code::INVALID_REQUEST);
    client.expect_error(
        "session/run",
        json!({"sessionId": session, "code": "print(1)"}),
        code::INVALID_REQUEST,
    );
    client.expect_error("shutdown", Value::Null, code::INVALID_REQUEST);
    client.notify("exit", Value::Null);
    let leftovers = client.expect_closed();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    match transport {
        Transport::Stdio => {
            let status = daemon
                .wait_exit(WAIT)
                .expect("the daemon exits after `exit`");
            assert_eq!(status.code(), Some(0), "{}", daemon.log_text());
        }
        Transport::Socket => {
            // The daemon goes on serving others.
            assert!(daemon.is_running());
            let mut other = daemon.connect();
            other.initialize(&unique_client_id("after"));
            assert_eq!(
                other.call("session/list", Value::Null)["sessions"],
                json!([])
            );
        }
    }
}

#[test]
fn pipelined_initialize_shutdown_and_exit_on_stdio_always_exit_0() {
    for attempt in 0..5 {
        let (mut daemon, mut client) = start(DAEMON, Transport::Stdio, &["--warm-pool", "0"]);
        // All three in one write: each takes effect before the next is read.
        let initialize = request_value(
            &json!("hello"),
            "initialize",
            init_params(&unique_client_id("pipelined-exit")),
        );
        let shutdown = request_value(&json!("bye"), "shutdown", Value::Null);
        let mut bytes = frame(&serde_json::to_vec(&initialize).unwrap());
        bytes.extend(frame(&serde_json::to_vec(&shutdown).unwrap()));
        bytes.extend(frame(br#"{"jsonrpc":"2.0","method":"exit"}"#));
        client.send_raw(&bytes);
        let seen = client.expect_closed();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0]["id"], "hello", "{:?}", seen[0]);
        assert!(seen[0].get("result").is_some(), "{:?}", seen[0]);
        assert_eq!(seen[1]["id"], "bye");
        assert_eq!(seen[1]["result"], Value::Null, "{:?}", seen[1]);
        let status = daemon.wait_exit(WAIT).expect("the daemon exits");
        assert_eq!(
            status.code(),
            Some(0),
            "attempt {attempt}: {}",
            daemon.log_text()
        );
    }
}

fn exit_without_shutdown(transport: Transport) {
    let (mut daemon, mut client) = start(DAEMON, transport, &[]);
    client.initialize(&unique_client_id("exit"));
    client.notify("exit", Value::Null);
    client.expect_closed();
    match transport {
        Transport::Stdio => {
            let status = daemon
                .wait_exit(WAIT)
                .expect("the daemon exits after `exit`");
            assert_eq!(status.code(), Some(1), "{}", daemon.log_text());
        }
        Transport::Socket => {
            assert!(daemon.is_running());
            let mut other = daemon.connect();
            other.initialize(&unique_client_id("after"));
        }
    }
}

// ---- several clients on the socket ------------------------------------

#[test]
fn clients_cannot_see_or_touch_each_others_sessions() {
    let daemon = Daemon::socket(DAEMON, &[]);
    let mut a = daemon.connect();
    let mut b = daemon.connect();
    a.initialize(&unique_client_id("a"));
    b.initialize(&unique_client_id("b"));
    let mine = a.create_session(PYTHON);
    a.run(&mine, "secret = 1");
    b.expect_error(
        "session/run",
        json!({"sessionId": mine, "code": "print(secret)"}),
        code::UNKNOWN_SESSION,
    );
    b.expect_error(
        "session/close",
        json!({"sessionId": mine}),
        code::UNKNOWN_SESSION,
    );
    assert_eq!(b.call("session/list", Value::Null)["sessions"], json!([]));
    let theirs = b.create_session(PYTHON);
    assert_eq!(
        session_ids(&a.call("session/list", Value::Null)),
        vec![mine.clone()]
    );
    assert_eq!(
        session_ids(&b.call("session/list", Value::Null)),
        vec![theirs]
    );
    // A's session is untouched.
    assert_eq!(a.run(&mine, "print(secret)")["stdout"], "1\n");
}

#[test]
fn pipelined_initialize_binds_exactly_one_client_id() {
    let daemon = Daemon::socket(DAEMON, &[]);
    for attempt in 0..100 {
        let mut client = daemon.connect();
        // As many as may be in flight at once.
        let ids: Vec<String> = (0..32).map(|_| unique_client_id("race")).collect();
        let mut bytes = Vec::new();
        for (n, id) in ids.iter().enumerate() {
            let request = request_value(&json!(n), "initialize", init_params(id));
            bytes.extend(frame(&serde_json::to_vec(&request).unwrap()));
        }
        client.send_raw(&bytes);
        let mut bound = Vec::new();
        for (n, id) in ids.iter().enumerate() {
            let response = client.response(&json!(n));
            if response.get("result").is_some() {
                bound.push(id.clone());
            } else {
                let error = response_error(&response, "initialize");
                assert_eq!(error["code"], code::ALREADY_INITIALIZED, "{error}");
            }
        }
        assert_eq!(bound, ids[..1], "attempt {attempt}: the first one binds");
        // Once the connection is gone, every id is free: none stayed bound.
        client.shutdown_and_exit();
        client.expect_closed();
        for id in &ids {
            let mut other = daemon.connect();
            other.initialize(id);
        }
    }
}

#[test]
fn a_client_id_in_use_is_refused() {
    let daemon = Daemon::socket(DAEMON, &[]);
    let id = unique_client_id("inuse");
    let mut a = daemon.connect();
    a.initialize(&id);
    let mut second = daemon.connect();
    second.expect_error("initialize", init_params(&id), code::CLIENT_ID_IN_USE);
    // The refused connection may still initialize with another id.
    second.initialize(&unique_client_id("other"));
    // The first connection is unaffected.
    a.call("session/list", Value::Null);
}

/// Initializes a new connection as `client_id`, retrying while the daemon
/// has not yet noticed that the previous connection with this id is gone.
fn reconnect(daemon: &Daemon, client_id: &str) -> (Client, Value) {
    poll(WAIT, "reconnecting with the same client id", || {
        let mut client = daemon.connect();
        let response = client.request("initialize", init_params(client_id));
        if response["error"]["code"] == code::CLIENT_ID_IN_USE {
            return None;
        }
        let result = result_of(&response).clone();
        Some((client, result))
    })
}

#[test]
fn a_reconnecting_client_finds_its_sessions_warm() {
    let daemon = Daemon::socket(DAEMON, &[]);
    let id = unique_client_id("warm");
    let mut a = daemon.connect();
    a.initialize(&id);
    let session = a.create_session(PYTHON);
    a.run(&session, "x = 'still here'");
    drop(a); // abruptly: no shutdown, no exit
    let (mut again, result) = reconnect(&daemon, &id);
    assert_eq!(session_ids(&result), vec![session.clone()], "{result}");
    assert_eq!(result["sessions"][0]["language"], "python");
    assert_eq!(result["sessions"][0]["runs"], 1, "{result}");
    assert_eq!(again.run(&session, "print(x)")["stdout"], "still here\n");
    // Host calls now go to the new connection.
    let result = run_answering_add(&mut again, &session, "print(call('add', a=2, b=3))");
    assert_eq!(result["stdout"], "5\n");
}

#[test]
fn a_clean_shutdown_closes_the_clients_sessions() {
    let daemon = Daemon::socket(DAEMON, &[]);
    let id = unique_client_id("clean");
    let mut a = daemon.connect();
    a.initialize(&id);
    a.create_session(PYTHON);
    a.shutdown_and_exit();
    a.expect_closed();
    let (_again, result) = reconnect(&daemon, &id);
    assert_eq!(result["sessions"], json!([]), "{result}");
}

#[test]
fn sessions_are_gone_after_the_reconnect_grace() {
    let daemon = Daemon::socket(DAEMON, &["--reconnect-grace", "300ms"]);
    let id = unique_client_id("grace");
    let mut a = daemon.connect();
    let init = a.initialize(&id);
    assert_eq!(init["limits"]["reconnectGraceMs"], 300);
    a.create_session(PYTHON);
    drop(a);
    thread::sleep(Duration::from_secs(1));
    let (again, result) = reconnect(&daemon, &id);
    let mut sessions = result["sessions"].clone();
    // A loaded machine may run the reaper late: give it more time, but
    // each reconnect restarts the grace, so wait past it before each try.
    drop(again);
    let deadline = std::time::Instant::now() + WAIT;
    while sessions != json!([]) && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_secs(1));
        let (again, result) = reconnect(&daemon, &id);
        sessions = result["sessions"].clone();
        drop(again);
    }
    assert_eq!(sessions, json!([]), "the sessions outlived the grace");
}
