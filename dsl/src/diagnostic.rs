//! Diagnostics: every problem found in a project, with a stable code, a location, labels and
//! help, rendered as text for people (through miette, without colour so snapshots are stable)
//! or as JSON for editors and CI.
//!
//! Message style: lowercase, no trailing period, names from the user's file in backticks,
//! domain words rather than Rust type names.
//!
//! Positions are 1-based lines and columns, and columns count characters (Unicode scalar
//! values), not bytes, in both formats: `é` or `—` is one column. (miette counts bytes; the
//! text report gives it the file through `CharColumns`, which converts.)

use std::fmt;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceSpan, SpanContents,
};
use serde::Serialize;

use crate::ast::Span;
use crate::source::Sources;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Stable, documented code, e.g. `unknown-name`; tools match on it.
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    /// Where the problem is.
    pub span: Span,
    /// What the primary span shows; may be empty.
    pub label: String,
    /// Related places ("first defined here").
    pub secondary: Vec<(Span, String)>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            span,
            label: String::new(),
            secondary: Vec::new(),
            help: None,
        }
    }

    pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, span, message)
        }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn with_secondary(mut self, span: Span, label: impl Into<String>) -> Self {
        self.secondary.push((span, label.into()));
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sort diagnostics by file and position, so reports read top to bottom.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (a.span.file, a.span.start, a.span.end, a.code, &a.message).cmp(&(
            b.span.file,
            b.span.start,
            b.span.end,
            b.code,
            &b.message,
        ))
    });
}

// ---------------------------------------------------------------------------------------------
// Text

/// Render diagnostics for a terminal, with source snippets, followed by a one-line summary.
pub fn render_text(sources: &Sources, diagnostics: &[Diagnostic]) -> String {
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .with_links(false);
    let mut out = String::new();
    for d in diagnostics {
        let report = MietteReport::new(sources, d);
        if handler.render_report(&mut out, &report).is_err() {
            out.push_str(&format!("{}: {}\n", sources.location(d.span), d.message));
        }
    }
    out.push_str(&summary(diagnostics));
    out.push('\n');
    out
}

/// `2 errors, 1 warning` or `no problems found`.
pub fn summary(diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match (errors, warnings) {
        (0, 0) => "no problems found".to_string(),
        (e, 0) => plural(e, "error"),
        (0, w) => plural(w, "warning"),
        (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    }
}

/// Adapter from our diagnostic to miette's, for rendering only.
#[derive(Debug)]
struct MietteReport<'a> {
    diagnostic: &'a Diagnostic,
    source: Option<CharColumns>,
    labels: Vec<LabeledSpan>,
    help: Option<String>,
}

impl<'a> MietteReport<'a> {
    fn new(sources: &Sources, d: &'a Diagnostic) -> Self {
        let file = sources.get(d.span.file);
        let source = file.map(|f| CharColumns {
            name: f.name.clone(),
            text: f.text.clone(),
        });
        let clamp = |span: Span| {
            let len = file.map(|f| f.text.len()).unwrap_or(0);
            let start = (span.start as usize).min(len);
            let end = (span.end as usize).clamp(start, len);
            (start, end - start)
        };
        let fits = |span: Span| {
            file.is_some_and(|f| {
                within_label_column(&f.text, span.start as usize)
                    && within_label_column(&f.text, span.end as usize)
            })
        };
        let mut labels = Vec::new();
        let mut notes = Vec::new();
        if fits(d.span) {
            let label = (!d.label.is_empty()).then(|| d.label.clone());
            labels.push(LabeledSpan::new_primary_with_span(label, clamp(d.span)));
        } else {
            let label = if d.label.is_empty() { "here" } else { &d.label };
            notes.push(format!("{label}: {}", sources.location(d.span)));
        }
        for (span, text) in &d.secondary {
            if span.file == d.span.file && fits(*span) {
                labels.push(LabeledSpan::new_with_span(Some(text.clone()), clamp(*span)));
            } else {
                notes.push(format!("{text}: {}", sources.location(*span)));
            }
        }
        let help = match (&d.help, notes.is_empty()) {
            (Some(h), true) => Some(h.clone()),
            (None, true) => None,
            (h, false) => {
                let mut all: Vec<String> = h.iter().cloned().collect();
                all.extend(notes);
                Some(all.join("\n"))
            }
        };
        MietteReport {
            diagnostic: d,
            source,
            labels,
            help,
        }
    }
}

