//! User isolation: a user sees and touches only their own tasks; other users' tasks answer 403.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use taskstream_tests::{TestServer, id_of, ids, query};

const FORBIDDEN: &str = "Not authorized to access this resource";

async fn other_users_tasks_are_forbidden_on_every_route(srv: TestServer) {
    let alice = srv.user("alice");
    let bob = srv.user("bob");
    let t = alice
        .create(
            json!({ "title": "alice's", "is_recurring": true, "recurrence_rule": "DAILY",
                        "due_date": "2026-01-01T00:00:00Z", "tags": ["secret"] }),
        )
        .await;
    let id = id_of(&t);

    bob.get_task(&id).await.expect_detail(403, FORBIDDEN);
    bob.put_task(&id, &json!({ "title": "pwned" }))
        .await
        .expect_detail(403, FORBIDDEN);
    bob.put_task(&id, &json!({ "status": "completed" }))
        .await
        .expect_detail(403, FORBIDDEN);
    bob.delete_task(&id).await.expect_detail(403, FORBIDDEN);
    bob.complete(&id).await.expect_detail(403, FORBIDDEN);

    // Nothing happened to alice's task.
    assert_eq!(alice.get_task(&id).await.expect(200), &t);
    assert_eq!(alice.list("").await, vec![t.clone()]);
    // A missing task is still 404 for bob.
    bob.get_task(&uuid::Uuid::new_v4().to_string())
        .await
        .expect_detail(404, "Task not found");
}

async fn lists_show_only_own_tasks(srv: TestServer) {
    let alice = srv.user("alice");
    let bob = srv.user("bob");
    let alice_upper = srv.user("Alice");
    let a1 = alice
        .create(json!({ "title": "shared words", "tags": ["work"], "priority": "high",
                        "due_date": "2026-01-01T00:00:00Z", "is_recurring": true, "recurrence_rule": "DAILY" }))
        .await;
    let a2 = alice.create(json!({ "title": "alice only" })).await;
    let b1 = bob
        .create(json!({ "title": "shared words", "tags": ["work"], "priority": "high" }))
        .await;
    assert_eq!(b1["user_id"], "bob");

    let mut al = ids(&alice.list("").await);
    al.sort();
    let mut want = vec![id_of(&a1), id_of(&a2)];
    want.sort();
    assert_eq!(al, want);
    assert_eq!(ids(&bob.list("").await), vec![id_of(&b1)]);
    assert!(
        alice_upper.list("").await.is_empty(),
        "sub is case-sensitive"
    );

    // No filter or sort leaks another user's tasks.
    for q in [
        query(&[("search", "shared")]),
        query(&[("tags", "work")]),
        query(&[("priority", "high")]),
        query(&[("status", "all")]),
        query(&[("status", "active")]),
        query(&[("has_due_date", "false")]),
        query(&[("sort", "due_date"), ("order", "asc")]),
        query(&[("sort", "title"), ("limit", "1000")]),
    ] {
        let l = bob.list(&q).await;
        assert!(
            l.iter().all(|t| t["user_id"] == "bob"),
            "bob sees foreign tasks for {q}"
        );
        let l = alice.list(&q).await;
        assert!(
            l.iter().all(|t| t["user_id"] == "alice"),
            "alice sees foreign tasks for {q}"
        );
    }
    assert!(
        bob.list(&query(&[("is_recurring", "true")]))
            .await
            .is_empty()
    );
    assert!(
        bob.list(&query(&[("has_due_date", "true")]))
            .await
            .is_empty()
    );
}

async fn next_occurrence_belongs_to_the_owner(srv: TestServer) {
    let alice = srv.user("alice");
    let bob = srv.user("bob");
    let t = alice
        .create(
            json!({ "title": "mine", "is_recurring": true, "recurrence_rule": "WEEKLY",
                        "due_date": "2026-01-01T00:00:00Z" }),
        )
        .await;
    let r = alice.complete(&id_of(&t)).await;
    let next = r.expect(200)["next_task"].clone();
    assert_eq!(next["user_id"], "alice");
    bob.get_task(&id_of(&next))
        .await
        .expect_detail(403, FORBIDDEN);
    assert!(bob.list("").await.is_empty());
    assert_eq!(alice.list("").await.len(), 2);
}

async fn each_user_can_work_on_their_own(srv: TestServer) {
    let users: Vec<_> = ["u1", "u2", "user_8f2kq9", "ünïcödé", "a@b.c"]
        .iter()
        .map(|s| srv.user(s))
        .collect();
    for u in &users {
        for i in 0..3 {
            u.create(json!({ "title": format!("{} #{i}", u.sub) }))
                .await;
        }
    }
    for u in &users {
        let l = u.list("").await;
        assert_eq!(l.len(), 3);
        for t in &l {
            assert_eq!(t["user_id"], u.sub.as_str());
            assert!(t["title"].as_str().unwrap().starts_with(&u.sub));
        }
        let id = id_of(&l[0]);
        u.put_task(&id, &json!({ "priority": "low" }))
            .await
            .expect(200);
        u.complete(&id).await.expect(200);
        u.delete_task(&id).await.expect(200);
        assert_eq!(u.list("").await.len(), 2);
    }
    // Cross-check: everyone else gets 403 on u1's remaining tasks.
    let u1_tasks = users[0].list("").await;
    for other in &users[1..] {
        for t in &u1_tasks {
            other
                .get_task(&id_of(t))
                .await
                .expect_detail(403, FORBIDDEN);
        }
    }
}

taskstream_tests::api_tests!(
    other_users_tasks_are_forbidden_on_every_route,
    lists_show_only_own_tasks,
    next_occurrence_belongs_to_the_owner,
    each_user_can_work_on_their_own,
);
