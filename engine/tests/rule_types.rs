//! A definition whose rules the checker accepts never fails a rule at run time for type
//! reasons (issue 19, item 3), over generated rules and generated tickets.
//!
//! Rules are drawn from a small grammar of rhai expressions over a fixed process's fields
//! (every field type; required, defaulted and optional fields), `stage`, `priority` and the
//! priority levels: literals of every kind, operators, methods (some that do not exist),
//! `??`, `?.`, `if`, `&&`, `||`, narrowing by `!= ()`. Most draws do not check; those that do
//! are published to an in-memory engine and run on generated tickets (fields set, unset,
//! cleared by an update): as a guard on an action, or as a computed field at creation and on
//! update. Every failure the engine reports must be one the checker cannot see (arithmetic
//! overflow, division by zero), never a type error.

use std::sync::{Arc, OnceLock};

use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::{Actor, Catalog, Engine, EngineError, SystemClock};
use itsmflow_engine::store::memory::MemoryStore;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Map, Value};

const PROCESS: &str = r#"
process p {
  fields {
    t:      text
    tr:     text required
    n:      int
    nr:     int required
    nd:     int default 3
    b:      bool
    br:     bool required
    e:      enum(low, high)
    er:     enum(low, high) required
    d:      duration
    dt:     datetime
    o_text: text
    o_int:  int
    o_bool: bool
    o_enum: enum(low, high)
    o_dur:  duration
    o_dt:   datetime
    o_req:  int required default 0
  }

  priorities P1, P2

  priority from er {
    low  => P2
    high => P1
  }

  stage open initial
  stage done final

  transition go: open -> done
  transition go_t: open -> done requires t

  RULE
}
"#;

/// Fields a rule may read, and what a ticket may hold in each (`None`: unset).
const FIELDS: &[(&str, bool, &[&str])] = &[
    ("t", false, &["\"\"", "\"low\"", "\"abc\""]),
    ("tr", true, &["\"x\"", "\"high\""]),
    ("n", false, &["-5", "0", "7"]),
    ("nr", true, &["-1", "2"]),
    ("nd", false, &["0", "3"]),
    ("b", false, &["true", "false"]),
    ("br", true, &["true", "false"]),
    ("e", false, &["\"low\"", "\"high\""]),
    ("er", true, &["\"low\"", "\"high\""]),
    ("d", false, &["\"1h\"", "\"2d\""]),
    ("dt", false, &["\"2026-01-01T00:00:00Z\""]),
];

/// Computed fields (the target of a `computes` rule).
const OUTPUTS: &[&str] = &[
    "o_text", "o_int", "o_bool", "o_enum", "o_dur", "o_dt", "o_req",
];

fn leaf() -> impl Strategy<Value = String> {
    let words: Vec<&'static str> = FIELDS
        .iter()
        .map(|(n, _, _)| *n)
        .chain([
            "priority", "stage", "P1", "P2", "0", "1", "-2", "3600", "1.5", "\"\"", "\"low\"",
            "\"high\"", "\"hgh\"", "\"open\"", "\"x\"", "true", "false", "()", "'c'",
        ])
        .collect();
    proptest::sample::select(words).prop_map(str::to_string)
}

fn field() -> impl Strategy<Value = String> {
    proptest::sample::select(FIELDS.iter().map(|(n, _, _)| *n).collect::<Vec<_>>())
        .prop_map(str::to_string)
}

fn expr() -> impl Strategy<Value = String> {
    let binops = proptest::sample::select(vec![
        "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&", "|",
    ]);
    let methods0 = proptest::sample::select(vec![
        "len",
        "is_empty",
        "to_upper",
        "abs",
        "lenght",
        "to_string",
        "is_odd",
        "trim",
    ]);
    let methods1 = proptest::sample::select(vec![
        "contains",
        "starts_with",
        "sub_string",
        "max",
        "index_of",
    ]);
    leaf().prop_recursive(4, 40, 3, move |inner| {
        prop_oneof![
            3 => (inner.clone(), binops.clone(), inner.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            1 => (proptest::sample::select(vec!["!", "-"]), inner.clone())
                .prop_map(|(op, a)| format!("({op}{a})")),
            1 => (inner.clone(), methods0.clone()).prop_map(|(a, m)| format!("{a}.{m}()")),
            1 => (inner.clone(), methods1.clone(), inner.clone())
                .prop_map(|(a, m, b)| format!("{a}.{m}({b})")),
            1 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} ?? {b})")),
            1 => inner.clone().prop_map(|a| format!("{a}?.len()")),
            1 => (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, a, b)| format!("(if {c} {{ {a} }} else {{ {b} }})")),
            1 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
            1 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
            1 => (field(), inner.clone()).prop_map(|(f, b)| format!("({f} != () && {b})")),
            1 => (field(), inner.clone(), inner.clone())
                .prop_map(|(f, a, b)| format!("(if {f} == () {{ {a} }} else {{ {b} }})")),
            1 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{{ let v = {a}; v == {b} }}")),
        ]
    })
}

