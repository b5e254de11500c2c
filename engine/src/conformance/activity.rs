//! The [`crate::ports::ActivityStore`]: audit rows and notifications, once per event, scoped.

use super::*;

pub async fn audit_and_notifications_are_once_per_event_and_scoped<S: TaskStore + ?Sized>(
    store: &S,
) {
    use crate::activity::{AuditEntry, AuditFilter, Notification};
    use crate::event::EventEnvelope;

    let alice = fresh_user("audited");
    let bob = fresh_user("other");
    let event = |user: &str, event_type: &str, task: &str| EventEnvelope {
        event_id: uuid::Uuid::new_v4(),
        event_type: event_type.to_owned(),
        timestamp: "2026-01-01T00:00:00Z".to_owned(),
        user_id: user.to_owned(),
        payload: json!({"id": task, "title": "t"}),
        source: "chat-api".to_owned(),
        specversion: "1.0".to_owned(),
    };
    let created = event(&alice, "task.created", "task-1");
    assert!(
        store
            .record_audit(AuditEntry::from_event(&created, now()))
            .await
            .expect("audit")
    );
    assert!(
        !store
            .record_audit(AuditEntry::from_event(&created, now()))
            .await
            .expect("audit again"),
        "one row per event id"
    );
    store
        .record_audit(AuditEntry::from_event(
            &event(&alice, "task.updated", "task-1"),
            now(),
        ))
        .await
        .expect("audit");
    store
        .record_audit(AuditEntry::from_event(
            &event(&alice, "task.created", "task-2"),
            now(),
        ))
        .await
        .expect("audit");
    store
        .record_audit(AuditEntry::from_event(
            &event(&bob, "task.created", "task-9"),
            now(),
        ))
        .await
        .expect("audit");

    let alice_ref = alice.as_str();
    let page = |filter: AuditFilter| async move {
        store.list_audit(alice_ref, &filter).await.expect("list")
    };
    let all = page(AuditFilter {
        limit: 100,
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(all.len(), 3, "only alice's rows");
    assert!(
        all.windows(2).all(|w| w[0].received_at >= w[1].received_at),
        "newest first"
    );
    assert_eq!(
        page(AuditFilter {
            task_id: Some("task-1".into()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        page(AuditFilter {
            event_type: Some("task.created".into()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        page(AuditFilter {
            limit: 1,
            offset: 1,
            ..AuditFilter::default()
        })
        .await
        .len(),
        1
    );

    let notification = Notification {
        id: crate::time::new_id(),
        user_id: alice.clone(),
        event_id: created.event_id,
        kind: "reminder".to_owned(),
        task_id: Some("task-1".to_owned()),
        title: "t".to_owned(),
        message: "Reminder".to_owned(),
        created_at: now(),
        read_at: None,
        payload: json!({}),
    };
    assert!(
        store
            .record_notification(notification.clone())
            .await
            .expect("notify")
    );
    let duplicate = Notification {
        id: crate::time::new_id(),
        ..notification.clone()
    };
    assert!(
        !store
            .record_notification(duplicate)
            .await
            .expect("notify again"),
        "one notification per event"
    );
    assert_eq!(
        store.list_notifications(&alice, 10).await.expect("list"),
        vec![notification.clone()]
    );
    let unread = |user: String| async move {
        store
            .count_unread_notifications(&user)
            .await
            .expect("count")
    };
    assert_eq!(unread(alice.clone()).await, 1);
    assert_eq!(unread(bob.clone()).await, 0, "only the user's own");
    assert!(
        store
            .list_notifications(&bob, 10)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(
        matches!(
            store
                .mark_notification_read(&bob, notification.id, now())
                .await,
            Err(EngineError::NotificationNotFound)
        ),
        "not bob's"
    );
    let read = store
        .mark_notification_read(&alice, notification.id, now())
        .await
        .expect("read");
    assert!(read.read_at.is_some());
    assert_eq!(unread(alice.clone()).await, 0, "read ones are not counted");
    let again = store
        .mark_notification_read(&alice, notification.id, now())
        .await
        .expect("read again");
    assert_eq!(again.read_at, read.read_at, "the first read time is kept");
}
