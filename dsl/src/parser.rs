//! Text to [`ast::File`]. Parsing never fails: it returns a tree of everything that parsed
//! and a diagnostic for everything that did not.
//!
//! A file is first parsed whole. When that fails, it is cut into top-level items (at each
//! `calendar`, `queue`, `role`, `service` or `process` that starts a line outside braces) and each item
//! is parsed alone, so one syntax error costs one item, not the rest of the file. pest's
//! types stay in this module.

use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::Parser as _;
use pest_derive::Parser;

use crate::ast::*;
use crate::diagnostic::Diagnostic;

#[derive(Parser)]
#[grammar = "grammar.pest"]
struct Grammar;

mod process_tests;

/// The result of parsing one file.
#[derive(Debug)]
pub struct Parsed {
    pub file: File,
    pub diagnostics: Vec<Diagnostic>,
    /// Names of top-level items that failed to parse (as far as they could be read), so that
    /// references to them are not reported as unknown on top of the syntax error.
    pub broken_items: Vec<String>,
    /// Every name written in the items that failed to parse (outside strings and comments):
    /// the calendars, roles and queues such an item may use, so that they are not reported as
    /// unused on top of the syntax error.
    pub broken_words: Vec<String>,
}

impl Parsed {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parse one file's text.
pub fn parse(file: FileId, text: &str) -> Parsed {
    let mut ctx = Ctx {
        file,
        base: 0,
        text,
        diagnostics: Vec::new(),
    };
    match Grammar::parse(Rule::file, text) {
        Ok(mut pairs) => {
            let items = pairs.next().map(|p| ctx.items(p)).unwrap_or_default();
            Parsed {
                file: File { items },
                diagnostics: ctx.diagnostics,
                broken_items: Vec::new(),
                broken_words: Vec::new(),
            }
        }
        Err(_) => parse_items_one_by_one(file, text),
    }
}

fn parse_items_one_by_one(file: FileId, text: &str) -> Parsed {
    let mut items = Vec::new();
    let mut diagnostics = Vec::new();
    let mut broken_items = Vec::new();
    let mut broken_words = Vec::new();
    for (start, end) in item_chunks(text) {
        let chunk = &text[start..end];
        let mut ctx = Ctx {
            file,
            base: start,
            text: chunk,
            diagnostics: Vec::new(),
        };
        match Grammar::parse(Rule::file, chunk) {
            Ok(mut pairs) => {
                if let Some(p) = pairs.next() {
                    items.extend(ctx.items(p));
                }
                diagnostics.append(&mut ctx.diagnostics);
            }
            Err(e) => {
                diagnostics.push(syntax_error(file, text, (start, end), e));
                if let Some(name) = item_name(chunk) {
                    broken_items.push(name);
                }
                broken_words.extend(words(chunk));
            }
        }
    }
    Parsed {
        file: File { items },
        diagnostics,
        broken_items,
        broken_words,
    }
}

/// The names (identifiers) written in `text`, outside strings and `//` comments.
fn words(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push(text[start..i].to_string());
            }
            b if b.is_ascii_digit() => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

const ITEM_KEYWORDS: [&str; 7] = [
    "calendar", "queue", "tier", "role", "service", "process", "test",
];

fn starts_with_keyword(rest: &str) -> bool {
    ITEM_KEYWORDS.iter().any(|kw| {
        let Some(after) = rest.strip_prefix(kw) else {
            return false;
        };
        if after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return false;
        }
        // `service` is also a common field name, and the `service` field type: it starts an
        // item only when a name follows it (`service: service` in a field list does not).
        // `test` may be a field or a handle too: it starts an item only before its string.
        let followed_by = |first: fn(char) -> bool| {
            after.starts_with([' ', '\t'])
                && after.trim_start_matches([' ', '\t']).starts_with(first)
        };
        match *kw {
            "service" => followed_by(|c| c.is_ascii_alphabetic() || c == '_'),
            "test" => followed_by(|c| c == '"'),
            // `tier 2` in a queue is the queue's tier; an item is a tier's number and a block.
            "tier" => followed_by(|c| c.is_ascii_digit()) && tier_item_follows(after),
            _ => true,
        }
    })
}

/// After `tier`: a number, then a label or a block (`tier 2 {`, `tier 2 "Second line"`), not
/// another queue setting on the same line.
fn tier_item_follows(after: &str) -> bool {
    let rest = after.trim_start_matches([' ', '\t']);
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.trim_start_matches([' ', '\t']);
    rest.starts_with(['{', '"'])
}

