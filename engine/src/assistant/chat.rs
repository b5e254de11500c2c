//! One chat turn as the reference ran it, fixed: read the last 20 messages, store the user's,
//! let the assistant answer (feeding it that history), store the answer with its tool calls.

use std::sync::Arc;

use chrono_tz::Tz;
use uuid::Uuid;

use super::{Assistant, ChatMessage, Reply, Role, Turn};
use crate::error::EngineError;
use crate::ports::ConversationStore;
use crate::time;

/// How many earlier messages an assistant sees (CONTRACT.md §2.9).
pub const HISTORY_LIMIT: u32 = 20;
/// The most messages `GET /api/{user_id}/chat` returns.
pub const HISTORY_PAGE: u32 = 500;
/// Longest accepted chat message, in characters (reference §4.1).
pub const MESSAGE_MAX: usize = 4000;

/// A finished turn.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatOutcome {
    pub conversation_id: Uuid,
    pub reply: Reply,
}

/// Runs chat turns and keeps their history.
#[derive(Clone)]
pub struct ChatService {
    store: Arc<dyn ConversationStore>,
    assistant: Arc<dyn Assistant>,
}

impl ChatService {
    pub fn new(store: Arc<dyn ConversationStore>, assistant: Arc<dyn Assistant>) -> Self {
        Self { store, assistant }
    }

    /// Answers `message` for `user_id`; the tools run as that user only.
    pub async fn send(
        &self,
        user_id: &str,
        zone: Tz,
        message: &str,
    ) -> Result<ChatOutcome, EngineError> {
        let (_, history) = self.store.recent_messages(user_id, HISTORY_LIMIT).await?;
        let said = ChatMessage {
            id: time::new_id(),
            role: Role::User,
            content: message.to_owned(),
            tool_calls: Vec::new(),
            created_at: time::now(),
        };
        let conversation_id = self.store.append_message(user_id, said).await?;
        let started = std::time::Instant::now();
        let reply = self
            .assistant
            .respond(Turn {
                user_id,
                zone,
                now: time::now(),
                message,
                history: &history,
            })
            .await;
        metrics::histogram!("taskstream_chat_turn_seconds").record(started.elapsed().as_secs_f64());
        for invocation in &reply.tools_invoked {
            let outcome = if invocation.success {
                "success"
            } else {
                "error"
            };
            metrics::counter!("taskstream_chat_tool_calls_total",
                "tool" => invocation.tool_name.clone(), "outcome" => outcome)
            .increment(1);
        }
        let answer = ChatMessage {
            id: time::new_id(),
            role: Role::Assistant,
            content: reply.message.clone(),
            tool_calls: reply.tools_invoked.clone(),
            created_at: time::now(),
        };
        self.store.append_message(user_id, answer).await?;
        Ok(ChatOutcome {
            conversation_id,
            reply,
        })
    }

    /// The conversation so far (its newest [`HISTORY_PAGE`] messages), oldest first.
    pub async fn history(
        &self,
        user_id: &str,
    ) -> Result<(Option<Uuid>, Vec<ChatMessage>), EngineError> {
        self.store.recent_messages(user_id, HISTORY_PAGE).await
    }

    /// Forgets the conversation; returns how many messages went.
    pub async fn clear(&self, user_id: &str) -> Result<u64, EngineError> {
        self.store.clear_conversation(user_id).await
    }
}
