//! Connectors linked into the host (built-ins) beside plugin files: who
//! serves a provider (built-ins win unless overridden, their own plugin
//! builds are skipped, two files still conflict), and providers the
//! connector configuration sends to another connector (`providers`).

use std::path::{Path, PathBuf};

use cavra_plugin_host::{AttemptOutcome, Builtin, Isolation, Origin, Registry, Sources};
use serde_json::json;

use crate::support::{artifacts, config, fast_options, notification, Reply, Server, TempDir};

fn builtins() -> Vec<Builtin> {
    vec![Builtin { name: "slack", module: cavra_connector_slack::module }, Builtin { name: "outbox", module: cavra_connector_outbox::module }]
}

fn load(dir: &Path, overrides: &[&str]) -> Registry {
    let (files, search_refusals) = cavra_plugin_host::find_plugin_files(&[dir.to_owned()]);
    Registry::load_sources(Sources {
        builtins: builtins(),
        dirs: vec![dir.to_owned()],
        files,
        search_refusals,
        isolation: Isolation::InProcess,
        overrides: overrides.iter().map(|o| o.to_string()).collect(),
        ..Sources::default()
    })
}

/// A copy of a plugin library under another file name (a vendor's build of the same provider).
fn renamed(tmp: &TempDir, library: &Path, name: &str) -> PathBuf {
    let dir = tmp.path().join("plugins");
    std::fs::create_dir_all(&dir).expect("plugin dir");
    let to = dir.join(format!("{}{name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    std::fs::copy(library, &to).expect("copy plugin");
    to
}

#[test]
fn built_ins_serve_their_providers_and_their_own_plugin_builds_are_skipped() {
    let a = artifacts();
    let tmp = TempDir::new("builtins");
    let dir = tmp.plugin_dir(&[&a.slack, &a.teams, &a.vendor]);
    let registry = load(&dir, &[]);
    let report = registry.report();
    assert!(report.refused.is_empty() && report.conflicts.is_empty() && report.warnings.is_empty(), "{report}");
    let loaded: Vec<(&str, Origin)> = report.loaded.iter().map(|p| (p.name.as_str(), p.origin)).collect();
    assert_eq!(loaded, [("slack", Origin::Builtin), ("outbox", Origin::Builtin), ("teams", Origin::File), ("vendor-pager", Origin::File)], "{report}");
    assert_eq!(registry.providers(), ["outbox", "slack", "teams", "vendor-pager"]);
    // The slack library is the built-in's own build: not loaded, and no error.
    let [skipped] = &report.shadowed[..] else { panic!("one shadowed file: {report}") };
    assert_eq!((skipped.path.as_path(), skipped.builtin.as_str(), skipped.loaded), (dir.join(a.slack.file_name().expect("name")).as_path(), "slack", false));
    let text = report.to_string();
    assert!(text.contains("4 connector(s): 2 built in, 2 from plugin files; 0 file(s) refused"), "{text}");
    assert!(text.contains(&format!("plugin folders searched: {}", dir.display())), "{text}");
    assert!(text.contains("slack 0.1.0 (ABI 1.0) serves slack  [built in; runs in process]"), "{text}");
    let json = serde_json::to_value(report).expect("JSON");
    assert_eq!(json["loaded"][0]["origin"], "builtin");
    assert_eq!(json["loaded"][0]["path"], serde_json::Value::Null);
    assert_eq!(json["loaded"][2]["origin"], "file");
}

#[test]
fn a_file_takes_a_built_in_provider_over_only_when_the_operator_says_so() {
    let a = artifacts();
    let tmp = TempDir::new("override");
    let vendor_outbox = renamed(&tmp, &a.outbox, "acme_outbox");
    let dir = vendor_outbox.parent().expect("dir").to_owned();
    let out = tmp.path().join("outbox.jsonl");
    let config = config(json!({"connectors": {"outbox": {"path": out.display().to_string()}}}), &[]);

    // Without an override the built-in keeps `outbox`; the file is shadowed, not an error.
    let registry = load(&dir, &[]);
    let report = registry.report();
    assert!(report.conflicts.is_empty(), "{report}");
    let [shadowed] = &report.shadowed[..] else { panic!("{report}") };
    assert_eq!((shadowed.providers.as_slice(), shadowed.builtin.as_str(), shadowed.loaded), (&["outbox".to_owned()][..], "outbox", true));
    assert!(report.to_string().contains("does not serve outbox: the built-in `outbox` does (--plugin-override outbox to use the file)"), "{report}");
    let records = registry.deliver_all(vec![notification("o1", "outbox", "release-governance")], &config, &fast_options(), |_| {});
    assert_eq!(records[0].outcome, AttemptOutcome::Delivered);

    // With it, the file serves `outbox`: the same connector name, from the file.
    let registry = load(&dir, &["outbox", "teams"]);
    let report = registry.report();
    assert!(report.shadowed.is_empty() && report.conflicts.is_empty(), "{report}");
    assert_eq!(report.warnings, ["--plugin-override teams: no plugin file claims provider `teams`"], "{report}");
    let records = registry.deliver_all(vec![notification("o2", "outbox", "release-governance")], &config, &fast_options(), |_| {});
    assert_eq!(records[0].outcome, AttemptOutcome::Delivered, "{records:?}");
    let lines = std::fs::read_to_string(&out).expect("outbox file");
    assert_eq!(lines.lines().count(), 2, "{lines}");

    // Two files claiming an overridden provider conflict as files always do.
    renamed(&tmp, &a.outbox, "other_outbox");
    let registry = load(&dir, &["outbox"]);
    assert_eq!(registry.report().conflicts.len(), 1, "{}", registry.report());
    let records = registry.deliver_all(vec![notification("o3", "outbox", "release-governance")], &config, &fast_options(), |_| {});
    assert!(records[0].message.contains("claimed by several plugins"), "{records:?}");
}

#[test]
fn the_configuration_can_send_more_providers_to_one_connector() {
    let tmp = TempDir::new("routed");
    let dir = tmp.path().join("empty");
    std::fs::create_dir_all(&dir).expect("dir");
    let registry = load(&dir, &[]);
    let slack = Server::start(&[Reply::Status(200)]);
    let out = tmp.path().join("staging-outbox.jsonl");
    // Staging: slack and teams (which no connector here serves) go to the outbox file.
    let config = config(
        json!({"connectors": {
            "outbox": {"path": out.display().to_string(), "providers": ["slack", "teams"]},
            "slack": {"url": slack.url("/services/T0/B0/CANARY")}
        }}),
        &[],
    );
    assert!(registry.validate_config(&config).is_empty(), "{:?}", registry.validate_config(&config));
    let report = registry.report_for(&config);
    let routes: Vec<(&str, &str, bool)> = report.configured.iter().map(|r| (r.provider.as_str(), r.connector.as_str(), r.loaded)).collect();
    assert_eq!(routes, [("slack", "outbox", true), ("teams", "outbox", true)]);
    assert!(report.to_string().contains("provider teams goes to connector outbox (connector configuration `providers`)"), "{report}");

    let routes = vec![notification("r1", "slack", "release-governance"), notification("r2", "teams", "release-governance")];
    let records = registry.deliver_all(routes, &config, &fast_options(), |_| {});
    let outcomes: Vec<_> = records.iter().map(|r| (r.provider.as_str(), r.connector.as_str(), r.outcome)).collect();
    assert_eq!(outcomes, [("slack", "outbox", AttemptOutcome::Delivered), ("teams", "outbox", AttemptOutcome::Delivered)]);
    assert!(slack.requests().is_empty(), "nothing reaches the slack webhook");
    let lines = std::fs::read_to_string(&out).expect("outbox file");
    // Providers are delivered in parallel: the lines come in either order.
    let mut providers: Vec<String> =
        lines.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).expect("line")["notification"]["provider"].to_string()).collect();
    providers.sort();
    assert_eq!(providers, ["\"slack\"", "\"teams\""]);
    assert!(records.iter().all(|r| !r.target.contains("CANARY")), "{records:?}");

    // A provider sent to a connector that is not loaded fails, and validation says so.
    let config = crate::support::config(json!({"connectors": {"pager": {"providers": ["teams"]}}}), &[]);
    let problems = registry.validate_config(&config);
    assert!(
        problems.iter().any(|p| p.connector == "teams" && p.message.contains("sends provider `teams` to connector `pager`, which is not loaded")),
        "{problems:?}"
    );
}
