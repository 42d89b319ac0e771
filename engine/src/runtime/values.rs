//! Field values at the runtime's edges: JSON in and out (the API's and the database's form),
//! and rhai values for rules.
//!
//! JSON forms: text is a string, int a number, bool a boolean, an enum value its name, a
//! duration a string such as `"1d4h"`, a datetime an RFC 3339 string (stored in UTC).

use chrono::{DateTime, Utc};
use rhai::Dynamic;
use serde_json::Value as Json;

use crate::model::{Field, FieldType, Value};

/// Why one field's value was refused.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

fn duration_text(days: u64, secs: u64) -> String {
    let d = itsmflow_dsl::ast::Duration {
        weeks: 0,
        days,
        hours: secs / 3600,
        minutes: secs % 3600 / 60,
        seconds: secs % 60,
    };
    d.to_string()
}

/// A field's value as JSON.
pub fn to_json(field: &Field, value: &Value) -> Json {
    match (value, &field.ty) {
        (Value::Text(s), _) => Json::String(s.to_string()),
        (Value::Int(n), _) => Json::from(*n),
        (Value::Bool(b), _) => Json::Bool(*b),
        (Value::Enum(i), FieldType::Enum(values)) => values
            .get(*i as usize)
            .map(|v| Json::String(v.clone()))
            .unwrap_or(Json::Null),
        (Value::Enum(i), _) => Json::from(*i),
        (Value::Duration(d, s), _) => Json::String(duration_text(*d, *s)),
        (Value::DateTime(t), _) => DateTime::<Utc>::from_timestamp(*t, 0)
            .map(|t| Json::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
            .unwrap_or(Json::Null),
    }
}

/// A JSON value for a field, typed and validated; `Ok(None)` for `null` (unset).
pub fn from_json(field: &Field, json: &Json) -> Result<Option<Value>, FieldError> {
    let name = field.name.as_str();
    if json.is_null() {
        return Ok(None);
    }
    let value = match &field.ty {
        FieldType::Text => match json {
            Json::String(s) => Value::Text(s.as_str().into()),
            _ => return Err(FieldError::new(name, "expected text (a JSON string)")),
        },
        // Whether the user exists is the engine's to check, against its directory.
        FieldType::Person => match json {
            Json::String(s) if !s.trim().is_empty() => Value::Text(s.trim().into()),
            _ => {
                return Err(FieldError::new(
                    name,
                    "expected a user name (a JSON string)",
                ))
            }
        },
        FieldType::Int => match json.as_i64() {
            Some(n) => Value::Int(n),
            None => return Err(FieldError::new(name, "expected a whole number")),
        },
        FieldType::Bool => match json {
            Json::Bool(b) => Value::Bool(*b),
            _ => return Err(FieldError::new(name, "expected true or false")),
        },
        FieldType::Enum(values) => {
            let position = match json {
                Json::String(s) => values.iter().position(|v| v == s),
                Json::Number(n) => {
                    let text = n.to_string();
                    values.iter().position(|v| *v == text)
                }
                _ => values.iter().position(String::is_empty),
            };
            match position {
                Some(i) => Value::Enum(i as u32),
                None => {
                    return Err(FieldError::new(
                        name,
                        format!("expected one of: {}", values.join(", ")),
                    ))
                }
            }
        }
        FieldType::Duration => {
            let parsed = json
                .as_str()
                .and_then(|s| itsmflow_dsl::parse_duration(s).filter(|_| is_duration_text(s)))
                .and_then(|d| d.days_and_seconds());
            match parsed {
                Some((d, s)) => Value::Duration(d, s),
                None => {
                    return Err(FieldError::new(
                        name,
                        "expected a duration such as \"4h\" or \"2d\"",
                    ))
                }
            }
        }
        FieldType::DateTime => {
            let parsed = json
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
            match parsed {
                Some(t) => Value::DateTime(t.timestamp()),
                None => {
                    return Err(FieldError::new(
                        name,
                        "expected an RFC 3339 date and time such as \"2026-12-01T09:00:00Z\"",
                    ))
                }
            }
        }
    };
    Ok(Some(value))
}

fn is_duration_text(s: &str) -> bool {
    !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_digit() || "wdhms".contains(c))
        && s.chars().last().is_some_and(|c| "wdhms".contains(c))
}

/// A field's value as rhai sees it: enum values as their names, durations as seconds (a day
/// counting 24 hours), datetimes as Unix seconds; unset is `()`.
pub fn to_dynamic(field: &Field, value: Option<&Value>) -> Dynamic {
    match (value, &field.ty) {
        (None, _) => Dynamic::UNIT,
        (Some(Value::Text(s)), _) => Dynamic::from(s.to_string()),
        (Some(Value::Int(n)), _) => Dynamic::from(*n),
        (Some(Value::Bool(b)), _) => Dynamic::from(*b),
        (Some(Value::Enum(i)), FieldType::Enum(values)) => values
            .get(*i as usize)
            .map(|v| Dynamic::from(v.clone()))
            .unwrap_or(Dynamic::UNIT),
        (Some(Value::Enum(i)), _) => Dynamic::from(i64::from(*i)),
        (Some(Value::Duration(d, s)), _) => {
            Dynamic::from((*d as i64).saturating_mul(86_400).saturating_add(*s as i64))
        }
        (Some(Value::DateTime(t)), _) => Dynamic::from(*t),
    }
}

/// A rule's result stored into a field; `None` if it does not fit the field's type.
pub fn from_dynamic(field: &Field, value: &Dynamic) -> Option<Option<Value>> {
    if value.is_unit() {
        return Some(None);
    }
    let v = match &field.ty {
        FieldType::Text | FieldType::Person => {
            Value::Text(value.clone().into_string().ok()?.into())
        }
        FieldType::Int => Value::Int(value.as_int().ok()?),
        FieldType::Bool => Value::Bool(value.as_bool().ok()?),
        FieldType::Enum(values) => {
            let s = value.clone().into_string().ok()?;
            Value::Enum(values.iter().position(|v| *v == s)? as u32)
        }
        FieldType::Duration => {
            let secs = u64::try_from(value.as_int().ok()?).ok()?;
            Value::Duration(0, secs)
        }
        FieldType::DateTime => Value::DateTime(value.as_int().ok()?),
    };
    Some(Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(ty: FieldType) -> Field {
        Field {
            name: "f".into(),
            ty,
            required: false,
            default: None,
        }
    }

    #[test]
    fn json_round_trips_every_type() {
        let cases = [
            (FieldType::Text, json!("hello")),
            (FieldType::Int, json!(42)),
            (FieldType::Bool, json!(true)),
            (
                FieldType::Enum(vec!["high".into(), "low".into()]),
                json!("low"),
            ),
            (FieldType::Duration, json!("1d4h")),
            (FieldType::DateTime, json!("2026-12-01T09:00:00Z")),
        ];
        for (ty, j) in cases {
            let f = field(ty);
            let v = from_json(&f, &j).expect("valid").expect("set");
            assert_eq!(to_json(&f, &v), j);
        }
    }

    #[test]
    fn bad_json_names_the_field() {
        let f = field(FieldType::Enum(vec!["high".into()]));
        let e = from_json(&f, &json!("urgent")).expect_err("invalid");
        assert_eq!(e.field, "f");
        assert!(e.message.contains("high"));
        assert!(from_json(&field(FieldType::Duration), &json!("4 hours")).is_err());
        assert!(from_json(&field(FieldType::Int), &json!(1.5)).is_err());
    }
}
