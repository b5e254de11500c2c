//! The limits that keep one client from hurting the server or other users, through the binary:
//! list pages, tag filters, per-user write limits, runaway recurrence, private data files and
//! slow (slowloris) clients.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::{Value, json};
use taskstream_tests::{TestServer, User, query};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Creates `n` tasks for `u`, eight at a time.
async fn create_many(u: &User, n: usize) {
    let mut pending = tokio::task::JoinSet::new();
    for chunk in 0..8 {
        let u = User {
            client: u.client.clone(),
            base: u.base.clone(),
            token: u.token.clone(),
            sub: u.sub.clone(),
        };
        pending.spawn(async move {
            for i in (chunk..n).step_by(8) {
                let r = u
                    .post("/api/tasks", &json!({ "title": format!("task {i:04}") }))
                    .await;
                r.expect(201);
            }
        });
    }
    while let Some(done) = pending.join_next().await {
        done.unwrap();
    }
}

/// A list without `limit` is one page of 500, and says where the next page is.
async fn lists_are_paged_by_default(srv: TestServer) {
    let u = srv.user("pager");
    create_many(&u, 503).await;
    let first = u.get("/api/tasks?sort=title&order=asc").await;
    let page = first.expect(200).as_array().unwrap().clone();
    assert_eq!(page.len(), 500, "the default page");
    assert_eq!(page[0]["title"], "task 0000");
    let link = first
        .header("link")
        .expect("a Link header to the next page");
    assert_eq!(
        link,
        "</api/tasks?sort=title&order=asc&limit=500&offset=500>; rel=\"next\""
    );
    let next = link
        .strip_prefix('<')
        .and_then(|rest| rest.split_once('>'))
        .map(|(path, _)| path.to_owned())
        .unwrap();
    let second = u.get(&next).await;
    let titles: Vec<Value> = second
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].clone())
        .collect();
    assert_eq!(
        titles,
        [json!("task 0500"), json!("task 0501"), json!("task 0502")]
    );
    assert_eq!(second.header("link"), None, "the last page has no next");
    // An explicit page up to the maximum still works, and a bigger one is refused.
    assert_eq!(u.list("limit=1000").await.len(), 503);
    let exact = u.get("/api/tasks?limit=503").await;
    exact.expect(200);
    assert_eq!(
        exact.header("link"),
        None,
        "a page that ends the list has no next"
    );
    u.get("/api/tasks?limit=1001")
        .await
        .expect_invalid("int_parsing", json!(["query", "limit"]));
}

/// A tag filter longer than a task can hold is a 422, not a 500 from the database.
async fn tag_filters_are_bounded(srv: TestServer) {
    let u = srv.user("tagger");
    u.create(json!({ "title": "tagged", "tags": ["a", "b"] }))
        .await;
    let twenty: Vec<String> = (0..20).map(|n| format!("t{n}")).collect();
    assert!(
        u.list(&query(&[("tags", &twenty.join(","))]))
            .await
            .is_empty()
    );
    assert_eq!(u.list("tags=a,b").await.len(), 1);
    for count in [21, 1_000] {
        let tags: Vec<String> = (0..count).map(|n| format!("t{n}")).collect();
        let r = u
            .get(&format!(
                "/api/tasks?{}",
                query(&[("tags", &tags.join(","))])
            ))
            .await;
        r.expect_invalid("too_long", json!(["query", "tags"]));
    }
}

