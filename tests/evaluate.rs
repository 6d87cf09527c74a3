//! `cavra runtime go-pilot-evaluate` with external runtimes that the test
//! writes itself: one that agrees, one that disagrees, one that fails, one
//! that hangs and one that prints garbage. Whatever the runtime does, the
//! caller gets a decision; fallbacks say why.

#![cfg(unix)]

use cavra_tests::cavra;
use serde_json::Value as Json;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

struct Runtimes {
    dir: PathBuf,
}

impl Runtimes {
    /// The runtime scripts, written once per test binary (before any test
    /// spawns one, so that no write races an exec) and kept under target/.
    fn new() -> &'static Runtimes {
        static RUNTIMES: std::sync::OnceLock<Runtimes> = std::sync::OnceLock::new();
        RUNTIMES.get_or_init(|| {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cavra-runtimes");
            std::fs::create_dir_all(&dir).unwrap();
            let scripts = [
                // Reads the request and answers like the built-in pack for a destructive command.
                ("agrees", "cat > /dev/null\necho '{\"decision\": \"deny\", \"rule_id\": \"external_destructive\", \"severity\": \"critical\", \"reason\": \"external says no\"}'"),
                ("disagrees", "cat > /dev/null\necho '{\"decision\": \"allow\", \"rule_id\": \"external_allow\", \"severity\": \"low\"}'"),
                ("fails", "cat > /dev/null\necho 'boom' >&2\nexit 3"),
                ("hangs", "sleep 30"),
                ("garbage", "cat > /dev/null\necho 'not json at all'"),
                ("unknown", "cat > /dev/null\necho '{\"decision\": \"maybe\"}'"),
                // Echoes the request back in its reason, to prove what it receives.
                ("echo", "request=$(cat)\nprintf '{\"decision\": \"deny\", \"reason\": %s}' \"$(printf '%s' \"$request\" | sed 's/\\\\/\\\\\\\\/g; s/\"/\\\\\"/g; s/^/\"/; s/$/\"/')\""),
            ];
            for (name, body) in scripts {
                let path = dir.join(name);
                std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            Runtimes { dir }
        })
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

fn evaluate(extra: &[&str]) -> Json {
    let mut args = vec!["runtime", "go-pilot-evaluate", "execute_command", "rm -rf /", "--at", "2026-05-21T19:00:00Z", "--json"];
    args.extend_from_slice(extra);
    let run = cavra(&args);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[test]
fn the_builtin_decision_without_a_runtime() {
    let doc = evaluate(&["--mode", "disabled"]);
    assert_eq!(doc["schema_version"], "cavra.go-backend-pilot.evaluation.v1");
    assert_eq!(doc["selected_backend"], "builtin");
    assert_eq!(doc["fallback_used"], false);
    assert_eq!(doc["effective_decision"]["decision"], "deny");
    assert_eq!(doc["effective_decision"], doc["builtin_decision"]);
    assert!(doc["external_decision"].is_null());
}

#[test]
fn enforce_mode_selects_an_agreeing_runtime() {
    let runtimes = Runtimes::new();
    let doc = evaluate(&["--mode", "enforce", "--runtime-path", &runtimes.path("agrees")]);
    assert_eq!(doc["selected_backend"], "external");
    assert_eq!(doc["fallback_used"], false);
    assert_eq!(doc["parity_match"], true);
    assert_eq!(doc["effective_decision"]["rule_id"], "external_destructive");
}

#[test]
fn shadow_mode_compares_but_keeps_the_builtin_decision() {
    let runtimes = Runtimes::new();
    let doc = evaluate(&["--mode", "shadow", "--runtime-path", &runtimes.path("disagrees")]);
    assert_eq!(doc["selected_backend"], "builtin");
    assert_eq!(doc["fallback_used"], false);
    assert_eq!(doc["parity_match"], false);
    assert_eq!(doc["external_decision"]["decision"], "allow");
    assert_eq!(doc["effective_decision"]["decision"], "deny");
}

#[test]
fn every_runtime_failure_falls_back_with_its_reason() {
    let runtimes = Runtimes::new();
    for (name, expected) in [
        ("disagrees", "the external runtime decided \"allow\" but the built-in decision is \"deny\""),
        ("fails", "the external runtime failed"),
        ("garbage", "did not answer JSON"),
        ("unknown", "answered no valid decision"),
    ] {
        let doc = evaluate(&["--mode", "enforce", "--runtime-path", &runtimes.path(name)]);
        assert_eq!(doc["selected_backend"], "builtin", "{name}");
        assert_eq!(doc["fallback_used"], true, "{name}");
        let reason = doc["fallback_reason"].as_str().unwrap_or_default();
        assert!(reason.contains(expected), "{name}: {reason}");
        assert_eq!(doc["effective_decision"], doc["builtin_decision"], "{name}");
    }
    let missing = evaluate(&["--mode", "enforce", "--runtime-path", "/no/such/runtime"]);
    assert!(missing["fallback_reason"].as_str().unwrap_or_default().contains("could not be started"));
}

#[test]
fn a_hanging_runtime_times_out_and_falls_back() {
    let runtimes = Runtimes::new();
    let doc = evaluate(&["--mode", "enforce", "--runtime-path", &runtimes.path("hangs"), "--runtime-timeout-ms", "300"]);
    assert_eq!(doc["fallback_used"], true);
    assert_eq!(doc["fallback_reason"], "the external runtime did not answer within 300 ms");
    assert_eq!(doc["effective_decision"]["decision"], "deny");
}

#[test]
fn the_runtime_receives_the_request_on_stdin() {
    let runtimes = Runtimes::new();
    let doc = evaluate(&["--mode", "enforce", "--runtime-path", &runtimes.path("echo")]);
    let request: Json = serde_json::from_str(doc["external_decision"]["reason"].as_str().unwrap()).unwrap();
    assert_eq!(request["action_type"], "execute_command");
    assert_eq!(request["target"], "rm -rf /");
    assert_eq!(request["mode"], "enforce");
}

#[test]
fn promoted_mode_needs_every_gate_before_using_the_runtime() {
    let runtimes = Runtimes::new();
    let examples = cavra_tests::crate_dir().join("../examples");
    let doc_path = |name: &str| examples.join(name).display().to_string();
    let (plan, evidence, rehearsal, drills, schedule) = (
        doc_path("rollback-plan.json"),
        doc_path("promotion-evidence.json"),
        doc_path("rollback-rehearsal.json"),
        doc_path("rollback-drills.json"),
        doc_path("rollback-drill-schedule.json"),
    );
    let agrees = runtimes.path("agrees");
    let all_gates = [
        "--mode",
        "promoted",
        "--runtime-path",
        &agrees,
        "--rollback-plan-path",
        &plan,
        "--promotion-evidence-path",
        &evidence,
        "--rollback-rehearsal-path",
        &rehearsal,
        "--rollback-drill-history-path",
        &drills,
        "--rollback-drill-schedule-path",
        &schedule,
    ];
    let doc = evaluate(&all_gates);
    assert_eq!(doc["selected_backend"], "external", "{doc:#}");
    assert_eq!(doc["go_backend_rollback_drill_schedule"]["status"], "due_soon");

    // Without the promotion evidence the promotion gate needs attention: fall back, naming it.
    let without_promotion: Vec<&str> = all_gates.iter().copied().filter(|a| *a != "--promotion-evidence-path" && *a != evidence).collect();
    let doc = evaluate(&without_promotion);
    assert_eq!(doc["selected_backend"], "builtin");
    assert_eq!(doc["fallback_reason"], "the go_backend_promotion gate is needs_attention");
}

/// Runs the built `cavra` binary (as a user would, not in-process) with
/// `go-pilot-evaluate` and `args` after the action.
fn evaluate_binary(args: &[&str]) -> std::process::Output {
    std::process::Command::new(cavra_tests::cavra_binary())
        .args(["runtime", "go-pilot-evaluate", "execute_command", "rm -rf /", "--at", "2026-05-21T19:00:00Z"])
        .args(args)
        .env_remove("CAVRA_GO_BACKEND_MODE")
        .output()
        .expect("run cavra")
}

/// The product's documented runtime layout: a compiled policy file and a release package folder.
fn runtime_files(test: &str) -> (String, String) {
    let dir = cavra_tests::fresh_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(test));
    let package = dir.join("go-runtime-release");
    std::fs::create_dir_all(&package).unwrap();
    let policy = dir.join("compiled-policy.json");
    std::fs::write(&policy, "{\"rules\": []}\n").unwrap();
    (policy.display().to_string(), package.display().to_string())
}

#[test]
fn the_policy_path_and_package_dir_reach_the_runtime_and_the_evaluation() {
    let runtimes = Runtimes::new();
    let (policy, package) = runtime_files("runtime-files-given");
    let output =
        evaluate_binary(&["--mode", "enforce", "--runtime-path", &runtimes.path("echo"), "--policy-path", &policy, "--package-dir", &package, "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let doc: Json = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((doc["policy_path"].as_str(), doc["package_dir"].as_str()), (Some(policy.as_str()), Some(package.as_str())));
    let request: Json = serde_json::from_str(doc["external_decision"]["reason"].as_str().unwrap()).unwrap();
    assert_eq!((request["policy_path"].as_str(), request["package_dir"].as_str()), (Some(policy.as_str()), Some(package.as_str())));

    // The table says what the runtime ran with.
    let output = evaluate_binary(&["--policy-path", &policy, "--package-dir", &package]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains(&format!("  policy_path: {policy}\n  package_dir: {package}\n")), "{table}");

    // Not given: both are null, in the output and in the runtime's request.
    let output = evaluate_binary(&["--mode", "enforce", "--runtime-path", &runtimes.path("echo"), "--json"]);
    let doc: Json = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((&doc["policy_path"], &doc["package_dir"]), (&Json::Null, &Json::Null), "{doc:#}");
    let request: Json = serde_json::from_str(doc["external_decision"]["reason"].as_str().unwrap()).unwrap();
    assert_eq!((&request["policy_path"], &request["package_dir"]), (&Json::Null, &Json::Null), "{request:#}");
}

#[test]
fn a_runtime_file_that_is_missing_of_the_wrong_kind_or_not_public_safe_is_a_usage_error_naming_its_flag() {
    let (policy, package) = runtime_files("runtime-files-wrong");
    let hostname_dir = PathBuf::from(&package).join("releases.internal.example.com");
    std::fs::create_dir_all(&hostname_dir).unwrap();
    let hostname_dir = hostname_dir.display().to_string();
    let missing = format!("{package}/no-such-policy.json");
    let cases: [(&[&str], &str); 4] = [
        (&["--policy-path", &missing], "error: --policy-path: "),
        (&["--policy-path", &package], "error: --policy-path: "),
        (&["--policy-path", &policy, "--package-dir", &policy], "error: --package-dir: "),
        (&["--package-dir", &hostname_dir], "error: --package-dir: the path is not public-safe"),
    ];
    let expected_reason = ["no such file or folder", "not a file", "not a folder", "looks like a hostname"];
    for ((args, head), reason) in cases.iter().zip(expected_reason) {
        let output = evaluate_binary(&[*args, &["--json"][..]].concat());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}: nothing is evaluated");
        assert!(stderr.starts_with(head) && stderr.contains(reason), "{args:?}: {stderr}");
    }
    // A path that is not public-safe is never quoted back.
    let output = evaluate_binary(&["--package-dir", &hostname_dir]);
    assert!(!String::from_utf8_lossy(&output.stderr).contains("example.com"));
}

#[test]
fn the_api_evaluates_with_the_servers_runtime_files_and_refuses_to_start_without_them() {
    let (policy, package) = runtime_files("runtime-files-api");
    let dir = cavra_tests::fresh_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("runtime-files-api-store"));
    let server = cavra_tests::http::Server::start(
        &["--store", &dir.join("cavra.db").display().to_string(), "--policy-path", &policy, "--package-dir", &package].map(String::from),
        &[],
    );
    let answer = server.post("/runtime/go-pilot/evaluate", r#"{"action_type": "execute_command", "target": "rm -rf /"}"#);
    let doc = answer.json();
    assert_eq!((doc["policy_path"].as_str(), doc["package_dir"].as_str()), (Some(policy.as_str()), Some(package.as_str())), "{doc:#}");
    // A caller never names a path on the server.
    let answer = server.post("/runtime/go-pilot/evaluate", r#"{"action_type": "execute_command", "target": "ls", "policy_path": "/etc/passwd"}"#);
    assert_eq!(answer.status, 422);
    drop(server);

    let output = std::process::Command::new(cavra_tests::cavra_binary())
        .args(["api", "--listen", "127.0.0.1:0", "--policy-path", &format!("{package}/missing.json")])
        .env_remove("CAVRA_API_TOKENS")
        .output()
        .expect("run cavra api");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: --policy-path: ") && stderr.contains("no such file or folder"), "{stderr}");
}
