//! `taskstream task`: add, list and complete tasks from the shell, in the same quick-add
//! language as the web UI's box and the assistant ("pay rent every month on the 1st at 9
//! #home !high"), against a running server's API or straight on the data directory.

mod backend;
mod files;
mod projects;
mod show;

pub use files::{ExportArgs, ImportArgs, export, import};

use std::path::PathBuf;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use taskstream_engine::assistant::offline::intent::quick_add;
use taskstream_engine::recurrence::parse_zone;
use uuid::Uuid;

use crate::config::{CommonArgs, ServeArgs, Settings};
use backend::{Api, Backend, Local, task_body};
use show::{DueWindow, line, matches_window};

/// Options of `taskstream task`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Where the tasks are:
  --url URL --token TOKEN   a running server's REST API (also TASKSTREAM_URL, TASKSTREAM_TOKEN);
                            the token is a personal token from Settings (tsk_…) or
                            `taskstream token --sub USER`
  otherwise                 the data directory (--data-dir, TASKSTREAM_DATA_DIR or the default)
                            opened directly, for --user or its only account; this works with or
                            without a server running on it

Examples:
  taskstream task add \"pay rent every month on the 1st at 9 #home !high\"
  taskstream task add \"call the bank tomorrow at 10, remind me 15 minutes before\"
  taskstream task list                  open tasks, soonest due first
  taskstream task list today            due today (also: overdue; upcoming: the next 7 days)
  taskstream task list #home !high rent tagged home, high priority, matching \"rent\"
  taskstream task list --all            completed ones too
  taskstream task done 5b093c4a         an id, or its end as `list` shows it
  taskstream task done \"pay rent\"       the one open task whose title contains the text

Projects and subtasks:
  taskstream task project add Groceries  create a project (`task project list` lists them)
  taskstream task add \"buy milk @groceries\"   into an existing project (an unknown @name is an
                                        error; nothing is created behind your back)
  taskstream task add --project Groceries buy milk
  taskstream task add \"buy milk to my groceries list\"   into the project if it exists; if not,
                                        the whole text is the title, as in the assistant
  taskstream task list --project Groceries
  `list` shows subtasks indented under their parent and a task's project as @Name")]
pub struct TaskArgs {
    #[command(subcommand)]
    pub command: TaskCommand,

    #[command(flatten)]
    pub target: TargetArgs,
}

