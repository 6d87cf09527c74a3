//! `cavra runtime ...`: the go-backend readiness reports. The decisions live
//! in the readiness packs (`rules/readiness/`); this module only finds the
//! documents, converts them to the packs' declared types, binds the inputs,
//! runs the gate and prints the report.

use crate::authoring::say;
use crate::documents::{clock, read_json};
use crate::{bundled, exit, Io};
use cavra_engine::{BindError, Pack, Program, Report, Value};
use clap::{Args, Subcommand};
use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub(crate) enum RuntimeCommand {
    /// Rollback plan readiness: plan, approval, disable path and controls.
    #[command(after_help = REPORT_HELP)]
    GoRollbackReadiness(ReportArgs),
    /// Promotion readiness: parity evidence, deployment and approval.
    #[command(after_help = REPORT_HELP)]
    GoPromotionReadiness(ReportArgs),
    /// Rollback rehearsal evidence: status, fallback, recovery target, references.
    #[command(after_help = REPORT_HELP)]
    GoRollbackRehearsal(ReportArgs),
    /// Rollback drill history: the latest drill passed, is recent and met its target.
    #[command(after_help = REPORT_HELP)]
    GoRollbackDrills(ReportArgs),
    /// Rollback drill schedule: active, on cadence, not stale, routed; `due_soon` when near.
    #[command(after_help = REPORT_HELP)]
    GoRollbackDrillSchedule(ReportArgs),
    /// Production readiness: every go-backend report above, gated together.
    #[command(after_help = REPORT_HELP)]
    ProductionReadiness(ReportArgs),
    /// Decide one agent action with the built-in action pack (and an external runtime when allowed).
    #[command(after_help = EVALUATE_HELP)]
    GoPilotEvaluate(EvaluateArgs),
    /// Plan rollback-drill notifications: each owner and provider, delivered or suppressed and why.
    #[command(after_help = PLAN_HELP)]
    GoRollbackDrillNotificationPlan(crate::plan::PlanArgs),
    /// Stored route decisions of past notification plans, newest first, filtered.
    #[command(after_help = ROUTES_HELP)]
    GoRollbackDrillRoutes(RoutesArgs),
    /// Acknowledge a delivered rollback-drill notification (append-only, public-safe text only).
    #[command(after_help = crate::acks::ACK_HELP)]
    GoRollbackDrillNotificationAck(crate::acks::AckArgs),
    /// Escalation plan: delivered routes of the latest plans, outstanding or breached, and whom to escalate to.
    #[command(after_help = crate::acks::ESCALATION_HELP)]
    GoRollbackDrillEscalationPlan(crate::acks::EscalationArgs),
    /// Suppressed route decisions counted by category, owner, provider and schedule.
    #[command(after_help = crate::trends::TRENDS_HELP)]
    GoRollbackDrillSuppressionTrends(crate::trends::TrendArgs),
    /// Simulate routing over a span: per owner and provider, when a due notification would be delivered or suppressed, and why.
    #[command(after_help = crate::simulate::SIMULATE_HELP)]
    GoRollbackDrillRoutingSimulate(crate::simulate::SimulateArgs),
    /// Build and store the plan, then deliver its `deliver` routes through the connector plugins.
    #[command(after_help = crate::deliver::DELIVER_HELP)]
    GoRollbackDrillNotificationsDeliver(crate::deliver::DeliverArgs),
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

Every plan is stored with its route decisions, append-only, in --store (env CAVRA_STORE,
default .cavra/cavra.db, an SQLite file); a plan already stored (same plan_id) is not written
again. When the store cannot be written the plan is not printed: the error names the store and
the exit status is 2. List stored routes with `cavra runtime go-rollback-drill-routes`.";

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
    #[arg(long, default_value_t = crate::store::DEFAULT_LIMIT)]
    limit: u32,
    /// Skip this many routes first.
    #[arg(long, default_value_t = 0)]
    offset: u64,
    /// The store [default: .cavra/cavra.db].
    #[arg(long, env = "CAVRA_STORE", value_name = "FILE")]
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

Examples:
  cavra runtime go-pilot-evaluate execute_command 'rm -rf /' --json
  cavra runtime go-pilot-evaluate git_operation 'git push --force origin main' --mode enforce \\
      --runtime-path ./my-runtime --json";

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
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_RUNTIME_TIMEOUT_MS)]
    runtime_timeout_ms: u64,
    #[command(flatten)]
    report: ReportArgs,
}

