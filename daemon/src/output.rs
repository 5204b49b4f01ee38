//! Where a daemon session's output goes during a run: captured for the
//! result, or streamed to the client as `run/output` notifications.
//!
//! The engine caps what reaches the sink at the run's output limit per
//! stream, so neither the capture nor the output waiting to be streamed can
//! grow past it. Streamed output is coalesced: one notification per guest
//! write would make 1 MiB written a byte at a time 1,048,576 notifications
//! (about 150 MB of JSON). Writes wait up to [`FLUSH_INTERVAL`] to be sent
//! together, or less once [`FLUSH_BYTES`] are waiting; stdout and stderr
//! keep their order.

use goru_runtimes::{OutputSink, Stream};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// One piece of streamed output, already valid UTF-8.
pub(crate) type Chunk = (Stream, String);

/// Output waiting this many bytes is sent without waiting longer; it is
/// also the most one notification carries.
pub(crate) const FLUSH_BYTES: usize = 64 << 10;
/// The longest output waits for more to be sent with it.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_millis(5);

/// Streamed output waiting to be sent, in order, consecutive writes to one
/// stream merged.
#[derive(Default)]
pub(crate) struct Streamed {
    queue: Mutex<Queue>,
    ready: Notify,
}

#[derive(Default)]
struct Queue {
    chunks: VecDeque<Chunk>,
    bytes: usize,
    /// The run is over: send what is left, then stop.
    closed: bool,
}

impl Streamed {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, stream: Stream, text: String) {
        let mut queue = self.queue();
        let was_empty = queue.bytes == 0;
        queue.bytes += text.len();
        let full = queue.bytes >= FLUSH_BYTES;
        match queue.chunks.back_mut() {
            Some((last, pending)) if *last == stream => pending.push_str(&text),
            _ => queue.chunks.push_back((stream, text)),
        }
        drop(queue);
        if was_empty || full {
            self.ready.notify_one();
        }
    }

    fn close(&self) {
        self.queue().closed = true;
        self.ready.notify_one();
    }

    /// The next output to send, each chunk at most [`FLUSH_BYTES`]: waits
    /// for some, then up to [`FLUSH_INTERVAL`] for more unless
    /// [`FLUSH_BYTES`] are waiting. `None`: the run is over and all was sent.
    pub(crate) async fn next_batch(&self) -> Option<Vec<Chunk>> {
        loop {
            {
                let queue = self.queue();
                if queue.bytes > 0 || queue.closed {
                    break;
                }
            }
            self.ready.notified().await;
        }
        let deadline = tokio::time::Instant::now() + FLUSH_INTERVAL;
        loop {
            {
                let queue = self.queue();
                if queue.closed || queue.bytes >= FLUSH_BYTES {
                    break;
                }
            }
            if tokio::time::timeout_at(deadline, self.ready.notified())
                .await
                .is_err()
            {
                break;
            }
        }
        let mut queue = self.queue();
        queue.bytes = 0;
        let chunks = std::mem::take(&mut queue.chunks);
        drop(queue);
        if chunks.is_empty() {
            return None;
        }
        Some(chunks.into_iter().flat_map(split).collect())
    }
}

/// A chunk cut into pieces of at most [`FLUSH_BYTES`], on character boundaries.
fn split((stream, mut text): Chunk) -> Vec<Chunk> {
    let mut pieces = Vec::new();
    while text.len() > FLUSH_BYTES {
        let mut end = FLUSH_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let rest = text.split_off(end);
        pieces.push((stream, text));
        text = rest;
    }
    pieces.push((stream, text));
    pieces
}

/// The sink a daemon session is built with; switched per run.
#[derive(Default)]
pub(crate) struct RunOutput {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    captured: [Vec<u8>; 2],
    stream: Option<Arc<Streamed>>,
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
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a run: capture, or stream to `stream`.
    pub(crate) fn begin(&self, stream: Option<Arc<Streamed>>) {
        *self.state() = State {
            stream,
            ..State::default()
        };
    }

