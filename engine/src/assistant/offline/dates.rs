//! Date and time phrases ("tomorrow at 5pm", "next friday", "in 3 days", "on Dec 24",
//! "tonight") found inside a message, and how they become an instant.
//!
//! A hand-written grammar rather than a crate: the date crates that work with chrono 0.4
//! (`interim`, its unmaintained parent `chrono-english`, `dateparser`) parse a string that *is*
//! a date, whereas a task message has the date somewhere inside a title ("buy milk tomorrow at
//! 5pm #shopping"), so we must find where a phrase starts and ends; none of them knows
//! "tonight", "end of the month" or "in half an hour", and their "next friday" differs by
//! dialect. The grammar is small, total (a phrase either matches whole or not at all, leaving
//! the words for the title) and every choice below is documented once:
//!
//! * Words are read on the user's wall clock (their time zone); the result goes to UTC through
//!   [`from_wall_clock`], so a time skipped by a DST change moves just past the gap and a time
//!   that happens twice takes the first.
//! * A date without a time is due at **09:00** that day, a useful time for a reminder "30
//!   minutes before". The one exception is "today" once 09:00 has passed: the task is due at
//!   the end of today (23:59) rather than already overdue.
//! * A time without a date ("at 5pm", "noon", "in the morning") is the next time the clock
//!   shows it: today if still ahead, otherwise tomorrow.
//! * "tonight" is today at 20:00, "this evening" today at 18:00, "this afternoon" 15:00, "this
//!   morning" 09:00; after a date, "morning"/"afternoon"/"evening"/"night" mean the same times
//!   on that day. "noon" is 12:00; "midnight" is 23:59 of the day (people mean "by the end of
//!   the day"); "end of day"/"eod" is 17:00.
//! * A bare hour after "at" has no am/pm: 1–7 are afternoon or evening ("at 5" → 17:00), 8–11
//!   morning, 12 noon, 13–23 and 0 as written; a part of the day overrides the guess
//!   ("tomorrow morning at 7" → 07:00).
//! * Weekdays: "friday" and "next friday" both mean the first Friday *after* today (so on a
//!   Friday they mean a week ahead; people say "today" for today). "this friday" is the Friday
//!   of the current Monday–Sunday week, today included, or the coming one once it has passed.
//!   "friday next week" / "next week friday" is the Friday of next week.
//! * "next week" is next Monday; "this week"/"end of the week" the coming Sunday (the week's
//!   last day); "end of the month" its last day; "next month" the 1st of next month; "this
//!   weekend" Saturday (today on a weekend).
//! * "on Dec 24" / "24 December" / "December 24th" without a year is the next Dec 24 (today
//!   included), so a date already past this year rolls to next year; "on the 24th" is the next
//!   24th of a month. ISO dates ("2026-12-24") are read as written.
//! * "in 3 days" / "in 2 weeks" / "in a month" move the calendar day and then follow the
//!   date-without-time rule; "in 2 hours" / "in 30 minutes" are exact, to the minute.
//! * Numeric dates like "24/12" or "12/24" are not read: the order of day and month depends on
//!   the country, and guessing wrong would be silently wrong. They stay in the title.

use chrono::{
    DateTime, Datelike, Days, Duration, Months, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc,
    Weekday,
};
use chrono_tz::Tz;

use super::words::{number, ordinal};
use crate::recurrence::from_wall_clock;

/// Which Friday "friday" names; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// "friday", "next friday": the first one after today.
    Coming,
    /// "this friday": in the current week, today included.
    ThisWeek,
    /// "friday next week".
    NextWeek,
}

/// A calendar day named relative to today or absolutely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Day {
    Today,
    Tomorrow,
    DayAfterTomorrow,
    Weekday(Weekday, Which),
    InDays(u32),
    InMonths(u32),
    /// A month and day, with the year if one was given.
    MonthDay {
        month: u32,
        day: u32,
        year: Option<i32>,
    },
    /// "on the 24th": the next 24th of a month.
    DayOfMonth(u32),
    Date(NaiveDate),
    NextWeek,
    EndOfWeek,
    Weekend {
        next: bool,
    },
    EndOfMonth,
    NextMonth,
    EndOfYear,
    NextYear,
}

/// A part of the day, with the time it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayPart {
    Morning,
    Afternoon,
    Evening,
    Night,
}

impl DayPart {
    fn parse(norm: &str) -> Option<Self> {
        match norm {
            "morning" => Some(Self::Morning),
            "afternoon" => Some(Self::Afternoon),
            "evening" => Some(Self::Evening),
            "night" => Some(Self::Night),
            _ => None,
        }
    }

    /// The time of day a part stands for on its own.
    pub fn time(self) -> NaiveTime {
        let hour = match self {
            Self::Morning => 9,
            Self::Afternoon => 15,
            Self::Evening => 18,
            Self::Night => 20,
        };
        hm(hour, 0)
    }
}

/// How an hour was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meridiem {
    Am,
    Pm,
    /// 24-hour clock, noon, midnight.
    Exact,
    /// "at 5": see the module documentation.
    Guess,
}

