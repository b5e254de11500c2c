//! The create and update bodies, validated field by field.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::fields::{FieldReader, Present};
use super::model::{Priority, RecurrenceFrom, RecurrenceTrigger, TaskStatus};
use crate::error::{FieldError, Loc, ValidationErrors};
use crate::recurrence::Recurrence;
use crate::reminder::{REMINDERS_MAX, ReminderSpec};

pub const TITLE_MAX: usize = 255;
pub const DESCRIPTION_MAX: usize = 2000;
pub const TAGS_MAX: usize = 20;
pub const TAG_MAX: usize = 50;
pub const RULE_MAX: usize = 255;
/// Longest reminder lead time: one year, in minutes (the reference's own, never enforced, limit).
pub const REMINDER_OFFSET_MAX: i64 = 525_600;

const STATUSES: [&str; 3] = ["pending", "in_progress", "completed"];
const PRIORITIES: [&str; 3] = ["low", "medium", "high"];
const RECURRENCE_FROM: [&str; 2] = ["due", "completion"];
const RECURRENCE_TRIGGERS: [&str; 2] = ["on_complete", "on_due"];

/// A validated create request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    pub title: String,
    pub description: Option<String>,
    pub status: TaskStatus,
    pub priority: Priority,
    pub due_date: Option<DateTime<Utc>>,
    pub tags: Vec<String>,
    pub reminder_offset_minutes: Option<i64>,
    pub reminders: Vec<ReminderSpec>,
    pub is_recurring: bool,
    pub recurrence_rule: Option<Recurrence>,
    pub recurrence_from: RecurrenceFrom,
    pub recurrence_trigger: RecurrenceTrigger,
    /// From the `X-Timezone` header, not the body.
    pub time_zone: chrono_tz::Tz,
    /// The project to put the task in (`project_id`); the store checks it is the user's.
    pub project_id: Option<uuid::Uuid>,
    /// The task to make this one a subtask of (`subtask_of`); the store checks the rules.
    pub subtask_of: Option<uuid::Uuid>,
}

impl NewTask {
    /// A minimal draft, mostly for tests and tools.
    pub fn titled(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            description: None,
            status: TaskStatus::Pending,
            priority: Priority::Medium,
            due_date: None,
            tags: Vec::new(),
            reminder_offset_minutes: None,
            reminders: Vec::new(),
            is_recurring: false,
            recurrence_rule: None,
            recurrence_from: RecurrenceFrom::Due,
            recurrence_trigger: RecurrenceTrigger::OnComplete,
            time_zone: chrono_tz::Tz::UTC,
            project_id: None,
            subtask_of: None,
        }
    }
}

/// A validated partial update: `None` = key absent (leave as is); `Some(None)` = clear.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskPatch {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub status: Option<TaskStatus>,
    pub priority: Option<Priority>,
    pub due_date: Option<Option<DateTime<Utc>>>,
    pub tags: Option<Vec<String>>,
    pub reminder_offset_minutes: Option<Option<i64>>,
    /// `Some(vec![])` clears the extra reminders (`null` or `[]`).
    pub reminders: Option<Vec<ReminderSpec>>,
    pub is_recurring: Option<bool>,
    pub recurrence_rule: Option<Option<Recurrence>>,
    pub recurrence_from: Option<RecurrenceFrom>,
    pub recurrence_trigger: Option<RecurrenceTrigger>,
    /// From the `X-Timezone` header, not the body.
    pub time_zone: Option<chrono_tz::Tz>,
}

/// Trims, lower-cases and checks one tag.
pub fn normalise_tag(tag: &str) -> Result<String, &'static str> {
    let clean = tag.trim().to_lowercase();
    let length = clean.chars().count();
    if clean.contains('\0') {
        Err("Tags must not contain NUL characters")
    } else if (1..=TAG_MAX).contains(&length) {
        Ok(clean)
    } else {
        Err("Each tag must be 1-50 characters")
    }
}

