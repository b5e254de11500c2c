//! Projects and subtasks in everyday words: "create a project Garden", "add buy milk to
//! groceries" (only when a project of that name exists: the parser leaves [`ProjectHint`]s and
//! the planner, which knows the user's projects, picks one), "add subtask call plumber to fix
//! sink", "show my groceries list" / "what's in groceries", "show my projects".
//!
//! The parser cannot know the user's projects, so every reading here that could also be an
//! ordinary task or list keeps that reading as the fallback: "add talk to bob" stays the task
//! "talk to bob" unless a project called "bob" exists.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::action::parse_ref;
use super::intent::{Intent, Parsed, ProjectHint, TaskRef, add, unknown};
use super::words::{Word, clean_phrase, clean_quoted};

/// Words that put a task into a list: "buy milk *to* groceries", "*in* the garden project".
const INTO: &[&str] = &["to", "in", "into", "on", "onto"];
/// Words that end a project's name without being part of it ("my groceries *list*").
const LIST_NOUNS: &[&str] = &["list", "lists", "project"];
/// Words between a subtask and its parent: "call plumber *to* / *under* / *for* fix sink".
const UNDER: &[&str] = &["to", "under", "for", "of", "in", "on"];
const SUBTASK: &[&str] = &["subtask", "sub-task", "subtasks"];

/// The readings of a new task's title words as "TITLE in project NAME", best first: an
/// `@name` mark, then each "to/in/on (my|the) NAME (list|project)" ending, the longest name
/// first ("talk to bob to work": "bob to work" before "work").
pub fn hints(title: &[&Word]) -> Vec<ProjectHint> {
    let mut found = Vec::new();
    if let Some(at) = title.iter().position(|word| marked_name(word).is_some()) {
        let rest: Vec<&Word> = title
            .iter()
            .enumerate()
            .filter(|(index, _)| *index != at)
            .map(|(_, word)| *word)
            .collect();
        let name = marked_name(title[at]).unwrap_or_default();
        let left = clean_phrase(&rest);
        if !left.is_empty() {
            found.push(ProjectHint {
                name,
                title: left,
                marked: true,
            });
        }
    }
    for at in 1..title.len() {
        if !INTO.contains(&title[at].norm.as_str()) {
            continue;
        }
        let mut from = at + 1;
        while from < title.len() && matches!(title[from].norm.as_str(), "my" | "the" | "our") {
            from += 1;
        }
        let mut to = title.len();
        if to > from + 1 && LIST_NOUNS.contains(&title[to - 1].norm.as_str()) {
            to -= 1;
        }
        let name = clean_quoted(&title[from..to]);
        let left = clean_phrase(&title[..at]);
        if !name.is_empty() && !left.is_empty() {
            found.push(ProjectHint {
                name,
                title: left,
                marked: false,
            });
        }
    }
    found
}

/// `@groceries` → "groceries" (trailing punctuation dropped).
fn marked_name(word: &Word) -> Option<String> {
    let name = word.raw.strip_prefix('@')?;
    let name = name.trim_end_matches(['.', ',', ';', ':', '!', '?']);
    (!name.is_empty()).then(|| name.to_owned())
}

