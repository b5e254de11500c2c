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
    let sc = format!("127.0.0.1:{}", free_port());
    let spu = format!("127.0.0.1:{}", free_port());
    let srv =
        TestServer::start_with(&["--fluvio-sc-addr", &sc, "--fluvio-spu-addr", &spu], &[]).await;
    (srv, FluvioClusterConfig::new(sc))
}

/// (key, value) of the first `count` records of partition 0 of `topic`.
async fn consume(fluvio: &Fluvio, topic: &str, count: usize) -> Vec<(String, Value)> {
    let config = ConsumerConfigExt::builder()
        .topic(topic)
        .partition(0)
        .offset_start(Offset::beginning())
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
        let key = String::from_utf8_lossy(record.key().unwrap_or_default()).into_owned();
        let value = serde_json::from_slice(record.value()).unwrap_or_else(|_| {
            Value::String(String::from_utf8_lossy(record.value()).into_owned())
        });
        out.push((key, value));
    }
    out
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
    bounded(
        "create",
        admin.create(
            "scratch".to_owned(),
            false,
            TopicSpec::new_computed(1, 1, None),
        ),
    )
    .await
    .unwrap();
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

    let sc = format!("127.0.0.1:{}", free_port());
    let spu = format!("127.0.0.1:{}", free_port());
    let mut srv =
        TestServer::start_with(&["--fluvio-sc-addr", &sc, "--fluvio-spu-addr", &spu], &[]).await;
    let config = FluvioClusterConfig::new(sc.clone());
    let admin = bounded("admin", FluvioAdmin::connect_with_config(&config))
        .await
        .unwrap();
    bounded(
        "create",
        admin.create(
            "durable".to_owned(),
            false,
            TopicSpec::new_computed(1, 1, None),
        ),
    )
    .await
    .unwrap();
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
    let sc = format!("127.0.0.1:{}", free_port());
    let spu = format!("127.0.0.1:{}", free_port());
    let srv = TestServer::start_with(
        &[
            "--fluvio-sc-addr",
            &sc,
            "--fluvio-spu-addr",
            &spu,
            "--fluvio-read-only",
        ],
        &[],
    )
    .await;
    let config = FluvioClusterConfig::new(sc);
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
    bounded(
        "create",
        admin.create(
            "mine".to_owned(),
            false,
            TopicSpec::new_computed(1, 1, None),
        ),
    )
    .await
    .unwrap();
    let own = bounded("producer", fluvio.topic_producer("mine"))
        .await
        .unwrap();
    bounded("send", own.send(RecordKey::NULL, "allowed"))
        .await
        .unwrap();
    bounded("flush", own.flush()).await.unwrap();
    assert_eq!(consume(&fluvio, "mine", 1).await.len(), 1);
}
