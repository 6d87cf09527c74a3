//! Decision tables: a decision evaluated ahead into per-key tables of
//! outcomes over time, so that deciding is one hash over the keys and one
//! binary search instead of an evaluation.
//!
//! A decision qualifies when its dynamic inputs are text keys that are only
//! compared for equality with static values (owners and providers as the
//! policy names them) or repeated into the outcome, plus at most one time
//! input used only where the instants at which it matters are known: as the
//! instant of an indexed interval lookup, in `active`/`active_until` of the
//! elements such a lookup gives, and compared with constant instants. Each
//! key then has a finite domain, the texts it is compared with; every other
//! text (the class "other") takes the same arms as any other. One
//! combination of key classes is a *cell*. A cell's time axis splits at the
//! bounds of the intervals its lookups select into segments on which the
//! outcome is constant, and each segment is labelled with the outcome the
//! general evaluator gives at its start (adjacent equal labels merged, equal
//! labels shared): the per-key disjoint segments a hand-written table has.
//!
//! Outcome values that repeat a key of the class "other" (`"notify {owner}"`
//! for an owner the policy never names) are evaluated per decision. Keys
//! that are not text, times outside the horizon (recurring windows are
//! expanded only inside it) and segments whose evaluation failed run the
//! general evaluator, so results never depend on the table, only speed does.
//! Small tables are filled at bind time; larger ones a cell at a time, when
//! a request first needs it.

use crate::eval::{eval, Env, EvalError, Frame, Val};
use crate::ir::*;
use crate::outcome::{matching_arm, outcome_values, OutcomeValues};
use crate::types::Ty;
use crate::value::{same_text, Value};
use cavra_grammar::ast::{CompareOp, QuantKind};
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

/// Tables with more cells than this are not made (the cell directory alone
/// would be too large); the decision runs the general evaluator.
const MAX_CELLS: usize = 1 << 17;
/// Tables with at most this many cells are filled when the program is bound.
const EAGER_CELLS: usize = 4096;
/// At most this many keys (and outcome values) per decision.
const MAX_KEYS: usize = 16;
const MAX_POSITIONS: usize = 64;
/// At most this many cells are found through one combined hash of their keys.
const MAX_COMBINED: usize = 1 << 16;
/// Static values considered when working out what a key is compared with.
const MAX_POSSIBLE: usize = 1 << 16;

/// A decision that qualified, with the cells made so far.
pub(crate) struct DecisionTable {
    keys: Vec<Key>,
    /// The cells whose every key is a text the policy names, by one hash
    /// over all their key texts ([`combined_hash`]): such a request costs one
    /// hash probe, as a hand-written table keyed by (owner, provider) does,
    /// instead of one per key. `None` when there are too many such cells or
    /// two of them hash alike.
    combined: Option<Combined>,
    /// The time input's slot, when the decision reads one.
    time: Option<u32>,
    /// `[from, to)`: the instants the table answers.
    horizon: (i64, i64),
    /// Instants the time input is compared with directly (each also plus one
    /// microsecond, for `<=` and `>`).
    instants: Vec<i64>,
    /// Per arm (`otherwise` last), per outcome value (0: the reason, `1 + i`:
    /// extra field `i`): the keys (bits by key position) the value repeats.
    repeats: Vec<Vec<u64>>,
    cells: Box<[OnceLock<Cell>]>,
    /// Labels made so far, by a hash of their content: equal labels are shared.
    labels: Mutex<FxHashMap<u64, Vec<Arc<Label>>>>,
}

impl std::fmt::Debug for DecisionTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionTable").field("keys", &self.keys.len()).field("cells", &self.cells.len()).field("time", &self.time).finish()
    }
}

/// The size of a decision table ([`crate::Program::table_size`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableSize {
    /// Combinations of key classes.
    pub cells: usize,
    /// Cells made so far (all of them for a table filled at bind time).
    pub filled: usize,
    /// Time segments in the cells made.
    pub segments: usize,
    /// Of those, segments left to the general evaluator (its evaluation failed).
    pub evaluated: usize,
    /// Distinct outcomes.
    pub labels: usize,
}

/// One key input: its slot and the texts it is compared with.
#[derive(Debug)]
struct Key {
    slot: u32,
    /// Text -> class (1..; 0 is "other").
    ids: FxHashMap<Arc<str>, u32>,
    /// Class `c` is `values[c - 1]`.
    values: Vec<Value>,
    /// A text the policy never compares this key with: stands for "other".
    other: Value,
    /// What one class of this key adds to a cell's number: the product of
    /// the classes of the keys after it (a cell's number has one digit per
    /// key, in key order, each in base `classes`).
    stride: usize,
}

impl Key {
    /// Its classes: one per named text, and "other" (0).
    fn classes(&self) -> usize {
        self.values.len() + 1
    }

    /// What this key's `class` adds to a cell's number.
    #[inline]
    fn digit(&self, class: usize) -> usize {
        class * self.stride
    }
}

/// One cell: segment `k` covers `[starts[k], starts[k + 1])` (the last one up
/// to the horizon's end) and has outcome `segments[k]`.
#[derive(Debug)]
pub(crate) struct Cell {
    starts: Box<[i64]>,
    segments: Box<[Segment]>,
}

