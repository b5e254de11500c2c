//! The SPU side: produce, fetch offsets, stream fetch with its offset acks, consumer offsets.
//!
//! - Produce: each batch is appended as sent ([`EventLog::append_raw_batch`]); one response
//!   entry per request entry, in order. The requests of one connection are handled in order (a
//!   per-connection worker), and the batches of one request are queued to the log in request
//!   order, so a producer's records keep their order.
//! - StreamFetch: one task per stream sends whole stored batches (at least one), then waits for
//!   the client's UpdateOffsets ack before sending more; with nothing new it sleeps in
//!   [`EventLog::wait_beyond`] until an append passes its offset (no polling).
//! - Consumer offsets: stored in the log's durable offset store under the consumer id. Fluvio
//!   stores "last offset consumed", the log "next offset to read": the two differ by one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;

use fluvio_protocol::link::ErrorCode;
use fluvio_protocol::link::versions::{ApiVersionKey, ApiVersionsRequest, ApiVersionsResponse};
use fluvio_protocol::record::ReplicaKey;
use fluvio_spu_schema::fetch::{FetchResponse, FetchablePartitionResponse};
use fluvio_spu_schema::produce::{
    PartitionProduceResponse, ProduceRequest, ProduceResponse, TopicProduceResponse,
};
use fluvio_spu_schema::server::SpuServerApiKey;
use fluvio_spu_schema::server::consumer_offset::{
    ConsumerOffset, DeleteConsumerOffsetRequest, DeleteConsumerOffsetResponse,
    FetchConsumerOffsetsRequest, FetchConsumerOffsetsResponse, UpdateConsumerOffsetRequest,
    UpdateConsumerOffsetResponse,
};
use fluvio_spu_schema::server::fetch_offset::{
    FetchOffsetPartitionResponse, FetchOffsetTopicResponse, FetchOffsetsRequest,
    FetchOffsetsResponse,
};
use fluvio_spu_schema::server::stream_fetch::{DefaultStreamFetchRequest, StreamFetchResponse};
use fluvio_spu_schema::server::update_offset::{
    OffsetUpdateStatus, UpdateOffsetsRequest, UpdateOffsetsResponse,
};
use tokio::sync::{mpsc, watch};

use super::CONSUMER_OFFSET_TOPIC;
use super::conn::{Busy, Closed, Connection, REQUEST_TIMEOUT, Request, Responder};
use super::sc::platform_version;
use super::wire::RawBatches;
use crate::embedded::log::{EventLog, LogError};

/// The SPU's `COMMON_VERSION` (fluvio-spu-schema): 25 for the Rust client 0.50, 24 for Python.
const SPU_MAX_VERSION: i16 = fluvio_spu_schema::COMMON_VERSION;
/// Largest single batch a producer may send.
pub(super) const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Upper bound of one stream-fetch response (one larger batch is still sent whole).
const MAX_FETCH_BYTES: usize = 4 * 1024 * 1024;
/// Open fetch streams per connection.
const MAX_STREAMS_PER_CONNECTION: usize = 1024;
/// Produce requests waiting for the connection's produce worker.
const PRODUCE_QUEUE: usize = 64;
const SMARTMODULES_UNSUPPORTED: &str =
    "SmartModules are not supported by this broker (taskstream's embedded Fluvio-compatible log)";

/// (consumer id, topic, partition) → last commit time in ms since the epoch.
type ConsumerRegistry = BTreeMap<(String, String, u32), u64>;

/// Shared state of the SPU listener.
#[derive(Clone)]
pub(super) struct SpuState {
    log: EventLog,
    /// (consumer id, topic, partition) → last commit time (ms since the epoch), for listing all
    /// consumer offsets: the log looks offsets up by key but cannot list them.
    consumers: Arc<Mutex<ConsumerRegistry>>,
    /// Refuse produce to the appliance's own topics (`--fluvio-read-only`).
    read_only: bool,
}

impl SpuState {
    pub fn new(log: EventLog) -> Self {
        Self {
            log,
            consumers: Arc::new(Mutex::new(BTreeMap::new())),
            read_only: false,
        }
    }

    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    fn note_consumer(&self, consumer: &str, topic: &str, partition: u32, modified_ms: u64) {
        let mut consumers = self
            .consumers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = (consumer.to_owned(), topic.to_owned(), partition);
        let entry = consumers.entry(key).or_insert(0);
        *entry = (*entry).max(modified_ms);
    }

