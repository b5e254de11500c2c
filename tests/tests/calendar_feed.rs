//! The per-user calendar feed through the binary: made, replaced and turned off by API and in
//! Settings, served as text/calendar without a Bearer token, 404 for any wrong token, the
//! caller's tasks only, and stored hashed.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use taskstream_tests::TestServer;
use taskstream_tests::web::{self, WebClient};

taskstream_tests::api_tests!(
    the_feed_url_serves_the_users_tasks_and_wrong_tokens_are_404,
    settings_make_show_once_and_turn_off_the_feed,
);

async fn fetch(srv: &TestServer, path: &str) -> (u16, String, String) {
    let response = srv.client().get(srv.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, media, response.text().await.unwrap())
}

async fn the_feed_url_serves_the_users_tasks_and_wrong_tokens_are_404(srv: TestServer) {
    let alice = srv.user("alice");
    let bob = srv.user("bob");
    alice
        .create(
            json!({"title": "Pay rent", "due_date": "2030-01-31T09:00:00Z",
            "is_recurring": true, "recurrence_rule": "MONTHLY", "reminder_offset_minutes": 60,
            "tags": ["home"], "priority": "high"}),
        )
        .await;
    let done = alice.create(json!({"title": "Filed taxes"})).await;
    alice
        .complete(done["id"].as_str().unwrap())
        .await
        .expect(200);
    bob.create(json!({"title": "Bob's secret plan"})).await;

    assert_eq!(
        alice.get("/api/calendar-feed").await.expect(200)["enabled"],
        false
    );
    let created = alice.post("/api/calendar-feed", &json!({})).await;
    let created = created.expect(201).clone();
    let token = created["token"].as_str().unwrap().to_owned();
    let path = created["path"].as_str().unwrap().to_owned();
    assert!(token.starts_with("cal_"), "{created}");
    assert_eq!(path, format!("/ical/{token}.ics"));
    assert_eq!(
        created["url"],
        srv.url(&path),
        "a full URL for calendar apps"
    );
    let state = alice.get("/api/calendar-feed").await.expect(200).clone();
    assert_eq!(state["enabled"], true);
    assert_eq!(state["created_at"], created["created_at"]);
    assert!(state.get("token").is_none(), "the secret is shown once");

    // No Bearer token: the URL is the credential.
    let (status, media, calendar) = fetch(&srv, &path).await;
    assert_eq!(status, 200, "{calendar}");
    assert!(media.starts_with("text/calendar"), "{media}");
    for needle in [
        "BEGIN:VCALENDAR",
        "BEGIN:VTODO",
        "SUMMARY:Pay rent",
        "DUE:20300131T090000Z",
        "RRULE:FREQ=MONTHLY",
        "TRIGGER:-PT60M",
        "PRIORITY:1",
        "CATEGORIES:home",
        "SUMMARY:Filed taxes",
        "STATUS:COMPLETED",
    ] {
        assert!(calendar.contains(needle), "{needle} in {calendar}");
    }
    assert!(!calendar.contains("Bob"), "only the owner's tasks");

    // Wrong tokens of every kind: 404, with nothing about the user.
    let personal = format!("/ical/tsk_{}.ics", &token[4..]);
    let wrong_end = format!("/ical/{}x.ics", &token[..token.len() - 1]);
    let no_suffix = format!("/ical/{token}");
    for wrong in [
        "/ical/cal_nothing.ics",
        "/ical/.ics",
        personal.as_str(),
        wrong_end.as_str(),
        no_suffix.as_str(),
        "/ical/%2e%2e%2fapi.ics",
    ] {
        let (status, _, body) = fetch(&srv, wrong).await;
        assert_eq!(status, 404, "{wrong}: {body}");
        assert!(!body.contains("Pay rent"));
    }

    // A new URL retires the old one.
    let rotated = alice
        .post("/api/calendar-feed", &json!({}))
        .await
        .expect(201)
        .clone();
    let new_path = rotated["path"].as_str().unwrap().to_owned();
    assert_ne!(new_path, path);
    assert_eq!(fetch(&srv, &path).await.0, 404);
    assert_eq!(fetch(&srv, &new_path).await.0, 200);
    // Bob's feed is his own.
    let bobs = bob
        .post("/api/calendar-feed", &json!({}))
        .await
        .expect(201)
        .clone();
    let (_, _, bob_calendar) = fetch(&srv, bobs["path"].as_str().unwrap()).await;
    assert!(bob_calendar.contains("Bob's secret plan") && !bob_calendar.contains("Pay rent"));

    // Stored hashed: the secret appears nowhere in the database.
    if !srv.is_cluster() {
        let db = rusqlite::Connection::open(srv.data_dir().join("taskstream.db")).unwrap();
        let hashes: Vec<String> = db
            .prepare("SELECT token_hash FROM calendar_feeds")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(hashes.len(), 2);
        let secret = rotated["token"].as_str().unwrap();
        assert!(hashes.iter().all(|hash| !hash.contains(&secret[4..])));
        assert!(hashes.iter().all(|hash| hash.len() == 64), "{hashes:?}");
    }

    // Turned off: the URL is 404; turning off again says there was nothing.
    let revoked = alice.delete("/api/calendar-feed").await.expect(200).clone();
    assert_eq!(revoked["revoked"], true);
    assert_eq!(fetch(&srv, &new_path).await.0, 404);
    let again = alice.delete("/api/calendar-feed").await.expect(200).clone();
    assert_eq!(again["revoked"], false);
    assert_eq!(
        alice.get("/api/calendar-feed").await.expect(200)["enabled"],
        false
    );
    // Without a token the feed settings are closed.
    let response = srv
        .client()
        .post(srv.url("/api/calendar-feed"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

async fn settings_make_show_once_and_turn_off_the_feed(srv: TestServer) {
    let mut ui = WebClient::new(&srv).await;
    ui.sign_up("feed@example.com", "a long enough password")
        .await;
    let page = ui.get("/settings").await.text().await.unwrap();
    assert!(
        page.contains("Calendar feed") && page.contains(r#"id="feed-state">Off."#),
        "{page}"
    );
    let response = ui.post("/settings/calendar-feed", &[]).await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    let start = page
        .find(r#"id="feed-url" readonly value=""#)
        .expect("the URL is shown")
        + 30;
    let url = &page[start..start + page[start..].find('"').unwrap()];
    assert!(
        url.starts_with(&srv.url("/ical/cal_")) && url.ends_with(".ics"),
        "{url}"
    );
    let path = url.trim_start_matches(&srv.url(""));
    assert_eq!(fetch(&srv, path).await.0, 200);
    let page = ui.get("/settings").await.text().await.unwrap();
    assert!(!page.contains(path), "shown once");
    assert!(page.contains("On since"), "{page}");
    // The API sees the same feed.
    let token = web::api_token(&srv, "feed@example.com", "a long enough password").await;
    let state = web::api_get(&srv, &token, "/api/calendar-feed").await;
    assert_eq!(state["enabled"], true);
    let response = ui.post("/settings/calendar-feed/revoke", &[]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(fetch(&srv, path).await.0, 404);
    let page = ui.get("/settings").await.text().await.unwrap();
    assert!(page.contains(r#"id="feed-state">Off."#));
}
