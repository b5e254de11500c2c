//! The connection machinery shared by the SC and SPU listeners: accept loop with connection
//! limits (global and per peer address) and shutdown, length-prefixed frames (i32 big-endian
//! size + payload), request headers, the idle timeout, and one writer task per connection fed by
//! a bounded queue, so streaming responses (watches, stream fetches) and request/response replies
//! share the socket without blocking each other.

use std::collections::HashMap;
use std::future::Future;
use std::io::{Cursor, Error as IoError, ErrorKind};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fluvio_protocol::api::RequestHeader;
use fluvio_protocol::bytes::Bytes;
use fluvio_protocol::{Decoder, Encoder, Version};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::ConnectionLimits;

/// Largest request frame accepted; a bigger size prefix closes the connection.
pub(super) const MAX_FRAME_BYTES: usize = 32 * 1024 * 1024;
/// Open connections per listener; further ones are closed at once (and logged).
pub(super) const MAX_CONNECTIONS: usize = 1024;
/// What a frame's buffer starts with: the size prefix is the peer's word, not bytes received, so
/// the buffer grows only as the bytes arrive (a 32 MiB prefix followed by nothing costs this).
const FRAME_INITIAL_CAPACITY: usize = 64 * 1024;
/// Once a frame's first byte has arrived, the whole frame must follow within this time.
const FRAME_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// At most one warning per listener and interval about refused connections (a flood of them
/// must not flood the log); the next warning says how many were not reported.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Upper bound for one request's work (log writes); the reply then carries an error.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Encoded responses waiting for the writer; senders wait when it is full (backpressure).
const WRITE_QUEUE: usize = 256;

/// Resolves once `shutdown` is true; never if its sender is gone (nobody can ask any more).
pub(super) async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Accepts connections until shutdown, running `handler` for each on its own task. On shutdown
/// the listener closes and every connection task is stopped.
pub(super) async fn serve<F, Fut>(
    kind: &'static str,
    listener: TcpListener,
    limits: ConnectionLimits,
    mut shutdown: watch::Receiver<bool>,
    handler: F,
) -> std::io::Result<()>
where
    F: Fn(Connection) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let peers = PeerCounts::default();
    let mut refusals = RefusalLog::default();
    let mut connections = JoinSet::new();
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, idle_timeout_secs = limits.idle_timeout.map(|t| t.as_secs()), max_connections_per_peer = limits.max_connections_per_peer, "fluvio {kind} listening");
    }
    loop {
        tokio::select! {
            () = shutdown_requested(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Refused connections are dropped here, which closes them at once.
                    let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
                        refusals.refused(kind, peer, "connection limit reached", MAX_CONNECTIONS);
                        continue;
                    };
                    let Some(slot) = peers.take(peer.ip(), limits.max_connections_per_peer) else {
                        refusals.refused(kind, peer, "connection limit per peer address reached", limits.max_connections_per_peer);
                        continue;
                    };
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, %error, "fluvio {kind}: cannot set TCP_NODELAY");
                    }
                    tracing::debug!(%peer, "fluvio {kind}: connection opened");
                    let connection =
                        Connection::new(kind, stream, peer, limits.idle_timeout, shutdown.clone());
                    let work = handler(connection);
                    connections.spawn(async move {
                        work.await;
                        tracing::debug!(%peer, "fluvio {kind}: connection closed");
                        drop(slot);
                        drop(permit);
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "fluvio {kind}: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = joined && error.is_panic() {
                    tracing::error!(%error, "fluvio {kind}: connection task panicked");
                }
            }
        }
    }
    tracing::info!("fluvio {kind}: shutting down");
    connections.shutdown().await;
    Ok(())
}

/// Open connections per peer address of one listener.
#[derive(Clone, Default)]
struct PeerCounts(Arc<Mutex<HashMap<IpAddr, usize>>>);

impl PeerCounts {
    /// A slot for one more connection from `ip`, or `None` when it already has `max`.
    /// IPv4-mapped IPv6 addresses count as their IPv4 address (dual-stack listeners).
    fn take(&self, ip: IpAddr, max: usize) -> Option<PeerSlot> {
        let ip = ip.to_canonical();
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(ip).or_insert(0);
        if *count >= max {
            if *count == 0 {
                counts.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            counts: self.clone(),
            ip,
        })
    }
}

/// One connection's place in [`PeerCounts`], given back when the connection ends.
struct PeerSlot {
    counts: PeerCounts,
    ip: IpAddr,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Rate-limits the warnings about refused connections of one listener.
#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    unreported: u64,
}

