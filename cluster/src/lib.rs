//! Cluster-mode adapters of the engine's ports: the PostgreSQL task store ([`postgres`]), the
//! Dapr sidecar's pub/sub, state, jobs, secrets and app routes ([`dapr`]), and the outbox relay
//! between them ([`relay`]). The embedded shape does not depend on it.
#![forbid(unsafe_code)]

pub mod dapr;
pub mod postgres;
pub mod relay;
