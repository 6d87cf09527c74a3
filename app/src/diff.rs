//! Impact analysis (`cavra diff`, `POST /v1/packs/{pack}/diff`): every
//! decision that changes between two sides (two packs, or one pack with two
//! sets of input documents) for every key the inputs name, over a period or
//! at the cases of a rule-test file, with both outcomes and the intervals.
//!
//! Over a period, both sides are decided at the start of every elementary
//! interval: between two neighbouring instants at which either side's
//! decision can change. Those are the times the input documents of either
//! side name (recurring occurrences expanded), the time constants of either
//! pack, each of them also one microsecond later (for `<=` and `>`), and the
//! period's ends. Neighbouring intervals with the same pair of outcomes are
//! merged, and those where the outcomes differ are reported. It is the
//! routing simulation's idea (`simulate.rs`) applied to two sides at once,
//! for any decision pack whose time input is `now`.
//!
//! The keys: for a pack that reads a routing policy (`static input policy`),
//! every owner x provider x schedule either side's policy names, unless a
//! value is given; every other dynamic input ranges over the values given,
//! else over the constants either pack compares it with (for a number, also
//! a value between each two and one beyond each end), plus null when it is
//! optional, or [`ANY_OTHER`] when it is required text (a value no arm
//! names, such as a schedule status that is not `healthy`).

use crate::documents::{clock, document_instants};
use crate::error::{AppError, Field, Refusal};
use crate::packs::PackSource;
use crate::policy::NamedKeys;
use crate::records::{DecidedOutcome, DecisionChange, DiffReport, Ordered};
use crate::safety::Screen;
use cavra_engine::time::{format_time, parse_time, MICROS_PER_SECOND};
/// The packs compared, as front ends hand them over (compiled).
pub use cavra_engine::Pack;
use cavra_engine::{BindOptions, InputInfo, Inputs, Program, Value};
use serde_json::{Map, Value as Json};
use std::collections::{BTreeSet, HashMap};

/// The longest period examined at once, as for the routing simulation.
pub const MAX_SPAN_DAYS: i64 = crate::simulate::MAX_SPAN_DAYS;
/// The period examined when no `to` is given: a week from `from`.
pub const DEFAULT_PERIOD_DAYS: i64 = 7;
/// The most decisions made per side (keys x elementary intervals): a
/// million decisions take about a second, so a diff never runs away.
pub const MAX_DECISIONS: usize = 1_000_000;
/// The value that stands for "any text the inputs do not name and the packs
/// do not compare with": every such text is decided alike.
pub const ANY_OTHER: &str = "*";

/// The clock input: its value is the instant examined.
const CLOCK: &str = "now";
/// The routing policy input whose owners, providers and schedules make the keys.
const POLICY: &str = "policy";
/// The inputs a routing policy names values for, in the order a key shows them.
const KEY_INPUTS: [&str; 3] = ["owner", "provider", "schedule_id"];

/// A value given for an input, and where it comes from (for errors).
#[derive(Clone, Debug)]
pub struct Given {
    pub input: String,
    pub value: Json,
    pub source: Source,
}

/// Where a given value comes from: errors name it the way its front end does.
#[derive(Clone, Debug)]
pub enum Source {
    /// A JSON file named by a command-line flag (`--input policy=FILE`).
    File { field: Field, file: String },
    /// A value written on the command line (`--set owner=x`).
    Flag(Field),
    /// A member of a request body's object (`$.inputs`): the input's path is `$.inputs.NAME`.
    Body(&'static str),
}

impl Given {
    /// An error about this value as a whole (`inner` is `None`) or at a JSON path inside it.
    fn error(&self, inner: Option<&str>, message: &str) -> AppError {
        let name = &self.input;
        match (&self.source, inner) {
            (Source::File { field, file }, None) => AppError::field(field.clone(), format!("{name}={file}: {message}")),
            (Source::File { file, .. }, Some(path)) => AppError::at_path(path, format!("{file}: {path}: {message} (input `{name}`)")),
            (Source::Flag(field), None) => AppError::field(field.clone(), format!("{name}: {message}")),
            (Source::Flag(field), Some(path)) => AppError::field(field.clone(), format!("{name}: {path}: {message}")),
            (Source::Body(prefix), inner) => {
                let path = format!("{prefix}.{name}{}", inner.map(|p| p.trim_start_matches('$')).unwrap_or_default());
                AppError::at_path(path.clone(), format!("{path}: {message}"))
            }
        }
    }

