//! The web UI over HTTP against the real binary: sign-up and sign-in, the session cookie,
//! CSRF, escaping, security headers, and the task flows as plain form posts (no JavaScript).
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use taskstream_tests::web::{self, WebClient, set_cookie_header, token_subject};
use taskstream_tests::{CONSUMER_WAIT, Resp, TestServer, User, eventually, mint_hs256, now, query};

const PASSWORD: &str = "correct horse battery";

// Each runs on the embedded binary and, with TASKSTREAM_TEST_DATABASE_URL, in cluster mode on
// PostgreSQL (accounts, sessions and pages are the same on both).
taskstream_tests::api_tests!(
    a_fresh_install_sends_visitors_to_sign_up_then_to_sign_in,
    forms_without_the_csrf_token_are_refused_and_change_nothing,
    an_expired_or_forged_session_goes_back_to_sign_in,
    what_users_type_is_escaped_everywhere,
    pages_carry_security_headers,
    tasks_can_be_managed_with_plain_forms,
    sign_in_is_rate_limited,
    settings_show_tokens_once_and_revoke_them,
    the_chat_panel_talks_to_the_assistant_without_javascript,
    sign_in_follows_next_only_to_this_site,
    signing_out_ends_the_session_everywhere,
);

async fn signed_up(srv: &TestServer) -> WebClient {
    let mut web = WebClient::new(srv).await;
    web.sign_up("ada@example.com", PASSWORD).await;
    web
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// The API token of a signed-up user.
async fn api_token(srv: &TestServer, email: &str) -> String {
    web::api_token(srv, email, PASSWORD).await
}

async fn a_fresh_install_sends_visitors_to_sign_up_then_to_sign_in(srv: TestServer) {
    let web = WebClient::new(&srv).await;
    let response = web.get("/").await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/login?next=%2F");
    let response = web.get("/login").await;
    assert_eq!(response.status(), 303, "no account yet: sign up first");
    assert_eq!(location(&response), "/signup");

    let mut web = signed_up(&srv).await;
    let response = web.get("/").await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("ada@example.com"), "the page names the user");
    assert!(page.contains("id=\"quick-add\""));

    // first-only: the second visitor cannot create an account from the UI.
    let mut other = WebClient::new(&srv).await;
    let response = other.post_sign_up("eve@example.com", PASSWORD).await;
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("closed"));
    // …and the login page now shows the sign-in form.
    assert_eq!(other.get("/login").await.status(), 200);
    other.session = None;
    let response = other.log_in("ada@example.com", "wrong password").await;
    assert_eq!(response.status(), 401);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Invalid email or password")
    );
    let response = other.log_in("ADA@example.com ", PASSWORD).await;
    assert_eq!(response.status(), 303, "emails are case-insensitive");
    assert_eq!(location(&response), "/");

    // Signing out forgets the cookie.
    let response = web.post("/logout", &[]).await;
    assert_eq!(response.status(), 303);
    let cleared = set_cookie_header(&response, "taskstream_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    web.session = None;
    assert_eq!(web.get("/").await.status(), 303);
}

#[tokio::test]
async fn cookies_are_http_only_same_site_and_secure_behind_https() {
    let srv = TestServer::start_with(&["--behind-https"], &[]).await;
    let mut web = WebClient::new(&srv).await;
    let response = web.post_sign_up("ada@example.com", PASSWORD).await;
    assert_eq!(response.status(), 303);
    let session = set_cookie_header(&response, "taskstream_session").unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(
            session.contains(attribute),
            "{attribute} missing in {session}"
        );
    }
    web.session = None;

    let plain = TestServer::start().await;
    let web = WebClient::new(&plain).await;
    let response = web.get("/signup").await;
    let csrf = set_cookie_header(&response, "taskstream_csrf");
    assert!(
        csrf.is_none(),
        "the CSRF cookie is set once, not on every page"
    );
    let fresh = reqwest::Client::new()
        .get(plain.url("/signup"))
        .send()
        .await
        .unwrap();
    let csrf = set_cookie_header(&fresh, "taskstream_csrf").unwrap();
    assert!(csrf.contains("HttpOnly") && csrf.contains("SameSite=Lax"));
    assert!(
        !csrf.contains("Secure"),
        "plain HTTP on a laptop: no Secure"
    );
}

