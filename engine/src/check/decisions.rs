//! Decisions and readiness gates: arms and their outcomes, checks and
//! statuses, each condition a bool and each message text.

use super::diagnostics::{defined_twice, type_mismatch};
use super::lints::Arms;
use super::Checker;
use crate::ir::*;
use crate::types::Ty;
use crate::value::Value;
use cavra_grammar::ast::{self, Span};
use cavra_grammar::diagnostic::Diagnostic;
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

impl Checker<'_> {
    /// Every decision and gate, in pack order; names are shared between them.
    /// A module offers types and lets; decisions and gates belong in the packs that import it.
    pub(super) fn refuse_decisions_in_module(&mut self, module: &ast::Pack) {
        for item in &module.items {
            let (what, name) = match item {
                ast::Item::Decision(d) => ("decision", &d.name),
                ast::Item::Readiness(r) => ("readiness", &r.name),
                _ => continue,
            };
            self.diags.push(
                Diagnostic::error("E0904", name.span, format!("a module declares types, inputs and lets, not `{what} {}`", name.name))
                    .with_label("not allowed in a module")
                    .with_help(format!("move `{what} {}` into a pack that imports this module", name.name)),
            );
        }
    }

    pub(super) fn decisions_and_gates(&mut self, pack: &ast::Pack) -> (Vec<DecisionIr>, Vec<GateIr>) {
        let mut decisions = Vec::new();
        let mut gates = Vec::new();
        let mut top_names: HashMap<String, Span> = HashMap::default();
        for item in &pack.items {
            let name = match item {
                ast::Item::Decision(d) => &d.name,
                ast::Item::Readiness(r) => &r.name,
                _ => continue,
            };
            if let Some(first) = top_names.get(&name.name) {
                self.diags.push(defined_twice(self.source, name.span, format!("`{}` is defined twice", name.name), *first));
            } else {
                top_names.insert(name.name.clone(), name.span);
            }
            match item {
                ast::Item::Decision(d) => decisions.push(self.decision(d)),
                ast::Item::Readiness(r) => gates.push(self.gate(r)),
                _ => {}
            }
        }
        (decisions, gates)
    }

    fn decision(&mut self, d: &ast::DecisionDecl) -> DecisionIr {
        let mut arms: Vec<ArmIr> = Vec::new();
        let mut ids: HashMap<String, usize> = HashMap::default();
        let mut reach = Arms::default();
        for arm in &d.arms {
            let errors_before = self.error_count();
            let condition = self.condition(&arm.condition, "an arm condition");
            // A condition with an error has no meaningful value: no follow-up warnings.
            let clean = self.error_count() == errors_before;
            let outcome = self.outcome(&arm.outcome);
            let base = outcome.category.to_string();
            let n = ids.entry(base.clone()).or_insert(0);
            *n += 1;
            let id: Arc<str> = if *n == 1 { Arc::from(base.as_str()) } else { Arc::from(format!("{base}#{n}").as_str()) };
            if clean {
                self.lint_arm(&mut reach, &condition, &arm.condition);
            }
            arms.push(ArmIr { id, condition, outcome, span: arm.span });
        }
        let otherwise = match &d.otherwise {
            Some(o) => {
                self.lint_otherwise(&reach, o.span);
                let outcome = self.outcome(&o.outcome);
                ArmIr { id: Arc::from("otherwise"), condition: Node::constant(Value::Bool(true), o.span), outcome, span: o.span }
            }
            None => {
                self.diags.push(
                    Diagnostic::error("E0300", d.name.span, format!("decision `{}` has no `otherwise` arm", d.name.name))
                        .with_label("missing `otherwise`")
                        .with_help("add `otherwise => ACTION` as the last arm so that every request gets a decision"),
                );
                let span = d.name.span;
                ArmIr {
                    id: Arc::from("otherwise"),
                    condition: Node::constant(Value::Bool(true), span),
                    outcome: OutcomeIr { action: Arc::from(""), category: Arc::from(""), reason: None, fields: Vec::new() },
                    span,
                }
            }
        };
        DecisionIr { name: Arc::from(d.name.name.as_str()), arms, otherwise, span: d.span }
    }

    pub(super) fn condition(&mut self, e: &ast::Expr, what: &str) -> Node {
        let (node, ty) = self.expr(e);
        if !ty.is_any() && ty.base() != &Ty::Bool {
            self.diags.push(type_mismatch(e.span, format!("{what} must be bool, but this is {}", self.show(&ty))));
        }
        node
    }

    fn text_expr(&mut self, e: &ast::Expr, what: &str) -> Node {
        let (node, ty) = self.expr(e);
        if !ty.is_any() && ty.base() != &Ty::Text {
            self.diags.push(
                type_mismatch(e.span, format!("{what} must be text, but this is {}", self.show(&ty)))
                    .with_help("interpolate the value into text: \"... {value} ...\""),
            );
        }
        node
    }

    fn outcome(&mut self, o: &ast::Outcome) -> OutcomeIr {
        let category = o.category.as_ref().unwrap_or(&o.action);
        let reason = o.reason.as_ref().map(|r| self.text_expr(r, "a reason"));
        let fields = self.with_fields(&o.fields);
        OutcomeIr { action: Arc::from(o.action.name.as_str()), category: Arc::from(category.name.as_str()), reason, fields }
    }

    fn with_fields(&mut self, fields: &[ast::FieldInit]) -> Vec<(Arc<str>, Node)> {
        let mut out: Vec<(Arc<str>, Node)> = Vec::new();
        for f in fields {
            if out.iter().any(|(n, _)| **n == *f.name.name) {
                self.diags.push(Diagnostic::error("E0301", f.name.span, format!("field `{}` is given twice", f.name.name)));
                continue;
            }
            let (node, _) = self.expr(&f.value);
            out.push((Arc::from(f.name.name.as_str()), node));
        }
        out
    }

    fn gate(&mut self, r: &ast::ReadinessDecl) -> GateIr {
        let requested = r.requested.as_ref().map(|req| RequestedIr {
            id: req.id.as_ref().map(|i| Arc::from(i.name.as_str())),
            condition: self.condition(&req.condition, "`requested when`"),
            fail: req.fail.as_ref().map(|f| self.text_expr(f, "the not-requested message")),
            pass: req.pass.as_ref().map(|p| self.text_expr(p, "the requested message")),
        });
        if let Some(id) = r.requested.as_ref().and_then(|req| req.id.as_ref()) {
            if r.checks.iter().any(|c| c.id.name == id.name) {
                self.diags.push(Diagnostic::error("E0301", id.span, format!("check `{}` is defined twice", id.name)));
            }
        }
        let mut checks: Vec<CheckIr> = Vec::new();
        for c in &r.checks {
            if checks.iter().any(|x| *x.id == *c.id.name) {
                self.diags.push(Diagnostic::error("E0301", c.id.span, format!("check `{}` is defined twice", c.id.name)));
            }
            let guard = c.guard.as_ref().map(|g| self.condition(g, "a check's `when` guard"));
            let condition = self.condition(&c.condition, "a check");
            let fail = self.text_expr(&c.fail, "a check's failure message");
            let pass = c.pass.as_ref().map(|p| self.text_expr(p, "a check's pass message"));
            let fields = self.with_fields(&c.fields);
            checks.push(CheckIr { id: Arc::from(c.id.name.as_str()), guard, condition, fail, pass, fields });
        }
        let statuses = r.statuses.iter().map(|s| (Arc::from(s.status.name.as_str()), self.condition(&s.condition, "a status rule"))).collect();
        GateIr { name: Arc::from(r.name.name.as_str()), requested, checks, statuses }
    }
}
