//! Local user accounts for the built-in web UI and scripts: argon2id password hashes, log-in
//! with a failure limit, and personal API tokens (`tsk_…`, stored only as keyed hashes).
//!
//! An account's id (a UUID v7) is the `sub` of its JWTs and the `user_id` of its tasks, so
//! accounts share the identity model of the external frontend's tokens.

mod credentials;
mod limiter;
mod token;

use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use ring::rand::SystemRandom;

use crate::error::EngineError;
use crate::ports::{AccountStore, LoginAttempts};

pub use credentials::{
    EMAIL_MAX_BYTES, PASSWORD_MAX_BYTES, PASSWORD_MIN_BYTES, check_password, normalize_email,
};
pub use limiter::{CLIENT_LIMIT, EMAIL_LIMIT, LoginLimiter, WINDOW as ATTEMPT_WINDOW};
pub use token::{TOKEN_LEN, TOKEN_PREFIX};

/// Longest personal token name, in characters.
pub const TOKEN_NAME_MAX_CHARS: usize = 100;
/// `last_used_at` of a token is written at most this often.
const TOUCH_EVERY: chrono::Duration = chrono::Duration::minutes(1);

/// A local account as callers see it (never with its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// UUID v7; the JWT `sub` and the `user_id` of the account's tasks.
    pub id: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

/// A personal API token as lists show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenInfo {
    pub id: String,
    pub name: String,
    /// The token's first characters (`tsk_ab12`), so the user can tell tokens apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A token just created: the only time its secret is known.
#[derive(Clone, PartialEq, Eq)]
pub struct NewApiToken {
    pub info: ApiTokenInfo,
    /// `tsk_` + 43 base64url characters (32 random bytes); shown once.
    pub secret: String,
}

impl std::fmt::Debug for NewApiToken {
    /// Keeps the secret out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiToken")
            .field("info", &self.info)
            .field("secret", &"<hidden>")
            .finish()
    }
}

/// Who may create an account through [`AccountService::sign_up`] (the CLI always may).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignupPolicy {
    /// Anyone who reaches the server.
    Open,
    /// Only while there is no account yet: the first visitor becomes the owner.
    #[default]
    FirstOnly,
    /// Nobody; accounts come from `taskstream user add`.
    Closed,
}

impl SignupPolicy {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SignupPolicy::Open => "open",
            SignupPolicy::FirstOnly => "first-only",
            SignupPolicy::Closed => "closed",
        }
    }
}

impl FromStr for SignupPolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "open" => Ok(SignupPolicy::Open),
            "first-only" => Ok(SignupPolicy::FirstOnly),
            "closed" => Ok(SignupPolicy::Closed),
            other => Err(format!(
                "unknown sign-up policy {other:?}: use open, first-only or closed"
            )),
        }
    }
}

/// What can go wrong with accounts, in words a user can be shown.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("Invalid email address")]
    InvalidEmail,
    /// Says which rule the password broke.
    #[error("{0}")]
    WeakPassword(String),
    #[error("An account with this email already exists")]
    EmailTaken,
    /// Wrong password or unknown email: deliberately the same answer.
    #[error("Invalid email or password")]
    InvalidCredentials,
    #[error("Too many attempts, try again later")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("Sign-up is closed")]
    SignupClosed,
    #[error("Account not found")]
    NotFound,
    /// A personal token name outside 1..=100 characters.
    #[error("Token name must be 1 to 100 characters")]
    InvalidTokenName,
    #[error(transparent)]
    Store(#[from] EngineError),
}

/// An account row as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub id: String,
    /// Normalised (trimmed, lower-case); unique.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AccountRecord {
    pub fn account(&self) -> Account {
        Account {
            id: self.id.clone(),
            email: self.email.clone(),
            created_at: self.created_at,
        }
    }
}

/// How [`AccountStore::insert_account`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountInsert {
    Created,
    /// Another account has the email.
    EmailTaken,
    /// `only_first` was asked and an account already exists.
    NotFirst,
}

/// A personal token row as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRecord {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub prefix: String,
    /// Hex HMAC-SHA256 of the secret; unique.
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiTokenRecord {
    pub fn info(&self) -> ApiTokenInfo {
        ApiTokenInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            prefix: self.prefix.clone(),
            created_at: self.created_at,
            last_used_at: self.last_used_at,
        }
    }
}

