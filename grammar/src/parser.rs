//! pest parser for `cavra.pest` and the builder from pest pairs to the AST.
//! Syntax errors are turned into [`Diagnostic`]s with plain-words "expected" lists.

use crate::ast::*;
use crate::diagnostic::{shorten, Diagnostic, Diagnostics, MAX_QUOTED_CHARS};
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser;
use std::num::NonZeroUsize;
use std::sync::{Once, OnceLock, PoisonError, RwLock};

#[derive(pest_derive::Parser)]
#[grammar = "cavra.pest"]
struct CavraParser;

/// Limits that keep hostile input from exhausting the stack of the
/// recursive-descent parser and of the later (recursive) stages.
const MAX_NESTING: usize = 32;
/// `if`, `not`, unary `-` and quantifiers recurse too; counted per clause.
const MAX_NESTED_WORDS: usize = 64;
/// Operators in one clause (each adds a level to the expression tree).
const MAX_OPERATORS: usize = 200;
/// pest's rule calls allowed per byte of the file. Real text needs 10 to 50
/// (dense lists of numbers are the most), and the nesting limits above keep
/// backtracking from growing with the text, so a file within its byte limit
/// (`read_rule_file`) parses; the bound stops the parser should some text
/// still make it backtrack without end. pest does not memoize.
const STEPS_PER_BYTE: usize = 100;
/// The least step budget of a parse, whatever the file's size.
const MIN_STEPS: usize = 20_000_000;
/// Syntax errors reported per file before giving up.
const MAX_SYNTAX_ERRORS: usize = 20;
/// Error recovery parses the file again after each syntax error (twice:
/// fast, then recording what was expected), each parse running up to the
/// next error. It stops once those parses have run over this many bytes in
/// all, so that a large file with many errors costs a few parses, not forty.
const RECOVERY_BYTES: usize = 4 * 1024 * 1024;

/// The step budget of a parse of `len` bytes.
fn step_budget(len: usize) -> usize {
    len.saturating_mul(STEPS_PER_BYTE).max(MIN_STEPS)
}

/// Parses one pack. `file` is only used to label diagnostics. Every syntax
/// error of the file is reported (up to [`MAX_SYNTAX_ERRORS`], and while
/// re-parsing stays within [`RECOVERY_BYTES`]): after an error, the
/// declaration that holds it is blanked out and the rest is parsed again.
/// A parse that runs out of steps or stack is reported once, with the
/// limit, and not retried.
pub fn parse(file: &str, source: &str) -> Result<Pack, Diagnostics> {
    parse_within(file, source, Budget { steps: step_budget(source.len()), recovery_bytes: RECOVERY_BYTES })
}

/// [`parse`], with every span offset by `start`: for a module placed at
/// `start` in the text that a pack and its modules are checked as one. Call it
/// for text that [`parse`] accepts; an error is reported as [`parse`] would.
pub fn parse_at(file: &str, source: &str, start: usize) -> Result<Pack, Diagnostics> {
    // Leading blanks are whitespace to the grammar: the spans come out offset
    // without a pass over the tree, and the text stays valid.
    let mut placed = " ".repeat(start);
    placed.push_str(source);
    // On an error, the positions that mean something are those of the text alone.
    let mut pack = parse(file, &placed).map_err(|placed_error| parse(file, source).err().unwrap_or(placed_error))?;
    pack.comments.clear();
    Ok(pack)
}

/// What one parse may spend: pest's steps per parse, and the bytes all the
/// parses of error recovery may cover.
#[derive(Clone, Copy)]
struct Budget {
    steps: usize,
    recovery_bytes: usize,
}

/// [`parse`] within `budget` (tests reach the limits with small ones).
fn parse_within(file: &str, source: &str, budget: Budget) -> Result<Pack, Diagnostics> {
    let Budget { steps, recovery_bytes } = budget;
    let lexed = scan(source);
    if let Some(d) = lexed.too_deep {
        return Err(Diagnostics::new(file, source, vec![d]));
    }
    if let Some(d) = header_guard(source) {
        return Err(Diagnostics::new(file, source, vec![d]));
    }
    let mut errors = Vec::new();
    let mut text = source.to_string();
    // Bytes the failed parses ran over (each up to where it failed).
    let mut parsed = 0usize;
    loop {
        match run_pest(&text, steps, false) {
            Ok(mut pairs) if errors.is_empty() => {
                let file_pair = pairs.next().expect("the file rule always yields one pair");
                let mut pack = Builder.file(file_pair);
                pack.comments = lexed.comments;
                return Ok(pack);
            }
            Ok(_) => break,
            Err(e) if limit_reached(&e).is_some() => {
                errors.push(limit_error(&text, &e, steps));
                break;
            }
            Err(e) => {
                parsed = parsed.saturating_add(error_pos(&e));
                // Parse again recording the literal tokens tried at the error
                // ("expected `=>`"): costly, so only once a parse has failed.
                let Some(e) = run_pest(&text, steps, true).err() else { break };
                parsed = parsed.saturating_add(error_pos(&e));
                if limit_reached(&e).is_some() {
                    errors.push(limit_error(&text, &e, steps));
                    break;
                }
                // A bracket never closed explains the first error (later ones follow from it).
                let unclosed_bracket = lexed.unclosed_bracket.filter(|_| errors.is_empty());
                let d = syntax_error(&text, e, lexed.unclosed_text, unclosed_bracket);
                let at = d.span.start;
                errors.push(d);
                match blank_item(&text, at) {
                    Some(next) if errors.len() < MAX_SYNTAX_ERRORS && parsed < recovery_bytes => text = next,
                    _ => break,
                }
            }
        }
    }
    Err(Diagnostics::new(file, source, errors))
}

/// pest's call limit and error detail are process-wide settings that each
/// parse reads when it starts. Parses with the usual settings (the least
/// step budget, no detail) share this lock; one that needs others holds it
/// alone and puts the usual ones back, so concurrent parses (the API's
/// threads, tests) never start with another's settings.
static PEST_SETTINGS: RwLock<()> = RwLock::new(());
static USUAL_SETTINGS: Once = Once::new();

