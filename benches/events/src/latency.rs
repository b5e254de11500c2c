//! Phase 2: commit-to-effect latency through the running binary. One user listens on
//! `GET /api/events` (SSE) while tasks are created for it at a fixed open-loop rate; a task's
//! latency is the arrival of its `task.sync` (`action: created`) on the stream minus the arrival
//! of its `201 Created` (the HTTP commit).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;

use crate::Args;
use crate::server::Server;

/// How long to wait after the last create for the stream to deliver what is missing.
const DRAIN: Duration = Duration::from_secs(5);
/// Log records each create writes (task.created on task-events, task.sync on task-updates).
pub const RECORDS_PER_CREATE: u64 = 2;

#[derive(Debug, Clone)]
pub struct RateResult {
    /// Target log records (events) per second.
    pub target_events_per_sec: u64,
    /// Creates answered 201, per second of load.
    pub achieved_creates_per_sec: f64,
    pub created: u64,
    /// Creates that failed or answered anything but 201.
    pub errors: u64,
    /// First error seen, if any.
    pub first_error: Option<String>,
    /// Creates whose start fell behind schedule by more than 10 ms (not enough in flight).
    pub late_starts: u64,
    /// The audit consumer's lag on `task-events` once the stream has delivered (its effect is a
    /// row per event; it may fall behind while the live stream keeps up).
    pub audit_lag: Option<u64>,
    /// Created tasks whose `task.sync` never arrived.
    pub missing: u64,
    /// `task.sync` events seen more than once for one task.
    pub duplicates: u64,
    /// Events that arrived before the 201 (latency below zero; counted in the percentiles).
    pub before_commit: u64,
    /// Commit-to-effect latency percentiles, milliseconds: p50, p90, p99, max.
    pub latency_ms: [f64; 4],
    /// POST round trip percentiles, milliseconds: p50, p99.
    pub post_ms: [f64; 2],
}

pub async fn run(args: &Args, server: &Server) -> Result<Vec<RateResult>> {
    let mut results = Vec::new();
    for &rate in &args.rates {
        results.push(one_rate(args, server, rate).await?);
    }
    Ok(results)
}

async fn one_rate(args: &Args, server: &Server, events_per_sec: u64) -> Result<RateResult> {
    let user = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let bearer = server.bearer(&user)?;
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let (open_tx, open_rx) = oneshot::channel();
    let listener = tokio::spawn(listen(
        server.client.clone(),
        server.url("/api/events"),
        bearer.clone(),
        open_tx,
        seen_tx,
    ));
    // The stream's start position is fixed before its headers are sent.
    if !matches!(
        tokio::time::timeout(Duration::from_secs(5), open_rx).await,
        Ok(Ok(()))
    ) {
        listener.abort();
        match listener.await {
            Ok(Err(error)) => return Err(error.context("opening GET /api/events")),
            _ => bail!("GET /api/events did not open within 5 s"),
        }
    }

    let creates_per_sec = (events_per_sec as f64 / RECORDS_PER_CREATE as f64).max(1.0);
    let total = (creates_per_sec * args.duration).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / creates_per_sec);
    let permits = Arc::new(Semaphore::new(args.max_in_flight.max(1)));
    let url = Arc::new(server.url("/api/tasks"));
    let bearer = Arc::new(bearer);
    let mut posts = JoinSet::new();
    let mut late_starts = 0;
    let started = Instant::now();
    for n in 0..total {
        let due = started + interval.mul_f64(n as f64);
        tokio::time::sleep_until(due.into()).await;
        let permit = Arc::clone(&permits).acquire_owned().await?;
        if due.elapsed() > Duration::from_millis(10) {
            late_starts += 1;
        }
        let (client, url, bearer) = (server.client.clone(), Arc::clone(&url), Arc::clone(&bearer));
        posts.spawn(async move {
            let outcome = create(&client, &url, &bearer, n).await;
            drop(permit);
            outcome
        });
    }
    let mut committed = HashMap::new();
    let mut post_ms = Vec::new();
    let (mut errors, mut first_error) = (0, None);
    while let Some(done) = posts.join_next().await {
        match done.context("create task panicked")? {
            Ok((id, sent, answered)) => {
                post_ms.push((answered - sent).as_secs_f64() * 1e3);
                committed.insert(id, answered);
            }
            Err(error) => {
                errors += 1;
                first_error.get_or_insert(format!("{error:#}"));
            }
        }
    }
    let load_secs = started.elapsed().as_secs_f64();

    // Collect arrivals until every committed task has one or the drain time is over.
    let mut arrived: HashMap<String, Instant> = HashMap::new();
    let mut duplicates = 0;
    let mut waiting = committed.len();
    let deadline = tokio::time::Instant::now() + DRAIN;
    loop {
        let next = if waiting == 0 {
            seen_rx.try_recv().ok()
        } else {
            tokio::time::timeout_at(deadline, seen_rx.recv())
                .await
                .ok()
                .flatten()
        };
        let Some((id, at)) = next else { break };
        match arrived.entry(id) {
            Entry::Occupied(_) => duplicates += 1,
            Entry::Vacant(first) => {
                if committed.contains_key(first.key()) {
                    waiting -= 1;
                }
                first.insert(at);
            }
        }
    }
    listener.abort();
    let text = crate::catchup::metrics(server).await?;
    let audit_lag = crate::catchup::metric(&text, "consumer_lag", "audit").map(|lag| lag as u64);

    let mut latencies = Vec::with_capacity(committed.len());
    let mut missing = 0;
    let mut before_commit = 0;
    for (id, answered) in &committed {
        match arrived.get(id) {
            Some(at) => {
                let ms = if at >= answered {
                    (*at - *answered).as_secs_f64() * 1e3
                } else {
                    before_commit += 1;
                    -(*answered - *at).as_secs_f64() * 1e3
                };
                latencies.push(ms);
            }
            None => missing += 1,
        }
    }
    let created = committed.len() as u64;
    Ok(RateResult {
        target_events_per_sec: events_per_sec,
        achieved_creates_per_sec: created as f64 / load_secs.max(f64::EPSILON),
        created,
        errors,
        first_error,
        late_starts,
        audit_lag,
        missing,
        duplicates,
        before_commit,
        latency_ms: percentiles(&mut latencies, [50.0, 90.0, 99.0, 100.0]),
        post_ms: percentiles(&mut post_ms, [50.0, 99.0]),
    })
}