/// Keeps the first occurrence of each tag, in order.
pub fn dedupe_tags(tags: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    tags.into_iter()
        .filter(|tag| seen.insert(tag.clone()))
        .collect()
}

fn body_object(body: &Value) -> Result<&serde_json::Map<String, Value>, ValidationErrors> {
    body.as_object().ok_or_else(|| {
        ValidationErrors(vec![FieldError::new(
            "model_attributes_type",
            Vec::new(),
            "Input should be a valid dictionary or object to extract fields from",
            body.clone(),
        )])
    })
}

fn not_null<T>(
    reader: &mut FieldReader<'_>,
    name: &str,
    kind: &'static str,
    msg: &str,
    value: Option<Present<T>>,
) -> Option<T> {
    match value? {
        Present::Value(v) => Some(v),
        Present::Null => {
            reader.push(FieldError::new(
                kind,
                vec![Loc::from(name)],
                msg,
                Value::Null,
            ));
            None
        }
    }
}

fn nullable<T>(value: Option<Present<T>>) -> Option<Option<T>> {
    value.map(|present| match present {
        Present::Value(v) => Some(v),
        Present::Null => None,
    })
}

fn title(reader: &mut FieldReader<'_>) -> Option<String> {
    if let Some(Value::String(raw)) = reader.get("title")
        && !raw.is_empty()
        && raw.trim().is_empty()
    {
        let input = Value::String(raw.clone());
        reader.push(FieldError::value_error(
            vec![Loc::from("title")],
            "Title must not be blank",
            input,
        ));
        return None;
    }
    let value = reader.string("title", 1, TITLE_MAX);
    not_null(
        reader,
        "title",
        "string_type",
        "Input should be a valid string",
        value,
    )
}

fn recurrence_rule(reader: &mut FieldReader<'_>) -> Option<Option<Recurrence>> {
    match reader.string("recurrence_rule", 0, RULE_MAX)? {
        Present::Null => Some(None),
        Present::Value(text) if text.is_empty() => Some(None),
        Present::Value(text) => match text.parse::<Recurrence>() {
            Ok(rule) => Some(Some(rule)),
            Err(error) => {
                reader.push(FieldError::value_error(
                    vec![Loc::from("recurrence_rule")],
                    &error.0,
                    Value::String(text),
                ));
                None
            }
        },
    }
}

fn tags(reader: &mut FieldReader<'_>) -> Option<Present<Vec<String>>> {
    reader
        .string_list("tags", TAGS_MAX, normalise_tag)
        .map(|present| match present {
            Present::Value(tags) => Present::Value(dedupe_tags(tags)),
            Present::Null => Present::Null,
        })
}

fn recurrence_trigger(reader: &mut FieldReader<'_>) -> Option<RecurrenceTrigger> {
    let trigger = reader.choice(
        "recurrence_trigger",
        &RECURRENCE_TRIGGERS,
        RecurrenceTrigger::parse,
    );
    not_null(
        reader,
        "recurrence_trigger",
        "enum",
        "Input should be 'on_complete' or 'on_due'",
        trigger,
    )
}

