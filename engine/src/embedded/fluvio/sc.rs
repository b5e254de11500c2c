//! The SC side: API versions, metadata watch streams, topic create / list / delete.
//!
//! The metadata the clients see is derived from the log's topic list (plus the always-present
//! `consumer-offset` system topic) into a [`Catalog`] published on a watch channel. Every watch
//! stream sends a full `all` first, then `changes` (UPDATE / DELETE messages) whenever the
//! catalog changes. A create or delete replies only after every open topic and partition watch
//! has been handed the new catalog, so a client that sees "created" can use the topic.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::io::{Cursor, Error as IoError, ErrorKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fluvio_controlplane_metadata::spu::{
    EncryptionEnum, IngressAddr, IngressPort, SpuStatus, SpuStatusResolution, SpuType,
};
use fluvio_protocol::link::ErrorCode;
use fluvio_protocol::link::versions::{
    ApiVersionKey, ApiVersionsRequest, ApiVersionsResponse, PlatformVersion,
};
use fluvio_protocol::{Decoder, Encoder, Version};
use fluvio_sc_schema::message::Message;
use fluvio_sc_schema::objects::{
    CreateRequest, DeleteRequest, ListRequest, ListResponse, Metadata, MetadataUpdate,
    ObjectApiCreateRequest, ObjectApiDeleteRequest, ObjectApiListRequest, ObjectApiListResponse,
    ObjectApiWatchRequest, ObjectApiWatchResponse, WatchRequest, WatchResponse,
};
use fluvio_sc_schema::partition::{
    PartitionResolution, PartitionSpec, PartitionStatus, ReplicaStatus,
};
use fluvio_sc_schema::spu::SpuSpec;
use fluvio_sc_schema::store::KeyFilter;
use fluvio_sc_schema::topic::{
    CleanupPolicy, ReplicaSpec, SegmentBasedPolicy, TopicResolution, TopicSpec, TopicStatus,
    TopicStorageConfig,
};
use fluvio_sc_schema::{AdminPublicApiKey, AdminSpec, Status, TryEncodableFrom};
use tokio::sync::{Notify, watch};

use super::conn::{Closed, Connection, REQUEST_TIMEOUT, Request, Responder, shutdown_requested};
use super::{CONSUMER_OFFSET_TOPIC, FluvioConfig, PLATFORM_VERSION, SPU_ID};
use crate::embedded::log::{EventLog, LogError, MAX_PARTITIONS, Retention, validate_topic_name};

/// How often the catalog is compared with the log's topics, to pick up topics created or
/// deleted by the application itself (creates and deletes made here are published at once).
const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// How long a create / delete waits for the open watch streams to take the new catalog.
const PUBLISH_WAIT: Duration = Duration::from_secs(5);
/// Fluvio's default topic retention (7 days), shown for the `consumer-offset` system topic.
const SYSTEM_TOPIC_RETENTION_SECS: u32 = 7 * 24 * 3600;
/// The SC's `COMMON_VERSION` (fluvio-sc-schema): the highest version of every object API.
const SC_MAX_VERSION: i16 = 19;

/// What the clients see of one topic; a change of any field is published as an UPDATE.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TopicEntry {
    partitions: u32,
    retention_secs: u32,
    max_bytes: Option<u64>,
    system: bool,
}

/// One published state of the topic metadata.
#[derive(Debug, Default, PartialEq, Eq)]
struct Catalog {
    epoch: i64,
    topics: BTreeMap<String, TopicEntry>,
}

/// Shared state of the SC listener.
#[derive(Clone)]
pub(super) struct ScState {
    inner: Arc<ScInner>,
}

struct ScInner {
    log: EventLog,
    spu: Metadata<SpuSpec>,
    catalog: watch::Sender<Arc<Catalog>>,
    /// Watch stream id → the catalog epoch it has sent last (-1 before its first `all`).
    delivered: Mutex<HashMap<u64, i64>>,
    delivered_changed: Notify,
    next_watcher: AtomicU64,
    /// The appliance's own topics cannot be deleted at all (`--fluvio-read-only`).
    read_only: bool,
}

