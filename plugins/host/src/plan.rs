//! Building [`Notification`]s from a stored notification plan.
//!
//! A plan (`cavra.go-backend-pilot.rollback-drill-notification-plan.v1`) has
//! plan-level `plan_id`, `status` and `alert_level`, and `route_decisions`
//! with `action`; each `deliver` route becomes one notification. The due date
//! and runbook reference come from the schedule, which the caller passes in
//! a [`PlanContext`].

use cavra_connector_api::Notification;
use serde_json::Value;

use crate::delivery::idempotency_key;
use crate::error::HostError;

/// Facts about the schedule that the plan does not repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanContext {
    /// The schedule's `next_due_at`, if known.
    pub next_due_at: Option<String>,
    /// The schedule's `runbook_ref`, if any.
    pub runbook_ref: Option<String>,
}

/// One notification per route decision whose `action` is `deliver`, in plan
/// order, each with its [`idempotency_key`]. A missing or mistyped field is
/// an error naming its JSON path.
pub fn notifications_from_plan(plan: &Value, context: &PlanContext) -> Result<Vec<Notification>, HostError> {
    let text = |v: &Value, path: &str, key: &str| -> Result<String, HostError> {
        v.get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| HostError::Plan { path: format!("{path}{key}"), problem: "must be a string".into() })
    };
    let routes = plan
        .get("route_decisions")
        .and_then(Value::as_array)
        .ok_or_else(|| HostError::Plan { path: "route_decisions".into(), problem: "must be an array".into() })?;
    let status = text(plan, "", "status")?;
    let alert_level = text(plan, "", "alert_level")?;
    let mut out = Vec::new();
    for (i, route) in routes.iter().enumerate() {
        let path = format!("route_decisions[{i}].");
        if route.get("action").and_then(Value::as_str) != Some("deliver") {
            continue;
        }
        let route_id = text(route, &path, "route_id")?;
        let plan_id = match route.get("plan_id") {
            Some(_) => text(route, &path, "plan_id")?,
            None => text(plan, "", "plan_id")?,
        };
        let owner = text(route, &path, "owner")?;
        let escalation_owner = match route.get("escalation_owner").and_then(Value::as_str) {
            Some(e) if !e.is_empty() => e.to_owned(),
            _ => owner.clone(),
        };
        let acknowledgement_minutes = route
            .get("acknowledgement_minutes")
            .and_then(Value::as_u64)
            .ok_or_else(|| HostError::Plan { path: format!("{path}acknowledgement_minutes"), problem: "must be a non-negative integer".into() })?;
        out.push(Notification {
            idempotency_key: idempotency_key(&route_id),
            route_id,
            plan_id,
            schedule_id: text(route, &path, "schedule_id")?,
            owner,
            escalation_owner,
            provider: text(route, &path, "provider")?,
            alert_level: alert_level.clone(),
            status: status.clone(),
            next_due_at: context.next_due_at.clone(),
            reason: text(route, &path, "reason")?,
            runbook_ref: context.runbook_ref.clone(),
            acknowledgement_minutes,
            created_at: text(route, &path, "created_at")?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deliver_routes_become_notifications() {
        let plan = json!({
            "plan_id": "plan_1", "status": "due_soon", "alert_level": "warning",
            "route_decisions": [
                {"route_id": "route_a", "plan_id": "plan_1", "schedule_id": "s", "owner": "ops", "escalation_owner": "lead",
                 "provider": "slack", "action": "deliver", "acknowledgement_minutes": 60, "reason": "due", "created_at": "2026-05-21T19:00:00Z"},
                {"route_id": "route_b", "action": "suppress"}
            ]
        });
        let ctx = PlanContext { next_due_at: Some("2026-05-30T15:40:00Z".into()), runbook_ref: None };
        let n = notifications_from_plan(&plan, &ctx).expect("valid plan");
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].escalation_owner, "lead");
        assert_eq!(n[0].idempotency_key, idempotency_key("route_a"));
        assert_eq!(n[0].next_due_at.as_deref(), Some("2026-05-30T15:40:00Z"));
    }

    #[test]
    fn missing_fields_name_their_path() {
        let plan = json!({"plan_id": "p", "status": "due_soon", "alert_level": "warning",
            "route_decisions": [{"route_id": "r", "action": "deliver", "schedule_id": "s", "provider": "slack"}]});
        let err = notifications_from_plan(&plan, &PlanContext::default()).expect_err("no owner");
        assert_eq!(err.to_string(), "notification plan: `route_decisions[0].owner` must be a string");
    }
}
