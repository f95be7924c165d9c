//! Evaluation peer: rust-libp2p `yamux` 0.14.1 as the plugin-side SERVER, speaking the lab
//! protocol of tests/conformance/cmd/yamuxpeer (session 1 only; run Go with -skip-goplugin).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

type S = tokio_util::compat::Compat<yamux::Stream>;

async fn echo<T: AsyncRead + AsyncWrite + Unpin>(mut s: T) -> std::io::Result<()> {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        s.write_all(&buf[..n]).await?;
    }
    s.shutdown().await
}

#[tokio::main]
async fn main() {
    let path = std::env::args().nth(1).expect("socket path");
    let _ = std::fs::remove_file(&path);
    let l = tokio::net::UnixListener::bind(&path).unwrap();
    println!("listening");
    let (sock, _) = l.accept().await.unwrap();
    let mut conn =
        yamux::Connection::new(sock.compat(), yamux::Config::default(), yamux::Mode::Server);
    let (open_tx, mut open_rx) = mpsc::channel::<oneshot::Sender<yamux::Stream>>(16);
    let (in_tx, mut in_rx) = mpsc::unbounded_channel::<yamux::Stream>();
    let driver = tokio::spawn(async move {
        let mut pending: Option<oneshot::Sender<yamux::Stream>> = None;
        futures::future::poll_fn(|cx| loop {
            if pending.is_none() {
                if let Poll::Ready(Some(tx)) = open_rx.poll_recv(cx) {
                    pending = Some(tx);
                }
            }
            if pending.is_some() {
                if let Poll::Ready(r) = conn.poll_new_outbound(cx) {
                    let tx = pending.take().unwrap();
                    match r {
                        Ok(s) => {
                            let _ = tx.send(s);
                        }
                        Err(e) => eprintln!("eval: outbound error {e}"),
                    }
                    continue;
                }
            }
            match conn.poll_next_inbound(cx) {
                Poll::Ready(Some(Ok(s))) => {
                    let _ = in_tx.send(s);
                    continue;
                }
                Poll::Ready(Some(Err(e))) => {
                    eprintln!("eval: connection error {e}");
                    return Poll::Ready(());
                }
                Poll::Ready(None) => {
                    eprintln!("eval: connection closed");
                    return Poll::Ready(());
                }
                Poll::Pending => return Poll::Pending,
            }
        })
        .await
    });
    let control = in_rx.recv().await.unwrap().compat();
    let mut stdout = in_rx.recv().await.unwrap().compat();
    let _stderr = in_rx.recv().await.unwrap().compat(); // idle, like a quiet plugin
    stdout.write_all(b"stdout-hello\n").await.unwrap();
    stdout.shutdown().await.unwrap();

    let sinks: Arc<Mutex<HashMap<u32, oneshot::Sender<u64>>>> = Arc::default();
    let mut sink_rx: HashMap<u32, oneshot::Receiver<u64>> = HashMap::new();
    // Broker accept: every later stream carries a 4-byte LE id; ack and echo (or sink).
    let sinks2 = sinks.clone();
    tokio::spawn(async move {
        while let Some(s) = in_rx.recv().await {
            let sinks = sinks2.clone();
            tokio::spawn(async move {
                let mut s: S = s.compat();
                let mut id = [0u8; 4];
                s.read_exact(&mut id).await.unwrap();
                s.write_all(&id).await.unwrap();
                let idn = u32::from_le_bytes(id);
                let sink = sinks.lock().unwrap().remove(&idn);
                if let Some(tx) = sink {
                    s.write_all(b"early\n").await.unwrap();
                    s.shutdown().await.unwrap();
                    let mut v = Vec::new();
                    s.read_to_end(&mut v).await.unwrap();
                    let _ = tx.send(v.len() as u64);
                } else if let Err(e) = echo(s).await {
                    eprintln!("eval: echo {idn}: {e}");
                }
            });
        }
    });
    let (rd, mut wr) = tokio::io::split(control);
    let mut lines = BufReader::new(rd).lines();
    let mut next_id = 0u32;
    while let Ok(Some(line)) = lines.next_line().await {
        let f: Vec<&str> = line.split_whitespace().collect();
        let reply = match f.as_slice() {
            ["accept-echo", n] => {
                let n: u32 = n.parse().unwrap();
                let ids: Vec<String> = (0..n)
                    .map(|_| {
                        next_id += 1;
                        next_id.to_string()
                    })
                    .collect();
                format!("ids {}", ids.join(" "))
            }
            ["dial-echo", id] => {
                let id: u32 = id.parse().unwrap();
                let (tx, rx) = oneshot::channel();
                open_tx.send(tx).await.unwrap();
                tokio::spawn(async move {
                    let mut s: S = rx.await.unwrap().compat();
                    s.write_all(&id.to_le_bytes()).await.unwrap();
                    let mut ack = [0u8; 4];
                    s.read_exact(&mut ack).await.unwrap();
                    echo(s).await.unwrap();
                });
                "ok".into()
            }
            ["accept-sink"] => {
                next_id += 1;
                let (tx, rx) = oneshot::channel();
                sinks.lock().unwrap().insert(next_id, tx);
                sink_rx.insert(next_id, rx);
                format!("ids {next_id}")
            }
            ["sink-result", id] => {
                let rx = sink_rx.remove(&id.parse::<u32>().unwrap()).unwrap();
                format!("sunk {}", rx.await.unwrap_or(0))
            }
            ["stats"] => "ok".into(),
            ["bye"] => "bye".into(),
            _ => "error".into(),
        };
        if wr.write_all(format!("{reply}\n").as_bytes()).await.is_err() {
            eprintln!("eval: control write failed");
            break;
        }
    }
    let t = std::time::Instant::now();
    let r = tokio::time::timeout(std::time::Duration::from_secs(2), driver).await;
    eprintln!(
        "eval: driver ended: {:?} after {:?}",
        r.is_ok(),
        t.elapsed()
    );
}
