//! Configuration: flags > `TASKSTREAM_*` environment > `taskstream.toml` > defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use taskstream_engine::CacheSizes;
use taskstream_engine::accounts::SignupPolicy;
use taskstream_engine::assistant::llm::{GROQ_BASE_URL, GROQ_FALLBACK_MODEL, GROQ_PRIMARY_MODEL};
use taskstream_engine::embedded::fluvio;
use taskstream_engine::write_limit::WriteLimit;

/// Default HTTP listen address: loopback only, so a laptop install is not exposed by accident.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
/// Default Fluvio SC (admin) and SPU (data) addresses, the ports of a local Fluvio cluster.
pub const DEFAULT_FLUVIO_SC_ADDR: &str = "127.0.0.1:9003";
pub const DEFAULT_FLUVIO_SPU_ADDR: &str = "127.0.0.1:9010";
/// Default log filter: the MCP library logs every stateless request at info, which is noise.
pub const DEFAULT_LOG_FILTER: &str = "info,rmcp=warn";
/// Reminders at most a day late still fire after downtime.
pub const DEFAULT_MISSED_REMINDER_WINDOW_SECS: u32 = 86_400;
/// Notifications stay three months unless configured otherwise.
pub const DEFAULT_NOTIFICATION_RETENTION_DAYS: u32 = 90;
/// Seconds a client has to send a request's headers.
pub const DEFAULT_HTTP_HEADER_TIMEOUT_SECS: u32 = 30;
/// A chat completion of a large model with tools takes seconds; one that takes half a minute
/// is stuck.
pub const DEFAULT_LLM_TIMEOUT_SECS: u64 = 30;
/// The secret store daprd preloads in Kubernetes.
pub const DEFAULT_SECRET_STORE: &str = "kubernetes";
const DEFAULT_CONFIG_FILE: &str = "taskstream.toml";

/// How the process is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One process: SQLite, the embedded event log, Fluvio listeners and scheduler.
    #[default]
    Embedded,
    /// Dapr apps over a shared PostgreSQL: pub/sub, state, jobs and secrets through the sidecar.
    Cluster,
}

