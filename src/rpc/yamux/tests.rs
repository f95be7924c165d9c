use super::*;
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

fn hx(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn arr(v: &[u8]) -> [u8; HEADER_LEN] {
    v.try_into().unwrap()
}

#[test]
fn spec_vectors_encode_and_decode() {
    let open1 = Header::new(FrameType::WindowUpdate, FLAG_SYN, 1, 0);
    assert_eq!(
        open1.encode().to_vec(),
        hx("00 01 00 01 00 00 00 01 00 00 00 00")
    );
    let ack1 = Header::new(FrameType::WindowUpdate, FLAG_ACK, 1, 0);
    assert_eq!(
        ack1.encode().to_vec(),
        hx("00 01 00 02 00 00 00 01 00 00 00 00")
    );
    let fin2 = Header::new(FrameType::WindowUpdate, FLAG_FIN, 2, 0);
    assert_eq!(
        fin2.encode().to_vec(),
        hx("00 01 00 04 00 00 00 02 00 00 00 00")
    );
    for h in [open1, ack1, fin2] {
        assert_eq!(Header::decode(&h.encode()).unwrap(), h);
    }
    let data = Header::decode(&arr(&hx("00 00 00 00 00 00 00 07 00 00 00 04"))).unwrap();
    assert_eq!(data, Header::new(FrameType::Data, 0, 7, 4));
    let ping = Header::decode(&arr(&hx("00 02 00 01 00 00 00 00 00 00 00 2a"))).unwrap();
    assert_eq!(ping, Header::new(FrameType::Ping, FLAG_SYN, 0, 42));
    let ga = Header::new(FrameType::GoAway, 0, 0, GO_AWAY_PROTOCOL_ERROR);
    assert_eq!(
        ga.encode().to_vec(),
        hx("00 03 00 00 00 00 00 00 00 00 00 01")
    );
}

#[test]
fn bad_headers_are_typed_errors() {
    assert!(matches!(
        Header::decode(&arr(&hx("01 00 00 00 00 00 00 01 00 00 00 00"))),
        Err(YamuxError::Protocol(_))
    ));
    assert!(matches!(
        Header::decode(&arr(&hx("00 04 00 00 00 00 00 01 00 00 00 00"))),
        Err(YamuxError::Protocol(_))
    ));
}

#[test]
fn window_accounting() {
    let mut w = Windows::default();
    assert_eq!(
        w.take_send(10 * INITIAL_WINDOW as usize),
        MAX_DATA_FRAME as u32
    );
    while w.take_send(usize::MAX) > 0 {}
    assert_eq!(w.send, 0);
    assert_eq!(w.take_send(1), 0);
    w.on_grant(100);
    assert_eq!(w.take_send(1000), 100);

    w.on_data(INITIAL_WINDOW - 10).unwrap();
    assert!(w.on_data(11).is_err());
    w.on_data(10).unwrap();
    assert_eq!(w.recv, 0);
    assert_eq!(w.on_consumed(GRANT_THRESHOLD - 1), None);
    assert_eq!(w.on_consumed(1), Some(GRANT_THRESHOLD));
    assert_eq!(w.recv, GRANT_THRESHOLD);
    assert_eq!(w.consumed, 0);
}

async fn read_header(io: &mut DuplexStream) -> Header {
    let mut b = [0u8; HEADER_LEN];
    io.read_exact(&mut b).await.unwrap();
    Header::decode(&b).unwrap()
}

async fn write_header(io: &mut DuplexStream, h: Header) {
    io.write_all(&h.encode()).await.unwrap();
}

#[tokio::test]
async fn host_stream_is_acked_and_echoes_with_fin() {
    let (mut host, plugin) = duplex(1 << 20);
    let (_session, mut incoming) = Session::server(plugin);
    write_header(
        &mut host,
        Header::new(FrameType::WindowUpdate, FLAG_SYN, 1, 0),
    )
    .await;
    assert_eq!(
        read_header(&mut host).await,
        Header::new(FrameType::WindowUpdate, FLAG_ACK, 1, 0)
    );
    let mut s = incoming.next().await.unwrap();
    assert_eq!(s.id(), 1);
    write_header(&mut host, Header::new(FrameType::Data, FLAG_FIN, 1, 3)).await;
    host.write_all(b"abc").await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"abc");
    s.write_all(b"xy").await.unwrap();
    s.shutdown().await.unwrap();
    assert_eq!(
        read_header(&mut host).await,
        Header::new(FrameType::Data, 0, 1, 2)
    );
    let mut p = [0u8; 2];
    host.read_exact(&mut p).await.unwrap();
    assert_eq!(&p, b"xy");
    assert_eq!(
        read_header(&mut host).await,
        Header::new(FrameType::WindowUpdate, FLAG_FIN, 1, 0)
    );
}

