//! Repeat phrases ("every day", "every 2 weeks", "every weekday", "every monday", "every month
//! on the 1st") as the tool's recurrence rules, and the first due date of a series the user
//! gave no date for.
//!
//! Rules use the simplest form the tool accepts: `DAILY`/`WEEKLY`/`MONTHLY`/`YEARLY` for a
//! period of one, `INTERVAL:N` for every N days, and an RFC 5545 rule for the rest
//! (`RRULE:FREQ=WEEKLY;INTERVAL=2`, `RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR`). Hourly repeats
//! are not offered by the engine and are not matched (the message is then not understood).
//!
//! A recurring task needs a first due date. When the message names one ("every monday starting
//! next week") it is used; otherwise the first occurrence of the rule strictly after now is:
//! the next matching day (weekday, day of the month) at the time said, or 09:00 — so "every day
//! at 9" at 10:00 starts tomorrow at 09:00 and "every month on the 1st" starts on the next 1st.

use chrono::{DateTime, Datelike, Duration, Utc, Weekday};
use chrono_tz::Tz;

use super::dates::{DEFAULT_TIME, DayPart, Unit, When, weekday_name, weekday_plural};
use super::words::{number, ordinal};
use crate::recurrence::from_wall_clock;

/// Which days a rule's occurrences fall on, for its first due date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum On {
    AnyDay,
    Weekdays(Vec<Weekday>),
    MonthDay(u32),
}

/// A recognised repeat phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeat {
    /// The tool's `recurrence_rule`.
    pub rule: String,
    /// Which days occurrences fall on, for the first due date.
    pub on: On,
    /// "every morning": the time of day the phrase implies.
    pub part: Option<DayPart>,
}

const WORKDAYS: [Weekday; 5] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
];
const WEEKEND: [Weekday; 2] = [Weekday::Sat, Weekday::Sun];

fn code(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "MO",
        Weekday::Tue => "TU",
        Weekday::Wed => "WE",
        Weekday::Thu => "TH",
        Weekday::Fri => "FR",
        Weekday::Sat => "SA",
        Weekday::Sun => "SU",
    }
}

fn simple(rule: &str) -> Repeat {
    Repeat {
        rule: rule.to_owned(),
        on: On::AnyDay,
        part: None,
    }
}

fn by_days(days: &[Weekday], interval: u32) -> Repeat {
    let mut sorted = days.to_vec();
    sorted.sort_by_key(|day| day.num_days_from_monday());
    sorted.dedup();
    let codes: Vec<&str> = sorted.iter().copied().map(code).collect();
    let interval = if interval > 1 {
        format!(";INTERVAL={interval}")
    } else {
        String::new()
    };
    Repeat {
        rule: format!("RRULE:FREQ=WEEKLY{interval};BYDAY={}", codes.join(",")),
        on: On::Weekdays(sorted),
        part: None,
    }
}

/// The rule for "every `amount` `unit`".
fn every(amount: u32, unit: Unit) -> Option<Repeat> {
    let rule = match (unit, amount) {
        (_, 0) => return None,
        (Unit::Days, 1) => "DAILY".to_owned(),
        (Unit::Days, n) => format!("INTERVAL:{n}"),
        (Unit::Weeks, 1) => "WEEKLY".to_owned(),
        (Unit::Weeks, n) => format!("RRULE:FREQ=WEEKLY;INTERVAL={n}"),
        (Unit::Months, 1) => "MONTHLY".to_owned(),
        (Unit::Months, n) => format!("RRULE:FREQ=MONTHLY;INTERVAL={n}"),
        (Unit::Years, 1) => "YEARLY".to_owned(),
        (Unit::Years, n) => format!("RRULE:FREQ=YEARLY;INTERVAL={n}"),
        (Unit::Minutes | Unit::Hours, _) => return None,
    };
    Some(simple(&rule))
}

