//! The Fluvio-compatible wire-protocol server over the embedded [`EventLog`]: official Fluvio
//! clients (Rust crate, Python package, CLI) connect to the SC listener for metadata and topic
//! admin, and to the SPU listener to produce and consume, with no Fluvio cluster installed.
//!
//! - [`serve_sc`]: ApiVersions, metadata watch streams (SPU, Partition, Topic, and empty ones for
//!   the other kinds), topic create / list / delete, the `consumer-offset` system topic.
//! - [`serve_spu`]: ApiVersions, Produce, FetchOffsets, StreamFetch with its UpdateOffsets acks,
//!   and the consumer-offset APIs (update, fetch, delete) over the log's durable offset store.
//!
//! Records are served straight from the log's stored batches: a produced batch is stored as sent
//! (only its base offset is assigned) and fetches send the stored bytes without re-encoding, so
//! compressed batches come back exactly as they were produced.
//!
//! Wire types come from the published `fluvio-protocol`, `fluvio-sc-schema`, `fluvio-spu-schema`
//! and `fluvio-controlplane-metadata` crates; the server loop (framing, one writer task per
//! connection, request dispatch) is ours, on tokio. A frame that cannot be decoded closes only its
//! own connection, with the reason and the peer address logged.

mod conn;
mod sc;
mod spu;
mod wire;

#[cfg(test)]
mod tests;

use crate::log::EventLog;

pub use wire::RawBatches;

/// The SPU id this broker announces; every partition's leader.
pub const SPU_ID: i32 = 5001;
/// The Fluvio platform version reported to clients (they require at least 0.9.0).
pub const PLATFORM_VERSION: &str = "0.18.1";
/// The system topic the clients expect for consumer offsets (`fluvio-types` `CONSUMER_REPLICA_KEY`).
pub const CONSUMER_OFFSET_TOPIC: &str = "consumer-offset";

/// Settings of the SC listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FluvioConfig {
    /// `host:port` clients should dial for the SPU (announced in the SPU metadata).
    pub spu_advertised_addr: String,
    /// Makes the appliance's own topics (task-events, reminders, task-updates) read-only to
    /// Fluvio clients: produce is refused and even a forced delete is.
    pub read_only: bool,
}

/// Serves the SC (admin/metadata) protocol on `listener` until `shutdown` turns true.
pub async fn serve_sc(
    listener: tokio::net::TcpListener,
    log: EventLog,
    config: FluvioConfig,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let state = sc::ScState::new(log, &config)?;
    let refresher = tokio::spawn(sc::refresh_loop(state.clone(), shutdown.clone()));
    let result = conn::serve("sc", listener, shutdown, move |connection| {
        sc::handle_connection(state.clone(), connection)
    })
    .await;
    refresher.abort();
    result
}

/// Serves the SPU (produce/fetch/offsets) protocol on `listener` until `shutdown` turns true.
pub async fn serve_spu(
    listener: tokio::net::TcpListener,
    log: EventLog,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    serve_spu_with(listener, log, false, shutdown).await
}

/// [`serve_spu`], with the appliance's own topics read-only to producers when `read_only`.
pub async fn serve_spu_with(
    listener: tokio::net::TcpListener,
    log: EventLog,
    read_only: bool,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let state = spu::SpuState::new(log).with_read_only(read_only);
    conn::serve("spu", listener, shutdown, move |connection| {
        spu::handle_connection(state.clone(), connection)
    })
    .await
}

/// Whether `topic` is one of the appliance's own topics.
pub fn is_appliance_topic(topic: &str) -> bool {
    crate::event::Topic::parse(topic).is_some()
}
