//! Benchmark of taskstream's Fluvio-compatible server (issue 4, "Benchmark") with the official
//! `fluvio` Rust client against the running binary: batched produce with acks, consume from the
//! beginning, produce-to-consume latency at an open-loop rate; and the same produce/consume
//! workload against NATS JetStream with file storage. Prints figures only; nothing here passes
//! or fails.
//!
//! ```sh
//! cargo build --release -p taskstream      # the binary under test, at the top of the repo
//! cargo run --release --manifest-path benches/fluvio/Cargo.toml -- [--help]
//! ```
//!
//! JetStream is expected at `nats://127.0.0.1:4222` (`TASKSTREAM_BENCH_NATS_URL`); when it is not
//! reachable the report says so and the rest runs.

mod client;
mod jetstream;
mod server;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;

/// Fluvio-compatible server benchmark: produce, consume, latency, and JetStream for comparison.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Record sizes in bytes, one produce/consume run each.
    #[arg(long, value_delimiter = ',', default_values_t = [100, 1024])]
    sizes: Vec<usize>,
    /// Bytes produced per run (records = this / size, so each run moves the same data).
    #[arg(long, default_value_t = 100_000_000)]
    bytes_per_run: usize,
    /// The producer's batch size in bytes (`TopicProducerConfigBuilder::batch_size`); JetStream
    /// publishes bursts of as many records and awaits their acks per burst.
    #[arg(long, default_value_t = 65_536)]
    batch_bytes: usize,
    /// The producer's linger in milliseconds in the throughput runs.
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// Records per second of the open-loop latency run.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Seconds of the latency run.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Record size of the latency run (at least 8: the send timestamp).
    #[arg(long, default_value_t = 100)]
    latency_size: usize,
    /// The producer's linger in milliseconds in the latency run.
    #[arg(long, default_value_t = 0)]
    latency_linger_ms: u64,
    /// NATS server with JetStream enabled.
    #[arg(
        long,
        env = "TASKSTREAM_BENCH_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    nats_url: String,
    /// Skip the JetStream comparison.
    #[arg(long)]
    no_jetstream: bool,
    /// The `taskstream` binary (default: the workspace's target/release/taskstream).
    #[arg(long)]
    bin: Option<PathBuf>,
}

/// Records (and value bytes) moved in some time.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub records: usize,
    pub bytes: usize,
    pub elapsed: Duration,
}

impl Rate {
    pub fn new(records: usize, size: usize, elapsed: Duration) -> Self {
        Self {
            records,
            bytes: records * size,
            elapsed,
        }
    }

    fn per_sec(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }

    fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
}

pub struct Latency {
    pub records: usize,
    pub achieved_rate: f64,
    /// Send to receipt by the tailing consumer.
    pub receipt: Percentiles,
    /// Send to the producer's acknowledgement.
    pub ack: Percentiles,
}

pub struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Percentiles {
    /// Of samples in nanoseconds (at least one).
    pub fn of(mut samples: Vec<u64>) -> Self {
        samples.sort_unstable();
        let at = |q: f64| {
            let index = ((samples.len().saturating_sub(1)) as f64 * q) as usize;
            Duration::from_nanos(samples.get(index).copied().unwrap_or_default())
        };
        Self {
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
        }
    }

    fn show(&self) -> String {
        let ms = |duration: Duration| duration.as_secs_f64() * 1e3;
        format!(
            "p50 {:.3} ms   p99 {:.3} ms   max {:.3} ms",
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        )
    }
}

