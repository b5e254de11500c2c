//! The list query: search, filters, sort and an optional page.

use serde_json::Value;

use super::fields::{enum_error, parse_bool};
use super::model::{Priority, TaskStatus};
use crate::error::{FieldError, Loc, ValidationErrors};

/// Longest accepted search string, so a query cannot be turned into a denial of service.
pub const SEARCH_MAX: usize = 255;
/// Largest offset a page may start at: the documented `int32` range, which every client
/// language can hold.
pub const OFFSET_MAX: u32 = i32::MAX as u32;
/// Largest page a client may ask for.
pub const LIMIT_MAX: u32 = 1000;
/// The page a list gets when it asks for none: the reference had no pagination, so clients
/// that never send `limit` still see all of a normal task list, but one request can no longer
/// pull tens of megabytes.
pub const LIMIT_DEFAULT: u32 = 500;
/// Most tags one filter may name. A task holds at most [`super::input::TAGS_MAX`] tags, so a
/// longer filter could never match; refusing it also keeps the SQL expression bounded.
pub const FILTER_TAGS_MAX: usize = super::input::TAGS_MAX;

/// Which statuses a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFilter {
    #[default]
    All,
    /// Everything not completed.
    Active,
    Only(TaskStatus),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortField {
    #[default]
    CreatedAt,
    DueDate,
    Priority,
    Title,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    Asc,
    #[default]
    Desc,
}

/// Which project's tasks a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectFilter {
    /// The tasks of this project (the caller checks it is the user's).
    In(uuid::Uuid),
    /// The tasks in no project (`project_id=none`).
    None,
}

/// A validated list query; empty means "all my tasks, newest first".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskQuery {
    /// Lower-cased needle matched against title and description.
    pub search: Option<String>,
    pub status: StatusFilter,
    pub priority: Option<Priority>,
    /// Lower-cased tags that must all be present.
    pub tags: Vec<String>,
    pub has_due_date: Option<bool>,
    pub is_recurring: Option<bool>,
    pub sort: SortField,
    pub order: SortOrder,
    pub limit: Option<u32>,
    pub offset: u32,
    /// `due=today|upcoming|overdue`; the caller turns it into `due_from`/`due_until` in the
    /// user's time zone ([`TaskQuery::resolve_due`]).
    pub due: Option<super::window::DueWindow>,
    /// Only tasks due at or after this instant.
    pub due_from: Option<chrono::DateTime<chrono::Utc>>,
    /// Only tasks due before this instant.
    pub due_until: Option<chrono::DateTime<chrono::Utc>>,
    /// `project_id=<uuid>|none`.
    pub project: Option<ProjectFilter>,
    /// Only the subtasks of this task (`GET /api/tasks/{id}/subtasks`; not a query key).
    pub subtask_of: Option<uuid::Uuid>,
}

fn loc(name: &str) -> Vec<Loc> {
    vec![Loc::from(name)]
}

impl TaskQuery {
    /// Turns `due` into the instants it means for a user in `zone` at `now`.
    pub fn resolve_due(&mut self, now: chrono::DateTime<chrono::Utc>, zone: chrono_tz::Tz) {
        if let Some(window) = self.due {
            let (from, until) = window.bounds(now, zone);
            self.due_from = from;
            self.due_until = until;
        }
    }

