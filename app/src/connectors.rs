//! The connectors compiled into cavra: slack, teams, webhook, email and
//! outbox, always available, whatever plugin files are found. Each is a
//! library crate (`cavra-connector-NAME`) reached through the same
//! `Connector` interface and module that plugin files export (its
//! `cavra-plugin-NAME` crate builds that file, to keep the vendors' path
//! proven). See `deliver::PluginSettings` for how they and plugin files
//! are loaded and which serves a provider.

use cavra_plugin_host::Builtin;
use std::process::ExitCode;

/// The built-in connectors, in the order `plugins list` shows them.
pub fn builtins() -> Vec<Builtin> {
    vec![
        Builtin { name: "slack", module: cavra_connector_slack::module },
        Builtin { name: "teams", module: cavra_connector_teams::module },
        Builtin { name: "webhook", module: cavra_connector_webhook::module },
        Builtin { name: "email", module: cavra_connector_email::module },
        Builtin { name: "outbox", module: cavra_connector_outbox::module },
    ]
}

/// Serves the built-in connector `name` to a parent cavra (the hidden
/// `cavra plugin-child --builtin NAME`, under `--plugin-isolation process`).
pub fn run_builtin_child(name: &str) -> ExitCode {
    cavra_plugin_host::run_builtin_child(&builtins(), name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cavra_plugin_host::{Isolation, Registry, Sources};

    #[test]
    fn every_builtin_loads_under_its_own_name_and_serves_its_provider() {
        let registry = Registry::load_sources(Sources { builtins: builtins(), ..Sources::default() });
        let report = registry.report();
        assert!(report.refused.is_empty(), "{report}");
        let names: Vec<&str> = report.loaded.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, builtins().iter().map(|b| b.name).collect::<Vec<_>>());
        assert_eq!(registry.providers(), ["email", "outbox", "slack", "teams", "webhook"]);
        assert!(report.loaded.iter().all(|p| p.path.is_none() && p.runs_in == cavra_plugin_host::RunsIn::InProcess), "{report}");
        assert_eq!(report.isolation, Isolation::InProcess);
    }
}
