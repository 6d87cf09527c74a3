//! Name resolution and type checking: AST -> typed IR plus diagnostics.
//! Every error is reported with its span; after an error the offending
//! expression gets type `Any` so that one mistake is reported once.

use crate::eval::eval_const;
use crate::ir::*;
use crate::time::{parse_duration, parse_time_literal};
use crate::types::{FieldDef, RecordDef, Schema, Ty};
use crate::value::Value;
use cavra_grammar::ast::{self, BinaryOp, CompareOp, ExprKind, QuantKind, Span, TestOp, UnaryOp};
use cavra_grammar::diagnostic::{did_you_mean, Diagnostic};
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

/// A pack after checking, before binding.
#[derive(Clone, Debug)]
pub struct Checked {
    pub schema: Schema,
    pub inputs: Vec<InputDef>,
    pub lets: Vec<LetDef>,
    /// Let indexes in dependency order (each after the lets it uses).
    pub let_order: Vec<u32>,
    pub local_count: u32,
    pub decisions: Vec<DecisionIr>,
    pub gates: Vec<GateIr>,
}

#[derive(Clone)]
enum LetState {
    Unchecked,
    InProgress,
    Done(Ty),
}

struct Checker<'a> {
    source: &'a str,
    diags: Vec<Diagnostic>,
    schema: Schema,
    records: HashMap<String, u32>,
    inputs: Vec<InputDef>,
    input_names: HashMap<String, u32>,
    let_decls: Vec<&'a ast::LetDecl>,
    let_names: HashMap<String, u32>,
    let_state: Vec<LetState>,
    let_nodes: Vec<Option<Node>>,
    let_used: Vec<bool>,
    let_order: Vec<u32>,
    /// Quantifier variables in scope, innermost last: (name, local slot, type).
    scopes: Vec<(String, u32, Ty)>,
    local_count: u32,
    /// True while checking field defaults: only constants are allowed.
    const_context: bool,
    /// Names of all inputs and lets, known before types are checked.
    global_names: std::collections::HashSet<String>,
}

pub fn check(pack: &ast::Pack, source: &str) -> (Option<Checked>, Vec<Diagnostic>) {
    let mut c = Checker {
        source,
        diags: Vec::new(),
        schema: Schema::default(),
        records: HashMap::default(),
        inputs: Vec::new(),
        input_names: HashMap::default(),
        let_decls: Vec::new(),
        let_names: HashMap::default(),
        let_state: Vec::new(),
        let_nodes: Vec::new(),
        let_used: Vec::new(),
        let_order: Vec::new(),
        scopes: Vec::new(),
        local_count: 0,
        const_context: false,
        global_names: pack
            .items
            .iter()
            .filter_map(|i| match i {
                ast::Item::Input(d) => Some(d.name.name.clone()),
                ast::Item::Let(d) => Some(d.name.name.clone()),
                _ => None,
            })
            .collect(),
    };
    c.declare_types(pack);
    c.declare_inputs_and_lets(pack);
    // Dependencies first, so that checking one let never nests the checking
    // of another (a long chain would otherwise deepen the recursion per let).
    for i in c.let_dependency_order() {
        c.check_let(i);
    }
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
            let (line, _) = cavra_grammar::diagnostic::line_col(source, first.start);
            c.diags.push(
                Diagnostic::error("E0301", name.span, format!("`{}` is defined twice", name.name))
                    .with_label("second definition")
                    .with_help(format!("the first definition is on line {line}")),
            );
        } else {
            top_names.insert(name.name.clone(), name.span);
        }
        match item {
            ast::Item::Decision(d) => decisions.push(c.decision(d)),
            ast::Item::Readiness(r) => gates.push(c.gate(r)),
            _ => {}
        }
    }
    for (i, decl) in c.let_decls.iter().enumerate() {
        if !c.let_used[i] && !decl.name.name.starts_with('_') {
            c.diags.push(
                Diagnostic::warning("W0401", decl.name.span, format!("`{}` is never used", decl.name.name))
                    .with_label("unused let")
                    .with_help("remove it, or start its name with `_`"),
            );
        }
    }
    if !c.diags.iter().any(Diagnostic::is_error) {
        c.bound_evaluation_depth(&decisions, &gates);
    }
    let has_errors = c.diags.iter().any(Diagnostic::is_error);
    let lets = c
        .let_decls
        .iter()
        .enumerate()
        .map(|(i, d)| LetDef { node: c.let_nodes[i].clone().unwrap_or_else(|| Node::constant(Value::Null, d.span)), span: d.span })
        .collect();
    let checked = Checked { schema: c.schema, inputs: c.inputs, lets, let_order: c.let_order, local_count: c.local_count, decisions, gates };
    (if has_errors { None } else { Some(checked) }, c.diags)
}

