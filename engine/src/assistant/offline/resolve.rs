//! Which task a reference means: a number in the last list, "it", or words matched against the
//! user's task titles.
//!
//! Words match case-insensitively, in three classes: the whole title (exact), the words as a
//! run inside the title (containment: "report" in "Write the quarterly report"), and the share
//! of the meaningful words found in the title allowing one typo per word (fuzzy, at least half
//! of them). Only the best class counts. Within it, open tasks are preferred to completed ones
//! (recurring series leave many completed namesakes), except when reopening, which prefers
//! completed ones. If several tasks are still equally good the assistant asks which one
//! instead of guessing.

use uuid::Uuid;

use super::Context;
use super::intent::TaskRef;
use crate::task::{Task, TaskStatus};

/// The outcome of resolving a reference.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved<'a> {
    One(&'a Task),
    /// Equally good candidates, in the order of the user's tasks.
    Several(Vec<&'a Task>),
    /// Nothing fits; the text says why and what to do.
    Nothing(String),
}

/// Which tasks win a tie between a finished and an unfinished one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefer {
    Open,
    Completed,
}

impl Prefer {
    fn likes(self, task: &Task) -> bool {
        match self {
            Self::Open => task.status != TaskStatus::Completed,
            Self::Completed => task.status == TaskStatus::Completed,
        }
    }
}

/// How well words match a title: (class, share in percent); higher is better.
pub type Quality = (u8, u32);

const EXACT: u8 = 3;
const CONTAINS: u8 = 2;
const FUZZY: u8 = 1;

/// Resolves `target` against the context.
pub fn resolve<'a>(target: &TaskRef, ctx: &Context<'a>, prefer: Prefer) -> Resolved<'a> {
    match target {
        TaskRef::Position(position) => by_position(*position, ctx),
        TaskRef::Last => match ctx.last_list.len() {
            0 => by_position(1, ctx),
            len => by_position(len, ctx),
        },
        TaskRef::It => it(ctx),
        TaskRef::Words(words) => by_words(words, ctx, prefer),
    }
}

fn find<'a>(id: Uuid, ctx: &Context<'a>) -> Option<&'a Task> {
    ctx.tasks.iter().find(|task| task.id == id)
}

fn by_position<'a>(position: usize, ctx: &Context<'a>) -> Resolved<'a> {
    if ctx.last_list.is_empty() {
        return Resolved::Nothing(format!(
            "I haven't shown you a list yet, so I don't know which one number {position} is. Say 'list' first, or name the task."
        ));
    }
    let Some(id) = position
        .checked_sub(1)
        .and_then(|index| ctx.last_list.get(index))
    else {
        let len = ctx.last_list.len();
        let tasks = if len == 1 { "task" } else { "tasks" };
        return Resolved::Nothing(format!(
            "The last list had only {len} {tasks}, so there's no number {position}. Say 'list' to see them again."
        ));
    };
    match find(*id, ctx) {
        Some(task) => Resolved::One(task),
        None => Resolved::Nothing(format!(
            "Task {position} from the last list no longer exists. Say 'list' to see your tasks now."
        )),
    }
}

/// "it": the task the previous turn acted on, else the only task of the last list.
fn it<'a>(ctx: &Context<'a>) -> Resolved<'a> {
    let acted = ctx
        .last_actions
        .iter()
        .rev()
        .filter(|invocation| invocation.success)
        .filter(|invocation| {
            matches!(
                invocation.tool_name.as_str(),
                "add_task" | "complete_task" | "update_task"
            )
        })
        .find_map(|invocation| {
            let id = invocation.result.as_ref()?.get("id")?.as_str()?;
            find(Uuid::parse_str(id).ok()?, ctx)
        });
    if let Some(task) = acted {
        return Resolved::One(task);
    }
    if let [only] = ctx.last_list
        && let Some(task) = find(*only, ctx)
    {
        return Resolved::One(task);
    }
    Resolved::Nothing(
        "I'm not sure which task you mean. Name it, or give its number from the last list."
            .to_owned(),
    )
}

