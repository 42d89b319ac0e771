//! The rules of the game, as pure functions: given a definition, an instance and a request,
//! decide the complete [`Change`] (new state, history events, task operations) or refuse.
//! Nothing here does I/O, so the in-memory runtime and the durable one behave identically,
//! and every refusal is decided before anything is written.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rhai::{Dynamic, Scope};
use serde_json::{Map, Value as Json};

use super::approval::{Decider, Holders};
use super::catalog::{Catalog, Definition};
use super::error::EngineError;
use super::notices::{self, About};
use super::relations;
use super::types::*;
use super::values::{self, FieldError};
use crate::model::{
    Condition, FieldId, PriorityId, Process, QueueId, RuleKind, SpawnValue, StageId, StageQueue,
    Value,
};
use crate::script;

/// Decides changes. Holds the rhai sandbox rules run in (built once; it is `Send + Sync`).
pub struct Logic {
    rhai: rhai::Engine,
}

impl Default for Logic {
    fn default() -> Self {
        Logic {
            rhai: script::sandboxed_engine(),
        }
    }
}

/// A request's common context.
pub struct Request<'a> {
    pub actor: &'a Actor,
    pub now: DateTime<Utc>,
    pub reason: Option<String>,
    /// Who holds the roles an approval the request reaches may ask (read before deciding).
    pub holders: &'a Holders,
    /// The instance's linked tickets its transition's `when` reads (read before deciding).
    pub linked: &'a relations::Linked,
    /// Which items of the checklist of the instance's stage are ticked (read from its history
    /// before deciding a transition that `requires checklist`; empty otherwise).
    pub checklist: &'a [bool],
}

/// How far [`Logic::admit`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Checks {
    /// Stop at the first refusal (performing).
    UntilRefused,
    /// Find every refusal (explaining).
    All,
}

/// The refusals found so far, and how far to look.
struct Verdict {
    checks: Checks,
    refusals: Vec<EngineError>,
}

impl Verdict {
    /// A refusal: the error when checking stops at the first one, else noted.
    fn refuse(&mut self, e: EngineError) -> Result<(), EngineError> {
        match self.checks {
            Checks::UntilRefused => Err(e),
            Checks::All => {
                self.refusals.push(e);
                Ok(())
            }
        }
    }

    fn admission(self, fields: Arc<Fields>, priority: Option<PriorityId>) -> Admission {
        Admission {
            fields,
            priority,
            refusals: self.refusals,
        }
    }
}

/// What checking a transition found: the fields and priority performing it would leave (the
/// input read, computed fields run), and, when every check is made, what refuses it.
struct Admission {
    fields: Arc<Fields>,
    priority: Option<PriorityId>,
    refusals: Vec<EngineError>,
}

/// A ticket's field values, indexed by [`FieldId`]; `None` where unset.
pub type Fields = Vec<Option<Value>>;

impl Logic {
    /// A new instance of the definition's process.
    pub fn create(
        &self,
        def: &Definition,
        input: &Map<String, Json>,
        req: &Request,
        spawned_by: Option<(InstanceId, String)>,
    ) -> Result<NewInstance, EngineError> {
        let p = def.model();
        let mut fields: Arc<Fields> =
            Arc::new(p.fields.iter().map(|f| f.default.clone()).collect());
        let mut errors = read_input(p, &mut fields, input);
        for (i, f) in p.fields.iter().enumerate() {
            if f.required
                && !is_set(fields[i].as_ref())
                && !errors.iter().any(|e| e.field == f.name)
            {
                let message = match f.ty.element() {
                    Some(_) => "is required: a list of at least one element",
                    None => "is required",
                };
                errors.push(FieldError::new(&f.name, message));
            }
        }
        if !errors.is_empty() {
            return Err(EngineError::InvalidFields(errors));
        }
        self.compute(p, &mut fields, p.initial, |f| priority_of(p, f))?;
        let priority = priority_of(p, &fields);
        let stage = p.initial;
        let queue = queue_for(p, stage, &fields, priority);
        let instance = Instance {
            id: InstanceId(0),
            definition: def.id,
            stage,
            fields: fields.clone(),
            priority,
            queue,
            version: 1,
            created_at: req.now,
            updated_at: req.now,
            created_by: req.actor.name.clone(),
        };
        let event = Event {
            seq: 1,
            at: req.now,
            actor: req.actor.name.clone(),
            kind: EventKind::Created {
                stage,
                fields: Arc::unwrap_or_clone(fields),
                priority,
                queue,
                spawned_by,
            },
            reason: req.reason.clone(),
        };
        let task = queue.map(|q| new_task(def, &instance, q));
        Ok(NewInstance {
            instance,
            events: vec![event],
            task,
            parent: None,
            wakeup: None,
        })
    }

