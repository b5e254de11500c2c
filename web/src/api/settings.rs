//! `GET/PUT /api/settings`: the caller's time zone and daily digest.

use axum::Json;
use axum::extract::State;
use chrono_tz::Tz;
use taskstream_engine::settings::SettingsView;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::JsonBody;

/// The caller's settings (defaults until saved).
#[utoipa::path(get, path = "/api/settings", tag = "settings", security(("bearer" = [])),
    responses((status = 200, body = SettingsView), (status = 401)))]
pub(crate) async fn get(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<SettingsView>, ApiError> {
    Ok(Json(app.settings.settings(&user).await?.view()))
}

/// `PUT /api/settings` body, for the docs: every key is optional.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
pub struct SettingsUpdate {
    /// IANA name, e.g. `Europe/Berlin`.
    #[schema(min_length = 1, max_length = 64, required = false)]
    time_zone: String,
    #[schema(required = false)]
    daily_digest: bool,
    /// Local hour of the digest.
    #[schema(minimum = 0, maximum = 23, required = false)]
    digest_hour: u8,
}

/// Change settings: only the keys present are applied.
#[utoipa::path(put, path = "/api/settings", tag = "settings", security(("bearer" = [])),
    request_body = SettingsUpdate,
    responses((status = 200, body = SettingsView), (status = 401), (status = 422)))]
pub(crate) async fn put(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody,
) -> Result<Json<SettingsView>, ApiError> {
    let current = app.settings.settings(&user).await?;
    let updated = current
        .patched(&body)
        .map_err(|errors| ApiError::Validation(errors.located_in("body")))?;
    app.settings
        .save_settings(&user, updated, taskstream_engine::time::now())
        .await?;
    Ok(Json(updated.view()))
}

/// The zone a request is read in: `X-Timezone` when sent, else the user's setting.
pub(crate) async fn zone_for(
    app: &AppState,
    user: &str,
    header: Option<Tz>,
) -> Result<Tz, ApiError> {
    match header {
        Some(zone) => Ok(zone),
        None => Ok(app.settings.settings(user).await?.time_zone),
    }
}
