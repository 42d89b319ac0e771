//! The process-test runner (`itsmflow_engine::testing`): steps run on the in-memory engine on
//! virtual time, a wrong expectation fails with its line and the expected and actual values,
//! waits fire each timer at its own instant, coverage counts what the engine did, and the
//! same suite gives the same results however often it runs.

use itsmflow_dsl::Sources;
use itsmflow_engine::testing::{Options, Report, Suite};

const PROJECT: &str = r#"
calendar office {
  timezone "UTC"
  hours mon-fri 09:00-17:00
}

role agent
role lead
role approver

queue desk { members agent }
queue urgent { members agent, lead }

process ticket {
  fields {
    title: text required
    impact: enum(high, low) required
    urgency: enum(high, low) required default low
    cost: int default 0
    answer: text
  }

  priorities P1, P2, P3

  priority from impact, urgency {
    high => P1, P2
    low  => P2, P3
  }

  targets on office {
    P1: respond 1h, resolve 4h
    P2: respond 2h, resolve 8h
    P3: respond 4h, resolve 16h
  }

  stage new initial { queue by routing }
  stage approval
  stage working { queue by routing }
  stage waiting { pauses resolve }
  stage done final { stops respond, resolve }
  stage refused final

  transition take: new -> working by role agent
  transition buy: new -> approval by role agent
  transition ask: working -> waiting by role agent
  transition reply: waiting -> working by creator requires answer
  transition finish: working -> done by role agent

  routing {
    when priority == P1 => urgent
    otherwise => desk
  }

  escalation on resolve {
    at 50% => notify role lead "Ticket {title} is half way"
    at 100% => notify role lead "Ticket {title} breached"
  }

  approval in approval {
    when cost > 100 => any 1 of role approver
    otherwise => none
    on approve => working
    on reject => refused
  }
}
"#;

const TESTS: &str = r#"
test "a high-impact ticket is P1 and goes to the urgent queue" {
  at 2026-03-02T09:00Z
  user carol
  user alice roles agent
  create ticket t as carol { title: "Mail down", impact: high, urgency: high }
  expect stage new
  expect priority P1
  expect queue urgent
  perform take as alice
  expect stage working
  expect history take
}

test "the resolve clock pauses while waiting for the caller and escalates at half time" {
  at 2026-03-02T09:00Z
  user carol
  user alice roles agent
  user lena roles lead
  create ticket as carol { title: "Printer", impact: low, urgency: high }
  expect priority P2
  perform take as alice
  wait 1h
  perform ask as alice
  wait 3h
  expect clock resolve paused
  expect clock resolve elapsed 1h
  perform reply as carol refused "requires answer"
  perform reply as carol with { answer: "tray 2" }
  expect clock resolve running
  expect clock resolve due 2026-03-03T12:00Z
  expect not escalated resolve 50%
  wait 3h business
  expect escalated resolve 50%
  expect notified role lead "half way"
  expect notified lena
  expect not breached resolve
  wait until 2026-03-03T12:00Z
  expect breached resolve
  expect clock resolve breached
}

test "a costly purchase needs an approver, who may refuse it" {
  at 2026-03-02T09:00Z
  user carol
  user alice roles agent
  user sid roles approver
  create ticket p as carol { title: "Laptop", impact: low, cost: 500 }
  perform buy as alice
  expect approval pending level 1
  vote approve as alice refused
  vote reject on p as sid
  expect stage refused
  expect approval rejected
  expect history buy, reject
}

test "a cheap purchase needs no approval" {
  user carol
  user alice roles agent
  create ticket as carol { title: "Mouse", impact: low }
  perform buy as alice
  expect stage working
  expect field cost == 0
  update as alice { urgency: high }
  expect field urgency == high
  claim as alice
  expect holder alice
  perform finish as alice
  expect stage done
  expect clock respond met
}
"#;

fn project(tests: &str) -> Sources {
    let mut s = Sources::new();
    s.add("ticket.itsm", PROJECT);
    s.add("ticket.test.itsm", tests);
    s
}

