//! RFC 4180 CSV, both ways: fields quoted when they hold a comma, a quote or a line break; a
//! record may span lines, and each keeps the line it starts on for error messages.

/// One record and the (1-based) line of the file it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: usize,
    pub fields: Vec<String>,
}

/// Why a CSV file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CsvError {
    pub line: usize,
    pub message: String,
}

/// Splits `text` into records. A byte-order mark is skipped; `\r\n` and `\n` both end a line;
/// blank lines are skipped.
pub fn read(text: &str) -> Result<Vec<Row>, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut line = 1;
    let mut start = 1;
    let mut chars = text.chars().peekable();
    let mut finish = |fields: &mut Vec<String>, field: &mut String, start: usize| {
        fields.push(std::mem::take(field));
        let record = std::mem::take(fields);
        if !(record.len() == 1 && record[0].is_empty()) {
            rows.push(Row {
                line: start,
                fields: record,
            });
        }
    };
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                other => field.push(other),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            '"' => {
                return Err(CsvError {
                    line,
                    message:
                        "a quote inside an unquoted field (quote the field and double the quote)"
                            .to_owned(),
                });
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                finish(&mut fields, &mut field, start);
                was_quoted = false;
                line += 1;
                start = line;
            }
            other => {
                if was_quoted {
                    return Err(CsvError {
                        line,
                        message: "text after a closing quote".to_owned(),
                    });
                }
                field.push(other);
            }
        }
    }
    if quoted {
        return Err(CsvError {
            line: start,
            message: "a quoted field is never closed".to_owned(),
        });
    }
    if !field.is_empty() || !fields.is_empty() || was_quoted {
        finish(&mut fields, &mut field, start);
    }
    Ok(rows)
}

/// One field as CSV: quoted when it must be.
pub fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) || text.starts_with(' ') || text.ends_with(' ') {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// One record as a CSV line ending in `\r\n`, as RFC 4180 writes it.
pub fn line<S: AsRef<str>>(fields: &[S]) -> String {
    let mut out = fields
        .iter()
        .map(|text| field(text.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    out
}

/// The columns of a header row, matched by name whatever their case and surrounding space.
pub struct Header {
    names: Vec<String>,
}

impl Header {
    pub fn new(row: &Row) -> Self {
        Header {
            names: row
                .fields
                .iter()
                .map(|name| name.trim().to_ascii_lowercase())
                .collect(),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.names.iter().any(|column| column == name)
    }

    /// The value of column `name` in `row`, trimmed; "" when the column or the cell is missing.
    pub fn get<'r>(&self, row: &'r Row, name: &str) -> &'r str {
        self.names
            .iter()
            .position(|column| column == name)
            .and_then(|index| row.fields.get(index))
            .map(|value| value.trim())
            .unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let fields = ["plain", "a, b", "say \"hi\"", "two\nlines", "", " padded "];
        let text = format!("{}{}", line(&fields), line(&["x", "y", "", "", "", ""]));
        let rows = read(&text).unwrap_or_default();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].fields, fields);
        assert_eq!(rows[0].line, 1);
        assert_eq!(rows[1].line, 3, "the quoted line break counts");
    }

    #[test]
    fn malformed_files_name_the_line() {
        assert_eq!(
            read("a,b\nc,\"open\n").err().map(|e| e.line),
            Some(2),
            "an unclosed quote"
        );
        assert_eq!(read("a,b\nc,d\"e\n").err().map(|e| e.line), Some(2));
        assert_eq!(read("\"a\"b\n").err().map(|e| e.line), Some(1));
        let rows = read("\u{feff}a,b\r\n\r\nc,d").unwrap_or_default();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].line, 3);
        assert_eq!(rows[1].fields, ["c", "d"]);
    }
}
