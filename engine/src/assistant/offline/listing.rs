//! List requests: filters (status, priority, tags, search, recurring), date windows ("this
//! week", "tomorrow", "by friday"), "overdue" and sorting, read from the words of a question or
//! a "show"/"list"/"search" command.
//!
//! Date windows run from local midnight to local midnight in the user's zone, from the start
//! of today (not now, so "what's due today" still shows this morning's tasks) to the end of the
//! period: "this week" ends on Sunday night, "this month" on its last day. "by friday" has no
//! start (earlier tasks count too); "what's due" alone means from today on. Date windows and
//! "overdue" sort by due date, soonest first, so the numbers read in order. The status filter is
//! left out unless asked for, so a finished task due today still shows, marked done.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::dates::{Day, Piece, monday_of, phrase_at, start_of_day};
use super::intent::{Intent, ListRequest, Parsed, mark};
use super::marks::{hash_tag, level};
use super::words::{Word, clean_quoted, number};
use crate::task::{Priority, TaskStatus};

/// Words a list request may contain without saying anything about the filter.
const LIST_FILLER: &[&str] = &[
    "list",
    "show",
    "display",
    "view",
    "see",
    "give",
    "get",
    "tell",
    "me",
    "my",
    "all",
    "the",
    "tasks",
    "task",
    "todos",
    "todo",
    "to-do",
    "to-dos",
    "items",
    "item",
    "things",
    "stuff",
    "what",
    "what's",
    "whats",
    "which",
    "is",
    "are",
    "do",
    "does",
    "did",
    "i",
    "i've",
    "ive",
    "have",
    "has",
    "got",
    "there",
    "any",
    "anything",
    "something",
    "that",
    "on",
    "plate",
    "agenda",
    "for",
    "in",
    "of",
    "with",
    "a",
    "an",
    "and",
    "now",
    "currently",
    "right",
    "still",
    "just",
    "only",
    "to",
    "up",
    "coming",
    "upcoming",
    "soon",
    "else",
    "should",
    "need",
    "let",
    "can",
    "you",
    "everything",
    "again",
    "so",
    "far",
    "yet",
    "am",
    "it",
    "them",
    "those",
    "these",
    "we",
    "our",
    "whole",
    "entire",
    "current",
    "schedule",
    "scheduled",
    "planned",
    "how",
    "many",
    "much",
    "left",
    "please",
    "pls",
    "at",
    "be",
    "tasks?",
    "here",
    "your",
    "us",
];

/// Words that make a question a list request.
const LIST_NOUNS: &[&str] = &[
    "tasks", "task", "todos", "todo", "to-do", "to-dos", "list", "plate", "agenda", "items",
];

fn status_at(n: &[&str], i: usize) -> Option<(usize, TaskStatus)> {
    let word = |k: usize| n.get(i + k).copied().unwrap_or("");
    let found = match (word(0), word(1)) {
        ("not", "done" | "finished" | "completed" | "complete") => (2, TaskStatus::Pending),
        ("in", "progress") | ("working", "on") => (2, TaskStatus::InProgress),
        ("completed" | "done" | "finished" | "complete" | "closed" | "finish", _) => {
            (1, TaskStatus::Completed)
        }
        (
            "pending" | "open" | "unfinished" | "incomplete" | "outstanding" | "remaining"
            | "undone" | "left",
            _,
        ) => (1, TaskStatus::Pending),
        ("in-progress" | "started" | "ongoing" | "active" | "doing", _) => {
            (1, TaskStatus::InProgress)
        }
        _ => return None,
    };
    Some(found)
}

/// Words, first day, day after the last, label.
type Window<'a> = (&'a [&'a str], Option<NaiveDate>, Option<NaiveDate>, &'a str);

