//! The protocol's rules checked in process: a client over an in-memory
//! stream pair (`tokio::io::duplex`) into [`Daemon::serve_connection`].
//! What needs a process (exit codes, stdio, the socket, signals) stays in
//! the spawned-binary suites under tests/.

use crate::{ConnectionEnd, Daemon};
use goru_protocol::framing::{read_frame, write_frame};
use goru_protocol::method::{ALL, Direction, Kind};
use goru_protocol::{ErrorObject, Id, Message, Notification, PROTOCOL_VERSION, Request, codes};
use goru_runtimes::Engine;
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{BufReader, DuplexStream, ReadHalf, WriteHalf};
use tokio::task::JoinHandle;

/// How long a test waits for one message.
const WAIT: Duration = Duration::from_secs(60);

/// One engine for every test: building it compiles (or loads) the guests.
fn engine() -> Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE
        .get_or_init(|| Engine::new().expect("the engine builds"))
        .clone()
}

fn daemon() -> Daemon {
    Daemon::new(engine(), crate::Config::default())
}

/// A client speaking raw JSON-RPC to one connection of `daemon`.
struct Wire {
    writer: WriteHalf<DuplexStream>,
    reader: BufReader<ReadHalf<DuplexStream>>,
    next_id: i64,
    served: JoinHandle<ConnectionEnd>,
}

impl Wire {
    fn connect(daemon: &Daemon) -> Wire {
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let (their_reader, their_writer) = tokio::io::split(theirs);
        let daemon = daemon.clone();
        let served =
            tokio::spawn(async move { daemon.serve_connection(their_reader, their_writer).await });
        let (reader, writer) = tokio::io::split(ours);
        Wire {
            writer,
            reader: BufReader::new(reader),
            next_id: 1,
            served,
        }
    }

    async fn send(&mut self, message: Message) {
        write_frame(&mut self.writer, &message.to_json())
            .await
            .expect("the daemon reads");
    }

    /// The next message from the daemon; `None` when it closed.
    async fn recv(&mut self) -> Option<Message> {
        let frame = tokio::time::timeout(WAIT, read_frame(&mut self.reader, 64 << 20))
            .await
            .expect("the daemon answers in time")
            .expect("a well-formed frame")?;
        Some(Message::parse(&frame).expect("a well-formed message"))
    }

    /// Sends a request; returns its id.
    async fn start(&mut self, method: &str, params: Value) -> Id {
        let id = Id::Number(self.next_id);
        self.next_id += 1;
        self.send(Message::Request(Request {
            id: id.clone(),
            method: method.into(),
            params: Some(params).filter(|p| !p.is_null()),
        }))
        .await;
        id
    }

    async fn notify(&mut self, method: &str, params: Value) {
        self.send(Message::Notification(Notification {
            method: method.into(),
            params: Some(params).filter(|p| !p.is_null()),
        }))
        .await;
    }

    /// The answer to request `id` (nothing else may come first).
    async fn response(&mut self, id: &Id) -> Result<Value, ErrorObject> {
        match self.recv().await {
            Some(Message::Response(response)) => {
                assert_eq!(response.id.as_ref(), Some(id), "answers come in order here");
                response.result
            }
            other => panic!("expected the answer to {id}, got {other:?}"),
        }
    }

    async fn call(&mut self, method: &str, params: Value) -> Result<Value, ErrorObject> {
        let id = self.start(method, params).await;
        self.response(&id).await
    }

    async fn ok(&mut self, method: &str, params: Value) -> Value {
        self.call(method, params)
            .await
            .unwrap_or_else(|err| panic!("`{method}` failed: {err}"))
    }

    async fn error(&mut self, method: &str, params: Value, code: i64) -> ErrorObject {
        let error = self
            .call(method, params)
            .await
            .expect_err("the request is refused");
        assert_eq!(error.code, code, "{error}");
        error
    }

    async fn initialize(&mut self, client_id: &str, host_functions: &[&str]) -> Value {
        self.ok("initialize", init_params(client_id, host_functions))
            .await
    }

    async fn create_session(&mut self, language: &str) -> String {
        let created = self
            .ok("session/create", json!({"language": language}))
            .await;
        created["sessionId"].as_str().unwrap().to_string()
    }

    /// Waits for the daemon to end the connection; how it ended.
    async fn end(self) -> ConnectionEnd {
        drop(self.writer);
        tokio::time::timeout(WAIT, self.served)
            .await
            .expect("the connection ends")
            .expect("the connection task does not panic")
    }
}

fn init_params(client_id: &str, host_functions: &[&str]) -> Value {
    json!({
        "clientId": client_id,
        "protocolVersion": PROTOCOL_VERSION,
        "hostFunctions": host_functions,
    })
}

