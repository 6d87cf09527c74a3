//! What arm conditions settle by themselves, from the tests they are made
//! of: a condition that always holds (`x exists or x not exists`,
//! `a == v or a != v`), one that never does (`a < 3 and a > 5`,
//! `p == "a" and p == "b"`), and an arm that the arms before it cover
//! (`when p == "a"`, `when p != "a"`, then `when p == "b"`).
//!
//! A condition is read as a sum of products ("cubes") of tests, each test
//! one operand (the expression tested, named by its text) against
//! constants: `==`, `!=`, `<`, `<=`, `>`, `>=`, `in`/`not in` a constant
//! list, `exists`/`not exists`. Any other part is an opaque yes/no fact of
//! its own. Operands are taken as independent, which can only hide a
//! finding, never invent one. Each operand's values are split into the
//! finitely many classes its tests can tell apart (null, each constant,
//! the numbers between the bounds, any other value), so checking one
//! sample per class decides exactly. A condition too large to expand, or
//! with too many combinations to check, is not judged: these warnings
//! never guess.

use crate::ir::{InKind, Kind, Node};
use crate::value::Value;
use cavra_grammar::ast::{CompareOp, Span, TestOp};
use std::collections::{BTreeMap, BTreeSet};

/// The most cubes a condition may expand to before it is left unjudged.
const MAX_CUBES: usize = 64;
/// The most combinations of samples checked for one question.
const MAX_ASSIGNMENTS: usize = 4096;

/// A constant a test compares with.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    /// A number, time or duration (ordered), by its bits.
    Num(u64),
    /// Anything else, by its type and text.
    Other(String),
}

impl Key {
    fn of(value: &Value) -> Option<Key> {
        Some(match value {
            Value::Null => return None,
            Value::Number(n) => Key::Num(n.to_bits()),
            Value::Time(t) | Value::Duration(t) => Key::Num((*t as f64).to_bits()),
            other => Key::Other(format!("{}:{other}", other.type_name())),
        })
    }

    fn number(&self) -> Option<f64> {
        match self {
            Key::Num(bits) => Some(f64::from_bits(*bits)),
            Key::Other(_) => None,
        }
    }
}

/// The values of one operand a set of tests lets through.
#[derive(Clone, Debug, PartialEq)]
struct Domain {
    null: bool,
    /// Only these non-null values (`None`: any).
    only: Option<BTreeSet<Key>>,
    excluded: BTreeSet<Key>,
    /// Ordered bounds `(value, inclusive)`; either one excludes every value that is not a number.
    lo: Option<(f64, bool)>,
    hi: Option<(f64, bool)>,
}

impl Domain {
    fn any() -> Domain {
        Domain { null: true, only: None, excluded: BTreeSet::new(), lo: None, hi: None }
    }
    fn non_null() -> Domain {
        Domain { null: false, ..Domain::any() }
    }
    fn null_only() -> Domain {
        Domain { null: true, only: Some(BTreeSet::new()), ..Domain::any() }
    }
    fn one_of(keys: BTreeSet<Key>, null: bool) -> Domain {
        Domain { null, only: Some(keys), ..Domain::any() }
    }
    fn none_of(keys: BTreeSet<Key>, null: bool) -> Domain {
        Domain { null, excluded: keys, ..Domain::any() }
    }

    fn intersect(&self, other: &Domain) -> Domain {
        let only = match (&self.only, &other.only) {
            (Some(a), Some(b)) => Some(a.intersection(b).cloned().collect()),
            (Some(a), None) | (None, Some(a)) => Some(a.clone()),
            (None, None) => None,
        };
        let tighter = |a: Option<(f64, bool)>, b: Option<(f64, bool)>, lower: bool| match (a, b) {
            (Some(x), Some(y)) if x.0 == y.0 => Some((x.0, x.1 && y.1)),
            (Some(x), Some(y)) => Some(if (x.0 > y.0) == lower { x } else { y }),
            (x, None) => x,
            (None, y) => y,
        };
        Domain {
            null: self.null && other.null,
            only,
            excluded: self.excluded.union(&other.excluded).cloned().collect(),
            lo: tighter(self.lo, other.lo, true),
            hi: tighter(self.hi, other.hi, false),
        }
    }

