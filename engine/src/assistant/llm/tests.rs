//! The tool loop against scripted Groq-format answers and a real task service on SQLite.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use super::*;
use crate::TaskService;
use crate::embedded::SqliteTaskStore;
use crate::task::TaskQuery;

const ALICE: &str = "alice";
const PRIMARY: &str = "primary-model";
const FALLBACK: &str = "fallback-model";

/// Replays scripted answers in order and records every request.
#[derive(Default)]
struct ScriptedModel {
    answers: Mutex<VecDeque<Result<Value, ModelError>>>,
    requests: Mutex<Vec<ChatRequest>>,
}

impl ScriptedModel {
    fn new(answers: Vec<Result<Value, ModelError>>) -> Arc<Self> {
        Arc::new(Self {
            answers: Mutex::new(answers.into()),
            requests: Mutex::default(),
        })
    }

    fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().expect("lock").clone()
    }

    fn left(&self) -> usize {
        self.answers.lock().expect("lock").len()
    }
}

#[async_trait]
impl ChatModel for ScriptedModel {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        self.requests.lock().expect("lock").push(request.clone());
        let next = self.answers.lock().expect("lock").pop_front();
        match next {
            Some(Ok(body)) => serde_json::from_value(body)
                .map_err(|error| ModelError::Malformed(error.to_string())),
            Some(Err(error)) => Err(error),
            None => Err(ModelError::Malformed("the script is exhausted".into())),
        }
    }
}

/// Stands in for the offline assistant: answers a fixed text and counts its turns.
#[derive(Default)]
struct FakeOffline {
    turns: Mutex<Vec<String>>,
}

#[async_trait]
impl Assistant for FakeOffline {
    async fn respond(&self, turn: Turn<'_>) -> Reply {
        self.turns
            .lock()
            .expect("lock")
            .push(turn.message.to_owned());
        Reply {
            message: "offline answer".into(),
            tools_invoked: Vec::new(),
        }
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    tools: Tools,
    model: Arc<ScriptedModel>,
    offline: Arc<FakeOffline>,
    assistant: LlmAssistant,
}

fn fixture(answers: Vec<Result<Value, ModelError>>, fallback: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteTaskStore::open(&dir.path().join("tasks.db")).expect("open store");
    let tools = Tools::new(TaskService::new(Arc::new(store)));
    let model = ScriptedModel::new(answers);
    let offline = Arc::new(FakeOffline::default());
    let assistant = LlmAssistant::new(
        model.clone(),
        tools.clone(),
        PRIMARY,
        fallback.map(str::to_owned),
        offline.clone(),
    );
    Fixture {
        _dir: dir,
        tools,
        model,
        offline,
        assistant,
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 6, 30, 0)
        .single()
        .expect("valid instant")
}

fn turn<'a>(message: &'a str, history: &'a [ChatMessage]) -> Turn<'a> {
    Turn {
        user_id: ALICE,
        zone: chrono_tz::Europe::Berlin,
        now: now(),
        message,
        history,
    }
}

/// A Groq chat.completion body whose message calls `calls` (`(id, name, arguments text)`).
fn tool_answer(calls: &[(&str, &str, &str)]) -> Value {
    let tool_calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, arguments)| {
            json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
        })
        .collect();
    groq_body(
        json!({"role": "assistant", "content": null, "tool_calls": tool_calls}),
        "tool_calls",
    )
}

fn text_answer(text: &str) -> Value {
    groq_body(json!({"role": "assistant", "content": text}), "stop")
}

fn groq_body(message: Value, finish_reason: &str) -> Value {
    json!({
        "id": "chatcmpl-0b7d1f0e-4a38-4c8f-9b8e-1f7a4c3d2e10",
        "object": "chat.completion",
        "created": 1_764_225_000,
        "model": PRIMARY,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason}],
        "usage": {"queue_time": 0.02, "prompt_tokens": 900, "prompt_time": 0.05,
                  "completion_tokens": 30, "completion_time": 0.1, "total_tokens": 930, "total_time": 0.15},
        "system_fingerprint": "fp_3f3b593e33",
        "x_groq": {"id": "req_01jq0example"}
    })
}

