//! The assistant's sentences: confirmations built from what the tools actually returned (not
//! from what was asked), dates spelled out with the weekday in the user's zone ("Monday 1
//! December at 09:00"), numbered list lines that the next turn can refer to ("complete 2"), and
//! failures explained without technical detail.

use chrono::{DateTime, Datelike, Utc};
use serde_json::Value;

use super::super::ToolInvocation;
use super::Context;
use super::intent::{Change, Intent, ListRequest, SmallTalk};
use crate::task::{Task, TaskStatus};
use crate::time::parse_datetime;

/// "Monday 1 December at 09:00", with the year when it is not the current one.
pub fn spoken(instant: DateTime<Utc>, ctx: &Context<'_>) -> String {
    let local = instant.with_timezone(&ctx.zone);
    let this_year = ctx.now.with_timezone(&ctx.zone).year();
    let date = if local.year() == this_year {
        local.format("%A %-d %B").to_string()
    } else {
        local.format("%A %-d %B %Y").to_string()
    };
    format!("{date} at {}", local.format("%H:%M"))
}

fn field<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

fn due_of(value: &Value) -> Option<DateTime<Utc>> {
    field(value, "due_date").and_then(parse_datetime)
}

fn title_of(value: &Value) -> &str {
    field(value, "title").unwrap_or("the task")
}

/// "30 minutes", "1 hour", "2 days".
pub fn lead_time(minutes: i64) -> String {
    let (amount, unit) = if minutes % 10_080 == 0 {
        (minutes / 10_080, "week")
    } else if minutes % 1_440 == 0 {
        (minutes / 1_440, "day")
    } else if minutes % 60 == 0 {
        (minutes / 60, "hour")
    } else {
        (minutes, "minute")
    };
    if amount == 1 {
        format!("1 {unit}")
    } else {
        format!("{amount} {unit}s")
    }
}

fn day_name(code: &str) -> Option<&'static str> {
    Some(match code {
        "MO" => "Monday",
        "TU" => "Tuesday",
        "WE" => "Wednesday",
        "TH" => "Thursday",
        "FR" => "Friday",
        "SA" => "Saturday",
        "SU" => "Sunday",
        _ => return None,
    })
}

fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// How a recurrence rule reads: "daily", "every 3 days", "every weekday", "every Monday and
/// Thursday", "every 2 weeks".
pub fn repeat_words(rule: &str) -> String {
    match rule {
        "DAILY" => return "daily".to_owned(),
        "WEEKLY" => return "weekly".to_owned(),
        "MONTHLY" => return "monthly".to_owned(),
        "YEARLY" => return "yearly".to_owned(),
        _ => {}
    }
    if let Some(days) = rule.strip_prefix("INTERVAL:") {
        return format!("every {days} days");
    }
    let Some(body) = rule.strip_prefix("RRULE:") else {
        return "on a custom schedule".to_owned();
    };
    let mut freq = None;
    let mut interval = 1;
    let mut by_day: Vec<&str> = Vec::new();
    let mut other = false;
    for part in body.split(';') {
        match part.split_once('=') {
            Some(("FREQ", value)) => freq = Some(value),
            Some(("INTERVAL", value)) => interval = value.parse().unwrap_or(0),
            Some(("BYDAY", value)) => by_day = value.split(',').collect(),
            _ => other = true,
        }
    }
    if other || interval == 0 {
        return "on a custom schedule".to_owned();
    }
    let unit = match freq {
        Some("DAILY") => "day",
        Some("WEEKLY") => "week",
        Some("MONTHLY") => "month",
        Some("YEARLY") => "year",
        _ => return "on a custom schedule".to_owned(),
    };
    let every = if interval == 1 {
        format!("every {unit}")
    } else {
        format!("every {interval} {unit}s")
    };
    if by_day.is_empty() {
        return every;
    }
    let Some(names) = by_day
        .iter()
        .map(|code| day_name(code).map(str::to_owned))
        .collect::<Option<Vec<String>>>()
    else {
        return "on a custom schedule".to_owned();
    };
    let days = match by_day.as_slice() {
        ["MO", "TU", "WE", "TH", "FR"] => "weekday".to_owned(),
        ["SA", "SU"] => "weekend".to_owned(),
        _ => and_list(&names),
    };
    if interval == 1 && freq == Some("WEEKLY") {
        format!("every {days}")
    } else {
        format!("{every} on {}", and_list(&names))
    }
}

fn status_words(status: &str) -> &'static str {
    match status {
        "completed" => "done",
        "in_progress" => "in progress",
        _ => "to do",
    }
}

