//! What the user is told about a run that did not simply finish: the
//! error and the hint for each status, and the traceback of an exception.

use crate::report;
use goru_runtimes::{Language, MAX_MEMORY_BYTES, Status};
use std::io::Write;

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
pub(crate) fn report_status(status: &Status, language: Language) {
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
pub(crate) enum Clipped {
    Exception,
    Value,
}

impl Clipped {
    pub(crate) fn of(status: &Status) -> Self {
        match status {
            Status::Exception(_) => Clipped::Exception,
            _ => Clipped::Value,
        }
    }
}

/// Says that the exception or value shown was cut short.
pub(crate) fn report_clipped(what: Clipped, limit: u64) {
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
pub(crate) fn print_traceback(traceback: &str) {
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
