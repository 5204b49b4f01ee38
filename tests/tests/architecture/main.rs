//! The architecture, checked: no import cycles between the modules of any
//! crate (`modules`), and no crate depending against the direction
//! protocol <- runtimes <- daemon, client <- protocol, CLI and bench on top
//! (`crates`).

mod crates;
mod modules;

use serde_json::Value;
use std::path::Path;

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    let metadata = crates::metadata();
    let mut found = Vec::new();
    for package in crates::members(&metadata) {
        let name = package["name"].as_str().unwrap();
        for target in package["targets"].as_array().unwrap() {
            let kinds: Vec<&str> = target["kind"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            if !kinds.iter().any(|kind| ["lib", "bin"].contains(kind)) {
                continue;
            }
            let root = Path::new(target["src_path"].as_str().unwrap());
            let label = format!(
                "{name} ({} {})",
                kinds.join(","),
                target["name"].as_str().unwrap()
            );
            found.extend(modules::cycles(&label, root).unwrap_or_else(|e| panic!("{e}")));
        }
    }
    let report: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(
        found.is_empty(),
        "{} import cycles between sibling modules:\n{}",
        found.len(),
        report.join("")
    );
}

#[test]
fn crates_depend_only_downwards() {
    let metadata = crates::metadata();
    let mut wrong = Vec::new();
    for package in crates::members(&metadata) {
        let name = package["name"].as_str().unwrap();
        let allowed = crates::allowed(name).unwrap_or_else(|| {
            panic!("{name} is not in the layering (tests/tests/architecture/crates.rs)")
        });
        for dependency in package["dependencies"].as_array().unwrap() {
            let dep = dependency["name"].as_str().unwrap();
            let dev = dependency["kind"] == "dev";
            let ours = dependency["path"].is_string();
            if ours && !dev && !allowed.contains(&dep) {
                wrong.push(format!("{name} depends on {dep}"));
            }
            // Its tests may use the support crate, unless the support
            // crate is built on it (two copies of its types).
            if ours
                && dev
                && dep == "goru-tests"
                && crates::allowed("goru-tests").unwrap().contains(&name)
            {
                wrong.push(format!("{name} takes goru-tests, which depends on it"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies against the layering:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_client_library_builds_without_the_engine() {
    let closure = crates::dependency_closure("goru-client");
    for engine in ["wasmtime", "goru-runtimes", "goru-packages", "goru-daemon"] {
        assert!(
            !closure.iter().any(|name| name == engine),
            "goru-client (with its dev-dependencies) needs {engine}"
        );
    }
}

/// The checker itself, on small crates written for it.
mod checker {
    use super::modules;
    use std::path::Path;

    fn crate_of(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn cycles(dir: &Path) -> Vec<String> {
        modules::cycles("synthetic", &dir.join("src/lib.rs"))
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn finds_a_cycle_through_a_re_export() {
        let dir = crate_of(&[
            ("src/lib.rs", "mod a;\nmod b;\npub use a::Thing;\n"),
            ("src/a.rs", "use crate::b::helper;\npub struct Thing;\n"),
            (
                "src/b.rs",
                "pub fn helper() -> crate::Thing { crate::Thing }\n",
            ),
        ]);
        let cycles = cycles(dir.path());
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert!(
            cycles[0].contains("in the crate root: a -> b -> a"),
            "{}",
            cycles[0]
        );
        assert!(cycles[0].contains("uses `crate::Thing`"), "{}", cycles[0]);
    }

    #[test]
    fn finds_a_cycle_between_a_module_and_its_parent() {
        let dir = crate_of(&[
            ("src/lib.rs", "mod outer;\n"),
            (
                "src/outer/mod.rs",
                "mod inner;\nfn shared() {}\nfn run() { inner::go() }\n",
            ),
            ("src/outer/inner.rs", "pub fn go() { super::shared() }\n"),
        ]);
        let cycles = cycles(dir.path());
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert!(cycles[0].contains("in crate::outer:"), "{}", cycles[0]);
        assert!(
            cycles[0].contains("inner") && cycles[0].contains("self"),
            "{}",
            cycles[0]
        );
    }

    #[test]
    fn finds_a_cycle_through_a_macro_and_a_glob_import() {
        let dir = crate_of(&[
            ("src/lib.rs", "mod a;\nmod b;\n"),
            ("src/a.rs", "use crate::b::*;\npub fn one() { two() }\n"),
            (
                "src/b.rs",
                "pub fn two() { println!(\"{}\", crate::a::one()) }\n",
            ),
        ]);
        assert_eq!(cycles(dir.path()).len(), 1);
    }

    #[test]
    fn passes_a_crate_whose_modules_form_no_cycle() {
        let dir = crate_of(&[
            (
                "src/lib.rs",
                "mod a;\nmod b;\nmod c { pub fn f() { super::b::g() } }\npub use a::Thing;\n",
            ),
            (
                "src/a.rs",
                "pub struct Thing;\nfn f() { crate::b::g(); crate::c::f(); }\n#[cfg(test)]\nmod tests { use super::*; }\n",
            ),
            ("src/b.rs", "pub fn g() {}\n"),
        ]);
        assert_eq!(cycles(dir.path()), Vec::<String>::new());
    }
}
