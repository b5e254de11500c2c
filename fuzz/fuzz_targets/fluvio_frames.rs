//! Arbitrary bytes into the Fluvio-compatible server's frame decoder and request dispatch.
//!
//! The server's framing and dispatch are private to the engine, so this drives the real thing:
//! `serve_sc` and `serve_spu` run once (lazily) on loopback listeners over a temp-dir
//! [`EventLog`]; each input is written to a fresh connection, whatever comes back is read for a
//! short while, and then a fresh connection must still be accepted and answer an ApiVersions
//! request. The input's record-set part also goes straight into the public [`RawBatches`]
//! decoder.
//!
//! Input layout: byte 0 bit 0 picks the listener (0 SC, 1 SPU), bit 1 prefixes the rest with its
//! valid i32 big-endian length (so the header and body decoders see a whole frame); the rest is
//! sent as is. A server task that panics aborts the process (libfuzzer-sys's panic hook).

#![no_main]

use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use fluvio_protocol::api::RequestMessage;
use fluvio_protocol::link::versions::ApiVersionsRequest;
use fluvio_protocol::{Decoder, Encoder};
use libfuzzer_sys::fuzz_target;
use taskstream_engine::embedded::fluvio::{ConnectionLimits, FluvioConfig, RawBatches, serve_sc, serve_spu};
use taskstream_engine::embedded::log::{EventLog, LogConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::watch;

/// How long the answer to a fuzz input is read before the connection is dropped.
const READ_WINDOW: Duration = Duration::from_millis(50);
/// The liveness check's bound; exceeding it is a finding (a wedged listener).
const ALIVE_TIMEOUT: Duration = Duration::from_secs(5);

struct Harness {
    runtime: Runtime,
    sc: SocketAddr,
    spu: SocketAddr,
    _dir: tempfile::TempDir,
    _stop: watch::Sender<bool>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let log = EventLog::open(&dir.path().join("log.redb"), LogConfig::default()).expect("log");
        let (stop, shutdown) = watch::channel(false);
        let (sc, spu) = runtime.block_on(async {
            let sc = TcpListener::bind("127.0.0.1:0").await.expect("sc bind");
            let spu = TcpListener::bind("127.0.0.1:0").await.expect("spu bind");
            let addrs = (
                sc.local_addr().expect("sc addr"),
                spu.local_addr().expect("spu addr"),
            );
            // Writable appliance topics (more code reached) and no idle timeout or per-peer
            // cap: every input gets a fresh connection from the same address.
            let config = FluvioConfig {
                read_only: false,
                limits: ConnectionLimits {
                    idle_timeout: None,
                    max_connections_per_peer: usize::MAX,
                },
                ..FluvioConfig::new(addrs.1.to_string())
            };
            tokio::spawn(serve_sc(sc, log.clone(), config.clone(), shutdown.clone()));
            tokio::spawn(serve_spu(spu, log, config, shutdown));
            addrs
        });
        Harness {
            runtime,
            sc,
            spu,
            _dir: dir,
            _stop: stop,
        }
    })
}

/// Writes `bytes`, half-closes, and reads whatever comes back within [`READ_WINDOW`].
async fn poke(addr: SocketAddr, bytes: &[u8]) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        panic!("{addr} refused a connection");
    };
    // The server may close early (a rejected frame): write errors are expected.
    if stream.write_all(bytes).await.is_ok() {
        let _ = stream.shutdown().await;
    }
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(READ_WINDOW, async {
        while let Ok(read) = stream.read(&mut sink).await {
            if read == 0 {
                break;
            }
        }
    })
    .await;
}

/// A fresh connection gets an answer to ApiVersions with the request's correlation id.
async fn answers_api_versions(addr: SocketAddr) -> std::io::Result<()> {
    let mut request = RequestMessage::new_request(ApiVersionsRequest::default());
    request.header.set_correlation_id(7);
    let body = request.as_bytes(0)?;
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(&(body.len() as i32).to_be_bytes()).await?;
    stream.write_all(&body).await?;
    let size = stream.read_i32().await?;
    assert!(
        size >= 4,
        "{addr}: ApiVersions answered with a {size}-byte frame"
    );
    let correlation = stream.read_i32().await?;
    assert_eq!(
        correlation, 7,
        "{addr}: ApiVersions answered another request"
    );
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // The public decoder of produced record sets, at the versions clients use.
    for version in [0, 7, 25] {
        let _ = RawBatches::decode_from(&mut Cursor::new(rest), version);
    }

    let harness = harness();
    let addr = if mode & 1 == 0 {
        harness.sc
    } else {
        harness.spu
    };
    let mut frame = Vec::with_capacity(rest.len() + 4);
    if mode & 2 != 0 {
        frame.extend_from_slice(&(rest.len() as i32).to_be_bytes());
    }
    frame.extend_from_slice(rest);
    harness.runtime.block_on(async {
        poke(addr, &frame).await;
        match tokio::time::timeout(ALIVE_TIMEOUT, answers_api_versions(addr)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => panic!("{addr} no longer answers ApiVersions: {error}"),
            Err(_) => panic!("{addr} did not answer ApiVersions within {ALIVE_TIMEOUT:?}"),
        }
    });
});
