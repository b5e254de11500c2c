//! End-to-end test harness: spawns the real `taskstream` binary on a free port with a private
//! data directory and talks to it over HTTP, like the frontend does.
//!
//! Every test starts its own server; the child process is killed when the `TestServer` drops.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::collections::BTreeSet;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

pub use serde_json;

pub mod browser;
pub mod dapr_sidecar;
pub mod openai_stub;
pub mod real_dapr;
mod shape;
pub mod web;

use shape::ClusterParts;
pub use shape::{DATABASE_URL_VAR, PgSchema};

/// Environment variables the server reads; removed from every child's environment so that the
/// developer's shell cannot leak into a test.
const SERVER_ENV: &[&str] = &[
    "TASKSTREAM_DATA_DIR",
    "TASKSTREAM_HTTP_ADDR",
    "TASKSTREAM_JWT_SECRET",
    "TASKSTREAM_CORS_ORIGINS",
    "TASKSTREAM_CONFIG",
    "TASKSTREAM_LOG_FORMAT",
    "TASKSTREAM_LOG_LEVEL",
    "TASKSTREAM_SIGNUP",
    "TASKSTREAM_TASK_WRITE_BURST",
    "TASKSTREAM_TASK_WRITES_PER_SECOND",
    "JWT_SECRET",
    "CORS_ORIGINS",
    // A developer's real key must never make a test talk to a real provider.
    "TASKSTREAM_LLM_API_KEY",
    "TASKSTREAM_LLM_BASE_URL",
    "TASKSTREAM_LLM_MODEL",
    "TASKSTREAM_LLM_FALLBACK_MODEL",
    "TASKSTREAM_LLM_TIMEOUT_SECS",
    "GROQ_API_KEY",
    // Cluster mode: a developer's database or sidecar must never be picked up by a test.
    "TASKSTREAM_MODE",
    "TASKSTREAM_ROLE",
    "TASKSTREAM_DATABASE_URL",
    "TASKSTREAM_DATABASE_SCHEMA",
    "DATABASE_URL",
    "DAPR_HTTP_PORT",
    "DAPR_HTTP_ENDPOINT",
    "DAPR_API_TOKEN",
    "APP_API_TOKEN",
];

/// The keys of a `TaskResponse`, exactly.
pub const TASK_KEYS: &[&str] = &[
    "id",
    "title",
    "description",
    "status",
    "priority",
    "due_date",
    "created_at",
    "updated_at",
    "tags",
    "reminder_offset_minutes",
    "remind_at",
    "is_recurring",
    "recurrence_rule",
    "parent_task_id",
    "user_id",
];

/// Path of the `taskstream` binary: `$TASKSTREAM_BIN`, else `target/<profile>/taskstream`
/// next to this test executable (`target/<profile>/deps/<test>-<hash>`).
pub fn bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TASKSTREAM_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "TASKSTREAM_BIN={} does not exist", p.display());
        return p;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable is not in target/<profile>/deps");
    let p = profile_dir.join("taskstream");
    assert!(
        p.is_file(),
        "taskstream binary not found at {}: run `cargo build -p taskstream --bin taskstream` \
         first (or set TASKSTREAM_BIN)",
        p.display()
    );
    p
}

/// A `taskstream` command with the server's environment variables cleared, and the Fluvio
/// listeners on ephemeral ports so that servers started in parallel never collide (tests that
/// speak Fluvio read the bound ports from the server's log or pass their own addresses).
pub fn command() -> Command {
    let mut cmd = Command::new(bin());
    for k in SERVER_ENV {
        cmd.env_remove(k);
    }
    cmd.env("TASKSTREAM_FLUVIO_SC_ADDR", "127.0.0.1:0");
    cmd.env("TASKSTREAM_FLUVIO_SPU_ADDR", "127.0.0.1:0");
    cmd.env_remove("TASKSTREAM_FLUVIO_SPU_ADVERTISED_ADDR");
    cmd.stdin(Stdio::null());
    cmd
}

