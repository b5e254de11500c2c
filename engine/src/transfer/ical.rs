//! Tasks as iCalendar VTODOs (RFC 5545), both ways, and the body of the per-user calendar
//! feed.
//!
//! | task | VTODO |
//! | --- | --- |
//! | id | `UID` |
//! | title, description | `SUMMARY`, `DESCRIPTION` |
//! | due date | `DUE` (UTC) |
//! | status | `STATUS`: `NEEDS-ACTION`, `IN-PROCESS`, `COMPLETED` (with `COMPLETED`) |
//! | priority | `PRIORITY`: high 1, medium 5, low 9 (1–4 read as high, 5 and 0 as medium, 6–9 low) |
//! | tags | `CATEGORIES` |
//! | recurrence | `RRULE` (`DAILY` is `FREQ=DAILY`, `INTERVAL:3` is `FREQ=DAILY;INTERVAL=3`, ...) |
//! | reminders | `VALARM`s: `TRIGGER:-PT60M` before the due date, `TRIGGER;VALUE=DATE-TIME:…` at a time |
//!
//! | subtask | `RELATED-TO;RELTYPE=PARENT:<parent's UID>` |
//! | project | `X-TASKSTREAM-PROJECT:<name>` |
//!
//! What RFC 5545 has no property for travels as `X-TASKSTREAM-*` properties (the rule as
//! written, what the next occurrence counts from and when it is made, the time zone, the
//! series, the project), so taskstream's own files import without loss; other calendars ignore
//! them. The project is not written as a `CATEGORIES` value, which would come back as a tag.
//! On import, `RELATED-TO` without `RELTYPE` is a parent too (RFC 5545's default).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::ics::{
    Component, Property, content_line, duration_minutes, escape, instant, read as read_ics,
    unescape, utc_stamp,
};
use super::{FileError, FileProject, ParentRef, Parsed, Record, default_time};
use crate::project::Project;
use crate::recurrence::Recurrence;
use crate::reminder::ReminderSpec;
use crate::task::{Priority, Task, TaskStatus};

/// The `PRODID` of what taskstream writes.
pub const PRODID: &str = "-//taskstream//taskstream//EN";

fn priority_number(priority: Priority) -> u8 {
    match priority {
        Priority::High => 1,
        Priority::Medium => 5,
        Priority::Low => 9,
    }
}

fn priority_of(number: &str) -> Option<Priority> {
    match number.trim().parse::<u8>().ok()? {
        1..=4 => Some(Priority::High),
        0 | 5 => Some(Priority::Medium),
        6..=9 => Some(Priority::Low),
        _ => None,
    }
}

/// The RRULE value of a rule (without the `RRULE:` prefix).
fn rrule_of(rule: &Recurrence) -> String {
    match rule {
        Recurrence::Daily => "FREQ=DAILY".to_owned(),
        Recurrence::Weekly => "FREQ=WEEKLY".to_owned(),
        Recurrence::Monthly => "FREQ=MONTHLY".to_owned(),
        Recurrence::Yearly => "FREQ=YEARLY".to_owned(),
        Recurrence::IntervalDays(days) => format!("FREQ=DAILY;INTERVAL={days}"),
        Recurrence::RRule(body) => body.clone(),
    }
}

fn alarm(trigger: &str, title: &str) -> String {
    let mut out = content_line("BEGIN", "VALARM");
    out.push_str(&content_line("ACTION", "DISPLAY"));
    out.push_str(&content_line("DESCRIPTION", &escape(title)));
    out.push_str(trigger);
    out.push_str(&content_line("END", "VALARM"));
    out
}

/// One VTODO.
pub fn vtodo(task: &Task, now: DateTime<Utc>) -> String {
    vtodo_in(task, None, now)
}

