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

use crate::eval::{eval, quantify, run_scan, Env, Frame, Result, Val, NULL};
use crate::ir::{any_node, Kind, Node, Scan};
use crate::value::Value;
use cavra_grammar::ast::{CompareOp, QuantKind, Span, TestOp};
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

/// At most this many membership dimensions are indexed (2^4 buckets per lookup).
const MAX_DIMS: usize = 4;
/// Dense bucket tables larger than this fall back to a plain scan.
const MAX_BUCKETS: usize = 1 << 22;
/// Segment cover lists larger than this (heavily overlapping intervals) fall back too.
const MAX_COVER: usize = 1 << 23;
/// Merged tables (see [`Layout`]) up to this many intervals in all.
const MAX_MERGED_INTERVALS: usize = 1 << 22;

#[derive(Clone, Debug)]
pub struct IndexedScan {
    pub kind: QuantKind,
    pub local: u32,
    pub source: IndexSource,
    /// The loop-invariant instant compared with the interval fields.
    pub time: Node,
    /// Loop-invariant keys, one per dimension.
    pub keys: Vec<Node>,
    pub residual: Option<Node>,
    pub by: Option<Node>,
    /// The original scan, used when a key or the time is not of the indexed type.
    pub fallback: Scan,
}

#[derive(Clone, Debug)]
pub enum IndexSource {
    Direct(Arc<ScanIndex>),
    /// One index per entry of a static map, chosen by a key at decision time.
    Keyed {
        key: Node,
        indexes: Arc<FxHashMap<Arc<str>, ScanIndex>>,
    },
}

#[derive(Debug)]
pub struct ScanIndex {
    items: Arc<[Value]>,
    dims: Vec<DimIds>,
    /// Mixed-radix number -> position in `segments`, or `u32::MAX`.
    table: Vec<u32>,
    segments: Vec<Segments>,
    /// `Merged`: the table is indexed by the request's key ids (0 for a key no
    /// element names) and each entry already holds the union of the buckets
    /// that match it: one binary search per lookup. `PerBucket` (when merging
    /// would take too much memory): indexed by bucket, and a lookup merges
    /// the key's bucket with the wildcard bucket in each dimension.
    layout: Layout,
    /// `[from, to)` in which recurring elements were expanded; `None` when
    /// the index holds only one-off intervals and is valid at every instant.
    horizon: Option<(i64, i64)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    Merged,
    PerBucket,
}

#[derive(Debug)]
struct DimIds {
    wildcard: bool,
    /// Key text -> id (ids start at 1; 0 is the wildcard).
    ids: FxHashMap<Arc<str>, u32>,
}

/// Elementary segments `[bounds[k], bounds[k+1])` with the elements covering each.
#[derive(Debug, Default)]
struct Segments {
    bounds: Vec<i64>,
    offsets: Vec<u32>,
    cover: Vec<u32>,
    /// The segment found by the last lookup: decisions come in bursts at one
    /// instant (a plan routes every owner and provider at the same `now`), so
    /// checking it first usually skips the binary search. Shared between
    /// threads, hence atomic; a stale hint only costs the search.
    hint: AtomicU32,
}

/// Which fields of an element bound its interval(s).
enum Interval {
    /// `w.start <= t < w.end` and the inclusive/exclusive variants.
    Fields { start: u32, start_inclusive: bool, end: u32, end_inclusive: bool },
    /// `active(w, t)`: optional start/end fields and an optional recurrence field.
    Active { start: Option<u32>, end: Option<u32>, recurrence: Option<u32> },
    /// No time condition (e.g. already decided at bind time for a pinned
    /// clock): every element is in one segment, indexed by its keys only.
    Always,
}

/// The shape recognised in a `where` clause.
struct Pattern {
    interval: Interval,
    time: Node,
    dims: Vec<(u32, bool, Node)>,
    residual: Vec<Node>,
}

