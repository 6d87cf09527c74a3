//! Property tests for `parse` and `format`:
//! (a) arbitrary text never panics, and every diagnostic has a span inside the
//!     source and renders with its `:LINE:COL`;
//! (b) mutations of valid packs never panic;
//! (c) mutated packs that still parse format to text that parses to the same
//!     AST (modulo spans) with the same comments, and formatting is idempotent.

mod common;

use cavra_grammar::ast::{Item, Pack, Span};
use cavra_grammar::{format, parse};
use common::{comment_texts, normalized};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::Config;

const ROUTING: &str = include_str!("../../rules/routing.cavra");

const FIXTURES: &[&str] = &[
    ROUTING,
    r#"# all the declarations
pack all # the pack
type Window { start_at: time, end_at: time? # end
  owners: list<text> = [], limits: map<number> = { "a": 1, b: 2 }
  flag: bool = x exists, exists: bool = false
}
static input policy: Window
input now: time
input tags: list<text>?
let window = first w in policy.windows where w.start_at <= now < w.end_at and (w.owners is empty or "x" in w.owners) by w.start_at
let n = count x in tags
let newest = max d in policy.drills by d.executed_at
let oldest = min d in policy.drills where d.ok by d.executed_at
let some = any t in tags where t == "a" or t not in ["b", "c"]
let every = all t in tags where t != "b"
let picked = filter t in tags where t > "m"
let total = (1 + 2) * 3 - -4 / 5 % 6
let choice = if now > @2026-01-01T00:00:00Z then 30m else 1h30m
let fallback = policy.name ?? "none" # trailing
let msg = "hi {now}, \"q\" \\ \{b\} \t\n {if true then "a" else "b"}"
let m = { "release-governance": 30, platform: 15, "x": [1, 2.5, null, true, false], e: {} }
let c = coalesce(a, b,)
let idx = policy.calendars[owner].windows[0].start_at
let negs = not not a and -x < 3 and b exists and c not exists and d is empty and e is not empty
"#,
    r#"pack decisions
# before
decision route { # open
  when status == "healthy" => suppress healthy reason "ok {id}" # t
  when window exists => # inside
    suppress maintenance reason window.reason with { id: window.id, why: "x", }

  when x => deliver urgent
  otherwise => deliver reason "notify {owner}" with { a: 1 }
  # dangling
} # after
decision none {}
readiness release {
  requested when policy.requested ?? false # req
  check owner_set: owner is not empty else "no owner" pass "owner {owner}" with { field: owner }
  check window_ok: window not exists
    # in check
    else "window open"
  status due_soon when days <= 3
  status late when days < 0
}
readiness nothing {}
# end
"#,
];

const TOKENS: &[&str] = &[
    "pack",
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
    "any",
    "all",
    "first",
    "count",
    "filter",
    "max",
    "min",
    "list",
    "map",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    "<",
    ">",
    "\"",
    "\\",
    ",",
    ":",
    "=",
    "=>",
    "==",
    "!=",
    "<=",
    ">=",
    "??",
    "+",
    "-",
    "*",
    "/",
    "%",
    ".",
    "?",
    "@2026-01-01T00:00:00Z",
    "@",
    "30m",
    "1h30m",
    "90d",
    "15",
    "2.5",
    "0",
    "x",
    "w",
    "policy",
    "_a1",
    "\"text {x}\"",
    "\"\\{\"",
    "\n",
    "\r\n",
    "\t",
    " ",
    "#",
    "# c\n",
    "é",
    "→",
];

/// The spans of the line-level nodes of a pack.
fn node_spans(pack: &Pack) -> Vec<Span> {
    let mut spans = Vec::new();
    for item in &pack.items {
        spans.push(item.span());
        match item {
            Item::Type(d) => spans.extend(d.fields.iter().map(|f| f.span)),
            Item::Decision(d) => {
                spans.extend(d.arms.iter().map(|a| a.span));
                spans.extend(d.otherwise.iter().map(|o| o.span));
            }
            Item::Readiness(d) => {
                spans.extend(d.checks.iter().map(|c| c.span));
                spans.extend(d.statuses.iter().map(|s| s.span));
            }
            Item::Input(_) | Item::Let(_) => {}
        }
    }
    spans
}

