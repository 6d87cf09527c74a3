//! `format`: round trip (same AST modulo spans, same comments), idempotence and
//! exact output, over the packs in the workspace and inline fixtures.

mod common;

use cavra_grammar::{format, parse};
use common::{comment_texts, normalized};
use std::path::{Path, PathBuf};

/// Checks the formatter's guarantees on one source that parses; returns the output.
fn check_round_trip(name: &str, source: &str) -> String {
    let pack = parse(name, source).unwrap_or_else(|d| panic!("{name} does not parse:\n{}", d.render(false)));
    let once = format(&pack, source);
    let again = parse(name, &once).unwrap_or_else(|d| panic!("{name}: the formatted text does not parse:\n{}\n---\n{once}", d.render(false)));
    assert_eq!(normalized(&pack), normalized(&again), "{name}: the AST changed; formatted text:\n{once}");
    assert_eq!(comment_texts(&pack), comment_texts(&again), "{name}: comments changed; formatted text:\n{once}");
    let twice = format(&again, &once);
    assert_eq!(once, twice, "{name}: formatting is not idempotent");
    once
}

fn cavra_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            cavra_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "cavra") {
            out.push(path);
        }
    }
}

#[test]
fn workspace_packs_round_trip() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["rules", "tests/corpus", "docs"] {
        cavra_files(&root.join(dir), &mut files);
    }
    assert!(files.iter().any(|f| f.ends_with("rules/routing.cavra")), "rules/routing.cavra not found: {files:?}");
    let mut checked = 0;
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        let name = file.display().to_string();
        // The corpus holds intentionally invalid packs too.
        if parse(&name, &source).is_err() {
            continue;
        }
        check_round_trip(&name, &source);
        checked += 1;
    }
    assert!(checked >= 1);
}

const EVERYTHING: &str = r#"# leading file comment

# license line
pack everything # header trailing

# types
type Window { # open
  start_at: time   # trailing field
  end_at: time?,
  owners: list<text> = [] ,
  # before field
  limits: map<number> = { "a": 1, b: 2, },
  nested: list<list<text>?>? = [["x"]]
  flag: bool = x exists, exists: bool = false
  other: bool = y exists,
  exists: bool = true, is: bool = false
  # dangling in type
}
type Empty {}
type Commented { # only a comment
}

static input policy: Window
input now: time
input owner: text   # owner
input tags: list<text>?
let window = first w in policy.windows where w.start_at <= now < w.end_at and (w.owners is empty or owner in w.owners) and (w.providers is not empty) and owner not in w.blocked by w.start_at
let count_all = count x in tags
let newest = max d in policy.drills by d.executed_at
let oldest = min d in policy.drills by d.executed_at
let some = any t in tags where t == "a"
let every = all t in tags where t != "b"
let picked = filter t in tags where t > "m" or t >= "z"
let total = (1 + 2) * 3 - -4 / 5 % 6
let choice = if now > @2026-01-01T00:00:00Z then 30m else 1h30m
let odd = @2026-01-01T00:00:00Z .year
let fallback = policy.name ?? "none" # trailing
let msg = "hello {owner}, \"quoted\" \\ \{braces\} tab\tnl\n {if true then "a" else "b"} x"
let nested_map = { "release-governance": 30, platform: 15, "x y": [1, 2.5, null, true, false] }
let empty_things = [[], {}, ""]
let call = coalesce(a, b, c,)
let idx = policy.calendars[owner].windows[0]
let negs = not not a and -x < 3
let chained = 1 <= x < 10
let tests = a exists and b not exists and c is empty and d is not empty
let long_where = any w in policy.windows where w.start_at <= now and w.end_at > now and w.kind == "maintenance" and w.owner == owner
let commented = 1 + # inside let
  2

decision route { # about route
  # before first arm
  when schedule_status == "healthy" => suppress healthy reason "ok {schedule_id}"
  when window exists => # inside arm
    suppress maintenance_window reason window.reason with { maintenance_window_id: window.window_id, why: "x", }

  when x => deliver urgent
  when a_very_long_condition_name and another_very_long_condition_name => suppress long_category reason "long reason text"
  otherwise => deliver reason "notify {owner}" with { a: 1 } # otherwise trailing
  # dangling in decision
} # after decision
decision nothing {}
decision only_otherwise { otherwise => deliver }
decision # between keyword and name
  odd { otherwise => deliver }

readiness release {
  requested when policy.requested ?? false # req
  check owner_set: owner is not empty else "no owner" pass "owner {owner}" with { field: owner }
  check window_ok: window not exists
    # inside check
    else "window open"
  status due_soon when days <= 3
  status late when days < 0
}
readiness empty_r {}
readiness no_request { check a: true else "x" }
# end 1

# end 2
"#;

