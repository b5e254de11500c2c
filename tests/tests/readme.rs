//! The README's walk-through runs as written: its `sh` block is taken from README.md and run by
//! bash against the real binary, with only the server's address changed, `taskstream` on the
//! `PATH` (the install step) and the data directory and secret the test server uses. Every
//! `curl` in it must get a 2xx answer, and what it prints must be what the comments say.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use taskstream_tests::{TestServer, bin, run};

/// The first ```sh block after `heading` in README.md.
fn readme_block(heading: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let section = readme
        .split_once(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"))
        .1;
    let block = section
        .split_once("```sh\n")
        .expect("a sh block")
        .1
        .split_once("\n```")
        .expect("the end of the block")
        .0;
    block.to_owned()
}

/// Every curl call the script made: (HTTP status, exit code, arguments).
fn curl_calls(log: &str) -> Vec<(u16, i32, String)> {
    let mut calls = Vec::new();
    let mut status = 0;
    for line in log.lines() {
        if let Some(code) = line.strip_prefix("HTTPSTATUS ") {
            status = code.trim().parse().unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("EXIT ") {
            let (code, args) = rest.split_once(' ').unwrap_or((rest, ""));
            calls.push((status, code.parse().unwrap_or(-1), args.to_owned()));
            status = 0;
        }
    }
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walk_through_runs_as_written() {
    let srv = TestServer::start().await;
    let block = readme_block("## Walk-through with curl");
    assert!(block.contains("taskstream token --sub alice"), "{block}");
    let script = block.replace("http://127.0.0.1:8080", &srv.url(""));
    let status_log = srv.scratch().join("curl-status.log");
    // A curl that also notes, on the side, each call's status and exit code.
    let prelude = format!(
        "set -u\ncurl() {{\n  command curl -w '%{{stderr}}HTTPSTATUS %{{http_code}}\\n' \"$@\" 2>>'{log}'\n  \
         local rc=$?\n  echo \"EXIT $rc $*\" >>'{log}'\n  return $rc\n}}\n",
        log = status_log.display()
    );
    let bin_dir = bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .env("PATH", path)
        .env("TASKSTREAM_DATA_DIR", srv.data_dir())
        .env("TASKSTREAM_JWT_SECRET", srv.secret())
        .env_remove("TASKSTREAM_CONFIG")
        .current_dir(srv.scratch());
    let output = run(command, Duration::from_secs(120));
    let log = std::fs::read_to_string(&status_log).unwrap_or_default();
    assert!(
        output.status.is_some_and(|status| status.success()),
        "the walk-through failed: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- curl ---\n{log}",
        output.status,
        output.stdout,
        output.stderr
    );
    let calls = curl_calls(&log);
    assert_eq!(calls.len(), 19, "every curl of the walk-through ran: {log}");
    for (status, exit, args) in &calls {
        assert!(
            (200..300).contains(status),
            "curl {args} answered {status}\n{}",
            output.stdout
        );
        // The live stream is ended by --max-time (exit 28) once it has shown its events.
        let timed_out = *exit == 28 && args.contains("--max-time");
        assert!(*exit == 0 || timed_out, "curl {args} exited {exit}");
    }
    let out = &output.stdout;
    // Completing the rent task answers with the next occurrence, a month on, without drift.
    assert!(out.contains(r#""next_task":{"#), "{out}");
    assert!(
        out.contains(r#""due_date":"2030-02-28T09:00:00Z""#),
        "{out}"
    );
    // The second reminder is in the schedule.
    assert!(out.contains("2030-02-27T17:00:00Z"), "{out}");
    // The reminder fired, became a notification, and the snooze re-armed it.
    assert!(out.contains(r#""notification_id":"#), "{out}");
    assert!(out.contains(r#""deleted":true"#), "{out}");
    // The assistant answered; the settings were saved.
    assert!(out.contains(r#""tools_invoked":"#), "{out}");
    assert!(out.contains(r#""time_zone":"Europe/Berlin""#), "{out}");
}
