//! Starting sandboxes: the pooling allocator and the warm pool inside the
//! engine, and one-shot runs per second through goru-daemon.

use super::daemon::{Daemon, client_runtime, connect, wait_until_listening};
use crate::measure::{ms, percentiles};
use crate::options::Options;
use goru_client::protocol::types::RunParams;
use goru_runtimes::{Engine, EngineBuilder, Language, SessionBuilder};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Warm-pool size per language in the rows that use one (the daemon's default).
const WARM_POOL: usize = 4;
/// Client connections driving the daemon at once.
const CONNECTIONS: usize = 4;
/// How long the daemon is driven, after a warm-up of a quarter of it.
const DRIVE_FOR: Duration = Duration::from_secs(4);

pub(crate) fn report(options: &Options) -> String {
    let runs = options.runs.max(100);
    let mut rows = Vec::new();
    for (label, pooling, warm) in [
        ("on demand", false, false),
        ("pooling", true, false),
        ("pooling + warm pool", true, true),
    ] {
        let mut builder = EngineBuilder::new();
        builder.pooling(pooling);
        if warm {
            for language in Language::ALL {
                builder.warm_pool(language, WARM_POOL);
            }
        }
        let engine = builder.build().expect("engine");
        assert_eq!(engine.uses_pooling(), pooling, "the pooling allocator");
        for (language, code) in [
            (Language::Python, "print(1+1)"),
            (Language::JavaScript, "console.log(1+1)"),
        ] {
            let (first, drop) = fresh_sandboxes(&engine, language, code, runs, warm);
            let (p50, p99) = first;
            rows.push(format!(
                "| {language} | {label} | {} | {} | {} |",
                ms(p50),
                ms(p99),
                ms(drop)
            ));
        }
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut daemon_rows = Vec::new();
    for (warm_pool, one_core) in [(0, false), (WARM_POOL, false), (WARM_POOL, true)] {
        let Some(run) = one_shot_throughput(&options.daemon, warm_pool, one_core) else {
            continue;
        };
        let on = if one_core {
            "1 (`taskset -c 0`)".to_string()
        } else {
            format!("all {cores}")
        };
        daemon_rows.push(format!(
            "| {warm_pool} | {on} | {:.0} | {} | {:.0} | {} | {} |",
            run.per_second,
            ms(run.cpu_per_run),
            run.shootdowns_per_run,
            ms(run.p50),
            ms(run.p99)
        ));
    }
    format!(
        "### Starting a sandbox\n\n\
         Engine warm, {runs} runs each: the time from asking for a fresh, isolated sandbox \
         (`SessionBuilder::start`) to the first result of `print(1+1)` / `console.log(1+1)` \
         (output captured and checked); dropping the sandbox is timed apart. \"On demand\": \
         wasmtime maps each instance's memory, tables and stack afresh; \"pooling\": the pooling \
         allocator's slots keep the guest's memory image mapped copy-on-write, and keep the pages \
         an instance wrote (reset from the image) for the next; \"warm pool\": {WARM_POOL} \
         instances per language created and initialised ahead of time by the engine's \
         background thread (the one that fills the pool also asked whether an empty entry is \
         complete, which runs nothing but faults in the parser's pages), which is let catch up \
         between samples: every sample takes a ready instance, and the refill of the one it \
         took runs beside it (after the refill thread's 1 ms pause).\n\n\
         | language | instances | to first result p50 | p99 | dropping it p50 |\n\
         |---|---|---|---|---|\n{}\n\n\
         ### One-shot runs through the daemon\n\n\
         `goru-daemon --socket`, {CONNECTIONS} client connections (one thread each, one request \
         at a time) sending `run` of `print(1+1)` (Python, a fresh sandbox each) for {} s after \
         a {} s warm-up; completed runs per second, and each run's round trip. Client and \
         daemon share the machine's cores (with whatever else runs on it); the daemon's own CPU \
         time per run is its user and system time (all threads, `/proc/PID/stat`) over the runs, \
         and TLB shootdowns are the machine's (`/proc/interrupts`) over the runs: the \
         interrupts one core sends another when an address space both run in changes (here, \
         sandboxes' copy-on-write faults and memory resets).\n\n\
         | `--warm-pool` | daemon's cores | runs per second | daemon CPU per run | TLB shootdowns per run | round trip p50 | p99 |\n\
         |---|---|---|---|---|---|---|\n{}\n",
        rows.join("\n"),
        DRIVE_FOR.as_secs(),
        DRIVE_FOR.as_secs_f64() / 4.0,
        daemon_rows.join("\n")
    )
}

/// p50 and p99 from `start` to the checked first result, and the p50 of
/// dropping the session.
fn fresh_sandboxes(
    engine: &Engine,
    language: Language,
    code: &str,
    runs: usize,
    warm: bool,
) -> ((Duration, Duration), Duration) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    engine.prepare(language).expect("guest loads");
    let builder = SessionBuilder::new(language);
    let mut first = Vec::with_capacity(runs);
    let mut drops = Vec::with_capacity(runs);
    // Ten unmeasured runs first: page cache, allocator slots, branch caches.
    for i in 0..runs + 10 {
        if warm {
            wait_for_refill(engine, language);
        }
        let started = Instant::now();
        let mut session = runtime.block_on(builder.start(engine)).expect("start");
        let outcome = runtime.block_on(session.run(code, "<bench>")).expect("run");
        let elapsed = started.elapsed();
        assert_eq!(outcome.stdout, b"2\n");
        assert_eq!(session.from_warm_pool(), warm, "warm pool use");
        let dropping = Instant::now();
        drop(session);
        if i >= 10 {
            first.push(elapsed);
            drops.push(dropping.elapsed());
        }
    }
    (percentiles(&mut first), percentiles(&mut drops).0)
}

fn wait_for_refill(engine: &Engine, language: Language) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while engine.warm_ready(language) < engine.warm_target(language) {
        assert!(
            Instant::now() < deadline,
            "the warm pool did not refill in 60 s"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Completed one-shot runs per second, the daemon's CPU time per run, and
/// the p50 and p99 round trip; `None` when `one_core` was asked for and
/// `taskset` is missing.
fn one_shot_throughput(daemon: &str, warm_pool: usize, one_core: bool) -> Option<Throughput> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("goru.sock");
    let mut command = if one_core {
        let mut taskset = Command::new("taskset");
        taskset.args(["-c", "0", daemon]);
        taskset
    } else {
        Command::new(daemon)
    };
    if one_core && Command::new("taskset").arg("-V").output().is_err() {
        return None;
    }
    let daemon = Daemon(
        command
            .arg("--socket")
            .arg(&path)
            .arg("--warm-pool")
            .arg(warm_pool.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {daemon}: {e}")),
    );
    wait_until_listening(&path);
    // Let the warm pools fill before the clock starts.
    std::thread::sleep(Duration::from_millis(500));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let path = path.clone();
            let (measuring, stop) = (measuring.clone(), stop.clone());
            std::thread::spawn(move || {
                client_runtime().block_on(async {
                    let client = connect(&path, &format!("bench-pool-{i}")).await;
                    let mut samples = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        let started = Instant::now();
                        let result = client
                            .run(RunParams::new(Language::Python, "print(1+1)"))
                            .await
                            .unwrap_or_else(|e| panic!("run failed: {e}"));
                        let elapsed = started.elapsed();
                        assert_eq!(result.stdout, "2\n", "{result:?}");
                        if measuring.load(Ordering::SeqCst) {
                            samples.push(elapsed);
                        }
                    }
                    samples
                })
            })
        })
        .collect();
    std::thread::sleep(DRIVE_FOR / 4);
    measuring.store(true, Ordering::SeqCst);
    let cpu_before = cpu_seconds(daemon.0.id());
    let shootdowns_before = tlb_shootdowns();
    let started = Instant::now();
    std::thread::sleep(DRIVE_FOR);
    measuring.store(false, Ordering::SeqCst);
    let elapsed = started.elapsed();
    let cpu = cpu_seconds(daemon.0.id()) - cpu_before;
    let shootdowns = tlb_shootdowns().saturating_sub(shootdowns_before);
    stop.store(true, Ordering::SeqCst);
    let mut samples: Vec<Duration> = clients
        .into_iter()
        .flat_map(|client| client.join().expect("client thread"))
        .collect();
    let runs = samples.len().max(1) as f64;
    let per_second = samples.len() as f64 / elapsed.as_secs_f64();
    let cpu_per_run = Duration::from_secs_f64(cpu / runs);
    let (p50, p99) = percentiles(&mut samples);
    Some(Throughput {
        per_second,
        cpu_per_run,
        shootdowns_per_run: shootdowns as f64 / runs,
        p50,
        p99,
    })
}

/// TLB shootdown interrupts received so far, summed over CPUs (0 where
/// `/proc/interrupts` does not list them).
fn tlb_shootdowns() -> u64 {
    let interrupts = std::fs::read_to_string("/proc/interrupts").unwrap_or_default();
    interrupts
        .lines()
        .find(|line| line.trim_start().starts_with("TLB:"))
        .map(|line| {
            line.split_whitespace()
                .skip(1)
                .map_while(|field| field.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

/// What driving the daemon showed.
struct Throughput {
    per_second: f64,
    /// The daemon's own CPU time (user and system, all threads) per run.
    cpu_per_run: Duration,
    shootdowns_per_run: f64,
    p50: Duration,
    p99: Duration,
}

/// CPU time a process has used, user and system, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the daemon's stat");
    // Fields after the command name (which may hold spaces): state is the
    // 3rd field, utime the 14th and stime the 15th.
    let after = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / clock_ticks_per_second()
}

/// `getconf CLK_TCK` (100 on Linux unless configured otherwise).
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}
