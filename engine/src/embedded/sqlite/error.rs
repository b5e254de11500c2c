//! The SQLite store's error type, and the one place it maps onto the engine's: a database
//! that is busy, locked or cannot be opened is out of reach for now (503, retried), anything
//! else is a store failure.

use std::path::PathBuf;

use rusqlite::ErrorCode;

use crate::error::EngineError;

/// What can go wrong in the SQLite store, kept typed until it leaves the adapter.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// A statement failed.
    #[error("SQLite: {0}")]
    Db(#[from] rusqlite::Error),
    /// The database file could not be opened.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// A write's transaction could not commit; it was rolled back.
    #[error("commit failed: {0}")]
    Commit(#[source] rusqlite::Error),
    /// One migration step failed and was rolled back.
    #[error("migration failed: {0}")]
    Migration(#[source] rusqlite::Error),
    /// The database was migrated by a newer taskstream; running on it could corrupt it.
    #[error(
        "the database has schema version {found}, newer than this taskstream knows ({known}); upgrade taskstream"
    )]
    SchemaTooNew { found: i64, known: i64 },
    /// A thread of the store (writer, checkpointer) could not start.
    #[error("cannot start the {what}: {source}")]
    Thread {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The store is closing or its writer has stopped.
    #[error("{0}")]
    Closed(&'static str),
    /// A write panicked; it was rolled back and the writer goes on.
    #[error("the write failed unexpectedly")]
    Panicked,
    /// A blocking read could not run to the end.
    #[error("read task failed: {0}")]
    Read(String),
}

impl SqliteError {
    /// Whether the database is out of reach for now (busy, locked, cannot be opened, the
    /// store closing) rather than refusing what was asked.
    pub fn is_unavailable(&self) -> bool {
        match self {
            SqliteError::Db(error) | SqliteError::Commit(error) | SqliteError::Migration(error) => {
                busy(error)
            }
            SqliteError::Open { .. } | SqliteError::Thread { .. } | SqliteError::Closed(_) => true,
            SqliteError::SchemaTooNew { .. } | SqliteError::Panicked | SqliteError::Read(_) => {
                false
            }
        }
    }
}

fn busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::CannotOpen)
    )
}

impl From<SqliteError> for EngineError {
    fn from(error: SqliteError) -> Self {
        if error.is_unavailable() {
            EngineError::Unavailable(error.to_string())
        } else {
            EngineError::Store(error.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: ErrorCode, extended: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error {
                code,
                extended_code: extended,
            },
            None,
        )
    }

    #[test]
    fn busy_and_locked_are_unavailable_the_rest_store_failures() {
        let busy = failure(ErrorCode::DatabaseBusy, rusqlite::ffi::SQLITE_BUSY);
        let locked = failure(ErrorCode::DatabaseLocked, rusqlite::ffi::SQLITE_LOCKED);
        let constraint = failure(
            ErrorCode::ConstraintViolation,
            rusqlite::ffi::SQLITE_CONSTRAINT,
        );
        assert!(matches!(
            EngineError::from(SqliteError::Db(busy)),
            EngineError::Unavailable(_)
        ));
        assert!(matches!(
            EngineError::from(SqliteError::Commit(locked)),
            EngineError::Unavailable(_)
        ));
        assert!(matches!(
            EngineError::from(SqliteError::Db(constraint)),
            EngineError::Store(_)
        ));
        let too_new = EngineError::from(SqliteError::SchemaTooNew { found: 9, known: 3 });
        assert!(matches!(&too_new, EngineError::Store(text) if text.contains("newer")));
        assert!(matches!(
            EngineError::from(SqliteError::Closed("the store is closed")),
            EngineError::Unavailable(_)
        ));
    }
}
