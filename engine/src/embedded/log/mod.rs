//! The embedded durable event log: topics with partitions, records stored as Fluvio record
//! batches in a redb file, durable consumer-group offsets, retention, and tailing with wake-up.
//!
//! Layout (all in one redb file, so one commit covers batches and their metadata):
//! - `log_batches`: `(topic, partition, base_offset)` → the batch bytes, exactly the Fluvio wire
//!   encoding with the base offset filled in. Reads are range scans over this key.
//! - `log_partitions`: `(topic, partition)` → `(start_offset, end_offset, bytes)`, updated in the
//!   same write transaction as the batches.
//! - `log_topics`: topic → `(partitions, max_age_ms, max_bytes)`.
//! - `log_consumer_offsets`: `(group, topic, partition)` → next offset the group reads.
//!
//! Every write goes through one writer thread that drains a queue into one write transaction
//! (group commit): concurrent appends share a single fsync. Reads run on blocking threads over
//! redb's MVCC snapshots and never wait for the writer.

mod batch;
mod bench;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{oneshot, watch};

use crate::error::EngineError;

pub use bench::bench_append;
/// The byte buffer type of [`StoredBatch::bytes`] (re-exported so callers need no `bytes` dep).
pub use fluvio_protocol::bytes::Bytes;

/// Topic → (partitions, max_age_ms, max_bytes).
pub(crate) const TOPICS: TableDefinition<&str, (u32, u64, Option<u64>)> =
    TableDefinition::new("log_topics");
/// (topic, partition) → (start_offset, end_offset, stored bytes).
pub(crate) const PARTITIONS: TableDefinition<(&str, u32), (u64, u64, u64)> =
    TableDefinition::new("log_partitions");
/// (topic, partition, base_offset) → Fluvio batch bytes.
pub(crate) const BATCHES: TableDefinition<(&str, u32, u64), &[u8]> =
    TableDefinition::new("log_batches");
/// (group, topic, partition) → next offset to read.
pub(crate) const OFFSETS: TableDefinition<(&str, &str, u32), u64> =
    TableDefinition::new("log_consumer_offsets");

/// Longest topic name Fluvio accepts.
const MAX_TOPIC_NAME: usize = 63;
/// Upper bound on partitions per topic: every partition costs a watch channel and a metadata row.
pub const MAX_PARTITIONS: u32 = 1024;
/// Longest consumer group name.
const MAX_GROUP_NAME: usize = 255;

/// What can go wrong in the log, in terms a caller (REST, Fluvio server, consumers) can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("invalid name {0:?}: use 1 to 63 lowercase letters, digits and '-', not at either end")]
    InvalidName(String),
    #[error("topic {0:?} already exists")]
    AlreadyExists(String),
    #[error("topic {0:?} not found")]
    NotFound(String),
    #[error("topic {topic:?} has no partition {partition} (it has {partitions})")]
    InvalidPartition {
        topic: String,
        partition: u32,
        partitions: u32,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("empty batch: a batch must hold at least one record")]
    Empty,
    #[error("malformed record batch: {0}")]
    Malformed(String),
    #[error("batch at offset {offset} of {topic}/{partition} is compressed; read its raw bytes")]
    Compressed {
        topic: String,
        partition: u32,
        offset: u64,
    },
    #[error("log storage failure: {0}")]
    Storage(String),
    #[error("the log is shut down")]
    Closed,
}

macro_rules! storage_error {
    ($($error:ty),*) => {$(
        impl From<$error> for LogError {
            fn from(error: $error) -> Self {
                LogError::Storage(error.to_string())
            }
        }
    )*};
}
storage_error!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<LogError> for EngineError {
    fn from(error: LogError) -> Self {
        match error {
            LogError::Closed => EngineError::Unavailable(error.to_string()),
            other => EngineError::Store(other.to_string()),
        }
    }
}

