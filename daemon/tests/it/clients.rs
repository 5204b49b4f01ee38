//! The example clients in client/python, client/node and client/go, each
//! run against the real daemon over a socket: each serves a host function
//! that guest code calls, and checks sessions, streaming and errors (see
//! their test programs). A missing `python3`, `node` or `go` fails the test:
//! `./x test` installs them.

use std::fs::File;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long the daemon may take to listen: the first start compiles the guests.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one client's test program may take (the Go one compiles first).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(300);

/// A daemon listening on a socket in a temporary directory, killed on drop.
struct Daemon {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let socket = dir.path().join("goru.sock");
        let log = dir.path().join("daemon.log");
        let child = Command::new(env!("CARGO_BIN_EXE_goru-daemon"))
            .arg("--socket")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("the daemon's log file"))
            .spawn()
            .expect("start goru-daemon");
        let mut daemon = Daemon {
            child,
            socket,
            log,
            dir,
        };
        let started = Instant::now();
        loop {
            if daemon.socket.exists() && UnixStream::connect(&daemon.socket).is_ok() {
                return daemon;
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!(
                    "goru-daemon exited ({status}) before listening:\n{}",
                    daemon.log_text()
                );
            }
            if started.elapsed() > START_TIMEOUT {
                panic!(
                    "goru-daemon did not listen on {} within {START_TIMEOUT:?}:\n{}",
                    daemon.socket.display(),
                    daemon.log_text()
                );
            }
            sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// One daemon for the tests running at the same time (they use distinct
/// client ids, so they cannot see each other's sessions); the last one to
/// finish drops it.
fn daemon() -> Arc<Daemon> {
    static SHARED: Mutex<Weak<Daemon>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(daemon) = shared.upgrade() {
        return daemon;
    }
    let daemon = Arc::new(Daemon::start());
    *shared = Arc::downgrade(&daemon);
    daemon
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the daemon crate sits in the repository")
        .to_path_buf()
}

/// Runs a client's test program to the end and fails with its output
/// (and the daemon's log) unless it exits 0.
fn run_client(daemon: &Daemon, name: &str, mut command: Command) {
    let program = command.get_program().to_string_lossy().into_owned();
    let stdout_path = daemon.dir.path().join(format!("{name}.stdout"));
    let stderr_path = daemon.dir.path().join(format!("{name}.stderr"));
    command
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("a file for stdout"))
        .stderr(File::create(&stderr_path).expect("a file for stderr"));
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{program}` is not installed, and the {name} client test needs it: \
             `./x test` installs it (or install it yourself)"
        ),
        Err(err) => panic!("cannot start `{program}`: {err}"),
    };
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the client") {
            break Some(status);
        }
        if started.elapsed() > CLIENT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let ended = match status {
        Some(status) if status.success() => return,
        Some(status) => format!("failed ({status})"),
        None => format!("did not finish within {CLIENT_TIMEOUT:?}"),
    };
    panic!(
        "the {name} client test {ended}: {command:?}\n\
         --- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n--- daemon log ---\n{}",
        daemon.log_text()
    );
}

#[test]
fn python_client() {
    let daemon = daemon();
    let mut command = Command::new("python3");
    command
        .arg("client/python/test_client.py")
        .arg(&daemon.socket)
        .current_dir(repo_root())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    run_client(&daemon, "Python", command);
}

#[test]
fn node_client() {
    let daemon = daemon();
    let mut command = Command::new("node");
    command
        .arg("client/node/test_client.mjs")
        .arg(&daemon.socket)
        .current_dir(repo_root());
    run_client(&daemon, "Node", command);
}

#[test]
fn go_client() {
    let daemon = daemon();
    // Go's caches live in target/, and nothing is fetched: the client has no
    // dependencies.
    let go = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go");
    let mut command = Command::new("go");
    command
        .args(["test", "-count=1", "-timeout=240s", "./..."])
        .current_dir(repo_root().join("client/go"))
        .env("GORU_SOCKET", &daemon.socket)
        .env("GOCACHE", go.join("cache"))
        .env("GOPATH", go.join("path"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GO111MODULE", "on");
    run_client(&daemon, "Go", command);
}