/// One line of a list: "Buy milk — to do, high priority, due Saturday 28 November at 17:00".
fn line(task: &Value, ctx: &Context<'_>) -> String {
    let mut parts = vec![
        status_words(field(task, "status").unwrap_or_default()).to_owned(),
        format!("{} priority", field(task, "priority").unwrap_or("medium")),
    ];
    if let Some(due) = due_of(task) {
        parts.push(format!("due {}", spoken(due, ctx)));
    }
    if let Some(rule) = field(task, "recurrence_rule") {
        parts.push(format!("repeats {}", repeat_words(rule)));
    }
    format!("{} — {}", title_of(task), parts.join(", "))
}

/// The same line for a stored task (clarifying questions).
pub fn task_line(task: &Task, ctx: &Context<'_>) -> String {
    line(&crate::assistant::tools::task_summary(task), ctx)
}

/// The confirmation for what the tools did.
pub fn describe(intent: &Intent, invocations: &[ToolInvocation], ctx: &Context<'_>) -> String {
    if let Some(failed) = invocations
        .iter()
        .position(|invocation| !invocation.success)
    {
        return failure(intent, &invocations[failed], failed > 0);
    }
    let results: Vec<&Value> = invocations
        .iter()
        .filter_map(|invocation| invocation.result.as_ref())
        .collect();
    let Some(first) = results.first() else {
        return "Done.".to_owned();
    };
    match intent {
        Intent::Add(add) => {
            let mut text = added(first, ctx);
            if let Some(project) = project_of(first, ctx) {
                text = format!("{} (in {project}).", text.trim_end_matches('.'));
            }
            if add.reminder_needs_date {
                text.push_str(
                    " It has no date, so I couldn't set a reminder — tell me when, e.g. 'remind me to call mom tomorrow at 5pm'.",
                );
            }
            text
        }
        Intent::List(request) => listed(request, first, ctx),
        Intent::Complete(_) => completed(first, ctx),
        Intent::Delete(_) => format!(
            "Deleted '{}'. Say 'undo' to bring it back.",
            field(first, "deleted_title").unwrap_or("the task")
        ),
        Intent::Update(_, change) => updated(change, first, ctx),
        Intent::Undo => undone(invocations),
        Intent::AddSubtask(_) => {
            let parent = field(first, "subtask_of")
                .and_then(|id| ctx.tasks.iter().find(|task| task.id.to_string() == id))
                .map(|task| task.title.as_str())
                .unwrap_or("its parent");
            let text = added(first, ctx);
            format!("{} as a subtask of '{parent}'.", text.trim_end_matches('.'))
        }
        Intent::CreateProject(_) => {
            let name = field(first, "name").unwrap_or("the project");
            format!(
                "Created the project '{name}'. Add tasks to it with e.g. 'add buy seeds to {name}', and see it with 'show {name}'."
            )
        }
        Intent::ListProjects => projects_listed(first),
        _ => "Done.".to_owned(),
    }
}

/// The name of the project a task summary is in, when the context knows it.
fn project_of<'c>(task: &Value, ctx: &Context<'c>) -> Option<&'c str> {
    let id = field(task, "project_id")?;
    ctx.projects
        .iter()
        .find(|summary| summary.project.id.to_string() == id)
        .map(|summary| summary.project.name.as_str())
}

fn projects_listed(result: &Value) -> String {
    let projects = result.as_array().map(Vec::as_slice).unwrap_or_default();
    if projects.is_empty() {
        return "You have no projects yet. Try: create a project Groceries.".to_owned();
    }
    let lines: Vec<String> = projects
        .iter()
        .enumerate()
        .map(|(index, project)| {
            let open = project["open_task_count"].as_u64().unwrap_or(0);
            let all = project["task_count"].as_u64().unwrap_or(0);
            format!(
                "{}. {} — {open} open of {all}",
                index + 1,
                field(project, "name").unwrap_or("")
            )
        })
        .collect();
    format!(
        "Your projects ({}):\n{}\nSay e.g. 'show {}' or 'add buy milk to {}'.",
        projects.len(),
        lines.join("\n"),
        field(&projects[0], "name").unwrap_or(""),
        field(&projects[0], "name").unwrap_or("")
    )
}

