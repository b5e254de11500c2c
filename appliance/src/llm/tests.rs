//! The HTTP model against the stand-in OpenAI-compatible server, in process.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Value, json};
use taskstream_engine::TaskService;
use taskstream_engine::assistant::llm::{
    ChatModel, ChatRequest, GROQ_PRIMARY_MODEL, ModelError, WireMessage,
};
use taskstream_engine::assistant::tools::openai_tools;
use taskstream_engine::assistant::{Assistant, Reply, Tools, Turn};
use taskstream_engine::embedded::SqliteTaskStore;
use taskstream_engine::task::TaskQuery;
use taskstream_tests::openai_stub::{OpenAiStub, StubReply};

use super::*;
use crate::config::{ApiKey, LlmSettings};

const KEY: &str = "test-key-never-logged";

fn request() -> ChatRequest {
    let tools = match openai_tools() {
        Value::Array(tools) => tools,
        other => vec![other],
    };
    ChatRequest {
        model: GROQ_PRIMARY_MODEL.to_owned(),
        messages: vec![
            WireMessage::System {
                content: "You help with tasks.".into(),
            },
            WireMessage::User {
                content: "add buy milk".into(),
            },
        ],
        tools,
        tool_choice: Some("auto".into()),
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        first_backoff: Duration::from_millis(20),
        max_wait: Duration::from_secs(2),
        budget: Duration::from_secs(20),
    }
}

fn model(stub: &OpenAiStub, timeout: Duration) -> HttpChatModel {
    HttpChatModel::new(&stub.base_url(), KEY, timeout)
        .expect("client")
        .with_retry(fast_retry())
}

async fn stub() -> OpenAiStub {
    let stub = OpenAiStub::start().await;
    stub.require_key(KEY);
    stub
}

#[tokio::test]
async fn a_completion_is_posted_with_the_key_and_parsed() {
    let stub = stub().await;
    stub.push(StubReply::fixture("tool_call_add_task"));
    let response = model(&stub, Duration::from_secs(5))
        .complete(&request())
        .await
        .expect("completion");

    let message = &response.choices[0].message;
    assert_eq!(message.tool_calls[0].id, "call_d5wg");
    assert_eq!(message.tool_calls[0].function.name, "add_task");
    assert_eq!(
        response.choices[0].finish_reason.as_deref(),
        Some("tool_calls")
    );

    let requests = stub.requests();
    assert_eq!(requests.len(), 1);
    let seen = &requests[0];
    assert_eq!(seen.violation, None);
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer test-key-never-logged")
    );
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.body, serde_json::to_value(request()).expect("json"));
    assert_eq!(seen.body["tool_choice"], "auto");
    assert_eq!(
        seen.body["tools"].as_array().map(Vec::len),
        Some(taskstream_engine::assistant::TOOL_SPECS.len())
    );
}

#[tokio::test]
async fn a_503_is_retried_then_succeeds() {
    let stub = stub().await;
    stub.push(StubReply::fixture("error_service_unavailable"));
    stub.push(StubReply::fixture("text_task_added"));
    let response = model(&stub, Duration::from_secs(5))
        .complete(&request())
        .await
        .expect("completion after a retry");
    assert!(
        response.choices[0]
            .message
            .content
            .as_deref()
            .is_some_and(|text| text.contains("Buy milk"))
    );
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body);
}

#[tokio::test]
async fn retries_stop_after_two() {
    let stub = stub().await;
    for _ in 0..4 {
        stub.push(StubReply::fixture("error_service_unavailable"));
    }
    let error = model(&stub, Duration::from_secs(5))
        .complete(&request())
        .await
        .expect_err("still failing");
    assert!(
        matches!(&error, ModelError::Server { status: 503, message } if message.contains("over capacity")),
        "{error:?}"
    );
    assert_eq!(stub.requests().len(), 3);
    assert_eq!(stub.remaining(), 1);
}

#[tokio::test]
async fn a_429_waits_for_its_retry_after() {
    let stub = stub().await;
    stub.push(StubReply::fixture("error_rate_limit"));
    stub.push(StubReply::fixture("text_task_added"));
    let started = Instant::now();
    model(&stub, Duration::from_secs(5))
        .complete(&request())
        .await
        .expect("completion after the pause");
    // The recorded answer says `retry-after: 1`.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stub.requests().len(), 2);
}

