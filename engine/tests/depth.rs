//! Deep but allowed expressions compile and evaluate on a small (2 MiB)
//! thread, as in a test harness or a busy server; deeper ones are refused
//! with a diagnostic instead of crashing.

use std::collections::HashMap;

fn run_on_small_stack(source: String) -> Result<String, String> {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let pack = cavra_engine::compile("deep.cavra", &source).map_err(|d| d.render(false))?;
            let program = pack.bind(&HashMap::new()).map_err(|e| e.to_string())?;
            let mut inputs = program.inputs();
            program.set_input(&mut inputs, "n", &serde_json::json!(1)).map_err(|e| e.to_string())?;
            let outcome = program.decide("d", &inputs).map_err(|e| e.message)?;
            Ok(outcome.action.to_string())
        })
        .unwrap()
        .join()
        .expect("no crash")
}

fn sum(terms: usize) -> String {
    vec!["n"; terms].join(" + ")
}

#[test]
fn deep_expressions_within_the_limits_evaluate() {
    // Two lets of 120 operators each, chained: about 245 levels in all.
    let source =
        format!("pack p\ninput n: number\nlet a = {}\nlet b = a + {}\ndecision d {{ when b > 0 => deliver otherwise => suppress }}\n", sum(121), sum(121));
    assert_eq!(run_on_small_stack(source), Ok("deliver".to_string()));
}

#[test]
fn chains_of_lets_too_deep_to_evaluate_are_refused() {
    let mut source = String::from("pack p\ninput n: number\nlet l0 = n\n");
    for i in 1..8 {
        source.push_str(&format!("let l{i} = l{} + {}\n", i - 1, sum(60)));
    }
    source.push_str("decision d { when l7 > 0 => deliver otherwise => suppress }\n");
    let err = run_on_small_stack(source).unwrap_err();
    assert!(err.contains("E0002") && err.contains("levels deep"), "{err}");
}

#[test]
fn long_let_chains_declared_backwards_are_checked_without_deep_recursion() {
    // l0 uses l1, l1 uses l2, ...: checking lazily would nest once per let.
    let chain = |n: usize| {
        let mut source = String::from("pack p\ninput n: number\n");
        for i in 0..n {
            source.push_str(&format!("let l{i} = l{} + 1\n", i + 1));
        }
        source.push_str(&format!("let l{n} = n\ndecision d {{ when l0 > 0 => deliver otherwise => suppress }}\n"));
        source
    };
    assert_eq!(run_on_small_stack(chain(100)), Ok("deliver".to_string()));
    let err = run_on_small_stack(chain(3000)).unwrap_err();
    assert!(err.contains("E0002"), "{err}");
}