/// A time of day as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub hour: u32,
    pub minute: u32,
    pub meridiem: Meridiem,
}

impl Clock {
    fn exact(hour: u32, minute: u32) -> Self {
        Self {
            hour,
            minute,
            meridiem: Meridiem::Exact,
        }
    }

    /// The wall-clock time, with a part of the day settling an am/pm guess.
    pub fn time(self, part: Option<DayPart>) -> NaiveTime {
        let hour = match self.meridiem {
            Meridiem::Exact => self.hour,
            Meridiem::Am => self.hour % 12,
            Meridiem::Pm => self.hour % 12 + 12,
            Meridiem::Guess => match (self.hour, part) {
                (0 | 12..=23, _) => self.hour,
                (_, Some(DayPart::Morning)) => self.hour,
                (_, Some(_)) => self.hour + 12,
                (1..=7, None) => self.hour + 12,
                _ => self.hour,
            },
        };
        hm(hour, self.minute)
    }
}

/// One recognised piece of a phrase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Piece {
    Day(Day),
    Part(DayPart),
    Clock(Clock),
    /// "in 2 hours": exactly this long from now.
    After(Duration),
}

/// A phrase found at some word: how many words it covers and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Words covered, including a leading preposition.
    pub len: usize,
    /// One to three pieces ("tonight" is a day and a part of the day).
    pub pieces: Vec<Piece>,
    /// The preposition it started with ("by", "on", "before"...), if any.
    pub lead: Option<String>,
}

/// What the date phrases of one message said, slot by slot; the first phrase to fill a slot
/// wins and a later one that would overwrite it is left unused.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct When {
    /// The calendar day named.
    pub day: Option<Day>,
    /// "morning", "tonight": a default time and the am/pm of a bare hour.
    pub part: Option<DayPart>,
    /// A clock time ("5pm", "17:30", "noon").
    pub clock: Option<Clock>,
    /// "in 2 hours": an exact offset from now; excludes the other slots.
    pub after: Option<Duration>,
}

fn hm(hour: u32, minute: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or(NaiveTime::MIN)
}

/// The default time of a date given without one.
pub const DEFAULT_TIME: (u32, u32) = (9, 0);

/// The end of a day, for "today" after 09:00 and for "midnight".
fn end_of_day() -> NaiveTime {
    hm(23, 59)
}

impl When {
    /// Whether no date or time was said.
    pub fn is_empty(&self) -> bool {
        self.day.is_none() && self.part.is_none() && self.clock.is_none() && self.after.is_none()
    }

    /// Whether `pieces` fit without overwriting anything already said.
    pub fn fits(&self, pieces: &[Piece]) -> bool {
        pieces.iter().all(|piece| match piece {
            Piece::Day(_) => self.day.is_none() && self.after.is_none(),
            Piece::Part(_) => self.part.is_none() && self.after.is_none(),
            Piece::Clock(_) => self.clock.is_none() && self.after.is_none(),
            Piece::After(_) => self.is_empty(),
        })
    }

    /// Records `pieces` (call [`When::fits`] first).
    pub fn take(&mut self, pieces: &[Piece]) {
        for piece in pieces {
            match *piece {
                Piece::Day(day) => self.day = Some(day),
                Piece::Part(part) => self.part = Some(part),
                Piece::Clock(clock) => self.clock = Some(clock),
                Piece::After(after) => self.after = Some(after),
            }
        }
    }

    /// The time of day said, if any: a clock time (its am/pm settled by a part of the day), or
    /// the part's own time.
    pub fn time_of_day(&self) -> Option<NaiveTime> {
        match (self.clock, self.part) {
            (Some(clock), part) => Some(clock.time(part)),
            (None, Some(part)) => Some(part.time()),
            (None, None) => None,
        }
    }

    /// The instant meant, by the rules in the module documentation.
    pub fn resolve(&self, now: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        self.resolve_with(now, zone, None)
    }

    /// Like [`When::resolve`], but a date without a time takes `default_time` when given (a
    /// rescheduled task keeps its time of day).
    pub fn resolve_with(
        &self,
        now: DateTime<Utc>,
        zone: Tz,
        default_time: Option<NaiveTime>,
    ) -> Option<DateTime<Utc>> {
        if let Some(after) = self.after {
            let at = now.checked_add_signed(after)?;
            return at.with_second(0)?.with_nanosecond(0);
        }
        let local_now = now.with_timezone(&zone).naive_local();
        let today = local_now.date();
        let local = match (self.day, self.time_of_day()) {
            (Some(day), Some(time)) => day.date(today)?.and_time(time),
            (Some(day), None) => {
                let date = day.date(today)?;
                let time = default_time.unwrap_or_else(|| {
                    let nine = hm(DEFAULT_TIME.0, DEFAULT_TIME.1);
                    if date == today && local_now.time() >= nine {
                        end_of_day()
                    } else {
                        nine
                    }
                });
                date.and_time(time)
            }
            (None, Some(time)) => next_at(local_now, time)?,
            (None, None) => return None,
        };
        from_wall_clock(zone, local)
    }
}

