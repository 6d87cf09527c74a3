//! Private connector configuration: `CAVRA_CONNECTOR_CONFIG`.
//!
//! The variable names a JSON file:
//!
//! ```json
//! {"connectors": {
//!     "slack":  {"url_env": "SLACK_WEBHOOK_URL"},
//!     "outbox": {"path": "/var/lib/cavra/outbox.jsonl"}
//! }}
//! ```
//!
//! Each section belongs to one connector, by provider name (or plugin name),
//! and is the only part of the file that connector ever sees. A section may
//! also name more providers for its connector to serve (`"providers":
//! ["slack", "teams"]`, e.g. an outbox for every provider in staging): their
//! deliveries go to that connector with that section, whoever else serves
//! them. The key is the host's, not the connector's: it is taken out of the
//! section the connector sees. Values are
//! inline or, for any key `X_env`, read from the environment variable it
//! names and passed to the plugin as `X` (`url_env` → `url`, `token_env` →
//! `token`, `secret_env` → `secret`, ...), at any depth of the section.
//!
//! Nothing here ever prints a value: errors name the file, the connector and
//! the key (and the environment variable's *name*); `Debug` lists connectors
//! and key names only. Every resolved string value is registered with the
//! [`Redactor`] that the delivery engine uses to scrub plugin output.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::ConfigError;
use crate::redact::Redactor;

/// The environment variable naming the configuration file.
pub const CONNECTOR_CONFIG_ENV: &str = "CAVRA_CONNECTOR_CONFIG";

/// The suffix that marks a key whose value names an environment variable.
const ENV_SUFFIX: &str = "_env";

/// The key of a section that names more providers for its connector.
pub const PROVIDERS_KEY: &str = "providers";

/// The resolved private configuration of all connectors.
#[derive(Clone, Default)]
pub struct ConnectorConfig {
    sections: BTreeMap<String, Value>,
    /// Provider -> the connector (section) its `providers` key sends it to.
    routes: BTreeMap<String, String>,
    redactor: Redactor,
    source: Option<PathBuf>,
}

impl ConnectorConfig {
    /// No configuration at all.
    pub fn empty() -> Self {
        ConnectorConfig::default()
    }

    /// Reads the file named by `CAVRA_CONNECTOR_CONFIG`, resolving `*_env`
    /// keys from the process environment. An unset or empty variable gives
    /// the empty configuration.
    pub fn from_env() -> Result<Self, ConfigError> {
        match std::env::var_os(CONNECTOR_CONFIG_ENV) {
            Some(path) if !path.is_empty() => Self::from_file(Path::new(&path)),
            _ => Ok(Self::empty()),
        }
    }

