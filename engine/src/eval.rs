//! The tree-walking evaluator over compiled IR. Never panics: every runtime
//! problem is an [`EvalError`] carrying the span of the expression at fault.
//! It runs builtins through their registry entries (`builtins/`) and answers
//! index lookups from their data (`scan_index.rs`).

use crate::builtins::Run;
pub use crate::error::EvalError;
use crate::error::{fail, Result};
use crate::ir::*;
use crate::scan_index::{Covering, MAX_DIMS};
use crate::value::{MapValue, Value};
use cavra_grammar::ast::{CompareOp, QuantKind, Span, TestOp};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;

/// A value as the evaluator hands it on: borrowed from the bound program
/// (constants, static policy data and everything reached through them) or
/// owned (computed, or copied from an input). Borrowing is what lets many
/// threads decide on one program without writing to its reference counts.
pub(crate) type Val<'p> = Cow<'p, Value>;

/// What stays fixed during one evaluation: the program's lets (`'p`) and the
/// request's inputs (`'i`, usually shorter).
pub(crate) struct Env<'p, 'i> {
    pub lets: &'p [LetDef],
    pub inputs: &'i [Value],
}

/// Per-evaluation scratch: `let` caches first, then quantifier variables.
pub(crate) struct Frame<'s, 'p> {
    pub slots: &'s mut [Option<Val<'p>>],
    pub let_count: usize,
    /// Interpolated texts already made in this session (see [`TextMemo`]).
    pub texts: Option<&'s mut TextMemo>,
}

/// The interpolated texts a session has made, so that evaluating the same
/// text again (the same reason for another route, say) shares one
/// allocation instead of making and later freeing another. Bounded: it
/// starts over when full.
#[derive(Debug, Default)]
pub(crate) struct TextMemo {
    texts: rustc_hash::FxHashSet<Arc<str>>,
}

impl TextMemo {
    const CAPACITY: usize = 4096;

    fn text(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.texts.get(text) {
            return shared.clone();
        }
        if self.texts.len() >= Self::CAPACITY {
            self.texts.clear();
        }
        let made: Arc<str> = Arc::from(text);
        self.texts.insert(made.clone());
        made
    }
}

/// Evaluates a closed expression (no inputs, lets or free variables).
pub fn eval_const(node: &Node) -> std::result::Result<Value, EvalError> {
    let mut max_local = 0u32;
    collect_max_local(node, &mut max_local);
    let mut slots = vec![None; max_local as usize + 1];
    let env = Env { lets: &[], inputs: &[] };
    Ok(eval(node, &env, &mut Frame { slots: &mut slots, let_count: 0, texts: None })?.into_owned())
}

fn collect_max_local(node: &Node, max: &mut u32) {
    match &node.kind {
        Kind::Local(l) => *max = (*max).max(*l),
        Kind::Scan(s) => *max = (*max).max(s.local),
        _ => {}
    }
    children(node, &mut |c| collect_max_local(c, max));
}