impl ScState {
    pub fn new(log: EventLog, config: &FluvioConfig) -> Result<Self, IoError> {
        let spu = spu_metadata(&config.spu_advertised_addr)?;
        let state = Self {
            inner: Arc::new(ScInner {
                log,
                spu,
                catalog: watch::Sender::new(Arc::new(Catalog::default())),
                delivered: Mutex::new(HashMap::new()),
                delivered_changed: Notify::new(),
                next_watcher: AtomicU64::new(0),
                read_only: config.read_only,
            }),
        };
        state.refresh();
        Ok(state)
    }

    fn log(&self) -> &EventLog {
        &self.inner.log
    }

    /// Re-reads the log's topics; publishes a new catalog (next epoch) if they changed.
    /// Returns the current epoch.
    fn refresh(&self) -> i64 {
        let topics = current_topics(&self.inner.log);
        let mut epoch = 0;
        self.inner.catalog.send_if_modified(|catalog| {
            if catalog.topics == topics {
                epoch = catalog.epoch;
                return false;
            }
            epoch = catalog.epoch + 1;
            *catalog = Arc::new(Catalog { epoch, topics });
            true
        });
        epoch
    }

    /// Refreshes and waits (bounded) until every open watch stream has been handed the result.
    async fn publish(&self) {
        let epoch = self.refresh();
        let deadline = tokio::time::Instant::now() + PUBLISH_WAIT;
        loop {
            let notified = self.inner.delivered_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let done = self
                .inner
                .delivered
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .all(|sent| *sent >= epoch);
            if done {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::debug!(
                    epoch,
                    "fluvio sc: a watch stream is slow to take the new catalog"
                );
                return;
            }
        }
    }

    fn register_watcher(&self) -> WatcherGuard {
        let id = self.inner.next_watcher.fetch_add(1, Ordering::Relaxed);
        self.inner
            .delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, -1);
        WatcherGuard {
            state: self.clone(),
            id,
        }
    }
}

/// Keeps a watch stream's delivery record; removes it when the stream ends.
struct WatcherGuard {
    state: ScState,
    id: u64,
}

impl WatcherGuard {
    fn delivered(&self, epoch: i64) {
        self.state
            .inner
            .delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(self.id, epoch);
        self.state.inner.delivered_changed.notify_waiters();
    }
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.state
            .inner
            .delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
        self.state.inner.delivered_changed.notify_waiters();
    }
}

/// Picks up topic changes made outside the SC (by the application) until shutdown.
pub(super) async fn refresh_loop(state: ScState, mut shutdown: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(REFRESH_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown_requested(&mut shutdown) => return,
            _ = ticks.tick() => { state.refresh(); }
        }
    }
}

/// The log's topics plus the `consumer-offset` system topic.
fn current_topics(log: &EventLog) -> BTreeMap<String, TopicEntry> {
    let mut topics: BTreeMap<String, TopicEntry> = log
        .topics()
        .into_iter()
        .map(|topic| {
            let entry = TopicEntry {
                partitions: topic.partitions,
                retention_secs: u32::try_from(topic.retention.max_age.as_secs())
                    .unwrap_or(u32::MAX),
                max_bytes: topic.retention.max_bytes,
                system: false,
            };
            (topic.name, entry)
        })
        .collect();
    topics
        .entry(CONSUMER_OFFSET_TOPIC.to_owned())
        .or_insert(TopicEntry {
            partitions: 1,
            retention_secs: SYSTEM_TOPIC_RETENTION_SECS,
            max_bytes: None,
            system: true,
        });
    topics
}

/// The one SPU, announced at `addr` (`host:port`).
fn spu_metadata(addr: &str) -> Result<Metadata<SpuSpec>, IoError> {
    let invalid = || {
        IoError::new(
            ErrorKind::InvalidInput,
            format!("SPU advertised address {addr:?} is not host:port"),
        )
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(invalid)?;
    let port: u16 = port.parse().map_err(|_| invalid())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(invalid());
    }
    let spec = SpuSpec {
        id: SPU_ID,
        spu_type: SpuType::Custom,
        public_endpoint: IngressPort {
            port,
            ingress: vec![IngressAddr {
                hostname: Some(host.to_owned()),
                ip: None,
            }],
            encryption: EncryptionEnum::PLAINTEXT,
        },
        ..Default::default()
    };
    Ok(Metadata {
        name: format!("custom-spu-{SPU_ID}"),
        spec,
        status: SpuStatus {
            resolution: SpuStatusResolution::Online,
        },
    })
}

