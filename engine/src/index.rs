//! Indexes for scans over static lists.
//!
//! A scan such as
//! `first w in policy.windows where w.start_at <= now < w.end_at and (w.owners is empty or owner in w.owners)`
//! is split into an interval conjunct, membership conjuncts ("dimensions") and
//! the rest (the residual). At bind time every element is put into the buckets
//! of its dimension keys (or the wildcard bucket when its list is empty), and
//! each bucket keeps its intervals as sorted elementary segments, each with the
//! elements covering it in list order. A lookup is then: one hash per
//! dimension, a binary search per candidate bucket, and a merge of at most
//! 2^dims short lists in list order, on which the residual runs as in a scan.
//! Lists reached through one lookup in a static map
//! (`policy.owner_calendars[owner].unavailable_windows`) get one index per entry.
//!
//! `active(w, now)` is an interval conjunct too: a one-off window gives one
//! interval, a recurring one its occurrences inside the bind-time horizon,
//! all in the same segment tables. A lookup outside the horizon of an index
//! that holds recurring windows runs the plain scan instead, so results never
//! depend on the horizon, only speed does.
//!
//! This module recognises the shapes and builds the lookups (at bind time,
//! for the compiler); the index data lives in `scan_index.rs`, the lookup
//! node in the IR (`ir.rs`), and the evaluator answers lookups (`eval.rs`).

use crate::ir::{any_node, Builtin, InKind, IndexedScan, Kind, Node, Scan};
// The lookup node lives in the IR; `table.rs` still names its source by this path.
pub(crate) use crate::ir::IndexSource;
use crate::scan_index::{Interval, ScanIndex, MAX_DIMS};
use crate::value::{MapValue, Value};
use cavra_grammar::ast::{CompareOp, QuantKind, TestOp};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// The shape recognised in a `where` clause.
struct Pattern {
    interval: Interval,
    time: Node,
    dims: Vec<(u32, bool, Node)>,
    residual: Vec<Node>,
}

/// Turns a scan into an index lookup when its source is static and its
/// `where` clause has an interval conjunct. `None` leaves the scan as is.
pub(crate) fn build(scan: &Scan, horizon: (i64, i64)) -> Option<IndexedScan> {
    if !matches!(scan.kind, QuantKind::Any | QuantKind::First | QuantKind::Count | QuantKind::Filter | QuantKind::Max | QuantKind::Min) {
        return None;
    }
    let pattern = recognise(scan.filter.as_ref()?, scan.local)?;
    let fields: Vec<(u32, bool)> = pattern.dims.iter().map(|(field, wildcard, _)| (*field, *wildcard)).collect();
    let index = |items: &Arc<[Value]>| ScanIndex::build(items, &pattern.interval, &fields, horizon);
    let source = match &scan.source.kind {
        Kind::Const(Value::List(items)) => IndexSource::Direct(Arc::new(index(items)?)),
        _ => {
            let (map, key, path) = keyed_path(&scan.source)?;
            let mut indexes = FxHashMap::default();
            for (k, v) in map.entries() {
                let mut list = v.clone();
                for &field in &path {
                    list = match list {
                        Value::Record(r) => r.values.get(field as usize).cloned().unwrap_or(Value::Null),
                        _ => Value::Null,
                    };
                }
                match list {
                    Value::List(items) => {
                        indexes.insert(k.clone(), index(&items)?);
                    }
                    Value::Null => {}
                    _ => return None,
                }
            }
            IndexSource::Keyed { key, indexes: Arc::new(indexes) }
        }
    };
    let residual = pattern.residual.into_iter().reduce(|a, b| {
        let span = a.span.to(b.span);
        Node::new(Kind::And(Box::new(a), Box::new(b)), span)
    });
    Some(IndexedScan {
        kind: scan.kind,
        local: scan.local,
        source,
        time: pattern.time,
        keys: pattern.dims.into_iter().map(|(_, _, k)| k).collect(),
        residual,
        by: scan.key.clone(),
        fallback: scan.clone(),
    })
}

/// `static_map[key].field.field`: the map, the key and the field path.
fn keyed_path(source: &Node) -> Option<(Arc<MapValue>, Node, Vec<u32>)> {
    let mut path = Vec::new();
    let mut node = source;
    while let Kind::Field(inner, idx) = &node.kind {
        path.push(*idx);
        node = inner;
    }
    path.reverse();
    let Kind::MapGet(map, key) = &node.kind else {
        return None;
    };
    let Kind::Const(Value::Map(map)) = &map.kind else {
        return None;
    };
    Some((map.clone(), (**key).clone(), path))
}

/// The operands of a chain of `and`s, in order.
pub(crate) fn conjuncts(node: &Node, out: &mut Vec<Node>) {
    match &node.kind {
        Kind::And(a, b) => {
            conjuncts(a, out);
            conjuncts(b, out);
        }
        _ => out.push(node.clone()),
    }
}

/// `w.field` for the scan variable.
fn var_field(node: &Node, local: u32) -> Option<u32> {
    match &node.kind {
        Kind::Field(inner, idx) if matches!(inner.kind, Kind::Local(l) if l == local) => Some(*idx),
        _ => None,
    }
}

fn invariant(node: &Node, local: u32) -> bool {
    !any_node(node, &|n| matches!(n.kind, Kind::Local(l) if l == local))
}

/// An instant the index can look up: an input, a let or a constant time,
/// not depending on the scan variable.
fn loop_invariant_time(node: &Node, local: u32) -> bool {
    invariant(node, local) && matches!(node.kind, Kind::Input(_) | Kind::Let(_) | Kind::Const(Value::Time(_)))
}