    /// Perform an action (a transition), with optional field updates made as part of it.
    #[allow(clippy::too_many_arguments)]
    pub fn perform(
        &self,
        catalog: &Catalog,
        def: &Definition,
        inst: &Instance,
        task: Option<&Task>,
        fence: Option<Fence>,
        action: &str,
        input: &Map<String, Json>,
        req: &Request,
    ) -> Result<Change, EngineError> {
        self.perform_as(catalog, def, inst, task, fence, action, input, req, false)
    }

    /// Perform a transition as the engine (an `after` delay or an escalation's `perform`): the
    /// transition's roles do not apply (they say who else may perform it), everything else
    /// does, and the task is closed whoever holds it.
    pub fn perform_as_engine(
        &self,
        catalog: &Catalog,
        def: &Definition,
        inst: &Instance,
        task: Option<&Task>,
        action: &str,
        req: &Request,
    ) -> Result<Change, EngineError> {
        self.perform_effect(catalog, def, inst, task, action, &Map::new(), req)
    }

    /// Perform a transition as the effect of another's `then perform` (or as the engine),
    /// with the fields its `with` sets: as [`Logic::perform_as_engine`].
    #[allow(clippy::too_many_arguments)]
    pub fn perform_effect(
        &self,
        catalog: &Catalog,
        def: &Definition,
        inst: &Instance,
        task: Option<&Task>,
        action: &str,
        input: &Map<String, Json>,
        req: &Request,
    ) -> Result<Change, EngineError> {
        self.perform_as(
            catalog,
            def,
            inst,
            task,
            Some(Fence::engine()),
            action,
            input,
            req,
            true,
        )
    }

    /// Whether `actor` may perform each action open in the instance's stage now, as
    /// [`Logic::perform`] decides it without input: for each, every reason it would be
    /// refused (none when it may be performed). Nothing is decided beyond the checks, so
    /// nothing is written or sent.
    pub fn refusals(
        &self,
        def: &Definition,
        inst: &Instance,
        task: Option<&Task>,
        t: &crate::model::Transition,
        req: &Request,
    ) -> Result<Vec<EngineError>, EngineError> {
        let admission = self.admit(def, inst, task, t, &Map::new(), req, false, Checks::All)?;
        Ok(admission.refusals)
    }