fn by_words<'a>(words: &str, ctx: &Context<'a>, prefer: Prefer) -> Resolved<'a> {
    let scored: Vec<(&Task, Quality)> = ctx
        .tasks
        .iter()
        .filter_map(|task| quality(words, &task.title).map(|quality| (task, quality)))
        .collect();
    let Some(best_class) = scored.iter().map(|(_, (class, _))| *class).max() else {
        return Resolved::Nothing(format!(
            "No task matches \"{words}\". Say 'list' to see your tasks."
        ));
    };
    let mut best: Vec<(&Task, Quality)> = scored
        .into_iter()
        .filter(|(_, (class, _))| *class == best_class)
        .collect();
    if best.iter().any(|(task, _)| prefer.likes(task)) {
        best.retain(|(task, _)| prefer.likes(task));
    }
    // Containment is one class: "milk" in "Buy milk" and in "Buy milk and eggs" is a tie.
    if best_class == FUZZY {
        let top = best.iter().map(|(_, (_, share))| *share).max().unwrap_or(0);
        best.retain(|(_, (_, share))| *share == top);
    }
    match best.as_slice() {
        [(task, _)] => Resolved::One(task),
        _ => Resolved::Several(best.into_iter().map(|(task, _)| task).collect()),
    }
}

/// The best quality of `words` against any task, for choosing how to split "rename X to Y".
pub fn best_quality(words: &str, ctx: &Context<'_>) -> Option<Quality> {
    ctx.tasks
        .iter()
        .filter_map(|task| quality(words, &task.title))
        .max()
}

fn tokens(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|token| !token.is_empty())
        .map(str::to_owned)
        .collect()
}

const ARTICLES: &[&str] = &["the", "my", "a", "an", "task", "todo"];
const STOPWORDS: &[&str] = &[
    "the", "a", "an", "my", "to", "of", "for", "and", "with", "on", "at", "in", "task", "todo",
];

/// How well `words` name `title`, if at all.
pub fn quality(words: &str, title: &str) -> Option<Quality> {
    let title = tokens(title);
    let query = tokens(words);
    if query.is_empty() || title.is_empty() {
        return None;
    }
    let mut bare = query.as_slice();
    while let [first, rest @ ..] = bare
        && ARTICLES.contains(&first.as_str())
        && !rest.is_empty()
    {
        bare = rest;
    }
    if title == query || title == bare {
        return Some((EXACT, 100));
    }
    let contains = |needle: &[String]| title.windows(needle.len()).any(|window| window == needle);
    if contains(&query) || contains(bare) {
        return Some((CONTAINS, 100));
    }
    let meaningful: Vec<&String> = query
        .iter()
        .filter(|token| !STOPWORDS.contains(&token.as_str()))
        .collect();
    if meaningful.is_empty() {
        return None;
    }
    let found = meaningful
        .iter()
        .filter(|token| title.iter().any(|word| similar(token, word)))
        .count();
    let share = u32::try_from(found * 100 / meaningful.len()).unwrap_or(0);
    (found > 0 && share >= 50).then_some((FUZZY, share))
}

fn singular(word: &str) -> &str {
    if word.len() > 3 {
        word.strip_suffix('s').unwrap_or(word)
    } else {
        word
    }
}

fn similar(a: &str, b: &str) -> bool {
    if a == b || singular(a) == singular(b) {
        return true;
    }
    let shorter = a.chars().count().min(b.chars().count());
    let allowed = match shorter {
        0..=3 => 0,
        4..=6 => 1,
        _ => 2,
    };
    allowed > 0 && edit_distance(a, b) <= allowed
}

/// Levenshtein distance, for typos in task names.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualities() {
        assert_eq!(quality("buy milk", "Buy milk"), Some((EXACT, 100)));
        assert_eq!(
            quality("the report", "Write the quarterly report"),
            Some((CONTAINS, 100))
        );
        assert_eq!(
            quality("the report", "Finish report"),
            Some((CONTAINS, 100))
        );
        assert_eq!(
            quality("quartrly report", "Write the quarterly report"),
            Some((FUZZY, 100))
        );
        assert_eq!(
            quality("quarterly reprot", "Write the quarterly report"),
            Some((FUZZY, 50))
        );
        assert_eq!(
            quality("plants water", "Water the plants"),
            Some((FUZZY, 100))
        );
        assert_eq!(quality("groceries", "Buy milk"), None);
        assert_eq!(quality("the", "The end"), Some((CONTAINS, 100)));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
