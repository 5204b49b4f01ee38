//! Timeout precision: how long after its deadline a run is stopped, for a
//! runaway loop (stopped by the epoch check in compiled guest code) and for
//! a guest blocked in a sleep (stopped by the host-side timer).

use crate::options::Options;
use goru_runtimes::{Engine, Language, Limits, Session, SessionBuilder, Status};
use std::collections::HashMap;
use std::time::Duration;

/// The design's target: a runaway loop stopped within this of its deadline.
const TARGET: Duration = Duration::from_millis(10);

struct Case {
    language: Language,
    what: &'static str,
    code: &'static str,
    timeout: Duration,
    runs: usize,
    /// Runs at once (on a multi-threaded runtime when more than 1).
    concurrent: usize,
}

/// Nanoseconds each thread of this process has spent on a CPU and waiting
/// for one while runnable (/proc/self/task/*/schedstat), by thread id.
fn schedstat() -> HashMap<String, (u64, u64)> {
    let mut threads = HashMap::new();
    for entry in std::fs::read_dir("/proc/self/task").into_iter().flatten() {
        let Ok(entry) = entry else { continue };
        let text = std::fs::read_to_string(entry.path().join("schedstat")).unwrap_or_default();
        let mut fields = text
            .split_whitespace()
            .map(|n| n.parse::<u64>().unwrap_or(0));
        if let (Some(run), Some(wait)) = (fields.next(), fields.next()) {
            threads.insert(
                entry.file_name().to_string_lossy().into_owned(),
                (run, wait),
            );
        }
    }
    threads
}

/// Of the time this process's threads were runnable since `before`, the
/// share they spent waiting for a CPU (other processes had it): 0 on an
/// otherwise idle machine.
fn cpu_wait_share(before: &HashMap<String, (u64, u64)>) -> Option<f64> {
    let (mut run, mut wait) = (0u64, 0u64);
    for (tid, (r, w)) in schedstat() {
        let (r0, w0) = before.get(&tid).copied().unwrap_or((0, 0));
        run += r.saturating_sub(r0);
        wait += w.saturating_sub(w0);
    }
    (run + wait > 0).then(|| wait as f64 / (run + wait) as f64)
}

/// Overshoots in ms (negative: stopped early), one per run, and the share
/// of runnable time spent waiting for a CPU meanwhile.
fn measure(engine: &Engine, case: &Case) -> (Vec<f64>, Option<f64>) {
    let mut builder = SessionBuilder::new(case.language);
    builder.limits(Limits {
        timeout: case.timeout,
        ..Limits::default()
    });
    let timeout = case.timeout;
    let code = case.code;
    // Sessions start before the timed runs: a start is bound by the same
    // timeout, and here only the runs are measured.
    let run_one = move |mut session: Session| async move {
        let outcome = session.run(code, "<bench>").await.expect("run");
        assert!(
            matches!(outcome.status, Status::Timeout { .. }),
            "{code}: {:?}",
            outcome.status
        );
        (outcome.duration.as_secs_f64() - timeout.as_secs_f64()) * 1e3
    };
    let runtime = if case.concurrent <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let mut overshoots = Vec::new();
    let before = schedstat();
    for _ in 0..case.runs.div_ceil(case.concurrent) {
        let sessions: Vec<Session> = (0..case.concurrent)
            .map(|_| {
                runtime
                    .block_on(builder.start(engine))
                    .expect("session starts")
            })
            .collect();
        overshoots.extend(runtime.block_on(async {
            let tasks: Vec<_> = sessions
                .into_iter()
                .map(|session| tokio::spawn(run_one(session)))
                .collect();
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await.expect("run task"));
            }
            results
        }));
    }
    (overshoots, cpu_wait_share(&before))
}