/// Parses `source`; on success checks the formatter's guarantees, on failure
/// checks the diagnostics. Panics (fails the property) on any violation.
fn check(source: &str) -> Result<(), TestCaseError> {
    match parse("prop.cavra", source) {
        Ok(pack) => {
            for span in node_spans(&pack) {
                prop_assert!(span.start <= span.end && span.end <= source.len());
                let text = &source[span.start..span.end];
                prop_assert!(!text.ends_with(char::is_whitespace), "span {span:?} ends with whitespace: {text:?}");
            }
            let once = format(&pack, source);
            let again = match parse("formatted.cavra", &once) {
                Ok(p) => p,
                Err(d) => {
                    return Err(TestCaseError::fail(format!(
                        "formatted text does not parse:\n{}\n--- source:\n{source}\n--- formatted:\n{once}",
                        d.render(false)
                    )))
                }
            };
            prop_assert_eq!(normalized(&pack), normalized(&again), "AST changed; formatted:\n{}", once);
            prop_assert_eq!(comment_texts(&pack), comment_texts(&again));
            let twice = format(&again, &once);
            prop_assert_eq!(&once, &twice, "not idempotent; source:\n{}", source);
        }
        Err(diags) => {
            prop_assert!(!diags.items.is_empty());
            let rendered = diags.render(false);
            for d in &diags.items {
                prop_assert!(d.span.start <= d.span.end && d.span.end <= source.len(), "span {:?} outside a source of {} bytes", d.span, source.len());
                prop_assert!(
                    source.is_char_boundary(d.span.start) && source.is_char_boundary(d.span.end),
                    "span {:?} of {:?} is not on char boundaries in:\n{}",
                    d.span,
                    d.message,
                    source
                );
                let (line, col) = diags.line_col(d.span.start);
                let at = format!(":{line}:{col}");
                prop_assert!(rendered.contains(&at), "{at} not in:\n{rendered}");
            }
        }
    }
    Ok(())
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A range of `s` on char boundaries, from two random picks.
fn range(s: &str, a: &Index, b: &Index) -> (usize, usize) {
    let x = floor_boundary(s, a.index(s.len() + 1));
    // Mostly short ranges: a few tokens.
    let len = b.index(24.min(s.len() + 1));
    let y = floor_boundary(s, x + len);
    (x, y.max(x))
}

#[derive(Clone, Debug)]
enum Mutation {
    Delete(Index, Index),
    Insert(Index, &'static str),
    Duplicate(Index, Index, Index),
    Swap(Index, Index, Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Delete(a, b)),
        (any::<Index>(), select(TOKENS)).prop_map(|(a, t)| Mutation::Insert(a, t)),
        (any::<Index>(), any::<Index>(), any::<Index>()).prop_map(|(a, b, c)| Mutation::Duplicate(a, b, c)),
        (any::<Index>(), any::<Index>(), any::<Index>(), any::<Index>()).prop_map(|(a, b, c, d)| Mutation::Swap(a, b, c, d)),
    ]
}

fn apply(source: &str, m: &Mutation) -> String {
    let mut s = source.to_string();
    match m {
        Mutation::Delete(a, b) => {
            let (x, y) = range(&s, a, b);
            s.replace_range(x..y, "");
        }
        Mutation::Insert(a, token) => {
            let x = floor_boundary(&s, a.index(s.len() + 1));
            s.insert_str(x, token);
        }
        Mutation::Duplicate(a, b, c) => {
            let (x, y) = range(&s, a, b);
            let piece = s[x..y].to_string();
            let at = floor_boundary(&s, c.index(s.len() + 1));
            s.insert_str(at, &piece);
        }
        Mutation::Swap(a, b, c, d) => {
            let (x1, y1) = range(&s, a, b);
            let (x2, y2) = range(&s, c, d);
            // Two disjoint ranges, in order.
            let ((x1, y1), (x2, y2)) = if x1 <= x2 { ((x1, y1), (x2, y2)) } else { ((x2, y2), (x1, y1)) };
            if y1 <= x2 {
                let first = s[x1..y1].to_string();
                let second = s[x2..y2].to_string();
                s.replace_range(x2..y2, &first);
                s.replace_range(x1..y1, &second);
            }
        }
    }
    s
}

/// Edits that mostly keep a pack valid: they move whole lines, comments,
/// blank lines and line breaks around.
#[derive(Clone, Debug)]
enum LineEdit {
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    CommentAtEnd(Index, &'static str),
    CommentLine(Index, &'static str),
    BlankLines(Index, usize),
    /// Replaces the `n`th line break by a space.
    JoinLines(Index),
    /// Replaces the `n`th space by a line break.
    BreakAtSpace(Index),
}

const COMMENTS: &[&str] = &["# c", "#", "#  spaced  ", "# \"{x}\" (", "# é → ✓", "#pack p"];

fn line_edit() -> impl Strategy<Value = LineEdit> {
    prop_oneof![
        any::<Index>().prop_map(LineEdit::DeleteLine),
        any::<Index>().prop_map(LineEdit::DuplicateLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| LineEdit::SwapLines(a, b)),
        (any::<Index>(), select(COMMENTS)).prop_map(|(a, c)| LineEdit::CommentAtEnd(a, c)),
        (any::<Index>(), select(COMMENTS)).prop_map(|(a, c)| LineEdit::CommentLine(a, c)),
        (any::<Index>(), 1..4usize).prop_map(|(a, n)| LineEdit::BlankLines(a, n)),
        any::<Index>().prop_map(LineEdit::JoinLines),
        any::<Index>().prop_map(LineEdit::BreakAtSpace),
    ]
}

fn apply_line_edit(source: &str, edit: &LineEdit) -> String {
    let mut lines: Vec<String> = source.split('\n').map(str::to_string).collect();
    let n = lines.len();
    match edit {
        LineEdit::DeleteLine(i) => {
            lines.remove(i.index(n));
        }
        LineEdit::DuplicateLine(i) => {
            let i = i.index(n);
            let line = lines[i].clone();
            lines.insert(i, line);
        }
        LineEdit::SwapLines(a, b) => lines.swap(a.index(n), b.index(n)),
        LineEdit::CommentAtEnd(i, c) => {
            let line = &mut lines[i.index(n)];
            line.push(' ');
            line.push_str(c);
        }
        LineEdit::CommentLine(i, c) => lines.insert(i.index(n + 1), c.to_string()),
        LineEdit::BlankLines(i, count) => {
            let at = i.index(n + 1);
            for _ in 0..*count {
                lines.insert(at, String::new());
            }
        }
        LineEdit::JoinLines(i) => {
            if n > 1 {
                let i = i.index(n - 1);
                let next = lines.remove(i + 1);
                lines[i].push(' ');
                lines[i].push_str(&next);
            }
        }
        LineEdit::BreakAtSpace(i) => {
            let text = lines.join("\n");
            let spaces: Vec<usize> = text.match_indices(' ').map(|(p, _)| p).collect();
            if spaces.is_empty() {
                return text;
            }
            let at = spaces[i.index(spaces.len())];
            let mut text = text;
            text.replace_range(at..at + 1, "\n");
            return text;
        }
    }
    lines.join("\n")
}

/// `PROPTEST_CASES` overrides the case counts, for longer runs.
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    Config { cases, failure_persistence: None, ..Config::default() }
}

#[test]
fn fixtures_are_valid_and_round_trip() {
    for fixture in FIXTURES {
        assert!(parse("fixture", fixture).is_ok(), "{fixture}");
        check(fixture).unwrap();
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn random_ascii_never_panics(source in "[\\x00-\\x7f]{0,200}") {
        check(&source)?;
    }

    #[test]
    fn random_unicode_never_panics(source in "\\PC{0,120}") {
        check(&source)?;
    }

    #[test]
    fn token_soup_never_panics(
        header in any::<bool>(),
        tokens in prop::collection::vec((select(TOKENS), select(&[" ", "", "\n"][..])), 0..80),
    ) {
        let mut source = String::from(if header { "pack p\n" } else { "" });
        for (token, sep) in tokens {
            source.push_str(token);
            source.push_str(sep);
        }
        check(&source)?;
    }
}

proptest! {
    #![proptest_config(config(384))]

    #[test]
    fn mutated_fixtures_never_panic_and_round_trip(
        which in 0..FIXTURES.len(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut source = FIXTURES[which].to_string();
        for m in &mutations {
            source = apply(&source, m);
        }
        check(&source)?;
    }

    #[test]
    fn line_edited_fixtures_round_trip(
        which in 0..FIXTURES.len(),
        edits in prop::collection::vec(line_edit(), 1..6),
    ) {
        let mut source = FIXTURES[which].to_string();
        for e in &edits {
            source = apply_line_edit(&source, e);
        }
        check(&source)?;
    }
}
