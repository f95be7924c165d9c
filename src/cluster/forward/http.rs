//! An HTTP request forwarded to the session's owner, and its answer.
//!
//! Origin: [`HttpCall::read`] takes the request the host handed to ServeHTTP (its body read
//! whole, at most [`MAX_BODY`]); once the answer is back, [`HttpAnswer::write_to`] writes it
//! into the host's response writer.
//! Owner: [`HttpCall::request`] rebuilds the request the host would have handed over, served
//! into the writer of [`HttpAnswer::buffer`]; [`AnswerBuffer::finish`] turns what was written
//! into the answer (cut to a 502 past [`MAX_ANSWER`]).

use std::io;

use crate::gob_struct;
use crate::http::{header_value, write_error, HttpError, USER_ID_HEADER};
use crate::mattermost::http::{
    Body, Headers, MemorySink, Recorded, ResponseWriter, ServeHttpRequest, TooLarge,
};

/// Largest request body forwarded (the REST API's own limit for bodies).
pub(crate) const MAX_BODY: usize = 1 << 20;
/// Largest answer (body and headers) sent back; a larger one becomes a 502.
pub(crate) const MAX_ANSWER: usize = 8 << 20;

/// Headers that describe one connection, not the message (RFC 9110 7.6.1): they stay on the
/// hop they came with.
const HOP_BY_HOP: &[&str] = &[
    "Connection",
    "Keep-Alive",
    "Proxy-Connection",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "TE",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
];

gob_struct! {
    /// A request to the plugin's HTTP API, as the origin received it.
    pub(crate) struct HttpCall("ForwardHttpCall") {
        pub(crate) method: String => "Method",
        /// The URL as the host forwarded it (`/path?query`): the owner parses it as it parses
        /// any request, so the two nodes cannot split it differently.
        pub(crate) url: String => "URL",
        /// End-to-end headers, names as the host gave them.
        pub(crate) headers: Headers => "Headers",
        pub(crate) body: Vec<u8> => "Body",
        /// `Mattermost-User-Id` as the origin's server set it ("" = none).
        pub(crate) user_id: String => "UserId",
    }

    /// What the owner's handler wrote.
    pub(crate) struct HttpAnswer("ForwardHttpAnswer") {
        pub(crate) status: u16 => "Status",
        pub(crate) headers: Headers => "Headers",
        pub(crate) body: Vec<u8> => "Body",
    }
}

/// Why a request cannot be forwarded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpCallError {
    /// The body is over [`MAX_BODY`] (the client gets a 413).
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("reading the request body: {0}")]
    Read(#[source] io::Error),
}

impl HttpCall {
    /// The call for a request the host handed to ServeHTTP on this node.
    pub(crate) async fn read(req: ServeHttpRequest) -> Result<HttpCall, HttpCallError> {
        let ServeHttpRequest {
            method,
            url,
            headers,
            mut body,
        } = req;
        let body = body.read_to_end_limited(MAX_BODY).await.map_err(|e| {
            if TooLarge::is(&e) {
                HttpCallError::TooLarge { limit: MAX_BODY }
            } else {
                HttpCallError::Read(e)
            }
        })?;
        let user_id = header_value(&headers, USER_ID_HEADER)
            .unwrap_or_default()
            .to_owned();
        let mut headers = end_to_end(headers);
        // The caller's credentials stay on this node: the server checked them before ServeHTTP,
        // and the owner trusts only the user id this call carries.
        headers.retain(|name, _| !CREDENTIALS.iter().any(|c| name.eq_ignore_ascii_case(c)));
        Ok(HttpCall {
            method,
            url,
            headers,
            body,
            user_id,
        })
    }

    /// The request as the origin's host handed it over, body included.
    ///
    /// `Mattermost-User-Id` is the origin's, exactly: Mattermost sets it from the caller's
    /// session (a client cannot choose it), and the owner may trust the copy in this call only
    /// because the call came over the cluster bus, on which nothing but the cluster's
    /// Mattermost servers can publish.
    pub(crate) fn request(&self) -> ServeHttpRequest {
        let mut headers = end_to_end(self.headers.clone());
        headers.retain(|name, _| !name.eq_ignore_ascii_case(USER_ID_HEADER));
        if !self.user_id.is_empty() {
            headers.insert(USER_ID_HEADER.to_owned(), vec![self.user_id.clone()]);
        }
        ServeHttpRequest {
            method: self.method.clone(),
            url: self.url.clone(),
            headers,
            body: Body::from_bytes(self.body.clone()),
        }
    }
}

/// Where the owner's handler writes a forwarded request's answer.
pub(crate) struct AnswerBuffer(MemorySink);

impl HttpAnswer {
    /// A writer that keeps the response in memory, and the buffer to read it from once the
    /// handler is done. A body past [`MAX_ANSWER`] fails the handler's write.
    pub(crate) fn buffer() -> (ResponseWriter, AnswerBuffer) {
        let sink = MemorySink::bounded(MAX_ANSWER);
        (ResponseWriter::new(sink.clone()), AnswerBuffer(sink))
    }

    /// Writes the answer as this node's response (the hook finishes the writer).
    pub(crate) async fn write_to(self, w: &mut ResponseWriter) -> io::Result<()> {
        for (name, values) in end_to_end(self.headers) {
            w.set_header_values(&name, values);
        }
        w.write_header(self.status).await?;
        w.write(&self.body).await
    }
}

impl AnswerBuffer {
    /// Finishes the writer the handler wrote into and returns what it wrote; an answer larger
    /// than [`MAX_ANSWER`] is replaced by a 502 saying so.
    pub(crate) async fn finish(self, w: ResponseWriter) -> HttpAnswer {
        if let Err(e) = w.finish().await {
            // Only the sink's refusal of an oversize body can fail here; `overflowed` says so.
            tracing::debug!("forwarded answer: {e}");
        }
        let recorded = self.0.take();
        let header_bytes: usize = recorded
            .headers
            .iter()
            .map(|(name, values)| name.len() + values.iter().map(String::len).sum::<usize>())
            .sum();
        if !recorded.overflowed && recorded.body.len() + header_bytes <= MAX_ANSWER {
            return answer(recorded);
        }
        let error = HttpError::new(
            502,
            format!(
                "the answer of the server running this session is larger than {} MiB",
                MAX_ANSWER >> 20
            ),
        );
        let (mut w, buffer) = HttpAnswer::buffer();
        write_error(&mut w, &error).await;
        // The error is small: nothing can overflow.
        let _ = w.finish().await;
        answer(buffer.0.take())
    }
}

fn answer(recorded: Recorded) -> HttpAnswer {
    HttpAnswer {
        // A finished writer has sent a status; the host would imply 200 otherwise.
        status: recorded.status.unwrap_or(200),
        headers: recorded.headers,
        body: recorded.body,
    }
}

/// `headers` without the hop-by-hop ones, including those the `Connection` header names.
/// Headers that carry the caller's credentials (session cookie, token, CSRF token).
const CREDENTIALS: &[&str] = &["Cookie", "Authorization", "X-CSRF-Token", "Token"];

fn end_to_end(mut headers: Headers) -> Headers {
    let named: Vec<String> = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Connection"))
        .flat_map(|(_, values)| values.iter().flat_map(|v| v.split(',')))
        .map(|token| token.trim().to_owned())
        .filter(|token| !token.is_empty())
        .collect();
    let hop = |name: &str| {
        HOP_BY_HOP
            .iter()
            .copied()
            .chain(named.iter().map(String::as_str))
            .any(|hop| name.eq_ignore_ascii_case(hop))
    };
    headers.retain(|name, _| !hop(name));
    headers
}
