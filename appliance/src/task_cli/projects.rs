//! Projects in the task CLI: naming one on `add` (`@name`, `--project`, "to my NAME list"),
//! filtering `list` by one, `task project list|add`, and showing subtasks under their parent.
//!
//! An unknown project named explicitly (`@name` or `--project`) is an error that says how to
//! create it: a typo must not make a new project behind the user's back. A phrase ("buy milk
//! to groceries") only counts when the project exists, else it is the title, as in the
//! assistant.

use std::collections::{HashMap, HashSet};

use anyhow::bail;
use serde_json::Value;
use taskstream_engine::assistant::offline::intent::AddTask;
use taskstream_engine::project::name_key;
use uuid::Uuid;

use super::ProjectCommand;
use super::backend::{Backend, Placement};

/// A project as the CLI needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectRef {
    pub id: Uuid,
    pub name: String,
}

/// The user's projects, when the command needs them.
#[derive(Debug, Default)]
pub struct Known(Vec<ProjectRef>);

impl Known {
    /// Every project of the user.
    pub async fn all(backend: &Backend) -> anyhow::Result<Self> {
        let projects = backend.projects().await?;
        Ok(Known(
            projects
                .iter()
                .filter_map(|project| {
                    Some(ProjectRef {
                        id: Uuid::parse_str(project["id"].as_str()?).ok()?,
                        name: project["name"].as_str()?.to_owned(),
                    })
                })
                .collect(),
        ))
    }

    /// The projects, only if `add` may name one (a flag, or words that could).
    pub async fn load(
        backend: &Backend,
        parsed: &AddTask,
        flag: Option<&str>,
    ) -> anyhow::Result<Self> {
        if flag.is_none() && parsed.project_hints.is_empty() {
            return Ok(Known::default());
        }
        Self::all(backend).await
    }

    /// The project called `name`, ignoring case.
    pub fn named(&self, name: &str) -> Option<&ProjectRef> {
        let key = name_key(name);
        self.0.iter().find(|project| name_key(&project.name) == key)
    }

    pub fn by_id(&self, id: Uuid) -> Option<&str> {
        self.0
            .iter()
            .find(|project| project.id == id)
            .map(|project| project.name.as_str())
    }
}

/// The error for a project named explicitly that does not exist.
pub fn unknown(name: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "no project named {name:?}: create it first with `taskstream task project add {name}` \
         (projects are never created by `add`); `taskstream task project list` shows yours, and \
         --project NAME or @NAME put a task in one"
    )
}

/// The title and project a new task gets: `--project` wins; an `@name` must name a project;
/// a phrase counts only when its project exists. `None`: no project, the title as parsed.
pub fn place(
    parsed: &AddTask,
    flag: Option<&str>,
    known: &Known,
) -> anyhow::Result<Option<(String, ProjectRef)>> {
    let marked = parsed.project_hints.iter().find(|hint| hint.marked);
    if let Some(name) = flag {
        let project = known.named(name).ok_or_else(|| unknown(name))?;
        return match marked {
            Some(hint) if name_key(&hint.name) == name_key(name) => {
                Ok(Some((hint.title.clone(), project.clone())))
            }
            Some(hint) => bail!(
                "the text names the project @{} and --project names {name:?}: say one",
                hint.name
            ),
            None => Ok(Some((parsed.title.clone(), project.clone()))),
        };
    }
    if let Some(hint) = marked {
        let project = known.named(&hint.name).ok_or_else(|| unknown(&hint.name))?;
        return Ok(Some((hint.title.clone(), project.clone())));
    }
    Ok(parsed
        .in_project(|name| known.named(name).map(|project| project.name.clone()))
        .and_then(|(hint, name)| {
            known
                .named(&name)
                .map(|project| (hint.title.clone(), project.clone()))
        }))
}

fn id_of(task: &Value) -> Option<Uuid> {
    task["id"].as_str().and_then(|id| Uuid::parse_str(id).ok())
}

/// Where `task` sits, if known.
pub fn placement_of<'p>(
    task: &Value,
    placements: &'p HashMap<Uuid, Placement>,
) -> Option<&'p Placement> {
    placements.get(&id_of(task)?)
}

