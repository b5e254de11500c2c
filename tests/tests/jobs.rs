//! Periodic jobs through the binary, on a schedule set by configuration (`--job-schedule`):
//! the opt-in daily digest reaches a user once however often its job runs, on both shapes
//! (cluster: once per period across replicas, through PostgreSQL), its runs are counted in
//! `/metrics`, and a schedule for a job that does not exist stops the start with a clear error.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Timelike;
use serde_json::{Value, json};
use taskstream_tests::{CONSUMER_WAIT, Resp, TestServer, User, command, eventually, run};

/// The digest job every two seconds instead of hourly.
const EVERY_TWO_SECONDS: &str = "daily-digest=*/2 * * * * *";
/// The digest job on New Year's Day only: not during the test's setup.
const NOT_NOW: &str = "daily-digest=0 0 0 1 1 *";

/// The user's digest notifications.
async fn digests(user: &User) -> Vec<Value> {
    user.notifications()
        .await
        .into_iter()
        .filter(|n| n["kind"] == "daily_digest")
        .collect()
}

/// Started with [`NOT_NOW`]: the users are set up before the first run (in cluster mode the first
/// run of an hour is the only one that does that hour's work), then the server restarts with the
/// digest every two seconds.
async fn the_digest_arrives_once_however_often_its_job_runs(mut srv: TestServer) {
    // The digest goes out at the user's digest hour: this one. Close to the end of the hour the
    // next tick could fall in the next one, so start after it turns.
    let now = chrono::Utc::now();
    if now.minute() == 59 && now.second() >= 40 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - now.second()))).await;
    }
    let hour = chrono::Utc::now().hour();
    let ivy = srv.user("digest-ivy");
    ivy.put(
        "/api/settings",
        &json!({"time_zone": "UTC", "daily_digest": true, "digest_hour": hour}),
    )
    .await
    .expect(200);
    ivy.create(json!({"title": "file the taxes", "due_date": "2026-01-05T09:00:00Z"}))
        .await;
    ivy.create(json!({"title": "not due yet", "due_date": "2099-01-05T09:00:00Z"}))
        .await;
    let quiet = srv.user("digest-quiet");
    quiet
        .create(json!({"title": "also overdue", "due_date": "2026-01-05T09:00:00Z"}))
        .await;
    srv.restart_adding(&["--job-schedule", EVERY_TWO_SECONDS])
        .await;
    // The restarted server may listen on another port.
    let (ivy, quiet) = (srv.user("digest-ivy"), srv.user("digest-quiet"));

    let first = eventually("a digest notification", CONSUMER_WAIT, || async {
        let found = digests(&ivy).await;
        if found.is_empty() {
            Err("none yet".to_owned())
        } else {
            Ok(found)
        }
    })
    .await;
    let message = first[0]["message"].as_str().unwrap();
    assert!(message.contains("'file the taxes'"), "{message}");
    assert!(!message.contains("not due yet"), "{message}");

    // Several more runs later there is still exactly one.
    let runs = || async {
        let r = Resp::from(srv.client().get(srv.url("/metrics")).send().await.unwrap()).await;
        r.text
            .lines()
            .find(|line| {
                line.starts_with("taskstream_job_runs_total")
                    && line.contains(r#"job="daily-digest""#)
                    && line.contains(r#"outcome="success""#)
            })
            .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let before = runs().await;
    eventually("two more digest runs", CONSUMER_WAIT, || async {
        let now = runs().await;
        if now >= before + 2.0 {
            Ok(())
        } else {
            Err(format!("{now} runs, started from {before}"))
        }
    })
    .await;
    assert_eq!(digests(&ivy).await.len(), 1, "once a day, not once a run");
    assert!(
        digests(&quiet).await.is_empty(),
        "only users who opted in get one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_digest_arrives_once_however_often_its_job_runs() {
    let srv = TestServer::start_with(&["--job-schedule", NOT_NOW], &[]).await;
    the_digest_arrives_once_however_often_its_job_runs(srv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_digest_arrives_once_however_often_its_job_runs() {
    let Some(srv) = TestServer::start_cluster_with(&["--job-schedule", NOT_NOW]).await else {
        return;
    };
    the_digest_arrives_once_however_often_its_job_runs(srv).await;
}

#[test]
fn a_schedule_for_an_unknown_job_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command();
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--http-addr", "127.0.0.1:0"])
        .args(["--job-schedule", "daily-digets=0 0 * * * *"]);
    let out = run(cmd, Duration::from_secs(30));
    assert!(
        out.status.is_some_and(|status| !status.success()),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("daily-digets") && out.stderr.contains("daily-digest"),
        "names the wrong one and the right ones: {}",
        out.stderr
    );

    let mut cmd = command();
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--http-addr", "127.0.0.1:0"])
        .args(["--job-schedule", "daily-digest"]);
    let out = run(cmd, Duration::from_secs(30));
    assert!(out.status.is_some_and(|status| !status.success()));
    assert!(out.stderr.contains("NAME=CRON"), "{}", out.stderr);
}
