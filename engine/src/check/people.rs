//! People a ticket names (`by caller, manager of requester` in a transition, an approval group
//! `manager of requester`, `notify caller`): `creator`, `assignee`, `person` fields, and
//! `manager of` them, at most [`MAX_MANAGER_DEPTH`] deep.

use itsmflow_dsl::ast::{self, Ident, PersonBase};
use itsmflow_dsl::Diagnostic;

use super::names::did_you_mean;
use super::process::ProcessScope;
use super::Ctx;
use crate::model::{FieldId, FieldType, PersonRef};

/// The person fields are listed in the hint of an unknown one when there are no more than this.
const MAX_LISTED: usize = 8;

/// How many `manager of` a reference may take: the manager's manager's manager.
pub(super) const MAX_MANAGER_DEPTH: usize = 3;

/// Where a reference is written, for the hints of its diagnostics.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    Transition,
    Approval,
    Notice,
}

/// Resolve a reference; `None` (with every problem reported) if any part of it is wrong.
pub(super) fn resolve(
    person: &ast::PersonRef,
    place: Place,
    scope: &ProcessScope,
    ctx: &mut Ctx,
) -> Option<PersonRef> {
    let depth = person.managers.len();
    let too_deep = depth > MAX_MANAGER_DEPTH;
    if too_deep {
        let first_too_many = person.managers[MAX_MANAGER_DEPTH];
        ctx.diags.push(
            Diagnostic::error(
                "person-too-deep",
                first_too_many,
                format!(
                    "`manager of` is written {depth} times here; a person may be at most {MAX_MANAGER_DEPTH} managers up"
                ),
            )
            .with_label(format!("manager number {} starts here", MAX_MANAGER_DEPTH + 1))
            .with_help(
                "name fewer levels of managers, or keep the person further up in a `person` field of the ticket",
            ),
        );
    }
    let base = match &person.base {
        PersonBase::Creator(_) => Some(PersonRef::Creator),
        PersonBase::Assignee(_) => Some(PersonRef::Assignee),
        PersonBase::Field(field) => {
            person_field(field, place, person.managers.first().copied(), scope, ctx)
                .map(PersonRef::Field)
        }
    };
    if too_deep {
        return None;
    }
    let mut resolved = base?;
    for _ in 0..depth {
        resolved = PersonRef::ManagerOf(Box::new(resolved));
    }
    Some(resolved)
}

/// A field that holds a person: declared, and of type `person`, or `list(person)` where any
/// of several people will do (`by watchers`, `notify watchers`). `manager`: the first
/// `manager of` written before it, if any.
fn person_field(
    field: &Ident,
    place: Place,
    manager: Option<ast::Span>,
    scope: &ProcessScope,
    ctx: &mut Ctx,
) -> Option<FieldId> {
    let Some(id) = scope.fields.get(&field.name) else {
        ctx.diags
            .push(unknown_person_field(field, place, scope, ctx));
        return None;
    };
    match scope.field_types.get(id as usize) {
        Some(FieldType::Person) => Some(FieldId(id)),
        Some(ty) if ty.holds_people() => {
            person_list(field, place, manager, ctx).then_some(FieldId(id))
        }
        Some(other) => {
            ctx.diags.push(
                Diagnostic::error(
                    "not-a-person-field",
                    field.span,
                    format!("field `{field}` is {other}, not a person"),
                )
                .with_label("not a person")
                .with_secondary(scope.fields.span(id), "declared here")
                .with_help(format!(
                    "declare it `{field}: person`, or `{field}: list(person)` for several"
                )),
            );
            None
        }
        None => None,
    }
}

/// Whether a `list(person)` field may be written where `field` is: not under `manager of`
/// (whose manager? the directory answers for one person, and "each one's manager" would
/// silently widen who may act), and not as an approval group (which is one person who must
/// approve: a list would leave open whether one or all of them must). Either is reported.
fn person_list(field: &Ident, place: Place, manager: Option<ast::Span>, ctx: &mut Ctx) -> bool {
    if let Some(span) = manager {
        ctx.diags.push(
            Diagnostic::error(
                "manager-of-list",
                ast::Span {
                    end: field.span.end,
                    ..span
                },
                format!("`{field}` is a list of people, which has no one manager"),
            )
            .with_label("the manager of several people")
            .with_help(format!(
                "name the manager in a `person` field of its own, or write `{field}` to mean any of the people in it"
            )),
        );
        return false;
    }
    if place == Place::Approval {
        ctx.diags.push(
            Diagnostic::error(
                "person-list-in-approval",
                field.span,
                format!("`{field}` is a list of people; an approval group is one person"),
            )
            .with_label("several people, as one approver")
            .with_help(format!(
                "approve by a role (`any 1 of role ...`) or a `person` field; a list may keep its people from voting with `excludes {field}`"
            )),
        );
        return false;
    }
    true
}