/// Byte ranges of the top-level items of a file: a new item starts where a line begins with an
/// item keyword, either outside braces or in the first column (where an unclosed brace above
/// is more likely the mistake than a nested keyword).
fn item_chunks(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut starts = vec![0];
    let mut depth: i64 = 0;
    let mut i = 0;
    let mut line_start = true;
    while i < bytes.len() {
        let b = bytes[i];
        if line_start && (b == b' ' || b == b'\t') {
            i += 1;
            continue;
        }
        if line_start {
            let at_column_0 = i == 0 || bytes[i - 1] == b'\n';
            if (depth <= 0 || at_column_0) && starts_with_keyword(&text[i..]) {
                if i != 0 {
                    starts.push(i);
                }
                depth = 0;
            }
        }
        line_start = false;
        match b {
            b'\n' => line_start = true,
            b'{' => depth += 1,
            b'}' => depth -= 1,
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if bytes.get(i) == Some(&b'\n') {
                    continue;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    let mut chunks = Vec::with_capacity(starts.len());
    for (n, &s) in starts.iter().enumerate() {
        let e = starts.get(n + 1).copied().unwrap_or(text.len());
        chunks.push((s, e));
    }
    chunks
}

/// `process incident ...` -> `incident`, for a chunk that failed to parse.
fn item_name(chunk: &str) -> Option<String> {
    let mut words = chunk
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty());
    let kw = words.next()?;
    // A test's name is a string, which no reference names: nothing to keep from being
    // reported as unknown.
    if !ITEM_KEYWORDS.contains(&kw) || kw == "test" {
        return None;
    }
    words.next().map(str::to_string)
}

/// The diagnostic for a chunk `text[range]` of a file that does not parse.
///
/// pest names the grammar rules it tried where parsing stopped, but not the literal tokens
/// (punctuation), so those are found by trying them: a token is expected where inserting it
/// lets the parse get past that point. Common mistakes get a message of their own: a string
/// without its closing quote, a block without its closing brace (at the end of the file, or
/// before the next item when the file was cut into items), a misspelled keyword.
fn syntax_error(
    file: FileId,
    text: &str,
    (start, end): (usize, usize),
    error: pest::error::Error<Rule>,
) -> Diagnostic {
    let chunk = &text[start..end];
    let pos = error_pos(&error).min(chunk.len());
    let at = start + pos;
    let span_at = |from: usize, len: usize| Span::new(file, from, from + len);
    let positives = match &error.variant {
        ErrorVariant::ParsingError { positives, .. } => positives.as_slice(),
        // pest gives up on nesting deeper than the stack allows ("stack limit reached"), and
        // on a parse that takes too many steps ("call limit reached", when a limit is set).
        ErrorVariant::CustomError { message } if message.ends_with("limit reached") => {
            let len = found_len(text, at);
            return Diagnostic::error(
                "syntax",
                span_at(at, len),
                "this is nested too deeply to be read",
            )
            .with_label("reading stopped here")
            .with_help(format!(
                "nest fewer braces, or fewer parentheses and `not`s (a condition may nest {MAX_CONDITION_DEPTH} deep)"
            ));
        }
        ErrorVariant::CustomError { message } => {
            let len = found_len(text, at);
            return Diagnostic::error("syntax", span_at(at, len), message.clone())
                .with_label("here");
        }
    };

    if let Some(len) = unterminated_string(text, at) {
        return Diagnostic::error("syntax", span_at(at, len), "unterminated string")
            .with_label("this string has no closing `\"`")
            .with_help("a string ends with `\"` on the line where it starts");
    }

    let only_trivia_left = text[at..].trim().is_empty() || skip_trivia(chunk, pos) == chunk.len();
    let unclosed = only_trivia_left
        .then(|| last_unclosed_brace(chunk))
        .flatten()
        .map(|b| span_at(start + b, 1));
    if let Some(brace) = unclosed {
        if accepts(chunk, pos, "}") {
            if end == text.len() {
                let content_end = start + trim_trivia_end(chunk, 0, chunk.len());
                return Diagnostic::error(
                    "syntax",
                    span_at(content_end, 0),
                    "this file ends inside a block: `}` missing",
                )
                .with_label("the file ends here")
                .with_secondary(brace, "this `{` is never closed")
                .with_help("add `}` where the block ends");
            }
            // The file was cut into items at a keyword that starts a line: the `}` is missing
            // before it.
            return Diagnostic::error("syntax", brace, "this block is not closed: `}` missing")
                .with_label("this `{` is never closed")
                .with_secondary(
                    span_at(at, found_len(text, at)),
                    "the next item starts here",
                )
                .with_help("add `}` where the block ends");
        }
    }

    let mut names: Vec<String> = PUNCTUATION
        .iter()
        .filter(|t| accepts(chunk, pos, t))
        .map(|t| format!("`{t}`"))
        .collect();
    for r in positives {
        // A rule described as nothing is not offered (a tailoring's `add` is valid in any
        // process body, but suggesting it in a plain process would mislead).
        let described = describe_rule(*r);
        if described.is_empty() {
            continue;
        }
        for part in described.split(", ").flat_map(|p| p.split(" or ")) {
            names.push(part.to_string());
        }
    }
    names.sort_unstable();
    names.dedup();
    // After a transition's first stages, `,` would add one more, but the missing token is `->`.
    let missing_arrow = names == ["`,`", "`->`"];
    if missing_arrow {
        names.retain(|n| n == "`->`");
    }
    let found = describe_found(text, at);
    let message = if names.is_empty() {
        format!("unexpected {found}")
    } else {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        format!("expected {}, found {found}", one_of(&names))
    };
    let mut d =
        Diagnostic::error("syntax", span_at(at, found_len(text, at)), message).with_label("here");
    if let Some(brace) = unclosed.filter(|_| end == text.len()) {
        d = d.with_secondary(brace, "this `{` is not closed either");
    }
    if missing_arrow {
        d = d.with_help(
            "a transition is written `transition NAME: FROM -> TO`, with stages it leaves from separated by `,`",
        );
    } else if let Some(keyword) = misspelled_keyword(text, at, &names) {
        d = d.with_help(format!("did you mean `{keyword}`?"));
    } else if let Some(fields) = fields_after_checklist(&chunk[..pos], &text[at..]) {
        d = d.with_help(format!(
            "`requires checklist` stands alone: require fields in a clause of their own, `requires checklist requires {fields}`"
        ));
    } else if comma_after_recipients(&chunk[..pos]) {
        d = d.with_help(
            "a notification's recipients are joined by `and`: `notify caller and role team_lead`",
        );
    } else if service_targets_on(&chunk[..pos], &text[at..]) {
        d = d.with_help(
            "a service's targets run on its `supported on` calendar; a row may name another at its end: `P1: resolve 2h on 24x7`",
        );
    }
    d
}

/// Whether a syntax error is `targets on` (`before` is the text up to it, `rest` the text from
/// it): a calendar for the whole table, which a process's targets may have (so the error is in
/// a service) and a service's may not.
fn service_targets_on(before: &str, rest: &str) -> bool {
    before.split_whitespace().last() == Some("targets")
        && rest.starts_with("on")
        && !rest[2..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether a syntax error is a `,` after `requires checklist` (`before` is the text up to it,
/// `rest` the text from it): fields listed after the checklist. The fields as written (`notes`,
/// `a, b`), or `FIELD` when none can be read.
fn fields_after_checklist(before: &str, rest: &str) -> Option<String> {
    let rest = rest.strip_prefix(',')?;
    let words: Vec<&str> = before.split_whitespace().rev().take(2).collect();
    if words != ["checklist", "requires"] {
        return None;
    }
    let mut fields = Vec::new();
    let mut rest = rest;
    loop {
        let trimmed = rest.trim_start();
        let len = trimmed
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(trimmed.len());
        if len == 0 {
            break;
        }
        fields.push(&trimmed[..len]);
        match trimmed[len..].trim_start().strip_prefix(',') {
            Some(next) => rest = next,
            None => break,
        }
    }
    Some(match fields.is_empty() {
        true => "FIELD".to_string(),
        false => fields.join(", "),
    })
}

/// Whether `before` (the text up to a syntax error) ends in `notify` and its recipients, then a
/// `,`: recipients written as a list, as in `notify caller, role team_lead`.
fn comma_after_recipients(before: &str) -> bool {
    let Some(before) = before.trim_end().strip_suffix(',') else {
        return false;
    };
    let words: Vec<&str> = before.split_whitespace().collect();
    let Some(notify) = words.iter().rposition(|w| *w == "notify") else {
        return false;
    };
    const AFTER_RECIPIENTS: [&str; 12] = [
        "during", "move", "raise", "perform", "by", "or", "after", "requires", "spawns", "when",
        "then", "=>",
    ];
    let recipients = &words[notify + 1..];
    !recipients.is_empty()
        && recipients.iter().all(|w| {
            !AFTER_RECIPIENTS.contains(w)
                && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// Tokens the grammar has as literals, not rules, so pest never names them as expected.
const PUNCTUATION: [&str; 8] = [":", "{", "}", "(", ")", ",", "=>", "->"];

fn error_pos(error: &pest::error::Error<Rule>) -> usize {
    match error.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    }
}

/// Whether `token` may come at `pos` of `chunk`: with it inserted there, parsing gets past it.
fn accepts(chunk: &str, pos: usize, token: &str) -> bool {
    let mut trial = String::with_capacity(chunk.len() + token.len() + 1);
    trial.push_str(&chunk[..pos]);
    trial.push_str(token);
    trial.push(' ');
    trial.push_str(&chunk[pos..]);
    match Grammar::parse(Rule::file, &trial) {
        Ok(_) => true,
        Err(e) => error_pos(&e) > pos + token.len(),
    }
}

/// At a `"` with no closing quote on its line: the length of the rest of the line.
fn unterminated_string(text: &str, at: usize) -> Option<usize> {
    let rest = text.get(at..)?.strip_prefix('"')?;
    let line = &rest[..rest.find('\n').unwrap_or(rest.len())];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return None,
            '\\' => {
                chars.next();
            }
            _ => {}
        }
    }
    Some(1 + line.trim_end().len())
}

/// The offset after whitespace and `//` comments from `pos`.
fn skip_trivia(text: &str, mut pos: usize) -> usize {
    loop {
        let rest = &text[pos..];
        let trimmed = rest.trim_start();
        pos += rest.len() - trimmed.len();
        if trimmed.starts_with("//") {
            pos += trimmed.find('\n').unwrap_or(trimmed.len());
        } else {
            return pos;
        }
    }
}

/// The offset of the last `{` that no `}` closes, braces in strings and comments aside.
fn last_unclosed_brace(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut open = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => open.push(i),
            b'}' => {
                open.pop();
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    open.pop()
}

/// The expected keyword that the word at `at` is a likely misspelling of.
fn misspelled_keyword<'a>(text: &str, at: usize, expected: &'a [String]) -> Option<&'a str> {
    let rest = text.get(at..)?;
    if !rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return None;
    }
    let word = &rest[..found_len(text, at)];
    let lower = word.to_ascii_lowercase();
    let short = word.len() <= 3;
    let limit = (word.len() / 3).max(1);
    expected
        .iter()
        .filter_map(|n| n.strip_prefix('`')?.strip_suffix('`'))
        .filter(|k| k.chars().all(|c| c.is_ascii_alphabetic() || c == '_') && *k != word)
        .map(|k| (edit_distance(&lower, k), k))
        .filter(|&(d, k)| {
            if short {
                d == 0 || (d == 1 && k.len() == word.len() && is_swap(&lower, k))
            } else {
                d <= limit
            }
        })
        .min_by_key(|&(d, k)| (d, k))
        .map(|(_, k)| k)
}

/// Whether `a` and `b` hold the same characters, in any order.
fn is_swap(a: &str, b: &str) -> bool {
    let mut a: Vec<char> = a.chars().collect();
    let mut b: Vec<char> = b.chars().collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// Edit distance with adjacent transpositions (optimal string alignment).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

fn one_of(names: &[&str]) -> String {
    match names {
        [] => "something else".to_string(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn found_len(text: &str, pos: usize) -> usize {
    let rest = text.get(pos..).unwrap_or("");
    match rest.chars().next() {
        None => 0,
        Some(c) if c.is_ascii_alphanumeric() || c == '_' => rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len()),
        Some(c) => c.len_utf8(),
    }
}

fn describe_found(text: &str, pos: usize) -> String {
    let rest = text.get(pos..).unwrap_or("");
    match rest.chars().next() {
        None => "end of file".to_string(),
        Some('\n') | Some('\r') => "end of line".to_string(),
        Some(_) => {
            let token = &rest[..found_len(text, pos)];
            format!("`{token}`")
        }
    }
}

/// How many `list(...)`s a field type may nest before the parser stops reading it (one is
/// all the checker accepts).
const MAX_LIST_DEPTH: usize = 8;

/// The name of a grammar rule as a user should read it in "expected ...".
fn describe_rule(r: Rule) -> &'static str {
    match r {
        Rule::EOI => "end of file",
        Rule::ident | Rule::ident_list => "a name",
        Rule::symbol | Rule::symbol_list => "a value",
        Rule::string | Rule::string_raw => "a string",
        Rule::integer => "a number",
        Rule::duration => "a duration such as `4h`",
        Rule::percent => "a percentage such as `75%`",
        Rule::date | Rule::holiday | Rule::yearly_date | Rule::easter_day => {
            "a date such as `2026-12-25`, `12-25` (every year) or `easter+1`"
        }
        Rule::datetime => "a date and time",
        Rule::clock_time | Rule::time_range | Rule::time_ranges => "a time such as `08:00`",
        Rule::calendar_ref => "a calendar name or `24x7`",
        Rule::literal | Rule::literal_list | Rule::prefix | Rule::prefix_literal => "a value",
        Rule::calendar | Rule::kw_calendar => "`calendar`",
        Rule::kw_timezone | Rule::cal_timezone => "`timezone`",
        Rule::kw_hours | Rule::cal_hours => "`hours`",
        Rule::kw_closed => "`closed`",
        Rule::kw_holidays | Rule::cal_holidays => "`holidays`",
        Rule::day_spec | Rule::day_range => "a day such as `mon`",
        Rule::queue | Rule::kw_queue | Rule::stage_queue => "`queue`",
        Rule::kw_tier | Rule::queue_tier | Rule::tier => "`tier`",
        Rule::tier_number => "a tier number such as `2`",
        Rule::kw_ola | Rule::exp_ola => "`ola`",
        Rule::ola_breached_in => "`breached in QUEUE`",
        Rule::kw_escalates_to | Rule::queue_escalates => "`escalates_to`",
        Rule::kw_members | Rule::queue_members => "`members`",
        Rule::kw_assign | Rule::queue_assign => "`assign`",
        Rule::role | Rule::kw_role => "`role`",
        Rule::process | Rule::kw_process | Rule::item_process => "`process`",
        Rule::service | Rule::kw_service => "`service`",
        Rule::description | Rule::kw_description => "`description`",
        Rule::service_owner | Rule::kw_owner => "`owner`",
        Rule::service_supported | Rule::kw_supported => "`supported on`",
        Rule::service_queues | Rule::kw_queues => "`queues`",
        Rule::catalogue_item | Rule::kw_item => "`item`",
        Rule::tailoring | Rule::kw_for => "`for`",
        Rule::kw_client => "`client`",
        Rule::kw_extends => "`extends`",
        Rule::fields | Rule::kw_fields => "`fields`",
        Rule::field => "a field",
        Rule::field_type => "a field type",
        Rule::enum_type | Rule::kw_enum => "`enum`",
        Rule::list_type | Rule::kw_list => "`list`",
        // Where a list may be written, so may one value: both are "a value".
        Rule::list_literal => "a value",
        Rule::has_condition | Rule::kw_has => "`has`",
        Rule::empty_condition | Rule::kw_is => "`is empty`",
        Rule::kw_empty => "`empty`",
        Rule::kw_required => "`required`",
        Rule::kw_default | Rule::field_default => "`default`",
        Rule::priorities | Rule::kw_priorities => "`priorities`",
        Rule::priority_table | Rule::kw_priority | Rule::raise_action => "`priority`",
        Rule::priority_row => "a table row",
        Rule::kw_from => "`from`",
        Rule::targets | Rule::kw_targets | Rule::service_targets => "`targets`",
        Rule::target_row => "a priority and its targets",
        Rule::kw_on | Rule::approval_outcome => "`on`",
        Rule::clock_kind | Rule::clock_list | Rule::clock_target => "`respond` or `resolve`",
        Rule::kw_respond => "`respond`",
        Rule::kw_resolve => "`resolve`",
        Rule::stage | Rule::kw_stage => "`stage`",
        Rule::stage_kind => "`initial` or `final`",
        Rule::kw_initial => "`initial`",
        Rule::kw_final => "`final`",
        Rule::kw_by | Rule::by_roles | Rule::by_people | Rule::by_routing => "`by`",
        Rule::kw_routing | Rule::routing => "`routing`",
        Rule::kw_pauses | Rule::stage_pauses => "`pauses`",
        Rule::kw_stops | Rule::stage_stops => "`stops`",
        Rule::kw_starts | Rule::stage_starts => "`starts`",
        Rule::transition | Rule::kw_transition => "`transition`",
        Rule::kw_or => "`or`",
        Rule::kw_and => "`and`",
        Rule::kw_not => "`not`",
        Rule::kw_in => "`in`",
        Rule::kw_after | Rule::after_clause => "`after`",
        Rule::kw_requires | Rule::requires_clause | Rule::requires_checklist => "`requires`",
        Rule::kw_spawns | Rule::spawns_clause => "`spawns`",
        Rule::kw_as => "`as`",
        Rule::spawn_with | Rule::kw_with => "`with`",
        Rule::spawn_fields | Rule::service_rows => "`{`",
        Rule::spawn_entry => "a field",
        Rule::spawn_value => "`:`",
        Rule::condition | Rule::conjunction | Rule::negation | Rule::comparison => "a condition",
        Rule::link_condition => "`any`, `all` or `no`",
        Rule::links | Rule::kw_links => "`links`",
        Rule::link_decl => "a link",
        Rule::cardinality => "`one` or `many`",
        Rule::kw_one => "`one`",
        Rule::kw_many => "`many`",
        Rule::link_via | Rule::kw_via => "`via`",
        Rule::kw_no => "`no`",
        Rule::kw_where => "`where`",
        Rule::when_clause => "`when`",
        Rule::effect_clause => "`then perform`",
        Rule::membership => "`in`",
        Rule::cmp_op => "a comparison such as `==`",
        Rule::kw_when | Rule::route_when | Rule::approval_when => "`when`",
        Rule::overlay
        | Rule::overlay_put
        | Rule::overlay_name
        | Rule::calendar_overlay
        | Rule::queue_overlay => "",
        Rule::queue_named => "a setting of the queue such as `tier`",
        Rule::queue_rename | Rule::kw_rename => "`rename`",
        Rule::kw_otherwise | Rule::route_otherwise | Rule::approval_otherwise => "`otherwise`",
        Rule::escalation | Rule::kw_escalation => "`escalation`",
        Rule::escalation_step | Rule::kw_at | Rule::at_clause => "`at`",
        Rule::stage_every | Rule::kw_every => "`every`",
        Rule::stage_checklist | Rule::kw_checklist => "`checklist`",
        Rule::checklist_items => "`{`",
        Rule::checklist_item | Rule::checklist_name => "a checklist item",
        Rule::threshold => "a percentage or a duration",
        Rule::notify | Rule::kw_notify => "`notify`",
        Rule::recipient => "`role`, `approvers` or a person",
        Rule::role_recipient => "`role`",
        Rule::kw_approvers => "`approvers`",
        Rule::message => "a message",
        Rule::business_hours | Rule::kw_during => "`during business hours`",
        Rule::kw_business => "`business`",
        Rule::move_action | Rule::kw_move => "`move`",
        Rule::kw_to => "`to`",
        Rule::next_tier | Rule::kw_next => "`next tier`",
        Rule::kw_raise => "`raise`",
        Rule::perform_action | Rule::kw_perform => "`perform`",
        Rule::approval | Rule::kw_approval => "`approval`",
        Rule::approval_plan => "`none` or an approval level",
        Rule::approval_level | Rule::approval_group => {
            "`any`, `all`, a number, a percentage or a person"
        }
        Rule::quorum => "`any`, `all`, a number or a percentage",
        Rule::person_list | Rule::person_ref => "a person",
        Rule::manager_of | Rule::kw_manager => "`manager of`",
        Rule::kw_creator => "`creator`",
        Rule::kw_assignee => "`assignee`",
        Rule::approval_excludes | Rule::kw_excludes => "`excludes`",
        Rule::approval_remind | Rule::kw_remind => "`remind`",
        Rule::kw_none => "`none`",
        Rule::kw_any => "`any`",
        Rule::kw_all => "`all`",
        Rule::kw_of => "`of`",
        Rule::kw_then => "`then`",
        Rule::outcome_kind => "`approve`, `reject` or `expire`",
        Rule::kw_approve => "`approve`",
        Rule::kw_reject => "`reject`",
        Rule::kw_expire => "`expire`",
        Rule::rule | Rule::kw_rule => "`rule`",
        Rule::rule_guard => "`when transition`",
        Rule::rule_compute | Rule::kw_computes => "`computes`",
        Rule::rhai_block => "`{`",
        Rule::arrow => "`->`",
        Rule::test | Rule::kw_test => "`test`",
        Rule::test_at => "`at`",
        Rule::test_user | Rule::kw_user => "`user`",
        Rule::user_roles | Rule::kw_roles => "`roles`",
        Rule::user_manager => "`manager`",
        Rule::test_create | Rule::kw_create => "`create`",
        Rule::create_item => "`item`",
        Rule::test_handle => "a name",
        Rule::test_as => "`as`",
        Rule::test_on => "`on`",
        Rule::refused | Rule::kw_refused => "`refused`",
        Rule::test_perform => "`perform`",
        Rule::test_update | Rule::kw_update => "`update`",
        Rule::test_vote | Rule::kw_vote => "`vote`",
        Rule::vote_kind => "`approve` or `reject`",
        Rule::test_link | Rule::kw_link => "`link`",
        Rule::test_claim => "`claim` or `release`",
        Rule::kw_claim => "`claim`",
        Rule::kw_release => "`release`",
        Rule::test_wait | Rule::kw_wait => "`wait`",
        Rule::wait_until | Rule::kw_until => "`until`",
        Rule::wait_business => "`business`",
        Rule::test_expect | Rule::kw_expect => "`expect`",
        Rule::exp_stage => "`stage`",
        Rule::exp_priority => "`priority`",
        Rule::exp_queue => "`queue`",
        Rule::exp_holder | Rule::kw_holder => "`holder`",
        Rule::exp_field | Rule::kw_field => "`field`",
        Rule::field_eq => "`==`",
        Rule::field_has => "`has`",
        Rule::exp_clock | Rule::kw_clock => "`clock`",
        Rule::clock_elapsed | Rule::kw_elapsed => "`elapsed`",
        Rule::clock_remaining | Rule::kw_remaining => "`remaining`",
        Rule::clock_due | Rule::kw_due => "`due`",
        Rule::clock_state => "a clock state such as `running`",
        Rule::exp_escalated | Rule::kw_escalated => "`escalated`",
        Rule::exp_breached | Rule::kw_breached => "`breached`",
        Rule::exp_notified | Rule::kw_notified => "`notified`",
        Rule::notified_role => "`role`",
        Rule::exp_approval => "`approval`",
        Rule::approval_level_no | Rule::kw_level => "`level`",
        Rule::level_number => "a number",
        Rule::exp_linked | Rule::kw_linked => "`linked`",
        Rule::exp_history | Rule::kw_history => "`history`",
        Rule::test_check => "`check` or `uncheck`",
        Rule::kw_check => "`check`",
        Rule::kw_uncheck => "`uncheck`",
        Rule::exp_checked | Rule::kw_checked => "`checked`",
        _ => "something else",
    }
}

/// Conversion from pest pairs to the AST. Every function tolerates missing children (filling in
/// an empty name) rather than panicking: the grammar guarantees the shape, and a mismatch must
/// cost a wrong tree, never a crash.
struct Ctx<'t> {
    file: FileId,
    /// Offset of `text` in the file.
    base: usize,
    /// The text being parsed (the whole file, or one item of it).
    text: &'t str,
    diagnostics: Vec<Diagnostic>,
}

type P<'i> = Pair<'i, Rule>;

impl Ctx<'_> {
    /// The span of a node: from its first token to its last, without the whitespace and
    /// comments that pest's implicit whitespace lets a rule ending in `?` or `*` swallow.
    fn span(&self, pair: &P) -> Span {
        let s = pair.as_span();
        let end = trim_trivia_end(self.text, s.start(), s.end());
        Span::new(self.file, self.base + s.start(), self.base + end)
    }

    /// The exact span pest matched, trivia included (for verbatim rhai bodies).
    fn raw_span(&self, pair: &P) -> Span {
        let s = pair.as_span();
        Span::new(self.file, self.base + s.start(), self.base + s.end())
    }

    fn ident(&self, pair: P) -> Ident {
        Ident {
            name: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    fn missing(&self, span: Span) -> Ident {
        Ident {
            name: String::new(),
            span,
        }
    }

    fn idents(&self, pair: P) -> Vec<Ident> {
        pair.into_inner().map(|p| self.ident(p)).collect()
    }

    fn string(&self, pair: P) -> Spanned<String> {
        let span = self.span(&pair);
        let raw = pair.into_inner().next().map(|p| p.as_str()).unwrap_or("");
        Spanned::new(unescape(raw), span)
    }

    fn integer(&mut self, pair: P) -> i64 {
        let span = self.span(&pair);
        match pair.as_str().parse::<i64>() {
            Ok(n) => n,
            Err(_) => {
                self.diagnostics.push(
                    Diagnostic::error("number-too-large", span, "this number is too large")
                        .with_label("does not fit in 64 bits"),
                );
                0
            }
        }
    }

    fn duration(&mut self, pair: P) -> Spanned<Duration> {
        let span = self.span(&pair);
        match parse_duration(pair.as_str()) {
            Some(d) => Spanned::new(d, span),
            None => {
                self.diagnostics.push(
                    Diagnostic::error("number-too-large", span, "this duration is too large")
                        .with_label("too large"),
                );
                Spanned::new(Duration::default(), span)
            }
        }
    }

    fn items(&mut self, file: P) -> Vec<Item> {
        let mut items = Vec::new();
        for p in file.into_inner() {
            match p.as_rule() {
                Rule::calendar => items.push(Item::Calendar(self.calendar(p))),
                Rule::queue => items.push(Item::Queue(self.queue(p))),
                Rule::tier => items.push(Item::Tier(self.tier(p))),
                Rule::role => items.push(Item::Role(self.role(p))),
                Rule::service => items.push(Item::Service(self.service(p))),
                Rule::process => items.push(Item::Process(self.process(p))),
                Rule::test => items.push(Item::Test(self.test(p))),
                _ => {}
            }
        }
        items
    }

    // -- calendars ------------------------------------------------------------------------------

    fn calendar(&mut self, pair: P) -> Calendar {
        let span = self.span(&pair);
        let mut name = None;
        let mut label = None;
        let mut tailoring = None;
        let mut entries = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(p)),
                Rule::string => label = Some(self.string(p)),
                Rule::tailoring => tailoring = Some(self.tailoring(p)),
                Rule::calendar_overlay => {
                    let ospan = self.span(&p);
                    let mut parts = p.into_inner();
                    let verb = parts.next().map(|v| {
                        let node = match v.as_rule() {
                            Rule::kw_add => Verb::Add,
                            Rule::kw_replace => Verb::Replace,
                            _ => Verb::Remove,
                        };
                        Spanned::new(node, self.span(&v))
                    });
                    if let (Some(verb), Some(entry)) =
                        (verb, parts.next().and_then(|e| self.calendar_entry(e)))
                    {
                        entries.push(CalendarEntry::Overlay {
                            verb,
                            entry: Box::new(entry),
                            span: ospan,
                        });
                    }
                }
                _ => {
                    if let Some(entry) = self.calendar_entry(p) {
                        entries.push(entry);
                    }
                }
            }
        }
        Calendar {
            name: name.unwrap_or_else(|| self.missing(span)),
            label,
            tailoring,
            entries,
            span,
        }
    }

    /// `timezone`, `hours`, `holidays` (and, in a tailoring, `hours DAYS` alone).
    fn calendar_entry(&mut self, p: P) -> Option<CalendarEntry> {
        Some(match p.as_rule() {
            Rule::cal_timezone => {
                let s = self.span(&p);
                let tz = p
                    .into_inner()
                    .find(|q| q.as_rule() == Rule::string)
                    .map(|q| self.string(q))
                    .unwrap_or_else(|| Spanned::new(String::new(), s));
                CalendarEntry::Timezone(tz)
            }
            Rule::cal_hours | Rule::cal_days => CalendarEntry::Hours(self.hours(p)),
            Rule::cal_holidays => {
                let s = self.span(&p);
                let days = p
                    .into_inner()
                    .filter(|q| q.as_rule() == Rule::holiday)
                    .map(|q| self.holiday(q))
                    .collect();
                CalendarEntry::Holidays(days, s)
            }
            _ => return None,
        })
    }

    /// `for client acme extends incident`.
    fn tailoring(&mut self, p: P) -> Tailoring {
        let tspan = self.span(&p);
        let mut ids = p
            .into_inner()
            .filter(|q| q.as_rule() == Rule::ident)
            .map(|q| self.ident(q));
        let client = ids.next().unwrap_or_else(|| self.missing(tspan));
        let base = ids.next().unwrap_or_else(|| self.missing(tspan));
        Tailoring {
            client,
            base,
            span: tspan,
        }
    }

    fn hours(&mut self, pair: P) -> Hours {
        let span = self.span(&pair);
        let mut days = Vec::new();
        let mut times = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::day_spec => {
                    for r in p.into_inner() {
                        let rspan = self.span(&r);
                        let mut parts = r.into_inner().map(|q| self.ident(q));
                        let from = parts.next().unwrap_or_else(|| self.missing(rspan));
                        let to = parts.next();
                        days.push(DayRange {
                            from,
                            to,
                            span: rspan,
                        });
                    }
                }
                Rule::time_ranges => {
                    let ranges = p
                        .into_inner()
                        .map(|r| {
                            let rspan = self.span(&r);
                            let mut ts = r.into_inner().map(|t| self.clock_time(t));
                            let from = ts.next().unwrap_or(ClockTime {
                                hour: 0,
                                minute: 0,
                                span: rspan,
                            });
                            let to = ts.next().unwrap_or(from);
                            TimeRange {
                                from,
                                to,
                                span: rspan,
                            }
                        })
                        .collect();
                    times = Some(ranges);
                }
                _ => {}
            }
        }
        Hours { days, times, span }
    }

    fn clock_time(&self, pair: P) -> ClockTime {
        let span = self.span(&pair);
        let (h, m) = pair.as_str().split_once(':').unwrap_or(("0", "0"));
        ClockTime {
            hour: h.parse().unwrap_or(0),
            minute: m.parse().unwrap_or(0),
            span,
        }
    }

    fn holiday(&self, pair: P) -> Holiday {
        let span = self.span(&pair);
        let mut date = Spanned::new(String::new(), span);
        let mut label = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::date | Rule::yearly_date | Rule::easter_day => {
                    date = Spanned::new(p.as_str().to_string(), self.span(&p))
                }
                Rule::string => label = Some(self.string(p)),
                _ => {}
            }
        }
        Holiday { date, label, span }
    }

    // -- queues and roles -----------------------------------------------------------------------

    fn queue(&mut self, pair: P) -> Queue {
        let span = self.span(&pair);
        let mut name = None;
        let mut label = None;
        let mut tailoring = None;
        let mut attrs = Vec::new();
        for p in pair.into_inner() {
            let aspan = self.span(&p);
            let kind = match p.as_rule() {
                Rule::ident => {
                    name = Some(self.ident(p));
                    continue;
                }
                Rule::string => {
                    label = Some(self.string(p));
                    continue;
                }
                Rule::tailoring => {
                    tailoring = Some(self.tailoring(p));
                    continue;
                }
                Rule::queue_overlay => match self.queue_overlay(p, aspan) {
                    Some(o) => QueueAttrKind::Overlay(o),
                    None => continue,
                },
                Rule::queue_rename => QueueAttrKind::Rename(self.last_ident(p, aspan)),
                _ => match self.queue_setting(p) {
                    Some(kind) => kind,
                    None => continue,
                },
            };
            attrs.push(QueueAttr { kind, span: aspan });
        }
        Queue {
            name: name.unwrap_or_else(|| self.missing(span)),
            label,
            tailoring,
            attrs,
            span,
        }
    }

    /// `tier 2`, `escalates_to q`, `members a, b`, `assign x`, `targets ... { ... }`.
    fn queue_setting(&mut self, p: P) -> Option<QueueAttrKind> {
        let aspan = self.span(&p);
        Some(match p.as_rule() {
            Rule::queue_tier => {
                let n = p
                    .into_inner()
                    .find(|q| q.as_rule() == Rule::integer)
                    .map(|q| self.integer(q))
                    .unwrap_or(0);
                QueueAttrKind::Tier(n)
            }
            Rule::queue_escalates => QueueAttrKind::EscalatesTo(self.last_ident(p, aspan)),
            Rule::queue_members => QueueAttrKind::Members(self.ident_list_child(p)),
            Rule::queue_assign => QueueAttrKind::Assign(self.last_ident(p, aspan)),
            Rule::targets => QueueAttrKind::Targets(self.targets(p)),
            _ => return None,
        })
    }

    /// An entry of a queue's tailoring: `replace tier 3`, `add members lead`, `remove target
    /// P4`, `require escalates_to`.
    fn queue_overlay(&mut self, pair: P, span: Span) -> Option<QueueOverlay> {
        let mut parts = pair.into_inner();
        let verb_pair = parts.next()?;
        let verb = Spanned::new(
            match verb_pair.as_rule() {
                Rule::kw_add => Verb::Add,
                Rule::kw_replace => Verb::Replace,
                Rule::kw_remove => Verb::Remove,
                _ => Verb::Require,
            },
            self.span(&verb_pair),
        );
        let p = parts.next()?;
        let entry = match p.as_rule() {
            Rule::put_target => {
                let row = p.into_inner().find(|q| q.as_rule() == Rule::target_row)?;
                QueueEntry::Target(self.target_row(row))
            }
            Rule::put_targets_calendar => {
                match p.into_inner().find(|q| q.as_rule() == Rule::calendar_ref) {
                    Some(c) => QueueEntry::TargetsCalendar(self.ident(c)),
                    None => QueueEntry::TargetsCalendar(self.missing(span)),
                }
            }
            Rule::queue_named => {
                let mut inner = p.into_inner();
                let keyword = inner.next()?;
                QueueEntry::Named(match keyword.as_rule() {
                    Rule::kw_tier => QueueEntryRef::Tier,
                    Rule::kw_escalates_to => QueueEntryRef::EscalatesTo,
                    Rule::kw_assign => QueueEntryRef::Assign,
                    Rule::kw_targets => QueueEntryRef::Targets,
                    Rule::kw_members => {
                        QueueEntryRef::Members(inner.next().map(|l| self.idents(l))?)
                    }
                    _ => QueueEntryRef::Target(
                        inner
                            .next()
                            .map(|q| self.ident(q))
                            .unwrap_or_else(|| self.missing(span)),
                    ),
                })
            }
            _ => QueueEntry::Setting(Box::new(self.queue_setting(p)?)),
        };
        Some(QueueOverlay { verb, entry })
    }

    fn tier(&mut self, pair: P) -> Tier {
        let span = self.span(&pair);
        let mut number = None;
        let mut label = None;
        let mut targets = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::tier_number => {
                    let nspan = self.span(&p);
                    let name = Ident {
                        name: p.as_str().to_string(),
                        span: nspan,
                    };
                    number = Some((Spanned::new(self.integer(p), nspan), name));
                }
                Rule::string => label = Some(self.string(p)),
                Rule::targets => targets.push(self.targets(p)),
                _ => {}
            }
        }
        let (number, name) = number.unwrap_or_else(|| (Spanned::new(0, span), self.missing(span)));
        Tier {
            number,
            name,
            label,
            targets,
            span,
        }
    }

    fn last_ident(&self, pair: P, span: Span) -> Ident {
        pair.into_inner()
            .filter(|q| q.as_rule() == Rule::ident)
            .last()
            .map(|q| self.ident(q))
            .unwrap_or_else(|| self.missing(span))
    }

    fn ident_list_child(&self, pair: P) -> Vec<Ident> {
        pair.into_inner()
            .find(|q| q.as_rule() == Rule::ident_list)
            .map(|q| self.idents(q))
            .unwrap_or_default()
    }

    fn role(&mut self, pair: P) -> Role {
        let span = self.span(&pair);
        let mut name = None;
        let mut label = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(p)),
                Rule::string => label = Some(self.string(p)),
                _ => {}
            }
        }
        Role {
            name: name.unwrap_or_else(|| self.missing(span)),
            label,
            span,
        }
    }

    // -- the service catalogue ------------------------------------------------------------------

    fn service(&mut self, pair: P) -> Service {
        let span = self.span(&pair);
        let mut name = None;
        let mut label = None;
        let mut entries = Vec::new();
        for p in pair.into_inner() {
            let espan = self.span(&p);
            let kind = match p.as_rule() {
                Rule::ident => {
                    name = Some(self.ident(p));
                    continue;
                }
                Rule::string => {
                    label = Some(self.string(p));
                    continue;
                }
                Rule::description => ServiceEntryKind::Description(self.description(p)),
                Rule::service_owner => ServiceEntryKind::Owner(self.last_ident(p, espan)),
                Rule::service_supported => {
                    let calendar = p
                        .into_inner()
                        .find(|q| q.as_rule() == Rule::calendar_ref)
                        .map(|q| self.ident(q))
                        .unwrap_or_else(|| self.missing(espan));
                    ServiceEntryKind::SupportedOn(calendar)
                }
                Rule::service_queues => ServiceEntryKind::Queues(self.ident_list_child(p)),
                Rule::service_targets => ServiceEntryKind::Targets(
                    p.into_inner()
                        .filter(|q| q.as_rule() == Rule::service_rows)
                        .flat_map(|q| q.into_inner())
                        .filter(|q| q.as_rule() == Rule::target_row)
                        .map(|q| self.target_row(q))
                        .collect(),
                ),
                Rule::catalogue_item => ServiceEntryKind::Item(self.catalogue_item(p)),
                _ => continue,
            };
            entries.push(ServiceEntry { kind, span: espan });
        }
        Service {
            name: name.unwrap_or_else(|| self.missing(span)),
            label,
            entries,
            span,
        }
    }

    /// `description "..."`: the string.
    fn description(&self, pair: P) -> Spanned<String> {
        let span = self.span(&pair);
        pair.into_inner()
            .find(|q| q.as_rule() == Rule::string)
            .map(|q| self.string(q))
            .unwrap_or_else(|| Spanned::new(String::new(), span))
    }

    fn catalogue_item(&mut self, pair: P) -> CatalogueItem {
        let span = self.span(&pair);
        let mut name = None;
        let mut label = None;
        let mut entries = Vec::new();
        for p in pair.into_inner() {
            let espan = self.span(&p);
            let kind = match p.as_rule() {
                Rule::ident => {
                    name = Some(self.ident(p));
                    continue;
                }
                Rule::string => {
                    label = Some(self.string(p));
                    continue;
                }
                Rule::description => ItemEntryKind::Description(self.description(p)),
                Rule::item_process => ItemEntryKind::Process(self.last_ident(p, espan)),
                Rule::spawn_with => ItemEntryKind::With(self.spawn_with(p)),
                Rule::requires_clause => ItemEntryKind::Requires(self.ident_list_child(p)),
                _ => continue,
            };
            entries.push(ItemEntry { kind, span: espan });
        }
        CatalogueItem {
            name: name.unwrap_or_else(|| self.missing(span)),
            label,
            entries,
            span,
        }
    }

    // -- processes ------------------------------------------------------------------------------

    fn process(&mut self, pair: P) -> Process {
        let span = self.span(&pair);
        let mut name = None;
        let mut label = None;
        let mut tailoring = None;
        let mut members = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(p)),
                Rule::string => label = Some(self.string(p)),
                Rule::tailoring => tailoring = Some(self.tailoring(p)),
                Rule::fields => members.push(Member::Fields(self.fields(p))),
                Rule::links => members.push(Member::Links(self.links(p))),
                Rule::priorities => {
                    let s = self.span(&p);
                    members.push(Member::Priorities(Priorities {
                        levels: self.ident_list_child(p),
                        span: s,
                    }));
                }
                Rule::priority_table => members.push(Member::PriorityTable(self.priority_table(p))),
                Rule::targets => members.push(Member::Targets(self.targets(p))),
                Rule::stage => members.push(Member::Stage(self.stage(p))),
                Rule::transition => members.push(Member::Transition(self.transition(p))),
                Rule::routing => members.push(Member::Routing(self.routing(p))),
                Rule::escalation => members.push(Member::Escalation(self.escalation(p))),
                Rule::approval => members.push(Member::Approval(self.approval(p))),
                Rule::rule => members.push(Member::Rule(self.rule(p))),
                Rule::overlay => members.push(Member::Overlay(self.overlay(p))),
                _ => {}
            }
        }
        Process {
            name: name.unwrap_or_else(|| self.missing(span)),
            label,
            tailoring,
            members,
            span,
        }
    }

    fn fields(&mut self, pair: P) -> Fields {
        let span = self.span(&pair);
        let fields = pair
            .into_inner()
            .filter(|p| p.as_rule() == Rule::field)
            .map(|p| self.field(p))
            .collect();
        Fields { fields, span }
    }

    /// `links { caused_by: one problem  children: many incident via parent }`.
    fn links(&mut self, pair: P) -> Links {
        let span = self.span(&pair);
        let links = pair
            .into_inner()
            .filter(|p| p.as_rule() == Rule::link_decl)
            .map(|p| {
                let dspan = self.span(&p);
                let mut ids = Vec::new();
                let mut cardinality = Spanned::new(Cardinality::Many, dspan);
                let mut via = None;
                for q in p.into_inner() {
                    match q.as_rule() {
                        Rule::ident => ids.push(self.ident(q)),
                        Rule::cardinality => {
                            let c = if q.as_str().starts_with("one") {
                                Cardinality::One
                            } else {
                                Cardinality::Many
                            };
                            cardinality = Spanned::new(c, self.span(&q));
                        }
                        Rule::link_via => via = Some(self.last_ident(q, dspan)),
                        _ => {}
                    }
                }
                let mut ids = ids.into_iter();
                LinkDecl {
                    name: ids.next().unwrap_or_else(|| self.missing(dspan)),
                    cardinality,
                    process: ids.next().unwrap_or_else(|| self.missing(dspan)),
                    via,
                    span: dspan,
                }
            })
            .collect();
        Links { links, span }
    }

    fn field(&mut self, pair: P) -> Field {
        let span = self.span(&pair);
        let mut name = None;
        let mut ty = None;
        let mut required = None;
        let mut default = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(p)),
                Rule::field_type => ty = self.field_type(p),
                Rule::kw_required => required = Some(self.span(&p)),
                Rule::field_default => {
                    default = p
                        .into_inner()
                        .find(|q| matches!(q.as_rule(), Rule::literal | Rule::list_literal))
                        .map(|q| self.literal(q));
                }
                _ => {}
            }
        }
        Field {
            name: name.unwrap_or_else(|| self.missing(span)),
            ty: ty.unwrap_or_else(|| FieldType::Named(self.missing(span))),
            required,
            default,
            span,
        }
    }

    /// `text`, `enum(a, b)`, `list(T)`.
    fn field_type(&mut self, pair: P) -> Option<FieldType> {
        self.nested_field_type(pair, 0)
    }

    /// A field type inside `depth` `list(...)`s. Any list inside a list is refused by the
    /// checker (`nested-list`), so a type is not converted deeper than [`MAX_LIST_DEPTH`]: a
    /// syntax error there keeps every later walk of the tree (checker, formatter, drop) shallow.
    fn nested_field_type(&mut self, pair: P, depth: usize) -> Option<FieldType> {
        let tspan = self.span(&pair);
        if depth > MAX_LIST_DEPTH {
            self.diagnostics.push(
                Diagnostic::error(
                    "syntax",
                    tspan,
                    "this type nests `list` too deeply to be read",
                )
                .with_label("reading stopped here")
                .with_help("a list's elements are not lists: write `list(text)`"),
            );
            return Some(FieldType::Named(self.missing(tspan)));
        }
        let t = pair.into_inner().next()?;
        Some(match t.as_rule() {
            Rule::enum_type => FieldType::Enum(
                t.into_inner()
                    .filter(|v| v.as_rule() == Rule::symbol)
                    .map(|v| self.ident(v))
                    .collect(),
                tspan,
            ),
            Rule::list_type => {
                let element = t
                    .into_inner()
                    .find(|q| q.as_rule() == Rule::field_type)
                    .and_then(|q| self.nested_field_type(q, depth + 1))
                    .unwrap_or_else(|| FieldType::Named(self.missing(tspan)));
                FieldType::List(Box::new(element), tspan)
            }
            _ => FieldType::Named(self.ident(t)),
        })
    }

    fn literal(&mut self, pair: P) -> Literal {
        let span = self.span(&pair);
        if pair.as_rule() == Rule::list_literal {
            let elements = pair
                .into_inner()
                .filter(|q| q.as_rule() == Rule::literal)
                .map(|q| self.literal(q))
                .collect();
            return Literal {
                kind: LiteralKind::List(elements),
                span,
            };
        }
        if pair.as_rule() == Rule::prefix_literal {
            let text = pair.as_str().trim_end_matches(".*").to_string();
            return Literal {
                kind: LiteralKind::Prefix(text),
                span,
            };
        }
        let Some(inner) = pair.into_inner().next() else {
            return Literal {
                kind: LiteralKind::Symbol(String::new()),
                span,
            };
        };
        let kind = match inner.as_rule() {
            Rule::datetime => LiteralKind::DateTime(inner.as_str().to_string()),
            Rule::date => LiteralKind::Date(inner.as_str().to_string()),
            Rule::duration => LiteralKind::Duration(self.duration(inner).node),
            Rule::integer => LiteralKind::Integer(self.integer(inner)),
            Rule::string => LiteralKind::String(self.string(inner).node),
            _ => LiteralKind::Symbol(inner.as_str().to_string()),
        };
        Literal { kind, span }
    }

    fn priority_table(&mut self, pair: P) -> PriorityTable {
        let span = self.span(&pair);
        let mut fields = Vec::new();
        let mut rows = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::ident_list => fields = self.idents(p),
                Rule::priority_row => rows.push(self.priority_row(p)),
                _ => {}
            }
        }
        PriorityTable { fields, rows, span }
    }

    fn priority_row(&mut self, pair: P) -> PriorityRow {
        let span = self.span(&pair);
        let mut keys = Vec::new();
        let mut cells = Vec::new();
        for q in pair.into_inner() {
            match q.as_rule() {
                Rule::symbol_list => keys = self.idents(q),
                Rule::ident_list => cells = self.idents(q),
                _ => {}
            }
        }
        PriorityRow { keys, cells, span }
    }

    fn clock_kind(&self, pair: P) -> Spanned<ClockKind> {
        let span = self.span(&pair);
        let kind = if pair.as_str().starts_with("respond") {
            ClockKind::Respond
        } else {
            ClockKind::Resolve
        };
        Spanned::new(kind, span)
    }

    fn clock_list(&self, pair: P) -> Vec<Spanned<ClockKind>> {
        pair.into_inner()
            .filter(|q| q.as_rule() == Rule::clock_list)
            .flat_map(|q| q.into_inner())
            .map(|k| self.clock_kind(k))
            .collect()
    }

    fn targets(&mut self, pair: P) -> Targets {
        let span = self.span(&pair);
        let mut calendar = None;
        let mut rows = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::calendar_ref => calendar = Some(self.ident(p)),
                Rule::target_row => rows.push(self.target_row(p)),
                _ => {}
            }
        }
        Targets {
            calendar,
            rows,
            span,
        }
    }

    fn target_row(&mut self, pair: P) -> TargetRow {
        let span = self.span(&pair);
        let mut priority = None;
        let mut clocks = Vec::new();
        let mut calendar = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::ident => priority = Some(self.ident(p)),
                Rule::calendar_ref => calendar = Some(self.ident(p)),
                Rule::clock_target => {
                    let cspan = self.span(&p);
                    let mut clock = Spanned::new(ClockKind::Respond, cspan);
                    let mut duration = Spanned::new(Duration::default(), cspan);
                    for q in p.into_inner() {
                        match q.as_rule() {
                            Rule::clock_kind => clock = self.clock_kind(q),
                            Rule::duration => duration = self.duration(q),
                            _ => {}
                        }
                    }
                    clocks.push(ClockTarget {
                        clock,
                        duration,
                        span: cspan,
                    });
                }
                _ => {}
            }
        }
        TargetRow {
            priority: priority.unwrap_or_else(|| self.missing(span)),
            clocks,
            calendar,
            span,
        }
    }

    fn stage(&mut self, pair: P) -> Stage {
        let span = self.span(&pair);
        let mut name = None;
        let mut label = None;
        let mut kinds = Vec::new();
        let mut attrs = Vec::new();
        for p in pair.into_inner() {
            let aspan = self.span(&p);
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(p)),
                Rule::string => label = Some(self.string(p)),
                Rule::stage_kind => {
                    let kind = if p.as_str().starts_with("initial") {
                        StageKind::Initial
                    } else {
                        StageKind::Final
                    };
                    kinds.push(Spanned::new(kind, aspan));
                }
                Rule::stage_queue => {
                    let target = match p
                        .into_inner()
                        .find(|q| matches!(q.as_rule(), Rule::by_routing | Rule::ident))
                    {
                        Some(q) if q.as_rule() == Rule::ident => QueueTarget::Named(self.ident(q)),
                        _ => QueueTarget::ByRouting,
                    };
                    attrs.push(StageAttr {
                        kind: StageAttrKind::Queue(target),
                        span: aspan,
                    });
                }
                Rule::stage_pauses => attrs.push(StageAttr {
                    kind: StageAttrKind::Pauses(self.clock_list(p)),
                    span: aspan,
                }),
                Rule::stage_stops => attrs.push(StageAttr {
                    kind: StageAttrKind::Stops(self.clock_list(p)),
                    span: aspan,
                }),
                Rule::stage_starts => attrs.push(StageAttr {
                    kind: StageAttrKind::Starts(self.clock_list(p)),
                    span: aspan,
                }),
                Rule::notify => attrs.push(StageAttr {
                    kind: StageAttrKind::Notify(self.notify(p)),
                    span: aspan,
                }),
                Rule::stage_every => attrs.push(StageAttr {
                    kind: self.every(p),
                    span: aspan,
                }),
                Rule::stage_checklist => attrs.push(StageAttr {
                    kind: StageAttrKind::Checklist(self.checklist(p)),
                    span: aspan,
                }),
                _ => {}
            }
        }
        Stage {
            name: name.unwrap_or_else(|| self.missing(span)),
            label,
            kinds,
            attrs,
            span,
        }
    }

    fn transition(&mut self, pair: P) -> Transition {
        let span = self.span(&pair);
        let mut name = None;
        let mut label = None;
        let mut from = Vec::new();
        let mut to = None;
        let mut clauses = Vec::new();
        for p in pair.into_inner() {
            let cspan = self.span(&p);
            match p.as_rule() {
                Rule::ident if name.is_none() => name = Some(self.ident(p)),
                Rule::ident => to = Some(self.ident(p)),
                Rule::string => label = Some(self.string(p)),
                Rule::ident_list => from = self.idents(p),
                Rule::by_roles => clauses.push(TransitionClause {
                    kind: TransitionClauseKind::ByRoles(self.ident_list_child(p)),
                    span: cspan,
                }),
                Rule::by_people => {
                    let people = p
                        .into_inner()
                        .filter(|q| q.as_rule() == Rule::person_list)
                        .flat_map(|q| q.into_inner())
                        .filter(|q| q.as_rule() == Rule::person_ref)
                        .map(|q| self.person_ref(q))
                        .collect();
                    clauses.push(TransitionClause {
                        kind: TransitionClauseKind::ByPeople(people),
                        span: cspan,
                    });
                }
                Rule::after_clause => {
                    let d = p
                        .into_inner()
                        .find(|q| q.as_rule() == Rule::duration)
                        .map(|q| self.duration(q).node)
                        .unwrap_or_default();
                    clauses.push(TransitionClause {
                        kind: TransitionClauseKind::After(d),
                        span: cspan,
                    });
                }
                Rule::at_clause => {
                    let field = self.last_ident(p, cspan);
                    clauses.push(TransitionClause {
                        kind: TransitionClauseKind::At(field),
                        span: cspan,
                    });
                }
                Rule::requires_clause => clauses.push(TransitionClause {
                    kind: TransitionClauseKind::Requires(self.ident_list_child(p)),
                    span: cspan,
                }),
                Rule::requires_checklist => clauses.push(TransitionClause {
                    kind: TransitionClauseKind::RequiresChecklist,
                    span: cspan,
                }),
                Rule::spawns_clause => {
                    let (ids, with) = self.names_and_with(p);
                    let mut ids = ids.into_iter();
                    let process = ids.next().unwrap_or_else(|| self.missing(cspan));
                    let link = ids.next();
                    clauses.push(TransitionClause {
                        kind: TransitionClauseKind::Spawns {
                            process,
                            link,
                            with,
                        },
                        span: cspan,
                    });
                }
                Rule::notify => clauses.push(TransitionClause {
                    kind: TransitionClauseKind::Notify(self.notify(p)),
                    span: cspan,
                }),
                Rule::when_clause => {
                    let condition = match p.into_inner().find(|q| q.as_rule() == Rule::condition) {
                        Some(c) => self.top_condition(c),
                        None => Condition::And(Vec::new(), cspan),
                    };
                    clauses.push(TransitionClause {
                        kind: TransitionClauseKind::When(condition),
                        span: cspan,
                    });
                }
                Rule::effect_clause => {
                    let (ids, with) = self.names_and_with(p);
                    let mut ids = ids.into_iter();
                    let action = ids.next().unwrap_or_else(|| self.missing(cspan));
                    let link = ids.next().unwrap_or_else(|| self.missing(cspan));
                    clauses.push(TransitionClause {
                        kind: TransitionClauseKind::Perform { action, link, with },
                        span: cspan,
                    });
                }
                _ => {}
            }
        }
        Transition {
            name: name.unwrap_or_else(|| self.missing(span)),
            label,
            from,
            to: to.unwrap_or_else(|| self.missing(span)),
            clauses,
            span,
        }
    }

    /// The names of a `spawns` or `then perform` clause, in order, and its `with` entries.
    fn names_and_with(&mut self, pair: P) -> (Vec<Ident>, Vec<SpawnEntry>) {
        let mut ids = Vec::new();
        let mut with = Vec::new();
        for q in pair.into_inner() {
            match q.as_rule() {
                Rule::ident => ids.push(self.ident(q)),
                Rule::spawn_with => with = self.spawn_with(q),
                _ => {}
            }
        }
        (ids, with)
    }

    /// `with { title: title, change_type: normal }`: the entries, in order.
    fn spawn_with(&mut self, pair: P) -> Vec<SpawnEntry> {
        match pair
            .into_inner()
            .find(|q| q.as_rule() == Rule::spawn_fields)
        {
            Some(fields) => self.spawn_fields(fields),
            None => Vec::new(),
        }
    }

    /// `{ title: title, change_type: normal }`: the entries, in order.
    fn spawn_fields(&mut self, pair: P) -> Vec<SpawnEntry> {
        pair.into_inner()
            .filter(|q| q.as_rule() == Rule::spawn_entry)
            .map(|q| {
                let span = self.span(&q);
                let mut field = None;
                let mut value = None;
                for r in q.into_inner() {
                    match r.as_rule() {
                        Rule::ident => field = Some(self.ident(r)),
                        Rule::spawn_value => {
                            value = r
                                .into_inner()
                                .find(|l| matches!(l.as_rule(), Rule::literal | Rule::list_literal))
                                .map(|l| self.literal(l));
                        }
                        _ => {}
                    }
                }
                SpawnEntry {
                    field: field.unwrap_or_else(|| self.missing(span)),
                    value: value.unwrap_or(Literal {
                        kind: LiteralKind::Symbol(String::new()),
                        span,
                    }),
                    span,
                }
            })
            .collect()
    }

    /// `manager of manager of caller`, `creator`, `assignee`, `requester`.
    fn person_ref(&self, pair: P) -> PersonRef {
        let span = self.span(&pair);
        let mut managers = Vec::new();
        let mut base = None;
        for q in pair.into_inner() {
            let qspan = self.span(&q);
            match q.as_rule() {
                Rule::manager_of => managers.push(qspan),
                Rule::kw_creator => base = Some(PersonBase::Creator(qspan)),
                Rule::kw_assignee => base = Some(PersonBase::Assignee(qspan)),
                Rule::ident => base = Some(PersonBase::Field(self.ident(q))),
                _ => {}
            }
        }
        PersonRef {
            managers,
            base: base.unwrap_or_else(|| PersonBase::Field(self.missing(span))),
            span,
        }
    }

    /// `notify caller and role team_lead "message" during business hours`.
    fn notify(&self, pair: P) -> Notify {
        let span = self.span(&pair);
        let mut to = Vec::new();
        let mut message = None;
        let mut business_hours = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::recipient => {
                    let rspan = self.span(&p);
                    let Some(inner) = p.into_inner().next() else {
                        continue;
                    };
                    to.push(match inner.as_rule() {
                        Rule::kw_approvers => Recipient::Approvers(rspan),
                        Rule::role_recipient => Recipient::Role {
                            role: self.last_ident(inner, rspan),
                            span: rspan,
                        },
                        _ => Recipient::Person(self.person_ref(inner)),
                    });
                }
                Rule::message => {
                    if let Some(string) = p.into_inner().find(|q| q.as_rule() == Rule::string) {
                        message = Some(self.message(string));
                    }
                }
                Rule::business_hours => business_hours = Some(self.span(&p)),
                _ => {}
            }
        }
        Notify {
            to,
            message,
            business_hours,
            span,
        }
    }

    /// A message template: its text, and its pieces with spans inside the string literal.
    fn message(&self, string: P) -> Message {
        let span = self.span(&string);
        let (raw, raw_start) = match string.clone().into_inner().next() {
            Some(r) => (r.as_str(), self.base + r.as_span().start()),
            None => ("", span.start as usize + 1),
        };
        Message {
            text: unescape(raw),
            pieces: message_pieces(self.file, raw, raw_start),
            span,
        }
    }

    /// A whole condition (after `when`). Its nesting is measured first, walking pest's flat
    /// token list rather than recursing: one nested too deeply is reported and kept as
    /// [`Condition::TooDeep`] instead of being converted, since the conversion, the checker and
    /// the formatter all recurse on the nesting.
    fn top_condition(&mut self, pair: P) -> Condition {
        let Some(local) = too_deep_at(&pair) else {
            return self.condition(pair);
        };
        let span = self.span(&pair);
        let at = self.base + local;
        let len = if self.text.get(local..).is_some_and(|t| t.starts_with('(')) {
            1
        } else {
            found_len(self.text, local)
        };
        self.diagnostics.push(
            Diagnostic::error(
                "condition-too-deep",
                Span::new(self.file, at, at + len),
                format!(
                    "this condition nests parentheses and `not` more than {MAX_CONDITION_DEPTH} deep"
                ),
            )
            .with_label(format!("level {} starts here", MAX_CONDITION_DEPTH + 1))
            .with_help(
                "drop redundant parentheses and double `not`s, or split the condition over several rules",
            ),
        );
        Condition::TooDeep(condition_tokens(pair.as_str()), span)
    }

    fn condition(&mut self, pair: P) -> Condition {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::condition | Rule::conjunction => {
                let is_or = pair.as_rule() == Rule::condition;
                let mut parts: Vec<Condition> = pair
                    .into_inner()
                    .filter(|q| !matches!(q.as_rule(), Rule::kw_or | Rule::kw_and))
                    .map(|q| self.condition(q))
                    .collect();
                if parts.len() == 1 {
                    parts.pop().unwrap_or(Condition::And(Vec::new(), span))
                } else if is_or {
                    Condition::Or(parts, span)
                } else {
                    Condition::And(parts, span)
                }
            }
            Rule::negation => {
                let mut negate = false;
                let mut inner = None;
                for q in pair.into_inner() {
                    match q.as_rule() {
                        Rule::kw_not => negate = true,
                        _ => inner = Some(self.condition(q)),
                    }
                }
                let inner = inner.unwrap_or(Condition::And(Vec::new(), span));
                if negate {
                    Condition::Not(Box::new(inner), span)
                } else {
                    inner
                }
            }
            Rule::comparison => {
                let mut subject = None;
                let mut op = Spanned::new(CmpOp::Eq, span);
                let mut value = None;
                for q in pair.into_inner() {
                    match q.as_rule() {
                        Rule::ident => subject = Some(self.ident(q)),
                        Rule::cmp_op => {
                            let o = match q.as_str() {
                                "!=" => CmpOp::Ne,
                                "<" => CmpOp::Lt,
                                "<=" => CmpOp::Le,
                                ">" => CmpOp::Gt,
                                ">=" => CmpOp::Ge,
                                _ => CmpOp::Eq,
                            };
                            op = Spanned::new(o, self.span(&q));
                        }
                        Rule::literal => value = Some(self.literal(q)),
                        _ => {}
                    }
                }
                Condition::Compare {
                    subject: subject.unwrap_or_else(|| self.missing(span)),
                    op,
                    value: value.unwrap_or(Literal {
                        kind: LiteralKind::Symbol(String::new()),
                        span,
                    }),
                    span,
                }
            }
            Rule::membership => {
                let mut subject = None;
                let mut values = Vec::new();
                for q in pair.into_inner() {
                    match q.as_rule() {
                        Rule::ident => subject = Some(self.ident(q)),
                        Rule::literal_list => {
                            values = q.into_inner().map(|l| self.literal(l)).collect()
                        }
                        _ => {}
                    }
                }
                Condition::In {
                    subject: subject.unwrap_or_else(|| self.missing(span)),
                    values,
                    span,
                }
            }
            Rule::has_condition => {
                let mut subject = None;
                let mut value = None;
                for q in pair.into_inner() {
                    match q.as_rule() {
                        Rule::ident => subject = Some(self.ident(q)),
                        Rule::literal | Rule::prefix_literal => value = Some(self.literal(q)),
                        _ => {}
                    }
                }
                Condition::Has {
                    subject: subject.unwrap_or_else(|| self.missing(span)),
                    value: value.unwrap_or(Literal {
                        kind: LiteralKind::Symbol(String::new()),
                        span,
                    }),
                    span,
                }
            }
            Rule::empty_condition => {
                let subject = pair
                    .into_inner()
                    .find(|q| q.as_rule() == Rule::ident)
                    .map(|q| self.ident(q));
                Condition::Empty {
                    subject: subject.unwrap_or_else(|| self.missing(span)),
                    span,
                }
            }
            Rule::link_condition => {
                let mut quantifier = Spanned::new(Quantifier::Any, span);
                let mut link = None;
                let mut test = None;
                for q in pair.into_inner() {
                    let qspan = self.span(&q);
                    match q.as_rule() {
                        Rule::kw_any => quantifier = Spanned::new(Quantifier::Any, qspan),
                        Rule::kw_all => quantifier = Spanned::new(Quantifier::All, qspan),
                        Rule::kw_no => quantifier = Spanned::new(Quantifier::No, qspan),
                        Rule::ident => link = Some(self.ident(q)),
                        Rule::negation => test = Some(Box::new(self.condition(q))),
                        _ => {}
                    }
                }
                Condition::Linked {
                    quantifier,
                    link: link.unwrap_or_else(|| self.missing(span)),
                    test,
                    span,
                }
            }
            _ => Condition::And(Vec::new(), span),
        }
    }

    fn routing(&mut self, pair: P) -> Routing {
        let span = self.span(&pair);
        let mut rules = Vec::new();
        for p in pair.into_inner() {
            let rspan = self.span(&p);
            if !matches!(p.as_rule(), Rule::route_when | Rule::route_otherwise) {
                continue;
            }
            let rule = self.route_rule(p, rspan);
            rules.push(rule);
        }
        Routing { rules, span }
    }

    /// `vip: when COND => queue`, `when COND => queue` or `otherwise => queue`: with two
    /// names, the first names the route.
    fn route_rule(&mut self, pair: P, span: Span) -> RouteRule {
        let mut condition = None;
        let mut idents = Vec::new();
        for q in pair.into_inner() {
            match q.as_rule() {
                Rule::condition => condition = Some(self.top_condition(q)),
                Rule::ident => idents.push(self.ident(q)),
                _ => {}
            }
        }
        let queue = idents.pop().unwrap_or_else(|| self.missing(span));
        RouteRule {
            name: idents.pop(),
            condition,
            queue,
            span,
        }
    }

    /// An entry of a tailoring (`add ...`, `replace ...`, `remove ...`, `require ...`).
    fn overlay(&mut self, pair: P) -> Overlay {
        let span = self.span(&pair);
        let Some(inner) = pair.into_inner().next() else {
            return self.overlay_stand_in(span);
        };
        let mut parts = inner.into_inner();
        let Some(verb_pair) = parts.next() else {
            return self.overlay_stand_in(span);
        };
        let verb = Spanned::new(
            match verb_pair.as_rule() {
                Rule::kw_add => Verb::Add,
                Rule::kw_replace => Verb::Replace,
                Rule::kw_remove => Verb::Remove,
                _ => Verb::Require,
            },
            self.span(&verb_pair),
        );
        let entry = match parts.next() {
            Some(p) => self.overlay_entry(p, span),
            None => OverlayEntry::Named(EntryRef::Stage(self.missing(span))),
        };
        Overlay { verb, entry, span }
    }

    /// What an overlay that failed to parse stands for (the syntax error is reported).
    fn overlay_stand_in(&self, span: Span) -> Overlay {
        Overlay {
            verb: Spanned::new(Verb::Require, span),
            entry: OverlayEntry::Named(EntryRef::Stage(self.missing(span))),
            span,
        }
    }

    fn overlay_entry(&mut self, p: P, span: Span) -> OverlayEntry {
        let espan = self.span(&p);
        match p.as_rule() {
            Rule::put_field => match p.into_inner().find(|q| q.as_rule() == Rule::field) {
                Some(f) => OverlayEntry::Field(self.field(f)),
                None => OverlayEntry::Named(EntryRef::Field(self.missing(espan))),
            },
            Rule::stage => OverlayEntry::Stage(self.stage(p)),
            Rule::transition => OverlayEntry::Transition(self.transition(p)),
            Rule::put_target => match p.into_inner().find(|q| q.as_rule() == Rule::target_row) {
                Some(r) => OverlayEntry::Target(self.target_row(r)),
                None => OverlayEntry::Named(EntryRef::Target(self.missing(espan))),
            },
            Rule::put_targets_calendar => {
                match p.into_inner().find(|q| q.as_rule() == Rule::calendar_ref) {
                    Some(c) => OverlayEntry::TargetsCalendar(self.ident(c)),
                    None => OverlayEntry::TargetsCalendar(self.missing(espan)),
                }
            }
            Rule::priority_table => OverlayEntry::PriorityTable(self.priority_table(p)),
            Rule::put_priority => {
                match p.into_inner().find(|q| q.as_rule() == Rule::priority_row) {
                    Some(r) => OverlayEntry::PriorityRow(self.priority_row(r)),
                    None => OverlayEntry::Named(EntryRef::Priority(Vec::new(), espan)),
                }
            }
            Rule::priorities => OverlayEntry::Priorities(Priorities {
                levels: self.ident_list_child(p),
                span: espan,
            }),
            Rule::put_route => {
                let mut rule = None;
                let mut place = None;
                for q in p.into_inner() {
                    let qspan = self.span(&q);
                    match q.as_rule() {
                        Rule::named_route => rule = Some(self.route_rule(q, qspan)),
                        Rule::route_place => {
                            let before = q.as_str().starts_with("before");
                            place = Some(RoutePlace {
                                before,
                                anchor: self.last_ident(q, qspan),
                                span: qspan,
                            });
                        }
                        _ => {}
                    }
                }
                let rule = rule.unwrap_or_else(|| RouteRule {
                    name: None,
                    condition: None,
                    queue: self.missing(espan),
                    span: espan,
                });
                OverlayEntry::Route { rule, place }
            }
            Rule::put_escalation => {
                let mut clock = Spanned::new(ClockKind::Resolve, espan);
                let mut step = None;
                for q in p.into_inner() {
                    match q.as_rule() {
                        Rule::clock_kind => clock = self.clock_kind(q),
                        Rule::escalation_step => step = Some(self.escalation_step(q)),
                        _ => {}
                    }
                }
                match step {
                    Some(step) => OverlayEntry::Escalation { clock, step },
                    None => OverlayEntry::Named(EntryRef::Stage(self.missing(espan))),
                }
            }
            Rule::rule => OverlayEntry::Rule(self.rule(p)),
            Rule::approval => OverlayEntry::Approval(self.approval(p)),
            Rule::put_approval => {
                let mut stage = None;
                let mut entry = None;
                let mut place = None;
                for q in p.into_inner() {
                    let qspan = self.span(&q);
                    match q.as_rule() {
                        Rule::ident => stage = Some(self.ident(q)),
                        Rule::route_place => {
                            place = Some(RoutePlace {
                                before: q.as_str().starts_with("before"),
                                anchor: self.last_ident(q, qspan),
                                span: qspan,
                            })
                        }
                        _ => entry = entry.or(self.approval_entry(q)),
                    }
                }
                match entry {
                    Some(entry) => OverlayEntry::ApprovalEntry {
                        stage: stage.unwrap_or_else(|| self.missing(espan)),
                        entry,
                        place,
                    },
                    None => OverlayEntry::Named(EntryRef::Approval(self.missing(espan))),
                }
            }
            Rule::name_approval => {
                let mut stage = None;
                let mut key = None;
                for q in p.into_inner() {
                    match q.as_rule() {
                        Rule::ident => stage = Some(self.ident(q)),
                        Rule::approval_key => {
                            let mut parts = q.into_inner();
                            key = parts.next().map(|k| match k.as_rule() {
                                Rule::kw_otherwise => ApprovalKey::Rule(None),
                                Rule::kw_on => ApprovalKey::Outcome(
                                    parts
                                        .next()
                                        .map_or(OutcomeKind::Reject, |o| outcome_kind(o.as_str())),
                                ),
                                Rule::kw_excludes => ApprovalKey::Excludes,
                                Rule::kw_remind => ApprovalKey::Remind,
                                _ => ApprovalKey::Rule(Some(k.as_str().to_string())),
                            });
                        }
                        _ => {}
                    }
                }
                let stage = stage.unwrap_or_else(|| self.missing(espan));
                match key {
                    Some(key) => OverlayEntry::Named(EntryRef::ApprovalEntry {
                        stage,
                        key,
                        span: espan,
                    }),
                    None => OverlayEntry::Named(EntryRef::Approval(stage)),
                }
            }
            Rule::name_field => OverlayEntry::Named(EntryRef::Field(self.last_ident(p, espan))),
            Rule::name_stage => OverlayEntry::Named(EntryRef::Stage(self.last_ident(p, espan))),
            Rule::name_transition => {
                OverlayEntry::Named(EntryRef::Transition(self.last_ident(p, espan)))
            }
            Rule::name_target => OverlayEntry::Named(EntryRef::Target(self.last_ident(p, espan))),
            Rule::name_rule => OverlayEntry::Named(EntryRef::Rule(self.last_ident(p, espan))),
            Rule::name_priority => {
                let keys = p
                    .into_inner()
                    .find(|q| q.as_rule() == Rule::symbol_list)
                    .map(|q| self.idents(q))
                    .unwrap_or_default();
                OverlayEntry::Named(EntryRef::Priority(keys, espan))
            }
            Rule::name_route => {
                let name = p
                    .into_inner()
                    .find(|q| q.as_rule() == Rule::ident)
                    .map(|q| self.ident(q));
                OverlayEntry::Named(EntryRef::Route(name, espan))
            }
            Rule::name_escalation => {
                let mut clock = Spanned::new(ClockKind::Resolve, espan);
                let mut threshold = Spanned::new(Threshold::Percent(0), espan);
                for q in p.into_inner() {
                    match q.as_rule() {
                        Rule::clock_kind => clock = self.clock_kind(q),
                        Rule::threshold => {
                            if let Some(t) = self.threshold(q) {
                                threshold = t;
                            }
                        }
                        _ => {}
                    }
                }
                OverlayEntry::Named(EntryRef::Escalation { clock, threshold })
            }
            _ => OverlayEntry::Named(EntryRef::Stage(self.missing(span))),
        }
    }

    fn escalation(&mut self, pair: P) -> Escalation {
        let span = self.span(&pair);
        let mut clock = Spanned::new(ClockKind::Resolve, span);
        let mut steps = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::clock_kind => clock = self.clock_kind(p),
                Rule::escalation_step => steps.push(self.escalation_step(p)),
                _ => {}
            }
        }
        Escalation { clock, steps, span }
    }

    fn escalation_step(&mut self, pair: P) -> EscalationStep {
        let span = self.span(&pair);
        let mut threshold = Spanned::new(Threshold::Percent(0), span);
        let mut actions = Vec::new();
        for p in pair.into_inner() {
            let action = match p.as_rule() {
                Rule::threshold => {
                    if let Some(t) = self.threshold(p) {
                        threshold = t;
                    }
                    continue;
                }
                _ => match self.escalation_action(p) {
                    Some(action) => action,
                    None => continue,
                },
            };
            actions.push(action);
        }
        EscalationStep {
            threshold,
            actions,
            span,
        }
    }

    /// `75%` or `2h`, in an escalation step or a test's `expect escalated`.
    fn threshold(&mut self, pair: P) -> Option<Spanned<Threshold>> {
        let t = pair.into_inner().next()?;
        let tspan = self.span(&t);
        let value = match t.as_rule() {
            Rule::percent => {
                let digits = t.as_str().trim_end_matches('%');
                match digits.parse::<u32>() {
                    Ok(n) => Threshold::Percent(n),
                    Err(_) => {
                        self.diagnostics.push(
                            Diagnostic::error(
                                "number-too-large",
                                tspan,
                                "this percentage is too large",
                            )
                            .with_label("too large"),
                        );
                        Threshold::Percent(0)
                    }
                }
            }
            _ => Threshold::After(self.duration(t).node),
        };
        Some(Spanned::new(value, tspan))
    }

    /// One action of an escalation step or a recurring step; `None` for anything else.
    fn escalation_action(&mut self, p: P) -> Option<EscalationAction> {
        let aspan = self.span(&p);
        let kind = match p.as_rule() {
            Rule::notify => EscalationActionKind::Notify(self.notify(p)),
            Rule::move_action => {
                match p
                    .into_inner()
                    .find(|q| matches!(q.as_rule(), Rule::next_tier | Rule::ident))
                {
                    Some(q) if q.as_rule() == Rule::ident => {
                        EscalationActionKind::MoveToQueue(self.ident(q))
                    }
                    _ => EscalationActionKind::MoveToNextTier,
                }
            }
            Rule::raise_action => EscalationActionKind::RaisePriority,
            Rule::perform_action => EscalationActionKind::Perform(self.last_ident(p, aspan)),
            _ => return None,
        };
        Some(EscalationAction { kind, span: aspan })
    }

    /// `checklist { accounts "Accounts created"  badge }`: the items, in order.
    fn checklist(&mut self, pair: P) -> Vec<ChecklistItem> {
        pair.into_inner()
            .filter(|q| q.as_rule() == Rule::checklist_items)
            .flat_map(|q| q.into_inner())
            .filter(|q| q.as_rule() == Rule::checklist_item)
            .map(|q| {
                let span = self.span(&q);
                let mut name = None;
                let mut label = None;
                for r in q.into_inner() {
                    match r.as_rule() {
                        Rule::checklist_name => name = Some(self.ident(r)),
                        Rule::string => label = Some(self.string(r)),
                        _ => {}
                    }
                }
                ChecklistItem {
                    name: name.unwrap_or_else(|| self.missing(span)),
                    label,
                    span,
                }
            })
            .collect()
    }

    /// `every 30m when ... => actions`.
    fn every(&mut self, pair: P) -> StageAttrKind {
        let span = self.span(&pair);
        let mut period = Spanned::new(Duration::default(), span);
        let mut condition = None;
        let mut actions = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::duration => period = self.duration(p),
                Rule::condition => condition = Some(self.top_condition(p)),
                _ => actions.extend(self.escalation_action(p)),
            }
        }
        StageAttrKind::Every {
            period,
            condition,
            actions,
        }
    }

    fn approval(&mut self, pair: P) -> Approval {
        let span = self.span(&pair);
        let mut stage = None;
        let mut entries = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::ident => stage = Some(self.ident(p)),
                _ => entries.extend(self.approval_entry(p)),
            }
        }
        Approval {
            stage: stage.unwrap_or_else(|| self.missing(span)),
            entries,
            span,
        }
    }

    /// A rule (`cab: when ... => plan`, `otherwise => plan`), an outcome, the excludes or the
    /// reminder of an approval.
    fn approval_entry(&mut self, p: P) -> Option<ApprovalEntry> {
        let espan = self.span(&p);
        Some(match p.as_rule() {
            Rule::approval_when | Rule::approval_otherwise => {
                let mut name = None;
                let mut condition = None;
                let mut plan = ApprovalPlan {
                    levels: Vec::new(),
                    span: espan,
                };
                for q in p.into_inner() {
                    match q.as_rule() {
                        Rule::ident => name = Some(self.ident(q)),
                        Rule::condition => condition = Some(self.top_condition(q)),
                        Rule::approval_plan => plan = self.approval_plan(q),
                        _ => {}
                    }
                }
                ApprovalEntry::Rule {
                    name,
                    condition,
                    plan,
                    span: espan,
                }
            }
            Rule::approval_outcome => {
                let mut kind = Spanned::new(OutcomeKind::Reject, espan);
                let mut after = None;
                let mut target = None;
                for q in p.into_inner() {
                    let qspan = self.span(&q);
                    match q.as_rule() {
                        Rule::outcome_kind => kind = Spanned::new(outcome_kind(q.as_str()), qspan),
                        Rule::duration => after = Some(self.duration(q)),
                        Rule::ident => target = Some(self.ident(q)),
                        _ => {}
                    }
                }
                ApprovalEntry::Outcome(ApprovalOutcome {
                    kind,
                    after,
                    stage: target.unwrap_or_else(|| self.missing(espan)),
                    span: espan,
                })
            }
            Rule::approval_excludes => ApprovalEntry::Excludes {
                fields: self.ident_list_child(p),
                span: espan,
            },
            Rule::approval_remind => {
                let after = match p.into_inner().find(|q| q.as_rule() == Rule::duration) {
                    Some(d) => self.duration(d),
                    None => Spanned::new(Duration::default(), espan),
                };
                ApprovalEntry::Remind { after, span: espan }
            }
            _ => return None,
        })
    }

    fn approval_plan(&mut self, pair: P) -> ApprovalPlan {
        let span = self.span(&pair);
        let mut levels = Vec::new();
        for p in pair.into_inner() {
            if p.as_rule() != Rule::approval_level {
                continue;
            }
            let lspan = self.span(&p);
            let groups = p
                .into_inner()
                .filter(|g| g.as_rule() == Rule::approval_group)
                .map(|g| self.approval_group(g))
                .collect();
            levels.push(ApprovalLevel {
                groups,
                span: lspan,
            });
        }
        ApprovalPlan { levels, span }
    }

    fn approval_group(&mut self, pair: P) -> ApprovalGroup {
        let span = self.span(&pair);
        if let Some(person) = pair
            .clone()
            .into_inner()
            .find(|q| q.as_rule() == Rule::person_ref)
        {
            return ApprovalGroup::Person(self.person_ref(person));
        }
        let mut quorum = Spanned::new(Quorum::Count(1), span);
        let mut role = None;
        for q in pair.into_inner() {
            let qspan = self.span(&q);
            match q.as_rule() {
                Rule::quorum => {
                    let n = q
                        .into_inner()
                        .find(|r| matches!(r.as_rule(), Rule::integer | Rule::percent));
                    quorum = match n {
                        Some(n) if n.as_rule() == Rule::percent => {
                            let nspan = self.span(&n);
                            let digits = n.as_str().trim_end_matches('%');
                            let pc = match digits.parse::<i64>() {
                                Ok(pc) => pc,
                                Err(_) => {
                                    self.diagnostics.push(
                                        Diagnostic::error(
                                            "number-too-large",
                                            nspan,
                                            "this percentage is too large",
                                        )
                                        .with_label("too large"),
                                    );
                                    0
                                }
                            };
                            Spanned::new(Quorum::Percent(pc), qspan)
                        }
                        Some(n) => Spanned::new(Quorum::Count(self.integer(n)), qspan),
                        None => Spanned::new(Quorum::All, qspan),
                    };
                }
                Rule::ident => role = Some(self.ident(q)),
                _ => {}
            }
        }
        ApprovalGroup::Role {
            quorum,
            role: role.unwrap_or_else(|| self.missing(span)),
            span,
        }
    }

    fn rule(&mut self, pair: P) -> Rule_ {
        let span = self.span(&pair);
        let mut name = None;
        let mut target = RuleTarget::Guard(Vec::new());
        let mut code = RhaiCode {
            text: String::new(),
            span,
        };
        for p in pair.into_inner() {
            let pspan = self.span(&p);
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(p)),
                Rule::rule_guard => target = RuleTarget::Guard(self.ident_list_child(p)),
                Rule::rule_compute => target = RuleTarget::Computes(self.last_ident(p, pspan)),
                Rule::rhai_block => {
                    if let Some(c) = p.into_inner().find(|q| q.as_rule() == Rule::rhai_code) {
                        code = RhaiCode {
                            text: c.as_str().to_string(),
                            span: self.raw_span(&c),
                        };
                    } else {
                        // An empty body: `{}`.
                        code.span = Span::new(
                            self.file,
                            pspan.start as usize + 1,
                            pspan.start as usize + 1,
                        );
                    }
                }
                _ => {}
            }
        }
        Rule_ {
            name: name.unwrap_or_else(|| self.missing(span)),
            target,
            code,
            span,
        }
    }
}