/// The timeout-precision section of the report.
pub(crate) fn report(options: &Options) -> String {
    let engine = Engine::new().expect("engine");
    for language in Language::ALL {
        engine.prepare(language).expect("guest loads");
    }
    let runs = options.runs.clamp(10, 50);
    let long_runs = 10.min(runs);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let concurrent = 8 * workers;
    let short = Duration::from_millis(100);
    let long = Duration::from_secs(1);
    let py_loop = "while True: pass";
    let js_loop = "while (true) {}";
    let cases = [
        (Language::Python, "runaway loop", py_loop, short, runs, 1),
        (
            Language::JavaScript,
            "runaway loop",
            js_loop,
            short,
            runs,
            1,
        ),
        (
            Language::Python,
            "runaway loop",
            py_loop,
            long,
            long_runs,
            1,
        ),
        (
            Language::JavaScript,
            "runaway loop",
            js_loop,
            long,
            long_runs,
            1,
        ),
        (
            Language::Python,
            "blocked in `time.sleep(10)`",
            "import time; time.sleep(10)",
            short,
            runs,
            1,
        ),
        (
            Language::JavaScript,
            "waiting on `setTimeout(f, 10000)`",
            "setTimeout(() => {}, 10000)",
            short,
            runs,
            1,
        ),
        (
            Language::Python,
            "runaway loop",
            py_loop,
            short,
            concurrent * 3,
            concurrent,
        ),
        (
            Language::JavaScript,
            "runaway loop",
            js_loop,
            short,
            concurrent * 3,
            concurrent,
        ),
        (
            Language::Python,
            "runaway loop",
            py_loop,
            short,
            concurrent * 6,
            concurrent * 2,
        ),
    ]
    .map(|(language, what, code, timeout, runs, concurrent)| Case {
        language,
        what,
        code,
        timeout,
        runs,
        concurrent,
    });
    let mut rows = Vec::new();
    for case in &cases {
        let (mut overshoots, waiting) = measure(&engine, case);
        overshoots.sort_by(f64::total_cmp);
        let p50 = overshoots[(overshoots.len() - 1) / 2];
        let min = overshoots[0];
        let max = overshoots[overshoots.len() - 1];
        let target_ms = TARGET.as_secs_f64() * 1e3;
        let at_once = if case.concurrent > 1 {
            format!(", {} at once on {workers} threads", case.concurrent)
        } else {
            String::new()
        };
        rows.push(format!(
            "| {} | {}{at_once} | {} ms | {} | {p50:+.1} ms | {max:+.1} ms | {min:+.1} ms | {} | <= {target_ms:.0} ms: {} |",
            case.language,
            case.what,
            case.timeout.as_millis(),
            overshoots.len(),
            waiting.map_or("n/a".into(), |w| format!("{:.0}%", w * 100.0)),
            if max <= target_ms { "met" } else { "**not met**" },
        ));
    }
    format!(
        "### Timeout precision\n\n\
         A fresh session per run with `limits.timeout` set, running code that never ends on its own; \
         each run must end in a timeout, and the figure is how long after the deadline it ended \
         (the outcome's duration minus the timeout). A runaway loop is stopped by the epoch check in \
         compiled guest code (the epoch advances every 1 ms while runs are active, and the check \
         compares the clock with the deadline, or yields to the executor: a tick is a busy guest's \
         time slice); a guest blocked in a sleep by the host-side timer (the deadline plus 2 ms of \
         slack). One run at a time on a current-thread Tokio runtime, as the CLI runs; the last rows \
         run {concurrent} and {} runaway loops at once on a multi-threaded runtime ({workers} worker \
         threads), as the daemon runs many clients' sessions: a guest past its deadline is stopped \
         when its turn comes round, so the tick shortens (to 0.25 ms at least) to keep a round of \
         slices within 4 ms. \"Waiting for a CPU\": of the time the bench's threads were runnable \
         during the row, the share they waited for a CPU that other processes held \
         (`/proc/self/task/*/schedstat`); well above 0, the row measures the machine's load as \
         much as goru.\n\n\
         | language | guest | timeout | runs | past the deadline p50 | max | min | waiting for a CPU | target (max) |\n\
         |---|---|---|---|---|---|---|---|---|\n{}\n",
        concurrent * 2,
        rows.join("\n")
    )
}
