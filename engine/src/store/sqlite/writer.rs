//! The single writer thread: batches concurrent writes into one transaction (group commit), so
//! one fsync makes many requests durable.

use std::sync::mpsc::{Receiver, TryRecvError};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::rows::{self, sql_error};
use crate::error::EngineError;
use crate::event::OutboxEvent;
use crate::task::{Change, Task, TaskOp, ops};

/// Largest number of writes committed together.
const MAX_BATCH: usize = 256;

type Reply<T> = oneshot::Sender<Result<T, EngineError>>;

/// One write request and where to send its outcome.
pub(crate) enum WriteJob {
    Insert {
        task: Task,
        events: Vec<OutboxEvent>,
        reply: Reply<Task>,
    },
    Modify {
        id: Uuid,
        user_id: String,
        op: TaskOp,
        now: DateTime<Utc>,
        reply: Reply<Change>,
    },
}

/// An executed job whose reply waits for the commit. Lives for one batch only, so the size
/// difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Done {
    Insert(Reply<Task>, Result<Task, EngineError>),
    Modify(Reply<Change>, Result<Change, EngineError>),
}

impl Done {
    /// Sends the outcome; a successful result becomes an error if the commit failed.
    fn send(self, commit: &Result<(), EngineError>) {
        fn settle<T>(
            result: Result<T, EngineError>,
            commit: &Result<(), EngineError>,
        ) -> Result<T, EngineError> {
            match (result, commit) {
                (Ok(_), Err(error)) => Err(EngineError::Store(format!("commit failed: {error}"))),
                (result, _) => result,
            }
        }
        // A closed receiver means the client went away; the write stands regardless.
        match self {
            Done::Insert(reply, result) => drop(reply.send(settle(result, commit))),
            Done::Modify(reply, result) => drop(reply.send(settle(result, commit))),
        }
    }
}

pub(crate) fn run(mut conn: Connection, jobs: Receiver<WriteJob>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        commit_batch(&mut conn, batch);
    }
    tracing::debug!("store writer stopped");
}

fn commit_batch(conn: &mut Connection, batch: Vec<WriteJob>) {
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => {
            let failure = Err(EngineError::Unavailable(error.to_string()));
            for job in batch {
                match job {
                    WriteJob::Insert { reply, .. } => drop(reply.send(failure_clone(&failure))),
                    WriteJob::Modify { reply, .. } => drop(reply.send(failure_clone(&failure))),
                }
            }
            return;
        }
    };
    let mut done = Vec::with_capacity(batch.len());
    for job in batch {
        done.push(execute(&mut tx, job));
    }
    let commit = tx.commit().map_err(sql_error);
    if let Err(error) = &commit {
        tracing::error!(%error, "store commit failed");
    }
    for outcome in done {
        outcome.send(&commit);
    }
}

fn failure_clone<T>(failure: &Result<(), EngineError>) -> Result<T, EngineError> {
    match failure {
        Err(EngineError::Unavailable(message)) => Err(EngineError::Unavailable(message.clone())),
        _ => Err(EngineError::Store("write failed".to_owned())),
    }
}

/// Runs one job inside its own savepoint, so a failing job leaves the rest of the batch intact.
/// A panicking job (a bug) fails alone: the writer thread must outlive it, or every later write
/// would fail.
fn execute(tx: &mut rusqlite::Transaction<'_>, job: WriteJob) -> Done {
    match job {
        WriteJob::Insert {
            task,
            events,
            reply,
        } => {
            let result = guarded(|| {
                in_savepoint(tx, |conn| {
                    rows::insert_task(conn, &task).map_err(sql_error)?;
                    rows::append_events(conn, &events).map_err(sql_error)?;
                    Ok(task)
                })
            });
            Done::Insert(reply, result)
        }
        WriteJob::Modify {
            id,
            user_id,
            op,
            now,
            reply,
        } => {
            let result = guarded(|| in_savepoint(tx, |conn| modify(conn, id, &user_id, op, now)));
            Done::Modify(reply, result)
        }
    }
}

fn guarded<T>(work: impl FnOnce() -> Result<T, EngineError>) -> Result<T, EngineError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|_| {
        tracing::error!("a store write panicked; it was rolled back and the writer continues");
        Err(EngineError::Store(
            "the write failed unexpectedly".to_owned(),
        ))
    })
}

fn in_savepoint<T>(
    tx: &mut rusqlite::Transaction<'_>,
    work: impl FnOnce(&Connection) -> Result<T, EngineError>,
) -> Result<T, EngineError> {
    // Released on success; rolled back when dropped on failure.
    let savepoint = tx.savepoint().map_err(sql_error)?;
    let value = work(&savepoint)?;
    savepoint.commit().map_err(sql_error)?;
    Ok(value)
}

fn modify(
    conn: &Connection,
    id: Uuid,
    user_id: &str,
    op: TaskOp,
    now: DateTime<Utc>,
) -> Result<Change, EngineError> {
    let current = rows::load_task(conn, id)
        .map_err(sql_error)?
        .ok_or(EngineError::NotFound)?;
    let has_next = rows::has_next_occurrence(conn, id).map_err(sql_error)?;
    let change = ops::apply(op, user_id, current, has_next, now)?;
    if change.deleted {
        rows::delete_task(conn, change.task.id).map_err(sql_error)?;
    } else if change.write {
        rows::update_task(conn, &change.task).map_err(sql_error)?;
    }
    if let Some(next) = &change.next {
        rows::insert_task(conn, next).map_err(sql_error)?;
    }
    rows::append_events(conn, &change.events).map_err(sql_error)?;
    Ok(change)
}
