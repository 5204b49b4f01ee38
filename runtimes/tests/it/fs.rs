//! Mounts and the `fs` module through the engine API, from Python: modes,
//! every way out of a mount, size caps, isolation between sessions.

use crate::outcomes;

use goru_runtimes::{
    Capabilities, CapabilityError, Engine, Error, FsLimits, Language, Limits, Mount, MountError,
    MountMode, Outcome, SessionBuilder, StartError,
};
use outcomes::stdout;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

/// One engine for the whole test binary: the guest compiles once.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new().expect("engine"))
}

/// Python helpers every test script starts with: `attempt(f)` runs `f` and
/// returns its result, `ok` for None, or the name of the exception raised;
/// `message(f)` returns the exception's message.
const PRELUDE: &str = r#"
import os
def attempt(f):
    try:
        result = f()
        return 'ok' if result is None else result
    except Exception as e:
        return type(e).__name__
def message(f):
    try:
        f()
    except Exception as e:
        return f'{type(e).__name__}: {e}'
    return 'no error'
"#;

fn builder(mounts: Vec<Mount>) -> SessionBuilder {
    builder_with(mounts, FsLimits::default())
}

fn builder_with(mounts: Vec<Mount>, fs_limits: FsLimits) -> SessionBuilder {
    let mut builder = SessionBuilder::new(Language::Python);
    builder.capabilities(Capabilities {
        mounts,
        fs_limits,
        ..Capabilities::none()
    });
    builder
}

fn mount(guest: &str, host: &Path, mode: MountMode) -> Mount {
    Mount::new(guest, host, mode)
}

async fn run(builder: &SessionBuilder, code: &str) -> Outcome {
    engine()
        .run_once(builder, &format!("{PRELUDE}\n{code}"), "<test>")
        .await
        .expect("run")
}

fn write(dir: &Path, name: &str, contents: &str) {
    std::fs::write(dir.join(name), contents).unwrap();
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

#[tokio::test]
async fn ro_mount_reads_and_refuses_every_change() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "x.txt", "hello");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    write(dir.path(), "sub/data.json", r#"{"n": [1, 2]}"#);
    let builder = builder(vec![mount("/data", dir.path(), MountMode::Ro)]);
    let code = r#"
print(open('/data/x.txt').read())
print(sorted(os.listdir('/data')))
print(fs.read_text('/data/x.txt'), fs.read_json('/data/sub/data.json'))
print(fs.listdir('/data'), fs.listdir('/data/sub'))
print(fs.exists('/data/x.txt'), fs.exists('/data/nope'), fs.exists('/elsewhere'))
st = fs.stat('/data/x.txt')
print(st.size, st.is_file, st.is_dir, st.mtime > 1e9, fs.stat('/data/sub').is_dir)
print('open w', attempt(lambda: open('/data/y.txt', 'w')))
print('open r+', attempt(lambda: open('/data/x.txt', 'r+')))
print('os.remove', attempt(lambda: os.remove('/data/x.txt')))
print('os.mkdir', attempt(lambda: os.mkdir('/data/new')))
print('write new', attempt(lambda: fs.write_text('/data/y.txt', 'y')))
print('write old', attempt(lambda: fs.write_text('/data/x.txt', 'y')))
print('remove', attempt(lambda: fs.remove('/data/x.txt')))
print('mkdir', attempt(lambda: fs.mkdir('/data/new')))
print(message(lambda: fs.write_text('/data/y.txt', 'y')))
"#;
    let out = stdout(&run(&builder, code).await);
    assert_eq!(
        out,
        "hello\n\
         ['sub', 'x.txt']\n\
         hello {'n': [1, 2]}\n\
         ['sub', 'x.txt'] ['data.json']\n\
         True False False\n\
         5 True False True True\n\
         open w PermissionError\n\
         open r+ PermissionError\n\
         os.remove PermissionError\n\
         os.mkdir PermissionError\n\
         write new PermissionError\n\
         write old PermissionError\n\
         remove PermissionError\n\
         mkdir PermissionError\n\
         PermissionError: `/data/y.txt` is on the `ro` mount `/data`: changing files needs `rw` or `rwc`\n"
    );
    assert_eq!(read(dir.path(), "x.txt"), "hello");
    assert!(!dir.path().join("y.txt").exists());
    assert!(!dir.path().join("new").exists());
}

