//! What the server answers, each from one analysis of the document
//! ([`cavra_engine::analysis`]): diagnostics (the codes and messages of
//! `cavra check`), hover, go to definition, completion, the outline and
//! formatting (`cavra fmt`).

use crate::convert::{file_uri, LineIndex};
use cavra_engine::analysis::{self, Analysis, Reference, SymbolKind};
use cavra_engine::{Diagnostics, Severity, Span};
use cavra_grammar::ast::{self, Item};
use lsp_types as lsp;
use lsp_types::{CompletionItem, CompletionItemKind, DocumentSymbol, Hover, HoverContents, Location, MarkupContent, MarkupKind, Position, TextEdit, Url};

const BUILT_IN_TYPES: &[&str] = &["text", "number", "bool", "time", "duration", "recurrence", "list", "map"];

/// The name completion puts where the cursor is, so that a document being
/// typed (`w.`) still parses and its field read can be typed.
const PLACEHOLDER: &str = "cavra_completion_placeholder";

/// The document's diagnostics, and those of modules it imports that do not
/// check (published for their own files).
pub fn diagnostics(uri: &Url, text: &str, analysis: &Analysis) -> Vec<(Url, Vec<lsp::Diagnostic>)> {
    let mut out = vec![(uri.clone(), convert_diagnostics(text, &analysis.diagnostics))];
    for module in &analysis.diagnostics.modules {
        if let Some(module_uri) = file_uri(&module.file) {
            out.push((module_uri, convert_diagnostics(&module.source, module)));
        }
    }
    out
}

fn convert_diagnostics(text: &str, diagnostics: &Diagnostics) -> Vec<lsp::Diagnostic> {
    let index = LineIndex::new(text);
    diagnostics
        .items
        .iter()
        .map(|d| {
            let mut message = d.message.clone();
            if let Some(help) = &d.help {
                message.push_str("\nhelp: ");
                message.push_str(help);
            }
            lsp::Diagnostic {
                range: index.range(d.span),
                severity: Some(match d.severity {
                    Severity::Error => lsp::DiagnosticSeverity::ERROR,
                    Severity::Warning => lsp::DiagnosticSeverity::WARNING,
                }),
                code: Some(lsp::NumberOrString::String(d.code.to_string())),
                source: Some("cavra".to_string()),
                message,
                ..lsp::Diagnostic::default()
            }
        })
        .collect()
}

/// The innermost reference at `offset` of the document (offsets of the
/// document are those of the analysis: it comes first in its text).
fn reference_at(analysis: &Analysis, offset: usize) -> Option<&Reference> {
    analysis.facts.references.iter().filter(|r| contains(r.span, offset)).min_by_key(|r| r.span.end - r.span.start)
}

/// Whether the cursor is on the span (just after its end counts: the
/// cursor after a name is still on it).
fn contains(span: Span, offset: usize) -> bool {
    span.start <= offset && offset <= span.end
}

/// The type of the name or the innermost expression under the cursor.
pub fn hover(text: &str, analysis: &Analysis, position: Position) -> Option<Hover> {
    let index = LineIndex::new(text);
    let offset = index.offset(position);
    let (shown, span) = match reference_at(analysis, offset) {
        Some(r) => {
            let what = match r.kind {
                SymbolKind::Type => format!("type {}", r.name),
                SymbolKind::Field => format!("(field) {}: {}", r.name, r.ty),
                SymbolKind::Input => format!("input {}: {}", r.name, r.ty),
                SymbolKind::Let => format!("let {}: {}", r.name, r.ty),
                SymbolKind::Variable => format!("(variable) {}: {}", r.name, r.ty),
            };
            (what, r.span)
        }
        None => {
            let (span, ty) =
                analysis.facts.types.iter().filter(|(span, _)| span.start <= offset && offset < span.end).min_by_key(|(span, _)| span.end - span.start)?;
            let expression: String = text.get(span.start..span.end).unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ");
            (format!("{}: {ty}", cavra_grammar::diagnostic::shorten(&expression, 60)), *span)
        }
    };
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: format!("```cavra\n{shown}\n```") }),
        range: Some(index.range(span)),
    })
}

/// Where the name under the cursor is declared: in this document or in a module on disk.
pub fn definition(uri: &Url, text: &str, analysis: &Analysis, position: Position) -> Option<Location> {
    let offset = LineIndex::new(text).offset(position);
    let target = reference_at(analysis, offset)?.target;
    let (file, local) = analysis.locate(target.start)?;
    let file_text = analysis.source.get(file.start..file.start + file.len)?;
    let range = LineIndex::new(file_text).range(Span::new(local, local + (target.end - target.start)));
    let target_uri = if file.start == 0 { uri.clone() } else { file_uri(&file.name)? };
    Some(Location::new(target_uri, range))
}

