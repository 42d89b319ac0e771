//! The canonical formatter: one layout for every file, whatever the input's layout.
//!
//! The formatter prints the syntax tree, not the text: 2-space indentation, one member per
//! line, `{` on the header line and `}` on its own line, single spaces between tokens, and a
//! few aligned columns (field types, priority tables). Because it prints the tree's tokens in
//! order (adding only what the grammar ignores: an `or` between transition alternatives and
//! the `by` that may be left out after it, parentheses the tree's nesting needs),
//! `parse(format(x)) == parse(x)`; because the layout is a function of the tree plus the
//! comments and blank lines, formatting is idempotent.
//!
//! An empty block prints as `{}`, except for stages, queues and services, whose braces are
//! optional and are dropped: `stage new "New" initial`. A block holding only comments keeps its
//! braces.
//!
//! # Comments
//!
//! The grammar drops `//` comments, so the tree does not know about them. The formatter finds
//! them itself, by scanning the source for `//` outside string literals and outside rhai rule
//! bodies (a body is printed verbatim, comments included). Each comment is then attached by
//! position to the line-level node (top-level item, process member, field, table row, stage
//! attribute, routing rule, escalation step, ...) it is nearest to, while the tree is printed
//! in source order with a cursor into the sorted comments:
//!
//! * before a node, every pending comment that starts before the node's *end* is printed on
//!   its own line. That covers comments above the node and comments inside a node that prints
//!   as one line (a transition written over several lines, say), which have no better place.
//!   For a braced node, comments inside the header (before `{`) move above it the same way.
//! * after a node, a comment that follows it on the same source line with nothing but spaces
//!   in between stays at the end of the printed line (` // ...`). After a `{`, the same holds
//!   for a comment right after the brace.
//! * before a closing `}`, every pending comment that starts before the brace is printed
//!   inside the block; the comments left at the end of the file are printed at its end.
//!
//! Attaching by position rather than by grammar keeps the grammar simple and means a comment
//! is never lost: every comment is printed exactly once, in source order.
//!
//! Node spans cannot be used as they are: pest lets a rule that ends in an optional or a
//! repetition swallow the whitespace and comments after its last token, so a span's end is
//! first moved back over trailing whitespace and comments ([`Printer::real_end`]).
//!
//! # Blank lines
//!
//! Where the source has one or more blank lines between two line-level things (nodes or
//! comment lines) in a block, the output has exactly one; never at the start or the end of a
//! block. Everything else about the input's layout is ignored.

use crate::ast::*;

/// Format a parsed file canonically. `text` is the source the `file` was parsed from (used to
/// find comments and blank lines).
///
/// Call it only on a file that parsed without errors ([`crate::Parsed::has_errors`] is false,
/// as the CLI's `fmt` checks). The tree of a file with errors has stand-ins for what could not
/// be read (an item with a syntax error is left out, a number too large to store is 0), so
/// formatting it would change what the file says: `tier 99999999999999999999` would print as
/// `tier 0`. The output is still well-formed, but that is all.
///
/// The output ends with exactly one line break, except that an input with neither items nor
/// comments formats as the empty string.
pub fn format(text: &str, file: &File) -> String {
    let mut printer = Printer::new(text, file);
    for item in &file.items {
        printer.item(item);
    }
    let out = printer.finish();
    // The file's line ending (its first line break's) and its byte-order mark are kept.
    let crlf = text.find('\n').is_some_and(|i| text[..i].ends_with('\r'));
    let out = if crlf { out.replace('\n', "\r\n") } else { out };
    match text.starts_with('\u{feff}') && !out.is_empty() {
        true => format!("\u{feff}{out}"),
        false => out,
    }
}

/// One indentation level.
const INDENT: &str = "  ";

/// Lines longer than this are broken where the language has a natural break (a transition's
/// `when` and `then perform` clauses).
const MAX_WIDTH: usize = 100;

/// Marks where a transition's line may break (before `when` and `then perform`).
const CLAUSE_BREAK: char = '\u{1}';

/// A `//` comment of the source, without its line break or trailing whitespace.
#[derive(Clone, Copy, Debug)]
struct Comment<'a> {
    /// Byte offset of the `//`.
    start: usize,
    /// Byte offset of the end of the comment's line (the `\n`, or the end of the text).
    end: usize,
    text: &'a str,
}

/// One line of a construct printed over several lines because comments are inside it: its
/// text, where it is in the source, and how many levels deeper than the construct it goes.
struct Seg {
    start: usize,
    end: usize,
    depth: usize,
    text: String,
}

/// Whether an empty braced node keeps its braces (`routing {}`) or drops them (`stage x`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Braces {
    Always,
    Optional,
}

/// The output being built, and where printing stands in the source's comments.
struct Printer<'a> {
    text: &'a str,
    out: String,
    /// Indentation level of the lines being printed.
    indent: usize,
    /// Every comment of the source, by position.
    comments: Vec<Comment<'a>>,
    /// Index of the first comment not printed yet.
    next: usize,
    /// Source offset where the last line-level thing printed in the current block ends;
    /// `None` at the start of a block, where no blank line may go.
    prev_end: Option<usize>,
}

impl<'a> Printer<'a> {
    fn new(text: &'a str, file: &File) -> Self {
        Printer {
            text,
            out: String::with_capacity(text.len() + text.len() / 4),
            indent: 0,
            comments: scan_comments(text, &rhai_bodies(file)),
            next: 0,
            prev_end: None,
        }
    }

    /// Prints the comments left at the end of the file. The output ends with exactly one
    /// line break, unless it is empty (a file of nothing but whitespace formats as nothing).
    fn finish(mut self) -> String {
        self.flush_comments(usize::MAX);
        let len = self.out.trim_end_matches('\n').len();
        self.out.truncate(len);
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        self.out
    }

    // -- source positions -----------------------------------------------------------------------

    /// The end of a node's last token: `span.end` moved back over the whitespace and comments
    /// pest may have included in the span.
    fn real_end(&self, span: Span) -> usize {
        let start = span.start as usize;
        let mut end = (span.end as usize).min(self.text.len());
        loop {
            while end > start
                && self
                    .text
                    .as_bytes()
                    .get(end - 1)
                    .is_some_and(u8::is_ascii_whitespace)
            {
                end -= 1;
            }
            match end.checked_sub(1).and_then(|last| self.comment_at(last)) {
                Some(c) if c.start >= start && c.start < end => end = c.start,
                _ => return end.max(start),
            }
        }
    }

