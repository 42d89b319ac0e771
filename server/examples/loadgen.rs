//! HTTP load generator for `itsmflow serve`.
//!
//! What it measures: N concurrent agents, each in a loop over HTTP, run one incident's whole
//! life through the service desk:
//!
//! 1. `POST /v1/instances` — raise an incident (software, medium impact and urgency, so it is
//!    routed to the `service_desk` queue);
//! 2. `POST /v1/instances/{id}/actions/log` — it now waits in `service_desk`;
//! 3. `POST /v1/queues/service_desk/claim` — take the next task (200), or nothing (204);
//! 4. `POST /v1/tasks/{id}/complete` with the action `cancel` — which ends the incident, so no
//!    follow-up task is left behind.
//!
//! For each operation it reports the successful requests, their throughput and p50/p99
//! latency, and errors (any non-2xx answer or transport failure) by status. A *lifecycle* is
//! one completed create→log→claim→complete.
//!
//! Because the absolute numbers depend mostly on the machine (and here the load generator
//! shares its CPUs with the server), each run first measures a baseline: the same agents
//! hammering `GET /healthz`, which touches neither authentication nor the database. Every
//! operation's p50 and p99 are then also given as multiples of the healthz p50: that ratio is
//! what to compare between machines and commits. Before the baseline, a short warm-up runs
//! the workload without counting it (connections opened, caches and database pages warm).
//!
//! By default it starts its own server for each database, on a fresh temporary SQLite file
//! and/or a fresh PostgreSQL database (created, and dropped at the end), and creates the agent
//! users and their tokens through the API. It runs the server binary built next to this
//! example, so build both first:
//!
//! ```text
//! cargo build --release -p itsmflow
//! cargo run --release -p itsmflow --example loadgen -- \
//!     [--database sqlite|postgres|both] [--postgres-url URL] [--agents 32] [--seconds 20]
//!     [--url http://HOST:PORT --token ADMIN_TOKEN]
//! ```
//!
//! `--postgres-url` names any database on the PostgreSQL server to use (default: the
//! environment variable `ITSMFLOW_BENCH_POSTGRES`, else the local server's socket); the run's
//! own database is created beside it. `--url` and `--token` (an administrator's) measure a
//! server already running instead; agent users named `loadgen-<pid>-<n>` are added to it.
//!
//! To compare two builds on a shared machine, run them back to back, both databases in each run
//! (PostgreSQL's lifecycles/s over SQLite's in the same run is the ratio to compare), and
//! `loadgen-cpu.sh` beside this file, which gives the CPU time a lifecycle costs the server and
//! its PostgreSQL backends: that moves far less with the machine's other load than latency.
//!
//! Ctrl-C stops the agents after their current lifecycle, reports what was measured and
//! cleans up; a second Ctrl-C exits at once. The exit status is 1 if any request failed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{json, Value as Json};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = Error> = std::result::Result<T, E>;

/// The queue incidents of this shape are routed to (see `processes/incident.itsm`).
const QUEUE: &str = "service_desk";
/// Error bodies printed per database: enough to see what went wrong, not a flood.
const ERROR_SAMPLES: usize = 5;
/// How long a freshly started server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Parser, Debug)]
#[command(about = "HTTP load generator for `itsmflow serve`")]
struct Args {
    /// Which database(s) to start a server on (ignored with --url).
    #[arg(long, value_enum, default_value = "both")]
    database: Which,
    /// Any database on the PostgreSQL server; the run's own database is created beside it.
    #[arg(
        long,
        env = "ITSMFLOW_BENCH_POSTGRES",
        default_value = "postgres:///postgres?host=/var/run/postgresql"
    )]
    postgres_url: String,
    /// Concurrent agents.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    agents: u32,
    /// Seconds of measured workload per database.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    seconds: u64,
    /// Seconds of healthz baseline per database.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    baseline_seconds: u64,
    /// Seconds of uncounted warm-up workload per database.
    #[arg(long, default_value_t = 2)]
    warmup_seconds: u64,
    /// Measure an already running server at this base URL instead of starting one.
    #[arg(long, requires = "token")]
    url: Option<String>,
    /// An administrator token of the server given by --url.
    #[arg(long, requires = "url")]
    token: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Which {
    Sqlite,
    Postgres,
    Both,
}

