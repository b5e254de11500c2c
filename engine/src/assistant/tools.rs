//! The five task tools (`add_task`, `list_tasks`, `complete_task`, `update_task`, `delete_task`)
//! with the reference's names, parameters, result shape and error strings, extended with tags,
//! reminders, recurrence, projects and subtasks, plus `list_projects` and `create_project`.
//! Projects are named by name (what a person says) and a parent task by id or title, so a
//! model needs no extra lookups for the common cases. One table ([`TOOL_SPECS`]) is both the JSON schema a model or an MCP
//! client sees and the argument checker, so the two cannot drift apart. Every call goes through
//! [`TaskService`], so events, reminders and recurrence behave exactly as for REST.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::error::EngineError;
use crate::project::ProjectSummary;
use crate::recurrence::from_wall_clock;
use crate::service::TaskService;
use crate::task::input::{DESCRIPTION_MAX, TITLE_MAX, parse_new_task, parse_task_patch};
use crate::task::{Priority, ProjectFilter, StatusFilter, Task, TaskQuery, TaskStatus};
use crate::task::{SortField, SortOrder};

/// The JSON type of one tool parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamKind {
    String,
    Integer,
    Boolean,
    StringList,
    /// A string from a fixed set.
    Enum(&'static [&'static str]),
}

/// One parameter of a tool: its schema and how its value is checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamKind,
    pub description: &'static str,
    pub required: bool,
}

/// A tool as a model or an MCP client sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub params: &'static [ParamSpec],
}

const fn param(
    name: &'static str,
    kind: ParamKind,
    description: &'static str,
    required: bool,
) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        description,
        required,
    }
}

const PRIORITY: &[&str] = &["low", "medium", "high"];
const PRIORITY_OR_ALL: &[&str] = &["low", "medium", "high", "all"];
const STATUS: &[&str] = &["pending", "in_progress", "completed"];
const STATUS_OR_ALL: &[&str] = &["pending", "in_progress", "completed", "all"];
const SORT: &[&str] = &["created_at", "due_date", "priority", "title"];
const ORDER: &[&str] = &["asc", "desc"];

const TASK_ID: ParamSpec = param(
    "task_id",
    ParamKind::String,
    "The task's UUID, as returned by list_tasks or add_task",
    true,
);
const DUE_DATE: ParamSpec = param(
    "due_date",
    ParamKind::String,
    "Due date, ISO 8601 (e.g. 2026-12-01T09:00:00Z). Without an offset it is read in the user's time zone; a date alone means the end of that day",
    false,
);
const TAGS: ParamSpec = param(
    "tags",
    ParamKind::StringList,
    "Tags, e.g. [\"work\", \"home\"]; stored lower-case",
    false,
);
const REMINDER: ParamSpec = param(
    "reminder_offset_minutes",
    ParamKind::Integer,
    "Remind this many minutes before the due date (at least 1; needs a due date)",
    false,
);
const RECURRENCE: ParamSpec = param(
    "recurrence_rule",
    ParamKind::String,
    "Repeat rule: DAILY, WEEKLY, MONTHLY, YEARLY, INTERVAL:N (every N days) or an RFC 5545 rule such as RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR",
    false,
);

const PROJECT: ParamSpec = param(
    "project",
    ParamKind::String,
    "The name of one of the user's projects (lists), as list_projects shows it; case does not matter",
    false,
);