/// The types the typed generator aims at.
#[derive(Clone, Copy, Debug)]
enum T {
    Bool,
    Int,
    Str,
}

/// Leaves of a type, and now and then one of another type or `()` (so that some draws are
/// wrong, and optional fields are used where `()` fails).
fn typed_leaf(t: T) -> BoxedStrategy<String> {
    let own: Vec<&'static str> = match t {
        T::Bool => vec!["br", "b", "true", "false", "(b == true)", "(e == \"high\")"],
        T::Int => vec![
            "nr", "n", "nd", "d", "dt", "priority", "P1", "P2", "0", "7", "-3",
        ],
        T::Str => vec![
            "tr", "t", "e", "er", "stage", "\"low\"", "\"high\"", "\"\"", "\"x\"",
        ],
    };
    prop_oneof![
        6 => proptest::sample::select(own).prop_map(str::to_string),
        1 => leaf(),
    ]
    .boxed()
}

/// Expressions that are mostly of each type, `depth` levels deep at most (built level by
/// level, each from the one below).
fn typed_levels(depth: u32) -> [BoxedStrategy<String>; 3] {
    let mut level = [T::Bool, T::Int, T::Str].map(typed_leaf);
    for _ in 0..depth {
        level = [T::Bool, T::Int, T::Str].map(|t| typed(t, &level));
    }
    level
}

/// An expression that is mostly of type `t`, over expressions of `below`.
fn typed(t: T, below: &[BoxedStrategy<String>; 3]) -> BoxedStrategy<String> {
    let leaf = typed_leaf(t);
    let sub = |t: T| match t {
        T::Bool => below[0].clone(),
        T::Int => below[1].clone(),
        T::Str => below[2].clone(),
    };
    let cmp = proptest::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]);
    let eq = proptest::sample::select(vec!["==", "!="]);
    let arith = proptest::sample::select(vec!["+", "-", "*", "/", "%"]);
    match t {
        T::Bool => prop_oneof![
            3 => leaf,
            2 => (sub(T::Int), cmp, sub(T::Int))
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            1 => (sub(T::Str), eq.clone(), sub(T::Str))
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            1 => (
                proptest::sample::select(vec!["e", "er", "stage"]),
                eq,
                proptest::sample::select(vec!["\"low\"", "\"high\"", "\"hgh\"", "\"open\"", "\"done\""]),
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            1 => (sub(T::Bool), sub(T::Bool)).prop_map(|(a, b)| format!("({a} && {b})")),
            1 => (sub(T::Bool), sub(T::Bool)).prop_map(|(a, b)| format!("({a} || {b})")),
            1 => sub(T::Bool).prop_map(|a| format!("(!{a})")),
            2 => (field(), sub(T::Bool)).prop_map(|(f, b)| format!("({f} != () && {b})")),
            1 => (field(), sub(T::Bool)).prop_map(|(f, b)| format!("({f} == () || {b})")),
            1 => (
                sub(T::Str),
                proptest::sample::select(vec!["contains", "starts_with", "ends_with"]),
                sub(T::Str),
            )
                .prop_map(|(a, m, b)| format!("{a}.{m}({b})")),
            1 => sub(T::Str).prop_map(|a| format!("{a}.is_empty()")),
            1 => sub(T::Int).prop_map(|a| format!("{a}.is_odd()")),
            1 => (sub(T::Bool), sub(T::Bool), sub(T::Bool))
                .prop_map(|(c, a, b)| format!("(if {c} {{ {a} }} else {{ {b} }})")),
            1 => (field(), sub(T::Bool), sub(T::Bool))
                .prop_map(|(f, a, b)| format!("{{ if {f} == () {{ return {a}; }} {b} }}")),
        ]
        .boxed(),
        T::Int => prop_oneof![
            3 => leaf,
            3 => (sub(T::Int), arith, sub(T::Int))
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            1 => sub(T::Str).prop_map(|a| format!("{a}.len()")),
            1 => sub(T::Str).prop_map(|a| format!("({a}?.len() ?? 0)")),
            2 => (sub(T::Int), sub(T::Int)).prop_map(|(a, b)| format!("({a} ?? {b})")),
            1 => (sub(T::Int), sub(T::Int)).prop_map(|(a, b)| format!("max({a}, {b})")),
            1 => sub(T::Int).prop_map(|a| format!("{a}.abs()")),
            1 => (sub(T::Bool), sub(T::Int), sub(T::Int))
                .prop_map(|(c, a, b)| format!("(if {c} {{ {a} }} else {{ {b} }})")),
            1 => (field(), sub(T::Int), sub(T::Int))
                .prop_map(|(f, a, b)| format!("(if {f} != () {{ {a} }} else {{ {b} }})")),
        ]
        .boxed(),
        T::Str => prop_oneof![
            3 => leaf,
            1 => (sub(T::Str), sub(T::Str)).prop_map(|(a, b)| format!("({a} + {b})")),
            1 => (sub(T::Str), sub(T::Int)).prop_map(|(a, b)| format!("({a} + {b})")),
            1 => sub(T::Str).prop_map(|a| format!("{a}.to_upper()")),
            2 => (sub(T::Str), sub(T::Str)).prop_map(|(a, b)| format!("({a} ?? {b})")),
            1 => (sub(T::Str), sub(T::Int)).prop_map(|(a, b)| format!("{a}.sub_string({b})")),
            1 => (sub(T::Bool), sub(T::Str), sub(T::Str))
                .prop_map(|(c, a, b)| format!("(if {c} {{ {a} }} else {{ {b} }})")),
            1 => (sub(T::Str), sub(T::Str))
                .prop_map(|(a, b)| format!("switch {a} {{ \"low\" => {b}, \"high\" => \"low\", _ => \"high\" }}")),
        ]
        .boxed(),
    }
}

