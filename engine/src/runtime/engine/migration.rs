//! The engine's side of migrations (see [`crate::runtime::migrate`]): finding the live
//! tickets of a version, checking a plan against them, and moving each ticket under its
//! version check, its task and wake-up rewritten in the same commit.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::StreamExt;

use super::Engine;
use crate::runtime::approval::Decider;
use crate::runtime::catalog::Definition;
use crate::runtime::error::EngineError;
use crate::runtime::logic;
use crate::runtime::migrate::{self, Checked, Plan, Report, TicketMove};
use crate::runtime::task_events::{Origin, Watch};
use crate::runtime::timers::TimerState;
use crate::runtime::types::*;
use crate::store::{InstanceFilter, Store, StoreError};

/// Tickets moved at once: each move is its own transaction, and a few in flight keep a
/// database with group commit busy without holding many connections.
const MOVES_AT_ONCE: usize = 8;

/// Page size when listing a process's tickets.
const PAGE: u32 = 500;

/// How often a ticket's move is worked out again when someone changed the ticket between
/// reading it and writing the move.
const MAX_TRIES: usize = 100;

impl<S: Store> Engine<S> {
    /// Check `plan` and, with `apply`, move every live ticket of its `from` version to its
    /// `to` version; without, say what each move would do (a dry run, which writes nothing).
    /// A plan that does not check is refused before anything is written.
    ///
    /// Each ticket moves in its own transaction under its version check, so agents may keep
    /// working meanwhile: a ticket changed between reading and writing is read and moved
    /// again. A run that stops half-way (the database gone) can be run again: tickets already
    /// moved are no longer on `from`.
    pub async fn migrate(
        &self,
        plan: &Plan,
        actor: &Actor,
        apply: bool,
    ) -> Result<Report, EngineError> {
        let unknown = |version| EngineError::UnknownVersion {
            process: plan.process.clone(),
            version,
        };
        let from = self
            .catalog
            .version(&plan.process, plan.from)
            .ok_or_else(|| unknown(plan.from))?;
        let to = match plan.to {
            Some(v) => self
                .catalog
                .version(&plan.process, v)
                .ok_or_else(|| unknown(v))?,
            None => self.latest(&plan.process)?,
        };
        let live = self.live_on(&from).await?;
        let mut occupied = BTreeMap::new();
        for inst in &live {
            let stage = &from.model().stages[inst.stage.index()].name;
            *occupied.entry(stage.clone()).or_insert(0) += 1;
        }
        let checked = migrate::check(plan, from.clone(), to.clone(), &occupied)
            .map_err(EngineError::MigrationRefused)?;

        let mut report = Report {
            process: plan.process.clone(),
            from: from.version,
            to: to.version,
            dry_run: !apply,
            tickets: Vec::with_capacity(live.len()),
            migrated: 0,
            skipped: Vec::new(),
        };
        let checked = &checked;
        let mut moves = futures_util::stream::iter(live)
            .map(|inst| async move {
                let moved = match apply {
                    true => self.move_one(checked, inst.id, actor).await?,
                    false => {
                        let events = self.store.history(inst.id).await?;
                        let now = self.clock.now();
                        migrate::move_ticket(checked, &inst, &events, now).map(|(_, moved)| moved)
                    }
                };
                Ok::<_, EngineError>((inst.id, moved))
            })
            .buffered(MOVES_AT_ONCE);
        while let Some(done) = moves.next().await {
            match done? {
                (_, Some(moved)) => {
                    report.migrated += usize::from(apply);
                    report.tickets.push(moved);
                }
                (id, None) => report.skipped.push(id),
            }
        }
        Ok(report)
    }

    /// The tickets on `def` that have not ended, oldest first.
    async fn live_on(&self, def: &Definition) -> Result<Vec<Arc<Instance>>, EngineError> {
        let p = def.model();
        let mut filter = InstanceFilter {
            process: Some(def.process.clone()),
            ..InstanceFilter::default()
        };
        let mut live = Vec::new();
        loop {
            let page = self.store.list_instances(&filter, PAGE).await?;
            let Some((last, _)) = page.last() else {
                break;
            };
            filter.before = Some(last.id);
            let full = page.len() == PAGE as usize;
            live.extend(page.into_iter().map(|(inst, _)| inst).filter(|inst| {
                inst.definition == def.id && !p.stages[inst.stage.index()].is_final
            }));
            if !full {
                break;
            }
        }
        live.reverse();
        Ok(live)
    }

