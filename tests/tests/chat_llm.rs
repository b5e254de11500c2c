//! The chat route with a language model: the real binary talks to a stand-in
//! OpenAI-compatible server (`taskstream_tests::openai_stub`) that replays recorded Groq
//! answers and refuses any request that breaks the chat-completions contract.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use taskstream_tests::openai_stub::{OpenAiStub, StubReply};
use taskstream_tests::{TestServer, User, id_of};

const KEY: &str = "test-key";
const TOOL_NAMES: [&str; 7] = [
    "add_task",
    "list_tasks",
    "complete_task",
    "update_task",
    "delete_task",
    "list_projects",
    "create_project",
];

async fn start(extra_env: &[(&str, &str)]) -> (OpenAiStub, TestServer) {
    let stub = OpenAiStub::start().await;
    stub.require_key(KEY);
    let base_url = stub.base_url();
    let mut envs = vec![
        ("TASKSTREAM_LLM_API_KEY", KEY),
        ("TASKSTREAM_LLM_BASE_URL", base_url.as_str()),
    ];
    envs.extend_from_slice(extra_env);
    let server = TestServer::start_with(&[], &envs).await;
    (stub, server)
}

async fn chat(user: &User, message: &str) -> Value {
    let r = user
        .post(
            &format!("/api/{}/chat", user.sub),
            &json!({ "message": message }),
        )
        .await;
    let body = r.expect(200).clone();
    let keys: BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["message", "tools_invoked", "conversation_id"]),
        "{}",
        r.text
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| !m.trim().is_empty())
    );
    uuid::Uuid::parse_str(body["conversation_id"].as_str().unwrap()).unwrap();
    for invocation in body["tools_invoked"].as_array().unwrap() {
        let keys: BTreeSet<&str> = invocation
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["tool_name", "success", "result", "error"]),
            "{invocation}"
        );
    }
    body
}

