//! A stand-in OpenAI-compatible chat-completions server: it replays a script of recorded Groq
//! answers (`tests/fixtures/groq/*.json`), records every request, and checks each request
//! against the chat-completions contract, answering 400 like the provider when one breaks it.
//!
//! A request that breaks the contract does not consume the script, so a test that expects
//! an answer sees the stub's 400 instead; [`OpenAiStub::violations`] says what was wrong.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The path the stub serves, under its `/v1` base URL.
pub const COMPLETIONS_PATH: &str = "/v1/chat/completions";

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct StubReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Sent verbatim (so a test can send a broken body).
    pub body: String,
    /// Wait this long before answering (to provoke client timeouts).
    pub delay: Duration,
}

impl StubReply {
    /// A recorded exchange from `tests/fixtures/groq/{name}.json`: `{"status", "headers",
    /// "body"}`.
    pub fn fixture(name: &str) -> StubReply {
        Self::fixture_with(name, &[])
    }

    /// Like [`StubReply::fixture`], replacing each `{{KEY}}` of the file's text by its value
    /// first (for ids only known at run time).
    pub fn fixture_with(name: &str, values: &[(&str, &str)]) -> StubReply {
        let mut text = std::fs::read_to_string(fixture_path(name))
            .unwrap_or_else(|error| panic!("cannot read fixture {name}: {error}"));
        for (key, value) in values {
            text = text.replace(&format!("{{{{{key}}}}}"), value);
        }
        let recorded: Value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("fixture {name} is not JSON: {error}"));
        let status = recorded["status"].as_u64().unwrap_or(200) as u16;
        let headers = recorded["headers"]
            .as_object()
            .map(|headers| {
                headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        StubReply {
            status,
            headers,
            body: recorded["body"].to_string(),
            delay: Duration::ZERO,
        }
    }

    /// 200 with `body` as JSON.
    pub fn json(body: &Value) -> StubReply {
        StubReply::status(200, body)
    }

    /// `status` with `body` as JSON.
    pub fn status(status: u16, body: &Value) -> StubReply {
        StubReply {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// A Groq `chat.completion` whose message is `content` and which stops.
    pub fn text(content: &str) -> StubReply {
        StubReply::json(&completion(
            json!({"role": "assistant", "content": content}),
            "stop",
        ))
    }

    /// A Groq `chat.completion` calling tools: `(id, name, arguments as JSON text)`.
    pub fn tool_calls(calls: &[(&str, &str, &str)]) -> StubReply {
        let calls: Vec<Value> = calls
            .iter()
            .map(|(id, name, arguments)| {
                json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
            })
            .collect();
        StubReply::json(&completion(
            json!({"role": "assistant", "tool_calls": calls}),
            "tool_calls",
        ))
    }

    /// An error the way Groq words it: `{"error": {"message", "type", "code"}}`.
    pub fn error(status: u16, kind: &str, code: &str, message: &str) -> StubReply {
        StubReply::status(
            status,
            &json!({"error": {"message": message, "type": kind, "code": code}}),
        )
    }

    /// The same answer, after `delay`.
    pub fn after(mut self, delay: Duration) -> StubReply {
        self.delay = delay;
        self
    }

    /// The same answer with one more header.
    pub fn header(mut self, name: &str, value: &str) -> StubReply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// A full Groq `chat.completion` body around `message`.
pub fn completion(message: Value, finish_reason: &str) -> Value {
    json!({
        "id": format!("chatcmpl-{}", uuid::Uuid::new_v4()),
        "object": "chat.completion",
        "created": chrono::Utc::now().timestamp(),
        "model": "llama-3.3-70b-versatile",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason}],
        "usage": {"queue_time": 0.018, "prompt_tokens": 1024, "prompt_time": 0.041,
                  "completion_tokens": 24, "completion_time": 0.087, "total_tokens": 1048, "total_time": 0.128},
        "usage_breakdown": null,
        "system_fingerprint": "fp_3f3b593e33",
        "x_groq": {"id": format!("req_{}", uuid::Uuid::new_v4().simple())},
        "service_tier": "on_demand"
    })
}

/// Where the recorded Groq answers live.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/groq")
        .join(format!("{name}.json"))
}

/// One request the stub received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Lower-case names; the last value of a repeated header.
    pub headers: BTreeMap<String, String>,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// Why the request broke the contract, if it did.
    pub violation: Option<String>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_lowercase()).map(String::as_str)
    }

    /// `body.messages`, or nothing.
    pub fn messages(&self) -> Vec<Value> {
        self.body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The roles of `body.messages`, in order.
    pub fn roles(&self) -> Vec<String> {
        self.messages()
            .iter()
            .map(|message| message["role"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<StubReply>>,
    requests: Mutex<Vec<Recorded>>,
    api_key: Mutex<Option<String>>,
}

/// The running stub; stops when dropped.
pub struct OpenAiStub {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl OpenAiStub {
    /// Starts the stub on a free loopback port, in the current Tokio runtime.
    pub async fn start() -> OpenAiStub {
        let shared = Arc::new(Shared::default());
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the stub");
        let addr = listener.local_addr().expect("stub address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        OpenAiStub {
            addr,
            shared,
            server,
        }
    }

    /// The base URL clients are configured with: `http://127.0.0.1:<port>/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Only this bearer token is accepted from now on (any non-empty one before).
    pub fn require_key(&self, key: &str) {
        *self.shared.api_key.lock().unwrap() = Some(key.to_owned());
    }

    /// Queues answers, answered in order.
    pub fn push(&self, reply: StubReply) {
        self.shared.script.lock().unwrap().push_back(reply);
    }

    pub fn push_all(&self, replies: impl IntoIterator<Item = StubReply>) {
        self.shared.script.lock().unwrap().extend(replies);
    }

    /// Answers not used yet.
    pub fn remaining(&self) -> usize {
        self.shared.script.lock().unwrap().len()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The contract violations seen so far.
    pub fn violations(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter_map(|request| request.violation)
            .collect()
    }
}

impl Drop for OpenAiStub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut recorded = Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        violation: None,
    };
    let expected_key = shared.api_key.lock().unwrap().clone();
    let refusal = if uri.path() != COMPLETIONS_PATH {
        Some((
            StatusCode::NOT_FOUND,
            "unknown_url",
            format!("Unknown request URL: {} {}", method, uri.path()),
        ))
    } else if method != Method::POST {
        Some((
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("Method {method} is not allowed"),
        ))
    } else if let Err(message) = check_auth(&headers, expected_key.as_deref()) {
        Some((StatusCode::UNAUTHORIZED, "invalid_api_key", message))
    } else if let Err(message) = check_request(&headers, &recorded.body) {
        Some((StatusCode::BAD_REQUEST, "invalid_request", message))
    } else {
        None
    };
    if let Some((status, code, message)) = refusal {
        recorded.violation = Some(message.clone());
        shared.requests.lock().unwrap().push(recorded);
        let body =
            json!({"error": {"message": message, "type": "invalid_request_error", "code": code}});
        return (status, axum::Json(body)).into_response();
    }
    shared.requests.lock().unwrap().push(recorded);
    let next = shared.script.lock().unwrap().pop_front();
    let Some(reply) = next else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(
                json!({"error": {"message": "the stub's script is exhausted",
                "type": "internal_server_error", "code": "stub_script_exhausted"}}),
            ),
        )
            .into_response();
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::new(axum::body::Body::from(reply.body));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
    response
}

fn check_auth(headers: &HeaderMap, expected: Option<&str>) -> Result<(), String> {
    let token = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    match expected {
        _ if token.is_empty() => Err("Invalid API Key".into()),
        Some(expected) if token != expected => Err("Invalid API Key".into()),
        _ => Ok(()),
    }
}

/// The chat-completions request contract, as far as a provider enforces it.
pub fn check_request(headers: &HeaderMap, body: &Value) -> Result<(), String> {
    let content_type = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/json") {
        return Err(format!(
            "content-type must be application/json, not {content_type:?}"
        ));
    }
    check_body(body)
}

/// The body part of [`check_request`].
pub fn check_body(body: &Value) -> Result<(), String> {
    let Some(body) = body.as_object() else {
        return Err("the body must be a JSON object".into());
    };
    match body.get("model").and_then(Value::as_str) {
        Some(model) if !model.trim().is_empty() => {}
        _ => return Err("'model' : property 'model' is missing".into()),
    }
    let tools = match body.get("tools") {
        None => None,
        Some(tools) => Some(check_tools(tools)?),
    };
    match body.get("tool_choice") {
        None => {}
        Some(_) if tools.is_none() => {
            return Err("'tool_choice' is only allowed when 'tools' are specified".into());
        }
        Some(Value::String(choice)) if ["auto", "none", "required"].contains(&choice.as_str()) => {}
        Some(Value::Object(choice))
            if choice.get("type") == Some(&json!("function"))
                && choice["function"]["name"]
                    .as_str()
                    .is_some_and(|name| tools.as_ref().is_some_and(|t| t.contains(name))) => {}
        Some(other) => return Err(format!("'tool_choice' is invalid: {other}")),
    }
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Err("'messages' : property 'messages' is missing".into());
    };
    if messages.is_empty() {
        return Err("'messages' : minimum number of items is 1".into());
    }
    check_messages(messages)
}