/// The tools: the reference's five in its order, then the project tools.
pub const TOOL_SPECS: [ToolSpec; 7] = [
    ToolSpec {
        name: "add_task",
        description: "Create a new task when the user wants to add, create or make a task or to be reminded of something.",
        params: &[
            param(
                "title",
                ParamKind::String,
                "Task title (1-255 characters)",
                true,
            ),
            param(
                "description",
                ParamKind::String,
                "Optional details (up to 2000 characters)",
                false,
            ),
            param(
                "priority",
                ParamKind::Enum(PRIORITY),
                "Priority (default medium)",
                false,
            ),
            DUE_DATE,
            TAGS,
            REMINDER,
            RECURRENCE,
            param(
                "project",
                ParamKind::String,
                "Put the task in this project (list), by name as list_projects shows it; the project must exist (create_project makes one)",
                false,
            ),
            param(
                "subtask_of",
                ParamKind::String,
                "Make the task a subtask of this task: its UUID, or its exact title. One level only (a subtask has no subtasks); a subtask is always in its parent's project",
                false,
            ),
        ],
    },
    ToolSpec {
        name: "list_tasks",
        description: "List the user's tasks, newest first: to show them, to find a task by name before acting on it, or to check what exists.",
        params: &[
            param(
                "status",
                ParamKind::Enum(STATUS_OR_ALL),
                "Status filter (default all)",
                false,
            ),
            param(
                "priority",
                ParamKind::Enum(PRIORITY_OR_ALL),
                "Priority filter (default all)",
                false,
            ),
            param(
                "search",
                ParamKind::String,
                "Case-insensitive text to find in the title or description",
                false,
            ),
            param(
                "tags",
                ParamKind::StringList,
                "Only tasks that have all these tags",
                false,
            ),
            param(
                "due_after",
                ParamKind::String,
                "Only tasks due at or after this ISO 8601 instant",
                false,
            ),
            param(
                "due_before",
                ParamKind::String,
                "Only tasks due before this ISO 8601 instant",
                false,
            ),
            param(
                "overdue",
                ParamKind::Boolean,
                "Only unfinished tasks whose due date has passed",
                false,
            ),
            param(
                "is_recurring",
                ParamKind::Boolean,
                "Only recurring (true) or one-off (false) tasks",
                false,
            ),
            param(
                "sort",
                ParamKind::Enum(SORT),
                "Sort field (default created_at)",
                false,
            ),
            param(
                "order",
                ParamKind::Enum(ORDER),
                "Sort order (default desc)",
                false,
            ),
            param(
                "limit",
                ParamKind::Integer,
                "At most this many tasks (1-1000)",
                false,
            ),
            PROJECT,
        ],
    },
    ToolSpec {
        name: "complete_task",
        description: "Mark a task as completed when the user says it is finished or done. A recurring task's next occurrence is created and returned as next_task.",
        params: &[TASK_ID],
    },
    ToolSpec {
        name: "update_task",
        description: "Change a task's title, description, status, priority, due date, tags, reminder or recurrence. Only the fields given change; pass null (or \"\") to clear due_date, reminder_offset_minutes or recurrence_rule.",
        params: &[
            TASK_ID,
            param("title", ParamKind::String, "New title", false),
            param(
                "description",
                ParamKind::String,
                "New description; \"\" clears it",
                false,
            ),
            param("status", ParamKind::Enum(STATUS), "New status", false),
            param("priority", ParamKind::Enum(PRIORITY), "New priority", false),
            DUE_DATE,
            TAGS,
            REMINDER,
            RECURRENCE,
        ],
    },
    ToolSpec {
        name: "delete_task",
        description: "Delete a task when the user wants to remove, delete or get rid of it. Its subtasks are deleted with it.",
        params: &[TASK_ID],
    },
    ToolSpec {
        name: "list_projects",
        description: "List the user's projects (lists such as Groceries or Garden) by name, with how many tasks each holds and how many are open.",
        params: &[],
    },
    ToolSpec {
        name: "create_project",
        description: "Create a project (a named list of tasks) when the user asks for a new project or list.",
        params: &[param(
            "name",
            ParamKind::String,
            "The project's name (1-100 characters, unique per user ignoring case)",
            true,
        )],
    },
];

impl ToolSpec {
    pub fn find(name: &str) -> Option<&'static ToolSpec> {
        TOOL_SPECS.iter().find(|spec| spec.name == name)
    }

    /// The JSON schema of the parameters (an `object` schema).
    pub fn parameters_schema(&self) -> Value {
        let mut properties = Map::new();
        for spec in self.params {
            let mut schema = match spec.kind {
                ParamKind::String => json!({ "type": "string" }),
                ParamKind::Integer => json!({ "type": "integer" }),
                ParamKind::Boolean => json!({ "type": "boolean" }),
                ParamKind::StringList => json!({ "type": "array", "items": { "type": "string" } }),
                ParamKind::Enum(values) => json!({ "type": "string", "enum": values }),
            };
            schema["description"] = Value::from(spec.description);
            properties.insert(spec.name.to_owned(), schema);
        }
        let required: Vec<&str> = self
            .params
            .iter()
            .filter(|spec| spec.required)
            .map(|spec| spec.name)
            .collect();
        json!({ "type": "object", "properties": properties, "required": required })
    }

    /// The tool in the OpenAI chat-completions `tools` format.
    pub fn openai_function(&self) -> Value {
        json!({
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters_schema(),
            }
        })
    }
}

