//! The official `fluvio` Rust client against the running binary: batched produce with acks,
//! consume from the beginning, and produce-to-consume latency under an open-loop rate.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fluvio::consumer::ConsumerConfigExt;
use fluvio::metadata::topic::TopicSpec;
use fluvio::{
    Fluvio, FluvioAdmin, FluvioClusterConfig, Offset, RecordKey, TopicProducerConfigBuilder,
};
use futures_util::StreamExt;

use crate::{Latency, Percentiles, Rate};

/// Longest wait for one record or one client call before the phase gives up.
const PATIENCE: Duration = Duration::from_secs(30);

pub struct Client {
    fluvio: Fluvio,
    admin: FluvioAdmin,
}

impl Client {
    pub async fn connect(sc_addr: &str) -> Result<Self> {
        let config = FluvioClusterConfig::new(sc_addr);
        let fluvio = Fluvio::connect_with_config(&config)
            .await
            .context("connecting the fluvio client")?;
        let admin = FluvioAdmin::connect_with_config(&config)
            .await
            .context("connecting the fluvio admin")?;
        Ok(Self { fluvio, admin })
    }

    /// A fresh single-partition topic, once the client's metadata shows it: the create reply
    /// (admin connection) can overtake the topic watch update (client connection).
    pub async fn create_topic(&self, name: &str) -> Result<()> {
        self.admin
            .create(name.to_owned(), false, TopicSpec::new_computed(1, 1, None))
            .await
            .with_context(|| format!("creating topic {name}"))?;
        let started = Instant::now();
        loop {
            match self.fluvio.topic_producer(name).await {
                Ok(_) => return Ok(()),
                Err(error) if started.elapsed() > PATIENCE => {
                    bail!("topic {name} still not visible to the client: {error}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    /// Sends `count` records of `size` bytes through one producer batching by `batch_bytes` and
    /// `linger`, then flushes and waits for every record's acknowledgement.
    pub async fn produce(
        &self,
        topic: &str,
        count: usize,
        size: usize,
        batch_bytes: usize,
        linger: Duration,
    ) -> Result<Rate> {
        let config = TopicProducerConfigBuilder::default()
            .batch_size(batch_bytes)
            .linger(linger)
            .build()?;
        let producer = self
            .fluvio
            .topic_producer_with_config(topic, config)
            .await?;
        let value = vec![b'x'; size];
        let started = Instant::now();
        let mut outputs = Vec::with_capacity(count);
        for _ in 0..count {
            outputs.push(producer.send(RecordKey::NULL, value.clone()).await?);
        }
        producer.flush().await?;
        for output in outputs {
            output.wait().await?;
        }
        Ok(Rate::new(count, size, started.elapsed()))
    }

    /// Reads `count` records of partition 0 from the beginning.
    pub async fn consume(&self, topic: &str, count: usize) -> Result<Rate> {
        let config = ConsumerConfigExt::builder()
            .topic(topic)
            .partition(0)
            .offset_start(Offset::beginning())
            .build()?;
        let started = Instant::now();
        let mut stream = self.fluvio.consumer_with_config(config).await?;
        let mut bytes = 0;
        for _ in 0..count {
            let record = tokio::time::timeout(PATIENCE, stream.next())
                .await
                .context("no record within the patience")?
                .context("the consumer stream ended")??;
            bytes += record.value().len();
        }
        let elapsed = started.elapsed();
        Ok(Rate {
            records: count,
            bytes,
            elapsed,
        })
    }

    /// Open loop: every millisecond, sends the records due by then at `rate` records/s for
    /// `duration`, each carrying its send time; a consumer tailing the topic from its end
    /// measures send-to-receipt.
    pub async fn latency(
        &self,
        topic: &str,
        rate: u64,
        duration: Duration,
        size: usize,
        batch_bytes: usize,
        linger: Duration,
    ) -> Result<Latency> {
        let total = (rate as f64 * duration.as_secs_f64()) as usize;
        let config = ConsumerConfigExt::builder()
            .topic(topic)
            .partition(0)
            .offset_start(Offset::end())
            .build()?;
        let mut stream = self.fluvio.consumer_with_config(config).await?;
        let base = Instant::now();
        let receiver = tokio::spawn(async move {
            let mut samples = Vec::with_capacity(total);
            while samples.len() < total {
                let record = tokio::time::timeout(PATIENCE, stream.next())
                    .await
                    .context("no record within the patience")?
                    .context("the consumer stream ended")??;
                let now = base.elapsed().as_nanos() as u64;
                let Some(stamp) = record.value().first_chunk::<8>() else {
                    bail!("a record without its timestamp");
                };
                samples.push(now.saturating_sub(u64::from_le_bytes(*stamp)));
            }
            anyhow::Ok(samples)
        });

        let config = TopicProducerConfigBuilder::default()
            .batch_size(batch_bytes)
            .linger(linger)
            .build()?;
        let producer = self
            .fluvio
            .topic_producer_with_config(topic, config)
            .await?;
        let mut value = vec![b'x'; size.max(8)];
        let mut outputs = Vec::with_capacity(total);
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let started = Instant::now();
        while outputs.len() < total {
            tick.tick().await;
            let due = ((started.elapsed().as_secs_f64() * rate as f64) as usize).min(total);
            while outputs.len() < due {
                let stamp = base.elapsed().as_nanos() as u64;
                value[..8].copy_from_slice(&stamp.to_le_bytes());
                let output = producer.send(RecordKey::NULL, value.clone()).await?;
                // Send-to-ack, apart from send-to-receipt, to tell the produce path's share.
                outputs.push(tokio::spawn(async move {
                    output.wait().await?;
                    anyhow::Ok((base.elapsed().as_nanos() as u64).saturating_sub(stamp))
                }));
            }
        }
        let sent_in = started.elapsed();
        producer.flush().await?;
        let mut acks = Vec::with_capacity(total);
        for output in outputs {
            acks.push(output.await.context("an ack task panicked")??);
        }
        let samples = receiver.await.context("the consumer task panicked")??;
        Ok(Latency {
            records: samples.len(),
            achieved_rate: total as f64 / sent_in.as_secs_f64(),
            receipt: Percentiles::of(samples),
            ack: Percentiles::of(acks),
        })
    }
}
