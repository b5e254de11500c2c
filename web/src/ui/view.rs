//! What the templates show, already formatted in the user's time zone: templates stay free of
//! logic and every date reads the same on every page.

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use taskstream_engine::assistant::offline::reply::{lead_time, repeat_words};
use taskstream_engine::reminder::ReminderSpec;
use taskstream_engine::task::{Task, TaskStatus};

/// The frame around every signed-in page.
pub struct Chrome {
    pub title: String,
    pub email: String,
    pub csrf: String,
    /// Which navigation entry is current.
    pub nav: &'static str,
    pub unread: u64,
    pub theme: String,
    pub asset_version: &'static str,
}

/// "Tue 1 Dec 09:00", with the year when it is not this year.
pub fn short_date(instant: DateTime<Utc>, zone: Tz, now: DateTime<Utc>) -> String {
    let local = instant.with_timezone(&zone);
    if local.year() == now.with_timezone(&zone).year() {
        local.format("%a %-d %b %H:%M").to_string()
    } else {
        local.format("%a %-d %b %Y %H:%M").to_string()
    }
}

/// The `datetime-local` value of an instant in `zone`.
pub fn input_value(instant: DateTime<Utc>, zone: Tz) -> String {
    instant
        .with_timezone(&zone)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// One task as a row of the list or the head of its page.
pub struct TaskRow {
    pub id: String,
    pub title: String,
    pub description: String,
    pub status: &'static str,
    pub status_label: &'static str,
    pub priority: &'static str,
    pub tags: Vec<String>,
    pub due: String,
    /// Machine-readable due instant for `<time datetime>`.
    pub due_iso: String,
    pub overdue: bool,
    pub repeats: String,
    pub reminder: String,
    pub completed: bool,
    /// The project's id and name ("" for none; the name is filled in by the page).
    pub project_id: String,
    pub project: String,
    /// The task this is a subtask of ("" for a top-level task), and its title when the page
    /// shows it (a subtask listed without its parent).
    pub parent_id: String,
    pub parent_title: String,
    /// Subtask progress, "2/5" ("" without subtasks), and the total.
    pub progress: String,
    pub subtask_total: u64,
    /// The subtasks shown under this row (those the list's filters keep).
    pub subtasks: Vec<TaskRow>,
}

fn status_label(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Pending => "To do",
        TaskStatus::InProgress => "In progress",
        TaskStatus::Completed => "Done",
    }
}

impl TaskRow {
    pub fn new(task: &Task, zone: Tz, now: DateTime<Utc>) -> Self {
        let completed = task.status == TaskStatus::Completed;
        let mut reminders: Vec<String> = task
            .reminder_offset_minutes
            .map(|minutes| format!("{} before", lead_time(minutes)))
            .into_iter()
            .collect();
        reminders.extend(task.reminders.iter().map(|spec| match spec {
            ReminderSpec::Offset { offset_minutes } => {
                format!("{} before", lead_time(*offset_minutes))
            }
            ReminderSpec::At { at } => format!("at {}", short_date(*at, zone, now)),
        }));
        TaskRow {
            id: task.id.to_string(),
            title: task.title.clone(),
            description: task.description.clone().unwrap_or_default(),
            status: task.status.as_str(),
            status_label: status_label(task.status),
            priority: task.priority.as_str(),
            tags: task.tags.clone(),
            due: task
                .due_date
                .map(|due| short_date(due, zone, now))
                .unwrap_or_default(),
            due_iso: task
                .due_date
                .map(taskstream_engine::time::format_utc)
                .unwrap_or_default(),
            overdue: !completed && task.due_date.is_some_and(|due| due < now),
            repeats: task
                .recurrence_rule
                .as_ref()
                .filter(|_| task.is_recurring)
                .map(|rule| repeat_words(&rule.to_string()))
                .unwrap_or_default(),
            reminder: reminders.join(", "),
            completed,
            project_id: task.project_id.map(|id| id.to_string()).unwrap_or_default(),
            project: String::new(),
            parent_id: task.subtask_of.map(|id| id.to_string()).unwrap_or_default(),
            parent_title: String::new(),
            progress: String::new(),
            subtask_total: 0,
            subtasks: Vec::new(),
        }
    }