    fn forget_consumer(&self, consumer: &str, topic: &str, partition: u32) {
        self.consumers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(consumer.to_owned(), topic.to_owned(), partition));
    }

    fn known_consumers(&self) -> BTreeSet<String> {
        self.consumers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .map(|(consumer, _, _)| consumer.clone())
            .collect()
    }

    fn modified_ms(&self, consumer: &str, topic: &str, partition: u32) -> u64 {
        self.consumers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(consumer.to_owned(), topic.to_owned(), partition))
            .copied()
            .unwrap_or(0)
    }
}

/// A fetch stream of one connection, as UpdateOffsets / UpdateConsumerOffset find it.
struct Session {
    topic: String,
    partition: u32,
    consumer_id: Option<String>,
    acks: watch::Sender<Option<i64>>,
}

type Sessions = Arc<Mutex<HashMap<u32, Session>>>;

/// Removes a stream's session when its task ends (or is aborted with the connection).
struct SessionGuard {
    sessions: Sessions,
    id: u32,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn log_error_code(error: &LogError) -> ErrorCode {
    match error {
        LogError::NotFound(_) => ErrorCode::TopicNotFound,
        LogError::InvalidPartition { .. } => ErrorCode::NotLeaderForPartition,
        other => ErrorCode::Other(other.to_string()),
    }
}

/// Serves one SPU connection until it ends.
pub(super) async fn handle_connection(state: SpuState, mut conn: Connection) {
    let sessions: Sessions = Arc::new(Mutex::new(HashMap::new()));
    let next_stream = Arc::new(AtomicU32::new(0));
    let (produce_queue, produce_requests) = mpsc::channel(PRODUCE_QUEUE);
    conn.tasks.spawn(produce_worker(
        state.clone(),
        conn.out.clone(),
        produce_requests,
    ));
    while let Some(request) = conn.next_request().await {
        let result = dispatch(
            &state,
            &mut conn,
            &sessions,
            &next_stream,
            &produce_queue,
            request,
        )
        .await;
        match result {
            Ok(()) => {}
            Err(Failure::Closed) => return,
            Err(Failure::Bad(request, error)) => {
                conn.reject(&request, &error);
                return;
            }
        }
    }
}

enum Failure {
    Closed,
    Bad(Request, String),
}

impl From<Closed> for Failure {
    fn from(_: Closed) -> Self {
        Failure::Closed
    }
}

/// Decodes the request body or turns the error into a [`Failure`] that closes the connection.
macro_rules! decode {
    ($request:expr) => {
        match $request.decode() {
            Ok(body) => body,
            Err(error) => return Err(Failure::Bad($request, error.to_string())),
        }
    };
}

async fn dispatch(
    state: &SpuState,
    conn: &mut Connection,
    sessions: &Sessions,
    next_stream: &AtomicU32,
    produce_queue: &mpsc::Sender<(Request, Busy)>,
    request: Request,
) -> Result<(), Failure> {
    const VERSIONS: u16 = SpuServerApiKey::ApiVersion as u16;
    const PRODUCE: u16 = SpuServerApiKey::Produce as u16;
    const FETCH: u16 = 1;
    const FETCH_OFFSETS: u16 = SpuServerApiKey::FetchOffsets as u16;
    const STREAM_FETCH: u16 = SpuServerApiKey::StreamFetch as u16;
    const UPDATE_OFFSETS: u16 = SpuServerApiKey::UpdateOffsets as u16;
    const UPDATE_CONSUMER_OFFSET: u16 = SpuServerApiKey::UpdateConsumerOffset as u16;
    const DELETE_CONSUMER_OFFSET: u16 = SpuServerApiKey::DeleteConsumerOffset as u16;
    const FETCH_CONSUMER_OFFSETS: u16 = SpuServerApiKey::FetchConsumerOffsets as u16;
    let out = conn.out.clone();
    let (id, version) = (request.correlation_id(), request.version());
    match request.header.api_key() {
        VERSIONS => {
            let _: ApiVersionsRequest = decode!(request);
            out.send(id, &api_versions(), version).await?;
        }
        PRODUCE => {
            // In progress until answered: a slow append does not make the connection idle.
            let busy = conn.activity.busy();
            produce_queue
                .send((request, busy))
                .await
                .map_err(|_| Closed)?;
        }
        FETCH => {
            // The Kafka-style one-shot fetch: the clients consume with StreamFetch instead.
            let response = FetchResponse::<RawBatches> {
                error_code: ErrorCode::Other(
                    "one-shot Fetch is not supported; use StreamFetch".to_owned(),
                ),
                ..Default::default()
            };
            out.send(id, &response, version).await?;
        }
        FETCH_OFFSETS => {
            let fetch: FetchOffsetsRequest = decode!(request);
            out.send(id, &fetch_offsets(state, fetch), version).await?;
        }
        STREAM_FETCH => {
            let fetch: DefaultStreamFetchRequest = decode!(request);
            start_stream(state, conn, sessions, next_stream, id, version, fetch).await?;
        }
        UPDATE_OFFSETS => {
            let update: UpdateOffsetsRequest = decode!(request);
            let status = ack_offsets(sessions, &update);
            out.send(id, &UpdateOffsetsResponse { status }, version)
                .await?;
        }
        UPDATE_CONSUMER_OFFSET => {
            let update: UpdateConsumerOffsetRequest = decode!(request);
            let response = update_consumer_offset(state, sessions, update).await;
            out.send(id, &response, version).await?;
        }
        DELETE_CONSUMER_OFFSET => {
            let delete: DeleteConsumerOffsetRequest = decode!(request);
            let response = delete_consumer_offset(state, delete).await;
            out.send(id, &response, version).await?;
        }
        FETCH_CONSUMER_OFFSETS => {
            let fetch: FetchConsumerOffsetsRequest = decode!(request);
            let response = fetch_consumer_offsets(state, fetch).await;
            out.send(id, &response, version).await?;
        }
        other => {
            let error = format!("unsupported SPU api key {other}");
            return Err(Failure::Bad(request, error));
        }
    }
    Ok(())
}

/// Hands each acked offset to its stream; unknown session ids get `FetchSessionNotFoud`.
fn ack_offsets(sessions: &Sessions, update: &UpdateOffsetsRequest) -> Vec<OffsetUpdateStatus> {
    let sessions = sessions.lock().unwrap_or_else(PoisonError::into_inner);
    update
        .offsets
        .iter()
        .map(|update| OffsetUpdateStatus {
            session_id: update.session_id,
            error: match sessions.get(&update.session_id) {
                Some(session) => {
                    session.acks.send_replace(Some(update.offset));
                    ErrorCode::None
                }
                None => ErrorCode::FetchSessionNotFoud,
            },
        })
        .collect()
}

fn api_versions() -> ApiVersionsResponse {
    let key = |api: SpuServerApiKey, max_version: i16| ApiVersionKey {
        api_key: api as i16,
        min_version: 0,
        max_version,
    };
    ApiVersionsResponse {
        error_code: ErrorCode::None,
        api_keys: vec![
            key(
                SpuServerApiKey::ApiVersion,
                fluvio_protocol::link::versions::V10_PLATFORM,
            ),
            key(SpuServerApiKey::Produce, SPU_MAX_VERSION),
            key(SpuServerApiKey::FetchOffsets, SPU_MAX_VERSION),
            key(SpuServerApiKey::StreamFetch, SPU_MAX_VERSION),
            key(SpuServerApiKey::UpdateOffsets, 0),
            key(SpuServerApiKey::UpdateConsumerOffset, SPU_MAX_VERSION),
            key(SpuServerApiKey::DeleteConsumerOffset, SPU_MAX_VERSION),
            key(SpuServerApiKey::FetchConsumerOffsets, SPU_MAX_VERSION),
        ],
        platform_version: platform_version(),
    }
}

/// Handles the connection's produce requests one after the other, in arrival order.
async fn produce_worker(
    state: SpuState,
    out: Responder,
    mut requests: mpsc::Receiver<(Request, Busy)>,
) {
    while let Some((request, _busy)) = requests.recv().await {
        let (id, version) = (request.correlation_id(), request.version());
        let produce: ProduceRequest<RawBatches> = match request.decode() {
            Ok(produce) => produce,
            Err(error) => {
                tracing::warn!(peer = %out.peer, %error, "fluvio spu: malformed produce request, closing connection");
                return;
            }
        };
        let response = produce_all(&state, produce).await;
        if out.send(id, &response, version).await.is_err() {
            return;
        }
    }
}

/// Appends every entry's batches; one response entry per request entry, in request order.
async fn produce_all(state: &SpuState, produce: ProduceRequest<RawBatches>) -> ProduceResponse {
    let refuse_all = (!produce.smartmodules.is_empty())
        .then(|| ErrorCode::Other(SMARTMODULES_UNSUPPORTED.to_owned()));
    let mut shapes: Vec<(String, Vec<u32>)> = Vec::new();
    let mut work: Vec<Pin<Box<dyn Future<Output = PartitionProduceResponse> + Send + '_>>> =
        Vec::new();
    for topic in produce.topics {
        let mut indexes = Vec::with_capacity(topic.partitions.len());
        for entry in topic.partitions {
            indexes.push(entry.partition_index);
            let name = topic.name.clone();
            let refused = refuse_all.clone();
            work.push(Box::pin(async move {
                let partition = entry.partition_index;
                let result = match refused {
                    Some(code) => Err(code),
                    None => produce_entry(state, &name, partition, entry.records).await,
                };
                let log_start_offset = state
                    .log
                    .start_offset(&name, partition)
                    .ok()
                    .and_then(|start| i64::try_from(start).ok())
                    .unwrap_or(-1);
                let (error_code, base_offset) = match result {
                    Ok(base) => (ErrorCode::None, i64::try_from(base).unwrap_or(i64::MAX)),
                    Err(code) => (code, -1),
                };
                PartitionProduceResponse {
                    partition_index: partition,
                    error_code,
                    base_offset,
                    log_append_time_ms: -1,
                    log_start_offset,
                }
            }));
        }
        shapes.push((topic.name, indexes));
    }
    let timeout_ms = u64::try_from(REQUEST_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
    // On timeout every entry is answered with RequestTimedOut (some may have been stored).
    let results: Vec<PartitionProduceResponse> =
        tokio::time::timeout(REQUEST_TIMEOUT, join_in_order(work))
            .await
            .unwrap_or_default();
    let mut results = results.into_iter();
    let responses = shapes
        .into_iter()
        .map(|(name, indexes)| TopicProduceResponse {
            name,
            partitions: indexes
                .into_iter()
                .map(|partition_index| {
                    results.next().unwrap_or_else(|| PartitionProduceResponse {
                        partition_index,
                        error_code: ErrorCode::RequestTimedOut {
                            timeout_ms,
                            kind: fluvio_protocol::api::RequestKind::Produce,
                        },
                        base_offset: -1,
                        log_append_time_ms: -1,
                        log_start_offset: -1,
                    })
                })
                .collect(),
        })
        .collect();
    ProduceResponse {
        responses,
        throttle_time_ms: 0,
    }
}

/// Runs `futures` concurrently, polling them in order every time, so the first poll of each
/// (which queues its write to the log) happens in request order. Results come in that order.
async fn join_in_order<T>(
    mut futures: Vec<Pin<Box<dyn Future<Output = T> + Send + '_>>>,
) -> Vec<T> {
    let mut results: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, result) in futures.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *result = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

/// Appends one entry's batches; returns the base offset of the first.
async fn produce_entry(
    state: &SpuState,
    topic: &str,
    partition: u32,
    records: RawBatches,
) -> Result<u64, ErrorCode> {
    if state.read_only && super::is_appliance_topic(topic) {
        return Err(ErrorCode::Other(format!(
            "topic {topic} belongs to the appliance and is read-only to Fluvio clients; produce to a topic of your own, or start taskstream with --fluvio-read-only=false"
        )));
    }
    if let Some(problem) = records.malformed {
        return Err(ErrorCode::Other(format!("malformed record set: {problem}")));
    }
    if records.batches.is_empty() {
        return Err(ErrorCode::Other("empty record set".to_owned()));
    }
    if records
        .batches
        .iter()
        .any(|batch| batch.len() > MAX_BATCH_BYTES)
    {
        return Err(ErrorCode::MessageTooLarge);
    }
    let mut first = None;
    for batch in records.batches {
        let base = state
            .log
            .append_raw_batch(topic, partition, batch.to_vec())
            .await
            .map_err(|error| {
                tracing::debug!(topic, partition, %error, "fluvio spu: produce rejected");
                log_error_code(&error)
            })?;
        first.get_or_insert(base);
    }
    first.ok_or_else(|| ErrorCode::Other("empty record set".to_owned()))
}

fn fetch_offsets(state: &SpuState, fetch: FetchOffsetsRequest) -> FetchOffsetsResponse {
    let topics = fetch
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .into_iter()
                .map(|partition| {
                    let index = partition.partition_index;
                    let offsets = state
                        .log
                        .start_offset(&topic.name, index)
                        .and_then(|start| Ok((start, state.log.end_offset(&topic.name, index)?)));
                    match offsets {
                        Ok((start, end)) => FetchOffsetPartitionResponse {
                            error_code: ErrorCode::None,
                            partition_index: index,
                            start_offset: i64::try_from(start).unwrap_or(i64::MAX),
                            last_stable_offset: i64::try_from(end).unwrap_or(i64::MAX),
                        },
                        Err(error) => FetchOffsetPartitionResponse {
                            error_code: log_error_code(&error),
                            partition_index: index,
                            start_offset: -1,
                            last_stable_offset: -1,
                        },
                    }
                })
                .collect();
            FetchOffsetTopicResponse {
                name: topic.name,
                partitions,
            }
        })
        .collect();
    FetchOffsetsResponse { topics }
}