/// A repeat phrase starting at word `i`: (words, repeat).
pub fn repeat_at(words: &[&str], i: usize) -> Option<(usize, Repeat)> {
    let word = |k: usize| words.get(i + k).copied().unwrap_or("");
    let (len, mut repeat) = match word(0) {
        "every" | "each" => every_at(words, i + 1).map(|(len, repeat)| (len + 1, repeat))?,
        "daily" => (1, simple("DAILY")),
        "nightly" => (
            1,
            Repeat {
                part: Some(DayPart::Night),
                ..simple("DAILY")
            },
        ),
        "weekly" => (1, simple("WEEKLY")),
        "monthly" => (1, simple("MONTHLY")),
        "yearly" | "annually" => (1, simple("YEARLY")),
        "biweekly" | "fortnightly" => (1, simple("RRULE:FREQ=WEEKLY;INTERVAL=2")),
        "quarterly" => (1, simple("RRULE:FREQ=MONTHLY;INTERVAL=3")),
        "on" => on_days_at(words, i + 1)
            .map(|(len, repeat)| (len + 1, repeat))
            .or_else(|| month_day_every_at(words, i))?,
        _ => month_day_every_at(words, i)?,
    };
    let mut len = len;
    // "every monday morning", "every weekday evening".
    if repeat.part.is_none()
        && let Some(part) = part_word(word(len))
    {
        repeat.part = Some(part);
        len += 1;
    }
    // "every month on the 1st", "monthly on the 15th".
    if repeat.rule == "MONTHLY"
        && repeat.on == On::AnyDay
        && let Some((extra, day)) = month_day_suffix(words, i + len)
    {
        repeat.on = On::MonthDay(day);
        len += extra;
    }
    // "every week on monday", "every 2 weeks on friday".
    if (repeat.rule == "WEEKLY" || repeat.rule.starts_with("RRULE:FREQ=WEEKLY;INTERVAL="))
        && word(len) == "on"
        && let Some((extra, days)) = weekday_list(words, i + len + 1)
    {
        let interval = repeat
            .rule
            .strip_prefix("RRULE:FREQ=WEEKLY;INTERVAL=")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        repeat = by_days(&days, interval);
        len += extra + 1;
    }
    Some((len, repeat))
}

/// After "every": "day", "2 weeks", "other day", "weekday", "monday and thursday", "morning",
/// "1st of the month".
fn every_at(words: &[&str], j: usize) -> Option<(usize, Repeat)> {
    let word = |k: usize| words.get(j + k).copied().unwrap_or("");
    let daily_at = |part: DayPart| Repeat {
        part: Some(part),
        ..simple("DAILY")
    };
    let found = match (word(0), word(1)) {
        ("day", _) => (1, simple("DAILY")),
        ("morning", _) => (1, daily_at(DayPart::Morning)),
        ("afternoon", _) => (1, daily_at(DayPart::Afternoon)),
        ("evening", _) => (1, daily_at(DayPart::Evening)),
        ("night", _) => (1, daily_at(DayPart::Night)),
        ("week", _) => (1, simple("WEEKLY")),
        ("month", _) => (1, simple("MONTHLY")),
        ("year", _) => (1, simple("YEARLY")),
        ("weekday" | "weekdays" | "workday" | "workdays", _) => (1, by_days(&WORKDAYS, 1)),
        ("working" | "business" | "work", "day" | "days") => (2, by_days(&WORKDAYS, 1)),
        ("weekend" | "weekends", _) => (1, by_days(&WEEKEND, 1)),
        ("other", unit) => (2, every(2, Unit::parse(unit)?)?),
        _ => {
            if let Some((len, days)) = weekday_list(words, j) {
                return Some((len, by_days(&days, 1)));
            }
            if let Some((len, day)) = month_day_suffix(words, j) {
                return Some((
                    len,
                    Repeat {
                        on: On::MonthDay(day),
                        ..simple("MONTHLY")
                    },
                ));
            }
            let amount = number(word(0)).filter(|_| !matches!(word(0), "a" | "an"))?;
            (2, every(amount, Unit::parse(word(1))?)?)
        }
    };
    Some(found)
}

fn part_word(norm: &str) -> Option<DayPart> {
    match norm {
        "morning" => Some(DayPart::Morning),
        "afternoon" => Some(DayPart::Afternoon),
        "evening" => Some(DayPart::Evening),
        "night" => Some(DayPart::Night),
        _ => None,
    }
}

/// "monday", "mon wed and fri", "monday & thursday": (words, days).
fn weekday_list(words: &[&str], j: usize) -> Option<(usize, Vec<Weekday>)> {
    let word = |k: usize| words.get(j + k).copied().unwrap_or("");
    let read = |norm: &str| weekday_name(norm).or_else(|| weekday_plural(norm));
    let mut days = vec![read(word(0))?];
    let mut len = 1;
    loop {
        let joiner = usize::from(matches!(word(len), "and" | "&" | "or"));
        match read(word(len + joiner)) {
            Some(day) => {
                days.push(day);
                len += joiner + 1;
            }
            None => break,
        }
    }
    Some((len, days))
}

/// "on mondays", "on weekdays", "on mondays and thursdays".
fn on_days_at(words: &[&str], j: usize) -> Option<(usize, Repeat)> {
    let word = |k: usize| words.get(j + k).copied().unwrap_or("");
    match word(0) {
        "weekdays" | "workdays" => return Some((1, by_days(&WORKDAYS, 1))),
        "weekends" => return Some((1, by_days(&WEEKEND, 1))),
        _ => {}
    }
    // Plural names only: "on monday" is a date, "on mondays" a habit.
    weekday_plural(word(0))?;
    let mut days = Vec::new();
    let mut len = 0;
    while let Some(day) = weekday_plural(word(len)) {
        days.push(day);
        len += 1;
        if matches!(word(len), "and" | "&" | "or") && weekday_plural(word(len + 1)).is_some() {
            len += 1;
        }
    }
    Some((len, by_days(&days, 1)))
}

