//! The canonical formatter: it keeps the meaning (`parse(format(x)) == parse(x)`), is
//! idempotent (`format(format(x)) == format(x)`) and keeps every comment.

use itsmflow_dsl::ast::{FileId, Item, Member};
use itsmflow_dsl::format::format;
use itsmflow_dsl::parse;

/// Parses `text`, which must be free of errors.
fn parse_ok(name: &str, text: &str) -> itsmflow_dsl::ast::File {
    let parsed = parse(FileId(0), text);
    assert!(
        parsed.diagnostics.is_empty(),
        "{name}: does not parse: {:#?}\n--- text ---\n{text}",
        parsed.diagnostics
    );
    parsed.file
}

/// The texts of the `//` comments of `text` (outside `"` strings), trimmed. Comments inside rhai
/// bodies count too: the body is printed with them.
fn comments(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    for line in text.lines() {
        let mut in_string = false;
        let mut escaped = false;
        for (i, c) in line.char_indices() {
            if in_string {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => in_string = false,
                    _ => {}
                }
            } else if c == '"' {
                in_string = true;
            } else if line[i..].starts_with("//") {
                found.push(line[i..].trim_end());
                break;
            }
        }
    }
    found
}

/// `text` with the rhai rule bodies cut out, to check the layout of the rest.
fn without_rhai(text: &str, file: &itsmflow_dsl::ast::File) -> String {
    let mut bodies: Vec<_> = file
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Process(p) => Some(&p.members),
            _ => None,
        })
        .flatten()
        .filter_map(|m| match m {
            Member::Rule(r) => Some(r.code.span.range()),
            _ => None,
        })
        .collect();
    bodies.sort_by_key(|r| std::cmp::Reverse(r.start));
    let mut out = text.to_string();
    for body in bodies {
        out.replace_range(body, "");
    }
    out
}

/// Asserts every property the formatter promises, for one input; returns the output.
fn check(name: &str, text: &str) -> String {
    let file = parse_ok(name, text);
    let formatted = format(text, &file);
    let reparsed = parse_ok(&format!("{name} (formatted)"), &formatted);
    assert_eq!(
        reparsed, file,
        "{name}: formatting changed the meaning\n--- formatted ---\n{formatted}"
    );
    let again = format(&formatted, &reparsed);
    assert_eq!(
        again, formatted,
        "{name}: formatting is not idempotent\n--- input ---\n{text}"
    );
    for comment in comments(text) {
        assert!(
            formatted.contains(comment),
            "{name}: lost comment {comment:?}\n--- formatted ---\n{formatted}"
        );
    }
    check_layout(name, &formatted, &reparsed);
    formatted
}

fn check_layout(name: &str, formatted: &str, file: &itsmflow_dsl::ast::File) {
    if file.items.is_empty() && !formatted.contains("//") {
        assert_eq!(formatted, "", "{name}: an empty file formats as nothing");
        return;
    }
    assert!(
        formatted.ends_with('\n') && !formatted.ends_with("\n\n"),
        "{name}: output must end with exactly one newline: {formatted:?}"
    );
    for line in formatted.lines() {
        assert_eq!(line, line.trim_end(), "{name}: trailing whitespace");
    }
    let layout = without_rhai(formatted, file);
    assert!(!layout.starts_with('\n'), "{name}: blank line at the start");
    assert!(
        !layout.contains("\n\n\n"),
        "{name}: two blank lines in a row"
    );
    let lines: Vec<&str> = layout.lines().collect();
    for line in &lines {
        let indent = line.len() - line.trim_start().len();
        assert!(
            indent % 2 == 0 && line.get(..indent).is_some_and(|i| !i.contains('\t')),
            "{name}: indentation is not in steps of two spaces: {line:?}"
        );
    }
    for pair in lines.windows(2) {
        assert!(
            !(pair[0].ends_with('{') && pair[1].is_empty()),
            "{name}: blank line at the start of a block\n{formatted}"
        );
        assert!(
            !(pair[0].is_empty() && pair[1].trim() == "}"),
            "{name}: blank line at the end of a block\n{formatted}"
        );
    }
}

fn process_files() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../processes");
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("processes/ is readable")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "itsm"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable .itsm file");
            (path.display().to_string(), text)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .itsm files in {dir}");
    files
}

#[test]
fn process_files_round_trip() {
    for (name, text) in process_files() {
        check(&name, &text);
    }
}

#[test]
fn process_files_round_trip_with_crlf_line_ends() {
    for (name, text) in process_files() {
        let crlf = text.replace('\n', "\r\n");
        let formatted = check(&name, &crlf);
        // A CRLF file stays CRLF: every line break is `\r\n`.
        assert_eq!(
            formatted.matches('\n').count(),
            formatted.matches("\r\n").count(),
            "{name}: a line break lost its carriage return"
        );
        assert!(formatted.contains("\r\n"), "{name}: no line breaks");
    }
}