/// What one cluster-mode process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// REST API, chat, MCP and UI; relays the outbox and keeps the reminder jobs.
    Api,
    /// In-app (and webhook) notifications from `reminder.triggered`.
    Notification,
    /// Next occurrences after `task.completed`.
    Recurring,
    /// The audit trail.
    Audit,
    /// Every role in one process (one sidecar).
    #[default]
    All,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Options every subcommand that touches a data directory shares.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonArgs {
    /// Directory holding the database, the generated JWT secret and the lock file
    /// [default: the platform data directory, e.g. ~/.local/share/taskstream]
    #[arg(long, env = "TASKSTREAM_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// HS256 secret for API tokens; must equal the frontend's BETTER_AUTH_SECRET when the Vercel
    /// frontend is used. JWT_SECRET is read too. Without one, a random secret is generated on
    /// first start and kept in DATA_DIR/jwt-secret (mode 0600).
    #[arg(
        long,
        env = "TASKSTREAM_JWT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,

    /// Configuration file (TOML) [default: ./taskstream.toml when it exists]
    #[arg(long, env = "TASKSTREAM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Options of `taskstream serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Address the HTTP server (API, docs, metrics) listens on [default: 127.0.0.1:8080]
    #[arg(long, env = "TASKSTREAM_HTTP_ADDR", value_name = "HOST:PORT")]
    pub http_addr: Option<String>,

    /// Extra browser origins allowed by CORS, comma-separated (localhost:3000 and the reference
    /// frontend's Vercel origins are always allowed)
    #[arg(
        long,
        env = "TASKSTREAM_CORS_ORIGINS",
        value_name = "ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Option<Vec<String>>,

    /// Address of the Fluvio SC (topic admin, metadata) for official Fluvio clients and the CLI
    /// [default: 127.0.0.1:9003]
    #[arg(long, env = "TASKSTREAM_FLUVIO_SC_ADDR", value_name = "HOST:PORT")]
    pub fluvio_sc_addr: Option<String>,

    /// Address of the Fluvio SPU (produce, consume) [default: 127.0.0.1:9010]
    #[arg(long, env = "TASKSTREAM_FLUVIO_SPU_ADDR", value_name = "HOST:PORT")]
    pub fluvio_spu_addr: Option<String>,

    /// SPU address announced to Fluvio clients, when they must dial another address than the
    /// one the SPU listens on (containers, port forwarding) [default: the SPU's bound address]
    #[arg(
        long,
        env = "TASKSTREAM_FLUVIO_SPU_ADVERTISED_ADDR",
        value_name = "HOST:PORT"
    )]
    pub fluvio_spu_advertised_addr: Option<String>,

    /// The appliance's own topics (task-events, reminders, task-updates) are read-only to
    /// Fluvio clients: they can consume them, not produce to or delete them. On by default;
    /// `--fluvio-read-only=false` lets clients produce to them (and delete them with force).
    /// Topics a client creates are always fully writable [default: true]
    #[arg(
        long,
        env = "TASKSTREAM_FLUVIO_READ_ONLY",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub fluvio_read_only: Option<bool>,

    /// Close a Fluvio connection that sends no request for this many seconds while it has no
    /// open watch or fetch stream (a consumer tailing a topic is never idle); 0 never closes
    /// idle connections [default: 300]
    #[arg(
        long,
        env = "TASKSTREAM_FLUVIO_IDLE_TIMEOUT_SECS",
        value_name = "SECONDS"
    )]
    pub fluvio_idle_timeout_secs: Option<u64>,

    /// Open connections one IP address may hold on each Fluvio listener; further ones are
    /// closed at once (a global cap of 1024 per listener applies too) [default: 64]
    #[arg(
        long,
        env = "TASKSTREAM_FLUVIO_MAX_CONNECTIONS_PER_PEER",
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub fluvio_max_connections_per_peer: Option<u32>,

    /// A TLS-terminating proxy serves taskstream over HTTPS: web UI cookies get `Secure`, and
    /// the proxy's X-Forwarded-For names the client for sign-in rate limiting
    #[arg(long, env = "TASKSTREAM_BEHIND_HTTPS")]
    pub behind_https: bool,

    /// Reminders whose time passed while the server was down still fire at start if they are at
    /// most this many seconds late; older ones are recorded as missed [default: 86400]
    #[arg(
        long,
        env = "TASKSTREAM_MISSED_REMINDER_WINDOW_SECS",
        value_name = "SECONDS"
    )]
    pub missed_reminder_window_secs: Option<u32>,

    /// Notifications are deleted this many days after they were created, and 30 days after
    /// they were read, by the daily notification-retention job [default: 90]
    #[arg(
        long,
        env = "TASKSTREAM_NOTIFICATION_RETENTION_DAYS",
        value_name = "DAYS",
        value_parser = clap::value_parser!(u32).range(1..=36500)
    )]
    pub notification_retention_days: Option<u32>,

    /// A client must send a request's headers within this many seconds of starting it (or of
    /// the connection going idle), or the connection is closed: slow clients cannot hold
    /// connections open by trickling bytes [default: 30]
    #[arg(
        long,
        env = "TASKSTREAM_HTTP_HEADER_TIMEOUT_SECS",
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u32).range(1..=3600)
    )]
    pub http_header_timeout_secs: Option<u32>,

    /// Task writes (create, update, complete, delete, through any door) one user may make at
    /// once before the steady rate applies; further writes get 429 with Retry-After
    /// [default: 1000]
    #[arg(
        long,
        env = "TASKSTREAM_TASK_WRITE_BURST",
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub task_write_burst: Option<u32>,

    /// Task writes per second and user once the burst is spent; 0 turns the limit off
    /// [default: 100]
    #[arg(long, env = "TASKSTREAM_TASK_WRITES_PER_SECOND", value_name = "N")]
    pub task_writes_per_second: Option<u32>,

    /// When a periodic job runs instead of its default, as NAME=CRON (six fields, seconds first,
    /// UTC), e.g. `daily-digest=0 */30 * * * *`; repeatable (`;` between them in the variable).
    /// Embedded jobs: log-retention, state-expiry, notification-retention, daily-digest;
    /// cluster (api role): notification-retention, daily-digest, live-events-retention
    #[arg(
        long = "job-schedule",
        env = "TASKSTREAM_JOB_SCHEDULES",
        value_name = "NAME=CRON",
        value_delimiter = ';'
    )]
    pub job_schedules: Vec<String>,

    /// Page cache of the SQLite writer connection, in MiB [default: 8]
    #[arg(long, env = "TASKSTREAM_SQLITE_CACHE_MIB", value_name = "MIB")]
    pub sqlite_cache_mib: Option<u32>,

    /// Page cache of each SQLite read connection, in MiB [default: 4]
    #[arg(long, env = "TASKSTREAM_SQLITE_READER_CACHE_MIB", value_name = "MIB")]
    pub sqlite_reader_cache_mib: Option<u32>,

    /// SQLite read connections kept open; reads beyond them wait [default: 4]
    #[arg(long, env = "TASKSTREAM_SQLITE_READERS", value_name = "N")]
    pub sqlite_readers: Option<u32>,

    /// MiB of the database file each SQLite connection maps into memory; mapped pages count in
    /// the process's resident memory once per connection. 0 reads through the page cache
    /// [default: 0]
    #[arg(long, env = "TASKSTREAM_SQLITE_MMAP_MIB", value_name = "MIB")]
    pub sqlite_mmap_mib: Option<u32>,

    /// Page cache of the embedded event log (events.redb), in MiB [default: 8]
    #[arg(long, env = "TASKSTREAM_LOG_CACHE_MIB", value_name = "MIB")]
    pub log_cache_mib: Option<u32>,

    /// Page cache of the consumers' state (state.redb), in MiB [default: 4]
    #[arg(long, env = "TASKSTREAM_STATE_CACHE_MIB", value_name = "MIB")]
    pub state_cache_mib: Option<u32>,

    /// URL that each notification is POSTed to as JSON, besides the in-app list
    #[arg(long, env = "TASKSTREAM_NOTIFY_WEBHOOK_URL", value_name = "URL")]
    pub notify_webhook_url: Option<String>,

    /// Secret for the webhook's `X-Taskstream-Signature: sha256=<HMAC-SHA256 of the body>` header
    #[arg(
        long,
        env = "TASKSTREAM_NOTIFY_WEBHOOK_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub notify_webhook_secret: Option<String>,

    /// API key of an OpenAI-compatible chat-completions provider; setting one turns the chat
    /// assistant into an LLM tool loop (without one the offline assistant answers).
    /// GROQ_API_KEY is read too.
    #[arg(
        long,
        env = "TASKSTREAM_LLM_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub llm_api_key: Option<String>,

    /// Base URL of the OpenAI-compatible API; requests go to BASE_URL/chat/completions
    /// [default: https://api.groq.com/openai/v1]
    #[arg(long, env = "TASKSTREAM_LLM_BASE_URL", value_name = "URL")]
    pub llm_base_url: Option<String>,

    /// Model the assistant asks first [default: llama-3.3-70b-versatile]
    #[arg(long, env = "TASKSTREAM_LLM_MODEL", value_name = "MODEL")]
    pub llm_model: Option<String>,

    /// Model asked when the first one fails; "" for none [default: llama-3.1-8b-instant with
    /// Groq's base URL, none otherwise]
    #[arg(long, env = "TASKSTREAM_LLM_FALLBACK_MODEL", value_name = "MODEL")]
    pub llm_fallback_model: Option<String>,

    /// Seconds one chat-completions request may take before it is abandoned (and retried)
    /// [default: 30]
    #[arg(long, env = "TASKSTREAM_LLM_TIMEOUT_SECS", value_name = "SECONDS")]
    pub llm_timeout_secs: Option<u64>,

    /// Log format [default: human]
    #[arg(long, env = "TASKSTREAM_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log filter, e.g. `info` or `taskstream=debug,info` [default: info,rmcp=warn]
    #[arg(long, env = "TASKSTREAM_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,

    /// embedded: everything in one process; cluster: Dapr apps over PostgreSQL (no embedded
    /// log, Fluvio listeners or embedded scheduler) [default: embedded]
    #[arg(long, env = "TASKSTREAM_MODE", value_enum)]
    pub mode: Option<Mode>,

    /// Cluster mode: what this process serves [default: all]
    #[arg(long, env = "TASKSTREAM_ROLE", value_enum)]
    pub role: Option<Role>,

    /// Cluster mode: PostgreSQL URL (DATABASE_URL is read too)
    #[arg(
        long,
        env = "TASKSTREAM_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Cluster mode: read the PostgreSQL URL from the Dapr secret store, as NAME/KEY
    #[arg(long, env = "TASKSTREAM_DATABASE_URL_SECRET", value_name = "NAME/KEY")]
    pub database_url_secret: Option<String>,

    /// Cluster mode: read the JWT secret from the Dapr secret store, as NAME/KEY
    #[arg(long, env = "TASKSTREAM_JWT_SECRET_SECRET", value_name = "NAME/KEY")]
    pub jwt_secret_secret: Option<String>,

    /// Cluster mode: read the LLM API key from the Dapr secret store, as NAME/KEY
    #[arg(long, env = "TASKSTREAM_LLM_API_KEY_SECRET", value_name = "NAME/KEY")]
    pub llm_api_key_secret: Option<String>,

    /// Cluster mode: the Dapr secret store component those secrets come from
    /// [default: kubernetes]
    #[arg(long, env = "TASKSTREAM_SECRET_STORE", value_name = "NAME")]
    pub secret_store: Option<String>,

    /// Cluster mode: PostgreSQL schema holding the tables, created if missing (side-by-side
    /// deployments and tests) [default: the server's search_path]
    #[arg(long, env = "TASKSTREAM_DATABASE_SCHEMA", value_name = "SCHEMA")]
    pub database_schema: Option<String>,

    /// Who may create a local account in the web UI: open (anyone), first-only (only while
    /// there is none: the first visitor becomes the owner) or closed (only `taskstream user
    /// add`) [default: first-only]
    #[arg(
        long,
        env = "TASKSTREAM_SIGNUP",
        value_name = "POLICY",
        value_parser = ["open", "first-only", "closed"]
    )]
    pub signup: Option<String>,
}