    /// Move one ticket, reading it again as long as someone else changes it first; `None`
    /// when it is no longer a live ticket of the plan's `from` version.
    async fn move_one(
        &self,
        checked: &Checked,
        id: InstanceId,
        actor: &Actor,
    ) -> Result<Option<TicketMove>, EngineError> {
        let mut seen = 0;
        for _ in 0..MAX_TRIES {
            let Some(((inst, task), events)) =
                self.store.instance_with_task_and_history(id).await?
            else {
                return Ok(None);
            };
            let old = checked.from.model();
            if inst.definition != checked.from.id || old.stages[inst.stage.index()].is_final {
                return Ok(None);
            }
            seen = inst.version;
            let now = self.clock.now();
            let Some((migration, moved)) = migrate::move_ticket(checked, &inst, &events, now)
            else {
                return Ok(None);
            };
            let mut change = self
                .migration_change(checked, &inst, task.as_ref(), migration, actor, now)
                .await?;
            let watch = self.watched().then(|| Watch::of(&mut change, task.clone()));
            let wakeups: Vec<_> = change.wakeup.flatten().into_iter().collect();
            let ballots = self.ballot_news(&change);
            let notifies = !change.notifications.is_empty();
            match self.store.commit(change).await {
                Ok(committed) => {
                    self.tell_committed(watch, &committed, Origin::Request);
                    // What was remembered of the ticket's timers was under the old version.
                    let _ = self.schedules.take(id, inst.version);
                    self.wakeups_committed(wakeups);
                    self.outbox_committed(notifies);
                    self.ballots_committed(id, ballots);
                    return Ok(Some(moved));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Store(StoreError::Conflict {
            id,
            expected: seen,
        }))
    }

    /// The change that moves `inst` as `migration` says: its new state, the event, its task
    /// kept (same stage and queue names: a claim on it stays) or closed and opened anew, its
    /// approval asked if its new stage has one, its wake-up from the new version's timers.
    async fn migration_change(
        &self,
        checked: &Checked,
        inst: &Instance,
        task: Option<&Task>,
        migration: Migration,
        actor: &Actor,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Change, EngineError> {
        let (from, to) = (&checked.from, &checked.to);
        let p = to.model();
        let stage = migration.stage;
        let state = Instance {
            definition: to.id,
            stage,
            fields: Arc::new(migration.fields.clone()),
            priority: migration.priority,
            queue: migration.queue,
            version: inst.version + 1,
            updated_at: now,
            ..inst.clone()
        };
        let event = Event {
            seq: inst.version + 1,
            at: now,
            actor: actor.name.clone(),
            kind: EventKind::Migrated(Box::new(migration)),
            reason: Some(format!(
                "migrated from version {} to version {}",
                from.version, to.version
            )),
        };
        let mut change = Change::new(Arc::new(state), inst.version, vec![event]);
        if from.model().approval_in(inst.stage).is_some() {
            change.ballots = Some(BallotChange::cleared());
        }

        let names = to.task_names();
        let open = task.filter(|t| t.state != TaskState::Done);
        let same_place = |t: &Task, q: crate::model::QueueId| {
            *t.queue == *names.queues[q.index()] && *t.stage == *names.stages[stage.index()]
        };
        match (open, change.instance.queue) {
            (Some(t), Some(q)) if same_place(t, q) => {
                change.update_task = Some(UpdateTask {
                    task: t.id,
                    queue: t.queue.clone(),
                    priority: change.instance.priority.map(|p| p.0),
                    due_at: None,
                    ola_due_at: None,
                    assigned_to: None,
                })
            }
            (Some(t), q) => {
                change.close_task = Some(CloseTask {
                    task: t.id,
                    fence: Fence::engine(),
                });
                change.new_task = q.map(|q| logic::new_task(to, &change.instance, q));
            }
            (None, Some(q)) => change.new_task = Some(logic::new_task(to, &change.instance, q)),
            (None, None) => {}
        }
        if p.approval_in(stage).is_some() {
            let holders = self.holders(to, &change.instance, None).await?;
            let req = self.request(actor, None, &holders);
            let kept = change.update_task.as_ref().map(|u| u.task);
            Decider::new(to, &req, &mut change, kept, None).entered();
        }
        if let Some(t) = change.new_task.as_mut() {
            self.assign(t).await?;
        }

        let mut timers = TimerState::of(to, &change.events);
        let schedule = timers.schedule(to);
        change.wakeup = Some(schedule.wakeup());
        if let Some(t) = change.new_task.as_mut() {
            t.due_at = schedule.resolve_due;
            t.ola_due_at = schedule.ola_due;
        }
        if let Some(u) = change.update_task.as_mut() {
            u.due_at = schedule.resolve_due;
            u.ola_due_at = schedule.ola_due;
        }
        Ok(change)
    }
}
