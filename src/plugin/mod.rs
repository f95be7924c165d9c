//! The plugin process: from exec by the host to exit.
//!
//! 1. [`run`] binds a fresh unix socket and prints the go-plugin handshake
//!    line as the first stdout output (the caller checked the magic cookie).
//! 2. It accepts the host's one connection and runs the yamux server session
//!    and the MuxBroker on it.
//! 3. The control stream serves `Control.Ping`, `Control.Quit` and
//!    `Dispenser.Dispense("hooks")`; the dispensed broker stream serves the
//!    hooks ([`crate::mattermost::hooks::hooks_server`]).
//! 4. It returns on `Control.Quit` (after the reply went out) or when the
//!    host connection ends, after giving the app's shutdown hook a bounded
//!    time; the process then exits, so nothing outlives the host.

pub mod log;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::mattermost::hooks::{hooks_server, Hooks};
use crate::rpc::broker::Broker;
use crate::rpc::gob;
use crate::rpc::handshake;
use crate::rpc::netrpc::{Empty, Server};
use crate::rpc::yamux::Session;

/// How long the host gets to connect after the handshake line (it dials at once).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the host gets to open its control, stdout and stderr streams.
pub const HOST_STREAMS_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for the Quit reply to reach the socket before we tear down.
pub const QUIT_GRACE: Duration = Duration::from_millis(100);
/// Bound on the app's shutdown hook: the host SIGKILLs 2 s after Quit.
pub const APP_SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(1500);

/// Why the runtime stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("binding the plugin socket: {0}")]
    Bind(std::io::Error),
    #[error("writing the handshake line: {0}")]
    Handshake(std::io::Error),
    #[error("the host did not connect within {0:?}")]
    NoConnection(Duration),
    #[error("accepting the host connection: {0}")]
    Accept(std::io::Error),
    #[error("starting the session: {0}")]
    Session(String),
}

/// Why the runtime ended normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The host called Control.Quit.
    Quit,
    /// The host connection ended (host closed it, crashed, or broke the protocol).
    HostGone,
}

/// Removes the socket file when dropped (also on early error returns).
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = handshake::remove_stale(&self.0);
    }
}

/// Prints the handshake line to stdout, flushed, before anything else.
fn announce(socket: &std::path::Path) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(handshake::handshake_line(socket).as_bytes())?;
    out.flush()
}

/// Runs the plugin until Quit or the host goes away.
pub async fn run(hooks: Arc<dyn Hooks>) -> Result<Exit, RunError> {
    let (listener, path) =
        handshake::bind_socket(&handshake::socket_dir()).map_err(RunError::Bind)?;
    let socket = SocketFile(path);
    announce(&socket.0).map_err(RunError::Handshake)?;
    let (conn, _) = tokio::time::timeout(CONNECT_TIMEOUT, listener.accept())
        .await
        .map_err(|_| RunError::NoConnection(CONNECT_TIMEOUT))?
        .map_err(RunError::Accept)?;
    // One connection per process: no one else may connect, and no file stays behind.
    drop(listener);
    drop(socket);
    tracing::debug!("host connected");
    serve_connection(conn, hooks).await
}

/// Everything after the accept: usable on any byte stream (tests use pipes).
pub async fn serve_connection<T>(conn: T, hooks: Arc<dyn Hooks>) -> Result<Exit, RunError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (session, incoming) = Session::server(conn);
    let started = tokio::time::timeout(
        HOST_STREAMS_TIMEOUT,
        Broker::start(session.clone(), incoming),
    )
    .await;
    let (streams, broker) = match started {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            session.close();
            tracing::info!("host went away before the plugin started: {e}");
            return Ok(Exit::HostGone);
        }
        Err(_) => {
            session.close();
            return Err(RunError::Session(
                "the host did not open its streams in time".into(),
            ));
        }
    };
    let (quit_tx, mut quit_rx) = mpsc::unbounded_channel::<()>();
    let control = control_server(hooks.clone(), broker, quit_tx);
    let control_task = tokio::spawn(async move { control.serve(streams.control).await });
    // stdout/stderr streams stay open and idle: our logs go to fd 2, which
    // the host reads line by line as hclog.
    let _stdout = streams.stdout;
    let _stderr = streams.stderr;

    let exit = tokio::select! {
        _ = quit_rx.recv() => {
            tokio::time::sleep(QUIT_GRACE).await;
            Exit::Quit
        }
        r = session.closed() => {
            if let Err(e) = r {
                tracing::warn!("host session ended: {e}");
            }
            Exit::HostGone
        }
    };
    tracing::info!(reason = ?exit, "plugin stopping");
    if tokio::time::timeout(APP_SHUTDOWN_TIMEOUT, hooks.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("app shutdown did not finish in {APP_SHUTDOWN_TIMEOUT:?}");
    }
    session.close();
    control_task.abort();
    Ok(exit)
}