/// The tasks in display order with their depth: each top-level task followed by its subtasks
/// (depth 1) in the order given. A subtask whose parent is not in the list stands at the top
/// level.
pub fn nest<'t>(
    tasks: &'t [Value],
    placements: &HashMap<Uuid, Placement>,
) -> Vec<(usize, &'t Value)> {
    let listed: HashSet<Uuid> = tasks.iter().filter_map(id_of).collect();
    let parent_of = |task: &Value| {
        placement_of(task, placements)
            .and_then(|placed| placed.subtask_of)
            .filter(|parent| listed.contains(parent))
    };
    let mut shown = Vec::with_capacity(tasks.len());
    for task in tasks.iter().filter(|task| parent_of(task).is_none()) {
        shown.push((0, task));
        let Some(id) = id_of(task) else { continue };
        shown.extend(
            tasks
                .iter()
                .filter(|child| parent_of(child) == Some(id))
                .map(|child| (1, child)),
        );
    }
    shown
}

/// `taskstream task project list|add`.
pub async fn run(backend: &Backend, command: ProjectCommand) -> anyhow::Result<()> {
    match command {
        ProjectCommand::List => {
            let projects = backend.projects().await?;
            if projects.is_empty() {
                println!("No projects. Create one with `taskstream task project add NAME`.");
            }
            for project in &projects {
                println!(
                    "{}  ({} open of {})",
                    project["name"].as_str().unwrap_or(""),
                    project["open_task_count"].as_u64().unwrap_or(0),
                    project["task_count"].as_u64().unwrap_or(0)
                );
            }
        }
        ProjectCommand::Add { name } => {
            let project = backend.create_project(&name.join(" ")).await?;
            println!("Created project {}", project["name"].as_str().unwrap_or(""));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use chrono_tz::Tz;
    use serde_json::json;
    use taskstream_engine::assistant::offline::intent::quick_add;

    fn known() -> Known {
        Known(vec![ProjectRef {
            id: Uuid::from_u128(1),
            name: "Groceries".into(),
        }])
    }

    fn placed(text: &str, flag: Option<&str>) -> anyhow::Result<Option<(String, String)>> {
        let parsed = quick_add(text, Utc::now(), Tz::UTC).map_err(anyhow::Error::msg)?;
        Ok(place(&parsed, flag, &known())?.map(|(title, project)| (title, project.name)))
    }

    #[test]
    fn a_task_goes_into_a_project_only_when_it_exists() {
        let into = Some(("buy milk".to_owned(), "Groceries".to_owned()));
        assert_eq!(placed("buy milk @groceries", None).ok(), Some(into.clone()));
        assert_eq!(
            placed("buy milk to my groceries list", None).ok(),
            Some(into.clone())
        );
        assert_eq!(placed("buy milk", Some("GROCERIES")).ok(), Some(into));
        assert_eq!(placed("talk to bob", None).ok(), Some(None));
        let missing = placed("buy milk @garden", None)
            .err()
            .map(|e| e.to_string());
        assert!(
            missing.as_deref().is_some_and(
                |text| text.contains("--project") && text.contains("task project add garden")
            ),
            "{missing:?}"
        );
        assert!(placed("buy milk", Some("garden")).is_err());
        assert!(placed("buy milk @groceries", Some("other")).is_err());
    }

    #[test]
    fn subtasks_follow_their_parent() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let tasks = vec![json!({"id": b}), json!({"id": a}), json!({"id": c})];
        let placements = HashMap::from([
            (
                b,
                Placement {
                    subtask_of: Some(a),
                    ..Placement::default()
                },
            ),
            (
                c,
                Placement {
                    subtask_of: Some(Uuid::from_u128(9)),
                    ..Placement::default()
                },
            ),
        ]);
        let order: Vec<(usize, Uuid)> = nest(&tasks, &placements)
            .into_iter()
            .map(|(depth, task)| (depth, id_of(task).unwrap_or_default()))
            .collect();
        assert_eq!(order, [(0, a), (1, b), (0, c)]);
    }
}