    /// Where refusals of this document are placed: its file, or its path in the body.
    fn label(&self) -> String {
        match &self.source {
            Source::File { file, .. } => file.clone(),
            Source::Flag(field) => format!("--{}", field.name),
            Source::Body(prefix) => format!("{prefix}.{}", self.input),
        }
    }
}

/// One impact analysis.
#[derive(Clone, Debug)]
pub struct DiffRequest {
    /// The pack before the change.
    pub old_pack: Pack,
    /// The pack after it (the same pack when only the inputs change).
    pub new_pack: Pack,
    /// Inputs of both sides: documents, or values that fix an input.
    pub inputs: Vec<Given>,
    /// Documents that replace the static input of the same name on the new side.
    pub against: Vec<Given>,
    /// Values examined: a dynamic input given several times is examined at
    /// each; a static one is a document of both sides.
    pub set: Vec<Given>,
    /// The decision compared; needed when the packs have more than one.
    pub decision: Option<String>,
    pub over: DiffOver,
}

/// What the two sides are examined over.
#[derive(Clone, Debug)]
pub enum DiffOver {
    /// `[from, to)`; `from` defaults to `at` (else the clock) and `to` to
    /// [`DEFAULT_PERIOD_DAYS`] after `from`.
    Period { from: Option<String>, to: Option<String>, at: Option<String> },
    /// The cases of a rule-test file, each one key at one instant.
    Cases(Vec<DiffCase>),
}

/// A rule-test case as the diff examines it.
#[derive(Clone, Debug)]
pub struct DiffCase {
    pub name: String,
    /// The instant (RFC 3339); the clock when absent.
    pub at: Option<String>,
    /// The case's decision, if it names one.
    pub decision: Option<String>,
    /// The case's inputs (its file's and its own), by name; the request's
    /// inputs, `against` documents and values given replace them.
    pub inputs: Map<String, Json>,
}

/// The old or the new side of a diff.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Side {
    Old,
    New,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Old => "old",
            Side::New => "new",
        }
    }
}

pub fn diff(packs: &PackSource, request: &DiffRequest) -> Result<DiffReport, AppError> {
    check_names(request)?;
    screen(packs, request)?;
    let decision = compared_decision(request, None)?;
    let changes = match &request.over {
        DiffOver::Period { from, to, at } => {
            let period = Period::resolve(from.as_deref(), to.as_deref(), at.as_deref())?;
            over_period(request, &decision, period)?
        }
        DiffOver::Cases(cases) => over_cases(request, &decision, cases)?,
    };
    Ok(DiffReport { change_count: changes.len(), changes })
}

/// Every name given is an input of at least one pack; `against` names static inputs only.
fn check_names(request: &DiffRequest) -> Result<(), AppError> {
    // Both packs' inputs, each name once (the old pack's declaration first).
    let mut declared: Vec<InputInfo> = Vec::new();
    for info in request.old_pack.inputs().into_iter().chain(request.new_pack.inputs()) {
        if !declared.iter().any(|d| d.name == info.name) {
            declared.push(info);
        }
    }
    let find = |name: &str| declared.iter().find(|i| i.name == name);
    for given in request.inputs.iter().chain(&request.against).chain(&request.set) {
        let Some(info) = find(&given.input) else {
            let names: Vec<&str> = declared.iter().map(|i| i.name.as_str()).collect();
            let hint = crate::evaluation::did_you_mean(&given.input, names.iter().copied());
            return Err(given.error(None, &format!("the packs have no input `{}`{hint}; their inputs are: {}", given.input, names.join(", "))));
        };
        if given.input == CLOCK && !info.is_static {
            return Err(given.error(None, "`now` is the instant examined: give the period (from, to) instead"));
        }
    }
    for given in &request.against {
        if find(&given.input).is_some_and(|i| !i.is_static) {
            return Err(given
                .error(None, "only static inputs (documents such as the policy) can differ between the sides; give per-decision inputs as values to examine"));
        }
    }
    Ok(())
}

