//! The `webhook` connector: a generic JSON `POST` of the notification.
//!
//! Configuration (`CAVRA_CONNECTOR_CONFIG`):
//!
//! ```json
//! {"connectors": {"webhook": {"url_env": "HOOK_URL", "secret_env": "HOOK_SECRET", "token_env": "HOOK_TOKEN"}}}
//! ```
//!
//! * `url` (required): where to post.
//! * `secret` (optional): when set, the body is signed with HMAC-SHA256 and the
//!   signature sent as `X-Cavra-Signature: sha256=<hex>`; receivers recompute it
//!   over the exact body bytes to authenticate the sender.
//! * `token` (optional): sent as `Authorization: Bearer <token>`.
//!
//! Every request carries `Idempotency-Key` (stable across retries). The body:
//! `{"schema_version": "cavra.connector-webhook.v1", "event": "rollback_drill_notification",
//! "text": …, "notification": {…}}`.

use cavra_connector_api::serde::Deserialize;
use cavra_connector_api::serde_json::{self, json, Value};
use cavra_connector_api::{connector_module, redact_target, CallContext, ConfigError, Connector, ConnectorModuleRef, Notification, Outcome, Secret};
use cavra_connector_http::{hex, post_json, validate_url, JsonPost};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The schema string of the body.
pub const BODY_SCHEMA: &str = "cavra.connector-webhook.v1";
/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Cavra-Signature";

/// `{"url", "secret"?, "token"?}`.
#[derive(Debug, Deserialize)]
#[serde(crate = "cavra_connector_api::serde", deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to post.
    pub url: Secret,
    /// HMAC-SHA256 signing key.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Bearer token.
    #[serde(default)]
    pub token: Option<Secret>,
}

/// The generic webhook connector.
#[derive(Debug, Default)]
pub struct Webhook;

impl Connector for Webhook {
    type Config = WebhookConfig;

    fn name(&self) -> &str {
        "webhook"
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn providers(&self) -> Vec<String> {
        vec!["webhook".to_owned()]
    }

    fn validate_config(&self, config: &WebhookConfig) -> Result<(), ConfigError> {
        validate_url("url", config.url.expose())?;
        if config.secret.as_ref().is_some_and(|s| s.expose().is_empty()) {
            return Err(ConfigError::invalid("secret", "must not be empty"));
        }
        if let Some(token) = &config.token {
            // A header value cannot hold control characters; say so now rather than at send time.
            if token.expose().is_empty() || token.expose().chars().any(|c| c.is_control()) {
                return Err(ConfigError::invalid("token", "must be a non-empty single-line value"));
            }
        }
        Ok(())
    }

    fn target(&self, config: &WebhookConfig) -> String {
        redact_target(config.url.expose())
    }

    fn deliver(&self, notification: &Notification, config: &WebhookConfig, ctx: &CallContext) -> Outcome {
        let body = match serde_json::to_vec(&body(notification)) {
            Ok(body) => body,
            Err(_) => return Outcome::permanent(None, "could not encode the webhook body"),
        };
        let mut headers = Vec::new();
        if let Some(secret) = &config.secret {
            match signature(secret.expose().as_bytes(), &body) {
                Some(sig) => headers.push((SIGNATURE_HEADER, sig)),
                None => return Outcome::permanent(None, "could not sign the webhook body"),
            }
        }
        if let Some(token) = &config.token {
            headers.push(("Authorization", format!("Bearer {}", token.expose())));
        }
        post_json(&JsonPost { url: config.url.expose(), body, idempotency_key: &notification.idempotency_key, headers, timeout: ctx.timeout })
    }
}

/// The JSON body for a notification.
pub fn body(n: &Notification) -> Value {
    json!({
        "schema_version": BODY_SCHEMA,
        "event": "rollback_drill_notification",
        "text": n.render_text(),
        "notification": n,
    })
}

/// `sha256=<hex of HMAC-SHA256(key, body)>`. (HMAC takes keys of any
/// length, so `None` does not happen in practice.)
pub fn signature(key: &[u8], body: &[u8]) -> Option<String> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
    mac.update(body);
    Some(format!("sha256={}", hex(&mac.finalize().into_bytes())))
}

/// The connector's module, as a host that links it calls it (cavra's
/// built-in `webhook` connector); `cavra-plugin-webhook` exports the same connector
/// as a plugin library.
pub fn module() -> ConnectorModuleRef {
    connector_module!(Webhook)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc4231_test_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?").as_deref(),
            Some("sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }

    #[test]
    fn empty_secret_is_refused_without_echo() {
        let config = WebhookConfig { url: Secret::new("https://h.example/CANARY"), secret: Some(Secret::new("")), token: None };
        let err = Webhook.validate_config(&config).expect_err("empty secret");
        assert!(err.to_string().contains("`secret`") && !err.to_string().contains("CANARY"));
    }
}
