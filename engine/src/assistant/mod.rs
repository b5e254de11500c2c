//! The chat assistant: one tool layer shared by chat, MCP and the UI, an offline language front
//! end that needs no model, and an optional LLM tool loop behind the [`ChatModel`] port.

pub mod chat;
pub mod llm;
pub mod offline;
pub mod tools;

#[cfg(test)]
mod tool_tests;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use chat::{ChatOutcome, ChatService};
pub use llm::{ChatModel, LlmAssistant};
pub use tools::{TOOL_SPECS, ToolCall, ToolInvocation, ToolSpec, Tools};

/// Who said a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }
}

/// One stored chat message; the assistant's carry the tools it ran, which is what lets a later
/// turn say "undo" or "complete 2".
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub id: uuid::Uuid,
    pub role: Role,
    pub content: String,
    pub tool_calls: Vec<ToolInvocation>,
    pub created_at: DateTime<Utc>,
}

/// Everything an assistant needs to answer one message.
#[derive(Debug, Clone, Copy)]
pub struct Turn<'a> {
    /// The authenticated user; tools act for this user only, whatever a model says.
    pub user_id: &'a str,
    /// How dates are read and spoken ("tomorrow at 9" is 9 in this zone).
    pub zone: chrono_tz::Tz,
    pub now: DateTime<Utc>,
    pub message: &'a str,
    /// Earlier messages, oldest first, at most the last 20.
    pub history: &'a [ChatMessage],
}

/// What an assistant answers: the text and the tools it ran, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reply {
    pub message: String,
    pub tools_invoked: Vec<ToolInvocation>,
}

/// Turns a user's message into task operations and an answer. Never fails: a broken provider
/// falls back to the offline assistant, and what was not understood is said in the reply.
#[async_trait]
pub trait Assistant: Send + Sync + 'static {
    async fn respond(&self, turn: Turn<'_>) -> Reply;
}