/// Every tool in the OpenAI `tools` format.
pub fn openai_tools() -> Value {
    Value::Array(TOOL_SPECS.iter().map(ToolSpec::openai_function).collect())
}

/// A request to run one tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub name: String,
    pub arguments: Value,
}

impl ToolCall {
    pub fn new(name: &str, arguments: Value) -> Self {
        Self {
            name: name.to_owned(),
            arguments,
        }
    }
}

/// What one tool run did, in the chat API's `tools_invoked` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ToolInvocation {
    pub tool_name: String,
    pub success: bool,
    /// The tool's `data` on success.
    pub result: Option<Value>,
    pub error: Option<String>,
}

impl ToolInvocation {
    fn succeeded(name: &str, data: Value) -> Self {
        Self {
            tool_name: name.to_owned(),
            success: true,
            result: Some(data),
            error: None,
        }
    }

    fn failed(name: &str, error: impl Into<String>) -> Self {
        Self {
            tool_name: name.to_owned(),
            success: false,
            result: None,
            error: Some(error.into()),
        }
    }

    /// The reference's whole tool result, `{"success", "data"|"error"}`, as fed back to a model.
    pub fn result_json(&self) -> Value {
        if self.success {
            json!({ "success": true, "data": self.result })
        } else {
            json!({ "success": false, "error": self.error })
        }
    }
}

/// A task as the tools return it: the reference's TaskSummary keys plus tags, reminder and
/// recurrence, with RFC 3339 UTC datetimes, and where it sits (`project_id`, `subtask_of`,
/// `null` for none) so a client can group a list without another call.
pub fn task_summary(task: &Task) -> Value {
    let mut view = serde_json::to_value(task.view()).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut view {
        fields.remove("user_id");
        fields.insert("project_id".into(), json!(task.project_id));
        fields.insert("subtask_of".into(), json!(task.subtask_of));
    }
    view
}

/// A project as the tools return it (the REST API's project object).
pub fn project_summary(summary: &ProjectSummary) -> Value {
    serde_json::to_value(summary.view()).unwrap_or(Value::Null)
}

/// Runs tools for an authenticated user.
#[derive(Clone)]
pub struct Tools {
    service: TaskService,
}

/// A tool failure: the text the reference would have returned.
type ToolResult = Result<Value, String>;

impl Tools {
    pub fn new(service: TaskService) -> Self {
        Self { service }
    }

    pub fn service(&self) -> &TaskService {
        &self.service
    }

    /// Runs one tool for `user_id`; never fails, a problem is reported in the invocation. A
    /// `user_id` argument from a model is ignored: the caller is who authentication says.
    pub async fn call(&self, user_id: &str, zone: Tz, call: &ToolCall) -> ToolInvocation {
        let Some(spec) = ToolSpec::find(&call.name) else {
            return ToolInvocation::failed(&call.name, format!("Unknown tool: {}", call.name));
        };
        let args = match check_arguments(spec, &call.arguments) {
            Ok(args) => args,
            Err(error) => return ToolInvocation::failed(spec.name, error),
        };
        let outcome = match spec.name {
            "add_task" => self.add(user_id, zone, &args).await,
            "list_tasks" => self.list(user_id, zone, &args).await,
            "complete_task" => self.complete(user_id, &args).await,
            "update_task" => self.update(user_id, zone, &args).await,
            "delete_task" => self.delete(user_id, &args).await,
            "list_projects" => self.list_projects(user_id).await,
            _ => self.create_project(user_id, &args).await,
        };
        match outcome {
            Ok(data) => ToolInvocation::succeeded(spec.name, data),
            Err(error) => ToolInvocation::failed(spec.name, error),
        }
    }