/// `reminders: [{"offset_minutes": N} | {"at": "<RFC 3339>"}]`; `null` means none.
fn reminders(reader: &mut FieldReader<'_>) -> Option<Vec<ReminderSpec>> {
    let value = reader.get("reminders")?;
    let items = match value {
        Value::Null => return Some(Vec::new()),
        Value::Array(items) => items,
        other => {
            reader.push(FieldError::new(
                "list_type",
                vec![Loc::from("reminders")],
                "Input should be a valid list",
                other.clone(),
            ));
            return None;
        }
    };
    if items.len() > REMINDERS_MAX {
        reader.push(
            FieldError::new(
                "too_long",
                vec![Loc::from("reminders")],
                format!(
                    "List should have at most {REMINDERS_MAX} items after validation, not {}",
                    items.len()
                ),
                value.clone(),
            )
            .with_ctx(serde_json::json!({ "max_length": REMINDERS_MAX })),
        );
        return None;
    }
    let mut specs = Vec::new();
    let mut failed = false;
    for (index, item) in items.iter().enumerate() {
        let loc = vec![Loc::from("reminders"), Loc::Index(index)];
        let object = item.as_object();
        let offset = object.and_then(|o| o.get("offset_minutes"));
        let at = object.and_then(|o| o.get("at"));
        let spec = match (offset, at) {
            (Some(offset), None) => offset
                .as_i64()
                .filter(|minutes| (1..=REMINDER_OFFSET_MAX).contains(minutes))
                .map(|offset_minutes| ReminderSpec::Offset { offset_minutes })
                .ok_or_else(|| {
                    FieldError::new(
                        "int_range",
                        [loc.clone(), vec![Loc::from("offset_minutes")]].concat(),
                        format!("Input should be an integer from 1 to {REMINDER_OFFSET_MAX}"),
                        offset.clone(),
                    )
                    .with_ctx(serde_json::json!({ "ge": 1, "le": REMINDER_OFFSET_MAX }))
                }),
            (None, Some(at)) => at
                .as_str()
                .and_then(crate::time::parse_datetime)
                .filter(crate::time::in_supported_range)
                .map(|at| ReminderSpec::At { at })
                .ok_or_else(|| {
                    FieldError::new(
                        "datetime_parsing",
                        [loc.clone(), vec![Loc::from("at")]].concat(),
                        "Input should be a valid datetime (RFC 3339)",
                        at.clone(),
                    )
                }),
            _ => Err(FieldError::value_error(
                loc,
                "A reminder is {\"offset_minutes\": N} or {\"at\": \"<RFC 3339>\"}",
                item.clone(),
            )),
        };
        match spec {
            Ok(spec) if !specs.contains(&spec) => specs.push(spec),
            Ok(_) => {}
            Err(error) => {
                reader.push(error);
                failed = true;
            }
        }
    }
    (!failed).then_some(specs)
}

fn finish<T>(reader: FieldReader<'_>, value: T) -> Result<T, ValidationErrors> {
    if reader.errors.is_empty() {
        Ok(value)
    } else {
        Err(ValidationErrors(reader.errors))
    }
}

/// Validates a create body. Locations are relative to the body.
pub fn parse_new_task(body: &Value) -> Result<NewTask, ValidationErrors> {
    let object = body_object(body)?;
    let mut reader = FieldReader::new(object);
    let title = if reader.has("title") {
        title(&mut reader)
    } else {
        reader.missing("title");
        None
    };
    let description = nullable(reader.string("description", 0, DESCRIPTION_MAX)).flatten();
    let status = reader.choice("status", &STATUSES, TaskStatus::parse);
    let status = not_null(
        &mut reader,
        "status",
        "enum",
        "Input should be 'pending', 'in_progress' or 'completed'",
        status,
    );
    let priority = reader.choice("priority", &PRIORITIES, Priority::parse);
    let priority = not_null(
        &mut reader,
        "priority",
        "enum",
        "Input should be 'low', 'medium' or 'high'",
        priority,
    );
    let due_date = nullable(reader.datetime("due_date")).flatten();
    let tags = tags(&mut reader);
    let tags = not_null(
        &mut reader,
        "tags",
        "list_type",
        "Input should be a valid list",
        tags,
    );
    let offset =
        nullable(reader.integer_in("reminder_offset_minutes", 1, REMINDER_OFFSET_MAX)).flatten();
    let extra = reminders(&mut reader);
    let is_recurring = reader.boolean("is_recurring");
    let is_recurring = not_null(
        &mut reader,
        "is_recurring",
        "bool_type",
        "Input should be a valid boolean",
        is_recurring,
    );
    let rule = recurrence_rule(&mut reader).flatten();
    let from = reader.choice("recurrence_from", &RECURRENCE_FROM, RecurrenceFrom::parse);
    let from = not_null(
        &mut reader,
        "recurrence_from",
        "enum",
        "Input should be 'due' or 'completion'",
        from,
    );
    let trigger = recurrence_trigger(&mut reader);
    let project_id = nullable(reader.uuid("project_id")).flatten();
    let subtask_of = nullable(reader.uuid("subtask_of")).flatten();

    let draft = NewTask {
        title: title.unwrap_or_default(),
        description,
        status: status.unwrap_or(TaskStatus::Pending),
        priority: priority.unwrap_or(Priority::Medium),
        due_date,
        tags: tags.unwrap_or_default(),
        reminder_offset_minutes: offset,
        reminders: extra.unwrap_or_default(),
        is_recurring: is_recurring.unwrap_or(false),
        recurrence_rule: rule,
        recurrence_from: from.unwrap_or_default(),
        recurrence_trigger: trigger.unwrap_or_default(),
        time_zone: chrono_tz::Tz::UTC,
        project_id,
        subtask_of,
    };
    finish(reader, draft)
}

