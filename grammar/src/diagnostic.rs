//! Diagnostics with stable codes, rendered as `file:line:col` with the source
//! line and a caret underline (human) or as JSON objects (tools, editors).

use crate::ast::Span;
use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, Config};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a rule file.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable code, e.g. `E0101`; listed in docs/language.md.
    pub code: &'static str,
    pub message: String,
    pub span: Span,
    /// Short text printed under the caret.
    pub label: Option<String>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Error, code, message: message.into(), span, label: None, help: None }
    }
    pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, code, message: message.into(), span, label: None, help: None }
    }
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
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

/// The diagnostics of one source file, in source order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Diagnostics {
    pub file: String,
    pub source: String,
    pub items: Vec<Diagnostic>,
}

/// The JSON shape of `--error-format json`: one object per diagnostic.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct JsonDiagnostic {
    pub file: String,
    pub severity: Severity,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub code: String,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostics {
    pub fn new(file: impl Into<String>, source: impl Into<String>, mut items: Vec<Diagnostic>) -> Self {
        items.sort_by_key(|d| (d.span.start, d.span.end));
        Diagnostics { file: file.into(), source: source.into(), items }
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.items.len() - self.error_count()
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.source, offset)
    }

    /// Human-readable text: `error[E0101]: ...`, ` --> file:line:col`, the
    /// source line and a caret underline, then `= help: ...`.
    pub fn render(&self, color: bool) -> String {
        let file = SimpleFile::new(self.file.as_str(), self.source.as_str());
        let config = Config { chars: term::Chars::ascii(), ..Config::default() };
        let mut out = Vec::new();
        for d in &self.items {
            let mut cs = match d.severity {
                Severity::Error => CsDiagnostic::error(),
                Severity::Warning => CsDiagnostic::warning(),
            }
            .with_code(d.code)
            .with_message(&d.message);
            let range = clamp(&self.source, d.span);
            let mut label = Label::primary((), range);
            if let Some(text) = &d.label {
                label = label.with_message(text);
            }
            cs = cs.with_labels(vec![label]);
            if let Some(help) = &d.help {
                cs = cs.with_notes(vec![format!("help: {help}")]);
            }
            if color {
                let mut w = term::termcolor::Ansi::new(&mut out);
                let _ = term::emit(&mut w, &config, &file, &cs);
            } else {
                let mut w = term::termcolor::NoColor::new(&mut out);
                let _ = term::emit(&mut w, &config, &file, &cs);
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    pub fn to_json(&self) -> Vec<JsonDiagnostic> {
        self.items
            .iter()
            .map(|d| {
                let range = clamp(&self.source, d.span);
                let (line, column) = self.line_col(range.start);
                let (end_line, end_column) = self.line_col(range.end);
                JsonDiagnostic {
                    file: self.file.clone(),
                    severity: d.severity,
                    line,
                    column,
                    end_line,
                    end_column,
                    code: d.code.to_string(),
                    message: d.message.clone(),
                    help: d.help.clone(),
                }
            })
            .collect()
    }
}

fn clamp(source: &str, span: Span) -> std::ops::Range<usize> {
    let mut start = span.start.min(source.len());
    let mut end = span.end.min(source.len()).max(start);
    while !source.is_char_boundary(start) {
        start -= 1;
    }
    while !source.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..floor_char_boundary(source, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Levenshtein distance, for "did you mean" help.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate within a third of the name's length, or one that
/// the name starts with (`lowercase` -> `lower`), if any.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| {
            let prefix = c.len() >= 3 && (name.starts_with(c) || c.starts_with(name)) && name.len() >= 3;
            (if prefix { 1 } else { edit_distance(name, c) }, c)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, c.len()))
        .map(|(_, c)| c)
}
