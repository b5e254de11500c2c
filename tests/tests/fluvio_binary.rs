//! The official Fluvio Rust client against `taskstream serve`: the appliance's own topics are
//! visible, task changes made over REST can be consumed, and produced records come back.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::time::Duration;

use fluvio::consumer::ConsumerConfigExt;
use fluvio::metadata::topic::TopicSpec;
use fluvio::{Fluvio, FluvioAdmin, FluvioClusterConfig, Offset, RecordKey};
use futures_util::StreamExt;
use serde_json::{Value, json};
use taskstream_tests::{TestServer, free_port, id_of};

/// A bound on each client call, never a polling interval.
const PATIENCE: Duration = Duration::from_secs(30);

async fn bounded<T>(what: &str, work: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, work)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {PATIENCE:?}"))
}

async fn start() -> (TestServer, FluvioClusterConfig) {
    start_with(&[]).await
}

/// A server with its Fluvio listeners on known free ports (plus `extra` flags) and a client
/// configuration pointing at its SC.
async fn start_with(extra: &[&str]) -> (TestServer, FluvioClusterConfig) {
    let sc = format!("127.0.0.1:{}", free_port());
    let spu = format!("127.0.0.1:{}", free_port());
    let mut args = vec!["--fluvio-sc-addr", &sc, "--fluvio-spu-addr", &spu];
    args.extend_from_slice(extra);
    let srv = TestServer::start_with(&args, &[]).await;
    (srv, FluvioClusterConfig::new(sc))
}

/// (key, value) of the first `count` records of partition 0 of `topic`; values that are JSON
/// come back parsed, others as a JSON string.
async fn consume(fluvio: &Fluvio, topic: &str, count: usize) -> Vec<(String, Value)> {
    consume_partition(fluvio, topic, 0, Offset::beginning(), count)
        .await
        .into_iter()
        .map(|(_, _, key, value)| {
            let parsed = serde_json::from_str(&value).unwrap_or(Value::String(value));
            (key.unwrap_or_default(), parsed)
        })
        .collect()
}

