//! One test's world: an engine on a fresh in-memory store and a manual clock, the users the
//! test declares, and the tickets it names. Runs the steps that act; `expect` steps are
//! [`super::expect`]'s.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use itsmflow_dsl::ast::{self, CreateTarget, LiteralKind, Refusal, SpawnEntry, TestStepKind, Wait};
use itsmflow_dsl::Sources;
use serde_json::{Map, Value as Json};

use super::StepFailure;
use crate::calendar::BusinessCalendar;
use crate::model::{CalendarRef, Project};
use crate::runtime::{
    Actor, Catalog, Clock, Engine, EngineError, InstanceId, InstanceView, ManualClock,
    StaticDirectory,
};
use crate::store::memory::MemoryStore;
use crate::store::Store;

/// How long a claim in a test holds its task: a working day, so a test that waits past it
/// sees the task back in its queue, as an agent would.
const CLAIM_LEASE: TimeDelta = TimeDelta::hours(8);

/// Rounds of firing in one `wait` at most: a process whose timers keep coming due (which the
/// checker should have refused) fails the step instead of hanging the run.
const MAX_ROUNDS_PER_WAIT: u32 = 100_000;

pub(crate) struct World {
    pub engine: Engine<MemoryStore>,
    pub clock: Arc<ManualClock>,
    pub project: Arc<Project>,
    directory: Arc<StaticDirectory>,
    /// Declared users and the roles each holds.
    pub users: BTreeMap<String, Vec<String>>,
    /// Tickets by the handle the test gave them.
    pub handles: HashMap<String, InstanceId>,
    /// The ticket created or acted on last: what a step without `on` means.
    current: Option<InstanceId>,
}

impl World {
    pub async fn open(
        sources: &Sources,
        project: Arc<Project>,
        clock: Arc<ManualClock>,
    ) -> Result<World, StepFailure> {
        let catalog = Arc::new(Catalog::default());
        let store = MemoryStore::new(catalog.clone());
        let directory = Arc::new(StaticDirectory::new());
        let engine = Engine::open(store, catalog, clock.clone())
            .await?
            .with_directory(directory.clone());
        engine.publish_checked(sources, project.clone()).await?;
        Ok(World {
            engine,
            clock,
            project,
            directory,
            users: BTreeMap::new(),
            handles: HashMap::new(),
            current: None,
        })
    }

    pub async fn step(&mut self, step: &ast::TestStep) -> Result<(), StepFailure> {
        self.act(step).await?;
        // What a step makes due now (an `at` instant already past, a delay of zero) the
        // scheduler fires at once in a server; so does a test, before its next step looks.
        let acted = !matches!(
            step.kind,
            TestStepKind::Start(_) | TestStepKind::Wait(_) | TestStepKind::Expect { .. }
        );
        if acted {
            self.advance_to(self.clock.now()).await?;
        }
        Ok(())
    }

    async fn act(&mut self, step: &ast::TestStep) -> Result<(), StepFailure> {
        match &step.kind {
            TestStepKind::Start(_) => Ok(()),
            TestStepKind::User {
                name,
                roles,
                manager,
            } => self.declare(name, roles, manager.as_ref()).await,
            TestStepKind::Create {
                target,
                handle,
                actor,
                fields,
                refused,
            } => {
                let actor = self.actor(actor)?;
                let input = field_map(fields);
                let made = match target {
                    CreateTarget::Process(p) => self.engine.create(&p.name, &input, &actor).await,
                    CreateTarget::Item(i) => self.engine.create_item(&i.name, &input, &actor).await,
                };
                let Some(view) = outcome(made, refused.as_ref())? else {
                    return Ok(());
                };
                if let Some(h) = handle {
                    self.handles.insert(h.name.clone(), view.id());
                }
                self.current = Some(view.id());
                Ok(())
            }
            TestStepKind::Perform {
                action,
                ticket,
                actor,
                fields,
                refused,
            } => {
                let id = self.ticket(ticket.as_ref())?;
                let actor = self.actor(actor)?;
                let input = field_map(fields);
                let done = self
                    .engine
                    .perform(id, &action.name, &input, None, &actor, None)
                    .await;
                self.acted(id, done, refused.as_ref())
            }
            TestStepKind::Update {
                ticket,
                actor,
                fields,
                refused,
            } => {
                let id = self.ticket(ticket.as_ref())?;
                let actor = self.actor(actor)?;
                let done = self
                    .engine
                    .update(id, &field_map(fields), None, &actor, None)
                    .await;
                self.acted(id, done, refused.as_ref())
            }
            TestStepKind::Vote {
                approve,
                ticket,
                actor,
                refused,
            } => {
                let id = self.ticket(ticket.as_ref())?;
                let actor = self.actor(actor)?;
                let done = self
                    .engine
                    .vote(id, *approve, None, None, None, &actor)
                    .await;
                self.acted(id, done, refused.as_ref())
            }
            TestStepKind::Link {
                from,
                kind,
                to,
                actor,
                refused,
            } => {
                let from = self.ticket(Some(from))?;
                let to = self.ticket(Some(to))?;
                let actor = self.actor(actor)?;
                let done = self.engine.link(from, to, &kind.name, &actor).await;
                if outcome(done, refused.as_ref())?.is_some() {
                    self.current = Some(from);
                }
                Ok(())
            }
            TestStepKind::Check {
                item,
                done,
                ticket,
                actor,
                refused,
            } => {
                let id = self.ticket(ticket.as_ref())?;
                let actor = self.actor(actor)?;
                let ticked = self
                    .engine
                    .check_item(id, &item.name, *done, None, &actor)
                    .await;
                self.acted(id, ticked, refused.as_ref())
            }
            TestStepKind::Claim {
                release,
                ticket,
                actor,
                refused,
            } => {
                let id = self.ticket(ticket.as_ref())?;
                let actor = self.actor(actor)?;
                let done = self.claim(id, *release, &actor).await;
                if outcome(done, refused.as_ref())?.is_some() {
                    self.current = Some(id);
                }
                Ok(())
            }
            TestStepKind::Wait(wait) => {
                let to = self.wait_until(wait).await?;
                self.advance_to(to).await
            }
            TestStepKind::Expect {
                ticket,
                negated,
                expectation,
            } => {
                let id = self.ticket(ticket.as_ref())?;
                super::expect::check(self, id, *negated, expectation).await
            }
        }
    }

