//! Start real `itsmflow serve` processes on real databases and talk to them over HTTP.

#![allow(dead_code)]

pub mod browser;
pub mod web;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value as Json};

/// The scenarios given, each run as a test on SQLite (`sqlite::NAME`) and on PostgreSQL
/// (`postgres::NAME`). Use with `#[macro_use] mod support;`.
#[allow(unused_macros)]
macro_rules! on_both {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Db::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Db::postgres().await).await;
                }
            )*
        }
    };
}

/// The environment variable naming the PostgreSQL server the tests use (`.ci/run` sets it).
pub const POSTGRES_ENV: &str = "ITSMFLOW_TEST_POSTGRES";

pub fn processes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../processes")
}

/// The standard project (`processes/`) as a `POST /v1/definitions` body's `files`, by name.
pub fn project_files() -> Vec<Json> {
    let mut files: Vec<Json> = std::fs::read_dir(processes_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "itsm"))
        .map(|p| {
            json!({
                "name": p.file_name().unwrap().to_string_lossy(),
                "text": std::fs::read_to_string(&p).unwrap(),
            })
        })
        .collect();
    files.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    files
}

/// Where a test server keeps its data.
pub enum Db {
    Sqlite(tempfile::TempDir),
    /// The database's URL, and what it takes to drop it: the server's URL and its name.
    Postgres {
        url: String,
        server: String,
        name: String,
    },
}

impl Db {
    pub fn sqlite() -> Self {
        Db::Sqlite(tempfile::tempdir().expect("temp dir"))
    }

    /// A fresh database on the test PostgreSQL server. Panics if the server is not configured:
    /// PostgreSQL tests run for real, never skipped.
    pub async fn postgres() -> Self {
        let base = std::env::var(POSTGRES_ENV)
            .unwrap_or_else(|_| panic!("{POSTGRES_ENV} is not set; run the tests through .ci/run"));
        let name = format!(
            "itsmflow_http_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let admin = sqlx::PgPool::connect(&base)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("create database");
        admin.close().await;
        Db::Postgres {
            url: with_database(&base, &name),
            server: base,
            name,
        }
    }

    pub fn url(&self) -> String {
        match self {
            Db::Sqlite(dir) => format!("sqlite://{}", dir.path().join("itsmflow.db").display()),
            Db::Postgres { url, .. } => url.clone(),
        }
    }
}

impl Drop for Db {
    /// A test's PostgreSQL database goes with it (connections still open to it are cut), so
    /// test runs do not pile databases up on the server.
    fn drop(&mut self) {
        let Db::Postgres { server, name, .. } = self else {
            return;
        };
        let (base, name) = (server.clone(), name.clone());
        // `drop` cannot wait on the test's runtime: a thread with its own does the work.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let admin = sqlx::PgPool::connect(&base).await.ok()?;
                let dropped = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&admin)
                    .await;
                admin.close().await;
                dropped.ok().map(|_| ())
            })
        })
        .join();
    }
}

