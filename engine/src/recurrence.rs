//! Recurrence rules and the next due date of a series.
//!
//! The next date is always computed from the series' first due date (the anchor) and the
//! occurrence's index, never from the previous date, so month ends clamp without drifting:
//! Jan 31 → Feb 28 → Mar 31 → Apr 30.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Days, Duration, Months, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

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

fn rrule_set(anchor: DateTime<Utc>, body: &str, zone: Tz) -> Result<rrule::RRuleSet, InvalidRule> {
    let start = if zone == Tz::UTC {
        format!("DTSTART:{}", anchor.format("%Y%m%dT%H%M%SZ"))
    } else {
        let local = anchor.with_timezone(&zone);
        format!(
            "DTSTART;TZID={}:{}",
            zone.name(),
            local.format("%Y%m%dT%H%M%S")
        )
    };
    let text = format!("{start}\nRRULE:{body}");
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
    let set = rrule_set(DateTime::<Utc>::UNIX_EPOCH, body, Tz::UTC)?;
    if !at_most_hourly(body, &set) {
        return Err(InvalidRule(
            "Invalid RRULE: a task may repeat at most once an hour (no SECONDLY or MINUTELY, and \
             no BYMINUTE/BYSECOND lists that fire more often)"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Shortest gap a rule may leave between two occurrences. Each occurrence is a task in the
/// store (and an `on_due` series makes them on its own), so a rule firing every second would
/// fill it: one once wrote 4,090 tasks in 25 seconds.
const MIN_GAP: Duration = Duration::hours(1);

/// Occurrences inspected for the gap check: a rule's BY* lists repeat within its period, and
/// 200 occurrences cover a day of an hourly rule's expansion many times over.
const GAP_SAMPLE: u16 = 200;

fn at_most_hourly(body: &str, set: &rrule::RRuleSet) -> bool {
    let freq = body
        .split(';')
        .filter_map(|part| part.split_once('='))
        .find(|(key, _)| key.trim() == "FREQ")
        .map(|(_, value)| value.trim());
    if matches!(freq, Some("SECONDLY" | "MINUTELY")) {
        return false;
    }
    let dates = set.clone().all(GAP_SAMPLE).dates;
    dates
        .windows(2)
        .all(|pair| pair[1].signed_duration_since(pair[0]) >= MIN_GAP)
}

/// The instant a wall-clock time in `zone` names: the earlier one when the clock is turned back
/// (the time happens twice), and just after the gap when it is turned forward (it never happens).
pub fn from_wall_clock(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    use chrono::LocalResult;
    match zone.from_local_datetime(&local) {
        LocalResult::Single(instant) => Some(instant.with_timezone(&Utc)),
        LocalResult::Ambiguous(earlier, _) => Some(earlier.with_timezone(&Utc)),
        LocalResult::None => (1..=8).find_map(|quarters| {
            let later = local.checked_add_signed(Duration::minutes(15 * quarters))?;
            zone.from_local_datetime(&later)
                .earliest()
                .map(|instant| instant.with_timezone(&Utc))
        }),
    }
}

/// Parses an IANA time zone name (`Europe/Berlin`), as sent in `X-Timezone`.
pub fn parse_zone(name: &str) -> Option<Tz> {
    name.trim().parse::<Tz>().ok()
}

impl Recurrence {
    /// The due date of occurrence `index` of a series whose first due date is `anchor`, for the
    /// fixed-period rules. The arithmetic happens on the wall clock of `zone`, so "every day at
    /// 9" stays at 9 across DST changes.
    fn nth_simple(&self, anchor: DateTime<Utc>, index: u32, zone: Tz) -> Option<DateTime<Utc>> {
        let local = anchor.with_timezone(&zone).naive_local();
        let days = |n: i64| u64::try_from(n).ok().map(Days::new);
        let stepped = match self {
            Self::Daily => local.checked_add_days(days(i64::from(index))?),
            Self::Weekly => local.checked_add_days(days(i64::from(index).checked_mul(7)?)?),
            Self::IntervalDays(n) => {
                local.checked_add_days(days(i64::from(*n).checked_mul(i64::from(index))?)?)
            }
            Self::Monthly => local.checked_add_months(Months::new(index)),
            Self::Yearly => local.checked_add_months(Months::new(index.checked_mul(12)?)),
            Self::RRule(_) => None,
        }?;
        from_wall_clock(zone, stepped)
    }

    /// The occurrence after `current` in the series anchored at `anchor`, with its index, or
    /// `None` when the series has ended (an RRULE with COUNT or UNTIL).
    pub fn next_occurrence(
        &self,
        anchor: DateTime<Utc>,
        current_index: u32,
        current: DateTime<Utc>,
        zone: Tz,
    ) -> Option<(DateTime<Utc>, u32)> {
        self.next_occurrence_after(anchor, current_index, current, current, zone)
    }

    /// Like [`Self::next_occurrence`], skipping every occurrence up to `not_before` as well: a
    /// series that fell behind catches up with one occurrence, never a backlog of past ones.
    pub fn next_occurrence_after(
        &self,
        anchor: DateTime<Utc>,
        current_index: u32,
        current: DateTime<Utc>,
        not_before: DateTime<Utc>,
        zone: Tz,
    ) -> Option<(DateTime<Utc>, u32)> {
        let current = current.max(not_before);
        match self {
            Self::RRule(body) => {
                let set = rrule_set(anchor, body, zone).ok()?;
                let strictly_after = current.checked_add_signed(Duration::seconds(1))?;
                let found = set
                    .after(strictly_after.with_timezone(&rrule::Tz::Tz(zone)))
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
                    let candidate = simple.nth_simple(anchor, index, zone)?;
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
            let Some((next, next_index)) = rule.next_occurrence(anchor, index, current, Tz::UTC)
            else {
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
    fn rules_firing_more_than_hourly_are_rejected() {
        for bad in [
            "RRULE:FREQ=SECONDLY",
            "RRULE:FREQ=MINUTELY;INTERVAL=30",
            "RRULE:FREQ=HOURLY;BYMINUTE=0,30",
            "RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0,1,2",
            "RRULE:FREQ=DAILY;BYSECOND=0,1",
        ] {
            let error = bad.parse::<Recurrence>().expect_err(bad);
            assert!(error.0.contains("at most once an hour"), "{bad}: {error}");
        }
        for good in [
            "RRULE:FREQ=HOURLY",
            "RRULE:FREQ=HOURLY;INTERVAL=2",
            "RRULE:FREQ=DAILY;BYHOUR=9,17",
            "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            "RRULE:FREQ=MONTHLY;BYMONTHDAY=1",
        ] {
            assert!(
                good.parse::<Recurrence>().is_ok(),
                "{good} should be accepted"
            );
        }
    }

    #[test]
    fn catching_up_skips_every_missed_occurrence() {
        let anchor = at("2026-01-01T09:00:00Z");
        let now = at("2026-01-10T12:00:00Z");
        let daily: Recurrence = "DAILY".parse().expect("valid");
        assert_eq!(
            daily.next_occurrence_after(anchor, 0, anchor, now, Tz::UTC),
            Some((at("2026-01-11T09:00:00Z"), 10))
        );
        let hourly: Recurrence = "RRULE:FREQ=HOURLY".parse().expect("valid");
        assert_eq!(
            hourly
                .next_occurrence_after(anchor, 0, anchor, now, Tz::UTC)
                .map(|(date, _)| date),
            Some(at("2026-01-10T13:00:00Z"))
        );
        // Nothing missed: the same as the plain next occurrence.
        assert_eq!(
            daily.next_occurrence_after(anchor, 0, anchor, anchor, Tz::UTC),
            daily.next_occurrence(anchor, 0, anchor, Tz::UTC)
        );
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

    fn chain_in(rule: &str, start: &str, steps: usize, zone: Tz) -> Vec<DateTime<Utc>> {
        let rule: Recurrence = rule.parse().expect("valid rule");
        let anchor = at(start);
        let (mut current, mut index) = (anchor, 0);
        let mut out = Vec::new();
        for _ in 0..steps {
            let Some((next, next_index)) = rule.next_occurrence(anchor, index, current, zone)
            else {
                break;
            };
            out.push(next);
            (current, index) = (next, next_index);
        }
        out
    }

    fn local_times(dates: &[DateTime<Utc>], zone: Tz) -> Vec<String> {
        dates
            .iter()
            .map(|d| d.with_timezone(&zone).format("%m-%d %H:%M").to_string())
            .collect()
    }

    #[test]
    fn daily_keeps_the_wall_clock_time_across_dst_in_every_zone() {
        // 400 days from mid-January crosses both DST changes in each zone (or none, in UTC).
        for zone in [
            Tz::America__New_York,
            Tz::Europe__Berlin,
            Tz::Australia__Sydney,
            Tz::Pacific__Auckland,
            Tz::UTC,
        ] {
            let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 15)
                .and_then(|d| d.and_hms_opt(9, 0, 0))
                .and_then(|local| from_wall_clock(zone, local))
                .expect("start");
            let rule = Recurrence::Daily;
            let (mut current, mut index) = (start, 0);
            let mut offsets = std::collections::BTreeSet::new();
            for _ in 0..400 {
                let (next, next_index) = rule
                    .next_occurrence(start, index, current, zone)
                    .expect("next");
                let local = next.with_timezone(&zone);
                assert_eq!(
                    local.format("%H:%M").to_string(),
                    "09:00",
                    "{zone}: {local}"
                );
                assert_eq!(
                    (next - current).num_hours().clamp(22, 26),
                    (next - current).num_hours()
                );
                offsets.insert(local.format("%z").to_string());
                (current, index) = (next, next_index);
            }
            let expected_offsets = if zone == Tz::UTC { 1 } else { 2 };
            assert_eq!(
                offsets.len(),
                expected_offsets,
                "{zone} offsets seen: {offsets:?}"
            );
        }
    }

    #[test]
    fn new_york_spring_forward_moves_utc_not_local_time() {
        // 2026-03-08: clocks go from 02:00 EST to 03:00 EDT.
        let days = chain_in("DAILY", "2026-03-06T14:00:00Z", 3, Tz::America__New_York);
        assert_eq!(
            days.iter()
                .map(|d| crate::time::format_utc(*d))
                .collect::<Vec<_>>(),
            [
                "2026-03-07T14:00:00Z",
                "2026-03-08T13:00:00Z",
                "2026-03-09T13:00:00Z"
            ]
        );
    }

    #[test]
    fn a_time_in_the_spring_gap_moves_just_past_it_and_comes_back() {
        // 02:30 does not exist in New York on 2026-03-08.
        let days = chain_in("DAILY", "2026-03-07T07:30:00Z", 2, Tz::America__New_York);
        assert_eq!(
            local_times(&days, Tz::America__New_York),
            ["03-08 03:00", "03-09 02:30"]
        );
    }

    #[test]
    fn monthly_month_ends_and_dst_together() {
        // Berlin: Jan 31 09:00 CET; DST starts Mar 29.
        let months = chain_in("MONTHLY", "2026-01-31T08:00:00Z", 3, Tz::Europe__Berlin);
        assert_eq!(
            local_times(&months, Tz::Europe__Berlin),
            ["02-28 09:00", "03-31 09:00", "04-30 09:00"]
        );
        assert_eq!(crate::time::format_utc(months[1]), "2026-03-31T07:00:00Z");
    }

    #[test]
    fn southern_hemisphere_autumn_change() {
        // Sydney and Auckland leave DST on 2026-04-05.
        for zone in [Tz::Australia__Sydney, Tz::Pacific__Auckland] {
            let start = from_wall_clock(
                zone,
                chrono::NaiveDate::from_ymd_opt(2026, 4, 3)
                    .and_then(|d| d.and_hms_opt(9, 0, 0))
                    .expect("date"),
            )
            .expect("start");
            let days = chain_in("DAILY", &crate::time::format_utc(start), 4, zone);
            assert_eq!(
                local_times(&days, zone),
                ["04-04 09:00", "04-05 09:00", "04-06 09:00", "04-07 09:00"],
                "{zone}"
            );
        }
    }

    #[test]
    fn rrule_by_day_follows_the_zone() {
        // Mondays 09:00 in New York, across the spring change.
        let mondays = chain_in(
            "RRULE:FREQ=WEEKLY;BYDAY=MO",
            "2026-03-02T14:00:00Z",
            2,
            Tz::America__New_York,
        );
        assert_eq!(
            local_times(&mondays, Tz::America__New_York),
            ["03-09 09:00", "03-16 09:00"]
        );
        assert_eq!(crate::time::format_utc(mondays[0]), "2026-03-09T13:00:00Z");
        let ended = chain_in(
            "RRULE:FREQ=DAILY;UNTIL=20260305T000000Z",
            "2026-03-02T14:00:00Z",
            5,
            Tz::America__New_York,
        );
        assert_eq!(ended.len(), 2, "UNTIL ends the series");
        let by_month_day = chain_in(
            "RRULE:FREQ=MONTHLY;BYMONTHDAY=-1",
            "2026-01-31T08:00:00Z",
            2,
            Tz::Europe__Berlin,
        );
        assert_eq!(
            local_times(&by_month_day, Tz::Europe__Berlin),
            ["02-28 09:00", "03-31 09:00"]
        );
    }
}
