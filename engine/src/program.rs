//! The public face of the engine: a checked [`Pack`], bound into an
//! immutable [`Program`] that decides, explains and evaluates readiness gates.

use crate::check::Checked;
use crate::compile::{compile as compile_ir, Compiled};
use crate::convert::{convert, InputError};
use crate::eval::{eval, truth, Env, EvalError, Frame, TextMemo, Val};
use crate::ir::*;
use crate::modules::{check_file, file_at, CheckedFile, ModuleResolver, NoModules, SourceFile};
use crate::outcome::{matching_arm, outcome_values, OutcomeValues, INLINE_FIELDS};
pub use crate::table::TableSize;
use crate::table::{outcome_for, ClassCache, DecisionTable, Hit, Label, Parts, TableRow};
use crate::types::Ty;
use crate::value::Value;
use cavra_grammar::ast::{FileKind, QuantKind, Span};
use cavra_grammar::diagnostic::line_col;
use cavra_grammar::Diagnostics;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// Parses and checks a pack given as text alone (a `use` line is an error:
/// see [`compile_with`]). Errors (and any warnings) come back as
/// [`Diagnostics`]; a pack with errors can never be bound ("fail closed").
pub fn compile(file: &str, source: &str) -> Result<Pack, Diagnostics> {
    compile_with(file, source, &NoModules)
}

/// Parses and checks a pack or a module, reading the modules its `use` lines
/// name through `modules`.
pub fn compile_with(file: &str, source: &str, modules: &dyn ModuleResolver) -> Result<Pack, Diagnostics> {
    with_large_stack(|| compile_here(file, source, modules))
}

/// Checking and compiling recurse over the syntax tree, whose depth the
/// parser and checker bound. Optimised builds stay well within a 2 MiB thread
/// at those bounds (tests/depth.rs); unoptimised builds use frames ten times
/// larger, so there the work runs on a thread with a large stack.
fn with_large_stack<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    const STACK: usize = 64 * 1024 * 1024;
    if !cfg!(debug_assertions) {
        return work();
    }
    let work = std::sync::Mutex::new(Some(work));
    let run = || work.lock().ok().and_then(|mut w| w.take()).map(|w| w());
    let on_thread = std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new().stack_size(STACK).spawn_scoped(scope, run);
        spawned.ok().map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    });
    // No thread could be started: run here rather than fail.
    match on_thread.flatten() {
        Some(result) => result,
        None => run().expect("the work runs exactly once"),
    }
}

fn compile_here(file: &str, source: &str, modules: &dyn ModuleResolver) -> Result<Pack, Diagnostics> {
    let ast = cavra_grammar::parse(file, source)?;
    let CheckedFile { ast, source: joined, files, checked, diagnostics, .. } = check_file(file, source, ast, modules, false);
    match checked {
        Some(checked) if !diagnostics.has_errors() => Ok(Pack {
            name: ast.name.name,
            name_span: ast.name.span,
            kind: ast.kind,
            file: Arc::from(file),
            source: Arc::from(joined),
            files: Arc::from(files),
            checked,
            warnings: diagnostics,
        }),
        _ => Err(diagnostics),
    }
}

/// A checked pack, ready to be bound to its static inputs.
#[derive(Clone, Debug)]
pub struct Pack {
    name: String,
    /// Where `pack NAME` names it.
    name_span: Span,
    /// A pack, or a module (checked, never run: it has no decisions).
    kind: FileKind,
    file: Arc<str>,
    /// The pack's text, then that of each module it imports ([`Pack::files`]).
    source: Arc<str>,
    files: Arc<[SourceFile]>,
    checked: Checked,
    warnings: Diagnostics,
}

/// Why binding static inputs failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BindError {
    #[error("the static input `{0}` was not given")]
    Missing(String),
    #[error("input `{input}` {source}")]
    Input {
        input: String,
        #[source]
        source: InputError,
    },
    #[error("the pack has no input `{0}`")]
    Unknown(String),
}

/// A declared input, for help texts and tools.
#[derive(Clone, Debug, Serialize)]
pub struct InputInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub is_static: bool,
}

impl Pack {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn file(&self) -> &str {
        &self.file
    }
    /// Warnings found while checking (unused lets, unreachable arms, ...).
    pub fn warnings(&self) -> &Diagnostics {
        &self.warnings
    }
    pub fn inputs(&self) -> Vec<InputInfo> {
        self.checked
            .inputs
            .iter()
            .map(|i| InputInfo { name: i.name.clone(), ty: i.ty.display(&self.checked.schema).to_string(), is_static: i.is_static })
            .collect()
    }
    pub fn decisions(&self) -> Vec<(&str, Vec<&str>)> {
        self.checked.decisions.iter().map(|d| (&*d.name, d.arms.iter().chain(std::iter::once(&d.otherwise)).map(|a| &*a.id).collect())).collect()
    }
    /// The pack's text, as compiled.
    /// The pack's text, then that of each module it imports: spans index it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the file is a module (`module NAME`): commands list and run packs only.
    pub fn is_module(&self) -> bool {
        self.kind == FileKind::Module
    }

    /// The pack's file (first) and each module it imports, with where its text starts in [`Pack::source`].
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// The file, 1-based line and column of a span's start.
    pub fn locate(&self, span: Span) -> (&str, usize, usize) {
        match file_at(&self.files, span.start) {
            Some((f, offset)) => {
                let (line, column) = line_col(self.source.get(f.start..f.start + f.len).unwrap_or(""), offset);
                (&f.name, line, column)
            }
            None => (&self.file, 1, 1),
        }
    }
    /// Where `pack NAME` names the pack: where a diagnostic about the pack as a whole points.
    pub fn name_span(&self) -> Span {
        self.name_span
    }
    /// Where input `name` is declared.
    pub fn input_span(&self, name: &str) -> Option<Span> {
        self.checked.inputs.iter().find(|i| i.name == name).map(|i| i.span)
    }
    /// Where decision `name` is declared.
    pub fn decision_span(&self, name: &str) -> Option<Span> {
        self.checked.decisions.iter().find(|d| &*d.name == name).map(|d| d.span)
    }
    /// Every `with` field the arms of decision `name` give, with where its value is written.
    pub fn with_fields(&self, name: &str) -> Option<Vec<(&str, Span)>> {
        let decision = self.checked.decisions.iter().find(|d| &*d.name == name)?;
        let arms = decision.arms.iter().chain(std::iter::once(&decision.otherwise));
        Some(arms.flat_map(|arm| arm.outcome.fields.iter().map(|(field, node)| (&**field, node.span))).collect())
    }
    /// Readiness gates and their checks (without the informational requested check).
    pub fn gates(&self) -> Vec<(&str, Vec<&str>)> {
        self.checked.gates.iter().map(|g| (&*g.name, g.checks.iter().map(|c| &*c.id).collect())).collect()
    }

    /// Each dynamic input with the constants the pack compares it with
    /// (`==`, `!=`, ordering, `in [...]`), in declaration order: the values
    /// at which a decision can tell one text or number from another.
    pub fn compared_constants(&self) -> Vec<(String, Vec<Value>)> {
        let probes = crate::probes::Probes::of(&self.checked);
        self.checked.inputs.iter().zip(probes.compared).filter(|(i, _)| !i.is_static).map(|(i, values)| (i.name.clone(), values)).collect()
    }

    /// Every time constant the pack writes (`@2026-05-21T18:00:00Z`), in
    /// microseconds: instants at which a decision comparing the clock with
    /// them can change.
    pub fn time_constants(&self) -> Vec<i64> {
        crate::probes::Probes::of(&self.checked).times
    }

    /// Converts one JSON document to the declared type of input `name`.
    pub fn input_value(&self, name: &str, json: &serde_json::Value) -> Result<Value, BindError> {
        let def = self.checked.inputs.iter().find(|i| i.name == name).ok_or_else(|| BindError::Unknown(name.to_string()))?;
        convert(json, &def.ty, &self.checked.schema).map_err(|source| BindError::Input { input: name.to_string(), source })
    }

    /// Binds the static inputs (by name; other names are ignored) and compiles
    /// the program. Load once, decide many times.
    pub fn bind(&self, documents: &HashMap<String, serde_json::Value>) -> Result<Program, BindError> {
        self.bind_with(documents, BindOptions::default())
    }

    /// [`Pack::bind`] with compiler options.
    pub fn bind_with(&self, documents: &HashMap<String, serde_json::Value>, options: BindOptions) -> Result<Program, BindError> {
        let mut statics = vec![None; self.checked.inputs.len()];
        for (slot, def) in self.checked.inputs.iter().enumerate() {
            if !def.is_static {
                continue;
            }
            statics[slot] = Some(match documents.get(&def.name) {
                Some(doc) => self.input_value(&def.name, doc)?,
                None if def.ty.is_optional() => Value::Null,
                None => return Err(BindError::Missing(def.name.clone())),
            });
        }
        let pinned = options.clock.and_then(|t| {
            let slot = self.checked.inputs.iter().position(|i| i.name == "now" && !i.is_static && i.ty.base() == &Ty::Time)?;
            statics[slot] = Some(Value::Time(t));
            Some(slot)
        });
        let horizon = options.recurrence_horizon.unwrap_or_else(default_horizon);
        let index = options.index_scans.then_some(horizon);
        let Compiled { lets, decisions, gates } = with_large_stack(|| compile_ir(&self.checked, &statics, index));
        let let_inputs = let_inputs(&lets, &self.checked.let_order);
        let outcome_keys = outcome_keys(&decisions, &let_inputs);
        let readers = readers(&let_inputs, self.checked.inputs.len());
        let required = self
            .checked
            .inputs
            .iter()
            .enumerate()
            .filter(|(i, d)| !d.is_static && !d.ty.is_optional() && !matches!(d.ty, Ty::Any) && pinned != Some(*i))
            .map(|(i, _)| i as u32)
            .collect();
        let mut program = Program {
            pack: self.clone(),
            lets,
            decisions,
            gates,
            required,
            reader_bits: readers.iter().map(|lets| lets.iter().fold(0, |bits, &i| bits | 1 << i.min(63))).collect(),
            readers,
            outcome_keys,
            slot_count: self.checked.lets.len() + self.checked.local_count as usize,
            tables: Vec::new(),
            table_keys: Vec::new(),
            horizon,
        };
        if options.decision_tables {
            let tables: Vec<_> = (0..program.decisions.len()).map(|number| DecisionTable::build(&program.parts(number), &self.checked.inputs)).collect();
            let mut table_keys = vec![Vec::new(); self.checked.inputs.len()];
            for (number, table) in tables.iter().enumerate() {
                for (position, slot) in table.iter().flat_map(DecisionTable::key_slots).enumerate() {
                    if let Some(keys) = table_keys.get_mut(slot as usize) {
                        keys.push((number as u32, position as u32));
                    }
                }
            }
            program.tables = tables;
            program.table_keys = table_keys;
        }
        Ok(program)
    }
}