#[tokio::test]
async fn rw_mount_overwrites_and_removes_but_never_creates() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "x.txt", "old");
    write(dir.path(), "gone.txt", "bye");
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let builder = builder(vec![mount("/data", dir.path(), MountMode::Rw)]);
    let code = r#"
print('write old', attempt(lambda: fs.write_text('/data/x.txt', 'new')))
print(fs.read_text('/data/x.txt'), open('/data/x.txt').read())
print('write new', attempt(lambda: fs.write_text('/data/y.txt', 'y')))
print('mkdir', attempt(lambda: fs.mkdir('/data/d')))
print('remove file', attempt(lambda: fs.remove('/data/gone.txt')))
print('remove dir', attempt(lambda: fs.remove('/data/empty')))
print('remove missing', attempt(lambda: fs.remove('/data/gone.txt')))
print(message(lambda: fs.write_text('/data/y.txt', 'y')))
"#;
    let out = stdout(&run(&builder, code).await);
    assert_eq!(
        out,
        "write old ok\n\
         new new\n\
         write new PermissionError\n\
         mkdir PermissionError\n\
         remove file ok\n\
         remove dir ok\n\
         remove missing FileNotFoundError\n\
         PermissionError: `/data/y.txt` does not exist and its mount is `rw`: creating files needs `rwc`\n"
    );
    assert_eq!(read(dir.path(), "x.txt"), "new");
    assert!(!dir.path().join("y.txt").exists());
    assert!(!dir.path().join("d").exists());
    assert!(!dir.path().join("gone.txt").exists());
    assert!(!dir.path().join("empty").exists());
}

#[tokio::test]
async fn rwc_mount_creates_with_open_and_fs() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "x.txt", "hello");
    let builder = builder(vec![mount("/data", dir.path(), MountMode::Rwc)]);
    let code = r#"
with open('/data/y.txt', 'w') as f:
    f.write('from open')
os.mkdir('/data/plain')
fs.write_text('/data/z.txt', 'from fs')
fs.mkdir('/data/a/b', parents=True)
fs.mkdir('/data/a/b', parents=True)
fs.write_json('/data/a/b/v.json', {'k': [1, None]})
print(fs.read_json('/data/a/b/v.json'), open('/data/z.txt').read())
print('mkdir again', attempt(lambda: fs.mkdir('/data/a')))
print('mkdir no parent', attempt(lambda: fs.mkdir('/data/p/q')))
print('remove non-empty', attempt(lambda: fs.remove('/data/a')))
print('read dir', attempt(lambda: fs.read_text('/data/a')))
print('write dir', attempt(lambda: fs.write_text('/data/a', 'x')))
print('listdir file', attempt(lambda: fs.listdir('/data/x.txt')))
print('read missing', attempt(lambda: fs.read_text('/data/missing.txt')))
print('write into missing dir', attempt(lambda: fs.write_text('/data/no/such.txt', 'x')))
os.chdir('/data')
print('relative', fs.read_text('x.txt'), open('x.txt').read(), fs.exists('../data/x.txt'))
print(fs.listdir('/data'))
os.remove('/data/y.txt')
fs.remove('/data/a/b/v.json')
fs.remove('/data/a/b')
print(fs.listdir('/data'), fs.listdir('/data/a'))
"#;
    let out = stdout(&run(&builder, code).await);
    assert_eq!(
        out,
        "{'k': [1, None]} from fs\n\
         mkdir again FileExistsError\n\
         mkdir no parent FileNotFoundError\n\
         remove non-empty OSError\n\
         read dir IsADirectoryError\n\
         write dir IsADirectoryError\n\
         listdir file NotADirectoryError\n\
         read missing FileNotFoundError\n\
         write into missing dir FileNotFoundError\n\
         relative hello hello True\n\
         ['a', 'plain', 'x.txt', 'y.txt', 'z.txt']\n\
         ['a', 'plain', 'x.txt', 'z.txt'] []\n"
    );
    assert_eq!(read(dir.path(), "z.txt"), "from fs");
    assert!(dir.path().join("plain").is_dir());
    assert!(dir.path().join("a").is_dir());
}

