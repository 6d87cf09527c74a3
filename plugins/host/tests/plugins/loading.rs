//! Discovery, loading, refusals and provider conflicts.

use cavra_plugin_host::{AttemptOutcome, ConnectorConfig, HostError, Isolation, RefusalKind, Registry, ABI_MAJOR, ABI_MINOR, PLUGINS_SCHEMA};
use serde_json::json;

use crate::support::{artifacts, config, fast_options, notification, TempDir};

#[test]
fn loads_every_bundled_plugin_and_the_vendor_plugin() {
    let a = artifacts();
    let tmp = TempDir::new("load-all");
    let mut libs = a.bundled();
    libs.push(&a.vendor);
    let dir = tmp.plugin_dir(&libs);

    let registry = Registry::load(std::slice::from_ref(&dir), &Isolation::InProcess);
    let report = registry.report();
    assert!(report.refused.is_empty(), "{report}");
    assert!(report.conflicts.is_empty(), "{report}");
    registry.ensure_no_conflicts().expect("no conflicts");

    let mut names: Vec<&str> = report.loaded.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["email", "outbox", "slack", "teams", "vendor-pager", "webhook"]);
    assert_eq!(registry.providers(), ["email", "outbox", "slack", "teams", "vendor-pager", "webhook"]);
    let abi = format!("{ABI_MAJOR}.{ABI_MINOR}");
    assert!(report.loaded.iter().all(|p| p.abi == abi && p.path.as_ref().is_some_and(|path| path.starts_with(&dir))));
    let vendor = report.loaded.iter().find(|p| p.name == "vendor-pager").expect("vendor loaded");
    assert_eq!(vendor.version, "2.3.1");

    // Loading is deterministic: files in name order.
    let paths: Vec<_> = report.loaded.iter().map(|p| p.path.clone()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);

    let json = serde_json::to_value(report).expect("report as JSON");
    assert_eq!(json["schema_version"], PLUGINS_SCHEMA);
    assert_eq!(json["isolation"]["mode"], "in_process");
    assert_eq!(json["loaded"].as_array().map(Vec::len), Some(6));
    let text = report.to_string();
    assert!(text.starts_with("6 connector(s): 0 built in, 6 from plugin files; 0 file(s) refused"), "{text}");
    assert!(text.contains("vendor-pager 2.3.1 (ABI 1.0) serves vendor-pager"), "{text}");
}

#[test]
fn the_vendor_plugin_delivers_with_its_own_config_section() {
    let a = artifacts();
    let tmp = TempDir::new("vendor");
    let dir = tmp.plugin_dir(&[&a.vendor, &a.outbox]);
    let registry = Registry::load(&[dir], &Isolation::InProcess);
    let pages = tmp.path().join("pages.jsonl");
    let outbox = tmp.path().join("outbox.jsonl");
    let config = config(
        json!({"connectors": {"vendor-pager": {"path": pages, "token_env": "PAGER_TOKEN"}, "outbox": {"path": outbox}}}),
        &[("PAGER_TOKEN", "pager-token-123")],
    );
    assert!(registry.validate_config(&config).is_empty());

    let routes = vec![notification("v1", "vendor-pager", "release-governance"), notification("o1", "outbox", "release-governance")];
    let records = registry.deliver_all(routes.clone(), &config, &fast_options(), |_| {});
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.outcome == AttemptOutcome::Delivered && r.attempt == 1 && r.is_final), "{records:#?}");
    assert_eq!(records[0].status_code, Some(201));
    assert_eq!(records[0].target, "pager://vendor.example");
    assert_eq!(records[1].target, "file:outbox.jsonl");

    // Re-delivering the same routes does not page twice (idempotency key honoured).
    let again = registry.deliver_all(routes, &config, &fast_options(), |_| {});
    assert_eq!(again[0].status_code, Some(202));
    let pages = std::fs::read_to_string(&pages).expect("pages written");
    assert_eq!(pages.lines().count(), 1, "{pages}");
    assert_eq!(std::fs::read_to_string(&outbox).expect("outbox written").lines().count(), 1);
}

