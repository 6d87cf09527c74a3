//! The benchmark packs check cleanly (no errors, no warnings), and the
//! decision-loop pack gives the constant reasons the baselines use.

use cavra_benches::{DECISION_LOOP_PACK, DELIVER_REASON, LARGE_PACK, NOT_ON_ROUTE_REASON};

fn assert_clean(file: &str, source: &str) -> cavra_engine::Pack {
    let pack = cavra_engine::compile(file, source).unwrap_or_else(|d| panic!("{}", d.render(false)));
    assert_eq!(pack.warnings().warning_count(), 0, "{}", pack.warnings().render(false));
    pack
}

#[test]
fn decision_loop_pack_checks() {
    let pack = assert_clean("decision_loop.cavra", DECISION_LOOP_PACK);
    assert_eq!(pack.decisions().len(), 1);
    // The baselines' constant reasons are the pack's (tests/equivalence.rs compares them decision by decision).
    assert!(DECISION_LOOP_PACK.contains(&format!("skip not_on_route reason \"{NOT_ON_ROUTE_REASON}\"")));
    assert!(DECISION_LOOP_PACK.contains(&format!("deliver reason \"{DELIVER_REASON}\"")));
}

#[test]
fn large_pack_checks_and_is_large() {
    let pack = assert_clean("large.cavra", LARGE_PACK);
    let lines = LARGE_PACK.lines().count();
    assert!((250..=400).contains(&lines), "large.cavra has {lines} lines");
    assert!(pack.decisions().len() >= 3);
    assert_eq!(pack.gates().len(), 2);
    let arms: usize = pack.decisions().iter().map(|(_, arms)| arms.len()).sum();
    let checks: usize = pack.gates().iter().map(|(_, checks)| checks.len()).sum();
    assert!(arms >= 30 && checks >= 20, "{arms} arms, {checks} checks");
}