/// `unknown-field`, with a suggestion among the `person` fields; a role's name gets the hint
/// to write `role` before it.
fn unknown_person_field(
    field: &Ident,
    place: Place,
    scope: &ProcessScope,
    ctx: &Ctx,
) -> Diagnostic {
    let d = Diagnostic::error(
        "unknown-field",
        field.span,
        format!("unknown field `{field}`"),
    )
    .with_label("no field has this name");
    let people: Vec<&str> = scope
        .fields
        .iter()
        .zip(&scope.field_types)
        .filter(|(_, ty)| ty.holds_people())
        .map(|(name, _)| name)
        .collect();
    if let Some(s) = did_you_mean(&field.name, people.iter().copied()) {
        return d.with_help(format!("did you mean `{s}`?"));
    }
    if ctx.roles.get(&field.name).is_some() {
        let example = match place {
            Place::Transition => format!("by role {field}"),
            Place::Approval => format!("any 1 of role {field}"),
            Place::Notice => format!("notify role {field}"),
        };
        return d.with_help(format!("`{field}` is a role: write `{example}`"));
    }
    let help = if people.is_empty() || people.len() > MAX_LISTED {
        format!(
            "a person is `creator`, `assignee`, `manager of ...` or a `person` field; declare one, e.g. `{field}: person`"
        )
    } else {
        format!(
            "a person is `creator`, `assignee`, `manager of ...` or a `person` field; this process's person fields are: {}",
            people.join(", ")
        )
    };
    d.with_help(help)
}

#[cfg(test)]
mod tests {
    use crate::model::{ApprovalGroup, Approvers, FieldId, PersonRef, Quorum, RoleId};

    use super::super::test_support::{checked, problems};

    const PEOPLE: &str = "role agent
role sec
process leave {
  fields {
    requester: person required
    kind: enum(plain, secure)
    cost: int
    note: text
  }
  stage requested initial
  stage review
  stage approved final
  stage refused final
  transition submit: requested -> review by requester
  transition close: review -> approved by requester or role agent or after 3d
  transition cancel: review -> refused by role agent or by manager of manager of requester, creator, assignee
  approval in review {
    excludes requester, note
    when kind == secure => manager of requester and any 1 of role sec
    when cost > 0 => manager of manager of manager of requester, then assignee
    when requester == \"boss\" => none
    otherwise => requester
    on approve => approved
    on reject => refused
  }
}
";