/// A segment's outcome (`label: None`: evaluate). The arm and whether the
/// label has dynamic values are kept beside the label's address, so that a
/// decision that finds a segment need not read the label itself.
#[derive(Debug)]
struct Segment {
    arm: u32,
    dynamic: bool,
    label: Option<Arc<Label>>,
}

/// What a table answers: the arm, and the label whose values the outcome has.
#[derive(Clone, Copy)]
pub(crate) struct Hit<'t> {
    pub arm: usize,
    /// Some of the label's values are evaluated per decision (`label.dynamic != 0`).
    pub dynamic: bool,
    pub label: &'t Label,
}

/// An outcome decided ahead: the arm and its values.
#[derive(Debug)]
pub(crate) struct Label {
    pub arm: usize,
    /// Values at `dynamic` positions are null here: they are evaluated per decision.
    pub values: OutcomeValues<'static>,
    /// Positions (as in [`OutcomeValues::position_mut`]) that repeat a key of the class "other".
    pub dynamic: u64,
}

/// The classes of one key by the address of the text they were found for:
/// a session that looks up the same few providers again and again (a plan's,
/// shared by all its schedules) then compares an address instead of hashing
/// the text. Each entry holds its text, so the address cannot be reused for
/// another text while the entry lives.
pub(crate) struct ClassCache {
    entries: Box<[(Option<Arc<str>>, u32)]>,
}

impl Default for ClassCache {
    fn default() -> ClassCache {
        ClassCache { entries: (0..Self::WAYS).map(|_| (None, 0)).collect() }
    }
}

impl ClassCache {
    /// More than a plan's providers; a text whose entry another holds is hashed.
    const WAYS: usize = 64;

    #[inline]
    fn class(&mut self, text: &Arc<str>, find: impl FnOnce(&str) -> u32) -> u32 {
        // Address bits above an allocation's alignment.
        let way = (Arc::as_ptr(text) as *const u8 as usize >> 4) % Self::WAYS;
        let Some(entry) = self.entries.get_mut(way) else { return find(text) };
        match &entry.0 {
            Some(cached) if Arc::ptr_eq(cached, text) => entry.1,
            _ => {
                let class = find(text);
                *entry = (Some(text.clone()), class);
                class
            }
        }
    }
}

/// The cells of a table whose keys but one are fixed ([`DecisionTable::row`]):
/// the varying key's class `c` selects cell `first + c * stride`.
pub(crate) struct TableRow {
    first: usize,
    stride: usize,
    position: usize,
}

/// What the table needs from the program to fill a cell.
pub(crate) struct Parts<'p> {
    pub decision: &'p DecisionIr,
    pub lets: &'p [LetDef],
    pub input_count: usize,
    pub slot_count: usize,
}

impl DecisionTable {
    /// The table of `decision`, if it qualifies (`None` otherwise), with
    /// small tables filled at once. The table answers at every instant its
    /// indexes do: always, unless one expanded recurring windows for a horizon.
    pub(crate) fn build(parts: &Parts<'_>, inputs: &[InputDef]) -> Option<DecisionTable> {
        let analysis = Analysis::of(parts.decision, parts.lets, inputs).ok()?;
        if analysis.keys.len() > MAX_KEYS {
            return None;
        }
        let mut keys = Vec::with_capacity(analysis.keys.len());
        let mut cells = 1usize;
        for (slot, domain) in analysis.keys.iter().zip(analysis.domains) {
            let mut texts: Vec<Arc<str>> = domain.into_iter().collect();
            texts.sort_unstable();
            cells = cells.checked_mul(texts.len() + 1).filter(|&c| c <= MAX_CELLS)?;
            let mut other = String::from("\u{0}cavra:other");
            while texts.iter().any(|t| **t == *other) {
                other.push('\u{0}');
            }
            let ids = texts.iter().enumerate().map(|(i, t)| (t.clone(), i as u32 + 1)).collect();
            keys.push(Key { slot: *slot, ids, values: texts.into_iter().map(Value::Text).collect(), other: Value::text(&other), stride: 1 });
        }
        let horizon = if analysis.time.is_some() { analysis.horizon } else { (i64::MIN, i64::MAX) };
        let mut instants: Vec<i64> = analysis.instants.iter().flat_map(|&t| [t, t.saturating_add(1)]).collect();
        instants.sort_unstable();
        instants.dedup();
        let mut stride = 1;
        for key in keys.iter_mut().rev() {
            key.stride = stride;
            stride *= key.classes();
        }
        let combined = Combined::of(&keys);
        let table = DecisionTable {
            keys,
            combined,
            time: analysis.time,
            horizon,
            instants,
            repeats: analysis.repeats,
            cells: (0..cells).map(|_| OnceLock::new()).collect(),
            labels: Mutex::new(FxHashMap::default()),
        };
        if cells <= EAGER_CELLS {
            let scans = timed_scans(parts);
            for (index, cell) in table.cells.iter().enumerate() {
                let _ = cell.set(table.fill(index, parts, &scans));
            }
        }
        Some(table)
    }