/// One server to measure.
enum Target {
    Sqlite,
    Postgres { base_url: String },
    External { url: String, token: String },
}

impl Target {
    fn label(&self) -> String {
        match self {
            Target::Sqlite => "sqlite".into(),
            Target::Postgres { .. } => "postgres".into(),
            Target::External { url, .. } => url.clone(),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let stop = install_ctrl_c();
    let mut failed = false;
    for target in targets(&args) {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        println!("\n=== {} ===", target.label());
        match measure(&args, &target, &stop).await {
            Ok(report) => {
                report.print();
                failed |= report.errors() > 0;
            }
            Err(e) => {
                eprintln!("loadgen: {}: {e}", target.label());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn targets(args: &Args) -> Vec<Target> {
    if let (Some(url), Some(token)) = (&args.url, &args.token) {
        return vec![Target::External {
            url: url.trim_end_matches('/').to_string(),
            token: token.clone(),
        }];
    }
    let postgres = || Target::Postgres {
        base_url: args.postgres_url.clone(),
    };
    match args.database {
        Which::Sqlite => vec![Target::Sqlite],
        Which::Postgres => vec![postgres()],
        Which::Both => vec![Target::Sqlite, postgres()],
    }
}

/// The first Ctrl-C asks the agents to stop after their current lifecycle, so the run still
/// reports and cleans up (drops its database, stops its server); a second one gives up.
fn install_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return; // No signal handling here: Ctrl-C keeps its default effect.
        }
        eprintln!("\nloadgen: stopping after the current lifecycles (Ctrl-C again to quit now)");
        flag.store(true, Ordering::Relaxed);
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(130);
    });
    stop
}

// ---------------------------------------------------------------------------------------------
// Setting up and tearing down a target
// ---------------------------------------------------------------------------------------------

/// Start what the target needs, run the phases, and always clean up, even when a phase failed.
async fn measure(args: &Args, target: &Target, stop: &Arc<AtomicBool>) -> Result<Report> {
    match target {
        Target::External { url, token } => run_phases(args, url, token, stop).await,
        Target::Sqlite => {
            let bin = server_binary()?;
            // Dropped (deleted) at the end of this arm, after the server has stopped.
            let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
            let url = format!("sqlite://{}", dir.path().join("itsmflow.db").display());
            with_server(args, &bin, &url, stop).await
        }
        Target::Postgres { base_url } => {
            // Looked for first, so a missing server leaves no database behind.
            let bin = server_binary()?;
            let scratch = PgScratch::create(base_url).await?;
            let result = with_server(args, &bin, &scratch.url, stop).await;
            // The server has stopped by now, but dropping forcibly costs nothing and copes
            // with a server that would not exit.
            if let Err(e) = scratch.drop_database().await {
                eprintln!("loadgen: {e}");
            }
            result
        }
    }
}

async fn with_server(
    args: &Args,
    bin: &Path,
    database_url: &str,
    stop: &Arc<AtomicBool>,
) -> Result<Report> {
    let server = ServerProcess::start(bin, database_url)?;
    let result = run_phases(args, &server.base, &server.admin, stop).await;
    // Stopping waits on the process, which is blocking work.
    tokio::task::block_in_place(|| server.stop());
    result
}

/// The `itsmflow` binary beside this example (`target/release/examples/loadgen` →
/// `target/release/itsmflow`): cargo does not build a package's binaries for its examples,
/// nor tell examples where they are.
fn server_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate loadgen itself: {e}"))?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join(format!("itsmflow{}", std::env::consts::EXE_SUFFIX)))
        .ok_or("cannot locate the target directory from loadgen's path")?;
    if !bin.is_file() {
        return Err(format!(
            "no server binary at {} (it is looked for beside this example's directory); \
             run `cargo build --release -p itsmflow` first",
            bin.display()
        )
        .into());
    }
    Ok(bin)
}

fn processes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../processes")
}

/// A running `itsmflow serve`, killed if dropped without `stop`.
struct ServerProcess {
    base: String,
    admin: String,
    child: Child,
}

