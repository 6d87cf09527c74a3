//! Canonical formatting of a pack (`cavra fmt`).
//!
//! The printer writes exactly the structure of the AST (parentheses are `Paren`
//! nodes, so none are added or dropped), which guarantees that the output
//! parses back to the same tree. Layout rules:
//!
//! * `pack NAME`, a blank line, then the items in source order. Two items are
//!   separated by one blank line when the source had at least one blank line
//!   between them, when they are of different kinds (type, input, let,
//!   decision, readiness), or when either is a block (`type`, `decision`,
//!   `readiness`). Inside blocks, one blank line is kept where the source had
//!   at least one.
//! * Two-space indentation. A type has one field per line; a decision arm is
//!   `when COND => OUTCOME` on one line when that fits in 100 columns,
//!   otherwise the outcome goes on the next line, indented once more (the same
//!   for `otherwise`). A check is `check ID: COND`, then `else`, `pass` and
//!   `with` on their own lines, indented once more.
//! * A `let` whose value is a quantifier with a `where` clause and does not fit
//!   in 100 columns is broken before `where` (indented once), before each
//!   top-level `and` of the clause (indented twice) and before `by`.
//! * Expressions are printed on one line with single spaces around binary
//!   operators and keywords, `, ` between list items, call arguments, map
//!   entries and `with` fields, and no trailing commas. Map keys stay bare or
//!   quoted as written; text is re-escaped (`\\`, `\"`, `\{`, `\}`, `\n`,
//!   `\t`). Two spots where whitespace matters keep a separator: a comma after
//!   a field default followed by a field named `exists` (else `x exists` would
//!   take it), and a space in `@2026-01-01 .field`.
//! * Comments are kept. A comment that follows a line-level node on the same
//!   source line stays there as a trailing comment; any other comment is put on
//!   its own line before the next line-level node (comments inside a node move
//!   before that node); comments after the last node of a block or of the file
//!   stay at its end. Blank lines between consecutive comments, and between a
//!   comment and the node it leads, are kept (at most one).

use crate::ast::*;

/// Lines are kept within this many columns where the layout rules allow it.
const WIDTH: usize = 100;
const INDENT: &str = "  ";

/// Prints `pack` canonically. `source` is the text `pack` was parsed from; it
/// is used to place comments and blank lines.
pub fn format(pack: &Pack, source: &str) -> String {
    let mut f = Formatter::new(pack, source);
    let mut root = f.tree(pack);
    for (i, c) in pack.comments.iter().enumerate() {
        f.place(&mut root, i, c.span.start);
    }
    f.container(&root, 0);
    let mut out = f.lines.join("\n");
    out.push('\n');
    out
}

/// Prints one expression on a single line, as the formatter does (map keys
/// are quoted, as the source is not known).
pub fn format_expr(expr: &Expr) -> String {
    expr_text(expr, "")
}

/// `src` is the text the expression was parsed from, or "" if unknown.
fn expr_text(expr: &Expr, src: &str) -> String {
    let mut out = String::new();
    write_expr(expr, src, &mut out);
    out
}

// ---- the tree of line-level nodes -----------------------------------------------

