//! Export and import through the binary: the lossless JSON export into an empty data directory
//! and for another user, CSV and iCalendar both ways, a Todoist export, re-import, the limits
//! and errors, and the `taskstream export` / `taskstream import` commands on a data directory
//! and through the API.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};
use taskstream_tests::{CONSUMER_WAIT, CliOutput, TestServer, User, command, eventually, run};

taskstream_tests::api_tests!(
    reimport_skips_and_another_user_gets_copies_of_their_own,
    bad_files_are_refused_whole_naming_the_line,
);

/// A varied set of tasks: recurring with reminders and a zone, completed with its next
/// occurrence, in progress, an on-due series counted from completion, plain ones.
async fn varied_tasks(user: &User) {
    let berlin = user
        .req(reqwest::Method::POST, "/api/tasks")
        .header("x-timezone", "Europe/Berlin")
        .json(
            &json!({"title": "Pay rent", "description": "to the landlord, by transfer",
            "due_date": "2030-01-31T08:00:00Z", "is_recurring": true, "recurrence_rule": "MONTHLY",
            "reminder_offset_minutes": 60, "priority": "high", "tags": ["home", "money"],
            "reminders": [{"offset_minutes": 1440}, {"at": "2030-01-30T17:00:00Z"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(berlin.status(), 201);
    let rent: Value = berlin.json().await.unwrap();
    user.complete(rent["id"].as_str().unwrap())
        .await
        .expect(200);
    user.create(
        json!({"title": "Gym", "due_date": "2030-01-07T18:00:00Z", "is_recurring": true,
        "recurrence_rule": "RRULE:FREQ=WEEKLY;BYDAY=MO,WE", "recurrence_trigger": "on_due",
        "recurrence_from": "completion", "tags": ["health"]}),
    )
    .await;
    let report = user
        .create(
            json!({"title": "Write report", "status": "in_progress", "priority": "low",
            "due_date": "2030-03-01T10:00:00Z", "tags": ["work, q1", "x"]}),
        )
        .await;
    let _ = report;
    user.create(json!({"title": "Water the plants", "is_recurring": true,
        "recurrence_rule": "INTERVAL:3", "due_date": "2030-01-02T07:30:00Z"}))
        .await;
    user.create(json!({"title": "Someday: learn the cello; maybe\nwith lessons, \"really\""}))
        .await;
}

/// Every task of the user (TaskResponse), by title, with its reminders.
async fn snapshot(user: &User) -> Vec<(Value, Value)> {
    let mut tasks = user.list_all("").await;
    tasks.sort_by(|a, b| {
        (a["title"].as_str(), a["due_date"].as_str())
            .cmp(&(b["title"].as_str(), b["due_date"].as_str()))
    });
    let mut out = Vec::new();
    for task in tasks {
        let reminders = user
            .get(&format!(
                "/api/tasks/{}/reminders",
                task["id"].as_str().unwrap()
            ))
            .await
            .expect(200)
            .clone();
        out.push((task, reminders));
    }
    out
}

async fn export(user: &User, format: &str) -> (String, String) {
    let response = user
        .req(
            reqwest::Method::GET,
            &format!("/api/export?format={format}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let media = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        response
            .headers()
            .get("content-disposition")
            .is_some_and(|value| value.to_str().unwrap().starts_with("attachment")),
    );
    (media, response.text().await.unwrap())
}

async fn import(user: &User, format: &str, body: &str) -> (u16, Value) {
    let response = user
        .req(
            reqwest::Method::POST,
            &format!("/api/import?format={format}"),
        )
        .header("content-type", "text/plain")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_export_imports_unchanged_into_an_empty_data_dir() {
    let source = TestServer::start().await;
    let alice = source.user("alice");
    varied_tasks(&alice).await;
    let before = snapshot(&alice).await;
    assert_eq!(before.len(), 6, "five tasks and the rent's next occurrence");
    let (media, file) = export(&alice, "json").await;
    assert!(media.starts_with("application/json"));

    let target = TestServer::start().await;
    let alice_there = target.user("alice");
    let (status, report) = import(&alice_there, "json", &file).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], 6);
    assert_eq!(report["skipped"], 0);
    let after = snapshot(&alice_there).await;
    assert_eq!(
        after, before,
        "every field of every task, and every reminder"
    );

    // The imported tasks are live: completing the series makes its next occurrence, and
    // each creation went through the outbox to the audit trail.
    let gym = after
        .iter()
        .find(|(task, _)| task["title"] == "Gym")
        .unwrap()
        .0
        .clone();
    let done = alice_there.complete(gym["id"].as_str().unwrap()).await;
    assert!(done.expect(200)["next_task"].is_object());
    let id = gym["id"].as_str().unwrap().to_owned();
    eventually(
        "the imported task's task.created audited",
        CONSUMER_WAIT,
        || async {
            let audit = alice_there.audit(&format!("task_id={id}")).await;
            audit
                .iter()
                .any(|row| row["event_type"] == "task.created")
                .then_some(())
                .ok_or(format!("{audit:?}"))
        },
    )
    .await;

    // The CSV export is as complete: into yet another data directory.
    let (media, csv) = export(&alice, "csv").await;
    assert!(media.starts_with("text/csv"));
    let third = TestServer::start().await;
    let alice_csv = third.user("alice");
    let (status, report) = import(&alice_csv, "csv", &csv).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        snapshot(&alice_csv).await,
        before,
        "CSV keeps every field too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icalendar_goes_both_ways() {
    let source = TestServer::start().await;
    let alice = source.user("alice");
    varied_tasks(&alice).await;
    let (media, ics) = export(&alice, "ics").await;
    assert!(media.starts_with("text/calendar"), "{media}");
    for needle in [
        "BEGIN:VCALENDAR\r\n",
        "BEGIN:VTODO\r\n",
        "SUMMARY:Pay rent\r\n",
        "DUE:20300131T080000Z\r\n",
        "RRULE:FREQ=MONTHLY\r\n",
        "RRULE:FREQ=WEEKLY;BYDAY=MO,WE\r\n",
        "RRULE:FREQ=DAILY;INTERVAL=3\r\n",
        "PRIORITY:1\r\n",
        "STATUS:COMPLETED\r\n",
        "STATUS:IN-PROCESS\r\n",
        "CATEGORIES:home,money\r\n",
        "CATEGORIES:work\\, q1,x\r\n",
        "BEGIN:VALARM\r\n",
        "TRIGGER:-PT60M\r\n",
        "TRIGGER;VALUE=DATE-TIME:20300130T170000Z\r\n",
    ] {
        assert!(ics.contains(needle), "{needle:?} in\n{ics}");
    }
    assert!(
        ics.lines().all(|line| line.len() <= 76),
        "lines are folded at 75 octets"
    );
    let target = TestServer::start().await;
    let there = target.user("alice");
    let (status, report) = import(&there, "ics", &ics).await;
    assert_eq!(status, 200, "{report}");
    // iCalendar times are whole seconds: created_at and updated_at lose their fraction.
    let whole_seconds = |tasks: Vec<(Value, Value)>| -> Vec<(Value, Value)> {
        tasks
            .into_iter()
            .map(|(mut task, reminders)| {
                for key in ["created_at", "updated_at"] {
                    let text = task[key].as_str().unwrap().to_owned();
                    let trimmed = match text.split_once('.') {
                        Some((seconds, _)) => format!("{seconds}Z"),
                        None => text,
                    };
                    task[key] = json!(trimmed);
                }
                (task, reminders)
            })
            .collect()
    };
    assert_eq!(
        whole_seconds(snapshot(&there).await),
        whole_seconds(snapshot(&alice).await)
    );

    // A calendar written by another program: zones, an all-day date, RFC priorities.
    let foreign = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other//EN\r\n\
        BEGIN:VTODO\r\nUID:not-a-uuid@example.com\r\nSUMMARY:Dentist\\, with Sam\r\n\
        DUE;TZID=America/New_York:20300115T143000\r\nPRIORITY:2\r\nCATEGORIES:health,family\r\n\
        RRULE:FREQ=WEEKLY;BYDAY=MO\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n\
        END:VTODO\r\nBEGIN:VTODO\r\nSUMMARY:Tax return\r\nDUE;VALUE=DATE:20300430\r\nPRIORITY:9\r\n\
        STATUS:COMPLETED\r\nEND:VTODO\r\nBEGIN:VEVENT\r\nSUMMARY:A meeting\r\nEND:VEVENT\r\n\
        END:VCALENDAR\r\n";
    let bob = target.user("bob");
    bob.put("/api/settings", &json!({"time_zone": "Europe/Paris"}))
        .await
        .expect(200);
    let (status, report) = import(&bob, "ics", foreign).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], 2);
    assert!(
        report["warnings"][0]
            .as_str()
            .unwrap()
            .contains("not to-dos"),
        "{report}"
    );
    let tasks = bob.list("sort=title&order=asc").await;
    assert_eq!(tasks[0]["title"], "Dentist, with Sam");
    assert_eq!(tasks[0]["due_date"], "2030-01-15T19:30:00Z");
    assert_eq!(tasks[0]["priority"], "high");
    assert_eq!(tasks[0]["tags"], json!(["health", "family"]));
    assert_eq!(tasks[0]["recurrence_rule"], "RRULE:FREQ=WEEKLY;BYDAY=MO");
    assert_eq!(tasks[0]["reminder_offset_minutes"], 15);
    assert_eq!(tasks[1]["title"], "Tax return");
    assert_eq!(
        tasks[1]["due_date"], "2030-04-30T07:00:00Z",
        "09:00 in Paris"
    );
    assert_eq!(tasks[1]["status"], "completed");
    assert_eq!(tasks[1]["priority"], "low");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_todoist_export_imports_with_labels_priorities_dates_and_comments() {
    let srv = TestServer::start().await;
    let ann = srv.user("ann");
    ann.put("/api/settings", &json!({"time_zone": "Europe/Berlin"}))
        .await
        .expect(200);
    let csv = "TYPE,CONTENT,DESCRIPTION,PRIORITY,INDENT,AUTHOR,RESPONSIBLE,DATE,DATE_LANG,TIMEZONE,DURATION,DURATION_UNIT,DEADLINE,DEADLINE_LANG\n\
        task,Pay rent @home @money,,1,1,Ann (123),,every month on the 1st at 9,en,Europe/Berlin,,,,\n\
        note,Use the joint account,,,,Ann (123),,,,,,,,\n\
        ,,,,,,,,,,,,,\n\
        section,Errands,,,,,,,,,,,,\n\
        task,Buy stamps,for the cards,2,1,Ann (123),,2030-01-10,en,Europe/Berlin,,,,\n\
        task,Buy envelopes,,4,2,Ann (123),,,en,Europe/Berlin,,,,\n";
    let (status, report) = import(&ann, "todoist", csv).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], 3);
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("Errands"), "{warnings}");
    let tasks = ann.list("sort=title&order=asc").await;
    let titles: Vec<&str> = tasks
        .iter()
        .map(|task| task["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Buy envelopes", "Buy stamps", "Pay rent"]);
    let rent = &tasks[2];
    assert_eq!(rent["priority"], "high", "Todoist's p1");
    assert_eq!(rent["tags"], json!(["home", "money"]));
    assert_eq!(rent["description"], "Use the joint account");
    assert_eq!(rent["is_recurring"], true);
    let due = taskstream_tests::utc(rent["due_date"].as_str().unwrap());
    let local = due.with_timezone(&chrono_tz::Europe::Berlin);
    assert_eq!(local.format("%d %H:%M").to_string(), "01 09:00");
    assert_eq!(tasks[1]["priority"], "medium", "p2");
    assert_eq!(tasks[1]["tags"], json!(["errands"]));
    assert_eq!(tasks[1]["due_date"], "2030-01-10T08:00:00Z");
    assert_eq!(tasks[0]["priority"], "medium", "p4: no priority");
    let envelopes = ann
        .get(&format!(
            "/api/tasks/{}/links",
            tasks[0]["id"].as_str().unwrap()
        ))
        .await
        .expect(200)
        .clone();
    assert_eq!(
        envelopes["subtask_of"], tasks[1]["id"],
        "INDENT 2: a subtask of the task above"
    );
    // Again: the same file finds its tasks.
    let (status, report) = import(&ann, "todoist", csv).await;
    assert_eq!(status, 200);
    assert_eq!(
        (report["created"].as_u64(), report["skipped"].as_u64()),
        (Some(0), Some(3))
    );
}

/// Each task of the user as (title, its project's name, its parent's title), sorted.
async fn structure(user: &User) -> Vec<(String, Option<String>, Option<String>)> {
    let projects = user.get("/api/projects").await.expect(200).clone();
    let name_of = |id: &Value| {
        projects
            .as_array()
            .unwrap()
            .iter()
            .find(|project| project["id"] == *id)
            .map(|project| project["name"].as_str().unwrap().to_owned())
    };
    let tasks = user.list_all("").await;
    let title_of = |id: &Value| {
        tasks
            .iter()
            .find(|task| task["id"] == *id)
            .map(|task| task["title"].as_str().unwrap().to_owned())
    };
    let mut out = Vec::new();
    for task in &tasks {
        let links = user
            .get(&format!(
                "/api/tasks/{}/links",
                task["id"].as_str().unwrap()
            ))
            .await
            .expect(200)
            .clone();
        out.push((
            task["title"].as_str().unwrap().to_owned(),
            name_of(&links["project_id"]),
            title_of(&links["subtask_of"]),
        ));
    }
    out.sort();
    out
}

fn owned(
    rows: &[(&str, Option<&str>, Option<&str>)],
) -> Vec<(String, Option<String>, Option<String>)> {
    rows.iter()
        .map(|(title, project, parent)| {
            (
                (*title).to_owned(),
                project.map(str::to_owned),
                parent.map(str::to_owned),
            )
        })
        .collect()
}

/// Projects and subtask links survive every format: JSON exactly (ids and project times
/// too, into an empty data directory), CSV (`project`, `subtask_of` columns), iCalendar
/// (`X-TASKSTREAM-PROJECT`, `RELATED-TO;RELTYPE=PARENT`); a version 1 file still reads; a
/// Todoist file goes into the project it is given, or (the CLI) the one named like the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_and_subtasks_survive_export_and_import() {
    let source = TestServer::start().await;
    let alice = source.user("alice");
    let garden = alice
        .post("/api/projects", &json!({"name": "Garden"}))
        .await
        .expect(201)
        .clone();
    alice
        .post("/api/projects", &json!({"name": "Empty one"}))
        .await
        .expect(201);
    let garden_id = garden["id"].as_str().unwrap();
    let tulips = alice
        .create(json!({"title": "Plant tulips", "project_id": garden_id, "tags": ["spring"]}))
        .await;
    let tulips_id = tulips["id"].as_str().unwrap();
    for title in ["Buy bulbs", "Dig beds"] {
        alice
            .post(
                &format!("/api/tasks/{tulips_id}/subtasks"),
                &json!({"title": title}),
            )
            .await
            .expect(201);
    }
    let sink = alice.create(json!({"title": "Fix sink"})).await;
    alice
        .post(
            &format!("/api/tasks/{}/subtasks", sink["id"].as_str().unwrap()),
            &json!({"title": "Call plumber"}),
        )
        .await
        .expect(201);
    alice.create(json!({"title": "Loose end"})).await;
    let expected = owned(&[
        ("Buy bulbs", Some("Garden"), Some("Plant tulips")),
        ("Call plumber", None, Some("Fix sink")),
        ("Dig beds", Some("Garden"), Some("Plant tulips")),
        ("Fix sink", None, None),
        ("Loose end", None, None),
        ("Plant tulips", Some("Garden"), None),
    ]);
    assert_eq!(structure(&alice).await, expected);
    let before = snapshot(&alice).await;

    let (_, json_file) = export(&alice, "json").await;
    let document: Value = serde_json::from_str(&json_file).unwrap();
    assert_eq!(document["version"], 2);
    assert_eq!(document["projects"].as_array().unwrap().len(), 2);
    let (_, csv_file) = export(&alice, "csv").await;
    assert!(
        csv_file
            .lines()
            .next()
            .unwrap()
            .ends_with(",project,subtask_of"),
        "{csv_file}"
    );
    assert!(csv_file.contains(",Garden,"), "{csv_file}");
    let (_, ics_file) = export(&alice, "ics").await;
    assert!(
        ics_file.contains("X-TASKSTREAM-PROJECT:Garden"),
        "{ics_file}"
    );
    assert!(
        ics_file.contains(&format!("RELATED-TO;RELTYPE=PARENT:{tulips_id}")),
        "{ics_file}"
    );

    let target = TestServer::start().await;
    // JSON into an empty data directory: the same tasks, ids, projects and links.
    let there = target.user("alice");
    let (status, report) = import(&there, "json", &json_file).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], 6);
    assert_eq!(snapshot(&there).await, before);
    assert_eq!(structure(&there).await, expected);
    let projects_there = there.get("/api/projects").await.expect(200).clone();
    let originals = alice.get("/api/projects").await.expect(200).clone();
    assert_eq!(projects_there, originals, "ids, names, times and counts");
    let tulips_links = there
        .get(&format!("/api/tasks/{tulips_id}/links"))
        .await
        .expect(200)
        .clone();
    assert_eq!(tulips_links["project_id"], garden["id"]);
    assert_eq!(tulips_links["subtask_count"], 2);
    // Again: nothing new, no second Garden.
    let (status, report) = import(&there, "json", &json_file).await;
    assert_eq!((status, report["created"].as_u64()), (200, Some(0)));
    assert_eq!(
        there
            .get("/api/projects")
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // CSV and iCalendar, for users who have none of it: the same shape.
    for (sub, format, file) in [("bob", "csv", &csv_file), ("carol", "ics", &ics_file)] {
        let user = target.user(sub);
        let (status, report) = import(&user, format, file).await;
        assert_eq!(status, 200, "{format}: {report}");
        assert_eq!(structure(&user).await, expected, "{format}");
    }
    // A user who has a "garden" project already gets the tasks in it, not a second one.
    let dave = target.user("dave");
    dave.post("/api/projects", &json!({"name": "garden"}))
        .await
        .expect(201);
    let (status, _) = import(&dave, "csv", &csv_file).await;
    assert_eq!(status, 200);
    let daves = dave.get("/api/projects").await.expect(200).clone();
    assert_eq!(daves.as_array().unwrap().len(), 1, "{daves}");
    assert_eq!(daves[0]["task_count"], 3);

    // A version 1 export (before projects) still imports.
    let mut old = document.clone();
    old["version"] = json!(1);
    old.as_object_mut().unwrap().remove("projects");
    for task in old["tasks"].as_array_mut().unwrap() {
        let task = task.as_object_mut().unwrap();
        task.remove("project_id");
        task.remove("subtask_of");
    }
    let erin = target.user("erin");
    let (status, report) = import(&erin, "json", &old.to_string()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], 6);
    assert!(
        structure(&erin)
            .await
            .iter()
            .all(|(_, project, parent)| project.is_none() && parent.is_none())
    );

    // Todoist: the file's tasks into the project it is given; INDENT 3 goes one level up.
    let todoist =
        "TYPE,CONTENT,DESCRIPTION,PRIORITY,INDENT,AUTHOR,RESPONSIBLE,DATE,DATE_LANG,TIMEZONE
        task,Plan the party,,1,1,,,,en,
        task,Send invitations,,4,2,,,,en,
        task,Buy stamps,,4,3,,,,en,
        task,Clean up,,4,1,,,,en,
