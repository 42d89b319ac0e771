//! `server/openapi.json` is the OpenAPI 3.1 document the server derives from its code
//! (`itsmflow openapi`), committed; it is sane, and it describes the router as it is: every
//! operation it lists reaches a handler of a real server, every route of `app.rs` is in it, and
//! the server serves this very document.
//!
//! After changing the API, regenerate the file with
//! `ITSMFLOW_UPDATE_OPENAPI=1 cargo test -p itsmflow --test openapi` (or
//! `cargo run -p itsmflow -- openapi > server/openapi.json`).

mod support;

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value as Json};
use support::{Db, Server};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The fallback's answer to a path no route matches.
const FALLBACK_DETAIL: &str = "no such route; see /openapi.json";

const SPEC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

/// Set to rewrite `server/openapi.json` from the code instead of comparing it.
const UPDATE_ENV: &str = "ITSMFLOW_UPDATE_OPENAPI";

fn spec_text() -> String {
    std::fs::read_to_string(SPEC_PATH).expect("read server/openapi.json")
}

/// The document as the code derives it: what `itsmflow openapi` prints.
fn derived_text() -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_itsmflow"))
        .arg("openapi")
        .output()
        .expect("run itsmflow openapi");
    assert!(
        out.status.success(),
        "itsmflow openapi failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the document is UTF-8")
}

#[test]
fn the_committed_document_is_the_derived_one() {
    let derived = derived_text();
    if std::env::var_os(UPDATE_ENV).is_some() {
        std::fs::write(SPEC_PATH, &derived).expect("write server/openapi.json");
        return;
    }
    let committed = spec_text();
    if committed != derived {
        // Name the first place they part, so the failure says what changed.
        let at = committed
            .lines()
            .zip(derived.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(derived.lines().count()));
        panic!(
            "server/openapi.json is not what the code derives (first difference at line {}: \
             committed {:?}, derived {:?}); regenerate it with {UPDATE_ENV}=1 cargo test -p \
             itsmflow --test openapi",
            at + 1,
            committed.lines().nth(at),
            derived.lines().nth(at),
        );
    }
}

fn spec() -> Json {
    serde_json::from_str(&spec_text()).expect("server/openapi.json is JSON")
}

