//! `taskstream task add|list|done` through the binary: on the data directory next to a running
//! server (which relays the CLI's events), on a data directory with no server, and through a
//! running server's API with a token.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use taskstream_tests::{CONSUMER_WAIT, CliOutput, TestServer, command, eventually, run};

/// `taskstream task ARGS` with `target` (e.g. `--data-dir D --user alice`) appended.
fn task(target: &[String], args: &[&str]) -> CliOutput {
    let mut cmd = command();
    cmd.arg("task").args(args).args(target);
    run(cmd, Duration::from_secs(60))
}

fn ok(output: &CliOutput) -> &str {
    assert!(
        output.status.is_some_and(|status| status.success()),
        "failed: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        output.stdout,
        output.stderr
    );
    &output.stdout
}

fn data_dir_target(dir: &Path, user: &str) -> Vec<String> {
    vec![
        "--data-dir".into(),
        dir.display().to_string(),
        "--user".into(),
        user.into(),
        "--timezone".into(),
        "Europe/Berlin".into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_adds_lists_and_completes_on_the_data_dir_next_to_a_server() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice");
    let target = data_dir_target(srv.data_dir(), "alice");

    let out = task(
        &target,
        &["add", "pay rent every month on the 1st at 9 #home !high"],
    );
    let added = ok(&out);
    assert!(added.starts_with("Added "), "{added}");
    assert!(
        added.contains("Pay rent") || added.contains("pay rent"),
        "{added}"
    );
    assert!(
        added.contains("!high") && added.contains("#home"),
        "{added}"
    );
    assert!(
        added.contains("due ") && added.contains(" 09:00"),
        "{added}"
    );
    assert!(added.contains("↻ "), "{added}");
    // Words need no quotes.
    ok(&task(
        &target,
        &["add", "call", "the", "bank", "tomorrow", "at", "10"],
    ));
    ok(&task(&target, &["add", "buy oat milk #errands"]));

    // The API sees the tasks, made by the same service: a recurring task with its rule and
    // reminder-free, due at 09:00 Berlin time on the 1st of a month.
    let tasks = alice.list("").await;
    assert_eq!(tasks.len(), 3);
    let rent = tasks
        .iter()
        .find(|task| task["title"].as_str().unwrap().to_lowercase() == "pay rent")
        .unwrap();
    assert_eq!(rent["priority"], "high");
    assert_eq!(rent["tags"], serde_json::json!(["home"]));
    assert_eq!(rent["is_recurring"], true);
    let due = taskstream_tests::utc(rent["due_date"].as_str().unwrap());
    let berlin = due.with_timezone(&chrono_tz::Europe::Berlin);
    assert_eq!(berlin.format("%d %H:%M").to_string(), "01 09:00", "{due}");
    // The running server relays the CLI's events: they reach the audit trail.
    let rent_id = rent["id"].as_str().unwrap().to_owned();
    eventually(
        "the CLI's task.created in the audit",
        CONSUMER_WAIT,
        || async {
            let audit = alice
                .get(&format!("/api/audit?task_id={rent_id}"))
                .await
                .expect(200)
                .clone();
            audit
                .as_array()
                .is_some_and(|rows| rows.iter().any(|row| row["event_type"] == "task.created"))
                .then_some(())
                .ok_or(format!("{audit}"))
        },
    )
    .await;

    // list: open tasks, soonest first; filters by tag and words.
    let out = task(&target, &["list"]);
    let listed = ok(&out);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert!(lines[0].contains("bank"), "tomorrow comes first: {listed}");
    assert!(lines[2].contains("oat milk"), "undated last: {listed}");
    let out = task(&target, &["list", "#home"]);
    assert_eq!(ok(&out).lines().count(), 1, "{}", out.stdout);
    let out = task(&target, &["list", "milk"]);
    assert!(ok(&out).contains("oat milk") && out.stdout.lines().count() == 1);
    let out = task(&target, &["list", "upcoming"]);
    assert!(ok(&out).contains("bank"), "{}", out.stdout);
    let out = task(&target, &["list", "--json"]);
    let json: Value = serde_json::from_str(ok(&out)).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
    taskstream_tests::assert_task(&json[0]);

    // done by text; the list hides it, --all shows it.
    let out = task(&target, &["done", "bank"]);
    assert!(ok(&out).starts_with("Completed "), "{}", out.stdout);
    let out = task(&target, &["list"]);
    assert!(!ok(&out).contains("bank"), "{}", out.stdout);
    let out = task(&target, &["list", "--all"]);
    assert!(ok(&out).contains("bank") && out.stdout.contains("✓ done"));

    // done on a recurring task prints the next occurrence.
    let out = task(&target, &["done", "pay rent"]);
    let done = ok(&out);
    assert!(done.contains("Next: "), "{done}");

    // Ambiguous text: the candidates, exit status 1, nothing completed.
    ok(&task(&target, &["add", "buy stamps"]));
    let out = task(&target, &["done", "buy"]);
    assert_eq!(out.status.and_then(|status| status.code()), Some(1));
    assert!(out.stderr.contains("2 open tasks match"), "{}", out.stderr);
    assert!(out.stderr.contains("oat milk") && out.stderr.contains("stamps"));
    let open = alice.list("status=active").await;
    assert_eq!(open.len(), 3, "rent's next occurrence, milk, stamps");
    // By the end of an id, as list shows it.
    let milk = open
        .iter()
        .find(|task| task["title"].as_str().unwrap().contains("milk"))
        .unwrap();
    let id = milk["id"].as_str().unwrap();
    let end = &id[id.len() - 8..];
    let out = task(&target, &["list"]);
    assert!(
        ok(&out).contains(&format!("{end}  buy oat milk")),
        "{}",
        out.stdout
    );
    ok(&task(&target, &["done", end]));
    let milk = alice.get_task(milk["id"].as_str().unwrap()).await;
    assert_eq!(milk.expect(200)["status"], "completed");
    // Nothing matches: a clear error.
    let out = task(&target, &["done", "groceries"]);
    assert!(!out.status.unwrap().success());
    assert!(
        out.stderr.contains("no open task matches"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_works_through_the_api_with_a_token() {
    let srv = TestServer::start().await;
    let bob = srv.user("bob");
    let target = vec![
        "--url".to_owned(),
        srv.url(""),
        "--token".to_owned(),
        srv.token("bob"),
    ];
    // bob's saved zone is used when no --timezone is given.
    bob.put(
        "/api/settings",
        &serde_json::json!({"time_zone": "America/New_York"}),
    )
    .await
    .expect(200);
    let out = task(&target, &["add", "water the plants tomorrow at 8am #home"]);
    assert!(ok(&out).contains("08:00"), "{}", out.stdout);
    let tasks = bob.list("").await;
    assert_eq!(tasks.len(), 1);
    let due = taskstream_tests::utc(tasks[0]["due_date"].as_str().unwrap());
    let local = due.with_timezone(&chrono_tz::America::New_York);
    assert_eq!(local.format("%H:%M").to_string(), "08:00");
    let out = task(&target, &["list", "today"]);
    assert!(ok(&out).contains("No tasks."), "{}", out.stdout);
    let out = task(&target, &["done", "plants"]);
    assert!(ok(&out).contains("Completed"), "{}", out.stdout);
    assert_eq!(bob.list("status=completed").await.len(), 1);

    // A wrong token is refused with the server's reason.
    let out = task(
        &[
            "--url".to_owned(),
            srv.url(""),
            "--token".to_owned(),
            "nope".to_owned(),
        ],
        &["list"],
    );
    assert!(!out.status.unwrap().success());
    assert!(out.stderr.contains("Invalid token"), "{}", out.stderr);
    // No token at all: said before any request.
    let out = task(&["--url".to_owned(), srv.url("")], &["list"]);
    assert!(!out.status.unwrap().success());
    assert!(out.stderr.contains("--token"), "{}", out.stderr);
    // Text the parser cannot make a task of.
    let out = task(&target, &["add", "   "]);
    assert!(!out.status.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_works_on_a_data_dir_without_a_server_and_the_server_catches_up() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let target = data_dir_target(&data, "carol");
    ok(&task(&target, &["add", "renew passport next friday !high"]));
    let out = task(&target, &["list"]);
    assert!(ok(&out).contains("passport"), "{}", out.stdout);
    // With no account in the directory, the user must be named.
    let no_user = vec!["--data-dir".to_owned(), data.display().to_string()];
    let out = task(&no_user, &["list"]);
    assert!(!out.status.unwrap().success());
    assert!(out.stderr.contains("--user"), "{}", out.stderr);

    // A server started later on this directory relays what the CLI wrote.
    let srv = TestServer::launch(taskstream_tests::Launch {
        data_dir: Some(data.clone()),
        ..taskstream_tests::Launch::default()
    })
    .await;
    let carol = srv.user("carol");
    let tasks = carol.list("").await;
    assert_eq!(tasks.len(), 1);
    let id = tasks[0]["id"].as_str().unwrap().to_owned();
    eventually(
        "the CLI's event relayed at start",
        CONSUMER_WAIT,
        || async {
            let audit = carol
                .get(&format!("/api/audit?task_id={id}"))
                .await
                .expect(200)
                .clone();
            (!audit.as_array().unwrap().is_empty())
                .then_some(())
                .ok_or(format!("{audit}"))
        },
    )
    .await;
}

/// The lines of `task list` output, without the id column (8 characters and two spaces).
fn listed_lines(out: &str) -> Vec<String> {
    out.lines()
        .map(|line| {
            let indent = line.len() - line.trim_start().len();
            let text = line.trim_start();
            let rest = text.get(10..).unwrap_or(text);
            format!("{}{rest}", " ".repeat(indent))
        })
        .collect()
}

/// Projects and subtasks in the CLI, the same through both doors: the API with a token and
/// the data directory directly (here next to the same running server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_puts_tasks_in_projects_and_shows_subtasks_under_their_parent() {
    let srv = TestServer::start().await;
    let api_target = vec![
        "--url".to_owned(),
        srv.url(""),
        "--token".to_owned(),
        srv.token("dana"),
        "--timezone".to_owned(),
        "UTC".to_owned(),
    ];
    let dir_target = data_dir_target(srv.data_dir(), "erin");
    for (who, target) in [("dana", &api_target), ("erin", &dir_target)] {
        let user = srv.user(who);
        // An @project that does not exist: an error naming --project, nothing created.
        let out = task(target, &["add", "buy milk @groceries"]);
        assert!(!out.status.unwrap().success(), "{who}: {}", out.stdout);
        assert!(
            out.stderr.contains("no project named \"groceries\"")
                && out.stderr.contains("--project")
                && out.stderr.contains("task project add groceries"),
            "{who}: {}",
            out.stderr
        );
        assert!(user.list("").await.is_empty(), "{who}");
        let out = task(target, &["add", "--project", "Garden", "dig"]);
        assert!(!out.status.unwrap().success(), "{who}");

        let out = task(target, &["project", "add", "Groceries"]);
        assert!(ok(&out).contains("Created project Groceries"), "{who}");
        let out = task(target, &["project", "add", "groceries"]);
        assert!(!out.status.unwrap().success(), "{who}");
        assert!(
            out.stderr.contains("already exists"),
            "{who}: {}",
            out.stderr
        );

        let added = task(target, &["add", "buy milk @groceries !high"]);
        assert!(ok(&added).contains("buy milk"), "{who}: {}", added.stdout);
        assert!(
            added.stdout.contains("@Groceries"),
            "{who}: {}",
            added.stdout
        );
        ok(&task(target, &["add", "--project", "GROCERIES", "bread"]));
        ok(&task(target, &["add", "eggs to my groceries list"]));
        ok(&task(target, &["add", "talk to bob"]));

        let projects = user.get("/api/projects").await.expect(200).clone();
        let groceries = projects[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(projects[0]["task_count"], 3, "{who}: {projects}");
        let in_project = user.list(&format!("project_id={groceries}")).await;
        let mut titles: Vec<&str> = in_project
            .iter()
            .map(|task| task["title"].as_str().unwrap())
            .collect();
        titles.sort_unstable();
        assert_eq!(titles, ["bread", "buy milk", "eggs"], "{who}");
        assert!(
            user.list("search=talk").await[0]["title"] == "talk to bob",
            "a phrase without such a project stays the title"
        );

        // Subtasks made through the API show indented under their parent.
        let parent = user.create(serde_json::json!({"title": "Fix sink"})).await;
        let parent_id = parent["id"].as_str().unwrap();
        for title in ["call plumber", "buy washers"] {
            user.post(
                &format!("/api/tasks/{parent_id}/subtasks"),
                &serde_json::json!({"title": title}),
            )
            .await
            .expect(201);
        }
        let out = task(target, &["list"]);
        let lines = listed_lines(ok(&out));
        let at = lines
            .iter()
            .position(|line| line.starts_with("Fix sink"))
            .unwrap_or_else(|| panic!("{who}: {}", out.stdout));
        let mut under: Vec<&str> = lines[at + 1..at + 3].iter().map(String::as_str).collect();
        under.sort_unstable();
        assert_eq!(
            under,
            ["    buy washers", "    call plumber"],
            "{who}: {}",
            out.stdout
        );
        assert!(
            lines
                .iter()
                .any(|line| line.starts_with("bread  @Groceries")),
            "{who}: {}",
            out.stdout
        );

        let out = task(target, &["list", "--project", "groceries"]);
        let lines = listed_lines(ok(&out));
        assert_eq!(lines.len(), 3, "{who}: {}", out.stdout);
        assert!(
            !out.stdout.contains("Fix sink") && !out.stdout.contains("@"),
            "{who}"
        );
        let out = task(target, &["list", "--project", "nothing-here"]);
        assert!(!out.status.unwrap().success());
        assert!(out.stderr.contains("no project named"), "{}", out.stderr);

        let out = task(target, &["project", "list"]);
        assert!(
            ok(&out).contains("Groceries  (3 open of 3)"),
            "{who}: {}",
            out.stdout
        );
    }
}

#[test]
fn the_task_help_documents_every_command_and_option() {
    let mut cmd = command();
    cmd.args(["task", "--help"]);
    let out = run(cmd, Duration::from_secs(30));
    let help = ok(&out);
    for needle in [
        "add",
        "list",
        "done",
        "--url",
        "--token",
        "--user",
        "--data-dir",
        "--timezone",
        "TASKSTREAM_TOKEN",
        "Examples:",
        "project",
        "--project",
    ] {
        assert!(help.contains(needle), "{needle} in {help}");
    }
    for sub in ["add", "list", "done", "project"] {
        let mut cmd = command();
        cmd.args(["task", sub, "--help"]);
        let out = run(cmd, Duration::from_secs(30));
        assert!(
            ok(&out).contains("Usage: taskstream task"),
            "{}",
            out.stdout
        );
    }
    let mut cmd = command();
    cmd.arg("--help");
    let out = run(cmd, Duration::from_secs(30));
    assert!(ok(&out).contains("task "), "{}", out.stdout);
}