/// Tiny deterministic xorshift generator, so the mutation test needs no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Offsets of the whitespace of `text` where a comment or line break may go: outside strings,
/// comments and rhai bodies.
fn trivia_positions(text: &str, file: &itsmflow_dsl::ast::File) -> Vec<usize> {
    let rhai: Vec<_> = file
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Process(p) => Some(&p.members),
            _ => None,
        })
        .flatten()
        .filter_map(|m| match m {
            Member::Rule(r) => Some(r.code.span.range()),
            _ => None,
        })
        .collect();
    let bytes = text.as_bytes();
    let mut positions = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if let Some(body) = rhai.iter().find(|r| r.contains(&i)) {
            i = body.end;
            continue;
        }
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b' ' | b'\n' => positions.push(i),
            _ => {}
        }
        i += 1;
    }
    positions
}

/// Drops comments and blank lines at `count` random places of `text`, one variant per seed,
/// and checks every variant.
fn check_mutations(name: &str, text: &str, seeds: u64, count: usize) {
    let file = parse_ok(name, text);
    let positions = trivia_positions(text, &file);
    if positions.is_empty() {
        return;
    }
    for seed in 1..=seeds {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut chosen: Vec<usize> = (0..count)
            .map(|_| positions[rng.below(positions.len())])
            .collect();
        chosen.sort_unstable_by(|a, b| b.cmp(a));
        chosen.dedup();
        let mut mutated = text.to_string();
        for (k, at) in chosen.into_iter().enumerate() {
            let insert = match rng.below(4) {
                0 => format!("\n// fuzz {seed}.{k}\n"),
                1 => format!(" // fuzz {seed}.{k}\n"),
                2 => "\n\n".to_string(),
                _ => format!("\n\n  // fuzz {seed}.{k}\n\n"),
            };
            mutated.insert_str(at, &insert);
        }
        check(&format!("{name} (seed {seed})"), &mutated);
    }
}

/// Comments and blank lines dropped at random places of the sample files: wherever they go,
/// formatting keeps the meaning and the comments, and is idempotent.
#[test]
fn comments_and_blank_lines_anywhere_in_process_files() {
    for (name, text) in process_files() {
        check_mutations(&name, &text, 40, 12);
    }
}

#[test]
fn comments_and_blank_lines_anywhere_in_tricky_inputs() {
    for (name, text) in TRICKY {
        check_mutations(name, text, 10, 8);
    }
}

