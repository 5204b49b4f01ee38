//! [`Fatal`]: a failure before or around a run, as the user is told it.

use goru_runtimes::exit_code;

/// A failure before or around the run, with what to tell the user.
pub(crate) struct Fatal {
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
    pub(crate) code: i32,
}

impl Fatal {
    pub(crate) fn usage(message: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        Fatal {
            message: message.into(),
            hint: hint.into(),
            code: exit_code::USAGE,
        }
    }

    /// goru itself failed (exit 70).
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Fatal {
            message: message.into(),
            hint: None,
            code: exit_code::INTERNAL,
        }
    }
}
