//! What the sections share: percentiles of samples, times as the report
//! writes them, and the native interpreters' own paths.

use std::process::Command;
use std::time::Duration;

/// The interpreter's own path (`sys.executable`, `process.execPath`).
pub(crate) fn real_executable(program: &str) -> String {
    let probe: &[&str] = match program {
        "python3" => &["-c", "import sys; print(sys.executable)"],
        _ => &["-p", "process.execPath"],
    };
    let output = Command::new(program)
        .args(probe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

pub(crate) fn median(mut samples: Vec<Duration>) -> Duration {
    percentiles(&mut samples).0
}

pub(crate) fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

pub(crate) fn ms(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1e3;
    if ms < 1.0 {
        format!("{ms:.3} ms")
    } else {
        format!("{ms:.1} ms")
    }
}