const DEFAULT_RUNTIME_TIMEOUT_MS: u64 = 5000;

impl EvaluateArgs {
    pub(crate) fn new(action_type: String, target: String, runtime_path: Option<PathBuf>, report: ReportArgs) -> EvaluateArgs {
        EvaluateArgs { action_type, target, runtime_path, runtime_timeout_ms: DEFAULT_RUNTIME_TIMEOUT_MS, report }
    }
}

const REPORT_HELP: &str = "Each path falls back to its environment variable. A report is requested when the mode is
`promoted` or its own document path is given.

Exit status: 0 when the report is ready, due_soon or not_requested; 3 when it needs attention;
2 on a usage or configuration error.

Examples:
  cavra runtime go-rollback-rehearsal --mode promoted \\
      --rollback-plan-path examples/rollback-plan.json \\
      --rollback-rehearsal-path examples/rollback-rehearsal.json --json
  CAVRA_GO_BACKEND_MODE=promoted cavra runtime production-readiness --at 2026-05-21T19:00:00Z";

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
    /// The clock (RFC 3339 with an offset); defaults to now.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Use the rule packs in this folder (same layout as `rules/`) instead of the bundled ones.
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
    /// Packs compiled ahead of time (the API's); when set, `--rules` is not read again.
    #[arg(skip)]
    packs: Option<std::sync::Arc<crate::packs::CompiledPacks>>,
}

pub(crate) const MODES: &[&str] = &["disabled", "shadow", "enforce", "promoted"];

/// One readiness report: its pack, output schema and documents.
struct ReportKind {
    pack: &'static str,
    schema_version: &'static str,
    /// (pack input name, which path), the first one making the report explicit.
    documents: &'static [(&'static str, Doc)],
}

#[derive(Clone, Copy)]
enum Doc {
    Plan,
    Promotion,
    Rehearsal,
    History,
    Schedule,
}

const ROLLBACK: ReportKind =
    ReportKind { pack: "readiness/rollback.cavra", schema_version: "cavra.go-backend-pilot.rollback-readiness.v1", documents: &[("plan", Doc::Plan)] };
const PROMOTION: ReportKind = ReportKind {
    pack: "readiness/promotion.cavra",
    schema_version: "cavra.go-backend-pilot.promotion-readiness.v1",
    documents: &[("evidence", Doc::Promotion)],
};
const REHEARSAL: ReportKind = ReportKind {
    pack: "readiness/rehearsal.cavra",
    schema_version: "cavra.go-backend-pilot.rollback-rehearsal.v1",
    documents: &[("rehearsal", Doc::Rehearsal), ("plan", Doc::Plan)],
};
const DRILLS: ReportKind = ReportKind {
    pack: "readiness/drill_history.cavra",
    schema_version: "cavra.go-backend-pilot.rollback-drill-history.v1",
    documents: &[("history", Doc::History)],
};
const SCHEDULE: ReportKind = ReportKind {
    pack: "readiness/drill_schedule.cavra",
    schema_version: "cavra.go-backend-pilot.rollback-drill-schedule.v1",
    documents: &[("schedule", Doc::Schedule), ("history", Doc::History)],
};
const PRODUCTION_PACK: &str = "readiness/production.cavra";
const PRODUCTION_SCHEMA: &str = "cavra.deployment.production_readiness.v1";

/// A failure that is the operator's to fix before any report can run.
pub(crate) struct UsageError(pub String);

impl ReportArgs {
    /// Arguments that name only the rule folder, for commands that take no
    /// readiness documents but load packs.
    pub(crate) fn rules_only(rules: Option<PathBuf>) -> ReportArgs {
        ReportArgs {
            mode: None,
            rollback_plan_path: None,
            promotion_evidence_path: None,
            rollback_rehearsal_path: None,
            rollback_drill_history_path: None,
            rollback_drill_schedule_path: None,
            rollback_drill_max_age_days: 90.0,
            rollback_drill_due_soon_days: 14.0,
            at: None,
            json: false,
            rules,
            packs: None,
        }
    }

