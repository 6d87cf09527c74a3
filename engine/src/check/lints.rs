//! Warnings: arms that can never match (`W0400`), conditions that are
//! always false (`W0402`) and lets that are never used (`W0401`).

use super::Checker;
use crate::fold::{fold, is_closed};
use crate::ir::*;
use crate::value::Value;
use cavra_grammar::ast::{self, Span};
use cavra_grammar::diagnostic::{line_col, Diagnostic};

/// What the earlier arms of one decision settle about the later ones.
#[derive(Default)]
pub(super) struct Arms {
    /// The condition texts so far (whitespace normalised), with their spans.
    seen_conditions: Vec<(String, Span)>,
    /// The first arm whose condition is always true.
    always: Option<Span>,
}

impl Checker<'_> {
    /// `W0400`/`W0402` for an arm whose condition checked without errors
    /// (a condition with an error has no meaningful value).
    pub(super) fn lint_arm(&mut self, arms: &mut Arms, condition: &Node, written: &ast::Expr) {
        let text = self.snippet(written.span);
        if let Some(earlier) = arms.always {
            let (line, _) = line_col(self.source, earlier.start);
            self.diags.push(
                Diagnostic::warning("W0400", written.span, "this arm can never match")
                    .with_label("unreachable")
                    .with_help(format!("the arm on line {line} always matches first")),
            );
        } else if let Some((_, earlier)) = arms.seen_conditions.iter().find(|(t, _)| *t == text) {
            let (line, _) = line_col(self.source, earlier.start);
            self.diags.push(
                Diagnostic::warning("W0400", written.span, "this arm can never match")
                    .with_label("unreachable")
                    .with_help(format!("the arm on line {line} has the same condition and matches first")),
            );
        }
        match const_bool(condition) {
            Some(true) if arms.always.is_none() => arms.always = Some(written.span),
            Some(false) => self.diags.push(Diagnostic::warning("W0402", written.span, "this condition is always false").with_label("never matches")),
            _ => {}
        }
        arms.seen_conditions.push((text, written.span));
    }

    /// `W0400` for an `otherwise` after an arm that always matches.
    pub(super) fn lint_otherwise(&mut self, arms: &Arms, span: Span) {
        if let Some(earlier) = arms.always {
            let (line, _) = line_col(self.source, earlier.start);
            self.diags.push(
                Diagnostic::warning("W0400", span, "`otherwise` can never be reached")
                    .with_label("unreachable")
                    .with_help(format!("the arm on line {line} always matches first")),
            );
        }
    }

    /// `W0401` for every let no expression mentions (unless named `_...`).
    pub(super) fn warn_unused_lets(&mut self) {
        for (i, decl) in self.let_decls.iter().enumerate() {
            if !self.let_used[i] && !decl.name.name.starts_with('_') {
                self.diags.push(
                    Diagnostic::warning("W0401", decl.name.span, format!("`{}` is never used", decl.name.name))
                        .with_label("unused let")
                        .with_help("remove it, or start its name with `_`"),
                );
            }
        }
    }
}

/// The value of a condition known without any input, if it has one.
fn const_bool(node: &Node) -> Option<bool> {
    // Only an expression without inputs, lets or outer variables can be constant.
    if !is_closed(node, &mut Vec::new()) && !matches!(node.kind, Kind::Or(..) | Kind::And(..)) {
        return None;
    }
    let folded = fold(node.clone(), &[]);
    match folded.as_const() {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    }
}