/// Compiler options for [`Pack::bind_with`].
#[derive(Clone, Copy, Debug)]
pub struct BindOptions {
    /// Turn scans over static lists into index lookups (on by default; off
    /// only to compare results or measure the gain).
    pub index_scans: bool,
    /// Evaluate each decision that qualifies ahead into a decision table
    /// (see `table.rs`; on by default; off only to compare results or
    /// measure the gain). Results are the same either way.
    pub decision_tables: bool,
    /// `[from, to)` (microseconds since the epoch): the horizon in which
    /// indexes expand recurring windows and decision tables answer;
    /// decisions outside it evaluate in full instead (same results, slower).
    /// Default: from 30 days before the bind to [`DEFAULT_HORIZON_DAYS`] after
    /// ([`BindOptions::horizon_days`]).
    pub recurrence_horizon: Option<(i64, i64)>,
    /// Pin the clock input (`input now: time`) to this instant: it becomes a
    /// constant, so window tests are decided once, at bind time (a plan
    /// routes everything at one instant). Setting `now` later has no effect.
    pub clock: Option<i64>,
}

impl Default for BindOptions {
    fn default() -> Self {
        BindOptions { index_scans: true, decision_tables: true, recurrence_horizon: None, clock: None }
    }
}

/// Days after the bind that a program's indexes and tables answer by default.
pub const DEFAULT_HORIZON_DAYS: u32 = 400;

const DAY_MICROS: i64 = 86_400 * crate::time::MICROS_PER_SECOND;

impl BindOptions {
    /// The horizon from 30 days before `bind_time` to `days` days after it:
    /// a long-running caller binds again before [`Program::horizon`] ends.
    pub fn horizon_days(bind_time: i64, days: u32) -> BindOptions {
        let to = bind_time.saturating_add(DAY_MICROS.saturating_mul(days as i64));
        BindOptions { recurrence_horizon: Some((bind_time.saturating_sub(30 * DAY_MICROS), to)), ..BindOptions::default() }
    }

    /// For decisions at one instant only: the clock is pinned to it.
    pub fn at(now: i64) -> BindOptions {
        BindOptions { clock: Some(now), ..BindOptions::around(now, now) }
    }

    /// Expand recurring windows around the instants a caller will decide at.
    pub fn around(from: i64, to: i64) -> BindOptions {
        const DAY: i64 = 86_400 * crate::time::MICROS_PER_SECOND;
        BindOptions { recurrence_horizon: Some((from.saturating_sub(DAY), to.saturating_add(DAY))), ..BindOptions::default() }
    }
}

fn default_horizon() -> (i64, i64) {
    let now = chrono::Utc::now().timestamp_micros();
    BindOptions::horizon_days(now, DEFAULT_HORIZON_DAYS).recurrence_horizon.unwrap_or((now, now))
}

/// A bound, compiled pack. Immutable and `Send + Sync`: share it between
/// threads (e.g. in an `Arc`) and swap it atomically on reload.
#[derive(Debug)]
pub struct Program {
    pack: Pack,
    lets: Vec<LetDef>,
    decisions: Vec<DecisionIr>,
    gates: Vec<GateIr>,
    /// Dynamic inputs that must be given for each decision.
    required: Vec<u32>,
    /// Per input slot: the lets that read it, directly or through earlier
    /// lets, which a session forgets when the input changes.
    readers: Vec<Vec<u32>>,
    /// Per input slot: its `readers` as bits (let `i` is bit `min(i, 63)`),
    /// to tell at once whether a session has any of them to forget.
    reader_bits: Vec<u64>,
    /// Per decision and arm: the input slots its outcome reads, when few
    /// enough to key a memo of its outcomes (see [`Session::memoize_outcomes`]).
    outcome_keys: Vec<Vec<Option<Box<[u32]>>>>,
    slot_count: usize,
    /// Per decision: its table, when it qualifies (`table.rs`).
    tables: Vec<Option<DecisionTable>>,
    /// Per input slot: the tables that have it as a key, as (decision, key
    /// position), whose class a session resolves again when the input changes.
    table_keys: Vec<Vec<(u32, u32)>>,
    /// `[from, to)`: where indexes and tables answer ([`BindOptions::recurrence_horizon`]).
    horizon: (i64, i64),
}

/// The input slots each `let` reads, directly or through earlier lets, as
/// bits (`u64::MAX` when a slot above 63 is involved).
fn let_inputs(lets: &[LetDef], order: &[u32]) -> Vec<u64> {
    let mut masks = vec![u64::MAX; lets.len()];
    for &i in order {
        masks[i as usize] = reads(&lets[i as usize].node, &masks);
    }
    masks
}

/// Per input slot: the lets whose masks (from [`let_inputs`]) include it.
fn readers(let_masks: &[u64], inputs: usize) -> Vec<Vec<u32>> {
    (0..inputs)
        .map(|slot| {
            let bit = if slot < 64 { 1u64 << slot } else { u64::MAX };
            (0..let_masks.len() as u32).filter(|&i| let_masks[i as usize] & bit != 0).collect()
        })
        .collect()
}

/// The input slots `node` reads, directly or through the lets in `let_masks`.
fn reads(node: &Node, let_masks: &[u64]) -> u64 {
    fn add(node: &Node, let_masks: &[u64], mask: &mut u64) {
        match node.kind {
            Kind::Input(slot) => *mask |= if slot < 64 { 1 << slot } else { u64::MAX },
            Kind::Let(i) => *mask |= let_masks.get(i as usize).copied().unwrap_or(u64::MAX),
            _ => {}
        }
        children(node, &mut |c| add(c, let_masks, mask));
    }
    let mut mask = 0;
    add(node, let_masks, &mut mask);
    mask
}

/// Per decision, per arm (`otherwise` last): the input slots its outcome
/// (reason and extra fields) reads, or `None` when more than [`MEMO_KEYS`]
/// (or a slot past 63) are read. See [`OutcomeMemo`].
fn outcome_keys(decisions: &[DecisionIr], let_masks: &[u64]) -> Vec<Vec<Option<Box<[u32]>>>> {
    decisions
        .iter()
        .map(|d| {
            d.arms
                .iter()
                .chain(std::iter::once(&d.otherwise))
                .map(|arm| {
                    let o = &arm.outcome;
                    let mask = o.reason.iter().chain(o.fields.iter().map(|(_, n)| n)).fold(0, |mask, n| mask | reads(n, let_masks));
                    (mask != u64::MAX && mask.count_ones() as usize <= MEMO_KEYS).then(|| (0..64).filter(|s| mask & (1 << s) != 0).collect())
                })
                .collect()
        })
        .collect()
}

/// Decides many requests that share most of their inputs, keeping each `let`
/// value, and the outcome values of each arm, until an input they depend on
/// changes. A plan that routes three providers of one owner thus looks the
/// owner's route and calendar up once, and routes of the same owner and
/// provider in many schedules build their outcome once.
/// Results are those of [`Program::decide`] on the same inputs.
pub struct Session<'p> {
    program: &'p Program,
    inputs: Inputs,
    /// `let` values first (kept between decisions), then quantifier variables.
    slots: Vec<Option<Val<'p>>>,
    /// Per decision and arm, as `Program::outcome_keys`: its recent outcome
    /// values by the inputs they read; empty unless memoising.
    outcomes: Vec<Vec<OutcomeMemo<'p>>>,
    texts: Option<TextMemo>,
    /// Per decision with a table, the class of each of its keys as last
    /// resolved (`NO_CLASS`: resolve again): a key is hashed when it is set,
    /// not at every decision (a plan sets the schedule once, the owner once
    /// per owner).
    classes: Vec<Vec<u32>>,
    /// Per input slot, when memoising: the classes [`Session::decide_each`]
    /// found for the texts it was asked for, by their address, in the first
    /// table that has the input as a key (a plan's providers: a few texts
    /// asked for again and again; keys set one at a time are hashed).
    class_caches: Vec<Option<(u32, ClassCache)>>,
    /// Lets that may hold a value, as [`Program::reader_bits`] counts them:
    /// all once an evaluation has run, less those forgotten since. A
    /// decision a table answers computes no let, so setting its inputs
    /// then has nothing to forget and skips the readers.
    maybe_filled: u64,
    /// The required inputs were all given when last checked, and none has
    /// become null since.
    given: bool,
}

/// A key class not resolved since its input was last set.
const NO_CLASS: u32 = u32::MAX;

impl<'p> Session<'p> {
    /// Makes equal interpolated texts share one allocation across this
    /// session's decisions. Worth it when many decisions repeat the same
    /// reasons (a plan over many schedules); the texts are kept until the
    /// session is dropped, a few thousand at most.
    pub fn share_texts(mut self) -> Self {
        self.texts.get_or_insert_with(TextMemo::default);
        self
    }