fn topic_metadata(name: &str, entry: &TopicEntry) -> Metadata<TopicSpec> {
    let mut spec = TopicSpec::new_computed(entry.partitions, 1, None);
    spec.set_cleanup_policy(CleanupPolicy::Segment(SegmentBasedPolicy {
        time_in_seconds: entry.retention_secs,
    }));
    if entry.max_bytes.is_some() {
        spec.set_storage(TopicStorageConfig {
            segment_size: None,
            max_partition_size: entry.max_bytes,
        });
    }
    spec.set_system(entry.system);
    let replicas = vec![vec![SPU_ID]; entry.partitions as usize];
    Metadata {
        name: name.to_owned(),
        spec,
        status: TopicStatus::new(TopicResolution::Provisioned, replicas, ""),
    }
}

fn partition_metadata(
    log: &EventLog,
    topic: &str,
    partition: u32,
    entry: &TopicEntry,
) -> Metadata<PartitionSpec> {
    let end = log.end_offset(topic, partition).unwrap_or(0);
    let start = log.start_offset(topic, partition).unwrap_or(0);
    let end = i64::try_from(end).unwrap_or(i64::MAX);
    let mut spec = PartitionSpec::new(SPU_ID, vec![SPU_ID]);
    spec.system = entry.system;
    let leader = ReplicaStatus::new(SPU_ID, end, end);
    Metadata {
        name: format!("{topic}-{partition}"),
        spec,
        status: PartitionStatus {
            resolution: PartitionResolution::Online,
            leader,
            replicas: Vec::new(),
            base_offset: i64::try_from(start).unwrap_or(0),
            ..Default::default()
        },
    }
}

/// Every object of one kind in a catalog, keyed by name, with the entry it came from (to tell
/// which objects changed).
type View<S> = BTreeMap<String, (TopicEntry, Metadata<S>)>;

fn topic_view(_state: &ScState, catalog: &Catalog) -> View<TopicSpec> {
    catalog
        .topics
        .iter()
        .map(|(name, entry)| (name.clone(), (entry.clone(), topic_metadata(name, entry))))
        .collect()
}

fn partition_view(state: &ScState, catalog: &Catalog) -> View<PartitionSpec> {
    let mut view = BTreeMap::new();
    for (name, entry) in &catalog.topics {
        for partition in 0..entry.partitions {
            let metadata = partition_metadata(state.log(), name, partition, entry);
            view.insert(metadata.name.clone(), (entry.clone(), metadata));
        }
    }
    view
}

/// Serves one SC connection until it ends.
pub(super) async fn handle_connection(state: ScState, mut conn: Connection) {
    while let Some(request) = conn.next_request().await {
        match dispatch(&state, &mut conn, &request).await {
            Ok(()) => {}
            Err(Failure::Closed) => return,
            Err(Failure::Bad(error)) => {
                conn.reject(&request, &error);
                return;
            }
        }
    }
}

/// Why a request ends its connection.
enum Failure {
    /// The writer is gone; nothing more can be said to the peer.
    Closed,
    /// The request cannot be decoded or answered.
    Bad(String),
}

impl From<Closed> for Failure {
    fn from(_: Closed) -> Self {
        Failure::Closed
    }
}

impl From<IoError> for Failure {
    fn from(error: IoError) -> Self {
        Failure::Bad(error.to_string())
    }
}

fn bad(error: impl std::fmt::Display) -> Failure {
    Failure::Bad(error.to_string())
}

