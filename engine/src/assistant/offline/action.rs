//! Actions on an existing task: complete, delete, rename, reschedule, re-prioritise, start and
//! reopen, each with the words that name the task ("the report", "2", "it").
//!
//! The verbs here are commands, read before the add rule: "finish the report" completes the
//! task that matches "the report" and "start the car" answers that no task matches — to add
//! such a task, say "add finish the report". "move"/"push" need "to" before the new date
//! ("move the report to friday"), so "move the couch tomorrow" is still a new task.

use super::dates::{When, phrase_at};
use super::intent::{Change, Intent, Parsed, TaskRef, starts_like_question, unknown};
use super::marks::level;
use super::words::{Word, clean_quoted, number, ordinal};
use crate::task::{Priority, TaskStatus};

/// Words after a target that say nothing about which task it is.
fn trim_target(words: &[Word]) -> &[Word] {
    let mut end = words.len();
    loop {
        let n: Vec<&str> = words[..end].iter().map(|word| word.norm.as_str()).collect();
        let cut = match n.as_slice() {
            [
                _,
                ..,
                "from" | "off" | "on" | "in",
                "my" | "the",
                "list" | "tasks" | "todos",
            ] => 3,
            [_, .., "for", "me"] => 2,
            [_, .., "please" | "now" | "already" | "too" | "as" | "then"] => 1,
            _ => 0,
        };
        if cut == 0 {
            return &words[..end];
        }
        end -= cut;
    }
}

const LISTY: &[&str] = &[
    "all",
    "everything",
    "tasks",
    "task",
    "todos",
    "my",
    "the",
    "of",
    "completed",
    "done",
    "list",
    "every",
    "things",
];

/// Reads a task reference; `None` when there are no words.
pub fn parse_ref(words: &[Word]) -> Option<TaskRef> {
    let words = trim_target(words);
    let n: Vec<&str> = words.iter().map(|word| word.norm.as_str()).collect();
    match n.as_slice() {
        [] => return None,
        ["it" | "that" | "this" | "it's" | "that's"]
        | ["that" | "this", "one" | "task" | "todo"]
        | ["the", "one", "i", "just", "added"] => return Some(TaskRef::It),
        _ => {}
    }
    if let Some(position) = position(&n) {
        return Some(position);
    }
    let raw = words
        .iter()
        .map(|word| word.raw.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let raw = raw.trim_matches(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '"' | '\'' | '“' | '”' | '‘' | '’' | ',' | '.' | '!' | '?' | ':'
            )
    });
    (!raw.is_empty()).then(|| TaskRef::Words(raw.to_owned()))
}

fn position(n: &[&str]) -> Option<TaskRef> {
    let mut rest = n;
    if let ["the", tail @ ..] = rest {
        rest = tail;
    }
    let prefixed = matches!(
        rest,
        [
            "task" | "item" | "number" | "no" | "nr" | "todo" | "#",
            _,
            ..
        ]
    );
    if prefixed {
        rest = &rest[1..];
    }
    let (first, tail) = rest.split_first()?;
    let tail_ok = matches!(
        tail,
        [] | ["one" | "task" | "item" | "todo"]
            | ["on" | "in" | "from", "the", "list"]
            | ["one" | "task", "on" | "in" | "from", "the", "list"]
    );
    if !tail_ok {
        return None;
    }
    if *first == "last" {
        return Some(TaskRef::Last);
    }
    let digits = first.strip_prefix('#').unwrap_or(first);
    let index = digits
        .parse::<usize>()
        .ok()
        .or_else(|| ordinal(first).map(|n| n as usize))
        .or_else(|| {
            // "complete two": a number word alone, or after "task"/"number".
            number(first)
                .filter(|_| !matches!(*first, "a" | "an" | "couple"))
                .map(|n| n as usize)
        })?;
    (index >= 1).then_some(TaskRef::Position(index))
}

fn target(words: &[Word]) -> Result<TaskRef, Box<Parsed>> {
    let n: Vec<&str> = words.iter().map(|word| word.norm.as_str()).collect();
    if !n.is_empty() && n.iter().all(|word| LISTY.contains(word)) {
        return Err(Box::new(unknown(
            "I can act on one task at a time. Name it, or give its number from the last list — for example 'complete 2'.",
            words,
        )));
    }
    parse_ref(words).ok_or_else(|| {
        Box::new(unknown(
            "Which task? Name it, or give its number from the last list — for example 'complete 2'.",
            words,
        ))
    })
}

fn with_target(words: &[Word], make: impl FnOnce(TaskRef) -> Intent) -> Parsed {
    match target(words) {
        Ok(task) => Parsed::all(make(task)),
        Err(parsed) => *parsed,
    }
}

