//! The log's single writer thread. It drains the job queue into one redb write transaction and
//! commits once (group commit): one fsync makes every queued append, offset commit and topic
//! change durable together. Only after the commit does it publish new end offsets, so a reader
//! never sees an offset that could still be lost.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use redb::{Database, ReadableTable, Table, WriteTransaction};
use tokio::sync::oneshot;

use super::{
    BATCHES, LogConfig, LogError, OFFSETS, PARTITIONS, Retention, Shared, TOPICS, TopicInfo,
    TopicState, batch,
};

/// Most jobs committed together.
const MAX_GROUP_JOBS: usize = 4096;
/// Most batch bytes committed together, so one transaction stays bounded in memory.
const MAX_GROUP_BYTES: usize = 64 << 20;

/// A batch encoded (or checked) by the caller, waiting for its base offset.
pub(crate) struct PendingBatch {
    pub partition: u32,
    pub bytes: Vec<u8>,
    pub records: u64,
}

/// What a job asks the writer to do.
pub(crate) enum JobKind {
    Append {
        topic: String,
        batches: Vec<PendingBatch>,
    },
    CommitOffset {
        group: String,
        topic: String,
        partition: u32,
        next_offset: u64,
    },
    DeleteOffset {
        group: String,
        topic: String,
        partition: u32,
    },
    CreateTopic(TopicInfo),
    DeleteTopic(String),
    Retention {
        now_ms: i64,
    },
}

impl JobKind {
    fn bytes(&self) -> usize {
        match self {
            JobKind::Append { batches, .. } => batches.iter().map(|batch| batch.bytes.len()).sum(),
            _ => 0,
        }
    }
}

/// What a committed job produced.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Base offset of each appended batch, in the job's order.
    Offsets(Vec<u64>),
    Done,
    /// Records removed by retention.
    Count(u64),
}

/// One queued write and where its outcome goes.
pub(crate) struct Job {
    pub kind: JobKind,
    pub reply: oneshot::Sender<Result<Outcome, LogError>>,
}

/// Offsets and size of one partition, as stored in `log_partitions`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PartMeta {
    pub start: u64,
    pub end: u64,
    pub bytes: u64,
}

/// The writer's committed view of topics and partitions. Each group works on a clone and
/// replaces the original only when its commit succeeded, so a failed commit leaves no trace.
#[derive(Debug, Clone, Default)]
pub(crate) struct Meta {
    topics: BTreeMap<String, TopicInfo>,
    parts: BTreeMap<(String, u32), PartMeta>,
}

fn age_ms(retention: &Retention) -> u64 {
    u64::try_from(retention.max_age.as_millis()).unwrap_or(u64::MAX)
}

fn topic_row(info: &TopicInfo) -> (u32, u64, Option<u64>) {
    (
        info.partitions,
        age_ms(&info.retention),
        info.retention.max_bytes,
    )
}

/// The tables one write transaction works on.
struct Tables<'txn> {
    topics: Table<'txn, &'static str, (u32, u64, Option<u64>)>,
    parts: Table<'txn, (&'static str, u32), (u64, u64, u64)>,
    batches: Table<'txn, (&'static str, u32, u64), &'static [u8]>,
    offsets: Table<'txn, (&'static str, &'static str, u32), u64>,
}

impl<'txn> Tables<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<Self, LogError> {
        Ok(Self {
            topics: txn.open_table(TOPICS)?,
            parts: txn.open_table(PARTITIONS)?,
            batches: txn.open_table(BATCHES)?,
            offsets: txn.open_table(OFFSETS)?,
        })
    }
}

