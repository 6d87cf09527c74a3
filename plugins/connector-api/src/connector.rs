//! The plain-Rust side of the interface: what a connector implements.
//!
//! A vendor implements [`Connector`] with ordinary Rust types and lets
//! [`export_connector!`](crate::export_connector) translate to and from the
//! stable ABI. Configuration is passed **with every call** (see
//! [`Connector::Config`]): a connector holds no per-host state, so one library
//! can serve several hosts or configurations, and a restarted child process
//! needs no re-initialisation.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::abi::DeliveryOutcome;
use crate::notification::Notification;

/// A connector: validates its configuration section and delivers notifications.
///
/// Implementations must be `Send + Sync`: the host may call `deliver` from
/// several threads at once (one per provider). Every method runs inside
/// `catch_unwind`; a panic becomes a permanent failure, never an abort.
pub trait Connector: Send + Sync + 'static {
    /// This connector's private configuration: the section of
    /// `CAVRA_CONNECTOR_CONFIG` named after the provider (or the plugin),
    /// with `*_env` indirections already resolved by the host. Use
    /// `serde_json::Value` to take it untyped. Fields holding secrets should
    /// be [`Secret`] so that they never appear in `Debug` output.
    type Config: serde::de::DeserializeOwned;

    /// The plugin name shown by `cavra plugins list`, e.g. `"slack"`.
    fn name(&self) -> &str;

    /// The plugin's own version (usually `env!("CARGO_PKG_VERSION")`).
    fn version(&self) -> &str;

    /// The providers this connector serves, e.g. `["slack"]`. Two loaded
    /// plugins may not claim the same provider.
    fn providers(&self) -> Vec<String>;

    /// Checks a configuration that deserialised into [`Self::Config`]. The
    /// error names keys, never values. Runs at host start-up and before every
    /// delivery.
    fn validate_config(&self, config: &Self::Config) -> Result<(), ConfigError> {
        let _ = config;
        Ok(())
    }

    /// A public-safe description of the delivery target, recorded with every
    /// attempt, e.g. [`redact_target`](crate::redact_target) of a webhook URL.
    /// Defaults to the plugin name.
    fn target(&self, config: &Self::Config) -> String {
        let _ = config;
        self.name().to_owned()
    }

    /// Delivers one notification. Must return within `ctx.timeout` (use it
    /// as the I/O timeout); the host gives up on the attempt shortly after.
    /// Messages in the outcome must be public-safe.
    fn deliver(&self, notification: &Notification, config: &Self::Config, ctx: &CallContext) -> Outcome;
}

/// Per-call facts from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallContext {
    /// 1 for the first attempt at this notification, 2 for the first retry, ...
    pub attempt: u32,
    /// How long this attempt may take.
    pub timeout: Duration,
}

/// The JSON document behind [`ConnectorModule::deliver`](crate::ConnectorModule::deliver).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRequest {
    /// What to deliver.
    pub notification: Notification,
    /// This plugin's configuration section (secrets resolved).
    #[serde(default)]
    pub config: serde_json::Value,
    /// See [`CallContext::attempt`].
    #[serde(default = "one")]
    pub attempt: u32,
    /// See [`CallContext::timeout`], in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn one() -> u32 {
    1
}

fn default_timeout_ms() -> u64 {
    10_000
}

impl DeliveryRequest {
    /// The call context of this request.
    pub fn context(&self) -> CallContext {
        CallContext { attempt: self.attempt, timeout: Duration::from_millis(self.timeout_ms) }
    }
}

// The configuration holds secrets: never print it.
impl fmt::Debug for DeliveryRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryRequest")
            .field("notification", &self.notification)
            .field("config", &"<redacted>")
            .field("attempt", &self.attempt)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// The outcome of one delivery attempt (plain Rust form of [`DeliveryOutcome`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider accepted the notification.
    Delivered {
        /// Provider status, if any (HTTP status, SMTP reply code).
        status_code: Option<u16>,
    },
    /// May succeed later: the host retries with backoff.
    RetryableFailure {
        /// Provider status, if any.
        status_code: Option<u16>,
        /// Public-safe description: no URL path/query, header value, token or config value.
        message: String,
    },
    /// Will not succeed by retrying: the host records it and moves on.
    PermanentFailure {
        /// Provider status, if any.
        status_code: Option<u16>,
        /// Public-safe description: no URL path/query, header value, token or config value.
        message: String,
    },
}

impl Outcome {
    /// `Delivered` with an optional status.
    pub fn delivered(status_code: impl Into<Option<u16>>) -> Self {
        Outcome::Delivered { status_code: status_code.into() }
    }

    /// `RetryableFailure` with an optional status.
    pub fn retryable(status_code: impl Into<Option<u16>>, message: impl Into<String>) -> Self {
        Outcome::RetryableFailure { status_code: status_code.into(), message: message.into() }
    }

    /// `PermanentFailure` with an optional status.
    pub fn permanent(status_code: impl Into<Option<u16>>, message: impl Into<String>) -> Self {
        Outcome::PermanentFailure { status_code: status_code.into(), message: message.into() }
    }

