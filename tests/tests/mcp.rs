//! MCP: the task tools over streamable HTTP at `/mcp` (spoken by hand: JSON-RPC over POST, the
//! server answers JSON) and over stdio (`taskstream mcp`). The official Python SDK runs the full
//! client suite in `tests/python/mcp_client_test.py`; these cover the contract in `cargo test`.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use taskstream_tests::{Resp, TestServer, User, command, run};

const TOOLS: [&str; 7] = [
    "add_task",
    "list_tasks",
    "complete_task",
    "update_task",
    "delete_task",
    "list_projects",
    "create_project",
];

/// One JSON-RPC request to `/mcp` as `user` (or with the raw `authorization` header given).
async fn rpc(srv: &TestServer, authorization: Option<&str>, method: &str, params: Value) -> Resp {
    let mut request = srv
        .client()
        .post(srv.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    Resp::from(request.send().await.unwrap()).await
}

/// Calls a tool as `user`; returns `(isError, the {"success", "data"|"error"} object)`.
async fn call(srv: &TestServer, user: &User, tool: &str, arguments: Value) -> (bool, Value) {
    let bearer = format!("Bearer {}", user.token);
    let r = rpc(
        srv,
        Some(&bearer),
        "tools/call",
        json!({ "name": tool, "arguments": arguments }),
    )
    .await;
    let result = r.expect(200)["result"].clone();
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        result["structuredContent"], text,
        "text and structured agree"
    );
    (result["isError"] == json!(true), text)
}

async fn mcp_without_a_valid_token_is_401(srv: TestServer) {
    let good = srv.token("alice");
    let basic = format!("Basic {good}");
    for auth in [None, Some("Bearer not-a-token"), Some(basic.as_str())] {
        let r = rpc(&srv, auth, "tools/list", json!({})).await;
        assert_eq!(r.status, 401, "{auth:?}: {}", r.text);
        let www = r.header("www-authenticate").unwrap_or_default();
        assert!(www.starts_with("Bearer"), "{auth:?}: {www:?}");
    }
}

async fn mcp_over_http_lists_the_tools_and_scopes_them_to_the_token_user(srv: TestServer) {
    let (alice, bob) = (srv.user("alice"), srv.user("bob"));
    let bearer = format!("Bearer {}", alice.token);

    let init = rpc(
        &srv,
        Some(&bearer),
        "initialize",
        json!({ "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": { "name": "cargo-test", "version": "0" } }),
    )
    .await;
    let info = &init.expect(200)["result"];
    assert_eq!(info["serverInfo"]["name"], "taskstream");
    assert!(info["capabilities"]["tools"].is_object(), "{info}");

    let listed = rpc(&srv, Some(&bearer), "tools/list", json!({})).await;
    let tools = listed.expect(200)["result"]["tools"]
        .as_array()
        .unwrap()
        .clone();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, TOOLS);
    assert_eq!(tools[0]["inputSchema"]["required"], json!(["title"]));

    let (failed, added) = call(
        &srv,
        &alice,
        "add_task",
        json!({ "title": "alice's", "tags": ["Work"] }),
    )
    .await;
    assert!(!failed, "{added}");
    let id = added["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(added["data"]["tags"], json!(["work"]));
    assert_eq!(
        alice
            .list("")
            .await
            .iter()
            .map(|t| &t["id"])
            .collect::<Vec<_>>(),
        [&json!(id)],
        "REST sees the task"
    );

    // bob's token: alice's task is invisible and untouchable, whatever the arguments say.
    let (failed, seen) = call(&srv, &bob, "list_tasks", json!({ "user_id": "alice" })).await;
    assert!(!failed);
    assert_eq!(seen["data"], json!([]));
    for tool in ["complete_task", "delete_task"] {
        let (failed, answer) = call(&srv, &bob, tool, json!({ "task_id": id })).await;
        assert!(failed, "{tool}: {answer}");
        assert_eq!(answer["error"], "You don't have access to this task");
    }
    alice.get_task(&id).await.expect(200);
    assert_eq!(alice.get_task(&id).await.expect(200)["status"], "pending");
}