/// The recursive dispatcher. It stays small (heavier cases live in their own
/// functions) because its frame size times the tree depth is the stack used.
pub(crate) fn eval<'p>(node: &'p Node, env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>) -> Result<Val<'p>> {
    match &node.kind {
        Kind::Const(v) => Ok(Cow::Borrowed(v)),
        Kind::Input(slot) => Ok(Cow::Owned(env.inputs.get(*slot as usize).cloned().unwrap_or(Value::Null))),
        Kind::Let(i) => {
            force_let(*i as usize, node.span, env, frame)?;
            Ok(frame.slots[*i as usize].clone().unwrap_or(Cow::Borrowed(&NULL)))
        }
        Kind::Local(l) => Ok(frame.slots.get(frame.let_count + *l as usize).cloned().flatten().unwrap_or(Cow::Borrowed(&NULL))),
        Kind::Field(target, idx) => {
            if let Some(v) = prepared(node, env, frame)? {
                return Ok(v);
            }
            let target = eval(target, env, frame)?;
            field(target, *idx, node.span)
        }
        Kind::MapGet(target, key) => {
            if let Some(v) = prepared(node, env, frame)? {
                return Ok(v);
            }
            let map = eval(target, env, frame)?;
            let key = eval(key, env, frame)?;
            map_get(map, &key, node.span)
        }
        Kind::ListGet(target, index) => {
            let list = eval(target, env, frame)?;
            let index = eval(index, env, frame)?;
            list_get(list, &index, node.span)
        }
        Kind::Call(builtin, args) => call(*builtin, args, env, frame, node.span).map(Cow::Owned),
        Kind::Not(inner) => Ok(bool_val(!truth(inner, env, frame)?)),
        Kind::Neg(inner) => {
            let v = eval(inner, env, frame)?;
            negate(&v, inner.span, node.span).map(Cow::Owned)
        }
        Kind::Arith(op, a, b) => {
            let x = eval(a, env, frame)?;
            let y = eval(b, env, frame)?;
            arith(*op, x.into_owned(), y.into_owned(), a.span, b.span, node.span).map(Cow::Owned)
        }
        Kind::Compare(first, rest) => Ok(bool_val(compare_chain(first, rest, env, frame)?)),
        Kind::And(a, b) => Ok(bool_val(truth(a, env, frame)? && truth(b, env, frame)?)),
        Kind::Or(a, b) => Ok(bool_val(truth(a, env, frame)? || truth(b, env, frame)?)),
        Kind::In(kind, needle, hay) => Ok(bool_val(contains(*kind, needle, hay, env, frame)?)),
        Kind::NotIn(kind, needle, hay) => Ok(bool_val(!contains(*kind, needle, hay, env, frame)?)),
        Kind::Test(inner, op) => Ok(bool_val(test_node(inner, *op, env, frame, node.span)?)),
        Kind::Default(a, b) => match eval(a, env, frame)? {
            v if v.is_null() => eval(b, env, frame),
            v => Ok(v),
        },
        Kind::If(c, t, f) => {
            if truth(c, env, frame)? {
                eval(t, env, frame)
            } else {
                eval(f, env, frame)
            }
        }
        Kind::Text(parts) => text(parts, env, frame).map(Cow::Owned),
        Kind::List(items) => list(items, env, frame).map(Cow::Owned),
        Kind::Map(entries) => map(entries, env, frame).map(Cow::Owned),
        Kind::Scan(scan) => run_scan(scan, env, frame),
        Kind::Indexed(ix) => lookup(ix, env, frame, node.span),
    }
}

pub(crate) static NULL: Value = Value::Null;
static TRUE: Value = Value::Bool(true);
static FALSE: Value = Value::Bool(false);

fn bool_val(b: bool) -> Val<'static> {
    Cow::Borrowed(if b { &TRUE } else { &FALSE })
}

/// Computes `let` number `i` into its slot unless it is there already.
fn force_let<'p>(i: usize, span: Span, env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>) -> Result<()> {
    if let Some(Some(_)) = frame.slots.get(i) {
        return Ok(());
    }
    let Some(def) = env.lets.get(i) else {
        return fail(span, "internal: unknown let");
    };
    let v = eval(&def.node, env, frame)?;
    frame.slots[i] = Some(v);
    Ok(())
}

// ---- reading in place -------------------------------------------------------
//
// Operands that are already somewhere (a constant, an input, a quantifier
// variable, a computed `let`, or a field or map entry of those) are read
// where they are. What lives in the program is handed on borrowed; only what
// lives in this evaluation (inputs, owned lets) is copied when it leaves.

/// Where a value read in place lives: in the program (`'p`, handed on
/// borrowed) or in this evaluation's inputs and slots (`'a`, copied to leave).
#[derive(Clone, Copy)]
enum At<'a, 'p: 'a> {
    Program(&'p Value),
    Here(&'a Value),
}

impl<'a, 'p: 'a> At<'a, 'p> {
    fn value(self) -> &'a Value {
        match self {
            At::Program(v) => v,
            At::Here(v) => v,
        }
    }

    fn to_val(self) -> Val<'p> {
        match self {
            At::Program(v) => Cow::Borrowed(v),
            At::Here(v) => Cow::Owned(v.clone()),
        }
    }

    fn slot(slot: &'a Val<'p>) -> At<'a, 'p> {
        match slot {
            Cow::Borrowed(v) => At::Program(v),
            Cow::Owned(v) => At::Here(v),
        }
    }

    /// The same step (a field, a map entry) taken on the value wherever it lives.
    fn step(self, f: impl for<'x> FnOnce(&'x Value) -> Option<&'x Value>) -> Option<At<'a, 'p>> {
        Some(match self {
            At::Program(v) => At::Program(f(v)?),
            At::Here(v) => At::Here(f(v)?),
        })
    }
}

/// The value of `node` read in place, or `None` when it must be evaluated.
/// Lets are only read once computed: call [`prepare`] first.
fn peek<'a, 'p>(node: &'p Node, env: &'a Env<'p, '_>, frame: &'a Frame<'_, 'p>) -> Option<&'a Value> {
    peek_in(node, env, Some(frame)).map(At::value)
}

/// Like [`peek`] for values that live outside the frame (constants and
/// inputs), so the frame stays free while they are read.
fn peek_static<'a, 'p>(node: &'p Node, env: &'a Env<'p, '_>) -> Option<&'a Value> {
    peek_in(node, env, None).map(At::value)
}