#[test]
fn bad_files_are_refused_with_path_and_reason_while_the_others_load() {
    let a = artifacts();
    let tmp = TempDir::new("refusals");
    let dir = tmp.plugin_dir(&[&a.outbox, &a.wrong_abi, &a.not_a_plugin]);
    let text_file = dir.join("notes-not-a-library.so");
    std::fs::write(&text_file, "this is a text file, not a plugin\n").expect("write text file");
    std::fs::write(dir.join("README.txt"), "ignored: wrong extension").expect("write readme");
    let missing_dir = tmp.path().join("does-not-exist");

    let registry = Registry::load(&[dir.clone(), missing_dir.clone()], &Isolation::InProcess);
    let report = registry.report();
    assert_eq!(report.loaded.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["outbox"], "{report}");
    assert_eq!(report.refused.len(), 4, "{report}");

    let refusal = |path: &std::path::Path| report.refused.iter().find(|r| r.path == path).unwrap_or_else(|| panic!("{} not refused: {report}", path.display()));
    let wrong = refusal(&dir.join(a.wrong_abi.file_name().expect("name")));
    assert_eq!(wrong.kind, RefusalKind::IncompatibleAbi);
    assert!(wrong.reason.contains("connector ABI 2.0") && wrong.reason.contains("ABI 1.x"), "{}", wrong.reason);
    let cdylib = refusal(&dir.join(a.not_a_plugin.file_name().expect("name")));
    assert_eq!(cdylib.kind, RefusalKind::NotAPlugin);
    assert!(cdylib.reason.contains("exports no abi_stable root module"), "{}", cdylib.reason);
    let text = refusal(&text_file);
    assert_eq!(text.kind, RefusalKind::NotAPlugin);
    assert!(text.reason.starts_with("not a loadable dynamic library"), "{}", text.reason);
    assert_eq!(refusal(&missing_dir).kind, RefusalKind::Unreadable);

    let rendered = report.to_string();
    for r in &report.refused {
        assert!(rendered.contains(&r.path.display().to_string()), "{rendered}");
    }

    // The survivor works.
    let config = config(json!({"connectors": {"outbox": {"path": tmp.path().join("o.jsonl")}}}), &[]);
    let records = registry.deliver_all(vec![notification("r1", "outbox", "ops")], &config, &fast_options(), |_| {});
    assert_eq!(records[0].outcome, AttemptOutcome::Delivered);
}

#[test]
fn two_plugins_claiming_one_provider_is_an_error_naming_both_files() {
    let a = artifacts();
    let tmp = TempDir::new("conflict");
    let dir = tmp.plugin_dir(&[&a.vendor, &a.outbox]);
    // A real copy (a link would be recognised as the same file).
    let copy = dir.join(format!("{}vendor_pager_copy{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    std::fs::copy(&a.vendor, &copy).expect("copy vendor plugin");

    let registry = Registry::load(std::slice::from_ref(&dir), &Isolation::InProcess);
    let original = dir.join(a.vendor.file_name().expect("name"));
    let err = registry.ensure_no_conflicts().expect_err("conflict");
    let HostError::ProviderConflict { provider, first, second } = &err else { panic!("unexpected error {err}") };
    assert_eq!(provider, "vendor-pager");
    let mut named = [first.clone(), second.clone()];
    named.sort();
    let mut expected = [original.clone(), copy.clone()];
    expected.sort();
    assert_eq!(named, expected);
    let message = err.to_string();
    assert!(message.contains(&original.display().to_string()) && message.contains(&copy.display().to_string()), "{message}");
    assert_eq!(registry.report().errors(), vec![err.clone()]);
    assert!(registry.report().to_string().contains(&format!("error: {message}")));

    // Nobody serves the contested provider; everything else still works.
    assert_eq!(registry.providers(), ["outbox"]);
    let config = config(json!({"connectors": {"outbox": {"path": tmp.path().join("o.jsonl")}}}), &[]);
    let routes = vec![notification("c1", "vendor-pager", "ops"), notification("c2", "outbox", "ops")];
    let records = registry.deliver_all(routes, &config, &fast_options(), |_| {});
    assert_eq!(records[0].outcome, AttemptOutcome::Failed);
    assert!(records[0].message.contains("claimed by several plugins"), "{}", records[0].message);
    assert_eq!(records[1].outcome, AttemptOutcome::Delivered);
}

#[test]
fn config_problems_are_reported_at_start_up_without_values() {
    let a = artifacts();
    let tmp = TempDir::new("validate");
    let dir = tmp.plugin_dir(&a.bundled());
    let registry = Registry::load(&[dir], &Isolation::InProcess);
    let config = config(
        json!({"connectors": {
            "slack": {"url": "ftp://CANARY-SECRET-7f3a9c.example/x"},
            "teams": {"url": "https://teams.example/CANARY-SECRET-7f3a9c", "formatt": "CANARY-SECRET-7f3a9c"},
            "email": {"server": "smtp.example.com", "from": "cavra@example.com", "to": "CANARY-SECRET-7f3a9c", "starttls": false},
            "pagerduty": {"token": "CANARY-SECRET-7f3a9c"}
        }}),
        &[],
    );
    let problems = registry.validate_config(&config);
    let by_connector = |c: &str| problems.iter().find(|p| p.connector == c).map(|p| p.message.clone()).unwrap_or_default();
    assert_eq!(by_connector("slack"), "key `url` must be an http:// or https:// URL");
    assert!(by_connector("teams").contains("unknown field `formatt`"), "{problems:#?}");
    assert_eq!(by_connector("email"), "key `to` entry 0 is not an e-mail address");
    assert_eq!(by_connector("pagerduty"), "no loaded connector serves this connector section");
    // Bundled plugins without a section are reported too (webhook needs a URL; outbox a path).
    assert!(by_connector("webhook").starts_with("no section in the connector configuration"), "{problems:#?}");
    let dump = format!("{problems:?} {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"));
    assert!(!dump.contains("CANARY"), "{dump}");
    assert!(ConnectorConfig::empty().connectors().next().is_none());
}