    /// Shows the subtask progress ("2/5").
    pub fn with_progress(mut self, count: taskstream_engine::project::SubtaskCount) -> Self {
        if count.total > 0 {
            self.progress = format!("{}/{}", count.completed, count.total);
        }
        self.subtask_total = count.total;
        self
    }
}

/// The task form's values (new: defaults; edit: the task's).
pub struct TaskFormValues {
    pub title: String,
    pub description: String,
    pub priority: String,
    pub status: String,
    pub tags: String,
    pub due_date: String,
    pub reminder_offset_minutes: String,
    pub remind_at: String,
    /// Whether the one-off reminder field is shown (the task has at most one).
    pub reminders_shown: bool,
    /// DAILY, WEEKLY, MONTHLY, YEARLY, INTERVAL, CUSTOM or "".
    pub repeat: String,
    /// The weekday picker of a weekly rule (`MO`..`SU`); none: the due date's weekday.
    pub byday: Vec<String>,
    pub interval_days: String,
    pub custom_rule: String,
    pub recurrence_trigger: String,
    pub recurrence_from: String,
    /// The chosen project's id ("" for none).
    pub project_id: String,
    /// A subtask's project is its parent's: the form shows no choice.
    pub is_subtask: bool,
}

impl Default for TaskFormValues {
    fn default() -> Self {
        TaskFormValues {
            title: String::new(),
            description: String::new(),
            priority: "medium".to_owned(),
            status: "pending".to_owned(),
            tags: String::new(),
            due_date: String::new(),
            reminder_offset_minutes: String::new(),
            remind_at: String::new(),
            reminders_shown: true,
            repeat: String::new(),
            byday: Vec::new(),
            interval_days: "2".to_owned(),
            custom_rule: String::new(),
            recurrence_trigger: "on_complete".to_owned(),
            recurrence_from: "due".to_owned(),
            project_id: String::new(),
            is_subtask: false,
        }
    }
}

impl TaskFormValues {
    pub fn of(task: &Task, zone: Tz) -> Self {
        let rule = task
            .recurrence_rule
            .as_ref()
            .filter(|_| task.is_recurring)
            .map(|rule| rule.to_string())
            .unwrap_or_default();
        let mut byday = Vec::new();
        let (repeat, interval_days, custom_rule) = if rule.is_empty() {
            (String::new(), "2".to_owned(), String::new())
        } else if let Some(days) = rule.strip_prefix("INTERVAL:") {
            ("INTERVAL".to_owned(), days.to_owned(), String::new())
        } else if let Some(days) = weekly_days(&rule) {
            // A weekly rule on some weekdays is edited with the weekday picker, not as RRULE.
            byday = days;
            ("WEEKLY".to_owned(), "2".to_owned(), String::new())
        } else if rule.starts_with("RRULE:") {
            ("CUSTOM".to_owned(), "2".to_owned(), rule.clone())
        } else {
            (rule.clone(), "2".to_owned(), String::new())
        };
        let one_at = match task.reminders.as_slice() {
            [] => Some(String::new()),
            [ReminderSpec::At { at }] => Some(input_value(*at, zone)),
            _ => None,
        };
        TaskFormValues {
            title: task.title.clone(),
            description: task.description.clone().unwrap_or_default(),
            priority: task.priority.as_str().to_owned(),
            status: task.status.as_str().to_owned(),
            tags: task.tags.join(", "),
            due_date: task
                .due_date
                .map(|due| input_value(due, zone))
                .unwrap_or_default(),
            reminder_offset_minutes: task
                .reminder_offset_minutes
                .map(|minutes| minutes.to_string())
                .unwrap_or_default(),
            reminders_shown: one_at.is_some(),
            remind_at: one_at.unwrap_or_default(),
            repeat,
            byday,
            interval_days,
            custom_rule,
            recurrence_trigger: task.recurrence_trigger.as_str().to_owned(),
            recurrence_from: task.recurrence_from.as_str().to_owned(),
            project_id: task.project_id.map(|id| id.to_string()).unwrap_or_default(),
            is_subtask: task.subtask_of.is_some(),
        }
    }