fn starts(n: &[&str], prefix: &[&str]) -> bool {
    n.len() >= prefix.len() && n.starts_with(prefix)
}

const DONE_WORDS: &[&str] = &["done", "complete", "completed", "finished"];

fn status_words(n: &[&str]) -> Option<(usize, Option<TaskStatus>)> {
    // Returns (words from the end, status; None = completed via complete_task).
    let status = match n {
        [
            ..,
            "not",
            "done" | "finished" | "complete" | "completed" | "started",
        ] => (2, Some(TaskStatus::Pending)),
        [.., "to", "do"] | [.., "in", "progress"] => (
            2,
            Some(if n.ends_with(&["to", "do"]) {
                TaskStatus::Pending
            } else {
                TaskStatus::InProgress
            }),
        ),
        [.., "done" | "complete" | "completed" | "finished"] => (1, None),
        [
            ..,
            "in-progress" | "started" | "doing" | "active" | "ongoing",
        ] => (1, Some(TaskStatus::InProgress)),
        [
            ..,
            "pending" | "open" | "undone" | "incomplete" | "todo" | "unfinished",
        ] => (1, Some(TaskStatus::Pending)),
        _ => return None,
    };
    Some(status)
}

/// A level at the end of "make X high priority" / "set 3 to low": (words, level).
fn level_suffix(n: &[&str]) -> Option<(usize, Priority)> {
    let (len, priority) = match n {
        [.., word, "priority" | "prio"] => (
            2,
            level(word).or(match *word {
                "urgent" | "important" => Some(Priority::High),
                _ => None,
            })?,
        ),
        [.., "not", "urgent"] => (2, Priority::Low),
        [.., "urgent" | "important"] => (1, Priority::High),
        [.., word] => (1, level(word)?),
        [] => return None,
    };
    let mut len = len;
    if n.len() > len && n[n.len() - len - 1] == "a" {
        len += 1;
    }
    if n.len() > len && matches!(n[n.len() - len - 1], "to" | "as") {
        len += 1;
    }
    Some((len, priority))
}

/// Whether the date suffix at `s` starts with "to", "until", "back to"...
fn is_date_preposition(n: &[&str], s: usize) -> bool {
    matches!(
        n[s],
        "to" | "till" | "until" | "til" | "for" | "into" | "on"
    ) || (matches!(n[s], "back" | "out") && n.get(s + 1) == Some(&"to"))
}

/// The smallest suffix of `words[from..]` that is wholly a date phrase (after an optional "to",
/// "until", "for"...): (where it starts, the date said).
fn date_suffix(n: &[&str], from: usize) -> Option<(usize, When)> {
    (from..n.len()).find_map(|s| {
        let mut k = s;
        if matches!(n[k], "to" | "till" | "until" | "til" | "for" | "into") {
            k += 1;
        } else if matches!(n[k], "back" | "out") && n.get(k + 1) == Some(&"to") {
            k += 2;
        }
        if k >= n.len() {
            return None;
        }
        let mut when = When::default();
        let mut i = k;
        while i < n.len() {
            let found = phrase_at(n, i)?;
            if !when.fits(&found.pieces) {
                return None;
            }
            when.take(&found.pieces);
            i += found.len;
        }
        Some((s, when))
    })
}