/// A host tree with a secret beside the mounted directory and links in it
/// that point at the secret every way there is.
struct Escapes {
    root: tempfile::TempDir,
}

impl Escapes {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let base = root.path();
        for dir in ["data/sub", "data/-secret", "outside", "data-secret"] {
            std::fs::create_dir_all(base.join(dir)).unwrap();
        }
        write(base, "outside/secret.txt", "top secret");
        write(base, "data-secret/s.txt", "sibling secret");
        write(base, "data/x.txt", "inside");
        // What `/data-secret/s.txt` would open if mounts matched as strings.
        write(base, "data/-secret/s.txt", "wrong mount");
        let link = |target: &Path, name: &str| {
            std::os::unix::fs::symlink(target, base.join("data").join(name)).unwrap()
        };
        link(&base.join("outside/secret.txt"), "abs_link");
        link(Path::new("../outside/secret.txt"), "rel_link");
        link(Path::new("sub/../../outside/secret.txt"), "rel_link2");
        link(&base.join("outside/planted.txt"), "dangling_abs");
        link(Path::new("../outside/planted-rel.txt"), "dangling_rel");
        link(&base.join("outside"), "dir_link");
        link(Path::new("x.txt"), "good_link");
        Escapes { root }
    }

    fn data(&self) -> std::path::PathBuf {
        self.root.path().join("data")
    }

    fn outside(&self) -> std::path::PathBuf {
        self.root.path().join("outside")
    }
}

#[tokio::test]
async fn nothing_leaves_a_mount() {
    // The writable modes, so writes through links are tried too: `rwc` can
    // create, `rw` overwrites, removes and renames with plain calls.
    for mode in [MountMode::Rwc, MountMode::Rw] {
        nothing_leaves_a_mount_in(mode).await;
    }
}

