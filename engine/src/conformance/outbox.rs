//! The [`crate::ports::Outbox`]: every change leaves its events, and relayed ones go.

use super::*;

pub async fn writes_events_with_each_change<S: TaskStore + ?Sized>(store: &S) {
    let user = fresh_user("events");
    let before: std::collections::HashSet<_> = store
        .pending_events(1_000_000)
        .await
        .expect("outbox")
        .into_iter()
        .map(|r| r.envelope.event_id)
        .collect();
    let task = create(
        store,
        &user,
        json!({"title": "e", "due_date": "2030-01-01T10:00:00Z", "reminder_offset_minutes": 5}),
    )
    .await;
    store
        .modify(task.id, &user, TaskOp::Delete, now())
        .await
        .expect("delete");
    let mine: Vec<_> = store
        .pending_events(1_000_000)
        .await
        .expect("outbox")
        .into_iter()
        .filter(|r| !before.contains(&r.envelope.event_id) && r.envelope.user_id == user)
        .collect();
    let kinds: Vec<(&str, &str)> = mine
        .iter()
        .map(|r| (r.topic.as_str(), r.envelope.event_type.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("task-events", "task.created"),
            ("task-updates", "task.sync"),
            ("reminders", "reminder.scheduled"),
            ("task-events", "task.deleted"),
            ("task-updates", "task.sync"),
        ]
    );
    assert!(
        mine.windows(2).all(|pair| pair[0].seq < pair[1].seq),
        "outbox order is commit order"
    );
    assert!(
        mine.iter().all(|r| r.key == task.id.to_string()),
        "events are keyed by task id"
    );
    assert_eq!(
        mine[2].envelope.payload["remind_at"],
        json!("2030-01-01T09:55:00Z")
    );
}

pub async fn relayed_events_leave_the_outbox<S: TaskStore + ?Sized>(store: &S) {
    let user = fresh_user("relay");
    let signal = store.commit_signal();
    let woken = signal.notified();
    create(store, &user, json!({"title": "relay me"})).await;
    tokio::time::timeout(std::time::Duration::from_secs(5), woken)
        .await
        .expect("a commit wakes the relay");
    let pending = store.pending_events(1_000_000).await.expect("outbox");
    let seqs: Vec<i64> = pending.iter().map(|record| record.seq).collect();
    assert!(!seqs.is_empty(), "events pending");
    let removed = store.delete_events(seqs).await.expect("delete");
    assert_eq!(removed as usize, pending.len());
    assert!(store.pending_events(10).await.expect("outbox").is_empty());
}
