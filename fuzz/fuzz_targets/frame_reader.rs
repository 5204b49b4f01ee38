//! The daemon's frame reader on hostile bytes: every frame it returns fits
//! the limit, and it never waits, panics or loops on a byte stream.
#![no_main]

use goru_protocol::framing::{FrameError, encode_frame, read_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the body limit, so limits at and around the
    // sizes of the frames in the corpus are tried as well as the default.
    let (limit, stream) = match data.split_first() {
        Some((&byte, rest)) if byte < 0xF0 => (usize::from(byte), rest),
        Some((_, rest)) => (goru_protocol::framing::DEFAULT_MAX_FRAME_BYTES, rest),
        None => return,
    };
    let mut reader = tokio::io::BufReader::with_capacity(64, stream);
    // Each round consumes at least one byte or ends: bounded by the input.
    for _ in 0..=stream.len() {
        match goru_fuzz::ready(read_frame(&mut reader, limit)) {
            Ok(Some(body)) => {
                assert!(body.len() <= limit, "a body over the limit was returned");
                // What the writer frames, the reader reads back whole.
                let framed = encode_frame(&body);
                let mut again = tokio::io::BufReader::new(framed.as_slice());
                let read = goru_fuzz::ready(read_frame(&mut again, limit));
                assert_eq!(read.ok().flatten().as_deref(), Some(body.as_slice()));
            }
            Ok(None) => return,
            Err(FrameError::TooLarge { length, limit: l }) => {
                assert!(length > l as u64 && l == limit);
            }
            Err(err) => {
                assert!(!err.is_recoverable());
                // Messages quote the peer's bytes: clipped, never the whole input.
                assert!(err.to_string().len() < 256, "{err}");
                return;
            }
        }
    }
});
