//! Tests of the embedded log on real redb files in temp dirs.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fluvio_protocol::record::{Batch, MemoryRecords, Record};
use fluvio_protocol::{Decoder, Encoder};

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TOPIC: &str = "task-events";
/// A generous bound for things that should happen at once; never a polling interval.
const PATIENCE: Duration = Duration::from_secs(10);

fn temp_log() -> Result<(tempfile::TempDir, PathBuf, EventLog), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("log.redb");
    let log = EventLog::open(&path, LogConfig::default())?;
    Ok((dir, path, log))
}

fn record(key: Option<&str>, value: &str, timestamp_ms: i64) -> NewRecord {
    NewRecord {
        key: key.map(|key| key.as_bytes().to_vec()),
        value: value.as_bytes().to_vec(),
        timestamp_ms,
    }
}

fn retention(max_age: Duration, max_bytes: Option<u64>) -> Retention {
    Retention { max_age, max_bytes }
}

/// A batch as the official producer encodes it: fluvio-protocol's encoder, base offset 0.
fn producer_batch(values: &[&str], timestamp_ms: i64) -> Result<Vec<u8>, std::io::Error> {
    let mut records: Vec<Record> = values
        .iter()
        .map(|value| Record::new_key_value(format!("key-{value}"), Vec::from(*value)))
        .collect();
    let mut batch = Batch::<MemoryRecords>::new();
    batch.add_records(&mut records);
    batch.header.first_timestamp = timestamp_ms;
    batch.header.max_time_stamp = timestamp_ms;
    let mut bytes = Vec::new();
    batch.encode(&mut bytes, 0)?;
    Ok(bytes)
}

fn values(records: &[LogRecord]) -> Vec<String> {
    records
        .iter()
        .map(|record| String::from_utf8_lossy(&record.value).into_owned())
        .collect()
}

#[tokio::test]
async fn default_topics_exist_from_first_start() -> TestResult {
    let (_dir, _path, log) = temp_log()?;
    let topics = log.topics();
    let names: Vec<&str> = topics.iter().map(|topic| topic.name.as_str()).collect();
    assert_eq!(names, ["reminders", "task-events", "task-updates"]);
    let day = Duration::from_secs(86_400);
    for topic in &topics {
        assert_eq!(topic.partitions, 1);
        let days = if topic.name == "task-updates" { 1 } else { 7 };
        assert_eq!(topic.retention, retention(day * days, None));
        assert_eq!(log.end_offset(&topic.name, 0)?, 0);
        assert_eq!(log.start_offset(&topic.name, 0)?, 0);
    }
    Ok(())
}