/// `base` (a URL naming some database) with its database replaced by `name`.
fn with_database(base: &str, name: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (base, None),
    };
    let scheme_end = head.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = head[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(head.len());
    let mut url = format!("{}/{}", &head[..path_start], name);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// A running server. Killed when dropped.
pub struct Server {
    pub base: String,
    /// The administrator token printed at first start (empty if the database had users).
    pub admin: String,
    /// The one-time link to set the administrator's password, printed while no administrator
    /// has one (empty otherwise).
    pub setup_link: String,
    child: Child,
    pub http: reqwest::Client,
}

impl Server {
    pub fn start(db: &Db) -> Self {
        Self::start_with(db, &[])
    }

    pub fn start_with(db: &Db, extra: &[&str]) -> Self {
        Self::start_on(db, &processes_dir(), extra)
    }

    /// Start on another standard library than `processes/` (a new release of it, say).
    pub fn start_on(db: &Db, processes: &Path, extra: &[&str]) -> Self {
        // Another build of the server may be named (the queue page benchmark compares one
        // from before a change).
        let bin = std::env::var_os("ITSMFLOW_SERVER_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_itsmflow").into());
        let mut child = Command::new(bin)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(["--database-url", &db.url()])
            .arg("--processes")
            .arg(processes)
            .args(extra)
            .env("ITSMFLOW_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start itsmflow serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut base = None;
        let mut admin = String::new();
        let mut setup_link = String::new();
        while base.is_none() || admin.is_empty() || setup_link.is_empty() {
            let wait = if base.is_none() {
                Duration::from_secs(60)
            } else {
                Duration::from_millis(300)
            };
            match rx.recv_timeout(wait) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("itsmflow listening on ") {
                        base = Some(addr.trim().to_string());
                    } else if let Some((_, token)) = line.split_once("keep it safe): ") {
                        admin = token.trim().to_string();
                    } else if let Some((_, link)) = line.split_once("within 24 hours): ") {
                        setup_link = link.trim().to_string();
                    }
                }
                Err(_) if base.is_some() => break,
                Err(_) => panic!("the server did not start"),
            }
        }
        Server {
            base: base.expect("address"),
            admin,
            setup_link,
            child,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
        }
    }

    /// Stop the server as an operator would (SIGTERM), and wait for it to exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        }
        let status = self.child.wait().expect("wait");
        std::mem::forget(self);
        status
    }

    /// Kill the server outright (SIGKILL: no shutdown, nothing flushed), as a crash would, and
    /// wait until it is gone.
    pub fn kill(self) {
        // Dropping it does exactly that (`Child::kill` sends SIGKILL).
        drop(self);
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Json>,
    ) -> (StatusCode, Json) {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let json = if text.is_empty() {
            Json::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Json::String(text))
        };
        (status, json)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Json) {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Json) -> (StatusCode, Json) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Create the tenant `ops` (with its administrator `root`) and publish `text` as its
    /// project, file `name`; returns root's token.
    pub async fn ops_tenant(&self, name: &str, text: &str) -> String {
        let (s, ops) = self
            .post(
                "/v1/tenants",
                &self.admin,
                json!({"name": "ops", "admin": "root"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{ops}");
        let root = ops["secret"].as_str().expect("secret").to_string();
        self.publish(&root, name, text).await;
        root
    }

    /// Publish `text` as the caller's tenant's project, file `name`.
    pub async fn publish(&self, token: &str, name: &str, text: &str) {
        let (s, b) = self
            .post(
                "/v1/definitions",
                token,
                json!({"files": [{"name": name, "text": text}]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }

    /// Create a user with roles and return a token for them.
    pub async fn user(&self, admin: &str, name: &str, roles: &[&str]) -> String {
        let (s, b) = self
            .post("/v1/users", admin, json!({ "name": name, "roles": roles }))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let (s, b) = self
            .post(&format!("/v1/users/{name}/tokens"), admin, json!({}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["secret"].as_str().expect("secret").to_string()
    }

    /// Raise an incident, with the token's user as its caller, and log it, so it waits in a
    /// queue; returns the instance.
    pub async fn incident(&self, token: &str, title: &str) -> Json {
        let (s, me) = self.get("/v1/me", token).await;
        assert_eq!(s, StatusCode::OK, "{me}");
        let (s, b) = self
            .post(
                "/v1/instances",
                token,
                json!({
                    "process": "incident",
                    "fields": {
                        "title": title,
                        "caller": me["user"],
                        "service": "email",
                        "category": "software",
                        "impact": "medium",
                        "urgency": "medium",
                    }
                }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let id = b["id"].as_i64().expect("id");
        let (s, b) = self
            .post(&format!("/v1/instances/{id}/actions/log"), token, json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A webhook receiver: remembers every body posted to it.
pub async fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Json>>>) {
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Json>| {
            let store = store.clone();
            async move {
                store.lock().unwrap().push(body);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}
