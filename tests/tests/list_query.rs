//! GET /api/tasks: every filter and sort, alone and combined, pagination, and 422 for bad values.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use serde_json::{Value, json};
use taskstream_tests::{TestServer, User, assert_utc, id_of, ids, query};

/// Six tasks with distinct titles (t[0] = "alpha report" ... t[5] = "foxtrot axb").
async fn fixture(u: &User) -> Vec<Value> {
    let bodies = [
        json!({ "title": "alpha report", "description": "quarterly numbers", "priority": "high",
                "status": "pending", "due_date": "2026-03-01T10:00:00Z", "tags": ["work", "urgent"] }),
        json!({ "title": "bravo groceries", "priority": "low", "status": "completed", "tags": ["home"] }),
        json!({ "title": "charlie 100% done", "priority": "medium", "status": "in_progress",
                "due_date": "2026-02-01T10:00:00Z", "tags": ["Work"], "is_recurring": true,
                "recurrence_rule": "DAILY" }),
        json!({ "title": "delta 100 done", "description": "Call MUM", "priority": "high",
                "status": "pending", "tags": ["homework"] }),
        json!({ "title": "echo a_b", "priority": "low", "status": "in_progress",
                "due_date": "2026-04-01T10:00:00Z", "tags": ["home", "work"], "is_recurring": true,
                "recurrence_rule": "WEEKLY" }),
        json!({ "title": "foxtrot axb", "description": "needs 50% more", "priority": "medium",
                "status": "completed", "due_date": "2026-01-15T10:00:00Z" }),
    ];
    let mut out = Vec::new();
    for b in bodies {
        out.push(u.create(b).await);
    }
    out
}

/// The fixture indexes of a list result, as a set.
fn which(fx: &[Value], list: &[Value]) -> BTreeSet<usize> {
    list.iter()
        .map(|t| {
            fx.iter()
                .position(|f| f["id"] == t["id"])
                .unwrap_or_else(|| panic!("unexpected task in list: {t}"))
        })
        .collect()
}

/// The fixture indexes of a list result, in order.
fn order(fx: &[Value], list: &[Value]) -> Vec<usize> {
    list.iter()
        .map(|t| fx.iter().position(|f| f["id"] == t["id"]).unwrap())
        .collect()
}

fn set(v: &[usize]) -> BTreeSet<usize> {
    v.iter().copied().collect()
}

async fn check(u: &User, fx: &[Value], pairs: &[(&str, &str)], want: &[usize]) {
    let list = u.list(&query(pairs)).await;
    assert_eq!(which(fx, &list), set(want), "query {pairs:?}");
    assert_eq!(list.len(), want.len(), "duplicates for {pairs:?}");
}

async fn default_sort_is_created_at_desc(srv: TestServer) {
    let u = srv.user("alice");
    let fx = fixture(&u).await;
    let list = u.list("").await;
    assert_eq!(which(&fx, &list), set(&[0, 1, 2, 3, 4, 5]));
    let times: Vec<_> = list.iter().map(|t| assert_utc(&t["created_at"])).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "not created_at desc"
    );
    let distinct: BTreeSet<_> = times.iter().collect();
    if distinct.len() == times.len() {
        assert_eq!(order(&fx, &list), vec![5, 4, 3, 2, 1, 0]);
    }
    for q in [
        query(&[("order", "desc")]),
        query(&[("sort", "created_at")]),
        query(&[("sort", "created_at"), ("order", "desc")]),
    ] {
        assert_eq!(ids(&u.list(&q).await), ids(&list), "{q}");
    }
    let asc = u.list(&query(&[("order", "asc")])).await;
    let times: Vec<_> = asc.iter().map(|t| assert_utc(&t["created_at"])).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "not created_at asc");
    if distinct.len() == times.len() {
        assert_eq!(order(&fx, &asc), vec![0, 1, 2, 3, 4, 5]);
    }
    let asc2 = u
        .list(&query(&[("sort", "created_at"), ("order", "asc")]))
        .await;
    assert_eq!(ids(&asc2), ids(&asc));
}