    /// The comment covering byte `pos`, if any.
    fn comment_at(&self, pos: usize) -> Option<Comment<'a>> {
        let i = self.comments.partition_point(|c| c.start <= pos);
        let c = *self.comments.get(i.checked_sub(1)?)?;
        (pos < c.end).then_some(c)
    }

    /// Whether a comment starts strictly between `from` and `to`.
    fn has_comment_between(&self, from: usize, to: usize) -> bool {
        let i = self.comments.partition_point(|c| c.start <= from);
        self.comments.get(i).is_some_and(|c| c.start < to)
    }

    /// The first `{` in `start..end` outside strings and comments: the opening brace of a
    /// braced node whose span this is.
    fn open_brace(&self, start: usize, end: usize) -> Option<usize> {
        let bytes = self.text.as_bytes();
        let end = end.min(bytes.len());
        let mut i = start;
        while i < end {
            match bytes.get(i) {
                Some(b'{') => return Some(i),
                Some(b'"') => i = string_end(bytes, i),
                Some(b'/') if bytes.get(i + 1) == Some(&b'/') => i = line_end(bytes, i),
                _ => i += 1,
            }
        }
        None
    }

    /// The first `}` in `start..end` outside strings and comments: the closing brace of a
    /// field list whose last entry ends at `start`.
    fn close_brace(&self, start: usize, end: usize) -> Option<usize> {
        let bytes = self.text.as_bytes();
        let end = end.min(bytes.len());
        let mut i = start;
        while i < end {
            match bytes.get(i) {
                Some(b'}') => return Some(i),
                Some(b'"') => i = string_end(bytes, i),
                Some(b'/') if bytes.get(i + 1) == Some(&b'/') => i = line_end(bytes, i),
                _ => i += 1,
            }
        }
        None
    }

    /// Whether the source has a blank line between offsets `from` and `to`.
    fn blank_between(&self, from: usize, to: usize) -> bool {
        let Some(gap) = self.text.get(from..to) else {
            return false;
        };
        let lines: Vec<&str> = gap.split('\n').collect();
        // The first piece ends the earlier line, the last one starts the later line.
        lines
            .get(1..lines.len().saturating_sub(1))
            .is_some_and(|middle| middle.iter().any(|l| l.trim().is_empty()))
    }

    // -- layout primitives ----------------------------------------------------------------------

    fn push_indent(&mut self) {
        for _ in 0..self.indent {
            self.out.push_str(INDENT);
        }
    }

    /// Starts the line of a thing that starts at source offset `start`, after a blank line if
    /// the source has one between it and the previous thing of the block.
    fn begin_line(&mut self, start: usize) {
        if self
            .prev_end
            .is_some_and(|prev| self.blank_between(prev, start))
        {
            self.out.push('\n');
        }
        self.push_indent();
    }

    /// Ends the line of a thing whose source ends at `end`, keeping a comment that follows it
    /// on the same source line.
    fn end_line(&mut self, end: usize) {
        self.end_line_after(end, b"");
    }

    /// [`Self::end_line`], where the source may also have any of `punctuation` (the `,` that
    /// the printed line ends with) between the thing and its comment.
    fn end_line_after(&mut self, end: usize, punctuation: &[u8]) {
        let mut last = end;
        if let Some(&c) = self.comments.get(self.next) {
            let same_line = c.start >= end
                && self.text.get(end..c.start).is_some_and(|gap| {
                    gap.bytes()
                        .all(|b| b == b' ' || b == b'\t' || punctuation.contains(&b))
                });
            if same_line {
                self.out.push(' ');
                self.out.push_str(c.text);
                self.next += 1;
                last = c.end;
            }
        }
        self.out.push('\n');
        self.prev_end = Some(last);
    }

    /// Prints, each on its own line, the pending comments that start before `limit`.
    fn flush_comments(&mut self, limit: usize) {
        while let Some(&c) = self.comments.get(self.next).filter(|c| c.start < limit) {
            self.begin_line(c.start);
            self.out.push_str(c.text);
            self.out.push('\n');
            self.prev_end = Some(c.end);
            self.next += 1;
        }
    }

    /// Prints a node that fits on one line.
    fn leaf(&mut self, span: Span, line: &str) {
        let end = self.real_end(span);
        self.leaf_at(span.start as usize, end, line);
    }

    fn leaf_at(&mut self, start: usize, end: usize, line: &str) {
        self.flush_comments(end);
        self.begin_line(start);
        self.out.push_str(line);
        self.end_line(end);
    }

    /// Prints a construct over several lines, one per segment, each comment inside it kept
    /// next to what it was next to: a comment after a segment on its line stays at the end of
    /// that line, one on a line of its own goes on a line of its own before the next segment
    /// (at the deeper of the two segments' indentation). A comment inside a segment's own text
    /// goes on a line of its own before it. No blank lines inside.
    fn segments(&mut self, segs: &[Seg]) {
        let base = self.indent;
        let mut prev_depth = None;
        for seg in segs {
            if let Some(prev) = prev_depth {
                self.indent = base + seg.depth.max(prev);
                self.prev_end = None;
            }
            self.flush_comments(seg.end);
            self.indent = base + seg.depth;
            match prev_depth {
                None => self.begin_line(seg.start),
                Some(_) => self.push_indent(),
            }
            self.out.push_str(&seg.text);
            self.end_line_after(seg.end, b",");
            prev_depth = Some(seg.depth);
        }
        self.indent = base;
    }

    /// Whether a comment starts inside `from..to`, after `from` (the end of the construct's
    /// first line): then the construct is printed over several lines.
    fn comment_inside(&self, from: usize, to: usize) -> bool {
        self.has_comment_between(from, to)
    }

    /// The segments of `with { a: b, c: d }` written with comments inside its braces: the
    /// line ending in `{` (`head`, then ` with {`), an entry per line, `}`; `None` when no
    /// comment is inside the braces (then it stays on one line).
    fn with_segments(
        &self,
        head: &str,
        start: usize,
        end: usize,
        with: &[SpawnEntry],
        depth: usize,
    ) -> Option<Vec<Seg>> {
        let first = with.first()?;
        let open = self.open_brace(start, first.span.start as usize)?;
        let close = end.checked_sub(1)?;
        if self.text.as_bytes().get(close) != Some(&b'}') || !self.comment_inside(open, close) {
            return None;
        }
        let mut segs = vec![Seg {
            start,
            end: open + 1,
            depth,
            text: format!("{head} with {{").trim_start().to_string(),
        }];
        for e in with {
            segs.push(Seg {
                start: e.span.start as usize,
                end: self.real_end(e.span),
                depth: depth + 1,
                text: format!("{}: {},", e.field, literal(&e.value)),
            });
        }
        segs.push(Seg {
            start: close,
            end,
            depth,
            text: "}".to_string(),
        });
        Some(segs)
    }

    /// A transition with comments after its header line: the header, then each clause on a
    /// line of its own, indented under it.
    fn transition_lines(&mut self, t: &Transition, header_end: usize) {
        let (header, clauses) = transition_parts(t);
        let mut segs = vec![Seg {
            start: t.span.start as usize,
            end: header_end,
            depth: 0,
            text: header,
        }];
        for (clause, text) in t.clauses.iter().zip(clauses) {
            let start = clause.span.start as usize;
            let end = self.real_end(clause.span);
            let with = match &clause.kind {
                TransitionClauseKind::Spawns { with, .. }
                | TransitionClauseKind::Perform { with, .. } => with.as_slice(),
                _ => &[],
            };
            let head = text.strip_suffix(&with_entries(with)).unwrap_or(&text);
            match self.with_segments(head, start, end, with, 1) {
                Some(lines) => segs.extend(lines),
                None => segs.push(Seg {
                    start,
                    end,
                    depth: 1,
                    text,
                }),
            }
        }
        self.segments(&segs);
    }

    /// Prints a braced node: `header {`, its children one level deeper, `}`. An empty block
    /// without comments prints as `header {}`, or as `header` alone where the braces are
    /// optional.
    fn block<T>(
        &mut self,
        span: Span,
        header: &str,
        braces: Braces,
        children: &[T],
        mut child: impl FnMut(&mut Self, &T),
    ) {
        let start = span.start as usize;
        let end = self.real_end(span);
        let brace = self.open_brace(start, end);
        let has_comments = brace.is_some_and(|b| self.has_comment_between(b, end));
        if children.is_empty() && !has_comments {
            let line = match braces {
                Braces::Always => format!("{header} {{}}"),
                Braces::Optional => header.to_string(),
            };
            self.leaf_at(start, end, &line);
            return;
        }
        let brace = brace.unwrap_or(start);
        self.flush_comments(brace);
        self.begin_line(start);
        self.out.push_str(header);
        self.out.push_str(" {");
        self.end_line(brace + 1);
        self.prev_end = None;
        self.indent += 1;
        for c in children {
            child(self, c);
        }
        self.flush_comments(end);
        self.indent -= 1;
        self.push_indent();
        self.out.push('}');
        self.end_line(end);
    }

    // -- top-level items ------------------------------------------------------------------------

    fn item(&mut self, item: &Item) {
        match item {
            Item::Calendar(c) => self.calendar(c),
            Item::Queue(q) => self.queue(q),
            Item::Tier(t) => self.tier(t),
            Item::Role(r) => self.role(r),
            Item::Service(s) => self.service(s),
            Item::Process(p) => self.process(p),
            Item::Test(t) => self.test(t),
        }
    }

    /// `test "name" { ... }`: a step per line, its parts in their canonical order.
    fn test(&mut self, t: &Test) {
        let header = format!("test {}", quoted(&t.name.name));
        self.block(t.span, &header, Braces::Always, &t.steps, Self::test_step);
    }

    /// A step on one line, or, when its field list has comments inside or makes the line too
    /// long, with a field per line:
    ///
    /// ```text
    /// create incident as carol {
    ///   title: "Mail is down",
    ///   impact: high,
    /// } refused
    /// ```
    fn test_step(&mut self, step: &TestStep) {
        let line = test_step(&step.kind);
        let start = step.span.start as usize;
        let end = self.real_end(step.span);
        if let Some(segs) = self.test_field_segments(step, &line, start, end) {
            self.segments(&segs);
            return;
        }
        self.leaf_at(start, end, &line);
    }

    /// The lines of a step whose fields go on lines of their own (see [`Self::test_step`]);
    /// `None` when it stays on one line.
    fn test_field_segments(
        &self,
        step: &TestStep,
        line: &str,
        start: usize,
        end: usize,
    ) -> Option<Vec<Seg>> {
        let (fields, text) = match &step.kind {
            TestStepKind::Create { fields, .. } | TestStepKind::Update { fields, .. } => {
                (fields, field_list(fields))
            }
            TestStepKind::Perform { fields, .. } => (fields, with_entries(fields)),
            _ => return None,
        };
        let (first, last) = (fields.first()?, fields.last()?);
        let open = self.open_brace(start, first.span.start as usize)?;
        let close = self.close_brace(self.real_end(last.span), end)?;
        let too_long = self.indent * INDENT.len() + line.len() > MAX_WIDTH;
        if !too_long && !self.comment_inside(open, close) {
            return None;
        }
        let at = line.find(&text)?;
        let (head, tail) = (&line[..at], &line[at + text.len()..]);
        let opening = text.split('{').next().unwrap_or_default();
        let mut segs = vec![Seg {
            start,
            end: open + 1,
            depth: 0,
            text: format!("{head}{opening}{{"),
        }];
        for e in fields {
            segs.push(Seg {
                start: e.span.start as usize,
                end: self.real_end(e.span),
                depth: 1,
                text: format!("{}: {},", e.field, literal(&e.value)),
            });
        }
        segs.push(Seg {
            start: close,
            end,
            depth: 0,
            text: format!("}}{tail}"),
        });
        Some(segs)
    }

    fn calendar(&mut self, c: &Calendar) {
        let mut header = format!("calendar {}{}", c.name, label(&c.label));
        if let Some(t) = &c.tailoring {
            header.push_str(&format!(" for client {} extends {}", t.client, t.base));
        }
        self.block(
            c.span,
            &header,
            Braces::Always,
            &c.entries,
            Self::calendar_entry,
        );
    }

    fn calendar_entry(&mut self, entry: &CalendarEntry) {
        self.leaf(entry.span(), &calendar_entry_line(entry));
    }

    fn queue(&mut self, q: &Queue) {
        let mut header = format!("queue {}{}", q.name, label(&q.label));
        if let Some(t) = &q.tailoring {
            header.push_str(&format!(" for client {} extends {}", t.client, t.base));
        }
        self.block(
            q.span,
            &header,
            Braces::Optional,
            &q.attrs,
            Self::queue_attr,
        );
    }

    fn queue_attr(&mut self, attr: &QueueAttr) {
        self.queue_setting(&attr.kind, attr.span, "");
    }

    /// A queue's setting (`prefix` first: a tailoring's `add `); `span` is the node's.
    fn queue_setting(&mut self, kind: &QueueAttrKind, span: Span, prefix: &str) {
        let line = match kind {
            QueueAttrKind::Targets(t) => return self.targets_block(t, prefix),
            QueueAttrKind::Tier(n) => format!("tier {n}"),
            QueueAttrKind::EscalatesTo(q) => format!("escalates_to {q}"),
            QueueAttrKind::Members(roles) => format!("members {}", names(roles)),
            QueueAttrKind::Assign(strategy) => format!("assign {strategy}"),
            QueueAttrKind::Rename(to) => format!("rename to {to}"),
            QueueAttrKind::Overlay(o) => {
                let verb = format!("{} ", o.verb.node.as_str());
                match &o.entry {
                    QueueEntry::Setting(kind) => return self.queue_setting(kind, span, &verb),
                    QueueEntry::Target(row) => format!("{verb}target {}", target_row(row, 0)),
                    QueueEntry::TargetsCalendar(cal) => format!("{verb}targets on {cal}"),
                    QueueEntry::Named(entry) => format!("{verb}{}", entry.text()),
                }
            }
        };
        self.leaf(span, &format!("{prefix}{line}"));
    }

    /// `tier 2 "Second line" { targets { ... } }`.
    fn tier(&mut self, t: &Tier) {
        let header = format!("tier {}{}", t.name, label(&t.label));
        self.block(t.span, &header, Braces::Always, &t.targets, Self::targets);
    }

    fn role(&mut self, r: &Role) {
        let line = format!("role {}{}", r.name, label(&r.label));
        self.leaf(r.span, &line);
    }

    /// `service NAME "label" { ... }`: its entries in the order written, a catalogue item as a
    /// block of its own.
    fn service(&mut self, s: &Service) {
        let header = format!("service {}{}", s.name, label(&s.label));
        self.block(
            s.span,
            &header,
            Braces::Optional,
            &s.entries,
            Self::service_entry,
        );
    }

    fn service_entry(&mut self, entry: &ServiceEntry) {
        let line = match &entry.kind {
            ServiceEntryKind::Description(d) => format!("description {}", quoted(&d.node)),
            ServiceEntryKind::Owner(role) => format!("owner role {role}"),
            ServiceEntryKind::SupportedOn(cal) => format!("supported on {cal}"),
            ServiceEntryKind::Queues(queues) => format!("queues {}", names(queues)),
            ServiceEntryKind::Targets(rows) => {
                let width = rows
                    .iter()
                    .map(|row| row.priority.name.chars().count() + 1)
                    .max()
                    .unwrap_or(0);
                self.block(entry.span, "targets", Braces::Always, rows, |p, row| {
                    p.leaf(row.span, &target_row(row, width))
                });
                return;
            }
            ServiceEntryKind::Item(item) => {
                let header = format!("item {}{}", item.name, label(&item.label));
                self.block(item.span, &header, Braces::Always, &item.entries, |p, e| {
                    if let ItemEntryKind::With(with) = &e.kind {
                        let (start, end) = (e.span.start as usize, p.real_end(e.span));
                        if let Some(segs) = p.with_segments("", start, end, with, 0) {
                            p.segments(&segs);
                            return;
                        }
                    }
                    let line = match &e.kind {
                        ItemEntryKind::Description(d) => {
                            format!("description {}", quoted(&d.node))
                        }
                        ItemEntryKind::Process(process) => format!("process {process}"),
                        ItemEntryKind::With(with) => with_entries(with).trim_start().to_string(),
                        ItemEntryKind::Requires(fields) => format!("requires {}", names(fields)),
                    };
                    p.leaf(e.span, &line)
                });
                return;
            }
        };
        self.leaf(entry.span, &line);
    }

    fn process(&mut self, p: &Process) {
        let mut header = format!("process {}{}", p.name, label(&p.label));
        if let Some(t) = &p.tailoring {
            header.push_str(&format!(" for client {} extends {}", t.client, t.base));
        }
        self.block(p.span, &header, Braces::Always, &p.members, Self::member);
    }

    // -- process members ------------------------------------------------------------------------

    fn member(&mut self, member: &Member) {
        match member {
            Member::Fields(f) => self.fields(f),
            Member::Links(l) => self.links(l),
            Member::Priorities(p) => {
                self.leaf(p.span, &format!("priorities {}", names(&p.levels)));
            }
            Member::PriorityTable(t) => self.priority_table(t, t.span, ""),
            Member::Targets(t) => self.targets(t),
            Member::Stage(s) => self.stage(s, s.span, ""),
            Member::Transition(t) => {
                let header_end = self.real_end(Span::new(
                    t.span.file,
                    t.span.start as usize,
                    t.to.span.end as usize,
                ));
                if self.comment_inside(header_end, self.real_end(t.span)) {
                    self.transition_lines(t, header_end);
                    return;
                }
                self.transition(t, t.span, "");
            }
            Member::Routing(r) => self.routing(r),
            Member::Escalation(e) => self.escalation(e),
            Member::Approval(a) => self.approval(a, a.span, ""),
            Member::Rule(r) => self.rule(r, r.span, ""),
            Member::Overlay(o) => self.overlay(o),
        }
    }

    /// A transition on one line (`prefix` first), or with its `when` and `then perform`
    /// clauses on lines of their own when too long. `span` is the node's, for comments.
    fn transition(&mut self, t: &Transition, span: Span, prefix: &str) {
        {
            {
                let marked = format!("{prefix}{}", transition(t));
                // A transition too long for one line puts its `when` and `then perform`
                // clauses on lines of their own, indented under it.
                let one_line = marked.replace(CLAUSE_BREAK, "");
                let text = match self.indent * INDENT.len() + one_line.len() > MAX_WIDTH {
                    false => one_line,
                    true => {
                        let indent = format!("\n{}", INDENT.repeat(self.indent + 1));
                        let mut parts = marked.split(CLAUSE_BREAK);
                        let mut text = parts.next().unwrap_or_default().to_string();
                        for part in parts {
                            text.push_str(&indent);
                            text.push_str(part.trim_start());
                        }
                        text
                    }
                };
                self.leaf(span, &text)
            }
        }
    }

    /// A tailoring's entry: its verb, then the entry as the language writes it (or its name).
    fn overlay(&mut self, o: &Overlay) {
        let verb = o.verb.node.as_str();
        let span = o.span;
        match &o.entry {
            OverlayEntry::Field(f) => self.field(f, 0, &format!("{verb} field "), span),
            OverlayEntry::Stage(st) => self.stage(st, span, &format!("{verb} ")),
            OverlayEntry::Transition(t) => self.transition(t, span, &format!("{verb} ")),
            OverlayEntry::Target(row) => {
                self.leaf(span, &format!("{verb} target {}", target_row(row, 0)))
            }
            OverlayEntry::TargetsCalendar(cal) => {
                self.leaf(span, &format!("{verb} targets on {cal}"))
            }
            OverlayEntry::PriorityTable(t) => self.priority_table(t, span, &format!("{verb} ")),
            OverlayEntry::PriorityRow(row) => self.leaf(
                span,
                &format!(
                    "{verb} priority {} => {}",
                    names(&row.keys),
                    names(&row.cells)
                ),
            ),
            OverlayEntry::Priorities(p) => {
                self.leaf(span, &format!("{verb} priorities {}", names(&p.levels)))
            }
            OverlayEntry::Route { rule, place } => {
                let mut line = format!("{verb} route {}", route_rule_line(rule));
                if let Some(place) = place {
                    let side = if place.before { "before" } else { "after" };
                    line.push_str(&format!(" {side} {}", place.anchor));
                }
                self.leaf(span, &line)
            }
            OverlayEntry::Escalation { clock, step } => {
                let line = format!(
                    "{verb} escalation on {} {}",
                    clock.node,
                    escalation_step(step)
                );
                if !self.action_lines(span, &line, &step.actions) {
                    self.leaf(span, &line)
                }
            }
            OverlayEntry::Rule(r) => self.rule(r, span, &format!("{verb} ")),
            OverlayEntry::Approval(a) => self.approval(a, span, &format!("{verb} ")),
            OverlayEntry::ApprovalEntry {
                stage,
                entry,
                place,
            } => {
                let mut line = format!("{verb} approval in {stage} {}", approval_entry(entry).1);
                if let Some(place) = place {
                    let side = if place.before { "before" } else { "after" };
                    line.push_str(&format!(" {side} {}", place.anchor));
                }
                self.leaf(span, &line)
            }
            OverlayEntry::Named(entry) => self.leaf(span, &format!("{verb} {}", entry_ref(entry))),
        }
    }

    /// `fields { ... }`, with the types in one column.
    fn fields(&mut self, f: &Fields) {
        let width = f
            .fields
            .iter()
            .map(|field| field.name.name.chars().count() + 1)
            .max()
            .unwrap_or(0);
        self.block(f.span, "fields", Braces::Always, &f.fields, |p, field| {
            p.field(field, width, "", field.span)
        });
    }

    /// `links { ... }`, with what each name links to in one column, as the fields' types.
    fn links(&mut self, l: &Links) {
        let width = l
            .links
            .iter()
            .map(|link| link.name.name.chars().count() + 1)
            .max()
            .unwrap_or(0);
        self.block(l.span, "links", Braces::Always, &l.links, |p, link| {
            let mut line = format!(
                "{:<width$} {} {}",
                format!("{}:", link.name),
                link.cardinality.node.as_str(),
                link.process
            );
            if let Some(via) = &link.via {
                line.push_str(&format!(" via {via}"));
            }
            p.leaf(link.span, &line)
        });
    }

    /// A field (`prefix` first: a tailoring's `add field `), its type in the column `width`
    /// gives. `span` is the node's, for comments.
    fn field(&mut self, f: &Field, width: usize, prefix: &str, node: Span) {
        let mut tail = String::new();
        if f.required.is_some() {
            tail.push_str(" required");
        }
        if let Some(value) = &f.default {
            tail.push_str(" default ");
            tail.push_str(&literal(value));
        }
        let name = format!("{prefix}{:<width$}", format!("{}:", f.name));
        if let FieldType::Enum(values, span) = &f.ty {
            // Comments between the values: a value per line.
            let type_end = self.real_end(*span);
            let open = self
                .text
                .get(span.start as usize..type_end)
                .and_then(|t| t.find('('));
            let close = type_end.saturating_sub(1);
            if let Some(open) = open.map(|o| o + span.start as usize) {
                if !values.is_empty()
                    && self.text.as_bytes().get(close) == Some(&b')')
                    && self.comment_inside(open, close)
                {
                    let mut segs = vec![Seg {
                        start: node.start as usize,
                        end: open + 1,
                        depth: 0,
                        text: format!("{name} enum("),
                    }];
                    for v in values {
                        segs.push(Seg {
                            start: v.span.start as usize,
                            end: v.span.end as usize,
                            depth: 1,
                            text: format!("{v},"),
                        });
                    }
                    segs.push(Seg {
                        start: close,
                        end: self.real_end(node),
                        depth: 0,
                        text: format!("){tail}"),
                    });
                    self.segments(&segs);
                    return;
                }
            }
        }
        let line = format!("{name} {}{tail}", field_type(&f.ty));
        self.leaf(node, &line);
    }

    /// `priority from a, b { ... }`, with `=>` and the cells in columns.
    fn priority_table(&mut self, t: &PriorityTable, span: Span, prefix: &str) {
        let keys: Vec<String> = t.rows.iter().map(|r| names(&r.keys)).collect();
        let key_width = keys.iter().map(|k| k.chars().count()).max().unwrap_or(0);
        let mut cell_widths: Vec<usize> = Vec::new();
        for row in &t.rows {
            for (i, cell) in row.cells.iter().enumerate() {
                let w = cell.name.chars().count();
                match cell_widths.get_mut(i) {
                    Some(max) => *max = (*max).max(w),
                    None => cell_widths.push(w),
                }
            }
        }
        let lines: Vec<String> = t
            .rows
            .iter()
            .zip(&keys)
            .map(|(row, keys)| {
                format!(
                    "{keys:<key_width$} => {}",
                    columns(&row.cells, &cell_widths)
                )
            })
            .collect();
        let header = format!("{prefix}priority from {}", names(&t.fields));
        let rows: Vec<(&PriorityRow, &String)> = t.rows.iter().zip(&lines).collect();
        self.block(span, &header, Braces::Always, &rows, |p, (row, line)| {
            p.leaf(row.span, line)
        });
    }

    /// `targets on office { ... }`, with the clocks in one column.
    fn targets(&mut self, t: &Targets) {
        self.targets_block(t, "")
    }

    /// A targets block, `prefix` first (a tailoring's `replace `).
    fn targets_block(&mut self, t: &Targets, prefix: &str) {
        let header = match &t.calendar {
            Some(cal) => format!("{prefix}targets on {cal}"),
            None => format!("{prefix}targets"),
        };
        let width = t
            .rows
            .iter()
            .map(|row| row.priority.name.chars().count() + 1)
            .max()
            .unwrap_or(0);
        self.block(t.span, &header, Braces::Always, &t.rows, |p, row| {
            p.leaf(row.span, &target_row(row, width))
        });
    }

    /// A stage (`prefix` first: a tailoring's `add `); `span` is the node's, for comments.
    fn stage(&mut self, s: &Stage, span: Span, prefix: &str) {
        let mut header = format!("{prefix}stage {}{}", s.name, label(&s.label));
        for kind in &s.kinds {
            header.push_str(match kind.node {
                StageKind::Initial => " initial",
                StageKind::Final => " final",
            });
        }
        self.block(span, &header, Braces::Optional, &s.attrs, |p, attr| {
            match &attr.kind {
                StageAttrKind::Every { actions, .. } => {
                    let line = stage_attr(attr);
                    if p.action_lines(attr.span, &line, actions) {
                        return;
                    }
                }
                StageAttrKind::Checklist(items) => return p.checklist(attr.span, items),
                _ => {}
            }
            p.leaf(attr.span, &stage_attr(attr))
        });
    }

    /// `checklist { ... }`: an item per line, the labels in one column, as the fields' types.
    fn checklist(&mut self, span: Span, items: &[ChecklistItem]) {
        let width = items
            .iter()
            .filter(|item| item.label.is_some())
            .map(|item| item.name.name.chars().count())
            .max()
            .unwrap_or(0);
        self.block(span, "checklist", Braces::Always, items, |p, item| {
            let line = match &item.label {
                Some(l) => format!("{:<width$} {}", item.name.name, quoted(&l.node)),
                None => item.name.name.clone(),
            };
            p.leaf(item.span, &line)
        });
    }

    /// An escalation or recurring step (`line`, as on one line) whose actions have comments
    /// between them: the first action on the step's line, each other one on a line of its
    /// own, indented under it. Whether it was printed so.
    fn action_lines(&mut self, span: Span, line: &str, actions: &[EscalationAction]) -> bool {
        let (Some(first), true) = (actions.first(), actions.len() > 1) else {
            return false;
        };
        let first_end = self.real_end(first.span);
        let end = self.real_end(span);
        if !self.comment_inside(first_end, end) {
            return false;
        }
        let rest = escalation_actions(&actions[1..]);
        let head = line.strip_suffix(&rest).unwrap_or(line);
        let mut segs = vec![Seg {
            start: span.start as usize,
            end: first_end,
            depth: 0,
            text: head.trim_end().to_string(),
        }];
        let last = actions.len() - 1;
        for (i, a) in actions.iter().enumerate().skip(1) {
            let text = escalation_actions(std::slice::from_ref(a));
            segs.push(Seg {
                start: a.span.start as usize,
                end: self.real_end(a.span),
                depth: 1,
                text: if i < last { format!("{text},") } else { text },
            });
        }
        self.segments(&segs);
        true
    }

    fn routing(&mut self, r: &Routing) {
        self.block(r.span, "routing", Braces::Always, &r.rules, |p, rule| {
            p.leaf(rule.span, &route_rule_line(rule))
        });
    }

    fn escalation(&mut self, e: &Escalation) {
        let header = format!("escalation on {}", e.clock.node);
        self.block(e.span, &header, Braces::Always, &e.steps, |p, step| {
            let line = escalation_step(step);
            if !p.action_lines(step.span, &line, &step.actions) {
                p.leaf(step.span, &line)
            }
        });
    }

    fn approval(&mut self, a: &Approval, span: Span, prefix: &str) {
        let header = format!("{prefix}approval in {}", a.stage);
        self.block(span, &header, Braces::Always, &a.entries, |p, entry| {
            if let ApprovalEntry::Rule {
                name,
                condition,
                plan,
                ..
            } = entry
            {
                // A plan of several levels with comments between them: a level per line.
                let end = p.real_end(entry.span());
                let first_end = plan.levels.first().map(|l| p.real_end(l.span));
                if let Some(first_end) =
                    first_end.filter(|&e| plan.levels.len() > 1 && p.comment_inside(e, end))
                {
                    let level =
                        |level: &ApprovalLevel| join(&level.groups, approval_group, " and ");
                    let last = plan.levels.len() - 1;
                    let mut segs = vec![Seg {
                        start: entry.span().start as usize,
                        end: first_end,
                        depth: 0,
                        text: format!(
                            "{}{} => {},",
                            name.as_ref().map(|n| format!("{n}: ")).unwrap_or_default(),
                            when(condition),
                            level(&plan.levels[0])
                        ),
                    }];
                    for (i, l) in plan.levels.iter().enumerate().skip(1) {
                        segs.push(Seg {
                            start: l.span.start as usize,
                            end: p.real_end(l.span),
                            depth: 1,
                            text: format!("then {}{}", level(l), if i < last { "," } else { "" }),
                        });
                    }
                    p.segments(&segs);
                    return;
                }
            }
            let (span, line) = approval_entry(entry);
            p.leaf(span, &line)
        });
    }

    /// `rule name ... {`, the rhai body normalized and indented one level deeper, `}`; an
    /// empty body prints as `{}`.
    fn rule(&mut self, r: &Rule, span: Span, prefix: &str) {
        let start = span.start as usize;
        let end = self.real_end(span);
        self.flush_comments((r.code.span.start as usize).max(start));
        self.begin_line(start);
        self.out.push_str(&format!("{prefix}rule {} ", r.name));
        self.out.push_str(&match &r.target {
            RuleTarget::Guard(transitions) => format!("when transition {}", names(transitions)),
            RuleTarget::Computes(field) => format!("computes {field}"),
        });
        let body = r.code.normalized();
        if body.is_empty() {
            self.out.push_str(" {}");
        } else {
            self.out.push_str(" {\n");
            for line in body {
                if !line.is_empty() {
                    self.push_indent();
                    self.out.push_str(INDENT);
                    self.out.push_str(line);
                }
                self.out.push('\n');
            }
            self.push_indent();
            self.out.push('}');
        }
        self.end_line(end);
    }
}

