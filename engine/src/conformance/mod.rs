//! The port conformance suites, written once and run by every adapter, so PostgreSQL behaves
//! exactly like SQLite and Dapr state like redb. One module per port; [`task_store_suite`]
//! runs the checks of every role a [`TaskStore`] plays. Each check panics with a message
//! naming what broke.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::error::EngineError;
use crate::ports::TaskStore;
use crate::task::input::{parse_new_task, parse_task_patch};
use crate::task::{
    Priority, SortField, SortOrder, StatusFilter, Task, TaskOp, TaskQuery, TaskStatus, ops,
};
use crate::time::{now, parse_datetime};

mod accounts;
mod activity;
mod conversations;
mod login_attempts;
mod outbox;
mod projects;
mod reminders;
mod settings;
mod state;
mod tasks;

pub use accounts::account_store_suite;
pub use activity::*;
pub use conversations::conversation_store_suite;
pub use login_attempts::login_attempts_suite;
pub use outbox::*;
pub use projects::project_store_suite;
pub use reminders::*;
pub use settings::settings_store_suite;
pub use state::state_store_suite;
pub use tasks::*;

fn at(text: &str) -> DateTime<Utc> {
    parse_datetime(text).expect("test date")
}

/// A user id unique to one run of the suite, so checks never see each other's rows.
fn fresh_user(label: &str) -> String {
    format!("{label}-{}", uuid::Uuid::new_v4())
}

async fn create<S: TaskStore + ?Sized>(store: &S, user: &str, body: serde_json::Value) -> Task {
    let draft = parse_new_task(&body).expect("valid test body");
    let (task, events) = ops::create(user, draft, now()).expect("valid draft");
    store.insert(task, events).await.expect("insert")
}

async fn titles<S: TaskStore + ?Sized>(store: &S, user: &str, query: TaskQuery) -> Vec<String> {
    store
        .list(user, &query)
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.title)
        .collect()
}

/// Runs every check against `store`.
pub async fn task_store_suite<S: TaskStore + ?Sized>(store: &S) {
    round_trips_every_field(store).await;
    lists_only_the_owners_tasks_with_filters(store).await;
    sorts_as_the_contract_says(store).await;
    updates_and_rejects_foreign_users(store).await;
    completes_once_with_one_next_occurrence(store).await;
    deleting_a_parent_keeps_the_child(store).await;
    writes_events_with_each_change(store).await;
    concurrent_writes_all_land(store).await;
    relayed_events_leave_the_outbox(store).await;
    repairs_a_missing_next_occurrence_once(store).await;
    audit_and_notifications_are_once_per_event_and_scoped(store).await;
    reminders_follow_their_tasks(store).await;
    reminders_fire_once_late_or_missed(store).await;
    prepared_fires_end_as_ordinary_ones(store).await;
    several_reminders_and_snoozes(store).await;
    on_due_recurrence_spawns_once_at_the_due_date(store).await;
    store.ping().await.expect("ping");
}