/// Documents are public documents: screened as `cavra eval` and the API screen theirs.
fn screen(packs: &PackSource, request: &DiffRequest) -> Result<(), AppError> {
    let documents: Vec<&Given> =
        request.inputs.iter().chain(&request.against).chain(&request.set).filter(|g| g.value.is_object() || g.value.is_array()).collect();
    if documents.is_empty() {
        return Ok(());
    }
    let screen = Screen::load(packs)?;
    let mut refusals: Vec<Refusal> = Vec::new();
    for given in documents {
        refusals.extend(screen.refusals(&given.value)?.iter().map(|r| r.located(&given.label())));
    }
    if refusals.is_empty() {
        Ok(())
    } else {
        Err(AppError::NotPublicSafe { head: "the input documents are not public-safe; nothing was compared".into(), refusals })
    }
}

/// The decision both packs are compared on: the one asked for (a case's,
/// else the request's), else the packs' only one.
fn compared_decision(request: &DiffRequest, case: Option<&str>) -> Result<String, AppError> {
    let names = |pack: &Pack| -> Vec<String> { pack.decisions().iter().map(|(d, _)| d.to_string()).collect() };
    let (old, new) = (names(&request.old_pack), names(&request.new_pack));
    let field = Field::named("decision");
    match case.or(request.decision.as_deref()) {
        Some(wanted) => {
            for (side, declared) in [(Side::Old, &old), (Side::New, &new)] {
                if !declared.iter().any(|d| d == wanted) {
                    let hint = crate::evaluation::did_you_mean(wanted, declared.iter().map(String::as_str));
                    return Err(AppError::field(
                        field,
                        format!("the {} pack has no decision `{wanted}`{hint}; its decisions: {}", side.name(), declared.join(", ")),
                    ));
                }
            }
            Ok(wanted.to_string())
        }
        None => match (old.as_slice(), new.as_slice()) {
            ([only], [same]) if only == same => Ok(only.clone()),
            ([], _) | (_, []) => Err(AppError::Pack("a pack compared has no decision; `cavra diff` compares decisions".into())),
            _ => {
                let common: Vec<&String> = old.iter().filter(|d| new.contains(d)).collect();
                Err(AppError::field(
                    field,
                    format!("name the decision to compare; the packs both declare: {}", common.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(", ")),
                ))
            }
        },
    }
}

/// The period examined, in microseconds.
#[derive(Clone, Copy, Debug)]
struct Period {
    from: i64,
    to: i64,
}

impl Period {
    fn resolve(from: Option<&str>, to: Option<&str>, at: Option<&str>) -> Result<Period, AppError> {
        let instant = |field: &'static str, text: &str| parse_time(text).map_err(|e| AppError::field(Field::named(field), e));
        let from = match from {
            Some(text) => instant("from", text)?,
            None => instant("at", &clock(at)?)?,
        };
        let to = match to {
            Some(text) => instant("to", text)?,
            None => from.saturating_add(DEFAULT_PERIOD_DAYS * 86_400 * MICROS_PER_SECOND),
        };
        if to <= from {
            return Err(AppError::input(format!("{{@to}} ({}) must be after {{@from}} ({})", format_time(to), format_time(from))));
        }
        if to - from > MAX_SPAN_DAYS * 86_400 * MICROS_PER_SECOND {
            return Err(AppError::input(format!("{{@from}}/{{@to}}: at most {MAX_SPAN_DAYS} days can be compared at once")));
        }
        Ok(Period { from, to })
    }
}