// ---------------------------------------------------------------------------------------------
// Finding comments

/// The byte ranges of the rhai rule bodies of a file, by position.
fn rhai_bodies(file: &File) -> Vec<std::ops::Range<usize>> {
    let mut ranges: Vec<_> = file
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Process(p) => Some(&p.members),
            _ => None,
        })
        .flatten()
        .filter_map(|member| match member {
            Member::Rule(r) => Some(r.code.span.range()),
            _ => None,
        })
        .collect();
    ranges.sort_by_key(|r| r.start);
    ranges
}

/// The `//` comments of `text` outside string literals and outside the `skip` ranges (sorted
/// by start), in order.
fn scan_comments<'a>(text: &'a str, skip: &[std::ops::Range<usize>]) -> Vec<Comment<'a>> {
    let bytes = text.as_bytes();
    let mut skip = skip.iter().peekable();
    let mut comments = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while skip.next_if(|r| r.end <= i).is_some() {}
        if let Some(r) = skip.peek().filter(|r| r.start <= i) {
            i = r.end;
            continue;
        }
        match bytes.get(i) {
            Some(b'"') => i = string_end(bytes, i),
            Some(b'/') if bytes.get(i + 1) == Some(&b'/') => {
                let end = line_end(bytes, i);
                let text = text.get(i..end).unwrap_or("//").trim_end();
                comments.push(Comment {
                    start: i,
                    end,
                    text,
                });
                i = end;
            }
            _ => i += 1,
        }
    }
    comments
}

