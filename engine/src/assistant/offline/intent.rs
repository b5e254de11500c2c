//! From a message to an [`Intent`]: what the user wants, with dates already resolved in their
//! zone and task references still as words ("the report", "2", "it"), which [`super::resolve`]
//! turns into ids. The parser is total: every message gives an intent (possibly
//! [`Intent::Unknown`]) plus the words it could not use.
//!
//! The order of the checks is the precedence of the readings: help, small talk and undo (whole
//! messages), an explicit add command ("add", "remind me to", "I need to"), an action on an
//! existing task (verbs such as complete, delete, rename, move, make … high priority, start),
//! a list request, and finally the **add rule** for bare text: a message without a command
//! becomes a new task only when it is not a question and either starts with an everyday action
//! verb ("buy groceries", "call mom") or carries a task clue — a date or time, a priority, a
//! tag, a repeat or a reminder ("dentist tomorrow at 3pm"). Anything else ("asdf qwerty",
//! "what's the weather") is not understood, and no task is invented from it.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};

use super::dates::{When, phrase_at};
use super::marks::{priority_at, reminder_at, tag_at};
use super::repeat::{first_due, repeat_at};
use super::words::{Word, clean_phrase, is_question, split};
use super::{action, listing, project};
use crate::task::{Priority, TaskStatus};
use crate::time::format_utc;

/// A new task, ready for `add_task`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AddTask {
    pub title: String,
    /// From "… with description …" / "… description: …".
    pub description: Option<String>,
    pub priority: Option<Priority>,
    pub due_date: Option<DateTime<Utc>>,
    pub tags: Vec<String>,
    pub reminder_offset_minutes: Option<i64>,
    pub recurrence_rule: Option<String>,
    /// A reminder was asked for but the task has no date, so none could be set; the answer
    /// says so instead of failing.
    pub reminder_needs_date: bool,
    /// Readings of the title that name a project ("buy milk to groceries", "buy milk
    /// @groceries"), best first. The parser cannot know the user's projects, so `title` stays
    /// the whole text and whoever knows them picks the first hint naming one
    /// ([`AddTask::in_project`]); with none, the task is added as the title says.
    pub project_hints: Vec<ProjectHint>,
}

/// One reading of a new task's words as "TITLE in project NAME".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectHint {
    /// The project's name as typed.
    pub name: String,
    /// The title without the words that named the project.
    pub title: String,
    /// Named with an explicit mark (`@groceries`) rather than a phrase ("to my groceries
    /// list"): a caller may refuse an unknown project instead of keeping the words.
    pub marked: bool,
}

/// "remind me to X at 5pm" names the time of the reminder, but the engine reminds a whole
/// number of minutes (at least one) *before* the due date. The task is therefore due at the
/// time said and reminded this many minutes earlier: the closest the engine allows to "at
/// 5pm", and better than no reminder at all, which is what leaving the offset out would mean.
pub const REMIND_ME_OFFSET_MINUTES: i64 = 1;

impl AddTask {
    /// The `add_task` arguments.
    pub fn arguments(&self) -> Value {
        let mut args = Map::new();
        args.insert("title".into(), self.title.clone().into());
        if let Some(description) = &self.description {
            args.insert("description".into(), description.clone().into());
        }
        if let Some(priority) = self.priority {
            args.insert("priority".into(), priority.as_str().into());
        }
        if let Some(due) = self.due_date {
            args.insert("due_date".into(), format_utc(due).into());
        }
        if !self.tags.is_empty() {
            args.insert("tags".into(), self.tags.clone().into());
        }
        if let Some(minutes) = self.reminder_offset_minutes {
            args.insert("reminder_offset_minutes".into(), minutes.into());
        }
        if let Some(rule) = &self.recurrence_rule {
            args.insert("recurrence_rule".into(), rule.clone().into());
        }
        Value::Object(args)
    }

    /// The first of [`AddTask::project_hints`] that `exists` says names a project, with the
    /// project's name as `exists` spells it.
    pub fn in_project(
        &self,
        exists: impl Fn(&str) -> Option<String>,
    ) -> Option<(&ProjectHint, String)> {
        self.project_hints
            .iter()
            .find_map(|hint| exists(&hint.name).map(|name| (hint, name)))
    }
}