    async fn add(&self, user_id: &str, zone: Tz, args: &Map<String, Value>) -> ToolResult {
        let title = text(args, "title").map(str::trim).unwrap_or_default();
        if title.is_empty() {
            return Err("Title is required".into());
        }
        check_title_and_description(Some(title), text(args, "description"))?;
        let mut body = Map::new();
        body.insert("title".into(), title.into());
        if let Some(description) = text(args, "description").map(str::trim)
            && !description.is_empty()
        {
            body.insert("description".into(), description.into());
        }
        if let Some(priority) = text(args, "priority") {
            body.insert("priority".into(), check_priority(priority)?.into());
        }
        if let Some(due) = non_null(args, "due_date") {
            let due = due.as_str().unwrap_or_default();
            body.insert("due_date".into(), parse_due(due, zone)?.to_rfc3339().into());
        }
        copy_extensions(args, &mut body);
        let mut draft = parse_new_task(&Value::Object(body)).map_err(validation_text)?;
        draft.time_zone = zone;
        if let Some(name) = text(args, "project") {
            draft.project_id = Some(self.project_id(user_id, name).await?);
        }
        if let Some(parent) = text(args, "subtask_of") {
            draft.subtask_of = Some(self.parent_id(user_id, parent).await?);
        }
        let task = self
            .service
            .create(user_id, draft)
            .await
            .map_err(engine_text)?;
        Ok(task_summary(&task))
    }

    async fn list(&self, user_id: &str, zone: Tz, args: &Map<String, Value>) -> ToolResult {
        let mut query = TaskQuery::default();
        if let Some(status) = text(args, "status") {
            query.status = match status.trim().to_lowercase().as_str() {
                "all" => StatusFilter::All,
                other => StatusFilter::Only(TaskStatus::parse(other).ok_or_else(|| {
                    format!(
                        "Invalid status: {status}. Must be pending, in_progress, completed, or all"
                    )
                })?),
            };
        }
        if let Some(priority) = text(args, "priority") {
            query.priority = match priority.trim().to_lowercase().as_str() {
                "all" => None,
                other => Some(Priority::parse(other).ok_or_else(|| {
                    format!("Invalid priority: {priority}. Must be low, medium, high, or all")
                })?),
            };
        }
        if let Some(search) = text(args, "search") {
            let needle = search.trim().to_lowercase();
            query.search = (!needle.is_empty()).then_some(needle);
        }
        if let Some(tags) = args.get("tags").and_then(Value::as_array) {
            query.tags = tags
                .iter()
                .filter_map(Value::as_str)
                .map(|tag| tag.trim().to_lowercase())
                .filter(|tag| !tag.is_empty())
                .collect();
        }
        query.is_recurring = args.get("is_recurring").and_then(Value::as_bool);
        if let Some(sort) = text(args, "sort") {
            query.sort = match sort {
                "due_date" => SortField::DueDate,
                "priority" => SortField::Priority,
                "title" => SortField::Title,
                _ => SortField::CreatedAt,
            };
        }
        if text(args, "order") == Some("asc") {
            query.order = SortOrder::Asc;
        }
        if let Some(name) = text(args, "project") {
            query.project = Some(ProjectFilter::In(self.project_id(user_id, name).await?));
        }
        let due_after = optional_instant(args, "due_after", zone)?;
        let due_before = optional_instant(args, "due_before", zone)?;
        let overdue = args.get("overdue").and_then(Value::as_bool);
        let limit = match args.get("limit").and_then(Value::as_i64) {
            None => usize::MAX,
            Some(n @ 1..=1000) => n as usize,
            Some(n) => return Err(format!("Invalid limit: {n}. Must be between 1 and 1000")),
        };
        let now = crate::time::now();
        let tasks = self
            .service
            .list(user_id, &query)
            .await
            .map_err(engine_text)?;
        // Date windows are few per user and cheap to apply here; the store's query stays the
        // REST API's.
        let matches = tasks
            .iter()
            .filter(|task| due_after.is_none_or(|after| task.due_date.is_some_and(|d| d >= after)))
            .filter(|task| {
                due_before.is_none_or(|before| task.due_date.is_some_and(|d| d < before))
            })
            .filter(|task| {
                overdue.is_none_or(|wanted| {
                    let is_overdue = task.status != TaskStatus::Completed
                        && task.due_date.is_some_and(|due| due < now);
                    is_overdue == wanted
                })
            })
            .take(limit)
            .map(task_summary)
            .collect();
        Ok(Value::Array(matches))
    }

