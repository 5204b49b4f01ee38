//! `--mount` and the `fs` module through the real `goru` binary.

use crate::common;

use common::{Run, goru, goru_in, write_file};
use std::path::Path;

/// Runs Python `code` with `goru --mount SPEC... -l python -c CODE`.
fn python(mounts: &[String], code: &str) -> Run {
    python_in(None, mounts, code)
}

fn python_in(dir: Option<&Path>, mounts: &[String], code: &str) -> Run {
    let mut args: Vec<&str> = Vec::new();
    for spec in mounts {
        args.extend(["--mount", spec]);
    }
    args.extend(["-l", "python", "-c", code]);
    goru_in(dir, &args, b"")
}

fn spec(guest: &str, host: &Path, mode: &str) -> String {
    format!("{guest}:{}:{mode}", host.display())
}

/// `attempt(f)`: `f`'s result, `ok` for None, or the exception's name.
const ATTEMPT: &str = "import os\n\
def attempt(f):\n    \
    try:\n        \
        r = f()\n        \
        return 'ok' if r is None else r\n    \
    except Exception as e:\n        \
        return type(e).__name__\n";

#[test]
fn ro_mount_reads_and_refuses_a_write_with_permission_error() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "x.txt", "hello from the host");
    let mounts = [spec("/data", dir.path(), "ro")];
    let run = python(&mounts, "print(open('/data/x.txt').read())");
    run.assert_code(0);
    assert_eq!(run.stdout, "hello from the host\n");

    let run = python(&mounts, "open('/data/y.txt', 'w').write('no')");
    run.assert_code(1);
    assert!(
        run.stderr.contains("PermissionError") && run.stderr.contains("'/data/y.txt'"),
        "{}",
        run.stderr
    );
    let run = python(&mounts, "fs.write_text('/data/y.txt', 'no')");
    run.assert_code(1);
    assert!(
        run.stderr.contains(
            "PermissionError: `/data/y.txt` is on the `ro` mount `/data`: changing files needs `rw` or `rwc`"
        ),
        "{}",
        run.stderr
    );
    assert!(!dir.path().join("y.txt").exists());
}

#[test]
fn rwc_mount_creates_files() {
    let dir = tempfile::tempdir().unwrap();
    let mounts = [spec("/data", dir.path(), "rwc")];
    let code = "open('/data/y.txt', 'w').write('via open')\n\
                fs.mkdir('/data/sub')\n\
                fs.write_json('/data/sub/v.json', {'n': 1})\n\
                print(fs.listdir('/data'), fs.read_json('/data/sub/v.json'))";
    let run = python(&mounts, code);
    run.assert_code(0);
    assert_eq!(run.stdout, "['sub', 'y.txt'] {'n': 1}\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("y.txt")).unwrap(),
        "via open"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("sub/v.json")).unwrap(),
        r#"{"n": 1}"#
    );
}

#[test]
fn rw_mount_overwrites_existing_files_but_cannot_create() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "x.txt", "old");
    let mounts = [spec("/data", dir.path(), "rw")];
    let code = format!(
        "{ATTEMPT}\
         print(attempt(lambda: fs.write_text('/data/x.txt', 'new')))\n\
         print(attempt(lambda: fs.write_text('/data/y.txt', 'created')))\n\
         print(attempt(lambda: open('/data/y.txt', 'w')))\n\
         print(attempt(lambda: fs.mkdir('/data/d')))\n\
         print(attempt(lambda: open('/data/x.txt', 'a').write(' and more')))"
    );
    let run = python(&mounts, &code);
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "ok\nPermissionError\nPermissionError\nPermissionError\n9\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("x.txt")).unwrap(),
        "new and more"
    );
    assert!(!dir.path().join("y.txt").exists());
}

#[test]
fn nothing_leaves_a_mount() {
    let root = tempfile::tempdir().unwrap();
    let base = root.path();
    for dir in ["data", "outside", "data-secret"] {
        std::fs::create_dir(base.join(dir)).unwrap();
    }
    write_file(&base.join("outside"), "secret.txt", "top secret");
    write_file(&base.join("data-secret"), "s.txt", "sibling secret");
    let link = |target: &Path, name: &str| {
        std::os::unix::fs::symlink(target, base.join("data").join(name)).unwrap();
    };
    link(&base.join("outside/secret.txt"), "abs_link");
    link(Path::new("../outside/secret.txt"), "rel_link");
    link(&base.join("outside/planted.txt"), "dangling");
    let mounts = [spec("/data", &base.join("data"), "rwc")];
    let code = format!(
        "{ATTEMPT}\
         for label, f in [\n    \
           ('open ..', lambda: open('/data/../outside/secret.txt').read()),\n    \
           ('fs ..', lambda: fs.read_text('/data/../outside/secret.txt')),\n    \
           ('open abs', lambda: open('/data/abs_link').read()),\n    \
           ('fs abs', lambda: fs.read_text('/data/abs_link')),\n    \
           ('open rel', lambda: open('/data/rel_link').read()),\n    \
           ('fs rel', lambda: fs.read_text('/data/rel_link')),\n    \
           ('open dangling', lambda: open('/data/dangling', 'w').write('x')),\n    \
           ('fs dangling', lambda: fs.write_text('/data/dangling', 'x')),\n    \
           ('open sibling', lambda: open('/data-secret/s.txt').read()),\n    \
           ('fs sibling', lambda: fs.read_text('/data-secret/s.txt')),\n    \
           ('remove root', lambda: fs.remove('/data')),\n    \
           ('rmdir root', lambda: os.rmdir('/data')),\n\
         ]:\n    \
           print(label, attempt(f))"
    );
    let run = python(&mounts, &code);
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "open .. PermissionError\n\
         fs .. PermissionError\n\
         open abs PermissionError\n\
         fs abs PermissionError\n\
         open rel PermissionError\n\
         fs rel PermissionError\n\
         open dangling PermissionError\n\
         fs dangling PermissionError\n\
         open sibling FileNotFoundError\n\
         fs sibling PermissionError\n\
         remove root PermissionError\n\
         rmdir root OSError\n"
    );
    assert!(!base.join("outside/planted.txt").exists());
    assert!(base.join("data").is_dir());
}

