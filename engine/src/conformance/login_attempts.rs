//! The [`crate::ports::LoginAttempts`] contract.

/// The failed log-in limits as every [`crate::ports::LoginAttempts`] must count them: the
/// in-memory one of a single process and the one replicas share.
pub async fn login_attempts_suite<S: crate::ports::LoginAttempts + ?Sized>(attempts: &S) {
    use crate::accounts::{ATTEMPT_WINDOW, CLIENT_LIMIT, EMAIL_LIMIT};
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (email, other, client) = (
        format!("guessed-{run}@example.com"),
        format!("other-{run}@example.com"),
        format!("203.0.113.{}", run.len()),
    );
    for _ in 0..EMAIL_LIMIT - 1 {
        attempts.failed(&email, "").await.expect("count");
    }
    assert_eq!(
        attempts.blocked_for(&email, "").await.expect("check"),
        None,
        "one failure short of the limit"
    );
    attempts.failed(&email, "").await.expect("count");
    let wait = attempts
        .blocked_for(&email, "")
        .await
        .expect("check")
        .expect("blocked at the limit");
    assert!(
        (1..=ATTEMPT_WINDOW.as_secs()).contains(&wait),
        "waits until the oldest failure leaves the window: {wait}"
    );
    assert_eq!(
        attempts.blocked_for(&other, "").await.expect("check"),
        None,
        "another email is not affected"
    );
    attempts.succeeded(&email).await.expect("clear");
    assert_eq!(
        attempts.blocked_for(&email, "").await.expect("check"),
        None,
        "a successful log-in clears the email's failures"
    );

    // One client guessing many emails is stopped too, and a success does not clear it.
    for n in 0..CLIENT_LIMIT {
        attempts
            .failed(&format!("{n}-{other}"), &client)
            .await
            .expect("count");
    }
    attempts.succeeded(&other).await.expect("clear");
    assert!(
        attempts
            .blocked_for(&format!("fresh-{run}@example.com"), &client)
            .await
            .expect("check")
            .is_some(),
        "the client used up its failures"
    );
    assert_eq!(
        attempts
            .blocked_for(&format!("fresh-{run}@example.com"), "")
            .await
            .expect("check"),
        None,
        "the same email from an unknown client may try"
    );
}
