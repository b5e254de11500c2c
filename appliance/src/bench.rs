//! `taskstream bench`: a load generator that prints figures (never a test gate).
//!
//! Phases: start-up time to the first 200 on `/ready`, idle RSS, closed-loop durable creates,
//! an open-loop mixed read/write load at a fixed rate (latency measured from the scheduled send
//! time, so a slow server cannot hide its queueing), then a top-up of the store to `--fill` tasks
//! with the RSS and on-disk size that follow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::header::AUTHORIZATION;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::process::Child;
use tokio::sync::Semaphore;

/// Users of the mixed phase; each is seeded with `TASKS_PER_MIXED_USER` tasks.
const MIXED_USERS: usize = 200;
const TASKS_PER_MIXED_USER: usize = 20;
/// Cap on requests in flight in the mixed phase (queued ones still count from their scheduled time).
const MIXED_MAX_IN_FLIGHT: usize = 512;
/// Distinct users the fill phase spreads its tasks over.
const FILL_USERS: u64 = 500;
/// Lateness of the open-loop scheduler not counted as latency (the timer's resolution).
const TIMER_SLACK: Duration = Duration::from_millis(1);
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Measure start-up time, memory, create throughput and mixed-load latency of a taskstream server.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Base URL of an already-running server (e.g. http://127.0.0.1:8000); without it the bench
    /// starts its own server on a fresh data dir and a free port.
    #[arg(long, requires = "jwt_secret")]
    url: Option<String>,
    /// HS256 secret the server verifies tokens with (required with --url; random otherwise).
    #[arg(long)]
    jwt_secret: Option<String>,
    /// Process id of the server at --url, so its RSS can be reported.
    #[arg(long, requires = "url")]
    pid: Option<u32>,
    /// Concurrent clients in the create and fill phases (each one a distinct user).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    concurrency: u64,
    /// Seconds of measurement for the create phase and for the mixed phase.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    duration: u64,
    /// Seconds of warm-up before the create phase is measured.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Target rate of the mixed phase in requests/s (80% reads, 20% writes); 0 skips it.
    #[arg(long, default_value_t = 2000)]
    mixed_rate: u64,
    /// Task counts to top the store up to, in turn (counting every task this bench created),
    /// e.g. `100000,1000000`; RSS and disk size are reported at each. 0 skips filling.
    #[arg(long, value_delimiter = ',', default_value = "100000")]
    fill: Vec<u64>,
    /// Connections opened at once for the burst phase (after filling), each sending
    /// `--burst-requests` requests; RSS is then sampled for `--settle-secs`. 0 skips it.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(0..=16384))]
    burst: u64,
    /// Requests each burst connection sends (alternately a create and a list of 50).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10000))]
    burst_requests: u64,
    /// Seconds RSS is watched after the burst.
    #[arg(long, default_value_t = 60)]
    settle_secs: u64,
    /// Extra argument for the server the bench starts, e.g. `--server-arg=--log-cache-mib=1024`
    /// (repeatable), to compare settings in one run.
    #[arg(long = "server-arg", value_name = "ARG", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Keep the temporary data dir of the server the bench started.
    #[arg(long)]
    keep_data: bool,
    /// Print one machine-readable JSON line instead of the table.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: BenchArgs) -> Result<()> {
    // Built before the server is spawned so start-up time does not include it.
    let client = build_client(args.concurrency)?;
    let mut server = None;
    let mut report = Report {
        concurrency: args.concurrency,
        duration_secs: args.duration,
        mixed_target_rate: args.mixed_rate,
        ..Report::default()
    };
    let (base, secret, pid) = match &args.url {
        Some(url) => {
            let url = url.trim_end_matches('/');
            report.server = format!("external {url}");
            let secret = args
                .jwt_secret
                .clone()
                .context("--url needs --jwt-secret")?;
            (url.to_string(), secret, args.pid)
        }
        None => {
            let secret = args.jwt_secret.clone().unwrap_or_else(random_secret);
            let local = LocalServer::start(&secret, args.keep_data, &args.server_args)?;
            report.server = format!("local, {}", local.root.display());
            let (base, pid) = (local.base.clone(), local.child.id());
            server = Some(local);
            (base, secret, pid)
        }
    };
    let bench = Arc::new(Bench {
        client,
        base,
        secret,
        created: AtomicU64::new(0),
    });

    let result = run_phases(&bench, &args, &mut server, pid, &mut report).await;
    let kept = server.as_ref().map(|s| s.root.clone());
    if let Some(local) = server {
        local.stop().await;
    }
    if args.keep_data
        && let Some(root) = kept
    {
        eprintln!("bench: data dir and server.log kept in {}", root.display());
    }
    // The figures gathered so far are printed even when a phase failed.
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        report.print();
    }
    result
}

