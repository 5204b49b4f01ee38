//! `goru repl` driven as a person would: typed into a pseudo-terminal, line
//! by line, waiting for each prompt; and fed from a pipe, as scripts do.

use crate::common;

use common::{Run, goru_with_stdin};
use nix::sys::wait::WaitStatus;
use rexpect::reader::Options;
use rexpect::session::{PtySession, spawn_with_options};
use std::path::Path;
use std::process::Command;

/// How long one expectation may wait: the first run of a test binary may
/// compile a guest, which takes seconds.
const EXPECT_TIMEOUT_MS: u64 = 180_000;

/// A `goru repl` on a pseudo-terminal.
struct Terminal {
    pty: PtySession,
    /// The primary prompt (`>>> ` or `> `); the continuation one is `... `.
    prompt: &'static str,
}

impl Terminal {
    fn python(flags: &[&str], state: &Path) -> Self {
        Self::start("python", ">>> ", flags, state)
    }

    fn js(flags: &[&str], state: &Path) -> Self {
        Self::start("js", "> ", flags, state)
    }

    /// Starts `goru repl --lang LANG FLAGS...` with its history under
    /// `state`, and waits for its first prompt.
    fn start(lang: &str, prompt: &'static str, flags: &[&str], state: &Path) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_goru"));
        command
            .args(["repl", "--lang", lang])
            .args(flags)
            .env("TERM", "xterm")
            .env("NO_COLOR", "1")
            .env("XDG_STATE_HOME", state)
            .env_remove("GORU_HISTORY")
            .env_remove("GORU_LANG");
        let options = Options::default()
            .timeout_ms(Some(EXPECT_TIMEOUT_MS))
            .strip_ansi_escape_codes(true);
        let pty = spawn_with_options(command, options).expect("goru repl starts on a pty");
        let mut terminal = Terminal { pty, prompt };
        let banner = terminal.expect(prompt);
        assert!(
            banner.contains("in a WebAssembly sandbox") && banner.contains("Ctrl-D"),
            "a welcome line naming the language and how to exit: {banner:?}"
        );
        terminal
    }

    /// Waits for `text`; returns what was printed before it.
    #[track_caller]
    fn expect(&mut self, text: &str) -> String {
        match self.pty.exp_string(text) {
            Ok(before) => before,
            Err(err) => panic!("expected {text:?} from goru repl: {err}"),
        }
    }

    /// Types `line` and Enter, waits for the next prompt, and returns what
    /// was printed in between (without the echo of the line itself), with
    /// the terminal's `\r` removed. `Next` says which prompt came.
    #[track_caller]
    fn enter(&mut self, line: &str) -> (String, Next) {
        self.pty.send(line).unwrap();
        self.pty.send("\r").unwrap();
        self.pty.flush().unwrap();
        self.next_prompt(line)
    }

    /// [`Terminal::enter`] for a line after which the primary prompt must
    /// come; returns the output.
    #[track_caller]
    fn run(&mut self, line: &str) -> String {
        let (output, next) = self.enter(line);
        assert_eq!(next, Next::Entry, "after {line:?}: {output:?}");
        output
    }

    /// [`Terminal::enter`] for a line that leaves the entry unfinished;
    /// returns the output, which must be empty.
    #[track_caller]
    fn more(&mut self, line: &str) {
        let (output, next) = self.enter(line);
        assert_eq!(next, Next::More, "after {line:?}: {output:?}");
        assert_eq!(output, "", "nothing may run before the entry is complete");
    }

    #[track_caller]
    fn next_prompt(&mut self, echoed: &str) -> (String, Next) {
        // Prompts are drawn at the start of a line; `>` and ` ` need no
        // escaping in a regex.
        let pattern = format!("(\r{}|\r\\.\\.\\. )", self.prompt);
        let (before, prompt) = match self.pty.exp_regex(&pattern) {
            Ok(found) => found,
            Err(err) => panic!("expected a prompt after typing {echoed:?}: {err}"),
        };
        let next = if prompt.contains("...") {
            Next::More
        } else {
            Next::Entry
        };
        let text = before.replace('\r', "");
        // The first line is the terminal's echo of what was typed.
        let output = match text.split_once('\n') {
            Some((echo, rest)) => {
                assert_eq!(echo, echoed, "the echo of the typed line");
                rest.to_string()
            }
            None => text,
        };
        (output, next)
    }

    /// Sends a control key, e.g. `c` for Ctrl-C.
    fn control(&mut self, key: char) {
        self.pty.send_control(key).unwrap();
    }

