//! `GET /api/tasks?due=today|upcoming|overdue`: windows of the user's own calendar, in both
//! shapes; unknown values are 422 like the other filters.
#![allow(clippy::unwrap_used)]

use chrono::Timelike;
use serde_json::json;
use taskstream_tests::TestServer;

taskstream_tests::api_tests!(due_windows_follow_the_callers_calendar);

/// A fixed-offset zone where it is about noon now, so "today" is hours wide on both sides of
/// now whenever the test runs.
fn noon_offset() -> i64 {
    12 - i64::from(chrono::Utc::now().hour())
}

/// The `Etc/GMT…` zone of UTC+`offset` hours (the sign is inverted in these names).
fn etc_zone(offset: i64) -> String {
    match offset {
        0 => "Etc/GMT".to_owned(),
        n if n > 0 => format!("Etc/GMT-{n}"),
        n => format!("Etc/GMT+{}", -n),
    }
}

async fn due_windows_follow_the_callers_calendar(srv: TestServer) {
    let user = srv.user("dora");
    let offset = noon_offset();
    let zone = etc_zone(offset);
    user.put("/api/settings", &json!({"time_zone": zone}))
        .await
        .expect(200);
    let now = chrono::Utc::now();
    let at = |minutes: i64| {
        (now + chrono::Duration::minutes(minutes))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    for (title, due) in [
        ("a minute ago", Some(at(-1))),
        ("in an hour", Some(at(60))),
        ("in two days", Some(at(2 * 24 * 60))),
        ("in a month", Some(at(30 * 24 * 60))),
        ("undated", None),
    ] {
        user.create(json!({"title": title, "due_date": due})).await;
    }
    let titles = |list: Vec<serde_json::Value>| -> Vec<String> {
        let mut titles: Vec<String> = list
            .iter()
            .map(|task| task["title"].as_str().unwrap().to_owned())
            .collect();
        titles.sort();
        titles
    };
    assert_eq!(
        titles(user.list("due=today").await),
        ["a minute ago", "in an hour"],
        "zone {zone}"
    );
    assert_eq!(titles(user.list("due=upcoming").await), ["in two days"]);
    assert_eq!(titles(user.list("due=overdue").await), ["a minute ago"]);
    assert_eq!(
        titles(user.list("due=today&search=hour").await),
        ["in an hour"]
    );
    // X-Timezone wins over the setting: where it is about 23:00 now, the task due in an hour
    // is tomorrow's.
    let far = etc_zone(if offset + 11 <= 14 {
        offset + 11
    } else {
        offset - 13
    });
    let response = user
        .req(reqwest::Method::GET, "/api/tasks?due=today")
        .header("x-timezone", far.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let there: Vec<serde_json::Value> = response.json().await.unwrap();
    assert_eq!(titles(there), ["a minute ago"], "in {far}");
    let refused = user.get("/api/tasks?due=yesterday").await;
    refused.expect_invalid("enum", json!(["query", "due"]));
}
