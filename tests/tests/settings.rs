//! `GET/PUT /api/settings`, and the saved time zone governing requests that send no
//! `X-Timezone` (issue: "a user time zone setting … `X-Timezone` header or user profile").

use serde_json::json;
use taskstream_tests::TestServer;

async fn settings_default_save_validate_and_stay_per_user(server: TestServer) {
    let gina = server.user("settings-gina");
    let hank = server.user("settings-hank");
    let defaults = json!({"time_zone": "UTC", "daily_digest": false, "digest_hour": 8});
    assert_eq!(gina.get("/api/settings").await.expect(200), &defaults);

    let saved = gina
        .put(
            "/api/settings",
            &json!({"time_zone": "Europe/Berlin", "daily_digest": true}),
        )
        .await;
    assert_eq!(
        saved.expect(200),
        &json!({"time_zone": "Europe/Berlin", "daily_digest": true, "digest_hour": 8})
    );
    let changed = gina.put("/api/settings", &json!({"digest_hour": 7})).await;
    assert_eq!(
        changed.expect(200)["time_zone"],
        "Europe/Berlin",
        "a patch keeps the rest"
    );
    assert_eq!(
        gina.get("/api/settings").await.expect(200)["digest_hour"],
        7
    );
    assert_eq!(
        hank.get("/api/settings").await.expect(200),
        &defaults,
        "per user"
    );

    gina.put("/api/settings", &json!({"time_zone": "Mars/Olympus"}))
        .await
        .expect_invalid("value_error", json!(["body", "time_zone"]));
    gina.put("/api/settings", &json!({"digest_hour": 24}))
        .await
        .expect_invalid_at(json!(["body", "digest_hour"]));
    gina.put("/api/settings", &json!({"daily_digest": "yes"}))
        .await
        .expect_invalid("bool_type", json!(["body", "daily_digest"]));
    assert_eq!(
        gina.get("/api/settings").await.expect(200)["digest_hour"],
        7,
        "unchanged"
    );
    let anonymous = server
        .client()
        .get(server.url("/api/settings"))
        .send()
        .await
        .expect("send");
    assert_eq!(anonymous.status(), 401);
}

async fn the_saved_zone_keeps_recurrence_at_local_time_without_a_header(server: TestServer) {
    let ida = server.user("settings-ida");
    ida.put("/api/settings", &json!({"time_zone": "America/New_York"}))
        .await
        .expect(200);
    // 09:00 in New York on the Saturday before DST ends (EDT, UTC-4).
    let task = ida
        .create(
            json!({"title": "Weekly review", "due_date": "2026-10-31T13:00:00Z",
                       "is_recurring": true, "recurrence_rule": "WEEKLY"}),
        )
        .await;
    let done = ida.complete(task["id"].as_str().expect("id")).await;
    assert_eq!(
        done.expect(200)["next_task"]["due_date"],
        "2026-11-07T14:00:00Z",
        "still 09:00 in New York after the clocks went back (EST, UTC-5)"
    );

    // A header still wins over the saved zone.
    let task = ida
        .req(reqwest::Method::POST, "/api/tasks")
        .header("X-Timezone", "UTC")
        .json(
            &json!({"title": "UTC review", "due_date": "2026-10-31T13:00:00Z",
                      "is_recurring": true, "recurrence_rule": "WEEKLY"}),
        )
        .send()
        .await
        .expect("send");
    let task: serde_json::Value = task.json().await.expect("json");
    let done = ida.complete(task["id"].as_str().expect("id")).await;
    assert_eq!(
        done.expect(200)["next_task"]["due_date"],
        "2026-11-07T13:00:00Z"
    );
}

taskstream_tests::api_tests!(
    settings_default_save_validate_and_stay_per_user,
    the_saved_zone_keeps_recurrence_at_local_time_without_a_header,
);
