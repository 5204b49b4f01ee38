//! `goru`: run untrusted Python and JavaScript in a WebAssembly sandbox.

mod cli;
mod connect;
mod deps;
mod repl;
mod report;
mod verdict;

use clap::{CommandFactory, FromArgMatches};
use cli::{CapabilityArgs, Cli, Command, LimitArgs, RunArgs};
use goru_runtimes::{
    Capabilities, Deterministic, Engine, HttpCapability, KvLimits, Language, Limits,
    MAX_MEMORY_BYTES, OutputSink, PackagesCapability, SessionBuilder, Status, Stdin, Stream,
    exit_code, parse_duration, parse_size,
};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

/// A failure before or around the run, with what to tell the user.
struct Fatal {
    message: String,
    hint: Option<String>,
    code: i32,
}

impl Fatal {
    fn usage(message: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        Fatal {
            message: message.into(),
            hint: hint.into(),
            code: exit_code::USAGE,
        }
    }

    /// goru itself failed (exit 70).
    fn internal(message: impl Into<String>) -> Self {
        Fatal {
            message: message.into(),
            hint: None,
            code: exit_code::INTERNAL,
        }
    }
}

/// The single-threaded runtime the CLI's commands run on.
fn async_runtime() -> Result<CliRuntime, Fatal> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|runtime| CliRuntime(Some(runtime)))
        .map_err(|err| Fatal::internal(format!("could not start the async runtime: {err}")))
}

/// A tokio runtime that, when dropped, does not wait for blocking work still
/// under way (a file operation stuck in the kernel, on a hung network file
/// system say): tokio's own drop waits for it for ever, and goru's exit,
/// which comes next, must never hang on it.
pub(crate) struct CliRuntime(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for CliRuntime {
    type Target = tokio::runtime::Runtime;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref().expect("the runtime lives until dropped")
    }
}

impl Drop for CliRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// This process's stdin read to its end as UTF-8 text; `what` names it in
/// messages (`stdin`, `the code from stdin`).
fn read_stdin_utf8(what: &str, hint: &str) -> Result<String, Fatal> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|err| Fatal::usage(format!("cannot read {what}: {err}"), None))?;
    String::from_utf8(bytes).map_err(|err| {
        Fatal::usage(
            format!(
                "{what} is not valid UTF-8 (at byte {})",
                err.utf8_error().valid_up_to()
            ),
            Some(hint.to_string()),
        )
    })
}

fn main() {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            let code = if err.use_stderr() {
                exit_code::USAGE
            } else {
                0
            };
            let _ = err.print();
            std::process::exit(code);
        }
    };
    let result = match cli.command {
        Some(Command::Run(args)) => {
            let given = connect::GivenLimits::of(matches.subcommand_matches("run"));
            run(args, given)
        }
        Some(Command::Repl(args)) => repl::main(args),
        Some(Command::Deps(args)) => deps::main(args),
        None => run(cli.run, connect::GivenLimits::of(Some(&matches))),
    };
    let code = match result {
        Ok(code) => code,
        Err(fatal) => {
            report::error(&fatal.message, fatal.hint.as_deref());
            fatal.code
        }
    };
    // Exit without tearing down the runtime: a blocked read of the host's
    // stdin must not keep the process alive.
    std::process::exit(code);
}

/// The code to run, where it came from, and what the guest's stdin is.
struct Program {
    language: Language,
    code: String,
    filename: String,
    argv: Vec<String>,
    stdin: Stdin,
}

fn run(cli: RunArgs, given: connect::GivenLimits) -> Result<i32, Fatal> {
    if let Some(socket) = cli.connect.clone() {
        return connect::run(&socket, cli, given);
    }
    let limits = limits(&cli.limits)?;
    let capabilities = capabilities(&cli.capabilities)?;
    let report_file = cli
        .report
        .as_deref()
        .map(verdict::ReportFile::create)
        .transpose()?;
    let program = program(cli)?;
    let capabilities = for_language(capabilities, program.language)?;
    let engine = Engine::builder()
        .on_progress(report::progress)
        // One process, few sandboxes: reserving a pool costs more than it saves.
        .pooling(false)
        .build()
        .map_err(|err| Fatal::internal(err.to_string()))?;
    let mut builder = SessionBuilder::new(program.language);
    builder
        .limits(limits.clone())
        .capabilities(capabilities)
        .argv(program.argv)
        .stdin(program.stdin)
        .output_sink(Arc::new(ProcessOutput));
    let outcome = async_runtime()?
        .block_on(engine.run_once(&builder, &program.code, &program.filename))
        .map_err(|err| Fatal {
            message: err.to_string(),
            hint: Some("this is a bug in goru or its build; please report it".into()),
            code: exit_code::INTERNAL,
        })?;
    report_status(&outcome.status, program.language);
    if outcome.clipped {
        report_clipped(Clipped::of(&outcome.status), limits.max_output_bytes);
    }
    if let Some(file) = report_file {
        file.write(&verdict::Verdict {
            status: verdict::outcome_kind(&outcome.status),
            exit_code: outcome.status.exit_code(),
            duration_ms: outcome.duration.as_secs_f64() * 1000.0,
        })?;
    }
    Ok(outcome.status.exit_code())
}