/// Which server or data directory, and as whom.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// A running server's base URL, e.g. http://127.0.0.1:8080; without it the data directory
    /// is used directly
    #[arg(long, env = "TASKSTREAM_URL", value_name = "URL", global = true)]
    pub url: Option<String>,

    /// Bearer token for --url (a personal token tsk_… or a JWT)
    #[arg(
        long,
        env = "TASKSTREAM_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,

    /// Data directory mode: the user (account id or email) the tasks belong to [default: the
    /// data directory's only account]
    #[arg(long, env = "TASKSTREAM_USER", value_name = "USER", global = true)]
    pub user: Option<String>,

    /// Data directory of `taskstream serve` [default: the platform data directory, e.g.
    /// ~/.local/share/taskstream]
    #[arg(long, env = "TASKSTREAM_DATA_DIR", value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// Configuration file (TOML), read for `data_dir` [default: ./taskstream.toml when it
    /// exists]
    #[arg(long, env = "TASKSTREAM_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// Time zone to read and show dates in, an IANA name such as Europe/Berlin [default: the
    /// user's saved time zone]
    #[arg(long, value_name = "ZONE", global = true)]
    pub timezone: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum TaskCommand {
    /// Add a task from one line of text: title, dates and times ("tomorrow at 9", "next
    /// friday", "on the 1st"), repeats ("every month", "every 3 days", "every monday"),
    /// reminders ("remind me 30 minutes before"), !high / !medium / !low and #tags. Prints
    /// the new task.
    Add {
        /// The line; several words are joined with spaces, so quoting is optional. `@name`
        /// puts the task in that project (which must exist); so does "to my NAME list" when a
        /// project NAME exists
        #[arg(required = true, num_args = 1.., value_name = "TEXT")]
        text: Vec<String>,

        /// Put the task in this project (by name, ignoring case; it must exist: create it
        /// with `taskstream task project add NAME`)
        #[arg(long, value_name = "NAME")]
        project: Option<String>,
    },
    /// List open tasks, soonest due first (undated last). Words filter: today, overdue,
    /// upcoming (due on one of the 7 days after today, in your time zone), #tag, !priority;
    /// any other words search titles and descriptions.
    List {
        /// Filter words, e.g. `today #home`, `!high`, `rent`
        #[arg(value_name = "FILTER")]
        filter: Vec<String>,

        /// Show completed tasks too
        #[arg(long, short = 'a')]
        all: bool,

        /// Print the tasks as a JSON array of TaskResponse objects instead of lines
        #[arg(long)]
        json: bool,

        /// Only the tasks of this project (by name, ignoring case)
        #[arg(long, value_name = "NAME")]
        project: Option<String>,
    },
    /// List or create projects (named lists of tasks)
    Project {
        #[command(subcommand)]
        command: ProjectCommand,
    },
    /// Complete a task, by id (or its end as `list` shows it, or its start; at least 4
    /// characters) or by text: the one open task whose title contains it (case-insensitive). Several
    /// matches are listed and nothing is completed (exit status 1).
    Done {
        /// An id, its start, or words of the title
        #[arg(required = true, num_args = 1.., value_name = "ID|TEXT")]
        what: Vec<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ProjectCommand {
    /// The projects by name, with their open and total task counts
    List,
    /// Create a project (1-100 characters; names are unique ignoring case)
    Add {
        /// The name; several words are joined with spaces
        #[arg(required = true, num_args = 1.., value_name = "NAME")]
        name: Vec<String>,
    },
}

/// `--timezone`, checked.
fn zone_flag(target: &TargetArgs) -> anyhow::Result<Option<Tz>> {
    match target.timezone.as_deref() {
        None => Ok(None),
        Some(name) => Ok(Some(parse_zone(name).with_context(|| {
            format!("unknown time zone {name:?}: use an IANA name such as Europe/Berlin")
        })?)),
    }
}

pub async fn run(args: TaskArgs) -> anyhow::Result<()> {
    let target = &args.target;
    let backend = open(target).await?;
    let zone = backend.zone(zone_flag(target)?).await?;
    let now = taskstream_engine::time::now();
    match args.command {
        TaskCommand::Add { text, project } => {
            add(&backend, &text.join(" "), project.as_deref(), zone, now).await
        }
        TaskCommand::List {
            filter,
            all,
            json,
            project,
        } => {
            let shown = Shown { all, json };
            list(&backend, &filter, project.as_deref(), shown, zone, now).await
        }
        TaskCommand::Project { command } => projects::run(&backend, command).await,
        TaskCommand::Done { what } => done(&backend, &what.join(" "), zone, now).await,
    }
}

async fn open(target: &TargetArgs) -> anyhow::Result<Backend> {
    if let Some(url) = &target.url {
        return Ok(Backend::Api(Api::new(
            url,
            target.token.as_deref().unwrap_or(""),
        )?));
    }
    let settings = Settings::resolve(&ServeArgs {
        common: CommonArgs {
            data_dir: target.data_dir.clone(),
            config: target.config.clone(),
            jwt_secret: None,
        },
        ..ServeArgs::default()
    })?;
    Ok(Backend::Local(
        Local::open(&settings.data_dir, target.user.as_deref()).await?,
    ))
}

async fn add(
    backend: &Backend,
    text: &str,
    project: Option<&str>,
    zone: Tz,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let parsed = quick_add(text, now, zone).map_err(|reason| anyhow::anyhow!("{reason}"))?;
    let mut body = task_body(parsed.arguments());
    let known = projects::Known::load(backend, &parsed, project).await?;
    let placed = projects::place(&parsed, project, &known)?;
    if let Some((title, project)) = &placed {
        body["title"] = title.clone().into();
        body["project_id"] = project.id.to_string().into();
    }
    let task = backend.create(&body, zone).await?;
    let mut shown = line(&task, zone, now);
    if let Some((_, project)) = &placed {
        shown.push_str(&format!("  @{}", project.name));
    }
    println!("Added {shown}");
    if parsed.reminder_needs_date {
        println!("(no reminder: the task has no date to remind before)");
    }
    Ok(())
}

/// What a `list` filter asks for, besides the store's own query.
#[derive(Debug, Default, PartialEq)]
struct Filter {
    pairs: Vec<(&'static str, String)>,
    window: Option<DueWindow>,
}

fn read_filter(words: &[String], all: bool) -> anyhow::Result<Filter> {
    let mut filter = Filter::default();
    let mut search = Vec::new();
    let mut tags = Vec::new();
    for word in words.iter().flat_map(|word| word.split_whitespace()) {
        let lower = word.to_lowercase();
        if let Some(tag) = lower.strip_prefix('#').filter(|tag| !tag.is_empty()) {
            tags.push(tag.to_owned());
        } else if let Some(priority) = lower.strip_prefix('!') {
            match priority {
                "high" | "medium" | "low" => filter.pairs.push(("priority", priority.to_owned())),
                other => bail!("unknown priority !{other}: use !high, !medium or !low"),
            }
        } else if let Some(window) = DueWindow::parse(&lower) {
            filter.window = Some(window);
        } else {
            search.push(word.to_owned());
        }
    }
    if !tags.is_empty() {
        filter.pairs.push(("tags", tags.join(",")));
    }
    if !search.is_empty() {
        filter.pairs.push(("search", search.join(" ")));
    }
    if !all {
        filter.pairs.push(("status", "active".to_owned()));
    }
    filter.pairs.push(("sort", "due_date".to_owned()));
    filter.pairs.push(("order", "asc".to_owned()));
    Ok(filter)
}

/// Soonest due first, undated ones after them (oldest first), whatever the store's order for
/// missing dates.
fn by_due(tasks: &mut [Value]) {
    tasks.sort_by(|a, b| {
        let due = |task: &Value| task["due_date"].as_str().map(str::to_owned);
        match (due(a), due(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a["created_at"]
                .as_str()
                .unwrap_or("")
                .cmp(b["created_at"].as_str().unwrap_or("")),
        }
    });
}

/// How `list` shows what it found.
#[derive(Debug, Clone, Copy)]
struct Shown {
    /// Completed tasks too.
    all: bool,
    /// TaskResponse JSON instead of lines.
    json: bool,
}

async fn list(
    backend: &Backend,
    words: &[String],
    project: Option<&str>,
    shown: Shown,
    zone: Tz,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let Shown { all, json } = shown;
    let mut filter = read_filter(words, all)?;
    let names = projects::Known::all(backend).await?;
    if let Some(name) = project {
        let found = names.named(name).ok_or_else(|| projects::unknown(name))?;
        filter.pairs.push(("project_id", found.id.to_string()));
    }
    let mut tasks: Vec<Value> = backend
        .list(&filter.pairs)
        .await?
        .into_iter()
        .filter(|task| {
            filter
                .window
                .is_none_or(|window| matches_window(task, window, zone, now))
        })
        .collect();
    by_due(&mut tasks);
    if json {
        println!("{}", serde_json::to_string_pretty(&tasks)?);
        return Ok(());
    }
    if tasks.is_empty() {
        println!("No tasks.");
        return Ok(());
    }
    let placements = backend.placements(&tasks).await?;
    for (depth, task) in projects::nest(&tasks, &placements) {
        let mut text = line(task, zone, now);
        let placement = projects::placement_of(task, &placements);
        // The project is said once in the heading of `--project`, else on each line.
        if project.is_none()
            && let Some(name) = placement
                .and_then(|placed| placed.project_id)
                .and_then(|id| names.by_id(id))
        {
            text.push_str(&format!("  @{name}"));
        }
        if depth == 0
            && let Some(parent) = placement.and_then(|placed| placed.subtask_of)
        {
            // Its parent is not in this list (completed, or filtered out).
            let parent = parent.to_string();
            text.push_str(&format!("  (subtask of {})", show::short_id(&parent)));
        }
        println!("{}{text}", "    ".repeat(depth));
    }
    Ok(())
}

/// Shortest id start `done` accepts, so a stray digit cannot complete a task.
const ID_PREFIX_MIN: usize = 4;

async fn done(backend: &Backend, what: &str, zone: Tz, now: DateTime<Utc>) -> anyhow::Result<()> {
    let what = what.trim();
    let id = match Uuid::parse_str(what) {
        Ok(id) => id,
        Err(_) => {
            let open = backend.list(&[("status", "active".to_owned())]).await?;
            pick(&open, what, zone, now)?
        }
    };
    let completed = backend.complete(id).await?;
    println!("Completed {}", line(&completed.task, zone, now));
    if let Some(next) = &completed.next {
        println!("Next: {}", line(next, zone, now));
    }
    Ok(())
}

/// The one open task `what` names: by id start, else by a title containing it.
fn pick(open: &[Value], what: &str, zone: Tz, now: DateTime<Utc>) -> anyhow::Result<Uuid> {
    let id_of = |task: &Value| task["id"].as_str().and_then(|id| Uuid::parse_str(id).ok());
    let lower = what.to_lowercase();
    let by_id: Vec<&Value> = if lower.len() >= ID_PREFIX_MIN
        && lower.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
    {
        open.iter()
            .filter(|task| {
                task["id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with(&lower) || id.ends_with(&lower))
            })
            .collect()
    } else {
        Vec::new()
    };
    let candidates = if by_id.is_empty() {
        let containing: Vec<&Value> = open
            .iter()
            .filter(|task| {
                task["title"]
                    .as_str()
                    .is_some_and(|title| title.to_lowercase().contains(&lower))
            })
            .collect();
        // An exact title wins over titles that merely contain it.
        let exact: Vec<&Value> = containing
            .iter()
            .copied()
            .filter(|task| {
                task["title"]
                    .as_str()
                    .is_some_and(|title| title.to_lowercase() == lower)
            })
            .collect();
        if exact.len() == 1 { exact } else { containing }
    } else {
        by_id
    };
    match candidates.as_slice() {
        [one] => id_of(one).context("the task has no id"),
        [] => bail!("no open task matches {what:?} (see `taskstream task list`)"),
        many => {
            let lines: Vec<String> = many
                .iter()
                .map(|task| format!("  {}", line(task, zone, now)))
                .collect();
            bail!(
                "{} open tasks match {what:?}; say which by id:\n{}",
                many.len(),
                lines.join("\n")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filter_words_become_the_query() {
        let words: Vec<String> = ["today", "#Home", "!high", "pay", "rent"]
            .iter()
            .map(|word| (*word).to_owned())
            .collect();
        let filter = read_filter(&words, false).unwrap_or_default();
        assert_eq!(filter.window, Some(DueWindow::Today));
        assert!(filter.pairs.contains(&("tags", "home".to_owned())));
        assert!(filter.pairs.contains(&("priority", "high".to_owned())));
        assert!(filter.pairs.contains(&("search", "pay rent".to_owned())));
        assert!(filter.pairs.contains(&("status", "active".to_owned())));
        let all = read_filter(&[], true).unwrap_or_default();
        assert!(!all.pairs.iter().any(|(key, _)| *key == "status"));
        assert!(read_filter(&["!urgent".to_owned()], false).is_err());
    }

    #[test]
    fn done_picks_one_task_or_names_the_candidates() {
        let now = Utc::now();
        let open = vec![
            json!({"id": "3f2a0000-0000-4000-8000-00000000aaa1", "title": "Pay rent"}),
            json!({"id": "3f2b0000-0000-4000-8000-00000000bbb2", "title": "Pay rent late fee"}),
            json!({"id": "9c000000-0000-4000-8000-00000000ccc3", "title": "Call the bank"}),
        ];
        let pick = |what: &str| pick(&open, what, Tz::UTC, now).map(|id| id.to_string());
        assert_eq!(
            pick("bank").ok().as_deref(),
            Some("9c000000-0000-4000-8000-00000000ccc3")
        );
        assert_eq!(
            pick("PAY RENT").ok().as_deref(),
            Some("3f2a0000-0000-4000-8000-00000000aaa1"),
            "an exact title wins"
        );
        assert_eq!(
            pick("3f2b").ok().as_deref(),
            Some("3f2b0000-0000-4000-8000-00000000bbb2")
        );
        assert_eq!(
            pick("0bbb2").ok().as_deref(),
            Some("3f2b0000-0000-4000-8000-00000000bbb2"),
            "the end of an id, as list shows it"
        );
        let ambiguous = pick("pay").err().map(|error| error.to_string());
        assert!(
            ambiguous
                .as_deref()
                .is_some_and(|text| text.contains("2 open tasks") && text.contains("late fee")),
            "{ambiguous:?}"
        );
        assert!(pick("3f2").is_err(), "too short an id start, and no title");
        assert!(pick("groceries").is_err());
    }
}
