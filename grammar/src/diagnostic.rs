//! Diagnostics with stable codes, rendered as `file:line:col` with the source
//! line and a caret underline (human) or as JSON objects (tools, editors).
//!
//! Output stays bounded whatever the input: a source line longer than
//! [`MAX_SHOWN_LINE_CHARS`] is shown as a window of that many characters
//! around the column, with `…` where it is cut; messages are cut at
//! [`MAX_MESSAGE_CHARS`], and a user value quoted in an error ([`quoted`]) at
//! [`MAX_QUOTED_CHARS`].

use crate::ast::Span;
use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::{Files, Location, SimpleFile};
use codespan_reporting::term::{self, Config};
use serde::Serialize;
use std::ops::Range;

/// A source line longer than this (in characters) is shown cut to a window
/// of this many characters around the diagnostic's column: a 10 MB line
/// would otherwise be echoed whole, with a caret line as long, and a line
/// wider than a terminal hides where its caret points.
pub const MAX_SHOWN_LINE_CHARS: usize = 200;
/// How much of a cut line is shown before the column.
const SHOWN_BEFORE_COLUMN: usize = 80;
/// A message, label or help longer than this (in characters) is cut with `…`:
/// messages quote names from the rule text, which can be any length.
pub const MAX_MESSAGE_CHARS: usize = 400;
/// A user value quoted in an error: at most this many characters, then `…`,
/// so that a huge or secret-looking value is never echoed whole.
pub const MAX_QUOTED_CHARS: usize = 60;

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
    /// Other places worth showing, each with its text (e.g. where the parser
    /// gave up, beside the bracket that was never closed). Shown when the
    /// lines involved are short enough to print whole.
    pub secondary: Vec<(Span, String)>,
}