/// The next time the wall clock shows `time`: today if still ahead, else tomorrow.
pub fn next_at(local_now: NaiveDateTime, time: NaiveTime) -> Option<NaiveDateTime> {
    let today = local_now.date().and_time(time);
    if today > local_now {
        Some(today)
    } else {
        local_now
            .date()
            .checked_add_days(Days::new(1))?
            .and_time(time)
            .into()
    }
}

/// The Monday of the week `date` is in.
pub fn monday_of(date: NaiveDate) -> NaiveDate {
    date - Duration::days(i64::from(date.weekday().num_days_from_monday()))
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    date.with_day(1)?.checked_add_months(Months::new(1))
}

impl Day {
    /// The calendar day meant, seen from `today`.
    pub fn date(self, today: NaiveDate) -> Option<NaiveDate> {
        let plus = |days: i64| today.checked_add_signed(Duration::days(days));
        let monday = monday_of(today);
        match self {
            Self::Today => Some(today),
            Self::Tomorrow => plus(1),
            Self::DayAfterTomorrow => plus(2),
            Self::Weekday(day, which) => {
                let offset = i64::from(day.num_days_from_monday());
                match which {
                    Which::Coming => {
                        let ahead =
                            (offset - i64::from(today.weekday().num_days_from_monday()) + 7) % 7;
                        plus(if ahead == 0 { 7 } else { ahead })
                    }
                    Which::ThisWeek => {
                        let date = monday + Duration::days(offset);
                        if date >= today {
                            Some(date)
                        } else {
                            Self::Weekday(day, Which::Coming).date(today)
                        }
                    }
                    Which::NextWeek => Some(monday + Duration::days(7 + offset)),
                }
            }
            Self::InDays(days) => today.checked_add_days(Days::new(u64::from(days))),
            Self::InMonths(months) => today.checked_add_months(Months::new(months)),
            Self::MonthDay {
                month,
                day,
                year: Some(year),
            } => NaiveDate::from_ymd_opt(year, month, day),
            Self::MonthDay {
                month,
                day,
                year: None,
            } => (today.year()..=today.year() + 8)
                .filter_map(|year| NaiveDate::from_ymd_opt(year, month, day))
                .find(|date| *date >= today),
            Self::DayOfMonth(day) => {
                let mut first = today.with_day(1)?;
                for _ in 0..=24 {
                    if let Some(date) = first.with_day(day)
                        && date >= today
                    {
                        return Some(date);
                    }
                    first = first.checked_add_months(Months::new(1))?;
                }
                None
            }
            Self::Date(date) => Some(date),
            Self::NextWeek => Some(monday + Duration::days(7)),
            Self::EndOfWeek => Some(monday + Duration::days(6)),
            Self::Weekend { next: false } => match today.weekday() {
                Weekday::Sat | Weekday::Sun => Some(today),
                _ => Some(monday + Duration::days(5)),
            },
            Self::Weekend { next: true } => Some(monday + Duration::days(12)),
            Self::EndOfMonth => first_of_next_month(today)?.pred_opt(),
            Self::NextMonth => first_of_next_month(today),
            Self::EndOfYear => NaiveDate::from_ymd_opt(today.year(), 12, 31),
            Self::NextYear => NaiveDate::from_ymd_opt(today.year() + 1, 1, 1),
        }
    }
}

/// Prepositions a date phrase may start with; they belong to the phrase, not the title.
const LEADS: &[&str] = &[
    "on", "by", "due", "for", "before", "until", "till", "from", "starting", "at", "@", "around",
];

/// The date phrase starting at word `i`, if one does.
pub fn phrase_at(words: &[&str], i: usize) -> Option<Found> {
    let mut j = i;
    let mut lead = None;
    while j < words.len() && j < i + 2 && LEADS.contains(&words[j]) {
        lead = Some(words[j].to_owned());
        j += 1;
    }
    let led = lead.is_some();
    let after_at = j > i && matches!(words[j - 1], "at" | "@" | "around" | "by");
    let (len, pieces) = core_at(words, j, led, after_at)?;
    Some(Found {
        len: j - i + len,
        pieces,
        lead,
    })
}