/// A rule: its kind and its body, mostly aimed at the type the kind wants, sometimes anything.
fn rule() -> impl Strategy<Value = (Kind, String)> {
    let [bools, ints, strs] = typed_levels(3);
    let any = expr().boxed();
    kind().prop_flat_map(move |k| {
        let aimed = match &k {
            Kind::Guard(_) | Kind::Computes("o_bool") => bools.clone(),
            Kind::Computes("o_text" | "o_enum") => strs.clone(),
            Kind::Computes(_) => ints.clone(),
        };
        (Just(k), prop_oneof![3 => aimed, 1 => any.clone()])
    })
}

/// A ticket: a value (or none) per field.
fn ticket() -> impl Strategy<Value = Map<String, Value>> {
    let per_field: Vec<_> = FIELDS
        .iter()
        .map(|(name, required, values)| {
            let values: Vec<Option<&'static str>> = values
                .iter()
                .map(|v| Some(*v))
                .chain((!required).then_some(None))
                .collect();
            proptest::sample::select(values).prop_map(move |v| (*name, v))
        })
        .collect();
    per_field.prop_map(|pairs| {
        let mut m = Map::new();
        for (name, v) in pairs {
            match v {
                Some(v) => {
                    m.insert(name.to_string(), serde_json::from_str(v).expect("json"));
                }
                None => {
                    m.insert(name.to_string(), Value::Null);
                }
            }
        }
        m
    })
}

#[derive(Debug, Clone)]
enum Kind {
    Guard(&'static str),
    Computes(&'static str),
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        proptest::sample::select(vec!["go", "go_t"]).prop_map(Kind::Guard),
        proptest::sample::select(OUTPUTS.to_vec()).prop_map(Kind::Computes),
    ]
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn engine() -> &'static Engine<MemoryStore> {
    static ENGINE: OnceLock<Engine<MemoryStore>> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let catalog = Arc::new(Catalog::default());
        runtime()
            .block_on(Engine::open(
                MemoryStore::new(catalog.clone()),
                catalog,
                Arc::new(SystemClock),
            ))
            .expect("open")
    })
}

/// Failures the checker cannot see: of values, not of types.
fn value_failure(message: &str) -> bool {
    [
        "Division by zero",
        "overflow",
        "Arithmetic",
        "Too many operations",
        "too large",
        "out of bounds",
    ]
    .iter()
    .any(|m| message.contains(m))
}

fn type_failure(e: &EngineError) -> Option<String> {
    match e {
        EngineError::RuleFailed { message, .. } if !value_failure(message) => Some(e.to_string()),
        // The input clearing a required field is refused for that, before any rule runs.
        EngineError::InvalidFields(errors)
            if errors
                .iter()
                .all(|f| f.message.contains("cannot be cleared")) =>
        {
            None
        }
        EngineError::InvalidFields(_) => Some(e.to_string()),
        _ => None,
    }
}