/// Every (method, path template) of the document.
fn operations(spec: &Json) -> Vec<(String, String, Json)> {
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (key, op) in item.as_object().expect("path item") {
            if METHODS.contains(&key.as_str()) {
                out.push((key.clone(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// Resolve a local `$ref` (`#/components/...`) as a JSON pointer.
fn resolve<'a>(spec: &'a Json, reference: &str) -> Option<&'a Json> {
    let pointer = reference.strip_prefix('#')?;
    spec.pointer(pointer)
}

fn collect_refs(v: &Json, out: &mut Vec<String>) {
    match v {
        Json::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    if let Some(r) = v.as_str() {
                        out.push(r.to_string());
                    }
                }
                collect_refs(v, out);
            }
        }
        Json::Array(items) => items.iter().for_each(|i| collect_refs(i, out)),
        _ => {}
    }
}

/// The parameter names of a path template: `/v1/tasks/{id}/claim` has `id`.
fn template_params(path: &str) -> BTreeSet<String> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_document_is_sane() {
    let spec = spec();
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "openapi must be 3.1.x"
    );
    assert!(spec["info"]["title"].is_string() && spec["info"]["version"].is_string());
    assert!(spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer");

    // Every reference resolves.
    let mut refs = Vec::new();
    collect_refs(&spec, &mut refs);
    assert!(!refs.is_empty());
    for r in &refs {
        assert!(r.starts_with("#/"), "only local references are used: {r}");
        assert!(resolve(&spec, r).is_some(), "`{r}` does not resolve");
    }

    let ops = operations(&spec);
    assert!(!ops.is_empty(), "no operations");
    let mut ids = BTreeSet::new();
    for (method, path, op) in &ops {
        let at = format!("{} {path}", method.to_uppercase());
        assert!(path.starts_with('/'), "{at}: paths start with /");
        let responses = op["responses"].as_object();
        assert!(
            responses.is_some_and(|r| !r.is_empty()),
            "{at} has no responses"
        );
        for (status, response) in responses.unwrap() {
            assert!(
                status == "default"
                    || (status.len() == 3 && status.chars().all(|c| c.is_ascii_digit())),
                "{at}: response key `{status}`"
            );
            let response = match response.get("$ref").and_then(Json::as_str) {
                Some(r) => resolve(&spec, r).unwrap(),
                None => response,
            };
            assert!(
                response["description"].is_string(),
                "{at} {status}: no description"
            );
        }
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}: no operationId"));
        assert!(
            ids.insert(id.to_string()),
            "operationId `{id}` is used twice"
        );

        // Path parameters: exactly those of the template, each required.
        let declared: BTreeSet<String> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| match p.get("$ref").and_then(Json::as_str) {
                        Some(r) => resolve(&spec, r).unwrap().clone(),
                        None => p.clone(),
                    })
                    .filter(|p| p["in"] == "path")
                    .map(|p| {
                        assert_eq!(p["required"], true, "{at}: path parameter not required");
                        assert!(p["schema"].is_object(), "{at}: path parameter untyped");
                        p["name"].as_str().unwrap().to_string()
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(declared, template_params(path), "{at}: path parameters");
    }
}

/// The `"/..."` literals passed to `.route(` in `app.rs`.
fn routed_paths() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/serve/app.rs");
    let source = std::fs::read_to_string(path).expect("read app.rs");
    let mut out = Vec::new();
    let mut rest = source.as_str();
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        let trimmed = rest.trim_start();
        if let Some(lit) = trimmed.strip_prefix('"') {
            let end = lit.find('"').expect("closing quote");
            out.push(lit[..end].to_string());
        }
    }
    out
}

#[test]
fn every_route_is_described() {
    let spec = spec();
    let routes = routed_paths();
    assert!(routes.len() >= 30, "found only {routes:?} in app.rs");
    for route in &routes {
        assert!(route.starts_with('/'), "`{route}`");
        assert!(
            spec["paths"].get(route).is_some(),
            "route `{route}` of app.rs is not in openapi.json"
        );
    }
    // And nothing is described that is not routed.
    for path in spec["paths"].as_object().unwrap().keys() {
        assert!(
            routes.contains(path),
            "`{path}` is described but not routed"
        );
    }
}

/// A concrete path for a template: parameters replaced by values the standard processes and a
/// fresh server have (or that are harmless where they do not exist).
fn concrete(path: &str) -> String {
    let mut out = String::new();
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let value = match seg {
            "{process}" => "incident",
            "{version}" => "1",
            "{queue}" => "service_desk",
            "{action}" => "log",
            "{name}" => "admin",
            "{item}" => "objectives",
            // Not the administrator's own token (1): revoking it would end the test.
            "{id}" if path.starts_with("/v1/tokens/") => "999999",
            "{id}" => "1",
            s if s.starts_with('{') => panic!("no value for parameter {s} of {path}"),
            s => s,
        };
        out.push_str(value);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_serves_every_described_operation() {
    let spec = spec();
    let db = Db::sqlite();
    let s = Server::start(&db);
    assert!(
        !s.admin.is_empty(),
        "the first start prints an administrator token"
    );

    // The document the server serves is this one.
    let resp = s
        .http
        .get(format!("{}/openapi.json", s.base))
        .send()
        .await
        .expect("GET /openapi.json");
    assert_eq!(resp.status(), StatusCode::OK);
    let served: Json = resp.json().await.expect("served document is JSON");
    assert_eq!(served, spec, "GET /openapi.json serves another document");

    // The fallback, as the check below recognises it.
    let (st, body) = s.get("/v1/no-such-route", &s.admin).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], FALLBACK_DETAIL);

    for (method, template, op) in operations(&spec) {
        let path = concrete(&template);
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut req = s
            .http
            .request(m.clone(), format!("{}{path}", s.base))
            .bearer_auth(&s.admin);
        if op.get("requestBody").is_some() {
            req = req.json(&json!({}));
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{m} {path}: {e}"));
        let status = resp.status();
        let is_stream = resp
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        // An event stream stays open: do not read it to its end.
        let body: Json = if is_stream {
            drop(resp);
            Json::Null
        } else {
            let text = resp.text().await.unwrap_or_default();
            serde_json::from_str(&text).unwrap_or(Json::String(text))
        };
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{m} {template}: the router has no such method on this path"
        );
        assert!(
            !(status == StatusCode::NOT_FOUND && body["detail"] == FALLBACK_DETAIL),
            "{m} {template}: answered by the router's fallback ({path})"
        );
        assert!(!status.is_server_error(), "{m} {path}: {status} {body}");
        // The status is one the document lists for the operation.
        let listed = op["responses"]
            .as_object()
            .unwrap()
            .contains_key(status.as_str());
        assert!(
            listed,
            "{m} {template}: {status} is not documented ({body})"
        );
    }
}