struct Row {
    size: usize,
    records: usize,
    produce: Rate,
    consume: Rate,
    jetstream: Option<(Rate, Rate)>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.latency_size >= 8, "--latency-size must be at least 8");
    let server = server::Server::start(args.bin.as_deref()).await?;
    let client = client::Client::connect(&server.sc_addr).await?;
    let nats = if args.no_jetstream {
        Err("skipped (--no-jetstream)".to_owned())
    } else {
        jetstream::connect(&args.nats_url)
            .await
            .map_err(|error| format!("unreachable at {}: {error:#}", args.nats_url))
    };
    if let Err(reason) = &nats {
        eprintln!("JetStream {reason}; continuing without it");
    }
    let run_id = std::process::id();
    let linger = Duration::from_millis(args.linger_ms);

    let mut rows = Vec::new();
    for &size in &args.sizes {
        let records = (args.bytes_per_run / size).max(1);
        let topic = format!("bench-{size}");
        eprintln!("fluvio: {records} records of {size} B ...");
        client.create_topic(&topic).await?;
        let produce = client
            .produce(&topic, records, size, args.batch_bytes, linger)
            .await?;
        let consume = client.consume(&topic, records).await?;
        let jetstream = match &nats {
            Ok(context) => {
                eprintln!("jetstream: {records} records of {size} B ...");
                let burst = (args.batch_bytes / size).max(1);
                let name = format!("BENCH_FLUVIO_{run_id}_{size}");
                Some(jetstream::run(context, &name, records, size, burst).await?)
            }
            Err(_) => None,
        };
        rows.push(Row {
            size,
            records,
            produce,
            consume,
            jetstream,
        });
    }

    eprintln!(
        "latency: {} records/s for {} s ...",
        args.rate, args.duration
    );
    client.create_topic("bench-latency").await?;
    let latency = client
        .latency(
            "bench-latency",
            args.rate,
            Duration::from_secs_f64(args.duration),
            args.latency_size,
            args.batch_bytes,
            Duration::from_millis(args.latency_linger_ms),
        )
        .await?;

    report(&args, &rows, &latency, nats.as_ref().err());
    let warnings = server.warnings();
    if !warnings.is_empty() {
        println!("\nserver warnings:\n{}", warnings.join("\n"));
    }
    Ok(())
}

fn report(args: &Args, rows: &[Row], latency: &Latency, nats_skipped: Option<&String>) {
    println!(
        "taskstream Fluvio server, official fluvio 0.50 client; one producer, acks on, batch {} B, linger {} ms",
        args.batch_bytes, args.linger_ms
    );
    println!("MB = 10^6 bytes of record values\n");
    println!(
        "{:>6} {:>9} | {:>22} | {:>22} | {:>22} | {:>22} | {:>7}",
        "size",
        "records",
        "fluvio produce",
        "fluvio consume",
        "jetstream publish",
        "jetstream consume",
        "produce"
    );
    println!(
        "{:>6} {:>9} | {:>22} | {:>22} | {:>22} | {:>22} | {:>7}",
        "B", "", "rec/s    MB/s", "rec/s    MB/s", "rec/s    MB/s", "rec/s    MB/s", "ratio"
    );
    let cell = |rate: &Rate| format!("{:>11.0} {:>8.1}", rate.per_sec(), rate.mb_per_sec());
    for row in rows {
        let (js_produce, js_consume, ratio) = match &row.jetstream {
            Some((produce, consume)) => (
                cell(produce),
                cell(consume),
                format!("{:.2}x", row.produce.per_sec() / produce.per_sec()),
            ),
            None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
        };
        println!(
            "{:>6} {:>9} | {} | {} | {:>22} | {:>22} | {:>7}",
            row.size,
            row.records,
            cell(&row.produce),
            cell(&row.consume),
            js_produce,
            js_consume,
            ratio
        );
    }
    if let Some(reason) = nats_skipped {
        println!("JetStream: {reason}");
    } else {
        println!(
            "JetStream: file storage, bursts of batch/size messages, acks awaited per burst; \
             it acks before fsync (sync every 2 min by default), the embedded log fsyncs every commit"
        );
    }
    println!(
        "\nproduce-to-consume latency, {} B records at {} records/s open loop (achieved {:.0}/s), linger {} ms, {} samples:",
        args.latency_size,
        args.rate,
        latency.achieved_rate,
        args.latency_linger_ms,
        latency.records
    );
    println!("  send to consumer receipt: {}", latency.receipt.show());
    println!("  send to producer ack:     {}", latency.ack.show());
    println!("\ntargets (issue 4): produce >= 500,000 records/s, >= 2x JetStream, p99 < 5 ms");
}