#[tokio::test]
async fn append_and_read_round_trip_with_contiguous_offsets() -> TestResult {
    let (_dir, _path, log) = temp_log()?;
    let first = log
        .append(
            TOPIC,
            vec![
                record(Some("task-1"), "created", 1_000),
                record(None, "no key", 1_005),
                record(Some("task-1"), "updated", 999),
            ],
        )
        .await?;
    assert_eq!(first, [(0, 0), (0, 1), (0, 2)]);
    let second = log
        .append(TOPIC, vec![record(Some("task-2"), "deleted", 2_000)])
        .await?;
    assert_eq!(second, [(0, 3)]);
    assert_eq!(log.append(TOPIC, Vec::new()).await?, []);
    assert_eq!(log.end_offset(TOPIC, 0)?, 4);

    let all = log.read(TOPIC, 0, 0, 100).await?;
    assert_eq!(values(&all), ["created", "no key", "updated", "deleted"]);
    let offsets: Vec<u64> = all.iter().map(|record| record.offset).collect();
    assert_eq!(offsets, [0, 1, 2, 3]);
    assert_eq!(all[0].key.as_deref(), Some(&b"task-1"[..]));
    assert_eq!(all[1].key, None);
    let timestamps: Vec<i64> = all.iter().map(|record| record.timestamp_ms).collect();
    assert_eq!(timestamps, [1_000, 1_005, 999, 2_000]);
    assert!(
        all.iter()
            .all(|record| record.topic == TOPIC && record.partition == 0)
    );

    // From the middle of a batch, and with a record limit.
    assert_eq!(
        values(&log.read(TOPIC, 0, 1, 2).await?),
        ["no key", "updated"]
    );
    assert!(log.read(TOPIC, 0, 4, 10).await?.is_empty());

    // The stored bytes are Fluvio batches: fluvio-protocol decodes them to the same records.
    let batches = log.read_batches(TOPIC, 0, 0, usize::MAX).await?;
    assert_eq!(batches.len(), 2);
    assert_eq!((batches[0].base_offset, batches[0].last_offset), (0, 2));
    assert_eq!((batches[1].base_offset, batches[1].last_offset), (3, 3));
    let decoded = Batch::<MemoryRecords>::decode_from(&mut Cursor::new(&batches[0].bytes[..]), 0)?;
    assert_eq!(decoded.get_base_offset(), 0);
    assert_eq!(decoded.get_last_offset(), 2);
    assert!(decoded.validate_decoding());
    assert_eq!(decoded.get_header().first_timestamp, 1_000);
    assert_eq!(decoded.get_header().max_time_stamp, 1_005);
    let records = decoded.own_records();
    assert_eq!(records.len(), 3);
    assert_eq!(records[2].value.as_ref(), b"updated");
    assert_eq!(
        records[2].key.as_ref().map(|key| key.as_ref()),
        Some(&b"task-1"[..])
    );
    assert_eq!(records[2].timestamp_delta(), -1);
    assert_eq!(records[1].key, None);
    let second = Batch::<MemoryRecords>::decode_from(&mut Cursor::new(&batches[1].bytes[..]), 0)?;
    assert_eq!(second.get_base_offset(), 3);
    Ok(())
}

#[tokio::test]
async fn keyed_records_spread_over_partitions_and_keep_per_key_order() -> TestResult {
    let (_dir, _path, log) = temp_log()?;
    log.create_topic("multi", 4, retention(Duration::from_secs(60), None))
        .await?;
    let records: Vec<NewRecord> = (0..40)
        .map(|index| record(Some(&format!("k{}", index % 10)), &format!("v{index}"), 1))
        .collect();
    let placed = log.append("multi", records.clone()).await?;
    let mut used = std::collections::BTreeSet::new();
    for (input, (partition, _)) in records.iter().zip(&placed) {
        assert_eq!(*partition, partition_for(input.key.as_deref(), 4));
        used.insert(*partition);
    }
    assert!(
        used.len() > 1,
        "ten keys should use more than one of four partitions"
    );
    let mut total = 0;
    for partition in 0..4 {
        let read = log.read("multi", partition, 0, 1000).await?;
        // Offsets within a partition are contiguous from 0, and a key's records keep their order.
        for (expected, record) in read.iter().enumerate() {
            assert_eq!(record.offset, expected as u64);
        }
        assert_eq!(log.end_offset("multi", partition)?, read.len() as u64);
        total += read.len();
    }
    assert_eq!(total, 40);
    let k3: Vec<String> = log
        .read("multi", partition_for(Some(b"k3"), 4), 0, 1000)
        .await?
        .into_iter()
        .filter(|record| record.key.as_deref() == Some(b"k3"))
        .map(|record| String::from_utf8_lossy(&record.value).into_owned())
        .collect();
    assert_eq!(k3, ["v3", "v13", "v23", "v33"]);
    assert!(matches!(
        log.read("multi", 4, 0, 1).await,
        Err(LogError::InvalidPartition { partition: 4, .. })
    ));
    Ok(())
}

