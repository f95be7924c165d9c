//! The forwarding envelopes as they travel in `PluginClusterEvent.data`: one gob stream per
//! event (the type definitions, then the one value), so every event decodes on its own.
//!
//! Gob has no enums: a call is a struct with one optional field per kind, exactly one of them
//! set; an answer likewise (flags for the kinds that carry nothing). A decoded envelope with
//! none or several set, or of another version, is refused.

use crate::gob_struct;
use crate::mattermost::model::{CommandArgs, CommandResponse, Post};
use crate::rpc::gob::{self, wire::Input, Decoder, Encoder, GobDecode, GobEncode, Limits};

use super::{Call, HttpAnswer, HttpCall, Incoming, Outcome, MAX_ANSWER};

/// The envelope version; a node refuses envelopes of another one (a rolling upgrade that
/// changes them must bump it, and the user sees the call fail instead of a misread call).
pub(super) const VERSION: u64 = 1;

/// Largest event accepted or produced: an answer's body ([`MAX_ANSWER`]) and room for its
/// headers and the envelope.
pub(crate) const MAX_EVENT: usize = MAX_ANSWER + (1 << 20);

/// Why an envelope could not be written or read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    #[error("the message is {len} bytes, more than the {limit} a cluster event may carry")]
    TooBig { len: usize, limit: usize },
    #[error("the message is of version {got}, this node speaks version {VERSION}")]
    Version { got: u64 },
    #[error("the message is malformed: {0}")]
    Gob(#[from] gob::Error),
    #[error("the message is malformed: {0}")]
    Shape(&'static str),
}

gob_struct! {
    /// A forwarded call.
    struct CallWire("ForwardCall") {
        version: u64 => "Version",
        id: String => "Id",
        from: String => "From",
        to: String => "To",
        session: String => "Session",
        command: Option<CommandArgs> => "Command",
        posted: Option<Post> => "Posted",
        http: Option<HttpCall> => "Http",
    }

    /// The answer to one.
    struct ReplyWire("ForwardReply") {
        version: u64 => "Version",
        id: String => "Id",
        from: String => "From",
        command: Option<CommandResponse> => "Command",
        ack: bool => "Ack",
        http: Option<HttpAnswer> => "Http",
        not_owner: bool => "NotOwner",
    }
}

/// An answer as decoded: the call it answers and the node it comes from.
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) id: String,
    pub(super) from: String,
    pub(super) outcome: Outcome,
}

pub(super) fn encode_call(
    from: &str,
    to: &str,
    id: &str,
    session: &str,
    call: Call,
) -> Result<Vec<u8>, CodecError> {
    let mut wire = CallWire {
        version: VERSION,
        id: id.to_owned(),
        from: from.to_owned(),
        to: to.to_owned(),
        session: session.to_owned(),
        ..CallWire::default()
    };
    match call {
        Call::Command(args) => wire.command = Some(args),
        Call::Posted(post) => wire.posted = Some(post),
        Call::Http(http) => wire.http = Some(http),
    }
    encode(&wire)
}

/// The call and the node it is addressed to.
pub(super) fn decode_call(data: &[u8]) -> Result<(String, Incoming), CodecError> {
    let wire: CallWire = decode(data)?;
    check_version(wire.version)?;
    let call = match (wire.command, wire.posted, wire.http) {
        (Some(args), None, None) => Call::Command(args),
        (None, Some(post), None) => Call::Posted(post),
        (None, None, Some(http)) => Call::Http(http),
        _ => {
            return Err(CodecError::Shape(
                "a forwarded call must carry exactly one call",
            ))
        }
    };
    let incoming = Incoming {
        from: wire.from,
        id: wire.id,
        session: wire.session,
        call,
    };
    Ok((wire.to, incoming))
}

pub(super) fn encode_reply(from: &str, id: &str, outcome: Outcome) -> Result<Vec<u8>, CodecError> {
    let mut wire = ReplyWire {
        version: VERSION,
        id: id.to_owned(),
        from: from.to_owned(),
        ..ReplyWire::default()
    };
    match outcome {
        Outcome::Command(response) => wire.command = Some(*response),
        Outcome::Ack => wire.ack = true,
        Outcome::Http(answer) => wire.http = Some(answer),
        Outcome::NotOwner => wire.not_owner = true,
    }
    encode(&wire)
}

pub(super) fn decode_reply(data: &[u8]) -> Result<Reply, CodecError> {
    let wire: ReplyWire = decode(data)?;
    check_version(wire.version)?;
    let outcome = match (wire.command, wire.ack, wire.http, wire.not_owner) {
        (Some(response), false, None, false) => Outcome::Command(Box::new(response)),
        (None, true, None, false) => Outcome::Ack,
        (None, false, Some(answer), false) => Outcome::Http(answer),
        (None, false, None, true) => Outcome::NotOwner,
        _ => {
            return Err(CodecError::Shape(
                "an answer must carry exactly one outcome",
            ))
        }
    };
    Ok(Reply {
        id: wire.id,
        from: wire.from,
        outcome,
    })
}

fn check_version(got: u64) -> Result<(), CodecError> {
    if got == VERSION {
        Ok(())
    } else {
        Err(CodecError::Version { got })
    }
}

