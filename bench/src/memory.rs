//! Resident memory per idle session, and 1,000 concurrent live sessions.
//!
//! The embedded figures come from child processes of the bench (the bench
//! re-executes itself with a hidden argument), so that each starts from a
//! clean process; the daemon's from `/proc/PID` of a `goru-daemon --socket`
//! holding sessions created over one connection. Beside them, in the same
//! run: an idle native `python3` and `node` process.

use super::daemon::{Daemon, client_runtime, connect, wait_until_listening};
use crate::measure::real_executable;
use crate::options::Options;
use goru_client::protocol::types::{OutcomeKind, RunResult, SessionCreateParams, SessionRunParams};
use goru_client::{Client, ClientError};
use goru_runtimes::{Engine, Language, Session, SessionBuilder, Status};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `goru-bench --hold-sessions LANGUAGE 1,100,1000`: hold that many idle
/// sessions (each has run `x = 1`), printing a JSON line of this process's
/// memory at 0 sessions and at each count.
const HOLD: &str = "--hold-sessions";
/// `goru-bench --concurrent-sessions LANGUAGE N`: create N sessions at once
/// on a multi-threaded runtime, run `print(i)` in each at once, close all;
/// prints one JSON line of times and failures.
const CONCURRENT: &str = "--concurrent-sessions";

/// Live sessions the memory rows measure at.
const COUNTS: [usize; 3] = [1, 100, 1000];
/// The design's target: this many concurrent live sessions without failure.
const CONCURRENT_SESSIONS: usize = 1000;
/// The design's target for an idle warm Python session.
const TARGET_MIB: f64 = 10.0;

/// Does a child's job and exits when this process was started as one of
/// the hidden children above; returns otherwise.
pub(crate) fn run_child_if_asked() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(flag), Some(language), Some(counts)) = (args.first(), args.get(1), args.get(2))
    else {
        return;
    };
    if flag != HOLD && flag != CONCURRENT {
        return;
    }
    let language: Language = language.parse().expect("a language");
    let counts: Vec<usize> = counts
        .split(',')
        .map(|n| n.parse().expect("a count"))
        .collect();
    if flag == HOLD {
        hold_sessions(language, &counts);
    } else {
        concurrent_sessions(language, counts[0]);
    }
    // Not dropping the sessions: the parent has what it needs.
    std::process::exit(0);
}

/// Memory of one process, in KiB, from /proc/PID/status and smaps_rollup.
#[derive(Clone, Copy, Debug, Default)]
struct Memory {
    rss: u64,
    anon: u64,
    file: u64,
    /// Proportional set size: a page mapped N times counts 1/N each time,
    /// so copy-on-write pages shared by sessions count once in all.
    pss: Option<u64>,
    /// Peak RSS (VmHWM).
    peak: u64,
}

impl Memory {
    fn of(pid: &str) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |text: &str, name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        };
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok();
        Memory {
            rss: field(&status, "VmRSS").unwrap_or(0),
            anon: field(&status, "RssAnon").unwrap_or(0),
            file: field(&status, "RssFile").unwrap_or(0),
            pss: rollup.and_then(|text| field(&text, "Pss")),
            peak: field(&status, "VmHWM").unwrap_or(0),
        }
    }

    fn to_json(self) -> Value {
        json!({"rss": self.rss, "anon": self.anon, "file": self.file, "pss": self.pss, "peak": self.peak})
    }

    fn from_json(value: &Value) -> Memory {
        let kib = |name: &str| value[name].as_u64().unwrap_or(0);
        Memory {
            rss: kib("rss"),
            anon: kib("anon"),
            file: kib("file"),
            pss: value["pss"].as_u64(),
            peak: kib("peak"),
        }
    }
}

/// `x = 1` in JavaScript too (a sloppy-mode global).
fn check_idle_run(outcome: &goru_runtimes::Outcome) -> bool {
    outcome.status == Status::Ok { value: None }
}

fn print_code(language: Language, i: usize) -> String {
    match language {
        Language::Python => format!("print({i})"),
        Language::JavaScript => format!("console.log({i})"),
    }
}

