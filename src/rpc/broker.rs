//! go-plugin MuxBroker (v1.7.0 `mux_broker.go`) on top of our yamux session.
//!
//! After the host's first three streams (1 = control, 3 = stdout, 5 = stderr; accepted in that
//! order by [`Broker::start`]), every stream either side opens is a broker stream: its opener
//! writes a 4-byte little-endian id, the side that created the id answers with the same 4 bytes
//! as an ack, and from then on it is a plain byte pipe.
//!
//! * Ids created by US ([`Broker::next_id`], handed to the host e.g. by `Dispenser.Dispense`)
//!   are for streams the HOST opens; claim them with [`Broker::accept`].
//! * Ids created by the HOST are for streams WE open: [`Broker::dial`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use super::yamux::{Incoming, Session, Stream, YamuxError};

/// How long an arriving broker stream waits to be claimed, and how long `accept` waits.
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(5);

/// Broker errors.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The session ended before or while the operation ran.
    #[error(transparent)]
    Yamux(#[from] YamuxError),
    /// Reading or writing the id/ack failed.
    #[error("broker i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer acknowledged a different id.
    #[error("bad ack: expected {expected}, got {got}")]
    BadAck {
        /// The id we dialed.
        expected: u32,
        /// The id the peer sent back.
        got: u32,
    },
    /// Nobody dialed the id within [`BROKER_TIMEOUT`].
    #[error("timeout waiting for accept of broker id {0}")]
    AcceptTimeout(u32),
    /// The host closed the session before opening its three standard streams.
    #[error("session ended before the host opened its {0} stream")]
    MissingHostStream(&'static str),
}

/// The three streams the host opens first, in order.
#[derive(Debug)]
pub struct HostStreams {
    /// Stream 1: net/rpc server with `Control` and `Dispenser`.
    pub control: Stream,
    /// Stream 3: copied by the host into its log as plugin_stdout.
    pub stdout: Stream,
    /// Stream 5: copied by the host into its log as plugin_stderr.
    pub stderr: Stream,
}

enum Slot {
    /// A stream arrived and waits to be claimed (generation tells timers apart).
    Parked(Stream, u64),
    /// `accept` waits for the stream.
    Waiting(oneshot::Sender<Stream>, u64),
}

struct Inner {
    session: Session,
    next_id: AtomicU32,
    generation: AtomicU64,
    slots: Mutex<HashMap<u32, Slot>>,
}

/// The MuxBroker. Cheap to clone.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Encode a broker id as it goes on the wire (4 bytes little-endian).
pub fn encode_id(id: u32) -> [u8; 4] {
    id.to_le_bytes()
}

/// Decode a broker id from the wire.
pub fn decode_id(b: [u8; 4]) -> u32 {
    u32::from_le_bytes(b)
}

impl Broker {
    /// Accept the host's control, stdout and stderr streams (in that order), then start the
    /// accept loop that parks every later host-opened stream by its broker id.
    pub async fn start(
        session: Session,
        mut incoming: Incoming,
    ) -> Result<(HostStreams, Broker), BrokerError> {
        let control = incoming
            .next()
            .await
            .ok_or(BrokerError::MissingHostStream("control"))?;
        let stdout = incoming
            .next()
            .await
            .ok_or(BrokerError::MissingHostStream("stdout"))?;
        let stderr = incoming
            .next()
            .await
            .ok_or(BrokerError::MissingHostStream("stderr"))?;
        let broker = Broker::new(session);
        broker.spawn_accept_loop(incoming);
        Ok((
            HostStreams {
                control,
                stdout,
                stderr,
            },
            broker,
        ))
    }

    /// A broker without an accept loop (use [`Broker::spawn_accept_loop`] or `start`).
    pub fn new(session: Session) -> Broker {
        Broker {
            inner: Arc::new(Inner {
                session,
                next_id: AtomicU32::new(0),
                generation: AtomicU64::new(0),
                slots: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Treat every stream from `incoming` as a broker stream.
    pub fn spawn_accept_loop(&self, mut incoming: Incoming) {
        let broker = self.clone();
        tokio::spawn(async move {
            while let Some(stream) = incoming.next().await {
                let b = broker.clone();
                tokio::spawn(async move { b.receive(stream).await });
            }
        });
    }

    async fn receive(&self, mut stream: Stream) {
        let mut b = [0u8; 4];
        match tokio::time::timeout(BROKER_TIMEOUT, stream.read_exact(&mut b)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::debug!("broker: reading id of stream {}: {e}", stream.id());
                return;
            }
            Err(_) => {
                tracing::debug!("broker: no id on stream {} within 5 s", stream.id());
                return;
            }
        }
        let id = decode_id(b);
        let gen = self.inner.generation.fetch_add(1, Ordering::Relaxed);
        {
            let mut slots = lock(&self.inner.slots);
            match slots.remove(&id) {
                Some(Slot::Waiting(tx, _)) => match tx.send(stream) {
                    Ok(()) => return,
                    Err(s) => {
                        // The acceptor gave up just now; park instead.
                        slots.insert(id, Slot::Parked(s, gen));
                    }
                },
                Some(Slot::Parked(old, ogen)) => {
                    // Go keeps the first arrival and drops later ones for the same id.
                    slots.insert(id, Slot::Parked(old, ogen));
                    tracing::debug!("broker: duplicate stream for id {id} dropped");
                    return;
                }
                None => {
                    slots.insert(id, Slot::Parked(stream, gen));
                }
            }
        }
        tokio::time::sleep(BROKER_TIMEOUT).await;
        let mut slots = lock(&self.inner.slots);
        if matches!(slots.get(&id), Some(Slot::Parked(_, g)) if *g == gen) {
            slots.remove(&id);
            tracing::debug!("broker: stream for id {id} not accepted within 5 s, closed");
        }
    }

    /// A fresh id for a stream the host will open (first is 1, like Go).
    pub fn next_id(&self) -> u32 {
        self.inner
            .next_id
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1)
    }

    /// Claim the host-opened stream carrying `id` (waits at most 5 s) and acknowledge it.
    pub async fn accept(&self, id: u32) -> Result<Stream, BrokerError> {
        let gen = self.inner.generation.fetch_add(1, Ordering::Relaxed);
        let parked_or_rx = {
            let mut slots = lock(&self.inner.slots);
            match slots.remove(&id) {
                Some(Slot::Parked(s, _)) => Ok(s),
                other => {
                    if let Some(Slot::Waiting(..)) = other {
                        tracing::debug!("broker: second accept for id {id} replaces the first");
                    }
                    let (tx, rx) = oneshot::channel();
                    slots.insert(id, Slot::Waiting(tx, gen));
                    Err(rx)
                }
            }
        };
        let rx = match parked_or_rx {
            Ok(s) => return Self::ack(s, id).await,
            Err(rx) => rx,
        };
        match tokio::time::timeout(BROKER_TIMEOUT, rx).await {
            Ok(Ok(s)) => Self::ack(s, id).await,
            Ok(Err(_)) => Err(BrokerError::AcceptTimeout(id)),
            Err(_) => {
                let mut slots = lock(&self.inner.slots);
                if matches!(slots.get(&id), Some(Slot::Waiting(_, g)) if *g == gen) {
                    slots.remove(&id);
                }
                Err(BrokerError::AcceptTimeout(id))
            }
        }
    }

    async fn ack(mut s: Stream, id: u32) -> Result<Stream, BrokerError> {
        s.write_all(&encode_id(id)).await?;
        Ok(s)
    }

    /// Open a stream to the host-created `id`: send the id, wait for the matching ack.
    pub async fn dial(&self, id: u32) -> Result<Stream, BrokerError> {
        let mut s = self.inner.session.open()?;
        s.write_all(&encode_id(id)).await?;
        let mut b = [0u8; 4];
        s.read_exact(&mut b).await?;
        let got = decode_id(b);
        if got != id {
            return Err(BrokerError::BadAck { expected: id, got });
        }
        Ok(s)
    }

    /// The session below.
    pub fn session(&self) -> &Session {
        &self.inner.session
    }
}

#[cfg(test)]
mod tests {
    use super::super::yamux::{FrameType, Header, FLAG_ACK, FLAG_SYN, HEADER_LEN};
    use super::*;
    use tokio::io::{duplex, DuplexStream};

    #[test]
    fn id_framing_is_little_endian() {
        assert_eq!(encode_id(1), [1, 0, 0, 0]);
        assert_eq!(encode_id(0x0102_0304), [4, 3, 2, 1]);
        assert_eq!(decode_id([7, 0, 0, 0]), 7);
        assert_eq!(decode_id(encode_id(u32::MAX)), u32::MAX);
    }

    async fn hdr(io: &mut DuplexStream) -> Header {
        let mut b = [0u8; HEADER_LEN];
        io.read_exact(&mut b).await.unwrap();
        Header::decode(&b).unwrap()
    }

    async fn open_host_stream(host: &mut DuplexStream, id: u32, payload: &[u8]) {
        host.write_all(&Header::new(FrameType::WindowUpdate, FLAG_SYN, id, 0).encode())
            .await
            .unwrap();
        if !payload.is_empty() {
            host.write_all(&Header::new(FrameType::Data, 0, id, payload.len() as u32).encode())
                .await
                .unwrap();
            host.write_all(payload).await.unwrap();
        }
        assert_eq!(
            hdr(host).await,
            Header::new(FrameType::WindowUpdate, FLAG_ACK, id, 0)
        );
    }

    #[tokio::test]
    async fn host_dials_plugin_id_spec_example() {
        let (mut host, plugin) = duplex(1 << 20);
        let (session, incoming) = Session::server(plugin);
        let start = tokio::spawn(Broker::start(session, incoming));
        for id in [1, 3, 5] {
            open_host_stream(&mut host, id, b"").await;
        }
        let (streams, broker) = start.await.unwrap().unwrap();
        assert_eq!(
            (
                streams.control.id(),
                streams.stdout.id(),
                streams.stderr.id()
            ),
            (1, 3, 5)
        );
        let id = broker.next_id();
        assert_eq!(id, 1);
        // Host opens stream 7 and sends 01 00 00 00; the accept claims it and acks with the same.
        open_host_stream(&mut host, 7, &[1, 0, 0, 0]).await;
        let s = broker.accept(id).await.unwrap();
        assert_eq!(s.id(), 7);
        assert_eq!(hdr(&mut host).await, Header::new(FrameType::Data, 0, 7, 4));
        let mut ack = [0u8; 4];
        host.read_exact(&mut ack).await.unwrap();
        assert_eq!(ack, [1, 0, 0, 0]);
        assert_eq!(broker.next_id(), 2);
    }

    #[tokio::test]
    async fn dial_checks_ack() {
        let (mut host, plugin) = duplex(1 << 20);
        let (session, _incoming) = Session::server(plugin);
        let broker = Broker::new(session);
        let b2 = broker.clone();
        let dial = tokio::spawn(async move { b2.dial(9).await });
        assert_eq!(
            hdr(&mut host).await,
            Header::new(FrameType::WindowUpdate, FLAG_SYN, 2, 0)
        );
        assert_eq!(hdr(&mut host).await, Header::new(FrameType::Data, 0, 2, 4));
        let mut id = [0u8; 4];
        host.read_exact(&mut id).await.unwrap();
        assert_eq!(id, [9, 0, 0, 0]);
        host.write_all(&Header::new(FrameType::Data, FLAG_ACK, 2, 4).encode())
            .await
            .unwrap();
        host.write_all(&[8, 0, 0, 0]).await.unwrap();
        let r = dial.await.unwrap();
        assert!(matches!(
            r,
            Err(BrokerError::BadAck {
                expected: 9,
                got: 8
            })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn accept_times_out_after_5s() {
        let (_host, plugin) = duplex(1 << 20);
        let (session, _incoming) = Session::server(plugin);
        let broker = Broker::new(session);
        let r = broker.accept(3).await;
        assert!(matches!(r, Err(BrokerError::AcceptTimeout(3))));
    }
}
