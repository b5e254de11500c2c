//! `taskstream user`: manage the local accounts of the built-in web UI from the shell. Works
//! next to a running `taskstream serve` on the same data directory (SQLite in WAL mode lets the
//! two write), or on the PostgreSQL database of cluster mode.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use anyhow::{Context, bail};
use taskstream_cluster::postgres::{PgOptions, PostgresStore};
use taskstream_engine::accounts::AccountService;
use taskstream_engine::embedded::SqliteTaskStore;
use taskstream_engine::ports::AccountStore;

use crate::config::{CommonArgs, Mode, ServeArgs, Settings};
use crate::data_dir;

#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create an account (whatever the sign-up policy) and print its id. The password is the
    /// first line of stdin, e.g. `printf '%s\n' "$PASSWORD" | taskstream user add --email
    /// you@example.com --password-stdin`.
    Add(AddArgs),
    /// Print every account: id, email and creation time, tab-separated, oldest first.
    List(TargetArgs),
}

/// Where the accounts are: the embedded data directory, or PostgreSQL in cluster mode.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// embedded: the SQLite database in the data directory; cluster: PostgreSQL at
    /// --database-url [default: embedded]
    #[arg(long, env = "TASKSTREAM_MODE", value_enum)]
    pub mode: Option<Mode>,

    /// Cluster mode: PostgreSQL URL (DATABASE_URL is read too)
    #[arg(
        long,
        env = "TASKSTREAM_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Cluster mode: PostgreSQL schema holding the tables
    #[arg(long, env = "TASKSTREAM_DATABASE_SCHEMA", value_name = "SCHEMA")]
    pub database_schema: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// The account's email address (its log-in name)
    #[arg(long, value_name = "EMAIL")]
    pub email: String,

    /// Read the password from the first line of stdin. This is the only way a password is
    /// taken (never from a flag, where it would show in `ps` and shell history); the flag
    /// makes scripts say so explicitly.
    #[arg(long)]
    pub password_stdin: bool,
}

pub async fn run(args: UserArgs) -> anyhow::Result<()> {
    match args.command {
        UserCommand::Add(add) => {
            let password = read_password()?;
            let accounts = open(&add.target).await?;
            let account = accounts
                .create_account(&add.email, &password)
                .await
                .context("cannot create the account")?;
            println!("{}", account.id);
            Ok(())
        }
        UserCommand::List(target) => {
            let accounts = open(&target).await?;
            let mut out = std::io::stdout().lock();
            for account in accounts.accounts().await? {
                writeln!(
                    out,
                    "{}\t{}\t{}",
                    account.id,
                    account.email,
                    taskstream_engine::time::format_utc(account.created_at)
                )?;
            }
            Ok(())
        }
    }
}

/// The first line of stdin without its line ending; refuses an empty one.
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password (shown as you type; pipe it in to avoid that): ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let password = line
        .strip_suffix('\n')
        .map(|rest| rest.strip_suffix('\r').unwrap_or(rest))
        .unwrap_or(&line);
    if password.is_empty() {
        bail!(
            "no password on stdin: pipe it in as the first line, e.g. printf '%s\\n' \"$PASSWORD\" | taskstream user add --email ... --password-stdin"
        );
    }
    Ok(password.to_owned())
}

async fn open(target: &TargetArgs) -> anyhow::Result<AccountService> {
    let settings = Settings::resolve(&ServeArgs {
        common: target.common.clone(),
        mode: target.mode,
        database_url: target.database_url.clone(),
        database_schema: target.database_schema.clone(),
        ..ServeArgs::default()
    })?;
    let store: Arc<dyn AccountStore> = match settings.mode {
        Mode::Embedded => {
            data_dir::ensure(&settings.data_dir)?;
            let database = settings.data_dir.join(data_dir::DATABASE_FILE);
            data_dir::private_file(&database)?;
            Arc::new(
                SqliteTaskStore::open(&database).with_context(|| {
                    format!("cannot open the task store {}", database.display())
                })?,
            )
        }
        Mode::Cluster => {
            let Some(url) = settings.database_url.as_deref() else {
                bail!("cluster mode needs --database-url (TASKSTREAM_DATABASE_URL, DATABASE_URL)");
            };
            let options = PgOptions {
                schema: settings.database_schema.clone(),
                pool_size: 2,
                ..PgOptions::default()
            };
            Arc::new(
                PostgresStore::connect(url, options)
                    .await
                    .context("cannot connect to PostgreSQL")?,
            )
        }
    };
    // Only account rows are touched here; the token key (derived from the JWT secret) is not
    // used, so no secret is needed.
    Ok(AccountService::new(store, b"", settings.signup))
}