async fn status_filter(srv: TestServer) {
    let u = srv.user("alice");
    let fx = fixture(&u).await;
    check(&u, &fx, &[("status", "all")], &[0, 1, 2, 3, 4, 5]).await;
    check(&u, &fx, &[("status", "active")], &[0, 2, 3, 4]).await;
    check(&u, &fx, &[("status", "pending")], &[0, 3]).await;
    check(&u, &fx, &[("status", "in_progress")], &[2, 4]).await;
    check(&u, &fx, &[("status", "completed")], &[1, 5]).await;
    for bad in ["done", "ACTIVE", "in-progress", "open"] {
        u.get(&format!("/api/tasks?{}", query(&[("status", bad)])))
            .await
            .expect_invalid_at(json!(["query", "status"]));
    }
}

async fn priority_filter(srv: TestServer) {
    let u = srv.user("alice");
    let fx = fixture(&u).await;
    check(&u, &fx, &[("priority", "high")], &[0, 3]).await;
    check(&u, &fx, &[("priority", "medium")], &[2, 5]).await;
    check(&u, &fx, &[("priority", "low")], &[1, 4]).await;
    for bad in ["urgent", "HIGH", "1"] {
        u.get(&format!("/api/tasks?{}", query(&[("priority", bad)])))
            .await
            .expect_invalid("enum", json!(["query", "priority"]));
    }
}

async fn tags_filter_is_and_and_case_insensitive(srv: TestServer) {
    let u = srv.user("alice");
    let fx = fixture(&u).await;
    check(&u, &fx, &[("tags", "work")], &[0, 2, 4]).await;
    check(&u, &fx, &[("tags", "WORK")], &[0, 2, 4]).await;
    check(&u, &fx, &[("tags", "home")], &[1, 4]).await; // not "homework"
    check(&u, &fx, &[("tags", "homework")], &[3]).await;
    check(&u, &fx, &[("tags", "work,home")], &[4]).await;
    check(&u, &fx, &[("tags", " Work , HOME ")], &[4]).await;
    check(&u, &fx, &[("tags", "work,,home")], &[4]).await;
    check(&u, &fx, &[("tags", "urgent,work")], &[0]).await;
    check(&u, &fx, &[("tags", "urgent,home")], &[]).await;
    check(&u, &fx, &[("tags", "nothing")], &[]).await;
    check(&u, &fx, &[("tags", "wor")], &[]).await;
    check(&u, &fx, &[("tags", "%")], &[]).await;
    check(&u, &fx, &[("tags", "' OR 1=1 --")], &[]).await;
}

async fn bool_filters(srv: TestServer) {
    let u = srv.user("alice");
    let fx = fixture(&u).await;
    for v in ["true", "1", "yes", "on"] {
        check(&u, &fx, &[("has_due_date", v)], &[0, 2, 4, 5]).await;
        check(&u, &fx, &[("is_recurring", v)], &[2, 4]).await;
    }
    for v in ["false", "0", "no", "off"] {
        check(&u, &fx, &[("has_due_date", v)], &[1, 3]).await;
        check(&u, &fx, &[("is_recurring", v)], &[0, 1, 3, 5]).await;
    }
    for name in ["has_due_date", "is_recurring"] {
        for bad in ["maybe", "2", "tru", "yess"] {
            u.get(&format!("/api/tasks?{}", query(&[(name, bad)])))
                .await
                .expect_invalid("bool_parsing", json!(["query", name]));
        }
    }
}

async fn search_is_case_insensitive_and_literal(srv: TestServer) {
    let u = srv.user("alice");
    let fx = fixture(&u).await;
    check(&u, &fx, &[("search", "REPORT")], &[0]).await;
    check(&u, &fx, &[("search", "Quarterly")], &[0]).await; // description
    check(&u, &fx, &[("search", "mum")], &[3]).await; // description, case-insensitive
    check(&u, &fx, &[("search", "%")], &[2, 5]).await; // title "100%", description "50%"
    check(&u, &fx, &[("search", "100%")], &[2]).await;
    check(&u, &fx, &[("search", "100 d")], &[3]).await;
    check(&u, &fx, &[("search", "a_b")], &[4]).await; // not "axb"
    check(&u, &fx, &[("search", "_")], &[4]).await;
    check(&u, &fx, &[("search", "%%")], &[]).await;
    check(&u, &fx, &[("search", "zzz")], &[]).await;
    check(&u, &fx, &[("search", "\\")], &[]).await;
    check(&u, &fx, &[("search", "' OR '1'='1")], &[]).await;
    check(&u, &fx, &[("search", "o")], &[0, 1, 2, 3, 4, 5]).await;
}