#[tokio::test]
async fn a_retry_after_longer_than_the_cap_is_not_waited_for() {
    let stub = stub().await;
    stub.push(StubReply::fixture("error_rate_limit").header("retry-after", "60"));
    stub.push(StubReply::fixture("text_task_added"));
    let started = Instant::now();
    let error = model(&stub, Duration::from_secs(5))
        .complete(&request())
        .await
        .expect_err("gives up at once");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(
            &error,
            ModelError::RateLimited { retry_after: Some(wait), .. } if *wait == Duration::from_secs(60)
        ),
        "{error:?}"
    );
    assert_eq!(stub.requests().len(), 1);
}

#[tokio::test]
async fn a_401_is_permanent_and_the_key_stays_secret() {
    let stub = stub().await;
    stub.push(StubReply::fixture("error_invalid_api_key"));
    stub.push(StubReply::fixture("text_task_added"));
    let error = model(&stub, Duration::from_secs(5))
        .complete(&request())
        .await
        .expect_err("refused");
    assert_eq!(
        error,
        ModelError::Rejected {
            status: 401,
            message: "Invalid API Key".into()
        }
    );
    assert_eq!(stub.requests().len(), 1);
    assert_eq!(stub.remaining(), 1);
    assert!(!error.to_string().contains(KEY));
    assert!(!format!("{error:?}").contains(KEY));
}

