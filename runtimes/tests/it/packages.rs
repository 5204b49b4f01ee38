//! Python packages in the sandbox: a packages directory on `sys.path`,
//! `install_pkg` behind its allow-list, and the messages of imports that
//! cannot work. The index is a local one the test starts
//! (goru-tests: tests/src/index.rs), serving wheels the test builds.

use crate::outcomes;

use goru_packages::environment;
use goru_runtimes::{
    Capabilities, CapabilityError, Engine, Error, Language, Outcome, PackagesCapability,
    PackagesConfigError, SessionBuilder, StartError,
};
use goru_tests::index::{Api, Index, IndexFile, Wheel};
use outcomes::{exception, guest_exception, stdout};
use std::path::Path;
use std::sync::{Arc, OnceLock};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new().expect("engine"))
}

fn builder(packages: PackagesCapability) -> SessionBuilder {
    let mut builder = SessionBuilder::new(Language::Python);
    builder.capabilities(Capabilities {
        packages: Some(packages),
        ..Capabilities::none()
    });
    builder
}

async fn run(builder: &SessionBuilder, code: &str) -> Outcome {
    engine()
        .run_once(builder, code, "<test>")
        .await
        .expect("run")
}

/// A local index with `demo-pkg` 1.0 and 2.0 (2.0 needs `helper`) and
/// `other-pkg`.
async fn demo_index() -> Index {
    let files = vec![
        IndexFile::wheel(&Wheel::new("demo-pkg", "1.0")),
        IndexFile::wheel(&Wheel::new("demo-pkg", "2.0").requires("helper>=1").file(
            "demo_pkg/__init__.py",
            "from helper import ANSWER\n__version__ = '2.0'\n",
        )),
        IndexFile::wheel(
            &Wheel::new("helper", "1.0")
                .file("helper/__init__.py", "ANSWER = 42\n")
                .file("helper/data.txt", "from a resource\n"),
        ),
        IndexFile::wheel(&Wheel::new("other-pkg", "1.0")),
    ];
    Index::start(Api::Json, files).await
}