/// POSTs one task; returns its id, when the request started and when the 201 arrived.
async fn create(
    client: &reqwest::Client,
    url: &str,
    bearer: &str,
    n: u64,
) -> Result<(String, Instant, Instant)> {
    let sent = Instant::now();
    let response = client
        .post(url)
        .header("authorization", bearer)
        .json(&json!({ "title": format!("bench task {n}") }))
        .timeout(Duration::from_secs(30))
        .send()
        .await?;
    let answered = Instant::now();
    let status = response.status();
    if status != reqwest::StatusCode::CREATED {
        let body = response.text().await.unwrap_or_default();
        bail!("POST /api/tasks answered {status}: {body}");
    }
    let task: Value = response.json().await?;
    let id = task
        .get("id")
        .and_then(Value::as_str)
        .context("201 without an id")?;
    Ok((id.to_owned(), sent, answered))
}

/// Reads the SSE stream and sends (task id, arrival) for each `task.sync` with `action: created`.
async fn listen(
    client: reqwest::Client,
    url: String,
    bearer: String,
    open: oneshot::Sender<()>,
    seen: mpsc::UnboundedSender<(String, Instant)>,
) -> Result<()> {
    let mut response = client
        .get(&url)
        .header("authorization", &bearer)
        .header("accept", "text/event-stream")
        .send()
        .await?;
    if response.status() != reqwest::StatusCode::OK {
        bail!("GET /api/events answered {}", response.status());
    }
    let _ = open.send(());
    let mut buffer = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let at = Instant::now();
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|&byte| byte == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            if let Some(id) = created_sync(&line)
                && seen.send((id, at)).is_err()
            {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The task id of a `data:` line holding a `task.sync` event with `action: created`.
fn created_sync(line: &[u8]) -> Option<String> {
    let data = std::str::from_utf8(line)
        .ok()?
        .strip_prefix("data:")?
        .trim();
    let event: Value = serde_json::from_str(data).ok()?;
    if event.get("event_type")?.as_str()? != "task.sync" {
        return None;
    }
    let payload = event.get("payload")?;
    if payload.get("action")?.as_str()? != "created" {
        return None;
    }
    Some(payload.get("task_id")?.as_str()?.to_owned())
}

/// Nearest-rank percentiles of `values` (sorted in place); zeros when empty.
pub fn percentiles<const N: usize>(values: &mut [f64], ranks: [f64; N]) -> [f64; N] {
    values.sort_by(f64::total_cmp);
    ranks.map(|rank| {
        if values.is_empty() {
            return 0.0;
        }
        let index = ((rank / 100.0) * values.len() as f64).ceil() as usize;
        values[index.clamp(1, values.len()) - 1]
    })
}
