//! LSP-style framing: `Content-Length: N\r\n` (other headers, such as
//! `Content-Type`, are allowed and ignored), an empty line, then N bytes of
//! JSON. Reading is bounded everywhere: header lines, the number of headers,
//! and the body, so a hostile peer cannot make the reader hold more than the
//! limits it is given.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The longest header line accepted, in bytes.
pub const MAX_HEADER_LINE: usize = 1024;
/// The most header lines one frame may have.
pub const MAX_HEADERS: usize = 16;
/// The daemon's default limit on one incoming frame's body: 16 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 << 20;

/// A frame that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the stream in the middle of a frame.
    #[error("the stream ended in the middle of a frame")]
    UnexpectedEof,
    /// A header the reader cannot understand; the stream cannot be resynchronized.
    #[error("bad frame header: {0}")]
    BadHeader(String),
    /// The body is longer than the limit. Its bytes were read and dropped,
    /// so the stream is still in sync and the next frame can be read.
    #[error("a frame of {length} bytes is over the limit of {limit} bytes")]
    TooLarge { length: u64, limit: usize },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl FrameError {
    /// Whether reading can go on with the next frame after this error.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, FrameError::TooLarge { .. })
    }
}

/// Reads one frame's body. `Ok(None)`: the stream ended cleanly between frames.
pub async fn read_frame<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max_body: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let Some(length) = read_header(reader).await? else {
        return Ok(None);
    };
    if length > max_body as u64 {
        skip_body(reader, length).await?;
        return Err(FrameError::TooLarge {
            length,
            limit: max_body,
        });
    }
    read_body(reader, length as usize).await.map(Some)
}

/// Reads one frame's header: the body's length. `Ok(None)`: the stream
/// ended cleanly between frames. The caller reads the body next, with
/// [`read_body`] or [`skip_body`]: it can answer a length over its limit
/// before the body arrives.
pub async fn read_header<R: AsyncBufRead + Unpin>(
    reader: &mut R,
) -> Result<Option<u64>, FrameError> {
    let mut header = HeaderParser::default();
    loop {
        let Some(line) = read_line(reader, header.is_empty()).await? else {
            return Ok(None);
        };
        if let Some(length) = header.line(&line)? {
            return Ok(Some(length));
        }
    }
}

/// The one parser of frame headers, fed a line at a time (without its line
/// ending) by whatever reads them: [`read_header`] here, and the blocking
/// [`blocking::read_frame`].
#[derive(Debug, Default)]
pub struct HeaderParser {
    length: Option<u64>,
    headers: usize,
}

impl HeaderParser {
    /// Whether no header line came yet: where a stream may end cleanly.
    pub fn is_empty(&self) -> bool {
        self.headers == 0
    }

    /// Takes one line. `Ok(Some(length))`: the blank line that ends the
    /// header came, and the body has `length` bytes.
    pub fn line(&mut self, line: &[u8]) -> Result<Option<u64>, FrameError> {
        if line.is_empty() {
            if self.headers == 0 {
                // Tolerate blank lines between frames.
                return Ok(None);
            }
            return self
                .length
                .map(Some)
                .ok_or_else(|| FrameError::BadHeader("no Content-Length header".into()));
        }
        self.headers += 1;
        if self.headers > MAX_HEADERS {
            return Err(FrameError::BadHeader(format!(
                "more than {MAX_HEADERS} header lines"
            )));
        }
        let text = std::str::from_utf8(line)
            .map_err(|_| FrameError::BadHeader("a header line is not UTF-8".into()))?;
        let (name, value) = text.split_once(':').ok_or_else(|| {
            FrameError::BadHeader(format!("`{}` is not `Name: value`", clip(text)))
        })?;
        if name.trim().eq_ignore_ascii_case("content-length") {
            let value = value.trim();
            let parsed = value
                .parse::<u64>()
                .ok()
                .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    FrameError::BadHeader(format!(
                        "Content-Length `{}` is not a number",
                        clip(value)
                    ))
                })?;
            if self.length.replace(parsed).is_some() {
                return Err(FrameError::BadHeader("two Content-Length headers".into()));
            }
        }
        Ok(None)
    }
}

/// The first allocation for a body; it grows as bytes arrive.
const FIRST_BODY_ALLOCATION: usize = 64 << 10;

/// Reads a body of `length` bytes. Memory follows the bytes that arrived,
/// never the length promised (threat: headers promising 16 MiB each, on
/// many connections, with no body behind them), and never exceeds `length`.
pub async fn read_body<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    length: usize,
) -> Result<Vec<u8>, FrameError> {
    let mut body = Vec::with_capacity(length.min(FIRST_BODY_ALLOCATION));
    while body.len() < length {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Err(FrameError::UnexpectedEof);
        }
        let wanted = length - body.len();
        let take = available.len().min(wanted);
        if body.capacity() - body.len() < take {
            // Doubling, up to the length: no more than twice what arrived.
            body.reserve_exact(take.max(body.len().min(wanted)));
        }
        body.extend_from_slice(&available[..take]);
        reader.consume(take);
    }
    Ok(body)
}