impl Meta {
    /// Loads the stored topics and creates or updates the configured ones, in one commit.
    pub fn open(db: &Database, config: &LogConfig) -> Result<Self, LogError> {
        let txn = db.begin_write()?;
        let mut meta = Meta::default();
        {
            let mut tables = Tables::open(&txn)?;
            for entry in tables.topics.iter()? {
                let (name, row) = entry?;
                let (partitions, max_age_ms, max_bytes) = row.value();
                let name = name.value().to_owned();
                let info = TopicInfo {
                    name: name.clone(),
                    partitions,
                    retention: Retention {
                        max_age: Duration::from_millis(max_age_ms),
                        max_bytes,
                    },
                };
                meta.topics.insert(name, info);
            }
            for entry in tables.parts.iter()? {
                let (key, row) = entry?;
                let (topic, partition) = key.value();
                let (start, end, bytes) = row.value();
                meta.parts.insert(
                    (topic.to_owned(), partition),
                    PartMeta { start, end, bytes },
                );
            }
            for (name, retention) in &config.retention {
                let info = match meta.topics.get(name) {
                    Some(existing) if existing.retention == *retention => continue,
                    Some(existing) => TopicInfo {
                        retention: retention.clone(),
                        ..existing.clone()
                    },
                    None => TopicInfo {
                        name: name.clone(),
                        partitions: config.partitions,
                        retention: retention.clone(),
                    },
                };
                tables.topics.insert(name.as_str(), topic_row(&info))?;
                meta.topics.insert(name.clone(), info);
            }
            // Every topic has a row per partition (a topic created above gets its rows here).
            for info in meta.topics.values() {
                for partition in 0..info.partitions {
                    let key = (info.name.clone(), partition);
                    if let std::collections::btree_map::Entry::Vacant(missing) =
                        meta.parts.entry(key)
                    {
                        tables
                            .parts
                            .insert((info.name.as_str(), partition), (0, 0, 0))?;
                        missing.insert(PartMeta::default());
                    }
                }
            }
        }
        txn.commit()?;
        Ok(meta)
    }

    fn part_offsets(&self, info: &TopicInfo) -> Vec<(u64, u64)> {
        (0..info.partitions)
            .map(|partition| {
                let part = self
                    .parts
                    .get(&(info.name.clone(), partition))
                    .copied()
                    .unwrap_or_default();
                (part.start, part.end)
            })
            .collect()
    }

    /// Builds the readers' view of every topic (at open).
    pub fn publish_all(&self, shared: &Shared) {
        let mut topics = shared
            .topics
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        topics.clear();
        for info in self.topics.values() {
            let state = TopicState::new(info.clone(), &self.part_offsets(info));
            topics.insert(info.name.clone(), Arc::new(state));
        }
    }

    /// Publishes one committed group: replaces created/deleted topics, then moves the start and
    /// end offsets of the touched partitions (waking tailing readers).
    fn publish(&self, shared: &Shared, changes: &Changes) {
        if !changes.topics.is_empty() {
            let mut topics = shared
                .topics
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            for name in &changes.topics {
                match self.topics.get(name) {
                    Some(info) => {
                        let state = TopicState::new(info.clone(), &self.part_offsets(info));
                        topics.insert(name.clone(), Arc::new(state));
                    }
                    None => {
                        topics.remove(name);
                    }
                }
            }
        }
        let topics = shared.topics.read().unwrap_or_else(PoisonError::into_inner);
        for key in &changes.touched {
            let (Some(state), Some(part)) = (topics.get(&key.0), self.parts.get(key)) else {
                continue;
            };
            let Some(live) = state.partitions.get(key.1 as usize) else {
                continue;
            };
            live.start.store(part.start, Ordering::Release);
            live.end.send_if_modified(|end| {
                let moved = *end != part.end;
                *end = part.end;
                moved
            });
        }
    }
}

/// What one group changed, to publish after its commit.
#[derive(Default)]
struct Changes {
    touched: BTreeSet<(String, u32)>,
    topics: BTreeSet<String>,
}

