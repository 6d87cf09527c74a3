//! # cavra-plugin-host
//!
//! Loads cavra connector plugins (dynamic libraries built with
//! `cavra-connector-api`), gives each one only its own private configuration,
//! and delivers notifications through them with timeouts, retries and
//! idempotency keys, without ever letting a secret into a record, an error or
//! a log line.
//!
//! Typical use (what `cavra` does to deliver a plan):
//!
//! ```no_run
//! use cavra_plugin_host::{plugin_dirs, ConnectorConfig, DeliveryOptions, Isolation, Registry};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let notifications = Vec::new();
//! let dirs = plugin_dirs(&[]);                        // --plugin-dir…, then CAVRA_PLUGIN_PATH
//! let registry = Registry::load(&dirs, &Isolation::InProcess);
//! eprint!("{}", registry.report());                   // loaded / refused / conflicts
//! let config = ConnectorConfig::from_env()?;          // CAVRA_CONNECTOR_CONFIG
//! for problem in registry.validate_config(&config) {
//!     eprintln!("warning: {problem}");
//! }
//! let records = registry.deliver_all(notifications, &config, &DeliveryOptions::default(), |attempt| {
//!     // store every attempt as it happens (runs on this thread)
//!     println!("{}", serde_json::to_string(attempt).unwrap_or_default());
//! });
//! # Ok(()) }
//! ```
//!
//! Modules: [`discovery`](plugin_dirs) finds files; the loader opens them with
//! abi_stable and checks the ABI; [`Registry`] indexes providers and reports
//! refusals and conflicts; [`ConnectorConfig`] reads and resolves private
//! settings; [`Registry::deliver_all`] is the delivery engine; [`Isolation`]
//! and [`run_child`] run plugins in child processes; [`interrupt_all`] stops
//! every delivery of a host that must exit; [`Redactor`] and
//! [`redact_target`] keep secrets out of output.

#![warn(missing_docs)]

mod builtin;
mod call;
mod config;
mod delivery;
mod discovery;
mod error;
mod interrupt;
mod isolation;
mod loader;
mod redact;
mod refusal;
mod registry;

pub use builtin::{Builtin, BUILTIN_ARG};
pub use cavra_connector_api::{Notification, Outcome, ABI_MAJOR, ABI_MINOR};
pub use config::{ConnectorConfig, CONNECTOR_CONFIG_ENV, PROVIDERS_KEY};
pub use delivery::{AttemptOutcome, DeliveryOptions, DeliveryRecord};
pub use discovery::{find_plugin_files, plugin_dirs, plugin_dirs_from, PLUGIN_EXTENSIONS, PLUGIN_PATH_ENV};
pub use error::{ConfigError, HostError};
pub use interrupt::{interrupt_all, interrupted};
pub use isolation::{run_builtin_child, run_child, Isolation, PROCESS_EXITED};
pub use redact::{redact_target, strip_urls, Redactor, MIN_SECRET_CHARS, REDACTED};
pub use refusal::{Refusal, RefusalKind};
pub use registry::{ConfigProblem, ConfiguredRoute, LoadReport, Origin, PluginInfo, ProviderConflict, Registry, RunsIn, Shadowed, Sources, PLUGINS_SCHEMA};