/// Inputs that exercise the corners of the layout and the comment attachment.
const TRICKY: &[(&str, &str)] = &[
    ("empty file", ""),
    ("only blank lines", "\n\n  \n"),
    ("only comments", "// one\n\n\n// two\n   // three   \n"),
    (
        "comments everywhere",
        r#"// top
role a // after role
// before queue
queue q // after queue name
{ // after brace
  // before tier
  tier 1 // after tier
  // before close
} // after queue
process p // in header
  "P" // after label
{
  // first
  stage s // after stage
  initial
  // between

  // after blank
  fields { // fields brace
    f: text // field
    // last in fields
  } // after fields
  transition t // in transition
    : s // after from
    -> s // after to
    by role a // after roles
    or after 3d // last
} // end
// eof"#,
    ),
    (
        "nested conditions",
        r#"process p {
  routing {
    when a == 1 or (b == 2 or c == 3) => q
    when (a == 1 or b == 2) or c == 3 => q
    when a == 1 and (b == 2 and c == 3) => q
    when (a == 1 and b == 2) and c == 3 => q
    when a == 1 and (b == 2 or c == 3) => q
    when (a == 1 or b == 2) and c == 3 => q
    when not (a == 1 or b == 2) => q
    when not (a == 1 and b == 2) => q
    when not not a == 1 => q
    when not (not (a == 1)) => q
    when ((((a == 1)))) => q
    when (a == 1 and not (b in (x, y, "z, w") or c != -3)) or d >= 2026-01-01T08:00:00+01:00 => q
    when a < 1h30m and b <= 2026-12-25 and c > P1 and d in (1) => q
    otherwise => q
  }
  approval in s {
    when (a == 1 or b == 2) and c == 3 => all of role x, then any 2 of role y, then 3 of role z
    when not a == 1 => none
    otherwise => any 1 of role x
    on approve => s
    on reject => s
    on expire after 2d => s
  }
}
"#,
    ),
    (
        "approval plans",
        r#"process p {
  approval in s {
    excludes requester ,implementer // segregation of duties
    when a == 1 => any 1 of role security_officer
      and any 1 of role finance_officer, // mid-plan
      then all of role senior_management
    when b == 2 and c == 3 => 50% of role cab and 2 of role x and all of role y, then 100% of role z
    when d == 4 => 1% of role and and any 1 of role excludes
    otherwise => none
    remind after 1d // first
    remind
      after 2d4h
    on approve => s
    on reject => s
    on expire after 5d => s
  }
  approval in t {
    excludes a
    excludes b, c
    remind after 0m
  }
}
"#,
    ),
    (
        "empty blocks",
        r#"calendar c {}
calendar d "D" {

}
queue q {}
queue r "R" {   }
process p {}
process p2 "P2" for client acme extends p {
  fields {}
  priority from a {}
  targets {}
  targets on 24x7 {}
  stage s {}
  routing {}
  escalation on respond {}
  approval in s {}
  rule r computes f {}
  rule r2 when transition t {

  }
}
process p3 {
  // only a comment
}
queue q3 {
  // only a comment
}
"#,
    ),
    (
        "strings with escapes",
        r#"role a "quote \" backslash \\ newline \n tab \t done"
role b ""
role c "slashes // not a comment"
calendar cal "It's \"ours\"" {
  timezone "Europe/Amsterdam" // tz
  holidays 2026-12-25 "Xmas // not a comment", 2026-12-26
}
process p "a \\\" b" {
  fields {
    f: text default "x // y \" z"
  }
}
"#,
    ),
    (
        "rhai bodies",
        r#"process p {
  rule braces when transition a, b {
    let s = "}{ // not a DSL comment";
    let t = `template { with } braces`;
    let c = '}';
    /* a block comment with } and { */
    if s != "" {
      // a rhai comment with a } brace
      true
    } else { false }
  } // after rule
  rule tabs computes f {
		let x = 1;

			x + 1
  }
  rule one_line computes g { 40 + 2 }
  rule ws computes h {   }
  // after rules
}
"#,
    ),
    (
        "multi-line transitions",
        r#"process p {
  transition t1 "One"
    : a,
      b
    -> c
    by role x,
            y
    or after 1h30m
    requires f,
      g
  transition t2: a -> b or by role x by role y after 3d requires f or after 2w
  transition t3: a -> b
  transition t4: a -> b after 0d
}
"#,
    ),
    (
        "people",
        r#"process p {
  fields {
    caller: person required // who called
    requester: person
  }
  transition a: x -> y by caller , manager of
      manager of requester // two up
    or role agent, lead or after 3d
  transition b: x -> y by role agent or creator, assignee requires caller
  transition c: x -> y or caller by role agent or manager of caller
  transition d: x -> y by role, manager or by role role
  transition e: x -> y by role a or after or by after or by by
  transition f: x -> y after 1d or manager of manager of manager of manager of creator
  approval in y {
    excludes caller, requester
    when n == 1 => manager of requester and any 1 of role security_officer, // mid-plan
      then creator
    when n == 2 => all and any and none and role
    otherwise => requester
    on approve => y
    on reject => x
  }
}
"#,
    ),
    (
        "notifications",
        r#"process p {
  fields {
    caller: person
    approvers: person
  }
  stage resolved "Resolved" {
    stops resolve
    notify caller "Your incident {id} is resolved: {resolution} {{not a placeholder}}" // msg
    notify manager of caller and role team_lead and
      approvers
      "a // not a comment, \"quoted\" \t{tab}" during
      business hours
    notify creator
    notify manager of approvers and assignee "{x" during business hours
    notify role "" // a person field called `role`
  }
  stage s { notify role and and role and "}" }
  transition resolve: working -> resolved by role agent requires resolution notify caller "Resolved: {resolution}"
    notify role team_lead during business hours notify approvers
  transition t: a -> b notify caller or role agent notify role x or after 1d
  escalation on resolve {
    at 50% => notify caller and role team_lead "Incident {id} ({title}) is half way, {{}}" during business hours, raise priority
    at 75% => notify role team_lead during business hours
    at 100% => notify approvers and manager of manager of assignee, notify role boss, move to next tier
  }
}
"#,
    ),
    (
        "keywords as names",
        r#"role or
role by
process process {
  fields {
    required: text required default required
    default: enum(default, required)
  }
  stage initial initial
  stage final final
  stage stage "s" initial final {
    queue queue
    queue by routing
    pauses respond, resolve
    stops resolve
    starts respond
  }
  transition or: initial -> or or by role by or after 3d
  transition transition: final -> stage requires requires
}
"#,
    ),
    (
        "tables and targets",
        r#"process p {
  priorities P1, P2, P3, P10
  priority from impact, urgency {
    high => P1, P10, P2
    medium => P10, P2, P3
    low,   low => P3
    very_very_low => P3, P3, P3
  }
  targets on office {
    P1: respond 15m, resolve 4h on 24x7 // fast
    P10 : resolve 0s
  }
  escalation on resolve {
    at 50% => notify role lead
    at 100% => move to next tier, move to vendor, raise priority, perform page_someone
    at 1w2d => notify role boss
  }
}
"#,
    ),
    (
        "spawns with",
        r#"process p {
  transition t: a -> b spawns c as k with { // after brace
    x: y , // first
    // between
    n: 3,
    s: "{ // not a comment }"
  } // after
  transition u: a -> b spawns c with {x: "1"} by role r
}
"#,
    ),
    (
        "links and relations",
        r#"process incident {
  fields {
    impact: enum(high, low)
  }
  links { // the links
    caused_by : one problem // stored here
    // the reverse side
    children:many incident via parent
    parent: one incident
  }
  transition resolve: working -> resolved when all children where (stage == closed and impact == high) and no caused_by
    then perform resolve on children with { // after brace
      resolution: "parent resolved", // why
      impact: high
    } then perform close on caused_by
  transition t: a -> b by role r when any c or by caller
  transition u: a -> b when not any c where not x in (1, 2) or (all c where stage != s and any d) requires f
  transition v: a -> b when any in where x == 1 or any where
}
process empty {
  links {}
}
"#,
    ),
    (
        "calendars",
        r#"calendar office "Office" {
  timezone "UTC"
  hours mon - fri 8:00 - 12:30 , 13:00-17:00
  hours sat, sun closed
  hours wed 0:00-23:59
  holidays 2026-12-25 "Christmas", 2026-12-26, 2027-01-01 "New year"
}
"#,
    ),
    (
        "catalogue",
        r#"// services
service email // after name
  "E-mail" { // brace
  // first
  description "x" // d
  targets { // t
    P1: resolve 2h // row
    // last row
  }
  item a "A" // after label
  { process request with { f: x, g: "y" } // w
    requires f // r
  } // after item
} // end
service b { }
"#,
    ),
    (
        "process tests",
        r#"// tests
test "a \"quoted\" name" // after name
{ // brace
  at 2026-03-02T09:00Z // start
  user bob roles agent, lead manager carol // user
  create incident i as carol { // fields
    title: "x", // title
    // between
    impact: high
  } refused "required" // after refused
  create item laptop as carol
  perform resolve on i as alice with { resolution: "y" } refused
  update as alice { urgency: low } // u
  vote reject on c as sid refused "not" // v
  link i caused_by p as alice
  claim on i as alice release as alice
  wait 30m wait 4h business wait 2d business on 24x7 // w
  wait until 2026-03-03T09:00Z
  expect on p not escalated resolve 50% // e
  expect field f == none expect field g == 3 expect clock respond due 2026-03-02T10:00Z
  expect notified role lead expect notified carol "half way"
  expect approval pending level 2 expect history log, accept
  // last
} // end
"#,
    ),
    (
        "blank lines",
        "\n\n// c1\n\n\n\nrole a\n\n\n\nrole b\nrole c\n\n// c2\nprocess p {\n\n\n  stage a\n\n\n  stage b\n\n  // c3\n\n}\n\n\n",
    ),
];