    /// Remembers the outcome values of each arm by the inputs they read, so
    /// that deciding again with the same values (the same owner and provider
    /// in another schedule) takes them instead of evaluating them again.
    /// Worth it when requests repeat their values; arms whose outcomes turn
    /// out not to repeat stop memoising by themselves.
    pub fn memoize_outcomes(mut self) -> Self {
        self.outcomes = self.program.outcome_keys.iter().map(|arms| arms.iter().map(|_| OutcomeMemo::default()).collect()).collect();
        self.class_caches = self.program.table_keys.iter().map(|keys| keys.first().map(|&(number, _)| (number, ClassCache::default()))).collect();
        self
    }

    /// Sets a dynamic input (its slot from [`Program::input_slot`]); lets
    /// that depend on it are recomputed on next use.
    pub fn set(&mut self, slot: InputSlot, value: Value) {
        let Some(current) = self.inputs.values.get_mut(slot.0) else { return };
        if *current == value {
            return;
        }
        if value.is_null() {
            self.given = false;
        }
        *current = value;
        let bits = self.program.reader_bits.get(slot.0).copied().unwrap_or(0);
        if bits & self.maybe_filled != 0 {
            for &i in self.program.readers.get(slot.0).map_or(&[][..], Vec::as_slice) {
                self.slots[i as usize] = None;
            }
            // Bit 63 also stands for lets this input does not reach: kept.
            self.maybe_filled &= !(bits & !(1 << 63));
        }
        for &(number, position) in self.program.table_keys.get(slot.0).map_or(&[][..], Vec::as_slice) {
            if let Some(class) = self.classes.get_mut(number as usize).and_then(|classes| classes.get_mut(position as usize)) {
                *class = NO_CLASS;
            }
        }
    }

    /// The table's answer for decision `number` on the session's inputs,
    /// from the key classes resolved since they were last set.
    #[inline]
    fn table_hit(&mut self, number: usize) -> Option<Hit<'p>> {
        let program = self.program;
        let table = program.tables.get(number)?.as_ref()?;
        let classes = self.classes.get_mut(number)?;
        for (position, class) in classes.iter_mut().enumerate() {
            if *class == NO_CLASS {
                *class = table.key_class(position, &self.inputs.values)?;
            }
        }
        table.label_at(table.cell_of(classes.iter().copied()), &self.inputs.values, || program.parts(number))
    }

    /// [`Program::decide`] on the session's inputs.
    pub fn decide(&mut self, decision: &str) -> Result<Outcome<'p>, EvalError> {
        self.decide_with(decision, |outcome| outcome.to_outcome())
    }

    /// Decides, and lends the outcome to `read` instead of copying it: a
    /// caller that decides many times and keeps only some of the values (as
    /// `cavra::routing` does) copies just those.
    #[inline]
    pub fn decide_with<R>(&mut self, decision: &str, read: impl FnOnce(OutcomeRef<'_, 'p>) -> R) -> Result<R, EvalError> {
        let program = self.program;
        let (number, d) = program.find_decision(decision)?;
        if !self.given {
            program.check_required(&self.inputs)?;
            self.given = true;
        }
        let hit = self.table_hit(number);
        let env = Env { lets: &program.lets, inputs: &self.inputs.values };
        let let_count = program.lets.len();
        if let Some(hit) = hit {
            let label = hit.label;
            if !hit.dynamic {
                return Ok(read(OutcomeRef { decision: d, arm: hit.arm, values: &label.values, program_lived: Some(&label.values), shared: None }));
            }
            // Values that repeat a key the policy never names: remembered by
            // the inputs they read, like any arm's outcome in a session.
            let frame = &mut Frame { slots: &mut self.slots, let_count, texts: self.texts.as_mut() };
            let arm = label.arm;
            let mut evaluated = false;
            let mut compute = || {
                evaluated = true;
                outcome_for(label, d, &env, frame)
            };
            let values = match (self.outcomes.get_mut(number).and_then(|arms| arms.get_mut(arm)), program.outcome_keys[number].get(arm)) {
                (Some(memo), Some(Some(keys))) => memo
                    .get_or_compute(keys, env.inputs, compute)
                    .map(|v| read(OutcomeRef { decision: d, arm, values: &v, program_lived: None, shared: Some(&v) })),
                _ => compute().map(|v| read(OutcomeRef { decision: d, arm, values: &v, program_lived: None, shared: None })),
            };
            if evaluated {
                self.maybe_filled = u64::MAX;
                self.slots[let_count..].iter_mut().for_each(|s| *s = None);
            }
            return values;
        }
        self.maybe_filled = u64::MAX;
        let frame = &mut Frame { slots: &mut self.slots, let_count, texts: self.texts.as_mut() };
        let result = matching_arm(d, &env, frame).and_then(|arm| {
            let mut compute = || outcome_values(d, arm, &env, frame);
            match (self.outcomes.get_mut(number).and_then(|arms| arms.get_mut(arm)), program.outcome_keys[number].get(arm)) {
                (Some(memo), Some(Some(keys))) => {
                    let values = memo.get_or_compute(keys, env.inputs, compute)?;
                    Ok(read(OutcomeRef { decision: d, arm, values: &values, program_lived: None, shared: Some(&values) }))
                }
                _ => Ok(read(OutcomeRef { decision: d, arm, values: &compute()?, program_lived: None, shared: None })),
            }
        });
        self.slots[let_count..].iter_mut().for_each(|s| *s = None);
        result
    }
}

impl<'p> Session<'p> {
    /// Decides `decision` once for each text in `texts` as the input `slot`
    /// (the other inputs as set) and lends each outcome to `read` with the
    /// text's index: the results of setting `slot` to each text in turn and
    /// calling [`Session::decide_with`], stopping at the first error. When
    /// `slot` is a key of the decision's table, the other keys are resolved
    /// once for all the texts, and a text's outcome costs the lookup of its
    /// class and one table cell, without setting the input: a plan asks
    /// this once per owner, for the owner's providers. Afterwards `slot` is
    /// unset (null), as before a request gives it.
    pub fn decide_each(
        &mut self,
        decision: &str,
        slot: InputSlot,
        texts: &[Arc<str>],
        mut read: impl FnMut(usize, OutcomeRef<'_, 'p>),
    ) -> Result<(), EvalError> {
        let program = self.program;
        let (number, d) = program.find_decision(decision)?;
        let row = self.table_row(number, slot);
        // Values made in full for one text that do not read `slot` (a reason
        // that names the schedule, not the provider), by the label they were
        // made from: the same for every text with that label in this call.
        let mut made: Option<(&'p Label, KeptOutcome<'p>)> = None;
        let mut result = Ok(());
        for (i, text) in texts.iter().enumerate() {
            // The outcome of this text, found without deciding in full; else
            // the label of its cell, if the table has one.
            let found = 'found: {
                let Some((table, row)) = &row else { break 'found Err(None) };
                let cache = class_cache(&mut self.class_caches, slot, number);
                let Some(hit) = table.label_in_row(row, text, cache, &self.inputs.values, || program.parts(number)) else { break 'found Err(None) };
                if !hit.dynamic {
                    let values = &hit.label.values;
                    break 'found Ok(OutcomeRef { decision: d, arm: hit.arm, values, program_lived: Some(values), shared: None });
                }
                if let Some((label, kept)) = &made {
                    if std::ptr::eq(*label, hit.label) {
                        break 'found Ok(kept.outcome());
                    }
                }
                // Values the session remembers for this text (by its
                // address, as the memo keys any text).
                let keys = program.outcome_keys[number].get(hit.arm).and_then(Option::as_deref);
                let inputs = &self.inputs.values;
                let identity = |s: u32| match s as usize == slot.0 {
                    true => Value::text_identity(text),
                    false => inputs.get(s as usize).unwrap_or(&Value::Null).identity(),
                };
                if let (Some(memo), Some(keys)) = (self.outcomes.get_mut(number).and_then(|arms| arms.get_mut(hit.arm)), keys) {
                    if let Some(values) = memo.find(keys, identity) {
                        break 'found Ok(OutcomeRef { decision: d, arm: hit.arm, values, program_lived: None, shared: Some(values) });
                    }
                }
                Err(keys.is_some_and(|keys| !keys.contains(&(slot.0 as u32))).then_some(hit.label))
            };
            // Else decided in full (and kept, so that `read` is called in one
            // place and inlined there: the common outcomes are found above).
            let alone;
            let outcome = match found {
                Ok(outcome) => outcome,
                Err(label) => {
                    self.set(slot, Value::Text(text.clone()));
                    match (self.decide_with(decision, |outcome| outcome.keep()), label) {
                        (Err(e), _) => {
                            result = Err(e);
                            break;
                        }
                        (Ok(kept), Some(label)) => made.insert((label, kept)).1.outcome(),
                        (Ok(kept), None) => {
                            alone = kept;
                            alone.outcome()
                        }
                    }
                }
            };
            read(i, outcome);
        }
        // Set only where an outcome was decided in full.
        if self.inputs.values.get(slot.0).is_some_and(|v| !v.is_null()) {
            self.set(slot, Value::Null);
        }
        result
    }

    /// For [`Session::decide_each`]: decision `number`'s table and the row
    /// of its cells that the session's inputs select with `slot` left to
    /// vary, when `slot` is one of its keys and every other required input
    /// is given.
    fn table_row(&mut self, number: usize, slot: InputSlot) -> Option<(&'p DecisionTable, TableRow)> {
        let program = self.program;
        let table = program.tables.get(number)?.as_ref()?;
        let &(_, position) = program.table_keys.get(slot.0)?.iter().find(|(n, _)| *n as usize == number)?;
        if !program.required_given(&self.inputs, Some(slot)) {
            return None;
        }
        let classes = self.classes.get_mut(number)?;
        for (at, class) in classes.iter_mut().enumerate() {
            if at != position as usize && *class == NO_CLASS {
                *class = table.key_class(at, &self.inputs.values)?;
            }
        }
        Some((table, table.row(classes, position as usize)))
    }
}

/// The session's class cache of input `slot` (`Session::class_caches`), when
/// it is kept for decision `number`'s table.
#[inline]
fn class_cache(caches: &mut [Option<(u32, ClassCache)>], slot: InputSlot, number: usize) -> Option<&mut ClassCache> {
    caches.get_mut(slot.0)?.as_mut().filter(|(table, _)| *table as usize == number).map(|(_, cache)| cache)
}

/// One decision of a program, looked up once ([`Program::decider`]).
/// Deciding through it skips the lookup by name; [`Decider::keys`] resolves
/// a request's text keys (owner, provider) once, for callers that decide the
/// same keys many times at other instants ([`Decider::decide_at_with`]).
#[derive(Clone, Copy)]
pub struct Decider<'p> {
    program: &'p Program,
    number: usize,
    decision: &'p DecisionIr,
}