";
    let fay = target.user("fay");
    let response = fay
        .req(
            reqwest::Method::POST,
            "/api/import?format=todoist&project=Party",
        )
        .body(todoist)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert!(
        report["warnings"].to_string().contains("one level"),
        "{report}"
    );
    assert_eq!(
        structure(&fay).await,
        owned(&[
            ("Buy stamps", Some("Party"), Some("Plan the party")),
            ("Clean up", Some("Party"), None),
            ("Plan the party", Some("Party"), None),
            ("Send invitations", Some("Party"), Some("Plan the party")),
        ])
    );
    // The CLI names the project after the file, as Todoist names its export.
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("Weekend chores.csv");
    std::fs::write(&path, todoist).unwrap();
    let out = cli(&[
        "import",
        "--format",
        "todoist",
        path.to_str().unwrap(),
        "--url",
        &target.url(""),
        "--token",
        &target.token("gus"),
    ]);
    ok(&out);
    let gus = target.user("gus");
    let projects = gus.get("/api/projects").await.expect(200).clone();
    assert_eq!(projects[0]["name"], "Weekend chores", "{projects}");
    assert_eq!(projects[0]["task_count"], 4);
}

async fn reimport_skips_and_another_user_gets_copies_of_their_own(srv: TestServer) {
    let alice = srv.user("alice");
    varied_tasks(&alice).await;
    let before = snapshot(&alice).await;
    let (_, file) = export(&alice, "json").await;
    let (status, report) = import(&alice, "json", &file).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["created"].as_u64(), report["skipped"].as_u64()),
        (Some(0), Some(6))
    );
    assert_eq!(snapshot(&alice).await, before, "nothing changed");

    // bob imports alice's file: his own copies, new ids, the series link kept among them.
    let bob = srv.user("bob");
    let (status, report) = import(&bob, "json", &file).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], 6);
    let copies = snapshot(&bob).await;
    let alice_ids: Vec<&Value> = before.iter().map(|(task, _)| &task["id"]).collect();
    for ((copy, copy_reminders), (original, reminders)) in copies.iter().zip(&before) {
        assert!(!alice_ids.contains(&&copy["id"]), "a new id");
        assert_eq!(copy["user_id"], "bob");
        for key in [
            "title",
            "description",
            "status",
            "priority",
            "due_date",
            "tags",
            "reminder_offset_minutes",
            "remind_at",
            "is_recurring",
            "recurrence_rule",
            "created_at",
        ] {
            assert_eq!(copy[key], original[key], "{key}");
        }
        assert_eq!(
            copy["parent_task_id"].is_null(),
            original["parent_task_id"].is_null()
        );
        assert_eq!(
            copy_reminders.as_array().map(Vec::len),
            reminders.as_array().map(Vec::len)
        );
    }
    let next = copies
        .iter()
        .find(|(task, _)| task["title"] == "Pay rent" && !task["parent_task_id"].is_null())
        .unwrap();
    let parent = bob
        .get_task(next.0["parent_task_id"].as_str().unwrap())
        .await;
    assert_eq!(
        parent.expect(200)["user_id"],
        "bob",
        "the link points at bob's copy"
    );
    // alice still sees only her own.
    assert_eq!(alice.list_all("").await.len(), 6);
    // And bob's second import of the same file creates nothing.
    let (_, report) = import(&bob, "json", &file).await;
    assert_eq!(
        (report["created"].as_u64(), report["skipped"].as_u64()),
        (Some(0), Some(6))
    );
}