#[test]
fn tricky_inputs_round_trip() {
    for (name, text) in TRICKY {
        check(name, text);
    }
}

#[test]
fn tricky_inputs_round_trip_with_crlf_line_ends() {
    for (name, text) in TRICKY {
        check(name, &text.replace('\n', "\r\n"));
    }
}

#[test]
fn messy_input_formats_exactly() {
    let input = r#"// Roles.
role   agent    "Agent"   // the desk
role lead


queue desk "Desk" { tier 1 members agent, lead   assign round_robin }
process incident "Incident" {
  fields { impact : enum( high , low ) required
  note: text default "a \"b\"" }
  priority from impact { high => P1 low => P2 }
  stage new initial stage done final { stops resolve }
  transition close: new -> done // closes
     by role agent after 3d
  routing { when not (impact == high or note == "x") and impact != low => desk otherwise => desk }
  rule check when transition close {
            note != ""
  }
}
"#;
    let expected = r#"// Roles.
role agent "Agent" // the desk
role lead

queue desk "Desk" {
  tier 1
  members agent, lead
  assign round_robin
}
process incident "Incident" {
  fields {
    impact: enum(high, low) required
    note:   text default "a \"b\""
  }
  priority from impact {
    high => P1
    low  => P2
  }
  stage new initial
  stage done final {
    stops resolve
  }
  transition close: new -> done // closes
    by role agent
    or after 3d
  routing {
    when not (impact == high or note == "x") and impact != low => desk
    otherwise => desk
  }
  rule check when transition close {
    note != ""
  }
}
"#;
    assert_eq!(check("messy", input), expected);
}