/// A port that was free a moment ago. It is drawn below Linux's default ephemeral range
/// (32768-60999) so that the tests' own client connections cannot take it in the meantime.
/// A due date whose one-minute reminder (`reminder_offset_minutes: 1`) fires `seconds` from now.
pub fn reminding_in(seconds: f64) -> String {
    let at =
        chrono::Utc::now() + chrono::Duration::milliseconds(((60.0 + seconds) * 1000.0) as i64);
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn free_port() -> u16 {
    for _ in 0..200 {
        let port = 20_000 + (uuid::Uuid::new_v4().as_u128() % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// Result of a one-shot CLI run.
#[derive(Debug)]
pub struct CliOutput {
    /// `None` when the process had to be killed after the timeout.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion (killing it after `timeout`), capturing stdout and stderr.
pub fn run(mut cmd: Command, timeout: Duration) -> CliOutput {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("stdout");
    let err = dir.path().join("stderr");
    cmd.stdout(File::create(&out).unwrap());
    cmd.stderr(File::create(&err).unwrap());
    let mut child = cmd.spawn().expect("spawn taskstream");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    CliOutput {
        status,
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    }
}

/// How to launch a server. `Launch::default()` passes `--data-dir`, `--http-addr` and
/// `--jwt-secret` (a random secret); the flags can be turned off to test env/config handling.
#[derive(Clone, Debug)]
pub struct Launch {
    /// Extra arguments appended after `serve ...`.
    pub args: Vec<String>,
    /// Extra environment variables for the child.
    pub envs: Vec<(String, String)>,
    pub data_dir_flag: bool,
    pub addr_flag: bool,
    pub secret_flag: bool,
    /// Data directory (default: `<private tempdir>/data`).
    pub data_dir: Option<PathBuf>,
    /// Port the server is expected to listen on (default: a free port).
    pub port: Option<u16>,
    /// Secret that `token()` signs with. Default: random (passed with `--jwt-secret`), or, when
    /// `secret_flag` is off, the content of `DATA_DIR/jwt-secret` once the server is ready.
    pub secret: Option<String>,
    /// Working directory of the child (default: the private tempdir, which has no taskstream.toml).
    pub cwd: Option<PathBuf>,
}

impl Default for Launch {
    fn default() -> Self {
        Launch {
            args: Vec::new(),
            envs: Vec::new(),
            data_dir_flag: true,
            addr_flag: true,
            secret_flag: true,
            data_dir: None,
            port: None,
            secret: None,
            cwd: None,
        }
    }
}

/// A running `taskstream serve`.
pub struct TestServer {
    child: Option<Child>,
    /// Cluster shape only: the test sidecar and the PostgreSQL schema, which outlive the child
    /// (fields drop after `Drop::drop` has killed it).
    cluster: Option<ClusterParts>,
    root: TempDir,
    launch: Launch,
    data_dir: PathBuf,
    port: u16,
    secret: String,
    client: reqwest::Client,
    runs: usize,
}

impl TestServer {
    /// Starts a server with default flags.
    pub async fn start() -> TestServer {
        Self::launch(Launch::default()).await
    }

    /// Starts a server with extra CLI arguments and environment variables.
    pub async fn start_with(args: &[&str], envs: &[(&str, &str)]) -> TestServer {
        Self::launch(Launch {
            args: args.iter().map(|s| s.to_string()).collect(),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Launch::default()
        })
        .await
    }

    /// Starts a server as described by `launch` and waits until `GET /ready` answers 200.
    pub async fn launch(mut launch: Launch) -> TestServer {
        let root = TempDir::new().expect("tempdir");
        let data_dir = launch
            .data_dir
            .clone()
            .unwrap_or_else(|| root.path().join("data"));
        if launch.data_dir_flag {
            std::fs::create_dir_all(&data_dir).unwrap();
        }
        if launch.secret_flag && launch.secret.is_none() {
            launch.secret = Some(format!("test-secret-{}", uuid::Uuid::new_v4()));
        }
        let port = launch.port.unwrap_or_else(free_port);
        let mut srv = TestServer {
            child: None,
            cluster: None,
            root,
            launch,
            data_dir,
            port,
            secret: String::new(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            runs: 0,
        };
        srv.spawn_and_wait().await;
        srv
    }

    async fn spawn_and_wait(&mut self) {
        self.runs += 1;
        let mut cmd = command();
        cmd.arg("serve");
        if self.launch.data_dir_flag {
            cmd.arg("--data-dir").arg(&self.data_dir);
        }
        if self.launch.addr_flag {
            cmd.arg("--http-addr")
                .arg(format!("127.0.0.1:{}", self.port));
        }
        if self.launch.secret_flag {
            cmd.arg("--jwt-secret")
                .arg(self.launch.secret.as_deref().unwrap());
        }
        cmd.args(&self.launch.args);
        for (k, v) in &self.launch.envs {
            cmd.env(k, v);
        }
        cmd.current_dir(self.launch.cwd.as_deref().unwrap_or(self.root.path()));
        cmd.stdout(File::create(self.stdout_path()).unwrap());
        cmd.stderr(File::create(self.stderr_path()).unwrap());
        self.child = Some(cmd.spawn().expect("spawn taskstream serve"));

        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                // Another process took the port we picked: pick another one and try again.
                if self.launch.addr_flag
                    && self.launch.port.is_none()
                    && self.runs < 10
                    && self.stderr().contains("in use")
                {
                    self.port = free_port();
                    return Box::pin(self.spawn_and_wait()).await;
                }
                panic!(
                    "taskstream serve exited early with {st}\n--- stderr ---\n{}",
                    self.stderr()
                );
            }
            let ready = self
                .client
                .get(self.url("/ready"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if matches!(ready, Ok(ref r) if r.status() == 200) {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "taskstream serve not ready on port {} after 30 s\n--- stderr ---\n{}",
                    self.port,
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.secret = match &self.launch.secret {
            Some(s) => s.clone(),
            None => std::fs::read_to_string(self.data_dir.join("jwt-secret"))
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
        };
    }

    fn stdout_path(&self) -> PathBuf {
        self.root.path().join(format!("stdout.{}.log", self.runs))
    }

    fn stderr_path(&self) -> PathBuf {
        self.root.path().join(format!("stderr.{}.log", self.runs))
    }

    /// What the current (or last) run printed on stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Cluster shape: the PostgreSQL URL and schema the server runs on, for the CLI's
    /// `--database-url`/`--database-schema`.
    pub fn database(&self) -> Option<(&str, &str)> {
        self.cluster
            .as_ref()
            .map(|parts| (parts._schema.url(), parts._schema.name()))
    }

    /// A private scratch directory that lives as long as the server.
    pub fn scratch(&self) -> &Path {
        self.root.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server not running").id()
    }

    /// The JWT secret the server is expected to use.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn client(&self) -> reqwest::Client {
        self.client.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// An HS256 token for `sub`, signed with the server's secret, valid for an hour.
    pub fn token(&self, sub: &str) -> String {
        mint_hs256(&self.secret, &json!({ "sub": sub, "exp": now() + 3600 }))
    }

    /// A client acting as `sub`.
    pub fn user(&self, sub: &str) -> User {
        User {
            client: self.client.clone(),
            base: self.url(""),
            token: self.token(sub),
            sub: sub.to_string(),
        }
    }

    /// Sends `kill -<sig> <pid>`.
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -{sig} failed");
    }

    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Kills the server with SIGKILL and reaps it.
    pub fn sigkill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits up to `timeout` for the server to exit; `None` if it is still running.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().expect("server not running");
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// Starts the server again on the same data dir (stopping it with SIGTERM first if it is still
    /// running). A new port is picked when the address comes from the flag.
    pub async fn restart(&mut self) {
        if self.is_running() {
            self.sigterm();
            if self.wait_exit(Duration::from_secs(30)).await.is_none() {
                self.sigkill();
            }
        }
        self.child = None;
        if self.launch.addr_flag {
            self.port = free_port();
        }
        self.spawn_and_wait().await;
    }

    /// [`TestServer::restart`] with `args` added after the ones it was started with (a later
    /// flag overrides an earlier one where the option takes one value).
    pub async fn restart_adding(&mut self, args: &[&str]) {
        self.launch
            .args
            .extend(args.iter().map(|arg| (*arg).to_owned()));
        self.restart().await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An HTTP response, read completely.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    /// The body parsed as JSON (`Null` if it is not JSON).
    pub json: Value,
}

impl Resp {
    pub async fn from(r: reqwest::Response) -> Resp {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.expect("read body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            json,
        }
    }

    /// Like `from`, but `None` when the body cannot be read completely (e.g. the server died).
    pub async fn from_lenient(r: reqwest::Response) -> Option<Resp> {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.ok()?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Some(Resp {
            status,
            headers,
            text,
            json,
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or_default().to_string())
    }

    /// Panics unless the status is `status`.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "expected HTTP {status}, got {}: {}",
            self.status, self.text
        );
        &self.json
    }

    /// Panics unless the response is `status` with `{"detail": detail}`.
    #[track_caller]
    pub fn expect_detail(&self, status: u16, detail: &str) {
        self.expect(status);
        assert_eq!(
            self.json,
            json!({ "detail": detail }),
            "body: {}",
            self.text
        );
    }

    /// Panics unless the response is a 422 validation error with an item of type `ty` at `loc`.
    /// `ty` may list alternatives separated by `|` (e.g. `"int_parsing|int_type"`).
    #[track_caller]
    pub fn expect_invalid(&self, ty: &str, loc: Value) {
        let items = self.validation_items();
        assert!(
            items
                .iter()
                .any(|e| ty.split('|').any(|t| e["type"] == t) && e["loc"] == loc),
            "expected a 422 item type={ty} loc={loc}, got {}",
            self.text
        );
    }

    /// Panics unless the response is a 422 validation error with an item at `loc` (any type).
    #[track_caller]
    pub fn expect_invalid_at(&self, loc: Value) {
        let items = self.validation_items();
        assert!(
            items.iter().any(|e| e["loc"] == loc),
            "expected a 422 item at loc={loc}, got {}",
            self.text
        );
    }

    /// Checks the pydantic-style 422 shape and returns its items.
    #[track_caller]
    pub fn validation_items(&self) -> Vec<Value> {
        self.expect(422);
        let items = self.json["detail"]
            .as_array()
            .unwrap_or_else(|| panic!("422 detail is not a list: {}", self.text))
            .clone();
        assert!(!items.is_empty(), "empty 422 detail list");
        for e in &items {
            let keys: BTreeSet<&str> = e
                .as_object()
                .unwrap_or_else(|| panic!("422 item is not an object: {e}"))
                .keys()
                .map(String::as_str)
                .collect();
            for k in ["type", "loc", "msg", "input"] {
                assert!(keys.contains(k), "422 item lacks {k}: {e}");
            }
            assert!(
                keys.iter()
                    .all(|k| ["type", "loc", "msg", "input", "ctx", "url"].contains(k)),
                "unexpected key in 422 item {e}"
            );
            assert!(e["type"].is_string() && e["msg"].is_string(), "{e}");
            assert!(e["loc"].is_array(), "{e}");
        }
        items
    }
}

/// A client acting as one user.
#[derive(Clone, Debug)]
pub struct User {
    pub client: reqwest::Client,
    pub base: String,
    pub token: String,
    pub sub: String,
}

impl User {
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self.req(method, path);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        Resp::from(rb.send().await.expect("send request")).await
    }

    /// Sends `body` verbatim with `Content-Type: application/json`.
    pub async fn send_raw(&self, method: &str, path: &str, body: impl Into<Vec<u8>>) -> Resp {
        self.try_send_raw(method, path, body)
            .await
            .expect("send request")
    }

    /// Like `send_raw`, but hands back transport errors: a server may answer and close the
    /// connection before a large body is fully written, which the client sees as a broken pipe.
    pub async fn try_send_raw(
        &self,
        method: &str,
        path: &str,
        body: impl Into<Vec<u8>>,
    ) -> Result<Resp, reqwest::Error> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let rb = self
            .req(method, path)
            .header("content-type", "application/json")
            .body(body.into());
        Ok(Resp::from(rb.send().await?).await)
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.send("POST", path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.send("PUT", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, None).await
    }

    pub async fn patch(&self, path: &str) -> Resp {
        self.send("PATCH", path, None).await
    }

    /// `POST /api/tasks`, asserting 201 and the TaskResponse shape.
    pub async fn create(&self, body: Value) -> Value {
        let r = self.post("/api/tasks", &body).await;
        let t = r.expect(201).clone();
        assert_task(&t);
        assert_eq!(t["user_id"], self.sub.as_str());
        t
    }

    /// `GET /api/tasks?<query>` (query already encoded, may be empty), asserting 200.
    pub async fn list(&self, query: &str) -> Vec<Value> {
        let path = if query.is_empty() {
            "/api/tasks".to_string()
        } else {
            format!("/api/tasks?{query}")
        };
        let r = self.get(&path).await;
        let arr = r
            .expect(200)
            .as_array()
            .unwrap_or_else(|| panic!("list is not an array: {}", r.text))
            .clone();
        for t in &arr {
            assert_task(t);
        }
        arr
    }

    /// Every task matching `query`, following the `Link: <…>; rel="next"` pages the server
    /// answers when one page (500 by default) does not hold them all.
    pub async fn list_all(&self, query: &str) -> Vec<Value> {
        let mut path = if query.is_empty() {
            "/api/tasks".to_string()
        } else {
            format!("/api/tasks?{query}")
        };
        let mut all = Vec::new();
        loop {
            let r = self.get(&path).await;
            let page = r
                .expect(200)
                .as_array()
                .unwrap_or_else(|| panic!("list is not an array: {}", r.text))
                .clone();
            for t in &page {
                assert_task(t);
            }
            all.extend(page);
            let Some(link) = r.headers.get("link") else {
                return all;
            };
            let link = link.to_str().expect("Link header is ASCII");
            path = link
                .strip_prefix('<')
                .and_then(|rest| rest.split_once(">; rel=\"next\""))
                .map(|(target, _)| target.to_string())
                .unwrap_or_else(|| panic!("unexpected Link header: {link}"));
        }
    }

    pub async fn get_task(&self, id: &str) -> Resp {
        self.get(&format!("/api/tasks/{id}")).await
    }

    pub async fn put_task(&self, id: &str, body: &Value) -> Resp {
        self.put(&format!("/api/tasks/{id}"), body).await
    }

    pub async fn delete_task(&self, id: &str) -> Resp {
        self.delete(&format!("/api/tasks/{id}")).await
    }

    pub async fn complete(&self, id: &str) -> Resp {
        self.patch(&format!("/api/tasks/{id}/complete")).await
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An HS256 JWT over `claims`.
pub fn mint_hs256(secret: &str, claims: &Value) -> String {
    mint(jsonwebtoken::Algorithm::HS256, secret, claims)
}

/// A JWT over `claims` signed with an HMAC algorithm.
pub fn mint(alg: jsonwebtoken::Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode jwt")
}

/// Unpadded base64url, as JWTs use it.
pub fn b64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Percent-encodes a query string from pairs.
pub fn query(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Panics unless `s` is an RFC 3339 UTC datetime ending in a single `Z`, with at most
/// microsecond precision and no fraction for whole seconds.
#[track_caller]
pub fn assert_utc(s: &Value) -> chrono::DateTime<chrono::Utc> {
    let s = s
        .as_str()
        .unwrap_or_else(|| panic!("datetime is not a string: {s}"));
    assert!(
        s.ends_with('Z') && s.matches('Z').count() == 1,
        "not ...Z: {s}"
    );
    assert!(!s.contains('+'), "offset in {s}");
    let dt = chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("not RFC 3339: {s}: {e}"))
        .with_timezone(&chrono::Utc);
    let (_, tail) = s.split_at(19);
    let frac = tail.trim_end_matches('Z');
    if dt.timestamp_subsec_nanos() == 0 {
        assert!(
            frac.is_empty(),
            "whole seconds printed with a fraction: {s}"
        );
    } else {
        assert!(
            frac.starts_with('.') && frac.len() <= 7,
            "more than microsecond precision: {s}"
        );
    }
    dt
}

/// Parses an RFC 3339 instant (test input helper).
pub fn utc(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad test datetime {s}: {e}"))
        .with_timezone(&chrono::Utc)
}

/// Panics unless `t` is a well-formed TaskResponse.
#[track_caller]
pub fn assert_task(t: &Value) {
    let obj = t
        .as_object()
        .unwrap_or_else(|| panic!("task is not an object: {t}"));
    let keys: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = TASK_KEYS.iter().copied().collect();
    assert_eq!(keys, want, "TaskResponse keys of {t}");
    let id = t["id"].as_str().expect("id string");
    let parsed = uuid::Uuid::parse_str(id).unwrap_or_else(|_| panic!("id not a uuid: {id}"));
    assert_eq!(
        parsed.hyphenated().to_string(),
        id,
        "id not lowercase hyphenated"
    );
    assert!(t["title"].is_string());
    assert!(t["description"].is_string() || t["description"].is_null());
    assert!(
        ["pending", "in_progress", "completed"].contains(&t["status"].as_str().unwrap_or("")),
        "status {}",
        t["status"]
    );
    assert!(
        ["low", "medium", "high"].contains(&t["priority"].as_str().unwrap_or("")),
        "priority {}",
        t["priority"]
    );
    assert_utc(&t["created_at"]);
    assert_utc(&t["updated_at"]);
    for k in ["due_date", "remind_at"] {
        if !t[k].is_null() {
            assert_utc(&t[k]);
        }
    }
    let tags = t["tags"].as_array().expect("tags array");
    assert!(tags.iter().all(Value::is_string));
    assert!(t["reminder_offset_minutes"].is_null() || t["reminder_offset_minutes"].is_i64());
    assert!(t["is_recurring"].is_boolean());
    assert!(t["recurrence_rule"].is_string() || t["recurrence_rule"].is_null());
    assert!(t["parent_task_id"].is_string() || t["parent_task_id"].is_null());
    assert!(t["user_id"].is_string());
    // remind_at = due_date - offset, else null
    match (
        t["due_date"].is_null(),
        t["reminder_offset_minutes"].as_i64(),
    ) {
        (false, Some(off)) => {
            let due = assert_utc(&t["due_date"]);
            let at = assert_utc(&t["remind_at"]);
            assert_eq!(due - at, chrono::Duration::minutes(off), "remind_at of {t}");
        }
        _ => assert!(t["remind_at"].is_null(), "remind_at should be null in {t}"),
    }
}

/// The `id` of a task as a `String`.
pub fn id_of(t: &Value) -> String {
    t["id"].as_str().expect("task id").to_string()
}

/// The ids of a list of tasks, in order.
pub fn ids(list: &[Value]) -> Vec<String> {
    list.iter().map(id_of).collect()
}

// ---------------------------------------------------------------------------------------------
// Event backbone helpers: stopping the server, reading the embedded log, polling consumers' effects,
// and a small Server-Sent Events reader.
// ---------------------------------------------------------------------------------------------

pub use taskstream_engine::embedded::log::{EventLog, LogConfig, LogRecord, NewRecord};

/// The topics of the contract (§3) and their dead-letter topics.
pub const TASK_EVENTS: &str = "task-events";
pub const REMINDERS: &str = "reminders";
pub const TASK_UPDATES: &str = "task-updates";
pub const TASK_EVENTS_DLQ: &str = "task-events-dlq";
pub const REMINDERS_DLQ: &str = "reminders-dlq";

/// The keys of an event envelope, exactly.
pub const ENVELOPE_KEYS: &[&str] = &[
    "event_id",
    "event_type",
    "timestamp",
    "user_id",
    "payload",
    "source",
    "specversion",
];

/// The keys of an audit row, exactly.
pub const AUDIT_KEYS: &[&str] = &[
    "id",
    "event_id",
    "event_type",
    "timestamp",
    "received_at",
    "user_id",
    "task_id",
    "source",
    "payload",
];

/// The keys of a notification, exactly.
pub const NOTIFICATION_KEYS: &[&str] = &[
    "id",
    "kind",
    "task_id",
    "title",
    "message",
    "created_at",
    "read_at",
    "payload",
];

/// The keys of the JSON object `v` (panics if it is not an object).
#[track_caller]
pub fn keys_of(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {v}"))
        .keys()
        .cloned()
        .collect()
}

/// `keys` as an owned set, for comparing with `keys_of`.
pub fn key_set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| (*k).to_string()).collect()
}

impl TestServer {
    /// Stops the server with SIGTERM and waits for it to exit, asserting a clean exit.
    pub async fn stop(&mut self) {
        if !self.is_running() {
            self.child = None;
            return;
        }
        self.sigterm();
        let st = self.wait_exit(Duration::from_secs(60)).await;
        let st = st.unwrap_or_else(|| {
            panic!(
                "taskstream did not exit within 60 s of SIGTERM\n--- stderr ---\n{}",
                self.stderr()
            )
        });
        assert!(
            st.success(),
            "taskstream exited with {st} after SIGTERM\n--- stderr ---\n{}",
            self.stderr()
        );
    }

    /// Opens the (stopped) server's event log with the engine API.
    pub fn open_log(&self) -> EventLog {
        assert!(
            self.child.is_none(),
            "open the event log only while the server is stopped"
        );
        open_log(&self.data_dir)
    }
}

/// Opens `DATA_DIR/events.redb` (the server must not be running).
pub fn open_log(data_dir: &Path) -> EventLog {
    let path = data_dir.join("events.redb");
    EventLog::open(&path, LogConfig::default())
        .unwrap_or_else(|e| panic!("open event log {}: {e}", path.display()))
}

/// Every retained record of partition 0 of `topic`, in offset order.
pub async fn read_topic(log: &EventLog, topic: &str) -> Vec<LogRecord> {
    let mut out: Vec<LogRecord> = Vec::new();
    let mut from = log
        .start_offset(topic, 0)
        .unwrap_or_else(|e| panic!("start offset of {topic}: {e}"));
    loop {
        let batch = log
            .read(topic, 0, from, 10_000)
            .await
            .unwrap_or_else(|e| panic!("read {topic} from {from}: {e}"));
        let Some(last) = batch.last() else { break };
        from = last.offset + 1;
        out.extend(batch);
    }
    let end = log.end_offset(topic, 0).unwrap();
    assert_eq!(from.max(end), end, "read past the end of {topic}");
    out
}

/// A record's value parsed as an envelope JSON (panics if it is not JSON).
#[track_caller]
pub fn envelope_of(r: &LogRecord) -> Value {
    serde_json::from_slice(&r.value).unwrap_or_else(|e| {
        panic!(
            "record {}@{} is not JSON ({e}): {}",
            r.topic,
            r.offset,
            String::from_utf8_lossy(&r.value)
        )
    })
}

/// A record's key as a string.
pub fn key_of(r: &LogRecord) -> String {
    String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned()
}

/// Milliseconds since the Unix epoch (record timestamps).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Now as the contract formats instants: RFC 3339 UTC with microseconds and one `Z`.
pub fn now_utc() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A contract envelope (§3) with a fresh event id.
pub fn envelope(event_type: &str, user_id: &str, payload: Value) -> Value {
    json!({
        "event_id": uuid::Uuid::new_v4().to_string(),
        "event_type": event_type,
        "timestamp": now_utc(),
        "user_id": user_id,
        "payload": payload,
        "source": "chat-api",
        "specversion": "1.0",
    })
}

/// A log record keyed by `key` whose value is `value`.
pub fn record(key: &str, value: Vec<u8>) -> NewRecord {
    NewRecord {
        key: Some(key.as_bytes().to_vec()),
        value,
        timestamp_ms: now_ms(),
    }
}

/// A log record holding `env` (keyed by `key`).
pub fn envelope_record(key: &str, env: &Value) -> NewRecord {
    record(key, serde_json::to_vec(env).unwrap())
}

/// Appends `records` to `topic` (durable when it returns).
pub async fn append(log: &EventLog, topic: &str, records: Vec<NewRecord>) {
    log.append(topic, records)
        .await
        .unwrap_or_else(|e| panic!("append to {topic}: {e}"));
}

/// The full-task payload of a `task.created` event for a task that only exists in the log.
pub fn fake_task(user_id: &str, title: &str) -> Value {
    let now = now_utc();
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "title": title,
        "description": null,
        "status": "pending",
        "priority": "medium",
        "due_date": null,
        "created_at": now,
        "updated_at": now,
        "tags": [],
        "reminder_offset_minutes": null,
        "remind_at": null,
        "is_recurring": false,
        "recurrence_rule": null,
        "parent_task_id": null,
        "user_id": user_id,
    })
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `timeout`; panics with `what`
/// (and the last observation, from `f`'s `Err`) when time runs out.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match f().await {
            Ok(v) => return v,
            Err(e) => e,
        };
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How long the tests wait for an asynchronous consumer effect.
pub const CONSUMER_WAIT: Duration = Duration::from_secs(10);

impl User {
    /// `GET /api/audit?<query>`, asserting 200, an array and the row shape.
    pub async fn audit(&self, query: &str) -> Vec<Value> {
        let path = if query.is_empty() {
            "/api/audit".to_string()
        } else {
            format!("/api/audit?{query}")
        };
        let r = self.get(&path).await;
        let rows = r
            .expect(200)
            .as_array()
            .unwrap_or_else(|| panic!("audit is not an array: {}", r.text))
            .clone();
        for row in &rows {
            assert_eq!(keys_of(row), key_set(AUDIT_KEYS), "audit row keys: {row}");
            assert_eq!(
                row["user_id"],
                self.sub.as_str(),
                "audit row of {}",
                self.sub
            );
        }
        rows
    }

    /// The caller's whole audit trail, paging with `limit=1000`.
    pub async fn audit_all(&self) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let page = self
                .audit(&format!("limit=1000&offset={}", out.len()))
                .await;
            let n = page.len();
            out.extend(page);
            if n < 1000 {
                return out;
            }
        }
    }

    /// The caller's audit rows per event type, asserting that no event was audited twice (the
    /// exactly-once check of the consumer suites).
    pub async fn audit_counts(&self) -> std::collections::BTreeMap<String, usize> {
        let rows = self.audit_all().await;
        let mut ids: Vec<&str> = rows.iter().filter_map(|r| r["event_id"].as_str()).collect();
        let total = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), total, "an event was audited twice: {rows:?}");
        let mut counts = std::collections::BTreeMap::new();
        for row in &rows {
            let kind = row["event_type"].as_str().unwrap_or_default().to_owned();
            *counts.entry(kind).or_insert(0) += 1;
        }
        counts
    }

    /// Waits until the caller's audit trail holds every event id in `ids`; returns the trail.
    pub async fn wait_audited(&self, ids: &BTreeSet<String>) -> Vec<Value> {
        self.wait_audited_within(ids, CONSUMER_WAIT).await
    }

    /// Like `wait_audited`, waiting at most `timeout`.
    pub async fn wait_audited_within(
        &self,
        ids: &BTreeSet<String>,
        timeout: Duration,
    ) -> Vec<Value> {
        eventually(
            &format!("{} audit rows for {}", ids.len(), self.sub),
            timeout,
            || async {
                let rows = self.audit_all().await;
                let have: BTreeSet<String> = rows
                    .iter()
                    .map(|r| r["event_id"].as_str().unwrap_or_default().to_string())
                    .collect();
                let missing: Vec<&String> = ids.difference(&have).collect();
                if missing.is_empty() {
                    Ok(rows)
                } else {
                    Err(format!("missing {missing:?} (have {} rows)", rows.len()))
                }
            },
        )
        .await
    }

    /// `GET /api/notifications`, asserting 200, an array and the item shape.
    pub async fn notifications(&self) -> Vec<Value> {
        let r = self.get("/api/notifications").await;
        let items = r
            .expect(200)
            .as_array()
            .unwrap_or_else(|| panic!("notifications is not an array: {}", r.text))
            .clone();
        for n in &items {
            assert_eq!(
                keys_of(n),
                key_set(NOTIFICATION_KEYS),
                "notification keys: {n}"
            );
        }
        items
    }

    /// Opens `GET /api/events` (no overall timeout), optionally resuming after `last_event_id`.
    pub async fn events(&self, last_event_id: Option<&str>) -> SseStream {
        let mut rb = self
            .req(reqwest::Method::GET, "/api/events")
            .timeout(Duration::from_secs(24 * 3600))
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            rb = rb.header("last-event-id", id);
        }
        let resp = rb.send().await.expect("open /api/events");
        assert_eq!(resp.status().as_u16(), 200, "GET /api/events");
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or_default().to_string())
            .unwrap_or_default();
        assert!(
            ct.starts_with("text/event-stream"),
            "content-type of /api/events: {ct}"
        );
        SseStream {
            resp,
            buf: Vec::new(),
        }
    }
}

