//! Byte vectors produced by Go's encoding/gob (protocol notes §3.3), and
//! behaviour on hostile input.

use super::stream::StreamDecoder;
use super::wire::{self, FieldType, WireType};
use super::*;

crate::gob_struct! {
    struct Request("Request") {
        service_method: String => "ServiceMethod",
        seq: u64 => "Seq",
    }

    struct Response("Response") {
        service_method: String => "ServiceMethod",
        seq: u64 => "Seq",
        error: String => "Error",
    }

    struct Empty("") {}

    struct Node("Node") {
        name: String => "Name",
        children: Vec<Node> => "Children",
        tags: Option<BTreeMap<String, bool>> => "Tags",
        when: time::GoTime => "When",
    }
}

fn hexs(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Builds bytes from hex groups and quoted ASCII strings, as the notes write them.
fn vector(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        if let Some(text) = p.strip_prefix('"') {
            out.extend_from_slice(text.trim_end_matches('"').as_bytes());
        } else {
            out.extend(hexs(p));
        }
    }
    out
}

async fn decode_all<T: GobDecode>(bytes: &[u8]) -> Vec<T> {
    let mut d = StreamDecoder::new(bytes);
    let mut out = Vec::new();
    while let Some(v) = d.decode::<T>().await.unwrap() {
        out.push(v);
    }
    out
}

#[tokio::test]
async fn v1_ping_request_decodes_and_reencodes_byte_exact() {
    let header = vector(&[
        "2f ff 81 03 01 01 07 52 65 71 75 65 73 74 01 ff 82 00 01 02 01 0d 53 65 72 76 69 63 65 4d 65 74 68 6f 64 01 0c 00 01 03 53 65 71 01 06 00 00 00",
        "11 ff 82 01 0c 43 6f 6e 74 72 6f 6c 2e 50 69 6e 67 00",
    ]);
    let body = hexs("03 02 00 01");
    let mut stream = header.clone();
    stream.extend(&body);
    let mut d = StreamDecoder::new(&stream[..]);
    let req: Request = d.decode().await.unwrap().unwrap();
    assert_eq!(
        req,
        Request {
            service_method: "Control.Ping".into(),
            seq: 0
        }
    );
    assert!(d.decode::<bool>().await.unwrap().unwrap());
    assert!(d.decode::<bool>().await.unwrap().is_none());

    let mut enc = Encoder::new();
    let mut out = Vec::new();
    enc.encode(&req, &mut out).unwrap();
    assert_eq!(out, header);
    out.clear();
    enc.encode(&true, &mut out).unwrap();
    assert_eq!(out, body);
}

#[tokio::test]
async fn v2_v3_empty_struct_and_string_slice_match_go() {
    // After Request (65) Go defines struct{} as 66 on first use.
    let mut enc = Encoder::new();
    let mut out = Vec::new();
    enc.encode(
        &Request {
            service_method: "Plugin.Implemented".into(),
            seq: 1,
        },
        &mut out,
    )
    .unwrap();
    let header_len = out.len();
    enc.encode(&Empty {}, &mut out).unwrap();
    assert_eq!(
        &out[header_len..],
        &hexs("0a ff 83 03 01 02 ff 84 00 00 00 03 ff 84 00")[..]
    );
    assert_eq!(
        &out[header_len - 0x1a..header_len],
        &vector(&["19 ff 82 01 12", "\"Plugin.Implemented\"", "01 01 00"])[..]
    );

    let reply = vector(&[
        "0c ff 87 02 01 02 ff 88 00 01 0c 00 00",
        "1e ff 88 00 02 0a",
        "\"OnActivate\"",
        "0e",
        "\"ExecuteCommand\"",
    ]);
    let names: Vec<Vec<String>> = decode_all(&reply).await;
    assert_eq!(
        names,
        vec![vec!["OnActivate".to_string(), "ExecuteCommand".to_string()]]
    );
}