fn type_mismatch(span: Span, message: String) -> Diagnostic {
    Diagnostic::error("E0200", span, message).with_label("type mismatch")
}

impl<'a> Checker<'a> {
    /// Evaluation recurses through expressions and into the lets they use;
    /// refuse packs whose total depth could exhaust a small thread's stack.
    fn bound_evaluation_depth(&mut self, decisions: &[DecisionIr], gates: &[GateIr]) {
        fn depth(node: &Node, lets: &[usize]) -> usize {
            let own = match node.kind {
                Kind::Let(i) => lets.get(i as usize).copied().unwrap_or(0),
                _ => 0,
            };
            let mut deepest = own;
            children(node, &mut |c| deepest = deepest.max(depth(c, lets)));
            deepest + 1
        }
        let mut let_depths = vec![0; self.let_nodes.len()];
        let mut nodes: Vec<&Node> = Vec::new();
        for &i in &self.let_order {
            if let Some(node) = &self.let_nodes[i as usize] {
                let_depths[i as usize] = depth(node, &let_depths);
                nodes.push(node);
            }
        }
        for d in decisions {
            for arm in d.arms.iter().chain(std::iter::once(&d.otherwise)) {
                nodes.push(&arm.condition);
                nodes.extend(arm.outcome.reason.iter());
                nodes.extend(arm.outcome.fields.iter().map(|(_, n)| n));
            }
        }
        for g in gates {
            if let Some(r) = &g.requested {
                nodes.push(&r.condition);
                nodes.extend(r.fail.iter().chain(r.pass.iter()));
            }
            for c in &g.checks {
                nodes.extend([&c.condition, &c.fail]);
                nodes.extend(c.guard.iter());
                nodes.extend(c.pass.iter());
                nodes.extend(c.fields.iter().map(|(_, n)| n));
            }
            nodes.extend(g.statuses.iter().map(|(_, n)| n));
        }
        let mut reports = Vec::new();
        for node in nodes {
            let d = depth(node, &let_depths);
            if d > MAX_EVALUATION_DEPTH {
                reports.push(
                    Diagnostic::error("E0002", node.span, format!("this expression is {d} levels deep once its `let`s are expanded"))
                        .with_help(format!("at most {MAX_EVALUATION_DEPTH} levels: simplify the expression or the lets it uses")),
                );
            }
        }
        reports.truncate(1);
        self.diags.extend(reports);
    }

    fn error_count(&self) -> usize {
        self.diags.iter().filter(|d| d.is_error()).count()
    }

    fn err(&mut self, d: Diagnostic) -> (Node, Ty) {
        let span = d.span;
        self.diags.push(d);
        (Node::constant(Value::Null, span), Ty::Any)
    }

    fn show(&self, ty: &Ty) -> String {
        ty.display(&self.schema).to_string()
    }

