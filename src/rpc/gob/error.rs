//! The one error type of the gob codec.

use std::fmt;

/// Why a gob stream could not be encoded or decoded.
///
/// Every malformed input maps to one of these; the codec never panics on bytes
/// from the wire. After an error the decoder's state is still consistent: the
/// failing message has been consumed whole and every type definition the peer
/// sent has been recorded, so the caller decides whether to go on or close.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The input ended inside a message or a value.
    #[error("gob: truncated input: {0}")]
    Truncated(&'static str),
    /// A message length prefix larger than the configured limit.
    #[error("gob: message of {len} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge { len: u64, limit: usize },
    /// A value refers to a type id no definition has introduced.
    #[error("gob: unknown type id {0}")]
    UnknownType(i64),
    /// A definition reuses an id already defined on this stream, or a reserved id.
    #[error("gob: duplicate or reserved type id {0}")]
    DuplicateType(i64),
    /// A string that is not valid UTF-8.
    #[error("gob: invalid UTF-8 in string")]
    InvalidUtf8,
    /// The wire type cannot be decoded into the requested Rust type.
    #[error("gob: type mismatch: {0}")]
    TypeMismatch(String),
    /// Bytes that cannot be a gob encoding (bad uint, bad field number, bad count...).
    #[error("gob: corrupted data: {0}")]
    Corrupt(String),
    /// An integer that does not fit the destination type.
    #[error("gob: value out of range for {0}")]
    OutOfRange(&'static str),
    /// An interface value names a concrete type the receiver does not know.
    #[error("gob: name not registered for interface: {0:?}")]
    UnregisteredName(String),
    /// Values nested deeper than the decoder allows.
    #[error("gob: values nested deeper than {0} levels")]
    TooDeep(usize),
    /// The encoder was asked for something Go cannot represent (e.g. a nil element pointer).
    #[error("gob: cannot encode: {0}")]
    Unencodable(String),
    /// The underlying byte stream failed; `kind` tells a closed transport from a failure.
    #[error("gob: i/o: {message}")]
    Io {
        kind: std::io::ErrorKind,
        message: String,
    },
}

impl Error {
    pub(crate) fn corrupt(what: impl fmt::Display) -> Self {
        Error::Corrupt(what.to_string())
    }

    pub(crate) fn mismatch(what: impl fmt::Display) -> Self {
        Error::TypeMismatch(what.to_string())
    }

    /// Whether the stream ended because its transport was shut down (by either side), not
    /// because of a codec or transport failure: the normal end of a connection that is read
    /// until it goes away.
    pub fn is_closed(&self) -> bool {
        matches!(
            self,
            Error::Io {
                kind: std::io::ErrorKind::ConnectionAborted,
                ..
            }
        )
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Truncated("stream ended inside a message")
        } else {
            Error::Io {
                kind: e.kind(),
                message: e.to_string(),
            }
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
