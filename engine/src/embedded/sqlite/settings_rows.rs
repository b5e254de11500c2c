//! Rows of `user_settings`, and notification housekeeping.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::settings::UserSettings;

fn settings_from(zone: &str, digest: bool, hour: i64) -> UserSettings {
    UserSettings {
        // A zone name this build no longer knows falls back to UTC rather than failing reads.
        time_zone: crate::recurrence::parse_zone(zone).unwrap_or(chrono_tz::Tz::UTC),
        daily_digest: digest,
        digest_hour: u8::try_from(hour).ok().filter(|h| *h < 24).unwrap_or(8),
    }
}

pub(crate) fn get(conn: &Connection, user_id: &str) -> rusqlite::Result<UserSettings> {
    let row = conn
        .prepare_cached(
            "SELECT time_zone, daily_digest, digest_hour FROM user_settings WHERE user_id = ?1",
        )?
        .query_row([user_id], |row| {
            Ok(settings_from(
                &row.get::<_, String>(0)?,
                row.get(1)?,
                row.get(2)?,
            ))
        })
        .optional()?;
    Ok(row.unwrap_or_default())
}

pub(crate) fn save(
    conn: &Connection,
    user_id: &str,
    settings: &UserSettings,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO user_settings (user_id, time_zone, daily_digest, digest_hour, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_id) DO UPDATE SET time_zone = ?2, daily_digest = ?3, digest_hour = ?4, updated_at = ?5",
    )?
    .execute(params![
        user_id,
        settings.time_zone.name(),
        settings.daily_digest,
        settings.digest_hour,
        now.timestamp_micros()
    ])?;
    Ok(())
}

pub(crate) fn digest_subscribers(
    conn: &Connection,
) -> rusqlite::Result<Vec<(String, UserSettings)>> {
    let mut statement = conn.prepare_cached(
        "SELECT user_id, time_zone, daily_digest, digest_hour FROM user_settings WHERE daily_digest = 1 ORDER BY user_id",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            settings_from(&row.get::<_, String>(1)?, row.get(2)?, row.get(3)?),
        ))
    })?;
    rows.collect()
}

pub(crate) fn purge_notifications(
    conn: &Connection,
    read_before: DateTime<Utc>,
    created_before: DateTime<Utc>,
) -> rusqlite::Result<u64> {
    let removed = conn
        .prepare_cached(
            "DELETE FROM notifications WHERE (read_at IS NOT NULL AND read_at < ?1) OR created_at < ?2",
        )?
        .execute(params![
            read_before.timestamp_micros(),
            created_before.timestamp_micros()
        ])?;
    Ok(removed as u64)
}