    /// Parses query-string pairs; unknown keys are ignored, the last value of a key wins.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ValidationErrors> {
        let mut query = TaskQuery::default();
        let mut errors = Vec::new();
        for (key, value) in pairs {
            let input = Value::String(value.to_owned());
            match key {
                "search" => {
                    let needle = value.trim().to_lowercase();
                    if needle.contains('\0') {
                        errors.push(FieldError::value_error(
                            loc(key),
                            "Text must not contain NUL characters",
                            input,
                        ));
                    } else if needle.chars().count() > SEARCH_MAX {
                        errors.push(
                            FieldError::new(
                                "string_too_long",
                                loc(key),
                                format!("String should have at most {SEARCH_MAX} characters"),
                                input,
                            )
                            .with_ctx(serde_json::json!({ "max_length": SEARCH_MAX })),
                        );
                    } else {
                        query.search = (!needle.is_empty()).then_some(needle);
                    }
                }
                "status" => match value {
                    "" | "all" => query.status = StatusFilter::All,
                    "active" => query.status = StatusFilter::Active,
                    other => match TaskStatus::parse(other) {
                        Some(status) => query.status = StatusFilter::Only(status),
                        None => errors.push(enum_error(
                            loc(key),
                            &["all", "active", "pending", "in_progress", "completed"],
                            input,
                        )),
                    },
                },
                "priority" => match Priority::parse(value) {
                    Some(priority) => query.priority = Some(priority),
                    None => errors.push(enum_error(loc(key), &["low", "medium", "high"], input)),
                },
                "tags" => {
                    let tags = value
                        .split(',')
                        .map(|tag| tag.trim().to_lowercase())
                        .filter(|tag| !tag.is_empty());
                    let tags = super::input::dedupe_tags(tags.collect());
                    if tags.len() > FILTER_TAGS_MAX {
                        errors.push(
                            FieldError::new(
                                "too_long",
                                loc(key),
                                format!(
                                    "A filter may name at most {FILTER_TAGS_MAX} tags, not {}",
                                    tags.len()
                                ),
                                input,
                            )
                            .with_ctx(serde_json::json!({
                                "field_type": "List",
                                "max_length": FILTER_TAGS_MAX,
                                "actual_length": tags.len(),
                            })),
                        );
                    } else {
                        query.tags = tags;
                    }
                }
                "has_due_date" | "is_recurring" => match parse_bool(value) {
                    Some(flag) if key == "has_due_date" => query.has_due_date = Some(flag),
                    Some(flag) => query.is_recurring = Some(flag),
                    None => errors.push(FieldError::new(
                        "bool_parsing",
                        loc(key),
                        "Input should be a valid boolean, unable to interpret input",
                        input,
                    )),
                },
                "due" => match super::window::DueWindow::parse(value) {
                    Some(window) => query.due = Some(window),
                    None => errors.push(enum_error(
                        loc(key),
                        &["today", "upcoming", "overdue"],
                        input,
                    )),
                },
                "sort" => match value {
                    "created_at" => query.sort = SortField::CreatedAt,
                    "due_date" => query.sort = SortField::DueDate,
                    "priority" => query.sort = SortField::Priority,
                    "title" => query.sort = SortField::Title,
                    _ => errors.push(enum_error(
                        loc(key),
                        &["created_at", "due_date", "priority", "title"],
                        input,
                    )),
                },
                "order" => match value {
                    "asc" => query.order = SortOrder::Asc,
                    "desc" => query.order = SortOrder::Desc,
                    _ => errors.push(enum_error(loc(key), &["asc", "desc"], input)),
                },
                "limit" => match value.trim().parse::<u32>() {
                    Ok(n) if (1..=LIMIT_MAX).contains(&n) => query.limit = Some(n),
                    _ => errors.push(
                        FieldError::new(
                            "int_parsing",
                            loc(key),
                            format!("Input should be an integer between 1 and {LIMIT_MAX}"),
                            input,
                        )
                        .with_ctx(serde_json::json!({ "ge": 1, "le": LIMIT_MAX })),
                    ),
                },
                "project_id" => match value.trim() {
                    "none" => query.project = Some(ProjectFilter::None),
                    text => match uuid::Uuid::parse_str(text) {
                        Ok(id) => query.project = Some(ProjectFilter::In(id)),
                        Err(error) => errors.push(FieldError::new(
                            "uuid_parsing",
                            loc(key),
                            format!("Input should be a valid UUID or 'none', {error}"),
                            input,
                        )),
                    },
                },
                "offset" => match value.trim().parse::<u32>() {
                    Ok(n) if n <= OFFSET_MAX => query.offset = n,
                    _ => errors.push(
                        FieldError::new(
                            "int_parsing",
                            loc(key),
                            format!("Input should be an integer from 0 to {OFFSET_MAX}"),
                            input,
                        )
                        .with_ctx(serde_json::json!({ "ge": 0, "le": OFFSET_MAX })),
                    ),
                },
                _ => {}
            }
        }
        if errors.is_empty() {
            Ok(query)
        } else {
            Err(ValidationErrors(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_query_is_newest_first() {
        let query = TaskQuery::from_pairs([]).expect("valid");
        assert_eq!(query, TaskQuery::default());
        assert_eq!(query.order, SortOrder::Desc);
    }

    #[test]
    fn values_are_parsed() {
        let query = TaskQuery::from_pairs([
            ("search", " Milk "),
            ("status", "active"),
            ("priority", "high"),
            ("tags", "Work, home,,work"),
            ("has_due_date", "yes"),
            ("is_recurring", "0"),
            ("sort", "due_date"),
            ("order", "asc"),
        ])
        .expect("valid");
        assert_eq!(query.search.as_deref(), Some("milk"));
        assert_eq!(query.status, StatusFilter::Active);
        assert_eq!(query.tags, ["work", "home"]);
        assert_eq!(query.has_due_date, Some(true));
        assert_eq!(query.is_recurring, Some(false));
        assert_eq!(query.sort, SortField::DueDate);
        assert_eq!(query.order, SortOrder::Asc);
    }

    #[test]
    fn unknown_enum_values_are_rejected_not_ignored() {
        let errors = TaskQuery::from_pairs([
            ("status", "done"),
            ("sort", "colour"),
            ("order", "sideways"),
            ("has_due_date", "perhaps"),
        ])
        .expect_err("invalid");
        let kinds: Vec<&str> = errors.0.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["enum", "enum", "enum", "bool_parsing"]);
    }

    #[test]
    fn project_ids_are_uuids_or_none() {
        let id = uuid::Uuid::new_v4();
        let query = TaskQuery::from_pairs([("project_id", id.to_string().as_str())]).expect("ok");
        assert_eq!(query.project, Some(ProjectFilter::In(id)));
        let none = TaskQuery::from_pairs([("project_id", "none")]).expect("ok");
        assert_eq!(none.project, Some(ProjectFilter::None));
        let errors = TaskQuery::from_pairs([("project_id", "groceries")]).expect_err("bad");
        assert_eq!(errors.0[0].kind, "uuid_parsing");
    }

    #[test]
    fn a_tag_filter_longer_than_a_task_can_hold_is_rejected() {
        let at_most: Vec<String> = (0..FILTER_TAGS_MAX).map(|n| format!("t{n}")).collect();
        let query = TaskQuery::from_pairs([("tags", at_most.join(",").as_str())]).expect("valid");
        assert_eq!(query.tags.len(), FILTER_TAGS_MAX);
        // Duplicates collapse before counting.
        let doubled = format!("{},{}", at_most.join(","), at_most.join(",").to_uppercase());
        assert!(TaskQuery::from_pairs([("tags", doubled.as_str())]).is_ok());
        let too_many: Vec<String> = (0..=FILTER_TAGS_MAX).map(|n| format!("t{n}")).collect();
        let errors =
            TaskQuery::from_pairs([("tags", too_many.join(",").as_str())]).expect_err("too many");
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].kind, "too_long");
    }
}
