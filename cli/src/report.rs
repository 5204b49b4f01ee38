//! Messages to the user: what went wrong, then a `hint:` with what to do.
//! Colours only on a terminal, and never when `NO_COLOR` is set.

use std::io::{IsTerminal, Write};

fn colour() -> bool {
    std::env::var_os(crate::cli::env::NO_COLOR).is_none() && std::io::stderr().is_terminal()
}

fn paint(text: &str, code: &str) -> String {
    if colour() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Prints `error: <message>` and, if given, `hint: <hint>` to stderr.
pub fn error(message: &str, hint: Option<&str>) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{}: {message}", paint("error", "1;31"));
    if let Some(hint) = hint {
        let _ = writeln!(stderr, "{}: {hint}", paint("hint", "1;36"));
    }
    let _ = stderr.flush();
}

/// Prints `warning: <message>` and, if given, `hint: <hint>` to stderr: for
/// a run that went on, but not quite as written.
pub fn warning(message: &str, hint: Option<&str>) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{}: {message}", paint("warning", "1;33"));
    if let Some(hint) = hint {
        let _ = writeln!(stderr, "{}: {hint}", paint("hint", "1;36"));
    }
    let _ = stderr.flush();
}

/// Prints a progress line for a slow first-time step.
pub fn progress(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{} {line}", paint("goru:", "2"));
    let _ = stderr.flush();
}

/// Prints a note about what goru did on the user's behalf (`goru repl`
/// starting a fresh session, for one).
pub fn note(line: &str) {
    progress(line);
}