async fn preinstall(index: &Index, dir: &Path, request: &str) {
    let installer = goru_packages::Installer::new(&index.url()).unwrap();
    installer
        .install(
            &goru_packages::PackageDir::create(dir).unwrap(),
            &[goru_packages::Request::parse(request).unwrap()],
            Arc::new(goru_packages::NoProgress),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_installer_resolves_for_the_environment_the_guest_really_has() {
    let outcome = run(
        &SessionBuilder::new(Language::Python),
        "import sys, os, platform\n\
         print(platform.python_version(), f'{sys.version_info[0]}.{sys.version_info[1]}', sys.platform, \
               platform.system(), platform.machine(), os.name, platform.release(), platform.version(), \
               platform.python_implementation(), sys.implementation.name)",
    )
    .await;
    let expected = format!(
        "{} {} {} {} {} {} {} {} CPython cpython\n",
        environment::PYTHON_FULL_VERSION,
        environment::PYTHON_VERSION,
        environment::SYS_PLATFORM,
        environment::PLATFORM_SYSTEM,
        environment::PLATFORM_MACHINE,
        environment::OS_NAME,
        environment::PLATFORM_RELEASE,
        environment::PLATFORM_RELEASE,
    );
    assert_eq!(stdout(&outcome), expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn installed_packages_import_from_a_read_only_mount() {
    let index = demo_index().await;
    let dir = tempfile::tempdir().unwrap();
    preinstall(&index, dir.path(), "demo-pkg").await;
    let outcome = run(
        &builder(PackagesCapability::new(dir.path())),
        "import sys, demo_pkg\n\
         print(demo_pkg.__version__, demo_pkg.ANSWER, demo_pkg.__file__)\n\
         print(sys.path[-1])\n\
         try:\n    open('/packages/demo_pkg/__init__.py', 'w')\nexcept OSError as e:\n    print('write refused')\n\
         print(fs_enabled := 'fs' in dir(__builtins__))",
    )
    .await;
    let out = stdout(&outcome);
    assert!(
        out.starts_with("2.0 42 /packages/demo_pkg/__init__.py\n/packages\nwrite refused\n"),
        "{out}"
    );
    // What packages use to find their own files and versions works.
    let outcome = run(
        &builder(PackagesCapability::new(dir.path())),
        "import importlib.resources, importlib.metadata\n\
         print(importlib.resources.files('helper').joinpath('data.txt').read_text(), end='')\n\
         print(importlib.metadata.version('demo-pkg'), importlib.metadata.version('helper'))",
    )
    .await;
    assert_eq!(stdout(&outcome), "from a resource\n2.0 1.0\n");
    // A package can never shadow the standard library: it comes last.
    let outcome = run(
        &builder(PackagesCapability::new(dir.path())),
        "import sys\nprint(sys.path.index('/packages') == len(sys.path) - 1)",
    )
    .await;
    assert_eq!(stdout(&outcome), "True\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn install_pkg_installs_allowed_names_only_and_imports_right_after() {
    let index = demo_index().await;
    let dir = tempfile::tempdir().unwrap();
    let capability = PackagesCapability {
        dir: dir.path().to_path_buf(),
        allow_install: vec!["Demo_Pkg".into()],
        index_url: Some(index.url()),
    };
    let outcome = run(
        &builder(capability.clone()),
        "def message(f):\n    try:\n        f()\n    except Exception as e:\n        return f'{type(e).__name__}: {e}'\n\
         print(message(lambda: install_pkg('other-pkg')))\n\
         print(message(lambda: install_pkg('demo-pkg', '@ https://evil.example/x.whl')))\n\
         print(message(lambda: install_pkg('demo-pkg', '--index-url http://evil')))\n\
         print(message(lambda: install_pkg('../etc')))\n\
         print(install_pkg('demo-pkg', '>=1.0'))\n\
         import demo_pkg, helper\n\
         print(demo_pkg.__version__, helper.ANSWER)",
    )
    .await;
    let out = stdout(&outcome);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "PermissionError: `other-pkg` is not on this sandbox's install allow-list (allowed: demo-pkg)"
    );
    assert!(
        lines[1].starts_with("ValueError: ") && lines[1].contains("PEP 440"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("ValueError: ") && lines[2].contains("PEP 440"),
        "{out}"
    );
    assert!(
        lines[3].starts_with("ValueError: ") && lines[3].contains("not a valid package name"),
        "{out}"
    );
    assert_eq!(&lines[4..], ["2.0", "2.0 42"]);
    // It went into the session's directory, through the host's installer.
    assert!(dir.path().join("demo_pkg-2.0.dist-info/RECORD").exists());
    assert!(!dir.path().join("other_pkg").exists());

    // An older version on request, and the error of one that does not exist.
    let outcome = run(
        &builder(capability),
        "print(install_pkg('demo-pkg', '==2.0'))\n\
         try:\n    install_pkg('demo-pkg', '>=9')\nexcept RuntimeError as e:\n    print(e)",
    )
    .await;
    let out = stdout(&outcome);
    assert!(
        out.starts_with("2.0\ninstall_pkg failed: no version of `demo-pkg` fits"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn install_pkg_is_refused_without_an_allow_list_or_a_packages_dir() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run(
        &builder(PackagesCapability::new(dir.path())),
        "install_pkg('attrs')",
    )
    .await;
    let (kind, message) = exception(&outcome);
    assert_eq!(kind, "PermissionError");
    assert!(message.contains("--allow-install"), "{message}");

    let outcome = run(
        &SessionBuilder::new(Language::Python),
        "install_pkg('attrs')",
    )
    .await;
    let (kind, message) = exception(&outcome);
    assert_eq!(kind, "PermissionError");
    assert!(message.contains("no packages directory"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_packages_capabilities_fail_before_the_session_starts() {
    let missing = PackagesCapability::new("/nonexistent/goru-packages");
    let start = builder(missing).start(engine()).await;
    assert!(matches!(
        start,
        Err(StartError::Engine(Error::Capability(
            CapabilityError::Packages(PackagesConfigError::Dir { .. })
        )))
    ));

    let dir = tempfile::tempdir().unwrap();
    let mut bad_name = PackagesCapability::new(dir.path());
    bad_name.allow_install = vec!["not a name".into()];
    let start = builder(bad_name).start(engine()).await;
    assert!(matches!(
        start,
        Err(StartError::Engine(Error::Capability(
            CapabilityError::Packages(PackagesConfigError::AllowList { .. })
        )))
    ));

    let mut bad_index = PackagesCapability::new(dir.path());
    bad_index.index_url = Some("file:///etc".into());
    let start = builder(bad_index).start(engine()).await;
    assert!(matches!(
        start,
        Err(StartError::Engine(Error::Capability(
            CapabilityError::Packages(PackagesConfigError::Index(_))
        )))
    ));

    let mut js = SessionBuilder::new(Language::JavaScript);
    js.capabilities(Capabilities {
        packages: Some(PackagesCapability::new(dir.path())),
        ..Capabilities::none()
    });
    let start = js.start(engine()).await;
    assert!(matches!(
        start,
        Err(StartError::Engine(Error::Capability(
            CapabilityError::Packages(PackagesConfigError::PythonOnly)
        )))
    ));

    // The packages directory's mount point is its own.
    let mut clash = builder(PackagesCapability::new(dir.path()));
    clash.capabilities(Capabilities {
        packages: Some(PackagesCapability::new(dir.path())),
        mounts: vec![goru_runtimes::Mount::new(
            "/packages",
            dir.path(),
            goru_runtimes::MountMode::Ro,
        )],
        ..Capabilities::none()
    });
    assert!(matches!(
        clash.start(engine()).await,
        Err(StartError::Engine(Error::Capability(
            CapabilityError::Mount { .. }
        )))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_that_cannot_work_say_why_and_what_would() {
    let outcome = run(&SessionBuilder::new(Language::Python), "import yaml").await;
    let (kind, traceback) = (exception(&outcome).0, &guest_exception(&outcome).traceback);
    assert_eq!(kind, "ModuleNotFoundError");
    assert!(traceback.contains("goru deps install"), "{traceback}");

    let outcome = run(&SessionBuilder::new(Language::Python), "import ssl").await;
    let traceback = &guest_exception(&outcome).traceback;
    assert!(
        traceback.contains("`ssl` is part of Python's standard library but not of goru's Python"),
        "{traceback}"
    );

    // Caught import errors are the program's business: no note, same type.
    let outcome = run(
        &SessionBuilder::new(Language::Python),
        "try:\n    import yaml\nexcept ImportError as e:\n    print(type(e).__name__, getattr(e, '__notes__', None))",
    )
    .await;
    assert_eq!(stdout(&outcome), "ModuleNotFoundError None\n");
}

/// A session with a writable mount over a project and the project's
/// `.goru/packages` as its packages directory, as `goru` run in a project
/// folder with `--mount /project:.:rwc --packages .goru/packages` has.
fn project_session(project: &Path, index: &Index) -> SessionBuilder {
    let packages = project.join(".goru/packages");
    std::fs::create_dir_all(&packages).unwrap();
    let mut builder = SessionBuilder::new(Language::Python);
    builder.capabilities(Capabilities {
        mounts: vec![goru_runtimes::Mount::new(
            "/project",
            project,
            goru_runtimes::MountMode::Rwc,
        )],
        packages: Some(PackagesCapability {
            dir: packages,
            allow_install: vec!["demo-pkg".into()],
            index_url: Some(index.url()),
        }),
        ..Capabilities::none()
    });
    builder
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_cannot_make_install_pkg_truncate_a_host_file_through_a_planted_lock() {
    let index = demo_index().await;
    let project = tempfile::tempdir().unwrap();
    let precious = project.path().join("main.py");
    std::fs::write(&precious, "precious\n").unwrap();
    // The guest plants the link through its mount (the fs layer lets it
    // link only inside the mount: the user's own files are the target).
    let code = "import os\n\
         os.symlink('../../main.py', '/project/.goru/packages/.goru-lock')\n\
         try:\n    install_pkg('demo-pkg')\nexcept Exception as e:\n    print(type(e).__name__, e)";
    let outcome = run(&project_session(project.path(), &index), code).await;
    let out = stdout(&outcome);
    assert!(
        out.starts_with(
            "RuntimeError install_pkg failed: refusing /packages/.goru-lock: it is a symbolic link"
        ),
        "{out}"
    );
    // The host path of the directory is not in the message.
    assert!(
        !out.contains(&project.path().display().to_string()),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "precious\n");
    assert!(!project.path().join(".goru/packages/demo_pkg").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn install_pkg_refuses_a_packages_directory_whose_parent_the_guest_replaced() {
    let index = demo_index().await;
    let project = tempfile::tempdir().unwrap();
    let code = "import os\n\
         os.rename('/project/.goru', '/project/moved')\n\
         os.symlink('moved', '/project/.goru')\n\
         try:\n    install_pkg('demo-pkg')\nexcept Exception as e:\n    print(type(e).__name__, e)";
    let outcome = run(&project_session(project.path(), &index), code).await;
    let out = stdout(&outcome);
    assert!(
        out.starts_with("RuntimeError install_pkg failed: refusing"),
        "{out}"
    );
    assert!(
        tree_is_empty(&project.path().join("moved/packages")),
        "{out}"
    );
    // A packages directory that is a link is refused before the start.
    let start = builder(PackagesCapability::new(
        project.path().join(".goru/packages"),
    ))
    .start(engine())
    .await;
    assert!(matches!(
        start,
        Err(StartError::Engine(Error::Capability(
            CapabilityError::Packages(PackagesConfigError::Dir { .. })
        )))
    ));
}

fn tree_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[tokio::test(flavor = "multi_thread")]
async fn install_pkg_errors_never_show_index_credentials() {
    let index = demo_index().await;
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let code = "try:\n    install_pkg('demo-pkg')\nexcept Exception as e:\n    print(type(e).__name__, e)\n\
                try:\n    install_pkg('missing-pkg')\nexcept Exception as e:\n    print(type(e).__name__, e)";
    for (url, kind) in [
        (
            format!("http://alice:s3cret-token@127.0.0.1:{port}/simple"),
            "ConnectionError",
        ),
        (
            index.url().replace("http://", "http://alice:s3cret-token@"),
            "RuntimeError",
        ),
    ] {
        let capability = PackagesCapability {
            dir: dir.path().to_path_buf(),
            allow_install: vec!["demo-pkg".into(), "missing-pkg".into()],
            index_url: Some(url),
        };
        let outcome = run(&builder(capability), code).await;
        let out = stdout(&outcome);
        assert!(out.contains(kind), "{out}");
        assert!(out.contains("***@127.0.0.1"), "{out}");
        assert!(!out.contains("s3cret") && !out.contains("alice"), "{out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_index_page_is_a_runtime_error_in_the_guest() {
    let index = Index::start(
        Api::MalformedJson,
        vec![IndexFile::wheel(&Wheel::new("demo-pkg", "1.0"))],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let capability = PackagesCapability {
        dir: dir.path().to_path_buf(),
        allow_install: vec!["demo-pkg".into()],
        index_url: Some(index.url()),
    };
    let outcome = run(&builder(capability), "install_pkg('demo-pkg')").await;
    let (kind, message) = exception(&outcome);
    assert_eq!(kind, "RuntimeError", "{message}");
    assert!(message.contains("cannot be read"), "{message}");
}