type StreamResponse = StreamFetchResponse<RawBatches>;

fn stream_response(topic: &str, stream_id: u32, partition: u32) -> StreamResponse {
    StreamResponse {
        topic: topic.to_owned(),
        stream_id,
        partition: FetchablePartitionResponse {
            partition_index: partition,
            error_code: ErrorCode::None,
            high_watermark: -1,
            next_filter_offset: 0,
            log_start_offset: -1,
            aborted: None,
            records: RawBatches::default(),
        },
    }
}

async fn start_stream(
    state: &SpuState,
    conn: &mut Connection,
    sessions: &Sessions,
    next_stream: &AtomicU32,
    correlation_id: i32,
    version: i16,
    fetch: DefaultStreamFetchRequest,
) -> Result<(), Closed> {
    let stream_id = next_stream.fetch_add(1, Ordering::Relaxed);
    let (topic, partition) = (fetch.topic.clone(), fetch.partition);
    let refusal = if !fetch.smartmodules.is_empty() {
        Some(ErrorCode::Other(SMARTMODULES_UNSUPPORTED.to_owned()))
    } else if topic == CONSUMER_OFFSET_TOPIC {
        Some(ErrorCode::Other(format!(
            "{CONSUMER_OFFSET_TOPIC} is read through the consumer-offset APIs"
        )))
    } else if let Err(error) = state.log.end_offset(&topic, partition) {
        Some(log_error_code(&error))
    } else if sessions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len()
        >= MAX_STREAMS_PER_CONNECTION
    {
        Some(ErrorCode::Other(format!(
            "too many fetch streams on one connection (limit {MAX_STREAMS_PER_CONNECTION})"
        )))
    } else {
        None
    };
    if let Some(code) = refusal {
        tracing::debug!(peer = %conn.peer, %topic, partition, %code, "fluvio spu: stream fetch refused");
        let mut response = stream_response(&topic, stream_id, partition);
        response.partition.error_code = code;
        return conn.out.send(correlation_id, &response, version).await;
    }
    let (acks, ack_updates) = watch::channel(None);
    let consumer_id = fetch.consumer_id.clone().filter(|id| !id.is_empty());
    if let Some(consumer) = &consumer_id {
        // Listed from now on; its stored offset (if any) is what the listing reports.
        state.note_consumer(consumer, &topic, partition, 0);
    }
    sessions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(
            stream_id,
            Session {
                topic,
                partition,
                consumer_id,
                acks,
            },
        );
    let guard = SessionGuard {
        sessions: Arc::clone(sessions),
        id: stream_id,
    };
    // A tailing consumer may wait for hours on a quiet topic: the stream keeps it from idling.
    let busy = conn.activity.busy();
    let stream = Stream {
        log: state.log.clone(),
        out: conn.out.clone(),
        correlation_id,
        version,
        stream_id,
        topic: fetch.topic,
        partition,
        max_bytes: usize::try_from(fetch.max_bytes)
            .unwrap_or(0)
            .clamp(1, MAX_FETCH_BYTES),
    };
    let start = u64::try_from(fetch.fetch_offset).unwrap_or(0);
    conn.tasks.spawn(async move {
        let _guard = guard;
        let _busy = busy;
        stream.run(start, ack_updates).await;
    });
    Ok(())
}