    // -- people ----------------------------------------------------------------------------------

    async fn declare(
        &mut self,
        name: &ast::Ident,
        roles: &[ast::Ident],
        manager: Option<&ast::Ident>,
    ) -> Result<(), StepFailure> {
        let roles: Vec<String> = roles.iter().map(|r| r.name.clone()).collect();
        self.directory.add_user(&name.name);
        if let Some(m) = manager {
            if !self.users.contains_key(&m.name) {
                return Err(StepFailure::new(format!(
                    "manager `{}` is not a user declared before `{}`",
                    m.name, name.name
                )));
            }
            self.directory.set_manager(&name.name, &m.name);
        }
        self.users.insert(name.name.clone(), roles.clone());
        for role in &roles {
            let holders: Vec<&str> = self
                .users
                .iter()
                .filter(|(_, r)| r.contains(role))
                .map(|(u, _)| u.as_str())
                .collect();
            self.directory.set(role, &holders);
        }
        // Someone holding a role is at work: queues that push tasks to agents push to them.
        if !roles.is_empty() {
            let actor = self.actor(name)?;
            self.engine.set_agent(&actor, true).await?;
        }
        Ok(())
    }

    pub fn actor(&self, name: &ast::Ident) -> Result<Actor, StepFailure> {
        let roles = self.users.get(&name.name).ok_or_else(|| {
            StepFailure::new(format!(
                "`{}` is not a declared user (declare them with `user {}`)",
                name.name, name.name
            ))
        })?;
        let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
        Ok(Actor::new(name.name.as_str(), &roles))
    }

    // -- tickets ---------------------------------------------------------------------------------

    /// The ticket a step means: the one its handle names, else the one created or acted on last.
    pub fn ticket(&self, handle: Option<&ast::Ident>) -> Result<InstanceId, StepFailure> {
        match handle {
            Some(h) => {
                self.handles.get(&h.name).copied().ok_or_else(|| {
                    StepFailure::new(format!("no ticket was created as `{}`", h.name))
                })
            }
            None => self
                .current
                .ok_or_else(|| StepFailure::new("no ticket has been created yet")),
        }
    }

    fn acted(
        &mut self,
        id: InstanceId,
        done: Result<InstanceView, EngineError>,
        refused: Option<&Refusal>,
    ) -> Result<(), StepFailure> {
        if outcome(done, refused)?.is_some() {
            self.current = Some(id);
        }
        Ok(())
    }

    async fn claim(
        &self,
        id: InstanceId,
        release: bool,
        actor: &Actor,
    ) -> Result<InstanceView, EngineError> {
        let view = self.engine.instance(id).await?;
        let task = view
            .task()
            .cloned()
            .ok_or_else(|| EngineError::ActionNotAllowed {
                action: if release { "release" } else { "claim" }.into(),
                stage: view.stage().to_string(),
                allowed: Vec::new(),
            })?;
        if release {
            self.engine.release(task.id, task.token, actor).await?;
        } else {
            self.engine.claim(task.id, actor, CLAIM_LEASE).await?;
        }
        self.engine.instance(id).await
    }

    // -- time ------------------------------------------------------------------------------------

