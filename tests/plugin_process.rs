//! The built plugin executable, driven like Mattermost's host drives it: the
//! magic cookie, the handshake line, then a hand-rolled yamux CLIENT (the
//! host's role) opening streams 1/3/5, net/rpc on the control stream
//! (Ping, Dispense, Quit), the broker handshake for the hooks stream, and a
//! hook call on it. Also: exit when the host connection drops.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use claude_code::rpc::gob::stream::StreamDecoder;
use claude_code::rpc::gob::{Encoder, GobDecode, GobEncode};
use claude_code::rpc::handshake::MAGIC_COOKIE_VALUE;
use claude_code::rpc::netrpc::{Empty, RequestHeader, ResponseHeader};
use claude_code::rpc::yamux::{FrameType, Header, FLAG_FIN, FLAG_SYN, HEADER_LEN};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_claude-code");

fn plugin_command() -> Command {
    let mut c = Command::new(BIN);
    c.env("MATTERMOST_PLUGIN", MAGIC_COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

#[tokio::test]
async fn without_the_cookie_it_says_so_and_exits_1() {
    let out = Command::new(BIN)
        .env_remove("MATTERMOST_PLUGIN")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("Mattermost plugin"), "{err}");
}

/// Starts the plugin and returns it with the socket path from its handshake line.
async fn start() -> (Child, String) {
    let mut child = plugin_command().spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(3),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .expect("handshake within 3 s")
    .unwrap();
    let parts: Vec<&str> = line.trim_end().split('|').collect();
    assert_eq!(parts.len(), 6, "{line:?}");
    assert_eq!(&parts[..3], ["1", "1", "unix"]);
    assert_eq!(parts[4], "netrpc");
    assert!(line.ends_with("|netrpc|\n"), "{line:?}");
    (child, parts[3].to_owned())
}

async fn exits_within(child: &mut Child, limit: Duration) {
    let t = Instant::now();
    let status = tokio::time::timeout(limit, child.wait())
        .await
        .unwrap_or_else(|_| panic!("plugin still running after {limit:?}"))
        .unwrap();
    assert!(t.elapsed() <= limit);
    let _ = status;
}

#[tokio::test]
async fn exits_when_the_host_connection_drops() {
    let (mut child, socket) = start().await;
    let conn = UnixStream::connect(&socket).await.unwrap();
    // The socket file is gone once the one connection was accepted.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!std::path::Path::new(&socket).exists());
    let mut host = MiniHost::new(conn);
    for id in [1, 3, 5] {
        host.open(id).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(host);
    exits_within(&mut child, Duration::from_secs(2)).await;
}

/// A minimal yamux client: opens streams, sends DATA, and demultiplexes the
/// plugin's DATA frames into one pipe per stream.
struct MiniHost {
    write: OwnedWriteHalf,
    pipes: Arc<Mutex<HashMap<u32, DuplexStream>>>,
    readers: HashMap<u32, DuplexStream>,
}

impl MiniHost {
    fn new(conn: UnixStream) -> MiniHost {
        let (mut read, write) = conn.into_split();
        let pipes: Arc<Mutex<HashMap<u32, DuplexStream>>> = Arc::default();
        let p = pipes.clone();
        tokio::spawn(async move {
            loop {
                let mut h = [0u8; HEADER_LEN];
                if read.read_exact(&mut h).await.is_err() {
                    return;
                }
                let h = Header::decode(&h).unwrap();
                let mut payload = vec![
                    0u8;
                    if h.ty == FrameType::Data {
                        h.length as usize
                    } else {
                        0
                    }
                ];
                if read.read_exact(&mut payload).await.is_err() {
                    return;
                }
                let pipe = p.lock().unwrap().remove(&h.stream_id);
                if let Some(mut pipe) = pipe {
                    if !payload.is_empty() {
                        pipe.write_all(&payload).await.unwrap();
                    }
                    if h.flags & FLAG_FIN == 0 {
                        p.lock().unwrap().insert(h.stream_id, pipe);
                    }
                }
            }
        });
        MiniHost {
            write,
            pipes,
            readers: HashMap::new(),
        }
    }

    async fn open(&mut self, id: u32) {
        let (a, b) = tokio::io::duplex(1 << 20);
        self.pipes.lock().unwrap().insert(id, a);
        self.readers.insert(id, b);
        self.write
            .write_all(&Header::new(FrameType::WindowUpdate, FLAG_SYN, id, 0).encode())
            .await
            .unwrap();
    }

    async fn send(&mut self, id: u32, data: &[u8]) {
        self.write
            .write_all(&Header::new(FrameType::Data, 0, id, data.len() as u32).encode())
            .await
            .unwrap();
        self.write.write_all(data).await.unwrap();
    }

    fn reader(&mut self, id: u32) -> DuplexStream {
        self.readers.remove(&id).unwrap()
    }
}

/// A net/rpc client on one MiniHost stream.
struct RpcConn {
    id: u32,
    enc: Encoder,
    seq: u64,
    dec: StreamDecoder<DuplexStream>,
}

impl RpcConn {
    fn new(host: &mut MiniHost, id: u32) -> RpcConn {
        RpcConn {
            id,
            enc: Encoder::new(),
            seq: 0,
            dec: StreamDecoder::new(host.reader(id)),
        }
    }

    async fn call<A: GobEncode, R: GobDecode>(
        &mut self,
        host: &mut MiniHost,
        method: &str,
        arg: &A,
    ) -> Result<R, String> {
        let mut out = Vec::new();
        let header = RequestHeader {
            service_method: method.into(),
            seq: self.seq,
        };
        self.enc.encode(&header, &mut out).unwrap();
        self.enc.encode(arg, &mut out).unwrap();
        host.send(self.id, &out).await;
        let resp: ResponseHeader = tokio::time::timeout(Duration::from_secs(5), self.dec.decode())
            .await
            .expect("answer within 5 s")
            .unwrap()
            .unwrap();
        assert_eq!(resp.seq, self.seq);
        assert_eq!(resp.service_method, method);
        self.seq += 1;
        if !resp.error.is_empty() {
            let _: Empty = self.dec.decode().await.unwrap().unwrap();
            return Err(resp.error);
        }
        Ok(self.dec.decode::<R>().await.unwrap().unwrap())
    }
}

#[tokio::test]
async fn control_dispense_hooks_and_quit() {
    let (mut child, socket) = start().await;
    let stderr = child.stderr.take().unwrap();
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let l = log.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            l.lock().unwrap().push(line);
        }
    });
    let mut host = MiniHost::new(UnixStream::connect(&socket).await.unwrap());
    for id in [1, 3, 5] {
        host.open(id).await;
    }
    let mut control = RpcConn::new(&mut host, 1);
    let _: Empty = control
        .call(&mut host, "Control.Ping", &true)
        .await
        .unwrap();
    let id: u32 = control
        .call(&mut host, "Dispenser.Dispense", &"hooks".to_string())
        .await
        .unwrap();
    assert_eq!(id, 1);
    let err = control
        .call::<_, u32>(&mut host, "Dispenser.Dispense", &"grpc".to_string())
        .await
        .unwrap_err();
    assert_eq!(err, "unknown plugin type: grpc");

    // Broker: open stream 7 carrying the id; the plugin acks with the same 4 bytes.
    host.open(7).await;
    host.send(7, &id.to_le_bytes()).await;
    let mut hooks_reader = host.reader(7);
    let mut ack = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), hooks_reader.read_exact(&mut ack))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ack, [1, 0, 0, 0]);
    host.readers.insert(7, hooks_reader);
    let mut hooks = RpcConn::new(&mut host, 7);
    let names: Vec<String> = hooks
        .call(&mut host, "Plugin.Implemented", &Empty {})
        .await
        .unwrap();
    assert!(names.contains(&"ServeHTTP".to_string()), "{names:?}");
    assert_eq!(names.len(), claude_code::app::IMPLEMENTED.len());

    let _: Empty = control
        .call(&mut host, "Control.Quit", &true)
        .await
        .unwrap();
    exits_within(&mut child, Duration::from_secs(2)).await;

    // Every stderr line is hclog JSON.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let lines = log.lock().unwrap().clone();
    assert!(!lines.is_empty());
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(
            v["@level"].is_string() && v["@message"].is_string() && v["@timestamp"].is_string(),
            "{l}"
        );
    }
}