/// A list request, ready for `list_tasks`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListRequest {
    pub status: Option<TaskStatus>,
    pub priority: Option<Priority>,
    pub search: Option<String>,
    pub tags: Vec<String>,
    pub due_after: Option<DateTime<Utc>>,
    pub due_before: Option<DateTime<Utc>>,
    pub overdue: bool,
    pub is_recurring: Option<bool>,
    pub sort: Option<&'static str>,
    pub order: Option<&'static str>,
    pub limit: Option<u32>,
    /// Only the tasks of this project (its name as stored).
    pub project: Option<String>,
    /// How the date window was said ("this week", "on Friday 4 December"), for the heading.
    pub window: Option<String>,
    /// Words of the request that were not understood; the answer mentions them.
    pub ignored: Vec<String>,
}

impl ListRequest {
    /// The `list_tasks` arguments.
    pub fn arguments(&self) -> Value {
        let mut args = Map::new();
        if let Some(status) = self.status {
            args.insert("status".into(), status.as_str().into());
        }
        if let Some(priority) = self.priority {
            args.insert("priority".into(), priority.as_str().into());
        }
        if let Some(search) = &self.search {
            args.insert("search".into(), search.clone().into());
        }
        if !self.tags.is_empty() {
            args.insert("tags".into(), self.tags.clone().into());
        }
        if let Some(after) = self.due_after {
            args.insert("due_after".into(), format_utc(after).into());
        }
        if let Some(before) = self.due_before {
            args.insert("due_before".into(), format_utc(before).into());
        }
        if self.overdue {
            args.insert("overdue".into(), true.into());
        }
        if let Some(recurring) = self.is_recurring {
            args.insert("is_recurring".into(), recurring.into());
        }
        if let Some(sort) = self.sort {
            args.insert("sort".into(), sort.into());
        }
        if let Some(order) = self.order {
            args.insert("order".into(), order.into());
        }
        if let Some(limit) = self.limit {
            args.insert("limit".into(), limit.into());
        }
        if let Some(project) = &self.project {
            args.insert("project".into(), project.clone().into());
        }
        Value::Object(args)
    }

    /// Whether the only filter is words to find (what "show me the dentist task" gives).
    pub fn is_search_only(&self) -> bool {
        self.search.is_some()
            && ListRequest {
                search: None,
                ignored: Vec::new(),
                ..self.clone()
            } == ListRequest::default()
    }

    /// Whether any filter narrows the list (an empty answer then says "no tasks match").
    pub fn is_filtered(&self) -> bool {
        self.status.is_some()
            || self.priority.is_some()
            || self.search.is_some()
            || !self.tags.is_empty()
            || self.due_after.is_some()
            || self.due_before.is_some()
            || self.overdue
            || self.is_recurring.is_some()
            || self.project.is_some()
    }
}

/// How a message names an existing task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskRef {
    /// "2", "#2", "task 2", "the second one": 1-based in the last list shown.
    Position(usize),
    /// "the last one": the last task of the last list.
    Last,
    /// "it", "that": the task the previous turn acted on.
    It,
    /// Words of its title, as typed.
    Words(String),
}

/// One change to an existing task.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Title(String),
    /// A new due date, resolved against the task (a date alone keeps its time of day).
    Due(When),
    ClearDue,
    Priority(Priority),
    Status(TaskStatus),
}

/// Friendly chatter that needs no tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmallTalk {
    Greeting,
    Thanks,
    Okay,
    Bye,
}

