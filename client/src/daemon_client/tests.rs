//! The client against a scripted fake daemon on an in-memory stream: what
//! goes over the wire, and how answers, host calls and disconnects are
//! handled. (cli/tests/it/connect.rs runs it against the real daemon.)

use super::*;
use goru_protocol::types::{InitializeParams, Language, RunOutputParams, RunParams, RunResult};
use goru_protocol::{ErrorObject, Id, Message, Notification, Request, Response, codes, framing};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{BufReader, DuplexStream, ReadHalf, WriteHalf};

/// The daemon's end of the stream, driven by the test.
struct FakeDaemon {
    reader: BufReader<ReadHalf<DuplexStream>>,
    writer: WriteHalf<DuplexStream>,
}

impl FakeDaemon {
    /// The next message from the client; `None` once it closed the stream.
    async fn recv(&mut self) -> Option<Message> {
        let read = framing::read_frame(&mut self.reader, 1 << 20);
        let body = tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("the client sends within 10s")
            .unwrap()?;
        Some(Message::parse(&body).unwrap())
    }

    async fn recv_request(&mut self) -> Request {
        match self.recv().await {
            Some(Message::Request(request)) => request,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    async fn recv_response(&mut self) -> Response {
        match self.recv().await {
            Some(Message::Response(response)) => response,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    async fn send(&mut self, message: Message) {
        framing::write_frame(&mut self.writer, &message.to_json())
            .await
            .unwrap();
    }

    async fn answer(&mut self, id: Id, result: Result<Value, ErrorObject>) {
        self.send(Message::Response(Response {
            id: Some(id),
            result,
        }))
        .await;
    }

    async fn host_call(&mut self, id: &str, name: &str, args: Value) {
        self.send(Message::Request(Request {
            id: Id::String(id.into()),
            method: "host/call".into(),
            params: Some(json!({"sessionId": null, "requestId": 1, "name": name, "args": args})),
        }))
        .await;
    }
}

/// A client initialized against a fake daemon, and the `initialize` params
/// it sent.
async fn start(options: ClientOptions) -> (Client, FakeDaemon, InitializeParams) {
    let (client_end, daemon_end) = tokio::io::duplex(1 << 16);
    let (client_read, client_write) = tokio::io::split(client_end);
    let (daemon_read, daemon_write) = tokio::io::split(daemon_end);
    let mut daemon = FakeDaemon {
        reader: BufReader::new(daemon_read),
        writer: daemon_write,
    };
    let handshake = async {
        let request = daemon.recv_request().await;
        assert_eq!(request.method, "initialize");
        let params: InitializeParams = serde_json::from_value(request.params.unwrap()).unwrap();
        let result = json!({
            "protocolVersion": 1,
            "serverInfo": {"name": "fake", "version": "0"},
            "languages": ["python"],
            "limits": {
                "maxSessionsPerClient": 1, "maxSessions": 1, "idleTimeoutMs": 1,
                "reconnectGraceMs": 1, "maxFrameBytes": 1, "maxInFlightRequests": 1,
                "session": {}
            },
            "sessions": []
        });
        daemon.answer(request.id, Ok(result)).await;
        params
    };
    let (client, params) = tokio::join!(Client::new(client_read, client_write, options), handshake);
    (client.unwrap(), daemon, params)
}

fn run_params() -> RunParams {
    RunParams::new(Language::Python, "pass")
}

fn run_result() -> Value {
    json!({"outcome": "ok", "stdout": "", "stderr": "", "exitCode": 0, "durationMs": 1.0})
}

#[tokio::test]
async fn initialize_sends_a_random_id_and_the_host_function_names() {
    let options = ClientOptions::new()
        .host_function("b", |_| async { Ok(Value::Null) })
        .host_function("a", |_| async { Ok(Value::Null) });
    let (client, _daemon, params) = start(options).await;
    assert_eq!(params.client_id.len(), 32);
    assert!(params.client_id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(client.client_id(), params.client_id);
    assert_eq!(params.protocol_version, 1);
    assert_eq!(params.host_functions, ["a", "b"]);
    assert_eq!(client.initialize_result().server_info.name, "fake");

    let (other, _daemon, params) = start(ClientOptions::new().client_id("mine")).await;
    assert_eq!(params.client_id, "mine");
    assert_eq!(other.client_id(), "mine");
}

#[tokio::test]
async fn answers_reach_their_own_requests_in_any_order() {
    let (client, mut daemon, _) = start(ClientOptions::new()).await;
    let client = Arc::new(client);
    let first = client.start_run(run_params()).unwrap();
    let second = client.start_run(run_params()).unwrap();
    let a = daemon.recv_request().await;
    let b = daemon.recv_request().await;
    assert_eq!((a.method.as_str(), b.method.as_str()), ("run", "run"));
    assert_eq!(a.id, first.id());
    let mut answer = run_result();
    answer["stdout"] = "second".into();
    daemon.answer(b.id, Ok(answer)).await;
    daemon
        .answer(a.id, Err(ErrorObject::new(codes::SESSION_BUSY, "busy")))
        .await;
    assert_eq!(second.await.unwrap().stdout, "second");
    assert_eq!(
        first.await.unwrap_err().rpc_code(),
        Some(codes::SESSION_BUSY)
    );
}

#[tokio::test]
async fn a_result_of_the_wrong_shape_is_a_protocol_error() {
    let (client, mut daemon, _) = start(ClientOptions::new()).await;
    let run = client.start_run(run_params()).unwrap();
    let request = daemon.recv_request().await;
    daemon.answer(request.id, Ok(json!({"outcome": 5}))).await;
    let err = run.await.unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn host_calls_of_a_batch_run_concurrently() {
    // Each call waits until both are running: served one after the other,
    // neither would finish.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let options = ClientOptions::new().host_function("meet", move |args| {
        let barrier = Arc::clone(&barrier);
        async move {
            barrier.wait().await;
            Ok(args)
        }
    });
    let (_client, mut daemon, _) = start(options).await;
    daemon.host_call("h1", "meet", json!(1)).await;
    daemon.host_call("h2", "meet", json!(2)).await;
    let mut answers = [daemon.recv_response().await, daemon.recv_response().await];
    answers.sort_by_key(|r| r.id.as_ref().unwrap().to_string());
    assert_eq!(answers[0].id, Some(Id::String("h1".into())));
    assert_eq!(answers[0].result, Ok(json!(1)));
    assert_eq!(answers[1].result, Ok(json!(2)));
}

#[tokio::test]
async fn failing_missing_and_panicking_host_functions_get_error_answers() {
    let options = ClientOptions::new()
        .host_function("fail", |_| async { Err("no such user".to_string()) })
        .host_function("panic", |_| async { panic!("boom") });
    let (_client, mut daemon, _) = start(options).await;
    for (name, expected) in [
        ("fail", "no such user"),
        ("nope", "this client has no host function `nope`"),
        ("panic", "host function `panic` failed"),
    ] {
        daemon.host_call(name, name, json!({})).await;
        let response = daemon.recv_response().await;
        assert_eq!(response.id, Some(Id::String(name.into())));
        let error = response.result.unwrap_err();
        assert_eq!(error.code, HOST_FUNCTION_ERROR);
        assert_eq!(error.message, expected);
    }
}

#[tokio::test]
async fn other_requests_from_the_daemon_get_method_not_found() {
    let (_client, mut daemon, _) = start(ClientOptions::new()).await;
    daemon
        .send(Message::Request(Request {
            id: Id::Number(9),
            method: "workspace/frobnicate".into(),
            params: None,
        }))
        .await;
    let response = daemon.recv_response().await;
    assert_eq!(response.id, Some(Id::Number(9)));
    assert_eq!(response.result.unwrap_err().code, codes::METHOD_NOT_FOUND);
}

#[tokio::test]
async fn the_daemon_can_cancel_a_host_call() {
    let options = ClientOptions::new().host_function("forever", |_| async {
        std::future::pending::<()>().await;
        Ok(Value::Null)
    });
    let (_client, mut daemon, _) = start(options).await;
    daemon.host_call("h", "forever", json!({})).await;
    // Let the call start before cancelling it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    daemon
        .send(Message::Notification(Notification {
            method: "$/cancelRequest".into(),
            params: Some(json!({"id": "h"})),
        }))
        .await;
    let response = daemon.recv_response().await;
    assert_eq!(response.result.unwrap_err().code, codes::REQUEST_CANCELLED);
}

#[tokio::test]
async fn streamed_output_reaches_the_callback_before_the_result() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let options = ClientOptions::new().on_output(move |output: RunOutputParams| {
        sink.lock().unwrap().push(output.data);
    });
    let (client, mut daemon, _) = start(options).await;
    let run = client.start_run(run_params()).unwrap();
    let request = daemon.recv_request().await;
    for data in ["a", "b"] {
        daemon
            .send(Message::Notification(Notification {
                method: "run/output".into(),
                params: Some(json!({
                    "sessionId": null, "requestId": 1, "stream": "stdout", "data": data
                })),
            }))
            .await;
    }
    daemon.answer(request.id, Ok(run_result())).await;
    let result: RunResult = run.await.unwrap();
    assert_eq!(result.exit_code, 0);
    assert_eq!(*seen.lock().unwrap(), ["a", "b"]);
}

#[tokio::test]
async fn a_dropped_connection_fails_every_waiting_request() {
    let (client, mut daemon, _) = start(ClientOptions::new()).await;
    let first = client.start_run(run_params()).unwrap();
    let second = client.start_run(run_params()).unwrap();
    let (_, _) = (daemon.recv_request().await, daemon.recv_request().await);
    drop(daemon);
    assert!(matches!(first.await, Err(ClientError::Disconnected)));
    assert!(matches!(second.await, Err(ClientError::Disconnected)));
    // And every request after it.
    assert!(matches!(
        client.list_sessions().await,
        Err(ClientError::Disconnected)
    ));
}

#[tokio::test]
async fn dropping_a_request_cancels_it_and_cancel_names_one() {
    let (client, mut daemon, _) = start(ClientOptions::new()).await;
    let run = client.start_run(run_params()).unwrap();
    let id = run.id();
    assert_eq!(daemon.recv_request().await.id, id);
    client.cancel(&id).unwrap();
    drop(run);
    for _ in 0..2 {
        match daemon.recv().await {
            Some(Message::Notification(n)) => {
                assert_eq!(n.method, "$/cancelRequest");
                assert_eq!(n.params, Some(json!({"id": id})));
            }
            other => panic!("expected a cancel, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn shutdown_sends_shutdown_then_exit_then_closes() {
    let (client, mut daemon, _) = start(ClientOptions::new()).await;
    let daemon_side = async move {
        let request = daemon.recv_request().await;
        assert_eq!(request.method, "shutdown");
        assert_eq!(request.params, None);
        daemon.answer(request.id, Ok(Value::Null)).await;
        match daemon.recv().await {
            Some(Message::Notification(n)) => assert_eq!(n.method, "exit"),
            other => panic!("expected exit, got {other:?}"),
        }
        assert_eq!(daemon.recv().await, None, "the stream is closed after exit");
    };
    let (shutdown, ()) = tokio::join!(client.shutdown(), daemon_side);
    shutdown.unwrap();
}

#[tokio::test]
async fn an_error_without_an_id_fails_every_waiting_request() {
    let (client, mut daemon, _) = start(ClientOptions::new()).await;
    let first = client.start_run(run_params()).unwrap();
    let second = client.start_run(run_params()).unwrap();
    let (_, _) = (daemon.recv_request().await, daemon.recv_request().await);
    let error = ErrorObject::new(codes::LIMIT_EXCEEDED, "too many connections");
    daemon
        .send(Message::Response(Response {
            id: None,
            result: Err(error),
        }))
        .await;
    for run in [first, second] {
        let answer = tokio::time::timeout(Duration::from_secs(10), run).await;
        let err = answer.expect("the error answers the request").unwrap_err();
        assert_eq!(err.rpc_code(), Some(codes::LIMIT_EXCEEDED), "{err:?}");
    }
}

#[test]
fn a_client_and_its_futures_can_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<Client>();
    send_sync::<PendingRequest<RunResult>>();
    // Type-checked, never run: tasks can await every call.
    let _ = |client: &Client| {
        send(&client.run(run_params()));
        send(&client.list_sessions());
        send(&client.close_session("s"));
    };
}

/// The client's API reaches every method a client sends in the protocol's
/// table: a method added to the table without a way to send it fails here.
#[tokio::test]
async fn every_method_a_client_sends_in_the_table_is_sent_by_the_client() {
    use goru_protocol::method::{ALL, Direction};
    use goru_protocol::types::{SessionCreateParams, SessionRunParams};
    use std::collections::BTreeSet;

    let (client, mut daemon, _) = start(ClientOptions::new()).await;
    // `initialize` went out in `start`.
    let sent = Arc::new(Mutex::new(BTreeSet::from(["initialize".to_string()])));
    let seen = sent.clone();
    let daemon_side = async move {
        while let Some(message) = daemon.recv().await {
            let (method, id) = match message {
                Message::Request(request) => (request.method, Some(request.id)),
                Message::Notification(notification) => (notification.method, None),
                other => panic!("the client sent {other:?}"),
            };
            let result = match method.as_str() {
                "session/create" => json!({"sessionId": "s-1"}),
                "session/run" | "run" => run_result(),
                "session/list" => json!({"sessions": []}),
                _ => Value::Null,
            };
            seen.lock().unwrap().insert(method);
            if let Some(id) = id {
                daemon.answer(id, Ok(result)).await;
            }
        }
    };
    let client_side = async move {
        let session_id = client
            .create_session(SessionCreateParams::new(Language::Python))
            .await
            .unwrap();
        client
            .run_in(SessionRunParams::new(&session_id, "pass"))
            .await
            .unwrap();
        client.run(run_params()).await.unwrap();
        client.list_sessions().await.unwrap();
        client.close_session(&session_id).await.unwrap();
        client.cancel(&Id::Number(1)).unwrap();
        client.shutdown().await.unwrap();
    };
    tokio::join!(client_side, daemon_side);
    let expected: BTreeSet<String> = ALL
        .iter()
        .filter(|method| method.direction == Direction::ClientToDaemon)
        .map(|method| method.name.to_string())
        .collect();
    assert_eq!(*sent.lock().unwrap(), expected);
}