    async fn wait_until(&self, wait: &Wait) -> Result<DateTime<Utc>, StepFailure> {
        let now = self.clock.now();
        let to = match wait {
            Wait::For(d) => {
                let secs = d
                    .days_and_seconds()
                    .and_then(|(days, s)| i64::try_from(days * 86_400 + s).ok())
                    .ok_or_else(|| StepFailure::new("the wait is too long"))?;
                now + TimeDelta::seconds(secs)
            }
            Wait::Business { duration, calendar } => {
                let cref = match calendar {
                    Some(c) if c.name == "24x7" => CalendarRef::AlwaysOpen,
                    Some(c) => self
                        .project
                        .calendars
                        .iter()
                        .position(|k| k.name == c.name)
                        .map(|i| CalendarRef::Named(crate::model::CalendarId(i as u32)))
                        .ok_or_else(|| StepFailure::new(format!("no calendar `{}`", c.name)))?,
                    None => self.current_business_hours().await?,
                };
                BusinessCalendar::from_ref(&self.project.calendars, cref)
                    .and_then(|cal| cal.add(now, duration))
                    .ok_or_else(|| {
                        StepFailure::new("the calendar does not open again within ten years")
                    })?
            }
            Wait::Until(at) => crate::check::parse_datetime(&at.node)
                .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
                .ok_or_else(|| StepFailure::new(format!("`{}` is not an instant", at.node)))?,
        };
        if to < now {
            return Err(StepFailure {
                message: "time cannot go back".into(),
                expected: Some(format!("an instant from {} on", instant(now))),
                actual: Some(instant(to)),
            });
        }
        Ok(to)
    }

    /// The business hours of the process of the ticket acted on last.
    async fn current_business_hours(&self) -> Result<CalendarRef, StepFailure> {
        let id = self.current.ok_or_else(|| {
            StepFailure::new("`wait ... business` without `on CALENDAR` needs a ticket first")
        })?;
        let view = self.engine.instance(id).await?;
        Ok(view.definition().model().business_hours)
    }

    /// Move the clock to `to`, firing every timer that comes due on the way at its own instant
    /// (so a step that fires and the steps it moves the ticket into fire in order).
    pub async fn advance_to(&mut self, to: DateTime<Utc>) -> Result<(), StepFailure> {
        let store = self.engine.store();
        let mut rounds = 0u32;
        while let Some(next) = store.next_wakeup_at().await? {
            if next > to {
                break;
            }
            if next > self.clock.now() {
                self.clock.set(next);
            }
            let now = self.clock.now();
            // Leased until `now` only: nothing else claims here, and a wake-up that firing
            // does not move on shows as due again at once (reported below) instead of later.
            let due = store.claim_wakeups(now, 1024, now).await?;
            let mut fired = 0;
            for id in &due {
                fired += self.engine.fire_due(*id).await?;
            }
            rounds += 1;
            let stuck = fired == 0
                && store
                    .next_wakeup_at()
                    .await?
                    .is_some_and(|again| again <= now);
            if stuck || rounds > MAX_ROUNDS_PER_WAIT {
                return Err(StepFailure::new(format!(
                    "timers due by {} do not settle: the engine fired {fired} in round {rounds}",
                    instant(now)
                )));
            }
        }
        self.clock.set(to);
        Ok(())
    }
}

/// An instant as tests write it.
pub fn instant(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A step's result against its `refused`: `Some` when it was performed as expected, `None`
/// when it was refused as expected.
fn outcome<T>(
    done: Result<T, EngineError>,
    refused: Option<&Refusal>,
) -> Result<Option<T>, StepFailure> {
    match (done, refused) {
        (Ok(v), None) => Ok(Some(v)),
        (Err(e), None) => Err(StepFailure::new(format!("refused: {e}"))),
        (Ok(_), Some(_)) => Err(StepFailure::mismatch(
            "the step's outcome",
            "refused",
            "performed",
        )),
        (Err(e), Some(r)) => match &r.contains {
            Some(text) if !e.to_string().contains(text.node.as_str()) => {
                Err(StepFailure::mismatch(
                    "the refusal",
                    format!("refused with a message containing \"{}\"", text.node),
                    format!("refused: {e}"),
                ))
            }
            _ => Ok(None),
        },
    }
}

/// A step's field values as the API takes them.
pub fn field_map(entries: &[SpawnEntry]) -> Map<String, Json> {
    entries
        .iter()
        .map(|e| (e.field.name.clone(), literal_json(&e.value.kind)))
        .collect()
}

/// A literal as the API takes it: words are enum values (or `true`/`false`), instants are
/// RFC 3339.
pub fn literal_json(lit: &LiteralKind) -> Json {
    match lit {
        LiteralKind::String(s) | LiteralKind::Date(s) | LiteralKind::Prefix(s) => {
            Json::String(s.clone())
        }
        LiteralKind::Integer(i) => Json::from(*i),
        LiteralKind::Symbol(s) if s == "true" => Json::Bool(true),
        LiteralKind::Symbol(s) if s == "false" => Json::Bool(false),
        LiteralKind::Symbol(s) => Json::String(s.clone()),
        LiteralKind::Duration(d) => Json::String(d.to_string()),
        LiteralKind::List(elements) => {
            Json::Array(elements.iter().map(|e| literal_json(&e.kind)).collect())
        }
        LiteralKind::DateTime(t) => Json::String(
            crate::check::parse_datetime(t)
                .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
                .map(instant)
                .unwrap_or_else(|| t.clone()),
        ),
    }
}
