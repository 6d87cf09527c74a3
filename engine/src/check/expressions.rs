//! Expressions: literals, names, fields and indexing, operators,
//! comparisons, `if` and quantifiers, each typed and lowered to IR nodes.

use super::diagnostics::type_mismatch;
use super::facts::SymbolKind;
use super::Checker;
use crate::ir::*;
use crate::time::{parse_duration, parse_time_literal};
use crate::types::Ty;
use crate::value::Value;
use cavra_grammar::ast::{self, BinaryOp, CompareOp, ExprKind, QuantKind, Span, TestOp, UnaryOp};
use cavra_grammar::diagnostic::{did_you_mean, Diagnostic};
use std::sync::Arc;

impl Checker<'_> {
    pub(super) fn expr(&mut self, e: &ast::Expr) -> (Node, Ty) {
        let (node, ty) = self.expr_kind(e);
        self.note_type(e.span, &ty);
        (node, ty)
    }

    fn expr_kind(&mut self, e: &ast::Expr) -> (Node, Ty) {
        let span = e.span;
        let node = |kind| Node::new(kind, span);
        match &e.kind {
            ExprKind::Null => (Node::constant(Value::Null, span), Ty::Null),
            ExprKind::Bool(b) => (Node::constant(Value::Bool(*b), span), Ty::Bool),
            ExprKind::Number(raw) => match raw.parse::<f64>() {
                Ok(n) => (Node::constant(Value::Number(n), span), Ty::Number),
                Err(_) => self.err(Diagnostic::error("E0202", span, format!("`{raw}` is not a number"))),
            },
            ExprKind::Timestamp(raw) => match parse_time_literal(raw) {
                Ok(t) => (Node::constant(Value::Time(t), span), Ty::Time),
                Err(msg) => self.err(
                    Diagnostic::error("E0202", span, format!("invalid timestamp: {msg}"))
                        .with_help("write @2026-05-21T18:00:00Z, @2026-05-21T20:00:00+02:00 or @2026-05-21"),
                ),
            },
            ExprKind::Duration(raw) => match parse_duration(raw) {
                Ok(d) => (Node::constant(Value::Duration(d), span), Ty::Duration),
                Err(msg) => self.err(Diagnostic::error("E0202", span, format!("invalid duration: {msg}"))),
            },
            ExprKind::Text(parts) => {
                let mut nodes = Vec::new();
                for part in parts {
                    match part {
                        ast::TextPart::Literal(s) => nodes.push(Node::constant(Value::text(s), span)),
                        ast::TextPart::Interpolation(inner) => nodes.push(self.expr(inner).0),
                    }
                }
                if let [single] = nodes.as_slice() {
                    if single.as_const().is_some() {
                        return (single.clone(), Ty::Text);
                    }
                }
                if nodes.is_empty() {
                    return (Node::constant(Value::text(""), span), Ty::Text);
                }
                (node(Kind::Text(nodes)), Ty::Text)
            }
            ExprKind::List(items) => {
                let mut elem = Ty::Any;
                let mut nodes = Vec::new();
                for item in items {
                    let (n, t) = self.expr(item);
                    match elem.unify(&t) {
                        Some(u) => elem = u,
                        None => {
                            self.diags.push(type_mismatch(item.span, format!("list elements must have one type: {} and {}", self.show(&elem), self.show(&t))));
                        }
                    }
                    nodes.push(n);
                }
                (node(Kind::List(nodes)), Ty::List(Box::new(elem)))
            }
            ExprKind::Map(entries) => {
                let mut elem = Ty::Any;
                let mut nodes: Vec<(Arc<str>, Node)> = Vec::new();
                for entry in entries {
                    let key = match &entry.key.kind {
                        ExprKind::Text(parts) => match parts.as_slice() {
                            [] => Some(String::new()),
                            [ast::TextPart::Literal(s)] => Some(s.clone()),
                            _ => None,
                        },
                        _ => None,
                    };
                    let Some(key) = key else {
                        self.diags.push(Diagnostic::error("E0200", entry.key.span, "map keys must be plain text"));
                        continue;
                    };
                    let (n, t) = self.expr(&entry.value);
                    match elem.unify(&t) {
                        Some(u) => elem = u,
                        None => self
                            .diags
                            .push(type_mismatch(entry.value.span, format!("map values must have one type: {} and {}", self.show(&elem), self.show(&t)))),
                    }
                    if nodes.iter().any(|(k, _)| **k == *key) {
                        self.diags.push(Diagnostic::error("E0301", entry.key.span, format!("key {key:?} is given twice")));
                    }
                    nodes.push((Arc::from(key.as_str()), n));
                }
                (node(Kind::Map(nodes)), Ty::Map(Box::new(elem)))
            }
            ExprKind::Name(id) => self.name(id),
            ExprKind::Paren(inner) => self.expr(inner),
            ExprKind::Field(target, field) => {
                let (t_node, t_ty) = self.expr(target);
                match t_ty.base() {
                    Ty::Any => (node(Kind::Field(Box::new(t_node), 0)), Ty::Any),
                    Ty::Record(id) => {
                        let id = *id;
                        self.note_field_read(field.span, id);
                        let rec = self.schema.record(id);
                        match rec.by_name.get(&field.name) {
                            Some(&idx) => {
                                let fty = rec.fields[idx as usize].ty.clone();
                                let declared = self.record_spans.get(id as usize).and_then(|(_, fields)| fields.get(idx as usize)).copied().unwrap_or_default();
                                self.note_reference(field.span, declared, SymbolKind::Field, &field.name, &fty);
                                let fty = if t_ty.is_optional() { fty.optional() } else { fty };
                                (node(Kind::Field(Box::new(t_node), idx)), fty)
                            }
                            None => {
                                let mut d = Diagnostic::error("E0101", field.span, format!("unknown field `{}` on `{}`", field.name, rec.name))
                                    .with_label("unknown field");
                                let names: Vec<&str> = rec.fields.iter().map(|f| f.name.as_str()).collect();
                                d = match did_you_mean(&field.name, names.iter().copied()) {
                                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                                    None => d.with_help(format!("`{}` has the fields {}", rec.name, names.join(", "))),
                                };
                                self.err(d)
                            }
                        }
                    }
                    Ty::Map(_) => {
                        self.err(
                            Diagnostic::error("E0200", field.span, format!("`{}` is a map; look keys up with [..]", self.snippet(target.span)))
                                .with_help(format!("write {}[\"{}\"]", self.snippet(target.span), field.name)),
                        )
                    }
                    other => {
                        let shown = self.show(other);
                        self.err(type_mismatch(field.span, format!("{shown} has no fields")))
                    }
                }
            }
            ExprKind::Index(target, key) => {
                let (t_node, t_ty) = self.expr(target);
                let (k_node, k_ty) = self.expr(key);
                match t_ty.base() {
                    Ty::Any => (node(Kind::MapGet(Box::new(t_node), Box::new(k_node))), Ty::Any),
                    Ty::Map(elem) => {
                        let elem = (**elem).clone().optional();
                        if !k_ty.is_any() && k_ty.base() != &Ty::Text {
                            let shown = self.show(&k_ty);
                            return self.err(type_mismatch(key.span, format!("map keys are text, but this is {shown}")));
                        }
                        (node(Kind::MapGet(Box::new(t_node), Box::new(k_node))), elem)
                    }
                    Ty::List(elem) => {
                        let elem = (**elem).clone().optional();
                        if !k_ty.is_any() && k_ty.base() != &Ty::Number {
                            let shown = self.show(&k_ty);
                            return self.err(type_mismatch(key.span, format!("list positions are numbers, but this is {shown}")));
                        }
                        (node(Kind::ListGet(Box::new(t_node), Box::new(k_node))), elem)
                    }
                    other => {
                        let shown = self.show(other);
                        self.err(type_mismatch(target.span, format!("{shown} cannot be indexed with [..]")))
                    }
                }
            }
            ExprKind::Call(name, args) => self.call(name, args, span),
            ExprKind::Unary(op, inner) => {
                let (n, t) = self.expr(inner);
                match op {
                    UnaryOp::Not => {
                        if !t.is_any() && t.base() != &Ty::Bool {
                            let shown = self.show(&t);
                            return self.err(type_mismatch(inner.span, format!("`not` needs bool, but this is {shown}")));
                        }
                        (node(Kind::Not(Box::new(n))), Ty::Bool)
                    }
                    UnaryOp::Neg => match t.base() {
                        Ty::Number | Ty::Duration | Ty::Any => (node(Kind::Neg(Box::new(n))), t.base().clone()),
                        other => {
                            let shown = self.show(other);
                            self.err(type_mismatch(inner.span, format!("`-` needs a number or duration, but this is {shown}")))
                        }
                    },
                }
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, span),
            ExprKind::Compare(first, rest) => {
                let (first_node, mut prev_ty) = self.expr(first);
                let mut prev_span = first.span;
                let mut chain = Vec::new();
                for (op, e) in rest {
                    let (n, t) = self.expr(e);
                    self.comparable(*op, &prev_ty, &t, prev_span, e.span);
                    chain.push((*op, n));
                    prev_ty = t;
                    prev_span = e.span;
                }
                (node(Kind::Compare(Box::new(first_node), chain)), Ty::Bool)
            }
            ExprKind::Test(inner, op) => {
                let (n, t) = self.expr(inner);
                if matches!(op, TestOp::Empty | TestOp::NotEmpty) && !matches!(t.base(), Ty::Text | Ty::List(_) | Ty::Map(_) | Ty::Any | Ty::Null) {
                    let shown = self.show(&t);
                    return self.err(type_mismatch(inner.span, format!("`is empty` needs text, a list or a map, but this is {shown}")));
                }
                (node(Kind::Test(Box::new(n), *op)), Ty::Bool)
            }
            ExprKind::If(c, t, f) => {
                let cond = self.condition(c, "an `if` condition");
                let (tn, tt) = self.expr(t);
                let (fnode, ft) = self.expr(f);
                let ty = match tt.unify(&ft) {
                    Some(u) => u,
                    None => {
                        let msg = format!("the branches of `if` differ: {} and {}", self.show(&tt), self.show(&ft));
                        return self.err(type_mismatch(span, msg));
                    }
                };
                (node(Kind::If(Box::new(cond), Box::new(tn), Box::new(fnode))), ty)
            }
            ExprKind::Quantifier(q) => self.quantifier(q, span),
        }
    }

    fn name(&mut self, id: &ast::Ident) -> (Node, Ty) {
        let span = id.span;
        if let Some((_, slot, ty, declared)) = self.scopes.iter().rev().find(|(n, _, _, _)| *n == id.name) {
            let (slot, ty, declared) = (*slot, ty.clone(), *declared);
            self.note_reference(span, declared, SymbolKind::Variable, &id.name, &ty);
            return (Node::new(Kind::Local(slot), span), ty);
        }
        if !self.const_context {
            if let Some(&slot) = self.input_names.get(&id.name) {
                if let Some(used) = self.input_used.get_mut(slot as usize) {
                    *used = true;
                }
                let ty = self.inputs[slot as usize].ty.clone();
                let declared = self.input_spans.get(slot as usize).copied().unwrap_or_default();
                self.note_reference(span, declared, SymbolKind::Input, &id.name, &ty);
                return (Node::new(Kind::Input(slot), span), ty);
            }
            if let Some(&index) = self.let_names.get(&id.name) {
                self.let_used[index as usize] = true;
                let ty = self.check_let(index);
                let declared = self.let_decls[index as usize].name.span;
                self.note_reference(span, declared, SymbolKind::Let, &id.name, &ty);
                return (Node::new(Kind::Let(index), span), ty);
            }
        } else if self.global_names.contains(&id.name) {
            return self.err(
                Diagnostic::error("E0200", span, format!("a field default cannot use `{}`", id.name))
                    .with_help("defaults must be constants such as 60, \"text\", [] or {}"),
            );
        }
        let mut candidates: Vec<&str> = self.scopes.iter().map(|(n, _, _, _)| n.as_str()).collect();
        if !self.const_context {
            candidates.extend(self.input_names.keys().map(String::as_str));
            candidates.extend(self.let_names.keys().map(String::as_str));
        }
        let mut d = Diagnostic::error("E0100", span, format!("unknown name `{}`", id.name)).with_label("not defined");
        if let Some(s) = did_you_mean(&id.name, candidates) {
            d = d.with_help(format!("did you mean `{s}`?"));
        } else if Builtin::lookup(&id.name).is_some() {
            d = d.with_help(format!("`{}` is a function: call it as {}(...)", id.name, id.name));
        } else if !self.const_context {
            d = d.with_help(format!("declare it with `input {}: TYPE` or `let {} = ...`", id.name, id.name));
        }
        self.err(d)
    }

    fn comparable(&mut self, op: CompareOp, a: &Ty, b: &Ty, a_span: Span, b_span: Span) {
        if a.is_any() || b.is_any() {
            return;
        }
        let ok = match op {
            CompareOp::Eq | CompareOp::Ne => a.unify(b).is_some(),
            _ => {
                matches!(a.base(), Ty::Number | Ty::Text | Ty::Time | Ty::Duration | Ty::Null)
                    && a.unify(b).is_some()
                    && !matches!((a, b), (Ty::Null, Ty::Null))
            }
        };
        if !ok {
            let msg = format!("cannot compare {} {} {}", self.show(a), op.as_str(), self.show(b));
            let help = match (a.base(), b.base()) {
                (Ty::Time, Ty::Text) | (Ty::Text, Ty::Time) => Some("write a time literal as @2026-05-21T18:00:00Z"),
                (Ty::Duration, Ty::Number) | (Ty::Number, Ty::Duration) => Some("write a duration literal such as 30m, or convert with days(d)"),
                _ => None,
            };
            let mut d = type_mismatch(a_span.to(b_span), msg);
            if let Some(h) = help {
                d = d.with_help(h);
            }
            self.diags.push(d);
        }
    }

    fn binary(&mut self, op: BinaryOp, a: &ast::Expr, b: &ast::Expr, span: Span) -> (Node, Ty) {
        let (an, at) = self.expr(a);
        let (bn, bt) = self.expr(b);
        let boxed = |an, bn| (Box::new(an), Box::new(bn));
        match op {
            BinaryOp::And | BinaryOp::Or => {
                for (t, e) in [(&at, a), (&bt, b)] {
                    if !t.is_any() && t.base() != &Ty::Bool {
                        let msg = format!("`{}` needs bool on both sides, but this is {}", op.as_str(), self.show(t));
                        self.diags.push(type_mismatch(e.span, msg));
                    }
                }
                let (x, y) = boxed(an, bn);
                let kind = if op == BinaryOp::And { Kind::And(x, y) } else { Kind::Or(x, y) };
                (Node::new(kind, span), Ty::Bool)
            }
            BinaryOp::In | BinaryOp::NotIn => {
                let kind = match bt.base() {
                    Ty::List(elem) => {
                        if at.unify(elem).is_none() {
                            let msg = format!("cannot look for {} in {}", self.show(&at), self.show(&bt));
                            return self.err(type_mismatch(span, msg));
                        }
                        InKind::List
                    }
                    Ty::Map(_) | Ty::Text | Ty::Any => {
                        if !at.is_any() && at.base() != &Ty::Text {
                            let msg = format!("cannot look for {} in {}", self.show(&at), self.show(&bt));
                            return self.err(type_mismatch(span, msg));
                        }
                        if matches!(bt.base(), Ty::Text) {
                            InKind::Substring
                        } else {
                            InKind::MapKey
                        }
                    }
                    other => {
                        let shown = self.show(other);
                        return self.err(type_mismatch(b.span, format!("`in` needs a list, map or text on its right, but this is {shown}")));
                    }
                };
                let (x, y) = boxed(an, bn);
                let kind = if op == BinaryOp::In { Kind::In(kind, x, y) } else { Kind::NotIn(kind, x, y) };
                (Node::new(kind, span), Ty::Bool)
            }
            BinaryOp::Default => match at.unify(&bt) {
                Some(u) => {
                    let ty = if bt.is_optional() { u } else { u.base().clone() };
                    let (x, y) = boxed(an, bn);
                    (Node::new(Kind::Default(x, y), span), ty)
                }
                None => {
                    let msg = format!("`??` needs the same type on both sides: {} and {}", self.show(&at), self.show(&bt));
                    self.err(type_mismatch(span, msg))
                }
            },
            _ => {
                use ArithOp::*;
                let (x, y) = (at.base().clone(), bt.base().clone());
                let found = match (op, &x, &y) {
                    (_, Ty::Any, _) | (_, _, Ty::Any) => Some((AddNum, Ty::Any)),
                    (BinaryOp::Add, Ty::Number, Ty::Number) => Some((AddNum, Ty::Number)),
                    (BinaryOp::Sub, Ty::Number, Ty::Number) => Some((SubNum, Ty::Number)),
                    (BinaryOp::Mul, Ty::Number, Ty::Number) => Some((MulNum, Ty::Number)),
                    (BinaryOp::Div, Ty::Number, Ty::Number) => Some((DivNum, Ty::Number)),
                    (BinaryOp::Rem, Ty::Number, Ty::Number) => Some((RemNum, Ty::Number)),
                    (BinaryOp::Add, Ty::Time, Ty::Duration) => Some((TimePlusDur, Ty::Time)),
                    (BinaryOp::Sub, Ty::Time, Ty::Duration) => Some((TimeMinusDur, Ty::Time)),
                    (BinaryOp::Sub, Ty::Time, Ty::Time) => Some((TimeMinusTime, Ty::Duration)),
                    (BinaryOp::Add, Ty::Duration, Ty::Duration) => Some((DurPlusDur, Ty::Duration)),
                    (BinaryOp::Sub, Ty::Duration, Ty::Duration) => Some((DurMinusDur, Ty::Duration)),
                    (BinaryOp::Mul, Ty::Duration, Ty::Number) => Some((DurTimesNum, Ty::Duration)),
                    (BinaryOp::Mul, Ty::Number, Ty::Duration) => Some((NumTimesDur, Ty::Duration)),
                    (BinaryOp::Div, Ty::Duration, Ty::Number) => Some((DurDivNum, Ty::Duration)),
                    (BinaryOp::Div, Ty::Duration, Ty::Duration) => Some((DurDivDur, Ty::Number)),
                    _ => None,
                };
                match found {
                    Some((arith, ty)) => {
                        let (l, r) = boxed(an, bn);
                        (Node::new(Kind::Arith(arith, l, r), span), ty)
                    }
                    None => {
                        let msg = format!("cannot compute {} {} {}", self.show(&at), op.as_str(), self.show(&bt));
                        let mut d = type_mismatch(span, msg);
                        if matches!((&x, &y), (Ty::Time, Ty::Number) | (Ty::Number, Ty::Time)) {
                            d = d.with_help("add a duration to a time: now + 14d");
                        } else if matches!((&x, &y), (Ty::Text, Ty::Text)) && op == BinaryOp::Add {
                            d = d.with_help("join text with interpolation: \"{a}{b}\"");
                        }
                        self.err(d)
                    }
                }
            }
        }
    }

    fn quantifier(&mut self, q: &ast::Quantifier, span: Span) -> (Node, Ty) {
        let (source, source_ty) = self.expr(&q.source);
        let elem = match source_ty.base() {
            Ty::List(e) => (**e).clone(),
            Ty::Any | Ty::Null => Ty::Any,
            other => {
                let shown = self.show(other);
                return self.err(type_mismatch(q.source.span, format!("`{}` needs a list to go through, but this is {shown}", q.kind.as_str())));
            }
        };
        let local = self.local_count;
        self.local_count += 1;
        self.note_reference(q.var.span, q.var.span, SymbolKind::Variable, &q.var.name, &elem);
        self.scopes.push((q.var.name.clone(), local, elem.clone(), q.var.span));
        let filter = q.filter.as_ref().map(|f| self.condition(f, "a `where` clause"));
        let key = q.key.as_ref().map(|k| {
            let (n, t) = self.expr(k);
            if !matches!(t.base(), Ty::Number | Ty::Text | Ty::Time | Ty::Duration | Ty::Any) {
                let shown = self.show(&t);
                self.diags.push(type_mismatch(k.span, format!("`by` needs a number, text, time or duration, but this is {shown}")));
            }
            n
        });
        self.scopes.pop();
        let kind_name = q.kind.as_str();
        match q.kind {
            QuantKind::All | QuantKind::Filter if filter.is_none() => {
                return self.err(
                    Diagnostic::error("E0200", span, format!("`{kind_name}` needs a `where` clause"))
                        .with_help(format!("{kind_name} {} in ... where CONDITION", q.var.name)),
                )
            }
            QuantKind::Max | QuantKind::Min if key.is_none() => {
                return self.err(
                    Diagnostic::error("E0200", span, format!("`{kind_name}` needs a `by` clause"))
                        .with_help(format!("{kind_name} {0} in ... by {0}.FIELD", q.var.name)),
                )
            }
            QuantKind::Max | QuantKind::Min => {}
            _ if key.is_some() => {
                return self.err(Diagnostic::error("E0200", span, format!("`by` only goes with `max` and `min`, not `{kind_name}`")));
            }
            _ => {}
        }
        let ty = match q.kind {
            QuantKind::Any | QuantKind::All => Ty::Bool,
            QuantKind::Count => Ty::Number,
            QuantKind::Filter => Ty::List(Box::new(elem)),
            QuantKind::First | QuantKind::Max | QuantKind::Min => elem.optional(),
        };
        let scan = Scan { kind: q.kind, local, source, filter, key };
        (Node::new(Kind::Scan(Box::new(scan)), span), ty)
    }
}
