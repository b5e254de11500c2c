//! Per-user settings: the time zone "every day at 9" is read in when a request does not say
//! (`X-Timezone` wins), and the opt-in daily digest of overdue tasks.

use chrono_tz::Tz;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{FieldError, Loc, ValidationErrors};

/// Local hour the digest arrives at unless the user picks another.
pub const DEFAULT_DIGEST_HOUR: u8 = 8;

/// One user's settings; every user has them, stored or default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UserSettings {
    pub time_zone: Tz,
    pub daily_digest: bool,
    /// Local hour (0–23) of the daily digest.
    pub digest_hour: u8,
}

impl Default for UserSettings {
    fn default() -> Self {
        Self {
            time_zone: Tz::UTC,
            daily_digest: false,
            digest_hour: DEFAULT_DIGEST_HOUR,
        }
    }
}

/// Settings as `GET/PUT /api/settings` show them.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SettingsView {
    /// IANA name, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// A notification listing overdue tasks, once a day at `digest_hour` local time.
    pub daily_digest: bool,
    #[schema(minimum = 0, maximum = 23)]
    pub digest_hour: u8,
}

impl UserSettings {
    pub fn view(&self) -> SettingsView {
        SettingsView {
            time_zone: self.time_zone.name().to_owned(),
            daily_digest: self.daily_digest,
            digest_hour: self.digest_hour,
        }
    }

    /// Applies the keys present in a `PUT /api/settings` body; unknown keys are ignored.
    pub fn patched(mut self, body: &Value) -> Result<Self, ValidationErrors> {
        let Value::Object(fields) = body else {
            return Err(ValidationErrors(vec![FieldError::new(
                "model_attributes_type",
                vec![],
                "Input should be a valid dictionary or object to extract fields from",
                body.clone(),
            )]));
        };
        let mut errors = Vec::new();
        let loc = |key: &str| vec![Loc::from(key)];
        if let Some(value) = fields.get("time_zone") {
            match value.as_str().and_then(crate::recurrence::parse_zone) {
                Some(zone) => self.time_zone = zone,
                None => errors.push(FieldError::value_error(
                    loc("time_zone"),
                    "Unknown time zone: use an IANA name such as Europe/Berlin",
                    value.clone(),
                )),
            }
        }
        if let Some(value) = fields.get("daily_digest") {
            match value.as_bool() {
                Some(flag) => self.daily_digest = flag,
                None => errors.push(FieldError::new(
                    "bool_type",
                    loc("daily_digest"),
                    "Input should be a valid boolean",
                    value.clone(),
                )),
            }
        }
        if let Some(value) = fields.get("digest_hour") {
            match value.as_u64().filter(|hour| *hour < 24) {
                Some(hour) => self.digest_hour = hour as u8,
                None => errors.push(
                    FieldError::new(
                        "less_than_equal",
                        loc("digest_hour"),
                        "Input should be an integer from 0 to 23",
                        value.clone(),
                    )
                    .with_ctx(serde_json::json!({ "ge": 0, "le": 23 })),
                ),
            }
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(ValidationErrors(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let base = UserSettings::default();
        let patched = base
            .patched(&json!({"time_zone": "Europe/Berlin", "other": 1}))
            .expect("valid");
        assert_eq!(patched.time_zone, chrono_tz::Europe::Berlin);
        assert!(!patched.daily_digest);
        assert_eq!(patched.digest_hour, DEFAULT_DIGEST_HOUR);
        let errors = base
            .patched(
                &json!({"time_zone": "Mars/Olympus", "daily_digest": "yes", "digest_hour": 24}),
            )
            .expect_err("invalid");
        let fields: Vec<_> = errors.0.iter().map(|e| e.loc.clone()).collect();
        assert_eq!(
            fields,
            [
                vec![Loc::from("time_zone")],
                vec![Loc::from("daily_digest")],
                vec![Loc::from("digest_hour")]
            ]
        );
    }
}
