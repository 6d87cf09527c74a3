//! Hardening of rule files and the authoring commands, one test (or more)
//! per finding of the hostile test, named `finding_N_...`:
//!
//! - 6: rule files are read within a byte limit (`CAVRA_MAX_RULE_BYTES`,
//!   default 4 MiB) and only when they are regular files (`/dev/zero`, a FIFO).
//! - 9: `eval` screens its `--input` documents like the runtime commands, and
//!   errors quote a value by a prefix only.
//! - 10: a valid pack that needs many parser steps parses; a long source line
//!   is cut around the column in diagnostics.
//! - 11: a rule file that is not UTF-8 is refused with `file:line:col`.
//! - 17: a leap second or a space for `T` is not a timestamp, in documents,
//!   `--at` and rule text alike.

use cavra_tests::cavra;
use std::path::{Path, PathBuf};

/// A fresh folder for one test.
fn scratch(name: &str) -> PathBuf {
    cavra_tests::fresh_dir(std::env::temp_dir().join(format!("cavra-hardening-rules-{}-{name}", std::process::id())))
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

/// A pack with a static policy of recurring windows and a clock.
const RECURRING: &str = "pack recurring
type Window { window_id: text, recurrence: recurrence }
type Policy { windows: list<Window> = [] }
static input policy: Policy
input now: time
decision route {
  when any w in policy.windows where active(w.recurrence, now) => suppress quiet
  otherwise => deliver
}
";

fn policy_with(recurrence: serde_json::Value) -> String {
    serde_json::json!({ "windows": [{ "window_id": "w1", "recurrence": recurrence }] }).to_string()
}

// ---- finding 6: rule files are bounded and regular ---------------------------------

#[test]
fn finding_6_devices_are_refused_without_being_read() {
    // /dev/null first: on code that reads devices it fails fast (an empty
    // file), before /dev/zero would be read without end.
    for device in ["/dev/null", "/dev/zero"] {
        if !Path::new(device).exists() {
            continue;
        }
        let run = cavra(&["check", device]);
        assert_ne!(run.code, 0, "{device}: {}", run.stderr);
        assert!(run.stderr.contains(&format!("{device}: not a regular file")), "{device}: {}", run.stderr);
    }
}

#[cfg(unix)]
#[test]
fn finding_6_a_fifo_named_like_a_pack_is_refused_not_waited_on() {
    let dir = scratch("fifo");
    let fifo = dir.join("waiting.cavra");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("mkfifo is not available; skipped");
        return;
    }
    let folder = dir.to_str().unwrap().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(cavra(&["check", &folder]));
    });
    let run = match rx.recv_timeout(std::time::Duration::from_secs(20)) {
        Ok(run) => run,
        Err(_) => {
            // Release the blocked reader (it sees the end of the FIFO), then fail.
            let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
            panic!("`cavra check` waited on a FIFO");
        }
    };
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("waiting.cavra: not a regular file (a FIFO)"), "{}", run.stderr);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn finding_6_a_rule_file_over_the_default_limit_is_refused_before_it_is_read() {
    let dir = scratch("limit");
    // A comment pads it: it parses quickly, so code without the limit accepts it.
    let head = "pack big\ndecision d {\n  otherwise => deliver\n}\n";
    let padded = |total: usize| format!("{head}{}\n", "#".repeat(total - head.len() - 1));
    let text = padded(4 * 1024 * 1024 + 1);
    let file = write(&dir, "big.cavra", &text);
    let expected = "big.cavra: 4194305 bytes is over the limit of 4194304 bytes for a rule file (--max-rule-bytes, CAVRA_MAX_RULE_BYTES)";
    let run = cavra(&["check", &file]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(expected), "{}", run.stderr);
    let run = cavra(&["fmt", "--check", &file]);
    assert!(run.code != 0 && run.stderr.contains(expected), "{}", run.stderr);
    let run = cavra(&["eval", &file]);
    assert!(run.code == 2 && run.stderr.contains(expected), "{}", run.stderr);
    // One byte less is read and checked.
    let file = write(&dir, "just-fits.cavra", padded(4 * 1024 * 1024));
    let run = cavra(&["check", &file]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs [`finding_6_child_env_limit`] in a child process of this test
/// binary with `CAVRA_MAX_RULE_BYTES` set, so that the variable does not
/// reach the tests running beside this one.
#[test]
fn finding_6_cavra_max_rule_bytes_sets_the_limit() {
    let exe = std::env::current_exe().unwrap();
    for (value, case) in [("100", "small"), ("not-a-number", "invalid")] {
        let output = std::process::Command::new(&exe)
            .args(["finding_6_child_env_limit", "--exact", "--nocapture", "--test-threads=1"])
            .env("CAVRA_MAX_RULE_BYTES", value)
            .env("CAVRA_HARDENING_CHILD", case)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{case}:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        assert!(stdout.contains("1 passed"), "{stdout}");
    }
}

/// Only does something as the child of [`finding_6_cavra_max_rule_bytes_sets_the_limit`].
#[test]
fn finding_6_child_env_limit() {
    let Ok(case) = std::env::var("CAVRA_HARDENING_CHILD") else { return };
    let dir = scratch(&format!("env-{case}"));
    let pack = "pack small\ndecision d {\n  otherwise => deliver\n}\n";
    let fits = write(&dir, "fits.cavra", format!("{pack}{}\n", "#".repeat(100 - pack.len() - 1)));
    let over = write(&dir, "over.cavra", format!("{pack}{}\n", "#".repeat(100 - pack.len())));
    match case.as_str() {
        "small" => {
            assert_eq!(cavra(&["check", &fits]).code, 0);
            let run = cavra(&["check", &over]);
            assert_eq!(run.code, 1, "{}", run.stderr);
            assert!(run.stderr.contains("over.cavra: 101 bytes is over the limit of 100 bytes for a rule file"), "{}", run.stderr);
        }
        _ => {
            let run = cavra(&["check", &fits]);
            assert_eq!(run.code, 2, "{}", run.stderr);
            assert!(run.stderr.contains("invalid value 'not-a-number'") && run.stderr.contains("--max-rule-bytes"), "{}", run.stderr);
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn finding_6_read_rule_file_is_the_bounded_reader() {
    let dir = scratch("reader");
    let file = write(&dir, "ok.cavra", "pack ok\n");
    assert_eq!(cavra_grammar::read_rule_file(Path::new(&file), 8).unwrap(), "pack ok\n");
    let e = cavra_grammar::read_rule_file(Path::new(&file), 7).unwrap_err();
    assert!(matches!(e.kind, cavra_grammar::ReadErrorKind::TooLarge { size: 8, limit: 7 }), "{e}");
    let e = cavra_grammar::read_rule_file(&dir, 100).unwrap_err();
    assert!(e.to_string().ends_with("not a regular file (a directory); rule files must be regular files"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

// ---- finding 9: eval's documents are screened, values quoted by a prefix ----------

#[test]
fn finding_9_eval_refuses_input_documents_that_are_not_public_safe() {
    let dir = scratch("screen");
    let pack = write(&dir, "recurring.cavra", RECURRING);
    let secret = format!("ghp_{}", "A1b2C3d4E5".repeat(4));
    let policy = write(&dir, "policy.json", policy_with(serde_json::json!({"start_time": "18:00", "end_time": "20:00", "time_zone": secret})));
    let input = format!("policy={policy}");
    let run = cavra(&["eval", &pack, "--input", &input, "--at", "2026-05-21T19:00:00Z"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("the input documents are not public-safe; nothing was evaluated"), "{}", run.stderr);
    assert!(run.stderr.contains("policy.json: $.windows[0].recurrence.time_zone: "), "{}", run.stderr);
    assert!(!run.stderr.contains("ghp_"), "the value must not be quoted: {}", run.stderr);
    assert!(run.stdout.is_empty(), "nothing was evaluated: {}", run.stdout);
    // A public-safe document is evaluated as before.
    let policy = write(&dir, "fine.json", policy_with(serde_json::json!({"start_time": "18:00", "end_time": "20:00", "time_zone": "UTC"})));
    let input = format!("policy={policy}");
    let run = cavra(&["eval", &pack, "--input", &input, "--at", "2026-05-21T19:00:00Z"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "route: suppress quiet\n"), "{}", run.stderr);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn finding_9_a_huge_value_is_quoted_by_a_prefix() {
    let dir = scratch("prefix");
    let pack = write(&dir, "recurring.cavra", RECURRING);
    // Public-safe (a readable word over and over), so it reaches the time zone check.
    let zone = format!("Europe/{}", "Berlin".repeat(200_000));
    let policy = write(&dir, "policy.json", policy_with(serde_json::json!({"start_time": "18:00", "end_time": "20:00", "time_zone": zone})));
    let input = format!("policy={policy}");
    let run = cavra(&["eval", &pack, "--input", &input, "--at", "2026-05-21T19:00:00Z"]);
    assert_eq!(run.code, 2, "{}", &run.stderr[..run.stderr.len().min(500)]);
    assert!(run.stderr.len() < 400, "{} bytes of error: {}…", run.stderr.len(), &run.stderr[..300]);
    let expected = format!("$.windows[0].recurrence.time_zone: unknown time zone \"Europe/{}\"…;", &"Berlin".repeat(10)[..53]);
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    // A value given with --set, and --at, are quoted the same way.
    let now = format!("now={}", "Q".repeat(100_000));
    let run = cavra(&["eval", &pack, "--input", "policy=../examples/routing-policy.json", "--set", &now]);
    assert!(
        run.code == 2 && run.stderr.len() < 400 && run.stderr.contains(&format!("\"{}\"…", "Q".repeat(60))),
        "{}",
        &run.stderr[..run.stderr.len().min(500)]
    );
    let at = "2".repeat(100_000);
    let run = cavra(&["eval", &pack, "--input", "policy=../examples/routing-policy.json", "--at", &at]);
    assert!(run.code == 2 && run.stderr.len() < 400, "{}", &run.stderr[..run.stderr.len().min(500)]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn finding_9_engine_errors_quote_values_by_a_prefix() {
    let huge = "9".repeat(1_000_000);
    for e in [cavra_engine::time::parse_time(&huge).unwrap_err(), cavra_engine::time::parse_duration(&huge).unwrap_err()] {
        assert!(e.len() < 200 && e.contains(&format!("\"{}\"…", "9".repeat(60))), "{}", &e[..e.len().min(300)]);
    }
}

// ---- finding 10: big packs parse; long lines are cut -------------------------------

#[test]
fn finding_10_a_valid_pack_past_the_old_step_limit_checks() {
    let dir = scratch("dense");
    // About 490 KB of the densest real text (short lists of numbers): over
    // the old fixed limit of 20,000,000 parser steps, which refused it at a
    // valid line twenty times over.
    let mut text = String::from("pack dense\n");
    for i in 0..10_000 {
        text.push_str(&format!("let _l{i}=[1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9]\n"));
    }
    text.push_str("decision d {\n  otherwise => deliver\n}\n");
    let file = write(&dir, "dense.cavra", &text);
    let run = cavra(&["check", &file]);
    assert_eq!(run.code, 0, "{}", &run.stderr[..run.stderr.len().min(2_000)]);
    assert!(run.stderr.ends_with("checked 1 pack: 0 errors, 0 warnings\n"), "{}", &run.stderr[..run.stderr.len().min(2_000)]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn finding_10_a_long_line_is_cut_around_the_column() {
    let dir = scratch("long-line");
    let text = format!("pack p\nlet a = \"{}\" + + 1\ndecision d {{\n  otherwise => deliver\n}}\n", "x".repeat(200_000));
    let file = write(&dir, "long.cavra", &text);
    let run = cavra(&["check", &file]);
    assert_eq!(run.code, 1, "{}", &run.stderr[..run.stderr.len().min(2_000)]);
    assert!(run.stderr.len() < 2_000, "{} bytes of diagnostics", run.stderr.len());
    // The real line and column, then the line cut to a window around it.
    assert!(run.stderr.contains("long.cavra:2:200014"), "{}", run.stderr);
    let shown = run.stderr.lines().find(|l| l.starts_with("2 | ")).expect("the source line");
    assert!(shown.starts_with("2 | …xxx") && shown.ends_with("xxx\" + + 1"), "{shown}");
    let caret = run.stderr.lines().find(|l| l.contains('^')).expect("a caret line");
    assert!(caret.len() < 300, "{caret}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn finding_10_a_long_token_is_quoted_by_a_prefix() {
    let dir = scratch("long-token");
    let text = format!("pack p\nlet a = 1 {}\n", "y".repeat(300_000));
    let file = write(&dir, "token.cavra", &text);
    let run = cavra(&["check", "--error-format", "json", &file]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.len() < 2_000, "{} bytes of JSON", run.stdout.len());
    let items: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(items[0]["code"], "E0001");
    assert!(items[0]["message"].as_str().unwrap().contains(&format!("`{}…`", "y".repeat(60))), "{}", items[0]["message"]);
    std::fs::remove_dir_all(&dir).ok();
}

// ---- finding 11: bad UTF-8 has a position ------------------------------------------

#[test]
fn finding_11_invalid_utf8_is_placed_by_line_and_column() {
    let dir = scratch("utf8");
    let file = write(&dir, "bad.cavra", b"pack p\n# caf\xc3\xa9\nlet a = \"\xe2\x82\" + 1\n");
    for args in [vec!["check", &file], vec!["fmt", "--check", &file], vec!["eval", &file]] {
        let run = cavra(&args);
        assert_ne!(run.code, 0, "{args:?}");
        // `let a = "` is 9 characters: the truncated `€` starts column 10.
        assert!(run.stderr.contains("bad.cavra:3:10: not UTF-8 text (byte 0xe2); rule files must be UTF-8"), "{args:?}: {}", run.stderr);
    }
    std::fs::remove_dir_all(&dir).ok();
}

// ---- finding 17: strict timestamps -------------------------------------------------

#[test]
fn finding_17_a_leap_second_or_a_space_is_not_a_timestamp() {
    use cavra_engine::time::parse_time;
    assert!(parse_time("2026-12-31T23:59:59Z").is_ok());
    let leap = parse_time("2026-12-31T23:59:60Z").unwrap_err();
    assert!(leap.contains("\"2026-12-31T23:59:60Z\" is a leap second"), "{leap}");
    let space = parse_time("2026-05-21 18:00:00Z").unwrap_err();
    assert!(space.contains("`T` between the date and the time, got \"2026-05-21 18:00:00Z\""), "{space}");

    let dir = scratch("timestamps");
    let pack = write(&dir, "recurring.cavra", RECURRING);
    for (from, message) in [
        ("2026-05-21 18:00:00Z", "expected an RFC 3339 timestamp with `T` between the date and the time, got \"2026-05-21 18:00:00Z\""),
        ("2026-12-31T23:59:60Z", "\"2026-12-31T23:59:60Z\" is a leap second; seconds run from 00 to 59"),
    ] {
        let policy = write(&dir, "policy.json", policy_with(serde_json::json!({"start_time": "18:00", "end_time": "20:00", "time_zone": "UTC", "from": from})));
        let input = format!("policy={policy}");
        let run = cavra(&["eval", &pack, "--input", &input, "--at", "2026-05-21T19:00:00Z"]);
        assert_eq!(run.code, 2, "{from}: {}", run.stderr);
        assert!(run.stderr.contains(&format!("policy.json: $.windows[0].recurrence.from: {message}")), "{}", run.stderr);
        let at = cavra(&["eval", &pack, "--input", "policy=../examples/routing-policy.json", "--at", from]);
        assert!(at.code == 2 && at.stderr.contains(&format!("--at: {message}")), "{}", at.stderr);
    }
    // Rule text: a leap-second literal is E0202 like any other impossible time.
    let literal = write(
        &dir,
        "leap.cavra",
        "pack leap\ninput now: time\nlet cutover = @2026-12-31T23:59:60Z\ndecision d {\n  when now > cutover => deliver\n  otherwise => deliver\n}\n",
    );
    let run = cavra(&["check", &literal]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("error[E0202]: invalid timestamp: \"2026-12-31T23:59:60Z\" is a leap second"), "{}", run.stderr);
    std::fs::remove_dir_all(&dir).ok();
}
