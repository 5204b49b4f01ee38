//! Guest output as this process's own.

use goru_runtimes::{OutputSink, Stream};
use std::io::Write;

/// Writes guest output straight to this process's stdout and stderr.
pub(crate) struct ProcessOutput;

impl OutputSink for ProcessOutput {
    fn write(&self, stream: Stream, bytes: &[u8]) {
        // A closed pipe (`goru ... | head`) is not an error of the run.
        let _ = match stream {
            Stream::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|_| out.flush())
            }
            Stream::Stderr => {
                let mut err = std::io::stderr().lock();
                err.write_all(bytes).and_then(|_| err.flush())
            }
        };
    }
}
