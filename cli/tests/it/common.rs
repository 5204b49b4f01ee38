//! Shared helpers for the CLI tests: run the real `goru` binary and look at
//! what a user would see.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// An environment variable set on every `goru` the tests start, which the
/// guest must never see.
pub const CANARY_ENV: (&str, &str) = ("GORU_TEST_CANARY", "host-secret-4711");

/// How long any single goru process may take before the test fails (the
/// first run of a test binary may compile a guest).
const PROCESS_DEADLINE: Duration = Duration::from_secs(180);

/// What one `goru` process did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// Panics with the whole run shown unless the exit code is `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code; the run was {self:#?}"
        );
        self
    }
}

/// Runs `goru args...` with an empty stdin.
pub fn goru(args: &[&str]) -> Run {
    goru_with_stdin(args, b"")
}

/// Runs `goru args...` with `stdin` piped in.
pub fn goru_with_stdin(args: &[&str], stdin: &[u8]) -> Run {
    goru_in(None, args, stdin)
}

/// Runs `goru args...` in `dir` (when given) with `stdin` piped in.
pub fn goru_in(dir: Option<&Path>, args: &[&str], stdin: &[u8]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_goru"));
    command
        .args(args)
        .env(CANARY_ENV.0, CANARY_ENV.1)
        .env("NO_COLOR", "1")
        .env_remove("GORU_LANG")
        .env_remove("GORU_CONNECT")
        .env_remove("GORU_INDEX_URL")
        .env_remove("GORU_PACKAGES_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let started = Instant::now();
    let mut child = command.spawn().expect("goru starts");
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    // Feed stdin from a thread so a guest that never reads cannot block us.
    let feeder = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || read_all(stdout));
    let err_reader = std::thread::spawn(move || read_all(stderr));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for goru") {
            break status;
        }
        if started.elapsed() > PROCESS_DEADLINE {
            let _ = child.kill();
            panic!("goru {args:?} did not finish within {PROCESS_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let _ = feeder.join();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
        elapsed,
    }
}

fn read_all(mut reader: impl std::io::Read) -> String {
    let mut bytes = Vec::new();
    let _ = reader.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Writes `contents` to `dir/name` and returns its path.
pub fn write_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// Panics unless `haystack` contains every one of `needles`.
#[track_caller]
pub fn assert_contains_all(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            haystack.contains(needle),
            "expected {needle:?} in:\n{haystack}"
        );
    }
}