/// [`peek`], reading quantifier variables and lets only when given the frame.
fn peek_in<'a, 'p>(node: &'p Node, env: &'a Env<'p, '_>, frame: Option<&'a Frame<'_, 'p>>) -> Option<At<'a, 'p>> {
    match &node.kind {
        Kind::Const(v) => Some(At::Program(v)),
        Kind::Input(slot) => Some(env.inputs.get(*slot as usize).map_or(At::Program(&NULL), At::Here)),
        Kind::Local(l) => {
            let frame = frame?;
            Some(frame.slots.get(frame.let_count + *l as usize).and_then(Option::as_ref).map_or(At::Program(&NULL), At::slot))
        }
        Kind::Let(i) => frame?.slots.get(*i as usize)?.as_ref().map(At::slot),
        Kind::Field(target, idx) => peek_in(target, env, frame)?.step(|v| match v {
            Value::Record(r) => Some(r.values.get(*idx as usize).unwrap_or(&NULL)),
            Value::Null => Some(&NULL),
            // Not a record: `eval` reports it.
            _ => None,
        }),
        Kind::MapGet(target, key) => {
            let key = peek_in(key, env, frame)?.value();
            peek_in(target, env, frame)?.step(|map| match (map, key) {
                (Value::Map(m), Value::Text(k)) => Some(m.get(k).unwrap_or(&NULL)),
                (Value::Null, _) | (_, Value::Null) => Some(&NULL),
                _ => None,
            })
        }
        _ => None,
    }
}

/// Computes the lets that `node` reads through fields and map entries, so
/// that [`peek`] can read it.
fn prepare<'p>(node: &'p Node, env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>) -> Result<()> {
    match &node.kind {
        Kind::Let(i) => force_let(*i as usize, node.span, env, frame),
        Kind::Field(target, _) => prepare(target, env, frame),
        Kind::MapGet(target, key) => {
            prepare(target, env, frame)?;
            prepare(key, env, frame)
        }
        _ => Ok(()),
    }
}

/// `node`'s value taken from where it is, when it can be read in place.
fn prepared<'p>(node: &'p Node, env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>) -> Result<Option<Val<'p>>> {
    prepare(node, env, frame)?;
    Ok(peek_in(node, env, Some(frame)).map(At::to_val))
}

/// Evaluates an operand for reading: `None` when [`read`] finds it in place,
/// else its value.
fn operand<'p>(node: &'p Node, env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>) -> Result<Option<Val<'p>>> {
    prepare(node, env, frame)?;
    if peek(node, env, frame).is_some() {
        return Ok(None);
    }
    eval(node, env, frame).map(Some)
}

/// The value of an operand after [`operand`].
fn read<'a, 'p>(owned: &'a Option<Val<'p>>, node: &'p Node, env: &'a Env<'p, '_>, frame: &'a Frame<'_, 'p>) -> &'a Value {
    match owned {
        Some(v) => v,
        None => peek(node, env, frame).unwrap_or(&NULL),
    }
}

fn field(target: Val<'_>, idx: u32, span: Span) -> Result<Val<'_>> {
    match target {
        Cow::Borrowed(Value::Record(r)) => Ok(Cow::Borrowed(r.values.get(idx as usize).unwrap_or(&NULL))),
        Cow::Owned(Value::Record(r)) => Ok(Cow::Owned(r.values.get(idx as usize).cloned().unwrap_or(Value::Null))),
        v if v.is_null() => Ok(Cow::Borrowed(&NULL)),
        other => fail(span, format!("cannot read a field of {}", other.type_name())),
    }
}

fn map_get<'p>(map: Val<'p>, key: &Value, span: Span) -> Result<Val<'p>> {
    match (map, key) {
        (Cow::Borrowed(Value::Map(m)), Value::Text(k)) => Ok(Cow::Borrowed(m.get(k).unwrap_or(&NULL))),
        (Cow::Owned(Value::Map(m)), Value::Text(k)) => Ok(Cow::Owned(m.get(k).cloned().unwrap_or(Value::Null))),
        (m, k) if m.is_null() || k.is_null() => Ok(Cow::Borrowed(&NULL)),
        (m, k) => fail(span, format!("cannot look up {} in {}", k.type_name(), m.type_name())),
    }
}

