//! The README's exit-code table, row by row, on real invocations of the
//! built `cavra` binary: every code the table states is produced by the
//! commands it names, and the table lists every code the binary uses.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The rows of README.md's "Exit codes" table: (code, meaning).
fn readme_rows() -> Vec<(i32, String)> {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let table = readme.split("### Exit codes").nth(1).expect("README.md has an `### Exit codes` section");
    table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            Some((cells.get(1)?.parse().ok()?, cells.get(2)?.to_string()))
        })
        .collect()
}

fn repo() -> PathBuf {
    cavra_tests::crate_dir().join("..")
}

/// Runs the binary in the repository (so `rules/` and `examples/` resolve),
/// with none of the tests' own cavra settings.
fn code(args: &[&str], store: &Path) -> i32 {
    let mut command = Command::new(cavra_tests::cavra_binary());
    command.current_dir(repo()).args(args).env("CAVRA_STORE", store);
    for var in ["CAVRA_GO_BACKEND_MODE", "CAVRA_GO_ROLLBACK_PLAN", "CAVRA_CONNECTOR_CONFIG", "CAVRA_PLUGIN_PATH", "CAVRA_API_TOKENS"] {
        command.env_remove(var);
    }
    let output = command.output().expect("run cavra");
    output.status.code().unwrap_or_else(|| panic!("cavra {args:?} was killed: {}", String::from_utf8_lossy(&output.stderr)))
}

/// The routing pack's `--set` inputs for one route, all given.
const ROUTE: [&str; 12] = [
    "--input",
    "policy=examples/routing-policy.json",
    "--set",
    "owner=release-governance",
    "--set",
    "provider=slack",
    "--set",
    "schedule_id=go_backend_python_fallback_monthly",
    "--set",
    "schedule_status=due_soon",
    "--at",
    "2026-05-21T19:00:00Z",
];

#[test]
fn every_row_of_the_exit_code_table_is_what_the_binary_does() {
    let dir = cavra_tests::fresh_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("exit-codes"));
    let store = dir.join("cavra.db");
    let broken = dir.join("broken.cavra");
    std::fs::write(&broken, "pack broken\ninput owner: text\ndecision route {\n  when ownr == \"x\" => suppress typo\n  otherwise => deliver\n}\n").unwrap();
    let unformatted = dir.join("unformatted.cavra");
    std::fs::write(&unformatted, "pack loose\ninput owner: text\ndecision route {\n      otherwise   =>   deliver\n}\n").unwrap();
    let (broken, unformatted) = (broken.display().to_string(), unformatted.display().to_string());
    let with = |head: &[&'static str], tail: &[&'static str]| -> Vec<&'static str> { [head, tail].concat() };
    let route = |tail: &[&'static str]| with(&["eval", "rules/routing.cavra"], &[&ROUTE[..], tail].concat());
    // Every route input but `owner`, and then an input the pack does not have: both the caller's mistake.
    let without_owner: Vec<&str> = [&["eval", "rules/routing.cavra"][..], &ROUTE[..2], &ROUTE[4..]].concat();
    let readiness = ["runtime", "go-rollback-readiness", "--at", "2026-05-21T19:00:00Z"];
    // `cavra diff` on the sample policy against itself, and against a copy whose freeze ends an hour later.
    let diff = |against: &'static str| -> Vec<&'static str> {
        vec!["diff", "rules/routing.cavra", "--input", "policy=examples/routing-policy.json", "--against", against, "--at", "2026-05-21T00:00:00Z"]
    };

    let cases: Vec<(i32, Vec<&str>)> = vec![
        (0, vec!["--help"]),
        (0, vec!["runtime", "--help"]),
        (0, vec!["check", "rules/routing.cavra"]),
        (0, route(&[])),
        (0, route(&["--explain", "--json"])),
        (0, with(&readiness, &["--mode", "promoted", "--rollback-plan-path", "examples/rollback-plan.json"])),
        (0, with(&readiness, &["--mode", "disabled"])),
        (0, diff("policy=examples/routing-policy.json")),
        (1, vec!["check", &broken]),
        (1, vec!["eval", &broken, "--set", "owner=x"]),
        (1, vec!["fmt", "--check", &unformatted]),
        (1, vec!["test", "tests/corpus/rule-tests/failing.test.toml"]),
        (1, vec!["eval", "tests/corpus/eval/runtime-error-division-by-zero.cavra", "--set", "failures=3", "--set", "runs=0"]),
        (2, vec!["frobnicate"]),
        (2, vec!["check", "--no-such-flag", "rules/"]),
        (2, vec!["check"]),
        (2, without_owner.clone()),
        (2, [&without_owner[..], &["--explain", "--json"][..]].concat()),
        (2, route(&["--set", "ownr=release-governance"])),
        (2, vec!["eval", "rules/routing.cavra", "--input", "policy=examples/no-such-policy.json"]),
        (2, vec!["check", "no/such/folder"]),
        (2, with(&readiness, &["--mode", "bogus"])),
        (2, with(&readiness, &["--at", "yesterday"])),
        (
            2,
            vec![
                "runtime",
                "go-rollback-drill-notification-plan",
                "--mode",
                "promoted",
                "--rollback-drill-schedule-path",
                "examples/rollback-drill-schedule.json",
                "--provider",
                "slak",
                "--no-store",
            ],
        ),
        (2, vec!["runtime", "go-pilot-evaluate", "read_file", "README.md", "--policy-path", "examples/no-such-policy.json"]),
        (2, diff("policy=examples/no-such-policy.json")),
        (3, with(&readiness, &["--mode", "promoted"])),
        (3, diff("policy=tests/corpus/diff/routing-policy-freeze-until-21.json")),
        (3, with(&readiness, &["--mode", "promoted", "--rollback-plan-path", "examples/no-such-plan.json"])),
        (3, with(&["runtime", "production-readiness", "--at", "2026-05-21T19:00:00Z"], &["--mode", "promoted"])),
    ];

    let mut wrong = Vec::new();
    for (expected, args) in &cases {
        let got = code(args, &store);
        if got != *expected {
            wrong.push(format!("cavra {}: exit {got}, the README says {expected}", args.join(" ")));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // The table and the tests agree on which codes exist. 70 is a panic
    // inside cavra, which no correct invocation can cause.
    let untestable = [(cavra::exit::INTERNAL, "a panic inside cavra (a bug)")];
    let rows = readme_rows();
    let mut documented: Vec<i32> = rows.iter().map(|(code, _)| *code).collect();
    documented.sort_unstable();
    let mut tested: Vec<i32> = cases.iter().map(|(code, _)| *code).chain(untestable.iter().map(|(code, _)| *code)).collect();
    tested.sort_unstable();
    tested.dedup();
    assert_eq!(documented, tested, "README.md's exit codes and the ones tested differ: {rows:?}");
    let constants = [cavra::exit::OK, cavra::exit::FAILED, cavra::exit::USAGE, cavra::exit::NEEDS_ATTENTION, cavra::exit::INTERNAL];
    assert_eq!(documented, constants, "README.md's exit codes and cavra::exit differ");
}
