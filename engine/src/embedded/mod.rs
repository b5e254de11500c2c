//! The embedded shape's adapters of the engine's ports, mirroring `cluster/src/{postgres,dapr}`:
//! the SQLite task store ([`sqlite`]), the durable event log on redb ([`log`]) with its
//! [`EventBus`](crate::ports::EventBus) ([`log_bus`]) and live feed ([`live`]), the consumers'
//! state on redb ([`state`]), and the Fluvio-compatible listeners over the log ([`fluvio`]).

pub mod fluvio;
pub mod live;
pub mod log;
pub mod log_bus;
mod redb_copy;
pub mod sqlite;
pub mod state;

pub use sqlite::SqliteTaskStore;
