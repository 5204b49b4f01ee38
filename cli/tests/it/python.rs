//! The Python guest through the real `goru` binary: what a user running
//! scripts sees on stdout, stderr and in the exit code.

use crate::common;

use common::{CANARY_ENV, Run, assert_contains_all, goru, goru_in, goru_with_stdin, write_file};
use std::time::Duration;

/// Runs `code` with `goru -l python -c`, extra flags first.
fn python(flags: &[&str], code: &str) -> Run {
    let mut args = flags.to_vec();
    args.extend(["-l", "python", "-c", code]);
    goru(&args)
}

#[test]
fn prints_to_stdout() {
    let run = python(&[], "print(1+1)");
    run.assert_code(0);
    assert_eq!(run.stdout, "2\n");
    assert_eq!(run.stderr, "");
}

#[test]
fn a_py_file_runs_by_its_extension_with_its_arguments() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "args.py",
        "import sys\nprint(sys.argv)\nprint(__name__)\n",
    );
    let run = goru_in(Some(dir.path()), &["args.py", "a", "b c"], b"");
    run.assert_code(0);
    assert_eq!(run.stdout, "['args.py', 'a', 'b c']\n__main__\n");
}

#[test]
fn an_exception_is_reported_at_the_users_line_with_its_source() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "crash.py",
        "total = 10\nparts = 0\nshare = total / parts\nprint('unreachable')\n",
    );
    let run = goru_in(Some(dir.path()), &["crash.py"], b"");
    run.assert_code(1);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "Traceback (most recent call last):\n  \
         File \"crash.py\", line 3, in <module>\n    \
         share = total / parts\n            \
         ~~~~~~^~~~~~~\n\
         ZeroDivisionError: division by zero\n"
    );
}

#[test]
fn tracebacks_show_only_the_users_frames() {
    let code =
        "def inner():\n    raise ValueError('deep')\n\ndef outer():\n    inner()\n\nouter()\n";
    let run = python(&[], code);
    run.assert_code(1);
    assert_contains_all(
        &run.stderr,
        &[
            "File \"<string>\", line 7, in <module>",
            "File \"<string>\", line 5, in outer",
            "File \"<string>\", line 2, in inner",
            "    raise ValueError('deep')",
            "ValueError: deep",
        ],
    );
    assert!(!run.stderr.contains("goru_"), "{}", run.stderr);
    assert_eq!(run.stderr.matches("  File ").count(), 3, "{}", run.stderr);
}

#[test]
fn output_printed_before_an_exception_is_kept() {
    let run = python(
        &[],
        "import sys\nprint('before')\nsys.stderr.write('warned\\n')\n1/0\n",
    );
    run.assert_code(1);
    assert_eq!(run.stdout, "before\n");
    assert!(
        run.stderr.starts_with("warned\nTraceback"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_syntax_error_is_shown_with_a_caret_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "bad.py", "x = 1\nprint(x +)\n");
    let run = goru_in(Some(dir.path()), &["bad.py"], b"");
    run.assert_code(1);
    assert_eq!(run.stdout, "");
    assert_contains_all(
        &run.stderr,
        &[
            "File \"bad.py\", line 2",
            "print(x +)",
            "^",
            "SyntaxError: invalid syntax",
        ],
    );
    assert!(!run.stderr.contains("Traceback"), "{}", run.stderr);

    // A compiler-stage error has no source line of its own in CPython; it
    // is still shown.
    let run = python(&[], "x = 1\nreturn x\n");
    run.assert_code(1);
    assert_contains_all(
        &run.stderr,
        &[
            "line 2",
            "    return x",
            "SyntaxError: 'return' outside function",
        ],
    );
}

#[test]
fn sys_exit_sets_the_exit_code() {
    python(&[], "import sys; sys.exit(3)").assert_code(3);
    python(&[], "import sys; print('bye'); sys.exit()").assert_code(0);
    python(&[], "exit(4)").assert_code(4);
    python(&[], "raise SystemExit(0)").assert_code(0);
}

#[test]
fn sys_exit_with_a_message_prints_it_and_exits_1() {
    let run = python(&[], "import sys; sys.exit('fatal: no input')");
    run.assert_code(1);
    assert_eq!(run.stderr, "fatal: no input\n");
    assert_eq!(run.stdout, "");
}

#[test]
fn input_and_sys_stdin_read_the_piped_stdin() {
    let code = "name = input()\nimport sys\nrest = sys.stdin.read()\nprint(f'{name}|{rest!r}')";
    let run = goru_with_stdin(&["-l", "python", "-c", code], b"Ada\nline 2\nline 3\n");
    run.assert_code(0);
    assert_eq!(run.stdout, "Ada|'line 2\\nline 3\\n'\n");

    // The judge pattern: a file reading its test input from stdin.
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "sum.py",
        "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n",
    );
    let numbers: String = (1..=10_000).map(|n| format!("{n}\n")).collect();
    let run = goru_in(Some(dir.path()), &["sum.py"], numbers.as_bytes());
    run.assert_code(0);
    assert_eq!(run.stdout, "50005000\n");
}