impl ServerProcess {
    fn start(bin: &Path, database_url: &str) -> Result<Self> {
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(["--database-url", database_url])
            .arg("--processes")
            .arg(processes_dir())
            // Per-request logging would cost the server CPU that the measurement wants.
            .env("ITSMFLOW_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // Its own process group, so a Ctrl-C at the terminal reaches only loadgen, which then
        // finishes the run against a server still up, and stops it afterwards.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let lines = stdout_lines(&mut child);
        match read_banner(&lines) {
            Ok((base, admin)) => Ok(ServerProcess { base, admin, child }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// Stop as an operator would (SIGTERM, so it closes its database connections), and give up
    /// waiting after a while.
    fn stop(mut self) {
        #[cfg(unix)]
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("loadgen: the server did not stop within 10 s; killing it");
        // Drop kills it.
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The child's stdout, line by line, read on a thread so waiting for it can time out. The
/// thread keeps draining until the server exits, so it never blocks on a full pipe.
fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

/// The address and the administrator token the server prints on its first start.
fn read_banner(lines: &mpsc::Receiver<String>) -> Result<(String, String)> {
    let mut base = None;
    loop {
        // The token line follows the address in the same write; once the address is in, a
        // short wait suffices.
        let wait = if base.is_none() {
            START_TIMEOUT
        } else {
            Duration::from_secs(5)
        };
        let line = match lines.recv_timeout(wait) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err("the server exited during start; see its messages above".into())
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(match base {
                    None => format!("the server printed no address within {START_TIMEOUT:?}"),
                    Some(_) => "the server printed no administrator token (is the database \
                                really fresh?)"
                        .to_string(),
                }
                .into())
            }
        };
        if let Some(addr) = line.strip_prefix("itsmflow listening on ") {
            base = Some(addr.trim().to_string());
        } else if let Some((_, token)) = line.split_once("keep it safe): ") {
            if let Some(base) = base {
                return Ok((base, token.trim().to_string()));
            }
        }
    }
}

/// A PostgreSQL database of this run's own, beside the one `base_url` names.
struct PgScratch {
    base_url: String,
    name: String,
    url: String,
}

impl PgScratch {
    async fn create(base_url: &str) -> Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!("itsmflow_loadgen_{}_{nanos}", std::process::id());
        let admin = pg_connect(base_url).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .map_err(|e| format!("cannot create database {name}: {e}"))?;
        admin.close().await;
        Ok(PgScratch {
            url: with_database(base_url, &name),
            base_url: base_url.to_string(),
            name,
        })
    }

    /// `WITH (FORCE)` (PostgreSQL 13+) so connections a killed server left behind do not keep
    /// the database alive.
    async fn drop_database(self) -> Result<()> {
        let admin = pg_connect(&self.base_url).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&admin)
        .await
        .map_err(|e| format!("cannot drop database {}: {e}", self.name))?;
        admin.close().await;
        Ok(())
    }
}

async fn pg_connect(url: &str) -> Result<sqlx::PgPool> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL at {url}: {e}").into())
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

// ---------------------------------------------------------------------------------------------
// The run: agents, warm-up, baseline, workload
// ---------------------------------------------------------------------------------------------

/// What one agent needs to talk to the server.
#[derive(Clone)]
struct Agent {
    http: Client,
    base: Arc<str>,
    token: Arc<str>,
    /// Makes incident titles unique across agents, for anyone reading the database later.
    name: Arc<str>,
}

async fn run_phases(
    args: &Args,
    base: &str,
    admin: &str,
    stop: &Arc<AtomicBool>,
) -> Result<Report> {
    let http = client(args.agents)?;
    let agents = create_agents(&http, base, admin, args.agents).await?;
    println!(
        "{} agents; warm-up {} s, healthz baseline {} s, workload {} s",
        args.agents, args.warmup_seconds, args.baseline_seconds, args.seconds
    );
    if args.warmup_seconds > 0 {
        // Counted nowhere, but its errors would show a broken setup early, so look at them.
        let warm = run_phase(&agents, secs(args.warmup_seconds), stop, Phase::Workload).await;
        if warm.tally.errors() > 0 {
            eprintln!("loadgen: the warm-up had errors:");
            warm.tally.print_errors();
        }
    }
    let baseline = run_phase(&agents, secs(args.baseline_seconds), stop, Phase::Healthz).await;
    let workload = run_phase(&agents, secs(args.seconds), stop, Phase::Workload).await;
    Ok(Report {
        baseline,
        workload,
        interrupted: stop.load(Ordering::Relaxed),
    })
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// One connection per agent, kept alive: the pool must hold as many idle connections as there
/// are agents, or every burst would pay for new ones.
fn client(agents: u32) -> Result<Client> {
    Client::builder()
        .pool_max_idle_per_host(agents as usize)
        .tcp_nodelay(true)
        // Longer than the server's own 30 s request limit, so its 503 is what we see.
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}").into())
}

/// Users with the role `agent`, each with a token, through the API as the administrator.
/// Names carry the process id so runs against one long-lived server do not collide.
async fn create_agents(http: &Client, base: &str, admin: &str, n: u32) -> Result<Vec<Agent>> {
    let mut agents = Vec::with_capacity(n as usize);
    for i in 0..n {
        let name = format!("loadgen-{}-{i}", std::process::id());
        let user = json!({ "name": name, "roles": ["agent"] });
        setup_call(http.post(format!("{base}/v1/users")), admin, &user).await?;
        let token = setup_call(
            http.post(format!("{base}/v1/users/{name}/tokens")),
            admin,
            &json!({}),
        )
        .await?;
        let secret = token["secret"]
            .as_str()
            .ok_or_else(|| format!("the token answer has no `secret`: {token}"))?;
        agents.push(Agent {
            http: http.clone(),
            base: base.into(),
            token: secret.into(),
            name: name.into(),
        });
    }
    Ok(agents)
}

/// A setup request, which must succeed for the run to mean anything.
async fn setup_call(req: RequestBuilder, token: &str, body: &Json) -> Result<Json> {
    let resp = req
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("setup request failed: {e}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("setup request answered {status}: {text}").into());
    }
    serde_json::from_str(&text)
        .map_err(|e| format!("setup answer is not JSON ({e}): {text}").into())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Healthz,
    Create,
    Log,
    Claim,
    Complete,
}

impl Op {
    const ALL: [Op; 5] = [Op::Healthz, Op::Create, Op::Log, Op::Claim, Op::Complete];

    fn name(self) -> &'static str {
        match self {
            Op::Healthz => "healthz",
            Op::Create => "create",
            Op::Log => "log",
            Op::Claim => "claim",
            Op::Complete => "complete",
        }
    }
}

#[derive(Clone, Copy)]
enum Phase {
    Healthz,
    Workload,
}

/// What a phase measured, all agents merged.
struct PhaseResult {
    tally: Tally,
    /// From the start until the last agent finished its last lifecycle (agents stop at the
    /// deadline only between lifecycles, so this is slightly longer than asked).
    elapsed: Duration,
}

async fn run_phase(
    agents: &[Agent],
    length: Duration,
    stop: &Arc<AtomicBool>,
    phase: Phase,
) -> PhaseResult {
    let started = Instant::now();
    let deadline = started + length;
    let tasks: Vec<_> = agents
        .iter()
        .cloned()
        .map(|agent| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut n = 0u64;
                while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                    match phase {
                        Phase::Healthz => healthz(&agent, &mut tally).await,
                        Phase::Workload => lifecycle(&agent, n, &mut tally).await,
                    }
                    n += 1;
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        // An agent only panics on a bug in this file; losing its numbers silently would hide it.
        total.merge(task.await.expect("an agent task panicked"));
    }
    PhaseResult {
        tally: total,
        elapsed: started.elapsed(),
    }
}

async fn healthz(agent: &Agent, tally: &mut Tally) {
    let req = agent.http.get(format!("{}/healthz", agent.base));
    tally.timed(Op::Healthz, req).await;
}

/// One incident from creation to cancellation. A failed step abandons the rest: later steps
/// would only fail for the same reason and muddle the error counts.
async fn lifecycle(agent: &Agent, n: u64, tally: &mut Tally) {
    let Some(id) = create(agent, n, tally).await else {
        return;
    };
    let log = agent.post(&format!("/v1/instances/{id}/actions/log"), &json!({}));
    if tally.timed(Op::Log, log).await.is_none() {
        return;
    }
    // The task claimed is whichever is first in the queue, often another agent's incident;
    // every agent adds one task before claiming one, so the queue is rarely empty.
    let claim = agent.post(
        &format!("/v1/queues/{QUEUE}/claim"),
        &json!({ "lease_seconds": 60 }),
    );
    let Some((status, body)) = tally.timed(Op::Claim, claim).await else {
        return;
    };
    if status == StatusCode::NO_CONTENT {
        tally.empty_claims += 1;
        return;
    }
    let Some((task, token)) = tally.parse(Op::Claim, &body, |b| {
        Some((b["id"].as_i64()?, b["token"].as_i64()?))
    }) else {
        return;
    };
    let complete = agent.post(
        &format!("/v1/tasks/{task}/complete"),
        &json!({ "token": token, "action": "cancel" }),
    );
    if tally.timed(Op::Complete, complete).await.is_some() {
        tally.lifecycles += 1;
    }
}

async fn create(agent: &Agent, n: u64, tally: &mut Tally) -> Option<i64> {
    let body = json!({
        "process": "incident",
        "fields": {
            "title": format!("Load test {} #{n}", agent.name),
            "caller": agent.name,
            "service": "email",
            "category": "software",
            "impact": "medium",
            "urgency": "medium",
        }
    });
    let (_, answer) = tally
        .timed(Op::Create, agent.post("/v1/instances", &body))
        .await?;
    tally.parse(Op::Create, &answer, |b| b["id"].as_i64())
}

impl Agent {
    fn post(&self, path: &str, body: &Json) -> RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&*self.token)
            .json(body)
    }
}