/// Accounts, log-in and personal tokens; cheap to clone.
#[derive(Clone)]
pub struct AccountService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn AccountStore>,
    token_key: token::TokenKey,
    policy: SignupPolicy,
    limiter: Arc<dyn LoginAttempts>,
    random: SystemRandom,
    /// A real hash of a random password, verified against when the email is unknown so that
    /// the answer takes as long as for a known one. Made on first use.
    dummy_hash: Arc<OnceLock<String>>,
    /// Permits for password hashing: each argon2 hash holds 19 MiB while it runs, so a burst
    /// of sign-ins must queue rather than run hundreds at once.
    hashing: tokio::sync::Semaphore,
}

/// Password hashes computed at once: one per core (at least two), since each is CPU-bound.
fn hashing_permits() -> usize {
    std::thread::available_parallelism().map_or(2, |cores| cores.get().max(2))
}

/// Runs CPU-heavy argon2 work off the async runtime, at most `hashing_permits()` at a time.
async fn blocking<T: Send + 'static>(
    permits: &tokio::sync::Semaphore,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AccountError> {
    let _permit = permits.acquire().await.map_err(|_| {
        AccountError::from(EngineError::Unavailable(
            "password hashing is shutting down".to_owned(),
        ))
    })?;
    tokio::task::spawn_blocking(work).await.map_err(|error| {
        EngineError::Store(format!("password hashing task failed: {error}")).into()
    })
}

fn now() -> DateTime<Utc> {
    crate::time::now()
}

impl AccountService {
    /// `token_key_material` is the JWT secret; the token-hash key is derived from it, so
    /// changing the secret also invalidates every personal token.
    pub fn new(
        store: Arc<dyn AccountStore>,
        token_key_material: &[u8],
        policy: SignupPolicy,
    ) -> Self {
        Self::with_login_attempts(
            store,
            token_key_material,
            policy,
            Arc::new(limiter::LoginLimiter::default()),
        )
    }

