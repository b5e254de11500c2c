//! Typed reads of JSON fields that collect every failure with the reference framework's wording.

use serde_json::{Map, Value, json};

use crate::error::{FieldError, Loc};

/// Collects field errors while an input object is read.
pub(crate) struct FieldReader<'a> {
    object: &'a Map<String, Value>,
    pub errors: Vec<FieldError>,
}

/// What a present key held: a value, or an explicit JSON `null`.
pub(crate) enum Present<T> {
    Value(T),
    Null,
}

fn loc(name: &str) -> Vec<Loc> {
    vec![Loc::from(name)]
}

impl<'a> FieldReader<'a> {
    pub fn new(object: &'a Map<String, Value>) -> Self {
        Self {
            object,
            errors: Vec::new(),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.object.contains_key(name)
    }

    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.object.get(name)
    }

    pub fn missing(&mut self, name: &str) {
        self.errors.push(FieldError::new(
            "missing",
            loc(name),
            "Field required",
            Value::Object(self.object.clone()),
        ));
    }

    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    /// Reads a key; `None` when absent, `Some(Null)` for an explicit null.
    fn raw(&self, name: &str) -> Option<Present<&'a Value>> {
        self.object.get(name).map(|value| match value {
            Value::Null => Present::Null,
            other => Present::Value(other),
        })
    }

    /// A string whose trimmed length (in characters) must lie in `min..=max`.
    pub fn string(&mut self, name: &str, min: usize, max: usize) -> Option<Present<String>> {
        match self.raw(name)? {
            Present::Null => Some(Present::Null),
            Present::Value(Value::String(text)) => {
                let trimmed = text.trim();
                let length = trimmed.chars().count();
                if length < min {
                    let unit = if min == 1 { "character" } else { "characters" };
                    self.errors.push(
                        FieldError::new(
                            "string_too_short",
                            loc(name),
                            format!("String should have at least {min} {unit}"),
                            Value::String(text.clone()),
                        )
                        .with_ctx(json!({ "min_length": min })),
                    );
                    None
                } else if length > max {
                    self.errors.push(
                        FieldError::new(
                            "string_too_long",
                            loc(name),
                            format!("String should have at most {max} characters"),
                            Value::String(text.clone()),
                        )
                        .with_ctx(json!({ "max_length": max })),
                    );
                    None
                } else if trimmed.contains('\0') {
                    // PostgreSQL cannot store NUL in text; refuse it in every store alike.
                    self.errors.push(FieldError::value_error(
                        loc(name),
                        "Text must not contain NUL characters",
                        Value::String(text.clone()),
                    ));
                    None
                } else {
                    Some(Present::Value(trimmed.to_owned()))
                }
            }
            Present::Value(other) => {
                self.type_error(name, "string_type", "Input should be a valid string", other);
                None
            }
        }
    }

    /// One of a fixed set of string values.
    pub fn choice<T>(
        &mut self,
        name: &str,
        options: &[&str],
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<Present<T>> {
        match self.raw(name)? {
            Present::Null => Some(Present::Null),
            Present::Value(value) => {
                let parsed = value.as_str().and_then(&parse);
                if parsed.is_none() {
                    self.errors
                        .push(enum_error(loc(name), options, value.clone()));
                }
                parsed.map(Present::Value)
            }
        }
    }

    /// A boolean, accepting the reference's lax spellings.
    pub fn boolean(&mut self, name: &str) -> Option<Present<bool>> {
        match self.raw(name)? {
            Present::Null => Some(Present::Null),
            Present::Value(value) => {
                let parsed = match value {
                    Value::Bool(flag) => Some(*flag),
                    Value::Number(n) if n.as_i64() == Some(0) => Some(false),
                    Value::Number(n) if n.as_i64() == Some(1) => Some(true),
                    Value::String(text) => parse_bool(text),
                    _ => None,
                };
                if parsed.is_none() {
                    self.type_error(name, "bool_type", "Input should be a valid boolean", value);
                }
                parsed.map(Present::Value)
            }
        }
    }

    /// An integer within `min..=max`.
    pub fn integer_in(&mut self, name: &str, min: i64, max: i64) -> Option<Present<i64>> {
        match self.raw(name)? {
            Present::Null => Some(Present::Null),
            Present::Value(value) => {
                let parsed = match value {
                    Value::Number(n) => n.as_i64().or_else(|| {
                        n.as_f64()
                            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                            .map(|f| f as i64)
                    }),
                    Value::String(text) => text.trim().parse::<i64>().ok(),
                    _ => None,
                };
                match parsed {
                    None => {
                        self.type_error(name, "int_type", "Input should be a valid integer", value);
                        None
                    }
                    Some(n) if n < min => {
                        self.errors.push(
                            FieldError::new(
                                "greater_than_equal",
                                loc(name),
                                format!("Input should be greater than or equal to {min}"),
                                value.clone(),
                            )
                            .with_ctx(json!({ "ge": min })),
                        );
                        None
                    }
                    Some(n) if n > max => {
                        self.errors.push(
                            FieldError::new(
                                "less_than_equal",
                                loc(name),
                                format!("Input should be less than or equal to {max}"),
                                value.clone(),
                            )
                            .with_ctx(json!({ "le": max })),
                        );
                        None
                    }
                    Some(n) => Some(Present::Value(n)),
                }
            }
        }
    }

    /// An RFC 3339 datetime (see [`crate::time::parse_datetime`]).
    pub fn datetime(&mut self, name: &str) -> Option<Present<chrono::DateTime<chrono::Utc>>> {
        match self.raw(name)? {
            Present::Null => Some(Present::Null),
            Present::Value(value) => {
                let parsed = value
                    .as_str()
                    .and_then(crate::time::parse_datetime)
                    .filter(crate::time::in_supported_range);
                if parsed.is_none() {
                    self.errors.push(FieldError::new(
                        "datetime_parsing",
                        loc(name),
                        "Input should be a valid datetime (RFC 3339, e.g. 2026-01-20T18:00:00Z) between the years 1000 and 9999",
                        value.clone(),
                    ));
                }
                parsed.map(Present::Value)
            }
        }
    }

    /// A UUID written as a string (any of the forms `uuid` parses).
    pub fn uuid(&mut self, name: &str) -> Option<Present<uuid::Uuid>> {
        match self.raw(name)? {
            Present::Null => Some(Present::Null),
            Present::Value(Value::String(text)) => match uuid::Uuid::parse_str(text.trim()) {
                Ok(id) => Some(Present::Value(id)),
                Err(error) => {
                    self.errors.push(FieldError::new(
                        "uuid_parsing",
                        loc(name),
                        format!("Input should be a valid UUID, {error}"),
                        Value::String(text.clone()),
                    ));
                    None
                }
            },
            Present::Value(other) => {
                self.type_error(name, "uuid_type", "UUID input should be a string", other);
                None
            }
        }
    }

    /// A list of strings of at most `max_items` entries, each checked by `check`.
    pub fn string_list(
        &mut self,
        name: &str,
        max_items: usize,
        check: impl Fn(&str) -> Result<String, &'static str>,
    ) -> Option<Present<Vec<String>>> {
        match self.raw(name)? {
            Present::Null => Some(Present::Null),
            Present::Value(Value::Array(items)) => {
                if items.len() > max_items {
                    self.errors.push(
                        FieldError::new(
                            "too_long",
                            loc(name),
                            format!(
                                "List should have at most {max_items} items after validation, not {}",
                                items.len()
                            ),
                            Value::Array(items.clone()),
                        )
                        .with_ctx(json!({ "field_type": "List", "max_length": max_items, "actual_length": items.len() })),
                    );
                    return None;
                }
                let before = self.errors.len();
                let mut out = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    let item_loc = vec![Loc::from(name), Loc::Index(index)];
                    match item.as_str() {
                        None => self.errors.push(FieldError::new(
                            "string_type",
                            item_loc,
                            "Input should be a valid string",
                            item.clone(),
                        )),
                        Some(text) => match check(text) {
                            Ok(clean) => out.push(clean),
                            Err(message) => self.errors.push(FieldError::value_error(
                                item_loc,
                                message,
                                item.clone(),
                            )),
                        },
                    }
                }
                (self.errors.len() == before).then_some(Present::Value(out))
            }
            Present::Value(other) => {
                self.type_error(name, "list_type", "Input should be a valid list", other);
                None
            }
        }
    }

    fn type_error(&mut self, name: &str, kind: &'static str, msg: &str, value: &Value) {
        self.errors
            .push(FieldError::new(kind, loc(name), msg, value.clone()));
    }
}

/// The reference framework's error for a value outside an enumeration.
pub(crate) fn enum_error(loc: Vec<Loc>, options: &[&str], input: Value) -> FieldError {
    let expected = expected_list(options);
    FieldError::new("enum", loc, format!("Input should be {expected}"), input)
        .with_ctx(json!({ "expected": expected }))
}

fn expected_list(options: &[&str]) -> String {
    let quoted: Vec<String> = options.iter().map(|o| format!("'{o}'")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// The boolean spellings the reference accepted in JSON strings and query parameters.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
        _ => None,
    }
}
