//! Declarations: record types (with their field defaults), inputs and
//! lets, and the order in which lets are checked (dependencies first).

use super::diagnostics::{defined_twice, type_mismatch};
use super::facts::SymbolKind;
use super::{Checker, LetState};
use crate::eval::eval_const;
use crate::ir::*;
use crate::types::{FieldDef, RecordDef, Ty};
use crate::value::Value;
use cavra_grammar::ast::{self, ExprKind, Span};
use cavra_grammar::diagnostic::{did_you_mean, Diagnostic};
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

impl<'a> Checker<'a> {
    pub(super) fn declare_types(&mut self, pack: &'a ast::Pack) {
        let decls: Vec<&ast::TypeDecl> = pack.items.iter().filter_map(|i| if let ast::Item::Type(t) = i { Some(t) } else { None }).collect();
        let mut first_seen: HashMap<&str, Span> = HashMap::default();
        for t in &decls {
            if is_builtin_type(&t.name.name) {
                self.diags.push(
                    Diagnostic::error("E0301", t.name.span, format!("`{}` is a built-in type", t.name.name))
                        .with_label("cannot be redefined")
                        .with_help("give the record type another name, e.g. one starting with a capital letter"),
                );
                continue;
            }
            if let Some(first) = first_seen.get(t.name.name.as_str()) {
                self.diags.push(defined_twice(self.source, t.name.span, format!("type `{}` is defined twice", t.name.name), *first));
                continue;
            }
            first_seen.insert(&t.name.name, t.name.span);
            let id = self.schema.records.len() as u32;
            self.records.insert(t.name.name.clone(), id);
            self.record_spans.push((t.name.span, Vec::new()));
            self.schema.records.push(RecordDef { name: t.name.name.clone(), fields: Vec::new(), names: Arc::from(Vec::new()), by_name: HashMap::default() });
        }
        for t in decls {
            let Some(&id) = self.records.get(&t.name.name) else { continue };
            if !self.schema.records[id as usize].names.is_empty() {
                continue;
            }
            let mut fields: Vec<FieldDef> = Vec::new();
            let mut by_name = HashMap::default();
            for f in &t.fields {
                if by_name.contains_key(&f.name.name) {
                    self.diags.push(Diagnostic::error("E0301", f.name.span, format!("field `{}` is declared twice in `{}`", f.name.name, t.name.name)));
                    continue;
                }
                let ty = self.resolve_type(&f.ty);
                let default = f.default.as_ref().and_then(|e| self.field_default(e, &ty));
                by_name.insert(f.name.name.clone(), fields.len() as u32);
                fields.push(FieldDef { name: f.name.name.clone(), ty, default });
                self.record_spans[id as usize].1.push(f.name.span);
            }
            let rec = &mut self.schema.records[id as usize];
            rec.names = fields.iter().map(|f| Arc::from(f.name.as_str())).collect();
            rec.fields = fields;
            rec.by_name = by_name;
        }
        let spans = std::mem::take(&mut self.record_spans);
        self.note_records(&spans);
        self.record_spans = spans;
    }

    fn field_default(&mut self, e: &ast::Expr, ty: &Ty) -> Option<Value> {
        self.const_context = true;
        let (node, actual) = self.expr(e);
        self.const_context = false;
        if actual.unify(ty).is_none() {
            self.diags.push(type_mismatch(e.span, format!("the default is {}, but the field is {}", self.show(&actual), self.show(ty))));
            return None;
        }
        match eval_const(&node) {
            Ok(v) => Some(v),
            Err(err) => {
                self.diags.push(Diagnostic::error("E0200", err.span, err.message));
                None
            }
        }
    }