    pub(crate) fn with_packs(mut self, packs: Option<std::sync::Arc<crate::packs::CompiledPacks>>) -> ReportArgs {
        self.packs = packs;
        self
    }

    /// These arguments with the compiled packs, clock and mode of one API request.
    pub(crate) fn for_request(&self, packs: std::sync::Arc<crate::packs::CompiledPacks>, at: Option<String>, mode: Option<String>) -> ReportArgs {
        let mut args = self.clone();
        args.packs = Some(packs);
        args.at = at.or(args.at);
        args.mode = mode.or(args.mode);
        args
    }

    pub(crate) fn packs(&self) -> Option<std::sync::Arc<crate::packs::CompiledPacks>> {
        self.packs.clone()
    }

    pub(crate) fn rules(&self) -> Option<&Path> {
        self.rules.as_deref()
    }

    fn path(&self, doc: Doc) -> Option<&Path> {
        let path = match doc {
            Doc::Plan => &self.rollback_plan_path,
            Doc::Promotion => &self.promotion_evidence_path,
            Doc::Rehearsal => &self.rollback_rehearsal_path,
            Doc::History => &self.rollback_drill_history_path,
            Doc::Schedule => &self.rollback_drill_schedule_path,
        };
        // An empty environment variable means "not set".
        path.as_deref().filter(|p| !p.as_os_str().is_empty())
    }

    pub(crate) fn json(&self) -> bool {
        self.json
    }

    pub(crate) fn schedule_path(&self) -> Option<&Path> {
        self.path(Doc::Schedule)
    }

    fn mode(&self) -> Result<String, UsageError> {
        let raw = self.mode.as_deref().unwrap_or("disabled");
        let mode = raw.trim().to_lowercase();
        if mode.is_empty() {
            return Ok("disabled".into());
        }
        if MODES.contains(&mode.as_str()) {
            Ok(mode)
        } else {
            Err(UsageError(format!("--mode / CAVRA_GO_BACKEND_MODE: expected one of {}, got {raw:?}", MODES.join(", "))))
        }
    }
}

pub(crate) fn run(io: &mut Io, command: RuntimeCommand) -> i32 {
    let (kind, args) = match &command {
        RuntimeCommand::GoRollbackReadiness(a) => (Some(&ROLLBACK), a),
        RuntimeCommand::GoPromotionReadiness(a) => (Some(&PROMOTION), a),
        RuntimeCommand::GoRollbackRehearsal(a) => (Some(&REHEARSAL), a),
        RuntimeCommand::GoRollbackDrills(a) => (Some(&DRILLS), a),
        RuntimeCommand::GoRollbackDrillSchedule(a) => (Some(&SCHEDULE), a),
        RuntimeCommand::ProductionReadiness(a) => (None, a),
        RuntimeCommand::GoPilotEvaluate(a) => return run_evaluate(io, a),
        RuntimeCommand::GoRollbackDrillNotificationPlan(a) => return run_plan(io, a),
        RuntimeCommand::GoRollbackDrillRoutes(a) => return run_routes(io, a),
        RuntimeCommand::GoRollbackDrillNotificationAck(a) => return crate::acks::run_ack(io, a),
        RuntimeCommand::GoRollbackDrillEscalationPlan(a) => return crate::acks::run_escalation(io, a),
        RuntimeCommand::GoRollbackDrillSuppressionTrends(a) => return crate::trends::run(io, a),
        RuntimeCommand::GoRollbackDrillRoutingSimulate(a) => return crate::simulate::run(io, a),
        RuntimeCommand::GoRollbackDrillNotificationsDeliver(a) => return crate::deliver::run(io, a),
    };
    let result = match kind {
        Some(kind) => single_report(args, kind),
        None => production_report(args),
    };
    let code = |report: &Json| if report["status"] == "needs_attention" { exit::NEEDS_ATTENTION } else { exit::OK };
    finish_with(io, args.json, result, print_table, code)
}

