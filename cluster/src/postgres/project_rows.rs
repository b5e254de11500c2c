//! Rows of projects, the placement of a new task's links, subtask counts, and the per-user
//! advisory lock that orders them.
//!
//! Locking: every task write of a user first takes that user's advisory lock, shared for a
//! change of one task, exclusive for a change that touches several tasks or their links
//! (placing a task in a project or under a parent, deleting a task with its subtasks, moving
//! a task with its subtasks, a project's creation, rename and deletion). Row locks come after,
//! so two replicas changing one user's links run one after the other, and a single-task
//! change (a recurring subtask's completion inserting its next occurrence under the parent)
//! never waits on rows a link change holds while that change waits on it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

use super::error::PgError;
use super::rows;
use taskstream_engine::EngineError;
use taskstream_engine::event::OutboxEvent;
use taskstream_engine::project::rules::{self, Parent};
use taskstream_engine::project::{
    Project, ProjectDeletion, ProjectSummary, SubtaskCount, name_key,
};
use taskstream_engine::task::Task;

/// Mixed into each user's advisory lock key ("tsuser").
const USER_LOCK: i64 = 0x0000_7473_7573_6572;

/// How a write holds its user's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UserLock {
    /// A change of one task.
    Shared,
    /// A change of several tasks or of links.
    Exclusive,
}

/// Takes `user_id`'s advisory lock until the transaction ends.
pub(crate) async fn lock_user(
    client: &impl GenericClient,
    schema_hash: i64,
    user_id: &str,
    mode: UserLock,
) -> Result<(), PgError> {
    let key = USER_LOCK ^ schema_hash ^ super::fnv1a(user_id).rotate_left(17);
    let sql = match mode {
        UserLock::Shared => "SELECT pg_advisory_xact_lock_shared($1)",
        UserLock::Exclusive => "SELECT pg_advisory_xact_lock($1)",
    };
    let statement = client.prepare_cached(sql).await?;
    client.execute(&statement, &[&key]).await?;
    Ok(())
}

const SUMMARY: &str = "SELECT p.id, p.user_id, p.name, p.created_at, p.updated_at,
    (SELECT count(*) FROM tasks AS t WHERE t.project_id = p.id),
    (SELECT count(*) FROM tasks AS t WHERE t.project_id = p.id AND t.status <> 'completed')
    FROM projects AS p";

fn project_from_row(row: &Row) -> Result<Project, PgError> {
    Ok(Project {
        id: row.try_get(0)?,
        user_id: row.try_get(1)?,
        name: row.try_get(2)?,
        created_at: row.try_get(3)?,
        updated_at: row.try_get(4)?,
    })
}

fn summary_from_row(row: &Row) -> Result<ProjectSummary, PgError> {
    let tasks: i64 = row.try_get(5)?;
    let open: i64 = row.try_get(6)?;
    Ok(ProjectSummary {
        project: project_from_row(row)?,
        task_count: u64::try_from(tasks).map_err(|_| PgError::Corrupt("project count"))?,
        open_task_count: u64::try_from(open).map_err(|_| PgError::Corrupt("project count"))?,
    })
}

pub(crate) async fn load(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<Project>, PgError> {
    let statement = client
        .prepare_cached(
            "SELECT id, user_id, name, created_at, updated_at FROM projects WHERE id = $1",
        )
        .await?;
    client
        .query_opt(&statement, &[&id])
        .await?
        .as_ref()
        .map(project_from_row)
        .transpose()
}

pub(crate) async fn summary(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<ProjectSummary>, PgError> {
    let statement = client
        .prepare_cached(&format!("{SUMMARY} WHERE p.id = $1"))
        .await?;
    client
        .query_opt(&statement, &[&id])
        .await?
        .as_ref()
        .map(summary_from_row)
        .transpose()
}

/// One user's projects, ordered like SQLite orders them (bytes of the lower-cased name).
pub(crate) async fn list(
    client: &impl GenericClient,
    user_id: &str,
) -> Result<Vec<ProjectSummary>, PgError> {
    let statement = client
        .prepare_cached(&format!(
            "{SUMMARY} WHERE p.user_id = $1 ORDER BY p.name_key COLLATE \"C\", p.id"
        ))
        .await?;
    client
        .query(&statement, &[&user_id])
        .await?
        .iter()
        .map(summary_from_row)
        .collect()
}

async fn name_taken(
    client: &impl GenericClient,
    user_id: &str,
    name: &str,
    except: Option<Uuid>,
) -> Result<bool, PgError> {
    let statement = client
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM projects WHERE user_id = $1 AND name_key = $2 AND id IS DISTINCT FROM $3)",
        )
        .await?;
    Ok(client
        .query_one(&statement, &[&user_id, &name_key(name), &except])
        .await?
        .try_get(0)?)
}

