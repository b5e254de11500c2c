//! [`DaprPublisher`]: the outbox relay's [`EventBus`] in cluster mode.
//!
//! Each event goes out as our own CloudEvent (`Content-Type: application/cloudevents+json`), so
//! `type` is the event type and subscription rules such as `event.type == "task.completed"` work,
//! and `id` is the event id consumers deduplicate on (CONTRACT §5; `dapr.md` §1.1: daprd keeps
//! our `id`, it never adds one to a CloudEvent it is handed).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};
use taskstream_engine::EngineError;
use taskstream_engine::ports::{EventBus, OutboxRecord};

use super::client::{DaprClient, segment, status_error};
use super::{DaprError, PUBSUB};

/// Content type of a structured-mode CloudEvent.
pub const CLOUD_EVENT_CONTENT_TYPE: &str = "application/cloudevents+json";

/// How hard one event is pushed before the batch fails (and the outbox keeps it).
#[derive(Debug, Clone, Copy)]
pub struct PublishRetry {
    /// Attempts per event, the first included.
    pub attempts: u32,
    /// Pause after the first failure; doubled after each further one.
    pub first_backoff: Duration,
}

impl Default for PublishRetry {
    fn default() -> Self {
        Self {
            attempts: 4,
            first_backoff: Duration::from_millis(100),
        }
    }
}

/// Publishes outbox events to a Dapr pub/sub component, one at a time in outbox order (so
/// order per topic and per task holds), keyed by the record key (the task id) as the Kafka
/// partition key.
#[derive(Debug, Clone)]
pub struct DaprPublisher {
    client: DaprClient,
    pubsub: String,
    retry: PublishRetry,
}

impl DaprPublisher {
    /// Publishes to the `pubsub` component.
    pub fn new(client: DaprClient) -> Self {
        Self {
            client,
            pubsub: PUBSUB.to_owned(),
            retry: PublishRetry::default(),
        }
    }

    /// Publishes to another pub/sub component.
    pub fn with_pubsub(mut self, name: &str) -> Self {
        self.pubsub = name.to_owned();
        self
    }

    /// Another retry policy (tests use a short one).
    pub fn with_retry(mut self, retry: PublishRetry) -> Self {
        self.retry = retry;
        self
    }

    /// Publishes one record, retrying transient failures (sidecar down, 5xx) with backoff.
    pub async fn publish_record(&self, record: &OutboxRecord) -> Result<(), DaprError> {
        let mut backoff = self.retry.first_backoff;
        let mut attempt = 1;
        loop {
            match self.try_publish(record).await {
                Ok(()) => return Ok(()),
                Err(error) if error.is_transient() && attempt < self.retry.attempts.max(1) => {
                    tracing::debug!(%error, attempt, event_id = %record.envelope.event_id, "publish failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn try_publish(&self, record: &OutboxRecord) -> Result<(), DaprError> {
        let path = format!(
            "/v1.0/publish/{}/{}?metadata.partitionKey={}",
            segment(&self.pubsub),
            segment(&record.topic),
            segment(&record.key)
        );
        let body = serde_json::to_vec(&cloud_event(record)).map_err(|error| DaprError::Decode {
            operation: "publish",
            reason: error.to_string(),
        })?;
        let request = self
            .client
            .request(Method::POST, &path)
            .header(reqwest::header::CONTENT_TYPE, CLOUD_EVENT_CONTENT_TYPE)
            .body(body);
        let response = self.client.send("publish", request).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(status_error("publish", response).await)
        }
    }
}

/// The CloudEvent an outbox record is published as: the envelope is its `data`.
pub fn cloud_event(record: &OutboxRecord) -> Value {
    let envelope = &record.envelope;
    json!({
        "specversion": "1.0",
        "id": envelope.event_id,
        "type": envelope.event_type,
        "source": envelope.source,
        "datacontenttype": "application/json",
        "time": envelope.timestamp,
        "data": envelope,
    })
}

#[async_trait]
impl EventBus for DaprPublisher {
    /// Publishes in order; the first event that cannot be published fails the batch, so the
    /// relay keeps every row of it (the ones already out are repeated later, and consumers
    /// deduplicate them by event id).
    async fn publish(&self, events: &[OutboxRecord]) -> Result<(), EngineError> {
        for record in events {
            self.publish_record(record).await?;
        }
        Ok(())
    }
}
