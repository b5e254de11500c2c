//! The same workload against NATS JetStream with file storage: one publisher sending bursts of
//! the producer's batch size and awaiting each burst's acks, then a pull consumer reading the
//! stream from its start.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::try_join_all;

use crate::Rate;

/// Connects and checks that JetStream answers (its account info request, parsed loosely so
/// older servers' replies are accepted).
pub async fn connect(url: &str) -> Result<jetstream::Context> {
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

/// Publishes `count` messages of `size` bytes to a fresh file-storage stream in bursts of
/// `burst`, then consumes them all; the stream is deleted afterwards.
pub async fn run(
    context: &jetstream::Context,
    name: &str,
    count: usize,
    size: usize,
    burst: usize,
) -> Result<(Rate, Rate)> {
    let subject = format!("bench.{name}");
    let stream = context
        .create_stream(stream::Config {
            name: name.to_owned(),
            subjects: vec![subject.clone()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .context("creating the JetStream stream")?;
    let result = async {
        let produced = publish(context, &subject, count, size, burst).await?;
        let consumed = consume(&stream, count).await?;
        anyhow::Ok((produced, consumed))
    }
    .await;
    let deleted = context.delete_stream(name).await;
    let rates = result?;
    deleted.context("deleting the JetStream stream")?;
    Ok(rates)
}

async fn publish(
    context: &jetstream::Context,
    subject: &str,
    count: usize,
    size: usize,
    burst: usize,
) -> Result<Rate> {
    let payload = Bytes::from(vec![b'x'; size]);
    let started = Instant::now();
    let mut sent = 0;
    while sent < count {
        let this = burst.min(count - sent);
        let mut acks = Vec::with_capacity(this);
        for _ in 0..this {
            acks.push(context.publish(subject.to_owned(), payload.clone()).await?);
        }
        try_join_all(acks.into_iter().map(IntoFuture::into_future)).await?;
        sent += this;
    }
    Ok(Rate::new(count, size, started.elapsed()))
}

async fn consume(stream: &stream::Stream, count: usize) -> Result<Rate> {
    let started = Instant::now();
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .context("creating the JetStream consumer")?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(1_000)
        .messages()
        .await?;
    let mut bytes = 0;
    for _ in 0..count {
        let message = tokio::time::timeout(Duration::from_secs(30), messages.next())
            .await
            .context("no message within 30 s")?
            .context("the JetStream consumer ended")??;
        bytes += message.payload.len();
    }
    Ok(Rate {
        records: count,
        bytes,
        elapsed: started.elapsed(),
    })
}