/// Loads a rule pack from `--rules DIR` or the bundled `rules/`.
pub(crate) fn load_pack(args: &ReportArgs, relative: &str) -> Result<Pack, UsageError> {
    if let Some(packs) = &args.packs {
        return packs.file(relative).cloned().ok_or_else(|| UsageError(format!("{relative}: no such rule pack in the loaded rules")));
    }
    let (name, source) = match &args.rules {
        Some(dir) => {
            let path = dir.join(relative);
            let text = std::fs::read_to_string(&path).map_err(|e| UsageError(format!("{}: cannot read the rule pack: {e}", path.display())))?;
            (path.display().to_string(), text)
        }
        None => {
            let key = format!("rules/{relative}");
            let text = bundled::get(&key).ok_or_else(|| UsageError(format!("{key}: not bundled in this build")))?;
            (key, text.to_string())
        }
    };
    cavra_engine::compile(&name, &source).map_err(|d| UsageError(format!("the rule pack does not check:\n{}", d.render(false))))
}

pub(crate) struct Session {
    pub now: String,
    pub mode: String,
}

/// The drill schedule report, for the notification plan.
pub(crate) fn schedule_report(args: &ReportArgs) -> Result<(Session, Json), UsageError> {
    let session = session(args)?;
    let report = run_report(args, &SCHEDULE, &session)?;
    Ok((session, report))
}

fn run_plan(io: &mut Io, args: &crate::plan::PlanArgs) -> i32 {
    finish(io, args.report.json, plan_and_store(args, "cli"), crate::plan::print_plan)
}

/// Builds the plan and stores it (unless `--no-store`). A plan is only
/// returned once it is stored (or was stored before).
pub(crate) fn plan_and_store(args: &crate::plan::PlanArgs, generated_by: &str) -> Result<Json, UsageError> {
    let (plan, _) = crate::plan::build_plan(args, generated_by)?;
    if !args.no_store {
        use crate::store::Store;
        let path = crate::store::store_path(args.store.as_deref());
        crate::store::SqliteStore::open(&path).and_then(|store| store.save_plan(&plan)).map_err(|e| UsageError(e.to_string()))?;
    }
    Ok(plan)
}

/// The readiness report an API path names (DOMAIN §3): `rollback-readiness`,
/// `promotion-readiness`, `rollback-rehearsal`, `rollback-drills`,
/// `rollback-drill-schedule` or `production-readiness`.
pub(crate) fn readiness_report(args: &ReportArgs, name: &str) -> Option<Result<Json, UsageError>> {
    let kind = match name {
        "rollback-readiness" => &ROLLBACK,
        "promotion-readiness" => &PROMOTION,
        "rollback-rehearsal" => &REHEARSAL,
        "rollback-drills" => &DRILLS,
        "rollback-drill-schedule" => &SCHEDULE,
        "production-readiness" => return Some(production_report(args)),
        _ => return None,
    };
    Some(single_report(args, kind))
}

/// Stored route decisions, newest first: `{"routes": [...], "count": N}`.
/// A store that does not exist yet has no routes (reading creates nothing).
pub(crate) fn stored_routes(store: Option<&Path>, filter: &crate::store::RouteFilter) -> Result<Json, UsageError> {
    use crate::store::{SqliteStore, Store};
    filter.validate().map_err(UsageError)?;
    let path = crate::store::store_path(store);
    let routes =
        if path.exists() { SqliteStore::open(&path).and_then(|store| store.routes(filter)).map_err(|e| UsageError(e.to_string()))? } else { Vec::new() };
    Ok(json!({"routes": routes, "count": routes.len()}))
}

fn run_routes(io: &mut Io, args: &RoutesArgs) -> i32 {
    use crate::store::RouteFilter;
    let filter = RouteFilter {
        owner: args.owner.clone(),
        action: args.action.clone(),
        category: args.category.clone(),
        provider: args.provider.clone(),
        schedule_id: args.schedule_id.clone(),
        since: args.since.clone(),
        until: args.until.clone(),
        limit: args.limit,
        offset: args.offset,
    };
    finish(io, args.json, stored_routes(args.store.as_deref(), &filter), print_routes)
}