#[test]
fn approval_plans_format_exactly() {
    let input = r#"process change {
  approval in approval {
    excludes   requester,implementer
    when category == 2 => 3 of role cab and 50% of role finance ,
         then all of role senior_management   // board
    when category == 1=>any 1 of role security_officer and any 1 of role finance_officer
    otherwise=>none
    remind after 1d  remind after 2d
    on approve => scheduled on reject => rejected
    on expire after 5d => withdrawn
  }
}
"#;
    let expected = r#"process change {
  approval in approval {
    excludes requester, implementer
    when category == 2 => any 3 of role cab and 50% of role finance, then all of role senior_management // board
    when category == 1 => any 1 of role security_officer and any 1 of role finance_officer
    otherwise => none
    remind after 1d
    remind after 2d
    on approve => scheduled
    on reject => rejected
    on expire after 5d => withdrawn
  }
}
"#;
    assert_eq!(check("approval", input), expected);
}

#[test]
fn people_format_exactly() {
    let input = r#"process leave {
  fields { requester:person required  deputy : person }
  transition submit: requested -> review by requester,creator
  transition close: review -> done by requester or role agent or after 3d
  transition decide: review -> done by role agent,lead or manager  of requester
  transition cancel: review -> done or by assignee by role hr requires deputy
  approval in review {
    when cost > 0 => manager of requester and any 1 of role security_officer ,then deputy
    otherwise => manager of  manager of requester
    on approve => done
    on reject => requested
  }
}
"#;
    let expected = r#"process leave {
  fields {
    requester: person required
    deputy:    person
  }
  transition submit: requested -> review by requester, creator
  transition close: review -> done by requester or by role agent or after 3d
  transition decide: review -> done by role agent, lead or by manager of requester
  transition cancel: review -> done by assignee or by role hr requires deputy
  approval in review {
    when cost > 0 => manager of requester and any 1 of role security_officer, then deputy
    otherwise => manager of manager of requester
    on approve => done
    on reject => requested
  }
}
"#;
    assert_eq!(check("people", input), expected);
}

#[test]
fn notifications_format_exactly() {
    let input = r#"process incident {
  stage resolved { stops resolve notify caller   and  role team_lead
     "Resolved: {resolution}"   during business  hours
  notify approvers }
  transition resolve: working -> resolved by role agent notify caller "Done {{{id}}}" notify
    manager of caller requires resolution
  escalation on resolve {
    at 50% => notify caller and role team_lead "Half way, {title}" during business hours,raise priority
    at 100% => notify role incident_manager
  }
}
"#;
    let expected = r#"process incident {
  stage resolved {
    stops resolve
    notify caller and role team_lead "Resolved: {resolution}" during business hours
    notify approvers
  }
  transition resolve: working -> resolved by role agent notify caller "Done {{{id}}}" notify manager of caller requires resolution
  escalation on resolve {
    at 50% => notify caller and role team_lead "Half way, {title}" during business hours, raise priority
    at 100% => notify role incident_manager
  }
}
"#;
    assert_eq!(check("notifications", input), expected);
}

#[test]
fn spawns_with_format_exactly() {
    let input = r#"process problem {
  transition fix: known_error -> awaiting_change by role problem_manager spawns change as fixes with {
    // what the change needs
    title : title,
    change_type:normal ,  category: 1, // minor
    outage: false, effort: 90m, start: 2026-12-01T09:00, note: "a \"b\"",
  }
  transition again: x -> y spawns change with{title:title}notify role lead
  transition plain: x -> y spawns change as with
}
"#;
    // Comments inside `with { }` keep their places: the entries go a line each.
    let expected = r#"process problem {
  transition fix: known_error -> awaiting_change
    by role problem_manager
    spawns change as fixes with {
      // what the change needs
      title: title,
      change_type: normal,
      category: 1, // minor
      outage: false,
      effort: 90m,
      start: 2026-12-01T09:00,
      note: "a \"b\"",
    }
  transition again: x -> y spawns change with { title: title } notify role lead
  transition plain: x -> y spawns change as with
}
"#;
    assert_eq!(check("spawns with", input), expected);
}

#[test]
fn links_and_relations_format_exactly() {
    let input = r#"process incident {
  fields {
    impact: enum(high, low)
    resolution: text
  }
  links {
    caused_by : one problem
    children:many   incident   via parent
    parent: one incident // the major incident
  }
  transition resolve: working -> resolved when all children where ( stage == closed ) and (no caused_by)
  transition close: resolved -> closed by role agent
    when any children where (impact == high or priority <= P2)
    then perform close on children with {resolution:"closed with its parent",impact : high}
    then   perform close on caused_by
}
"#;
    let expected = r#"process incident {
  fields {
    impact:     enum(high, low)
    resolution: text
  }
  links {
    caused_by: one problem
    children:  many incident via parent
    parent:    one incident // the major incident
  }
  transition resolve: working -> resolved when all children where stage == closed and no caused_by
  transition close: resolved -> closed by role agent
    when any children where (impact == high or priority <= P2)
    then perform close on children with { resolution: "closed with its parent", impact: high }
    then perform close on caused_by
}
"#;
    assert_eq!(check("links and relations", input), expected);
}