    /// The checks of performing `t` with `input`, in the order `perform` makes them: the
    /// stage, who may, the input, the computed fields, the required fields, the rules that
    /// guard it and its `when`. The one place these are decided, for performing an action and
    /// for explaining why one is refused. With [`Checks::UntilRefused`] the first refusal is
    /// the error; with [`Checks::All`] every refusal is collected (the error is then only a
    /// failure to decide at all).
    #[allow(clippy::too_many_arguments)]
    fn admit(
        &self,
        def: &Definition,
        inst: &Instance,
        task: Option<&Task>,
        t: &crate::model::Transition,
        input: &Map<String, Json>,
        req: &Request,
        by_engine: bool,
        checks: Checks,
    ) -> Result<Admission, EngineError> {
        let p = def.model();
        let action = t.name.as_str();
        let mut verdict = Verdict {
            checks,
            refusals: Vec::new(),
        };
        if !t.from.contains(&inst.stage) {
            verdict.refuse(EngineError::ActionNotAllowed {
                action: action.to_string(),
                stage: p.stages[inst.stage.index()].name.clone(),
                allowed: actions_in(p, inst.stage),
            })?;
        }
        if !by_engine && !may_perform(def, t, inst, task, req) {
            verdict.refuse(EngineError::Forbidden {
                action: action.to_string(),
                roles: t
                    .roles
                    .iter()
                    .map(|r| def.project.role(*r).name.clone())
                    .collect(),
                people: t.people.iter().map(|r| r.describe(p)).collect(),
            })?;
        }
        let mut fields = inst.fields.clone();
        let errors = read_input(p, &mut fields, input);
        if !errors.is_empty() {
            // What follows would be decided on fields the request did not mean.
            verdict.refuse(EngineError::InvalidFields(errors))?;
            return Ok(verdict.admission(fields, inst.priority));
        }
        // Before the rules run: a rule reads required fields as set (the checker types them
        // so), and an input clearing one is refused for what it is. Only a change that wrote a
        // field can have cleared one (fields are copied on write).
        let written = !Arc::ptr_eq(&fields, &inst.fields);
        if written {
            if let Err(e) = refuse_cleared_required(p, &fields) {
                verdict.refuse(e)?;
                return Ok(verdict.admission(fields, inst.priority));
            }
        }
        // The `computes` rules are functions of the fields (and the stage, for those that read
        // it): with no field written and none reading the stage, they would give what they
        // gave when the fields were last written, so they are not run again.
        if written || computes_read_stage(p) {
            if let Err(e) = self.compute(p, &mut fields, t.to, |f| new_priority(p, inst, f)) {
                // The later checks read computed fields: they cannot be decided without them.
                verdict.refuse(e)?;
                return Ok(verdict.admission(fields, inst.priority));
            }
        }
        if t.requires_checklist {
            let unticked = super::checklist::missing(p, inst.stage, req.checklist);
            if !unticked.is_empty() {
                verdict.refuse(EngineError::ChecklistIncomplete {
                    action: action.to_string(),
                    items: unticked,
                })?;
            }
        }
        let missing: Vec<String> = t
            .requires
            .iter()
            .filter(|f| !is_set(fields[f.index()].as_ref()))
            .map(|f| p.fields[f.index()].name.clone())
            .collect();
        if !missing.is_empty() {
            verdict.refuse(EngineError::MissingFields {
                action: action.to_string(),
                fields: missing,
            })?;
        }
        for rule in &t.guards {
            let r = &p.rules[rule.index()];
            let refusal = match self.eval(p, r, &fields, inst.stage, inst.priority) {
                Err(e) => Some(e),
                Ok(result) => match result.as_bool() {
                    Ok(true) => None,
                    Ok(false) => Some(EngineError::GuardFailed {
                        rule: r.name.clone(),
                        action: action.to_string(),
                    }),
                    Err(ty) => Some(EngineError::RuleFailed {
                        rule: r.name.clone(),
                        message: format!("a guard must give true or false, not {ty}"),
                    }),
                },
            };
            if let Some(e) = refusal {
                verdict.refuse(e)?;
            }
        }
        let priority = new_priority(p, inst, &fields);
        if let Some(when) = &t.when {
            let facts = relations::Facts {
                fields: &fields,
                priority,
                stage: Some(inst.stage),
                linked: Some(req.linked),
            };
            if !relations::holds(&when.condition, facts) {
                verdict.refuse(EngineError::ConditionFailed {
                    action: action.to_string(),
                    condition: when.text.clone(),
                })?;
            }
        }
        Ok(verdict.admission(fields, priority))
    }

