//! `taskstream mcp`: the MCP server over stdio, for desktop AI clients that launch their tool
//! servers as child processes (Claude Desktop and the like).
//!
//! It opens the data directory's SQLite store directly and does not take the directory's lock,
//! so it runs next to a `taskstream serve` on the same directory (SQLite in WAL mode serialises
//! the two writers). Every write lands in the store's outbox in the same transaction as the
//! task, like any other write; this process relays nothing and fires no reminders. The running
//! server notices the other process's commits within about a second, relays the events and
//! reloads its reminder queue; with no server running they wait, durably, for the next
//! `taskstream serve`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono_tz::Tz;
use rmcp::ServiceExt;
use taskstream_engine::TaskService;
use taskstream_engine::embedded::SqliteTaskStore;
use taskstream_engine::recurrence::parse_zone;
use taskstream_web::TaskstreamMcp;

use crate::config::{CommonArgs, LogFormat, ServeArgs, Settings};
use crate::data_dir;
use crate::serve::init_logging;

/// Options of `taskstream mcp`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Client configuration (Claude Desktop's claude_desktop_config.json and similar):
  {\"mcpServers\": {\"taskstream\": {\"command\": \"taskstream\",
                                  \"args\": [\"mcp\", \"--user\", \"you@example.com\"]}}}

stdout carries the protocol; logs go to stderr.")]
pub struct McpArgs {
    /// The data directory of `taskstream serve` whose tasks the tools work on [default: the
    /// platform data directory, e.g. ~/.local/share/taskstream]
    #[arg(long, env = "TASKSTREAM_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Configuration file (TOML), read for `data_dir` and logging [default: ./taskstream.toml
    /// when it exists]
    #[arg(long, env = "TASKSTREAM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The user the tools act for: the id that is the `sub` of this user's API tokens. An email
    /// address works too; it is used verbatim as the id
    #[arg(long, env = "TASKSTREAM_MCP_USER", value_name = "USER")]
    pub user: String,

    /// Time zone for dates given without an offset, an IANA name such as Europe/Berlin
    /// [default: UTC]
    #[arg(long, env = "TASKSTREAM_MCP_TIMEZONE", value_name = "ZONE")]
    pub timezone: Option<String>,

    /// Log format (logs go to stderr) [default: human]
    #[arg(long, env = "TASKSTREAM_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log filter, e.g. `info` or `warn` [default: info,rmcp=warn]
    #[arg(long, env = "TASKSTREAM_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
}

pub async fn run(args: McpArgs) -> anyhow::Result<()> {
    let user = args.user.trim().to_owned();
    if user.is_empty() {
        bail!("--user must not be empty");
    }
    let zone = match args.timezone.as_deref() {
        None => Tz::UTC,
        Some(name) => parse_zone(name).with_context(|| {
            format!("unknown time zone {name:?}: use an IANA name such as Europe/Berlin")
        })?,
    };
    let settings = Settings::resolve(&ServeArgs {
        common: CommonArgs {
            data_dir: args.data_dir.clone(),
            config: args.config.clone(),
            jwt_secret: None,
        },
        log_format: args.log_format,
        log_level: args.log_level.clone(),
        ..ServeArgs::default()
    })?;
    // stderr only: stdout is the protocol.
    init_logging(settings.log_format, &settings.log_level)?;

    data_dir::ensure(&settings.data_dir)?;
    let database = settings.data_dir.join(data_dir::DATABASE_FILE);
    data_dir::private_file(&database)?;
    let store = SqliteTaskStore::open_with(&database, &settings.caches)
        .with_context(|| format!("cannot open the task store {}", database.display()))?;
    let handler = TaskstreamMcp::for_user(TaskService::new(Arc::new(store)), &user, zone);
    tracing::info!(
        user = %user,
        data_dir = %settings.data_dir.display(),
        "serving MCP over stdio; `taskstream serve` on this data directory relays the events and fires the reminders"
    );
    let service = handler
        .serve(rmcp::transport::stdio_pipes())
        .await
        .context("the MCP client did not complete the handshake")?;
    let reason = service.waiting().await.context("the MCP service failed")?;
    tracing::info!(?reason, "MCP client gone; stopping");
    Ok(())
}