async fn forms_without_the_csrf_token_are_refused_and_change_nothing(srv: TestServer) {
    let web = signed_up(&srv).await;
    let response = web.post_raw("/tasks/quick", &[("text", "buy milk")]).await;
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("expired"));
    let response = web
        .post_raw(
            "/tasks/quick",
            &[("csrf", &"0".repeat(64)), ("text", "buy milk")],
        )
        .await;
    assert_eq!(response.status(), 403);
    let page = web.get("/").await.text().await.unwrap();
    assert!(!page.contains("buy milk"), "nothing was created");

    // The same form with the token works.
    let response = web.post("/tasks/quick", &[("text", "buy milk")]).await;
    assert_eq!(response.status(), 303);
    let page = web.get(&location(&response)).await.text().await.unwrap();
    assert!(page.contains("buy milk"));
}

async fn an_expired_or_forged_session_goes_back_to_sign_in(srv: TestServer) {
    let mut web = signed_up(&srv).await;
    let sub = token_subject(web.session.as_deref().unwrap());
    web.session = Some(mint_hs256(
        srv.secret(),
        &json!({ "sub": sub, "exp": now() - 10 }),
    ));
    let response = web.get("/settings").await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/login?next=%2Fsettings");
    web.session = Some(mint_hs256(
        "another secret",
        &json!({ "sub": sub, "exp": now() + 600 }),
    ));
    assert_eq!(web.get("/").await.status(), 303);
    // A valid token for a user with no account (an API-only user) does not open the UI.
    web.session = Some(srv.token("api-only-user"));
    assert_eq!(web.get("/").await.status(), 303);
}

