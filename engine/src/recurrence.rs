//! Recurrence rules and the next due date of a series.
//!
//! The next date is always computed from the series' first due date (the anchor) and the
//! occurrence's index, never from the previous date, so month ends clamp without drifting:
//! Jan 31 → Feb 28 → Mar 31 → Apr 30.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Months, Utc};

/// Upper bound on `INTERVAL:N` days (100 years), so date arithmetic can never overflow.
const MAX_INTERVAL_DAYS: u32 = 36_500;

/// A recurrence rule as clients write it, stored in its canonical upper-case form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recurrence {
    Daily,
    Weekly,
    Monthly,
    Yearly,
    /// Every N days.
    IntervalDays(u32),
    /// An RFC 5545 rule, stored as written (upper case) after `RRULE:`.
    RRule(String),
}

/// Why a rule was rejected, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRule(pub String);

impl FromStr for Recurrence {
    type Err = InvalidRule;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let rule = text.trim().to_uppercase();
        match rule.as_str() {
            "DAILY" => return Ok(Self::Daily),
            "WEEKLY" => return Ok(Self::Weekly),
            "MONTHLY" => return Ok(Self::Monthly),
            "YEARLY" => return Ok(Self::Yearly),
            _ => {}
        }
        if let Some(days) = rule.strip_prefix("INTERVAL:") {
            return match days.trim().parse::<u32>() {
                Ok(n) if (1..=MAX_INTERVAL_DAYS).contains(&n) => Ok(Self::IntervalDays(n)),
                _ => Err(InvalidRule(format!(
                    "INTERVAL:N needs a whole number of days N between 1 and {MAX_INTERVAL_DAYS}"
                ))),
            };
        }
        if let Some(body) = rule.strip_prefix("RRULE:") {
            let body = body.trim();
            validate_rrule(body)?;
            return Ok(Self::RRule(body.to_owned()));
        }
        Err(InvalidRule(
            "Invalid recurrence rule: use DAILY, WEEKLY, MONTHLY, YEARLY, INTERVAL:N or RRULE:FREQ=..."
                .to_owned(),
        ))
    }
}

impl fmt::Display for Recurrence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Daily => f.write_str("DAILY"),
            Self::Weekly => f.write_str("WEEKLY"),
            Self::Monthly => f.write_str("MONTHLY"),
            Self::Yearly => f.write_str("YEARLY"),
            Self::IntervalDays(n) => write!(f, "INTERVAL:{n}"),
            Self::RRule(body) => write!(f, "RRULE:{body}"),
        }
    }
}

fn rrule_set(anchor: DateTime<Utc>, body: &str) -> Result<rrule::RRuleSet, InvalidRule> {
    let text = format!("DTSTART:{}\nRRULE:{body}", anchor.format("%Y%m%dT%H%M%SZ"));
    text.parse::<rrule::RRuleSet>()
        .map_err(|error| InvalidRule(format!("Invalid RRULE: {error}")))
}

fn validate_rrule(body: &str) -> Result<(), InvalidRule> {
    if body.is_empty() || body.contains(['\n', '\r']) {
        return Err(InvalidRule(
            "Invalid RRULE: expected one line FREQ=...".to_owned(),
        ));
    }
    if body.contains("DTSTART") {
        return Err(InvalidRule(
            "Invalid RRULE: DTSTART comes from the task's due date".to_owned(),
        ));
    }
    rrule_set(DateTime::<Utc>::UNIX_EPOCH, body).map(|_| ())
}

impl Recurrence {
    /// The due date of occurrence `index` of a series whose first due date is `anchor`, for the
    /// fixed-period rules.
    fn nth_simple(&self, anchor: DateTime<Utc>, index: u32) -> Option<DateTime<Utc>> {
        match self {
            Self::Daily => anchor.checked_add_signed(Duration::try_days(i64::from(index))?),
            Self::Weekly => anchor.checked_add_signed(Duration::try_weeks(i64::from(index))?),
            Self::IntervalDays(n) => anchor.checked_add_signed(Duration::try_days(
                i64::from(*n).checked_mul(i64::from(index))?,
            )?),
            Self::Monthly => anchor.checked_add_months(Months::new(index)),
            Self::Yearly => anchor.checked_add_months(Months::new(index.checked_mul(12)?)),
            Self::RRule(_) => None,
        }
    }