fn core_at(words: &[&str], j: usize, led: bool, after_at: bool) -> Option<(usize, Vec<Piece>)> {
    let word = |k: usize| words.get(j + k).copied().unwrap_or("");
    match (word(0), word(1), word(2)) {
        ("tonight" | "tonite", _, _) => {
            return Some((1, vec![Piece::Day(Day::Today), Piece::Part(DayPart::Night)]));
        }
        ("this", part, _) if DayPart::parse(part).is_some_and(|p| p != DayPart::Night) => {
            let part = DayPart::parse(part)?;
            return Some((2, vec![Piece::Day(Day::Today), Piece::Part(part)]));
        }
        ("in", "the", part) => {
            if let Some(part) = DayPart::parse(part) {
                return Some((3, vec![Piece::Part(part)]));
            }
        }
        ("at", "night", _) => return Some((2, vec![Piece::Part(DayPart::Night)])),
        ("end", "of", "day") | ("close", "of", "business") => {
            return Some((3, vec![Piece::Clock(Clock::exact(17, 0))]));
        }
        ("end", "of", "the") if word(3) == "day" => {
            return Some((4, vec![Piece::Clock(Clock::exact(17, 0))]));
        }
        ("eod" | "cob", _, _) => return Some((1, vec![Piece::Clock(Clock::exact(17, 0))])),
        _ => {}
    }
    if let Some(found) = duration_at(words, j) {
        return Some(found);
    }
    if let Some((len, day)) = day_at(words, j, led) {
        let mut pieces = vec![Piece::Day(day)];
        let mut len = len;
        // "tomorrow morning", "friday evening".
        if let Some(part) = DayPart::parse(word(len)) {
            pieces.push(Piece::Part(part));
            len += 1;
        }
        return Some((len, pieces));
    }
    if let Some((len, clock)) = clock_at(words, j, after_at) {
        return Some((len, vec![Piece::Clock(clock)]));
    }
    None
}

/// "in 3 days", "in an hour", "in half an hour", "2 weeks from now".
fn duration_at(words: &[&str], j: usize) -> Option<(usize, Vec<Piece>)> {
    let word = |k: usize| words.get(j + k).copied().unwrap_or("");
    let (start, suffix) = if word(0) == "in" || word(0) == "within" {
        (1, 0)
    } else if let Some(len) = quantity_at(words, j).map(|(len, _, _)| len)
        && word(len) == "from"
        && matches!(word(len + 1), "now" | "today")
    {
        (0, 2)
    } else {
        return None;
    };
    let (len, amount, unit) = quantity_at(words, j + start)?;
    let piece = match unit {
        Unit::Minutes => Piece::After(Duration::try_minutes(i64::from(amount))?),
        Unit::Hours => Piece::After(Duration::try_hours(i64::from(amount))?),
        Unit::Days => Piece::Day(Day::InDays(amount)),
        Unit::Weeks => Piece::Day(Day::InDays(amount.checked_mul(7)?)),
        Unit::Months => Piece::Day(Day::InMonths(amount)),
        Unit::Years => Piece::Day(Day::InMonths(amount.checked_mul(12)?)),
    };
    Some((start + len + suffix, vec![piece]))
}

/// A unit of time in "in 3 days" or "30 minutes before".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Minutes,
    Hours,
    Days,
    Weeks,
    Months,
    Years,
}

impl Unit {
    /// Reads a unit word ("mins", "hours", "h", "weeks").
    pub fn parse(norm: &str) -> Option<Self> {
        match norm {
            "minute" | "minutes" | "min" | "mins" | "m" => Some(Self::Minutes),
            "hour" | "hours" | "hr" | "hrs" | "h" => Some(Self::Hours),
            "day" | "days" => Some(Self::Days),
            "week" | "weeks" | "wk" | "wks" => Some(Self::Weeks),
            "month" | "months" => Some(Self::Months),
            "year" | "years" => Some(Self::Years),
            _ => None,
        }
    }

    /// Minutes in `amount` of this unit, for reminder lead times (a month is 30 days).
    pub fn minutes(self, amount: u32) -> Option<i64> {
        let per = match self {
            Self::Minutes => 1,
            Self::Hours => 60,
            Self::Days => 1_440,
            Self::Weeks => 10_080,
            Self::Months => 43_200,
            Self::Years => 525_600,
        };
        i64::from(amount).checked_mul(per)
    }
}

/// "3 days", "a week", "half an hour", "a couple of days", "30min", "a fortnight": (words,
/// amount, unit). Half an hour is 30 minutes.
pub fn quantity_at(words: &[&str], j: usize) -> Option<(usize, u32, Unit)> {
    let word = |k: usize| words.get(j + k).copied().unwrap_or("");
    if word(0) == "half"
        && matches!(word(1), "an" | "a")
        && Unit::parse(word(2)) == Some(Unit::Hours)
    {
        return Some((3, 30, Unit::Minutes));
    }
    if matches!(word(0), "a" | "one") && word(1) == "fortnight" {
        return Some((2, 14, Unit::Days));
    }
    if word(0) == "a" && word(1) == "couple" && word(2) == "of" {
        let unit = Unit::parse(word(3))?;
        return Some((4, 2, unit));
    }
    // "30min", "2h", "3days".
    let compact = word(0);
    let digits = compact.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && digits < compact.len() {
        let (amount, unit) = compact.split_at(digits);
        if let (Ok(amount), Some(unit)) = (amount.parse(), Unit::parse(unit)) {
            return Some((1, amount, unit));
        }
    }
    let amount = number(word(0))?;
    let unit = Unit::parse(word(1))?;
    Some((2, amount, unit))
}