/// A request's keys resolved once for one decision ([`Decider::keys`]): the
/// request itself (its inputs but the time) and, when the decision has a
/// table, the table cell its text keys select. Deciding with it at any
/// instant ([`Decider::decide_at_with`]) needs no hashing and no inputs.
#[derive(Clone, Debug)]
pub struct Keys {
    inputs: Inputs,
    cell: Option<usize>,
    /// The decision's time input (the table's, else the clock's).
    time: Option<InputSlot>,
    /// Every required input but the time is given.
    complete: bool,
}

impl<'p> Decider<'p> {
    /// [`Program::decide`] without the lookup by name.
    #[inline]
    pub fn decide(&self, inputs: &Inputs) -> Result<Outcome<'p>, EvalError> {
        self.program.decide_number(self.number, self.decision, inputs)
    }

    /// Decides and lends the outcome to `read` instead of copying it.
    #[inline]
    pub fn decide_with<R>(&self, inputs: &Inputs, read: impl FnOnce(OutcomeRef<'_, 'p>) -> R) -> Result<R, EvalError> {
        let program = self.program;
        program.check_required(inputs)?;
        let label = program.table_label(self.number, &inputs.values);
        self.read_label(label, inputs, read)
    }

    /// Resolves the keys of `inputs` (owner, provider, ...; the time input
    /// is set per decision) once, for deciding them at many instants.
    pub fn keys(&self, inputs: &Inputs) -> Keys {
        let table = self.program.tables.get(self.number).and_then(Option::as_ref);
        let time = table.and_then(DecisionTable::time_slot).map(|slot| InputSlot(slot as usize)).or_else(|| self.program.clock_slot());
        let complete = self.program.required_given(inputs, time);
        Keys { inputs: inputs.clone(), cell: table.and_then(|t| t.cell_index(&inputs.values)), time, complete }
    }

    /// Decides the request of `keys` at the instant `now` (microseconds
    /// since the epoch; ignored by a decision without a time input) and lends
    /// the outcome to `read`. Results are those of [`Program::decide`] with
    /// the time input set to `now`.
    #[inline]
    pub fn decide_at_with<R>(&self, keys: &Keys, now: i64, read: impl FnOnce(OutcomeRef<'_, 'p>) -> R) -> Result<R, EvalError> {
        let program = self.program;
        if let (Some(cell), Some(table)) = (keys.cell, program.tables.get(self.number).and_then(Option::as_ref)) {
            if let Some(hit) = table.label_in(cell, now, || program.parts(self.number)) {
                if !hit.dynamic && keys.complete {
                    return Ok(read(OutcomeRef {
                        decision: self.decision,
                        arm: hit.arm,
                        values: &hit.label.values,
                        program_lived: Some(&hit.label.values),
                        shared: None,
                    }));
                }
            }
        }
        let mut inputs = keys.inputs.clone();
        if let Some(slot) = keys.time {
            inputs.set(slot, Value::Time(now));
        }
        self.decide_with(&inputs, read)
    }

    #[inline]
    fn read_label<R>(&self, hit: Option<Hit<'p>>, inputs: &Inputs, read: impl FnOnce(OutcomeRef<'_, 'p>) -> R) -> Result<R, EvalError> {
        let (program, d) = (self.program, self.decision);
        if let Some(hit) = hit {
            let label = hit.label;
            if !hit.dynamic {
                return Ok(read(OutcomeRef { decision: d, arm: hit.arm, values: &label.values, program_lived: Some(&label.values), shared: None }));
            }
            let values = program.dynamic_values(label, d, inputs)?;
            return Ok(read(OutcomeRef { decision: d, arm: hit.arm, values: &values, program_lived: None, shared: None }));
        }
        let env = Env { lets: &program.lets, inputs: &inputs.values };
        program.with_frame(|frame| {
            let arm = matching_arm(d, &env, frame)?;
            let values = outcome_values(d, arm, &env, frame)?;
            Ok(read(OutcomeRef { decision: d, arm, values: &values, program_lived: None, shared: None }))
        })
    }
}

/// A decision's outcome as [`Session::decide_with`] lends it: the names
/// from the program, the values from wherever they were made or remembered.
#[derive(Clone, Copy)]
pub struct OutcomeRef<'o, 'p> {
    decision: &'p DecisionIr,
    arm: usize,
    values: &'o OutcomeValues<'p>,
    /// The same values when they live as long as the program (a decision
    /// table's): lent as `Cow::Borrowed` by [`OutcomeRef::reason_value`].
    program_lived: Option<&'p OutcomeValues<'static>>,
    /// The same values when a session remembers them: kept by sharing.
    shared: Option<&'o Arc<OutcomeValues<'p>>>,
}

impl<'o, 'p> OutcomeRef<'o, 'p> {
    /// The position of the arm that matched, as [`Outcome::arm_index`].
    pub fn arm_index(&self) -> usize {
        self.arm
    }
    pub fn action(&self) -> &'p str {
        &self.decision.arm(self.arm).outcome.action
    }
    pub fn category(&self) -> &'p str {
        &self.decision.arm(self.arm).outcome.category
    }
    pub fn reason(&self) -> Option<&'o Cow<'p, Value>> {
        self.values.reason.as_ref()
    }
    /// Extra field number `i`, in declaration order.
    pub fn field(&self, i: usize) -> Option<&'o Cow<'p, Value>> {
        match i.checked_sub(INLINE_FIELDS) {
            None => self.values.fields[..self.values.count].get(i),
            Some(spilled) => self.values.spill.get(spilled),
        }
    }
    /// The reason as a value to keep: borrowed from the program wherever it
    /// lives there (no reference count is touched, which matters when many
    /// threads decide on one program), else a copy.
    pub fn reason_value(&self) -> Option<Cow<'p, Value>> {
        match self.program_lived {
            Some(values) => values.reason.as_deref().map(Cow::Borrowed),
            None => self.values.reason.clone(),
        }
    }

    /// Extra field number `i` as a value to keep, like [`OutcomeRef::reason_value`].
    pub fn field_value(&self, i: usize) -> Option<Cow<'p, Value>> {
        match self.program_lived {
            Some(values) => {
                OutcomeRef { decision: self.decision, arm: self.arm, values, program_lived: None, shared: None }.field(i).map(|v| Cow::Borrowed(&**v))
            }
            None => self.field(i).cloned(),
        }
    }

    /// Extra field `name` (the arm's `with { name: ... }`), if the arm has one.
    pub fn field_named(&self, name: &str) -> Option<&'o Cow<'p, Value>> {
        self.field(self.field_position(name)?)
    }

    /// The position of extra field `name` in the arm's `with { ... }`.
    fn field_position(&self, name: &str) -> Option<usize> {
        self.decision.arm(self.arm).outcome.fields.iter().position(|(n, _)| crate::value::same_text(n, name))
    }

    /// The outcome, kept beyond this call without copying a value: a
    /// decision table's label stays borrowed from the program, values a
    /// session remembers are shared with it, and only values made for this
    /// call alone are moved into a shared allocation. A caller that keeps
    /// many outcomes (a plan's routes) holds a few pointers per outcome.
    pub fn keep(&self) -> KeptOutcome<'p> {
        let arm = self.arm as u32;
        let values = match (self.program_lived, self.shared) {
            (Some(values), _) => KeptValues::Lent(arm, values),
            (None, Some(shared)) => KeptValues::Shared(arm, shared.clone()),
            (None, None) => KeptValues::Shared(arm, Arc::new(self.values.clone())),
        };
        KeptOutcome { decision: self.decision, values }
    }

    /// The outcome, with its values copied (borrowed ones stay borrowed from the program).
    pub fn to_outcome(&self) -> Outcome<'p> {
        Outcome::new(self.decision, self.arm, Values::Made(Box::new(self.values.clone())))
    }
}

/// A decision's outcome kept beyond the call that lent it
/// ([`OutcomeRef::keep`]): the names from the program, the values borrowed
/// from the program or shared with the session that made them.
#[derive(Clone)]
pub struct KeptOutcome<'p> {
    decision: &'p DecisionIr,
    values: KeptValues<'p>,
}

/// The arm's position beside the values' address: the tag fits in the
/// position's spare bytes, so a kept outcome is three words (a plan keeps
/// one per route).
#[derive(Clone)]
enum KeptValues<'p> {
    Lent(u32, &'p OutcomeValues<'static>),
    Shared(u32, Arc<OutcomeValues<'p>>),
}

impl<'p> KeptOutcome<'p> {
    /// The outcome as it was lent (kept again, it shares the same values).
    fn outcome(&self) -> OutcomeRef<'_, 'p> {
        let (arm, values, program_lived, shared) = match &self.values {
            KeptValues::Lent(arm, values) => (*arm, *values, Some(*values), None),
            KeptValues::Shared(arm, values) => (*arm, &**values, None, Some(values)),
        };
        OutcomeRef { decision: self.decision, arm: arm as usize, values, program_lived, shared }
    }

