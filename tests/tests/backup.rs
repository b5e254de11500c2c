//! `taskstream backup` and `taskstream restore` through the binary: a backup taken while the
//! server runs and writes holds every write acknowledged before it began, and a server starts on
//! the restored directory with them; restore refuses a running server's directory and existing
//! data without --force; a stopped server's directory is backed up too.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use taskstream_tests::{CONSUMER_WAIT, CliOutput, Launch, TestServer, command, eventually, run};

fn cli(args: &[String]) -> CliOutput {
    let mut cmd = command();
    cmd.args(args);
    run(cmd, Duration::from_secs(120))
}

fn ok(output: &CliOutput) -> &str {
    assert!(
        output.status.is_some_and(|status| status.success()),
        "failed: {:?}\n{}\n{}",
        output.status,
        output.stdout,
        output.stderr
    );
    &output.stdout
}

fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|part| (*part).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_write_load_holds_every_acknowledged_write_and_restores() {
    // The server keeps its generated JWT secret in the data directory, as by default.
    let srv = TestServer::launch(Launch {
        args: args(&["--task-writes-per-second", "0"]),
        secret_flag: false,
        ..Launch::default()
    })
    .await;
    let alice = srv.user("alice");
    // A task whose events were consumed before the backup: its audit row must come back.
    let early = alice
        .create(json!({"title": "before everything", "tags": ["early"]}))
        .await;
    let early_id = early["id"].as_str().unwrap().to_owned();
    eventually("the early task audited", CONSUMER_WAIT, || async {
        let audit = alice.audit(&format!("task_id={early_id}")).await;
        (!audit.is_empty())
            .then_some(())
            .ok_or("no audit row yet".to_owned())
    })
    .await;

    // Four writers create tasks as fast as the server acknowledges them.
    let acknowledged: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (user, acknowledged, stop) = (srv.user("alice"), acknowledged.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && n < 2000 {
                let task = user
                    .create(json!({"title": format!("load {writer}-{n}"),
                        "due_date": "2030-06-01T09:00:00Z", "reminder_offset_minutes": 30}))
                    .await;
                acknowledged
                    .lock()
                    .unwrap()
                    .push((Instant::now(), task["id"].as_str().unwrap().to_owned()));
                n += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;

    // The backup, taken by the running server while the writers go on.
    let backup_dir = srv.scratch().join("backup");
    let started = Instant::now();
    let backup_args = args(&[
        "backup",
        &backup_dir.display().to_string(),
        "--data-dir",
        &srv.data_dir().display().to_string(),
    ]);
    let out = tokio::task::spawn_blocking(move || cli(&backup_args))
        .await
        .unwrap();
    let out_text = ok(&out).to_owned();
    assert!(out_text.contains("taskstream.db"), "{out_text}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let before: BTreeSet<String> = acknowledged
        .iter()
        .filter(|(at, _)| *at < started)
        .map(|(_, id)| id.clone())
        .collect();
    let during = acknowledged.len() - before.len();
    assert!(
        before.len() > 20,
        "writes before the backup: {}",
        before.len()
    );
    assert!(during > 0, "the writers went on during the backup");
    eprintln!(
        "{} writes acknowledged before the backup, {during} during or after it",
        before.len()
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup_dir.join("backup.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "taskstream-backup");
    use std::os::unix::fs::PermissionsExt;
    for name in ["taskstream.db", "events.redb", "state.redb", "jwt-secret"] {
        let mode = std::fs::metadata(backup_dir.join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{name} is private");
    }

    // Restoring into the running server's directory is refused, and changes nothing.
    let refused = cli(&args(&[
        "restore",
        &backup_dir.display().to_string(),
        "--data-dir",
        &srv.data_dir().display().to_string(),
        "--force",
    ]));
    assert!(!refused.status.unwrap().success());
    assert!(
        refused.stderr.contains("running server"),
        "{}",
        refused.stderr
    );
    assert!(srv.user("alice").get_task(&early_id).await.status == 200);

    // Restore into a new directory and start a server on it: every acknowledged write is
    // there, with its audit trail, and the restored server keeps working.
    let fresh = tempfile::TempDir::new().unwrap();
    let restored_dir = fresh.path().join("data");
    ok(&cli(&args(&[
        "restore",
        &backup_dir.display().to_string(),
        "--data-dir",
        &restored_dir.display().to_string(),
    ])));
    let restored = TestServer::launch(Launch {
        data_dir: Some(restored_dir.clone()),
        // The backup holds the JWT secret: tokens signed with it keep working.
        secret_flag: false,
        ..Launch::default()
    })
    .await;
    assert_eq!(restored.secret(), srv.secret(), "the secret came back");
    let alice_restored = restored.user("alice");
    let ids: BTreeSet<String> = alice_restored
        .list_all("")
        .await
        .iter()
        .map(|task| task["id"].as_str().unwrap().to_owned())
        .collect();
    let missing: Vec<&String> = before.difference(&ids).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes lost: {missing:?}",
        missing.len()
    );
    assert!(ids.contains(&early_id));
    assert!(ids.len() <= acknowledged.len() + 1);
    let audit = alice_restored.audit(&format!("task_id={early_id}")).await;
    assert!(!audit.is_empty(), "the audit trail came back");
    let task = alice_restored
        .create(json!({"title": "after the restore"}))
        .await;
    assert_eq!(task["title"], "after the restore");

    // The same backup again into a directory with data: refused without --force.
    let again = cli(&args(&[
        "restore",
        &backup_dir.display().to_string(),
        "--data-dir",
        &restored_dir.display().to_string(),
    ]));
    assert!(!again.status.unwrap().success());
    // (the restored server runs there, which is refused first)
    assert!(again.stderr.contains("running server"), "{}", again.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_servers_directory_is_backed_up_and_restored_over_old_data_only_with_force() {
    let mut srv = TestServer::start().await;
    let bob = srv.user("bob");
    for n in 0..5 {
        bob.create(json!({"title": format!("task {n}")})).await;
    }
    srv.sigterm();
    srv.wait_exit(Duration::from_secs(30)).await.unwrap();
    let data = srv.data_dir().display().to_string();
    let backup_dir = srv.scratch().join("offline-backup").display().to_string();
    ok(&cli(&args(&["backup", &backup_dir, "--data-dir", &data])));
    // Not into a directory that holds something.
    let out = cli(&args(&["backup", &backup_dir, "--data-dir", &data]));
    assert!(!out.status.unwrap().success());
    assert!(out.stderr.contains("not empty"), "{}", out.stderr);

    // Another directory with data of its own: refused, then replaced with --force.
    let other = TestServer::start().await;
    other
        .user("carol")
        .create(json!({"title": "carol's"}))
        .await;
    let mut other = other;
    other.sigterm();
    other.wait_exit(Duration::from_secs(30)).await.unwrap();
    let other_data = other.data_dir().display().to_string();
    let out = cli(&args(&["restore", &backup_dir, "--data-dir", &other_data]));
    assert!(!out.status.unwrap().success());
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    ok(&cli(&args(&[
        "restore",
        &backup_dir,
        "--data-dir",
        &other_data,
        "--force",
    ])));
    other.restart().await;
    let tasks = TestServer::user(&other, "bob").list_all("").await;
    assert_eq!(tasks.len(), 5);
    assert!(
        TestServer::user(&other, "carol")
            .list_all("")
            .await
            .is_empty()
    );

    let out = cli(&args(&[
        "restore",
        "/nonexistent/backup",
        "--data-dir",
        &other_data,
    ]));
    assert!(!out.status.unwrap().success());
    assert!(
        out.stderr.contains("not a taskstream backup"),
        "{}",
        out.stderr
    );
    let out = cli(&args(&["backup", "--help"]));
    assert!(ok(&out).contains("control.sock"));
}