    #[allow(clippy::too_many_arguments)]
    fn perform_as(
        &self,
        catalog: &Catalog,
        def: &Definition,
        inst: &Instance,
        task: Option<&Task>,
        fence: Option<Fence>,
        action: &str,
        input: &Map<String, Json>,
        req: &Request,
        by_engine: bool,
    ) -> Result<Change, EngineError> {
        let p = def.model();
        let Some(tid) = p.transition(action) else {
            return Err(EngineError::UnknownAction {
                process: p.name.clone(),
                action: action.to_string(),
            });
        };
        let t = &p.transitions[tid.index()];
        // Refused at the first check that fails: `admit` returns it as the error.
        let Admission {
            fields, priority, ..
        } = self.admit(
            def,
            inst,
            task,
            t,
            input,
            req,
            by_engine,
            Checks::UntilRefused,
        )?;

        let mut b = ChangeBuilder::new(inst, req);
        b.fields(p, &inst.fields, &fields);
        b.priority(inst.priority, priority, Cause::Fields);
        b.push(EventKind::Transitioned {
            action: tid,
            from: inst.stage,
            to: t.to,
        });
        let queue = if t.to == inst.stage {
            new_queue(p, inst, &fields, priority)
        } else {
            queue_for(p, t.to, &fields, priority)
        };
        b.route(inst.queue, queue, Cause::Stage);

        let mut change = b.finish(fields, t.to, priority, queue);
        let stays = t.to == inst.stage && queue == inst.queue;
        match task.filter(|t| t.state != TaskState::Done) {
            Some(open) if stays => {
                if open.priority != priority.map(|p| p.0)
                    || service_moved(p, &inst.fields, &change.instance.fields)
                {
                    change.update_task = Some(UpdateTask {
                        task: open.id,
                        queue: open.queue.clone(),
                        priority: priority.map(|p| p.0),
                        due_at: open.due_at,
                        ola_due_at: open.ola_due_at,
                        assigned_to: None,
                    });
                }
            }
            Some(open) => {
                change.close_task = Some(CloseTask {
                    task: open.id,
                    fence: fence.unwrap_or(Fence::NotClaimedByOther {
                        actor: req.actor.name.clone(),
                        now: req.now,
                    }),
                });
                change.new_task = queue.map(|q| new_task(def, &change.instance, q));
            }
            None => change.new_task = queue.map(|q| new_task(def, &change.instance, q)),
        }

        // Who the transition and the stage it enters tell (the assignee is whoever held the
        // task when the change was decided).
        let held = task.filter(|t| t.state != TaskState::Done);
        for notice in &t.notices {
            notices::send(
                def,
                req,
                &mut change,
                held,
                notice,
                About::Transition(&t.name),
                &[],
                &t.name,
            );
        }
        // A stage with an approval tells once its first level is open (the Decider below).
        if t.to != inst.stage && p.approval_in(t.to).is_none() {
            let entered = &p.stages[t.to.index()];
            for notice in &entered.notices {
                notices::send(
                    def,
                    req,
                    &mut change,
                    held,
                    notice,
                    About::Stage,
                    &[],
                    &t.name,
                );
            }
        }
        if t.to != inst.stage && p.approval_in(inst.stage).is_some() {
            // Leaving a stage with an approval (withdrawn, say) closes its ballots.
            change.ballots = Some(BallotChange::cleared());
        }
        if t.to != inst.stage && p.approval_in(t.to).is_some() {
            // The stage's approval is asked now, in the same change (a plan of `none` moves
            // the ticket on at once).
            Decider::new(def, req, &mut change, None, None).entered();
        }

        for spawn in &t.spawns {
            let child_def = catalog
                .latest(&spawn.process)
                .ok_or_else(|| EngineError::UnknownProcess(spawn.process.clone()))?;
            let child_model = child_def.model();
            let mut input = Map::new();
            for (i, f) in p.fields.iter().enumerate() {
                if let (Some(v), Some(_)) = (&change.instance.fields[i], child_model.field(&f.name))
                {
                    input.insert(f.name.clone(), values::to_json(f, v));
                }
            }
            // `with { ... }`: the values the definition gives, after the copies by name.
            for set in &spawn.fields {
                let value = match &set.value {
                    SpawnValue::Parent(f) => change.instance.fields[f.index()]
                        .as_ref()
                        .map(|v| values::to_json(&p.fields[f.index()], v)),
                    SpawnValue::Literal(v) => child_model
                        .field(&set.name)
                        .map(|c| values::to_json(&child_model.fields[c.index()], v)),
                };
                match value {
                    Some(v) => input.insert(set.name.clone(), v),
                    None => input.remove(&set.name),
                };
            }
            let mut child = self
                .create(&child_def, &input, req, Some((inst.id, spawn.link.clone())))
                .map_err(|e| EngineError::SpawnFailed {
                    process: spawn.process.clone(),
                    source: Box::new(e),
                })?;
            // A declared link is stored from the side that declares its kind.
            let (kind, from_parent) = match p.link(&spawn.link) {
                Some(l) => p.links[l.index()].stored_kind(),
                None => (spawn.link.as_str(), true),
            };
            child.parent = Some(ParentLink {
                parent: inst.id,
                kind: kind.to_string(),
                from_child: !from_parent,
            });
            let seq = change.instance.version + 1;
            change.events.push(Event {
                seq,
                at: req.now,
                actor: req.actor.name.clone(),
                kind: EventKind::Spawned {
                    process: spawn.process.clone(),
                    link: spawn.link.clone(),
                },
                reason: None,
            });
            Arc::make_mut(&mut change.instance).version = seq;
            change.spawns.push(child);
        }
        Ok(change)
    }

