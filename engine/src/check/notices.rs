//! Notifications (`notify ...`) in escalation steps, stages and transitions: recipients that
//! resolve (roles, people the ticket names, the approvers where an approval is open) and message
//! templates whose placeholders name values of the ticket.

use std::collections::HashMap;

use itsmflow_dsl::ast::{self, MessagePiece, Span};
use itsmflow_dsl::Diagnostic;

use super::names::did_you_mean;
use super::people;
use super::process::ProcessScope;
use super::Ctx;
use crate::model::{FieldId, Notice, PersonRef, Recipient, RoleId, TemplatePart};

/// The placeholders every message may use besides the process's fields. They mean the same in
/// every process, even one with a field of the same name (`priority` and `stage` cannot be
/// field names; `id` and `process` can, and are then out of a message's reach).
const BUILT_IN: [&str; 4] = ["id", "process", "stage", "priority"];

/// Where a `notify` is written, for what `approvers` may mean there.
#[derive(Clone, Copy)]
pub(super) enum Place<'a> {
    /// An escalation step: the approvers of whatever level is open when it fires, so they make
    /// sense wherever the process asks for approval.
    Escalation {
        process: &'a str,
        any_approval: bool,
    },
    /// Entering a stage: the approvers of the level its approval opens.
    Stage { name: &'a str, has_approval: bool },
    /// Performing a transition, and the stage it leads to when that stage asks for approval.
    Transition {
        name: &'a str,
        to_approval: Option<&'a str>,
    },
}

/// A recipient as a key, to find one named twice without comparing every pair.
#[derive(PartialEq, Eq, Hash)]
enum Key {
    Role(RoleId),
    Person(PersonRef),
    Approvers,
}

impl Key {
    fn of(r: &Recipient) -> Key {
        match r {
            Recipient::Role(role) => Key::Role(*role),
            Recipient::Person(p) => Key::Person(p.clone()),
            Recipient::Approvers => Key::Approvers,
        }
    }
}

/// What a `notify` may refer to besides the process's names.
pub(super) struct NoticeScope<'a> {
    pub scope: &'a ProcessScope,
    /// The process has no business hours: `during business hours` never holds anything.
    pub always_open: bool,
}

/// Check a `notify`; `None` (with every problem reported) if any part of it is wrong.
pub(super) fn check_notify(
    n: &ast::Notify,
    place: Place,
    ns: &NoticeScope,
    ctx: &mut Ctx,
) -> Option<Notice> {
    let mut ok = true;
    let mut to: Vec<Recipient> = Vec::with_capacity(n.to.len());
    let mut seen: HashMap<Key, Span> = HashMap::with_capacity(n.to.len());
    for r in &n.to {
        let resolved = match r {
            ast::Recipient::Role { role, .. } => ctx.role(role).map(Recipient::Role),
            ast::Recipient::Person(p) => {
                people::resolve(p, people::Place::Notice, ns.scope, ctx).map(Recipient::Person)
            }
            ast::Recipient::Approvers(span) => approvers(*span, place, ctx),
        };
        let Some(resolved) = resolved else {
            ok = false;
            continue;
        };
        if let Some(first) = seen.get(&Key::of(&resolved)) {
            ctx.diags.push(
                Diagnostic::error(
                    "duplicate-definition",
                    r.span(),
                    "this notification names the same recipient twice",
                )
                .with_label("named again here")
                .with_secondary(*first, "first named here")
                .with_help("each recipient is notified once; remove one of them"),
            );
            ok = false;
            continue;
        }
        seen.insert(Key::of(&resolved), r.span());
        to.push(resolved);
    }
    let message = match &n.message {
        Some(m) => {
            let parts = check_message(m, ns.scope, ctx);
            ok &= parts.is_some();
            parts
        }
        None => None,
    };
    if let (Some(span), true) = (n.business_hours, ns.always_open) {
        ctx.diags.push(never_held(span));
    }
    ok.then(|| Notice {
        to,
        message,
        business_hours: n.business_hours.is_some(),
    })
}