/// How far into its line (in bytes) a label may start or end to be drawn under the line.
/// miette pads an underline to its column with a formatting width, which Rust limits to 65,535,
/// and panics beyond it; with tabs drawn up to 8 columns wide, this keeps well below. A label
/// further along a line is listed in the help as `label: file:line:column` instead.
const MAX_LABEL_COLUMN: usize = 8_000;

/// Whether byte `offset` of `text` is at most [`MAX_LABEL_COLUMN`] bytes into its line.
fn within_label_column(text: &str, offset: usize) -> bool {
    let offset = offset.min(text.len());
    let line_start = text
        .as_bytes()
        .get(..offset)
        .and_then(|before| before.iter().rposition(|&b| b == b'\n'))
        .map_or(0, |i| i + 1);
    offset - line_start <= MAX_LABEL_COLUMN
}

/// A file for miette, named, and with columns in characters like everywhere else (miette's own
/// `SourceCode` for strings counts the column in bytes).
#[derive(Debug)]
struct CharColumns {
    name: String,
    text: String,
}

impl miette::SourceCode for CharColumns {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self
            .text
            .read_span(span, context_lines_before, context_lines_after)?;
        // miette's column is the number of bytes between the line's start and the span's.
        let mut column = inner.column();
        let offset = span.offset().min(self.text.len());
        if let Some(before) = offset
            .checked_sub(column)
            .and_then(|line_start| self.text.get(line_start..offset))
        {
            // A byte-order mark is not a column: editors do not show it.
            column = before
                .strip_prefix('\u{feff}')
                .unwrap_or(before)
                .chars()
                .count();
        }
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            column,
            inner.line_count(),
        )))
    }
}

impl fmt::Display for MietteReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for MietteReport<'_> {}

impl miette::Diagnostic for MietteReport<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diagnostic.code))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }
}

// ---------------------------------------------------------------------------------------------
// JSON

/// Where a span is: 1-based lines and columns, columns in characters.
#[derive(Serialize)]
struct JsonPosition {
    file: String,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
}

#[derive(Serialize)]
struct JsonLabel {
    #[serde(flatten)]
    position: JsonPosition,
    message: String,
}

#[derive(Serialize)]
struct JsonDiagnostic {
    code: &'static str,
    severity: Severity,
    message: String,
    #[serde(flatten)]
    position: JsonPosition,
    label: String,
    related: Vec<JsonLabel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<String>,
}

#[derive(Serialize)]
struct JsonReport {
    errors: usize,
    warnings: usize,
    diagnostics: Vec<JsonDiagnostic>,
}

fn position(sources: &Sources, span: Span) -> JsonPosition {
    match sources.get(span.file) {
        Some(f) => {
            let (line, column) = f.line_col(span.start as usize);
            let (end_line, end_column) = f.line_col(span.end as usize);
            JsonPosition {
                file: f.name.clone(),
                line,
                column,
                end_line,
                end_column,
            }
        }
        None => JsonPosition {
            file: String::new(),
            line: 0,
            column: 0,
            end_line: 0,
            end_column: 0,
        },
    }
}

/// The diagnostics as one JSON document: `{"errors", "warnings", "diagnostics": [...]}`.
pub fn to_json(sources: &Sources, diagnostics: &[Diagnostic]) -> serde_json::Value {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let report = JsonReport {
        errors,
        warnings: diagnostics.len() - errors,
        diagnostics: diagnostics
            .iter()
            .map(|d| JsonDiagnostic {
                code: d.code,
                severity: d.severity,
                message: d.message.clone(),
                position: position(sources, d.span),
                label: d.label.clone(),
                related: d
                    .secondary
                    .iter()
                    .map(|(s, m)| JsonLabel {
                        position: position(sources, *s),
                        message: m.clone(),
                    })
                    .collect(),
                help: d.help.clone(),
            })
            .collect(),
    };
    serde_json::to_value(report).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// miette cannot draw a label past column 65,535 (it panics); such a label is listed in the
    /// help instead, and the others are still drawn.
    #[test]
    fn labels_far_along_a_line_are_listed_in_the_help() {
        let text = format!("role a\nprocess p {{{}x }}\n", " ".repeat(70_000));
        let mut sources = Sources::new();
        let id = sources.add("x.itsm", text.as_str());
        let far = text.find('x').unwrap_or(0);
        let d = Diagnostic::error("code", Span::new(id, far, far + 1), "far along")
            .with_label("here it is")
            .with_secondary(Span::new(id, 5, 6), "near");
        let out = render_text(&sources, &[d]);
        assert!(out.contains("here it is: x.itsm:2:70012"), "{out}");
        assert!(out.contains("near"), "{out}");
        assert!(within_label_column(&text, 5));
        assert!(!within_label_column(&text, far));
    }
}