#[test]
fn everything_round_trips() {
    let out = check_round_trip("everything", EVERYTHING);
    for needle in [
        "let window = first w in policy.windows\n  where w.start_at <= now < w.end_at\n    and (w.owners is empty or owner in w.owners)\n",
        "    and owner not in w.blocked\n  by w.start_at\n",
        "let odd = @2026-01-01T00:00:00Z .year\n",
        "  flag: bool = x exists,\n  exists: bool = false\n",
        "  other: bool = y exists,\n  exists: bool = true\n  is: bool = false\n",
        r#"let msg = "hello {owner}, \"quoted\" \\ \{braces\} tab\tnl\n {if true then "a" else "b"} x""#,
        "# inside let\nlet commented = 1 + 2\n",
        "decision route { # about route\n  # before first arm\n",
        "  when window exists =>\n    suppress maintenance_window",
        "  # dangling in decision\n} # after decision\n",
        "  check window_ok: window not exists\n    else \"window open\"\n",
        "  # inside check\n  check window_ok",
        "type Commented { # only a comment\n}\n",
        "type Empty {}\n",
        "  limits: map<number> = { \"a\": 1, b: 2 }\n",
        "let nested_map = { \"release-governance\": 30, platform: 15, \"x y\": [1, 2.5, null, true, false] }\n",
        "let call = coalesce(a, b, c)\n",
        "let negs = not not a and -x < 3\n",
        "let total = (1 + 2) * 3 - -4 / 5 % 6\n",
        "  when x => deliver urgent\n",
        "  when a_very_long_condition_name and another_very_long_condition_name =>\n    suppress long_category",
        "# end 1\n\n# end 2\n",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
}

#[test]
fn comments_everywhere_round_trip() {
    let sources = [
        "pack p",
        "pack p # only",
        "# a\n# b\n\n\n# c\npack p\n# d\n\n\n# e\n",
        "pack # inside header\n  p\nlet a = 1",
        "pack p let a = 1 let b = 2 # trailing b\nlet c = 3",
        "pack p\ntype T { a: int # a\n, b: int # b\n}\n",
        "pack p\ndecision d {\n  when a # in cond\n   and b => deliver\n  # before otherwise\n\n  otherwise => deliver # last\n\n  # dangling\n\n  # dangling 2\n}\n",
        "pack p\nreadiness r { # open\n  # before requested\n  requested # in requested\n  when x\n  check c: x # in check\n  else \"m\" # after check\n  status s when y # after status\n  # dangling\n}",
        "pack p\nlet t = \"a {x # in text\n} b\"\n",
        "pack p\nlet x = [\n  1, # one\n\n  2, # two\n\n  3\n] # end\n",
        "pack p\n\n\n\n# between\n\n\n\nlet a = 1\n\n\n\n# eof\n",
        "pack p\ninput a: int\n# c\nlet b = a\ninput c: int\ninput d: int\n",
        "pack p\r\n# crlf\r\nlet a = 1 # t\r\n\r\nlet b = \"x\r\ny\"\r\n",
    ];
    for (i, src) in sources.iter().enumerate() {
        check_round_trip(&format!("fixture{i}"), src);
    }
}

#[test]
fn messy_input_snapshot() {
    let messy = "  # routing rules\npack   demo   # the demo pack\ntype Item{name:text,tags:list<text>?=[ ],\n  score : number = 1.50}\nstatic   input policy : Item\n\n\n\ninput now:time\nlet   s=policy.score*(2+ -1)\nlet ok=s>=1 and not(policy.tags is empty)\n# the decision\ndecision   d{when ok=>deliver urgent reason \"score {s}\"with{score:s,}\n# fallback\notherwise=>suppress}\nreadiness r{requested when ok check c:s<=2 else\"too high\"pass\"fine\"status great when s>1}";
    let expected = r#"# routing rules
pack demo # the demo pack

type Item {
  name: text
  tags: list<text>? = []
  score: number = 1.50
}

static input policy: Item

input now: time

let s = policy.score * (2 + -1)
let ok = s >= 1 and not (policy.tags is empty)

# the decision
decision d {
  when ok => deliver urgent reason "score {s}" with { score: s }
  # fallback
  otherwise => suppress
}

readiness r {
  requested when ok
  check c: s <= 2
    else "too high"
    pass "fine"
  status great when s > 1
}
"#;
    let out = check_round_trip("messy", messy);
    assert_eq!(out, expected, "got:\n{out}");
}

#[test]
fn routing_pack_layout_is_kept() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/routing.cavra");
    let source = std::fs::read_to_string(path).unwrap();
    let out = check_round_trip("routing", &source);
    assert!(out.starts_with("# Route decision"), "{out}");
    assert!(out.contains("let window = first w in policy.maintenance_windows\n  where active(w, now)\n    and (w.owners is empty or owner in w.owners)\n"));
    assert!(out.starts_with("# Route decision for one (owner, provider) pair of a rollback-drill notification.\n# Order matters: the first matching arm wins (README, \"Notification plan\").\npack routing\n\nuse \"common/routing_policy.cavra\"\n\nstatic input"), "{out}");
    let module = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/common/routing_policy.cavra")).unwrap();
    let out = check_round_trip("routing_policy", &module);
    assert!(out.contains("module routing_policy\n"), "{out}");
    assert!(out.contains("  owners: list<text> = [] # empty means every owner\n"));
}

#[test]
fn use_lines_are_laid_out_and_escaped() {
    let messy = "module m\nuse   \"a b/\\\"q\\\".cavra\"{X,y,}\nuse \"c.cavra\" {}\ntype X { a: text }\n";
    let out = check_round_trip("uses", messy);
    assert_eq!(out, "module m\n\nuse \"a b/\\\"q\\\".cavra\" { X, y }\nuse \"c.cavra\" {}\n\ntype X {\n  a: text\n}\n");
}