/// One side's pack and documents: the request's inputs, with `against`
/// replacing them on the new side (and values given for static inputs).
fn side_documents(request: &DiffRequest, side: Side) -> Vec<&Given> {
    let pack = side_pack(request, side);
    let statics: Vec<String> = pack.inputs().into_iter().filter(|i| i.is_static).map(|i| i.name).collect();
    let mut chosen: Vec<&Given> = Vec::new();
    let replacing = if side == Side::New { request.against.as_slice() } else { &[] };
    let given = request.inputs.iter().chain(request.set.iter().filter(|g| statics.contains(&g.input))).chain(replacing);
    for g in given {
        chosen.retain(|c| c.input != g.input || !statics.contains(&g.input));
        chosen.push(g);
    }
    chosen
}

fn side_pack(request: &DiffRequest, side: Side) -> &Pack {
    match side {
        Side::Old => &request.old_pack,
        Side::New => &request.new_pack,
    }
}

/// A side bound to its static documents; errors name the document at fault.
fn bind_side(pack: &Pack, documents: &[&Given], options: BindOptions) -> Result<Program, AppError> {
    let statics: HashMap<String, Json> =
        documents.iter().filter(|g| pack.inputs().iter().any(|i| i.name == g.input && i.is_static)).map(|g| (g.input.clone(), g.value.clone())).collect();
    pack.bind_with(&statics, options).map_err(|e| match e {
        cavra_engine::BindError::Input { input, source } => match documents.iter().rev().find(|g| g.input == input) {
            Some(given) => given.error(Some(&source.path), &source.message),
            None => AppError::input(format!("input `{input}`: {}: {}", source.path, source.message)),
        },
        cavra_engine::BindError::Missing(input) => {
            AppError::input(format!("the pack `{}` needs the static input `{input}`: give it as an input document", pack.name()))
        }
        other => AppError::input(other.to_string()),
    })
}

/// A dynamic input examined at several values, and each value as each side's pack reads it.
struct Examined {
    name: String,
    /// The values, as the key shows them.
    values: Vec<Json>,
    /// Per side: each value converted for that side's pack (`None`: the side has no such input).
    converted: [Option<Vec<Value>>; 2],
}

/// The dynamic inputs examined and their values, in the order a key shows
/// them; and the dynamic inputs fixed by a document, per side.
fn examined_inputs(request: &DiffRequest, documents: [&[&Given]; 2]) -> Result<Vec<Examined>, AppError> {
    let packs = [&request.old_pack, &request.new_pack];
    let mut declared: Vec<InputInfo> = Vec::new();
    for pack in packs {
        for info in pack.inputs() {
            if !info.is_static && info.name != CLOCK && !declared.iter().any(|d| d.name == info.name) {
                declared.push(info);
            }
        }
    }
    // Keys first, in their order; then the others as the packs declare them.
    declared.sort_by_key(|i| KEY_INPUTS.iter().position(|k| *k == i.name).unwrap_or(KEY_INPUTS.len()));
    let fixed: BTreeSet<&str> = request.inputs.iter().map(|g| g.input.as_str()).collect();
    let mut named = NamedKeys::default();
    let mut reads_policy = false;
    for side in documents {
        for given in side.iter().filter(|g| g.input == POLICY) {
            named.add(&given.value);
            reads_policy = true;
        }
    }
    let compared: Vec<(String, Vec<Value>)> = packs.iter().flat_map(|p| p.compared_constants()).collect();
    let mut examined = Vec::new();
    for info in declared {
        if fixed.contains(info.name.as_str()) {
            continue;
        }
        let set: Vec<&Given> = request.set.iter().filter(|g| g.input == info.name).collect();
        let values: Vec<Json> = if !set.is_empty() {
            set.iter().map(|g| g.value.clone()).collect()
        } else if reads_policy && KEY_INPUTS.contains(&info.name.as_str()) {
            let names = match info.name.as_str() {
                "owner" => &named.owners,
                "provider" => &named.providers,
                _ => &named.schedule_ids,
            };
            let values: Vec<Json> = names.iter().map(|n| Json::String(n.clone())).collect();
            if values.is_empty() {
                vec![Json::String(ANY_OTHER.into())]
            } else {
                values
            }
        } else {
            let constants = compared.iter().filter(|(n, _)| *n == info.name).flat_map(|(_, v)| v.iter().map(Value::to_json));
            probe_values(&info, constants.collect())?
        };
        let mut converted: [Option<Vec<Value>>; 2] = [None, None];
        for (i, pack) in packs.iter().enumerate() {
            if !pack.inputs().iter().any(|d| d.name == info.name) {
                continue;
            }
            let mut side = Vec::with_capacity(values.len());
            for (value, given) in values.iter().zip(set.iter().map(Some).chain(std::iter::repeat(None))) {
                side.push(pack.input_value(&info.name, value).map_err(|e| match (given, e) {
                    (Some(given), cavra_engine::BindError::Input { source, .. }) => given.error(Some(&source.path), &source.message),
                    (_, e) => AppError::input(format!("`{}` = {}: {e}", info.name, crate::error::shown(value))),
                })?);
            }
            converted[i] = Some(side);
        }
        examined.push(Examined { name: info.name, values, converted });
    }
    Ok(examined)
}

