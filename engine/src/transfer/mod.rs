//! Your data in and out: export a user's tasks as lossless JSON, CSV or iCalendar (VTODO), and
//! import those or a Todoist CSV export. Reading a file only turns it into import records; the
//! import itself ([`import`]) goes through the task service, so imported tasks get their
//! events, reminders and recurrence like any other.

pub mod csv;
pub mod ical;
pub mod ics;
pub mod json;
pub mod table;
pub mod todoist;

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{EngineError, FieldError, Loc, ValidationErrors};
use crate::service::TaskService;
use crate::task::Task;
use crate::task::input::parse_new_task;
use crate::task::ops::Kept;

/// Largest file an import reads (the API's body limit for `POST /api/import`).
pub const IMPORT_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Most tasks one import creates.
pub const IMPORT_MAX_TASKS: usize = 10_000;
/// Most problems an import refusal lists.
const ERRORS_SHOWN: usize = 50;

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// taskstream's own, lossless.
    Json,
    /// One task a row, with a header (spreadsheets).
    Csv,
    /// RFC 5545 VTODOs with RRULE, DUE, VALARM, PRIORITY, STATUS, CATEGORIES.
    Ical,
    /// Todoist's project export (import only).
    Todoist,
}

impl Format {
    pub const ALL: [Format; 4] = [Self::Json, Self::Csv, Self::Ical, Self::Todoist];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Ical => "ics",
            Self::Todoist => "todoist",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "csv" => Some(Self::Csv),
            "ics" | "ical" | "icalendar" => Some(Self::Ical),
            "todoist" => Some(Self::Todoist),
            _ => None,
        }
    }

    /// The format a file name says, by its extension (`.ics`, `.csv`, `.json`).
    pub fn of_file_name(name: &str) -> Option<Self> {
        let extension = name.rsplit_once('.')?.1;
        match extension.to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "csv" => Some(Self::Csv),
            "ics" | "ical" => Some(Self::Ical),
            _ => None,
        }
    }

    /// The `Content-Type` of an export.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Csv | Self::Todoist => "text/csv; charset=utf-8",
            Self::Ical => "text/calendar; charset=utf-8",
        }
    }

    /// Whether tasks can be written in this format (Todoist's is read only).
    pub fn exportable(self) -> bool {
        self != Self::Todoist
    }
}

/// One task read from a file, before validation: the `POST /api/tasks` body and what an
/// import keeps besides.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Where it is in the file, for errors: "line 7", "task 3".
    pub at: String,
    /// Its id in the file, if it has one.
    pub id: Option<Uuid>,
    pub body: Value,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub series_anchor: Option<DateTime<Utc>>,
    pub occurrence_index: u32,
    pub time_zone: Option<Tz>,
    /// The recurring series' previous occurrence (by its id in the file).
    pub parent_task_id: Option<Uuid>,
}

impl Record {
    pub fn new(at: String, body: Value) -> Self {
        Record {
            at,
            id: None,
            body,
            created_at: None,
            updated_at: None,
            series_anchor: None,
            occurrence_index: 0,
            time_zone: None,
            parent_task_id: None,
        }
    }
}

/// What reading a file gave: the records, and what was left out on the way.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    pub records: Vec<Record>,
    pub warnings: Vec<String>,
}

/// A file that cannot be imported, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct FileError {
    pub at: String,
    pub message: String,
}

impl FileError {
    pub fn new(at: impl Into<String>, message: impl Into<String>) -> Self {
        FileError {
            at: at.into(),
            message: message.into(),
        }
    }

    fn validation(errors: Vec<FileError>) -> EngineError {
        EngineError::Validation(ValidationErrors(
            errors
                .into_iter()
                .map(|error| {
                    FieldError::new(
                        "value_error",
                        vec![Loc::from("body"), Loc::Key(error.at.clone())],
                        error.to_string(),
                        Value::Null,
                    )
                })
                .collect(),
        ))
    }
}

/// The local time a date without a time is taken at (as the assistant does).
pub fn default_time() -> NaiveTime {
    let (hour, minute) = crate::assistant::offline::dates::DEFAULT_TIME;
    NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or(NaiveTime::MIN)
}

/// Reads `text` as `format`; dates without a zone are read in `zone`.
pub fn parse(
    format: Format,
    text: &str,
    now: DateTime<Utc>,
    zone: Tz,
) -> Result<Parsed, EngineError> {
    if text.len() > IMPORT_MAX_BYTES {
        return Err(FileError::validation(vec![FileError::new(
            "file",
            format!("larger than {IMPORT_MAX_BYTES} bytes; split it"),
        )]));
    }
    let parsed = match format {
        Format::Json => json::read(text),
        Format::Csv => table::read(text),
        Format::Ical => ical::read(text, zone),
        Format::Todoist => todoist::read(text, now, zone),
    }
    .map_err(|error| FileError::validation(vec![error]))?;
    if parsed.records.len() > IMPORT_MAX_TASKS {
        return Err(FileError::validation(vec![FileError::new(
            "file",
            format!(
                "{} tasks; at most {IMPORT_MAX_TASKS} are imported at once: split it",
                parsed.records.len()
            ),
        )]));
    }
    Ok(parsed)
}