    /// Reads a configuration file, resolving `*_env` keys from the process environment.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read { path: path.to_owned(), reason: io_reason(&e) })?;
        let mut config = Self::parse(&text, path, |name| std::env::var(name).ok())?;
        config.source = Some(path.to_owned());
        Ok(config)
    }

    /// Parses configuration text; `env` looks environment variables up
    /// (injectable for tests). `origin` is only used in error messages.
    pub fn parse(text: &str, origin: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let file = || origin.to_owned();
        // serde_json's syntax errors carry a position, never the offending text.
        let root: Value = serde_json::from_str(text).map_err(|e| ConfigError::Syntax { path: file(), line: e.line(), column: e.column() })?;
        let Value::Object(mut root) = root else {
            return Err(ConfigError::Shape { path: file(), problem: "the top level must be an object with a `connectors` object".into() });
        };
        let connectors = match root.remove("connectors") {
            Some(Value::Object(connectors)) => connectors,
            None => Map::new(),
            Some(_) => return Err(ConfigError::Shape { path: file(), problem: "`connectors` must be an object of connector sections".into() }),
        };
        if let Some(key) = root.keys().next() {
            return Err(ConfigError::Shape { path: file(), problem: format!("unknown top-level key `{key}` (expected only `connectors`)") });
        }
        let mut config = ConnectorConfig::default();
        for (name, section) in connectors {
            let Value::Object(mut section) = section else {
                return Err(ConfigError::Shape { path: file(), problem: format!("connector `{name}`: its section must be a JSON object") });
            };
            for provider in routed_providers(&name, section.remove(PROVIDERS_KEY)).map_err(|problem| ConfigError::Shape { path: file(), problem })? {
                if let Some(other) = config.routes.get(&provider) {
                    let problem = format!("provider `{provider}` is in the `providers` of both connector `{other}` and connector `{name}`; name it once");
                    return Err(ConfigError::Shape { path: file(), problem });
                }
                config.routes.insert(provider, name.clone());
            }
            let resolved = resolve_object(&name, "", section, &env)?;
            config.insert(name, Value::Object(resolved));
        }
        Ok(config)
    }

    /// Sets (or replaces) a connector's section, already resolved, and
    /// registers its values for redaction. For defaults such as the outbox
    /// path when the file gives none.
    pub fn insert(&mut self, connector: impl Into<String>, section: Value) {
        register_values(&mut self.redactor, &section);
        self.sections.insert(connector.into(), section);
    }

    /// Sets a section only when the file gave none for that connector.
    pub fn insert_default(&mut self, connector: &str, section: Value) {
        if !self.sections.contains_key(connector) {
            self.insert(connector, section);
        }
    }

    /// The section of a connector, if any.
    pub fn section(&self, connector: &str) -> Option<&Value> {
        self.sections.get(connector)
    }

    /// The section for a delivery to `provider` through the plugin named
    /// `plugin`: the provider's section, else the plugin's. (A provider the
    /// configuration routes elsewhere gets that connector's section: see
    /// [`ConnectorConfig::route`].)
    pub fn section_for(&self, provider: &str, plugin: &str) -> Option<&Value> {
        self.section(provider).or_else(|| self.section(plugin))
    }

    /// The connector whose section lists `provider` in its `providers`, if any.
    pub fn route(&self, provider: &str) -> Option<&str> {
        self.routes.get(provider).map(String::as_str)
    }

    /// Every provider a section's `providers` names, with its connector, sorted by provider.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.routes.iter().map(|(provider, connector)| (provider.as_str(), connector.as_str()))
    }

    /// The connector names that have a section, sorted.
    pub fn connectors(&self) -> impl Iterator<Item = &str> {
        self.sections.keys().map(String::as_str)
    }

    /// The redactor that knows every configured value.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The file it was read from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }
}

/// Lists connectors and their key names; never values.
impl fmt::Debug for ConnectorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: BTreeMap<&str, Vec<&str>> = self
            .sections
            .iter()
            .map(|(name, section)| (name.as_str(), section.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default()))
            .collect();
        f.debug_struct("ConnectorConfig").field("source", &self.source).field("keys", &keys).field("redactor", &self.redactor).finish()
    }
}

/// The providers a section's `providers` key names (none when absent), each
/// a valid provider name, once.
fn routed_providers(connector: &str, value: Option<Value>) -> Result<Vec<String>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let shape = || format!("connector `{connector}`: `{PROVIDERS_KEY}` must be a list of provider names, such as [\"slack\", \"teams\"]");
    let Value::Array(items) = value else {
        return Err(shape());
    };
    let mut providers: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(provider) = item else {
            return Err(shape());
        };
        let valid = !provider.is_empty() && provider.len() <= 64 && provider.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            // The value is not echoed: a mistake here may be a pasted secret.
            return Err(format!("connector `{connector}`: `{PROVIDERS_KEY}` has an entry that is not a provider name (1-64 letters, digits, `-`, `_` or `.`)"));
        }
        if providers.contains(&provider) {
            return Err(format!("connector `{connector}`: `{PROVIDERS_KEY}` names provider `{provider}` twice"));
        }
        providers.push(provider);
    }
    Ok(providers)
}

fn resolve_object(connector: &str, prefix: &str, object: Map<String, Value>, env: &impl Fn(&str) -> Option<String>) -> Result<Map<String, Value>, ConfigError> {
    let mut out = Map::new();
    // Plain keys first, so that `url` + `url_env` is detected whatever the order.
    let (env_keys, plain): (Vec<_>, Vec<_>) = object.into_iter().partition(|(k, _)| k.len() > ENV_SUFFIX.len() && k.ends_with(ENV_SUFFIX));
    for (key, value) in plain {
        let path = format!("{prefix}{key}");
        let value = match value {
            Value::Object(inner) => Value::Object(resolve_object(connector, &format!("{path}."), inner, env)?),
            other => other,
        };
        out.insert(key, value);
    }
    for (key, value) in env_keys {
        let target = key[..key.len() - ENV_SUFFIX.len()].to_owned();
        let key_path = format!("{prefix}{key}");
        let Value::String(var) = value else {
            return Err(ConfigError::EnvKeyNotString { connector: connector.to_owned(), key: key_path });
        };
        if out.contains_key(&target) {
            return Err(ConfigError::BothInlineAndEnv { connector: connector.to_owned(), key: format!("{prefix}{target}") });
        }
        match env(&var) {
            Some(v) if !v.is_empty() => {
                out.insert(target, Value::String(v));
            }
            _ => return Err(ConfigError::MissingEnv { connector: connector.to_owned(), key: key_path, var }),
        }
    }
    Ok(out)
}