#[tokio::test]
async fn raw_batches_get_base_offsets_and_keep_their_bytes() -> TestResult {
    let (_dir, _path, log) = temp_log()?;
    let sent = producer_batch(&["a", "b", "c"], 1_700_000_000_000)?;
    assert_eq!(&sent[0..8], &[0; 8], "producers send base offset 0");
    assert_eq!(log.append_raw_batch(TOPIC, 0, sent.clone()).await?, 0);
    assert_eq!(log.append_raw_batch(TOPIC, 0, sent.clone()).await?, 3);
    assert_eq!(log.end_offset(TOPIC, 0)?, 6);

    let stored = log.read_batches(TOPIC, 0, 0, usize::MAX).await?;
    assert_eq!(stored.len(), 2);
    for (batch, base) in stored.iter().zip([0u64, 3]) {
        assert_eq!(batch.base_offset, base);
        assert_eq!(batch.last_offset, base + 2);
        assert_eq!(&batch.bytes[0..8], &(base as i64).to_be_bytes());
        assert_eq!(
            &batch.bytes[8..],
            &sent[8..],
            "bytes after the base offset are untouched"
        );
    }
    let read = log.read(TOPIC, 0, 2, 10).await?;
    assert_eq!(values(&read), ["c", "a", "b", "c"]);
    assert_eq!(read[1].key.as_deref(), Some(&b"key-a"[..]));
    assert_eq!(read[1].offset, 3);
    assert_eq!(read[1].timestamp_ms, 1_700_000_000_000);

    // Records appended through the API follow on.
    let placed = log.append(TOPIC, vec![record(None, "d", 5)]).await?;
    assert_eq!(placed, [(0, 6)]);
    Ok(())
}

#[tokio::test]
async fn compressed_raw_batches_stay_compressed() -> TestResult {
    let (_dir, _path, log) = temp_log()?;
    log.append(TOPIC, vec![record(None, "plain", 1)]).await?;
    // Mark a batch as gzip (attributes byte 22): stored and served as is, never decoded here.
    let mut sent = producer_batch(&["x", "y"], 1)?;
    sent[22] |= 1;
    assert_eq!(log.append_raw_batch(TOPIC, 0, sent.clone()).await?, 1);
    let stored = log.read_batches(TOPIC, 0, 1, usize::MAX).await?;
    assert_eq!(stored.len(), 1);
    assert_eq!(&stored[0].bytes[8..], &sent[8..]);
    assert_eq!((stored[0].base_offset, stored[0].last_offset), (1, 2));
    // Records before the compressed batch are returned; a read starting at it says why not.
    assert_eq!(values(&log.read(TOPIC, 0, 0, 10).await?), ["plain"]);
    assert_eq!(
        log.read(TOPIC, 0, 2, 10).await,
        Err(LogError::Compressed {
            topic: TOPIC.to_owned(),
            partition: 0,
            offset: 1
        })
    );
    Ok(())
}

#[tokio::test]
async fn empty_and_malformed_raw_batches_are_rejected() -> TestResult {
    let (_dir, _path, log) = temp_log()?;
    let good = producer_batch(&["a", "b"], 1)?;
    let mut empty_batch = Vec::new();
    Batch::<MemoryRecords>::new().encode(&mut empty_batch, 0)?;
    assert_eq!(
        log.append_raw_batch(TOPIC, 0, empty_batch).await,
        Err(LogError::Empty)
    );
    let malformed: Vec<(&str, Vec<u8>)> = vec![
        ("no bytes", Vec::new()),
        ("truncated header", good[..20].to_vec()),
        ("truncated records", good[..good.len() - 1].to_vec()),
        ("two batches", [good.clone(), good.clone()].concat()),
        ("bad magic", {
            let mut bytes = good.clone();
            bytes[16] = 1;
            bytes
        }),
        ("count mismatch", {
            let mut bytes = good.clone();
            bytes[26] = 5; // last_offset_delta says 6 records, the batch holds 2
            bytes
        }),
        ("garbage records", {
            let mut bytes = good.clone();
            let at = bytes.len() - 4;
            bytes[at..].copy_from_slice(&[0xff; 4]);
            bytes
        }),
    ];
    for (why, bytes) in malformed {
        let result = log.append_raw_batch(TOPIC, 0, bytes).await;
        assert!(
            matches!(result, Err(LogError::Malformed(_) | LogError::Empty)),
            "{why}: {result:?}"
        );
    }
    assert!(matches!(
        log.append_raw_batch(TOPIC, 1, good.clone()).await,
        Err(LogError::InvalidPartition { partition: 1, .. })
    ));
    assert_eq!(
        log.append_raw_batch("nope", 0, good).await,
        Err(LogError::NotFound("nope".to_owned()))
    );
    assert_eq!(log.end_offset(TOPIC, 0)?, 0, "nothing was stored");
    Ok(())
}

