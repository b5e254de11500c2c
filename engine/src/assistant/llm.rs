//! The optional LLM assistant: an OpenAI-compatible chat-completions tool loop (Groq by
//! default) over the same [`Tools`] as every other door, behind the [`ChatModel`] port so the
//! engine never speaks HTTP itself.
//!
//! It keeps the reference's flow (system prompt, tools with `tool_choice: "auto"`, the assistant
//! message with its `tool_calls` followed by one `role: "tool"` message per call) and fixes its
//! gaps: the prompt carries the current date, time and zone, the last 20 messages are sent, the
//! loop stops after [`MAX_TOOL_ROUNDS`], malformed arguments are reported back to the model
//! instead of running the tool with `{}`, and a provider failure falls back to the offline
//! assistant instead of a 500.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::tools::{ToolCall, ToolInvocation, Tools, openai_tools};
use super::{Assistant, ChatMessage, Reply, Role, Turn};

/// How many earlier messages go to the model: enough for "and move it to Friday", few enough to
/// keep the prompt small.
pub const MAX_HISTORY: usize = 20;
/// Rounds of tool calls per turn; a model that keeps calling tools is stopped here.
pub const MAX_TOOL_ROUNDS: usize = 8;
/// Groq's OpenAI-compatible endpoint, the reference's provider.
pub const GROQ_BASE_URL: &str = "https://api.groq.com/openai/v1";
/// The reference's primary model on Groq.
pub const GROQ_PRIMARY_MODEL: &str = "llama-3.3-70b-versatile";
/// The reference's fallback model on Groq: smaller, on separate capacity.
pub const GROQ_FALLBACK_MODEL: &str = "llama-3.1-8b-instant";

/// A chat-completions request body (`POST {base}/chat/completions`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<WireMessage>,
    /// The tools in OpenAI's `{"type":"function","function":{…}}` format.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Value>,
    /// `"auto"` whenever tools are sent; absent otherwise, as the API requires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<String>,
}

/// One message of the conversation sent to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum WireMessage {
    System {
        content: String,
    },
    User {
        content: String,
    },
    Assistant {
        /// `null` in a response that only calls tools; replayed as `""`.
        #[serde(default)]
        content: Option<String>,
        #[serde(
            default,
            deserialize_with = "null_as_default",
            skip_serializing_if = "Vec::is_empty"
        )]
        tool_calls: Vec<WireToolCall>,
    },
    Tool {
        tool_call_id: String,
        content: String,
    },
}

/// A tool call as the model writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireToolCall {
    /// Threads the `role: "tool"` answer to this call; some providers omit it, see
    /// [`LlmAssistant`] for how it is filled in.
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(rename = "type", default = "function_kind")]
    pub kind: String,
    pub function: WireFunctionCall,
}

/// The function part of a tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireFunctionCall {
    pub name: String,
    /// A JSON document in a string, as the API defines it (an object some providers send
    /// instead is turned into its text).
    #[serde(default, deserialize_with = "string_or_json")]
    pub arguments: String,
}

impl WireToolCall {
    /// A `function` call with `arguments` already serialised.
    pub fn function(id: &str, name: &str, arguments: &str) -> Self {
        Self {
            id: id.to_owned(),
            kind: function_kind(),
            function: WireFunctionCall {
                name: name.to_owned(),
                arguments: arguments.to_owned(),
            },
        }
    }
}

/// A chat-completions response; fields a provider may leave out are optional and unknown
/// fields (Groq's `x_groq`, `system_fingerprint`, …) are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChatResponse {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// One answer of the model; only the first is used.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Choice {
    #[serde(default)]
    pub index: Option<u32>,
    pub message: ResponseMessage,
    /// `"tool_calls"` or `"stop"` (or `"length"`); informative only, the loop follows
    /// `message.tool_calls`.
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// The assistant message of a response.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct ResponseMessage {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tool_calls: Vec<WireToolCall>,
}

/// Token counts, logged for cost awareness.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    #[serde(default)]
    pub total_tokens: Option<u64>,
}

