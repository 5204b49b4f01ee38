//! The guest's stdout and stderr: counted against the output cap, then either
//! captured into the outcome or handed to a sink as they are written.

use crate::outcome::Stream;
use bytes::Bytes;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// Receives guest output as it is written, in the order it was written
/// across both streams. Called on the thread running the guest: keep it quick.
pub trait OutputSink: Send + Sync {
    fn write(&self, stream: Stream, bytes: &[u8]);
}

/// The largest write the guest is offered at once. WASI copies a guest write
/// into a host buffer of this size at most, so a guest cannot make the host
/// allocate more per call.
const WRITE_PERMIT: usize = 64 * 1024;

/// Where a run's output goes, shared by the two streams so that a sink sees
/// stdout and stderr interleaved as the guest wrote them.
#[derive(Clone)]
pub(crate) struct OutputRouter {
    state: Arc<Mutex<RouterState>>,
}

struct RouterState {
    cap: u64,
    written: [u64; 2],
    captured: [Vec<u8>; 2],
    sink: Option<Arc<dyn OutputSink>>,
    limit_hit: Option<Stream>,
}

fn index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

impl OutputRouter {
    pub(crate) fn new() -> Self {
        OutputRouter {
            state: Arc::new(Mutex::new(RouterState {
                cap: 0,
                written: [0, 0],
                captured: [Vec::new(), Vec::new()],
                sink: None,
                limit_hit: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, RouterState> {
        // A panic while holding the lock cannot leave the counters torn in a
        // way that matters more than losing output; keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a run: resets the counters, sets the cap and the sink.
    pub(crate) fn begin(&self, cap: u64, sink: Option<Arc<dyn OutputSink>>) {
        let mut state = self.lock();
        state.cap = cap;
        state.written = [0, 0];
        state.captured = [Vec::new(), Vec::new()];
        state.sink = sink;
        state.limit_hit = None;
    }

    /// Ends a run: returns the captured stdout and stderr and which stream,
    /// if any, went over the cap.
    pub(crate) fn finish(&self) -> (Vec<u8>, Vec<u8>, Option<Stream>) {
        let mut state = self.lock();
        state.sink = None;
        let [stdout, stderr] = std::mem::take(&mut state.captured);
        (stdout, stderr, state.limit_hit)
    }

    /// Bytes `stream` may still take under the cap in this run.
    pub(crate) fn room(&self, stream: Stream) -> u64 {
        let state = self.lock();
        state.cap.saturating_sub(state.written[index(stream)])
    }

    pub(crate) fn stream(&self, stream: Stream) -> GuestOutput {
        GuestOutput {
            router: self.clone(),
            stream,
        }
    }

    /// Delivers what fits under the cap; `false` when some bytes did not fit.
    fn deliver(&self, stream: Stream, bytes: &[u8]) -> bool {
        let mut state = self.lock();
        let i = index(stream);
        let room = state.cap.saturating_sub(state.written[i]);
        let fits = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let accepted = &bytes[..fits];
        state.written[i] += fits as u64;
        if !accepted.is_empty() {
            match &state.sink {
                Some(sink) => sink.write(stream, accepted),
                None => state.captured[i].extend_from_slice(accepted),
            }
        }
        if fits < bytes.len() {
            state.limit_hit.get_or_insert(stream);
            return false;
        }
        true
    }
}

/// Cuts `text` to at most `room` bytes, at a character boundary; whether
/// it cut anything. What a run returns besides its output (an exception's
/// message and traceback, a REPL value) is shown on a stream too, so it is
/// held to the same cap: a guest could otherwise print without limit by
/// raising, and make a daemon hold and send it.
pub(crate) fn clip(text: &mut String, room: u64) -> bool {
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    if text.len() <= room {
        return false;
    }
    let mut end = room;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.shrink_to_fit();
    true
}

/// One guest stream (stdout or stderr) as WASI sees it.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    router: OutputRouter,
    stream: Stream,
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if self.router.deliver(self.stream, &bytes) {
            Ok(())
        } else {
            // A trap, not an I/O error: the guest must not be able to catch
            // it and carry on printing into the void.
            Err(StreamError::trap("output limit exceeded"))
        }
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always offer a full permit: `write` enforces the cap. Offering 0
        // would make the guest wait for readiness forever.
        Ok(WRITE_PERMIT)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.router.deliver(self.stream, buf) {
            Poll::Ready(Ok(buf.len()))
        } else {
            Poll::Ready(Err(io::Error::other("output limit exceeded")))
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Recorder(Mutex<Vec<(Stream, Vec<u8>)>>);
    impl OutputSink for Recorder {
        fn write(&self, stream: Stream, bytes: &[u8]) {
            self.0.lock().unwrap().push((stream, bytes.to_vec()));
        }
    }

    #[test]
    fn captures_up_to_the_cap_per_stream() {
        let router = OutputRouter::new();
        router.begin(5, None);
        let mut out = router.stream(Stream::Stdout);
        let mut err = router.stream(Stream::Stderr);
        assert!(out.write(Bytes::from_static(b"abc")).is_ok());
        assert!(err.write(Bytes::from_static(b"12345")).is_ok());
        assert!(out.write(Bytes::from_static(b"defg")).is_err());
        let (stdout, stderr, hit) = router.finish();
        assert_eq!(stdout, b"abcde");
        assert_eq!(stderr, b"12345");
        assert_eq!(hit, Some(Stream::Stdout));
    }

    #[test]
    fn a_sink_sees_streams_interleaved_in_order() {
        let router = OutputRouter::new();
        let recorder = Arc::new(Recorder(Mutex::new(Vec::new())));
        router.begin(100, Some(recorder.clone()));
        router
            .stream(Stream::Stdout)
            .write(Bytes::from_static(b"1"))
            .unwrap();
        router
            .stream(Stream::Stderr)
            .write(Bytes::from_static(b"2"))
            .unwrap();
        router
            .stream(Stream::Stdout)
            .write(Bytes::from_static(b"3"))
            .unwrap();
        let (stdout, _, hit) = router.finish();
        assert!(stdout.is_empty(), "streamed output is not also captured");
        assert_eq!(hit, None);
        let seen = recorder.0.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![
                (Stream::Stdout, b"1".to_vec()),
                (Stream::Stderr, b"2".to_vec()),
                (Stream::Stdout, b"3".to_vec())
            ]
        );
    }

    #[test]
    fn clipping_keeps_what_fits_and_never_splits_a_character() {
        let mut text = "abc".to_string();
        assert!(!clip(&mut text, 3));
        assert_eq!(text, "abc");
        assert!(clip(&mut text, 2));
        assert_eq!(text, "ab");
        // "é" is two bytes: a room of 2 after "a" keeps "a" alone.
        let mut text = "aé".to_string();
        assert!(clip(&mut text, 2));
        assert_eq!(text, "a");
        let mut text = "x".to_string();
        assert!(clip(&mut text, 0));
        assert_eq!(text, "");
    }

    #[test]
    fn room_is_what_is_left_of_the_cap() {
        let router = OutputRouter::new();
        router.begin(10, None);
        assert_eq!(router.room(Stream::Stderr), 10);
        router
            .stream(Stream::Stderr)
            .write(Bytes::from_static(b"1234"))
            .unwrap();
        assert_eq!(router.room(Stream::Stderr), 6);
        assert_eq!(router.room(Stream::Stdout), 10);
    }

    #[test]
    fn a_new_run_starts_from_zero() {
        let router = OutputRouter::new();
        router.begin(3, None);
        assert!(
            router
                .stream(Stream::Stdout)
                .write(Bytes::from_static(b"abcd"))
                .is_err()
        );
        router.finish();
        router.begin(3, None);
        assert!(
            router
                .stream(Stream::Stdout)
                .write(Bytes::from_static(b"abc"))
                .is_ok()
        );
        assert_eq!(router.finish(), (b"abc".to_vec(), Vec::new(), None));
    }
}
