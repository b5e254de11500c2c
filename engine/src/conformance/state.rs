//! The [`crate::ports::StateStore`] contract: what the consumers' idempotency marks rely on,
//! the same on redb (embedded) and on Dapr state (Redis behind a sidecar).

use std::time::{Duration, Instant};

use crate::ports::StateStore;

/// How long an expired entry may take to disappear: a Dapr TTL is whole seconds and Redis
/// expires lazily, so the check waits for it rather than asserting an exact instant.
const EXPIRY_PATIENCE: Duration = Duration::from_secs(15);

/// Runs every check against `store`. Keys are unique to the run, so a shared store is fine.
pub async fn state_store_suite<S: StateStore + ?Sized>(store: &S) {
    let run = uuid::Uuid::new_v4();
    let key = |name: &str| format!("conformance-{run}:{name}");
    reads_writes_and_deletes(store, &key).await;
    any_bytes_round_trip(store, &key).await;
    get_many_answers_in_order(store, &key).await;
    set_if_absent_has_one_winner(store, &key).await;
    entries_expire_after_their_ttl(store, &key).await;
}

async fn reads_writes_and_deletes<S: StateStore + ?Sized>(store: &S, key: &dyn Fn(&str) -> String) {
    assert_eq!(store.get(&key("missing")).await.expect("get"), None);
    store
        .set(&key("a"), b"1".to_vec(), None)
        .await
        .expect("set");
    assert_eq!(
        store.get(&key("a")).await.expect("get"),
        Some(b"1".to_vec())
    );
    store
        .set(&key("a"), b"2".to_vec(), Some(Duration::from_secs(3600)))
        .await
        .expect("overwrite");
    assert_eq!(
        store.get(&key("a")).await.expect("get"),
        Some(b"2".to_vec()),
        "set replaces the value"
    );
    store.delete(&key("a")).await.expect("delete");
    store
        .delete(&key("never-was"))
        .await
        .expect("deleting an absent key is fine");
    assert_eq!(store.get(&key("a")).await.expect("get"), None);
}

async fn any_bytes_round_trip<S: StateStore + ?Sized>(store: &S, key: &dyn Fn(&str) -> String) {
    let values: [Vec<u8>; 5] = [
        b"plain text".to_vec(),
        vec![0, 255, 7, 128],
        br#"{"event_id":"e1","processed_at":"2030-01-01T00:00:00Z"}"#.to_vec(),
        br#"{ "b": 1, "a": 2 }"#.to_vec(),
        Vec::new(),
    ];
    for (index, value) in values.into_iter().enumerate() {
        let name = key(&format!("bytes-{index}"));
        store.set(&name, value.clone(), None).await.expect("set");
        assert_eq!(
            store.get(&name).await.expect("get"),
            Some(value.clone()),
            "value {index} reads back byte for byte"
        );
    }
}

async fn get_many_answers_in_order<S: StateStore + ?Sized>(
    store: &S,
    key: &dyn Fn(&str) -> String,
) {
    store
        .set(&key("m1"), b"one".to_vec(), None)
        .await
        .expect("set");
    store
        .set(&key("m3"), b"three".to_vec(), None)
        .await
        .expect("set");
    let keys = vec![key("m3"), key("m2"), key("m1")];
    assert_eq!(
        store.get_many(&keys).await.expect("get_many"),
        vec![Some(b"three".to_vec()), None, Some(b"one".to_vec())],
        "in the order asked, a missing key as None"
    );
    assert!(store.get_many(&[]).await.expect("empty").is_empty());
}

async fn set_if_absent_has_one_winner<S: StateStore + ?Sized>(
    store: &S,
    key: &dyn Fn(&str) -> String,
) {
    let name = key("once");
    let ttl = Some(Duration::from_secs(86_400));
    assert!(
        store
            .set_if_absent(&name, b"first".to_vec(), ttl)
            .await
            .expect("first")
    );
    assert!(
        !store
            .set_if_absent(&name, b"second".to_vec(), ttl)
            .await
            .expect("second")
    );
    assert_eq!(
        store.get(&name).await.expect("get"),
        Some(b"first".to_vec()),
        "the loser does not overwrite"
    );
    store.delete(&name).await.expect("delete");
    assert!(
        store
            .set_if_absent(&name, b"again".to_vec(), ttl)
            .await
            .expect("after delete"),
        "a deleted key can be won again"
    );

    let race = key("race");
    let attempts = (0..16u8).map(|caller| store.set_if_absent(&race, vec![caller], ttl));
    let winners = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|won| won.expect("set_if_absent"))
        .filter(|won| *won)
        .count();
    assert_eq!(winners, 1, "exactly one of 16 concurrent callers wins");
}

async fn entries_expire_after_their_ttl<S: StateStore + ?Sized>(
    store: &S,
    key: &dyn Fn(&str) -> String,
) {
    let short = key("short");
    let kept = key("kept");
    store
        .set(&short, b"x".to_vec(), Some(Duration::from_secs(1)))
        .await
        .expect("set with ttl");
    store.set(&kept, b"y".to_vec(), None).await.expect("set");
    let deadline = Instant::now() + EXPIRY_PATIENCE;
    while store.get(&short).await.expect("get").is_some() {
        assert!(
            Instant::now() < deadline,
            "an entry with a 1 s TTL was still there after {EXPIRY_PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        store
            .set_if_absent(&short, b"z".to_vec(), None)
            .await
            .expect("set_if_absent"),
        "an expired entry counts as absent"
    );
    store.purge_expired().await.expect("purge");
    assert_eq!(store.get(&kept).await.expect("get"), Some(b"y".to_vec()));
}
