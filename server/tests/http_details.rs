//! HTTP details over a real socket (issue 23, item 8): every refusal is
//! `application/problem+json` in the API's words (never serde's), malformed percent-encoding
//! is refused, a cursor never given out is refused, a refusal keeps a keep-alive connection
//! open, and refusals under a fencing token or of a file name say what is true.

#[macro_use]
mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value as Json};
use support::{Db, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_both!(fencing_token_refusals_say_whose_claim_it_is);

/// What a refusal must be: the status, `application/problem+json`, every member of a
/// problem, the type, and a detail naming each of `names` and none of serde's words.
async fn problem(resp: reqwest::Response, status: StatusCode, kind: &str, names: &[&str]) -> Json {
    assert_eq!(resp.status(), status);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{status} {kind}"
    );
    let body: Json = resp.json().await.expect("a JSON problem");
    assert_eq!(body["type"], format!("/problems/{kind}"), "{body}");
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    let detail = body["detail"].as_str().expect("detail");
    for n in names {
        assert!(detail.contains(n), "`{n}` not named in {body}");
    }
    for serde_word in [
        "deserialize",
        "struct ",
        "expected a string",
        "i64",
        "u32",
        "at line",
        "Failed to",
        "Invalid URL",
        "target type",
    ] {
        assert!(
            !detail.contains(serde_word),
            "`{serde_word}` (serde's words) in {body}"
        );
    }
    body
}

fn send(s: &Server, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
    s.http
        .request(method, format!("{}{path}", s.base))
        .bearer_auth(token)
}

