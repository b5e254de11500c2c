//! One task as a line of the CLI's output, with its dates in the user's zone.

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use taskstream_engine::assistant::offline::reply::repeat_words;

pub use taskstream_engine::task::DueWindow;

fn instant(task: &Value, key: &str) -> Option<DateTime<Utc>> {
    task[key]
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|instant| instant.with_timezone(&Utc))
}

/// "Tue 1 Dec 09:00", with the year when it is not this year.
fn short_date(instant: DateTime<Utc>, zone: Tz, now: DateTime<Utc>) -> String {
    let local = instant.with_timezone(&zone);
    if local.year() == now.with_timezone(&zone).year() {
        local.format("%a %-d %b %H:%M").to_string()
    } else {
        local.format("%a %-d %b %Y %H:%M").to_string()
    }
}

/// Characters of an id a line shows: its end, the random part (ids are UUIDv7, whose start is
/// the creation time and so the same for tasks made together).
pub const SHORT_ID: usize = 8;

/// The end of an id that a line shows and `task done` takes.
pub fn short_id(id: &str) -> &str {
    id.char_indices()
        .rev()
        .nth(SHORT_ID - 1)
        .map_or(id, |(start, _)| &id[start..])
}

/// `5b093c4a  Pay rent  !high  due Tue 1 Dec 09:00  #home  ↻ monthly`: the id's end (enough
/// for `task done`), then what the list shows in the web UI.
pub fn line(task: &Value, zone: Tz, now: DateTime<Utc>) -> String {
    let id = task["id"].as_str().unwrap_or("");
    let mut parts = vec![
        short_id(id).to_owned(),
        task["title"].as_str().unwrap_or("").to_owned(),
    ];
    let completed = task["status"] == "completed";
    match task["priority"].as_str() {
        Some("high") => parts.push("!high".to_owned()),
        Some("low") => parts.push("!low".to_owned()),
        _ => {}
    }
    if task["status"] == "in_progress" {
        parts.push("(in progress)".to_owned());
    }
    if let Some(due) = instant(task, "due_date") {
        let late = !completed && due < now;
        parts.push(format!(
            "{}due {}",
            if late { "OVERDUE " } else { "" },
            short_date(due, zone, now)
        ));
    }
    let tags: Vec<String> = task["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(Value::as_str)
                .map(|tag| format!("#{tag}"))
                .collect()
        })
        .unwrap_or_default();
    if !tags.is_empty() {
        parts.push(tags.join(" "));
    }
    if task["is_recurring"] == true
        && let Some(rule) = task["recurrence_rule"].as_str()
    {
        parts.push(format!("↻ {}", repeat_words(rule)));
    }
    if completed {
        parts.push("✓ done".to_owned());
    }
    parts.join("  ")
}

/// Whether the task is due in `window` (an undated task never is; a completed one is never
/// overdue).
pub fn matches_window(task: &Value, window: DueWindow, zone: Tz, now: DateTime<Utc>) -> bool {
    let completed = task["status"] == "completed";
    match instant(task, "due_date") {
        Some(due) => {
            !(completed && window == DueWindow::Overdue) && window.contains(due, now, zone)
        }
        None => false,
    }
}