    /// Update fields outside a transition; priority and routing follow.
    pub fn update(
        &self,
        def: &Definition,
        inst: &Instance,
        task: Option<&Task>,
        input: &Map<String, Json>,
        req: &Request,
    ) -> Result<Change, EngineError> {
        let p = def.model();
        let mut fields = inst.fields.clone();
        let errors = read_input(p, &mut fields, input);
        if !errors.is_empty() {
            return Err(EngineError::InvalidFields(errors));
        }
        // Before the rules run, as in `perform_as`.
        refuse_cleared_required(p, &fields)?;
        self.compute(p, &mut fields, inst.stage, |f| new_priority(p, inst, f))?;
        let mut b = ChangeBuilder::new(inst, req);
        b.fields(p, &inst.fields, &fields);
        let priority = new_priority(p, inst, &fields);
        b.priority(inst.priority, priority, Cause::Fields);
        let queue = new_queue(p, inst, &fields, priority);
        b.route(inst.queue, queue, Cause::Fields);
        let mut change = b.finish(fields, inst.stage, priority, queue);
        if let Some(open) = task.filter(|t| t.state != TaskState::Done) {
            let queue_name = queue.map(|q| def.task_names().queues[q.index()].clone());
            if queue_name.as_deref() != Some(&*open.queue)
                || open.priority != priority.map(|p| p.0)
                || service_moved(p, &inst.fields, &change.instance.fields)
            {
                change.update_task = Some(UpdateTask {
                    task: open.id,
                    queue: queue_name.unwrap_or_else(|| open.queue.clone()),
                    priority: priority.map(|p| p.0),
                    due_at: open.due_at,
                    ola_due_at: open.ola_due_at,
                    assigned_to: None,
                });
            }
        }
        Ok(change)
    }

    /// A history-only change: a comment or a link.
    pub fn note(&self, inst: &Instance, kind: EventKind, req: &Request) -> Change {
        let mut b = ChangeBuilder::new(inst, req);
        b.push(kind);
        b.finish(inst.fields.clone(), inst.stage, inst.priority, inst.queue)
    }

    /// Run the `computes` rules, in order, storing each result in its field.
    /// The fields are copied (if shared) only when a rule gives a field a new value.
    /// `priority` gives the priority the ticket will have with the fields as they are (a
    /// priority raised by escalation stays until what the table reads changes), so a rule
    /// reads the priority the ticket really has.
    pub(super) fn compute(
        &self,
        p: &Process,
        fields: &mut Arc<Fields>,
        stage: StageId,
        priority: impl Fn(&Fields) -> Option<PriorityId>,
    ) -> Result<(), EngineError> {
        for r in &p.rules {
            let RuleKind::Computes(f) = r.kind else {
                continue;
            };
            let value = self.eval(p, r, fields, stage, priority(fields))?;
            let field = &p.fields[f.index()];
            match values::from_dynamic(field, &value) {
                Some(v) if fields.get(f.index()) == Some(&v) => {}
                Some(v) => {
                    if let Some(slot) = Arc::make_mut(fields).get_mut(f.index()) {
                        *slot = v;
                    }
                }
                None => {
                    return Err(EngineError::RuleFailed {
                        rule: r.name.clone(),
                        message: format!(
                            "gave {} for `{}`, which is {}",
                            value.type_name(),
                            field.name,
                            field.ty
                        ),
                    })
                }
            }
        }
        Ok(())
    }

    fn eval(
        &self,
        p: &Process,
        r: &crate::model::Rule,
        fields: &Fields,
        stage: StageId,
        priority: Option<PriorityId>,
    ) -> Result<Dynamic, EngineError> {
        // Only what the rule names: building a value for every field costs more than most
        // rules take to run.
        let reads = &r.reads;
        let mut scope = Scope::new();
        for f in &reads.fields {
            let field = &p.fields[f.index()];
            let value = fields.get(f.index()).and_then(Option::as_ref);
            scope.push_dynamic(field.name.clone(), values::to_dynamic(field, value));
        }
        if reads.stage {
            scope.push(script::STAGE_VARIABLE, p.stages[stage.index()].name.clone());
        }
        if reads.priority {
            scope.push_dynamic(
                script::PRIORITY_VARIABLE,
                priority
                    .map(|p| Dynamic::from(i64::from(p.0) + 1))
                    .unwrap_or(Dynamic::UNIT),
            );
        }
        for &level in &reads.levels {
            if let Some(name) = p.priorities.get(level) {
                scope.push_constant(name.clone(), (level as i64) + 1);
            }
        }
        self.rhai
            .eval_ast_with_scope::<Dynamic>(&mut scope, &r.ast)
            .map_err(|e| EngineError::RuleFailed {
                rule: r.name.clone(),
                message: e.to_string(),
            })
    }
}