async fn dispatch(
    state: &ScState,
    conn: &mut Connection,
    request: &Request,
) -> Result<(), Failure> {
    const VERSIONS: u16 = AdminPublicApiKey::ApiVersion as u16;
    const CREATE: u16 = AdminPublicApiKey::Create as u16;
    const DELETE: u16 = AdminPublicApiKey::Delete as u16;
    const LIST: u16 = AdminPublicApiKey::List as u16;
    const WATCH: u16 = AdminPublicApiKey::Watch as u16;
    const UPDATE: u16 = AdminPublicApiKey::Update as u16;
    let out = &conn.out;
    let (id, version) = (request.correlation_id(), request.version());
    match request.header.api_key() {
        VERSIONS => {
            request.decode::<ApiVersionsRequest>()?;
            out.send(id, &api_versions(), version).await?;
        }
        CREATE => {
            let create: ObjectApiCreateRequest = request.decode()?;
            let status = match create.downcast().map_err(bad)? {
                Some(topic) => {
                    let name = topic.common.name.clone();
                    tokio::time::timeout(REQUEST_TIMEOUT, create_topic(state, topic))
                        .await
                        .unwrap_or_else(|_| timed_out(name))
                }
                None => Status::new(
                    String::new(),
                    ErrorCode::InvalidCreateRequest,
                    Some("only topics can be created on this broker".to_owned()),
                ),
            };
            out.send(id, &status, version).await?;
        }
        DELETE => {
            let delete: ObjectApiDeleteRequest = request.decode()?;
            let topic: Option<DeleteRequest<TopicSpec>> = delete.downcast().map_err(bad)?;
            let status = match topic {
                Some(topic) => {
                    let force = topic.is_force();
                    let name = topic.key();
                    tokio::time::timeout(REQUEST_TIMEOUT, delete_topic(state, name.clone(), force))
                        .await
                        .unwrap_or_else(|_| timed_out(name))
                }
                None => Status::new(
                    String::new(),
                    ErrorCode::InvalidDeleteRequest,
                    Some("only topics can be deleted on this broker".to_owned()),
                ),
            };
            out.send(id, &status, version).await?;
        }
        LIST => {
            state.refresh();
            let list: ObjectApiListRequest = request.decode()?;
            let response = list_response(state, &list, version, &object_type(request)?)?;
            out.send(id, &response, version).await?;
        }
        WATCH => {
            state.refresh();
            let watch: ObjectApiWatchRequest = request.decode()?;
            start_watch(state, conn, &watch, id, version, &object_type(request)?)?;
        }
        UPDATE => {
            // Adding partitions and the like: refuse clearly (the reply type is a Status).
            let status = Status::new(
                String::new(),
                ErrorCode::InvalidCreateRequest,
                Some("updating objects is not supported by this broker".to_owned()),
            );
            out.send(id, &status, version).await?;
        }
        other => return Err(Failure::Bad(format!("unsupported SC api key {other}"))),
    }
    Ok(())
}

fn timed_out(name: String) -> Status {
    Status::new(
        name,
        ErrorCode::Other("the request timed out on the broker".to_owned()),
        None,
    )
}

/// The object type an object request names (its body starts with the type label).
fn object_type(request: &Request) -> Result<String, IoError> {
    let mut src = Cursor::new(request.body.as_ref());
    String::decode_from(&mut src, request.version())
}

fn api_versions() -> ApiVersionsResponse {
    let key = |api: AdminPublicApiKey, min_version: i16| ApiVersionKey {
        api_key: api as i16,
        min_version,
        max_version: SC_MAX_VERSION,
    };
    ApiVersionsResponse {
        error_code: ErrorCode::None,
        api_keys: vec![
            ApiVersionKey {
                api_key: AdminPublicApiKey::ApiVersion as i16,
                min_version: 0,
                max_version: fluvio_protocol::link::versions::V10_PLATFORM,
            },
            key(AdminPublicApiKey::Create, 9),
            key(AdminPublicApiKey::Delete, 1),
            key(AdminPublicApiKey::List, 15),
            key(AdminPublicApiKey::Watch, 15),
        ],
        platform_version: platform_version(),
    }
}

/// `PlatformVersion` is only built from a `semver::Version` or decoded; decoding the string
/// (which checks it is semver) spares a direct semver dependency.
pub(super) fn platform_version() -> PlatformVersion {
    let mut encoded = Vec::new();
    let decoded = PLATFORM_VERSION
        .to_owned()
        .encode(&mut encoded, 0)
        .and_then(|()| PlatformVersion::decode_from(&mut Cursor::new(&encoded), 0));
    decoded.unwrap_or_default()
}