    /// The position of the arm that matched, as [`Outcome::arm_index`].
    pub fn arm_index(&self) -> usize {
        self.outcome().arm
    }
    pub fn action(&self) -> &'p str {
        self.outcome().action()
    }
    pub fn category(&self) -> &'p str {
        self.outcome().category()
    }
    /// The reason, if the arm gives one.
    pub fn reason(&self) -> Option<&Value> {
        self.outcome().reason().map(|v| &**v)
    }
    /// Extra field `name`, if the arm has one.
    pub fn field_named(&self, name: &str) -> Option<&Value> {
        self.outcome().field_named(name).map(|v| &**v)
    }
    /// The outcome, with its values copied (borrowed ones stay borrowed from the program).
    pub fn to_outcome(&self) -> Outcome<'p> {
        self.outcome().to_outcome()
    }
}

/// One arm's recent outcome values, keyed by the values of the inputs the
/// outcome reads (its reason and extra fields, through lets too). Routes of
/// one owner and provider in many schedules, say, then build their reason
/// once. Keys compare values by identity (the address of a shared text, the
/// bits of a number); each entry holds its key values, so an address cannot
/// be reused for another text while its entry lives. Bounded, and switched
/// off for an arm whose outcomes rarely repeat (one that reads a schedule id).
#[derive(Default)]
struct OutcomeMemo<'p> {
    /// By a hash of the key's identities; the entry holds the identities to
    /// confirm a match (a hash collision is a miss) and the values themselves.
    entries: FxHashMap<u64, MemoEntry<'p>>,
    lookups: u32,
    hits: u32,
    off: bool,
}

/// At most this many inputs key an outcome memo.
const MEMO_KEYS: usize = 4;
type MemoKey = [(u8, u64); MEMO_KEYS];

struct MemoEntry<'p> {
    key: MemoKey,
    /// The key's values, alive as long as the entry (see [`OutcomeMemo`]):
    /// never read, only held.
    #[allow(dead_code)]
    held: [Value; MEMO_KEYS],
    /// Shared with the outcomes a caller keeps ([`OutcomeRef::keep`]).
    values: Arc<OutcomeValues<'p>>,
}

impl<'p> OutcomeMemo<'p> {
    const CAPACITY: usize = 4096;

    /// With this many entries, an arm with fewer than one hit in sixteen
    /// lookups stops memoising (at capacity: fewer than one in four).
    const TRIAL: usize = 256;

    /// The key of the values `identity` gives for `slots`, and its hash.
    #[inline]
    fn key(slots: &[u32], identity: impl Fn(u32) -> (u8, u64)) -> (MemoKey, u64) {
        let mut key: MemoKey = Default::default();
        let mut hash = 0u64;
        for (k, &slot) in key.iter_mut().zip(slots) {
            *k = identity(slot);
            hash = (hash.rotate_left(5) ^ k.1 ^ k.0 as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        (key, hash)
    }

    /// The values remembered for the inputs `identity` gives, if any; a
    /// miss computes nothing and is not counted (the caller then decides
    /// through [`OutcomeMemo::get_or_compute`], which counts it).
    #[inline]
    fn find(&mut self, slots: &[u32], identity: impl Fn(u32) -> (u8, u64)) -> Option<&Arc<OutcomeValues<'p>>> {
        if self.off {
            return None;
        }
        let (key, hash) = Self::key(slots, identity);
        let entry = self.entries.get(&hash).filter(|entry| entry.key == key)?;
        self.lookups += 1;
        self.hits += 1;
        Some(&entry.values)
    }

    /// `slots`: the inputs the outcome reads (at most [`MEMO_KEYS`]).
    fn get_or_compute(
        &mut self,
        slots: &[u32],
        inputs: &[Value],
        compute: impl FnOnce() -> Result<OutcomeValues<'p>, EvalError>,
    ) -> Result<Cow<'_, Arc<OutcomeValues<'p>>>, EvalError> {
        use std::collections::hash_map::Entry;
        let made = |values| Cow::Owned(Arc::new(values));
        if self.off {
            if !self.entries.is_empty() {
                self.entries = FxHashMap::default();
            }
            return compute().map(made);
        }
        let filled = self.entries.len();
        let repeats = |hits: u32, lookups: u32, share: u32| hits >= lookups / share;
        if filled >= Self::CAPACITY {
            if !repeats(self.hits, self.lookups, 4) {
                // These outcomes rarely repeat: stop paying for the memo.
                self.off = true;
                self.entries = FxHashMap::default();
                return compute().map(made);
            }
            self.entries.clear();
            (self.lookups, self.hits) = (0, 0);
        }
        let give_up = filled == Self::TRIAL && !repeats(self.hits, self.lookups, 16);
        let value = |slot: &u32| inputs.get(*slot as usize).unwrap_or(&Value::Null);
        let (key, hash) = Self::key(slots, |slot| value(&slot).identity());
        self.lookups += 1;
        // One lookup either way: the entry found, or the place for a new one
        // (a hash collision with another key replaces that entry).
        let entry = match self.entries.entry(hash) {
            Entry::Occupied(found) if found.get().key == key => {
                self.hits += 1;
                return Ok(Cow::Borrowed(&found.into_mut().values));
            }
            entry => entry,
        };
        let values = compute()?;
        if give_up {
            // The entries go at the next call, when this borrow has ended.
            self.off = true;
            return Ok(made(values));
        }
        let mut held: [Value; MEMO_KEYS] = Default::default();
        for (h, slot) in held.iter_mut().zip(slots) {
            *h = value(slot).clone();
        }
        let new_entry = MemoEntry { key, held, values: Arc::new(values) };
        let kept = match entry {
            Entry::Occupied(mut occupied) => {
                occupied.insert(new_entry);
                occupied.into_mut()
            }
            Entry::Vacant(vacant) => vacant.insert(new_entry),
        };
        Ok(Cow::Borrowed(&kept.values))
    }
}

/// Where a dynamic input goes in [`Inputs`] and a [`Session`], as given by
/// [`Program::input_slot`]. Opaque so that only a program hands slots out:
/// a bare number could be any index (an arm's, a field's) and still compile.
/// Slots depend only on the pack, so programs bound from one pack share them;
/// a slot used with another pack's inputs sets whatever input has that
/// position there, or nothing when it has fewer inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InputSlot(usize);

/// The dynamic inputs of one request, by slot.
#[derive(Clone, Debug)]
pub struct Inputs {
    values: Vec<Value>,
}

impl Inputs {
    pub fn set(&mut self, slot: InputSlot, value: Value) {
        if let Some(v) = self.values.get_mut(slot.0) {
            *v = value;
        }
    }

    /// The value at `slot` (null when never set, or for another pack's slot).
    pub fn get(&self, slot: InputSlot) -> &Value {
        self.values.get(slot.0).unwrap_or(&crate::eval::NULL)
    }
}

/// The result of a decision. Borrowed names come from the program, so
/// deciding does not allocate for them.
#[derive(Debug)]
pub struct Outcome<'p> {
    pub decision: &'p str,
    /// The id of the arm that matched (its category, or `otherwise`).
    pub arm: &'p str,
    /// The position of that arm in its decision, `otherwise` last: the index
    /// into [`Program::arm_fields`], for callers that resolve fields once.
    pub arm_index: usize,
    pub action: &'p str,
    pub category: &'p str,
    names: &'p [(Arc<str>, Node)],
    values: Values<'p>,
}

/// An outcome's values: lent by a decision table that decided ahead (the
/// outcome then copies no value), else made for this decision. Boxed, so
/// that an `Outcome` stays small enough to return without a copy call.
#[derive(Debug)]
enum Values<'p> {
    Lent(&'p OutcomeValues<'p>),
    Made(Box<OutcomeValues<'p>>),
}

impl<'p> std::ops::Deref for Values<'p> {
    type Target = OutcomeValues<'p>;
    fn deref(&self) -> &OutcomeValues<'p> {
        match self {
            Values::Lent(values) => values,
            Values::Made(values) => values,
        }
    }
}

impl<'p> Outcome<'p> {
    fn new(d: &'p DecisionIr, arm_index: usize, values: Values<'p>) -> Outcome<'p> {
        let arm = d.arm(arm_index);
        Outcome { decision: &d.name, arm: &arm.id, arm_index, action: &arm.outcome.action, category: &arm.outcome.category, names: &arm.outcome.fields, values }
    }

    /// The reason, if the arm gives one.
    pub fn reason(&self) -> Option<&Value> {
        self.values.reason.as_deref()
    }

    /// The outcome's extra fields (`with { ... }`), in declaration order.
    pub fn fields(&self) -> impl Iterator<Item = (&'p str, &Value)> + '_ {
        let values = self.values.fields.iter().chain(self.values.spill.iter());
        self.names.iter().map(|(n, _)| &**n).zip(values.map(|v| &**v))
    }

    /// One extra field by name.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut obj = serde_json::Map::new();
        obj.insert("decision".into(), self.decision.into());
        obj.insert("arm".into(), self.arm.into());
        obj.insert("action".into(), self.action.into());
        obj.insert("category".into(), self.category.into());
        obj.insert("reason".into(), self.reason().map(Value::to_json).unwrap_or(serde_json::Value::Null));
        let fields: serde_json::Map<String, serde_json::Value> = self.fields().map(|(k, v)| (k.to_string(), v.to_json())).collect();
        obj.insert("fields".into(), fields.into());
        serde_json::Value::Object(obj)
    }
}

/// One readiness check's result.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckResult {
    pub id: String,
    pub passed: bool,
    pub message: String,
    pub fields: Vec<(String, Value)>,
}

impl CheckResult {
    /// `{"id", "status": "pass"|"fail", "message", ...extra}`
    pub fn to_json(&self) -> serde_json::Value {
        let mut obj = serde_json::Map::new();
        obj.insert("id".into(), self.id.clone().into());
        obj.insert("status".into(), if self.passed { "pass" } else { "fail" }.into());
        obj.insert("message".into(), self.message.clone().into());
        for (k, v) in &self.fields {
            obj.insert(k.clone(), v.to_json());
        }
        serde_json::Value::Object(obj)
    }
}

