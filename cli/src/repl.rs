//! `goru repl`: an interactive session in one sandbox.
//!
//! One [`Session`] holds the state of the whole REPL. After each line the
//! guest is asked ([`Mode::CheckComplete`]) whether the lines so far make a
//! complete entry; a complete entry runs in [`Mode::Repl`], which hands back
//! the representation of a trailing expression's value to print. An entry
//! that hits a limit kills the session: the REPL says so and starts a fresh
//! one, so the user keeps a prompt.
//!
//! On a terminal, lines come from `rustyline` (editing, history, Ctrl-C,
//! Ctrl-D); otherwise they are read from stdin as they are, without prompts.

use crate::cli::{ReplArgs, env};
use crate::fatal::Fatal;
use crate::outcome::{Clipped, report_clipped, report_status};
use crate::output::ProcessOutput;
use crate::report;
use crate::runtime::{CliRuntime, async_runtime};
use crate::settings::ReplSettings;
use goru_runtimes::{
    Engine, Error, Language, Mode, Outcome, OutputSink, Session, SessionBuilder, StartError,
    Status, Stdin, Stream, exit_code,
};
use rustyline::error::ReadlineError;
use rustyline::history::{DefaultHistory, History};
use rustyline::{Config, Editor};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The file name tracebacks give REPL entries (as CPython's classic REPL).
const FILENAME: &str = "<stdin>";

/// History entries kept in memory and in the history file.
const HISTORY_LEN: usize = 1000;

pub fn main(args: ReplArgs) -> Result<i32, Fatal> {
    let ReplSettings {
        language,
        limits,
        capabilities,
    } = ReplSettings::resolve(&args)?;
    let max_output_bytes = limits.max_output_bytes;
    let interactive = std::io::stdin().is_terminal();
    let output = Arc::new(ReplOutput::default());
    let mut builder = SessionBuilder::new(language);
    builder
        .limits(limits)
        .capabilities(capabilities)
        .argv(vec![String::new()])
        // The REPL's own input is the host's stdin; the guest's is empty.
        .stdin(Stdin::Empty)
        .output_sink(output.clone());
    let engine = Engine::builder()
        .on_progress(report::progress)
        // One process, few sandboxes: reserving a pool costs more than it saves.
        .pooling(false)
        .build()
        .map_err(|err| Fatal::internal(err.to_string()))?;
    let runtime = async_runtime()?;
    let session = match runtime.block_on(builder.start(&engine)) {
        Ok(session) => session,
        Err(StartError::Limit(status)) => {
            report_status(&status, language);
            return Ok(status.exit_code());
        }
        Err(StartError::Engine(err)) => return Err(bug(err)),
    };
    if interactive {
        // From now on Ctrl-C while an entry runs stops the entry instead of
        // goru (the handler stays for the life of the process). At a prompt
        // the terminal is in raw mode and Ctrl-C is a key, not a signal.
        // Registered after the first start, so that Ctrl-C still ends goru
        // while a guest is compiled on first use.
        let _guard = runtime.enter();
        let _registered = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(|err| Fatal::internal(format!("could not handle Ctrl-C: {err}")))?;
    }
    let mut repl = Repl {
        language,
        engine,
        builder,
        session,
        runtime,
        output,
        interactive,
        failed: false,
        max_output_bytes,
    };
    if interactive {
        eprintln!("{}", welcome(language));
        let mut input = Terminal::new(language)?;
        repl.run(&mut input)
    } else {
        let mut input = Piped {
            stdin: std::io::stdin().lock(),
            line: 0,
        };
        repl.run(&mut input)
    }
}

fn welcome(language: Language) -> String {
    let name = match language {
        Language::Python => "Python (CPython 3.14)",
        Language::JavaScript => "JavaScript (QuickJS-NG 0.16.2)",
    };
    format!(
        "goru {} repl: {name} in a WebAssembly sandbox. Ctrl-D exits, Ctrl-C clears the input.",
        env!("CARGO_PKG_VERSION")
    )
}

fn bug(err: Error) -> Fatal {
    Fatal {
        message: err.to_string(),
        hint: Some("this is a bug in goru or its build; please report it".into()),
        code: exit_code::INTERNAL,
    }
}

/// One line of input, or why there is none.
enum Line {
    Text(String),
    /// Ctrl-C at the prompt.
    Interrupted,
    /// Ctrl-D on an empty line, or the end of piped input.
    Eof,
}

/// Where the REPL's lines come from.
trait Input {
    /// The next line; `more` when it continues an unfinished entry.
    fn read(&mut self, more: bool) -> Result<Line, Fatal>;
    /// Records a line the user entered in the history.
    fn remember(&mut self, _line: &str) {}
}

/// A terminal: line editing, prompts and history through `rustyline`.
struct Terminal {
    editor: Editor<(), DefaultHistory>,
    prompts: (&'static str, &'static str),
    /// Where history persists; `None`: in memory only.
    history_file: Option<PathBuf>,
}

impl Terminal {
    fn new(language: Language) -> Result<Self, Fatal> {
        let config = Config::builder()
            .max_history_size(HISTORY_LEN)
            .map_err(|err| Fatal::internal(format!("could not set up line editing: {err}")))?
            .auto_add_history(false)
            .build();
        let mut editor = Editor::with_config(config)
            .map_err(|err| Fatal::internal(format!("could not set up line editing: {err}")))?;
        let history_file = history_file(language);
        if let Some(path) = &history_file {
            // A missing or unreadable history is not worth a message: the
            // REPL works the same without it.
            let _ = editor.load_history(path);
        }
        let prompts = match language {
            Language::Python => (">>> ", "... "),
            Language::JavaScript => ("> ", "... "),
        };
        Ok(Terminal {
            editor,
            prompts,
            history_file,
        })
    }
}

impl Input for Terminal {
    fn read(&mut self, more: bool) -> Result<Line, Fatal> {
        let prompt = if more { self.prompts.1 } else { self.prompts.0 };
        match self.editor.readline(prompt) {
            Ok(line) => Ok(Line::Text(line)),
            Err(ReadlineError::Interrupted) => Ok(Line::Interrupted),
            Err(ReadlineError::Eof) => Ok(Line::Eof),
            Err(err) => Err(Fatal::internal(format!(
                "cannot read from the terminal: {err}"
            ))),
        }
    }

    fn remember(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        let _ = self.editor.history_mut().add(line);
        if let Some(path) = &self.history_file {
            // Appended entry by entry, so that an exit by `sys.exit()` or a
            // closed terminal keeps it too.
            let _ = self.editor.append_history(path);
        }
    }
}

/// The history file for `language`: `$GORU_HISTORY` (empty: none), else
/// `repl-history-LANG` in `$XDG_STATE_HOME/goru` or `~/.local/state/goru`,
/// a folder created private to the user.
fn history_file(language: Language) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env::HISTORY) {
        return (!path.is_empty()).then(|| PathBuf::from(path));
    }
    let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let dir = from_env("XDG_STATE_HOME")
        .map(|dir| PathBuf::from(dir).join("goru"))
        .or_else(|| from_env("HOME").map(|home| PathBuf::from(home).join(".local/state/goru")))?;
    let mut builder = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(builder.recursive(true), 0o700);
    builder.create(&dir).ok()?;
    Some(dir.join(format!("repl-history-{}", language.name())))
}

