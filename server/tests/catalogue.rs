//! The service catalogue over HTTP, with the standard processes, on a SQLite file and on
//! PostgreSQL: the portal reads the catalogue, raises a request from an item (its presets
//! applied, refused without what the item requires), and an incident on a service runs on the
//! targets that service agrees.

#[macro_use]
mod support;

use reqwest::StatusCode;
use serde_json::{json, Value as Json};
use support::{Db, Server};

on_both!(the_portal_reads_the_catalogue_and_raises_items);

fn service<'a>(catalogue: &'a Json, name: &str) -> &'a Json {
    catalogue["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no service {name} in {catalogue}"))
}

async fn the_portal_reads_the_catalogue_and_raises_items(db: Db) {
    let s = Server::start(&db);
    let bob = s.user(&s.admin, "bob", &["requester"]).await;
    let ann = s.user(&s.admin, "ann", &["agent"]).await;

    // Anyone signed in reads the catalogue.
    let (st, catalogue) = s.get("/v1/catalog", &bob).await;
    assert_eq!(st, StatusCode::OK, "{catalogue}");
    let desktop = service(&catalogue, "desktop");
    assert_eq!(desktop["label"], "Desktop and laptops");
    assert_eq!(desktop["queues"], json!(["service_desk", "second_line"]));
    let laptop = desktop["items"]
        .as_array()
        .and_then(|i| i.iter().find(|i| i["name"] == "laptop"))
        .expect("the laptop item");
    assert_eq!(laptop["process"], "request");
    assert_eq!(laptop["presets"]["cost"], 1200);
    assert_eq!(laptop["presets"]["service"], "desktop", "{laptop}");
    assert_eq!(laptop["requires"], json!(["justification"]));
    let network = service(&catalogue, "network");
    assert_eq!(network["calendar"], "24x7");
    assert!(
        network["targets"].as_array().is_some_and(|t| t
            .iter()
            .any(|t| t["priority"] == "P1" && t["respond"] == "10m")),
        "{network}"
    );

    // Raising the item without what it requires creates nothing.
    let (_, before) = s.get("/v1/instances?process=request", &s.admin).await;
    let (st, v) = s
        .post(
            "/v1/instances",
            &bob,
            json!({"item": "laptop", "fields": {"requester": "bob"}}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["type"], "/problems/invalid-fields", "{v}");
    assert_eq!(v["errors"][0]["field"], "justification", "{v}");
    let (_, after) = s.get("/v1/instances?process=request", &s.admin).await;
    assert_eq!(before, after);
    // With it: a request with the item's presets.
    let (st, r) = s
        .post(
            "/v1/instances",
            &bob,
            json!({"item": "laptop", "fields": {"requester": "bob", "cost": 5,
                   "justification": "a new starter on Monday"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    assert_eq!(r["process"], "request");
    assert_eq!(r["fields"]["item"], "laptop");
    assert_eq!(
        r["fields"]["cost"], 1200,
        "the item's price, not the requester's"
    );
    assert_eq!(r["fields"]["service"], "desktop");
    // Unknown items, and asking for a process and an item at once, are refused.
    let (st, v) = s
        .post("/v1/instances", &bob, json!({"item": "yacht"}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["item"], "yacht", "{v}");
    let (st, v) = s
        .post(
            "/v1/instances",
            &bob,
            json!({"item": "laptop", "process": "request"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    // An urgent network incident runs on the network's 10-minute response, day and night.
    let (st, i) = s
        .post(
            "/v1/instances",
            &ann,
            json!({"process": "incident", "fields": {"title": "Wi-Fi down", "caller": "bob",
                   "service": "network", "category": "network", "impact": "high",
                   "urgency": "high"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{i}");
    let id = i["id"].as_i64().expect("id");
    let (_, clocks) = s.get(&format!("/v1/instances/{id}/clocks"), &ann).await;
    let respond = clocks["items"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["clock"] == "respond"))
        .expect("respond clock");
    assert_eq!(respond["target"], "10m", "{clocks}");
    // Categories form a hierarchy: Wi-Fi is under network, so the network team gets it.
    let (st, w) = s
        .post(
            "/v1/instances",
            &ann,
            json!({"process": "incident", "fields": {"title": "Wi-Fi slow", "caller": "bob",
                   "service": "network", "category": "network.wifi", "impact": "low",
                   "urgency": "medium"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{w}");
    let wid = w["id"].as_i64().expect("id");
    let (_, w) = s
        .post(&format!("/v1/instances/{wid}/actions/log"), &ann, json!({}))
        .await;
    assert_eq!(w["task"]["queue"], "network", "{w}");
    let (st, v) = s
        .post(
            "/v1/instances",
            &ann,
            json!({"process": "incident", "fields": {"title": "x", "caller": "bob",
                   "service": "network", "category": "network.cable", "impact": "low"}}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "not a category: {v}");

    // A service that agrees nothing for P1 leaves the process's own target.
    let (_, i) = s
        .post(
            "/v1/instances",
            &ann,
            json!({"process": "incident", "fields": {"title": "Mail down", "caller": "bob",
                   "service": "email", "category": "software", "impact": "high",
                   "urgency": "high"}}),
        )
        .await;
    let id = i["id"].as_i64().expect("id");
    let (_, clocks) = s.get(&format!("/v1/instances/{id}/clocks"), &ann).await;
    let respond = clocks["items"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["clock"] == "respond"))
        .expect("respond clock");
    assert_eq!(respond["target"], "15m", "{clocks}");
}
