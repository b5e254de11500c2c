//! Where the task CLI's tasks are: a running server's REST API (with a token), or the data
//! directory's SQLite store opened directly (no server needed; next to a running one, the
//! server relays the events and arms the reminders of these writes within about a second, as
//! for `taskstream mcp`).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono_tz::Tz;
use serde_json::{Value, json};
use taskstream_engine::TaskService;
use taskstream_engine::embedded::SqliteTaskStore;
use taskstream_engine::ports::{AccountStore, SettingsStore};
use taskstream_engine::task::TaskQuery;
use taskstream_engine::task::input::parse_new_task;
use taskstream_engine::transfer::{self, Format};
use uuid::Uuid;

use crate::data_dir;

/// Largest page the API hands out; the CLI reads page after page.
const PAGE: usize = 1000;

/// A completion: the task, and the next occurrence of a recurring one (`TaskResponse` JSON).
pub struct Completed {
    pub task: Value,
    pub next: Option<Value>,
}

/// The REST API of a running server.
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// The data directory's store, acting for one user.
pub struct Local {
    store: Arc<SqliteTaskStore>,
    tasks: TaskService,
    user: String,
}

pub enum Backend {
    Api(Api),
    Local(Local),
}

impl Api {
    pub fn new(url: &str, token: &str) -> anyhow::Result<Self> {
        let base = url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--url must start with http:// or https:// (got {url:?})");
        }
        if token.trim().is_empty() {
            bail!(
                "a token is needed with --url: pass --token or set TASKSTREAM_TOKEN (a personal token from Settings, or `taskstream token --sub USER`)"
            );
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Api {
            http,
            base,
            token: token.trim().to_owned(),
        })
    }

    /// `GET path` as text (an export).
    async fn text(&self, path: &str) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("GET {path}: {status}: {}", refusal(&text));
        }
        Ok(text)
    }

    /// Sends a request and reads the JSON answer; a refusal names the server's reason.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        zone: Option<Tz>,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.token);
        if let Some(zone) = zone {
            request = request.header("x-timezone", zone.name());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{method} {path}: {status}: {}", refusal(&text));
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: not JSON: {text}"))
    }
}

/// The reason in a problem body (`{"detail": "..."}` or the validation list), or the text.
pub fn refusal(text: &str) -> String {
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        return text.trim().to_owned();
    };
    match &body["detail"] {
        Value::String(detail) => detail.clone(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let field = item["loc"]
                    .as_array()
                    .and_then(|loc| loc.last())
                    .and_then(Value::as_str)
                    .unwrap_or("");
                format!("{field}: {}", item["msg"].as_str().unwrap_or(""))
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => text.trim().to_owned(),
    }
}

impl Local {
    /// Opens the data directory's store for `user` (an account id or email), or for its only
    /// account when no user is named.
    pub async fn open(dir: &Path, user: Option<&str>) -> anyhow::Result<Self> {
        data_dir::ensure(dir)?;
        let database = dir.join(data_dir::DATABASE_FILE);
        data_dir::private_file(&database)?;
        let store = Arc::new(
            SqliteTaskStore::open(&database)
                .with_context(|| format!("cannot open the task store {}", database.display()))?,
        );
        let user = match user.map(str::trim).filter(|user| !user.is_empty()) {
            Some(user) => match store.account_by_email(user).await? {
                Some(account) => account.id,
                None => user.to_owned(),
            },
            None => {
                let accounts = store.list_accounts().await?;
                match accounts.as_slice() {
                    [only] => only.id.clone(),
                    [] => bail!(
                        "no account in {}: name the user with --user (the `sub` of their tokens)",
                        dir.display()
                    ),
                    _ => bail!(
                        "{} accounts in {}: say which with --user (an id or email from `taskstream user list`)",
                        accounts.len(),
                        dir.display()
                    ),
                }
            }
        };
        let tasks = TaskService::new(store.clone());
        Ok(Local { store, tasks, user })
    }
}

fn view(task: &taskstream_engine::task::Task) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(task.view())?)
}

impl Backend {
    /// The zone to read and show dates in: `flag`, else the user's saved one.
    pub async fn zone(&self, flag: Option<Tz>) -> anyhow::Result<Tz> {
        if let Some(zone) = flag {
            return Ok(zone);
        }
        match self {
            Backend::Api(api) => {
                let settings = api
                    .call(reqwest::Method::GET, "/api/settings", None, None)
                    .await?;
                Ok(settings["time_zone"]
                    .as_str()
                    .and_then(taskstream_engine::recurrence::parse_zone)
                    .unwrap_or(Tz::UTC))
            }
            Backend::Local(local) => Ok(local.store.settings(&local.user).await?.time_zone),
        }
    }