fn added(task: &Value, ctx: &Context<'_>) -> String {
    let mut parts = vec![format!("Added '{}'", title_of(task))];
    if let Some(due) = due_of(task) {
        parts.push(format!("due {}", spoken(due, ctx)));
    }
    if let Some(rule) = field(task, "recurrence_rule") {
        parts.push(format!("repeats {}", repeat_words(rule)));
    }
    match field(task, "priority") {
        Some("high") => parts.push("high priority".to_owned()),
        Some("low") => parts.push("low priority".to_owned()),
        _ => {}
    }
    if let Some(tags) = task.get("tags").and_then(Value::as_array)
        && !tags.is_empty()
    {
        let tags: Vec<String> = tags
            .iter()
            .filter_map(Value::as_str)
            .map(|tag| format!("#{tag}"))
            .collect();
        parts.push(format!("tagged {}", tags.join(" ")));
    }
    if let Some(minutes) = task.get("reminder_offset_minutes").and_then(Value::as_i64) {
        let at = field(task, "remind_at")
            .and_then(parse_datetime)
            .map(|at| format!(" (at {})", at.with_timezone(&ctx.zone).format("%H:%M")))
            .unwrap_or_default();
        parts.push(format!("reminder {} before{at}", lead_time(minutes)));
    }
    format!("{}.", parts.join(", "))
}

fn heading(request: &ListRequest) -> String {
    let mut kind = Vec::new();
    if let Some(status) = request.status {
        kind.push(match status {
            TaskStatus::Completed => "completed",
            TaskStatus::Pending => "open",
            TaskStatus::InProgress => "in-progress",
        });
    }
    let priority = request.priority.map(|p| format!("{} priority", p.as_str()));
    if let Some(priority) = &priority {
        kind.push(priority);
    }
    if request.is_recurring == Some(true) {
        kind.push("recurring");
    }
    if request.is_recurring == Some(false) {
        kind.push("one-off");
    }
    let mut text = if kind.is_empty() {
        "tasks".to_owned()
    } else {
        format!("{} tasks", kind.join(" "))
    };
    if !request.tags.is_empty() {
        let tags: Vec<String> = request.tags.iter().map(|tag| format!("#{tag}")).collect();
        text.push_str(&format!(" tagged {}", tags.join(" ")));
    }
    if let Some(search) = &request.search {
        text.push_str(&format!(" matching \"{search}\""));
    }
    if request.overdue {
        text = format!("overdue {text}");
    }
    if let Some(window) = &request.window {
        text.push_str(&format!(" due {window}"));
    }
    if let Some(project) = &request.project {
        text.push_str(&format!(" in {project}"));
    }
    text
}

fn listed(request: &ListRequest, result: &Value, ctx: &Context<'_>) -> String {
    let tasks = result.as_array().map(Vec::as_slice).unwrap_or_default();
    let ignored = if request.ignored.is_empty() {
        String::new()
    } else {
        format!(
            " (I didn't understand \"{}\", so I left it out.)",
            request.ignored.join(" ")
        )
    };
    if tasks.is_empty() {
        let text = if !request.is_filtered() {
            "You have no tasks yet. Try: add call mom tomorrow at 5pm.".to_owned()
        } else {
            format!("You have no {}.", heading(request))
        };
        return format!("{text}{ignored}");
    }
    let title_of_id = |id: &str| {
        tasks
            .iter()
            .find(|task| field(task, "id") == Some(id))
            .map(title_of)
    };
    let lines: Vec<String> = tasks
        .iter()
        .enumerate()
        .map(|(index, task)| {
            let under = field(task, "subtask_of")
                .and_then(title_of_id)
                .map(|parent| format!(" (subtask of '{parent}')"))
                .unwrap_or_default();
            format!("{}. {}{under}", index + 1, line(task, ctx))
        })
        .collect();
    let count = if tasks.len() == 1 {
        "1 task".to_owned()
    } else {
        format!("{} tasks", tasks.len())
    };
    let what = if request.is_filtered() || request.sort.is_some() {
        format!("Your {} ({count}):", heading(request))
    } else {
        format!("Your tasks ({count}):")
    };
    format!(
        "{what}{ignored}\n{}\nSay e.g. 'complete 1' or 'move 2 to friday'.",
        lines.join("\n")
    )
}

fn completed(task: &Value, ctx: &Context<'_>) -> String {
    let mut text = format!("Marked '{}' as done.", title_of(task));
    if let Some(next) = task.get("next_task").filter(|next| !next.is_null()) {
        match due_of(next) {
            Some(due) => text.push_str(&format!(" The next one is due {}.", spoken(due, ctx))),
            None => text.push_str(" I've added the next one."),
        }
    }
    text
}

