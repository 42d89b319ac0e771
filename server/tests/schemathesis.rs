//! An OpenAPI fuzzer against a live server: Schemathesis reads the document the server serves
//! (`/openapi.json`), generates requests from it (valid ones and ones that break its
//! constraints) and checks every answer: no server error, a status and a content type the
//! document lists for the operation, and a body that matches its schema.
//!
//! Schemathesis is a Python tool; `.ci/run` installs the pinned version into
//! `target/schemathesis-<version>/` (or name another with `ITSMFLOW_SCHEMATHESIS`). In CI
//! (`CI` set) a missing Schemathesis fails this test; elsewhere the test says so and passes.
//!
//! The run is bounded (examples per operation and phase, a fixed seed) so that it takes a
//! minute or two; raise `ITSMFLOW_FUZZ_EXAMPLES` to search harder.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Db, Server};

/// The version `.ci/run` installs.
const VERSION: &str = "4.32.5";

/// Examples generated per operation and phase, unless `ITSMFLOW_FUZZ_EXAMPLES` says otherwise.
const EXAMPLES: u32 = 100;

/// The same seed every run, so a failure reproduces.
const SEED: &str = "20261207";

/// What every answer is checked for.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance";

/// The longest one run may take (a fuzzer that hangs on a request fails the test).
const LIMIT: Duration = Duration::from_secs(300);

/// The run's output, once it has ended; killed (and the test failed) past `limit`.
fn finish_within(mut child: Child, limit: Duration) -> Output {
    let started = Instant::now();
    // Read the output as it comes, so a full pipe never stalls the run.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut text).map(|_| text)
    });
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut text).map(|_| text)
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for schemathesis") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("Schemathesis ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader").unwrap_or_default(),
        stderr: err.join().expect("stderr reader").unwrap_or_default(),
    }
}

fn schemathesis() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ITSMFLOW_SCHEMATHESIS") {
        return Some(PathBuf::from(path));
    }
    let installed = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(format!("schemathesis-{VERSION}/bin/schemathesis"));
    installed.exists().then_some(installed)
}

/// Run Schemathesis on the server's document with `filters`; the output if it found a
/// problem.
fn fuzz(tool: &PathBuf, s: &Server, token: &str, filters: &[&str]) -> Result<(), String> {
    let examples = std::env::var("ITSMFLOW_FUZZ_EXAMPLES").unwrap_or(EXAMPLES.to_string());
    let scratch = tempfile::tempdir().expect("temp dir");
    let child = Command::new(tool)
        .arg("run")
        .arg(format!("{}/openapi.json", s.base))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", CHECKS])
        .args(["--max-examples", &examples])
        .args(["--seed", SEED])
        // One worker: with two, Python 3.11's `ast` module (which Hypothesis uses to describe
        // its strategies) sometimes fails across threads ("AST constructor recursion depth
        // mismatch"), a crash of the tool that is no finding about the server.
        .args(["--workers", "1"])
        .args(["--request-timeout", "20"])
        .args(["--generation-database", "none"])
        .arg("--no-color")
        .args(filters)
        // Schemathesis writes nothing else, but keep the crate's directory clean regardless.
        .current_dir(scratch.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run schemathesis");
    let out = finish_within(child, LIMIT);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        // The summary, for the test's output (`--nocapture`).
        let summary = text
            .lines()
            .skip_while(|l| !l.contains("SUMMARY"))
            .collect::<Vec<_>>()
            .join("\n");
        println!("{summary}");
        Ok(())
    } else {
        Err(text)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fuzzer_finds_no_server_error_and_no_schema_violation() {
    let Some(tool) = schemathesis() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "Schemathesis {VERSION} is not installed (.ci/run installs it into target/)"
        );
        eprintln!(
            "note: Schemathesis is not installed, so the API was not fuzzed; `.ci/run` \
             installs it (python3 -m venv target/schemathesis-{VERSION} && \
             target/schemathesis-{VERSION}/bin/pip install schemathesis=={VERSION})"
        );
        return;
    };
    let db = Db::sqlite();
    let s = Server::start(&db);

    // Something for the fuzzer to find: a ticket in a queue (instance 1, task 1), a second
    // one, and a user besides the administrator.
    s.incident(&s.admin, "printer on fire").await;
    s.incident(&s.admin, "mail is down").await;
    let (st, body) = s
        .post(
            "/v1/users",
            &s.admin,
            json!({ "name": "alice", "roles": ["agent"] }),
        )
        .await;
    assert!(st.is_success(), "{st} {body}");

    // The event streams stay open until the client leaves, which a fuzzer's request never
    // does; their events are checked by the tests of each stream. Revoking tokens would
    // revoke the fuzzer's own (id 1) halfway, so it runs last, on its own.
    let main = fuzz(
        &tool,
        &s,
        &s.admin,
        &[
            "--exclude-path-regex",
            "/events$",
            "--exclude-operation-id",
            "revokeToken",
        ],
    );
    let revoke = fuzz(
        &tool,
        &s,
        &s.admin,
        &["--include-operation-id", "revokeToken"],
    );
    if let Err(report) = main.and(revoke) {
        panic!("Schemathesis found problems:\n{report}");
    }
}