    fn contains(&self, sample: &Option<Key>) -> bool {
        let Some(key) = sample else { return self.null };
        if self.only.as_ref().is_some_and(|only| !only.contains(key)) || self.excluded.contains(key) {
            return false;
        }
        if self.lo.is_none() && self.hi.is_none() {
            return true;
        }
        let Some(x) = key.number() else { return false };
        let above = self.lo.is_none_or(|(lo, inclusive)| x > lo || (inclusive && x == lo));
        let below = self.hi.is_none_or(|(hi, inclusive)| x < hi || (inclusive && x == hi));
        above && below
    }

    /// The constants and bounds that split this domain's values into classes.
    fn points(&self, keys: &mut BTreeSet<Key>) {
        keys.extend(self.only.iter().flatten().cloned());
        keys.extend(self.excluded.iter().cloned());
        keys.extend(self.lo.iter().chain(self.hi.iter()).map(|(x, _)| Key::Num(x.to_bits())));
    }
}

/// One sample of each class of values that `keys` tell apart: null, each
/// key, the numbers between and around the numeric keys, a value that is
/// none of them.
fn samples(keys: &BTreeSet<Key>) -> Vec<Option<Key>> {
    let mut numbers: Vec<f64> = keys.iter().filter_map(Key::number).collect();
    numbers.sort_by(f64::total_cmp);
    let mut out: Vec<Option<Key>> = vec![None];
    out.extend(keys.iter().cloned().map(Some));
    let mut others: Vec<f64> = numbers.windows(2).map(|w| w[0] + (w[1] - w[0]) / 2.0).collect();
    match (numbers.first(), numbers.last()) {
        (Some(lo), Some(hi)) => others.extend([lo - 1.0, hi + 1.0]),
        _ => others.push(0.5),
    }
    out.extend(others.into_iter().map(|x| Some(Key::Num(x.to_bits()))));
    out.push(Some(Key::Other("\u{0}another value".into())));
    out
}

/// A product of tests: operand -> what they let through. Empty: always true.
type Cube = BTreeMap<String, Domain>;

/// The sum of products of a condition: `None` when it is too large to judge.
fn cubes(node: &Node, negated: bool, text: &dyn Fn(Span) -> String, opaque: &mut BTreeSet<String>) -> Option<Vec<Cube>> {
    match &node.kind {
        Kind::And(a, b) | Kind::Or(a, b) => {
            let (left, right) = (cubes(a, negated, text, opaque)?, cubes(b, negated, text, opaque)?);
            // `and` is a product, `or` a sum; negated, the other way round.
            if matches!(node.kind, Kind::And(..)) != negated {
                let mut out = Vec::new();
                for l in &left {
                    for r in &right {
                        out.push(meet(l, r));
                        if out.len() > MAX_CUBES {
                            return None;
                        }
                    }
                }
                Some(out)
            } else {
                let out: Vec<Cube> = left.into_iter().chain(right).collect();
                (out.len() <= MAX_CUBES).then_some(out)
            }
        }
        Kind::Not(a) => cubes(a, !negated, text, opaque),
        Kind::Const(Value::Bool(b)) => Some(if *b != negated { vec![Cube::new()] } else { Vec::new() }),
        _ => {
            let (operand, domain) = match test(node, negated, text) {
                Some(found) => found,
                None => {
                    // An opaque fact: true or false, nothing else.
                    let name = text(node.span);
                    opaque.insert(name.clone());
                    let truth = Key::Other(format!("bool:{}", !negated));
                    (name, Domain::one_of(BTreeSet::from([truth]), false))
                }
            };
            Some(vec![Cube::from([(operand, domain)])])
        }
    }
}

fn meet(a: &Cube, b: &Cube) -> Cube {
    let mut out = a.clone();
    for (operand, domain) in b {
        let merged = match out.get(operand) {
            Some(mine) => mine.intersect(domain),
            None => domain.clone(),
        };
        out.insert(operand.clone(), merged);
    }
    out
}

/// One test of an operand against constants, as the domain it lets through.
fn test(node: &Node, negated: bool, text: &dyn Fn(Span) -> String) -> Option<(String, Domain)> {
    match &node.kind {
        Kind::Test(operand, op @ (TestOp::Exists | TestOp::NotExists)) => {
            let exists = (*op == TestOp::Exists) != negated;
            Some((text(operand.span), if exists { Domain::non_null() } else { Domain::null_only() }))
        }
        Kind::Compare(left, rest) if rest.len() == 1 => {
            let (op, right) = (rest[0].0, &rest[0].1);
            // `operand OP constant`, or `constant OP operand` read the other way.
            let (operand, constant, op) = match (left.as_const(), right.as_const()) {
                (None, Some(c)) => (left.as_ref(), c, op),
                (Some(c), None) => (right, c, flipped(op)),
                _ => return None,
            };
            Some((text(operand.span), compared(op, constant, negated)?))
        }
        Kind::In(InKind::List, operand, list) | Kind::NotIn(InKind::List, operand, list) => {
            let items = constant_list(list)?;
            let inside = matches!(node.kind, Kind::In(..)) != negated;
            let null = items.iter().any(Value::is_null);
            let keys: BTreeSet<Key> = items.iter().filter_map(Key::of).collect();
            Some((text(operand.span), if inside { Domain::one_of(keys, null) } else { Domain::none_of(keys, !null) }))
        }
        _ => None,
    }
}