fn check_tools(tools: &Value) -> Result<HashSet<String>, String> {
    let Some(tools) = tools.as_array() else {
        return Err("'tools' must be an array".into());
    };
    let mut names = HashSet::new();
    for (index, tool) in tools.iter().enumerate() {
        let at = format!("'tools.{index}'");
        if tool["type"] != "function" {
            return Err(format!("{at} : 'type' must be \"function\""));
        }
        let function = &tool["function"];
        let name = function["name"].as_str().unwrap_or_default();
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            return Err(format!("{at} : invalid function name {name:?}"));
        }
        if !names.insert(name.to_owned()) {
            return Err(format!("{at} : duplicate function name {name:?}"));
        }
        if let Some(description) = function.get("description")
            && !description.is_string()
        {
            return Err(format!("{at} : 'description' must be a string"));
        }
        if let Some(parameters) = function.get("parameters") {
            check_schema(parameters, &format!("{at}.function.parameters"))?;
            if parameters["type"] != "object" {
                return Err(format!("{at} : parameters must be an object schema"));
            }
        }
    }
    Ok(names)
}

/// A JSON schema as tools use them: typed properties, `required` naming existing ones.
fn check_schema(schema: &Value, at: &str) -> Result<(), String> {
    let Some(schema) = schema.as_object() else {
        return Err(format!("{at} must be a JSON schema object"));
    };
    const TYPES: &[&str] = &[
        "object", "array", "string", "integer", "number", "boolean", "null",
    ];
    if let Some(kind) = schema.get("type") {
        let known = match kind {
            Value::String(kind) => TYPES.contains(&kind.as_str()),
            Value::Array(kinds) => kinds
                .iter()
                .all(|kind| kind.as_str().is_some_and(|kind| TYPES.contains(&kind))),
            _ => false,
        };
        if !known {
            return Err(format!("{at} : unknown type {kind}"));
        }
    }
    if let Some(values) = schema.get("enum")
        && values.as_array().is_none_or(|values| values.is_empty())
    {
        return Err(format!("{at} : 'enum' must be a non-empty array"));
    }
    let properties = match schema.get("properties") {
        None => None,
        Some(Value::Object(properties)) => {
            for (name, property) in properties {
                check_schema(property, &format!("{at}.properties.{name}"))?;
            }
            Some(properties)
        }
        Some(_) => return Err(format!("{at} : 'properties' must be an object")),
    };
    if let Some(required) = schema.get("required") {
        let Some(required) = required.as_array() else {
            return Err(format!("{at} : 'required' must be an array"));
        };
        for name in required {
            let known = name
                .as_str()
                .is_some_and(|name| properties.is_some_and(|p| p.contains_key(name)));
            if !known {
                return Err(format!("{at} : required property {name} is not defined"));
            }
        }
    }
    if let Some(items) = schema.get("items") {
        check_schema(items, &format!("{at}.items"))?;
    }
    Ok(())
}

