//! `goru deps` and `--packages` / `--allow-install` as a user runs them,
//! against a local index the test starts (no network). One test uses the
//! real PyPI and runs only when asked: `GORU_TEST_REAL_INDEX=1 ./x test`
//! (or `cargo test --release -p goru-cli --test it -- --ignored deps::`).

use crate::common;

use common::goru;
use goru_tests::index::{Api, Index, IndexFile, Wheel};

/// A runtime for the index server, alive as long as the test holds it.
fn serve(api: Api, files: Vec<IndexFile>) -> (tokio::runtime::Runtime, Index) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let index = runtime.block_on(Index::start(api, files));
    (runtime, index)
}

/// `goru deps install WHAT --dir DIR --index-url URL`.
fn deps_install(what: &str, dir: &str, url: &str) -> common::Run {
    goru(&["deps", "install", what, "--dir", dir, "--index-url", url])
}

fn demo_files() -> Vec<IndexFile> {
    vec![
        IndexFile::wheel(
            &Wheel::new("demo-pkg", "2.0")
                .requires("helper>=1")
                .requires("windows-only; sys_platform == \"win32\"")
                .file("demo_pkg/__init__.py", "from helper import ANSWER\n"),
        ),
        IndexFile::wheel(&Wheel::new("helper", "1.0").file("helper/__init__.py", "ANSWER = 42\n")),
        IndexFile::wheel(&Wheel::new("numpy", "2.3.5").tag("cp314-cp314-manylinux_2_27_x86_64")),
        IndexFile::wheel(
            &Wheel::new("sneaky", "1.0").requires("payload @ https://evil.example/payload.whl"),
        ),
    ]
}

