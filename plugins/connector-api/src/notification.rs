//! The notification a connector delivers, and the public-safe text built from it.
//!
//! A [`Notification`] is built by the host from one `deliver` route decision of
//! a notification plan. Every field comes from public-safe documents (the
//! schedule, the routing policy and the plan, all screened by the public-safety
//! rule pack), so a connector may put any of them in a message. It never
//! contains connector configuration: that travels separately.

use serde::{Deserialize, Serialize};

/// One notification to deliver: a route decision whose action is `deliver`.
///
/// Unknown JSON fields are ignored and optional fields default, so a plugin
/// built against an older `cavra-connector-api` still accepts notifications
/// from a newer host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Deterministic id of the route decision (`route_…`).
    pub route_id: String,
    /// The plan the route decision belongs to (`plan_…`).
    pub plan_id: String,
    /// The rollback drill schedule the notification is about.
    pub schedule_id: String,
    /// The owner being notified.
    pub owner: String,
    /// Who is told when the owner does not acknowledge in time.
    pub escalation_owner: String,
    /// The provider this notification goes to, e.g. `slack`.
    pub provider: String,
    /// `critical`, `warning` or `healthy`.
    pub alert_level: String,
    /// The schedule report status, e.g. `needs_attention` or `due_soon`.
    pub status: String,
    /// When the next drill is due (RFC 3339 UTC), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_due_at: Option<String>,
    /// Why the notification is sent, in words an operator can act on.
    pub reason: String,
    /// The runbook reference of the schedule, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_ref: Option<String>,
    /// Minutes the owner has to acknowledge before escalation.
    pub acknowledgement_minutes: u64,
    /// Stable across retries and re-runs of the same route: providers that
    /// honour it (HTTP `Idempotency-Key`, e-mail `Message-ID`) never show a
    /// notification twice.
    pub idempotency_key: String,
    /// When the route decision was made (RFC 3339 UTC).
    pub created_at: String,
}

impl Notification {
    /// A one-line title, e.g.
    /// `[CRITICAL] rollback drill go_backend_monthly needs attention`.
    pub fn title(&self) -> String {
        let level = self.alert_level.to_ascii_uppercase();
        let what = match self.status.as_str() {
            "needs_attention" => "needs attention",
            "due_soon" => "is due soon",
            "ready" => "is healthy",
            other => other,
        };
        format!("[{level}] rollback drill {} {what}", self.schedule_id)
    }

    /// The public-safe message text connectors send: title, reason, owner and
    /// escalation owner, provider, due date, acknowledgement window and
    /// runbook reference, one fact per line.
    pub fn render_text(&self) -> String {
        let mut lines = vec![self.title(), self.reason.clone()];
        lines.push(format!("Owner: {} (escalates to {})", self.owner, self.escalation_owner));
        lines.push(format!("Schedule: {} via {}", self.schedule_id, self.provider));
        if let Some(due) = &self.next_due_at {
            lines.push(format!("Next drill due: {due}"));
        }
        lines.push(format!("Acknowledge within {} minutes.", self.acknowledgement_minutes));
        if let Some(runbook) = &self.runbook_ref {
            lines.push(format!("Runbook: {runbook}"));
        }
        lines.push(format!("Route: {} (plan {})", self.route_id, self.plan_id));
        lines.join("\n")
    }

    /// The facts of [`render_text`](Self::render_text) as `(label, value)`
    /// pairs, for connectors that render structured cards.
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let mut facts = vec![
            ("Schedule", self.schedule_id.clone()),
            ("Status", self.status.clone()),
            ("Alert level", self.alert_level.clone()),
            ("Owner", self.owner.clone()),
            ("Escalation owner", self.escalation_owner.clone()),
            ("Provider", self.provider.clone()),
        ];
        if let Some(due) = &self.next_due_at {
            facts.push(("Next drill due", due.clone()));
        }
        facts.push(("Acknowledge within", format!("{} minutes", self.acknowledgement_minutes)));
        if let Some(runbook) = &self.runbook_ref {
            facts.push(("Runbook", runbook.clone()));
        }
        facts.push(("Route", self.route_id.clone()));
        facts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Notification {
        Notification {
            route_id: "route_0123456789abcdef".into(),
            plan_id: "plan_0123456789abcdef".into(),
            schedule_id: "go_backend_python_fallback_monthly".into(),
            owner: "release-governance".into(),
            escalation_owner: "platform-operations".into(),
            provider: "slack".into(),
            alert_level: "warning".into(),
            status: "due_soon".into(),
            next_due_at: Some("2026-05-30T15:40:00Z".into()),
            reason: "rollback drill schedule go_backend_python_fallback_monthly is due soon".into(),
            runbook_ref: Some("docs/go-backend-rollback-drill-scheduling.md".into()),
            acknowledgement_minutes: 60,
            idempotency_key: "cavra-0123".into(),
            created_at: "2026-05-21T19:00:00Z".into(),
        }
    }

    #[test]
    fn text_names_owner_schedule_due_date_and_runbook() {
        let text = sample().render_text();
        assert!(text.starts_with("[WARNING] rollback drill go_backend_python_fallback_monthly is due soon"));
        for needle in ["release-governance", "platform-operations", "2026-05-30T15:40:00Z", "docs/go-backend", "60 minutes", "via slack"] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[test]
    fn optional_fields_default_and_unknown_fields_are_ignored() {
        let json = serde_json::json!({
            "route_id": "r", "plan_id": "p", "schedule_id": "s", "owner": "o",
            "escalation_owner": "e", "provider": "slack", "alert_level": "critical",
            "status": "needs_attention", "reason": "why", "acknowledgement_minutes": 5,
            "idempotency_key": "k", "created_at": "2026-01-01T00:00:00Z", "added_later": true
        });
        let n: Notification = serde_json::from_value(json).expect("parses");
        assert_eq!(n.next_due_at, None);
        assert!(!n.render_text().contains("Runbook"));
    }
}