/// Whether the actor may perform `t` on the instance: anyone when it names neither roles nor
/// people, else a holder of one of its roles or one of the people it names (`by caller`: the
/// user in the `caller` field; `by manager of requester`: that user's manager, read from the
/// directory before deciding).
pub(super) fn may_perform(
    def: &Definition,
    t: &crate::model::Transition,
    inst: &Instance,
    task: Option<&Task>,
    req: &Request,
) -> bool {
    if t.roles.is_empty() && t.people.is_empty() {
        return true;
    }
    t.roles
        .iter()
        .any(|r| req.actor.has_role(&def.project.role(*r).name))
        || t.people.iter().any(|person| {
            req.holders
                .people(person, inst, task.filter(|t| t.state != TaskState::Done))
                .iter()
                .any(|p| **p == *req.actor.name)
        })
}

/// Whether a change moved the ticket to another service: another service may agree another
/// target, so the task's due time moves with it.
fn service_moved(p: &Process, before: &Fields, after: &Fields) -> bool {
    p.service_of(before) != p.service_of(after)
}

/// Whether a `computes` rule reads the stage (so its value may change with a transition alone).
fn computes_read_stage(p: &Process) -> bool {
    p.rules
        .iter()
        .any(|r| matches!(r.kind, RuleKind::Computes(_)) && r.reads.stage)
}

/// A change may not leave a required field unset, whether it is an update or an action's
/// input that clears it (every instance has its required fields from creation on).
fn refuse_cleared_required(p: &Process, fields: &Fields) -> Result<(), EngineError> {
    let cleared: Vec<FieldError> = p
        .fields
        .iter()
        .enumerate()
        .filter(|(i, f)| f.required && !is_set(fields[*i].as_ref()))
        .map(|(_, f)| FieldError::new(&f.name, "is required and cannot be cleared"))
        .collect();
    if cleared.is_empty() {
        Ok(())
    } else {
        Err(EngineError::InvalidFields(cleared))
    }
}

/// Collects the events of one change, numbering them after the instance's version.
struct ChangeBuilder<'a> {
    inst: &'a Instance,
    req: &'a Request<'a>,
    events: Vec<Event>,
}

impl<'a> ChangeBuilder<'a> {
    fn new(inst: &'a Instance, req: &'a Request<'a>) -> Self {
        ChangeBuilder {
            inst,
            req,
            events: Vec::with_capacity(4),
        }
    }

    fn push(&mut self, kind: EventKind) {
        let seq = self.inst.version + self.events.len() as i64 + 1;
        self.events.push(Event {
            seq,
            at: self.req.now,
            actor: self.req.actor.name.clone(),
            kind,
            reason: self.req.reason.clone(),
        });
    }

    fn fields(&mut self, p: &Process, old: &Arc<Fields>, new: &Arc<Fields>) {
        if Arc::ptr_eq(old, new) {
            return;
        }
        let changes: Vec<FieldChange> = (0..p.fields.len())
            .filter(|&i| old[i] != new[i])
            .map(|i| FieldChange {
                field: FieldId(i as u32),
                old: old[i].clone(),
                new: new[i].clone(),
            })
            .collect();
        if !changes.is_empty() {
            self.push(EventKind::FieldsChanged { changes });
        }
    }

    fn priority(&mut self, from: Option<PriorityId>, to: Option<PriorityId>, cause: Cause) {
        if from != to {
            self.push(EventKind::PriorityChanged { from, to, cause });
        }
    }

    fn route(&mut self, from: Option<QueueId>, to: Option<QueueId>, cause: Cause) {
        if from != to {
            self.push(EventKind::Routed { from, to, cause });
        }
    }

