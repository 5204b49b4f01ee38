//! The pooling allocator and the warm pool: a session from the warm pool
//! behaves exactly as one started cold; configurations that cannot be
//! pooled start cold with their capabilities; the pool refills; the
//! allocator refuses past its size with a typed error.

use goru_runtimes::{
    Capabilities, Deterministic, Engine, EngineBuilder, Error, HostFunctions, KvLimits, Language,
    Limits, Mode, Mount, MountMode, Outcome, Session, SessionBuilder, StartError, Status, Stdin,
};
use serde_json::json;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long a test waits for the refill thread before calling it stuck (a
/// guard against hanging, not a measure of speed).
const REFILL_DEADLINE: Duration = Duration::from_secs(120);

/// An engine without a warm pool, for the cold side of comparisons.
fn cold_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new().expect("engine"))
}

/// An engine keeping `size` instances of each language ready, with `functions`
/// for every session; returns once the pool is full.
fn warm_engine_with(size: usize, functions: HostFunctions) -> Engine {
    let mut builder = EngineBuilder::new();
    builder.host_functions(functions);
    for language in Language::ALL {
        builder.warm_pool(language, size);
    }
    let engine = builder.build().expect("engine");
    for language in Language::ALL {
        wait_until_full(&engine, language);
    }
    engine
}

fn warm_engine(size: usize) -> Engine {
    warm_engine_with(size, HostFunctions::new())
}

