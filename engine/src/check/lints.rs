//! Warnings: arms that can never match (`W0400`, or `W0404` when the arms
//! before them cover every case), conditions that are always false
//! (`W0402`: a constant, or tests that contradict each other) or always true
//! (`W0403`: tests that cover every value), lets that are never used
//! (`W0401`) and inputs that are never read (`W0405`). What tests settle is
//! worked out in `logic.rs`.

use super::logic::{covered, exhaustive, settled, Reading, Settled};
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
    /// Each earlier arm's condition, read as tests, with its span.
    readings: Vec<(Reading, Span)>,
}

impl Checker<'_> {
    /// `W0400`/`W0402` for an arm whose condition checked without errors
    /// (a condition with an error has no meaningful value).
    pub(super) fn lint_arm(&mut self, arms: &mut Arms, condition: &Node, written: &ast::Expr) {
        let text = self.snippet(written.span);
        let reading = Reading::of(condition, &|span| self.snippet(span));
        let mut unreachable = true;
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
        } else if covered(&reading, &arms.readings.iter().map(|(r, _)| r).collect::<Vec<_>>()) {
            self.diags.push(
                Diagnostic::warning("W0404", written.span, "this arm can never match: the arms before it cover every case it matches")
                    .with_label("covered")
                    .with_help(format!("{} first; remove this arm or narrow the ones before it", self.earlier_arms(arms))),
            );
        } else {
            unreachable = false;
        }
        match const_bool(condition) {
            Some(true) if arms.always.is_none() => arms.always = Some(written.span),
            Some(false) => self.diags.push(Diagnostic::warning("W0402", written.span, "this condition is always false").with_label("never matches")),
            Some(true) => {}
            None => match settled(&reading) {
                Some(Settled::Always) => {
                    if !unreachable {
                        self.diags.push(
                            Diagnostic::warning("W0403", written.span, "this condition is always true: its tests cover every value")
                                .with_label("always matches")
                                .with_help("write `otherwise` instead, or fix the test that should narrow it"),
                        );
                    }
                    arms.always.get_or_insert(written.span);
                }
                Some(Settled::Never) => self.diags.push(
                    Diagnostic::warning("W0402", written.span, "this condition is always false: its tests contradict each other")
                        .with_label("never matches")
                        .with_help("no value satisfies every test it joins with `and`"),
                ),
                None => {}
            },
        }
        arms.seen_conditions.push((text, written.span));
        arms.readings.push((reading, written.span));
    }

    /// `W0400` for an `otherwise` after an arm that always matches; `W0404`
    /// when the arms before it together match every case.
    pub(super) fn lint_otherwise(&mut self, arms: &Arms, span: Span) {
        if let Some(earlier) = arms.always {
            let (line, _) = line_col(self.source, earlier.start);
            self.diags.push(
                Diagnostic::warning("W0400", span, "`otherwise` can never be reached")
                    .with_label("unreachable")
                    .with_help(format!("the arm on line {line} always matches first")),
            );
        } else if exhaustive(&arms.readings.iter().map(|(r, _)| r).collect::<Vec<_>>()) {
            self.diags.push(
                Diagnostic::warning("W0404", span, "`otherwise` can never be reached: the arms before it cover every case")
                    .with_label("unreachable")
                    .with_help(format!("{} first; make the last of them `otherwise`", self.earlier_arms(arms))),
            );
        }
    }

    /// "the arm on line 3 matches" / "the arms on lines 3, 5 match".
    fn earlier_arms(&self, arms: &Arms) -> String {
        let lines: Vec<String> = arms.readings.iter().map(|(_, span)| line_col(self.source, span.start).0.to_string()).collect();
        match lines.as_slice() {
            [one] => format!("the arm on line {one} matches"),
            many => format!("the arms on lines {} match", many.join(", ")),
        }
    }

    /// `W0405` for every input no expression reads (unless named `_...`).
    /// The packs the runtime commands run must declare what those commands
    /// set, used or not: `cavra check` leaves those out (the pack contracts,
    /// docs/language.md §18), which the engine does not know.
    pub(super) fn warn_unused_inputs(&mut self) {
        for (input, used) in self.inputs.iter().zip(&self.input_used) {
            if !used && !input.name.starts_with('_') {
                self.diags.push(
                    Diagnostic::warning("W0405", input.span, format!("input `{}` is never used", input.name))
                        .with_label("unused input")
                        .with_help("remove it, or start its name with `_` (callers that set it would then have to stop)"),
                );
            }
        }
    }

    /// `W0401` for every let no expression mentions (unless named `_...`).
    pub(super) fn warn_unused_lets(&mut self, local_end: usize) {
        for (i, decl) in self.let_decls.iter().enumerate() {
            if !self.let_used[i] && !decl.name.name.starts_with('_') && decl.span.start < local_end {
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
