//! # cavra-connector-api
//!
//! The one crate a vendor depends on to write a cavra **connector plugin**: a
//! dynamic library (`cdylib`) that delivers route decisions ("tell owner X on
//! provider Y that drill Z is due") to a provider such as a chat webhook, a
//! pager or a mailbox.
//!
//! * [`Connector`]: the trait you implement, with plain Rust types.
//! * [`export_connector!`]: exports it as a stable `abi_stable` root module
//!   ([`ConnectorModule`]); every call is wrapped in `catch_unwind`.
//! * [`connector_module!`]: the same module without the export, for a host
//!   that links connectors into its binary (cavra's built-in connectors are
//!   library crates; a thin `cdylib` crate per connector exports it).
//! * [`Notification`]: what you deliver, with [`Notification::render_text`]
//!   for a public-safe message.
//! * [`Outcome`]: delivered, retryable failure (the host retries with backoff)
//!   or permanent failure; [`Outcome::from_http_status`] classifies HTTP.
//! * [`redact_target`], [`strip_urls`], [`Secret`]: keep credentials out of
//!   everything you return.
//!
//! ## Writing a plugin
//!
//! `Cargo.toml`: `crate-type = ["cdylib"]` and a dependency on
//! `cavra-connector-api` (re-exporting `serde` and `serde_json`). Then:
//!
//! ```no_run
//! use std::io::Write;
//! use cavra_connector_api::{export_connector, serde, CallContext, ConfigError, Connector, Notification, Outcome, Secret};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(crate = "cavra_connector_api::serde")]
//! pub struct PagerConfig {
//!     path: std::path::PathBuf, // where pages are written
//!     token: Option<Secret>,    // `token_env` in CAVRA_CONNECTOR_CONFIG also works
//! }
//!
//! #[derive(Default)]
//! pub struct Pager;
//!
//! impl Connector for Pager {
//!     type Config = PagerConfig;
//!     fn name(&self) -> &str { "vendor-pager" }
//!     fn version(&self) -> &str { env!("CARGO_PKG_VERSION") }
//!     fn providers(&self) -> Vec<String> { vec!["vendor-pager".into()] }
//!     fn validate_config(&self, c: &PagerConfig) -> Result<(), ConfigError> {
//!         if c.token.as_ref().is_some_and(|t| t.expose().is_empty()) {
//!             return Err(ConfigError::invalid("token", "must not be empty"));
//!         }
//!         Ok(())
//!     }
//!     fn deliver(&self, n: &Notification, c: &PagerConfig, _ctx: &CallContext) -> Outcome {
//!         let line = format!("{} {}\n", n.idempotency_key, n.render_text().replace('\n', " | "));
//!         let file = std::fs::OpenOptions::new().create(true).append(true).open(&c.path);
//!         match file.and_then(|mut f| f.write_all(line.as_bytes())) {
//!             Ok(()) => Outcome::delivered(None),
//!             Err(e) => Outcome::retryable(None, format!("cannot write the page file: {}", e.kind())),
//!         }
//!     }
//! }
//!
//! export_connector!(Pager);
//! ```
//!
//! Build it with `cargo build --release`, put the resulting `.so`/`.dylib`/`.dll`
//! in a directory named by `--plugin-dir` or `CAVRA_PLUGIN_PATH`, and give it
//! its private section in the file named by `CAVRA_CONNECTOR_CONFIG`:
//! `{"connectors": {"vendor-pager": {"path": "/var/spool/pages", "token_env": "PAGER_TOKEN"}}}`.
//!
//! ## Contract
//!
//! * **Configuration arrives with every call**, already resolved (`*_env`
//!   keys replaced by the environment's values) and limited to your own
//!   section. Keep no configuration in statics.
//! * **Messages are public-safe**: never include a URL path or query, a
//!   header value, a token or any configuration value. The host scrubs known
//!   values again, but that is a safety net, not a licence.
//! * **Honour [`CallContext::timeout`]** and send
//!   [`Notification::idempotency_key`] to providers that support one, so that
//!   retries never notify twice.
//! * **Panics are contained** (a permanent failure, "connector panicked"), but
//!   `abort`, `exit` or a crash take the host process down unless the host
//!   runs plugins in child processes (`Isolation::Process` in the host).
//!   Never build a plugin with `panic = "abort"`: its panics could not be caught.
//!
//! ## Compatibility
//!
//! See [`abi`] for the versioning rules: a plugin built against ABI `1.x`
//! loads in every host speaking ABI 1; another major is refused with a clear
//! error.

#![warn(missing_docs)]

pub mod abi;
mod connector;
mod export;
mod notification;
mod redact;

pub use abi::{ConnectorModule, ConnectorModuleRef, DeliveryOutcome, ABI_MAJOR, ABI_MINOR, ABI_VERSION};
pub use connector::{describe_config_error, CallContext, ConfigError, Connector, DeliveryRequest, Outcome, Secret};
#[doc(hidden)]
pub use export::__private;
pub use export::PANIC_MESSAGE;
pub use notification::Notification;
pub use redact::{redact_target, strip_urls, REDACTED};

// Re-exported so that a plugin needs no other dependency (and uses the same versions).
pub use serde;
pub use serde_json;

#[cfg(test)]
mod tests {
    #[test]
    fn crate_major_is_the_abi_major() {
        // The crate's semver major and the ABI major must move together (see Cargo.toml).
        #[cfg(not(feature = "__conformance-next-abi"))]
        assert_eq!(env!("CARGO_PKG_VERSION_MAJOR"), super::ABI_MAJOR.to_string());
        assert!(super::ABI_VERSION.starts_with(&format!("{}.{}.", super::ABI_MAJOR, super::ABI_MINOR)));
    }
}