    fn snippet(&self, span: Span) -> String {
        let text = self.source.get(span.start..span.end).unwrap_or("");
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    // ---- declarations ------------------------------------------------------

    fn declare_types(&mut self, pack: &'a ast::Pack) {
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
                let (line, _) = cavra_grammar::diagnostic::line_col(self.source, first.start);
                self.diags.push(
                    Diagnostic::error("E0301", t.name.span, format!("type `{}` is defined twice", t.name.name))
                        .with_label("second definition")
                        .with_help(format!("the first definition is on line {line}")),
                );
                continue;
            }
            first_seen.insert(&t.name.name, t.name.span);
            let id = self.schema.records.len() as u32;
            self.records.insert(t.name.name.clone(), id);
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
            }
            let rec = &mut self.schema.records[id as usize];
            rec.names = fields.iter().map(|f| Arc::from(f.name.as_str())).collect();
            rec.fields = fields;
            rec.by_name = by_name;
        }
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
                    Some(&id) => Ty::Record(id),
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

    fn declare_inputs_and_lets(&mut self, pack: &'a ast::Pack) {
        let mut seen: HashMap<String, Span> = HashMap::default();
        for item in &pack.items {
            let name = match item {
                ast::Item::Input(i) => &i.name,
                ast::Item::Let(l) => &l.name,
                _ => continue,
            };
            if let Some(first) = seen.get(&name.name) {
                let (line, _) = cavra_grammar::diagnostic::line_col(self.source, first.start);
                self.diags.push(
                    Diagnostic::error("E0301", name.span, format!("`{}` is defined twice", name.name))
                        .with_label("second definition")
                        .with_help(format!("the first definition is on line {line}")),
                );
                continue;
            }
            seen.insert(name.name.clone(), name.span);
            match item {
                ast::Item::Input(i) => {
                    let ty = self.resolve_type(&i.ty);
                    if i.name.name == "now" && ty.base() != &Ty::Time && !ty.is_any() {
                        self.diags.push(type_mismatch(i.ty.span, format!("the input `now` is the clock and must be `time`, not {}", self.show(&ty))));
                    }
                    self.input_names.insert(i.name.name.clone(), self.inputs.len() as u32);
                    self.inputs.push(InputDef { name: i.name.name.clone(), ty, is_static: i.is_static, span: i.span });
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
    fn let_dependency_order(&self) -> Vec<u32> {
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

    fn check_let(&mut self, index: u32) -> Ty {
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
        self.let_nodes[i] = Some(node);
        self.let_order.push(index);
        ty
    }

    // ---- decisions and gates -------------------------------------------------

    fn decision(&mut self, d: &ast::DecisionDecl) -> DecisionIr {
        let mut arms: Vec<ArmIr> = Vec::new();
        let mut ids: HashMap<String, usize> = HashMap::default();
        let mut seen_conditions: Vec<(String, Span)> = Vec::new();
        let mut always: Option<Span> = None;
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
            let text = self.snippet(arm.condition.span);
            if !clean {
                arms.push(ArmIr { id, condition, outcome, span: arm.span });
                continue;
            }
            if let Some(earlier) = always {
                let (line, _) = cavra_grammar::diagnostic::line_col(self.source, earlier.start);
                self.diags.push(
                    Diagnostic::warning("W0400", arm.condition.span, "this arm can never match")
                        .with_label("unreachable")
                        .with_help(format!("the arm on line {line} always matches first")),
                );
            } else if let Some((_, earlier)) = seen_conditions.iter().find(|(t, _)| *t == text) {
                let (line, _) = cavra_grammar::diagnostic::line_col(self.source, earlier.start);
                self.diags.push(
                    Diagnostic::warning("W0400", arm.condition.span, "this arm can never match")
                        .with_label("unreachable")
                        .with_help(format!("the arm on line {line} has the same condition and matches first")),
                );
            }
            match const_bool(&condition) {
                Some(true) if always.is_none() => always = Some(arm.condition.span),
                Some(false) => self.diags.push(Diagnostic::warning("W0402", arm.condition.span, "this condition is always false").with_label("never matches")),
                _ => {}
            }
            seen_conditions.push((text, arm.condition.span));
            arms.push(ArmIr { id, condition, outcome, span: arm.span });
        }
        let otherwise = match &d.otherwise {
            Some(o) => {
                if let Some(earlier) = always {
                    let (line, _) = cavra_grammar::diagnostic::line_col(self.source, earlier.start);
                    self.diags.push(
                        Diagnostic::warning("W0400", o.span, "`otherwise` can never be reached")
                            .with_label("unreachable")
                            .with_help(format!("the arm on line {line} always matches first")),
                    );
                }
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

    fn condition(&mut self, e: &ast::Expr, what: &str) -> Node {
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

    // ---- expressions -------------------------------------------------------

    fn expr(&mut self, e: &ast::Expr) -> (Node, Ty) {
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
                        let rec = self.schema.record(*id);
                        match rec.by_name.get(&field.name) {
                            Some(&idx) => {
                                let fty = rec.fields[idx as usize].ty.clone();
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
        if let Some((_, slot, ty)) = self.scopes.iter().rev().find(|(n, _, _)| *n == id.name) {
            return (Node::new(Kind::Local(*slot), span), ty.clone());
        }
        if !self.const_context {
            if let Some(&slot) = self.input_names.get(&id.name) {
                return (Node::new(Kind::Input(slot), span), self.inputs[slot as usize].ty.clone());
            }
            if let Some(&index) = self.let_names.get(&id.name) {
                self.let_used[index as usize] = true;
                let ty = self.check_let(index);
                return (Node::new(Kind::Let(index), span), ty);
            }
        } else if self.global_names.contains(&id.name) {
            return self.err(
                Diagnostic::error("E0200", span, format!("a field default cannot use `{}`", id.name))
                    .with_help("defaults must be constants such as 60, \"text\", [] or {}"),
            );
        }
        let mut candidates: Vec<&str> = self.scopes.iter().map(|(n, _, _)| n.as_str()).collect();
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

    fn call(&mut self, name: &ast::Ident, args: &[ast::Expr], span: Span) -> (Node, Ty) {
        let Some(builtin) = Builtin::lookup(&name.name) else {
            let names = Builtin::ALL.iter().map(|(n, _)| *n);
            let mut d = Diagnostic::error("E0103", name.span, format!("unknown function `{}`", name.name)).with_label("not a function");
            if let Some(s) = did_you_mean(&name.name, names) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            for a in args {
                self.expr(a);
            }
            return self.err(d);
        };
        let typed: Vec<(Node, Ty)> = args.iter().map(|a| self.expr(a)).collect();
        use Builtin::*;
        if matches!(builtin, Active | ActiveUntil) && typed.len() == 2 {
            return self.active(builtin, typed, span);
        }
        let arity = match builtin {
            StartsWith | EndsWith | Contains | Join | Min | Max | Active | ActiveUntil => 2,
            _ => 1,
        };
        if typed.len() != arity {
            return self.err(
                Diagnostic::error("E0201", span, format!("`{}` takes {arity} argument{}, got {}", name.name, if arity == 1 { "" } else { "s" }, typed.len()))
                    .with_label("wrong number of arguments"),
            );
        }
        let tys: Vec<Ty> = typed.iter().map(|(_, t)| t.base().clone()).collect();
        let any = tys.iter().any(|t| matches!(t, Ty::Any));
        let result = match (builtin, tys.as_slice()) {
            (_, _) if any => Some(Ty::Any),
            (Len, [Ty::Text | Ty::List(_) | Ty::Map(_)]) => Some(Ty::Number),
            (Lower | Upper | Trim, [Ty::Text]) => Some(Ty::Text),
            (StartsWith | EndsWith | Contains, [Ty::Text, Ty::Text]) => Some(Ty::Bool),
            (Join, [Ty::List(e), Ty::Text]) if matches!(**e, Ty::Text | Ty::Any) => Some(Ty::Text),
            (Sort, [Ty::List(e)]) if matches!(e.base(), Ty::Text | Ty::Number | Ty::Time | Ty::Duration | Ty::Any) => Some(Ty::List(e.clone())),
            (Keys, [Ty::Map(_)]) => Some(Ty::List(Box::new(Ty::Text))),
            (Days | Hours | Minutes | Seconds, [Ty::Duration]) => Some(Ty::Number),
            (Floor | Ceil | Round | Abs, [Ty::Number]) => Some(Ty::Number),
            (Min | Max, [a, b]) if a == b && matches!(a, Ty::Number | Ty::Time | Ty::Duration) => Some(a.clone()),
            (ToText, [_]) => Some(Ty::Text),
            (DurationDays, [Ty::Number]) => Some(Ty::Duration),
            (LooksLikeUrl | LooksLikeHostname | LooksLikeIp | LooksLikeEmail | LooksLikeSecret | LooksLikeSecretKey, [Ty::Text]) => Some(Ty::Bool),
            _ => None,
        };
        match result {
            Some(ty) => (Node::new(Kind::Call(builtin, typed.into_iter().map(|(n, _)| n).collect()), span), ty),
            None => {
                let shown: Vec<String> = typed.iter().map(|(_, t)| self.show(t)).collect();
                let msg = format!("`{}` cannot be applied to ({})", name.name, shown.join(", "));
                self.err(type_mismatch(span, msg).with_help(format!("see the built-in functions in docs/language.md: {}", signature(builtin))))
            }
        }
    }

    /// `active(w, t)`: `w` is a recurrence, or a record with `start_at` and
    /// `end_at` (time) and/or `recurrence`. Lowered to a call on the three
    /// fields (null where the record lacks one) so that the index can see
    /// which fields of a scanned element bound the window.
    fn active(&mut self, builtin: Builtin, mut typed: Vec<(Node, Ty)>, span: Span) -> (Node, Ty) {
        let result = if builtin == Builtin::Active { Ty::Bool } else { Ty::Optional(Box::new(Ty::Time)) };
        let (at, at_ty) = typed.pop().unwrap_or((Node::constant(Value::Null, span), Ty::Any));
        let (window, window_ty) = typed.pop().unwrap_or((Node::constant(Value::Null, span), Ty::Any));
        if !matches!(at_ty.base(), Ty::Time | Ty::Any) {
            let shown = self.show(&at_ty);
            return self.err(type_mismatch(at.span, format!("`{}` needs a time as its second argument, but this is {shown}", builtin.name())));
        }
        let null = || Node::constant(Value::Null, span);
        let parts = match window_ty.base() {
            Ty::Any => return (Node::new(Kind::Call(builtin, vec![null(), null(), window, at]), span), Ty::Any),
            Ty::Recurrence => [null(), null(), window],
            Ty::Record(id) => {
                let rec = self.schema.record(*id);
                let name = rec.name.clone();
                let mut found = Vec::with_capacity(3);
                for (field, want) in [("start_at", Ty::Time), ("end_at", Ty::Time), ("recurrence", Ty::Recurrence)] {
                    let Some(&idx) = rec.by_name.get(field) else {
                        found.push(None);
                        continue;
                    };
                    let ty = rec.fields[idx as usize].ty.clone();
                    if ty.base() != &want {
                        let (want, got) = (self.show(&want), self.show(&ty));
                        return self.err(type_mismatch(window.span, format!("`{}` needs `{name}.{field}` to be {want}, but it is {got}", builtin.name())));
                    }
                    found.push(Some(Node::new(Kind::Field(Box::new(window.clone()), idx), window.span)));
                }
                match found.as_slice() {
                    [Some(_), Some(_), _] | [_, _, Some(_)] => {
                        let mut found = found.into_iter().map(|n| n.unwrap_or_else(null));
                        [found.next().unwrap_or_else(null), found.next().unwrap_or_else(null), found.next().unwrap_or_else(null)]
                    }
                    _ => {
                        return self.err(
                            type_mismatch(
                                window.span,
                                format!("`{}` needs a window, but `{name}` has neither `start_at` and `end_at` nor `recurrence`", builtin.name()),
                            )
                            .with_help("declare start_at: time? and end_at: time?, and/or recurrence: recurrence?"),
                        );
                    }
                }
            }
            other => {
                let shown = self.show(other);
                return self.err(
                    type_mismatch(window.span, format!("`{}` needs a window record or a recurrence, but this is {shown}", builtin.name()))
                        .with_help(format!("see the built-in functions in docs/language.md: {}", signature(builtin))),
                );
            }
        };
        let [start, end, recurrence] = parts;
        (Node::new(Kind::Call(builtin, vec![start, end, recurrence, at]), span), result)
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
        self.scopes.push((q.var.name.clone(), local, elem.clone()));
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

/// Deepest expression tree (with lets expanded) a pack may have; evaluation
/// recurses once per level.
const MAX_EVALUATION_DEPTH: usize = 256;

/// Names an expression refers to, minus those its own quantifiers bind.
fn free_names<'a>(e: &'a ast::Expr, bound: &mut Vec<&'a str>, out: &mut Vec<&'a str>) {
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

fn const_bool(node: &Node) -> Option<bool> {
    // Only an expression without inputs, lets or outer variables can be constant.
    if !crate::compile::is_closed(node, &mut Vec::new()) && !matches!(node.kind, Kind::Or(..) | Kind::And(..)) {
        return None;
    }
    let folded = crate::compile::fold(node.clone(), &[]);
    match folded.as_const() {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    }
}

fn signature(b: Builtin) -> &'static str {
    use Builtin::*;
    match b {
        Len => "len(text | list | map) -> number",
        Lower | Upper | Trim => "lower/upper/trim(text) -> text",
        StartsWith | EndsWith | Contains => "starts_with/ends_with/contains(text, text) -> bool",
        Join => "join(list<text>, text) -> text",
        Sort => "sort(list<T>) -> list<T>",
        Keys => "keys(map<T>) -> list<text>",
        Days | Hours | Minutes | Seconds => "days/hours/minutes/seconds(duration) -> number",
        Floor | Ceil | Round | Abs => "floor/ceil/round/abs(number) -> number",
        Min | Max => "min/max(a, b) for numbers, times or durations",
        ToText => "text(any) -> text",
        DurationDays => "duration_days(number) -> duration",
        LooksLikeUrl | LooksLikeHostname | LooksLikeIp | LooksLikeEmail | LooksLikeSecret => {
            "looks_like_url/looks_like_hostname/looks_like_ip/looks_like_email/looks_like_secret(text) -> bool"
        }
        LooksLikeSecretKey => "looks_like_secret_key(text) -> bool",
        Active => "active(window, time) -> bool, where window is a recurrence or a record with start_at/end_at (time?) and/or recurrence (recurrence?)",
        ActiveUntil => "active_until(window, time) -> time?, the end of the window's open period that contains the time (null when it is not open)",
    }
}
