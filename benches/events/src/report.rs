//! Tables for people, one JSON line for machines.

use serde_json::{Value, json};

use crate::Args;
use crate::append;
use crate::catchup::CatchUp;
use crate::latency::{RECORDS_PER_CREATE, RateResult};

#[derive(Default)]
pub struct Report {
    pub append: Option<append::Outcome>,
    pub startup_ms: Option<f64>,
    pub latency: Option<Vec<RateResult>>,
    pub catchup: Option<CatchUp>,
    pub server_warnings: Vec<String>,
}

impl Report {
    pub fn new(args: &Args) -> Self {
        if !args.json {
            println!(
                "taskstream event-backbone benchmark ({} CPUs, record size {} B)",
                std::thread::available_parallelism().map_or(0, usize::from),
                args.record_size
            );
        }
        Self::default()
    }

    pub fn print_append(&self, args: &Args) {
        let Some(outcome) = self.append.as_ref().filter(|_| !args.json) else {
            return;
        };
        println!();
        println!("1. Durable append throughput (each producer awaits its ack; records/s)");
        println!(
            "   embedded: EventLog in a temp dir, in-process, fsync per group commit; JetStream: file storage at {}",
            args.nats_url
        );
        println!(
            "   {:>6} {:>11} {:>12} {:>12} {:>9}",
            "batch", "producers", "embedded", "JetStream", "ratio"
        );
        for run in &outcome.runs {
            let embedded = run.embedded.per_sec();
            let (jetstream, ratio) = match run.jetstream {
                Some(rate) => (
                    format!("{:.0}", rate.per_sec()),
                    format!("{:.2}x", embedded / rate.per_sec().max(f64::EPSILON)),
                ),
                None => ("skipped".to_owned(), "-".to_owned()),
            };
            println!(
                "   {:>6} {:>11} {:>12.0} {:>12} {:>9}",
                run.batch, run.concurrency, embedded, jetstream, ratio
            );
        }
        if let Some(reason) = &outcome.jetstream_skipped {
            println!("   JetStream: skipped ({reason})");
        }
    }

    pub fn print_latency(&self, args: &Args) {
        let Some(results) = self.latency.as_ref().filter(|_| !args.json) else {
            return;
        };
        println!();
        println!(
            "2. Commit-to-effect latency: 201 of POST /api/tasks -> its task.sync on GET /api/events (ms)"
        );
        println!(
            "   events = log records; each create writes {RECORDS_PER_CREATE} (task.created + task.sync); {:.0} s open loop per rate; server ready in {:.0} ms",
            args.duration,
            self.startup_ms.unwrap_or(0.0)
        );
        println!(
            "   {:>8} {:>10} {:>8} {:>7} {:>7} {:>7} {:>8} {:>8} {:>7} {:>6} {:>6} {:>9}",
            "target",
            "achieved",
            "creates",
            "p50",
            "p90",
            "p99",
            "max",
            "POSTp50",
            "POSTp99",
            "miss",
            "errs",
            "SSE<201"
        );
        for r in results {
            let [p50, p90, p99, max] = r.latency_ms;
            println!(
                "   {:>8} {:>10.0} {:>8} {:>7.2} {:>7.2} {:>7.2} {:>8.2} {:>8.2} {:>7.2} {:>6} {:>6} {:>9}",
                r.target_events_per_sec,
                r.achieved_creates_per_sec * RECORDS_PER_CREATE as f64,
                r.created,
                p50,
                p90,
                p99,
                max,
                r.post_ms[0],
                r.post_ms[1],
                r.missing,
                r.errors,
                r.before_commit
            );
            if r.late_starts > 0 {
                println!(
                    "   at {}: {} creates started >10 ms behind schedule (in flight capped at {})",
                    r.target_events_per_sec, r.late_starts, args.max_in_flight
                );
            }
            if let Some(lag) = r.audit_lag.filter(|lag| *lag > 0) {
                println!(
                    "   at {}: audit consumer {lag} task-events records behind when the stream had delivered",
                    r.target_events_per_sec
                );
            }
            if r.duplicates > 0 {
                println!(
                    "   at {}: {} duplicate task.sync events",
                    r.target_events_per_sec, r.duplicates
                );
            }
            if let Some(error) = &r.first_error {
                println!("   at {}: first error: {error}", r.target_events_per_sec);
            }
        }
    }