#[test]
fn time_in_fields_formats_exactly() {
    let input = r#"calendar office {
  timezone "Europe/Amsterdam"
  hours mon-fri 08:00-17:00
  holidays 12-25 "Christmas Day",easter+1   "Easter Monday", easter-2, easter, 2026-12-24
}
process change {
  stage scheduled initial {
    every 30m   when severity==major=>notify role agent "soon",raise priority
    every 13w => perform review
  }
  transition begin: scheduled -> implementing by role agent or   at   planned_start
  transition revoke: granted -> revoked at valid_until
}
"#;
    let expected = r#"calendar office {
  timezone "Europe/Amsterdam"
  hours mon-fri 08:00-17:00
  holidays 12-25 "Christmas Day", easter+1 "Easter Monday", easter-2, easter, 2026-12-24
}
process change {
  stage scheduled initial {
    every 30m when severity == major => notify role agent "soon", raise priority
    every 13w => perform review
  }
  transition begin: scheduled -> implementing by role agent or at planned_start
  transition revoke: granted -> revoked at valid_until
}
"#;
    assert_eq!(check("time in fields", input), expected);
}

#[test]
fn services_format_exactly() {
    let input = r#"service email   "E-mail" { description "Mail and calendars"
  owner  role email_team // who answers for it
  supported on office queues service_desk,second_line
  targets { P1: respond 10m,resolve 2h on 24x7
    P10 : resolve 4h }

  item shared_mailbox "New shared mailbox" { description "A mailbox a team shares" process request
    with { item: software, notes: "shared \"mailbox\"", cost: 0, }
    requires justification,notes }
  item empty {}
}
service vpn {}
process p {
  fields { service: service required
    other: service }
}
"#;
    let expected = r#"service email "E-mail" {
  description "Mail and calendars"
  owner role email_team // who answers for it
  supported on office
  queues service_desk, second_line
  targets {
    P1:  respond 10m, resolve 2h on 24x7
    P10: resolve 4h
  }

  item shared_mailbox "New shared mailbox" {
    description "A mailbox a team shares"
    process request
    with { item: software, notes: "shared \"mailbox\"", cost: 0 }
    requires justification, notes
  }
  item empty {}
}
service vpn
process p {
  fields {
    service: service required
    other:   service
  }
}
"#;
    assert_eq!(check("services", input), expected);
}

#[test]
fn process_tests_format_exactly() {
    let input = r#"test   "P1"{at 2026-03-02T09:00Z user carol user bob manager carol   roles agent,lead
create incident i as carol{impact:high,urgency :high} refused
create incident as carol { title: "a very long title that makes the line too long", caller: carol }
perform resolve as bob with{resolution:"x"}
wait 90m business on office expect on i not linked caused_by p
expect priority none expect queue none expect holder   none expect breached respond
expect clock resolve not_started   expect clock resolve remaining 1h30m
expect escalated respond 2h
}
"#;
    let expected = r#"test "P1" {
  at 2026-03-02T09:00Z
  user carol
  user bob roles agent, lead manager carol
  create incident i as carol { impact: high, urgency: high } refused
  create incident as carol {
    title: "a very long title that makes the line too long",
    caller: carol,
  }
  perform resolve as bob with { resolution: "x" }
  wait 90m business on office
  expect on i not linked caused_by p
  expect priority none
  expect queue none
  expect holder none
  expect breached respond
  expect clock resolve not_started
  expect clock resolve remaining 1h30m
  expect escalated respond 2h
}
"#;
    assert_eq!(check("process tests", input), expected);
}

#[test]
fn category_branches_format_exactly() {
    let input = "process p {\n  fields {\n    category: enum(hardware,hardware.laptop ,software)\n  }\n  routing {\n    when category in (hardware.* ,software) => q\n  }\n}\n";
    let expected = "process p {\n  fields {\n    category: enum(hardware, hardware.laptop, software)\n  }\n  routing {\n    when category in (hardware.*, software) => q\n  }\n}\n";
    assert_eq!(check("category branches", input), expected);
}