/// Reads and drops a body of `length` bytes, so the next frame can be read.
pub async fn skip_body<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    length: u64,
) -> Result<(), FrameError> {
    let skipped = tokio::io::copy(&mut (&mut *reader).take(length), &mut tokio::io::sink()).await?;
    if skipped < length {
        return Err(FrameError::UnexpectedEof);
    }
    Ok(())
}

/// Reads a header line without its `\r\n` (a bare `\n` is accepted too).
/// `None`: end of stream before any byte, when `eof_ok`.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    eof_ok: bool,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return if line.is_empty() && eof_ok {
                Ok(None)
            } else {
                Err(FrameError::UnexpectedEof)
            };
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..=end], true),
            None => (available, false),
        };
        if line.len() + chunk.len() > MAX_HEADER_LINE + 2 {
            return Err(FrameError::BadHeader(format!(
                "a header line is longer than {MAX_HEADER_LINE} bytes"
            )));
        }
        line.extend_from_slice(chunk);
        let used = chunk.len();
        reader.consume(used);
        if done {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(line));
        }
    }
}

fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    crate::echo::clip(text, 64)
}

/// The bytes of one frame carrying `body`.
pub fn encode_frame(body: &[u8]) -> Vec<u8> {
    let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    frame.extend_from_slice(body);
    frame
}

/// Writes one frame and flushes it.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    body: &[u8],
) -> std::io::Result<()> {
    writer.write_all(&encode_frame(body)).await?;
    writer.flush().await
}

/// The same frames read from a blocking reader (test drivers, tools): the
/// header through [`HeaderParser`], the same limits.
pub mod blocking {
    use super::{FrameError, HeaderParser, MAX_HEADER_LINE};
    use std::io::{BufRead, Read};

