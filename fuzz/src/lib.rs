//! What the fuzz targets share: turning bytes into the shapes the parsers
//! take, and running futures that never wait.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Runs a future that can complete without waiting (reading from a byte
/// slice never waits). A future that does wait is a bug in the target.
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a read from memory waited"),
    }
}

/// The input as text, lossily: the parsers under test take `&str`.
pub fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// Splits the input at the first `sep` line: the lines before it and the
/// text after it (the input is one free-form section when there is none).
pub fn sections(text: &str, sep: &str) -> (Vec<String>, String) {
    let mut head = Vec::new();
    let mut lines = text.split_inclusive('\n');
    for line in lines.by_ref() {
        if line.trim_end_matches(['\r', '\n']) == sep {
            return (head, lines.collect());
        }
        head.push(line.trim_end_matches(['\r', '\n']).to_string());
    }
    (Vec::new(), text.to_string())
}