fn hold_sessions(language: Language, counts: &[usize]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = Engine::new().expect("engine");
    engine.prepare(language).expect("guest loads");
    let builder = SessionBuilder::new(language);
    let mut sessions: Vec<Session> = Vec::new();
    let mut failures = 0usize;
    let report = |sessions: usize, failures: usize, seconds: f64| {
        println!(
            "{}",
            json!({"sessions": sessions, "failures": failures, "seconds": seconds,
                   "memory": Memory::of("self").to_json()})
        );
    };
    report(0, 0, 0.0);
    for &count in counts {
        let started = Instant::now();
        while sessions.len() + failures < count {
            let session = runtime.block_on(async {
                let mut session = builder.start(&engine).await.ok()?;
                let outcome = session.run("x = 1", "<bench>").await.ok()?;
                check_idle_run(&outcome).then_some(session)
            });
            match session {
                Some(session) => sessions.push(session),
                None => failures += 1,
            }
        }
        report(sessions.len(), failures, started.elapsed().as_secs_f64());
    }
}

fn concurrent_sessions(language: Language, count: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = Engine::new().expect("engine");
    engine.prepare(language).expect("guest loads");
    let result = runtime.block_on(async {
        let mut failures = 0usize;
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..count {
            let engine = engine.clone();
            tasks.spawn(async move { (i, SessionBuilder::new(language).start(&engine).await) });
        }
        let mut sessions = Vec::with_capacity(count);
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, Ok(session))) => sessions.push((i, session)),
                _ => failures += 1,
            }
        }
        let created = started.elapsed();

        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, mut session) in sessions {
            tasks.spawn(async move {
                let ok = match session.run(&print_code(language, i), "<bench>").await {
                    Ok(outcome) => {
                        outcome.status == (Status::Ok { value: None })
                            && outcome.stdout == format!("{i}\n").into_bytes()
                    }
                    Err(_) => false,
                };
                (ok, session)
            });
        }
        let mut sessions = Vec::with_capacity(count);
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((ok, session)) => {
                    failures += usize::from(!ok);
                    sessions.push(session);
                }
                Err(_) => failures += 1,
            }
        }
        let ran = started.elapsed();
        let live = sessions.len();
        let memory = Memory::of("self");

        let started = Instant::now();
        drop(sessions);
        let closed = started.elapsed();
        json!({"live": live, "failures": failures, "create": created.as_secs_f64(),
               "run": ran.as_secs_f64(), "close": closed.as_secs_f64(), "memory": memory.to_json()})
    });
    println!("{result}");
}

/// One memory figure per count (index 0: no sessions yet).
struct Held {
    points: Vec<(usize, Memory)>,
    failures: usize,
}

impl Held {
    fn at(&self, count: usize) -> Memory {
        self.points
            .iter()
            .find(|(n, _)| *n == count)
            .map(|(_, m)| *m)
            .unwrap_or_default()
    }
}

/// Times and failures of the concurrent-sessions row.
struct Concurrent {
    live: usize,
    failures: usize,
    create: Duration,
    run: Duration,
    close: Duration,
    memory: Memory,
}

impl Concurrent {
    fn from_json(value: &Value) -> Concurrent {
        let seconds = |name: &str| Duration::from_secs_f64(value[name].as_f64().unwrap_or(0.0));
        Concurrent {
            live: value["live"].as_u64().unwrap_or(0) as usize,
            failures: value["failures"].as_u64().unwrap_or(0) as usize,
            create: seconds("create"),
            run: seconds("run"),
            close: seconds("close"),
            memory: Memory::from_json(&value["memory"]),
        }
    }
}

/// Runs this bench as a hidden child and returns its JSON lines; a child
/// that fails (killed for memory, say) yields what it printed so far.
fn child(args: &[&str]) -> Vec<Value> {
    let exe = std::env::current_exe().expect("the bench's own path");
    let output = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("cannot re-run the bench");
    if !output.status.success() {
        eprintln!("goru-bench: child {args:?} ended with {}", output.status);
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn embedded_held(language: &str) -> Held {
    let counts = COUNTS.map(|n| n.to_string()).join(",");
    let lines = child(&[HOLD, language, &counts]);
    Held {
        points: lines
            .iter()
            .map(|line| {
                (
                    line["sessions"].as_u64().unwrap_or(0) as usize,
                    Memory::from_json(&line["memory"]),
                )
            })
            .collect(),
        failures: lines
            .last()
            .and_then(|line| line["failures"].as_u64())
            .unwrap_or(u64::MAX) as usize,
    }
}

fn embedded_concurrent(language: &str) -> Option<Concurrent> {
    child(&[CONCURRENT, language, &CONCURRENT_SESSIONS.to_string()])
        .first()
        .map(Concurrent::from_json)
}

/// An idle native interpreter: started, ran `x = 1`, waiting on stdin.
fn native_idle(program: &str, args: &[&str]) -> Memory {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "{program} did not start");
    // Let it settle (a JIT or GC thread finishing its start-up work).
    std::thread::sleep(Duration::from_millis(200));
    let memory = Memory::of(&child.id().to_string());
    drop(child.stdin.take());
    let _ = child.wait();
    memory
}

/// Sends every request at once, one task each, as a client serving many
/// users would; returns each one's result, in order.
async fn all_at_once<P, T, F, Fut>(
    client: &Arc<Client>,
    params: Vec<P>,
    call: F,
) -> Vec<Result<T, ClientError>>
where
    F: Fn(Arc<Client>, P) -> Fut,
    Fut: Future<Output = Result<T, ClientError>> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = params
        .into_iter()
        .map(|params| tokio::spawn(call(Arc::clone(client), params)))
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.expect("a request task"));
    }
    results
}

