//! `cavra runtime ...`: the go-backend commands. Each subcommand's clap
//! arguments are converted here, at the edge, into the application's typed
//! request; `cavra-app` does the work and `output` prints the record.

use crate::output::{self, finish, finish_with};
use crate::{exit, Io};
use cavra_app::acks::AckRequest;
use cavra_app::deliver::{DeliverRequest, PluginIsolation, PluginSettings, SendSettings};
use cavra_app::escalation::EscalationRequest;
use cavra_app::evaluate::{EvaluateRequest, RuntimeFiles};
use cavra_app::history::RouteQuery;
use cavra_app::plan::PlanRequest;
use cavra_app::policy::Policies;
use cavra_app::readiness::{Evidence, ReadinessRequest, ReportName};
use cavra_app::records::{AlertLevel, ReadinessStatus};
use cavra_app::retry::{RetryOutcome, RetryRequest};
use cavra_app::simulate::SimulateRequest;
use cavra_app::store::StoreLocation;
use cavra_app::trends::TrendRequest;
use cavra_app::{AppError, PackSource};
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// A readiness report's help: what the six reports share, then examples of
/// that report alone (so `go-rollback-readiness -h` shows itself).
macro_rules! report_help {
    ($examples:literal) => {
        concat!(
            "Each path falls back to its environment variable. A report is requested when the mode is
`promoted` or its own document path is given.

Exit status: 0 when the report is ready, due_soon or not_requested; 3 when it needs attention;
2 on a usage or configuration error.

Examples:
",
            $examples
        )
    };
}

#[derive(Subcommand, Debug)]
pub(crate) enum RuntimeCommand {
    /// Rollback plan readiness: plan, approval, disable path and controls.
    #[command(after_help = report_help!(
"  cavra runtime go-rollback-readiness --mode promoted \\
      --rollback-plan-path examples/rollback-plan.json --at 2026-05-21T19:00:00Z
  CAVRA_GO_ROLLBACK_PLAN=examples/rollback-plan.json cavra runtime go-rollback-readiness --json"
    ))]
    GoRollbackReadiness(ReportArgs),
    /// Promotion readiness: parity evidence, deployment and approval.
    #[command(after_help = report_help!(
"  cavra runtime go-promotion-readiness --mode promoted \\
      --promotion-evidence-path examples/promotion-evidence.json --json"
    ))]
    GoPromotionReadiness(ReportArgs),
    /// Rollback rehearsal evidence: status, fallback, recovery target, references.
    #[command(after_help = report_help!(
"  cavra runtime go-rollback-rehearsal --mode promoted \\
      --rollback-plan-path examples/rollback-plan.json \\
      --rollback-rehearsal-path examples/rollback-rehearsal.json --json"
    ))]
    GoRollbackRehearsal(ReportArgs),
    /// Rollback drill history: the latest drill passed, is recent and met its target.
    #[command(after_help = report_help!(
"  cavra runtime go-rollback-drills --mode promoted \\
      --rollback-drill-history-path examples/rollback-drills.json --at 2026-05-21T19:00:00Z
  cavra runtime go-rollback-drills ... --rollback-drill-max-age-days 30 --json"
    ))]
    GoRollbackDrills(ReportArgs),
    /// Rollback drill schedule: active, on cadence, not stale, routed; `due_soon` when near.
    #[command(after_help = report_help!(
"  cavra runtime go-rollback-drill-schedule --mode promoted \\
      --rollback-drill-schedule-path examples/rollback-drill-schedule.json \\
      --rollback-drill-history-path examples/rollback-drills.json --at 2026-05-21T19:00:00Z"
    ))]
    GoRollbackDrillSchedule(ReportArgs),
    /// Production readiness: every go-backend report above, gated together.
    #[command(after_help = report_help!(
"  cavra runtime production-readiness --mode promoted \\
      --rollback-plan-path examples/rollback-plan.json \\
      --promotion-evidence-path examples/promotion-evidence.json \\
      --rollback-rehearsal-path examples/rollback-rehearsal.json \\
      --rollback-drill-history-path examples/rollback-drills.json \\
      --rollback-drill-schedule-path examples/rollback-drill-schedule.json --at 2026-05-21T19:00:00Z
  CAVRA_GO_BACKEND_MODE=promoted cavra runtime production-readiness --json"
    ))]
    ProductionReadiness(ReportArgs),
    /// Decide one agent action with the built-in action pack (and an external runtime when allowed).
    #[command(after_help = EVALUATE_HELP)]
    GoPilotEvaluate(EvaluateArgs),
    /// Plan rollback-drill notifications: each owner and provider, delivered or suppressed and why.
    #[command(after_help = PLAN_HELP)]
    GoRollbackDrillNotificationPlan(PlanArgs),
    /// Stored route decisions of past notification plans, newest first, filtered.
    #[command(after_help = ROUTES_HELP)]
    GoRollbackDrillRoutes(RoutesArgs),
    /// Acknowledge a delivered rollback-drill notification (append-only, public-safe text only).
    #[command(after_help = ACK_HELP)]
    GoRollbackDrillNotificationAck(AckArgs),
    /// Escalation plan: every open notification of every schedule, its state and what to do (exit 3 when critical).
    #[command(after_help = ESCALATION_HELP)]
    GoRollbackDrillEscalationPlan(EscalationArgs),
    /// Send failed notifications again under an approval (approval id and approver required).
    #[command(after_help = RETRY_HELP)]
    GoRollbackDrillDeliveryRetry(RetryArgs),
    /// The stored retry execution records, newest first.
    #[command(after_help = RETRIES_HELP)]
    GoRollbackDrillDeliveryRetries(ListStoredArgs),
    /// Connector recovery evidence: providers whose failed deliveries were followed by a success.
    #[command(after_help = RECOVERY_HELP)]
    GoRollbackDrillConnectorRecovery(RecoveryArgs),
    /// Suppressed route decisions counted by category, owner, provider and schedule.
    #[command(after_help = TRENDS_HELP)]
    GoRollbackDrillSuppressionTrends(TrendArgs),
    /// Simulate routing over a span: per owner and provider, when a due notification would be delivered or suppressed, and why.
    #[command(after_help = SIMULATE_HELP)]
    GoRollbackDrillRoutingSimulate(SimulateArgs),
    /// Build and store the plan, then deliver its `deliver` routes through their connectors (built in, or plugins).
    #[command(after_help = DELIVER_HELP)]
    GoRollbackDrillNotificationsDeliver(DeliverArgs),
}

