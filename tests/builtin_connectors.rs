//! The connectors are part of the binary: the `cavra` executable copied
//! alone into an empty folder (no plugin file beside it, no plugin path)
//! delivers through each built-in connector: slack, teams and webhook to
//! HTTP servers on 127.0.0.1, email to an SMTP server on 127.0.0.1, the
//! outbox to a file; in process by default and in child processes under
//! `--plugin-isolation process`. `plugins list` says where each comes from.

use cavra_tests::provider::Provider as Recorder;
use cavra_tests::smtp::SmtpServer;
use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const AT: &str = "2026-05-21T19:00:00Z";
const PROVIDERS: [&str; 5] = ["slack", "teams", "webhook", "email", "outbox"];

/// The `cavra` binary alone in `<dir>/bin`.
fn lone_binary(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin folder");
    let to = bin.join(format!("cavra{}", std::env::consts::EXE_SUFFIX));
    std::fs::copy(cavra_tests::cavra_binary(), &to).expect("copy the binary");
    to
}

fn run(binary: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(binary)
        .current_dir(dir)
        .env_remove("CAVRA_PLUGIN_PATH")
        .env_remove("CAVRA_STORE")
        .env("CAVRA_CONNECTOR_CONFIG", dir.join("connectors.json"))
        .args(args)
        .output()
        .expect("run cavra")
}

struct Providers {
    slack: Recorder,
    teams: Recorder,
    webhook: Recorder,
    smtp: SmtpServer,
}

/// A schedule due soon whose one owner is notified on every built-in
/// provider, and the connector configuration that reaches the local servers.
fn set_up(dir: &Path) -> Providers {
    let providers = Providers { slack: Recorder::start(200), teams: Recorder::start(202), webhook: Recorder::start(204), smtp: SmtpServer::start() };
    let schedule = json!({"schema_version": "cavra.go-backend-rollback-drill-schedule.v1", "schedule_id": "go_backend_python_fallback_monthly",
        "status": "active", "interval_days": 30, "next_due_at": "2026-05-30T15:40:00Z", "owners": ["release-governance"],
        "notification_providers": PROVIDERS});
    std::fs::write(dir.join("schedule.json"), schedule.to_string()).expect("schedule");
    std::fs::write(dir.join("policy.json"), "{}").expect("policy");
    let url = |server: &Recorder, path: &str| format!("http://127.0.0.1:{}{path}", server.port);
    let config = json!({"connectors": {
        "slack": {"url": url(&providers.slack, "/services/T0/B0/X")},
        "teams": {"url": url(&providers.teams, "/webhookb2/x")},
        "webhook": {"url": url(&providers.webhook, "/cavra")},
        "email": {"server": "127.0.0.1", "port": providers.smtp.port, "starttls": false, "from": "cavra@example.com", "to": "release-governance@example.com"},
        "outbox": {"path": dir.join("outbox.jsonl").display().to_string()}
    }});
    std::fs::write(dir.join("connectors.json"), config.to_string()).expect("config");
    providers
}

fn deliver(binary: &Path, dir: &Path, extra: &[&str]) -> Json {
    let history = cavra_tests::crate_dir().join("../examples/rollback-drills.json").display().to_string();
    let mut args = vec![
        "runtime",
        "go-rollback-drill-notifications-deliver",
        "--mode",
        "promoted",
        "--rollback-drill-schedule-path",
        "schedule.json",
        "--rollback-drill-history-path",
        &history,
        "--routing-policy",
        "policy.json",
        "--at",
        AT,
        "--store",
        "cavra.db",
        "--backoff-ms",
        "1",
        "--json",
    ];
    args.extend_from_slice(extra);
    let output = run(binary, dir, &args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}\n{}", String::from_utf8_lossy(&output.stdout));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"))
}

fn assert_every_provider_reached(dir: &Path, result: &Json, providers: &Providers) {
    assert_eq!(result["delivered_count"], 5, "{result:#}");
    for (name, server) in [("slack", &providers.slack), ("teams", &providers.teams), ("webhook", &providers.webhook)] {
        let requests = server.requests();
        assert_eq!(requests.len(), 1, "{name}: {requests:?}");
        assert!(requests[0].body.contains("go_backend_python_fallback_monthly"), "{name}: {}", requests[0].body);
    }
    let mails = providers.smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!((mails[0].from.as_str(), mails[0].to.as_slice()), ("cavra@example.com", &["release-governance@example.com".to_owned()][..]));
    assert!(mails[0].data.contains("go_backend_python_fallback_monthly"), "{}", mails[0].data);
    let outbox = std::fs::read_to_string(dir.join("outbox.jsonl")).expect("the outbox file");
    assert_eq!(outbox.lines().count(), 1, "{outbox}");
}

