//! The rules of projects and subtasks as pure functions of what the store found, so both
//! stores apply them identically inside their transactions.

use chrono::{DateTime, Utc};

use super::{NAME_TAKEN, ONE_LEVEL, PROJECTS_MAX, Project, SUBTASKS_MAX, name_key};
use crate::error::EngineError;
use crate::event::{OutboxEvent, TaskAction, task_events};
use crate::task::Task;

/// A new project may be added: the user has fewer than [`PROJECTS_MAX`] and none of that name.
pub fn check_new_project(existing: u64, name_taken: bool) -> Result<(), EngineError> {
    if name_taken {
        Err(EngineError::Conflict(NAME_TAKEN.to_owned()))
    } else if existing >= PROJECTS_MAX {
        Err(EngineError::Conflict(format!(
            "A user has at most {PROJECTS_MAX} projects"
        )))
    } else {
        Ok(())
    }
}

/// The project `user_id` addresses by id: its own, else 403 (another user's) or 404.
pub fn owned(project: Option<Project>, user_id: &str) -> Result<Project, EngineError> {
    match project {
        None => Err(EngineError::ProjectNotFound),
        Some(project) if project.user_id != user_id => Err(EngineError::Forbidden),
        Some(project) => Ok(project),
    }
}

/// A project named in a task (`project_id` of a body or a move): another user's is as unknown
/// as a missing one.
pub fn referenced(project: Option<&Project>, user_id: &str) -> Result<(), EngineError> {
    match project {
        Some(project) if project.user_id == user_id => Ok(()),
        _ => Err(EngineError::ProjectNotFound),
    }
}

/// Renames `project`, unless another of the user's projects has the name.
pub fn rename(
    mut project: Project,
    name: String,
    taken_by_another: bool,
    now: DateTime<Utc>,
) -> Result<Project, EngineError> {
    if taken_by_another {
        return Err(EngineError::Conflict(NAME_TAKEN.to_owned()));
    }
    project.name = name;
    project.updated_at = now;
    Ok(project)
}

/// The parent a new subtask names, as the store found it, with how many subtasks it has.
pub struct Parent<'a> {
    pub task: &'a Task,
    pub subtasks: u64,
}

/// Checks a new task's links and completes them: a subtask's parent must be one of the user's
/// top-level tasks with room for one more, and the subtask goes into the parent's project
/// (naming another project is a conflict); a project must be the user's. `parent` and
/// `project` are what the store found for `task.subtask_of` and `task.project_id`.
pub fn place(
    task: &mut Task,
    parent: Option<Parent<'_>>,
    project: Option<&Project>,
) -> Result<(), EngineError> {
    if task.subtask_of.is_some() {
        let parent = parent
            .filter(|parent| parent.task.user_id == task.user_id)
            .ok_or(EngineError::ParentNotFound)?;
        if parent.task.subtask_of.is_some() {
            return Err(EngineError::Conflict(ONE_LEVEL.to_owned()));
        }
        if parent.subtasks >= SUBTASKS_MAX {
            return Err(EngineError::Conflict(format!(
                "A task has at most {SUBTASKS_MAX} subtasks"
            )));
        }
        match task.project_id {
            Some(asked) if Some(asked) != parent.task.project_id => {
                return Err(EngineError::Conflict(
                    "A subtask is in its parent's project".to_owned(),
                ));
            }
            _ => task.project_id = parent.task.project_id,
        }
        return Ok(());
    }
    if task.project_id.is_some() {
        referenced(project, &task.user_id)?;
    }
    Ok(())
}

/// Takes the tasks of a deleted project out of it, each with a `task.updated`.
pub fn release(mut tasks: Vec<Task>, now: DateTime<Utc>) -> (Vec<Task>, Vec<OutboxEvent>) {
    let mut events = Vec::with_capacity(tasks.len() * 2);
    for task in &mut tasks {
        task.project_id = None;
        task.updated_at = now;
        events.extend(task_events(TaskAction::Updated, task, now));
    }
    (tasks, events)
}

/// Whether two names are the same project name.
pub fn same_name(a: &str, b: &str) -> bool {
    name_key(a) == name_key(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{NewTask, ops};

    fn task(user: &str, title: &str) -> Task {
        ops::create(user, NewTask::titled(title), crate::time::now())
            .expect("valid")
            .0
    }

    #[test]
    fn a_subtask_takes_its_parents_project() {
        let project = Project::new("alice", "Home".into(), crate::time::now());
        let mut parent = task("alice", "fix sink");
        parent.project_id = Some(project.id);
        let mut child = task("alice", "call plumber");
        child.subtask_of = Some(parent.id);
        place(
            &mut child,
            Some(Parent {
                task: &parent,
                subtasks: 0,
            }),
            None,
        )
        .expect("placed");
        assert_eq!(child.project_id, Some(project.id));

        let mut other = task("alice", "x");
        other.subtask_of = Some(parent.id);
        other.project_id = Some(uuid::Uuid::new_v4());
        assert!(matches!(
            place(
                &mut other,
                Some(Parent {
                    task: &parent,
                    subtasks: 0
                }),
                None
            ),
            Err(EngineError::Conflict(_))
        ));
    }

    #[test]
    fn one_level_a_bounded_number_and_only_ones_own() {
        let parent = task("alice", "parent");
        let mut sub = task("alice", "sub");
        sub.subtask_of = Some(parent.id);
        let mut deeper = task("alice", "deeper");
        deeper.subtask_of = Some(sub.id);
        assert!(matches!(
            place(&mut deeper, Some(Parent { task: &sub, subtasks: 0 }), None),
            Err(EngineError::Conflict(message)) if message == ONE_LEVEL
        ));
        let mut full = task("alice", "one too many");
        full.subtask_of = Some(parent.id);
        assert!(matches!(
            place(
                &mut full,
                Some(Parent {
                    task: &parent,
                    subtasks: SUBTASKS_MAX
                }),
                None
            ),
            Err(EngineError::Conflict(_))
        ));
        let mut foreign = task("mallory", "sneaky");
        foreign.subtask_of = Some(parent.id);
        assert!(matches!(
            place(
                &mut foreign,
                Some(Parent {
                    task: &parent,
                    subtasks: 0
                }),
                None
            ),
            Err(EngineError::ParentNotFound)
        ));
        let mut orphan = task("alice", "orphan");
        orphan.subtask_of = Some(uuid::Uuid::new_v4());
        assert!(matches!(
            place(&mut orphan, None, None),
            Err(EngineError::ParentNotFound)
        ));
    }

    #[test]
    fn a_project_must_be_the_users() {
        let theirs = Project::new("bob", "Bob's".into(), crate::time::now());
        let mut mine = task("alice", "t");
        mine.project_id = Some(theirs.id);
        assert!(matches!(
            place(&mut mine, None, Some(&theirs)),
            Err(EngineError::ProjectNotFound)
        ));
        assert!(matches!(
            owned(Some(theirs.clone()), "alice"),
            Err(EngineError::Forbidden)
        ));
        assert!(owned(Some(theirs), "bob").is_ok());
    }

    #[test]
    fn limits_and_names() {
        assert!(check_new_project(PROJECTS_MAX - 1, false).is_ok());
        assert!(check_new_project(PROJECTS_MAX, false).is_err());
        assert!(check_new_project(0, true).is_err());
        assert!(same_name(" Groceries", "groceries"));
    }
}