fn json_body(req: reqwest::RequestBuilder, body: &str) -> reqwest::RequestBuilder {
    req.header("content-type", "application/json")
        .body(body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_a_problem_in_the_apis_words() {
    let db = Db::sqlite();
    let s = Server::start_with(&db, &["--max-body-bytes", "65536"]);
    let admin = s.admin.as_str();
    use StatusCode as S;

    // A request target longer than the API reads.
    let long = format!("/v1/instances?process={}", "a".repeat(9000));
    let resp = send(&s, Method::GET, &long, admin).send().await.unwrap();
    problem(resp, S::URI_TOO_LONG, "uri-too-long", &["8192"]).await;
    // A body larger than `--max-body-bytes`, refused without reading it.
    let big = format!("{{\"process\": \"{}\"}}", "x".repeat(70_000));
    let resp = json_body(send(&s, Method::POST, "/v1/instances", admin), &big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["connection"], "close");
    problem(resp, S::PAYLOAD_TOO_LARGE, "too-large", &["65536"]).await;
    // Not JSON.
    let resp = send(&s, Method::POST, "/v1/instances", admin)
        .header("content-type", "text/plain")
        .body("process=incident")
        .send()
        .await
        .unwrap();
    problem(
        resp,
        S::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        &["application/json"],
    )
    .await;
    // A known path with another method: `Allow` lists those it takes.
    let resp = send(&s, Method::DELETE, "/v1/instances", admin)
        .send()
        .await
        .unwrap();
    let allow = resp.headers()["allow"].to_str().unwrap().to_string();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    problem(resp, S::METHOD_NOT_ALLOWED, "method-not-allowed", &[]).await;
    // No such path.
    let resp = send(&s, Method::GET, "/v1/nothing", admin)
        .send()
        .await
        .unwrap();
    problem(resp, S::NOT_FOUND, "not-found", &[]).await;

    // Bodies: not JSON at all, then JSON that is not what the route takes, each naming the
    // member and what it must be.
    let bodies: &[(&str, S, &str, &[&str])] = &[
        (
            "{",
            S::BAD_REQUEST,
            "bad-request",
            &["not well-formed JSON", "line 1"],
        ),
        (
            "{\"process\": \"incident\"} and more",
            S::BAD_REQUEST,
            "bad-request",
            &["not well-formed JSON"],
        ),
        (
            "[]",
            S::UNPROCESSABLE_ENTITY,
            "invalid-request",
            &["must be a JSON object", "not an array"],
        ),
        (
            "[\"incident\", {}]",
            S::UNPROCESSABLE_ENTITY,
            "invalid-request",
            &["must be a JSON object"],
        ),
        (
            "\"incident\"",
            S::UNPROCESSABLE_ENTITY,
            "invalid-request",
            &["not a string"],
        ),
        (
            "{\"process\": 3}",
            S::UNPROCESSABLE_ENTITY,
            "invalid-request",
            &["`process` must be a string, not 3"],
        ),
        (
            "{\"process\": \"incident\", \"fields\": []}",
            S::UNPROCESSABLE_ENTITY,
            "invalid-request",
            &["`fields` must be an object, not an array"],
        ),
        (
            "{\"process\": \"incident\", \"colour\": 1}",
            S::UNPROCESSABLE_ENTITY,
            "invalid-request",
            &["`colour` is not a member", "`process`, `item`, `fields`"],
        ),
    ];
    for (body, status, kind, names) in bodies {
        let resp = json_body(send(&s, Method::POST, "/v1/instances", admin), body)
            .send()
            .await
            .unwrap();
        problem(resp, *status, kind, names).await;
    }
    let resp = json_body(send(&s, Method::POST, "/v1/tasks/1/renew", admin), "{}")
        .send()
        .await
        .unwrap();
    problem(
        resp,
        S::UNPROCESSABLE_ENTITY,
        "invalid-request",
        &["`token` is required"],
    )
    .await;
    let resp = json_body(
        send(&s, Method::POST, "/v1/tasks/1/renew", admin),
        "{\"token\": \"1\"}",
    )
    .send()
    .await
    .unwrap();
    problem(
        resp,
        S::UNPROCESSABLE_ENTITY,
        "invalid-request",
        &["`token` must be a whole number, not \"1\""],
    )
    .await;
    let resp = json_body(
        send(&s, Method::POST, "/v1/definitions", admin),
        "{\"files\": [{\"name\": \"a.itsm\"}]}",
    )
    .send()
    .await
    .unwrap();
    problem(
        resp,
        S::UNPROCESSABLE_ENTITY,
        "invalid-request",
        &["`files[0].text` is required"],
    )
    .await;

    // Query strings and path parameters.
    let queries: &[(&str, &[&str])] = &[
        (
            "/v1/instances?limit=ten",
            &["query parameter `limit` must be a whole number"],
        ),
        (
            "/v1/instances?colour=red",
            &[
                "query parameter `colour` is not one this route takes",
                "`cursor`",
            ],
        ),
        (
            "/v1/notifications?undelivered=maybe",
            &["query parameter `undelivered` must be `true` or `false`"],
        ),
        (
            "/v1/instances/abc",
            &["path parameter `id` must be a whole number, not `abc`"],
        ),
        (
            "/v1/tasks/1.5",
            &["path parameter `id` must be a whole number, not `1.5`"],
        ),
        (
            "/v1/definitions/incident/versions/-1",
            &["path parameter `version` must be a whole number, 0 or more, not `-1`"],
        ),
    ];
    for (path, names) in queries {
        let resp = send(&s, Method::GET, path, admin).send().await.unwrap();
        problem(resp, S::BAD_REQUEST, "bad-request", names).await;
    }

    // Members the document declares non-null or of a fixed set are refused in its terms: a
    // token's `expires_in_days` is left out for no expiry, never `null`; a vote's `decision`
    // is one of two words.
    let resp = json_body(
        send(&s, Method::POST, "/v1/users/admin/tokens", admin),
        r#"{"expires_in_days": null}"#,
    )
    .send()
    .await
    .unwrap();
    problem(
        resp,
        S::UNPROCESSABLE_ENTITY,
        "invalid-request",
        &["`expires_in_days` must be a whole number, not null"],
    )
    .await;
    let resp = json_body(
        send(&s, Method::POST, "/v1/instances/1/approval/votes", admin),
        r#"{"decision": "maybe"}"#,
    )
    .send()
    .await
    .unwrap();
    problem(
        resp,
        S::UNPROCESSABLE_ENTITY,
        "invalid-request",
        &["`decision` may not be `maybe`", "`approve`", "`reject`"],
    )
    .await;
    // A choice given as a number is JSON of the wrong kind, not malformed JSON.
    let resp = json_body(
        send(&s, Method::POST, "/v1/instances/1/approval/votes", admin),
        r#"{"decision": 1}"#,
    )
    .send()
    .await
    .unwrap();
    problem(
        resp,
        S::UNPROCESSABLE_ENTITY,
        "invalid-request",
        &["`decision` must be one of the names this member allows, not a number"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_percent_encoding_is_refused_not_decoded_lossily() {
    let db = Db::sqlite();
    let s = Server::start(&db);
    let admin = s.admin.as_str();
    for (path, names) in [
        ("/v1/definitions/%zz", &["the path", "`%zz`"][..]),
        ("/v1/definitions/incident%2", &["the path", "`%2`"]),
        ("/v1/definitions/%ff%fe", &["the path", "UTF-8"]),
        ("/v1/instances?process=%zz", &["the query string", "`%zz`"]),
        ("/v1/instances?process=%ff", &["the query string", "UTF-8"]),
        ("/v1/instances?process%C3=x", &["the query string", "UTF-8"]),
        ("/v1/nothing/%e9", &["the path", "UTF-8"]),
    ] {
        let resp = send(&s, Method::GET, path, admin).send().await.unwrap();
        problem(resp, StatusCode::BAD_REQUEST, "bad-request", names).await;
    }
    // Well-formed encodings still decode: `inc%69dent` is `incident`, `%C3%A9` is `é`.
    let (st, body) = s.get("/v1/definitions/inc%69dent", admin).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, body) = s.get("/v1/instances?process=caf%C3%A9", admin).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_never_given_out_is_refused() {
    let db = Db::sqlite();
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let bob = s.user(&s.admin, "bob", &["requester"]).await;
    let carol = s.user(&s.admin, "carol", &["requester"]).await;
    let mut ids = Vec::new();
    for (who, title) in [(&bob, "one"), (&carol, "two"), (&bob, "three")] {
        ids.push(s.incident(who, title).await["id"].as_i64().unwrap());
    }
    // The cursors handed out work, with the same filters.
    let (st, page) = s
        .get("/v1/instances?process=incident&limit=1", &alice)
        .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    let cursor = page["next_cursor"].as_str().expect("a cursor").to_string();
    let (st, next) = s
        .get(
            &format!("/v1/instances?process=incident&limit=1&cursor={cursor}"),
            &alice,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{next}");
    assert_eq!(next["items"][0]["id"], ids[1]);

    let refused = |body: &Json| {
        assert_eq!(body["type"], "/problems/invalid-request", "{body}");
        assert!(
            body["detail"].as_str().unwrap().contains("`cursor`"),
            "{body}"
        );
    };
    for path in [
        "/v1/instances?cursor=abc".to_string(),
        "/v1/instances?cursor=0".to_string(),
        "/v1/instances?cursor=-3".to_string(),
        // No such instance: past the newest.
        "/v1/instances?cursor=999".to_string(),
        // An instance of another process than the one asked for.
        format!("/v1/instances?process=request&cursor={}", ids[1]),
        // An instance of another creator than the one asked for.
        format!("/v1/instances?created_by=bob&cursor={}", ids[1]),
    ] {
        let (st, body) = s.get(&path, &alice).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        refused(&body);
    }
    // A requester's list holds only what they raised: a cursor at someone else's instance
    // was never theirs, and is refused like one at no instance (nothing tells them it exists).
    let (st, body) = s
        .get(&format!("/v1/instances?cursor={}", ids[1]), &bob)
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    refused(&body);
    let (st, body) = s
        .get(&format!("/v1/instances?cursor={}", ids[2]), &bob)
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["id"], ids[0]);
}

/// Responses read from a raw connection: the head and body of each, until `count` arrived or
/// the server closed the connection (`closed`).
struct Exchange {
    responses: Vec<(String, String)>,
    closed: bool,
}

/// Send `requests` as they are on one connection, then read what comes back.
async fn exchange(base: &str, requests: &[u8], count: usize) -> Exchange {
    let addr = base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may refuse before reading all (a 413): writing may then fail, reading not.
    let _ = conn.write_all(requests).await;
    let mut buf = Vec::new();
    let mut responses = Vec::new();
    let mut closed = false;
    while responses.len() < count {
        // Parse what is buffered.
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string();
                buf.drain(..end + 4 + length);
                responses.push((head, body));
                continue;
            }
        }
        let mut chunk = [0u8; 65536];
        match tokio::time::timeout(Duration::from_secs(10), conn.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => panic!("no answer within 10 s; got {responses:?}"),
        }
    }
    Exchange { responses, closed }
}

fn status_of(head: &str) -> u16 {
    head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_keeps_a_keep_alive_connection_open() {
    let db = Db::sqlite();
    let s = Server::start_with(&db, &["--max-body-bytes", "300000"]);
    let token = s.admin.clone();
    let then = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    let post = |path: &str, auth: bool, content_type: &str, body: &[u8]| {
        let mut r = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        );
        if auth {
            r.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        r.push_str("\r\n");
        let mut r = r.into_bytes();
        r.extend_from_slice(body);
        r
    };
    // A body bigger than what the server reads in one go, but within the limit: refused
    // requests used to leave it unread and the connection closed.
    let body = vec![b'x'; 200_000];
    let long = format!(
        "GET /v1/instances?process={} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n",
        "a".repeat(9000)
    );
    let cases: Vec<(u16, Vec<u8>)> = vec![
        (404, b"GET /v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        (401, b"GET /v1/me HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        (401, post("/v1/instances", false, "application/json", &body)),
        (415, post("/v1/instances", true, "text/plain", &body)),
        (404, post("/v1/nothing", true, "application/json", &body)),
        (405, post("/v1/me", true, "application/json", &body)),
        (400, post("/v1/instances", true, "application/json", b"{")),
        (422, post("/v1/instances", true, "application/json", b"{\"process\": 3}")),
        (400, format!("GET /v1/instances?process=%zz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n").into_bytes()),
        (414, long.into_bytes()),
    ];
    for (status, first) in cases {
        let mut requests = first.clone();
        requests.extend_from_slice(&then);
        let got = exchange(&s.base, &requests, 2).await;
        assert_eq!(
            got.responses.len(),
            2,
            "{status}: the connection was closed after {:?}",
            got.responses
        );
        assert_eq!(
            status_of(&got.responses[0].0),
            status,
            "{:?}",
            got.responses[0]
        );
        assert_eq!(
            header(&got.responses[0].0, "content-type"),
            Some("application/problem+json")
        );
        assert_eq!(header(&got.responses[0].0, "connection"), None, "{status}");
        assert_eq!(
            status_of(&got.responses[1].0),
            200,
            "{:?}",
            got.responses[1]
        );
        assert!(!got.closed);
    }

    // `Connection: close` closes it, after the answer.
    let got = exchange(
        &s.base,
        b"GET /v1/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        2,
    )
    .await;
    assert_eq!(got.responses.len(), 1);
    assert_eq!(status_of(&got.responses[0].0), 401);
    assert!(got.closed);

    // A body over the limit is not read: the answer says the connection closes, and it does.
    let got = exchange(
        &s.base,
        &[
            post(
                "/v1/instances",
                true,
                "application/json",
                &vec![b' '; 400_000],
            ),
            then,
        ]
        .concat(),
        2,
    )
    .await;
    assert_eq!(status_of(&got.responses[0].0), 413);
    assert_eq!(header(&got.responses[0].0, "connection"), Some("close"));
    assert_eq!(got.responses.len(), 1);
    assert!(got.closed);

    // A request line beyond what the HTTP layer reads at all (64 KiB) is refused before the
    // API sees it, as docs/api.md says: a bare 414, and the connection closed.
    let huge = format!(
        "GET /v1/instances?process={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let got = exchange(&s.base, huge.as_bytes(), 1).await;
    assert_eq!(status_of(&got.responses[0].0), 414);
}

async fn fencing_token_refusals_say_whose_claim_it_is(db: Db) {
    let s = Server::start(&db);
    let admin = s.admin.as_str();
    let alice = s.user(admin, "alice", &["agent"]).await;
    let bob = s.user(admin, "bob", &["requester"]).await;
    s.incident(&bob, "Mail is down").await;
    let (st, task) = s
        .post("/v1/queues/service_desk/claim", &alice, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{task}");
    let id = task["id"].as_i64().unwrap();
    let token = task["token"].as_i64().unwrap();

    let lease_lost = |got: &(StatusCode, Json), names: &[&str]| {
        let (st, body) = got;
        assert_eq!(*st, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["type"], "/problems/lease-lost", "{body}");
        let detail = body["detail"].as_str().unwrap();
        for n in names {
            assert!(detail.contains(n), "`{n}` not in {body}");
        }
        detail.to_string()
    };
    // The administrator presents alice's token: it is alice's claim, not theirs, and nothing
    // expired.
    for (path, body) in [
        (format!("/v1/tasks/{id}/renew"), json!({"token": token})),
        (format!("/v1/tasks/{id}/release"), json!({"token": token})),
        (
            format!("/v1/tasks/{id}/complete"),
            json!({"token": token, "action": "accept"}),
        ),
    ] {
        let got = s.post(&path, admin, body).await;
        let detail = lease_lost(&got, &["alice's claim", "not yours"]);
        assert!(
            !detail.contains("expired") && !detail.contains("ran out"),
            "{detail}"
        );
    }
    // The claim is still alice's.
    let (_, now) = s.get(&format!("/v1/tasks/{id}"), &alice).await;
    assert_eq!(now["claimed_by"], "alice");
    assert_eq!(now["token"], token);

    // alice claims it again: her old token is not her current claim's.
    let (st, again) = s
        .post(&format!("/v1/tasks/{id}/claim"), &alice, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{again}");
    let current = again["token"].as_i64().unwrap();
    let got = s
        .post(
            &format!("/v1/tasks/{id}/renew"),
            &alice,
            json!({"token": token}),
        )
        .await;
    lease_lost(
        &got,
        &["not your current claim", &format!("token {current}")],
    );

    // Released: nobody holds it.
    let (st, body) = s
        .post(
            &format!("/v1/tasks/{id}/release"),
            &alice,
            json!({"token": current}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
    let got = s
        .post(
            &format!("/v1/tasks/{id}/release"),
            &alice,
            json!({"token": current}),
        )
        .await;
    lease_lost(&got, &["not claimed by anyone now", "released"]);

    // Done: there is no claim left.
    let (_, claimed) = s
        .post(&format!("/v1/tasks/{id}/claim"), &alice, json!({}))
        .await;
    let last = claimed["token"].as_i64().unwrap();
    let (st, body) = s
        .post(
            &format!("/v1/tasks/{id}/complete"),
            &alice,
            json!({"token": last, "action": "accept"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let got = s
        .post(
            &format!("/v1/tasks/{id}/renew"),
            &alice,
            json!({"token": last}),
        )
        .await;
    lease_lost(&got, &[&format!("task {id} is done")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_name_leaving_the_project_is_told_so() {
    let db = Db::sqlite();
    let s = Server::start(&db);
    for (name, says) in [
        ("../incident.itsm", "may not leave the project directory"),
        (
            "shared/../../incident.itsm",
            "may not leave the project directory",
        ),
        ("..\\incident.itsm", "may not leave the project directory"),
        ("/etc/incident.itsm", "is absolute"),
        ("C:\\incident.itsm", "is absolute"),
        ("incident.txt", "must end in .itsm"),
    ] {
        let (st, body) = s
            .post(
                "/v1/definitions",
                &s.admin,
                json!({"files": [{"name": name, "text": ""}]}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{name}: {body}");
        if says != "must end in .itsm" {
            assert!(!detail.contains("ending in .itsm"), "{name}: {body}");
        }
    }
}
