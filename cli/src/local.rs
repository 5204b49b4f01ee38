//! `goru` / `goru run` without `--connect`: the run in this process's own
//! engine.

use crate::fatal::Fatal;
use crate::outcome::{Clipped, report_clipped, report_status};
use crate::output::ProcessOutput;
use crate::runtime::async_runtime;
use crate::settings::RunSettings;
use crate::{report, verdict};
use goru_runtimes::{Engine, SessionBuilder, exit_code};
use std::sync::Arc;

pub(crate) fn run(settings: RunSettings) -> Result<i32, Fatal> {
    let RunSettings {
        limits,
        capabilities,
        report: report_file,
        program,
    } = settings;
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