#[tokio::test]
async fn ping_is_answered_and_open_uses_even_ids() {
    let (mut host, plugin) = duplex(1 << 20);
    let (session, _incoming) = Session::server(plugin);
    write_header(&mut host, Header::new(FrameType::Ping, FLAG_SYN, 0, 77)).await;
    assert_eq!(
        read_header(&mut host).await,
        Header::new(FrameType::Ping, FLAG_ACK, 0, 77)
    );
    let a = session.open().unwrap();
    let b = session.open().unwrap();
    assert_eq!((a.id(), b.id()), (2, 4));
    assert_eq!(
        read_header(&mut host).await,
        Header::new(FrameType::WindowUpdate, FLAG_SYN, 2, 0)
    );
}

#[tokio::test]
async fn send_window_blocks_at_zero_until_granted() {
    let (mut host, plugin) = duplex(4 << 20);
    let (session, _incoming) = Session::server(plugin);
    let mut s = session.open().unwrap();
    let big = vec![7u8; INITIAL_WINDOW as usize + 1000];
    let writer = tokio::spawn(async move {
        s.write_all(&big).await.unwrap();
        s
    });
    let _syn = read_header(&mut host).await;
    let mut total = 0u32;
    while total < INITIAL_WINDOW {
        let h = read_header(&mut host).await;
        assert_eq!(h.ty, FrameType::Data);
        let mut p = vec![0u8; h.length as usize];
        host.read_exact(&mut p).await.unwrap();
        total += h.length;
    }
    assert_eq!(total, INITIAL_WINDOW);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!writer.is_finished());
    write_header(&mut host, Header::new(FrameType::WindowUpdate, 0, 2, 1000)).await;
    let _s = writer.await.unwrap();
    let h = read_header(&mut host).await;
    assert_eq!(h, Header::new(FrameType::Data, 0, 2, 1000));
}

#[tokio::test]
async fn receive_window_is_granted_as_consumed() {
    let (mut host, plugin) = duplex(4 << 20);
    let (_session, mut incoming) = Session::server(plugin);
    write_header(
        &mut host,
        Header::new(FrameType::WindowUpdate, FLAG_SYN, 1, 0),
    )
    .await;
    let _ack = read_header(&mut host).await;
    let mut s = incoming.next().await.unwrap();
    write_header(
        &mut host,
        Header::new(FrameType::Data, 0, 1, INITIAL_WINDOW),
    )
    .await;
    host.write_all(&vec![1u8; INITIAL_WINDOW as usize])
        .await
        .unwrap();
    let mut buf = vec![0u8; GRANT_THRESHOLD as usize];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(
        read_header(&mut host).await,
        Header::new(FrameType::WindowUpdate, 0, 1, GRANT_THRESHOLD)
    );
}

#[tokio::test]
async fn exceeding_window_is_protocol_error_with_go_away() {
    let (mut host, plugin) = duplex(4 << 20);
    let (session, mut incoming) = Session::server(plugin);
    write_header(
        &mut host,
        Header::new(FrameType::WindowUpdate, FLAG_SYN, 1, 0),
    )
    .await;
    let _ack = read_header(&mut host).await;
    let mut s = incoming.next().await.unwrap();
    write_header(
        &mut host,
        Header::new(FrameType::Data, 0, 1, INITIAL_WINDOW + 1),
    )
    .await;
    let r = session.closed().await;
    assert!(matches!(r, Err(YamuxError::Protocol(_))), "{r:?}");
    assert_eq!(
        read_header(&mut host).await,
        Header::new(FrameType::GoAway, 0, 0, GO_AWAY_PROTOCOL_ERROR)
    );
    let mut b = [0u8; 1];
    assert!(s.read(&mut b).await.is_err());
    assert!(session.open().is_err());
}

#[tokio::test]
async fn bad_frame_type_ends_session_and_unknown_streams_are_ignored() {
    let (mut host, plugin) = duplex(1 << 20);
    let (session, _incoming) = Session::server(plugin);
    write_header(&mut host, Header::new(FrameType::Data, 0, 9, 3)).await;
    host.write_all(b"zzz").await.unwrap();
    write_header(&mut host, Header::new(FrameType::Ping, FLAG_SYN, 0, 1)).await;
    assert_eq!(read_header(&mut host).await.ty, FrameType::Ping);
    host.write_all(&hx("00 09 00 00 00 00 00 00 00 00 00 00"))
        .await
        .unwrap();
    assert!(matches!(
        session.closed().await,
        Err(YamuxError::Protocol(_))
    ));
}

