//! Splitting a message into words: each keeps the user's own spelling (so a task title keeps its
//! casing and inner punctuation) next to a normalised form the grammars match against.

/// One word of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// As typed, including punctuation around it ("Tomorrow," or "Fix").
    pub raw: String,
    /// Lower-cased, curly quotes straightened, surrounding punctuation removed; a leading `#`
    /// (tag) or `!` (priority mark) is kept because it carries meaning.
    pub norm: String,
}

/// Characters that may wrap a word without being part of it.
const LEADING: &[char] = &['"', '\'', '(', '[', '{', '“', '‘', '«', '*', '_'];
const TRAILING: &[char] = &[
    '.', ',', ';', ':', '!', '?', '"', '\'', ')', ']', '}', '”', '’', '»', '*', '_', '…',
];

/// Splits on whitespace; never fails (an empty message gives no words).
pub fn split(text: &str) -> Vec<Word> {
    text.split_whitespace()
        .map(|raw| Word {
            raw: raw.to_owned(),
            norm: normalise(raw),
        })
        .collect()
}

fn normalise(raw: &str) -> String {
    let lower = raw.to_lowercase().replace(['’', '‘'], "'");
    let trimmed = lower.trim_start_matches(LEADING);
    // "!high", "!!" and "#work" keep their marks; other trailing punctuation goes.
    if trimmed.starts_with('!') {
        let body = trimmed.trim_start_matches('!');
        let marks = trimmed.len() - body.len();
        let body = body.trim_end_matches(TRAILING);
        if body.is_empty() {
            return "!".repeat(marks);
        }
        return format!("!{body}");
    }
    trimmed.trim_end_matches(TRAILING).to_owned()
}

/// Whether the message reads as a question (ends with `?`).
pub fn is_question(text: &str) -> bool {
    text.trim_end().ends_with('?')
}

/// Joins the user's spelling of `words`, then trims punctuation and connecting words left
/// dangling at either end once the recognised phrases were taken out ("buy milk and" → "buy
/// milk").
pub fn clean_phrase(words: &[&Word]) -> String {
    let mut start = 0;
    let mut end = words.len();
    while start < end && is_dangling_start(&words[start].norm) {
        start += 1;
    }
    while end > start && is_dangling_end(&words[end - 1].norm) {
        end -= 1;
    }
    let joined = words[start..end]
        .iter()
        .map(|word| word.raw.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let trimmed = joined.trim_matches(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                ',' | ';' | ':' | '.' | '!' | '?' | '-' | '–' | '—' | '"' | '“' | '”'
            )
    });
    // 'Pay rent' in single quotes: the quotes go, an apostrophe at one end stays.
    match trimmed
        .strip_prefix('\'')
        .and_then(|rest| rest.strip_suffix('\''))
    {
        Some(inner) if !inner.is_empty() => inner.trim().to_owned(),
        _ => trimmed.to_owned(),
    }
}

fn is_dangling_start(norm: &str) -> bool {
    norm.is_empty()
        || matches!(
            norm,
            "to" | "and" | "that" | "about" | "then" | "-" | "–" | "—" | "please" | "pls"
        )
}

fn is_dangling_end(norm: &str) -> bool {
    norm.is_empty()
        || matches!(
            norm,
            "and"
                | "with"
                | "to"
                | "on"
                | "at"
                | "by"
                | "for"
                | "due"
                | "please"
                | "pls"
                | "then"
                | "-"
                | "–"
                | "—"
                | "starting"
                | "from"
                | "a"
                | "as"
        )
}

/// A new title as typed: quotes around it go, trailing punctuation goes.
pub fn clean_quoted(words: &[&Word]) -> String {
    let raw = words
        .iter()
        .map(|word| word.raw.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    raw.trim_matches(|c: char| {
        c.is_whitespace() || matches!(c, '"' | '“' | '”' | '‘' | '’' | '.' | ',' | '!' | '?' | ';')
    })
    .trim_matches('\'')
    .trim()
    .to_owned()
}

/// A small number written as digits or a word ("3", "three", "a"), for "in 3 days".
pub fn number(norm: &str) -> Option<u32> {
    if let Ok(n) = norm.parse::<u32>() {
        return Some(n);
    }
    let n = match norm {
        "a" | "an" | "one" => 1,
        "two" | "couple" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        "fifteen" => 15,
        "twenty" => 20,
        "thirty" => 30,
        "forty-five" => 45,
        _ => return None,
    };
    Some(n)
}

/// An ordinal ("1st", "first", "23rd") as a number.
pub fn ordinal(norm: &str) -> Option<u32> {
    let words = [
        "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
        "tenth", "eleventh", "twelfth",
    ];
    if let Some(index) = words.iter().position(|word| *word == norm) {
        return u32::try_from(index + 1).ok();
    }
    let digits = norm
        .strip_suffix("st")
        .or_else(|| norm.strip_suffix("nd"))
        .or_else(|| norm.strip_suffix("rd"))
        .or_else(|| norm.strip_suffix("th"))?;
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_spelling_and_normalise() {
        let words = split("Urgent: Fix the server's config, tomorrow! #Work !HIGH !!");
        let norms: Vec<&str> = words.iter().map(|w| w.norm.as_str()).collect();
        assert_eq!(
            norms,
            [
                "urgent", "fix", "the", "server's", "config", "tomorrow", "#work", "!high", "!!"
            ]
        );
        assert_eq!(words[1].raw, "Fix");
    }

    #[test]
    fn phrases_lose_dangling_ends() {
        let words = split("to buy milk, and");
        let refs: Vec<&Word> = words.iter().collect();
        assert_eq!(clean_phrase(&refs), "buy milk");
    }

    #[test]
    fn numbers_and_ordinals() {
        assert_eq!(number("three"), Some(3));
        assert_eq!(number("an"), Some(1));
        assert_eq!(number("x"), None);
        assert_eq!(ordinal("23rd"), Some(23));
        assert_eq!(ordinal("second"), Some(2));
        assert_eq!(ordinal("23"), None);
    }
}