/// One StreamFetch: sends stored batches from an offset, one chunk per client ack.
struct Stream {
    log: EventLog,
    out: Responder,
    correlation_id: i32,
    version: i16,
    stream_id: u32,
    topic: String,
    partition: u32,
    max_bytes: usize,
}

impl Stream {
    async fn run(self, mut next: u64, mut acks: watch::Receiver<Option<i64>>) {
        loop {
            // Sleep until the log holds a record at `next`: woken by the append, no polling.
            let waited = tokio::select! {
                waited = self.log.wait_beyond(&self.topic, self.partition, next) => waited,
                () = self.out.closed() => return,
            };
            if let Err(error) = waited {
                self.fail(&error).await;
                return;
            }
            let batches = match self
                .log
                .read_batches(&self.topic, self.partition, next, self.max_bytes)
                .await
            {
                Ok(batches) => batches,
                Err(error) => {
                    self.fail(&error).await;
                    return;
                }
            };
            let Some(last) = batches.last().map(|batch| batch.last_offset) else {
                // Retention removed what was there: continue from the first retained offset.
                match self.log.start_offset(&self.topic, self.partition) {
                    Ok(start) if start > next => {
                        next = start;
                        continue;
                    }
                    Ok(_) => {
                        let error = LogError::Storage(format!("no batch holds offset {next}"));
                        self.fail(&error).await;
                        return;
                    }
                    Err(error) => {
                        self.fail(&error).await;
                        return;
                    }
                }
            };
            let mut response = stream_response(&self.topic, self.stream_id, self.partition);
            let end = self
                .log
                .end_offset(&self.topic, self.partition)
                .unwrap_or(last + 1);
            let start = self
                .log
                .start_offset(&self.topic, self.partition)
                .unwrap_or(0);
            response.partition.high_watermark = i64::try_from(end).unwrap_or(i64::MAX);
            response.partition.log_start_offset = i64::try_from(start).unwrap_or(0);
            response.partition.records =
                RawBatches::new(batches.into_iter().map(|batch| batch.bytes).collect());
            acks.borrow_and_update();
            if self
                .out
                .send(self.correlation_id, &response, self.version)
                .await
                .is_err()
            {
                return;
            }
            // One chunk in flight: the client acks with the offset it wants next.
            tokio::select! {
                changed = acks.changed() => if changed.is_err() { return },
                () = self.out.closed() => return,
            }
            let acked = *acks.borrow_and_update();
            next = acked
                .and_then(|offset| u64::try_from(offset).ok())
                .unwrap_or(last + 1);
        }
    }