/// The keys `taskstream.toml` may hold; unknown keys are an error, not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    http_addr: Option<String>,
    jwt_secret: Option<String>,
    cors_origins: Option<Vec<String>>,
    notify_webhook_url: Option<String>,
    notify_webhook_secret: Option<String>,
    fluvio_sc_addr: Option<String>,
    fluvio_spu_addr: Option<String>,
    fluvio_spu_advertised_addr: Option<String>,
    fluvio_read_only: Option<bool>,
    fluvio_idle_timeout_secs: Option<u64>,
    fluvio_max_connections_per_peer: Option<u32>,
    behind_https: Option<bool>,
    missed_reminder_window_secs: Option<u32>,
    notification_retention_days: Option<u32>,
    http_header_timeout_secs: Option<u32>,
    task_write_burst: Option<u32>,
    task_writes_per_second: Option<u32>,
    job_schedules: Option<BTreeMap<String, String>>,
    sqlite_cache_mib: Option<u32>,
    sqlite_reader_cache_mib: Option<u32>,
    sqlite_readers: Option<u32>,
    sqlite_mmap_mib: Option<u32>,
    log_cache_mib: Option<u32>,
    state_cache_mib: Option<u32>,
    llm_api_key: Option<String>,
    llm_base_url: Option<String>,
    llm_model: Option<String>,
    llm_fallback_model: Option<String>,
    llm_timeout_secs: Option<u64>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    mode: Option<Mode>,
    role: Option<Role>,
    database_url: Option<String>,
    database_url_secret: Option<String>,
    jwt_secret_secret: Option<String>,
    llm_api_key_secret: Option<String>,
    secret_store: Option<String>,
    database_schema: Option<String>,
    signup: Option<String>,
}