    /// The label for `inputs` (`None`: run the general evaluator), filling
    /// the cell first if no request needed it before.
    #[inline]
    pub(crate) fn lookup<'q>(&self, inputs: &[Value], parts: impl FnOnce() -> Parts<'q>) -> Option<Hit<'_>> {
        self.label_at(self.cell_index(inputs)?, inputs, parts)
    }

    /// The label of cell `index` at the instant of the time input in `inputs`.
    #[inline]
    pub(crate) fn label_at<'q>(&self, index: usize, inputs: &[Value], parts: impl FnOnce() -> Parts<'q>) -> Option<Hit<'_>> {
        let now = match self.time {
            None => 0,
            Some(slot) => match inputs.get(slot as usize) {
                Some(Value::Time(t)) => *t,
                _ => return None,
            },
        };
        self.label_in(index, now, parts)
    }

    /// The input slot of each key, in key order.
    pub(crate) fn key_slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.iter().map(|key| key.slot)
    }

    /// The class of key number `position` that `inputs` select (0: a text
    /// the policy never names; `None`: not a text).
    #[inline]
    pub(crate) fn key_class(&self, position: usize, inputs: &[Value]) -> Option<u32> {
        let key = self.keys.get(position)?;
        match inputs.get(key.slot as usize) {
            Some(Value::Text(text)) => Some(key.ids.get(&**text).copied().unwrap_or(0)),
            _ => None,
        }
    }

    /// The cells that `classes` select when the key at `position` varies
    /// (its own class in `classes` is ignored).
    pub(crate) fn row(&self, classes: &[u32], position: usize) -> TableRow {
        let classes = classes.iter().enumerate().map(|(at, &class)| if at == position { 0 } else { class });
        TableRow { first: self.cell_of(classes), stride: self.keys.get(position).map_or(0, |key| key.stride), position }
    }

    /// The label of `row`'s cell for `text` at the instant of the time input
    /// in `inputs` (`None`: run the general evaluator). `cache`: the
    /// session's classes of texts it looked up before, by address.
    #[inline]
    pub(crate) fn label_in_row<'q>(
        &self,
        row: &TableRow,
        text: &Arc<str>,
        cache: Option<&mut ClassCache>,
        inputs: &[Value],
        parts: impl FnOnce() -> Parts<'q>,
    ) -> Option<Hit<'_>> {
        let key = self.keys.get(row.position)?;
        let find = |text: &str| key.ids.get(text).copied().unwrap_or(0);
        let class = match cache {
            Some(cache) => cache.class(text, find),
            None => find(text),
        };
        self.label_at(row.first + class as usize * row.stride, inputs, parts)
    }

    /// The cell of one class per key, in key order (from [`DecisionTable::key_class`]).
    #[inline]
    pub(crate) fn cell_of(&self, classes: impl IntoIterator<Item = u32>) -> usize {
        self.keys.iter().zip(classes).map(|(key, class)| key.digit(class as usize)).sum()
    }

    /// The cell the text keys of `inputs` select (`None`: a key is not text).
    #[inline]
    pub(crate) fn cell_index(&self, inputs: &[Value]) -> Option<usize> {
        if let Some(cell) = self.combined.as_ref().and_then(|combined| combined.cell(&self.keys, inputs)) {
            return Some(cell);
        }
        let mut index = 0usize;
        for (position, key) in self.keys.iter().enumerate() {
            index += key.digit(self.key_class(position, inputs)? as usize);
        }
        Some(index)
    }

    /// The label of cell `index` (from [`DecisionTable::cell_index`]) at `now`.
    #[inline]
    pub(crate) fn label_in<'q>(&self, index: usize, now: i64, parts: impl FnOnce() -> Parts<'q>) -> Option<Hit<'_>> {
        let cell = self.cells.get(index)?.get_or_init(|| {
            let parts = parts();
            self.fill(index, &parts, &timed_scans(&parts))
        });
        let k = match self.time {
            None => 0,
            Some(_) if now < self.horizon.0 || now >= self.horizon.1 => return None,
            Some(_) => cell.starts.partition_point(|&s| s <= now).checked_sub(1)?,
        };
        let segment = cell.segments.get(k)?;
        Some(Hit { arm: segment.arm as usize, dynamic: segment.dynamic, label: segment.label.as_deref()? })
    }

    /// The slot of the time input, when the decision reads one.
    pub(crate) fn time_slot(&self) -> Option<u32> {
        self.time
    }

    /// What the table holds so far (for measurements and tests).
    pub(crate) fn size(&self) -> TableSize {
        let mut size = TableSize { cells: self.cells.len(), ..TableSize::default() };
        for cell in self.cells.iter().filter_map(OnceLock::get) {
            size.filled += 1;
            size.segments += cell.starts.len();
            size.evaluated += cell.segments.iter().filter(|s| s.label.is_none()).count();
        }
        size.labels = self.labels.lock().map_or(0, |labels| labels.values().map(Vec::len).sum());
        size
    }

    /// Evaluates cell number `index` at the start of each of its segments.
    fn fill(&self, index: usize, parts: &Parts<'_>, scans: &[&IndexedScan]) -> Cell {
        let general = || Cell { starts: Box::new([self.horizon.0]), segments: Box::new([Segment { arm: 0, dynamic: false, label: None }]) };
        let mut inputs = vec![Value::Null; parts.input_count];
        let mut other = 0u64;
        let mut rest = index;
        for (position, key) in self.keys.iter().enumerate().rev() {
            let classes = key.classes();
            let class = rest % classes;
            rest /= classes;
            inputs[key.slot as usize] = match class.checked_sub(1) {
                None => {
                    other |= 1 << position;
                    key.other.clone()
                }
                Some(i) => key.values[i].clone(),
            };
        }
        let mut slots: Vec<Option<Val<'_>>> = vec![None; parts.slot_count];
        let mut starts = vec![self.horizon.0];
        if let Some(time) = self.time {
            inputs[time as usize] = Value::Time(self.horizon.0);
            let mut bounds = self.instants.clone();
            let env = Env { lets: parts.lets, inputs: &inputs };
            let frame = &mut Frame { slots: &mut slots, let_count: parts.lets.len(), texts: None };
            for scan in scans {
                if !matches!(scan.bounds(&env, frame, &mut bounds), Ok(true)) {
                    return general();
                }
            }
            bounds.sort_unstable();
            bounds.dedup();
            starts.extend(bounds.into_iter().filter(|&b| b > self.horizon.0 && b < self.horizon.1));
        }
        let mut kept_starts = Vec::with_capacity(starts.len());
        let mut labels: Vec<Option<Arc<Label>>> = Vec::with_capacity(starts.len());
        for start in starts {
            if let Some(time) = self.time {
                inputs[time as usize] = Value::Time(start);
            }
            slots.iter_mut().for_each(|s| *s = None);
            let label = self.evaluate(parts, &inputs, &mut slots, other);
            let same = match (labels.last(), &label) {
                (Some(Some(previous)), Some(label)) => same_label(previous, label),
                (Some(None), None) => true,
                _ => false,
            };
            if !same {
                kept_starts.push(start);
                labels.push(label.map(|l| self.intern(l)));
            }
        }
        let segments = labels.into_iter().map(|label| Segment {
            arm: label.as_ref().map_or(0, |l| l.arm as u32),
            dynamic: label.as_ref().is_some_and(|l| l.dynamic != 0),
            label,
        });
        Cell { starts: kept_starts.into_boxed_slice(), segments: segments.collect() }
    }

    /// The label at `inputs`, `None` when the evaluation fails (the general
    /// evaluator then reports the error to the caller).
    fn evaluate<'p>(&self, parts: &Parts<'p>, inputs: &[Value], slots: &mut [Option<Val<'p>>], other: u64) -> Option<Label> {
        let env = Env { lets: parts.lets, inputs };
        let frame = &mut Frame { slots, let_count: parts.lets.len(), texts: None };
        let evaluated = matching_arm(parts.decision, &env, frame).and_then(|arm| Ok((arm, outcome_values(parts.decision, arm, &env, frame)?)));
        let (arm, values): (usize, OutcomeValues<'_>) = evaluated.ok()?;
        let mut values = values.into_owned();
        let mut dynamic = 0u64;
        for (position, repeats) in self.repeats.get(arm)?.iter().enumerate() {
            if repeats & other != 0 {
                if position >= MAX_POSITIONS {
                    return None;
                }
                dynamic |= 1 << position;
                if let Some(value) = values.position_mut(position) {
                    *value = std::borrow::Cow::Owned(Value::Null);
                }
            }
        }
        Some(Label { arm, values, dynamic })
    }

    fn intern(&self, label: Label) -> Arc<Label> {
        let mut hasher = FxHasher::default();
        (label.arm, label.dynamic).hash(&mut hasher);
        let values = label.values.reason.iter().chain(&label.values.fields[..label.values.count]).chain(&label.values.spill);
        values.for_each(|v| hash_value(v, &mut hasher));
        let mut labels = self.labels.lock().unwrap_or_else(|p| p.into_inner());
        let same = labels.entry(hasher.finish()).or_default();
        if let Some(found) = same.iter().find(|l| same_label(l, &label)) {
            return found.clone();
        }
        let made = Arc::new(label);
        same.push(made.clone());
        made
    }
}