async fn nothing_leaves_a_mount_in(mode: MountMode) {
    let tree = Escapes::new();
    let builder = builder(vec![mount("/data", &tree.data(), mode)]);
    let code = r#"
results = {}
def check(name, f):
    results[name] = attempt(f)
check('open ..', lambda: open('/data/../outside/secret.txt').read())
check('open sub/../..', lambda: open('/data/sub/../../outside/secret.txt').read())
check('fs ..', lambda: fs.read_text('/data/../outside/secret.txt'))
check('fs sub/../..', lambda: fs.read_text('/data/sub/../../outside/secret.txt'))
for link in ['abs_link', 'rel_link', 'rel_link2', 'dir_link/secret.txt']:
    check('open ' + link, lambda: open('/data/' + link).read())
    check('fs ' + link, lambda: fs.read_text('/data/' + link))
    check('stat ' + link, lambda: fs.stat('/data/' + link))
    check('exists ' + link, lambda: fs.exists('/data/' + link))
    check('write ' + link, lambda: fs.write_text('/data/' + link, 'overwritten'))
    check('open w ' + link, lambda: open('/data/' + link, 'w').write('overwritten'))
for link in ['dangling_abs', 'dangling_rel', 'dir_link/new.txt']:
    check('open w ' + link, lambda: open('/data/' + link, 'w').write('planted'))
    check('fs write ' + link, lambda: fs.write_text('/data/' + link, 'planted'))
check('listdir dir_link', lambda: fs.listdir('/data/dir_link'))
check('os.listdir dir_link', lambda: os.listdir('/data/dir_link'))
check('mkdir through dir_link', lambda: fs.mkdir('/data/dir_link/d'))
check('open sibling', lambda: open('/data-secret/s.txt').read())
check('fs sibling', lambda: fs.read_text('/data-secret/s.txt'))
check('fs sibling via ..', lambda: fs.read_text('/data/../data-secret/s.txt'))
check('exists sibling', lambda: fs.exists('/data-secret/s.txt'))
check('new symlink out', lambda: (os.symlink('../outside/secret.txt', '/data/made'), open('/data/made').read()))
check('hard link out', lambda: os.link('/data/../outside/secret.txt', '/data/hl'))
check('rename out', lambda: os.rename('/data/x.txt', '/data/../outside/x.txt'))
check('rename through dir_link', lambda: os.rename('/data/x.txt', '/data/dir_link/x.txt'))
check('rename in through rel_link2', lambda: os.rename('/data/rel_link2', '/data/in.txt') or open('/data/in.txt').read())
check('remove through dir_link', lambda: os.remove('/data/dir_link/secret.txt'))
check('truncate abs_link', lambda: os.truncate('/data/abs_link', 0))
check('utime abs_link', lambda: os.utime('/data/abs_link', (0, 0)))
check('remove root', lambda: fs.remove('/data'))
check('remove root/', lambda: fs.remove('/data/'))
check('remove sub/..', lambda: fs.remove('/data/sub/..'))
check('os.rmdir root', lambda: os.rmdir('/data'))
check('good link', lambda: fs.read_text('/data/good_link') + open('/data/good_link').read())
for name, result in results.items():
    print(name, '=', result)
print(message(lambda: fs.read_text('/data/abs_link')))
print(message(lambda: fs.read_text('/data-secret/s.txt')))
"#;
    let out = stdout(&run(&builder, code).await);
    let mut lines = out.lines();
    for line in lines
        .by_ref()
        .take_while(|line| !line.starts_with("good link"))
    {
        let (name, result) = line.split_once(" = ").unwrap();
        let refused = if name.starts_with("exists") {
            result == "False"
        } else {
            result.ends_with("Error")
        };
        assert!(refused, "{name} was not refused: {result}\n{out}");
    }
    assert!(out.contains("good link = insideinside\n"), "{out}");
    assert!(
        out.contains(
            "PermissionError: `/data/abs_link` leads outside its mount (through `..` or a symbolic link)\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("PermissionError: `/data-secret/s.txt` is not on a mount (mounted: /data)\n"),
        "{out}"
    );
    assert!(
        !out.contains("top secret")
            && !out.contains("sibling secret")
            && !out.contains("wrong mount"),
        "a secret leaked: {out}"
    );
    let host = tree.root.path().to_string_lossy().into_owned();
    assert!(!out.contains(&host), "a host path leaked: {out}");
    // Nothing outside changed, nothing was planted.
    assert_eq!(read(&tree.outside(), "secret.txt"), "top secret");
    let outside: Vec<_> = std::fs::read_dir(tree.outside())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(outside, ["secret.txt"]);
    assert!(tree.data().is_dir());
    assert_eq!(read(&tree.data(), "x.txt"), "inside");
}

#[tokio::test]
async fn the_longest_matching_mount_wins() {
    let outer = tempfile::tempdir().unwrap();
    let inner = tempfile::tempdir().unwrap();
    write(outer.path(), "x.txt", "outer");
    write(inner.path(), "x.txt", "inner");
    let builder = builder(vec![
        mount("/data", outer.path(), MountMode::Ro),
        mount("/data/out", inner.path(), MountMode::Rwc),
    ]);
    let code = r#"
print(fs.read_text('/data/x.txt'), fs.read_text('/data/out/x.txt'), open('/data/out/x.txt').read())
fs.write_text('/data/out/new.txt', 'via fs')
open('/data/out/new2.txt', 'w').write('via open')
print('outer write', attempt(lambda: fs.write_text('/data/new.txt', 'x')))
print('outer open w', attempt(lambda: open('/data/new.txt', 'w')))
print(fs.read_text('/data/out/../x.txt'))
"#;
    let out = stdout(&run(&builder, code).await);
    assert_eq!(
        out,
        "outer inner inner\nouter write PermissionError\nouter open w PermissionError\nouter\n"
    );
    assert_eq!(read(inner.path(), "new.txt"), "via fs");
    assert_eq!(read(inner.path(), "new2.txt"), "via open");
    assert!(!outer.path().join("new.txt").exists());
}

#[tokio::test]
async fn size_caps_hold_at_their_edge() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "exact.txt", &"a".repeat(1000));
    write(dir.path(), "over.txt", &"a".repeat(1001));
    write(dir.path(), "keep.txt", "unchanged");
    let limits = FsLimits {
        max_read_bytes: 1000,
        max_write_bytes: 1000,
    };
    let builder = builder_with(vec![mount("/data", dir.path(), MountMode::Rwc)], limits);
    let code = r#"
