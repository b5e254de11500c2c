//! Configuration: flags > `TASKSTREAM_*` environment > `taskstream.toml` > defaults.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// Default HTTP listen address: loopback only, so a laptop install is not exposed by accident.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
/// Default Fluvio SC (admin) and SPU (data) addresses, the ports of a local Fluvio cluster.
pub const DEFAULT_FLUVIO_SC_ADDR: &str = "127.0.0.1:9003";
pub const DEFAULT_FLUVIO_SPU_ADDR: &str = "127.0.0.1:9010";
/// Reminders at most a day late still fire after downtime.
pub const DEFAULT_MISSED_REMINDER_WINDOW_SECS: u32 = 86_400;
/// Notifications stay three months unless configured otherwise.
pub const DEFAULT_NOTIFICATION_RETENTION_DAYS: u32 = 90;
const DEFAULT_CONFIG_FILE: &str = "taskstream.toml";

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

    /// Make the appliance's own topics (task-events, reminders, task-updates) read-only to
    /// Fluvio clients: they can consume them, not produce to or delete them
    #[arg(long, env = "TASKSTREAM_FLUVIO_READ_ONLY")]
    pub fluvio_read_only: bool,

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

    /// Log format [default: human]
    #[arg(long, env = "TASKSTREAM_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log filter, e.g. `info` or `taskstream=debug,info` [default: info]
    #[arg(long, env = "TASKSTREAM_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
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
    missed_reminder_window_secs: Option<u32>,
    notification_retention_days: Option<u32>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
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
    pub fluvio_read_only: bool,
    pub missed_reminder_window: chrono::Duration,
    pub notification_retention: chrono::Duration,
    pub log_format: LogFormat,
    pub log_level: String,
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
            fluvio_read_only: args.fluvio_read_only || file.fluvio_read_only.unwrap_or(false),
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
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            log_level: args
                .log_level
                .clone()
                .or(file.log_level)
                .unwrap_or_else(|| "info".to_owned()),
        })
    }
}
