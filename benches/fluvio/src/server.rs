//! The `taskstream` binary under test: `taskstream serve` on a temporary data directory with free
//! loopback ports for HTTP, the Fluvio SC and the Fluvio SPU; killed when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Server {
    /// Holds `data/` and `server.log`; removed on drop.
    root: tempfile::TempDir,
    child: Child,
    /// `host:port` of the SC listener, what Fluvio clients connect to.
    pub sc_addr: String,
}

impl Server {
    pub async fn start(bin: Option<&Path>) -> Result<Self> {
        let bin = match bin {
            Some(bin) => bin.to_owned(),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/taskstream"),
        };
        // Absolute, since the server runs from its temporary directory.
        let bin: PathBuf = match std::fs::canonicalize(&bin) {
            Ok(bin) if bin.is_file() => bin,
            _ => bail!(
                "{} not found: run `cargo build --release -p taskstream` at the top of the \
                 repository, or pass --bin PATH",
                bin.display()
            ),
        };
        let root = tempfile::Builder::new()
            .prefix("taskstream-bench-fluvio-")
            .tempdir()
            .context("creating a temporary directory")?;
        let data = root.path().join("data");
        std::fs::create_dir(&data).context("creating the data directory")?;
        let log = std::fs::File::create(root.path().join("server.log"))?;
        // Held together so the three ports differ, released just before the spawn.
        let ports = (0..3)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
            .collect::<std::io::Result<Vec<_>>>()
            .context("finding free ports")?;
        let [http, sc, spu] = [0, 1, 2].map(|i| {
            ports[i]
                .local_addr()
                .map(|addr| addr.to_string())
                .unwrap_or_default()
        });
        drop(ports);
        let secret: String = std::iter::repeat_n("benchmark-secret-", 4).collect();
        let child = Command::new(&bin)
            .current_dir(root.path())
            .arg("serve")
            .arg("--data-dir")
            .arg(&data)
            .args(["--http-addr", &http, "--jwt-secret", &secret])
            .args(["--fluvio-sc-addr", &sc, "--fluvio-spu-addr", &spu])
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut server = Self {
            root,
            child,
            sc_addr: sc,
        };
        server.wait_ready(&http).await?;
        Ok(server)
    }

    /// Polls `GET /ready` until it answers 200.
    async fn wait_ready(&mut self, http: &str) -> Result<()> {
        let started = Instant::now();
        loop {
            if ready(http).await.unwrap_or(false) {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "server exited with {status} before ready\n{}",
                    self.log_tail()
                );
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "server not ready after {READY_TIMEOUT:?}\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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

/// One plain HTTP/1.0 `GET /ready`; true on a 200.
async fn ready(http: &str) -> Result<bool> {
    let mut stream = TcpStream::connect(http).await?;
    stream
        .write_all(b"GET /ready HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await?;
    Ok(head.ends_with(b" 200"))
}