print(len(fs.read_text('/data/exact.txt')))
print(message(lambda: fs.read_text('/data/over.txt')))
fs.write_text('/data/w1.txt', 'b' * 1000)
fs.write_text('/data/w2.txt', 'é' * 500)
print(message(lambda: fs.write_text('/data/keep.txt', 'c' * 1001)))
print(attempt(lambda: fs.write_text('/data/keep.txt', 'é' * 501)))
print(len(open('/data/over.txt').read()))
"#;
    let out = stdout(&run(&builder, code).await);
    assert_eq!(
        out,
        "1000\n\
         ValueError: `/data/over.txt` is larger than the limit of 1000 bytes per read\n\
         ValueError: writing 1001 bytes to `/data/keep.txt` is more than the limit of 1000 bytes per write\n\
         ValueError\n\
         1001\n"
    );
    assert_eq!(read(dir.path(), "w1.txt").len(), 1000);
    assert_eq!(read(dir.path(), "w2.txt").len(), 1000);
    assert_eq!(read(dir.path(), "keep.txt"), "unchanged");
}

#[tokio::test]
async fn special_files_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(dir.path().join("fifo"))
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let builder = builder(vec![mount("/data", dir.path(), MountMode::Rw)]);
    // Opening a FIFO with no writer would block forever.
    let code = r#"
print(message(lambda: fs.read_text('/data/fifo')))
print(message(lambda: fs.write_text('/data/fifo', 'x')))
print(fs.stat('/data/fifo').is_file, fs.exists('/data/fifo'))
"#;
    let out = stdout(&run(&builder, code).await);
    assert_eq!(
        out,
        "OSError: not a regular file: `/data/fifo`\n\
         OSError: not a regular file: `/data/fifo`\n\
         False True\n"
    );
}

