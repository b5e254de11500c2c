//! Checkpoints the write-ahead log on a thread of its own. SQLite's automatic checkpoint runs
//! inside the commit that crosses its threshold, so whichever write (or burst of reminder fires)
//! happens to commit then waits for the whole log to be copied into the database; here the
//! writer only notes the log's size after each commit and this thread copies it meanwhile.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use rusqlite::Connection;
use rusqlite::wal::CheckpointMode;

use super::connection;
use crate::error::EngineError;

/// Log size (pages) from which a commit asks for a checkpoint; about 8 MB of 4 KiB pages.
const CHECKPOINT_AFTER_PAGES: i32 = 2_000;

/// Starts the checkpoint thread and has `writer` wake it once the log is large. It stops when
/// the writer connection is closed.
pub(crate) fn start(path: &Path, writer: &mut Connection) -> Result<JoinHandle<()>, EngineError> {
    let conn = connection::open_checkpointer(path)?;
    let (kick, kicks) = sync_channel::<()>(1);
    writer
        .wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
            if pages >= CHECKPOINT_AFTER_PAGES {
                note_full_log(&kick);
            }
            Ok(())
        }))
        .map_err(|error| EngineError::Store(format!("cannot watch the log size: {error}")))?;
    std::thread::Builder::new()
        .name("store-checkpoint".to_owned())
        .spawn(move || run(&conn, &kicks))
        .map_err(|source| {
            super::error::SqliteError::Thread {
                what: "checkpoint thread",
                source,
            }
            .into()
        })
}

/// A checkpoint already asked for and not yet started covers this commit too.
fn note_full_log(kick: &SyncSender<()>) {
    match kick.try_send(()) {
        Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
    }
}

fn run(conn: &Connection, kicks: &Receiver<()>) {
    for () in kicks {
        // Passive: copies what no reader still needs, never blocks the writer or readers.
        match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
            Ok((log, copied)) => tracing::debug!(log, copied, "store log checkpointed"),
            Err(error) => tracing::warn!(%error, "store log checkpoint failed; will retry"),
        }
    }
    tracing::debug!("store checkpoint thread stopped");
}
