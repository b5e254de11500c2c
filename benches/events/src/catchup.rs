//! Phase 3: consumer catch-up. With the server stopped, K `task.created` envelopes are appended
//! to `task-events` in its `events.redb`; the server is restarted and `/metrics` polled until the
//! consumers of `task-events` have processed them all (lag 0). The committed offsets are then
//! checked in the log itself with the server stopped again.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;
use taskstream_engine::embedded::log::{EventLog, LogConfig, NewRecord};

use crate::Args;
use crate::server::Server;

const TOPIC: &str = "task-events";
/// The consumer groups that read `task-events`.
pub const GROUPS: [&str; 2] = ["audit", "recurring"];
/// Records per append call when filling the log.
const FILL_BATCH: u64 = 1_000;
/// Users the appended tasks belong to.
const USERS: u64 = 4;
const POLL: Duration = Duration::from_millis(10);

#[derive(Debug, Clone)]
pub struct CatchUp {
    /// Seconds the consumers needed to finish the earlier phases' backlog before the stop;
    /// `None` if they had not within the timeout.
    pub backlog_drained_secs: Option<f64>,
    pub records: u64,
    /// Appending them to the stopped server's log, records per second.
    pub fill_per_sec: f64,
    /// Time from spawn to `/ready` on restart.
    pub restart_ready_ms: f64,
    pub groups: Vec<GroupCatchUp>,
}

#[derive(Debug, Clone)]
pub struct GroupCatchUp {
    pub group: &'static str,
    /// Events processed since restart (from `consumer_processed_total`) when lag reached 0 or
    /// the timeout passed.
    pub processed: u64,
    /// Seconds from spawn to lag 0; `None` if the timeout passed first.
    pub caught_up_secs: Option<f64>,
    /// Processed events per second over the time measured.
    pub per_sec: f64,
    /// Committed offset and end offset read from the log after the final stop.
    pub committed: Option<u64>,
    pub end: u64,
}

pub async fn run(args: &Args, server: &mut Server) -> Result<CatchUp> {
    // Let the consumers finish what earlier phases left, so the restart has exactly K to do.
    let started = Instant::now();
    let backlog_drained_secs = drain(args, server)
        .await?
        .then(|| started.elapsed().as_secs_f64());
    server.terminate().await.context("stopping the server")?;
    let path = server.data_dir().join("events.redb");
    let fill_per_sec = fill(&path, args.catchup_records).await?;

    server.spawn().await.context("restarting the server")?;
    let restart_ready_ms = server.ready_after.as_secs_f64() * 1e3;
    let progress = watch_lag(args, server).await?;
    server.terminate().await.context("stopping the server")?;

    let log = EventLog::open(&path, LogConfig::default()).context("reopening the log")?;
    let end = log.end_offset(TOPIC, 0)?;
    let mut groups = Vec::new();
    for (group, (processed, caught_up)) in GROUPS.into_iter().zip(progress) {
        let secs = caught_up.unwrap_or(args.catchup_timeout);
        groups.push(GroupCatchUp {
            group,
            processed,
            caught_up_secs: caught_up,
            per_sec: processed as f64 / secs.max(f64::EPSILON),
            committed: log.committed_offset(group, TOPIC, 0).await?,
            end,
        });
    }
    drop(log);
    server.spawn().await.context("restarting the server")?;
    Ok(CatchUp {
        backlog_drained_secs,
        records: args.catchup_records,
        fill_per_sec,
        restart_ready_ms,
        groups,
    })
}

/// Waits until every `task-events` consumer reports lag 0 (or has reported nothing, which means
/// it never read a record); `false` on timeout.
async fn drain(args: &Args, server: &Server) -> Result<bool> {
    let deadline = Instant::now() + Duration::from_secs_f64(args.catchup_timeout);
    while Instant::now() < deadline {
        let text = metrics(server).await?;
        let lags = GROUPS.map(|group| metric(&text, "consumer_lag", group));
        if lags.iter().all(|lag| lag.is_none_or(|lag| lag == 0.0)) {
            return Ok(true);
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(false)
}

pub async fn metrics(server: &Server) -> Result<String> {
    Ok(server
        .client
        .get(server.url("/metrics"))
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// Appends `records` valid `task.created` envelopes (keys = task ids) to the stopped server's
/// log; returns records per second of the append.
async fn fill(path: &std::path::Path, records: u64) -> Result<f64> {
    let log = EventLog::open(path, LogConfig::default()).context("opening the server's log")?;
    let started = Instant::now();
    let mut written = 0;
    while written < records {
        let count = FILL_BATCH.min(records - written);
        let batch = (written..written + count).map(task_created).collect();
        log.append(TOPIC, batch).await?;
        written += count;
    }
    Ok(records as f64 / started.elapsed().as_secs_f64().max(f64::EPSILON))
}

/// A `task.created` envelope as the server writes it (contract §3), keyed by its task id.
fn task_created(n: u64) -> NewRecord {
    let now = chrono::Utc::now();
    let at = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let task_id = uuid::Uuid::now_v7().to_string();
    let user_id = format!("catchup-user-{}", n % USERS);
    let envelope = json!({
        "event_id": uuid::Uuid::now_v7(),
        "event_type": "task.created",
        "timestamp": at,
        "user_id": user_id,
        "payload": {
            "id": task_id,
            "user_id": user_id,
            "title": format!("catch-up task {n}"),
            "description": null,
            "completed": false,
            "priority": "medium",
            "tags": [],
            "due_date": null,
            "is_recurring": false,
            "recurrence_rule": null,
            "reminder_offset_minutes": null,
            "parent_task_id": null,
            "created_at": at,
            "updated_at": at,
        },
        "source": "chat-api",
        "specversion": "1.0",
    });
    NewRecord {
        key: Some(task_id.into_bytes()),
        value: envelope.to_string().into_bytes(),
        timestamp_ms: now.timestamp_millis(),
    }
}

/// Polls `/metrics` until each group's lag on `task-events` is 0 with every appended record
/// processed, or the timeout passes. Per group: (processed, seconds from spawn to caught up).
async fn watch_lag(args: &Args, server: &Server) -> Result<Vec<(u64, Option<f64>)>> {
    let mut progress = vec![(0, None); GROUPS.len()];
    let deadline = server.ready_at + Duration::from_secs_f64(args.catchup_timeout);
    while Instant::now() < deadline && progress.iter().any(|(_, done)| done.is_none()) {
        let text = metrics(server).await?;
        let at = server.spawned_at.elapsed().as_secs_f64();
        for (group, (processed, done)) in GROUPS.into_iter().zip(progress.iter_mut()) {
            if done.is_some() {
                continue;
            }
            *processed = metric(&text, "consumer_processed_total", group).unwrap_or(0.0) as u64;
            let lag = metric(&text, "consumer_lag", group);
            if lag == Some(0.0) && *processed >= args.catchup_records {
                *done = Some(at);
            }
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(progress)
}

/// The value of `name{consumer="group",topic="task-events"}` in a Prometheus text exposition.
pub fn metric(text: &str, name: &str, group: &str) -> Option<f64> {
    let consumer = format!("consumer=\"{group}\"");
    let topic = format!("topic=\"{TOPIC}\"");
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{'))
        })
        .filter(|line| line.contains(&consumer) && line.contains(&topic))
        .find_map(|line| line.rsplit(' ').next()?.parse().ok())
}