fn run_pest(text: &str, steps: usize, detail: bool) -> Result<pest::iterators::Pairs<'_, Rule>, pest::error::Error<Rule>> {
    USUAL_SETTINGS.call_once(|| {
        let _alone = PEST_SETTINGS.write().unwrap_or_else(PoisonError::into_inner);
        pest::set_call_limit(NonZeroUsize::new(MIN_STEPS));
        pest::set_error_detail(false);
    });
    if steps == MIN_STEPS && !detail {
        let _shared = PEST_SETTINGS.read().unwrap_or_else(PoisonError::into_inner);
        return CavraParser::parse(Rule::file, text);
    }
    /// Puts the usual settings back however the parse ends.
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            pest::set_call_limit(NonZeroUsize::new(MIN_STEPS));
            pest::set_error_detail(false);
        }
    }
    let _alone = PEST_SETTINGS.write().unwrap_or_else(PoisonError::into_inner);
    let _restore = Restore;
    pest::set_call_limit(NonZeroUsize::new(steps));
    pest::set_error_detail(detail);
    CavraParser::parse(Rule::file, text)
}

/// Where a parse failed: as far as it got.
fn error_pos(err: &pest::error::Error<Rule>) -> usize {
    match err.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    }
}

/// pest's limits on one parse.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// The call limit: the step budget.
    Steps,
    /// The native stack left to the parser.
    Stack,
}

/// Which of pest's limits stopped a parse, if one did (pest says so in words).
fn limit_reached(err: &pest::error::Error<Rule>) -> Option<Limit> {
    match &err.variant {
        pest::error::ErrorVariant::CustomError { message } if message.contains("call limit") => Some(Limit::Steps),
        pest::error::ErrorVariant::CustomError { message } if message.contains("stack limit") => Some(Limit::Stack),
        _ => None,
    }
}

/// E0002 for a parse stopped by a limit: which limit, and where the parser
/// had got to (the text there need not be wrong).
fn limit_error(source: &str, err: &pest::error::Error<Rule>, steps: usize) -> Diagnostic {
    let pos = error_pos(err).min(source.len());
    let end = source[pos..].chars().next().map_or(pos, |c| pos + c.len_utf8());
    let span = Span::new(pos, end);
    if limit_reached(err) == Some(Limit::Stack) {
        return Diagnostic::error("E0002", span, "the rule text is too complex to parse: the parser ran out of stack")
            .with_label("the parser had got this far")
            .with_help("split the expression into `let` values");
    }
    Diagnostic::error("E0002", span, format!("the rule text is too complex to parse: the parser gave up after {} steps", thousands(steps)))
        .with_label("the parser had got this far")
        .with_help(format!(
            "a parse may take {STEPS_PER_BYTE} steps per byte of the file (at least {}); simplify the text or split the pack into several packs",
            thousands(MIN_STEPS)
        ))
}

/// `20000000` -> `20,000,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    // ASCII digits: every group of bytes is text.
    let groups: Vec<&str> = digits.as_bytes().rchunks(3).rev().map(|g| std::str::from_utf8(g).unwrap_or_default()).collect();
    groups.join(",")
}

/// A clear error for the commonest first mistake: no `pack NAME` line.
fn header_guard(source: &str) -> Option<Diagnostic> {
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            offset += line.len();
            continue;
        }
        let at = offset + (line.len() - trimmed.len());
        let word: String = trimmed.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if word == "pack" || word == "module" {
            return None;
        }
        // The word, or the one character (of any width) that is there instead.
        let end = at + if word.is_empty() { trimmed.chars().next().map_or(0, char::len_utf8) } else { word.len() };
        return Some(
            Diagnostic::error("E0001", Span::new(at, end), "a rule file must start with `pack NAME`")
                .with_label("expected `pack NAME` before this")
                .with_help("add a first line such as `pack routing`"),
        );
    }
    Some(Diagnostic::error("E0001", Span::new(source.len(), source.len()), "the file is empty: a rule file starts with `pack NAME`"))
}

const ITEM_KEYWORDS: &[&str] = &["use", "type", "input", "static", "let", "decision", "readiness"];

fn starts_item(line: &str) -> bool {
    ITEM_KEYWORDS.iter().any(|k| line.strip_prefix(k).is_some_and(|rest| rest.starts_with(char::is_whitespace)))
}

/// Replaces the declaration around `at` (from the last line that starts a
/// declaration at column 0 to the next one) with spaces, keeping offsets.
/// `None` when there is nothing to skip, so recovery would not progress.
fn blank_item(text: &str, at: usize) -> Option<String> {
    let mut line_starts = vec![0];
    line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    // An error right at a declaration's first keyword means the one before it
    // is unfinished (`let a = 1 +` then `decision ...`): blank that one.
    let item_start = line_starts.iter().rev().find(|&&s| s < at && starts_item(&text[s..]))?;
    let item_end = line_starts.iter().find(|&&s| s >= at && s > *item_start && starts_item(&text[s..])).copied().unwrap_or(text.len());
    // Byte for byte, so that the offsets of later errors stay those of the source.
    let blanked: String = text[*item_start..item_end].bytes().map(|b| if b == b'\n' { '\n' } else { ' ' }).collect();
    Some(format!("{}{}{}", &text[..*item_start], blanked, &text[item_end..]))
}

/// What one lexical pass over the source finds: the comments (a `#` outside
/// text literals runs to the end of the line), the opening quote of a text
/// literal that is never closed, and whether the text nests too deeply.
struct Lexed {
    comments: Vec<Comment>,
    unclosed_text: Option<usize>,
    /// The innermost `{`, `[` or `(` (outside text) still open at the end of the file.
    unclosed_bracket: Option<(usize, u8)>,
    too_deep: Option<Diagnostic>,
}