fn list_get<'p>(list: Val<'p>, index: &Value, span: Span) -> Result<Val<'p>> {
    let position = match index {
        Value::Number(n) if *n >= 0.0 && n.fract() == 0.0 => Some(*n as usize),
        _ => None,
    };
    match (list, index) {
        (Cow::Borrowed(Value::List(items)), Value::Number(_)) => Ok(Cow::Borrowed(position.and_then(|i| items.get(i)).unwrap_or(&NULL))),
        (Cow::Owned(Value::List(items)), Value::Number(_)) => Ok(Cow::Owned(position.and_then(|i| items.get(i)).cloned().unwrap_or(Value::Null))),
        (l, i) if l.is_null() || i.is_null() => Ok(Cow::Borrowed(&NULL)),
        (l, i) => fail(span, format!("cannot index {} with {}", l.type_name(), i.type_name())),
    }
}

fn negate(v: &Value, inner: Span, span: Span) -> Result<Value> {
    match v {
        Value::Number(n) => Ok(Value::Number(-n)),
        Value::Duration(d) => Ok(Value::Duration(-d)),
        Value::Null => fail(inner, "this value is missing (null)"),
        other => fail(span, format!("cannot negate {}", other.type_name())),
    }
}

fn compare_chain<'p>(first: &'p Node, rest: &'p [(CompareOp, Node)], env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>) -> Result<bool> {
    // The common `input == "constant"`: both sides are where they are.
    if let [(op, right)] = rest {
        if let (Kind::Input(slot), Kind::Const(b)) = (&first.kind, &right.kind) {
            return compare(*op, env.inputs.get(*slot as usize).unwrap_or(&NULL), b, first.span, right.span);
        }
        if let (Some(a), Some(b)) = (peek_static(first, env), peek_static(right, env)) {
            return compare(*op, a, b, first.span, right.span);
        }
    }
    let mut left_node = first;
    let mut left = operand(first, env, frame)?;
    for (op, right_node) in rest {
        let right = operand(right_node, env, frame)?;
        let holds = {
            let frame = &*frame;
            let (a, b) = (read(&left, left_node, env, frame), read(&right, right_node, env, frame));
            compare(*op, a, b, left_node.span, right_node.span)?
        };
        if !holds {
            return Ok(false);
        }
        left = right;
        left_node = right_node;
    }
    Ok(true)
}

fn test_node<'p>(inner: &'p Node, op: TestOp, env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>, span: Span) -> Result<bool> {
    if let Kind::Let(i) = inner.kind {
        force_let(i as usize, inner.span, env, frame)?;
        return test(frame.slots[i as usize].as_deref().unwrap_or(&NULL), op, span);
    }
    let owned = operand(inner, env, frame)?;
    test(read(&owned, inner, env, frame), op, span)
}

fn test(v: &Value, op: TestOp, span: Span) -> Result<bool> {
    let result = match op {
        TestOp::Exists => !v.is_null(),
        TestOp::NotExists => v.is_null(),
        TestOp::Empty | TestOp::NotEmpty => {
            let empty = match v {
                Value::Null => true,
                Value::Text(t) => t.is_empty(),
                Value::List(l) => l.is_empty(),
                Value::Map(m) => m.is_empty(),
                other => return fail(span, format!("`is empty` does not apply to {}", other.type_name())),
            };
            empty == (op == TestOp::Empty)
        }
    };
    Ok(result)
}

fn text<'p>(parts: &'p [Node], env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>) -> Result<Value> {
    use std::fmt::Write;
    thread_local! {
        // Reused, so that an interpolation costs one allocation: the result's.
        static SCRATCH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    let mut out = SCRATCH.with(|s| s.try_borrow_mut().map(|mut s| std::mem::take(&mut *s))).unwrap_or_default();
    out.clear();
    for part in parts {
        let owned = match peek_static(part, env) {
            Some(_) => None,
            None => operand(part, env, frame)?,
        };
        match read(&owned, part, env, frame) {
            Value::Text(t) => out.push_str(t),
            v => {
                let _ = write!(out, "{v}");
            }
        }
    }
    let result = Value::Text(match frame.texts.as_deref_mut() {
        Some(memo) => memo.text(&out),
        None => Arc::from(out.as_str()),
    });
    SCRATCH.with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            *s = out;
        }
    });
    Ok(result)
}

fn list<'p>(items: &'p [Node], env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>) -> Result<Value> {
    let values = items.iter().map(|n| eval(n, env, frame).map(Cow::into_owned)).collect::<Result<Vec<_>>>()?;
    Ok(Value::List(Arc::from(values)))
}

fn map<'p>(entries: &'p [(Arc<str>, Node)], env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>) -> Result<Value> {
    let mut values = Vec::with_capacity(entries.len());
    for (k, n) in entries {
        values.push((k.clone(), eval(n, env, frame)?.into_owned()));
    }
    Ok(Value::Map(Arc::new(MapValue::new(values))))
}

