//! Cluster-mode adapters of the engine's ports: PostgreSQL task store, Dapr pub/sub, state,
//! jobs and secrets. Empty until the cluster-mode work lands; the embedded shape does not
//! depend on it.
#![forbid(unsafe_code)]

pub mod dapr;
pub mod postgres;
