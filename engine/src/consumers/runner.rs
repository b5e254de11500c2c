//! Drives a consumer from the embedded log: reads from its group's committed offset, skips events
//! it already processed, applies effects with retries, dead-letters poison, commits offsets.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::ConsumerSpec;
use super::apply::EffectApplier;
use crate::error::EngineError;
use crate::event::{EventEnvelope, Topic};
use crate::log::{EventLog, LogRecord, NewRecord};
use crate::state::StateStore;

/// Records read per round.
const READ_BATCH: usize = 256;
/// Attempts at an event's effects before it is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 5;
/// How long a "processed" mark is kept (contract: 86400 s).
pub const PROCESSED_TTL: Duration = Duration::from_secs(86_400);

/// The dead-letter topic of a topic.
pub fn dead_letter_topic(topic: Topic) -> String {
    format!("{}-dlq", topic.name())
}

/// Everything a consumer needs at run time.
#[derive(Clone)]
pub struct ConsumerContext {
    pub log: EventLog,
    pub state: Arc<dyn StateStore>,
    pub effects: EffectApplier,
}

/// Runs one consumer on one topic partition until `shutdown` turns true.
pub async fn run(
    spec: ConsumerSpec,
    topic: Topic,
    partition: u32,
    ctx: ConsumerContext,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        if *shutdown.borrow() {
            break;
        }
        match consume_available(&spec, topic, partition, &ctx).await {
            Ok(Some(next)) => {
                backoff = Duration::from_millis(50);
                tokio::select! {
                    waited = ctx.log.wait_beyond(topic.name(), partition, next) => {
                        if let Err(error) = waited {
                            tracing::warn!(%error, consumer = spec.group, "waiting on the log failed");
                            tokio::time::sleep(backoff).await;
                        }
                    }
                    _ = shutdown.changed() => {}
                }
            }
            Ok(None) => backoff = Duration::from_millis(50),
            Err(error) => {
                tracing::warn!(%error, consumer = spec.group, topic = topic.name(), "consumer failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Consumes what is in the log now. `Some(next)` when caught up (next offset to wait for),
/// `None` when there may be more to read at once.
async fn consume_available(
    spec: &ConsumerSpec,
    topic: Topic,
    partition: u32,
    ctx: &ConsumerContext,
) -> Result<Option<u64>, EngineError> {
    let log_error = |error: crate::log::LogError| EngineError::Unavailable(error.to_string());
    let start = ctx
        .log
        .start_offset(topic.name(), partition)
        .map_err(log_error)?;
    let committed = ctx
        .log
        .committed_offset(spec.group, topic.name(), partition)
        .await
        .map_err(log_error)?;
    let from = committed.unwrap_or(start).max(start);
    let records = ctx
        .log
        .read(topic.name(), partition, from, READ_BATCH)
        .await
        .map_err(log_error)?;
    let Some(last) = records.last().map(|r| r.offset) else {
        return Ok(Some(from));
    };
    // Records are handled concurrently: their effects and marks then share the stores' group
    // commits instead of paying one fsync each. Effects are idempotent and independent (one
    // task's repeated completions are serialised by the store's writer), so order does not
    // matter. A repeat of an event id within the batch (the relay is at least once) is dropped
    // here, since concurrent copies would both pass the processed check.
    let mut seen = std::collections::HashSet::new();
    let mut parsed = Vec::with_capacity(records.len());
    for record in &records {
        match serde_json::from_slice::<EventEnvelope>(&record.value) {
            Ok(event) if !seen.insert(event.event_id) => {
                metrics::counter!("consumer_duplicates_total", "consumer" => spec.group, "topic" => topic.name()).increment(1);
            }
            outcome => parsed.push((record, outcome.map_err(|error| error.to_string()))),
        }
    }
    let outcomes = futures_util::future::join_all(
        parsed
            .into_iter()
            .map(|(record, event)| handle_record(spec, topic, record, event, ctx)),
    )
    .await;
    outcomes
        .into_iter()
        .collect::<Result<Vec<()>, EngineError>>()?;
    let next = last + 1;
    ctx.log
        .commit_offset(spec.group, topic.name(), partition, next)
        .await
        .map_err(log_error)?;
    let lag = ctx
        .log
        .end_offset(topic.name(), partition)
        .map_err(log_error)?
        .saturating_sub(next);
    metrics::gauge!("consumer_lag", "consumer" => spec.group, "topic" => topic.name())
        .set(lag as f64);
    Ok((records.len() < READ_BATCH).then_some(next))
}

async fn handle_record(
    spec: &ConsumerSpec,
    topic: Topic,
    record: &LogRecord,
    event: Result<EventEnvelope, String>,
    ctx: &ConsumerContext,
) -> Result<(), EngineError> {
    let labels = [("consumer", spec.group), ("topic", topic.name())];
    let event = match event {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, consumer = spec.group, offset = record.offset, "unparsable event; dead-lettering it");
            return dead_letter(spec, topic, record, ctx).await;
        }
    };
    let key = spec.state_key(event.event_id);
    if ctx.state.get(&key).await?.is_some() {
        metrics::counter!("consumer_duplicates_total", &labels).increment(1);
        return Ok(());
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        match apply_all(spec, &event, ctx).await {
            Ok(()) => break,
            Err(error) if attempt < MAX_ATTEMPTS => {
                metrics::counter!("consumer_retries_total", &labels).increment(1);
                tracing::warn!(%error, consumer = spec.group, attempt, event_id = %event.event_id, "effect failed; retrying");
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
            Err(error) => {
                tracing::error!(%error, consumer = spec.group, event_id = %event.event_id, "effect keeps failing; dead-lettering the event");
                return dead_letter(spec, topic, record, ctx).await;
            }
        }
    }
    let mark = serde_json::json!({ "event_id": event.event_id, "processed_at": crate::time::format_utc(crate::time::now()) });
    ctx.state
        .set(&key, mark.to_string().into_bytes(), Some(PROCESSED_TTL))
        .await?;
    metrics::counter!("consumer_processed_total", &labels).increment(1);
    Ok(())
}

async fn apply_all(
    spec: &ConsumerSpec,
    event: &EventEnvelope,
    ctx: &ConsumerContext,
) -> Result<(), EngineError> {
    for effect in (spec.handle)(event, crate::time::now()) {
        ctx.effects.apply(effect).await?;
    }
    Ok(())
}

async fn dead_letter(
    spec: &ConsumerSpec,
    topic: Topic,
    record: &LogRecord,
    ctx: &ConsumerContext,
) -> Result<(), EngineError> {
    let dlq = dead_letter_topic(topic);
    ctx.log
        .append(
            &dlq,
            vec![NewRecord {
                key: record.key.clone(),
                value: record.value.clone(),
                timestamp_ms: record.timestamp_ms,
            }],
        )
        .await
        .map_err(|error| EngineError::Unavailable(error.to_string()))?;
    metrics::counter!("consumer_dead_lettered_total", "consumer" => spec.group, "topic" => topic.name()).increment(1);
    Ok(())
}