/// The values an input not given is examined at: the constants the packs
/// compare it with, plus null (optional) or [`ANY_OTHER`] (required text);
/// both booleans. A required input of another type must be given.
fn probe_values(info: &InputInfo, constants: Vec<Json>) -> Result<Vec<Json>, AppError> {
    let optional = info.ty.ends_with('?');
    let base = info.ty.trim_end_matches('?');
    let mut values: Vec<Json> = Vec::new();
    for c in constants {
        if !values.contains(&c) {
            values.push(c);
        }
    }
    match base {
        "bool" => values = vec![Json::Bool(false), Json::Bool(true)],
        "number" => values = number_probes(&values),
        "text" if !optional && !values.contains(&Json::String(ANY_OTHER.into())) => values.push(Json::String(ANY_OTHER.into())),
        "text" => {}
        _ if optional => values.clear(),
        _ => {}
    }
    if optional {
        values.push(Json::Null);
    }
    if values.is_empty() {
        return Err(AppError::field(
            Field::named("set"),
            format!("the input `{}` ({}) has no values to examine: give one or more with {{@set}} {}=VALUE", info.name, info.ty, info.name),
        ));
    }
    Ok(values)
}

/// The numbers a number input is examined at: each constant the packs
/// compare it with, a number between each two neighbours, and one below
/// and one above them all, so that every side of every comparison
/// (`<`, `<=`, `==`, ...) is examined.
fn number_probes(constants: &[Json]) -> Vec<Json> {
    let mut numbers: Vec<f64> = constants.iter().filter_map(Json::as_f64).collect();
    numbers.sort_by(f64::total_cmp);
    numbers.dedup();
    let (Some(&lowest), Some(&highest)) = (numbers.first(), numbers.last()) else { return Vec::new() };
    let mut probes = vec![lowest - 1.0];
    for (i, &n) in numbers.iter().enumerate() {
        probes.push(n);
        match numbers.get(i + 1) {
            Some(&next) => probes.push((n + next) / 2.0),
            None => probes.push(highest + 1.0),
        }
    }
    probes.into_iter().filter_map(|n| serde_json::Number::from_f64(n).map(|n| Json::Number(number_shown(n)))).collect()
}

/// A whole number as an integer (`3`, not `3.0`), as the engine prints numbers.
fn number_shown(n: serde_json::Number) -> serde_json::Number {
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => serde_json::Number::from(f as i64),
        _ => n,
    }
}

/// Every instant in `[from, to]` at which either side's decision can change.
fn instants(period: Period, documents: [&[&Given]; 2], packs: [&Pack; 2]) -> Vec<i64> {
    let mut found = BTreeSet::from([period.from, period.to]);
    if !packs.iter().any(|p| p.inputs().iter().any(|i| i.name == CLOCK && !i.is_static)) {
        return found.into_iter().collect();
    }
    for side in documents {
        for given in side {
            document_instants(&given.value, period.from, period.to, &mut found);
        }
    }
    found.extend(packs.iter().flat_map(|p| p.time_constants()).filter(|t| (period.from..=period.to).contains(t)));
    // `now <= t` and `now > t` change one microsecond after `t`.
    let later: Vec<i64> = found.iter().map(|t| t.saturating_add(1)).filter(|t| *t < period.to).collect();
    found.extend(later);
    found.into_iter().collect()
}

