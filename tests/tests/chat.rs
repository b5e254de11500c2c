//! The chat endpoint against the real binary with the offline assistant (no API key): the
//! reference's request/response contract, history, streaming framing, and that chat changes go
//! through the same service as REST (events, audit, recurrence).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};
use taskstream_tests::{CONSUMER_WAIT, TestServer, User, eventually};

async fn chat(user: &User, message: &str) -> Value {
    let r = user
        .post(
            &format!("/api/{}/chat", user.sub),
            &json!({ "message": message }),
        )
        .await;
    let body = r.expect(200).clone();
    let keys: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys.len(),
        3,
        "exactly message, tools_invoked, conversation_id: {body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(uuid::Uuid::parse_str(body["conversation_id"].as_str().expect("id")).is_ok());
    for invocation in body["tools_invoked"].as_array().expect("array") {
        let mut keys: Vec<&str> = invocation
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["error", "result", "success", "tool_name"]);
    }
    body
}

fn tools(reply: &Value) -> Vec<(String, bool)> {
    reply["tools_invoked"]
        .as_array()
        .expect("array")
        .iter()
        .map(|i| {
            (
                i["tool_name"].as_str().expect("name").to_owned(),
                i["success"].as_bool().expect("bool"),
            )
        })
        .collect()
}

async fn chat_adds_lists_completes_and_deletes_like_rest(server: TestServer) {
    let alice = server.user("chat-alice");

    let added = chat(
        &alice,
        "add buy milk tomorrow at 5pm #shopping high priority",
    )
    .await;
    assert_eq!(tools(&added), [("add_task".to_owned(), true)], "{added}");
    let milk = &added["tools_invoked"][0]["result"];
    assert_eq!(milk["priority"], "high");
    assert_eq!(milk["tags"], json!(["shopping"]));
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).date_naive();
    assert_eq!(
        milk["due_date"],
        format!("{}T17:00:00Z", tomorrow.format("%Y-%m-%d")),
        "read in UTC without X-Timezone"
    );
    let reply = added["message"].as_str().expect("text");
    assert!(
        reply.contains("uy milk"),
        "the reply names the task: {reply}"
    );

    let rent = chat(&alice, "remind me to pay rent every month on the 1st at 9").await;
    assert_eq!(tools(&rent), [("add_task".to_owned(), true)], "{rent}");
    assert_eq!(
        rent["tools_invoked"][0]["result"]["recurrence_rule"],
        "MONTHLY"
    );
    let rent_due = rent["tools_invoked"][0]["result"]["due_date"]
        .as_str()
        .expect("due")
        .to_owned();
    assert!(
        rent_due.ends_with("-01T09:00:00Z"),
        "the next 1st at 09:00: {rent_due}"
    );

    let rest = alice.list("").await;
    assert_eq!(rest.len(), 2, "chat tasks are ordinary tasks: {rest:?}");

    let listed = chat(&alice, "show my tasks").await;
    assert_eq!(tools(&listed), [("list_tasks".to_owned(), true)]);
    assert_eq!(
        listed["tools_invoked"][0]["result"]
            .as_array()
            .expect("list")
            .len(),
        2
    );

    let done = chat(&alice, "complete pay rent").await;
    assert_eq!(tools(&done), [("complete_task".to_owned(), true)], "{done}");
    let next = &done["tools_invoked"][0]["result"]["next_task"];
    assert_eq!(next["title"], done["tools_invoked"][0]["result"]["title"]);
    assert_eq!(
        next["recurrence_rule"], "MONTHLY",
        "completion through chat recurs"
    );
    let rent_tasks: Vec<Value> = alice
        .list("")
        .await
        .into_iter()
        .filter(|t| t["recurrence_rule"] == "MONTHLY")
        .collect();
    assert_eq!(
        rent_tasks.len(),
        2,
        "the completed one and its next occurrence"
    );

    let deleted = chat(&alice, "delete buy milk").await;
    assert_eq!(
        tools(&deleted),
        [("delete_task".to_owned(), true)],
        "{deleted}"
    );
    assert!(
        alice
            .list("")
            .await
            .iter()
            .all(|t| t["tags"] != json!(["shopping"]))
    );

    let audited = eventually("chat changes audited", CONSUMER_WAIT, || async {
        let types: Vec<String> = alice
            .audit("")
            .await
            .iter()
            .map(|row| row["event_type"].as_str().unwrap_or_default().to_owned())
            .collect();
        let wanted = ["task.created", "task.completed", "task.deleted"];
        if wanted.iter().all(|w| types.iter().any(|t| t == w)) {
            Ok(types)
        } else {
            Err(format!("{types:?}"))
        }
    })
    .await;
    assert_eq!(
        audited.iter().filter(|t| *t == "task.created").count(),
        3,
        "milk, rent and rent's next occurrence: {audited:?}"
    );

    let history = alice.get(&format!("/api/{}/chat", alice.sub)).await;
    let history = history.expect(200);
    assert_eq!(history["conversation_id"], added["conversation_id"]);
    let messages = history["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 10, "five turns of two messages");
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(
        messages[0]["content"],
        "add buy milk tomorrow at 5pm #shopping high priority"
    );
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["tool_calls"][0]["tool_name"], "add_task");
    assert_eq!(messages[0]["tool_calls"], Value::Null);

    let cleared = alice.delete(&format!("/api/{}/chat", alice.sub)).await;
    assert_eq!(cleared.expect(200)["messages"], 10);
    let empty = alice.get(&format!("/api/{}/chat", alice.sub)).await;
    assert_eq!(
        empty.expect(200),
        &json!({"conversation_id": null, "messages": []})
    );
    assert_eq!(
        alice.list("").await.len(),
        2,
        "clearing the chat keeps the tasks"
    );
}

