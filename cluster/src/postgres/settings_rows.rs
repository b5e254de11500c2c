//! Rows of `user_settings`, and notification housekeeping.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use taskstream_engine::settings::UserSettings;

use super::error::PgError;

/// Reads the settings columns starting at `first`; unknown values fall back to the defaults
/// rather than failing reads, as in the SQLite store.
fn settings_from(row: &Row, first: usize) -> Result<UserSettings, PgError> {
    let zone: String = row.try_get(first)?;
    let hour: i16 = row.try_get(first + 2)?;
    Ok(UserSettings {
        time_zone: taskstream_engine::recurrence::parse_zone(&zone).unwrap_or(chrono_tz::Tz::UTC),
        daily_digest: row.try_get(first + 1)?,
        digest_hour: u8::try_from(hour).ok().filter(|h| *h < 24).unwrap_or(8),
    })
}

pub(crate) async fn get(
    client: &impl GenericClient,
    user_id: &str,
) -> Result<UserSettings, PgError> {
    let statement = client
        .prepare_cached(
            "SELECT time_zone, daily_digest, digest_hour FROM user_settings WHERE user_id = $1",
        )
        .await?;
    match client.query_opt(&statement, &[&user_id]).await? {
        Some(row) => settings_from(&row, 0),
        None => Ok(UserSettings::default()),
    }
}

pub(crate) async fn save(
    client: &impl GenericClient,
    user_id: &str,
    settings: &UserSettings,
    now: DateTime<Utc>,
) -> Result<(), PgError> {
    let statement = client
        .prepare_cached(
            "INSERT INTO user_settings (user_id, time_zone, daily_digest, digest_hour, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id) DO UPDATE SET time_zone = $2, daily_digest = $3, digest_hour = $4, updated_at = $5",
        )
        .await?;
    client
        .execute(
            &statement,
            &[
                &user_id,
                &settings.time_zone.name(),
                &settings.daily_digest,
                &i16::from(settings.digest_hour),
                &now,
            ],
        )
        .await?;
    Ok(())
}

pub(crate) async fn digest_subscribers(
    client: &impl GenericClient,
) -> Result<Vec<(String, UserSettings)>, PgError> {
    let statement = client
        .prepare_cached(
            "SELECT user_id, time_zone, daily_digest, digest_hour FROM user_settings WHERE daily_digest ORDER BY user_id COLLATE \"C\"",
        )
        .await?;
    client
        .query(&statement, &[])
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, settings_from(row, 1)?)))
        .collect()
}

pub(crate) async fn purge_notifications(
    client: &impl GenericClient,
    read_before: DateTime<Utc>,
    created_before: DateTime<Utc>,
) -> Result<u64, PgError> {
    let statement = client
        .prepare_cached(
            "DELETE FROM notifications WHERE (read_at IS NOT NULL AND read_at < $1) OR created_at < $2",
        )
        .await?;
    Ok(client
        .execute(&statement, &[&read_before, &created_before])
        .await?)
}