/// Inserts a project (under its user's exclusive lock).
pub(crate) async fn insert(
    client: &impl GenericClient,
    project: &Project,
) -> Result<(), EngineError> {
    let count = client
        .prepare_cached("SELECT count(*) FROM projects WHERE user_id = $1")
        .await
        .map_err(PgError::from)?;
    let existing: i64 = client
        .query_one(&count, &[&project.user_id])
        .await
        .map_err(PgError::from)?
        .try_get(0)
        .map_err(PgError::from)?;
    let taken = name_taken(client, &project.user_id, &project.name, None).await?;
    rules::check_new_project(u64::try_from(existing).unwrap_or_default(), taken)?;
    let insert = client
        .prepare_cached(
            "INSERT INTO projects (id, user_id, name, name_key, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await
        .map_err(PgError::from)?;
    client
        .execute(
            &insert,
            &[
                &project.id,
                &project.user_id,
                &project.name,
                &name_key(&project.name),
                &project.created_at,
                &project.updated_at,
            ],
        )
        .await
        .map_err(PgError::from)?;
    Ok(())
}

/// Renames one of the user's projects (under their exclusive lock).
pub(crate) async fn rename(
    client: &impl GenericClient,
    user_id: &str,
    id: Uuid,
    name: String,
    now: DateTime<Utc>,
) -> Result<Project, EngineError> {
    let project = rules::owned(load(client, id).await?, user_id)?;
    let taken = name_taken(client, user_id, &name, Some(id)).await?;
    let renamed = rules::rename(project, name, taken, now)?;
    let update = client
        .prepare_cached(
            "UPDATE projects SET name = $2, name_key = $3, updated_at = $4 WHERE id = $1",
        )
        .await
        .map_err(PgError::from)?;
    client
        .execute(
            &update,
            &[&id, &renamed.name, &name_key(&renamed.name), &now],
        )
        .await
        .map_err(PgError::from)?;
    Ok(renamed)
}

/// Takes the project's tasks out of it and deletes it (under the user's exclusive lock);
/// returns what happened and the events to append.
pub(crate) async fn delete(
    client: &impl GenericClient,
    user_id: &str,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(ProjectDeletion, Vec<OutboxEvent>), EngineError> {
    let project = rules::owned(load(client, id).await?, user_id)?;
    let select = client
        .prepare_cached(&format!(
            "SELECT {} FROM tasks WHERE project_id = $1 ORDER BY subtask_of IS NOT NULL, created_at, id FOR UPDATE",
            rows::TASK_COLUMNS
        ))
        .await
        .map_err(PgError::from)?;
    let tasks = client
        .query(&select, &[&id])
        .await
        .map_err(PgError::from)?
        .iter()
        .map(rows::task_from_row)
        .collect::<Result<Vec<Task>, PgError>>()?;
    let (released, events) = rules::release(tasks, now);
    for task in &released {
        rows::update_task(client, task).await?;
    }
    let remove = client
        .prepare_cached("DELETE FROM projects WHERE id = $1")
        .await
        .map_err(PgError::from)?;
    client
        .execute(&remove, &[&id])
        .await
        .map_err(PgError::from)?;
    Ok((ProjectDeletion { project, released }, events))
}

/// Checks a new task's project and parent against the rows and completes its links (see
/// [`rules::place`]); runs under the user's exclusive lock, the parent row locked.
pub(crate) async fn place(client: &impl GenericClient, task: &mut Task) -> Result<(), EngineError> {
    if task.project_id.is_none() && task.subtask_of.is_none() {
        return Ok(());
    }
    let parent = match task.subtask_of {
        Some(id) => rows::lock_task(client, id).await?,
        None => None,
    };
    let siblings = match &parent {
        Some(parent) => {
            let count = client
                .prepare_cached("SELECT count(*) FROM tasks WHERE subtask_of = $1")
                .await
                .map_err(PgError::from)?;
            let n: i64 = client
                .query_one(&count, &[&parent.id])
                .await
                .map_err(PgError::from)?
                .try_get(0)
                .map_err(PgError::from)?;
            u64::try_from(n).unwrap_or_default()
        }
        None => 0,
    };
    let project = match (task.subtask_of, task.project_id) {
        (None, Some(id)) => load(client, id).await?,
        _ => None,
    };
    rules::place(
        task,
        parent.as_ref().map(|task| Parent {
            task,
            subtasks: siblings,
        }),
        project.as_ref(),
    )
}

pub(crate) async fn subtask_counts(
    client: &impl GenericClient,
    user_id: &str,
    parents: &[Uuid],
) -> Result<HashMap<Uuid, SubtaskCount>, PgError> {
    let statement = client
        .prepare_cached(
            "SELECT subtask_of, count(*), count(*) FILTER (WHERE status = 'completed') FROM tasks
             WHERE user_id = $1 AND subtask_of = ANY($2) GROUP BY subtask_of",
        )
        .await?;
    let mut counts = HashMap::new();
    for row in client.query(&statement, &[&user_id, &parents]).await? {
        let parent: Uuid = row.try_get(0)?;
        let total: i64 = row.try_get(1)?;
        let completed: i64 = row.try_get(2)?;
        counts.insert(
            parent,
            SubtaskCount {
                total: u64::try_from(total).map_err(|_| PgError::Corrupt("subtask count"))?,
                completed: u64::try_from(completed)
                    .map_err(|_| PgError::Corrupt("subtask count"))?,
            },
        );
    }
    Ok(counts)
}
