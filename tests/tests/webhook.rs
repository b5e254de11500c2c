//! Notifications pushed to a webhook: signed, retried, delivered once per reminder, even across a
//! restart. The receiver is a real HTTP server in this test process.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use ring::hmac;
use serde_json::{Value, json};
use taskstream_tests::{TestServer, envelope, record};

const SECRET: &str = "webhook-test-secret";

/// The signature header and body of one request.
type Received = (Option<String>, Bytes);

#[derive(Clone, Default)]
struct Receiver {
    /// Every request, including refused ones.
    seen: Arc<Mutex<Vec<Received>>>,
    /// How many requests to refuse with 503 before accepting.
    refuse_first: Arc<Mutex<u32>>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get("x-taskstream-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    receiver.seen.lock().unwrap().push((signature, body));
    let mut refuse = receiver.refuse_first.lock().unwrap();
    if *refuse > 0 {
        *refuse -= 1;
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::NO_CONTENT
    }
}

async fn start_receiver(refuse_first: u32) -> (String, Receiver) {
    let receiver = Receiver::default();
    *receiver.refuse_first.lock().unwrap() = refuse_first;
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, receiver)
}

fn expected_signature(body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    let hex: String = hmac::sign(&key, body)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Writes a `reminder.triggered` for `user` into the stopped server's log, as the scheduler would.
async fn trigger_reminder(srv: &TestServer, user: &str, title: &str) -> String {
    let task_id = uuid::Uuid::new_v4().to_string();
    let event = envelope(
        "reminder.triggered",
        user,
        json!({"task_id": task_id, "task_title": title, "user_id": user,
               "due_at": "2030-01-01T10:00:00Z", "remind_at": "2030-01-01T09:00:00Z"}),
    );
    let log = srv.open_log();
    log.append(
        "reminders",
        vec![record(&task_id, serde_json::to_vec(&event).unwrap())],
    )
    .await
    .unwrap();
    event["event_id"].as_str().unwrap().to_owned()
}

/// Polls (bounded) until `check` holds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_reach_the_webhook_signed_retried_and_once() {
    let (url, receiver) = start_receiver(2).await;
    let mut srv = TestServer::start_with(
        &[
            "--notify-webhook-url",
            &url,
            "--notify-webhook-secret",
            SECRET,
        ],
        &[],
    )
    .await;
    srv.stop().await;
    trigger_reminder(&srv, "alice", "Pay rent").await;
    srv.restart().await;

    // Two refusals, then the third attempt is accepted.
    eventually("three webhook attempts", || {
        receiver.seen.lock().unwrap().len() >= 3
    })
    .await;
    let seen = receiver.seen.lock().unwrap().clone();
    for (signature, body) in &seen {
        assert_eq!(
            signature.as_deref(),
            Some(expected_signature(body).as_str()),
            "every attempt is signed"
        );
    }
    let body: Value = serde_json::from_slice(&seen[2].1).unwrap();
    assert_eq!(body["type"], "notification.created");
    assert_eq!(body["user_id"], "alice");
    assert_eq!(body["notification"]["title"], "Pay rent");
    assert_eq!(body["notification"]["kind"], "reminder");

    // The in-app notification is the same one the webhook announced.
    let alice = srv.user("alice");
    let listed = alice.get("/api/notifications").await.expect(200).clone();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], body["notification"]["id"]);

    // A restart replays nothing: the event is processed and its delivery is logged. A new
    // reminder.scheduled after the restart proves the notification consumer has read past it.
    srv.restart().await;
    let alice = srv.user("alice");
    alice
        .create(json!({"title": "after restart", "due_date": "2031-01-01T10:00:00Z", "reminder_offset_minutes": 5}))
        .await;
    let metrics_url = srv.url("/metrics");
    let client = srv.client();
    let mut caught_up = false;
    for _ in 0..500 {
        let text = client
            .get(&metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text
            .contains("consumer_processed_total{consumer=\"notification\",topic=\"reminders\"} 1")
        {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        caught_up,
        "the notification consumer processed the new event"
    );
    assert_eq!(
        receiver.seen.lock().unwrap().len(),
        3,
        "no second delivery after a restart"
    );
    assert_eq!(
        *receiver.refuse_first.lock().unwrap(),
        0,
        "both refusals were used up"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_webhook_url_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "x".repeat(32);
    let mut cmd = taskstream_tests::command();
    cmd.args([
        "serve",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--jwt-secret",
        &secret,
        "--http-addr",
        "127.0.0.1:0",
        "--notify-webhook-url",
        "ftp://example.invalid/hook",
    ]);
    let out = taskstream_tests::run(cmd, Duration::from_secs(20));
    assert!(
        out.status.is_some_and(|status| !status.success()),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("webhook URL must be http or https"),
        "{}",
        out.stderr
    );
}