    fn finish(
        self,
        fields: Arc<Fields>,
        stage: StageId,
        priority: Option<PriorityId>,
        queue: Option<QueueId>,
    ) -> Change {
        let version = self.inst.version + self.events.len() as i64;
        let state = Instance {
            id: self.inst.id,
            definition: self.inst.definition,
            stage,
            fields,
            priority,
            queue,
            version,
            created_at: self.inst.created_at,
            updated_at: self.req.now,
            created_by: self.inst.created_by.clone(),
        };
        Change::new(Arc::new(state), self.inst.version, self.events)
    }
}

/// A change that leaves the instance as it is (its timers may still be set on it).
pub fn unchanged(inst: &Instance) -> Change {
    Change::new(Arc::new(inst.clone()), inst.version, Vec::new())
}

/// The priority after a change of fields: the table's answer when the fields it reads change
/// it, else the current one. So a priority raised by escalation stays raised until impact or
/// urgency themselves change.
fn new_priority(p: &Process, inst: &Instance, fields: &Fields) -> Option<PriorityId> {
    // Most changes leave what the table reads as it was.
    let reads_unchanged = p.priority_table.as_ref().is_none_or(|t| {
        t.fields
            .iter()
            .all(|f| inst.fields.get(f.index()) == fields.get(f.index()))
    });
    if reads_unchanged {
        return inst.priority;
    }
    let before = priority_of(p, &inst.fields);
    match priority_of(p, fields) {
        Some(after) if Some(after) != before => Some(after),
        _ => inst.priority,
    }
}

/// The queue after a change of fields or priority within a stage: routing's answer when it
/// changes, else the current queue. So a task escalated to another queue stays there until
/// what routing reads changes.
fn new_queue(
    p: &Process,
    inst: &Instance,
    fields: &Fields,
    priority: Option<PriorityId>,
) -> Option<QueueId> {
    let before = queue_for(p, inst.stage, &inst.fields, inst.priority);
    let after = queue_for(p, inst.stage, fields, priority);
    if after != before {
        after
    } else {
        inst.queue
    }
}

/// Read requested field values (validated; unknown names refused) into `fields`; every value
/// that could not be read is reported. The fields are copied (if shared with the instance)
/// only when there is something to write: with any input, either a value is written or the
/// input is refused whole, so they are made writable once, up front.
fn read_input(p: &Process, fields: &mut Arc<Fields>, input: &Map<String, Json>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if input.is_empty() {
        return errors;
    }
    let slots = Arc::make_mut(fields);
    for (name, json) in input {
        match p.field(name) {
            Some(id) => match values::from_json(&p.fields[id.index()], json) {
                Ok(v) => {
                    if let Some(slot) = slots.get_mut(id.index()) {
                        *slot = v;
                    }
                }
                Err(e) => errors.push(e),
            },
            None => errors.push(unknown_field(p, name)),
        }
    }
    errors
}

fn unknown_field(p: &Process, name: &str) -> FieldError {
    let names: Vec<&str> = p.fields.iter().map(|f| f.name.as_str()).collect();
    FieldError::new(
        name,
        format!(
            "is not a field of `{}` (fields: {})",
            p.name,
            names.join(", ")
        ),
    )
}

/// Set, and for text not empty.
fn is_set(v: Option<&Value>) -> bool {
    match v {
        None => false,
        Some(Value::Text(s)) => !s.trim().is_empty(),
        // A `required` list has at least one element.
        Some(Value::List(elements)) => !elements.is_empty(),
        Some(_) => true,
    }
}

/// The actions possible in a stage, in declaration order.
pub fn actions_in(p: &Process, stage: StageId) -> Vec<String> {
    p.transitions
        .iter()
        .filter(|t| t.from.contains(&stage))
        .map(|t| t.name.clone())
        .collect()
}

/// The priority the table gives these fields, if the table's fields are all set.
pub fn priority_of(p: &Process, fields: &Fields) -> Option<PriorityId> {
    let table = p.priority_table.as_ref()?;
    table.lookup(|f| table_value(fields, f))
}

/// The value index a priority table reads of a field (an enum's value, a bool as 0 or 1);
/// `None` while it is unset.
pub(super) fn table_value(fields: &Fields, f: FieldId) -> Option<u32> {
    match fields.get(f.index())?.as_ref()? {
        Value::Enum(i) => Some(*i),
        Value::Bool(b) => Some(u32::from(*b)),
        _ => None,
    }
}

