//! Go's net/rpc over gob, client and server, on any async byte stream.
//!
//! One connection is one stream with one gob encoder and one decoder per
//! direction for its whole life. A request is a `Request` header value then
//! the argument value; a response is a `Response` header then the reply
//! value, always present (an empty struct when there is an error). Calls are
//! matched by `Seq` only, so many may be in flight at once and answers may
//! come in any order.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::gob::{self, stream::StreamDecoder, Encoder, GobDecode, GobEncode, Reader, TypeId};

crate::gob_struct! {
    /// net/rpc's request header.
    pub struct RequestHeader("Request") {
        pub service_method: String => "ServiceMethod",
        pub seq: u64 => "Seq",
    }

    /// net/rpc's response header; a non-empty `error` is the call's error text.
    pub struct ResponseHeader("Response") {
        pub service_method: String => "ServiceMethod",
        pub seq: u64 => "Seq",
        pub error: String => "Error",
    }

    /// Go's `struct{}`: the argument or reply of calls that carry nothing,
    /// and the body net/rpc sends with every error response.
    pub struct Empty("") {}
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The server answered with this error text.
    #[error("{0}")]
    Server(String),
    /// The connection ended before the answer (Go's `rpc.ErrShutdown` text).
    #[error("connection is shut down")]
    Shutdown,
    /// The argument could not be encoded or the reply decoded.
    #[error(transparent)]
    Codec(#[from] gob::Error),
}

type Reply = Result<Box<dyn ErasedReply>, String>;
type Job = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// A reply whose type is known only to the method that produced it.
trait ErasedReply: Send {
    fn encode(&self, enc: &mut Encoder, out: &mut Vec<u8>) -> gob::Result<()>;
}

impl<T: GobEncode + Send> ErasedReply for T {
    fn encode(&self, enc: &mut Encoder, out: &mut Vec<u8>) -> gob::Result<()> {
        enc.encode(self, out)
    }
}

/// One registered method: decodes its argument in the connection's read loop
/// and returns the work to run concurrently.
trait Method: Send + Sync {
    fn decode(&self, r: &mut Reader<'_, '_>, id: TypeId) -> gob::Result<Job>;
}

struct TypedMethod<F, A> {
    handler: F,
    _arg: std::marker::PhantomData<fn(A)>,
}

impl<F, A, R, Fut> Method for TypedMethod<F, A>
where
    F: Fn(A) -> Fut + Send + Sync,
    A: GobDecode + 'static,
    R: GobEncode + Send,
    Fut: Future<Output = Result<R, String>> + Send + 'static,
{
    fn decode(&self, r: &mut Reader<'_, '_>, id: TypeId) -> gob::Result<Job> {
        let arg: A = r.top_level(id)?;
        let fut = (self.handler)(arg);
        Ok(Box::pin(async move {
            fut.await
                .map(|reply| Box::new(reply) as Box<dyn ErasedReply>)
        }))
    }
}

/// A net/rpc server: a table of `Service.Method` handlers.
#[derive(Clone, Default)]
pub struct Server {
    methods: Arc<HashMap<String, Arc<dyn Method>>>,
}

impl Server {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `name` (`Service.Method`). The handler's `Err` text becomes
    /// the response's error, as a Go method returning an error does.
    pub fn method<A, R, F, Fut>(mut self, name: &str, handler: F) -> Self
    where
        F: Fn(A) -> Fut + Send + Sync + 'static,
        A: GobDecode + 'static,
        R: GobEncode + Send,
        Fut: Future<Output = Result<R, String>> + Send + 'static,
    {
        let method = TypedMethod {
            handler,
            _arg: std::marker::PhantomData,
        };
        Arc::make_mut(&mut self.methods).insert(name.to_owned(), Arc::new(method));
        self
    }

    /// The error Go's server gives for a method it does not have.
    fn not_found(&self, service_method: &str) -> String {
        let Some((service, _)) = service_method.rsplit_once('.') else {
            return format!("rpc: service/method request ill-formed: {service_method}");
        };
        let known_service = self
            .methods
            .keys()
            .any(|k| k.rsplit_once('.').is_some_and(|(s, _)| s == service));
        if known_service {
            format!("rpc: can't find method {service_method}")
        } else {
            format!("rpc: can't find service {service_method}")
        }
    }

    /// Serves one connection until the peer closes it or sends a header that
    /// cannot be decoded (Go's server closes the connection then too). Calls
    /// run concurrently; each response is written whole.
    pub async fn serve<S>(&self, stream: S) -> Result<(), gob::Error>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        let (tx, rx) = mpsc::unbounded_channel::<(ResponseHeader, Reply)>();
        let writer = tokio::spawn(write_responses(write, rx));
        let mut requests = StreamDecoder::new(read);
        let result = loop {
            let header = match requests.decode::<RequestHeader>().await {
                Ok(Some(h)) => h,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            let method = self.methods.get(&header.service_method).cloned();
            let response = ResponseHeader {
                service_method: header.service_method,
                seq: header.seq,
                error: String::new(),
            };
            let Some(method) = method else {
                if let Err(e) = requests.skip().await {
                    break Err(e);
                }
                let text = self.not_found(&response.service_method);
                let _ = tx.send((response, Err(text)));
                continue;
            };
            match requests.next_with(|r, id| method.decode(r, id)).await {
                Ok(Some(decoded)) => {
                    let mut job = CatchUnwind(decoded.value);
                    // A handler with nothing to wait for is answered right here, saving a
                    // task and a wake-up; anything that waits runs concurrently.
                    let mut cx = Context::from_waker(std::task::Waker::noop());
                    match Pin::new(&mut job).poll(&mut cx) {
                        Poll::Ready(outcome) => {
                            let reply = handler_reply(&response, outcome);
                            let _ = tx.send((response, reply));
                        }
                        Poll::Pending => {
                            let tx = tx.clone();
                            tokio::spawn(async move {
                                let reply = handler_reply(&response, job.await);
                                let _ = tx.send((response, reply));
                            });
                        }
                    }
                }
                Ok(None) => break Err(gob::Error::Truncated("stream ended before the argument")),
                // The argument's messages were consumed; answer and go on.
                Err(e @ (gob::Error::Io { .. } | gob::Error::MessageTooLarge { .. })) => {
                    break Err(e)
                }
                Err(e) => {
                    let _ = tx.send((response, Err(e.to_string())));
                }
            }
        };
        drop(tx);
        let _ = writer.await;
        result
    }
}

async fn write_responses<W: AsyncWrite + Unpin>(
    mut write: W,
    mut rx: mpsc::UnboundedReceiver<(ResponseHeader, Reply)>,
) {
    let mut enc = Encoder::new();
    let mut out = Vec::new();
    while let Some((mut header, reply)) = rx.recv().await {
        out.clear();
        let encoded = match &reply {
            Ok(body) => enc
                .encode(&header, &mut out)
                .and_then(|_| body.encode(&mut enc, &mut out)),
            Err(text) => {
                header.error.clone_from(text);
                enc.encode(&header, &mut out)
                    .and_then(|_| enc.encode(&Empty {}, &mut out))
            }
        };
        if let Err(e) = encoded {
            // The reply could not be encoded: say so instead of leaving the caller waiting.
            out.clear();
            header.error = format!("rpc: cannot encode reply: {e}");
            if enc
                .encode(&header, &mut out)
                .and_then(|_| enc.encode(&Empty {}, &mut out))
                .is_err()
            {
                break;
            }
        }
        if write.write_all(&out).await.is_err() {
            break;
        }
    }
    let _ = write.shutdown().await;
}

/// The reply for a handler's outcome; a panic becomes an error reply.
fn handler_reply(response: &ResponseHeader, outcome: Result<Reply, String>) -> Reply {
    outcome.unwrap_or_else(|panic| {
        tracing::error!(method = %response.service_method, "handler panicked: {panic}");
        Err(format!("internal error in {}", response.service_method))
    })
}

/// Turns a panic inside a handler's future into an error value.
struct CatchUnwind(Job);

impl Future for CatchUnwind {
    type Output = Result<Reply, String>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let job = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| job.as_mut().poll(cx))) {
            Ok(Poll::Ready(reply)) => Poll::Ready(Ok(reply)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic_text(&*panic))),
        }
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_owned()
    }
}

