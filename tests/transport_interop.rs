//! Interop of our transport (yamux server session + MuxBroker) with the REAL Go implementation:
//! hashicorp/yamux v0.1.2 and go-plugin v1.7.0, driven by `tests/conformance/cmd/yamuxpeer`
//! (see its header for the scripted line protocol). Skips only when `go` is not installed.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-transport cargo test --test transport_interop -- --nocapture`

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use claude_code::rpc::broker::{Broker, HostStreams};
use claude_code::rpc::handshake;
use claude_code::rpc::yamux::{Session, Stream};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::oneshot;

type Checks = Arc<Mutex<Vec<(String, Result<(), String>)>>>;

fn record(checks: &Checks, name: &str, r: Result<(), String>) {
    match &r {
        Ok(()) => println!("PASS {name}"),
        Err(e) => println!("FAIL {name}: {e}"),
    }
    checks.lock().unwrap().push((name.to_string(), r));
}

async fn echo(mut s: Stream) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        s.write_all(&buf[..n]).await?;
        total += n as u64;
    }
    s.shutdown().await?;
    Ok(total)
}

fn spawn_echo<F>(checks: &Checks, what: String, fut: F)
where
    F: std::future::Future<Output = Result<Stream, String>> + Send + 'static,
{
    let checks = checks.clone();
    tokio::spawn(async move {
        let r = match fut.await {
            Ok(s) => echo(s).await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            record(&checks, &format!("rust: {what}"), Err(e));
        }
    });
}

async fn lab_peer(conn: UnixStream, checks: Checks) -> Result<(), String> {
    let (session, incoming) = Session::server(conn);
    let (
        HostStreams {
            control,
            mut stdout,
            stderr,
        },
        broker,
    ) = Broker::start(session.clone(), incoming)
        .await
        .map_err(|e| e.to_string())?;
    record(
        &checks,
        "rust lab: host streams accepted in order 1,3,5",
        if (control.id(), stdout.id(), stderr.id()) == (1, 3, 5) {
            Ok(())
        } else {
            Err(format!("{} {} {}", control.id(), stdout.id(), stderr.id()))
        },
    );
    stdout
        .write_all(b"stdout-hello\n")
        .await
        .map_err(|e| e.to_string())?;
    stdout.shutdown().await.map_err(|e| e.to_string())?;
    // stderr stays idle (never written) until the end: its ACK must not depend on traffic.
    let mut idle_stderr = stderr;

    let sinks: Arc<Mutex<HashMap<u32, oneshot::Receiver<u64>>>> = Arc::default();
    let (rd, mut wr) = tokio::io::split(control);
    let mut lines = BufReader::new(rd).lines();
    let mut bye_at = None;
    while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
        let f: Vec<&str> = line.split_whitespace().collect();
        let reply = match f.as_slice() {
            ["accept-echo", n] => {
                let n: u32 = n.parse().map_err(|_| format!("bad line {line:?}"))?;
                let ids: Vec<u32> = (0..n).map(|_| broker.next_id()).collect();
                for &id in &ids {
                    let b = broker.clone();
                    spawn_echo(&checks, format!("accept-echo id {id}"), async move {
                        b.accept(id).await.map_err(|e| e.to_string())
                    });
                }
                let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
                format!("ids {}", ids.join(" "))
            }
            ["dial-echo", id] => {
                let id: u32 = id.parse().map_err(|_| format!("bad line {line:?}"))?;
                let b = broker.clone();
                spawn_echo(&checks, format!("dial-echo id {id}"), async move {
                    b.dial(id).await.map_err(|e| e.to_string())
                });
                "ok".to_string()
            }
            ["accept-sink"] => {
                let id = broker.next_id();
                let (tx, rx) = oneshot::channel();
                sinks.lock().unwrap().insert(id, rx);
                let b = broker.clone();
                let checks = checks.clone();
                tokio::spawn(async move {
                    let r = async {
                        let mut s = b.accept(id).await.map_err(|e| e.to_string())?;
                        s.write_all(b"early\n").await.map_err(|e| e.to_string())?;
                        s.shutdown().await.map_err(|e| e.to_string())?;
                        let mut sink = Vec::new();
                        s.read_to_end(&mut sink).await.map_err(|e| e.to_string())?;
                        Ok::<_, String>(sink.len() as u64)
                    }
                    .await;
                    match r {
                        Ok(n) => {
                            let _ = tx.send(n);
                        }
                        Err(e) => record(&checks, "rust: sink", Err(e)),
                    }
                });
                format!("ids {id}")
            }
            ["sink-result", id] => {
                let id: u32 = id.parse().map_err(|_| format!("bad line {line:?}"))?;
                let rx = sinks.lock().unwrap().remove(&id);
                match rx {
                    Some(rx) => match tokio::time::timeout(Duration::from_secs(10), rx).await {
                        Ok(Ok(n)) => format!("sunk {n}"),
                        _ => "sunk error".to_string(),
                    },
                    None => "sunk unknown".to_string(),
                }
            }
            ["stats"] => "ok".to_string(),
            ["bye"] => "bye".to_string(),
            _ => format!("error unknown command {line:?}"),
        };
        wr.write_all(format!("{reply}\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        if reply == "bye" {
            bye_at = Some(Instant::now());
            break;
        }
    }
    let Some(bye_at) = bye_at else {
        return Err("control stream ended without bye".into());
    };
    let r = match tokio::time::timeout(Duration::from_secs(2), session.closed()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("session ended with error {e}")),
        Err(_) => Err("session still open 2 s after host close".into()),
    };
    let took = bye_at.elapsed();
    record(
        &checks,
        &format!("rust lab: session ended after host closed it ({took:?} after bye, limit 2 s)"),
        r,
    );
    let mut b = [0u8; 1];
    let r = match idle_stderr.read(&mut b).await {
        Err(_) => Ok(()),
        Ok(n) => Err(format!("read on dead session returned Ok({n})")),
    };
    record(
        &checks,
        "rust lab: streams fail once the session is gone",
        r,
    );
    Ok(())
}