/// `during business hours` in a process whose targets all run on `24x7`.
pub(super) fn never_held(span: Span) -> Diagnostic {
    Diagnostic::warning(
        "never-held",
        span,
        "the process has no business hours, so this notification is never held",
    )
    .with_label("every target runs on `24x7`")
    .with_help(
        "give the targets a calendar with hours (`targets on office`), or remove `during business hours`",
    )
}

/// `approvers`, where someone may be asked to approve.
fn approvers(span: Span, place: Place, ctx: &mut Ctx) -> Option<Recipient> {
    let (message, label, help) = match place {
        Place::Escalation {
            any_approval: true, ..
        }
        | Place::Stage {
            has_approval: true, ..
        } => return Some(Recipient::Approvers),
        Place::Escalation { process, .. } => (
            format!("process `{process}` asks nobody to approve"),
            "no approval to notify".to_string(),
            "add an `approval in STAGE { ... }`, or notify a role or a person".to_string(),
        ),
        Place::Stage { name, .. } => (
            format!("nobody is asked to approve in stage `{name}`"),
            "no approval in this stage".to_string(),
            format!("add `approval in {name} {{ ... }}`, or notify a role or a person"),
        ),
        Place::Transition { name, to_approval } => (
            format!("transition `{name}` has no approvers to notify"),
            "approvers are known only while an approval is open".to_string(),
            match to_approval {
                Some(stage) => format!(
                    "notify them as the approval opens: `notify approvers` in stage `{stage}`"
                ),
                None => "notify approvers from a stage that asks for approval, or from an escalation step".to_string(),
            },
        ),
    };
    ctx.diags.push(
        Diagnostic::error("approvers-without-approval", span, message)
            .with_label(label)
            .with_help(help),
    );
    None
}

/// A message's pieces as template parts; `None` (reported) if the message is blank or a piece
/// is wrong.
fn check_message(
    m: &ast::Message,
    scope: &ProcessScope,
    ctx: &mut Ctx,
) -> Option<Vec<TemplatePart>> {
    if m.text.trim().is_empty() {
        ctx.diags.push(
            Diagnostic::error("empty-message", m.span, "this message is empty")
                .with_label("nothing to say")
                .with_help("write a message, or leave it out for the engine's own words"),
        );
        return None;
    }
    let mut ok = true;
    let mut parts: Vec<TemplatePart> = Vec::with_capacity(m.pieces.len());
    for piece in &m.pieces {
        let part = match piece {
            MessagePiece::Text(t) => {
                match parts.last_mut() {
                    Some(TemplatePart::Text(prev)) => prev.push_str(t),
                    _ => parts.push(TemplatePart::Text(t.clone())),
                }
                continue;
            }
            MessagePiece::Placeholder(name) => placeholder(name, scope, ctx),
            MessagePiece::Unclosed(span) => {
                ctx.diags.push(
                    Diagnostic::error("invalid-message", *span, "this `{` is not closed")
                        .with_label("no `}` closes it")
                        .with_help(
                            "close the placeholder, as in `{id}`, or write `{{` for a brace",
                        ),
                );
                None
            }
            MessagePiece::Unopened(span) => {
                ctx.diags.push(
                    Diagnostic::error("invalid-message", *span, "this `}` closes nothing")
                        .with_label("no `{` before it")
                        .with_help("write `}}` for a brace"),
                );
                None
            }
            MessagePiece::NotAName(inside, span) => {
                let trimmed = inside.trim();
                let is_name = trimmed
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && trimmed
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_');
                let help = if is_name {
                    format!("write `{{{trimmed}}}`, without spaces")
                } else {
                    "a placeholder is a field's name between braces, such as `{id}`; write `{{` and `}}` for braces".to_string()
                };
                let what = if inside.is_empty() {
                    "`{}` names nothing".to_string()
                } else {
                    format!("`{{{inside}}}` is not a placeholder")
                };
                ctx.diags.push(
                    Diagnostic::error("invalid-message", *span, what)
                        .with_label("not a name between the braces")
                        .with_help(help),
                );
                None
            }
        };
        match part {
            Some(p) => parts.push(p),
            None => ok = false,
        }
    }
    ok.then_some(parts)
}