/// The lexical pass. It bounds how deeply the parser will recurse: brackets
/// and text interpolations (tracked with a mode stack), recursion-driving
/// words (`if`, `not`, quantifiers, unary `-`) and operators per clause.
fn scan(source: &str) -> Lexed {
    #[derive(PartialEq)]
    enum Mode {
        /// An opening bracket and where it is.
        Bracket(usize, u8),
        Text(usize),
        Interpolation,
    }
    let mut stack: Vec<Mode> = Vec::new();
    // The first bracket a closer of another kind left open.
    let mut mismatched: Option<(usize, u8)> = None;
    let mut comments = Vec::new();
    let mut words = 0usize;
    // Operators (and postfix `.x`, `[i]`) in the current clause: each adds a
    // level to the expression tree. An upper bound: `[` of a list counts too.
    let mut operators = 0usize;
    let mut prev_significant = b'=';
    let bytes = source.as_bytes();
    let mut i = 0;
    let too_deep = |i: usize, what: &str| {
        Lexed {
            comments: Vec::new(),
            unclosed_text: None,
            unclosed_bracket: None,
            too_deep: Some(Diagnostic::error("E0002", Span::new(i, i + 1), format!("the rule text is nested too deeply ({what})"))
                .with_help(format!("split the expression into `let` values (at most {MAX_NESTING} levels of brackets and {MAX_NESTED_WORDS} nested `if`, `not` or quantifiers per clause)"))),
        }
    };
    while i < bytes.len() {
        let b = bytes[i];
        if matches!(stack.last(), Some(Mode::Text(_))) {
            match b {
                b'\\' => i += 1,
                b'"' => {
                    stack.pop();
                }
                b'{' => stack.push(Mode::Interpolation),
                _ => {}
            }
            i += 1;
            if stack.len() > MAX_NESTING {
                return too_deep(i - 1, "text interpolations");
            }
            continue;
        }
        match b {
            b'#' => {
                let start = i;
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                let text = source[start + 1..i].trim_end();
                comments.push(Comment { text: text.to_string(), span: Span::new(start, start + 1 + text.len()) });
                continue;
            }
            b'"' => stack.push(Mode::Text(i)),
            b'(' | b'{' => stack.push(Mode::Bracket(i, b)),
            b'[' => {
                operators += 1;
                stack.push(Mode::Bracket(i, b));
            }
            b')' | b']' | b'}' => {
                // A closer of another kind leaves the bracket open before it
                // unclosed: that one is the mistake (`( ... }`).
                if let Some(Mode::Bracket(at, open)) = stack.last() {
                    if closer(*open) != b {
                        mismatched = mismatched.or(Some((*at, *open)));
                        stack.pop();
                    }
                }
                stack.pop();
            }
            b'-' if b"([{,=<>+-*/%?:!".contains(&prev_significant) => words += 1,
            // Timestamps and numbers hold `-`, `:`, `.` and `+` that are not operators.
            b'@' | b'0'..=b'9' => {
                let in_token: &[u8] = if b == b'@' { b":.+-" } else { b"." };
                while i + 1 < bytes.len() && (bytes[i + 1].is_ascii_alphanumeric() || in_token.contains(&bytes[i + 1])) {
                    i += 1;
                }
                prev_significant = b'0';
                i += 1;
                continue;
            }
            b'=' if bytes.get(i + 1) == Some(&b'>') => i += 1,
            b'=' | b'!' | b'<' | b'>' | b'?' if bytes.get(i + 1).is_some_and(|n| *n == b'=' || *n == b'?') => {
                operators += 1;
                i += 1;
            }
            b'<' | b'>' | b'+' | b'-' | b'*' | b'/' | b'%' | b'.' => operators += 1,
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                match &source[start..i] {
                    "if" | "any" | "all" | "first" | "count" | "filter" | "max" | "min" => words += 1,
                    "not" => {
                        words += 1;
                        operators += 1;
                    }
                    "and" | "or" | "in" | "is" | "exists" => operators += 1,
                    // Words that start a new clause: what came before is a sibling, not a parent.
                    "when" | "otherwise" | "check" | "status" | "requested" | "let" | "type" | "input" | "decision" | "readiness" => {
                        words = 0;
                        operators = 0;
                    }
                    _ => {}
                }
                prev_significant = b'a';
                if words > MAX_NESTED_WORDS {
                    return too_deep(start, "`if`, `not` or quantifiers");
                }
                continue;
            }
            _ => {}
        }
        if !b.is_ascii_whitespace() {
            prev_significant = b;
        }
        if stack.len() > MAX_NESTING {
            return too_deep(i, "brackets");
        }
        if words > MAX_NESTED_WORDS {
            return too_deep(i, "`-` signs");
        }
        if operators > MAX_OPERATORS {
            return Lexed {
                comments: Vec::new(),
                unclosed_text: None,
                unclosed_bracket: None,
                too_deep: Some(
                    Diagnostic::error("E0002", Span::new(i, i + 1), format!("this clause has more than {MAX_OPERATORS} operators"))
                        .with_help("split the expression into `let` values"),
                ),
            };
        }
        i += 1;
    }
    let unclosed_text = stack.iter().find_map(|m| if let Mode::Text(at) = m { Some(*at) } else { None });
    let unclosed_bracket = mismatched.or_else(|| stack.iter().rev().find_map(|m| if let Mode::Bracket(at, b) = m { Some((*at, *b)) } else { None }));
    Lexed { comments, unclosed_text, unclosed_bracket, too_deep: None }
}

fn pratt() -> &'static PrattParser<Rule> {
    static PRATT: OnceLock<PrattParser<Rule>> = OnceLock::new();
    PRATT.get_or_init(|| {
        PrattParser::new()
            .op(Op::infix(Rule::op_or, Assoc::Left))
            .op(Op::infix(Rule::op_and, Assoc::Left))
            .op(Op::prefix(Rule::op_not))
            .op(Op::infix(Rule::op_eq, Assoc::Left)
                | Op::infix(Rule::op_ne, Assoc::Left)
                | Op::infix(Rule::op_lt, Assoc::Left)
                | Op::infix(Rule::op_le, Assoc::Left)
                | Op::infix(Rule::op_gt, Assoc::Left)
                | Op::infix(Rule::op_ge, Assoc::Left)
                | Op::infix(Rule::op_in, Assoc::Left)
                | Op::infix(Rule::op_not_in, Assoc::Left))
            .op(Op::infix(Rule::op_default, Assoc::Left))
            .op(Op::infix(Rule::op_add, Assoc::Left) | Op::infix(Rule::op_sub, Assoc::Left))
            .op(Op::infix(Rule::op_mul, Assoc::Left) | Op::infix(Rule::op_div, Assoc::Left) | Op::infix(Rule::op_rem, Assoc::Left))
            .op(Op::prefix(Rule::op_neg))
    })
}