/// Check the rule; if the checker accepts it, run it on the tickets. Whether it was accepted.
fn run_case(
    kind: &Kind,
    body: &str,
    tickets: &[Map<String, Value>],
) -> Result<bool, TestCaseError> {
    let rule = match kind {
        Kind::Guard(t) => format!("rule r when transition {t} {{\n    {body}\n  }}"),
        Kind::Computes(f) => format!("rule r computes {f} {{\n    {body}\n  }}"),
    };
    let text = PROCESS.replace("RULE", &rule);
    let mut sources = Sources::new();
    sources.add("p.itsm", text.clone());
    let checked = itsmflow_engine::check(&sources);
    if checked.has_errors() {
        return Ok(false);
    }
    if std::env::var_os("RULE_TYPES_SHOW").is_some() {
        eprintln!("accepted {kind:?}: {body}");
    }
    let e = engine();
    let actor = Actor::new("ann", &["agent"]);
    runtime().block_on(async {
        e.publish(&sources)
            .await
            .map_err(|err| TestCaseError::fail(format!("publish: {err}")))?;
        for pair in tickets.chunks(2) {
            let (first, second) = (&pair[0], pair.get(1).unwrap_or(&pair[0]));
            let created = match e.create("p", first, &actor).await {
                Ok(v) => v,
                Err(err) => {
                    if let Some(why) = type_failure(&err) {
                        return Err(TestCaseError::fail(format!(
                            "{rule}\ncreating {first:?}: {why}"
                        )));
                    }
                    continue;
                }
            };
            let result = match kind {
                Kind::Guard(t) => {
                    let mut input = Map::new();
                    if *t == "go_t" && second.get("t").is_some_and(|v| !v.is_null()) {
                        input.insert("t".into(), second["t"].clone());
                    }
                    e.perform(created.id(), t, &input, None, &actor, None)
                        .await
                        .map(|_| ())
                }
                Kind::Computes(_) => e
                    .update(created.id(), second, None, &actor, None)
                    .await
                    .map(|_| ()),
            };
            if let Err(err) = result {
                if let Some(why) = type_failure(&err) {
                    return Err(TestCaseError::fail(format!(
                        "{rule}\non {first:?} then {second:?}: {why}"
                    )));
                }
            }
        }
        Ok(true)
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 3000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn accepted_rules_never_fail_for_type_reasons(
        (kind, body) in rule(),
        tickets in proptest::collection::vec(ticket(), 4..7),
    ) {
        run_case(&kind, &body, &tickets)?;
    }
}

/// Rules written by hand that the checker accepts, run the same way.
#[test]
fn hand_written_rules_that_check_run_clean() {
    let tickets: Vec<Map<String, Value>> = vec![
        json!({"tr": "x", "nr": 1, "br": true, "er": "low"}),
        json!({"t": "abc", "n": 5, "b": false, "e": "high", "d": "1h"}),
        json!({"tr": "y", "nr": -3, "br": false, "er": "high", "nd": 0}),
        json!({"nd": null, "t": null}),
    ]
    .into_iter()
    .map(|v| v.as_object().cloned().expect("object"))
    .collect();
    let cases: &[(Kind, &str)] = &[
        (Kind::Guard("go"), "t != () && t.len() > 2"),
        (Kind::Guard("go_t"), "t.len() > 2"),
        (Kind::Guard("go"), "(nd ?? 3) + nr > 0 || er == \"high\""),
        (Kind::Guard("go"), "if b == () { br } else { b }"),
        (Kind::Guard("go"), "priority <= P2 && stage == \"open\""),
        (
            Kind::Computes("o_enum"),
            "if br { \"low\" } else { \"high\" }",
        ),
        (Kind::Computes("o_dur"), "max(0, nr) + (d ?? 0)"),
        (Kind::Computes("o_req"), "nr * 2"),
        (Kind::Computes("o_text"), "tr + nr"),
        (Kind::Computes("o_int"), "n"),
    ];
    for (kind, body) in cases {
        let accepted = run_case(kind, body, &tickets).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert!(accepted, "{body} should check clean");
    }
}

/// The checker takes a required field as set in every rule: a ticket gets it at creation and
/// no change may clear it. An update (or an action's input) that clears one is refused as
/// such before the `computes` rules run, so no rule sees it unset.
#[test]
fn clearing_a_required_field_is_refused_before_rules_run() {
    let tickets: Vec<Map<String, Value>> = [
        json!({"tr": "x", "nr": 1, "br": true, "er": "low"}),
        json!({"tr": null}),
    ]
    .into_iter()
    .map(|v| v.as_object().cloned().expect("object"))
    .collect();
    let accepted =
        run_case(&Kind::Computes("o_int"), "tr.len()", &tickets).unwrap_or_else(|e| panic!("{e}"));
    assert!(accepted);
}
