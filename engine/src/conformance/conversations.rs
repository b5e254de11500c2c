//! The [`crate::ports::ConversationStore`] contract.

use super::*;

/// Every check of the [`crate::ports::ConversationStore`] contract.
pub async fn conversation_store_suite<S: crate::ports::ConversationStore + ?Sized>(store: &S) {
    use crate::assistant::{ChatMessage, Role, ToolInvocation};

    let message = |role: Role, content: &str, tools: Vec<ToolInvocation>| ChatMessage {
        id: crate::time::new_id(),
        role,
        content: content.to_owned(),
        tool_calls: tools,
        created_at: now(),
    };
    let (none, empty) = store.recent_messages("chat-alice", 20).await.expect("read");
    assert!(
        none.is_none() && empty.is_empty(),
        "no conversation before the first message"
    );

    let invocation = ToolInvocation {
        tool_name: "add_task".to_owned(),
        success: true,
        result: Some(json!({ "id": "x", "title": "Milk" })),
        error: None,
    };
    let first = store
        .append_message("chat-alice", message(Role::User, "add milk", vec![]))
        .await
        .expect("append");
    let reply = message(Role::Assistant, "", vec![invocation.clone()]);
    let second = store
        .append_message("chat-alice", reply.clone())
        .await
        .expect("append");
    assert_eq!(first, second, "one conversation per user");
    for n in 0..25 {
        store
            .append_message("chat-alice", message(Role::User, &format!("m{n}"), vec![]))
            .await
            .expect("append");
    }
    store
        .append_message("chat-bob", message(Role::User, "bob's", vec![]))
        .await
        .expect("append");

    let (id, all) = store
        .recent_messages("chat-alice", 100)
        .await
        .expect("read");
    assert_eq!(id, Some(first));
    assert_eq!(all.len(), 27, "every message of alice, none of bob");
    assert_eq!(all[0].content, "add milk", "oldest first");
    assert_eq!(all[1], reply, "tool calls and empty content round-trip");
    let (_, recent) = store.recent_messages("chat-alice", 20).await.expect("read");
    assert_eq!(recent.len(), 20);
    assert_eq!(recent[0].content, "m5", "the newest 20, oldest first");
    assert_eq!(recent[19].content, "m24");

    assert_eq!(
        store.clear_conversation("chat-alice").await.expect("clear"),
        27
    );
    assert_eq!(
        store.clear_conversation("chat-alice").await.expect("clear"),
        0
    );
    let (none, empty) = store.recent_messages("chat-alice", 20).await.expect("read");
    assert!(none.is_none() && empty.is_empty(), "cleared");
    let (_, bobs) = store.recent_messages("chat-bob", 20).await.expect("read");
    assert_eq!(bobs.len(), 1, "clearing alice leaves bob alone");
}