/// The project tools and the project and subtask parameters of `add_task`, each user's own.
async fn mcp_tools_put_tasks_in_projects_and_under_parents(srv: TestServer) {
    let (alice, bob) = (srv.user("alice"), srv.user("bob"));
    let listed = rpc(
        &srv,
        Some(&format!("Bearer {}", alice.token)),
        "tools/list",
        json!({}),
    )
    .await;
    let tools = listed.expect(200)["result"]["tools"].clone();
    let tool = |name: &str| {
        tools
            .as_array()
            .unwrap()
            .iter()
            .find(|tool| tool["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(tool("list_projects")["annotations"]["readOnlyHint"], true);
    assert_eq!(
        tool("create_project")["inputSchema"]["required"],
        json!(["name"])
    );
    let add_params = tool("add_task")["inputSchema"]["properties"].clone();
    assert!(add_params["project"].is_object() && add_params["subtask_of"].is_object());

    let (failed, groceries) =
        call(&srv, &alice, "create_project", json!({"name": "Groceries"})).await;
    assert!(!failed, "{groceries}");
    let project_id = groceries["data"]["id"].as_str().unwrap().to_owned();
    let (failed, milk) = call(
        &srv,
        &alice,
        "add_task",
        json!({"title": "Buy milk", "project": "groceries"}),
    )
    .await;
    assert!(!failed, "{milk}");
    assert_eq!(milk["data"]["project_id"], project_id.as_str());
    let milk_id = milk["data"]["id"].as_str().unwrap().to_owned();
    let (failed, oat) = call(
        &srv,
        &alice,
        "add_task",
        json!({"title": "oat milk", "subtask_of": "buy milk"}),
    )
    .await;
    assert!(!failed, "a parent by title, ignoring case: {oat}");
    assert_eq!(oat["data"]["subtask_of"], milk_id.as_str());
    assert_eq!(oat["data"]["project_id"], project_id.as_str());

    let (failed, listed) = call(&srv, &alice, "list_tasks", json!({"project": "Groceries"})).await;
    assert!(!failed);
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    let (_, projects) = call(&srv, &alice, "list_projects", json!({})).await;
    assert_eq!(projects["data"][0]["open_task_count"], 2);

    // bob cannot reach alice's project or parent by name, title or id.
    let (failed, answer) = call(
        &srv,
        &bob,
        "add_task",
        json!({"title": "x", "project": "Groceries"}),
    )
    .await;
    assert!(failed);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("Project not found: Groceries")
    );
    for parent in [milk_id.as_str(), "Buy milk"] {
        let (failed, answer) = call(
            &srv,
            &bob,
            "add_task",
            json!({"title": "x", "subtask_of": parent}),
        )
        .await;
        assert!(failed, "{answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("Parent task not found"),
            "{answer}"
        );
    }
    let (_, bobs) = call(&srv, &bob, "list_projects", json!({})).await;
    assert_eq!(bobs["data"], json!([]));
    assert!(bob.list("").await.is_empty());
}

#[test]
fn mcp_help_documents_the_subcommand() {
    let mut cmd = command();
    cmd.args(["mcp", "--help"]);
    let out = run(cmd, Duration::from_secs(30));
    assert!(out.status.is_some_and(|s| s.success()), "{}", out.stderr);
    for needle in [
        "stdio",
        "--user <USER>",
        "--data-dir <DIR>",
        "--timezone <ZONE>",
        "mcpServers",
    ] {
        assert!(
            out.stdout.contains(needle),
            "{needle:?} missing:\n{}",
            out.stdout
        );
    }
    let top = run(
        {
            let mut cmd = command();
            cmd.arg("--help");
            cmd
        },
        Duration::from_secs(30),
    );
    assert!(top.stdout.contains("mcp"), "{}", top.stdout);
}

/// Over stdio, stdout carries nothing but protocol lines (logs go to stderr, here at debug).
#[test]
fn mcp_over_stdio_adds_and_lists_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command();
    cmd.args(["mcp", "--user", "desk@example.com", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--log-level", "debug"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = |message: Value| writeln!(stdin, "{message}").unwrap();
    let mut answer = |id: i64| -> Value {
        let line = lines.next().expect("a line").unwrap();
        let message: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(message["id"], id, "{message}");
        message["result"].clone()
    };

    send(
        json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": { "name": "cargo-test", "version": "0" } } }),
    );
    assert_eq!(answer(1)["serverInfo"]["name"], "taskstream");
    send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
    send(json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }));
    assert_eq!(answer(2)["tools"].as_array().unwrap().len(), TOOLS.len());
    send(json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call",
                 "params": { "name": "add_task", "arguments": { "title": "from stdio" } } }));
    assert_eq!(answer(3)["structuredContent"]["success"], true);
    send(json!({ "jsonrpc": "2.0", "id": 4, "method": "tools/call",
                 "params": { "name": "list_tasks", "arguments": {} } }));
    let listed = answer(4);
    assert_eq!(
        listed["structuredContent"]["data"][0]["title"],
        "from stdio"
    );

    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("serving MCP over stdio"),
        "logs go to stderr"
    );
}

taskstream_tests::api_tests!(
    mcp_tools_put_tasks_in_projects_and_under_parents,
    mcp_without_a_valid_token_is_401,
    mcp_over_http_lists_the_tools_and_scopes_them_to_the_token_user,
);