/// Canned gob replies (codec is another team's job): V3 Response definition, then headers.
fn hx(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for tok in s.split_whitespace() {
        if let Some(text) = tok.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            out.extend_from_slice(text.as_bytes());
        } else {
            out.push(u8::from_str_radix(tok, 16).unwrap());
        }
    }
    out
}

fn dispense_reply(id: u8) -> Vec<u8> {
    let mut v = hx(concat!(
        "3a ff 85 03 01 01 08 \"Response\" 01 ff 86 00 01 03 01 0d \"ServiceMethod\" 01 0c 00 ",
        "01 03 \"Seq\" 01 06 00 01 05 \"Error\" 01 0c 00 00 00 ",
        "17 ff 86 01 12 \"Dispenser.Dispense\" 00"
    ));
    v.extend_from_slice(&[3, 6, 0, id]);
    v
}

fn quit_reply() -> Vec<u8> {
    hx(concat!(
        "13 ff 86 01 0c \"Control.Quit\" 01 01 00 ",
        "0a ff 83 03 01 02 ff 84 00 00 00 03 ff 84 00"
    ))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn goplugin_peer(conn: UnixStream, checks: Checks) -> Result<(), String> {
    let (session, incoming) = Session::server(conn);
    let (
        HostStreams {
            mut control,
            mut stdout,
            mut stderr,
        },
        broker,
    ) = Broker::start(session.clone(), incoming)
        .await
        .map_err(|e| e.to_string())?;
    for (s, text) in [
        (&mut stdout, "stdout-hello\n"),
        (&mut stderr, "stderr-hello\n"),
    ] {
        s.write_all(text.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        s.shutdown().await.map_err(|e| e.to_string())?;
    }
    let mut acc = Vec::new();
    let mut buf = [0u8; 4096];
    let mut dispensed = false;
    loop {
        let n = control.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("control stream closed before Control.Quit".into());
        }
        acc.extend_from_slice(&buf[..n]);
        if !dispensed && contains(&acc, b"Dispenser.Dispense") {
            dispensed = true;
            acc.clear();
            let id = broker.next_id();
            let b = broker.clone();
            // The hooks stream: accept and hold it (a real plugin serves net/rpc on it).
            tokio::spawn(async move {
                if let Ok(mut s) = b.accept(id).await {
                    let mut sink = Vec::new();
                    let _ = s.read_to_end(&mut sink).await;
                }
            });
            let id_u8 = u8::try_from(id).map_err(|_| "id too large".to_string())?;
            control
                .write_all(&dispense_reply(id_u8))
                .await
                .map_err(|e| e.to_string())?;
            // Host id 1 (its first NextId) is ours to dial; our id 2 is for the host to dial.
            let b = broker.clone();
            spawn_echo(&checks, "go-plugin dial host id 1".into(), async move {
                b.dial(1).await.map_err(|e| e.to_string())
            });
            let id2 = broker.next_id();
            let b = broker.clone();
            spawn_echo(&checks, format!("go-plugin accept id {id2}"), async move {
                b.accept(id2).await.map_err(|e| e.to_string())
            });
        } else if dispensed && contains(&acc, b"Control.Quit") {
            control
                .write_all(&quit_reply())
                .await
                .map_err(|e| e.to_string())?;
            break;
        }
    }
    let r = match tokio::time::timeout(Duration::from_secs(2), session.closed()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("session ended with error {e}")),
        Err(_) => Err("session still open 2 s after Control.Quit".into()),
    };
    record(
        &checks,
        "rust go-plugin: session ended after RPCClient.Close",
        r,
    );
    Ok(())
}