/// How long a topic keeps its records; checked by [`EventLog::enforce_retention`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Batches whose newest record is older than this are removed.
    pub max_age: Duration,
    /// Oldest batches are removed while a partition holds more bytes than this.
    pub max_bytes: Option<u64>,
}

/// Topics (with their retention) that exist from first start, and their partition count.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Partitions of each configured topic when it is first created.
    pub partitions: u32,
    /// Configured topics; created when missing, retention updated when it changed.
    pub retention: HashMap<String, Retention>,
    /// Bytes of the redb file's pages cached in memory (see [`crate::CacheSizes`]).
    pub cache_bytes: u64,
}

const DAY: Duration = Duration::from_secs(86_400);

impl Default for LogConfig {
    /// The contract's topics: `task-events` and `reminders` kept 7 days, `task-updates` 1 day.
    fn default() -> Self {
        let keep = |days: u32| Retention {
            max_age: DAY * days,
            max_bytes: None,
        };
        Self {
            partitions: 1,
            retention: HashMap::from([
                ("task-events".to_owned(), keep(7)),
                ("reminders".to_owned(), keep(7)),
                ("task-updates".to_owned(), keep(1)),
            ]),
            cache_bytes: crate::CacheSizes::DEFAULT.log_bytes,
        }
    }
}

/// A record to append; the log assigns its partition and offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub timestamp_ms: i64,
}

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub timestamp_ms: i64,
}

/// One stored batch: the exact Fluvio encoding (base offset set), ready to send to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBatch {
    pub base_offset: u64,
    pub last_offset: u64,
    pub bytes: Bytes,
}

/// A topic as the log knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: u32,
    pub retention: Retention,
}

/// Live state of one partition shared with readers: the end offset as a watch channel (tailing
/// readers wake on append) and the first retained offset.
struct PartitionState {
    end: watch::Sender<u64>,
    start: AtomicU64,
}

/// Live state of one topic shared with readers.
struct TopicState {
    info: TopicInfo,
    partitions: Vec<PartitionState>,
}

impl TopicState {
    fn new(info: TopicInfo, offsets: &[(u64, u64)]) -> Self {
        let partitions = (0..info.partitions as usize)
            .map(|index| {
                let (start, end) = offsets.get(index).copied().unwrap_or((0, 0));
                PartitionState {
                    end: watch::Sender::new(end),
                    start: AtomicU64::new(start),
                }
            })
            .collect();
        Self { info, partitions }
    }
}

/// The topic map readers see; only the writer thread changes it, after each commit.
#[derive(Default)]
pub(crate) struct Shared {
    topics: RwLock<BTreeMap<String, Arc<TopicState>>>,
}

impl Shared {
    fn topic(&self, name: &str) -> Result<Arc<TopicState>, LogError> {
        self.topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| LogError::NotFound(name.to_owned()))
    }

    fn with_partition<T>(
        &self,
        topic: &str,
        partition: u32,
        read: impl FnOnce(&PartitionState) -> T,
    ) -> Result<T, LogError> {
        let state = self.topic(topic)?;
        let found = state
            .partitions
            .get(partition as usize)
            .ok_or(LogError::InvalidPartition {
                topic: topic.to_owned(),
                partition,
                partitions: state.info.partitions,
            })?;
        Ok(read(found))
    }
}

/// Checks a topic name against Fluvio's rule, so every topic here can be served to Fluvio clients.
pub fn validate_topic_name(name: &str) -> Result<(), LogError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_TOPIC_NAME
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(LogError::InvalidName(name.to_owned()))
    }
}

fn validate_group(group: &str) -> Result<(), LogError> {
    if group.is_empty() || group.len() > MAX_GROUP_NAME {
        return Err(LogError::InvalidArgument(format!(
            "consumer group name must be 1 to {MAX_GROUP_NAME} bytes"
        )));
    }
    Ok(())
}