/// The cells whose every key is a text the policy names, found by one hash
/// over the request's key texts ([`combined_hash`]).
struct Combined {
    /// Hash -> (cell, combination number).
    cells: FxHashMap<u64, (u32, u32)>,
    /// The key texts of combination `n`: `texts[n * keys..(n + 1) * keys]`.
    texts: Vec<Arc<str>>,
}

impl Combined {
    /// Every combination of named texts, or `None` when there are more than
    /// [`MAX_COMBINED`] or two of them hash alike.
    fn of(keys: &[Key]) -> Option<Combined> {
        let count = keys.iter().try_fold(1usize, |n, key| n.checked_mul(key.values.len()).filter(|&n| n <= MAX_COMBINED))?;
        let mut combined = Combined { cells: FxHashMap::with_capacity_and_hasher(count, Default::default()), texts: Vec::with_capacity(count * keys.len()) };
        // Each combination of the classes 1.. of every key, counted like an odometer.
        let mut classes = vec![1usize; keys.len()];
        for number in 0..count {
            let texts = keys.iter().zip(&classes).map(|(key, &class)| match &key.values[class - 1] {
                Value::Text(text) => Some(text),
                _ => None,
            });
            let hash = combined_hash(texts.clone())?;
            let cell = keys.iter().zip(&classes).map(|(key, &class)| key.digit(class)).sum::<usize>();
            if combined.cells.insert(hash, (u32::try_from(cell).ok()?, u32::try_from(number).ok()?)).is_some() {
                return None;
            }
            for text in texts {
                combined.texts.push(text?.clone());
            }
            for (key, class) in keys.iter().zip(classes.iter_mut()).rev() {
                if *class < key.values.len() {
                    *class += 1;
                    break;
                }
                *class = 1;
            }
        }
        Some(combined)
    }