fn updated(change: &Change, task: &Value, ctx: &Context<'_>) -> String {
    let title = title_of(task);
    match change {
        Change::Title(_) => {
            let old = task
                .get("previous")
                .and_then(|previous| field(previous, "title"))
                .unwrap_or("the task");
            format!("Renamed '{old}' to '{title}'.")
        }
        Change::Due(_) | Change::ClearDue => match due_of(task) {
            Some(due) => format!("Moved '{title}' to {}.", spoken(due, ctx)),
            None => format!("Removed the due date from '{title}'."),
        },
        Change::Priority(_) => format!(
            "'{title}' is now {} priority.",
            field(task, "priority").unwrap_or("medium")
        ),
        Change::Status(_) => match field(task, "status") {
            Some("in_progress") => format!("Started '{title}' — it's in progress now."),
            Some("completed") => format!("Marked '{title}' as done."),
            _ => format!("'{title}' is open again."),
        },
    }
}

fn undone(invocations: &[ToolInvocation]) -> String {
    let steps: Vec<String> = invocations
        .iter()
        .filter_map(|invocation| {
            let result = invocation.result.as_ref()?;
            Some(match invocation.tool_name.as_str() {
                "delete_task" => format!(
                    "removed '{}'",
                    field(result, "deleted_title").unwrap_or("the task")
                ),
                "add_task" => format!("brought back '{}'", title_of(result)),
                "update_task" => {
                    let reopened = result
                        .get("previous")
                        .and_then(|previous| field(previous, "status"))
                        == Some("completed");
                    if reopened {
                        format!("reopened '{}'", title_of(result))
                    } else {
                        format!("put '{}' back as it was", title_of(result))
                    }
                }
                _ => return None,
            })
        })
        .collect();
    if steps.is_empty() {
        return "Undone.".to_owned();
    }
    format!("Undone: {}.", and_list(&steps))
}

/// A failed call, in plain words.
fn failure(intent: &Intent, invocation: &ToolInvocation, partly: bool) -> String {
    let error = invocation.error.as_deref().unwrap_or_default();
    let reason = if error.starts_with("Task not found") || error.contains("don't have access") {
        "I couldn't find that task any more — it may have been deleted. Say 'list' to see your tasks."
    } else if error.starts_with("Title") && error.contains("characters") {
        "that title is too long (255 characters at most)."
    } else if error.starts_with("Title") {
        "the task needs a title."
    } else if error.contains("Description") {
        "the description is too long."
    } else if error.contains("recurrence") || error.contains("RRULE") {
        "I couldn't use that repeat rule. Try: every day, every 2 weeks or every monday."
    } else if error.contains("eminder") {
        "a reminder needs a due date. Try: remind me to call mom tomorrow at 5pm."
    } else if error.contains("due_date") || error.contains("date") {
        "I couldn't use that date. Try: tomorrow at 5pm, next friday or Dec 24."
    } else if error.contains("project") || error.contains("ubtask") || error.contains("Parent") {
        // The project rules' own sentences are already plain words.
        error
    } else if error.to_lowercase().contains("tag") {
        "tags must be 1–50 characters, and at most 20 per task."
    } else {
        "something went wrong on my side. Please try again in a moment."
    };
    let what = match intent {
        Intent::Add(_) => "add that task",
        Intent::List(_) => "show your tasks",
        Intent::Complete(_) => "complete that task",
        Intent::Delete(_) => "delete that task",
        Intent::Update(_, _) => "change that task",
        Intent::Undo => "undo that",
        Intent::AddSubtask(_) => "add that subtask",
        Intent::CreateProject(_) => "create that project",
        Intent::ListProjects => "show your projects",
        _ => "do that",
    };
    let partly = if partly {
        " (part of it was done already)"
    } else {
        ""
    };
    if reason.starts_with('I') {
        format!("Sorry, I couldn't {what}{partly}. {reason}")
    } else {
        format!("Sorry, I couldn't {what}{partly}: {reason}")
    }
}

/// What the assistant can do, with examples.
pub const HELP_TEXT: &str = "Here's what I can do — just type it:\n\
- add call mom tomorrow at 5pm #family !high\n\
- remind me to pay rent every month on the 1st at 9\n\
- water the plants every 3 days, remind me 30 minutes before\n\
- what's due this week · what's overdue · show high priority tasks · search groceries\n\
- create a project Groceries · add buy milk to groceries · show my groceries list · show my projects\n\
- add subtask call plumber to fix sink\n\
- complete 2 · delete buy milk · start the report\n\
- rename 1 to buy oat milk · move the report to friday at 10 · make 3 low priority\n\
- undo";

/// The answer to chatter.
pub fn small_talk(talk: SmallTalk) -> &'static str {
    match talk {
        SmallTalk::Greeting => {
            "Hello! What can I do for you? For example: 'add call mom tomorrow at 5pm' or 'what's due this week'."
        }
        SmallTalk::Thanks => "You're welcome!",
        SmallTalk::Okay => "Okay. Say 'help' if you'd like some ideas.",
        SmallTalk::Bye => "Bye! Your tasks are safe with me.",
    }
}
