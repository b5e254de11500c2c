//! Your data in and out: export a user's tasks as lossless JSON, CSV or iCalendar (VTODO), and
//! import those or a Todoist CSV export. Reading a file only turns it into import records; the
//! import itself ([`import`]) goes through the task service, so imported tasks get their
//! events, reminders and recurrence like any other.

pub mod csv;
pub mod ical;
pub mod ics;
pub mod json;
mod links;
pub mod table;
pub mod todoist;

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{EngineError, FieldError, Loc, ValidationErrors};
use crate::project::{Project, name_key};
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
    /// The project the task is in (ignored for a subtask, which is in its parent's).
    pub project: Option<FileProject>,
    /// The task this one is a subtask of.
    pub subtask_of: Option<ParentRef>,
}

/// A project named in a file: by name, the key every format can carry (the importing user's
/// project of that name, ignoring case, is used, else one is created), with the id and times
/// taskstream's JSON export keeps so that a project comes back as it was.
#[derive(Debug, Clone, PartialEq)]
pub struct FileProject {
    pub id: Option<Uuid>,
    pub name: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl FileProject {
    pub fn named(name: impl Into<String>) -> Self {
        FileProject {
            id: None,
            name: name.into(),
            created_at: None,
            updated_at: None,
        }
    }
}

/// How a record names its parent task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentRef {
    /// By id: a record of the file with that id, or one of the importing user's tasks.
    Id(Uuid),
    /// By position: the record at this index of [`Parsed::records`] (formats without ids,
    /// such as Todoist's).
    Index(usize),
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
            project: None,
            subtask_of: None,
        }
    }
}

/// What reading a file gave: the records, and what was left out on the way.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    pub records: Vec<Record>,
    pub warnings: Vec<String>,
    /// The project for the records that name none (the import's `project` option, e.g. a
    /// Todoist file's project); set by the caller, not read from the file.
    pub project: Option<String>,
    /// Every project the file lists, those without tasks too (taskstream's JSON export).
    pub projects: Vec<FileProject>,
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

/// Writes `tasks` as `format` (not Todoist's), with the names of the user's `projects` they
/// are in.
pub fn export(
    format: Format,
    tasks: &[Task],
    projects: &[Project],
    user_id: &str,
    now: DateTime<Utc>,
) -> String {
    match format {
        Format::Json => json::write(tasks, projects, user_id, now),
        Format::Csv | Format::Todoist => table::write(tasks, projects),
        Format::Ical => ical::write_with_projects(tasks, projects, now),
    }
}

/// The name of the project `id` among `projects`.
pub fn project_name(projects: &[Project], id: Option<Uuid>) -> Option<&str> {
    let id = id?;
    projects
        .iter()
        .find(|project| project.id == id)
        .map(|project| project.name.as_str())
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
    let mut warnings = parsed.warnings;
    let default_project = match parsed.project.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(name) => match crate::project::input::normalise_name(name) {
            Ok(name) => Some(FileProject::named(name)),
            Err(message) => {
                errors.push(FileError::new("project", message));
                None
            }
        },
    };
    for (record, _) in &mut drafts {
        if let Some(project) = &mut record.project {
            match crate::project::input::normalise_name(&project.name) {
                Ok(name) => project.name = name,
                Err(message) => errors.push(FileError::new(
                    record.at.clone(),
                    format!("project: {message}"),
                )),
            }
        }
    }
    if !errors.is_empty() {
        errors.truncate(ERRORS_SHOWN);
        return Err(FileError::validation(errors));
    }
    links::flatten_subtasks(&mut drafts, service, user, &mut warnings).await?;
    let mut projects = links::projects(&drafts, default_project.as_ref());
    for project in parsed.projects {
        match crate::project::input::normalise_name(&project.name) {
            Ok(name)
                if !projects
                    .iter()
                    .any(|known| name_key(&known.name) == name_key(&name)) =>
            {
                projects.push(FileProject { name, ..project });
            }
            Ok(_) => {}
            Err(message) => {
                return Err(FileError::validation(vec![FileError::new(
                    "projects",
                    format!("{}: {message}", project.name),
                )]));
            }
        }
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
        warnings,
        ..ImportReport::default()
    };
    service.allow_write(user)?;
    let ids_by_index: Vec<Uuid> = drafts
        .iter()
        .map(
            |(record, _)| match record.id.and_then(|original| mapped.get(&original)) {
                Some(id) => *id,
                None => id_for(user, record, false),
            },
        )
        .collect();
    let projects = links::create_projects(projects, service, user, now).await?;
    for (record, mut draft) in order_parents_first(drafts) {
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
        draft.subtask_of = match record.subtask_of {
            Some(ParentRef::Index(index)) => ids_by_index.get(index).copied(),
            Some(ParentRef::Id(parent)) => Some(mapped.get(&parent).copied().unwrap_or(parent)),
            None => None,
        };
        // A subtask is in its parent's project, whatever the file says.
        draft.project_id = match draft.subtask_of {
            Some(_) => None,
            None => record
                .project
                .as_ref()
                .or(default_project.as_ref())
                .and_then(|project| projects.get(&name_key(&project.name)).copied()),
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
                    EngineError::Validation(_)
                    | EngineError::ReminderRequiresDueDate
                    | EngineError::Conflict(_)
                    | EngineError::ParentNotFound => FileError::validation(vec![FileError::new(
                        record.at.clone(),
                        error.to_string(),
                    )]),
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
    // Each record is keyed by its index; a parent is "in the file" by id or by index.
    let in_file: std::collections::HashMap<Uuid, usize> = drafts
        .iter()
        .enumerate()
        .filter_map(|(index, (record, _))| record.id.map(|id| (id, index)))
        .collect();
    let parents = |record: &Record| -> Vec<usize> {
        let mut found = Vec::new();
        if let Some(parent) = record.parent_task_id.and_then(|id| in_file.get(&id)) {
            found.push(*parent);
        }
        match record.subtask_of {
            Some(ParentRef::Id(id)) => found.extend(in_file.get(&id)),
            Some(ParentRef::Index(index)) => found.push(index),
            None => {}
        }
        found
    };
    let mut pending: Vec<(usize, (Record, crate::task::NewTask))> =
        drafts.into_iter().enumerate().collect();
    let mut done: std::collections::HashSet<usize> = std::collections::HashSet::new();
    let mut ordered = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let (ready, waiting): (Vec<_>, Vec<_>) =
            pending.into_iter().partition(|(index, (record, _))| {
                parents(record)
                    .iter()
                    .all(|parent| parent == index || done.contains(parent))
            });
        if ready.is_empty() {
            // A cycle (only a hand-made file has one): take the rest as they come.
            ordered.extend(waiting.into_iter().map(|(_, draft)| draft));
            break;
        }
        for (index, draft) in ready {
            done.insert(index);
            ordered.push(draft);
        }
        pending = waiting;
    }
    ordered
}
