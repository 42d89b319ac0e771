//! Field values at the runtime's edges: JSON in and out (the API's and the database's form),
//! and rhai values for rules.
//!
//! JSON forms: text is a string, int a number, bool a boolean, an enum value its name, a
//! duration a string such as `"1d4h"`, a datetime an RFC 3339 string (stored in UTC), a list
//! an array of its elements' forms.

use chrono::{DateTime, Utc};
use rhai::Dynamic;
use serde_json::Value as Json;

use crate::model::{Field, FieldType, Value};

/// Why one field's value was refused.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    /// Which element of a list field, from 0, when the error is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_string(),
            index: None,
            message: message.into(),
        }
    }

    /// The same error, about element `index` of the list.
    pub fn at(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }

    /// The field, and the element as `tags[1]`: where the error is, in words.
    pub fn place(&self) -> String {
        match self.index {
            Some(i) => format!("{}[{i}]", self.field),
            None => self.field.clone(),
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
    json_of(&field.ty, value)
}

/// A value of type `ty` as JSON.
fn json_of(ty: &FieldType, value: &Value) -> Json {
    match (value, ty) {
        (Value::List(elements), FieldType::List(element)) => {
            Json::Array(elements.iter().map(|e| json_of(element, e)).collect())
        }
        (Value::List(elements), _) => {
            Json::Array(elements.iter().map(|e| json_of(ty, e)).collect())
        }
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
    value_from_json(&field.name, &field.ty, json)
}

/// The elements of a JSON array for a `list(element)` field named `name`: each one typed and
/// validated, an error naming its position.
fn list_from_json(name: &str, element: &FieldType, json: &Json) -> Result<Value, FieldError> {
    let Json::Array(items) = json else {
        return Err(FieldError::new(
            name,
            format!("expected a list of {element} (a JSON array)"),
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match value_from_json(name, element, item) {
            Ok(Some(v)) => out.push(v),
            Ok(None) => return Err(FieldError::new(name, "an element cannot be null").at(i)),
            Err(e) => {
                return Err(FieldError {
                    index: Some(i),
                    ..e
                })
            }
        }
    }
    Ok(Value::List(out.into()))
}

/// A JSON value of type `ty` for the field `name`; `Ok(None)` for `null`.
fn value_from_json(name: &str, ty: &FieldType, json: &Json) -> Result<Option<Value>, FieldError> {
    if json.is_null() {
        return Ok(None);
    }
    let value = match ty {
        FieldType::List(element) => list_from_json(name, element, json)?,
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
/// counting 24 hours), datetimes as Unix seconds, lists as arrays of their elements; unset is
/// `()`, but for a list, which is then empty.
pub fn to_dynamic(field: &Field, value: Option<&Value>) -> Dynamic {
    dynamic_of(&field.ty, value)
}

fn dynamic_of(ty: &FieldType, value: Option<&Value>) -> Dynamic {
    match (value, ty) {
        // An unset list has no elements: a rule asks `watchers.is_empty()`, never `()`.
        (None, FieldType::List(_)) => Dynamic::from_array(Vec::new()),
        (None, _) => Dynamic::UNIT,
        (Some(Value::List(elements)), FieldType::List(element)) => Dynamic::from_array(
            elements
                .iter()
                .map(|e| dynamic_of(element, Some(e)))
                .collect(),
        ),
        (Some(Value::List(elements)), _) => {
            Dynamic::from_array(elements.iter().map(|e| dynamic_of(ty, Some(e))).collect())
        }
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
    dynamic_value(&field.ty, value)
}

fn dynamic_value(ty: &FieldType, value: &Dynamic) -> Option<Option<Value>> {
    if value.is_unit() {
        return Some(None);
    }
    let v = match ty {
        // Every element must fit; an unset (`()`) element does not.
        FieldType::List(element) => {
            let items = value.clone().into_array().ok()?;
            let mut out = Vec::with_capacity(items.len());
            for item in &items {
                out.push(dynamic_value(element, item)??);
            }
            Value::List(out.into())
        }
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
            (
                FieldType::List(Box::new(FieldType::Text)),
                json!(["a", "b"]),
            ),
            (FieldType::List(Box::new(FieldType::Int)), json!([])),
            (
                FieldType::List(Box::new(FieldType::Enum(vec!["x".into(), "y".into()]))),
                json!(["y", "x", "y"]),
            ),
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

    #[test]
    fn a_bad_element_of_a_list_is_named_by_its_position() {
        let tags = field(FieldType::List(Box::new(FieldType::Enum(vec!["a".into()]))));
        let e = from_json(&tags, &json!(["a", "b"])).expect_err("b is no value");
        assert_eq!((e.field.as_str(), e.index), ("f", Some(1)));
        assert_eq!(e.place(), "f[1]");
        let e = from_json(&tags, &json!(["a", null])).expect_err("null element");
        assert_eq!(e.index, Some(1));
        let e = from_json(&tags, &json!("a")).expect_err("not an array");
        assert_eq!(e.index, None);
        assert!(e.message.contains("JSON array"), "{}", e.message);
    }

    #[test]
    fn lists_reach_rules_as_arrays_and_come_back() {
        let people = field(FieldType::List(Box::new(FieldType::Person)));
        let v = Value::List(vec![Value::Text("ann".into()), Value::Text("bob".into())].into());
        let d = to_dynamic(&people, Some(&v));
        assert_eq!(d.clone().into_array().map(|a| a.len()).ok(), Some(2));
        assert_eq!(from_dynamic(&people, &d), Some(Some(v)));
        let mixed =
            Dynamic::from_array(vec![Dynamic::from("ann".to_string()), Dynamic::from(1_i64)]);
        assert_eq!(from_dynamic(&people, &mixed), None);
    }
}