async fn run_phases(
    bench: &Arc<Bench>,
    args: &BenchArgs,
    server: &mut Option<LocalServer>,
    pid: Option<u32>,
    report: &mut Report,
) -> Result<()> {
    if let Some(local) = server.as_mut() {
        eprintln!("bench: waiting for {}/ready", bench.base);
        report.startup_ms = Some(local.wait_ready(&bench.client).await?.as_secs_f64() * 1e3);
    } else {
        bench
            .get_ok("/ready")
            .await
            .context("server at --url is not ready")?;
    }
    report.rss_idle_kib = pid.and_then(|p| rss_kib(p, "VmRSS"));

    eprintln!(
        "bench: durable creates, {} clients, {} s (+{} s warm-up)",
        args.concurrency, args.duration, args.warmup
    );
    report.creates = Some(durable_creates(bench, args).await);

    if args.mixed_rate > 0 {
        eprintln!("bench: seeding {MIXED_USERS} users with {TASKS_PER_MIXED_USER} tasks each");
        let users = seed_mixed_users(bench, args.concurrency).await?;
        eprintln!(
            "bench: mixed load at {} req/s for {} s",
            args.mixed_rate, args.duration
        );
        report.mixed = Some(mixed_load(bench, users, args.mixed_rate, args.duration).await);
    }

    for &target in args.fill.iter().filter(|&&target| target > 0) {
        eprintln!("bench: filling the store to {target} tasks");
        let fill = fill_store(bench, target, args.concurrency).await;
        report.fills.push(FillCheckpoint {
            tasks: bench.created.load(Ordering::Relaxed),
            fill,
            rss_kib: pid.and_then(|p| rss_kib(p, "VmRSS")),
            disk_bytes: server.as_ref().map(|s| dir_size(&s.dir)),
        });
    }
    if args.burst > 0 {
        eprintln!(
            "bench: burst of {} connections x {} requests, then RSS for {} s",
            args.burst, args.burst_requests, args.settle_secs
        );
        report.burst = Some(burst(bench, args, pid).await?);
    }
    report.rss_peak_kib = pid.and_then(|p| rss_kib(p, "VmHWM"));
    report.tasks_created = bench.created.load(Ordering::Relaxed);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The server under test

/// A server child process on a temporary dir (`data/` and `server.log`); killed and cleaned up
/// on stop or drop.
struct LocalServer {
    child: Child,
    root: PathBuf,
    dir: PathBuf,
    base: String,
    keep_data: bool,
    spawned_at: Instant,
}

impl LocalServer {
    fn start(secret: &str, keep_data: bool, extra: &[String]) -> Result<Self> {
        let root = std::env::temp_dir().join(format!("taskstream-bench-{}", uuid::Uuid::new_v4()));
        let dir = root.join("data");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let spawned = Self::spawn(&root, &dir, secret, extra);
        match spawned {
            Ok((child, base, spawned_at)) => Ok(Self {
                child,
                root,
                dir,
                base,
                keep_data,
                spawned_at,
            }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&root);
                Err(e)
            }
        }
    }

    /// `taskstream serve` run from `root` (so no stray taskstream.toml is read), logging there.
    fn spawn(
        root: &Path,
        dir: &Path,
        secret: &str,
        extra: &[String],
    ) -> Result<(Child, String, Instant)> {
        let addr = free_local_addr()?;
        let log = std::fs::File::create(root.join("server.log")).context("creating server.log")?;
        let exe = std::env::current_exe().context("locating the taskstream binary")?;
        let spawned_at = Instant::now();
        let child = tokio::process::Command::new(exe)
            .current_dir(root)
            .arg("serve")
            .arg("--data-dir")
            .arg(dir)
            .args(["--http-addr", &addr, "--jwt-secret", secret])
            .args([
                "--fluvio-sc-addr",
                "127.0.0.1:0",
                "--fluvio-spu-addr",
                "127.0.0.1:0",
            ])
            // The bench measures the store, not the per-user write limit.
            .args(["--task-writes-per-second", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("spawning taskstream serve")?;
        Ok((child, format!("http://{addr}"), spawned_at))
    }
    /// Polls `/ready` until the first 200; returns the time since spawn.
    async fn wait_ready(&mut self, client: &reqwest::Client) -> Result<Duration> {
        let url = format!("{}/ready", self.base);
        loop {
            if let Ok(resp) = client.get(&url).send().await
                && resp.status() == reqwest::StatusCode::OK
            {
                return Ok(self.spawned_at.elapsed());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "server exited with {status} before ready; {}",
                    self.log_tail()
                );
            }
            if self.spawned_at.elapsed() > READY_TIMEOUT {
                bail!(
                    "server not ready after {READY_TIMEOUT:?}; {}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        format!(
            "server log tail:\n{}",
            lines[lines.len().saturating_sub(20)..].join("\n")
        )
    }

    /// SIGTERM (the server's graceful shutdown), SIGKILL after 5 s; drop removes the data dir.
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let term = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
            let exited = tokio::time::timeout(Duration::from_secs(5), self.child.wait());
            if term.is_ok_and(|s| s.success()) && exited.await.is_ok() {
                return;
            }
        }
        let _ = self.child.kill().await;
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if !self.keep_data {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

fn free_local_addr() -> Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.to_string())
}

fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A value (in KiB) from /proc/<pid>/status, e.g. `VmRSS` or `VmHWM` (peak).
fn rss_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))?;
    line[key.len() + 1..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Total size in bytes of the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

// ---------------------------------------------------------------------------------------------
// HTTP client side

struct Bench {
    client: reqwest::Client,
    base: String,
    secret: String,
    /// Successful creates by this bench, all phases.
    created: AtomicU64,
}

type Outcome = Result<Vec<u8>, String>;

/// One keep-alive client for every phase, its idle pool as large as the peak concurrency.
fn build_client(concurrency: u64) -> Result<reqwest::Client> {
    let pool = MIXED_MAX_IN_FLIGHT.max(usize::try_from(concurrency)?);
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(pool)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()?;
    Ok(client)
}

impl Bench {
    /// `Authorization` header value for `sub`, valid for a day.
    fn auth(&self, sub: &str) -> Result<String> {
        let exp = chrono::Utc::now().timestamp() + 86_400;
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &json!({ "sub": sub, "exp": exp }),
            &jsonwebtoken::EncodingKey::from_secret(self.secret.as_bytes()),
        )?;
        Ok(format!("Bearer {token}"))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get_ok(&self, path: &str) -> Result<()> {
        send(self.client.get(self.url(path)), 200)
            .await
            .map(drop)
            .map_err(anyhow::Error::msg)
    }

    async fn create(&self, auth: &str, rng: &mut Rng, n: u64) -> Outcome {
        let req = self
            .client
            .post(self.url("/api/tasks"))
            .header(AUTHORIZATION, auth);
        let out = send(req.json(&task_body(rng, n)), 201).await;
        if out.is_ok() {
            self.created.fetch_add(1, Ordering::Relaxed);
        }
        out
    }
}

/// Sends a request and reads the whole body; `Err` is a label for the error table.
async fn send(req: reqwest::RequestBuilder, expect: u16) -> Outcome {
    let resp = req.send().await.map_err(error_label)?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(error_label)?;
    if status == expect {
        Ok(body.to_vec())
    } else {
        Err(format!("HTTP {status}"))
    }
}

fn error_label(err: reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect error"
    } else {
        "network error"
    };
    kind.to_string()
}