fn check_messages(messages: &[Value]) -> Result<(), String> {
    // Tool calls of the latest assistant message still waiting for their `tool` answer.
    let mut open: Vec<String> = Vec::new();
    let mut answered: HashSet<String> = HashSet::new();
    for (index, message) in messages.iter().enumerate() {
        let at = format!("'messages.{index}'");
        let role = message["role"].as_str().unwrap_or_default();
        if role != "tool" && !open.is_empty() {
            return Err(format!(
                "{at} : an assistant message with 'tool_calls' must be followed by tool messages \
                 responding to each 'tool_call_id'; missing: {}",
                open.join(", ")
            ));
        }
        match role {
            "system" | "user" => {
                if !message["content"].is_string() {
                    return Err(format!("{at} : 'content' must be a string"));
                }
            }
            "assistant" => {
                let content = &message["content"];
                if !(content.is_string() || content.is_null()) {
                    return Err(format!("{at} : 'content' must be a string or null"));
                }
                let calls = match message.get("tool_calls") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(calls)) => calls.clone(),
                    Some(_) => return Err(format!("{at} : 'tool_calls' must be an array")),
                };
                if content.is_null() && calls.is_empty() {
                    return Err(format!(
                        "{at} : 'content' is required unless 'tool_calls' is specified"
                    ));
                }
                answered.clear();
                for (n, call) in calls.iter().enumerate() {
                    let id = call["id"].as_str().unwrap_or_default();
                    if id.is_empty() {
                        return Err(format!("{at}.tool_calls.{n} : 'id' is missing"));
                    }
                    if call["type"] != "function" {
                        return Err(format!("{at}.tool_calls.{n} : 'type' must be \"function\""));
                    }
                    if call["function"]["name"].as_str().is_none_or(str::is_empty) {
                        return Err(format!("{at}.tool_calls.{n} : 'function.name' is missing"));
                    }
                    if !call["function"]["arguments"].is_string() {
                        return Err(format!(
                            "{at}.tool_calls.{n} : 'function.arguments' must be a string"
                        ));
                    }
                    if open.contains(&id.to_owned()) {
                        return Err(format!("{at}.tool_calls.{n} : duplicate id {id}"));
                    }
                    open.push(id.to_owned());
                }
            }
            "tool" => {
                let id = message["tool_call_id"].as_str().unwrap_or_default();
                if id.is_empty() {
                    return Err(format!("{at} : 'tool_call_id' is missing"));
                }
                if !message["content"].is_string() {
                    return Err(format!("{at} : 'content' must be a string"));
                }
                match open.iter().position(|open| open == id) {
                    Some(position) => {
                        open.remove(position);
                        answered.insert(id.to_owned());
                    }
                    None if answered.contains(id) => {
                        return Err(format!("{at} : tool_call_id {id} is answered twice"));
                    }
                    None => {
                        return Err(format!(
                            "{at} : messages with role 'tool' must be a response to a preceding \
                             message with 'tool_calls' (no call has id {id})"
                        ));
                    }
                }
            }
            other => {
                return Err(format!(
                    "{at} : 'role' must be one of system, user, assistant, tool; got {other:?}"
                ));
            }
        }
    }
    if !open.is_empty() {
        return Err(format!(
            "the last assistant message's tool calls are unanswered: {}",
            open.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(messages: Value) -> Value {
        json!({"model": "m", "messages": messages})
    }

    #[test]
    fn a_threaded_tool_conversation_passes() {
        let ok = body(json!([
            {"role": "system", "content": "s"},
            {"role": "user", "content": "u"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "a", "content": "{}"},
            {"role": "tool", "tool_call_id": "b", "content": "{}"},
            {"role": "assistant", "content": "done"},
            {"role": "user", "content": "thanks"}
        ]));
        assert_eq!(check_body(&ok), Ok(()));
    }

    #[test]
    fn broken_requests_are_refused() {
        let call =
            json!({"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}});
        for (broken, why) in [
            (
                json!({"messages": [{"role": "user", "content": "u"}]}),
                "model",
            ),
            (body(json!([])), "minimum"),
            (
                body(json!([{"role": "tool", "tool_call_id": "x", "content": "{}"}])),
                "preceding",
            ),
            (
                body(
                    json!([{"role": "assistant", "content": null, "tool_calls": [call]},
                            {"role": "tool", "tool_call_id": "zz", "content": "{}"}]),
                ),
                "preceding",
            ),
            (
                body(
                    json!([{"role": "assistant", "content": "", "tool_calls": [call]},
                            {"role": "user", "content": "u"}]),
                ),
                "followed by tool messages",
            ),
            (body(json!([{"role": "robot", "content": "u"}])), "role"),
            (
                json!({"model": "m", "tool_choice": "auto", "messages": [{"role": "user", "content": "u"}]}),
                "tool_choice",
            ),
            (
                json!({"model": "m", "tools": [{"type": "function", "function": {"name": "bad name"}}],
                       "messages": [{"role": "user", "content": "u"}]}),
                "function name",
            ),
            (
                json!({"model": "m", "tools": [{"type": "function", "function": {"name": "f",
                         "parameters": {"type": "object", "properties": {}, "required": ["x"]}}}],
                       "messages": [{"role": "user", "content": "u"}]}),
                "required property",
            ),
        ] {
            let error = check_body(&broken).expect_err(&broken.to_string());
            assert!(error.contains(why), "{error} should mention {why}");
        }
    }

    #[test]
    fn the_engines_tools_are_well_formed() {
        let request = json!({
            "model": "m",
            "messages": [{"role": "user", "content": "u"}],
            "tools": taskstream_engine::assistant::tools::openai_tools(),
            "tool_choice": "auto"
        });
        assert_eq!(check_body(&request), Ok(()));
    }

    #[test]
    fn every_fixture_is_a_recorded_exchange() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/groq");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let reply = StubReply::fixture_with(&name, &[("TASK_ID", "x"), ("TASK_ID_2", "y")]);
            let body: Value = serde_json::from_str(&reply.body).unwrap();
            if reply.status == 200 {
                assert_eq!(body["object"], "chat.completion", "{name}");
                assert!(body["choices"][0]["message"].is_object(), "{name}");
            } else {
                assert!(body["error"]["message"].is_string(), "{name}");
            }
            seen += 1;
        }
        assert!(seen >= 5, "only {seen} fixtures");
    }

    #[tokio::test]
    async fn the_stub_replays_records_and_refuses() {
        let stub = OpenAiStub::start().await;
        stub.push(StubReply::text("hello"));
        let client = reqwest::Client::new();
        let url = format!("{}/chat/completions", stub.base_url());
        let ok = client
            .post(&url)
            .bearer_auth("k")
            .json(&body(json!([{"role": "user", "content": "hi"}])))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        let answer: Value = ok.json().await.unwrap();
        assert_eq!(answer["choices"][0]["message"]["content"], "hello");

        let refused = client
            .post(&url)
            .bearer_auth("k")
            .json(&body(
                json!([{"role": "tool", "tool_call_id": "x", "content": "{}"}]),
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400);
        let error: Value = refused.json().await.unwrap();
        assert_eq!(error["error"]["type"], "invalid_request_error");

        let unauthorised = client
            .post(&url)
            .json(&body(json!([])))
            .send()
            .await
            .unwrap();
        assert_eq!(unauthorised.status(), 401);

        let requests = stub.requests();
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[0].header("authorization"), Some("Bearer k"));
        assert_eq!(requests[0].roles(), ["user"]);
        assert_eq!(requests[0].violation, None);
        assert_eq!(stub.violations().len(), 2);
    }
}
