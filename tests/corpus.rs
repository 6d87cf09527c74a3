//! The conformance corpus (tests/corpus): rule files with golden outputs.
//!
//! - `check/NAME.cavra` -> `check/NAME.out`: what `cavra check` prints
//!   (diagnostics as `file:line:col` with carets, then the summary) and its exit code.
//! - `eval/NAME.cavra` + `eval/NAME.args` (one CLI argument per line, paths
//!   relative to tests/) -> `eval/NAME.out`: `cavra eval --json --explain` output.
//!
//! - `rule-tests/NAME.test.toml` -> `rule-tests/NAME.out`: what `cavra test` prints.
//! - `runtime/NAME.args` (a `cavra runtime` subcommand and its flags, one per
//!   line) -> `runtime/NAME.out`: the readiness report and the exit code.
//!
//! Regenerate on purpose with `CAVRA_BLESS=1 cargo test -p cavra-tests --test corpus`
//! and review the diff.

use cavra_tests::{cavra, check_golden, fixtures, relative};

fn render(run: &cavra_tests::Run) -> String {
    format!("exit: {}\n--- stdout\n{}--- stderr\n{}", run.code, run.stdout, run.stderr)
}

#[test]
fn check_corpus() {
    let files = fixtures("corpus/check", ".cavra");
    assert!(files.len() >= 20, "the check corpus has only {} files", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let run = cavra(&["check", &relative(file)]);
        let golden = file.with_extension("out");
        if let Err(e) = check_golden(&golden, &render(&run)) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn check_corpus_json_diagnostics_are_well_formed() {
    for file in fixtures("corpus/check", ".cavra") {
        let run = cavra(&["check", "--error-format", "json", &relative(&file)]);
        let items: serde_json::Value = serde_json::from_str(&run.stdout).expect("json output");
        for d in items.as_array().expect("an array") {
            for key in ["file", "line", "column", "end_line", "end_column", "code", "message"] {
                assert!(d.get(key).is_some(), "{}: diagnostic without {key}: {d}", file.display());
            }
            let code = d["code"].as_str().unwrap_or_default();
            assert!(code.len() == 5 && (code.starts_with('E') || code.starts_with('W')), "bad code {code}");
        }
        let errors = items.as_array().map(|a| a.iter().filter(|d| d["severity"] == "error").count()).unwrap_or(0);
        assert_eq!(run.code != 0, errors > 0, "{}: exit code and errors disagree", file.display());
    }
}

/// Runs `cavra LEADING... FILE-ARGS...` for each `*.args` file (one argument
/// per line, `#` comments) in `dir`, comparing with the `.out` golden.
fn args_corpus(dir: &str, minimum: usize, leading: impl Fn(&std::path::Path) -> Vec<String>) {
    let files = fixtures(dir, ".args");
    assert!(files.len() >= minimum, "{dir} has only {} cases", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let lines = std::fs::read_to_string(file).unwrap_or_default();
        let mut args = leading(file);
        args.extend(lines.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        if let Err(e) = check_golden(&file.with_extension("out"), &render(&cavra(&argv))) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn eval_corpus() {
    args_corpus("corpus/eval", 10, |args_file| vec!["eval".into(), relative(&args_file.with_extension("cavra")), "--json".into(), "--explain".into()]);
}

#[test]
fn rule_test_corpus() {
    let files = fixtures("corpus/rule-tests", ".test.toml");
    assert!(files.len() >= 3);
    let mut failures = Vec::new();
    for file in &files {
        let run = cavra(&["test", &relative(file)]);
        let golden = file.with_file_name(file.file_name().unwrap().to_string_lossy().replace(".test.toml", ".out"));
        if let Err(e) = check_golden(&golden, &render(&run)) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn runtime_corpus() {
    args_corpus("corpus/runtime", 20, |_| vec!["runtime".into()]);
}
