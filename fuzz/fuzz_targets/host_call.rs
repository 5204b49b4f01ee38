//! Host calls as a hostile guest makes them: any names and argument bytes,
//! against the `kv` module, the `fs` module on a read-write-create mount and
//! a read-only one, and embedder functions. Every call gets a result or an
//! error, and nothing outside the mounts, nor inside the read-only one,
//! changes, whatever the paths (`..`, links planted in the mount).
//!
//! Input: one call per line, `NAME ARGS-JSON`.
#![no_main]

use goru_runtimes::{Capabilities, Limits, Mount, MountMode};
use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const SECRET: &str = "outside every mount";

struct Fixture {
    _root: tempfile::TempDir,
    root: PathBuf,
    capabilities: Capabilities,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let root = dir.path().canonicalize().expect("its real path");
        std::fs::write(root.join("outside.txt"), SECRET).unwrap();
        std::fs::create_dir(root.join("ro")).unwrap();
        std::fs::write(root.join("ro/c.txt"), "read only").unwrap();
        std::fs::create_dir(root.join("mnt")).unwrap();
        let capabilities = Capabilities {
            kv: Some(Default::default()),
            mounts: vec![
                Mount::new("/data", root.join("mnt"), MountMode::Rwc),
                Mount::new("/ro", root.join("ro"), MountMode::Ro),
            ],
            ..Capabilities::none()
        };
        Fixture {
            _root: dir,
            root,
            capabilities,
        }
    })
}

/// The read-write mount as each input starts with it: a file, a
/// subdirectory, and links a guest could have planted pointing out.
fn reset_mount(root: &Path) {
    let mnt = root.join("mnt");
    std::fs::remove_dir_all(&mnt).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    std::fs::write(mnt.join("a.txt"), "a").unwrap();
    std::fs::create_dir(mnt.join("sub")).unwrap();
    std::fs::write(mnt.join("sub/b.txt"), "b").unwrap();
    std::os::unix::fs::symlink("../outside.txt", mnt.join("link")).unwrap();
    std::os::unix::fs::symlink("..", mnt.join("up")).unwrap();
    std::os::unix::fs::symlink(root.join("ro"), mnt.join("ro-link")).unwrap();
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let calls: Vec<(String, String)> = goru_fuzz::text(data)
        .lines()
        .take(16)
        .map(|line| match line.split_once(' ') {
            Some((name, args)) => (name.to_string(), args.to_string()),
            None => (line.to_string(), String::new()),
        })
        .collect();
    if calls.is_empty() {
        return;
    }
    reset_mount(&fixture.root);
    let count = calls.len();
    let results =
        goru_runtimes::fuzzing::host_calls(&fixture.capabilities, Limits::default(), calls)
            .expect("the fixture's capabilities open");
    assert_eq!(results.len(), count, "one result per call");
    let root = &fixture.root;
    assert_eq!(
        names(root),
        ["mnt", "outside.txt", "ro"],
        "a file appeared outside the mounts"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("outside.txt")).unwrap(),
        SECRET
    );
    assert_eq!(
        names(&root.join("ro")),
        ["c.txt"],
        "the read-only mount changed"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("ro/c.txt")).unwrap(),
        "read only"
    );
});
