//! `taskstream backup` and `taskstream restore`, and the running server's control socket that
//! takes a backup while it serves.
//!
//! A backup is a directory holding `taskstream.db` (SQLite's online backup API), `events.redb`
//! and `state.redb` (copies of one read transaction each), the `jwt-secret` (so tokens and
//! personal API tokens stay valid) and `backup.json` (what and when). The three stores are
//! copied while the SQLite writer holds back this process's next write, so they show one
//! moment: every write acknowledged before the backup started is in it. Events the relay had
//! already appended to the log but not yet removed from the outbox appear in both; after a
//! restore they are relayed again and the consumers, idempotent by event id, skip them.
//!
//! With a server running on the data directory, `taskstream backup` asks it through
//! `DATA_DIR/control.sock` (a Unix socket only the directory's owner can open); without one,
//! it takes the directory's lock and copies the stores itself.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use taskstream_engine::EngineError;
use taskstream_engine::embedded::SqliteTaskStore;
use taskstream_engine::embedded::log::{EventLog, LogConfig};
use taskstream_engine::embedded::state::RedbStateStore;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::config::{CommonArgs, ServeArgs, Settings};
use crate::data_dir::{self, DATABASE_FILE};

/// The control socket's file in the data directory.
pub const CONTROL_SOCKET: &str = "control.sock";
/// The manifest of a backup directory.
pub const MANIFEST: &str = "backup.json";
/// The event log's file in the data directory.
pub const EVENT_LOG_FILE: &str = "events.redb";
/// The state store's file in the data directory.
pub const STATE_FILE: &str = "state.redb";
const SECRET_FILE: &str = "jwt-secret";
/// Longest request line the control socket reads.
const REQUEST_MAX_BYTES: u64 = 8 * 1024;

/// The stores of one data directory, open, that a backup copies.
#[derive(Clone)]
pub struct Stores {
    pub sqlite: Arc<SqliteTaskStore>,
    pub log: EventLog,
    pub state: Arc<RedbStateStore>,
    pub data_dir: PathBuf,
}

/// A new, empty directory for a backup (an existing empty one is fine), private to its owner.
fn prepare_destination(dest: &Path) -> anyhow::Result<()> {
    if dest.exists() {
        let mut entries = std::fs::read_dir(dest)
            .with_context(|| format!("{} is not a directory", dest.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} is not empty: a backup goes into a new or empty directory",
                dest.display()
            );
        }
    } else {
        std::fs::create_dir_all(dest)
            .with_context(|| format!("cannot create {}", dest.display()))?;
    }
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

fn private_copy(from: &Path, to: &Path) -> anyhow::Result<u64> {
    let bytes = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .with_context(|| format!("cannot create {}", to.display()))?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    Ok(bytes.len() as u64)
}

impl Stores {
    /// Writes a backup of these stores into `dest` (new or empty); returns its manifest.
    pub async fn backup(&self, dest: &Path) -> anyhow::Result<Value> {
        prepare_destination(dest)?;
        let started = std::time::Instant::now();
        let log = self.log.clone();
        let state = Arc::clone(&self.state);
        let (log_copy, state_copy) = (dest.join(EVENT_LOG_FILE), dest.join(STATE_FILE));
        self.sqlite
            .backup_with(dest.join(DATABASE_FILE), move || {
                log.backup_to(&log_copy)
                    .map_err(|error| EngineError::Store(format!("event log: {error}")))?;
                state.backup_to(&state_copy)?;
                Ok(())
            })
            .await
            .context("the backup failed")?;
        let secret = self.data_dir.join(SECRET_FILE);
        if secret.exists() {
            private_copy(&secret, &dest.join(SECRET_FILE))?;
        }
        let mut files = Vec::new();
        for name in [DATABASE_FILE, EVENT_LOG_FILE, STATE_FILE, SECRET_FILE] {
            let path = dest.join(name);
            if let Ok(meta) = std::fs::metadata(&path) {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                files.push(json!({"name": name, "bytes": meta.len()}));
            }
        }
        let manifest = json!({
            "format": "taskstream-backup",
            "version": 1,
            "created_at": taskstream_engine::time::format_utc(taskstream_engine::time::now()),
            "data_dir": self.data_dir.display().to_string(),
            "took_ms": started.elapsed().as_millis() as u64,
            "files": files,
        });
        let path = dest.join(MANIFEST);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(serde_json::to_string_pretty(&manifest)?.as_bytes())?;
        file.sync_all()?;
        Ok(manifest)
    }
}

