//! The syntax tree of a `.cavra` pack. Every node carries the byte span of its
//! source text so that later stages can point diagnostics at it.

use std::fmt;

/// A half-open byte range `start..end` in the source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A `# ...` comment, kept so that `fmt` can put it back.
#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    /// The text after `#`, without the line end.
    pub text: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pack {
    /// `pack NAME` or `module NAME`.
    pub kind: FileKind,
    pub name: Ident,
    /// The `use` lines, in order.
    pub uses: Vec<UseDecl>,
    pub items: Vec<Item>,
    pub comments: Vec<Comment>,
    pub span: Span,
}

/// What a rule file is: a pack (decisions and gates a command runs) or a
/// module (types and lets that packs import).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Pack,
    Module,
}

impl FileKind {
    pub fn keyword(self) -> &'static str {
        match self {
            FileKind::Pack => "pack",
            FileKind::Module => "module",
        }
    }
}

/// `use "common/approval.cavra"` or `use "common/approval.cavra" { Approval, Drill }`.
#[derive(Clone, Debug, PartialEq)]
pub struct UseDecl {
    /// The path as written, relative to the importing file.
    pub path: String,
    /// Where the quoted path is.
    pub path_span: Span,
    /// The names imported; `None` imports everything the module declares.
    pub names: Option<Vec<Ident>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Type(TypeDecl),
    Input(InputDecl),
    Let(LetDecl),
    Decision(DecisionDecl),
    Readiness(ReadinessDecl),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Type(d) => d.span,
            Item::Input(d) => d.span,
            Item::Let(d) => d.span,
            Item::Decision(d) => d.span,
            Item::Readiness(d) => d.span,
        }
    }
}

/// `type Window { start_at: time, owners: list<text> = [] }`
#[derive(Clone, Debug, PartialEq)]
pub struct TypeDecl {
    pub name: Ident,
    pub fields: Vec<FieldDecl>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FieldDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    /// Used when the input document lacks the field.
    pub default: Option<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    pub kind: TypeExprKind,
    /// `T?`: the value may be null or absent.
    pub optional: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TypeExprKind {
    Named(Ident),
    List(Box<TypeExpr>),
    Map(Box<TypeExpr>),
}

/// `input now: time` or `static input policy: Policy`.
#[derive(Clone, Debug, PartialEq)]
pub struct InputDecl {
    /// Static inputs are bound once (`Pack::bind`); the rest per decision.
    pub is_static: bool,
    pub name: Ident,
    pub ty: TypeExpr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LetDecl {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DecisionDecl {
    pub name: Ident,
    pub arms: Vec<Arm>,
    pub otherwise: Option<Otherwise>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Arm {
    pub condition: Expr,
    pub outcome: Outcome,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Otherwise {
    pub outcome: Outcome,
    pub span: Span,
}

/// `suppress maintenance_window reason w.reason with { maintenance_window_id: w.window_id }`
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub action: Ident,
    pub category: Option<Ident>,
    pub reason: Option<Expr>,
    pub fields: Vec<FieldInit>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FieldInit {
    pub name: Ident,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ReadinessDecl {
    pub name: Ident,
    pub requested: Option<Requested>,
    pub checks: Vec<Check>,
    pub statuses: Vec<StatusRule>,
    pub span: Span,
}

/// `requested go_rollback_requested when mode == "promoted" else "..." pass "..."`
#[derive(Clone, Debug, PartialEq)]
pub struct Requested {
    /// With an id, the report always carries this check first.
    pub id: Option<Ident>,
    pub condition: Expr,
    /// The check's message when not requested.
    pub fail: Option<Expr>,
    /// The check's message when requested.
    pub pass: Option<Expr>,
    pub span: Span,
}

/// `check id [when guard]: condition else "failure message" pass "success message" with { ... }`
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub id: Ident,
    /// The check applies only when this holds.
    pub guard: Option<Expr>,
    pub condition: Expr,
    pub fail: Expr,
    pub pass: Option<Expr>,
    pub fields: Vec<FieldInit>,
    pub span: Span,
}

/// `status due_soon when days_until_due <= due_soon_days`: replaces `ready`
/// when every check passes.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusRule {
    pub status: Ident,
    pub condition: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A text literal, possibly with `{expr}` interpolations.
    Text(Vec<TextPart>),
    /// The literal as written (`15`, `2.5`) and its value.
    Number(String),
    Bool(bool),
    Null,
    /// `@2026-05-21T18:00:00Z`, without the `@`.
    Timestamp(String),
    /// `90d`, `1h30m`.
    Duration(String),
    List(Vec<Expr>),
    /// `{ "release-governance": 30, platform: 15 }`; keys are plain text.
    Map(Vec<MapEntry>),
    Name(Ident),
    Field(Box<Expr>, Ident),
    Index(Box<Expr>, Box<Expr>),
    Call(Ident, Vec<Expr>),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `a <= b < c`: a chain of comparisons, each sharing its operand.
    Compare(Box<Expr>, Vec<(CompareOp, Expr)>),
    Test(Box<Expr>, TestOp),
    Quantifier(Box<Quantifier>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    Paren(Box<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct MapEntry {
    /// The key as written: a name or a text literal (whose parts must all be literal).
    pub key: Expr,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TextPart {
    /// Literal text with escapes already resolved.
    Literal(String),
    Interpolation(Expr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    In,
    NotIn,
    Default,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::In => "in",
            BinaryOp::NotIn => "not in",
            BinaryOp::Default => "??",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestOp {
    Exists,
    NotExists,
    Empty,
    NotEmpty,
}

impl TestOp {
    pub fn as_str(self) -> &'static str {
        match self {
            TestOp::Exists => "exists",
            TestOp::NotExists => "not exists",
            TestOp::Empty => "is empty",
            TestOp::NotEmpty => "is not empty",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantKind {
    Any,
    All,
    First,
    Count,
    Filter,
    Max,
    Min,
}

impl QuantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QuantKind::Any => "any",
            QuantKind::All => "all",
            QuantKind::First => "first",
            QuantKind::Count => "count",
            QuantKind::Filter => "filter",
            QuantKind::Max => "max",
            QuantKind::Min => "min",
        }
    }
}

/// `first w in policy.windows where w.start_at <= now`, `max d in drills by d.executed_at`.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantifier {
    pub kind: QuantKind,
    pub var: Ident,
    pub source: Expr,
    pub filter: Option<Expr>,
    pub key: Option<Expr>,
}