    async fn complete(&self, user_id: &str, args: &Map<String, Value>) -> ToolResult {
        let id = task_id(args)?;
        let done = self
            .service
            .complete(user_id, id)
            .await
            .map_err(|error| task_error(error, id))?;
        let mut data = task_summary(&done.completed);
        data["next_task"] = done.next.as_ref().map(task_summary).unwrap_or(Value::Null);
        Ok(data)
    }

    async fn update(&self, user_id: &str, zone: Tz, args: &Map<String, Value>) -> ToolResult {
        let id = task_id(args)?;
        let title = text(args, "title").map(str::trim);
        if title == Some("") {
            return Err("Title cannot be empty".into());
        }
        check_title_and_description(title, text(args, "description"))?;
        let mut body = Map::new();
        if let Some(title) = title {
            body.insert("title".into(), title.into());
        }
        if let Some(description) = args.get("description") {
            let cleared = description.as_str().map(str::trim).unwrap_or_default();
            let value = if cleared.is_empty() {
                Value::Null
            } else {
                cleared.into()
            };
            body.insert("description".into(), value);
        }
        if let Some(status) = text(args, "status") {
            let status = TaskStatus::parse(&status.trim().to_lowercase()).ok_or_else(|| {
                format!("Invalid status: {status}. Must be pending, in_progress, or completed")
            })?;
            body.insert("status".into(), status.as_str().into());
        }
        if let Some(priority) = text(args, "priority") {
            body.insert("priority".into(), check_priority(priority)?.into());
        }
        if let Some(due) = args.get("due_date") {
            let due = due.as_str().map(str::trim).unwrap_or("null");
            let value = if due.is_empty() || due.eq_ignore_ascii_case("null") {
                Value::Null
            } else {
                parse_due(due, zone)?.to_rfc3339().into()
            };
            body.insert("due_date".into(), value);
        }
        copy_extensions(args, &mut body);
        let before = self
            .service
            .get(user_id, id)
            .await
            .map_err(|error| task_error(error, id))?;
        let mut patch = parse_task_patch(&Value::Object(body.clone())).map_err(validation_text)?;
        patch.time_zone = Some(zone);
        let after = self
            .service
            .update(user_id, id, patch)
            .await
            .map_err(|error| task_error(error, id))?;
        let mut data = task_summary(&after);
        // What the changed fields held before, so "undo" can put them back.
        let old = task_summary(&before);
        let previous: Map<String, Value> = body
            .keys()
            .filter_map(|key| old.get(key).map(|value| (key.clone(), value.clone())))
            .collect();
        data["previous"] = Value::Object(previous);
        Ok(data)
    }

    async fn list_projects(&self, user_id: &str) -> ToolResult {
        let projects = self.service.projects(user_id).await.map_err(engine_text)?;
        Ok(Value::Array(projects.iter().map(project_summary).collect()))
    }

    async fn create_project(&self, user_id: &str, args: &Map<String, Value>) -> ToolResult {
        let name = text(args, "name").unwrap_or_default();
        let project = self
            .service
            .create_project(user_id, name)
            .await
            .map_err(engine_text)?;
        // A new project holds nothing yet.
        Ok(project_summary(&ProjectSummary {
            project,
            task_count: 0,
            open_task_count: 0,
        }))
    }

    /// The id of the user's project called `name` (ignoring case and surrounding spaces).
    async fn project_id(&self, user_id: &str, name: &str) -> Result<Uuid, String> {
        match self.service.project_named(user_id, name).await {
            Ok(Some(summary)) => Ok(summary.project.id),
            Ok(None) => Err(format!(
                "Project not found: {}. list_projects shows the user's projects; create_project makes one",
                name.trim()
            )),
            Err(error) => Err(engine_text(error)),
        }
    }

