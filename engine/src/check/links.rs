//! Ticket relations: the link kinds a process declares (`links { ... }`), and what refers to
//! linked tickets: `spawns ... as LINK`, a transition's `when` over linked tickets, and its
//! `then perform ACTION on LINK` effects.
//!
//! The declarations are checked with their process; whatever needs another process (a `via`
//! reads the other side's declaration, a link condition's `where` tests the linked process's
//! fields and stages, an effect performs one of its transitions) waits until every process has
//! been read, and is checked against the [`Signature`]s of all of them: processes may be
//! declared in any order and any file.

use std::collections::HashMap;

use itsmflow_dsl::ast::{self, Ident, Span};
use itsmflow_dsl::Diagnostic;

use super::condition::{CondScope, LinkAccess};
use super::names::{self, did_you_mean, Names};
use super::process::ProcessScope;
use super::Ctx;
use crate::model::{
    Cardinality, Effect, Field, FieldId, FieldType, Guard, LinkDecl, LinkId, Process, Spawn,
};

/// What other processes may refer to of one process, checked or not: its names and their
/// types, as far as they could be read.
#[derive(Clone, Debug)]
pub(crate) struct Signature {
    pub name: String,
    pub fields: Names,
    pub field_models: Vec<Field>,
    pub field_types: Vec<FieldType>,
    pub priorities: Names,
    pub stages: Names,
    /// Every transition, by [`TransitionId`](crate::model::TransitionId): its name and the
    /// fields it requires.
    pub transitions: Vec<(String, Vec<FieldId>)>,
    /// The link kinds, by [`LinkId`].
    pub links: Names,
    pub link_decls: Vec<DeclaredLink>,
}

/// A link kind as declared and as the model has it.
#[derive(Clone, Debug)]
pub(crate) struct DeclaredLink {
    pub model: LinkDecl,
    pub ast: ast::LinkDecl,
}

