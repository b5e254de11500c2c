//! The offline assistant: a deterministic language front end that needs no model. It turns
//! everyday phrasings into tool calls ([`plan`]) and the tools' results into friendly
//! confirmations ([`describe`]), so the chat works with no provider configured and as the
//! fallback when one fails.
//!
//! One job per module: [`words`] splits a message, [`dates`] reads date and time phrases,
//! [`repeat`] repeat phrases, [`marks`] priorities, tags and reminders, [`intent`] decides what
//! the message asks for (with [`action`] for changes to existing tasks and [`listing`] for list
//! requests), [`resolve`] finds the task a reference means, [`undo`] reverses the previous
//! turn, [`reply`] writes the answer and [`turn`] runs a chat turn against the tools.

pub mod action;
pub mod dates;
pub mod intent;
pub mod listing;
pub mod marks;
pub mod project;
pub mod repeat;
pub mod reply;
pub mod resolve;
pub mod turn;
pub mod undo;
pub mod words;

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod fixture;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{ChatMessage, Role, ToolCall, ToolInvocation};
use crate::project::{ProjectSummary, name_key};
use crate::task::{Task, TaskStatus};
use crate::time::format_utc;
use intent::{Change, Intent, TaskRef};
use resolve::{Prefer, Resolved, resolve};

pub use reply::describe;
pub use turn::OfflineAssistant;

/// What the assistant knows when it reads a message; everything it needs is passed in, so a
/// plan is a pure function of the message and this context (and testable with a fixed now).
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: DateTime<Utc>,
    /// How dates are read and spoken.
    pub zone: chrono_tz::Tz,
    /// The user's tasks (all statuses), to resolve references by words.
    pub tasks: &'a [Task],
    /// The user's projects, to tell "buy milk to groceries" (a project) from "talk to bob"
    /// (a title); loaded only when [`Intent::needs_projects`].
    pub projects: &'a [ProjectSummary],
    /// Ids shown by the last list answer, in order ("complete 2").
    pub last_list: &'a [Uuid],
    /// What the previous assistant turn did, for "undo" and "it".
    pub last_actions: &'a [ToolInvocation],
    /// The answer to "Which one do you mean?": the 0-based candidate to take when the message
    /// (the one that was ambiguous) matches several tasks again.
    pub choice: Option<usize>,
}

/// How a clarifying question starts; [`clarified`] recognises the answer to one by it.
pub const CLARIFY_PREFIX: &str = "Which one do you mean?";

/// When `message` picks a candidate ("1", "the second one", "number 3") right after a
/// clarifying question, the earlier ambiguous message and the 0-based choice.
pub fn clarified<'h>(message: &str, history: &'h [ChatMessage]) -> Option<(&'h str, usize)> {
    let [.., asked, question] = history else {
        return None;
    };
    if question.role != Role::Assistant
        || asked.role != Role::User
        || !question.content.starts_with(CLARIFY_PREFIX)
    {
        return None;
    }
    let words: Vec<String> = message
        .split_whitespace()
        .map(|word| {
            word.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|word| {
            !word.is_empty()
                && !matches!(
                    word.as_str(),
                    "the" | "one" | "number" | "no" | "option" | "task" | "please" | "i" | "mean"
                )
        })
        .collect();
    let [word] = words.as_slice() else {
        return None;
    };
    let ordinal = match word.as_str() {
        "first" | "1st" => 1,
        "second" | "2nd" => 2,
        "third" | "3rd" => 3,
        "fourth" | "4th" => 4,
        "fifth" | "5th" => 5,
        "last" => usize::MAX,
        other => other.parse::<usize>().ok().filter(|n| *n >= 1)?,
    };
    let shown = question
        .content
        .lines()
        .filter(|line| {
            line.split_once(". ")
                .is_some_and(|(n, _)| n.parse::<usize>().is_ok())
        })
        .count();
    let index = if ordinal == usize::MAX {
        shown.checked_sub(1)?
    } else {
        ordinal - 1
    };
    (index < shown).then_some((asked.content.as_str(), index))
}

/// What to do about a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Run these calls in order (stopping at the first failure), then describe the results
    /// with [`describe`].
    Act {
        calls: Vec<ToolCall>,
        intent: Intent,
    },
    /// Answer directly: help, chatter, a clarifying question, or what was not understood.
    Answer { text: String, kind: AnswerKind },
}

/// Why a plan answers instead of acting, so a caller can tell the cases apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerKind {
    Help,
    /// A greeting, thanks, goodbye.
    SmallTalk,
    /// Several tasks fit a reference equally well; the text lists them and asks which.
    Clarify {
        candidates: Vec<Uuid>,
    },
    /// The message was not understood; the text says what and gives an example.
    NotUnderstood,
    /// Understood, but no task fits the reference (or its number is not in the last list).
    NotFound,
    /// Understood, and nothing needs doing ("nothing to undo", "already done").
    Nothing,
}

fn answer(text: impl Into<String>, kind: AnswerKind) -> Plan {
    Plan::Answer {
        text: text.into(),
        kind,
    }
}