    /// The occurrence after `current` in the series anchored at `anchor`, with its index, or
    /// `None` when the series has ended (an RRULE with COUNT or UNTIL).
    pub fn next_occurrence(
        &self,
        anchor: DateTime<Utc>,
        current_index: u32,
        current: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, u32)> {
        match self {
            Self::RRule(body) => {
                let set = rrule_set(anchor, body).ok()?;
                let strictly_after = current.checked_add_signed(Duration::seconds(1))?;
                let found = set
                    .after(strictly_after.with_timezone(&rrule::Tz::UTC))
                    .all(1);
                found
                    .dates
                    .first()
                    .map(|date| (date.with_timezone(&Utc), current_index.saturating_add(1)))
            }
            simple => {
                // Walk forward from the recorded index; normally one step, more only if the
                // anchor bookkeeping is behind the current date.
                let mut index = current_index;
                loop {
                    index = index.checked_add(1)?;
                    let candidate = simple.nth_simple(anchor, index)?;
                    if candidate > current {
                        return Some((candidate, index));
                    }
                    if index > current_index.saturating_add(100_000) {
                        return None;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_datetime;

    fn at(text: &str) -> DateTime<Utc> {
        parse_datetime(text).expect("test date")
    }

    fn chain(rule: &str, start: &str, steps: usize) -> Vec<String> {
        let rule: Recurrence = rule.parse().expect("valid rule");
        let anchor = at(start);
        let (mut current, mut index) = (anchor, 0);
        let mut out = Vec::new();
        for _ in 0..steps {
            let Some((next, next_index)) = rule.next_occurrence(anchor, index, current) else {
                break;
            };
            out.push(crate::time::format_utc(next));
            (current, index) = (next, next_index);
        }
        out
    }

    #[test]
    fn simple_rules_parse_case_insensitively_and_print_upper_case() {
        for (input, stored) in [
            ("daily", "DAILY"),
            (" Weekly ", "WEEKLY"),
            ("monthly", "MONTHLY"),
            ("YEARLY", "YEARLY"),
            ("interval:3", "INTERVAL:3"),
            (
                "rrule:freq=weekly;byday=mo,we",
                "RRULE:FREQ=WEEKLY;BYDAY=MO,WE",
            ),
        ] {
            let rule: Recurrence = input.parse().expect("valid");
            assert_eq!(rule.to_string(), stored);
        }
    }

    #[test]
    fn bad_rules_are_rejected() {
        for bad in [
            "",
            "HOURLYISH",
            "INTERVAL:0",
            "INTERVAL:-2",
            "INTERVAL:x",
            "RRULE:",
            "RRULE:FREQ=SOMETIMES",
            "RRULE:FREQ=DAILY\nRRULE:FREQ=WEEKLY",
            "RRULE:DTSTART=20200101;FREQ=DAILY",
        ] {
            assert!(
                bad.parse::<Recurrence>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn monthly_from_the_31st_clamps_without_drift() {
        assert_eq!(
            chain("MONTHLY", "2026-01-31T09:00:00Z", 4),
            [
                "2026-02-28T09:00:00Z",
                "2026-03-31T09:00:00Z",
                "2026-04-30T09:00:00Z",
                "2026-05-31T09:00:00Z"
            ]
        );
    }

    #[test]
    fn yearly_from_february_29_returns_to_it_in_leap_years() {
        assert_eq!(
            chain("YEARLY", "2028-02-29T08:00:00Z", 4),
            [
                "2029-02-28T08:00:00Z",
                "2030-02-28T08:00:00Z",
                "2031-02-28T08:00:00Z",
                "2032-02-29T08:00:00Z"
            ]
        );
    }

    #[test]
    fn interval_and_weekly_steps() {
        assert_eq!(
            chain("INTERVAL:3", "2026-03-01T10:00:00Z", 2),
            ["2026-03-04T10:00:00Z", "2026-03-07T10:00:00Z"]
        );
        assert_eq!(
            chain("WEEKLY", "2026-03-01T10:00:00Z", 1),
            ["2026-03-08T10:00:00Z"]
        );
    }

    #[test]
    fn rrule_by_day_picks_the_next_listed_weekday() {
        // 2026-11-30 is a Monday.
        assert_eq!(
            chain("RRULE:FREQ=WEEKLY;BYDAY=MO,WE", "2026-11-30T09:00:00Z", 3),
            [
                "2026-12-02T09:00:00Z",
                "2026-12-07T09:00:00Z",
                "2026-12-09T09:00:00Z"
            ]
        );
    }

    #[test]
    fn rrule_with_count_ends() {
        assert_eq!(
            chain("RRULE:FREQ=DAILY;COUNT=3", "2026-01-01T00:00:00Z", 5),
            ["2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"]
        );
    }
}