fn function_kind() -> String {
    "function".to_owned()
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

fn string_or_json<'de, D>(deserializer: D) -> Result<String, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => text,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// Why a completion failed. Retryable failures may go away by themselves; permanent ones need
/// a change of request or configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("the model provider did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the model provider: {0}")]
    Connection(String),
    #[error("the model provider is rate limiting (HTTP 429): {message}")]
    RateLimited {
        /// The provider's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("the model provider failed (HTTP {status}): {message}")]
    Server { status: u16, message: String },
    #[error("the model provider refused the request (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("the model provider's answer is malformed: {0}")]
    Malformed(String),
}

impl ModelError {
    /// Whether trying the same request again may succeed: timeouts, lost connections, 429 and
    /// 5xx. A 4xx other than 429 or an unreadable body will fail the same way again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ModelError::Timeout(_)
                | ModelError::Connection(_)
                | ModelError::RateLimited { .. }
                | ModelError::Server { .. }
        )
    }

    /// The error for an HTTP status the provider answered with, given its error body's message.
    pub fn from_status(status: u16, message: String, retry_after: Option<Duration>) -> Self {
        match status {
            429 => ModelError::RateLimited {
                retry_after,
                message,
            },
            500..=599 => ModelError::Server { status, message },
            _ => ModelError::Rejected { status, message },
        }
    }
}

pub use crate::ports::ChatModel;

/// The LLM assistant; see the module documentation.
pub struct LlmAssistant {
    model: Arc<dyn ChatModel>,
    tools: Tools,
    primary: String,
    fallback: Option<String>,
    offline: Arc<dyn Assistant>,
    tool_definitions: Vec<Value>,
}

/// What a finished tool loop hands back.
struct Outcome {
    text: Option<String>,
    invocations: Vec<ToolInvocation>,
    stopped: Stop,
}

enum Stop {
    /// The model answered in text.
    Answered,
    /// The model still wanted tools after [`MAX_TOOL_ROUNDS`].
    RoundCap,
    /// The provider failed after tools had run.
    ProviderFailed,
}

impl LlmAssistant {
    /// `fallback` is tried when `primary` fails; `offline` answers the turn when both do.
    pub fn new(
        model: Arc<dyn ChatModel>,
        tools: Tools,
        primary: impl Into<String>,
        fallback: Option<String>,
        offline: Arc<dyn Assistant>,
    ) -> Self {
        let tool_definitions = match openai_tools() {
            Value::Array(items) => items,
            other => vec![other],
        };
        Self {
            model,
            tools,
            primary: primary.into(),
            fallback: fallback.filter(|name| !name.trim().is_empty()),
            offline,
            tool_definitions,
        }
    }

    /// The models to try, best first.
    fn models(&self) -> Vec<&str> {
        let mut models = vec![self.primary.as_str()];
        if let Some(fallback) = self.fallback.as_deref().filter(|f| *f != self.primary) {
            models.push(fallback);
        }
        models
    }

    fn request(&self, model: &str, messages: &[WireMessage]) -> ChatRequest {
        ChatRequest {
            model: model.to_owned(),
            messages: messages.to_vec(),
            tools: self.tool_definitions.clone(),
            tool_choice: Some("auto".to_owned()),
        }
    }

    /// One completion, trying the models from `*first` on; a model that failed is skipped for
    /// the rest of the turn.
    async fn complete(
        &self,
        messages: &[WireMessage],
        first: &mut usize,
    ) -> Result<ResponseMessage, ModelError> {
        let models = self.models();
        let mut last_error = ModelError::Malformed("no model is configured".to_owned());
        while let Some(model) = models.get(*first) {
            let request = self.request(model, messages);
            let outcome = self.model.complete(&request).await.and_then(|response| {
                if let Some(usage) = response.usage {
                    tracing::debug!(
                        model,
                        prompt_tokens = usage.prompt_tokens,
                        completion_tokens = usage.completion_tokens,
                        "model answered"
                    );
                }
                response
                    .choices
                    .into_iter()
                    .next()
                    .map(|choice| choice.message)
                    .ok_or_else(|| ModelError::Malformed("the answer has no choices".to_owned()))
            });
            match outcome {
                Ok(message) => return Ok(message),
                Err(error) => {
                    tracing::warn!(model, %error, "the language model failed");
                    last_error = error;
                    *first += 1;
                }
            }
        }
        Err(last_error)
    }