    /// Classifies an HTTP response status: 2xx delivered; 408, 425, 429 and
    /// 5xx retryable; anything else (other 4xx, unexpected 1xx/3xx) permanent.
    pub fn from_http_status(status: u16) -> Self {
        match status {
            200..=299 => Outcome::delivered(status),
            408 | 425 | 429 | 500..=599 => Outcome::retryable(status, format!("provider answered HTTP {status}")),
            300..=399 => Outcome::permanent(status, format!("provider answered with a redirect (HTTP {status}); webhook URLs must not redirect")),
            _ => Outcome::permanent(status, format!("provider refused the notification (HTTP {status})")),
        }
    }

    /// The status code, whatever the variant.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Outcome::Delivered { status_code } | Outcome::RetryableFailure { status_code, .. } | Outcome::PermanentFailure { status_code, .. } => *status_code,
        }
    }
}

impl From<Outcome> for DeliveryOutcome {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Delivered { status_code } => DeliveryOutcome::Delivered { status_code: status_code.into() },
            Outcome::RetryableFailure { status_code, message } => {
                DeliveryOutcome::RetryableFailure { status_code: status_code.into(), message: message.into() }
            }
            Outcome::PermanentFailure { status_code, message } => {
                DeliveryOutcome::PermanentFailure { status_code: status_code.into(), message: message.into() }
            }
        }
    }
}

impl From<DeliveryOutcome> for Outcome {
    fn from(outcome: DeliveryOutcome) -> Self {
        match outcome {
            DeliveryOutcome::Delivered { status_code } => Outcome::Delivered { status_code: status_code.into() },
            DeliveryOutcome::RetryableFailure { status_code, message } => {
                Outcome::RetryableFailure { status_code: status_code.into(), message: message.into() }
            }
            DeliveryOutcome::PermanentFailure { status_code, message } => {
                Outcome::PermanentFailure { status_code: status_code.into(), message: message.into() }
            }
        }
    }
}

/// A configuration problem, described by key names only (never values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    /// Any public-safe message.
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError { message: message.into() }
    }

    /// `missing required key `{key}``.
    pub fn missing(key: &str) -> Self {
        ConfigError::new(format!("missing required key `{key}`"))
    }

    /// `key `{key}` {why}`, e.g. `invalid("url", "must be an http(s) URL")`.
    pub fn invalid(key: &str, why: &str) -> Self {
        ConfigError::new(format!("key `{key}` {why}"))
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A secret configuration value: `Debug` and `Display` print `<redacted>`,
/// only [`expose`](Secret::expose) gives the text. Deserialises from a string.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret text, for the one place that needs it (a header, a signature key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Turns a serde error about a configuration into a public-safe message.
///
/// serde quotes offending values (`invalid type: string "hunter2", expected
/// u16`); everything between double quotes is replaced by `…`. Field names
/// (in backticks) are kept because they are what the operator must fix.
pub fn describe_config_error(err: &serde_json::Error) -> String {
    let mut raw = err.to_string();
    // `unknown variant `VALUE`, expected one of …` quotes the value in backticks.
    if let Some(rest) = raw.strip_prefix("unknown variant `") {
        if let Some(end) = rest.find('`') {
            raw = format!("unknown variant `…`{}", &rest[end + 1..]);
        }
    }
    let mut out = String::with_capacity(raw.len());
    let mut in_quotes = false;
    for c in raw.chars() {
        if c == '"' {
            if in_quotes {
                out.push_str("…\"");
            } else {
                out.push('"');
            }
            in_quotes = !in_quotes;
        } else if !in_quotes {
            out.push(c);
        }
    }
    format!("invalid configuration: {out}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_are_classified() {
        assert!(matches!(Outcome::from_http_status(204), Outcome::Delivered { status_code: Some(204) }));
        for s in [408, 425, 429, 500, 502, 503, 599] {
            assert!(matches!(Outcome::from_http_status(s), Outcome::RetryableFailure { .. }), "{s}");
        }
        for s in [301, 400, 401, 403, 404, 410, 413, 100] {
            assert!(matches!(Outcome::from_http_status(s), Outcome::PermanentFailure { .. }), "{s}");
        }
    }

    #[test]
    fn outcome_round_trips_through_the_abi_type() {
        for o in [Outcome::delivered(200), Outcome::retryable(None, "timed out"), Outcome::permanent(400, "bad")] {
            assert_eq!(Outcome::from(DeliveryOutcome::from(o.clone())), o);
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let s: Secret = serde_json::from_str("\"CANARY\"").expect("string");
        assert_eq!(format!("{s:?} {s}"), "Secret(<redacted>) <redacted>");
        assert_eq!(s.expose(), "CANARY");
    }

    #[test]
    fn serde_errors_lose_quoted_values() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct C {
            port: u16,
        }
        let err = serde_json::from_value::<C>(serde_json::json!({"port": "CANARY"})).expect_err("type error");
        let msg = describe_config_error(&err);
        assert!(!msg.contains("CANARY"), "{msg}");
        assert!(msg.contains("expected u16"), "{msg}");
        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Format {
            Card,
        }
        let err = serde_json::from_value::<Format>(serde_json::json!("CANARY")).expect_err("bad variant");
        let msg = describe_config_error(&err);
        assert!(!msg.contains("CANARY") && msg.contains("expected `card`"), "{msg}");
        let err = serde_json::from_value::<C>(serde_json::json!({})).expect_err("missing");
        assert!(describe_config_error(&err).contains("missing field `port`"));
    }
}