#[tokio::test]
async fn v4_error_response_header() {
    let bytes = vector(&[
        "3a ff 85 03 01 01 08",
        "\"Response\"",
        "01 ff 86 00 01 03 01 0d",
        "\"ServiceMethod\"",
        "01 0c 00 01 03",
        "\"Seq\"",
        "01 06 00 01 05",
        "\"Error\"",
        "01 0c 00 00 00",
        "36 ff 86 01 0b",
        "\"Plugin.Nope\"",
        "01 05 01 22",
        "\"rpc: can't find method Plugin.Nope\"",
        "00",
    ]);
    let resp: Vec<Response> = decode_all(&bytes).await;
    assert_eq!(
        resp,
        vec![Response {
            service_method: "Plugin.Nope".into(),
            seq: 5,
            error: "rpc: can't find method Plugin.Nope".into()
        }]
    );
}

#[tokio::test]
async fn v5_scalars_and_time() {
    assert_eq!(decode_all::<u32>(&hexs("03 06 00 01")).await, vec![1]);
    assert_eq!(
        decode_all::<i64>(&hexs("05 04 00 fe 01 90")).await,
        vec![200]
    );
    assert_eq!(
        decode_all::<Vec<u8>>(&hexs("05 0a 00 02 68 69")).await,
        vec![b"hi".to_vec()]
    );
    let t = vector(&[
        "10 ff 95 05 01 01 04",
        "\"Time\"",
        "01 ff 96 00 00 00",
        "13 ff 96 00 0f 01 00 00 00 0e d5 9f 54 a5 00 00 00 06 ff ff",
    ]);
    let times: Vec<time::GoTime> = decode_all(&t).await;
    // 2020-01-02T03:04:05.000000006Z
    assert_eq!(times[0].unix_seconds(), 1_577_934_245);
    assert_eq!(times[0].nanos, 6);
    assert_eq!(times[0].offset_minutes, -1);
    let mut out = Vec::new();
    let mut enc = Encoder::new();
    enc.encode(&1u32, &mut out).unwrap();
    assert_eq!(out, hexs("03 06 00 01"));
}

#[tokio::test]
async fn v7_props_map_decodes_generically() {
    let bytes = vector(&[
        "27 ff 8d 04 01 01 17",
        "\"map[string]interface {}\"",
        "01 ff 8e 00 01 0c 01 10 00 00",
        "12 ff 8e 00 01 01 73 06",
        "\"string\"",
        "0c 03 00 01 76",
    ]);
    let values: Vec<Value> = decode_all(&bytes).await;
    assert_eq!(
        values[0],
        Value::Map(vec![(
            Value::String("s".into()),
            Value::Interface(Some(Box::new(("string".into(), Value::String("v".into())))))
        )])
    );
}

/// Go's encoder ends the message after an interface's inline type definition
/// and continues the value in the next message (vector V6's shape).
#[tokio::test]
async fn value_split_across_messages_after_inline_definition() {
    // struct Outer { A interface; B string } as id 70; concrete type struct
    // Inner { X int } as id 71, defined inline inside A's value.
    let mut outer_def = Vec::new();
    wire::put_int(&mut outer_def, -70);
    WireType::Struct {
        name: "Outer".into(),
        fields: vec![
            FieldType {
                name: "A".into(),
                id: wire::INTERFACE,
            },
            FieldType {
                name: "B".into(),
                id: wire::STRING,
            },
        ],
    }
    .encode(70, &mut outer_def);
    let mut first = Vec::new();
    wire::put_int(&mut first, 70);
    first.push(1); // field A
    wire::put_string(&mut first, "*pkg.Inner");
    wire::put_int(&mut first, -71);
    WireType::Struct {
        name: "Inner".into(),
        fields: vec![FieldType {
            name: "X".into(),
            id: wire::INT,
        }],
    }
    .encode(71, &mut first);
    let mut second = Vec::new();
    wire::put_int(&mut second, 71);
    second.extend([3, 1, 0x0e, 0]); // byte count 3, {X: 7}
    second.extend([1]); // field B
    wire::put_string(&mut second, "tail");
    second.push(0);
    let mut stream = Vec::new();
    for m in [&outer_def, &first, &second] {
        wire::put_uint(&mut stream, m.len() as u64);
        stream.extend_from_slice(m);
    }
    // A second value on the same stream re-uses both definitions.
    let mut third = Vec::new();
    wire::put_int(&mut third, 70);
    third.push(1);
    wire::put_string(&mut third, "*pkg.Inner");
    wire::put_int(&mut third, 71);
    third.extend([3, 1, 0x10, 0, 0]);
    wire::put_uint(&mut stream, third.len() as u64);
    stream.extend_from_slice(&third);

    let mut d = StreamDecoder::new(&stream[..]);
    let v = d.decode_value().await.unwrap().unwrap();
    assert_eq!(v.defined, vec![70, 71]);
    let inner = |x| {
        Value::Interface(Some(Box::new((
            "*pkg.Inner".into(),
            Value::Struct(vec![("X".into(), Value::Int(x))]),
        ))))
    };
    assert_eq!(
        v.value,
        Value::Struct(vec![
            ("A".into(), inner(7)),
            ("B".into(), Value::String("tail".into()))
        ])
    );
    let v = d.decode_value().await.unwrap().unwrap();
    assert_eq!(v.value, Value::Struct(vec![("A".into(), inner(8))]));
    // The same stream skipped instead of decoded keeps the definitions too.
    let mut d = StreamDecoder::new(&stream[..]);
    assert!(d.skip().await.unwrap().is_some());
    assert!(d.skip().await.unwrap().is_some());
    assert!(d.skip().await.unwrap().is_none());
}