    /// The cell of `inputs`, when each of its keys is a text the policy names.
    #[inline]
    fn cell(&self, keys: &[Key], inputs: &[Value]) -> Option<usize> {
        let texts = keys.iter().map(|key| match inputs.get(key.slot as usize) {
            Some(Value::Text(text)) => Some(text),
            _ => None,
        });
        let &(cell, number) = self.cells.get(&combined_hash(texts)?)?;
        let first = number as usize * keys.len();
        let expected = self.texts.get(first..first + keys.len())?;
        for (key, expected) in keys.iter().zip(expected) {
            match inputs.get(key.slot as usize) {
                Some(Value::Text(text)) if same_text(expected, text) => {}
                _ => return None,
            }
        }
        Some(cell as usize)
    }
}

/// One hash over key texts, in key order (`None`: a key is not text): of
/// the named combinations when the table is built, of a request's keys when
/// it is looked up ([`Combined::cell`]).
#[inline]
fn combined_hash<'t>(texts: impl Iterator<Item = Option<&'t Arc<str>>>) -> Option<u64> {
    let mut hasher = FxHasher::default();
    for text in texts {
        text?.hash(&mut hasher);
    }
    Some(hasher.finish())
}

fn same_label(a: &Label, b: &Label) -> bool {
    let (x, y) = (&a.values, &b.values);
    a.arm == b.arm && a.dynamic == b.dynamic && x.count == y.count && x.reason == y.reason && x.fields[..x.count] == y.fields[..y.count] && x.spill == y.spill
}

fn hash_value(value: &Value, h: &mut FxHasher) {
    std::mem::discriminant(value).hash(h);
    match value {
        Value::Null | Value::Recurrence(_) => {}
        Value::Bool(b) => b.hash(h),
        Value::Number(n) => n.to_bits().hash(h),
        Value::Text(t) => t.hash(h),
        Value::Time(t) | Value::Duration(t) => t.hash(h),
        Value::List(items) => items.iter().for_each(|v| hash_value(v, h)),
        Value::Map(map) => map.entries().iter().for_each(|(k, v)| {
            k.hash(h);
            hash_value(v, h)
        }),
        Value::Record(r) => r.values.iter().for_each(|v| hash_value(v, h)),
    }
}

/// The indexed lookups of a decision whose instant is the time input: their
/// bounds split each cell's time axis.
fn timed_scans<'p>(parts: &Parts<'p>) -> Vec<&'p IndexedScan> {
    fn visit<'p>(node: &'p Node, lets: &'p [LetDef], seen: &mut FxHashSet<u32>, out: &mut Vec<&'p IndexedScan>) {
        match &node.kind {
            Kind::Let(i) => {
                if seen.insert(*i) {
                    if let Some(def) = lets.get(*i as usize) {
                        visit(&def.node, lets, seen, out);
                    }
                }
                return;
            }
            Kind::Indexed(ix) if matches!(ix.time.kind, Kind::Input(_)) => out.push(ix),
            _ => {}
        }
        children(node, &mut |c| visit(c, lets, seen, out));
    }
    let mut out = Vec::new();
    let mut seen = FxHashSet::default();
    for arm in parts.decision.arms.iter().chain(std::iter::once(&parts.decision.otherwise)) {
        visit(&arm.condition, parts.lets, &mut seen, &mut out);
        for node in arm.outcome.reason.iter().chain(arm.outcome.fields.iter().map(|(_, n)| n)) {
            visit(node, parts.lets, &mut seen, &mut out);
        }
    }
    out
}

/// Why a decision gets no table (only ever dropped: the decision then runs
/// the general evaluator, so there is nothing to report).
struct NotTable;

type Verdict<T> = Result<T, NotTable>;

/// What a value may repeat of the request: key values (bits by key
/// position), and whether it is the time input itself.
#[derive(Clone, Copy, Debug, Default)]
struct Carry {
    keys: u64,
    /// The value is either static or exactly one key's value (never a text
    /// made from it): equality with static values then depends only on the
    /// key's class.
    exact: bool,
    time: bool,
}

impl Carry {
    const STATIC: Carry = Carry { keys: 0, exact: true, time: false };

    fn is_static(self) -> bool {
        self.keys == 0 && !self.time
    }

    fn union(self, other: Carry) -> Carry {
        Carry { keys: self.keys | other.keys, exact: self.exact && other.exact, time: self.time || other.time }
    }
}