    /// The parent a `subtask_of` argument names: a UUID as it is (the store checks it), else
    /// the one open task with exactly that title (ignoring case), else the one task of any
    /// status with it; none or several is an error naming what to do.
    async fn parent_id(&self, user_id: &str, parent: &str) -> Result<Uuid, String> {
        let wanted = parent.trim();
        if let Ok(id) = Uuid::parse_str(wanted) {
            return Ok(id);
        }
        if wanted.is_empty() {
            return Err("Invalid subtask_of: give the parent task's id or title".into());
        }
        let query = TaskQuery {
            status: StatusFilter::All,
            ..TaskQuery::default()
        };
        let tasks = self
            .service
            .list(user_id, &query)
            .await
            .map_err(engine_text)?;
        let key = wanted.to_lowercase();
        let named: Vec<&Task> = tasks
            .iter()
            .filter(|task| task.title.trim().to_lowercase() == key)
            .collect();
        let open: Vec<&Task> = named
            .iter()
            .copied()
            .filter(|task| task.status != TaskStatus::Completed)
            .collect();
        let pick = if open.is_empty() { named } else { open };
        match pick.as_slice() {
            [one] => Ok(one.id),
            [] => Err(format!(
                "Parent task not found: no task is titled '{wanted}'. Use list_tasks to find its task_id"
            )),
            several => Err(format!(
                "{} tasks are titled '{wanted}'; pass the parent's task_id instead (list_tasks shows them)",
                several.len()
            )),
        }
    }

    async fn delete(&self, user_id: &str, args: &Map<String, Value>) -> ToolResult {
        let id = task_id(args)?;
        let task = self
            .service
            .delete(user_id, id)
            .await
            .map_err(|error| task_error(error, id))?;
        Ok(json!({
            "deleted_id": task.id,
            "deleted_title": task.title,
            "message": format!("Task '{}' deleted successfully", task.title),
            "task": task_summary(&task),
        }))
    }
}

/// Checks that every argument is known and of its declared type. `user_id`, which the reference
/// injected itself, is accepted and ignored.
fn check_arguments(spec: &ToolSpec, arguments: &Value) -> Result<Map<String, Value>, String> {
    let mut args = match arguments {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        _ => return Err("Arguments must be a JSON object".into()),
    };
    args.remove("user_id");
    for (name, value) in &args {
        let Some(param) = spec.params.iter().find(|param| param.name == name) else {
            return Err(format!("Unexpected argument: {name}"));
        };
        let fits = match param.kind {
            _ if value.is_null() => !param.required,
            ParamKind::String | ParamKind::Enum(_) => value.is_string(),
            ParamKind::Integer => {
                value.is_i64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            ParamKind::Boolean => value.is_boolean(),
            ParamKind::StringList => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
        };
        if !fits {
            return Err(format!("Invalid {name}: {value}"));
        }
    }
    if let Some(missing) = spec
        .params
        .iter()
        .find(|param| param.required && !args.contains_key(param.name))
    {
        return Err(match missing.name {
            "title" => "Title is required".to_owned(),
            name => format!("Missing required argument: {name}"),
        });
    }
    Ok(args)
}

fn text<'a>(args: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    args.get(name).and_then(Value::as_str)
}

fn non_null<'a>(args: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    args.get(name).filter(|value| !value.is_null())
}

fn check_title_and_description(
    title: Option<&str>,
    description: Option<&str>,
) -> Result<(), String> {
    if title.is_some_and(|title| title.chars().count() > TITLE_MAX) {
        return Err(format!("Title must be {TITLE_MAX} characters or less"));
    }
    if description.is_some_and(|text| text.trim().chars().count() > DESCRIPTION_MAX) {
        return Err(format!(
            "Description must be {DESCRIPTION_MAX} characters or less"
        ));
    }
    Ok(())
}

fn check_priority(priority: &str) -> Result<&'static str, String> {
    Priority::parse(&priority.trim().to_lowercase())
        .map(Priority::as_str)
        .ok_or_else(|| format!("Invalid priority: {priority}. Must be low, medium, or high"))
}

/// Tags, reminder and recurrence pass to the REST validation unchanged (an integer-valued float
/// from a model becomes an integer).
fn copy_extensions(args: &Map<String, Value>, body: &mut Map<String, Value>) {
    if let Some(tags) = args.get("tags") {
        body.insert("tags".into(), tags.clone());
    }
    if let Some(offset) = args.get("reminder_offset_minutes") {
        let offset = match offset.as_f64() {
            Some(minutes) if offset.as_i64().is_none() => Value::from(minutes as i64),
            _ => offset.clone(),
        };
        body.insert("reminder_offset_minutes".into(), offset);
    }
    if let Some(rule) = args.get("recurrence_rule") {
        let rule = rule.as_str().map(str::trim).unwrap_or_default();
        if rule.is_empty() || rule.eq_ignore_ascii_case("null") || rule.eq_ignore_ascii_case("none")
        {
            body.insert("recurrence_rule".into(), Value::Null);
            body.insert("is_recurring".into(), false.into());
        } else {
            body.insert("recurrence_rule".into(), rule.into());
            body.insert("is_recurring".into(), true.into());
        }
    }
}

