//! The taskstream domain and its embedded engines.
//!
//! Nothing in here knows about HTTP, Dapr or PostgreSQL: the web layer and the cluster adapters
//! depend on this crate, never the other way round.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod activity;
pub mod assistant;
pub mod cache;
pub mod consumers;
pub mod embedded;
pub mod error;
pub mod event;
pub mod jobs;
pub mod ports;
pub mod project;
pub mod recurrence;
pub mod relay;
pub mod reminder;
pub mod scheduler;
pub mod service;
pub mod settings;
pub mod task;
pub mod time;
pub mod transfer;
pub mod write_limit;

#[cfg(any(test, feature = "testkit"))]
pub mod conformance;

pub use cache::CacheSizes;
pub use error::{EngineError, FieldError, Loc, ValidationErrors};
pub use service::TaskService;
