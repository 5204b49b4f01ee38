//! The async runtime the CLI's commands run on.

use crate::fatal::Fatal;

/// The single-threaded runtime the CLI's commands run on.
pub(crate) fn async_runtime() -> Result<CliRuntime, Fatal> {
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
