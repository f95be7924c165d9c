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

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(input: &[u8]) -> Vec<Result<CliLine, ReadError>> {
        let mut r = CliReader::new(input);
        let mut out = Vec::new();
        while let Some(item) = r.next().await {
            out.push(item);
        }
        out
    }

    #[tokio::test]
    async fn garbage_is_reported_and_skipped() {
        let input = b"{\"type\":\"control_cancel_request\",\"request_id\":\"a\"}\n\
                      not json at all\n\
                      \n\
                      [1,2]\r\n\
                      {\"no_type\":1}\n\
                      {\"type\":\"brand_new_type\",\"x\":1}\n\
                      {\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false}";
        let items = collect(input).await;
        assert_eq!(
            items.len(),
            6,
            "blank line skipped, last line without newline read"
        );
        assert!(
            matches!(&items[0], Ok(l) if matches!(l.message, CliMessage::ControlCancelRequest(_)))
        );
        for (i, want) in [(1, "NotJson"), (2, "NotAnObject"), (3, "MissingType")] {
            match &items[i] {
                Err(e @ ReadError::Garbage { error, .. }) => {
                    assert!(e.is_recoverable());
                    assert!(format!("{error:?}").starts_with(want), "{error:?}");
                }
                other => panic!("item {i}: {other:?}"),
            }
        }
        assert!(matches!(&items[4], Ok(l) if matches!(l.message, CliMessage::Unknown(_))));
        assert!(
            matches!(&items[5], Ok(l) if matches!(&l.message, CliMessage::Result(r) if !r.is_error))
        );
    }

    #[tokio::test]
    async fn very_long_lines_are_read_whole() {
        let big = "x".repeat(8 * 1024 * 1024);
        let line = format!(
            "{{\"type\":\"user\",\"message\":{{\"role\":\"user\",\"content\":[{{\"type\":\"tool_result\",\
             \"tool_use_id\":\"t\",\"content\":\"{big}\"}}]}},\"tool_use_result\":{{\"stdout\":\"{big}\"}}}}\n"
        );
        let items = collect(line.as_bytes()).await;
        assert_eq!(items.len(), 1);
        match &items[0] {
            Ok(CliLine {
                message: CliMessage::User(u),
                ..
            }) => match &u.tool_use_result {
                Some(crate::claude::messages::ToolUseResult::Structured(s)) => {
                    assert_eq!(s.stdout.as_ref().map(String::len), Some(big.len()))
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn known_type_with_wrong_shape_is_garbage_not_unknown() {
        // A result that cannot be read must be visible, not silently dropped as "unknown".
        let items = collect(b"{\"type\":\"result\",\"subtype\":5}\n").await;
        assert!(
            matches!(&items[0], Err(ReadError::Garbage { error: ParseError::Shape { kind, .. }, .. }) if kind == "result")
        );
    }

    #[test]
    fn preview_truncates_on_char_boundary() {
        let s = "é".repeat(300);
        let p = preview(&s);
        assert!(p.len() < 260 && p.ends_with("(600 bytes)"), "{p}");
    }
}
