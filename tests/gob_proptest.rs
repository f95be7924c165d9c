//! Property tests: generated values survive encode → decode unchanged, on
//! fresh streams and on streams that already carry the types; arbitrary bytes
//! never make the decoder panic.

use std::collections::BTreeMap;

use claude_code::mattermost::model::*;
use claude_code::rpc::gob::stream::StreamDecoder;
use claude_code::rpc::gob::{Encoder, Gob, Value};
use proptest::prelude::*;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn round_trip<T: Gob + Clone>(values: &[T]) -> Vec<T> {
    let mut enc = Encoder::new();
    let mut bytes = Vec::new();
    for v in values {
        enc.encode(v, &mut bytes).unwrap();
    }
    block_on(async {
        let mut dec = StreamDecoder::new(&bytes[..]);
        let mut out = Vec::new();
        while let Some(v) = dec.decode::<T>().await.unwrap() {
            out.push(v);
        }
        out
    })
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z0-9 ]{1,20}", any::<String>()]
}

/// Strings Go cannot tell from nil when behind a pointer are left out.
fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop_oneof![Just(None), "[a-z]{1,10}".prop_map(Some)]
}

fn any_value() -> impl Strategy<Value = Any> {
    let leaf = prop_oneof![
        Just(Any::Nil),
        any::<bool>().prop_map(Any::Bool),
        any::<i64>().prop_map(Any::Int),
        any::<i64>().prop_map(Any::Int64),
        any::<i32>().prop_map(Any::Int32),
        any::<u64>().prop_map(Any::Uint64),
        (-1e300f64..1e300).prop_map(Any::Float64),
        text().prop_map(Any::String),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Any::Bytes),
        proptest::collection::vec(text(), 0..4).prop_map(Any::Strings),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Any::List),
            proptest::collection::btree_map(text(), inner, 0..6).prop_map(Any::Map),
        ]
    })
}

fn props() -> impl Strategy<Value = Props> {
    prop_oneof![
        Just(None),
        proptest::collection::btree_map(text(), any_value(), 0..6).prop_map(Some)
    ]
}

fn post() -> impl Strategy<Value = Post> {
    (
        (
            text(),
            any::<i64>(),
            any::<i64>(),
            any::<bool>(),
            text(),
            text(),
            text(),
        ),
        (
            props(),
            proptest::collection::vec(text(), 0..3),
            opt_text(),
            prop_oneof![Just(None), Just(Some(true))],
        ),
    )
        .prop_map(
            |(
                (id, create_at, edit_at, is_pinned, user_id, channel_id, message),
                (props, file_ids, remote_id, is_following),
            )| Post {
                id,
                create_at,
                edit_at,
                is_pinned,
                user_id,
                channel_id,
                message,
                props,
                file_ids,
                remote_id,
                is_following,
                ..Default::default()
            },
        )
}

fn command_args() -> impl Strategy<Value = CommandArgs> {
    (
        text(),
        text(),
        text(),
        text(),
        prop_oneof![
            Just(None),
            proptest::collection::btree_map(text(), text(), 0..4).prop_map(Some)
        ],
    )
        .prop_map(
            |(user_id, channel_id, command, site_url, user_mentions)| CommandArgs {
                user_id,
                channel_id,
                command,
                site_url,
                user_mentions,
                ..Default::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn posts_round_trip(posts in proptest::collection::vec(post(), 1..4)) {
        prop_assert_eq!(round_trip(&posts), posts);
    }

    #[test]
    fn command_args_round_trip(args in proptest::collection::vec(command_args(), 1..4)) {
        prop_assert_eq!(round_trip(&args), args);
    }

    #[test]
    fn nested_props_round_trip(map in proptest::collection::btree_map(text(), any_value(), 0..8)) {
        let maps: Vec<BTreeMap<String, Any>> = vec![map.clone(), map];
        prop_assert_eq!(round_trip(&maps), maps);
    }

    #[test]
    fn scalars_round_trip(i in any::<i64>(), u in any::<u64>(), f in any::<f64>().prop_filter("NaN", |f| !f.is_nan()), b in proptest::collection::vec(any::<u8>(), 0..300)) {
        prop_assert_eq!(round_trip(&[i]), vec![i]);
        prop_assert_eq!(round_trip(&[u]), vec![u]);
        prop_assert_eq!(round_trip(&[f]), vec![f]);
        prop_assert_eq!(round_trip(std::slice::from_ref(&b)), vec![b]);
    }

    /// Arbitrary bytes, and valid streams with bytes flipped or cut, give
    /// values or typed errors, never a panic or a hang.
    #[test]
    fn arbitrary_bytes_never_panic(
        noise in proptest::collection::vec(any::<u8>(), 0..512),
        p in post(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut valid = Vec::new();
        Encoder::new().encode(&p, &mut valid).unwrap();
        for (at, byte) in flips {
            let i = at.index(valid.len());
            valid[i] ^= byte;
        }
        valid.truncate(cut.index(valid.len() + 1));
        for bytes in [noise, valid] {
            block_on(async {
                let mut dec = StreamDecoder::new(&bytes[..]);
                for _ in 0..64 {
                    match dec.decode_value().await {
                        Ok(Some(v)) => { let _: Value = v.value; }
                        Ok(None) | Err(_) => break,
                    }
                }
                let mut dec = StreamDecoder::new(&bytes[..]);
                let _ = dec.decode::<Post>().await;
            });
        }
    }
}
