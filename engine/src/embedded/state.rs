//! The `StateStore` port (small keyed state with TTL; consumers use it to skip event ids they
//! have already handled) and its embedded adapter on redb.
//!
//! Writes go through one writer thread that commits queued writes together (group commit), so
//! consumers processing many events pay one fsync per group, not one per event; `set_if_absent`
//! is atomic because only that thread writes. Reads run on blocking threads over redb snapshots.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use crate::error::EngineError;

use crate::ports::StateStore;

/// key → (expires_at_ms, 0 = never; value).
const STATE: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("state");
/// Longest key accepted; keys are short ids like `audit-processed:{uuid}`.
const MAX_KEY_BYTES: usize = 1024;
/// Most writes committed together.
const MAX_GROUP: usize = 4096;
/// Reads running at once, each on a blocking thread.
const READ_THREADS: usize = 4;

/// Milliseconds since the Unix epoch; injectable so tests can move time.
type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

fn system_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

fn expiry(now: u64, ttl: Option<Duration>) -> u64 {
    match ttl {
        // At least 1 so that a zero TTL still means "expires", not "never" (0).
        Some(ttl) => now
            .saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
            .max(1),
        None => 0,
    }
}

fn expired(expires_at: u64, now: u64) -> bool {
    expires_at != 0 && expires_at <= now
}

fn store_error(error: impl std::fmt::Display) -> EngineError {
    EngineError::Store(format!("state store: {error}"))
}

fn check_key(key: &str) -> Result<(), EngineError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(EngineError::Store(format!(
            "state key longer than {MAX_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

enum Op {
    Set {
        key: String,
        value: Vec<u8>,
        ttl: Option<Duration>,
    },
    SetIfAbsent {
        key: String,
        value: Vec<u8>,
        ttl: Option<Duration>,
    },
    Delete {
        key: String,
    },
    Purge,
}

enum Outcome {
    Done,
    Stored(bool),
    Count(u64),
}

struct Job {
    op: Op,
    reply: oneshot::Sender<Result<Outcome, EngineError>>,
}

/// [`StateStore`] on a redb file, for the embedded shape.
pub struct RedbStateStore {
    db: Arc<Database>,
    clock: Clock,
    /// `None` only while shutting down.
    jobs: Mutex<Option<Sender<Job>>>,
    writer_thread: Option<JoinHandle<()>>,
    /// Permits for reads on blocking threads.
    reads: tokio::sync::Semaphore,
}

impl std::fmt::Debug for RedbStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStateStore").finish_non_exhaustive()
    }
}

impl RedbStateStore {
    /// Writes a copy of every entry as of one read transaction to a new redb file at `path`
    /// (a consistent snapshot while the store is in use; `taskstream backup`).
    pub fn backup_to(&self, path: &Path) -> Result<u64, EngineError> {
        use crate::embedded::redb_copy::{copy_table, snapshot};
        snapshot(&self.db, path, |from, to| copy_table(from, to, STATE)).map_err(store_error)
    }

    /// Opens or creates the store at `path` (a redb file of its own) with the default cache.
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        Self::open_with_cache(path, crate::CacheSizes::DEFAULT.state_bytes)
    }

    /// Like [`RedbStateStore::open`], caching at most `cache_bytes` of the file's pages.
    pub fn open_with_cache(path: &Path, cache_bytes: u64) -> Result<Self, EngineError> {
        Self::open_with_clock(path, cache_bytes, Arc::new(system_clock))
    }

    fn open_with_clock(path: &Path, cache_bytes: u64, clock: Clock) -> Result<Self, EngineError> {
        let db = Arc::new(
            redb::Builder::new()
                .set_cache_size(crate::CacheSizes::redb_bytes(cache_bytes))
                .create(path)
                .map_err(store_error)?,
        );
        let txn = db.begin_write().map_err(store_error)?;
        txn.open_table(STATE).map_err(store_error)?;
        txn.commit().map_err(store_error)?;
        let (jobs, queue) = mpsc::channel();
        let (thread_db, thread_clock) = (Arc::clone(&db), Arc::clone(&clock));
        let writer_thread = std::thread::Builder::new()
            .name("state-writer".to_owned())
            .spawn(move || run(&thread_db, &thread_clock, &queue))
            .map_err(|error| EngineError::Unavailable(format!("state writer: {error}")))?;
        Ok(Self {
            db,
            clock,
            jobs: Mutex::new(Some(jobs)),
            writer_thread: Some(writer_thread),
            reads: tokio::sync::Semaphore::new(READ_THREADS),
        })
    }

    async fn write(&self, op: Op) -> Result<Outcome, EngineError> {
        let (reply, outcome) = oneshot::channel();
        {
            let jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
            let closed = || EngineError::Unavailable("state store is shut down".to_owned());
            jobs.as_ref()
                .ok_or_else(closed)?
                .send(Job { op, reply })
                .map_err(|_| closed())?;
        }
        outcome
            .await
            .map_err(|_| EngineError::Unavailable("state writer stopped".to_owned()))?
    }
}