// ---------------------------------------------------------------------------------------------
// Counting
// ---------------------------------------------------------------------------------------------

/// Latencies and errors. Each agent keeps its own (no locking on the hot path); they are merged
/// at the end of a phase. Plain sorted vectors rather than a histogram: a run makes at most a
/// few hundred thousand requests, which sort in milliseconds.
#[derive(Default)]
struct Tally {
    latencies: BTreeMap<Op, Vec<Duration>>,
    /// Failed requests by operation and status (or kind of transport failure).
    failures: BTreeMap<(Op, String), u64>,
    /// The first few error answers, to print.
    samples: Vec<String>,
    /// Claims answered 204: not errors, but worth knowing about.
    empty_claims: u64,
    lifecycles: u64,
}

impl Tally {
    /// Send the request and time it until the whole answer is read. Successful answers (2xx)
    /// are timed and returned; anything else is counted as an error and gives `None`.
    async fn timed(&mut self, op: Op, req: RequestBuilder) -> Option<(StatusCode, String)> {
        let started = Instant::now();
        let answer = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                resp.text().await.map(|text| (status, text))
            }
            Err(e) => Err(e),
        };
        let took = started.elapsed();
        match answer {
            Ok((status, text)) if status.is_success() => {
                self.latencies.entry(op).or_default().push(took);
                Some((status, text))
            }
            Ok((status, text)) => {
                self.fail(op, status.as_u16().to_string(), format!("{status}: {text}"));
                None
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "transport"
                };
                self.fail(op, kind.to_string(), e.to_string());
                None
            }
        }
    }

    /// Read what the step needs from a successful answer; an answer without it is an error.
    fn parse<T>(&mut self, op: Op, body: &str, read: impl FnOnce(&Json) -> Option<T>) -> Option<T> {
        let value = serde_json::from_str::<Json>(body).ok();
        let found = value.as_ref().and_then(read);
        if found.is_none() {
            self.fail(
                op,
                "bad answer".into(),
                format!("unexpected answer: {body}"),
            );
        }
        found
    }

    fn fail(&mut self, op: Op, kind: String, sample: String) {
        *self.failures.entry((op, kind)).or_default() += 1;
        if self.samples.len() < ERROR_SAMPLES {
            self.samples.push(format!("{}: {sample}", op.name()));
        }
    }

    fn merge(&mut self, other: Tally) {
        for (op, mut l) in other.latencies {
            self.latencies.entry(op).or_default().append(&mut l);
        }
        for (key, n) in other.failures {
            *self.failures.entry(key).or_default() += n;
        }
        let room = ERROR_SAMPLES.saturating_sub(self.samples.len());
        self.samples.extend(other.samples.into_iter().take(room));
        self.empty_claims += other.empty_claims;
        self.lifecycles += other.lifecycles;
    }

    fn errors(&self) -> u64 {
        self.failures.values().sum()
    }

    fn errors_of(&self, op: Op) -> u64 {
        self.failures
            .iter()
            .filter(|((o, _), _)| *o == op)
            .map(|(_, n)| n)
            .sum()
    }

    fn print_errors(&self) {
        for ((op, kind), n) in &self.failures {
            println!("  {} {kind}: {n}", op.name());
        }
        for s in &self.samples {
            println!("  e.g. {}", truncate(s, 300));
        }
    }

    /// The op's latencies, sorted.
    fn sorted(&self, op: Op) -> Vec<Duration> {
        let mut l = self.latencies.get(&op).cloned().unwrap_or_default();
        l.sort_unstable();
        l
    }
}