#[test]
fn list_fields_format_exactly() {
    let input = r#"process p {
  fields {
    tags: list( text ) default [ "a","b" ,]
    kinds: list(enum(hw.laptop,sw)) default[]
    watchers : list(person)
    nested: list(list(int))
  }
  transition t: a -> b by watchers when not(watchers is empty) and kinds has hw.*
  routing {
    when tags has "urgent" or kinds has sw => q
  }
}
test "t" {
  create p as ann { tags: ["x"], watchers: [ann,"bob"] }
  update as ann { kinds: [ ] }
  expect field tags == ["x"]
  expect not field watchers has ann
}
"#;
    let expected = r#"process p {
  fields {
    tags:     list(text) default ["a", "b"]
    kinds:    list(enum(hw.laptop, sw)) default []
    watchers: list(person)
    nested:   list(list(int))
  }
  transition t: a -> b by watchers when not watchers is empty and kinds has hw.*
  routing {
    when tags has "urgent" or kinds has sw => q
  }
}
test "t" {
  create p as ann { tags: ["x"], watchers: [ann, "bob"] }
  update as ann { kinds: [] }
  expect field tags == ["x"]
  expect not field watchers has ann
}
"#;
    assert_eq!(check("list fields", input), expected);
}

#[test]
fn approval_rule_lines_are_canonical() {
    use itsmflow_dsl::format::approval_rule_line;
    let text = "process p {\n  approval in s {\n    when category == 2 => 3 of role cab,\n      then any 1 of role change_manager // x\n    otherwise => none\n    remind after 1d\n  }\n}\n";
    let file = parse_ok("rule lines", text);
    let Some(Item::Process(p)) = file.items.first() else {
        panic!("no process");
    };
    let Some(Member::Approval(a)) = p.members.first() else {
        panic!("no approval");
    };
    let lines: Vec<String> = a.entries.iter().map(approval_rule_line).collect();
    assert_eq!(
        lines,
        [
            "when category == 2 => any 3 of role cab, then any 1 of role change_manager",
            "otherwise => none",
            "remind after 1d",
        ]
    );
}

#[test]
fn comment_attachment() {
    let input = "process p { // header\n  stage a   // trailing a\n  // above b\n  stage b\n  // before close\n} // after p\n// end\n";
    let expected = "process p { // header\n  stage a // trailing a\n  // above b\n  stage b\n  // before close\n} // after p\n// end\n";
    assert_eq!(check("attachment", input), expected);
}

#[test]
fn empty_and_comment_only_files() {
    assert_eq!(check("empty", ""), "");
    assert_eq!(check("blank", " \n\n\t\n"), "");
    assert_eq!(
        check("comments", "\n\n// a\n\n\n// b\n\n"),
        "// a\n\n// b\n"
    );
}

#[test]
fn empty_rule_body_prints_as_empty_braces() {
    let input = "process p {\n  rule r computes f {\n\n  }\n}\n";
    assert_eq!(
        check("empty rule", input),
        "process p {\n  rule r computes f {}\n}\n"
    );
}

/// Spans that do not fit the text (here: a tree formatted with another file's text) must not
/// make the formatter panic.
#[test]
fn mismatched_text_does_not_panic() {
    let mut texts: Vec<String> = TRICKY.iter().map(|(_, t)| t.to_string()).collect();
    texts.extend(process_files().into_iter().map(|(_, t)| t));
    texts.push("é // ü\n\"ß".to_string());
    texts.push("{{{ // \"".to_string());
    for source in &texts {
        let file = parse(FileId(0), source).file;
        for other in &texts {
            let _ = format(other, &file);
        }
    }
}

/// Comments inside a construct stay where they were: between a transition's clauses, inside
/// `with { }`, between an enum's values and between an approval plan's levels. The construct
/// goes over several lines, each comment next to what it was next to.
#[test]
fn comments_inside_constructs_keep_their_places() {
    let input = r#"role agent
process p {
  fields {
    title: text required // the summary
    impact: enum(low, // small
      high) required
    // after impact
  }
  stage new initial
  stage working
  stage done final
  transition start: new -> working
    by role agent // who
    // only with a title
    when title != ""
  transition finish: working -> done spawns p with {
    title: title, // copied
    // the impact
    impact: high
  }
  approval in working {
    when impact == high => all of role agent, // first level
      // then
      then any 1 of role agent
    otherwise => none
    on approve => done // approved
    on reject => new
  }
}
service s {
  item i {
    process p
    with { impact: high, // preset
      title: "x" }
  }
}
"#;
    let expected = r#"role agent
process p {
  fields {
    title:  text required // the summary
    impact: enum(
      low, // small
      high,
    ) required
    // after impact
  }
  stage new initial
  stage working
  stage done final
  transition start: new -> working
    by role agent // who
    // only with a title
    when title != ""
  transition finish: working -> done
    spawns p with {
      title: title, // copied
      // the impact
      impact: high,
    }
  approval in working {
    when impact == high => all of role agent, // first level
      // then
      then any 1 of role agent
    otherwise => none
    on approve => done // approved
    on reject => new
  }
}
service s {
  item i {
    process p
    with {
      impact: high, // preset
      title: "x",
    }
  }
}
"#;
    assert_eq!(check("comments inside", input), expected);
}

