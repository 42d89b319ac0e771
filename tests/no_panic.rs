//! Property tests: the parser, the checker and the formatter never panic, whatever the input.
//!
//! Kinds of input:
//!
//! * arbitrary strings: any unicode, printable text with the language's punctuation, and a
//!   "token soup" drawn from the language's vocabulary (keywords, punctuation, names, numbers,
//!   durations, times, dates, strings, comments). They rarely get past the parser, so they are
//!   checked alone;
//! * generated programs: a walk of the grammar driven by a list of random choices, with an
//!   adjustable rate of corruption (dropped or stray tokens), so most inputs get past the
//!   parser and deep into the checker. Shrinking the choice list towards zeros shrinks the
//!   program towards the smallest, uncorrupted one. They are checked with
//!   `processes/calendars.itsm`, `roles.itsm` and `queues.itsm`, whose calendars, roles and
//!   queues they refer to;
//! * mutations of the real files in `processes/`: deleted, duplicated and truncated byte
//!   ranges, stray tokens and layout, swapped lines; and, for the formatter, the same files
//!   with comments and line breaks added between tokens. They are checked with the other,
//!   untouched files of `processes/`;
//! * a few inputs random generation does not reach: huge priority tables, deep nesting.
//!
//! For every input: `parse` does not panic and its diagnostics point inside the file; `check`
//! does not panic, returns a project exactly when there are no errors, and its diagnostics
//! render as text and JSON. When the input has no syntax errors, `format` does not panic, its
//! output re-parses without syntax errors to an equal tree, and formatting that output again
//! changes nothing.
//!
//! The runs are deterministic (fixed seed, no failure persistence files), so a failure
//! reproduces with `cargo test --test no_panic`. The number of cases keeps the file under
//! about 15 seconds in a debug build on two cores.

use std::sync::LazyLock;

use itsmflow_dsl::ast::FileId;
use itsmflow_dsl::diagnostic::{render_text, to_json};
use itsmflow_dsl::format::format;
use itsmflow_dsl::{parse, Diagnostic, Sources};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::RngSeed;

// ---------------------------------------------------------------------------------------------
// Configuration and the sample project

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(0x0175_f10e),
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    }
}

/// The `.itsm` files of `processes/`, sorted by name: `(name, text)`.
static PROCESSES: LazyLock<Vec<(String, String)>> = LazyLock::new(|| {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("processes");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?.to_string();
            if !name.ends_with(".itsm") {
                return None;
            }
            let text = std::fs::read_to_string(&path).ok()?;
            Some((format!("processes/{name}"), text))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .itsm files in {}", dir.display());
    files
});

// ---------------------------------------------------------------------------------------------
// The properties every input must satisfy

fn syntax_errors(diagnostics: &[Diagnostic]) -> usize {
    diagnostics
        .iter()
        .filter(|d| d.is_error() && d.code == "syntax")
        .count()
}

/// Every diagnostic of a file points inside it, on character boundaries.
fn spans_fit(text: &str, diagnostics: &[Diagnostic], file: FileId) -> Result<(), TestCaseError> {
    for d in diagnostics {
        let spans = std::iter::once(d.span).chain(d.secondary.iter().map(|(s, _)| *s));
        for s in spans.filter(|s| s.file == file) {
            prop_assert!(
                s.start <= s.end && text.get(s.range()).is_some(),
                "diagnostic `{}` ({}) has span {}..{} outside the text or off a char boundary (len {})",
                d.code,
                d.message,
                s.start,
                s.end,
                text.len()
            );
        }
    }
    Ok(())
}

/// Run the whole pipeline on `text`, checked as file `index` of a project whose other files
/// are `others` (with `index` in `0..=others.len()`).
fn exercise(text: &str, index: usize, others: &[(String, String)]) -> Result<(), TestCaseError> {
    let id = FileId(index as u32);

    // Parse.
    let parsed = parse(id, text);
    spans_fit(text, &parsed.diagnostics, id)?;

    // Check, with the other files of the project.
    let mut sources = Sources::new();
    for (i, (name, other)) in others.iter().enumerate() {
        if i == index {
            sources.add("input.itsm", text);
        }
        sources.add(name.as_str(), other.as_str());
    }
    if index == others.len() {
        sources.add("input.itsm", text);
    }
    let checked = itsmflow_engine::check(&sources);
    prop_assert_eq!(
        checked.project.is_some(),
        !checked.has_errors(),
        "a project must be returned exactly when there are no errors"
    );
    spans_fit(text, &checked.diagnostics, id)?;
    let _ = render_text(&sources, &checked.diagnostics);
    let _ = to_json(&sources, &checked.diagnostics);

    // Format, when there is no syntax error.
    if syntax_errors(&parsed.diagnostics) > 0 {
        return Ok(());
    }
    let formatted = format(text, &parsed.file);
    let reparsed = parse(id, &formatted);
    prop_assert!(
        syntax_errors(&reparsed.diagnostics) == 0,
        "formatted output does not parse: {:?}\n--- input ---\n{text}\n--- formatted ---\n{formatted}",
        reparsed
            .diagnostics
            .iter()
            .map(|d| &d.message)
            .collect::<Vec<_>>()
    );
    prop_assert!(
        reparsed.file == parsed.file,
        "formatted output parses to a different tree\n--- input ---\n{text}\n--- formatted ---\n{formatted}"
    );
    let again = format(&formatted, &reparsed.file);
    prop_assert!(
        again == formatted,
        "formatting is not idempotent\n--- input ---\n{text}\n--- formatted ---\n{formatted}\n--- formatted again ---\n{again}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Vocabulary

const KEYWORDS: &[&str] = &[
    "calendar",
    "timezone",
    "hours",
    "closed",
    "holidays",
    "queue",
    "tier",
    "escalates_to",
    "members",
    "assign",
    "role",
    "process",
    "for",
    "client",
    "extends",
    "fields",
    "enum",
    "required",
    "default",
    "priorities",
    "priority",
    "from",
    "targets",
    "on",
    "respond",
    "resolve",
    "stage",
    "initial",
    "final",
    "by",
    "routing",
    "pauses",
    "stops",
    "starts",
    "transition",
    "or",
    "and",
    "not",
    "in",
    "after",
    "requires",
    "when",
    "otherwise",
    "escalation",
    "at",
    "notify",
    "during",
    "business",
    "move",
    "to",
    "next",
    "raise",
    "perform",
    "approval",
    "none",
    "any",
    "all",
    "of",
    "then",
    "approve",
    "reject",
    "expire",
    "excludes",
    "remind",
    "rule",
    "computes",
    "spawns",
    "as",
    "with",
    "person",
    "creator",
    "assignee",
    "manager",
    "approvers",
    "links",
    "one",
    "many",
    "via",
    "no",
    "where",
    "service",
    "description",
    "owner",
    "supported",
    "queues",
    "item",
];

const PUNCTUATION: &[&str] = &[
    "{", "}", "(", ")", ":", ",", "=>", "->", "==", "!=", "<", "<=", ">", ">=", "%", "\"", "-",
    "=", "/", "*", "`", "'", "\\",
];

/// Names of the sample project and a few more, so references sometimes resolve.
const NAMES: &[&str] = &[
    "incident",
    "change",
    "office",
    "weekend",
    "24x7",
    "caller",
    "agent",
    "network_engineer",
    "team_lead",
    "incident_manager",
    "service_desk",
    "second_line",
    "network",
    "vendor",
    "major_incident",
    "new",
    "triage",
    "working",
    "awaiting_caller",
    "resolved",
    "closed",
    "cancelled",
    "impact",
    "urgency",
    "category",
    "resolution",
    "requester",
    "deputy",
    "reopened",
    "high",
    "medium",
    "low",
    "P1",
    "P2",
    "P3",
    "P4",
    "P5",
    "mon",
    "fri",
    "sat",
    "sun",
    "text",
    "int",
    "bool",
    "duration",
    "datetime",
    "least_loaded",
    "round_robin",
    "true",
    "false",
    "x",
    "_",
];

const LITERALS: &[&str] = &[
    "0",
    "1",
    "2",
    "-1",
    "99999999999999999999999",
    "15m",
    "4h",
    "3d",
    "1w",
    "30s",
    "1h30m",
    "0m",
    "99999999999999999w",
    "50%",
    "100%",
    "0%",
    "08:00",
    "17:30",
    "24:00",
    "9:00",
    "99:99",
    "2026-12-25",
    "2026-02-30",
    "0000-00-00",
    "2026-12-25T08:00",
    "2026-12-25T08:00:00Z",
    "2026-12-25T08:00:00+01:00",
    "\"\"",
    "\"Office hours\"",
    "\"Europe/Amsterdam\"",
    "\"a \\\"quoted\\\" \\n word\"",
    "\"ünïcødé ✓\"",
    "// a comment\n",
    "//\n",
    "/* */",
    "{ resolution != \"\" }",
    "{ if impact == \"high\" { 3 } else { 1 } }",
    "{ \"}\" }",
    "\"Incident {id} ({title}) is late\"",
    "\"{{ {nope {}} }\"",
];

/// Layout and comments: what the formatter must keep or normalise.
const TRIVIA: &[&str] = &[
    "\n",
    "\n\n",
    "\n\n\n",
    " ",
    "\t",
    "\r\n",
    " // a comment",
    "// a comment\n",
    "\n// a comment\n",
    "//\n",
    " // ünïcødé ✓\n",
];

const SEPARATORS: &[&str] = &[" ", " ", " ", "\n", "\n  ", "", "\t", "\r\n", " // c\n"];

fn vocab_token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYWORDS).prop_map(str::to_string),
        4 => prop::sample::select(PUNCTUATION).prop_map(str::to_string),
        3 => prop::sample::select(NAMES).prop_map(str::to_string),
        2 => prop::sample::select(LITERALS).prop_map(str::to_string),
        1 => "[a-zA-Z_][a-zA-Z0-9_]{0,6}",
        1 => "-?[0-9]{1,4}",
        1 => "([0-9]{1,3}[wdhms]){1,2}",
        1 => "[0-9]{1,2}:[0-9]{2}",
        1 => "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        1 => "\"[^\"\\\\\n]{0,8}\"",
        1 => "// [^\n]{0,8}\n",
    ]
}