#[tokio::test]
async fn recursive_struct_round_trips_and_omits_zero_fields() {
    let tree = Node {
        name: "root".into(),
        children: vec![
            Node {
                name: "a".into(),
                ..Default::default()
            },
            Node {
                name: String::new(),
                children: vec![Node::default()],
                tags: Some(BTreeMap::new()),
                when: time::GoTime::from_unix(1_700_000_000, 5),
            },
        ],
        tags: Some([("x".to_string(), true)].into()),
        when: time::GoTime::default(),
    };
    let mut enc = Encoder::new();
    let mut out = Vec::new();
    enc.encode(&tree, &mut out).unwrap();
    enc.encode(&tree, &mut out).unwrap();
    let back: Vec<Node> = decode_all(&out).await;
    assert_eq!(back, vec![tree.clone(), tree]);
    // Definitions went out once: the second value message alone is smaller.
    let mut again = Vec::new();
    enc.encode(&Node::default(), &mut again).unwrap();
    assert_eq!(again, hexs("03 ff 82 00"));
}

#[tokio::test]
async fn unknown_fields_are_skipped_and_missing_fields_stay_default() {
    // A wire Response decoded as a Request: Error is skipped.
    let mut enc = Encoder::new();
    let mut out = Vec::new();
    let resp = Response {
        service_method: "A.B".into(),
        seq: 9,
        error: "e".into(),
    };
    enc.encode(&resp, &mut out).unwrap();
    let got: Vec<Request> = decode_all(&out).await;
    assert_eq!(
        got,
        vec![Request {
            service_method: "A.B".into(),
            seq: 9
        }]
    );
    // And back: the missing Error stays empty.
    let mut out = Vec::new();
    Encoder::new()
        .encode(
            &Request {
                service_method: "C.D".into(),
                seq: 0,
            },
            &mut out,
        )
        .unwrap();
    let got: Vec<Response> = decode_all(&out).await;
    assert_eq!(got[0].error, "");
}

async fn first_error(bytes: &[u8]) -> Error {
    let mut d = StreamDecoder::new(bytes);
    loop {
        match d.decode_value().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error in {bytes:02x?}"),
            Err(e) => return e,
        }
    }
}

