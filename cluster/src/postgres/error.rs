//! The PostgreSQL store's error type, and how it maps onto the engine's.

use taskstream_engine::EngineError;

/// What can go wrong talking to PostgreSQL, kept typed so `connect` failures are explicit at
/// start-up; the trait methods hand callers an [`EngineError`].
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The connection string could not be used (the string itself is never echoed: it may hold a
    /// password).
    #[error("invalid PostgreSQL connection string: {0}")]
    Config(String),
    /// The schema name would need quoting; only plain identifiers are accepted.
    #[error(
        "invalid schema name {0:?}: use 1 to 63 lower-case ASCII letters, digits or '_', not starting with a digit"
    )]
    SchemaName(String),
    /// TLS was asked for and could not be set up (or this build has no TLS).
    #[error("PostgreSQL TLS: {0}")]
    Tls(String),
    /// No pooled connection could be had in time.
    #[error("PostgreSQL connection pool: {0}")]
    Pool(String),
    /// The database was migrated by a newer taskstream; running on it could corrupt it.
    #[error(
        "the database has schema version {found}, newer than this taskstream knows ({known}); upgrade taskstream"
    )]
    SchemaTooNew { found: i64, known: i64 },
    /// One migration step failed and was rolled back.
    #[error("PostgreSQL migration to version {version} failed: {source}")]
    Migration {
        version: i64,
        #[source]
        source: tokio_postgres::Error,
    },
    /// A statement failed.
    #[error("PostgreSQL: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// A stored value the engine cannot read back (edited by hand, or a bug).
    #[error("corrupt {0} in the PostgreSQL store")]
    Corrupt(&'static str),
}

impl PgError {
    /// Whether the database is out of reach (as opposed to refusing what was asked): those are
    /// 503s and retried, the rest are store failures.
    pub fn is_unavailable(&self) -> bool {
        match self {
            PgError::Pool(_) => true,
            PgError::Db(error) | PgError::Migration { source: error, .. } => lost(error),
            _ => false,
        }
    }
}

/// A closed connection, an I/O failure, or the server saying it cannot serve now.
fn lost(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(code) = error.code() {
        let code = code.code();
        // 08: connection exception; 53: insufficient resources; 57P: operator intervention.
        return code.starts_with("08") || code.starts_with("53") || code.starts_with("57P");
    }
    std::error::Error::source(error).is_some_and(|cause| cause.is::<std::io::Error>())
}

impl From<PgError> for EngineError {
    fn from(error: PgError) -> Self {
        if error.is_unavailable() {
            EngineError::Unavailable(error.to_string())
        } else {
            EngineError::Store(error.to_string())
        }
    }
}

impl From<deadpool_postgres::PoolError> for PgError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        match error {
            deadpool_postgres::PoolError::Backend(error) => PgError::Db(error),
            other => PgError::Pool(other.to_string()),
        }
    }
}
