//! The iCalendar (RFC 5545) text format, both ways: content lines folded at 75 octets, TEXT
//! values escaped, parameters; components nested by BEGIN/END. What the properties mean is
//! [`super::ical`]'s business.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;

/// One property: `NAME;PARAM=VALUE:value`, with the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub name: String,
    pub params: Vec<(String, String)>,
    pub value: String,
    pub line: usize,
}

impl Property {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A component (`VCALENDAR`, `VTODO`, `VALARM`, ...) with its properties and children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Component {
    pub name: String,
    pub line: usize,
    pub properties: Vec<Property>,
    pub children: Vec<Component>,
}

impl Component {
    pub fn first(&self, name: &str) -> Option<&Property> {
        self.properties
            .iter()
            .find(|property| property.name == name)
    }

    pub fn all<'c>(&'c self, name: &'c str) -> impl Iterator<Item = &'c Property> + 'c {
        self.properties
            .iter()
            .filter(move |property| property.name == name)
    }
}

/// Why a calendar could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct IcsError {
    pub line: usize,
    pub message: String,
}

fn error(line: usize, message: impl Into<String>) -> IcsError {
    IcsError {
        line,
        message: message.into(),
    }
}

/// Unfolds and parses `text` into its top-level components.
pub fn read(text: &str) -> Result<Vec<Component>, IcsError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Unfold: a line starting with a space or tab continues the previous one.
    let mut lines: Vec<(usize, String)> = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match (raw.strip_prefix([' ', '\t']), lines.last_mut()) {
            (Some(rest), Some((_, last))) => last.push_str(rest),
            _ if raw.trim().is_empty() => {}
            _ => lines.push((index + 1, raw.to_owned())),
        }
    }
    let mut stack: Vec<Component> = Vec::new();
    let mut done = Vec::new();
    for (line, text) in lines {
        let property = parse_line(line, &text)?;
        match property.name.as_str() {
            "BEGIN" => stack.push(Component {
                name: property.value.trim().to_ascii_uppercase(),
                line,
                ..Component::default()
            }),
            "END" => {
                let name = property.value.trim().to_ascii_uppercase();
                let component = stack
                    .pop()
                    .filter(|open| open.name == name)
                    .ok_or_else(|| error(line, format!("END:{name} without its BEGIN")))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(component),
                    None => done.push(component),
                }
            }
            _ => match stack.last_mut() {
                Some(open) => open.properties.push(property),
                None => return Err(error(line, "a property outside BEGIN:VCALENDAR")),
            },
        }
    }
    if let Some(open) = stack.pop() {
        return Err(error(
            open.line,
            format!("BEGIN:{} is never ended", open.name),
        ));
    }
    Ok(done)
}

fn parse_line(line: usize, text: &str) -> Result<Property, IcsError> {
    // The name and parameters end at the first colon outside a quoted parameter value.
    let mut quoted = false;
    let mut split = None;
    for (index, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ':' if !quoted => {
                split = Some(index);
                break;
            }
            _ => {}
        }
    }
    let split = split.ok_or_else(|| error(line, format!("not a content line: {text:?}")))?;
    let (head, value) = (&text[..split], &text[split + 1..]);
    let mut parts = head.split(';');
    let name = parts.next().unwrap_or("").trim().to_ascii_uppercase();
    if name.is_empty() {
        return Err(error(line, "a content line without a name"));
    }
    let params = parts
        .filter_map(|part| part.split_once('='))
        .map(|(key, value)| {
            (
                key.trim().to_ascii_uppercase(),
                value.trim().trim_matches('"').to_owned(),
            )
        })
        .collect();
    Ok(Property {
        name,
        params,
        value: value.to_owned(),
        line,
    })
}

/// A TEXT value as written: `\\`, `\;`, `\,` and `\n` undone.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n' | 'N') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A TEXT value escaped for writing.
pub fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace("\r\n", "\\n")
        .replace(['\n', '\r'], "\\n")
}

/// One content line, folded at 75 octets (never inside a character), ending in CRLF.
pub fn content_line(name: &str, value: &str) -> String {
    let full = format!("{name}:{value}");
    let mut out = String::with_capacity(full.len() + full.len() / 70 * 3 + 2);
    let mut width = 0;
    for c in full.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
    out
}

/// `20300131T090000Z`.
pub fn utc_stamp(instant: DateTime<Utc>) -> String {
    instant.format("%Y%m%dT%H%M%SZ").to_string()
}