fn status_from_log_error(name: String, error: LogError) -> Status {
    let (code, message) = match &error {
        LogError::InvalidName(_) => (ErrorCode::TopicInvalidName, None),
        LogError::AlreadyExists(_) => (ErrorCode::TopicAlreadyExists, None),
        LogError::NotFound(_) => (ErrorCode::TopicNotFound, None),
        LogError::InvalidArgument(_) | LogError::InvalidPartition { .. } => (
            ErrorCode::TopicInvalidConfiguration,
            Some(error.to_string()),
        ),
        _ => (ErrorCode::Other(error.to_string()), None),
    };
    Status::new(name, code, message)
}

async fn create_topic(state: &ScState, request: CreateRequest<TopicSpec>) -> Status {
    let (common, spec) = request.parts();
    let name = common.name;
    let error = |code: ErrorCode, message: String| Status::new(name.clone(), code, Some(message));
    if !fluvio_sc_schema::topic::validate::valid_topic_name(&name)
        || validate_topic_name(&name).is_err()
    {
        return Status::new(name, ErrorCode::TopicInvalidName, None);
    }
    if name == CONSUMER_OFFSET_TOPIC || state.log().topics().iter().any(|topic| topic.name == name)
    {
        return Status::new(name, ErrorCode::TopicAlreadyExists, None);
    }
    if let ReplicaSpec::Mirror(_) = spec.replicas() {
        return error(
            ErrorCode::TopicInvalidReplicaType,
            "mirror topics are not supported by this broker".to_owned(),
        );
    }
    let partitions = spec.replicas().partitions();
    if partitions == 0 || partitions > MAX_PARTITIONS {
        return error(
            ErrorCode::TopicInvalidConfiguration,
            format!("partitions must be 1 to {MAX_PARTITIONS}"),
        );
    }
    if let Some(problem) = spec.validate_config() {
        return error(ErrorCode::TopicInvalidConfiguration, problem);
    }
    if spec.is_system() {
        return error(
            ErrorCode::TopicInvalidConfiguration,
            "system topics cannot be created".to_owned(),
        );
    }
    if common.dry_run {
        return Status::new_ok(name);
    }
    let retention = Retention {
        max_age: Duration::from_secs(u64::from(spec.retention_secs())),
        max_bytes: spec
            .get_storage()
            .and_then(|storage| storage.max_partition_size),
    };
    match state.log().create_topic(&name, partitions, retention).await {
        Ok(()) => {
            state.publish().await;
            tracing::info!(topic = %name, partitions, "fluvio sc: topic created");
            Status::new_ok(name)
        }
        Err(error) => status_from_log_error(name, error),
    }
}

async fn delete_topic(state: &ScState, name: String, force: bool) -> Status {
    if name == CONSUMER_OFFSET_TOPIC {
        return Status::new(
            name.clone(),
            ErrorCode::SystemSpecDeletionAttempt {
                kind: "topic".to_owned(),
                name,
            },
            None,
        );
    }
    // The application's own topics: deleting one breaks the appliance until its next start,
    // so, like Fluvio's system topics, only a forced delete removes them.
    let appliance_topic = super::is_appliance_topic(&name);
    if appliance_topic && state.inner.read_only {
        return Status::new(
            name.clone(),
            ErrorCode::SystemSpecDeletionAttempt {
                kind: "topic".to_owned(),
                name,
            },
            Some(
                "this topic belongs to the appliance and is read-only to Fluvio clients \
                 (taskstream --fluvio-read-only=false allows a forced delete)"
                    .to_owned(),
            ),
        );
    }
    if !force && appliance_topic {
        return Status::new(
            name.clone(),
            ErrorCode::SystemSpecDeletionAttempt {
                kind: "topic".to_owned(),
                name,
            },
            Some("this topic belongs to the appliance; delete it with force".to_owned()),
        );
    }
    match state.log().delete_topic(&name).await {
        Ok(()) => {
            state.publish().await;
            tracing::info!(topic = %name, "fluvio sc: topic deleted");
            Status::new_ok(name)
        }
        Err(error) => status_from_log_error(name, error),
    }
}

