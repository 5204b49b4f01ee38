//! The engine's Rust API, on both guests: one-shot runs, sessions, limits.

use goru_runtimes::{Engine, Error, Language, Limits, Mode, SessionBuilder, Status, Stdin};
use std::sync::OnceLock;
use std::time::Duration;

/// One engine for the whole test binary: guests compile once.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new().expect("engine"))
}

fn limits(timeout: Duration, memory: u64, output: u64) -> Limits {
    Limits {
        timeout,
        memory_bytes: memory,
        max_output_bytes: output,
        ..Limits::default()
    }
}

async fn once(language: Language, code: &str) -> goru_runtimes::Outcome {
    engine()
        .run_once(&SessionBuilder::new(language), code, "<test>")
        .await
        .expect("run")
}

#[tokio::test]
async fn one_shot_runs_capture_stdout_and_stderr_separately() {
    let outcome = once(
        Language::Python,
        "import sys\nprint('out')\nprint('err', file=sys.stderr)",
    )
    .await;
    assert_eq!(outcome.status, Status::Ok { value: None });
    assert_eq!(outcome.stdout, b"out\n");
    assert_eq!(outcome.stderr, b"err\n");

    let outcome = once(
        Language::JavaScript,
        "console.log('out'); console.error('err')",
    )
    .await;
    assert_eq!(outcome.status, Status::Ok { value: None });
    assert_eq!(outcome.stdout, b"out\n");
    assert_eq!(outcome.stderr, b"err\n");
}

#[tokio::test]
async fn one_shot_sandboxes_share_nothing() {
    for (language, set, get) in [
        (Language::Python, "x = 41", "print(x)"),
        (Language::JavaScript, "var x = 41", "console.log(typeof x)"),
    ] {
        assert!(once(language, set).await.status == Status::Ok { value: None });
        let outcome = once(language, get).await;
        match language {
            Language::Python => assert!(
                matches!(&outcome.status, Status::Exception(e) if e.type_name == "NameError"),
                "{outcome:?}"
            ),
            Language::JavaScript => assert_eq!(outcome.stdout, b"undefined\n"),
        }
    }
}

#[tokio::test]
async fn session_state_persists_across_runs() {
    for (language, define, use_it) in [
        (
            Language::Python,
            "import math\ndef f(n):\n    return math.factorial(n)\nx = 10",
            "print(f(x))",
        ),
        (
            Language::JavaScript,
            "function f(n) { return n <= 1 ? 1 : n * f(n - 1) }\nvar x = 10",
            "console.log(f(x))",
        ),
    ] {
        let mut session = SessionBuilder::new(language)
            .start(engine())
            .await
            .expect("start");
        assert_eq!(
            session.run(define, "<a>").await.unwrap().status,
            Status::Ok { value: None }
        );
        let outcome = session.run(use_it, "<b>").await.unwrap();
        assert_eq!(outcome.stdout, b"3628800\n", "{language}: {outcome:?}");
        assert!(session.is_alive());
    }
}

#[tokio::test]
async fn repl_mode_returns_the_value_of_a_trailing_expression() {
    let mut session = SessionBuilder::new(Language::Python)
        .start(engine())
        .await
        .unwrap();
    let outcome = session
        .run_mode("1 + 2", "<repl>", Mode::Repl)
        .await
        .unwrap();
    assert_eq!(
        outcome.status,
        Status::Ok {
            value: Some("3".into())
        }
    );
    let outcome = session
        .run_mode("_ * 2", "<repl>", Mode::Repl)
        .await
        .unwrap();
    assert_eq!(
        outcome.status,
        Status::Ok {
            value: Some("6".into())
        }
    );
    let outcome = session
        .run_mode("def f():", "<repl>", Mode::CheckComplete)
        .await
        .unwrap();
    assert_eq!(outcome.status, Status::Incomplete);

    let mut session = SessionBuilder::new(Language::JavaScript)
        .start(engine())
        .await
        .unwrap();
    let outcome = session
        .run_mode("'a' + 'b'", "<repl>", Mode::Repl)
        .await
        .unwrap();
    assert_eq!(
        outcome.status,
        Status::Ok {
            value: Some("'ab'".into())
        }
    );
    let outcome = session
        .run_mode("function f() {", "<repl>", Mode::CheckComplete)
        .await
        .unwrap();
    assert_eq!(outcome.status, Status::Incomplete);
}