fn act(name: &str, arguments: Value, intent: Intent) -> Plan {
    Plan::Act {
        calls: vec![ToolCall::new(name, arguments)],
        intent,
    }
}

/// Decides what to do about `message`. Never fails; never invents a task from a message it
/// did not understand.
pub fn plan(message: &str, ctx: &Context<'_>) -> Plan {
    plan_intent(intent::parse(message, ctx.now, ctx.zone).intent, ctx)
}

/// [`plan`] for a message already read, so a caller can look at the intent first (the chat
/// turn loads the user's tasks only when [`Intent::needs_tasks`]).
pub fn plan_intent(intent: Intent, ctx: &Context<'_>) -> Plan {
    match intent {
        Intent::Help => answer(reply::HELP_TEXT, AnswerKind::Help),
        Intent::SmallTalk(talk) => answer(reply::small_talk(talk), AnswerKind::SmallTalk),
        Intent::Unknown { reply } => answer(reply, AnswerKind::NotUnderstood),
        Intent::Add(task) => {
            let mut arguments = task.arguments();
            if let Some((hint, name)) = task.in_project(|name| project_named(ctx, name)) {
                arguments["title"] = hint.title.clone().into();
                arguments["project"] = name.into();
            }
            act("add_task", arguments, Intent::Add(task))
        }
        Intent::List(request) => act("list_tasks", request.arguments(), Intent::List(request)),
        Intent::CreateProject(name) => act(
            "create_project",
            json!({ "name": name }),
            Intent::CreateProject(name.clone()),
        ),
        Intent::ListProjects => act("list_projects", json!({}), Intent::ListProjects),
        Intent::ShowProject { name, otherwise } => match project_named(ctx, &name) {
            Some(project) => {
                let request = intent::ListRequest {
                    project: Some(project),
                    ..intent::ListRequest::default()
                };
                act("list_tasks", request.arguments(), Intent::List(request))
            }
            None => plan_intent(*otherwise, ctx),
        },
        Intent::AddSubtask(choices) => {
            // The split whose parent words name a task best, as for "rename X to Y".
            let best = choices
                .iter()
                .enumerate()
                .max_by_key(|(index, (target, _))| {
                    let quality = match target {
                        TaskRef::Words(words) => resolve::best_quality(words, ctx),
                        _ => Some((u8::MAX, 100)),
                    };
                    (quality, std::cmp::Reverse(*index))
                })
                .map(|(_, choice)| choice.clone());
            let Some((target, task)) = best else {
                return answer(
                    "Which task should it go under? Try: add subtask call plumber to fix sink.",
                    AnswerKind::NotUnderstood,
                );
            };
            with_task(&target, ctx, Prefer::Open, |parent| {
                if parent.subtask_of.is_some() {
                    return answer(
                        format!(
                            "'{}' is a subtask itself, and subtasks can't have subtasks of their own. Add it to its parent instead.",
                            parent.title
                        ),
                        AnswerKind::Nothing,
                    );
                }
                let mut arguments = task.arguments();
                arguments["subtask_of"] = parent.id.to_string().into();
                act(
                    "add_task",
                    arguments,
                    Intent::AddSubtask(vec![(target.clone(), task.clone())]),
                )
            })
        }
        Intent::Undo => {
            let calls = undo::calls(ctx.last_actions);
            if calls.is_empty() {
                answer(
                    "There's nothing to undo — my last turn didn't change any task.",
                    AnswerKind::Nothing,
                )
            } else {
                Plan::Act {
                    calls,
                    intent: Intent::Undo,
                }
            }
        }
        Intent::Complete(target) => with_task(&target, ctx, Prefer::Open, |task| {
            if task.status == TaskStatus::Completed {
                answer(
                    format!("'{}' is already done.", task.title),
                    AnswerKind::Nothing,
                )
            } else {
                act(
                    "complete_task",
                    json!({ "task_id": task.id }),
                    Intent::Complete(target.clone()),
                )
            }
        }),
        Intent::Delete(target) => with_task(&target, ctx, Prefer::Open, |task| {
            act(
                "delete_task",
                json!({ "task_id": task.id }),
                Intent::Delete(target.clone()),
            )
        }),
        Intent::Update(target, change) => {
            let prefer = match change {
                Change::Status(TaskStatus::Pending) => Prefer::Completed,
                _ => Prefer::Open,
            };
            with_task(&target, ctx, prefer, |task| {
                update(&target, &change, task, ctx)
            })
        }
        Intent::Rename(choices) => {
            // The split whose target names a task best; a number or "it" is certain.
            let best = choices
                .iter()
                .enumerate()
                .max_by_key(|(index, (target, _))| {
                    let quality = match target {
                        TaskRef::Words(words) => resolve::best_quality(words, ctx),
                        _ => Some((u8::MAX, 100)),
                    };
                    (quality, std::cmp::Reverse(*index))
                })
                .map(|(_, choice)| choice.clone());
            match best {
                Some((target, title)) => {
                    let change = Change::Title(title);
                    with_task(&target, ctx, Prefer::Open, |task| {
                        update(&target, &change, task, ctx)
                    })
                }
                None => answer(
                    "What should the new name be? Try: rename buy milk to buy oat milk.",
                    AnswerKind::NotUnderstood,
                ),
            }
        }
    }
}