    #[test]
    fn transitions_and_approvals_name_people() {
        let checked = checked(PEOPLE);
        assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
        let project = checked.project.expect("a project");
        let p = &project.processes[0];
        let requester = PersonRef::Field(FieldId(0));
        let manager = |p: PersonRef| PersonRef::ManagerOf(Box::new(p));
        let (agent, sec) = (RoleId(0), RoleId(1));

        let by: Vec<(Vec<RoleId>, Vec<PersonRef>)> = p
            .transitions
            .iter()
            .map(|t| (t.roles.clone(), t.people.clone()))
            .collect();
        assert_eq!(
            by,
            [
                (vec![], vec![requester.clone()]),
                (vec![agent], vec![requester.clone()]),
                (
                    vec![agent],
                    vec![
                        manager(manager(requester.clone())),
                        PersonRef::Creator,
                        PersonRef::Assignee
                    ]
                ),
            ]
        );
        assert_eq!(
            p.transitions[2].people[0].describe(p),
            "manager of manager of requester"
        );

        let a = &p.approvals[0];
        let one = |who: PersonRef| ApprovalGroup {
            quorum: Quorum::AtLeast(1),
            approvers: Approvers::Person(who),
        };
        let plans: Vec<Vec<Vec<ApprovalGroup>>> = a
            .rules
            .iter()
            .map(|r| r.levels.iter().map(|l| l.groups.clone()).collect())
            .collect();
        assert_eq!(
            plans,
            [
                vec![vec![
                    one(manager(requester.clone())),
                    ApprovalGroup {
                        quorum: Quorum::AtLeast(1),
                        approvers: Approvers::Role(sec),
                    },
                ]],
                vec![
                    vec![one(manager(manager(manager(requester.clone()))))],
                    vec![one(PersonRef::Assignee)],
                ],
                vec![],
                vec![vec![one(requester.clone())]],
            ]
        );
        assert_eq!(a.roles(), [sec]);
        assert_eq!(a.people().count(), 4);
        assert_eq!(a.excludes, [FieldId(0), FieldId(3)]);
        let texts: Vec<&str> = a.rules.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "when kind == secure => manager of requester and any 1 of role sec",
                "when cost > 0 => manager of manager of manager of requester, then assignee",
                "when requester == \"boss\" => none",
                "otherwise => requester",
            ]
        );
    }

    #[test]
    fn wrong_people_are_reported() {
        let text = "role agent
process p {
  fields {
    caller: person
    note: text
  }
  stage a initial
  stage b
  stage c final
  transition t1: a -> b by callr, note, agent, nobody
  transition t2: b -> c by manager of manager of manager of manager of caller by creator
  approval in b {
    when caller == \"x\" => creator and manager of note
    otherwise => manager of creator and manager of manager of manager of manager of manager of assignee
    on approve => c
    on reject => a
  }
}
";
        assert_eq!(
            problems(text),
            [
                ("unused-declaration", "agent".to_string()),
                ("unknown-field", "callr".to_string()),
                ("not-a-person-field", "note".to_string()),
                ("unknown-field", "agent".to_string()),
                ("unknown-field", "nobody".to_string()),
                ("person-too-deep", "manager of".to_string()),
                ("duplicate-attribute", "by creator".to_string()),
                ("approval-asks-creator", "creator".to_string()),
                ("not-a-person-field", "note".to_string()),
                ("person-too-deep", "manager of".to_string()),
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
        assert_eq!(help("unknown-field", 0), "did you mean `caller`?");
        assert_eq!(
            help("unknown-field", 1),
            "`agent` is a role: write `by role agent`"
        );
        assert!(help("unknown-field", 2).ends_with("person fields are: caller"));
        assert_eq!(
            help("not-a-person-field", 0),
            "declare it `note: person`, or `note: list(person)` for several"
        );
        let too_deep = diagnostics
            .iter()
            .find(|d| d.code == "person-too-deep")
            .expect("person-too-deep");
        // The fourth `manager of`.
        let fourth = text.find("manager of caller").unwrap_or(0);
        assert_eq!(too_deep.span.start as usize, fourth);
        assert!(checked(text).project.is_none());
    }

    /// A `list(person)` field is any of its people in `by` and each of them in `notify`, but
    /// has no one manager and is no approval group.
    #[test]
    fn lists_of_people_name_any_of_them() {
        let text = "process p {
  fields {
    watchers: list(person)
    tags: list(text)
  }
  stage a initial {
    notify watchers
  }
  stage b
  stage c final
  transition t1: a -> b by watchers
  transition t2: b -> c by manager of watchers, tags
  approval in b {
    otherwise => watchers
    on approve => c
    on reject => a
  }
}
";
        assert_eq!(
            problems(text),
            [
                ("manager-of-list", "manager of watchers".to_string()),
                ("not-a-person-field", "tags".to_string()),
                ("person-list-in-approval", "watchers".to_string()),
            ]
        );
        let fine = text
            .replace("by manager of watchers, tags", "by watchers")
            .replace("otherwise => watchers", "otherwise => none");
        let checked = checked(&fine);
        assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
        let project = checked.project.expect("a project");
        let p = &project.processes[0];
        assert_eq!(p.transitions[0].people, [PersonRef::Field(FieldId(0))]);
    }

    /// A person field compares with strings in conditions, like a text field, and has no order.
    #[test]
    fn person_fields_in_conditions_are_like_text() {
        let text = "queue q
process p {
  fields {
    caller: person default \"ann\"
    n: int
  }
  stage a initial {
    queue by routing
  }
  stage b final
  transition t: a -> b
  routing {
    when caller == \"ann\" or caller in (\"bob\", \"cy\") => q
    when caller < \"x\" => q
    when caller == x => q
    otherwise => q
  }
}
";
        assert_eq!(
            problems(text),
            [
                ("type-mismatch", "<".to_string()),
                ("type-mismatch", "x".to_string()),
            ]
        );
    }
}