/// Validates an update body: only the keys present are applied; nulls clear nullable fields.
pub fn parse_task_patch(body: &Value) -> Result<TaskPatch, ValidationErrors> {
    let object = body_object(body)?;
    let mut reader = FieldReader::new(object);
    let title = title(&mut reader);
    let description = nullable(reader.string("description", 0, DESCRIPTION_MAX));
    let status = reader.choice("status", &STATUSES, TaskStatus::parse);
    let status = not_null(
        &mut reader,
        "status",
        "enum",
        "Input should be 'pending', 'in_progress' or 'completed'",
        status,
    );
    let priority = reader.choice("priority", &PRIORITIES, Priority::parse);
    let priority = not_null(
        &mut reader,
        "priority",
        "enum",
        "Input should be 'low', 'medium' or 'high'",
        priority,
    );
    let due_date = nullable(reader.datetime("due_date"));
    let tags = tags(&mut reader);
    let tags = not_null(
        &mut reader,
        "tags",
        "list_type",
        "Input should be a valid list",
        tags,
    );
    let offset = nullable(reader.integer_in("reminder_offset_minutes", 1, REMINDER_OFFSET_MAX));
    let extra = reminders(&mut reader);
    let is_recurring = reader.boolean("is_recurring");
    let is_recurring = not_null(
        &mut reader,
        "is_recurring",
        "bool_type",
        "Input should be a valid boolean",
        is_recurring,
    );
    let rule = recurrence_rule(&mut reader);
    let from = reader.choice("recurrence_from", &RECURRENCE_FROM, RecurrenceFrom::parse);
    let from = not_null(
        &mut reader,
        "recurrence_from",
        "enum",
        "Input should be 'due' or 'completion'",
        from,
    );
    let trigger = recurrence_trigger(&mut reader);

    let patch = TaskPatch {
        title,
        description,
        status,
        priority,
        due_date,
        tags,
        reminder_offset_minutes: offset,
        reminders: extra,
        is_recurring,
        recurrence_rule: rule,
        recurrence_from: from,
        recurrence_trigger: trigger,
        time_zone: None,
    };
    finish(reader, patch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kinds(
        result: Result<impl std::fmt::Debug, ValidationErrors>,
    ) -> Vec<(&'static str, String)> {
        match result {
            Ok(value) => panic!("expected errors, got {value:?}"),
            Err(errors) => errors
                .0
                .into_iter()
                .map(|e| (e.kind, serde_json::to_string(&e.loc).unwrap_or_default()))
                .collect(),
        }
    }

    #[test]
    fn minimal_body_gets_defaults() {
        let task = parse_new_task(&json!({"title": "  Buy milk "})).expect("valid");
        assert_eq!(task.title, "Buy milk");
        assert_eq!(task.status, TaskStatus::Pending);
        assert_eq!(task.priority, Priority::Medium);
        assert!(task.tags.is_empty());
    }

    #[test]
    fn tags_are_trimmed_lowered_and_deduplicated() {
        let task = parse_new_task(&json!({"title": "t", "tags": [" Work", "work", "HOME"]}))
            .expect("valid");
        assert_eq!(task.tags, ["work", "home"]);
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let found = kinds(parse_new_task(&json!({
            "description": 5,
            "status": "done",
            "priority": "urgent",
            "due_date": "tomorrow",
            "tags": ["", "ok"],
            "reminder_offset_minutes": 0,
            "is_recurring": "maybe",
            "recurrence_rule": "SOMETIMES"
        })));
        assert_eq!(
            found,
            [
                ("missing", r#"["title"]"#.to_owned()),
                ("string_type", r#"["description"]"#.to_owned()),
                ("enum", r#"["status"]"#.to_owned()),
                ("enum", r#"["priority"]"#.to_owned()),
                ("datetime_parsing", r#"["due_date"]"#.to_owned()),
                ("value_error", r#"["tags",0]"#.to_owned()),
                (
                    "greater_than_equal",
                    r#"["reminder_offset_minutes"]"#.to_owned()
                ),
                ("bool_type", r#"["is_recurring"]"#.to_owned()),
                ("value_error", r#"["recurrence_rule"]"#.to_owned()),
            ]
        );
    }

    #[test]
    fn limits_are_enforced() {
        let long_title = "x".repeat(TITLE_MAX + 1);
        assert_eq!(
            kinds(parse_new_task(&json!({"title": long_title}))),
            [("string_too_long", r#"["title"]"#.to_owned())]
        );
        assert_eq!(
            kinds(parse_new_task(&json!({"title": ""}))),
            [("string_too_short", r#"["title"]"#.to_owned())]
        );
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert_eq!(
            kinds(parse_new_task(&json!({"title": "t", "tags": many}))),
            [("too_long", r#"["tags"]"#.to_owned())]
        );
        assert_eq!(
            kinds(parse_new_task(&json!(["not", "an", "object"]))),
            [("model_attributes_type", "[]".to_owned())]
        );
    }

    #[test]
    fn offsets_and_dates_stay_in_range() {
        assert_eq!(
            kinds(parse_new_task(
                &json!({"title": "t", "due_date": "2026-01-01T00:00:00Z", "reminder_offset_minutes": i64::MAX})
            )),
            [(
                "less_than_equal",
                r#"["reminder_offset_minutes"]"#.to_owned()
            )]
        );
        assert_eq!(
            kinds(parse_new_task(
                &json!({"title": "t", "due_date": "0999-12-31T00:00:00Z"})
            )),
            [("datetime_parsing", r#"["due_date"]"#.to_owned())]
        );
        assert_eq!(
            kinds(parse_new_task(&json!({"title": " \t "}))),
            [("value_error", r#"["title"]"#.to_owned())]
        );
    }

    #[test]
    fn patch_distinguishes_absent_from_null() {
        let patch =
            parse_task_patch(&json!({"due_date": null, "priority": "high"})).expect("valid");
        assert_eq!(patch.due_date, Some(None));
        assert_eq!(patch.priority, Some(Priority::High));
        assert_eq!(patch.title, None);
        assert_eq!(patch.description, None);
    }

    #[test]
    fn patch_rejects_null_for_required_fields() {
        let found = kinds(parse_task_patch(
            &json!({"title": null, "status": null, "priority": null, "tags": null, "is_recurring": null}),
        ));
        let fields: Vec<&str> = found.iter().map(|(kind, _)| *kind).collect();
        assert_eq!(
            fields,
            ["string_type", "enum", "enum", "list_type", "bool_type"]
        );
    }
}
