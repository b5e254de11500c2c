//! In-memory limit on failed log-ins: a sliding window per email and per client address, so
//! password guessing costs the attacker time while a user who mistypes twice notices nothing.
//! Kept per process: the embedded shape's [`LoginAttempts`]; cluster replicas share theirs in
//! PostgreSQL.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::EngineError;
use crate::ports::LoginAttempts;

/// How long a failure counts.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures for one email within [`WINDOW`] before further attempts are refused.
pub const EMAIL_LIMIT: usize = 5;
/// Failures from one client within [`WINDOW`] before further attempts are refused.
pub const CLIENT_LIMIT: usize = 20;
/// Keys remembered per kind; beyond it the stalest go, so a flood of made-up emails cannot
/// grow memory without bound.
const MAX_KEYS: usize = 50_000;

#[derive(Default)]
struct Failures {
    by_email: HashMap<String, VecDeque<Instant>>,
    by_client: HashMap<String, VecDeque<Instant>>,
}

/// Counts recent failures; see the module docs.
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<Failures>,
}

/// Drops failures older than the window; how long until the oldest one left expires when
/// `limit` of them remain, else `None`.
fn blocked_for(times: &mut VecDeque<Instant>, limit: usize, now: Instant) -> Option<Duration> {
    while times
        .front()
        .is_some_and(|first| now.saturating_duration_since(*first) >= WINDOW)
    {
        times.pop_front();
    }
    if times.len() < limit {
        return None;
    }
    let oldest = *times.front()?;
    Some(WINDOW.saturating_sub(now.saturating_duration_since(oldest)))
}

fn record(map: &mut HashMap<String, VecDeque<Instant>>, key: &str, limit: usize, now: Instant) {
    if !map.contains_key(key) && map.len() >= MAX_KEYS {
        map.retain(|_, times| {
            times
                .back()
                .is_some_and(|last| now.saturating_duration_since(*last) < WINDOW)
        });
        if map.len() >= MAX_KEYS {
            let stalest = map
                .iter()
                .min_by_key(|(_, times)| times.back().copied())
                .map(|(key, _)| key.clone());
            if let Some(stalest) = stalest {
                map.remove(&stalest);
            }
        }
    }
    let times = map.entry(key.to_owned()).or_default();
    if times.len() >= limit {
        times.pop_front();
    }
    times.push_back(now);
}

/// Whole seconds to wait, rounded up, at least one.
fn seconds(wait: Duration) -> u64 {
    let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    whole.max(1)
}

#[async_trait::async_trait]
impl LoginAttempts for LoginLimiter {
    async fn blocked_for(&self, email: &str, client: &str) -> Result<Option<u64>, EngineError> {
        Ok(self.check(email, client, Instant::now()).err())
    }

    async fn failed(&self, email: &str, client: &str) -> Result<(), EngineError> {
        LoginLimiter::failed(self, email, client, Instant::now());
        Ok(())
    }

    async fn succeeded(&self, email: &str) -> Result<(), EngineError> {
        LoginLimiter::succeeded(self, email);
        Ok(())
    }
}

impl LoginLimiter {
    /// `Err(retry_after_secs)` when `email` or `client` ("" for unknown) used up its failures.
    pub(crate) fn check(&self, email: &str, client: &str, now: Instant) -> Result<(), u64> {
        let Ok(mut failures) = self.failures.lock() else {
            return Ok(());
        };
        let by_email = failures
            .by_email
            .get_mut(email)
            .and_then(|times| blocked_for(times, EMAIL_LIMIT, now));
        let by_client = if client.is_empty() {
            None
        } else {
            failures
                .by_client
                .get_mut(client)
                .and_then(|times| blocked_for(times, CLIENT_LIMIT, now))
        };
        match by_email.max(by_client) {
            Some(wait) => Err(seconds(wait)),
            None => Ok(()),
        }
    }

    /// Counts one failed attempt.
    pub(crate) fn failed(&self, email: &str, client: &str, now: Instant) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        record(&mut failures.by_email, email, EMAIL_LIMIT, now);
        if !client.is_empty() {
            record(&mut failures.by_client, client, CLIENT_LIMIT, now);
        }
    }

    /// Forgets the email's failures after a successful log-in (the client's stay).
    pub(crate) fn succeeded(&self, email: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.by_email.remove(email);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn counts_as_every_login_attempts_store_must() {
        crate::conformance::login_attempts_suite(&LoginLimiter::default()).await;
    }

    #[test]
    fn the_sixth_attempt_for_an_email_waits_until_the_first_failure_expires() {
        let limiter = LoginLimiter::default();
        let start = Instant::now();
        for i in 0..EMAIL_LIMIT {
            let at = start + MINUTE * i as u32;
            assert_eq!(limiter.check("ann@x.io", "10.0.0.1", at), Ok(()));
            limiter.failed("ann@x.io", "10.0.0.1", at);
        }
        let sixth = start + MINUTE * 5;
        assert_eq!(
            limiter.check("ann@x.io", "10.0.0.1", sixth),
            Err(10 * 60),
            "the first failure (at 0) expires at 15 min"
        );
        assert_eq!(
            limiter.check("ann@x.io", "10.0.0.2", sixth),
            Err(10 * 60),
            "another address does not help"
        );
        assert_eq!(limiter.check("bo@x.io", "10.0.0.1", sixth), Ok(()));
        assert_eq!(
            limiter.check("ann@x.io", "10.0.0.1", start + WINDOW),
            Ok(())
        );
    }

    #[test]
    fn a_client_is_limited_across_emails_and_success_clears_only_the_email() {
        let limiter = LoginLimiter::default();
        let now = Instant::now();
        for i in 0..CLIENT_LIMIT {
            let email = format!("user{i}@x.io");
            assert_eq!(limiter.check(&email, "10.0.0.9", now), Ok(()));
            limiter.failed(&email, "10.0.0.9", now);
        }
        assert_eq!(limiter.check("new@x.io", "10.0.0.9", now), Err(15 * 60));
        assert_eq!(limiter.check("new@x.io", "10.0.0.8", now), Ok(()));
        // Unknown client address: only the email counts.
        assert_eq!(limiter.check("new@x.io", "", now), Ok(()));

        for _ in 0..EMAIL_LIMIT - 1 {
            limiter.failed("cy@x.io", "", now);
        }
        limiter.succeeded("cy@x.io");
        limiter.failed("cy@x.io", "", now);
        assert_eq!(
            limiter.check("cy@x.io", "", now),
            Ok(()),
            "counter restarted"
        );
    }

    #[test]
    fn retry_after_rounds_up_to_a_whole_second() {
        assert_eq!(seconds(Duration::from_millis(1)), 1);
        assert_eq!(seconds(Duration::from_millis(1500)), 2);
        assert_eq!(seconds(Duration::from_secs(3)), 3);
        assert_eq!(seconds(Duration::ZERO), 1);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_emails() {
        let limiter = LoginLimiter::default();
        let now = Instant::now();
        for i in 0..MAX_KEYS + 10 {
            limiter.failed(&format!("u{i}@x.io"), "", now);
        }
        let failures = limiter.failures.lock().expect("lock");
        assert!(failures.by_email.len() <= MAX_KEYS);
    }
}
