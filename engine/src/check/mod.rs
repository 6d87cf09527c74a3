//! Name resolution and type checking: AST -> typed IR plus diagnostics.
//! Every error is reported with its span; after an error the offending
//! expression gets type `Any` so that one mistake is reported once.
//!
//! [`check`] runs the passes in order; each concern has its file, all as
//! methods of one [`Checker`]:
//! record types, inputs and lets (`declarations.rs`), expressions
//! (`expressions.rs`), builtin calls through the registry (`calls.rs`),
//! decisions and readiness gates (`decisions.rs`), warnings (`lints.rs`),
//! the evaluation-depth limit (`limits.rs`), and the diagnostic codes with
//! their shared shapes (`diagnostics.rs`).

mod calls;
mod decisions;
mod declarations;
mod diagnostics;
mod expressions;
mod facts;
mod limits;
mod lints;
mod logic;

pub(crate) use declarations::free_names;
pub use facts::{Facts, RecordFacts, Reference, SymbolKind};

use crate::ir::*;
use crate::types::{Schema, Ty};
use crate::value::Value;
use cavra_grammar::ast::{self, Span};
use cavra_grammar::diagnostic::Diagnostic;
use rustc_hash::FxHashMap as HashMap;

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

/// What the passes have declared and found so far; each file of this
/// module adds the methods of one concern.
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
    /// Per input slot: whether an expression reads it.
    input_used: Vec<bool>,
    let_order: Vec<u32>,
    /// Quantifier variables in scope, innermost last: (name, local slot, type, where declared).
    scopes: Vec<(String, u32, Ty, Span)>,
    local_count: u32,
    /// True while checking field defaults: only constants are allowed.
    const_context: bool,
    /// Names of all inputs and lets, known before types are checked.
    global_names: std::collections::HashSet<String>,
    /// Per record type: where its name and each field's name are declared.
    record_spans: Vec<(Span, Vec<Span>)>,
    /// Per input slot: where its name is declared.
    input_spans: Vec<Span>,
    /// Kept for editors when asked for (`facts.rs`).
    facts: Option<Facts>,
}

/// Checks a pack: the checked IR when there is no error, and every diagnostic.
/// Declarations that start at `local_end` or later were imported from modules
/// (`modules.rs`): they are not reported as unused, nor is any `let` of a
/// module, since a module's lets are there to be imported. With `record`,
/// what editors need is kept too ([`Facts`]).
pub fn check(pack: &ast::Pack, source: &str, local_end: usize, record: bool) -> (Option<Checked>, Vec<Diagnostic>, Option<Facts>) {
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
        input_used: Vec::new(),
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
        record_spans: Vec::new(),
        input_spans: Vec::new(),
        facts: record.then(Facts::default),
    };
    if pack.kind == ast::FileKind::Module {
        c.refuse_decisions_in_module(pack);
    }
    c.declare_types(pack);
    c.declare_inputs_and_lets(pack);
    // Dependencies first, so that checking one let never nests the checking
    // of another (a long chain would otherwise deepen the recursion per let).
    for i in c.let_dependency_order() {
        c.check_let(i);
    }
    let (decisions, gates) = c.decisions_and_gates(pack);
    if pack.kind == ast::FileKind::Pack {
        c.warn_unused_lets(local_end);
    }
    // An expression with an error may be the one meant to read an input.
    if !c.diags.iter().any(Diagnostic::is_error) {
        c.warn_unused_inputs();
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
    (if has_errors { None } else { Some(checked) }, c.diags, c.facts)
}

impl Checker<'_> {
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
}
