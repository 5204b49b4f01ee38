//! The pinned inputs the guests are built from, fetched through the ordinary
//! registry clients (pip, cargo) and checked against their sha256 before a
//! single byte of them is used.

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// componentize-py: builds the pre-initialized CPython 3.14 component.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
pub const COMPONENTIZE_PY_WHEEL: &str =
    "componentize_py-0.25.1-cp39-abi3-manylinux_2_28_x86_64.whl";
pub const COMPONENTIZE_PY_SHA256: &str =
    "8623cd8cab8453cb0cd8bf03f3c7103420d06f2f3d360186a280a70a1ca5e89f";

/// The crate that carries the QuickJS-NG 0.16.2 C sources.
pub const RQUICKJS_SYS_VERSION: &str = "0.14.0";
pub const RQUICKJS_SYS_SHA256: &str =
    "cee271d0eeba64f0915b846cb7ae02e16faf3dfdffdca91731101d9d30fe3423";

/// Lower-case hex sha256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Fails unless `path` hashes to `expected`.
pub fn verify_sha256(path: &Path, expected: &str) -> Result<()> {
    let actual = sha256_file(path)?;
    if actual != expected {
        bail!(
            "sha256 mismatch for {}: expected {expected}, got {actual}; refusing to use it",
            path.display()
        );
    }
    Ok(())
}

/// Runs a command to completion, failing with the command line on a non-zero exit.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Installs componentize-py into a private virtual environment under `work`
/// (once) and returns the path of its executable.
pub fn componentize_py(work: &Path) -> Result<PathBuf> {
    let venv = work.join(format!("componentize-py-{COMPONENTIZE_PY_VERSION}"));
    let exe = venv.join("bin/componentize-py");
    let wheel_dir = work.join("downloads");
    let wheel = wheel_dir.join(COMPONENTIZE_PY_WHEEL);
    if !wheel.exists() {
        std::fs::create_dir_all(&wheel_dir)?;
        let requirements = work.join("componentize-py.requirements.txt");
        std::fs::write(
            &requirements,
            format!(
                "componentize-py=={COMPONENTIZE_PY_VERSION} --hash=sha256:{COMPONENTIZE_PY_SHA256}\n"
            ),
        )?;
        eprintln!("goru-guest-builder: downloading componentize-py {COMPONENTIZE_PY_VERSION}");
        run(Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
            ])
            .args(["--require-hashes", "-r"])
            .arg(&requirements)
            .arg("-d")
            .arg(&wheel_dir))?;
    }
    // pip checked the hash on download; check again so a tampered cache is caught too.
    verify_sha256(&wheel, COMPONENTIZE_PY_SHA256)?;
    if !exe.exists() {
        let _ = std::fs::remove_dir_all(&venv);
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(venv.join("bin/python"))
            .args(["-m", "pip", "install", "--quiet", "--no-deps", "--no-index"])
            .arg(&wheel))?;
    }
    Ok(exe)
}

/// Fetches the rquickjs-sys crate with cargo (pinned version, sha256 checked),
/// unpacks it under `work` and returns the directory holding the QuickJS-NG
/// sources (`quickjs.c` and friends).
pub fn quickjs_source(work: &Path) -> Result<PathBuf> {
    let unpacked = work.join(format!("rquickjs-sys-{RQUICKJS_SYS_VERSION}"));
    let sources = unpacked.join("quickjs");
    let stamp = unpacked.join(".goru-verified");
    if stamp.exists() {
        return Ok(sources);
    }
    let crate_file = fetch_crate(work, "rquickjs-sys", RQUICKJS_SYS_VERSION)?;
    verify_sha256(&crate_file, RQUICKJS_SYS_SHA256)?;
    let _ = std::fs::remove_dir_all(&unpacked);
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&crate_file)
        .arg("-C")
        .arg(work))?;
    if !sources.join("quickjs.c").exists() {
        bail!("{} holds no quickjs.c", sources.display());
    }
    std::fs::write(&stamp, RQUICKJS_SYS_SHA256)?;
    Ok(sources)
}

/// Downloads one crate's `.crate` file through cargo (a throw-away manifest
/// that depends on it, then `cargo fetch`) and returns its path in cargo's cache.
fn fetch_crate(work: &Path, name: &str, version: &str) -> Result<PathBuf> {
    let manifest_dir = work.join(format!("fetch-{name}-{version}"));
    std::fs::create_dir_all(manifest_dir.join("src"))?;
    std::fs::write(
        manifest_dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"goru-fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
             [dependencies]\n{name} = {{ version = \"={version}\", default-features = false }}\n\n\
             [workspace]\n"
        ),
    )?;
    std::fs::write(manifest_dir.join("src/lib.rs"), "")?;
    eprintln!("goru-guest-builder: fetching {name} {version} with cargo");
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .arg("fetch")
            .arg("--quiet")
            .arg("--manifest-path")
            .arg(manifest_dir.join("Cargo.toml")),
    )?;
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let cache = cargo_home.join("registry/cache");
    let file_name = format!("{name}-{version}.crate");
    for registry in
        std::fs::read_dir(&cache).with_context(|| format!("reading {}", cache.display()))?
    {
        let candidate = registry?.path().join(&file_name);
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    bail!("cargo fetch left no {file_name} under {}", cache.display())
}
