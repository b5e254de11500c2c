//! Event-backbone benchmark of taskstream (issue 3, "Benchmark"): durable append throughput of the
//! embedded log against NATS JetStream, commit-to-effect latency through the running binary, and
//! consumer catch-up rate. Prints figures only; nothing here passes or fails.
//!
//! ```sh
//! cargo build --release -p taskstream      # the binary under test, at the top of the repo
//! cargo run --release --manifest-path benches/events/Cargo.toml -- [--json] [--help]
//! ```
//!
//! JetStream is expected at `nats://127.0.0.1:4222` (`TASKSTREAM_BENCH_NATS_URL`); when it is not
//! reachable its column says so and the rest runs.

mod append;
mod catchup;
mod latency;
mod report;
mod server;

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

/// Event-backbone benchmark: embedded log vs JetStream, commit-to-effect latency, catch-up.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Args {
    /// Records per append run (one run per concurrency level, system and batching).
    #[arg(long, default_value_t = 20_000)]
    pub records: usize,
    /// Records per batched run (more than `--records`, so a batched run lasts long enough).
    #[arg(long, default_value_t = 200_000)]
    pub batch_records: usize,
    /// A run also stops after this many seconds, reporting what it appended by then.
    #[arg(long, default_value_t = 10.0)]
    pub max_run_secs: f64,
    /// Bytes of each record's value (and of each JetStream message payload).
    #[arg(long, default_value_t = 200)]
    pub record_size: usize,
    /// Concurrent producers, each awaiting its acknowledgement before sending again.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8, 64])]
    pub concurrency: Vec<usize>,
    /// Records per append call (embedded) or per publish burst (JetStream) in the batched runs;
    /// 0 skips the batched runs.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// NATS server with JetStream enabled.
    #[arg(
        long,
        env = "TASKSTREAM_BENCH_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
    /// The `taskstream` binary (default: the workspace's target/release/taskstream).
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Target rates of the latency phase, in log records ("events") per second; every task
    /// create writes two records (task.created and task.sync), so creates run at half the rate.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 10_000])]
    pub rates: Vec<u64>,
    /// Seconds of open-loop load at each rate.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Most creates in flight at once (HTTP connections of the keep-alive pool).
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
    /// Records appended to `task-events` behind the stopped server for the catch-up phase.
    #[arg(long, default_value_t = 100_000)]
    pub catchup_records: u64,
    /// Longest wait for the consumers to catch up before reporting partial progress.
    #[arg(long, default_value_t = 300.0)]
    pub catchup_timeout: f64,
    /// Phases to run, from `append`, `latency`, `catchup`.
    #[arg(long, value_delimiter = ',', default_values_t = ["append".to_owned(), "latency".to_owned(), "catchup".to_owned()])]
    pub phases: Vec<String>,
    /// Print one JSON line instead of tables.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    fn runs(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut report = report::Report::new(&args);
    if args.runs("append") {
        report.append = Some(append::run(&args).await?);
        report.print_append(&args);
    }
    if args.runs("latency") || args.runs("catchup") {
        let mut server = server::Server::start(args.bin.as_deref()).await?;
        report.startup_ms = Some(server.ready_after.as_secs_f64() * 1e3);
        if args.runs("latency") {
            let result = latency::run(&args, &server).await;
            report.latency = Some(result?);
            report.print_latency(&args);
        }
        if args.runs("catchup") {
            report.catchup = Some(catchup::run(&args, &mut server).await?);
            report.print_catchup(&args);
        }
        report.server_warnings = server.warnings();
        server.stop().await;
    }
    report.finish(&args)
}