    /// Reads one frame's body. `Ok(None)`: the stream ended cleanly
    /// between frames. A body over `max_body` is an error (not skipped).
    pub fn read_frame(
        reader: &mut impl BufRead,
        max_body: usize,
    ) -> Result<Option<Vec<u8>>, FrameError> {
        let mut header = HeaderParser::default();
        let length = loop {
            let mut line = Vec::new();
            let limit = (MAX_HEADER_LINE + 2) as u64;
            let read = (&mut *reader).take(limit).read_until(b'\n', &mut line)?;
            if read == 0 {
                if header.is_empty() {
                    return Ok(None);
                }
                return Err(FrameError::UnexpectedEof);
            }
            if line.pop() != Some(b'\n') {
                return Err(if read as u64 == limit {
                    FrameError::BadHeader(format!(
                        "a header line is longer than {MAX_HEADER_LINE} bytes"
                    ))
                } else {
                    FrameError::UnexpectedEof
                });
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(length) = header.line(&line)? {
                break length;
            }
        };
        if length > max_body as u64 {
            return Err(FrameError::TooLarge {
                length,
                limit: max_body,
            });
        }
        let mut body = Vec::new();
        let read = (&mut *reader).take(length).read_to_end(&mut body)?;
        if (read as u64) < length {
            return Err(FrameError::UnexpectedEof);
        }
        Ok(Some(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(input: &[u8], max: usize) -> Vec<Result<Vec<u8>, String>> {
        let mut reader = tokio::io::BufReader::new(input);
        let mut frames = Vec::new();
        loop {
            match read_frame(&mut reader, max).await {
                Ok(Some(body)) => frames.push(Ok(body)),
                Ok(None) => return frames,
                Err(err) => {
                    let go_on = err.is_recoverable();
                    frames.push(Err(err.to_string()));
                    if !go_on {
                        return frames;
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn reads_frames_back_to_back_with_any_header_case() {
        let mut input = encode_frame(b"{\"a\":1}");
        input.extend_from_slice(b"content-length: 2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}");
        let frames = read_all(&input, 100).await;
        assert_eq!(frames, vec![Ok(b"{\"a\":1}".to_vec()), Ok(b"{}".to_vec())]);
    }

    #[tokio::test]
    async fn an_oversize_frame_is_skipped_and_the_next_one_read() {
        let mut input = encode_frame(&[b'x'; 50]);
        input.extend_from_slice(&encode_frame(b"[]"));
        let frames = read_all(&input, 10).await;
        assert_eq!(frames.len(), 2);
        assert!(
            frames[0]
                .as_ref()
                .unwrap_err()
                .contains("50 bytes is over the limit of 10")
        );
        assert_eq!(frames[1], Ok(b"[]".to_vec()));
    }

    #[tokio::test]
    async fn bad_headers_are_errors() {
        for (input, expected) in [
            (&b"Content-Length: abc\r\n\r\n"[..], "is not a number"),
            (b"Content-Length: -1\r\n\r\n", "is not a number"),
            (b"Content-Length: +1\r\n\r\n", "is not a number"),
            (b"Content-Type: x\r\n\r\n{}", "no Content-Length"),
            (b"hello\r\n\r\n", "is not `Name: value`"),
            (
                b"Content-Length: 1\r\nContent-Length: 1\r\n\r\nx",
                "two Content-Length",
            ),
            (b"Content-Length: 10\r\n\r\nabc", "ended in the middle"),
            (b"Content-Length: 10", "ended in the middle"),
        ] {
            let frames = read_all(input, 100).await;
            let last = frames.last().unwrap().as_ref().unwrap_err();
            assert!(last.contains(expected), "{input:?}: {last}");
        }
        let long = vec![b'a'; 5000];
        let frames = read_all(&long, 100).await;
        assert!(frames[0].as_ref().unwrap_err().contains("longer than 1024"));
        let many = b"X: y\r\n".repeat(20);
        let frames = read_all(&many, 100).await;
        assert!(
            frames[0]
                .as_ref()
                .unwrap_err()
                .contains("more than 16 header lines")
        );
    }

    #[tokio::test]
    async fn a_body_is_read_as_it_arrives_up_to_its_length() {
        let promised = 16 << 20;
        let mut input = format!("Content-Length: {promised}\r\n\r\n").into_bytes();
        input.extend_from_slice(&[b'x'; 1000]);
        let mut reader = tokio::io::BufReader::new(&input[..]);
        assert_eq!(read_header(&mut reader).await.unwrap(), Some(promised));
        assert!(matches!(
            read_body(&mut reader, promised as usize).await,
            Err(FrameError::UnexpectedEof)
        ));
        // A body that arrives whole is read whole, growing to its length only.
        let whole = vec![b'y'; 300_000];
        let mut reader = tokio::io::BufReader::new(&whole[..]);
        let body = read_body(&mut reader, whole.len()).await.unwrap();
        assert_eq!(body, whole);
        assert_eq!(body.capacity(), whole.len());
    }

    #[tokio::test]
    async fn a_clean_end_between_frames_is_not_an_error() {
        assert!(read_all(b"", 10).await.is_empty());
        assert_eq!(
            read_all(&encode_frame(b"1"), 10).await,
            vec![Ok(b"1".to_vec())]
        );
    }

    /// Every frame of `input` through the blocking reader, up to its first error.
    fn read_all_blocking(input: &[u8], max: usize) -> Vec<Result<Vec<u8>, String>> {
        let mut reader = std::io::BufReader::new(input);
        let mut frames = Vec::new();
        loop {
            match blocking::read_frame(&mut reader, max) {
                Ok(Some(body)) => frames.push(Ok(body)),
                Ok(None) => return frames,
                Err(err) => {
                    frames.push(Err(err.to_string()));
                    return frames;
                }
            }
        }
    }

    #[tokio::test]
    async fn the_blocking_reader_reads_frames_as_the_async_one_does() {
        let mut inputs: Vec<Vec<u8>> = [
            &b""[..],
            b"\r\n\r\nContent-Length: 1\r\n\r\nx",
            b"content-length: 2\r\nContent-Type: a\r\n\r\n{}Content-Length: 1\n\nz",
            b"Content-Length: abc\r\n\r\n",
            b"Content-Length: +1\r\n\r\n",
            b"Content-Type: x\r\n\r\n{}",
            b"hello\r\n\r\n",
            b"Content-Length: 1\r\nContent-Length: 1\r\n\r\nx",
            b"Content-Length: 10\r\n\r\nabc",
            b"Content-Length: 10",
            b"Content-Length: 3\r",
            &[0xff, b':', b'\r', b'\n', b'\r', b'\n'],
        ]
        .iter()
        .map(|input| input.to_vec())
        .collect();
        inputs.push(vec![b'a'; 5000]);
        inputs.push(b"X: y\r\n".repeat(20));
        let mut exactly_the_longest_line = vec![b'X'; MAX_HEADER_LINE - 3];
        exactly_the_longest_line.extend_from_slice(b": y\r\nContent-Length: 1\r\n\r\nq");
        inputs.push(exactly_the_longest_line);
        for input in inputs {
            assert_eq!(
                read_all_blocking(&input, 100),
                read_all(&input, 100).await,
                "{:?}",
                String::from_utf8_lossy(&input)
            );
        }
        // Over the limit: an error, the body not read.
        let frames = read_all_blocking(&encode_frame(&[b'x'; 50]), 10);
        assert_eq!(
            frames,
            vec![Err(FrameError::TooLarge {
                length: 50,
                limit: 10
            }
            .to_string())]
        );
    }
}
