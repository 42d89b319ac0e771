//! What every request goes through before its handler, and refusals of malformed requests in
//! the API's own words.
//!
//! [`guard`] reads the body (up to `--max-body-bytes`) before the handler runs, so that a
//! refused request leaves its connection ready for the next one, and refuses a request target
//! that is too long or not well percent-encoded. The rest turns serde's messages ("invalid type:
//! integer `3`, expected a string", "expected struct NewInstance") into ones that name the member,
//! query parameter or path parameter and what it must be.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::app::App;
use super::error::ApiError;
use super::tenants::Backend;

/// The longest request target (path and query) the API reads, in bytes. (Beyond 64 KiB the
/// HTTP layer refuses the request line itself, before the API sees it: a bare `414`.)
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Refuse what no handler should see, and read the body before the handler runs.
///
/// Reading the body first keeps the connection open after a refusal (a `401`, `404`, `415`…
/// given before a handler read the body would otherwise leave it unread, and the connection is
/// then closed). A body larger than the limit is refused without reading it; that answer says
/// `Connection: close`, since what is left of the body is never read.
pub async fn guard<B: Backend>(
    State(app): State<Arc<App<B>>>,
    req: Request,
    next: Next,
) -> Response {
    let limits = app.limits;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return closing(too_large(Some(limits.max_body)));
    }
    let (parts, body) = req.into_parts();
    let body = match tokio::time::timeout(
        limits.request_timeout,
        axum::body::to_bytes(body, limits.max_body),
    )
    .await
    {
        Ok(Ok(bytes)) => Body::from(bytes),
        Ok(Err(e)) => {
            return closing(if is_too_large(&e) {
                too_large(Some(limits.max_body))
            } else {
                ApiError::bad_request("the request body could not be read to its end")
            })
        }
        Err(_) => return closing(super::app::timeout_error()),
    };
    let req = Request::from_parts(parts, body);
    if let Err(refusal) = check_target(req.uri()) {
        return refusal.into_response();
    }
    next.run(req).await
}

/// Whether reading the body failed because it is longer than the limit (http-body-util's
/// `LengthLimitError`, whose type axum does not export), rather than the connection failing.
fn is_too_large(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.to_string() == "length limit exceeded" {
            return true;
        }
        source = s.source();
    }
    false
}

/// The refusal of a body longer than the server accepts (`max` bytes, when known).
pub fn too_large(max: Option<usize>) -> ApiError {
    let limit = match max {
        Some(max) => format!("the {max} bytes"),
        None => "what".into(),
    };
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
        "Request body too large",
        format!("the request body is larger than {limit} the server accepts"),
    )
}

/// A refusal after which the server reads nothing more from the connection, saying so.
fn closing(e: ApiError) -> Response {
    let mut response = e.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request target that is too long, or whose path or query is not well percent-encoded
/// (`%` not followed by two hex digits, or bytes that are not UTF-8 once decoded), is refused
/// rather than decoded lossily.
fn check_target(uri: &axum::http::Uri) -> Result<(), ApiError> {
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
    if target.len() > MAX_URI_BYTES {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            "URI too long",
            format!(
                "the request's path and query are {} bytes long; the server reads at most {MAX_URI_BYTES}",
                target.len()
            ),
        ));
    }
    if let Err(why) = percent_decoded(uri.path()) {
        return Err(ApiError::bad_request(format!("the path {why}")));
    }
    if let Some(query) = uri.query() {
        if let Err(why) = percent_decoded(query) {
            return Err(ApiError::bad_request(format!("the query string {why}")));
        }
    }
    Ok(())
}

/// `text` percent-decoded, or why it cannot be.
fn percent_decoded(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: u8| (b as char).to_digit(16);
            match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => {
                    let end = (i + 3).min(bytes.len());
                    let seen = String::from_utf8_lossy(&bytes[i..end]);
                    return Err(format!(
                        "holds `{seen}`: a `%` must be followed by two hex digits (write `%25` for `%` itself)"
                    ));
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| {
        "is not UTF-8 once percent-decoded (a `%XX` sequence that is not part of a UTF-8 character)"
            .to_string()
    })
}

/// Where a value is: a member of the JSON body or a query parameter.
#[derive(Clone, Copy)]
pub enum Place {
    Body,
    Query,
}

impl Place {
    /// `name` (a path such as `fields.title`, or empty for the whole) as the API speaks of it.
    fn name(self, name: &str) -> String {
        match (self, name) {
            (Place::Body, "") => "the body".into(),
            (Place::Body, n) => format!("`{n}`"),
            (Place::Query, "") => "the query string".into(),
            (Place::Query, n) => format!("query parameter `{n}`"),
        }
    }
}

/// Join a path and a member name.
fn join(at: &str, member: &str) -> String {
    if at.is_empty() {
        member.to_string()
    } else {
        format!("{at}.{member}")
    }
}