fn go_available() -> bool {
    std::process::Command::new("go")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn build_go_peer() -> PathBuf {
    let conformance = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("yamuxpeer");
    let status = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg("./cmd/yamuxpeer")
        .current_dir(&conformance)
        .status()
        .expect("running go build");
    assert!(
        status.success(),
        "go build of tests/conformance/cmd/yamuxpeer failed"
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_yamux_and_go_plugin_interop() {
    if !go_available() {
        println!("SKIP transport_interop: `go` not found in PATH; install Go >= 1.25 to run it");
        return;
    }
    let peer = build_go_peer();
    let (listener, path) = handshake::bind_socket(&std::env::temp_dir()).unwrap();
    let mut child = tokio::process::Command::new(&peer)
        .arg("-socket")
        .arg(&path)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let go_out = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut summary = None;
        while let Ok(Some(l)) = lines.next_line().await {
            if let Some((p, f)) = l.split_once(" passed, ") {
                if let (Ok(p), Some(Ok(f))) = (
                    p.trim().parse::<usize>(),
                    f.strip_suffix(" failed").map(str::parse::<usize>),
                ) {
                    summary = Some((p, f));
                    continue;
                }
            }
            println!("go: {l}");
        }
        summary
    });

    let checks: Checks = Arc::default();
    let run = async {
        let (c1, _) = listener.accept().await.map_err(|e| e.to_string())?;
        lab_peer(c1, checks.clone()).await?;
        let (c2, _) = listener.accept().await.map_err(|e| e.to_string())?;
        goplugin_peer(c2, checks.clone()).await
    };
    let r = tokio::time::timeout(Duration::from_secs(240), run).await;
    let r = r.unwrap_or_else(|_| Err("interop run timed out after 240 s".into()));
    if let Err(e) = r {
        record(&checks, "rust: peer driver", Err(e));
    }
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    let go_summary = go_out.await.unwrap();
    let _ = std::fs::remove_file(&path);

    let (go_pass, go_fail) = go_summary.unwrap_or((0, 1));
    let checks = checks.lock().unwrap();
    let rust_pass = checks.iter().filter(|c| c.1.is_ok()).count();
    let rust_fail = checks.len() - rust_pass;
    let (passed, failed) = (go_pass + rust_pass, go_fail + rust_fail);
    println!("{passed} passed, {failed} failed");
    assert!(
        matches!(status, Ok(Ok(s)) if s.success()),
        "go peer exit: {status:?}"
    );
    assert_eq!(failed, 0, "interop failures (see PASS/FAIL lines above)");
}