async fn bad_files_are_refused_whole_naming_the_line(srv: TestServer) {
    let carol = srv.user("carol");
    let csv = "title,due_date,priority\nFine,2030-01-01T09:00:00Z,high\n,2030-01-01T09:00:00Z,low\nAlso fine,not a date,low\nThird,,urgent\n";
    let (status, body) = import(&carol, "csv", csv).await;
    assert_eq!(status, 422, "{body}");
    let text = body.to_string();
    assert!(text.contains("line 3") && text.contains("title"), "{text}");
    assert!(
        text.contains("line 4") && text.contains("due_date"),
        "{text}"
    );
    assert!(
        text.contains("line 5") && text.contains("priority"),
        "{text}"
    );
    assert!(carol.list("").await.is_empty(), "nothing was imported");

    let (status, body) = import(&carol, "json", "{\"tasks\": [").await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = import(&carol, "json", "{\"format\": \"other\", \"tasks\": []}").await;
    assert_eq!(status, 422);
    assert!(body.to_string().contains("not a taskstream export"));
    let (status, _) = import(
        &carol,
        "ics",
        "BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nSUMMARY:x\r\nEND:VCALENDAR\r\n",
    )
    .await;
    assert_eq!(status, 422);
    let (status, body) = import(&carol, "xml", "<tasks/>").await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["query", "format"]));
    let (status, _) = import(&carol, "todoist", "TYPE,CONTENT,PRIORITY\ntask,x,9\n").await;
    assert_eq!(status, 422);
    let response = carol
        .req(reqwest::Method::GET, "/api/export?format=todoist")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422, "Todoist's format is read only");
    // Not UTF-8, too large: refused before reading.
    let response = carol
        .req(reqwest::Method::POST, "/api/import?format=csv")
        .body(vec![0xff, 0xfe, b'a'])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    // A file over 4 MiB, sent as a person would (curl): 413, naming the limit.
    let big = srv.scratch().join("big.csv");
    std::fs::write(&big, "x".repeat(4 * 1024 * 1024 + 1)).unwrap();
    let out = std::process::Command::new("curl")
        .args(["-s", "-X", "POST", "-H"])
        .arg(format!("Authorization: Bearer {}", srv.token("carol")))
        .args(["-w", "\n%{http_code}", "--data-binary"])
        .arg(format!("@{}", big.display()))
        .arg(srv.url("/api/import?format=csv"))
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.ends_with("\n413"), "{answer}");
    assert!(answer.contains("at most 4194304 bytes"), "{answer}");
    let too_many = format!("title\n{}", "x\n".repeat(10_001));
    let (status, body) = import(&carol, "csv", &too_many).await;
    assert_eq!(status, 422);
    assert!(body.to_string().contains("10000"), "{body}");
    // No token: 401.
    let response = srv
        .client()
        .get(srv.url("/api/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

fn cli(args: &[&str]) -> CliOutput {
    let mut cmd = command();
    cmd.args(args);
    run(cmd, Duration::from_secs(60))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_and_import_commands_move_a_data_dir_between_machines() {
    let mut source = TestServer::start().await;
    let alice = source.user("alice");
    varied_tasks(&alice).await;
    let before = snapshot(&alice).await;
    // Through the running server's API...
    let url = source.url("");
    let token = source.token("alice");
    let out = cli(&[
        "export", "--url", &url, "--token", &token, "--format", "csv",
    ]);
    assert!(
        ok(&out).starts_with("id,title,description,status"),
        "{}",
        out.stdout
    );
    // ...and on the data directory of the stopped server.
    source.sigterm();
    source.wait_exit(Duration::from_secs(30)).await.unwrap();
    let file = source.scratch().join("alice.json");
    let data = source.data_dir().display().to_string();
    let file_arg = file.display().to_string();
    ok(&cli(&[
        "export",
        "--data-dir",
        &data,
        "--user",
        "alice",
        "--output",
        &file_arg,
    ]));
    let exported: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(exported["format"], "taskstream");
    assert_eq!(exported["tasks"].as_array().unwrap().len(), 6);

    // Into a new, empty data directory with no server; then a server starts on it.
    let fresh = tempfile::TempDir::new().unwrap();
    let fresh_data = fresh.path().join("data");
    let fresh_arg = fresh_data.display().to_string();
    let out = cli(&[
        "import",
        &file_arg,
        "--data-dir",
        &fresh_arg,
        "--user",
        "alice",
    ]);
    assert!(
        ok(&out).contains("imported 6 tasks, skipped 0"),
        "{}",
        out.stdout
    );
    let out = cli(&[
        "import",
        &file_arg,
        "--data-dir",
        &fresh_arg,
        "--user",
        "alice",
    ]);
    assert!(
        ok(&out).contains("imported 0 tasks, skipped 6"),
        "{}",
        out.stdout
    );
    let target = TestServer::launch(taskstream_tests::Launch {
        data_dir: Some(fresh_data.clone()),
        ..taskstream_tests::Launch::default()
    })
    .await;
    assert_eq!(snapshot(&target.user("alice")).await, before);

    // A refused file says where, and the command fails.
    let bad = fresh.path().join("bad.csv");
    std::fs::write(&bad, "title,priority\nok,high\nnot ok,urgent\n").unwrap();
    let bad_arg = bad.display().to_string();
    let out = cli(&[
        "import",
        &bad_arg,
        "--url",
        &target.url(""),
        "--token",
        &target.token("alice"),
    ]);
    assert!(!out.status.unwrap().success());
    assert!(out.stderr.contains("line 3"), "{}", out.stderr);
    let out = cli(&["import", "tasks.xml", "--data-dir", &fresh_arg]);
    assert!(!out.status.unwrap().success());
    assert!(out.stderr.contains("--format"), "{}", out.stderr);
    let out = cli(&["export", "--help"]);
    assert!(ok(&out).contains("--format") && out.stdout.contains("lossless"));
    let out = cli(&["import", "--help"]);
    assert!(ok(&out).contains("todoist") && out.stdout.contains("PRIORITY 1"));
}