fn print_routes(io: &mut Io, doc: &Json) {
    let routes = doc["routes"].as_array().map(Vec::as_slice).unwrap_or_default();
    const COLUMNS: [(&str, &str); 8] = [
        ("CREATED_AT", "created_at"),
        ("SCHEDULE", "schedule_id"),
        ("OWNER", "owner"),
        ("ESCALATION", "escalation_owner"),
        ("PROVIDER", "provider"),
        ("ACTION", "action"),
        ("CATEGORY", "category"),
        ("REASON", "reason"),
    ];
    print_columns(io, &COLUMNS, routes);
    say!(io.out, "{} route{}", routes.len(), if routes.len() == 1 { "" } else { "s" });
}

/// An aligned text table: a header line, then one line per document, each
/// column the document's text field (`(HEADER, field)`).
pub(crate) fn print_columns(io: &mut Io, columns: &[(&str, &str)], docs: &[Json]) {
    let rows: Vec<Vec<String>> = docs.iter().map(|r| columns.iter().map(|(_, k)| r[*k].as_str().unwrap_or_default().to_string()).collect()).collect();
    let headers: Vec<String> = columns.iter().map(|(h, _)| h.to_string()).collect();
    let widths: Vec<usize> = (0..columns.len()).map(|i| rows.iter().map(|r| r[i].len()).chain([headers[i].len()]).max().unwrap_or(0)).collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:w$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    say!(io.out, "{}", line(&headers));
    for row in &rows {
        say!(io.out, "{}", line(row));
    }
}

fn session(args: &ReportArgs) -> Result<Session, UsageError> {
    Ok(Session { now: clock(args.at.as_deref()).map_err(UsageError)?, mode: args.mode()? })
}

fn single_report(args: &ReportArgs, kind: &ReportKind) -> Result<Json, UsageError> {
    let session = session(args)?;
    run_report(args, kind, &session)
}

/// Runs one report's gate and shapes its JSON.
fn run_report(args: &ReportArgs, kind: &ReportKind, session: &Session) -> Result<Json, UsageError> {
    let pack = load_pack(args, kind.pack)?;
    let gate = pack.name().to_string();
    let program = pack.bind(&Default::default()).map_err(|e| UsageError(format!("{}: {e}", kind.pack)))?;
    let mut inputs = program.inputs();
    let set = |inputs: &mut cavra_engine::Inputs, name: &str, value: Value| -> Result<(), UsageError> {
        let slot = program.input_slot(name).ok_or_else(|| UsageError(format!("{}: the pack has no input `{name}`", kind.pack)))?;
        inputs.set(slot, value);
        Ok(())
    };
    set(&mut inputs, "now", time_value(&session.now))?;
    set(&mut inputs, "mode", Value::text(&session.mode))?;
    let explicit = kind.documents.first().is_some_and(|(_, doc)| args.path(*doc).is_some());
    set(&mut inputs, "explicit", Value::Bool(explicit))?;
    let screen = crate::safety::Screen::load(args)?;
    for (name, doc) in kind.documents {
        let loaded = load_document(&pack, name, args.path(*doc), &screen);
        set(&mut inputs, name, loaded.value)?;
        set(&mut inputs, &format!("{name}_path"), loaded.path.map(|p| Value::text(&p)).unwrap_or_default())?;
        set(&mut inputs, &format!("{name}_error"), loaded.error.map(|e| Value::text(&e)).unwrap_or_default())?;
    }
    for (name, value) in [("max_age_days", args.rollback_drill_max_age_days), ("due_soon_days", args.rollback_drill_due_soon_days)] {
        if program.input_slot(name).is_some() {
            set(&mut inputs, name, Value::Number(value))?;
        }
    }
    let report = program.readiness(&gate, &inputs).map_err(|e| UsageError(program.render_error(&e)))?;
    Ok(report_json(kind.schema_version, session, &report))
}

fn time_value(rfc3339: &str) -> Value {
    cavra_engine::time::parse_time(rfc3339).map(Value::Time).unwrap_or_default()
}

struct Loaded {
    value: Value,
    path: Option<String>,
    error: Option<String>,
}