type AnyReply = Box<dyn std::any::Any + Send>;
type ReplyDecoder = Box<dyn Fn(&mut Reader<'_, '_>, TypeId) -> gob::Result<AnyReply> + Send + Sync>;

struct Pending {
    decode: ReplyDecoder,
    done: oneshot::Sender<Result<AnyReply, CallError>>,
}

struct ClientState {
    encoder: Encoder,
    next_seq: u64,
    pending: HashMap<u64, Pending>,
    /// False once the connection has ended; new calls then fail at once.
    open: bool,
}

/// What the client's write task does next.
enum Outgoing {
    /// Bytes of one encoded request.
    Request(Vec<u8>),
    /// Half-close the stream (after everything queued before) and say when done.
    Close(oneshot::Sender<()>),
}

/// A net/rpc client on one connection; cheap to clone and share.
#[derive(Clone)]
pub struct Client {
    state: Arc<Mutex<ClientState>>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
}

impl Client {
    /// Starts the client's read and write tasks on `stream`.
    pub fn new<S>(stream: S) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, mut write) = tokio::io::split(stream);
        let state = Arc::new(Mutex::new(ClientState {
            encoder: Encoder::new(),
            next_seq: 0,
            pending: HashMap::new(),
            open: true,
        }));
        let (outgoing, mut rx) = mpsc::unbounded_channel::<Outgoing>();
        tokio::spawn(async move {
            let mut closed = None;
            while let Some(next) = rx.recv().await {
                match next {
                    Outgoing::Request(bytes) => {
                        if write.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                    Outgoing::Close(done) => {
                        closed = Some(done);
                        break;
                    }
                }
            }
            let _ = write.shutdown().await;
            if let Some(done) = closed {
                let _ = done.send(());
            }
        });
        tokio::spawn(read_responses(StreamDecoder::new(read), state.clone()));
        Client { state, outgoing }
    }

    /// Calls `service_method` with `arg` and waits for the typed reply.
    pub async fn call<A, R>(&self, service_method: &str, arg: &A) -> Result<R, CallError>
    where
        A: GobEncode,
        R: GobDecode + Send + 'static,
    {
        let (done, answer) = oneshot::channel();
        {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if !state.open {
                return Err(CallError::Shutdown);
            }
            let seq = state.next_seq;
            let header = RequestHeader {
                service_method: service_method.to_owned(),
                seq,
            };
            let mut bytes = Vec::new();
            state.encoder.encode(&header, &mut bytes)?;
            state.encoder.encode(arg, &mut bytes)?;
            state.next_seq += 1;
            let decode: ReplyDecoder =
                Box::new(|r, id| Ok(Box::new(r.top_level::<R>(id)?) as AnyReply));
            state.pending.insert(seq, Pending { decode, done });
            // Queued while holding the lock so bytes go out in Seq order.
            if self.outgoing.send(Outgoing::Request(bytes)).is_err() {
                state.pending.remove(&seq);
                return Err(CallError::Shutdown);
            }
        }
        let reply = answer.await.map_err(|_| CallError::Shutdown)??;
        reply
            .downcast::<R>()
            .map(|b| *b)
            .map_err(|_| CallError::Shutdown)
    }

    /// Half-closes the connection (FIN) once every request queued before has
    /// been written, and waits for that. Calls made afterwards fail with
    /// [`CallError::Shutdown`] or never get an answer; answers to earlier calls
    /// are still delivered. Used where the peer must see the end of the stream
    /// before we answer something else (ServeHTTP's response writer).
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.outgoing.send(Outgoing::Close(done)).is_ok() {
            let _ = wait.await;
        }
    }

    /// Whether the connection is still up.
    pub fn is_open(&self) -> bool {
        self.state.lock().map(|s| s.open).unwrap_or(false)
    }
}