fn run(sources: &Sources, options: &Options) -> Report {
    let (suite, _) = Suite::load(sources).unwrap_or_else(|d| panic!("{d:#?}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(suite.run(options))
}

#[test]
fn every_step_of_a_passing_suite_passes() {
    let report = run(&project(TESTS), &Options::default());
    let failures: Vec<_> = report
        .tests
        .iter()
        .filter_map(|t| t.failure.as_ref().map(|f| (&t.name, f)))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(report.tests.len(), 4);
    assert_eq!(report.tests[0].line, 2);
    assert_eq!(report.tests[0].file, "ticket.test.itsm");
}

#[test]
fn a_wrong_expectation_names_its_line_the_expected_and_the_actual_value() {
    let tests = r#"
test "wrong priority" {
  user carol
  create ticket as carol { title: "x", impact: high, urgency: high }
  expect priority P3
  expect stage new
}
"#;
    let report = run(&project(tests), &Options::default());
    let t = &report.tests[0];
    let f = t.failure.as_ref().expect("fails");
    assert_eq!(f.line, 5);
    assert_eq!(f.source, "expect priority P3");
    assert_eq!(f.expected.as_deref(), Some("P3"));
    assert_eq!(f.actual.as_deref(), Some("P1"));
    // The first failing step ends the test.
    assert_eq!(t.steps, 3);
}

#[test]
fn a_step_the_engine_refuses_fails_with_the_engines_reason() {
    let tests = r#"
test "an agent's action by a caller" {
  user carol
  create ticket as carol { title: "x", impact: low }
  perform take as carol
}

test "a refusal that does not happen" {
  user carol
  user alice roles agent
  create ticket as carol { title: "x", impact: low }
  perform take as alice refused
}

test "a refusal for another reason" {
  user carol
  create ticket as carol { title: "x", impact: low }
  perform take as carol refused "requires"
}
"#;
    let report = run(&project(tests), &Options::default());
    let messages: Vec<_> = report
        .tests
        .iter()
        .map(|t| t.failure.clone().expect("each fails"))
        .collect();
    assert!(
        messages[0]
            .message
            .contains("may be performed only by role agent"),
        "{messages:#?}"
    );
    assert_eq!(messages[1].expected.as_deref(), Some("refused"));
    assert_eq!(messages[1].actual.as_deref(), Some("performed"));
    assert!(
        messages[2]
            .actual
            .as_deref()
            .is_some_and(|a| a.contains("role agent")),
        "{messages:#?}"
    );
}

#[test]
fn coverage_counts_what_the_engine_did() {
    let report = run(
        &project(TESTS),
        &Options {
            coverage: true,
            ..Options::default()
        },
    );
    let coverage = report.coverage.expect("asked for");
    let p = &coverage.processes[0];
    let missed: Vec<(&str, &str)> = p
        .categories
        .iter()
        .flat_map(|c| {
            c.items
                .iter()
                .filter(|i| !i.covered)
                .map(move |i| (c.name, i.name.as_str()))
        })
        .collect();
    // A plan of `none` is approved at once: the cheap purchase reaches `on approve`. The
    // priority cell nobody used is listed but not counted.
    assert_eq!(
        missed,
        vec![("priority cells", "impact=high, urgency=low => P2")]
    );
    let (covered, total) = p.counts();
    assert_eq!((covered, total), (19, 19));
    assert!(coverage.meets(100.0));

    // Without the purchases, the approval's rules and outcomes and the `refused` stage are
    // not reached.
    let report = run(
        &project(TESTS),
        &Options {
            coverage: true,
            filter: Some("clock".into()),
            ..Options::default()
        },
    );
    let coverage = report.coverage.expect("asked for");
    let missed: Vec<String> = coverage.processes[0]
        .categories
        .iter()
        .filter(|c| c.counted)
        .flat_map(|c| {
            c.items
                .iter()
                .filter(|i| !i.covered)
                .map(|i| i.name.clone())
        })
        .collect();
    assert_eq!(
        missed,
        vec![
            "approval",
            "done",
            "refused",
            "buy",
            "finish",
            "when priority == P1 => urgent",
            "in approval: when cost > 100 => any 1 of role approver",
            "in approval: otherwise => none",
            "in approval: on approve",
            "in approval: on reject",
        ]
    );
    assert!(!coverage.meets(50.0));
}

#[test]
fn the_same_suite_gives_the_same_results_a_thousand_times() {
    let sources = project(TESTS);
    let (suite, _) = Suite::load(&sources).expect("checks");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let options = Options {
        coverage: true,
        ..Options::default()
    };
    let first = runtime.block_on(suite.run(&options));
    assert_eq!(first.failed(), 0, "{first:#?}");
    for round in 1..1000 {
        let again = runtime.block_on(suite.run(&options));
        assert_eq!(again, first, "round {round} differs");
    }
}

#[test]
fn a_filter_runs_only_the_tests_it_names() {
    let report = run(
        &project(TESTS),
        &Options {
            filter: Some("purchase".into()),
            ..Options::default()
        },
    );
    let names: Vec<&str> = report.tests.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "a costly purchase needs an approver, who may refuse it",
            "a cheap purchase needs no approval"
        ]
    );
}