/// The `p`-quantile (0..=1) of sorted samples, by the nearest-rank method.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------------

struct Report {
    baseline: PhaseResult,
    workload: PhaseResult,
    interrupted: bool,
}

/// One line of the table.
struct Row {
    op: Op,
    count: usize,
    per_second: f64,
    p50: Option<Duration>,
    p99: Option<Duration>,
    errors: u64,
}

impl Report {
    fn errors(&self) -> u64 {
        self.baseline.tally.errors() + self.workload.tally.errors()
    }

    fn row(&self, op: Op) -> Row {
        let phase = if op == Op::Healthz {
            &self.baseline
        } else {
            &self.workload
        };
        let sorted = phase.tally.sorted(op);
        Row {
            op,
            count: sorted.len(),
            per_second: rate(sorted.len() as u64, phase.elapsed),
            p50: percentile(&sorted, 0.50),
            p99: percentile(&sorted, 0.99),
            errors: phase.tally.errors_of(op),
        }
    }

    fn print(&self) {
        if self.interrupted {
            println!("(interrupted: the numbers cover only the part that ran)");
        }
        let rows: Vec<Row> = Op::ALL.iter().map(|op| self.row(*op)).collect();
        // Everything is expressed in units of the no-work request's median: the cost of HTTP,
        // routing and the machine, so what is left is the cost of the operation itself.
        let unit = rows[0].p50;
        println!(
            "{:<10} {:>8} {:>9} {:>8} {:>8} {:>10} {:>10} {:>7}",
            "op", "count", "ops/s", "p50 ms", "p99 ms", "p50/hz50", "p99/hz50", "errors"
        );
        for row in &rows {
            println!(
                "{:<10} {:>8} {:>9.0} {:>8} {:>8} {:>10} {:>10} {:>7}",
                row.op.name(),
                row.count,
                row.per_second,
                millis(row.p50),
                millis(row.p99),
                ratio(row.p50, unit),
                ratio(row.p99, unit),
                row.errors
            );
        }
        let w = &self.workload;
        println!(
            "lifecycles/s: {:.1}  ({} completed create→log→claim→complete in {:.1} s)",
            rate(w.tally.lifecycles, w.elapsed),
            w.tally.lifecycles,
            w.elapsed.as_secs_f64()
        );
        if w.tally.empty_claims > 0 {
            println!(
                "claims answered 204 (queue empty): {}",
                w.tally.empty_claims
            );
        }
        for phase in [&self.baseline, &self.workload] {
            if phase.tally.errors() > 0 {
                println!("errors:");
                phase.tally.print_errors();
            }
        }
    }
}

fn rate(n: u64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s > 0.0 {
        n as f64 / s
    } else {
        0.0
    }
}

fn millis(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.2}", d.as_secs_f64() * 1e3))
        .unwrap_or_else(|| "-".into())
}

fn ratio(d: Option<Duration>, unit: Option<Duration>) -> String {
    match (d, unit) {
        (Some(d), Some(u)) if !u.is_zero() => format!("{:.1}x", d.as_secs_f64() / u.as_secs_f64()),
        _ => "-".into(),
    }
}
