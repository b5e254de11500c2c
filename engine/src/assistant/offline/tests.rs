//! The answers' wording, a whole conversation against the real SQLite store, and the latency
//! measurement (`cargo test -p taskstream-engine --release -- --ignored offline_latency
//! --nocapture`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use chrono_tz::Tz;
use serde_json::{Value, json};

use super::corpus::{CASES, run};
use super::dates::When;
use super::fixture::{at, context, fixture_last_list, fixture_tasks, id};
use super::intent::{AddTask, Change, Intent, ListRequest, TaskRef};
use super::reply::repeat_words;
use super::{OfflineAssistant, describe};
use crate::assistant::tools::task_summary;
use crate::assistant::{Assistant, ChatMessage, Reply, Role, ToolInvocation, Tools, Turn};
use crate::embedded::SqliteTaskStore;
use crate::service::TaskService;
use crate::task::{Priority, TaskStatus};

fn berlin() -> Tz {
    "Europe/Berlin".parse().expect("zone")
}

fn done(name: &str, result: Value) -> ToolInvocation {
    ToolInvocation {
        tool_name: name.to_owned(),
        success: true,
        result: Some(result),
        error: None,
    }
}

fn add_intent() -> Intent {
    Intent::Add(AddTask::default())
}

#[test]
fn added_tasks_spell_out_the_weekday_in_the_users_zone() {
    let tasks = fixture_tasks();
    let rent = json!({
        "title": "Pay rent", "priority": "medium", "tags": [],
        "due_date": "2026-12-01T08:00:00Z", "recurrence_rule": "MONTHLY",
        "reminder_offset_minutes": null, "remind_at": null,
    });
    let in_berlin = context(berlin(), &tasks, &[], &[]);
    assert_eq!(
        describe(&add_intent(), &[done("add_task", rent.clone())], &in_berlin),
        "Added 'Pay rent', due Tuesday 1 December at 09:00, repeats monthly."
    );
    let in_utc = context(Tz::UTC, &tasks, &[], &[]);
    assert_eq!(
        describe(&add_intent(), &[done("add_task", rent)], &in_utc),
        "Added 'Pay rent', due Tuesday 1 December at 08:00, repeats monthly."
    );
    // 23:30 UTC on Saturday is already Sunday in Berlin; another year is named.
    let late = json!({
        "title": "buy milk", "priority": "high", "tags": ["shopping"],
        "due_date": "2026-11-28T23:30:00Z", "reminder_offset_minutes": 30,
        "remind_at": "2026-11-28T23:00:00Z",
    });
    assert_eq!(
        describe(&add_intent(), &[done("add_task", late)], &in_berlin),
        "Added 'buy milk', due Sunday 29 November at 00:30, high priority, tagged #shopping, reminder 30 minutes before (at 00:00)."
    );
    let next_year = json!({
        "title": "renew domain", "priority": "medium", "tags": [],
        "due_date": "2027-01-05T08:00:00Z", "recurrence_rule": "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
    });
    assert_eq!(
        describe(&add_intent(), &[done("add_task", next_year)], &in_berlin),
        "Added 'renew domain', due Tuesday 5 January 2027 at 09:00, repeats every weekday."
    );
    // "remind me to stretch": no date, so no reminder, and the answer says so.
    let undated = Intent::Add(AddTask {
        reminder_needs_date: true,
        ..AddTask::default()
    });
    let text = describe(
        &undated,
        &[done(
            "add_task",
            json!({"title": "stretch", "priority": "medium", "tags": []}),
        )],
        &in_berlin,
    );
    assert!(
        text.starts_with("Added 'stretch'. It has no date, so I couldn't set a reminder"),
        "{text}"
    );
}

