//! Rows of `login_failures`: the failed log-ins every replica counts against, so the limits of
//! [`taskstream_engine::accounts`] hold for the whole cluster, not per replica. Times are the
//! database's, so replicas with drifting clocks still agree.

use deadpool_postgres::GenericClient;

use taskstream_engine::accounts::{ATTEMPT_WINDOW, CLIENT_LIMIT, EMAIL_LIMIT};

use super::error::PgError;

/// The window in seconds, as the SQL below takes it.
fn window_secs() -> f64 {
    ATTEMPT_WINDOW.as_secs_f64()
}

/// Seconds until `key` has fewer than `limit` failures within the window, if it has `limit`.
async fn wait_for(
    client: &impl GenericClient,
    kind: &str,
    key: &str,
    limit: usize,
) -> Result<Option<u64>, PgError> {
    let statement = client
        .prepare_cached(
            "SELECT EXTRACT(EPOCH FROM at + make_interval(secs => $3) - now())::float8
             FROM login_failures
             WHERE kind = $1 AND key = $2 AND at > now() - make_interval(secs => $3)
             ORDER BY at DESC OFFSET $4 LIMIT 1",
        )
        .await?;
    let offset = i64::try_from(limit.saturating_sub(1)).unwrap_or(i64::MAX);
    let row = client
        .query_opt(&statement, &[&kind, &key, &window_secs(), &offset])
        .await?;
    Ok(row.map(|row| {
        let seconds: f64 = row.get(0);
        // Whole seconds, rounded up, at least one.
        seconds.ceil().max(1.0) as u64
    }))
}

pub(crate) async fn blocked_for(
    client: &impl GenericClient,
    email: &str,
    login_client: &str,
) -> Result<Option<u64>, PgError> {
    let by_email = wait_for(client, "email", email, EMAIL_LIMIT).await?;
    let by_client = if login_client.is_empty() {
        None
    } else {
        wait_for(client, "client", login_client, CLIENT_LIMIT).await?
    };
    Ok(by_email.max(by_client))
}

/// Counts a failure against the email (and the client when known), dropping failures that
/// left the window.
pub(crate) async fn failed(
    client: &impl GenericClient,
    email: &str,
    login_client: &str,
) -> Result<(), PgError> {
    let insert = client
        .prepare_cached("INSERT INTO login_failures (kind, key) VALUES ($1, $2)")
        .await?;
    client.execute(&insert, &[&"email", &email]).await?;
    if !login_client.is_empty() {
        client.execute(&insert, &[&"client", &login_client]).await?;
    }
    let expire = client
        .prepare_cached("DELETE FROM login_failures WHERE at <= now() - make_interval(secs => $1)")
        .await?;
    client.execute(&expire, &[&window_secs()]).await?;
    Ok(())
}

pub(crate) async fn succeeded(client: &impl GenericClient, email: &str) -> Result<(), PgError> {
    let statement = client
        .prepare_cached("DELETE FROM login_failures WHERE kind = 'email' AND key = $1")
        .await?;
    client.execute(&statement, &[&email]).await?;
    Ok(())
}