/// The span of a pair without the whitespace and comments pest includes when
/// a trailing optional or repetition matched nothing: the end of the last
/// child, extended over any literal tokens (`}`, `)`) that follow it.
fn span_of(pair: &Pair<Rule>) -> Span {
    let s = pair.as_span();
    let (start, end) = (s.start(), s.end());
    let bytes = s.get_input().as_bytes();
    // Ending on a token (not whitespace, and not a comment running to the end
    // of the input): nothing to trim.
    if end > start && end < bytes.len() && !matches!(bytes[end - 1], b' ' | b'\t' | b'\r' | b'\n') {
        return Span::new(start, end);
    }
    let Some(last) = pair.clone().into_inner().last() else { return Span::new(start, end) };
    let mut i = span_of(&last).end;
    let mut true_end = i;
    while i < end {
        match bytes[i] {
            b'#' => {
                while i < end && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            _ => {
                i += 1;
                true_end = i;
            }
        }
    }
    Span::new(start, true_end)
}

struct Builder;

impl Builder {
    fn children<'i>(&mut self, pair: Pair<'i, Rule>) -> Vec<Pair<'i, Rule>> {
        inner(pair).collect()
    }

    fn file(&mut self, pair: Pair<Rule>) -> Pack {
        let span = span_of(&pair);
        let mut name = None;
        let mut kind = FileKind::Pack;
        let mut uses = Vec::new();
        let mut items = Vec::new();
        for p in self.children(pair) {
            match p.as_rule() {
                Rule::pack_header | Rule::module_header => {
                    if p.as_rule() == Rule::module_header {
                        kind = FileKind::Module;
                    }
                    let kids = self.children(p);
                    name = Some(ident(&kids[1]));
                }
                Rule::use_decl => uses.push(self.use_decl(p)),
                Rule::type_decl => items.push(Item::Type(self.type_decl(p))),
                Rule::input_decl => items.push(Item::Input(self.input_decl(p))),
                Rule::let_decl => items.push(Item::Let(self.let_decl(p))),
                Rule::decision_decl => items.push(Item::Decision(self.decision(p))),
                Rule::readiness_decl => items.push(Item::Readiness(self.readiness(p))),
                _ => {}
            }
        }
        Pack { kind, name: name.expect("grammar requires a pack header"), uses, items, comments: Vec::new(), span }
    }

    fn use_decl(&mut self, pair: Pair<Rule>) -> UseDecl {
        let span = span_of(&pair);
        let kids = self.children(pair);
        let path_pair = &kids[1];
        // A path is literal text; one with `{...}` is kept as written, and the
        // engine refuses it with its position.
        let parts = text_parts(path_pair.clone());
        let path = if parts.iter().all(|p| matches!(p, TextPart::Literal(_))) {
            parts.into_iter().filter_map(|p| if let TextPart::Literal(text) = p { Some(text) } else { None }).collect()
        } else {
            path_pair.as_str().trim_matches('"').to_string()
        };
        let names = kids.get(2).map(|names| inner(names.clone()).filter(|p| p.as_rule() == Rule::ident).map(|p| ident(&p)).collect());
        UseDecl { path, path_span: span_of(path_pair), names, span }
    }

    fn type_decl(&mut self, pair: Pair<Rule>) -> TypeDecl {
        let span = span_of(&pair);
        let kids = self.children(pair);
        let name = ident(&kids[1]);
        let fields = kids[2..]
            .iter()
            .filter(|p| p.as_rule() == Rule::field_decl)
            .map(|p| {
                let fspan = span_of(p);
                let parts = self.children(p.clone());
                FieldDecl { name: ident(&parts[0]), ty: self.type_expr(parts[1].clone()), default: parts.get(2).map(|e| self.expr(e.clone())), span: fspan }
            })
            .collect();
        TypeDecl { name, fields, span }
    }

    fn type_expr(&mut self, pair: Pair<Rule>) -> TypeExpr {
        let span = span_of(&pair);
        let kids = self.children(pair);
        let optional = kids.iter().any(|p| p.as_rule() == Rule::optional_mark);
        let head = kids[0].clone();
        let kind = match head.as_rule() {
            Rule::list_type => {
                let inner = self.children(head);
                TypeExprKind::List(Box::new(self.type_expr(inner[1].clone())))
            }
            Rule::map_type => {
                let inner = self.children(head);
                TypeExprKind::Map(Box::new(self.type_expr(inner[1].clone())))
            }
            _ => {
                let inner = self.children(head);
                TypeExprKind::Named(ident(&inner[0]))
            }
        };
        TypeExpr { kind, optional, span }
    }

    fn input_decl(&mut self, pair: Pair<Rule>) -> InputDecl {
        let span = span_of(&pair);
        let kids = self.children(pair);
        let is_static = kids[0].as_rule() == Rule::static_mark;
        let rest = if is_static { &kids[2..] } else { &kids[1..] };
        InputDecl { is_static, name: ident(&rest[0]), ty: self.type_expr(rest[1].clone()), span }
    }

    fn let_decl(&mut self, pair: Pair<Rule>) -> LetDecl {
        let span = span_of(&pair);
        let kids = self.children(pair);
        LetDecl { name: ident(&kids[1]), value: self.expr(kids[2].clone()), span }
    }

    fn decision(&mut self, pair: Pair<Rule>) -> DecisionDecl {
        let span = span_of(&pair);
        let kids = self.children(pair);
        let name = ident(&kids[1]);
        let mut arms = Vec::new();
        let mut otherwise = None;
        for p in &kids[2..] {
            let aspan = span_of(p);
            match p.as_rule() {
                Rule::arm => {
                    let parts = self.children(p.clone());
                    arms.push(Arm { condition: self.expr(parts[1].clone()), outcome: self.outcome(parts[2].clone()), span: aspan });
                }
                Rule::otherwise_arm => {
                    let parts = self.children(p.clone());
                    otherwise = Some(Otherwise { outcome: self.outcome(parts[1].clone()), span: aspan });
                }
                _ => {}
            }
        }
        DecisionDecl { name, arms, otherwise, span }
    }

    fn outcome(&mut self, pair: Pair<Rule>) -> Outcome {
        let span = span_of(&pair);
        let mut out = Outcome { action: ident(&pair), category: None, reason: None, fields: Vec::new(), span };
        for p in self.children(pair) {
            match p.as_rule() {
                Rule::action => out.action = ident(&p),
                Rule::category => out.category = Some(ident(&p)),
                Rule::reason_clause => {
                    let parts = self.children(p);
                    out.reason = Some(self.expr(parts[1].clone()));
                }
                Rule::with_clause => out.fields = self.with_clause(p),
                _ => {}
            }
        }
        out
    }

    fn with_clause(&mut self, pair: Pair<Rule>) -> Vec<FieldInit> {
        self.children(pair)
            .into_iter()
            .filter(|p| p.as_rule() == Rule::field_init)
            .map(|p| {
                let parts = self.children(p);
                FieldInit { name: ident(&parts[0]), value: self.expr(parts[1].clone()) }
            })
            .collect()
    }

    fn readiness(&mut self, pair: Pair<Rule>) -> ReadinessDecl {
        let span = span_of(&pair);
        let kids = self.children(pair);
        let mut decl = ReadinessDecl { name: ident(&kids[1]), requested: None, checks: Vec::new(), statuses: Vec::new(), span };
        for p in &kids[2..] {
            let pspan = span_of(p);
            let parts = self.children(p.clone());
            match p.as_rule() {
                Rule::requested_clause => {
                    let mut requested = Requested { id: None, condition: Expr { kind: ExprKind::Null, span: pspan }, fail: None, pass: None, span: pspan };
                    for part in &parts[1..] {
                        match part.as_rule() {
                            Rule::ident => requested.id = Some(ident(part)),
                            Rule::expr => requested.condition = self.expr(part.clone()),
                            Rule::else_clause => requested.fail = Some(clause_expr(part.clone())),
                            Rule::pass_clause => requested.pass = Some(clause_expr(part.clone())),
                            _ => {}
                        }
                    }
                    decl.requested = Some(requested);
                }
                Rule::check_decl => {
                    // id, [guard], condition, `else`, message, [pass], [with]
                    let guard = parts.get(2).filter(|p| p.as_rule() == Rule::check_guard).cloned();
                    let at = if guard.is_some() { 3 } else { 2 };
                    let mut check = Check {
                        id: ident(&parts[1]),
                        guard: guard.map(clause_expr),
                        condition: self.expr(parts[at].clone()),
                        fail: self.expr(parts[at + 2].clone()),
                        pass: None,
                        fields: Vec::new(),
                        span: pspan,
                    };
                    for extra in &parts[at + 3..] {
                        match extra.as_rule() {
                            Rule::pass_clause => {
                                let inner = self.children(extra.clone());
                                check.pass = Some(self.expr(inner[1].clone()));
                            }
                            Rule::with_clause => check.fields = self.with_clause(extra.clone()),
                            _ => {}
                        }
                    }
                    decl.checks.push(check);
                }
                Rule::status_rule => decl.statuses.push(StatusRule { status: ident(&parts[1]), condition: self.expr(parts[3].clone()), span: pspan }),
                _ => {}
            }
        }
        decl
    }

    fn expr(&mut self, pair: Pair<Rule>) -> Expr {
        debug_assert_eq!(pair.as_rule(), Rule::expr);
        sub_expr(pair)
    }
}