/// Fields after `.`, else keywords, built-in functions and types, and the
/// document's inputs, lets and record types. `current` is the analysis of
/// `text`; `analyze` analyses the patched texts completion needs.
pub fn completion(text: &str, current: &Analysis, position: Position, analyze: impl Fn(&str) -> Analysis) -> Vec<CompletionItem> {
    let offset = LineIndex::new(text).offset(position);
    let before = &text[..offset];
    let word_start = before.trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_').len();
    if before[..word_start].ends_with('.') {
        return field_completion(text, offset, word_start, analyze);
    }
    let mut items: Vec<CompletionItem> = Vec::new();
    let mut push = |label: &str, kind: CompletionItemKind, detail: Option<String>| {
        if !items.iter().any(|i| i.label == label) {
            items.push(CompletionItem { label: label.to_string(), kind: Some(kind), detail, ..CompletionItem::default() });
        }
    };
    // The names come from the document as it was last whole; typing breaks it.
    let mut patched = text.to_string();
    patched.replace_range(word_start..offset, "");
    let patched = analyze(&patched);
    let analysis = if patched.ast.is_some() { &patched } else { current };
    for r in &analysis.facts.references {
        match r.kind {
            SymbolKind::Input => push(&r.name, CompletionItemKind::VARIABLE, Some(format!("input {}", r.ty))),
            SymbolKind::Let => push(&r.name, CompletionItemKind::CONSTANT, Some(format!("let {}", r.ty))),
            SymbolKind::Type => push(&r.name, CompletionItemKind::STRUCT, Some("type".to_string())),
            SymbolKind::Field | SymbolKind::Variable => {}
        }
    }
    for name in analysis::builtin_names() {
        push(name, CompletionItemKind::FUNCTION, Some("built-in function".to_string()));
    }
    for word in cavra_grammar::KEYWORDS {
        push(word, CompletionItemKind::KEYWORD, None);
    }
    for word in BUILT_IN_TYPES {
        push(word, CompletionItemKind::STRUCT, Some("built-in type".to_string()));
    }
    items
}

/// The fields of the record read before the `.` at `word_start`: the
/// document is analysed with a placeholder name there, whose field read
/// tells the record type.
fn field_completion(text: &str, offset: usize, word_start: usize, analyze: impl Fn(&str) -> Analysis) -> Vec<CompletionItem> {
    let mut patched = String::with_capacity(text.len() + PLACEHOLDER.len());
    patched.push_str(&text[..word_start]);
    patched.push_str(PLACEHOLDER);
    patched.push_str(&text[offset..]);
    let analysis = analyze(&patched);
    let Some((_, record)) = analysis.facts.field_reads.iter().find(|(span, _)| span.start == word_start) else { return Vec::new() };
    let Some(record) = analysis.facts.records.iter().find(|r| &r.name == record) else { return Vec::new() };
    record
        .fields
        .iter()
        .map(|(name, ty, _)| CompletionItem {
            label: name.clone(),
            kind: Some(CompletionItemKind::FIELD),
            detail: Some(format!("{}.{name}: {ty}", record.name)),
            ..CompletionItem::default()
        })
        .collect()
}

/// The outline: types (with their fields), inputs, lets, decisions (with
/// their arms) and readiness gates.
pub fn symbols(text: &str, pack: &ast::Pack) -> Vec<DocumentSymbol> {
    let index = LineIndex::new(text);
    let symbol = |name: &str, detail: Option<String>, kind: lsp::SymbolKind, span: Span, selection: Span, children: Vec<DocumentSymbol>| {
        #[allow(deprecated)] // `deprecated` is a required field of the struct, superseded by `tags`.
        DocumentSymbol {
            name: name.to_string(),
            detail,
            kind,
            tags: None,
            deprecated: None,
            range: index.range(span),
            selection_range: index.range(selection),
            children: (!children.is_empty()).then_some(children),
        }
    };
    pack.items
        .iter()
        .map(|item| match item {
            Item::Type(t) => {
                let fields = t
                    .fields
                    .iter()
                    .map(|f| symbol(&f.name.name, Some(cavra_grammar::format::type_expr_text(&f.ty)), lsp::SymbolKind::FIELD, f.span, f.name.span, Vec::new()))
                    .collect();
                symbol(&t.name.name, Some("type".to_string()), lsp::SymbolKind::STRUCT, t.span, t.name.span, fields)
            }
            Item::Input(i) => {
                let detail = format!("{}input: {}", if i.is_static { "static " } else { "" }, cavra_grammar::format::type_expr_text(&i.ty));
                symbol(&i.name.name, Some(detail), lsp::SymbolKind::VARIABLE, i.span, i.name.span, Vec::new())
            }
            Item::Let(l) => symbol(&l.name.name, Some("let".to_string()), lsp::SymbolKind::CONSTANT, l.span, l.name.span, Vec::new()),
            Item::Decision(d) => {
                let arms = d
                    .arms
                    .iter()
                    .map(|a| {
                        let label =
                            format!("when … => {}{}", a.outcome.action.name, a.outcome.category.as_ref().map(|c| format!(" {}", c.name)).unwrap_or_default());
                        symbol(&label, None, lsp::SymbolKind::EVENT, a.span, a.outcome.action.span, Vec::new())
                    })
                    .chain(d.otherwise.iter().map(|o| {
                        symbol(&format!("otherwise => {}", o.outcome.action.name), None, lsp::SymbolKind::EVENT, o.span, o.outcome.action.span, Vec::new())
                    }))
                    .collect();
                symbol(&d.name.name, Some("decision".to_string()), lsp::SymbolKind::FUNCTION, d.span, d.name.span, arms)
            }
            Item::Readiness(r) => {
                let checks =
                    r.checks.iter().map(|c| symbol(&c.id.name, Some("check".to_string()), lsp::SymbolKind::EVENT, c.span, c.id.span, Vec::new())).collect();
                symbol(&r.name.name, Some("readiness".to_string()), lsp::SymbolKind::CLASS, r.span, r.name.span, checks)
            }
        })
        .collect()
}

/// `cavra fmt` of the document as one edit; none when it is already formatted
/// or does not parse.
pub fn formatting(text: &str, file: &str) -> Vec<TextEdit> {
    let Ok(pack) = cavra_grammar::parse(file, text) else { return Vec::new() };
    let formatted = cavra_grammar::format(&pack, text);
    if formatted == text {
        return Vec::new();
    }
    vec![TextEdit { range: LineIndex::new(text).whole(), new_text: formatted }]
}
