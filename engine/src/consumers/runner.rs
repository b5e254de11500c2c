//! Drives a consumer from the embedded log: reads from its group's committed offset, skips events
//! it already processed, applies effects with retries, dead-letters poison, commits offsets.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::ConsumerSpec;
use super::apply::EffectApplier;
use crate::embedded::log::{EventLog, LogRecord, NewRecord};
use crate::error::EngineError;
use crate::event::{EventEnvelope, Topic};
use crate::ports::StateStore;

/// Records read per round.
const READ_BATCH: usize = 256;
/// Attempts at an event's effects before it is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 5;
/// How long a "processed" mark is kept (contract: 86400 s).
pub const PROCESSED_TTL: Duration = Duration::from_secs(86_400);

/// The value of a consumer's processed mark for `event_id` (stored under
/// [`ConsumerSpec::state_key`] for [`PROCESSED_TTL`]), the same in every transport.
pub fn processed_mark(event_id: uuid::Uuid) -> Vec<u8> {
    serde_json::json!({
        "event_id": event_id,
        "processed_at": crate::time::format_utc(crate::time::now()),
    })
    .to_string()
    .into_bytes()
}

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
    let log_error =
        |error: crate::embedded::log::LogError| EngineError::Unavailable(error.to_string());
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
    handle_batch(spec, topic, &records, ctx).await?;
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

/// One record's work, decided in log order.
enum Work<'a> {
    DeadLetter(&'a LogRecord),
    Apply(&'a LogRecord, EventEnvelope, Vec<super::Effect>),
}

/// Handles a batch so that it costs a few group commits, not a few fsyncs per record:
/// 1. parse, dropping repeats of an event id inside the batch (the relay is at least once, and
///    concurrent copies would both pass the processed check);
/// 2. look up the processed marks concurrently;
/// 3. compute the effects in log order, so their timestamps (e.g. the audit's `received_at`)
///    follow the log;
/// 4. apply effects and set marks concurrently: effects are idempotent and independent (one
///    task's repeated completions are serialised by the store's writer).
async fn handle_batch(
    spec: &ConsumerSpec,
    topic: Topic,
    records: &[LogRecord],
    ctx: &ConsumerContext,
) -> Result<(), EngineError> {
    let labels = [("consumer", spec.group), ("topic", topic.name())];
    let mut seen = std::collections::HashSet::new();
    let mut parsed = Vec::with_capacity(records.len());
    for record in records {
        match serde_json::from_slice::<EventEnvelope>(&record.value) {
            Ok(event) if !seen.insert(event.event_id) => {
                metrics::counter!("consumer_duplicates_total", &labels).increment(1);
            }
            outcome => parsed.push((record, outcome)),
        }
    }
    // One lookup for the batch: the marks of every parsable event, in order.
    let keys: Vec<String> = parsed
        .iter()
        .filter_map(|(_, event)| event.as_ref().ok())
        .map(|event| spec.state_key(event.event_id))
        .collect();
    let mut marks = ctx.state.get_many(&keys).await?.into_iter();
    let processed: Vec<bool> = parsed
        .iter()
        .map(|(_, event)| event.is_ok() && marks.next().flatten().is_some())
        .collect();
    let mut work = Vec::with_capacity(parsed.len());
    for ((record, event), done) in parsed.into_iter().zip(processed) {
        match event {
            Err(error) => {
                tracing::warn!(%error, consumer = spec.group, offset = record.offset, "unparsable event; dead-lettering it");
                work.push(Work::DeadLetter(record));
            }
            Ok(_) if done => metrics::counter!("consumer_duplicates_total", &labels).increment(1),
            Ok(event) => {
                let effects = (spec.handle)(&event, crate::time::now());
                work.push(Work::Apply(record, event, effects));
            }
        }
    }
    let outcomes = futures_util::future::join_all(work.into_iter().map(|item| async move {
        match item {
            Work::DeadLetter(record) => dead_letter(spec, topic, record, ctx).await,
            Work::Apply(record, event, effects) => {
                apply_and_mark(spec, topic, record, &event, effects, ctx).await
            }
        }
    }))
    .await;
    outcomes
        .into_iter()
        .collect::<Result<Vec<()>, EngineError>>()?;
    Ok(())
}

/// Applies one event's effects (retrying, then dead-lettering) and marks it processed.
async fn apply_and_mark(
    spec: &ConsumerSpec,
    topic: Topic,
    record: &LogRecord,
    event: &EventEnvelope,
    effects: Vec<super::Effect>,
    ctx: &ConsumerContext,
) -> Result<(), EngineError> {
    let labels = [("consumer", spec.group), ("topic", topic.name())];
    let mut attempt = 0;
    loop {
        attempt += 1;
        match apply_all(&effects, ctx).await {
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
    ctx.state
        .set(
            &spec.state_key(event.event_id),
            processed_mark(event.event_id),
            Some(PROCESSED_TTL),
        )
        .await?;
    metrics::counter!("consumer_processed_total", &labels).increment(1);
    Ok(())
}

/// Applies effects in order; safe to repeat (each effect is idempotent).
async fn apply_all(effects: &[super::Effect], ctx: &ConsumerContext) -> Result<(), EngineError> {
    for effect in effects {
        ctx.effects.apply(effect.clone()).await?;
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
