//! The project bodies, validated like task bodies (422 with the field's location).

use serde_json::Value;

use super::NAME_MAX;
use crate::error::{FieldError, Loc, ValidationErrors};

/// Trims a project name and checks it: 1–100 characters, no NUL. The message suits any door
/// (the assistant, the CLI, a form).
pub fn normalise_name(name: &str) -> Result<String, String> {
    let clean = name.trim();
    let length = clean.chars().count();
    if length == 0 {
        Err("A project name must not be empty".to_owned())
    } else if length > NAME_MAX {
        Err(format!("A project name has at most {NAME_MAX} characters"))
    } else if clean.contains('\0') {
        Err("Text must not contain NUL characters".to_owned())
    } else {
        Ok(clean.to_owned())
    }
}

/// Validates `{"name": "..."}`, the body of creating and renaming a project. Locations are
/// relative to the body.
pub fn parse_project_body(body: &Value) -> Result<String, ValidationErrors> {
    let Some(object) = body.as_object() else {
        return Err(ValidationErrors(vec![FieldError::new(
            "model_attributes_type",
            Vec::new(),
            "Input should be a valid dictionary or object to extract fields from",
            body.clone(),
        )]));
    };
    let loc = vec![Loc::from("name")];
    let error = match object.get("name") {
        None => FieldError::new("missing", loc, "Field required", body.clone()),
        Some(Value::String(text)) => {
            let length = text.trim().chars().count();
            if length == 0 {
                FieldError::new(
                    "string_too_short",
                    loc,
                    "String should have at least 1 character",
                    Value::String(text.clone()),
                )
                .with_ctx(serde_json::json!({ "min_length": 1 }))
            } else if length > NAME_MAX {
                FieldError::new(
                    "string_too_long",
                    loc,
                    format!("String should have at most {NAME_MAX} characters"),
                    Value::String(text.clone()),
                )
                .with_ctx(serde_json::json!({ "max_length": NAME_MAX }))
            } else {
                match normalise_name(text) {
                    Ok(name) => return Ok(name),
                    Err(message) => {
                        FieldError::value_error(loc, &message, Value::String(text.clone()))
                    }
                }
            }
        }
        Some(other) => FieldError::new(
            "string_type",
            loc,
            "Input should be a valid string",
            other.clone(),
        ),
    };
    Err(ValidationErrors(vec![error]))
}

/// Validates `{"project_id": "<uuid>" | null}`, the body of moving a task (`null`: out of any
/// project). The key is required, so an empty body cannot move a task by accident.
pub fn parse_move_body(body: &Value) -> Result<Option<uuid::Uuid>, ValidationErrors> {
    let Some(object) = body.as_object() else {
        return Err(ValidationErrors(vec![FieldError::new(
            "model_attributes_type",
            Vec::new(),
            "Input should be a valid dictionary or object to extract fields from",
            body.clone(),
        )]));
    };
    let loc = vec![Loc::from("project_id")];
    let error = match object.get("project_id") {
        None => FieldError::new("missing", loc, "Field required", body.clone()),
        Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => match uuid::Uuid::parse_str(text.trim()) {
            Ok(id) => return Ok(Some(id)),
            Err(error) => FieldError::new(
                "uuid_parsing",
                loc,
                format!("Input should be a valid UUID, {error}"),
                Value::String(text.clone()),
            ),
        },
        Some(other) => FieldError::new(
            "uuid_type",
            loc,
            "UUID input should be a string",
            other.clone(),
        ),
    };
    Err(ValidationErrors(vec![error]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind(body: Value) -> &'static str {
        parse_project_body(&body).expect_err("invalid").0[0].kind
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            parse_project_body(&json!({"name": "  Groceries "})).expect("valid"),
            "Groceries"
        );
        assert_eq!(kind(json!({})), "missing");
        assert_eq!(kind(json!({"name": "   "})), "string_too_short");
        assert_eq!(
            kind(json!({"name": "x".repeat(NAME_MAX + 1)})),
            "string_too_long"
        );
        assert_eq!(kind(json!({"name": 5})), "string_type");
        assert_eq!(kind(json!({"name": null})), "string_type");
        assert_eq!(kind(json!({"name": "a\u{0}b"})), "value_error");
        assert_eq!(kind(json!(["name"])), "model_attributes_type");
        assert!(parse_project_body(&json!({"name": "é".repeat(NAME_MAX)})).is_ok());
    }

    #[test]
    fn a_move_names_a_uuid_or_null() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            parse_move_body(&json!({"project_id": id})).expect("valid"),
            Some(id)
        );
        assert_eq!(
            parse_move_body(&json!({"project_id": null})).expect("valid"),
            None
        );
        let kind = |body: Value| parse_move_body(&body).expect_err("invalid").0[0].kind;
        assert_eq!(kind(json!({})), "missing");
        assert_eq!(kind(json!({"project_id": "groceries"})), "uuid_parsing");
        assert_eq!(kind(json!({"project_id": 7})), "uuid_type");
    }
}