/// goru-daemon holding 1, 100, 1,000 idle sessions of `language` (each ran
/// `x = 1`), then `print(i)` in all 1,000 and closing them all.
fn through_daemon(daemon: &str, language: &str) -> (Held, Concurrent) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("goru.sock");
    let max = (CONCURRENT_SESSIONS * 2).to_string();
    let process = Daemon(
        Command::new(daemon)
            .arg("--socket")
            .arg(&path)
            .args(["--max-sessions", &max, "--max-sessions-per-client", &max])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {daemon}: {e}")),
    );
    let pid = process.0.id().to_string();
    wait_until_listening(&path);
    let language: Language = language.parse().unwrap();
    client_runtime().block_on(async {
        let client = Arc::new(connect(&path, "goru-bench-memory").await);

        let mut held = Held {
            points: vec![(0, Memory::of(&pid))],
            failures: 0,
        };
        let mut ids: Vec<String> = Vec::new();
        let mut create_time = Duration::ZERO;
        for count in COUNTS {
            let started = Instant::now();
            let creates = vec![SessionCreateParams::new(language); count - ids.len()];
            let created: Vec<String> = all_at_once(&client, creates, |client, params| async move {
                client.create_session(params).await
            })
            .await
            .into_iter()
            .filter_map(|result| match result {
                Ok(session_id) => Some(session_id),
                Err(_) => {
                    held.failures += 1;
                    None
                }
            })
            .collect();
            let runs: Vec<_> = created.iter().map(|id| SessionRunParams::new(id, "x = 1")).collect();
            for result in all_at_once(&client, runs, run_in).await {
                if !matches!(&result, Ok(r) if r.outcome == OutcomeKind::Ok) {
                    held.failures += 1;
                }
            }
            create_time += started.elapsed();
            ids.extend(created);
            held.points.push((count, Memory::of(&pid)));
        }

        let started = Instant::now();
        let runs: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| SessionRunParams::new(id, print_code(language, i)))
            .collect();
        let mut failures = held.failures;
        for (i, result) in all_at_once(&client, runs, run_in).await.into_iter().enumerate() {
            if !matches!(&result, Ok(r) if r.outcome == OutcomeKind::Ok && r.stdout == format!("{i}\n")) {
                failures += 1;
            }
        }
        let ran = started.elapsed();
        let memory = Memory::of(&pid);
        let started = Instant::now();
        let closes = all_at_once(&client, ids.clone(), |client, id| async move {
            client.close_session(&id).await
        })
        .await;
        failures += closes.iter().filter(|r| r.is_err()).count();
        let closed = started.elapsed();
        let concurrent = Concurrent {
            live: ids.len(),
            failures,
            create: create_time,
            run: ran,
            close: closed,
            memory,
        };
        (held, concurrent)
    })
}

async fn run_in(client: Arc<Client>, params: SessionRunParams) -> Result<RunResult, ClientError> {
    client.run_in(params).await
}