/// What a message asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    Add(AddTask),
    List(ListRequest),
    Complete(TaskRef),
    Delete(TaskRef),
    Update(TaskRef, Change),
    /// "rename X to Y" where the words could be split more than one way ("rename talk to bob to
    /// call bob"): the splits in order; the first whose target matches best wins.
    Rename(Vec<(TaskRef, String)>),
    /// "add subtask call plumber to fix sink": the ways to split the words into the new
    /// subtask and its parent, in order; the split whose parent names a task best wins.
    AddSubtask(Vec<(TaskRef, AddTask)>),
    /// "create a project Garden": the name as typed.
    CreateProject(String),
    /// "show my projects".
    ListProjects,
    /// "show my groceries list", "what's in groceries": the tasks of the project called
    /// `name` if the user has one, else whatever the message means without projects.
    ShowProject {
        name: String,
        otherwise: Box<Intent>,
    },
    Undo,
    Help,
    SmallTalk(SmallTalk),
    /// Not understood: `reply` says what was not understood and gives an example.
    Unknown {
        reply: String,
    },
}

impl Intent {
    /// Whether planning needs the user's tasks: only references to existing tasks do, so adds,
    /// lists, undo and chatter skip loading them.
    pub fn needs_tasks(&self) -> bool {
        match self {
            Self::ShowProject { otherwise, .. } => otherwise.needs_tasks(),
            other => matches!(
                other,
                Self::Complete(_)
                    | Self::Delete(_)
                    | Self::Update(_, _)
                    | Self::Rename(_)
                    | Self::AddSubtask(_)
            ),
        }
    }

    /// Whether planning needs the user's projects: a new task whose words may name one, or a
    /// request to show one.
    pub fn needs_projects(&self) -> bool {
        match self {
            Self::Add(task) => !task.project_hints.is_empty(),
            Self::ShowProject { .. } => true,
            _ => false,
        }
    }

    /// A short name for the intent, for measurements ("add", "list", "reschedule"...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Add(_) => "add",
            Self::List(_) => "list",
            Self::Complete(_) => "complete",
            Self::Delete(_) => "delete",
            Self::Update(_, Change::Title(_)) | Self::Rename(_) => "rename",
            Self::Update(_, Change::Due(_) | Change::ClearDue) => "reschedule",
            Self::Update(_, Change::Priority(_)) => "priority",
            Self::Update(_, Change::Status(_)) => "status",
            Self::AddSubtask(_) => "subtask",
            Self::CreateProject(_) => "project",
            Self::ListProjects | Self::ShowProject { .. } => "list",
            Self::Undo => "undo",
            Self::Help => "help",
            Self::SmallTalk(_) => "smalltalk",
            Self::Unknown { .. } => "unknown",
        }
    }
}

/// An intent and the words of the message it did not use (for a new task every word is used:
/// what is not a date, priority, tag, repeat or reminder is the title).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub intent: Intent,
    /// The words (as typed) that did not contribute to the intent.
    pub unused: Vec<String>,
}

impl Parsed {
    pub(super) fn all(intent: Intent) -> Self {
        Self {
            intent,
            unused: Vec::new(),
        }
    }
}

/// An example to offer when something was not understood.
pub const ADD_EXAMPLE: &str = "add call mom tomorrow at 5pm";
const LIST_EXAMPLE: &str = "what's due this week";

