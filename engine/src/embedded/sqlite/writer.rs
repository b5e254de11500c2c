//! The single writer thread: batches concurrent writes into one transaction (group commit), so
//! one fsync makes many requests durable.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::{Notify, oneshot, watch};

use super::rows::sql_error;
use crate::error::EngineError;

/// Largest number of writes committed together.
const MAX_BATCH: usize = 256;
/// How often the writer looks for commits by another process on the same file (`taskstream mcp`
/// over stdio next to `serve`): often enough that their events and reminders are taken up within
/// about a second, rarely enough to cost nothing (one `PRAGMA data_version`).
const FOREIGN_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Sends a job's outcome once the batch's commit is known.
type Finish = Box<dyn FnOnce(&Result<(), EngineError>) + Send>;

/// One write: runs inside the batch transaction and hands back how to answer its caller.
pub(crate) struct WriteJob(Box<dyn FnOnce(&mut Transaction<'_>) -> Finish + Send>);

impl WriteJob {
    /// Wraps `work`, which runs in its own savepoint: a failing (or panicking) job is rolled
    /// back alone and the rest of the batch commits.
    pub(crate) fn new<T: Send + 'static>(
        work: impl FnOnce(&Connection) -> Result<T, EngineError> + Send + 'static,
        reply: oneshot::Sender<Result<T, EngineError>>,
    ) -> Self {
        WriteJob(Box::new(move |tx| {
            let result = guarded(|| in_savepoint(tx, work));
            Box::new(move |commit| {
                let outcome = match (result, commit) {
                    (Ok(_), Err(error)) => Err(same_failure(error)),
                    (result, _) => result,
                };
                // A closed receiver means the caller went away; the write stands regardless.
                drop(reply.send(outcome));
            })
        }))
    }
}

/// Runs until every sender is gone. `committed` is notified after each successful commit, so
/// the outbox relay wakes without polling. About every [`FOREIGN_CHECK_EVERY`] the writer also
/// asks SQLite whether another connection (another process: this one has no other writer)
/// committed; if so it notifies `committed` too, since that commit may have left outbox rows,
/// and bumps `foreign` so in-memory views of the store (the reminder queue) reload.
pub(crate) fn run(
    mut conn: Connection,
    jobs: Receiver<WriteJob>,
    committed: Arc<Notify>,
    foreign: watch::Sender<u64>,
) {
    let mut seen = data_version(&conn);
    let mut checked = Instant::now();
    loop {
        match jobs.recv_timeout(FOREIGN_CHECK_EVERY) {
            Ok(first) => {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match jobs.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                    }
                }
                if commit_batch(&mut conn, batch) {
                    committed.notify_one();
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if checked.elapsed() >= FOREIGN_CHECK_EVERY {
            checked = Instant::now();
            let now = data_version(&conn);
            if now.is_some() && now != seen {
                seen = now;
                tracing::debug!("another process committed to the store");
                committed.notify_one();
                foreign.send_modify(|count| *count = count.wrapping_add(1));
            }
        }
    }
    tracing::debug!("store writer stopped");
}

/// SQLite's `data_version` of this connection: it changes exactly when another connection
/// commits to the database file, never for this connection's own commits.
fn data_version(conn: &Connection) -> Option<i64> {
    conn.query_row("PRAGMA data_version", [], |row| row.get(0))
        .map_err(|error| tracing::warn!(%error, "cannot read the store's data_version"))
        .ok()
}

fn commit_batch(conn: &mut Connection, batch: Vec<WriteJob>) -> bool {
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => {
            // Dropping the jobs closes their reply channels: callers get "store unavailable".
            tracing::error!(%error, "cannot begin a store transaction");
            drop(batch);
            return false;
        }
    };
    let finishers: Vec<Finish> = batch
        .into_iter()
        .map(|WriteJob(job)| job(&mut tx))
        .collect();
    let commit = tx
        .commit()
        .map_err(|error| EngineError::from(super::error::SqliteError::Commit(error)));
    if let Err(error) = &commit {
        tracing::error!(%error, "store commit failed");
    }
    let ok = commit.is_ok();
    for finish in finishers {
        finish(&commit);
    }
    ok
}

/// The batch's commit failure for each of its jobs (the error is not `Clone`): a busy or
/// locked database stays a 503, anything else a store failure.
fn same_failure(error: &EngineError) -> EngineError {
    match error {
        EngineError::Unavailable(text) => EngineError::Unavailable(text.clone()),
        EngineError::Store(text) => EngineError::Store(text.clone()),
        other => EngineError::Store(other.to_string()),
    }
}

fn guarded<T>(work: impl FnOnce() -> Result<T, EngineError>) -> Result<T, EngineError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|_| {
        tracing::error!("a store write panicked; it was rolled back and the writer continues");
        Err(super::error::SqliteError::Panicked.into())
    })
}

fn in_savepoint<T>(
    tx: &mut Transaction<'_>,
    work: impl FnOnce(&Connection) -> Result<T, EngineError>,
) -> Result<T, EngineError> {
    // Released on success; rolled back when dropped on failure.
    let savepoint = tx.savepoint().map_err(sql_error)?;
    let value = work(&savepoint)?;
    savepoint.commit().map_err(sql_error)?;
    Ok(value)
}