#[tokio::test]
async fn a_wrong_key_is_refused_by_the_stub_like_the_provider() {
    let stub = stub().await;
    stub.push(StubReply::fixture("text_task_added"));
    let wrong = HttpChatModel::new(&stub.base_url(), "other-key", Duration::from_secs(5))
        .expect("client")
        .with_retry(fast_retry());
    let error = wrong.complete(&request()).await.expect_err("refused");
    assert!(
        matches!(error, ModelError::Rejected { status: 401, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn timeouts_are_retried_then_reported() {
    let stub = stub().await;
    for _ in 0..3 {
        stub.push(StubReply::fixture("text_task_added").after(Duration::from_secs(2)));
    }
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let error = model(&stub, timeout)
        .complete(&request())
        .await
        .expect_err("too slow");
    assert_eq!(error, ModelError::Timeout(timeout));
    assert_eq!(stub.requests().len(), 3);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_timeout_then_an_answer_succeeds() {
    let stub = stub().await;
    stub.push(StubReply::fixture("text_task_added").after(Duration::from_secs(2)));
    stub.push(StubReply::fixture("text_task_added"));
    model(&stub, Duration::from_millis(300))
        .complete(&request())
        .await
        .expect("the retry answers");
    assert_eq!(stub.requests().len(), 2);
}

#[tokio::test]
async fn no_retry_starts_after_the_budget() {
    let stub = stub().await;
    for _ in 0..3 {
        stub.push(StubReply::fixture("text_task_added").after(Duration::from_secs(4)));
    }
    // The first retry starts about 1 s in, inside the budget; the second would start about
    // 2 s in, past it.
    let model = model(&stub, Duration::from_secs(1)).with_retry(RetryPolicy {
        budget: Duration::from_millis(1500),
        ..fast_retry()
    });
    let error = model.complete(&request()).await.expect_err("too slow");
    assert!(matches!(error, ModelError::Timeout(_)));
    assert_eq!(stub.requests().len(), 2);
}

#[tokio::test]
async fn a_malformed_body_is_permanent() {
    let stub = stub().await;
    stub.push(StubReply {
        status: 200,
        headers: Vec::new(),
        body: "{\"choices\": [".into(),
        delay: Duration::ZERO,
    });
    let error = model(&stub, Duration::from_secs(5))
        .complete(&request())
        .await
        .expect_err("unreadable");
    assert!(matches!(error, ModelError::Malformed(_)), "{error:?}");
    assert_eq!(stub.requests().len(), 1);
}

#[tokio::test]
async fn an_unreachable_provider_is_a_connection_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let model = HttpChatModel::new(
        &format!("http://127.0.0.1:{port}/v1"),
        KEY,
        Duration::from_secs(2),
    )
    .expect("client")
    .with_retry(fast_retry());
    let error = model.complete(&request()).await.expect_err("nobody there");
    assert!(matches!(error, ModelError::Connection(_)), "{error:?}");
    assert!(error.is_retryable());
    assert!(!error.to_string().contains(KEY));
}

#[test]
fn retry_after_reads_seconds_and_dates() {
    let mut headers = HeaderMap::new();
    headers.insert(RETRY_AFTER, "2".parse().expect("header"));
    assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
    headers.insert(RETRY_AFTER, "1.5".parse().expect("header"));
    assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
    headers.insert(
        RETRY_AFTER,
        "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("header"),
    );
    // In the past: nothing to wait for.
    assert_eq!(retry_after(&headers), None);
    headers.insert(RETRY_AFTER, "soon".parse().expect("header"));
    assert_eq!(retry_after(&headers), None);
}

#[test]
fn backoff_doubles_with_bounded_jitter() {
    let policy = RetryPolicy {
        max_retries: 2,
        first_backoff: Duration::from_millis(100),
        max_wait: Duration::from_secs(1),
        budget: Duration::from_secs(10),
    };
    let error = ModelError::Connection("reset".into());
    for _ in 0..20 {
        let first = policy.wait(0, &error).expect("wait");
        assert!((Duration::from_millis(100)..=Duration::from_millis(150)).contains(&first));
        let second = policy.wait(1, &error).expect("wait");
        assert!((Duration::from_millis(200)..=Duration::from_millis(300)).contains(&second));
        let capped = policy.wait(10, &error).expect("wait");
        assert_eq!(capped, Duration::from_secs(1));
    }
}

/// Stands in for the offline assistant.
#[derive(Default)]
struct FakeOffline {
    turns: Mutex<u32>,
}

#[async_trait]
impl Assistant for FakeOffline {
    async fn respond(&self, _turn: Turn<'_>) -> Reply {
        *self.turns.lock().expect("lock") += 1;
        Reply {
            message: "offline answer".into(),
            tools_invoked: Vec::new(),
        }
    }
}

fn settings(stub: &OpenAiStub) -> LlmSettings {
    LlmSettings {
        api_key: ApiKey::new(KEY),
        base_url: stub.base_url(),
        model: "primary".into(),
        fallback_model: Some("fallback".into()),
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn without_a_key_the_offline_assistant_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteTaskStore::open(&dir.path().join("t.db")).expect("store");
    let tools = Tools::new(TaskService::new(Arc::new(store)));
    let offline: Arc<dyn Assistant> = Arc::new(FakeOffline::default());
    let chosen = assistant_for(None, tools, offline.clone());
    assert!(Arc::ptr_eq(&chosen, &offline));
}

#[tokio::test]
async fn the_llm_assistant_runs_tools_through_the_stub_and_falls_back_offline() {
    let stub = stub().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteTaskStore::open(&dir.path().join("t.db")).expect("store");
    let tools = Tools::new(TaskService::new(Arc::new(store)));
    let offline = Arc::new(FakeOffline::default());
    let assistant = assistant_for(Some(&settings(&stub)), tools.clone(), offline.clone());
    let turn = |message| Turn {
        user_id: "alice",
        zone: "Europe/Berlin".parse().expect("zone"),
        now: chrono::Utc::now(),
        message,
        history: &[],
    };

    stub.push(StubReply::fixture_with(
        "tool_call_add_task",
        &[("DUE_DATE", "2030-01-02T09:00:00+01:00")],
    ));
    stub.push(StubReply::fixture("text_task_added"));
    let reply = assistant.respond(turn("add buy milk")).await;
    assert_eq!(
        reply.message,
        "I've added \"Buy milk\" to your tasks, due tomorrow."
    );
    assert_eq!(reply.tools_invoked.len(), 1);
    assert!(reply.tools_invoked[0].success);
    let tasks = tools
        .service()
        .list("alice", &TaskQuery::default())
        .await
        .expect("list");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].title, "Buy milk");
    assert_eq!(stub.violations(), Vec::<String>::new());
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body["model"], "primary");
    assert_eq!(requests[1].roles(), ["system", "user", "assistant", "tool"]);
    assert_eq!(requests[1].messages()[3]["tool_call_id"], "call_d5wg");

    // Both models refused: the offline assistant answers, still a reply.
    stub.push(StubReply::fixture("error_invalid_api_key"));
    stub.push(StubReply::fixture("error_invalid_api_key"));
    let reply = assistant.respond(turn("add bread")).await;
    assert_eq!(reply.message, "offline answer");
    assert_eq!(*offline.turns.lock().expect("lock"), 1);
    let models: Vec<Value> = stub.requests()[2..]
        .iter()
        .map(|request| request.body["model"].clone())
        .collect();
    assert_eq!(models, [json!("primary"), json!("fallback")]);
}