#[test]
fn input_at_end_of_stdin_raises_eoferror() {
    let run = python(&[], "input()");
    run.assert_code(1);
    assert!(run.stderr.contains("EOFError"), "{}", run.stderr);
}

#[test]
fn host_files_are_not_visible() {
    let run = python(&[], "print(open('/etc/passwd').read())");
    run.assert_code(1);
    assert!(!run.stdout.contains("root"), "{}", run.stdout);
    assert!(
        run.stderr.contains("FileNotFoundError") && run.stderr.contains("/etc/passwd"),
        "{}",
        run.stderr
    );

    let run = python(&[], "import os\nprint(os.listdir('/'))");
    run.assert_code(1);
    assert!(run.stderr.contains("FileNotFoundError"), "{}", run.stderr);
}

#[test]
fn the_environment_is_empty() {
    let run = python(
        &[],
        "import os\nprint(dict(os.environ))\nprint(os.getenv('HOME'), os.getenv('PATH'))",
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "{}\nNone None\n");
    assert!(!run.stdout.contains(CANARY_ENV.1));
}

#[test]
fn no_build_machine_path_is_visible() {
    let run = python(&[], "import sys, os\nprint(sys.path)\nprint(os.getcwd())");
    run.assert_code(0);
    for leak in ["/work", "/root", "/home", "/tmp", "target", "guest-build"] {
        assert!(!run.stdout.contains(leak), "{leak} in {}", run.stdout);
    }
    assert!(run.stdout.ends_with("\n/\n"), "{}", run.stdout);
}