/// A plain scan: over a list in the program its elements are handed on
/// borrowed; over a computed list or an input they are copied.
pub(crate) fn run_scan<'p>(scan: &'p Scan, env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>) -> Result<Val<'p>> {
    let (filter, key) = (scan.filter.as_ref(), scan.key.as_ref());
    match eval(&scan.source, env, frame)? {
        Cow::Borrowed(Value::List(items)) => quantify(scan.kind, scan.local, filter, key, items.iter(), Cow::Borrowed, env, frame, scan.source.span),
        Cow::Owned(Value::List(items)) => quantify(scan.kind, scan.local, filter, key, items.iter(), |v| Cow::Owned(v.clone()), env, frame, scan.source.span),
        v if v.is_null() => quantify(scan.kind, scan.local, filter, key, [].iter(), Cow::Borrowed, env, frame, scan.source.span),
        other => fail(scan.source.span, format!("expected a list, got {}", other.type_name())),
    }
}

/// For `--explain`: the element at which a `first`, `any` or `all` scan
/// settled (the first element that passes its filter, or for `all` the first
/// that fails it), with its index; `None` when none did (or for another
/// kind of scan).
pub(crate) fn settling_element<'p>(scan: &'p Scan, env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>) -> Result<Option<(usize, Value)>> {
    let wanted = match scan.kind {
        QuantKind::First | QuantKind::Any => true,
        QuantKind::All => false,
        _ => return Ok(None),
    };
    let items = match eval(&scan.source, env, frame)?.into_owned() {
        Value::List(items) => items,
        _ => return Ok(None),
    };
    let slot = frame.let_count + scan.local as usize;
    if slot >= frame.slots.len() {
        return Ok(None);
    }
    for (index, item) in items.iter().enumerate() {
        frame.slots[slot] = Some(Cow::Owned(item.clone()));
        let passes = match &scan.filter {
            Some(filter) => truth(filter, env, frame)?,
            None => true,
        };
        if passes == wanted {
            return Ok(Some((index, item.clone())));
        }
    }
    Ok(None)
}

/// Evaluates a condition; null or a non-bool is an error naming the expression.
pub(crate) fn truth<'p>(node: &'p Node, env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>) -> Result<bool> {
    // Conditions are decided here without building a `Value::Bool` (and
    // without copying their operands) wherever the shape allows.
    match &node.kind {
        Kind::Const(Value::Bool(b)) => return Ok(*b),
        Kind::And(a, b) => return Ok(truth(a, env, frame)? && truth(b, env, frame)?),
        Kind::Or(a, b) => return Ok(truth(a, env, frame)? || truth(b, env, frame)?),
        Kind::Not(inner) => return Ok(!truth(inner, env, frame)?),
        Kind::Compare(first, rest) => return compare_chain(first, rest, env, frame),
        Kind::Test(inner, op) => return test_node(inner, *op, env, frame, node.span),
        Kind::In(kind, needle, hay) => return contains(*kind, needle, hay, env, frame),
        Kind::NotIn(kind, needle, hay) => return Ok(!contains(*kind, needle, hay, env, frame)?),
        _ => {}
    }
    match &*eval(node, env, frame)? {
        Value::Bool(b) => Ok(*b),
        Value::Null => fail(node.span, "this condition is missing a value (null)"),
        other => fail(node.span, format!("expected true or false, got {}", other.type_name())),
    }
}