#[test]
fn recurrence_reads_as_words() {
    let cases = [
        ("DAILY", "daily"),
        ("WEEKLY", "weekly"),
        ("MONTHLY", "monthly"),
        ("YEARLY", "yearly"),
        ("INTERVAL:3", "every 3 days"),
        ("RRULE:FREQ=WEEKLY;INTERVAL=2", "every 2 weeks"),
        ("RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "every weekday"),
        ("RRULE:FREQ=WEEKLY;BYDAY=SA,SU", "every weekend"),
        ("RRULE:FREQ=WEEKLY;BYDAY=MO", "every Monday"),
        (
            "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR",
            "every Monday, Wednesday and Friday",
        ),
        (
            "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=FR",
            "every 2 weeks on Friday",
        ),
        ("RRULE:FREQ=MONTHLY;INTERVAL=3", "every 3 months"),
        ("RRULE:FREQ=MONTHLY;BYMONTHDAY=-1", "on a custom schedule"),
    ];
    for (rule, words) in cases {
        assert_eq!(repeat_words(rule), words, "{rule}");
    }
}

#[test]
fn lists_are_numbered_with_status_priority_and_due_date() {
    let tasks = fixture_tasks();
    let ctx = context(berlin(), &tasks, &[], &[]);
    let summaries: Vec<Value> = [1u128, 4, 6]
        .iter()
        .map(|n| task_summary(tasks.iter().find(|t| t.id == id(*n)).expect("task")))
        .collect();
    let request = ListRequest {
        window: Some("this week".to_owned()),
        due_after: Some(at("2026-11-26T23:00:00Z")),
        sort: Some("due_date"),
        ..ListRequest::default()
    };
    let text = describe(
        &Intent::List(request.clone()),
        &[done("list_tasks", Value::Array(summaries))],
        &ctx,
    );
    assert_eq!(
        text,
        "Your tasks due this week (3 tasks):\n\
         1. Buy milk — to do, medium priority, due Saturday 28 November at 17:00\n\
         2. Pay rent — to do, medium priority, due Tuesday 1 December at 09:00, repeats monthly\n\
         3. Book dentist appointment — in progress, medium priority, due Thursday 3 December at 15:00\n\
         Say e.g. 'complete 1' or 'move 2 to friday'."
    );
    let empty = describe(
        &Intent::List(request),
        &[done("list_tasks", json!([]))],
        &ctx,
    );
    assert_eq!(empty, "You have no tasks due this week.");
    let nothing_at_all = describe(
        &Intent::List(ListRequest::default()),
        &[done("list_tasks", json!([]))],
        &ctx,
    );
    assert!(
        nothing_at_all.starts_with("You have no tasks yet."),
        "{nothing_at_all}"
    );
    let ignored = ListRequest {
        overdue: true,
        ignored: vec!["blah".to_owned()],
        ..ListRequest::default()
    };
    assert_eq!(
        describe(
            &Intent::List(ignored),
            &[done("list_tasks", json!([]))],
            &ctx
        ),
        "You have no overdue tasks. (I didn't understand \"blah\", so I left it out.)"
    );
}

#[test]
fn changes_are_confirmed_from_what_the_tools_returned() {
    let tasks = fixture_tasks();
    let ctx = context(berlin(), &tasks, &[], &[]);
    let summary = |n: u128| task_summary(tasks.iter().find(|t| t.id == id(n)).expect("task"));
    let target = TaskRef::Position(1);

    let mut completed = summary(16);
    completed["next_task"] = summary(4);
    assert_eq!(
        describe(
            &Intent::Complete(target.clone()),
            &[done("complete_task", completed)],
            &ctx
        ),
        "Marked 'Pay rent' as done. The next one is due Tuesday 1 December at 09:00."
    );
    let deleted = json!({"deleted_id": id(1), "deleted_title": "Buy milk", "message": "", "task": summary(1)});
    assert_eq!(
        describe(
            &Intent::Delete(target.clone()),
            &[done("delete_task", deleted)],
            &ctx
        ),
        "Deleted 'Buy milk'. Say 'undo' to bring it back."
    );
    let mut renamed = summary(1);
    renamed["title"] = "buy oat milk".into();
    renamed["previous"] = json!({"title": "Buy milk"});
    assert_eq!(
        describe(
            &Intent::Update(target.clone(), Change::Title("buy oat milk".to_owned())),
            &[done("update_task", renamed)],
            &ctx
        ),
        "Renamed 'Buy milk' to 'buy oat milk'."
    );
    let moved = summary(3);
    assert_eq!(
        describe(
            &Intent::Update(target.clone(), Change::Due(When::default())),
            &[done("update_task", moved)],
            &ctx
        ),
        "Moved 'Write the quarterly report' to Tuesday 1 December at 10:00."
    );
    assert_eq!(
        describe(
            &Intent::Update(target.clone(), Change::Priority(Priority::High)),
            &[done("update_task", summary(10))],
            &ctx
        ),
        "'Fix the server' is now high priority."
    );
    assert_eq!(
        describe(
            &Intent::Update(target.clone(), Change::Status(TaskStatus::InProgress)),
            &[done("update_task", summary(6))],
            &ctx
        ),
        "Started 'Book dentist appointment' — it's in progress now."
    );
    let mut reopened = summary(7);
    reopened["status"] = "pending".into();
    reopened["previous"] = json!({"status": "completed"});
    let removed = json!({"deleted_id": id(4), "deleted_title": "Pay rent", "message": "", "task": summary(4)});
    assert_eq!(
        describe(
            &Intent::Undo,
            &[done("delete_task", removed), done("update_task", reopened)],
            &ctx
        ),
        "Undone: removed 'Pay rent' and reopened 'Renew passport'."
    );
}

#[test]
fn failures_are_explained_without_technical_detail() {
    let tasks = fixture_tasks();
    let ctx = context(berlin(), &tasks, &[], &[]);
    let failed = |error: &str| ToolInvocation {
        tool_name: "complete_task".to_owned(),
        success: false,
        result: None,
        error: Some(error.to_owned()),
    };
    let missing = format!("Task not found: {}", id(3));
    let text = describe(
        &Intent::Complete(TaskRef::Position(2)),
        &[failed(&missing)],
        &ctx,
    );
    assert_eq!(
        text,
        "Sorry, I couldn't complete that task. I couldn't find that task any more — it may have been deleted. Say 'list' to see your tasks."
    );
    assert!(!text.contains(&id(3).to_string()));
    let text = describe(
        &add_intent(),
        &[failed("Title must be 255 characters or less")],
        &ctx,
    );
    assert_eq!(
        text,
        "Sorry, I couldn't add that task: that title is too long (255 characters at most)."
    );
    let text = describe(&add_intent(), &[failed("database is locked")], &ctx);
    assert_eq!(
        text,
        "Sorry, I couldn't add that task: something went wrong on my side. Please try again in a moment."
    );
}

/// A chat as the web layer would run it: history grows with each turn.
struct Chat {
    assistant: OfflineAssistant,
    history: Vec<ChatMessage>,
    zone: Tz,
}

impl Chat {
    async fn say(&mut self, message: &str) -> Reply {
        let turn = Turn {
            user_id: "alice",
            zone: self.zone,
            now: crate::time::now(),
            message,
            history: &self.history,
        };
        let reply = self.assistant.respond(turn).await;
        let message = |role, content: &str, tool_calls| ChatMessage {
            id: crate::time::new_id(),
            role,
            content: content.to_owned(),
            tool_calls,
            created_at: Utc::now(),
        };
        self.history
            .push(message(Role::User, turn.message, Vec::new()));
        self.history.push(message(
            Role::Assistant,
            &reply.message,
            reply.tools_invoked.clone(),
        ));
        reply
    }
}

async fn open_chat() -> (tempfile::TempDir, Chat, TaskService) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteTaskStore::open(&dir.path().join("t.db")).expect("open"));
    let service = TaskService::new(store);
    let chat = Chat {
        assistant: OfflineAssistant::new(Tools::new(service.clone())),
        history: Vec::new(),
        zone: berlin(),
    };
    (dir, chat, service)
}