#[tokio::test]
async fn without_mounts_fs_is_off_and_names_the_option() {
    let builder = builder(vec![]);
    let code = r#"
print(message(lambda: fs.read_text('/data/x.txt')))
print(attempt(lambda: fs.exists('/data')))
print(attempt(lambda: open('/data/x.txt').read()))
print(attempt(lambda: os.listdir('/')))
"#;
    let out = stdout(&run(&builder, code).await);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("PermissionError: ") && lines[0].contains("`--mount GUEST:HOST:ro`"),
        "{out}"
    );
    assert_eq!(lines[1], "PermissionError", "{out}");
    assert_eq!(lines[2], "FileNotFoundError", "{out}");
    assert!(lines[3] == "[]" || lines[3].ends_with("Error"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_see_only_their_own_mounts() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write(a.path(), "owner.txt", "a");
    write(b.path(), "owner.txt", "b");
    let builder_a = builder(vec![
        mount("/data", a.path(), MountMode::Rwc),
        mount("/only-a", a.path(), MountMode::Ro),
    ]);
    let builder_b = builder(vec![mount("/data", b.path(), MountMode::Rwc)]);
    let code = r#"
seen = set()
for i in range(50):
    seen.add(open('/data/owner.txt').read())
    seen.add(fs.read_text('/data/owner.txt'))
    fs.write_text(f'/data/{i}.txt', fs.read_text('/data/owner.txt'))
print(sorted(seen))
print(attempt(lambda: fs.read_text('/only-a/owner.txt')), attempt(lambda: open('/only-a/owner.txt').read()))
"#;
    let (mut session_a, mut session_b) = (
        builder_a.start(engine()).await.unwrap(),
        builder_b.start(engine()).await.unwrap(),
    );
    let full = format!("{PRELUDE}\n{code}");
    let (out_a, out_b) = tokio::join!(
        tokio::spawn(async move { session_a.run(&full, "<a>").await.unwrap() }),
        tokio::spawn({
            let full = format!("{PRELUDE}\n{code}");
            async move { session_b.run(&full, "<b>").await.unwrap() }
        }),
    );
    assert_eq!(stdout(&out_a.unwrap()), "['a']\na a\n");
    assert_eq!(
        stdout(&out_b.unwrap()),
        "['b']\nPermissionError FileNotFoundError\n"
    );
    for i in 0..50 {
        assert_eq!(read(a.path(), &format!("{i}.txt")), "a");
        assert_eq!(read(b.path(), &format!("{i}.txt")), "b");
    }
}

#[tokio::test]
async fn bad_mounts_are_refused_before_the_session_starts() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "file", "x");
    let cases = [
        (vec![mount("data", dir.path(), MountMode::Ro)], "absolute"),
        (vec![mount("/", dir.path(), MountMode::Ro)], "root"),
        (
            vec![mount("/a/../b", dir.path(), MountMode::Ro)],
            "normalized",
        ),
        (
            vec![
                mount("/a", dir.path(), MountMode::Ro),
                mount("/a", dir.path(), MountMode::Rw),
            ],
            "twice",
        ),
        (
            vec![mount("/a", &dir.path().join("missing"), MountMode::Ro)],
            "missing",
        ),
        (
            vec![mount("/a", &dir.path().join("file"), MountMode::Ro)],
            "not a directory",
        ),
    ];
    for (mounts, expected) in cases {
        let caps = Capabilities {
            mounts: mounts.clone(),
            ..Capabilities::none()
        };
        assert!(
            goru_runtimes::check_capabilities(&caps, Language::Python).is_err(),
            "{mounts:?}"
        );
        let err = match builder(mounts.clone()).start(engine()).await {
            Err(StartError::Engine(Error::Capability(CapabilityError::Mount {
                error, ..
            }))) => error,
            Err(other) => panic!("{mounts:?}: {other}"),
            Ok(_) => panic!("{mounts:?} was accepted"),
        };
        let text = err.to_string();
        let matches = match expected {
            "missing" => matches!(err, MountError::Host { .. }),
            _ => text.contains(expected),
        };
        assert!(matches, "{mounts:?}: {text}");
    }
}

/// Plain file calls, one per row: what each does, and whether each mode
/// allows it (`ok`) or refuses it (`PermissionError`).
const PLAIN_CALLS: &[(&str, &str, [&str; 3])] = &[
    // (name, Python call, [ro, rw, rwc])
    (
        "read",
        "open('/data/read.txt').read()",
        ["data", "data", "data"],
    ),
    (
        "listdir",
        "'read.txt' in os.listdir('/data')",
        ["True", "True", "True"],
    ),
    ("stat", "os.stat('/data/read.txt').st_size", ["4", "4", "4"]),
    (
        "overwrite",
        "open('/data/write.txt', 'w').write('new')",
        ["PermissionError", "3", "3"],
    ),
    (
        "append",
        "open('/data/append.txt', 'a').write('+')",
        ["PermissionError", "1", "1"],
    ),
    (
        "read-write",
        "open('/data/rplus.txt', 'r+').write('N')",
        ["PermissionError", "1", "1"],
    ),
    (
        "truncate",
        "os.truncate('/data/trunc.txt', 1)",
        ["PermissionError", "ok", "ok"],
    ),
    (
        "utime",
        "os.utime('/data/utime.txt', (0, 0))",
        ["PermissionError", "ok", "ok"],
    ),
    (
        "remove",
        "os.remove('/data/remove.txt')",
        ["PermissionError", "ok", "ok"],
    ),
    (
        "rmdir",
        "os.rmdir('/data/rmdir')",
        ["PermissionError", "ok", "ok"],
    ),
    (
        "rename",
        "os.rename('/data/rename.txt', '/data/renamed.txt')",
        ["PermissionError", "ok", "ok"],
    ),
    (
        "create",
        "open('/data/new.txt', 'w').write('c')",
        ["PermissionError", "PermissionError", "1"],
    ),
    (
        "create x",
        "open('/data/new-x.txt', 'x').write('c')",
        ["PermissionError", "PermissionError", "1"],
    ),
    (
        "create a",
        "open('/data/new-a.txt', 'a').write('c')",
        ["PermissionError", "PermissionError", "1"],
    ),
    (
        "x existing",
        "open('/data/read.txt', 'x')",
        ["PermissionError", "FileExistsError", "FileExistsError"],
    ),
    (
        "mkdir",
        "os.mkdir('/data/newdir')",
        ["PermissionError", "PermissionError", "ok"],
    ),
    (
        "symlink",
        "os.symlink('read.txt', '/data/sym')",
        ["PermissionError", "PermissionError", "ok"],
    ),
    (
        "hard link",
        "os.link('/data/read.txt', '/data/hard')",
        ["PermissionError", "PermissionError", "ok"],
    ),
];

