//! Todoist's project export (CSV with the columns `TYPE, CONTENT, DESCRIPTION, PRIORITY,
//! INDENT, AUTHOR, RESPONSIBLE, DATE, DATE_LANG, TIMEZONE`, and `DURATION`, `DEADLINE`, ... in
//! newer exports), read into tasks:
//!
//! - `task` rows are tasks; `@label` words of `CONTENT` become tags.
//! - `PRIORITY` follows Todoist's CSV documentation: 1 is p1, the highest (red), 4 is p4, "no
//!   priority" (the default). So 1 → high, 2 → medium, 3 → low, 4 or empty → medium (taskstream's
//!   default). (Todoist's REST API numbers the other way round, 4 for p1; its CSV does not.)
//! - `DATE` is Todoist's date text ("every monday", "tomorrow 10am", "Jan 5 2027", or
//!   `2027-01-05`), read by the assistant's date parser in `TIMEZONE` (or the importing
//!   user's zone); a repeating date makes a recurring task. A date the parser cannot read is
//!   left out, with a warning.
//! - `section` rows: the tasks under a section get its name as a tag.
//! - `note` rows (comments) are added to the description of the task above them.
//! - `INDENT` 2 (sub-tasks) become subtasks of the `INDENT` 1 task above them; deeper ones
//!   (taskstream's subtasks are one level deep) become subtasks of that same top-level task,
//!   with a warning. A sub-task with no task above it is imported on its own, with a warning.
//! - The file is one Todoist project; its tasks go into the project the import is given
//!   ([`super::Parsed::project`]: `?project=` over HTTP, `--project` or the file's name on the
//!   command line), created if the user has none of that name. Sections stay tags.
//! - `AUTHOR`, `RESPONSIBLE`, `DURATION` and `DEADLINE` have no place in taskstream and are
//!   not read.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};

use super::csv::{Header, read as read_rows};
use super::{FileError, ParentRef, Parsed, Record, default_time};
use crate::assistant::offline::intent::quick_add;

/// The title the date parser is given with a `DATE`, so what it leaves of the line shows
/// whether it understood the whole date.
const PROBE: &str = "todoist";

/// Todoist's PRIORITY cell as a taskstream priority.
pub fn priority(cell: &str) -> Option<&'static str> {
    match cell.trim() {
        "1" => Some("high"),
        "2" => Some("medium"),
        "3" => Some("low"),
        "4" | "" => Some("medium"),
        _ => None,
    }
}

/// A `DATE` as (due date, recurrence rule), or `None` when it cannot be read.
fn read_date(text: &str, now: DateTime<Utc>, zone: Tz) -> Option<(DateTime<Utc>, Option<String>)> {
    let text = text.trim();
    let iso = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .map(|date| date.and_time(default_time()))
        });
    if let Some(stripped) = text.strip_suffix('Z')
        && let Ok(naive) = NaiveDateTime::parse_from_str(stripped, "%Y-%m-%dT%H:%M:%S")
    {
        return Some((naive.and_utc(), None));
    }
    if let Some(naive) = iso {
        return crate::recurrence::from_wall_clock(zone, naive).map(|due| (due, None));
    }
    let parsed = quick_add(&format!("{PROBE} {text}"), now, zone).ok()?;
    if parsed.title.to_lowercase() != PROBE {
        return None;
    }
    Some((parsed.due_date?, parsed.recurrence_rule))
}

/// `CONTENT` as (title, tags): `@label` words are labels.
fn title_and_labels(content: &str) -> (String, Vec<String>) {
    let mut words = Vec::new();
    let mut labels = Vec::new();
    for word in content.split_whitespace() {
        match word.strip_prefix('@') {
            Some(label) if !label.is_empty() => labels.push(label.to_owned()),
            _ => words.push(word),
        }
    }
    (words.join(" "), labels)
}

