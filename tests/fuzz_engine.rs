//! Property tests: arbitrary and mutated rule text and input documents never
//! make the pipeline panic (parse -> check -> bind -> decide/explain/readiness).

use proptest::prelude::*;
use serde_json::{json, Value as Json};
use std::collections::HashMap;

fn seeds() -> Vec<String> {
    let root = cavra_tests::crate_dir().join("..");
    let mut out = Vec::new();
    for dir in ["rules", "tests/corpus/check", "tests/corpus/eval"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "cavra") {
                    out.push(std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
    }
    out.sort();
    out
}

const TOKENS: &[&str] = &[
    " and ",
    " or ",
    " not ",
    " in ",
    " is empty",
    " exists",
    " ?? ",
    " == ",
    " <= ",
    " < ",
    " + ",
    " - ",
    " * ",
    " / ",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "\"{x}\"",
    "@2026-05-21T18:00:00Z",
    "30m",
    "90d",
    "0",
    "null",
    "true",
    "first w in policy.maintenance_windows where ",
    "count x in [1, 2] where x > ",
    "if true then ",
    " else ",
    "\n",
    "#",
    "=>",
    "otherwise => deliver",
    "when ",
    "let z = ",
    ".",
    "owner",
    "now",
    "policy",
    "len(",
    ",",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, usize),
    Duplicate(usize, usize),
}

fn mutate(source: &str, mutations: &[Mutation]) -> String {
    let mut s = source.to_string();
    for m in mutations {
        let clamp = |i: usize, s: &str| {
            let mut i = if s.is_empty() { 0 } else { i % (s.len() + 1) };
            while !s.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        match *m {
            Mutation::Delete(at, len) => {
                let a = clamp(at, &s);
                let b = clamp(a + len % 40, &s).max(a);
                s.replace_range(a..b, "");
            }
            Mutation::Insert(at, token) => {
                let a = clamp(at, &s);
                s.insert_str(a, TOKENS[token % TOKENS.len()]);
            }
            Mutation::Duplicate(at, len) => {
                let a = clamp(at, &s);
                let b = clamp(a + len % 80, &s).max(a);
                let piece = s[a..b].to_string();
                s.insert_str(b, &piece);
            }
        }
    }
    s
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Delete(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Insert(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Duplicate(a, b)),
    ]
}

/// Runs everything a user could run on a pack; must not panic.
fn exercise(source: &str, documents: &HashMap<String, Json>) {
    let pack = match cavra_engine::compile("fuzz.cavra", source) {
        Ok(pack) => pack,
        Err(d) => {
            assert!(d.has_errors(), "a failed compile must carry an error");
            let rendered = d.render(false);
            assert!(rendered.contains("fuzz.cavra:"), "{rendered}");
            let _ = d.to_json();
            return;
        }
    };
    let Ok(program) = pack.bind(documents) else { return };
    let mut inputs = program.inputs();
    for info in pack.inputs().iter().filter(|i| !i.is_static) {
        if let Some(doc) = documents.get(&info.name) {
            let _ = program.set_input(&mut inputs, &info.name, doc);
        }
    }
    for (decision, _) in pack.decisions() {
        let _ = program.decide(decision, &inputs).map(|o| o.to_json());
        let _ = program.explain(decision, &inputs);
    }
    for (gate, _) in pack.gates() {
        let _ = program.readiness(gate, &inputs).map(|r| r.to_json());
    }
}

fn documents() -> HashMap<String, Json> {
    let policy = json!({
        "maintenance_windows": [
            {"window_id": "w1", "start_at": "2026-05-21T18:00:00Z", "end_at": "2026-05-21T20:00:00Z", "owners": ["a"], "providers": [], "reason": "freeze"}
        ],
        "owner_calendars": {"a": {"unavailable_windows": [{"start_at": "2026-05-22T00:00:00Z", "end_at": "2026-05-22T08:00:00Z", "reason": "holiday"}]}}
    });
    HashMap::from([
        ("policy".to_string(), policy),
        ("now".to_string(), json!("2026-05-21T19:00:00Z")),
        ("owner".to_string(), json!("a")),
        ("provider".to_string(), json!("slack")),
        ("schedule_id".to_string(), json!("s1")),
        ("schedule_status".to_string(), json!("due_soon")),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn mutated_packs_never_panic(seed in any::<prop::sample::Index>(), mutations in prop::collection::vec(mutation(), 1..6)) {
        let seeds = seeds();
        prop_assume!(!seeds.is_empty());
        let source = mutate(&seeds[seed.index(seeds.len())], &mutations);
        exercise(&source, &documents());
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        exercise(&text, &documents());
        exercise(&format!("pack p\nlet _x = {text}\ndecision d {{ otherwise => deliver }}"), &documents());
    }

    #[test]
    fn mangled_documents_never_panic(path_choice in 0usize..8, replacement in prop_oneof![
        Just(json!(null)), Just(json!("tomorrow")), Just(json!(12)), Just(json!([])), Just(json!({})),
        Just(json!("2026-05-21T18:00:00")), Just(json!(["x", 1])), Just(json!(true))
    ]) {
        let source = std::fs::read_to_string(cavra_tests::crate_dir().join("../rules/routing.cavra")).unwrap();
        let mut docs = documents();
        let targets = ["/maintenance_windows/0/start_at", "/maintenance_windows/0/owners", "/maintenance_windows",
                       "/owner_calendars/a", "/owner_calendars", "/owner_calendars/a/unavailable_windows/0/end_at", "", "/maintenance_windows/0"];
        let policy = docs.get_mut("policy").unwrap();
        match policy.pointer_mut(targets[path_choice]) {
            Some(slot) => *slot = replacement,
            None => unreachable!(),
        }
        exercise(&source, &docs);
    }
}