/// Step `end` back over trailing whitespace and `//` comments (outside strings), not past
/// `start`.
fn trim_trivia_end(text: &str, start: usize, end: usize) -> usize {
    let Some(slice) = text.get(start..end) else {
        return end;
    };
    let mut e = slice.trim_end().len();
    loop {
        let line_start = slice[..e].rfind('\n').map(|i| i + 1).unwrap_or(0);
        match comment_start(&slice[line_start..e]) {
            Some(c) => e = slice[..line_start + c].trim_end().len(),
            None => return start + e,
        }
    }
}

/// Where a `//` comment starts in one line, ignoring `//` inside double-quoted strings.
fn comment_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Where a condition first nests deeper than [`MAX_CONDITION_DEPTH`]: the offset in the
/// parsed text of the `(` or `not` opening the first level too many; `None` if it does not.
///
/// Each `(` and each `not` opens a `negation` inside a `negation`, and every comparison is a
/// `negation` too, so a condition nests `n` levels where `negation`s nest `n + 1` deep.
/// pest's token list is flat, so this does not recurse.
fn too_deep_at(pair: &P) -> Option<usize> {
    let mut depth = 0usize;
    // The start of the innermost `negation` open at depth `MAX_CONDITION_DEPTH + 1`.
    let mut last_level = 0;
    for token in pair.clone().tokens() {
        match token {
            pest::Token::Start {
                rule: Rule::negation,
                pos,
            } => {
                depth += 1;
                if depth == MAX_CONDITION_DEPTH + 1 {
                    last_level = pos.pos();
                } else if depth > MAX_CONDITION_DEPTH + 1 {
                    return Some(last_level);
                }
            }
            pest::Token::End {
                rule: Rule::negation,
                ..
            } => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// The tokens of a condition's text joined by single spaces, without comments, and with no
/// space after `(` or before `)` and `,`: `not ((a==b)) // x` -> `not ((a == b))`. Parsing
/// the result gives the same tokens, so this is stable under formatting. The text is one that
/// parsed as a condition, so its tokens are strings, `(`, `)`, `,`, comparison operators and
/// words (names, values, keywords).
fn condition_tokens(text: &str) -> String {
    let bytes = text.as_bytes();
    let is_delimiter = |i: usize| {
        matches!(
            bytes[i],
            b'(' | b')' | b',' | b'"' | b'=' | b'!' | b'<' | b'>'
        ) || bytes[i].is_ascii_whitespace()
            || (bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'/'))
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'/') {
            i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            continue;
        }
        let end = match bytes[i] {
            b'"' => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b'"' && bytes[j] != b'\n' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                (j + 1).min(bytes.len())
            }
            b'(' | b')' | b',' => i + 1,
            b'=' | b'!' | b'<' | b'>' => i + 1 + usize::from(bytes.get(i + 1) == Some(&b'=')),
            _ => {
                let mut j = i + 1;
                while j < bytes.len() && !is_delimiter(j) {
                    j += 1;
                }
                j
            }
        };
        let token = text.get(i..end).unwrap_or("");
        let glued = out.is_empty() || out.ends_with('(') || token == ")" || token == ",";
        if !glued {
            out.push(' ');
        }
        out.push_str(token);
        i = end;
    }
    out
}