/// A fresh gob stream holding `value` (refused past [`MAX_EVENT`], which the receiver would
/// refuse too).
fn encode<T: GobEncode>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    Encoder::new().encode(value, &mut out)?;
    if out.len() > MAX_EVENT {
        return Err(CodecError::TooBig {
            len: out.len(),
            limit: MAX_EVENT,
        });
    }
    Ok(out)
}

/// Reads the one value of a gob stream held whole in `data`: its type definitions, then the
/// value, then nothing. Our encoder never splits a value across messages, so a value that
/// would continue past its message is malformed here.
fn decode<T: GobDecode>(data: &[u8]) -> Result<T, CodecError> {
    if data.len() > MAX_EVENT {
        return Err(CodecError::TooBig {
            len: data.len(),
            limit: MAX_EVENT,
        });
    }
    let mut decoder = Decoder::new(Limits {
        max_message: MAX_EVENT,
        ..Limits::default()
    });
    let mut input = Input::new(data);
    loop {
        // Each message is its length (a gob uint) and that many bytes.
        let len = usize::try_from(input.uint()?).unwrap_or(usize::MAX);
        let message = input.take(len)?;
        if decoder.definition(message)?.is_some() {
            continue;
        }
        let Some((value, _)) = decoder.value(message, &[], |r, id| r.top_level::<T>(id))? else {
            return Err(CodecError::Shape("a value continued past its message"));
        };
        if !input.is_empty() {
            return Err(CodecError::Shape("data after the value"));
        }
        return Ok(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mattermost::model::Any;

    fn call_bytes() -> Vec<u8> {
        let post = Post {
            message: "hi".into(),
            props: Some([("k".to_owned(), Any::Int64(1))].into()),
            ..Post::default()
        };
        encode_call("a", "b", "id", "s", Call::Posted(post)).unwrap()
    }

    #[test]
    fn another_version_is_refused() {
        let wire = CallWire {
            version: VERSION + 1,
            command: Some(CommandArgs::default()),
            ..CallWire::default()
        };
        let err = decode_call(&encode(&wire).unwrap()).unwrap_err();
        assert!(
            matches!(err, CodecError::Version { got } if got == VERSION + 1),
            "{err:?}"
        );
        // An envelope without one (not ours, or older than versions) too.
        let wire = ReplyWire {
            ack: true,
            ..ReplyWire::default()
        };
        let err = decode_reply(&encode(&wire).unwrap()).unwrap_err();
        assert!(matches!(err, CodecError::Version { got: 0 }), "{err:?}");
    }

    #[test]
    fn none_or_several_calls_or_outcomes_are_refused() {
        for wire in [
            CallWire {
                version: VERSION,
                ..CallWire::default()
            },
            CallWire {
                version: VERSION,
                command: Some(CommandArgs::default()),
                posted: Some(Post::default()),
                ..CallWire::default()
            },
        ] {
            let err = decode_call(&encode(&wire).unwrap()).unwrap_err();
            assert!(matches!(err, CodecError::Shape(_)), "{err:?}");
        }
        for wire in [
            ReplyWire {
                version: VERSION,
                ..ReplyWire::default()
            },
            ReplyWire {
                version: VERSION,
                ack: true,
                not_owner: true,
                ..ReplyWire::default()
            },
        ] {
            let err = decode_reply(&encode(&wire).unwrap()).unwrap_err();
            assert!(matches!(err, CodecError::Shape(_)), "{err:?}");
        }
    }

    /// Gob matches fields by name, not struct names: what tells a call from an answer is the
    /// event id, and a call sent as an answer is still refused for carrying no outcome.
    #[test]
    fn a_call_is_not_an_answer() {
        let err = decode_reply(&call_bytes()).unwrap_err();
        assert!(matches!(err, CodecError::Shape(_)), "{err:?}");
    }

    #[test]
    fn truncated_padded_empty_or_oversize_data_is_refused() {
        let data = call_bytes();
        assert!(decode_call(&data).is_ok());
        for cut in [0, 1, data.len() / 2, data.len() - 1] {
            let err = decode_call(&data[..cut]).unwrap_err();
            assert!(matches!(err, CodecError::Gob(_)), "cut {cut}: {err:?}");
        }
        let mut padded = data.clone();
        padded.push(0);
        assert!(matches!(
            decode_call(&padded).unwrap_err(),
            CodecError::Shape("data after the value")
        ));
        let mut huge = data;
        huge.resize(MAX_EVENT + 1, 0);
        assert!(matches!(
            decode_call(&huge).unwrap_err(),
            CodecError::TooBig { len, limit: MAX_EVENT } if len == MAX_EVENT + 1
        ));
    }

    /// Every single-byte change and a run of pseudo-random garbage decode to a value or an
    /// error, never a panic.
    #[test]
    fn mangled_data_never_panics() {
        let data = call_bytes();
        for i in 0..data.len() {
            for b in [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff] {
                let mut mangled = data.clone();
                mangled[i] = b;
                let _ = decode_call(&mangled);
                let _ = decode_reply(&mangled);
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..2000 {
            let garbage: Vec<u8> = (0..len % 97)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            assert!(decode_call(&garbage).is_err() || garbage.is_empty());
        }
    }
}
