//! `server/openapi.json` is a sane OpenAPI 3.1 document, and it describes the router as it is:
//! every operation it lists reaches a handler of a real server, every route of `app.rs` is in
//! it, and the server serves this very document.

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

fn spec_text() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    std::fs::read_to_string(path).expect("read server/openapi.json")
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