/// Runs a quantifier over `items`; shared by plain scans and index lookups.
/// `hold` turns an element into the value the variable (or the result) holds.
#[allow(clippy::too_many_arguments)]
pub(crate) fn quantify<'p, 'v>(
    kind: QuantKind,
    local: u32,
    filter: Option<&'p Node>,
    key: Option<&'p Node>,
    items: impl Iterator<Item = &'v Value>,
    hold: impl Fn(&'v Value) -> Val<'p>,
    env: &Env<'p, '_>,
    frame: &mut Frame<'_, 'p>,
    span: Span,
) -> Result<Val<'p>> {
    let slot = frame.let_count + local as usize;
    if slot >= frame.slots.len() {
        return fail(span, "internal: quantifier slot out of range");
    }
    let mut count = 0.0;
    let mut kept: Vec<Value> = Vec::new();
    let mut best: Option<(Value, &'v Value)> = None;
    // The variable is only bound when something reads it.
    let bind = filter.is_some() || key.is_some();
    for item in items {
        if bind {
            frame.slots[slot] = Some(hold(item));
        }
        let passes = match filter {
            Some(f) => truth(f, env, frame)?,
            None => true,
        };
        match kind {
            QuantKind::Any if passes => return Ok(bool_val(true)),
            QuantKind::All if !passes => return Ok(bool_val(false)),
            QuantKind::First if passes => return Ok(hold(item)),
            QuantKind::Count if passes => count += 1.0,
            QuantKind::Filter if passes => kept.push(item.clone()),
            QuantKind::Max | QuantKind::Min if passes => {
                let Some(key_node) = key else {
                    return fail(span, "internal: max/min without key");
                };
                let k = eval(key_node, env, frame)?.into_owned();
                if k.is_null() {
                    continue;
                }
                let better = match &best {
                    None => true,
                    Some((best_key, _)) => {
                        let Some(ord) = k.compare(best_key) else {
                            return fail(key_node.span, format!("cannot compare {} with {}", k.type_name(), best_key.type_name()));
                        };
                        (kind == QuantKind::Max && ord == Ordering::Greater) || (kind == QuantKind::Min && ord == Ordering::Less)
                    }
                };
                if better {
                    best = Some((k, item));
                }
            }
            _ => {}
        }
    }
    Ok(match kind {
        QuantKind::Any => bool_val(false),
        QuantKind::All => bool_val(true),
        QuantKind::First => Cow::Borrowed(&NULL),
        QuantKind::Count => Cow::Owned(Value::Number(count)),
        QuantKind::Filter => Cow::Owned(Value::List(Arc::from(kept))),
        QuantKind::Max | QuantKind::Min => best.map_or(Cow::Borrowed(&NULL), |(_, v)| hold(v)),
    })
}

fn contains<'p>(kind: InKind, needle: &'p Node, hay: &'p Node, env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>) -> Result<bool> {
    let n = operand(needle, env, frame)?;
    let h = operand(hay, env, frame)?;
    let frame = &*frame;
    let (n, h) = (read(&n, needle, env, frame), read(&h, hay, env, frame));
    Ok(match (kind, h) {
        (_, Value::Null) => false,
        (InKind::List, Value::List(items)) => items.contains(n),
        (InKind::MapKey, Value::Map(m)) => n.as_text().is_some_and(|k| m.get(k).is_some()),
        (InKind::Substring, Value::Text(t)) => n.as_text().is_some_and(|k| t.contains(k)),
        (_, other) => return fail(hay.span, format!("`in` cannot look inside {}", other.type_name())),
    })
}

pub(crate) fn compare(op: CompareOp, a: &Value, b: &Value, a_span: Span, b_span: Span) -> Result<bool> {
    match op {
        CompareOp::Eq => return Ok(a == b),
        CompareOp::Ne => return Ok(a != b),
        _ => {}
    }
    let ord = match a.compare(b) {
        Some(o) => o,
        None if a.is_null() => return fail(a_span, format!("cannot compare with `{}`: this value is missing (null)", op.as_str())),
        None if b.is_null() => return fail(b_span, format!("cannot compare with `{}`: this value is missing (null)", op.as_str())),
        None => return fail(a_span.to(b_span), format!("cannot compare {} with {}", a.type_name(), b.type_name())),
    };
    Ok(match op {
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Eq | CompareOp::Ne => unreachable!("handled above"),
    })
}

// `if b == 0.0` guards read better than float literal patterns.
#[allow(clippy::redundant_guards)]
fn arith(op: ArithOp, x: Value, y: Value, a_span: Span, b_span: Span, span: Span) -> Result<Value> {
    use ArithOp::*;
    use Value::*;
    if x.is_null() {
        return fail(a_span, "this value is missing (null)");
    }
    if y.is_null() {
        return fail(b_span, "this value is missing (null)");
    }
    let overflow = || Box::new(EvalError { span, message: "the result is out of range".to_string() });
    Ok(match (op, x, y) {
        (AddNum, Number(a), Number(b)) => Number(a + b),
        (SubNum, Number(a), Number(b)) => Number(a - b),
        (MulNum, Number(a), Number(b)) => Number(a * b),
        (DivNum | RemNum, Number(_), Number(b)) if b == 0.0 => return fail(b_span, "division by zero"),
        (DivNum, Number(a), Number(b)) => Number(a / b),
        (RemNum, Number(a), Number(b)) => Number(a % b),
        (TimePlusDur, Time(a), Duration(b)) => Time(a.checked_add(b).ok_or_else(overflow)?),
        (TimeMinusDur, Time(a), Duration(b)) => Time(a.checked_sub(b).ok_or_else(overflow)?),
        (TimeMinusTime, Time(a), Time(b)) => Duration(a.checked_sub(b).ok_or_else(overflow)?),
        (DurPlusDur, Duration(a), Duration(b)) => Duration(a.checked_add(b).ok_or_else(overflow)?),
        (DurMinusDur, Duration(a), Duration(b)) => Duration(a.checked_sub(b).ok_or_else(overflow)?),
        (DurTimesNum, Duration(a), Number(b)) | (NumTimesDur, Number(b), Duration(a)) => {
            let r = a as f64 * b;
            if !r.is_finite() || r.abs() > i64::MAX as f64 {
                return Err(overflow());
            }
            Duration(r as i64)
        }
        (DurDivNum, Duration(_), Number(b)) if b == 0.0 => return fail(b_span, "division by zero"),
        (DurDivNum, Duration(a), Number(b)) => Duration((a as f64 / b) as i64),
        (DurDivDur, Duration(_), Duration(0)) => return fail(b_span, "division by a zero duration"),
        (DurDivDur, Duration(a), Duration(b)) => Number(a as f64 / b as f64),
        (_, x, y) => return fail(span, format!("cannot compute with {} and {}", x.type_name(), y.type_name())),
    })
}

