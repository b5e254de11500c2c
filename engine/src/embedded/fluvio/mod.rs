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

use std::time::Duration;

use crate::embedded::log::EventLog;

pub use wire::RawBatches;

/// The SPU id this broker announces; every partition's leader.
pub const SPU_ID: i32 = 5001;
/// The Fluvio platform version reported to clients (they require at least 0.9.0).
pub const PLATFORM_VERSION: &str = "0.18.1";
/// The system topic the clients expect for consumer offsets (`fluvio-types` `CONSUMER_REPLICA_KEY`).
pub const CONSUMER_OFFSET_TOPIC: &str = "consumer-offset";

/// Default idle timeout: long enough for a client that produces every few minutes to keep its
/// connection, short enough that abandoned connections do not pile up. Connections with an
/// open watch or fetch stream are never idle.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default cap of open connections from one IP address, per listener. An official client holds
/// one SC and one SPU connection (an admin handle one more SC connection).
pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = 64;

/// Settings of the SC and SPU listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FluvioConfig {
    /// `host:port` clients should dial for the SPU (announced in the SPU metadata).
    pub spu_advertised_addr: String,
    /// Makes the appliance's own topics (task-events, reminders, task-updates) read-only to
    /// Fluvio clients: produce is refused and even a forced delete is. On by default: the
    /// appliance's consumers trust those topics, so writing to them is an explicit opt-out.
    pub read_only: bool,
    pub limits: ConnectionLimits,
}

impl FluvioConfig {
    /// The defaults: read-only appliance topics and [`ConnectionLimits::default`].
    pub fn new(spu_advertised_addr: impl Into<String>) -> Self {
        Self {
            spu_advertised_addr: spu_advertised_addr.into(),
            read_only: true,
            limits: ConnectionLimits::default(),
        }
    }
}

/// Limits on the connections of each listener (on top of the fixed global cap of 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A connection that sends no request for this long while it has no open stream and no
    /// request in progress is closed; `None` keeps idle connections open.
    pub idle_timeout: Option<Duration>,
    /// Open connections from one IP address; further ones are closed at once.
    pub max_connections_per_peer: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_connections_per_peer: DEFAULT_MAX_CONNECTIONS_PER_PEER,
        }
    }
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
    let result = conn::serve("sc", listener, config.limits, shutdown, move |connection| {
        sc::handle_connection(state.clone(), connection)
    })
    .await;
    refresher.abort();
    result
}

/// Serves the SPU (produce/fetch/offsets) protocol on `listener` until `shutdown` turns true;
/// with `config.read_only`, producing to the appliance's own topics is refused.
pub async fn serve_spu(
    listener: tokio::net::TcpListener,
    log: EventLog,
    config: FluvioConfig,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let state = spu::SpuState::new(log).with_read_only(config.read_only);
    conn::serve(
        "spu",
        listener,
        config.limits,
        shutdown,
        move |connection| spu::handle_connection(state.clone(), connection),
    )
    .await
}

/// Whether `topic` is one of the appliance's own topics.
pub fn is_appliance_topic(topic: &str) -> bool {
    crate::event::Topic::parse(topic).is_some()
}