/// "create a project Garden", "new project called Home Repairs", "make a list called
/// Groceries", "create a shopping list", "start a Garden project".
pub fn create_project(core: &[Word], n: &[&str]) -> Option<Parsed> {
    let verb = matches!(
        n.first(),
        Some(&("create" | "make" | "add" | "start" | "new" | "open"))
    );
    if !verb {
        return None;
    }
    let mut i = usize::from(n[0] != "new");
    while matches!(n.get(i), Some(&("a" | "an" | "another"))) {
        i += 1;
    }
    if n.get(i) == Some(&"new") {
        i += 1;
    }
    let noun = n.get(i).copied().unwrap_or("");
    let named = |k: usize| matches!(n.get(k), Some(&("called" | "named" | "titled")));
    let name_from = match noun {
        "project" => Some(i + 1 + usize::from(named(i + 1))),
        // "a list" is named only explicitly: "make a list of chores" is a task.
        "list" if named(i + 1) => Some(i + 2),
        _ => None,
    };
    let words: Vec<&Word> = match name_from {
        Some(from) => core.get(from..)?.iter().collect(),
        None => {
            // "create a shopping list", "start a Garden project": a short name before the noun.
            let last = n.len().checked_sub(1)?;
            let short = last > i && last - i <= 3;
            let plain = short
                && n[i..last]
                    .iter()
                    .all(|word| !matches!(*word, "for" | "about" | "to" | "the" | "of" | "with"));
            let kind = matches!(n[0], "create" | "start" | "new");
            if !(LIST_NOUNS.contains(&n[last]) && short && plain && kind) {
                return None;
            }
            core[i..last].iter().collect()
        }
    };
    let name = clean_quoted(&words);
    if name.is_empty() {
        return Some(unknown(
            "What should the project be called? Try: create a project Garden.",
            core,
        ));
    }
    Some(Parsed::all(Intent::CreateProject(name)))
}

/// "add subtask call plumber to fix sink", "add a subtask buy tiles under bathroom",
/// "add call plumber as a subtask of fix sink".
pub fn subtask(core: &[Word], n: &[&str], now: DateTime<Utc>, zone: Tz) -> Option<Parsed> {
    if !matches!(
        n.first(),
        Some(&("add" | "create" | "new" | "make" | "put"))
    ) {
        return None;
    }
    let mut i = usize::from(n[0] != "new");
    while matches!(n.get(i), Some(&("a" | "an" | "another" | "new"))) {
        i += 1;
    }
    let splits: Vec<(usize, usize)> = if SUBTASK.contains(n.get(i)?) {
        // The subtask's words, then a joining word, then the parent's.
        let from = i + 1 + usize::from(matches!(n.get(i + 1), Some(&("called" | "named"))));
        (from + 1..n.len().saturating_sub(1))
            .filter(|at| UNDER.contains(&n[*at]))
            .map(|at| (from, at))
            .collect()
    } else {
        // "… as a subtask of …".
        let as_at = (1..n.len()).find(|at| {
            n[*at] == "as"
                && (SUBTASK.contains(n.get(at + 1).unwrap_or(&""))
                    || (n.get(at + 1) == Some(&"a")
                        && SUBTASK.contains(n.get(at + 2).unwrap_or(&""))))
        })?;
        let noun = as_at + 1 + usize::from(n[as_at + 1] == "a");
        if !UNDER.contains(n.get(noun + 1)?) || noun + 2 >= n.len() {
            return None;
        }
        let from = 1;
        if as_at <= from {
            return None;
        }
        // The parent starts after "of"; the title ends before "as".
        return Some(one_split(core, from, as_at, noun + 2, now, zone));
    };
    if splits.is_empty() {
        return Some(unknown(
            "Which task should it go under? Try: add subtask call plumber to fix sink.",
            core,
        ));
    }
    let mut choices = Vec::new();
    let mut failure = None;
    for (from, at) in splits {
        match read_split(core, from, at, at + 1, now, zone) {
            Ok(choice) => choices.push(choice),
            Err(parsed) => failure = failure.or(Some(*parsed)),
        }
    }
    if choices.is_empty() {
        return failure;
    }
    Some(Parsed::all(Intent::AddSubtask(choices)))
}

fn one_split(
    core: &[Word],
    from: usize,
    end: usize,
    parent: usize,
    now: DateTime<Utc>,
    zone: Tz,
) -> Parsed {
    match read_split(core, from, end, parent, now, zone) {
        Ok(choice) => Parsed::all(Intent::AddSubtask(vec![choice])),
        Err(parsed) => *parsed,
    }
}

