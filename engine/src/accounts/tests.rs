#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::embedded::SqliteTaskStore;

fn service(dir: &tempfile::TempDir, key: &[u8], policy: SignupPolicy) -> AccountService {
    let store = SqliteTaskStore::open(&dir.path().join("tasks.db")).expect("open");
    AccountService::new(Arc::new(store), key, policy)
}

#[test]
fn signup_policies_parse_from_their_config_spelling() {
    assert_eq!("open".parse(), Ok(SignupPolicy::Open));
    assert_eq!("First-Only".parse(), Ok(SignupPolicy::FirstOnly));
    assert_eq!("closed".parse(), Ok(SignupPolicy::Closed));
    assert!("sometimes".parse::<SignupPolicy>().is_err());
    assert_eq!(SignupPolicy::default(), SignupPolicy::FirstOnly);
    for policy in [
        SignupPolicy::Open,
        SignupPolicy::FirstOnly,
        SignupPolicy::Closed,
    ] {
        assert_eq!(policy.as_str().parse(), Ok(policy));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_only_lets_exactly_one_visitor_sign_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = service(&dir, b"key", SignupPolicy::FirstOnly);
    assert!(accounts.signup_open().await.expect("open?"));
    let ann = accounts
        .sign_up(" Ann@Example.com ", "correct horse")
        .await
        .expect("first sign-up");
    assert_eq!(ann.email, "ann@example.com");
    assert!(uuid::Uuid::parse_str(&ann.id).is_ok_and(|id| id.get_version_num() == 7));
    assert!(!accounts.signup_open().await.expect("open?"));
    assert!(matches!(
        accounts.sign_up("bo@example.com", "correct horse").await,
        Err(AccountError::SignupClosed)
    ));
    // The CLI path ignores the policy, but not uniqueness.
    accounts
        .create_account("bo@example.com", "correct horse")
        .await
        .expect("cli");
    assert!(matches!(
        accounts
            .create_account("ANN@example.com", "another one")
            .await,
        Err(AccountError::EmailTaken)
    ));
    assert_eq!(accounts.account_count().await.expect("count"), 2);
    assert_eq!(
        accounts.account(&ann.id).await.expect("account"),
        Some(ann.clone())
    );
    assert_eq!(accounts.accounts().await.expect("list")[0], ann);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_and_closed_policies_and_input_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = service(&dir, b"key", SignupPolicy::Open);
    open.sign_up("a@example.com", "password1").await.expect("a");
    open.sign_up("b@example.com", "password1").await.expect("b");
    assert!(matches!(
        open.sign_up("not-an-email", "password1").await,
        Err(AccountError::InvalidEmail)
    ));
    assert!(matches!(
        open.sign_up("c@example.com", "short").await,
        Err(AccountError::WeakPassword(_))
    ));
    let other = tempfile::tempdir().expect("tempdir");
    let closed = service(&other, b"key", SignupPolicy::Closed);
    assert!(!closed.signup_open().await.expect("open?"));
    assert!(matches!(
        closed.sign_up("a@example.com", "password1").await,
        Err(AccountError::SignupClosed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_checks_the_password_and_limits_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = service(&dir, b"key", SignupPolicy::Open);
    let ann = accounts
        .create_account("ann@example.com", "correct horse")
        .await
        .expect("create");
    let ok = accounts
        .log_in("ANN@example.com ", "correct horse", "10.0.0.1")
        .await
        .expect("log in");
    assert_eq!(ok.id, ann.id);
    assert!(matches!(
        accounts
            .log_in("nobody@example.com", "correct horse", "10.0.0.1")
            .await,
        Err(AccountError::InvalidCredentials)
    ));
    for _ in 0..EMAIL_LIMIT {
        assert!(matches!(
            accounts
                .log_in("ann@example.com", "wrong horse", "10.0.0.2")
                .await,
            Err(AccountError::InvalidCredentials)
        ));
    }
    match accounts
        .log_in("ann@example.com", "correct horse", "10.0.0.3")
        .await
    {
        Err(AccountError::TooManyAttempts { retry_after_secs }) => {
            assert!(
                (1..=15 * 60).contains(&retry_after_secs),
                "{retry_after_secs}"
            );
        }
        other => panic!("expected TooManyAttempts, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_log_in_clears_the_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = service(&dir, b"key", SignupPolicy::Open);
    accounts
        .create_account("ann@example.com", "correct horse")
        .await
        .expect("create");
    for round in 0..2 {
        for _ in 0..EMAIL_LIMIT - 1 {
            assert!(
                accounts
                    .log_in("ann@example.com", "wrong", "")
                    .await
                    .is_err(),
                "round {round}"
            );
        }
        accounts
            .log_in("ann@example.com", "correct horse", "")
            .await
            .expect("still allowed: the counter restarted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_password_needs_the_current_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = service(&dir, b"key", SignupPolicy::Open);
    let ann = accounts
        .create_account("ann@example.com", "correct horse")
        .await
        .expect("create");
    assert!(matches!(
        accounts
            .change_password(&ann.id, "wrong", "battery staple")
            .await,
        Err(AccountError::InvalidCredentials)
    ));
    assert!(matches!(
        accounts
            .change_password(&ann.id, "correct horse", "short")
            .await,
        Err(AccountError::WeakPassword(_))
    ));
    assert!(matches!(
        accounts
            .change_password("nobody", "correct horse", "battery staple")
            .await,
        Err(AccountError::NotFound)
    ));
    accounts
        .change_password(&ann.id, "correct horse", "battery staple")
        .await
        .expect("change");
    assert!(
        accounts
            .log_in("ann@example.com", "correct horse", "")
            .await
            .is_err()
    );
    accounts
        .log_in("ann@example.com", "battery staple", "")
        .await
        .expect("new password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_tokens_verify_until_revoked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = service(&dir, b"the jwt secret", SignupPolicy::Open);
    let ann = accounts
        .create_account("ann@example.com", "correct horse")
        .await
        .expect("create");
    let bo = accounts
        .create_account("bo@example.com", "correct horse")
        .await
        .expect("create");
    let created = accounts
        .create_api_token(&ann.id, "  laptop  ")
        .await
        .expect("token");
    assert_eq!(created.info.name, "laptop");
    assert_eq!(created.secret.len(), TOKEN_LEN);
    assert_eq!(created.info.prefix, created.secret[..8]);
    assert!(!format!("{created:?}").contains(&created.secret));
    assert_eq!(created.info.last_used_at, None);

    assert_eq!(
        accounts
            .verify_api_token(&created.secret)
            .await
            .expect("verify"),
        Some(ann.id.clone())
    );
    let listed = accounts.api_tokens(&ann.id).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some(), "use recorded");
    assert!(accounts.api_tokens(&bo.id).await.expect("list").is_empty());

    // Same store, another JWT secret: the derived key differs, so the token is unknown.
    let rekeyed = AccountService::new(
        Arc::clone(&accounts.inner.store),
        b"another secret",
        SignupPolicy::Open,
    );
    assert_eq!(
        rekeyed
            .verify_api_token(&created.secret)
            .await
            .expect("verify"),
        None
    );
    let forged = format!("tsk_{}", "A".repeat(43));
    assert_eq!(
        accounts.verify_api_token(&forged).await.expect("verify"),
        None
    );
    assert_eq!(
        accounts.verify_api_token("tsk_").await.expect("verify"),
        None
    );

    assert!(
        !accounts
            .revoke_api_token(&bo.id, &created.info.id)
            .await
            .expect("revoke"),
        "not bo's token"
    );
    assert!(
        accounts
            .revoke_api_token(&ann.id, &created.info.id)
            .await
            .expect("revoke")
    );
    assert_eq!(
        accounts
            .verify_api_token(&created.secret)
            .await
            .expect("verify"),
        None
    );
    assert!(accounts.api_tokens(&ann.id).await.expect("list").is_empty());

    for bad in ["", "   ", &"x".repeat(TOKEN_NAME_MAX_CHARS + 1)] {
        assert!(matches!(
            accounts.create_api_token(&ann.id, bad).await,
            Err(AccountError::InvalidTokenName)
        ));
    }
    assert!(
        accounts
            .create_api_token(&ann.id, &"é".repeat(TOKEN_NAME_MAX_CHARS))
            .await
            .is_ok(),
        "the limit counts characters"
    );
    assert!(matches!(
        accounts.create_api_token("nobody", "x").await,
        Err(AccountError::NotFound)
    ));
}