/// Partition of a keyed record: a stable hash (FNV-1a, 64-bit) modulo the partition count. The
/// hash must never change between builds, or a key's records would split across partitions after
/// an upgrade; `std`'s hasher gives no such promise.
pub fn partition_for(key: Option<&[u8]>, partitions: u32) -> u32 {
    let Some(key) = key else { return 0 };
    if partitions <= 1 {
        return 0;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(partitions)) as u32
}

struct Inner {
    db: Arc<Database>,
    shared: Arc<Shared>,
    /// `None` only while shutting down.
    jobs: Mutex<Option<Sender<writer::Job>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    /// Permits for reads on blocking threads: many tailing consumers and Fluvio fetches at
    /// once queue here instead of each taking a thread (and its memory) of the blocking pool.
    reads: tokio::sync::Semaphore,
}

/// Log reads running at once, each on a blocking thread.
const READ_THREADS: usize = 8;

impl Drop for Inner {
    /// Lets the writer finish queued writes and close its transaction, so the file is released
    /// (and can be reopened) once the last handle is gone.
    fn drop(&mut self) {
        drop(
            self.jobs
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let thread = self
            .writer_thread
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("log writer panicked during shutdown");
        }
    }
}

/// The embedded durable event log. Cheap to clone: all clones share one database and writer.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog").finish_non_exhaustive()
    }
}

impl EventLog {
    /// Writes a copy of the whole log (topics, record batches, consumer offsets) as of one
    /// read transaction to a new redb file at `path`: a consistent snapshot, taken while the
    /// log goes on being written (`taskstream backup`). Returns how many entries were copied.
    pub fn backup_to(&self, path: &Path) -> Result<u64, LogError> {
        use crate::embedded::redb_copy::{copy_table, snapshot};
        snapshot(&self.inner.db, path, |from, to| {
            Ok(copy_table(from, to, TOPICS)?
                + copy_table(from, to, PARTITIONS)?
                + copy_table(from, to, BATCHES)?
                + copy_table(from, to, OFFSETS)?)
        })
        .map_err(|error| LogError::Storage(format!("backup: {error}")))
    }