/// Piped input: lines as they come, no prompts, no history.
struct Piped<R> {
    stdin: R,
    line: usize,
}

impl<R: BufRead> Input for Piped<R> {
    fn read(&mut self, _more: bool) -> Result<Line, Fatal> {
        let mut bytes = Vec::new();
        let read = self
            .stdin
            .read_until(b'\n', &mut bytes)
            .map_err(|err| Fatal::usage(format!("cannot read stdin: {err}"), None))?;
        if read == 0 {
            return Ok(Line::Eof);
        }
        self.line += 1;
        if bytes.ends_with(b"\n") {
            bytes.pop();
            if bytes.ends_with(b"\r") {
                bytes.pop();
            }
        }
        String::from_utf8(bytes).map(Line::Text).map_err(|err| {
            Fatal::usage(
                format!(
                    "line {} of stdin is not valid UTF-8 (at byte {})",
                    self.line,
                    err.utf8_error().valid_up_to()
                ),
                Some("save the input as UTF-8".to_string()),
            )
        })
    }
}

/// How one call into the guest ended.
enum Call {
    Done(Outcome),
    /// Ctrl-C stopped it; the session is gone.
    Interrupted,
}

/// What to do after an entry.
enum Next {
    Prompt,
    Exit(i32),
}

struct Repl {
    language: Language,
    engine: Engine,
    builder: SessionBuilder,
    session: Session,
    runtime: CliRuntime,
    output: Arc<ReplOutput>,
    interactive: bool,
    /// Whether an entry failed (piped input exits with 1 then).
    failed: bool,
    /// The output limit, which also holds what an entry returns.
    max_output_bytes: u64,
}