/// A side ready to decide: its program, the decision, and inputs with the documents set.
struct Decider {
    program: Program,
    inputs: Inputs,
    clock: Option<cavra_engine::InputSlot>,
}

impl Decider {
    fn new(program: Program, documents: &[&Given]) -> Result<Decider, AppError> {
        let mut inputs = program.inputs();
        for given in documents {
            if program.input_slot(&given.input).is_some() {
                program.set_input(&mut inputs, &given.input, &given.value).map_err(|e| match e {
                    cavra_engine::BindError::Input { source, .. } => given.error(Some(&source.path), &source.message),
                    other => given.error(None, &other.to_string()),
                })?;
            }
        }
        let clock = program.clock_slot();
        Ok(Decider { program, inputs, clock })
    }

    fn decide(&mut self, decision: &str, now: i64) -> DecidedOutcome {
        if let Some(slot) = self.clock {
            self.inputs.set(slot, Value::Time(now));
        }
        outcome_of(&self.program, decision, &self.inputs)
    }
}

/// A decision as compared; a decision that fails is an outcome too
/// (`error`, with the message), so a pack that starts failing is a change.
fn outcome_of(program: &Program, decision: &str, inputs: &Inputs) -> DecidedOutcome {
    match program.decide(decision, inputs) {
        Ok(o) => DecidedOutcome { action: o.action.to_string(), category: o.category.to_string(), reason: o.reason().map(|r| r.to_string()) },
        Err(e) => failed(program.render_error(&e)),
    }
}

fn failed(message: String) -> DecidedOutcome {
    DecidedOutcome { action: "error".into(), category: "error".into(), reason: Some(message) }
}

fn over_period(request: &DiffRequest, decision: &str, period: Period) -> Result<Vec<DecisionChange>, AppError> {
    let (old_documents, new_documents) = (side_documents(request, Side::Old), side_documents(request, Side::New));
    let documents = [old_documents.as_slice(), new_documents.as_slice()];
    let examined = examined_inputs(request, documents)?;
    let cuts = instants(period, documents, [&request.old_pack, &request.new_pack]);
    let keys = examined.iter().try_fold(1usize, |n, e| n.checked_mul(e.values.len())).unwrap_or(usize::MAX);
    let decisions = keys.saturating_mul(cuts.len().saturating_sub(1));
    if decisions > MAX_DECISIONS {
        return Err(AppError::input(format!(
            "{keys} keys x {} intervals would be {decisions} decisions per side, over the limit of {MAX_DECISIONS}: shorten the period ({{@from}}, {{@to}}) or fix inputs with {{@set}}",
            cuts.len() - 1
        )));
    }
    let options = BindOptions::around(period.from, period.to);
    let mut sides = [
        Decider::new(bind_side(&request.old_pack, documents[0], options)?, documents[0])?,
        Decider::new(bind_side(&request.new_pack, documents[1], options)?, documents[1])?,
    ];
    // Each examined input's slot in each side's program, looked up once.
    let slots: Vec<[Option<cavra_engine::InputSlot>; 2]> =
        examined.iter().map(|input| [0, 1].map(|side| sides[side].program.input_slot(&input.name))).collect();
    let mut changes = Vec::new();
    let mut choice = vec![0usize; examined.len()];
    for _ in 0..keys {
        for (side, decider) in sides.iter_mut().enumerate() {
            for ((input, slots), &index) in examined.iter().zip(&slots).zip(&choice) {
                if let (Some(values), Some(slot)) = (&input.converted[side], slots[side]) {
                    decider.inputs.set(slot, values[index].clone());
                }
            }
        }
        let key = Ordered(examined.iter().zip(&choice).map(|(e, &i)| (e.name.clone(), e.values[i].clone())).collect());
        changes.extend(key_changes(&mut sides, decision, &cuts, key));
        // The next key: the last input's values turn fastest, so keys come out sorted.
        for (position, input) in examined.iter().enumerate().rev() {
            choice[position] += 1;
            if choice[position] < input.values.len() {
                break;
            }
            choice[position] = 0;
        }
    }
    Ok(changes)
}

