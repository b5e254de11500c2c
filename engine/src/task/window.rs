//! Due-date windows, "today", "upcoming" and "overdue", as a user means them: on the calendar
//! of their own time zone, so "today" ends at their midnight, not UTC's.

use chrono::{DateTime, Days, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::recurrence::from_wall_clock;

/// How many days after today "upcoming" reaches.
pub const UPCOMING_DAYS: u64 = 7;

/// A window of due dates relative to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueWindow {
    /// Due on today's date (earlier today included).
    Today,
    /// Due on one of the next [`UPCOMING_DAYS`] days after today.
    Upcoming,
    /// Due before now.
    Overdue,
}

impl DueWindow {
    pub const ALL: [DueWindow; 3] = [Self::Today, Self::Upcoming, Self::Overdue];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Today => "today",
            Self::Upcoming => "upcoming",
            Self::Overdue => "overdue",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|window| window.as_str() == text)
    }

    /// The window as instants `[from, until)`; `None` is unbounded on that side.
    pub fn bounds(
        self,
        now: DateTime<Utc>,
        zone: Tz,
    ) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let today = now.with_timezone(&zone).date_naive();
        let midnight = |days: u64| {
            today
                .checked_add_days(Days::new(days))
                .and_then(|date| from_wall_clock(zone, date.and_time(NaiveTime::MIN)))
        };
        match self {
            Self::Today => (midnight(0), midnight(1)),
            Self::Upcoming => (midnight(1), midnight(1 + UPCOMING_DAYS)),
            Self::Overdue => (None, Some(now)),
        }
    }

    /// Whether a task due at `due` falls in the window.
    pub fn contains(self, due: DateTime<Utc>, now: DateTime<Utc>, zone: Tz) -> bool {
        let (from, until) = self.bounds(now, zone);
        from.is_none_or(|from| due >= from) && until.is_none_or(|until| due < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|instant| instant.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn windows_follow_the_users_calendar() {
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap_or(Tz::UTC);
        // 23:30 UTC on 5 Dec is 08:30 on 6 Dec in Tokyo.
        let now = at("2026-12-05T23:30:00Z");
        assert!(DueWindow::Today.contains(at("2026-12-06T10:00:00Z"), now, tokyo));
        assert!(!DueWindow::Today.contains(at("2026-12-06T10:00:00Z"), now, Tz::UTC));
        assert!(DueWindow::Today.contains(at("2026-12-05T15:00:00Z"), now, tokyo));
        assert!(DueWindow::Upcoming.contains(at("2026-12-06T15:00:00Z"), now, tokyo));
        assert!(DueWindow::Upcoming.contains(at("2026-12-13T14:59:00Z"), now, tokyo));
        assert!(!DueWindow::Upcoming.contains(at("2026-12-13T15:00:00Z"), now, tokyo));
        assert!(DueWindow::Overdue.contains(at("2026-12-05T23:29:00Z"), now, tokyo));
        assert!(!DueWindow::Overdue.contains(now, now, tokyo));
        assert_eq!(DueWindow::parse("upcoming"), Some(DueWindow::Upcoming));
        assert_eq!(DueWindow::parse("soon"), None);
    }
}