impl Repl {
    /// Reads, checks and runs entries until the input ends or the code exits.
    fn run(&mut self, input: &mut dyn Input) -> Result<i32, Fatal> {
        let mut lines: Vec<String> = Vec::new();
        loop {
            self.end_line();
            let line = match input.read(!lines.is_empty())? {
                Line::Text(line) => line,
                Line::Interrupted => {
                    lines.clear();
                    continue;
                }
                Line::Eof if self.interactive => {
                    // Ctrl-D: an unfinished entry is dropped, as Ctrl-C would.
                    return Ok(0);
                }
                Line::Eof => {
                    // The end of piped input: a script's last block needs no
                    // blank line after it, so what is pending runs as it is.
                    if !lines.is_empty()
                        && let Next::Exit(code) = self.run_entry(&lines.join("\n"))?
                    {
                        return Ok(code);
                    }
                    return Ok(if self.failed { 1 } else { 0 });
                }
            };
            input.remember(&line);
            if lines.is_empty() && line.trim().is_empty() {
                continue;
            }
            lines.push(line);
            // Joined as CPython's interactive console does: a compound
            // statement is complete once the last line pushed is empty.
            let source = lines.join("\n");
            match self.check(&source)? {
                Check::Incomplete => continue,
                Check::Rejected => lines.clear(),
                Check::Complete => {
                    lines.clear();
                    if let Next::Exit(code) = self.run_entry(&source)? {
                        return Ok(code);
                    }
                }
                Check::Exit(code) => return Ok(code),
            }
        }
    }

    /// Asks the guest whether `source` is a complete entry.
    fn check(&mut self, source: &str) -> Result<Check, Fatal> {
        let status = match self.call(source, Mode::CheckComplete)? {
            Some((status, _)) => status,
            None => return Ok(Check::Rejected),
        };
        Ok(match status {
            Status::Incomplete => Check::Incomplete,
            Status::Ok { .. } => Check::Complete,
            Status::Exit(code) => Check::Exit(code),
            // A syntax error, or a limit hit (already reported).
            _ => Check::Rejected,
        })
    }

    /// Runs one complete entry and prints its value.
    fn run_entry(&mut self, source: &str) -> Result<Next, Fatal> {
        let (status, clipped) = match self.call(source, Mode::Repl)? {
            Some(called) => called,
            None => return Ok(Next::Prompt),
        };
        match status {
            Status::Ok { value: Some(value) } => {
                self.output.print_value(&value);
                if clipped {
                    report_clipped(Clipped::Value, self.max_output_bytes);
                }
            }
            Status::Exit(code) => return Ok(Next::Exit(code)),
            _ => {}
        }
        Ok(Next::Prompt)
    }