impl Diagnostic {
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Error, code, message: bounded(message.into()), span, label: None, help: None, secondary: Vec::new() }
    }
    pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, code, message: bounded(message.into()), span, label: None, help: None, secondary: Vec::new() }
    }
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(bounded(label.into()));
        self
    }
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(bounded(help.into()));
        self
    }
    pub fn with_secondary(mut self, span: Span, label: impl Into<String>) -> Self {
        self.secondary.push((span, bounded(label.into())));
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The diagnostics of one source file, in source order, after those of the
/// modules it imports that do not check.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Diagnostics {
    pub file: String,
    pub source: String,
    pub items: Vec<Diagnostic>,
    /// Imported modules with errors, each with its own file and text: their
    /// positions are in those files, not in this one.
    pub modules: Vec<Diagnostics>,
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
        Diagnostics { file: file.into(), source: source.into(), items, modules: Vec::new() }
    }

    /// These diagnostics, after those of imported modules that do not check.
    pub fn with_modules(mut self, modules: Vec<Diagnostics>) -> Self {
        self.modules = modules;
        self
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error) || self.modules.iter().any(Diagnostics::has_errors)
    }

    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count() + self.modules.iter().map(Diagnostics::error_count).sum::<usize>()
    }

    pub fn warning_count(&self) -> usize {
        self.items.iter().filter(|d| !d.is_error()).count() + self.modules.iter().map(Diagnostics::warning_count).sum::<usize>()
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.source, offset)
    }

    /// Human-readable text: `error[E0101]: ...`, ` --> file:line:col`, the
    /// source line and a caret underline, then `= help: ...`. A line longer
    /// than [`MAX_SHOWN_LINE_CHARS`] is shown cut around the column.
    pub fn render(&self, color: bool) -> String {
        let file = SimpleFile::new(self.file.as_str(), self.source.as_str());
        let config = Config { chars: term::Chars::ascii(), ..Config::default() };
        let mut out = Vec::new();
        for module in &self.modules {
            out.extend(module.render(color).into_bytes());
        }
        for d in &self.items {
            let range = clamp(&self.source, d.span);
            match Excerpt::of(&self.file, &self.source, range.clone()) {
                // An excerpt shows the primary place only (its lines stand in for the file's).
                Some(excerpt) => emit(&mut out, color, &config, &excerpt, d, excerpt.range.clone(), &[]),
                None => {
                    let secondary: Vec<(Range<usize>, &str)> = d.secondary.iter().map(|(span, text)| (clamp(&self.source, *span), text.as_str())).collect();
                    emit(&mut out, color, &config, &file, d, range, &secondary)
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    pub fn to_json(&self) -> Vec<JsonDiagnostic> {
        let modules = self.modules.iter().flat_map(Diagnostics::to_json);
        modules
            .chain(self.items.iter().map(|d| {
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
            }))
            .collect()
    }
}

/// Renders one diagnostic with its label on `range` of `files`' source.
fn emit<'f, F: Files<'f, FileId = ()>>(
    out: &mut Vec<u8>,
    color: bool,
    config: &Config,
    files: &'f F,
    d: &Diagnostic,
    range: Range<usize>,
    secondary: &[(Range<usize>, &str)],
) {
    let mut cs = match d.severity {
        Severity::Error => CsDiagnostic::error(),
        Severity::Warning => CsDiagnostic::warning(),
    }
    .with_code(d.code)
    .with_message(&d.message);
    let mut label = Label::primary((), range);
    if let Some(text) = &d.label {
        label = label.with_message(text);
    }
    let mut labels = vec![label];
    labels.extend(secondary.iter().map(|(range, text)| Label::secondary((), range.clone()).with_message(*text)));
    cs = cs.with_labels(labels);
    if let Some(help) = &d.help {
        cs = cs.with_notes(vec![format!("help: {help}")]);
    }
    // Rendering to memory only fails on a span outside the text, which `clamp` rules out.
    if color {
        let _ = term::emit(&mut term::termcolor::Ansi::new(out), config, files, &cs);
    } else {
        let _ = term::emit(&mut term::termcolor::NoColor::new(out), config, files, &cs);
    }
}

/// The lines a diagnostic shows, with every line longer than
/// [`MAX_SHOWN_LINE_CHARS`] cut to a window (`…` where it is cut), standing
/// in for the whole file: line numbers and the `file:line:col` header stay
/// those of the real file.
struct Excerpt<'a> {
    text: SimpleFile<&'a str, String>,
    /// 0-based index, in the real file, of the excerpt's first line.
    first_line: usize,
    /// The diagnostic's range in `text`.
    range: Range<usize>,
    /// Where the diagnostic starts in the real file.
    location: Location,
}

impl<'a> Excerpt<'a> {
    /// `None` when no line the range touches is too long to show whole
    /// (then the file is rendered as it is).
    fn of(name: &'a str, source: &str, range: Range<usize>) -> Option<Excerpt<'a>> {
        let first = source[..range.start].rfind('\n').map_or(0, |i| i + 1);
        let end = source[range.end..].find('\n').map_or(source.len(), |i| range.end + i);
        let too_long = |line: &str| line.len() > MAX_SHOWN_LINE_CHARS && line.chars().count() > MAX_SHOWN_LINE_CHARS;
        if !source[first..end].split('\n').any(too_long) {
            return None;
        }
        let mut text = String::new();
        let (mut start_at, mut end_at) = (0, 0);
        let mut line_start = first;
        for line in source[first..end].split('\n') {
            if line_start > first {
                text.push('\n');
            }
            let line_end = line_start + line.len();
            let here = |offset: usize| line_start <= offset && offset <= line_end;
            if !too_long(line) {
                let place = |offset: usize| text.len() + (offset - line_start);
                if here(range.start) {
                    start_at = place(range.start);
                }
                if here(range.end) {
                    end_at = place(range.end);
                }
                text.push_str(line);
            } else {
                // The window follows the start of the range on its line, the
                // end on the last line, and shows a line in between from its start.
                let anchor = if here(range.start) {
                    range.start
                } else if here(range.end) {
                    range.end
                } else {
                    line_start
                };
                let chars = line.chars().count();
                let column = line[..anchor - line_start].chars().count();
                let from = column.saturating_sub(SHOWN_BEFORE_COLUMN).min(chars - MAX_SHOWN_LINE_CHARS);
                let to = from + MAX_SHOWN_LINE_CHARS;
                let byte_of = |c: usize| line.char_indices().nth(c).map_or(line.len(), |(i, _)| i);
                let (from_byte, to_byte) = (byte_of(from), byte_of(to));
                if from > 0 {
                    text.push('…');
                }
                let window_start = text.len();
                text.push_str(&line[from_byte..to_byte]);
                if to < chars {
                    text.push('…');
                }
                // An offset past the window lands after its `…`, so that the
                // caret runs on under it: the range goes on.
                let place = |offset: usize, text_len: usize| {
                    let within = offset - line_start;
                    if within < from_byte {
                        window_start
                    } else if within > to_byte {
                        text_len
                    } else {
                        window_start + (within - from_byte)
                    }
                };
                if here(range.start) {
                    start_at = place(range.start, text.len());
                }
                if here(range.end) {
                    end_at = place(range.end, text.len());
                }
            }
            line_start = line_end + 1;
        }
        let (line_number, column_number) = line_col(source, range.start);
        Some(Excerpt {
            text: SimpleFile::new(name, text),
            first_line: line_number - 1,
            range: start_at..end_at.max(start_at),
            location: Location { line_number, column_number },
        })
    }
}

impl<'a> Files<'a> for Excerpt<'a> {
    type FileId = ();
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, (): ()) -> Result<&'a str, codespan_reporting::files::Error> {
        Ok(self.text.name())
    }

    fn source(&'a self, (): ()) -> Result<&'a str, codespan_reporting::files::Error> {
        Ok(self.text.source().as_str())
    }

    fn line_index(&'a self, (): (), byte_index: usize) -> Result<usize, codespan_reporting::files::Error> {
        self.text.line_index((), byte_index)
    }

    fn line_number(&'a self, (): (), line_index: usize) -> Result<usize, codespan_reporting::files::Error> {
        Ok(self.first_line + line_index + 1)
    }

    /// The header's `line:col` is the real file's, not the excerpt's.
    fn location(&'a self, (): (), byte_index: usize) -> Result<Location, codespan_reporting::files::Error> {
        if byte_index == self.range.start {
            return Ok(self.location);
        }
        let line_index = self.line_index((), byte_index)?;
        Ok(Location { line_number: self.line_number((), line_index)?, column_number: self.column_number((), line_index, byte_index)? })
    }

    fn line_range(&'a self, (): (), line_index: usize) -> Result<Range<usize>, codespan_reporting::files::Error> {
        self.text.line_range((), line_index)
    }
}

/// A user value as an error quotes it: in double quotes, at most
/// [`MAX_QUOTED_CHARS`] characters, then `…` when it goes on.
pub fn quoted(value: &str) -> String {
    match value.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{:?}…", &value[..cut]),
        None => format!("{value:?}"),
    }
}