/// Reads and converts one document. Problems are not errors here: the pack
/// reports them as a failing check (`X_error`), naming the file and JSON path.
fn load_document(pack: &Pack, input: &str, path: Option<&Path>, screen: &crate::safety::Screen) -> Loaded {
    let Some(path) = path else { return Loaded { value: Value::Null, path: None, error: None } };
    let shown = path.display().to_string();
    let error = |e: String| Loaded { value: Value::Null, path: Some(shown.clone()), error: Some(e) };
    let json = match read_json(path) {
        Ok(j) => j,
        Err(e) => return error(e),
    };
    // Public documents only: anything that looks private refuses the document.
    match screen.refusals(&json) {
        Ok(reasons) if reasons.is_empty() => {}
        Ok(reasons) => return error(format!("{shown} is not public-safe, so it was not used: {}", reasons.join("; "))),
        Err(UsageError(e)) => return error(e),
    }
    match pack.input_value(input, &json) {
        Ok(value) => Loaded { value, path: Some(shown.clone()), error: None },
        Err(BindError::Input { source, .. }) => error(format!("{shown}: {}: {}", source.path, source.message)),
        Err(e) => error(format!("{shown}: {e}")),
    }
}

fn report_json(schema_version: &str, session: &Session, report: &Report) -> Json {
    let failed: Vec<&str> = report.checks.iter().filter(|c| !c.passed).map(|c| c.id.as_str()).collect();
    json!({
        "schema_version": schema_version,
        "mode": session.mode,
        "status": report.status,
        "checks": report.checks.iter().map(|c| c.to_json()).collect::<Vec<_>>(),
        "summary": {
            "generated_at": session.now,
            "requested": report.status != "not_requested",
            "check_count": report.checks.len(),
            "passed_count": report.checks.len() - failed.len(),
            "failed_count": failed.len(),
            "failed_checks": failed,
        },
    })
}

/// The production report: every go-backend report, then the production gate
/// over their statuses.
fn production_report(args: &ReportArgs) -> Result<Json, UsageError> {
    let session = session(args)?;
    let sections = [
        ("go_backend_promotion", "promotion_status", &PROMOTION),
        ("go_backend_rollback", "rollback_status", &ROLLBACK),
        ("go_backend_rollback_rehearsal", "rehearsal_status", &REHEARSAL),
        ("go_backend_rollback_drill_history", "drill_history_status", &DRILLS),
        ("go_backend_rollback_drill_schedule", "drill_schedule_status", &SCHEDULE),
    ];
    let pack = load_pack(args, PRODUCTION_PACK)?;
    let program: Program = pack.bind(&Default::default()).map_err(|e| UsageError(format!("{PRODUCTION_PACK}: {e}")))?;
    let mut inputs = program.inputs();
    for (name, value) in [("now", time_value(&session.now)), ("mode", Value::text(&session.mode)), ("explicit", Value::Bool(false))] {
        if let Some(slot) = program.input_slot(name) {
            inputs.set(slot, value);
        }
    }
    let mut out = serde_json::Map::new();
    for (section, input, kind) in sections {
        let report = run_report(args, kind, &session)?;
        let slot = program.input_slot(input).ok_or_else(|| UsageError(format!("{PRODUCTION_PACK}: the pack has no input `{input}`")))?;
        inputs.set(slot, Value::text(report["status"].as_str().unwrap_or_default()));
        out.insert(section.to_string(), report);
    }
    let gate = pack.name().to_string();
    let report = program.readiness(&gate, &inputs).map_err(|e| UsageError(program.render_error(&e)))?;
    let Json::Object(mut doc) = report_json(PRODUCTION_SCHEMA, &session, &report) else { unreachable!("an object") };
    doc.extend(out);
    Ok(Json::Object(doc))
}

fn print_table(io: &mut Io, report: &Json) {
    say!(
        io.out,
        "{}: {} (mode {})",
        report["schema_version"].as_str().unwrap_or_default(),
        report["status"].as_str().unwrap_or_default(),
        report["mode"].as_str().unwrap_or_default()
    );
    for check in report["checks"].as_array().into_iter().flatten() {
        let mark = if check["status"] == "pass" { "pass" } else { "FAIL" };
        say!(io.out, "  [{mark}] {}: {}", check["id"].as_str().unwrap_or_default(), check["message"].as_str().unwrap_or_default());
    }
}

// ---- go-pilot-evaluate -----------------------------------------------------------