fn weekday(norm: &str, led: bool) -> Option<Weekday> {
    let day = match norm {
        "monday" | "mon" => Weekday::Mon,
        "tuesday" | "tue" | "tues" => Weekday::Tue,
        "wednesday" => Weekday::Wed,
        "thursday" | "thu" | "thur" | "thurs" => Weekday::Thu,
        "friday" | "fri" => Weekday::Fri,
        "saturday" => Weekday::Sat,
        "sunday" => Weekday::Sun,
        // Also English words; only after "on", "by", "next"...
        "wed" if led => Weekday::Wed,
        "sat" if led => Weekday::Sat,
        "sun" if led => Weekday::Sun,
        _ => return None,
    };
    Some(day)
}

/// A plural weekday ("mondays"), for "on mondays".
pub fn weekday_plural(norm: &str) -> Option<Weekday> {
    weekday(norm.strip_suffix('s')?, false)
}

/// A weekday name in any spelling this grammar knows.
pub fn weekday_name(norm: &str) -> Option<Weekday> {
    weekday(norm, true)
}

fn month(norm: &str) -> Option<u32> {
    let month = match norm {
        "january" | "jan" => 1,
        "february" | "feb" => 2,
        "march" | "mar" => 3,
        "april" | "apr" => 4,
        "may" => 5,
        "june" | "jun" => 6,
        "july" | "jul" => 7,
        "august" | "aug" => 8,
        "september" | "sep" | "sept" => 9,
        "october" | "oct" => 10,
        "november" | "nov" => 11,
        "december" | "dec" => 12,
        _ => return None,
    };
    Some(month)
}

/// A day of the month: "24", "24th", "first".
fn day_number(norm: &str) -> Option<u32> {
    norm.parse::<u32>()
        .ok()
        .or_else(|| ordinal(norm))
        .filter(|day| (1..=31).contains(day))
}

fn year_number(norm: &str) -> Option<i32> {
    (norm.len() == 4)
        .then(|| norm.parse::<i32>().ok())
        .flatten()
        .filter(|year| (2000..=2200).contains(year))
}

/// Whether `month`/`day` is a real date in some year (Feb 29 is).
fn real(month: u32, day: u32) -> bool {
    NaiveDate::from_ymd_opt(2024, month, day).is_some()
}

fn day_at(words: &[&str], j: usize, led: bool) -> Option<(usize, Day)> {
    let word = |k: usize| words.get(j + k).copied().unwrap_or("");
    let simple = match (word(0), word(1), word(2)) {
        ("today", _, _) => Some((1, Day::Today)),
        ("tomorrow" | "tmrw" | "tmr" | "tomorow" | "tommorow" | "tommorrow", _, _) => {
            Some((1, Day::Tomorrow))
        }
        ("overmorrow", _, _) => Some((1, Day::DayAfterTomorrow)),
        ("the", "day", "after") if word(3) == "tomorrow" => Some((4, Day::DayAfterTomorrow)),
        ("day", "after", "tomorrow") => Some((3, Day::DayAfterTomorrow)),
        ("next", "week", next) => match weekday_name(next) {
            Some(day) => Some((3, Day::Weekday(day, Which::NextWeek))),
            None => Some((2, Day::NextWeek)),
        },
        ("next", "month", _) => Some((2, Day::NextMonth)),
        ("next", "year", _) => Some((2, Day::NextYear)),
        ("next", "weekend", _) => Some((2, Day::Weekend { next: true })),
        ("this", "weekend", _) | ("the", "weekend", _) => Some((2, Day::Weekend { next: false })),
        ("weekend", _, _) if led => Some((1, Day::Weekend { next: false })),
        ("this", "week", _) | ("eow", _, _) => {
            Some((if word(0) == "eow" { 1 } else { 2 }, Day::EndOfWeek))
        }
        ("this", "month", _) => Some((2, Day::EndOfMonth)),
        ("eom", _, _) => Some((1, Day::EndOfMonth)),
        ("this", "year", _) => Some((2, Day::EndOfYear)),
        ("end", "of", unit) | ("the", "end", unit) => {
            // "end of the month", "end of month", "the end of the week".
            let (skip, unit) = if word(0) == "the" {
                if unit != "of" {
                    return None;
                }
                (1, word(3))
            } else {
                (0, unit)
            };
            let (len, unit) = if unit == "the" {
                (skip + 4, word(skip + 3))
            } else {
                (skip + 3, unit)
            };
            match unit {
                "week" => Some((len, Day::EndOfWeek)),
                "month" => Some((len, Day::EndOfMonth)),
                "year" => Some((len, Day::EndOfYear)),
                _ => None,
            }
        }
        _ => None,
    };
    if simple.is_some() {
        return simple;
    }
    // Weekdays: "friday", "this friday", "next friday", "friday next week".
    let (skip, which) = match (word(0), word(1)) {
        ("this", _) => (1, Which::ThisWeek),
        ("next" | "coming", _) => (1, Which::Coming),
        ("the", "coming") => (2, Which::Coming),
        _ => (0, Which::Coming),
    };
    if let Some(day) = weekday(word(skip), led || skip > 0) {
        if which == Which::Coming && word(skip + 1) == "next" && word(skip + 2) == "week" {
            return Some((skip + 3, Day::Weekday(day, Which::NextWeek)));
        }
        return Some((skip + 1, Day::Weekday(day, which)));
    }
    if let Some(date) = iso_date(word(0)) {
        return Some((1, Day::Date(date)));
    }
    month_day_at(words, j, led)
}