/// The header-read timeout; the flag's range holds for the file's value too.
fn header_timeout(secs: Option<u32>) -> anyhow::Result<std::time::Duration> {
    let secs = secs.unwrap_or(DEFAULT_HTTP_HEADER_TIMEOUT_SECS);
    if !(1..=3600).contains(&secs) {
        bail!("http_header_timeout_secs must be between 1 and 3600, not {secs}");
    }
    Ok(std::time::Duration::from_secs(u64::from(secs)))
}

/// The write limit from its two settings: a rate of 0 turns it off; a burst of 0 is refused.
fn task_write_limit(
    burst: Option<u32>,
    per_second: Option<u32>,
) -> anyhow::Result<Option<WriteLimit>> {
    let burst = burst.unwrap_or(WriteLimit::DEFAULT.burst);
    if burst == 0 {
        bail!(
            "task_write_burst must be at least 1 (turn the limit off with task_writes_per_second = 0)"
        );
    }
    Ok(match per_second {
        Some(0) => None,
        Some(rate) => Some(WriteLimit {
            burst,
            per_second: f64::from(rate),
        }),
        None => Some(WriteLimit {
            burst,
            ..WriteLimit::DEFAULT
        }),
    })
}

fn load_file(explicit: Option<&Path>) -> anyhow::Result<FileConfig> {
    let path = match explicit {
        Some(path) => path.to_owned(),
        None => {
            let default = PathBuf::from(DEFAULT_CONFIG_FILE);
            if !default.exists() {
                return Ok(FileConfig::default());
            }
            default
        }
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid configuration file {}", path.display()))
}

/// Fully resolved settings of one process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub http_addr: String,
    /// A configured secret; `None` means "use or create DATA_DIR/jwt-secret".
    pub jwt_secret: Option<String>,
    pub cors_origins: Vec<String>,
    pub notify_webhook_url: Option<String>,
    pub notify_webhook_secret: Option<String>,
    pub fluvio_sc_addr: String,
    pub fluvio_spu_addr: String,
    pub fluvio_spu_advertised_addr: Option<String>,
    /// The appliance's own topics are read-only to Fluvio clients (default on).
    pub fluvio_read_only: bool,
    /// `None`: idle Fluvio connections stay open.
    pub fluvio_idle_timeout: Option<std::time::Duration>,
    pub fluvio_max_connections_per_peer: usize,
    pub behind_https: bool,
    pub missed_reminder_window: chrono::Duration,
    pub notification_retention: chrono::Duration,
    /// How long a client may take to send a request's headers.
    pub http_header_read_timeout: std::time::Duration,
    /// Per-user limit on task writes; `None` when turned off.
    pub task_write_limit: Option<WriteLimit>,
    /// Periodic job schedules that replace the defaults, by job name.
    pub job_schedules: BTreeMap<String, String>,
    /// Cache sizes of the embedded store, log and state.
    pub caches: CacheSizes,
    /// The language model behind the chat assistant; `None` means the offline assistant.
    pub llm: Option<LlmSettings>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub mode: Mode,
    pub role: Role,
    /// Cluster mode: where the database is (a URL or a secret reference).
    pub database_url: Option<String>,
    pub database_url_secret: Option<String>,
    pub jwt_secret_secret: Option<String>,
    pub llm_api_key_secret: Option<String>,
    pub secret_store: String,
    pub database_schema: Option<String>,
    /// Who may sign up in the web UI.
    pub signup: SignupPolicy,
}

fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .map(|dir| dir.join("taskstream"))
        .unwrap_or_else(|| PathBuf::from("taskstream-data"))
}