fn tool_names(reply: &Value) -> Vec<String> {
    reply["tools_invoked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|invocation| invocation["tool_name"].as_str().unwrap().to_owned())
        .collect()
}

/// The JSON a `role: "tool"` message carries.
fn tool_result(message: &Value) -> Value {
    serde_json::from_str(message["content"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_round_adds_a_task_and_follows_the_contract() {
    let (stub, server) = start(&[]).await;
    let alice = server.user("alice");
    let due = (Utc::now() + Duration::days(1))
        .format("%Y-%m-%dT18:00:00+00:00")
        .to_string();
    stub.push(StubReply::fixture_with(
        "tool_call_add_task",
        &[("DUE_DATE", &due)],
    ));
    stub.push(StubReply::fixture("text_task_added"));

    let reply = chat(&alice, "add buy milk tomorrow").await;
    assert_eq!(
        reply["message"],
        "I've added \"Buy milk\" to your tasks, due tomorrow."
    );
    let invoked = reply["tools_invoked"].as_array().unwrap();
    assert_eq!(invoked.len(), 1);
    assert_eq!(invoked[0]["tool_name"], "add_task");
    assert_eq!(invoked[0]["success"], true);
    assert_eq!(invoked[0]["error"], Value::Null);
    assert_eq!(invoked[0]["result"]["title"], "Buy milk");

    let tasks = alice.list("").await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["title"], "Buy milk");
    assert_eq!(tasks[0]["id"], invoked[0]["result"]["id"]);
    let expected_due = (Utc::now() + Duration::days(1))
        .format("%Y-%m-%dT18:00:00Z")
        .to_string();
    assert_eq!(tasks[0]["due_date"], expected_due.as_str());
    assert!(server.user("bob").list("").await.is_empty());

    assert_eq!(stub.violations(), Vec::<String>::new());
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    let first = &requests[0];
    assert_eq!(first.path, "/v1/chat/completions");
    assert_eq!(first.header("authorization"), Some("Bearer test-key"));
    assert_eq!(first.body["model"], "llama-3.3-70b-versatile");
    assert_eq!(first.body["tool_choice"], "auto");
    let names: Vec<&str> = first.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, TOOL_NAMES);
    assert_eq!(first.roles(), ["system", "user"]);
    let prompt = first.messages()[0]["content"].as_str().unwrap().to_owned();
    let today = Utc::now().date_naive();
    assert!(
        [today.pred_opt().unwrap(), today, today.succ_opt().unwrap()]
            .iter()
            .any(|day| prompt.contains(&day.format("%Y-%m-%d").to_string())),
        "the system prompt should carry today's date: {prompt}"
    );
    assert!(prompt.contains("ISO 8601"), "{prompt}");
    assert_eq!(
        first.messages()[1],
        json!({"role": "user", "content": "add buy milk tomorrow"})
    );

    let second = &requests[1];
    assert_eq!(second.roles(), ["system", "user", "assistant", "tool"]);
    let messages = second.messages();
    assert_eq!(messages[2]["tool_calls"][0]["id"], "call_d5wg");
    assert_eq!(messages[2]["tool_calls"][0]["type"], "function");
    assert_eq!(messages[2]["tool_calls"][0]["function"]["name"], "add_task");
    assert_eq!(messages[3]["tool_call_id"], "call_d5wg");
    let result = tool_result(&messages[3]);
    assert_eq!(result["success"], true);
    assert_eq!(result["data"]["title"], "Buy milk");
    assert_eq!(result["data"]["id"], tasks[0]["id"]);

    // The next turn carries the conversation so far.
    stub.push(StubReply::text("You're welcome!"));
    let next = chat(&alice, "thanks").await;
    assert_eq!(next["conversation_id"], reply["conversation_id"]);
    assert_eq!(next["tools_invoked"], json!([]));
    let third = &stub.requests()[2];
    assert_eq!(third.roles(), ["system", "user", "assistant", "user"]);
    assert_eq!(third.messages()[1]["content"], "add buy milk tomorrow");
    assert_eq!(
        third.messages()[2]["content"],
        "I've added \"Buy milk\" to your tasks, due tomorrow."
    );
    assert_eq!(third.messages()[3]["content"], "thanks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rounds_with_parallel_calls_are_threaded() {
    let (stub, server) = start(&[]).await;
    let alice = server.user("alice");
    let milk = id_of(&alice.create(json!({"title": "Buy milk"})).await);
    let bread = id_of(&alice.create(json!({"title": "Buy bread"})).await);
    stub.push_all([
        StubReply::fixture("tool_call_list_tasks"),
        StubReply::fixture_with(
            "tool_calls_complete_and_delete",
            &[("TASK_ID", &milk), ("TASK_ID_2", &bread)],
        ),
        StubReply::fixture("text_tasks_done"),
    ]);

    let reply = chat(&alice, "finish the milk one and drop bread").await;
    assert_eq!(
        reply["message"],
        "Done: \"Buy milk\" is completed and \"Buy bread\" is deleted."
    );
    assert_eq!(
        tool_names(&reply),
        ["list_tasks", "complete_task", "delete_task"]
    );
    assert!(
        reply["tools_invoked"]
            .as_array()
            .unwrap()
            .iter()
            .all(|invocation| invocation["success"] == true),
        "{reply}"
    );
    let done = alice.get_task(&milk).await;
    assert_eq!(done.expect(200)["status"], "completed");
    assert_eq!(alice.get_task(&bread).await.status, 404);

    assert_eq!(stub.violations(), Vec::<String>::new());
    let requests = stub.requests();
    assert_eq!(requests.len(), 3);
    let last = &requests[2];
    assert_eq!(
        last.roles(),
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
    let messages = last.messages();
    assert_eq!(messages[3]["tool_call_id"], "call_7k2p");
    assert_eq!(
        tool_result(&messages[3])["data"].as_array().unwrap().len(),
        1
    );
    assert_eq!(messages[5]["tool_call_id"], "call_m3t8");
    assert_eq!(messages[6]["tool_call_id"], "call_h6rw");
    assert_eq!(tool_result(&messages[5])["data"]["status"], "completed");
    assert_eq!(
        tool_result(&messages[6])["data"]["deleted_id"],
        bread.as_str()
    );
}

/// The project tools as a model calls them: create a project, add a task into it by name and
/// a subtask under it by title, list the projects and the project's tasks, and a project that
/// does not exist comes back as a tool error the model can read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_uses_projects_and_subtasks() {
    let (stub, server) = start(&[]).await;
    let alice = server.user("alice");
    stub.push_all([
        StubReply::tool_calls(&[("call_p1", "create_project", r#"{"name": "Garden"}"#)]),
        StubReply::tool_calls(&[(
            "call_p2",
            "add_task",
            r#"{"title": "Plant tulips", "project": "garden", "priority": "high"}"#,
        )]),
        StubReply::tool_calls(&[
            (
                "call_p3",
                "add_task",
                r#"{"title": "Buy bulbs", "subtask_of": "Plant tulips"}"#,
            ),
            (
                "call_p4",
                "add_task",
                r#"{"title": "Mow", "project": "Orchard"}"#,
            ),
        ]),
        StubReply::tool_calls(&[
            ("call_p5", "list_projects", "{}"),
            ("call_p6", "list_tasks", r#"{"project": "Garden"}"#),
        ]),
        StubReply::text("Your Garden project has tulips to plant, with bulbs to buy first."),
    ]);

    let reply = chat(&alice, "start a garden project with tulips, bulbs first").await;
    assert_eq!(
        tool_names(&reply),
        [
            "create_project",
            "add_task",
            "add_task",
            "add_task",
            "list_projects",
            "list_tasks"
        ]
    );
    let invoked = reply["tools_invoked"].as_array().unwrap();
    let garden = &invoked[0]["result"];
    assert_eq!(garden["name"], "Garden");
    assert_eq!(garden["task_count"], 0);
    let tulips = &invoked[1]["result"];
    assert_eq!(tulips["project_id"], garden["id"], "by name, any case");
    let bulbs = &invoked[2]["result"];
    assert_eq!(bulbs["subtask_of"], tulips["id"], "the parent by its title");
    assert_eq!(bulbs["project_id"], garden["id"], "in its parent's project");
    assert_eq!(invoked[3]["success"], false);
    assert!(
        invoked[3]["error"]
            .as_str()
            .unwrap()
            .starts_with("Project not found: Orchard"),
        "{}",
        invoked[3]
    );
    assert_eq!(invoked[4]["result"][0]["name"], "Garden");
    assert_eq!(invoked[4]["result"][0]["task_count"], 2);
    assert_eq!(invoked[5]["result"].as_array().unwrap().len(), 2);

    // REST agrees: the project holds both, the subtask hangs under its parent.
    let project_tasks = alice
        .get(&format!(
            "/api/projects/{}/tasks",
            garden["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(project_tasks.expect(200).as_array().unwrap().len(), 2);
    let links = alice
        .get(&format!(
            "/api/tasks/{}/links",
            bulbs["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(links.expect(200)["subtask_of"], tulips["id"]);
    assert_eq!(alice.list("").await.len(), 2, "the failed add made nothing");

    // The failure went back to the model as the reference's tool result.
    assert_eq!(stub.violations(), Vec::<String>::new());
    let requests = stub.requests();
    assert_eq!(requests.len(), 5);
    let fourth = requests[3].messages();
    let failed = fourth
        .iter()
        .find(|message| message["tool_call_id"] == "call_p4")
        .unwrap();
    assert_eq!(tool_result(failed)["success"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_arguments_are_reported_and_corrected() {
    let (stub, server) = start(&[]).await;
    let alice = server.user("alice");
    let due = (Utc::now() + Duration::days(1))
        .format("%Y-%m-%dT18:00:00+00:00")
        .to_string();
    stub.push_all([
        StubReply::fixture("tool_call_malformed_arguments"),
        StubReply::fixture_with("tool_call_add_task", &[("DUE_DATE", &due)]),
        StubReply::fixture("text_task_added"),
    ]);

    let reply = chat(&alice, "add buy milk tomorrow").await;
    let invoked = reply["tools_invoked"].as_array().unwrap();
    assert_eq!(invoked.len(), 2);
    assert_eq!(invoked[0]["tool_name"], "add_task");
    assert_eq!(invoked[0]["success"], false);
    assert_eq!(invoked[0]["result"], Value::Null);
    let error = invoked[0]["error"].as_str().unwrap();
    assert!(error.starts_with("Invalid arguments"), "{error}");
    assert_eq!(invoked[1]["success"], true);
    assert_eq!(alice.list("").await.len(), 1);

    assert_eq!(stub.violations(), Vec::<String>::new());
    let second = &stub.requests()[1];
    let messages = second.messages();
    assert_eq!(messages[3]["tool_call_id"], "call_x1bz");
    assert_eq!(
        tool_result(&messages[3]),
        json!({"success": false, "error": error})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_error_falls_back_to_the_fallback_model_then_offline() {
    let (stub, server) = start(&[("TASKSTREAM_LLM_FALLBACK_MODEL", "llama-3.1-8b-instant")]).await;
    let alice = server.user("alice");

    // Groq refusing the primary's tool call: the fallback model answers.
    stub.push_all([
        StubReply::fixture("error_tool_use_failed"),
        StubReply::text("Which task do you mean?"),
    ]);
    let reply = chat(&alice, "do the thing").await;
    assert_eq!(reply["message"], "Which task do you mean?");
    let models: Vec<Value> = stub
        .requests()
        .iter()
        .map(|request| request.body["model"].clone())
        .collect();
    assert_eq!(
        models,
        [
            json!("llama-3.3-70b-versatile"),
            json!("llama-3.1-8b-instant")
        ]
    );

    // Both refuse: the offline assistant answers, still 200 and nothing technical.
    stub.push_all([
        StubReply::fixture("error_invalid_api_key"),
        StubReply::fixture("error_invalid_api_key"),
    ]);
    let reply = chat(&alice, "add buy milk tomorrow").await;
    let text = reply["message"].as_str().unwrap();
    for technical in ["401", "Invalid API Key", "HTTP", "provider", "test-key"] {
        assert!(!text.contains(technical), "{technical:?} in {text:?}");
    }
    assert_eq!(stub.requests().len(), 4);
    assert_eq!(stub.remaining(), 0);
    assert!(!server.stderr().contains(KEY), "the key reached the log");
}
