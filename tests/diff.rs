//! `cavra diff`, impact analysis: golden files of its output for a change
//! of a maintenance window's end by one hour (exactly the interval that
//! moves), identical inputs (nothing), a pack with one arm changed, a
//! rule-test file's cases, and inputs it refuses; the exit codes through the
//! real binary. The API route is tested in tests/api.rs.
//!
//! Each case's golden file (`tests/corpus/diff/NAME.out`) holds the exit
//! code, stdout and stderr; `CAVRA_BLESS=1` rewrites them.

use cavra_tests::{cavra, check_golden, crate_dir};
use serde_json::{json, Value as Json};

const POLICY: &str = "policy=../examples/routing-policy.json";
const LATER_END: &str = "policy=corpus/diff/routing-policy-freeze-until-21.json";
const ROUTING: &str = "../rules/routing.cavra";
const TEAMS_IGNORES_ABSENCES: &str = "corpus/diff/routing-teams-ignores-absences.cavra";
const FROM: &str = "2026-05-21T00:00:00Z";
const TO: &str = "2026-05-23T00:00:00Z";

/// Runs `cavra diff ARGS` and compares the exit code and output with `corpus/diff/NAME.out`.
fn golden(name: &str, args: &[&str]) -> (i32, String) {
    let argv: Vec<&str> = std::iter::once("diff").chain(args.iter().copied()).collect();
    let run = cavra(&argv);
    let shown = format!("$ cavra {}\nexit: {}\n--- stdout\n{}--- stderr\n{}", argv.join(" "), run.code, run.stdout, run.stderr);
    let file = crate_dir().join("corpus/diff").join(format!("{name}.out"));
    if let Err(mismatch) = check_golden(&file, &shown) {
        panic!("{mismatch}");
    }
    (run.code, run.stdout)
}

#[test]
fn a_window_ending_an_hour_later_shows_exactly_the_hour_that_moves() {
    let (code, _) = golden("window-end-one-hour-later", &[ROUTING, "--input", POLICY, "--against", LATER_END, "--from", FROM, "--to", TO]);
    assert_eq!(code, 3, "a change exits 3");
    let (code, stdout) = golden("window-end-one-hour-later-json", &[ROUTING, "--input", POLICY, "--against", LATER_END, "--from", FROM, "--to", TO, "--json"]);
    assert_eq!(code, 3);
    let report: Json = serde_json::from_str(&stdout).expect("JSON");
    // Whatever the schedule status examined (healthy suppresses everything
    // alike), only release-governance on slack, the freeze's scope, moves:
    // delivered before, suppressed after, from the old end to the new one.
    assert_eq!(report["change_count"], 1, "{report:#}");
    let change = &report["changes"][0];
    assert_eq!(change["key"], json!({"owner": "release-governance", "provider": "slack", "schedule_id": "*", "schedule_status": "*"}));
    assert_eq!((change["from"].as_str(), change["to"].as_str()), (Some("2026-05-21T20:00:00Z"), Some("2026-05-21T21:00:00Z")));
    assert_eq!(change["old"], json!({"action": "deliver", "category": "deliver", "reason": "notify release-governance on slack"}));
    assert_eq!(change["new"], json!({"action": "suppress", "category": "maintenance_window", "reason": "production change freeze"}));
}

#[test]
fn identical_inputs_change_nothing() {
    let (code, stdout) = golden("identical-inputs", &[ROUTING, "--input", POLICY, "--against", POLICY, "--from", FROM, "--to", TO]);
    assert_eq!((code, stdout.as_str()), (0, "no decision changes\n"));
}