/// A bare `FREQ=SECONDLY` (and rules that fire more than hourly) are refused; an `on_due`
/// series whose due date is long past catches up with one occurrence, not thousands.
async fn recurrence_cannot_run_away(srv: TestServer) {
    let u = srv.user("runaway");
    for rule in [
        "RRULE:FREQ=SECONDLY",
        "RRULE:FREQ=MINUTELY",
        "RRULE:FREQ=HOURLY;BYMINUTE=0,15,30,45",
    ] {
        let r = u
            .post(
                "/api/tasks",
                &json!({ "title": "spam", "due_date": "2026-01-01T00:00:00Z",
                         "is_recurring": true, "recurrence_rule": rule,
                         "recurrence_trigger": "on_due" }),
            )
            .await;
        assert_eq!(r.status, 422, "{rule}: {}", r.text);
        assert!(
            r.text.contains("at most once an hour"),
            "{rule}: {}",
            r.text
        );
    }
    let started = chrono::Utc::now();
    let first = u
        .create(
            json!({ "title": "hourly check", "due_date": "2026-01-01T00:30:00Z",
                        "is_recurring": true, "recurrence_rule": "RRULE:FREQ=HOURLY",
                        "recurrence_trigger": "on_due" }),
        )
        .await;
    // The series is ~8,000 hours behind. Wait for its next occurrence...
    let mut tasks = Vec::new();
    for _ in 0..100 {
        tasks = u.list("").await;
        if tasks.len() > 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(tasks.len(), 2, "one next occurrence: {tasks:?}");
    let next = tasks.iter().find(|t| t["id"] != first["id"]).unwrap();
    assert_eq!(next["parent_task_id"], first["id"]);
    let due = taskstream_tests::utc(next["due_date"].as_str().unwrap());
    assert!(
        due > started && due <= chrono::Utc::now() + chrono::Duration::hours(1),
        "the next occurrence is the first one ahead: {due}"
    );
    // ...and no more follow: that one is due in the future.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(u.list("").await.len(), 2, "no backlog of past occurrences");
}

taskstream_tests::api_tests!(
    lists_are_paged_by_default,
    tag_filters_are_bounded,
    recurrence_cannot_run_away,
);

/// Past the burst a user's writes get 429 with Retry-After; other users are not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_writes_are_limited_per_user() {
    let srv = TestServer::start_with(
        &["--task-write-burst", "5", "--task-writes-per-second", "1"],
        &[],
    )
    .await;
    let u = srv.user("busy");
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(u.create(json!({ "title": format!("t{n}") })).await["id"].clone());
    }
    let refused = u
        .post("/api/tasks", &json!({ "title": "one too many" }))
        .await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert!(
        refused.json["detail"]
            .as_str()
            .unwrap()
            .starts_with("Too many task changes"),
        "{}",
        refused.text
    );
    // Updates, completions and deletes draw from the same bucket; reads do not.
    let id = ids[0].as_str().unwrap();
    assert_eq!(
        u.put(&format!("/api/tasks/{id}"), &json!({"title": "x"}))
            .await
            .status,
        429
    );
    assert_eq!(u.delete(&format!("/api/tasks/{id}")).await.status, 429);
    assert_eq!(u.list("").await.len(), 5);
    // Someone else can still write.
    srv.user("calm").create(json!({ "title": "mine" })).await;
    // The bucket refills at the steady rate.
    tokio::time::sleep(Duration::from_millis(1_100 * retry)).await;
    u.create(json!({ "title": "after a pause" })).await;

    let bad = taskstream_tests::run(
        {
            let mut cmd = taskstream_tests::command();
            cmd.args(["serve", "--task-write-burst", "0"]);
            cmd
        },
        Duration::from_secs(30),
    );
    assert!(!bad.status.unwrap().success());
    assert!(bad.stderr.contains("--task-write-burst"), "{}", bad.stderr);
}

fn mode_of(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Whatever the umask, the data directory is 0700 and every file in it 0600; a directory an
/// older version left open is tightened at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_files_are_private_whatever_the_umask() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = taskstream_tests::free_port();
    let cmd = taskstream_tests::command();
    // The umask is set by a shell in front of the binary: umask 000 would make every file the
    // stores create 0666.
    let program = cmd.get_program().to_owned();
    let mut shell = std::process::Command::new("sh");
    shell
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(program)
        .args(["serve", "--data-dir"])
        .arg(&dir)
        .args(["--http-addr", &format!("127.0.0.1:{port}")])
        .args([
            "--fluvio-sc-addr",
            "127.0.0.1:0",
            "--fluvio-spu-addr",
            "127.0.0.1:0",
        ])
        .envs(
            cmd.get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (key, value) in cmd.get_envs() {
        if value.is_none() {
            shell.env_remove(key);
        }
    }
    let mut child = shell.spawn().unwrap();
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..300 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/ready"))
            .send()
            .await
            && r.status() == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the server did not become ready");
    // A write, so the WAL and its index exist too.
    let secret = std::fs::read_to_string(dir.join("jwt-secret")).unwrap();
    let token = taskstream_tests::mint_hs256(
        secret.trim(),
        &json!({ "sub": "private", "exp": taskstream_tests::now() + 3600 }),
    );
    let created = client
        .post(format!("http://127.0.0.1:{port}/api/tasks"))
        .bearer_auth(token)
        .json(&json!({ "title": "secret plans" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    assert_eq!(mode_of(&dir), 0o700, "the data directory");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        if entry.metadata().unwrap().is_file() {
            files.push((
                entry.file_name().to_string_lossy().into_owned(),
                mode_of(&entry.path()),
            ));
        }
    }
    files.sort();
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    for expected in [
        "events.redb",
        "jwt-secret",
        "state.redb",
        "taskstream.db",
        "taskstream.db-wal",
        "taskstream.lock",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for (name, mode) in &files {
        assert_eq!(*mode, 0o600, "{name} is {mode:o}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A client that sends its request headers a byte at a time, or not at all, is disconnected
/// after the header timeout; others are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off() {
    let srv = TestServer::start_with(&["--http-header-timeout-secs", "1"], &[]).await;
    let addr = format!("127.0.0.1:{}", srv.port());
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut trickling = tokio::net::TcpStream::connect(&addr).await.unwrap();
    trickling
        .write_all(b"GET /health HTTP/1.1\r\n")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        // One header byte every 200 ms: never a complete header block.
        for byte in b"X-Slow: ".iter().cycle().take(100) {
            if trickling.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut rest = Vec::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(5), trickling.read_to_end(&mut rest)).await;
        rest
    });
    // Meanwhile a normal client is served.
    srv.user("normal").list("").await;
    // Returning at all (EOF or a reset) means the server closed it.
    let mut buffer = Vec::new();
    let _closed = tokio::time::timeout(Duration::from_secs(20), silent.read_to_end(&mut buffer))
        .await
        .expect("the silent connection must be closed by the server");
    let rest = tokio::time::timeout(Duration::from_secs(25), trickle)
        .await
        .expect("the trickling connection must be closed by the server")
        .unwrap();
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "no answer to a request that never finished its headers: {text}"
    );
    // And the server still serves.
    srv.user("normal").list("").await;
}
