//! The checker's claims about arm conditions are true: over random packs of
//! tests on a text and a number input, every condition it calls always true
//! (W0403) holds for every input, every one it calls always false (W0402)
//! holds for none, and every arm (or `otherwise`) it calls covered (W0404)
//! matches only inputs an earlier arm matches. The truth tables come from
//! evaluating each condition on its own, for every value of the inputs that
//! the tests can tell apart.

use cavra_engine::{compile, Severity};
use proptest::prelude::*;
use std::collections::HashMap;

const TEXTS: [&str; 4] = ["null", "\"x\"", "\"y\"", "\"z\""];
const NUMBERS: [f64; 6] = [0.0, 2.5, 3.0, 4.0, 5.0, 6.0];

fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a == \"x\"".to_string()),
        Just("a == \"y\"".to_string()),
        Just("a != \"x\"".to_string()),
        Just("a exists".to_string()),
        Just("a not exists".to_string()),
        Just("a in [\"x\", \"y\"]".to_string()),
        Just("a not in [\"x\"]".to_string()),
        Just("n < 3".to_string()),
        Just("n >= 3".to_string()),
        Just("n > 5".to_string()),
        Just("n <= 4".to_string()),
        Just("n == 4".to_string()),
        Just("n != 4".to_string()),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    atom().prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} and {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} or {b})")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

/// Whether `condition` holds, for every combination of the inputs' values.
fn truth(condition: &str) -> Vec<bool> {
    let source = format!("pack t\ninput a: text?\ninput n: number\ndecision c {{\n  when {condition} => deliver yes\n  otherwise => skip no\n}}\n");
    let pack = compile("t.cavra", &source).unwrap_or_else(|d| panic!("{}", d.render(false)));
    let program = pack.bind(&HashMap::new()).expect("no static inputs");
    let mut table = Vec::new();
    for a in TEXTS {
        for n in NUMBERS {
            let mut inputs = program.inputs();
            program.set_input(&mut inputs, "a", &serde_json::from_str(a).expect("JSON")).expect("a");
            program.set_input(&mut inputs, "n", &serde_json::json!(n)).expect("n");
            table.push(program.decide("c", &inputs).expect("decides").action == "deliver");
        }
    }
    table
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn what_the_checker_says_of_conditions_is_true(conditions in proptest::collection::vec(condition(), 1..4)) {
        let arms: String = conditions.iter().enumerate().map(|(i, c)| format!("  when {c} => deliver arm{i}\n")).collect();
        let source = format!("pack p\ninput a: text?\ninput n: number\ndecision d {{\n{arms}  otherwise => skip none\n}}\n");
        let pack = compile("p.cavra", &source).unwrap_or_else(|d| panic!("{}", d.render(false)));
        let tables: Vec<Vec<bool>> = conditions.iter().map(|c| truth(c)).collect();
        let warnings = pack.warnings();
        let about_arms = |d: &&cavra_engine::Diagnostic| d.severity == Severity::Warning && matches!(d.code, "W0402" | "W0403" | "W0404");
        for w in warnings.items.iter().filter(about_arms) {
            let (line, _) = warnings.line_col(w.span.start);
            // Line 5 is the first arm; the line after the last arm is `otherwise`.
            let arm = line - 5;
            match w.code {
                "W0403" => prop_assert!(tables[arm].iter().all(|t| *t), "{source}\n{} on arm {arm}", w.message),
                "W0402" => prop_assert!(tables[arm].iter().all(|t| !*t), "{source}\n{} on arm {arm}", w.message),
                "W0404" if arm == conditions.len() => {
                    let every = (0..tables[0].len()).all(|k| tables.iter().any(|t| t[k]));
                    prop_assert!(every, "{source}\n`otherwise` called unreachable");
                }
                "W0404" => {
                    let covered = (0..tables[arm].len()).all(|k| !tables[arm][k] || (0..arm).any(|j| tables[j][k]));
                    prop_assert!(covered, "{source}\narm {arm} called covered");
                }
                _ => {}
            }
        }
    }
}

/// The property above is not vacuous: each finding is made where it should be.
#[test]
fn each_finding_is_made() {
    let source = "pack p\ninput a: text?\ninput n: number\ndecision d {\n  when a exists or a not exists => deliver one\n  otherwise => skip none\n}\ndecision e {\n  when n < 3 and n > 5 => deliver one\n  when a == \"x\" => deliver two\n  when a != \"x\" => deliver three\n  when a == \"y\" => deliver four\n  otherwise => skip none\n}\n";
    let pack = compile("p.cavra", source).unwrap_or_else(|d| panic!("{}", d.render(false)));
    let warnings = pack.warnings();
    let found: Vec<(&str, usize)> = warnings.items.iter().map(|w| (w.code, warnings.line_col(w.span.start).0)).collect();
    assert_eq!(found, [("W0403", 5), ("W0400", 6), ("W0402", 9), ("W0404", 12), ("W0404", 13)], "{}", warnings.render(false));
}