/// One Server-Sent Event.
#[derive(Clone, Debug)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

impl SseEvent {
    /// `data` parsed as JSON (panics otherwise).
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {}", self.data))
    }
}

/// A streaming `text/event-stream` body.
pub struct SseStream {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl SseStream {
    /// The next event that carries data (comments and keep-alives are skipped); `None` when
    /// nothing arrives within `timeout` or the stream ends.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            while let Some(frame) = self.take_frame() {
                if let Some(ev) = parse_sse_frame(&frame) {
                    return Some(ev);
                }
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buf.extend(chunk.iter().filter(|b| **b != b'\r')),
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// Cuts the first complete frame (up to a blank line) off the buffer. Carriage returns are
    /// dropped on arrival, so `\r\n` line ends work too.
    fn take_frame(&mut self) -> Option<String> {
        let end = self.buf.windows(2).position(|w| w == b"\n\n")?;
        let frame = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 2);
        Some(frame)
    }
}

fn parse_sse_frame(frame: &str) -> Option<SseEvent> {
    let mut ev = SseEvent {
        id: None,
        event: None,
        data: String::new(),
    };
    let mut has_data = false;
    for line in frame.lines() {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => ev.id = Some(value.to_string()),
            "event" => ev.event = Some(value.to_string()),
            "data" => {
                if has_data {
                    ev.data.push('\n');
                }
                ev.data.push_str(value);
                has_data = true;
            }
            _ => {}
        }
    }
    has_data.then_some(ev)
}
