//! Conversion of `test "name" { ... }` items (process tests) from pest pairs to the AST.
//!
//! As for the rest of the parser, a missing child costs an empty name, never a panic: the
//! grammar guarantees the shape.

use super::{Ctx, Rule, P};
use crate::ast::*;
use crate::diagnostic::Diagnostic;

impl Ctx<'_> {
    pub(super) fn test(&mut self, pair: P) -> Test {
        let span = self.span(&pair);
        let mut name = None;
        let mut steps = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::string => {
                    let s = self.string(p);
                    name = Some(Ident {
                        name: s.node,
                        span: s.span,
                    });
                }
                Rule::kw_test => {}
                _ => {
                    let step_span = self.span(&p);
                    if let Some(kind) = self.test_step(p) {
                        steps.push(TestStep {
                            kind,
                            span: step_span,
                        });
                    }
                }
            }
        }
        Test {
            name: name.unwrap_or_else(|| self.missing(span)),
            steps,
            span,
        }
    }

    fn test_step(&mut self, p: P) -> Option<TestStepKind> {
        let span = self.span(&p);
        Some(match p.as_rule() {
            Rule::test_at => TestStepKind::Start(self.datetime_child(p, span)),
            Rule::test_user => self.test_user(p, span),
            Rule::test_create => self.test_create(p, span),
            Rule::test_perform => self.test_perform(p, span),
            Rule::test_update => {
                let parts = self.step_parts(p, span);
                TestStepKind::Update {
                    ticket: parts.on,
                    actor: parts.actor,
                    fields: parts.fields,
                    refused: parts.refused,
                }
            }
            Rule::test_vote => {
                let approve = p
                    .clone()
                    .into_inner()
                    .find(|q| q.as_rule() == Rule::vote_kind)
                    .is_some_and(|q| q.as_str().starts_with("approve"));
                let parts = self.step_parts(p, span);
                TestStepKind::Vote {
                    approve,
                    ticket: parts.on,
                    actor: parts.actor,
                    refused: parts.refused,
                }
            }
            Rule::test_link => {
                let parts = self.step_parts(p, span);
                let mut names = parts.names.into_iter();
                let mut next = || names.next().unwrap_or_else(|| self.missing(span));
                TestStepKind::Link {
                    from: next(),
                    kind: next(),
                    to: next(),
                    actor: parts.actor,
                    refused: parts.refused,
                }
            }
            Rule::test_claim => {
                let release = p.as_str().starts_with("release");
                let parts = self.step_parts(p, span);
                TestStepKind::Claim {
                    release,
                    ticket: parts.on,
                    actor: parts.actor,
                    refused: parts.refused,
                }
            }
            Rule::test_check => {
                let done = !p.as_str().starts_with("uncheck");
                let parts = self.step_parts(p, span);
                TestStepKind::Check {
                    item: parts
                        .names
                        .into_iter()
                        .next()
                        .unwrap_or_else(|| self.missing(span)),
                    done,
                    ticket: parts.on,
                    actor: parts.actor,
                    refused: parts.refused,
                }
            }
            Rule::test_wait => TestStepKind::Wait(self.test_wait(p)),
            Rule::test_expect => self.test_expect(p, span),
            _ => return None,
        })
    }

    /// The `datetime` child of a pair, as written.
    fn datetime_child(&self, pair: P, span: Span) -> Spanned<String> {
        pair.into_inner()
            .find(|q| q.as_rule() == Rule::datetime)
            .map(|q| Spanned::new(q.as_str().to_string(), self.span(&q)))
            .unwrap_or_else(|| Spanned::new(String::new(), span))
    }

    /// `user alice roles a, b manager carol`.
    fn test_user(&mut self, pair: P, span: Span) -> TestStepKind {
        let mut name = None;
        let mut roles = Vec::new();
        let mut manager = None;
        for q in pair.into_inner() {
            let qspan = self.span(&q);
            match q.as_rule() {
                Rule::ident => name = Some(self.ident(q)),
                Rule::user_roles => roles = self.ident_list_child(q),
                Rule::user_manager => manager = Some(self.last_ident(q, qspan)),
                _ => {}
            }
        }
        TestStepKind::User {
            name: name.unwrap_or_else(|| self.missing(span)),
            roles,
            manager,
        }
    }

    /// `create incident i as carol { ... } refused`, `create item laptop as carol`.
    fn test_create(&mut self, pair: P, span: Span) -> TestStepKind {
        let target = pair
            .clone()
            .into_inner()
            .find(|q| matches!(q.as_rule(), Rule::create_item | Rule::ident))
            .map(|q| match q.as_rule() {
                Rule::create_item => {
                    let qspan = self.span(&q);
                    CreateTarget::Item(self.last_ident(q, qspan))
                }
                _ => CreateTarget::Process(self.ident(q)),
            })
            .unwrap_or_else(|| CreateTarget::Process(self.missing(span)));
        let parts = self.step_parts(pair, span);
        TestStepKind::Create {
            target,
            handle: parts.handle,
            actor: parts.actor,
            fields: parts.fields,
            refused: parts.refused,
        }
    }

    /// `perform resolve on p as alice with { ... } refused`.
    fn test_perform(&mut self, pair: P, span: Span) -> TestStepKind {
        let parts = self.step_parts(pair, span);
        TestStepKind::Perform {
            action: parts
                .names
                .into_iter()
                .next()
                .unwrap_or_else(|| self.missing(span)),
            ticket: parts.on,
            actor: parts.actor,
            fields: parts.fields,
            refused: parts.refused,
        }
    }

    /// The parts an acting step may have, whichever it is.
    fn step_parts(&mut self, pair: P, span: Span) -> StepParts {
        let mut parts = StepParts {
            names: Vec::new(),
            handle: None,
            on: None,
            actor: self.missing(span),
            fields: Vec::new(),
            refused: None,
        };
        for q in pair.into_inner() {
            let qspan = self.span(&q);
            match q.as_rule() {
                Rule::ident => parts.names.push(self.ident(q)),
                Rule::test_handle => parts.handle = Some(self.last_ident(q, qspan)),
                Rule::test_on => parts.on = Some(self.last_ident(q, qspan)),
                Rule::test_as => parts.actor = self.last_ident(q, qspan),
                Rule::spawn_with => parts.fields = self.spawn_with(q),
                // `create` and `update` take the list without `with`.
                Rule::spawn_fields => parts.fields = self.spawn_fields(q),
                Rule::refused => {
                    let contains = q
                        .into_inner()
                        .find(|r| r.as_rule() == Rule::string)
                        .map(|r| self.string(r));
                    parts.refused = Some(Refusal {
                        contains,
                        span: qspan,
                    });
                }
                _ => {}
            }
        }
        parts
    }

    /// `wait 30m`, `wait 4h business on office`, `wait until 2026-03-03T09:00Z`.
    fn test_wait(&mut self, pair: P) -> Wait {
        let mut duration = None;
        let mut business = None;
        for q in pair.into_inner() {
            let qspan = self.span(&q);
            match q.as_rule() {
                Rule::wait_until => return Wait::Until(self.datetime_child(q, qspan)),
                Rule::duration => duration = Some(self.duration(q).node),
                Rule::wait_business => {
                    business = Some(
                        q.into_inner()
                            .find(|r| r.as_rule() == Rule::calendar_ref)
                            .map(|r| self.ident(r)),
                    );
                }
                _ => {}
            }
        }
        let duration = duration.unwrap_or_default();
        match business {
            Some(calendar) => Wait::Business { duration, calendar },
            None => Wait::For(duration),
        }
    }

    /// `expect on p not escalated resolve 50%` and the other expectations.
    fn test_expect(&mut self, pair: P, span: Span) -> TestStepKind {
        let mut ticket = None;
        let mut negated = false;
        let mut expectation = None;
        for q in pair.into_inner() {
            let qspan = self.span(&q);
            match q.as_rule() {
                Rule::test_on => ticket = Some(self.last_ident(q, qspan)),
                Rule::kw_not => negated = true,
                Rule::kw_expect => {}
                _ => expectation = self.expectation(q, qspan),
            }
        }
        TestStepKind::Expect {
            ticket,
            negated,
            expectation: expectation.unwrap_or_else(|| Expectation::Stage(self.missing(span))),
        }
    }

    fn expectation(&mut self, q: P, span: Span) -> Option<Expectation> {
        Some(match q.as_rule() {
            Rule::exp_stage => Expectation::Stage(self.last_ident(q, span)),
            Rule::exp_priority => Expectation::Priority(self.name_or_none(q)),
            Rule::exp_queue => Expectation::Queue(self.name_or_none(q)),
            Rule::exp_holder => Expectation::Holder(self.name_or_none(q)),
            Rule::exp_field => {
                let mut field = None;
                let mut value = None;
                let mut has = None;
                for r in q.into_inner() {
                    match r.as_rule() {
                        Rule::ident => field = Some(self.ident(r)),
                        Rule::literal | Rule::list_literal => value = Some(self.literal(r)),
                        Rule::field_has => {
                            has = r
                                .into_inner()
                                .find(|l| l.as_rule() == Rule::literal)
                                .map(|l| self.literal(l));
                        }
                        _ => {}
                    }
                }
                let field = field.unwrap_or_else(|| self.missing(span));
                match has {
                    Some(value) => Expectation::FieldHas { field, value },
                    None => Expectation::Field { field, value },
                }
            }
            Rule::exp_clock => self.exp_clock(q, span),
            Rule::exp_ola => {
                let breached_in = q
                    .clone()
                    .into_inner()
                    .find(|r| r.as_rule() == Rule::ola_breached_in);
                match breached_in {
                    Some(r) => {
                        let rspan = self.span(&r);
                        Expectation::OlaBreachedIn(self.last_ident(r, rspan))
                    }
                    None => match self.exp_clock(q, span) {
                        Expectation::Clock { check, .. } => Expectation::Ola { check, span },
                        other => other,
                    },
                }
            }
            Rule::exp_escalated => {
                let mut clock = Spanned::new(ClockKind::Resolve, span);
                let mut threshold = Spanned::new(Threshold::Percent(0), span);
                for r in q.into_inner() {
                    match r.as_rule() {
                        Rule::clock_kind => clock = self.clock_kind(r),
                        Rule::threshold => {
                            if let Some(t) = self.threshold(r) {
                                threshold = t;
                            }
                        }
                        _ => {}
                    }
                }
                Expectation::Escalated { clock, threshold }
            }
            Rule::exp_breached => Expectation::Breached(
                q.into_inner()
                    .find(|r| r.as_rule() == Rule::clock_kind)
                    .map(|r| self.clock_kind(r))
                    .unwrap_or_else(|| Spanned::new(ClockKind::Resolve, span)),
            ),
            Rule::exp_notified => {
                let mut recipient = Notified::User(self.missing(span));
                let mut contains = None;
                for r in q.into_inner() {
                    let rspan = self.span(&r);
                    match r.as_rule() {
                        Rule::notified_role => {
                            recipient = Notified::Role(self.last_ident(r, rspan))
                        }
                        Rule::ident => recipient = Notified::User(self.ident(r)),
                        Rule::string => contains = Some(self.string(r)),
                        _ => {}
                    }
                }
                Expectation::Notified {
                    recipient,
                    contains,
                }
            }
            Rule::exp_approval => {
                let mut state = None;
                let mut level = None;
                for r in q.into_inner() {
                    match r.as_rule() {
                        Rule::ident => state = Some(self.ident(r)),
                        Rule::approval_level_no => level = self.level(r),
                        _ => {}
                    }
                }
                Expectation::Approval {
                    state: state.unwrap_or_else(|| self.missing(span)),
                    level,
                }
            }
            Rule::exp_linked => {
                let mut kind = None;
                let mut other = None;
                let mut names = false;
                for r in q.into_inner() {
                    let rspan = self.span(&r);
                    match r.as_rule() {
                        Rule::ident if kind.is_none() => kind = Some(self.ident(r)),
                        Rule::ident => other = Some(self.ident(r)),
                        Rule::linked_as => {
                            names = true;
                            other = Some(self.last_ident(r, rspan));
                        }
                        _ => {}
                    }
                }
                Expectation::Linked {
                    kind: kind.unwrap_or_else(|| self.missing(span)),
                    other: other.unwrap_or_else(|| self.missing(span)),
                    names,
                }
            }
            Rule::exp_history => Expectation::History(self.ident_list_child(q)),
            Rule::exp_checked => Expectation::Checked(self.last_ident(q, span)),
            _ => return None,
        })
    }

    /// The name after `priority`, `queue` or `holder`, or `None` for `none`.
    fn name_or_none(&self, pair: P) -> Option<Ident> {
        pair.into_inner()
            .find(|r| r.as_rule() == Rule::ident)
            .map(|r| self.ident(r))
    }

    /// `expect clock resolve running`, `... elapsed 30m`, `... remaining 3h`, `... due T`.
    fn exp_clock(&mut self, pair: P, span: Span) -> Expectation {
        let mut clock = Spanned::new(ClockKind::Resolve, span);
        let mut check = ClockCheck::State(self.missing(span));
        for r in pair.into_inner() {
            let rspan = self.span(&r);
            match r.as_rule() {
                Rule::clock_kind => clock = self.clock_kind(r),
                Rule::clock_state => check = ClockCheck::State(self.last_ident(r, rspan)),
                Rule::clock_elapsed | Rule::clock_remaining => {
                    let elapsed = r.as_rule() == Rule::clock_elapsed;
                    let d = r
                        .into_inner()
                        .find(|d| d.as_rule() == Rule::duration)
                        .map(|d| self.duration(d).node)
                        .unwrap_or_default();
                    check = match elapsed {
                        true => ClockCheck::Elapsed(d),
                        false => ClockCheck::Remaining(d),
                    };
                }
                Rule::clock_due => check = ClockCheck::Due(self.datetime_child(r, rspan)),
                _ => {}
            }
        }
        Expectation::Clock { clock, check }
    }

    /// `level 2`: the number, reported when it does not fit.
    fn level(&mut self, pair: P) -> Option<Spanned<u32>> {
        let n = pair
            .into_inner()
            .find(|r| r.as_rule() == Rule::level_number)?;
        let span = self.span(&n);
        match n.as_str().parse::<u32>() {
            Ok(level) => Some(Spanned::new(level, span)),
            Err(_) => {
                self.diagnostics.push(
                    Diagnostic::error("number-too-large", span, "this number is too large")
                        .with_label("does not fit in 32 bits"),
                );
                None
            }
        }
    }
}

/// What [`Ctx::step_parts`] collects of an acting step.
struct StepParts {
    /// The step's bare names, in order (a `perform`'s action, a `link`'s three names, a
    /// `check`'s item).
    names: Vec<Ident>,
    handle: Option<Ident>,
    on: Option<Ident>,
    actor: Ident,
    fields: Vec<SpawnEntry>,
    refused: Option<Refusal>,
}