/// Comments between the actions of an escalation step or a recurring step keep their places.
#[test]
fn comments_between_actions_keep_their_places() {
    let input = "process p {\n  stage s initial {\n    every 1h => notify role a, // first\n      raise priority\n  }\n  escalation on resolve {\n    at 50% => notify role a,\n    // then\n    raise priority, move to next tier\n  }\n}\n";
    let expected = "process p {\n  stage s initial {\n    every 1h => notify role a, // first\n      raise priority\n  }\n  escalation on resolve {\n    at 50% => notify role a,\n      // then\n      raise priority,\n      move to next tier\n  }\n}\n";
    assert_eq!(check("actions", input), expected);
}

/// A CRLF file formats as CRLF, a LF file as LF.
#[test]
fn line_ends_are_kept() {
    let input = "role a   // x\r\nprocess p {\r\n  stage s initial final\r\n}\r\n";
    assert_eq!(
        check("crlf", input),
        "role a // x\r\nprocess p {\r\n  stage s initial final\r\n}\r\n"
    );
    assert_eq!(
        check("lf", &input.replace("\r\n", "\n")),
        "role a // x\nprocess p {\n  stage s initial final\n}\n"
    );
}

/// A file starting with a byte-order mark parses, and formats with its mark kept.
#[test]
fn byte_order_mark_is_accepted_and_kept() {
    let input = "\u{feff}// top\nrole   a\n";
    assert_eq!(check("bom", input), "\u{feff}// top\nrole a\n");
}

/// A stage's checklist prints an item per line, the labels in one column (items without a label
/// take no part in it), comments kept; `requires checklist` is a clause like `requires FIELDS`;
/// `check`, `uncheck` and `expect checked` print in their canonical order.
#[test]
fn checklists_format_exactly() {
    let input = r#"process request {
  fields { notes: text }
  stage preparing "Preparing" initial { queue fulfilment checklist { accounts "Accounts created" laptop   "Laptop imaged"
      // the badge has no label
      badge // last
  } notify creator }
  stage delivered final
  stage other { checklist{x} }
  transition deliver: preparing -> delivered by role fulfiller requires checklist
    requires notes
  transition redo: preparing->preparing requires   checklist or after 2d
}
test "ticks" {
  user fred roles fulfiller
  create request r as fred
  check   laptop as fred check badge on r as fred refused "no"
  uncheck laptop on r as fred refused
  expect checked laptop expect on r not   checked badge
}
"#;
    let expected = r#"process request {
  fields {
    notes: text
  }
  stage preparing "Preparing" initial {
    queue fulfilment
    checklist {
      accounts "Accounts created"
      laptop   "Laptop imaged"
      // the badge has no label
      badge // last
    }
    notify creator
  }
  stage delivered final
  stage other {
    checklist {
      x
    }
  }
  transition deliver: preparing -> delivered by role fulfiller requires checklist requires notes
  transition redo: preparing -> preparing requires checklist after 2d
}
test "ticks" {
  user fred roles fulfiller
  create request r as fred
  check laptop as fred
  check badge on r as fred refused "no"
  uncheck laptop on r as fred refused
  expect checked laptop
  expect on r not checked badge
}
"#;
    assert_eq!(check("checklists", input), expected);
}

/// A comment after `checklist {` stays on its line; one after the header of a transition puts
/// each clause, `requires checklist` too, on a line of its own.
#[test]
fn checklist_comments_keep_their_places() {
    let input = "process p {\n  stage s initial {\n    checklist { // to do\n      a \"A\" b\n    }\n  }\n  stage t final\n  transition go: s -> t // go\n    requires checklist // all done\n}\n";
    let expected = "process p {\n  stage s initial {\n    checklist { // to do\n      a \"A\"\n      b\n    }\n  }\n  stage t final\n  transition go: s -> t // go\n    requires checklist // all done\n}\n";
    assert_eq!(check("checklist comments", input), expected);
}

#[test]
fn operational_level_targets_format_exactly() {
    let input = r#"tier 2 "Second line" { targets on office { P1: resolve 1h on 24x7   default:resolve 4h } }
queue network "Network team" { tier 2  escalates_to vendor
  targets { P2: resolve 2h  // agreed with the team
  P10: resolve 1d } }
test "ola" {
  expect ola remaining 1h  expect ola running
  expect not ola breached in network
  expect ola due 2026-03-02T12:30Z
}
"#;
    let expected = r#"tier 2 "Second line" {
  targets on office {
    P1:      resolve 1h on 24x7
    default: resolve 4h
  }
}
queue network "Network team" {
  tier 2
  escalates_to vendor
  targets {
    P2:  resolve 2h // agreed with the team
    P10: resolve 1d
  }
}
test "ola" {
  expect ola remaining 1h
  expect ola running
  expect not ola breached in network
  expect ola due 2026-03-02T12:30Z
}
"#;
    assert_eq!(check("ola", input), expected);
}