#[test]
fn processes_cannot_be_started() {
    let run = python(&[], "import os\nos.system('ls')");
    run.assert_code(1);
    assert!(
        run.stderr
            .contains("AttributeError: module 'os' has no attribute 'system'"),
        "{}",
        run.stderr
    );

    let run = python(&[], "import subprocess\nsubprocess.run(['ls', '/'])");
    run.assert_code(1);
    assert!(
        run.stderr
            .contains("OSError: [Errno 58] wasi does not support processes."),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn the_network_is_unreachable() {
    let run = python(
        &[],
        "import socket\ns = socket.socket()\ns.connect(('1.1.1.1', 80))\nprint('connected')",
    );
    run.assert_code(1);
    assert!(!run.stdout.contains("connected"));
    assert!(run.stderr.contains("PermissionError"), "{}", run.stderr);
}

#[test]
fn random_numbers_differ_between_runs() {
    let code = "import random, os\nprint(random.random(), os.urandom(8).hex())";
    let first = python(&[], code);
    let second = python(&[], code);
    first.assert_code(0);
    second.assert_code(0);
    let (a, b) = (first.stdout.split(' '), second.stdout.split(' '));
    for (x, y) in a.zip(b) {
        assert_ne!(x, y, "the same value in two fresh sandboxes");
    }
}

#[test]
fn asyncio_run_sleeps_and_gathers() {
    let code = "\
import asyncio, time

async def job(n):
    await asyncio.sleep(0.1)
    return n * n

async def main():
    started = time.monotonic()
    results = await asyncio.gather(job(1), job(2), job(3))
    return results, time.monotonic() - started

results, elapsed = asyncio.run(main())
print(results, 0.09 < elapsed < 0.5)
";
    let run = python(&[], code);
    run.assert_code(0);
    assert_eq!(run.stdout, "[1, 4, 9] True\n");
}

#[test]
fn an_asyncio_deadlock_is_an_error_not_a_hang() {
    let code = "\
import asyncio

async def main():
    await asyncio.get_running_loop().create_future()

asyncio.run(main())
";
    // A hang would end in the timeout (124) instead.
    let run = python(&["--timeout", "10s"], code);
    run.assert_code(1);
    assert!(
        run.stderr.contains("the event loop would wait forever"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_stdlib_is_bundled() {
    let code = r##"
import json, re, sqlite3, decimal, datetime, zoneinfo, collections, itertools
import statistics, fractions, hashlib, base64, zlib, gzip, csv, io, textwrap
import unicodedata, dataclasses, enum, heapq, bisect, uuid, pickle, tomllib
import xml.etree.ElementTree as ET, ast, colorsys, string, typing
db = sqlite3.connect(":memory:")
db.execute("create table t (x integer)")
db.executemany("insert into t values (?)", [(1,), (2,), (3,)])
print(db.execute("select sum(x) from t").fetchone()[0])
print(json.dumps({"a": [1, 2]}), re.sub(r"\d", "#", "a1b22"))
print(decimal.Decimal(1) / decimal.Decimal(8), fractions.Fraction(1, 3) * 3)
print(datetime.datetime.strptime("2024-02-29", "%Y-%m-%d").date().isoformat())
print(datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc).isoformat())
print(zoneinfo.ZoneInfo.__name__, ast.unparse(ast.parse("x=1+2")))
print(hashlib.sha256(b"goru").hexdigest()[:12], "é".encode("cp1252"))
print(ET.fromstring("<a><b/></a>")[0].tag, statistics.median([3, 1, 2]))
"##;
    let run = python(&[], code);
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "6\n\
         {\"a\": [1, 2]} a#b##\n\
         0.125 1\n\
         2024-02-29\n\
         2024-01-01T00:00:00+00:00\n\
         ZoneInfo x = 1 + 2\n\
         cffefbbf3399 b'\\xe9'\n\
         b 2\n"
    );
}

#[test]
fn a_raised_recursion_limit_allows_deep_recursion() {
    let code = "\
import sys
sys.setrecursionlimit(10**5)
def depth(n):
    return 0 if n == 0 else 1 + depth(n - 1)
print(depth(90_000))
";
    let run = python(&[], code);
    run.assert_code(0);
    assert_eq!(run.stdout, "90000\n");
}

#[test]
fn unbounded_recursion_ends_in_recursion_error_never_a_crash() {
    for limit in ["10**5", "10**6", "10**9"] {
        let code = format!(
            "import sys\nsys.setrecursionlimit({limit})\ndef down(n):\n    return down(n + 1)\ntry:\n    down(0)\nexcept RecursionError as e:\n    print('RecursionError:', e)\nprint('alive')\n"
        );
        let run = python(&[], &code);
        run.assert_code(0);
        assert_eq!(
            run.stdout, "RecursionError: maximum recursion depth exceeded\nalive\n",
            "limit {limit}"
        );
    }

    // Uncaught: a collapsed traceback, quickly (formatting every one of
    // 200,000 frames took 19 s).
    let run = python(
        &[],
        "import sys\nsys.setrecursionlimit(10**6)\ndef down(n):\n    return down(n + 1)\ndown(0)\n",
    );
    run.assert_code(1);
    assert_contains_all(
        &run.stderr,
        &[
            "File \"<string>\", line 4, in down",
            "more times]",
            "RecursionError: maximum recursion depth exceeded",
        ],
    );
    assert!(run.stderr.len() < 2_000, "{}", run.stderr);
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
}

#[test]
fn deeply_nested_data_ends_in_an_error_never_a_crash() {
    let code = "\
import json
try:
    json.loads('[' * 100_000)
except (RecursionError, MemoryError) as e:
    print('json:', type(e).__name__)
nested = []
for _ in range(100_000):
    nested = [nested]
try:
    repr(nested)
except RecursionError:
    print('repr: RecursionError')
";
    let run = python(&[], code);
    run.assert_code(0);
    assert_eq!(run.stdout, "json: RecursionError\nrepr: RecursionError\n");
}

#[test]
fn allocations_past_the_memory_limit_raise_memory_error() {
    let run = python(&["--memory", "64MiB"], "data = bytearray(10**9)");
    run.assert_code(1);
    assert!(run.stderr.ends_with("MemoryError\n"), "{}", run.stderr);

    let run = python(
        &["--memory", "64MiB"],
        "try:\n    bytearray(10**9)\nexcept MemoryError:\n    print('caught')\nprint(len(bytearray(10**6)))",
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "caught\n1000000\n");

    // More than a 32-bit address space holds is an OverflowError on wasm32.
    let run = python(&[], "bytearray(10**10)");
    run.assert_code(1);
    assert!(run.stderr.contains("OverflowError"), "{}", run.stderr);
}

/// The value the hint line `hint: raise the limit with `--memory SIZE`...`
/// suggests.
fn suggested_memory(stderr: &str) -> String {
    let hint = stderr
        .lines()
        .find(|line| line.starts_with("hint: raise the limit with `--memory "))
        .unwrap_or_else(|| panic!("a --memory hint in {stderr:?}"));
    let size = &hint["hint: raise the limit with `--memory ".len()..];
    size[..size.find('`').unwrap()].to_string()
}

#[test]
fn the_memory_hint_suggests_a_limit_the_run_then_fits_in() {
    for language in ["python", "js"] {
        let code = if language == "python" {
            "print('fits')"
        } else {
            "console.log('fits')"
        };
        // The smallest limit there is: too little for either guest to start.
        let run = goru(&["--memory", "1MiB", "-l", language, "-c", code]);
        run.assert_code(137);
        assert!(
            run.stderr.contains("needs about that much to start"),
            "{language}: {}",
            run.stderr
        );
        // Followed once, the hint is enough.
        let memory = suggested_memory(&run.stderr);
        let run = goru(&["--memory", &memory, "-l", language, "-c", code]);
        run.assert_code(0);
        assert_eq!(run.stdout, "fits\n", "{language} with the hinted {memory}");
    }
}

/// The `--report` file of a run with `flags`, and the run.
fn reported(flags: &[&str], code: &str) -> (serde_json::Value, Run) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    let mut args = vec!["--report", path.to_str().unwrap()];
    args.extend(flags);
    let run = python(&args, code);
    let text = std::fs::read_to_string(&path).expect("the report is written");
    (
        serde_json::from_str(&text).expect("the report is JSON"),
        run,
    )
}

#[test]
fn a_guests_own_exit_124_is_told_from_a_timeout() {
    python(&[], "pass").assert_code(0);
    // The guest exits 124 and writes what goru would write.
    let (report, run) = reported(
        &[],
        "import sys
print('error: the run timed out after 1s', file=sys.stderr)
sys.exit(124)",
    );
    run.assert_code(124);
    assert_eq!(report["status"], "exit", "{report}");
    assert_eq!(report["exitCode"], 124, "{report}");

    let (report, run) = reported(&["--timeout", "500ms"], "while True: pass");
    run.assert_code(124);
    assert!(
        run.stderr.contains("error: the run timed out after 500ms"),
        "{}",
        run.stderr
    );
    assert_eq!(report["status"], "timeout", "{report}");
    assert_eq!(report["exitCode"], 124, "{report}");
    assert!(
        report["durationMs"].as_f64().is_some_and(|ms| ms >= 500.0),
        "{report}"
    );

    let (report, run) = reported(&[], "1/0");
    run.assert_code(1);
    assert_eq!(report["status"], "exception", "{report}");
}

#[test]
fn a_report_path_that_cannot_be_written_is_a_usage_error_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("report.json");
    let run = python(&["--report", path.to_str().unwrap()], "print('ran')");
    run.assert_code(2);
    assert_eq!(run.stdout, "", "the code must not run");
    assert!(
        run.stderr.contains("cannot write the report"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
}

#[test]
fn a_busy_loop_is_stopped_at_the_timeout() {
    // The first goru of a test run may compile the guest: not part of the timing.
    python(&[], "pass").assert_code(0);
    let run = python(
        &["--timeout", "1s"],
        "print('started')\nwhile True:\n    pass",
    );
    run.assert_code(124);
    assert_eq!(run.stdout, "started\n");
    assert!(run.stderr.contains("timed out after 1s"), "{}", run.stderr);
    assert!(
        run.elapsed >= Duration::from_millis(1000) && run.elapsed < Duration::from_secs(4),
        "{:?}",
        run.elapsed
    );
}

#[test]
fn output_past_the_limit_is_truncated_and_stops_the_run() {
    let run = python(&[], "print('x' * 100_000_000)\nprint('not reached')");
    run.assert_code(153);
    assert_eq!(run.stdout.len(), 1 << 20);
    assert!(run.stdout.bytes().all(|b| b == b'x'));
    assert_contains_all(&run.stderr, &["output truncated", "1MiB"]);
}

#[test]
fn large_output_within_the_limit_arrives_whole() {
    // One write larger than a WASI stream accepts at once (64 KiB).
    let run = python(
        &["--max-output", "4MiB"],
        "import sys\nsys.stdout.write('y' * 3_000_000)\nsys.stderr.write('z' * 200_000)",
    );
    run.assert_code(0);
    assert_eq!(run.stdout.len(), 3_000_000);
    assert_eq!(run.stderr.len(), 200_000);
}

#[test]
fn host_calls_to_unknown_functions_raise_runtime_error() {
    let run = python(
        &[],
        "try:\n    call('weather', city='Oslo')\nexcept RuntimeError as e:\n    print('RuntimeError:', e)",
    );
    run.assert_code(0);
    assert!(
        run.stdout.starts_with("RuntimeError: ") && run.stdout.contains("weather"),
        "{}",
        run.stdout
    );
}

#[test]
fn os_exit_ends_the_run_with_its_code_as_sys_exit_does() {
    for code in [0, 3] {
        let run = python(
            &[],
            &format!("import os\nprint('a')\nos._exit({code})\nprint('b')"),
        );
        run.assert_code(code);
        assert_eq!(run.stdout, "a\n");
        assert_eq!(run.stderr, "", "no crash report");
    }
}

#[test]
fn a_huge_exception_message_is_cut_at_the_output_limit_and_says_so() {
    let run = python(
        &["--max-output", "1KiB"],
        "raise Exception('A' * 20_000_000)",
    );
    run.assert_code(1);
    let (traceback, report) = run
        .stderr
        .split_once("warning: ")
        .expect("a warning after the traceback");
    assert!(traceback.len() <= 1025, "{} bytes", traceback.len());
    assert!(traceback.starts_with("Traceback (most recent call last):"));
    assert_contains_all(
        report,
        &[
            "the exception was cut short",
            "1KiB output limit",
            "hint: raise the limit with `--max-output 4KiB`",
        ],
    );
}

#[test]
fn a_memory_error_handler_at_the_limit_shows_no_guest_panic() {
    let code = "\
import sys
x = []
try:
    while True:
        x.append(bytearray(10**4))
except MemoryError:
    print('x' * 10**7, file=sys.stderr)
";
    let run = python(&["--memory", "64MiB"], code);
    for noise in ["panicked", "lost sys.stderr", "object address"] {
        assert!(!run.stderr.contains(noise), "{noise:?} in {run:#?}");
    }
    assert!(
        run.stderr.ends_with("MemoryError\n") || run.code == 137,
        "{run:#?}"
    );
}
