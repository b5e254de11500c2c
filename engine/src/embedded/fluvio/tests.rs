//! Wire-level tests of the Fluvio server: requests built with the published schema crates,
//! sent over raw TCP, to check what the official client does not show (ordering of produce
//! replies, stream wake-up and acks, malformed frames). The official client is exercised in
//! `engine/tests/fluvio_client.rs`.

use std::io::Cursor;
use std::marker::PhantomData;
use std::time::Duration;

use fluvio_protocol::api::RequestHeader;
use fluvio_protocol::link::ErrorCode;
use fluvio_protocol::link::versions::{ApiVersionsRequest, ApiVersionsResponse};
use fluvio_protocol::record::{Batch, MemoryRecords, RawRecords, Record, RecordSet};
use fluvio_protocol::{Decoder, Encoder};
use fluvio_spu_schema::produce::{
    PartitionProduceData, ProduceRequest, ProduceResponse, TopicProduceData,
};
use fluvio_spu_schema::server::stream_fetch::{DefaultStreamFetchRequest, StreamFetchResponse};
use fluvio_spu_schema::server::update_offset::{
    OffsetUpdate, UpdateOffsetsRequest, UpdateOffsetsResponse,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::*;
use crate::embedded::log::{Bytes, LogConfig, NewRecord};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A generous bound for things that should happen at once; never a polling interval.
const PATIENCE: Duration = Duration::from_secs(10);

struct Broker {
    log: EventLog,
    sc: std::net::SocketAddr,
    spu: std::net::SocketAddr,
    stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

async fn broker() -> Result<Broker, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log = EventLog::open(&dir.path().join("log.redb"), LogConfig::default())?;
    let sc = TcpListener::bind("127.0.0.1:0").await?;
    let spu = TcpListener::bind("127.0.0.1:0").await?;
    let (sc_addr, spu_addr) = (sc.local_addr()?, spu.local_addr()?);
    let (stop, shutdown) = watch::channel(false);
    // The defaults: the appliance's topics are read-only to Fluvio clients.
    let config = FluvioConfig::new(spu_addr.to_string());
    tokio::spawn(serve_sc(sc, log.clone(), config.clone(), shutdown.clone()));
    tokio::spawn(serve_spu(spu, log.clone(), config, shutdown));
    Ok(Broker {
        log,
        sc: sc_addr,
        spu: spu_addr,
        stop,
        _dir: dir,
    })
}

/// A bare protocol client: frames out, frames in, nothing else.
struct Wire {
    stream: TcpStream,
    next_id: i32,
}

impl Wire {
    async fn connect(addr: std::net::SocketAddr) -> Result<Self, Box<dyn std::error::Error>> {
        Ok(Self {
            stream: TcpStream::connect(addr).await?,
            next_id: 1,
        })
    }

    async fn send<R: Encoder>(
        &mut self,
        api_key: u16,
        version: i16,
        body: &R,
    ) -> Result<i32, Box<dyn std::error::Error>> {
        let id = self.next_id;
        self.next_id += 1;
        let mut header = RequestHeader::new(api_key);
        header
            .set_api_version(version)
            .set_correlation_id(id)
            .set_client_id("wire-test");
        let mut payload = Vec::new();
        header.encode(&mut payload, version)?;
        body.encode(&mut payload, version)?;
        self.raw(&(payload.len() as i32).to_be_bytes()).await?;
        self.raw(&payload).await?;
        Ok(id)
    }

    async fn raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// The next frame as (correlation id, payload after it); `None` once the server closed.
    async fn frame(&mut self) -> Result<Option<(i32, Vec<u8>)>, Box<dyn std::error::Error>> {
        let mut size = [0u8; 4];
        match tokio::time::timeout(PATIENCE, self.stream.read_exact(&mut size)).await? {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
            Err(error) => return Err(error.into()),
        }
        let mut payload = vec![0u8; i32::from_be_bytes(size) as usize];
        tokio::time::timeout(PATIENCE, self.stream.read_exact(&mut payload)).await??;
        let id = i32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
        Ok(Some((id, payload[4..].to_vec())))
    }

    async fn reply<P: Decoder>(
        &mut self,
        version: i16,
    ) -> Result<(i32, P), Box<dyn std::error::Error>> {
        let (id, payload) = self.frame().await?.ok_or("connection closed")?;
        Ok((id, P::decode_from(&mut Cursor::new(&payload), version)?))
    }
}

fn batch(values: &[&str]) -> Result<Vec<u8>, std::io::Error> {
    let mut records: Vec<Record> = values
        .iter()
        .map(|value| Record::new_key_value(format!("k-{value}"), Vec::from(*value)))
        .collect();
    let mut batch = Batch::<MemoryRecords>::new();
    batch.add_records(&mut records);
    let mut bytes = Vec::new();
    batch.encode(&mut bytes, 0)?;
    Ok(bytes)
}

fn entry(partition: u32, batches: Vec<Vec<u8>>) -> PartitionProduceData<RawBatches> {
    PartitionProduceData {
        partition_index: partition,
        records: RawBatches::new(batches.into_iter().map(Bytes::from).collect()),
    }
}

/// A client-made topic (one partition), as a Fluvio create would make it.
async fn own_topic(broker: &Broker, name: &str) -> TestResult {
    let retention = crate::embedded::log::Retention {
        max_age: Duration::from_secs(86_400),
        max_bytes: None,
    };
    broker.log.create_topic(name, 1, retention).await?;
    Ok(())
}

#[tokio::test]
async fn produce_answers_every_entry_in_order() -> TestResult {
    let broker = broker().await?;
    own_topic(&broker, "orders").await?;
    let mut spu = Wire::connect(broker.spu).await?;
    let request = ProduceRequest::<RawBatches> {
        topics: vec![
            TopicProduceData {
                name: "orders".to_owned(),
                partitions: vec![
                    entry(0, vec![batch(&["a", "b"])?]),
                    entry(0, vec![batch(&["c"])?]),
                    entry(7, vec![batch(&["nowhere"])?]),
                    entry(0, vec![batch(&["d"])?, batch(&["e", "f"])?]),
                ],
                data: PhantomData,
            },
            TopicProduceData {
                name: "no-such-topic".to_owned(),
                partitions: vec![entry(0, vec![batch(&["x"])?])],
                data: PhantomData,
            },
        ],
        ..Default::default()
    };
    let id = spu.send(0, 25, &request).await?;
    let (reply_id, response): (i32, ProduceResponse) = spu.reply(25).await?;
    assert_eq!(reply_id, id);
    let events = &response.responses[0].partitions;
    let outcome: Vec<_> = events
        .iter()
        .map(|entry| {
            (
                entry.partition_index,
                entry.error_code.clone(),
                entry.base_offset,
            )
        })
        .collect();
    assert_eq!(
        outcome,
        vec![
            (0, ErrorCode::None, 0),
            (0, ErrorCode::None, 2),
            (7, ErrorCode::NotLeaderForPartition, -1),
            (0, ErrorCode::None, 3),
        ]
    );
    assert_eq!(
        response.responses[1].partitions[0].error_code,
        ErrorCode::TopicNotFound
    );
    let values: Vec<_> = broker
        .log
        .read("orders", 0, 0, 100)
        .await?
        .into_iter()
        .map(|record| String::from_utf8_lossy(&record.value).into_owned())
        .collect();
    assert_eq!(values, ["a", "b", "c", "d", "e", "f"]);
    Ok(())
}

#[tokio::test]
async fn producing_to_an_appliance_topic_is_refused_by_default_with_a_clear_error() -> TestResult {
    let broker = broker().await?;
    let mut spu = Wire::connect(broker.spu).await?;
    let request = ProduceRequest::<RawBatches> {
        topics: vec![TopicProduceData {
            name: "task-events".to_owned(),
            partitions: vec![entry(0, vec![batch(&["forged"])?])],
            data: PhantomData,
        }],
        ..Default::default()
    };
    spu.send(0, 25, &request).await?;
    let (_, response): (i32, ProduceResponse) = spu.reply(25).await?;
    let code = &response.responses[0].partitions[0].error_code;
    assert!(
        matches!(code, ErrorCode::Other(message) if message.contains("read-only") && message.contains("--fluvio-read-only=false")),
        "{code:?}"
    );
    assert_eq!(
        broker.log.end_offset("task-events", 0)?,
        0,
        "nothing written"
    );
    Ok(())
}

#[tokio::test]
async fn a_stream_sends_nothing_while_empty_then_wakes_on_append_and_follows_acks() -> TestResult {
    let broker = broker().await?;
    let mut spu = Wire::connect(broker.spu).await?;
    let fetch = DefaultStreamFetchRequest::builder()
        .topic("reminders".to_owned())
        .partition(0u32)
        .fetch_offset(0i64)
        .max_bytes(1_048_890)
        .build()
        .map_err(|error| error.to_string())?;
    let stream = spu.send(1003, 25, &fetch).await?;
    // Requests of a connection are handled in order: once this reply is in, the stream is
    // registered, and (the partition being empty) it has sent nothing.
    let probe = UpdateOffsetsRequest {
        offsets: vec![OffsetUpdate {
            offset: 0,
            session_id: 999,
        }],
    };
    let probe_id = spu.send(1005, 0, &probe).await?;
    let (id, reply): (i32, UpdateOffsetsResponse) = spu.reply(0).await?;
    assert_eq!(id, probe_id, "nothing is sent for an empty partition");
    assert_eq!(reply.status[0].error, ErrorCode::FetchSessionNotFoud);

    let append = |value: &'static str| NewRecord {
        key: Some(b"key".to_vec()),
        value: value.as_bytes().to_vec(),
        timestamp_ms: 1,
    };
    broker.log.append("reminders", vec![append("one")]).await?;
    let (id, first): (i32, StreamFetchResponse<RecordSet<RawRecords>>) = spu.reply(25).await?;
    assert_eq!(id, stream);
    assert_eq!(first.partition.records.batches.len(), 1);
    assert_eq!(first.partition.high_watermark, 1);
    let next = first
        .partition
        .next_offset_for_fetch()
        .ok_or("no next offset")?;
    assert_eq!(next, 1);

    broker.log.append("reminders", vec![append("two")]).await?;
    let ack = UpdateOffsetsRequest {
        offsets: vec![OffsetUpdate {
            offset: next,
            session_id: first.stream_id,
        }],
    };
    spu.send(1005, 0, &ack).await?;
    let mut seen_ack = false;
    let mut second = None;
    while !(seen_ack && second.is_some()) {
        let (id, payload) = spu.frame().await?.ok_or("connection closed")?;
        if id == stream {
            let response = StreamFetchResponse::<RecordSet<RawRecords>>::decode_from(
                &mut Cursor::new(&payload),
                25,
            )?;
            second = Some(response);
        } else {
            let reply = UpdateOffsetsResponse::decode_from(&mut Cursor::new(&payload), 0)?;
            assert_eq!(reply.status[0].error, ErrorCode::None);
            seen_ack = true;
        }
    }
    let second = second.ok_or("no second response")?;
    assert_eq!(second.partition.records.batches[0].base_offset, 1);
    Ok(())
}

