//! The daemon client against a real daemon: `goru_client::Client` on a
//! daemon served in-process on a socket, `Client::spawn` on one over stdio,
//! and `goru --connect`.

use goru_client::protocol::codes;
use goru_client::protocol::types::{
    Language, OutcomeKind, OutputStream, RunParams, RunResult, SessionCreateParams,
    SessionRunParams,
};
use goru_client::{Client, ClientError, ClientOptions};
use goru_daemon::{Config, Daemon};
use goru_runtimes::Engine;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::task::JoinHandle;

/// A daemon listening on a socket in a temporary directory, served on the
/// test's runtime until dropped.
struct TestDaemon {
    socket: PathBuf,
    serving: JoinHandle<std::io::Result<()>>,
    _dir: TempDir,
}

impl TestDaemon {
    async fn start() -> TestDaemon {
        TestDaemon::with_config(Config::default()).await
    }

    async fn with_config(config: Config) -> TestDaemon {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("goru.sock");
        let listener = goru_daemon::socket::bind(&socket).unwrap();
        let daemon = Daemon::new(Engine::new().unwrap(), config);
        TestDaemon {
            socket,
            serving: tokio::spawn(listener.serve(daemon)),
            _dir: dir,
        }
    }

    async fn client(&self, options: ClientOptions) -> Client {
        Client::connect(&self.socket, options).await.unwrap()
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

/// A new Python session of `client` with no capabilities: its id.
async fn python_session(client: &Client) -> String {
    client
        .create_session(SessionCreateParams::new(Language::Python))
        .await
        .unwrap()
}

#[track_caller]
fn assert_ok(result: &RunResult, stdout: &str) {
    assert_eq!(result.outcome, OutcomeKind::Ok, "{result:#?}");
    assert_eq!(result.stdout, stdout, "{result:#?}");
}

/// `add(a, b)`: the sum of the `a` and `b` the guest passed.
async fn add(args: Value) -> Result<Value, String> {
    match (args["a"].as_i64(), args["b"].as_i64()) {
        (Some(a), Some(b)) => Ok(json!(a + b)),
        _ => Err(format!("add wants integers a and b, got {args}")),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_keeps_its_state_across_runs() {
    let daemon = TestDaemon::start().await;
    let client = daemon.client(ClientOptions::new()).await;
    let id = python_session(&client).await;
    assert_ok(
        &client
            .run_in(SessionRunParams::new(&id, "x = 41"))
            .await
            .unwrap(),
        "",
    );
    assert_ok(
        &client
            .run_in(SessionRunParams::new(&id, "print(x + 1)"))
            .await
            .unwrap(),
        "42\n",
    );

    let sessions = client.list_sessions().await.unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].session_id, id);
    assert_eq!(sessions[0].runs, 2);

    client.close_session(&id).await.unwrap();
    assert!(client.list_sessions().await.unwrap().is_empty());
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn python_and_javascript_call_a_host_function() {
    let daemon = TestDaemon::start().await;
    let client = daemon
        .client(ClientOptions::new().host_function("add", add))
        .await;
    let id = python_session(&client).await;
    let result = client
        .run_in(SessionRunParams::new(
            &id,
            r#"print(call("add", a=2, b=3))"#,
        ))
        .await
        .unwrap();
    assert_ok(&result, "5\n");

    let js = r#"console.log(call("add", {a: 2, b: 3}))"#;
    let result = client
        .run(RunParams::new(Language::JavaScript, js))
        .await
        .unwrap();
    assert_ok(&result, "5\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_function_error_raises_in_the_guest() {
    let daemon = TestDaemon::start().await;
    let options = ClientOptions::new()
        .host_function("lookup", |_| async { Err("no user with id 7".to_string()) });
    let client = daemon.client(options).await;
    let result = client
        .run(RunParams::new(Language::Python, r#"call("lookup", id=7)"#))
        .await
        .unwrap();
    assert_eq!(result.outcome, OutcomeKind::Exception, "{result:#?}");
    assert_eq!(result.exit_code, 1);
    let exception = result.exception.unwrap();
    assert_eq!(exception.type_name, "RuntimeError");
    assert!(
        exception.message.contains("no user with id 7"),
        "{exception:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gathered_async_calls_are_served_concurrently() {
    let daemon = TestDaemon::start().await;
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (now, peak) = (Arc::clone(&running), Arc::clone(&most));
    let options = ClientOptions::new().host_function("slow", move |args| {
        let (now, peak) = (Arc::clone(&now), Arc::clone(&peak));
        async move {
            peak.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            now.fetch_sub(1, Ordering::SeqCst);
            Ok(args["i"].clone())
        }
    });
    let client = daemon.client(options).await;
    let id = python_session(&client).await;
    let gather = r#"
import asyncio

async def main():
    return await asyncio.gather(
        async_call("slow", i=1), async_call("slow", i=2), async_call("slow", i=3)
    )

print(asyncio.run(main()))
"#;
    let started = Instant::now();
    let result = client
        .run_in(SessionRunParams::new(&id, gather))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_ok(&result, "[1, 2, 3]\n");
    assert_eq!(
        most.load(Ordering::SeqCst),
        3,
        "all three calls ran at once"
    );
    assert!(
        elapsed < Duration::from_millis(900),
        "three 300 ms calls took {elapsed:?}: they did not overlap"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn streamed_output_reaches_on_output_as_it_is_written() {
    let daemon = TestDaemon::start().await;
    let chunks: Arc<Mutex<Vec<(OutputStream, String)>>> = Arc::default();
    let sink = Arc::clone(&chunks);
    let options = ClientOptions::new().on_output(move |output| {
        sink.lock().unwrap().push((output.stream, output.data));
    });
    let client = daemon.client(options).await;
    let id = python_session(&client).await;
    let mut params = SessionRunParams::new(
        &id,
        "import sys\nprint('out')\nprint('err', file=sys.stderr)",
    );
    params.stream = true;
    let result = client.run_in(params).await.unwrap();
    assert_ok(&result, "");
    assert_eq!(result.stderr, "");
    let chunks = chunks.lock().unwrap();
    let text = |stream| {
        chunks
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, data)| data.as_str())
            .collect::<String>()
    };
    assert_eq!(text(OutputStream::Stdout), "out\n");
    assert_eq!(text(OutputStream::Stderr), "err\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_session_is_rpc_error_32001() {
    let daemon = TestDaemon::start().await;
    let client = daemon.client(ClientOptions::new()).await;
    let err = client
        .run_in(SessionRunParams::new("no-such-session", "1"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Rpc(_)), "{err:?}");
    assert_eq!(err.rpc_code(), Some(codes::UNKNOWN_SESSION));
    assert_eq!(codes::UNKNOWN_SESSION, -32001);
    let err = client.close_session("no-such-session").await.unwrap_err();
    assert_eq!(err.rpc_code(), Some(-32001));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_in_progress_can_be_cancelled() {
    let daemon = TestDaemon::start().await;
    let client = daemon.client(ClientOptions::new()).await;
    let id = python_session(&client).await;
    let run = client
        .start_run_in(SessionRunParams::new(&id, "while True: pass"))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.cancel(&run.id()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the cancelled run ends")
        .unwrap();
    assert_eq!(result.outcome, OutcomeKind::Cancelled, "{result:#?}");
    assert_eq!(result.exit_code, 130);
    assert_eq!(result.session_alive, Some(false));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_reconnecting_with_its_id_finds_its_sessions() {
    let daemon = TestDaemon::start().await;
    let client = daemon.client(ClientOptions::new()).await;
    let client_id = client.client_id().to_string();
    assert_eq!(client_id.len(), 32);
    let id = python_session(&client).await;
    client
        .run_in(SessionRunParams::new(&id, "x = 7"))
        .await
        .unwrap();
    // Dropped without `shutdown`: the daemon keeps the sessions a while.
    drop(client);

    let deadline = Instant::now() + Duration::from_secs(10);
    let client = loop {
        // The daemon frees the id once it has seen the old connection close.
        match Client::connect(&daemon.socket, ClientOptions::new().client_id(&client_id)).await {
            Ok(client) => break client,
            Err(err) if err.rpc_code() == Some(codes::CLIENT_ID_IN_USE) => {
                assert!(Instant::now() < deadline, "the old connection never ended");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(err) => panic!("reconnecting failed: {err}"),
        }
    };
    let sessions = &client.initialize_result().sessions;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].session_id, id);
    assert_ok(
        &client
            .run_in(SessionRunParams::new(&id, "print(x)"))
            .await
            .unwrap(),
        "7\n",
    );
}

/// The daemon half of `spawn_runs_a_daemon_over_stdio`: cli/tests/support/
/// stdio-daemon starts this test binary with only this test, protocol
/// output on fd 3. Run by hand, it does nothing.
#[test]
#[ignore = "started by spawn_runs_a_daemon_over_stdio"]
fn stdio_daemon() {
    if std::env::var_os("GORU_TEST_STDIO_DAEMON").is_none() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let fd3 = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/fd/3")
            .expect("fd 3 carries the protocol");
        let out = tokio::net::unix::pipe::Sender::from_file(fd3).unwrap();
        let daemon = Daemon::new(Engine::new().unwrap(), Config::default());
        daemon.serve_connection(tokio::io::stdin(), out).await;
    });
    // Not through the harness: its report would follow, and stdin may
    // still be in a blocking read.
    std::process::exit(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn spawn_runs_a_daemon_over_stdio() {
    let exe = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/stdio-daemon");
    let client = Client::spawn(&exe, ClientOptions::new().host_function("add", add))
        .await
        .unwrap();
    assert_eq!(client.initialize_result().server_info.name, "goru-daemon");
    let result = client
        .run(RunParams::new(
            Language::Python,
            r#"print(call("add", a=20, b=22))"#,
        ))
        .await
        .unwrap();
    assert_ok(&result, "42\n");
    tokio::time::timeout(Duration::from_secs(10), client.shutdown())
        .await
        .expect("the spawned daemon exits after `exit`")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn spawning_a_missing_daemon_names_it() {
    let err = Client::spawn("/nonexistent/goru-daemon", ClientOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Spawn { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/goru-daemon"),
        "{err}"
    );
}

/// Runs `goru args...` with the environment the other CLI tests use and an
/// empty stdin.
async fn goru(args: &[&str], env: &[(&str, &Path)]) -> Output {
    goru_with_stdin(args, env, b"").await
}

async fn goru_with_stdin(args: &[&str], env: &[(&str, &Path)], stdin: &[u8]) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_goru"));
    command
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("GORU_LANG")
        .env_remove("GORU_CONNECT")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin).await.unwrap();
    drop(pipe);
    tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("goru finishes within 120s")
        .unwrap()
}

struct Cli {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn goru_connect(daemon: &TestDaemon, args: &[&str]) -> Cli {
    goru_connect_with_stdin(daemon, args, b"").await
}

async fn goru_connect_with_stdin(daemon: &TestDaemon, args: &[&str], stdin: &[u8]) -> Cli {
    let socket = daemon.socket.to_str().unwrap();
    let args = [&["--connect", socket], args].concat();
    let output = goru_with_stdin(&args, &[], stdin).await;
    Cli {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn goru_connect_runs_code_in_the_daemon() {
    let daemon = TestDaemon::start().await;
    let run = goru_connect(&daemon, &["-l", "python", "-c", "print(6*7)"]).await;
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "42\n"),
        "{}",
        run.stderr
    );

    // GORU_CONNECT does the same, here for the `run` subcommand and JS.
    let output = goru(
        &["run", "-l", "js", "-c", "console.log(6*7)"],
        &[("GORU_CONNECT", &daemon.socket)],
    )
    .await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "42\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn goru_connect_exits_with_the_guests_code_and_traceback() {
    let daemon = TestDaemon::start().await;
    let run = goru_connect(&daemon, &["-l", "python", "-c", "raise SystemExit(3)"]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);

    let run = goru_connect(&daemon, &["-l", "python", "-c", "print('before')\n1/0"]).await;
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "before\n");
    assert!(run.stderr.starts_with("Traceback"), "{}", run.stderr);
    assert!(run.stderr.contains("ZeroDivisionError"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn goru_connect_passes_flags_as_limits_capabilities_and_argv() {
    let daemon = TestDaemon::start().await;
    let kv = "kv.set('a', 41); import sys; print(kv.get('a') + 1, sys.argv[1:])";
    let run = goru_connect(&daemon, &["--kv", "-l", "python", "-c", kv, "x", "-y"]).await;
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "42 ['x', '-y']\n"),
        "{}",
        run.stderr
    );

    let spin = "while True: pass";
    let run = goru_connect(&daemon, &["--timeout", "300ms", "-l", "python", "-c", spin]).await;
    assert_eq!(run.code, 124, "{}", run.stderr);
    assert!(
        run.stderr.contains("timed out after 300ms"),
        "{}",
        run.stderr
    );

    let run = goru_connect(&daemon, &["--timeout", "1h", "-l", "python", "-c", "1"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("timeoutMs"), "{}", run.stderr);
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn goru_connect_names_the_stream_that_passed_the_output_limit() {
    let daemon = TestDaemon::start().await;
    let flood = "import sys; sys.stderr.write('x' * 5000)";
    let args = ["--max-output", "1KiB", "-l", "python", "-c", flood];
    let run = goru_connect(&daemon, &args).await;
    assert_eq!(run.code, 153, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("output truncated: stderr passed its 1KiB limit"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn goru_connect_lowers_default_limits_to_the_daemons() {
    let mut config = Config::default();
    config.session_limits.timeout = Duration::from_secs(1);
    let daemon = TestDaemon::with_config(config).await;
    // The CLI's default of 30s would be refused; it becomes the daemon's 1s.
    let run = goru_connect(&daemon, &["-l", "python", "-c", "while True: pass"]).await;
    assert_eq!(run.code, 124, "{}", run.stderr);
    assert!(run.stderr.contains("timed out after 1s"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn goru_connect_reports_the_daemons_verdict_apart_from_the_exit_code() {
    let daemon = TestDaemon::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    let report = path.to_str().unwrap();
    let read = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    };
    let exit = "import sys; sys.exit(124)";
    let run = goru_connect(&daemon, &["--report", report, "-l", "python", "-c", exit]).await;
    assert_eq!(run.code, 124, "{}", run.stderr);
    assert_eq!(read()["status"], "exit");
    let spin = "while True: pass";
    let args = [
        "--report",
        report,
        "--timeout",
        "300ms",
        "-l",
        "python",
        "-c",
        spin,
    ];
    let run = goru_connect(&daemon, &args).await;
    assert_eq!(run.code, 124, "{}", run.stderr);
    assert_eq!(read()["status"], "timeout");
    assert_eq!(read()["exitCode"], 124);
}

#[tokio::test(flavor = "multi_thread")]
async fn goru_connect_feeds_stdin_to_the_guest() {
    let daemon = TestDaemon::start().await;
    let sum = "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))";
    let run = goru_connect_with_stdin(&daemon, &["-l", "python", "-c", sum], b"1 2\n3\n").await;
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "6\n"),
        "{}",
        run.stderr
    );

    // Code read from stdin leaves the guest's stdin empty.
    let code = b"import sys\nprint(repr(sys.stdin.read()))";
    let run = goru_connect_with_stdin(&daemon, &["-l", "python"], code).await;
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "''\n"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn goru_connect_to_no_daemon_names_the_socket() {
    let output = goru(
        &[
            "--connect",
            "/nonexistent.sock",
            "-c",
            "print(1)",
            "-l",
            "python",
        ],
        &[],
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(stderr.contains("error:"), "{stderr}");
    assert!(stderr.contains("/nonexistent.sock"), "{stderr}");
    assert!(stderr.contains("hint: is goru-daemon running?"), "{stderr}");
}