#[test]
fn two_packs_show_where_the_changed_arm_decides_otherwise() {
    let args = [ROUTING, TEAMS_IGNORES_ABSENCES, "--input", POLICY, "--set", "schedule_status=due_soon", "--from", FROM, "--to", TO];
    let (code, _) = golden("two-packs", &args);
    assert_eq!(code, 3);
    // Two schedule statuses examined: a healthy schedule is suppressed by both packs alike.
    let (_, stdout) = golden(
        "two-packs-two-statuses-json",
        &[
            ROUTING,
            TEAMS_IGNORES_ABSENCES,
            "--input",
            POLICY,
            "--set",
            "schedule_status=due_soon",
            "--set",
            "schedule_status=healthy",
            "--from",
            FROM,
            "--to",
            TO,
            "--json",
        ],
    );
    let report: Json = serde_json::from_str(&stdout).expect("JSON");
    let changes = report["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "only the holiday on teams moves: {report:#}");
    assert_eq!(changes[0]["key"]["schedule_status"], "due_soon");
    assert_eq!((changes[0]["from"].as_str(), changes[0]["to"].as_str()), (Some("2026-05-22T00:00:00Z"), Some("2026-05-22T08:00:00Z")));
}

#[test]
fn a_rule_test_file_examines_each_case_at_its_instant() {
    let (code, _) = golden("rule-test-cases", &[ROUTING, TEAMS_IGNORES_ABSENCES, "--tests", "../rules/routing.test.toml"]);
    assert_eq!(code, 3);
    let (code, stdout) =
        golden("rule-test-cases-against", &[ROUTING, "--input", POLICY, "--against", LATER_END, "--tests", "../rules/routing.test.toml", "--json"]);
    assert_eq!(code, 3);
    let report: Json = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(report["change_count"], 1, "only the case at the old end moves: {report:#}");
    assert_eq!(report["changes"][0]["key"]["case"], "a window ends before its end_at (exclusive)");
    assert_eq!(report["changes"][0]["from"], report["changes"][0]["to"]);
}

#[test]
fn bad_inputs_are_refused_naming_the_flag_or_the_json_path() {
    let (code, _) = golden("missing-input-file", &[ROUTING, "--input", "policy=../examples/no-such-policy.json", "--against", LATER_END]);
    assert_eq!(code, 2);
    let dir = cavra_tests::fresh_dir(std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("diff-bad-document"));
    let bad = dir.join("policy.json");
    std::fs::write(&bad, r#"{"maintenance_windows": [{"window_id": "w", "start_at": "2026-05-21T18:00:00Z", "end_at": "tomorrow"}]}"#).expect("write");
    let run = cavra(&["diff", ROUTING, "--input", POLICY, "--against", &format!("policy={}", bad.display()), "--from", FROM, "--to", TO]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("policy.json: $.maintenance_windows[0].end_at: expected an RFC 3339 timestamp"), "{}", run.stderr);
    let (code, _) = golden("unknown-input", &[ROUTING, "--input", POLICY, "--against", "polcy=corpus/diff/routing-policy-freeze-until-21.json"]);
    assert_eq!(code, 2);
    let (code, _) =
        golden("period-too-long", &[ROUTING, "--input", POLICY, "--against", LATER_END, "--from", "2026-01-01T00:00:00Z", "--to", "2027-01-03T00:00:00Z"]);
    assert_eq!(code, 2);
    let (code, _) = golden("now-is-the-period", &[ROUTING, "--input", POLICY, "--against", LATER_END, "--set", "now=2026-05-21T00:00:00Z"]);
    assert_eq!(code, 2);
}

#[test]
fn the_binary_exits_3_when_a_decision_changes_and_0_when_none_does() {
    let run = |against: &str| {
        std::process::Command::new(cavra_tests::cavra_binary())
            .current_dir(crate_dir())
            .args(["diff", ROUTING, "--input", POLICY, "--against", against, "--from", FROM, "--to", TO])
            .output()
            .expect("run cavra")
    };
    let changed = run(LATER_END);
    assert_eq!(changed.status.code(), Some(3), "{}", String::from_utf8_lossy(&changed.stderr));
    assert!(String::from_utf8_lossy(&changed.stdout).ends_with("1 change\n"));
    assert_eq!(run(POLICY).status.code(), Some(0));
}
