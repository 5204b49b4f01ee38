//! goru's benchmark: prints a Markdown report of start-up and run times,
//! each beside a native baseline measured in the same run.
//!
//! `./x bench` builds it and writes the report into docs/performance.md.
//! Usage: `goru-bench [--goru PATH] [--daemon PATH] [--runs N]
//! [--only SECTION,...] [--workload TEXT]`; `--only` and `--workload` print
//! a part of the report (to measure one row without the whole suite).

mod cpu;
mod daemon;
mod measure;
mod memory;
mod options;
mod pool;
mod precision;

use goru_runtimes::{Engine, Language, SessionBuilder, Status};
use measure::{median, ms, percentiles, real_executable};
use options::Options;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    memory::run_child_if_asked();
    let options = Options::parse();
    let mut report = String::new();
    report.push_str(&format!(
        "Measured {} on {} ({} cores), {} runs per row; times are medians (p50) unless noted.\n\n",
        utc_date(),
        cpu_model(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        options.runs
    ));
    let mut sections = Vec::new();
    if options.wants("process") {
        sections.push(whole_process(&options));
    }
    // The daemon's rows compare with the embedded ones: they need these.
    if options.wants("engine") || options.wants("daemon") {
        let (table, embedded) = engine_internal(options.runs.max(100));
        sections.push(table);
        if options.wants("daemon") {
            sections.push(through_daemon(&options, &embedded));
        }
    }
    if options.wants("pool") {
        sections.push(pool::report(&options));
    }
    if options.wants("memory") {
        sections.push(memory::report(&options));
    }
    if options.wants("precision") {
        sections.push(precision::report(&options));
    }
    if options.wants("cpu") {
        sections.push(cpu::report(&options));
    }
    report.push_str(&sections.join("\n"));
    print!("{report}");
}

/// Whole `goru -c` processes against `python3 -c` and `node -e`.
fn whole_process(options: &Options) -> String {
    let cold_cache = tempfile::tempdir().expect("temp dir");
    let mut rows = Vec::new();
    for (language, code, native, native_args) in [
        ("python", "print(1+1)", "python3", vec!["-c", "print(1+1)"]),
        (
            "js",
            "console.log(1+1)",
            "node",
            vec!["-e", "console.log(1+1)"],
        ),
    ] {
        // Time the interpreter itself, not a version manager's shim script.
        let native = real_executable(native);
        let native = native.as_str();
        let goru_args = ["-l", language, "-c", code];
        let first = time_process(&options.goru, &goru_args, Some(cold_cache.path()));
        let cached = median(
            (0..options.runs)
                .map(|_| time_process(&options.goru, &goru_args, Some(cold_cache.path())))
                .collect(),
        );
        let baseline = median(
            (0..options.runs)
                .map(|_| time_process(native, &native_args, None))
                .collect(),
        );
        rows.push(format!(
            "| `goru -l {language} -c '{code}'` | {} | {} | `{} {}` {} | {:.2}x |",
            ms(first),
            ms(cached),
            native.rsplit('/').next().unwrap_or(native),
            native_args.join(" ").replace(code, &format!("'{code}'")),
            ms(baseline),
            cached.as_secs_f64() / baseline.as_secs_f64(),
        ));
    }
    format!(
        "### Whole process\n\n\
         A fresh process per run, output checked. \"First run\" starts with an empty compile cache \
         (the guest is compiled and cached); \"cached\" runs load the compiled guest from the cache.\n\n\
         | command | first run | cached (p50) | native baseline (p50) | cached / native |\n\
         |---|---|---|---|---|\n{}\n",
        rows.join("\n")
    )
}

/// Runs a command to completion and returns its wall-clock time; panics
/// unless it printed `2`.
fn time_process(program: &str, args: &[&str], cache: Option<&std::path::Path>) -> Duration {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    if let Some(cache) = cache {
        command.env("GORU_CACHE_DIR", cache);
    }
    let started = Instant::now();
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let elapsed = started.elapsed();
    assert_eq!(
        output.stdout, b"2\n",
        "{program} {args:?} printed something else"
    );
    elapsed
}

/// Fresh sandbox to first result inside a warm engine; also returns the
/// existing-session p50 per language, the baseline of the daemon rows.
fn engine_internal(runs: usize) -> (String, Vec<Duration>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = Engine::new().expect("engine");
    let mut rows = Vec::new();
    let mut embedded = Vec::new();
    for (language, code) in [
        (Language::Python, "print(1+1)"),
        (Language::JavaScript, "console.log(1+1)"),
    ] {
        engine.prepare(language).expect("guest loads");
        let builder = SessionBuilder::new(language);
        let mut fresh = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            let outcome = runtime
                .block_on(engine.run_once(&builder, code, "<bench>"))
                .unwrap();
            fresh.push(started.elapsed());
            assert_eq!(outcome.stdout, b"2\n");
        }
        let mut session = runtime.block_on(builder.start(&engine)).unwrap();
        let mut warm = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            let outcome = runtime.block_on(session.run("x = 1", "<bench>")).unwrap();
            warm.push(started.elapsed());
            assert_eq!(outcome.status, Status::Ok { value: None });
        }
        let (fresh_p50, fresh_p99) = percentiles(&mut fresh);
        let (warm_p50, warm_p99) = percentiles(&mut warm);
        embedded.push(warm_p50);
        rows.push(format!(
            "| {language} | {} | {} | {} | {} |",
            ms(fresh_p50),
            ms(fresh_p99),
            ms(warm_p50),
            ms(warm_p99)
        ));
    }
    let table = format!(
        "### Inside the engine\n\n\
         Engine warm (guests compiled or loaded), {runs} runs each. \"Fresh sandbox\": create an instance, \
         initialise it, run `print(1+1)` / `console.log(1+1)`, capture the output, drop it. \
         \"Existing session\": `x = 1` in a live instance.\n\n\
         | language | fresh sandbox p50 | p99 | existing session p50 | p99 |\n\
         |---|---|---|---|---|\n{}\n",
        rows.join("\n")
    );
    (table, embedded)
}

/// `session/run` round trips through goru-daemon, beside the same run
/// embedded (measured above, in this run).
fn through_daemon(options: &Options, embedded: &[Duration]) -> String {
    let runs = options.runs.max(200);
    let mut rows = Vec::new();
    for (transport, results) in daemon::round_trips(&options.daemon, runs) {
        for ((language, (p50, p99)), embedded) in
            ["python", "javascript"].iter().zip(results).zip(embedded)
        {
            rows.push(format!(
                "| {transport} | {language} | {} | {} | {} | +{} |",
                ms(p50),
                ms(p99),
                ms(*embedded),
                ms(p50.saturating_sub(*embedded)),
            ));
        }
    }
    format!(
        "### Through the daemon\n\n\
         `goru-daemon --stdio` (pipes) and `goru-daemon --socket` (a Unix socket), one client, \
         {runs} sequential `session/run` requests of `x = 1` in an existing session, timed in the client \
         from writing the request to reading the result (JSON encoding, framing, the daemon's dispatch \
         and the run). Beside it the same run embedded, from the table above.\n\n\
         | transport | language | round trip p50 | p99 | embedded p50 | added by the daemon (p50) |\n\
         |---|---|---|---|---|---|\n{}\n",
        rows.join("\n")
    )
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_string())
        })
        .unwrap_or_else(|| "an unknown CPU".into())
}

fn utc_date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