/// A DATE-TIME or DATE value: UTC (`…Z`), in its `TZID` (or `zone` when the TZID is unknown or
/// missing: a floating time), or a date alone, taken at `date_time` local time in that zone.
pub fn instant(
    property: &Property,
    zone: Tz,
    date_time: NaiveTime,
) -> Result<DateTime<Utc>, String> {
    let value = property.value.trim();
    let zone = property
        .param("TZID")
        .and_then(crate::recurrence::parse_zone)
        .unwrap_or(zone);
    if let Some(utc) = value.strip_suffix('Z') {
        return NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S")
            .map(|naive| naive.and_utc())
            .map_err(|_| format!("{} {value:?} is not a date-time", property.name));
    }
    let naive = match NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S") {
        Ok(naive) => naive,
        Err(_) => NaiveDate::parse_from_str(value, "%Y%m%d")
            .map(|date| date.and_time(date_time))
            .map_err(|_| format!("{} {value:?} is not a date or date-time", property.name))?,
    };
    crate::recurrence::from_wall_clock(zone, naive).ok_or_else(|| {
        format!(
            "{} {value:?} does not exist in {}",
            property.name,
            zone.name()
        )
    })
}

/// A DURATION such as `-PT15M`, `-P1D`, `-P1DT2H`, `PT0S`, in signed minutes (rounded down).
pub fn duration_minutes(value: &str) -> Option<i64> {
    let value = value.trim();
    let (sign, rest) = match value.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, value.strip_prefix('+').unwrap_or(value)),
    };
    let rest = rest.strip_prefix('P')?;
    let (days_part, time_part) = match rest.split_once('T') {
        Some((days, time)) => (days, time),
        None => (rest, ""),
    };
    let mut seconds: i64 = 0;
    let mut number = String::new();
    for (part, units) in [
        (days_part, [('W', 604_800), ('D', 86_400)]),
        (time_part, [('H', 3_600), ('M', 60)]),
    ] {
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let unit = match (c, units) {
                ('S', _) if part == time_part => 1,
                (c, units) => units.iter().find(|(u, _)| *u == c)?.1,
            };
            let n: i64 = number.parse().ok()?;
            seconds = seconds.checked_add(n.checked_mul(unit)?)?;
            number.clear();
        }
        if !number.is_empty() {
            return None;
        }
    }
    Some(sign * seconds / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_fold_unfold_and_escape() {
        let text = "Call mum; then, the bank\\back\nand more ".repeat(4);
        let line = content_line("SUMMARY", &escape(&text));
        assert!(line.split("\r\n").all(|part| part.len() <= 75), "{line}");
        let calendar =
            format!("BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\n{line}END:VTODO\r\nEND:VCALENDAR\r\n");
        let parsed = read(&calendar).unwrap_or_default();
        let todo = &parsed[0].children[0];
        assert_eq!(
            unescape(
                &todo
                    .first("SUMMARY")
                    .map(|p| p.value.clone())
                    .unwrap_or_default()
            ),
            text
        );
        // Multi-byte characters are never split by a fold.
        let line = content_line("SUMMARY", &"é".repeat(100));
        assert!(
            line.split("\r\n ")
                .all(|part| std::str::from_utf8(part.as_bytes()).is_ok())
        );
    }

    #[test]
    fn parameters_times_and_durations() {
        let calendar = "BEGIN:VCALENDAR\nBEGIN:VTODO\nDUE;TZID=\"Europe/Berlin\":20300131T090000\nDTSTART;VALUE=DATE:20300131\nEND:VTODO\nEND:VCALENDAR\n";
        let parsed = read(calendar).unwrap_or_default();
        let todo = &parsed[0].children[0];
        let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default();
        let due = todo.first("DUE").map(|p| instant(p, Tz::UTC, nine));
        assert_eq!(
            due.and_then(Result::ok).map(utc_stamp).as_deref(),
            Some("20300131T080000Z")
        );
        let start = todo.first("DTSTART").map(|p| instant(p, Tz::UTC, nine));
        assert_eq!(
            start.and_then(Result::ok).map(utc_stamp).as_deref(),
            Some("20300131T090000Z")
        );
        assert_eq!(duration_minutes("-PT15M"), Some(-15));
        assert_eq!(duration_minutes("-P1DT2H"), Some(-1560));
        assert_eq!(duration_minutes("-P1W"), Some(-10080));
        assert_eq!(duration_minutes("PT0S"), Some(0));
        assert_eq!(duration_minutes("15M"), None);
        assert!(read("BEGIN:VCALENDAR\nBEGIN:VTODO\nEND:VCALENDAR\n").is_err());
        assert_eq!(
            read("BEGIN:VCALENDAR\nno colon here\n")
                .err()
                .map(|e| e.line),
            Some(2)
        );
    }
}