/// A VTODO with the name of the project the task is in.
pub fn vtodo_in(task: &Task, project: Option<&str>, now: DateTime<Utc>) -> String {
    let mut out = content_line("BEGIN", "VTODO");
    out.push_str(&content_line("UID", &task.id.to_string()));
    out.push_str(&content_line("DTSTAMP", &utc_stamp(now)));
    out.push_str(&content_line("CREATED", &utc_stamp(task.created_at)));
    out.push_str(&content_line("LAST-MODIFIED", &utc_stamp(task.updated_at)));
    out.push_str(&content_line("SUMMARY", &escape(&task.title)));
    if let Some(description) = &task.description {
        out.push_str(&content_line("DESCRIPTION", &escape(description)));
    }
    if let Some(due) = task.due_date {
        out.push_str(&content_line("DUE", &utc_stamp(due)));
    }
    let status = match task.status {
        TaskStatus::Pending => "NEEDS-ACTION",
        TaskStatus::InProgress => "IN-PROCESS",
        TaskStatus::Completed => "COMPLETED",
    };
    out.push_str(&content_line("STATUS", status));
    if task.status == TaskStatus::Completed {
        out.push_str(&content_line("COMPLETED", &utc_stamp(task.updated_at)));
    }
    out.push_str(&content_line(
        "PRIORITY",
        &priority_number(task.priority).to_string(),
    ));
    if !task.tags.is_empty() {
        let tags: Vec<String> = task.tags.iter().map(|tag| escape(tag)).collect();
        out.push_str(&content_line("CATEGORIES", &tags.join(",")));
    }
    if let Some(rule) = task.recurrence_rule.as_ref().filter(|_| task.is_recurring) {
        out.push_str(&content_line("RRULE", &rrule_of(rule)));
    }
    if let Some(rule) = &task.recurrence_rule {
        out.push_str(&content_line(
            "X-TASKSTREAM-RULE",
            &escape(&rule.to_string()),
        ));
        if !task.is_recurring {
            out.push_str(&content_line("X-TASKSTREAM-RECURRING", "FALSE"));
        }
    }
    out.push_str(&content_line(
        "X-TASKSTREAM-RECURRENCE-FROM",
        task.recurrence_from.as_str(),
    ));
    out.push_str(&content_line(
        "X-TASKSTREAM-RECURRENCE-TRIGGER",
        task.recurrence_trigger.as_str(),
    ));
    out.push_str(&content_line("X-TASKSTREAM-TZ", task.time_zone.name()));
    if let Some(anchor) = task.series_anchor {
        out.push_str(&content_line(
            "X-TASKSTREAM-SERIES-ANCHOR",
            &utc_stamp(anchor),
        ));
    }
    if task.occurrence_index > 0 {
        out.push_str(&content_line(
            "X-TASKSTREAM-OCCURRENCE",
            &task.occurrence_index.to_string(),
        ));
    }
    if let Some(parent) = task.parent_task_id {
        out.push_str(&content_line(
            "RELATED-TO;RELTYPE=X-TASKSTREAM-PREVIOUS",
            &parent.to_string(),
        ));
    }
    if let Some(parent) = task.subtask_of {
        out.push_str(&content_line(
            "RELATED-TO;RELTYPE=PARENT",
            &parent.to_string(),
        ));
    }
    if let Some(project) = project {
        out.push_str(&content_line("X-TASKSTREAM-PROJECT", &escape(project)));
    }
    if let Some(minutes) = task.reminder_offset_minutes {
        out.push_str(&alarm(
            &content_line("TRIGGER", &format!("-PT{minutes}M")),
            &task.title,
        ));
    }
    for spec in &task.reminders {
        let trigger = match spec {
            ReminderSpec::Offset { offset_minutes } => content_line(
                "TRIGGER;X-TASKSTREAM-EXTRA=TRUE",
                &format!("-PT{offset_minutes}M"),
            ),
            ReminderSpec::At { at } => content_line("TRIGGER;VALUE=DATE-TIME", &utc_stamp(*at)),
        };
        out.push_str(&alarm(&trigger, &task.title));
    }
    out.push_str(&content_line("END", "VTODO"));
    out
}

/// A calendar of `tasks`.
pub fn write(tasks: &[Task], now: DateTime<Utc>) -> String {
    write_named(tasks, now, None)
}

/// A calendar of `tasks` with the names of the `projects` they are in.
pub fn write_with_projects(tasks: &[Task], projects: &[Project], now: DateTime<Utc>) -> String {
    calendar(tasks, projects, now, None)
}

/// A calendar of `tasks` with a display name (the feed's).
pub fn write_named(tasks: &[Task], now: DateTime<Utc>, name: Option<&str>) -> String {
    calendar(tasks, &[], now, name)
}

fn calendar(
    tasks: &[Task],
    projects: &[Project],
    now: DateTime<Utc>,
    name: Option<&str>,
) -> String {
    let mut out = content_line("BEGIN", "VCALENDAR");
    out.push_str(&content_line("VERSION", "2.0"));
    out.push_str(&content_line("PRODID", PRODID));
    out.push_str(&content_line("CALSCALE", "GREGORIAN"));
    if let Some(name) = name {
        out.push_str(&content_line("X-WR-CALNAME", &escape(name)));
    }
    for task in tasks {
        let project = super::project_name(projects, task.project_id);
        out.push_str(&vtodo_in(task, project, now));
    }
    out.push_str(&content_line("END", "VCALENDAR"));
    out
}

