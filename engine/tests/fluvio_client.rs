//! The official `fluvio` Rust client (0.50) against the embedded Fluvio-compatible server:
//! SC and SPU listeners on free loopback ports over a temp-dir [`EventLog`].
//!
//! Every client call is bounded by [`PATIENCE`]; nothing here asserts on speed, and the tail test
//! relies on the server waking the stream on append, not on sleeps.

use std::future::Future;
use std::time::Duration;

use fluvio::consumer::{ConsumerConfigExt, ConsumerStream, OffsetManagementStrategy, RetryMode};
use fluvio::metadata::topic::TopicSpec;
use fluvio::{
    Compression, Fluvio, FluvioAdmin, FluvioClusterConfig, Offset, RecordKey,
    SmartModuleInvocation, SmartModuleInvocationWasm, SmartModuleKind, TopicProducerConfigBuilder,
};
use futures_util::StreamExt;
use taskstream_engine::embedded::fluvio::{FluvioConfig, serve_sc, serve_spu};
use taskstream_engine::embedded::log::{EventLog, LogConfig, NewRecord};
use tokio::net::TcpListener;
use tokio::sync::watch;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A generous bound for a client call; never a polling interval.
const PATIENCE: Duration = Duration::from_secs(30);

async fn bounded<T>(what: &str, work: impl Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(PATIENCE, work)
        .await
        .map_err(|_| format!("{what}: no answer within {PATIENCE:?}"))
}

/// A running broker; dropping it stops both listeners.
struct Broker {
    log: EventLog,
    sc_addr: String,
    stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

impl Broker {
    async fn start() -> Result<Self, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let log = EventLog::open(&dir.path().join("log.redb"), LogConfig::default())?;
        let sc = TcpListener::bind("127.0.0.1:0").await?;
        let spu = TcpListener::bind("127.0.0.1:0").await?;
        let sc_addr = sc.local_addr()?.to_string();
        // The defaults: the appliance's own topics are read-only to Fluvio clients.
        let config = FluvioConfig::new(spu.local_addr()?.to_string());
        let (stop, shutdown) = watch::channel(false);
        tokio::spawn(serve_sc(sc, log.clone(), config.clone(), shutdown.clone()));
        tokio::spawn(serve_spu(spu, log.clone(), config, shutdown));
        Ok(Self {
            log,
            sc_addr,
            stop,
            _dir: dir,
        })
    }

    fn config(&self) -> FluvioClusterConfig {
        FluvioClusterConfig::new(self.sc_addr.clone())
    }

    async fn client(&self) -> Result<Fluvio, Box<dyn std::error::Error>> {
        Ok(bounded("connect", Fluvio::connect_with_config(&self.config())).await??)
    }

    async fn admin(&self) -> Result<FluvioAdmin, Box<dyn std::error::Error>> {
        Ok(bounded(
            "admin connect",
            FluvioAdmin::connect_with_config(&self.config()),
        )
        .await??)
    }
}

async fn topic_names(admin: &FluvioAdmin) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let topics = bounded("list topics", admin.all::<TopicSpec>()).await??;
    Ok(topics.into_iter().map(|topic| topic.name).collect())
}