impl IndexedScan {
    /// Turns a scan into an index lookup when its source is static and its
    /// `where` clause has an interval conjunct. `None` leaves the scan as is.
    pub fn build(scan: &Scan, horizon: (i64, i64)) -> Option<IndexedScan> {
        if !matches!(scan.kind, QuantKind::Any | QuantKind::First | QuantKind::Count | QuantKind::Filter | QuantKind::Max | QuantKind::Min) {
            return None;
        }
        let pattern = recognise(scan.filter.as_ref()?, scan.local)?;
        let source = match &scan.source.kind {
            Kind::Const(Value::List(items)) => IndexSource::Direct(Arc::new(ScanIndex::build(items, &pattern, horizon)?)),
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
                            indexes.insert(k.clone(), ScanIndex::build(&items, &pattern, horizon)?);
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

    pub(crate) fn eval<'p>(&'p self, env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>, span: Span) -> Result<Val<'p>> {
        let index = match &self.source {
            IndexSource::Direct(ix) => Some(&**ix),
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
                    _ => return run_scan(&self.fallback, env, frame),
                }
            }
        };
        let (residual, by) = (self.residual.as_ref(), self.by.as_ref());
        let Some(index) = index else {
            // The map has no entry for this key: the list is missing, so empty.
            return quantify(self.kind, self.local, residual, by, [].iter(), Cow::Borrowed, env, frame, span);
        };
        // A constant instant: the clock was pinned at bind.
        let now = match self.time.as_const().or_else(|| borrowed(&self.time, env)) {
            Some(Value::Time(t)) => *t,
            Some(_) => return run_scan(&self.fallback, env, frame),
            None => match &*eval(&self.time, env, frame)? {
                Value::Time(t) => *t,
                _ => return run_scan(&self.fallback, env, frame),
            },
        };
        if index.horizon.is_some_and(|(from, to)| now < from || now >= to) {
            return run_scan(&self.fallback, env, frame);
        }
        // Each dimension's key as an id: 1.. for keys some element names, 0 for others.
        let mut ids = [0u32; MAX_DIMS];
        for (d, key_node) in self.keys.iter().enumerate() {
            let dim = &index.dims[d];
            let id = |v: &Value| match v {
                Value::Text(k) => Some(dim.ids.get(&**k).copied().unwrap_or(0)),
                _ => None,
            };
            let found = match borrowed(key_node, env) {
                Some(v) => id(v),
                None => id(&*eval(key_node, env, frame)?),
            };
            match found {
                Some(i) => ids[d] = i,
                None => return run_scan(&self.fallback, env, frame),
            }
        }
        if index.layout == Layout::Merged {
            let mut code = 0usize;
            for (d, dim) in index.dims.iter().enumerate() {
                code = code * (dim.ids.len() + 1) + ids[d] as usize;
            }
            let covering = match index.table.get(code) {
                Some(&pos) if pos != u32::MAX => index.segments[pos as usize].at(now),
                _ => &[],
            };
            if let (QuantKind::First, None) = (self.kind, residual) {
                // The common `first w in ... where <only indexed conditions>`: the first covering element.
                return Ok(Cow::Borrowed(covering.first().map_or(&NULL, |&i| &index.items[i as usize])));
            }
            let items = covering.iter().map(|&i| &index.items[i as usize]);
            return quantify(self.kind, self.local, residual, by, items, Cow::Borrowed, env, frame, span);
        }
        // Per bucket: the key's bucket and/or the wildcard bucket in each dimension.
        let mut lists: [&[u32]; 1 << MAX_DIMS] = [&[]; 1 << MAX_DIMS];
        let mut n_lists = 0;
        for bucket in index.candidate_buckets(&ids[..self.keys.len()]) {
            let pos = index.table.get(bucket).copied().unwrap_or(u32::MAX);
            if pos != u32::MAX {
                let covering = index.segments[pos as usize].at(now);
                if !covering.is_empty() {
                    lists[n_lists] = covering;
                    n_lists += 1;
                }
            }
        }
        let merged = Merge { lists, len: n_lists }.map(|i| &index.items[i as usize]);
        quantify(self.kind, self.local, residual, by, merged, Cow::Borrowed, env, frame, span)
    }

    pub(crate) fn children(&self, f: &mut dyn FnMut(&Node)) {
        f(&self.time);
        self.keys.iter().for_each(&mut *f);
        self.residual.iter().for_each(&mut *f);
        self.by.iter().for_each(&mut *f);
        if let IndexSource::Keyed { key, .. } = &self.source {
            f(key);
        }
    }

    pub(crate) fn children_mut(&mut self, f: &mut dyn FnMut(&mut Node)) {
        f(&mut self.time);
        self.keys.iter_mut().for_each(&mut *f);
        self.residual.iter_mut().for_each(&mut *f);
        self.by.iter_mut().for_each(&mut *f);
        if let IndexSource::Keyed { key, .. } = &mut self.source {
            f(key);
        }
    }
}

