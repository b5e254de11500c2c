//! One chat turn of the offline assistant against the real tools.

use async_trait::async_trait;

use super::{Context, Plan, clarified, describe, intent, last_actions, last_list_ids, plan_intent};
use crate::assistant::{Assistant, Reply, Tools, Turn};
use crate::task::{StatusFilter, TaskQuery};

/// The [`Assistant`] that needs no model: it plans with [`super::plan`], runs the calls through
/// the same tools chat, MCP and the UI use, and answers with [`describe`].
#[derive(Clone)]
pub struct OfflineAssistant {
    tools: Tools,
}

impl OfflineAssistant {
    /// An assistant acting through `tools`, which decide what each call may do.
    pub fn new(tools: Tools) -> Self {
        Self { tools }
    }
}

#[async_trait]
impl Assistant for OfflineAssistant {
    async fn respond(&self, turn: Turn<'_>) -> Reply {
        // "2" right after "Which one do you mean?" answers it: the earlier message again,
        // taking that candidate.
        let (message, choice) = match clarified(turn.message, turn.history) {
            Some((asked, index)) => (asked, Some(index)),
            None => (turn.message, None),
        };
        let intent = intent::parse(message, turn.now, turn.zone).intent;
        // All statuses ("reopen the report" needs completed tasks), and only when a task is
        // referred to: the rest of the turn is in memory, so this read is most of its cost.
        let tasks = if intent.needs_tasks() {
            let query = TaskQuery {
                status: StatusFilter::All,
                ..TaskQuery::default()
            };
            match self.tools.service().list(turn.user_id, &query).await {
                Ok(tasks) => tasks,
                Err(error) => {
                    tracing::warn!(%error, "offline assistant could not load the user's tasks");
                    return Reply {
                        message:
                            "Sorry, I can't reach your tasks right now. Please try again in a moment."
                                .to_owned(),
                        tools_invoked: Vec::new(),
                    };
                }
            }
        } else {
            Vec::new()
        };
        let projects = if intent.needs_projects() {
            match self.tools.service().projects(turn.user_id).await {
                Ok(projects) => projects,
                Err(error) => {
                    // The task is still added, as its words say.
                    tracing::warn!(%error, "offline assistant could not load the user's projects");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let last_list = last_list_ids(turn.history);
        let last_actions = last_actions(turn.history);
        let ctx = Context {
            now: turn.now,
            zone: turn.zone,
            tasks: &tasks,
            projects: &projects,
            last_list: &last_list,
            last_actions: &last_actions,
            choice,
        };
        match plan_intent(intent, &ctx) {
            Plan::Answer { text, .. } => Reply {
                message: text,
                tools_invoked: Vec::new(),
            },
            Plan::Act { calls, intent } => {
                let mut invoked = Vec::with_capacity(calls.len());
                for call in &calls {
                    let invocation = self.tools.call(turn.user_id, turn.zone, call).await;
                    let failed = !invocation.success;
                    invoked.push(invocation);
                    if failed {
                        break;
                    }
                }
                Reply {
                    message: describe(&intent, &invoked, &ctx),
                    tools_invoked: invoked,
                }
            }
        }
    }
}
