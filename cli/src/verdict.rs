//! `--report FILE`: how the run ended, as JSON, in a file the guest cannot
//! write to. The exit code alone cannot tell goru's verdicts from the
//! guest's own: `sys.exit(124)` exits 124 as a timeout does, and anything
//! goru writes to stderr the guest can write too.
//!
//! ```json
//! {"status": "timeout", "exitCode": 124, "durationMs": 2001.7}
//! ```
//!
//! `status` is the daemon's `outcome` vocabulary: `ok`, `exit` (the guest's
//! own exit code), `exception`, `timeout`, `memoryLimit`, `outputLimit`,
//! `crashed`, `cancelled`.

use crate::fatal::Fatal;
use goru_client::protocol::types::OutcomeKind;
use goru_runtimes::Status;
use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The run's verdict, as written to the report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Verdict {
    pub status: OutcomeKind,
    pub exit_code: i32,
    pub duration_ms: f64,
}

/// Where the verdict goes, opened before the run so that a path that
/// cannot be written is a usage error, not a lost result.
pub(crate) struct ReportFile {
    file: File,
    path: PathBuf,
}

impl ReportFile {
    pub(crate) fn create(path: &Path) -> Result<Self, Fatal> {
        let file = File::create(path).map_err(|err| {
            Fatal::usage(
                format!("cannot write the report to `{}`: {err}", path.display()),
                Some("give `--report` a file path in a writable directory".to_string()),
            )
        })?;
        Ok(ReportFile {
            file,
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn write(mut self, verdict: &Verdict) -> Result<(), Fatal> {
        let json = serde_json::to_string(verdict)
            .map_err(|err| Fatal::internal(format!("could not encode the report: {err}")))?;
        writeln!(self.file, "{json}")
            .and_then(|()| self.file.flush())
            .map_err(|err| {
                Fatal::usage(
                    format!(
                        "cannot write the report to `{}`: {err}",
                        self.path.display()
                    ),
                    None,
                )
            })
    }
}

/// The wire name of an in-process run's status.
pub(crate) fn outcome_kind(status: &Status) -> OutcomeKind {
    match status {
        Status::Ok { .. } => OutcomeKind::Ok,
        Status::Incomplete => OutcomeKind::Incomplete,
        Status::Exception(_) => OutcomeKind::Exception,
        Status::Exit(_) => OutcomeKind::Exit,
        Status::Timeout { .. } => OutcomeKind::Timeout,
        Status::MemoryLimit { .. } => OutcomeKind::MemoryLimit,
        Status::OutputLimit { .. } => OutcomeKind::OutputLimit,
        Status::Crashed { .. } => OutcomeKind::Crashed,
        Status::Cancelled => OutcomeKind::Cancelled,
    }
}