/// Strings of language tokens with random separators.
fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec((vocab_token(), prop::sample::select(SEPARATORS)), 0..150).prop_map(
        |tokens| {
            let mut s = String::new();
            for (t, sep) in tokens {
                s.push_str(&t);
                s.push_str(sep);
            }
            s
        },
    )
}

// ---------------------------------------------------------------------------------------------
// A grammar walk driven by a list of choices

/// Writes a program following the grammar; every decision reads the next choice (0 once the
/// list is exhausted, and 0 always means "the simplest thing": stop, no option, no mistake).
struct Gen<'a> {
    choices: &'a [u32],
    pos: usize,
    out: String,
    /// 0: never corrupt; otherwise two chances in `corrupt` per token of a mistake.
    corrupt: u32,
    depth: u32,
}

const STAGES: &[&str] = &[
    "new",
    "triage",
    "working",
    "waiting",
    "resolved",
    "closed",
    "s1",
    "s2",
    "approve_it",
];
const TRANSITIONS: &[&str] = &[
    "log", "accept", "resolve", "close", "reopen", "t1", "cancel",
];
const FIELDS: &[&str] = &[
    "impact",
    "urgency",
    "category",
    "resolution",
    "count",
    "due",
    "flag",
    "risk",
    "requester",
    "deputy",
    "priority",
    "stage",
    "service",
];
const LINKS: &[&str] = &[
    "caused_by",
    "parent",
    "children",
    "fixes",
    "impact",
    "incidents",
    "nope",
];
const VALUES: &[&str] = &[
    "high", "medium", "low", "P1", "0", "network", "true", "x_y", "email",
];
const ROLES: &[&str] = &["caller", "agent", "team_lead", "incident_manager", "r1"];
const QUEUES: &[&str] = &["service_desk", "second_line", "network", "vendor", "q1"];
const CALENDARS: &[&str] = &["office", "weekend", "24x7", "nowhere"];
const PRIORITIES: &[&str] = &["P1", "P2", "P3", "P4", "P5", "P9"];
const TYPES: &[&str] = &[
    "text", "person", "int", "bool", "duration", "datetime", "service", "txt",
];
/// Services of the catalogue, and its items.
const SERVICES: &[&str] = &["email", "vpn", "network", "s1"];
const ITEMS: &[&str] = &["laptop", "mailbox", "x"];
/// What a person may be based on (before any `manager of`).
const PEOPLE: &[&str] = &[
    "creator",
    "assignee",
    "requester",
    "deputy",
    "impact",
    "nobody",
];
/// Messages of notifications: placeholders that resolve and that do not, braces that form none.
const MESSAGES: &[&str] = &[
    "\"Incident {id} is resolved\"",
    "\"{process} {id} ({priority}) in {stage}: {resolution}\"",
    "\"\"",
    "\"  \"",
    "\"{nope} and {impact}\"",
    "\"a {b\"",
    "\"a } b\"",
    "\"{{literal}} {}\"",
    "\"{ id } \\\"{id}\\\" \\t{x.y}\"",
    "\"ünï {cødé} ✓ {requester}\"",
];
const DURATIONS: &[&str] = &["4h", "15m", "3d", "1w", "1h30m", "0m", "30s", "2d"];
const TIMES: &[&str] = &[
    "08:00", "12:30", "13:00", "17:00", "00:00", "24:00", "9:15", "07:60",
];
const DAYS: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun", "funday"];
const DATES: &[&str] = &["2026-12-25", "2027-01-01", "2026-02-30", "2026-12-26"];
const RHAI: &[&str] = &[
    "resolution != \"\"",
    "\n    if impact == \"high\" { 3 } else { 1 }\n  ",
    "count > 2 && flag",
    "\"}\" != `{` // }\n",
    "/* { */ risk",
    "unknown_variable",
    "1 +",
    "",
    "priority < P2",
    "let x = [1, 2]; x.len() > 1",
];