fn wait_until_full(engine: &Engine, language: Language) {
    let started = Instant::now();
    while engine.warm_ready(language) < engine.warm_target(language) {
        assert!(
            started.elapsed() < REFILL_DEADLINE,
            "the {language} warm pool did not fill"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts a session that must come from the warm pool.
async fn start_warm(engine: &Engine, builder: &SessionBuilder) -> Session {
    let session = builder.start(engine).await.expect("start");
    assert!(session.from_warm_pool(), "expected a warm-pool instance");
    session
}

/// Starts a session that must be instantiated cold.
async fn start_cold(engine: &Engine, builder: &SessionBuilder) -> Session {
    let session = builder.start(engine).await.expect("start");
    assert!(!session.from_warm_pool(), "expected a cold start");
    session
}

fn stdout(outcome: &Outcome) -> String {
    String::from_utf8_lossy(&outcome.stdout).into_owned()
}

/// What a run shows of itself, without its duration.
fn shown(outcome: Outcome) -> (Status, String, String) {
    let stderr = String::from_utf8_lossy(&outcome.stderr).into_owned();
    (outcome.status.clone(), stdout(&outcome), stderr)
}

async fn runs(session: &mut Session, codes: &[&str]) -> Vec<(Status, String, String)> {
    let mut shown_runs = Vec::new();
    for code in codes {
        let mode = if code.starts_with("repl:") {
            Mode::Repl
        } else {
            Mode::Exec
        };
        let code = code.trim_start_matches("repl:");
        let outcome = session.run_mode(code, "<test>", mode).await.expect("run");
        shown_runs.push(shown(outcome));
    }
    shown_runs
}

const PYTHON_SCRIPT: &[&str] = &[
    "print(sorted(k for k in globals() if not k.startswith('__')), '_' in dir(__builtins__))",
    "import sys, os\nprint(sys.argv, sorted(os.environ), file=sys.stderr)",
    "x = 41",
    "x += 1\nprint(x)",
    "repl:x * 2",
    "repl:_",
    "def f():\n    return 1 / 0\nf()",
    "import linecache\nprint(sorted(linecache.cache))",
    "print(input())",
];

const JS_SCRIPT: &[&str] = &[
    "console.log(Object.keys(globalThis).sort().join(','))",
    "console.error(JSON.stringify(scriptArgs))",
    "var x = 41",
    "x += 1; console.log(x)",
    "repl:x * 2",
    "function f() { return null.g; }\nf()",
    "console.log(JSON.stringify(std.in.readAsString()))",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_session_behaves_exactly_like_a_cold_one() {
    let engine = warm_engine(1);
    for (language, script) in [
        (Language::Python, PYTHON_SCRIPT),
        (Language::JavaScript, JS_SCRIPT),
    ] {
        let mut builder = SessionBuilder::new(language);
        builder.stdin(Stdin::Bytes(b"typed in\n".to_vec()));
        assert!(builder.can_use_warm_pool());
        let mut pooled = start_warm(&engine, &builder).await;
        let mut cold = start_cold(cold_engine(), &builder).await;
        let pooled_runs = runs(&mut pooled, script).await;
        let cold_runs = runs(&mut cold, script).await;
        assert_eq!(pooled_runs, cold_runs, "{language}");
        // The script itself went as expected, so equal means right.
        for expected in ["42", "typed in"] {
            assert!(
                pooled_runs.iter().any(|(_, out, _)| out.contains(expected)),
                "{expected}: {pooled_runs:?}"
            );
        }
        assert!(
            pooled_runs
                .iter()
                .any(|(status, _, _)| matches!(status, Status::Exception(_))),
            "{pooled_runs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_state_in_a_pooled_session_starts_clean() {
    let engine = warm_engine(1);
    let builder = SessionBuilder::new(Language::Python);
    let mut session = start_warm(&engine, &builder).await;
    let mut cold = start_cold(cold_engine(), &builder).await;
    let code = "import sys, linecache\n\
                print(sys.argv, [k for k in globals() if not k.startswith('__')], hasattr(__builtins__, '_'))\n\
                print(len(linecache._interactive_cache), sorted(linecache.cache))";
    let outcome = session.run(code, "<test>").await.unwrap();
    let first_line = stdout(&outcome).lines().next().map(str::to_string);
    assert_eq!(
        first_line.as_deref(),
        Some("['-c'] ['sys', 'linecache'] False")
    );
    assert_eq!(
        shown(outcome),
        shown(cold.run(code, "<test>").await.unwrap())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_in_pooled_sessions_as_in_cold_ones() {
    let engine = warm_engine(4);
    let cases: [(Language, Limits, &str); 4] = [
        (
            Language::Python,
            Limits {
                timeout: Duration::from_millis(300),
                ..Limits::default()
            },
            "while True: pass",
        ),
        (
            Language::JavaScript,
            Limits {
                timeout: Duration::from_millis(300),
                ..Limits::default()
            },
            "for (;;) {}",
        ),
        (
            Language::Python,
            Limits {
                max_output_bytes: 10,
                ..Limits::default()
            },
            "print('x' * 100)",
        ),
        (
            Language::JavaScript,
            Limits {
                max_output_bytes: 10,
                ..Limits::default()
            },
            "console.log('x'.repeat(100))",
        ),
    ];
    for (language, limits, code) in cases {
        let mut builder = SessionBuilder::new(language);
        builder.limits(limits.clone());
        let mut pooled = start_warm(&engine, &builder).await;
        let mut cold = start_cold(cold_engine(), &builder).await;
        let pooled_outcome = pooled.run(code, "<test>").await.unwrap();
        let cold_outcome = cold.run(code, "<test>").await.unwrap();
        assert_eq!(pooled_outcome.status, cold_outcome.status, "{code}");
        assert!(
            matches!(
                pooled_outcome.status,
                Status::Timeout { .. } | Status::OutputLimit { .. }
            ),
            "{code}: {:?}",
            pooled_outcome.status
        );
        assert!(!pooled.is_alive(), "a trapped pooled session is dead");
        wait_until_full(&engine, language);
    }
}

/// The memory an instance grew to during `init`, before it was taken from
/// the pool, counts against the session's limit: an allocation that fits
/// the limit only if that memory were forgotten fails as it does cold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_limit_counts_what_a_pooled_instance_already_holds() {
    let engine = warm_engine(2);
    // Python starts at about 30 MiB, JavaScript at about 5 MiB.
    for (language, limit, too_much, fine) in [
        (
            Language::Python,
            64 << 20,
            "b = bytearray(48 << 20)\nprint(len(b))",
            "b = bytearray(8 << 20)\nprint(len(b))",
        ),
        (
            Language::JavaScript,
            12 << 20,
            "const b = new Uint8Array(9 << 20); console.log(b.length)",
            "const b = new Uint8Array(1 << 20); console.log(b.length)",
        ),
    ] {
        let mut builder = SessionBuilder::new(language);
        builder.limits(Limits {
            memory_bytes: limit,
            ..Limits::default()
        });
        for code in [too_much, fine] {
            let mut pooled = start_warm(&engine, &builder).await;
            let mut cold = start_cold(cold_engine(), &builder).await;
            let pooled_outcome = shown(pooled.run(code, "<test>").await.unwrap());
            let cold_outcome = shown(cold.run(code, "<test>").await.unwrap());
            assert_eq!(pooled_outcome, cold_outcome, "{language}: {code}");
            let ok = matches!(pooled_outcome.0, Status::Ok { .. });
            assert_eq!(ok, code == fine, "{language}: {code}: {pooled_outcome:?}");
            wait_until_full(&engine, language);
        }
    }
}

/// A limit below what a pooled instance already holds cannot take one: the
/// start fails as it does cold, and the pool keeps its instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_below_a_pooled_instance_fails_as_cold_and_leaves_the_pool() {
    let engine = warm_engine(1);
    let mut builder = SessionBuilder::new(Language::Python);
    builder.limits(Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    });
    let pooled = builder.start(&engine).await;
    let cold = builder.start(cold_engine()).await;
    for result in [pooled, cold] {
        assert!(
            matches!(result, Err(StartError::Limit(Status::MemoryLimit { .. }))),
            "{:?}",
            result.err()
        );
    }
    assert_eq!(engine.warm_ready(Language::Python), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_functions_and_kv_reach_pooled_sessions() {
    let mut engine_functions = HostFunctions::new();
    engine_functions
        .register("engine_add", |args| {
            Ok(json!(args["a"].as_i64().unwrap_or(0) + 1))
        })
        .unwrap();
    let engine = warm_engine_with(2, engine_functions);
    let mut session_functions = HostFunctions::new();
    session_functions
        .register("session_double", |args| {
            Ok(json!(args["a"].as_i64().unwrap_or(0) * 2))
        })
        .unwrap();
    let mut builder = SessionBuilder::new(Language::Python);
    builder
        .host_functions(session_functions)
        .capabilities(Capabilities {
            kv: Some(KvLimits::default()),
            ..Capabilities::none()
        });
    let mut a = start_warm(&engine, &builder).await;
    let mut b = start_warm(&engine, &builder).await;
    let outcome = a
        .run(
            "print(call('engine_add', a=1), call('session_double', a=21))\n\
             kv.set('k', 'a')\nprint(kv.get('k'))",
            "<test>",
        )
        .await
        .unwrap();
    assert_eq!(stdout(&outcome), "2 42\na\n", "{outcome:?}");
    let outcome = b.run("print(kv.get('k', 'none'))", "<test>").await.unwrap();
    assert_eq!(stdout(&outcome), "none\n", "kv stores are per session");

    // Without the capability, a pooled session has no kv.
    wait_until_full(&engine, Language::Python);
    let mut plain = start_warm(&engine, &SessionBuilder::new(Language::Python)).await;
    let outcome = plain
        .run(
            "try:\n    kv.set('k', 1)\nexcept PermissionError:\n    print('refused')",
            "<test>",
        )
        .await
        .unwrap();
    assert_eq!(stdout(&outcome), "refused\n", "{outcome:?}");

    let mut builder = SessionBuilder::new(Language::JavaScript);
    builder.capabilities(Capabilities {
        kv: Some(KvLimits::default()),
        ..Capabilities::none()
    });
    let mut js = start_warm(&engine, &builder).await;
    let outcome = js
        .run(
            "console.log(call('engine_add', {a: 41})); kv.set('k', 'v'); console.log(kv.get('k'))",
            "<test>",
        )
        .await
        .unwrap();
    assert_eq!(stdout(&outcome), "42\nv\n", "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pooled_sessions_share_nothing() {
    let engine = warm_engine(2);
    for (language, set, get, random) in [
        (
            Language::Python,
            "secret = 'a'\nimport sys\nsys.modules['shared'] = 1",
            "import sys\nprint('secret' in globals(), 'shared' in sys.modules)",
            "import os\nprint(os.urandom(16).hex())",
        ),
        (
            Language::JavaScript,
            "var secret = 'a'; globalThis.shared = 1",
            "console.log(typeof secret, typeof shared)",
            "console.log(Math.random())",
        ),
    ] {
        let builder = SessionBuilder::new(language);
        let mut a = start_warm(&engine, &builder).await;
        let mut b = start_warm(&engine, &builder).await;
        a.run(set, "<test>").await.unwrap();
        let outcome = b.run(get, "<test>").await.unwrap();
        let expected = match language {
            Language::Python => "False False\n",
            Language::JavaScript => "undefined undefined\n",
        };
        assert_eq!(stdout(&outcome), expected, "{language}");
        let first = stdout(&a.run(random, "<test>").await.unwrap());
        let second = stdout(&b.run(random, "<test>").await.unwrap());
        assert!(!first.is_empty());
        assert_ne!(
            first, second,
            "{language}: each instance has its own randomness"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_refills_after_checkouts() {
    let engine = warm_engine(2);
    for language in Language::ALL {
        let builder = SessionBuilder::new(language);
        let first = start_warm(&engine, &builder).await;
        let second = start_warm(&engine, &builder).await;
        // Refilled while both sessions are still alive: instances are never
        // returned to the pool, only new ones made.
        wait_until_full(&engine, language);
        assert_eq!(engine.warm_ready(language), 2);
        let third = start_warm(&engine, &builder).await;
        drop((first, second, third));
        wait_until_full(&engine, language);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configurations_that_cannot_be_pooled_start_cold_with_their_capabilities() {
    let engine = warm_engine(1);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "from the host").unwrap();

    let mut mounted = SessionBuilder::new(Language::Python);
    mounted.capabilities(Capabilities {
        mounts: vec![Mount::new("/data", dir.path(), MountMode::Ro)],
        ..Capabilities::none()
    });
    let mut deterministic = SessionBuilder::new(Language::JavaScript);
    deterministic.capabilities(Capabilities {
        deterministic: Some(Deterministic::default()),
        ..Capabilities::none()
    });
    let mut with_argv = SessionBuilder::new(Language::Python);
    with_argv.argv(vec!["script.py".into(), "--flag".into()]);
    let mut inheriting = SessionBuilder::new(Language::Python);
    inheriting.stdin(Stdin::Inherit);
    for builder in [&mounted, &deterministic, &with_argv, &inheriting] {
        assert!(!builder.can_use_warm_pool());
    }

    let mut session = start_cold(&engine, &mounted).await;
    let outcome = session
        .run("print(open('/data/in.txt').read())", "<test>")
        .await
        .unwrap();
    assert_eq!(stdout(&outcome), "from the host\n", "{outcome:?}");

    let mut one = start_cold(&engine, &deterministic).await;
    let mut two = start_cold(&engine, &deterministic).await;
    let code = "console.log(Math.random(), new Date().getFullYear())";
    let (one, two) = (
        stdout(&one.run(code, "<test>").await.unwrap()),
        stdout(&two.run(code, "<test>").await.unwrap()),
    );
    assert_eq!(one, two, "the same seed, the same numbers");
    assert!(one.ends_with(" 2000\n"), "{one}");

    let mut session = start_cold(&engine, &with_argv).await;
    let outcome = session
        .run("import sys\nprint(sys.argv)", "<test>")
        .await
        .unwrap();
    assert_eq!(stdout(&outcome), "['script.py', '--flag']\n");

    // None of them took a pooled instance.
    for language in Language::ALL {
        assert_eq!(engine.warm_ready(language), 1, "{language}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_pool_of_size_zero_starts_every_session_cold() {
    let mut builder = EngineBuilder::new();
    builder.warm_pool(Language::Python, 0);
    let engine = builder.build().unwrap();
    assert_eq!(engine.warm_target(Language::Python), 0);
    let mut session = start_cold(&engine, &SessionBuilder::new(Language::Python)).await;
    let outcome = session.run("print(1 + 1)", "<test>").await.unwrap();
    assert_eq!(stdout(&outcome), "2\n");
    assert_eq!(engine.warm_ready(Language::Python), 0);
}

/// Two instances fill an engine sized for two: a third is refused with a
/// typed error, and room comes back when a session ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_instance_pool_fails_with_a_typed_error() {
    let mut builder = EngineBuilder::new();
    builder.max_instances(2);
    let engine = builder.build().unwrap();
    assert!(
        engine.uses_pooling(),
        "the pooling allocator is available here"
    );
    // One of each guest fits a pool sized for one instance at a time: the
    // per-guest counts of core instances, memories and tables are right.
    for language in Language::ALL {
        let python = start_cold(&engine, &SessionBuilder::new(Language::Python)).await;
        let other = start_cold(&engine, &SessionBuilder::new(language)).await;
        let refused = SessionBuilder::new(language).start(&engine).await;
        assert!(
            matches!(
                refused,
                Err(StartError::Engine(Error::PoolExhausted { language: l, .. })) if l == language
            ),
            "{:?}",
            refused.err()
        );
        let one_shot = engine
            .run_once(&SessionBuilder::new(language), "print(1)", "<test>")
            .await;
        assert!(
            matches!(one_shot, Err(Error::PoolExhausted { .. })),
            "{one_shot:?}"
        );
        drop(python);
        let mut again = start_cold(&engine, &SessionBuilder::new(language)).await;
        let code = match language {
            Language::Python => "print(1 + 1)",
            Language::JavaScript => "console.log(1 + 1)",
        };
        assert_eq!(stdout(&again.run(code, "<test>").await.unwrap()), "2\n");
        drop((other, again));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engines_without_pooling_still_start_sessions() {
    let mut builder = EngineBuilder::new();
    builder.pooling(false).warm_pool(Language::JavaScript, 1);
    let engine = builder.build().unwrap();
    assert!(!engine.uses_pooling());
    wait_until_full(&engine, Language::JavaScript);
    let mut session = start_warm(&engine, &SessionBuilder::new(Language::JavaScript)).await;
    let outcome = session.run("console.log(1 + 1)", "<test>").await.unwrap();
    assert_eq!(stdout(&outcome), "2\n");
}

/// Dropping the engine stops the refill thread and frees everything the
/// engine held, ready instances included: nothing keeps it alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_engine_releases_it_and_its_pool() {
    let marker = Arc::new(());
    let held = marker.clone();
    let mut functions = HostFunctions::new();
    functions
        .register("marker", move |_| {
            let _ = &held;
            Ok(json!(null))
        })
        .unwrap();
    let engine = warm_engine_with(2, functions);
    // A checkout sets the refill thread to work.
    let session = start_warm(&engine, &SessionBuilder::new(Language::Python)).await;
    drop(session);
    drop(engine);
    let started = Instant::now();
    while Arc::strong_count(&marker) > 1 {
        assert!(
            started.elapsed() < REFILL_DEADLINE,
            "the engine was never freed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