async fn sort_by_due_date_puts_nulls_last_both_ways(srv: TestServer) {
    let u = srv.user("alice");
    let fx = fixture(&u).await;
    let asc = order(
        &fx,
        &u.list(&query(&[("sort", "due_date"), ("order", "asc")]))
            .await,
    );
    assert_eq!(asc[..4], [5, 2, 0, 4], "due_date asc: {asc:?}");
    assert_eq!(set(&asc[4..]), set(&[1, 3]), "nulls last: {asc:?}");
    let desc = order(
        &fx,
        &u.list(&query(&[("sort", "due_date"), ("order", "desc")]))
            .await,
    );
    assert_eq!(desc[..4], [4, 0, 2, 5], "due_date desc: {desc:?}");
    assert_eq!(set(&desc[4..]), set(&[1, 3]), "nulls last: {desc:?}");
    // Default order is desc.
    let def = order(&fx, &u.list(&query(&[("sort", "due_date")])).await);
    assert_eq!(def[..4], [4, 0, 2, 5]);
}

async fn sort_by_priority_uses_low_medium_high(srv: TestServer) {
    let u = srv.user("alice");
    let fx = fixture(&u).await;
    let asc = order(
        &fx,
        &u.list(&query(&[("sort", "priority"), ("order", "asc")]))
            .await,
    );
    assert_eq!(set(&asc[0..2]), set(&[1, 4]), "low first: {asc:?}");
    assert_eq!(set(&asc[2..4]), set(&[2, 5]), "then medium: {asc:?}");
    assert_eq!(set(&asc[4..6]), set(&[0, 3]), "then high: {asc:?}");
    let desc = order(
        &fx,
        &u.list(&query(&[("sort", "priority"), ("order", "desc")]))
            .await,
    );
    assert_eq!(set(&desc[0..2]), set(&[0, 3]), "high first: {desc:?}");
    assert_eq!(set(&desc[2..4]), set(&[2, 5]));
    assert_eq!(set(&desc[4..6]), set(&[1, 4]));
}

async fn sort_by_title(srv: TestServer) {
    let u = srv.user("alice");
    let fx = fixture(&u).await;
    let asc = order(
        &fx,
        &u.list(&query(&[("sort", "title"), ("order", "asc")])).await,
    );
    assert_eq!(asc, vec![0, 1, 2, 3, 4, 5]);
    let desc = order(
        &fx,
        &u.list(&query(&[("sort", "title"), ("order", "desc")]))
            .await,
    );
    assert_eq!(desc, vec![5, 4, 3, 2, 1, 0]);
}

async fn invalid_sort_and_order_are_422(srv: TestServer) {
    let u = srv.user("alice");
    fixture(&u).await;
    for bad in ["name", "TITLE", "due", "updated_at", "id; drop table task"] {
        u.get(&format!("/api/tasks?{}", query(&[("sort", bad)])))
            .await
            .expect_invalid_at(json!(["query", "sort"]));
    }
    for bad in ["up", "ASCENDING", "descending", "1"] {
        u.get(&format!("/api/tasks?{}", query(&[("order", bad)])))
            .await
            .expect_invalid_at(json!(["query", "order"]));
    }
}

async fn limit_and_offset(srv: TestServer) {
    let u = srv.user("alice");
    let fx = fixture(&u).await;
    let page = |pairs: Vec<(&'static str, &'static str)>| {
        let mut p = vec![("sort", "title"), ("order", "asc")];
        p.extend(pairs);
        query(&p)
    };
    assert_eq!(
        order(&fx, &u.list(&page(vec![("limit", "2")])).await),
        vec![0, 1]
    );
    assert_eq!(
        order(
            &fx,
            &u.list(&page(vec![("limit", "2"), ("offset", "2")])).await
        ),
        vec![2, 3]
    );
    assert_eq!(
        order(&fx, &u.list(&page(vec![("offset", "5")])).await),
        vec![5]
    );
    assert_eq!(
        order(&fx, &u.list(&page(vec![("offset", "10")])).await),
        Vec::<usize>::new()
    );
    assert_eq!(u.list(&page(vec![("limit", "1000")])).await.len(), 6);
    assert_eq!(u.list(&page(vec![("limit", "1")])).await.len(), 1);
    assert_eq!(u.list(&page(vec![("offset", "0")])).await.len(), 6);
    for (name, bad) in [
        ("limit", "0"),
        ("limit", "1001"),
        ("limit", "-1"),
        ("offset", "-1"),
    ] {
        u.get(&format!("/api/tasks?{}", query(&[(name, bad)])))
            .await
            .expect_invalid_at(json!(["query", name]));
    }
    for (name, bad) in [("limit", "ten"), ("offset", "x"), ("limit", "1.5")] {
        u.get(&format!("/api/tasks?{}", query(&[(name, bad)])))
            .await
            .expect_invalid("int_parsing", json!(["query", name]));
    }
}