#[tokio::test]
async fn hostile_input_gives_typed_errors() {
    // Truncated message.
    assert!(matches!(
        first_error(&hexs("05 04 00")).await,
        Error::Truncated(_)
    ));
    // A length claiming 2^40 bytes is refused before allocation.
    assert!(matches!(
        first_error(&hexs("fb 01 00 00 00 00")).await,
        Error::MessageTooLarge { .. }
    ));
    // A value of an unknown type id.
    assert!(matches!(
        first_error(&hexs("03 ff 90 00")).await,
        Error::UnknownType(72)
    ));
    // A definition re-using an id, and one using a reserved id.
    let def = vector(&["0a ff 83 03 01 02 ff 84 00 00 00"]);
    let mut twice = def.clone();
    twice.extend(&def);
    twice.extend(hexs("03 ff 84 00"));
    assert!(matches!(
        first_error(&twice).await,
        Error::DuplicateType(66)
    ));
    assert!(matches!(
        first_error(&hexs("08 13 03 01 02 14 00 00 00")).await,
        Error::DuplicateType(10)
    ));
    // Invalid UTF-8 in a string.
    assert_eq!(
        first_error(&hexs("05 0c 00 02 c3 28")).await,
        Error::InvalidUtf8
    );
    // A type mismatch: a string where a bool is wanted.
    let text = hexs("05 0c 00 02 68 69");
    let mut d = StreamDecoder::new(&text[..]);
    assert!(matches!(
        d.decode::<bool>().await,
        Err(Error::TypeMismatch(_))
    ));
    // After an error in one value the stream goes on with the next.
    let mut two = hexs("05 0c 00 02 68 69");
    two.extend(hexs("03 02 00 01"));
    let mut d = StreamDecoder::new(&two[..]);
    assert!(d.decode::<bool>().await.is_err());
    assert!(d.decode::<bool>().await.unwrap().unwrap());
    // Nesting deeper than the limit.
    let mut deep = Vec::new();
    let mut def = Vec::new();
    wire::put_int(&mut def, -65);
    WireType::Slice {
        name: String::new(),
        elem: 65,
    }
    .encode(65, &mut def);
    wire::put_uint(&mut deep, def.len() as u64);
    deep.extend(&def);
    let mut val = vec![0xff, 0x82, 0x00];
    val.extend(std::iter::repeat_n(1u8, 1000));
    val.push(0);
    wire::put_uint(&mut deep, val.len() as u64);
    deep.extend(&val);
    assert!(matches!(first_error(&deep).await, Error::TooDeep(_)));
}

/// Hands out one byte per read: every message, and every length prefix, arrives split.
struct Trickle<'a>(&'a [u8]);

impl tokio::io::AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if let Some((first, rest)) = self.0.split_first() {
            buf.put_slice(&[*first]);
            self.0 = rest;
        }
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn buffered_and_trickled_streams_decode_alike() {
    // Small values (decoded straight from the read buffer), a 20 KB string (larger than the
    // buffer, with a 3-byte length prefix) and a truncated tail.
    let mut enc = Encoder::new();
    let mut stream = Vec::new();
    let values = [
        "a".to_owned(),
        "é".repeat(10_000),
        String::new(),
        "z".into(),
    ];
    for v in &values {
        enc.encode(v, &mut stream).unwrap();
    }
    let mut buffered = StreamDecoder::new(&stream[..]);
    let mut trickled = StreamDecoder::new(Trickle(&stream));
    for v in &values {
        assert_eq!(&buffered.decode::<String>().await.unwrap().unwrap(), v);
        assert_eq!(&trickled.decode::<String>().await.unwrap().unwrap(), v);
    }
    assert!(buffered.decode::<String>().await.unwrap().is_none());
    assert!(trickled.decode::<String>().await.unwrap().is_none());

    let cut = &stream[..stream.len() - 1];
    let mut trickled = StreamDecoder::new(Trickle(cut));
    for v in &values[..3] {
        assert_eq!(&trickled.decode::<String>().await.unwrap().unwrap(), v);
    }
    assert!(matches!(
        trickled.decode::<String>().await,
        Err(Error::Truncated(_))
    ));
    // A stream ending inside a multi-byte length prefix (the second message's starts at 5).
    assert_eq!(stream[5], 0xfe, "two-byte length follows");
    let mut d = StreamDecoder::new(Trickle(&stream[5..7]));
    assert!(matches!(d.decode_value().await, Err(Error::Truncated(_))));
}

/// Go strings may hold any bytes: a typed string takes them with U+FFFD in place of what is not
/// UTF-8 (an untyped value stays strict, see `hostile_input_gives_typed_errors`).
#[tokio::test]
async fn a_typed_string_takes_invalid_utf8_as_replacement_characters() {
    assert_eq!(
        decode_all::<String>(&hexs("05 0c 00 02 c3 28")).await,
        ["\u{FFFD}("]
    );
}