fn server_error() -> ModelError {
    ModelError::Server {
        status: 503,
        message: "Service Unavailable".into(),
    }
}

fn wire(request: &ChatRequest) -> Value {
    serde_json::to_value(request).expect("serialise request")
}

async fn tasks_of(tools: &Tools, user: &str) -> Vec<crate::task::Task> {
    tools
        .service()
        .list(user, &TaskQuery::default())
        .await
        .expect("list")
}

async fn add(tools: &Tools, title: &str) -> String {
    let invocation = tools
        .call(
            ALICE,
            chrono_tz::UTC,
            &ToolCall::new("add_task", json!({"title": title})),
        )
        .await;
    invocation.result.expect("created")["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

#[tokio::test]
async fn one_round_runs_the_tool_for_the_turns_user_and_threads_the_result() {
    let arguments =
        r#"{"title":"Buy milk","due_date":"2026-11-28T09:00:00+01:00","user_id":"mallory"}"#;
    let f = fixture(
        vec![
            Ok(tool_answer(&[("call_abc", "add_task", arguments)])),
            Ok(text_answer("Added 'Buy milk' for tomorrow at 9 AM.")),
        ],
        Some(FALLBACK),
    );
    let reply = f
        .assistant
        .respond(turn("add buy milk tomorrow at 9", &[]))
        .await;

    assert_eq!(reply.message, "Added 'Buy milk' for tomorrow at 9 AM.");
    assert_eq!(reply.tools_invoked.len(), 1);
    let invocation = &reply.tools_invoked[0];
    assert_eq!(invocation.tool_name, "add_task");
    assert!(invocation.success, "{invocation:?}");
    assert_eq!(
        invocation.result.as_ref().expect("data")["due_date"],
        "2026-11-28T08:00:00Z"
    );
    // The model asked for mallory; the task is alice's.
    assert_eq!(tasks_of(&f.tools, ALICE).await.len(), 1);
    assert!(tasks_of(&f.tools, "mallory").await.is_empty());

    let requests = f.model.requests();
    assert_eq!(requests.len(), 2);
    let first = wire(&requests[0]);
    assert_eq!(first["model"], PRIMARY);
    assert_eq!(first["tool_choice"], "auto");
    assert_eq!(first["tools"], openai_tools());
    let messages = first["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(
        messages[1],
        json!({"role": "user", "content": "add buy milk tomorrow at 9"})
    );

    let second = wire(&requests[1]);
    assert_eq!(second["model"], PRIMARY);
    assert_eq!(second["tools"], openai_tools());
    let messages = second["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 4);
    assert_eq!(
        messages[..2],
        first["messages"].as_array().expect("messages")[..]
    );
    assert_eq!(
        messages[2],
        json!({"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_abc", "type": "function", "function": {"name": "add_task", "arguments": arguments}}
        ]})
    );
    assert_eq!(
        messages[3],
        json!({"role": "tool", "tool_call_id": "call_abc", "content": invocation.result_json().to_string()})
    );
    let fed_back: Value =
        serde_json::from_str(messages[3]["content"].as_str().expect("text")).expect("json");
    assert_eq!(fed_back["success"], true);
    assert_eq!(fed_back["data"]["title"], "Buy milk");
    assert!(f.offline.turns.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn several_calls_over_several_rounds_are_threaded_in_order() {
    let f = fixture(Vec::new(), None);
    let milk = add(&f.tools, "Buy milk").await;
    let bread = add(&f.tools, "Buy bread").await;
    let complete = format!(r#"{{"task_id":"{milk}"}}"#);
    let delete = format!(r#"{{"task_id":"{bread}"}}"#);
    f.model.answers.lock().expect("lock").extend([
        Ok(tool_answer(&[(
            "call_1",
            "list_tasks",
            r#"{"search":"buy"}"#,
        )])),
        Ok(tool_answer(&[
            ("call_2", "complete_task", complete.as_str()),
            ("call_3", "delete_task", delete.as_str()),
        ])),
        Ok(text_answer("Done: milk is completed and bread is deleted.")),
    ]);
    let reply = f
        .assistant
        .respond(turn("finish milk and drop bread", &[]))
        .await;

    assert_eq!(
        reply.message,
        "Done: milk is completed and bread is deleted."
    );
    let names: Vec<&str> = reply
        .tools_invoked
        .iter()
        .map(|invocation| invocation.tool_name.as_str())
        .collect();
    assert_eq!(names, ["list_tasks", "complete_task", "delete_task"]);
    assert!(
        reply
            .tools_invoked
            .iter()
            .all(|invocation| invocation.success)
    );
    assert_eq!(
        reply.tools_invoked[0]
            .result
            .as_ref()
            .expect("data")
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let left = tasks_of(&f.tools, ALICE).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].status, crate::task::TaskStatus::Completed);

    let requests = f.model.requests();
    assert_eq!(requests.len(), 3);
    let last = wire(&requests[2]);
    let roles: Vec<&str> = last["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|message| message["role"].as_str().expect("role"))
        .collect();
    assert_eq!(
        roles,
        [
            "system",
            "user",
            "assistant",
            "tool",
            "assistant",
            "tool",
            "tool"
        ]
    );
    let messages = &last["messages"];
    assert_eq!(messages[2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(messages[3]["tool_call_id"], "call_1");
    assert_eq!(messages[4]["content"], "");
    assert_eq!(messages[4]["tool_calls"][0]["id"], "call_2");
    assert_eq!(messages[4]["tool_calls"][1]["id"], "call_3");
    assert_eq!(messages[5]["tool_call_id"], "call_2");
    assert_eq!(messages[6]["tool_call_id"], "call_3");
    for (message, invocation) in [&messages[3], &messages[5], &messages[6]]
        .into_iter()
        .zip(&reply.tools_invoked)
    {
        assert_eq!(
            message["content"].as_str().expect("text"),
            invocation.result_json().to_string()
        );
    }
    // The second request carried everything the first round added, and nothing else.
    assert_eq!(
        wire(&requests[1])["messages"].as_array().map(Vec::len),
        Some(4)
    );
}

#[tokio::test]
async fn the_loop_stops_after_eight_rounds() {
    let answers = (0..12)
        .map(|round| {
            let id = format!("call_{round}");
            Ok(tool_answer(&[(id.as_str(), "list_tasks", "{}")]))
        })
        .collect();
    let f = fixture(answers, None);
    let reply = f.assistant.respond(turn("loop forever", &[])).await;

    assert_eq!(reply.tools_invoked.len(), MAX_TOOL_ROUNDS);
    // Eight rounds of tools, each answered by one more completion after the first.
    assert_eq!(f.model.requests().len(), MAX_TOOL_ROUNDS + 1);
    assert_eq!(f.model.left(), 12 - (MAX_TOOL_ROUNDS + 1));
    assert!(
        reply.message.contains("I stopped there"),
        "{}",
        reply.message
    );
    assert!(
        reply.message.contains("I found no matching tasks."),
        "{}",
        reply.message
    );
    assert!(f.offline.turns.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn the_fallback_model_answers_when_the_primary_fails_and_keeps_the_turn() {
    let f = fixture(
        vec![
            Err(server_error()),
            Ok(tool_answer(&[(
                "call_1",
                "add_task",
                r#"{"title":"Call mum"}"#,
            )])),
            Ok(text_answer("Added 'Call mum'.")),
        ],
        Some(FALLBACK),
    );
    let reply = f
        .assistant
        .respond(turn("remind me to call mum", &[]))
        .await;

    assert_eq!(reply.message, "Added 'Call mum'.");
    assert_eq!(reply.tools_invoked.len(), 1);
    let models: Vec<String> = f
        .model
        .requests()
        .iter()
        .map(|request| request.model.clone())
        .collect();
    assert_eq!(models, [PRIMARY, FALLBACK, FALLBACK]);
    // The fallback gets the same request, tools included.
    let requests = f.model.requests();
    assert_eq!(requests[0].messages, requests[1].messages);
    assert_eq!(requests[1].tools.len(), crate::assistant::TOOL_SPECS.len());
}

#[tokio::test]
async fn the_offline_assistant_answers_when_every_model_fails() {
    let f = fixture(
        vec![
            Err(server_error()),
            Err(ModelError::RateLimited {
                retry_after: Some(Duration::from_secs(7)),
                message: "Rate limit reached".into(),
            }),
        ],
        Some(FALLBACK),
    );
    let reply = f.assistant.respond(turn("add buy milk", &[])).await;

    assert_eq!(reply.message, "offline answer");
    assert!(reply.tools_invoked.is_empty());
    assert_eq!(*f.offline.turns.lock().expect("lock"), ["add buy milk"]);
    assert_eq!(f.model.requests().len(), 2);
    assert!(tasks_of(&f.tools, ALICE).await.is_empty());
}

#[tokio::test]
async fn without_a_fallback_model_one_failure_goes_to_the_offline_assistant() {
    let f = fixture(
        vec![Err(ModelError::Rejected {
            status: 401,
            message: "Invalid API Key".into(),
        })],
        None,
    );
    let reply = f.assistant.respond(turn("hello", &[])).await;
    assert_eq!(reply.message, "offline answer");
    assert_eq!(f.model.requests().len(), 1);
}

#[tokio::test]
async fn an_answer_without_choices_counts_as_a_failure() {
    let f = fixture(
        vec![Ok(
            json!({"id": "x", "object": "chat.completion", "choices": []}),
        )],
        None,
    );
    let reply = f.assistant.respond(turn("hello", &[])).await;
    assert_eq!(reply.message, "offline answer");
}

#[tokio::test]
async fn malformed_arguments_run_nothing_and_let_the_model_correct_itself() {
    let f = fixture(
        vec![
            Ok(tool_answer(&[(
                "call_bad",
                "add_task",
                r#"{"title": "Buy milk""#,
            )])),
            Ok(tool_answer(&[(
                "call_good",
                "add_task",
                r#"{"title": "Buy milk"}"#,
            )])),
            Ok(text_answer("Added 'Buy milk'.")),
        ],
        None,
    );
    let reply = f.assistant.respond(turn("add buy milk", &[])).await;

    assert_eq!(reply.message, "Added 'Buy milk'.");
    assert_eq!(reply.tools_invoked.len(), 2);
    let bad = &reply.tools_invoked[0];
    assert_eq!(bad.tool_name, "add_task");
    assert!(!bad.success);
    assert_eq!(bad.result, None);
    let error = bad.error.as_deref().expect("error");
    assert!(error.starts_with("Invalid arguments: "), "{error}");
    assert!(reply.tools_invoked[1].success);
    assert_eq!(tasks_of(&f.tools, ALICE).await.len(), 1);

    let requests = f.model.requests();
    let second = wire(&requests[1]);
    let tool_message = &second["messages"][3];
    assert_eq!(tool_message["tool_call_id"], "call_bad");
    let fed_back: Value =
        serde_json::from_str(tool_message["content"].as_str().expect("text")).expect("json");
    assert_eq!(fed_back, json!({"success": false, "error": error}));
}

#[tokio::test]
async fn unknown_tools_and_empty_arguments_are_fed_back_as_results() {
    let f = fixture(
        vec![
            Ok(tool_answer(&[
                ("call_1", "drop_database", "{}"),
                ("call_2", "list_tasks", ""),
            ])),
            Ok(text_answer("You have no tasks.")),
        ],
        None,
    );
    let reply = f.assistant.respond(turn("what do I have", &[])).await;
    assert_eq!(reply.tools_invoked.len(), 2);
    assert_eq!(
        reply.tools_invoked[0].error.as_deref(),
        Some("Unknown tool: drop_database")
    );
    assert!(
        reply.tools_invoked[1].success,
        "{:?}",
        reply.tools_invoked[1]
    );
}

#[tokio::test]
async fn a_failure_after_tools_ran_keeps_the_invocations() {
    let f = fixture(
        vec![
            Ok(tool_answer(&[(
                "call_1",
                "add_task",
                r#"{"title":"Buy milk"}"#,
            )])),
            Err(server_error()),
            Err(ModelError::Timeout(Duration::from_secs(30))),
        ],
        Some(FALLBACK),
    );
    let reply = f.assistant.respond(turn("add buy milk", &[])).await;

    assert_eq!(reply.tools_invoked.len(), 1);
    assert!(reply.tools_invoked[0].success);
    assert!(
        reply.message.starts_with("Added 'Buy milk'."),
        "{}",
        reply.message
    );
    assert!(!reply.message.contains("503"), "{}", reply.message);
    assert!(f.offline.turns.lock().expect("lock").is_empty());
    assert_eq!(tasks_of(&f.tools, ALICE).await.len(), 1);
    let models: Vec<String> = f
        .model
        .requests()
        .iter()
        .map(|request| request.model.clone())
        .collect();
    assert_eq!(models, [PRIMARY, PRIMARY, FALLBACK]);
}

#[tokio::test]
async fn an_empty_final_answer_is_replaced_by_a_confirmation() {
    let f = fixture(
        vec![
            Ok(tool_answer(&[(
                "call_1",
                "add_task",
                r#"{"title":"Buy milk","due_date":"2026-11-28T09:00:00+01:00"}"#,
            )])),
            Ok(groq_body(
                json!({"role": "assistant", "content": null}),
                "stop",
            )),
        ],
        None,
    );
    let reply = f.assistant.respond(turn("add buy milk", &[])).await;
    assert_eq!(
        reply.message,
        "Added 'Buy milk', due Sat 28 Nov 2026 at 09:00."
    );
}

#[tokio::test]
async fn tool_calls_without_ids_get_ids_that_thread() {
    let f = fixture(
        vec![
            Ok(groq_body(
                json!({"role": "assistant", "content": "Let me look.", "tool_calls": [
                    {"function": {"name": "list_tasks", "arguments": {"status": "pending"}}}
                ]}),
                "tool_calls",
            )),
            Ok(text_answer("Nothing is pending.")),
        ],
        None,
    );
    let reply = f.assistant.respond(turn("what is pending", &[])).await;
    assert_eq!(reply.message, "Nothing is pending.");
    assert!(reply.tools_invoked[0].success, "{:?}", reply.tools_invoked);
    let second = wire(&f.model.requests()[1]);
    let messages = &second["messages"];
    assert_eq!(
        messages[2],
        json!({"role": "assistant", "content": "Let me look.", "tool_calls": [
            {"id": "call_1_0", "type": "function", "function": {"name": "list_tasks", "arguments": "{\"status\":\"pending\"}"}}
        ]})
    );
    assert_eq!(messages[3]["tool_call_id"], "call_1_0");
}

fn stored(role: Role, content: &str, tool_calls: Vec<ToolInvocation>) -> ChatMessage {
    ChatMessage {
        id: uuid::Uuid::new_v4(),
        role,
        content: content.to_owned(),
        tool_calls,
        created_at: now(),
    }
}

#[tokio::test]
async fn the_last_twenty_messages_follow_a_prompt_with_the_users_date_and_zone() {
    let mut history: Vec<ChatMessage> = (0..24)
        .map(|n| {
            let role = if n % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            stored(role, &format!("message {n}"), Vec::new())
        })
        .collect();
    // An assistant message that only ran tools is replayed as text, never as tool calls.
    history.push(stored(
        Role::Assistant,
        "",
        vec![ToolInvocation {
            tool_name: "add_task".into(),
            success: true,
            result: Some(json!({"title": "Buy milk", "due_date": null})),
            error: None,
        }],
    ));
    let f = fixture(vec![Ok(text_answer("Hi!"))], None);
    let reply = f.assistant.respond(turn("hello again", &history)).await;
    assert_eq!(reply.message, "Hi!");

    let request = wire(&f.model.requests()[0]);
    let messages = request["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1 + MAX_HISTORY + 1);
    // Messages 0-4 are dropped; 5 (an assistant's) is the oldest sent.
    assert_eq!(
        messages[1],
        json!({"role": "assistant", "content": "message 5"})
    );
    assert_eq!(messages[2], json!({"role": "user", "content": "message 6"}));
    assert_eq!(
        messages[MAX_HISTORY],
        json!({"role": "assistant", "content": "Added 'Buy milk'."})
    );
    assert_eq!(
        messages[MAX_HISTORY + 1],
        json!({"role": "user", "content": "hello again"})
    );
    assert!(
        messages
            .iter()
            .all(|message| message.get("tool_calls").is_none())
    );

    let prompt = messages[0]["content"].as_str().expect("prompt");
    for needle in [
        "Friday 2026-11-27",
        "07:30",
        "Europe/Berlin",
        "UTC+01:00",
        "ISO 8601",
        "2026-11-28T18:00:00+01:00",
        "list_tasks",
    ] {
        assert!(prompt.contains(needle), "{needle:?} missing from {prompt}");
    }
}

#[test]
fn a_recorded_groq_answer_with_every_field_deserialises() {
    let body = r#"{
      "id": "chatcmpl-5c4b1a0e",
      "object": "chat.completion",
      "created": 1764225000,
      "model": "llama-3.3-70b-versatile",
      "choices": [{
        "index": 0,
        "message": {
          "role": "assistant",
          "tool_calls": [{"id": "call_d5wg", "type": "function",
            "function": {"name": "add_task", "arguments": "{\"title\":\"Buy milk\"}"}}]
        },
        "logprobs": null,
        "finish_reason": "tool_calls"
      }],
      "usage": {"queue_time": 0.017, "prompt_tokens": 1021, "prompt_time": 0.05,
                "completion_tokens": 19, "completion_time": 0.07, "total_tokens": 1040, "total_time": 0.12},
      "usage_breakdown": null,
      "system_fingerprint": "fp_4cfc2deea6",
      "x_groq": {"id": "req_01kb2example"},
      "service_tier": "on_demand"
    }"#;
    let response: ChatResponse = serde_json::from_str(body).expect("parse");
    let choice = &response.choices[0];
    assert_eq!(choice.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(choice.message.content, None);
    assert_eq!(
        choice.message.tool_calls,
        [WireToolCall::function(
            "call_d5wg",
            "add_task",
            r#"{"title":"Buy milk"}"#
        )]
    );
    assert_eq!(
        response.usage.and_then(|usage| usage.total_tokens),
        Some(1040)
    );

    let minimal: ChatResponse = serde_json::from_str(
        r#"{"choices":[{"message":{"role":"assistant","content":"Hi","tool_calls":null}}]}"#,
    )
    .expect("parse");
    assert_eq!(minimal.choices[0].message.content.as_deref(), Some("Hi"));
    assert!(minimal.choices[0].message.tool_calls.is_empty());
}

#[test]
fn a_request_without_tools_sends_neither_tools_nor_tool_choice() {
    let request = ChatRequest {
        model: "m".into(),
        messages: vec![WireMessage::User {
            content: "hi".into(),
        }],
        tools: Vec::new(),
        tool_choice: None,
    };
    assert_eq!(
        wire(&request),
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    );
}

#[test]
fn errors_are_retryable_only_when_trying_again_can_help() {
    assert!(ModelError::Timeout(Duration::from_secs(1)).is_retryable());
    assert!(ModelError::Connection("refused".into()).is_retryable());
    assert!(ModelError::from_status(429, "slow down".into(), None).is_retryable());
    assert!(ModelError::from_status(500, "oops".into(), None).is_retryable());
    assert!(ModelError::from_status(503, "busy".into(), None).is_retryable());
    assert!(!ModelError::from_status(400, "bad".into(), None).is_retryable());
    assert!(!ModelError::from_status(401, "key".into(), None).is_retryable());
    assert!(!ModelError::from_status(404, "model".into(), None).is_retryable());
    assert!(!ModelError::Malformed("eof".into()).is_retryable());
    assert_eq!(
        ModelError::from_status(429, "m".into(), Some(Duration::from_secs(3))),
        ModelError::RateLimited {
            retry_after: Some(Duration::from_secs(3)),
            message: "m".into()
        }
    );
}