pub(crate) fn run(db: Arc<Database>, mut meta: Meta, shared: Arc<Shared>, jobs: Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut bytes = first.kind.bytes();
        let mut group = vec![first];
        while group.len() < MAX_GROUP_JOBS && bytes < MAX_GROUP_BYTES {
            match jobs.try_recv() {
                Ok(job) => {
                    bytes += job.kind.bytes();
                    group.push(job);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        commit_group(&db, &mut meta, &shared, group);
    }
    tracing::debug!("log writer stopped");
}

fn commit_group(db: &Database, meta: &mut Meta, shared: &Shared, group: Vec<Job>) {
    let (kinds, replies): (Vec<JobKind>, Vec<_>) =
        group.into_iter().map(|job| (job.kind, job.reply)).unzip();
    let mut pending = meta.clone();
    let mut changes = Changes::default();
    // A panic (a bug) fails this group only: the transaction is dropped uncommitted and the
    // writer lives on, or every later append would fail.
    let applied = catch_unwind(AssertUnwindSafe(|| {
        apply_group(db, &mut pending, &mut changes, kinds)
    }))
    .unwrap_or_else(|_| {
        tracing::error!("a log write panicked; its group was rolled back");
        Err(LogError::Storage(
            "the write failed unexpectedly".to_owned(),
        ))
    });
    match applied {
        Ok(results) => {
            *meta = pending;
            meta.publish(shared, &changes);
            for (reply, result) in replies.into_iter().zip(results) {
                // A closed receiver means the caller went away; the write stands regardless.
                drop(reply.send(result));
            }
        }
        Err(error) => {
            tracing::error!(%error, "log commit failed");
            for reply in replies {
                drop(reply.send(Err(error.clone())));
            }
        }
    }
}

/// Applies every job in one transaction and commits. A job rejected by validation changes
/// nothing and gets its error; a storage error aborts the whole group.
fn apply_group(
    db: &Database,
    pending: &mut Meta,
    changes: &mut Changes,
    kinds: Vec<JobKind>,
) -> Result<Vec<Result<Outcome, LogError>>, LogError> {
    let txn = db.begin_write()?;
    let mut results = Vec::with_capacity(kinds.len());
    {
        let mut tables = Tables::open(&txn)?;
        for kind in kinds {
            let result = apply(&mut tables, pending, changes, kind);
            if let Err(error @ LogError::Storage(_)) = &result {
                return Err(error.clone());
            }
            results.push(result);
        }
        for key in &changes.touched {
            if let Some(part) = pending.parts.get(key) {
                tables
                    .parts
                    .insert((key.0.as_str(), key.1), (part.start, part.end, part.bytes))?;
            }
        }
    }
    txn.commit()?;
    Ok(results)
}

fn apply(
    tables: &mut Tables<'_>,
    pending: &mut Meta,
    changes: &mut Changes,
    kind: JobKind,
) -> Result<Outcome, LogError> {
    match kind {
        JobKind::Append { topic, batches } => append(tables, pending, changes, &topic, batches),
        JobKind::CommitOffset {
            group,
            topic,
            partition,
            next_offset,
        } => {
            check_partition(pending, &topic, partition)?;
            tables
                .offsets
                .insert((group.as_str(), topic.as_str(), partition), next_offset)?;
            Ok(Outcome::Done)
        }
        JobKind::DeleteOffset {
            group,
            topic,
            partition,
        } => {
            tables
                .offsets
                .remove((group.as_str(), topic.as_str(), partition))?;
            Ok(Outcome::Done)
        }
        JobKind::CreateTopic(info) => {
            if pending.topics.contains_key(&info.name) {
                return Err(LogError::AlreadyExists(info.name));
            }
            tables.topics.insert(info.name.as_str(), topic_row(&info))?;
            for partition in 0..info.partitions {
                let key = (info.name.clone(), partition);
                pending.parts.insert(key.clone(), PartMeta::default());
                changes.touched.insert(key);
            }
            changes.topics.insert(info.name.clone());
            pending.topics.insert(info.name.clone(), info);
            Ok(Outcome::Done)
        }
        JobKind::DeleteTopic(name) => {
            let info = pending
                .topics
                .remove(&name)
                .ok_or_else(|| LogError::NotFound(name.clone()))?;
            tables.topics.remove(name.as_str())?;
            for partition in 0..info.partitions {
                tables.parts.remove((name.as_str(), partition))?;
                tables.batches.retain_in(
                    (name.as_str(), partition, 0u64)..=(name.as_str(), partition, u64::MAX),
                    |_, _| false,
                )?;
                pending.parts.remove(&(name.clone(), partition));
                changes.touched.remove(&(name.clone(), partition));
            }
            tables.offsets.retain(|(_, topic, _), _| topic != name)?;
            changes.topics.insert(name);
            Ok(Outcome::Done)
        }
        JobKind::Retention { now_ms } => {
            let topics: Vec<TopicInfo> = pending.topics.values().cloned().collect();
            let mut removed = 0;
            for info in topics {
                for partition in 0..info.partitions {
                    removed +=
                        retain_partition(tables, pending, changes, &info, partition, now_ms)?;
                }
            }
            Ok(Outcome::Count(removed))
        }
    }
}

fn check_partition(meta: &Meta, topic: &str, partition: u32) -> Result<u32, LogError> {
    let info = meta
        .topics
        .get(topic)
        .ok_or_else(|| LogError::NotFound(topic.to_owned()))?;
    if partition >= info.partitions {
        return Err(LogError::InvalidPartition {
            topic: topic.to_owned(),
            partition,
            partitions: info.partitions,
        });
    }
    Ok(info.partitions)
}

fn append(
    tables: &mut Tables<'_>,
    pending: &mut Meta,
    changes: &mut Changes,
    topic: &str,
    batches: Vec<PendingBatch>,
) -> Result<Outcome, LogError> {
    // Validate everything first: a rejected job must leave the transaction untouched.
    for batch in &batches {
        check_partition(pending, topic, batch.partition)?;
    }
    let mut bases = Vec::with_capacity(batches.len());
    for mut pending_batch in batches {
        let key = (topic.to_owned(), pending_batch.partition);
        let part = pending.parts.entry(key.clone()).or_default();
        let base = part.end;
        batch::set_base_offset(&mut pending_batch.bytes, base)?;
        tables.batches.insert(
            (topic, pending_batch.partition, base),
            pending_batch.bytes.as_slice(),
        )?;
        part.end += pending_batch.records;
        part.bytes += pending_batch.bytes.len() as u64;
        changes.touched.insert(key);
        bases.push(base);
    }
    Ok(Outcome::Offsets(bases))
}

/// Removes the expired prefix of one partition. A batch goes when the partition is over its byte
/// limit, or when its newest timestamp is older than the age limit. A batch without timestamps
/// (a producer may send none) goes only together with a later expired batch: it is older than it.
fn retain_partition(
    tables: &mut Tables<'_>,
    pending: &mut Meta,
    changes: &mut Changes,
    info: &TopicInfo,
    partition: u32,
    now_ms: i64,
) -> Result<u64, LogError> {
    let key = (info.name.clone(), partition);
    let Some(part) = pending.parts.get(&key).copied() else {
        return Ok(0);
    };
    let age = i64::try_from(age_ms(&info.retention)).unwrap_or(i64::MAX);
    let cutoff = now_ms.saturating_sub(age);
    let excess = info
        .retention
        .max_bytes
        .map_or(0, |max| part.bytes.saturating_sub(max));
    let topic = info.name.as_str();
    let mut doomed: Vec<u64> = Vec::new();
    let mut run: Vec<u64> = Vec::new();
    let (mut removed_records, mut removed_bytes, mut run_records, mut run_bytes) = (0, 0, 0, 0);
    let mut new_start = part.start;
    for entry in tables
        .batches
        .range((topic, partition, part.start)..=(topic, partition, u64::MAX))?
    {
        let (_, value) = entry?;
        let bytes = value.value();
        let batch = batch::info(bytes)?;
        let size = bytes.len() as u64;
        let over_size = removed_bytes < excess;
        let expired = batch.max_timestamp >= 0 && batch.max_timestamp < cutoff;
        if over_size || expired {
            doomed.append(&mut run);
            removed_records += run_records + batch.records;
            removed_bytes += run_bytes + size;
            (run_records, run_bytes) = (0, 0);
            doomed.push(batch.base_offset);
            new_start = batch.last_offset() + 1;
        } else if batch.max_timestamp < 0 {
            run.push(batch.base_offset);
            run_records += batch.records;
            run_bytes += size;
        } else {
            break;
        }
    }
    if doomed.is_empty() {
        return Ok(0);
    }
    for base in doomed {
        tables.batches.remove((topic, partition, base))?;
    }
    if let Some(part) = pending.parts.get_mut(&key) {
        part.start = new_start;
        part.bytes = part.bytes.saturating_sub(removed_bytes);
    }
    changes.touched.insert(key);
    Ok(removed_records)
}
