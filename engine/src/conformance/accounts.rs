//! The [`crate::ports::AccountStore`] contract.

use super::*;

/// Every check of the [`crate::ports::AccountStore`] contract. Needs a store without accounts.
pub async fn account_store_suite<S: crate::ports::AccountStore + ?Sized>(store: &S) {
    use crate::accounts::{AccountInsert, AccountRecord, ApiTokenRecord};

    let t0 = at("2030-01-01T10:00:00.123456Z");
    let account = |email: &str, created: DateTime<Utc>| AccountRecord {
        id: uuid::Uuid::now_v7().to_string(),
        email: email.to_owned(),
        password_hash: format!("$argon2id$v=19$fake-{email}"),
        created_at: created,
        updated_at: created,
    };
    assert_eq!(
        store.account_count().await.expect("count"),
        0,
        "empty store"
    );
    let ann = account("ann@example.com", t0);
    assert_eq!(
        store.insert_account(&ann, true).await.expect("insert"),
        AccountInsert::Created,
        "the first account may be created with only_first"
    );
    let bo = account("bo@example.com", t0 + chrono::Duration::seconds(1));
    assert_eq!(
        store.insert_account(&bo, true).await.expect("insert"),
        AccountInsert::NotFirst,
        "only_first refuses a second account"
    );
    assert_eq!(
        store.insert_account(&bo, false).await.expect("insert"),
        AccountInsert::Created
    );
    let twin = account("ann@example.com", t0);
    assert_eq!(
        store.insert_account(&twin, false).await.expect("insert"),
        AccountInsert::EmailTaken,
        "emails are unique"
    );
    assert_eq!(store.account_count().await.expect("count"), 2);
    assert_eq!(
        store
            .account_by_email("ann@example.com")
            .await
            .expect("by email"),
        Some(ann.clone()),
        "round-trips, timestamps to the microsecond"
    );
    assert_eq!(
        store.account_by_id(&bo.id).await.expect("by id"),
        Some(bo.clone())
    );
    assert_eq!(store.account_by_id("nobody").await.expect("by id"), None);
    assert_eq!(
        store
            .account_by_email("nobody@example.com")
            .await
            .expect("by email"),
        None
    );
    let listed: Vec<String> = store
        .list_accounts()
        .await
        .expect("list")
        .into_iter()
        .map(|account| account.email)
        .collect();
    assert_eq!(
        listed,
        ["ann@example.com", "bo@example.com"],
        "oldest first"
    );

    let later = t0 + chrono::Duration::hours(1);
    assert!(
        store
            .set_password_hash(&ann.id, "$argon2id$new", later)
            .await
            .expect("set")
    );
    let changed = store
        .account_by_id(&ann.id)
        .await
        .expect("by id")
        .expect("ann");
    assert_eq!(changed.password_hash, "$argon2id$new");
    assert_eq!(changed.updated_at, later);
    assert_eq!(changed.created_at, t0);
    assert!(
        !store
            .set_password_hash("nobody", "$argon2id$new", later)
            .await
            .expect("set"),
        "no such account"
    );

    let token = |user: &str, name: &str, hash: &str, created: DateTime<Utc>| ApiTokenRecord {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user.to_owned(),
        name: name.to_owned(),
        prefix: "tsk_abcd".to_owned(),
        token_hash: hash.to_owned(),
        created_at: created,
        last_used_at: None,
        revoked_at: None,
    };
    let old = token(&ann.id, "laptop", "hash-old", t0);
    let new = token(&ann.id, "ci", "hash-new", t0 + chrono::Duration::minutes(5));
    let bos = token(&bo.id, "bo's", "hash-bo", t0);
    for record in [&old, &new, &bos] {
        store.insert_api_token(record).await.expect("insert token");
    }
    assert!(
        store
            .insert_api_token(&token(&bo.id, "dup", "hash-old", t0))
            .await
            .is_err(),
        "token hashes are unique"
    );
    assert!(
        store
            .insert_api_token(&token("nobody", "orphan", "hash-orphan", t0))
            .await
            .is_err(),
        "a token needs an existing account"
    );
    assert_eq!(
        store.api_tokens(&ann.id).await.expect("tokens"),
        [new.clone(), old.clone()],
        "the user's own tokens, newest first"
    );
    assert_eq!(
        store.api_token_by_hash("hash-old").await.expect("by hash"),
        Some(old.clone())
    );
    assert_eq!(
        store.api_token_by_hash("hash-x").await.expect("by hash"),
        None
    );

    let used = t0 + chrono::Duration::minutes(30);
    store.touch_api_token(&old.id, used).await.expect("touch");
    assert_eq!(
        store
            .api_token_by_hash("hash-old")
            .await
            .expect("by hash")
            .and_then(|record| record.last_used_at),
        Some(used)
    );

    assert!(
        !store
            .revoke_api_token(&bo.id, &old.id, later)
            .await
            .expect("revoke"),
        "someone else's token is not revoked"
    );
    assert!(
        store
            .revoke_api_token(&ann.id, &old.id, later)
            .await
            .expect("revoke")
    );
    assert!(
        !store
            .revoke_api_token(&ann.id, &old.id, later)
            .await
            .expect("revoke"),
        "revoking twice reports nothing revoked"
    );
    assert!(
        !store
            .revoke_api_token(&ann.id, "no-such-token", later)
            .await
            .expect("revoke")
    );
    assert_eq!(
        store.api_token_by_hash("hash-old").await.expect("by hash"),
        None,
        "a revoked token no longer authenticates"
    );
    assert_eq!(
        store.api_tokens(&ann.id).await.expect("tokens"),
        [new],
        "revoked tokens are not listed"
    );
    assert_eq!(store.api_tokens(&bo.id).await.expect("tokens"), [bos]);

    // Ended sign-in sessions: known until their tokens expire, then dropped on the next insert.
    let (short, long, fresh) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    assert!(
        !store.session_revoked(&short).await.expect("revoked?"),
        "a session is live until revoked"
    );
    store
        .revoke_session(&short, &ann.id, t0 + chrono::Duration::hours(1), t0)
        .await
        .expect("revoke session");
    store
        .revoke_session(&long, &ann.id, t0 + chrono::Duration::days(7), t0)
        .await
        .expect("revoke session");
    assert!(store.session_revoked(&short).await.expect("revoked?"));
    assert!(store.session_revoked(&long).await.expect("revoked?"));
    store
        .revoke_session(&short, &ann.id, t0 + chrono::Duration::hours(1), t0)
        .await
        .expect("revoking twice is fine");
    assert!(
        !store.session_revoked(&fresh).await.expect("revoked?"),
        "only the revoked session is"
    );
    store
        .revoke_session(
            &fresh,
            "an-api-only-user",
            t0 + chrono::Duration::days(8),
            t0 + chrono::Duration::hours(2),
        )
        .await
        .expect("revoke a session of a user without an account");
    assert!(store.session_revoked(&fresh).await.expect("revoked?"));
    assert!(
        !store.session_revoked(&short).await.expect("revoked?"),
        "a session whose token expired is dropped when another is revoked"
    );
    assert!(
        store.session_revoked(&long).await.expect("revoked?"),
        "a session whose token is still valid is kept"
    );

    // Calendar feed tokens: one per user, found by hash, replaced by a new one, removable.
    let (first, second) = (
        format!("feed-{}", uuid::Uuid::new_v4()),
        format!("feed-{}", uuid::Uuid::new_v4()),
    );
    assert_eq!(store.feed_token_created(&ann.id).await.expect("feed"), None);
    assert_eq!(store.feed_token_user(&first).await.expect("feed"), None);
    store
        .set_feed_token(&ann.id, &first, t0)
        .await
        .expect("set feed");
    assert_eq!(
        store
            .feed_token_user(&first)
            .await
            .expect("feed")
            .as_deref(),
        Some(ann.id.as_str())
    );
    assert_eq!(
        store.feed_token_created(&ann.id).await.expect("feed"),
        Some(t0)
    );
    let later = t0 + chrono::Duration::minutes(5);
    store
        .set_feed_token(&ann.id, &second, later)
        .await
        .expect("rotate feed");
    assert_eq!(
        store.feed_token_user(&first).await.expect("feed"),
        None,
        "the old token is retired"
    );
    assert_eq!(
        store
            .feed_token_user(&second)
            .await
            .expect("feed")
            .as_deref(),
        Some(ann.id.as_str())
    );
    assert_eq!(
        store.feed_token_created(&ann.id).await.expect("feed"),
        Some(later)
    );
    assert_eq!(
        store
            .feed_token_created("somebody-else")
            .await
            .expect("feed"),
        None
    );
    assert!(
        !store
            .delete_feed_token("somebody-else")
            .await
            .expect("delete feed")
    );
    assert!(store.delete_feed_token(&ann.id).await.expect("delete feed"));
    assert_eq!(store.feed_token_user(&second).await.expect("feed"), None);
    assert!(
        !store
            .delete_feed_token(&ann.id)
            .await
            .expect("delete feed again")
    );
}
