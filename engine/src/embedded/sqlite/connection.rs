//! Opening connections with the settings every taskstream connection needs.

use std::path::Path;

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags};

use super::error::SqliteError;
use super::rows::sql_error;
use crate::cache::CacheSizes;
use crate::error::EngineError;

/// Opens the writer: WAL, full fsync on commit (a 2xx means durable), foreign keys on, and
/// temporary data (the statement journal of each write's savepoint) in memory, never spilled
/// to a temporary file in the middle of a large write.
pub(crate) fn open_writer(path: &Path, caches: &CacheSizes) -> Result<Connection, EngineError> {
    let conn = Connection::open(path).map_err(|source| SqliteError::Open {
        path: path.to_owned(),
        source,
    })?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(sql_error)?;
    set_memory(&conn, caches.sqlite_writer_bytes, caches.sqlite_mmap_bytes)?;
    // Checkpoints run on their own thread (see `checkpointer`), not inside a commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(sql_error)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Statements kept prepared per connection: every query and write of the store fits.
const STATEMENT_CACHE: usize = 128;

/// Opens the connection that checkpoints the write-ahead log into the database file.
pub(crate) fn open_checkpointer(path: &Path) -> Result<Connection, EngineError> {
    let conn = Connection::open(path).map_err(|source| SqliteError::Open {
        path: path.to_owned(),
        source,
    })?;
    conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL;")
        .map_err(sql_error)?;
    Ok(conn)
}

/// Opens a read-only connection with the search function registered.
pub(crate) fn open_reader(path: &Path, caches: &CacheSizes) -> Result<Connection, EngineError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| SqliteError::Open {
        path: path.to_owned(),
        source,
    })?;
    conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")
        .map_err(sql_error)?;
    set_memory(&conn, caches.sqlite_reader_bytes, caches.sqlite_mmap_bytes)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    register_search(&conn)?;
    Ok(conn)
}

/// The page cache and memory map of one connection (see [`CacheSizes`]).
fn set_memory(conn: &Connection, cache_bytes: u64, mmap_bytes: u64) -> Result<(), EngineError> {
    conn.pragma_update(
        None,
        "cache_size",
        CacheSizes::sqlite_cache_pragma(cache_bytes),
    )
    .map_err(sql_error)?;
    conn.pragma_update(
        None,
        "mmap_size",
        i64::try_from(mmap_bytes).unwrap_or(i64::MAX),
    )
    .map_err(sql_error)
}

/// `contains_folded(haystack, needle)`: Unicode case-insensitive substring test. The needle
/// arrives lower-cased; `%` and `_` have no special meaning, unlike LIKE.
fn register_search(conn: &Connection) -> Result<(), EngineError> {
    conn.create_scalar_function(
        "contains_folded",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let haystack: Option<String> = ctx.get(0)?;
            let needle: String = ctx.get(1)?;
            Ok(haystack.is_some_and(|text| text.to_lowercase().contains(&needle)))
        },
    )
    .map_err(sql_error)
}
