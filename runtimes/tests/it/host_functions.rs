//! Host functions seen from guest code, and the built-in `kv` module.

use crate::outcomes;

use goru_runtimes::{
    Capabilities, Engine, HostFunctions, KvLimits, Language, Limits, SessionBuilder, Status,
};
use outcomes::exception;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts calls in flight and the most seen at once.
#[derive(Default)]
struct Concurrency {
    now: AtomicUsize,
    max: AtomicUsize,
}

fn engine_with(functions: HostFunctions) -> Engine {
    let mut builder = Engine::builder();
    builder.host_functions(functions);
    builder.build().expect("engine")
}

fn test_functions(concurrency: Arc<Concurrency>) -> HostFunctions {
    let mut functions = HostFunctions::new();
    functions
        .register("add", |args| {
            let a = args["a"].as_f64().ok_or("`a` must be a number")?;
            let b = args["b"].as_f64().ok_or("`b` must be a number")?;
            Ok(json!(a + b))
        })
        .unwrap()
        .register("fail", |_| Err("the host says no".to_string()))
        .unwrap()
        .register("explode", |_| panic!("host bug"))
        .unwrap()
        .register("hang", |_| {
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        })
        .unwrap()
        .register_async("slow", move |args| {
            let concurrency = concurrency.clone();
            async move {
                let now = concurrency.now.fetch_add(1, Ordering::SeqCst) + 1;
                concurrency.max.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                concurrency.now.fetch_sub(1, Ordering::SeqCst);
                Ok(args["id"].clone())
            }
        })
        .unwrap()
        .register_async("never", |_| std::future::pending::<Result<Value, String>>())
        .unwrap();
    functions
}