/// The text between the first pair of backticks in `s`, and what follows it.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let start = s.find('`')? + 1;
    let len = s[start..].find('`')?;
    Some((&s[start..start + len], &s[start + len + 1..]))
}

/// serde's message `msg` about the value at `at` (a path from serde_path_to_error: `.` or
/// empty for the whole), in the API's words.
pub fn explain(place: Place, at: &str, msg: &str) -> String {
    let at = if at == "." { "" } else { at };
    let here = place.name(at);
    if let Some(rest) = msg.strip_prefix("missing field ") {
        if let Some((field, _)) = quoted(rest) {
            return format!("{} is required", place.name(&join(at, field)));
        }
    }
    if let Some(rest) = msg.strip_prefix("duplicate field ") {
        if let Some((field, _)) = quoted(rest) {
            return format!("{} is given twice", place.name(&join(at, field)));
        }
    }
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        if let Some((field, tail)) = quoted(rest) {
            // The path already ends with the unknown member.
            let name = if at == field || at.ends_with(&format!(".{field}")) {
                at.to_string()
            } else {
                join(at, field)
            };
            let known = tail
                .trim_start_matches(',')
                .trim()
                .strip_prefix("expected ")
                .map(|k| {
                    if k.starts_with("one of") {
                        format!("; expected {k}")
                    } else {
                        format!("; the only one expected is {k}")
                    }
                })
                .unwrap_or_default();
            let what = match place {
                Place::Body => format!("`{name}` is not a member this request takes"),
                Place::Query => format!("query parameter `{name}` is not one this route takes"),
            };
            return format!("{what}{known}");
        }
    }
    if let Some(rest) = msg.strip_prefix("unknown variant ") {
        if let Some((variant, tail)) = quoted(rest) {
            let known = tail
                .trim_start_matches(',')
                .trim()
                .strip_prefix("expected ")
                .unwrap_or("");
            return format!("{here} may not be `{variant}`; expected {known}");
        }
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            if let Some((got, expected)) = rest.split_once(", expected ") {
                return format!(
                    "{here} must be {}, not {}",
                    expected_text(expected),
                    got_text(got)
                );
            }
        }
    }
    if let Some(rest) = msg.strip_prefix("invalid length ") {
        if let Some((_, expected)) = rest.split_once(", expected ") {
            return format!("{here} must be {}", expected_text(expected));
        }
    }
    // What text parsers say (query parameters are text until parsed).
    match msg {
        "invalid digit found in string"
        | "cannot parse integer from empty string"
        | "number too large to fit in target type"
        | "number too small to fit in target type" => {
            return format!("{here} must be a whole number within range")
        }
        "provided string was not `true` or `false`" => {
            return format!("{here} must be `true` or `false`")
        }
        "invalid float literal" => return format!("{here} must be a number"),
        _ => {}
    }
    if at.is_empty() {
        msg.to_string()
    } else {
        format!("{here}: {msg}")
    }
}

/// What serde says it expected (`u32`, `struct NewInstance`, `a sequence`), as the API's
/// types.
pub fn expected_text(expected: &str) -> String {
    let e = expected.trim();
    let plain = match e {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number, 0 or more",
        "f32" | "f64" => "a number",
        "a boolean" | "bool" => "`true` or `false`",
        "a string" | "a borrowed string" | "string" | "a string or bytes" => "a string",
        "a character" | "char" => "a single character",
        "a map" | "map" => "an object",
        "a sequence" | "sequence" => "an array",
        "unit" => "null",
        "any valid JSON value" => "a JSON value",
        _ => "",
    };
    if !plain.is_empty() {
        return plain.to_string();
    }
    if e.starts_with("struct ") || e.starts_with("a map") {
        return "an object".into();
    }
    if e.starts_with("tuple") || e.starts_with("a tuple") || e.starts_with("an array") {
        return "an array".into();
    }
    if e.starts_with("enum ") {
        return "one of the names this member allows".into();
    }
    e.to_string()
}

/// What serde says it got, as JSON would write it.
fn got_text(got: &str) -> String {
    let g = got.trim();
    for kind in ["integer ", "floating point ", "boolean ", "character "] {
        if let Some(v) = g.strip_prefix(kind) {
            return v.trim_matches('`').to_string();
        }
    }
    if let Some(s) = g.strip_prefix("string ") {
        const MOST: usize = 60;
        return if s.chars().count() > MOST {
            format!("{}…\"", s.chars().take(MOST).collect::<String>())
        } else {
            s.to_string()
        };
    }
    match g {
        "null" | "unit value" | "unit" => "null".into(),
        "sequence" => "an array".into(),
        "map" => "an object".into(),
        "Option value" => "a value".into(),
        other => other.to_string(),
    }
}

