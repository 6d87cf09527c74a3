//! The documentation's command examples are real: every ```` ```console ````
//! block of README.md and docs/*.md is run against the built `cavra` binary
//! and what it prints is compared with what the document shows.
//!
//! **Blocks.** In a console block, a line starting with `$ ` is a command (a
//! line ending in `\` continues it on the next line, as in a shell); the other
//! lines are the expected output of the command before them. A line `...`
//! matches any number of lines (none included). Trailing spaces and trailing
//! empty lines are ignored; everything else must match exactly, so a command
//! shown without output must print nothing.
//!
//! **Output compared.** What the user sees in a terminal: the command's
//! stdout and stderr go to one file (one open file, so their writes stay in
//! the order they were made), and that is compared. Error text a command
//! writes to stderr (diagnostics, `error: ...`) is therefore part of its
//! expected output. The exit status is not compared, but a document may show
//! it with `$ echo $?` (the status of the previous command is kept for that).
//!
//! **Where and how.** The blocks of one document run in order, in one fresh
//! temporary folder holding copies of the repository's `examples/` and
//! `rules/` (so documented relative paths work, and later blocks see what
//! earlier ones stored, such as `.cavra/cavra.db`). Each command runs as
//! `sh -c COMMAND` with a clean, fixed environment: `PATH` starts with the
//! folder of the built `cavra` binary, `HOME` and `TMPDIR` are inside the
//! temporary folder, `TZ=UTC` and `LC_ALL=C`, and nothing else: no `CAVRA_*`
//! variable leaks in from the developer's shell. What a command exports (and
//! the folder it `cd`s to) carries over to the next commands of the document,
//! as in one shell session. Each command has its own deadline
//! ([`DEADLINE`]): a command that hangs is killed and reported, it does not
//! hang the test.
//!
//! **Skipping.** A block that cannot run here (a live provider, a
//! long-running server) carries an HTML comment on the line just before its
//! fence, `<!-- skip: needs a running server -->`; it is reported as skipped
//! with that reason. A skip marker anywhere else is an error.
//!
//! The test prints how many documented commands it ran and which blocks it
//! skipped, and fails listing every mismatch with its `document:line`, the
//! command, the expected and the actual output.

#![cfg(unix)]

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one documented command may run.
const DEADLINE: Duration = Duration::from_secs(60);

/// One `$ ` command of a block and the output shown after it.
struct Example {
    line: usize,
    command: String,
    expected: Vec<String>,
}

/// One ```` ```console ```` block: where it starts, why it is skipped (if it
/// is), and its commands.
struct Block {
    line: usize,
    skip: Option<String>,
    examples: Vec<Example>,
}

/// The reason of a `<!-- skip: REASON -->` line.
fn skip_reason(line: &str) -> Option<&str> {
    line.trim().strip_prefix("<!--")?.strip_suffix("-->")?.trim().strip_prefix("skip:").map(str::trim)
}

/// The console blocks of a document (line numbers are 1-based), or what is
/// wrong with how they are written.
fn console_blocks(doc: &str, markdown: &str) -> Result<Vec<Block>, Vec<String>> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut blocks = Vec::new();
    let mut errors = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(reason) = skip_reason(line) {
            if reason.is_empty() {
                errors.push(format!("{doc}:{}: a skip marker needs a reason: `<!-- skip: why -->`", i + 1));
            }
            if lines.get(i + 1).map(|l| l.trim()) != Some("```console") {
                errors.push(format!("{doc}:{}: a skip marker must be on the line just before a ```console block", i + 1));
            }
        }
        let fence = line.trim_start();
        if !fence.starts_with("```") {
            i += 1;
            continue;
        }
        let start = i;
        let body_end = (i + 1..lines.len()).find(|&j| lines[j].trim() == "```").unwrap_or(lines.len());
        i = body_end + 1;
        if fence.trim() != "```console" {
            continue;
        }
        let skip = start.checked_sub(1).and_then(|p| skip_reason(lines[p])).map(str::to_string);
        let mut examples: Vec<Example> = Vec::new();
        let mut j = start + 1;
        while j < body_end {
            let text = lines[j];
            if let Some(first) = text.strip_prefix("$ ") {
                let line = j + 1;
                let mut command = first.to_string();
                while command.ends_with('\\') && j + 1 < body_end {
                    j += 1;
                    command.push('\n');
                    command.push_str(lines[j]);
                }
                examples.push(Example { line, command, expected: Vec::new() });
            } else if let Some(example) = examples.last_mut() {
                example.expected.push(text.to_string());
            } else if !text.trim().is_empty() {
                errors.push(format!("{doc}:{}: output before the block's first `$ ` command", j + 1));
            }
            j += 1;
        }
        if examples.is_empty() {
            errors.push(format!("{doc}:{}: a console block without a `$ ` command", start + 1));
        }
        blocks.push(Block { line: start + 1, skip, examples });
    }
    if errors.is_empty() {
        Ok(blocks)
    } else {
        Err(errors)
    }
}

