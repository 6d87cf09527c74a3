//! The `teams` connector: posts to a Microsoft Teams incoming webhook.
//!
//! Configuration (`CAVRA_CONNECTOR_CONFIG`):
//! `{"connectors": {"teams": {"url_env": "TEAMS_WEBHOOK_URL", "format": "adaptive_card"}}}`.
//!
//! `format` is `adaptive_card` (default: a `message` with an Adaptive Card
//! attachment, what Teams Workflows webhooks accept) or `message_card` (the
//! legacy Office 365 connector card). The URL is the credential: it is only
//! used to send, and recorded as scheme and host.

use cavra_connector_api::serde::Deserialize;
use cavra_connector_api::serde_json::{self, json, Value};
use cavra_connector_api::{connector_module, redact_target, CallContext, ConfigError, Connector, ConnectorModuleRef, Notification, Outcome, Secret};
use cavra_connector_http::{post_json, validate_url, JsonPost};

/// Which card format to send.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(crate = "cavra_connector_api::serde", rename_all = "snake_case")]
pub enum CardFormat {
    /// `{"type": "message", "attachments": [Adaptive Card]}`.
    #[default]
    AdaptiveCard,
    /// Legacy `MessageCard`.
    MessageCard,
}

/// `{"url": WEBHOOK_URL, "format": "adaptive_card" | "message_card"}`.
#[derive(Debug, Deserialize)]
#[serde(crate = "cavra_connector_api::serde", deny_unknown_fields)]
pub struct TeamsConfig {
    /// The incoming-webhook URL.
    pub url: Secret,
    /// Card format (default `adaptive_card`).
    #[serde(default)]
    pub format: CardFormat,
}

/// The Teams connector.
#[derive(Debug, Default)]
pub struct Teams;

impl Connector for Teams {
    type Config = TeamsConfig;

    fn name(&self) -> &str {
        "teams"
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn providers(&self) -> Vec<String> {
        vec!["teams".to_owned()]
    }

    fn validate_config(&self, config: &TeamsConfig) -> Result<(), ConfigError> {
        validate_url("url", config.url.expose())
    }

    fn target(&self, config: &TeamsConfig) -> String {
        redact_target(config.url.expose())
    }

    fn deliver(&self, notification: &Notification, config: &TeamsConfig, ctx: &CallContext) -> Outcome {
        let card = match config.format {
            CardFormat::AdaptiveCard => adaptive_card(notification),
            CardFormat::MessageCard => message_card(notification),
        };
        let body = match serde_json::to_vec(&card) {
            Ok(body) => body,
            Err(_) => return Outcome::permanent(None, "could not encode the Teams card"),
        };
        post_json(&JsonPost { url: config.url.expose(), body, idempotency_key: &notification.idempotency_key, headers: Vec::new(), timeout: ctx.timeout })
    }
}

/// Accent colour per alert level.
fn colour(alert_level: &str) -> (&'static str, &'static str) {
    // (MessageCard hex, Adaptive Card text colour)
    match alert_level {
        "critical" => ("D13438", "attention"),
        "warning" => ("FFB900", "warning"),
        _ => ("2EB886", "good"),
    }
}

/// A `message` carrying an Adaptive Card (Teams Workflows webhooks).
pub fn adaptive_card(n: &Notification) -> Value {
    let facts: Vec<Value> = n.facts().into_iter().map(|(title, value)| json!({"title": title, "value": value})).collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": n.title(), "weight": "Bolder", "size": "Medium", "wrap": true, "color": colour(&n.alert_level).1},
                    {"type": "TextBlock", "text": n.reason, "wrap": true},
                    {"type": "FactSet", "facts": facts},
                ],
            },
        }],
    })
}

/// A legacy Office 365 connector `MessageCard`.
pub fn message_card(n: &Notification) -> Value {
    let facts: Vec<Value> = n.facts().into_iter().map(|(name, value)| json!({"name": name, "value": value})).collect();
    json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": n.title(),
        "themeColor": colour(&n.alert_level).0,
        "title": n.title(),
        "text": n.reason,
        "sections": [{"facts": facts}],
    })
}

/// The connector's module, as a host that links it calls it (cavra's
/// built-in `teams` connector); `cavra-plugin-teams` exports the same connector
/// as a plugin library.
pub fn module() -> ConnectorModuleRef {
    connector_module!(Teams)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Notification {
        serde_json::from_value(json!({
            "route_id": "route_1", "plan_id": "plan_1", "schedule_id": "drill", "owner": "ops",
            "escalation_owner": "lead", "provider": "teams", "alert_level": "warning", "status": "due_soon",
            "reason": "due soon", "acknowledgement_minutes": 60, "idempotency_key": "k",
            "created_at": "2026-05-21T19:00:00Z", "next_due_at": "2026-05-30T15:40:00Z"
        }))
        .expect("notification")
    }

    #[test]
    fn both_card_formats_carry_the_facts() {
        let n = sample();
        let adaptive = adaptive_card(&n);
        assert_eq!(adaptive["attachments"][0]["content"]["type"], "AdaptiveCard");
        let facts = adaptive["attachments"][0]["content"]["body"][2]["facts"].as_array().expect("facts");
        assert!(facts.iter().any(|f| f["title"] == "Next drill due" && f["value"] == "2026-05-30T15:40:00Z"));
        let legacy = message_card(&n);
        assert_eq!(legacy["@type"], "MessageCard");
        assert_eq!(legacy["themeColor"], "FFB900");
    }

    #[test]
    fn unknown_format_is_a_config_error() {
        let err = serde_json::from_value::<TeamsConfig>(json!({"url": "https://x.example/CANARY", "format": "fancy"})).expect_err("bad format");
        assert!(err.to_string().contains("unknown variant"));
    }
}