fn register_values(redactor: &mut Redactor, value: &Value) {
    match value {
        Value::String(s) => redactor.add(s),
        Value::Array(items) => items.iter().for_each(|v| register_values(redactor, v)),
        Value::Object(map) => map.values().for_each(|v| register_values(redactor, v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::InvalidData => "not UTF-8 text".into(),
        kind => format!("{kind}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOOK" => Some("https://hooks.example.com/services/CANARY-7f3a9c".into()),
            "TOKEN" => Some("CANARY-token-7f3a9c".into()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<ConnectorConfig, ConfigError> {
        ConnectorConfig::parse(text, Path::new("connectors.json"), env)
    }

    #[test]
    fn env_keys_resolve_at_any_depth() {
        let c = parse(r#"{"connectors": {"slack": {"url_env": "HOOK"}, "webhook": {"url": "https://x.example/a", "auth": {"token_env": "TOKEN"}}, "outbox": {"path": "/tmp/o.jsonl"}}}"#).expect("valid");
        assert_eq!(c.section("slack"), Some(&json!({"url": "https://hooks.example.com/services/CANARY-7f3a9c"})));
        assert_eq!(c.section("webhook").and_then(|s| s.pointer("/auth/token")), Some(&json!("CANARY-token-7f3a9c")));
        assert_eq!(c.connectors().collect::<Vec<_>>(), ["outbox", "slack", "webhook"]);
        let debug = format!("{c:?}");
        assert!(!debug.contains("CANARY") && debug.contains("\"url\""), "{debug}");
        assert!(!c.redactor().scrub("x CANARY-7f3a9c y CANARY-token-7f3a9c").contains("CANARY"));
    }

    #[test]
    fn a_section_may_serve_more_providers() {
        let c = parse(r#"{"connectors": {"outbox": {"path": "/tmp/o.jsonl", "providers": ["slack", "teams"]}, "slack": {"url_env": "HOOK"}}}"#).expect("valid");
        assert_eq!(c.route("slack"), Some("outbox"));
        assert_eq!(c.route("teams"), Some("outbox"));
        assert_eq!(c.route("email"), None);
        assert_eq!(c.routes().collect::<Vec<_>>(), [("slack", "outbox"), ("teams", "outbox")]);
        // The connector never sees the host's key.
        assert_eq!(c.section("outbox"), Some(&json!({"path": "/tmp/o.jsonl"})));
        let cases = [
            (r#"{"connectors": {"outbox": {"providers": "slack"}}}"#, "`providers` must be a list of provider names"),
            (r#"{"connectors": {"outbox": {"providers": ["https://CANARY.example"]}}}"#, "has an entry that is not a provider name"),
            (r#"{"connectors": {"outbox": {"providers": ["slack", "slack"]}}}"#, "names provider `slack` twice"),
            (
                r#"{"connectors": {"outbox": {"providers": ["slack"]}, "webhook": {"providers": ["slack"]}}}"#,
                "provider `slack` is in the `providers` of both connector `outbox` and connector `webhook`",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(want), "{err}");
            assert!(!err.contains("CANARY"), "{err}");
        }
    }

    #[test]
    fn errors_name_connector_and_key_never_values() {
        let cases = [
            (r#"{"connectors": {"slack": {"url_env": "NOPE"}}}"#, "connector `slack`: key `url_env` names environment variable `NOPE`, which is not set"),
            (r#"{"connectors": {"slack": {"url": "CANARY", "url_env": "HOOK"}}}"#, "connector `slack`: both `url` and `url_env` are given; use one"),
            (r#"{"connectors": {"slack": {"url_env": 5}}}"#, "connector `slack`: key `url_env` must be a string naming an environment variable"),
            (r#"{"connectors": {"slack": "CANARY"}}"#, "connectors.json: connector `slack`: its section must be a JSON object"),
            (r#"{"connectors": [], "x": "CANARY"}"#, "connectors.json: `connectors` must be an object of connector sections"),
            (r#"{"connectors": {"slack": {"url": "CANARY""#, "connectors.json is not valid JSON (line 1, column 41)"),
        ];
        for (text, want) in cases {
            let err = parse(text).expect_err(text).to_string();
            assert_eq!(err, want);
            assert!(!err.contains("CANARY"));
        }
    }
}