async fn titles_and_statuses(service: &TaskService) -> Vec<(String, TaskStatus)> {
    let mut tasks: Vec<(String, TaskStatus)> = service
        .list("alice", &crate::task::TaskQuery::default())
        .await
        .expect("list")
        .into_iter()
        .map(|task| (task.title, task.status))
        .collect();
    tasks.sort_by(|a, b| a.0.cmp(&b.0));
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_against_the_sqlite_store() {
    let (_dir, mut chat, service) = open_chat().await;

    let reply = chat.say("add buy milk tomorrow at 5pm #shopping").await;
    assert!(
        reply.message.starts_with("Added 'buy milk', due "),
        "{}",
        reply.message
    );
    assert!(
        reply.message.contains(" at 17:00, tagged #shopping."),
        "{}",
        reply.message
    );
    assert!(reply.tools_invoked.iter().all(|call| call.success));
    let reply = chat.say("add call mom next friday !high").await;
    assert!(reply.message.contains("high priority"), "{}", reply.message);

    // Newest first: 1 is "call mom", 2 is "buy milk".
    let reply = chat.say("list").await;
    assert!(
        reply.message.starts_with("Your tasks (2 tasks):"),
        "{}",
        reply.message
    );
    let lines: Vec<&str> = reply.message.lines().collect();
    assert!(
        lines[1].starts_with("1. call mom — to do, high priority, due "),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("2. buy milk — to do, medium priority, due "),
        "{}",
        lines[2]
    );

    let reply = chat.say("complete 2").await;
    assert_eq!(reply.message, "Marked 'buy milk' as done.");
    assert_eq!(
        titles_and_statuses(&service).await,
        [
            ("buy milk".to_owned(), TaskStatus::Completed),
            ("call mom".to_owned(), TaskStatus::Pending)
        ]
    );
    let reply = chat.say("undo").await;
    assert_eq!(reply.message, "Undone: reopened 'buy milk'.");
    assert_eq!(
        titles_and_statuses(&service).await[0],
        ("buy milk".to_owned(), TaskStatus::Pending)
    );

    // Words, "it", and undo of an update.
    let reply = chat.say("make buy milk high priority").await;
    assert_eq!(reply.message, "'buy milk' is now high priority.");
    let reply = chat.say("rename it to buy oat milk").await;
    assert_eq!(reply.message, "Renamed 'buy milk' to 'buy oat milk'.");
    let reply = chat.say("undo").await;
    assert_eq!(reply.message, "Undone: put 'buy milk' back as it was.");

    // Delete, list in between, undo brings it back (with a new id).
    let reply = chat.say("delete call mom").await;
    assert_eq!(
        reply.message,
        "Deleted 'call mom'. Say 'undo' to bring it back."
    );
    chat.say("what's overdue").await;
    let reply = chat.say("undo").await;
    assert_eq!(reply.message, "Undone: brought back 'call mom'.");
    let tasks = service
        .list("alice", &crate::task::TaskQuery::default())
        .await
        .expect("list");
    let mom = tasks
        .iter()
        .find(|task| task.title == "call mom")
        .expect("back");
    assert_eq!(mom.priority, Priority::High);
    assert!(mom.due_date.is_some());

    // A recurring task: completing it creates the next one; undo removes that again.
    let reply = chat
        .say("remind me to pay rent every month on the 1st at 9")
        .await;
    assert!(
        reply
            .message
            .contains("repeats monthly, reminder 1 minute before"),
        "{}",
        reply.message
    );
    let reply = chat.say("done with pay rent").await;
    assert!(
        reply
            .message
            .starts_with("Marked 'pay rent' as done. The next one is due "),
        "{}",
        reply.message
    );
    assert_eq!(titles_and_statuses(&service).await.len(), 4);
    let reply = chat.say("undo").await;
    assert_eq!(
        reply.message,
        "Undone: removed 'pay rent' and reopened 'pay rent'."
    );
    assert_eq!(titles_and_statuses(&service).await.len(), 3);

    // Ambiguity and nonsense run no tool.
    chat.say("add buy milk and eggs").await;
    let reply = chat.say("complete milk").await;
    assert!(
        reply.message.starts_with("Which one do you mean?"),
        "{}",
        reply.message
    );
    assert!(reply.tools_invoked.is_empty());
    let shown: Vec<&str> = reply
        .message
        .lines()
        .filter_map(|line| line.split_once(". "))
        .filter(|(number, _)| number.parse::<usize>().is_ok())
        .map(|(_, rest)| rest)
        .collect();
    assert_eq!(shown.len(), 2, "{}", reply.message);
    // Answering with a number takes that candidate for the earlier request.
    let reply = chat.say("the second one").await;
    assert_eq!(reply.tools_invoked.len(), 1, "{}", reply.message);
    assert_eq!(reply.tools_invoked[0].tool_name, "complete_task");
    let picked = reply.tools_invoked[0].result.as_ref().expect("data")["title"]
        .as_str()
        .expect("title")
        .to_owned();
    assert!(
        shown[1].starts_with(&picked),
        "picked {picked:?} from {shown:?}"
    );
    // A number with no question before it is not a choice.
    let reply = chat.say("2").await;
    assert!(reply.tools_invoked.is_empty(), "{}", reply.message);
    let before = titles_and_statuses(&service).await;
    let reply = chat.say("asdf qwerty").await;
    assert!(
        reply.message.contains("Try: add call mom tomorrow at 5pm"),
        "{}",
        reply.message
    );
    assert!(reply.tools_invoked.is_empty());
    assert_eq!(titles_and_statuses(&service).await, before);
}

fn percentile(sorted: &[Duration], share: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * share).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(what: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let p99 = percentile(&samples, 0.99);
    println!(
        "{what}: {} samples, p50 {:?}, p99 {:?}, max {:?}",
        samples.len(),
        percentile(&samples, 0.5),
        p99,
        samples.last().copied().unwrap_or_default()
    );
    p99
}

#[test]
#[ignore]
fn offline_latency_of_plan() {
    let tasks = fixture_tasks();
    let last_list = fixture_last_list();
    let mut samples = Vec::new();
    for _ in 0..50 {
        for case in CASES {
            let started = Instant::now();
            let plan = run(case, &tasks, &last_list);
            samples.push(started.elapsed());
            std::hint::black_box(plan);
        }
    }
    let p99 = report("plan() over the corpus", samples);
    assert!(
        p99 < Duration::from_millis(5),
        "p99 {p99:?} over the 5 ms target"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn offline_latency_of_a_full_turn() {
    let (_dir, mut chat, _service) = open_chat().await;
    for n in 0..200 {
        chat.say(&format!("add task number {n} in {} days #load", n % 30 + 1))
            .await;
    }
    let script = [
        "what's due this week",
        "add buy milk tomorrow at 5pm #shopping !high",
        "show high priority tasks",
        "complete 1",
        "undo",
        "make task number 7 high priority",
        "undo",
        "move task number 8 to friday",
        "search milk",
        "what's overdue",
    ];
    let mut samples = Vec::new();
    let mut by_message = vec![Vec::new(); script.len()];
    for round in 0..20 {
        for (index, message) in script.iter().enumerate() {
            let started = Instant::now();
            let reply = chat.say(message).await;
            let took = started.elapsed();
            samples.push(took);
            by_message[index].push(took);
            assert!(!reply.message.is_empty(), "round {round}: {message}");
        }
        // Keep the history at the chat layer's 20 messages.
        let keep = chat.history.len().saturating_sub(20);
        chat.history.drain(..keep);
    }
    for (message, samples) in script.iter().zip(by_message) {
        report(&format!("  {message:?}"), samples);
    }
    report("full turn against SQLite (200+ tasks)", samples);
}

#[test]
fn a_choice_answers_only_the_question_just_asked() {
    use super::{CLARIFY_PREFIX, clarified};
    let message = |role, content: &str| ChatMessage {
        id: crate::time::new_id(),
        role,
        content: content.to_owned(),
        tool_calls: Vec::new(),
        created_at: Utc::now(),
    };
    let question = format!(
        "{CLARIFY_PREFIX}\n1. buy milk — to do\n2. buy milk and eggs — to do\nSay its number."
    );
    let history = vec![
        message(Role::User, "complete milk"),
        message(Role::Assistant, &question),
    ];
    assert_eq!(clarified("1", &history), Some(("complete milk", 0)));
    assert_eq!(
        clarified("the second one", &history),
        Some(("complete milk", 1))
    );
    assert_eq!(clarified("number 2", &history), Some(("complete milk", 1)));
    assert_eq!(clarified("last", &history), Some(("complete milk", 1)));
    assert_eq!(clarified("3", &history), None, "only two were shown");
    assert_eq!(clarified("add milk", &history), None);
    let answered = vec![
        message(Role::User, "complete milk"),
        message(Role::Assistant, "Marked 'buy milk' as done."),
    ];
    assert_eq!(clarified("1", &answered), None);
}

#[test]
fn quick_add_reads_a_whole_line_as_one_task() {
    use super::intent::quick_add;
    // Friday 27 November 2026, 10:00 in Berlin.
    let now = at("2026-11-27T09:00:00Z");
    let task = quick_add(
        "Pay rent every month on the 1st at 9 #home !high",
        now,
        berlin(),
    )
    .expect("a task");
    assert_eq!(task.title, "Pay rent");
    assert_eq!(task.priority, Some(Priority::High));
    assert_eq!(task.tags, vec!["home".to_owned()]);
    assert_eq!(
        task.recurrence_rule.as_deref(),
        Some("MONTHLY"),
        "anchored on the 1st"
    );
    assert_eq!(
        task.due_date,
        Some(at("2026-12-01T08:00:00Z")),
        "09:00 in Berlin"
    );
    // No command word is needed, but one is understood.
    let plain = quick_add("buy milk", now, berlin()).expect("a task");
    assert_eq!(plain.title, "buy milk");
    assert_eq!(plain.due_date, None);
    let reminded =
        quick_add("remind me to call mom tomorrow at 5pm", now, berlin()).expect("a task");
    assert_eq!(reminded.title, "call mom");
    assert!(reminded.reminder_offset_minutes.is_some());
    // A line with no task in it says what is missing.
    let refused = quick_add("tomorrow at 5pm", now, berlin()).expect_err("no title");
    assert!(refused.contains("not what the task is"), "{refused}");
}