/// The offset just past the string literal whose opening quote is at `start` (or the end of
/// its line, for an unterminated one).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return i + 1,
            b'\n' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The offset of the line break ending the line that `start` is on (or the end of the text).
fn line_end(bytes: &[u8], start: usize) -> usize {
    bytes
        .get(start..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
        .map_or(bytes.len(), |n| start + n)
}

// ---------------------------------------------------------------------------------------------
// One-line text of nodes

/// `a, b, c`.
fn names(ids: &[Ident]) -> String {
    list(ids, |id| id.name.clone())
}

fn list<T>(items: &[T], show: impl Fn(&T) -> String) -> String {
    join(items, show, ", ")
}

fn join<T>(items: &[T], show: impl Fn(&T) -> String, separator: &str) -> String {
    items.iter().map(show).collect::<Vec<_>>().join(separator)
}

/// `a,   b, c`: a list whose `i`-th items all take `widths[i]` columns (the last item of each
/// list is not padded, so lines carry no trailing spaces).
fn columns(ids: &[Ident], widths: &[usize]) -> String {
    let mut out = String::new();
    for (i, id) in ids.iter().enumerate() {
        if i + 1 < ids.len() {
            let width = widths.get(i).copied().unwrap_or(0) + 1;
            out.push_str(&format!("{:<width$} ", format!("{id},")));
        } else {
            out.push_str(&id.name);
        }
    }
    out
}

/// A string literal, quoted and escaped.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// ` "label"`, or nothing.
fn label(label: &Option<Spanned<String>>) -> String {
    label
        .as_ref()
        .map(|l| format!(" {}", quoted(&l.node)))
        .unwrap_or_default()
}

fn literal(l: &Literal) -> String {
    match &l.kind {
        LiteralKind::DateTime(s) | LiteralKind::Date(s) | LiteralKind::Symbol(s) => s.clone(),
        LiteralKind::Prefix(s) => format!("{s}.*"),
        LiteralKind::Duration(d) => d.to_string(),
        LiteralKind::Integer(n) => n.to_string(),
        LiteralKind::String(s) => quoted(s),
        LiteralKind::List(elements) => format!("[{}]", list(elements, literal)),
    }
}

fn clocks(kinds: &[Spanned<ClockKind>]) -> String {
    list(kinds, |k| k.node.to_string())
}

/// `hours mon-fri 08:00-12:00, 13:00-17:00` or `hours sat, sun closed`.
fn hours(h: &Hours) -> String {
    let days = days(h);
    let times = match &h.times {
        Some(ranges) => list(ranges, |r| {
            format!("{}-{}", clock_time(&r.from), clock_time(&r.to))
        }),
        None => "closed".to_string(),
    };
    format!("hours {days} {times}")
}

/// The days of an `hours` entry as written: `mon-fri`, `sat, sun`.
fn days(h: &Hours) -> String {
    list(&h.days, |d| match &d.to {
        Some(to) => format!("{}-{to}", d.from),
        None => d.from.to_string(),
    })
}

fn clock_time(t: &ClockTime) -> String {
    format!("{:02}:{:02}", t.hour, t.minute)
}

fn holiday(h: &Holiday) -> String {
    format!("{}{}", h.date.node, label(&h.label))
}

fn field_type(ty: &FieldType) -> String {
    match ty {
        FieldType::Named(name) => name.to_string(),
        FieldType::Enum(values, _) => format!("enum({})", names(values)),
        FieldType::List(element, _) => format!("list({})", field_type(element)),
    }
}

/// A calendar entry on one line; in a tailoring, its verb first (`remove hours sat, sun`).
fn calendar_entry_line(entry: &CalendarEntry) -> String {
    match entry {
        CalendarEntry::Timezone(tz) => format!("timezone {}", quoted(&tz.node)),
        CalendarEntry::Hours(h) => hours(h),
        CalendarEntry::Holidays(days, _) => format!("holidays {}", list(days, holiday)),
        // Hours are removed by their days alone.
        CalendarEntry::Overlay { verb, entry, .. } => match (verb.node, entry.as_ref()) {
            (Verb::Remove, CalendarEntry::Hours(h)) => format!("remove hours {}", days(h)),
            _ => format!("{} {}", verb.node.as_str(), calendar_entry_line(entry)),
        },
    }
}

/// An entry of a process by its name, after `remove` or `require`.
fn entry_ref(entry: &EntryRef) -> String {
    match entry {
        EntryRef::Field(n) => format!("field {n}"),
        EntryRef::Stage(n) => format!("stage {n}"),
        EntryRef::Transition(n) => format!("transition {n}"),
        EntryRef::Target(n) => format!("target {n}"),
        EntryRef::Priority(keys, _) => format!("priority {}", names(keys)),
        EntryRef::Route(Some(n), _) => format!("route {n}"),
        EntryRef::Route(None, _) => "route otherwise".to_string(),
        EntryRef::Escalation { clock, threshold } => format!(
            "escalation on {} at {}",
            clock.node,
            threshold_text(threshold.node)
        ),
        EntryRef::Rule(n) => format!("rule {n}"),
        EntryRef::Approval(stage) => format!("approval in {stage}"),
        EntryRef::ApprovalEntry { stage, key, .. } => {
            format!("approval in {stage} {}", key.text())
        }
    }
}

/// A targets row on one line, unpadded: `P1: respond 15m, resolve 4h on 24x7`.
pub fn target_row_line(row: &TargetRow) -> String {
    target_row(row, 0)
}

/// `P1: respond 15m, resolve 4h on 24x7`, the `P1:` padded to `width`.
fn target_row(row: &TargetRow, width: usize) -> String {
    let clocks = list(&row.clocks, |c| {
        format!("{} {}", c.clock.node, c.duration.node)
    });
    let priority = format!("{:<width$}", format!("{}:", row.priority));
    match &row.calendar {
        Some(cal) => format!("{priority} {clocks} on {cal}"),
        None => format!("{priority} {clocks}"),
    }
}

fn stage_attr(attr: &StageAttr) -> String {
    match &attr.kind {
        StageAttrKind::Queue(QueueTarget::ByRouting) => "queue by routing".to_string(),
        StageAttrKind::Queue(QueueTarget::Named(q)) => format!("queue {q}"),
        StageAttrKind::Pauses(kinds) => format!("pauses {}", clocks(kinds)),
        StageAttrKind::Stops(kinds) => format!("stops {}", clocks(kinds)),
        StageAttrKind::Starts(kinds) => format!("starts {}", clocks(kinds)),
        StageAttrKind::Notify(n) => notify(n),
        StageAttrKind::Checklist(items) => {
            format!("checklist {{ {} }}", join(items, checklist_item, " "))
        }
        StageAttrKind::Every {
            period,
            condition: when,
            actions,
        } => {
            let when = when
                .as_ref()
                .map(|c| format!(" when {}", condition(c)))
                .unwrap_or_default();
            format!(
                "every {}{when} => {}",
                period.node,
                escalation_actions(actions)
            )
        }
    }
}

/// `laptop "Laptop imaged"`, or `badge` without a label.
fn checklist_item(item: &ChecklistItem) -> String {
    format!("{}{}", item.name, label(&item.label))
}

/// `notify caller and role team_lead "message" during business hours`.
fn notify(n: &Notify) -> String {
    let mut line = format!("notify {}", join(&n.to, recipient, " and "));
    if let Some(m) = &n.message {
        line.push(' ');
        line.push_str(&quoted(&m.text));
    }
    if n.business_hours.is_some() {
        line.push_str(" during business hours");
    }
    line
}

/// `role team_lead`, `approvers`, `manager of caller`.
fn recipient(r: &Recipient) -> String {
    match r {
        Recipient::Role { role, .. } => format!("role {role}"),
        Recipient::Approvers(_) => "approvers".to_string(),
        Recipient::Person(p) => person(p),
    }
}

/// `transition name "label": a, b -> c by caller or by role r or after 3d requires f spawns p as
/// k with { a: b, c: "x" } notify caller when any l then perform x on l`: clauses in source
/// order, `or` between the alternatives (`by PERSON`, `by role`, `after`), each `by` clause with
/// its own `by` (the `by` that may be left out after `or` is written back). A `when` condition
/// followed by an alternative reads back the same: the alternative's `or by`, `or after` cannot
/// continue a condition.
/// A transition as one line, with a [`CLAUSE_BREAK`] before each clause that may go on a line
/// of its own (`when`, `then perform`).
fn transition(t: &Transition) -> String {
    let (mut line, clauses) = transition_parts(t);
    for (clause, text) in t.clauses.iter().zip(clauses) {
        // Each of these starts a line of its own: a condition, an effect, a spawned ticket
        // (with its field list) each read as one thing, and a transition may have several.
        if matches!(
            clause.kind,
            TransitionClauseKind::When(_)
                | TransitionClauseKind::Perform { .. }
                | TransitionClauseKind::Spawns { .. }
        ) {
            line.push(CLAUSE_BREAK);
        }
        line.push(' ');
        line.push_str(&text);
    }
    line
}

/// A transition's header (`transition name "label": a, b -> c`) and the text of each of its
/// clauses (an alternative after the first with its `or`).
fn transition_parts(t: &Transition) -> (String, Vec<String>) {
    let header = format!(
        "transition {}{}: {} -> {}",
        t.name,
        label(&t.label),
        names(&t.from),
        t.to
    );
    let mut first_alternative = true;
    let mut clauses = Vec::with_capacity(t.clauses.len());
    for clause in &t.clauses {
        let or = if first_alternative { "" } else { "or " };
        let text = match &clause.kind {
            TransitionClauseKind::ByRoles(roles) => {
                first_alternative = false;
                format!("{or}by role {}", names(roles))
            }
            TransitionClauseKind::ByPeople(people) => {
                first_alternative = false;
                format!("{or}by {}", list(people, person))
            }
            TransitionClauseKind::At(field) => {
                first_alternative = false;
                format!("{or}at {field}")
            }
            TransitionClauseKind::After(d) => {
                first_alternative = false;
                format!("{or}after {d}")
            }
            TransitionClauseKind::Requires(fields) => format!("requires {}", names(fields)),
            TransitionClauseKind::RequiresChecklist => "requires checklist".to_string(),
            TransitionClauseKind::Spawns {
                process,
                link,
                with,
            } => {
                let mut text = format!("spawns {process}");
                if let Some(link) = link {
                    text.push_str(&format!(" as {link}"));
                }
                text.push_str(&with_entries(with));
                text
            }
            TransitionClauseKind::Notify(n) => notify(n),
            TransitionClauseKind::When(c) => format!("when {}", condition(c)),
            TransitionClauseKind::Perform { action, link, with } => {
                format!("then perform {action} on {link}{}", with_entries(with))
            }
        };
        clauses.push(text);
    }
    (header, clauses)
}

// ---------------------------------------------------------------------------------------------
// Process tests

/// One step of a test, on one line: `create incident i as carol { impact: high } refused`.
fn test_step(kind: &TestStepKind) -> String {
    match kind {
        TestStepKind::Start(at) => format!("at {}", at.node),
        TestStepKind::User {
            name,
            roles,
            manager,
        } => {
            let mut line = format!("user {name}");
            if !roles.is_empty() {
                line.push_str(&format!(" roles {}", names(roles)));
            }
            if let Some(m) = manager {
                line.push_str(&format!(" manager {m}"));
            }
            line
        }
        TestStepKind::Create {
            target,
            handle,
            actor,
            fields,
            refused,
        } => {
            let target = match target {
                CreateTarget::Process(p) => p.to_string(),
                CreateTarget::Item(i) => format!("item {i}"),
            };
            let handle = handle.as_ref().map(|h| format!(" {h}")).unwrap_or_default();
            format!(
                "create {target}{handle} as {actor}{}{}",
                field_list(fields),
                refusal(refused)
            )
        }
        TestStepKind::Perform {
            action,
            ticket,
            actor,
            fields,
            refused,
        } => format!(
            "perform {action}{} as {actor}{}{}",
            on(ticket),
            with_entries(fields),
            refusal(refused)
        ),
        TestStepKind::Update {
            ticket,
            actor,
            fields,
            refused,
        } => format!(
            "update{} as {actor}{}{}",
            on(ticket),
            field_list(fields),
            refusal(refused)
        ),
        TestStepKind::Vote {
            approve,
            ticket,
            actor,
            refused,
        } => format!(
            "vote {}{} as {actor}{}",
            if *approve { "approve" } else { "reject" },
            on(ticket),
            refusal(refused)
        ),
        TestStepKind::Link {
            from,
            kind,
            to,
            actor,
            refused,
        } => format!("link {from} {kind} {to} as {actor}{}", refusal(refused)),
        TestStepKind::Claim {
            release,
            ticket,
            actor,
            refused,
        } => format!(
            "{}{} as {actor}{}",
            if *release { "release" } else { "claim" },
            on(ticket),
            refusal(refused)
        ),
        TestStepKind::Check {
            item,
            done,
            ticket,
            actor,
            refused,
        } => format!(
            "{} {item}{} as {actor}{}",
            if *done { "check" } else { "uncheck" },
            on(ticket),
            refusal(refused)
        ),
        TestStepKind::Wait(Wait::For(d)) => format!("wait {d}"),
        TestStepKind::Wait(Wait::Business { duration, calendar }) => match calendar {
            Some(cal) => format!("wait {duration} business on {cal}"),
            None => format!("wait {duration} business"),
        },
        TestStepKind::Wait(Wait::Until(at)) => format!("wait until {}", at.node),
        TestStepKind::Expect {
            ticket,
            negated,
            expectation: e,
        } => format!(
            "expect{}{} {}",
            on(ticket),
            if *negated { " not" } else { "" },
            expectation(e)
        ),
    }
}

/// A clock's check as written after the clock (`running`, `remaining 3h`).
fn clock_check(check: &ClockCheck) -> String {
    match check {
        ClockCheck::State(s) => s.to_string(),
        ClockCheck::Elapsed(d) => format!("elapsed {d}"),
        ClockCheck::Remaining(d) => format!("remaining {d}"),
        ClockCheck::Due(at) => format!("due {}", at.node),
    }
}

/// What an `expect` step asserts, as written after `expect` (and `on`, `not`).
fn expectation(e: &Expectation) -> String {
    let or_none = |name: &Option<Ident>| {
        name.as_ref()
            .map_or_else(|| "none".to_string(), Ident::to_string)
    };
    match e {
        Expectation::Stage(s) => format!("stage {s}"),
        Expectation::Priority(p) => format!("priority {}", or_none(p)),
        Expectation::Queue(q) => format!("queue {}", or_none(q)),
        Expectation::Holder(h) => format!("holder {}", or_none(h)),
        Expectation::Field { field, value } => format!(
            "field {field} == {}",
            value.as_ref().map_or_else(|| "none".to_string(), literal)
        ),
        Expectation::FieldHas { field, value } => format!("field {field} has {}", literal(value)),
        Expectation::Clock { clock, check } => {
            format!("clock {} {}", clock.node, clock_check(check))
        }
        Expectation::Escalated { clock, threshold } => {
            format!(
                "escalated {} {}",
                clock.node,
                threshold_text(threshold.node)
            )
        }
        Expectation::Breached(clock) => format!("breached {}", clock.node),
        Expectation::Ola { check, .. } => format!("ola {}", clock_check(check)),
        Expectation::OlaBreachedIn(queue) => format!("ola breached in {queue}"),
        Expectation::Notified {
            recipient,
            contains,
        } => {
            let to = match recipient {
                Notified::Role(r) => format!("role {r}"),
                Notified::User(u) => u.to_string(),
            };
            match contains {
                Some(text) => format!("notified {to} {}", quoted(&text.node)),
                None => format!("notified {to}"),
            }
        }
        Expectation::Approval { state, level } => match level {
            Some(n) => format!("approval {state} level {}", n.node),
            None => format!("approval {state}"),
        },
        Expectation::Linked {
            kind,
            other,
            names: false,
        } => format!("linked {kind} {other}"),
        Expectation::Linked {
            kind,
            other,
            names: true,
        } => format!("linked {kind} as {other}"),
        Expectation::History(actions) => format!("history {}", names(actions)),
        Expectation::Checked(item) => format!("checked {item}"),
    }
}

/// ` on NAME`, or nothing.
fn on(ticket: &Option<Ident>) -> String {
    ticket
        .as_ref()
        .map(|t| format!(" on {t}"))
        .unwrap_or_default()
}

/// ` { a: b, c: "x" }`, or nothing: the fields of `create` and `update`.
fn field_list(fields: &[SpawnEntry]) -> String {
    with_entries(fields).replacen(" with", "", 1)
}

/// ` refused`, ` refused "text"`, or nothing.
fn refusal(refused: &Option<Refusal>) -> String {
    match refused {
        Some(Refusal {
            contains: Some(text),
            ..
        }) => format!(" refused {}", quoted(&text.node)),
        Some(_) => " refused".to_string(),
        None => String::new(),
    }
}

/// ` with { a: b, c: "x" }`, or nothing.
fn with_entries(with: &[SpawnEntry]) -> String {
    if with.is_empty() {
        return String::new();
    }
    let entries = list(with, |e| format!("{}: {}", e.field, literal(&e.value)));
    format!(" with {{ {entries} }}")
}

/// A routing rule in the canonical layout (`when category == network => network`,
/// `otherwise => service_desk`): what the checker keeps of it to say which rule chose a queue.
pub fn route_rule_line(rule: &RouteRule) -> String {
    match &rule.name {
        Some(name) => format!("{name}: {} => {}", when(&rule.condition), rule.queue),
        None => format!("{} => {}", when(&rule.condition), rule.queue),
    }
}

/// A condition in the canonical layout, on one line, with the fewest parentheses: what the
/// checker keeps of a transition's `when` to say which condition refused an action.
pub fn condition_line(c: &Condition) -> String {
    condition(c)
}

/// `when <condition>`, or `otherwise`.
fn when(condition: &Option<Condition>) -> String {
    match condition {
        Some(c) => format!("when {}", self::condition(c)),
        None => "otherwise".to_string(),
    }
}

/// Binding strength of a condition: `or` < `and` < `not` and the comparisons. A condition too
/// deep to convert is only ever a whole condition, but would be parenthesized as an operand.
fn precedence(c: &Condition) -> u8 {
    match c {
        Condition::TooDeep(..) => 0,
        Condition::Or(..) => 1,
        Condition::And(..) => 2,
        Condition::Not(..)
        | Condition::Compare { .. }
        | Condition::In { .. }
        | Condition::Has { .. }
        | Condition::Empty { .. }
        | Condition::Linked { .. } => 3,
    }
}

/// A condition with the fewest parentheses that parse back to the same tree. An operand is
/// parenthesized when it binds no tighter than its operator: `a or (b or c)` keeps its
/// parentheses, because without them it would parse as one three-way `or`.
fn condition(c: &Condition) -> String {
    let operand = |inner: &Condition, min: u8| {
        if precedence(inner) > min {
            condition(inner)
        } else {
            format!("({})", condition(inner))
        }
    };
    match c {
        Condition::Or(parts, _) => join(parts, |p| operand(p, 1), " or "),
        Condition::And(parts, _) => join(parts, |p| operand(p, 2), " and "),
        Condition::Not(inner, _) => format!("not {}", operand(inner, 2)),
        Condition::Compare {
            subject, op, value, ..
        } => format!("{subject} {} {}", op.node.as_str(), literal(value)),
        Condition::In {
            subject, values, ..
        } => format!("{subject} in ({})", list(values, literal)),
        Condition::Has { subject, value, .. } => format!("{subject} has {}", literal(value)),
        Condition::Empty { subject, .. } => format!("{subject} is empty"),
        // The test is one operand: a comparison, `not ...`, or parenthesized.
        Condition::Linked {
            quantifier,
            link,
            test,
            ..
        } => match test {
            Some(test) => format!(
                "{} {link} where {}",
                quantifier.node.as_str(),
                operand(test, 2)
            ),
            None => format!("{} {link}", quantifier.node.as_str()),
        },
        // Already its tokens, one space apart: printed as it is.
        Condition::TooDeep(tokens, _) => tokens.clone(),
    }
}

fn escalation_step(step: &EscalationStep) -> String {
    format!(
        "at {} => {}",
        threshold_text(step.threshold.node),
        escalation_actions(&step.actions)
    )
}

/// `75%` or `2h`.
fn threshold_text(threshold: Threshold) -> String {
    match threshold {
        Threshold::Percent(n) => format!("{n}%"),
        Threshold::After(d) => d.to_string(),
    }
}

/// The actions of an escalation or recurring step: `notify role x, raise priority`.
fn escalation_actions(actions: &[EscalationAction]) -> String {
    list(actions, |a| match &a.kind {
        EscalationActionKind::Notify(n) => notify(n),
        EscalationActionKind::MoveToNextTier => "move to next tier".to_string(),
        EscalationActionKind::MoveToQueue(q) => format!("move to {q}"),
        EscalationActionKind::RaisePriority => "raise priority".to_string(),
        EscalationActionKind::Perform(task) => format!("perform {task}"),
    })
}

/// An approval entry in the canonical layout, on one line: `when category == 2 => any 3 of
/// role cab, then any 1 of role change_manager`, `otherwise => none`, `on approve => scheduled`,
/// `excludes requester`, `remind after 1d`. The checker keeps the line of each rule, so the
/// history can say which rule chose a ticket's plan.
pub fn approval_rule_line(entry: &ApprovalEntry) -> String {
    approval_entry(entry).1
}

/// The span and the line of an approval entry.
fn approval_entry(entry: &ApprovalEntry) -> (Span, String) {
    let line = match entry {
        ApprovalEntry::Rule {
            name,
            condition,
            plan,
            ..
        } => {
            let named = name.as_ref().map(|n| format!("{n}: ")).unwrap_or_default();
            format!("{named}{} => {}", when(condition), approval_plan(plan))
        }
        ApprovalEntry::Outcome(o) => {
            let after = o
                .after
                .as_ref()
                .map(|d| format!(" after {}", d.node))
                .unwrap_or_default();
            format!("on {}{after} => {}", o.kind.node.as_str(), o.stage)
        }
        ApprovalEntry::Excludes { fields, .. } => format!("excludes {}", names(fields)),
        ApprovalEntry::Remind { after, .. } => format!("remind after {}", after.node),
    };
    (entry.span(), line)
}

/// `none`, or `all of role a and 50% of role b, then any 2 of role c`.
fn approval_plan(plan: &ApprovalPlan) -> String {
    if plan.levels.is_empty() {
        return "none".to_string();
    }
    let level = |level: &ApprovalLevel| join(&level.groups, approval_group, " and ");
    join(&plan.levels, level, ", then ")
}

/// `all of role a`, `any 2 of role b`, `50% of role c`, `manager of requester`.
fn approval_group(group: &ApprovalGroup) -> String {
    match group {
        ApprovalGroup::Role { quorum, role, .. } => match quorum.node {
            Quorum::All => format!("all of role {role}"),
            Quorum::Count(n) => format!("any {n} of role {role}"),
            Quorum::Percent(n) => format!("{n}% of role {role}"),
        },
        ApprovalGroup::Person(p) => person(p),
    }
}

/// `manager of manager of requester`, `creator`, `assignee`.
fn person(p: &PersonRef) -> String {
    let base = match &p.base {
        PersonBase::Creator(_) => "creator",
        PersonBase::Assignee(_) => "assignee",
        PersonBase::Field(f) => f.as_str(),
    };
    let mut out = String::with_capacity(p.managers.len() * "manager of ".len() + base.len());
    for _ in &p.managers {
        out.push_str("manager of ");
    }
    out.push_str(base);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_found_outside_strings_and_rhai_bodies() {
        let text = "role a \"x // y\" // one\n// two\r\nrule { // rhai }\n//three";
        let body = text.find("// rhai").unwrap_or(0);
        let found: Vec<&str> = scan_comments(text, std::slice::from_ref(&(body..body + 8)))
            .iter()
            .map(|c| c.text)
            .collect();
        assert_eq!(found, ["// one", "// two", "//three"]);
    }

    #[test]
    fn real_end_skips_trailing_whitespace_and_comments() {
        let text = "stage a initial // c\n  // d\n\n  stage b";
        let printer = Printer {
            text,
            out: String::new(),
            indent: 0,
            comments: scan_comments(text, &[]),
            next: 0,
            prev_end: None,
        };
        let span = Span::new(FileId(0), 0, text.len() - "stage b".len());
        assert_eq!(printer.real_end(span), "stage a initial".len());
        assert_eq!(printer.real_end(Span::new(FileId(0), 500, 600)), 500);
    }

    #[test]
    fn conditions_keep_the_parentheses_the_tree_needs() {
        let cmp = |name: &str| Condition::Compare {
            subject: Ident {
                name: name.to_string(),
                span: Span::default(),
            },
            op: Spanned::new(CmpOp::Eq, Span::default()),
            value: Literal {
                kind: LiteralKind::Integer(1),
                span: Span::default(),
            },
            span: Span::default(),
        };
        let or = Condition::Or(vec![cmp("a"), cmp("b")], Span::default());
        let and = Condition::And(vec![or.clone(), cmp("c")], Span::default());
        let not = Condition::Not(Box::new(and.clone()), Span::default());
        let nested_or = Condition::Or(vec![cmp("d"), or.clone()], Span::default());
        assert_eq!(condition(&and), "(a == 1 or b == 1) and c == 1");
        assert_eq!(condition(&not), "not ((a == 1 or b == 1) and c == 1)");
        assert_eq!(condition(&nested_or), "d == 1 or (a == 1 or b == 1)");
    }
}