fn encode_list<S>(
    items: Vec<Metadata<S>>,
    version: Version,
) -> Result<ObjectApiListResponse, Failure>
where
    S: AdminSpec,
    S::Status: Encoder + Decoder + Debug,
{
    ObjectApiListResponse::try_encode_from(ListResponse::<S>::new(items), version).map_err(bad)
}

fn list_response(
    state: &ScState,
    list: &ObjectApiListRequest,
    version: Version,
    ty: &str,
) -> Result<ObjectApiListResponse, Failure> {
    use fluvio_sc_schema::customspu::CustomSpuSpec;
    use fluvio_sc_schema::mirror::MirrorSpec;
    use fluvio_sc_schema::smartmodule::SmartModuleSpec;
    use fluvio_sc_schema::spg::SpuGroupSpec;
    use fluvio_sc_schema::tableformat::TableFormatSpec;

    let catalog = state.inner.catalog.borrow().clone();
    if let Some(request) =
        TryEncodableFrom::<ListRequest<TopicSpec>>::downcast(list).map_err(bad)?
    {
        let items = catalog
            .topics
            .iter()
            .filter(|(name, entry)| {
                entry.system == request.system && request.name_filters.filter(name.as_str())
            })
            .map(|(name, entry)| topic_metadata(name, entry))
            .collect();
        return encode_list::<TopicSpec>(items, version);
    }
    if let Some(request) =
        TryEncodableFrom::<ListRequest<PartitionSpec>>::downcast(list).map_err(bad)?
    {
        let items = partition_view(state, &catalog)
            .into_iter()
            .filter(|(name, _)| request.name_filters.filter(name.as_str()))
            .map(|(_, (_, metadata))| metadata)
            .collect();
        return encode_list::<PartitionSpec>(items, version);
    }
    if TryEncodableFrom::<ListRequest<SpuSpec>>::downcast(list)
        .map_err(bad)?
        .is_some()
    {
        return encode_list::<SpuSpec>(vec![state.inner.spu.clone()], version);
    }
    macro_rules! empty_list {
        ($($spec:ty),*) => {$(
            if TryEncodableFrom::<ListRequest<$spec>>::downcast(list).map_err(bad)?.is_some() {
                return encode_list::<$spec>(Vec::new(), version);
            }
        )*};
    }
    empty_list!(
        SmartModuleSpec,
        TableFormatSpec,
        SpuGroupSpec,
        CustomSpuSpec,
        MirrorSpec
    );
    Err(Failure::Bad(format!("cannot list objects of type {ty:?}")))
}

/// Sends one watch update and waits until it is flushed to the socket, so a create / delete
/// reply (possibly on another connection) never overtakes the metadata it announces.
async fn send_watch<S>(
    out: &Responder,
    correlation_id: i32,
    version: Version,
    update: MetadataUpdate<S>,
) -> Result<(), Closed>
where
    S: AdminSpec,
    S::Status: Encoder + Decoder + Debug,
{
    match ObjectApiWatchResponse::try_encode_from(WatchResponse::new(update), version) {
        Ok(response) => out.send_flushed(correlation_id, &response, version).await,
        Err(error) => {
            tracing::error!(peer = %out.peer, %error, "cannot encode a fluvio watch update");
            Err(Closed)
        }
    }
}