/// "on the 1st", "the 15th", "on 3rd", "1st of the month": (words, day).
fn month_day_suffix(words: &[&str], j: usize) -> Option<(usize, u32)> {
    let word = |k: usize| words.get(j + k).copied().unwrap_or("");
    let mut len = usize::from(word(0) == "on");
    len += usize::from(word(len) == "the");
    let day = ordinal(word(len)).filter(|day| (1..=31).contains(day))?;
    len += 1;
    if word(len) == "of"
        && matches!(word(len + 1), "the" | "each" | "every")
        && word(len + 2) == "month"
    {
        len += 3;
    }
    Some((len, day))
}

/// "the 1st of every month", "on the 15th of each month".
fn month_day_every_at(words: &[&str], i: usize) -> Option<(usize, Repeat)> {
    let word = |k: usize| words.get(i + k).copied().unwrap_or("");
    let mut len = usize::from(word(0) == "on");
    len += usize::from(word(len) == "the");
    let day = ordinal(word(len)).filter(|day| (1..=31).contains(day))?;
    len += 1;
    if word(len) == "of" && matches!(word(len + 1), "every" | "each") && word(len + 2) == "month" {
        return Some((
            len + 3,
            Repeat {
                on: On::MonthDay(day),
                ..simple("MONTHLY")
            },
        ));
    }
    None
}

/// The first due date of a series: the date said if any, else the rule's first occurrence
/// after `now` (see the module documentation).
pub fn first_due(
    repeat: &Repeat,
    when: &When,
    now: DateTime<Utc>,
    zone: Tz,
) -> Option<DateTime<Utc>> {
    let mut when = *when;
    if when.part.is_none() && when.clock.is_none() {
        when.part = repeat.part;
    }
    if when.day.is_some() || when.after.is_some() {
        return when.resolve(now, zone);
    }
    let local_now = now.with_timezone(&zone).naive_local();
    let time = when.time_of_day().unwrap_or_else(|| {
        chrono::NaiveTime::from_hms_opt(DEFAULT_TIME.0, DEFAULT_TIME.1, 0)
            .unwrap_or(chrono::NaiveTime::MIN)
    });
    let today = local_now.date();
    (0..=400)
        .filter_map(|offset| today.checked_add_signed(Duration::days(offset)))
        .filter(|date| match &repeat.on {
            On::AnyDay => true,
            On::Weekdays(days) => days.contains(&date.weekday()),
            On::MonthDay(day) => date.day() == *day,
        })
        .map(|date| date.and_time(time))
        .find(|local| *local > local_now)
        .and_then(|local| from_wall_clock(zone, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Option<(usize, String)> {
        let words: Vec<&str> = text.split_whitespace().collect();
        repeat_at(&words, 0).map(|(len, repeat)| (len, repeat.rule))
    }

    #[test]
    fn phrases_become_rules() {
        let cases = [
            ("every day", 2, "DAILY"),
            ("daily", 1, "DAILY"),
            ("every week", 2, "WEEKLY"),
            ("every 2 weeks", 3, "RRULE:FREQ=WEEKLY;INTERVAL=2"),
            ("every other week", 3, "RRULE:FREQ=WEEKLY;INTERVAL=2"),
            ("every 3 days", 3, "INTERVAL:3"),
            ("every weekday", 2, "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
            (
                "every working day",
                3,
                "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            ),
            ("on weekdays", 2, "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
            ("every monday", 2, "RRULE:FREQ=WEEKLY;BYDAY=MO"),
            (
                "every mon wed and fri",
                5,
                "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR",
            ),
            (
                "on tuesdays and thursdays",
                4,
                "RRULE:FREQ=WEEKLY;BYDAY=TU,TH",
            ),
            ("every month on the 1st", 5, "MONTHLY"),
            ("on the 1st of every month", 6, "MONTHLY"),
            ("every year", 2, "YEARLY"),
            ("annually", 1, "YEARLY"),
            ("every 3 months", 3, "RRULE:FREQ=MONTHLY;INTERVAL=3"),
            (
                "every 2 weeks on friday",
                5,
                "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=FR",
            ),
        ];
        for (text, len, expected) in cases {
            assert_eq!(rule(text), Some((len, expected.to_owned())), "{text}");
        }
        for text in ["every hour", "on monday", "every", "everyone"] {
            assert_eq!(rule(text), None, "{text}");
        }
    }
}
