//! Canary secrets planted in the private configuration must not appear in
//! any record, error, message, report, `Debug` output or output file.

use std::path::PathBuf;
use std::time::Duration;

use cavra_plugin_host::{ConnectorConfig, DeliveryOptions, Isolation, Registry};
use serde_json::json;

use crate::support::{artifacts, config, notification, Reply, Server, TempDir};

const CANARY: &str = "CANARY-SECRET-7f3a9c";

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(CANARY), "{what} leaks the canary:\n{text}");
    assert!(!text.contains("7f3a9c"), "{what} leaks part of the canary:\n{text}");
}

fn scenario(isolation: &Isolation, label: &str) {
    let a = artifacts();
    let tmp = TempDir::new(label);
    let dir = tmp.plugin_dir(&[&a.slack, &a.teams, &a.webhook, &a.email, &a.outbox, &a.vendor, &a.panicking]);
    let registry = Registry::load(&[dir], isolation);
    assert_eq!(registry.report().loaded.len(), 7, "{}", registry.report());

    // Servers that fail in every interesting way.
    let flaky = Server::start(&[Reply::Status(500), Reply::Status(200)]);
    let refusing = Server::start(&[Reply::Status(403)]);
    let hanging = Server::start(&[Reply::Hang]);
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let outbox_dir = tmp.path().join(format!("outbox-{CANARY}"));
    std::fs::create_dir_all(&outbox_dir).expect("outbox dir");
    let outbox = outbox_dir.join("outbox.jsonl");
    let pages = tmp.path().join("pages.jsonl");
    let slack_url = flaky.url(&format!("/services/T0/B0/{CANARY}?token={CANARY}"));
    let config = config(
        json!({"connectors": {
            "slack": {"url_env": "SLACK_URL"},
            "teams": {"url": format!("http://user:{CANARY}@127.0.0.1:{}/hook/{CANARY}", refusing.port)},
            "webhook": {"url": hanging.url(&format!("/{CANARY}")), "secret": CANARY, "token_env": "HOOK_TOKEN"},
            "email": {"server": "127.0.0.1", "port": dead_port, "starttls": false, "from": "cavra@example.com", "to": "ops@example.com",
                      "username": CANARY, "password": CANARY},
            "outbox": {"path": outbox},
            "vendor-pager": {"path": pages, "token": CANARY},
            "panicky": {"token": CANARY}
        }}),
        &[("SLACK_URL", &slack_url), ("HOOK_TOKEN", CANARY)],
    );
    assert_clean("config Debug", &format!("{config:?}"));

    let problems = registry.validate_config(&config);
    assert!(problems.is_empty(), "{problems:?}");
    let providers = ["slack", "teams", "webhook", "email", "outbox", "vendor-pager", "panicky"];
    let routes: Vec<_> = providers.iter().map(|p| notification(&format!("canary-{p}"), p, "release-governance")).collect();
    let options = DeliveryOptions {
        max_attempts: 2,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(10),
        // Long enough not to time out the healthy exchanges on a loaded machine.
        attempt_timeout: Duration::from_secs(1),
    };
    let mut streamed = String::new();
    let records = registry.deliver_all(routes, &config, &options, |r| streamed.push_str(&format!("{r:?}\n")));
    assert!(records.len() >= providers.len(), "{records:#?}");
    // Every kind of failure happened, so every message path was exercised.
    let outcome_of = |p: &str| {
        records
            .iter()
            .filter(|r| r.provider == p)
            .map(|r| serde_json::to_value(r.outcome).expect("json").as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(outcome_of("slack"), ["retryable_failure", "delivered"]);
    assert_eq!(outcome_of("teams"), ["permanent_failure"]);
    assert_eq!(outcome_of("webhook"), ["retryable_failure", "failed"]);
    assert_eq!(outcome_of("email"), ["retryable_failure", "failed"]);
    assert_eq!(outcome_of("panicky"), ["permanent_failure"]);
    assert_eq!(outcome_of("outbox"), ["delivered"]);
    assert_eq!(outcome_of("vendor-pager"), ["delivered"]);

    assert_clean("records JSON", &serde_json::to_string_pretty(&records).expect("json"));
    assert_clean("records Debug", &format!("{records:#?}"));
    assert_clean("streamed records", &streamed);
    assert_clean("report", &format!("{} {:?}", registry.report(), registry.report()));
    assert_clean("outbox file", &std::fs::read_to_string(&outbox).expect("outbox"));
    assert_clean("vendor pages", &std::fs::read_to_string(&pages).expect("pages"));
    let teams = records.iter().find(|r| r.provider == "teams").expect("teams record");
    assert_eq!(teams.target, "http://127.0.0.1/…");

    // Configuration errors never echo values either.
    let env = |name: &str| (name == "SET").then(|| CANARY.to_owned());
    for text in [
        format!(r#"{{"connectors": {{"slack": {{"url_env": "UNSET", "token": "{CANARY}"}}}}}}"#),
        format!(r#"{{"connectors": {{"slack": {{"url": "{CANARY}", "url_env": "SET"}}}}}}"#),
        format!(r#"{{"connectors": {{"slack": "{CANARY}"}}}}"#),
        format!(r#"{{"connectors": {{"slack": {{"url": "{CANARY}" }}"#),
        format!(r#"{{"{CANARY}": 1, "connectors": {{}}}}"#),
    ] {
        let err = ConnectorConfig::parse(&text, &PathBuf::from("connectors.json"), env).expect_err("invalid config");
        if text.starts_with(&format!("{{\"{CANARY}\"")) {
            // An unknown top-level key is named: it is a key, not a value.
            continue;
        }
        assert_clean("config error", &format!("{err} {err:?}"));
    }
    let bad = config_with_bad_values(&registry);
    assert_clean("validation problems", &bad);
}

fn config_with_bad_values(registry: &Registry) -> String {
    let config = config(
        json!({"connectors": {
            "slack": {"url": format!("ftp://{CANARY}")},
            "teams": {"url": format!("https://x.example/{CANARY}"), "format": CANARY},
            "webhook": {"url": format!("https://x.example/{CANARY}"), "token": format!("{CANARY}\n")},
            "email": {"server": CANARY, "from": CANARY, "to": CANARY},
            "vendor-pager": {"path": "/tmp/p", "token": CANARY, "extra": CANARY}
        }}),
        &[],
    );
    let problems = registry.validate_config(&config);
    assert!(problems.len() >= 5, "{problems:#?}");
    format!("{problems:?}")
}

#[test]
fn canary_secrets_never_leave_the_configuration_in_process() {
    scenario(&Isolation::InProcess, "canary-in-process");
}

#[test]
fn canary_secrets_never_leave_the_configuration_out_of_process() {
    let isolation = Isolation::Process { program: PathBuf::from(env!("CARGO_BIN_EXE_cavra-plugin-child")), args: Vec::new() };
    scenario(&isolation, "canary-child");
}

#[test]
fn finding_14_configured_values_inside_words_leave_messages_readable() {
    // A configured `panic` (too short to be a secret) and `anicked` (only
    // ever part of a longer word here) must not turn "connector panicked"
    // into "connector [redacted]ked"; the real token is still scrubbed.
    let a = artifacts();
    let tmp = TempDir::new("whole-tokens");
    let registry = Registry::load(&[tmp.plugin_dir(&[&a.panicking])], &Isolation::InProcess);
    let config = config(json!({"connectors": {"panicky": {"token": CANARY, "mode": "panic", "hint": "anicked"}}}), &[]);
    let records = registry.deliver_all(vec![notification("whole-tokens", "panicky", "ops")], &config, &crate::support::fast_options(), |_| {});
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0].message, "connector panicked");
    assert_clean("panic record", &format!("{records:?}"));
}