async fn the_number_in_the_last_list_and_undo_work_across_turns(server: TestServer) {
    let bob = server.user("chat-bob");
    chat(&bob, "add water the plants tomorrow").await;
    chat(&bob, "add call mom on friday").await;
    let listed = chat(&bob, "list").await;
    let shown = listed["tools_invoked"][0]["result"]
        .as_array()
        .expect("list")
        .clone();
    assert_eq!(shown.len(), 2);
    let done = chat(&bob, "complete 2").await;
    assert_eq!(tools(&done), [("complete_task".to_owned(), true)], "{done}");
    assert_eq!(
        done["tools_invoked"][0]["result"]["id"], shown[1]["id"],
        "number 2 of the list just shown"
    );
    let undone = chat(&bob, "undo").await;
    assert!(
        tools(&undone).iter().all(|(_, ok)| *ok) && !tools(&undone).is_empty(),
        "{undone}"
    );
    let reopened = bob.get_task(shown[1]["id"].as_str().expect("id")).await;
    assert_eq!(
        reopened.expect(200)["status"],
        "pending",
        "undo reopened the task"
    );

    let added = chat(&bob, "add renew passport next week").await;
    let id = added["tools_invoked"][0]["result"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    chat(&bob, "undo").await;
    bob.get_task(&id).await.expect(404);
}

async fn unclear_messages_create_nothing_and_say_so(server: TestServer) {
    let carol = server.user("chat-carol");
    let reply = chat(&carol, "asdf qwerty zxcv").await;
    assert_eq!(reply["tools_invoked"], json!([]));
    assert!(carol.list("").await.is_empty(), "nothing invented");
    let help = chat(&carol, "help").await;
    assert_eq!(help["tools_invoked"], json!([]));
    assert!(
        help["message"]
            .as_str()
            .expect("text")
            .to_lowercase()
            .contains("add")
    );
}

async fn chat_checks_the_owner_and_the_body(server: TestServer) {
    let dave = server.user("chat-dave");
    let r = dave
        .post("/api/someone-else/chat", &json!({"message": "list"}))
        .await;
    r.expect_detail(403, "Not authorized to access this resource");
    let r = dave.get("/api/someone-else/chat").await;
    r.expect_detail(403, "Not authorized to access this resource");
    let r = server
        .client()
        .post(server.url("/api/chat-dave/chat"))
        .json(&json!({"message": "list"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);

    let path = format!("/api/{}/chat", dave.sub);
    dave.post(&path, &json!({}))
        .await
        .expect_invalid("missing", json!(["body", "message"]));
    dave.post(&path, &json!({"message": ""}))
        .await
        .expect_invalid("string_too_short", json!(["body", "message"]));
    dave.post(&path, &json!({"message": "x".repeat(4001)}))
        .await
        .expect_invalid("string_too_long", json!(["body", "message"]));
    dave.post(&path, &json!({"message": 42}))
        .await
        .expect_invalid("string_type", json!(["body", "message"]));
    dave.post(&path, &json!({"message": "list", "stream": "yes"}))
        .await
        .expect_invalid("bool_type", json!(["body", "stream"]));
    let long = dave
        .post(&path, &json!({"message": "é".repeat(4000)}))
        .await;
    long.expect(200);
    assert!(dave.list("").await.is_empty());
}

async fn stream_true_uses_the_reference_framing(server: TestServer) {
    let erin = server.user("chat-erin");
    let response = erin
        .req(reqwest::Method::POST, &format!("/api/{}/chat", erin.sub))
        .json(&json!({"message": "add book the dentist tomorrow at 10am", "stream": true}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let body = response.text().await.expect("body");
    let frames: Vec<&str> = body
        .split("\n\n")
        .filter(|frame| !frame.trim().is_empty())
        .map(|frame| frame.strip_prefix("data: ").expect("data: frame"))
        .collect();
    assert_eq!(frames.last(), Some(&"[DONE]"));
    let parsed: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|frame| serde_json::from_str(frame).expect("json frame"))
        .collect();
    assert_eq!(parsed[0]["type"], "tool_invocation");
    assert_eq!(parsed[0]["data"]["tool_name"], "add_task");
    assert_eq!(parsed[0]["data"]["success"], true);
    let done = parsed.last().expect("done");
    assert_eq!(done["type"], "done");
    assert_eq!(done["data"]["tools_invoked"][0], parsed[0]["data"]);
    let text: String = parsed
        .iter()
        .filter(|frame| frame["type"] == "content")
        .map(|frame| frame["data"].as_str().expect("delta"))
        .collect();
    let history = erin.get(&format!("/api/{}/chat", erin.sub)).await;
    let messages = history.expect(200)["messages"]
        .as_array()
        .expect("messages")
        .clone();
    assert_eq!(messages.len(), 2);
    assert_eq!(
        messages[1]["content"], text,
        "the streamed text is what was stored"
    );
    assert_eq!(erin.list("").await.len(), 1);
}

async fn x_timezone_governs_how_times_are_read(server: TestServer) {
    let frank = server.user("chat-frank");
    let r = frank
        .req(reqwest::Method::POST, &format!("/api/{}/chat", frank.sub))
        .header("X-Timezone", "America/New_York")
        .json(&json!({"message": "add submit expenses on Dec 24 at 9am"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    let due = body["tools_invoked"][0]["result"]["due_date"]
        .as_str()
        .expect("due")
        .to_owned();
    assert!(
        due.ends_with("-12-24T14:00:00Z"),
        "09:00 in New York is 14:00 UTC in December: {due}"
    );
}

/// The user's project called `name` (as `GET /api/projects` shows it).
async fn project_named(user: &User, name: &str) -> Option<Value> {
    let r = user.get("/api/projects").await;
    r.expect(200)
        .as_array()
        .expect("array")
        .iter()
        .find(|project| project["name"] == name)
        .cloned()
}

async fn links_of(user: &User, id: &str) -> Value {
    user.get(&format!("/api/tasks/{id}/links"))
        .await
        .expect(200)
        .clone()
}

async fn chat_understands_projects_and_subtasks(server: TestServer) {
    let alice = server.user("chat-projects");

    // Without a project of that name, the words are the title, as before projects.
    let plain = chat(&alice, "add buy milk to groceries").await;
    assert_eq!(tools(&plain), [("add_task".to_owned(), true)], "{plain}");
    let plain_task = &plain["tools_invoked"][0]["result"];
    assert_eq!(plain_task["title"], "buy milk to groceries");
    assert_eq!(plain_task["project_id"], Value::Null);

    let created = chat(&alice, "create a project Groceries").await;
    assert_eq!(
        tools(&created),
        [("create_project".to_owned(), true)],
        "{created}"
    );
    assert!(
        created["message"]
            .as_str()
            .unwrap()
            .contains("Created the project 'Groceries'"),
        "{created}"
    );
    let groceries = project_named(&alice, "Groceries").await.expect("created");
    let again = chat(&alice, "create a project groceries").await;
    assert_eq!(tools(&again), [("create_project".to_owned(), false)]);
    assert!(
        again["message"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{again}"
    );

    for (message, title) in [
        ("add buy oat milk to groceries", "buy oat milk"),
        ("add eggs to my Groceries list tomorrow at 9", "eggs"),
    ] {
        let added = chat(&alice, message).await;
        assert_eq!(tools(&added), [("add_task".to_owned(), true)], "{added}");
        let task = &added["tools_invoked"][0]["result"];
        assert_eq!(task["title"], title, "{added}");
        assert_eq!(task["project_id"], groceries["id"], "{added}");
        assert!(
            added["message"]
                .as_str()
                .unwrap()
                .contains("(in Groceries)"),
            "{added}"
        );
        let id = task["id"].as_str().unwrap();
        assert_eq!(links_of(&alice, id).await["project_id"], groceries["id"]);
    }
    // Quick-add phrases are unchanged.
    let talk = chat(&alice, "add talk to bob tomorrow at 5pm #work").await;
    assert_eq!(talk["tools_invoked"][0]["result"]["title"], "talk to bob");
    assert_eq!(talk["tools_invoked"][0]["result"]["tags"], json!(["work"]));

    for message in ["show my groceries list", "what's in groceries?"] {
        let shown = chat(&alice, message).await;
        assert_eq!(tools(&shown), [("list_tasks".to_owned(), true)], "{shown}");
        let mut titles: Vec<&str> = shown["tools_invoked"][0]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|task| task["title"].as_str().unwrap())
            .collect();
        titles.sort_unstable();
        assert_eq!(titles, ["buy oat milk", "eggs"], "{message}: {shown}");
        assert!(
            shown["message"]
                .as_str()
                .unwrap()
                .contains("tasks in Groceries (2 tasks)"),
            "{shown}"
        );
    }
    let projects = chat(&alice, "show my projects").await;
    assert_eq!(tools(&projects), [("list_projects".to_owned(), true)]);
    assert!(
        projects["message"]
            .as_str()
            .unwrap()
            .contains("Groceries — 2 open of 2"),
        "{projects}"
    );

    // Subtasks: the parent by title, in the parent's project.
    let sink = alice.create(json!({"title": "Fix sink"})).await;
    let sink_id = sink["id"].as_str().unwrap().to_owned();
    let sub = chat(&alice, "add subtask call plumber to fix sink").await;
    assert_eq!(tools(&sub), [("add_task".to_owned(), true)], "{sub}");
    let plumber = &sub["tools_invoked"][0]["result"];
    assert_eq!(plumber["title"], "call plumber");
    assert_eq!(plumber["subtask_of"], sink_id.as_str());
    assert!(
        sub["message"]
            .as_str()
            .unwrap()
            .contains("as a subtask of 'Fix sink'"),
        "{sub}"
    );
    let subtasks = alice.get(&format!("/api/tasks/{sink_id}/subtasks")).await;
    assert_eq!(subtasks.expect(200).as_array().unwrap().len(), 1);

    // No such parent, a subtask as parent, several parents: a clear reply, nothing added.
    let before = alice.list("").await.len();
    let none = chat(&alice, "add subtask buy washers to paint the fence").await;
    assert_eq!(tools(&none), []);
    assert!(
        none["message"]
            .as_str()
            .unwrap()
            .contains("No task matches"),
        "{none}"
    );
    let nested = chat(&alice, "add subtask buy washers to call plumber").await;
    assert_eq!(tools(&nested), []);
    assert!(
        nested["message"]
            .as_str()
            .unwrap()
            .contains("can't have subtasks"),
        "{nested}"
    );
    alice.create(json!({"title": "Fix sink upstairs"})).await;
    alice.create(json!({"title": "Fix sink downstairs"})).await;
    let ambiguous = chat(&alice, "add subtask buy washers to sink").await;
    assert_eq!(tools(&ambiguous), []);
    assert!(
        ambiguous["message"]
            .as_str()
            .unwrap()
            .starts_with("Which one do you mean?"),
        "{ambiguous}"
    );
    assert_eq!(alice.list("").await.len(), before + 2);
    // The answer to the question adds it under the chosen one.
    let chosen = chat(&alice, "1").await;
    assert_eq!(tools(&chosen), [("add_task".to_owned(), true)], "{chosen}");
    assert!(chosen["tools_invoked"][0]["result"]["subtask_of"].is_string());

    // Another user's project of the same name is not alice's.
    let bob = server.user("chat-projects-bob");
    let bobs = chat(&bob, "add buy milk to groceries").await;
    assert_eq!(
        bobs["tools_invoked"][0]["result"]["title"],
        "buy milk to groceries"
    );
    assert_eq!(
        bobs["tools_invoked"][0]["result"]["project_id"],
        Value::Null
    );
}

taskstream_tests::api_tests!(
    chat_understands_projects_and_subtasks,
    chat_adds_lists_completes_and_deletes_like_rest,
    the_number_in_the_last_list_and_undo_work_across_turns,
    unclear_messages_create_nothing_and_say_so,
    chat_checks_the_owner_and_the_body,
    stream_true_uses_the_reference_framing,
    x_timezone_governs_how_times_are_read,
);
