//! How the CLI shows a record: pretty JSON with `--json`, else a table; and
//! how it ends a command: the exit code of a success, or of an error (one
//! place, [`crate::fail`]).

use crate::authoring::say;
use crate::{exit, Io};
use cavra_app::records::{
    Acknowledgement, BackendEvaluation, DeliveryResult, EscalationPlan, Plan, ReadinessReport, Recovery, RecoveryList, Retry, RetryList, RouteList,
    RouteRecord, Simulation, Trend,
};
use cavra_app::retry::RetryOutcome;
use cavra_app::AppError;
use serde::Serialize;

/// Prints a command's record as JSON or as its table, or its error.
pub(crate) fn finish<T: Serialize>(io: &mut Io, json: bool, result: Result<T, AppError>, table: fn(&mut Io, &T)) -> i32 {
    finish_with(io, json, result, table, |_| exit::OK)
}

/// As [`finish`], with the exit status of a success decided by `code`.
pub(crate) fn finish_with<T: Serialize>(io: &mut Io, json: bool, result: Result<T, AppError>, table: fn(&mut Io, &T), code: impl Fn(&T) -> i32) -> i32 {
    match result {
        Ok(record) => {
            if json {
                say!(io.out, "{}", serde_json::to_string_pretty(&record).unwrap_or_default());
            } else {
                table(io, &record);
            }
            code(&record)
        }
        Err(e) => crate::fail(io, &e),
    }
}