    pub fn print_catchup(&self, args: &Args) {
        let Some(c) = self.catchup.as_ref().filter(|_| !args.json) else {
            return;
        };
        println!();
        println!(
            "3. Consumer catch-up: {} task.created appended to the stopped server's task-events ({:.0} records/s), then restart",
            c.records, c.fill_per_sec
        );
        match c.backlog_drained_secs {
            Some(secs) => println!(
                "   consumers first finished the earlier phases' backlog ({secs:.1} s), then stop"
            ),
            None => println!(
                "   earlier phases' backlog NOT drained before the stop (timeout): it adds to the work below"
            ),
        }
        println!(
            "   restart ready in {:.0} ms; times from spawn",
            c.restart_ready_ms
        );
        println!(
            "   {:>10} {:>10} {:>12} {:>10} {:>22}",
            "consumer", "processed", "caught up s", "events/s", "committed/end offset"
        );
        for g in &c.groups {
            let caught = g.caught_up_secs.map_or_else(
                || format!(">{:.0}", args.catchup_timeout),
                |s| format!("{s:.2}"),
            );
            let committed = g.committed.map_or("none".to_owned(), |o| o.to_string());
            println!(
                "   {:>10} {:>10} {:>12} {:>10.0} {:>22}",
                g.group,
                g.processed,
                caught,
                g.per_sec,
                format!("{committed}/{}", g.end)
            );
        }
    }

    /// Prints the server's warnings (tables) or the whole report (JSON).
    pub fn finish(&self, args: &Args) -> anyhow::Result<()> {
        if args.json {
            println!("{}", serde_json::to_string(&self.to_json(args))?);
            return Ok(());
        }
        println!();
        if self.server_warnings.is_empty() {
            println!("server log: no warnings or errors");
        } else {
            println!(
                "server log: warnings and errors (last {}):",
                self.server_warnings.len()
            );
            for line in &self.server_warnings {
                println!("   {line}");
            }
        }
        Ok(())
    }

    fn to_json(&self, args: &Args) -> Value {
        let append = self.append.as_ref().map(|outcome| {
            let runs: Vec<Value> = outcome
                .runs
                .iter()
                .map(|run| {
                    json!({
                        "batch": run.batch,
                        "producers": run.concurrency,
                        "embedded_records_per_sec": run.embedded.per_sec(),
                        "embedded_records": run.embedded.records,
                        "jetstream_records_per_sec": opt(run.jetstream.map(append::Rate::per_sec)),
                        "jetstream_records": run.jetstream.map(|rate| rate.records),
                        "ratio": opt(run.jetstream.map(|rate| run.embedded.per_sec() / rate.per_sec().max(f64::EPSILON))),
                    })
                })
                .collect();
            json!({ "record_size": args.record_size, "runs": runs, "jetstream_skipped": outcome.jetstream_skipped })
        });
        let latency = self.latency.as_ref().map(|results| {
            results
                .iter()
                .map(|r| {
                    json!({
                        "target_events_per_sec": r.target_events_per_sec,
                        "achieved_events_per_sec": r.achieved_creates_per_sec * RECORDS_PER_CREATE as f64,
                        "creates": r.created,
                        "p50_ms": r.latency_ms[0], "p90_ms": r.latency_ms[1],
                        "p99_ms": r.latency_ms[2], "max_ms": r.latency_ms[3],
                        "post_p50_ms": r.post_ms[0], "post_p99_ms": r.post_ms[1],
                        "missing": r.missing, "duplicates": r.duplicates, "errors": r.errors,
                        "first_error": r.first_error, "late_starts": r.late_starts,
                        "sse_before_201": r.before_commit, "audit_lag_after": r.audit_lag,
                    })
                })
                .collect::<Vec<_>>()
        });
        let catchup = self.catchup.as_ref().map(|c| {
            let groups: Vec<Value> = c
                .groups
                .iter()
                .map(|g| {
                    json!({
                        "consumer": g.group, "processed": g.processed,
                        "caught_up_secs": opt(g.caught_up_secs), "events_per_sec": g.per_sec,
                        "committed_offset": g.committed, "end_offset": g.end,
                    })
                })
                .collect();
            json!({ "backlog_drained_secs": opt(c.backlog_drained_secs), "records": c.records, "fill_records_per_sec": c.fill_per_sec,
                    "restart_ready_ms": c.restart_ready_ms, "consumers": groups })
        });
        json!({
            "append": append,
            "startup_ms": opt(self.startup_ms),
            "latency": latency,
            "catchup": catchup,
            "server_warnings": self.server_warnings,
        })
    }
}

/// A JSON number, or null.
fn opt(value: Option<f64>) -> Value {
    value.map_or(Value::Null, |v| json!(v))
}