    fn resolve_type(&mut self, t: &ast::TypeExpr) -> Ty {
        let base = match &t.kind {
            ast::TypeExprKind::List(inner) => Ty::List(Box::new(self.resolve_type(inner))),
            ast::TypeExprKind::Map(inner) => Ty::Map(Box::new(self.resolve_type(inner))),
            ast::TypeExprKind::Named(name) => match name.name.as_str() {
                "text" => Ty::Text,
                "number" => Ty::Number,
                "bool" => Ty::Bool,
                "time" => Ty::Time,
                "duration" => Ty::Duration,
                "recurrence" => Ty::Recurrence,
                other => match self.records.get(other) {
                    Some(&id) => {
                        let declared = self.record_spans.get(id as usize).map(|(span, _)| *span).unwrap_or_default();
                        self.note_reference(name.span, declared, SymbolKind::Type, other, &Ty::Record(id));
                        Ty::Record(id)
                    }
                    None => {
                        let candidates: Vec<&str> = BUILTIN_TYPES.iter().copied().chain(self.records.keys().map(String::as_str)).collect();
                        let mut d = Diagnostic::error("E0102", name.span, format!("unknown type `{other}`")).with_label("not a type");
                        if let Some(s) = did_you_mean(other, candidates) {
                            d = d.with_help(format!("did you mean `{s}`?"));
                        } else {
                            d = d.with_help("declare it with `type Name { ... }`, or use text, number, bool, time, duration, list<T>, map<T>");
                        }
                        self.diags.push(d);
                        Ty::Any
                    }
                },
            },
        };
        if t.optional {
            base.optional()
        } else {
            base
        }
    }

    pub(super) fn declare_inputs_and_lets(&mut self, pack: &'a ast::Pack) {
        let mut seen: HashMap<String, Span> = HashMap::default();
        for item in &pack.items {
            let name = match item {
                ast::Item::Input(i) => &i.name,
                ast::Item::Let(l) => &l.name,
                _ => continue,
            };
            if let Some(first) = seen.get(&name.name) {
                self.diags.push(defined_twice(self.source, name.span, format!("`{}` is defined twice", name.name), *first));
                continue;
            }
            seen.insert(name.name.clone(), name.span);
            match item {
                ast::Item::Input(i) => {
                    let ty = self.resolve_type(&i.ty);
                    if i.name.name == "now" && ty.base() != &Ty::Time && !ty.is_any() {
                        self.diags.push(type_mismatch(i.ty.span, format!("the input `now` is the clock and must be `time`, not {}", self.show(&ty))));
                    }
                    self.note_reference(i.name.span, i.name.span, SymbolKind::Input, &i.name.name, &ty);
                    self.input_names.insert(i.name.name.clone(), self.inputs.len() as u32);
                    self.input_spans.push(i.name.span);
                    self.inputs.push(InputDef { name: i.name.name.clone(), ty, is_static: i.is_static, span: i.span });
                    self.input_used.push(false);
                }
                ast::Item::Let(l) => {
                    self.let_names.insert(l.name.name.clone(), self.let_decls.len() as u32);
                    self.let_decls.push(l);
                    self.let_state.push(LetState::Unchecked);
                    self.let_nodes.push(None);
                    self.let_used.push(false);
                }
                _ => {}
            }
        }
    }

    /// Let indexes ordered so that each comes after the lets it mentions
    /// (depth-first, iterative); members of a cycle keep declaration order
    /// and are reported by `check_let`.
    pub(super) fn let_dependency_order(&self) -> Vec<u32> {
        let deps: Vec<Vec<u32>> = self
            .let_decls
            .iter()
            .map(|d| {
                let mut names = Vec::new();
                free_names(&d.value, &mut Vec::new(), &mut names);
                names.iter().filter_map(|n| self.let_names.get(*n).copied()).collect()
            })
            .collect();
        let mut state = vec![0u8; deps.len()]; // 0 new, 1 on the stack, 2 done
        let mut order = Vec::with_capacity(deps.len());
        for root in 0..deps.len() {
            if state[root] != 0 {
                continue;
            }
            let mut stack = vec![(root, 0usize)];
            state[root] = 1;
            while let Some((node, next)) = stack.pop() {
                if let Some(&dep) = deps[node].get(next) {
                    stack.push((node, next + 1));
                    if state[dep as usize] == 0 {
                        state[dep as usize] = 1;
                        stack.push((dep as usize, 0));
                    }
                } else {
                    state[node] = 2;
                    order.push(node as u32);
                }
            }
        }
        order
    }