/// A JSON document's kind, as the API speaks of it.
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "`true` or `false`",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Deserialize a JSON body, refusing it in the API's words: `400` when it is not JSON, `422`
/// when it is JSON but not what the route takes (naming the member and what it must be).
pub fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let syntax = |e: &serde_json::Error| {
        ApiError::bad_request(format!(
            "the body is not well-formed JSON: {} (line {}, column {})",
            without_position(e),
            e.line(),
            e.column()
        ))
    };
    // Every body the API takes is an object: say so rather than let serde read a struct from
    // an array ("expected struct NewInstance with 2 elements").
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(v) => Err(ApiError::invalid(format!(
                "the body must be a JSON object (`{{…}}`), not {}",
                json_kind(&v)
            ))),
            Err(e) => Err(syntax(&e)),
        };
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        // Nothing but white space may follow the object.
        Ok(v) => de.end().map(|()| v).map_err(|e| syntax(&e)),
        Err(e) => {
            let at = e.path().to_string();
            let inner = e.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => Err(ApiError::invalid(explain(
                    Place::Body,
                    &at,
                    &without_position(&inner),
                ))),
                // serde_json refuses a choice (an enum) given as a number, `true` or `null` as
                // if the JSON were malformed ("expected value"); the body is JSON, the member
                // is of the wrong kind.
                _ => match serde_json::from_slice::<serde_json::Value>(bytes) {
                    Ok(doc) => Err(ApiError::invalid(match value_at(&doc, &at) {
                        Some(v) => format!(
                            "{} must be one of the names this member allows, not {}",
                            Place::Body.name(&at),
                            json_kind(v)
                        ),
                        None => format!("{} is not of the kind it must be", Place::Body.name(&at)),
                    })),
                    Err(_) => Err(syntax(&inner)),
                },
            }
        }
    }
}

/// The member of `doc` at `path` as serde_path_to_error writes it (`files[0].name`).
fn value_at<'a>(doc: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    if path.is_empty() || path == "." {
        return Some(doc);
    }
    let mut here = doc;
    for part in path.split('.') {
        let (member, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !member.is_empty() {
            here = here.get(member)?;
        }
        for index in indexes.split(']').filter_map(|i| i.strip_prefix('[')) {
            here = here.get(index.parse::<usize>().ok()?)?;
        }
    }
    Some(here)
}

/// serde_json's message without its " at line L column C".
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_string()
}

/// Deserialize a query string, refusing it (`400`) in the API's words.
pub fn from_query<T: serde::de::DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        ApiError::bad_request(explain(Place::Query, &at, &e.into_inner().to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_is_found_by_its_path() {
        let doc = serde_json::json!({"files": [{"name": 1}, {"name": "b", "tags": [[true]]}]});
        assert_eq!(value_at(&doc, "files[0].name"), Some(&serde_json::json!(1)));
        assert_eq!(
            value_at(&doc, "files[1].tags[0][0]"),
            Some(&serde_json::json!(true))
        );
        assert_eq!(value_at(&doc, "."), Some(&doc));
        assert_eq!(value_at(&doc, "files[2]"), None);
        assert_eq!(value_at(&doc, "nothing"), None);
    }

    #[test]
    fn serde_messages_become_the_apis() {
        assert_eq!(
            explain(
                Place::Body,
                "process",
                "invalid type: integer `3`, expected a string"
            ),
            "`process` must be a string, not 3"
        );
        assert_eq!(
            explain(Place::Body, ".", "missing field `process`"),
            "`process` is required"
        );
        assert_eq!(
            explain(Place::Body, "files[0]", "missing field `text`"),
            "`files[0].text` is required"
        );
        assert_eq!(
            explain(
                Place::Body,
                "zz",
                "unknown field `zz`, expected one of `process`, `item`, `fields`"
            ),
            "`zz` is not a member this request takes; expected one of `process`, `item`, `fields`"
        );
        assert_eq!(
            explain(
                Place::Body,
                "files",
                "invalid length 0, expected struct File with 2 elements"
            ),
            "`files` must be an object"
        );
        assert_eq!(
            explain(Place::Query, "limit", "invalid digit found in string"),
            "query parameter `limit` must be a whole number within range"
        );
        assert_eq!(
            explain(
                Place::Body,
                "token",
                "invalid value: integer `-1`, expected u32"
            ),
            "`token` must be a whole number, 0 or more, not -1"
        );
    }

    #[test]
    fn malformed_percent_encoding_is_named() {
        assert_eq!(percent_decoded("a%20b").unwrap(), "a b");
        assert!(percent_decoded("%zz").unwrap_err().contains("`%zz`"));
        assert!(percent_decoded("ab%2").unwrap_err().contains("`%2`"));
        assert!(percent_decoded("%ff").unwrap_err().contains("UTF-8"));
        assert_eq!(percent_decoded("%C3%A9").unwrap(), "é");
    }
}