    /// Runs the tool loop from the first answer on.
    async fn tool_loop(
        &self,
        turn: &Turn<'_>,
        mut messages: Vec<WireMessage>,
        mut answer: ResponseMessage,
        mut model_index: usize,
    ) -> Outcome {
        let mut invocations = Vec::new();
        let mut rounds = 0;
        loop {
            if answer.tool_calls.is_empty() {
                return Outcome {
                    text: answer.content,
                    invocations,
                    stopped: Stop::Answered,
                };
            }
            if rounds == MAX_TOOL_ROUNDS {
                tracing::warn!(rounds, "the language model kept calling tools; stopped");
                return Outcome {
                    text: None,
                    invocations,
                    stopped: Stop::RoundCap,
                };
            }
            rounds += 1;
            let mut calls = answer.tool_calls;
            for (index, call) in calls.iter_mut().enumerate() {
                // Every tool message must name a call of the assistant message before it.
                if call.id.trim().is_empty() {
                    call.id = format!("call_{rounds}_{index}");
                }
                call.kind = function_kind();
            }
            messages.push(WireMessage::Assistant {
                content: Some(answer.content.unwrap_or_default()),
                tool_calls: calls.clone(),
            });
            for call in &calls {
                let invocation = self.run(turn, call).await;
                messages.push(WireMessage::Tool {
                    tool_call_id: call.id.clone(),
                    content: invocation.result_json().to_string(),
                });
                invocations.push(invocation);
            }
            answer = match self.complete(&messages, &mut model_index).await {
                Ok(answer) => answer,
                Err(error) => {
                    tracing::warn!(%error, rounds, "the language model failed after tools ran");
                    return Outcome {
                        text: None,
                        invocations,
                        stopped: Stop::ProviderFailed,
                    };
                }
            };
        }
    }

    /// Runs one tool call for the turn's user; the model cannot choose whom it acts for.
    async fn run(&self, turn: &Turn<'_>, call: &WireToolCall) -> ToolInvocation {
        let raw = call.function.arguments.trim();
        let arguments = if raw.is_empty() {
            Ok(Value::Object(serde_json::Map::new()))
        } else {
            serde_json::from_str::<Value>(raw)
        };
        match arguments {
            Ok(arguments) => {
                let call = ToolCall::new(&call.function.name, arguments);
                self.tools.call(turn.user_id, turn.zone, &call).await
            }
            Err(error) => ToolInvocation {
                tool_name: call.function.name.clone(),
                success: false,
                result: None,
                error: Some(format!("Invalid arguments: {error}")),
            },
        }
    }
}

#[async_trait]
impl Assistant for LlmAssistant {
    async fn respond(&self, turn: Turn<'_>) -> Reply {
        let messages = conversation(&turn);
        let mut model_index = 0;
        let first = match self.complete(&messages, &mut model_index).await {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(%error, "no language model answered; the offline assistant answers");
                return self.offline.respond(turn).await;
            }
        };
        let outcome = self.tool_loop(&turn, messages, first, model_index).await;
        let text = outcome
            .text
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty());
        let message = match (outcome.stopped, text) {
            (Stop::Answered, Some(text)) => text,
            (Stop::Answered, None) if outcome.invocations.is_empty() => {
                "Sorry, I'm not sure how to help with that. Could you say it another way?"
                    .to_owned()
            }
            (Stop::Answered, None) => summarise(&outcome.invocations, turn.zone),
            (Stop::RoundCap, _) => format!(
                "{} I stopped there; tell me if there is more to do.",
                summarise(&outcome.invocations, turn.zone)
            ),
            (Stop::ProviderFailed, _) => format!(
                "{} I couldn't finish my answer just now; please check your tasks or try again.",
                summarise(&outcome.invocations, turn.zone)
            ),
        };
        Reply {
            message,
            tools_invoked: outcome.invocations,
        }
    }
}