fn at(component: &Component) -> String {
    format!("line {}", component.line)
}

fn text(component: &Component, name: &str) -> Option<String> {
    component
        .first(name)
        .map(|property| unescape(&property.value))
}

fn time(property: &Property, zone: Tz) -> Result<DateTime<Utc>, FileError> {
    instant(property, zone, default_time())
        .map_err(|message| FileError::new(format!("line {}", property.line), message))
}

/// The rule to store: taskstream's own when it wrote one, else the RRULE as written (the
/// simple presets when it is exactly one of them).
fn rule_of(component: &Component) -> Option<String> {
    if let Some(own) = text(component, "X-TASKSTREAM-RULE") {
        return Some(own);
    }
    let rrule = component.first("RRULE")?.value.trim().to_ascii_uppercase();
    Some(match rrule.as_str() {
        "FREQ=DAILY" => "DAILY".to_owned(),
        "FREQ=WEEKLY" => "WEEKLY".to_owned(),
        "FREQ=YEARLY" => "YEARLY".to_owned(),
        other => match other
            .strip_prefix("FREQ=DAILY;INTERVAL=")
            .filter(|days| days.chars().all(|c| c.is_ascii_digit()))
        {
            Some(days) => format!("INTERVAL:{days}"),
            None => format!("RRULE:{other}"),
        },
    })
}