/// A time operand that can be compared across conjuncts (the same input or let).
fn same_time(a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (Kind::Input(x), Kind::Input(y)) | (Kind::Let(x), Kind::Let(y)) => x == y,
        (Kind::Const(x), Kind::Const(y)) => x == y,
        _ => false,
    }
}

enum Bound {
    /// `w.field <= t` (inclusive) or `w.field < t`.
    Lower(u32, bool, Node),
    /// `t < w.field` (exclusive end) or `t <= w.field` (inclusive end).
    Upper(u32, bool, Node),
}

/// One comparison `a op b` in terms of the scan variable's fields.
fn bound(a: &Node, op: CompareOp, b: &Node, local: u32) -> Option<Bound> {
    use CompareOp::*;
    let time_ok = |n: &Node| loop_invariant_time(n, local);
    if let (Some(f), true) = (var_field(a, local), time_ok(b)) {
        return match op {
            Le => Some(Bound::Lower(f, true, b.clone())),
            Lt => Some(Bound::Lower(f, false, b.clone())),
            Gt => Some(Bound::Upper(f, false, b.clone())),
            Ge => Some(Bound::Upper(f, true, b.clone())),
            _ => None,
        };
    }
    if let (Some(f), true) = (var_field(b, local), time_ok(a)) {
        return match op {
            Lt => Some(Bound::Upper(f, false, a.clone())),
            Le => Some(Bound::Upper(f, true, a.clone())),
            Ge => Some(Bound::Lower(f, true, a.clone())),
            Gt => Some(Bound::Lower(f, false, a.clone())),
            _ => None,
        };
    }
    None
}

/// `key in w.field`, or `w.field is empty or key in w.field` (either order).
fn dimension(node: &Node, local: u32) -> Option<(u32, bool, Node)> {
    let member = |n: &Node| match &n.kind {
        Kind::In(InKind::List, key, list) if invariant(key, local) => var_field(list, local).map(|f| (f, (**key).clone())),
        _ => None,
    };
    let empty = |n: &Node| match &n.kind {
        Kind::Test(inner, TestOp::Empty) => var_field(inner, local),
        _ => None,
    };
    if let Some((f, key)) = member(node) {
        return Some((f, false, key));
    }
    if let Kind::Or(a, b) = &node.kind {
        for (x, y) in [(a, b), (b, a)] {
            if let (Some(fe), Some((fm, key))) = (empty(x), member(y)) {
                if fe == fm {
                    return Some((fm, true, key));
                }
            }
        }
    }
    None
}

fn recognise(filter: &Node, local: u32) -> Option<Pattern> {
    let mut parts = Vec::new();
    conjuncts(filter, &mut parts);
    let mut lower: Option<(u32, bool, Node)> = None;
    let mut upper: Option<(u32, bool, Node)> = None;
    let mut dims = Vec::new();
    let mut residual = Vec::new();
    // An `active(w, t)` conjunct is the interval; comparisons then stay conditions.
    let active = parts.iter().position(|p| active_call(p, local).is_some());
    let active = active.and_then(|i| active_call(&parts.remove(i), local));
    for part in parts {
        let mut used = false;
        if let (Kind::Compare(first, rest), None) = (&part.kind, &active) {
            let mut bounds = Vec::new();
            let mut left = &**first;
            for (op, right) in rest {
                bounds.push(bound(left, *op, right, local));
                left = right;
            }
            if bounds.iter().all(Option::is_some) {
                let (mut new_lower, mut new_upper, mut ok) = (lower.clone(), upper.clone(), true);
                for b in bounds.into_iter().flatten() {
                    match b {
                        Bound::Lower(f, inc, t) if new_lower.is_none() => new_lower = Some((f, inc, t)),
                        Bound::Upper(f, inc, t) if new_upper.is_none() => new_upper = Some((f, inc, t)),
                        _ => ok = false,
                    }
                }
                if ok {
                    lower = new_lower;
                    upper = new_upper;
                    used = true;
                }
            }
        }
        if !used && dims.len() < MAX_DIMS {
            if let Some(dim) = dimension(&part, local) {
                dims.push(dim);
                used = true;
            }
        }
        if !used {
            residual.push(part);
        }
    }
    if let Some((interval, time)) = active {
        return Some(Pattern { interval, time, dims, residual });
    }
    if lower.is_none() && upper.is_none() && !dims.is_empty() {
        // Key dimensions alone still narrow the scan to one bucket lookup.
        return Some(Pattern { interval: Interval::Always, time: Node::constant(Value::Time(0), filter.span), dims, residual });
    }
    let (start, start_inclusive, t1) = lower?;
    let (end, end_inclusive, t2) = upper?;
    if !same_time(&t1, &t2) {
        return None;
    }
    Some(Pattern { interval: Interval::Fields { start, start_inclusive, end, end_inclusive }, time: t1, dims, residual })
}

/// `active(w, t)` after lowering: `Call(Active, [w.start|null, w.end|null, w.recurrence|null, t])`.
fn active_call(node: &Node, local: u32) -> Option<(Interval, Node)> {
    let Kind::Call(Builtin::Active, args) = &node.kind else {
        return None;
    };
    let [start, end, recurrence, at] = args.as_slice() else {
        return None;
    };
    let field = |n: &Node| match &n.kind {
        Kind::Const(Value::Null) => Some(None),
        _ => var_field(n, local).map(Some),
    };
    if !loop_invariant_time(at, local) {
        return None;
    }
    Some((Interval::Active { start: field(start)?, end: field(end)?, recurrence: field(recurrence)? }, at.clone()))
}