/// `active(start_at, end_at, recurrence, t)` as lowered by the checker (with
/// `active_until`, the builtins the evaluator implements itself,
/// `Run::Window`: they read the window's fields in place): a
/// recurring window is active in its occurrences (bounded by `start_at` /
/// `end_at` when those are given too); a one-off window in `[start_at, end_at)`;
/// a window with neither is never active.
/// `active_until` (`until`) gives the end of the open period containing `t`
/// instead: the occurrence's end, cut at `end_at`; null when not active.
fn active<'p>(args: &'p [Node], env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>, until: bool) -> Result<Value> {
    let [start, end, recurrence, at] = args else {
        return Ok(if until { Value::Null } else { Value::Bool(false) });
    };
    let t = match &*eval(at, env, frame)? {
        Value::Time(t) => *t,
        Value::Null => return fail(at.span, "`active` got a missing time (null)"),
        other => return fail(at.span, format!("`active` needs a time, got {}", other.type_name())),
    };
    let bound = |v: &Value| match v {
        Value::Time(b) => Some(*b),
        _ => None,
    };
    let (start_v, end_v, recurrence_v) = (operand(start, env, frame)?, operand(end, env, frame)?, operand(recurrence, env, frame)?);
    let frame = &*frame;
    let (start, end) = (bound(read(&start_v, start, env, frame)), bound(read(&end_v, end, env, frame)));
    // The end of the open period containing `t`, if there is one.
    let open_until = match read(&recurrence_v, recurrence, env, frame) {
        Value::Recurrence(r) if start.is_none_or(|s| s <= t) && end.is_none_or(|e| t < e) => r.covering(t).map(|(_, hi)| end.map_or(hi, |e| hi.min(e))),
        Value::Recurrence(_) => None,
        _ => match (start, end) {
            (Some(s), Some(e)) if s <= t && t < e => Some(e),
            _ => None,
        },
    };
    Ok(match (until, open_until) {
        (false, open) => Value::Bool(open.is_some()),
        (true, Some(end)) => Value::Time(end),
        (true, None) => Value::Null,
    })
}

/// A builtin call: the registry entry says how it runs.
// Never inlined into `eval`, for the same reason as `lookup`: small since the
// implementations moved to the registry, it would otherwise be.
#[inline(never)]
fn call<'p>(builtin: Builtin, args: &'p [Node], env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>, span: Span) -> Result<Value> {
    let def = builtin.def();
    let (takes_null, run) = match def.run {
        Run::Values { takes_null, run } => (takes_null, run),
        Run::Window { until } => return active(args, env, frame, until),
    };
    let mut values = [Value::Null, Value::Null];
    for (i, arg) in args.iter().enumerate().take(2) {
        values[i] = eval(arg, env, frame)?.into_owned();
        if values[i].is_null() && !takes_null {
            return fail(arg.span, format!("`{}` got a missing value (null)", def.name));
        }
    }
    let [a, b] = values;
    run(a, b, span)
}

// ---- index lookups ----------------------------------------------------------