#[tokio::test]
async fn everything_survives_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("log.redb");
    {
        let log = EventLog::open(&path, LogConfig::default())?;
        log.append(
            TOPIC,
            vec![record(Some("a"), "one", 1), record(None, "two", 2)],
        )
        .await?;
        log.append("reminders", vec![record(None, "ring", 3)])
            .await?;
        log.create_topic(
            "custom",
            2,
            retention(Duration::from_secs(5), Some(1 << 20)),
        )
        .await?;
        log.commit_offset("audit", TOPIC, 0, 2).await?;
        log.commit_offset("notification", "reminders", 0, 1).await?;
        log.commit_offset("gone", TOPIC, 0, 1).await?;
        log.delete_committed_offset("gone", TOPIC, 0).await?;
        // Dropping a clone keeps the log open; dropping the last handle closes the file.
        let clone = log.clone();
        drop(clone);
        assert_eq!(log.end_offset(TOPIC, 0)?, 2);
    }
    let log = EventLog::open(&path, LogConfig::default())?;
    assert_eq!(values(&log.read(TOPIC, 0, 0, 10).await?), ["one", "two"]);
    assert_eq!(log.end_offset(TOPIC, 0)?, 2);
    assert_eq!(log.end_offset("reminders", 0)?, 1);
    assert_eq!(log.committed_offset("audit", TOPIC, 0).await?, Some(2));
    assert_eq!(
        log.committed_offset("notification", "reminders", 0).await?,
        Some(1)
    );
    assert_eq!(log.committed_offset("gone", TOPIC, 0).await?, None);
    assert_eq!(log.committed_offset("never", TOPIC, 0).await?, None);
    let custom = log
        .topics()
        .into_iter()
        .find(|topic| topic.name == "custom")
        .ok_or("custom topic lost")?;
    assert_eq!(custom.partitions, 2);
    assert_eq!(
        custom.retention,
        retention(Duration::from_secs(5), Some(1 << 20))
    );
    // Appends continue after the recovered end offset.
    assert_eq!(
        log.append(TOPIC, vec![record(None, "three", 4)]).await?,
        [(0, 2)]
    );
    Ok(())
}