/// A date window at word `i`: (words, from, until (exclusive), label).
fn window_at(
    n: &[&str],
    i: usize,
    today: NaiveDate,
) -> Option<(usize, Option<NaiveDate>, Option<NaiveDate>, String)> {
    let word = |k: usize| n.get(i + k).copied().unwrap_or("");
    let mut k = usize::from(word(0) == "due");
    let lead = word(k);
    let plus = |days: i64| today.checked_add_signed(Duration::days(days));
    let monday = monday_of(today);
    let first_next = today
        .with_day(1)?
        .checked_add_months(chrono::Months::new(1))?;
    let skip_lead = usize::from(matches!(lead, "for" | "on" | "in" | "within"));
    let j = k + skip_lead;
    let windows: [Window; 11] = [
        (&["today"], Some(today), plus(1), "today"),
        (&["tonight"], Some(today), plus(1), "today"),
        (&["tomorrow"], plus(1), plus(2), "tomorrow"),
        (
            &["this", "week"],
            Some(today),
            Some(monday + Duration::days(7)),
            "this week",
        ),
        (
            &["the", "week"],
            Some(today),
            Some(monday + Duration::days(7)),
            "this week",
        ),
        (
            &["next", "week"],
            Some(monday + Duration::days(7)),
            Some(monday + Duration::days(14)),
            "next week",
        ),
        (
            &["this", "month"],
            Some(today),
            Some(first_next),
            "this month",
        ),
        (
            &["next", "month"],
            Some(first_next),
            first_next.checked_add_months(chrono::Months::new(1)),
            "next month",
        ),
        (
            &["this", "weekend"],
            Some(Day::Weekend { next: false }.date(today)?),
            Some(monday + Duration::days(7)),
            "this weekend",
        ),
        (
            &["the", "weekend"],
            Some(Day::Weekend { next: false }.date(today)?),
            Some(monday + Duration::days(7)),
            "this weekend",
        ),
        (
            &["weekend"],
            Some(Day::Weekend { next: false }.date(today)?),
            Some(monday + Duration::days(7)),
            "this weekend",
        ),
    ];
    for (words, from, until, label) in windows {
        if n.len() >= i + j + words.len() && n[i + j..].starts_with(words) {
            return Some((j + words.len(), from, until, label.to_owned()));
        }
    }
    // "in the next 3 days", "next 7 days".
    let skip_the = usize::from(word(j) == "the");
    if word(j + skip_the) == "next"
        && let Some(days) = number(word(j + skip_the + 1))
        && word(j + skip_the + 2) == "days"
    {
        return Some((
            j + skip_the + 3,
            Some(today),
            plus(i64::from(days) + 1),
            format!("in the next {days} days"),
        ));
    }
    // Any other date: that day, or everything until it after "by"/"before".
    let found = phrase_at(n, i + k)?;
    let day = found.pieces.iter().find_map(|piece| match piece {
        Piece::Day(day) => Some(*day),
        _ => None,
    })?;
    let date = day.date(today)?;
    k += found.len;
    let spoken = date.format("%A %-d %B").to_string();
    match found.lead.as_deref() {
        Some("by" | "until" | "till") => Some((k, None, date.succ_opt(), format!("by {spoken}"))),
        Some("before") => Some((k, None, Some(date), format!("before {spoken}"))),
        _ => Some((k, Some(date), date.succ_opt(), format!("on {spoken}"))),
    }
}

