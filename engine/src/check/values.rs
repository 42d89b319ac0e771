//! Typing literals against field types: defaults and the values in conditions.

use chrono::{DateTime, NaiveDate};
use itsmflow_dsl::ast::{Literal, LiteralKind, Span};
use itsmflow_dsl::Diagnostic;

use super::names::did_you_mean;
use crate::model::{FieldType, Value};

/// What a literal looks like, for "expected X, found Y" messages.
pub fn describe(lit: &LiteralKind) -> &'static str {
    match lit {
        LiteralKind::DateTime(_) => "a date and time",
        LiteralKind::Date(_) => "a date",
        LiteralKind::Duration(_) => "a duration",
        LiteralKind::Integer(_) => "a number",
        LiteralKind::String(_) => "a string",
        LiteralKind::Symbol(_) => "a bare word",
        LiteralKind::Prefix(_) => "a value and those under it",
        LiteralKind::List(_) => "a list",
    }
}

/// Parse `2026-12-25T08:00[:ss][Z|+hh:mm]` (UTC when no offset is given) or `2026-12-25`
/// (midnight UTC) to seconds since the epoch.
pub fn parse_datetime(text: &str) -> Option<i64> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp());
    }
    let (date_time, offset) = match text.find(['Z', '+']).or_else(|| {
        // A '-' after the 'T' starts an offset; the ones before are the date's.
        let t = text.find('T')?;
        text[t..].find('-').map(|i| t + i)
    }) {
        Some(i) => (&text[..i], &text[i..]),
        None => (text, "Z"),
    };
    let with_seconds = if date_time.len() == "2026-12-25T08:00".len() {
        format!("{date_time}:00")
    } else {
        date_time.to_string()
    };
    DateTime::parse_from_rfc3339(&format!("{with_seconds}{offset}"))
        .ok()
        .map(|d| d.timestamp())
}

/// Whether the parser reported a number within `span` as too large. It leaves 0 in its place,
/// so checks of that value (a zero delay, tier 0) would only repeat the error, wrongly.
pub(super) fn too_large_within(diags: &[Diagnostic], span: Span) -> bool {
    diags.iter().any(|d| {
        d.code == "number-too-large"
            && d.span.file == span.file
            && d.span.start >= span.start
            && d.span.end <= span.end
    })
}

/// Report an error of [`typed_value`], unless it is about the value of a number that was
/// already reported as too large.
pub(super) fn push_value_error(diags: &mut Vec<Diagnostic>, lit: &Literal, d: Diagnostic) {
    if d.code == "unknown-value" && too_large_within(diags, lit.span) {
        return;
    }
    diags.push(d);
}

