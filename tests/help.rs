//! `--help` as users read it, from the built binary at 80 columns: every
//! command, group and report subcommand has its own examples, printed
//! verbatim (never a command line broken by wrapping); `cavra api --help`
//! says what its flags do; shell completions and the man page are generated
//! from the same definitions.

use std::process::{Command, Output};

fn cavra(args: &[&str]) -> Output {
    Command::new(cavra_tests::cavra_binary()).args(args).env("COLUMNS", "80").env_remove("CAVRA_STORE").output().expect("run cavra")
}

fn stdout(args: &[&str]) -> String {
    let output = cavra(args);
    assert_eq!(output.status.code(), Some(0), "cavra {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8 help")
}

/// The subcommands a help page lists under `Commands:` (not `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|name| name != "help")
        .collect()
}

/// Every command path, the root first (`[]`, `["check"]`, `["runtime", "go-rollback-readiness"]`, ...).
fn command_paths() -> Vec<Vec<String>> {
    let mut paths = vec![Vec::new()];
    let mut i = 0;
    while i < paths.len() {
        let path = paths[i].clone();
        let args: Vec<&str> = path.iter().map(String::as_str).chain(["--help"]).collect();
        for sub in subcommands(&stdout(&args)) {
            paths.push([path.clone(), vec![sub]].concat());
        }
        i += 1;
    }
    paths
}

/// The lines after `Examples:`, to the end of the help.
fn examples(help: &str) -> Option<Vec<&str>> {
    let mut lines = help.lines().skip_while(|l| *l != "Examples:");
    lines.next()?;
    Some(lines.take_while(|l| !l.is_empty()).collect())
}