/// What the capability flags grant (shared by `goru run` and `goru repl`).
fn capabilities(args: &CapabilityArgs) -> Result<Capabilities, Fatal> {
    let capabilities = Capabilities {
        kv: args.kv.then(KvLimits::default),
        deterministic: args.deterministic.map(|seed| Deterministic {
            seed,
            ..Deterministic::default()
        }),
        mounts: args.mounts.clone(),
        http: (!args.allow_hosts.is_empty())
            .then(|| HttpCapability::allowing(args.allow_hosts.iter().cloned())),
        packages: args.packages.as_ref().map(|dir| PackagesCapability {
            // Absolute, so that it means the same to a daemon (`--connect`).
            dir: std::path::absolute(dir).unwrap_or_else(|_| dir.clone()),
            allow_install: args.allow_install.clone(),
            index_url: args.index_url.clone(),
        }),
        ..Capabilities::none()
    };
    // Each `--mount` was checked when parsed; this catches one given twice.
    capabilities.validate().map_err(|err| {
        let hint = match err {
            goru_runtimes::Error::Packages(_) => {
                "install packages into a directory with `goru deps install NAME --dir DIR`, \
                 then run with `--packages DIR`"
            }
            _ => "give each mount point once: `--mount GUEST:HOST:MODE`",
        };
        Fatal::usage(err.to_string(), Some(hint.to_string()))
    })?;
    Ok(capabilities)
}

/// Refuses capabilities the language has no use for (packages are Python's).
fn for_language(capabilities: Capabilities, language: Language) -> Result<Capabilities, Fatal> {
    if capabilities.packages.is_some() && language != Language::Python {
        return Err(Fatal::usage(
            format!("`--packages` is for Python only; this is {language}"),
            Some("run Python code (`-l python`), or leave out `--packages`".to_string()),
        ));
    }
    Ok(capabilities)
}

fn limits(args: &LimitArgs) -> Result<Limits, Fatal> {
    let bad = |flag: &str, err: goru_runtimes::LimitError| {
        Fatal::usage(format!("`--{flag}`: {err}"), None)
    };
    let limits = Limits {
        timeout: parse_duration(&args.timeout).map_err(|e| bad("timeout", e))?,
        memory_bytes: parse_size(&args.memory).map_err(|e| bad("memory", e))?,
        max_output_bytes: parse_size(&args.max_output).map_err(|e| bad("max-output", e))?,
        ..Limits::default()
    };
    limits
        .validate()
        .map_err(|err| Fatal::usage(err.to_string(), None))?;
    Ok(limits)
}

fn program(cli: RunArgs) -> Result<Program, Fatal> {
    let named = cli
        .lang
        .as_deref()
        .map(|name| {
            name.parse::<Language>().map_err(|err| {
                Fatal::usage(
                    err.to_string(),
                    Some("use `--lang python` or `--lang js`".to_string()),
                )
            })
        })
        .transpose()?;
    let file = cli.file.filter(|f| f.as_os_str() != "-");
    if let Some(code) = cli.code {
        // As with `python -c`: every positional argument belongs to the code.
        let mut argv = vec!["-c".to_string()];
        argv.extend(file.map(|f| f.to_string_lossy().into_owned()));
        argv.extend(cli.args);
        let language = named.ok_or_else(|| missing_language("code given with `-c`"))?;
        return Ok(Program {
            language,
            code,
            filename: "<string>".into(),
            argv,
            stdin: Stdin::Inherit,
        });
    }
    match file {
        Some(path) => {
            let language = named
                .or_else(|| Language::from_path(&path))
                .ok_or_else(|| missing_language(&format!("`{}`", path.display())))?;
            let code = read_source(&path)?;
            let display = path.to_string_lossy().into_owned();
            let mut argv = vec![display.clone()];
            argv.extend(cli.args);
            Ok(Program {
                language,
                code,
                filename: display,
                argv,
                stdin: Stdin::Inherit,
            })
        }
        None => {
            let language = named.ok_or_else(|| missing_language("code read from stdin"))?;
            let code = read_stdin_utf8("the code from stdin", "save the source as UTF-8")?;
            let mut argv = vec!["-".to_string()];
            argv.extend(cli.args);
            Ok(Program {
                language,
                code,
                filename: "<stdin>".into(),
                argv,
                // The code came from stdin, so the guest's stdin is empty.
                stdin: Stdin::Empty,
            })
        }
    }
}

