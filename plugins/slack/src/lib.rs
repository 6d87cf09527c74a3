//! The `slack` connector: posts to a Slack incoming webhook.
//!
//! Configuration (`CAVRA_CONNECTOR_CONFIG`):
//! `{"connectors": {"slack": {"url_env": "SLACK_WEBHOOK_URL"}}}` (or an inline
//! `"url"`). The webhook URL is the credential: it is only ever used to send,
//! and recorded as `https://hooks.slack.com/…`.
//!
//! The body is `{"text": …, "blocks": […]}`: `text` is the plain fallback
//! (notifications, screen readers), `blocks` the formatted message (a header,
//! the reason, the facts as fields, and the route id as context).

use cavra_connector_api::serde::Deserialize;
use cavra_connector_api::serde_json::{self, json, Value};
use cavra_connector_api::{connector_module, redact_target, CallContext, ConfigError, Connector, ConnectorModuleRef, Notification, Outcome, Secret};
use cavra_connector_http::{post_json, validate_url, JsonPost};

/// `{"url": WEBHOOK_URL}`.
#[derive(Debug, Deserialize)]
#[serde(crate = "cavra_connector_api::serde", deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming-webhook URL.
    pub url: Secret,
}

/// The Slack connector.
#[derive(Debug, Default)]
pub struct Slack;

impl Connector for Slack {
    type Config = SlackConfig;

    fn name(&self) -> &str {
        "slack"
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn providers(&self) -> Vec<String> {
        vec!["slack".to_owned()]
    }

    fn validate_config(&self, config: &SlackConfig) -> Result<(), ConfigError> {
        validate_url("url", config.url.expose())
    }

    fn target(&self, config: &SlackConfig) -> String {
        redact_target(config.url.expose())
    }

    fn deliver(&self, notification: &Notification, config: &SlackConfig, ctx: &CallContext) -> Outcome {
        let body = match serde_json::to_vec(&message(notification)) {
            Ok(body) => body,
            Err(_) => return Outcome::permanent(None, "could not encode the Slack message"),
        };
        post_json(&JsonPost { url: config.url.expose(), body, idempotency_key: &notification.idempotency_key, headers: Vec::new(), timeout: ctx.timeout })
    }
}

/// The Slack message for a notification.
pub fn message(n: &Notification) -> Value {
    let fields: Vec<Value> = n
        .facts()
        .into_iter()
        .filter(|(label, _)| *label != "Route")
        .take(10) // Slack's limit for section fields
        .map(|(label, value)| json!({"type": "mrkdwn", "text": format!("*{label}*\n{}", escape(&value))}))
        .collect();
    json!({
        "text": n.render_text(),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": truncate(&n.title(), 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": escape(&n.reason)}},
            {"type": "section", "fields": fields},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("route {} · plan {}", n.route_id, n.plan_id)}]},
        ],
    })
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max_chars - 1).collect();
    out.push('…');
    out
}

/// The connector's module, as a host that links it calls it (cavra's
/// built-in `slack` connector); `cavra-plugin-slack` exports the same connector
/// as a plugin library.
pub fn module() -> ConnectorModuleRef {
    connector_module!(Slack)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_has_fallback_text_and_blocks() {
        let n: Notification = serde_json::from_value(json!({
            "route_id": "route_1", "plan_id": "plan_1", "schedule_id": "drill<x>", "owner": "ops",
            "escalation_owner": "lead", "provider": "slack", "alert_level": "critical", "status": "needs_attention",
            "reason": "overdue & stale", "acknowledgement_minutes": 30, "idempotency_key": "k",
            "created_at": "2026-05-21T19:00:00Z", "runbook_ref": "docs/runbook.md"
        }))
        .expect("notification");
        let m = message(&n);
        assert!(m["text"].as_str().is_some_and(|t| t.contains("[CRITICAL]")));
        assert_eq!(m["blocks"][1]["text"]["text"], "overdue &amp; stale");
        let fields = m["blocks"][2]["fields"].as_array().expect("fields");
        assert!(fields.iter().any(|f| f["text"] == "*Schedule*\ndrill&lt;x&gt;"));
        assert!(fields.iter().any(|f| f["text"] == "*Runbook*\ndocs/runbook.md"));
    }

    #[test]
    fn config_is_checked_without_echoing_it() {
        let bad = SlackConfig { url: Secret::new("ftp://CANARY") };
        let err = Slack.validate_config(&bad).expect_err("not http");
        assert!(!err.to_string().contains("CANARY"));
        let good = SlackConfig { url: Secret::new("https://hooks.slack.com/services/T0/B0/CANARY") };
        assert_eq!(Slack.target(&good), "https://hooks.slack.com/…");
    }
}