impl Settings {
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let file = load_file(args.common.config.as_deref())?;
        let jwt_secret = args
            .common
            .jwt_secret
            .clone()
            .or_else(|| std::env::var("JWT_SECRET").ok())
            .or(file.jwt_secret)
            .map(|secret| secret.trim().to_owned());
        if jwt_secret.as_deref() == Some("") {
            bail!("the configured JWT secret is empty");
        }
        let llm = resolve_llm(
            LlmChoices {
                api_key: args.llm_api_key.clone(),
                base_url: args.llm_base_url.clone(),
                model: args.llm_model.clone(),
                fallback_model: args.llm_fallback_model.clone(),
                timeout_secs: args.llm_timeout_secs,
            },
            std::env::var("GROQ_API_KEY").ok(),
            LlmChoices {
                api_key: file.llm_api_key,
                base_url: file.llm_base_url,
                model: file.llm_model,
                fallback_model: file.llm_fallback_model,
                timeout_secs: file.llm_timeout_secs,
            },
        )?;
        Ok(Self {
            data_dir: args
                .common
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(default_data_dir),
            http_addr: args
                .http_addr
                .clone()
                .or(file.http_addr)
                .unwrap_or_else(|| DEFAULT_HTTP_ADDR.to_owned()),
            jwt_secret,
            cors_origins: args
                .cors_origins
                .clone()
                .or(file.cors_origins)
                .unwrap_or_default(),
            notify_webhook_url: args.notify_webhook_url.clone().or(file.notify_webhook_url),
            notify_webhook_secret: args
                .notify_webhook_secret
                .clone()
                .or(file.notify_webhook_secret),
            fluvio_sc_addr: args
                .fluvio_sc_addr
                .clone()
                .or(file.fluvio_sc_addr)
                .unwrap_or_else(|| DEFAULT_FLUVIO_SC_ADDR.to_owned()),
            fluvio_spu_addr: args
                .fluvio_spu_addr
                .clone()
                .or(file.fluvio_spu_addr)
                .unwrap_or_else(|| DEFAULT_FLUVIO_SPU_ADDR.to_owned()),
            fluvio_spu_advertised_addr: args
                .fluvio_spu_advertised_addr
                .clone()
                .or(file.fluvio_spu_advertised_addr),
            fluvio_read_only: args
                .fluvio_read_only
                .or(file.fluvio_read_only)
                .unwrap_or(true),
            fluvio_idle_timeout: match args
                .fluvio_idle_timeout_secs
                .or(file.fluvio_idle_timeout_secs)
            {
                Some(0) => None,
                Some(secs) => Some(std::time::Duration::from_secs(secs)),
                None => Some(fluvio::DEFAULT_IDLE_TIMEOUT),
            },
            fluvio_max_connections_per_peer: match args
                .fluvio_max_connections_per_peer
                .or(file.fluvio_max_connections_per_peer)
            {
                Some(0) => bail!("fluvio_max_connections_per_peer must be at least 1"),
                Some(max) => usize::try_from(max).unwrap_or(usize::MAX),
                None => fluvio::DEFAULT_MAX_CONNECTIONS_PER_PEER,
            },
            behind_https: args.behind_https || file.behind_https.unwrap_or(false),
            missed_reminder_window: chrono::Duration::seconds(i64::from(
                args.missed_reminder_window_secs
                    .or(file.missed_reminder_window_secs)
                    .unwrap_or(DEFAULT_MISSED_REMINDER_WINDOW_SECS),
            )),
            notification_retention: chrono::Duration::days(i64::from(
                args.notification_retention_days
                    .or(file.notification_retention_days)
                    .unwrap_or(DEFAULT_NOTIFICATION_RETENTION_DAYS),
            )),
            http_header_read_timeout: header_timeout(
                args.http_header_timeout_secs
                    .or(file.http_header_timeout_secs),
            )?,
            task_write_limit: task_write_limit(
                args.task_write_burst.or(file.task_write_burst),
                args.task_writes_per_second.or(file.task_writes_per_second),
            )?,
            job_schedules: job_schedules(&args.job_schedules, file.job_schedules)?,
            caches: cache_sizes(CacheChoices {
                sqlite_cache_mib: args.sqlite_cache_mib.or(file.sqlite_cache_mib),
                sqlite_reader_cache_mib: args
                    .sqlite_reader_cache_mib
                    .or(file.sqlite_reader_cache_mib),
                sqlite_readers: args.sqlite_readers.or(file.sqlite_readers),
                sqlite_mmap_mib: args.sqlite_mmap_mib.or(file.sqlite_mmap_mib),
                log_cache_mib: args.log_cache_mib.or(file.log_cache_mib),
                state_cache_mib: args.state_cache_mib.or(file.state_cache_mib),
            })?,
            llm,
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            log_level: args
                .log_level
                .clone()
                .or(file.log_level)
                .unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned()),
            mode: args.mode.or(file.mode).unwrap_or_default(),
            role: args.role.or(file.role).unwrap_or_default(),
            database_url: args
                .database_url
                .clone()
                .or_else(|| std::env::var("DATABASE_URL").ok())
                .or(file.database_url)
                .map(|url| url.trim().to_owned())
                .filter(|url| !url.is_empty()),
            database_url_secret: args
                .database_url_secret
                .clone()
                .or(file.database_url_secret),
            jwt_secret_secret: args.jwt_secret_secret.clone().or(file.jwt_secret_secret),
            llm_api_key_secret: args.llm_api_key_secret.clone().or(file.llm_api_key_secret),
            secret_store: args
                .secret_store
                .clone()
                .or(file.secret_store)
                .unwrap_or_else(|| DEFAULT_SECRET_STORE.to_owned()),
            database_schema: args.database_schema.clone().or(file.database_schema),
            signup: match args.signup.clone().or(file.signup) {
                Some(text) => text.parse().map_err(anyhow::Error::msg)?,
                None => SignupPolicy::default(),
            },
        })
    }
}