/// An input's value without cloning it (the hot path reads keys this way).
fn borrowed<'e>(node: &Node, env: &Env<'_, 'e>) -> Option<&'e Value> {
    match node.kind {
        Kind::Input(slot) => env.inputs.get(slot as usize),
        _ => None,
    }
}

/// Merges sorted element lists into one ascending stream (no allocation).
struct Merge<'a> {
    lists: [&'a [u32]; 1 << MAX_DIMS],
    len: usize,
}

impl Iterator for Merge<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        let mut best: Option<usize> = None;
        for i in 0..self.len {
            if let Some(&head) = self.lists[i].first() {
                if best.is_none_or(|b| head < self.lists[b][0]) {
                    best = Some(i);
                }
            }
        }
        let b = best?;
        let head = self.lists[b][0];
        self.lists[b] = &self.lists[b][1..];
        Some(head)
    }
}

impl Segments {
    fn at(&self, t: i64) -> &[u32] {
        let hint = self.hint.load(Relaxed) as usize;
        let k = match (self.bounds.get(hint), self.bounds.get(hint + 1)) {
            (Some(&lo), Some(&hi)) if lo <= t && t < hi => hint,
            _ => {
                let k = self.bounds.partition_point(|&b| b <= t);
                if k == 0 || k >= self.bounds.len() {
                    return &[];
                }
                self.hint.store(k as u32 - 1, Relaxed);
                k - 1
            }
        };
        &self.cover[self.offsets[k] as usize..self.offsets[k + 1] as usize]
    }

    fn build(intervals: &[(i64, i64, u32)]) -> Option<Segments> {
        let mut bounds: Vec<i64> = intervals.iter().flat_map(|&(lo, hi, _)| [lo, hi]).collect();
        bounds.sort_unstable();
        bounds.dedup();
        let mut starts: Vec<&(i64, i64, u32)> = intervals.iter().collect();
        starts.sort_by_key(|iv| iv.0);
        let mut ends: Vec<&(i64, i64, u32)> = intervals.iter().collect();
        ends.sort_by_key(|iv| iv.1);
        let (mut si, mut ei) = (0, 0);
        let mut active: BTreeSet<u32> = BTreeSet::new();
        let mut offsets = Vec::with_capacity(bounds.len());
        let mut cover = Vec::new();
        for &b in bounds.iter().take(bounds.len().saturating_sub(1)) {
            while ei < ends.len() && ends[ei].1 <= b {
                active.remove(&ends[ei].2);
                ei += 1;
            }
            while si < starts.len() && starts[si].0 <= b {
                if starts[si].1 > b {
                    active.insert(starts[si].2);
                }
                si += 1;
            }
            offsets.push(cover.len() as u32);
            cover.extend(active.iter().copied());
            if cover.len() > MAX_COVER {
                return None;
            }
        }
        offsets.push(cover.len() as u32);
        Some(Segments { bounds, offsets, cover, hint: AtomicU32::new(0) })
    }
}