    /// Runs `source` in `mode`, reports failures, and replaces a session
    /// that did not survive. `None` when Ctrl-C stopped the call; else the
    /// status and whether what it returned was clipped.
    fn call(&mut self, source: &str, mode: Mode) -> Result<Option<(Status, bool)>, Fatal> {
        let interruptible = self.interactive;
        let session = &mut self.session;
        let call = self.runtime.block_on(async {
            let run = session.run_mode(source, FILENAME, mode);
            if !interruptible {
                return run.await.map(Call::Done);
            }
            tokio::select! {
                outcome = run => outcome.map(Call::Done),
                () = ctrl_c() => Ok(Call::Interrupted),
            }
        });
        let (status, clipped) = match call.map_err(bug)? {
            Call::Done(outcome) => (outcome.status, outcome.clipped),
            Call::Interrupted => {
                // The terminal echoed `^C` where the cursor was: start afresh.
                self.output.mid_line.store(false, Ordering::Relaxed);
                eprintln!();
                report::error("the entry was interrupted (Ctrl-C)", None);
                self.failed = true;
                self.restart()?;
                return Ok(None);
            }
        };
        if !matches!(
            status,
            Status::Ok { .. } | Status::Incomplete | Status::Exit(_)
        ) {
            self.failed = true;
            self.end_line();
            report_status(&status, self.language);
            if clipped && matches!(status, Status::Exception(_)) {
                report_clipped(Clipped::Exception, self.max_output_bytes);
            }
        }
        if !status.instance_survives() {
            self.restart()?;
        }
        Ok(Some((status, clipped)))
    }

    /// On a terminal, ends a line the guest left unfinished, so that what
    /// comes next (a message, a prompt) starts a line of its own.
    fn end_line(&self) {
        if self.interactive {
            self.output.end_line();
        }
    }

    /// Replaces a dead session with a fresh one.
    fn restart(&mut self) -> Result<(), Fatal> {
        match self.runtime.block_on(self.builder.start(&self.engine)) {
            Ok(session) => {
                self.session = session;
                report::note(&format!(
                    "started a fresh {} session: variables and definitions from before are lost",
                    self.language
                ));
                Ok(())
            }
            Err(StartError::Limit(status)) => {
                report_status(&status, self.language);
                Err(Fatal {
                    message: "could not start a fresh session".into(),
                    hint: None,
                    code: status.exit_code(),
                })
            }
            Err(StartError::Engine(err)) => Err(bug(err)),
        }
    }
}

/// The guest's verdict on the lines so far.
enum Check {
    /// More lines are needed.
    Incomplete,
    /// Run it.
    Complete,
    /// Not runnable (a syntax error, already reported): drop it.
    Rejected,
    Exit(i32),
}

/// Resolves at the next Ctrl-C (SIGINT); never, if it cannot be watched.
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Guest output, streamed to this process's stdout and stderr as it is
/// written (as `goru run` does), remembering whether the last thing
/// written ended a line, so that a prompt never starts mid-line.
#[derive(Default)]
struct ReplOutput {
    mid_line: AtomicBool,
}

impl ReplOutput {
    fn print_value(&self, value: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{value}").and_then(|_| out.flush());
        self.mid_line.store(false, Ordering::Relaxed);
    }

    /// Ends a line the guest left unfinished.
    fn end_line(&self) {
        if self.mid_line.swap(false, Ordering::Relaxed) {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(b"\n").and_then(|_| out.flush());
        }
    }
}

impl OutputSink for ReplOutput {
    fn write(&self, stream: Stream, bytes: &[u8]) {
        ProcessOutput.write(stream, bytes);
        if let Some(last) = bytes.last() {
            self.mid_line.store(*last != b'\n', Ordering::Relaxed);
        }
    }
}