/// The cache settings as given (flag, variable or file), in MiB.
#[derive(Debug, Default)]
struct CacheChoices {
    sqlite_cache_mib: Option<u32>,
    sqlite_reader_cache_mib: Option<u32>,
    sqlite_readers: Option<u32>,
    sqlite_mmap_mib: Option<u32>,
    log_cache_mib: Option<u32>,
    state_cache_mib: Option<u32>,
}

/// The largest cache one setting may ask for: 64 GiB is beyond any host this serves, and
/// bounds a typo (`--log-cache-mib 1000000`).
const MAX_CACHE_MIB: u32 = 65_536;

/// Cache sizes from their settings; each unset one keeps its default.
fn cache_sizes(choices: CacheChoices) -> anyhow::Result<CacheSizes> {
    let defaults = CacheSizes::DEFAULT;
    let bytes = |name: &str, mib: Option<u32>, default: u64| -> anyhow::Result<u64> {
        match mib {
            None => Ok(default),
            Some(mib) if mib > MAX_CACHE_MIB => {
                bail!("{name} must be at most {MAX_CACHE_MIB} MiB, not {mib}")
            }
            Some(mib) => Ok(u64::from(mib) * 1024 * 1024),
        }
    };
    let sqlite_readers = match choices.sqlite_readers {
        None => defaults.sqlite_readers,
        Some(n) if n == 0 || n as usize > CacheSizes::MAX_SQLITE_READERS => bail!(
            "sqlite_readers must be between 1 and {}, not {n}",
            CacheSizes::MAX_SQLITE_READERS
        ),
        Some(n) => n as usize,
    };
    Ok(CacheSizes {
        sqlite_writer_bytes: bytes(
            "sqlite_cache_mib",
            choices.sqlite_cache_mib,
            defaults.sqlite_writer_bytes,
        )?,
        sqlite_reader_bytes: bytes(
            "sqlite_reader_cache_mib",
            choices.sqlite_reader_cache_mib,
            defaults.sqlite_reader_bytes,
        )?,
        sqlite_readers,
        sqlite_mmap_bytes: bytes(
            "sqlite_mmap_mib",
            choices.sqlite_mmap_mib,
            defaults.sqlite_mmap_bytes,
        )?,
        log_bytes: bytes("log_cache_mib", choices.log_cache_mib, defaults.log_bytes)?,
        state_bytes: bytes(
            "state_cache_mib",
            choices.state_cache_mib,
            defaults.state_bytes,
        )?,
    })
}

/// The file's `[job_schedules]` table with each `--job-schedule NAME=CRON` laid over it.
fn job_schedules(
    flags: &[String],
    file: Option<BTreeMap<String, String>>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut schedules = file.unwrap_or_default();
    for flag in flags.iter().filter(|flag| !flag.trim().is_empty()) {
        let Some((name, cron)) = flag.split_once('=') else {
            bail!("--job-schedule takes NAME=CRON, e.g. daily-digest=0 0 * * * * (got {flag:?})");
        };
        schedules.insert(name.trim().to_owned(), cron.trim().to_owned());
    }
    Ok(schedules)
}

/// An API key; its `Debug` form hides it so that settings can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<hidden>)")
    }
}

/// Where the chat assistant's language model is and how long it may take.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmSettings {
    pub api_key: ApiKey,
    /// Without a trailing slash: requests go to `{base_url}/chat/completions`.
    pub base_url: String,
    pub model: String,
    pub fallback_model: Option<String>,
    pub timeout: std::time::Duration,
}

/// The LLM settings one layer (flags and `TASKSTREAM_*`, or the file) gives.
#[derive(Debug, Default)]
struct LlmChoices {
    api_key: Option<String>,
    base_url: Option<String>,
    model: Option<String>,
    fallback_model: Option<String>,
    timeout_secs: Option<u64>,
}