fn constant_list(node: &Node) -> Option<Vec<Value>> {
    match &node.kind {
        Kind::Const(Value::List(items)) => Some(items.to_vec()),
        Kind::List(items) => items.iter().map(|i| i.as_const().cloned()).collect(),
        _ => None,
    }
}

fn flipped(op: CompareOp) -> CompareOp {
    match op {
        CompareOp::Lt => CompareOp::Gt,
        CompareOp::Le => CompareOp::Ge,
        CompareOp::Gt => CompareOp::Lt,
        CompareOp::Ge => CompareOp::Le,
        same => same,
    }
}

/// What `operand OP constant` (or its negation) lets through.
fn compared(op: CompareOp, constant: &Value, negated: bool) -> Option<Domain> {
    let key = Key::of(constant);
    let op = if negated {
        match op {
            CompareOp::Eq => CompareOp::Ne,
            CompareOp::Ne => CompareOp::Eq,
            // An ordered comparison with null fails rather than being false:
            // its negation is the opposite comparison, on numbers only.
            CompareOp::Lt => CompareOp::Ge,
            CompareOp::Le => CompareOp::Gt,
            CompareOp::Gt => CompareOp::Le,
            CompareOp::Ge => CompareOp::Lt,
        }
    } else {
        op
    };
    Some(match (op, key) {
        (CompareOp::Eq, None) => Domain::null_only(),
        (CompareOp::Ne, None) => Domain::non_null(),
        (CompareOp::Eq, Some(key)) => Domain::one_of(BTreeSet::from([key]), false),
        (CompareOp::Ne, Some(key)) => Domain::none_of(BTreeSet::from([key]), true),
        (ordered, Some(key)) => {
            let x = key.number()?;
            let bound = Domain { null: false, ..Domain::any() };
            match ordered {
                CompareOp::Lt => Domain { hi: Some((x, false)), ..bound },
                CompareOp::Le => Domain { hi: Some((x, true)), ..bound },
                CompareOp::Gt => Domain { lo: Some((x, false)), ..bound },
                _ => Domain { lo: Some((x, true)), ..bound },
            }
        }
        (_, None) => return None,
    })
}

/// The conditions of one decision's arms, as far as they could be read.
pub(super) struct Reading {
    cubes: Option<Vec<Cube>>,
    opaque: BTreeSet<String>,
}

impl Reading {
    pub(super) fn of(condition: &Node, text: &dyn Fn(Span) -> String) -> Reading {
        let mut opaque = BTreeSet::new();
        let cubes = cubes(condition, false, text, &mut opaque);
        Reading { cubes, opaque }
    }
}

/// The operands of some readings (sorted) and the samples each one takes:
/// every combination of one sample per operand is one case to check. The
/// cases are walked, not stored (an odometer over the samples).
struct Cases {
    operands: Vec<String>,
    choices: Vec<Vec<Option<Key>>>,
}

/// A cube with its operands as indexes into [`Cases::operands`].
type IndexedCube<'c> = Vec<(usize, &'c Domain)>;