#[test]
fn install_then_import_list_and_remove() {
    let (_runtime, index) = serve(Api::Html, demo_files());
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pkgs");
    let dir = dir.to_str().unwrap();
    let url = index.url();

    let run = deps_install("demo-pkg", dir, &url);
    run.assert_code(0);
    assert_eq!(run.stdout, "installed demo-pkg 2.0\ninstalled helper 1.0\n");
    assert!(
        run.stderr
            .contains("downloaded demo_pkg-2.0-py3-none-any.whl")
            && run.stderr.contains("sha256 checked"),
        "{}",
        run.stderr
    );

    let run = goru(&[
        "--packages",
        dir,
        "-l",
        "python",
        "-c",
        "import demo_pkg; print(demo_pkg.ANSWER)",
    ]);
    run.assert_code(0);
    assert_eq!(run.stdout, "42\n");

    let run = goru(&["deps", "list", "--dir", dir]);
    run.assert_code(0);
    assert_eq!(run.stdout, "demo-pkg  2.0\nhelper    1.0\n");

    // Again: satisfied, nothing downloaded.
    let run = deps_install("demo-pkg", dir, &url);
    run.assert_code(0);
    assert_eq!(run.stdout, "already installed demo-pkg 2.0\n");
    assert!(!run.stderr.contains("downloaded"), "{}", run.stderr);

    let run = goru(&["deps", "remove", "helper", "--dir", dir]);
    run.assert_code(0);
    assert_eq!(run.stdout, "removed helper 1.0\n");
    let run = goru(&["--packages", dir, "-l", "python", "-c", "import demo_pkg"]);
    run.assert_code(1);
    assert!(
        run.stderr
            .contains("ModuleNotFoundError: No module named 'helper'"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("goru deps install"), "{}", run.stderr);
}

#[test]
fn the_default_directory_is_dot_goru_packages() {
    let (_runtime, index) = serve(Api::Json, demo_files());
    let work = tempfile::tempdir().unwrap();
    let url = index.url();
    let run = common::goru_in(
        Some(work.path()),
        &["deps", "install", "helper", "--index-url", &url],
        b"",
    );
    run.assert_code(0);
    assert!(
        work.path()
            .join(".goru/packages/helper/__init__.py")
            .exists()
    );
    let run = common::goru_in(
        Some(work.path()),
        &[
            "--packages",
            ".goru/packages",
            "-l",
            "python",
            "-c",
            "import helper; print(helper.ANSWER)",
        ],
        b"",
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "42\n");
}

#[test]
fn refusals_say_why() {
    let (_runtime, index) = serve(Api::Json, demo_files());
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pkgs");
    let dir = dir.to_str().unwrap();
    let url = index.url();

    for (what, index, code, says) in [
        (
            "numpy",
            url.as_str(),
            1,
            "`numpy` 2.3.5 is not a pure-Python package",
        ),
        (
            "helper @ https://evil.example/x.whl",
            &url,
            2,
            "URLs and paths are not accepted",
        ),
        (
            "nothing-here",
            &url,
            1,
            "was not found on the package index",
        ),
        ("helper", "ftp://mirror/simple", 2, "invalid index URL"),
        // A package's fault, not the command line's: exit 1.
        ("sneaky", &url, 1, "depends on a direct URL"),
    ] {
        let run = deps_install(what, dir, index);
        run.assert_code(code);
        assert!(run.stderr.contains(says), "{what}: {}", run.stderr);
    }

    let run = goru(&["deps", "remove", "helper", "--dir", dir]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("is not installed") && run.stderr.contains("goru deps list"),
        "{}",
        run.stderr
    );

    let run = goru(&[
        "--packages",
        "/nonexistent/goru-pkgs",
        "-c",
        "print(1)",
        "-l",
        "python",
    ]);
    run.assert_code(2);
    assert!(run.stderr.contains("goru deps install"), "{}", run.stderr);

    let run = goru(&["--allow-install", "attrs", "-l", "python", "-c", "print(1)"]);
    run.assert_code(2);
    assert!(run.stderr.contains("--packages"), "{}", run.stderr);

    let run = goru(&["--packages", dir, "-l", "js", "-c", "1"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("`--packages` is for Python only"),
        "{}",
        run.stderr
    );
}

#[test]
fn deps_never_prints_index_credentials_and_refuses_a_planted_link() {
    let (_runtime, index) = serve(Api::Json, demo_files());
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pkgs");
    let dir = dir.to_str().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    for (what, url) in [
        (
            "nothing-here",
            index.url().replace("http://", "http://alice:s3cret@"),
        ),
        (
            "helper",
            format!("http://alice:s3cret@127.0.0.1:{port}/simple"),
        ),
        ("helper", "ftp://alice:s3cret@mirror/simple".to_string()),
    ] {
        let run = deps_install(what, dir, &url);
        assert_ne!(run.code, 0, "{url}");
        assert!(
            !run.stderr.contains("s3cret") && !run.stderr.contains("alice"),
            "{url}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("***@"), "{url}: {}", run.stderr);
    }

    // A sandbox with a writable mount over the project made `.goru` a link.
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), work.path().join(".goru")).unwrap();
    let below_link = work.path().join(".goru/packages");
    let run = deps_install("helper", below_link.to_str().unwrap(), &index.url());
    run.assert_code(1);
    assert!(
        run.stderr.contains("symbolic link") && run.stderr.contains("hint:"),
        "{}",
        run.stderr
    );
    assert!(
        std::fs::read_dir(elsewhere.path())
            .unwrap()
            .next()
            .is_none(),
        "something was written through the link"
    );
}

#[test]
fn install_pkg_inside_the_sandbox_obeys_the_allow_list() {
    let (_runtime, index) = serve(Api::Json, demo_files());
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pkgs");
    std::fs::create_dir(&dir).unwrap();
    let dir = dir.to_str().unwrap();
    let url = index.url();
    let code = "v = install_pkg('demo-pkg', '>=1.0')\n\
                import demo_pkg\n\
                print(v, demo_pkg.ANSWER)\n\
                install_pkg('not-allowed')\n";
    let run = goru(&[
        "--packages",
        dir,
        "--allow-install",
        "demo-pkg",
        "--index-url",
        &url,
        "-l",
        "python",
        "-c",
        code,
    ]);
    run.assert_code(1);
    assert_eq!(run.stdout, "2.0 42\n");
    assert!(
        run.stderr.contains(
            "PermissionError: `not-allowed` is not on this sandbox's install allow-list (allowed: demo-pkg)"
        ),
        "{}",
        run.stderr
    );
}

#[test]
#[ignore = "uses the real PyPI: run with --ignored, or GORU_TEST_REAL_INDEX=1 ./x test"]
fn real_index_attrs_and_dateutil() {
    let work = tempfile::tempdir().unwrap();
    let run = common::goru_in(
        Some(work.path()),
        &["deps", "install", "attrs", "python-dateutil"],
        b"",
    );
    run.assert_code(0);
    assert!(
        run.stdout.contains("installed attrs ")
            && run.stdout.contains("installed python-dateutil "),
        "{}",
        run.stdout
    );
    let run = common::goru_in(
        Some(work.path()),
        &[
            "--packages",
            ".goru/packages",
            "-l",
            "python",
            "-c",
            "import attrs, dateutil; print(\"ok\")",
        ],
        b"",
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "ok\n");
    let run = common::goru_in(Some(work.path()), &["deps", "install", "numpy"], b"");
    run.assert_code(1);
    assert!(
        run.stderr.contains("is not a pure-Python package"),
        "{}",
        run.stderr
    );
}