/// An aligned text table: a header line, then one line per row.
pub(crate) fn print_columns(io: &mut Io, headers: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..headers.len()).map(|i| rows.iter().map(|r| r[i].len()).chain([headers[i].len()]).max().unwrap_or(0)).collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells.zip(&widths).map(|(c, w)| format!("{c:w$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    say!(io.out, "{}", line(&mut headers.iter().copied()));
    for row in rows {
        say!(io.out, "{}", line(&mut row.iter().map(String::as_str)));
    }
}

fn text(value: &Option<impl AsRef<str>>) -> String {
    value.as_ref().map_or_else(String::new, |v| v.as_ref().to_string())
}

pub(crate) fn print_report(io: &mut Io, report: &ReadinessReport) {
    say!(io.out, "{}: {} (mode {})", report.schema_version, report.status, report.mode);
    for check in &report.checks {
        let mark = if check.passed() { "pass" } else { "FAIL" };
        say!(io.out, "  [{mark}] {}: {}", check.id, check.message);
    }
}

pub(crate) fn print_evaluation(io: &mut Io, doc: &BackendEvaluation) {
    let effective = &doc.effective_decision;
    say!(
        io.out,
        "{} {}: {} ({}, {}) via the {} backend",
        doc.action_type,
        doc.target,
        effective.decision,
        text(&effective.rule_id),
        text(&effective.severity),
        doc.selected_backend
    );
    if let Some(reason) = &effective.reason {
        say!(io.out, "  reason: {reason}");
    }
    if let Some(fallback) = &doc.fallback_reason {
        say!(io.out, "  fell back to the built-in decision: {fallback}");
    }
    // The runtime's files, when given, so the table says what the runtime ran with.
    for (name, path) in [("policy_path", &doc.policy_path), ("package_dir", &doc.package_dir)] {
        if let Some(path) = path {
            say!(io.out, "  {name}: {path}");
        }
    }
}

pub(crate) fn print_plan(io: &mut Io, plan: &Plan) {
    say!(io.out, "plan {} for {}: {} ({}) - {}", plan.plan_id, plan.schedule_id, plan.status, plan.alert_level.as_str(), plan.reason);
    let rows: Vec<Vec<String>> = plan
        .route_decisions
        .iter()
        .map(|r| vec![r.owner.to_string(), r.provider.to_string(), r.action.to_string(), r.category.to_string(), text(&r.reason)])
        .collect();
    print_columns(io, &["OWNER", "PROVIDER", "ACTION", "CATEGORY", "REASON"], &rows);
    // The bundled pack's three categories always, then any other category
    // the pack produced, so a custom suppression is never hidden.
    let mut counts = vec![
        format!("{} maintenance window", plan.maintenance_suppressed_count),
        format!("{} owner calendar", plan.calendar_suppressed_count),
        format!("{} healthy schedule", plan.healthy_suppressed_count),
    ];
    let named = ["maintenance_window", "owner_calendar", "healthy_schedule"];
    for (category, count) in plan.suppressed_by_category.iter().flatten().filter(|(c, _)| !named.contains(&c.as_str())) {
        counts.push(format!("{count} {}", category.replace('_', " ")));
    }
    say!(io.out, "{} to deliver, {} suppressed ({})", plan.deliverable_route_count, plan.suppressed_route_count, counts.join(", "));
}

fn route_row(r: &RouteRecord) -> Vec<String> {
    vec![
        r.created_at.to_string(),
        r.schedule_id.to_string(),
        r.owner.to_string(),
        text(&r.escalation_owner),
        r.provider.to_string(),
        r.action.to_string(),
        r.category.to_string(),
        text(&r.reason),
    ]
}

pub(crate) fn print_routes(io: &mut Io, list: &RouteList) {
    let rows: Vec<Vec<String>> = list.routes.iter().map(route_row).collect();
    print_columns(io, &["CREATED_AT", "SCHEDULE", "OWNER", "ESCALATION", "PROVIDER", "ACTION", "CATEGORY", "REASON"], &rows);
    say!(io.out, "{} route{}", list.count, if list.count == 1 { "" } else { "s" });
}

pub(crate) fn print_ack(io: &mut Io, ack: &Acknowledgement) {
    say!(io.out, "{} {}: {} {} on {} at {}", ack.ack_id, ack.schedule_id, ack.acknowledged_by, ack.acknowledgement_state, ack.provider, ack.created_at);
    match ack.notification_ids.as_deref() {
        Some([]) | None => say!(io.out, "  it answers no open notification delivered at or before it"),
        Some(ids) => say!(io.out, "  answers {}", ids.join(", ")),
    }
}

pub(crate) fn print_escalation(io: &mut Io, plan: &EscalationPlan) {
    say!(
        io.out,
        "escalation plan at {}: {} ({} outstanding, {} breached, {} pending, {} suppressed, {} failed)",
        plan.generated_at,
        plan.alert_level.as_str(),
        plan.outstanding_count,
        plan.breached_count,
        plan.pending_count,
        plan.suppressed_count,
        plan.failed_count
    );
    let rows: Vec<Vec<String>> = plan
        .routes
        .iter()
        .map(|r| {
            vec![
                r.notification_id.clone(),
                r.schedule_id.clone(),
                format!("{}{}", r.owner, if r.escalates.is_some() { " (escalation)" } else { "" }),
                r.provider.clone(),
                r.state.clone(),
                r.recommended_action.clone(),
                text(&r.reason),
            ]
        })
        .collect();
    print_columns(io, &["NOTIFICATION", "SCHEDULE", "OWNER", "PROVIDER", "STATE", "ACTION", "REASON"], &rows);
}

pub(crate) fn print_retry(io: &mut Io, outcome: &RetryOutcome) {
    let (retry, recoveries) = match outcome {
        RetryOutcome::NothingToRetry { message, .. } => {
            say!(io.out, "{message}");
            return;
        }
        RetryOutcome::Retried { retry, recoveries } => (retry, recoveries),
    };
    say!(
        io.out,
        "{} under approval {} by {} at {}: {} delivered, {} failed",
        retry.retry_id,
        retry.approval_id,
        retry.approved_by,
        retry.at,
        retry.delivered_count,
        retry.failed_count
    );
    print_retried(io, retry);
    for recovery in recoveries {
        print_recovery(io, recovery);
    }
}

fn print_retried(io: &mut Io, retry: &Retry) {
    let rows: Vec<Vec<String>> = retry
        .notifications
        .iter()
        .map(|n| {
            let status = n.status_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into());
            vec![n.notification_id.clone(), n.schedule_id.clone(), n.owner.clone(), n.provider.clone(), n.outcome.clone(), n.attempts.to_string(), status]
        })
        .collect();
    print_columns(io, &["NOTIFICATION", "SCHEDULE", "OWNER", "PROVIDER", "OUTCOME", "ATTEMPTS", "STATUS"], &rows);
}

