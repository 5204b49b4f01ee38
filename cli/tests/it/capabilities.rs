//! Capability flags through the real binary: `--kv` and `--deterministic`
//! (`--mount` and `--allow-host` have their own files).

use crate::common;

use common::goru;

#[test]
fn kv_works_with_the_flag_and_names_it_without() {
    let run = goru(&[
        "--kv",
        "-l",
        "python",
        "-c",
        "kv.set('a', 1); print(kv.get('a'))",
    ]);
    run.assert_code(0);
    assert_eq!(run.stdout, "1\n");

    let run = goru(&["-l", "python", "-c", "kv.set('a', 1); print(kv.get('a'))"]);
    run.assert_code(1);
    assert!(run.stderr.contains("PermissionError"), "{}", run.stderr);
    assert!(run.stderr.contains("`--kv`"), "{}", run.stderr);
}

#[test]
fn deterministic_runs_repeat_exactly_in_both_languages() {
    for (language, code) in [
        (
            "python",
            "import random, os, time\nprint(random.random(), os.urandom(4).hex(), int(time.time()))",
        ),
        (
            "js",
            "console.log(Math.random(), Math.floor(Date.now() / 1000))",
        ),
    ] {
        let first = goru(&["--deterministic", "-l", language, "-c", code]);
        let second = goru(&["--deterministic", "-l", language, "-c", code]);
        let seeded = goru(&["--deterministic=9", "-l", language, "-c", code]);
        let real = goru(&["-l", language, "-c", code]);
        first.assert_code(0);
        assert_eq!(first.stdout, second.stdout, "{language}");
        assert_ne!(first.stdout, seeded.stdout, "{language}: another seed");
        assert!(
            first.stdout.trim_end().ends_with(" 946684800"),
            "{language}: {}",
            first.stdout
        );
        assert!(
            !real.stdout.contains("946684800"),
            "{language}: the real clock otherwise"
        );
    }
}
