//! The live stream behind `GET /api/events` in cluster mode.
//!
//! Each commit copies its `task.sync` and `reminder.triggered` envelopes into `live_events`
//! (in `rows::append_events`, under the outbox lock, so `seq` is commit order) and `NOTIFY`s
//! the schema's channel with a small payload (schema and store instance, never the event).
//! Every replica `LISTEN`s (see [`super::listen`]) and wakes its streams, which read their
//! user's rows after their position: each api replica sees every change of every user, whoever
//! wrote it, and a reconnect with `Last-Event-ID` (the `seq`) resumes where it stopped for as
//! long as the rows are kept ([`PostgresStore::purge_live_events`]).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use tokio::sync::watch;
use tokio_postgres::types::Json;

use taskstream_engine::EngineError;
use taskstream_engine::event::EventEnvelope;
use taskstream_engine::ports::{LiveEvent, LiveFeed};

use super::PostgresStore;
use super::error::PgError;

/// Rows one read returns at most.
const SCAN: i64 = 512;
/// Longest wait before an empty round returns, so dead connections are noticed.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// [`LiveFeed`] over the `live_events` table, woken by `LISTEN`/`NOTIFY`.
#[derive(Clone)]
pub struct PgLiveFeed {
    pool: Pool,
    commits: watch::Receiver<u64>,
}

impl PostgresStore {
    /// The live stream of this store's schema.
    pub fn live_feed(&self) -> PgLiveFeed {
        PgLiveFeed {
            pool: self.pool.clone(),
            commits: self.schema_commits.clone(),
        }
    }

    /// Deletes live events written before `before` (a reconnect from before then starts
    /// afresh); returns how many went.
    pub async fn purge_live_events(&self, before: DateTime<Utc>) -> Result<u64, EngineError> {
        let client = self.client().await?;
        let deleted = client
            .execute("DELETE FROM live_events WHERE created_at < $1", &[&before])
            .await
            .map_err(PgError::from)?;
        Ok(deleted)
    }
}

impl PgLiveFeed {
    async fn now(&self) -> Result<i64, PgError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_one("SELECT COALESCE(max(seq), 0) FROM live_events", &[])
            .await?
            .try_get(0)?)
    }

    async fn after(&self, user_id: &str, seq: i64) -> Result<Vec<LiveEvent>, PgError> {
        let client = self.pool.get().await?;
        let read = client
            .prepare_cached(
                "SELECT seq, envelope FROM live_events WHERE user_id = $1 AND seq > $2
                 ORDER BY seq LIMIT $3",
            )
            .await?;
        let mut events = Vec::new();
        for row in client.query(&read, &[&user_id, &seq, &SCAN]).await? {
            let seq: i64 = row.try_get(0)?;
            let Json(envelope): Json<EventEnvelope> = row.try_get(1)?;
            events.push(LiveEvent {
                id: seq.to_string(),
                envelope,
            });
        }
        Ok(events)
    }
}

/// A position is a `live_events.seq`; anything else (an embedded-mode id) restarts from now.
fn parse_position(text: &str) -> Option<i64> {
    text.trim().parse().ok().filter(|seq: &i64| *seq >= 0)
}

#[async_trait]
impl LiveFeed for PgLiveFeed {
    async fn position_now(&self) -> Result<String, EngineError> {
        Ok(self.now().await?.to_string())
    }

    async fn next_events(
        &self,
        user_id: &str,
        position: &str,
    ) -> Result<Vec<LiveEvent>, EngineError> {
        let at = match parse_position(position) {
            Some(seq) => seq,
            None => self.now().await?,
        };
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        let mut commits = self.commits.clone();
        loop {
            // Marked seen before reading, so a commit landing during the read wakes the wait.
            commits.borrow_and_update();
            let events = self.after(user_id, at).await?;
            if !events.is_empty() {
                return Ok(events);
            }
            match tokio::time::timeout_at(deadline, commits.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    return Err(EngineError::Unavailable(
                        "the store's commit listener stopped".to_owned(),
                    ));
                }
                Err(_) => return Ok(Vec::new()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_sequence_numbers() {
        assert_eq!(parse_position("42"), Some(42));
        assert_eq!(parse_position(" 0 "), Some(0));
        assert_eq!(parse_position("12.7"), None, "an embedded-mode position");
        assert_eq!(parse_position("-1"), None);
        assert_eq!(parse_position("x"), None);
    }
}