/// 1000 as "1,000".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// (at(to) - at(from)) / (to - from), in MiB.
fn per_session(held: &Held, pick: impl Fn(Memory) -> Option<u64>) -> Option<f64> {
    let (first, last) = (COUNTS[0], COUNTS[COUNTS.len() - 1]);
    let a = pick(held.at(first))? as f64;
    let b = pick(held.at(last))? as f64;
    Some((b - a) / (last - first) as f64 / 1024.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**not met**" }
}

/// The memory and concurrent-sessions sections of the report.
pub(crate) fn report(options: &Options) -> String {
    let python = real_executable("python3");
    let node = real_executable("node");
    let native_python = native_idle(
        &python,
        &[
            "-c",
            "import sys; x = 1; print('ready', flush=True); sys.stdin.read()",
        ],
    );
    let native_node = native_idle(
        &node,
        &[
            "-e",
            "x = 1; console.log('ready'); process.stdin.resume(); process.stdin.on('end', () => process.exit(0))",
        ],
    );

    let mut memory_rows = Vec::new();
    let mut concurrent_rows = Vec::new();
    let mut measured: Vec<(&str, &str, Held, Option<Concurrent>)> = Vec::new();
    for language in ["python", "javascript"] {
        let held = embedded_held(language);
        let concurrent = embedded_concurrent(language);
        measured.push(("embedded", language, held, concurrent));
    }
    for language in ["python", "javascript"] {
        let (held, concurrent) = through_daemon(&options.daemon, language);
        measured.push(("goru-daemon", language, held, Some(concurrent)));
    }
    for (place, language, held, concurrent) in &measured {
        let rss = per_session(held, |m| Some(m.rss));
        let pss = per_session(held, |m| m.pss);
        let anon = per_session(held, |m| Some(m.anon));
        let shown = |value: Option<f64>| value.map_or("n/a".into(), |v| format!("{v:.2} MiB"));
        let target = match (*language, pss.or(rss)) {
            ("python", Some(pss)) => format!("<= {TARGET_MIB} MiB: {}", verdict(pss <= TARGET_MIB)),
            _ => String::new(),
        };
        memory_rows.push(format!(
            "| {place} | {language} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            mib(held.at(0).rss),
            mib(held.at(1).rss),
            mib(held.at(100).rss),
            mib(held.at(1000).rss),
            held.at(1000).pss.map_or("n/a".into(), mib),
            shown(rss),
            shown(anon),
            shown(pss),
            if held.failures == 0 {
                target
            } else {
                format!("{target} ({} failures)", held.failures)
            },
        ));
        match concurrent {
            Some(c) => concurrent_rows.push(format!(
                "| {place} | {language} | {} | {:.2} s | {:.2} s | {:.2} s | {} | {} | {} |",
                c.live,
                c.create.as_secs_f64(),
                c.run.as_secs_f64(),
                c.close.as_secs_f64(),
                c.memory.pss.map_or_else(|| mib(c.memory.rss), mib),
                c.failures,
                verdict(c.failures == 0 && c.live >= CONCURRENT_SESSIONS),
            )),
            None => concurrent_rows.push(format!(
                "| {place} | {language} | the child failed | | | | | | **not met** |"
            )),
        }
    }
    for (name, memory) in [("`python3`", native_python), ("`node`", native_node)] {
        memory_rows.push(format!(
            "| native {name} process (baseline) | | | {} | | | | {} (whole process) | {} | {} | |",
            mib(memory.rss),
            mib(memory.rss),
            mib(memory.anon),
            memory.pss.map_or("n/a".into(), mib),
        ));
    }
    format!(
        "### Memory per idle session\n\n\
         Sessions created one after another in a process that holds them (embedded: a child of the \
         bench with one engine; goru-daemon: `--socket`, sessions created over one connection), each \
         has run `x = 1` once; memory read from `/proc/PID/status` (VmRSS, RssAnon) and \
         `/proc/PID/smaps_rollup` (Pss) with 0 sessions (guests loaded), 1, 100 and 1,000. \
         \"Per session\" is (X(1,000) - X(1)) / 999. RSS counts a copy-on-write page of the compiled \
         guest once per session that maps it; Pss divides it among them, so Pss is what the sessions \
         really cost together. Baselines: an idle `python3 -c` and `node -e` process that ran `x = 1`, \
         measured in this run; a process per sandbox would cost that much each.\n\n\
         | where | language | RSS, 0 sessions | 1 | 100 | 1,000 | Pss, 1,000 | per session: RSS | RssAnon | Pss | target |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n{}\n\n\
         ### {n} concurrent sessions\n\n\
         Embedded: {n} sessions created at once as tasks on a multi-threaded Tokio \
         runtime (a child of the bench), then `print(i)` / `console.log(i)` run in each at once (output \
         checked), then all dropped. goru-daemon: the sessions above, created and run over one \
         connection with every request pipelined (the daemon runs up to 32 at once per connection), then \
         `print(i)` in each, then `session/close` for each. Failures count sessions that did not start, \
         runs with the wrong outcome or output, and failed closes.\n\n\
         | where | language | live sessions | create all | run in all | close all | memory (Pss) with all live | failures | target: {n} without failure |\n\
         |---|---|---|---|---|---|---|---|---|\n{}\n",
        memory_rows.join("\n"),
        concurrent_rows.join("\n"),
        n = thousands(CONCURRENT_SESSIONS),
    )
}