/// The AST's `Rule` (a rhai rule), named apart from pest's generated `Rule` enum.
type Rule_ = crate::ast::Rule;

/// `approve`, `reject` or `expire`, as written.
fn outcome_kind(text: &str) -> OutcomeKind {
    match text {
        s if s.starts_with("approve") => OutcomeKind::Approve,
        s if s.starts_with("expire") => OutcomeKind::Expire,
        _ => OutcomeKind::Reject,
    }
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The pieces of a message template whose raw text (between the quotes, escapes as written)
/// starts at byte `start` of the file: text, `{name}` placeholders, and the braces that form
/// neither. `{{` and `}}` are braces in the text.
fn message_pieces(file: FileId, raw: &str, start: usize) -> Vec<MessagePiece> {
    // Each character as it reads, with the raw byte range it was written in.
    let mut chars: Vec<(char, usize, usize)> = Vec::with_capacity(raw.len());
    let mut iter = raw.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if c == '\\' {
            if let Some((j, e)) = iter.next() {
                let c = match e {
                    'n' => '\n',
                    't' => '\t',
                    other => other,
                };
                chars.push((c, i, j + e.len_utf8()));
            }
            continue;
        }
        chars.push((c, i, i + c.len_utf8()));
    }
    let span = |from: usize, to: usize| Span::new(file, start + from, start + to);
    let mut pieces = Vec::new();
    let mut text = String::new();
    let flush = |text: &mut String, pieces: &mut Vec<MessagePiece>| {
        if !text.is_empty() {
            pieces.push(MessagePiece::Text(std::mem::take(text)));
        }
    };
    let mut i = 0;
    while let Some(&(c, from, to)) = chars.get(i) {
        let next = chars.get(i + 1).map(|&(n, _, _)| n);
        match c {
            '{' | '}' if next == Some(c) => {
                text.push(c);
                i += 2;
            }
            '{' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|&(d, _, _)| d == '{' || d == '}')
                    .map(|n| i + 1 + n)
                    .filter(|&j| chars[j].0 == '}');
                flush(&mut text, &mut pieces);
                let Some(j) = close else {
                    pieces.push(MessagePiece::Unclosed(span(from, to)));
                    i += 1;
                    continue;
                };
                let name: String = chars[i + 1..j].iter().map(|&(d, _, _)| d).collect();
                let is_name = name
                    .chars()
                    .next()
                    .is_some_and(|d| d.is_ascii_alphabetic() || d == '_')
                    && name.chars().all(|d| d.is_ascii_alphanumeric() || d == '_');
                if is_name {
                    pieces.push(MessagePiece::Placeholder(Ident {
                        name,
                        span: span(to, chars[j].1),
                    }));
                } else {
                    pieces.push(MessagePiece::NotAName(name, span(from, chars[j].2)));
                }
                i = j + 1;
            }
            '}' => {
                flush(&mut text, &mut pieces);
                pieces.push(MessagePiece::Unopened(span(from, to)));
                i += 1;
            }
            _ => {
                text.push(c);
                i += 1;
            }
        }
    }
    flush(&mut text, &mut pieces);
    pieces
}