async fn run(engine: &Engine, builder: &SessionBuilder, code: &str) -> goru_runtimes::Outcome {
    engine.run_once(builder, code, "<test>").await.expect("run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_calls_host_functions_and_sees_their_errors() {
    let engine = engine_with(test_functions(Arc::default()));
    let builder = SessionBuilder::new(Language::Python);
    let outcome = run(&engine, &builder, "print(call('add', a=2, b=3.5))").await;
    assert_eq!(outcome.stdout, b"5.5\n", "{outcome:?}");

    let outcome = run(&engine, &builder, "call('fail')").await;
    assert_eq!(exception(&outcome), ("RuntimeError", "the host says no"));

    let outcome = run(&engine, &builder, "call('add', a='x', b=1)").await;
    assert_eq!(
        exception(&outcome),
        ("RuntimeError", "`a` must be a number")
    );

    let outcome = run(&engine, &builder, "call('nope')").await;
    let (kind, message) = exception(&outcome);
    assert_eq!(kind, "RuntimeError");
    assert!(
        message.contains("no host function named `nope`") && message.contains("add"),
        "{message}"
    );

    let outcome = run(&engine, &builder, "call('explode')").await;
    assert_eq!(
        exception(&outcome),
        (
            "RuntimeError",
            "host function `explode` failed (it panicked)"
        )
    );

    let outcome = run(&engine, &builder, "call('add', a=object(), b=1)").await;
    let (kind, message) = exception(&outcome);
    assert_eq!(kind, "TypeError");
    assert!(message.contains("not JSON-serializable"), "{message}");

    let outcome = run(&engine, &builder, "call('goru:kv.get', key='a')").await;
    assert_eq!(exception(&outcome).0, "ValueError");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_gathered_async_calls_are_one_concurrent_batch() {
    let concurrency = Arc::new(Concurrency::default());
    let engine = engine_with(test_functions(concurrency.clone()));
    let builder = SessionBuilder::new(Language::Python);
    let code = "import asyncio, time\n\
                async def main():\n    \
                    return await asyncio.gather(*(async_call('slow', id=i) for i in range(3)))\n\
                start = time.monotonic()\n\
                print(asyncio.run(main()))\n\
                print(time.monotonic() - start < 0.5)";
    let started = Instant::now();
    let outcome = run(&engine, &builder, code).await;
    let elapsed = started.elapsed();
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout),
        "[0, 1, 2]\nTrue\n",
        "{outcome:?}"
    );
    assert!(
        elapsed < Duration::from_millis(500),
        "three 200 ms calls took {elapsed:?}"
    );
    assert_eq!(
        concurrency.max.load(Ordering::SeqCst),
        3,
        "all three ran at once: one batch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_batches_and_payloads_get_clear_errors() {
    let engine = engine_with(test_functions(Arc::default()));
    let builder = SessionBuilder::new(Language::Python);
    let code = "import asyncio\n\
                async def main():\n    \
                    return await asyncio.gather(*(async_call('add', a=1, b=1) for i in range(10_000)))\n\
                asyncio.run(main())";
    let outcome = run(&engine, &builder, code).await;
    let (kind, message) = exception(&outcome);
    assert_eq!(kind, "RuntimeError");
    assert!(
        message.contains("a batch of 10000 host calls is more than the limit of 1000"),
        "{message}"
    );

    let outcome = run(&engine, &builder, "call('add', a='x' * (2 << 20), b=1)").await;
    let (_, message) = exception(&outcome);
    assert!(
        message.contains("more than the limit of 1048576"),
        "{message}"
    );

    let mut limited = SessionBuilder::new(Language::Python);
    limited.limits(Limits {
        max_host_calls: 5,
        ..Limits::default()
    });
    let outcome = run(
        &engine,
        &limited,
        "for i in range(6): call('add', a=i, b=1)",
    )
    .await;
    let (_, message) = exception(&outcome);
    assert!(message.contains("limit of 5 host calls"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_function_that_never_returns_is_bounded_by_the_timeout() {
    let engine = engine_with(test_functions(Arc::default()));
    let mut builder = SessionBuilder::new(Language::Python);
    builder.limits(Limits {
        timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    engine.prepare(Language::Python).unwrap();
    let started = Instant::now();
    let outcome = run(&engine, &builder, "call('never')").await;
    assert_eq!(
        outcome.status,
        Status::Timeout {
            limit: Duration::from_millis(300)
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_kv_works_only_when_enabled() {
    let engine = Engine::new().unwrap();
    let builder = SessionBuilder::new(Language::Python);
    let outcome = run(&engine, &builder, "kv.set('a', 1)").await;
    let (kind, message) = exception(&outcome);
    assert_eq!(kind, "PermissionError");
    assert!(message.contains("`--kv`"), "{message}");

    let mut builder = SessionBuilder::new(Language::Python);
    builder.capabilities(Capabilities {
        kv: Some(KvLimits {
            max_entries: 3,
            ..KvLimits::default()
        }),
        ..Capabilities::none()
    });
    let code = "kv.set('a', {'x': [1, 2]})\n\
                print(kv.get('a'), kv.get('missing', 'dflt'), kv.keys())\n\
                print(kv.delete('a'), kv.delete('a'))";
    let outcome = run(&engine, &builder, code).await;
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout),
        "{'x': [1, 2]} dflt ['a']\nTrue False\n",
        "{outcome:?}"
    );

    // Concurrent async sets: exactly the limit gets in.
    let code = "import asyncio\n\
                async def main():\n    \
                    return await asyncio.gather(*(kv.async_set(f'k{i}', i) for i in range(10)), return_exceptions=True)\n\
                results = asyncio.run(main())\n\
                print(sum(r is None for r in results), len(kv.keys()))\n\
                print(type(results[-1]).__name__, results[-1])";
    let outcome = run(&engine, &builder, code).await;
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout),
        "3 3\nValueError kv is full: it holds the limit of 3 entries\n",
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_do_not_share_kv_stores() {
    let engine = Engine::new().unwrap();
    let mut builder = SessionBuilder::new(Language::Python);
    builder.capabilities(Capabilities {
        kv: Some(KvLimits::default()),
        ..Capabilities::none()
    });
    let (mut a, mut b) = (
        builder.start(&engine).await.unwrap(),
        builder.start(&engine).await.unwrap(),
    );
    a.run("kv.set('owner', 'a')", "<a>").await.unwrap();
    b.run("kv.set('owner', 'b')", "<b>").await.unwrap();
    let seen_a = a
        .run("print(kv.get('owner'), kv.keys())", "<a>")
        .await
        .unwrap();
    let seen_b = b
        .run("print(kv.get('owner'), kv.keys())", "<b>")
        .await
        .unwrap();
    assert_eq!(seen_a.stdout, b"a ['owner']\n");
    assert_eq!(seen_b.stdout, b"b ['owner']\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_calls_host_functions_and_batches_promise_all() {
    let concurrency = Arc::new(Concurrency::default());
    let engine = engine_with(test_functions(concurrency.clone()));
    let builder = SessionBuilder::new(Language::JavaScript);
    let outcome = run(
        &engine,
        &builder,
        "console.log(call('add', {a: 2, b: 3.5}))",
    )
    .await;
    assert_eq!(outcome.stdout, b"5.5\n", "{outcome:?}");

    let outcome = run(&engine, &builder, "call('fail')").await;
    assert_eq!(exception(&outcome), ("Error", "the host says no"));

    let outcome = run(&engine, &builder, "call('add', {a: 1n})").await;
    assert_eq!(exception(&outcome).0, "TypeError");

    let code = "const start = Date.now();\n\
                const ids = await Promise.all([0, 1, 2].map((id) => asyncCall('slow', {id})));\n\
                console.log(JSON.stringify(ids), Date.now() - start < 500);";
    let started = Instant::now();
    let outcome = run(&engine, &builder, code).await;
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout),
        "[0,1,2] true\n",
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        concurrency.max.load(Ordering::SeqCst),
        3,
        "all three ran at once: one batch"
    );
}