/// The document declares the bounds the server enforces, so a client (or a fuzzer) built from
/// it knows them: page sizes, versions, a token's lifetime, the `If-Match` header and its
/// agreement with `version`, and the events of the live streams.
#[test]
fn the_document_declares_what_the_server_enforces() {
    let spec = spec();
    let mut limits = 0;
    for (method, path, op) in operations(&spec) {
        let at = format!("{} {path}", method.to_uppercase());
        for p in op["parameters"].as_array().into_iter().flatten() {
            match p["name"].as_str() {
                // `Limits::page`: 1 to `--max-page` (500 unless set lower).
                Some("limit") => {
                    limits += 1;
                    assert_eq!(p["schema"]["minimum"], 1, "{at}: limit");
                    assert_eq!(p["schema"]["maximum"], 500, "{at}: limit");
                }
                Some("If-Match") => {
                    let says = p["description"].as_str().unwrap_or_default();
                    assert!(
                        says.contains("`version`") && says.contains("400"),
                        "{at}: If-Match does not say it must agree with `version`: {says}"
                    );
                }
                _ => {}
            }
        }
    }
    assert!(limits >= 4, "only {limits} operations page with `limit`");

    // Versions start at 1 (`expected_version` refuses 0 and less).
    let schemas = &spec["components"]["schemas"];
    for name in ["ActionRequest", "VoteRequest", "ChecklistTick"] {
        assert_eq!(
            schemas[name]["properties"]["version"]["minimum"], 1,
            "{name}.version"
        );
    }
    // A token's lifetime: left out for none, else 1 to 3650 days, never null.
    let days = &schemas["NewTokenRequest"]["properties"]["expires_in_days"];
    assert_eq!(
        days["type"], "integer",
        "expires_in_days is not nullable: {days}"
    );
    assert_eq!(
        (days["minimum"].clone(), days["maximum"].clone()),
        (json!(1), json!(3650))
    );
    // A claim's lease: 1 s to a day.
    let lease = &schemas["ClaimRequest"]["properties"]["lease_seconds"];
    assert_eq!(
        (lease["minimum"].clone(), lease["maximum"].clone()),
        (json!(1), json!(86400))
    );

    // Each live stream names its events and the schema of each one's data.
    for (path, events) in [
        (
            "/v1/queues/{queue}/events",
            &[
                "ready",
                "added",
                "claimed",
                "released",
                "removed",
                "escalated",
                "lagged",
            ][..],
        ),
        (
            "/v1/me/approvals/events",
            &["ready", "approvals", "lagged"][..],
        ),
    ] {
        let ok = &spec["paths"][path]["get"]["responses"]["200"];
        assert!(ok["content"]["text/event-stream"].is_object(), "{path}");
        let declared = ok["x-events"].as_object().expect("x-events");
        let names: BTreeSet<&str> = declared.keys().map(String::as_str).collect();
        assert_eq!(names, events.iter().copied().collect(), "{path}");
        for schema in declared.values() {
            let r = schema["$ref"].as_str().expect("a schema reference");
            assert!(resolve(&spec, r).is_some(), "{path}: `{r}`");
        }
    }
}