#[tokio::test]
async fn a_timeout_kills_the_session_and_later_runs_say_so() {
    for (language, spin) in [
        (Language::Python, "while True: pass"),
        (Language::JavaScript, "for (;;) {}"),
    ] {
        let mut builder = SessionBuilder::new(language);
        builder.limits(limits(Duration::from_millis(200), 256 << 20, 1 << 20));
        let mut session = builder.start(engine()).await.unwrap();
        let outcome = session.run(spin, "<spin>").await.unwrap();
        assert_eq!(
            outcome.status,
            Status::Timeout {
                limit: Duration::from_millis(200)
            }
        );
        assert!(
            outcome.duration >= Duration::from_millis(200),
            "{outcome:?}"
        );
        assert!(!session.is_alive());
        assert!(matches!(
            session.run("1", "<after>").await,
            Err(Error::SessionDead(_))
        ));
    }
}

#[tokio::test]
async fn a_guest_sleeping_past_its_deadline_is_stopped_by_the_host_timer() {
    let mut builder = SessionBuilder::new(Language::Python);
    builder.limits(limits(Duration::from_millis(300), 256 << 20, 1 << 20));
    let outcome = engine()
        .run_once(&builder, "import time\ntime.sleep(30)", "<sleep>")
        .await
        .unwrap();
    assert_eq!(
        outcome.status,
        Status::Timeout {
            limit: Duration::from_millis(300)
        }
    );
    assert!(outcome.duration < Duration::from_secs(5), "{outcome:?}");
}

#[tokio::test]
async fn output_past_the_cap_is_cut_at_the_cap_and_reported() {
    for (language, code) in [
        (Language::Python, "while True: print('x' * 100)"),
        (
            Language::JavaScript,
            "for (;;) console.log('x'.repeat(100))",
        ),
    ] {
        let mut builder = SessionBuilder::new(language);
        builder.limits(limits(Duration::from_secs(30), 256 << 20, 10_000));
        let outcome = engine().run_once(&builder, code, "<flood>").await.unwrap();
        assert_eq!(
            outcome.status,
            Status::OutputLimit {
                stream: goru_runtimes::Stream::Stdout,
                limit: 10_000
            },
            "{language}"
        );
        assert_eq!(
            outcome.stdout.len(),
            10_000,
            "{language}: exactly the cap is delivered"
        );
    }
}

#[tokio::test]
async fn stdin_bytes_reach_the_guest() {
    let mut builder = SessionBuilder::new(Language::Python);
    builder.stdin(Stdin::Bytes(b"3\n4\n".to_vec()));
    let outcome = engine()
        .run_once(
            &builder,
            "a = int(input()); b = int(input()); print(a * b)",
            "<stdin>",
        )
        .await
        .unwrap();
    assert_eq!(outcome.stdout, b"12\n", "{outcome:?}");

    let mut builder = SessionBuilder::new(Language::JavaScript);
    builder.stdin(Stdin::Bytes(b"3\n4\n".to_vec()));
    let outcome = engine()
        .run_once(
            &builder,
            "const a = +readline(), b = +readline(); console.log(a * b)",
            "<stdin>",
        )
        .await
        .unwrap();
    assert_eq!(outcome.stdout, b"12\n", "{outcome:?}");
}

#[tokio::test]
async fn each_run_of_a_session_can_have_new_stdin_after_the_last_ran_out() {
    for (language, read_all) in [
        (
            Language::Python,
            "import sys; print(repr(sys.stdin.read()))",
        ),
        (
            Language::JavaScript,
            "console.log(JSON.stringify(std.in.readAsString()))",
        ),
    ] {
        let mut session = SessionBuilder::new(language).start(engine()).await.unwrap();
        let read = async |session: &mut goru_runtimes::Session| {
            let outcome = session.run(read_all, "<stdin>").await.unwrap();
            assert_eq!(outcome.status, Status::Ok { value: None }, "{outcome:?}");
            String::from_utf8(outcome.stdout).unwrap()
        };
        let quote = |s: &str| match language {
            Language::Python => format!("'{s}'\n"),
            Language::JavaScript => format!("\"{s}\"\n"),
        };
        assert_eq!(
            read(&mut session).await,
            quote(""),
            "{language}: empty by default"
        );
        session.set_stdin(b"first".to_vec());
        assert_eq!(read(&mut session).await, quote("first"), "{language}");
        assert_eq!(read(&mut session).await, quote(""), "{language}: consumed");
        session.set_stdin(b"second".to_vec());
        assert_eq!(
            read(&mut session).await,
            quote("second"),
            "{language}: after end of input"
        );
    }
}