impl RefusalLog {
    fn refused(&mut self, kind: &str, peer: SocketAddr, reason: &str, limit: usize) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < REFUSAL_LOG_INTERVAL)
        {
            self.unreported += 1;
            return;
        }
        tracing::warn!(
            %peer,
            limit,
            unreported_since_last_warning = self.unreported,
            "fluvio {kind}: {reason}, connection closed"
        );
        self.last = Some(now);
        self.unreported = 0;
    }
}

/// Counts what a connection is doing besides waiting for its next request (open watch and fetch
/// streams, produce requests in progress): while anything is, the connection is not idle, so a
/// client tailing a quiet topic or holding metadata watches is never cut.
#[derive(Clone)]
pub(super) struct Activity(Arc<watch::Sender<usize>>);

/// One unit of [`Activity`]; dropping it ends that work.
pub(super) struct Busy(Arc<watch::Sender<usize>>);

impl Activity {
    fn new() -> (Self, watch::Receiver<usize>) {
        let (count, observer) = watch::channel(0);
        (Self(Arc::new(count)), observer)
    }

    /// Marks the connection busy until the returned guard is dropped.
    pub fn busy(&self) -> Busy {
        self.0.send_modify(|count| *count += 1);
        Busy(Arc::clone(&self.0))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|count| *count = count.saturating_sub(1));
    }
}

/// Resolves once the connection has been idle for `timeout`: no request since `since`, and
/// nothing busy (any change of the busy count restarts the clock).
async fn idle(busy: &mut watch::Receiver<usize>, since: &mut Instant, timeout: Duration) {
    loop {
        let changed = if *busy.borrow_and_update() == 0 {
            tokio::select! {
                () = tokio::time::sleep_until(*since + timeout) => return,
                changed = busy.changed() => changed,
            }
        } else {
            busy.changed().await
        };
        if changed.is_err() {
            // The connection owns the sender, so this cannot happen while it exists.
            std::future::pending::<()>().await;
        }
        *since = Instant::now();
    }
}

/// One decoded request: its header and the undecoded body (encoded at `header.api_version()`).
pub(super) struct Request {
    pub header: RequestHeader,
    pub body: Bytes,
}

impl Request {
    pub fn version(&self) -> Version {
        self.header.api_version()
    }

    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id()
    }

    /// Decodes the body as `T` at the request's version.
    pub fn decode<T: Decoder>(&self) -> Result<T, IoError> {
        let mut src = Cursor::new(self.body.as_ref());
        T::decode_from(&mut src, self.version())
    }
}

/// A frame for the writer, optionally with someone to tell once it is flushed to the socket.
struct Outgoing {
    frame: Vec<u8>,
    flushed: Option<oneshot::Sender<()>>,
}

/// The sending side of a connection: encodes responses and queues them for the writer task.
#[derive(Clone)]
pub(super) struct Responder {
    queue: mpsc::Sender<Outgoing>,
    pub peer: SocketAddr,
}

/// The connection's writer is gone (peer closed or a write failed).
#[derive(Debug)]
pub(super) struct Closed;

impl Responder {
    /// Queues `correlation_id` + `body` encoded at `version`, as one frame.
    pub async fn send<P: Encoder>(
        &self,
        correlation_id: i32,
        body: &P,
        version: Version,
    ) -> Result<(), Closed> {
        self.queue(correlation_id, body, version, None).await
    }

    /// Like [`Responder::send`], and resolves only once the frame has been written and flushed
    /// to the socket (metadata updates that must reach the client before another reply).
    pub async fn send_flushed<P: Encoder>(
        &self,
        correlation_id: i32,
        body: &P,
        version: Version,
    ) -> Result<(), Closed> {
        let (flushed, done) = oneshot::channel();
        self.queue(correlation_id, body, version, Some(flushed))
            .await?;
        done.await.map_err(|_| Closed)
    }

    async fn queue<P: Encoder>(
        &self,
        correlation_id: i32,
        body: &P,
        version: Version,
        flushed: Option<oneshot::Sender<()>>,
    ) -> Result<(), Closed> {
        let frame = match encode_frame(correlation_id, body, version) {
            Ok(frame) => frame,
            Err(error) => {
                // Our own response does not encode: a bug, not the peer's fault. Close the
                // connection rather than leave the client waiting for a reply that never comes.
                tracing::error!(peer = %self.peer, %error, "cannot encode a fluvio response");
                return Err(Closed);
            }
        };
        self.queue
            .send(Outgoing { frame, flushed })
            .await
            .map_err(|_| Closed)
    }