/// Serves backup requests on `DATA_DIR/control.sock` until `stop` turns true; the socket file
/// goes when it stops. One JSON line in (`{"op": "backup", "dest": "/abs/dir"}`), one out
/// (`{"ok": true, "manifest": …}` or `{"ok": false, "error": "…"}`).
pub async fn serve_control(stores: Stores, mut stop: tokio::sync::watch::Receiver<bool>) {
    let path = stores.data_dir.join(CONTROL_SOCKET);
    let _ = std::fs::remove_file(&path);
    let listener = match tokio::net::UnixListener::bind(&path) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!(socket = %path.display(), %error, "no control socket: `taskstream backup` cannot reach this server");
            return;
        }
    };
    if let Err(error) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(%error, "cannot restrict the control socket to its owner; closing it");
        let _ = std::fs::remove_file(&path);
        return;
    }
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopping| *stopping) => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let stores = stores.clone();
                tokio::spawn(async move { answer(stream, stores).await });
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

async fn answer(stream: tokio::net::UnixStream, stores: Stores) {
    let (reader, mut writer) = stream.into_split();
    let mut line = String::new();
    let mut reader =
        tokio::io::BufReader::new(tokio::io::AsyncReadExt::take(reader, REQUEST_MAX_BYTES));
    let reply = match reader.read_line(&mut line).await {
        Err(error) => json!({"ok": false, "error": format!("cannot read the request: {error}")}),
        Ok(_) => match serde_json::from_str::<Value>(&line) {
            Ok(request) if request["op"] == "backup" => match request["dest"].as_str() {
                Some(dest) if Path::new(dest).is_absolute() => {
                    tracing::info!(dest, "backup requested on the control socket");
                    match stores.backup(Path::new(dest)).await {
                        Ok(manifest) => {
                            tracing::info!(dest, "backup written");
                            json!({"ok": true, "manifest": manifest})
                        }
                        Err(error) => {
                            tracing::warn!(dest, error = %format!("{error:#}"), "backup failed");
                            json!({"ok": false, "error": format!("{error:#}")})
                        }
                    }
                }
                _ => json!({"ok": false, "error": "dest must be an absolute path"}),
            },
            _ => json!({"ok": false, "error": "unknown request"}),
        },
    };
    let _ = writer.write_all(format!("{reply}\n").as_bytes()).await;
    let _ = writer.shutdown().await;
}

/// Options of `taskstream backup`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
The backup is a directory: taskstream.db, events.redb, state.redb, jwt-secret and
backup.json, readable by its owner only. With a server running on the data directory the
server takes it (through DATA_DIR/control.sock) while it goes on serving; every write it had
acknowledged before the backup began is in it. Without a server, this command takes the
directory's lock and copies the stores itself.

Restore it with `taskstream restore DIR --data-dir NEW` (with no server running on NEW).")]
pub struct BackupArgs {
    /// A new (or empty) directory to write the backup into
    #[arg(value_name = "DIR")]
    pub dest: PathBuf,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// Options of `taskstream restore`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Refuses while a server runs on the data directory (stop it first), and refuses to replace
data already there unless --force is given. Then start `taskstream serve` on it: events the
backup held but had not relayed are relayed, and reminders are armed again.")]
pub struct RestoreArgs {
    /// A directory written by `taskstream backup`
    #[arg(value_name = "BACKUP")]
    pub backup: PathBuf,

