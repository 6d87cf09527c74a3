//! The checked intermediate representation: names resolved to slots, record
//! fields to indexes, operators specialised by type. The compiler rewrites it
//! (folding, indexing) and the evaluator runs it. It stands below both: it
//! names builtins by their registry identifiers and holds index data, but
//! imports nothing that checks, compiles or evaluates.

pub use crate::builtins::Builtin;
use crate::scan_index::ScanIndex;
use crate::types::Ty;
use crate::value::Value;
use cavra_grammar::ast::{CompareOp, QuantKind, Span, TestOp};
use rustc_hash::FxHashMap;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct Node {
    pub kind: Kind,
    pub span: Span,
}

impl Node {
    pub fn new(kind: Kind, span: Span) -> Node {
        Node { kind, span }
    }
    pub fn constant(value: Value, span: Span) -> Node {
        Node { kind: Kind::Const(value), span }
    }
    pub fn as_const(&self) -> Option<&Value> {
        match &self.kind {
            Kind::Const(v) => Some(v),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Kind {
    Const(Value),
    /// An input slot; static inputs become `Const` when the pack is bound.
    Input(u32),
    Let(u32),
    /// A quantifier variable.
    Local(u32),
    Field(Box<Node>, u32),
    MapGet(Box<Node>, Box<Node>),
    ListGet(Box<Node>, Box<Node>),
    Call(Builtin, Vec<Node>),
    Not(Box<Node>),
    Arith(ArithOp, Box<Node>, Box<Node>),
    Neg(Box<Node>),
    Compare(Box<Node>, Vec<(CompareOp, Node)>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    In(InKind, Box<Node>, Box<Node>),
    NotIn(InKind, Box<Node>, Box<Node>),
    Test(Box<Node>, TestOp),
    Default(Box<Node>, Box<Node>),
    If(Box<Node>, Box<Node>, Box<Node>),
    /// Interpolated text: the display forms of the parts, concatenated.
    Text(Vec<Node>),
    List(Vec<Node>),
    Map(Vec<(Arc<str>, Node)>),
    Scan(Box<Scan>),
    /// A scan the compiler turned into an index lookup (`index.rs`).
    Indexed(Box<IndexedScan>),
}

#[derive(Clone, Debug)]
pub struct Scan {
    pub kind: QuantKind,
    pub local: u32,
    pub source: Node,
    pub filter: Option<Node>,
    pub key: Option<Node>,
}

/// A scan turned into an index lookup by the compiler (`index.rs` decides
/// which scans qualify; the evaluator looks requests up).
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

impl IndexedScan {
    /// Every index of this lookup (one, or one per entry of a keyed map).
    fn indexes(&self) -> Vec<&ScanIndex> {
        match &self.source {
            IndexSource::Direct(ix) => vec![&**ix],
            IndexSource::Keyed { indexes, .. } => indexes.values().collect(),
        }
    }

    /// The instants in which the lookup is answered by its indexes
    /// (recurring windows expanded), `None` when at every instant.
    pub(crate) fn horizon(&self) -> Option<(i64, i64)> {
        self.indexes().iter().filter_map(|ix| ix.horizon()).reduce(|(a, b), (c, d)| (a.max(c), b.min(d)))
    }

    /// The texts that dimension `dim`'s key is compared with (its buckets).
    pub(crate) fn dimension_texts(&self, dim: usize) -> Vec<Arc<str>> {
        self.indexes().iter().flat_map(|ix| ix.dimension_texts(dim).cloned()).collect()
    }

    /// The keys of a keyed lookup's map (none for a direct one).
    pub(crate) fn map_keys(&self) -> Vec<Arc<str>> {
        match &self.source {
            IndexSource::Direct(_) => Vec::new(),
            IndexSource::Keyed { indexes, .. } => indexes.keys().cloned().collect(),
        }
    }

    /// Every element the lookup can give.
    pub(crate) fn items(&self) -> Vec<&Value> {
        self.indexes().into_iter().flat_map(|ix| ix.items().iter()).collect()
    }

    pub(crate) fn children<'a>(&'a self, f: &mut dyn FnMut(&'a Node)) {
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InKind {
    List,
    MapKey,
    Substring,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    AddNum,
    SubNum,
    MulNum,
    DivNum,
    RemNum,
    TimePlusDur,
    TimeMinusDur,
    TimeMinusTime,
    DurPlusDur,
    DurMinusDur,
    DurTimesNum,
    NumTimesDur,
    DurDivNum,
    DurDivDur,
}

/// A `let` after checking.
#[derive(Clone, Debug)]
pub struct LetDef {
    pub node: Node,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct InputDef {
    pub name: String,
    pub ty: Ty,
    pub is_static: bool,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct OutcomeIr {
    pub action: Arc<str>,
    pub category: Arc<str>,
    pub reason: Option<Node>,
    pub fields: Vec<(Arc<str>, Node)>,
}

#[derive(Clone, Debug)]
pub struct ArmIr {
    /// The arm's id: its category, `category#2` when repeated, or `otherwise`.
    pub id: Arc<str>,
    pub condition: Node,
    pub outcome: OutcomeIr,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct DecisionIr {
    pub name: Arc<str>,
    pub arms: Vec<ArmIr>,
    pub otherwise: ArmIr,
    pub span: Span,
}

impl DecisionIr {
    /// Arm number `index`, counting `otherwise` last (and for any index past it).
    pub fn arm(&self, index: usize) -> &ArmIr {
        self.arms.get(index).unwrap_or(&self.otherwise)
    }
}

#[derive(Clone, Debug)]
pub struct RequestedIr {
    /// With an id, the report always carries this check first.
    pub id: Option<Arc<str>>,
    pub condition: Node,
    pub fail: Option<Node>,
    pub pass: Option<Node>,
}

#[derive(Clone, Debug)]
pub struct CheckIr {
    pub id: Arc<str>,
    /// The check applies only when this holds.
    pub guard: Option<Node>,
    pub condition: Node,
    pub fail: Node,
    pub pass: Option<Node>,
    pub fields: Vec<(Arc<str>, Node)>,
}

#[derive(Clone, Debug)]
pub struct GateIr {
    pub name: Arc<str>,
    pub requested: Option<RequestedIr>,
    pub checks: Vec<CheckIr>,
    pub statuses: Vec<(Arc<str>, Node)>,
}

/// One traversal of a node's direct children, for shared (`iter`) and
/// mutable (`iter_mut`) access alike.
macro_rules! for_each_child {
    ($kind:expr, $f:ident, $iter:ident, $indexed:ident) => {
        match $kind {
            Kind::Const(_) | Kind::Input(_) | Kind::Let(_) | Kind::Local(_) => {}
            Kind::Field(a, _) | Kind::Not(a) | Kind::Neg(a) | Kind::Test(a, _) => $f(a),
            Kind::MapGet(a, b)
            | Kind::ListGet(a, b)
            | Kind::Arith(_, a, b)
            | Kind::And(a, b)
            | Kind::Or(a, b)
            | Kind::In(_, a, b)
            | Kind::NotIn(_, a, b)
            | Kind::Default(a, b) => {
                $f(a);
                $f(b)
            }
            Kind::If(a, b, c) => {
                $f(a);
                $f(b);
                $f(c)
            }
            Kind::Compare(first, rest) => {
                $f(first);
                rest.$iter().for_each(|(_, n)| $f(n))
            }
            Kind::Call(_, args) | Kind::Text(args) | Kind::List(args) => args.$iter().for_each(|n| $f(n)),
            Kind::Map(entries) => entries.$iter().for_each(|(_, n)| $f(n)),
            Kind::Scan(scan) => {
                $f(borrow!($iter, scan.source));
                scan.filter.$iter().for_each(|n| $f(n));
                scan.key.$iter().for_each(|n| $f(n))
            }
            Kind::Indexed(ix) => ix.$indexed($f),
        }
    };
}

/// `&x` for shared traversal, `&mut x` for mutable traversal.
macro_rules! borrow {
    (iter, $e:expr) => {
        &$e
    };
    (iter_mut, $e:expr) => {
        &mut $e
    };
}

/// Calls `f` on every direct child node (read-only).
pub fn children<'a>(node: &'a Node, f: &mut dyn FnMut(&'a Node)) {
    for_each_child!(&node.kind, f, iter, children)
}

/// Rewrites every direct child node in place.
pub fn children_mut(node: &mut Node, f: &mut dyn FnMut(&mut Node)) {
    for_each_child!(&mut node.kind, f, iter_mut, children_mut)
}

/// Whether `pred` holds for this node or any node below it.
pub fn any_node(node: &Node, pred: &dyn Fn(&Node) -> bool) -> bool {
    if pred(node) {
        return true;
    }
    let mut found = false;
    children(node, &mut |c| {
        if !found && any_node(c, pred) {
            found = true;
        }
    });
    found
}