pub(crate) fn print_retries(io: &mut Io, list: &RetryList) {
    for retry in &list.retries {
        say!(
            io.out,
            "{} at {}: approval {} by {}, {} delivered, {} failed",
            retry.retry_id,
            retry.at,
            retry.approval_id,
            retry.approved_by,
            retry.delivered_count,
            retry.failed_count
        );
    }
    say!(io.out, "{} retr{}", list.count, if list.count == 1 { "y" } else { "ies" });
}

fn print_recovery(io: &mut Io, r: &Recovery) {
    say!(
        io.out,
        "{}: {} recovered at {} after failing since {} ({} s; {} notification{}{})",
        r.recovery_id,
        r.provider,
        r.recovered_at,
        r.first_failure_at,
        r.time_to_recovery_seconds,
        r.notifications.len(),
        if r.notifications.len() == 1 { "" } else { "s" },
        r.approval_id.as_ref().map(|a| format!("; approval {a}")).unwrap_or_default()
    );
}

pub(crate) fn print_recoveries(io: &mut Io, list: &RecoveryList) {
    for recovery in &list.recoveries {
        print_recovery(io, recovery);
    }
    say!(io.out, "{} recover{}", list.count, if list.count == 1 { "y" } else { "ies" });
}

pub(crate) fn print_trends(io: &mut Io, trend: &Trend) {
    let count = trend.suppressed_route_count;
    say!(io.out, "{count} suppressed route decision{}", if count == 1 { "" } else { "s" });
    for (title, counts) in [("category", &trend.by_category), ("owner", &trend.by_owner), ("provider", &trend.by_provider), ("schedule", &trend.by_schedule)] {
        let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        if !parts.is_empty() {
            say!(io.out, "  by {title}: {}", parts.join(", "));
        }
    }
    for r in &trend.latest_suppressed {
        say!(io.out, "  {}  {} on {}: {} ({})", r.created_at, r.owner, r.provider, r.category, text(&r.reason));
    }
}

pub(crate) fn print_simulation(io: &mut Io, sim: &Simulation) {
    say!(io.out, "simulation of {} from {} to {} (assuming a notification is due throughout)", sim.schedule_id, sim.from, sim.to);
    for route in &sim.routes {
        say!(io.out, "\n{} on {}: delivered {} min, suppressed {} min", route.owner, route.provider, route.delivered_minutes, route.suppressed_minutes);
        let rows: Vec<Vec<String>> =
            route.intervals.iter().map(|i| vec![i.start_at.clone(), i.end_at.clone(), i.action.clone(), i.category.clone(), text(&i.reason)]).collect();
        print_columns(io, &["FROM", "TO", "ACTION", "CATEGORY", "REASON"], &rows);
    }
}

pub(crate) fn print_delivery(io: &mut Io, result: &DeliveryResult) {
    say!(
        io.out,
        "plan {} for {}: {} delivered, {} failed, {} escalation{} sent, {} left open ({} failed earlier) ({} attempt{})",
        result.plan_id,
        result.schedule_id,
        result.delivered_count,
        result.failed_count,
        result.escalation_count,
        if result.escalation_count == 1 { "" } else { "s" },
        result.skipped_count,
        result.earlier_failed_count,
        result.attempt_count,
        if result.attempt_count == 1 { "" } else { "s" }
    );
    for recovery in &result.recoveries {
        print_recovery(io, recovery);
    }

    if result.deliveries.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = result
        .deliveries
        .iter()
        .map(|d| {
            let r = &d.record;
            vec![
                r.provider.clone(),
                r.outcome.as_str().to_string(),
                r.attempt.to_string(),
                r.status_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
                r.target.clone(),
                r.message.clone(),
            ]
        })
        .collect();
    print_columns(io, &["PROVIDER", "OUTCOME", "ATTEMPTS", "STATUS", "TARGET", "MESSAGE"], &rows);
}