impl Cases {
    /// The cases of `readings`, or `None` when there are more than [`MAX_ASSIGNMENTS`].
    fn of<'r>(readings: impl Iterator<Item = &'r Reading>) -> Option<Cases> {
        let mut points: BTreeMap<String, BTreeSet<Key>> = BTreeMap::new();
        let mut opaque = BTreeSet::new();
        for reading in readings {
            opaque.extend(reading.opaque.iter().cloned());
            for cube in reading.cubes.iter().flatten() {
                for (operand, domain) in cube {
                    domain.points(points.entry(operand.clone()).or_default());
                }
            }
        }
        let mut count = 1usize;
        let (mut operands, mut choices) = (Vec::with_capacity(points.len()), Vec::with_capacity(points.len()));
        for (operand, keys) in points {
            let samples =
                if opaque.contains(&operand) { vec![Some(Key::Other("bool:true".into())), Some(Key::Other("bool:false".into()))] } else { samples(&keys) };
            count = count.saturating_mul(samples.len());
            if count > MAX_ASSIGNMENTS {
                return None;
            }
            operands.push(operand);
            choices.push(samples);
        }
        Some(Cases { operands, choices })
    }

    /// `cubes` with each operand named by its index (an operand these cases
    /// lack gets an index past the end, which no case has: its test fails).
    fn index<'c>(&self, cubes: &'c [Cube]) -> Vec<IndexedCube<'c>> {
        cubes.iter().map(|cube| cube.iter().map(|(operand, domain)| (self.operands.binary_search(operand).unwrap_or(usize::MAX), domain)).collect()).collect()
    }

    /// Whether `each` holds for every case (stops at the first that fails).
    fn all(&self, mut each: impl FnMut(&[&Option<Key>]) -> bool) -> bool {
        let mut at = vec![0usize; self.choices.len()];
        let mut case: Vec<&Option<Key>> = self.choices.iter().filter_map(|samples| samples.first()).collect();
        if case.len() != self.choices.len() {
            return true; // an operand without samples: no case at all
        }
        loop {
            if !each(&case) {
                return false;
            }
            let mut digit = 0;
            loop {
                let Some(samples) = self.choices.get(digit) else { return true };
                at[digit] += 1;
                match samples.get(at[digit]) {
                    Some(sample) => {
                        case[digit] = sample;
                        break;
                    }
                    None => {
                        at[digit] = 0;
                        case[digit] = &samples[0];
                        digit += 1;
                    }
                }
            }
        }
    }
}

fn holds(cubes: &[IndexedCube<'_>], case: &[&Option<Key>]) -> bool {
    cubes.iter().any(|cube| cube.iter().all(|(operand, domain)| case.get(*operand).is_some_and(|sample| domain.contains(sample))))
}

/// What a reading settles by itself.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Settled {
    Always,
    Never,
}

/// Whether `reading` always or never holds, when its tests alone decide it
/// (and it is more than a constant, which the folder already judges).
pub(super) fn settled(reading: &Reading) -> Option<Settled> {
    let cubes = reading.cubes.as_ref()?;
    let cases = Cases::of(std::iter::once(reading))?;
    // A constant part (an empty cube is `true`) is the folder's to judge.
    if cubes.is_empty() || cubes.iter().any(Cube::is_empty) {
        return None;
    }
    let cubes = cases.index(cubes);
    if cases.all(|case| holds(&cubes, case)) {
        return Some(Settled::Always);
    }
    if cases.all(|case| !holds(&cubes, case)) {
        return Some(Settled::Never);
    }
    None
}

/// Whether every case `reading` matches is matched by one of `earlier`.
pub(super) fn covered(reading: &Reading, earlier: &[&Reading]) -> bool {
    let Some(mine) = &reading.cubes else { return false };
    let known: Vec<&Vec<Cube>> = earlier.iter().filter_map(|r| r.cubes.as_ref()).collect();
    if known.is_empty() || mine.is_empty() {
        return false;
    }
    let Some(cases) = Cases::of(std::iter::once(reading).chain(earlier.iter().copied())) else { return false };
    let mine = cases.index(mine);
    let known: Vec<Vec<IndexedCube<'_>>> = known.iter().map(|cubes| cases.index(cubes)).collect();
    let mut matched = false;
    let all_covered = cases.all(|case| {
        if !holds(&mine, case) {
            return true;
        }
        matched = true;
        known.iter().any(|cubes| holds(cubes, case))
    });
    all_covered && matched
}

/// Whether the `readings` together match every case (each fully read).
pub(super) fn exhaustive(readings: &[&Reading]) -> bool {
    let Some(known) = readings.iter().map(|r| r.cubes.as_ref()).collect::<Option<Vec<_>>>() else { return false };
    if known.is_empty() || known.iter().any(|cubes| cubes.iter().any(Cube::is_empty)) {
        // A constant `true` arm is the folder's to judge.
        return false;
    }
    let Some(cases) = Cases::of(readings.iter().copied()) else { return false };
    let known: Vec<Vec<IndexedCube<'_>>> = known.iter().map(|cubes| cases.index(cubes)).collect();
    cases.all(|case| known.iter().any(|cubes| holds(cubes, case)))
}