fn missing_language(what: &str) -> Fatal {
    Fatal::usage(
        format!("cannot tell the language of {what}"),
        Some(
            "name it with `--lang python` or `--lang js`, or use a `.py` / `.js` file".to_string(),
        ),
    )
}

fn read_source(path: &Path) -> Result<String, Fatal> {
    if path.is_dir() {
        return Err(Fatal::usage(
            format!("`{}` is a directory", path.display()),
            Some("give the path of a script file".to_string()),
        ));
    }
    let bytes = std::fs::read(path)
        .map_err(|err| Fatal::usage(format!("cannot read `{}`: {err}", path.display()), None))?;
    String::from_utf8(bytes).map_err(|err| {
        Fatal::usage(
            format!(
                "`{}` is not valid UTF-8 (at byte {})",
                path.display(),
                err.utf8_error().valid_up_to()
            ),
            Some("save the source as UTF-8".to_string()),
        )
    })
}

/// The memory a guest needs to start with room for a small program: the
/// `--memory` hint never suggests less. Measured with `print(1)` /
/// `console.log(1)`: CPython 3.14 starts in 27 MiB, QuickJS-NG in 5 MiB.
fn working_memory(language: Language) -> u64 {
    match language {
        Language::Python => 32 << 20,
        Language::JavaScript => 8 << 20,
    }
}

/// The `--memory` hint after the guest ran out of `limit`: double it, and
/// at least what the guest needs to start, so that following the hint
/// cannot fail at start again.
fn memory_hint(limit: u64, language: Language) -> String {
    let working = working_memory(language);
    let suggested = limit.saturating_mul(2).max(working).min(MAX_MEMORY_BYTES);
    if limit < working {
        format!(
            "raise the limit with `--memory {}`: {language} needs about that much to start",
            human_size(suggested)
        )
    } else {
        format!("raise the limit with `--memory {}`", human_size(suggested))
    }
}

/// Tells the user why a run did not simply finish.
fn report_status(status: &Status, language: Language) {
    match status {
        Status::Ok { .. } | Status::Incomplete | Status::Exit(_) => {}
        Status::Exception(exception) => print_traceback(&exception.traceback),
        Status::Timeout { limit } => report::error(
            &format!("the run timed out after {}", human_duration(*limit)),
            Some(&format!(
                "raise the limit with `--timeout {}` if the code needs longer",
                human_duration(*limit * 2)
            )),
        ),
        Status::MemoryLimit { limit } => report::error(
            &format!("the guest ran out of memory (limit {})", human_size(*limit)),
            Some(&memory_hint(*limit, language)),
        ),
        Status::OutputLimit { stream, limit } => report::error(
            &format!(
                "output truncated: {} passed its {} limit and the run was stopped",
                stream.name(),
                human_size(*limit)
            ),
            Some(&format!(
                "raise the limit with `--max-output {}`",
                human_size(limit.saturating_mul(4))
            )),
        ),
        Status::Crashed { message } => report::error(
            &format!("the guest crashed: {message}"),
            Some(
                "deep recursion in native code can cause this; simplify the input or the recursion",
            ),
        ),
        Status::Cancelled => report::error("the run was cancelled", None),
    }
}

/// What a run returned that was cut to the room left under the output
/// limit (the engine's `Outcome::clipped`).
#[derive(Clone, Copy)]
enum Clipped {
    Exception,
    Value,
}

impl Clipped {
    fn of(status: &Status) -> Self {
        match status {
            Status::Exception(_) => Clipped::Exception,
            _ => Clipped::Value,
        }
    }
}

/// Says that the exception or value shown was cut short.
fn report_clipped(what: Clipped, limit: u64) {
    let what = match what {
        Clipped::Exception => "the exception",
        Clipped::Value => "the value",
    };
    report::warning(
        &format!(
            "{what} was cut short: with the output, it passed the {} output limit",
            human_size(limit)
        ),
        Some(&format!(
            "raise the limit with `--max-output {}`",
            human_size(limit.saturating_mul(4))
        )),
    );
}

/// Writes an uncaught exception's traceback to stderr, as Python would.
fn print_traceback(traceback: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(traceback.as_bytes());
    if !traceback.ends_with('\n') {
        let _ = stderr.write_all(b"\n");
    }
    let _ = stderr.flush();
}

fn human_duration(duration: std::time::Duration) -> String {
    let ms = duration.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn human_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

/// Writes guest output straight to this process's stdout and stderr.
struct ProcessOutput;

impl OutputSink for ProcessOutput {
    fn write(&self, stream: Stream, bytes: &[u8]) {
        // A closed pipe (`goru ... | head`) is not an error of the run.
        let _ = match stream {
            Stream::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|_| out.flush())
            }
            Stream::Stderr => {
                let mut err = std::io::stderr().lock();
                err.write_all(bytes).and_then(|_| err.flush())
            }
        };
    }
}