impl Drop for RedbStateStore {
    /// Lets the writer finish queued writes and release the file before the store is gone.
    fn drop(&mut self) {
        drop(
            self.jobs
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        if let Some(thread) = self.writer_thread.take()
            && thread.join().is_err()
        {
            tracing::error!("state writer panicked during shutdown");
        }
    }
}

#[async_trait::async_trait]
impl StateStore for RedbStateStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, EngineError> {
        let mut values = self.get_many(&[key.to_owned()]).await?;
        Ok(values.pop().flatten())
    }

    /// One read transaction on one blocking thread for the whole batch; at most
    /// `READ_THREADS` of them at once, so a burst of lookups cannot grow the blocking pool.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, EngineError> {
        for key in keys {
            check_key(key)?;
        }
        let _permit = self
            .reads
            .acquire()
            .await
            .map_err(|_| EngineError::Unavailable("the state store is closed".to_owned()))?;
        let (db, keys, now) = (Arc::clone(&self.db), keys.to_vec(), (self.clock)());
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(store_error)?;
            let table = txn.open_table(STATE).map_err(store_error)?;
            keys.iter()
                .map(|key| {
                    let found = table.get(key.as_str()).map_err(store_error)?;
                    Ok(found.and_then(|entry| {
                        let (expires_at, value) = entry.value();
                        (!expired(expires_at, now)).then(|| value.to_vec())
                    }))
                })
                .collect()
        })
        .await
        .map_err(store_error)?
    }

    async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<(), EngineError> {
        check_key(key)?;
        let key = key.to_owned();
        self.write(Op::Set { key, value, ttl }).await.map(|_| ())
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<bool, EngineError> {
        check_key(key)?;
        let key = key.to_owned();
        match self.write(Op::SetIfAbsent { key, value, ttl }).await? {
            Outcome::Stored(stored) => Ok(stored),
            _ => Err(EngineError::Store(
                "unexpected state writer reply".to_owned(),
            )),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), EngineError> {
        check_key(key)?;
        let key = key.to_owned();
        self.write(Op::Delete { key }).await.map(|_| ())
    }

    async fn purge_expired(&self) -> Result<u64, EngineError> {
        match self.write(Op::Purge).await? {
            Outcome::Count(count) => Ok(count),
            _ => Err(EngineError::Store(
                "unexpected state writer reply".to_owned(),
            )),
        }
    }
}

fn run(db: &Database, clock: &Clock, jobs: &Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let (ops, replies): (Vec<Op>, Vec<_>) =
            group.into_iter().map(|job| (job.op, job.reply)).unzip();
        let now = clock();
        let applied = catch_unwind(AssertUnwindSafe(|| apply_group(db, now, ops)))
            .unwrap_or_else(|_| Err(EngineError::Store("a state write panicked".to_owned())));
        match applied {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    drop(reply.send(Ok(outcome)));
                }
            }
            Err(error) => {
                tracing::error!(%error, "state commit failed");
                let message = error.to_string();
                for reply in replies {
                    drop(reply.send(Err(EngineError::Store(message.clone()))));
                }
            }
        }
    }
}