    pub(super) fn check_let(&mut self, index: u32) -> Ty {
        let i = index as usize;
        match &self.let_state[i] {
            LetState::Done(t) => return t.clone(),
            LetState::InProgress => {
                let decl = self.let_decls[i];
                self.diags.push(
                    Diagnostic::error("E0302", decl.name.span, format!("`{}` refers to itself", decl.name.name))
                        .with_label("defined in terms of itself")
                        .with_help("a `let` cannot depend on its own value, directly or through other lets"),
                );
                self.let_state[i] = LetState::Done(Ty::Any);
                return Ty::Any;
            }
            LetState::Unchecked => {}
        }
        self.let_state[i] = LetState::InProgress;
        // A let body sees only globals, never the quantifier variables of the
        // place that mentions it.
        let saved = std::mem::take(&mut self.scopes);
        let decl = self.let_decls[i];
        let (node, ty) = self.expr(&decl.value);
        self.scopes = saved;
        if let LetState::InProgress = self.let_state[i] {
            self.let_state[i] = LetState::Done(ty.clone());
        }
        self.note_reference(decl.name.span, decl.name.span, SymbolKind::Let, &decl.name.name, &ty);
        self.let_nodes[i] = Some(node);
        self.let_order.push(index);
        ty
    }
}

/// Names an expression refers to, minus those its own quantifiers bind.
pub(crate) fn free_names<'a>(e: &'a ast::Expr, bound: &mut Vec<&'a str>, out: &mut Vec<&'a str>) {
    let mut walk = |x: &'a ast::Expr, bound: &mut Vec<&'a str>| free_names(x, bound, out);
    match &e.kind {
        ExprKind::Name(id) => {
            if !bound.contains(&id.name.as_str()) {
                push_unique(out, &id.name);
            }
        }
        ExprKind::Quantifier(q) => {
            walk(&q.source, bound);
            bound.push(&q.var.name);
            if let Some(f) = &q.filter {
                free_names(f, bound, out);
            }
            if let Some(k) = &q.key {
                free_names(k, bound, out);
            }
            bound.pop();
        }
        ExprKind::Text(parts) => {
            for p in parts {
                if let ast::TextPart::Interpolation(x) = p {
                    walk(x, bound);
                }
            }
        }
        ExprKind::List(items) | ExprKind::Call(_, items) => items.iter().for_each(|x| walk(x, bound)),
        ExprKind::Map(entries) => entries.iter().for_each(|m| walk(&m.value, bound)),
        ExprKind::Field(x, _) | ExprKind::Unary(_, x) | ExprKind::Test(x, _) | ExprKind::Paren(x) => walk(x, bound),
        ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
            walk(a, bound);
            walk(b, bound);
        }
        ExprKind::Compare(first, rest) => {
            walk(first, bound);
            rest.iter().for_each(|(_, x)| walk(x, bound));
        }
        ExprKind::If(a, b, c) => {
            walk(a, bound);
            walk(b, bound);
            walk(c, bound);
        }
        ExprKind::Number(_) | ExprKind::Bool(_) | ExprKind::Null | ExprKind::Timestamp(_) | ExprKind::Duration(_) => {}
    }
}

fn push_unique<'a>(out: &mut Vec<&'a str>, name: &'a str) {
    if !out.contains(&name) {
        out.push(name);
    }
}

const BUILTIN_TYPES: &[&str] = &["text", "number", "bool", "time", "duration", "recurrence"];

fn is_builtin_type(name: &str) -> bool {
    BUILTIN_TYPES.contains(&name) || name == "list" || name == "map"
}