/// An index lookup: the elements covering the instant for the request's
/// keys, on which the residual runs as in a scan. A key or instant of
/// another type, or an instant outside the index's horizon, runs the plain
/// scan instead.
// Never inlined into `eval`: its locals would grow the dispatcher's frame,
// which every level of recursion pays (measured: 0x118 -> 0x1a8 bytes with
// `call` inlined too, and lookups markedly slower).
#[inline(never)]
fn lookup<'p>(ix: &'p IndexedScan, env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>, span: Span) -> Result<Val<'p>> {
    let index = match &ix.source {
        IndexSource::Direct(index) => Some(&**index),
        IndexSource::Keyed { key, indexes } => {
            let owned;
            let key = match borrowed(key, env) {
                Some(v) => v,
                None => {
                    owned = eval(key, env, frame)?;
                    &*owned
                }
            };
            match key {
                Value::Text(k) => indexes.get(k),
                _ => return run_scan(&ix.fallback, env, frame),
            }
        }
    };
    let (residual, by) = (ix.residual.as_ref(), ix.by.as_ref());
    let Some(index) = index else {
        // The map has no entry for this key: the list is missing, so empty.
        return quantify(ix.kind, ix.local, residual, by, [].iter(), Cow::Borrowed, env, frame, span);
    };
    // A constant instant: the clock was pinned at bind.
    let now = match ix.time.as_const().or_else(|| borrowed(&ix.time, env)) {
        Some(Value::Time(t)) => *t,
        Some(_) => return run_scan(&ix.fallback, env, frame),
        None => match &*eval(&ix.time, env, frame)? {
            Value::Time(t) => *t,
            _ => return run_scan(&ix.fallback, env, frame),
        },
    };
    if index.horizon().is_some_and(|(from, to)| now < from || now >= to) {
        return run_scan(&ix.fallback, env, frame);
    }
    // Each dimension's key as an id: 1.. for keys some element names, 0 for others.
    let mut ids = [0u32; MAX_DIMS];
    for (d, key_node) in ix.keys.iter().enumerate() {
        let id = |v: &Value| match v {
            Value::Text(k) => Some(index.key_id(d, k)),
            _ => None,
        };
        let found = match borrowed(key_node, env) {
            Some(v) => id(v),
            None => id(&*eval(key_node, env, frame)?),
        };
        match found {
            Some(i) => ids[d] = i,
            None => return run_scan(&ix.fallback, env, frame),
        }
    }
    match index.covering(&ids[..ix.keys.len()], now) {
        Covering::List(covering) => {
            if let (QuantKind::First, None) = (ix.kind, residual) {
                // The common `first w in ... where <only indexed conditions>`: the first covering element.
                return Ok(Cow::Borrowed(covering.first().map_or(&NULL, |&i| index.item(i))));
            }
            let items = covering.iter().map(|&i| index.item(i));
            quantify(ix.kind, ix.local, residual, by, items, Cow::Borrowed, env, frame, span)
        }
        Covering::Buckets(merged) => {
            let items = merged.map(|i| index.item(i));
            quantify(ix.kind, ix.local, residual, by, items, Cow::Borrowed, env, frame, span)
        }
    }
}

impl IndexedScan {
    /// For the decision tables: the instants at which this lookup's result
    /// can change for the request in `env` (the bounds of the segments its
    /// keys select) are added to `out`. `Ok(false)` when the lookup would
    /// scan instead (a key that is not text), so that no bounds are known.
    pub(crate) fn bounds<'p>(&'p self, env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>, out: &mut Vec<i64>) -> Result<bool> {
        let index = match &self.source {
            IndexSource::Direct(ix) => &**ix,
            IndexSource::Keyed { key, indexes } => match &*eval(key, env, frame)? {
                Value::Text(k) => match indexes.get(k) {
                    Some(ix) => ix,
                    None => return Ok(true), // no list for this key: empty at every instant
                },
                _ => return Ok(false),
            },
        };
        let mut ids = [0u32; MAX_DIMS];
        for (d, key_node) in self.keys.iter().enumerate() {
            match &*eval(key_node, env, frame)? {
                Value::Text(k) => ids[d] = index.key_id(d, k),
                _ => return Ok(false),
            }
        }
        index.segment_bounds(&ids[..self.keys.len()], out);
        Ok(true)
    }
}

/// An input's value without cloning it (the hot path reads keys this way).
fn borrowed<'e>(node: &Node, env: &Env<'_, 'e>) -> Option<&'e Value> {
    match node.kind {
        Kind::Input(slot) => env.inputs.get(slot as usize),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::TextMemo;
    use std::sync::Arc;

    #[test]
    fn equal_texts_share_one_allocation_until_the_memo_is_full() {
        let mut memo = TextMemo::default();
        let first = memo.text("notify release-governance on slack");
        let again = memo.text("notify release-governance on slack");
        assert!(Arc::ptr_eq(&first, &again));
        assert!(!Arc::ptr_eq(&first, &memo.text("notify release-governance on teams")));
        for i in 0..TextMemo::CAPACITY {
            memo.text(&format!("reason {i}"));
        }
        assert!(memo.texts.len() <= TextMemo::CAPACITY);
        // Started over: the first text is made afresh, with the same contents.
        let later = memo.text("notify release-governance on slack");
        assert_eq!(later, first);
        assert!(!Arc::ptr_eq(&first, &later));
    }
}