/// One key's changes: both sides decided at the start of each elementary
/// interval, neighbours with the same pair of outcomes merged.
fn key_changes(sides: &mut [Decider; 2], decision: &str, cuts: &[i64], key: Ordered<Json>) -> Vec<DecisionChange> {
    let mut found: Vec<(i64, i64, DecidedOutcome, DecidedOutcome)> = Vec::new();
    for pair in cuts.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        let old = sides[0].decide(decision, start);
        let new = sides[1].decide(decision, start);
        if old == new {
            continue;
        }
        match found.last_mut() {
            Some(last) if last.1 == start && last.2 == old && last.3 == new => last.1 = end,
            _ => found.push((start, end, old, new)),
        }
    }
    found.into_iter().map(|(from, to, old, new)| DecisionChange { key: key.clone(), from: format_time(from), to: format_time(to), old, new }).collect()
}

fn over_cases(request: &DiffRequest, default_decision: &str, cases: &[DiffCase]) -> Result<Vec<DecisionChange>, AppError> {
    let mut fixed: HashMap<&str, &Given> = HashMap::new();
    for given in &request.set {
        if let Some(first) = fixed.insert(given.input.as_str(), given) {
            if first.value != given.value {
                return Err(given.error(None, "a rule-test case is decided once: give one value per input"));
            }
        }
    }
    let mut bound: HashMap<(Side, String), Result<Program, String>> = HashMap::new();
    let mut changes = Vec::new();
    for case in cases {
        let decision = match &case.decision {
            Some(own) => compared_decision(request, Some(own))?,
            None => default_decision.to_string(),
        };
        let at = clock(case.at.as_deref()).map_err(|e| AppError::input(format!("case {:?}: {e}", case.name)))?;
        let now = parse_time(&at).map_err(|e| AppError::input(format!("case {:?}: {e}", case.name)))?;
        let mut outcomes = Vec::with_capacity(2);
        for side in [Side::Old, Side::New] {
            let pack = side_pack(request, side);
            let mut values = case.inputs.clone();
            for given in side_documents(request, side).into_iter().chain(fixed.values().copied()) {
                values.insert(given.input.clone(), given.value.clone());
            }
            outcomes.push(case_outcome(pack, &values, &decision, now, side, &mut bound));
        }
        let (new, old) = (outcomes.pop(), outcomes.pop());
        if let (Some(old), Some(new)) = (old, new) {
            if old != new {
                let mut key = vec![("case".to_string(), Json::String(case.name.clone()))];
                key.extend(case.inputs.iter().filter(|(_, v)| !v.is_object() && !v.is_array()).map(|(k, v)| (k.clone(), v.clone())));
                changes.push(DecisionChange { key: Ordered(key), from: at.clone(), to: at, old, new });
            }
        }
    }
    Ok(changes)
}