async fn filters_combine(srv: TestServer) {
    let u = srv.user("alice");
    let fx = fixture(&u).await;
    let l = u
        .list(&query(&[
            ("status", "active"),
            ("priority", "high"),
            ("sort", "due_date"),
            ("order", "asc"),
        ]))
        .await;
    assert_eq!(order(&fx, &l), vec![0, 3]);
    let l = u
        .list(&query(&[
            ("tags", "WORK"),
            ("has_due_date", "true"),
            ("sort", "due_date"),
            ("order", "desc"),
        ]))
        .await;
    assert_eq!(order(&fx, &l), vec![4, 0, 2]);
    let l = u
        .list(&query(&[
            ("search", "O"),
            ("is_recurring", "true"),
            ("sort", "title"),
            ("order", "asc"),
        ]))
        .await;
    assert_eq!(order(&fx, &l), vec![2, 4]);
    check(&u, &fx, &[("status", "completed"), ("tags", "home")], &[1]).await;
    check(
        &u,
        &fx,
        &[
            ("priority", "low"),
            ("status", "in_progress"),
            ("tags", "work"),
        ],
        &[4],
    )
    .await;
    check(
        &u,
        &fx,
        &[("search", "done"), ("has_due_date", "false")],
        &[3],
    )
    .await;
    check(&u, &fx, &[("search", "done"), ("status", "completed")], &[]).await;
    check(
        &u,
        &fx,
        &[
            ("status", "all"),
            ("is_recurring", "false"),
            ("priority", "medium"),
        ],
        &[5],
    )
    .await;
    let l = u
        .list(&query(&[
            ("status", "active"),
            ("sort", "priority"),
            ("order", "desc"),
            ("limit", "2"),
        ]))
        .await;
    assert_eq!(set(&order(&fx, &l)), set(&[0, 3]));
    // Unknown parameters are ignored.
    check(
        &u,
        &fx,
        &[("foo", "bar"), ("skip", "3")],
        &[0, 1, 2, 3, 4, 5],
    )
    .await;
}

async fn list_reflects_updates_and_deletes(srv: TestServer) {
    let u = srv.user("alice");
    let fx = fixture(&u).await;
    u.put_task(
        &id_of(&fx[3]),
        &json!({ "tags": ["Work"], "priority": "low" }),
    )
    .await
    .expect(200);
    check(&u, &fx, &[("tags", "work")], &[0, 2, 3, 4]).await;
    check(&u, &fx, &[("priority", "low")], &[1, 3, 4]).await;
    u.delete_task(&id_of(&fx[0])).await.expect(200);
    check(&u, &fx, &[("tags", "work")], &[2, 3, 4]).await;
    u.complete(&id_of(&fx[3])).await.expect(200);
    check(&u, &fx, &[("status", "completed")], &[1, 3, 5]).await;
}

async fn search_and_tags_fold_non_ascii_case(srv: TestServer) {
    let u = srv.user("alice");
    let a = u
        .create(json!({ "title": "Café Crème", "tags": ["Été"] }))
        .await;
    let b = u
        .create(json!({ "title": "plain", "description": "ÜBER GRÖSSE" }))
        .await;
    let fx = vec![a, b];
    check(&u, &fx, &[("search", "CAFÉ")], &[0]).await;
    check(&u, &fx, &[("search", "crème")], &[0]).await;
    check(&u, &fx, &[("search", "über")], &[1]).await;
    check(&u, &fx, &[("tags", "ÉTÉ")], &[0]).await;
    check(&u, &fx, &[("tags", "été")], &[0]).await;
}

taskstream_tests::api_tests!(
    default_sort_is_created_at_desc,
    status_filter,
    priority_filter,
    tags_filter_is_and_and_case_insensitive,
    bool_filters,
    search_is_case_insensitive_and_literal,
    sort_by_due_date_puts_nulls_last_both_ways,
    sort_by_priority_uses_low_medium_high,
    sort_by_title,
    invalid_sort_and_order_are_422,
    limit_and_offset,
    filters_combine,
    list_reflects_updates_and_deletes,
    search_and_tags_fold_non_ascii_case,
);