#[tokio::test]
async fn plain_file_calls_honour_each_mode_exactly() {
    let modes = [MountMode::Ro, MountMode::Rw, MountMode::Rwc];
    for (column, mode) in modes.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "read", "write", "append", "rplus", "trunc", "utime", "remove", "rename",
        ] {
            write(dir.path(), &format!("{name}.txt"), "data");
        }
        std::fs::create_dir(dir.path().join("rmdir")).unwrap();
        let builder = builder(vec![mount("/data", dir.path(), mode)]);
        let mut code = String::new();
        for (name, call, _) in PLAIN_CALLS {
            code.push_str(&format!("print({name:?}, '=', attempt(lambda: {call}))\n"));
        }
        let out = stdout(&run(&builder, &code).await);
        let expected: String = PLAIN_CALLS
            .iter()
            .map(|(name, _, results)| format!("{name} = {}\n", results[column]))
            .collect();
        assert_eq!(out, expected, "mode {mode}");

        // What the host sees afterwards.
        let exists = |name: &str| dir.path().join(name).symlink_metadata().is_ok();
        let changes = mode >= MountMode::Rw;
        let creates = mode == MountMode::Rwc;
        assert_eq!(read(dir.path(), "read.txt"), "data");
        let changed = |name: &str, after: &str| {
            let expected = if changes { after } else { "data" };
            assert_eq!(read(dir.path(), name), expected, "{name} on {mode}");
        };
        changed("write.txt", "new");
        changed("append.txt", "data+");
        changed("rplus.txt", "Nata");
        changed("trunc.txt", "d");
        let mtime = std::fs::metadata(dir.path().join("utime.txt"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(mtime == std::time::UNIX_EPOCH, changes, "utime on {mode}");
        assert_eq!(exists("remove.txt"), !changes, "remove on {mode}");
        assert_eq!(exists("rmdir"), !changes, "rmdir on {mode}");
        assert_eq!(exists("rename.txt"), !changes, "rename on {mode}");
        assert_eq!(exists("renamed.txt"), changes, "rename on {mode}");
        for created in ["new.txt", "new-x.txt", "new-a.txt", "newdir", "sym", "hard"] {
            assert_eq!(exists(created), creates, "{created} on {mode}");
        }
    }
}

#[tokio::test]
async fn plain_calls_on_a_fifo_fail_at_once_instead_of_waiting_for_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(dir.path().join("fifo"))
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    std::os::unix::fs::symlink("fifo", dir.path().join("fifo_link")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("socket")).unwrap();
    write(dir.path(), "x.txt", "regular");
    let mut builder = builder(vec![mount("/data", dir.path(), MountMode::Rwc)]);
    // Waiting would end the run at this timeout instead of raising.
    builder.limits(Limits {
        timeout: Duration::from_secs(10),
        ..Limits::default()
    });
    let code = r#"