/// A readiness gate's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub gate: String,
    /// `not_requested`, `ready`, `needs_attention`, or a `status` rule's name.
    pub status: String,
    pub checks: Vec<CheckResult>,
}

impl Report {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "gate": self.gate,
            "status": self.status,
            "checks": self.checks.iter().map(CheckResult::to_json).collect::<Vec<_>>(),
        })
    }
}

/// How a decision was reached: every arm tried, with its conditions.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub decision: String,
    pub arms: Vec<ArmTrace>,
    pub outcome: Option<serde_json::Value>,
    pub error: Option<TraceError>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ArmTrace {
    pub arm: String,
    pub line: usize,
    pub column: usize,
    pub result: TraceValue,
    pub conditions: Vec<ConditionTrace>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConditionTrace {
    /// The condition's source text.
    pub text: String,
    pub line: usize,
    pub column: usize,
    pub value: TraceValue,
    /// The `let`s the condition reads, with the values they had.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lets: Vec<LetTrace>,
    /// Where each `first`, `any` or `all` it reads (directly or as a `let`) settled.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub elements: Vec<ElementTrace>,
}

/// A `let` a condition read, and its value.
#[derive(Clone, Debug, Serialize)]
pub struct LetTrace {
    pub name: String,
    pub value: serde_json::Value,
}

/// The element at which a quantifier settled.
#[derive(Clone, Debug, Serialize)]
pub struct ElementTrace {
    /// The quantifier's source text.
    pub text: String,
    /// `first`, `any` or `all`.
    pub quantifier: String,
    /// The index of the element that `first`/`any` picked (the first that
    /// passes) or `all` failed on (the first that does not); none when no
    /// element did (`first` found nothing, `any` is false, `all` is true).
    pub index: Option<usize>,
    /// That element's identifying fields (`id`, `name`, `*_id`), or the
    /// element itself when it is not a record or has none of them.
    pub element: Option<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "message")]
pub enum TraceValue {
    True,
    False,
    Error(String),
    /// Not evaluated: an earlier condition already decided.
    Skipped,
}

/// An evaluation error and where it happened.
#[derive(Clone, Debug, Serialize)]
pub struct TraceError {
    pub message: String,
    pub line: usize,
    pub column: usize,
    /// The source text of the expression at fault.
    pub text: String,
}

thread_local! {
    /// Reused evaluation slots, so that a decision does not allocate. Kept
    /// empty between uses: the slots of one evaluation borrow from its
    /// program, so only the allocation is kept.
    static SCRATCH: RefCell<Vec<Option<Val<'static>>>> = const { RefCell::new(Vec::new()) };
}