#[test]
fn the_binary_alone_delivers_through_every_built_in_connector() {
    let dir = cavra_tests::fresh_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("builtin-alone"));
    let binary = lone_binary(&dir);
    let providers = set_up(&dir);

    let listed = run(&binary, &dir, &["plugins", "list", "--json"]);
    assert_eq!(listed.status.code(), Some(0), "{}", String::from_utf8_lossy(&listed.stderr));
    let report: Json = serde_json::from_slice(&listed.stdout).expect("JSON");
    let loaded: Vec<(&str, &str, &str)> = report["loaded"]
        .as_array()
        .expect("loaded")
        .iter()
        .map(|p| (p["name"].as_str().unwrap_or(""), p["origin"].as_str().unwrap_or(""), p["runs_in"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(loaded, PROVIDERS.map(|p| (p, "builtin", "in_process")));
    assert_eq!(report["plugin_dirs"], json!([dir.join("bin").display().to_string()]), "it says where it looked");
    assert_eq!((report["refused"].as_array().map(Vec::len), report["shadowed"].as_array().map(Vec::len)), (Some(0), Some(0)));

    let result = deliver(&binary, &dir, &[]);
    assert_every_provider_reached(&dir, &result, &providers);
    // Nothing is sent twice: the re-run finds every notification delivered.
    let again = deliver(&binary, &dir, &[]);
    assert_eq!(again["attempt_count"], 0, "{again:#}");
    assert_every_provider_reached(&dir, &result, &providers);
}

#[test]
fn built_ins_run_in_child_processes_when_asked() {
    let dir = cavra_tests::fresh_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("builtin-process"));
    let binary = lone_binary(&dir);
    let providers = set_up(&dir);

    let listed = run(&binary, &dir, &["plugins", "list", "--plugin-isolation", "process", "--json"]);
    let report: Json = serde_json::from_slice(&listed.stdout).expect("JSON");
    let runs: Vec<&str> = report["loaded"].as_array().expect("loaded").iter().filter_map(|p| p["runs_in"].as_str()).collect();
    assert_eq!(runs, ["process"; 5], "{report:#}");

    let result = deliver(&binary, &dir, &["--plugin-isolation", "process"]);
    assert_every_provider_reached(&dir, &result, &providers);
}

#[test]
fn a_staging_configuration_sends_every_provider_to_the_outbox() {
    let dir = cavra_tests::fresh_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("builtin-staging"));
    let binary = lone_binary(&dir);
    let providers = set_up(&dir);
    let outbox = dir.join("outbox.jsonl").display().to_string();
    let staging = json!({"connectors": {"outbox": {"path": outbox, "providers": ["slack", "teams", "webhook", "email"]}}});
    std::fs::write(dir.join("connectors.json"), staging.to_string()).expect("config");

    let listed = run(&binary, &dir, &["plugins", "list"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains("provider email goes to connector outbox (connector configuration `providers`)"), "{text}");

    let result = deliver(&binary, &dir, &[]);
    assert_eq!(result["delivered_count"], 5, "{result:#}");
    let lines = std::fs::read_to_string(dir.join("outbox.jsonl")).expect("outbox");
    assert_eq!(lines.lines().count(), 5, "{lines}");
    assert!(providers.slack.requests().is_empty() && providers.teams.requests().is_empty() && providers.webhook.requests().is_empty());
    assert!(providers.smtp.mails().is_empty());
}

#[test]
fn the_demo_runs_the_whole_loop_and_a_second_run_adds_nothing() {
    let dir = cavra_tests::fresh_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("builtin-demo"));
    let binary = lone_binary(&dir);
    // The demo uses its own connector configuration: an operator's is not read (nor needed).
    let demo = || {
        Command::new(&binary)
            .current_dir(&dir)
            .env_remove("CAVRA_STORE")
            .env("CAVRA_CONNECTOR_CONFIG", dir.join("no-such.json"))
            .arg("demo")
            .output()
            .expect("run cavra demo")
    };
    let first = demo();
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert_eq!(first.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&first.stderr));
    for expected in [
        "cavra.deployment.production_readiness.v1: ready (mode promoted)",
        "2 to deliver, 1 suppressed (1 maintenance window, 0 owner calendar, 0 healthy schedule)",
        "2 delivered, 0 failed, 0 escalations sent, 1 left open",
        "escalation plan at 2026-05-21T19:00:00Z: warning (2 outstanding, 0 breached, 0 pending, 1 suppressed, 0 failed)",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    let outbox = || std::fs::read_to_string(dir.join(".cavra/outbox.jsonl")).expect("the demo's outbox");
    assert_eq!(outbox().lines().count(), 2, "{}", outbox());
    assert!(outbox().lines().all(|l| l.contains("\"provider\":\"teams\"")), "{}", outbox());

    let second = demo();
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert_eq!(second.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("already stored: the same plan was made before, nothing new was written"), "{stdout}");
    assert!(stdout.contains("0 delivered, 0 failed, 0 escalations sent, 3 left open (0 failed earlier) (0 attempts)"), "{stdout}");
    assert_eq!(outbox().lines().count(), 2, "nothing is sent twice");
}
