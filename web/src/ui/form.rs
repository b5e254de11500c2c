//! HTML form bodies: read them, check their CSRF token, and turn the task form into the same
//! JSON the REST API validates, so the UI and the API accept exactly the same tasks.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use chrono::{NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};

use super::error::UiError;
use super::session::{CSRF_FIELD, CsrfToken};

/// A posted `application/x-www-form-urlencoded` body whose CSRF token was checked.
pub struct Form {
    pairs: Vec<(String, String)>,
    /// Whether htmx sent it (it wants a fragment, not a redirect).
    pub htmx: bool,
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = UiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let csrf = <CsrfToken as axum::extract::FromRequestParts<S>>::from_request_parts(
            &mut parts, state,
        )
        .await?;
        let headers: HeaderMap = parts.headers.clone();
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| UiError::BadRequest("The form was too large to read".to_owned()))?;
        let pairs: Vec<(String, String)> = form_urlencoded::parse(&bytes)
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        let form = Form {
            htmx: headers.contains_key("hx-request"),
            pairs,
        };
        csrf.check(&headers, form.get(CSRF_FIELD))?;
        Ok(form)
    }
}

impl Form {
    /// The first value of a field, trimmed; `None` when absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
    }

    /// The first value, or "" when absent.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// Every value of a repeated field (checkboxes).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
            .collect()
    }

    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Form {
            pairs: pairs
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
            htmx: false,
        }
    }
}

/// The `<input type="datetime-local">` value `2026-12-01T09:00` read in `zone`, as RFC 3339 UTC.
/// A time skipped by a DST change moves forward to the first valid minute; an ambiguous one
/// takes the earlier instant.
pub fn local_to_utc(text: &str, zone: Tz) -> Result<String, String> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| format!("'{text}' is not a date and time (expected YYYY-MM-DDTHH:MM)"))?;
    let instant = zone
        .from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            (1..=180).find_map(|minutes| {
                zone.from_local_datetime(&(naive + chrono::Duration::minutes(minutes)))
                    .earliest()
            })
        })
        .ok_or_else(|| format!("'{text}' does not exist in {}", zone.name()))?;
    Ok(taskstream_engine::time::format_utc(
        instant.with_timezone(&chrono::Utc),
    ))
}

/// Which task form is being read: a new task sends every field, an edit sends the whole form
/// too, so empty fields clear values.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FormKind {
    Create,
    Edit,
}

/// The task form as the JSON body `POST /api/tasks` / `PUT /api/tasks/{id}` take. Errors are
/// the form's own (a malformed date); everything else is validated by the engine.
pub fn task_json(form: &Form, zone: Tz, kind: FormKind) -> Result<Value, String> {
    let mut body = Map::new();
    body.insert("title".into(), json!(form.text("title")));
    let description = form.text("description");
    body.insert(
        "description".into(),
        if description.is_empty() {
            Value::Null
        } else {
            json!(description)
        },
    );
    if let Some(priority) = form.get("priority").filter(|value| !value.is_empty()) {
        body.insert("priority".into(), json!(priority));
    }
    if kind == FormKind::Edit
        && let Some(status) = form.get("status").filter(|value| !value.is_empty())
    {
        body.insert("status".into(), json!(status));
    }
    let tags: Vec<&str> = form
        .text("tags")
        .split([',', ' '])
        .map(|tag| tag.trim().trim_start_matches('#'))
        .filter(|tag| !tag.is_empty())
        .collect();
    body.insert("tags".into(), json!(tags));
    let due = form.text("due_date");
    body.insert(
        "due_date".into(),
        if due.is_empty() {
            Value::Null
        } else {
            json!(local_to_utc(due, zone)?)
        },
    );
    let offset = form.text("reminder_offset_minutes");
    body.insert(
        "reminder_offset_minutes".into(),
        if offset.is_empty() {
            Value::Null
        } else {
            offset
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("Reminder '{offset}' is not a whole number of minutes"))?
        },
    );
    // The edit form shows the one-off reminder field only when the task has at most one
    // (`reminders_shown`); otherwise the reminders set through the API are left alone.
    let remind_at = form.text("remind_at");
    if kind == FormKind::Edit && form.get("reminders_shown").is_none() {
        return finish(body, form);
    }
    let reminders: Vec<Value> = if remind_at.is_empty() {
        Vec::new()
    } else {
        vec![json!({ "at": local_to_utc(remind_at, zone)? })]
    };
    body.insert("reminders".into(), Value::Array(reminders));
    finish(body, form)
}