/// What a server's scheduler would do at once, a test does before its next step: an instant
/// already past fires when the ticket is created. And a priority raised by escalation is the
/// priority the `computes` rules read from then on.
#[test]
fn due_timers_fire_after_each_step_and_raised_priorities_are_computed_on() {
    let mut sources = Sources::new();
    sources.add(
        "job.itsm",
        r#"
role agent
queue desk { members agent }

process job {
  fields {
    impact: enum(high, low) required
    start_at: datetime
    urgent: bool
  }
  priorities P1, P2
  priority from impact {
    high => P1
    low => P2
  }
  targets on 24x7 {
    P1: resolve 4h
    P2: resolve 4h
  }
  stage waiting initial { queue desk }
  stage running { queue desk }
  stage done final
  transition go: waiting -> running at start_at
  transition finish: running -> done by role agent
  escalation on resolve {
    at 100% => raise priority
  }
  rule urgency computes urgent {
    priority == P1
  }
}

test "an instant already past is performed at once" {
  at 2026-03-02T09:00Z
  user ann
  create job as ann { impact: low, start_at: 2026-03-02T08:00Z }
  expect stage running
  expect history go
}

test "a raised priority is what computed fields read" {
  at 2026-03-02T09:00Z
  user ann
  create job as ann { impact: low, start_at: 2026-03-03T08:00Z }
  expect field urgent == false
  wait 4h
  expect priority P1
  expect field urgent == true
}
"#,
    );
    let report = run(&sources, &Options::default());
    let failures: Vec<_> = report
        .tests
        .iter()
        .filter_map(|t| t.failure.as_ref().map(|f| (&t.name, f)))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A stage's checklist starts empty each time a ticket enters the stage from another, is kept
/// by a transition from the stage back to itself, and a transition that requires it waits for
/// every item.
#[test]
fn a_checklist_starts_empty_on_each_entry_and_holds_its_transition_back() {
    let mut sources = Sources::new();
    sources.add(
        "job.itsm",
        r#"
role agent

process job {
  fields {
    title: text required
  }
  stage doing initial {
    checklist {
      a "First"
      b
    }
  }
  stage paused
  stage done final
  transition note: doing -> doing by role agent
  transition pause: doing -> paused by role agent
  transition resume: paused -> doing by role agent
  transition finish: doing -> done by role agent requires checklist
}

test "ticks, a pause, and the finish" {
  user ann roles agent
  user bob
  create job as ann { title: "x" }
  check a as bob refused "role agent"
  check a as ann
  perform note as ann
  expect checked a
  perform finish as ann refused "b not ticked"
  perform pause as ann
  perform resume as ann
  expect not checked a
  check a as ann
  check b as ann
  perform finish as ann
  expect stage done
}
"#,
    );
    let report = run(&sources, &Options::default());
    let failures: Vec<_> = report
        .tests
        .iter()
        .filter_map(|t| t.failure.as_ref().map(|f| (&t.name, f)))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}