#[tokio::test]
async fn configured_retention_is_applied_on_reopen() -> TestResult {
    let (_dir, path, log) = temp_log()?;
    drop(log);
    let mut config = LogConfig::default();
    let hour = retention(Duration::from_secs(3600), Some(4096));
    config
        .retention
        .insert("task-updates".to_owned(), hour.clone());
    config
        .retention
        .insert("extra".to_owned(), retention(Duration::from_secs(1), None));
    let log = EventLog::open(&path, config)?;
    let topics = log.topics();
    let updates = topics
        .iter()
        .find(|topic| topic.name == "task-updates")
        .ok_or("task-updates missing")?;
    assert_eq!(updates.retention, hour);
    assert!(topics.iter().any(|topic| topic.name == "extra"));

    let mut bad = LogConfig::default();
    bad.retention
        .insert("Bad_Name".to_owned(), retention(Duration::ZERO, None));
    drop(log);
    assert!(matches!(
        EventLog::open(&path, bad),
        Err(LogError::InvalidName(_))
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_get_unique_contiguous_offsets() -> TestResult {
    let (_dir, _path, log) = temp_log()?;
    let (tasks, per_task) = (32usize, 25usize);
    let mut joins = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let log = log.clone();
        joins.spawn(async move {
            let mut offsets = Vec::new();
            for index in 0..per_task {
                let value = format!("{task}-{index}");
                let placed = log.append(TOPIC, vec![record(None, &value, 1)]).await?;
                offsets.push((placed[0].1, value));
            }
            Ok::<_, LogError>(offsets)
        });
    }
    let mut all = Vec::new();
    while let Some(done) = joins.join_next().await {
        all.extend(done??);
    }
    all.sort();
    let offsets: Vec<u64> = all.iter().map(|(offset, _)| *offset).collect();
    let expected: Vec<u64> = (0..(tasks * per_task) as u64).collect();
    assert_eq!(offsets, expected);
    // Each offset holds the record its append was told about.
    let read = log.read(TOPIC, 0, 0, usize::MAX).await?;
    assert_eq!(read.len(), tasks * per_task);
    for (record, (offset, value)) in read.iter().zip(&all) {
        assert_eq!(record.offset, *offset);
        assert_eq!(record.value, value.as_bytes());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_beyond_wakes_on_append() -> TestResult {
    let (_dir, _path, log) = temp_log()?;
    // Already beyond: resolves at once.
    log.append(TOPIC, vec![record(None, "first", 1)]).await?;
    tokio::time::timeout(PATIENCE, log.wait_beyond(TOPIC, 0, 0)).await??;

    let waiter = {
        let log = log.clone();
        tokio::spawn(async move { log.wait_beyond(TOPIC, 0, 2).await })
    };
    // Appends elsewhere, or up to offset 2 only, leave it waiting; the append of offset 2 wakes it.
    log.append("reminders", vec![record(None, "other", 1)])
        .await?;
    log.append(TOPIC, vec![record(None, "second", 1)]).await?;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(
        !waiter.is_finished(),
        "end offset is 2; the waiter wants more than 2"
    );
    log.append(TOPIC, vec![record(None, "third", 1)]).await?;
    tokio::time::timeout(PATIENCE, waiter).await???;
    assert_eq!(log.end_offset(TOPIC, 0)?, 3);
    Ok(())
}

#[tokio::test]
async fn wait_beyond_fails_when_its_topic_is_deleted() -> TestResult {
    let (_dir, _path, log) = temp_log()?;
    log.create_topic("short-lived", 1, retention(Duration::from_secs(1), None))
        .await?;
    let waiter = {
        let log = log.clone();
        tokio::spawn(async move { log.wait_beyond("short-lived", 0, 0).await })
    };
    tokio::task::yield_now().await;
    log.delete_topic("short-lived").await?;
    let result = tokio::time::timeout(PATIENCE, waiter).await??;
    assert_eq!(result, Err(LogError::NotFound("short-lived".to_owned())));
    Ok(())
}

#[tokio::test]
async fn read_batches_respects_max_bytes_but_returns_one_batch() -> TestResult {
    let (_dir, _path, log) = temp_log()?;
    for index in 0..5 {
        log.append(
            TOPIC,
            vec![
                record(None, &format!("{index}-a"), 1),
                record(None, &format!("{index}-b"), 1),
            ],
        )
        .await?;
    }
    let all = log.read_batches(TOPIC, 0, 0, usize::MAX).await?;
    assert_eq!(all.len(), 5);
    let size = all[0].bytes.len();
    assert!(all.iter().all(|batch| batch.bytes.len() == size));

    let one = log.read_batches(TOPIC, 0, 0, 1).await?;
    assert_eq!(
        one.len(),
        1,
        "at least one batch even if it exceeds max_bytes"
    );
    assert_eq!(one[0].base_offset, 0);
    let two = log.read_batches(TOPIC, 0, 0, 2 * size + size / 2).await?;
    assert_eq!(two.len(), 2);
    let exact = log.read_batches(TOPIC, 0, 0, 3 * size).await?;
    assert_eq!(exact.len(), 3);
    // From an offset inside a batch: that whole batch comes first.
    let middle = log.read_batches(TOPIC, 0, 5, size).await?;
    assert_eq!(
        (middle.len(), middle[0].base_offset, middle[0].last_offset),
        (1, 4, 5)
    );
    assert!(log.read_batches(TOPIC, 0, 10, 1 << 20).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn retention_by_age_removes_whole_old_batches() -> TestResult {
    let (_dir, path, log) = temp_log()?;
    log.create_topic("aging", 1, retention(Duration::from_millis(1_000), None))
        .await?;
    // Batches whose newest records are at 1000, 2000, 3000 ms; the first holds two records.
    log.append(
        "aging",
        vec![record(None, "a", 500), record(None, "b", 1_000)],
    )
    .await?;
    log.append(
        "aging",
        vec![record(None, "c", 1_500), record(None, "d", 2_000)],
    )
    .await?;
    log.append("aging", vec![record(None, "e", 3_000)]).await?;
    // Cutoff 1500: only the first batch is wholly older (the second's newest record is 2000).
    assert_eq!(log.enforce_retention(2_500).await?, 2);
    assert_eq!(log.start_offset("aging", 0)?, 2);
    assert_eq!(log.end_offset("aging", 0)?, 5);
    assert_eq!(values(&log.read("aging", 0, 0, 10).await?), ["c", "d", "e"]);
    assert_eq!(log.enforce_retention(2_500).await?, 0);
    // Default topics (7 days) keep everything.
    log.append(TOPIC, vec![record(None, "kept", 0)]).await?;
    assert_eq!(log.enforce_retention(3_900).await?, 2);
    assert_eq!(log.start_offset("aging", 0)?, 4);
    assert_eq!(log.end_offset(TOPIC, 0)?, 1);
    assert_eq!(log.start_offset(TOPIC, 0)?, 0);
    // Everything expired: start catches up with end, and new appends continue the offsets.
    assert_eq!(log.enforce_retention(10_000).await?, 1);
    assert_eq!(log.start_offset("aging", 0)?, 5);
    assert!(log.read("aging", 0, 0, 10).await?.is_empty());
    drop(log);
    let log = EventLog::open(&path, LogConfig::default())?;
    assert_eq!(log.start_offset("aging", 0)?, 5);
    assert_eq!(log.end_offset("aging", 0)?, 5);
    assert_eq!(
        log.append("aging", vec![record(None, "f", 9)]).await?,
        [(0, 5)]
    );
    Ok(())
}

#[tokio::test]
async fn batches_without_timestamps_age_with_the_next_expired_batch() -> TestResult {
    let (_dir, _path, log) = temp_log()?;
    log.create_topic("untimed", 1, retention(Duration::from_millis(100), None))
        .await?;
    let untimed = producer_batch(&["u"], -1)?;
    log.append_raw_batch("untimed", 0, untimed.clone()).await?;
    log.append("untimed", vec![record(None, "fresh", 1_000)])
        .await?;
    assert_eq!(
        log.enforce_retention(1_050).await?,
        0,
        "nothing expired yet"
    );
    log.append_raw_batch("untimed", 0, untimed).await?;
    log.append("untimed", vec![record(None, "later", 5_000)])
        .await?;
    // At 2000 the "fresh" batch has expired, so the untimed batch before it goes too.
    assert_eq!(log.enforce_retention(2_000).await?, 2);
    assert_eq!(
        values(&log.read("untimed", 0, 0, 10).await?),
        ["u", "later"]
    );
    Ok(())
}

#[tokio::test]
async fn retention_by_bytes_removes_oldest_whole_batches() -> TestResult {
    let (_dir, _path, log) = temp_log()?;
    let probe = batch::encode(&[&record(None, "value-0", 1)])?.0.len() as u64;
    let limit = 2 * probe + probe / 2;
    log.create_topic(
        "sized",
        1,
        retention(Duration::from_secs(3600), Some(limit)),
    )
    .await?;
    for index in 0..5 {
        log.append(
            "sized",
            vec![record(None, &format!("value-{index}"), 1_000)],
        )
        .await?;
    }
    assert_eq!(log.enforce_retention(2_000).await?, 3);
    assert_eq!(log.start_offset("sized", 0)?, 3);
    assert_eq!(log.end_offset("sized", 0)?, 5);
    assert_eq!(
        values(&log.read("sized", 0, 0, 10).await?),
        ["value-3", "value-4"]
    );
    let kept: usize = log
        .read_batches("sized", 0, 0, usize::MAX)
        .await?
        .iter()
        .map(|batch| batch.bytes.len())
        .sum();
    assert!(kept as u64 <= limit);
    assert_eq!(log.enforce_retention(2_000).await?, 0);
    Ok(())
}

#[tokio::test]
async fn topics_are_validated_created_and_deleted() -> TestResult {
    let (_dir, path, log) = temp_log()?;
    let keep = retention(Duration::from_secs(60), None);
    for bad in [
        "",
        "UPPER",
        "-lead",
        "trail-",
        "under_score",
        "dot.ted",
        &"a".repeat(64),
    ] {
        assert_eq!(
            log.create_topic(bad, 1, keep.clone()).await,
            Err(LogError::InvalidName(bad.to_owned())),
            "{bad:?}"
        );
    }
    assert!(validate_topic_name(&"a".repeat(63)).is_ok());
    assert!(validate_topic_name("task-events-dlq").is_ok());
    assert!(matches!(
        log.create_topic("zero", 0, keep.clone()).await,
        Err(LogError::InvalidArgument(_))
    ));
    assert_eq!(
        log.create_topic(TOPIC, 1, keep.clone()).await,
        Err(LogError::AlreadyExists(TOPIC.to_owned()))
    );
    assert_eq!(
        log.delete_topic("missing").await,
        Err(LogError::NotFound("missing".to_owned()))
    );

    log.create_topic("scratch", 2, keep.clone()).await?;
    log.append("scratch", vec![record(None, "x", 1)]).await?;
    log.commit_offset("g", "scratch", 1, 0).await?;
    assert!(log.topics().iter().any(|topic| topic.name == "scratch"));
    log.delete_topic("scratch").await?;
    assert!(log.topics().iter().all(|topic| topic.name != "scratch"));
    assert_eq!(
        log.append("scratch", vec![record(None, "y", 1)]).await,
        Err(LogError::NotFound("scratch".to_owned()))
    );
    assert!(matches!(
        log.end_offset("scratch", 0),
        Err(LogError::NotFound(_))
    ));
    assert_eq!(log.committed_offset("g", "scratch", 1).await?, None);
    assert!(matches!(
        log.commit_offset("g", "scratch", 0, 1).await,
        Err(LogError::NotFound(_))
    ));
    assert!(matches!(
        log.commit_offset("", TOPIC, 0, 1).await,
        Err(LogError::InvalidArgument(_))
    ));

    // Re-created, the topic starts empty; deletion is durable.
    log.create_topic("scratch", 1, keep).await?;
    assert_eq!(log.end_offset("scratch", 0)?, 0);
    assert!(log.read("scratch", 0, 0, 10).await?.is_empty());
    log.delete_topic("scratch").await?;
    drop(log);
    let log = EventLog::open(&path, LogConfig::default())?;
    assert!(log.topics().iter().all(|topic| topic.name != "scratch"));
    Ok(())
}

#[test]
fn partitioning_is_stable() {
    assert_eq!(partition_for(None, 8), 0);
    assert_eq!(partition_for(Some(b"anything"), 1), 0);
    // FNV-1a of "a" is 0xaf63dc4c8601ec8c; fixed forever, or keys would move between builds.
    assert_eq!(
        partition_for(Some(b"a"), 1000),
        (0xaf63_dc4c_8601_ec8c_u64 % 1000) as u32
    );
}

/// Runs the durable-append benchmark at a small scale so it stays working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_append_reports_a_rate() -> TestResult {
    let dir = tempfile::tempdir()?;
    let rate = bench_append(&dir.path().join("bench.redb"), 200, 200, 8).await?;
    assert!(rate > 0.0);
    let log = EventLog::open(&dir.path().join("bench.redb"), LogConfig::default())?;
    assert_eq!(log.end_offset("bench", 0)?, 200);
    Ok(())
}

/// `cargo test -p taskstream-engine --release -- --ignored --nocapture bench_durable_append`
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: prints durable append rates"]
async fn bench_durable_append() -> TestResult {
    for concurrency in [1, 8, 64, 256] {
        let dir = tempfile::tempdir()?;
        let records = if concurrency == 1 { 2_000 } else { 50_000 };
        let path: &Path = &dir.path().join("bench.redb");
        let rate = bench_append(path, records, 200, concurrency).await?;
        println!(
            "durable append, 200-byte records, concurrency {concurrency:>3}: {rate:>9.0} records/s"
        );
    }
    Ok(())
}