impl Signature {
    /// `unknown-link`: `ident` names no link kind of this process.
    pub fn unknown_link(&self, ident: &Ident) -> Diagnostic {
        let d = Diagnostic::error(
            "unknown-link",
            ident.span,
            format!("`{}` declares no link `{}`", self.name, ident.name),
        )
        .with_label("no link kind has this name");
        match did_you_mean(&ident.name, self.links.iter()) {
            Some(s) => d.with_help(format!("did you mean `{s}`?")),
            None if self.links.len() == 0 => d.with_help(format!(
                "declare the link kinds of `{}` in a `links` block: `links {{ {}: many PROCESS }}`",
                self.name, ident.name
            )),
            None => d.with_help(format!(
                "the links of `{}` are: {}",
                self.name,
                self.links.iter().collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// The fields of the process as `with` reads them: name and type, by [`FieldId`].
    pub fn typed_fields(&self) -> Vec<(String, FieldType)> {
        self.field_models
            .iter()
            .map(|f| (f.name.clone(), f.ty.clone()))
            .collect()
    }
}

/// The signature of a process, from its scope and checked transitions.
pub(super) fn signature(
    name: &str,
    scope: &ProcessScope,
    transitions: &[crate::model::Transition],
) -> Signature {
    Signature {
        name: name.to_string(),
        fields: scope.fields.clone(),
        field_models: scope.field_models.clone(),
        field_types: scope.field_types.clone(),
        priorities: scope.priorities.clone(),
        stages: scope.stages.clone(),
        transitions: transitions
            .iter()
            .map(|t| (t.name.clone(), t.requires.clone()))
            .collect(),
        links: scope.links.clone(),
        link_decls: scope.link_decls.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Declarations

/// `links { ... }`: each name once, none the name of a field, each to a declared process.
/// Declares the links in `scope`; the model's [`LinkDecl`]s are `scope.link_decls`.
pub(super) fn check_declarations(block: &ast::Links, scope: &mut ProcessScope, ctx: &mut Ctx) {
    for decl in &block.links {
        if scope.links.declare(&decl.name, &mut ctx.diags).is_none() {
            continue;
        }
        if let Some(field) = scope.fields.get(&decl.name.name) {
            ctx.diags.push(
                Diagnostic::error(
                    "link-shadows-field",
                    decl.name.span,
                    format!("link `{}` has the name of a field", decl.name),
                )
                .with_label("also a field of this process")
                .with_secondary(scope.fields.span(field), "the field")
                .with_help(
                    "a condition could not tell the link from the field: rename one of them",
                ),
            );
        }
        let process = &decl.process;
        if ctx.processes.get(&process.name).is_none() && !ctx.broken.contains(&process.name) {
            let d = names::unknown("process", process, ctx.processes.iter());
            ctx.diags.push(Diagnostic {
                code: "link-unknown-process",
                label: "no process has this name".to_string(),
                ..d
            });
        }
        scope.link_decls.push(DeclaredLink {
            model: LinkDecl {
                name: decl.name.name.clone(),
                process: process.name.clone(),
                cardinality: match decl.cardinality.node {
                    ast::Cardinality::One => Cardinality::One,
                    ast::Cardinality::Many => Cardinality::Many,
                },
                via: decl.via.as_ref().map(|v| v.name.clone()),
            },
            ast: decl.clone(),
        });
    }
}

/// `spawns PROCESS as LINK`: LINK must be a link kind of this process (`scope`, named `this`)
/// to PROCESS (when `known`: an unknown one is reported as such). Returns the link's name for
/// the model (`spawned`, undeclared, without `as`).
pub(super) fn spawn_link(
    process: &Ident,
    link: Option<&Ident>,
    (scope, this, known): (&ProcessScope, &str, bool),
    diags: &mut Vec<Diagnostic>,
) -> String {
    let Some(link) = link else {
        return Spawn::DEFAULT_LINK.to_string();
    };
    match scope.links.get(&link.name) {
        None => {
            let d = Diagnostic::error(
                "unknown-link",
                link.span,
                format!("`{this}` declares no link `{}`", link.name),
            )
            .with_label("the spawned ticket is linked through a declared link kind");
            let close = scope
                .link_decls
                .iter()
                .filter(|l| l.model.process == process.name)
                .map(|l| l.model.name.as_str());
            diags.push(match did_you_mean(&link.name, close) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help(format!(
                    "declare it in `{this}`: `links {{ {}: one {} }}`",
                    link.name, process.name
                )),
            });
        }
        Some(id) => {
            let decl = &scope.link_decls[id as usize];
            if known && decl.model.process != process.name {
                diags.push(
                    Diagnostic::error(
                        "spawn-link-mismatch",
                        link.span,
                        format!(
                            "`{}` links to a `{}` ticket, and this spawns a `{}` ticket",
                            link.name, decl.model.process, process.name
                        ),
                    )
                    .with_label(format!("not a link to `{}`", process.name))
                    .with_secondary(decl.ast.span, "declared here")
                    .with_help(format!(
                        "link it through a link kind to `{}`, e.g. `links {{ {}: one {} }}`",
                        process.name, link.name, process.name
                    )),
                );
            }
        }
    }
    link.name.clone()
}

// ---------------------------------------------------------------------------------------------
// Across processes

/// A transition's `when`, waiting for every process to be read.
pub(crate) struct PendingGuard {
    /// The process's name and the index of the transition in it.
    pub process: String,
    pub transition: usize,
    pub condition: ast::Condition,
}

/// A `then perform ACTION on LINK with { ... }`, waiting for every process to be read.
pub(crate) struct PendingEffect {
    pub clause: Span,
    pub process: String,
    pub transition: usize,
    pub action: Ident,
    pub link: Ident,
    pub with: Vec<ast::SpawnEntry>,
}

/// Everything about links that needs more than one process: `via` declarations, `when`
/// conditions, effects and their cycles. Fills in the transitions' [`Guard`]s and [`Effect`]s
/// of the processes that checked.
pub(super) fn check_across(
    signatures: &[Signature],
    guards: &[PendingGuard],
    effects: &[PendingEffect],
    processes: &mut [Process],
    diags: &mut Vec<Diagnostic>,
) {
    for sig in signatures {
        for decl in &sig.link_decls {
            check_via(sig, decl, signatures, diags);
        }
    }
    for g in guards {
        let Some(sig) = signatures.iter().find(|s| s.name == g.process) else {
            continue;
        };
        let scope = CondScope {
            fields: &sig.fields,
            field_types: &sig.field_types,
            priorities: &sig.priorities,
            stages: None,
            links: LinkAccess::When {
                process: sig,
                project: signatures,
            },
        };
        let Some(condition) = scope.resolve(&g.condition, diags) else {
            continue;
        };
        if let Some(t) = transition_mut(processes, &g.process, g.transition) {
            t.when = Some(Guard {
                condition,
                text: itsmflow_dsl::format::condition_line(&g.condition),
            });
        }
    }
    let mut edges = Vec::new();
    for e in effects {
        let Some(sig) = signatures.iter().find(|s| s.name == e.process) else {
            continue;
        };
        let Some(effect) = check_effect(sig, e, signatures, diags) else {
            continue;
        };
        let from = sig
            .transitions
            .get(e.transition)
            .map(|(name, _)| name.clone())
            .unwrap_or_default();
        let target = &sig.link_decls[effect.link.index()].model.process;
        // A transition that performs itself on linked tickets of its own process (a parent's
        // `resolve` resolving its children) follows the links, a ticket at a time, and the
        // engine changes each ticket once per action: not a circle of effects.
        if *target != e.process || from != effect.action {
            edges.push(Edge {
                from: (e.process.clone(), from),
                to: (target.clone(), effect.action.clone()),
                clause: e.clause,
            });
        }
        if let Some(t) = transition_mut(processes, &e.process, e.transition) {
            t.effects.push(effect);
        }
    }
    report_cycles(&edges, diags);
}

fn transition_mut<'p>(
    processes: &'p mut [Process],
    process: &str,
    index: usize,
) -> Option<&'p mut crate::model::Transition> {
    processes
        .iter_mut()
        .find(|p| p.name == process)
        .and_then(|p| p.transitions.get_mut(index))
}

/// `KIND: ... PROCESS via OTHER`: PROCESS declares OTHER, stored from its side (no `via`
/// itself), to this process.
fn check_via(sig: &Signature, decl: &DeclaredLink, all: &[Signature], diags: &mut Vec<Diagnostic>) {
    let Some(via) = &decl.ast.via else {
        return;
    };
    // An unknown process is reported as such.
    let Some(other) = all.iter().find(|s| s.name == decl.model.process) else {
        return;
    };
    let mismatch = |message: String, label: &str, help: String| {
        Diagnostic::error("link-via-mismatch", via.span, message)
            .with_label(label.to_string())
            .with_help(help)
    };
    let declare = format!(
        "declare it in `{}`: `links {{ {}: one {} }}`",
        other.name, via.name, sig.name
    );
    match other.links.get(&via.name) {
        None => {
            let back: Vec<&str> = other
                .link_decls
                .iter()
                .filter(|l| l.model.via.is_none() && l.model.process == sig.name)
                .map(|l| l.model.name.as_str())
                .collect();
            let help = match did_you_mean(&via.name, back.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None if back.is_empty() => declare,
                None => format!(
                    "the links `{}` stores to `{}` are: {}",
                    other.name,
                    sig.name,
                    back.join(", ")
                ),
            };
            diags.push(mismatch(
                format!("`{}` declares no link `{}`", other.name, via.name),
                &format!("`via` reads a link `{}` declares", other.name),
                help,
            ));
        }
        Some(id) => {
            let target = &other.link_decls[id as usize];
            let d = if let Some(twice) = &target.model.via {
                mismatch(
                    format!(
                        "`{}` of `{}` is itself read `via {twice}`, not stored from `{}`",
                        via.name, other.name, other.name
                    ),
                    "`via` names a link the other process stores",
                    format!(
                        "name a link `{}` stores to `{}` (one without `via`)",
                        other.name, sig.name
                    ),
                )
            } else if target.model.process != sig.name {
                mismatch(
                    format!(
                        "`{}` of `{}` links to `{}`, not to `{}`",
                        via.name, other.name, target.model.process, sig.name
                    ),
                    &format!("not a link to `{}`", sig.name),
                    declare,
                )
            } else {
                return;
            };
            diags.push(d.with_secondary(
                target.ast.span,
                format!("`{}` declares `{}` here", other.name, via.name),
            ));
        }
    }
}

/// One effect, checked: its link, the linked process's transition, what `with` sets; warns when
/// the transition requires a field a linked ticket may not have.
fn check_effect(
    sig: &Signature,
    e: &PendingEffect,
    all: &[Signature],
    diags: &mut Vec<Diagnostic>,
) -> Option<Effect> {
    let Some(id) = sig.links.get(&e.link.name) else {
        diags.push(sig.unknown_link(&e.link));
        return None;
    };
    let decl = &sig.link_decls[id as usize].model;
    let target = all.iter().find(|s| s.name == decl.process)?;
    let action = target
        .transitions
        .iter()
        .find(|(name, _)| *name == e.action.name);
    let Some((_, requires)) = action else {
        let d = Diagnostic::error(
            "unknown-transition",
            e.action.span,
            format!("`{}` has no transition `{}`", target.name, e.action.name),
        )
        .with_label(format!(
            "`{}` links to `{}`, whose transitions are performed",
            e.link.name, target.name
        ));
        let names: Vec<&str> = target.transitions.iter().map(|(n, _)| n.as_str()).collect();
        diags.push(match did_you_mean(&e.action.name, names.iter().copied()) {
            Some(s) => d.with_help(format!("did you mean `{s}`?")),
            None if names.is_empty() => {
                d.with_help(format!("`{}` has no transitions", target.name))
            }
            None => d.with_help(format!(
                "the transitions of `{}` are: {}",
                target.name,
                names.join(", ")
            )),
        });
        return None;
    };
    let from_fields = sig.typed_fields();
    let with = super::With {
        entries: &e.with,
        from: Some(&sig.name),
        from_fields: &from_fields,
    };
    let (fields, set) = super::spawn_with(&with, &target.name, &target.field_models, diags);
    // Fields the linked ticket may not have (any but those required at creation: a default
    // may be cleared), that the action requires and `with` does not set.
    let unset: Vec<&str> = requires
        .iter()
        .filter_map(|f| target.field_models.get(f.index()))
        .filter(|f| !f.required && !set.contains(f.name.as_str()))
        .map(|f| f.name.as_str())
        .collect();
    if !unset.is_empty() {
        let list = unset
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", ");
        diags.push(
            Diagnostic::warning(
                "effect-may-be-refused",
                e.clause,
                format!(
                    "`{}` of `{}` requires {list}, which a linked ticket may not have",
                    e.action.name, target.name
                ),
            )
            .with_label(format!("a linked ticket without {list} is left as it is"))
            .with_help(format!(
                "set it here: `with {{ {}: ... }}`, or make it required in `{}`",
                unset[0], target.name
            )),
        );
    }
    Some(Effect {
        link: LinkId(id),
        action: e.action.name.clone(),
        fields,
    })
}

/// `(process, transition)`.
type Node = (String, String);

/// Performing `from` also performs `to` on linked tickets, as `clause` says.
struct Edge {
    from: Node,
    to: Node,
    clause: Span,
}

/// `effect-cycle`: effects that perform each other in a circle, reported once per circle at the
/// clause that closes it (in a depth-first walk from the effects in the order written).
fn report_cycles(edges: &[Edge], diags: &mut Vec<Diagnostic>) {
    let mut out: HashMap<&Node, Vec<usize>> = HashMap::new();
    for (i, e) in edges.iter().enumerate() {
        out.entry(&e.from).or_default().push(i);
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    let mut marks: HashMap<&Node, Mark> = HashMap::new();
    for start in edges.iter().map(|e| &e.from) {
        if marks.contains_key(start) {
            continue;
        }
        // The path walked: each node, with the edges by which it was left (the last one taken
        // is the position before `next`), and how many of its out-edges are tried.
        let mut path: Vec<(&Node, Option<usize>, usize)> = vec![(start, None, 0)];
        marks.insert(start, Mark::Open);
        while let Some(top) = path.last_mut() {
            let node = top.0;
            let next = out.get(node).and_then(|es| es.get(top.2)).copied();
            top.2 += 1;
            let Some(ei) = next else {
                marks.insert(node, Mark::Done);
                path.pop();
                continue;
            };
            top.1 = Some(ei);
            let to = &edges[ei].to;
            match marks.get(to) {
                Some(Mark::Done) => {}
                Some(Mark::Open) => {
                    let at = path.iter().position(|(n, _, _)| *n == to).unwrap_or(0);
                    let chain: Vec<String> = path[at..]
                        .iter()
                        .map(|(n, _, _)| format!("{}.{}", n.0, n.1))
                        .chain(std::iter::once(format!("{}.{}", to.0, to.1)))
                        .collect();
                    let mut d = Diagnostic::error(
                        "effect-cycle",
                        edges[ei].clause,
                        format!(
                            "these effects perform each other in a circle: {}",
                            chain.join(" -> ")
                        ),
                    )
                    .with_label("this closes the circle")
                    .with_help(
                        "each action would perform the next on linked tickets, without end; remove one of the `then perform` clauses",
                    );
                    for (n, taken, _) in &path[at..path.len() - 1] {
                        if let Some(t) = taken {
                            d = d.with_secondary(
                                edges[*t].clause,
                                format!(
                                    "`{}.{}` performs `{}.{}`",
                                    n.0, n.1, edges[*t].to.0, edges[*t].to.1
                                ),
                            );
                        }
                    }
                    diags.push(d);
                }
                None => {
                    marks.insert(to, Mark::Open);
                    path.push((to, None, 0));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use itsmflow_dsl::Sources;

    use crate::model::*;

    const PROJECT: &str = r#"
process problem {
  fields {
    title: text required
    root_cause: text
  }
  links {
    incidents: many incident via caused_by
    fixed_by: many change via fixes
  }
  stage logged initial
  stage resolved final
  transition resolve: logged -> resolved requires root_cause when (any incidents and all incidents where stage != new) or no fixed_by where stage == registered then perform resolve on incidents with { resolution: root_cause, closure: solved } then perform implement on fixed_by
  transition fix: logged -> logged spawns change as fixed_by with { summary: title }
  transition escalate: logged -> logged when any incidents where priority <= P1
}

process incident {
  fields {
    resolution: text
    closure: enum(solved, workaround)
  }
  priorities P1, P2
  targets on 24x7 {
    P1: resolve 4h
    P2: resolve 1d
  }
  links {
    caused_by: one problem
  }
  stage new initial
  stage resolved final
  transition resolve: new -> resolved when not any caused_by where title == "x"
}

process change {
  fields {
    summary: text
  }
  links {
    fixes: one problem
  }
  stage registered initial
  stage done final
  transition implement: registered -> done
}
"#;

    fn project() -> Project {
        let mut sources = Sources::new();
        sources.add("links.itsm", PROJECT);
        let checked = crate::check(&sources);
        assert!(checked.diagnostics.is_empty(), "{:#?}", checked.diagnostics);
        checked.project.expect("a project")
    }

    #[test]
    fn links_guards_and_effects_fill_the_model() {
        let project = project();
        let problem = project.process("problem").expect("problem");
        assert_eq!(
            problem.links,
            [
                LinkDecl {
                    name: "incidents".into(),
                    process: "incident".into(),
                    cardinality: Cardinality::Many,
                    via: Some("caused_by".into()),
                },
                LinkDecl {
                    name: "fixed_by".into(),
                    process: "change".into(),
                    cardinality: Cardinality::Many,
                    via: Some("fixes".into()),
                },
            ]
        );
        let resolve = &problem.transitions[0];
        let guard = resolve.when.as_ref().expect("a guard");
        assert_eq!(
            guard.text,
            "any incidents and all incidents where stage != new or no fixed_by where stage == registered"
        );
        let incidents = LinkId(0);
        let fixed_by = LinkId(1);
        assert_eq!(
            guard.condition,
            Condition::Or(vec![
                Condition::And(vec![
                    Condition::Linked {
                        quantifier: Quantifier::Any,
                        link: incidents,
                        test: None,
                    },
                    Condition::Linked {
                        quantifier: Quantifier::All,
                        link: incidents,
                        test: Some(Box::new(Condition::Compare {
                            subject: Subject::Stage,
                            op: CmpOp::Ne,
                            value: Operand::Stage(StageId(0)),
                        })),
                    },
                ]),
                Condition::Linked {
                    quantifier: Quantifier::No,
                    link: fixed_by,
                    test: Some(Box::new(Condition::Compare {
                        subject: Subject::Stage,
                        op: CmpOp::Eq,
                        value: Operand::Stage(StageId(0)),
                    })),
                },
            ])
        );
        assert_eq!(
            resolve.effects,
            [
                Effect {
                    link: incidents,
                    action: "resolve".into(),
                    fields: vec![
                        SpawnField {
                            name: "resolution".into(),
                            value: SpawnValue::Parent(FieldId(1)),
                        },
                        SpawnField {
                            name: "closure".into(),
                            value: SpawnValue::Literal(Value::Enum(0)),
                        },
                    ],
                },
                Effect {
                    link: fixed_by,
                    action: "implement".into(),
                    fields: Vec::new(),
                },
            ]
        );
        let spawn = problem.transitions[1].spawns.first().expect("a spawn");
        assert_eq!(spawn.link, "fixed_by");
        assert!(problem.transitions[1].when.is_none());

        // In a linked ticket's test, `priority` and the fields are the linked process's.
        let escalate = problem.transitions[2].when.as_ref().expect("a guard");
        assert_eq!(
            escalate.condition,
            Condition::Linked {
                quantifier: Quantifier::Any,
                link: incidents,
                test: Some(Box::new(Condition::Compare {
                    subject: Subject::Priority,
                    op: CmpOp::Le,
                    value: Operand::Priority(PriorityId(0)),
                })),
            }
        );
        let incident = project.process("incident").expect("incident");
        let guard = incident.transitions[0].when.as_ref().expect("a guard");
        assert_eq!(guard.text, "not any caused_by where title == \"x\"");
        assert!(matches!(
            &guard.condition,
            Condition::Not(inner) if matches!(**inner, Condition::Linked { quantifier: Quantifier::Any, link: LinkId(0), .. })
        ));
        assert!(guard.condition.reads_links());
    }

    /// Routing and approval conditions never read links, so the coverage analysis of a process
    /// never meets one; were it to, it would not panic.
    #[test]
    fn coverage_survives_a_link_condition() {
        use super::super::coverage::Domain;
        use super::super::names::Names;
        let fields = Names::new("field");
        let priorities = Names::new("priority");
        let domain = Domain {
            fields: &fields,
            field_types: &[],
            priorities: &priorities,
            may_be_unset: &[],
        };
        let linked = Condition::Linked {
            quantifier: Quantifier::All,
            link: LinkId(3),
            test: Some(Box::new(Condition::Compare {
                subject: Subject::Stage,
                op: CmpOp::Eq,
                value: Operand::Stage(StageId(7)),
            })),
        };
        let findings = domain.analyse(&[Some(&linked)]);
        assert!(findings.shadowed.is_empty());
        assert!(findings.uncovered.is_some());
    }
}