#[tokio::test]
async fn socket_eof_ends_session_and_fails_streams() {
    let (mut host, plugin) = duplex(1 << 20);
    let (session, mut incoming) = Session::server(plugin);
    write_header(
        &mut host,
        Header::new(FrameType::WindowUpdate, FLAG_SYN, 1, 0),
    )
    .await;
    let mut s = incoming.next().await.unwrap();
    drop(host);
    assert!(session.closed().await.is_ok());
    let mut b = [0u8; 1];
    assert!(s.read(&mut b).await.is_err());
    assert!(s.write_all(b"x").await.is_err());
    assert!(incoming.next().await.is_none());
}

proptest::proptest! {
    #[test]
    fn header_decode_never_panics_and_roundtrips(b in proptest::array::uniform12(0u8..)) {
        if let Ok(h) = Header::decode(&b) {
            proptest::prop_assert_eq!(h.encode(), b);
        }
    }

    #[test]
    fn plausible_frame_soup_never_panics(
        frames in proptest::collection::vec((0u8..5, 0u16..16, 0u32..8, 0u32..600), 0..40)
    ) {
        let mut bytes = Vec::new();
        for (ty, flags, id, len) in frames {
            bytes.push(0);
            bytes.push(ty);
            bytes.extend_from_slice(&flags.to_be_bytes());
            bytes.extend_from_slice(&id.to_be_bytes());
            bytes.extend_from_slice(&len.to_be_bytes());
            if ty == 0 {
                bytes.extend(std::iter::repeat_n(0xAB, len as usize));
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (mut host, plugin) = duplex(1 << 20);
            let (session, mut incoming) = Session::server(plugin);
            let s2 = session.clone();
            let drain = tokio::spawn(async move {
                while let Some(mut s) = incoming.next().await {
                    let _ = s.write_all(b"hi").await;
                    let _ = s2.open();
                    let mut v = Vec::new();
                    let _ = s.read_to_end(&mut v).await;
                }
            });
            let _ = host.write_all(&bytes).await;
            drop(host);
            let r = tokio::time::timeout(Duration::from_secs(5), session.closed()).await;
            assert!(r.is_ok(), "session did not end");
            let _ = drain.await;
        });
    }

    #[test]
    fn garbage_input_ends_session_without_panic(
        bytes in proptest::collection::vec(0u8.., 0..512)
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (mut host, plugin) = duplex(1 << 20);
            let (session, mut incoming) = Session::server(plugin);
            let drain = tokio::spawn(async move {
                while let Some(mut s) = incoming.next().await {
                    let mut v = Vec::new();
                    let _ = s.read_to_end(&mut v).await;
                }
            });
            let _ = host.write_all(&bytes).await;
            drop(host);
            let r = tokio::time::timeout(Duration::from_secs(5), session.closed()).await;
            assert!(r.is_ok(), "session did not end");
            let _ = drain.await;
        });
    }
}

#[tokio::test]
async fn close_ends_session_while_peer_stays_silent() {
    let (mut host, plugin) = duplex(1 << 20);
    let (session, mut incoming) = Session::server(plugin);
    write_header(
        &mut host,
        Header::new(FrameType::WindowUpdate, FLAG_SYN, 1, 0),
    )
    .await;
    let mut s = incoming.next().await.unwrap();
    session.close();
    assert!(session.closed().await.is_ok());
    assert!(session.is_closed());
    let mut b = [0u8; 1];
    assert!(s.read(&mut b).await.is_err());
    // Our side shut the socket down: the host sees the ACK, then EOF.
    let mut rest = Vec::new();
    host.read_to_end(&mut rest).await.unwrap();
    assert_eq!(
        rest,
        Header::new(FrameType::WindowUpdate, FLAG_ACK, 1, 0).encode()
    );
    assert!(incoming.next().await.is_none());
}

#[tokio::test]
async fn rst_fails_reads_and_writes() {
    let (mut host, plugin) = duplex(1 << 20);
    let (_session, mut incoming) = Session::server(plugin);
    write_header(
        &mut host,
        Header::new(FrameType::WindowUpdate, FLAG_SYN, 1, 0),
    )
    .await;
    let mut s = incoming.next().await.unwrap();
    write_header(
        &mut host,
        Header::new(FrameType::WindowUpdate, FLAG_RST, 1, 0),
    )
    .await;
    let mut b = [0u8; 1];
    assert_eq!(
        s.read(&mut b).await.unwrap_err().kind(),
        io::ErrorKind::ConnectionReset
    );
    assert!(s.write_all(b"x").await.is_err());
}