/// The new subtask from `core[from..end]` (with its dates, tags and priority) and its parent
/// from `core[parent..]`.
fn read_split(
    core: &[Word],
    from: usize,
    end: usize,
    parent: usize,
    now: DateTime<Utc>,
    zone: Tz,
) -> Result<(TaskRef, super::intent::AddTask), Box<Parsed>> {
    let target = parent_ref(&core[parent..]).ok_or_else(|| {
        Box::new(unknown(
            "Which task should it go under? Try: add subtask call plumber to fix sink.",
            core,
        ))
    })?;
    let parsed = add(&core[from..end], 0, false, now, zone)?;
    match parsed.intent {
        Intent::Add(mut task) => {
            // A subtask goes where its parent is; words naming a project are its title.
            task.project_hints.clear();
            Ok((target, task))
        }
        _ => Err(Box::new(parsed)),
    }
}

/// The parent's words: "the fix sink task" → "fix sink"; a number or "it" as anywhere else.
fn parent_ref(words: &[Word]) -> Option<TaskRef> {
    let mut from = 0;
    while words
        .get(from)
        .is_some_and(|word| matches!(word.norm.as_str(), "the" | "my" | "task"))
    {
        from += 1;
    }
    let mut to = words.len();
    if to > from + 1 && matches!(words[to - 1].norm.as_str(), "task" | "todo") {
        to -= 1;
    }
    parse_ref(&words[from..to])
}

/// "show my projects", "list projects", "what projects do I have", "my lists".
pub fn lists_projects(n: &[&str]) -> bool {
    let content: Vec<&str> = n
        .iter()
        .copied()
        .filter(|word| {
            !matches!(
                *word,
                "show"
                    | "list"
                    | "display"
                    | "view"
                    | "me"
                    | "my"
                    | "all"
                    | "the"
                    | "what"
                    | "what's"
                    | "whats"
                    | "which"
                    | "are"
                    | "do"
                    | "i"
                    | "have"
                    | "of"
                    | "your"
            )
        })
        .collect();
    matches!(content.as_slice(), ["projects"] | ["lists"])
        && matches!(
            n.first(),
            Some(&("show" | "list" | "display" | "view" | "what" | "which" | "my" | "projects"))
        )
}