    pub async fn closed(&self) {
        self.queue.closed().await;
    }
}

/// `size: i32` + `correlation_id: i32` + body. The size is patched in after encoding, so it is
/// exact whatever the body's `write_size` says.
pub(super) fn encode_frame<P: Encoder>(
    correlation_id: i32,
    body: &P,
    version: Version,
) -> Result<Vec<u8>, IoError> {
    let mut frame = Vec::with_capacity(4 + 4 + body.write_size(version));
    frame.extend_from_slice(&[0; 4]);
    correlation_id.encode(&mut frame, version)?;
    body.encode(&mut frame, version)?;
    let size = i32::try_from(frame.len() - 4)
        .map_err(|_| IoError::new(ErrorKind::InvalidData, "response larger than 2 GiB"))?;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(frame)
}

/// One accepted connection: the frame reader, the responder, and the tasks working for it
/// (writer, watch and fetch streams), all stopped when the connection is dropped.
pub(super) struct Connection {
    kind: &'static str,
    pub peer: SocketAddr,
    reader: BufReader<OwnedReadHalf>,
    pub out: Responder,
    pub tasks: JoinSet<()>,
    /// Streams and requests in progress; see [`Activity`].
    pub activity: Activity,
    busy: watch::Receiver<usize>,
    /// Since when nothing has happened: the last request, the last start or end of a stream or
    /// request in progress, or the connection's opening.
    idle_since: Instant,
    idle_timeout: Option<Duration>,
    shutdown: watch::Receiver<bool>,
}

impl Connection {
    fn new(
        kind: &'static str,
        stream: TcpStream,
        peer: SocketAddr,
        idle_timeout: Option<Duration>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let (read, write) = stream.into_split();
        let (queue, frames) = mpsc::channel(WRITE_QUEUE);
        let mut tasks = JoinSet::new();
        tasks.spawn(write_loop(kind, write, frames, peer));
        let (activity, busy) = Activity::new();
        Self {
            kind,
            peer,
            reader: BufReader::with_capacity(64 * 1024, read),
            out: Responder { queue, peer },
            tasks,
            activity,
            busy,
            idle_since: Instant::now(),
            idle_timeout,
            shutdown,
        }
    }

    /// The next request, or `None` when the connection should end: closed by the peer, writer
    /// gone, shutdown, or a malformed frame (logged with the reason and the peer address).
    pub async fn next_request(&mut self) -> Option<Request> {
        while let Some(joined) = self.tasks.try_join_next() {
            if let Err(error) = joined
                && error.is_panic()
            {
                tracing::error!(peer = %self.peer, %error, "fluvio {}: task panicked", self.kind);
            }
        }
        let idle_timeout = self.idle_timeout;
        let frame = tokio::select! {
            biased;
            () = shutdown_requested(&mut self.shutdown) => return None,
            () = self.out.closed() => {
                tracing::debug!(peer = %self.peer, "fluvio {}: writer closed", self.kind);
                return None;
            }
            frame = read_frame(&mut self.reader, idle_timeout.map(|timeout| (&mut self.busy, &mut self.idle_since, timeout))) => frame,
        };
        let frame = match frame {
            Ok(Frame::Complete(frame)) => frame,
            Ok(Frame::End) => return None,
            Ok(Frame::Idle) => {
                tracing::info!(
                    peer = %self.peer,
                    idle_timeout_secs = idle_timeout.map(|t| t.as_secs()),
                    "fluvio {}: idle connection closed (no request and no open stream)",
                    self.kind
                );
                return None;
            }
            Err(error) => {
                let level_warn = error.kind() != ErrorKind::ConnectionReset;
                if level_warn {
                    tracing::warn!(peer = %self.peer, %error, "fluvio {}: closing connection", self.kind);
                } else {
                    tracing::debug!(peer = %self.peer, %error, "fluvio {}: connection reset", self.kind);
                }
                return None;
            }
        };
        self.idle_since = Instant::now();
        let mut src = Cursor::new(frame.as_ref());
        match RequestHeader::decode_from(&mut src, 0) {
            // fluvio-protocol's decoders read no field at a negative version, so a list's
            // length would turn into that many empty elements (gigabytes from a 27-byte frame;
            // found by fuzzing). Every API here starts at version 0.
            Ok(header) if header.api_version() < 0 => {
                tracing::warn!(peer = %self.peer, api_key = header.api_key(), api_version = header.api_version(), "fluvio {}: negative API version, closing connection", self.kind);
                None
            }
            Ok(header) => {
                let at = usize::try_from(src.position()).unwrap_or(frame.len());
                Some(Request {
                    header,
                    body: frame.slice(at.min(frame.len())..),
                })
            }
            Err(error) => {
                tracing::warn!(peer = %self.peer, %error, "fluvio {}: malformed request header, closing connection", self.kind);
                None
            }
        }
    }