fn build_pratt<'i>(pairs: impl Iterator<Item = Pair<'i, Rule>>) -> Expr {
    pratt()
        .map_primary(|p| operand(p))
        .map_prefix(|op, rhs| {
            let span = span_of(&op).to(rhs.span);
            let op = if op.as_rule() == Rule::op_not { UnaryOp::Not } else { UnaryOp::Neg };
            Expr { kind: ExprKind::Unary(op, Box::new(rhs)), span }
        })
        .map_infix(|lhs, op, rhs| {
            let span = lhs.span.to(rhs.span);
            let cmp = match op.as_rule() {
                Rule::op_eq => Some(CompareOp::Eq),
                Rule::op_ne => Some(CompareOp::Ne),
                Rule::op_lt => Some(CompareOp::Lt),
                Rule::op_le => Some(CompareOp::Le),
                Rule::op_gt => Some(CompareOp::Gt),
                Rule::op_ge => Some(CompareOp::Ge),
                _ => None,
            };
            if let Some(cmp) = cmp {
                // `a <= b < c` arrives as `(a <= b) < c`: extend the chain.
                return match lhs.kind {
                    ExprKind::Compare(first, mut rest) => {
                        rest.push((cmp, rhs));
                        Expr { kind: ExprKind::Compare(first, rest), span }
                    }
                    _ => Expr { kind: ExprKind::Compare(Box::new(lhs), vec![(cmp, rhs)]), span },
                };
            }
            let op = match op.as_rule() {
                Rule::op_or => BinaryOp::Or,
                Rule::op_and => BinaryOp::And,
                Rule::op_in => BinaryOp::In,
                Rule::op_not_in => BinaryOp::NotIn,
                Rule::op_default => BinaryOp::Default,
                Rule::op_add => BinaryOp::Add,
                Rule::op_sub => BinaryOp::Sub,
                Rule::op_mul => BinaryOp::Mul,
                Rule::op_div => BinaryOp::Div,
                _ => BinaryOp::Rem,
            };
            Expr { kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), span }
        })
        .parse(pairs)
}

/// The expression of a `keyword EXPR` clause (`else ...`, `pass ...`, `when ...`).
fn clause_expr(pair: Pair<Rule>) -> Expr {
    sub_expr(inner(pair).find(|p| p.as_rule() == Rule::expr).expect("a clause has an expression"))
}

/// Children, without the punctuation rules (`arrow`, `comma`, ...).
fn inner(pair: Pair<Rule>) -> impl Iterator<Item = Pair<Rule>> {
    pair.into_inner().filter(|p| !matches!(p.as_rule(), Rule::arrow | Rule::comma | Rule::close_paren | Rule::close_bracket | Rule::close_brace))
}

fn sub_expr(pair: Pair<Rule>) -> Expr {
    build_pratt(inner(pair))
}

fn operand(pair: Pair<Rule>) -> Expr {
    let mut parts = inner(pair);
    let mut expr = primary(parts.next().expect("operand has a primary"));
    for post in parts {
        let span = expr.span.to(span_of(&post));
        let kind = match post.as_rule() {
            Rule::field_access => {
                let name = inner(post).next().expect("field name");
                ExprKind::Field(Box::new(expr), ident(&name))
            }
            Rule::index_access => {
                let index = sub_expr(inner(post).next().expect("index expr"));
                ExprKind::Index(Box::new(expr), Box::new(index))
            }
            Rule::test_exists => ExprKind::Test(Box::new(expr), TestOp::Exists),
            Rule::test_not_exists => ExprKind::Test(Box::new(expr), TestOp::NotExists),
            Rule::test_empty => ExprKind::Test(Box::new(expr), TestOp::Empty),
            _ => ExprKind::Test(Box::new(expr), TestOp::NotEmpty),
        };
        expr = Expr { kind, span };
    }
    expr
}