    /// Creates a task from `POST /api/tasks` JSON.
    pub async fn create(&self, body: &Value, zone: Tz) -> anyhow::Result<Value> {
        match self {
            Backend::Api(api) => {
                api.call(reqwest::Method::POST, "/api/tasks", Some(zone), Some(body))
                    .await
            }
            Backend::Local(local) => {
                let mut draft = parse_new_task(body).map_err(|errors| {
                    anyhow::anyhow!(
                        "{}",
                        errors
                            .0
                            .iter()
                            .map(|error| error.msg.clone())
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                })?;
                draft.time_zone = zone;
                view(&local.tasks.create(&local.user, draft).await?)
            }
        }
    }

    /// Every task matching the list-query `pairs` (`GET /api/tasks` parameters), every page.
    pub async fn list(&self, pairs: &[(&str, String)]) -> anyhow::Result<Vec<Value>> {
        match self {
            Backend::Api(api) => {
                let mut all = Vec::new();
                loop {
                    let mut query = form_urlencoded_pairs(pairs);
                    query.push_str(&format!("&limit={PAGE}&offset={}", all.len()));
                    let page = api
                        .call(
                            reqwest::Method::GET,
                            &format!("/api/tasks?{query}"),
                            None,
                            None,
                        )
                        .await?;
                    let page = page.as_array().cloned().unwrap_or_default();
                    let full = page.len() == PAGE;
                    all.extend(page);
                    if !full {
                        return Ok(all);
                    }
                }
            }
            Backend::Local(local) => {
                let query =
                    TaskQuery::from_pairs(pairs.iter().map(|(key, value)| (*key, value.as_str())))
                        .map_err(|errors| {
                            anyhow::anyhow!(
                                "{}",
                                errors
                                    .0
                                    .iter()
                                    .map(|error| error.msg.clone())
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            )
                        })?;
                local
                    .tasks
                    .list(&local.user, &query)
                    .await?
                    .iter()
                    .map(view)
                    .collect()
            }
        }
    }

    /// Completes a task (one operation, as through any other door).
    pub async fn complete(&self, id: Uuid) -> anyhow::Result<Completed> {
        match self {
            Backend::Api(api) => {
                let answer = api
                    .call(
                        reqwest::Method::PATCH,
                        &format!("/api/tasks/{id}/complete"),
                        None,
                        None,
                    )
                    .await?;
                Ok(Completed {
                    task: answer["completed_task"].clone(),
                    next: Some(answer["next_task"].clone()).filter(|next| !next.is_null()),
                })
            }
            Backend::Local(local) => {
                let completion = local.tasks.complete(&local.user, id).await?;
                Ok(Completed {
                    task: view(&completion.completed)?,
                    next: completion.next.as_ref().map(view).transpose()?,
                })
            }
        }
    }
}

/// Where a listed task sits: its project and the task it is a subtask of.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placement {
    pub project_id: Option<Uuid>,
    pub subtask_of: Option<Uuid>,
}

/// How many `/links` requests the CLI keeps in flight when listing over HTTP.
const LINKS_IN_FLIGHT: usize = 16;

impl Backend {
    /// The user's projects as the API shows them (`{"id","name","task_count",…}`), by name.
    pub async fn projects(&self) -> anyhow::Result<Vec<Value>> {
        match self {
            Backend::Api(api) => {
                let answer = api
                    .call(reqwest::Method::GET, "/api/projects", None, None)
                    .await?;
                Ok(answer.as_array().cloned().unwrap_or_default())
            }
            Backend::Local(local) => Ok(local
                .tasks
                .projects(&local.user)
                .await?
                .iter()
                .map(|summary| serde_json::to_value(summary.view()))
                .collect::<Result<_, _>>()?),
        }
    }

    /// Creates a project; the API's project object.
    pub async fn create_project(&self, name: &str) -> anyhow::Result<Value> {
        match self {
            Backend::Api(api) => {
                api.call(
                    reqwest::Method::POST,
                    "/api/projects",
                    None,
                    Some(&json!({ "name": name })),
                )
                .await
            }
            Backend::Local(local) => {
                let project = local.tasks.create_project(&local.user, name).await?;
                Ok(json!({
                    "id": project.id,
                    "name": project.name,
                    "task_count": 0,
                    "open_task_count": 0,
                }))
            }
        }
    }

