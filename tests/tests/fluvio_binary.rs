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
    let (srv, config, _, _) = start_at(extra).await;
    (srv, config)
}

/// [`start_with`], also giving the SC and SPU addresses (`host:port`) for raw connections.
async fn start_at(extra: &[&str]) -> (TestServer, FluvioClusterConfig, String, String) {
    let sc = format!("127.0.0.1:{}", free_port());
    let spu = format!("127.0.0.1:{}", free_port());
    let mut args = vec!["--fluvio-sc-addr", &sc, "--fluvio-spu-addr", &spu];
    args.extend_from_slice(extra);
    let srv = TestServer::start_with(&args, &[]).await;
    (srv, FluvioClusterConfig::new(sc.clone()), sc, spu)
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
async fn by_default_the_appliance_topics_are_read_only_and_client_topics_are_not() {
    let (srv, config) = start().await;
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
    let error = bounded("send to task-events", refused)
        .await
        .expect_err("producing to an appliance topic is refused");
    let message = error.to_string();
    assert!(
        message.contains("read-only") && message.contains("--fluvio-read-only=false"),
        "the client is told why and how to opt out: {message}"
    );

    let admin = bounded("admin", FluvioAdmin::connect_with_config(&config))
        .await
        .unwrap();
    let deleted = bounded("delete", admin.delete::<TopicSpec>("task-events")).await;
    assert!(deleted.is_err(), "the appliance's topics cannot be deleted");

    // Consuming them still works, and a topic of the client's own is fully usable.
    let alice = srv.user("alice");
    let task = alice.create(json!({"title": "still readable"})).await;
    let records = consume(&fluvio, "task-events", 1).await;
    assert_eq!(records[0].0, id_of(&task));
    assert_eq!(
        records[0].1["event_type"], "task.created",
        "no forged record"
    );
    create_topic(&admin, "mine", 1).await;
    let own = bounded("producer", fluvio.topic_producer("mine"))
        .await
        .unwrap();
    bounded("send", own.send(RecordKey::NULL, "allowed"))
        .await
        .unwrap();
    bounded("flush", own.flush()).await.unwrap();
    assert_eq!(consume(&fluvio, "mine", 1).await.len(), 1);
    bounded("delete own", admin.delete::<TopicSpec>("mine"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_only_opt_out_lets_clients_produce_to_the_appliance_topics() {
    let (_srv, config) = start_with(&["--fluvio-read-only=false"]).await;
    let fluvio = bounded("connect", Fluvio::connect_with_config(&config))
        .await
        .unwrap();
    let producer = bounded("producer", fluvio.topic_producer("task-updates"))
        .await
        .unwrap();
    let output = bounded("send", producer.send(RecordKey::NULL, "allowed"))
        .await
        .unwrap();
    bounded("flush", producer.flush()).await.unwrap();
    bounded("wait", output.wait()).await.unwrap();
    let records = consume(&fluvio, "task-updates", 1).await;
    assert_eq!(records[0].1, "allowed");
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
    create_topic(&admin, "ticker", 1).await;
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
        .topic("ticker")
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
    let updates = bounded("producer", fluvio.topic_producer("ticker"))
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

/// An ApiVersions request (api key 18, version 0: no body) as raw bytes: size, header.
const API_VERSIONS: [u8; 14] = [0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0, 0];

/// Sends ApiVersions on `stream` and reads the whole reply frame; `false` if the server
/// closed the connection instead.
async fn api_versions_answered(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.write_all(&API_VERSIONS).await.is_err() {
        return false;
    }
    let mut size = [0u8; 4];
    match bounded("api versions reply", stream.read_exact(&mut size)).await {
        Ok(_) => {}
        Err(_) => return false,
    }
    let mut body = vec![0u8; usize::try_from(i32::from_be_bytes(size)).unwrap_or(0)];
    bounded("api versions body", stream.read_exact(&mut body))
        .await
        .is_ok()
}

/// Waits (bounded) until the server closes `stream`: end of stream or a reset.
async fn closed_by_server(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut byte = [0u8; 1];
    match bounded("server closes the connection", stream.read(&mut byte)).await {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => error.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// Waits (bounded, polling the server's log) until `needle` appears at least `count` times.
async fn logged(srv: &TestServer, needle: &str, count: usize) {
    bounded("log line", async {
        while srv.stderr().matches(needle).count() < count {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_but_clients_tailing_or_watching_are_not() {
    use fluvio::consumer::RetryMode;

    const IDLE: Duration = Duration::from_secs(1);
    let (srv, config, sc, spu) = start_at(&["--fluvio-idle-timeout-secs", "1"]).await;

    // Raw connections that never send a request, or stop after one, are closed.
    let mut silent_sc = tokio::net::TcpStream::connect(&sc).await.unwrap();
    let mut silent_spu = tokio::net::TcpStream::connect(&spu).await.unwrap();
    let mut one_request = tokio::net::TcpStream::connect(&spu).await.unwrap();
    assert!(api_versions_answered(&mut one_request).await);
    for stream in [&mut silent_sc, &mut silent_spu, &mut one_request] {
        assert!(closed_by_server(stream).await, "idle connection closed");
    }
    let spu_idle = "fluvio spu: idle connection closed";
    logged(&srv, spu_idle, 2).await;
    logged(&srv, "fluvio sc: idle connection closed", 1).await;

    // Client A tails a topic of its own (retries off, so a cut connection would show);
    // client B produces to it.
    let admin = bounded("admin", FluvioAdmin::connect_with_config(&config))
        .await
        .unwrap();
    create_topic(&admin, "ticker", 1).await;
    let tailing = bounded("connect A", Fluvio::connect_with_config(&config))
        .await
        .unwrap();
    let tail_config = ConsumerConfigExt::builder()
        .topic("ticker")
        .partition(0)
        .offset_start(Offset::beginning())
        .retry_mode(RetryMode::Disabled)
        .build()
        .unwrap();
    let mut tail = bounded("tail", tailing.consumer_with_config(tail_config))
        .await
        .unwrap();
    let producing = bounded("connect B", Fluvio::connect_with_config(&config))
        .await
        .unwrap();
    let producer = bounded("producer", producing.topic_producer("ticker"))
        .await
        .unwrap();
    bounded("send", producer.send(RecordKey::NULL, "before"))
        .await
        .unwrap();
    bounded("flush", producer.flush()).await.unwrap();
    let record = bounded("next", tail.next())
        .await
        .expect("the tail stream ended")
        .expect("the tail stream failed");
    assert_eq!(record.value(), b"before");

    // Well past the timeout. B's SPU connection (no stream) is closed; the watches of A, B
    // and the admin, and A's fetch stream, keep theirs.
    tokio::time::sleep(IDLE * 3).await;
    logged(&srv, spu_idle, 3).await;
    bounded("send", producer.send(RecordKey::NULL, "after"))
        .await
        .expect("the client reconnects after its idle SPU connection was closed");
    bounded("flush", producer.flush()).await.unwrap();
    let record = bounded("next", tail.next())
        .await
        .expect("the tail stream was cut")
        .expect("the tail stream failed");
    assert_eq!(record.value(), b"after", "the tail was not cut");

    // A's metadata watch still delivers: a topic created now is usable through A.
    create_topic(&admin, "later", 1).await;
    let later = bounded("producer on A", tailing.topic_producer("later"))
        .await
        .expect("A's watch stream still runs");
    bounded("send", later.send(RecordKey::NULL, "x"))
        .await
        .unwrap();
    bounded("flush", later.flush()).await.unwrap();
    assert_eq!(
        srv.stderr()
            .matches("fluvio sc: idle connection closed")
            .count(),
        1,
        "no SC connection with watches was closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_peer_are_capped_and_refusals_logged_sparingly() {
    const CAP: usize = 3;
    let (srv, _, sc, spu) = start_at(&["--fluvio-max-connections-per-peer", "3"]).await;
    let mut held = Vec::new();
    for _ in 0..CAP {
        let mut stream = tokio::net::TcpStream::connect(&spu).await.unwrap();
        assert!(api_versions_answered(&mut stream).await, "within the cap");
        held.push(stream);
    }
    let started = std::time::Instant::now();
    const REFUSED: usize = 20;
    for _ in 0..REFUSED {
        let mut extra = tokio::net::TcpStream::connect(&spu).await.unwrap();
        assert!(
            closed_by_server(&mut extra).await,
            "beyond the cap: closed at once"
        );
    }
    let elapsed = started.elapsed();
    let warning = "fluvio spu: connection limit per peer address reached";
    logged(&srv, warning, 1).await;
    // One warning per 10 s at most (plus the first), however fast the refusals came.
    let warnings = srv.stderr().matches(warning).count();
    let allowed = 2 + usize::try_from(elapsed.as_secs() / 10).unwrap_or(usize::MAX);
    assert!(
        warnings <= allowed,
        "{warnings} warnings for {REFUSED} refusals"
    );

    // The other listener has its own count.
    let mut admin_side = tokio::net::TcpStream::connect(&sc).await.unwrap();
    assert!(api_versions_answered(&mut admin_side).await);

    // Once some close, new connections are accepted again (the server notices the close
    // asynchronously: retry until then, bounded).
    held.truncate(1);
    bounded("a slot frees up", async {
        loop {
            let mut stream = tokio::net::TcpStream::connect(&spu).await.unwrap();
            if api_versions_answered(&mut stream).await {
                return stream;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// `VmRSS` and `VmData` of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmData:"))
}

/// Whether the kernel holds no unread bytes for any server-side socket of `port` whose peer
/// port is in `peers` (and each such socket exists): the server has read what was sent.
fn all_read_by_server(port: u16, peers: &[u16]) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port_of = |address: &str| {
        address
            .rsplit(':')
            .next()
            .and_then(|hex| u16::from_str_radix(hex, 16).ok())
    };
    let mut drained = 0;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 5 || port_of(fields[1]) != Some(port) {
            continue;
        }
        if !port_of(fields[2]).is_some_and(|peer| peers.contains(&peer)) {
            continue;
        }
        let rx_queue = fields[4]
            .split(':')
            .nth(1)
            .and_then(|hex| u64::from_str_radix(hex, 16).ok());
        if fields[3] == "01" && rx_queue == Some(0) {
            drained += 1;
        }
    }
    drained == peers.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_size_prefix_without_the_bytes_costs_no_memory() {
    use tokio::io::AsyncWriteExt;

    const CONNECTIONS: usize = 50;
    const PROMISED: usize = 32 * 1024 * 1024;
    let (srv, config, _, spu) = start_at(&["--fluvio-max-connections-per-peer", "100"]).await;
    let spu_port: u16 = spu.rsplit(':').next().unwrap().parse().unwrap();
    let (rss_before, data_before) = memory_kib(srv.pid());

    let mut frame = i32::try_from(PROMISED).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(b"just a few bytes");
    let mut attackers = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut stream = tokio::net::TcpStream::connect(&spu).await.unwrap();
        stream.write_all(&frame).await.unwrap();
        ports.push(stream.local_addr().unwrap().port());
        attackers.push(stream);
    }
    // Measure only once the server has read every prefix (the kernel holds nothing unread).
    bounded("the server reads every prefix", async {
        while !all_read_by_server(spu_port, &ports) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let mut probe = tokio::net::TcpStream::connect(&spu).await.unwrap();
    assert!(api_versions_answered(&mut probe).await);
    let (rss_after, data_after) = memory_kib(srv.pid());

    let promised_kib = (CONNECTIONS * PROMISED / 1024) as u64;
    let rss_growth = rss_after.saturating_sub(rss_before);
    let data_growth = data_after.saturating_sub(data_before);
    assert!(
        rss_growth < promised_kib / 16,
        "RSS grew by {rss_growth} KiB for {CONNECTIONS} promised 32 MiB frames"
    );
    // Allocated (not just touched) memory: the old code reserved each promised frame.
    assert!(
        data_growth < promised_kib / 4,
        "VmData grew by {data_growth} KiB for {CONNECTIONS} promised 32 MiB frames"
    );

    // Meanwhile the server serves other clients.
    let admin = bounded("admin", FluvioAdmin::connect_with_config(&config))
        .await
        .unwrap();
    create_topic(&admin, "still-serving", 1).await;
    let fluvio = bounded("connect", Fluvio::connect_with_config(&config))
        .await
        .unwrap();
    let producer = bounded("producer", fluvio.topic_producer("still-serving"))
        .await
        .unwrap();
    bounded("send", producer.send(RecordKey::NULL, "ok"))
        .await
        .unwrap();
    bounded("flush", producer.flush()).await.unwrap();
    assert_eq!(consume(&fluvio, "still-serving", 1).await.len(), 1);
    drop(attackers);
}