/// Applies the group in order in one transaction (so of two `set_if_absent` on one key in the
/// same group, only the first stores) and commits with redb's default, durable commit.
fn apply_group(db: &Database, now: u64, ops: Vec<Op>) -> Result<Vec<Outcome>, EngineError> {
    let txn = db.begin_write().map_err(store_error)?;
    let mut outcomes = Vec::with_capacity(ops.len());
    {
        let mut table = txn.open_table(STATE).map_err(store_error)?;
        for op in ops {
            let outcome = match op {
                Op::Set { key, value, ttl } => {
                    table
                        .insert(key.as_str(), (expiry(now, ttl), value.as_slice()))
                        .map_err(store_error)?;
                    Outcome::Done
                }
                Op::SetIfAbsent { key, value, ttl } => {
                    let live = table
                        .get(key.as_str())
                        .map_err(store_error)?
                        .is_some_and(|entry| !expired(entry.value().0, now));
                    if !live {
                        table
                            .insert(key.as_str(), (expiry(now, ttl), value.as_slice()))
                            .map_err(store_error)?;
                    }
                    Outcome::Stored(!live)
                }
                Op::Delete { key } => {
                    table.remove(key.as_str()).map_err(store_error)?;
                    Outcome::Done
                }
                Op::Purge => {
                    let mut removed = 0u64;
                    table
                        .retain(|_, (expires_at, _)| {
                            let keep = !expired(expires_at, now);
                            removed += u64::from(!keep);
                            keep
                        })
                        .map_err(store_error)?;
                    Outcome::Count(removed)
                }
            };
            outcomes.push(outcome);
        }
    }
    txn.commit().map_err(store_error)?;
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A small cache, so the tests also run the store with most pages outside it.
    const MIB: u64 = 1024 * 1024;

    /// A store on a temp file with a clock the test moves by hand.
    fn store_with_clock() -> Result<(tempfile::TempDir, RedbStateStore, Arc<AtomicU64>), EngineError>
    {
        let dir = tempfile::tempdir().map_err(store_error)?;
        let time = Arc::new(AtomicU64::new(1_000_000));
        let clock_time = Arc::clone(&time);
        let clock: Clock = Arc::new(move || clock_time.load(Ordering::SeqCst));
        let store = RedbStateStore::open_with_clock(&dir.path().join("state.redb"), MIB, clock)?;
        Ok((dir, store, time))
    }

    #[tokio::test]
    async fn set_get_delete_and_ttl_expiry() -> TestResult {
        let (_dir, store, time) = store_with_clock()?;
        assert_eq!(store.get("missing").await?, None);
        store.set("forever", b"a".to_vec(), None).await?;
        store
            .set("short", b"b".to_vec(), Some(Duration::from_secs(10)))
            .await?;
        assert_eq!(store.get("short").await?, Some(b"b".to_vec()));
        time.fetch_add(9_999, Ordering::SeqCst);
        assert_eq!(store.get("short").await?, Some(b"b".to_vec()));
        time.fetch_add(1, Ordering::SeqCst);
        assert_eq!(
            store.get("short").await?,
            None,
            "expired entries read as None"
        );
        assert_eq!(store.get("forever").await?, Some(b"a".to_vec()));
        store.set("forever", b"c".to_vec(), None).await?;
        assert_eq!(store.get("forever").await?, Some(b"c".to_vec()));
        store.delete("forever").await?;
        store.delete("never-was").await?;
        assert_eq!(store.get("forever").await?, None);
        Ok(())
    }

    #[tokio::test]
    async fn get_many_answers_in_order_with_missing_and_expired_as_none() -> TestResult {
        let (_dir, store, time) = store_with_clock()?;
        store.set("a", b"1".to_vec(), None).await?;
        store
            .set("b", b"2".to_vec(), Some(Duration::from_secs(1)))
            .await?;
        store.set("c", b"3".to_vec(), None).await?;
        let keys: Vec<String> = ["c", "missing", "a", "b"].map(String::from).to_vec();
        assert_eq!(
            store.get_many(&keys).await?,
            vec![
                Some(b"3".to_vec()),
                None,
                Some(b"1".to_vec()),
                Some(b"2".to_vec())
            ]
        );
        time.fetch_add(1_000, Ordering::SeqCst);
        assert_eq!(store.get_many(&keys).await?[3], None, "expired");
        assert_eq!(store.get_many(&[]).await?, Vec::<Option<Vec<u8>>>::new());
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        assert!(store.get_many(&[long]).await.is_err(), "oversized key");
        Ok(())
    }

    #[tokio::test]
    async fn set_if_absent_respects_live_and_expired_entries() -> TestResult {
        let (_dir, store, time) = store_with_clock()?;
        let ttl = Some(Duration::from_secs(86_400));
        assert!(store.set_if_absent("k", b"1".to_vec(), ttl).await?);
        assert!(!store.set_if_absent("k", b"2".to_vec(), ttl).await?);
        assert_eq!(store.get("k").await?, Some(b"1".to_vec()));
        time.fetch_add(86_400_000, Ordering::SeqCst);
        assert!(store.set_if_absent("k", b"3".to_vec(), ttl).await?);
        assert_eq!(store.get("k").await?, Some(b"3".to_vec()));
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn set_if_absent_race_has_exactly_one_winner() -> TestResult {
        let (_dir, store, _time) = store_with_clock()?;
        let store = Arc::new(store);
        for round in 0..5 {
            let key = format!("audit-processed:{round}");
            let mut callers = tokio::task::JoinSet::new();
            for caller in 0..64u8 {
                let (store, key) = (Arc::clone(&store), key.clone());
                callers.spawn(async move {
                    store
                        .set_if_absent(&key, vec![caller], Some(Duration::from_secs(86_400)))
                        .await
                });
            }
            let mut winners = 0;
            while let Some(result) = callers.join_next().await {
                winners += usize::from(result??);
            }
            assert_eq!(winners, 1, "round {round}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn purge_removes_only_expired_and_survives_reopen() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state.redb");
        let time = Arc::new(AtomicU64::new(5_000));
        let clock_time = Arc::clone(&time);
        let clock: Clock = Arc::new(move || clock_time.load(Ordering::SeqCst));
        {
            let store = RedbStateStore::open_with_clock(&path, MIB, Arc::clone(&clock))?;
            for index in 0..10 {
                let ttl = Duration::from_millis(if index < 4 { 100 } else { 100_000 });
                store
                    .set(&format!("k{index}"), vec![index], Some(ttl))
                    .await?;
            }
            store.set("keep", b"x".to_vec(), None).await?;
            time.fetch_add(1_000, Ordering::SeqCst);
            assert_eq!(store.purge_expired().await?, 4);
            assert_eq!(store.purge_expired().await?, 0);
        }
        let store = RedbStateStore::open_with_clock(&path, MIB, clock)?;
        assert_eq!(store.get("k3").await?, None);
        assert_eq!(store.get("k4").await?, Some(vec![4]));
        assert_eq!(store.get("keep").await?, Some(b"x".to_vec()));
        Ok(())
    }

    #[tokio::test]
    async fn passes_the_state_store_conformance_suite() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = RedbStateStore::open_with_cache(&dir.path().join("state.redb"), MIB)?;
        crate::conformance::state_store_suite(&store).await;
        Ok(())
    }

    #[tokio::test]
    async fn overlong_keys_are_rejected() -> TestResult {
        let (_dir, store, _time) = store_with_clock()?;
        let key = "k".repeat(MAX_KEY_BYTES + 1);
        assert!(store.set(&key, Vec::new(), None).await.is_err());
        Ok(())
    }
}