    async fn fail(&self, error: &LogError) {
        tracing::debug!(peer = %self.out.peer, topic = %self.topic, partition = self.partition, %error, "fluvio spu: stream fetch ends");
        let mut response = stream_response(&self.topic, self.stream_id, self.partition);
        response.partition.error_code = log_error_code(error);
        let _ = self
            .out
            .send(self.correlation_id, &response, self.version)
            .await;
    }
}

async fn update_consumer_offset(
    state: &SpuState,
    sessions: &Sessions,
    update: UpdateConsumerOffsetRequest,
) -> UpdateConsumerOffsetResponse {
    let respond = |error_code| UpdateConsumerOffsetResponse {
        offset: update.offset,
        error_code,
    };
    let session = sessions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&update.session_id)
        .map(|session| {
            (
                session.topic.clone(),
                session.partition,
                session.consumer_id.clone(),
            )
        });
    let Some((topic, partition, consumer)) = session else {
        return respond(ErrorCode::FetchSessionNotFoud);
    };
    let Some(consumer) = consumer else {
        return respond(ErrorCode::OffsetManagementDisabled);
    };
    let Some(next) = u64::try_from(update.offset)
        .ok()
        .and_then(|offset| offset.checked_add(1))
    else {
        return respond(ErrorCode::Other(format!(
            "invalid consumer offset {}",
            update.offset
        )));
    };
    let commit = state.log.commit_offset(&consumer, &topic, partition, next);
    match tokio::time::timeout(REQUEST_TIMEOUT, commit).await {
        Ok(Ok(())) => {
            state.note_consumer(&consumer, &topic, partition, now_ms());
            respond(ErrorCode::None)
        }
        Ok(Err(error)) => respond(log_error_code(&error)),
        Err(_) => respond(ErrorCode::Other("commit timed out".to_owned())),
    }
}