/// An empty vector of another element type with the same layout, keeping the
/// allocation (the standard library collects `into_iter().map()` in place).
fn recycle<'a, 'b>(mut slots: Vec<Option<Val<'a>>>) -> Vec<Option<Val<'b>>> {
    slots.clear();
    slots.into_iter().map(|_| None).collect()
}

impl Program {
    pub fn pack(&self) -> &Pack {
        &self.pack
    }

    /// The extra field names (`with { ... }`) of each arm of `decision`, in
    /// the order [`Outcome::arm_index`] numbers the arms (`otherwise` last).
    pub fn arm_fields(&self, decision: &str) -> Option<Vec<Vec<&str>>> {
        let (_, d) = self.find_decision(decision).ok()?;
        Some(d.arms.iter().chain(std::iter::once(&d.otherwise)).map(|a| a.outcome.fields.iter().map(|(n, _)| &**n).collect()).collect())
    }

    /// A [`Session`] with all dynamic inputs null.
    pub fn session(&self) -> Session<'_> {
        let classes = self.tables.iter().map(|table| table.as_ref().map_or(Vec::new(), |t| vec![NO_CLASS; t.key_slots().count()])).collect();
        Session {
            program: self,
            inputs: self.inputs(),
            slots: vec![None; self.slot_count],
            outcomes: Vec::new(),
            texts: None,
            classes,
            class_caches: Vec::new(),
            maybe_filled: 0,
            given: false,
        }
    }

    /// Fresh dynamic inputs, all null.
    pub fn inputs(&self) -> Inputs {
        Inputs { values: vec![Value::Null; self.pack.checked.inputs.len()] }
    }

    /// The slot of a dynamic input, for [`Inputs::set`] and [`Session::set`]:
    /// look it up once, then set the input by slot in every request.
    ///
    /// ```
    /// let source = r#"
    /// pack greet
    /// input owner: text
    /// decision route {
    ///   when owner == "ops" => suppress quiet
    ///   otherwise => deliver
    /// }
    /// "#;
    /// let pack = cavra_engine::compile("greet.cavra", source).expect("the pack checks");
    /// let program = pack.bind(&Default::default()).expect("no static inputs");
    /// let owner: cavra_engine::InputSlot = program.input_slot("owner").expect("a dynamic input");
    /// let mut session = program.session();
    /// session.set(owner, cavra_engine::Value::text("ops"));
    /// assert_eq!(session.decide("route").expect("decides").action, "suppress");
    /// let mut inputs = program.inputs();
    /// inputs.set(owner, cavra_engine::Value::text("dev"));
    /// assert_eq!(program.decide("route", &inputs).expect("decides").action, "deliver");
    /// assert_eq!(program.input_slot("nobody"), None);
    /// ```
    pub fn input_slot(&self, name: &str) -> Option<InputSlot> {
        self.pack.checked.inputs.iter().position(|i| i.name == name && !i.is_static).map(InputSlot)
    }

    /// The slot of the clock input (`input now: time`), if the pack has one.
    pub fn clock_slot(&self) -> Option<InputSlot> {
        self.pack.checked.inputs.iter().position(|i| i.name == "now" && !i.is_static && i.ty.base() == &Ty::Time).map(InputSlot)
    }

    /// Converts and sets a dynamic input from JSON.
    pub fn set_input(&self, inputs: &mut Inputs, name: &str, json: &serde_json::Value) -> Result<(), BindError> {
        let slot = self.input_slot(name).ok_or_else(|| BindError::Unknown(name.to_string()))?;
        inputs.set(slot, self.pack.input_value(name, json)?);
        Ok(())
    }

    fn with_frame<'p, R>(&'p self, f: impl FnOnce(&mut Frame<'_, 'p>) -> R) -> R {
        let mut slots: Vec<Option<Val<'p>>> = recycle(SCRATCH.with(|cell| cell.try_borrow_mut().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default()));
        slots.resize(self.slot_count, None);
        let r = f(&mut Frame { slots: &mut slots, let_count: self.lets.len(), texts: None });
        let slots = recycle(slots);
        SCRATCH.with(|cell| {
            if let Ok(mut s) = cell.try_borrow_mut() {
                *s = slots;
            }
        });
        r
    }

    /// The required inputs that `inputs` lacks, in declaration order. Every
    /// decision and gate needs them all, so a front end can tell a caller
    /// who left one out before anything is decided.
    pub fn missing_inputs(&self, inputs: &Inputs) -> Vec<&str> {
        self.required
            .iter()
            .filter(|&&slot| inputs.values.get(slot as usize).is_none_or(Value::is_null))
            .map(|&slot| &*self.pack.checked.inputs[slot as usize].name)
            .collect()
    }

    /// Whether every required input is given, counting `except` as given
    /// (the time a `Decider` sets per call, the input `decide_each` varies).
    #[inline]
    fn required_given(&self, inputs: &Inputs, except: Option<InputSlot>) -> bool {
        self.required.iter().all(|&slot| except.is_some_and(|e| e.0 == slot as usize) || inputs.values.get(slot as usize).is_some_and(|v| !v.is_null()))
    }

    #[inline]
    fn check_required(&self, inputs: &Inputs) -> Result<(), EvalError> {
        match self.required.iter().find(|&&slot| inputs.values.get(slot as usize).is_none_or(Value::is_null)) {
            None => Ok(()),
            Some(&slot) => Err(self.not_given(slot)),
        }
    }

    #[cold]
    fn not_given(&self, slot: u32) -> EvalError {
        let def = &self.pack.checked.inputs[slot as usize];
        EvalError { span: def.span, message: format!("the input `{}` was not given", def.name) }
    }

    /// Inlined into each caller, with the error made out of line: for a pack
    /// of a few decisions, the search costs less than a call.
    #[inline]
    fn find_decision(&self, name: &str) -> Result<(usize, &DecisionIr), EvalError> {
        match self.decisions.iter().enumerate().find(|(_, d)| crate::value::same_text(&d.name, name)) {
            Some(found) => Ok(found),
            None => Err(self.no_decision(name)),
        }
    }

    #[cold]
    fn no_decision(&self, name: &str) -> EvalError {
        EvalError { span: Span::default(), message: format!("the pack `{}` has no decision `{name}`", self.pack.name) }
    }

    /// Runs a decision: the first arm whose condition holds gives the outcome.
    /// Inlined across crates, as a call in a caller's loop costs a tenth of
    /// a tabled decision.
    #[inline]
    pub fn decide(&self, decision: &str, inputs: &Inputs) -> Result<Outcome<'_>, EvalError> {
        let (number, d) = self.find_decision(decision)?;
        self.decide_number(number, d, inputs)
    }

    #[inline]
    fn decide_number<'p>(&'p self, number: usize, d: &'p DecisionIr, inputs: &Inputs) -> Result<Outcome<'p>, EvalError> {
        self.check_required(inputs)?;
        if let Some(hit) = self.table_label(number, &inputs.values) {
            let values = match hit.dynamic {
                false => Values::Lent(&hit.label.values),
                true => Values::Made(Box::new(self.dynamic_values(hit.label, d, inputs)?)),
            };
            return Ok(Outcome::new(d, hit.arm, values));
        }
        let env = Env { lets: &self.lets, inputs: &inputs.values };
        self.with_frame(|frame| first_arm(d, &env, frame))
    }

    /// The table's outcome for `inputs`, when decision `number` has a table
    /// that answers them.
    #[inline]
    fn table_label(&self, number: usize, inputs: &[Value]) -> Option<Hit<'_>> {
        self.tables.get(number)?.as_ref()?.lookup(inputs, || self.parts(number))
    }

    fn parts(&self, number: usize) -> Parts<'_> {
        Parts { decision: &self.decisions[number], lets: &self.lets, input_count: self.pack.checked.inputs.len(), slot_count: self.slot_count }
    }

    /// The values of a label with dynamic positions (`label.dynamic != 0`):
    /// the table's, with the ones that repeat a key the policy never names
    /// evaluated for this request.
    fn dynamic_values<'p>(&'p self, label: &'p Label, d: &'p DecisionIr, inputs: &Inputs) -> Result<OutcomeValues<'p>, EvalError> {
        let env = Env { lets: &self.lets, inputs: &inputs.values };
        self.with_frame(|frame| outcome_for(label, d, &env, frame))
    }

    /// `decision`, looked up once: for callers that decide it many times
    /// (no name lookup per call, and text keys resolved once with
    /// [`Decider::keys`]).
    pub fn decider(&self, decision: &str) -> Result<Decider<'_>, EvalError> {
        let (number, decision) = self.find_decision(decision)?;
        Ok(Decider { program: self, number, decision })
    }

    /// `[from, to)`: the instants in which this program's indexes and
    /// decision tables answer (outside it, decisions evaluate in full: same
    /// results, slower). A long-running caller binds again before `to`.
    pub fn horizon(&self) -> (i64, i64) {
        self.horizon
    }

    /// For measurements: whether `decision` has a table, and if so what it
    /// holds so far.
    pub fn table_size(&self, decision: &str) -> Option<TableSize> {
        let (number, _) = self.find_decision(decision).ok()?;
        self.tables.get(number)?.as_ref().map(DecisionTable::size)
    }

    /// Like [`Program::decide`], recording each arm and condition tried.
    /// What a condition read, for `explain`: its `let`s (the value each had:
    /// those the condition did not reach are left out) and where each
    /// quantifier it reads settled.
    fn trace_reads<'p>(&'p self, part: &'p Node, env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>) -> (Vec<LetTrace>, Vec<ElementTrace>) {
        let mut lets: Vec<u32> = Vec::new();
        let mut scans: Vec<&'p Scan> = Vec::new();
        traced_reads(part, &mut lets, &mut scans);
        let mut traced = Vec::new();
        for &index in &lets {
            let Some(Some(value)) = frame.slots.get(index as usize) else { continue };
            let value = value.to_json();
            if let Some(def) = self.lets.get(index as usize) {
                scans.extend(top_scan(&def.node));
                traced.push(LetTrace { name: let_name(&self.snippet(def.span)), value });
            }
        }
        let mut elements = Vec::new();
        for scan in scans {
            let Ok(settled) = crate::eval::settling_element(scan, env, frame) else { continue };
            let quantifier = match scan.kind {
                QuantKind::First => "first",
                QuantKind::Any => "any",
                QuantKind::All => "all",
                _ => continue,
            };
            let (index, element) = match settled {
                Some((index, element)) => (Some(index), Some(identifying(&element))),
                None => (None, None),
            };
            elements.push(ElementTrace { text: self.snippet(scan.source.span), quantifier: quantifier.to_string(), index, element });
        }
        (traced, elements)
    }

    /// The value of the `let` named `name` for these inputs: what a rule test
    /// of a module (which has no decision) checks.
    pub fn let_value(&self, name: &str, inputs: &Inputs) -> Result<Value, EvalError> {
        let def = self.lets.iter().find(|def| let_name(&self.snippet(def.span)) == name);
        let def = def.ok_or_else(|| EvalError { span: Span::default(), message: format!("the pack has no let `{name}`") })?;
        self.check_required(inputs)?;
        let env = Env { lets: &self.lets, inputs: &inputs.values };
        self.with_frame(|frame| eval(&def.node, &env, frame).map(Cow::into_owned).map_err(EvalError::from))
    }

    pub fn explain(&self, decision: &str, inputs: &Inputs) -> Result<Explanation, EvalError> {
        let (_, d) = self.find_decision(decision)?;
        let mut trace = Explanation { decision: decision.to_string(), arms: Vec::new(), outcome: None, error: None };
        if let Err(e) = self.check_required(inputs) {
            trace.error = Some(self.trace_error(&e));
            return Ok(trace);
        }
        let env = Env { lets: &self.lets, inputs: &inputs.values };
        self.with_frame(|frame| {
            for (index, arm) in d.arms.iter().chain(std::iter::once(&d.otherwise)).enumerate() {
                let (line, column) = line_col(&self.pack.source, arm.span.start);
                let mut parts = Vec::new();
                conjuncts(&arm.condition, &mut parts);
                let mut conditions = Vec::new();
                let mut result = TraceValue::True;
                for part in parts {
                    let value = if result != TraceValue::True {
                        TraceValue::Skipped
                    } else {
                        match truth(part, &env, frame) {
                            Ok(true) => TraceValue::True,
                            Ok(false) => TraceValue::False,
                            Err(e) => {
                                let traced = self.trace_error(&e);
                                let message = format!("{} (at {}:{}: `{}`)", traced.message, traced.line, traced.column, traced.text);
                                trace.error.get_or_insert(traced);
                                TraceValue::Error(message)
                            }
                        }
                    };
                    if result == TraceValue::True && value != TraceValue::True {
                        result = value.clone();
                    }
                    let (line, column) = line_col(&self.pack.source, part.span.start);
                    if &*arm.id != "otherwise" {
                        let (lets, elements) = if value == TraceValue::Skipped { Default::default() } else { self.trace_reads(part, &env, frame) };
                        conditions.push(ConditionTrace { text: self.snippet(part.span), line, column, value, lets, elements });
                    }
                }
                let matched = result == TraceValue::True;
                let failed = matches!(result, TraceValue::Error(_));
                trace.arms.push(ArmTrace { arm: arm.id.to_string(), line, column, result, conditions });
                if failed {
                    break;
                }
                if matched {
                    match outcome(d, index, &env, frame) {
                        Ok(o) => trace.outcome = Some(o.to_json()),
                        Err(e) => trace.error = Some(self.trace_error(&e)),
                    }
                    break;
                }
            }
        });
        Ok(trace)
    }

    /// Evaluates a readiness gate: every check runs, so an operator sees all
    /// problems at once. A check whose condition fails to evaluate fails with
    /// the error as its message.
    pub fn readiness<'p>(&'p self, gate: &str, inputs: &Inputs) -> Result<Report, EvalError> {
        let g = self
            .gates
            .iter()
            .find(|g| &*g.name == gate)
            .ok_or_else(|| EvalError { span: Span::default(), message: format!("the pack `{}` has no readiness gate `{gate}`", self.pack.name) })?;
        self.check_required(inputs)?;
        let env = Env { lets: &self.lets, inputs: &inputs.values };
        self.with_frame(|frame| {
            let mut checks = Vec::new();
            if let Some(r) = &g.requested {
                let requested = truth(&r.condition, &env, frame)?;
                if let Some(id) = &r.id {
                    // Informational: it passes either way and says why.
                    let message = match if requested { &r.pass } else { &r.fail } {
                        Some(node) => eval(node, &env, frame)?.to_string(),
                        None if requested => format!("{gate} is requested"),
                        None => format!("{gate} is not requested"),
                    };
                    checks.push(CheckResult { id: id.to_string(), passed: true, message, fields: Vec::new() });
                }
                if !requested {
                    return Ok(Report { gate: gate.to_string(), status: "not_requested".into(), checks });
                }
            }
            for c in &g.checks {
                if let Some(guard) = &c.guard {
                    match truth(guard, &env, frame) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            let message = format!("{} [{}]", c.id, self.describe_error(&e));
                            checks.push(CheckResult { id: c.id.to_string(), passed: false, message, fields: Vec::new() });
                            continue;
                        }
                    }
                }
                let passed = truth(&c.condition, &env, frame);
                let text = |node: &'p Node, frame: &mut Frame<'_, 'p>| match eval(node, &env, frame) {
                    Ok(v) => v.to_string(),
                    Err(e) => format!("{} ({})", c.id, self.render_error(&e)),
                };
                let mut first_error: Option<Box<EvalError>> = None;
                let (mut passed, mut message) = match passed {
                    Ok(true) => (true, c.pass.as_ref().map(|p| text(p, frame)).unwrap_or_else(|| format!("{} passed", c.id))),
                    Ok(false) => (false, text(&c.fail, frame)),
                    Err(e) => {
                        let message = format!("{} [{}]", text(&c.fail, frame), self.describe_error(&e));
                        first_error = Some(e);
                        (false, message)
                    }
                };
                let mut fields = Vec::new();
                for (name, node) in &c.fields {
                    match eval(node, &env, frame) {
                        Ok(v) => fields.push((name.to_string(), v.into_owned())),
                        Err(e) => {
                            // An extra that cannot be computed makes the check unreliable: fail it.
                            passed = false;
                            if first_error.as_ref().is_none_or(|first| first.span != e.span) {
                                message = format!("{message} [`{name}`: {}]", self.describe_error(&e));
                            }
                            first_error.get_or_insert(e);
                            fields.push((name.to_string(), Value::Null));
                        }
                    }
                }
                checks.push(CheckResult { id: c.id.to_string(), passed, message, fields });
            }
            let status = if checks.iter().all(|c| c.passed) {
                let mut status = "ready".to_string();
                for (name, cond) in &g.statuses {
                    if truth(cond, &env, frame)? {
                        status = name.to_string();
                        break;
                    }
                }
                status
            } else {
                "needs_attention".to_string()
            };
            Ok(Report { gate: gate.to_string(), status, checks })
        })
    }

    fn snippet(&self, span: Span) -> String {
        let text = self.pack.source.get(span.start..span.end).unwrap_or("");
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn trace_error(&self, e: &EvalError) -> TraceError {
        let (_, line, column) = self.pack.locate(e.span);
        TraceError { message: e.message.clone(), line, column, text: self.snippet(e.span) }
    }

    /// `could not evaluate `text` (file:line:col): message`, for messages.
    fn describe_error(&self, e: &EvalError) -> String {
        let (file, line, column) = self.pack.locate(e.span);
        format!("could not evaluate `{}` ({file}:{line}:{column}): {}", self.snippet(e.span), e.message)
    }

    /// `file:line:col: message (at `source text`)`.
    pub fn render_error(&self, e: &EvalError) -> String {
        if e.span == Span::default() {
            return e.message.clone();
        }
        let (file, line, column) = self.pack.locate(e.span);
        format!("{file}:{line}:{column}: {} (at `{}`)", e.message, self.snippet(e.span))
    }
}