/// `1h30m` -> its parts; `None` on overflow. The grammar guarantees the shape.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut d = Duration::default();
    let mut n: u64 = 0;
    for c in text.chars() {
        if let Some(digit) = c.to_digit(10) {
            n = n.checked_mul(10)?.checked_add(u64::from(digit))?;
            continue;
        }
        let slot = match c {
            'w' => &mut d.weeks,
            'd' => &mut d.days,
            'h' => &mut d.hours,
            'm' => &mut d.minutes,
            's' => &mut d.seconds,
            _ => return None,
        };
        *slot = slot.checked_add(n)?;
        n = 0;
    }
    d.days_and_seconds()?;
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages of the diagnostics parsing `text` gives, in order.
    fn messages_of(text: &str) -> Vec<String> {
        parse(FileId(0), text)
            .diagnostics
            .into_iter()
            .map(|d| d.message)
            .collect()
    }

    #[test]
    fn chunks_split_at_top_level_keywords() {
        let text = "role a\nqueue q {\n  tier 1\n}\nprocess p {\n stage x initial\n}\n";
        let chunks = item_chunks(text);
        assert_eq!(chunks.len(), 3);
        assert!(text[chunks[1].0..].starts_with("queue"));
        assert!(text[chunks[2].0..].starts_with("process"));
    }

    #[test]
    fn spans_end_at_the_last_token() {
        let text = "process p {\n  stage a initial // c\n  // d\n\n  stage b final\n}\n";
        let parsed = parse(FileId(0), text);
        let Some(Item::Process(p)) = parsed.file.items.first() else {
            panic!("no process: {:?}", parsed.diagnostics);
        };
        let span = p.members[0].span();
        assert_eq!(&text[span.range()], "stage a initial");
        assert_eq!(trim_trivia_end("a \"//\" // x", 0, 11), 6);
    }

    #[test]
    fn syntax_helpers_skip_strings_and_comments() {
        let text = "process p { // {\n  stage a \"{\" {\n  }\n  stage b {\n";
        assert_eq!(last_unclosed_brace(text), text.rfind('{'));
        assert_eq!(last_unclosed_brace("a { b } c"), None);
        assert_eq!(unterminated_string("x \"ab\\\"c", 2), Some(6));
        assert_eq!(unterminated_string("x \"ab\" c", 2), None);
        assert_eq!(edit_distance("trasition", "transition"), 1);
        assert_eq!(edit_distance("ot", "to"), 1);
    }

    #[test]
    fn syntax_errors_name_missing_punctuation() {
        let text = "process p {\n  stage a initial\n  stage b final\n  transition t a -> b\n}\n";
        let parsed = parse(FileId(0), text);
        assert_eq!(parsed.diagnostics.len(), 1);
        assert_eq!(
            parsed.diagnostics[0].message,
            "expected `:` or a string, found `a`"
        );
        // At the end of the file, with something else than `}` missing: the open block is
        // pointed out as well.
        let text = "process p {\n  stage a initial\n  transition t: a ->\n";
        let d = &parse(FileId(0), text).diagnostics[0];
        assert_eq!(d.message, "expected a name, found end of file");
        assert_eq!(d.secondary.len(), 1);
    }

    fn routing_when(condition: &str) -> String {
        format!("process p {{\n  routing {{\n    when {condition} => q\n  }}\n}}\n")
    }

    fn first_condition(parsed: &Parsed) -> Option<&Condition> {
        match parsed.file.items.first()? {
            Item::Process(p) => match p.members.first()? {
                Member::Routing(r) => r.rules.first()?.condition.as_ref(),
                _ => None,
            },
            _ => None,
        }
    }

    #[test]
    fn conditions_nest_up_to_the_limit() {
        let n = MAX_CONDITION_DEPTH;
        let text = routing_when(&format!(
            "not {}a == b{}",
            "(".repeat(n - 1),
            ")".repeat(n - 1)
        ));
        let parsed = parse(FileId(0), &text);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        assert!(matches!(first_condition(&parsed), Some(Condition::Not(..))));

        // One level more: reported at the `(` that opens it, and not converted.
        let text = routing_when(&format!(
            "not {}a == b{} // c\n    ",
            "(".repeat(n),
            ")".repeat(n)
        ));
        let parsed = parse(FileId(0), &text);
        let codes: Vec<&str> = parsed.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["condition-too-deep"]);
        let span = parsed.diagnostics[0].span;
        let level = text.find("not").unwrap_or(0) + 4 + (n - 1);
        assert_eq!((span.start as usize, span.end as usize), (level, level + 1));
        let tokens = format!("not {}a == b{}", "(".repeat(n), ")".repeat(n));
        assert!(
            matches!(first_condition(&parsed), Some(Condition::TooDeep(t, _)) if *t == tokens),
            "{:?}",
            first_condition(&parsed)
        );

        // `not`s count too; and in a file cut into items (for the syntax error in `role`), the
        // span is still where it is in the file.
        let text = format!(
            "role\n{}",
            routing_when(&format!("{}a == b", "not ".repeat(n + 1)))
        );
        let parsed = parse(FileId(0), &text);
        let codes: Vec<&str> = parsed.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["syntax", "condition-too-deep"]);
        let span = parsed.diagnostics[1].span;
        let level = text.find("not").unwrap_or(0) + 4 * n;
        assert_eq!((span.start as usize, span.end as usize), (level, level + 3));
    }

    #[test]
    fn nesting_too_deep_for_pest_is_a_syntax_error() {
        // In a thread with Rust's default 2 MiB stack, pest runs out of stack before the end.
        let text = routing_when(&format!(
            "{}a == b{}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        ));
        let parsed = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || parse(FileId(0), &text))
            .expect("spawn")
            .join()
            .expect("no panic");
        let messages: Vec<&str> = parsed
            .diagnostics
            .iter()
            .map(|d| d.message.as_str())
            .collect();
        assert_eq!(messages, ["this is nested too deeply to be read"]);
    }

    #[test]
    fn deep_conditions_are_kept_as_their_tokens() {
        assert_eq!(
            condition_tokens("not((a==b)or c in(x,\"y)\\\" // z\")) // comment\n and d>=-1 "),
            "not ((a == b) or c in (x, \"y)\\\" // z\")) and d >= -1"
        );
        assert_eq!(
            condition_tokens("t < 2026-12-25T08:00:00+01:00 and\n\td != 1h30m"),
            "t < 2026-12-25T08:00:00+01:00 and d != 1h30m"
        );
    }

    #[test]
    fn approval_plans_have_levels_of_groups() {
        let text = "process p {\n  approval in s {\n    otherwise => any 1 of role a and 50% of role b, then all of role c\n    excludes x, y\n    remind after 1d\n    when n == 1 => 99999999999999999999% of role d\n  }\n}\n";
        let parsed = parse(FileId(0), text);
        let codes: Vec<&str> = parsed.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["number-too-large"]);
        let Some(Item::Process(p)) = parsed.file.items.first() else {
            panic!("no process");
        };
        let Some(Member::Approval(a)) = p.members.first() else {
            panic!("no approval");
        };
        let ApprovalEntry::Rule { plan, .. } = &a.entries[0] else {
            panic!("not a rule: {:?}", a.entries[0]);
        };
        let levels: Vec<Vec<(Quorum, &str)>> = plan
            .levels
            .iter()
            .map(|l| {
                l.groups
                    .iter()
                    .filter_map(|g| match g {
                        ApprovalGroup::Role { quorum, role, .. } => {
                            Some((quorum.node, role.as_str()))
                        }
                        ApprovalGroup::Person(_) => None,
                    })
                    .collect()
            })
            .collect();
        assert_eq!(
            levels,
            [
                vec![(Quorum::Count(1), "a"), (Quorum::Percent(50), "b")],
                vec![(Quorum::All, "c")],
            ]
        );
        let first_group = &plan.levels[0].groups[0];
        assert_eq!(&text[first_group.span().range()], "any 1 of role a");
        assert_eq!(
            &text[plan.levels[0].span.range()],
            "any 1 of role a and 50% of role b"
        );
        assert!(
            matches!(&a.entries[1], ApprovalEntry::Excludes { fields, .. } if fields.len() == 2)
        );
        assert!(
            matches!(&a.entries[2], ApprovalEntry::Remind { after, .. } if after.node.days == 1)
        );
        let ApprovalEntry::Rule { plan, .. } = &a.entries[3] else {
            panic!("not a rule: {:?}", a.entries[3]);
        };
        assert!(matches!(
            plan.levels[0].groups[0],
            ApprovalGroup::Role {
                quorum: Spanned {
                    node: Quorum::Percent(0),
                    ..
                },
                ..
            }
        ));
    }

    fn transition_clauses(parsed: &Parsed) -> Vec<TransitionClauseKind> {
        let Some(Item::Process(p)) = parsed.file.items.first() else {
            return Vec::new();
        };
        p.members
            .iter()
            .filter_map(|m| match m {
                Member::Transition(t) => Some(t.clauses.iter().map(|c| c.kind.clone())),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// `manager of`s, then the base, as text: `["manager", "manager", "caller"]`.
    fn person_words(p: &PersonRef) -> Vec<String> {
        let base = match &p.base {
            PersonBase::Creator(_) => "creator".to_string(),
            PersonBase::Assignee(_) => "assignee".to_string(),
            PersonBase::Field(f) => f.name.clone(),
        };
        let mut words = vec!["manager".to_string(); p.managers.len()];
        words.push(base);
        words
    }

    #[test]
    fn transitions_name_people_and_roles() {
        let text = "process p {\n  transition a: x -> y by caller, manager of manager of requester or role agent, lead or after 3d\n  transition b: x -> y by role agent or creator, assignee\n  transition c: x -> y by role, manager or by role role\n  transition d: x -> y by role a or after or by after\n}\n";
        let parsed = parse(FileId(0), text);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let clauses = transition_clauses(&parsed);
        let shown: Vec<String> = clauses
            .iter()
            .map(|c| match c {
                TransitionClauseKind::ByRoles(roles) => format!(
                    "roles {}",
                    roles
                        .iter()
                        .map(Ident::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                TransitionClauseKind::ByPeople(people) => format!(
                    "people {}",
                    people
                        .iter()
                        .map(|p| person_words(p).join(" "))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                TransitionClauseKind::After(d) => format!("after {d}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            shown,
            [
                "people caller,manager manager requester",
                "roles agent,lead",
                "after 3d",
                "roles agent",
                "people creator,assignee",
                // A person field may be called `role`, `manager` or `after`.
                "people role,manager",
                "roles role",
                "roles a",
                "people after",
                "people after",
            ]
        );
        let Some(Item::Process(p)) = parsed.file.items.first() else {
            panic!("no process");
        };
        let Some(Member::Transition(t)) = p.members.first() else {
            panic!("no transition");
        };
        let TransitionClauseKind::ByPeople(people) = &t.clauses[0].kind else {
            panic!("not people: {:?}", t.clauses[0]);
        };
        assert_eq!(
            &text[t.clauses[0].span.range()],
            "by caller, manager of manager of requester"
        );
        assert_eq!(
            &text[people[1].span.range()],
            "manager of manager of requester"
        );
        assert_eq!(&text[people[1].managers[1].range()], "manager of");
        assert_eq!(&text[people[1].base.span().range()], "requester");
    }

    #[test]
    fn spawns_set_fields_with() {
        let text = "process p {\n  transition a: x -> y spawns c as fixes with {\n    title: title, // the title\n    kind: normal, n: -3, d: 1h30m, s: \"a \\\"b\\\"\", at: 2026-12-01T09:00,\n  }\n  transition b: x -> y spawns c with { on: true } by role r\n  transition c: x -> y spawns c as with\n}\n";
        let parsed = parse(FileId(0), text);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let clauses = transition_clauses(&parsed);
        let shown: Vec<String> = clauses
            .iter()
            .map(|c| match c {
                TransitionClauseKind::Spawns {
                    process,
                    link,
                    with,
                } => {
                    let entries: Vec<String> = with
                        .iter()
                        .map(|e| format!("{}={:?}", e.field, e.value.kind))
                        .collect();
                    let link = link.as_ref().map_or("-", Ident::as_str);
                    format!("spawns {process} {link} [{}]", entries.join(" "))
                }
                TransitionClauseKind::ByRoles(r) => format!("roles {}", r.len()),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            shown,
            [
                "spawns c fixes [title=Symbol(\"title\") kind=Symbol(\"normal\") n=Integer(-3) \
                 d=Duration(Duration { weeks: 0, days: 0, hours: 1, minutes: 30, seconds: 0 }) \
                 s=String(\"a \\\"b\\\"\") at=DateTime(\"2026-12-01T09:00\")]",
                "spawns c - [on=Symbol(\"true\")]",
                "roles 1",
                // `with` is a keyword only where the grammar expects one: here, a link kind.
                "spawns c with []",
            ]
        );
        let Some(Item::Process(p)) = parsed.file.items.first() else {
            panic!("no process");
        };
        let Some(Member::Transition(t)) = p.members.first() else {
            panic!("no transition");
        };
        let TransitionClauseKind::Spawns { with, .. } = &t.clauses[0].kind else {
            panic!("not a spawn: {:?}", t.clauses[0]);
        };
        assert!(text[t.clauses[0].span.range()].ends_with("09:00,\n  }"));
        assert_eq!(&text[with[0].span.range()], "title: title");
        assert_eq!(&text[with[0].field.span.range()], "title");
        assert_eq!(&text[with[4].value.span.range()], "\"a \\\"b\\\"\"");
    }

    #[test]
    fn spawn_with_errors_name_what_was_expected() {
        for (with, message) in [
            ("with { a b }", "expected `:`, found `b`"),
            ("with {}", "expected a name, found `}`"),
            ("with { a: }", "expected a value, found `}`"),
            ("with { a: b,, }", "expected `}` or a name, found `,`"),
            ("with a: b", "expected `{`, found `a`"),
        ] {
            let text = format!("process p {{\n  transition t: a -> b spawns c {with}\n}}\n");
            let messages = messages_of(&text);
            assert_eq!(messages, [message], "{with}");
        }
    }

    #[test]
    fn approval_groups_may_be_people() {
        let text = "process p {\n  approval in s {\n    when n == 1 => manager of requester and any 1 of role sec, then creator\n    otherwise => all and any\n  }\n}\n";
        let parsed = parse(FileId(0), text);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let Some(Item::Process(p)) = parsed.file.items.first() else {
            panic!("no process");
        };
        let Some(Member::Approval(a)) = p.members.first() else {
            panic!("no approval");
        };
        let groups: Vec<Vec<String>> = a
            .entries
            .iter()
            .filter_map(|e| match e {
                ApprovalEntry::Rule { plan, .. } => Some(plan),
                _ => None,
            })
            .flat_map(|plan| &plan.levels)
            .map(|l| {
                l.groups
                    .iter()
                    .map(|g| match g {
                        ApprovalGroup::Role { role, .. } => format!("role {role}"),
                        ApprovalGroup::Person(p) => person_words(p).join(" "),
                    })
                    .collect()
            })
            .collect();
        assert_eq!(
            groups,
            [
                vec!["manager requester", "role sec"],
                vec!["creator"],
                // Person fields called `all` and `any`.
                vec!["all", "any"],
            ]
        );
    }

    #[test]
    fn deep_managers_parse_without_recursion() {
        let n = 100_000;
        let text = format!(
            "process p {{\n  transition t: a -> b by {}caller\n}}\n",
            "manager of ".repeat(n)
        );
        let parsed = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || parse(FileId(0), &text))
            .expect("spawn")
            .join()
            .expect("no panic");
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let clauses = transition_clauses(&parsed);
        assert!(
            matches!(&clauses[..], [TransitionClauseKind::ByPeople(p)] if p[0].managers.len() == n)
        );
    }

    #[test]
    fn notifications_name_recipients_and_messages() {
        let text = "process p {\n  stage s {\n    notify role lead and approvers and manager of caller \"a \\\"{id}\\\" {{x}} \\t{b c} {d }\" during business hours\n  }\n  transition t: a -> b notify role and and role and notify creator or role x\n  escalation on resolve {\n    at 50% => notify role lead \"\", raise priority\n  }\n}\n";
        let parsed = parse(FileId(0), text);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let Some(Item::Process(p)) = parsed.file.items.first() else {
            panic!("no process");
        };
        let Some(Member::Stage(st)) = p.members.first() else {
            panic!("no stage");
        };
        let StageAttrKind::Notify(n) = &st.attrs[0].kind else {
            panic!("not a notification: {:?}", st.attrs[0]);
        };
        let to: Vec<&str> = n.to.iter().map(|r| &text[r.span().range()]).collect();
        assert_eq!(to, ["role lead", "approvers", "manager of caller"]);
        assert!(matches!(&n.to[0], Recipient::Role { role, .. } if role.name == "lead"));
        assert!(n.business_hours.is_some());
        let m = n.message.as_ref().expect("a message");
        assert_eq!(m.text, "a \"{id}\" {{x}} \t{b c} {d }");
        let pieces: Vec<String> = m
            .pieces
            .iter()
            .map(|piece| match piece {
                MessagePiece::Text(t) => format!("text {t:?}"),
                MessagePiece::Placeholder(name) => {
                    format!("{} at {}", name.name, &text[name.span.range()])
                }
                MessagePiece::Unclosed(s) => format!("unclosed {}", &text[s.range()]),
                MessagePiece::Unopened(s) => format!("unopened {}", &text[s.range()]),
                MessagePiece::NotAName(inside, s) => {
                    format!("not a name {inside:?} at {}", &text[s.range()])
                }
            })
            .collect();
        assert_eq!(
            pieces,
            [
                "text \"a \\\"\"",
                "id at id",
                "text \"\\\" {x} \\t\"",
                "not a name \"b c\" at {b c}",
                "text \" \"",
                "not a name \"d \" at {d }",
            ]
        );
        // `role and` names the role `and`; a clause ends the recipients; the `or` after them
        // starts an alternative.
        let clauses = transition_clauses(&parsed);
        let shown: Vec<String> = clauses
            .iter()
            .map(|c| match c {
                TransitionClauseKind::Notify(n) => format!("notify {}", n.to.len()),
                TransitionClauseKind::ByRoles(r) => format!("roles {}", r.len()),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(shown, ["notify 2", "notify 1", "roles 1"]);
        let Some(Member::Escalation(e)) = p.members.get(2) else {
            panic!("no escalation");
        };
        let actions: Vec<&str> = e.steps[0]
            .actions
            .iter()
            .map(|a| &text[a.span.range()])
            .collect();
        assert_eq!(actions, ["notify role lead \"\"", "raise priority"]);
    }

    #[test]
    fn recipients_written_as_a_list_get_a_hint() {
        let text = "process p {\n  escalation on resolve {\n    at 50% => notify caller, manager of caller\n  }\n}\n";
        let parsed = parse(FileId(0), text);
        let help = parsed.diagnostics[0].help.as_deref().unwrap_or("");
        assert!(help.contains("joined by `and`"), "{:?}", parsed.diagnostics);
        assert!(comma_after_recipients("=> notify caller and role x,"));
        assert!(!comma_after_recipients("=> notify caller \"m\","));
        assert!(!comma_after_recipients(
            "=> notify role x during business hours,"
        ));
        assert!(!comma_after_recipients("=> raise priority,"));
    }

    /// A condition, shown with its structure: `and(a, b)`, `any l where (x == 1)`.
    fn shape(c: &Condition) -> String {
        match c {
            Condition::Or(parts, _) => {
                format!(
                    "or({})",
                    parts.iter().map(shape).collect::<Vec<_>>().join(", ")
                )
            }
            Condition::And(parts, _) => {
                format!(
                    "and({})",
                    parts.iter().map(shape).collect::<Vec<_>>().join(", ")
                )
            }
            Condition::Not(inner, _) => format!("not({})", shape(inner)),
            Condition::Compare { subject, op, .. } => format!("{subject} {}", op.node.as_str()),
            Condition::In { subject, .. } => format!("{subject} in"),
            Condition::Has { subject, .. } => format!("{subject} has"),
            Condition::Empty { subject, .. } => format!("{subject} is empty"),
            Condition::Linked {
                quantifier,
                link,
                test,
                ..
            } => match test {
                Some(t) => format!("{} {link} where ({})", quantifier.node.as_str(), shape(t)),
                None => format!("{} {link}", quantifier.node.as_str()),
            },
            Condition::TooDeep(..) => "too deep".into(),
        }
    }

    #[test]
    fn links_parse_with_cardinality_and_via() {
        let text = "process incident {\n  links {\n    caused_by: one problem // stored here\n    children:  many incident via parent\n  }\n}\n";
        let parsed = parse(FileId(0), text);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let Some(Item::Process(p)) = parsed.file.items.first() else {
            panic!("no process");
        };
        let Some(Member::Links(l)) = p.members.first() else {
            panic!("no links");
        };
        let shown: Vec<String> = l
            .links
            .iter()
            .map(|d| {
                format!(
                    "{} {} {} {}",
                    d.name,
                    d.cardinality.node.as_str(),
                    d.process,
                    d.via.as_ref().map_or("-", Ident::as_str)
                )
            })
            .collect();
        assert_eq!(
            shown,
            ["caused_by one problem -", "children many incident parent"]
        );
        assert_eq!(&text[l.links[0].span.range()], "caused_by: one problem");
        assert_eq!(&text[l.links[1].cardinality.span.range()], "many");
        let via = l.links[1].via.as_ref().expect("via");
        assert_eq!(&text[via.span.range()], "parent");
    }

    #[test]
    fn transitions_have_guards_and_effects() {
        let text = "process p {\n  transition a: x -> y by role r when any c and n == 1 or by caller then perform close on c with { f: g, n: 2 } then perform b on d notify caller\n  transition b: x -> y when all c where (stage == closed or priority <= P2) or after 3d\n}\n";
        let parsed = parse(FileId(0), text);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let shown: Vec<String> = transition_clauses(&parsed)
            .iter()
            .map(|c| match c {
                TransitionClauseKind::When(c) => format!("when {}", shape(c)),
                TransitionClauseKind::Perform { action, link, with } => {
                    format!("perform {action} on {link} [{}]", with.len())
                }
                TransitionClauseKind::ByRoles(r) => format!("roles {}", r.len()),
                TransitionClauseKind::ByPeople(p) => format!("people {}", p.len()),
                TransitionClauseKind::After(d) => format!("after {d}"),
                TransitionClauseKind::Notify(_) => "notify".into(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            shown,
            [
                "roles 1",
                // The condition ends where `or` is not followed by a condition.
                "when and(any c, n ==)",
                "people 1",
                "perform close on c [2]",
                "perform b on d [0]",
                "notify",
                "when all c where (or(stage ==, priority <=))",
                "after 3d",
            ]
        );
        let Some(Item::Process(p)) = parsed.file.items.first() else {
            panic!("no process");
        };
        let Some(Member::Transition(t)) = p.members.first() else {
            panic!("no transition");
        };
        assert_eq!(&text[t.clauses[1].span.range()], "when any c and n == 1");
        assert_eq!(
            &text[t.clauses[3].span.range()],
            "then perform close on c with { f: g, n: 2 }"
        );
    }

    #[test]
    fn link_conditions_test_one_negation() {
        for (condition, expected) in [
            ("any c", "any c"),
            ("no c", "no c"),
            ("no c where stage != closed", "no c where (stage !=)"),
            (
                "all c where stage == closed and impact == high",
                "and(all c where (stage ==), impact ==)",
            ),
            (
                "all c where (stage == closed and impact == high)",
                "all c where (and(stage ==, impact ==))",
            ),
            ("all c where not x in (1, 2)", "all c where (not(x in))"),
            ("not any c where x == 1", "not(any c where (x ==))"),
            ("any c or no d", "or(any c, no d)"),
            // Fields called `any`, `all` and `no` are compared as ever.
            ("any == 3", "any =="),
            ("all != x and no in (1, 2)", "and(all !=, no in)"),
            ("any in (a)", "any in"),
            // A link called `in`, when no list follows.
            ("any in where x == 1", "any in where (x ==)"),
            // Keywords are not reserved: a link called `where`.
            ("any where", "any where"),
        ] {
            let text = format!("process p {{\n  transition t: a -> b when {condition}\n}}\n");
            let parsed = parse(FileId(0), &text);
            assert!(
                parsed.diagnostics.is_empty(),
                "{condition}: {:?}",
                parsed.diagnostics
            );
            let clauses = transition_clauses(&parsed);
            let [TransitionClauseKind::When(c)] = &clauses[..] else {
                panic!("{condition}: {clauses:?}");
            };
            assert_eq!(shape(c), expected, "{condition}");
        }
    }

    #[test]
    fn link_syntax_errors_name_what_was_expected() {
        for (clause, message) in [
            (
                "then perform resolve incidents",
                "expected `on`, found `incidents`",
            ),
            ("then resolve on x", "expected `perform`, found `resolve`"),
            ("then perform on", "expected `on`, found `}`"),
            ("when all c", "expected `where`, found `}`"),
            ("when all c and x == 1", "expected `where`, found `and`"),
            ("when any c where", "expected `(` or a condition, found `}`"),
        ] {
            let text = format!("process p {{\n  transition t: a -> b {clause}\n}}\n");
            let messages = messages_of(&text);
            assert_eq!(messages, [message], "{clause}");
        }
        let text = "process p {\n  links {\n    a: some p\n    b: one\n  }\n}\n";
        let messages = messages_of(text);
        assert_eq!(messages, ["expected `many` or `one`, found `some`"]);
    }

    #[test]
    fn services_parse_with_their_entries_in_order() {
        let text = r#"service email "E-mail" {
  description "Mail"
  owner role email_team
  supported on 24x7
  queues service_desk, second_line
  targets {
    P1: respond 10m, resolve 2h on office
  }
  item mailbox "Mailbox" {
    process request
    with { item: software, notes: "x" }
    requires justification, notes
    description "A mailbox"
  }
}
"#;
        let parsed = parse(FileId(0), text);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let Some(Item::Service(s)) = parsed.file.items.first() else {
            panic!("no service: {:?}", parsed.file.items);
        };
        assert_eq!(s.name.name, "email");
        assert_eq!(s.label.as_ref().map(|l| l.node.as_str()), Some("E-mail"));
        let kinds: Vec<&ServiceEntryKind> = s.entries.iter().map(|e| &e.kind).collect();
        let [ServiceEntryKind::Description(d), ServiceEntryKind::Owner(owner), ServiceEntryKind::SupportedOn(cal), ServiceEntryKind::Queues(queues), ServiceEntryKind::Targets(rows), ServiceEntryKind::Item(item)] =
            kinds.as_slice()
        else {
            panic!("entries: {kinds:?}");
        };
        assert_eq!(d.node, "Mail");
        assert_eq!((owner.as_str(), cal.as_str()), ("email_team", "24x7"));
        assert_eq!(queues.len(), 2);
        assert_eq!(rows[0].calendar.as_ref().map(Ident::as_str), Some("office"));
        assert_eq!(rows[0].clocks.len(), 2);
        assert_eq!(item.name.name, "mailbox");
        let entries: Vec<&ItemEntryKind> = item.entries.iter().map(|e| &e.kind).collect();
        let [ItemEntryKind::Process(process), ItemEntryKind::With(with), ItemEntryKind::Requires(requires), ItemEntryKind::Description(_)] =
            entries.as_slice()
        else {
            panic!("item entries: {entries:?}");
        };
        assert_eq!(process.as_str(), "request");
        assert_eq!(with.len(), 2);
        assert_eq!(requires.len(), 2);
        assert_eq!(
            &text[item.entries[1].span.range()],
            r#"with { item: software, notes: "x" }"#
        );
    }

    #[test]
    fn service_syntax_errors_name_what_was_expected() {
        for (entry, message) in [
            ("owner email_team", "expected `role`, found `email_team`"),
            ("supported office", "expected `on`, found `office`"),
            ("queues", "expected a name, found `}`"),
            ("targets on office { P1: resolve 2h }", "expected `{`, found `on`"),
            ("item x { process }", "expected a name, found `}`"),
            ("item x { with { a } }", "expected `:`, found `}`"),
            (
                "descripton \"x\"",
                "expected `description`, `item`, `owner`, `queues`, `supported on`, `targets` or `}`, found `descripton`",
            ),
        ] {
            let text = format!("service s {{\n  {entry}\n}}\n");
            let messages = messages_of(&text);
            assert_eq!(messages, [message], "{entry}");
        }
        let parsed = parse(FileId(0), "// c\nservice s {\n  targets on office {}\n}\n");
        let help = parsed.diagnostics.first().and_then(|d| d.help.as_deref());
        assert!(
            help.is_some_and(|h| h.contains("`supported on`")),
            "{:?}",
            parsed.diagnostics
        );
    }

    /// A field called `service`, or of type `service`, starts no item when a file is read item by
    /// item; `service NAME` at the start of a line does.
    #[test]
    fn service_starts_an_item_only_before_a_name() {
        let text = "process p {\n  fields {\nservice: service\n  }\n  stage a initial stage b final transition t: a -> b\n}\nservice s {\n  owner\n}\nrole r\n";
        let chunks: Vec<&str> = item_chunks(text)
            .into_iter()
            .map(|(a, b)| &text[a..b])
            .collect();
        assert_eq!(chunks.len(), 3, "{chunks:?}");
        assert!(chunks[1].starts_with("service s"));
        let parsed = parse(FileId(0), text);
        assert_eq!(parsed.broken_items, ["s"]);
        assert_eq!(parsed.file.items.len(), 2);
    }

    /// The steps of the first test of `text`, which must parse without diagnostics.
    fn test_steps(text: &str) -> Vec<TestStepKind> {
        let parsed = parse(FileId(0), text);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        match parsed.file.items.first() {
            Some(Item::Test(t)) => t.steps.iter().map(|s| s.kind.clone()).collect(),
            other => panic!("not a test: {other:?}"),
        }
    }

    fn name(n: &str) -> Ident {
        Ident {
            name: n.to_string(),
            span: Span::default(),
        }
    }

    #[test]
    fn tests_parse_steps_with_handles_and_refusals() {
        let text = "test \"t\" {\n  at 2026-03-02T09:00Z\n  user bob manager carol roles agent, lead\n  create item laptop r as carol { a: 1 } refused \"x\"\n  perform resolve on r as bob with { b: c }\n  update as bob { a: 2 } refused\n  vote reject on r as sid\n  link r caused_by p as bob\n  release on r as bob\n}\n";
        let steps = test_steps(text);
        assert_eq!(steps.len(), 8);
        assert!(matches!(&steps[0], TestStepKind::Start(at) if at.node == "2026-03-02T09:00Z"));
        assert_eq!(
            steps[1],
            TestStepKind::User {
                name: name("bob"),
                roles: vec![name("agent"), name("lead")],
                manager: Some(name("carol")),
            }
        );
        let TestStepKind::Create {
            target,
            handle,
            refused,
            fields,
            ..
        } = &steps[2]
        else {
            panic!("{:?}", steps[2]);
        };
        assert_eq!(*target, CreateTarget::Item(name("laptop")));
        assert_eq!(*handle, Some(name("r")));
        assert_eq!(fields.len(), 1);
        let contains = refused.as_ref().and_then(|r| r.contains.as_ref());
        assert_eq!(contains.map(|c| c.node.as_str()), Some("x"));
        assert!(
            matches!(&steps[3], TestStepKind::Perform { action, ticket: Some(t), fields, refused: None, .. }
            if action.name == "resolve" && t.name == "r" && fields.len() == 1)
        );
        assert!(
            matches!(&steps[4], TestStepKind::Update { ticket: None, refused: Some(r), .. } if r.contains.is_none())
        );
        assert!(matches!(
            &steps[5],
            TestStepKind::Vote { approve: false, .. }
        ));
        assert!(
            matches!(&steps[6], TestStepKind::Link { from, kind, to, .. }
            if (from.name.as_str(), kind.name.as_str(), to.name.as_str()) == ("r", "caused_by", "p"))
        );
        assert!(matches!(
            &steps[7],
            TestStepKind::Claim {
                release: true,
                ticket: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn tests_parse_waits_and_expectations() {
        let text = "test \"t\" {\n  wait 30m wait 4h business wait 2d business on 24x7 wait until 2026-03-03T09:00Z\n  expect on p not escalated resolve 50%\n  expect field f == none\n  expect clock respond due 2026-03-02T10:00Z\n  expect notified role lead \"late\"\n  expect approval pending level 2\n  expect holder none\n}\n";
        let steps = test_steps(text);
        assert!(matches!(&steps[0], TestStepKind::Wait(Wait::For(d)) if d.minutes == 30));
        assert!(matches!(
            &steps[1],
            TestStepKind::Wait(Wait::Business { calendar: None, .. })
        ));
        assert!(
            matches!(&steps[2], TestStepKind::Wait(Wait::Business { calendar: Some(c), .. }) if c.name == "24x7")
        );
        assert!(matches!(&steps[3], TestStepKind::Wait(Wait::Until(_))));
        assert!(
            matches!(&steps[4], TestStepKind::Expect { ticket: Some(_), negated: true,
            expectation: Expectation::Escalated { threshold, .. } } if threshold.node == Threshold::Percent(50))
        );
        assert!(matches!(
            &steps[5],
            TestStepKind::Expect {
                expectation: Expectation::Field { value: None, .. },
                ..
            }
        ));
        assert!(matches!(
            &steps[6],
            TestStepKind::Expect {
                expectation: Expectation::Clock {
                    check: ClockCheck::Due(_),
                    ..
                },
                ..
            }
        ));
        assert!(matches!(
            &steps[7],
            TestStepKind::Expect {
                expectation: Expectation::Notified {
                    recipient: Notified::Role(_),
                    contains: Some(_)
                },
                ..
            }
        ));
        assert!(
            matches!(&steps[8], TestStepKind::Expect { expectation: Expectation::Approval { level: Some(l), .. }, .. } if l.node == 2)
        );
        assert!(matches!(
            &steps[9],
            TestStepKind::Expect {
                expectation: Expectation::Holder(None),
                ..
            }
        ));
    }

    #[test]
    fn test_syntax_errors_name_what_was_expected() {
        for (step, message) in [
            ("expect field a = 3", "expected `==` or `has`, found `=`"),
            ("expect clock resolve due", "expected a date and time, found `}`"),
            ("wait 3", "expected `until` or a duration such as `4h`, found `3`"),
            ("create incident as", "expected a name, found `}`"),
            ("check laptop", "expected `as` or `on`, found `}`"),
            ("uncheck as fred", "expected `as` or `on`, found `fred`"),
            ("expect checked", "expected a name, found `}`"),
            (
                "user a roles b manager c roles d",
                "expected `at`, `check`, `claim`, `create`, `expect`, `link`, `perform`, `release`, `uncheck`, `update`, `user`, `vote`, `wait` or `}`, found `roles`",
            ),
        ] {
            let text = format!("test \"t\" {{\n  {step}\n}}\n");
            assert_eq!(messages_of(&text), [message], "{step}");
        }
    }

    #[test]
    fn checklists_parse_as_stage_attributes_clauses_and_steps() {
        let text = "process p {\n  stage s initial {\n    queue q\n    checklist {\n      accounts \"Accounts created\" // first\n      badge\n    }\n  }\n  transition go: s -> t requires checklist requires notes, checklist\n}\n";
        let parsed = parse(FileId(0), text);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let Some(Item::Process(p)) = parsed.file.items.first() else {
            panic!("no process");
        };
        let Some(Member::Stage(stage)) = p.members.first() else {
            panic!("no stage");
        };
        let StageAttrKind::Checklist(items) = &stage.attrs[1].kind else {
            panic!("not a checklist: {:?}", stage.attrs[1]);
        };
        let shown: Vec<(&str, Option<&str>)> = items
            .iter()
            .map(|i| (i.name.as_str(), i.label.as_ref().map(|l| l.node.as_str())))
            .collect();
        assert_eq!(
            shown,
            [("accounts", Some("Accounts created")), ("badge", None)]
        );
        assert!(text[stage.attrs[1].span.range()].starts_with("checklist {"));
        assert!(text[items[0].span.range()].starts_with("accounts \"Accounts created\""));
        assert_eq!(&text[items[1].name.span.range()], "badge");
        // `requires checklist` is a clause of its own; a field called `checklist` is still
        // required after another field.
        let clauses = transition_clauses(&parsed);
        assert_eq!(clauses[0], TransitionClauseKind::RequiresChecklist);
        assert_eq!(
            clauses[1],
            TransitionClauseKind::Requires(vec![name("notes"), name("checklist")])
        );
        let Some(Member::Transition(t)) = p.members.get(1) else {
            panic!("no transition");
        };
        assert_eq!(&text[t.clauses[0].span.range()], "requires checklist");
        // Keywords are not reserved: `checklist` is a name elsewhere.
        assert!(messages_of("process checklist {\n  stage checklist initial\n}\n").is_empty());

        let steps = test_steps("test \"t\" {\n  check laptop as fred\n  uncheck badge on r as fred refused \"no\"\n  expect checked laptop\n  expect on r not checked badge\n}\n");
        assert_eq!(
            steps[0],
            TestStepKind::Check {
                item: name("laptop"),
                done: true,
                ticket: None,
                actor: name("fred"),
                refused: None,
            }
        );
        assert!(
            matches!(&steps[1], TestStepKind::Check { item, done: false, ticket: Some(t), refused: Some(r), .. }
            if item.name == "badge" && t.name == "r" && r.contains.as_ref().is_some_and(|c| c.node == "no"))
        );
        assert_eq!(
            steps[2],
            TestStepKind::Expect {
                ticket: None,
                negated: false,
                expectation: Expectation::Checked(name("laptop")),
            }
        );
        assert!(
            matches!(&steps[3], TestStepKind::Expect { ticket: Some(_), negated: true, expectation: Expectation::Checked(i) } if i.name == "badge")
        );
    }

    #[test]
    fn checklist_syntax_errors_name_what_was_expected() {
        let in_stage = |body: &str| format!("process p {{\n  stage s {{\n    {body}\n  }}\n}}\n");
        assert_eq!(
            messages_of(&in_stage("checklist {}")),
            ["expected a checklist item, found `}`"]
        );
        assert_eq!(
            messages_of(&in_stage("checklist a \"A\"")),
            ["expected `{`, found `a`"]
        );
        assert_eq!(
            messages_of(&in_stage("checklist { a \"A\" \"B\" }")),
            ["expected `}` or a checklist item, found `\"`"]
        );
        // Fields after `requires checklist` go in a clause of their own.
        for (clause, fields) in [
            ("requires checklist, notes", "notes"),
            ("requires checklist , a,b by role x", "a, b"),
            ("requires checklist,", "FIELD"),
        ] {
            let text = format!("process p {{\n  transition t: a -> b {clause}\n}}\n");
            let parsed = parse(FileId(0), &text);
            assert_eq!(parsed.diagnostics.len(), 1, "{:?}", parsed.diagnostics);
            let d = &parsed.diagnostics[0];
            assert!(d.message.ends_with("found `,`"), "{}", d.message);
            assert_eq!(
                d.help.as_deref(),
                Some(format!("`requires checklist` stands alone: require fields in a clause of their own, `requires checklist requires {fields}`").as_str()),
                "{clause}"
            );
        }
    }

    /// A broken test costs only itself; `test` starts an item only before its name's string.
    #[test]
    fn a_broken_test_hides_no_other_item() {
        let text = "role a\ntest \"t\" {\n  expect stag x\n}\nrole b\nprocess p {\n  fields {\ntest: text\n  }\n}\n";
        let parsed = parse(FileId(0), text);
        assert_eq!(parsed.diagnostics.len(), 1, "{:?}", parsed.diagnostics);
        assert_eq!(
            parsed.diagnostics[0].help.as_deref(),
            Some("did you mean `stage`?")
        );
        assert_eq!(parsed.file.items.len(), 3);
        assert!(parsed.broken_items.is_empty());
    }

    #[test]
    fn durations_parse_by_unit() {
        let d = parse_duration("1h30m").expect("valid");
        assert_eq!((d.hours, d.minutes), (1, 30));
        assert_eq!(parse_duration("99999999999999999999999d"), None);
    }
}
