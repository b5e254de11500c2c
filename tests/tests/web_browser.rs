//! The web UI in a real browser (Debian's chromium through chromedriver): the flows a person
//! goes through, live updates, an in-page reminder, dark mode, the phone layout and keyboard
//! shortcuts. Screenshots of the main pages are saved under
//! `$CARGO_TARGET_TMPDIR/screenshots/` (printed at the end of the walk-through).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use taskstream_tests::TestServer;
use taskstream_tests::browser::{Browser, browser_available};
use taskstream_tests::web::{self, token_subject};

const EMAIL: &str = "grace@example.com";
const PASSWORD: &str = "a long enough password";

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
}

async fn sign_up(browser: &Browser, srv: &TestServer) {
    browser.goto(&srv.url("/")).await;
    browser.wait_css("#password-again").await;
    assert_eq!(
        browser.path().await,
        "/signup",
        "a fresh install asks for an account"
    );
    browser.fill("#email", EMAIL).await;
    browser.fill("#password", PASSWORD).await;
    browser.fill("#password-again", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_css("#quick-add").await;
}

async fn api_token(srv: &TestServer) -> String {
    web::api_token(srv, EMAIL, PASSWORD).await
}

async fn task_titles(browser: &Browser) -> Vec<String> {
    let value = browser
        .eval("return Array.from(document.querySelectorAll('#task-list .title')).map(e => e.textContent)")
        .await;
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|title| title.as_str().unwrap_or("").to_owned())
        .collect()
}

