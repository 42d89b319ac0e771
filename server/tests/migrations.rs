//! One migration mechanism for the whole database: the identity tables are steps 1001 to 1999
//! of the migrator the engine uses (issue 23, item 5). A database written before that, with
//! identity's own `auth_migrations` table, is adopted on start and keeps its users and tokens;
//! a database that a newer itsmflow migrated is refused, naming the step, before anything
//! changes. On a real SQLite file and a real PostgreSQL database, through the binary.

#[macro_use]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use support::{processes_dir, Db, Server};

on_both!(
    a_database_from_before_the_one_migrator_is_adopted,
    a_database_a_newer_version_migrated_is_refused
);

/// Run statements on the test's database, as an operator's SQL shell would.
async fn sql(db: &Db, statements: &[&str]) {
    match db {
        Db::Sqlite(_) => {
            let pool = sqlx::SqlitePool::connect(&db.url()).await.expect("sqlite");
            for s in statements {
                sqlx::query(s).execute(&pool).await.expect(s);
            }
            pool.close().await;
        }
        Db::Postgres { .. } => {
            let pool = sqlx::PgPool::connect(&db.url()).await.expect("postgres");
            for s in statements {
                sqlx::query(s).execute(&pool).await.expect(s);
            }
            pool.close().await;
        }
    }
}

/// The versions recorded as applied, in order.
async fn applied_versions(db: &Db) -> Vec<i64> {
    let query = "SELECT version FROM _sqlx_migrations ORDER BY version";
    match db {
        Db::Sqlite(_) => {
            let pool = sqlx::SqlitePool::connect(&db.url()).await.expect("sqlite");
            let v = sqlx::query_scalar(query)
                .fetch_all(&pool)
                .await
                .expect(query);
            pool.close().await;
            v
        }
        Db::Postgres { .. } => {
            let pool = sqlx::PgPool::connect(&db.url()).await.expect("postgres");
            let v = sqlx::query_scalar(query)
                .fetch_all(&pool)
                .await
                .expect(query);
            pool.close().await;
            v
        }
    }
}

/// Whether a table of that name exists.
async fn has_table(db: &Db, table: &str) -> bool {
    let probe = format!("SELECT COUNT(*) FROM {table}");
    match db {
        Db::Sqlite(_) => {
            let pool = sqlx::SqlitePool::connect(&db.url()).await.expect("sqlite");
            let found = sqlx::query(&probe).execute(&pool).await.is_ok();
            pool.close().await;
            found
        }
        Db::Postgres { .. } => {
            let pool = sqlx::PgPool::connect(&db.url()).await.expect("postgres");
            let found = sqlx::query(&probe).execute(&pool).await.is_ok();
            pool.close().await;
            found
        }
    }
}

async fn a_database_from_before_the_one_migrator_is_adopted(db: Db) {
    // Written by this version first, with a user who has a manager (step 1002's column).
    let server = Server::start(&db);
    let admin = server.admin.clone();
    server.user(&admin, "mia", &["agent"]).await;
    let (s, b) = server
        .post(
            "/v1/users",
            &admin,
            json!({ "name": "ann", "roles": ["caller"], "manager": "mia", "email": "ann@example.com" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert!(server.stop().success());

    // Then made what an earlier version left: identity's steps 1 and 2 recorded in
    // `auth_migrations`, none in `_sqlx_migrations`, and the tables of later steps absent.
    sql(
        &db,
        &[
            "DROP TABLE auth_tailorings",
            "DROP TABLE auth_saved_filters",
            "DROP TABLE auth_setup_links",
            "DROP TABLE auth_sessions",
            "ALTER TABLE auth_users DROP COLUMN password_hash",
            "DELETE FROM _sqlx_migrations WHERE version > 1000",
            "CREATE TABLE auth_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            "INSERT INTO auth_migrations (version, applied_at) VALUES (1, 0), (2, 0)",
        ],
    )
    .await;
    let engine_steps: Vec<i64> = applied_versions(&db).await;
    assert!(engine_steps.iter().all(|v| *v < 1000), "{engine_steps:?}");

    // Started again: adopted, steps 3 and 4 applied, and everyone still there.
    let server = Server::start(&db);
    assert!(
        server.admin.is_empty(),
        "users were kept: no new administrator"
    );
    let (s, users) = server.get("/v1/users", &admin).await;
    assert_eq!(s, StatusCode::OK, "the old token still works: {users}");
    let ann = users["items"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["name"] == "ann"))
        .cloned()
        .unwrap_or_else(|| panic!("ann is kept: {users}"));
    assert_eq!(ann["manager"], "mia");
    assert_eq!(ann["email"], "ann@example.com");
    // Step 1003 is back: the administrator may be given a password (a setup link is printed
    // again, since none has one).
    assert!(
        !server.setup_link.is_empty(),
        "sessions and setup links exist again"
    );
    assert!(server.stop().success());

    let mut expected = engine_steps.clone();
    expected.extend([1001, 1002, 1003, 1004, 1005]);
    assert_eq!(applied_versions(&db).await, expected);
    assert!(!has_table(&db, "auth_migrations").await);
    assert!(has_table(&db, "auth_saved_filters").await);

    // And again: nothing left to adopt or apply.
    let server = Server::start(&db);
    let (s, _) = server.get("/v1/users", &admin).await;
    assert_eq!(s, StatusCode::OK);
    assert!(server.stop().success());
    assert_eq!(applied_versions(&db).await, expected);
}

/// Start the server and expect it to refuse the database: its exit status and what it said.
fn refused_start(db: &Db) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_itsmflow"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(["--database-url", &db.url()])
        .arg("--processes")
        .arg(processes_dir())
        .env("ITSMFLOW_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start itsmflow serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("output");
            assert!(!status.success(), "the server must refuse the database");
            return String::from_utf8_lossy(&out.stderr).into_owned();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server started on a database a newer version migrated");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A step recorded by a newer version: its checksum is anything, as this binary cannot know it.
fn future_step(db: &Db, version: i64) -> String {
    let checksum = match db {
        Db::Sqlite(_) => "X'00'",
        Db::Postgres { .. } => "decode('00', 'hex')",
    };
    format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ({version}, 'from a newer itsmflow', TRUE, {checksum}, 0)"
    )
}

async fn a_database_a_newer_version_migrated_is_refused(db: Db) {
    let server = Server::start(&db);
    let admin = server.admin.clone();
    let (s, _) = server.get("/v1/users", &admin).await;
    assert_eq!(s, StatusCode::OK);
    assert!(server.stop().success());
    let before = applied_versions(&db).await;

    for (version, set) in [(1099, "identity"), (998, "engine")] {
        sql(&db, &[&future_step(&db, version)]).await;
        let said = refused_start(&db);
        assert!(
            said.contains(&format!(
                "migrated by a newer itsmflow: step {version} of the {set} tables"
            )),
            "{said}"
        );
        sql(
            &db,
            &[&format!(
                "DELETE FROM _sqlx_migrations WHERE version = {version}"
            )],
        )
        .await;
        assert_eq!(applied_versions(&db).await, before, "nothing was applied");
    }

    // Without the newer steps it starts, with its data.
    let server = Server::start(&db);
    let (s, _) = server.get("/v1/users", &admin).await;
    assert_eq!(s, StatusCode::OK);
    let status = server.stop();
    assert!(status.success(), "{status:?}");
}
