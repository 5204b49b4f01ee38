//! The installer end to end against a local index the test starts, serving
//! wheels the test builds: resolution, checks, and the package directory.

use goru_packages::{Error, Installer, Limits, NoProgress, PackageDir, Report, Request};
use goru_tests::index::{Api, Index, IndexFile, Wheel};
use std::path::Path;
use std::sync::Arc;

fn wheel(w: &Wheel) -> IndexFile {
    IndexFile::wheel(w)
}

async fn install_with(
    index: &Index,
    limits: Limits,
    dir: &Path,
    requests: &[&str],
) -> Result<Report, Error> {
    let installer = Installer::with_limits(&index.url(), limits)?;
    let requests: Vec<Request> = requests
        .iter()
        .map(|r| Request::parse(r).unwrap())
        .collect();
    installer
        .install(&PackageDir::create(dir)?, &requests, Arc::new(NoProgress))
        .await
}

async fn install(index: &Index, dir: &Path, requests: &[&str]) -> Result<Report, Error> {
    install_with(index, Limits::default(), dir, requests).await
}

fn names(report: &Report) -> Vec<String> {
    report
        .installed
        .iter()
        .map(|p| format!("{} {}", p.name, p.version))
        .collect()
}

/// Everything under `dir` but the lock file, as sorted relative paths.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if relative == ".goru-lock" {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(relative);
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn resolves_the_newest_versions_that_fit_with_markers_for_the_guest() {
    let app = Wheel::new("App", "1.0")
        .requires("lib>=2,<3")
        .requires("old-only; python_version < \"3.8\"")
        .requires("wasi-only; sys_platform == \"wasi\"")
        .requires("win-only; sys_platform == \"win32\"")
        .requires("testing; extra == \"tests\"");
    let files = vec![
        wheel(&app),
        wheel(&Wheel::new("lib", "1.0")),
        wheel(&Wheel::new("lib", "2.0")),
        wheel(&Wheel::new("lib", "2.5")),
        // Newer, but for another Python (the index says so).
        wheel(&Wheel::new("lib", "2.7")).requires_python("<3.10"),
        // Newer, but its METADATA says another Python.
        wheel(&Wheel::new("lib", "2.8").requires_python(">=3.15")),
        // Newer, but a pre-release, and nobody asked for one.
        wheel(&Wheel::new("lib", "2.9rc1")),
        // Newer, but yanked.
        wheel(&Wheel::new("lib", "2.9.1")).yanked(),
        wheel(&Wheel::new("lib", "3.0")),
        wheel(&Wheel::new("wasi-only", "1.0")),
    ];
    let index = Index::start(Api::Json, files).await;
    let dir = tempfile::tempdir().unwrap();
    let report = install(&index, dir.path(), &["app"]).await.unwrap();
    assert_eq!(names(&report), ["app 1.0", "lib 2.5", "wasi-only 1.0"]);
    // Markers that are false for the guest never even reach the index.
    let asked = index.requests().join(" ");
    for skipped in ["old-only", "win-only", "testing"] {
        assert!(!asked.contains(skipped), "{skipped} was looked up: {asked}");
    }
    let listed: Vec<String> = PackageDir::open(dir.path())
        .unwrap()
        .list()
        .unwrap()
        .into_iter()
        .map(|p| format!("{} {}", p.name, p.version))
        .collect();
    assert_eq!(listed, ["app 1.0", "lib 2.5", "wasi-only 1.0"]);
    let files = tree(dir.path());
    assert!(files.contains(&"lib/__init__.py".to_string()), "{files:?}");
    assert!(files.contains(&"lib-2.5.dist-info/INSTALLER".to_string()));
    assert!(files.contains(&"lib-2.5.dist-info/RECORD".to_string()));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("lib/__init__.py")).unwrap(),
        "__version__ = \"2.5\"\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn html_index_extras_and_explicit_pre_releases() {
    let app = Wheel::new("app", "1.0").requires("testing; extra == \"tests\"");
    let files = vec![
        wheel(&app),
        wheel(&Wheel::new("testing", "1.0")),
        wheel(&Wheel::new("testing", "2.0b1")),
    ];
    let index = Index::start(Api::Html, files).await;
    let dir = tempfile::tempdir().unwrap();
    let report = install(&index, dir.path(), &["app[tests]", "testing>=2.0b1"])
        .await
        .unwrap();
    assert_eq!(names(&report), ["app 1.0", "testing 2.0b1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_later_constraint_changes_an_earlier_choice() {
    let files = vec![
        wheel(
            &Wheel::new("top", "1.0")
                .requires("shared")
                .requires("picky"),
        ),
        wheel(&Wheel::new("picky", "1.0").requires("shared<2")),
        wheel(&Wheel::new("shared", "1.5")),
        wheel(&Wheel::new("shared", "2.0")),
    ];
    let index = Index::start(Api::Json, files).await;
    let dir = tempfile::tempdir().unwrap();
    let report = install(&index, dir.path(), &["top"]).await.unwrap();
    assert_eq!(names(&report), ["picky 1.0", "shared 1.5", "top 1.0"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicting_requirements_name_who_asked_for_what() {
    let files = vec![
        wheel(&Wheel::new("a", "1.0").requires("c<2")),
        wheel(&Wheel::new("b", "1.0").requires("c>=2")),
        wheel(&Wheel::new("c", "1.0")),
        wheel(&Wheel::new("c", "2.0")),
    ];
    let index = Index::start(Api::Json, files).await;
    let dir = tempfile::tempdir().unwrap();
    let error = install(&index, dir.path(), &["a", "b"]).await.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, Error::NoMatchingVersion { .. }),
        "{error:?}"
    );
    assert!(
        message.contains("`<2` (from a 1.0)") && message.contains("`>=2` (from b 1.0)"),
        "{message}"
    );
    assert!(tree(dir.path()).is_empty(), "{:?}", tree(dir.path()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hash_mismatch_is_refused_and_nothing_is_written() {
    let good = Wheel::new("good", "1.0");
    let bad = Wheel::new("bad", "1.0");
    let files = vec![wheel(&good), wheel(&bad).with_sha256(&"0".repeat(64))];
    let index = Index::start(Api::Json, files).await;
    let dir = tempfile::tempdir().unwrap();
    let error = install(&index, dir.path(), &["good", "bad"])
        .await
        .unwrap_err();
    assert!(matches!(error, Error::HashMismatch { .. }), "{error:?}");
    assert!(
        error.to_string().contains("bad-1.0-py3-none-any.whl"),
        "{error}"
    );
    assert!(tree(dir.path()).is_empty(), "{:?}", tree(dir.path()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_without_a_hash_is_refused() {
    let files = vec![wheel(&Wheel::new("nohash", "1.0")).with_sha256("")];
    let index = Index::start(Api::Html, files).await;
    let dir = tempfile::tempdir().unwrap();
    let error = install(&index, dir.path(), &["nohash"]).await.unwrap_err();
    assert!(matches!(error, Error::MissingHash { .. }), "{error:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn archive_entries_that_leave_the_directory_are_refused() {
    let cases = [
        (
            "slip",
            Wheel::new("slip", "1.0").unrecorded("../evil.py", "x = 1\n"),
        ),
        (
            "deep",
            Wheel::new("deep", "1.0").unrecorded("deep/../../evil.py", "x = 1\n"),
        ),
        (
            "absolute",
            Wheel::new("absolute", "1.0").unrecorded("/tmp/goru-evil.py", "x = 1\n"),
        ),
        (
            "link",
            Wheel::new("link", "1.0").symlink("link/passwd", "/etc/passwd"),
        ),
    ];
    for (name, evil) in cases {
        let index = Index::start(Api::Json, vec![wheel(&evil)]).await;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("packages");
        let error = install(&index, &dir, &[name]).await.unwrap_err();
        assert!(
            matches!(error, Error::UnsafeArchive { .. }),
            "{name}: {error:?}"
        );
        assert!(tree(&dir).is_empty(), "{name}: {:?}", tree(&dir));
        assert!(!parent.path().join("evil.py").exists(), "{name}");
    }
    assert!(!Path::new("/tmp/goru-evil.py").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn packages_with_compiled_code_are_refused_with_the_reason() {
    let numpy = Wheel::new("numpy", "2.3.5").tag("cp314-cp314-manylinux_2_27_x86_64");
    let files = vec![
        wheel(&numpy),
        IndexFile::raw("numpy-2.3.5.tar.gz", b"not really a tarball".to_vec()),
    ];
    let index = Index::start(Api::Json, files).await;
    let dir = tempfile::tempdir().unwrap();
    let error = install(&index, dir.path(), &["numpy"]).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::NotPure { .. }), "{error:?}");
    for needed in [
        "not a pure-Python package",
        "numpy-2.3.5-cp314-cp314-manylinux_2_27_x86_64.whl",
        "a source archive",
        "pure-Python alternative",
    ] {
        assert!(message.contains(needed), "missing {needed:?} in {message}");
    }
    // Nothing was downloaded: a compiled wheel is refused by its name.
    assert!(
        index.requests().iter().all(|r| !r.contains("/files/")),
        "{:?}",
        index.requests()
    );

    // A wheel tagged pure that says otherwise, or carries compiled code.
    for (name, liar) in [
        ("liar", Wheel::new("liar", "1.0").root_is_purelib(false)),
        (
            "smuggler",
            Wheel::new("smuggler", "1.0").file(
                "smuggler/_speedups.cpython-314-x86_64-linux-gnu.so",
                "\x7fELF",
            ),
        ),
    ] {
        let index = Index::start(Api::Json, vec![wheel(&liar)]).await;
        let error = install(&index, dir.path(), &[name]).await.unwrap_err();
        assert!(matches!(error, Error::NotPure { .. }), "{name}: {error:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wheel_whose_files_do_not_match_its_record_is_refused() {
    let index = Index::start(
        Api::Json,
        vec![wheel(&Wheel::new("tampered", "1.0").tamper_record())],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let error = install(&index, dir.path(), &["tampered"])
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidWheel { .. }), "{error:?}");
    assert!(error.to_string().contains("RECORD"), "{error}");
    assert!(tree(dir.path()).is_empty(), "{:?}", tree(dir.path()));
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_projects_and_unmatched_specifiers_are_clear() {
    let index = Index::start(Api::Json, vec![wheel(&Wheel::new("real", "1.0"))]).await;
    let dir = tempfile::tempdir().unwrap();
    let error = install(&index, dir.path(), &["imaginary"])
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
    let error = install(&index, dir.path(), &["real>=2"]).await.unwrap_err();
    assert!(
        matches!(error, Error::NoMatchingVersion { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("newest: 1.0"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_skip_and_remove() {
    let v1 = Wheel::new("demo", "1.0").file("demo/old.py", "OLD = 1\n");
    let v2 = Wheel::new("demo", "2.0");
    let index = Index::start(Api::Json, vec![wheel(&v1), wheel(&v2)]).await;
    let dir = tempfile::tempdir().unwrap();
    install(&index, dir.path(), &["demo==1.0"]).await.unwrap();
    assert!(dir.path().join("demo/old.py").exists());

    // Satisfied already: no request reaches the index.
    let before = index.requests().len();
    let report = install(&index, dir.path(), &["demo<2"]).await.unwrap();
    assert!(
        report.installed.is_empty() && report.unchanged.len() == 1,
        "{report:?}"
    );
    assert_eq!(index.requests().len(), before);

    // Not satisfied: 2.0 replaces 1.0 and 1.0's files go.
    let report = install(&index, dir.path(), &["demo>=2"]).await.unwrap();
    assert_eq!(names(&report), ["demo 2.0"]);
    assert_eq!(report.replaced[0].version, "1.0");
    assert!(!dir.path().join("demo/old.py").exists());
    assert!(!dir.path().join("demo-1.0.dist-info").exists());

    // What a killed install left behind is cleared by the next change.
    std::fs::create_dir_all(dir.path().join(".goru-staging-killed/0/demo")).unwrap();
    let target = PackageDir::open(dir.path()).unwrap();
    let removed = target.remove("Demo").unwrap();
    assert!(!dir.path().join(".goru-staging-killed").exists());
    assert_eq!(removed.version, "2.0");
    assert!(tree(dir.path()).is_empty(), "{:?}", tree(dir.path()));
    assert!(!dir.path().join("demo").exists());
    assert!(matches!(
        target.remove("demo"),
        Err(Error::NotInstalled { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_owned_by_another_package_is_never_overwritten() {
    let first = Wheel::new("first", "1.0").file("shared/mod.py", "OWNER = 'first'\n");
    let second = Wheel::new("second", "1.0").file("shared/mod.py", "OWNER = 'second'\n");
    let index = Index::start(Api::Json, vec![wheel(&first), wheel(&second)]).await;
    let dir = tempfile::tempdir().unwrap();
    install(&index, dir.path(), &["first"]).await.unwrap();
    let error = install(&index, dir.path(), &["second"]).await.unwrap_err();
    assert!(matches!(error, Error::FileConflict { .. }), "{error:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("shared/mod.py")).unwrap(),
        "OWNER = 'first'\n"
    );
    assert!(!tree(dir.path()).iter().any(|p| p.starts_with("second")));
}

#[tokio::test(flavor = "multi_thread")]
async fn remove_never_follows_a_link_out_of_the_directory() {
    let demo = Wheel::new("demo", "1.0");
    let index = Index::start(Api::Json, vec![wheel(&demo)]).await;
    let dir = tempfile::tempdir().unwrap();
    install(&index, dir.path(), &["demo"]).await.unwrap();
    // Someone replaces the package's folder with a link to a folder elsewhere.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("__init__.py"), "precious\n").unwrap();
    std::fs::remove_dir_all(dir.path().join("demo")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("demo")).unwrap();
    PackageDir::open(dir.path())
        .unwrap()
        .remove("demo")
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(outside.path().join("__init__.py")).unwrap(),
        "precious\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_hold_at_their_edges() {
    let demo = Wheel::new("demo", "1.0").file("demo/data.txt", "x".repeat(10_000));
    let size = demo.build().len() as u64;
    let index = Index::start(Api::Json, vec![wheel(&demo)]).await;

    let at = |limits: Limits| async {
        let dir = tempfile::tempdir().unwrap();
        install_with(&index, limits, dir.path(), &["demo"]).await
    };
    // Download size.
    at(Limits {
        max_download_bytes: size,
        ..Limits::default()
    })
    .await
    .unwrap();
    let error = at(Limits {
        max_download_bytes: size - 1,
        ..Limits::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(error, Error::TooLarge { .. }), "{error:?}");
    // All downloads of one install together.
    at(Limits {
        max_total_download_bytes: size,
        ..Limits::default()
    })
    .await
    .unwrap();
    let error = at(Limits {
        max_total_download_bytes: size - 1,
        ..Limits::default()
    })
    .await
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("downloads of this install together"),
        "{error:?}"
    );
    // Entries: the __init__.py, data.txt, METADATA, WHEEL, RECORD.
    at(Limits {
        max_archive_entries: 5,
        ..Limits::default()
    })
    .await
    .unwrap();
    let error = at(Limits {
        max_archive_entries: 4,
        ..Limits::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(error, Error::TooLarge { .. }), "{error:?}");
    // Unpacked bytes: every entry but RECORD.
    let unpacked: u64 = {
        let dir = tempfile::tempdir().unwrap();
        install_with(&index, Limits::default(), dir.path(), &["demo"])
            .await
            .unwrap();
        let record = std::fs::read_to_string(dir.path().join("demo-1.0.dist-info/RECORD")).unwrap();
        record
            .lines()
            .filter(|l| !l.contains("INSTALLER") && !l.contains("RECORD"))
            .map(|l| l.rsplit(',').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    at(Limits {
        max_unpacked_bytes: unpacked,
        ..Limits::default()
    })
    .await
    .unwrap();
    let error = at(Limits {
        max_unpacked_bytes: unpacked - 1,
        ..Limits::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(error, Error::TooLarge { .. }), "{error:?}");
    // Packages per install.
    let chain = Index::start(
        Api::Json,
        vec![
            wheel(&Wheel::new("one", "1.0").requires("two")),
            wheel(&Wheel::new("two", "1.0")),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    install_with(
        &chain,
        Limits {
            max_packages: 2,
            ..Limits::default()
        },
        dir.path(),
        &["one"],
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let error = install_with(
        &chain,
        Limits {
            max_packages: 1,
            ..Limits::default()
        },
        dir.path(),
        &["one"],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, Error::TooManyPackages { limit: 1 }),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dependencies_on_urls_are_refused() {
    let sneaky = Wheel::new("sneaky", "1.0").requires("payload @ https://evil.example/payload.whl");
    let index = Index::start(Api::Json, vec![wheel(&sneaky)]).await;
    let dir = tempfile::tempdir().unwrap();
    let error = install(&index, dir.path(), &["sneaky"]).await.unwrap_err();
    assert!(
        matches!(error, Error::InvalidRequirement { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("direct URL"), "{error}");
}

/// A file outside the package directory that nothing may touch.
fn precious(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("precious.txt");
    std::fs::write(&path, "precious\n").unwrap();
    path
}

fn refused_as_unsafe(result: Result<impl std::fmt::Debug, Error>, what: &str) -> String {
    match result {
        Err(error @ Error::UnsafePath { .. }) => error.to_string(),
        other => panic!("{what}: expected UnsafePath, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_file_planted_as_a_link_is_refused_and_its_target_left_untouched() {
    let index = Index::start(
        Api::Json,
        vec![
            wheel(&Wheel::new("demo", "1.0")),
            wheel(&Wheel::new("other", "1.0")),
        ],
    )
    .await;
    let outside = tempfile::tempdir().unwrap();
    let target = precious(outside.path());
    let dir = tempfile::tempdir().unwrap();
    install(&index, dir.path(), &["demo"]).await.unwrap();
    let lock = dir.path().join(".goru-lock");
    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&target, &lock).unwrap();

    let message = refused_as_unsafe(install(&index, dir.path(), &["other"]).await, "install");
    assert!(message.contains("symbolic link"), "{message}");
    let removal = PackageDir::open(dir.path()).unwrap().remove("demo");
    refused_as_unsafe(removal, "remove");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    assert!(dir.path().join("demo/__init__.py").exists());
    assert!(!dir.path().join("other").exists());

    // A dangling link is not followed to create its target either.
    std::fs::remove_file(&lock).unwrap();
    let created = outside.path().join("created-by-goru");
    std::os::unix::fs::symlink(&created, &lock).unwrap();
    refused_as_unsafe(install(&index, dir.path(), &["other"]).await, "dangling");
    assert!(!created.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_as_the_lock_file_is_refused_at_once() {
    let index = Index::start(Api::Json, vec![wheel(&Wheel::new("demo", "1.0"))]).await;
    let dir = tempfile::tempdir().unwrap();
    let fd = rustix::fs::open(
        dir.path(),
        rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    rustix::fs::mkfifoat(&fd, ".goru-lock", rustix::fs::Mode::from_raw_mode(0o644)).unwrap();
    // Opening a FIFO for reading blocks until a writer comes: it must not.
    let attempt = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        install(&index, dir.path(), &["demo"]),
    )
    .await
    .expect("the install hung on a FIFO");
    let message = refused_as_unsafe(attempt, "install");
    assert!(message.contains("not a regular file"), "{message}");
    assert!(!dir.path().join("demo").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_packages_directory_reached_through_a_link_is_refused() {
    let index = Index::start(Api::Json, vec![wheel(&Wheel::new("demo", "1.0"))]).await;
    let elsewhere = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();

    // The packages directory itself is a link.
    std::os::unix::fs::symlink(elsewhere.path(), project.path().join("packages")).unwrap();
    let linked = project.path().join("packages");
    refused_as_unsafe(PackageDir::open(&linked), "open");
    refused_as_unsafe(PackageDir::create(&linked), "create");
    refused_as_unsafe(install(&index, &linked, &["demo"]).await, "install");

    // Its parent, `.goru`, is a link: nothing is created through it.
    std::os::unix::fs::symlink(elsewhere.path(), project.path().join(".goru")).unwrap();
    let below_link = project.path().join(".goru/packages");
    refused_as_unsafe(PackageDir::create(&below_link), "create below a link");
    refused_as_unsafe(install(&index, &below_link, &["demo"]).await, "install");
    assert!(
        tree(elsewhere.path()).is_empty(),
        "{:?}",
        tree(elsewhere.path())
    );
    assert!(!elsewhere.path().join("packages").exists());

    // A real `.goru` is created with the packages directory in it.
    let real = project.path().join("real/.goru/packages");
    install(&index, &real, &["demo"]).await.unwrap();
    assert!(real.join("demo/__init__.py").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_whose_path_changed_after_it_was_opened_is_refused() {
    let project = tempfile::tempdir().unwrap();
    let path = project.path().join(".goru/packages");
    let dir = PackageDir::create(&path).unwrap();
    dir.check_path_unchanged().unwrap();
    // `.goru` moved away and replaced with a real directory, then a link.
    std::fs::rename(project.path().join(".goru"), project.path().join("moved")).unwrap();
    std::fs::create_dir_all(&path).unwrap();
    refused_as_unsafe(dir.check_path_unchanged(), "replaced");
    std::fs::remove_dir_all(project.path().join(".goru")).unwrap();
    std::os::unix::fs::symlink(project.path().join("moved"), project.path().join(".goru")).unwrap();
    refused_as_unsafe(dir.check_path_unchanged(), "linked");
}

#[tokio::test(flavor = "multi_thread")]
async fn links_planted_in_staging_or_where_files_go_are_never_followed() {
    let v1 = Wheel::new("demo", "1.0").file("demo/extra.py", "X = 1\n");
    let index = Index::start(
        Api::Json,
        vec![
            wheel(&v1),
            wheel(&Wheel::new("demo", "2.0")),
            wheel(&Wheel::new("later", "1.0")),
        ],
    )
    .await;
    let outside = tempfile::tempdir().unwrap();
    let target = precious(outside.path());
    let dir = tempfile::tempdir().unwrap();
    install(&index, dir.path(), &["demo==1.0"]).await.unwrap();

    // A "stale staging directory" that is a link, and one holding a link to
    // a directory: clearing them removes the links, not what they point to.
    std::os::unix::fs::symlink(outside.path(), dir.path().join(".goru-staging-link")).unwrap();
    std::fs::create_dir_all(dir.path().join(".goru-staging-killed/0")).unwrap();
    std::os::unix::fs::symlink(
        outside.path(),
        dir.path().join(".goru-staging-killed/0/demo"),
    )
    .unwrap();
    // Where the next package's file goes, a link to a host file; where its
    // folder goes, a link to a host folder.
    std::os::unix::fs::symlink(&target, dir.path().join("later")).unwrap();
    let error = install(&index, dir.path(), &["later"]).await.unwrap_err();
    assert!(matches!(error, Error::FileConflict { .. }), "{error:?}");
    assert!(!dir.path().join(".goru-staging-link").exists());
    assert!(!dir.path().join(".goru-staging-killed").exists());

    // An installed file replaced by a link: the upgrade's removal (RECORD
    // driven) unlinks the link and leaves its target alone.
    std::fs::remove_file(dir.path().join("demo/extra.py")).unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("demo/extra.py")).unwrap();
    let report = install(&index, dir.path(), &["demo==2.0"]).await.unwrap();
    assert_eq!(names(&report), ["demo 2.0"]);
    assert!(std::fs::symlink_metadata(dir.path().join("demo/extra.py")).is_err());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    assert_eq!(
        tree(outside.path()),
        ["precious.txt"],
        "something was written outside"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wheels_cannot_ship_goru_s_own_names() {
    for (name, evil) in [
        ("lock", Wheel::new("lock", "1.0").file(".goru-lock", "x")),
        (
            "staging",
            Wheel::new("staging", "1.0").file(".goru-staging-1/0/evil.py", "x = 1\n"),
        ),
        (
            "data",
            Wheel::new("data", "1.0").file("data-1.0.data/purelib/.goru-lock", "x"),
        ),
    ] {
        let index = Index::start(Api::Json, vec![wheel(&evil)]).await;
        let dir = tempfile::tempdir().unwrap();
        let error = install(&index, dir.path(), &[name]).await.unwrap_err();
        assert!(
            matches!(error, Error::UnsafeArchive { .. }) && error.to_string().contains("reserved"),
            "{name}: {error:?}"
        );
        assert!(
            tree(dir.path()).is_empty(),
            "{name}: {:?}",
            tree(dir.path())
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_in_the_index_url_never_appear_in_errors() {
    let index = Index::start(Api::Json, vec![wheel(&Wheel::new("real", "1.0"))]).await;
    let with_credentials = index.url().replace("http://", "http://alice:s3cret-token@");
    let dir = tempfile::tempdir().unwrap();
    let installer = Installer::new(&with_credentials).unwrap();
    let error = installer
        .install(
            &PackageDir::create(dir.path()).unwrap(),
            &[Request::parse("imaginary").unwrap()],
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        !message.contains("s3cret") && !message.contains("alice"),
        "{message}"
    );
    assert!(message.contains("http://***@127.0.0.1"), "{message}");

    // Nothing listens there: a connection error, its URL redacted too.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let unreachable = format!("http://alice:s3cret-token@127.0.0.1:{port}/simple?token=s3cret");
    let error = Installer::new(&unreachable).map(drop).unwrap_err();
    assert!(!error.to_string().contains("s3cret"), "{error}");
    let unreachable = format!("http://alice:s3cret-token@127.0.0.1:{port}/simple");
    let error = Installer::new(&unreachable)
        .unwrap()
        .install(
            &PackageDir::create(dir.path()).unwrap(),
            &[Request::parse("real").unwrap()],
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Index { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        !message.contains("s3cret") && !message.contains("alice"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_index_page_is_an_index_error_not_a_connection_error() {
    let index = Index::start(Api::MalformedJson, vec![wheel(&Wheel::new("demo", "1.0"))]).await;
    let dir = tempfile::tempdir().unwrap();
    let error = install(&index, dir.path(), &["demo"]).await.unwrap_err();
    assert!(matches!(error, Error::InvalidIndexPage { .. }), "{error:?}");
    assert!(error.to_string().contains("PEP 691"), "{error}");
}
