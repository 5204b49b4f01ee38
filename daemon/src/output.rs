//! Where a daemon session's output goes during a run: captured for the
//! result, or streamed to the client as `run/output` notifications.
//!
//! The engine caps what reaches the sink at the run's output limit per
//! stream, so neither the capture nor the queue of notifications can grow
//! past it.

use goru_runtimes::{OutputSink, Stream};
use std::sync::Mutex;
use tokio::sync::mpsc;

/// One piece of streamed output, already valid UTF-8.
pub(crate) type Chunk = (Stream, String);

/// The sink a daemon session is built with; switched per run.
#[derive(Default)]
pub(crate) struct RunOutput {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    captured: [Vec<u8>; 2],
    stream: Option<mpsc::UnboundedSender<Chunk>>,
    /// The start of a UTF-8 sequence split across writes, per stream.
    partial: [Vec<u8>; 2],
}

fn index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

impl RunOutput {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a run: capture, or stream to `stream`.
    pub(crate) fn begin(&self, stream: Option<mpsc::UnboundedSender<Chunk>>) {
        *self.state() = State {
            stream,
            ..State::default()
        };
    }

    /// Ends a run: the captured stdout and stderr (empty when streamed),
    /// after sending what was left of a split character.
    pub(crate) fn finish(&self) -> (String, String) {
        let mut state = self.state();
        if let Some(tx) = state.stream.take() {
            for stream in [Stream::Stdout, Stream::Stderr] {
                let rest = std::mem::take(&mut state.partial[index(stream)]);
                if !rest.is_empty() {
                    let _ = tx.send((stream, String::from_utf8_lossy(&rest).into_owned()));
                }
            }
        }
        let [stdout, stderr] = std::mem::take(&mut state.captured);
        (
            String::from_utf8_lossy(&stdout).into_owned(),
            String::from_utf8_lossy(&stderr).into_owned(),
        )
    }
}

impl OutputSink for RunOutput {
    fn write(&self, stream: Stream, bytes: &[u8]) {
        let mut state = self.state();
        let i = index(stream);
        let Some(tx) = state.stream.clone() else {
            state.captured[i].extend_from_slice(bytes);
            return;
        };
        let partial = &mut state.partial[i];
        partial.extend_from_slice(bytes);
        let text = take_complete_utf8(partial);
        if !text.is_empty() {
            // The receiver is gone only when the run is over; nothing to do.
            let _ = tx.send((stream, text));
        }
    }
}

/// Removes and returns the longest prefix of `bytes` that does not end in
/// the middle of a character; invalid bytes become U+FFFD.
fn take_complete_utf8(bytes: &mut Vec<u8>) -> String {
    let mut text = String::new();
    let mut rest: &[u8] = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                text.push_str(valid);
                rest = &[];
                break;
            }
            Err(err) => {
                let (valid, after) = rest.split_at(err.valid_up_to());
                text.push_str(std::str::from_utf8(valid).expect("checked valid"));
                match err.error_len() {
                    Some(bad) => {
                        text.push(char::REPLACEMENT_CHARACTER);
                        rest = &after[bad..];
                    }
                    // A character cut off at the end: keep it for the next write.
                    None => {
                        rest = after;
                        break;
                    }
                }
            }
        }
    }
    let kept = rest.to_vec();
    *bytes = kept;
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_across_writes_arrives_whole() {
        let output = RunOutput::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        output.begin(Some(tx));
        let snowman = "☃".as_bytes();
        output.write(Stream::Stdout, &[b'a', snowman[0]]);
        output.write(Stream::Stdout, &snowman[1..]);
        output.write(Stream::Stderr, &[0xff, b'b']);
        output.write(Stream::Stdout, &snowman[..2]);
        assert_eq!(output.finish(), (String::new(), String::new()));
        let mut seen = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            seen.push(chunk);
        }
        assert_eq!(
            seen,
            vec![
                (Stream::Stdout, "a".to_string()),
                (Stream::Stdout, "☃".to_string()),
                (Stream::Stderr, "\u{fffd}b".to_string()),
                (Stream::Stdout, "\u{fffd}".to_string()),
            ]
        );
    }

    #[test]
    fn captured_output_comes_back_per_run() {
        let output = RunOutput::default();
        output.begin(None);
        output.write(Stream::Stdout, b"1");
        output.write(Stream::Stderr, b"2");
        assert_eq!(output.finish(), ("1".to_string(), "2".to_string()));
        output.begin(None);
        assert_eq!(output.finish(), (String::new(), String::new()));
    }
}