#[derive(Clone, Copy)]
enum Kind<'a> {
    Root,
    Header(FileKind, &'a Ident),
    Use(&'a UseDecl),
    Type(&'a TypeDecl),
    Input(&'a InputDecl),
    Let(&'a LetDecl),
    Decision(&'a DecisionDecl),
    Readiness(&'a ReadinessDecl),
    Field(&'a FieldDecl),
    Arm(&'a Arm),
    Otherwise(&'a Otherwise),
    Requested(&'a Requested),
    Check(&'a Check),
    Status(&'a StatusRule),
}

impl Kind<'_> {
    /// Items of the same class are kept together without a blank line.
    fn class(&self) -> u8 {
        match self {
            Kind::Type(_) => 1,
            Kind::Input(_) => 2,
            Kind::Let(_) => 3,
            Kind::Decision(_) => 4,
            Kind::Readiness(_) => 5,
            Kind::Use(_) => 6,
            _ => 0,
        }
    }
    fn is_block(&self) -> bool {
        matches!(self, Kind::Type(_) | Kind::Decision(_) | Kind::Readiness(_))
    }
}

struct Node<'a> {
    kind: Kind<'a>,
    start: usize,
    end: usize,
    /// Blocks: the offset just after `{`.
    open_end: Option<usize>,
    children: Vec<Node<'a>>,
    /// Comments printed on their own lines before the node.
    leading: Vec<usize>,
    /// A comment printed at the end of the node's last line.
    trailing: Option<usize>,
    /// Blocks: a comment printed after `{`.
    open_trailing: Option<usize>,
    /// Blocks and the root: comments after the last child.
    dangling: Vec<usize>,
}

impl<'a> Node<'a> {
    fn new(kind: Kind<'a>, start: usize, end: usize) -> Self {
        Node { kind, start, end, open_end: None, children: Vec::new(), leading: Vec::new(), trailing: None, open_trailing: None, dangling: Vec::new() }
    }
}

struct Formatter<'a> {
    source: &'a str,
    comments: &'a [Comment],
    line_starts: Vec<usize>,
    lines: Vec<String>,
}

impl<'a> Formatter<'a> {
    fn new(pack: &'a Pack, source: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        Formatter { source, comments: &pack.comments, line_starts, lines: Vec::new() }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset)
    }

    /// The first offset at or after `pos` that is neither whitespace nor a comment.
    fn skip_trivia(&self, mut pos: usize) -> usize {
        let bytes = self.source.as_bytes();
        while pos < bytes.len() {
            match bytes[pos] {
                b' ' | b'\t' | b'\r' | b'\n' => pos += 1,
                b'#' => {
                    while pos < bytes.len() && bytes[pos] != b'\n' {
                        pos += 1;
                    }
                }
                _ => break,
            }
        }
        pos
    }

    /// The end of a node's text without trailing whitespace and comments, in
    /// case its span includes them.
    fn trim_end(&self, start: usize, mut end: usize) -> usize {
        let bytes = self.source.as_bytes();
        end = end.min(bytes.len());
        loop {
            while end > start && matches!(bytes[end - 1], b' ' | b'\t' | b'\r' | b'\n') {
                end -= 1;
            }
            let i = self.comments.partition_point(|c| c.span.start < end);
            match i.checked_sub(1).map(|i| &self.comments[i]) {
                Some(c) if c.span.start >= start && end <= c.span.end => end = c.span.start,
                _ => return end,
            }
        }
    }

    fn leaf(&self, kind: Kind<'a>, start: usize, end: usize) -> Node<'a> {
        Node::new(kind, start, self.trim_end(start, end))
    }

    /// A block node: `{` follows its name.
    fn block(&self, kind: Kind<'a>, span: Span, name: &Ident) -> Node<'a> {
        let mut node = self.leaf(kind, span.start, span.end);
        let brace = self.skip_trivia(name.span.end);
        let open_end = if self.source.as_bytes().get(brace) == Some(&b'{') { brace + 1 } else { name.span.end };
        node.open_end = Some(open_end.min(span.end));
        node
    }

    fn tree(&self, pack: &'a Pack) -> Node<'a> {
        let mut root = Node::new(Kind::Root, 0, self.source.len());
        let header_start = self.skip_trivia(0).min(pack.name.span.start);
        root.children.push(self.leaf(Kind::Header(pack.kind, &pack.name), header_start, pack.name.span.end));
        for u in &pack.uses {
            root.children.push(self.leaf(Kind::Use(u), u.span.start, u.span.end));
        }
        for item in &pack.items {
            let node = match item {
                Item::Type(d) => {
                    let mut node = self.block(Kind::Type(d), d.span, &d.name);
                    for f in &d.fields {
                        node.children.push(self.leaf(Kind::Field(f), f.span.start, f.span.end));
                    }
                    node
                }
                Item::Input(d) => self.leaf(Kind::Input(d), d.span.start, d.span.end),
                Item::Let(d) => self.leaf(Kind::Let(d), d.span.start, d.span.end),
                Item::Decision(d) => {
                    let mut node = self.block(Kind::Decision(d), d.span, &d.name);
                    for a in &d.arms {
                        node.children.push(self.leaf(Kind::Arm(a), a.span.start, a.span.end));
                    }
                    if let Some(o) = &d.otherwise {
                        node.children.push(self.leaf(Kind::Otherwise(o), o.span.start, o.span.end));
                    }
                    node
                }
                Item::Readiness(d) => {
                    let mut node = self.block(Kind::Readiness(d), d.span, &d.name);
                    if let Some(r) = &d.requested {
                        let start = self.skip_trivia(node.open_end.unwrap_or(d.span.start)).min(r.span.start);
                        node.children.push(self.leaf(Kind::Requested(r), start, r.span.end));
                    }
                    for c in &d.checks {
                        node.children.push(self.leaf(Kind::Check(c), c.span.start, c.span.end));
                    }
                    for s in &d.statuses {
                        node.children.push(self.leaf(Kind::Status(s), s.span.start, s.span.end));
                    }
                    node
                }
            };
            root.children.push(node);
        }
        root
    }

    /// Attaches comment `c` (at offset `p`) inside the body of `node` (the root or a block).
    fn place(&self, node: &mut Node<'a>, c: usize, p: usize) {
        if let Some(i) = node.children.iter().position(|n| n.start < p && p < n.end) {
            let child = &mut node.children[i];
            match child.open_end {
                Some(open_end) if p >= open_end => self.place(child, c, p),
                _ => child.leading.push(c),
            }
            return;
        }
        let line = self.line_of(p);
        if let Some(prev) = node.children.iter_mut().rev().find(|n| n.end <= p) {
            if prev.trailing.is_none() && self.line_of(prev.end) == line {
                prev.trailing = Some(c);
                return;
            }
        } else if let Some(open_end) = node.open_end {
            if node.open_trailing.is_none() && self.line_of(open_end) == line {
                node.open_trailing = Some(c);
                return;
            }
        }
        match node.children.iter_mut().find(|n| n.start >= p) {
            Some(next) => next.leading.push(c),
            None => node.dangling.push(c),
        }
    }

    /// Whether the source has a blank line strictly between the lines of `from` and `to`.
    fn blank_between(&self, from: usize, to: usize) -> bool {
        if from >= to || to > self.source.len() {
            return false;
        }
        let Some(text) = self.source.get(from..to) else { return false };
        let segments: Vec<&str> = text.split('\n').collect();
        segments.len() >= 3 && segments[1..segments.len() - 1].iter().any(|s| s.trim().is_empty())
    }

    /// Where a node's printed text starts in the source: its first leading
    /// comment if that comes before the node, else the node itself.
    fn first_pos(&self, node: &Node) -> usize {
        match node.leading.first() {
            Some(&c) if self.comments[c].span.start < node.start => self.comments[c].span.start,
            _ => node.start,
        }
    }

    fn comment_line(&mut self, indent: usize, c: usize) {
        let line = format!("{}#{}", INDENT.repeat(indent), self.comments[c].text);
        self.lines.push(line);
    }

    fn blank(&mut self) {
        if self.lines.last().is_some_and(|l| !l.is_empty()) {
            self.lines.push(String::new());
        }
    }

    /// Prints the children and dangling comments of the root or a block.
    fn container(&mut self, node: &Node<'a>, indent: usize) {
        let is_root = matches!(node.kind, Kind::Root);
        for (i, child) in node.children.iter().enumerate() {
            if i > 0 {
                let prev = &node.children[i - 1];
                let mut blank = self.blank_between(prev.end, self.first_pos(child));
                if is_root {
                    blank |= matches!(prev.kind, Kind::Header(..)) || prev.kind.is_block() || child.kind.is_block() || prev.kind.class() != child.kind.class();
                }
                if blank {
                    self.blank();
                }
            }
            for (k, &c) in child.leading.iter().enumerate() {
                if k > 0 && self.blank_between(self.comments[child.leading[k - 1]].span.end, self.comments[c].span.start) {
                    self.blank();
                }
                self.comment_line(indent, c);
            }
            if let Some(&last) = child.leading.last() {
                if self.blank_between(self.comments[last].span.end, child.start) {
                    self.blank();
                }
            }
            let next = node.children.get(i + 1);
            self.node(child, next, indent);
            if let Some(c) = child.trailing {
                let text = &self.comments[c].text;
                if let Some(last) = self.lines.last_mut() {
                    last.push_str(" #");
                    last.push_str(text);
                }
            }
        }
        let mut prev_end = node.children.last().map(|n| n.end).or(node.open_end).unwrap_or(0);
        for (j, &c) in node.dangling.iter().enumerate() {
            let start = self.comments[c].span.start;
            let allowed = is_root || j > 0 || !node.children.is_empty();
            if allowed && self.blank_between(prev_end, start) {
                self.blank();
            }
            self.comment_line(indent, c);
            prev_end = self.comments[c].span.end;
        }
    }

    fn push(&mut self, indent: usize, text: String) {
        self.lines.push(format!("{}{}", INDENT.repeat(indent), text));
    }

    fn node(&mut self, node: &Node<'a>, next: Option<&Node<'a>>, indent: usize) {
        match node.kind {
            Kind::Root => self.container(node, indent),
            Kind::Header(kind, name) => self.push(indent, format!("{} {}", kind.keyword(), name.name)),
            Kind::Use(u) => {
                let path: String = u.path.chars().flat_map(|c| if matches!(c, '"' | '\\' | '{' | '}') { vec!['\\', c] } else { vec![c] }).collect();
                let names = match &u.names {
                    Some(names) if names.is_empty() => " {}".to_string(),
                    Some(names) => format!(" {{ {} }}", names.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ")),
                    None => String::new(),
                };
                self.push(indent, format!("use \"{path}\"{names}"));
            }
            Kind::Type(d) => self.block_node(node, indent, format!("type {}", d.name.name)),
            Kind::Decision(d) => self.block_node(node, indent, format!("decision {}", d.name.name)),
            Kind::Readiness(d) => self.block_node(node, indent, format!("readiness {}", d.name.name)),
            Kind::Input(d) => {
                let stat = if d.is_static { "static " } else { "" };
                self.push(indent, format!("{stat}input {}: {}", d.name.name, type_expr_text(&d.ty)));
            }
            Kind::Let(d) => self.let_decl(d, indent),
            Kind::Field(f) => {
                let mut line = format!("{}: {}", f.name.name, type_expr_text(&f.ty));
                if let Some(default) = &f.default {
                    line.push_str(" = ");
                    write_expr(default, self.source, &mut line);
                    // `x exists` would swallow a following field named `exists`.
                    if matches!(next.map(|n| n.kind), Some(Kind::Field(n)) if n.name.name == "exists") {
                        line.push(',');
                    }
                }
                self.push(indent, line);
            }
            Kind::Arm(a) => {
                let head = format!("when {} =>", expr_text(&a.condition, self.source));
                self.head_and_outcome(indent, head, &a.outcome);
            }
            Kind::Otherwise(o) => self.head_and_outcome(indent, "otherwise =>".to_string(), &o.outcome),
            Kind::Requested(r) => {
                let id = r.id.as_ref().map(|i| format!("{} ", i.name)).unwrap_or_default();
                self.push(indent, format!("requested {id}when {}", expr_text(&r.condition, self.source)));
                if let Some(fail) = &r.fail {
                    self.push(indent + 1, format!("else {}", expr_text(fail, self.source)));
                }
                if let Some(pass) = &r.pass {
                    self.push(indent + 1, format!("pass {}", expr_text(pass, self.source)));
                }
            }
            Kind::Check(c) => {
                let guard = c.guard.as_ref().map(|g| format!(" when {}", expr_text(g, self.source))).unwrap_or_default();
                self.push(indent, format!("check {}{guard}: {}", c.id.name, expr_text(&c.condition, self.source)));
                self.push(indent + 1, format!("else {}", expr_text(&c.fail, self.source)));
                if let Some(pass) = &c.pass {
                    self.push(indent + 1, format!("pass {}", expr_text(pass, self.source)));
                }
                if !c.fields.is_empty() {
                    self.push(indent + 1, with_clause(&c.fields, self.source));
                }
            }
            Kind::Status(s) => {
                self.push(indent, format!("status {} when {}", s.status.name, expr_text(&s.condition, self.source)));
            }
        }
    }

    fn block_node(&mut self, node: &Node<'a>, indent: usize, head: String) {
        if node.children.is_empty() && node.dangling.is_empty() && node.open_trailing.is_none() {
            self.push(indent, format!("{head} {{}}"));
            return;
        }
        let mut first = format!("{head} {{");
        if let Some(c) = node.open_trailing {
            first.push_str(" #");
            first.push_str(&self.comments[c].text);
        }
        self.push(indent, first);
        self.container(node, indent + 1);
        self.push(indent, "}".to_string());
    }

    fn head_and_outcome(&mut self, indent: usize, head: String, outcome: &Outcome) {
        let out = outcome_text(outcome, self.source);
        let one = format!("{head} {out}");
        if columns(&one) + INDENT.len() * indent <= WIDTH {
            self.push(indent, one);
        } else {
            self.push(indent, head);
            self.push(indent + 1, out);
        }
    }

    fn let_decl(&mut self, d: &LetDecl, indent: usize) {
        let one = format!("let {} = {}", d.name.name, expr_text(&d.value, self.source));
        if columns(&one) + INDENT.len() * indent <= WIDTH {
            return self.push(indent, one);
        }
        let ExprKind::Quantifier(q) = &d.value.kind else { return self.push(indent, one) };
        let Some(filter) = &q.filter else { return self.push(indent, one) };
        self.push(indent, format!("let {} = {} {} in {}", d.name.name, q.kind.as_str(), q.var.name, expr_text(&q.source, self.source)));
        // The top-level `and`s of the clause form a left-leaning chain.
        let mut conjuncts = Vec::new();
        let mut cur = filter;
        while let ExprKind::Binary(BinaryOp::And, l, r) = &cur.kind {
            conjuncts.push(r.as_ref());
            cur = l;
        }
        conjuncts.push(cur);
        conjuncts.reverse();
        self.push(indent + 1, format!("where {}", expr_text(conjuncts[0], self.source)));
        for c in &conjuncts[1..] {
            self.push(indent + 2, format!("and {}", expr_text(c, self.source)));
        }
        if let Some(key) = &q.key {
            self.push(indent + 1, format!("by {}", expr_text(key, self.source)));
        }
    }
}

fn columns(s: &str) -> usize {
    s.chars().count()
}

// ---- pieces -----------------------------------------------------------------------

/// A type as `fmt` writes it: `list<Window>?`.
pub fn type_expr_text(t: &TypeExpr) -> String {
    let mut s = match &t.kind {
        TypeExprKind::Named(n) => n.name.clone(),
        TypeExprKind::List(inner) => format!("list<{}>", type_expr_text(inner)),
        TypeExprKind::Map(inner) => format!("map<{}>", type_expr_text(inner)),
    };
    if t.optional {
        s.push('?');
    }
    s
}

fn outcome_text(o: &Outcome, src: &str) -> String {
    let mut s = o.action.name.clone();
    if let Some(c) = &o.category {
        s.push(' ');
        s.push_str(&c.name);
    }
    if let Some(r) = &o.reason {
        s.push_str(" reason ");
        write_expr(r, src, &mut s);
    }
    if !o.fields.is_empty() {
        s.push(' ');
        s.push_str(&with_clause(&o.fields, src));
    }
    s
}

fn with_clause(fields: &[FieldInit], src: &str) -> String {
    let mut s = String::from("with { ");
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&f.name.name);
        s.push_str(": ");
        write_expr(&f.value, src, &mut s);
    }
    s.push_str(" }");
    s
}

// ---- expressions ------------------------------------------------------------------

fn write_list(items: &[Expr], src: &str, out: &mut String) {
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_expr(e, src, out);
    }
}

/// Writes `e` exactly as structured. Left-leaning chains (binary operators,
/// comparisons, postfix accesses and tests) are walked iteratively so that long
/// chains do not deepen the recursion.
fn write_expr(e: &Expr, src: &str, out: &mut String) {
    let mut spine: Vec<&Expr> = Vec::new();
    let mut cur = e;
    while let Some(left) = chain_left(cur) {
        spine.push(cur);
        cur = left;
    }
    write_atom(cur, src, out);
    while let Some(node) = spine.pop() {
        match &node.kind {
            ExprKind::Binary(op, _, r) => {
                out.push(' ');
                out.push_str(op.as_str());
                out.push(' ');
                write_expr(r, src, out);
            }
            ExprKind::Compare(_, rest) => {
                for (op, x) in rest {
                    out.push(' ');
                    out.push_str(op.as_str());
                    out.push(' ');
                    write_expr(x, src, out);
                }
            }
            ExprKind::Field(base, name) => {
                // `@2026-01-01 .x`: a timestamp would otherwise swallow the `.x`.
                if matches!(base.kind, ExprKind::Timestamp(_)) {
                    out.push(' ');
                }
                out.push('.');
                out.push_str(&name.name);
            }
            ExprKind::Index(_, index) => {
                out.push('[');
                write_expr(index, src, out);
                out.push(']');
            }
            ExprKind::Test(_, op) => {
                out.push(' ');
                out.push_str(op.as_str());
            }
            _ => unreachable!(),
        }
    }
}

/// The left operand of a left-leaning chain node.
fn chain_left(e: &Expr) -> Option<&Expr> {
    match &e.kind {
        ExprKind::Binary(_, l, _) => Some(l),
        ExprKind::Compare(first, _) => Some(first),
        ExprKind::Field(base, _) | ExprKind::Index(base, _) | ExprKind::Test(base, _) => Some(base),
        _ => None,
    }
}

fn write_atom(e: &Expr, src: &str, out: &mut String) {
    match &e.kind {
        ExprKind::Text(parts) => write_text(parts, src, out),
        ExprKind::Number(raw) | ExprKind::Duration(raw) => out.push_str(raw),
        ExprKind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        ExprKind::Null => out.push_str("null"),
        ExprKind::Timestamp(raw) => {
            out.push('@');
            out.push_str(raw);
        }
        ExprKind::List(items) => {
            out.push('[');
            write_list(items, src, out);
            out.push(']');
        }
        ExprKind::Map(entries) if entries.is_empty() => out.push_str("{}"),
        ExprKind::Map(entries) => {
            out.push_str("{ ");
            for (i, entry) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_key(&entry.key, src, out);
                out.push_str(": ");
                write_expr(&entry.value, src, out);
            }
            out.push_str(" }");
        }
        ExprKind::Name(n) => out.push_str(&n.name),
        ExprKind::Call(name, args) => {
            out.push_str(&name.name);
            out.push('(');
            write_list(args, src, out);
            out.push(')');
        }
        ExprKind::Unary(..) => {
            let mut cur = e;
            while let ExprKind::Unary(op, x) = &cur.kind {
                out.push_str(match op {
                    UnaryOp::Not => "not ",
                    UnaryOp::Neg => "-",
                });
                cur = x;
            }
            write_expr(cur, src, out);
        }
        ExprKind::Quantifier(q) => {
            out.push_str(q.kind.as_str());
            out.push(' ');
            out.push_str(&q.var.name);
            out.push_str(" in ");
            write_expr(&q.source, src, out);
            if let Some(f) = &q.filter {
                out.push_str(" where ");
                write_expr(f, src, out);
            }
            if let Some(k) = &q.key {
                out.push_str(" by ");
                write_expr(k, src, out);
            }
        }
        ExprKind::If(c, t, f) => {
            out.push_str("if ");
            write_expr(c, src, out);
            out.push_str(" then ");
            write_expr(t, src, out);
            out.push_str(" else ");
            write_expr(f, src, out);
        }
        ExprKind::Paren(inner) => {
            out.push('(');
            write_expr(inner, src, out);
            out.push(')');
        }
        // Chains are handled by `write_expr`.
        ExprKind::Binary(..) | ExprKind::Compare(..) | ExprKind::Field(..) | ExprKind::Index(..) | ExprKind::Test(..) => write_expr(e, src, out),
    }
}

/// A map key: bare when it was written bare (`platform: 15`), else quoted.
fn write_key(key: &Expr, src: &str, out: &mut String) {
    if let ExprKind::Text(parts) = &key.kind {
        if let [TextPart::Literal(name)] = parts.as_slice() {
            let is_name = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if is_name && src.get(key.span.start..key.span.end) == Some(name.as_str()) {
                out.push_str(name);
                return;
            }
        }
    }
    write_expr(key, src, out);
}

fn write_text(parts: &[TextPart], src: &str, out: &mut String) {
    out.push('"');
    for part in parts {
        match part {
            TextPart::Literal(s) => {
                for ch in s.chars() {
                    match ch {
                        '\\' => out.push_str("\\\\"),
                        '"' => out.push_str("\\\""),
                        '{' => out.push_str("\\{"),
                        '}' => out.push_str("\\}"),
                        '\n' => out.push_str("\\n"),
                        '\t' => out.push_str("\\t"),
                        other => out.push(other),
                    }
                }
            }
            TextPart::Interpolation(e) => {
                out.push('{');
                write_expr(e, src, out);
                out.push('}');
            }
        }
    }
    out.push('"');
}
