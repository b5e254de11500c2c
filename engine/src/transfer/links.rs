//! The projects and subtask links of an import, made to fit the rules before any task is
//! created: one level of subtasks (a subtask of a subtask, as in a Todoist file with INDENT 3,
//! goes under the top-level task above it), a parent that is neither in the file nor the
//! user's is dropped (the task is imported on its own), and the projects the file names are
//! found by name among the user's or created.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{FileProject, ParentRef, Record};
use crate::error::EngineError;
use crate::project::{Project, name_key};
use crate::service::TaskService;
use crate::task::NewTask;

fn title(record: &Record) -> &str {
    record.body["title"].as_str().unwrap_or("")
}

/// Rewrites each record's `subtask_of` so that it names a top-level task: in the file (by
/// index) or one of the user's (by id); links that cannot be kept are dropped with a warning.
pub async fn flatten_subtasks(
    drafts: &mut [(Record, NewTask)],
    service: &TaskService,
    user: &str,
    warnings: &mut Vec<String>,
) -> Result<(), EngineError> {
    let in_file: HashMap<Uuid, usize> = drafts
        .iter()
        .enumerate()
        .filter_map(|(index, (record, _))| record.id.map(|id| (id, index)))
        .collect();
    let local = |parent: ParentRef| match parent {
        ParentRef::Id(id) => in_file.get(&id).copied(),
        ParentRef::Index(index) => (index < drafts.len()).then_some(index),
    };
    let mut fixed = Vec::with_capacity(drafts.len());
    for (index, (record, _)) in drafts.iter().enumerate() {
        let Some(parent) = record.subtask_of else {
            fixed.push(None);
            continue;
        };
        let at = &record.at;
        if let Some(mut top) = local(parent) {
            // Up to the top-level ancestor; a loop (a hand-made file) drops the link.
            let mut steps = 0;
            while let Some(up) = drafts[top].0.subtask_of.and_then(local) {
                top = up;
                steps += 1;
                if steps > drafts.len() {
                    break;
                }
            }
            if top == index || steps > drafts.len() {
                warnings.push(format!(
                    "{at}: its subtask links go round in a circle; imported as a task of its own"
                ));
                fixed.push(None);
            } else {
                if steps > 0 {
                    warnings.push(format!(
                        "{at}: “{}” is a subtask of a subtask; it is now a subtask of “{}” (subtasks are one level deep)",
                        title(record),
                        title(&drafts[top].0)
                    ));
                }
                fixed.push(Some(ParentRef::Index(top)));
            }
            continue;
        }
        let ParentRef::Id(id) = parent else {
            fixed.push(None);
            continue;
        };
        match service.store().get(id).await? {
            Some(task) if task.user_id == user => match task.subtask_of {
                Some(grandparent) => {
                    warnings.push(format!(
                        "{at}: its parent is a subtask; it is now a subtask of that task's parent (subtasks are one level deep)"
                    ));
                    fixed.push(Some(ParentRef::Id(grandparent)));
                }
                None => fixed.push(Some(parent)),
            },
            _ => {
                warnings.push(format!(
                    "{at}: its parent task {id} is neither in the file nor yours; imported as a task of its own"
                ));
                fixed.push(None);
            }
        }
    }
    for ((record, _), link) in drafts.iter_mut().zip(fixed) {
        record.subtask_of = link;
    }
    Ok(())
}

/// The distinct projects (by name, ignoring case) the top-level records will be in: their own,
/// else `default`.
pub fn projects(drafts: &[(Record, NewTask)], default: Option<&FileProject>) -> Vec<FileProject> {
    let mut found: Vec<FileProject> = Vec::new();
    for (record, _) in drafts
        .iter()
        .filter(|(record, _)| record.subtask_of.is_none())
    {
        let Some(project) = record.project.as_ref().or(default) else {
            continue;
        };
        if !found
            .iter()
            .any(|known| name_key(&known.name) == name_key(&project.name))
        {
            found.push(project.clone());
        }
    }
    found
}

/// The user's project for each of `wanted` (by name key): the existing one of that name, else
/// a new one, with the file's id and times when they are free to use.
pub async fn create_projects(
    wanted: Vec<FileProject>,
    service: &TaskService,
    user: &str,
    now: DateTime<Utc>,
) -> Result<HashMap<String, Uuid>, EngineError> {
    let mut ids: HashMap<String, Uuid> = HashMap::new();
    if wanted.is_empty() {
        return Ok(ids);
    }
    for summary in service.projects(user).await? {
        ids.insert(name_key(&summary.project.name), summary.project.id);
    }
    for project in wanted {
        let key = name_key(&project.name);
        if ids.contains_key(&key) {
            continue;
        }
        let mut new = Project::new(user, project.name.clone(), now);
        if let Some(id) = project.id
            && service.store().project(id).await?.is_none()
        {
            new.id = id;
        }
        new.created_at = project.created_at.unwrap_or(now);
        new.updated_at = project.updated_at.unwrap_or(new.created_at);
        let stored = service.store().insert_project(new).await?;
        ids.insert(key, stored.id);
    }
    Ok(ids)
}