import stat
print(message(lambda: open('/data/fifo')))
print(message(lambda: open('/data/fifo', 'w')))
print(message(lambda: open('/data/fifo_link', 'rb')))
print(message(lambda: os.open('/data/fifo', os.O_RDONLY | os.O_NONBLOCK)))
print(message(lambda: os.listdir('/data/fifo')))
print(message(lambda: open('/data/socket')))
print(stat.S_ISDIR(os.stat('/data/fifo').st_mode), sorted(os.listdir('/data')))
print(open('/data/x.txt').read())
"#;
    let outcome = run(&builder, code).await;
    assert!(
        outcome.duration < Duration::from_secs(5),
        "took {:?}",
        outcome.duration
    );
    let out = stdout(&outcome);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8, "{out}");
    for (line, path) in
        lines[..4]
            .iter()
            .zip(["/data/fifo", "/data/fifo", "/data/fifo_link", "/data/fifo"])
    {
        assert!(
            line.starts_with("OSError: [Errno ") && line.contains("Not supported"),
            "{line}\n{out}"
        );
        assert!(line.contains(path) || !line.contains("'/"), "{line}");
    }
    assert!(lines[4].starts_with("NotADirectoryError: "), "{out}");
    assert!(lines[5].starts_with("OSError: "), "{out}");
    assert_eq!(lines[6], "False ['fifo', 'fifo_link', 'socket', 'x.txt']");
    assert_eq!(lines[7], "regular");
}

#[tokio::test]
async fn open_files_are_capped_per_session_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "x.txt", "hello");
    let code = r#"
import errno
held = []
try:
    while True:
        held.append(open('/data/x.txt'))
except OSError as e:
    print(len(held), type(e).__name__, e.errno == errno.EDQUOT)
print(message(lambda: fs.read_text('/data/x.txt')))
print(message(lambda: os.listdir('/data')))
held.pop().close()
print(fs.read_text('/data/x.txt'), len(os.listdir('/data')))
held.append(open('/data/x.txt'))
print(attempt(lambda: open('/data/x.txt')))
held.clear()
print(len([open('/data/x.txt') for _ in range(3)]))
"#;
    let cases = [(None, 256), (Some(8), 8)];
    for (limit, expected) in cases {
        let mut builder = builder(vec![mount("/data", dir.path(), MountMode::Ro)]);
        let mut limits = Limits::default();
        if let Some(limit) = limit {
            limits.max_open_files = limit;
        }
        builder.limits(limits);
        let out = stdout(&run(&builder, code).await);
        assert_eq!(
            out,
            format!(
                "{expected} OSError True\n\
                 OSError: too many open files: `/data/x.txt` cannot be opened while the session \
                 holds its limit of {expected} open files (close some first)\n\
                 OSError: [Errno 19] Quota exceeded: '/data'\n\
                 hello 1\n\
                 OSError\n\
                 3\n"
            )
        );
    }
    assert_eq!(Limits::default().max_open_files, 256);
}

/// This process's resident memory in bytes (VmRSS).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gathered_reads_of_a_large_file_stay_within_the_host_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "big.txt", &"x".repeat(16 << 20));
    let mut builder = builder(vec![mount("/data", dir.path(), MountMode::Ro)]);
    builder.limits(goru_runtimes::Limits {
        memory_bytes: 64 << 20,
        ..goru_runtimes::Limits::default()
    });
    // Sample the host's memory while the guest asks for 200 x 16 MiB at once.
    let before = rss_bytes();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = std::thread::spawn({
        let done = done.clone();
        move || {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                peak = peak.max(rss_bytes());
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            peak
        }
    });
    let outcome = run(
        &builder,
        r#"
import asyncio, goru_host
async def main():
    reads = [goru_host.async_module_call('fs.read_text', path='/data/big.txt') for _ in range(200)]
    return await asyncio.gather(*reads)
asyncio.run(main())
"#,
    )
    .await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let peak = sampler.join().unwrap();
    // The guest cannot take in what it asked for: it fails in the guest,
    // as a MemoryError or, when even that cannot be raised, the memory limit.
    let out_of_memory = match &outcome.status {
        goru_runtimes::Status::Exception(e) => e.type_name == "MemoryError",
        goru_runtimes::Status::MemoryLimit { .. } => true,
        _ => false,
    };
    assert!(out_of_memory, "{:?}", outcome.status);
    // Before the budget: 1.5 GiB. Now: the budget (64 MiB) and the copies
    // one call makes of its result while it runs.
    let grown = peak.saturating_sub(before);
    assert!(grown < 400 << 20, "the host grew by {} MiB", grown >> 20);
}