impl Gen<'_> {
    fn run(choices: &[u32]) -> String {
        let mut g = Gen {
            choices,
            pos: 0,
            out: String::new(),
            corrupt: 0,
            depth: 0,
        };
        g.corrupt = [0, 0, 512, 128, 32][g.choice(5) as usize];
        // Half the programs are one process written to check (bar corruption), so that the
        // checker's successful paths and the formatter get valid, complete input too.
        if g.maybe() {
            g.file();
        } else {
            g.coherent_process();
        }
        g.out
    }

    fn choice(&mut self, n: u32) -> u32 {
        let c = self.choices.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        if n == 0 {
            0
        } else {
            c % n
        }
    }

    fn maybe(&mut self) -> bool {
        self.choice(2) == 1
    }

    /// A count in `0..n`, biased towards small ones.
    fn count(&mut self, n: u32) -> u32 {
        let a = self.choice(n);
        let b = self.choice(n);
        a.min(b)
    }

    fn pick(&mut self, xs: &[&'static str]) -> &'static str {
        xs[self.choice(xs.len() as u32) as usize]
    }

    fn tok(&mut self, t: &str) {
        if self.corrupt > 0 {
            let c = self.choice(self.corrupt);
            if c == self.corrupt - 1 {
                return; // a missing token
            }
            if c == self.corrupt - 2 {
                let stray = match self.choice(4) {
                    0 => self.pick(KEYWORDS),
                    1 => self.pick(PUNCTUATION),
                    2 => self.pick(NAMES),
                    _ => self.pick(LITERALS),
                };
                self.sep();
                self.out.push_str(stray);
            }
        }
        self.sep();
        self.out.push_str(t);
    }

    fn sep(&mut self) {
        if self.out.is_empty() {
            return;
        }
        let s = match self.choice(16) {
            0..=5 => " ",
            6..=9 => "\n",
            10 => "\n\n  ",
            11 => "\t",
            12 => "\r\n",
            13 => " // note\n",
            14 => "\n// a comment line\n",
            _ => "   ",
        };
        self.out.push_str(s);
    }

    fn list(&mut self, xs: &[&'static str], max: u32) {
        let n = 1 + self.count(max);
        for i in 0..n {
            if i > 0 {
                self.tok(",");
            }
            let x = self.pick(xs);
            self.tok(x);
        }
    }

    fn label(&mut self) {
        if self.maybe() {
            let l = self.pick(&["\"A label\"", "\"\"", "\"Ünïcødé ✓\"", "\"say \\\"hi\\\"\""]);
            self.tok(l);
        }
    }

    fn file(&mut self) {
        for _ in 0..self.count(6) {
            match self.choice(8) {
                0..=2 => self.process(),
                3 => self.calendar(),
                4 => self.queue(),
                5 => self.role(),
                7 => self.service(),
                _ => self.tok("// top-level comment\n"),
            }
        }
    }

    fn calendar(&mut self) {
        self.tok("calendar");
        let n = self.pick(CALENDARS);
        self.tok(n);
        self.label();
        self.tok("{");
        for _ in 0..self.count(5) {
            match self.choice(3) {
                0 => {
                    self.tok("timezone");
                    let tz = self.pick(&["\"Europe/Amsterdam\"", "\"UTC\"", "\"Mars/Olympus\""]);
                    self.tok(tz);
                }
                1 => {
                    self.tok("hours");
                    for i in 0..1 + self.count(3) {
                        if i > 0 {
                            self.tok(",");
                        }
                        let d = self.pick(DAYS);
                        self.tok(d);
                        if self.maybe() {
                            self.tok("-");
                            let d = self.pick(DAYS);
                            self.tok(d);
                        }
                    }
                    if self.choice(4) == 3 {
                        self.tok("closed");
                    } else {
                        for i in 0..1 + self.count(3) {
                            if i > 0 {
                                self.tok(",");
                            }
                            let a = self.pick(TIMES);
                            self.tok(a);
                            self.tok("-");
                            let b = self.pick(TIMES);
                            self.tok(b);
                        }
                    }
                }
                _ => {
                    self.tok("holidays");
                    for i in 0..1 + self.count(3) {
                        if i > 0 {
                            self.tok(",");
                        }
                        let d = self.pick(DATES);
                        self.tok(d);
                        self.label();
                    }
                }
            }
        }
        self.tok("}");
    }

    fn queue(&mut self) {
        self.tok("queue");
        let n = self.pick(QUEUES);
        self.tok(n);
        self.label();
        if self.maybe() {
            self.tok("{");
            for _ in 0..self.count(5) {
                match self.choice(4) {
                    0 => {
                        self.tok("tier");
                        let t = self.pick(&["1", "2", "3", "0", "-1"]);
                        self.tok(t);
                    }
                    1 => {
                        self.tok("escalates_to");
                        let q = self.pick(QUEUES);
                        self.tok(q);
                    }
                    2 => {
                        self.tok("members");
                        self.list(ROLES, 3);
                    }
                    _ => {
                        self.tok("assign");
                        let a = self.pick(&["least_loaded", "round_robin", "random"]);
                        self.tok(a);
                    }
                }
            }
            self.tok("}");
        }
    }

    fn role(&mut self) {
        self.tok("role");
        let r = self.pick(ROLES);
        self.tok(r);
        self.label();
    }

    /// `service NAME ["label"] [{ description, owner role, supported on, queues, targets,
    /// item ... }]`, names among the sample project's and a few unknown ones.
    fn service(&mut self) {
        self.tok("service");
        let n = self.pick(SERVICES);
        self.tok(n);
        self.label();
        if self.choice(6) == 5 {
            return; // no braces
        }
        self.tok("{");
        for _ in 0..self.count(8) {
            match self.choice(7) {
                0 => {
                    self.tok("description");
                    let d = self.pick(&["\"Mail for everyone\"", "\"\""]);
                    self.tok(d);
                }
                1 => {
                    self.tok("owner");
                    self.tok("role");
                    let r = self.pick(ROLES);
                    self.tok(r);
                }
                2 => {
                    self.tok("supported");
                    self.tok("on");
                    let c = self.pick(CALENDARS);
                    self.tok(c);
                }
                3 => {
                    self.tok("queues");
                    self.list(QUEUES, 3);
                }
                4 => {
                    self.tok("targets");
                    self.tok("{");
                    for _ in 0..self.count(4) {
                        self.target_row();
                    }
                    self.tok("}");
                }
                _ => self.catalogue_item(),
            }
        }
        self.tok("}");
    }

    /// `item NAME ["label"] { description, process, with { ... }, requires ... }`.
    fn catalogue_item(&mut self) {
        self.tok("item");
        let n = self.pick(ITEMS);
        self.tok(n);
        self.label();
        self.tok("{");
        for _ in 0..self.count(5) {
            match self.choice(4) {
                0 => {
                    self.tok("description");
                    self.tok("\"An item\"");
                }
                1 => {
                    self.tok("process");
                    let p = self.pick(&["incident", "change", "request", "nope"]);
                    self.tok(p);
                }
                2 => self.with_entries(),
                _ => {
                    self.tok("requires");
                    self.list(FIELDS, 3);
                }
            }
        }
        self.tok("}");
    }

    fn process(&mut self) {
        self.tok("process");
        let n = self.pick(&["incident", "change", "request"]);
        self.tok(n);
        self.label();
        if self.choice(8) == 7 {
            self.tok("for");
            self.tok("client");
            self.tok("acme");
            self.tok("extends");
            self.tok("incident");
        }
        self.tok("{");
        if self.choice(4) != 3 {
            // A skeleton that checks, so that the members below meet a working process.
            for t in [
                "stage",
                "new",
                "initial",
                "stage",
                "closed",
                "final",
                "transition",
                "close",
                ":",
                "new",
                "->",
                "closed",
            ] {
                self.tok(t);
            }
        }
        for _ in 0..self.count(16) {
            match self.choice(15) {
                0 => self.fields(),
                14 => self.links(),
                1 => {
                    self.tok("priorities");
                    self.list(PRIORITIES, 5);
                }
                2 => self.priority_table(),
                3 => self.targets(),
                4..=6 => self.stage(),
                7..=9 => self.transition(),
                10 => self.routing(),
                11 => self.escalation(),
                12 => self.approval(),
                _ => self.rule(),
            }
        }
        self.tok("}");
    }

    /// `links { NAME: one|many PROCESS [via KIND] ... }`, names among the other processes'
    /// and the fields.
    fn links(&mut self) {
        self.tok("links");
        self.tok("{");
        for _ in 0..self.count(4) {
            let n = self.pick(LINKS);
            self.tok(n);
            self.tok(":");
            let c = self.pick(&["one", "many"]);
            self.tok(c);
            let p = self.pick(&["incident", "change", "request", "nope"]);
            self.tok(p);
            if self.maybe() {
                self.tok("via");
                let k = self.pick(LINKS);
                self.tok(k);
            }
        }
        self.tok("}");
    }

    fn literal(&mut self) {
        let l = match self.choice(5) {
            0 | 1 => self.pick(VALUES),
            2 => self.pick(DURATIONS),
            3 => self.pick(&["\"text\"", "\"\"", "42", "-7", "2026-12-25"]),
            _ => self.pick(&["2026-12-25T08:00:00Z", "2026-12-25T08:00", "true", "false"]),
        };
        self.tok(l);
    }

    fn fields(&mut self) {
        self.tok("fields");
        self.tok("{");
        for _ in 0..self.count(7) {
            let f = self.pick(FIELDS);
            self.tok(f);
            self.tok(":");
            if self.maybe() {
                self.tok("enum");
                self.tok("(");
                self.list(VALUES, 5);
                if self.choice(4) == 3 {
                    self.tok(",");
                }
                self.tok(")");
            } else {
                let t = self.pick(TYPES);
                self.tok(t);
            }
            for _ in 0..self.count(3) {
                if self.maybe() {
                    self.tok("required");
                } else {
                    self.tok("default");
                    self.literal();
                }
            }
        }
        self.tok("}");
    }

    fn priority_table(&mut self) {
        self.tok("priority");
        self.tok("from");
        self.list(FIELDS, 3);
        self.tok("{");
        for _ in 0..self.count(6) {
            self.list(VALUES, 3);
            self.tok("=>");
            self.list(PRIORITIES, 4);
        }
        self.tok("}");
    }

    fn targets(&mut self) {
        self.tok("targets");
        if self.maybe() {
            self.tok("on");
            let c = self.pick(CALENDARS);
            self.tok(c);
        }
        self.tok("{");
        for _ in 0..self.count(6) {
            self.target_row();
        }
        self.tok("}");
    }

    /// `P1: respond 15m, resolve 4h [on CALENDAR]`, of a process's or a service's targets.
    fn target_row(&mut self) {
        let p = self.pick(PRIORITIES);
        self.tok(p);
        self.tok(":");
        for i in 0..1 + self.count(2) {
            if i > 0 {
                self.tok(",");
            }
            let k = self.pick(&["respond", "resolve"]);
            self.tok(k);
            let d = self.pick(DURATIONS);
            self.tok(d);
        }
        if self.choice(4) == 3 {
            self.tok("on");
            let c = self.pick(CALENDARS);
            self.tok(c);
        }
    }

    fn clocks(&mut self) {
        self.list(&["respond", "resolve"], 2);
    }

    fn stage(&mut self) {
        self.tok("stage");
        let s = self.pick(STAGES);
        self.tok(s);
        self.label();
        for _ in 0..self.count(3) {
            let k = self.pick(&["initial", "final"]);
            self.tok(k);
        }
        if self.maybe() {
            self.tok("{");
            for _ in 0..self.count(4) {
                match self.choice(5) {
                    4 => self.notify(PEOPLE),
                    0 => {
                        self.tok("queue");
                        if self.maybe() {
                            self.tok("by");
                            self.tok("routing");
                        } else {
                            let q = self.pick(QUEUES);
                            self.tok(q);
                        }
                    }
                    1 => {
                        self.tok("pauses");
                        self.clocks();
                    }
                    2 => {
                        self.tok("stops");
                        self.clocks();
                    }
                    _ => {
                        self.tok("starts");
                        self.clocks();
                    }
                }
            }
            self.tok("}");
        }
    }

    fn transition(&mut self) {
        self.tok("transition");
        let t = self.pick(TRANSITIONS);
        self.tok(t);
        self.label();
        self.tok(":");
        self.list(STAGES, 3);
        self.tok("->");
        let s = self.pick(STAGES);
        self.tok(s);
        for i in 0..self.count(4) {
            match self.choice(8) {
                7 => {
                    self.tok("when");
                    self.condition();
                }
                6 => {
                    // `then perform ACTION on LINK [with { ... }]`
                    self.tok("then");
                    self.tok("perform");
                    let t = self.pick(TRANSITIONS);
                    self.tok(t);
                    self.tok("on");
                    let l = self.pick(LINKS);
                    self.tok(l);
                    if self.maybe() {
                        self.with_entries();
                    }
                }
                5 => self.spawns(),
                4 => self.notify(PEOPLE),
                0 => {
                    // After `or`, `by` may be left out.
                    let or = i > 0 && self.maybe();
                    if or {
                        self.tok("or");
                    }
                    if !or || self.maybe() {
                        self.tok("by");
                    }
                    self.tok("role");
                    self.list(ROLES, 3);
                }
                3 => {
                    let or = i > 0 && self.maybe();
                    if or {
                        self.tok("or");
                    }
                    if !or || self.maybe() {
                        self.tok("by");
                    }
                    for j in 0..1 + self.count(3) {
                        if j > 0 {
                            self.tok(",");
                        }
                        self.person(PEOPLE);
                    }
                }
                1 => {
                    if i > 0 && self.maybe() {
                        self.tok("or");
                    }
                    self.tok("after");
                    let d = self.pick(DURATIONS);
                    self.tok(d);
                }
                _ => {
                    self.tok("requires");
                    self.list(FIELDS, 3);
                }
            }
        }
    }

    /// `spawns PROCESS [as KIND] [with { FIELD: VALUE, ... }]`: values are literals and field
    /// names, of any type.
    fn spawns(&mut self) {
        self.tok("spawns");
        let p = self.pick(&["incident", "change", "request", "nope"]);
        self.tok(p);
        if self.maybe() {
            self.tok("as");
            let k = self.pick(&["caused_by", "fixes", "with", "parent", "children"]);
            self.tok(k);
        }
        if self.maybe() {
            self.with_entries();
        }
    }

    /// `with { FIELD: VALUE, ... }`: values are literals and field names, of any type.
    fn with_entries(&mut self) {
        self.tok("with");
        self.tok("{");
        for i in 0..1 + self.count(5) {
            if i > 0 {
                self.tok(",");
            }
            let f = self.pick(FIELDS);
            self.tok(f);
            self.tok(":");
            if self.maybe() {
                let f = self.pick(FIELDS);
                self.tok(f);
            } else {
                self.literal();
            }
        }
        if self.maybe() {
            self.tok(",");
        }
        self.tok("}");
    }

    /// `notify RECIPIENT and ... ["message"] [during business hours]`, recipients among roles,
    /// `approvers` and people based on `bases`.
    fn notify(&mut self, bases: &[&'static str]) {
        self.tok("notify");
        for i in 0..1 + self.count(3) {
            if i > 0 {
                self.tok("and");
            }
            match self.choice(4) {
                0 => {
                    self.tok("role");
                    let r = self.pick(ROLES);
                    self.tok(r);
                }
                1 => self.tok("approvers"),
                _ => self.person(bases),
            }
        }
        if self.maybe() {
            let m = self.pick(MESSAGES);
            self.tok(m);
        }
        if self.maybe() {
            self.tok("during");
            self.tok("business");
            self.tok("hours");
        }
    }

    /// `manager of` some number of times (now and then more than the checker allows), then
    /// one of `bases`.
    fn person(&mut self, bases: &[&'static str]) {
        let managers = match self.choice(8) {
            7 => 4 + self.choice(3),
            _ => self.count(4),
        };
        for _ in 0..managers {
            self.tok("manager");
            self.tok("of");
        }
        let base = self.pick(bases);
        self.tok(base);
    }

    fn condition(&mut self) {
        self.depth += 1;
        let deep = self.depth > 4;
        match if deep { 0 } else { self.choice(7) } {
            6 => {
                // `any LINK`, `no LINK where TEST`, `all LINK where TEST`.
                let q = self.pick(&["any", "all", "no"]);
                self.tok(q);
                let l = self.pick(LINKS);
                self.tok(l);
                if q == "all" || self.maybe() {
                    self.tok("where");
                    match self.choice(4) {
                        0 => {
                            self.tok("stage");
                            let op = self.pick(&["==", "!=", "<"]);
                            self.tok(op);
                            let s = self.pick(STAGES);
                            self.tok(s);
                        }
                        1 => {
                            self.tok("stage");
                            self.tok("in");
                            self.tok("(");
                            self.list(STAGES, 3);
                            self.tok(")");
                        }
                        2 => {
                            self.tok("(");
                            self.condition();
                            self.tok(")");
                        }
                        _ => {
                            let f = self.pick(FIELDS);
                            self.tok(f);
                            let op = self.pick(&["==", "!=", "<", "<=", ">", ">="]);
                            self.tok(op);
                            self.literal();
                        }
                    }
                }
            }
            0 | 1 => {
                let f = self.pick(FIELDS);
                self.tok(f);
                let op = self.pick(&["==", "!=", "<", "<=", ">", ">="]);
                self.tok(op);
                self.literal();
            }
            2 => {
                let f = self.pick(FIELDS);
                self.tok(f);
                self.tok("in");
                self.tok("(");
                for i in 0..1 + self.count(4) {
                    if i > 0 {
                        self.tok(",");
                    }
                    self.literal();
                }
                self.tok(")");
            }
            3 => {
                self.tok("not");
                self.condition();
            }
            4 => {
                self.tok("(");
                self.condition();
                self.tok(")");
            }
            _ => {
                self.condition();
                let op = self.pick(&["and", "or"]);
                self.tok(op);
                self.condition();
            }
        }
        self.depth -= 1;
    }

    fn routing(&mut self) {
        self.tok("routing");
        self.tok("{");
        for _ in 0..self.count(6) {
            if self.choice(4) == 3 {
                self.tok("otherwise");
            } else {
                self.tok("when");
                self.condition();
            }
            self.tok("=>");
            let q = self.pick(QUEUES);
            self.tok(q);
        }
        self.tok("}");
    }

    fn escalation(&mut self) {
        self.tok("escalation");
        self.tok("on");
        let k = self.pick(&["resolve", "respond"]);
        self.tok(k);
        self.tok("{");
        for _ in 0..self.count(5) {
            self.tok("at");
            let t = self.pick(&["50%", "75%", "100%", "0%", "150%", "2h", "30m"]);
            self.tok(t);
            self.tok("=>");
            for i in 0..1 + self.count(3) {
                if i > 0 {
                    self.tok(",");
                }
                match self.choice(6) {
                    5 => self.notify(PEOPLE),
                    0 => {
                        self.tok("notify");
                        self.tok("role");
                        let r = self.pick(ROLES);
                        self.tok(r);
                        if self.maybe() {
                            self.tok("during");
                            self.tok("business");
                            self.tok("hours");
                        }
                    }
                    1 => {
                        self.tok("move");
                        self.tok("to");
                        self.tok("next");
                        self.tok("tier");
                    }
                    2 => {
                        self.tok("move");
                        self.tok("to");
                        let q = self.pick(QUEUES);
                        self.tok(q);
                    }
                    3 => {
                        self.tok("raise");
                        self.tok("priority");
                    }
                    _ => {
                        self.tok("perform");
                        let t = self.pick(TRANSITIONS);
                        self.tok(t);
                    }
                }
            }
        }
        self.tok("}");
    }

    fn approval_plan(&mut self) {
        if self.choice(4) == 3 {
            self.tok("none");
            return;
        }
        for i in 0..1 + self.count(3) {
            if i > 0 {
                self.tok(",");
                self.tok("then");
            }
            // A level: groups joined by `and`.
            for j in 0..1 + self.count(3) {
                if j > 0 {
                    self.tok("and");
                }
                if self.choice(4) == 3 {
                    // One person, who must approve.
                    self.person(PEOPLE);
                    continue;
                }
                match self.choice(4) {
                    0 => self.tok("all"),
                    1 => {
                        self.tok("any");
                        let n = self.pick(&["1", "2", "0", "-1"]);
                        self.tok(n);
                    }
                    2 => {
                        let n = self.pick(&["50%", "100%", "0%", "150%", "1%"]);
                        self.tok(n);
                    }
                    _ => {
                        let n = self.pick(&["1", "2", "3", "0"]);
                        self.tok(n);
                    }
                }
                self.tok("of");
                self.tok("role");
                let r = self.pick(ROLES);
                self.tok(r);
            }
        }
    }

    fn approval(&mut self) {
        self.tok("approval");
        self.tok("in");
        let s = self.pick(STAGES);
        self.tok(s);
        self.tok("{");
        for _ in 0..self.count(6) {
            match self.choice(5) {
                0 => {
                    self.tok("when");
                    self.condition();
                    self.tok("=>");
                    self.approval_plan();
                }
                1 => {
                    self.tok("otherwise");
                    self.tok("=>");
                    self.approval_plan();
                }
                2 => {
                    self.tok("excludes");
                    self.list(FIELDS, 3);
                }
                3 => {
                    self.tok("remind");
                    self.tok("after");
                    let d = self.pick(DURATIONS);
                    self.tok(d);
                }
                _ => {
                    self.tok("on");
                    let k = self.pick(&["approve", "reject", "expire"]);
                    self.tok(k);
                    if self.maybe() {
                        self.tok("after");
                        let d = self.pick(DURATIONS);
                        self.tok(d);
                    }
                    self.tok("=>");
                    let s = self.pick(STAGES);
                    self.tok(s);
                }
            }
        }
        self.tok("}");
    }

    fn rule(&mut self) {
        self.tok("rule");
        let n = self.pick(&["guard", "compute", "check_it"]);
        self.tok(n);
        if self.maybe() {
            self.tok("computes");
            let f = self.pick(FIELDS);
            self.tok(f);
        } else {
            self.tok("when");
            self.tok("transition");
            self.list(TRANSITIONS, 3);
        }
        let body = self.pick(RHAI);
        self.tok(&format!("{{{body}}}"));
    }
}

/// Stage names the coherent process declares besides `new` and `closed`: `s0`, `s1`, ...
const FRESH: &[&str] = &["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"];

impl Gen<'_> {
    /// One process meant to check without errors against the shared declarations
    /// (`processes/calendars.itsm`, `roles.itsm`, `queues.itsm`): every name
    /// it uses is declared, every value has its field's type.
    fn coherent_process(&mut self) {
        const HEAD: &str = "process change \"Change\" {
  fields {
    impact: enum(high, medium, low) required
    urgency: enum(high, medium, low) default medium
    note: text
    count: int default 0
    flag: bool default false
    due: datetime
    wait: duration
    requester: person required
    deputy: person
  }
  links {
    follows: one change
    followed_by: many change via follows
  }
  priorities P1, P2, P3
  priority from impact, urgency {
    high => P1, P1, P2
    medium => P1, P2, P3
    low => P2, P3, P3
  }
  targets on office {
    P1: respond 15m, resolve 4h on 24x7
    P2: respond 1h, resolve 1d
    P3: respond 4h, resolve 3d
  }
  stage new \"New\" initial
  stage closed \"Closed\" final
  transition close: new -> closed by role agent
";
        for line in HEAD.lines() {
            for t in line.split_whitespace() {
                self.tok(t);
            }
        }
        // A follow-up change, which copies the fields by name and sets some with `with`: from
        // fields of this one and from values of each type.
        if self.maybe() {
            for t in [
                "transition",
                "follow_up",
                ":",
                "new",
                "->",
                "new",
                "by",
                "role",
                "agent",
                "spawns",
                "change",
            ] {
                self.tok(t);
            }
            if self.maybe() {
                self.tok("as");
                let l = self.pick(&["follows", "followed_by"]);
                self.tok(l);
            }
            if self.maybe() {
                const ENTRIES: [(&str, &str); 10] = [
                    ("note", "\"Follow-up\""),
                    ("impact", "impact"),
                    ("urgency", "low"),
                    ("count", "-3"),
                    ("flag", "true"),
                    ("wait", "1h30m"),
                    ("due", "2026-12-25T08:00"),
                    ("deputy", "requester"),
                    ("requester", "deputy"),
                    ("note", "note"),
                ];
                self.tok("with");
                self.tok("{");
                // Distinct fields: a run of the entries, `note` at most once.
                let n = 1 + self.count(ENTRIES.len() as u32 - 1) as usize;
                let start = self.choice((ENTRIES.len() + 1 - n) as u32) as usize;
                for i in 0..n {
                    if i > 0 {
                        self.tok(",");
                    }
                    let (field, value) = ENTRIES[start + i];
                    for t in [field, ":", value] {
                        self.tok(t);
                    }
                }
                if self.maybe() {
                    self.tok(",");
                }
                self.tok("}");
            }
        }
        // Stages, each with a way in and a way out; then members that refer to them. (The
        // tokens above are split at spaces, so their strings have none.)
        let stages = self.count(FRESH.len() as u32) as usize;
        let stages = &FRESH[..stages];
        // The stage that asks for approval, if any: its notifications may name `approvers`.
        let approval_at =
            (!stages.is_empty() && self.maybe()).then(|| self.choice(stages.len() as u32) as usize);
        for (i, s) in stages.iter().enumerate() {
            self.tok("stage");
            self.tok(s);
            self.label();
            if self.maybe() {
                self.tok("{");
                if self.maybe() {
                    self.valid_notify(approval_at == Some(i));
                }
                match self.choice(4) {
                    0 => {
                        self.tok("queue");
                        let q = self.pick(&["service_desk", "second_line", "network"]);
                        self.tok(q);
                    }
                    1 => {
                        self.tok("queue");
                        self.tok("by");
                        self.tok("routing");
                    }
                    2 => {
                        self.tok("pauses");
                        self.tok("resolve");
                    }
                    _ => {
                        self.tok("stops");
                        self.tok("respond");
                    }
                }
                self.tok("}");
            }
            let from = if i == 0 { "new" } else { stages[i - 1] };
            for t in [
                "transition".to_string(),
                format!("in_{s}"),
                ":".into(),
                from.into(),
                "->".into(),
                s.to_string(),
                "by".into(),
                "role".into(),
                "agent".into(),
            ] {
                self.tok(&t);
            }
            for t in ["transition", &format!("out_{s}"), ":", s, "->", "closed"] {
                self.tok(t);
            }
            if self.choice(4) == 3 {
                self.valid_notify(false);
            }
            match self.choice(6) {
                0 => {}
                1 => {
                    self.tok("after");
                    let d = self.pick(&["4h", "2d", "1w", "30m"]);
                    self.tok(d);
                }
                4 => {
                    // People, then maybe roles and a delay as alternatives.
                    self.tok("by");
                    for j in 0..1 + self.count(3) {
                        if j > 0 {
                            self.tok(",");
                        }
                        self.valid_person();
                    }
                    if self.maybe() {
                        self.tok("or");
                        if self.maybe() {
                            self.tok("by");
                        }
                        self.tok("role");
                        self.tok("agent");
                    }
                    if self.maybe() {
                        for t in ["or", "after", "1d"] {
                            self.tok(t);
                        }
                    }
                }
                5 => {
                    for t in ["by", "role", "team_lead", "or"] {
                        self.tok(t);
                    }
                    if self.maybe() {
                        self.tok("by");
                    }
                    self.valid_person();
                }
                2 => {
                    for t in ["by", "role", "team_lead", "or", "after", "3d"] {
                        self.tok(t);
                    }
                }
                _ => {
                    for t in ["by", "role", "agent", "requires", "note"] {
                        self.tok(t);
                    }
                }
            }
            // A guard over the follow-ups, and effects on them (on `in_` transitions, which
            // have none of their own: no cycle).
            if self.choice(3) == 2 {
                self.tok("when");
                self.valid_link_condition();
            }
            for _ in 0..self.count(3) {
                let target = self.pick(stages);
                for t in ["then", "perform", &format!("in_{target}"), "on"] {
                    self.tok(t);
                }
                let l = self.pick(&["follows", "followed_by"]);
                self.tok(l);
                if self.maybe() {
                    for t in [
                        "with", "{", "note", ":", "note", ",", "urgency", ":", "low", "}",
                    ] {
                        self.tok(t);
                    }
                }
            }
        }
        {
            self.tok("routing");
            self.tok("{");
            for _ in 0..self.count(5) {
                self.tok("when");
                self.valid_condition();
                self.tok("=>");
                let q = self.pick(&["second_line", "network", "major_incident"]);
                self.tok(q);
            }
            for t in ["otherwise", "=>", "service_desk", "}"] {
                self.tok(t);
            }
        }
        if self.maybe() {
            self.tok("escalation");
            self.tok("on");
            let k = self.pick(&["resolve", "respond"]);
            self.tok(k);
            self.tok("{");
            for pct in ["25%", "50%", "75%", "100%"] {
                if self.maybe() {
                    self.tok("at");
                    self.tok(pct);
                    self.tok("=>");
                    if self.choice(4) == 3 {
                        self.valid_notify(approval_at.is_some());
                    } else if self.maybe() {
                        self.tok("notify");
                        self.tok("role");
                        let r = self.pick(&["team_lead", "incident_manager", "agent"]);
                        self.tok(r);
                    } else {
                        self.tok("raise");
                        self.tok("priority");
                    }
                }
            }
            self.tok("}");
        }
        if let Some(at) = approval_at {
            let s = stages[at];
            for t in ["approval", "in", s, "{"] {
                self.tok(t);
            }
            if self.maybe() {
                self.tok("excludes");
                self.list(&["note", "requester", "deputy"], 1);
            }
            for _ in 0..self.count(3) {
                self.tok("when");
                self.valid_condition();
                self.tok("=>");
                self.valid_plan();
            }
            self.tok("otherwise");
            self.tok("=>");
            self.valid_plan();
            for t in ["on", "approve", "=>", "closed", "on", "reject", "=>", "new"] {
                self.tok(t);
            }
            for d in ["4h", "1d"] {
                if self.maybe() {
                    for t in ["remind", "after", d] {
                        self.tok(t);
                    }
                }
            }
            if self.maybe() {
                for t in ["on", "expire", "after", "2d", "=>", "new"] {
                    self.tok(t);
                }
            }
            self.tok("}");
        }
        for i in 0..self.count(3) {
            self.tok("rule");
            self.tok(&format!("rule{i}"));
            if self.maybe() {
                self.tok("when");
                self.tok("transition");
                self.tok("close");
                let body = self.pick(&[
                    "note != \"\"",
                    "count > 0 || flag",
                    "priority <= P2 && impact == \"high\"",
                ]);
                self.tok(&format!("{{ {body} }}"));
            } else {
                self.tok("computes");
                self.tok("count");
                let body = self.pick(&["count + 1", "if flag { 1 } else { 0 }", "42"]);
                self.tok(&format!("{{\n    {body}\n  }}"));
            }
        }
        self.tok("}");
    }

    fn valid_condition(&mut self) {
        self.depth += 1;
        let deep = self.depth > 3;
        match if deep { 0 } else { self.choice(7) } {
            0 | 1 => {
                let (f, vs): (&str, &[&'static str]) = match self.choice(6) {
                    0 => ("impact", &["high", "medium", "low"]),
                    1 => ("urgency", &["high", "medium", "low"]),
                    2 => ("priority", &["P1", "P2", "P3"]),
                    3 => ("flag", &["true", "false"]),
                    4 => ("count", &["0", "3", "-1"]),
                    _ => ("note", &["\"\"", "\"x\""]),
                };
                self.tok(f);
                let ops: &[&'static str] = match f {
                    "count" | "priority" => &["==", "!=", "<", "<=", ">", ">="],
                    _ => &["==", "!="],
                };
                let op = self.pick(ops);
                self.tok(op);
                let v = self.pick(vs);
                self.tok(v);
            }
            2 => {
                let f = self.pick(&["impact", "urgency"]);
                self.tok(f);
                self.tok("in");
                self.tok("(");
                self.list(&["high", "medium", "low"], 2);
                self.tok(")");
            }
            3 => {
                self.tok("not");
                self.valid_condition();
            }
            4 => {
                self.tok("(");
                self.valid_condition();
                self.tok(")");
            }
            _ => {
                self.valid_condition();
                let op = self.pick(&["and", "or"]);
                self.tok(op);
                self.valid_condition();
            }
        }
        self.depth -= 1;
    }

    /// A transition's `when` over the follow-ups (changes themselves): a link condition, maybe
    /// with a condition on this change's own fields.
    fn valid_link_condition(&mut self) {
        let l = self.pick(&["follows", "followed_by"]);
        match self.choice(5) {
            0 => {
                self.tok("any");
                self.tok(l);
            }
            1 => {
                for t in ["no", l, "where", "stage", "=="] {
                    self.tok(t);
                }
                let s = self.pick(&["new", "closed"]);
                self.tok(s);
            }
            2 => {
                for t in [
                    "all", l, "where", "stage", "in", "(", "new", ",", "closed", ")",
                ] {
                    self.tok(t);
                }
            }
            3 => {
                for t in ["any", l, "where", "("] {
                    self.tok(t);
                }
                self.valid_condition();
                self.tok(")");
            }
            _ => {
                for t in ["all", l, "where", "not"] {
                    self.tok(t);
                }
                self.valid_condition();
            }
        }
        if self.maybe() {
            let op = self.pick(&["and", "or"]);
            self.tok(op);
            self.valid_condition();
        }
    }

    /// A notification the coherent process can send: a role, a person and (where an approval
    /// may be open) `approvers`, each at most once, with a message whose placeholders resolve.
    fn valid_notify(&mut self, approvers: bool) {
        self.tok("notify");
        let role = self.maybe();
        let approvers = approvers && self.maybe();
        let person = !(role || approvers) || self.maybe();
        if role {
            self.tok("role");
            let r = self.pick(&["team_lead", "incident_manager", "agent"]);
            self.tok(r);
        }
        if approvers {
            if role {
                self.tok("and");
            }
            self.tok("approvers");
        }
        if person {
            if role || approvers {
                self.tok("and");
            }
            self.valid_person();
        }
        if self.maybe() {
            let m = self.pick(&[
                "\"Incident {id} is resolved\"",
                "\"{process} {id} ({priority}) in {stage}: {note}\"",
                "\"{{braces}} for {requester}, count {count}, due {due}\"",
            ]);
            self.tok(m);
        }
        if self.maybe() {
            for t in ["during", "business", "hours"] {
                self.tok(t);
            }
        }
    }

    /// A person the coherent process can name: at most three managers up from `creator`,
    /// `assignee` or one of its person fields.
    fn valid_person(&mut self) {
        for _ in 0..self.count(4) {
            self.tok("manager");
            self.tok("of");
        }
        let base = self.pick(&["creator", "assignee", "requester", "deputy"]);
        self.tok(base);
    }

    fn valid_plan(&mut self) {
        if self.choice(3) == 2 {
            self.tok("none");
            return;
        }
        for i in 0..1 + self.count(2) {
            if i > 0 {
                self.tok(",");
                self.tok("then");
            }
            // Groups of a level, each with a role of its own.
            let roles = ["team_lead", "cab", "change_manager"];
            let first = self.choice(3) as usize;
            for j in 0..1 + self.count(3) as usize {
                if j > 0 {
                    self.tok("and");
                }
                if self.choice(4) == 3 {
                    self.valid_person();
                    continue;
                }
                match self.choice(4) {
                    0 => {
                        self.tok("any");
                        self.tok("1");
                    }
                    1 => self.tok("all"),
                    2 => {
                        let pc = self.pick(&["1%", "50%", "100%"]);
                        self.tok(pc);
                    }
                    _ => self.tok("2"),
                }
                self.tok("of");
                self.tok("role");
                self.tok(roles[(first + j) % roles.len()]);
            }
        }
    }
}

fn program() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u32>(), 0..1500).prop_map(|choices| Gen::run(&choices))
}

// ---------------------------------------------------------------------------------------------
// Mutations of the sample project

#[derive(Clone, Debug)]
enum Mutation {
    Delete(Index, usize),
    Duplicate(Index, usize),
    Insert(Index, String),
    SwapLines(Index, Index),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        2 => (any::<Index>(), 1usize..80).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        3 => (any::<Index>(), vocab_token()).prop_map(|(i, t)| Mutation::Insert(i, t)),
        3 => (any::<Index>(), prop::sample::select(TRIVIA))
            .prop_map(|(i, t)| Mutation::Insert(i, t.to_string())),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// The largest char boundary at or before `i`.
fn boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &mut String, m: &Mutation) {
    let len = text.len();
    match m {
        Mutation::Delete(at, n) => {
            let start = boundary(text, at.index(len + 1));
            let end = boundary(text, start + n);
            text.replace_range(start..end, "");
        }
        Mutation::Duplicate(at, n) => {
            let start = boundary(text, at.index(len + 1));
            let end = boundary(text, start + n);
            let copy = text[start..end].to_string();
            text.insert_str(end, &copy);
        }
        Mutation::Insert(at, token) => {
            let at = boundary(text, at.index(len + 1));
            text.insert_str(at, token);
        }
        Mutation::SwapLines(a, b) => {
            let mut lines: Vec<&str> = text.split('\n').collect();
            let (a, b) = (a.index(lines.len()), b.index(lines.len()));
            lines.swap(a, b);
            *text = lines.join("\n");
        }
        Mutation::Truncate(at) => {
            let at = boundary(text, at.index(len + 1));
            text.truncate(at);
        }
    }
}

fn mutated_file() -> impl Strategy<Value = (usize, String)> {
    (0..PROCESSES.len(), prop::collection::vec(mutation(), 1..4)).prop_map(|(index, mutations)| {
        let mut text = PROCESSES[index].1.clone();
        for m in &mutations {
            apply(&mut text, m);
        }
        (index, text)
    })
}

/// The sample project's files with comments, blank lines and line breaks added: mostly still
/// valid, so this is the formatter's workout.
fn relaid_file() -> impl Strategy<Value = (usize, String)> {
    (
        0..PROCESSES.len(),
        prop::collection::vec((any::<Index>(), prop::sample::select(TRIVIA)), 1..8),
    )
        .prop_map(|(index, inserts)| {
            let mut text = PROCESSES[index].1.clone();
            for (at, trivia) in inserts {
                // At a token boundary: before the first whitespace at or after the position.
                let start = boundary(&text, at.index(text.len() + 1));
                let at = text[start..]
                    .find(char::is_whitespace)
                    .map_or(text.len(), |i| start + i);
                text.insert_str(at, trivia);
            }
            (index, text)
        })
}

/// The project without file `index`.
fn others(index: usize) -> Vec<(String, String)> {
    let mut files = PROCESSES.clone();
    files.remove(index);
    files
}

// ---------------------------------------------------------------------------------------------
// The properties

#[test]
fn sample_project_checks_and_formats() {
    let mut sources = Sources::new();
    for (name, text) in PROCESSES.iter() {
        sources.add(name.as_str(), text.as_str());
    }
    let checked = itsmflow_engine::check(&sources);
    assert!(
        !checked.has_errors(),
        "processes/ does not check:\n{}",
        render_text(&sources, &checked.diagnostics)
    );
    for (index, (_, text)) in PROCESSES.iter().enumerate() {
        exercise(text, index, &others(index)).unwrap();
    }
}

/// The shared declarations of the sample project (calendars, roles, queues), which generated
/// programs refer to.
fn shared() -> Vec<(String, String)> {
    PROCESSES
        .iter()
        .filter(|(name, _)| {
            ["calendars.itsm", "roles.itsm", "queues.itsm"]
                .iter()
                .any(|shared| name.ends_with(shared))
        })
        .cloned()
        .collect()
}

// Arbitrary text rarely gets past the parser, so it is checked alone (parsing the sample
// project in debug builds would cost most of the time); generated programs are checked with
// the shared declarations they refer to, mutated files with the rest of the sample project.

proptest! {
    #![proptest_config(config(1000))]

    /// Any unicode at all.
    #[test]
    fn arbitrary_unicode(text in any::<String>()) {
        exercise(&text, 0, &[])?;
    }

    /// Printable text with the language's punctuation mixed in.
    #[test]
    fn arbitrary_printable(text in "[a-z0-9 \n{}():,=<>!%\"/_-]{0,200}") {
        exercise(&text, 0, &[])?;
    }

    /// The language's tokens in random order.
    #[test]
    fn token_soups(text in token_soup()) {
        exercise(&text, 0, &[])?;
    }
}

proptest! {
    #![proptest_config(config(1000))]

    /// Programs that follow the grammar, some with a few mistakes.
    #[test]
    fn generated_programs(text in program()) {
        let shared = shared();
        exercise(&text, shared.len(), &shared)?;
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// The sample project's files with bytes deleted, duplicated or inserted, lines swapped or
    /// the file cut short.
    #[test]
    fn mutated_processes((index, text) in mutated_file()) {
        exercise(&text, index, &others(index))?;
    }
}

proptest! {
    #![proptest_config(config(384))]

    /// The sample project's files with comments and line breaks added between tokens.
    #[test]
    fn relaid_processes((index, text) in relaid_file()) {
        exercise(&text, index, &others(index))?;
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs random generation does not reach

/// A priority table over 64 bool fields has 2^64 cells: counting them must not overflow (nor
/// should a table over 30 fields try to allocate 2^30 cells, which this test does not try,
/// to spare the machine).
#[test]
fn priority_table_over_many_fields() {
    let fields: Vec<String> = (0..64).map(|i| format!("f{i}")).collect();
    let text = format!(
        "process p {{\n  fields {{\n{}  }}\n  priorities P1\n  priority from {} {{\n    {} => P1\n  }}\n  stage a initial\n  stage b final\n  transition t: a -> b\n}}\n",
        fields.iter().map(|f| format!("    {f}: bool\n")).collect::<String>(),
        fields.join(", "),
        vec!["true"; 64].join(", "),
    );
    exercise(&text, 0, &[]).unwrap();
}

/// Set in the child process [`deeply_nested_input`] starts: which kind of nesting to run.
const DEEP_CHILD: &str = "ITSMFLOW_NO_PANIC_DEEP_CHILD";

/// Nesting depths tried, in order: pest itself stops at "stack limit reached" somewhere in
/// there, and every depth below that must be handled without overflowing.
const DEPTHS: [usize; 10] = [50, 100, 150, 200, 300, 500, 700, 1000, 2000, 100_000];

fn deep_input(kind: &str, n: usize) -> String {
    match kind {
        "parentheses" => format!(
            "process p {{ routing {{ when {}a == b{} => q }} }}",
            "(".repeat(n),
            ")".repeat(n)
        ),
        "not" => format!(
            "process p {{ routing {{ when {}a == b => q }} }}",
            "not ".repeat(n)
        ),
        "rule-braces" => format!(
            "process p {{ rule r computes x {{{}{}}} }}",
            "{".repeat(n),
            "}".repeat(n)
        ),
        "managers" => format!(
            "process p {{ fields {{ c: person }} stage a initial stage b final transition t: a -> b by {}c approval in b {{ otherwise => {}creator on approve => a on reject => a }} }}",
            "manager of ".repeat(n),
            "manager of ".repeat(n)
        ),
        "lists" => format!(
            "process p {{ fields {{ x: {}text{} }} stage a initial stage b final transition t: a -> b }}",
            "list(".repeat(n),
            ")".repeat(n)
        ),
        _ => String::new(),
    }
}

/// Nesting of any depth, in a thread with Rust's default 2 MiB stack, must not overflow the
/// stack. A stack overflow aborts the process, so each kind of nesting runs in a child process
/// (this test binary again, running this test with [`DEEP_CHILD`] set), and an abort is
/// reported as this test's failure instead of taking the other tests down with it.
#[test]
fn deeply_nested_input() {
    if let Ok(kind) = std::env::var(DEEP_CHILD) {
        for depth in DEPTHS {
            let text = deep_input(&kind, depth);
            let outcome = std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || exercise(&text, 0, &[]))
                .expect("spawn")
                .join();
            match outcome {
                Ok(Ok(())) => eprintln!("depth {depth} ok"),
                Ok(Err(e)) => panic!("{kind} at depth {depth}: {e}"),
                Err(_) => panic!("{kind} at depth {depth}: panicked"),
            }
        }
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let mut failures = Vec::new();
    for kind in ["parentheses", "not", "rule-braces", "managers", "lists"] {
        let out = std::process::Command::new(&exe)
            .args([
                "deeply_nested_input",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DEEP_CHILD, kind)
            .env_remove("RUST_MIN_STACK")
            .output()
            .expect("run the test binary");
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let passed = stderr.lines().filter(|l| l.ends_with(" ok")).count();
            let why = stderr
                .lines()
                .find(|l| l.contains("overflow") || l.contains("panicked"))
                .unwrap_or("no message");
            failures.push(format!(
                "{kind} nested {} deep: {} ({why})",
                DEPTHS.get(passed).copied().unwrap_or(0),
                out.status
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "deeply nested input crashed:\n{}",
        failures.join("\n")
    );
}