#[tokio::test]
async fn memory_growth_past_the_limit_is_refused() {
    let mut builder = SessionBuilder::new(Language::Python);
    builder.limits(limits(Duration::from_secs(30), 64 << 20, 1 << 20));
    let outcome = engine()
        .run_once(&builder, "x = bytearray(10**9)", "<mem>")
        .await
        .unwrap();
    assert!(
        matches!(&outcome.status, Status::Exception(e) if e.type_name == "MemoryError"),
        "{outcome:?}"
    );

    let mut builder = SessionBuilder::new(Language::JavaScript);
    builder.limits(limits(Duration::from_secs(30), 64 << 20, 1 << 20));
    let outcome = engine()
        .run_once(
            &builder,
            "const a = []; for (;;) a.push(new Array(1e5).fill(1))",
            "<mem>",
        )
        .await
        .unwrap();
    let out_of_memory = match &outcome.status {
        Status::Exception(e) => e.message.contains("out of memory"),
        Status::MemoryLimit { limit } => *limit == 64 << 20,
        _ => false,
    };
    assert!(out_of_memory, "{outcome:?}");
}

#[tokio::test]
async fn a_memory_limit_too_small_to_start_is_reported_as_such() {
    let mut builder = SessionBuilder::new(Language::Python);
    builder.limits(limits(Duration::from_secs(30), 1 << 20, 1 << 20));
    let outcome = engine()
        .run_once(&builder, "print(1)", "<tiny>")
        .await
        .unwrap();
    assert_eq!(outcome.status, Status::MemoryLimit { limit: 1 << 20 });
}

#[tokio::test]
async fn invalid_limits_are_refused_before_anything_runs() {
    let mut builder = SessionBuilder::new(Language::Python);
    builder.limits(limits(Duration::ZERO, 64 << 20, 1 << 20));
    assert!(matches!(
        engine().run_once(&builder, "print(1)", "<x>").await,
        Err(Error::Limit(_))
    ));
}

#[tokio::test]
async fn deterministic_mode_fixes_start_time_and_randomness() {
    use goru_runtimes::{Capabilities, Deterministic};
    let code =
        "import random, os, time\nprint(random.random(), os.urandom(8).hex(), int(time.time()))";
    let with_seed = |seed| {
        let mut builder = SessionBuilder::new(Language::Python);
        builder.capabilities(Capabilities {
            deterministic: Some(Deterministic {
                seed,
                ..Deterministic::default()
            }),
            ..Capabilities::none()
        });
        builder
    };
    let first = engine().run_once(&with_seed(7), code, "<d>").await.unwrap();
    let second = engine().run_once(&with_seed(7), code, "<d>").await.unwrap();
    let other = engine().run_once(&with_seed(8), code, "<d>").await.unwrap();
    assert_eq!(first.status, Status::Ok { value: None }, "{first:?}");
    assert_eq!(first.stdout, second.stdout, "same seed, same output");
    assert_ne!(first.stdout, other.stdout, "another seed, other numbers");
    let text = String::from_utf8(first.stdout).unwrap();
    let seconds: u64 = text.split_whitespace().last().unwrap().parse().unwrap();
    assert!(
        (946_684_800..946_684_900).contains(&seconds),
        "clock starts at 2000-01-01: {text}"
    );

    let real = once(Language::Python, code).await;
    let again = once(Language::Python, code).await;
    assert_ne!(real.stdout, again.stdout, "without it, randomness is real");
}

/// A session whose output limit is `output` bytes per stream.
async fn session_with_output(language: Language, output: u64) -> goru_runtimes::Session {
    let mut builder = SessionBuilder::new(language);
    builder.limits(limits(Duration::from_secs(30), 256 << 20, output));
    builder.start(engine()).await.unwrap()
}