async fn what_users_type_is_escaped_everywhere(srv: TestServer) {
    let web = signed_up(&srv).await;
    let token = api_token(&srv, "ada@example.com").await;
    let evil = "<script>alert('x')</script>";
    let response = srv
        .client()
        .post(srv.url("/api/tasks"))
        .bearer_auth(&token)
        .json(&json!({ "title": evil, "description": "<img src=x onerror=alert(1)>", "tags": ["a\"b"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let task: Value = response.json().await.unwrap();
    for path in [
        "/".to_owned(),
        format!("/tasks/{}", task["id"].as_str().unwrap()),
    ] {
        let page = web.get(&path).await.text().await.unwrap();
        assert!(!page.contains(evil), "{path} rendered the title as markup");
        assert!(
            !page.contains("<img src=x"),
            "{path} rendered the description as markup"
        );
        assert!(
            page.contains("&lt;script&gt;") || page.contains("&#60;script&#62;"),
            "{path} shows the title as text"
        );
    }
}

async fn pages_carry_security_headers(srv: TestServer) {
    let web = signed_up(&srv).await;
    for path in ["/", "/login", "/settings", "/tasks/new"] {
        let response = web.get(path).await;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let csp = header("content-security-policy");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "same-origin", "{path}");
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("<script>") && !body.contains(" onclick="),
            "{path} has inline script"
        );
    }
    let asset = web.get("/static/htmx.min.js").await;
    assert_eq!(asset.status(), 200);
    assert!(
        asset.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(web.get("/static/nope.js").await.status(), 404);
}

async fn tasks_can_be_managed_with_plain_forms(srv: TestServer) {
    let web = signed_up(&srv).await;
    // Settings first: the form reads times in the user's zone.
    let response = web
        .post(
            "/settings",
            &[
                ("time_zone", "Europe/Berlin"),
                ("theme", "dark"),
                ("digest_hour", "8"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let theme = set_cookie_header(&response, "taskstream_theme").unwrap();
    assert!(theme.starts_with("taskstream_theme=dark"));

    // The full form.
    let response = web
        .post(
            "/tasks",
            &[
                ("title", "Water plants"),
                ("description", "the big ones"),
                ("priority", "high"),
                ("tags", "home, #Garden"),
                ("due_date", "2031-07-01T09:00"),
                ("reminder_offset_minutes", "30"),
                ("remind_at", ""),
                ("repeat", "WEEKLY"),
                ("recurrence_trigger", "on_complete"),
                ("recurrence_from", "due"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let token = api_token(&srv, "ada@example.com").await;
    let tasks = web::api_get(&srv, &token, "/api/tasks").await;
    let task = &tasks[0];
    assert_eq!(task["title"], "Water plants");
    assert_eq!(
        task["due_date"], "2031-07-01T07:00:00Z",
        "09:00 in Berlin (CEST)"
    );
    assert_eq!(task["tags"], json!(["home", "garden"]));
    assert_eq!(task["recurrence_rule"], "WEEKLY");
    assert_eq!(task["reminder_offset_minutes"], 30);
    let id = task["id"].as_str().unwrap().to_owned();

    // A refused form says why and keeps what was typed.
    let response = web
        .post(
            "/tasks",
            &[
                ("title", ""),
                ("description", "kept"),
                ("reminder_offset_minutes", "10"),
            ],
        )
        .await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.unwrap();
    assert!(page.contains("Please check"));
    assert!(page.contains(">kept</textarea>"));

    // Complete: the list says when the next one is, and undo takes it back.
    let response = web.post(&format!("/tasks/{id}/complete"), &[]).await;
    assert_eq!(response.status(), 303);
    let back = location(&response);
    assert!(back.starts_with(&format!("/?done={id}&next=")), "{back}");
    let page = web.get(&back).await.text().await.unwrap();
    assert!(
        page.contains("Completed “Water plants”. Next on Tue 8 Jul 2031 09:00"),
        "{page}"
    );
    let next = back.rsplit('=').next().unwrap().to_owned();
    let response = web
        .post(&format!("/tasks/{id}/reopen"), &[("next", &next)])
        .await;
    assert_eq!(response.status(), 303);
    let tasks = web::api_get(&srv, &token, "/api/tasks").await;
    assert_eq!(
        tasks.as_array().unwrap().len(),
        1,
        "the next occurrence is gone"
    );
    assert_eq!(tasks[0]["status"], "pending");

    // Edit.
    let edit = web
        .get(&format!("/tasks/{id}/edit"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        edit.contains("value=\"2031-07-01T09:00\""),
        "the form shows local time"
    );
    let response = web
        .post(
            &format!("/tasks/{id}"),
            &[
                ("title", "Water all plants"),
                ("description", ""),
                ("priority", "low"),
                ("status", "in_progress"),
                ("tags", "home"),
                ("due_date", "2031-07-02T10:00"),
                ("reminder_offset_minutes", ""),
                ("repeat", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let page = web.get(&location(&response)).await.text().await.unwrap();
    assert!(page.contains("Water all plants") && page.contains("In progress"));

    // Filters in the URL.
    web.post(
        "/tasks/quick",
        &[("text", "call mom tomorrow at 5pm !high #family")],
    )
    .await;
    let page = web.get("/?tags=family").await.text().await.unwrap();
    assert!(page.contains("call mom") && !page.contains("Water all plants"));
    let page = web
        .get("/?search=water&priority=low")
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("call mom") && page.contains("Water all plants"));
    let page = web.get("/?status=completed").await.text().await.unwrap();
    assert!(page.contains("No tasks here"));

    // Delete asks first; the confirmation deletes.
    let confirm = web.get(&format!("/tasks/{id}/delete")).await;
    assert_eq!(confirm.status(), 200);
    assert!(confirm.text().await.unwrap().contains("cannot be undone"));
    let response = web.post(&format!("/tasks/{id}/delete"), &[]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(web.get(&format!("/tasks/{id}")).await.status(), 404);

    // Bulk complete.
    let page = web.get("/").await.text().await.unwrap();
    let ids: Vec<String> = page
        .split("name=\"ids\" value=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1);
    let response = web
        .post("/tasks/bulk", &[("action", "complete"), ("ids", &ids[0])])
        .await;
    assert_eq!(location(&response), "/?flash=bulk_completed&n=1");
}

#[tokio::test]
async fn other_users_tasks_are_not_found() {
    let srv = TestServer::start_with(&["--signup", "open"], &[]).await;
    let ada = signed_up(&srv).await;
    let mut bob = WebClient::new(&srv).await;
    bob.sign_up("bob@example.com", PASSWORD).await;
    ada.post("/tasks/quick", &[("text", "ada's secret")]).await;
    let token = api_token(&srv, "ada@example.com").await;
    let tasks = web::api_get(&srv, &token, "/api/tasks").await;
    let id = tasks[0]["id"].as_str().unwrap();
    assert_eq!(bob.get(&format!("/tasks/{id}")).await.status(), 404);
    assert_eq!(
        bob.post(&format!("/tasks/{id}/complete"), &[])
            .await
            .status(),
        404
    );
    assert!(!bob.get("/").await.text().await.unwrap().contains("secret"));
}

/// The bell on every page counts the user's unread notifications, all of them, and a read one
/// stops counting.
#[tokio::test]
async fn the_bell_counts_unread_notifications() {
    let srv = TestServer::start().await;
    let web = signed_up(&srv).await;
    let token = api_token(&srv, "ada@example.com").await;
    let ada = User {
        client: srv.client(),
        base: srv.url(""),
        sub: token_subject(&token),
        token,
    };
    let bell = || async {
        let page = web.get("/").await.text().await.unwrap();
        let start = page.find(r#"id="bell""#).expect("a bell on the page");
        let end = start + page[start..].find("</a>").expect("the bell's end");
        page[start..end].to_owned()
    };
    assert!(!bell().await.contains("unread"), "nothing yet");

    // Two tasks due in a minute and a second, reminded a minute before: two notifications.
    let due = (chrono::Utc::now() + chrono::Duration::seconds(61)).to_rfc3339();
    for title in ["first", "second"] {
        ada.create(json!({"title": title, "due_date": due, "reminder_offset_minutes": 1}))
            .await;
    }
    let notes = eventually("two reminder notifications", CONSUMER_WAIT * 2, || async {
        let notes = ada.notifications().await;
        if notes.len() == 2 {
            Ok(notes)
        } else {
            Err(format!("{} so far", notes.len()))
        }
    })
    .await;
    let two = bell().await;
    assert!(two.contains("Notifications, 2 unread"), "{two}");
    assert!(two.contains(r#"data-unread="2""#), "{two}");

    let id = notes[0]["id"].as_str().unwrap();
    ada.send("POST", &format!("/api/notifications/{id}/read"), None)
        .await
        .expect(200);
    let one = bell().await;
    assert!(one.contains("Notifications, 1 unread"), "{one}");
}

async fn sign_in_is_rate_limited(srv: TestServer) {
    let _ada = signed_up(&srv).await;
    let mut web = WebClient::new(&srv).await;
    for _ in 0..5 {
        assert_eq!(web.log_in("ada@example.com", "nope").await.status(), 401);
    }
    let response = web.log_in("ada@example.com", PASSWORD).await;
    assert_eq!(response.status(), 429, "even the right password waits");
    assert!(response.headers().contains_key("retry-after"));
}

async fn settings_show_tokens_once_and_revoke_them(srv: TestServer) {
    let web = signed_up(&srv).await;
    let response = web
        .post("/settings/tokens", &[("name", "backup script")])
        .await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    let secret = page
        .split("id=\"new-token\" readonly value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("tsk_"));
    let tasks = srv
        .client()
        .get(srv.url("/api/tasks"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(tasks.status(), 200, "the new token works on the API");
    let settings = web.get("/settings").await.text().await.unwrap();
    assert!(settings.contains("backup script"));
    assert!(!settings.contains(&secret), "shown once only");
    let id = settings
        .split("/settings/tokens/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let response = web
        .post(&format!("/settings/tokens/{id}/revoke"), &[])
        .await;
    assert_eq!(response.status(), 303);
    let tasks = srv
        .client()
        .get(srv.url("/api/tasks"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(tasks.status(), 401, "a revoked token stops working");
}

async fn the_chat_panel_talks_to_the_assistant_without_javascript(srv: TestServer) {
    let web = signed_up(&srv).await;
    let response = web
        .post(
            "/chat",
            &[("message", "add pay rent every month on the 1st at 9")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let page = web.get("/chat").await.text().await.unwrap();
    assert!(page.contains("pay rent"), "{page}");
    assert!(page.contains("add_task ✓"));
    let list = web.get("/").await.text().await.unwrap();
    assert!(list.contains("pay rent") && list.contains("monthly"));
}

/// Page weight of the main page and the time to serve the task list with 1,000 tasks, over
/// HTTP against the release binary:
/// `cargo build --release -p taskstream && cargo test --release -p taskstream-tests --test web_ui -- --ignored --nocapture bench_`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: prints figures"]
async fn bench_task_list_page() {
    let srv = TestServer::start().await;
    let web = signed_up(&srv).await;
    let token = api_token(&srv, "ada@example.com").await;

    // Page weight: what a first visit downloads, gzip as browsers ask for it.
    let gzip = |path: &'static str| {
        let http = web.http.clone();
        let url = srv.url(path);
        let cookie = format!(
            "taskstream_csrf={}; taskstream_session={}",
            web.csrf,
            web.session.clone().unwrap_or_default()
        );
        async move {
            let response = http
                .get(url)
                .header("accept-encoding", "gzip")
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            let encoding = response
                .headers()
                .get("content-encoding")
                .map(|value| value.to_str().unwrap_or("").to_owned())
                .unwrap_or_default();
            (response.bytes().await.unwrap().len(), encoding)
        }
    };
    let mut total = 0;
    let mut parts = Vec::new();
    for path in [
        "/",
        "/static/app.css",
        "/static/app.js",
        "/static/htmx.min.js",
        "/static/icon.svg",
    ] {
        let (bytes, encoding) = gzip(path).await;
        total += bytes;
        parts.push(format!("{path} {bytes} B ({encoding})"));
    }
    println!(
        "main page weight (empty list, compressed): {total} B = {}",
        parts.join(", ")
    );

    let client = srv.client();
    let mut creates = tokio::task::JoinSet::new();
    for chunk in 0..8 {
        let (client, url, token) = (client.clone(), srv.url("/api/tasks"), token.clone());
        creates.spawn(async move {
            for n in 0..125 {
                let i = chunk * 125 + n;
                let priority = ["low", "medium", "high"][i % 3];
                let mut body = json!({
                    "title": format!("Task {i}: a realistic task title"),
                    "priority": priority,
                    "tags": ["home", format!("t{}", i % 7)],
                });
                if i % 2 == 0 {
                    body["due_date"] = json!(format!("2031-01-{:02}T09:00:00Z", 1 + i % 28));
                }
                if i % 6 == 0 {
                    body["is_recurring"] = json!(true);
                    body["recurrence_rule"] = json!("WEEKLY");
                }
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
            }
        });
    }
    while let Some(done) = creates.join_next().await {
        done.unwrap();
    }
    let (bytes, _) = gzip("/").await;
    println!("task list page with 1,000 tasks: {bytes} B compressed");

    let mut times = Vec::new();
    for round in 0..320 {
        let started = std::time::Instant::now();
        let response = web.get("/").await;
        assert_eq!(response.status(), 200);
        let body = response.bytes().await.unwrap();
        if round >= 20 {
            times.push(started.elapsed());
        }
        assert!(body.len() > 100_000);
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "GET / with 1,000 tasks (query + render + transfer, loopback), 300 runs: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
}

/// Where sign-in may send the browser back to (`next`): only a path of this site. Each attack
/// once made the `Location` another host (browsers drop tab and newline, read `\` as `/` and
/// resolve dot segments) or, with CR/LF, a 500.
const NEXT_ATTACKS: &[&str] = &[
    "/\t/evil.example",
    "/ /evil.com",
    "/.//evil.com",
    "/./\\evil",
    "/../evil.com",
    "/%2e//evil.com",
    "//evil.com",
    "/\\evil.com",
    "https://evil.example/",
    "javascript:alert(1)",
    "/\r\nSet-Cookie: pwned=1",
    "/\n/evil.com",
    "/x\r\nLocation: //evil.com",
];

/// The `next` the sign-in page's form will post (its hidden field).
fn hidden_next(page: &str) -> String {
    page.split(r#"name="next" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("<no next field>")
        .replace("&amp;", "&")
}

/// Signs in through the form with `next` in its hidden field.
async fn sign_in_then(web: &WebClient, next: &str) -> reqwest::Response {
    web.post(
        "/login",
        &[
            ("email", "ada@example.com"),
            ("password", PASSWORD),
            ("next", next),
        ],
    )
    .await
}

async fn sign_in_follows_next_only_to_this_site(srv: TestServer) {
    let web = signed_up(&srv).await;
    for attack in NEXT_ATTACKS {
        let response = sign_in_then(&web, attack).await;
        assert_eq!(response.status(), 303, "POST /login next={attack:?}");
        assert_eq!(location(&response), "/", "POST /login next={attack:?}");
        assert!(
            set_cookie_header(&response, "pwned").is_none(),
            "no header injected by {attack:?}"
        );
        let response = web
            .get(&format!("/login?{}", query(&[("next", attack)])))
            .await;
        assert_eq!(response.status(), 200, "GET /login next={attack:?}");
        assert_eq!(
            hidden_next(&response.text().await.unwrap()),
            "/",
            "GET /login next={attack:?}"
        );
    }
    // The report's own URL, spelled as a browser sends it.
    let response = web.get("/login?next=/%09/evil.example").await;
    assert_eq!(hidden_next(&response.text().await.unwrap()), "/");

    // A link of this site survives, through the page and the sign-in.
    let response = web.get("/login?next=%2Ftasks%3Fstatus%3Dactive").await;
    assert_eq!(
        hidden_next(&response.text().await.unwrap()),
        "/tasks?status=active"
    );
    let response = sign_in_then(&web, "/tasks?status=active").await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/tasks?status=active");
    // Non-ASCII is percent-encoded, not a 500.
    let response = sign_in_then(&web, "/t\u{e2}ches").await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/t%C3%A2ches");
}

/// `GET /api/tasks` with `token` as a Bearer token or as the session cookie.
async fn tasks_with(srv: &TestServer, token: &str, as_cookie: bool) -> Resp {
    let request = srv.client().get(srv.url("/api/tasks"));
    let request = if as_cookie {
        request.header("cookie", format!("taskstream_session={token}"))
    } else {
        request.bearer_auth(token)
    };
    Resp::from(request.send().await.unwrap()).await
}

async fn signing_out_ends_the_session_everywhere(srv: TestServer) {
    let mut web = signed_up(&srv).await;
    let copied = web.session.clone().unwrap();
    let mut elsewhere = WebClient::new(&srv).await;
    assert_eq!(
        elsewhere.log_in("ada@example.com", PASSWORD).await.status(),
        303
    );
    for as_cookie in [false, true] {
        tasks_with(&srv, &copied, as_cookie).await.expect(200);
    }

    let response = web.post("/logout", &[]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/login?bye=1");

    // A copy of the cookie (kept by malware, a shared machine, a proxy log) is dead too.
    for as_cookie in [false, true] {
        tasks_with(&srv, &copied, as_cookie)
            .await
            .expect_detail(401, "Invalid token");
    }
    web.session = Some(copied.clone());
    let response = web.get("/settings").await;
    assert_eq!(response.status(), 303, "the UI asks to sign in again");
    assert_eq!(location(&response), "/login?next=%2Fsettings");
    // Signing out again with the dead cookie is harmless.
    assert_eq!(web.post("/logout", &[]).await.status(), 303);

    // Only that session ended: the other sign-in still works.
    assert_eq!(elsewhere.get("/").await.status(), 200);
    tasks_with(&srv, elsewhere.session.as_deref().unwrap(), false)
        .await
        .expect(200);
    // Signing in again opens a new session.
    web.session = None;
    assert_eq!(web.log_in("ada@example.com", PASSWORD).await.status(), 303);
    assert_ne!(web.session.as_deref(), Some(copied.as_str()));
    assert_eq!(web.get("/").await.status(), 200);
}