async fn delete_consumer_offset(
    state: &SpuState,
    delete: DeleteConsumerOffsetRequest,
) -> DeleteConsumerOffsetResponse {
    let ReplicaKey { topic, partition } = delete.replica_id;
    let removal = state
        .log
        .delete_committed_offset(&delete.consumer_id, &topic, partition);
    let error_code = match tokio::time::timeout(REQUEST_TIMEOUT, removal).await {
        Ok(Ok(())) => {
            state.forget_consumer(&delete.consumer_id, &topic, partition);
            ErrorCode::None
        }
        Ok(Err(error)) => log_error_code(&error),
        Err(_) => ErrorCode::Other("delete timed out".to_owned()),
    };
    DeleteConsumerOffsetResponse { error_code }
}

async fn fetch_consumer_offsets(
    state: &SpuState,
    fetch: FetchConsumerOffsetsRequest,
) -> FetchConsumerOffsetsResponse {
    let filter = fetch.filter_opts.unwrap_or_default();
    let consumers: Vec<String> = match filter.consumer_id {
        Some(consumer) => vec![consumer],
        None => {
            // Everything committed to the log (so the list survives a restart), plus consumers
            // seen since start.
            let mut known = state.known_consumers();
            match state.log.committed_offsets().await {
                Ok(stored) => known.extend(stored.into_iter().map(|(group, ..)| group)),
                Err(error) => {
                    return FetchConsumerOffsetsResponse {
                        error_code: log_error_code(&error),
                        consumers: Vec::new(),
                    };
                }
            }
            known.into_iter().collect()
        }
    };
    let replicas: Vec<(String, u32)> = match filter.replica_id {
        Some(replica) => vec![(replica.topic, replica.partition)],
        None => state
            .log
            .topics()
            .into_iter()
            .flat_map(|topic| {
                (0..topic.partitions).map(move |partition| (topic.name.clone(), partition))
            })
            .collect(),
    };
    let mut found = Vec::new();
    for consumer in &consumers {
        for (topic, partition) in &replicas {
            let lookup = state.log.committed_offset(consumer, topic, *partition);
            match tokio::time::timeout(REQUEST_TIMEOUT, lookup).await {
                Ok(Ok(Some(next))) if next > 0 => found.push(ConsumerOffset {
                    consumer_id: consumer.clone(),
                    replica_id: ReplicaKey::new(topic.clone(), *partition),
                    offset: i64::try_from(next - 1).unwrap_or(i64::MAX),
                    modified_time: state.modified_ms(consumer, topic, *partition),
                }),
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    return FetchConsumerOffsetsResponse {
                        error_code: log_error_code(&error),
                        consumers: Vec::new(),
                    };
                }
                Err(_) => {
                    return FetchConsumerOffsetsResponse {
                        error_code: ErrorCode::Other("consumer offset lookup timed out".to_owned()),
                        consumers: Vec::new(),
                    };
                }
            }
        }
    }
    FetchConsumerOffsetsResponse {
        error_code: ErrorCode::None,
        consumers: found,
    }
}