/// An ISO 8601 due date: with an offset as given, without one in the user's zone, a date alone
/// at the end of that day.
pub fn parse_due(text: &str, zone: Tz) -> Result<DateTime<Utc>, String> {
    let invalid = || format!("Invalid due_date format: {text}. Use ISO 8601 format");
    let trimmed = text.trim();
    // Only a text with an offset is an instant as it stands; the general parser would read a
    // bare wall-clock time as UTC.
    if let Ok(instant) = DateTime::parse_from_rfc3339(trimmed) {
        return Ok(crate::time::truncate_micros(instant.with_timezone(&Utc)));
    }
    let local = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(trimmed, format).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(trimmed, "%Y-%m-%d")
            .ok()
            .map(|date| date.and_time(NaiveTime::from_hms_opt(23, 59, 0).unwrap_or_default()))
    })
    .ok_or_else(invalid)?;
    from_wall_clock(zone, local).ok_or_else(invalid)
}

fn optional_instant(
    args: &Map<String, Value>,
    name: &str,
    zone: Tz,
) -> Result<Option<DateTime<Utc>>, String> {
    match text(args, name) {
        None => Ok(None),
        Some(value) => parse_due(value, zone)
            .map(Some)
            .map_err(|_| format!("Invalid {name} format: {value}. Use ISO 8601 format")),
    }
}

fn task_id(args: &Map<String, Value>) -> Result<Uuid, String> {
    let raw = text(args, "task_id").unwrap_or_default();
    Uuid::parse_str(raw.trim()).map_err(|_| format!("Invalid task ID format: {raw}"))
}

fn task_error(error: EngineError, id: Uuid) -> String {
    match error {
        EngineError::NotFound => format!("Task not found: {id}"),
        EngineError::Forbidden => "You don't have access to this task".into(),
        other => engine_text(other),
    }
}

fn engine_text(error: EngineError) -> String {
    match error {
        EngineError::Validation(errors) => validation_text(errors),
        other => other.to_string(),
    }
}

/// The REST validation's first complaint, named by field: "recurrence_rule: …".
fn validation_text(errors: crate::error::ValidationErrors) -> String {
    errors
        .0
        .first()
        .map(|error| {
            let field = error
                .loc
                .iter()
                .map(|loc| match loc {
                    crate::error::Loc::Key(key) => key.clone(),
                    crate::error::Loc::Index(index) => index.to_string(),
                })
                .collect::<Vec<_>>()
                .join(".");
            let message = error.msg.trim_start_matches("Value error, ");
            if field.is_empty() {
                message.to_owned()
            } else {
                format!("Invalid {field}: {message}")
            }
        })
        .unwrap_or_else(|| "Invalid input".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_due_date_without_an_offset_is_read_in_the_users_zone() {
        let berlin: Tz = "Europe/Berlin".parse().expect("zone");
        let at = |text: &str, zone| parse_due(text, zone).map(|due| due.to_rfc3339());
        assert_eq!(
            at("2030-03-01T09:00", berlin),
            Ok("2030-03-01T08:00:00+00:00".into())
        );
        assert_eq!(
            at("2030-07-01 09:00:00", berlin),
            Ok("2030-07-01T07:00:00+00:00".into())
        );
        assert_eq!(
            at("2030-03-01", berlin),
            Ok("2030-03-01T22:59:00+00:00".into())
        );
        assert_eq!(
            at("2030-03-01T09:00:00+02:00", berlin),
            Ok("2030-03-01T07:00:00+00:00".into())
        );
        assert_eq!(
            at("2030-03-01T09:00:00Z", berlin),
            Ok("2030-03-01T09:00:00+00:00".into())
        );
        assert_eq!(
            at("2030-03-01T09:00", Tz::UTC),
            Ok("2030-03-01T09:00:00+00:00".into())
        );
        assert!(at("next tuesday", berlin).is_err());
    }
}