/// A JSON value as an error quotes it: text as [`quoted`], anything else
/// as JSON cut at [`MAX_QUOTED_CHARS`] characters.
pub fn quoted_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => quoted(text),
        other => shorten(&other.to_string(), MAX_QUOTED_CHARS),
    }
}

/// `text` cut to `max` characters, with `…` when it was cut.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn bounded(text: String) -> String {
    if text.len() <= MAX_MESSAGE_CHARS {
        text
    } else {
        shorten(&text, MAX_MESSAGE_CHARS)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str, span: Span) -> String {
        let d = Diagnostic::error("E0001", span, "bad").with_label("here");
        Diagnostics::new("f.cavra", source, vec![d]).render(false)
    }

    #[test]
    fn a_long_line_is_shown_as_a_window_around_the_column() {
        let source = format!("pack p\nlet a = {} oops\n", "x".repeat(100_000));
        let at = source.find("oops").unwrap();
        let out = render(&source, Span::new(at, at + 4));
        assert!(out.len() < 1_000, "{out}");
        // The header names the real line and column.
        assert!(out.contains("--> f.cavra:2:100010"), "{out}");
        let shown = out.lines().find(|l| l.starts_with("2 | ")).unwrap();
        assert!(shown.starts_with("2 | …x") && shown.ends_with("x oops"), "{shown}");
        let carets = out.lines().find(|l| l.contains('^')).unwrap();
        // The carets sit under `oops` in the window.
        assert_eq!(carets.find('^').map(|i| &shown[shown.char_indices().nth(i).unwrap().0..]), Some("oops"), "{out}");
    }

    #[test]
    fn a_long_range_ends_its_carets_under_the_cut() {
        let source = format!("pack p\nlet a = \"{}\"\n", "y".repeat(10_000));
        let out = render(&source, Span::new(15, source.len() - 1));
        assert!(out.len() < 1_000, "{out}");
        let shown = out.lines().find(|l| l.starts_with("2 | ")).unwrap();
        assert!(shown.ends_with("y…"), "{shown}");
        let carets = out.lines().find(|l| l.contains('^')).unwrap();
        assert_eq!(carets.matches('^').count(), MAX_SHOWN_LINE_CHARS - 8 + 1, "{out}");
    }

    #[test]
    fn lines_up_to_the_limit_are_shown_whole() {
        let line = format!("let a = {} oops", "x".repeat(MAX_SHOWN_LINE_CHARS - 13));
        let source = format!("pack p\n{line}\n");
        let at = source.find("oops").unwrap();
        let out = render(&source, Span::new(at, at + 4));
        assert!(out.contains(&format!("2 | {line}\n")), "{out}");
        assert!(!out.contains('…'), "{out}");
    }

    #[test]
    fn short_lines_render_as_before() {
        let source = "pack p\nlet a = 1 +\n";
        let out = render(source, Span::new(17, 18));
        assert_eq!(out, "error[E0001]: bad\n  --> f.cavra:2:11\n  |\n2 | let a = 1 +\n  |           ^ here\n\n");
    }

    #[test]
    fn values_and_messages_are_quoted_by_a_prefix() {
        assert_eq!(quoted("Europe/Berlin"), "\"Europe/Berlin\"");
        let secret = "s".repeat(1_000_000);
        assert_eq!(quoted(&secret), format!("\"{}\"…", "s".repeat(MAX_QUOTED_CHARS)));
        assert_eq!(quoted_json(&serde_json::json!([1, 2])), "[1,2]");
        assert!(quoted_json(&serde_json::json!({ "k": secret })).chars().count() <= MAX_QUOTED_CHARS + 1);
        let d = Diagnostic::error("E0101", Span::new(0, 1), format!("unknown name `{secret}`")).with_help(secret.clone());
        assert_eq!(d.message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(d.message.ends_with('…') && d.help.as_deref().is_some_and(|h| h.len() < 1_000));
    }
}