#[tokio::test]
async fn malformed_frames_close_only_their_connection() -> TestResult {
    let broker = broker().await?;
    for garbage in [
        // A size beyond the frame limit.
        i32::MAX.to_be_bytes().to_vec(),
        // A negative size.
        (-5i32).to_be_bytes().to_vec(),
        // A frame too short for a request header.
        vec![0, 0, 0, 3, 1, 2, 3],
    ] {
        let mut bad = Wire::connect(broker.sc).await?;
        bad.raw(&garbage).await?;
        assert!(bad.frame().await?.is_none(), "closed after {garbage:?}");
    }
    // An API key the SPU does not serve.
    let mut unknown = Wire::connect(broker.spu).await?;
    unknown
        .send(4242, 0, &ApiVersionsRequest::default())
        .await?;
    assert!(unknown.frame().await?.is_none());

    // Other clients are unaffected, and so is the log.
    let mut good = Wire::connect(broker.sc).await?;
    good.send(18, 2, &ApiVersionsRequest::default()).await?;
    let (_, versions): (i32, ApiVersionsResponse) = good.reply(2).await?;
    assert!(versions.api_keys.iter().any(|key| key.api_key == 1004));
    assert_eq!(
        versions.platform_version.to_semver().to_string(),
        PLATFORM_VERSION
    );
    assert_eq!(broker.log.end_offset("task-events", 0)?, 0);
    Ok(())
}

