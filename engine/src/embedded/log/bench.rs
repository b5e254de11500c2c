//! A durable-append throughput probe for `taskstream bench` and the tests.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{EventLog, LogConfig, LogError, NewRecord, Retention};

/// Topic the benchmark writes to (created when missing).
const BENCH_TOPIC: &str = "bench";

/// Appends `records` records of `record_size` bytes to a `bench` topic of the log at `path`
/// (a redb file; created if missing) from `concurrency` tasks, each sending one record per
/// append and waiting for its durable acknowledgement before the next, as a producer with
/// acks does. Returns durable records per second. Concurrent appends share commits (group
/// commit), so throughput grows with concurrency.
pub async fn bench_append(
    path: &Path,
    records: usize,
    record_size: usize,
    concurrency: usize,
) -> Result<f64, LogError> {
    let log = EventLog::open(path, LogConfig::default())?;
    if log.topics().iter().all(|topic| topic.name != BENCH_TOPIC) {
        let retention = Retention {
            max_age: Duration::from_secs(3600),
            max_bytes: None,
        };
        log.create_topic(BENCH_TOPIC, 1, retention).await?;
    }
    let concurrency = concurrency.max(1);
    let value = vec![b'x'; record_size];
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        });
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let share = records / concurrency + usize::from(worker < records % concurrency);
        let log = log.clone();
        let value = value.clone();
        tasks.spawn(async move {
            for _ in 0..share {
                let record = NewRecord {
                    key: None,
                    value: value.clone(),
                    timestamp_ms: now_ms,
                };
                log.append(BENCH_TOPIC, vec![record]).await?;
            }
            Ok::<(), LogError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|error| LogError::Storage(format!("bench task failed: {error}")))??;
    }
    let elapsed = started.elapsed().as_secs_f64().max(f64::EPSILON);
    Ok(records as f64 / elapsed)
}