const PLAN_HELP: &str = "The drill schedule report decides whether to notify (needs_attention or due_soon, or --force);
the routing pack (rules/routing.cavra) decides each owner and provider route: suppressed by a healthy
schedule, an active maintenance window or the owner's calendar, else delivered. The routing policy
may also sit inside the schedule document; --routing-policy wins key by key.

Examples:
  cavra runtime go-rollback-drill-notification-plan --mode promoted \\
      --rollback-drill-schedule-path examples/rollback-drill-schedule.json \\
      --rollback-drill-history-path examples/rollback-drills.json \\
      --routing-policy examples/routing-policy.json --at 2026-05-21T19:00:00Z
  cavra runtime go-rollback-drill-notification-plan ... --provider slack,teams --json
  cavra runtime go-rollback-drill-notification-plan ... --no-store      a dry run

Every plan is stored with its route decisions, append-only, in --store (env CAVRA_STORE: an
SQLite file, default .cavra/cavra.db, or a postgres:// URL); a plan already stored (same plan_id)
is not written again. When the store cannot be written the plan is not printed: the error names
the store and the exit status is 2. List stored routes with `cavra runtime go-rollback-drill-routes`.";

const ROUTES_HELP: &str = "Lists the route decisions stored by go-rollback-drill-notification-plan, newest first
(created_at, then route_id). --owner matches the route's owner or its escalation owner; the other
filters match exactly; --since and --until (RFC 3339) select since <= created_at < until. --limit
(1 to 1000, default 100) and --offset page through the result. --json prints {\"routes\": [...],
\"count\": N}, where count is the number of routes printed. A store that does not exist yet has no routes.

Examples:
  cavra runtime go-rollback-drill-routes --owner platform-lead --json
  cavra runtime go-rollback-drill-routes --action suppress --category maintenance_window \\
      --since 2026-05-01T00:00:00Z --until 2026-06-01T00:00:00Z
  cavra runtime go-rollback-drill-routes --provider slack --limit 20 --offset 20 \\
      --store /var/lib/cavra/cavra.db";

#[derive(Args, Debug, Clone)]
pub(crate) struct RoutesArgs {
    /// Routes of this owner or escalation owner.
    #[arg(long)]
    owner: Option<String>,
    /// deliver or suppress.
    #[arg(long)]
    action: Option<String>,
    /// deliver, healthy_schedule, maintenance_window or owner_calendar.
    #[arg(long)]
    category: Option<String>,
    /// A provider, e.g. slack.
    #[arg(long)]
    provider: Option<String>,
    /// A drill schedule id.
    #[arg(long)]
    schedule_id: Option<String>,
    /// Routes created at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Routes created before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// At most this many routes (1 to 1000).
    #[arg(long, default_value_t = cavra_app::store::DEFAULT_LIMIT)]
    limit: u32,
    /// Skip this many routes first.
    #[arg(long, default_value_t = 0)]
    offset: u64,
    /// The view as of this time (RFC 3339): routes decided after it are left out.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// The store: a SQLite file or a postgres:// URL (its credentials are never shown) [default: .cavra/cavra.db].
    #[arg(long, env = "CAVRA_STORE", hide_env_values = true, value_name = "FILE|URL")]
    store: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

const EVALUATE_HELP: &str = "The built-in decision comes from rules/actions/actions.cavra. An external runtime (--runtime-path:
a program that reads the request JSON on stdin and prints {\"decision\", \"rule_id\", \"severity\",
\"reason\"} on stdout) is compared in shadow mode, and selected only in enforce and promoted mode; in
promoted mode only when the promotion, rollback, rehearsal, drill history and drill schedule reports
all pass. A runtime that fails, times out or disagrees falls back to the built-in decision.
--policy-path (a file) and --package-dir (a folder) must exist; they are passed to the runtime in
its request as policy_path and package_dir and shown in the evaluation (null when not given).

Examples:
  cavra runtime go-pilot-evaluate execute_command 'rm -rf /' --json
  cavra runtime go-pilot-evaluate git_operation 'git push --force origin main' --mode enforce \\
      --runtime-path ./my-runtime --json
  cavra runtime go-pilot-evaluate write_file deploy/config.yaml --mode enforce \\
      --runtime-path /opt/cavra/go-runtime-release/bin/cavra-go-runtime \\
      --policy-path /etc/cavra/compiled-policy.json --package-dir /opt/cavra/go-runtime-release";

#[derive(Args, Debug, Clone)]
pub(crate) struct EvaluateArgs {
    /// read_file, write_file, execute_command, git_operation or mcp_tool_call.
    action_type: String,
    /// The file path, command line, git command or MCP tool name.
    target: String,
    /// An external runtime program (request JSON on stdin, decision JSON on stdout).
    #[arg(long, value_name = "PROGRAM")]
    runtime_path: Option<PathBuf>,
    /// How long the external runtime may take, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = cavra_app::evaluate::DEFAULT_RUNTIME_TIMEOUT.as_millis() as u64)]
    runtime_timeout_ms: u64,
    /// The compiled policy the external runtime enforces (an existing file; passed to it as `policy_path`).
    #[arg(long, value_name = "FILE")]
    policy_path: Option<PathBuf>,
    /// The external runtime's release package (an existing folder; passed to it as `package_dir`).
    #[arg(long, value_name = "DIR")]
    package_dir: Option<PathBuf>,
    #[command(flatten)]
    report: ReportArgs,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct ReportArgs {
    /// Backend mode: disabled, shadow, enforce or promoted.
    #[arg(long, env = "CAVRA_GO_BACKEND_MODE", value_name = "MODE")]
    mode: Option<String>,
    /// Rollback plan document.
    #[arg(long, env = "CAVRA_GO_ROLLBACK_PLAN", value_name = "FILE")]
    rollback_plan_path: Option<PathBuf>,
    /// Promotion evidence document.
    #[arg(long, env = "CAVRA_GO_PROMOTION_EVIDENCE", value_name = "FILE")]
    promotion_evidence_path: Option<PathBuf>,
    /// Rollback rehearsal evidence document.
    #[arg(long, env = "CAVRA_GO_ROLLBACK_REHEARSAL_EVIDENCE", value_name = "FILE")]
    rollback_rehearsal_path: Option<PathBuf>,
    /// Rollback drill history document.
    #[arg(long, env = "CAVRA_GO_ROLLBACK_DRILL_HISTORY", value_name = "FILE")]
    rollback_drill_history_path: Option<PathBuf>,
    /// Rollback drill schedule document.
    #[arg(long, env = "CAVRA_GO_ROLLBACK_DRILL_SCHEDULE", value_name = "FILE")]
    rollback_drill_schedule_path: Option<PathBuf>,
    /// Maximum age of the latest drill, in days.
    #[arg(long, env = "CAVRA_GO_ROLLBACK_DRILL_MAX_AGE_DAYS", value_name = "DAYS", default_value_t = 90.0)]
    rollback_drill_max_age_days: f64,
    /// A schedule is due soon within this many days of its next due time.
    #[arg(long, env = "CAVRA_GO_ROLLBACK_DRILL_DUE_SOON_DAYS", value_name = "DAYS", default_value_t = 14.0)]
    rollback_drill_due_soon_days: f64,
    #[command(flatten)]
    limits: LimitArgs,
    /// The clock (RFC 3339 with an offset); defaults to now.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Use the rule packs in this folder (same layout as `rules/`) instead of the bundled ones.
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
}

/// How much input a command accepts (README, "Limits").
#[derive(Args, Debug, Clone)]
pub(crate) struct LimitArgs {
    /// The largest input document read, in bytes (checked before parsing).
    #[arg(long, env = "CAVRA_MAX_DOCUMENT_BYTES", value_name = "BYTES", default_value_t = cavra_app::documents::DEFAULT_MAX_DOCUMENT_BYTES)]
    max_document_bytes: u64,
    /// The most route decisions one plan may have (checked before planning).
    #[arg(long, env = "CAVRA_MAX_ROUTES_PER_PLAN", value_name = "N", default_value_t = cavra_app::documents::DEFAULT_MAX_ROUTES_PER_PLAN)]
    max_routes_per_plan: usize,
}

impl LimitArgs {
    pub(crate) fn limits(&self) -> cavra_app::documents::Limits {
        cavra_app::documents::Limits { max_document_bytes: self.max_document_bytes, max_routes_per_plan: self.max_routes_per_plan }
    }
}

#[derive(Args, Debug, Clone)]
pub(crate) struct PlanArgs {
    /// Routing policy document (public-safe); its keys win over the same keys in the schedule.
    #[arg(long, value_name = "FILE")]
    routing_policy: Option<PathBuf>,
    /// `all`, or providers separated by commas (e.g. `slack,teams`).
    #[arg(long, value_name = "all|NAME[,NAME]", default_value = "all")]
    provider: String,
    /// Plan notifications even when the schedule is not due soon or stale.
    #[arg(long)]
    force: bool,
    /// The store that keeps every plan and its route decisions (append-only): a SQLite file or a postgres:// URL [default: .cavra/cavra.db].
    #[arg(long, env = "CAVRA_STORE", hide_env_values = true, value_name = "FILE|URL")]
    store: Option<PathBuf>,
    /// Do not store the plan: a dry run (wins over --store and CAVRA_STORE).
    #[arg(long)]
    no_store: bool,
    #[command(flatten)]
    report: ReportArgs,
}

const ACK_HELP: &str = "Records one acknowledgement of a delivered notification, append-only, in --store (env
CAVRA_STORE, default .cavra/cavra.db). The id is ack_ + 16 hex digits of SHA-256 over the record
(including its time). Free text (--acknowledged-by, --notes, --external-ref) must be public-safe:
no URL, hostname, IP address, e-mail address or credential; otherwise nothing is stored (exit 2).
It answers the notifications it names, resolved when it is made and listed in notification_ids:
with --notification-id exactly that one (ids are in the escalation plan); with --owner the open
notifications of that owner on the schedule and provider; with neither, every open notification of
the schedule and provider delivered at or before it. It counts only for notifications delivered at
or before it.

Examples:
  cavra runtime go-rollback-drill-notification-ack go_backend_python_fallback_monthly \\
      --provider teams --owner release-governance --acknowledged-by release-governance \\
      --at 2026-05-21T19:30:00Z
  cavra runtime go-rollback-drill-notification-ack SCHEDULE --provider teams \\
      --notification-id ntf_0123456789abcdef --acknowledged-by platform-lead
  cavra runtime go-rollback-drill-notification-ack SCHEDULE --provider slack \\
      --acknowledged-by platform-lead --acknowledgement-state resolved --notes \"drill booked\" --json";

const ESCALATION_HELP: &str = "Lists every open notification of every schedule as of --at (records made after it are
ignored), each decided by rules/escalation.cavra from what happened to it: suppressed,
pending_delivery, delivery_failed, outstanding, or breached (strictly more than its
acknowledgement_minutes since its first successful delivery). recommended_action is
deliver_notification, retry_failed_delivery, wait_for_acknowledgement,
escalate_missed_drill_notification or no_action. Closed, acknowledged, resolved, dismissed and
escalated notifications are not listed. --acknowledgement-minutes overrides the minutes frozen at
delivery; --routing-policy re-resolves each notification's minutes and escalation owner.
alert_level: critical when anything is breached or failed, warning when anything is outstanding,
pending or suppressed, else healthy. Nothing is written.

Exit status: 0, or 3 when alert_level is critical (for a cron or CI job to act on).

Examples:
  cavra runtime go-rollback-drill-escalation-plan --at 2026-05-21T19:45:00Z --json
  cavra runtime go-rollback-drill-escalation-plan --acknowledgement-minutes 15 --store /var/lib/cavra/cavra.db";

const RETRY_HELP: &str = "Sends the notifications in delivery_failed again (of --schedule-id and --provider when given),
through their connectors with the usual attempts and backoff, under an approval: --approval-id and
--approved-by are required (public-safe text, 3 to 128 characters). Writes an append-only retry
execution record (retry_id rtr_...), and a connector recovery record when a provider with failed
deliveries delivers again. Plain delivery never re-sends a failed notification.

Exit status: 0 when every retried notification was delivered, or when nothing was in
delivery_failed (nothing is sent or stored); 1 when one failed again (the record is stored with the
failures); 2 on a usage error (e.g. no approval id: nothing is sent).

Examples:
  cavra runtime go-rollback-drill-delivery-retry --approval-id apr_rollback_drill_retry \\
      --approved-by release-lead --provider webhook --json
  cavra runtime go-rollback-drill-delivery-retry --approval-id CHG-2291 --approved-by release-lead \\
      --schedule-id go_backend_python_fallback_monthly --at 2026-05-21T19:15:00Z";

const RETRIES_HELP: &str = "Lists the stored retry execution records (approval id, approver, time, notifications and
their outcomes), newest first; with --at, only those made at or before it.

Examples:
  cavra runtime go-rollback-drill-delivery-retries --json
  cavra runtime go-rollback-drill-delivery-retries --store /var/lib/cavra/cavra.db";

const RECOVERY_HELP: &str = "Lists the connector recovery records (metadata kind go-backend-rollback-drill-connector-recovery),
newest first: the provider, its first and last failure, the recovering attempt, the retry and its
approval when a retry recovered it, the notifications affected and the time to recovery. No
connector URL, token or configuration value is ever in them.

Examples:
  cavra runtime go-rollback-drill-connector-recovery --json
  cavra runtime go-rollback-drill-connector-recovery --provider webhook";

#[derive(Args, Debug, Clone)]
pub(crate) struct RetryArgs {
    /// The approval that allows the retry (required; any public-safe id, e.g. a change ticket).
    #[arg(long, value_name = "ID")]
    approval_id: Option<String>,
    /// Who approved it (required).
    #[arg(long, value_name = "NAME")]
    approved_by: Option<String>,
    /// Only this schedule's failed notifications.
    #[arg(long, value_name = "ID")]
    schedule_id: Option<String>,
    /// Only this provider's failed notifications.
    #[arg(long, value_name = "NAME")]
    provider: Option<String>,
    #[command(flatten)]
    plugins: PluginArgs,
    #[command(flatten)]
    attempts: AttemptArgs,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct ListStoredArgs {
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct RecoveryArgs {
    /// Only this provider's recoveries.
    #[arg(long, value_name = "NAME")]
    provider: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

/// Flags shared by these commands.
#[derive(Args, Debug, Clone)]
pub(crate) struct CommonArgs {
    /// The clock (RFC 3339 with an offset); defaults to now.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// The store: a SQLite file or a postgres:// URL (its credentials are never shown) [default: .cavra/cavra.db].
    #[arg(long, env = "CAVRA_STORE", hide_env_values = true, value_name = "FILE|URL")]
    store: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Use the rule packs in this folder (same layout as `rules/`) instead of the bundled ones.
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct AckArgs {
    /// The drill schedule whose notification is acknowledged.
    schedule_id: String,
    /// The provider the notification was delivered on, e.g. teams.
    #[arg(long)]
    provider: String,
    /// Who acknowledges (an owner or team name).
    #[arg(long, value_name = "WHO")]
    acknowledged_by: String,
    /// acknowledged, dismissed, escalated or resolved.
    #[arg(long, value_name = "STATE", default_value = "acknowledged")]
    acknowledgement_state: String,
    /// The plan acknowledged (optional).
    #[arg(long)]
    plan_id: Option<String>,
    /// An external reference, e.g. a ticket id (public-safe).
    #[arg(long)]
    external_ref: Option<String>,
    /// Notes (public-safe).
    #[arg(long)]
    notes: Option<String>,
    /// Exactly this notification (ntf_..., as listed by the escalation plan).
    #[arg(long, value_name = "ID")]
    notification_id: Option<String>,
    /// The open notifications of this owner on the schedule and provider.
    #[arg(long)]
    owner: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct EscalationArgs {
    /// Re-resolve each route's acknowledgement minutes and escalation owner from this policy.
    #[arg(long, value_name = "FILE")]
    routing_policy: Option<PathBuf>,
    /// Minutes to acknowledge, for every notification (overrides the minutes frozen at delivery).
    #[arg(long, value_name = "N")]
    acknowledgement_minutes: Option<f64>,
    #[command(flatten)]
    common: CommonArgs,
}

const TRENDS_HELP: &str = "Counts the stored suppressed route decisions by category, owner, provider and schedule, lists
the latest suppressed events, and stores the result as metadata (kind
go-backend-rollback-drill-routing-suppression-trend). --owner matches the owner or the escalation owner.

Examples:
  cavra runtime go-rollback-drill-suppression-trends
  cavra runtime go-rollback-drill-suppression-trends --owner release-governance --provider slack --json";

#[derive(Args, Debug, Clone)]
pub(crate) struct TrendArgs {
    /// Routes of this owner or escalation owner.
    #[arg(long)]
    owner: Option<String>,
    /// A provider, e.g. slack.
    #[arg(long)]
    provider: Option<String>,
    /// A drill schedule id.
    #[arg(long)]
    schedule_id: Option<String>,
    /// The clock (RFC 3339 with an offset) for `generated_at`; defaults to now.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// The store: a SQLite file or a postgres:// URL (its credentials are never shown) [default: .cavra/cavra.db].
    #[arg(long, env = "CAVRA_STORE", hide_env_values = true, value_name = "FILE|URL")]
    store: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

const SIMULATE_HELP: &str = "Assumes a notification is due throughout (the schedule's own status is not simulated) and
decides every owner and provider route of the schedule with the routing pack, at every instant
where a maintenance window or calendar absence opens or closes, recurring ones included. Adjacent
intervals with the same outcome are merged. Nothing is stored. The span is at most 366 days.

Examples:
  cavra runtime go-rollback-drill-routing-simulate \\
      --routing-policy examples/routing-policy.json \\
      --rollback-drill-schedule-path examples/rollback-drill-schedule.json \\
      --from 2026-05-21T00:00:00Z --to 2026-05-23T00:00:00Z
  cavra runtime go-rollback-drill-routing-simulate ... --provider slack --json";

#[derive(Args, Debug, Clone)]
pub(crate) struct SimulateArgs {
    /// Routing policy document (public-safe); its keys win over the same keys in the schedule.
    #[arg(long, value_name = "FILE")]
    routing_policy: Option<PathBuf>,
    /// Rollback drill schedule document (owners, providers, schedule id).
    #[arg(long, env = "CAVRA_GO_ROLLBACK_DRILL_SCHEDULE", value_name = "FILE")]
    rollback_drill_schedule_path: Option<PathBuf>,
    /// Start of the simulated span (RFC 3339, inclusive).
    #[arg(long, value_name = "TIME")]
    from: String,
    /// End of the simulated span (RFC 3339, exclusive).
    #[arg(long, value_name = "TIME")]
    to: String,
    /// `all`, or providers separated by commas.
    #[arg(long, value_name = "all|NAME[,NAME]", default_value = "all")]
    provider: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Use the rule packs in this folder instead of the bundled ones.
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
}

const DELIVER_HELP: &str = "Builds and stores the plan (as go-rollback-drill-notification-plan does), then sends the
schedule's notifications in pending_delivery (this plan's deliver routes, and earlier ones whose
suppression ended) through the connector serving each provider, in parallel across providers, retrying
retryable failures (HTTP 429/5xx, connection errors, timeouts) with exponential backoff and jitter.
Then it sends escalations of the schedule's breached notifications to their escalation owner, one per
provider of that owner's route (else the schedule's providers); windows and calendars apply to them.
Every attempt is stored with the run's --at (deliveries: provider, route, status code, attempt,
times, outcome, redacted target). A notification delivered before is never sent again, and a failed
one only by an approved retry (go-rollback-drill-delivery-retry); both are listed as skipped.
The idempotency key providers receive is the notification id (ntf_...).

Connectors: slack, teams, webhook, email and outbox are built in. Plugin files add more, from
--plugin-dir and CAVRA_PLUGIN_PATH (folders separated by ':'); without either, files named
*cavra_plugin_* next to the cavra binary. A built-in wins over a file claiming its provider unless
--plugin-override names that provider. Private settings come only from CAVRA_CONNECTOR_CONFIG (a JSON
file, {\"connectors\": {\"slack\": {\"url_env\": \"SLACK_WEBHOOK_URL\"}}}); a section's \"providers\": [...]
sends more providers to its connector. The outbox connector writes to .cavra/outbox.jsonl next to
the store unless configured. `cavra plugins list` shows what serves each provider.

Exit status: 0 when every attempt of this run delivered, 1 when one failed (failures left by
earlier runs are listed but do not change it), 2 on a usage or configuration error.

Examples:
  CAVRA_CONNECTOR_CONFIG=connectors.json cavra runtime go-rollback-drill-notifications-deliver \\
      --mode promoted --rollback-drill-schedule-path examples/rollback-drill-schedule.json \\
      --rollback-drill-history-path examples/rollback-drills.json \\
      --routing-policy examples/routing-policy.json --provider slack,teams
  cavra runtime go-rollback-drill-notifications-deliver ... --plugin-isolation process --json";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum IsolationMode {
    /// Built-in connectors run inside cavra; plugin libraries loaded from files run in a child process.
    Auto,
    /// Everything runs inside cavra (fastest; a panic is contained, an abort, crash or exit is not).
    InProcess,
    /// Each connector, built-ins too, runs in a child cavra process (an abort or crash fails only its deliveries).
    Process,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct PluginArgs {
    /// A folder of connector plugins (repeatable); CAVRA_PLUGIN_PATH adds more.
    #[arg(long = "plugin-dir", value_name = "DIR")]
    plugin_dirs: Vec<PathBuf>,
    /// Where connectors run; in `auto` and `process` a crashing plugin file cannot take cavra down.
    #[arg(long, value_enum, default_value_t = IsolationMode::Auto)]
    plugin_isolation: IsolationMode,
    /// Providers that a plugin file may take over from the built-in connector serving them
    /// (comma-separated or repeated); without it the built-in wins.
    #[arg(long = "plugin-override", value_name = "PROVIDER[,PROVIDER]", value_delimiter = ',')]
    plugin_overrides: Vec<String>,
    /// Not a flag: `cavra demo` sets its own connector configuration (else CAVRA_CONNECTOR_CONFIG).
    #[arg(skip)]
    pub(crate) connector_config: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct DeliverArgs {
    #[command(flatten)]
    plan: PlanArgs,
    #[command(flatten)]
    pub(crate) plugins: PluginArgs,
    #[command(flatten)]
    attempts: AttemptArgs,
    /// Minutes to acknowledge, for every notification, when deciding which are breached
    /// (overrides the minutes frozen at delivery).
    #[arg(long, value_name = "N")]
    acknowledgement_minutes: Option<f64>,
}

/// Attempts, timeout and backoff of a delivery.
#[derive(Args, Debug, Clone)]
pub(crate) struct AttemptArgs {
    /// Attempts per notification, the first included.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10))]
    max_attempts: u32,
    /// How long one attempt may take, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=300_000))]
    attempt_timeout_ms: u64,
    /// Delay before the first retry, in milliseconds (doubles per retry, with jitter).
    #[arg(long, value_name = "MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    backoff_ms: u64,
    /// How long a claim on a notification lasts without its heartbeat, in seconds
    /// (a run that died is taken over after it; at least 1).
    #[arg(long, env = "CAVRA_CLAIM_LEASE_SECS", value_name = "SECS", default_value_t = 60.0)]
    claim_lease_secs: f64,
}

/// `--claim-lease-secs` as a checked lease.
pub(crate) fn claim_lease(secs: f64) -> Result<Duration, AppError> {
    let lease = Duration::try_from_secs_f64(secs)
        .map_err(|_| AppError::field(cavra_app::Field::named("claim_lease_secs"), format!("expected a number of seconds, got {secs}")))?;
    cavra_app::claims::checked_lease(lease)
}

impl AttemptArgs {
    /// How the run sends, with the claim lease checked.
    fn send(&self, plugins: &PluginArgs) -> Result<SendSettings, AppError> {
        Ok(SendSettings {
            plugins: plugins.settings(),
            max_attempts: self.max_attempts,
            attempt_timeout: Duration::from_millis(self.attempt_timeout_ms),
            backoff: Duration::from_millis(self.backoff_ms),
            claim_lease: claim_lease(self.claim_lease_secs)?,
        })
    }
}

#[derive(Args, Debug, Clone)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    plugins: PluginArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl ReportArgs {
    /// The evidence documents and settings, as the application takes them.
    pub(crate) fn evidence(&self) -> Evidence {
        Evidence {
            mode: self.mode.clone(),
            at: self.at.clone(),
            rollback_plan: self.rollback_plan_path.clone(),
            promotion_evidence: self.promotion_evidence_path.clone(),
            rollback_rehearsal: self.rollback_rehearsal_path.clone(),
            rollback_drill_history: self.rollback_drill_history_path.clone(),
            rollback_drill_schedule: self.rollback_drill_schedule_path.clone(),
            max_age_days: self.rollback_drill_max_age_days,
            due_soon_days: self.rollback_drill_due_soon_days,
            limits: self.limits.limits(),
        }
    }

    pub(crate) fn packs(&self) -> PackSource {
        PackSource::from_folder(self.rules.clone())
    }

    pub(crate) fn rules(&self) -> Option<PathBuf> {
        self.rules.clone()
    }

    pub(crate) fn json(&self) -> bool {
        self.json
    }
}

impl PlanArgs {
    fn request(&self, generated_by: &str) -> PlanRequest {
        PlanRequest {
            evidence: self.report.evidence(),
            policies: Policies::cli(policy_file(&self.routing_policy)),
            provider: self.provider.clone(),
            force: self.force,
            generated_by: generated_by.to_string(),
        }
    }

    fn store(&self) -> StoreLocation {
        StoreLocation::or_default(self.store.as_deref())
    }
}

impl CommonArgs {
    fn store(&self) -> StoreLocation {
        StoreLocation::or_default(self.store.as_deref())
    }

    fn packs(&self) -> PackSource {
        PackSource::from_folder(self.rules.clone())
    }
}

impl From<IsolationMode> for PluginIsolation {
    fn from(mode: IsolationMode) -> PluginIsolation {
        match mode {
            IsolationMode::Auto => PluginIsolation::Auto,
            IsolationMode::InProcess => PluginIsolation::InProcess,
            IsolationMode::Process => PluginIsolation::Process,
        }
    }
}

impl PluginArgs {
    pub(crate) fn settings(&self) -> PluginSettings {
        PluginSettings {
            dirs: self.plugin_dirs.clone(),
            isolation: self.plugin_isolation.into(),
            overrides: self.plugin_overrides.clone(),
            connector_config: self.connector_config.clone(),
        }
    }
}

/// `--routing-policy FILE`; an empty value is "not given".
fn policy_file(path: &Option<PathBuf>) -> Option<PathBuf> {
    path.as_ref().filter(|p| !p.as_os_str().is_empty()).cloned()
}

/// Exit 3 for a report that needs attention, so CI jobs can gate on it.
fn report_code(status: &ReadinessStatus) -> i32 {
    if *status == ReadinessStatus::NeedsAttention {
        exit::NEEDS_ATTENTION
    } else {
        exit::OK
    }
}

pub(crate) fn run(io: &mut Io, command: RuntimeCommand) -> i32 {
    let (report, args) = match &command {
        RuntimeCommand::GoRollbackReadiness(a) => (ReportName::RollbackReadiness, a),
        RuntimeCommand::GoPromotionReadiness(a) => (ReportName::PromotionReadiness, a),
        RuntimeCommand::GoRollbackRehearsal(a) => (ReportName::RollbackRehearsal, a),
        RuntimeCommand::GoRollbackDrills(a) => (ReportName::RollbackDrills, a),
        RuntimeCommand::GoRollbackDrillSchedule(a) => (ReportName::RollbackDrillSchedule, a),
        RuntimeCommand::ProductionReadiness(a) => (ReportName::ProductionReadiness, a),
        RuntimeCommand::GoPilotEvaluate(a) => return evaluate(io, a),
        RuntimeCommand::GoRollbackDrillNotificationPlan(a) => return plan(io, a),
        RuntimeCommand::GoRollbackDrillRoutes(a) => return routes(io, a),
        RuntimeCommand::GoRollbackDrillNotificationAck(a) => return acknowledge(io, a),
        RuntimeCommand::GoRollbackDrillEscalationPlan(a) => return escalation(io, a),
        RuntimeCommand::GoRollbackDrillDeliveryRetry(a) => return retry(io, a),
        RuntimeCommand::GoRollbackDrillDeliveryRetries(a) => return retries(io, a),
        RuntimeCommand::GoRollbackDrillConnectorRecovery(a) => return recoveries(io, a),
        RuntimeCommand::GoRollbackDrillSuppressionTrends(a) => return trends(io, a),
        RuntimeCommand::GoRollbackDrillRoutingSimulate(a) => return simulate(io, a),
        RuntimeCommand::GoRollbackDrillNotificationsDeliver(a) => return deliver(io, a),
    };
    let request = ReadinessRequest { report, evidence: args.evidence() };
    let result = cavra_app::readiness::readiness(&args.packs(), &request);
    finish_with(io, args.json, result, output::print_report, |r| report_code(&r.status))
}

fn evaluate(io: &mut Io, args: &EvaluateArgs) -> i32 {
    let request = EvaluateRequest {
        action_type: args.action_type.clone(),
        target: args.target.clone(),
        runtime: args.runtime_path.clone(),
        runtime_timeout: Duration::from_millis(args.runtime_timeout_ms),
        files: RuntimeFiles { policy_path: args.policy_path.clone(), package_dir: args.package_dir.clone() },
        evidence: args.report.evidence(),
    };
    finish(io, args.report.json, cavra_app::evaluate::evaluate(&args.report.packs(), &request), output::print_evaluation)
}

fn plan(io: &mut Io, args: &PlanArgs) -> i32 {
    let store = args.store();
    let store: Option<&dyn cavra_app::store::StoreProvider> = if args.no_store { None } else { Some(&store) };
    let result = cavra_app::plan::plan_and_store(&args.report.packs(), &args.request("cli"), store);
    // Said in the text only: the JSON's `stored` is true either way (the plan is in the store).
    let note = match &result {
        Ok(made) if made.plan.stored == Some(true) && !made.written => Some("already stored: the same plan was made before, nothing new was written"),
        _ => None,
    };
    let code = finish(io, args.report.json, result.map(|made| made.plan), output::print_plan);
    if let (Some(note), false) = (note, args.report.json) {
        crate::authoring::say!(io.out, "{note}");
    }
    code
}

fn routes(io: &mut Io, args: &RoutesArgs) -> i32 {
    let query = RouteQuery {
        owner: args.owner.clone(),
        action: args.action.clone(),
        category: args.category.clone(),
        provider: args.provider.clone(),
        schedule_id: args.schedule_id.clone(),
        since: args.since.clone(),
        until: args.until.clone(),
        at: args.at.clone(),
        limit: u64::from(args.limit),
        offset: args.offset,
    };
    let store = StoreLocation::or_default(args.store.as_deref());
    finish(io, args.json, cavra_app::history::stored_routes(&store, &query), output::print_routes)
}

fn acknowledge(io: &mut Io, args: &AckArgs) -> i32 {
    let request = AckRequest {
        schedule_id: args.schedule_id.clone(),
        provider: args.provider.clone(),
        acknowledged_by: args.acknowledged_by.clone(),
        acknowledgement_state: Some(args.acknowledgement_state.clone()),
        plan_id: args.plan_id.clone(),
        external_ref: args.external_ref.clone(),
        notes: args.notes.clone(),
        notification_id: args.notification_id.clone(),
        owner: args.owner.clone(),
        at: args.common.at.clone(),
    };
    let result = cavra_app::acks::acknowledge(&args.common.packs(), &args.common.store(), &request);
    finish(io, args.common.json, result, output::print_ack)
}

fn escalation(io: &mut Io, args: &EscalationArgs) -> i32 {
    let request = EscalationRequest {
        policies: Policies::cli(policy_file(&args.routing_policy)),
        acknowledgement_minutes: args.acknowledgement_minutes,
        at: args.common.at.clone(),
    };
    let result = cavra_app::escalation::escalation_plan(&args.common.packs(), &args.common.store(), &request);
    let code = |plan: &cavra_app::records::EscalationPlan| if plan.alert_level == AlertLevel::Critical { exit::NEEDS_ATTENTION } else { exit::OK };
    finish_with(io, args.common.json, result, output::print_escalation, code)
}

fn retry(io: &mut Io, args: &RetryArgs) -> i32 {
    let request = RetryRequest {
        approval_id: args.approval_id.clone(),
        approved_by: args.approved_by.clone(),
        schedule_id: args.schedule_id.clone(),
        provider: args.provider.clone(),
        at: args.common.at.clone(),
        send: match args.attempts.send(&args.plugins) {
            Ok(send) => send,
            Err(e) => return crate::fail(io, &e),
        },
    };
    let mut warnings = Vec::new();
    let result = cavra_app::retry::retry(&args.common.packs(), &args.common.store(), &request, &mut |m: &str| warnings.push(m.to_string()));
    for warning in warnings {
        crate::authoring::say!(io.err, "warning: {warning}");
    }
    let code = |outcome: &RetryOutcome| match outcome {
        RetryOutcome::Retried { retry, .. } if retry.failed_count > 0 => exit::FAILED,
        _ => exit::OK,
    };
    finish_with(io, args.common.json, result, output::print_retry, code)
}

fn retries(io: &mut Io, args: &ListStoredArgs) -> i32 {
    let result = cavra_app::retry::list_retries(&args.common.store(), args.common.at.as_deref());
    finish(io, args.common.json, result, output::print_retries)
}

fn recoveries(io: &mut Io, args: &RecoveryArgs) -> i32 {
    let result = cavra_app::recovery::list_recoveries(&args.common.store(), args.provider.as_deref(), args.common.at.as_deref());
    finish(io, args.common.json, result, output::print_recoveries)
}

fn trends(io: &mut Io, args: &TrendArgs) -> i32 {
    let request =
        TrendRequest { owner: args.owner.clone(), provider: args.provider.clone(), schedule_id: args.schedule_id.clone(), at: args.at.clone(), keep: true };
    let store = StoreLocation::or_default(args.store.as_deref());
    finish(io, args.json, cavra_app::trends::trends(&store, &request), output::print_trends)
}

fn simulate(io: &mut Io, args: &SimulateArgs) -> i32 {
    let request = SimulateRequest {
        schedule: args.rollback_drill_schedule_path.clone(),
        policies: Policies::cli(policy_file(&args.routing_policy)),
        from: args.from.clone(),
        to: args.to.clone(),
        provider: args.provider.clone(),
        limits: args.limits.limits(),
    };
    let packs = PackSource::from_folder(args.rules.clone());
    finish(io, args.json, cavra_app::simulate::simulate(&packs, &request), output::print_simulation)
}

pub(crate) fn deliver(io: &mut Io, args: &DeliverArgs) -> i32 {
    if args.plan.no_store {
        let e = AppError::field(cavra_app::Field::named("no_store"), "deliveries are always stored; plan a dry run with go-rollback-drill-notification-plan");
        return crate::fail(io, &e);
    }
    let request = DeliverRequest {
        plan: args.plan.request("cli"),
        send: match args.attempts.send(&args.plugins) {
            Ok(send) => send,
            Err(e) => return crate::fail(io, &e),
        },
        acknowledgement_minutes: args.acknowledgement_minutes,
    };

    let mut warnings = Vec::new();
    let result = cavra_app::deliver::deliver(&args.plan.report.packs(), &args.plan.store(), &request, &mut |m: &str| warnings.push(m.to_string()))
        .map(|(result, _)| result);
    for warning in warnings {
        crate::authoring::say!(io.err, "warning: {warning}");
    }
    let code = |result: &cavra_app::records::DeliveryResult| if result.failed_count == 0 { exit::OK } else { exit::FAILED };
    finish_with(io, args.plan.report.json, result, output::print_delivery, code)
}

/// `cavra plugins list`.
pub(crate) fn list_plugins(io: &mut Io, args: &ListArgs) -> i32 {
    let settings = args.plugins.settings();
    let (report, config_problem) = cavra_app::deliver::plugin_report(&settings);
    if args.json {
        crate::authoring::say!(io.out, "{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        let _ = write!(io.out, "{report}");
    }
    // A configuration that cannot be read would fail every delivery: say so here.
    if let Some(problem) = config_problem {
        crate::authoring::say!(io.err, "error: {problem}");
        return exit::USAGE;
    }
    if report.conflicts.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    }
}
