//! The web UI defects a new user hit (issue 16, item 4), each checked where it shows: over
//! HTTP when the page's HTML says it all, in a real browser (chromium through chromedriver)
//! when only layout or the browser itself can show it: a radio far from its label, blank lines
//! in chat bubbles, fields of the repeat form that do not apply, the browser's time zone on
//! sign-up, reminder times in raw RFC 3339.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};
use taskstream_tests::browser::{Browser, browser_available};
use taskstream_tests::web::{self, WebClient};
use taskstream_tests::{CONSUMER_WAIT, TestServer, eventually};

const EMAIL: &str = "new@example.com";
const PASSWORD: &str = "a long enough password";

taskstream_tests::api_tests!(
    sign_up_keeps_the_time_zone_the_browser_reported,
    settings_name_the_real_webhook_flag,
    weekly_rules_are_edited_with_the_weekday_picker,
    notifications_show_reminder_times_in_the_users_zone,
    the_list_hides_completed_tasks_and_has_today_and_upcoming,
);

/// An RFC 3339 instant as the API writes it (`2026-12-05T19:30:00Z`), anywhere in `text`.
fn has_raw_instant(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.windows(20).any(|w| {
        let digit = |i: usize| w[i].is_ascii_digit();
        (0..4).all(digit)
            && w[4] == b'-'
            && digit(5)
            && digit(6)
            && w[7] == b'-'
            && digit(8)
            && digit(9)
            && w[10] == b'T'
            && digit(11)
            && digit(12)
            && w[13] == b':'
    })
}

async fn sign_up_with_zone(srv: &TestServer, email: &str, zone: &str) -> WebClient {
    let mut web = WebClient::new(srv).await;
    let response = web
        .post(
            "/signup",
            &[
                ("email", email),
                ("password", PASSWORD),
                ("password_again", PASSWORD),
                ("time_zone", zone),
            ],
        )
        .await;
    assert_eq!(response.status(), 303, "sign-up redirects into the app");
    web.session = web::set_cookie_value(&response, "taskstream_session");
    assert!(web.session.is_some());
    web
}

