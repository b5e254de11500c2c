//! The engine's error type and the pydantic-shaped validation errors clients already understand.

use serde::Serialize;
use serde_json::Value;

/// One segment of an error location: a field name or a list index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Loc {
    Key(String),
    Index(usize),
}

impl From<&str> for Loc {
    fn from(key: &str) -> Self {
        Loc::Key(key.to_owned())
    }
}

/// One validation failure, shaped like the reference framework's errors so clients parse it unchanged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub loc: Vec<Loc>,
    pub msg: String,
    pub input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Value>,
}

impl FieldError {
    pub fn new(kind: &'static str, loc: Vec<Loc>, msg: impl Into<String>, input: Value) -> Self {
        Self {
            kind,
            loc,
            msg: msg.into(),
            input,
            ctx: None,
        }
    }

    pub fn with_ctx(mut self, ctx: Value) -> Self {
        self.ctx = Some(ctx);
        self
    }

    /// A failure of one of our own rules (the reference's custom validators).
    pub fn value_error(loc: Vec<Loc>, message: &str, input: Value) -> Self {
        Self::new("value_error", loc, format!("Value error, {message}"), input)
            .with_ctx(serde_json::json!({ "error": message }))
    }
}

/// Every validation failure found in one input, reported together.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// Prefixes every location, e.g. with `body` or `query`, once the source of the input is known.
    pub fn located_in(mut self, root: &str) -> Self {
        for error in &mut self.0 {
            error.loc.insert(0, Loc::from(root));
        }
        self
    }
}

/// What can go wrong in the engine, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid input")]
    Validation(ValidationErrors),
    #[error("Reminder requires a due date")]
    ReminderRequiresDueDate,
    #[error("Task not found")]
    NotFound,
    #[error("Not authorized to access this resource")]
    Forbidden,
    #[error("Notification not found")]
    NotificationNotFound,
    #[error("Project not found")]
    ProjectNotFound,
    /// The task a new subtask names (`subtask_of`) is missing or another user's.
    #[error("Parent task not found")]
    ParentNotFound,
    /// The request is valid but the state does not allow it (e.g. snoozing a finished task).
    #[error("{0}")]
    Conflict(String),
    /// The user made more writes than the configured limit allows; retry after the seconds given.
    #[error("Too many task changes; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store failure: {0}")]
    Store(String),
}

impl From<ValidationErrors> for EngineError {
    fn from(errors: ValidationErrors) -> Self {
        EngineError::Validation(errors)
    }
}