fn iso_date(norm: &str) -> Option<NaiveDate> {
    if norm.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(norm, "%Y-%m-%d").ok()
}

/// "Dec 24", "December 24th, 2027", "24 December", "the 24th of December", "on the 24th".
fn month_day_at(words: &[&str], j: usize, led: bool) -> Option<(usize, Day)> {
    let word = |k: usize| words.get(j + k).copied().unwrap_or("");
    let with_year = |len: usize, month: u32, day: u32| -> Option<(usize, Day)> {
        if !real(month, day) {
            return None;
        }
        match year_number(word(len)) {
            Some(year) => Some((
                len + 1,
                Day::MonthDay {
                    month,
                    day,
                    year: Some(year),
                },
            )),
            None => Some((
                len,
                Day::MonthDay {
                    month,
                    day,
                    year: None,
                },
            )),
        }
    };
    // Month first: "dec 24", "december the 24th".
    if let Some(month) = month(word(0)) {
        if let Some(day) = day_number(word(1)) {
            return with_year(2, month, day);
        }
        if word(1) == "the"
            && let Some(day) = day_number(word(2))
        {
            return with_year(3, month, day);
        }
        return None;
    }
    // Day first: "24 dec", "24th of december", "the 24th of december", "the 24th".
    let skip = usize::from(word(0) == "the");
    let day = day_number(word(skip))?;
    let of = usize::from(word(skip + 1) == "of");
    if let Some(month) = month(word(skip + 1 + of)) {
        return with_year(skip + 2 + of, month, day);
    }
    // A day of the month alone needs an ordinal and a preposition or "of the month", so that
    // "the 5th anniversary" stays a title.
    let is_ordinal = ordinal(word(skip)).is_some();
    if is_ordinal && word(skip + 1) == "of" && word(skip + 2) == "the" && word(skip + 3) == "month"
    {
        return Some((skip + 4, Day::DayOfMonth(day)));
    }
    if is_ordinal && led {
        return Some((skip + 1, Day::DayOfMonth(day)));
    }
    None
}

/// "5pm", "5 pm", "5:30pm", "17:30", "noon", "midnight", "9 o'clock", and "at 9" (a bare hour
/// only after "at").
fn clock_at(words: &[&str], j: usize, after_at: bool) -> Option<(usize, Clock)> {
    let word = |k: usize| words.get(j + k).copied().unwrap_or("");
    match word(0) {
        "noon" | "midday" => return Some((1, Clock::exact(12, 0))),
        "midnight" => return Some((1, Clock::exact(23, 59))),
        _ => {}
    }
    let text = word(0);
    let (body, meridiem) = if let Some(body) = text
        .strip_suffix("pm")
        .or_else(|| text.strip_suffix("p.m"))
        .or_else(|| text.strip_suffix("p"))
        .filter(|body| !body.is_empty())
    {
        (body, Some(Meridiem::Pm))
    } else if let Some(body) = text
        .strip_suffix("am")
        .or_else(|| text.strip_suffix("a.m"))
        .or_else(|| text.strip_suffix("a"))
        .filter(|body| !body.is_empty())
    {
        (body, Some(Meridiem::Am))
    } else {
        (text, None)
    };
    let (hour, minute, colon) = match body.split_once([':', '.']) {
        Some((hour, minute)) if minute.len() == 2 => {
            (hour.parse::<u32>().ok()?, minute.parse::<u32>().ok()?, true)
        }
        Some(_) => return None,
        None => (body.parse::<u32>().ok()?, 0, false),
    };
    // "5.30" needs am/pm to be a time; "5:30" does not.
    if body.contains('.') && meridiem.is_none() {
        return None;
    }
    if minute > 59 {
        return None;
    }
    if let Some(meridiem) = meridiem {
        return (1..=12).contains(&hour).then_some((
            1,
            Clock {
                hour,
                minute,
                meridiem,
            },
        ));
    }
    let spaced = match word(1) {
        "pm" | "p.m" => Some(Meridiem::Pm),
        "am" | "a.m" => Some(Meridiem::Am),
        _ => None,
    };
    if let Some(meridiem) = spaced {
        return (1..=12).contains(&hour).then_some((
            2,
            Clock {
                hour,
                minute,
                meridiem,
            },
        ));
    }
    if hour > 23 {
        return None;
    }
    let meridiem = if hour > 12 || hour == 0 {
        Meridiem::Exact
    } else {
        Meridiem::Guess
    };
    let clock = Clock {
        hour,
        minute,
        meridiem,
    };
    if word(1) == "o'clock" || word(1) == "oclock" {
        return Some((2, clock));
    }
    (colon || after_at).then_some((1, clock))
}