fn finish(mut body: Map<String, Value>, form: &Form) -> Result<Value, String> {
    let rule = match form.text("repeat") {
        "" | "none" => None,
        "INTERVAL" => {
            let days = form.text("interval_days");
            Some(format!("INTERVAL:{days}"))
        }
        "CUSTOM" => Some(form.text("custom_rule").to_owned()),
        "WEEKLY" => {
            // The weekday picker: ticked days make an RRULE; none keeps the due date's weekday.
            let ticked = form.all("byday");
            let days: Vec<&str> = super::view::WEEKDAYS
                .into_iter()
                .filter(|day| ticked.contains(day))
                .collect();
            if days.is_empty() {
                Some("WEEKLY".to_owned())
            } else {
                Some(format!("RRULE:FREQ=WEEKLY;BYDAY={}", days.join(",")))
            }
        }
        preset => Some(preset.to_owned()),
    };
    body.insert("is_recurring".into(), json!(rule.is_some()));
    body.insert("recurrence_rule".into(), json!(rule));
    if rule.is_some() {
        if let Some(trigger) = form.get("recurrence_trigger").filter(|v| !v.is_empty()) {
            body.insert("recurrence_trigger".into(), json!(trigger));
        }
        if let Some(from) = form.get("recurrence_from").filter(|v| !v.is_empty()) {
            body.insert("recurrence_from".into(), json!(from));
        }
    }
    Ok(Value::Object(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_are_read_in_the_users_zone() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap_or(Tz::UTC);
        assert_eq!(
            local_to_utc("2026-12-01T09:00", berlin).as_deref(),
            Ok("2026-12-01T08:00:00Z")
        );
        assert_eq!(
            local_to_utc("2026-07-01T09:00", berlin).as_deref(),
            Ok("2026-07-01T07:00:00Z")
        );
        // 02:30 on the spring-forward night does not exist: the first valid minute is 03:00.
        assert_eq!(
            local_to_utc("2026-03-29T02:30", berlin).as_deref(),
            Ok("2026-03-29T01:00:00Z")
        );
        assert!(local_to_utc("tomorrow", berlin).is_err());
    }

    #[test]
    fn the_form_becomes_the_api_body() {
        let form = Form::from_pairs(&[
            ("title", " Pay rent "),
            ("description", ""),
            ("priority", "high"),
            ("tags", "home, #Money"),
            ("due_date", "2026-12-01T09:00"),
            ("reminder_offset_minutes", "60"),
            ("repeat", "MONTHLY"),
            ("recurrence_trigger", "on_due"),
        ]);
        let body = task_json(&form, Tz::UTC, FormKind::Create).unwrap_or_default();
        assert_eq!(body["title"], "Pay rent");
        assert_eq!(body["description"], Value::Null);
        assert_eq!(body["tags"], json!(["home", "Money"]));
        assert_eq!(body["due_date"], "2026-12-01T09:00:00Z");
        assert_eq!(body["reminder_offset_minutes"], 60);
        assert_eq!(body["is_recurring"], true);
        assert_eq!(body["recurrence_rule"], "MONTHLY");
        assert_eq!(body["recurrence_trigger"], "on_due");
        assert!(body.get("status").is_none());
    }

    #[test]
    fn a_bad_reminder_is_a_form_error() {
        let form = Form::from_pairs(&[("title", "x"), ("reminder_offset_minutes", "soon")]);
        assert!(task_json(&form, Tz::UTC, FormKind::Create).is_err());
        let interval = Form::from_pairs(&[
            ("title", "x"),
            ("repeat", "INTERVAL"),
            ("interval_days", "3"),
        ]);
        let body = task_json(&interval, Tz::UTC, FormKind::Edit).unwrap_or_default();
        assert_eq!(body["recurrence_rule"], "INTERVAL:3");
    }

    #[test]
    fn the_weekday_picker_makes_a_weekly_rule() {
        let form = Form::from_pairs(&[
            ("title", "x"),
            ("repeat", "WEEKLY"),
            ("byday", "WE"),
            ("byday", "MO"),
            ("byday", "XX"),
            ("custom_rule", "RRULE:FREQ=DAILY"),
        ]);
        let body = task_json(&form, Tz::UTC, FormKind::Create).unwrap_or_default();
        assert_eq!(body["recurrence_rule"], "RRULE:FREQ=WEEKLY;BYDAY=MO,WE");
        let plain = Form::from_pairs(&[("title", "x"), ("repeat", "WEEKLY")]);
        let body = task_json(&plain, Tz::UTC, FormKind::Create).unwrap_or_default();
        assert_eq!(body["recurrence_rule"], "WEEKLY");
        let none = Form::from_pairs(&[("title", "x"), ("repeat", ""), ("byday", "MO")]);
        let body = task_json(&none, Tz::UTC, FormKind::Create).unwrap_or_default();
        assert_eq!(body["is_recurring"], false);
    }
}