fn start_watch(
    state: &ScState,
    conn: &mut Connection,
    watch: &ObjectApiWatchRequest,
    correlation_id: i32,
    version: Version,
    ty: &str,
) -> Result<(), Failure> {
    use fluvio_sc_schema::customspu::CustomSpuSpec;
    use fluvio_sc_schema::mirror::MirrorSpec;
    use fluvio_sc_schema::smartmodule::SmartModuleSpec;
    use fluvio_sc_schema::spg::SpuGroupSpec;
    use fluvio_sc_schema::tableformat::TableFormatSpec;

    let out = conn.out.clone();
    // Every watch is an open stream until the connection ends: the client keeps it registered
    // and waits on it, so it keeps the connection from being idle.
    let busy = conn.activity.busy();
    if TryEncodableFrom::<WatchRequest<TopicSpec>>::downcast(watch)
        .map_err(bad)?
        .is_some()
    {
        let task = run_watch(state.clone(), out, correlation_id, version, topic_view);
        conn.tasks.spawn(async move {
            let _busy = busy;
            task.await;
        });
        return Ok(());
    }
    if TryEncodableFrom::<WatchRequest<PartitionSpec>>::downcast(watch)
        .map_err(bad)?
        .is_some()
    {
        let task = run_watch(state.clone(), out, correlation_id, version, partition_view);
        conn.tasks.spawn(async move {
            let _busy = busy;
            task.await;
        });
        return Ok(());
    }
    if TryEncodableFrom::<WatchRequest<SpuSpec>>::downcast(watch)
        .map_err(bad)?
        .is_some()
    {
        // The SPU never changes: one full update, and the stream stays open with nothing more.
        let update = MetadataUpdate::with_all(0, vec![state.inner.spu.clone()]);
        conn.tasks.spawn(async move {
            let _busy = busy;
            if send_watch(&out, correlation_id, version, update)
                .await
                .is_ok()
            {
                out.closed().await;
            }
        });
        return Ok(());
    }
    macro_rules! empty_watch {
        ($($spec:ty),*) => {$(
            if TryEncodableFrom::<WatchRequest<$spec>>::downcast(watch).map_err(bad)?.is_some() {
                let update = MetadataUpdate::<$spec>::with_all(0, Vec::new());
                conn.tasks.spawn(async move {
                    let _busy = busy;
                    if send_watch(&out, correlation_id, version, update).await.is_ok() {
                        out.closed().await;
                    }
                });
                return Ok(());
            }
        )*};
    }
    empty_watch!(
        SmartModuleSpec,
        TableFormatSpec,
        SpuGroupSpec,
        CustomSpuSpec,
        MirrorSpec
    );
    Err(Failure::Bad(format!("cannot watch objects of type {ty:?}")))
}

/// One topic or partition watch stream: a full `all`, then UPDATE / DELETE changes on every
/// new catalog, until the connection ends.
async fn run_watch<S>(
    state: ScState,
    out: Responder,
    correlation_id: i32,
    version: Version,
    view: fn(&ScState, &Catalog) -> View<S>,
) where
    S: AdminSpec + Clone + Send + 'static,
    S::Status: Encoder + Decoder + Debug + Clone,
{
    let guard = state.register_watcher();
    let mut catalogs = state.inner.catalog.subscribe();
    let catalog = catalogs.borrow_and_update().clone();
    let mut shown = view(&state, &catalog);
    let all = shown
        .values()
        .map(|(_, metadata)| metadata.clone())
        .collect();
    if send_watch(
        &out,
        correlation_id,
        version,
        MetadataUpdate::with_all(catalog.epoch, all),
    )
    .await
    .is_err()
    {
        return;
    }
    guard.delivered(catalog.epoch);
    loop {
        tokio::select! {
            changed = catalogs.changed() => if changed.is_err() { return },
            () = out.closed() => return,
        }
        let catalog = catalogs.borrow_and_update().clone();
        let next = view(&state, &catalog);
        let mut changes = Vec::new();
        for (name, (entry, metadata)) in &next {
            if shown
                .get(name)
                .is_none_or(|(shown_entry, _)| shown_entry != entry)
            {
                changes.push(Message::update(metadata.clone()));
            }
        }
        for (name, (_, metadata)) in &shown {
            if !next.contains_key(name) {
                changes.push(Message::delete(metadata.clone()));
            }
        }
        // An update with neither `all` nor `changes` is ignored by the client: skip it.
        if !changes.is_empty()
            && send_watch(
                &out,
                correlation_id,
                version,
                MetadataUpdate::with_changes(catalog.epoch, changes),
            )
            .await
            .is_err()
        {
            return;
        }
        shown = next;
        guard.delivered(catalog.epoch);
    }
}