/// What a quantifier variable ranges over, for working out possible values.
#[derive(Clone, Copy)]
enum Binding<'a> {
    Source(&'a Node),
    Items(&'a IndexedScan),
}

/// The walk over a decision that decides whether it qualifies and collects
/// what the table needs.
struct Analysis<'a> {
    lets: &'a [LetDef],
    inputs: &'a [InputDef],
    /// Key slots, by position.
    keys: Vec<u32>,
    domains: Vec<FxHashSet<Arc<str>>>,
    time: Option<u32>,
    horizon: (i64, i64),
    instants: Vec<i64>,
    repeats: Vec<Vec<u64>>,
    let_carries: Vec<Option<Carry>>,
    locals: Vec<(u32, Binding<'a>)>,
}

impl<'a> Analysis<'a> {
    fn of(d: &'a DecisionIr, lets: &'a [LetDef], inputs: &'a [InputDef]) -> Verdict<Analysis<'a>> {
        let mut a = Analysis {
            lets,
            inputs,
            keys: Vec::new(),
            domains: Vec::new(),
            time: None,
            horizon: (i64::MIN, i64::MAX),
            instants: Vec::new(),
            repeats: Vec::new(),
            let_carries: vec![None; lets.len()],
            locals: Vec::new(),
        };
        for arm in d.arms.iter().chain(std::iter::once(&d.otherwise)) {
            if !a.walk(&arm.condition)?.is_static() {
                return Err(NotTable);
            }
            // Position 0 is the reason (none: repeats nothing), `1 + i` field `i`.
            let mut repeats = Vec::new();
            for node in std::iter::once(arm.outcome.reason.as_ref()).chain(arm.outcome.fields.iter().map(|(_, n)| Some(n))) {
                let carry = match node {
                    Some(node) => a.walk(node)?,
                    None => Carry::STATIC,
                };
                if carry.time {
                    return Err(NotTable);
                }
                repeats.push(carry.keys);
            }
            a.repeats.push(repeats);
        }
        if a.keys.is_empty() && a.time.is_none() {
            return Err(NotTable); // nothing to tabulate: the decision is a constant already
        }
        Ok(a)
    }

    fn key_position(&mut self, slot: u32) -> Verdict<usize> {
        if let Some(p) = self.keys.iter().position(|&k| k == slot) {
            return Ok(p);
        }
        if self.keys.len() >= MAX_KEYS {
            return Err(NotTable);
        }
        self.keys.push(slot);
        self.domains.push(FxHashSet::default());
        Ok(self.keys.len() - 1)
    }

    /// Adds `texts` to the domain of every key in `carry`.
    fn compared(&mut self, carry: Carry, texts: impl IntoIterator<Item = Arc<str>>) -> Verdict<()> {
        if carry.keys == 0 {
            return Ok(());
        }
        if !carry.exact || carry.time {
            return Err(NotTable);
        }
        let texts: Vec<Arc<str>> = texts.into_iter().collect();
        for (position, domain) in self.domains.iter_mut().enumerate() {
            if carry.keys & (1 << position) != 0 {
                domain.extend(texts.iter().cloned());
            }
        }
        Ok(())
    }

    fn static_operand(&mut self, node: &'a Node) -> Verdict<()> {
        if self.walk(node)?.is_static() {
            Ok(())
        } else {
            Err(NotTable)
        }
    }

    fn walk(&mut self, node: &'a Node) -> Verdict<Carry> {
        Ok(match &node.kind {
            Kind::Const(_) => Carry::STATIC,
            Kind::Input(slot) => {
                let def = self.inputs.get(*slot as usize).ok_or(NotTable)?;
                match def.ty.base() {
                    _ if def.is_static => Carry::STATIC,
                    Ty::Text => Carry { keys: 1 << self.key_position(*slot)?, exact: true, time: false },
                    Ty::Time if self.time.is_none_or(|t| t == *slot) => {
                        self.time = Some(*slot);
                        Carry { keys: 0, exact: true, time: true }
                    }
                    _ => return Err(NotTable),
                }
            }
            Kind::Let(i) => match self.let_carries.get(*i as usize).copied().flatten() {
                Some(carry) => carry,
                None => {
                    let def = self.lets.get(*i as usize).ok_or(NotTable)?;
                    let carry = self.walk(&def.node)?;
                    self.let_carries[*i as usize] = Some(carry);
                    carry
                }
            },
            // Elements of a static source (checked where the variable is bound).
            Kind::Local(_) => Carry::STATIC,
            Kind::Field(target, _) | Kind::Not(target) | Kind::Neg(target) | Kind::Test(target, _) => {
                self.static_operand(target)?;
                Carry::STATIC
            }
            Kind::ListGet(a, b) | Kind::Arith(_, a, b) | Kind::And(a, b) | Kind::Or(a, b) => {
                self.static_operand(a)?;
                self.static_operand(b)?;
                Carry::STATIC
            }
            Kind::MapGet(map, key) => {
                self.static_operand(map)?;
                let carry = self.walk(key)?;
                if carry.keys != 0 {
                    let texts = self.possible(map).ok_or(NotTable)?.iter().flat_map(map_keys).collect::<Vec<_>>();
                    self.compared(carry, texts)?;
                } else if carry.time {
                    return Err(NotTable);
                }
                Carry::STATIC
            }
            Kind::In(kind, element, collection) | Kind::NotIn(kind, element, collection) => {
                self.static_operand(collection)?;
                let carry = self.walk(element)?;
                if carry.time {
                    return Err(NotTable);
                }
                if carry.keys != 0 {
                    let possible = self.possible(collection).ok_or(NotTable)?;
                    let texts: Vec<Arc<str>> = match kind {
                        InKind::List => possible.iter().flat_map(list_texts).collect(),
                        InKind::MapKey => possible.iter().flat_map(map_keys).collect(),
                        InKind::Substring => return Err(NotTable),
                    };
                    self.compared(carry, texts)?;
                }
                Carry::STATIC
            }
            Kind::Compare(first, rest) => {
                let operands: Vec<&'a Node> = std::iter::once(&**first).chain(rest.iter().map(|(_, n)| n)).collect();
                let carries = operands.iter().map(|n| self.walk(n)).collect::<Verdict<Vec<Carry>>>()?;
                if carries.iter().any(|c| c.time) {
                    // The time input against constant instants only: each is a breakpoint.
                    for (node, carry) in operands.iter().zip(&carries) {
                        match (&node.kind, carry.time) {
                            (_, true) if carry.keys == 0 => {}
                            (Kind::Const(Value::Time(t)), false) => self.instants.push(*t),
                            _ => return Err(NotTable),
                        }
                    }
                } else if carries.iter().any(|c| c.keys != 0) {
                    let [(op, _)] = rest.as_slice() else { return Err(NotTable) };
                    if !matches!(op, CompareOp::Eq | CompareOp::Ne) {
                        return Err(NotTable);
                    }
                    let (keyed, other) = if carries[0].keys != 0 { (0, 1) } else { (1, 0) };
                    if carries[other].keys != 0 {
                        return Err(NotTable); // a key against a key (or a text made from one)
                    }
                    let texts = self.possible(operands[other]).ok_or(NotTable)?.iter().filter_map(text).collect::<Vec<_>>();
                    self.compared(carries[keyed], texts)?;
                }
                Carry::STATIC
            }
            Kind::Call(builtin, args) => match (builtin, args.as_slice()) {
                (Builtin::Active | Builtin::ActiveUntil, [start, end, recurrence, at]) => {
                    for window in [start, end, recurrence] {
                        self.static_operand(window)?;
                    }
                    let carry = self.walk(at)?;
                    if carry.keys != 0 {
                        return Err(NotTable);
                    }
                    // At the time input, the window must be an element an
                    // indexed lookup gives: its bounds are then among the cell's.
                    if carry.time && ![start, end, recurrence].iter().all(|w| self.element_of_timed_lookup(w)) {
                        return Err(NotTable);
                    }
                    Carry::STATIC
                }
                _ => {
                    for arg in args {
                        self.static_operand(arg)?;
                    }
                    Carry::STATIC
                }
            },
            Kind::Default(a, b) => {
                let carry = self.walk(a)?.union(self.walk(b)?);
                if carry.time {
                    return Err(NotTable);
                }
                carry
            }
            Kind::If(condition, a, b) => {
                self.static_operand(condition)?;
                let carry = self.walk(a)?.union(self.walk(b)?);
                if carry.time {
                    return Err(NotTable);
                }
                carry
            }
            Kind::Text(parts) | Kind::List(parts) => self.made_from(parts.iter())?,
            Kind::Map(entries) => self.made_from(entries.iter().map(|(_, n)| n))?,
            Kind::Scan(scan) => {
                self.static_operand(&scan.source)?;
                self.locals.push((scan.local, Binding::Source(&scan.source)));
                let inner = [scan.filter.as_ref(), scan.key.as_ref()].into_iter().flatten().try_for_each(|n| self.static_operand(n));
                self.locals.pop();
                inner?;
                Carry::STATIC
            }
            Kind::Indexed(ix) => self.indexed(ix)?,
        })
    }

    /// A value made from parts (interpolated text, a list or a map): it
    /// repeats their keys, but is never exactly one of them.
    fn made_from(&mut self, parts: impl Iterator<Item = &'a Node>) -> Verdict<Carry> {
        let mut carry = Carry::STATIC;
        for part in parts {
            carry = carry.union(self.walk(part)?);
        }
        if carry.time {
            return Err(NotTable);
        }
        Ok(Carry { exact: carry.keys == 0, ..carry })
    }

    fn indexed(&mut self, ix: &'a IndexedScan) -> Verdict<Carry> {
        let reads_local = |n: &Node| any_node(n, &|c| matches!(c.kind, Kind::Local(_)));
        let time = self.walk(&ix.time)?;
        // The instant is the time input itself (so that `timed_scans` finds
        // this lookup) or a constant (the clock was pinned).
        if time.keys != 0 || !(matches!(ix.time.kind, Kind::Input(_)) && time.time || ix.time.as_const().is_some()) {
            return Err(NotTable);
        }
        if time.time {
            if let Some((from, to)) = ix.horizon() {
                self.horizon = (self.horizon.0.max(from), self.horizon.1.min(to));
            }
        }
        for (dim, key) in ix.keys.iter().enumerate() {
            let carry = self.walk(key)?;
            if reads_local(key) || carry.time {
                return Err(NotTable);
            }
            self.compared(carry, ix.dimension_texts(dim))?;
        }
        if let crate::index::IndexSource::Keyed { key, .. } = &ix.source {
            let carry = self.walk(key)?;
            if reads_local(key) || carry.time {
                return Err(NotTable);
            }
            self.compared(carry, ix.map_keys())?;
        }
        self.locals.push((ix.local, Binding::Items(ix)));
        let inner = [ix.residual.as_ref(), ix.by.as_ref()].into_iter().flatten().try_for_each(|n| self.static_operand(n));
        self.locals.pop();
        inner?;
        Ok(Carry::STATIC)
    }

    /// `w.field` where `w` is a `let` holding an element of an indexed
    /// lookup at the time input (or null).
    fn element_of_timed_lookup(&self, node: &Node) -> bool {
        match &node.kind {
            Kind::Const(Value::Null) => true,
            Kind::Field(target, _) => match &target.kind {
                Kind::Let(i) => self.lets.get(*i as usize).is_some_and(|def| match &def.node.kind {
                    Kind::Indexed(ix) => ix.kind == QuantKind::First && matches!(ix.time.kind, Kind::Input(_)),
                    _ => false,
                }),
                _ => false,
            },
            _ => false,
        }
    }

    /// The values `node` can take (a superset), when they can be told from
    /// static data alone; `None` when not (or when there are too many).
    fn possible(&self, node: &Node) -> Option<Vec<Value>> {
        let values = match &node.kind {
            Kind::Const(v) => vec![v.clone()],
            Kind::Let(i) => self.possible(&self.lets.get(*i as usize)?.node)?,
            Kind::Field(target, field) => self
                .possible(target)?
                .into_iter()
                .map(|v| match v {
                    Value::Record(r) => r.values.get(*field as usize).cloned().unwrap_or(Value::Null),
                    _ => Value::Null,
                })
                .collect(),
            Kind::MapGet(map, key) => {
                let keys: Option<Vec<Arc<str>>> = self.possible(key).map(|ks| ks.iter().filter_map(text).collect());
                let mut out = vec![Value::Null];
                for map in self.possible(map)? {
                    let Value::Map(map) = map else { continue };
                    match &keys {
                        Some(keys) => out.extend(keys.iter().filter_map(|k| map.get(k).cloned())),
                        None => out.extend(map.entries().iter().map(|(_, v)| v.clone())),
                    }
                }
                out
            }
            Kind::Default(a, b) => {
                let mut out: Vec<Value> = self.possible(a)?.into_iter().filter(|v| !v.is_null()).collect();
                out.extend(self.possible(b)?);
                out
            }
            Kind::If(_, a, b) => {
                let mut out = self.possible(a)?;
                out.extend(self.possible(b)?);
                out
            }
            Kind::Local(l) => match self.locals.iter().rev().find(|(local, _)| local == l)?.1 {
                Binding::Source(source) => self.possible(source)?.iter().flat_map(list_items).collect(),
                Binding::Items(ix) => ix.items().into_iter().cloned().collect(),
            },
            Kind::Indexed(ix) if ix.kind == QuantKind::First => {
                let mut out: Vec<Value> = ix.items().into_iter().cloned().collect();
                out.push(Value::Null);
                out
            }
            Kind::Scan(scan) if scan.kind == QuantKind::First => {
                let mut out: Vec<Value> = self.possible(&scan.source)?.iter().flat_map(list_items).collect();
                out.push(Value::Null);
                out
            }
            // A filtered list holds some of its source's elements.
            Kind::Scan(scan) if scan.kind == QuantKind::Filter => self.possible(&scan.source)?,
            _ => return None,
        };
        (values.len() <= MAX_POSSIBLE).then_some(values)
    }
}

fn text(value: &Value) -> Option<Arc<str>> {
    match value {
        Value::Text(t) => Some(t.clone()),
        _ => None,
    }
}

fn list_items(value: &Value) -> Vec<Value> {
    match value {
        Value::List(items) => items.to_vec(),
        _ => Vec::new(),
    }
}

fn list_texts(value: &Value) -> Vec<Arc<str>> {
    list_items(value).iter().filter_map(text).collect()
}

fn map_keys(value: &Value) -> Vec<Arc<str>> {
    match value {
        Value::Map(map) => map.entries().iter().map(|(k, _)| k.clone()).collect(),
        _ => Vec::new(),
    }
}

/// Evaluates the outcome values at `label`'s dynamic positions for the
/// actual request, the rest lent from the label.
pub(crate) fn outcome_for<'p>(
    label: &'p Label,
    decision: &'p DecisionIr,
    env: &Env<'p, '_>,
    frame: &mut Frame<'_, 'p>,
) -> Result<OutcomeValues<'p>, EvalError> {
    let mut values = label.values.lend();
    if label.dynamic == 0 {
        return Ok(values);
    }
    let outcome = &decision.arm(label.arm).outcome;
    let nodes = std::iter::once(outcome.reason.as_ref()).chain(outcome.fields.iter().map(|(_, n)| Some(n)));
    for (position, node) in nodes.enumerate() {
        let Some(node) = node else { continue };
        if position < MAX_POSITIONS && label.dynamic & (1 << position) != 0 {
            let value = eval(node, env, frame)?;
            if let Some(slot) = values.position_mut(position) {
                *slot = value;
            }
        }
    }
    Ok(values)
}