/// Reads a list request, or `None` when the message is not one: it must start with a list
/// verb ("show", "list", "search", "find") or be a question with a task word or filter in it
/// ("what's overdue"), or consist of list words only ("#work tasks").
pub fn list(core: &[Word], n: &[&str], asks: bool, now: DateTime<Utc>, zone: Tz) -> Option<Parsed> {
    let explicit = matches!(
        n,
        [
            "list" | "show" | "display" | "view" | "search" | "find" | "lookup",
            ..
        ] | ["look", "for" | "up", ..]
    );
    let today = now.with_timezone(&zone).date_naive();
    let mut request = ListRequest::default();
    let mut used = vec![false; n.len()];
    let mut noun = false;
    let mut due_word = false;
    let mut i = 0;
    while i < n.len() {
        let word = |k: usize| n.get(i + k).copied().unwrap_or("");
        // Search: the rest of the message is the text to find.
        let search = match (word(0), word(1)) {
            ("search" | "look", "for") | ("look", "up") => Some(2),
            (
                "search" | "find" | "lookup" | "containing" | "mentioning" | "matching" | "about"
                | "called" | "named" | "titled",
                _,
            ) => Some(1),
            _ => None,
        };
        if let Some(skip) = search
            && request.search.is_none()
        {
            let mut from = i + skip;
            while from < n.len()
                && matches!(
                    n[from],
                    "tasks"
                        | "task"
                        | "todos"
                        | "for"
                        | "about"
                        | "the"
                        | "my"
                        | "a"
                        | "an"
                        | "with"
                        | "containing"
                        | "called"
                        | "named"
                )
            {
                from += 1;
            }
            let mut to = n.len();
            while to > from && matches!(n[to - 1], "tasks" | "task" | "todos" | "please") {
                to -= 1;
            }
            let words: Vec<&Word> = core[from..to].iter().collect();
            let text = clean_quoted(&words).to_lowercase();
            if !text.is_empty() {
                request.search = Some(text);
                i = mark(i, n.len() - i, &mut used);
                continue;
            }
        }
        if let Some((len, from, until, label)) = window_at(n, i, today)
            && request.window.is_none()
        {
            request.due_after = from.and_then(|date| start_of_day(date, zone));
            request.due_before = until.and_then(|date| start_of_day(date, zone));
            request.window = Some(label);
            i = mark(i, len, &mut used);
            continue;
        }
        match (word(0), word(1)) {
            ("overdue" | "late" | "behind", _) | ("past", "due") => {
                request.overdue = true;
                let len = if word(0) == "past" { 2 } else { 1 };
                i = mark(i, len, &mut used);
                continue;
            }
            ("recurring" | "repeating" | "recurrent", _) => {
                request.is_recurring = Some(true);
                i = mark(i, 1, &mut used);
                continue;
            }
            ("one-off" | "non-recurring", _) => {
                request.is_recurring = Some(false);
                i = mark(i, 1, &mut used);
                continue;
            }
            ("by" | "sorted", "priority") | ("by", "importance") => {
                request.sort = Some("priority");
                request.order = Some("desc");
                i = mark(i, 2, &mut used);
                continue;
            }
            ("by", "due" | "date" | "deadline") => {
                request.sort = Some("due_date");
                request.order = Some("asc");
                let len = if word(1) == "due" && word(2) == "date" {
                    3
                } else {
                    2
                };
                i = mark(i, len, &mut used);
                continue;
            }
            ("alphabetically", _) | ("by", "name" | "title") => {
                request.sort = Some("title");
                request.order = Some("asc");
                i = mark(i, if word(0) == "by" { 2 } else { 1 }, &mut used);
                continue;
            }
            ("oldest", "first") | ("newest", "first") => {
                request.sort = Some("created_at");
                request.order = Some(if word(0) == "oldest" { "asc" } else { "desc" });
                i = mark(i, 2, &mut used);
                continue;
            }
            ("top" | "first", count) if count.parse::<u32>().is_ok() => {
                request.limit = count.parse().ok().filter(|n| (1..=1000).contains(n));
                i = mark(i, 2, &mut used);
                continue;
            }
            _ => {}
        }
        if let Some((len, status)) = status_at(n, i)
            && request.status.is_none()
        {
            request.status = Some(status);
            i = mark(i, len, &mut used);
            continue;
        }
        let priority = match (word(0), word(1)) {
            (level_word, "priority" | "prio") if level(level_word).is_some() => {
                level(level_word).map(|level| (2, level))
            }
            ("urgent" | "important", _) => Some((1, Priority::High)),
            (level_word, _) if level(level_word).is_some() => {
                level(level_word).map(|level| (1, level))
            }
            _ => None,
        };
        if let Some((len, priority)) = priority
            && request.priority.is_none()
        {
            request.priority = Some(priority);
            i = mark(i, len, &mut used);
            continue;
        }
        if let Some(tag) = hash_tag(word(0)) {
            request.tags.push(tag);
            i = mark(i, 1, &mut used);
            continue;
        }
        if matches!(word(0), "tagged" | "tag" | "labelled" | "labeled")
            || (word(0) == "with" && word(1) == "tag")
        {
            let skip = if word(0) == "with" { 2 } else { 1 };
            let tag = word(skip).trim_start_matches('#');
            if !tag.is_empty() {
                request.tags.push(tag.to_owned());
                i = mark(i, skip + 1, &mut used);
                continue;
            }
        }
        if word(0) == "due" {
            due_word = true;
        }
        if LIST_NOUNS.contains(&word(0)) {
            noun = true;
        }
        if word(0) == "due" || LIST_FILLER.contains(&word(0)) || word(0).is_empty() {
            i = mark(i, 1, &mut used);
            continue;
        }
        i += 1;
    }
    if request.sort.is_none() && (request.window.is_some() || request.overdue || due_word) {
        request.sort = Some("due_date");
        request.order = Some("asc");
    }
    if due_word && request.window.is_none() && !request.overdue {
        // "what's due": what is coming up, from today on.
        request.due_after = start_of_day(today, zone);
        request.window = Some("from today on".to_owned());
    }
    // "show me the dentist task": with no other filter, what is left is the text to find.
    let content: Vec<&Word> = core
        .iter()
        .zip(&used)
        .filter(|(word, used)| !**used && !matches!(word.norm.as_str(), "the" | "a" | "an"))
        .map(|(word, _)| word)
        .collect();
    if explicit && !request.is_filtered() && !content.is_empty() {
        request.search = Some(clean_quoted(&content).to_lowercase());
        used.iter_mut().for_each(|flag| *flag = true);
    }
    let ignored: Vec<String> = core
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|(word, _)| word.raw.clone())
        .collect();
    let signal = noun || request.is_filtered() || request.sort.is_some();
    let is_list = explicit || (signal && (asks || ignored.is_empty()));
    if !is_list {
        return None;
    }
    request.ignored = ignored.clone();
    Some(Parsed {
        intent: Intent::List(request),
        unused: ignored,
    })
}
