//! The live stream behind `GET /api/events`, read straight from the embedded log: each
//! connection tails `task-updates` and `reminders` from its own position and keeps the caller's
//! events, so a reconnect with `Last-Event-ID` resumes exactly where it stopped.

use std::time::Duration;

use async_trait::async_trait;

use crate::embedded::log::EventLog;
use crate::error::EngineError;
use crate::event::{EventEnvelope, Topic};
use crate::ports::{LiveEvent, LiveFeed};

/// The topics a live stream follows, in position order.
const TOPICS: [Topic; 2] = [Topic::TaskUpdates, Topic::Reminders];
/// Records scanned per topic per round.
const SCAN: usize = 512;
/// Longest wait before an empty round returns, so dead connections are noticed.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// A position: the next offset to read in each followed topic (partition 0), written `a.b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position([u64; 2]);

impl Position {
    fn parse(text: &str) -> Option<Self> {
        let (a, b) = text.trim().split_once('.')?;
        Some(Self([a.parse().ok()?, b.parse().ok()?]))
    }

    fn render(self) -> String {
        format!("{}.{}", self.0[0], self.0[1])
    }
}

/// [`LiveFeed`] over the embedded log.
#[derive(Clone)]
pub struct LogLiveFeed {
    log: EventLog,
}

impl LogLiveFeed {
    pub fn new(log: EventLog) -> Self {
        Self { log }
    }

    fn now(&self) -> Result<Position, EngineError> {
        let mut offsets = [0; 2];
        for (slot, topic) in offsets.iter_mut().zip(TOPICS) {
            *slot = self.log.end_offset(topic.name(), 0).map_err(unavailable)?;
        }
        Ok(Position(offsets))
    }
}

fn unavailable(error: crate::embedded::log::LogError) -> EngineError {
    EngineError::Unavailable(error.to_string())
}

#[async_trait]
impl LiveFeed for LogLiveFeed {
    async fn position_now(&self) -> Result<String, EngineError> {
        self.now().map(Position::render)
    }

    async fn next_events(
        &self,
        user_id: &str,
        position: &str,
    ) -> Result<Vec<LiveEvent>, EngineError> {
        let mut at = match Position::parse(position) {
            Some(position) => position,
            None => self.now()?,
        };
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        loop {
            let mut found = Vec::new();
            for (index, topic) in TOPICS.into_iter().enumerate() {
                let start = self
                    .log
                    .start_offset(topic.name(), 0)
                    .map_err(unavailable)?;
                let from = at.0[index].max(start);
                let records = self
                    .log
                    .read(topic.name(), 0, from, SCAN)
                    .await
                    .map_err(unavailable)?;
                for record in records {
                    at.0[index] = record.offset + 1;
                    let Ok(envelope) = serde_json::from_slice::<EventEnvelope>(&record.value)
                    else {
                        continue;
                    };
                    if envelope.user_id == user_id
                        && crate::event::LIVE_TYPES.contains(&envelope.event_type.as_str())
                    {
                        found.push(LiveEvent {
                            id: at.render(),
                            envelope,
                        });
                    }
                }
                if at.0[index] < from {
                    at.0[index] = from;
                }
            }
            if !found.is_empty() {
                return Ok(found);
            }
            // Nothing for this user yet: sleep until either topic grows (or the deadline).
            let waits = TOPICS
                .into_iter()
                .enumerate()
                .map(|(index, topic)| Box::pin(self.log.wait_beyond(topic.name(), 0, at.0[index])));
            let any = futures_util::future::select_all(waits);
            match tokio::time::timeout_at(deadline, any).await {
                Ok((result, _, _)) => result.map_err(unavailable)?,
                Err(_) => return Ok(Vec::new()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_reject_garbage() {
        let position = Position([12, 7]);
        assert_eq!(Position::parse(&position.render()), Some(position));
        assert_eq!(Position::parse("x.1"), None);
        assert_eq!(Position::parse("12"), None);
    }
}