/// (offset, key, value) of up to `count` records of one partition, starting at `start`.
async fn consume(
    fluvio: &Fluvio,
    topic: &str,
    partition: u32,
    start: Offset,
    count: usize,
) -> Result<Vec<(i64, Option<String>, String)>, Box<dyn std::error::Error>> {
    let config = ConsumerConfigExt::builder()
        .topic(topic)
        .partition(partition)
        .offset_start(start)
        .build()?;
    let mut stream = bounded("open consumer", fluvio.consumer_with_config(config)).await??;
    let mut records = Vec::new();
    while records.len() < count {
        let record = bounded("next record", stream.next())
            .await?
            .ok_or("the consumer stream ended")??;
        records.push((
            record.offset(),
            record
                .key()
                .map(|key| String::from_utf8_lossy(key).into_owned()),
            String::from_utf8_lossy(record.value()).into_owned(),
        ));
    }
    Ok(records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_listed_created_and_deleted() -> TestResult {
    let broker = Broker::start().await?;
    let fluvio = broker.client().await?;
    let admin = broker.admin().await?;

    let names = topic_names(&admin).await?;
    for topic in ["task-events", "reminders", "task-updates"] {
        assert!(
            names.contains(&topic.to_owned()),
            "{topic} missing from {names:?}"
        );
    }
    assert!(
        !names.contains(&"consumer-offset".to_owned()),
        "the system topic is hidden from a plain list"
    );

    bounded(
        "create",
        admin.create(
            "orders".to_owned(),
            false,
            TopicSpec::new_computed(2, 1, None),
        ),
    )
    .await??;
    assert!(topic_names(&admin).await?.contains(&"orders".to_owned()));
    assert_eq!(
        broker.log.end_offset("orders", 1)?,
        0,
        "two partitions exist"
    );

    let duplicate = bounded(
        "duplicate create",
        admin.create(
            "orders".to_owned(),
            false,
            TopicSpec::new_computed(1, 1, None),
        ),
    )
    .await?;
    let error = duplicate.err().ok_or("a duplicate create must fail")?;
    assert!(error.to_string().contains("already exists"), "{error}");

    bounded(
        "dry-run create",
        admin.create("dry".to_owned(), true, TopicSpec::new_computed(1, 1, None)),
    )
    .await??;
    assert!(!topic_names(&admin).await?.contains(&"dry".to_owned()));

    let invalid = bounded(
        "invalid create",
        admin.create(
            "Bad_Name".to_owned(),
            false,
            TopicSpec::new_computed(1, 1, None),
        ),
    )
    .await?;
    let error = invalid.err().ok_or("an invalid name must fail")?;
    assert!(error.to_string().contains("Invalid topic name"), "{error}");

    // A client connected before the create sees the new topic through its watch streams.
    let producer = bounded("producer", fluvio.topic_producer("orders")).await??;
    bounded("send", producer.send(RecordKey::NULL, "first")).await??;
    bounded("flush", producer.flush()).await??;

    bounded("delete", admin.delete::<TopicSpec>("orders")).await??;
    assert!(!topic_names(&admin).await?.contains(&"orders".to_owned()));
    assert!(broker.log.end_offset("orders", 0).is_err());

    let missing = bounded("delete missing", admin.delete::<TopicSpec>("orders")).await?;
    let error = missing.err().ok_or("deleting a missing topic must fail")?;
    assert!(error.to_string().contains("not found"), "{error}");

    let protected = bounded("delete app topic", admin.delete::<TopicSpec>("task-events")).await?;
    assert!(
        protected.is_err(),
        "the appliance's topics need a forced delete"
    );
    assert!(broker.log.end_offset("task-events", 0).is_ok());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_are_produced_and_consumed_from_beginning_and_offset() -> TestResult {
    let broker = Broker::start().await?;
    let admin = broker.admin().await?;
    bounded(
        "create",
        admin.create(
            "orders".to_owned(),
            false,
            TopicSpec::new_computed(2, 1, None),
        ),
    )
    .await??;
    let fluvio = broker.client().await?;
    let producer = bounded("producer", fluvio.topic_producer("orders")).await??;
    let mut sent = Vec::new();
    for index in 0..6 {
        let output = bounded(
            "send",
            producer.send(format!("key-{index}"), format!("value-{index}")),
        )
        .await??;
        sent.push(output);
    }
    bounded("send keyless", producer.send(RecordKey::NULL, "keyless")).await??;
    bounded("flush", producer.flush()).await??;
    let mut placed = Vec::new();
    for output in sent {
        let metadata = bounded("wait", output.wait()).await??;
        placed.push((metadata.partition_id(), metadata.offset()));
    }

    // Every record is in the log, under the partition and offset the producer was told.
    let mut total = 0;
    for partition in 0..2u32 {
        let end = broker.log.end_offset("orders", partition)?;
        total += end;
        if end == 0 {
            continue;
        }
        let records = consume(
            &fluvio,
            "orders",
            partition,
            Offset::beginning(),
            end as usize,
        )
        .await?;
        for (offset, key, value) in &records {
            if value == "keyless" {
                assert_eq!(key, &None);
                continue;
            }
            let index = value.trim_start_matches("value-");
            assert_eq!(key.as_deref(), Some(format!("key-{index}").as_str()));
            let index: usize = index.parse()?;
            assert_eq!(placed[index], (partition, *offset), "record {index}");
        }
    }
    assert_eq!(total, 7);

    // From an absolute offset: the partition that holds at least two records.
    let partition = if broker.log.end_offset("orders", 0)? >= 2 {
        0
    } else {
        1
    };
    let all = consume(&fluvio, "orders", partition, Offset::beginning(), 2).await?;
    let from_one = consume(&fluvio, "orders", partition, Offset::absolute(1)?, 1).await?;
    assert_eq!(from_one[0], all[1]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_batches_are_stored_and_served_as_sent() -> TestResult {
    let broker = Broker::start().await?;
    let admin = broker.admin().await?;
    let fluvio = broker.client().await?;
    let codecs: [(&str, Compression, i16); 4] = [
        ("gzip", Compression::Gzip, 1),
        ("snappy", Compression::Snappy, 2),
        ("lz4", Compression::Lz4, 3),
        ("zstd", Compression::Zstd, 4),
    ];
    // Created before the client's first producer: a client that already has its SPU pool
    // learns of a new topic through its watch stream asynchronously, and its lookup right
    // after the create reply may miss it (the client answers "not found" at once when its
    // store is non-empty); the server flushes the watch update before replying, no more.
    for (name, _, _) in codecs {
        bounded(
            "create",
            admin.create(
                format!("codec-{name}"),
                false,
                TopicSpec::new_computed(1, 1, None),
            ),
        )
        .await??;
    }
    for (name, codec, attribute) in codecs {
        let topic = format!("codec-{name}");
        let config = TopicProducerConfigBuilder::default()
            .compression(codec)
            .build()?;
        let producer = bounded(
            "producer",
            fluvio.topic_producer_with_config(topic.as_str(), config),
        )
        .await??;
        for index in 0..3 {
            bounded(
                "send",
                producer.send(format!("k{index}"), "compressible ".repeat(20)),
            )
            .await??;
        }
        bounded("flush", producer.flush()).await??;

        let batches = broker.log.read_batches(&topic, 0, 0, 1 << 20).await?;
        assert!(!batches.is_empty());
        for batch in &batches {
            let attributes = i16::from_be_bytes([batch.bytes[21], batch.bytes[22]]);
            assert_eq!(attributes & 0x07, attribute, "{name}: stored as produced");
        }
        let records = consume(&fluvio, &topic, 0, Offset::beginning(), 3).await?;
        let keys: Vec<_> = records.iter().map(|(_, key, _)| key.clone()).collect();
        assert_eq!(
            keys,
            vec![Some("k0".into()), Some("k1".into()), Some("k2".into())],
            "{name}"
        );
        assert!(
            records
                .iter()
                .all(|(_, _, value)| value == &"compressible ".repeat(20))
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tailing_consumer_receives_later_appends() -> TestResult {
    let broker = Broker::start().await?;
    // A topic of the client's own: the appliance's topics are read-only to Fluvio producers.
    let admin = broker.admin().await?;
    bounded(
        "create",
        admin.create(
            "ticker".to_owned(),
            false,
            TopicSpec::new_computed(1, 1, None),
        ),
    )
    .await??;
    let fluvio = broker.client().await?;
    let producer = bounded("producer", fluvio.topic_producer("ticker")).await??;
    bounded("send", producer.send("old", "before")).await??;
    bounded("flush", producer.flush()).await??;

    let config = ConsumerConfigExt::builder()
        .topic("ticker")
        .partition(0)
        .offset_start(Offset::end())
        .build()?;
    let mut stream = bounded("open consumer", fluvio.consumer_with_config(config)).await??;
    // Let the consumer's stream reach the server before anything new is appended, so the
    // server has to wake it (not just answer the first fetch).
    let start = broker.log.end_offset("ticker", 0)?;
    let next = tokio::spawn(async move {
        bounded("tail", stream.next()).await.map(|item| {
            item.map(|record| record.map(|record| (record.offset(), record.value().to_vec())))
        })
    });
    tokio::task::yield_now().await;

    bounded("send", producer.send("new", "after")).await??;
    bounded("flush", producer.flush()).await??;
    let (offset, value) = next.await??.ok_or("stream ended")??;
    assert_eq!(offset, start as i64);
    assert_eq!(value, b"after");

    // An append by the application itself (not through Fluvio) wakes a tail too.
    let config = ConsumerConfigExt::builder()
        .topic("ticker")
        .partition(0)
        .offset_start(Offset::absolute(start as i64 + 1)?)
        .build()?;
    let mut stream = bounded("open consumer", fluvio.consumer_with_config(config)).await??;
    let next = tokio::spawn(async move {
        bounded("tail", stream.next())
            .await
            .map(|item| item.map(|record| record.map(|record| record.value().to_vec())))
    });
    broker
        .log
        .append(
            "ticker",
            vec![NewRecord {
                key: Some(b"app".to_vec()),
                value: b"from the app".to_vec(),
                timestamp_ms: 1,
            }],
        )
        .await?;
    let value = next.await??.ok_or("stream ended")??;
    assert_eq!(value, b"from the app");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_appended_by_the_app_are_readable_with_keys() -> TestResult {
    let broker = Broker::start().await?;
    let records = (0..3)
        .map(|index| NewRecord {
            key: Some(format!("task-{index}").into_bytes()),
            value: format!("{{\"event\":{index}}}").into_bytes(),
            timestamp_ms: 1_700_000_000_000 + index,
        })
        .collect();
    broker.log.append("task-events", records).await?;
    let fluvio = broker.client().await?;
    let read = consume(&fluvio, "task-events", 0, Offset::beginning(), 3).await?;
    let expected: Vec<_> = (0..3)
        .map(|index| {
            (
                index,
                Some(format!("task-{index}")),
                format!("{{\"event\":{index}}}"),
            )
        })
        .collect();
    assert_eq!(read, expected);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_offsets_are_committed_listed_resumed_and_deleted() -> TestResult {
    let broker = Broker::start().await?;
    let records = (0..5)
        .map(|index| NewRecord {
            key: None,
            value: format!("r{index}").into_bytes(),
            timestamp_ms: 1,
        })
        .collect();
    broker.log.append("task-events", records).await?;
    let fluvio = broker.client().await?;
    let config = || {
        ConsumerConfigExt::builder()
            .topic("task-events")
            .partition(0)
            .offset_start(Offset::beginning())
            .offset_consumer("auditor")
            .offset_strategy(OffsetManagementStrategy::Manual)
            .build()
    };
    {
        let mut stream = bounded("open consumer", fluvio.consumer_with_config(config()?)).await??;
        for _ in 0..3 {
            bounded("next", stream.next()).await?.ok_or("ended")??;
        }
        bounded("commit", stream.offset_commit()).await??;
        bounded("flush", stream.offset_flush()).await??;
    }
    assert_eq!(
        broker
            .log
            .committed_offset("auditor", "task-events", 0)
            .await?,
        Some(3),
        "durable in the log's offset store as the next offset to read"
    );
    let listed = bounded("list offsets", fluvio.consumer_offsets()).await??;
    let auditor = listed
        .iter()
        .find(|offset| offset.consumer_id == "auditor")
        .ok_or("auditor offset not listed")?;
    assert_eq!(auditor.offset, 2);

    // A new consumer with the same id resumes after the committed record.
    let mut stream = bounded("reopen consumer", fluvio.consumer_with_config(config()?)).await??;
    let record = bounded("next", stream.next()).await?.ok_or("ended")??;
    assert_eq!(record.offset(), 3);
    assert_eq!(record.value(), b"r3");
    drop(stream);

    bounded(
        "delete offset",
        fluvio.delete_consumer_offset("auditor", ("task-events".to_owned(), 0)),
    )
    .await??;
    assert_eq!(
        broker
            .log
            .committed_offset("auditor", "task-events", 0)
            .await?,
        None
    );
    let listed = bounded("list offsets", fluvio.consumer_offsets()).await??;
    assert!(listed.iter().all(|offset| offset.consumer_id != "auditor"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smartmodule_requests_get_a_clear_error() -> TestResult {
    let broker = Broker::start().await?;
    broker
        .log
        .append(
            "task-events",
            vec![NewRecord {
                key: None,
                value: b"x".to_vec(),
                timestamp_ms: 1,
            }],
        )
        .await?;
    let fluvio = broker.client().await?;
    let invocation = SmartModuleInvocation {
        wasm: SmartModuleInvocationWasm::Predefined("filter".to_owned()),
        kind: SmartModuleKind::Filter,
        params: Default::default(),
        name: None,
    };
    let config = ConsumerConfigExt::builder()
        .topic("task-events")
        .partition(0)
        .offset_start(Offset::beginning())
        .smartmodule(vec![invocation])
        // The client retries failed streams (up to 100 times, with backoff) by default.
        .retry_mode(RetryMode::Disabled)
        .build()?;
    let mut stream = bounded("open consumer", fluvio.consumer_with_config(config)).await??;
    let item = bounded("next", stream.next()).await?.ok_or("ended")?;
    let error = item.err().ok_or("a SmartModule fetch must fail")?;
    assert!(
        error.to_string().contains("SmartModules are not supported"),
        "{error}"
    );

    // The connection survives: a plain consumer still works.
    let records = consume(&fluvio, "task-events", 0, Offset::beginning(), 1).await?;
    assert_eq!(records[0].2, "x");
    Ok(())
}