/// Whether `value` has the shape of `schema` (a schema object of the document): its type, the
/// members it requires and no member it does not describe, its enumerated values; enough to
/// check a stream's events, whose schemas are plain objects.
fn conforms(spec: &Json, schema: &Json, value: &Json) -> Result<(), String> {
    let schema = match schema.get("$ref").and_then(Json::as_str) {
        Some(r) => resolve(spec, r).ok_or(format!("`{r}` does not resolve"))?,
        None => schema,
    };
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            return Err(format!("{value} is not one of {allowed:?}"));
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Json::String(t) => vec![t.as_str()],
        Json::Array(ts) => ts.iter().filter_map(Json::as_str).collect(),
        _ => return Ok(()),
    };
    let kind = match value {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    };
    // An integer is a number too.
    let fits = types.contains(&kind) || (kind == "integer" && types.contains(&"number"));
    if !fits {
        return Err(format!("{value} is a {kind}, not {types:?}"));
    }
    if let (Json::Object(members), Some(props)) = (value, schema["properties"].as_object()) {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !members.contains_key(name) {
                return Err(format!("`{name}` is missing from {value}"));
            }
        }
        for (name, v) in members {
            let described = props
                .get(name)
                .ok_or(format!("`{name}` is not described"))?;
            conforms(spec, described, v).map_err(|e| format!("`{name}`: {e}"))?;
        }
    }
    if let (Json::Object(members), Some(max)) = (value, schema["maxProperties"].as_u64()) {
        if members.len() as u64 > max {
            return Err(format!("{value} has more than {max} members"));
        }
    }
    Ok(())
}

/// The events a queue's stream really sends are those its `x-events` describe, each `data`
/// matching its schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_streams_the_events_the_document_describes() {
    use futures_util::StreamExt;
    let spec = spec();
    let declared =
        spec["paths"]["/v1/queues/{queue}/events"]["get"]["responses"]["200"]["x-events"].clone();
    let db = Db::sqlite();
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let resp = s
        .http
        .get(format!("{}/v1/queues/service_desk/events", s.base))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut stream = resp.bytes_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut next = async |text: &mut String| {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("events arrive")
            .expect("stream open")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    };
    while !text.contains("event: ready") {
        next(&mut text).await;
    }
    // A ticket enters the queue, is claimed, released, claimed again and completed.
    s.incident(&alice, "Events please").await;
    let (_, task) = s
        .post("/v1/queues/service_desk/claim", &alice, json!({}))
        .await;
    let task_path = format!("/v1/tasks/{}", task["id"]);
    s.post(
        &format!("{task_path}/release"),
        &alice,
        json!({"token": task["token"]}),
    )
    .await;
    let (_, task) = s
        .post("/v1/queues/service_desk/claim", &alice, json!({}))
        .await;
    let (st, _) = s
        .post(
            &format!("{task_path}/complete"),
            &alice,
            json!({"token": task["token"], "action": "cancel"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    while !text.contains("event: removed") {
        next(&mut text).await;
    }

    let mut seen = BTreeSet::new();
    for block in text.split("\n\n").filter(|b| b.contains("event: ")) {
        let name = block
            .lines()
            .find_map(|l| l.strip_prefix("event: "))
            .expect("an event name");
        let data = block
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .expect("event data");
        let schema = declared
            .get(name)
            .unwrap_or_else(|| panic!("the stream sends `{name}`, which x-events does not name"));
        let data: Json = serde_json::from_str(data).expect("event data is JSON");
        if let Err(e) = conforms(&spec, schema, &data) {
            panic!("`{name}` event {data} does not match its schema: {e}");
        }
        seen.insert(name.to_string());
    }
    for name in ["ready", "added", "claimed", "released", "removed"] {
        assert!(seen.contains(name), "no `{name}` event in {text}");
    }
}