const ACTIONS_PACK: &str = "actions/actions.cavra";
const EVALUATION_SCHEMA: &str = "cavra.go-backend-pilot.evaluation.v1";
const DECISIONS: &[&str] = &["allow", "deny", "requires_approval"];

/// Prints a command's document as JSON or as its table, or its usage error.
pub(crate) fn finish(io: &mut Io, json_out: bool, result: Result<Json, UsageError>, table: fn(&mut Io, &Json)) -> i32 {
    finish_with(io, json_out, result, table, |_| exit::OK)
}

/// As [`finish`], with the exit status of a success decided by `code`.
pub(crate) fn finish_with(io: &mut Io, json_out: bool, result: Result<Json, UsageError>, table: fn(&mut Io, &Json), code: impl Fn(&Json) -> i32) -> i32 {
    match result {
        Ok(doc) => {
            if json_out {
                say!(io.out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else {
                table(io, &doc);
            }
            code(&doc)
        }
        Err(UsageError(message)) => {
            say!(io.err, "error: {message}");
            exit::USAGE
        }
    }
}

fn run_evaluate(io: &mut Io, args: &EvaluateArgs) -> i32 {
    finish(io, args.report.json, evaluate(args), print_evaluation)
}

pub(crate) fn evaluate(args: &EvaluateArgs) -> Result<Json, UsageError> {
    let report_args = &args.report;
    let session = session(report_args)?;
    let builtin = builtin_decision(report_args, &args.action_type, &args.target)?;
    let mut doc = serde_json::Map::new();
    doc.insert("schema_version".into(), EVALUATION_SCHEMA.into());
    doc.insert("action_type".into(), args.action_type.clone().into());
    doc.insert("target".into(), args.target.clone().into());
    doc.insert("backend_mode".into(), session.mode.clone().into());

    // In promoted mode the external runtime needs every gate to pass.
    let mut gates = serde_json::Map::new();
    let mut failing_gate = None;
    if session.mode == "promoted" {
        for (section, kind, accepted) in [
            ("go_backend_promotion", &PROMOTION, &["ready"][..]),
            ("go_backend_rollback", &ROLLBACK, &["ready"][..]),
            ("go_backend_rollback_rehearsal", &REHEARSAL, &["ready"][..]),
            ("go_backend_rollback_drill_history", &DRILLS, &["ready"][..]),
            ("go_backend_rollback_drill_schedule", &SCHEDULE, &["ready", "due_soon"][..]),
        ] {
            let report = run_report(report_args, kind, &session)?;
            let status = report["status"].as_str().unwrap_or_default().to_string();
            if failing_gate.is_none() && !accepted.contains(&status.as_str()) {
                failing_gate = Some(format!("the {section} gate is {status}"));
            }
            gates.insert(section.to_string(), report);
        }
    }

    let external_allowed = matches!(session.mode.as_str(), "enforce" | "promoted");
    let consult = args.runtime_path.is_some() && session.mode != "disabled" && failing_gate.is_none();
    let external = match (&args.runtime_path, consult) {
        (Some(path), true) => {
            let request = json!({
                "action_type": args.action_type, "target": args.target, "mode": session.mode, "at": session.now,
            });
            Some(run_external(path, &request, std::time::Duration::from_millis(args.runtime_timeout_ms)))
        }
        _ => None,
    };
    let parity_match = match &external {
        Some(Ok(decision)) => Json::Bool(decision["decision"] == builtin["decision"]),
        _ => Json::Null,
    };
    let (selected, fallback_reason) = match (&args.runtime_path, &external) {
        (None, _) => ("builtin", None),
        (Some(_), _) if !external_allowed => ("builtin", None),
        (Some(_), None) => ("builtin", failing_gate.clone()),
        (Some(_), Some(Err(reason))) => ("builtin", Some(reason.clone())),
        (Some(_), Some(Ok(decision))) if decision["decision"] != builtin["decision"] => {
            ("builtin", Some(format!("the external runtime decided {} but the built-in decision is {}", decision["decision"], builtin["decision"])))
        }
        (Some(_), Some(Ok(_))) => ("external", None),
    };
    let effective = match (&external, selected) {
        (Some(Ok(decision)), "external") => decision.clone(),
        _ => builtin.clone(),
    };
    doc.insert("selected_backend".into(), selected.into());
    doc.insert("fallback_used".into(), fallback_reason.is_some().into());
    doc.insert("fallback_reason".into(), fallback_reason.map(Json::String).unwrap_or(Json::Null));
    doc.insert("parity_match".into(), parity_match);
    doc.insert("builtin_decision".into(), builtin);
    doc.insert("external_decision".into(), external.and_then(Result::ok).unwrap_or(Json::Null));
    doc.insert("effective_decision".into(), effective);
    doc.insert("generated_at".into(), session.now.into());
    doc.extend(gates);
    Ok(Json::Object(doc))
}

/// The action pack's decision as `{decision, rule_id, severity, reason}`.
fn builtin_decision(args: &ReportArgs, action_type: &str, target: &str) -> Result<Json, UsageError> {
    let pack = load_pack(args, ACTIONS_PACK)?;
    let program = pack.bind(&Default::default()).map_err(|e| UsageError(format!("{ACTIONS_PACK}: {e}")))?;
    let mut inputs = program.inputs();
    for (name, value) in [("action_type", action_type), ("target", target)] {
        let slot = program.input_slot(name).ok_or_else(|| UsageError(format!("{ACTIONS_PACK}: the pack has no input `{name}`")))?;
        inputs.set(slot, Value::text(value));
    }
    let outcome = program.decide("action", &inputs).map_err(|e| UsageError(program.render_error(&e)))?;
    let severity = outcome.field("severity").map(Value::to_json).unwrap_or(Json::Null);
    Ok(json!({
        "decision": outcome.action,
        "rule_id": outcome.category,
        "severity": severity,
        "reason": outcome.reason().map(Value::to_json).unwrap_or(Json::Null),
    }))
}

/// Runs the external runtime: the request on stdin, one decision JSON on
/// stdout, within `timeout`. Every problem is a reason to fall back.
fn run_external(program: &Path, request: &Json, timeout: std::time::Duration) -> Result<Json, String> {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("the external runtime could not be started: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A runtime that exits without reading is judged by its answer below.
        let _ = stdin.write_all(request.to_string().as_bytes());
    }
    let mut stdout = child.stdout.take().ok_or("the external runtime has no output")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.by_ref().take(1 << 20).read_to_string(&mut text).map(|_| text)
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("the external runtime did not answer within {} ms", timeout.as_millis()));
            }
            Err(e) => return Err(format!("the external runtime could not be watched: {e}")),
        }
    };
    if !status.success() {
        return Err(format!("the external runtime failed ({status})"));
    }
    let text = reader.join().map_err(|_| "the external runtime's output could not be read".to_string())?;
    let text = text.map_err(|e| format!("the external runtime's output could not be read: {e}"))?;
    let decision: Json = serde_json::from_str(text.trim()).map_err(|e| format!("the external runtime did not answer JSON: {e}"))?;
    match decision["decision"].as_str() {
        Some(d) if DECISIONS.contains(&d) => Ok(json!({
            "decision": d,
            "rule_id": decision.get("rule_id").cloned().unwrap_or(Json::Null),
            "severity": decision.get("severity").cloned().unwrap_or(Json::Null),
            "reason": decision.get("reason").cloned().unwrap_or(Json::Null),
        })),
        _ => Err(format!("the external runtime answered no valid decision (expected one of {})", DECISIONS.join(", "))),
    }
}

fn print_evaluation(io: &mut Io, doc: &Json) {
    let effective = &doc["effective_decision"];
    say!(
        io.out,
        "{} {}: {} ({}, {}) via the {} backend",
        doc["action_type"].as_str().unwrap_or_default(),
        doc["target"].as_str().unwrap_or_default(),
        effective["decision"].as_str().unwrap_or_default(),
        effective["rule_id"].as_str().unwrap_or_default(),
        effective["severity"].as_str().unwrap_or_default(),
        doc["selected_backend"].as_str().unwrap_or_default()
    );
    if let Some(reason) = effective["reason"].as_str() {
        say!(io.out, "  reason: {reason}");
    }
    if let Some(fallback) = doc["fallback_reason"].as_str() {
        say!(io.out, "  fell back to the built-in decision: {fallback}");
    }
}