fn session_ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sessionId"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_a_client_sends_is_served() {
    let daemon = daemon();
    let mut wire = Wire::connect(&daemon);
    wire.initialize("every-method-client", &[]).await;
    for method in ALL
        .iter()
        .filter(|m| m.direction == Direction::ClientToDaemon && m.kind == Kind::Request)
    {
        // `initialize` again and `shutdown` answer; the others refuse `{}`
        // or serve it, but none is unknown.
        if method.name == "shutdown" {
            continue;
        }
        if let Err(error) = wire.call(method.name, json!({})).await {
            assert_ne!(error.code, codes::METHOD_NOT_FOUND, "`{}`", method.name);
        }
    }
    wire.error("host/call", json!({}), codes::METHOD_NOT_FOUND)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_before_initialize_are_refused() {
    let daemon = daemon();
    let mut wire = Wire::connect(&daemon);
    wire.error("session/list", Value::Null, codes::NOT_INITIALIZED)
        .await;
    wire.error(
        "session/create",
        json!({"language": "python"}),
        codes::NOT_INITIALIZED,
    )
    .await;
    wire.error(
        "run",
        json!({"language": "python", "code": "print(1)"}),
        codes::NOT_INITIALIZED,
    )
    .await;
    wire.error(
        "session/run",
        json!({"sessionId": "s-1", "code": "print(1)"}),
        codes::NOT_INITIALIZED,
    )
    .await;
    // Before the params too: wrong params still say "initialize first".
    wire.error("session/run", json!({"x": 1}), codes::NOT_INITIALIZED)
        .await;
    wire.error("shutdown", Value::Null, codes::NOT_INITIALIZED)
        .await;
    // The connection still works, and initializes.
    wire.initialize("late-client-0001", &[]).await;
    assert_eq!(
        wire.ok("session/list", Value::Null).await["sessions"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_rules() {
    let daemon = daemon();
    let mut wire = Wire::connect(&daemon);
    // A wrong version, then bad client ids: none of them initializes.
    for version in [0, 2, 999] {
        let mut params = init_params("version-client-01", &[]);
        params["protocolVersion"] = json!(version);
        let error = wire
            .error("initialize", params, codes::UNSUPPORTED_PROTOCOL_VERSION)
            .await;
        assert_eq!(error.data, Some(json!({"supported": [PROTOCOL_VERSION]})));
    }
    for bad in [
        String::new(),
        "a".repeat(200),
        "a b".to_string(),
        "a/b".to_string(),
        "é".to_string(),
    ] {
        let error = wire
            .error("initialize", init_params(&bad, &[]), codes::INVALID_PARAMS)
            .await;
        assert!(
            error.message.contains("clientId"),
            "the message names the field: {error}"
        );
    }
    wire.error("session/list", Value::Null, codes::NOT_INITIALIZED)
        .await;
    // The longest allowed id, of every allowed character.
    let longest: String = "Az09_.:-".repeat(16);
    assert_eq!(longest.len(), 128);
    let mut longest_wire = Wire::connect(&daemon);
    longest_wire.initialize(&longest, &[]).await;
    let initialized = wire.initialize("first-client-0001", &[]).await;
    assert_eq!(initialized["protocolVersion"], PROTOCOL_VERSION);
    assert_eq!(initialized["serverInfo"]["name"], "goru-daemon");
    assert_eq!(initialized["languages"], json!(["python", "javascript"]));
    assert_eq!(initialized["sessions"], json!([]));
    // Once only, with this id or another.
    wire.error(
        "initialize",
        init_params("first-client-0001", &[]),
        codes::ALREADY_INITIALIZED,
    )
    .await;
    wire.error(
        "initialize",
        init_params("other-client-0001", &[]),
        codes::ALREADY_INITIALIZED,
    )
    .await;
    // Still initialized as the first id.
    let session = wire.create_session("python").await;
    assert_eq!(
        session_ids(&wire.ok("session/list", Value::Null).await),
        vec![session]
    );
    // An id in use on another connection is refused there.
    let mut other = Wire::connect(&daemon);
    other
        .error(
            "initialize",
            init_params("first-client-0001", &[]),
            codes::CLIENT_ID_IN_USE,
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_params_name_the_field() {
    let daemon = daemon();
    let mut wire = Wire::connect(&daemon);
    wire.initialize("params-client-001", &[]).await;
    let error = wire
        .error(
            "run",
            json!({"language": "python", "code": "1", "limits": {"timeoutMs": "soon"}}),
            codes::INVALID_PARAMS,
        )
        .await;
    assert!(error.message.contains("limits.timeoutMs"), "{error}");
    let error = wire
        .error(
            "session/create",
            json!({"language": "cobol"}),
            codes::INVALID_PARAMS,
        )
        .await;
    assert!(error.message.contains("language"), "{error}");
    let error = wire
        .error(
            "session/run",
            json!({"sessionId": "s-1", "code": "1", "colour": "red"}),
            codes::INVALID_PARAMS,
        )
        .await;
    assert!(error.message.contains("colour"), "{error}");
    wire.error(
        "session/list",
        json!({"sessionId": "x"}),
        codes::INVALID_PARAMS,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_and_notifications() {
    let daemon = daemon();
    let mut wire = Wire::connect(&daemon);
    wire.initialize("unknown-client-01", &[]).await;
    let error = wire
        .error("session/fly", json!({}), codes::METHOD_NOT_FOUND)
        .await;
    assert!(error.message.contains("session/fly"), "{error}");
    // Methods the daemon sends are not served.
    wire.error("host/call", json!({}), codes::METHOD_NOT_FOUND)
        .await;
    // A notification's name sent as a request is no request.
    wire.error("exit", Value::Null, codes::METHOD_NOT_FOUND)
        .await;
    // String ids are answered with the same string.
    let id = Id::String("my-id".into());
    wire.send(Message::Request(Request {
        id: id.clone(),
        method: "session/list".into(),
        params: None,
    }))
    .await;
    assert_eq!(wire.response(&id).await.unwrap()["sessions"], json!([]));
    // Notifications get no answer, unknown ones included: the next message
    // is the answer to the next request.
    wire.notify("something/unknown", json!({"a": 1})).await;
    wire.notify("$/setTrace", json!({"value": "off"})).await;
    wire.notify("session/list", Value::Null).await;
    wire.notify("$/cancelRequest", json!({"wrong": true})).await;
    let result = wire.ok("session/list", Value::Null).await;
    assert!(result.get("sessions").is_some(), "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_created_run_listed_and_closed() {
    let daemon = daemon();
    let mut wire = Wire::connect(&daemon);
    wire.initialize("sessions-client-1", &[]).await;
    let python = wire.create_session("python").await;
    let javascript = wire.create_session("javascript").await;
    assert_ne!(python, javascript);
    let result = wire
        .ok(
            "session/run",
            json!({"sessionId": python, "code": "x = 40"}),
        )
        .await;
    assert_eq!(result["outcome"], "ok", "{result}");
    let result = wire
        .ok(
            "session/run",
            json!({"sessionId": python, "code": "print(x + 2)"}),
        )
        .await;
    assert_eq!(result["stdout"], "42\n", "{result}");
    assert_eq!(result["sessionAlive"], true, "{result}");
    let list = wire.ok("session/list", json!({})).await;
    let mut expected = vec![python.clone(), javascript.clone()];
    expected.sort();
    assert_eq!(session_ids(&list), expected);
    for info in list["sessions"].as_array().unwrap() {
        let (runs, language) = if info["sessionId"] == python {
            (2, "python")
        } else {
            (0, "javascript")
        };
        assert_eq!(info["runs"], runs, "{info}");
        assert_eq!(info["language"], language, "{info}");
        assert_eq!(info["busy"], false, "{info}");
        assert!(info["idleMs"].is_u64(), "{info}");
    }
    assert_eq!(
        wire.ok("session/close", json!({"sessionId": python})).await,
        Value::Null
    );
    wire.error(
        "session/run",
        json!({"sessionId": python, "code": "1"}),
        codes::UNKNOWN_SESSION,
    )
    .await;
    wire.error(
        "session/close",
        json!({"sessionId": python}),
        codes::UNKNOWN_SESSION,
    )
    .await;
    wire.error(
        "session/run",
        json!({"sessionId": "s-does-not-exist", "code": "print(1)"}),
        codes::UNKNOWN_SESSION,
    )
    .await;
    assert_eq!(
        session_ids(&wire.ok("session/list", Value::Null).await),
        vec![javascript]
    );
    // Another client sees none of them.
    let mut other = Wire::connect(&daemon);
    other.initialize("sessions-client-2", &[]).await;
    assert_eq!(
        other.ok("session/list", Value::Null).await["sessions"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_passed_is_named_in_the_result() {
    let daemon = daemon();
    let mut wire = Wire::connect(&daemon);
    wire.initialize("limits-client-01", &[]).await;
    let result = wire
        .ok(
            "run",
            json!({
                "language": "python",
                "code": "import sys\nsys.stderr.write('x' * 5000)",
                "limits": {"maxOutputBytes": 1000},
            }),
        )
        .await;
    assert_eq!(result["outcome"], "outputLimit", "{result}");
    assert_eq!(
        result["limit"],
        json!({"name": "maxOutputBytes", "value": 1000, "stream": "stderr"})
    );
    assert!(result["message"].as_str().unwrap().starts_with("stderr"));
    let result = wire
        .ok(
            "run",
            json!({"language": "javascript", "code": "for(;;){}", "limits": {"timeoutMs": 200}}),
        )
        .await;
    assert_eq!(result["outcome"], "timeout", "{result}");
    assert_eq!(result["limit"], json!({"name": "timeoutMs", "value": 200}));
    assert_eq!(result.get("trap"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_stops_a_run() {
    let daemon = daemon();
    let mut wire = Wire::connect(&daemon);
    wire.initialize("cancel-client-01", &[]).await;
    let session = wire.create_session("python").await;
    let id = wire
        .start(
            "session/run",
            json!({"sessionId": session, "code": "while True: pass"}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    wire.notify("$/cancelRequest", json!({"id": id})).await;
    let result = wire.response(&id).await.unwrap();
    assert_eq!(result["outcome"], "cancelled", "{result}");
    assert_eq!(result["exitCode"], 130);
    assert_eq!(result["sessionAlive"], false, "{result}");
    wire.error(
        "session/run",
        json!({"sessionId": session, "code": "1"}),
        codes::UNKNOWN_SESSION,
    )
    .await;
    // Cancelling what is not in progress is ignored (no answer).
    wire.notify("$/cancelRequest", json!({"id": 12345})).await;
    wire.notify("$/cancelRequest", json!({"id": id})).await;
    // A one-shot run is cancelled the same way.
    let id = wire
        .start(
            "run",
            json!({"language": "javascript", "code": "for(;;){}"}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    wire.notify("$/cancelRequest", json!({"id": id})).await;
    let result = wire.response(&id).await.unwrap();
    assert_eq!(result["outcome"], "cancelled", "{result}");
    assert_eq!(result["exitCode"], 130);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_call_round_trip() {
    let daemon = daemon();
    let mut wire = Wire::connect(&daemon);
    wire.initialize("host-client-0001", &["add"]).await;
    let session = wire.create_session("python").await;
    let run = wire
        .start(
            "session/run",
            json!({"sessionId": session, "code": "print(call(\"add\", a=2, b=3))"}),
        )
        .await;
    let Some(Message::Request(call)) = wire.recv().await else {
        panic!("expected the host call");
    };
    assert_eq!(call.method, "host/call");
    assert!(
        matches!(call.id, Id::String(_)),
        "the daemon's ids are strings"
    );
    let params = call.params.unwrap();
    assert_eq!(params["name"], "add");
    assert_eq!(params["sessionId"], session.as_str());
    assert_eq!(params["requestId"], json!(run));
    assert_eq!(params["args"], json!({"a": 2, "b": 3}));
    wire.send(Message::Response(goru_protocol::Response {
        id: Some(call.id),
        result: Ok(json!(5)),
    }))
    .await;
    let result = wire.response(&run).await.unwrap();
    assert_eq!(result["outcome"], "ok", "{result}");
    assert_eq!(result["stdout"], "5\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_then_exit_ends_cleanly_and_closes_the_sessions() {
    let daemon = daemon();
    let mut wire = Wire::connect(&daemon);
    wire.initialize("shutdown-client-1", &[]).await;
    let session = wire.create_session("python").await;
    assert_eq!(daemon.live_sessions(), 1);
    assert_eq!(wire.ok("shutdown", Value::Null).await, Value::Null);
    wire.error("session/list", Value::Null, codes::INVALID_REQUEST)
        .await;
    wire.error(
        "session/run",
        json!({"sessionId": session, "code": "1"}),
        codes::INVALID_REQUEST,
    )
    .await;
    wire.error("shutdown", Value::Null, codes::INVALID_REQUEST)
        .await;
    wire.notify("exit", Value::Null).await;
    assert_eq!(wire.end().await, ConnectionEnd::Clean);
    assert_eq!(daemon.live_sessions(), 0, "a clean end closes the sessions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_without_shutdown_is_abrupt_and_keeps_the_sessions() {
    let daemon = daemon();
    let mut wire = Wire::connect(&daemon);
    wire.initialize("abrupt-client-01", &[]).await;
    wire.create_session("python").await;
    wire.notify("exit", Value::Null).await;
    assert_eq!(wire.end().await, ConnectionEnd::Abrupt);
    // They wait for the client to come back.
    let mut again = Wire::connect(&daemon);
    let initialized = again.initialize("abrupt-client-01", &[]).await;
    assert_eq!(initialized["sessions"].as_array().unwrap().len(), 1);
}