fn primary(pair: Pair<Rule>) -> Expr {
    let span = span_of(&pair);
    let kind = match pair.as_rule() {
        Rule::paren => ExprKind::Paren(Box::new(sub_expr(inner(pair).next().expect("paren expr")))),
        Rule::list_literal => ExprKind::List(inner(pair).map(sub_expr).collect()),
        Rule::map_literal => ExprKind::Map(
            inner(pair)
                .map(|entry| {
                    let mut parts = inner(entry);
                    let key = parts.next().expect("map key");
                    let key = if key.as_rule() == Rule::text {
                        primary(key)
                    } else {
                        Expr { kind: ExprKind::Text(vec![TextPart::Literal(key.as_str().to_string())]), span: span_of(&key) }
                    };
                    MapEntry { key, value: sub_expr(parts.next().expect("map value")) }
                })
                .collect(),
        ),
        Rule::name => {
            let mut parts = inner(pair);
            let name = ident(&parts.next().expect("a name"));
            match parts.next() {
                Some(args) => ExprKind::Call(name, inner(args).map(sub_expr).collect()),
                None => ExprKind::Name(name),
            }
        }
        Rule::if_expr => {
            let parts: Vec<_> = inner(pair).filter(|p| p.as_rule() == Rule::expr).map(sub_expr).collect();
            let mut it = parts.into_iter();
            let (c, t, e) = (it.next(), it.next(), it.next());
            ExprKind::If(Box::new(c.expect("if condition")), Box::new(t.expect("then branch")), Box::new(e.expect("else branch")))
        }
        Rule::quantifier => {
            let mut kind = QuantKind::Any;
            let mut var = None;
            let mut source = None;
            let mut filter = None;
            let mut key = None;
            for p in inner(pair) {
                match p.as_rule() {
                    Rule::quant_kind => {
                        kind = match p.as_str() {
                            "any" => QuantKind::Any,
                            "all" => QuantKind::All,
                            "first" => QuantKind::First,
                            "count" => QuantKind::Count,
                            "filter" => QuantKind::Filter,
                            "max" => QuantKind::Max,
                            _ => QuantKind::Min,
                        }
                    }
                    Rule::ident => var = Some(ident(&p)),
                    Rule::operand => source = Some(operand(p)),
                    Rule::where_clause => filter = inner(p).find(|x| x.as_rule() == Rule::expr).map(sub_expr),
                    Rule::by_clause => key = inner(p).find(|x| x.as_rule() == Rule::expr).map(sub_expr),
                    _ => {}
                }
            }
            ExprKind::Quantifier(Box::new(Quantifier { kind, var: var.expect("quantifier variable"), source: source.expect("quantifier source"), filter, key }))
        }
        Rule::timestamp => ExprKind::Timestamp(pair.as_str()[1..].to_string()),
        Rule::duration => ExprKind::Duration(pair.as_str().to_string()),
        Rule::number => ExprKind::Number(pair.as_str().to_string()),
        Rule::kw_true => ExprKind::Bool(true),
        Rule::kw_false => ExprKind::Bool(false),
        Rule::kw_null => ExprKind::Null,
        Rule::text => ExprKind::Text(text_parts(pair)),
        other => unreachable!("unexpected primary {other:?}"),
    };
    Expr { kind, span }
}

fn text_parts(pair: Pair<Rule>) -> Vec<TextPart> {
    let mut parts: Vec<TextPart> = Vec::new();
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::text_chunk => {
                let s = unescape(p.as_str());
                match parts.last_mut() {
                    Some(TextPart::Literal(prev)) => prev.push_str(&s),
                    _ => parts.push(TextPart::Literal(s)),
                }
            }
            Rule::text_interp => {
                if let Some(e) = inner(p).find(|x| x.as_rule() == Rule::expr) {
                    parts.push(TextPart::Interpolation(sub_expr(e)));
                }
            }
            _ => {}
        }
    }
    parts
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The text of an identifier-like pair (an `ident`, or the first one inside).
fn ident(pair: &Pair<Rule>) -> Ident {
    let target = if matches!(pair.as_rule(), Rule::ident | Rule::field_name) {
        pair.clone()
    } else {
        pair.clone().into_inner().flatten().find(|p| matches!(p.as_rule(), Rule::ident | Rule::field_name)).unwrap_or_else(|| pair.clone())
    };
    Ident { name: target.as_str().to_string(), span: span_of(&target) }
}

// ---- syntax errors ------------------------------------------------------------

/// The bracket that closes `open`.
fn closer(open: u8) -> u8 {
    match open {
        b'{' => b'}',
        b'[' => b']',
        _ => b')',
    }
}

/// The diagnostic of a parse error. When a bracket opened before the error is
/// never closed, that is the mistake: the diagnostic points at the bracket,
/// with a second label where the parser gave up.
fn syntax_error(source: &str, err: pest::error::Error<Rule>, unclosed_text: Option<usize>, unclosed_bracket: Option<(usize, u8)>) -> Diagnostic {
    let pos = error_pos(&err);
    let d = parse_error(source, err, unclosed_text);
    match unclosed_bracket {
        Some((open, bracket)) if open <= pos && d.message != "this text is never closed" => {
            let close = closer(bracket) as char;
            Diagnostic::error("E0001", Span::new(open, open + 1), format!("this `{}` is never closed", bracket as char))
                .with_label("opened here")
                .with_secondary(d.span, format!("the parser gave up here: {}", d.message))
                .with_help(format!("close it with `{close}`"))
        }
        _ => d,
    }
}

fn parse_error(source: &str, err: pest::error::Error<Rule>, unclosed_text: Option<usize>) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    let pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    if pos >= source.trim_end().len() {
        if let Some(quote) = unclosed_text {
            return Diagnostic::error("E0001", Span::new(quote, quote + 1), "this text is never closed")
                .with_label("text starts here")
                .with_help("end it with `\"`; write a literal `{` as `\\{`");
        }
    }
    let found = found_token(source, pos);
    let end = (pos + found.len().max(1)).min(source.len());
    let mut expected = match &err.variant {
        ErrorVariant::ParsingError { positives, .. } => positives.iter().filter_map(|r| describe(*r)).collect::<Vec<_>>(),
        // Limits are reported by `limit_error` before this is called.
        ErrorVariant::CustomError { .. } => vec![],
    };
    if let Some(attempts) = err.parse_attempts() {
        for token in attempts.expected_tokens() {
            if let Some(words) = punctuation(&token.to_string()) {
                expected.push(words);
            }
        }
    }
    // `{` starts a map literal and `\{` an escape: already "an expression" / "text".
    if expected.contains(&"an expression") || expected.contains(&"text") {
        expected.retain(|e| *e != "`{`" && *e != "`}`");
    }
    expected.sort();
    expected.dedup();
    // A token can be a 10 MB word: quote a prefix.
    let found_words = if found.is_empty() { "the end of the file".to_string() } else { format!("`{}`", shorten(&found, MAX_QUOTED_CHARS)) };
    let message = if expected.is_empty() { format!("unexpected {found_words}") } else { format!("expected {}, found {found_words}", join_or(&expected)) };
    let mut d = Diagnostic::error("E0001", Span::new(pos, end), message).with_label(if expected.is_empty() {
        "not expected here".to_string()
    } else {
        format!("expected {}", join_or(&expected))
    });
    let expects_name = expected.contains(&"a name");
    if let Some(help) = syntax_help(source, pos, &found, expects_name) {
        d = d.with_help(help);
    }
    d
}