/// The value of `lit` for a field named `field` of type `ty`, or a diagnostic saying why not
/// (boxed: the error is the rare case, and large).
pub fn typed_value(field: &str, ty: &FieldType, lit: &Literal) -> Result<Value, Box<Diagnostic>> {
    let mismatch = |expected: &str, help: String| {
        Box::new(
            Diagnostic::error(
                "type-mismatch",
                lit.span,
                format!("`{field}` is {ty}, but this is {}", describe(&lit.kind)),
            )
            .with_label(format!("expected {expected}"))
            .with_help(help),
        )
    };
    match (ty, &lit.kind) {
        (FieldType::List(element), LiteralKind::List(elements)) => {
            list_value(field, element, elements)
        }
        (FieldType::List(_), _) => Err(mismatch(
            "a list such as `[a, b]`",
            format!("a list is written in brackets, even of one value: `{field}: [...]`"),
        )),
        (_, LiteralKind::List(_)) => Err(mismatch(
            "one value",
            format!("`{field}` holds one value; declare it `list({ty})` to hold several"),
        )),
        (FieldType::Text | FieldType::Person, LiteralKind::String(s)) => {
            Ok(Value::Text(s.as_str().into()))
        }
        (FieldType::Text | FieldType::Person, LiteralKind::Symbol(s)) => Err(mismatch(
            "a string",
            format!("text is written in quotes: \"{s}\""),
        )),
        (FieldType::Text | FieldType::Person, _) => {
            Err(mismatch("a string", "write text in quotes".into()))
        }
        (FieldType::Int, LiteralKind::Integer(n)) => Ok(Value::Int(*n)),
        (FieldType::Int, _) => Err(mismatch("a number", "write a whole number such as `3`".into())),
        (FieldType::Bool, LiteralKind::Symbol(s)) if s == "true" => Ok(Value::Bool(true)),
        (FieldType::Bool, LiteralKind::Symbol(s)) if s == "false" => Ok(Value::Bool(false)),
        (FieldType::Bool, _) => Err(mismatch("`true` or `false`", "write `true` or `false`".into())),
        (FieldType::Duration, LiteralKind::Duration(d)) => match d.days_and_seconds() {
            Some((days, secs)) => Ok(Value::Duration(days, secs)),
            None => Err(mismatch("a duration", "this duration is too large".into())),
        },
        (FieldType::Duration, _) => Err(mismatch("a duration", "write a duration such as `4h` or `2d`".into())),
        (FieldType::DateTime, LiteralKind::DateTime(s) | LiteralKind::Date(s)) => {
            match parse_datetime(s) {
                Some(t) => Ok(Value::DateTime(t)),
                None => Err(Box::new(Diagnostic::error(
                    "invalid-date",
                    lit.span,
                    format!("`{s}` is not a valid date and time"),
                )
                .with_label("no such date or time")
                .with_help("write `YYYY-MM-DDThh:mm`, optionally with seconds and an offset such as `+01:00`"))),
            }
        }
        (FieldType::DateTime, _) => Err(mismatch(
            "a date and time",
            "write a date and time such as `2026-12-25T08:00`".into(),
        )),
        (FieldType::Enum(values), LiteralKind::Symbol(s)) => enum_value(field, values, s, lit),
        (FieldType::Enum(values), LiteralKind::Integer(n)) => enum_value(field, values, &n.to_string(), lit),
        (FieldType::Enum(values), LiteralKind::String(s)) => {
            enum_value(field, values, s, lit).map_err(|d| Box::new(d.with_help(format!("enum values are written without quotes: `{s}`"))))
        }
        (FieldType::Enum(values), _) => Err(mismatch(
            "one of its values",
            format!("`{field}` is one of: {}", values.join(", ")),
        )),
    }
}

/// The elements of a list literal, each typed as the list's element: an element is named by
/// its position, `tags[1]`, as the API names it.
fn list_value(
    field: &str,
    element: &FieldType,
    elements: &[Literal],
) -> Result<Value, Box<Diagnostic>> {
    elements
        .iter()
        .enumerate()
        .map(|(i, e)| typed_value(&format!("{field}[{i}]"), element, e))
        .collect::<Result<Vec<Value>, _>>()
        .map(|values| Value::List(values.into()))
}

fn enum_value(
    field: &str,
    values: &[String],
    name: &str,
    lit: &Literal,
) -> Result<Value, Box<Diagnostic>> {
    if let Some(i) = values.iter().position(|v| v == name) {
        return Ok(Value::Enum(i as u32));
    }
    let d = Diagnostic::error(
        "unknown-value",
        lit.span,
        format!("`{field}` has no value `{name}`"),
    )
    .with_label("not one of its values");
    Err(Box::new(
        match did_you_mean(name, values.iter().map(String::as_str)) {
            Some(s) => d.with_help(format!("did you mean `{s}`?")),
            None => d.with_help(format!("`{field}` is one of: {}", values.join(", "))),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::parse_datetime;

    #[test]
    fn datetimes_parse_with_and_without_offsets() {
        assert_eq!(parse_datetime("1970-01-01"), Some(0));
        assert_eq!(parse_datetime("1970-01-01T01:00"), Some(3600));
        assert_eq!(parse_datetime("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_datetime("1970-01-01T00:00-01:00"), Some(3600));
        assert_eq!(parse_datetime("2026-02-30"), None);
    }
}
