//! What a run showed, for the assertions the engine's test files share.
#![allow(dead_code)]

use goru_runtimes::{GuestException, Outcome, Status};

/// The stdout of a run that must have ended `Ok` without a value.
#[track_caller]
pub fn stdout(outcome: &Outcome) -> String {
    assert_eq!(
        outcome.status,
        Status::Ok { value: None },
        "stderr: {}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    String::from_utf8(outcome.stdout.clone()).unwrap()
}

/// The exception a run must have ended with.
#[track_caller]
pub fn guest_exception(outcome: &Outcome) -> &GuestException {
    match &outcome.status {
        Status::Exception(e) => e,
        other => panic!(
            "expected an exception, got {other:?}; stdout: {}; stderr: {}",
            String::from_utf8_lossy(&outcome.stdout),
            String::from_utf8_lossy(&outcome.stderr)
        ),
    }
}

/// That exception's type and message.
#[track_caller]
pub fn exception(outcome: &Outcome) -> (&str, &str) {
    let e = guest_exception(outcome);
    (e.type_name.as_str(), e.message.as_str())
}