    /// [`AccountService::new`] counting failed log-ins in `attempts` (shared by replicas)
    /// instead of in this process's memory.
    pub fn with_login_attempts(
        store: Arc<dyn AccountStore>,
        token_key_material: &[u8],
        policy: SignupPolicy,
        attempts: Arc<dyn LoginAttempts>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                token_key: token::TokenKey::derive(token_key_material),
                policy,
                limiter: attempts,
                random: SystemRandom::new(),
                dummy_hash: Arc::new(OnceLock::new()),
                hashing: tokio::sync::Semaphore::new(hashing_permits()),
            }),
        }
    }

    /// The configured sign-up policy.
    pub fn policy(&self) -> SignupPolicy {
        self.inner.policy
    }

    /// Whether [`AccountService::sign_up`] would accept a new account now.
    pub async fn signup_open(&self) -> Result<bool, AccountError> {
        Ok(match self.inner.policy {
            SignupPolicy::Open => true,
            SignupPolicy::Closed => false,
            SignupPolicy::FirstOnly => self.inner.store.account_count().await? == 0,
        })
    }

    /// Creates an account if the sign-up policy allows it.
    pub async fn sign_up(&self, email: &str, password: &str) -> Result<Account, AccountError> {
        if !self.signup_open().await? {
            return Err(AccountError::SignupClosed);
        }
        let only_first = self.inner.policy == SignupPolicy::FirstOnly;
        self.insert(email, password, only_first).await
    }

    /// Creates an account whatever the sign-up policy (`taskstream user add`).
    pub async fn create_account(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Account, AccountError> {
        self.insert(email, password, false).await
    }

    async fn insert(
        &self,
        email: &str,
        password: &str,
        only_first: bool,
    ) -> Result<Account, AccountError> {
        let email = normalize_email(email)?;
        check_password(password)?;
        let password = password.to_owned();
        let password_hash = blocking(&self.inner.hashing, move || {
            credentials::hash_password(&password)
        })
        .await??;
        let at = now();
        let record = AccountRecord {
            id: uuid::Uuid::now_v7().to_string(),
            email,
            password_hash,
            created_at: at,
            updated_at: at,
        };
        match self.inner.store.insert_account(&record, only_first).await? {
            AccountInsert::Created => {
                tracing::info!(account = %record.id, "account created");
                Ok(record.account())
            }
            AccountInsert::EmailTaken => Err(AccountError::EmailTaken),
            AccountInsert::NotFirst => Err(AccountError::SignupClosed),
        }
    }

    /// Checks an email and password. After [`EMAIL_LIMIT`] failures for one email, or
    /// [`CLIENT_LIMIT`] from one `client` address ("" when unknown), within
    /// [`ATTEMPT_WINDOW`], answers `TooManyAttempts` without checking. An unknown email costs
    /// the same hashing work as a known one.
    pub async fn log_in(
        &self,
        email: &str,
        password: &str,
        client: &str,
    ) -> Result<Account, AccountError> {
        let key = email.trim().to_lowercase();
        let limiter = &self.inner.limiter;
        if let Some(retry_after_secs) = limiter.blocked_for(&key, client).await? {
            tracing::info!(client, "log-in refused: too many failed attempts");
            return Err(AccountError::TooManyAttempts { retry_after_secs });
        }
        let record = match normalize_email(email) {
            Ok(email) => self.inner.store.account_by_email(&email).await?,
            Err(_) => None,
        };
        let password = password.to_owned();
        let known_hash = record.as_ref().map(|record| record.password_hash.clone());
        let dummy = Arc::clone(&self.inner.dummy_hash);
        let matches = blocking(&self.inner.hashing, move || match known_hash {
            Some(hash) => credentials::verify_password(&password, &hash),
            None => {
                let hash = dummy.get_or_init(|| {
                    credentials::hash_password("not a real password, only for timing")
                        .unwrap_or_default()
                });
                // The result is ignored: only the time it takes matters.
                let _ = credentials::verify_password(&password, hash);
                false
            }
        })
        .await?;
        match record {
            Some(record) if matches => {
                if let Err(error) = limiter.succeeded(&key).await {
                    tracing::warn!(%error, "could not clear the failed log-ins of an account");
                }
                Ok(record.account())
            }
            _ => {
                if let Err(error) = limiter.failed(&key, client).await {
                    tracing::warn!(%error, "could not count a failed log-in");
                }
                tracing::info!(client, "log-in failed");
                Err(AccountError::InvalidCredentials)
            }
        }
    }

    /// Replaces the password after checking the current one (`InvalidCredentials` if wrong).
    pub async fn change_password(
        &self,
        user_id: &str,
        current: &str,
        new: &str,
    ) -> Result<(), AccountError> {
        let record = self
            .inner
            .store
            .account_by_id(user_id)
            .await?
            .ok_or(AccountError::NotFound)?;
        check_password(new)?;
        let (current, new) = (current.to_owned(), new.to_owned());
        let old_hash = record.password_hash.clone();
        let new_hash = blocking(&self.inner.hashing, move || {
            if credentials::verify_password(&current, &old_hash) {
                credentials::hash_password(&new).map(Some)
            } else {
                Ok(None)
            }
        })
        .await??
        .ok_or(AccountError::InvalidCredentials)?;
        if !self
            .inner
            .store
            .set_password_hash(user_id, &new_hash, now())
            .await?
        {
            return Err(AccountError::NotFound);
        }
        tracing::info!(account = %user_id, "password changed");
        Ok(())
    }

    pub async fn account(&self, user_id: &str) -> Result<Option<Account>, AccountError> {
        Ok(self
            .inner
            .store
            .account_by_id(user_id)
            .await?
            .map(|record| record.account()))
    }

    pub async fn account_count(&self) -> Result<u64, AccountError> {
        Ok(self.inner.store.account_count().await?)
    }

    /// Every account, oldest first (`taskstream user list`).
    pub async fn accounts(&self) -> Result<Vec<Account>, AccountError> {
        Ok(self
            .inner
            .store
            .list_accounts()
            .await?
            .iter()
            .map(AccountRecord::account)
            .collect())
    }

    /// Creates a personal token named `name` (1..=100 characters, trimmed).
    pub async fn create_api_token(
        &self,
        user_id: &str,
        name: &str,
    ) -> Result<NewApiToken, AccountError> {
        let name = name.trim();
        let length = name.chars().count();
        if length == 0 || length > TOKEN_NAME_MAX_CHARS || name.chars().any(char::is_control) {
            return Err(AccountError::InvalidTokenName);
        }
        if self.inner.store.account_by_id(user_id).await?.is_none() {
            return Err(AccountError::NotFound);
        }
        let secret = token::generate(&self.inner.random)?;
        let record = ApiTokenRecord {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user_id.to_owned(),
            name: name.to_owned(),
            prefix: secret[..token::SHOWN_PREFIX_LEN].to_owned(),
            token_hash: self.inner.token_key.hash(&secret),
            created_at: now(),
            last_used_at: None,
            revoked_at: None,
        };
        self.inner.store.insert_api_token(&record).await?;
        tracing::info!(account = %user_id, token = %record.id, "personal token created");
        Ok(NewApiToken {
            info: record.info(),
            secret,
        })
    }

    /// The user's tokens that are not revoked, newest first.
    pub async fn api_tokens(&self, user_id: &str) -> Result<Vec<ApiTokenInfo>, AccountError> {
        Ok(self
            .inner
            .store
            .api_tokens(user_id)
            .await?
            .iter()
            .map(ApiTokenRecord::info)
            .collect())
    }

    /// Revokes one of the user's tokens; false when there is no such live token of theirs.
    pub async fn revoke_api_token(
        &self,
        user_id: &str,
        token_id: &str,
    ) -> Result<bool, AccountError> {
        let revoked = self
            .inner
            .store
            .revoke_api_token(user_id, token_id, now())
            .await?;
        if revoked {
            tracing::info!(account = %user_id, token = %token_id, "personal token revoked");
        }
        Ok(revoked)
    }

    /// Ends the sign-in session `session_id` of `user_id`: tokens carrying it are refused from
    /// now on, though they have not expired (`expires_at`).
    pub async fn revoke_session(
        &self,
        session_id: &str,
        user_id: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), AccountError> {
        self.inner
            .store
            .revoke_session(session_id, user_id, expires_at, now())
            .await?;
        tracing::info!(account = %user_id, "session ended");
        Ok(())
    }

    /// Whether the sign-in session `session_id` was ended.
    pub async fn session_revoked(&self, session_id: &str) -> Result<bool, AccountError> {
        Ok(self.inner.store.session_revoked(session_id).await?)
    }

    /// A new calendar feed token for `user_id` (any user, with or without a local account),
    /// shown once; the one before stops working. Only its keyed hash is stored.
    pub async fn rotate_feed_token(
        &self,
        user_id: &str,
    ) -> Result<(String, DateTime<Utc>), AccountError> {
        let secret = token::generate_feed(&self.inner.random)?;
        let created = now();
        self.inner
            .store
            .set_feed_token(user_id, &self.inner.token_key.hash(&secret), created)
            .await?;
        tracing::info!(account = %user_id, "calendar feed token created");
        Ok((secret, created))
    }

    /// When the user's calendar feed token was made, if they have one.
    pub async fn feed_token_created(
        &self,
        user_id: &str,
    ) -> Result<Option<DateTime<Utc>>, AccountError> {
        Ok(self.inner.store.feed_token_created(user_id).await?)
    }

    /// Turns the user's calendar feed off; false when it was not on.
    pub async fn revoke_feed_token(&self, user_id: &str) -> Result<bool, AccountError> {
        let revoked = self.inner.store.delete_feed_token(user_id).await?;
        if revoked {
            tracing::info!(account = %user_id, "calendar feed token revoked");
        }
        Ok(revoked)
    }

    /// The user a calendar feed token belongs to; `None` for anything else.
    pub async fn feed_user(&self, secret: &str) -> Result<Option<String>, AccountError> {
        if !token::feed_well_formed(secret) {
            return Ok(None);
        }
        let hash = self.inner.token_key.hash(secret);
        Ok(self.inner.store.feed_token_user(&hash).await?)
    }

    /// The user id a live personal token belongs to; `None` for anything else. Records the use
    /// (at most once a minute per token).
    pub async fn verify_api_token(&self, secret: &str) -> Result<Option<String>, AccountError> {
        if !token::well_formed(secret) {
            return Ok(None);
        }
        let hash = self.inner.token_key.hash(secret);
        let Some(record) = self.inner.store.api_token_by_hash(&hash).await? else {
            return Ok(None);
        };
        let at = now();
        if record
            .last_used_at
            .is_none_or(|last| at.signed_duration_since(last) >= TOUCH_EVERY)
        {
            self.inner.store.touch_api_token(&record.id, at).await?;
        }
        Ok(Some(record.user_id))
    }
}

#[cfg(test)]
mod tests;