/// `cavra ...`, `NAME=value cavra ...` or `printf ... | cavra ...`: what
/// an example's first line looks like (a wrapped piece of a command does not).
fn starts_a_command(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or_default();
    let assignment = first.split_once('=').is_some_and(|(name, _)| !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
    first == "cavra" || assignment || line.contains(" | cavra ")
}

/// Why an example block is not a list of whole command lines: each line
/// starts a command (two spaces, then not a flag) or, after a line ending
/// in `\`, continues it (six spaces).
fn broken_lines(block: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut continues = false;
    for line in block {
        let indent = line.len() - line.trim_start().len();
        let ok = if continues { indent == 6 } else { indent == 2 && starts_a_command(line) };
        if !ok {
            problems.push(format!("{line:?} ({})", if continues { "not a continuation" } else { "a broken command line" }));
        }
        continues = line.ends_with('\\');
    }
    if continues {
        problems.push("the block ends inside a command line".into());
    }
    problems
}

#[test]
fn every_command_shows_its_own_examples_verbatim_at_80_columns() {
    let paths = command_paths();
    assert!(paths.len() > 25, "only {} commands found: {paths:?}", paths.len());
    let mut failures = Vec::new();
    for path in &paths {
        for flag in ["--help", "-h"] {
            let args: Vec<&str> = path.iter().map(String::as_str).chain([flag]).collect();
            let help = stdout(&args);
            let shown = format!("cavra {}", args.join(" "));
            let Some(block) = examples(&help) else {
                failures.push(format!("{shown}: no examples"));
                continue;
            };
            failures.extend(broken_lines(&block).into_iter().map(|p| format!("{shown}: {p}")));
            // Its own examples: each command's block runs that command (a group's, one of its own).
            let own = format!("cavra {}", path.join(" "));
            if !block.iter().any(|l| l.contains(own.trim_end())) {
                failures.push(format!("{shown}: no example runs `{own}`"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_report_subcommands_each_show_an_example_of_themselves() {
    for report in
        ["go-rollback-readiness", "go-promotion-readiness", "go-rollback-rehearsal", "go-rollback-drills", "go-rollback-drill-schedule", "production-readiness"]
    {
        let help = stdout(&["runtime", report, "-h"]);
        let block = examples(&help).unwrap_or_default();
        assert!(block.first().is_some_and(|l| l.starts_with(&format!("  cavra runtime {report} "))), "{report}: {block:#?}");
    }
}

#[test]
fn the_broken_line_check_finds_a_wrapped_command() {
    // What clap's wrapping did to `go-rollback-drill-routes --help` at 80 columns.
    let wrapped = ["  cavra runtime go-rollback-drill-routes --provider slack --limit 20 --offset 20 --store", "  /var/lib/cavra/cavra.db"];
    assert_eq!(broken_lines(&wrapped).len(), 1);
    let whole = ["  cavra runtime go-rollback-drill-routes --provider slack \\", "      --store /var/lib/cavra/cavra.db", "  cavra test"];
    assert!(broken_lines(&whole).is_empty());
}

#[test]
fn api_help_describes_its_own_flags() {
    let help = stdout(&["api", "--help"]);
    let flag = |name: &str| -> String {
        let mut lines = help.lines().skip_while(|l| !l.trim_start().starts_with(name));
        lines.next();
        lines.take_while(|l| !l.trim().is_empty()).collect::<Vec<_>>().join(" ")
    };
    let json = flag("--json");
    assert!(json.contains("JSON object per line") && !json.contains("report"), "--json: {json}");
    let tokens = flag("--tokens <FILE>");
    assert!(!tokens.contains("see above") && tokens.contains("sha256:<hex>"), "--tokens: {tokens}");
    for flag in ["--policy-path", "--package-dir", "--runtime-path"] {
        assert!(help.contains(flag), "{flag}");
    }
}

#[test]
fn completions_name_every_command_for_each_shell() {
    let bash = stdout(&["completions", "bash"]);
    assert!(bash.contains("complete -F _cavra"), "{bash}");
    for word in ["check", "eval", "diff", "runtime", "go-rollback-readiness", "go-pilot-evaluate", "--policy-path", "completions", "manpage"] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    let zsh = stdout(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef cavra") && zsh.contains("go-rollback-drill-notification-plan"));
    let fish = stdout(&["completions", "fish"]);
    assert!(fish.contains("complete -c cavra") && fish.contains("go-rollback-drill-routes"));
    assert_eq!(cavra(&["completions", "powershell"]).status.code(), Some(2), "an unknown shell is a usage error");
}

#[test]
fn the_man_page_is_roff_naming_the_commands() {
    let page = stdout(&["manpage"]);
    // clap_mangen opens with the `Aq` string definition (`.ie`/`.el`), then the title.
    let first = page.lines().find(|l| !l.starts_with(".ie") && !l.starts_with(".el")).unwrap_or_default();
    assert!(first.starts_with(".TH cavra 1"), "{first}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH SUBCOMMANDS"] {
        assert!(page.contains(section), "{section}");
    }
    for command in ["check", "eval", "diff", "test", "fmt", "runtime", "api", "plugins", "demo", "completions", "manpage"] {
        assert!(page.contains(&format!("cavra\\-{command}(1)")), "the page names {command}");
    }

    let dir = cavra_tests::fresh_dir(std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("manpages"));
    stdout(&["manpage", "--dir", &dir.display().to_string()]);
    for file in ["cavra.1", "cavra-runtime.1", "cavra-runtime-go-rollback-readiness.1", "cavra-runtime-go-pilot-evaluate.1"] {
        let page = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(page.contains(".TH "), "{file}");
    }
    let evaluate = std::fs::read_to_string(dir.join("cavra-runtime-go-pilot-evaluate.1")).unwrap();
    assert!(evaluate.contains("policy\\-path") && evaluate.contains("package\\-dir"));
    // The examples are a no-fill block, so `man` keeps their lines as written.
    let examples = evaluate.split("Examples:\n").nth(1).expect("the page has examples");
    assert!(examples.starts_with(".nf\n") && examples.contains("\n.fi\n"), "{examples}");
    assert!(!dir.join("cavra-plugin-child.1").exists(), "hidden commands have no page");
}