/// The outcome of the first arm whose condition holds.
#[inline]
fn first_arm<'p>(d: &'p DecisionIr, env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>) -> Result<Outcome<'p>, EvalError> {
    let arm = matching_arm(d, env, frame)?;
    outcome(d, arm, env, frame)
}

/// The outcome of arm number `arm`, its values evaluated.
fn outcome<'p>(d: &'p DecisionIr, arm: usize, env: &Env<'p, '_>, frame: &mut Frame<'_, 'p>) -> Result<Outcome<'p>, EvalError> {
    Ok(Outcome::new(d, arm, Values::Made(Box::new(outcome_values(d, arm, env, frame)?))))
}

fn conjuncts<'n>(node: &'n Node, out: &mut Vec<&'n Node>) {
    match &node.kind {
        Kind::And(a, b) => {
            conjuncts(a, out);
            conjuncts(b, out);
        }
        _ => out.push(node),
    }
}

/// The `let`s and quantifiers a condition reads directly (a quantifier's own
/// filter is its business).
fn traced_reads<'p>(node: &'p Node, lets: &mut Vec<u32>, scans: &mut Vec<&'p Scan>) {
    match &node.kind {
        Kind::Let(i) => {
            if !lets.contains(i) {
                lets.push(*i);
            }
        }
        Kind::Scan(scan) => scans.push(scan),
        Kind::Indexed(ix) => scans.push(&ix.fallback),
        _ => children(node, &mut |child| traced_reads(child, lets, scans)),
    }
}

/// The quantifier a `let` is, if it is one (`let window = first w in ...`).
fn top_scan(node: &Node) -> Option<&Scan> {
    match &node.kind {
        Kind::Scan(scan) => Some(scan),
        Kind::Indexed(ix) => Some(&ix.fallback),
        _ => None,
    }
}

/// The name in `let NAME = ...`.
fn let_name(declaration: &str) -> String {
    let rest = declaration.trim_start().strip_prefix("let").unwrap_or(declaration).trim_start();
    rest.split(|c: char| c == '=' || c.is_whitespace()).next().unwrap_or("").to_string()
}

/// What names an element: its `id`, `name` and `*_id` fields, or the
/// element itself when it is not a record or has none of them.
fn identifying(element: &Value) -> serde_json::Value {
    let json = element.to_json();
    if let serde_json::Value::Object(fields) = &json {
        let named: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .filter(|(k, v)| (k.as_str() == "id" || k.as_str() == "name" || k.ends_with("_id")) && !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !named.is_empty() {
            return serde_json::Value::Object(named);
        }
    }
    json
}

#[cfg(test)]
mod tests {
    use crate::value::Value;

    fn assert_send_sync<T: Send + Sync>() {}

    /// Returning an outcome copies it: kept small enough to be moved in
    /// registers and a few stores rather than by a `memcpy` call (its values
    /// are lent by a decision table, or boxed).
    #[test]
    fn an_outcome_is_small() {
        let size = std::mem::size_of::<super::Outcome<'static>>();
        assert!(size <= 128, "Outcome is {size} bytes");
    }

    #[test]
    fn program_is_send_and_sync() {
        assert_send_sync::<super::Program>();
    }

    const NOTIFY: &str = r#"
pack notify
input owner: text
input provider: text
input schedule_id: text
decision route {
  when schedule_id == "quiet" => suppress healthy_schedule reason "schedule {schedule_id} is quiet"
  otherwise => deliver reason "notify {owner} on {provider}" with { owner: owner }
}
"#;

    /// The memo is what these tests check: without a table, which would answer first.
    fn untabled(source: &str) -> super::Program {
        let options = super::BindOptions { decision_tables: false, ..Default::default() };
        crate::compile("notify.cavra", source).unwrap().bind_with(&Default::default(), options).unwrap()
    }

    fn reason(session: &mut super::Session, slots: &[super::InputSlot], values: [&Value; 3]) -> std::sync::Arc<str> {
        for (slot, value) in slots.iter().zip(values) {
            session.set(*slot, value.clone());
        }
        match session.decide("route").unwrap().reason() {
            Some(Value::Text(t)) => t.clone(),
            other => panic!("a text reason, got {other:?}"),
        }
    }

    #[test]
    fn a_memoised_outcome_is_reused_only_for_the_same_inputs() {
        let program = untabled(NOTIFY);
        let slots: Vec<super::InputSlot> = ["owner", "provider", "schedule_id"].iter().map(|n| program.input_slot(n).unwrap()).collect();
        let (owner, slack, teams) = (Value::text("release-governance"), Value::text("slack"), Value::text("teams"));
        let (s1, s2) = (Value::text("drill-1"), Value::text("drill-2"));
        let mut session = program.session().memoize_outcomes();
        let first = reason(&mut session, &slots, [&owner, &slack, &s1]);
        // Another schedule, same owner and provider: the deliver outcome does not read the schedule.
        let again = reason(&mut session, &slots, [&owner, &slack, &s2]);
        assert!(std::sync::Arc::ptr_eq(&first, &again));
        let other = reason(&mut session, &slots, [&owner, &teams, &s2]);
        assert_eq!(&*other, "notify release-governance on teams");
        // Without the memo each decision makes its own text.
        let mut plain = program.session();
        let (a, b) = (reason(&mut plain, &slots, [&owner, &slack, &s1]), reason(&mut plain, &slots, [&owner, &slack, &s2]));
        assert_eq!(a, b);
        assert!(!std::sync::Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn an_arm_whose_outcomes_never_repeat_stops_memoising() {
        let program = untabled(NOTIFY);
        let slots: Vec<super::InputSlot> = ["owner", "provider", "schedule_id"].iter().map(|n| program.input_slot(n).unwrap()).collect();
        let (owner, slack, quiet) = (Value::text("o"), Value::text("slack"), Value::text("quiet"));
        let mut session = program.session().memoize_outcomes();
        for i in 0..super::OutcomeMemo::TRIAL + 10 {
            // A fresh owner text each time: the deliver arm never repeats.
            let owner = Value::text(&format!("owner-{i}"));
            assert_eq!(&*reason(&mut session, &slots, [&owner, &slack, &Value::text("s")]), format!("notify owner-{i} on slack"));
        }
        let deliver = &session.outcomes[0][1];
        assert!(deliver.off && deliver.entries.is_empty());
        // The healthy arm was never asked: it still memoises.
        assert!(!session.outcomes[0][0].off);
        assert_eq!(&*reason(&mut session, &slots, [&owner, &slack, &quiet]), "schedule quiet is quiet");
    }

    /// `decide_each` against one decision per provider, on a table whose
    /// quiet arm names the schedule (a key no policy names: made per call).
    #[test]
    fn decide_each_decides_like_one_call_per_text_and_leaves_its_input_unset() {
        let source = NOTIFY.replace(r#"schedule_id == "quiet""#, r#"schedule_id != "loud""#);
        let program = crate::compile("notify.cavra", &source).unwrap().bind(&Default::default()).unwrap();
        assert!(program.table_size("route").is_some(), "the decision should get a table");
        let [owner, provider, schedule] = ["owner", "provider", "schedule_id"].map(|n| program.input_slot(n).unwrap());
        let providers: Vec<std::sync::Arc<str>> = vec!["slack".into(), "teams".into(), "slack".into()];
        let mut session = program.session().memoize_outcomes();
        session.set(owner, Value::text("release-governance"));
        // A required input not given: the first text's error, nothing read.
        let mut read = 0;
        let error = session.decide_each("route", provider, &providers, |_, _| read += 1).unwrap_err();
        assert!(error.message.contains("schedule_id") && read == 0, "{}", error.message);
        for (schedule_id, category) in [("drill-7", "healthy_schedule"), ("loud", "deliver")] {
            session.set(schedule, Value::text(schedule_id));
            let mut kept = Vec::new();
            session.decide_each("route", provider, &providers, |i, o| kept.push((i, o.keep()))).unwrap();
            let mut inputs = program.inputs();
            inputs.set(owner, Value::text("release-governance"));
            inputs.set(schedule, Value::text(schedule_id));
            for (i, outcome) in &kept {
                inputs.set(provider, Value::Text(providers[*i].clone()));
                let expected = program.decide("route", &inputs).unwrap();
                assert_eq!((outcome.category(), outcome.reason()), (category, expected.reason()));
                assert_eq!(outcome.to_outcome().to_json(), expected.to_json());
            }
            assert_eq!(kept.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 1, 2]);
            if category == "healthy_schedule" {
                // Made once for the call: the reason does not read the provider.
                let reasons: Vec<_> = kept.iter().map(|(_, o)| o.reason().and_then(Value::as_text).map(|t| t as *const str)).collect();
                assert!(reasons[0].is_some() && reasons.iter().all(|r| *r == reasons[0]), "{reasons:?}");
            }
        }
        // The input is unset afterwards, as before a request gives it.
        let error = session.decide("route").unwrap_err();
        assert!(error.message.contains("provider"), "{}", error.message);
    }
}