    /// Opens or creates the log at `path` (a redb file); creates the configured topics on first
    /// start (and any configured topic that is missing later), and applies configured retention.
    pub fn open(path: &Path, config: LogConfig) -> Result<Self, LogError> {
        if config.partitions == 0 || config.partitions > MAX_PARTITIONS {
            return Err(LogError::InvalidArgument(format!(
                "partitions must be 1 to {MAX_PARTITIONS}"
            )));
        }
        for name in config.retention.keys() {
            validate_topic_name(name)?;
        }
        let db = Arc::new(
            redb::Builder::new()
                .set_cache_size(crate::CacheSizes::redb_bytes(config.cache_bytes))
                .create(path)?,
        );
        let meta = writer::Meta::open(&db, &config)?;
        let shared = Arc::new(Shared::default());
        meta.publish_all(&shared);
        let (jobs, queue) = mpsc::channel();
        let thread_db = Arc::clone(&db);
        let thread_shared = Arc::clone(&shared);
        let writer_thread = std::thread::Builder::new()
            .name("log-writer".to_owned())
            .spawn(move || writer::run(thread_db, meta, thread_shared, queue))
            .map_err(|error| LogError::Storage(format!("cannot start log writer: {error}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                shared,
                jobs: Mutex::new(Some(jobs)),
                writer_thread: Mutex::new(Some(writer_thread)),
                reads: tokio::sync::Semaphore::new(READ_THREADS),
            }),
        })
    }

    /// Queues a write for the writer thread and waits until it is committed (or rejected).
    async fn write(&self, kind: writer::JobKind) -> Result<writer::Outcome, LogError> {
        let (reply, outcome) = oneshot::channel();
        {
            let jobs = self
                .inner
                .jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let sender = jobs.as_ref().ok_or(LogError::Closed)?;
            sender
                .send(writer::Job { kind, reply })
                .map_err(|_| LogError::Closed)?;
        }
        outcome.await.map_err(|_| LogError::Closed)?
    }

    /// Runs a read on a blocking thread: redb calls block and must stay off the async executor.
    async fn read_blocking<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Database) -> Result<T, LogError> + Send + 'static,
    ) -> Result<T, LogError> {
        let _permit = self
            .inner
            .reads
            .acquire()
            .await
            .map_err(|_| LogError::Closed)?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || read(&inner.db))
            .await
            .map_err(|error| LogError::Storage(format!("log read failed: {error}")))?
    }

    /// Appends records to a topic; partition = hash(key) % partitions (no key → partition 0).
    /// Durable (fsynced) when it returns. Concurrent appends share one redb write transaction
    /// (group commit). All records of one call with the same partition go into one batch; returns
    /// the (partition, offset) of each record in input order.
    pub async fn append(
        &self,
        topic: &str,
        records: Vec<NewRecord>,
    ) -> Result<Vec<(u32, u64)>, LogError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let partitions = self.inner.shared.topic(topic)?.info.partitions;
        // Group by partition, remembering each record's place in its batch.
        let mut groups: BTreeMap<u32, Vec<&NewRecord>> = BTreeMap::new();
        let mut placement = Vec::with_capacity(records.len());
        for record in &records {
            let partition = partition_for(record.key.as_deref(), partitions);
            let group = groups.entry(partition).or_default();
            placement.push((partition, group.len() as u64));
            group.push(record);
        }
        // Encoding happens here, on the callers' threads, so the writer only copies bytes.
        let mut batches = Vec::with_capacity(groups.len());
        for (partition, group) in &groups {
            let (bytes, count) = batch::encode(group)?;
            batches.push(writer::PendingBatch {
                partition: *partition,
                bytes,
                records: count,
            });
        }
        let order: Vec<u32> = groups.keys().copied().collect();
        let bases = match self
            .write(writer::JobKind::Append {
                topic: topic.to_owned(),
                batches,
            })
            .await?
        {
            writer::Outcome::Offsets(bases) => bases,
            _ => return Err(LogError::Storage("unexpected writer reply".to_owned())),
        };
        let base_of: HashMap<u32, u64> = order.into_iter().zip(bases).collect();
        placement
            .into_iter()
            .map(|(partition, index)| {
                base_of
                    .get(&partition)
                    .map(|base| (partition, base + index))
                    .ok_or_else(|| LogError::Storage("writer lost a batch".to_owned()))
            })
            .collect()
    }

    /// Appends one already-encoded Fluvio batch as sent by a producer (base offset 0 on the
    /// wire): the log assigns the base offset by rewriting bytes 0..8 and stores the bytes
    /// otherwise untouched (compressed batches stay compressed). Returns the base offset.
    /// Rejects empty or malformed batches.
    pub async fn append_raw_batch(
        &self,
        topic: &str,
        partition: u32,
        batch: Vec<u8>,
    ) -> Result<u64, LogError> {
        let partitions = self.inner.shared.topic(topic)?.info.partitions;
        if partition >= partitions {
            return Err(LogError::InvalidPartition {
                topic: topic.to_owned(),
                partition,
                partitions,
            });
        }
        let records = batch::check_raw(&batch)?;
        let outcome = self
            .write(writer::JobKind::Append {
                topic: topic.to_owned(),
                batches: vec![writer::PendingBatch {
                    partition,
                    bytes: batch,
                    records,
                }],
            })
            .await?;
        match outcome {
            writer::Outcome::Offsets(bases) => bases
                .first()
                .copied()
                .ok_or_else(|| LogError::Storage("writer lost a batch".to_owned())),
            _ => Err(LogError::Storage("unexpected writer reply".to_owned())),
        }
    }

    /// Whole batches whose last offset >= `from`, in order, until `max_bytes` is reached (at
    /// least one batch if any), so a fetch can send stored bytes as they are.
    pub async fn read_batches(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max_bytes: usize,
    ) -> Result<Vec<StoredBatch>, LogError> {
        self.inner.shared.with_partition(topic, partition, |_| ())?;
        let topic = topic.to_owned();
        self.read_blocking(move |db| {
            let mut out = Vec::new();
            let mut total = 0usize;
            scan_batches(db, &topic, partition, from, |base, bytes| {
                if !out.is_empty() && total + bytes.len() > max_bytes {
                    return Ok(false);
                }
                let info = batch::info(bytes)?;
                total += bytes.len();
                out.push(StoredBatch {
                    base_offset: base,
                    last_offset: info.last_offset(),
                    bytes: Bytes::copy_from_slice(bytes),
                });
                Ok(total < max_bytes)
            })?;
            Ok(out)
        })
        .await
    }

    /// Decoded records with offset >= `from`, at most `max_records`. Compressed batches are not
    /// decoded here: records before one are returned; a read starting at one fails with
    /// [`LogError::Compressed`] (use [`EventLog::read_batches`] for those).
    pub async fn read(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max_records: usize,
    ) -> Result<Vec<LogRecord>, LogError> {
        self.inner.shared.with_partition(topic, partition, |_| ())?;
        let topic = topic.to_owned();
        self.read_blocking(move |db| {
            let mut out: Vec<LogRecord> = Vec::new();
            if max_records == 0 {
                return Ok(out);
            }
            scan_batches(db, &topic, partition, from, |base, bytes| {
                let info = batch::info(bytes)?;
                if info.compressed {
                    if out.is_empty() {
                        return Err(LogError::Compressed {
                            topic: topic.clone(),
                            partition,
                            offset: base,
                        });
                    }
                    return Ok(false);
                }
                for record in batch::decode(bytes)? {
                    if record.offset < from {
                        continue;
                    }
                    out.push(LogRecord {
                        topic: topic.clone(),
                        partition,
                        offset: record.offset,
                        key: record.key,
                        value: record.value,
                        timestamp_ms: record.timestamp_ms,
                    });
                    if out.len() >= max_records {
                        return Ok(false);
                    }
                }
                Ok(true)
            })?;
            Ok(out)
        })
        .await
    }

    /// Next offset to be written (the high watermark): everything below it is durable.
    pub fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        self.inner
            .shared
            .with_partition(topic, partition, |state| *state.end.borrow())
    }

    /// First retained offset (retention moves it forward; equals the end when all expired).
    pub fn start_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        self.inner.shared.with_partition(topic, partition, |state| {
            state.start.load(Ordering::Acquire)
        })
    }

    /// Resolves when end_offset > `offset`: tailing consumers sleep on the partition's watch
    /// channel and wake on the commit that passes `offset`. Fails with `NotFound` if the topic
    /// is deleted while waiting.
    pub async fn wait_beyond(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<(), LogError> {
        let mut end = self
            .inner
            .shared
            .with_partition(topic, partition, |state| state.end.subscribe())?;
        end.wait_for(|end| *end > offset)
            .await
            .map(|_| ())
            .map_err(|_| LogError::NotFound(topic.to_owned()))
    }

    /// Durably records the next offset `group` will read from a partition.
    pub async fn commit_offset(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
        next_offset: u64,
    ) -> Result<(), LogError> {
        validate_group(group)?;
        self.inner.shared.with_partition(topic, partition, |_| ())?;
        self.write(writer::JobKind::CommitOffset {
            group: group.to_owned(),
            topic: topic.to_owned(),
            partition,
            next_offset,
        })
        .await
        .map(|_| ())
    }

    /// The next offset `group` will read, if it ever committed one.
    pub async fn committed_offset(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<u64>, LogError> {
        let (group, topic) = (group.to_owned(), topic.to_owned());
        self.read_blocking(move |db| {
            let txn = db.begin_read()?;
            let table = match txn.open_table(OFFSETS) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(error) => return Err(error.into()),
            };
            Ok(table
                .get((group.as_str(), topic.as_str(), partition))?
                .map(|offset| offset.value()))
        })
        .await
    }

    /// Every committed offset as (group, topic, partition, next offset), e.g. to list consumers.
    pub async fn committed_offsets(&self) -> Result<Vec<(String, String, u32, u64)>, LogError> {
        self.read_blocking(|db| {
            let txn = db.begin_read()?;
            let table = match txn.open_table(OFFSETS) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(error) => return Err(error.into()),
            };
            let mut out = Vec::new();
            for entry in table.iter()? {
                let (key, offset) = entry?;
                let (group, topic, partition) = key.value();
                out.push((
                    group.to_owned(),
                    topic.to_owned(),
                    partition,
                    offset.value(),
                ));
            }
            Ok(out)
        })
        .await
    }

    /// Forgets a group's offset (the group restarts from wherever its reader decides).
    pub async fn delete_committed_offset(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<(), LogError> {
        self.write(writer::JobKind::DeleteOffset {
            group: group.to_owned(),
            topic: topic.to_owned(),
            partition,
        })
        .await
        .map(|_| ())
    }

    /// All topics, by name.
    pub fn topics(&self) -> Vec<TopicInfo> {
        self.inner
            .shared
            .topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|topic| topic.info.clone())
            .collect()
    }

    /// Creates a topic; fails with `AlreadyExists`, `InvalidName` or `InvalidArgument`.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        retention: Retention,
    ) -> Result<(), LogError> {
        validate_topic_name(name)?;
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(LogError::InvalidArgument(format!(
                "partitions must be 1 to {MAX_PARTITIONS}"
            )));
        }
        self.write(writer::JobKind::CreateTopic(TopicInfo {
            name: name.to_owned(),
            partitions,
            retention,
        }))
        .await
        .map(|_| ())
    }

    /// Deletes a topic with its records and its consumer offsets; `NotFound` if absent.
    /// Readers waiting on it in [`EventLog::wait_beyond`] get `NotFound`.
    pub async fn delete_topic(&self, name: &str) -> Result<(), LogError> {
        self.write(writer::JobKind::DeleteTopic(name.to_owned()))
            .await
            .map(|_| ())
    }

    /// Deletes whole batches older than the topic's max_age (by the newest timestamp in the
    /// batch) or beyond max_bytes (oldest first); returns how many records were removed. Only a
    /// prefix of each partition is removed, so offsets stay contiguous: the start offset moves,
    /// the end offset does not.
    pub async fn enforce_retention(&self, now_ms: i64) -> Result<u64, LogError> {
        match self.write(writer::JobKind::Retention { now_ms }).await? {
            writer::Outcome::Count(removed) => Ok(removed),
            _ => Err(LogError::Storage("unexpected writer reply".to_owned())),
        }
    }
}

/// Visits the batches of a partition whose last offset >= `from`, in offset order, until `visit`
/// returns `false`. The batch holding `from` is found as the last batch with base <= `from`.
fn scan_batches(
    db: &Database,
    topic: &str,
    partition: u32,
    from: u64,
    mut visit: impl FnMut(u64, &[u8]) -> Result<bool, LogError>,
) -> Result<(), LogError> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(BATCHES) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(error) => return Err(error.into()),
    };
    let mut start = from;
    if let Some(entry) = table
        .range((topic, partition, 0u64)..=(topic, partition, from))?
        .next_back()
    {
        let (key, value) = entry?;
        let base = key.value().2;
        if batch::info(value.value())?.last_offset() >= from {
            start = base;
        }
    }
    for entry in table.range((topic, partition, start)..=(topic, partition, u64::MAX))? {
        let (key, value) = entry?;
        if !visit(key.value().2, value.value())? {
            break;
        }
    }
    Ok(())
}

impl crate::ports::Probe for EventLog {
    fn check(&self) -> crate::ports::ProbeFuture<'_> {
        Box::pin(async move {
            self.end_offset("task-events", 0)
                .map(|_| ())
                .map_err(|error| error.to_string())
        })
    }
}