fn read_todo(todo: &Component, zone: Tz, warnings: &mut Vec<String>) -> Result<Record, FileError> {
    let here = at(todo);
    let mut body = Map::new();
    body.insert(
        "title".into(),
        json!(text(todo, "SUMMARY").unwrap_or_default()),
    );
    if let Some(description) = text(todo, "DESCRIPTION") {
        body.insert("description".into(), json!(description));
    }
    let due = match todo.first("DUE") {
        Some(property) => Some(time(property, zone)?),
        None => None,
    };
    if let Some(due) = due {
        body.insert("due_date".into(), json!(crate::time::format_utc(due)));
    }
    let status = match todo
        .first("STATUS")
        .map(|property| property.value.trim().to_ascii_uppercase())
        .as_deref()
    {
        Some("COMPLETED") => "completed",
        Some("IN-PROCESS") => "in_progress",
        Some("CANCELLED") => {
            warnings.push(format!(
                "{here}: a cancelled to-do was imported as completed"
            ));
            "completed"
        }
        _ if todo.first("COMPLETED").is_some() => "completed",
        _ => "pending",
    };
    body.insert("status".into(), json!(status));
    if let Some(property) = todo.first("PRIORITY") {
        let priority = priority_of(&property.value).ok_or_else(|| {
            FileError::new(
                format!("line {}", property.line),
                format!("PRIORITY {:?} is not 0-9", property.value),
            )
        })?;
        body.insert("priority".into(), json!(priority.as_str()));
    }
    let mut tags: Vec<String> = Vec::new();
    for property in todo.all("CATEGORIES") {
        // Commas separate categories; an escaped comma belongs to one.
        let mut current = String::new();
        let mut chars = property.value.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(next) = chars.next() {
                        current.push('\\');
                        current.push(next);
                    }
                }
                ',' => tags.push(unescape(&std::mem::take(&mut current))),
                other => current.push(other),
            }
        }
        tags.push(unescape(&current));
    }
    tags.retain(|tag| !tag.trim().is_empty());
    body.insert("tags".into(), json!(tags));
    if let Some(rule) = rule_of(todo) {
        let recurring = todo
            .first("X-TASKSTREAM-RECURRING")
            .is_none_or(|flag| !flag.value.eq_ignore_ascii_case("FALSE"));
        body.insert("is_recurring".into(), json!(recurring));
        body.insert("recurrence_rule".into(), json!(rule));
    }
    for (property, key) in [
        ("X-TASKSTREAM-RECURRENCE-FROM", "recurrence_from"),
        ("X-TASKSTREAM-RECURRENCE-TRIGGER", "recurrence_trigger"),
    ] {
        if let Some(value) = text(todo, property) {
            body.insert(key.into(), json!(value));
        }
    }
    let mut offset = None;
    let mut reminders = Vec::new();
    for alarm in todo.children.iter().filter(|child| child.name == "VALARM") {
        let Some(trigger) = alarm.first("TRIGGER") else {
            continue;
        };
        let absolute = trigger
            .param("VALUE")
            .is_some_and(|value| value.eq_ignore_ascii_case("DATE-TIME"));
        if absolute {
            let at = time(trigger, zone)?;
            reminders.push(json!({ "at": crate::time::format_utc(at) }));
            continue;
        }
        if trigger
            .param("RELATED")
            .is_some_and(|related| related.eq_ignore_ascii_case("END"))
            || due.is_none()
        {
            warnings.push(format!(
                "line {}: an alarm relative to a start or end was left out (taskstream reminds relative to the due date)",
                trigger.line
            ));
            continue;
        }
        let minutes = duration_minutes(&trigger.value).ok_or_else(|| {
            FileError::new(
                format!("line {}", trigger.line),
                format!(
                    "TRIGGER {:?} is not a duration such as -PT15M",
                    trigger.value
                ),
            )
        })?;
        let before = -minutes;
        if before < 1 {
            warnings.push(format!(
                "line {}: an alarm at or after the due time was left out (reminders come before it)",
                trigger.line
            ));
            continue;
        }
        let extra = trigger.param("X-TASKSTREAM-EXTRA").is_some();
        if offset.is_none() && !extra {
            offset = Some(before);
        } else {
            reminders.push(json!({ "offset_minutes": before }));
        }
    }
    if let Some(minutes) = offset {
        body.insert("reminder_offset_minutes".into(), json!(minutes));
    }
    if !reminders.is_empty() {
        body.insert("reminders".into(), Value::Array(reminders));
    }
    let mut record = Record::new(here.clone(), Value::Object(body));
    record.id = todo
        .first("UID")
        .and_then(|uid| Uuid::parse_str(uid.value.trim()).ok());
    let stamp = |name: &str| -> Result<Option<DateTime<Utc>>, FileError> {
        match todo.first(name) {
            Some(property) => time(property, Tz::UTC).map(Some),
            None => Ok(None),
        }
    };
    record.created_at = stamp("CREATED")?;
    record.updated_at = stamp("LAST-MODIFIED")?;
    record.series_anchor = stamp("X-TASKSTREAM-SERIES-ANCHOR")?;
    record.occurrence_index = text(todo, "X-TASKSTREAM-OCCURRENCE")
        .and_then(|index| index.trim().parse().ok())
        .unwrap_or(0);
    record.time_zone = text(todo, "X-TASKSTREAM-TZ")
        .as_deref()
        .and_then(crate::recurrence::parse_zone);
    record.parent_task_id = todo
        .all("RELATED-TO")
        .find(|related| {
            related
                .param("RELTYPE")
                .is_some_and(|kind| kind.eq_ignore_ascii_case("X-TASKSTREAM-PREVIOUS"))
        })
        .and_then(|related| Uuid::parse_str(related.value.trim()).ok());
    record.subtask_of = todo
        .all("RELATED-TO")
        .find(|related| {
            related
                .param("RELTYPE")
                .is_none_or(|kind| kind.eq_ignore_ascii_case("PARENT"))
        })
        .and_then(|related| Uuid::parse_str(related.value.trim()).ok())
        .map(ParentRef::Id);
    record.project = text(todo, "X-TASKSTREAM-PROJECT")
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .map(FileProject::named);
    Ok(record)
}

pub fn read(text: &str, zone: Tz) -> Result<Parsed, FileError> {
    let calendars = read_ics(text)
        .map_err(|error| FileError::new(format!("line {}", error.line), error.message))?;
    let mut parsed = Parsed::default();
    let mut other = 0;
    for calendar in &calendars {
        if calendar.name != "VCALENDAR" {
            return Err(FileError::new(
                at(calendar),
                format!("expected BEGIN:VCALENDAR, found BEGIN:{}", calendar.name),
            ));
        }
        for component in &calendar.children {
            match component.name.as_str() {
                "VTODO" => {
                    let record = read_todo(component, zone, &mut parsed.warnings)?;
                    parsed.records.push(record);
                }
                "VTIMEZONE" => {}
                _ => other += 1,
            }
        }
    }
    if other > 0 {
        parsed.warnings.push(format!(
            "{other} calendar entries that are not to-dos (VEVENT, VJOURNAL...) were left out"
        ));
    }
    Ok(parsed)
}