    /// Whether the weekday picker has `day` ticked.
    pub fn has_day(&self, day: &str) -> bool {
        self.byday.iter().any(|ticked| ticked == day)
    }

    /// Values as typed, to show the form again after a refusal.
    pub fn from_form(form: &super::form::Form) -> Self {
        let text = |name: &str| form.text(name).to_owned();
        TaskFormValues {
            title: text("title"),
            description: text("description"),
            priority: text("priority"),
            status: text("status"),
            tags: text("tags"),
            due_date: text("due_date"),
            reminder_offset_minutes: text("reminder_offset_minutes"),
            remind_at: text("remind_at"),
            reminders_shown: form.get("reminders_shown").is_some(),
            repeat: text("repeat"),
            byday: form
                .all("byday")
                .iter()
                .map(|day| (*day).to_owned())
                .collect(),
            interval_days: text("interval_days"),
            custom_rule: text("custom_rule"),
            recurrence_trigger: text("recurrence_trigger"),
            recurrence_from: text("recurrence_from"),
            project_id: text("project_id"),
            is_subtask: form.get("is_subtask").is_some(),
        }
    }
}

/// A project as the sidebar and the pickers show it.
#[derive(Clone)]
pub struct ProjectItem {
    pub id: String,
    pub name: String,
    /// Its tasks not completed (the sidebar's count).
    pub open: u64,
    /// The list filtered to it.
    pub url: String,
}

impl ProjectItem {
    /// The item of a stored project, linking to its unfiltered list.
    pub fn of(summary: &taskstream_engine::project::ProjectSummary) -> Self {
        let id = summary.project.id.to_string();
        ProjectItem {
            url: format!("/?project={id}"),
            id,
            name: summary.project.name.clone(),
            open: summary.open_task_count,
        }
    }
}

/// The weekdays, in the order the picker shows them and a rule lists them.
pub const WEEKDAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

/// The days of `RRULE:FREQ=WEEKLY;BYDAY=MO,WE` (an `INTERVAL=1` or `WKST` may be there too),
/// when that is all the rule says: what the weekday picker can show.
pub fn weekly_days(rule: &str) -> Option<Vec<String>> {
    let body = rule.strip_prefix("RRULE:")?;
    let mut weekly = false;
    let mut days = Vec::new();
    for part in body.split(';') {
        match part.split_once('=')? {
            ("FREQ", "WEEKLY") => weekly = true,
            ("INTERVAL", "1") | ("WKST", _) => {}
            ("BYDAY", list) => {
                for day in list.split(',') {
                    if !WEEKDAYS.contains(&day) {
                        return None;
                    }
                    days.push(day.to_owned());
                }
            }
            _ => return None,
        }
    }
    (weekly && !days.is_empty()).then_some(days)
}

#[cfg(test)]
mod tests {
    use super::weekly_days;

    #[test]
    fn weekly_rules_on_weekdays_are_read_for_the_picker() {
        assert_eq!(
            weekly_days("RRULE:FREQ=WEEKLY;BYDAY=MO,WE"),
            Some(vec!["MO".to_owned(), "WE".to_owned()])
        );
        assert_eq!(
            weekly_days("RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=FR"),
            Some(vec!["FR".to_owned()])
        );
        assert_eq!(weekly_days("RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=FR"), None);
        assert_eq!(weekly_days("RRULE:FREQ=MONTHLY;BYDAY=1MO"), None);
        assert_eq!(weekly_days("RRULE:FREQ=WEEKLY;BYDAY=1MO"), None);
        assert_eq!(weekly_days("RRULE:FREQ=WEEKLY"), None);
        assert_eq!(weekly_days("WEEKLY"), None);
    }
}