pub fn read(text: &str, now: DateTime<Utc>, zone: Tz) -> Result<Parsed, FileError> {
    let rows = read_rows(text)
        .map_err(|error| FileError::new(format!("line {}", error.line), error.message))?;
    let Some((head, rows)) = rows.split_first() else {
        return Ok(Parsed::default());
    };
    let header = Header::new(head);
    for column in ["type", "content"] {
        if !header.has(column) {
            return Err(FileError::new(
                "line 1",
                format!(
                    "no {} column: not a Todoist export (TYPE, CONTENT, DESCRIPTION, PRIORITY, INDENT, ..., DATE, DATE_LANG, TIMEZONE)",
                    column.to_uppercase()
                ),
            ));
        }
    }
    let mut parsed = Parsed::default();
    let mut section: Option<String> = None;
    // The last INDENT 1 task, which sub-tasks below it go under.
    let mut top: Option<usize> = None;
    for row in rows {
        let at = format!("line {}", row.line);
        let content = header.get(row, "content");
        match header.get(row, "type") {
            "" if content.is_empty() => {}
            "section" => {
                let tag: String = content.trim().chars().take(50).collect();
                section = (!tag.is_empty()).then_some(tag);
                top = None;
                if let Some(tag) = &section {
                    parsed.warnings.push(format!(
                        "{at}: the tasks of section “{content}” are tagged #{}",
                        tag.to_lowercase()
                    ));
                }
            }
            "note" => match parsed.records.last_mut() {
                Some(task) => {
                    if let Value::Object(body) = &mut task.body {
                        let before = body
                            .get("description")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned();
                        let joined = if before.is_empty() {
                            content.to_owned()
                        } else {
                            format!("{before}\n\n{content}")
                        };
                        body.insert("description".into(), json!(joined));
                    }
                }
                None => parsed
                    .warnings
                    .push(format!("{at}: a comment before any task was left out")),
            },
            "task" => {
                let (title, mut tags) = title_and_labels(content);
                if let Some(tag) = &section {
                    tags.push(tag.clone());
                }
                let mut body = Map::new();
                body.insert("title".into(), json!(title));
                let description = header.get(row, "description");
                if !description.is_empty() {
                    body.insert("description".into(), json!(description));
                }
                let cell = header.get(row, "priority");
                let priority = priority(cell).ok_or_else(|| {
                    FileError::new(&at, format!("PRIORITY {cell:?} is not 1, 2, 3 or 4"))
                })?;
                body.insert("priority".into(), json!(priority));
                body.insert("tags".into(), json!(tags));
                let row_zone = match header.get(row, "timezone") {
                    "" => zone,
                    name => crate::recurrence::parse_zone(name).unwrap_or(zone),
                };
                let date = header.get(row, "date");
                if !date.is_empty() {
                    match read_date(date, now, row_zone) {
                        Some((due, rule)) => {
                            body.insert("due_date".into(), json!(crate::time::format_utc(due)));
                            if let Some(rule) = rule {
                                body.insert("is_recurring".into(), json!(true));
                                body.insert("recurrence_rule".into(), json!(rule));
                            }
                        }
                        None => parsed.warnings.push(format!(
                            "{at}: the date {date:?} was not understood; the task has no due date"
                        )),
                    }
                }
                let depth = header.get(row, "indent").trim().parse::<u32>().unwrap_or(1);
                let parent = if depth > 1 {
                    match top {
                        Some(index) => {
                            if depth > 2 {
                                let above = parsed.records[index].body["title"]
                                    .as_str()
                                    .unwrap_or("")
                                    .to_owned();
                                parsed.warnings.push(format!(
                                    "{at}: “{title}” (INDENT {depth}) is a subtask of “{above}”: subtasks are one level deep"
                                ));
                            }
                            Some(ParentRef::Index(index))
                        }
                        None => {
                            parsed.warnings.push(format!(
                                "{at}: sub-task “{title}” has no task above it; imported as a task of its own"
                            ));
                            None
                        }
                    }
                } else {
                    top = Some(parsed.records.len());
                    None
                };
                let mut record = Record::new(at, Value::Object(body));
                record.time_zone = Some(row_zone);
                record.subtask_of = parent;
                parsed.records.push(record);
            }
            other => parsed
                .warnings
                .push(format!("{at}: a row of TYPE {other:?} was left out")),
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_todoist_export_becomes_tasks() {
        let now = DateTime::parse_from_rfc3339("2026-12-05T12:00:00Z")
            .map(|now| now.with_timezone(&Utc))
            .unwrap_or_default();
        let berlin: Tz = "Europe/Berlin".parse().unwrap_or(Tz::UTC);
        let csv = "TYPE,CONTENT,DESCRIPTION,PRIORITY,INDENT,AUTHOR,RESPONSIBLE,DATE,DATE_LANG,TIMEZONE\n\
            task,Pay rent @home @money,monthly,1,1,Ann (1),,every month on the 1st at 9,en,Europe/Berlin\n\
            note,Transfer from the joint account,,,,,,,,\n\
            section,Errands,,,,,,,,\n\
            task,Buy milk,,4,1,,,2026-12-07,en,\n\
            task,Buy oat milk,,3,2,,,gibberish date,en,\n";
        let parsed = read(csv, now, berlin).unwrap_or_default();
        assert_eq!(parsed.records.len(), 3);
        let rent = &parsed.records[0].body;
        assert_eq!(rent["title"], "Pay rent");
        assert_eq!(rent["tags"], json!(["home", "money"]));
        assert_eq!(rent["priority"], "high");
        assert_eq!(rent["is_recurring"], true);
        assert_eq!(
            rent["description"],
            "monthly\n\nTransfer from the joint account"
        );
        assert_eq!(rent["due_date"], "2027-01-01T08:00:00Z");
        let milk = &parsed.records[1].body;
        assert_eq!(milk["priority"], "medium");
        assert_eq!(milk["tags"], json!(["Errands"]));
        assert_eq!(milk["due_date"], "2026-12-07T08:00:00Z");
        let oat = &parsed.records[2].body;
        assert_eq!(oat["priority"], "low");
        assert!(oat.get("due_date").is_none());
        assert!(
            parsed
                .warnings
                .iter()
                .any(|w| w.contains("line 6") && w.contains("gibberish"))
        );
        assert_eq!(
            parsed.records[2].subtask_of,
            Some(ParentRef::Index(1)),
            "INDENT 2 is a subtask of the task above"
        );
        assert_eq!(parsed.records[1].subtask_of, None);
        assert!(read("TYPE,CONTENT,PRIORITY\ntask,x,7\n", now, berlin).is_err());
        assert!(read("title,due\nx,y\n", now, berlin).is_err());
    }
}