fn not_understood(words: &[Word], question: bool) -> Parsed {
    let said = words
        .iter()
        .map(|word| word.raw.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let reply = if said.is_empty() {
        format!("I didn't catch anything there. Try: {ADD_EXAMPLE} — or say 'help'.")
    } else if question {
        format!(
            "Sorry, I didn't understand \"{said}\" — I can only help with your tasks. Try: {LIST_EXAMPLE} — or say 'help'."
        )
    } else {
        format!("Sorry, I didn't understand \"{said}\". Try: {ADD_EXAMPLE} — or say 'help'.")
    };
    Parsed {
        intent: Intent::Unknown { reply },
        unused: words.iter().map(|word| word.raw.clone()).collect(),
    }
}

pub(super) fn unknown(reply: impl Into<String>, unused: &[Word]) -> Parsed {
    Parsed {
        intent: Intent::Unknown {
            reply: reply.into(),
        },
        unused: unused.iter().map(|word| word.raw.clone()).collect(),
    }
}

/// Reads a message; never fails.
pub fn parse(message: &str, now: DateTime<Utc>, zone: Tz) -> Parsed {
    let all = split(message);
    let question = is_question(message);
    let full: Vec<&str> = all.iter().map(|word| word.norm.as_str()).collect();
    let full_text = full.join(" ");
    if message.trim() == "?" || HELP.contains(&full_text.as_str()) {
        return Parsed::all(Intent::Help);
    }
    if let Some(talk) = small_talk(&full_text) {
        return Parsed::all(Intent::SmallTalk(talk));
    }
    let (start, end) = trim_politeness(&full);
    let core = &all[start..end];
    let n: Vec<&str> = core.iter().map(|word| word.norm.as_str()).collect();
    let text = n.join(" ");
    if core.is_empty() {
        return not_understood(core, question);
    }
    if HELP.contains(&text.as_str()) {
        return Parsed::all(Intent::Help);
    }
    if UNDO.contains(&text.as_str()) {
        return Parsed::all(Intent::Undo);
    }
    if let Some(parsed) = project::create_project(core, &n) {
        return parsed;
    }
    if let Some(parsed) = project::subtask(core, &n, now, zone) {
        return parsed;
    }
    if let Some((len, remind)) = add_command(core, &n) {
        return add(core, len, remind, now, zone).unwrap_or_else(|parsed| *parsed);
    }
    if let Some(parsed) = action::action(core, &n) {
        return parsed;
    }
    let asks = question || starts_like_question(&n);
    if project::lists_projects(&n) {
        return Parsed::all(Intent::ListProjects);
    }
    let listed = listing::list(core, &n, asks, now, zone);
    // "show my groceries list": a project's tasks if the user has a project of that name,
    // else what the words meant before projects (a search, or not understood). A list with
    // real filters ("show high priority tasks") stays a list.
    if let Some(name) = project::shown_project(core, &n)
        && listed.as_ref().is_none_or(|parsed| match &parsed.intent {
            Intent::List(request) => request.is_search_only(),
            _ => false,
        })
    {
        let otherwise = listed.unwrap_or_else(|| not_understood(core, asks));
        return Parsed {
            intent: Intent::ShowProject {
                name,
                otherwise: Box::new(otherwise.intent),
            },
            unused: otherwise.unused,
        };
    }
    if let Some(parsed) = listed {
        return parsed;
    }
    if !asks {
        match add(core, 0, false, now, zone) {
            Ok(parsed) => {
                let verb = ACTION_VERBS.contains(&n[0]);
                if let Intent::Add(task) = &parsed.intent
                    && (verb || task_has_clue(task))
                {
                    return parsed;
                }
            }
            // The message had a clue but something in it could not be used ("every hour").
            Err(parsed) => return *parsed,
        }
    }
    not_understood(core, asks)
}

/// Reads one line typed into a "quick add" box as a new task: the whole line is the task
/// (no command word needed, though "add …" and "remind me to …" are understood), with its
/// dates, repeats, reminders, `!priority` and `#tags`. `Err` is the sentence to show when no
/// task can be made of it.
pub fn quick_add(text: &str, now: DateTime<Utc>, zone: Tz) -> Result<AddTask, String> {
    let all = split(text);
    let n: Vec<&str> = all.iter().map(|word| word.norm.as_str()).collect();
    let (start, remind) = add_command(&all, &n).unwrap_or((0, false));
    let parsed = add(&all, start, remind, now, zone).unwrap_or_else(|parsed| *parsed);
    match parsed.intent {
        Intent::Add(task) => Ok(task),
        Intent::Unknown { reply } => Err(reply),
        _ => Err(format!(
            "What should the task be called? Try: {ADD_EXAMPLE}."
        )),
    }
}

const HELP: &[&str] = &[
    "help",
    "help me",
    "?",
    "what can you do",
    "what can i do",
    "what can i say",
    "what do you do",
    "how does this work",
    "how do i use this",
    "how do i use you",
    "commands",
    "examples",
    "usage",
    "menu",
    "options",
];

const UNDO: &[&str] = &[
    "undo",
    "undo that",
    "undo it",
    "undo last",
    "undo the last one",
    "undo the last change",
    "undo the last action",
    "undo last change",
    "revert",
    "revert that",
    "revert it",
    "take that back",
    "take it back",
    "oops undo",
    "oops undo that",
    "cancel that",
];

fn small_talk(text: &str) -> Option<SmallTalk> {
    let talk = match text {
        "hi" | "hello" | "hey" | "hiya" | "howdy" | "yo" | "hi there" | "hello there"
        | "hey there" | "good morning" | "good afternoon" | "good evening" | "morning"
        | "how are you" | "how are you doing" | "how's it going" => SmallTalk::Greeting,
        "thanks" | "thank you" | "thx" | "ty" | "cheers" | "thanks a lot" | "thank you so much"
        | "many thanks" | "great thanks" | "great thank you" | "ok thanks" | "thanks!" => {
            SmallTalk::Thanks
        }
        "ok" | "okay" | "k" | "cool" | "great" | "nice" | "perfect" | "awesome" | "sounds good"
        | "got it" | "alright" | "all right" | "fine" => SmallTalk::Okay,
        "bye" | "goodbye" | "bye bye" | "see you" | "see ya" | "good night" | "later" => {
            SmallTalk::Bye
        }
        _ => return None,
    };
    Some(talk)
}

/// Courtesy words at either end ("please", "can you", "thanks") that change nothing.
fn trim_politeness(n: &[&str]) -> (usize, usize) {
    let mut start = 0;
    let mut end = n.len();
    loop {
        let rest = &n[start..end];
        let skip = match rest {
            [
                "please" | "pls" | "plz" | "kindly" | "ok" | "okay" | "so" | "hey" | "hi" | "hello"
                | "oh" | "and",
                _,
                ..,
            ] => 1,
            ["can" | "could" | "would" | "will", "you" | "u", _, ..] => 2,
            ["i", "want", "you", "to", _, ..] => 4,
            _ => 0,
        };
        if skip == 0 {
            break;
        }
        start += skip;
    }
    loop {
        let rest = &n[start..end];
        let skip = match rest {
            [_, .., "thank", "you"] => 2,
            [_, .., "please" | "pls" | "plz" | "thanks" | "thx"] => 1,
            _ => 0,
        };
        if skip == 0 {
            break;
        }
        end -= skip;
    }
    (start, end)
}

const QUESTION_WORDS: &[&str] = &[
    "what", "what's", "whats", "when", "where", "who", "why", "how", "which", "is", "are", "can",
    "could", "would", "will", "should", "shall", "am", "whose", "isn't", "aren't", "any",
];

pub(super) fn starts_like_question(n: &[&str]) -> bool {
    match n {
        [first, ..] if QUESTION_WORDS.contains(first) => true,
        // "do I have anything today" asks; "do laundry tonight" is a task.
        [
            "do" | "does" | "did",
            "i" | "you" | "we" | "they" | "my" | "it",
            ..,
        ] => true,
        _ => false,
    }
}

/// Verbs that make bare text a task ("buy groceries"); see the module documentation.
const ACTION_VERBS: &[&str] = &[
    "buy", "call", "email", "e-mail", "mail", "pay", "fix", "write", "clean", "book", "send",
    "pick", "get", "go", "visit", "schedule", "read", "review", "prepare", "prep", "plan",
    "submit", "renew", "cancel", "order", "water", "walk", "feed", "wash", "take", "bring",
    "return", "check", "update", "meet", "text", "ring", "phone", "make", "cook", "do", "file",
    "print", "sign", "study", "practice", "practise", "learn", "pack", "organise", "organize",
    "repair", "replace", "install", "backup", "post", "collect", "contact", "follow", "reply",
    "respond", "answer", "ask", "invite", "bake", "shop", "grab", "mow", "vacuum", "hoover",
    "tidy", "iron", "research", "draft", "edit", "publish", "deploy", "test", "upgrade", "apply",
    "register", "sell", "donate", "watch", "charge", "fill", "refill", "fetch", "deliver", "scan",
    "put", "create", "change", "empty", "clear", "set", "see", "call", "dentist", "doctor",
    "exercise", "run", "jog", "swim", "gym", "vote", "wrap", "hang", "sweep", "mop", "dust",
    "defrost", "unpack", "load", "unload", "cut", "trim", "paint", "phone", "fax", "transfer",
    "withdraw", "deposit", "confirm", "arrange", "attend", "join",
];

/// The add commands: (words, whether the user asked to be reminded).
const ADD_COMMANDS: &[(&[&str], bool)] = &[
    (&["add", "a", "new", "task"], false),
    (&["add", "new", "task"], false),
    (&["add", "a", "task"], false),
    (&["add", "task"], false),
    (&["add", "a", "todo"], false),
    (&["add", "a", "to-do"], false),
    (&["add", "todo"], false),
    (&["add", "an", "item"], false),
    (&["add", "a", "reminder", "to"], true),
    (&["add", "a", "reminder"], true),
    (&["add", "reminder"], true),
    (&["add"], false),
    (&["create", "a", "new", "task"], false),
    (&["create", "a", "task"], false),
    (&["create", "task"], false),
    (&["create", "a", "todo"], false),
    // "create a high priority task to …": the rest of the header goes in `add`.
    (&["create"], false),
    (&["new", "task"], false),
    (&["new", "todo"], false),
    (&["new", "to-do"], false),
    (&["make", "a", "new", "task"], false),
    (&["make", "a", "task"], false),
    (&["make", "a", "todo"], false),
    (&["make", "a", "note", "to"], false),
    (&["set", "a", "reminder", "to"], true),
    (&["set", "a", "reminder", "for"], true),
    (&["set", "a", "reminder"], true),
    (&["set", "reminder"], true),
    (&["remind", "me", "to"], true),
    (&["remind", "me", "about"], true),
    (&["remind", "me", "of"], true),
    (&["remind", "me"], true),
    (&["i", "need", "to"], false),
    (&["i", "have", "to"], false),
    (&["i've", "got", "to"], false),
    (&["i", "got", "to"], false),
    (&["i", "gotta"], false),
    (&["i", "must"], false),
    (&["i", "should"], false),
    (&["i", "want", "to"], false),
    (&["i'd", "like", "to"], false),
    (&["need", "to"], false),
    (&["have", "to"], false),
    (&["gotta"], false),
    (&["don't", "forget", "to"], true),
    (&["dont", "forget", "to"], true),
    (&["do", "not", "forget", "to"], true),
    (&["remember", "to"], true),
];

fn add_command(core: &[Word], n: &[&str]) -> Option<(usize, bool)> {
    // "task: call mom", "todo: buy milk".
    if matches!(n.first(), Some(&("task" | "todo" | "to-do")))
        && core.first().is_some_and(|word| word.raw.ends_with(':'))
    {
        return Some((1, false));
    }
    ADD_COMMANDS.iter().find_map(|(words, remind)| {
        let matches = n.len() > words.len() && n.starts_with(words);
        // "remind me 30 minutes before" is a reminder phrase, not the command.
        let reminder_phrase = *words == ["remind", "me"] && reminder_at(n, 0).is_some();
        (matches && !reminder_phrase).then_some((words.len(), *remind))
    })
}

fn task_has_clue(task: &AddTask) -> bool {
    task.due_date.is_some()
        || task.priority.is_some()
        || !task.tags.is_empty()
        || task.recurrence_rule.is_some()
        || task.reminder_offset_minutes.is_some()
        || task.reminder_needs_date
}

/// "to my list", "on my to-do list": where the task goes, not part of it.
fn list_phrase_at(n: &[&str], i: usize) -> Option<usize> {
    let word = |k: usize| n.get(i + k).copied().unwrap_or("");
    if !matches!(word(0), "to" | "on" | "onto" | "in") {
        return None;
    }
    let owner = usize::from(matches!(word(1), "my" | "the"));
    let mut len = 1 + owner;
    if matches!(word(len), "todo" | "to-do" | "task" | "tasks" | "todos") && word(len + 1) == "list"
    {
        len += 1;
    }
    matches!(
        word(len),
        "list" | "tasks" | "todos" | "to-dos" | "todo" | "to-do"
    )
    .then_some(len + 1)
    .filter(|_| owner == 1 || word(len) == "list")
}

/// Reads a new task from `core[start..]`. `Err` carries a not-understood answer when part of
/// the message is clearly meant as a detail but cannot be used.
pub(super) fn add(
    core: &[Word],
    start: usize,
    remind_me: bool,
    now: DateTime<Utc>,
    zone: Tz,
) -> Result<Parsed, Box<Parsed>> {
    let n: Vec<&str> = core.iter().map(|word| word.norm.as_str()).collect();
    let mut used = vec![false; n.len()];
    let mut when = When::default();
    let mut repeat = None;
    let mut reminder = None;
    let mut priority = None;
    let mut tags: Vec<String> = Vec::new();
    let last = n.len().saturating_sub(1);
    let mut i = start;
    while i < n.len() {
        if reminder.is_none()
            && let Some((len, minutes)) = reminder_at(&n, i)
        {
            reminder = Some(minutes);
            i = mark(i, len, &mut used);
            continue;
        }
        if let Some((len, found)) = repeat_at(&n, i)
            && (len > 1 || adverb_stands_alone(core, &n, i))
        {
            // A later, longer repeat phrase wins and gives the earlier words back to the
            // title: "weekly review every friday" repeats on Fridays.
            match &repeat {
                None => {}
                Some((at, old_len, _)) if len > *old_len => {
                    for flag in &mut used[*at..*at + *old_len] {
                        *flag = false;
                    }
                }
                Some(_) => {
                    i += 1;
                    continue;
                }
            }
            repeat = Some((i, len, found));
            i = mark(i, len, &mut used);
            continue;
        }
        if let Some(found) = phrase_at(&n, i)
            && when.fits(&found.pieces)
        {
            when.take(&found.pieces);
            i = mark(i, found.len, &mut used);
            continue;
        }
        if priority.is_none()
            && let Some((len, level)) = priority_at(&n, i, i == start || i + 1 > last)
        {
            priority = Some(level);
            i = mark(i, len, &mut used);
            continue;
        }
        if let Some((len, tag)) = tag_at(&n, i) {
            if !tags.contains(&tag) {
                tags.push(tag);
            }
            i = mark(i, len, &mut used);
            continue;
        }
        if let Some(len) = list_phrase_at(&n, i) {
            i = mark(i, len, &mut used);
            continue;
        }
        i += 1;
    }
    let left: Vec<&Word> = core[start..]
        .iter()
        .zip(&used[start..])
        .filter(|(_, used)| !**used)
        .map(|(word, _)| word)
        .collect();
    if let Some(at) = left
        .iter()
        .position(|word| matches!(word.norm.as_str(), "every" | "each"))
        && (repeat.is_none() || left[at].norm == "every")
    {
        let phrase: Vec<&str> = left[at..]
            .iter()
            .take(3)
            .map(|word| word.raw.as_str())
            .collect();
        return Err(Box::new(unknown(
            format!(
                "I couldn't understand the repeat \"{}\". Try: every day, every 2 weeks, every weekday, every monday or every month on the 1st.",
                phrase.join(" ")
            ),
            core,
        )));
    }
    let header = task_header_len(&left);
    // "create a reminder to …" asks to be reminded like "remind me to …".
    let remind_me = remind_me
        || left[..header]
            .iter()
            .any(|word| word.norm.trim_end_matches(':') == "reminder");
    let left = &left[header..];
    let (title_words, description) = split_description(left);
    let title = clean_phrase(title_words);
    let repeat = repeat.map(|(_, _, repeat)| repeat);
    let due_date = match &repeat {
        Some(repeat) => first_due(repeat, &when, now, zone),
        None => when.resolve(now, zone),
    };
    if title.is_empty() {
        let reply = match due_date {
            Some(_) => format!("I understood when, but not what the task is. Try: {ADD_EXAMPLE}."),
            None => format!("What should the task be called? Try: {ADD_EXAMPLE}."),
        };
        return Err(Box::new(unknown(reply, core)));
    }
    let wants_reminder = reminder.is_some() || remind_me;
    let reminder_offset_minutes = match (due_date, reminder) {
        (Some(_), Some(minutes)) => Some(minutes),
        (Some(_), None) if remind_me => Some(REMIND_ME_OFFSET_MINUTES),
        _ => None,
    };
    let project_hints = project::hints(title_words);
    let task = AddTask {
        title,
        project_hints,
        description,
        priority,
        due_date,
        tags,
        reminder_offset_minutes,
        recurrence_rule: repeat.map(|repeat| repeat.rule),
        reminder_needs_date: wants_reminder && due_date.is_none(),
    };
    Ok(Parsed::all(Intent::Add(task)))
}

/// Words that name the thing being added rather than being part of it.
const TASK_NOUNS: &[&str] = &["task", "todo", "to-do", "item", "reminder", "note"];
/// Words between the header and the title: "a task *to* …", "a task *called* …".
const TITLE_LEADS: &[&str] = &[
    "to", "called", "named", "titled", "for", "saying", "that", "about",
];

/// How many leading words of what is left are a header rather than the title: "a (high
/// priority) task to", "a new todo called", or a bare "called"/"named"/"titled" after a
/// command that already said "task" ("add a task called Review PR"). The priority words in
/// between were taken already, so only articles, the noun and the lead remain.
fn task_header_len(left: &[&Word]) -> usize {
    let norm = |k: usize| {
        left.get(k)
            .map(|word| word.norm.trim_end_matches(':'))
            .unwrap_or("")
    };
    if matches!(norm(0), "called" | "named" | "titled") && left.len() > 1 {
        return 1;
    }
    let mut i = 0;
    while matches!(norm(i), "a" | "an" | "the" | "new" | "another" | "one") {
        i += 1;
    }
    if !TASK_NOUNS.contains(&norm(i)) || left.len() <= i + 1 {
        return 0;
    }
    i += 1;
    if TITLE_LEADS.contains(&norm(i)) && left.len() > i + 1 {
        i += 1;
    }
    i
}

/// Splits "Review PR with description check the tests" into the title and a description, at
/// "with (the) description", "with notes", "description:" or "notes:".
fn split_description<'w>(left: &'w [&'w Word]) -> (&'w [&'w Word], Option<String>) {
    let norm = |k: usize| left.get(k).map(|word| word.norm.as_str()).unwrap_or("");
    for at in 1..left.len() {
        let marker = match (norm(at), norm(at + 1), norm(at + 2)) {
            ("with", "the", "description" | "details" | "notes") => 3,
            ("with", "description" | "details" | "notes" | "note", _) => 2,
            ("description" | "details" | "notes" | "desc", _, _) if left[at].raw.ends_with(':') => {
                1
            }
            _ => continue,
        };
        let rest: Vec<&Word> = left[at + marker..].to_vec();
        let description = clean_phrase(&rest);
        if !description.is_empty() {
            return (&left[..at], Some(description));
        }
    }
    (left, None)
}

/// "daily", "weekly", "quarterly"... repeat a task only where they cannot be an adjective of
/// the title: at the end, before a comma, or before another detail ("journal daily at 9pm",
/// "backup weekly"); "the quarterly report" and "weekly review" keep their words.
fn adverb_stands_alone(core: &[Word], n: &[&str], i: usize) -> bool {
    let next = i + 1;
    next >= n.len()
        || core[i].raw.ends_with(',')
        || matches!(
            n[next],
            "at" | "on" | "from" | "starting" | "and" | "with" | "by" | "until" | "remind"
        )
        || phrase_at(n, next).is_some()
        || priority_at(n, next, false).is_some()
        || tag_at(n, next).is_some()
        || reminder_at(n, next).is_some()
}

/// Marks `len` words from `i` as used; returns the index after them.
pub(super) fn mark(i: usize, len: usize, used: &mut [bool]) -> usize {
    let end = (i + len).min(used.len());
    for flag in &mut used[i..end] {
        *flag = true;
    }
    i + len
}