    /// Where each of `tasks` (TaskResponse JSON) sits, by id. `TaskResponse` has no links, so
    /// over HTTP this asks `GET /api/tasks/{id}/links` for each, a few at a time.
    pub async fn placements(
        &self,
        tasks: &[Value],
    ) -> anyhow::Result<std::collections::HashMap<Uuid, Placement>> {
        let ids: Vec<Uuid> = tasks
            .iter()
            .filter_map(|task| task["id"].as_str().and_then(|id| Uuid::parse_str(id).ok()))
            .collect();
        let mut placed = std::collections::HashMap::new();
        match self {
            Backend::Api(api) => {
                for chunk in ids.chunks(LINKS_IN_FLIGHT) {
                    let mut calls = tokio::task::JoinSet::new();
                    for id in chunk {
                        let (http, base, token, id) =
                            (api.http.clone(), api.base.clone(), api.token.clone(), *id);
                        calls.spawn(async move {
                            let api = Api { http, base, token };
                            let links = api
                                .call(
                                    reqwest::Method::GET,
                                    &format!("/api/tasks/{id}/links"),
                                    None,
                                    None,
                                )
                                .await?;
                            anyhow::Ok((id, links))
                        });
                    }
                    while let Some(done) = calls.join_next().await {
                        let (id, links) = done.context("a links request failed")??;
                        let uuid =
                            |key: &str| links[key].as_str().and_then(|id| Uuid::parse_str(id).ok());
                        placed.insert(
                            id,
                            Placement {
                                project_id: uuid("project_id"),
                                subtask_of: uuid("subtask_of"),
                            },
                        );
                    }
                }
            }
            Backend::Local(local) => {
                for id in ids {
                    let task = local.tasks.get(&local.user, id).await?;
                    placed.insert(
                        id,
                        Placement {
                            project_id: task.project_id,
                            subtask_of: task.subtask_of,
                        },
                    );
                }
            }
        }
        Ok(placed)
    }

    /// The user's tasks as a file.
    pub async fn export(&self, format: Format) -> anyhow::Result<String> {
        match self {
            Backend::Api(api) => {
                api.text(&format!("/api/export?format={}", format.as_str()))
                    .await
            }
            Backend::Local(local) => {
                let tasks = local.tasks.list(&local.user, &TaskQuery::default()).await?;
                let projects: Vec<_> = local
                    .tasks
                    .projects(&local.user)
                    .await?
                    .into_iter()
                    .map(|summary| summary.project)
                    .collect();
                Ok(transfer::export(
                    format,
                    &tasks,
                    &projects,
                    &local.user,
                    taskstream_engine::time::now(),
                ))
            }
        }
    }

    /// Imports a file for the user; the report as `POST /api/import` answers it.
    pub async fn import(
        &self,
        format: Format,
        text: String,
        project: Option<&str>,
        zone: Tz,
    ) -> anyhow::Result<Value> {
        match self {
            Backend::Api(api) => {
                let mut url = format!("{}/api/import?format={}", api.base, format.as_str());
                if let Some(project) = project {
                    url.push_str(&format!("&project={}", percent(project)));
                }
                let response = api
                    .http
                    .post(&url)
                    .bearer_auth(&api.token)
                    .header("x-timezone", zone.name())
                    .header("content-type", "text/plain; charset=utf-8")
                    .body(text)
                    .send()
                    .await
                    .with_context(|| format!("cannot reach {url}"))?;
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                if !status.is_success() {
                    bail!(
                        "the import was refused ({status}): {}",
                        refusal_lines(&body)
                    );
                }
                Ok(serde_json::from_str(&body)?)
            }
            Backend::Local(local) => {
                let now = taskstream_engine::time::now();
                let outcome = match transfer::parse(format, &text, now, zone) {
                    Ok(mut parsed) => {
                        parsed.project = project.map(str::to_owned);
                        transfer::import(&local.tasks, &local.user, parsed, zone).await
                    }
                    Err(error) => Err(error),
                };
                match outcome {
                    Ok(report) => Ok(serde_json::to_value(report)?),
                    Err(taskstream_engine::EngineError::Validation(errors)) => bail!(
                        "the import was refused, nothing was imported:\n  {}",
                        errors
                            .0
                            .iter()
                            .map(|error| error.msg.clone())
                            .collect::<Vec<_>>()
                            .join("\n  ")
                    ),
                    Err(other) => Err(other.into()),
                }
            }
        }
    }
}

/// A refusal's problems, one a line (the 422 of an import lists each bad record).
fn refusal_lines(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(body) if body["detail"].is_array() => {
            let lines: Vec<String> = body["detail"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|item| item["msg"].as_str().unwrap_or("").to_owned())
                        .collect()
                })
                .unwrap_or_default();
            format!("nothing was imported:\n  {}", lines.join("\n  "))
        }
        _ => refusal(text),
    }
}

fn form_urlencoded_pairs(pairs: &[(&str, String)]) -> String {
    let mut query = String::new();
    for (key, value) in pairs {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(key);
        query.push('=');
        query.push_str(&percent(value));
    }
    if query.is_empty() {
        query.push_str("sort=created_at");
    }
    query
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A JSON body for the API from the quick-add parser's tool arguments.
pub fn task_body(arguments: Value) -> Value {
    let mut body = arguments;
    if body
        .get("recurrence_rule")
        .is_some_and(|rule| !rule.is_null())
    {
        body["is_recurring"] = json!(true);
    }
    body
}
