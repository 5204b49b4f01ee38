//! Round trips through goru-daemon: a trivial `session/run` in an existing
//! session, over stdio and over the socket, measured from the client's side
//! (request sent to result read), through the goru-client library as a
//! program that uses the daemon would.

use goru_client::protocol::types::{Language, OutcomeKind, SessionCreateParams, SessionRunParams};
use goru_client::{Client, ClientOptions};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A runtime for the client on the calling thread: one connection, driven
/// by the thread that times it.
pub(crate) fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Connects to the daemon listening at `path` as `client_id`.
pub(crate) async fn connect(path: &Path, client_id: &str) -> Client {
    Client::connect(path, ClientOptions::new().client_id(client_id))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the daemon at {}: {e}", path.display()))
}

/// A daemon process the bench started; killed when dropped.
pub(crate) struct Daemon(pub(crate) Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits up to 60 s for a daemon that was just started to listen on `path`
/// (its first start may compile the guests).
pub(crate) fn wait_until_listening(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("the daemon did not listen on {}: {e}", path.display()),
        }
    }
}

/// p50 and p99 of `session/run` `x = 1` in an existing session, per language.
async fn measure(client: &Client, runs: usize) -> Vec<(Duration, Duration)> {
    let mut results = Vec::new();
    for language in Language::ALL {
        let session_id = client
            .create_session(SessionCreateParams::new(language))
            .await
            .unwrap_or_else(|e| panic!("session/create failed: {e}"));
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs + 10 {
            let started = Instant::now();
            let result = client
                .run_in(SessionRunParams::new(&session_id, "x = 1"))
                .await
                .unwrap_or_else(|e| panic!("session/run failed: {e}"));
            samples.push(started.elapsed());
            assert_eq!(result.outcome, OutcomeKind::Ok, "{result:?}");
        }
        // The first runs warm the connection and the session.
        let mut samples = samples.split_off(10);
        results.push(crate::measure::percentiles(&mut samples));
    }
    results
}

pub(crate) fn round_trips(
    daemon: &str,
    runs: usize,
) -> Vec<(&'static str, Vec<(Duration, Duration)>)> {
    let runtime = client_runtime();
    let stdio = runtime.block_on(async {
        let mut command = tokio::process::Command::new(daemon);
        command.arg("--stdio").stderr(Stdio::null());
        let client = Client::spawn_command(command, ClientOptions::new().client_id("goru-bench"))
            .await
            .unwrap_or_else(|e| panic!("cannot run {daemon}: {e}"));
        let results = measure(&client, runs).await;
        // The spawned daemon is killed with the client.
        drop(client);
        results
    });

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
    wait_until_listening(&path);
    let socket = runtime.block_on(async {
        let client = connect(&path, "goru-bench").await;
        measure(&client, runs).await
    });
    vec![("stdio", stdio), ("socket", socket)]
}