async fn read_responses<R: AsyncRead + Unpin>(
    mut responses: StreamDecoder<R>,
    state: Arc<Mutex<ClientState>>,
) {
    loop {
        let header = match responses.decode::<ResponseHeader>().await {
            Ok(Some(h)) => h,
            Ok(None) | Err(_) => break,
        };
        let pending = state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pending
            .remove(&header.seq);
        let outcome = match pending {
            // Unknown Seq, or an error response: the body is read and dropped.
            None => responses.skip().await.map(|_| None),
            Some(p) if !header.error.is_empty() => {
                let skipped = responses.skip().await;
                let _ = p.done.send(Err(CallError::Server(header.error)));
                skipped.map(|_| None)
            }
            Some(p) => match responses.next_with(|r, id| (p.decode)(r, id)).await {
                Ok(Some(decoded)) => Ok(Some((p.done, Ok(decoded.value)))),
                Ok(None) => Err(gob::Error::Truncated("stream ended before the reply")),
                Err(
                    e @ (gob::Error::Io { .. }
                    | gob::Error::MessageTooLarge { .. }
                    | gob::Error::Truncated(_)),
                ) => Err(e),
                Err(e) => Ok(Some((p.done, Err(CallError::Codec(e))))),
            },
        };
        match outcome {
            Ok(Some((done, result))) => {
                let _ = done.send(result);
            }
            Ok(None) => {}
            Err(_) => break,
        }
    }
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    state.open = false;
    for (_, p) in state.pending.drain() {
        let _ = p.done.send(Err(CallError::Shutdown));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::gob_struct! {
        struct Pair("Pair") {
            a: i64 => "A",
            b: i64 => "B",
        }
    }

    fn echo_server() -> Server {
        Server::new()
            .method("Echo.Echo", |s: String| async move { Ok::<_, String>(s) })
            .method("Echo.Add", |p: Pair| async move {
                tokio::time::sleep(std::time::Duration::from_millis((p.a % 7) as u64)).await;
                Ok::<_, String>(p.a + p.b)
            })
            .method("Echo.Fail", |s: String| async move { Err::<String, _>(s) })
            .method("Echo.Panic", |_: Empty| async move {
                if true {
                    panic!("handler bug");
                }
                Ok::<Empty, String>(Empty {})
            })
    }

    fn connected() -> Client {
        let (a, b) = tokio::io::duplex(64 << 10);
        let server = echo_server();
        tokio::spawn(async move { server.serve(b).await });
        Client::new(a)
    }

    #[tokio::test]
    async fn concurrent_calls_are_matched_by_seq() {
        let client = connected();
        let calls = (0..200i64).map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .call::<_, i64>("Echo.Add", &Pair { a: i, b: 1000 })
                    .await
            })
        });
        for (i, call) in calls.enumerate() {
            assert_eq!(call.await.unwrap().unwrap(), i as i64 + 1000);
        }
    }

    #[tokio::test]
    async fn errors_keep_the_connection_usable() {
        let client = connected();
        let nope = client
            .call::<_, String>("Echo.Nope", &"x".to_string())
            .await;
        assert_eq!(
            nope,
            Err(CallError::Server("rpc: can't find method Echo.Nope".into()))
        );
        let nope = client.call::<_, String>("Nope.X", &"x".to_string()).await;
        assert_eq!(
            nope,
            Err(CallError::Server("rpc: can't find service Nope.X".into()))
        );
        let nope = client.call::<_, String>("NoDot", &"x".to_string()).await;
        assert_eq!(
            nope,
            Err(CallError::Server(
                "rpc: service/method request ill-formed: NoDot".into()
            ))
        );
        let fail = client
            .call::<_, String>("Echo.Fail", &"boom".to_string())
            .await;
        assert_eq!(fail, Err(CallError::Server("boom".into())));
        // An argument of the wrong type: the gob error comes back as the call's error.
        let wrong = client
            .call::<_, String>("Echo.Echo", &Pair { a: 1, b: 2 })
            .await;
        assert!(
            matches!(wrong, Err(CallError::Server(ref e)) if e.contains("type mismatch")),
            "{wrong:?}"
        );
        let panicked = client.call::<_, Empty>("Echo.Panic", &Empty {}).await;
        assert_eq!(
            panicked,
            Err(CallError::Server("internal error in Echo.Panic".into()))
        );
        let ok = client
            .call::<_, String>("Echo.Echo", &"still here".to_string())
            .await;
        assert_eq!(ok.as_deref(), Ok("still here"));
    }

    #[tokio::test]
    async fn pending_calls_fail_when_the_stream_ends() {
        let (a, b) = tokio::io::duplex(1024);
        let client = Client::new(a);
        let call = {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .call::<_, String>("Echo.Echo", &"x".to_string())
                    .await
            })
        };
        tokio::task::yield_now().await;
        drop(b);
        assert_eq!(call.await.unwrap(), Err(CallError::Shutdown));
        assert_eq!(
            client
                .call::<_, String>("Echo.Echo", &"y".to_string())
                .await,
            Err(CallError::Shutdown)
        );
        assert!(!client.is_open());
    }

    #[tokio::test]
    async fn server_answers_go_ping_bytes_like_go() {
        // Vector V1 (Control.Ping, Seq 0, arg true) from Go's client.
        let request: Vec<u8> = [
            &[0x2f, 0xff, 0x81, 0x03, 0x01, 0x01, 0x07][..],
            b"Request",
            &[0x01, 0xff, 0x82, 0x00, 0x01, 0x02, 0x01, 0x0d],
            b"ServiceMethod",
            &[0x01, 0x0c, 0x00, 0x01, 0x03],
            b"Seq",
            &[0x01, 0x06, 0x00, 0x00, 0x00, 0x11, 0xff, 0x82, 0x01, 0x0c],
            b"Control.Ping",
            &[0x00, 0x03, 0x02, 0x00, 0x01],
        ]
        .concat();
        let server = Server::new().method("Control.Ping", |_: bool| async {
            Ok::<_, String>(Empty {})
        });
        let (mut a, b) = tokio::io::duplex(4096);
        tokio::spawn(async move { server.serve(b).await });
        a.write_all(&request).await.unwrap();
        let mut responses = StreamDecoder::new(a);
        let header: ResponseHeader = responses.decode().await.unwrap().unwrap();
        assert_eq!(
            header,
            ResponseHeader {
                service_method: "Control.Ping".into(),
                seq: 0,
                error: String::new()
            }
        );
        assert_eq!(responses.decode::<Empty>().await.unwrap(), Some(Empty {}));
    }
}