    /// Presses Ctrl-D and returns the exit code.
    #[track_caller]
    fn exit_with_ctrl_d(mut self) -> i32 {
        self.control('d');
        self.exit_code()
    }

    #[track_caller]
    fn exit_code(mut self) -> i32 {
        if let Err(err) = self.pty.exp_eof() {
            panic!("expected goru repl to exit: {err}");
        }
        match self.pty.process().wait().unwrap() {
            WaitStatus::Exited(_, code) => code,
            other => panic!("goru repl ended with {other:?}"),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// The primary prompt: the REPL waits for a new entry.
    Entry,
    /// The continuation prompt `... `: the entry needs more lines.
    More,
}

fn state_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ---------------------------------------------------------------- Python

#[test]
fn python_prints_values_keeps_the_last_in_underscore_and_exits_on_ctrl_d() {
    let state = state_dir();
    let mut repl = Terminal::python(&[], state.path());
    assert_eq!(repl.run("x = 41"), "");
    assert_eq!(repl.run("x + 1"), "42\n");
    assert_eq!(repl.run("_"), "42\n");
    assert_eq!(repl.run("_ * 2"), "84\n");
    assert_eq!(repl.run("print('out'); None"), "out\n");
    assert_eq!(repl.run("'text'"), "'text'\n");
    assert_eq!(repl.exit_with_ctrl_d(), 0);
}

#[test]
fn python_block_runs_only_after_the_blank_line_that_ends_it() {
    let state = state_dir();
    let mut repl = Terminal::python(&[], state.path());
    // The default value is evaluated when the `def` runs: it shows when.
    repl.more("def f(marker=print('defined')):");
    repl.more("    y = 20");
    repl.more("    return y + 1");
    assert_eq!(repl.run(""), "defined\n");
    assert_eq!(repl.run("f() * 2"), "42\n");
    repl.more("for i in range(2):");
    repl.more("    print('tick', i)");
    assert_eq!(repl.run(""), "tick 0\ntick 1\n");
    assert_eq!(repl.exit_with_ctrl_d(), 0);
}

#[test]
fn python_exception_prints_its_traceback_and_the_session_goes_on() {
    let state = state_dir();
    let mut repl = Terminal::python(&[], state.path());
    assert_eq!(repl.run("x = 5"), "");
    assert_eq!(
        repl.run("x / 0"),
        "Traceback (most recent call last):\n  \
         File \"<stdin>\", line 1, in <module>\n    \
         x / 0\n    \
         ~~^~~\n\
         ZeroDivisionError: division by zero\n"
    );
    let syntax = repl.run("x = = 1");
    assert!(syntax.contains("SyntaxError"), "{syntax:?}");
    assert_eq!(repl.run("x"), "5\n");
    assert_eq!(repl.exit_with_ctrl_d(), 0);
}

#[test]
fn python_ctrl_c_clears_the_pending_block_and_keeps_the_variables() {
    let state = state_dir();
    let mut repl = Terminal::python(&[], state.path());
    assert_eq!(repl.run("y = 7"), "");
    repl.more("for i in range(3):");
    repl.more("    print('ran', i)");
    repl.control('c');
    // A fresh primary prompt: the block is gone, not run.
    let (output, next) = repl.next_prompt("");
    assert_eq!(next, Next::Entry, "{output:?}");
    assert!(!output.contains("ran"), "{output:?}");
    assert_eq!(repl.run("y"), "7\n");
    assert_eq!(repl.run("print('after')"), "after\n");
    assert_eq!(repl.exit_with_ctrl_d(), 0);
}

#[test]
fn python_lines_typed_ahead_while_an_entry_runs_all_run_in_order() {
    let state = state_dir();
    let mut repl = Terminal::python(&[], state.path());
    repl.pty
        .send("import time; time.sleep(0.5); print('slept', 6 * 7)\r")
        .unwrap();
    repl.pty.flush().unwrap();
    repl.expect("time.sleep(0.5)");
    // While that runs, a pasted block and the lines after it, in one write
    // (no bracketed paste: the terminal holds them until goru reads).
    // Each output (`row 10`) differs from its echo (`i * 10`), so what is
    // expected below can only be output.
    repl.pty
        .send(
            "for i in range(3):\r    print('row', i * 10)\r\r\
             print('then', 2 + 3)\rprint('last', 7 * 11)\r",
        )
        .unwrap();
    repl.pty.flush().unwrap();
    for output in ["slept 42", "row 0", "row 10", "row 20", "then 5", "last 77"] {
        repl.expect(output);
    }
    let (rest, next) = repl.next_prompt("");
    assert_eq!(next, Next::Entry, "nothing is left pending: {rest:?}");
    assert_eq!(repl.run("print('still', 1 + 1)"), "still 2\n");
    assert_eq!(repl.exit_with_ctrl_d(), 0);
}

#[test]
fn python_ctrl_c_stops_a_running_entry_and_a_fresh_session_starts() {
    let state = state_dir();
    let mut repl = Terminal::python(&["--timeout", "120s"], state.path());
    assert_eq!(repl.run("z = 1"), "");
    repl.more("def spin():");
    repl.more("    print('spinning', flush=True)");
    repl.more("    while True: pass");
    assert_eq!(repl.run(""), "");
    repl.pty.send("spin()\r").unwrap();
    repl.pty.flush().unwrap();
    repl.expect("spinning");
    repl.control('c');
    let (output, next) = repl.next_prompt("");
    assert_eq!(next, Next::Entry);
    assert!(
        output.contains("error: the entry was interrupted (Ctrl-C)")
            && output.contains("started a fresh python session"),
        "{output:?}"
    );
    let lost = repl.run("z");
    assert!(
        lost.contains("NameError: name 'z' is not defined"),
        "{lost:?}"
    );
    assert_eq!(repl.run("1 + 1"), "2\n");
    assert_eq!(repl.exit_with_ctrl_d(), 0);
}

#[test]
fn python_a_limit_restarts_the_session_and_says_the_state_is_lost() {
    let state = state_dir();
    let mut repl = Terminal::python(&["--timeout", "1s"], state.path());
    assert_eq!(repl.run("kept = 1"), "");
    repl.more("while True:");
    repl.more("    pass");
    let output = repl.run("");
    assert!(
        output.contains("error: the run timed out after 1s")
            && output.contains(
                "started a fresh python session: variables and definitions from before are lost"
            ),
        "{output:?}"
    );
    let lost = repl.run("kept");
    assert!(lost.contains("NameError"), "{lost:?}");
    assert_eq!(repl.run("2 + 2"), "4\n");
    assert_eq!(repl.exit_with_ctrl_d(), 0);
}

#[test]
fn python_sys_exit_ends_the_repl_with_its_code() {
    let state = state_dir();
    let mut repl = Terminal::python(&[], state.path());
    assert_eq!(repl.run("import sys"), "");
    repl.pty.send("sys.exit(3)\r").unwrap();
    repl.pty.flush().unwrap();
    assert_eq!(repl.exit_code(), 3);
}

#[test]
fn history_is_recalled_with_the_up_arrow_across_runs() {
    let state = state_dir();
    let mut first = Terminal::python(&[], state.path());
    assert_eq!(first.run("marker = 6 * 7"), "");
    assert_eq!(first.exit_with_ctrl_d(), 0);
    let file = state.path().join("goru/repl-history-python");
    let saved = std::fs::read_to_string(&file).expect("the history file was written");
    assert!(saved.contains("marker = 6 * 7"), "{saved:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the history is private to the user");

    let mut second = Terminal::python(&[], state.path());
    second.pty.send("\x1b[A").unwrap(); // Up: the line comes back...
    second.pty.flush().unwrap();
    second.expect("marker = 6 * 7");
    second.pty.send("\r").unwrap(); // ...and Enter runs it again
    second.pty.flush().unwrap();
    second.expect("\r\n");
    second.expect(second.prompt);
    assert_eq!(second.run("marker"), "42\n");
    assert_eq!(second.exit_with_ctrl_d(), 0);
}

// ---------------------------------------------------------------- JavaScript

#[test]
fn js_prints_values_and_keeps_the_last_in_underscore() {
    let state = state_dir();
    let mut repl = Terminal::js(&[], state.path());
    assert_eq!(repl.run("let a = 2"), "");
    assert_eq!(repl.run("a * 21"), "42\n");
    assert_eq!(repl.run("_ + 1"), "43\n");
    assert_eq!(repl.run("console.log('out')"), "out\n");
    assert_eq!(repl.exit_with_ctrl_d(), 0);
}

#[test]
fn js_multi_line_function_runs_once_complete() {
    let state = state_dir();
    let mut repl = Terminal::js(&[], state.path());
    repl.more("function twice(x) {");
    repl.more("  console.log('called');");
    repl.more("  return x * 2;");
    assert_eq!(repl.run("}"), "");
    assert_eq!(repl.run("twice(21)"), "called\n42\n");
    // An unfinished call is not run before its closing parenthesis.
    repl.more("console.log(");
    repl.more("  'late'");
    assert_eq!(repl.run(")"), "late\n");
    assert_eq!(repl.exit_with_ctrl_d(), 0);
}

#[test]
fn js_thrown_error_prints_and_the_repl_goes_on() {
    let state = state_dir();
    let mut repl = Terminal::js(&[], state.path());
    assert_eq!(repl.run("let keep = 1"), "");
    let thrown = repl.run("throw new Error('boom')");
    assert!(thrown.starts_with("Error: boom\n"), "{thrown:?}");
    assert_eq!(repl.run("keep + 1"), "2\n");
    assert_eq!(repl.exit_with_ctrl_d(), 0);
}

// ---------------------------------------------------------------- piped

fn repl_piped(flags: &[&str], input: &str) -> Run {
    let mut args = vec!["repl"];
    args.extend(flags);
    goru_with_stdin(&args, input.as_bytes())
}

#[test]
fn piped_python_runs_entry_by_entry_without_prompts() {
    let input = "x = 41\n\
                 x + 1\n\
                 def f():\n    \
                     return x * 2\n\
                 \n\
                 1 / 0\n\
                 f()\n\
                 _\n\
                 for i in range(2):\n    \
                     print(i)\n";
    let run = repl_piped(&["-l", "py"], input);
    // An entry raised: the REPL went on, and the exit code says so.
    run.assert_code(1);
    // The last block runs at the end of input without a blank line after it.
    assert_eq!(run.stdout, "42\n82\n82\n0\n1\n");
    assert_eq!(
        run.stderr,
        "Traceback (most recent call last):\n  \
         File \"<stdin>\", line 1, in <module>\n    \
         1 / 0\n    \
         ~~^~~\n\
         ZeroDivisionError: division by zero\n"
    );
}

#[test]
fn piped_input_without_failures_exits_0_and_python_is_the_default() {
    let run = repl_piped(&[], "print('hi')\n[1, 2] * 2\n");
    run.assert_code(0);
    assert_eq!(run.stdout, "hi\n[1, 2, 1, 2]\n");
    assert_eq!(run.stderr, "");
}

#[test]
fn piped_js_runs_entry_by_entry() {
    let input = "let a = 2\n\
                 function f(x) {\n  \
                   return x * a;\n\
                 }\n\
                 f(21)\n\
                 _ + 1\n";
    let run = repl_piped(&["-l", "js"], input);
    run.assert_code(0);
    assert_eq!(run.stdout, "42\n43\n");
    assert_eq!(run.stderr, "");
}

#[test]
fn piped_sys_exit_ends_the_repl_with_its_code() {
    let run = repl_piped(
        &["-l", "python"],
        "print('before')\nimport sys\nsys.exit(5)\nprint('after')\n",
    );
    run.assert_code(5);
    assert_eq!(run.stdout, "before\n");
}

#[test]
fn limit_and_capability_flags_apply_to_the_repl() {
    let run = repl_piped(
        &["-l", "py", "--kv", "--timeout", "1s"],
        "kv.set('a', 41)\nkv.get('a') + 1\nwhile True: pass\n\nkv.get('a', 'gone')\n",
    );
    run.assert_code(1);
    // The timeout killed the session; a fresh one (with a fresh kv) took over.
    assert_eq!(run.stdout, "42\n'gone'\n");
    assert!(
        run.stderr.contains("error: the run timed out after 1s")
            && run.stderr.contains("started a fresh python session"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unknown_language_is_a_usage_error() {
    let run = repl_piped(&["-l", "ruby"], "");
    run.assert_code(2);
    assert!(
        run.stderr.contains("unknown language `ruby`"),
        "{}",
        run.stderr
    );
}

#[test]
fn piped_a_huge_value_is_cut_at_the_output_limit_and_says_so() {
    for (lang, entry) in [
        ("py", "'C' * 30_000_000\n"),
        ("js", "'C'.repeat(30_000_000)\n"),
    ] {
        let run = repl_piped(&["-l", lang, "--max-output", "1KiB"], entry);
        run.assert_code(0);
        // 1 KiB of the value, and the newline that ends it.
        assert_eq!(run.stdout.len(), 1025, "{lang}");
        assert!(run.stdout.starts_with("'CCC"), "{lang}");
        assert!(
            run.stderr.contains("warning: the value was cut short"),
            "{lang}: {}",
            run.stderr
        );
    }
}