/// `{name}`: a built-in value or a field of the process.
fn placeholder(name: &ast::Ident, scope: &ProcessScope, ctx: &mut Ctx) -> Option<TemplatePart> {
    match name.as_str() {
        "id" => return Some(TemplatePart::Id),
        "process" => return Some(TemplatePart::Process),
        "stage" => return Some(TemplatePart::Stage),
        "priority" if scope.priorities.len() == 0 => {
            ctx.diags.push(
                Diagnostic::error(
                    "no-priorities",
                    name.span,
                    "`{priority}` in a process without priorities",
                )
                .with_label("tickets of this process have no priority")
                .with_help("declare priorities, most urgent first: `priorities P1, P2, P3`"),
            );
            return None;
        }
        "priority" => return Some(TemplatePart::Priority),
        _ => {}
    }
    if let Some(id) = scope.fields.get(&name.name) {
        return Some(TemplatePart::Field(FieldId(id)));
    }
    let d = Diagnostic::error(
        "unknown-placeholder",
        name.span,
        format!("unknown placeholder `{{{name}}}`"),
    )
    .with_label("neither a field nor a value every ticket has");
    let candidates = scope.fields.iter().chain(BUILT_IN);
    let d = match did_you_mean(&name.name, candidates) {
        Some(s) => d.with_help(format!("did you mean `{{{s}}}`?")),
        None => d.with_help(
            "a placeholder is a field of the process, or `id`, `process`, `stage` or `priority`; write `{{` for a brace",
        ),
    };
    ctx.diags.push(d);
    None
}

#[cfg(test)]
mod tests {
    use crate::model::{
        EscalationAction, FieldId, Notice, PersonRef, Recipient, RoleId, TemplatePart,
    };

    use super::super::test_support::{checked, problems};

    const NOTICES: &str = r#"role agent
role team_lead
calendar office {
  timezone "Europe/Amsterdam"
  hours mon-fri 08:00-17:00
}
process incident {
  fields {
    caller: person required
    title: text
    resolution: text
  }
  priorities P1, P2
  targets on office {
    P1: resolve 4h
    P2: resolve 1d
  }
  stage new initial
  stage approving {
    notify approvers "Please approve {id}: {title}"
  }
  stage resolved {
    stops resolve
    notify caller "Incident {id} is resolved: {resolution} {{ok}}" during business hours
    notify manager of caller and role team_lead
  }
  stage closed final
  transition start: new -> approving notify creator
  transition resolve: approving -> resolved by role agent notify caller "{process} {id} in {stage} at {priority}" notify role agent
  transition close: resolved -> closed by caller or after 3d
  approval in approving {
    otherwise => any 1 of role team_lead
    on approve => resolved
    on reject => closed
  }
  escalation on resolve {
    at 50% => notify caller and role team_lead "{title} is half way" during business hours, raise priority
    at 100% => notify approvers and assignee
  }
}
"#;