#[test]
fn raw_batches_flag_a_truncated_tail_but_keep_the_frame_aligned() -> TestResult {
    let whole = batch(&["a"])?;
    let mut set = Vec::new();
    let content = [whole.as_slice(), &whole[..20]].concat();
    (content.len() as i32).encode(&mut set, 0)?;
    set.extend_from_slice(&content);
    set.extend_from_slice(b"after");
    let mut src = Cursor::new(set.as_slice());
    let decoded = RawBatches::decode_from(&mut src, 0)?;
    assert_eq!(decoded.batches.len(), 1);
    assert_eq!(decoded.batches[0].as_ref(), whole.as_slice());
    assert!(decoded.malformed.is_some());
    assert_eq!(&set[src.position() as usize..], b"after");
    Ok(())
}

/// Regression (fuzzing): a 27-byte Produce frame with api_version -259 made the decoder build
/// 2^31 empty topic entries. The connection is now closed before decoding the body.
#[tokio::test]
async fn a_negative_api_version_closes_the_connection_without_decoding() -> TestResult {
    let broker = broker().await?;
    let frame: [u8; 26] = [
        0x00, 0x00, 0xfe, 0xfd, 0xd5, 0xff, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
        0x7f, 0xff, 0xff, 0xff, 0x25, 0xff, 0x9d, 0xef, 0x7f, 0x01, 0x00,
    ];
    let mut bytes = (frame.len() as i32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&frame);
    for addr in [broker.spu, broker.sc] {
        let mut bad = Wire::connect(addr).await?;
        bad.raw(&bytes).await?;
        assert!(bad.frame().await?.is_none(), "closed");
    }
    let mut good = Wire::connect(broker.spu).await?;
    good.send(18, 2, &ApiVersionsRequest::default()).await?;
    let (_, versions): (i32, ApiVersionsResponse) = good.reply(2).await?;
    assert!(!versions.api_keys.is_empty(), "the SPU still serves");
    Ok(())
}