/// The queue an instance in `stage` belongs to: the stage's, or routing's answer.
pub fn queue_for(
    p: &Process,
    stage: StageId,
    fields: &Fields,
    priority: Option<PriorityId>,
) -> Option<QueueId> {
    match p.stages[stage.index()].queue? {
        StageQueue::Named(q) => Some(q),
        StageQueue::ByRouting => super::explain::routing_rule(p, stage, fields, priority)
            .and_then(|i| p.routing.get(i))
            .map(|r| r.queue),
    }
}

/// Evaluate a condition over a ticket's own fields and priority (see [`relations::holds`]).
pub fn holds(c: &Condition, fields: &Fields, priority: Option<PriorityId>) -> bool {
    relations::holds(c, relations::Facts::of(fields, priority))
}

pub(super) fn new_task(def: &Definition, inst: &Instance, queue: QueueId) -> NewTask {
    let names = def.task_names();
    NewTask {
        process: names.process.clone(),
        stage: names.stages[inst.stage.index()].clone(),
        queue: names.queues[queue.index()].clone(),
        priority: inst.priority.map(|p| p.0),
        due_at: None,
        ola_due_at: None,
        assigned_to: None,
    }
}

/// Replay a history into the state it describes. The stored state must always equal this.
pub fn replay(
    id: InstanceId,
    definition: super::catalog::DefinitionId,
    events: &[Event],
) -> Option<Instance> {
    // A migrated ticket: its state under the version it runs on starts at its migration,
    // with what it was created as (when and by whom) from its first event.
    let epoch = current_epoch(events);
    if let (Some(first), Some(EventKind::Migrated(m))) =
        (events.first(), epoch.first().map(|e| &e.kind))
    {
        let mut inst = Instance {
            id,
            definition,
            stage: m.stage,
            fields: Arc::new(m.fields.clone()),
            priority: m.priority,
            queue: m.queue,
            version: epoch[0].seq,
            created_at: first.at,
            updated_at: epoch[0].at,
            created_by: first.actor.clone(),
        };
        for e in &epoch[1..] {
            apply_to_state(&mut inst, e)?;
        }
        return Some(inst);
    }
    let mut inst: Option<Instance> = None;
    for e in events {
        match (&mut inst, &e.kind) {
            (
                None,
                EventKind::Created {
                    stage,
                    fields,
                    priority,
                    queue,
                    ..
                },
            ) => {
                inst = Some(Instance {
                    id,
                    definition,
                    stage: *stage,
                    fields: Arc::new(fields.clone()),
                    priority: *priority,
                    queue: *queue,
                    version: e.seq,
                    created_at: e.at,
                    updated_at: e.at,
                    created_by: e.actor.clone(),
                })
            }
            (None, _) => return None,
            (Some(i), _) => apply_to_state(i, e)?,
        }
    }
    inst
}

/// One event after the first, on the state before it; `None` for an event that cannot follow
/// (a second creation, a migration where the whole history was asked for).
fn apply_to_state(i: &mut Instance, e: &Event) -> Option<()> {
    match &e.kind {
        EventKind::Created { .. } | EventKind::Migrated(_) => return None,
        EventKind::Transitioned { to, .. } | EventKind::ApprovalDecided { to, .. } => i.stage = *to,
        EventKind::FieldsChanged { changes } => {
            for c in changes {
                if let Some(slot) = Arc::make_mut(&mut i.fields).get_mut(c.field.index()) {
                    *slot = c.new.clone();
                }
            }
        }
        EventKind::PriorityChanged { to, .. } => i.priority = *to,
        EventKind::Routed { to, .. } => i.queue = *to,
        EventKind::Commented { .. }
        | EventKind::Checked { .. }
        | EventKind::Linked { .. }
        | EventKind::ActedOn { .. }
        | EventKind::Recurred { .. }
        | EventKind::Spawned { .. }
        | EventKind::Escalated { .. }
        | EventKind::Breached { .. }
        | EventKind::OlaBreached { .. }
        | EventKind::Elapsed { .. }
        | EventKind::Notified { .. }
        | EventKind::Skipped { .. }
        | EventKind::ApprovalRequested { .. }
        | EventKind::LevelOpened { .. }
        | EventKind::ApprovalStuck { .. }
        | EventKind::Voted { .. }
        | EventKind::Delegated { .. }
        | EventKind::Reminded { .. } => {}
    }
    i.version = e.seq;
    i.updated_at = e.at;
    Some(())
}
