//! The `taskstream` binary under test: started on a temporary data directory and a free port,
//! stopped with SIGTERM, restarted on the same data.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use tokio::process::{Child, Command};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Server {
    bin: PathBuf,
    /// Holds `data/` and `server.log`; removed on drop.
    root: tempfile::TempDir,
    child: Option<Child>,
    pub base: String,
    pub secret: String,
    pub client: reqwest::Client,
    /// Time from spawn to the first 200 from `/ready`, of the latest start.
    pub ready_after: Duration,
    /// When the latest start spawned the process.
    pub spawned_at: Instant,
    /// When `/ready` first answered 200 after the latest start.
    pub ready_at: Instant,
}

impl Server {
    pub async fn start(bin: Option<&Path>) -> Result<Self> {
        let bin = match bin {
            Some(bin) => bin.to_owned(),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/taskstream"),
        };
        // Absolute, since the server runs from its temporary directory.
        let bin = match std::fs::canonicalize(&bin) {
            Ok(bin) if bin.is_file() => bin,
            _ => bail!(
                "{} not found: run `cargo build --release` at the top of the repository, or pass --bin PATH",
                bin.display()
            ),
        };
        let root = tempfile::Builder::new()
            .prefix("taskstream-bench-events-")
            .tempdir()
            .context("creating a temporary directory")?;
        std::fs::create_dir(root.path().join("data")).context("creating the data directory")?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1024)
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let now = Instant::now();
        let mut server = Self {
            bin,
            root,
            child: None,
            base: String::new(),
            secret,
            client,
            ready_after: Duration::ZERO,
            spawned_at: now,
            ready_at: now,
        };
        server.spawn().await?;
        Ok(server)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// Starts `taskstream serve` (from the temporary root, so no stray taskstream.toml is read)
    /// on a free port and waits for `/ready`.
    pub async fn spawn(&mut self) -> Result<()> {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("finding a free port")?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.path().join("server.log"))
            .context("creating server.log")?;
        self.spawned_at = Instant::now();
        let child = Command::new(&self.bin)
            .current_dir(self.root.path())
            .arg("serve")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args([
                "--http-addr",
                &addr.to_string(),
                "--jwt-secret",
                &self.secret,
            ])
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.child = Some(child);
        self.base = format!("http://{addr}");
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let url = format!("{}/ready", self.base);
        loop {
            let answer = self
                .client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if answer.is_ok_and(|response| response.status() == reqwest::StatusCode::OK) {
                self.ready_at = Instant::now();
                self.ready_after = self.ready_at - self.spawned_at;
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "server exited with {status} before ready\n{}",
                    self.log_tail()
                );
            }
            if self.spawned_at.elapsed() > READY_TIMEOUT {
                bail!(
                    "server not ready after {READY_TIMEOUT:?}\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// SIGTERM and wait for a clean exit (SIGKILL after a timeout, which is reported).
    pub async fn terminate(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await
                .context("running kill -TERM")?;
        }
        match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    bail!(
                        "server exited with {status} on SIGTERM\n{}",
                        self.log_tail()
                    );
                }
                Ok(())
            }
            Err(_) => {
                child.kill().await?;
                bail!("server still running {STOP_TIMEOUT:?} after SIGTERM; killed it");
            }
        }
    }

    pub async fn stop(mut self) {
        if let Err(error) = self.terminate().await {
            eprintln!("warning: {error:#}");
        }
    }

    /// `Authorization` value for user `sub`, valid for a day.
    pub fn bearer(&self, sub: &str) -> Result<String> {
        let exp = chrono::Utc::now().timestamp() + 86_400;
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &json!({ "sub": sub, "exp": exp }),
            &jsonwebtoken::EncodingKey::from_secret(self.secret.as_bytes()),
        )?;
        Ok(format!("Bearer {token}"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The server's WARN and ERROR log lines so far (it runs at `--log-level warn`), at most 20.
    pub fn warnings(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.root.path().join("server.log")).unwrap_or_default();
        let lines: Vec<String> = log
            .lines()
            .filter(|line| line.contains("WARN") || line.contains("ERROR"))
            .map(str::to_owned)
            .collect();
        lines[lines.len().saturating_sub(20)..].to_vec()
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.root.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        format!(
            "server log tail:\n{}",
            lines[lines.len().saturating_sub(20)..].join("\n")
        )
    }
}