/// Actions on an existing task; `None` when the message is not one.
pub fn action(core: &[Word], n: &[&str]) -> Option<Parsed> {
    let len = n.len();
    let rest = |from: usize| &core[from.min(len)..];

    // Clearing a due date: "remove the due date from 3".
    if matches!(n[0], "remove" | "clear" | "delete" | "drop" | "unset") {
        let k = 1 + usize::from(n.get(1) == Some(&"the"));
        let noun = match (n.get(k), n.get(k + 1)) {
            (Some(&"due"), Some(&"date")) => 2,
            (Some(&("deadline" | "date")), _) => 1,
            _ => 0,
        };
        if noun > 0 && matches!(n.get(k + noun), Some(&("of" | "from" | "for" | "on"))) {
            return Some(with_target(rest(k + noun + 1), |task| {
                Intent::Update(task, Change::ClearDue)
            }));
        }
    }

    // Priority: "change the priority of 3 to low", "raise the priority of the report".
    if matches!(
        n[0],
        "change"
            | "set"
            | "update"
            | "make"
            | "raise"
            | "increase"
            | "lower"
            | "reduce"
            | "decrease"
    ) {
        let k = 1 + usize::from(n.get(1) == Some(&"the"));
        if matches!(n.get(k), Some(&("priority" | "prio")))
            && matches!(n.get(k + 1), Some(&("of" | "for" | "on")))
        {
            let body = k + 2;
            let fixed = match n[0] {
                "raise" | "increase" => Some(Priority::High),
                "lower" | "reduce" | "decrease" => Some(Priority::Low),
                _ => None,
            };
            if let Some(priority) = fixed {
                return Some(with_target(rest(body), |task| {
                    Intent::Update(task, Change::Priority(priority))
                }));
            }
            return Some(match level_suffix(&n[body..]) {
                Some((tail, priority)) if len - tail > body => {
                    with_target(&core[body..len - tail], |task| {
                        Intent::Update(task, Change::Priority(priority))
                    })
                }
                _ => unknown(
                    "Which priority? Try: change the priority of 3 to low.",
                    core,
                ),
            });
        }
    }
    if matches!(n[0], "prioritise" | "prioritize") {
        return Some(with_target(rest(1), |task| {
            Intent::Update(task, Change::Priority(Priority::High))
        }));
    }
    if matches!(n[0], "deprioritise" | "deprioritize") {
        return Some(with_target(rest(1), |task| {
            Intent::Update(task, Change::Priority(Priority::Low))
        }));
    }

    // Due date: "change the due date of 3 to friday".
    if matches!(n[0], "change" | "set" | "update" | "move") {
        let k = 1 + usize::from(n.get(1) == Some(&"the"));
        let noun = match (n.get(k), n.get(k + 1)) {
            (Some(&"due"), Some(&"date")) => 2,
            (Some(&("deadline" | "date" | "due")), _) => 1,
            _ => 0,
        };
        if noun > 0 && matches!(n.get(k + noun), Some(&("of" | "for" | "on"))) {
            let body = k + noun + 1;
            return Some(match date_suffix(n, body + 1) {
                Some((s, when)) => with_target(&core[body..s], |task| {
                    Intent::Update(task, Change::Due(when))
                }),
                None => unknown(
                    "I couldn't find the new date. Try: change the due date of 3 to friday at 10.",
                    core,
                ),
            });
        }
    }

    // Renaming: "rename buy milk to buy oat milk", "change the title of 2 to …".
    let rename_body = if matches!(n[0], "rename" | "retitle") {
        Some(1)
    } else if starts(n, &["change", "the", "title", "of"])
        || starts(n, &["change", "the", "name", "of"])
    {
        Some(4)
    } else if starts(n, &["change", "title", "of"]) || starts(n, &["change", "name", "of"]) {
        Some(3)
    } else {
        None
    };
    if let Some(body) = rename_body {
        return Some(rename(core, n, body));
    }

    // Rescheduling: "move the report to friday", "reschedule 2 to tomorrow at 10". "move",
    // "push", "shift" and "change" need "to"/"until"... before the date, so that "move the couch
    // tomorrow" stays a new task; "reschedule" and "postpone" do not ("postpone 2 tomorrow").
    let moves = matches!(n[0], "move" | "push" | "shift" | "change" | "update");
    if moves || matches!(n[0], "reschedule" | "postpone" | "defer" | "delay") {
        if let Some((s, when)) = date_suffix(n, 2)
            && (!moves || is_date_preposition(n, s))
        {
            return Some(with_target(&core[1..s], |task| {
                Intent::Update(task, Change::Due(when))
            }));
        }
        let has_date = (1..len).any(|i| phrase_at(n, i).is_some());
        if !matches!(n[0], "change" | "update") && !has_date {
            return Some(unknown(
                "I couldn't find the new date. Try: move the report to friday at 10.",
                core,
            ));
        }
    }
    // "set 3 due friday", "make the report due tomorrow".
    if matches!(n[0], "set" | "make")
        && let Some(due) = n.iter().position(|word| *word == "due")
        && due > 1
        && let Some((s, when)) = date_suffix(n, due)
        && s == due
    {
        return Some(with_target(&core[1..due], |task| {
            Intent::Update(task, Change::Due(when))
        }));
    }

    // Status through "mark": "mark the report as done", "mark 2 as in progress".
    if n[0] == "mark"
        && let Some((tail, status)) = status_words(n)
    {
        let mut end = len - tail;
        if end > 1 && n[end - 1] == "as" {
            end -= 1;
        }
        if end > 1 {
            let body = &core[1..end];
            return Some(match status {
                None => with_target(body, Intent::Complete),
                Some(status) => {
                    with_target(body, |task| Intent::Update(task, Change::Status(status)))
                }
            });
        }
    }
    // Priority through a verb and a level at the end: "make buy milk high priority", "set 3 to
    // low", "mark the report urgent".
    if matches!(n[0], "make" | "set" | "mark" | "change" | "put" | "update")
        && let Some((tail, priority)) = level_suffix(n)
        && len > tail + 1
    {
        return Some(with_target(&core[1..len - tail], |task| {
            Intent::Update(task, Change::Priority(priority))
        }));
    }
    if n[0] == "mark" {
        return Some(unknown(
            "Mark it as what? Try: mark 2 as done, or mark 2 as in progress.",
            core,
        ));
    }
    if matches!(n[0], "change" | "update")
        && n.iter().skip(2).any(|word| matches!(*word, "to" | "into"))
    {
        return Some(rename(core, n, 1));
    }

    // Completing.
    const COMPLETE: &[&[&str]] = &[
        &["i'm", "done", "with"],
        &["im", "done", "with"],
        &["i", "am", "done", "with"],
        &["i've", "finished"],
        &["i", "have", "finished"],
        &["i've", "done"],
        &["i've", "completed"],
        &["i", "finished"],
        &["i", "completed"],
        &["i", "did"],
        &["done", "with"],
        &["finished", "with"],
        &["check", "off"],
        &["tick", "off"],
        &["cross", "off"],
        &["complete"],
        &["finish"],
        &["close"],
        &["finished"],
        &["completed"],
        &["did"],
        &["done"],
    ];
    if let Some(prefix) = COMPLETE.iter().find(|prefix| starts(n, prefix)) {
        let body = rest(prefix.len());
        if !body.is_empty() && body.iter().all(|word| LISTY.contains(&word.norm.as_str())) {
            // "completed tasks" is a list request.
            return None;
        }
        return Some(with_target(body, Intent::Complete));
    }
    // "buy milk is done", "the report's finished", "it's done".
    if len >= 2 && DONE_WORDS.contains(&n[len - 1]) && !starts_like_question(n) {
        let mut end = len - 1;
        if end > 1 && matches!(n[end - 1], "now" | "already" | "all") {
            end -= 1;
        }
        if end > 1 && matches!(n[end - 1], "is" | "are" | "was") {
            end -= 1;
        }
        let body = &core[..end];
        if body.iter().all(|word| LISTY.contains(&word.norm.as_str())) {
            return None;
        }
        let mut body = body.to_vec();
        if let Some(last) = body.last_mut()
            && let Some(stem) = last.norm.strip_suffix("'s")
        {
            last.norm = stem.to_owned();
            last.raw = last.raw.trim_end_matches(['s', '\'', '’']).to_owned();
        }
        return Some(with_target(&body, Intent::Complete));
    }

    // Deleting.
    const DELETE: &[&[&str]] = &[
        &["get", "rid", "of"],
        &["delete"],
        &["remove"],
        &["erase"],
        &["trash"],
        &["discard"],
    ];
    if let Some(prefix) = DELETE.iter().find(|prefix| starts(n, prefix)) {
        return Some(with_target(rest(prefix.len()), Intent::Delete));
    }

    // Starting and reopening.
    const START: &[&[&str]] = &[
        &["i'm", "working", "on"],
        &["im", "working", "on"],
        &["i", "am", "working", "on"],
        &["i'm", "starting"],
        &["i", "am", "starting"],
        &["i", "started"],
        &["start", "working", "on"],
        &["begin", "working", "on"],
        &["working", "on"],
        &["start"],
        &["begin"],
        &["started"],
    ];
    if let Some(prefix) = START.iter().find(|prefix| starts(n, prefix)) {
        return Some(with_target(rest(prefix.len()), |task| {
            Intent::Update(task, Change::Status(TaskStatus::InProgress))
        }));
    }
    if len >= 3 && n.ends_with(&["in", "progress"]) {
        let end = len - 2 - usize::from(n[len - 3] == "is");
        return Some(with_target(&core[..end], |task| {
            Intent::Update(task, Change::Status(TaskStatus::InProgress))
        }));
    }
    if matches!(n[0], "reopen" | "re-open" | "uncomplete" | "unfinish") {
        return Some(with_target(rest(1), |task| {
            Intent::Update(task, Change::Status(TaskStatus::Pending))
        }));
    }
    None
}

/// "rename X to Y": every split at "to"/"as"/"into", in order.
fn rename(core: &[Word], n: &[&str], body: usize) -> Parsed {
    let choices: Vec<(TaskRef, String)> = (body + 1..n.len().saturating_sub(1))
        .filter(|at| matches!(n[*at], "to" | "as" | "into"))
        .filter_map(|at| {
            let task = parse_ref(&core[body..at])?;
            let words: Vec<&Word> = core[at + 1..].iter().collect();
            let title = clean_quoted(&words);
            (!title.is_empty()).then_some((task, title))
        })
        .collect();
    if choices.is_empty() {
        return unknown(
            "What should the new name be? Try: rename buy milk to buy oat milk.",
            core,
        );
    }
    Parsed::all(Intent::Rename(choices))
}
