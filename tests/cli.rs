//! End-to-end behaviour of the authoring commands that the corpus does not
//! cover: formatting files in place, the bundled packs staying formatted and
//! checked, and `eval` output on the bundled examples.

use cavra_tests::cavra;

#[test]
fn bundled_packs_check_cleanly_and_are_formatted() {
    let run = cavra(&["check", "--deny-warnings", "../rules"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = cavra(&["fmt", "--check", "../rules"]);
    assert_eq!(run.code, 0, "run `cavra fmt rules/`: {}{}", run.stdout, run.stderr);
}

#[test]
fn a_rules_folder_is_checked_against_the_runtime_commands_pack_contracts() {
    // The bundled folder keeps every contract.
    let run = cavra(&["check", "--deny-warnings", "--rules", "../rules"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("checked 10 packs and 7 modules: 0 errors, 0 warnings"), "{}", run.stderr);

    // A copy with a pack missing, one that lacks an input and a decision, a
    // policy that is no longer static, and a misspelled `with` field.
    let dir = cavra_tests::fresh_dir(std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("contracts"));
    cavra_tests::copy_dir(&cavra_tests::crate_dir().join("../rules"), &dir);
    std::fs::remove_file(dir.join("escalation.cavra")).unwrap();
    std::fs::write(dir.join("actions/actions.cavra"), "pack go_pilot_actions\n\ninput action_type: text\n\ndecision act {\n  otherwise => deny default\n}\n")
        .unwrap();
    let routing = std::fs::read_to_string(dir.join("routing.cavra")).unwrap();
    let routing = routing.replace("static input policy: RoutingPolicy", "input policy: RoutingPolicy").replacen(
        "{ acknowledgement_minutes:",
        "{ acknowledgment_minutes:",
        1,
    );
    std::fs::write(dir.join("routing.cavra"), routing).unwrap();
    let rules = dir.display().to_string();

    let run = cavra(&["check", "--rules", &rules]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    for expected in [
        "error[E0801]: the pack does not declare input `target`, which the runtime sets",
        "actions/actions.cavra:1:6",
        "= help: declare `input target: text`",
        "error[E0803]: the pack declares no decision `action`, which the runtime asks for",
        "error[E0802]: input `policy` is declared as `RoutingPolicy`: the runtime sets it once, from a document (static)",
        "routing.cavra:7:1",
        "= help: declare `static input policy: RoutingPolicy`",
        "warning[W0804]: the runtime does not read `with` field `acknowledgment_minutes` of decision `route`",
        "error[E0800]: the rules folder has no `escalation.cavra`, needed by the notification lifecycle",
        "checked 9 packs and 7 modules: 4 errors, 1 warning",
    ] {
        assert!(run.stderr.contains(expected), "missing {expected:?} in:\n{}", run.stderr);
    }
    let run = cavra(&["check", "--rules", &rules, "--error-format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let codes: Vec<&str> = json.as_array().unwrap().iter().filter_map(|d| d["code"].as_str()).collect();
    assert_eq!(codes, ["E0801", "E0803", "E0802", "W0804", "E0800"], "{}", run.stdout);
}

#[test]
fn bundled_rule_tests_pass_with_full_arm_coverage() {
    let run = cavra(&["test", "../rules"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains(" passed, 0 failed"), "{}", run.stdout);
    assert!(!run.stdout.contains("arm not reached"), "{}", run.stdout);
}

#[test]
fn fmt_rewrites_a_file_and_keeps_comments() {
    let dir = std::env::temp_dir().join(format!("cavra-fmt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("messy.cavra");
    let messy = "pack   messy # the header\n# about the input\ninput owner:text\ndecision d{when owner==\"a\"=>suppress   quiet reason \"a is quiet\" # trailing\notherwise=>deliver}\n";
    std::fs::write(&file, messy).unwrap();
    let path = file.to_str().unwrap();

    let check = cavra(&["fmt", "--check", path]);
    assert_eq!(check.code, 1, "an unformatted file fails --check");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), messy, "--check does not write");

    assert_eq!(cavra(&["fmt", path]).code, 0);
    let formatted = std::fs::read_to_string(&file).unwrap();
    for comment in ["# the header", "# about the input", "# trailing"] {
        assert!(formatted.contains(comment), "{comment} lost:\n{formatted}");
    }
    assert_eq!(cavra(&["fmt", "--check", path]).code, 0, "formatting is idempotent:\n{formatted}");
    assert_eq!(cavra(&["check", path]).code, 0, "formatted text still checks:\n{formatted}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn eval_json_on_the_bundled_example_matches_the_sample_readme() {
    // examples/README: at 19:00Z the change freeze suppresses release-governance
    // on slack; teams routes are delivered.
    let mut cases = vec![
        ("release-governance", "slack", "2026-05-21T19:00:00Z", "suppress", "maintenance_window"),
        ("release-governance", "teams", "2026-05-21T19:00:00Z", "deliver", "deliver"),
        ("platform-operations", "teams", "2026-05-21T19:00:00Z", "deliver", "deliver"),
    ];
    // At 03:00Z the next day the regional holiday suppresses both release-governance routes.
    cases.push(("release-governance", "slack", "2026-05-22T03:00:00Z", "suppress", "owner_calendar"));
    cases.push(("release-governance", "teams", "2026-05-22T03:00:00Z", "suppress", "owner_calendar"));
    for (owner, provider, at, action, category) in cases {
        let owner_arg = format!("owner={owner}");
        let provider_arg = format!("provider={provider}");
        let run = cavra(&[
            "eval",
            "../rules/routing.cavra",
            "--input",
            "policy=../examples/routing-policy.json",
            "--set",
            &owner_arg,
            "--set",
            &provider_arg,
            "--set",
            "schedule_id=go_backend_python_fallback_monthly",
            "--set",
            "schedule_status=due_soon",
            "--at",
            at,
            "--json",
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let route = &out["decisions"]["route"];
        assert_eq!((route["action"].as_str(), route["category"].as_str()), (Some(action), Some(category)), "{owner} {provider} {at}");
    }
}
