//! Store adapters of the embedded shape.

pub mod sqlite;

pub use sqlite::SqliteTaskStore;