/// The system prompt: the reference's rules (§4.4) plus what it lacked, the current date and
/// time in the user's zone and how to write due dates.
pub fn system_prompt(now: DateTime<Utc>, zone: Tz) -> String {
    let local = now.with_timezone(&zone);
    format!(
        "You are a friendly, concise task-management assistant. You can create tasks (title, \
description, priority, due date, tags, reminder, recurrence, project, parent task), list and \
filter them, complete, update and delete them, and list and create projects (named lists such \
as Groceries), using the tools you are given.\n\
Rules:\n\
- Be conversational and brief. Answer in prose; only when listing tasks use one line per task \
with its status and priority.\n\
- Confirm each action with its relevant details, such as the task's title and a humanised due \
date (\"tomorrow at 6 PM\", \"Friday 12 December\").\n\
- Understand relative dates: \"tomorrow\" is the next day, \"next Monday\" and a bare weekday \
are the coming one, \"in 3 days\" counts from today.\n\
- To act on a task the user names in words, first call list_tasks to find its id, then call \
the tool; if several tasks match, ask which one.\n\
- Ask for clarification when a request is ambiguous.\n\
- If something fails, tell the user politely what did not work; never show technical details \
such as ids, error codes or JSON.\n\
Now it is {weekday} {date}, {time} in the user's time zone {zone} (UTC{offset}). Send due dates \
and times as ISO 8601 with this offset, e.g. {example}.",
        weekday = local.format("%A"),
        date = local.format("%Y-%m-%d (%-d %B %Y)"),
        time = local.format("%H:%M"),
        zone = zone.name(),
        offset = local.format("%:z"),
        example = (local + chrono::Duration::days(1)).format("%Y-%m-%dT18:00:00%:z"),
    )
}

/// System prompt, the last [`MAX_HISTORY`] messages as text, then the new message.
pub fn conversation(turn: &Turn<'_>) -> Vec<WireMessage> {
    let mut messages = vec![WireMessage::System {
        content: system_prompt(turn.now, turn.zone),
    }];
    let start = turn.history.len().saturating_sub(MAX_HISTORY);
    messages.extend(
        turn.history[start..]
            .iter()
            .filter_map(|message| history_message(message, turn.zone)),
    );
    messages.push(WireMessage::User {
        content: turn.message.to_owned(),
    });
    messages
}

/// A stored message as plain text: stored tool runs have no call ids to thread, so an
/// assistant message that only ran tools is replayed as a summary of them.
fn history_message(message: &ChatMessage, zone: Tz) -> Option<WireMessage> {
    let content = message.content.trim();
    match message.role {
        Role::User if content.is_empty() => None,
        Role::User => Some(WireMessage::User {
            content: content.to_owned(),
        }),
        Role::Assistant if !content.is_empty() => Some(WireMessage::Assistant {
            content: Some(content.to_owned()),
            tool_calls: Vec::new(),
        }),
        Role::Assistant if message.tool_calls.is_empty() => None,
        Role::Assistant => Some(WireMessage::Assistant {
            content: Some(summarise(&message.tool_calls, zone)),
            tool_calls: Vec::new(),
        }),
    }
}

/// A short confirmation of what the tools did, for when the model gave no text.
pub fn summarise(invocations: &[ToolInvocation], zone: Tz) -> String {
    let mut sentences: Vec<String> = Vec::new();
    let mut failures = 0;
    for invocation in invocations {
        if !invocation.success {
            failures += 1;
            continue;
        }
        let data = invocation.result.as_ref().unwrap_or(&Value::Null);
        let title = data
            .get("title")
            .or_else(|| data.get("deleted_title"))
            .and_then(Value::as_str)
            .unwrap_or("the task");
        let sentence = match invocation.tool_name.as_str() {
            "add_task" => format!("Added '{title}'{}.", due_phrase(data, zone)),
            "complete_task" => format!("Completed '{title}'."),
            "update_task" => format!("Updated '{title}'{}.", due_phrase(data, zone)),
            "delete_task" => format!("Deleted '{title}'."),
            "list_tasks" => match data.as_array().map(Vec::len).unwrap_or(0) {
                0 => "I found no matching tasks.".to_owned(),
                1 => "I found 1 task.".to_owned(),
                n => format!("I found {n} tasks."),
            },
            _ => continue,
        };
        if sentences.contains(&sentence) {
            continue;
        }
        sentences.push(sentence);
    }
    let mut text = sentences.join(" ");
    if failures > 0 {
        if !text.is_empty() {
            text.push(' ');
        }
        let _ = write!(
            text,
            "{} step{} did not work.",
            if failures == 1 { "One" } else { "Some" },
            if failures == 1 { "" } else { "s" }
        );
    }
    if text.is_empty() {
        text.push_str("Done.");
    }
    text
}

/// `", due Fri 12 Dec 2026 at 18:00"` in the user's zone, or nothing.
fn due_phrase(data: &Value, zone: Tz) -> String {
    data.get("due_date")
        .and_then(Value::as_str)
        .and_then(|due| DateTime::parse_from_rfc3339(due).ok())
        .map(|due| {
            format!(
                ", due {}",
                due.with_timezone(&zone).format("%a %-d %b %Y at %H:%M")
            )
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
