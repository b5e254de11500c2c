//! The small markers a task message may carry besides its date: a priority ("urgent", "high
//! priority", "!low"), tags ("#work", "tagged home") and a reminder lead time ("remind me 30
//! minutes before"). Each matcher looks at one position and either takes whole words or none.

use super::dates::quantity_at;
use crate::task::Priority;

/// A priority level word: "high", "top", "low", "normal"...
pub fn level(norm: &str) -> Option<Priority> {
    match norm {
        "high" | "highest" | "top" => Some(Priority::High),
        "medium" | "normal" | "mid" | "med" => Some(Priority::Medium),
        "low" | "lowest" => Some(Priority::Low),
        _ => None,
    }
}

fn is_priority_noun(norm: &str) -> bool {
    matches!(norm, "priority" | "prio" | "pri")
}

/// A priority phrase at word `i`: (words, level). `edge` says whether `i` is the first or the
/// last word of the message, where "important"/"critical" and a bare "low"/"high" are read as a
/// priority rather than as part of the title.
pub fn priority_at(words: &[&str], i: usize, edge: bool) -> Option<(usize, Priority)> {
    let word = |k: usize| words.get(i + k).copied().unwrap_or("");
    let first = word(0);
    if let Some(mark) = first.strip_prefix('!') {
        let priority = match mark {
            "" | "!" | "!!" | "high" | "h" | "1" | "urgent" => Priority::High,
            "medium" | "med" | "m" | "2" | "normal" => Priority::Medium,
            "low" | "l" | "3" => Priority::Low,
            _ => return None,
        };
        return Some((1, priority));
    }
    // "high-priority", "low-prio".
    if let Some((level_word, noun)) = first.split_once('-')
        && is_priority_noun(noun)
    {
        return level(level_word).map(|priority| (1, priority));
    }
    match (first, word(1), word(2)) {
        ("not", "urgent" | "important", _) => return Some((2, Priority::Low)),
        ("no", "rush", _) => return Some((2, Priority::Low)),
        ("urgent" | "urgently" | "asap", _, _) => return Some((1, Priority::High)),
        ("important" | "critical", _, _) if edge => return Some((1, Priority::High)),
        _ => {}
    }
    // "priority high", "prio: low".
    if is_priority_noun(first)
        && let Some(priority) = level(word(1))
    {
        return Some((2, priority));
    }
    // "(with|as) (a) high priority".
    let skip_with = usize::from(matches!(first, "with" | "as"));
    let skip_a = usize::from(word(skip_with) == "a");
    let start = skip_with + skip_a;
    let priority = level(word(start))?;
    if is_priority_noun(word(start + 1)) {
        return Some((start + 2, priority));
    }
    (start == 0 && edge && i + 1 == words.len()).then_some((1, priority))
}

/// A tag at word `i`: "#work" or "tagged work" / "with tag work". Tags are lower case, as the
/// store keeps them.
pub fn tag_at(words: &[&str], i: usize) -> Option<(usize, String)> {
    let word = |k: usize| words.get(i + k).copied().unwrap_or("");
    if let Some(tag) = hash_tag(word(0)) {
        return Some((1, tag));
    }
    let skip = match (word(0), word(1)) {
        ("tagged" | "labelled" | "labeled", _) => 1,
        ("with", "tag" | "label") => 2,
        ("with", "the") if word(2) == "tag" => 3,
        _ => return None,
    };
    let tag = word(skip);
    let tag = hash_tag(tag).or_else(|| valid_tag(tag).then(|| tag.to_owned()))?;
    Some((skip + 1, tag))
}

/// "#work" → "work".
pub fn hash_tag(norm: &str) -> Option<String> {
    let tag = norm.strip_prefix('#')?;
    valid_tag(tag).then(|| tag.to_owned())
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.chars().count() <= 50
        && tag
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '/'))
}

/// A reminder lead time at word `i`: "remind me 30 minutes before", "with a reminder 1 hour
/// before", "an hour before", "remind me the day before". Returns (words, minutes).
pub fn reminder_at(words: &[&str], i: usize) -> Option<(usize, i64)> {
    let word = |k: usize| words.get(i + k).copied().unwrap_or("");
    let and = usize::from(word(0) == "and");
    let lead = match (word(and), word(and + 1), word(and + 2)) {
        ("remind" | "notify" | "alert" | "ping", "me", _) => 2,
        ("with", "a", "reminder") => 3,
        ("with", "reminder", _) | ("a", "reminder", _) => 2,
        ("reminder", _, _) => 1,
        _ => 0,
    };
    let mut at = and + lead;
    let (len, minutes) = if word(at) == "the" && word(at + 1) == "day" {
        (2, 1_440)
    } else {
        let (len, amount, unit) = quantity_at(words, i + at)?;
        (len, unit.minutes(amount)?)
    };
    at += len;
    let tail = match (word(at), word(at + 1)) {
        ("before" | "earlier" | "ahead" | "beforehand" | "prior", _) => 1,
        ("in", "advance") => 2,
        _ => return None,
    };
    at += tail;
    if matches!(word(at), "it" | "that") {
        at += 1;
    }
    (minutes >= 1).then_some((at, minutes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<&str> {
        text.split_whitespace().collect()
    }

    #[test]
    fn priorities() {
        type Row = (&'static str, usize, bool, Option<(usize, Priority)>);
        let cases: [Row; 9] = [
            ("!high", 0, false, Some((1, Priority::High))),
            ("!!", 0, false, Some((1, Priority::High))),
            ("high priority", 0, false, Some((2, Priority::High))),
            ("with a low priority", 0, false, Some((4, Priority::Low))),
            ("high-priority", 0, false, Some((1, Priority::High))),
            ("urgent", 0, false, Some((1, Priority::High))),
            ("not urgent", 0, false, Some((2, Priority::Low))),
            ("important email", 0, false, None),
            ("buy milk low", 2, true, Some((1, Priority::Low))),
        ];
        for (text, at, edge, expected) in cases {
            assert_eq!(priority_at(&split(text), at, edge), expected, "{text}");
        }
    }

    #[test]
    fn reminders_and_tags() {
        assert_eq!(
            reminder_at(&split("remind me 30 minutes before"), 0),
            Some((5, 30))
        );
        assert_eq!(
            reminder_at(&split("with a reminder 1 hour before"), 0),
            Some((6, 60))
        );
        assert_eq!(
            reminder_at(&split("and remind me the day before"), 0),
            Some((6, 1440))
        );
        assert_eq!(reminder_at(&split("2 hours ahead"), 0), Some((3, 120)));
        assert_eq!(reminder_at(&split("remind me to call"), 0), None);
        assert_eq!(tag_at(&split("#work"), 0), Some((1, "work".to_owned())));
        assert_eq!(
            tag_at(&split("tagged home"), 0),
            Some((2, "home".to_owned()))
        );
        assert_eq!(tag_at(&split("#"), 0), None);
    }
}