#[tokio::test]
async fn an_exception_is_clipped_to_the_room_stderr_has_left_and_says_so() {
    for (language, code) in [
        (
            Language::Python,
            "import sys\nsys.stderr.write('e' * 1000)\nraise Exception('A' * 20_000_000)",
        ),
        (
            Language::JavaScript,
            "std.err.puts('e'.repeat(1000)); throw new Error('A'.repeat(20_000_000))",
        ),
    ] {
        let mut session = session_with_output(language, 1024).await;
        let outcome = session.run(code, "<clip>").await.unwrap();
        let Status::Exception(e) = &outcome.status else {
            panic!("{language}: {outcome:?}");
        };
        assert_eq!(outcome.stderr.len(), 1000, "{language}");
        for text in [&e.type_name, &e.message, &e.traceback] {
            assert!(text.len() <= 24, "{language}: {} bytes", text.len());
        }
        assert!(e.message.starts_with('A'), "{language}: {e:?}");
        assert!(outcome.clipped, "{language}");
        assert!(session.is_alive(), "{language}: clipping is not a trap");
    }
}

#[tokio::test]
async fn a_repl_value_is_clipped_at_the_output_limit_and_not_a_byte_before() {
    // Python's repr of 'C' * n is n + 2 bytes; JavaScript's the same.
    for (language, fits, over) in [
        (Language::Python, "'C' * 1022", "'C' * 1023"),
        (Language::JavaScript, "'C'.repeat(1022)", "'C'.repeat(1023)"),
    ] {
        let mut session = session_with_output(language, 1024).await;
        let outcome = session.run_mode(fits, "<repl>", Mode::Repl).await.unwrap();
        let expected = format!("'{}'", "C".repeat(1022));
        assert_eq!(
            outcome.status,
            Status::Ok {
                value: Some(expected.clone())
            },
            "{language}"
        );
        assert!(!outcome.clipped, "{language}");
        let outcome = session.run_mode(over, "<repl>", Mode::Repl).await.unwrap();
        let expected = format!("'{}", "C".repeat(1023));
        assert_eq!(
            outcome.status,
            Status::Ok {
                value: Some(expected)
            },
            "{language}"
        );
        assert!(outcome.clipped, "{language}");
    }
}

#[tokio::test]
async fn os_exit_ends_the_run_with_its_code_and_the_session_with_it() {
    for code in [0, 3, -1] {
        let mut session = SessionBuilder::new(Language::Python)
            .start(engine())
            .await
            .unwrap();
        let outcome = session
            .run(
                &format!("import os\nprint('before')\ntry:\n    os._exit({code})\nfinally:\n    print('finally')"),
                "<exit>",
            )
            .await
            .unwrap();
        assert_eq!(outcome.status, Status::Exit(code));
        assert_eq!(outcome.stdout, b"before\n", "nothing runs after os._exit");
        assert!(!session.is_alive(), "the instance ended with the exit");
        assert!(matches!(
            session.run("1", "<after>").await,
            Err(Error::SessionDead(reason)) if reason.contains(&format!("code {code}"))
        ));
    }
    // The same function by its other name, and a bad argument as CPython's.
    let outcome = once(Language::Python, "import posix\nposix._exit(7)").await;
    assert_eq!(outcome.status, Status::Exit(7));
    let outcome = once(Language::Python, "import os\nos._exit('x')").await;
    assert!(
        matches!(&outcome.status, Status::Exception(e) if e.type_name == "TypeError"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_memory_error_handler_at_the_limit_ends_without_a_guest_panic() {
    let code = "\
import sys
x = []
try:
    while True:
        x.append(bytearray(10**4))
except MemoryError:
    print('x' * 10**7, file=sys.stderr)
";
    let mut builder = SessionBuilder::new(Language::Python);
    builder.limits(limits(Duration::from_secs(30), 64 << 20, 1 << 20));
    let outcome = engine().run_once(&builder, code, "<mem>").await.unwrap();
    let stderr = String::from_utf8_lossy(&outcome.stderr);
    for noise in ["panicked", "lost sys.stderr", "object address", "Traceback"] {
        assert!(!stderr.contains(noise), "{noise:?} in stderr: {stderr}");
    }
    let out_of_memory = match &outcome.status {
        Status::Exception(e) => e.type_name == "MemoryError",
        Status::MemoryLimit { .. } => true,
        _ => false,
    };
    assert!(out_of_memory, "{outcome:?}");
}

#[tokio::test]
async fn a_javascript_exception_message_keeps_its_nul_bytes() {
    let outcome = once(Language::JavaScript, r#"throw new Error("a\x00b")"#).await;
    let Status::Exception(e) = &outcome.status else {
        panic!("{outcome:?}");
    };
    assert_eq!(e.message, "a\0b");
    assert!(
        e.traceback.starts_with("Error: a\0b\n"),
        "{:?}",
        e.traceback
    );
}