impl ScanIndex {
    fn build(items: &Arc<[Value]>, p: &Pattern, horizon: (i64, i64)) -> Option<ScanIndex> {
        let mut dims: Vec<DimIds> = p.dims.iter().map(|(_, wildcard, _)| DimIds { wildcard: *wildcard, ids: FxHashMap::default() }).collect();
        // First pass: intervals and dimension ids, or give up on unexpected data.
        // Per element: its intervals, its position, and its key ids per dimension.
        struct Entry {
            intervals: Vec<(i64, i64)>,
            item: u32,
            keys: Vec<Vec<u32>>,
        }
        let mut entries: Vec<Entry> = Vec::new();
        let mut recurring = false;
        for (i, item) in items.iter().enumerate() {
            let Value::Record(r) = item else { return None };
            let field = |f: u32| r.values.get(f as usize);
            let intervals = match p.interval {
                Interval::Fields { start, start_inclusive, end, end_inclusive } => {
                    let (Some(Value::Time(start)), Some(Value::Time(end))) = (field(start), field(end)) else {
                        return None;
                    };
                    let lo = if start_inclusive { *start } else { start.checked_add(1)? };
                    let hi = if end_inclusive { end.checked_add(1)? } else { *end };
                    vec![(lo, hi)]
                }
                Interval::Always => vec![(i64::MIN, i64::MAX)],
                Interval::Active { start, end, recurrence } => {
                    let time = |f: Option<u32>| match f.and_then(field) {
                        Some(Value::Time(t)) => Some(*t),
                        _ => None,
                    };
                    let (lo, hi) = (time(start), time(end));
                    match recurrence.and_then(field) {
                        Some(Value::Recurrence(rule)) => {
                            recurring = true;
                            let from = lo.map_or(horizon.0, |lo| lo.max(horizon.0));
                            let to = hi.map_or(horizon.1, |hi| hi.min(horizon.1));
                            if from < to {
                                rule.occurrences(from, to)
                            } else {
                                Vec::new()
                            }
                        }
                        _ => match (lo, hi) {
                            (Some(lo), Some(hi)) => vec![(lo, hi)],
                            _ => Vec::new(),
                        },
                    }
                }
            };
            let intervals: Vec<(i64, i64)> = intervals.into_iter().filter(|(lo, hi)| lo < hi).collect();
            if intervals.is_empty() {
                continue;
            }
            let mut keys_per_dim = Vec::with_capacity(dims.len());
            for (d, (field, wildcard, _)) in p.dims.iter().enumerate() {
                let Some(Value::List(keys)) = r.values.get(*field as usize) else {
                    return None;
                };
                let mut ids = Vec::new();
                for k in keys.iter() {
                    let Value::Text(k) = k else { return None };
                    let next = dims[d].ids.len() as u32 + 1;
                    ids.push(*dims[d].ids.entry(k.clone()).or_insert(next));
                }
                if ids.is_empty() && *wildcard {
                    ids.push(0);
                }
                ids.sort_unstable();
                ids.dedup();
                keys_per_dim.push(ids);
            }
            entries.push(Entry { intervals, item: i as u32, keys: keys_per_dim });
        }
        let radix: Vec<usize> = dims.iter().map(|d| d.ids.len() + 1).collect();
        let total = radix.iter().try_fold(1usize, |acc, r| acc.checked_mul(*r)).filter(|t| *t <= MAX_BUCKETS)?;
        let mut per_bucket: FxHashMap<usize, Vec<(i64, i64, u32)>> = FxHashMap::default();
        for Entry { intervals, item, keys } in &entries {
            for bucket in combos(keys, &radix) {
                per_bucket.entry(bucket).or_default().extend(intervals.iter().map(|&(lo, hi)| (lo, hi, *item)));
            }
        }
        let mut index = ScanIndex {
            items: items.clone(),
            dims,
            table: vec![u32::MAX; total],
            segments: Vec::new(),
            layout: Layout::Merged,
            horizon: recurring.then_some(horizon),
        };
        if !index.build_merged(&per_bucket, total) {
            index.table = vec![u32::MAX; total];
            index.segments.clear();
            index.layout = Layout::PerBucket;
            let mut sorted: Vec<_> = per_bucket.into_iter().collect();
            sorted.sort_by_key(|(b, _)| *b);
            for (bucket, intervals) in sorted {
                index.table[bucket] = index.segments.len() as u32;
                index.segments.push(Segments::build(&intervals)?);
            }
        }
        for d in &mut index.dims {
            d.ids.shrink_to_fit();
        }
        Some(index)
    }

