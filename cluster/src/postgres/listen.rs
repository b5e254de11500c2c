//! Noticing commits of other replicas through PostgreSQL `LISTEN`/`NOTIFY`.
//!
//! Every write that changes tasks, reminders or the outbox runs `pg_notify(CHANNEL, origin)`
//! inside its transaction; PostgreSQL delivers it at commit (never for a rollback). One dedicated
//! connection per store `LISTEN`s on the channel. A notification from another store instance on
//! the same schema wakes the relay (`commit_signal`) and bumps `foreign_commits`, so the reminder
//! queue of this replica reloads. Every commit on the schema, this instance's included, bumps
//! `schema_commits`, which wakes the live streams (`live.rs`) to read their new rows. A burst is coalesced (at most two bumps per [`COALESCE`]), and
//! a lost listening connection is re-established with backoff, bumping once after, since commits
//! may have been missed meanwhile.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Client, Config, Socket};
use uuid::Uuid;

use super::error::PgError;

/// The channel every taskstream store notifies on; the payload says which schema and instance.
pub(crate) const CHANNEL: &str = "taskstream_commits";
/// Window in which further notifications after one are folded into a single bump.
const COALESCE: Duration = Duration::from_millis(100);
const RECONNECT_FIRST: Duration = Duration::from_millis(200);
const RECONNECT_MAX: Duration = Duration::from_secs(10);
/// Idle time before TCP keepalives probe the listening connection, so a silently dropped one
/// is noticed in about a minute rather than the kernel's two hours.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// Which store wrote a commit: its schema (empty for the default `search_path`) and the id of
/// the store instance, unique per process start.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    payload: String,
    schema: String,
    instance: String,
}

impl Origin {
    pub(crate) fn new(schema: Option<&str>) -> Self {
        let schema = schema.unwrap_or_default().to_owned();
        let instance = Uuid::new_v4().to_string();
        Self {
            payload: format!("{schema}/{instance}"),
            schema,
            instance,
        }
    }

    /// What this store's writes send as the notification payload.
    pub(crate) fn payload(&self) -> &str {
        &self.payload
    }

    /// A commit on this store's schema by any instance, this one included.
    fn is_same_schema(&self, payload: &str) -> bool {
        payload
            .rsplit_once('/')
            .is_some_and(|(schema, _)| schema == self.schema)
    }

    /// A commit on this store's schema by another instance (schema names have no `/`).
    fn is_foreign(&self, payload: &str) -> bool {
        payload
            .rsplit_once('/')
            .is_some_and(|(schema, instance)| schema == self.schema && instance != self.instance)
    }
}

/// Aborts a background task when dropped, so a store leaves nothing running behind it.
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where noticed foreign commits are announced.
pub(crate) struct Signals {
    pub(crate) committed: Arc<Notify>,
    pub(crate) foreign: watch::Sender<u64>,
    pub(crate) schema_commits: watch::Sender<u64>,
}

impl Signals {
    fn bump(&self) {
        self.committed.notify_one();
        self.foreign
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    fn bump_schema(&self) {
        self.schema_commits
            .send_modify(|count| *count = count.wrapping_add(1));
    }
}

/// One listening connection: its notifications' payloads arrive on `payloads`.
struct Subscription {
    payloads: mpsc::UnboundedReceiver<String>,
    _client: Client,
    _driver: AbortOnDrop,
}

/// Opens the listening connection (so commits made after `connect` returns are never missed)
/// and keeps it listening in the background until the returned guard is dropped.
pub(crate) async fn start<T>(
    config: &Config,
    tls: T,
    origin: Origin,
    signals: Signals,
) -> Result<AbortOnDrop, PgError>
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + Sync + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let mut config = config.clone();
    config.keepalives_idle(KEEPALIVE_IDLE);
    let first = subscribe(&config, tls.clone()).await?;
    Ok(AbortOnDrop(tokio::spawn(run(
        config, tls, first, origin, signals,
    ))))
}

async fn subscribe<T>(config: &Config, tls: T) -> Result<Subscription, PgError>
where
    T: MakeTlsConnect<Socket> + Send + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, mut connection) = config.connect(tls).await?;
    let (sender, payloads) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(notification)) => {
                    if sender.send(notification.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "the commit listener's connection failed");
                    return;
                }
            }
        }
    });
    let driver = AbortOnDrop(driver);
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    Ok(Subscription {
        payloads,
        _client: client,
        _driver: driver,
    })
}

async fn run<T>(
    config: Config,
    tls: T,
    mut subscription: Subscription,
    origin: Origin,
    signals: Signals,
) where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + Sync + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    loop {
        match subscription.payloads.recv().await {
            Some(payload) => {
                if origin.is_same_schema(&payload) {
                    // Not coalesced: a live stream waits for exactly this commit.
                    signals.bump_schema();
                }
                if !origin.is_foreign(&payload) {
                    continue;
                }
                signals.bump();
                tokio::time::sleep(COALESCE).await;
                let (mut more, mut any) = (false, false);
                while let Ok(payload) = subscription.payloads.try_recv() {
                    more |= origin.is_foreign(&payload);
                    any |= origin.is_same_schema(&payload);
                }
                if any {
                    signals.bump_schema();
                }
                if more {
                    signals.bump();
                }
            }
            None => {
                let mut backoff = RECONNECT_FIRST;
                subscription = loop {
                    tokio::time::sleep(backoff).await;
                    match subscribe(&config, tls.clone()).await {
                        Ok(fresh) => break fresh,
                        Err(error) => {
                            tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "cannot listen for other replicas' commits; retrying");
                            backoff = (backoff * 2).min(RECONNECT_MAX);
                        }
                    }
                };
                tracing::info!("listening for other replicas' commits again");
                signals.bump();
                signals.bump_schema();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_other_instances_on_the_same_schema_are_foreign() {
        let mine = Origin::new(Some("ts_a"));
        let other = Origin::new(Some("ts_a"));
        let elsewhere = Origin::new(Some("ts_b"));
        let default = Origin::new(None);
        assert!(!mine.is_foreign(mine.payload()));
        assert!(mine.is_foreign(other.payload()));
        assert!(!mine.is_foreign(elsewhere.payload()));
        assert!(!mine.is_foreign(default.payload()));
        assert!(default.is_foreign(Origin::new(None).payload()));
        assert!(!mine.is_foreign("garbage"));
        assert!(mine.is_same_schema(mine.payload()));
        assert!(mine.is_same_schema(other.payload()));
        assert!(!mine.is_same_schema(elsewhere.payload()));
        assert!(!mine.is_same_schema("garbage"));
    }
}
