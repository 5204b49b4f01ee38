//! Wheels as a hostile package index serves them: any archive bytes under
//! a valid wheel name are refused with a typed error or unpacked, and what
//! is unpacked is exactly the regular files reported, all inside the
//! staging directory (no zip slip, no links, nothing else written).
#![no_main]

use goru_packages::Limits;
use libfuzzer_sys::fuzz_target;
use std::path::{Component, Path};

const FILENAME: &str = "demo-1.0-py3-none-any.whl";

/// Every file under `dir`, relative, `/`-separated; panics on anything
/// that is not a regular file or directory.
fn files(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = std::fs::symlink_metadata(entry.path()).unwrap().file_type();
        let relative = format!("{prefix}{name}");
        if kind.is_dir() {
            files(&entry.path(), &format!("{relative}/"), out);
        } else {
            assert!(kind.is_file(), "`{relative}` is not a regular file");
            out.push(relative);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_unpacked_bytes: 1 << 20,
        max_archive_entries: 256,
        ..Limits::default()
    };
    let staging = tempfile::tempdir().expect("a staging directory");
    let outcome =
        goru_packages::fuzzing::unpack_wheel(FILENAME, data.to_vec(), staging.path(), &limits);
    let mut written = Vec::new();
    files(staging.path(), "", &mut written);
    written.sort();
    match outcome {
        Ok(mut reported) => {
            reported.sort();
            assert_eq!(
                written, reported,
                "the files written are not the ones reported"
            );
            for path in &reported {
                assert!(
                    Path::new(path)
                        .components()
                        .all(|c| matches!(c, Component::Normal(_))),
                    "`{path}` leaves the directory"
                );
            }
        }
        // A refused wheel may leave files in staging (the caller throws
        // staging away), but only inside it, which `files` checked.
        Err(err) => assert!(!err.to_string().is_empty()),
    }
});
