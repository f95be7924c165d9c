//! Async reader of the CLI's stdout: one JSON object per line, no line-length limit.
//!
//! Lines can be megabytes long (tool outputs, `system/init`), so we never use a bounded codec.
//! A line that does not parse is handed out as [`ReadError::Garbage`] and skipped: one bad line
//! (a stray debug print, a truncated write) must not end a session. Only I/O errors are final.

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::messages::{CliMessage, ParseError};

/// One parsed stdout line, with its raw text kept for the transcript store.
#[derive(Debug, Clone, PartialEq)]
pub struct CliLine {
    pub raw: String,
    pub message: CliMessage,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The line was skipped; reading can go on.
    #[error("unparseable line from the CLI ({error}): {}", preview(raw))]
    Garbage {
        raw: String,
        #[source]
        error: ParseError,
    },
    /// Reading the pipe failed; the stream is over.
    #[error("reading CLI output failed: {0}")]
    Io(#[from] std::io::Error),
}

impl ReadError {
    /// Whether reading may continue after this error.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, ReadError::Garbage { .. })
    }
}

/// Keeps log lines short when a garbage line is huge.
fn preview(raw: &str) -> String {
    const MAX: usize = 200;
    if raw.len() <= MAX {
        return raw.to_owned();
    }
    let mut end = MAX;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &raw[..end], raw.len())
}

pub struct CliReader<R> {
    inner: BufReader<R>,
    buf: Vec<u8>,
    done: bool,
}

impl<R: AsyncRead + Unpin> CliReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner: BufReader::with_capacity(64 * 1024, inner),
            buf: Vec::new(),
            done: false,
        }
    }

    /// The next line: `None` at end of stream, `Some(Err(Garbage))` for a skipped line.
    /// Blank lines are skipped silently. Not cancel-safe (a partly read line would be lost), so
    /// drive it from one dedicated reading task rather than from a `select!` arm.
    pub async fn next(&mut self) -> Option<Result<CliLine, ReadError>> {
        loop {
            if self.done {
                return None;
            }
            self.buf.clear();
            let n = match self.inner.read_until(b'\n', &mut self.buf).await {
                Ok(n) => n,
                Err(e) => {
                    self.done = true;
                    return Some(Err(ReadError::Io(e)));
                }
            };
            if n == 0 {
                self.done = true;
                return None;
            }
            let mut bytes: &[u8] = &self.buf;
            while let [rest @ .., b'\n' | b'\r'] = bytes {
                bytes = rest;
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let raw = String::from_utf8_lossy(bytes).into_owned();
            return Some(match CliMessage::parse(&raw) {
                Ok(message) => Ok(CliLine { raw, message }),
                Err(error) => Err(ReadError::Garbage { raw, error }),
            });
        }
    }
}