/// The text before ends with a keyword that is followed by a new name.
fn declares_name(before: &str) -> bool {
    let last = before.rsplit(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or("");
    matches!(last, "let" | "input" | "type" | "decision" | "readiness" | "check" | "pack")
}

/// The current decision already has its `otherwise` arm.
fn after_otherwise(before: &str) -> bool {
    let decision = before.rfind("decision").map(|i| &before[i..]).unwrap_or(before);
    decision.contains("otherwise")
}

/// Every word of the language: the reserved ones and those
/// that are keywords only where a clause or header puts them (`module`,
/// `use`, `pass`, `status`, `requested`, `by` and the quantifiers). For
/// tools, such as completion in `cavra lsp`.
pub const KEYWORDS: &[&str] = &[
    "pack",
    "module",
    "use",
    "type",
    "input",
    "static",
    "let",
    "decision",
    "readiness",
    "when",
    "otherwise",
    "reason",
    "with",
    "check",
    "else",
    "pass",
    "status",
    "requested",
    "and",
    "or",
    "not",
    "in",
    "is",
    "empty",
    "exists",
    "where",
    "by",
    "if",
    "then",
    "true",
    "false",
    "null",
    "first",
    "any",
    "all",
    "count",
    "filter",
    "max",
    "min",
];

/// The words of [`KEYWORDS`] that are keywords only where a header or clause
/// puts them; the others can never be names (the grammar's `keyword` rule).
const CONTEXTUAL: &[&str] = &["module", "use", "pass", "status", "requested", "by", "first", "any", "all", "count", "filter", "max", "min"];

fn is_reserved(word: &str) -> bool {
    KEYWORDS.contains(&word) && !CONTEXTUAL.contains(&word)
}

fn syntax_help(source: &str, pos: usize, found: &str, expects_name: bool) -> Option<String> {
    let before = source[..pos.min(source.len())].trim_end();
    match found {
        "=" => Some("compare with `==`; `=` only appears in `let name = ...` and field defaults".into()),
        "&&" | "&" => Some("write `and`".into()),
        "||" | "|" => Some("write `or`".into()),
        "!" => Some("write `not`".into()),
        "'" => Some("text is written in double quotes: \"...\"".into()),
        "}" if before.ends_with("=>") => Some("an arm needs an outcome after `=>`, e.g. `deliver`".into()),
        "when" if after_otherwise(before) => Some("`otherwise` must be the last arm of a decision".into()),
        w if expects_name && is_reserved(w) && declares_name(before) => Some(format!("`{w}` is a keyword and cannot be used as a name")),
        "@" => Some("write a timestamp as @2026-05-21, @2026-05-21T18:00:00Z or @2026-05-21T20:00:00+02:00".into()),
        "\\" => Some("the escapes in text are \\\" \\\\ \\n \\t \\r \\{ \\}".into()),
        t if t.starts_with(|c: char| c.is_ascii_digit()) && t.contains(|c: char| c.is_ascii_alphabetic() || c == '.') => {
            Some("a duration is whole numbers with the units w, d, h, m, s: 90d, 1h30m, 45s".into())
        }
        _ if source.trim_start().starts_with("pack") || pos > 0 => None,
        _ => Some("a rule file starts with `pack NAME`".into()),
    }
}

/// The token at `pos` as the user sees it: a word, an operator or one character.
fn found_token(source: &str, pos: usize) -> String {
    let rest = &source[pos.min(source.len())..];
    let mut chars = rest.chars();
    let Some(first) = chars.next() else { return String::new() };
    if first.is_ascii_digit() {
        return rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.').collect();
    }
    if first.is_alphanumeric() || first == '_' {
        return rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    }
    for op in ["=>", "==", "!=", "<=", ">=", "??", "&&", "||"] {
        if rest.starts_with(op) {
            return op.to_string();
        }
    }
    first.to_string()
}

fn punctuation(token: &str) -> Option<&'static str> {
    Some(match token {
        "=>" => "`=>`",
        ")" => "`)`",
        "]" => "`]`",
        "}" => "`}`",
        "{" => "`{`",
        ":" => "`:`",
        "," => "`,`",
        // The characters the (silent) operator lookahead tries.
        "=" | "!" | "<" | ">" | "?" | "+" | "*" | "/" | "%" => "an operator",
        _ => return None,
    })
}

