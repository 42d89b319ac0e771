//! The engine's side of ticket relations: reading the tickets a decision's conditions look
//! at, linking two tickets under their processes' declarations, and carrying a transition's
//! `then perform` effects to its linked tickets in the same transaction.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::Engine;
use crate::model::{LinkId, Process, SpawnValue, Transition};
use crate::runtime::approval::Holders;
use crate::runtime::catalog::Definition;
use crate::runtime::error::EngineError;
use crate::runtime::logic::Request;
use crate::runtime::notices;
use crate::runtime::relations::{self, Linked, Touched, MAX_CASCADE_DEPTH};
use crate::runtime::types::*;
use crate::runtime::values;
use crate::store::Store;

/// The link kinds a transition's `when` reads.
pub(super) fn links_read_by(t: &Transition) -> Vec<LinkId> {
    let mut links = Vec::new();
    if let Some(when) = &t.when {
        relations::links_read(&when.condition, &mut links);
    }
    links
}

/// The link kinds any `when` of the process reads: what a firing, which may perform any
/// automatic transition, must read before deciding.
pub(super) fn links_read_by_any(p: &Process) -> Vec<LinkId> {
    let mut links = Vec::new();
    for t in &p.transitions {
        if let Some(when) = &t.when {
            relations::links_read(&when.condition, &mut links);
        }
    }
    links
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, EngineError>> + Send + 'a>>;

impl<S: Store> Engine<S> {
    /// The tickets linked to instance `id` through `links` (of its process), as its definition
    /// sees them; the other kinds are left empty. One read for the links, one per ticket.
    pub(super) async fn linked(
        &self,
        def: &Definition,
        id: InstanceId,
        links: &[LinkId],
    ) -> Result<Linked, EngineError> {
        if links.is_empty() {
            return Ok(Linked::default());
        }
        let p = def.model();
        let mut linked = Linked {
            by_link: vec![Vec::new(); p.links.len()],
            read: Vec::new(),
        };
        let stored = self.store.links(id).await?;
        for &l in links {
            let decl = &p.links[l.index()];
            let Some(reader) = def.project.process(&decl.process) else {
                continue;
            };
            for other in relations::others(decl, id, &stored) {
                let Some(inst) = self.store.instance(other).await? else {
                    continue;
                };
                let inst = Arc::new(inst);
                let other_def = self.definition(inst.definition)?;
                if other_def.model().name != decl.process {
                    continue;
                }
                linked.by_link[l.index()].push(relations::view(reader, &other_def, &inst));
                if !linked.read.iter().any(|r| r.id == inst.id) {
                    linked.read.push(inst);
                }
            }
        }
        Ok(linked)
    }

    /// Make `change` also check that the linked tickets its decision read are as they were
    /// read: a version check on each (one it changes itself is checked by that change), so a
    /// `when` over linked tickets holds when the change is written, not only when decided.
    pub(super) fn check_reads(change: &mut Change, linked: &Linked) {
        for inst in &linked.read {
            let changed = change.instance.id == inst.id
                || change.cascade.iter().any(|c| c.instance.id == inst.id);
            if !changed {
                change.cascade.push(crate::runtime::logic::unchanged(inst));
            }
        }
    }

    /// Refuse a change whose spawn would give its instance a second ticket through a link
    /// kind that allows one.
    pub(super) async fn check_spawn_links(
        &self,
        def: &Definition,
        change: &Change,
    ) -> Result<(), EngineError> {
        let p = def.model();
        let id = change.instance.id;
        for spawn in &change.spawns {
            // The kind as the parent declares it (the stored kind may be the child's).
            let Some((_, kind)) = spawn.events.first().and_then(|e| match &e.kind {
                EventKind::Created { spawned_by, .. } => spawned_by.clone(),
                _ => None,
            }) else {
                continue;
            };
            let Some(l) = p.link(&kind) else { continue };
            let decl = &p.links[l.index()];
            if decl.cardinality != crate::model::Cardinality::One {
                continue;
            }
            let mine = self.store.links(id).await?;
            if let Some(existing) = mine.iter().find_map(|s| relations::other_end(decl, id, s)) {
                return Err(EngineError::LinkRefused {
                    instance: id,
                    kind: kind.clone(),
                    why: format!(
                        "`{kind}` links to one {} ticket, and this one already links to {existing}",
                        decl.process
                    ),
                    known: p.links.iter().map(|l| l.name.clone()).collect(),
                });
            }
        }
        Ok(())
    }

    /// Whether `from` (of `def`) may be linked to `to` as `kind` (a kind its process declares,
    /// or the undeclared kind of spawns): `Ok(Some(stored))` with the link to store, `Ok(None)`
    /// when it exists already.
    pub(super) async fn link_to_store(
        &self,
        def: &Definition,
        from: InstanceId,
        to: InstanceId,
        kind: &str,
    ) -> Result<Option<(InstanceId, InstanceId, String)>, EngineError> {
        let p = def.model();
        let refused = |why: String| EngineError::LinkRefused {
            instance: from,
            kind: kind.to_string(),
            why,
            known: p.links.iter().map(|l| l.name.clone()).collect(),
        };
        let Some(l) = p.link(kind) else {
            return Err(refused(match p.links.is_empty() {
                true => format!("process `{}` declares no links", p.name),
                false => format!("process `{}` declares no link `{kind}`", p.name),
            }));
        };
        let decl = &p.links[l.index()];
        if from == to {
            return Err(refused("a ticket cannot be linked to itself".into()));
        }
        let other = self
            .store
            .instance(to)
            .await?
            .ok_or(EngineError::InstanceNotFound(to))?;
        let other_def = self.definition(other.definition)?;
        let other_model = other_def.model();
        let mine = self.store.links(from).await?;
        if mine
            .iter()
            .any(|s| relations::other_end(decl, from, s) == Some(to))
        {
            return Ok(None);
        }
        let theirs = self.store.links(to).await?;
        let back = relations::reverse(decl, p, other_model);
        if let Some(why) =
            relations::refusal(decl, &other_model.name, &mine, from, &theirs, to, back)
        {
            return Err(refused(why));
        }
        let (a, b, stored_kind) = relations::stored(decl, from, to);
        Ok(Some((a, b, stored_kind.to_string())))
    }

    /// The linked tickets a `when` reads, as this action leaves them: the acting ticket and
    /// those its effects changed already are read in their new state, not as stored (the last
    /// of three work orders to finish sees its request's `all parts where stage == done` hold,
    /// itself included).
    fn see_in_flight(
        &self,
        linked: &mut Linked,
        reader_def: &Definition,
        change: &Change,
    ) -> Result<(), EngineError> {
        let reader = reader_def.model();
        for (decl, tickets) in reader.links.iter().zip(linked.by_link.iter_mut()) {
            let Some(seen_as) = reader_def.project.process(&decl.process) else {
                continue;
            };
            for ticket in tickets.iter_mut() {
                let fresh = std::iter::once(change)
                    .chain(&change.cascade)
                    .find(|c| c.instance.id == ticket.id)
                    .map(|c| &c.instance);
                if let Some(inst) = fresh {
                    let def = self.definition(inst.definition)?;
                    *ticket = relations::view(seen_as, &def, inst);
                }
            }
        }
        Ok(())
    }

    /// Perform the `then perform` effects of the transitions `change` records, on the tickets
    /// linked to its instance: their changes go into `change.cascade` (flat, in order), and
    /// `change` records on its own history what was done (`acted_on`) or why not (`skipped`).
    /// A linked ticket whose stage does not allow the action is left alone; one the action
    /// would touch twice, or past [`MAX_CASCADE_DEPTH`], is skipped and said so.
    pub(super) fn cascade<'a>(
        &'a self,
        def: &'a Definition,
        change: &'a mut Change,
        actor: &'a Actor,
        touched: &'a mut Touched,
        depth: usize,
    ) -> Boxed<'a, ()> {
        Box::pin(async move {
            let p = def.model();
            let performed: Vec<&Transition> = change
                .events
                .iter()
                .filter_map(|e| match e.kind {
                    EventKind::Transitioned { action, .. } => Some(action),
                    _ => None,
                })
                .map(|t| &p.transitions[t.index()])
                .filter(|t| !t.effects.is_empty())
                .collect();
            if performed.is_empty() {
                return Ok(());
            }
            let source = change.instance.id;
            if touched.tickets.is_empty() {
                touched.tickets.push(source);
            }
            let stored = self.store.links(source).await?;
            let now = self.clock.now();
            for t in performed {
                for effect in &t.effects {
                    let decl = &p.links[effect.link.index()];
                    let targets = relations::others(decl, source, &stored);
                    let what =
                        |other: InstanceId| format!("{} on {} {other}", effect.action, decl.name);
                    let req = Request {
                        actor,
                        now,
                        reason: None,
                        holders: &crate::runtime::approval::NO_HOLDERS,
                        linked: &relations::NO_LINKS,
                        checklist: &[],
                    };
                    // Why a linked ticket the effect reaches is not changed, on this ticket's
                    // history.
                    let skip = |change: &mut Change, other: InstanceId, reason: String| {
                        let action = what(other);
                        notices::append(change, &req, EventKind::Skipped { action, reason }, None);
                    };
                    for other in targets {
                        if touched.tickets.contains(&other) {
                            skip(
                                change,
                                other,
                                "this action has changed that ticket already".into(),
                            );
                            continue;
                        }
                        let (inst, other_def, task) = match self.load(other).await {
                            Ok(loaded) => loaded,
                            Err(EngineError::InstanceNotFound(_)) => continue,
                            Err(e) => return Err(e),
                        };
                        let om = other_def.model();
                        if om.name != decl.process {
                            continue;
                        }
                        let Some(tid) = om.transition(&effect.action) else {
                            skip(
                                change,
                                other,
                                format!(
                                    "version {} of `{}` has no action `{}`",
                                    other_def.version, om.name, effect.action
                                ),
                            );
                            continue;
                        };
                        let ot = &om.transitions[tid.index()];
                        if !ot.from.contains(&inst.stage) {
                            // Not applicable (an incident closed already, say): left alone.
                            continue;
                        }
                        if depth > MAX_CASCADE_DEPTH {
                            skip(
                                change,
                                other,
                                format!("effects may reach {MAX_CASCADE_DEPTH} tickets deep"),
                            );
                            continue;
                        }
                        let input = effect_input(p, &change.instance, om, &effect.fields);
                        let holders = match om.approval_in(ot.to).is_some()
                            || other_def.manager_depth() > 0
                        {
                            true => self.holders(&other_def, &inst, task.as_ref()).await?,
                            false => Holders::default(),
                        };
                        let mut linked = self.linked(&other_def, other, &links_read_by(ot)).await?;
                        self.see_in_flight(&mut linked, &other_def, change)?;
                        // What the effect decided (to act or to skip) rests on these reads:
                        // checked in the commit like the action's own, so two work orders
                        // finishing at once cannot each see the other open and both skip.
                        Self::check_reads(change, &linked);
                        let reason = format!("{} {source}: {}", p.name, t.name);
                        let ticked = match ot.requires_checklist {
                            true => crate::runtime::checklist::state(
                                om,
                                inst.stage,
                                &self.store.history(other).await?,
                            ),
                            false => Vec::new(),
                        };
                        let other_req = Request {
                            actor,
                            now,
                            reason: Some(reason),
                            holders: &holders,
                            linked: &linked,
                            checklist: &ticked,
                        };
                        let decided = self.logic.perform_effect(
                            &self.catalog,
                            &other_def,
                            &inst,
                            task.as_ref(),
                            &effect.action,
                            &input,
                            &other_req,
                        );
                        let mut other_change = match decided {
                            Ok(c) => c,
                            Err(e) => {
                                skip(change, other, e.to_string());
                                continue;
                            }
                        };
                        touched.tickets.push(other);
                        self.assign_all(&mut other_change, task.as_ref()).await?;
                        self.cascade(&other_def, &mut other_change, actor, touched, depth + 1)
                            .await?;
                        self.schedule(&other_def, None, &mut other_change).await?;
                        other_change.task_before = task;
                        let nested = std::mem::take(&mut other_change.cascade);
                        change.cascade.push(other_change);
                        change.cascade.extend(nested);
                        notices::append(
                            change,
                            &req,
                            EventKind::ActedOn {
                                link: decl.name.clone(),
                                other,
                                action: effect.action.clone(),
                            },
                            None,
                        );
                    }
                }
            }
            Ok(())
        })
    }
}

/// The fields an effect's `with` gives the linked ticket, as API input of its process.
fn effect_input(
    p: &Process,
    source: &Arc<Instance>,
    target: &Process,
    fields: &[crate::model::SpawnField],
) -> Map<String, Json> {
    let mut input = Map::new();
    for set in fields {
        let Some(f) = target.field(&set.name) else {
            continue;
        };
        let value = match &set.value {
            SpawnValue::Parent(pf) => source.fields[pf.index()]
                .as_ref()
                .map(|v| values::to_json(&p.fields[pf.index()], v)),
            SpawnValue::Literal(v) => Some(values::to_json(&target.fields[f.index()], v)),
        };
        if let Some(v) = value {
            input.insert(set.name.clone(), v);
        }
    }
    input
}