/// A realistic create body: always a title and priority, some with description, due date,
/// reminder and tags.
fn task_body(rng: &mut Rng, n: u64) -> Value {
    const TITLES: [&str; 8] = [
        "Buy groceries",
        "Write quarterly report",
        "Call the dentist",
        "Review pull request",
        "Plan team offsite",
        "Renew passport",
        "Water the plants",
        "Prepare demo slides",
    ];
    const TAGS: [&str; 6] = ["work", "home", "urgent", "errands", "health", "finance"];
    const PRIORITIES: [&str; 3] = ["low", "medium", "high"];
    let mut body = json!({
        "title": format!("{} #{n}", rng.pick(&TITLES)),
        "priority": rng.pick(&PRIORITIES),
    });
    if rng.below(3) == 0 {
        body["description"] = json!("Details and notes for this task, written by the bench.");
    }
    if rng.below(2) == 0 {
        let minutes = i64::try_from(rng.below(60 * 24 * 60)).unwrap_or(0) + 60;
        let due = chrono::Utc::now() + chrono::Duration::minutes(minutes);
        body["due_date"] = json!(due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        if rng.below(4) == 0 {
            body["reminder_offset_minutes"] = json!(30);
        }
    }
    if rng.below(2) == 0 {
        let tags: Vec<&str> = (0..=rng.below(2)).map(|_| *rng.pick(&TAGS)).collect();
        body["tags"] = json!(tags);
    }
    body
}

/// splitmix64: small, fast and good enough to pick bodies and operations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        // `below` is < len, so the index is in bounds.
        &items[self.below(items.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------------------------
// Measurements

/// Latencies of successful requests (µs) and failures by label.
#[derive(Default, Clone)]
struct Stats {
    lat_us: Vec<u64>,
    errors: BTreeMap<String, u64>,
}

impl Stats {
    fn record(&mut self, latency: Duration, out: &Outcome) {
        match out {
            Ok(_) => self
                .lat_us
                .push(latency.as_micros().try_into().unwrap_or(u64::MAX)),
            Err(label) => *self.errors.entry(label.clone()).or_default() += 1,
        }
    }

    fn merge(&mut self, other: Stats) {
        self.lat_us.extend(other.lat_us);
        for (label, n) in other.errors {
            *self.errors.entry(label).or_default() += n;
        }
    }

    fn summarize(mut self, secs: f64) -> Throughput {
        self.lat_us.sort_unstable();
        let pct = |p: f64| -> f64 {
            let Some(last) = self.lat_us.len().checked_sub(1) else {
                return 0.0;
            };
            let idx = ((p * self.lat_us.len() as f64).ceil() as usize)
                .saturating_sub(1)
                .min(last);
            self.lat_us[idx] as f64 / 1e3
        };
        Throughput {
            ok: self.lat_us.len() as u64,
            rate: self.lat_us.len() as f64 / secs.max(1e-9),
            p50_ms: pct(0.50),
            p90_ms: pct(0.90),
            p99_ms: pct(0.99),
            max_ms: pct(1.0),
            errors: self.errors,
        }
    }
}

/// Closed loop: each client is its own user and POSTs tasks back to back.
async fn durable_creates(bench: &Arc<Bench>, args: &BenchArgs) -> Throughput {
    let measure_from = Instant::now() + Duration::from_secs(args.warmup);
    let end = measure_from + Duration::from_secs(args.duration);
    let mut workers = tokio::task::JoinSet::new();
    for client in 0..args.concurrency {
        let bench = Arc::clone(bench);
        workers.spawn(async move {
            let mut stats = Stats::default();
            let auth = match bench.auth(&format!("bench-create-{client}")) {
                Ok(auth) => auth,
                Err(e) => {
                    stats.errors.insert(format!("token: {e}"), 1);
                    return stats;
                }
            };
            let mut rng = Rng::new(client);
            for n in 0.. {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let out = bench.create(&auth, &mut rng, n).await;
                if started >= measure_from {
                    stats.record(started.elapsed(), &out);
                }
            }
            stats
        });
    }
    join_stats(workers).await.summarize(args.duration as f64)
}

async fn join_stats(mut workers: tokio::task::JoinSet<Stats>) -> Stats {
    let mut all = Stats::default();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(stats) => all.merge(stats),
            Err(e) => *all.errors.entry(format!("worker: {e}")).or_default() += 1,
        }
    }
    all
}

/// A user of the mixed phase and the ids of the tasks seeded for it.
struct MixedUser {
    auth: String,
    task_ids: Vec<String>,
}

/// Creates `MIXED_USERS` users with `TASKS_PER_MIXED_USER` tasks each, `concurrency` at a time.
async fn seed_mixed_users(bench: &Arc<Bench>, concurrency: u64) -> Result<Arc<Vec<MixedUser>>> {
    let permits = Arc::new(Semaphore::new(usize::try_from(concurrency)?));
    let mut seeders = tokio::task::JoinSet::new();
    for user in 0..MIXED_USERS {
        let (bench, permits) = (Arc::clone(bench), Arc::clone(&permits));
        let auth = bench.auth(&format!("bench-mixed-{user}"))?;
        seeders.spawn(async move {
            let mut rng = Rng::new(1_000_000 + user as u64);
            let mut task_ids = Vec::with_capacity(TASKS_PER_MIXED_USER);
            for n in 0..TASKS_PER_MIXED_USER as u64 {
                let _permit = permits.acquire().await.map_err(|e| e.to_string())?;
                let body = bench.create(&auth, &mut rng, n).await?;
                let task: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
                let id = task["id"].as_str().ok_or("create response without id")?;
                task_ids.push(id.to_string());
            }
            Ok::<_, String>(MixedUser { auth, task_ids })
        });
    }
    let mut users = Vec::with_capacity(MIXED_USERS);
    while let Some(joined) = seeders.join_next().await {
        users.push(joined?.map_err(|e| anyhow::anyhow!("seeding mixed users: {e}"))?);
    }
    Ok(Arc::new(users))
}

#[derive(Clone, Copy)]
enum Op {
    List,
    Get,
    Create,
    Update,
    Complete,
}

impl Op {
    /// 40% list, 40% get, 7% create, 7% update, 6% complete.
    fn pick(rng: &mut Rng) -> Self {
        match rng.below(100) {
            0..40 => Op::List,
            40..80 => Op::Get,
            80..87 => Op::Create,
            87..94 => Op::Update,
            _ => Op::Complete,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Op::List => "list",
            Op::Get => "get",
            Op::Create => "create",
            Op::Update => "update",
            Op::Complete => "complete",
        }
    }

    fn is_read(self) -> bool {
        matches!(self, Op::List | Op::Get)
    }
}

async fn run_op(bench: &Bench, op: Op, user: &MixedUser, rng: &mut Rng, n: u64) -> Outcome {
    let id = rng.pick(&user.task_ids);
    let task_url = bench.url(&format!("/api/tasks/{id}"));
    let c = &bench.client;
    match op {
        Op::List => {
            send(
                c.get(bench.url("/api/tasks"))
                    .header(AUTHORIZATION, &user.auth),
                200,
            )
            .await
        }
        Op::Get => send(c.get(task_url).header(AUTHORIZATION, &user.auth), 200).await,
        Op::Create => bench.create(&user.auth, rng, n).await,
        Op::Update => {
            let body = json!({ "title": format!("Updated task #{n}"), "priority": "high" });
            send(
                c.put(task_url)
                    .header(AUTHORIZATION, &user.auth)
                    .json(&body),
                200,
            )
            .await
        }
        Op::Complete => {
            let url = format!("{task_url}/complete");
            send(c.patch(url).header(AUTHORIZATION, &user.auth), 200).await
        }
    }
}

/// Open loop: request i is due at start + i/rate whatever the server does, and its latency
/// counts from that due time (plus at most `TIMER_SLACK`), so queueing is not hidden.
async fn mixed_load(bench: &Arc<Bench>, users: Arc<Vec<MixedUser>>, rate: u64, secs: u64) -> Mixed {
    let permits = Arc::new(Semaphore::new(MIXED_MAX_IN_FLIGHT));
    let start = Instant::now() + Duration::from_millis(20);
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..rate * secs {
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        // Tokio's timer ticks in whole milliseconds: forgive that much lateness, count the rest.
        let from = Instant::now().min(due + TIMER_SLACK);
        let (bench, users, permits) = (Arc::clone(bench), Arc::clone(&users), Arc::clone(&permits));
        requests.spawn(async move {
            let mut rng = Rng::new(2_000_000 + i);
            let op = Op::pick(&mut rng);
            let user = rng.pick(&users[..]);
            let out = match permits.acquire().await {
                Ok(_permit) => run_op(&bench, op, user, &mut rng, i)
                    .await
                    .map_err(|e| format!("{} {e}", op.name())),
                Err(e) => Err(e.to_string()),
            };
            (op.is_read(), from.elapsed(), out)
        });
    }
    let (mut reads, mut writes) = (Stats::default(), Stats::default());
    while let Some(joined) = requests.join_next().await {
        match joined {
            Ok((true, latency, out)) => reads.record(latency, &out),
            Ok((false, latency, out)) => writes.record(latency, &out),
            Err(e) => {
                *reads
                    .errors
                    .entry(format!("request task: {e}"))
                    .or_default() += 1
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut all = reads.clone();
    all.merge(writes.clone());
    Mixed {
        all: all.summarize(elapsed),
        reads: reads.summarize(elapsed),
        writes: writes.summarize(elapsed),
    }
}

/// Creates tasks, `concurrency` at a time over `FILL_USERS` users, until this bench has created
/// `target` in total. `None` when nothing was needed.
async fn fill_store(bench: &Arc<Bench>, target: u64, concurrency: u64) -> Option<Fill> {
    let have = bench.created.load(Ordering::Relaxed);
    if have >= target {
        return None;
    }
    let auths: Vec<String> = (0..FILL_USERS)
        .filter_map(|u| bench.auth(&format!("bench-fill-{u}")).ok())
        .collect();
    let auths = Arc::new(auths);
    let next = Arc::new(AtomicU64::new(have));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let (bench, auths, next) = (Arc::clone(bench), Arc::clone(&auths), Arc::clone(&next));
        workers.spawn(async move {
            let mut stats = Stats::default();
            let mut rng = Rng::new(3_000_000 + worker);
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= target || auths.is_empty() {
                    break;
                }
                let auth = &auths[(n % auths.len() as u64) as usize];
                let t0 = Instant::now();
                let out = bench.create(auth, &mut rng, n).await;
                stats.record(t0.elapsed(), &out);
            }
            stats
        });
    }
    let stats = join_stats(workers).await;
    let secs = started.elapsed().as_secs_f64();
    Some(Fill {
        created: stats.lat_us.len() as u64,
        secs,
        creates: stats.summarize(secs),
    })
}

/// Opens `--burst` connections at once (each its own client, so each its own TCP connection),
/// each a user of the fill phase sending `--burst-requests` requests, closes them all, then
/// samples the server's RSS every second for `--settle-secs`.
async fn burst(bench: &Arc<Bench>, args: &BenchArgs, pid: Option<u32>) -> Result<Burst> {
    let connections = usize::try_from(args.burst)?;
    let start = Arc::new(tokio::sync::Barrier::new(connections + 1));
    let before_kib = pid.and_then(|p| rss_kib(p, "VmRSS"));
    let mut workers = tokio::task::JoinSet::new();
    for connection in 0..args.burst {
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(60))
            .build()?;
        let auth = bench.auth(&format!("bench-fill-{}", connection % FILL_USERS))?;
        let (bench, start, requests) = (Arc::clone(bench), Arc::clone(&start), args.burst_requests);
        workers.spawn(async move {
            let mut stats = Stats::default();
            let mut rng = Rng::new(4_000_000 + connection);
            start.wait().await;
            for n in 0..requests {
                let t0 = Instant::now();
                let out = if n % 2 == 0 {
                    let body = task_body(&mut rng, n);
                    let req = client
                        .post(bench.url("/api/tasks"))
                        .header(AUTHORIZATION, &auth);
                    let out = send(req.json(&body), 201).await;
                    if out.is_ok() {
                        bench.created.fetch_add(1, Ordering::Relaxed);
                    }
                    out
                } else {
                    let req = client
                        .get(bench.url("/api/tasks?limit=50"))
                        .header(AUTHORIZATION, &auth);
                    send(req, 200).await
                };
                stats.record(t0.elapsed(), &out);
            }
            // Dropping the client closes its connection.
            stats
        });
    }
    let mut peak_kib = before_kib;
    let started = Instant::now();
    start.wait().await;
    let mut joined = std::pin::pin!(join_stats(workers));
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let stats = loop {
        tokio::select! {
            stats = &mut joined => break stats,
            _ = tick.tick() => peak_kib = peak_kib.max(pid.and_then(|p| rss_kib(p, "VmRSS"))),
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let mut settle = Vec::new();
    let settle_started = Instant::now();
    for second in 0..=args.settle_secs {
        tokio::time::sleep_until((settle_started + Duration::from_secs(second)).into()).await;
        settle.push((second, pid.and_then(|p| rss_kib(p, "VmRSS"))));
    }
    Ok(Burst {
        connections: args.burst,
        requests: stats.lat_us.len() as u64,
        secs,
        throughput: stats.summarize(secs),
        rss_before_kib: before_kib,
        rss_peak_kib: peak_kib,
        rss_after_kib: settle,
    })
}

// ---------------------------------------------------------------------------------------------
// Report

#[derive(Serialize)]
struct Throughput {
    ok: u64,
    rate: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: BTreeMap<String, u64>,
}

#[derive(Serialize)]
struct Mixed {
    all: Throughput,
    reads: Throughput,
    writes: Throughput,
}

#[derive(Serialize)]
struct Fill {
    created: u64,
    secs: f64,
    creates: Throughput,
}

/// The store topped up to `tasks`: how long it took, and memory and disk after it.
#[derive(Serialize)]
struct FillCheckpoint {
    tasks: u64,
    fill: Option<Fill>,
    rss_kib: Option<u64>,
    disk_bytes: Option<u64>,
}

#[derive(Serialize)]
struct Burst {
    connections: u64,
    requests: u64,
    secs: f64,
    throughput: Throughput,
    rss_before_kib: Option<u64>,
    rss_peak_kib: Option<u64>,
    /// (seconds after the burst ended, RSS then).
    rss_after_kib: Vec<(u64, Option<u64>)>,
}

#[derive(Serialize, Default)]
struct Report {
    server: String,
    concurrency: u64,
    duration_secs: u64,
    startup_ms: Option<f64>,
    rss_idle_kib: Option<u64>,
    creates: Option<Throughput>,
    mixed_target_rate: u64,
    mixed: Option<Mixed>,
    fills: Vec<FillCheckpoint>,
    burst: Option<Burst>,
    tasks_created: u64,
    rss_peak_kib: Option<u64>,
}

impl Report {
    fn print(&self) {
        let line = |label: &str, value: String| println!("  {label:<36} {value}");
        let mib = |kib: Option<u64>| match kib {
            Some(k) => format!("{:>9.1} MiB", k as f64 / 1024.0),
            None => format!("{:>9} (no pid)", "n/a"),
        };
        println!("taskstream bench: {}", self.server);
        if let Some(ms) = self.startup_ms {
            line(
                "start-up (spawn -> first 200 /ready)",
                format!("{ms:>9.1} ms"),
            );
        }
        line("RSS idle", mib(self.rss_idle_kib));
        if let Some(c) = &self.creates {
            let label = format!("durable creates ({} clients)", self.concurrency);
            line(&label, rated(c, "creates/s"));
        }
        if let Some(m) = &self.mixed {
            let label = format!("mixed load (target {} req/s)", self.mixed_target_rate);
            line(&label, rated(&m.all, "req/s"));
            line("  reads (80%: list, get)", rated(&m.reads, "req/s"));
            line(
                "  writes (20%: create/update/done)",
                rated(&m.writes, "req/s"),
            );
        }
        for checkpoint in &self.fills {
            if let Some(f) = &checkpoint.fill {
                let label = format!("fill (+{} tasks in {:.1} s)", f.created, f.secs);
                line(&label, rated(&f.creates, "creates/s"));
            }
            line(
                &format!("RSS at {} tasks", checkpoint.tasks),
                mib(checkpoint.rss_kib),
            );
            if let Some(bytes) = checkpoint.disk_bytes {
                line(
                    &format!("data dir at {} tasks", checkpoint.tasks),
                    mib(Some(bytes / 1024)),
                );
            }
        }
        if let Some(b) = &self.burst {
            let label = format!("burst ({} connections, {:.1} s)", b.connections, b.secs);
            line(&label, rated(&b.throughput, "req/s"));
            line("  RSS before the burst", mib(b.rss_before_kib));
            line("  RSS peak during the burst", mib(b.rss_peak_kib));
            for (second, kib) in &b.rss_after_kib {
                if [0, 1, 5, 10, 20, 30, 45, 60].contains(second)
                    || Some(second) == b.rss_after_kib.last().map(|(s, _)| s)
                {
                    line(&format!("  RSS {second:>3} s after the burst"), mib(*kib));
                }
            }
        }
        if self.rss_peak_kib.is_some() {
            line("RSS peak (VmHWM)", mib(self.rss_peak_kib));
        }
    }
}

/// `rate unit  p50 .. max  errors`, latencies in ms.
fn rated(t: &Throughput, unit: &str) -> String {
    let errors = if t.errors.is_empty() {
        "0".to_string()
    } else {
        let each: Vec<String> = t
            .errors
            .iter()
            .map(|(label, n)| format!("{label} x{n}"))
            .collect();
        each.join(", ")
    };
    format!(
        "{:>9.0} {unit:<9}  p50 {:>7.2}  p90 {:>7.2}  p99 {:>7.2}  max {:>8.2} ms  errors {errors}",
        t.rate, t.p50_ms, t.p90_ms, t.p99_ms, t.max_ms
    )
}