/// Lines without trailing spaces, without trailing empty lines.
fn normalized<S: AsRef<str>>(lines: &[S]) -> Vec<&str> {
    let mut out: Vec<&str> = lines.iter().map(|l| l.as_ref().trim_end()).collect();
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out
}

/// Whether `actual` matches `expected`, where a line `...` matches any lines.
fn matches(expected: &[&str], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((&"...", rest)) => (0..=actual.len()).any(|skip| matches(rest, &actual[skip..])),
        Some((line, rest)) => actual.first() == Some(line) && matches(rest, &actual[1..]),
    }
}

/// One document's shell session: its folder, the environment and working
/// folder its commands left behind, and the last command's exit status.
struct Session {
    state: PathBuf,
    env: BTreeMap<String, String>,
    cwd: PathBuf,
    status: i32,
}

/// What one command printed, and how it ended.
struct Outcome {
    output: String,
    status: Option<i32>,
    timed_out: bool,
}

impl Session {
    /// A fresh folder `<root>/work` with copies of `examples/` and `rules/`.
    fn new(root: &Path, repo: &Path, bin: &Path) -> Session {
        let root = cavra_tests::fresh_dir(root.to_path_buf());
        let work = root.join("work");
        cavra_tests::copy_dir(&repo.join("examples"), &work.join("examples"));
        cavra_tests::copy_dir(&repo.join("rules"), &work.join("rules"));
        let (state, home, tmp) = (root.join("state"), root.join("home"), root.join("tmp"));
        for dir in [&state, &home, &tmp] {
            std::fs::create_dir_all(dir).expect("session folder");
        }
        let env = BTreeMap::from([
            ("PATH".to_string(), format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display())),
            ("HOME".to_string(), home.display().to_string()),
            ("TMPDIR".to_string(), tmp.display().to_string()),
            ("TZ".to_string(), "UTC".to_string()),
            ("LC_ALL".to_string(), "C".to_string()),
        ]);
        Session { state, env, cwd: work, status: 0 }
    }

    /// Runs `command` with `sh -c`, in the session's folder and environment,
    /// then keeps the environment and folder it leaves. A command still
    /// running after `deadline` is killed with everything it started.
    fn run(&mut self, command: &str, deadline: Duration) -> Outcome {
        let (env_file, pwd_file, out_file) = (self.state.join("env"), self.state.join("pwd"), self.state.join("output"));
        let script = format!(
            "(exit {})\n{command}\n__cavra_docs_status=$?\nenv -0 > '{}'\npwd > '{}'\nexit $__cavra_docs_status\n",
            self.status,
            env_file.display(),
            pwd_file.display()
        );
        let out = File::create(&out_file).expect("output file");
        let err = out.try_clone().expect("output file");
        let _ = std::fs::remove_file(&env_file);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .current_dir(&self.cwd)
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .expect("run sh");
        let started = Instant::now();
        let (status, timed_out) = loop {
            if let Some(status) = child.try_wait().expect("wait for sh") {
                break (status.code(), false);
            }
            if started.elapsed() > deadline {
                // The whole process group: sh and whatever it started.
                let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
                let _ = child.kill();
                let _ = child.wait();
                break (None, true);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let output = String::from_utf8_lossy(&std::fs::read(&out_file).unwrap_or_default()).into_owned();
        self.status = status.unwrap_or(128);
        if let Ok(env) = std::fs::read(&env_file) {
            self.env = String::from_utf8_lossy(&env)
                .split('\0')
                .filter_map(|pair| pair.split_once('='))
                .filter(|(name, _)| !["_", "PWD", "OLDPWD", "SHLVL"].contains(name))
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect();
        }
        if let Ok(pwd) = std::fs::read_to_string(&pwd_file) {
            self.cwd = PathBuf::from(pwd.trim_end_matches('\n'));
        }
        Outcome { output, status, timed_out }
    }
}

fn quoted(lines: &[&str]) -> String {
    if lines.is_empty() {
        return "    (nothing)\n".to_string();
    }
    lines.iter().map(|l| format!("    | {l}\n")).collect()
}

#[test]
fn documented_commands_print_what_the_documents_show() {
    let repo = cavra_tests::crate_dir().join("..");
    let binary = cavra_tests::cavra_binary();
    let bin = binary.parent().expect("the binary's folder");
    let base = std::env::temp_dir().join(format!("cavra-docs-console-{}", std::process::id()));
    let started = Instant::now();
    let (mut ran, mut blocks_run, mut skipped, mut failures) = (0, 0, Vec::new(), Vec::new());
    for doc in cavra_tests::documents(&repo) {
        let name = doc.display().to_string();
        let markdown = std::fs::read_to_string(repo.join(&doc)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let blocks = match console_blocks(&name, &markdown) {
            Ok(blocks) => blocks,
            Err(errors) => {
                failures.extend(errors);
                continue;
            }
        };
        if blocks.iter().all(|b| b.skip.is_some()) {
            skipped.extend(blocks.iter().map(|b| format!("{name}:{}: {}", b.line, b.skip.as_deref().unwrap_or(""))));
            continue;
        }
        let mut session = Session::new(&base.join(name.replace('/', "-")), &repo, bin);
        for block in &blocks {
            if let Some(reason) = &block.skip {
                skipped.push(format!("{name}:{}: {reason}", block.line));
                continue;
            }
            blocks_run += 1;
            for example in &block.examples {
                ran += 1;
                let outcome = session.run(&example.command, DEADLINE);
                let actual: Vec<&str> = outcome.output.lines().collect();
                let (expected, actual) = (normalized(&example.expected), normalized(&actual));
                if !outcome.timed_out && matches(&expected, &actual) {
                    continue;
                }
                let ending = match (outcome.timed_out, outcome.status) {
                    (true, _) => format!("killed after {} s", DEADLINE.as_secs()),
                    (false, Some(code)) => format!("exit status {code}"),
                    (false, None) => "killed by a signal".to_string(),
                };
                failures.push(format!(
                    "{name}:{}:\n  $ {}\n  expected:\n{}  actual ({ending}):\n{}",
                    example.line,
                    example.command.replace('\n', "\n  "),
                    quoted(&expected),
                    quoted(&actual)
                ));
            }
        }
    }
    println!("ran {ran} documented commands in {blocks_run} console blocks, in {:.1} s; skipped {} block(s):", started.elapsed().as_secs_f64(), skipped.len());
    for skip in &skipped {
        println!("  {skip}");
    }
    assert!(
        failures.is_empty(),
        "{} documented examples do not print what the documents show (their folders are kept in {}):\n\n{}",
        failures.len(),
        base.display(),
        failures.join("\n")
    );
    assert!(ran >= 20, "only {ran} documented commands found: are the ```console blocks still there?");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn dots_match_any_lines() {
    assert!(matches(&["a", "...", "d"], &["a", "b", "c", "d"]));
    assert!(matches(&["a", "...", "d"], &["a", "d"]));
    assert!(matches(&["..."], &[]));
    assert!(!matches(&["a", "...", "d"], &["a", "b"]));
    assert!(!matches(&["a"], &["a", "b"]));
}

#[test]
fn blocks_commands_continuations_and_skip_markers() {
    let doc = "text\n```sh\n$ not console\n```\n\n```console\n$ cavra a \\\n    --b\nout 1\n\nout 2\n$ cavra c\n```\n<!-- skip: needs a server -->\n```console\n$ cavra api\n```\n";
    let blocks = console_blocks("doc.md", doc).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(blocks.len(), 2);
    let first = &blocks[0];
    assert_eq!((first.line, first.skip.as_deref()), (6, None));
    assert_eq!(first.examples.len(), 2);
    assert_eq!((first.examples[0].line, first.examples[0].command.as_str()), (7, "cavra a \\\n    --b"));
    assert_eq!(first.examples[0].expected, ["out 1", "", "out 2"]);
    assert!(first.examples[1].expected.is_empty());
    assert_eq!((blocks[1].line, blocks[1].skip.as_deref()), (15, Some("needs a server")));
    let misplaced = console_blocks("doc.md", "<!-- skip: why -->\n\n```console\n$ x\n```\n").err().unwrap_or_default();
    assert_eq!(misplaced, ["doc.md:1: a skip marker must be on the line just before a ```console block"]);
}

#[test]
fn a_session_keeps_exports_folder_and_status_and_nothing_else() {
    let repo = cavra_tests::crate_dir().join("..");
    let root = std::env::temp_dir().join(format!("cavra-docs-console-session-{}", std::process::id()));
    let mut session = Session::new(&root, &repo, Path::new("/nonexistent"));
    let mut run = |command: &str| session.run(command, DEADLINE).output;
    assert_eq!(run("env | grep -c '^CAVRA_'"), "0\n", "no CAVRA_* variable leaks in");
    assert_eq!(run("ls -d examples rules"), "examples\nrules\n");
    assert_eq!(run("export CAVRA_STORE=docs.db GREETING='hello there'"), "");
    assert_eq!(run("echo \"$CAVRA_STORE $GREETING\""), "docs.db hello there\n");
    assert_eq!(run("mkdir sub && cd sub"), "");
    assert_eq!(run("basename \"$(pwd)\""), "sub\n");
    assert_eq!(run("echo out; echo err >&2; echo out again"), "out\nerr\nout again\n", "stdout and stderr in the order written");
    assert_eq!(run("sh -c 'exit 3'"), "");
    assert_eq!(run("echo $?"), "3\n");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_command_that_hangs_is_killed_at_its_deadline() {
    let repo = cavra_tests::crate_dir().join("..");
    let root = std::env::temp_dir().join(format!("cavra-docs-console-deadline-{}", std::process::id()));
    let mut session = Session::new(&root, &repo, Path::new("/nonexistent"));
    let started = Instant::now();
    let outcome = session.run("echo started; sleep 30", Duration::from_millis(500));
    assert!(outcome.timed_out);
    assert_eq!(outcome.output, "started\n");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    let _ = std::fs::remove_dir_all(&root);
}