/// The net/rpc server of the control stream: `Control` and `Dispenser`.
fn control_server(
    hooks: Arc<dyn Hooks>,
    broker: Broker,
    quit: mpsc::UnboundedSender<()>,
) -> Server {
    Server::new()
        .method("Control.Ping", |_: bool| async {
            Ok::<_, String>(Empty {})
        })
        .method("Control.Quit", move |_: bool| {
            // Signalled now; the runtime waits QUIT_GRACE so this reply goes out first.
            let _ = quit.send(());
            async { Ok::<_, String>(Empty {}) }
        })
        .method("Dispenser.Dispense", move |name: String| {
            let hooks = hooks.clone();
            let broker = broker.clone();
            async move {
                if name != "hooks" {
                    return Err(format!("unknown plugin type: {name}"));
                }
                let id = broker.next_id();
                // Accept in the background: the host dials only after this reply.
                tokio::spawn(async move {
                    let stream = match broker.accept(id).await {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::error!("hooks stream {id} not opened by the host: {e}");
                            return;
                        }
                    };
                    let server = hooks_server(hooks, Arc::new(broker));
                    log_hooks_stream_end(&server.serve(stream).await);
                });
                Ok::<_, String>(id)
            }
        })
}

/// Whether the end of a served stream is a failure worth a warning. The host closing its
/// session (disable, upgrade, server stop: every normal deactivation) ends the hooks stream
/// with a closed transport, which is not one.
fn stream_end_is_failure(result: &Result<(), gob::Error>) -> bool {
    matches!(result, Err(e) if !e.is_closed())
}

fn log_hooks_stream_end(result: &Result<(), gob::Error>) {
    match result {
        Err(e) if stream_end_is_failure(result) => {
            tracing::warn!("hooks stream ended with an error: {e}")
        }
        Err(e) => tracing::debug!("hooks stream ended: {e}"),
        Ok(()) => tracing::debug!("hooks stream ended"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    /// A stream whose reads fail with `kind` (what a yamux stream does once its session is
    /// closed: `ConnectionAborted`), or yield `bytes` first.
    struct Ending {
        bytes: Vec<u8>,
        kind: io::ErrorKind,
    }

    impl AsyncRead for Ending {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if self.bytes.is_empty() {
                return Poll::Ready(Err(io::Error::new(self.kind, "yamux session closed")));
            }
            let n = self.bytes.len().min(buf.remaining());
            buf.put_slice(&self.bytes[..n]);
            self.bytes.drain(..n);
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Ending {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            b: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(b.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    async fn serve(bytes: &[u8], kind: io::ErrorKind) -> Result<(), gob::Error> {
        Server::new()
            .serve(Ending {
                bytes: bytes.to_vec(),
                kind,
            })
            .await
    }

    #[tokio::test]
    async fn a_closed_session_ends_the_hooks_stream_without_a_warning() {
        let closed = serve(&[], io::ErrorKind::ConnectionAborted).await;
        assert!(
            closed.as_ref().is_err_and(gob::Error::is_closed),
            "{closed:?}"
        );
        assert!(!stream_end_is_failure(&closed));
        assert!(!stream_end_is_failure(&Ok(())));
        // Real failures still warn: a broken transport, bytes that are no gob message.
        let reset = serve(&[], io::ErrorKind::ConnectionReset).await;
        assert!(stream_end_is_failure(&reset), "{reset:?}");
        let garbage = serve(&[0x03, 0xff, 0xff, 0xff], io::ErrorKind::ConnectionAborted).await;
        assert!(stream_end_is_failure(&garbage), "{garbage:?}");
    }
}