/// The UTC instant of local midnight starting `date` in `zone`.
pub fn start_of_day(date: NaiveDate, zone: Tz) -> Option<DateTime<Utc>> {
    from_wall_clock(zone, date.and_time(NaiveTime::MIN))
}

/// Every date phrase in `words`, in order, with the words each covers; phrases that would
/// repeat a slot already filled are skipped. Used by the tests and by list windows.
#[cfg(test)]
pub fn scan(words: &[&str]) -> (When, Vec<bool>) {
    let mut when = When::default();
    let mut used = vec![false; words.len()];
    let mut i = 0;
    while i < words.len() {
        if let Some(found) = phrase_at(words, i)
            && when.fits(&found.pieces)
        {
            when.take(&found.pieces);
            for flag in &mut used[i..i + found.len] {
                *flag = true;
            }
            i += found.len;
        } else {
            i += 1;
        }
    }
    (when, used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{format_utc, parse_datetime};

    fn at(text: &str) -> DateTime<Utc> {
        parse_datetime(text).expect("test instant")
    }

    /// Resolves the whole phrase `text`, which must be used completely.
    fn when(text: &str, now: &str, zone: Tz) -> String {
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower.split_whitespace().collect();
        let (when, used) = scan(&words);
        assert!(
            used.iter().all(|u| *u),
            "{text}: not all words used: {used:?}"
        );
        when.resolve(at(now), zone)
            .map(format_utc)
            .unwrap_or_else(|| "none".to_owned())
    }

    const FRI: &str = "2026-11-27T10:00:00Z"; // Friday
    const UTC: Tz = Tz::UTC;

    #[test]
    fn relative_days_and_times() {
        let cases = [
            ("tomorrow at 5pm", "2026-11-28T17:00:00Z"),
            ("at 5pm tomorrow", "2026-11-28T17:00:00Z"),
            ("tomorrow 5:30 pm", "2026-11-28T17:30:00Z"),
            ("tomorrow", "2026-11-28T09:00:00Z"),
            ("today", "2026-11-27T23:59:00Z"),
            ("tonight", "2026-11-27T20:00:00Z"),
            ("this evening", "2026-11-27T18:00:00Z"),
            ("tomorrow morning", "2026-11-28T09:00:00Z"),
            ("tomorrow morning at 7", "2026-11-28T07:00:00Z"),
            ("at 7", "2026-11-27T19:00:00Z"),
            ("at 9", "2026-11-28T09:00:00Z"),
            ("at noon", "2026-11-27T12:00:00Z"),
            ("at midnight", "2026-11-27T23:59:00Z"),
            ("17:30", "2026-11-27T17:30:00Z"),
            ("at 8am", "2026-11-28T08:00:00Z"),
            ("in 3 days", "2026-11-30T09:00:00Z"),
            ("in 2 hours", "2026-11-27T12:00:00Z"),
            ("in 30 minutes", "2026-11-27T10:30:00Z"),
            ("in half an hour", "2026-11-27T10:30:00Z"),
            ("in a week", "2026-12-04T09:00:00Z"),
            ("2 weeks from now", "2026-12-11T09:00:00Z"),
            ("the day after tomorrow", "2026-11-29T09:00:00Z"),
            ("end of day", "2026-11-27T17:00:00Z"),
        ];
        for (text, expected) in cases {
            assert_eq!(when(text, FRI, UTC), expected, "{text}");
        }
    }

    #[test]
    fn weekdays_this_and_next() {
        let cases = [
            // Today is Friday: "friday" and "next friday" are a week ahead.
            ("friday", "2026-12-04T09:00:00Z"),
            ("next friday", "2026-12-04T09:00:00Z"),
            ("this friday", "2026-11-27T23:59:00Z"),
            ("on monday", "2026-11-30T09:00:00Z"),
            ("next monday", "2026-11-30T09:00:00Z"),
            ("this monday", "2026-11-30T09:00:00Z"),
            ("friday next week", "2026-12-04T09:00:00Z"),
            ("next week monday", "2026-11-30T09:00:00Z"),
            ("next week", "2026-11-30T09:00:00Z"),
            ("this week", "2026-11-29T09:00:00Z"),
            ("this weekend", "2026-11-28T09:00:00Z"),
            ("by sat", "2026-11-28T09:00:00Z"),
            ("thursday evening", "2026-12-03T18:00:00Z"),
        ];
        for (text, expected) in cases {
            assert_eq!(when(text, FRI, UTC), expected, "{text}");
        }
        // On a Wednesday, "next friday" is two days ahead and "friday next week" nine.
        let wed = "2026-11-25T10:00:00Z";
        assert_eq!(when("next friday", wed, UTC), "2026-11-27T09:00:00Z");
        assert_eq!(when("friday next week", wed, UTC), "2026-12-04T09:00:00Z");
        assert_eq!(when("this monday", wed, UTC), "2026-11-30T09:00:00Z");
    }

    #[test]
    fn month_and_year_roll_over() {
        let cases = [
            ("on dec 24", FRI, "2026-12-24T09:00:00Z"),
            ("december 24th", FRI, "2026-12-24T09:00:00Z"),
            ("24 december", FRI, "2026-12-24T09:00:00Z"),
            ("the 24th of december 2027", FRI, "2027-12-24T09:00:00Z"),
            ("on jan 5", FRI, "2027-01-05T09:00:00Z"),
            ("on nov 2", FRI, "2027-11-02T09:00:00Z"),
            ("on dec 24", "2026-12-25T10:00:00Z", "2027-12-24T09:00:00Z"),
            ("on the 1st", FRI, "2026-12-01T09:00:00Z"),
            ("on the 27th", FRI, "2026-11-27T23:59:00Z"),
            ("on the 31st", FRI, "2026-12-31T09:00:00Z"),
            (
                "on the 30th",
                "2027-01-31T10:00:00Z",
                "2027-03-30T09:00:00Z",
            ),
            ("end of the month", FRI, "2026-11-30T09:00:00Z"),
            (
                "end of the month",
                "2028-02-10T10:00:00Z",
                "2028-02-29T09:00:00Z",
            ),
            ("next month", FRI, "2026-12-01T09:00:00Z"),
            ("next week", "2026-12-30T10:00:00Z", "2027-01-04T09:00:00Z"),
            ("in 1 month", "2027-01-31T10:00:00Z", "2027-02-28T09:00:00Z"),
            ("on feb 29", FRI, "2028-02-29T09:00:00Z"),
            ("2026-12-24", FRI, "2026-12-24T09:00:00Z"),
            ("tomorrow", "2026-12-31T10:00:00Z", "2027-01-01T09:00:00Z"),
        ];
        for (text, now, expected) in cases {
            assert_eq!(when(text, now, UTC), expected, "{text} at {now}");
        }
    }

    #[test]
    fn new_york_across_dst() {
        let ny: Tz = "America/New_York".parse().expect("zone");
        // Saturday 7 March 2026, 10:00 EST; clocks go forward at 02:00 on Sunday 8 March.
        let sat = "2026-03-07T15:00:00Z";
        assert_eq!(when("tomorrow at 9am", sat, ny), "2026-03-08T13:00:00Z");
        assert_eq!(when("at 9am", sat, ny), "2026-03-08T13:00:00Z");
        // 02:30 does not exist that night: just past the gap, 03:00 EDT.
        assert_eq!(when("tomorrow at 2:30am", sat, ny), "2026-03-08T07:00:00Z");
        assert_eq!(when("in 2 days", sat, ny), "2026-03-09T13:00:00Z");
        // "in 24 hours" is exact: 11:00 EDT the next day.
        assert_eq!(when("in 24 hours", sat, ny), "2026-03-08T15:00:00Z");
        // Saturday 31 October 2026, 10:00 EDT; clocks go back at 02:00 on Sunday 1 November.
        let oct = "2026-10-31T14:00:00Z";
        assert_eq!(when("tomorrow at 9", oct, ny), "2026-11-01T14:00:00Z");
        // 01:30 happens twice: the first (EDT).
        assert_eq!(when("tomorrow at 1:30am", oct, ny), "2026-11-01T05:30:00Z");
        assert_eq!(when("tonight", oct, ny), "2026-11-01T00:00:00Z");
        assert_eq!(when("next monday", oct, ny), "2026-11-02T14:00:00Z");
    }

    #[test]
    fn berlin_days_follow_the_local_calendar() {
        let berlin: Tz = "Europe/Berlin".parse().expect("zone");
        // 23:30 UTC on Friday is already Saturday 00:30 in Berlin.
        let late = "2026-11-27T23:30:00Z";
        assert_eq!(when("tomorrow", late, berlin), "2026-11-29T08:00:00Z");
        assert_eq!(when("today", late, berlin), "2026-11-28T08:00:00Z");
        // Summer time ends on Sunday 25 October 2026.
        let sat = "2026-10-24T08:00:00Z";
        assert_eq!(when("tomorrow at 9", sat, berlin), "2026-10-25T08:00:00Z");
        assert_eq!(
            when("tomorrow at 2:30am", sat, berlin),
            "2026-10-25T00:30:00Z"
        );
        // And begins on Sunday 29 March 2026: 02:30 does not exist.
        let mar = "2026-03-28T08:00:00Z";
        assert_eq!(
            when("tomorrow at 2:30am", mar, berlin),
            "2026-03-29T01:00:00Z"
        );
        assert_eq!(when("tomorrow at 10", mar, berlin), "2026-03-29T08:00:00Z");
    }

    #[test]
    fn not_dates() {
        for text in [
            "buy 3 apples",
            "read chapter 5",
            "the 5th anniversary",
            "may the force",
            "at the station",
            "24/12",
            "for 2 people",
            "sun cream",
        ] {
            let lower = text.to_lowercase();
            let words: Vec<&str> = lower.split_whitespace().collect();
            let (when, used) = scan(&words);
            assert!(when.is_empty(), "{text}: {when:?} {used:?}");
        }
    }
}