async fn sign_up_keeps_the_time_zone_the_browser_reported(srv: TestServer) {
    sign_up_with_zone(&srv, EMAIL, "Asia/Tokyo").await;
    let token = web::api_token(&srv, EMAIL, PASSWORD).await;
    let settings = web::api_get(&srv, &token, "/api/settings").await;
    assert_eq!(settings["time_zone"], "Asia/Tokyo");
    // The task form says which zone its times are in.
    let web = {
        let mut web = WebClient::new(&srv).await;
        let response = web.log_in(EMAIL, PASSWORD).await;
        assert_eq!(response.status(), 303);
        web
    };
    let page = web.get("/tasks/new").await.text().await.unwrap();
    assert!(page.contains("times in Asia/Tokyo"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_the_server_does_not_know_leaves_utc() {
    let srv = TestServer::start_with(&["--signup", "open"], &[]).await;
    sign_up_with_zone(&srv, "odd@example.com", "Mars/Olympus_Mons").await;
    sign_up_with_zone(&srv, "nojs@example.com", "").await;
    for email in ["odd@example.com", "nojs@example.com"] {
        let token = web::api_token(&srv, email, PASSWORD).await;
        let settings = web::api_get(&srv, &token, "/api/settings").await;
        assert_eq!(settings["time_zone"], "UTC", "{email}");
    }
}

async fn settings_name_the_real_webhook_flag(srv: TestServer) {
    let web = sign_up_with_zone(&srv, EMAIL, "UTC").await;
    let page = web.get("/settings").await.text().await.unwrap();
    assert!(page.contains("<code>--notify-webhook-url</code>"), "{page}");
    assert!(!page.contains("--webhook-url"), "{page}");
}

async fn weekly_rules_are_edited_with_the_weekday_picker(srv: TestServer) {
    let web = sign_up_with_zone(&srv, EMAIL, "UTC").await;
    let token = web::api_token(&srv, EMAIL, PASSWORD).await;
    let response = srv
        .client()
        .post(srv.url("/api/tasks"))
        .bearer_auth(&token)
        .json(
            &json!({"title": "Gym", "due_date": "2031-01-07T18:00:00Z", "is_recurring": true,
            "recurrence_rule": "RRULE:FREQ=WEEKLY;BYDAY=TU,TH"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let task: Value = response.json().await.unwrap();
    let id = task["id"].as_str().unwrap();

    let page = web
        .get(&format!("/tasks/{id}/edit"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"<option value="WEEKLY" selected>"#),
        "weekly is the chosen repeat: {page}"
    );
    for (day, ticked) in [("MO", false), ("TU", true), ("WE", false), ("TH", true)] {
        let checkbox = format!(r#"name="byday" value="{day}" checked"#);
        assert_eq!(page.contains(&checkbox), ticked, "{day} in {page}");
    }
    assert!(
        page.contains(r#"name="custom_rule" value="""#),
        "the raw rule is not what the user edits: {page}"
    );
    assert!(!page.contains("BYDAY=TU,TH"), "{page}");

    // Saving the form with other days ticked writes the rule for them.
    let response = web
        .post(
            &format!("/tasks/{id}"),
            &[
                ("title", "Gym"),
                ("priority", "medium"),
                ("status", "pending"),
                ("due_date", "2031-01-07T18:00"),
                ("repeat", "WEEKLY"),
                ("byday", "FR"),
                ("byday", "MO"),
                ("interval_days", "2"),
                ("custom_rule", ""),
                ("recurrence_trigger", "on_complete"),
                ("recurrence_from", "due"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let task = web::api_get(&srv, &token, &format!("/api/tasks/{id}")).await;
    assert_eq!(task["recurrence_rule"], "RRULE:FREQ=WEEKLY;BYDAY=MO,FR");
    assert_eq!(task["is_recurring"], true);
}

async fn notifications_show_reminder_times_in_the_users_zone(srv: TestServer) {
    let web = sign_up_with_zone(&srv, EMAIL, "Europe/Berlin").await;
    let token = web::api_token(&srv, EMAIL, PASSWORD).await;
    let due = chrono::Utc::now() + chrono::Duration::seconds(61);
    let response = srv
        .client()
        .post(srv.url("/api/tasks"))
        .bearer_auth(&token)
        .json(&json!({"title": "Stand up",
            "due_date": due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "reminder_offset_minutes": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let stored = eventually("the reminder's notification", CONSUMER_WAIT, || async {
        let list = web::api_get(&srv, &token, "/api/notifications").await;
        list.as_array()
            .and_then(|list| list.first().cloned())
            .filter(|row| row["kind"] == "reminder")
            .ok_or(format!("{list}"))
    })
    .await;
    // The API keeps its message (RFC 3339, as clients parse it)...
    assert!(has_raw_instant(stored["message"].as_str().unwrap()));
    // ...the page reads it in the user's zone.
    let page = web.get("/notifications").await.text().await.unwrap();
    assert!(page.contains("Reminder: “Stand up” is due "), "{page}");
    assert!(!has_raw_instant(&page), "{page}");
    let berlin = due.with_timezone(&chrono_tz::Europe::Berlin);
    let expected = format!(" {}.", berlin.format("%H:%M"));
    assert!(
        page.contains(&expected),
        "the due time in Berlin, {expected}: {page}"
    );
}

/// The titles of the task list in a page of the UI.
fn titles(page: &str) -> Vec<String> {
    page.split("class=\"title\"")
        .skip(1)
        .filter_map(|rest| {
            let start = rest.find('>')? + 1;
            let end = rest[start..].find('<')?;
            Some(rest[start..start + end].to_owned())
        })
        .collect()
}

async fn the_list_hides_completed_tasks_and_has_today_and_upcoming(srv: TestServer) {
    let web = sign_up_with_zone(&srv, EMAIL, "UTC").await;
    let token = web::api_token(&srv, EMAIL, PASSWORD).await;
    let now = chrono::Utc::now();
    let at = |minutes: i64| {
        (now + chrono::Duration::minutes(minutes))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let mut ids = std::collections::BTreeMap::new();
    for (title, due) in [
        ("late one", Some(at(-1))),
        ("in two days", Some(at(2 * 24 * 60))),
        ("next month", Some(at(30 * 24 * 60))),
        ("someday", None),
        ("already done", Some(at(-2))),
    ] {
        let response = srv
            .client()
            .post(srv.url("/api/tasks"))
            .bearer_auth(&token)
            .json(&json!({"title": title, "due_date": due}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let task: Value = response.json().await.unwrap();
        ids.insert(title, task["id"].as_str().unwrap().to_owned());
    }
    let done = srv
        .client()
        .patch(srv.url(&format!("/api/tasks/{}/complete", ids["already done"])))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let page = |path: &'static str| {
        let web = &web;
        async move { web.get(path).await.text().await.unwrap() }
    };
    let list = titles(&page("/").await);
    assert_eq!(
        list.len(),
        4,
        "completed tasks are hidden by default: {list:?}"
    );
    assert!(!list.contains(&"already done".to_owned()));
    let all = titles(&page("/?status=all").await);
    assert!(
        all.contains(&"already done".to_owned()) && all.len() == 5,
        "{all:?}"
    );
    let done = titles(&page("/?status=completed").await);
    assert_eq!(done, ["already done"]);
    let today = titles(&page("/?view=today").await);
    assert_eq!(today, ["late one"], "due today or overdue, open");
    let upcoming = titles(&page("/?view=upcoming").await);
    assert_eq!(upcoming, ["in two days"]);
    let home = page("/").await;
    assert!(
        home.contains(r#"href="/?status=active&amp;view=today""#) || home.contains("view=today"),
        "{home}"
    );
    assert!(home.contains("Upcoming"));
}

async fn rect(browser: &Browser, script: &str) -> Value {
    browser.eval(script).await
}

#[tokio::test]
async fn a_new_user_in_the_browser_meets_none_of_the_old_defects() {
    if !browser_available("a_new_user_in_the_browser_meets_none_of_the_old_defects") {
        return;
    }
    let srv = TestServer::start().await;
    let browser = Browser::start_in_zone(1280, 900, Some("America/New_York")).await;
    let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");

    // Sign-up takes the browser's time zone.
    browser.goto(&srv.url("/signup")).await;
    browser.wait_css("#password-again").await;
    let zone = browser
        .eval("return Intl.DateTimeFormat().resolvedOptions().timeZone")
        .await;
    assert_eq!(
        zone, "America/New_York",
        "the browser runs in New York time"
    );
    browser.fill("#email", EMAIL).await;
    browser.fill("#password", PASSWORD).await;
    browser.fill("#password-again", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_css("#quick-add").await;
    let token = web::api_token(&srv, EMAIL, PASSWORD).await;
    let settings = web::api_get(&srv, &token, "/api/settings").await;
    assert_eq!(settings["time_zone"], "America/New_York");

    // Settings: every radio and checkbox sits right before its words, on the same line.
    browser.goto(&srv.url("/settings")).await;
    browser.wait_css("form.settings").await;
    let gaps = rect(
        &browser,
        "return Array.from(document.querySelectorAll('form.settings label.check')).map(label => {
           const input = label.querySelector('input');
           const text = Array.from(label.childNodes).find(n => n.nodeType === 3 && n.textContent.trim());
           const range = document.createRange(); range.selectNodeContents(text);
           const box = input.getBoundingClientRect(), words = range.getBoundingClientRect();
           return {name: input.name + '=' + input.value, gap: words.left - box.right,
                   dy: Math.abs((words.top + words.bottom) / 2 - (box.top + box.bottom) / 2),
                   width: box.width};
         })",
    )
    .await;
    let gaps = gaps.as_array().unwrap();
    assert_eq!(
        gaps.len(),
        4,
        "three theme radios and the digest checkbox: {gaps:?}"
    );
    for gap in gaps {
        let (dx, dy) = (gap["gap"].as_f64().unwrap(), gap["dy"].as_f64().unwrap());
        assert!(
            (0.0..=16.0).contains(&dx),
            "{gap}: the words are {dx}px away"
        );
        assert!(dy <= 6.0, "{gap}: not on the same line");
        assert!(
            gap["width"].as_f64().unwrap() < 40.0,
            "{gap}: a stretched control"
        );
    }
    browser.screenshot(&shots, "settings-labels").await;

    // Chat: a bubble is as tall as what it says, and a reply's line breaks stay.
    browser.goto(&srv.url("/chat")).await;
    browser.wait_css("#chat-input").await;
    for (n, message) in ["add water the plants tomorrow at 9", "help"]
        .iter()
        .enumerate()
    {
        browser.fill("#chat-input", message).await;
        browser.click("#chat-form button").await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while browser
            .eval("return document.querySelectorAll('#chat-log .bubble').length")
            .await
            .as_u64()
            < Some(2 * n as u64 + 2)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no reply to {message:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    browser.goto(&srv.url("/chat")).await;
    browser.wait_css("#chat-log .bubble").await;
    let bubbles = rect(
        &browser,
        "return Array.from(document.querySelectorAll('#chat-log .bubble')).map(b => {
           const p = b.querySelector('p'), small = b.querySelector('small');
           const style = getComputedStyle(b);
           const chrome = parseFloat(style.paddingTop) + parseFloat(style.paddingBottom)
             + parseFloat(style.borderTopWidth) + parseFloat(style.borderBottomWidth)
             + parseFloat(getComputedStyle(p).marginBottom);
           return {text: p.textContent, extra: b.getBoundingClientRect().height
             - p.getBoundingClientRect().height - small.getBoundingClientRect().height - chrome,
             lines: Math.round(p.getBoundingClientRect().height / parseFloat(getComputedStyle(p).lineHeight))};
         })",
    )
    .await;
    let bubbles = bubbles.as_array().unwrap();
    assert_eq!(
        bubbles.len(),
        4,
        "two messages and two replies: {bubbles:?}"
    );
    for bubble in bubbles {
        // The time line's box is a little taller than its small text; a blank line of the
        // bubble's text (23 px) is not there.
        let extra = bubble["extra"].as_f64().unwrap();
        assert!(extra.abs() <= 10.0, "{bubble}: {extra}px of blank space");
    }
    let listing = bubbles.last().unwrap();
    assert!(
        listing["text"].as_str().unwrap().contains('\n') && listing["lines"].as_i64().unwrap() >= 3,
        "the help keeps one example a line: {listing}"
    );
    browser.screenshot(&shots, "chat-bubbles").await;

    // The repeat fields: only those of the chosen kind show.
    browser.goto(&srv.url("/tasks/new")).await;
    browser.wait_css("#f-repeat").await;
    let shown =
        |selector: &str| format!("return document.querySelector('{selector}').checkVisibility()");
    let visible = async |selector: &str| browser.eval(&shown(selector)).await == json!(true);
    for (repeat, expected) in [
        ("", [false, false, false, false]),
        ("DAILY", [false, false, false, true]),
        ("INTERVAL", [true, false, false, true]),
        ("CUSTOM", [false, true, false, true]),
        ("WEEKLY", [false, false, true, true]),
    ] {
        browser
            .css("#f-repeat")
            .await
            .select_by_value(repeat)
            .await
            .unwrap();
        let seen = [
            visible("#f-interval").await,
            visible("#f-rrule").await,
            visible("#f-weekdays").await,
            visible("#f-trigger").await,
        ];
        assert_eq!(
            seen, expected,
            "repeat {repeat:?}: interval, rule, weekdays, trigger"
        );
    }
    browser.fill("#f-title", "Gym").await;
    browser
        .eval("document.getElementById('f-due').value = '2031-01-07T18:00'; return true")
        .await;
    browser.click("input[name=byday][value=MO]").await;
    browser.click("input[name=byday][value=WE]").await;
    browser.screenshot(&shots, "task-form-weekdays").await;
    browser.click("button.primary").await;
    browser.wait_text("Added “Gym”", 10).await;
    let tasks = web::api_get(&srv, &token, "/api/tasks?search=Gym").await;
    assert_eq!(tasks[0]["recurrence_rule"], "RRULE:FREQ=WEEKLY;BYDAY=MO,WE");
    let id = tasks[0]["id"].as_str().unwrap().to_owned();
    browser.goto(&srv.url(&format!("/tasks/{id}/edit"))).await;
    browser.wait_css("#f-repeat").await;
    let form = browser
        .eval("return {repeat: document.getElementById('f-repeat').value,
                days: Array.from(document.querySelectorAll('input[name=byday]:checked')).map(e => e.value),
                rule: document.getElementById('f-rrule').value}")
        .await;
    assert_eq!(
        form,
        json!({"repeat": "WEEKLY", "days": ["MO", "WE"], "rule": ""})
    );
    assert!(visible("#f-weekdays").await && !visible("#f-rrule").await);

    // A reminder: the toast names the task; the notifications read in local time.
    browser.goto(&srv.url("/")).await;
    browser.wait_css("#quick-add").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let due = chrono::Utc::now() + chrono::Duration::seconds(62);
    let response = srv
        .client()
        .post(srv.url("/api/tasks"))
        .bearer_auth(&token)
        .json(&json!({"title": "Stand up",
            "due_date": due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "reminder_offset_minutes": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let toast = browser.wait_css("#toasts .toast").await;
    let toast = toast.text().await.unwrap();
    assert!(toast.starts_with("Reminder: Stand up"), "{toast}");
    assert!(!has_raw_instant(&toast), "{toast}");
    browser.goto(&srv.url("/notifications")).await;
    browser.wait_text("Reminder: “Stand up” is due", 10).await;
    let text = browser.body_text().await;
    assert!(!has_raw_instant(&text), "{text}");
    browser.screenshot(&shots, "notifications-local-time").await;
    browser.close().await;
}