    /// Logs why a request ends the connection (the caller then drops it).
    pub fn reject(&self, request: &Request, error: &dyn std::fmt::Display) {
        tracing::warn!(
            peer = %self.peer,
            api_key = request.header.api_key(),
            api_version = request.version(),
            %error,
            "fluvio {}: bad request, closing connection",
            self.kind
        );
    }
}

/// What [`read_frame`] got.
enum Frame {
    Complete(Bytes),
    /// A clean end of stream between frames.
    End,
    /// No byte arrived within the idle timeout while nothing else was going on.
    Idle,
}

/// Waits for the next frame's first byte (only this wait can end as [`Frame::Idle`], given
/// `idle_clock` = the busy count, the idle-since time and the timeout), then reads the whole frame
/// within [`FRAME_BODY_TIMEOUT`].
async fn read_frame(
    reader: &mut BufReader<OwnedReadHalf>,
    idle_clock: Option<(&mut watch::Receiver<usize>, &mut Instant, Duration)>,
) -> Result<Frame, IoError> {
    // `fill_buf` is cancel-safe: losing the race to the idle timer loses no bytes.
    let available = match idle_clock {
        Some((busy, since, timeout)) => tokio::select! {
            filled = reader.fill_buf() => filled?.len(),
            () = idle(busy, since, timeout) => return Ok(Frame::Idle),
        },
        None => reader.fill_buf().await?.len(),
    };
    if available == 0 {
        return Ok(Frame::End);
    }
    tokio::time::timeout(FRAME_BODY_TIMEOUT, read_started_frame(reader))
        .await
        .map_err(|_| IoError::new(ErrorKind::TimedOut, "frame did not arrive in time"))?
}

/// Reads a frame whose first byte is buffered. The buffer grows with the bytes received (at
/// most doubling), never to the size prefix's promise up front.
async fn read_started_frame(reader: &mut BufReader<OwnedReadHalf>) -> Result<Frame, IoError> {
    let mut size = [0u8; 4];
    match reader.read_exact(&mut size).await {
        Ok(_) => {}
        Err(error) if error.kind() == ErrorKind::UnexpectedEof => return Ok(Frame::End),
        Err(error) => return Err(error),
    }
    let size = i32::from_be_bytes(size);
    let size = usize::try_from(size)
        .ok()
        .filter(|size| *size <= MAX_FRAME_BYTES)
        .ok_or_else(|| {
            IoError::new(
                ErrorKind::InvalidData,
                format!("frame size {size} outside 0..={MAX_FRAME_BYTES}"),
            )
        })?;
    let mut body = Vec::with_capacity(size.min(FRAME_INITIAL_CAPACITY));
    let limit = u64::try_from(size).unwrap_or(u64::MAX);
    let received = (&mut *reader).take(limit).read_to_end(&mut body).await?;
    if received < size {
        return Err(IoError::new(
            ErrorKind::UnexpectedEof,
            format!("connection closed after {received} of a frame's {size} bytes"),
        ));
    }
    Ok(Frame::Complete(Bytes::from(body)))
}

/// Writes queued frames, flushing whenever the queue runs dry.
async fn write_loop(
    kind: &'static str,
    write: OwnedWriteHalf,
    mut frames: mpsc::Receiver<Outgoing>,
    peer: SocketAddr,
) {
    let mut writer = BufWriter::with_capacity(64 * 1024, write);
    let mut waiting = Vec::new();
    while let Some(first) = frames.recv().await {
        let mut next = Some(first);
        let mut result = Ok(());
        while let Some(outgoing) = next.take() {
            result = writer.write_all(&outgoing.frame).await;
            waiting.extend(outgoing.flushed);
            if result.is_err() {
                break;
            }
            next = frames.try_recv().ok();
        }
        if let Err(error) = result.and(writer.flush().await) {
            tracing::debug!(%peer, %error, "fluvio {kind}: write failed, closing connection");
            return;
        }
        for flushed in waiting.drain(..) {
            let _ = flushed.send(());
        }
    }
}
