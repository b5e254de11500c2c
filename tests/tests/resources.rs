//! What the server holds while it works: threads stay bounded under a burst of writes (every
//! blocking read of the store, the log and the consumers' state waits for one of a few permits
//! instead of taking a thread of its own), and they are the same after the burst.
//!
//! Memory itself is measured by `taskstream bench` (RSS at 100,000 and 1,000,000 tasks and after
//! a 1,024-connection burst), not asserted here: it depends on the machine.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use taskstream_tests::TestServer;

/// A value from /proc/<pid>/status, e.g. `Threads`.
fn status_field(pid: u32, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
}

/// Threads the server may have at most: the runtime's workers and the named store, log,
/// state, checkpoint and scheduler threads, plus the bounded blocking reads (4 store readers,
/// 8 log reads, 4 state reads, 2 password hashes) with room to spare. Before the permits, a
/// consumer batch asked the state store once per event, each on a blocking thread of its own:
/// 273 threads after a fill of 100,000 tasks.
const MAX_THREADS: u64 = 48;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn threads_stay_bounded_under_a_burst_of_writes() {
    let srv = TestServer::start_with(&["--task-writes-per-second", "0"], &[]).await;
    let pid = srv.pid();
    let idle = status_field(pid, "Threads");
    let peak = Arc::new(AtomicU64::new(idle));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(status_field(pid, "Threads"), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // 64 writers over 16 users, with reads in between: the consumers (audit, notifications,
    // recurring, live updates) read the log and their marks in batches meanwhile.
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..64 {
        let user = srv.user(&format!("burst-{}", w % 16));
        writers.spawn(async move {
            for n in 0..25 {
                let body = json!({ "title": format!("w{w} n{n}"), "tags": ["burst"],
                                   "due_date": "2031-01-01T09:00:00Z", "reminder_offset_minutes": 30 });
                user.create(body).await;
                if n % 5 == 0 {
                    user.list("limit=20").await;
                }
            }
        });
    }
    while let Some(joined) = writers.join_next().await {
        joined.unwrap();
    }
    // Every event reached the audit trail: the consumers did their share of the work.
    let user = srv.user("burst-0");
    let audited = taskstream_tests::eventually(
        "the burst in the audit trail",
        Duration::from_secs(60),
        || async {
            let rows = user
                .get("/api/audit?event_type=task.created&limit=500")
                .await;
            let n = rows.json.as_array().map_or(0, Vec::len);
            if n >= 100 {
                Ok(n)
            } else {
                Err(format!("{n} of 100 rows"))
            }
        },
    )
    .await;
    assert_eq!(audited, 100, "4 writers x 25 creates of burst-0");
    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let peak = peak.load(Ordering::Relaxed);
    println!("threads: {idle} idle, {peak} at most during the burst");
    assert!(
        peak <= MAX_THREADS,
        "{peak} threads during a burst of 1,600 creates (idle: {idle}); blocking work is unbounded somewhere"
    );
}