    /// Replace the data directory's existing data
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

fn data_dir_of(common: &CommonArgs) -> anyhow::Result<PathBuf> {
    Ok(Settings::resolve(&ServeArgs {
        common: CommonArgs {
            jwt_secret: None,
            ..common.clone()
        },
        ..ServeArgs::default()
    })?
    .data_dir)
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

pub async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let dir = data_dir_of(&args.common)?;
    if !dir.join(DATABASE_FILE).exists() {
        bail!("no taskstream data in {}", dir.display());
    }
    let dest = absolute(&args.dest)?;
    let manifest = match data_dir::lock(&dir) {
        Ok(_lock) => {
            // No server: open the stores here, holding the lock so none starts meanwhile.
            let stores = Stores {
                sqlite: Arc::new(SqliteTaskStore::open(&dir.join(DATABASE_FILE))?),
                log: EventLog::open(&dir.join(EVENT_LOG_FILE), LogConfig::default())?,
                state: Arc::new(RedbStateStore::open(&dir.join(STATE_FILE))?),
                data_dir: dir.clone(),
            };
            stores.backup(&dest).await?
        }
        Err(_) => ask_server(&dir, &dest)?,
    };
    println!(
        "backup of {} written to {} ({})",
        dir.display(),
        dest.display(),
        manifest["files"]
            .as_array()
            .map(|files| files
                .iter()
                .map(|file| format!(
                    "{} {} bytes",
                    file["name"].as_str().unwrap_or(""),
                    file["bytes"]
                ))
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default()
    );
    Ok(())
}

/// Asks the server running on `dir` for a backup into `dest`.
fn ask_server(dir: &Path, dest: &Path) -> anyhow::Result<Value> {
    let socket = dir.join(CONTROL_SOCKET);
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).with_context(|| {
        format!(
            "a server holds {} but its control socket {} does not answer",
            dir.display(),
            socket.display()
        )
    })?;
    let request = json!({"op": "backup", "dest": dest.display().to_string()});
    stream.write_all(format!("{request}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    let reply: Value = serde_json::from_str(&line)
        .with_context(|| format!("the server's answer is not JSON: {line:?}"))?;
    if reply["ok"] != true {
        bail!(
            "the server could not back up: {}",
            reply["error"].as_str().unwrap_or("no reason given")
        );
    }
    Ok(reply["manifest"].clone())
}

pub async fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let backup = args.backup;
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup.join(MANIFEST)).with_context(|| {
            format!(
                "{} is not a taskstream backup (no {MANIFEST})",
                backup.display()
            )
        })?)
        .context("the backup's manifest is not JSON")?;
    if manifest["format"] != "taskstream-backup" {
        bail!("{} is not a taskstream backup", backup.display());
    }
    for name in [DATABASE_FILE, EVENT_LOG_FILE, STATE_FILE] {
        if !backup.join(name).is_file() {
            bail!("the backup {} lacks {name}", backup.display());
        }
    }
    let dir = data_dir_of(&args.common)?;
    data_dir::ensure(&dir)?;
    let _lock = data_dir::lock(&dir).map_err(|error| {
        anyhow::anyhow!(
            "{error:#}\nrestore never replaces the data of a running server: stop it, then restore"
        )
    })?;
    let existing = std::fs::metadata(dir.join(DATABASE_FILE)).is_ok_and(|meta| meta.len() > 0);
    if existing && !args.force {
        bail!(
            "{} already holds taskstream data: pass --force to replace it with the backup",
            dir.display()
        );
    }
    // The old database's write-ahead log must not be applied to the restored file.
    for stale in ["taskstream.db-wal", "taskstream.db-shm"] {
        let path = dir.join(stale);
        if path.exists() {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    for name in [DATABASE_FILE, EVENT_LOG_FILE, STATE_FILE, SECRET_FILE] {
        let from = backup.join(name);
        if !from.exists() {
            continue;
        }
        let staged = dir.join(format!(".{name}.restoring"));
        let _ = std::fs::remove_file(&staged);
        private_copy(&from, &staged)?;
        std::fs::rename(&staged, dir.join(name))
            .with_context(|| format!("cannot put {name} in place"))?;
    }
    println!(
        "restored the backup of {} into {}; start `taskstream serve` on it",
        manifest["created_at"].as_str().unwrap_or("?"),
        dir.display()
    );
    Ok(())
}
