//! Compilation of checked IR into a bound program: static inputs become
//! constants, closed expressions and static `let`s are folded (`fold.rs`),
//! and scans over static lists are replaced by indexes (`index.rs`).

use crate::check::Checked;
use crate::fold::{fold, is_closed};
use crate::index::{self, conjuncts};
use crate::ir::*;
use crate::value::Value;

fn substitute_inputs(node: &mut Node, statics: &[Option<Value>]) {
    if let Kind::Input(slot) = node.kind {
        if let Some(Some(v)) = statics.get(slot as usize) {
            *node = Node::constant(v.clone(), node.span);
        }
        return;
    }
    children_mut(node, &mut |c| substitute_inputs(c, statics));
}

/// `q w in STATIC where A and B`, where `A` reads only `w` and constants,
/// becomes `q w in (filter w in STATIC where A) where B`: the inner scan is
/// closed, so folding runs it once at bind time. With the clock pinned
/// ([`crate::BindOptions::clock`]) this leaves only the windows open at that
/// instant, and a decision scans those few.
fn split_static_filters(node: &mut Node) {
    children_mut(node, &mut |c| split_static_filters(c));
    let span = node.span;
    let Kind::Scan(scan) = &mut node.kind else { return };
    let Some(filter) = &scan.filter else { return };
    if !is_closed(&scan.source, &mut Vec::new()) {
        return;
    }
    let mut parts = Vec::new();
    conjuncts(filter, &mut parts);
    let (fixed, rest): (Vec<Node>, Vec<Node>) = parts.into_iter().partition(|p| is_closed(p, &mut vec![scan.local]));
    if fixed.is_empty() || rest.is_empty() {
        return; // nothing to split: all dynamic, or the whole scan folds anyway
    }
    let join = |parts: Vec<Node>| parts.into_iter().reduce(|a, b| Node::new(Kind::And(Box::new(a), Box::new(b)), span));
    let source = std::mem::replace(&mut scan.source, Node::constant(Value::Null, span));
    let inner = Scan { kind: cavra_grammar::ast::QuantKind::Filter, local: scan.local, source, filter: join(fixed), key: None };
    scan.source = Node::new(Kind::Scan(Box::new(inner)), span);
    scan.filter = join(rest);
}

fn index_scans(node: &mut Node, horizon: (i64, i64)) {
    children_mut(node, &mut |c| index_scans(c, horizon));
    if let Kind::Scan(scan) = &node.kind {
        if let Some(ix) = index::build(scan, horizon) {
            node.kind = Kind::Indexed(Box::new(ix));
        }
    }
}

/// The compiled parts of a program.
pub(crate) struct Compiled {
    pub lets: Vec<LetDef>,
    pub decisions: Vec<DecisionIr>,
    pub gates: Vec<GateIr>,
}

/// Binds the static input values (`statics[slot]`, `None` for dynamic slots)
/// and optimises everything. `index` is `Some(horizon)` to index scans,
/// expanding recurring windows within the horizon.
pub(crate) fn compile(checked: &Checked, statics: &[Option<Value>], index: Option<(i64, i64)>) -> Compiled {
    let mut lets = checked.lets.clone();
    let mut let_consts: Vec<Option<Value>> = vec![None; lets.len()];
    for &i in &checked.let_order {
        let def = &mut lets[i as usize];
        substitute_inputs(&mut def.node, statics);
        split_static_filters(&mut def.node);
        let taken = std::mem::replace(&mut def.node, Node::constant(Value::Null, def.span));
        def.node = fold(taken, &let_consts);
        if let Some(v) = def.node.as_const() {
            let_consts[i as usize] = Some(v.clone());
        }
    }
    let finish = |node: &mut Node| {
        substitute_inputs(node, statics);
        split_static_filters(node);
        let taken = std::mem::replace(node, Node::constant(Value::Null, node.span));
        *node = fold(taken, &let_consts);
        if let Some(horizon) = index {
            index_scans(node, horizon);
        }
    };
    for def in &mut lets {
        finish(&mut def.node);
    }
    let mut decisions = checked.decisions.clone();
    for d in &mut decisions {
        for arm in d.arms.iter_mut().chain(std::iter::once(&mut d.otherwise)) {
            finish(&mut arm.condition);
            arm.outcome.reason.iter_mut().for_each(&finish);
            arm.outcome.fields.iter_mut().for_each(|(_, n)| finish(n));
        }
    }
    let mut gates = checked.gates.clone();
    for g in &mut gates {
        if let Some(r) = &mut g.requested {
            finish(&mut r.condition);
            r.fail.iter_mut().chain(r.pass.iter_mut()).for_each(&finish);
        }
        for c in &mut g.checks {
            c.guard.iter_mut().for_each(&finish);
            finish(&mut c.condition);
            finish(&mut c.fail);
            c.pass.iter_mut().for_each(&finish);
            c.fields.iter_mut().for_each(|(_, n)| finish(n));
        }
        g.statuses.iter_mut().for_each(|(_, n)| finish(n));
    }
    Compiled { lets, decisions, gates }
}