    #[test]
    fn notices_come_out_as_written() {
        let checked = checked(NOTICES);
        assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
        let project = checked.project.expect("a project");
        let p = &project.processes[0];
        let (agent, team_lead) = (RoleId(0), RoleId(1));
        let (caller, title, resolution) = (
            PersonRef::Field(FieldId(0)),
            TemplatePart::Field(FieldId(1)),
            TemplatePart::Field(FieldId(2)),
        );
        let text = |s: &str| TemplatePart::Text(s.to_string());
        let stage_notices: Vec<&[Notice]> = p.stages.iter().map(|s| &s.notices[..]).collect();
        assert_eq!(
            stage_notices,
            [
                &[][..],
                &[Notice {
                    to: vec![Recipient::Approvers],
                    message: Some(vec![
                        text("Please approve "),
                        TemplatePart::Id,
                        text(": "),
                        title.clone(),
                    ]),
                    business_hours: false,
                }],
                &[
                    Notice {
                        to: vec![Recipient::Person(caller.clone())],
                        message: Some(vec![
                            text("Incident "),
                            TemplatePart::Id,
                            text(" is resolved: "),
                            resolution,
                            text(" {ok}"),
                        ]),
                        business_hours: true,
                    },
                    Notice {
                        to: vec![
                            Recipient::Person(PersonRef::ManagerOf(Box::new(caller.clone()))),
                            Recipient::Role(team_lead),
                        ],
                        message: None,
                        business_hours: false,
                    },
                ],
                &[],
            ]
        );
        let transition_notices: Vec<&[Notice]> =
            p.transitions.iter().map(|t| &t.notices[..]).collect();
        assert_eq!(
            transition_notices,
            [
                &[Notice {
                    to: vec![Recipient::Person(PersonRef::Creator)],
                    message: None,
                    business_hours: false,
                }][..],
                &[
                    Notice {
                        to: vec![Recipient::Person(caller.clone())],
                        message: Some(vec![
                            TemplatePart::Process,
                            text(" "),
                            TemplatePart::Id,
                            text(" in "),
                            TemplatePart::Stage,
                            text(" at "),
                            TemplatePart::Priority,
                        ]),
                        business_hours: false,
                    },
                    Notice {
                        to: vec![Recipient::Role(agent)],
                        message: None,
                        business_hours: false,
                    },
                ],
                &[],
            ]
        );
        let actions: Vec<&[EscalationAction]> = p.escalations[0]
            .steps
            .iter()
            .map(|s| &s.actions[..])
            .collect();
        assert_eq!(
            actions,
            [
                &[
                    EscalationAction::Notify(Notice {
                        to: vec![Recipient::Person(caller), Recipient::Role(team_lead)],
                        message: Some(vec![title, text(" is half way")]),
                        business_hours: true,
                    }),
                    EscalationAction::RaisePriority,
                ][..],
                &[EscalationAction::Notify(Notice {
                    to: vec![Recipient::Approvers, Recipient::Person(PersonRef::Assignee)],
                    message: None,
                    business_hours: false,
                })],
            ]
        );
    }

    #[test]
    fn wrong_notices_are_reported() {
        let text = r#"role agent
process p {
  fields {
    caller: person
    note: text
  }
  stage a initial {
    notify approvers "{nope} {calller} {a b} {} { id } {x"
  }
  stage b {
    notify agent and role agnt and note "" during business hours
  }
  stage c final
  transition t: a -> b by role agent notify caller and caller "}" notify approvers "{priority}"
  transition u: b -> c notify manager of manager of manager of manager of caller "{{{id}}}"
  escalation on resolve {
    at 50% => notify approvers
  }
}
"#;
        assert_eq!(
            problems(text),
            [
                ("approvers-without-approval", "approvers".to_string()),
                ("unknown-placeholder", "nope".to_string()),
                ("unknown-placeholder", "calller".to_string()),
                ("invalid-message", "{a b}".to_string()),
                ("invalid-message", "{}".to_string()),
                ("invalid-message", "{ id }".to_string()),
                ("invalid-message", "{".to_string()),
                ("unknown-field", "agent".to_string()),
                ("unknown-role", "agnt".to_string()),
                ("not-a-person-field", "note".to_string()),
                ("empty-message", "\"\"".to_string()),
                ("never-held", "during business hours".to_string()),
                ("duplicate-definition", "caller".to_string()),
                ("invalid-message", "}".to_string()),
                ("approvers-without-approval", "approvers".to_string()),
                ("no-priorities", "priority".to_string()),
                ("person-too-deep", "manager of".to_string()),
                ("no-target-for-clock", "resolve".to_string()),
                ("approvers-without-approval", "approvers".to_string()),
            ]
        );
        let diagnostics = checked(text).diagnostics;
        let help = |code: &str, n: usize| {
            diagnostics
                .iter()
                .filter(|d| d.code == code)
                .nth(n)
                .and_then(|d| d.help.clone())
                .unwrap_or_default()
        };
        assert_eq!(help("unknown-placeholder", 0), "did you mean `{note}`?");
        assert_eq!(help("unknown-placeholder", 1), "did you mean `{caller}`?");
        assert_eq!(help("invalid-message", 2), "write `{id}`, without spaces");
        assert_eq!(
            help("unknown-field", 0),
            "`agent` is a role: write `notify role agent`"
        );
        let messages: Vec<&str> = diagnostics
            .iter()
            .filter(|d| d.code == "approvers-without-approval")
            .map(|d| d.message.as_str())
            .collect();
        assert_eq!(
            messages,
            [
                "nobody is asked to approve in stage `a`",
                "transition `t` has no approvers to notify",
                "process `p` asks nobody to approve",
            ]
        );
    }
}