/// The stored name of the user's project called `name` (ignoring case), if there is one.
fn project_named(ctx: &Context<'_>, name: &str) -> Option<String> {
    let key = name_key(name);
    ctx.projects
        .iter()
        .find(|summary| name_key(&summary.project.name) == key)
        .map(|summary| summary.project.name.clone())
}

/// Resolves `target` and plans with the task, or asks which one, or says none fits.
fn with_task(
    target: &TaskRef,
    ctx: &Context<'_>,
    prefer: Prefer,
    then: impl FnOnce(&Task) -> Plan,
) -> Plan {
    match resolve(target, ctx, prefer) {
        Resolved::One(task) => then(task),
        Resolved::Nothing(text) => answer(text, AnswerKind::NotFound),
        Resolved::Several(tasks) if ctx.choice.is_some_and(|pick| pick < tasks.len()) => {
            then(tasks[ctx.choice.unwrap_or_default()])
        }
        Resolved::Several(tasks) => {
            let lines: Vec<String> = tasks
                .iter()
                .enumerate()
                .map(|(index, task)| format!("{}. {}", index + 1, reply::task_line(task, ctx)))
                .collect();
            answer(
                format!(
                    "{CLARIFY_PREFIX}\n{}\nSay its number, or say it again with more of the title, e.g. '{}'.",
                    lines.join("\n"),
                    tasks
                        .first()
                        .map(|task| task.title.as_str())
                        .unwrap_or_default()
                ),
                AnswerKind::Clarify {
                    candidates: tasks.iter().map(|task| task.id).collect(),
                },
            )
        }
    }
}

fn update(target: &TaskRef, change: &Change, task: &Task, ctx: &Context<'_>) -> Plan {
    let title = &task.title;
    let intent = Intent::Update(target.clone(), change.clone());
    let mut args = json!({ "task_id": task.id });
    match change {
        Change::Title(new) => {
            if new == title {
                return answer(
                    format!("It's already called '{title}'."),
                    AnswerKind::Nothing,
                );
            }
            args["title"] = new.clone().into();
        }
        Change::Due(when) => {
            // A new date alone keeps the task's time of day.
            let keep = task
                .due_date
                .map(|due| due.with_timezone(&ctx.zone).time())
                .filter(|_| when.time_of_day().is_none());
            let Some(due) = when.resolve_with(ctx.now, ctx.zone, keep) else {
                return answer(
                    "I couldn't work out that date. Try: move the report to friday at 10.",
                    AnswerKind::NotUnderstood,
                );
            };
            args["due_date"] = format_utc(due).into();
        }
        Change::ClearDue => {
            if task.due_date.is_none() {
                return answer(format!("'{title}' has no due date."), AnswerKind::Nothing);
            }
            args["due_date"] = Value::Null;
            // A reminder needs a due date, so it goes too.
            if task.reminder_offset_minutes.is_some() {
                args["reminder_offset_minutes"] = Value::Null;
            }
        }
        Change::Priority(priority) => {
            if task.priority == *priority {
                return answer(
                    format!("'{title}' is already {} priority.", priority.as_str()),
                    AnswerKind::Nothing,
                );
            }
            args["priority"] = priority.as_str().into();
        }
        Change::Status(status) => {
            if task.status == *status {
                let state = match status {
                    TaskStatus::Pending => "open",
                    TaskStatus::InProgress => "in progress",
                    TaskStatus::Completed => "done",
                };
                return answer(
                    format!("'{title}' is already {state}."),
                    AnswerKind::Nothing,
                );
            }
            args["status"] = status.as_str().into();
        }
    }
    act("update_task", args, intent)
}

/// The ids the newest successful `list_tasks` answer showed, in order, so "complete 2" means
/// the second line the user saw.
pub fn last_list_ids(history: &[ChatMessage]) -> Vec<Uuid> {
    history
        .iter()
        .rev()
        .filter(|message| message.role == Role::Assistant)
        .find_map(|message| {
            message
                .tool_calls
                .iter()
                .rev()
                .find(|call| call.tool_name == "list_tasks" && call.success)
                .and_then(|call| call.result.as_ref()?.as_array())
        })
        .map(|tasks| {
            tasks
                .iter()
                .filter_map(|task| task.get("id")?.as_str())
                .filter_map(|id| Uuid::parse_str(id).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The tool calls of the newest assistant turn that tried to change something, for "undo" and
/// "it". Turns that only listed are skipped, so "delete 2", "list", "undo" brings the deleted
/// task back.
pub fn last_actions(history: &[ChatMessage]) -> Vec<ToolInvocation> {
    history
        .iter()
        .rev()
        .filter(|message| message.role == Role::Assistant)
        .find(|message| {
            message
                .tool_calls
                .iter()
                .any(|call| !matches!(call.tool_name.as_str(), "list_tasks" | "list_projects"))
        })
        .map(|message| message.tool_calls.clone())
        .unwrap_or_default()
}