/// The project a request to see one names: "show my groceries list", "list the garden
/// project", "what's in groceries", "what's on my groceries list", "what do I have in
/// groceries". Whether a project of that name exists is for the planner to say.
pub fn shown_project(core: &[Word], n: &[&str]) -> Option<String> {
    let lead = match n {
        ["show" | "list" | "display" | "view" | "open", "me", ..] => 2,
        ["show" | "list" | "display" | "view" | "open", ..] => 1,
        ["what's" | "whats", "in" | "on", ..] => 2,
        ["what", "is" | "are", "in" | "on", ..] => 3,
        ["what", "do", "i", "have", "in" | "on", ..] => 5,
        ["what's" | "whats", "left", "in" | "on", ..] => 3,
        _ => return None,
    };
    let mut from = lead;
    while from < n.len() && matches!(n[from], "my" | "the" | "our") {
        from += 1;
    }
    let mut to = n.len();
    while to > from
        && matches!(
            n[to - 1],
            "list" | "project" | "tasks" | "task" | "todos" | "items" | "please"
        )
    {
        to -= 1;
    }
    let name = clean_quoted(&core[from..to].iter().collect::<Vec<_>>());
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::offline::intent::parse;
    use crate::assistant::offline::words::split;

    fn now() -> DateTime<Utc> {
        crate::assistant::offline::fixture::at(crate::assistant::offline::fixture::NOW)
    }

    fn intent(text: &str) -> Intent {
        parse(text, now(), Tz::UTC).intent
    }

    fn hint_pairs(text: &str) -> Vec<(String, String, bool)> {
        match intent(text) {
            Intent::Add(task) => task
                .project_hints
                .into_iter()
                .map(|hint| (hint.name, hint.title, hint.marked))
                .collect(),
            other => panic!("not an add: {other:?}"),
        }
    }

    #[test]
    fn a_new_task_may_name_a_project_but_keeps_its_whole_title() {
        let Intent::Add(task) = intent("add buy milk to groceries") else {
            panic!("add");
        };
        assert_eq!(task.title, "buy milk to groceries", "as before projects");
        assert_eq!(
            hint_pairs("add buy milk to groceries"),
            [("groceries".into(), "buy milk".into(), false)]
        );
        assert_eq!(
            hint_pairs("add buy milk to my Groceries list tomorrow"),
            [("Groceries".into(), "buy milk".into(), false)]
        );
        assert_eq!(
            hint_pairs("add talk to bob to work"),
            [
                ("bob to work".into(), "talk".into(), false),
                ("work".into(), "talk to bob".into(), false)
            ]
        );
        assert_eq!(
            hint_pairs("buy milk @groceries"),
            [("groceries".into(), "buy milk".into(), true)]
        );
        assert!(hint_pairs("add buy milk").is_empty());
        // "to my list" is not a project.
        let Intent::Add(task) = intent("add buy milk to my list") else {
            panic!("add");
        };
        assert_eq!(task.title, "buy milk");
        assert!(task.project_hints.is_empty());
    }

    #[test]
    fn projects_are_created_by_name() {
        for (text, name) in [
            ("create a project Garden", "Garden"),
            ("create a new project called Home Repairs", "Home Repairs"),
            ("new project Garden", "Garden"),
            ("add a project \"Garden\"", "Garden"),
            ("make a list called Groceries", "Groceries"),
            ("create a shopping list", "shopping"),
            ("start a Garden project", "Garden"),
        ] {
            assert_eq!(intent(text), Intent::CreateProject(name.into()), "{text}");
        }
        // Not projects: tasks as before.
        for text in [
            "make a list of chores",
            "add call about the project",
            "create slides for the project",
        ] {
            assert!(matches!(intent(text), Intent::Add(_)), "{text}");
        }
    }

    #[test]
    fn subtasks_name_their_parent() {
        let Intent::AddSubtask(choices) = intent("add subtask call plumber to fix sink") else {
            panic!("subtask");
        };
        assert_eq!(choices.len(), 1);
        assert_eq!(choices[0].0, TaskRef::Words("fix sink".into()));
        assert_eq!(choices[0].1.title, "call plumber");

        let Intent::AddSubtask(choices) = intent("add a subtask talk to bob to the report task")
        else {
            panic!("subtask");
        };
        assert_eq!(choices.len(), 2, "two ways to split");
        assert_eq!(choices[0].0, TaskRef::Words("bob to the report".into()));
        assert_eq!(choices[1].0, TaskRef::Words("report".into()));
        assert_eq!(choices[1].1.title, "talk to bob");

        let Intent::AddSubtask(choices) =
            intent("add call plumber tomorrow at 9 as a subtask of fix sink")
        else {
            panic!("subtask");
        };
        assert_eq!(choices[0].0, TaskRef::Words("fix sink".into()));
        assert_eq!(choices[0].1.title, "call plumber");
        assert!(choices[0].1.due_date.is_some());

        assert!(matches!(
            intent("add subtask call plumber"),
            Intent::Unknown { .. }
        ));
    }

    #[test]
    fn project_lists_fall_back_to_what_the_words_meant_before() {
        match intent("show my groceries list") {
            Intent::ShowProject { name, otherwise } => {
                assert_eq!(name, "groceries");
                assert!(matches!(*otherwise, Intent::List(_)), "{otherwise:?}");
            }
            other => panic!("{other:?}"),
        }
        match intent("what's in Groceries?") {
            Intent::ShowProject { name, otherwise } => {
                assert_eq!(name, "Groceries");
                assert!(matches!(*otherwise, Intent::Unknown { .. }));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(intent("show my projects"), Intent::ListProjects);
        assert_eq!(intent("what projects do I have"), Intent::ListProjects);
        assert!(matches!(intent("show my tasks"), Intent::List(_)));
        assert!(matches!(intent("list"), Intent::List(_)));
        let words = split("show me the garden project");
        let n: Vec<&str> = words.iter().map(|word| word.norm.as_str()).collect();
        assert_eq!(shown_project(&words, &n).as_deref(), Some("garden"));
    }
}