fn join_or(items: &[&'static str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Plain words for a grammar rule in an "expected ..." list; `None` hides it.
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "the end of the file",
        Rule::pack_header | Rule::kw_pack => "`pack NAME`",
        Rule::module_header | Rule::kw_module => "`module NAME`",
        Rule::use_decl | Rule::kw_use => "`use`",
        Rule::use_names => "`{`",
        Rule::type_decl | Rule::kw_type => "`type`",
        Rule::input_decl | Rule::kw_input | Rule::static_mark | Rule::kw_static => "`input`",
        Rule::let_decl | Rule::kw_let => "`let`",
        Rule::decision_decl | Rule::kw_decision => "`decision`",
        Rule::readiness_decl | Rule::kw_readiness => "`readiness`",
        Rule::field_decl => "a field declaration (`name: type`)",
        Rule::type_expr | Rule::type_name | Rule::list_type | Rule::map_type => "a type",
        Rule::optional_mark => "`?`",
        Rule::arm | Rule::kw_when => "`when`",
        Rule::otherwise_arm | Rule::kw_otherwise => "`otherwise`",
        Rule::outcome | Rule::action => "an outcome (e.g. `deliver`)",
        Rule::category => "a category name",
        Rule::reason_clause | Rule::kw_reason => "`reason`",
        Rule::with_clause | Rule::kw_with => "`with`",
        Rule::field_init => "a field (`name: value`)",
        Rule::requested_clause | Rule::kw_requested => "`requested when`",
        Rule::else_clause => "`else`",
        Rule::check_guard => "`when` or `:`",
        Rule::check_decl | Rule::kw_check => "`check`",
        Rule::pass_clause | Rule::kw_pass => "`pass`",
        Rule::status_rule | Rule::kw_status => "`status`",
        Rule::kw_else => "`else`",
        Rule::map_literal | Rule::map_entry => "a map entry (`\"key\": value`)",
        Rule::expr
        | Rule::operand
        | Rule::paren
        | Rule::list_literal
        | Rule::name
        | Rule::if_expr
        | Rule::quantifier
        | Rule::quant_kind
        | Rule::timestamp
        | Rule::duration
        | Rule::number
        | Rule::text
        | Rule::kw_true
        | Rule::kw_false
        | Rule::kw_null
        | Rule::op_not
        | Rule::op_neg
        | Rule::kw_if => "an expression",
        Rule::op_or
        | Rule::op_and
        | Rule::op_in
        | Rule::op_not_in
        | Rule::op_eq
        | Rule::op_ne
        | Rule::op_lt
        | Rule::op_le
        | Rule::op_gt
        | Rule::op_ge
        | Rule::op_default
        | Rule::op_add
        | Rule::op_sub
        | Rule::op_mul
        | Rule::op_div
        | Rule::op_rem
        | Rule::kw_or
        | Rule::kw_and
        | Rule::kw_in => "an operator",
        Rule::arrow => "`=>`",
        Rule::comma => "`,`",
        Rule::close_paren => "`)`",
        Rule::close_bracket => "`]`",
        Rule::close_brace => "`}`",
        Rule::field_access
        | Rule::index_access
        | Rule::test_exists
        | Rule::test_not_exists
        | Rule::test_empty
        | Rule::test_not_empty
        | Rule::kw_is
        | Rule::kw_exists
        | Rule::kw_empty => "an operator",
        Rule::where_clause | Rule::kw_where => "`where`",
        Rule::by_clause | Rule::kw_by => "`by`",
        Rule::kw_then => "`then`",
        Rule::kw_list | Rule::kw_map => "a type",
        Rule::ident | Rule::field_name => "a name",
        Rule::text_chunk | Rule::text_interp => "text",
        Rule::text_escape => "an escape (\\\", \\\\, \\n, \\t, \\r, \\{, \\})",
        Rule::duration_unit => "a duration unit (w, d, h, m, s)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserved_words_are_those_the_grammar_refuses_as_names() {
        for word in KEYWORDS {
            let named = parse("t.cavra", &format!("pack p\nlet {word} = 1\n")).is_ok();
            assert_eq!(named, !is_reserved(word), "`{word}` as a name");
        }
    }

    /// A valid pack of `n` `let`s, each a list of numbers.
    fn lets(n: usize) -> String {
        let mut text = String::from("pack big\n");
        for i in 0..n {
            text.push_str(&format!("let l{i} = [1, 2, 3, 4, 5, 6, 7, 8]\n"));
        }
        text
    }

    #[test]
    fn a_parse_out_of_steps_is_reported_once_with_its_limit() {
        let mut text = lets(200);
        // Syntax errors after the limit is reached are not looked for.
        text.push_str("let broken = = 1\nlet also = ) 2\n");
        let d = parse_within("big.cavra", &text, Budget { steps: 5_000, recovery_bytes: RECOVERY_BYTES }).unwrap_err();
        assert_eq!(d.items.len(), 1, "{}", d.render(false));
        assert_eq!(d.items[0].code, "E0002");
        assert!(d.items[0].message.contains("gave up after 5,000 steps"), "{}", d.items[0].message);
        assert!(d.items[0].help.as_deref().unwrap_or_default().contains("100 steps per byte"), "{:?}", d.items[0].help);
    }

    #[test]
    fn the_step_budget_grows_with_the_file() {
        assert_eq!(step_budget(10), MIN_STEPS);
        assert_eq!(step_budget(4 * 1024 * 1024), 4 * 1024 * 1024 * STEPS_PER_BYTE);
        // The densest real text (lists of numbers) needs about 50 steps a byte.
        let text = lets(2_000);
        assert!(parse_within("dense.cavra", &text, Budget { steps: 60 * text.len(), recovery_bytes: RECOVERY_BYTES }).is_ok());
    }

    #[test]
    fn recovery_stops_when_the_reparses_would_cover_too_many_bytes() {
        let mut text = lets(50);
        for i in 0..10 {
            text.push_str(&format!("let bad{i} = = 1\n"));
        }
        let all = parse_within("errors.cavra", &text, Budget { steps: MIN_STEPS, recovery_bytes: RECOVERY_BYTES }).unwrap_err();
        assert_eq!(all.items.len(), 10, "{}", all.render(false));
        // Each failed parse runs up to its error: room for the first error's
        // two parses, then one more pair that goes over.
        let first = text.find("let bad0").unwrap();
        let few = parse_within("errors.cavra", &text, Budget { steps: MIN_STEPS, recovery_bytes: 3 * first }).unwrap_err();
        assert_eq!(few.items.len(), 2, "{}", few.render(false));
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(20_000_000), "20,000,000");
    }

    #[test]
    fn a_huge_token_is_quoted_by_a_prefix() {
        let text = format!("pack p\nlet a = 1 {}\n", "x".repeat(100_000));
        let d = parse("p.cavra", &text).unwrap_err();
        assert!(d.items[0].message.len() < 200, "{}", d.items[0].message);
        assert!(d.items[0].message.contains('…'), "{}", d.items[0].message);
    }

    #[test]
    fn a_bracket_never_closed_is_reported_where_it_opens() {
        // Braces and quotes inside text (and text inside an interpolation) are not brackets.
        let pack = "pack p\ninput x: text?\nlet t = \"a {if x exists then \"{x}\" else \"}\"} b\"\ndecision d {\n  when x == \"a\" => deliver ok\n  otherwise => skip no\n\nlet y = 1\n";
        let d = parse("p.cavra", pack).unwrap_err();
        let first = &d.items[0];
        assert_eq!(first.message, "this `{` is never closed");
        assert_eq!(d.line_col(first.span.start), (4, 12));
        assert_eq!(first.help.as_deref(), Some("close it with `}`"));
        let (gave_up, label) = &first.secondary[0];
        assert_eq!(d.line_col(gave_up.start), (8, 1), "{label}");
        assert!(label.starts_with("the parser gave up here: expected"), "{label}");
        // A closer of another kind: the bracket it cannot close is the mistake.
        let d = parse("p.cavra", "pack p\ninput x: number\ndecision d {\n  when (x > 1 => deliver ok\n  otherwise => skip no\n}\n").unwrap_err();
        assert_eq!((d.items[0].message.as_str(), d.line_col(d.items[0].span.start)), ("this `(` is never closed", (4, 8)));
        // Balanced brackets leave the parser's own message.
        let d = parse("p.cavra", "pack p\ninput x: number\ndecision d {\n  when x > => deliver ok\n  otherwise => skip no\n}\n").unwrap_err();
        assert!(d.items[0].message.starts_with("expected"), "{}", d.items[0].message);
    }
}