/// Writes `tasks` as `format` (not Todoist's).
pub fn export(format: Format, tasks: &[Task], user_id: &str, now: DateTime<Utc>) -> String {
    match format {
        Format::Json => json::write(tasks, user_id, now),
        Format::Csv | Format::Todoist => table::write(tasks),
        Format::Ical => ical::write(tasks, now),
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Default, Serialize, ToSchema)]
pub struct ImportReport {
    /// Tasks created.
    pub created: usize,
    /// Tasks already there (same id, yours): an import never overwrites, so importing the same
    /// file again creates nothing new.
    pub skipped: usize,
    /// What the file held that taskstream keeps no place for (Todoist sections, comments...).
    pub warnings: Vec<String>,
    /// The ids of the tasks created, in file order.
    #[schema(value_type = Vec<String>)]
    pub ids: Vec<Uuid>,
}

/// A record's id for `user`: its own when free or already the user's; otherwise (another
/// user's task has it) one derived from the user and the id, the same on every import. A
/// record without an id gets one derived from the user, the file position and its content,
/// so importing the same file twice finds the tasks of the first time.
fn id_for(user: &str, record: &Record, taken_by_other: bool) -> Uuid {
    match record.id {
        Some(id) if !taken_by_other => id,
        Some(id) => Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{user}\n{id}").as_bytes()),
        None => Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("{user}\n{}\n{}", record.at, record.body).as_bytes(),
        ),
    }
}

/// Imports `parsed` for `user`: every record is validated first (nothing is created when one
/// is invalid; the refusal names each bad record), then each task is created with its events
/// and reminders, parents of a series before their next occurrences. Tasks whose id the user
/// already has are skipped.
pub async fn import(
    service: &TaskService,
    user: &str,
    parsed: Parsed,
    zone: Tz,
) -> Result<ImportReport, EngineError> {
    let now = crate::time::now();
    let mut errors = Vec::new();
    let mut drafts = Vec::new();
    for record in parsed.records {
        match parse_new_task(&record.body) {
            Ok(mut draft) => {
                draft.time_zone = record.time_zone.unwrap_or(zone);
                drafts.push((record, draft));
            }
            Err(invalid) => {
                for error in invalid.0 {
                    let field = error
                        .loc
                        .iter()
                        .map(|loc| match loc {
                            Loc::Key(key) => key.clone(),
                            Loc::Index(index) => index.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(".");
                    errors.push(FileError::new(
                        record.at.clone(),
                        format!("{field}: {}", error.msg),
                    ));
                }
            }
        }
    }
    if !errors.is_empty() {
        errors.truncate(ERRORS_SHOWN);
        return Err(FileError::validation(errors));
    }
    // Ids: the file's (or derived ones), with references to them mapped the same way.
    let mut mapped = std::collections::HashMap::new();
    for (record, _) in &drafts {
        let taken_by_other = match record.id {
            Some(id) => service
                .store()
                .get(id)
                .await?
                .is_some_and(|task| task.user_id != user),
            None => false,
        };
        let id = id_for(user, record, taken_by_other);
        if let Some(original) = record.id {
            mapped.insert(original, id);
        }
        mapped.insert(id, id);
    }
    let mut report = ImportReport {
        warnings: parsed.warnings,
        ..ImportReport::default()
    };
    service.allow_write(user)?;
    for (record, draft) in order_parents_first(drafts) {
        let id = match record.id.and_then(|original| mapped.get(&original)) {
            Some(id) => *id,
            None => id_for(user, &record, false),
        };
        if service.store().get(id).await?.is_some() {
            report.skipped += 1;
            continue;
        }
        let parent = match record.parent_task_id.and_then(|parent| mapped.get(&parent)) {
            Some(parent) => Some(*parent),
            None => match record.parent_task_id {
                // A parent outside the file counts when the user has it.
                Some(parent) => service
                    .store()
                    .get(parent)
                    .await?
                    .filter(|task| task.user_id == user)
                    .map(|task| task.id),
                None => None,
            },
        };
        let kept = Kept {
            id,
            created_at: record.created_at,
            updated_at: record.updated_at,
            series_anchor: record.series_anchor,
            occurrence_index: record.occurrence_index,
            time_zone: record.time_zone,
            parent_task_id: parent,
        };
        let task =
            service
                .import_one(user, draft, kept, now)
                .await
                .map_err(|error| match error {
                    EngineError::Validation(_) | EngineError::ReminderRequiresDueDate => {
                        FileError::validation(vec![FileError::new(
                            record.at.clone(),
                            error.to_string(),
                        )])
                    }
                    other => other,
                })?;
        report.created += 1;
        report.ids.push(task.id);
    }
    Ok(report)
}

/// The records with every series parent before its next occurrence (a next occurrence names
/// its previous one, which must exist first).
fn order_parents_first(
    drafts: Vec<(Record, crate::task::NewTask)>,
) -> Vec<(Record, crate::task::NewTask)> {
    let mut pending = drafts;
    let mut done: std::collections::HashSet<Uuid> = std::collections::HashSet::new();
    let in_file: std::collections::HashSet<Uuid> =
        pending.iter().filter_map(|(record, _)| record.id).collect();
    let mut ordered = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let (ready, waiting): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(record, _)| {
            record
                .parent_task_id
                .is_none_or(|parent| !in_file.contains(&parent) || done.contains(&parent))
        });
        if ready.is_empty() {
            // A cycle (only a hand-made file has one): take the rest as they come.
            ordered.extend(waiting);
            break;
        }
        for (record, draft) in ready {
            if let Some(id) = record.id {
                done.insert(id);
            }
            ordered.push((record, draft));
        }
        pending = waiting;
    }
    ordered
}
