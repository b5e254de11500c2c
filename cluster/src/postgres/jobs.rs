//! Periodic jobs (daily digest, retention) once per period across replicas.
//!
//! Every replica that runs the jobs fires them on the same cron schedule. A run first takes a
//! transaction-level advisory lock for its job (so runs of one job never overlap), then looks
//! for its `(job, period)` row in `job_runs`: present, another replica already did this period
//! and the run is skipped; absent, the job runs and the row is written in the same transaction.
//! A failed run rolls back (releasing the lock and leaving no row), so the next replica whose
//! tick arrives, or the next tick, does the period instead. The period is the tick's UTC hour or
//! day, so clocks a few seconds apart still agree on it.

use std::future::Future;

use chrono::{DateTime, Utc};

use taskstream_engine::EngineError;

use super::error::PgError;
use super::{PostgresStore, begin, fnv1a};

/// Key of the advisory lock serialising runs of one job ("tsjobrun"), mixed with the schema and
/// the job's name.
const JOB_LOCK: i64 = 0x7473_6a6f_6272_756e;

/// How long one period of a job is: it runs at most once in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobPeriod {
    Hour,
    Day,
}

impl JobPeriod {
    /// The period `at` falls in, as stored in `job_runs.period`.
    pub fn key(self, at: DateTime<Utc>) -> String {
        match self {
            JobPeriod::Hour => at.format("%Y-%m-%dT%H").to_string(),
            JobPeriod::Day => at.format("%Y-%m-%d").to_string(),
        }
    }
}

impl PostgresStore {
    /// Runs `run` unless a replica already ran `job` for `period` (see the module docs).
    /// Returns what the run handled, or `None` when it was skipped.
    pub async fn run_once<F, Fut>(
        &self,
        job: &str,
        period: &str,
        run: F,
    ) -> Result<Option<u64>, EngineError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<u64, EngineError>>,
    {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let key = JOB_LOCK ^ self.schema_hash ^ fnv1a(job).rotate_left(1);
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&key])
            .await
            .map_err(PgError::from)?;
        let done = tx
            .query_opt(
                "SELECT 1 FROM job_runs WHERE job = $1 AND period = $2",
                &[&job, &period],
            )
            .await
            .map_err(PgError::from)?;
        if done.is_some() {
            tx.commit().await.map_err(PgError::from)?;
            return Ok(None);
        }
        // An error drops `tx`: rolled back, lock released, no row.
        let handled = run().await?;
        tx.execute(
            "INSERT INTO job_runs (job, period, handled) VALUES ($1, $2, $3)",
            &[&job, &period, &i64::try_from(handled).unwrap_or(i64::MAX)],
        )
        .await
        .map_err(PgError::from)?;
        tx.commit().await.map_err(PgError::from)?;
        Ok(Some(handled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_utc_hours_and_days() {
        let at: DateTime<Utc> = "2026-11-27T10:00:00.004Z".parse().unwrap_or_default();
        assert_eq!(JobPeriod::Hour.key(at), "2026-11-27T10");
        assert_eq!(JobPeriod::Day.key(at), "2026-11-27");
        let before: DateTime<Utc> = "2026-11-27T09:59:59.999Z".parse().unwrap_or_default();
        assert_eq!(JobPeriod::Hour.key(before), "2026-11-27T09");
    }
}