/// One side's outcome for a case: bound to the case's static documents
/// (once per distinct set of them) and decided at its instant. A case
/// whose inputs the pack refuses is an `error` outcome, as in `cavra test`.
fn case_outcome(
    pack: &Pack,
    values: &Map<String, Json>,
    decision: &str,
    now: i64,
    side: Side,
    bound: &mut HashMap<(Side, String), Result<Program, String>>,
) -> DecidedOutcome {
    let declared = pack.inputs();
    let statics: HashMap<String, Json> =
        values.iter().filter(|(name, _)| declared.iter().any(|i| &i.name == *name && i.is_static)).map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut names: Vec<&String> = statics.keys().collect();
    names.sort();
    let key = names.iter().map(|n| format!("{n}={}", crate::hash::content_hash(&statics[*n]))).collect::<Vec<_>>().join(";");
    let bound = bound.entry((side, key)).or_insert_with(|| pack.bind_with(&statics, BindOptions::around(now, now)).map_err(|e| e.to_string()));
    let program = match bound {
        Ok(program) => program,
        Err(message) => return failed(message.clone()),
    };
    let mut inputs = program.inputs();
    for (name, value) in values.iter().filter(|(name, _)| declared.iter().any(|i| &i.name == *name && !i.is_static)) {
        if let Err(e) = program.set_input(&mut inputs, name, value) {
            return failed(e.to_string());
        }
    }
    if let Some(slot) = program.clock_slot() {
        inputs.set(slot, Value::Time(now));
    }
    outcome_of(program, decision, &inputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pack(source: &str) -> Pack {
        cavra_engine::compile("test.cavra", source).expect("the pack checks")
    }

    const WINDOWS: &str = r#"
pack windows
type Window { start_at: time, end_at: time, owners: list<text> = [], reason: text }
type Policy { maintenance_windows: list<Window> = [] }
static input policy: Policy
input now: time
input owner: text
input status: text
let window = first w in policy.maintenance_windows where w.start_at <= now < w.end_at and (w.owners is empty or owner in w.owners)
decision route {
  when status == "healthy" => suppress healthy
  when window exists => suppress maintenance_window reason window.reason
  otherwise => deliver reason "notify {owner}"
}
"#;

    fn policy(end: &str) -> Json {
        json!({"maintenance_windows": [{"start_at": "2026-05-21T18:00:00Z", "end_at": end, "owners": ["ops"], "reason": "freeze"}]})
    }

    fn request(old: Json, new: Json) -> DiffRequest {
        let given = |value: Json| Given { input: "policy".into(), value, source: Source::Body("$.inputs") };
        DiffRequest {
            old_pack: pack(WINDOWS),
            new_pack: pack(WINDOWS),
            inputs: vec![given(old)],
            against: vec![Given { source: Source::Body("$.against"), ..given(new) }],
            set: Vec::new(),
            decision: None,
            over: DiffOver::Period { from: Some("2026-05-21T00:00:00Z".into()), to: Some("2026-05-22T00:00:00Z".into()), at: None },
        }
    }

    #[test]
    fn a_window_ending_an_hour_later_changes_exactly_that_hour() {
        let report = diff(&PackSource::Bundled, &request(policy("2026-05-21T20:00:00Z"), policy("2026-05-21T21:00:00Z"))).expect("diffs");
        assert_eq!(report.change_count, 1, "{report:?}");
        let change = &report.changes[0];
        assert_eq!(serde_json::to_value(&change.key).expect("JSON"), json!({"owner": "ops", "status": "*"}));
        assert_eq!((change.from.as_str(), change.to.as_str()), ("2026-05-21T20:00:00Z", "2026-05-21T21:00:00Z"));
        assert_eq!((change.old.action.as_str(), change.new.action.as_str()), ("deliver", "suppress"));
        assert_eq!(change.new.reason.as_deref(), Some("freeze"));
    }

    #[test]
    fn the_same_inputs_change_nothing() {
        let same = policy("2026-05-21T20:00:00Z");
        let report = diff(&PackSource::Bundled, &request(same.clone(), same)).expect("diffs");
        assert_eq!(report.change_count, 0);
    }

    #[test]
    fn a_bad_document_is_named_by_its_path_in_the_body() {
        let e = diff(&PackSource::Bundled, &request(policy("2026-05-21T20:00:00Z"), policy("tomorrow"))).expect_err("refused");
        match e {
            AppError::Input { path: Some(path), message, .. } => {
                assert_eq!(path, "$.against.policy.maintenance_windows[0].end_at");
                assert!(message.contains("tomorrow"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn numbers_are_examined_on_every_side_of_each_constant() {
        let probes = number_probes(&[json!(3), json!(2.5), json!(3)]);
        assert_eq!(probes, vec![json!(1.5), json!(2.5), json!(2.75), json!(3), json!(4)]);
        assert!(number_probes(&[]).is_empty());
    }

    #[test]
    fn too_many_decisions_are_refused_before_any_is_made() {
        let mut r = request(policy("2026-05-21T20:00:00Z"), policy("2026-05-21T21:00:00Z"));
        r.set = (0..200_000).map(|i| Given { input: "owner".into(), value: json!(format!("o{i}")), source: Source::Body("$.set") }).collect();
        let e = diff(&PackSource::Bundled, &r).expect_err("refused");
        assert!(e.to_string().contains("over the limit"), "{e}");
    }
}