async fn wait_titles(browser: &Browser, what: &str, check: impl Fn(&[String]) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let titles = task_titles(browser).await;
        if check(&titles) {
            return;
        }
        if std::time::Instant::now() > deadline {
            panic!("{what}: the list shows {titles:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_person_manages_tasks_in_the_browser() {
    if !browser_available("a_person_manages_tasks_in_the_browser") {
        return;
    }
    let srv = TestServer::start().await;
    let browser = Browser::start(1280, 900).await;
    let shots = screenshots();
    let started = std::time::Instant::now();

    eprintln!(
        "{:>6.1} s  Sign up (the first account on a fresh install).",
        started.elapsed().as_secs_f64()
    );
    // Sign up (the first account on a fresh install).
    browser.goto(&srv.url("/signup")).await;
    browser.wait_css("#password-again").await;
    browser.screenshot(&shots, "signup").await;
    sign_up(&browser, &srv).await;

    eprintln!(
        "{:>6.1} s  Quick add in the assistant's language.",
        started.elapsed().as_secs_f64()
    );
    // Quick add in the assistant's language.
    browser
        .fill(
            "#quick-add",
            "Pay rent every month on the 1st at 9 #home !high\n",
        )
        .await;
    browser.wait_text("Added “Pay rent”", 10).await;
    let row = browser
        .css("#task-list li.task")
        .await
        .text()
        .await
        .unwrap();
    assert!(row.contains("Pay rent"), "{row}");
    assert!(
        row.contains("#home") && row.contains("monthly") && row.to_lowercase().contains("high"),
        "{row}"
    );

    eprintln!("{:>6.1} s  The full form.", started.elapsed().as_secs_f64());
    // The full form.
    browser.click("nav a[href='/tasks/new']").await;
    browser.wait_css("#f-title").await;
    browser.fill("#f-title", "Write report").await;
    browser.fill("#f-description", "quarterly numbers").await;
    browser
        .css("#f-priority")
        .await
        .select_by_value("high")
        .await
        .unwrap();
    browser.fill("#f-tags", "work, q1").await;
    browser
        .eval("document.getElementById('f-due').value = '2031-01-15T10:30'; return true")
        .await;
    browser.fill("#f-offset", "30").await;
    browser
        .css("#f-repeat")
        .await
        .select_by_value("WEEKLY")
        .await
        .unwrap();
    browser.screenshot(&shots, "task-form").await;
    browser.click("button.primary").await;
    browser.wait_text("Added “Write report”", 10).await;
    browser.screenshot(&shots, "tasks").await;

    eprintln!(
        "{:>6.1} s  Search filters the list as you type (htmx), and the filter lands in the URL.",
        started.elapsed().as_secs_f64()
    );
    // Search filters the list as you type (htmx), and the filter lands in the URL.
    browser.fill("#search", "report").await;
    wait_titles(&browser, "search for report", |titles| {
        titles == ["Write report"]
    })
    .await;
    assert!(browser.path().await.contains("search=report"));
    browser.goto(&srv.url("/?priority=high&tags=home")).await;
    wait_titles(&browser, "high + #home", |titles| titles == ["Pay rent"]).await;

    eprintln!(
        "{:>6.1} s  Complete the recurring task: the list says when the next one is; undo takes it back.",
        started.elapsed().as_secs_f64()
    );
    // Complete the recurring task: the list says when the next one is; undo takes it back.
    browser.goto(&srv.url("/?search=rent")).await;
    browser.click("#task-list button.complete").await;
    browser.wait_text("Next on", 10).await;
    let flash = browser.css("#flash").await.text().await.unwrap();
    assert!(
        flash.starts_with("Completed “Pay rent”. Next on "),
        "{flash}"
    );
    let token = api_token(&srv).await;
    let all = web::api_get(&srv, &token, "/api/tasks?search=rent&status=all").await;
    assert_eq!(
        all.as_array().unwrap().len(),
        2,
        "completed + next occurrence"
    );
    browser.click("#flash button").await;
    browser.wait_text("Reopened", 10).await;

    eprintln!(
        "{:>6.1} s  Edit from the task's page.",
        started.elapsed().as_secs_f64()
    );
    // Edit from the task's page.
    browser.goto(&srv.url("/?search=report")).await;
    browser.click("#task-list a.title").await;
    browser.wait_css("article.task-page").await;
    browser.screenshot(&shots, "task-detail").await;
    browser.click("a[href$='/edit']").await;
    browser.wait_css("#f-title").await;
    browser.fill("#f-title", "Write annual report").await;
    browser.click("button.primary").await;
    browser.wait_text("Saved.", 10).await;
    assert!(browser.body_text().await.contains("Write annual report"));

    eprintln!(
        "{:>6.1} s  Delete, with confirmation.",
        started.elapsed().as_secs_f64()
    );
    // Delete, with confirmation.
    browser.click("a[href$='/delete']").await;
    browser.wait_text("cannot be undone", 10).await;
    browser.click("button.danger").await;
    browser.wait_text("Deleted “Write annual report”", 10).await;

    eprintln!(
        "{:>6.1} s  The chat panel adds a task, and it appears in a list open elsewhere without a reload.",
        started.elapsed().as_secs_f64()
    );
    // The chat panel adds a task, and it appears in a list open elsewhere without a reload.
    browser.goto(&srv.url("/")).await;
    browser.wait_css("#quick-add").await;
    eprintln!(
        "{:>6.1} s  Let the page's event stream connect before the change happens.",
        started.elapsed().as_secs_f64()
    );
    // Let the page's event stream connect before the change happens.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sub = token_subject(&token);
    let response = srv
        .client()
        .post(srv.url(&format!("/api/{sub}/chat")))
        .bearer_auth(&token)
        .json(&json!({ "message": "add buy oat milk tomorrow at 8am" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    wait_titles(&browser, "live update from the chat", |titles| {
        titles.iter().any(|title| title == "buy oat milk")
    })
    .await;
    browser.goto(&srv.url("/chat")).await;
    browser
        .fill("#chat-input", "add call the bank on friday")
        .await;
    browser.click("#chat-form button").await;
    browser.wait_text("call the bank", 10).await;
    browser.screenshot(&shots, "chat").await;

    eprintln!(
        "{:>6.1} s  A reminder raises an in-page notification and the bell counts it.",
        started.elapsed().as_secs_f64()
    );
    // A reminder raises an in-page notification and the bell counts it.
    browser.goto(&srv.url("/")).await;
    browser.wait_css("#quick-add").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let due = chrono::Utc::now() + chrono::Duration::seconds(62);
    let response = srv
        .client()
        .post(srv.url("/api/tasks"))
        .bearer_auth(&token)
        .json(&json!({
            "title": "Stand up",
            "due_date": due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "reminder_offset_minutes": 1,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let toast = browser.wait_css("#toasts .toast").await;
    assert_eq!(toast.text().await.unwrap(), "Reminder: Stand up");
    browser.wait_css("#bell .count").await;
    browser.screenshot(&shots, "reminder-toast").await;
    browser.click("#bell").await;
    browser.wait_text("Stand up", 10).await;
    browser.screenshot(&shots, "notifications").await;

    browser.goto(&srv.url("/activity")).await;
    browser.wait_text("Created", 10).await;
    browser.screenshot(&shots, "activity").await;

    eprintln!("{:>6.1} s  Dark mode.", started.elapsed().as_secs_f64());
    // Dark mode.
    browser.goto(&srv.url("/settings")).await;
    browser.click("input[name=theme][value=dark]").await;
    browser.click("form.settings button.primary").await;
    browser.wait_text("Settings saved.", 10).await;
    let theme = browser
        .eval("return document.documentElement.dataset.theme")
        .await;
    assert_eq!(theme, "dark");
    let background = browser
        .eval("return getComputedStyle(document.documentElement).backgroundColor")
        .await;
    assert_eq!(background, "rgb(21, 23, 28)");
    browser.screenshot(&shots, "settings-dark").await;
    browser.goto(&srv.url("/")).await;
    browser.wait_css("#quick-add").await;
    browser.screenshot(&shots, "tasks-dark").await;

    eprintln!(
        "{:>6.1} s  Sign out: the pages are closed again.",
        started.elapsed().as_secs_f64()
    );
    // Sign out: the pages are closed again.
    browser.click("form.signout button").await;
    browser.wait_text("You are signed out.", 10).await;
    browser.screenshot(&shots, "login").await;
    browser.goto(&srv.url("/")).await;
    browser.wait_css("#email").await;
    assert!(browser.path().await.starts_with("/login"));

    eprintln!(
        "{:>6.1} s  Sign in again: back to the list, which is still there.",
        started.elapsed().as_secs_f64()
    );
    // Sign in again: back to the list, which is still there.
    browser.fill("#email", EMAIL).await;
    browser.fill("#password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_css("#quick-add").await;
    wait_titles(&browser, "after signing in", |titles| {
        titles.iter().any(|title| title == "Pay rent")
    })
    .await;
    browser.close().await;
    eprintln!("screenshots in {}", shots.display());
}

#[tokio::test]
async fn phone_width_and_keyboard_shortcuts() {
    if !browser_available("phone_width_and_keyboard_shortcuts") {
        return;
    }
    let srv = TestServer::start().await;
    let browser = Browser::start(390, 844).await;
    sign_up(&browser, &srv).await;
    browser
        .fill("#quick-add", "Renew passport by next friday !high #admin\n")
        .await;
    browser.wait_text("Added", 10).await;
    let overflow = browser
        .eval("return document.documentElement.scrollWidth - window.innerWidth")
        .await;
    assert!(
        overflow.as_i64().unwrap_or(1) <= 0,
        "the page scrolls sideways on a phone by {overflow}px"
    );
    browser.screenshot(&screenshots(), "tasks-phone").await;

    // `/` focuses search, `n` the quick-add box, `?` opens the help.
    browser
        .eval("document.activeElement.blur(); return true")
        .await;
    browser.css("body").await.send_keys("/").await.unwrap();
    let focused = browser.eval("return document.activeElement.id").await;
    assert_eq!(focused, "search");
    browser
        .eval("document.activeElement.blur(); return true")
        .await;
    browser.css("body").await.send_keys("n").await.unwrap();
    let focused = browser.eval("return document.activeElement.id").await;
    assert_eq!(focused, "quick-add");
    browser
        .eval("document.activeElement.blur(); return true")
        .await;
    browser.css("body").await.send_keys("?").await.unwrap();
    let open = browser
        .eval("return document.getElementById('help').open")
        .await;
    assert_eq!(open, true);
    browser.close().await;
}