    /// For every combination of key ids, the union of the buckets it matches,
    /// shared between combinations that match the same buckets. `false` when
    /// that would exceed the memory budget.
    fn build_merged(&mut self, per_bucket: &FxHashMap<usize, Vec<(i64, i64, u32)>>, total: usize) -> bool {
        let mut shared: FxHashMap<Vec<usize>, u32> = FxHashMap::default();
        let mut intervals_in_all = 0usize;
        let mut ids = vec![0u32; self.dims.len()];
        for code in 0..total {
            let mut rest = code;
            for d in (0..self.dims.len()).rev() {
                let radix = self.dims[d].ids.len() + 1;
                ids[d] = (rest % radix) as u32;
                rest /= radix;
            }
            let buckets: Vec<usize> = self.candidate_buckets(&ids).filter(|b| per_bucket.contains_key(b)).collect();
            if buckets.is_empty() {
                continue;
            }
            if let Some(&pos) = shared.get(&buckets) {
                self.table[code] = pos;
                continue;
            }
            let intervals: Vec<(i64, i64, u32)> = buckets.iter().flat_map(|b| per_bucket[b].iter().copied()).collect();
            intervals_in_all += intervals.len();
            if intervals_in_all > MAX_MERGED_INTERVALS {
                return false;
            }
            let Some(segments) = Segments::build(&intervals) else {
                return false;
            };
            let pos = self.segments.len() as u32;
            self.segments.push(segments);
            shared.insert(buckets, pos);
            self.table[code] = pos;
        }
        true
    }

    /// The buckets a request with these key ids matches: per dimension, the
    /// key's own bucket (id > 0) and the wildcard bucket (0) where allowed.
    fn candidate_buckets<'a>(&'a self, ids: &'a [u32]) -> impl Iterator<Item = usize> + 'a {
        (0..(1usize << ids.len())).filter_map(move |combo| {
            let mut bucket = 0usize;
            for (d, dim) in self.dims.iter().enumerate() {
                let use_wildcard = (combo >> d) & 1 == 1;
                let id = match (use_wildcard, ids[d]) {
                    (true, _) if dim.wildcard => 0,
                    (false, id) if id > 0 => id,
                    _ => return None,
                };
                bucket = bucket * (dim.ids.len() + 1) + id as usize;
            }
            Some(bucket)
        })
    }
}

/// Every bucket number of the cartesian product of per-dimension ids.
fn combos(keys: &[Vec<u32>], radix: &[usize]) -> Vec<usize> {
    let mut out = vec![0usize];
    for (ids, r) in keys.iter().zip(radix) {
        out = out.iter().flat_map(|b| ids.iter().map(move |id| b * r + *id as usize)).collect();
    }
    out
}

/// `static_map[key].field.field`: the map, the key and the field path.
fn keyed_path(source: &Node) -> Option<(Arc<crate::value::MapValue>, Node, Vec<u32>)> {
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
        Kind::In(crate::ir::InKind::List, key, list) if invariant(key, local) => var_field(list, local).map(|f| (f, (**key).clone())),
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
    let Kind::Call(crate::ir::Builtin::Active, args) = &node.kind else {
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
