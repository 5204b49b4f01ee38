//! The command line itself: help, version, flags, inputs that are not code.

use crate::common;

use common::{goru, goru_in, goru_with_stdin, write_file};

#[test]
fn help_documents_exit_codes_and_limits() {
    let run = goru(&["--help"]);
    run.assert_code(0);
    for expected in [
        "--timeout",
        "--memory",
        "--max-output",
        "--lang",
        "124",
        "137",
        "153",
        "Exit codes",
    ] {
        assert!(
            run.stdout.contains(expected),
            "--help lacks {expected}: {}",
            run.stdout
        );
    }
}

#[test]
fn version_names_the_interpreters() {
    let run = goru(&["--version"]);
    run.assert_code(0);
    assert!(run.stdout.starts_with("goru "), "{}", run.stdout);
    assert!(run.stdout.contains("QuickJS-NG") && run.stdout.contains("CPython"));
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let run = goru(&["--frobnicate", "x.py"]);
    run.assert_code(2);
    assert!(run.stderr.contains("--frobnicate"), "{}", run.stderr);
}

#[test]
fn unknown_language_is_named_with_a_hint() {
    let run = goru(&["-l", "ruby", "-c", "puts 1"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("unknown language `ruby`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("hint: use `--lang python` or `--lang js`"),
        "{}",
        run.stderr
    );
}

#[test]
fn code_without_a_language_asks_for_one() {
    let run = goru(&["-c", "print(1)"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("cannot tell the language"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--lang"), "{}", run.stderr);

    let run = goru_with_stdin(&[], b"print(1)");
    run.assert_code(2);
    assert!(
        run.stderr.contains("code read from stdin"),
        "{}",
        run.stderr
    );

    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "notes.txt", "print(1)");
    let run = goru(&[path.to_str().unwrap()]);
    run.assert_code(2);
    assert!(run.stderr.contains("notes.txt"), "{}", run.stderr);
}

#[test]
fn missing_file_directory_and_non_utf8_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = goru(&[dir.path().join("absent.py").to_str().unwrap()]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("cannot read") && run.stderr.contains("absent.py"),
        "{}",
        run.stderr
    );

    let sub = dir.path().join("pkg.py");
    std::fs::create_dir(&sub).unwrap();
    let run = goru(&[sub.to_str().unwrap()]);
    run.assert_code(2);
    assert!(run.stderr.contains("is a directory"), "{}", run.stderr);

    let latin1 = dir.path().join("latin1.py");
    std::fs::write(&latin1, b"print('caf\xe9')\n").unwrap();
    let run = goru(&[latin1.to_str().unwrap()]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("not valid UTF-8 (at byte 10)"),
        "{}",
        run.stderr
    );
}

#[test]
fn nonsense_limits_are_rejected_not_replaced() {
    for (flag, value) in [
        ("--memory", "lots"),
        ("--memory", "0"),
        ("--memory", "5GiB"),
        ("--memory", "-64MiB"),
        ("--timeout", "soon"),
        ("--timeout", "0s"),
        ("--max-output", "1x"),
        ("--max-output", "0"),
    ] {
        let run = goru(&[flag, value, "-l", "python", "-c", "print(1)"]);
        run.assert_code(2);
        assert!(
            run.stderr.starts_with("error: "),
            "{flag} {value}: {}",
            run.stderr
        );
        assert!(
            run.stdout.is_empty(),
            "{flag} {value} ran anyway: {}",
            run.stdout
        );
    }
}

#[test]
fn a_dash_means_stdin_and_runs_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let run = goru_in(Some(dir.path()), &["-l", "py", "-"], b"print('from stdin')");
    run.assert_code(0);
    assert_eq!(run.stdout, "from stdin\n");
}