/// Creates `name` with `partitions` partitions, failing the test if the server refuses.
async fn create_topic(admin: &FluvioAdmin, name: &str, partitions: u32) {
    bounded(
        "create",
        admin.create(
            name.to_owned(),
            false,
            TopicSpec::new_computed(partitions, 1, None),
        ),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_sees_the_appliance_topics_and_task_events() {
    let (srv, config) = start().await;
    let admin = bounded("admin", FluvioAdmin::connect_with_config(&config))
        .await
        .unwrap();
    let topics: Vec<String> = bounded("list", admin.all::<TopicSpec>())
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    for topic in ["task-events", "reminders", "task-updates"] {
        assert!(
            topics.contains(&topic.to_owned()),
            "{topic} listed: {topics:?}"
        );
    }

    let alice = srv.user("alice");
    let task = alice.create(json!({"title": "watched over Fluvio"})).await;
    let id = id_of(&task);
    let fluvio = bounded("connect", Fluvio::connect_with_config(&config))
        .await
        .unwrap();
    let records = consume(&fluvio, "task-events", 1).await;
    let (key, envelope) = &records[0];
    assert_eq!(key, &id, "keyed by task id");
    assert_eq!(envelope["event_type"], "task.created");
    assert_eq!(envelope["payload"]["title"], "watched over Fluvio");
    assert_eq!(envelope["user_id"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_produced_with_the_client_are_consumed_back() {
    let (_srv, config) = start().await;
    let admin = bounded("admin", FluvioAdmin::connect_with_config(&config))
        .await
        .unwrap();
    create_topic(&admin, "scratch", 1).await;
    let fluvio = bounded("connect", Fluvio::connect_with_config(&config))
        .await
        .unwrap();
    let producer = bounded("producer", fluvio.topic_producer("scratch"))
        .await
        .unwrap();
    for n in 0..3 {
        bounded(
            "send",
            producer.send(RecordKey::from(format!("k{n}")), format!("v{n}")),
        )
        .await
        .unwrap();
    }
    bounded("flush", producer.flush()).await.unwrap();
    let records = consume(&fluvio, "scratch", 3).await;
    let got: Vec<(String, String)> = records
        .into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
        .collect();
    assert_eq!(
        got,
        [
            ("k0".into(), "v0".into()),
            ("k1".into(), "v1".into()),
            ("k2".into(), "v2".into())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_and_committed_offsets_survive_sigkill() {
    use fluvio::consumer::{ConsumerStream, OffsetManagementStrategy};

    let (mut srv, config) = start().await;
    let admin = bounded("admin", FluvioAdmin::connect_with_config(&config))
        .await
        .unwrap();
    create_topic(&admin, "durable", 1).await;
    let fluvio = bounded("connect", Fluvio::connect_with_config(&config))
        .await
        .unwrap();
    let producer = bounded("producer", fluvio.topic_producer("durable"))
        .await
        .unwrap();
    for n in 0..5 {
        bounded("send", producer.send(RecordKey::NULL, format!("r{n}")))
            .await
            .unwrap();
    }
    bounded("flush", producer.flush()).await.unwrap();
    let consumer_config = || {
        ConsumerConfigExt::builder()
            .topic("durable")
            .partition(0)
            .offset_start(Offset::beginning())
            .offset_consumer("reader")
            .offset_strategy(OffsetManagementStrategy::Manual)
            .build()
            .unwrap()
    };
    {
        let mut stream = bounded("consumer", fluvio.consumer_with_config(consumer_config()))
            .await
            .unwrap();
        for _ in 0..2 {
            bounded("next", stream.next())
                .await
                .expect("ended")
                .unwrap();
        }
        bounded("commit", stream.offset_commit()).await.unwrap();
        bounded("flush", stream.offset_flush()).await.unwrap();
    }
    drop(producer);
    drop(fluvio);
    drop(admin);

    srv.sigkill();
    srv.restart().await;
    let fluvio = bounded("reconnect", Fluvio::connect_with_config(&config))
        .await
        .unwrap();
    let listed = bounded("list consumer offsets", fluvio.consumer_offsets())
        .await
        .unwrap();
    let reader = listed
        .iter()
        .find(|o| o.consumer_id == "reader")
        .expect("the committed consumer is listed after a restart");
    assert_eq!(reader.offset, 1, "Fluvio lists the last record read");
    let mut stream = bounded("resume", fluvio.consumer_with_config(consumer_config()))
        .await
        .unwrap();
    let record = bounded("next", stream.next())
        .await
        .expect("ended")
        .unwrap();
    assert_eq!(
        (record.offset(), record.value()),
        (2, b"r2".as_slice()),
        "resumes after the committed record"
    );
    let all = consume(&fluvio, "durable", 5).await;
    assert_eq!(all.len(), 5, "every acknowledged record survived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_mode_protects_the_appliance_topics_only() {
    let (srv, config) = start_with(&["--fluvio-read-only"]).await;
    let fluvio = bounded("connect", Fluvio::connect_with_config(&config))
        .await
        .unwrap();

    let producer = bounded("producer", fluvio.topic_producer("task-events"))
        .await
        .unwrap();
    let refused = async {
        producer
            .send(RecordKey::NULL, "forged event")
            .await?
            .wait()
            .await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    let outcome = bounded("send to task-events", refused).await;
    assert!(
        outcome.is_err(),
        "producing to an appliance topic is refused"
    );

    let admin = bounded("admin", FluvioAdmin::connect_with_config(&config))
        .await
        .unwrap();
    let deleted = bounded("delete", admin.delete::<TopicSpec>("task-events")).await;
    assert!(deleted.is_err(), "the appliance's topics cannot be deleted");

    // Consuming them still works, and so does a topic of the client's own.
    let alice = srv.user("alice");
    let task = alice.create(json!({"title": "still readable"})).await;
    let records = consume(&fluvio, "task-events", 1).await;
    assert_eq!(records[0].0, id_of(&task));
    create_topic(&admin, "mine", 1).await;
    let own = bounded("producer", fluvio.topic_producer("mine"))
        .await
        .unwrap();
    bounded("send", own.send(RecordKey::NULL, "allowed"))
        .await
        .unwrap();
    bounded("flush", own.flush()).await.unwrap();
    assert_eq!(consume(&fluvio, "mine", 1).await.len(), 1);
}

/// (partition, offset, key, value) of up to `count` records of one partition from `start`.
async fn consume_partition(
    fluvio: &Fluvio,
    topic: &str,
    partition: u32,
    start: Offset,
    count: usize,
) -> Vec<(u32, i64, Option<String>, String)> {
    let config = ConsumerConfigExt::builder()
        .topic(topic)
        .partition(partition)
        .offset_start(start)
        .build()
        .unwrap();
    let mut stream = bounded("open consumer", fluvio.consumer_with_config(config))
        .await
        .unwrap();
    let mut out = Vec::new();
    while out.len() < count {
        let record = bounded("next record", stream.next())
            .await
            .expect("stream ended")
            .unwrap();
        out.push((
            partition,
            record.offset(),
            record
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            String::from_utf8_lossy(record.value()).into_owned(),
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_client_walk_through_against_the_binary() {
    use fluvio::consumer::{ConsumerStream, OffsetManagementStrategy};

    let (_srv, config) = start().await;
    let admin = bounded("admin", FluvioAdmin::connect_with_config(&config))
        .await
        .unwrap();
    create_topic(&admin, "orders", 2).await;
    let duplicate = bounded(
        "create again",
        admin.create(
            "orders".to_owned(),
            false,
            TopicSpec::new_computed(2, 1, None),
        ),
    )
    .await;
    assert!(duplicate.is_err(), "a duplicate create is refused");
    let names: Vec<String> = bounded("list", admin.all::<TopicSpec>())
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert!(names.contains(&"orders".to_owned()));

    // Keyed and keyless records on a 2-partition topic land where the producer was told.
    let fluvio = bounded("connect", Fluvio::connect_with_config(&config))
        .await
        .unwrap();
    let producer = bounded("producer", fluvio.topic_producer("orders"))
        .await
        .unwrap();
    let mut placed = Vec::new();
    for n in 0..6 {
        let output = bounded(
            "send",
            producer.send(format!("key-{n}"), format!("value-{n}")),
        )
        .await
        .unwrap();
        placed.push(output);
    }
    bounded("send keyless", producer.send(RecordKey::NULL, "keyless"))
        .await
        .unwrap();
    bounded("flush", producer.flush()).await.unwrap();
    let mut where_sent = Vec::new();
    for output in placed {
        let meta = bounded("wait", output.wait()).await.unwrap();
        where_sent.push((meta.partition_id(), meta.offset()));
    }
    let mut read = Vec::new();
    for partition in 0..2u32 {
        let on_partition = where_sent.iter().filter(|(p, _)| *p == partition).count();
        read.extend(
            consume_partition(
                &fluvio,
                "orders",
                partition,
                Offset::beginning(),
                on_partition,
            )
            .await,
        );
    }
    for (n, (partition, offset)) in where_sent.iter().enumerate() {
        let found = read
            .iter()
            .find(|(p, o, _, _)| p == partition && o == offset)
            .expect("the record is where the producer was told");
        assert_eq!(found.2.as_deref(), Some(format!("key-{n}").as_str()));
        assert_eq!(found.3, format!("value-{n}"));
    }

    // From an absolute offset, and tailing: a record produced after the consumer started.
    let busiest = (0..2u32)
        .max_by_key(|p| where_sent.iter().filter(|(q, _)| q == p).count())
        .unwrap();
    let first_two = consume_partition(&fluvio, "orders", busiest, Offset::beginning(), 2).await;
    let from_one =
        consume_partition(&fluvio, "orders", busiest, Offset::absolute(1).unwrap(), 1).await;
    assert_eq!(from_one[0], first_two[1]);
    let tail_config = ConsumerConfigExt::builder()
        .topic("task-updates")
        .partition(0)
        .offset_start(Offset::end())
        .build()
        .unwrap();
    let mut tail = bounded("tail consumer", fluvio.consumer_with_config(tail_config))
        .await
        .unwrap();
    let waiting = tokio::spawn(async move {
        bounded("tail", tail.next())
            .await
            .map(|r| r.map(|r| r.value().to_vec()))
    });
    tokio::task::yield_now().await;
    let updates = bounded("producer", fluvio.topic_producer("task-updates"))
        .await
        .unwrap();
    bounded("send", updates.send(RecordKey::NULL, "later"))
        .await
        .unwrap();
    bounded("flush", updates.flush()).await.unwrap();
    assert_eq!(
        waiting.await.unwrap().expect("stream ended").unwrap(),
        b"later"
    );

    // Consumer offsets: commit, delete.
    let offsets_config = ConsumerConfigExt::builder()
        .topic("orders")
        .partition(where_sent[0].0)
        .offset_start(Offset::beginning())
        .offset_consumer("walker")
        .offset_strategy(OffsetManagementStrategy::Manual)
        .build()
        .unwrap();
    let mut stream = bounded("consumer", fluvio.consumer_with_config(offsets_config))
        .await
        .unwrap();
    bounded("next", stream.next())
        .await
        .expect("ended")
        .unwrap();
    bounded("commit", stream.offset_commit()).await.unwrap();
    bounded("flush", stream.offset_flush()).await.unwrap();
    drop(stream);
    let listed = bounded("list offsets", fluvio.consumer_offsets())
        .await
        .unwrap();
    assert!(listed.iter().any(|o| o.consumer_id == "walker"));
    bounded(
        "delete offset",
        fluvio.delete_consumer_offset("walker", ("orders".to_owned(), where_sent[0].0)),
    )
    .await
    .unwrap();
    let listed = bounded("list offsets", fluvio.consumer_offsets())
        .await
        .unwrap();
    assert!(
        listed.iter().all(|o| o.consumer_id != "walker"),
        "the offset is gone"
    );

    // Delete the topic.
    bounded("delete", admin.delete::<TopicSpec>("orders"))
        .await
        .unwrap();
    let names: Vec<String> = bounded("list", admin.all::<TopicSpec>())
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert!(!names.contains(&"orders".to_owned()));
}