    /// Ends a run: the captured stdout and stderr (empty when streamed),
    /// after queueing what was left of a split character and closing the
    /// stream.
    pub(crate) fn finish(&self) -> (String, String) {
        let mut state = self.state();
        if let Some(streamed) = state.stream.take() {
            for stream in [Stream::Stdout, Stream::Stderr] {
                let rest = std::mem::take(&mut state.partial[index(stream)]);
                if !rest.is_empty() {
                    streamed.push(stream, String::from_utf8_lossy(&rest).into_owned());
                }
            }
            streamed.close();
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
        let Some(streamed) = state.stream.clone() else {
            state.captured[i].extend_from_slice(bytes);
            return;
        };
        let partial = &mut state.partial[i];
        partial.extend_from_slice(bytes);
        let text = take_complete_utf8(partial);
        if !text.is_empty() {
            streamed.push(stream, text);
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

    /// Every batch until the stream closes.
    async fn all_batches(streamed: &Streamed) -> Vec<Vec<Chunk>> {
        let mut batches = Vec::new();
        while let Some(batch) = streamed.next_batch().await {
            batches.push(batch);
        }
        batches
    }

    #[tokio::test]
    async fn a_character_split_across_writes_arrives_whole() {
        let output = RunOutput::default();
        let streamed = Arc::new(Streamed::default());
        output.begin(Some(streamed.clone()));
        let snowman = "☃".as_bytes();
        output.write(Stream::Stdout, &[b'a', snowman[0]]);
        output.write(Stream::Stdout, &snowman[1..]);
        output.write(Stream::Stderr, &[0xff, b'b']);
        output.write(Stream::Stdout, &snowman[..2]);
        assert_eq!(output.finish(), (String::new(), String::new()));
        let seen: Vec<Chunk> = all_batches(&streamed).await.concat();
        assert_eq!(
            seen,
            vec![
                (Stream::Stdout, "a☃".to_string()),
                (Stream::Stderr, "\u{fffd}b".to_string()),
                (Stream::Stdout, "\u{fffd}".to_string()),
            ]
        );
    }

    #[tokio::test]
    async fn many_small_writes_go_out_as_few_chunks_in_order() {
        let output = Arc::new(RunOutput::default());
        let streamed = Arc::new(Streamed::default());
        output.begin(Some(streamed.clone()));
        const WRITES: usize = 300_000;
        let writer = {
            let output = output.clone();
            std::thread::spawn(move || {
                for n in 0..WRITES {
                    // Every 1,000th write to stderr, to check the order.
                    let stream = if n % 1000 == 999 {
                        Stream::Stderr
                    } else {
                        Stream::Stdout
                    };
                    output.write(stream, &[b'0' + (n % 10) as u8]);
                }
                output.finish();
            })
        };
        let batches = all_batches(&streamed).await;
        writer.join().unwrap();
        let chunks: Vec<Chunk> = batches.iter().flatten().cloned().collect();
        let mut expected = Vec::new();
        for n in 0..WRITES {
            let stream = if n % 1000 == 999 {
                Stream::Stderr
            } else {
                Stream::Stdout
            };
            expected.push((stream, char::from(b'0' + (n % 10) as u8)));
        }
        let got: Vec<(Stream, char)> = chunks
            .iter()
            .flat_map(|(stream, text)| text.chars().map(move |c| (*stream, c)))
            .collect();
        assert_eq!(got, expected, "every byte, in order, on its stream");
        assert!(chunks.iter().all(|(_, text)| text.len() <= FLUSH_BYTES));
        // The stream changes 600 times, so at least that many chunks; far
        // fewer batches (notifications are sent per chunk, batches bound
        // how often) than writes.
        assert!(
            chunks.len() <= 2 * 300 + batches.len(),
            "{} chunks",
            chunks.len()
        );
        assert!(batches.len() < WRITES / 100, "{} batches", batches.len());
    }

    #[tokio::test]
    async fn a_large_write_is_sent_in_pieces_of_at_most_the_flush_size() {
        let output = RunOutput::default();
        let streamed = Arc::new(Streamed::default());
        output.begin(Some(streamed.clone()));
        let text = "é".repeat(FLUSH_BYTES);
        output.write(Stream::Stdout, text.as_bytes());
        output.finish();
        let chunks: Vec<Chunk> = all_batches(&streamed).await.concat();
        assert_eq!(chunks.len(), 2);
        assert!(chunks.iter().all(|(_, t)| t.len() <= FLUSH_BYTES));
        assert_eq!(chunks[0].1.clone() + &chunks[1].1, text);
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
