//! The real `cavra` executable: exit codes, help text and the bundled defaults.

use std::process::Command;

fn cavra(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cavra")).args(args).output().expect("run cavra");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn bundled_rule_tests_pass_from_any_directory() {
    let out = Command::new(env!("CARGO_BIN_EXE_cavra")).arg("test").current_dir(std::env::temp_dir()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.lines().any(|l| l.ends_with(" passed, 0 failed")), "{stdout}");
}

#[test]
fn help_lists_every_command_with_examples() {
    let (code, stdout, _) = cavra(&["--help"]);
    assert_eq!(code, 0);
    for command in ["check", "eval", "test", "fmt"] {
        assert!(stdout.contains(command), "--help does not mention {command}");
        let (code, help, _) = cavra(&[command, "--help"]);
        assert_eq!(code, 0);
        assert!(help.contains("Examples:"), "`cavra {command} --help` has no examples");
    }
}

#[test]
fn usage_errors_exit_2_and_rule_errors_exit_1() {
    let (code, _, stderr) = cavra(&["eval"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = cavra(&["check", "no/such/dir"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no/such/dir"), "{stderr}");

    let dir = std::env::temp_dir().join(format!("cavra-binary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.cavra");
    std::fs::write(&bad, "pack bad\ndecision d {\n  when owner == 1 => deliver\n}\n").unwrap();
    let (code, _, stderr) = cavra(&["check", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("bad.cavra:3:8"), "{stderr}");
    assert!(stderr.contains("E0100") && stderr.contains("E0300"), "all errors at once: {stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn deeply_nested_input_is_refused_not_crashing() {
    let dir = std::env::temp_dir().join(format!("cavra-deep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, body) in [
        ("parens", format!("{}1{}", "(".repeat(5000), ")".repeat(5000))),
        ("ifs", "if true then 1 else ".repeat(5000) + "1"),
        ("quantifiers", (0..5000).map(|i| format!("any x{i} in [1] where ")).collect::<String>() + "true"),
        ("nots", "not ".repeat(20000) + "true"),
        ("sum", "1 + ".repeat(50000) + "1"),
    ] {
        let file = dir.join(format!("{name}.cavra"));
        std::fs::write(&file, format!("pack deep\nlet _v = {body}\ndecision d {{ otherwise => deliver }}\n")).unwrap();
        let (code, _, stderr) = cavra(&["check", file.to_str().unwrap()]);
        assert_eq!(code, 1, "{name}: {stderr}");
        assert!(stderr.contains("E0002"), "{name}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_demo_runs_the_main_job_on_the_embedded_defaults() {
    let dir = std::env::temp_dir().join(format!("cavra-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |dir: &std::path::Path| Command::new(env!("CARGO_BIN_EXE_cavra")).arg("demo").current_dir(dir).env_remove("CAVRA_STORE").output().unwrap();
    let out = run(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("production_readiness.v1: ready"), "{stdout}");
    assert!(stdout.contains("release-governance   slack     suppress  maintenance_window"), "{stdout}");
    assert!(dir.join(".cavra/cavra.db").is_file(), "the plan is stored");
    assert!(stdout.contains("2 delivered, 0 failed"), "{stdout}");
    // A second run is the same plan (same time, same content): stored once,
    // sent once, and it says so; the rest of its output is the same.
    let again = run(&dir);
    assert_eq!(again.status.code(), Some(0));
    let again = String::from_utf8_lossy(&again.stdout);
    assert!(again.contains("already stored: the same plan was made before, nothing new was written"), "{again}");
    assert!(again.contains("0 delivered, 0 failed, 0 escalations sent, 3 left open (0 failed earlier) (0 attempts)"), "{again}");
    let tail = |text: &str| text.split("# The notifications' state afterwards").nth(1).map(str::to_string);
    assert_eq!(tail(&again), tail(&stdout), "the notifications' state is the same");
    std::fs::remove_dir_all(&dir).ok();
}
