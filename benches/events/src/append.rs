//! Phase 1: durable append throughput, the embedded log against NATS JetStream (file storage),
//! same record size, same producers, each producer awaiting its acknowledgement.

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_nats::jetstream::{self, stream};
use futures_util::future::try_join_all;
use taskstream_engine::embedded::log::{Bytes, EventLog, LogConfig, NewRecord};
use tokio::task::JoinSet;

use crate::Args;

/// The topic the embedded runs append to (it exists from first start).
const TOPIC: &str = "task-events";

/// One run: a system, a producer count and a batch size.
#[derive(Debug, Clone)]
pub struct Run {
    pub concurrency: usize,
    /// Records per append call or publish burst.
    pub batch: usize,
    pub embedded: Rate,
    /// `None` when JetStream was not reachable.
    pub jetstream: Option<Rate>,
}

#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub records: u64,
    pub secs: f64,
}

impl Rate {
    pub fn per_sec(self) -> f64 {
        self.records as f64 / self.secs.max(f64::EPSILON)
    }
}

pub struct Outcome {
    pub runs: Vec<Run>,
    /// Why JetStream was skipped, if it was.
    pub jetstream_skipped: Option<String>,
}

/// Producers share a budget of records and a deadline; each takes `batch` records at a time.
#[derive(Clone)]
struct Budget {
    records: usize,
    batch: usize,
    producers: usize,
    deadline: Instant,
}

impl Budget {
    fn new(args: &Args, producers: usize, batch: usize) -> Self {
        Self {
            records: if batch > 1 {
                args.batch_records
            } else {
                args.records
            },
            batch,
            producers,
            deadline: Instant::now() + Duration::from_secs_f64(args.max_run_secs),
        }
    }

    /// Bursts producer `index` sends: its share of the records, in bursts of `batch`.
    fn bursts(&self, index: usize) -> Vec<usize> {
        let share =
            self.records / self.producers + usize::from(index < self.records % self.producers);
        let mut bursts = vec![self.batch; share / self.batch];
        let rest = share % self.batch;
        if rest > 0 {
            bursts.push(rest);
        }
        bursts
    }
}

pub async fn run(args: &Args) -> Result<Outcome> {
    let (nats, jetstream_skipped) = match connect_nats(&args.nats_url).await {
        Ok(context) => (Some(context), None),
        Err(error) => (
            None,
            Some(format!("not reachable at {}: {error:#}", args.nats_url)),
        ),
    };
    let mut batches = vec![1];
    if args.batch > 1 {
        batches.push(args.batch);
    }
    let mut runs = Vec::new();
    for &batch in &batches {
        for &concurrency in &args.concurrency {
            let concurrency = concurrency.max(1);
            let embedded = embedded(args, concurrency, batch).await?;
            let jetstream = match &nats {
                Some(context) => Some(jetstream_run(args, context, concurrency, batch).await?),
                None => None,
            };
            runs.push(Run {
                concurrency,
                batch,
                embedded,
                jetstream,
            });
        }
    }
    Ok(Outcome {
        runs,
        jetstream_skipped,
    })
}

/// The embedded log in a fresh temporary directory, appended to in-process.
async fn embedded(args: &Args, producers: usize, batch: usize) -> Result<Rate> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let log = EventLog::open(&dir.path().join("events.redb"), LogConfig::default())
        .context("opening the embedded log")?;
    let value = vec![b'x'; args.record_size];
    let budget = Budget::new(args, producers, batch);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for index in 0..producers {
        let (log, value, budget) = (log.clone(), value.clone(), budget.clone());
        tasks.spawn(async move {
            let mut sent = 0u64;
            for burst in budget.bursts(index) {
                if Instant::now() >= budget.deadline {
                    break;
                }
                let now_ms = chrono::Utc::now().timestamp_millis();
                let records = (0..burst)
                    .map(|_| NewRecord {
                        key: None,
                        value: value.clone(),
                        timestamp_ms: now_ms,
                    })
                    .collect();
                log.append(TOPIC, records).await?;
                sent += burst as u64;
            }
            anyhow::Ok(sent)
        });
    }
    let records = join_counts(tasks).await?;
    let secs = started.elapsed().as_secs_f64();
    let end = log.end_offset(TOPIC, 0)?;
    anyhow::ensure!(
        end == records,
        "log holds {end} records, producers sent {records}"
    );
    Ok(Rate { records, secs })
}

/// Connects and checks that JetStream answers (its account info request, parsed loosely so
/// older servers' replies are accepted).
async fn connect_nats(url: &str) -> Result<jetstream::Context> {
    let options = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(2));
    let client = tokio::time::timeout(Duration::from_secs(3), options.connect(url))
        .await
        .context("timed out")??;
    let reply = client
        .request("$JS.API.INFO", Bytes::new())
        .await
        .context("no JetStream API")?;
    let info: serde_json::Value = serde_json::from_slice(&reply.payload)?;
    if let Some(error) = info.get("error") {
        anyhow::bail!("JetStream is not enabled: {error}");
    }
    Ok(jetstream::new(client))
}

/// A fresh file-storage stream; each producer publishes `batch` messages then awaits their acks.
async fn jetstream_run(
    args: &Args,
    context: &jetstream::Context,
    producers: usize,
    batch: usize,
) -> Result<Rate> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("BENCH_{id}");
    let subject = format!("bench.{id}.records");
    context
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("bench.{id}.>")],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .context("creating the JetStream stream")?;
    let result = jetstream_publish(args, context, &subject, producers, batch).await;
    let deleted = context.delete_stream(&name).await;
    let rate = result?;
    deleted.context("deleting the JetStream stream")?;
    Ok(rate)
}

async fn jetstream_publish(
    args: &Args,
    context: &jetstream::Context,
    subject: &str,
    producers: usize,
    batch: usize,
) -> Result<Rate> {
    // The engine re-exports the `bytes` crate's Bytes, the payload type of async-nats.
    let payload = Bytes::from(vec![b'x'; args.record_size]);
    let budget = Budget::new(args, producers, batch);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for index in 0..producers {
        let (context, payload, budget) = (context.clone(), payload.clone(), budget.clone());
        let subject = subject.to_owned();
        tasks.spawn(async move {
            let mut sent = 0u64;
            for burst in budget.bursts(index) {
                if Instant::now() >= budget.deadline {
                    break;
                }
                let mut acks = Vec::with_capacity(burst);
                for _ in 0..burst {
                    acks.push(context.publish(subject.clone(), payload.clone()).await?);
                }
                try_join_all(acks.into_iter().map(IntoFuture::into_future)).await?;
                sent += burst as u64;
            }
            anyhow::Ok(sent)
        });
    }
    let records = join_counts(tasks).await?;
    Ok(Rate {
        records,
        secs: started.elapsed().as_secs_f64(),
    })
}

async fn join_counts(mut tasks: JoinSet<Result<u64>>) -> Result<u64> {
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        total += done.context("producer task panicked")??;
    }
    Ok(total)
}
