//! A small agent that works a queue over the HTTP API: it claims the next task, decides what
//! to do from the ticket's stage, completes the task under its claim, and stops when the queue
//! has nothing left to claim.
//!
//! ```sh
//! itsmflow serve &                                   # prints an administrator token
//! export ITSMFLOW_URL=http://127.0.0.1:8080 ITSMFLOW_TOKEN=itsm_...   # an agent's token
//! cargo run --example queue_agent -- service_desk
//! ```
//!
//! What it shows: a claim is a lease with a fencing token, and completing presents the token,
//! so two agents never complete the same task; a refusal comes back as problem+json saying why
//! (a required field, a role), and the agent gives the task back instead of holding it.

use reqwest::StatusCode;
use serde_json::{json, Value};

/// What the agent does in each stage it knows; other stages it releases to a person.
fn decide(stage: &str) -> Option<(&'static str, Value)> {
    match stage {
        "triage" => Some(("accept", json!({}))),
        "working" => Some((
            "resolve",
            json!({"resolution": "Handled by the example queue agent"}),
        )),
        _ => None,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::var("ITSMFLOW_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let token =
        std::env::var("ITSMFLOW_TOKEN").map_err(|_| "set ITSMFLOW_TOKEN to an agent's token")?;
    let queue = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "service_desk".into());
    let http = reqwest::Client::new();
    let mut done = 0;
    loop {
        let claim = http
            .post(format!("{base}/v1/queues/{queue}/claim"))
            .bearer_auth(&token)
            .json(&json!({"lease_seconds": 120}))
            .send()
            .await?;
        if claim.status() == StatusCode::NO_CONTENT {
            println!("{queue}: nothing left to claim; completed {done} tasks");
            return Ok(());
        }
        let task: Value = problem_or(claim).await?;
        let (task_id, fence, instance) = (&task["id"], &task["token"], &task["instance"]);
        let stage = task["stage"].as_str().unwrap_or_default();
        let Some((action, fields)) = decide(stage) else {
            println!("task {task_id}: stage {stage} needs a person; releasing it");
            release(&http, &base, &token, task_id, fence).await?;
            continue;
        };
        let completed = http
            .post(format!("{base}/v1/tasks/{task_id}/complete"))
            .bearer_auth(&token)
            .json(&json!({"token": fence, "action": action, "fields": fields}))
            .send()
            .await?;
        if completed.status().is_success() {
            let ticket: Value = completed.json().await?;
            println!(
                "ticket {instance}: {action} -> {}",
                ticket["stage"].as_str().unwrap_or("?")
            );
            done += 1;
        } else {
            let problem: Value = completed.json().await.unwrap_or(Value::Null);
            println!("ticket {instance}: {action} refused: {}", problem["detail"]);
            release(&http, &base, &token, task_id, fence).await?;
            // A refusal will not change by trying again at once: stop rather than spin.
            return Ok(());
        }
    }
}

async fn release(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    task: &Value,
    fence: &Value,
) -> Result<(), Box<dyn std::error::Error>> {
    http.post(format!("{base}/v1/tasks/{task}/release"))
        .bearer_auth(token)
        .json(&json!({"token": fence}))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// The JSON body of a success, or the problem's detail as an error.
async fn problem_or(response: reqwest::Response) -> Result<Value, Box<dyn std::error::Error>> {
    let status = response.status();
    let body: Value = response.json().await?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("{status}: {}", body["detail"]).into())
    }
}
