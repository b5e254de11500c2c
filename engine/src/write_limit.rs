//! Per-user limits on task writes, so one runaway script or stolen token cannot fill the store
//! (a loop of creates once wrote 86,865 tasks for one user).
//!
//! A token bucket per user: `burst` writes at once, refilled at `per_second`. Held in memory,
//! so in cluster mode each api replica counts on its own (the limit per user is then at most
//! the replica count times this one).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// How many task writes one user may make: a burst, then a steady rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriteLimit {
    /// Writes a user may make at once.
    pub burst: u32,
    /// Writes per second the bucket refills with.
    pub per_second: f64,
}

impl WriteLimit {
    /// Generous enough for bulk actions in the UI and imports at human scale; tight enough
    /// that a loop cannot write hundreds of thousands of tasks in minutes.
    pub const DEFAULT: WriteLimit = WriteLimit {
        burst: 1_000,
        per_second: 100.0,
    };
}

/// Buckets above this many users are pruned of the full ones (users not writing lately).
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The buckets of every user who wrote lately.
#[derive(Debug)]
pub struct WriteLimiter {
    limit: WriteLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl WriteLimiter {
    pub fn new(limit: WriteLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one write from `user`'s bucket; when it is empty, the whole seconds until the next
    /// write is allowed (for `Retry-After`).
    pub fn take(&self, user: &str) -> Result<(), u64> {
        self.take_at(user, Instant::now())
    }

    fn take_at(&self, user: &str, now: Instant) -> Result<(), u64> {
        let WriteLimit { burst, per_second } = self.limit;
        let burst = f64::from(burst);
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, bucket| {
                let refilled = bucket.tokens
                    + now.saturating_duration_since(bucket.updated).as_secs_f64() * per_second;
                refilled < burst
            });
        }
        let bucket = buckets.entry(user.to_owned()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = if per_second > 0.0 {
                ((1.0 - bucket.tokens) / per_second).ceil()
            } else {
                60.0
            };
            // `wait` is finite and positive here; the cast saturates anyway.
            Err((wait as u64).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_steady_rate() {
        let limiter = WriteLimiter::new(WriteLimit {
            burst: 3,
            per_second: 2.0,
        });
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take_at("ann", start), Ok(()));
        }
        assert_eq!(limiter.take_at("ann", start), Err(1));
        // Another user has a bucket of their own.
        assert_eq!(limiter.take_at("bob", start), Ok(()));
        // Half a second refills one write at 2/s.
        let later = start + Duration::from_millis(500);
        assert_eq!(limiter.take_at("ann", later), Ok(()));
        assert_eq!(limiter.take_at("ann", later), Err(1));
        // Never more than the burst, however long the pause.
        let much_later = later + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(limiter.take_at("ann", much_later), Ok(()));
        }
        assert!(limiter.take_at("ann", much_later).is_err());
    }

    #[test]
    fn a_slow_refill_says_how_long_to_wait() {
        let limiter = WriteLimiter::new(WriteLimit {
            burst: 1,
            per_second: 0.1,
        });
        let start = Instant::now();
        assert_eq!(limiter.take_at("ann", start), Ok(()));
        assert_eq!(limiter.take_at("ann", start), Err(10));
    }

    #[test]
    fn idle_users_are_pruned_when_the_map_grows() {
        let limiter = WriteLimiter::new(WriteLimit {
            burst: 5,
            per_second: 100.0,
        });
        let start = Instant::now();
        for n in 0..=PRUNE_ABOVE {
            assert_eq!(limiter.take_at(&format!("user-{n}"), start), Ok(()));
        }
        let later = start + Duration::from_secs(1);
        assert_eq!(limiter.take_at("new", later), Ok(()));
        let held = limiter
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        assert_eq!(held, 1, "full buckets are dropped, the new one kept");
    }
}