#[test]
fn default_size_caps_hold_at_their_edge() {
    const CAP: usize = 16 << 20;
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "exact.txt", &"a".repeat(CAP));
    write_file(dir.path(), "over.txt", &"a".repeat(CAP + 1));
    let mounts = [spec("/data", dir.path(), "rwc")];
    let code = format!(
        "{ATTEMPT}\
         print(len(fs.read_text('/data/exact.txt')))\n\
         print(attempt(lambda: fs.read_text('/data/over.txt')))\n\
         print(attempt(lambda: fs.write_text('/data/w.txt', 'b' * {CAP})))\n\
         print(attempt(lambda: fs.write_text('/data/w2.txt', 'b' * {})))",
        CAP + 1
    );
    let run = python(&mounts, &code);
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{CAP}\nValueError\nok\nValueError\n"));
    assert_eq!(
        std::fs::metadata(dir.path().join("w.txt")).unwrap().len(),
        CAP as u64
    );
    assert!(!dir.path().join("w2.txt").exists());
}

#[test]
fn without_a_mount_fs_names_the_option() {
    let run = python(&[], "fs.read_text('/data/x.txt')");
    run.assert_code(1);
    assert!(
        run.stderr.contains("PermissionError") && run.stderr.contains("`--mount GUEST:HOST:ro`"),
        "{}",
        run.stderr
    );
}

#[test]
fn concurrent_runs_see_only_their_own_mounts() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write_file(a.path(), "owner.txt", "a");
    write_file(b.path(), "owner.txt", "b");
    let code = format!(
        "{ATTEMPT}\
         seen = {{open('/data/owner.txt').read() for _ in range(20)}} | {{fs.read_text('/data/owner.txt') for _ in range(20)}}\n\
         print(sorted(seen), attempt(lambda: fs.read_text('/a-only/owner.txt')))"
    );
    let runs = std::thread::scope(|scope| {
        let run_a = scope.spawn(|| {
            python(
                &[
                    spec("/data", a.path(), "ro"),
                    spec("/a-only", a.path(), "ro"),
                ],
                &code,
            )
        });
        let run_b = scope.spawn(|| python(&[spec("/data", b.path(), "ro")], &code));
        (run_a.join().unwrap(), run_b.join().unwrap())
    });
    runs.0.assert_code(0);
    runs.1.assert_code(0);
    assert_eq!(runs.0.stdout, "['a'] a\n");
    assert_eq!(runs.1.stdout, "['b'] PermissionError\n");
}

#[test]
fn a_relative_host_path_is_taken_against_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    write_file(&dir.path().join("sub"), "x.txt", "relative");
    let run = python_in(
        Some(dir.path()),
        &["/data:sub:ro".to_string()],
        "print(fs.read_text('/data/x.txt'))",
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "relative\n");
}

#[test]
fn bad_mounts_are_usage_errors_with_the_format() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "file", "x");
    let host = dir.path().display().to_string();
    let cases = [
        (format!("/data:{host}"), "expected `GUEST:HOST:MODE`"),
        (format!("/data:{host}:rx"), "invalid mount mode `rx`"),
        (format!("data:{host}:ro"), "must be an absolute path"),
        ("/data:./no-such-dir:ro".to_string(), "No such file"),
        (format!("/data:{host}/file:ro"), "not a directory"),
    ];
    for (spec, expected) in cases {
        let run = goru(&["--mount", &spec, "-l", "python", "-c", "print(1)"]);
        run.assert_code(2);
        assert!(run.stderr.contains(expected), "{spec}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("hint: mount a directory with `--mount GUEST:HOST:MODE`"),
            "{spec}: {}",
            run.stderr
        );
    }
    let twice = format!("/data:{host}:ro");
    let run = goru(&[
        "--mount", &twice, "--mount", &twice, "-l", "python", "-c", "print(1)",
    ]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("mount point `/data` is given twice"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_fifo_in_a_mount_fails_at_once_and_goru_exits() {
    let dir = tempfile::tempdir().unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(dir.path().join("fifo"))
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let mount = spec("/data", dir.path(), "ro");
    // Opening a FIFO that has no writer used to wait for one for ever, past
    // the timeout, and goru's exit waited for that open too.
    let run = goru(&[
        "--timeout",
        "20s",
        "--mount",
        &mount,
        "-l",
        "python",
        "-c",
        "open('/data/fifo')",
    ]);
    run.assert_code(1);
    assert!(
        run.elapsed < std::time::Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
    assert!(
        run.stderr.contains("OSError: [Errno ")
            && run.stderr.contains("Not supported: '/data/fifo'"),
        "{}",
        run.stderr
    );
}
