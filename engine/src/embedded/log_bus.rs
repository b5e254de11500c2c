//! The embedded log as the event bus the outbox relay publishes to.

use async_trait::async_trait;

use crate::embedded::log::{EventLog, NewRecord};
use crate::error::EngineError;
use crate::ports::{EventBus, OutboxRecord};

/// Appends each outbox event to its topic, keyed by task id, valued by the envelope JSON.
#[derive(Clone)]
pub struct LogBus {
    log: EventLog,
}

impl LogBus {
    pub fn new(log: EventLog) -> Self {
        Self { log }
    }
}

#[async_trait]
impl EventBus for LogBus {
    async fn publish(&self, events: &[OutboxRecord]) -> Result<(), EngineError> {
        // Group by topic keeping order; one append (one batch, one commit) per topic.
        let mut topics: Vec<(&str, Vec<NewRecord>)> = Vec::new();
        for event in events {
            let value = serde_json::to_vec(&event.envelope)
                .map_err(|error| EngineError::Store(format!("cannot encode an event: {error}")))?;
            let record = NewRecord {
                key: Some(event.key.clone().into_bytes()),
                value,
                timestamp_ms: chrono::Utc::now().timestamp_millis(),
            };
            match topics.iter_mut().find(|(name, _)| *name == event.topic) {
                Some((_, records)) => records.push(record),
                None => topics.push((event.topic.as_str(), vec![record])),
            }
        }
        for (topic, records) in topics {
            self.log
                .append(topic, records)
                .await
                .map_err(|error| EngineError::Unavailable(format!("event log: {error}")))?;
        }
        Ok(())
    }
}