/// Layers the LLM settings: flags and `TASKSTREAM_LLM_*`, then `GROQ_API_KEY` (the reference's
/// variable) for the key, then the file, then defaults. An empty key means "no model", as the
/// reference's empty default did.
fn resolve_llm(
    args: LlmChoices,
    groq_api_key: Option<String>,
    file: LlmChoices,
) -> anyhow::Result<Option<LlmSettings>> {
    let non_empty = |key: Option<String>| {
        key.map(|key| key.trim().to_owned())
            .filter(|key| !key.is_empty())
    };
    let api_key = non_empty(args.api_key)
        .or_else(|| non_empty(groq_api_key))
        .or_else(|| non_empty(file.api_key));
    let base_url = args
        .base_url
        .or(file.base_url)
        .map(|url| url.trim().trim_end_matches('/').to_owned())
        .unwrap_or_else(|| GROQ_BASE_URL.to_owned());
    let parsed = reqwest::Url::parse(&base_url)
        .with_context(|| format!("invalid LLM base URL {base_url:?}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        bail!("the LLM base URL must be http or https: {base_url}");
    }
    let model = args
        .model
        .or(file.model)
        .map(|model| model.trim().to_owned())
        .unwrap_or_else(|| GROQ_PRIMARY_MODEL.to_owned());
    if model.is_empty() {
        bail!("the LLM model name is empty");
    }
    let fallback_model = match args.fallback_model.or(file.fallback_model) {
        Some(name) => Some(name.trim().to_owned()).filter(|name| !name.is_empty()),
        None if base_url == GROQ_BASE_URL => Some(GROQ_FALLBACK_MODEL.to_owned()),
        None => None,
    };
    let timeout_secs = args
        .timeout_secs
        .or(file.timeout_secs)
        .unwrap_or(DEFAULT_LLM_TIMEOUT_SECS);
    if timeout_secs == 0 {
        bail!("the LLM timeout must be at least one second");
    }
    Ok(api_key.map(|key| LlmSettings {
        api_key: ApiKey::new(key),
        base_url,
        model,
        fallback_model,
        timeout: std::time::Duration::from_secs(timeout_secs),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    #[test]
    fn unset_caches_keep_their_defaults_and_set_ones_are_mebibytes() -> anyhow::Result<()> {
        assert_eq!(cache_sizes(CacheChoices::default())?, CacheSizes::DEFAULT);
        let caches = cache_sizes(CacheChoices {
            log_cache_mib: Some(3),
            sqlite_readers: Some(2),
            sqlite_mmap_mib: Some(0),
            ..CacheChoices::default()
        })?;
        assert_eq!(caches.log_bytes, 3 * 1024 * 1024);
        assert_eq!(caches.sqlite_readers, 2);
        assert_eq!(caches.sqlite_mmap_bytes, 0);
        assert_eq!(caches.state_bytes, CacheSizes::DEFAULT.state_bytes);
        Ok(())
    }

    #[test]
    fn out_of_range_caches_are_refused_by_name() {
        let error = cache_sizes(CacheChoices {
            state_cache_mib: Some(MAX_CACHE_MIB + 1),
            ..CacheChoices::default()
        })
        .err()
        .map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("state_cache_mib")),
            "{error:?}"
        );
        for readers in [0, 65] {
            let error = cache_sizes(CacheChoices {
                sqlite_readers: Some(readers),
                ..CacheChoices::default()
            })
            .err()
            .map(|e| e.to_string());
            assert!(
                error
                    .as_deref()
                    .is_some_and(|e| e.contains("sqlite_readers")),
                "{readers}: {error:?}"
            );
        }
    }

    #[test]
    fn no_key_means_no_language_model() {
        let llm = resolve_llm(LlmChoices::default(), None, LlmChoices::default());
        assert!(matches!(llm, Ok(None)));
        let blank = LlmChoices {
            api_key: key("  "),
            ..LlmChoices::default()
        };
        assert!(matches!(
            resolve_llm(blank, key(""), LlmChoices::default()),
            Ok(None)
        ));
    }

    #[test]
    fn a_groq_key_alone_gives_groq_with_both_models() -> anyhow::Result<()> {
        let llm = resolve_llm(LlmChoices::default(), key("gsk_x"), LlmChoices::default())?
            .context("a model")?;
        assert_eq!(llm.api_key.expose(), "gsk_x");
        assert_eq!(llm.base_url, "https://api.groq.com/openai/v1");
        assert_eq!(llm.model, "llama-3.3-70b-versatile");
        assert_eq!(llm.fallback_model.as_deref(), Some("llama-3.1-8b-instant"));
        assert_eq!(llm.timeout, std::time::Duration::from_secs(30));
        assert!(!format!("{llm:?}").contains("gsk_x"));
        Ok(())
    }

    #[test]
    fn flags_beat_groq_key_which_beats_the_file() -> anyhow::Result<()> {
        let file = || LlmChoices {
            api_key: key("from-file"),
            base_url: key("http://file.invalid/v1"),
            model: key("file-model"),
            fallback_model: None,
            timeout_secs: Some(5),
        };
        let args = LlmChoices {
            api_key: key("from-flag"),
            base_url: key("http://127.0.0.1:9/v1/"),
            ..LlmChoices::default()
        };
        let llm = resolve_llm(args, key("from-groq"), file())?.context("a model")?;
        assert_eq!(llm.api_key.expose(), "from-flag");
        assert_eq!(llm.base_url, "http://127.0.0.1:9/v1");
        assert_eq!(llm.model, "file-model");
        // Not Groq's endpoint: no fallback model unless one is named.
        assert_eq!(llm.fallback_model, None);
        assert_eq!(llm.timeout, std::time::Duration::from_secs(5));

        let llm =
            resolve_llm(LlmChoices::default(), key("from-groq"), file())?.context("a model")?;
        assert_eq!(llm.api_key.expose(), "from-groq");
        let llm = resolve_llm(LlmChoices::default(), None, file())?.context("a model")?;
        assert_eq!(llm.api_key.expose(), "from-file");
        Ok(())
    }

    #[test]
    fn an_empty_fallback_turns_groqs_default_off() -> anyhow::Result<()> {
        let args = LlmChoices {
            api_key: key("k"),
            fallback_model: key(""),
            ..LlmChoices::default()
        };
        let llm = resolve_llm(args, None, LlmChoices::default())?.context("a model")?;
        assert_eq!(llm.fallback_model, None);
        Ok(())
    }

    #[test]
    fn bad_urls_and_a_zero_timeout_are_refused() {
        for args in [
            LlmChoices {
                base_url: key("not a url"),
                ..LlmChoices::default()
            },
            LlmChoices {
                base_url: key("ftp://example.invalid/v1"),
                ..LlmChoices::default()
            },
            LlmChoices {
                timeout_secs: Some(0),
                ..LlmChoices::default()
            },
        ] {
            assert!(resolve_llm(args, key("k"), LlmChoices::default()).is_err());
        }
    }

    #[test]
    fn job_schedule_flags_override_the_file_table() -> anyhow::Result<()> {
        let file: FileConfig = toml::from_str(
            "[job_schedules]\ndaily-digest = \"0 0 * * * *\"\nlog-retention = \"0 5 * * * *\"\n",
        )?;
        let flags = ["daily-digest = 0 */30 * * * *".to_owned(), " ".to_owned()];
        let schedules = job_schedules(&flags, file.job_schedules)?;
        assert_eq!(
            schedules.get("daily-digest").map(String::as_str),
            Some("0 */30 * * * *")
        );
        assert_eq!(
            schedules.get("log-retention").map(String::as_str),
            Some("0 5 * * * *")
        );
        assert!(job_schedules(&["daily-digest".to_owned()], None).is_err());
        Ok(())
    }

    /// `serve` arguments as clap parses them (environment variables included).
    fn serve_args(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let argv = std::iter::once("serve").chain(args.iter().copied());
        <Wrapper as clap::Parser>::try_parse_from(argv).map(|wrapper| wrapper.serve)
    }

    #[test]
    fn fluvio_limits_default_to_read_only_with_an_idle_timeout_and_a_peer_cap() -> anyhow::Result<()>
    {
        let dir = tempfile::tempdir()?;
        let empty = dir.path().join("empty.toml");
        std::fs::write(&empty, "")?;
        let empty = empty.to_string_lossy().into_owned();
        let settings = Settings::resolve(&serve_args(&["--config", &empty])?)?;
        assert!(settings.fluvio_read_only, "read-only unless opted out");
        assert_eq!(
            settings.fluvio_idle_timeout,
            Some(std::time::Duration::from_secs(300))
        );
        assert_eq!(settings.fluvio_max_connections_per_peer, 64);

        // The file turns read-only off and sets the limits; flags beat the file.
        let file = dir.path().join("taskstream.toml");
        std::fs::write(
            &file,
            "fluvio_read_only = false\nfluvio_idle_timeout_secs = 0\nfluvio_max_connections_per_peer = 8\n",
        )?;
        let file = file.to_string_lossy().into_owned();
        let settings = Settings::resolve(&serve_args(&["--config", &file])?)?;
        assert!(!settings.fluvio_read_only);
        assert_eq!(settings.fluvio_idle_timeout, None, "0 means never");
        assert_eq!(settings.fluvio_max_connections_per_peer, 8);
        let settings = Settings::resolve(&serve_args(&[
            "--config",
            &file,
            "--fluvio-read-only",
            "--fluvio-idle-timeout-secs",
            "2",
            "--fluvio-max-connections-per-peer",
            "3",
        ])?)?;
        assert!(settings.fluvio_read_only, "a bare flag means true");
        assert_eq!(
            settings.fluvio_idle_timeout,
            Some(std::time::Duration::from_secs(2))
        );
        assert_eq!(settings.fluvio_max_connections_per_peer, 3);
        let settings = Settings::resolve(&serve_args(&[
            "--config",
            &empty,
            "--fluvio-read-only=false",
        ])?)?;
        assert!(!settings.fluvio_read_only);
        let settings =
            Settings::resolve(&serve_args(&["--config", &empty, "--fluvio-read-only=no"])?)?;
        assert!(!settings.fluvio_read_only);

        assert!(serve_args(&["--fluvio-max-connections-per-peer", "0"]).is_err());
        let zero = dir.path().join("zero.toml");
        std::fs::write(&zero, "fluvio_max_connections_per_peer = 0\n")?;
        let zero = zero.to_string_lossy().into_owned();
        assert!(Settings::resolve(&serve_args(&["--config", &zero])?).is_err());
        Ok(())
    }
}
