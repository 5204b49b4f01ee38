//! The workspace's crates and what they may depend on, from `cargo metadata`.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace root")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.arg("--offline");
    command
}

fn stdout_of(mut command: Command) -> Vec<u8> {
    let output = command.output().expect("run cargo");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// `cargo metadata` of the workspace's own packages.
pub fn metadata() -> Value {
    let mut command = cargo();
    command
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(workspace_root().join("Cargo.toml"));
    serde_json::from_slice(&stdout_of(command)).expect("cargo metadata's JSON")
}

/// The workspace's own packages.
pub fn members(metadata: &Value) -> Vec<&Value> {
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|package| members.contains(&package["id"].as_str().unwrap_or_default()))
        .collect()
}

/// What each crate may depend on (normal and build dependencies) among
/// the workspace's crates: protocol <- runtimes (+ packages) <- daemon;
/// the client library on the protocol only; the CLI and the bench on top;
/// the test support on the protocol only (everything takes it as a
/// dev-dependency, so it must sit below what it tests).
pub fn allowed(name: &str) -> Option<&'static [&'static str]> {
    const ENGINE: &[&str] = &["goru-protocol", "goru-packages", "goru-runtimes"];
    Some(match name {
        "goru-protocol" | "goru-guest-builder" => &[],
        "goru-packages" => &["goru-protocol"],
        "goru-runtimes" => &["goru-protocol", "goru-packages"],
        "goru-daemon" => ENGINE,
        "goru-client" => &["goru-protocol"],
        "goru-tests" => &["goru-protocol"],
        "goru-cli" | "goru-bench" => &[
            "goru-protocol",
            "goru-packages",
            "goru-runtimes",
            "goru-daemon",
            "goru-client",
        ],
        _ => return None,
    })
}

/// Every package `root` needs on this platform, through its normal and
/// dev dependencies, by name (`cargo tree`).
pub fn dependency_closure(root: &str) -> Vec<String> {
    let mut command = cargo();
    command
        .args([
            "tree",
            "-e",
            "normal,dev",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "-p",
            root,
        ])
        .arg("--manifest-path")
        .arg(workspace_root().join("Cargo.toml"));
    String::from_utf8(stdout_of(command))
        .expect("UTF-8")
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(String::from))
        .collect()
}
